/*
 * The REST daemon's private header: the daemon state, the per-request
 * state that lives from libmicrohttpd's first call to the request-completed
 * callback, and the helpers the handlers share (respond, limits, metrics).
 */
#ifndef SPEECHFSD_HTTPD_H
#define SPEECHFSD_HTTPD_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <jansson.h>
#include <microhttpd.h>
#include "speechfs/auth.h"
#include "speechfs/buf.h"
#include "speechfs/err.h"
#include "speechfs/file.h"
#include "speechfs/store.h"
#include "parse.h"
#include "speechfs/token.h"
#include "speechfs/util.h"

struct sfs_store;
struct sfs_stage;
struct route;
struct conn;

#define API_BASE "/api/v1/speech-services/files"

/* Options of the daemon itself (config keys in main.c). */
struct httpd_opts {
	int64_t max_upload_bytes;     /* multipart file part */
	int64_t max_json_bytes;	      /* JSON request bodies */
	int64_t default_download_bps; /* users with -1; 0 unlimited */
	double rate_rps;	      /* general requests per second */
	double rate_burst;
	double upload_rps; /* upload/import per second */
	double upload_burst;
	int threads; /* MHD thread pool */
	int conn_timeout_s;
	int conn_limit;
	int per_ip_limit;
	int shutdown_timeout_s;
	size_t max_url_len;
	size_t max_header_bytes;
	char cors_origins[1024]; /* http.cors_origins: "" = no CORS */
	double auth_fail_rps;	 /* failed authentications per address */
	double auth_fail_burst;
	int redirect_to_object_store; /* 302 to a presigned URL */
	int redirect_ttl_s;	      /* its lifetime */
	int head_timeout_s;	      /* a request head, from its first byte */
	int64_t min_body_rate;	      /* bytes/s a body averages after that */
	int response_cache;	      /* answers kept (respcache.c); 0: none */
	int changes_max_waiters;      /* long polls waiting at once */
	int extensions; /* 0: only the seed API's routes (the contract's) */
};

/* Everything the configuration says: the file, then the command line. */
struct httpd_kv {
	char key[64];
	char value[256];
};

struct httpd_config {
	char store[4096];
	char listen[256];
	int log_level; /* enum sfs_log_level */
	int workers;   /* run the job workers (jobs.enabled) */
	struct httpd_opts opts;
	struct sfs_config core;
	struct httpd_kv seen[96]; /* the file's keys as read, for reloads */
	int nseen;
};

struct httpd {
	struct sfs_store *store;
	struct httpd_opts opts;
	struct MHD_Daemon *mhd;
	int stopping; /* set once at SIGTERM (atomic: httpd_stopping) */
	int inflight; /* requests alive (atomic) */
};

extern struct httpd g_httpd;

/* Whether the daemon is draining for its exit (any thread may ask). */
static inline int httpd_stopping(void)
{
	return __atomic_load_n(&g_httpd.stopping, __ATOMIC_SEQ_CST);
}

/* The text parts of an upload besides `file`. */
enum part {
	PART_NAME,
	PART_DESCRIPTION,
	PART_PATH,
	PART_METADATA,
	PART_TAGS,
	PART_GLA,
	PART_MAX
};
extern const char *const httpd_part_names[PART_MAX];

/* Extra response headers a request may carry (Allow, Retry-After ...). */
#define REQ_MAX_HEADERS 12

/*
 * Per-request state: allocated when libmicrohttpd has read the request
 * line (the URI log callback, which sees the URI before it is decoded),
 * freed in the request-completed callback.
 */
struct req {
	struct MHD_Connection *conn;
	struct conn *cn;      /* the guard's view of the connection (conn.h) */
	char id[SFS_ID_SIZE]; /* X-Request-Id */
	const char *method;   /* set on the first access call */
	char *path;	      /* the raw path, not percent-decoded (owned) */
	const char *query;    /* the raw query after '?' (in path's block) */
	size_t uri_len;	      /* of the raw URI, query included */
	int bad_uri;	      /* with spaces or control characters */
	const char *version;  /* "HTTP/1.1" */
	int begun;	      /* the first access call was made */
	int64_t start_ns;
	const struct route *route;
	int route_idx;		     /* -1: none */
	char params[2][SFS_ID_SIZE]; /* {id}, {shareId} */
	int authed;
	struct sfs_actor actor;
	int signed_url;
	int session_tried; /* the credential was a session cookie */
	int by_session;	   /* ... and it was good */
	int immutable;	   /* content named by its sha256: cache for good */
	uint64_t rc_gen;   /* data generation read before the handler ran */
	uint64_t rc_hash;  /* its key in the answer cache (respcache.c) */

	/* body */
	enum {
		BODY_NONE,
		BODY_JSON,
		BODY_MULTIPART,
		BODY_DISCARD,
		BODY_STAGE /* raw bytes into r->stage (PUT content) */
	} body;
	struct sfs_buf json;
	struct multipart *mp; /* the multipart parser (multipart.h) */
	int64_t bytes_in;

	/* multipart parts */
	struct sfs_stage *stage; /* the `file` part (owned) */
	int file_seen;
	char *filename;
	struct sfs_buf parts[PART_MAX]; /* text parts, by enum part */
	int part_seen[PART_MAX];

	/*
	 * An error found while the body streams in, answered at the end
	 * (allocated then: the struct is 2 KiB and most requests have none).
	 */
	struct sfs_err *err;
	int has_err;

	/* response bookkeeping: extra headers, values in xh_buf */
	struct {
		const char *name; /* static strings */
		const char *val;
	} xh[REQ_MAX_HEADERS];
	int nxh;
	char xh_buf[768];
	size_t xh_used;
	int responded;
	int defer;		      /* hold a first-call answer */
	struct MHD_Response *pending; /* the held answer */
	unsigned status;
	int64_t bytes_out;

	/* PUT content: the If-Match tag that matched ("" none, "*") */
	char if_match[68];
	int if_match_set;
	/* ... into an upload session (r->stage is its: sfs_upload_stage) */
	int upload;
	int body_ended; /* the handler was called at the body's end */

	/* a long poll of the change feed, while it waits (api_changes.c) */
	struct changes_wait *wait;
	/* a long poll of an upload session (api_uploads.c) */
	struct uploads_wait *uwait;
};

/* A route handler: answers the request (queues a response). */
typedef enum MHD_Result (*handler_fn)(struct req *r);

struct route {
	const char *method;
	const char *pattern; /* "/files/{id}/content" */
	unsigned scope;	     /* sfs_scope bits, 0: no auth */
	enum { BODY_NO, BODY_JSON_OK, BODY_UPLOAD, BODY_CONTENT } accepts;
	int upload_limited; /* stricter rate bucket */
	handler_fn fn;
	const char *name; /* metrics label */
	/* a signed URL may stand for credentials: what it must grant */
	enum { SIGNED_NO, SIGNED_CONTENT, SIGNED_LISTENING } signed_url;
	int cached; /* its 200s are kept in the answer cache (respcache.c) */
	/*
	 * Whose route it is: the seed API contract's, the daemon's own
	 * (health, metrics, the OpenAPI document, the web page's files) or
	 * an extension; http.extensions = false turns the extensions off
	 * (404, or 405 + Allow where a route of the others shares the path).
	 */
	enum { ROUTE_SEED, ROUTE_OWN, ROUTE_EXT } api;
};

/* router.c */
enum MHD_Result httpd_access(void *cls, struct MHD_Connection *conn,
			     const char *url, const char *method,
			     const char *version, const char *upload_data,
			     size_t *upload_data_size, void **con_cls);
void httpd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		     enum MHD_RequestTerminationCode toe);
void *httpd_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);
/* Routes /metrics counts; router.c's table may not outgrow it (checked). */
#define HTTPD_MAX_ROUTES 64
/* 1 if method path (an OpenAPI path: {x} segments) answers now. */
int httpd_route_enabled(const char *method, const char *path);
const char *httpd_route_name(int idx);

/* req.c */
/* A fresh X-Request-Id (a version 4 UUID). */
void httpd_request_id(char out[SFS_ID_SIZE]);
/* The raw URI as the client sent it ("/path?query"); NULL without memory. */
struct req *req_new(struct MHD_Connection *conn, const char *uri);
void req_free(struct req *r);
enum MHD_Result req_body_start(struct req *r);
void req_body_feed(struct req *r, const char *data, size_t size);
enum sfs_status req_body_finish(struct req *r, struct sfs_err *e);
const char *req_header(struct req *r, const char *name);
/* The client's X-Speechfs-Origin (1..2^63-1); 0: none, or not a number. */
int64_t req_origin(struct req *r);
const char *req_arg(struct req *r, const char *name);
/* Parse the JSON body as an object; SFS_INVALID when it is not one. */
enum sfs_status req_json(struct req *r, json_t **out, struct sfs_err *e);
/* Add (or replace) a response header; `name` must be a static string. */
void req_set_header(struct req *r, const char *name, const char *val);
const char *req_get_header_set(struct req *r, const char *name);
int req_bool_arg(struct req *r, const char *name, int *out, struct sfs_err *e);
/*
 * An integer query argument in [lo, hi] into *out (left as it is when
 * absent): 0, or -1 with a field error in e.
 */
int req_int_arg(struct req *r, const char *name, int64_t lo, int64_t hi,
		int64_t *out, struct sfs_err *e);

/* respond.c */
unsigned httpd_http_status(enum sfs_status st);
enum MHD_Result respond_json(struct req *r, unsigned status, json_t *j);
/* JSON text written by a core encoder (detached from b; b is left empty). */
enum MHD_Result respond_buf(struct req *r, unsigned status, struct sfs_buf *b);
/* The size a JSON response buffer starts with (one allocation). */
#define RESP_BUF_INITIAL (16 * 1024)
#define RESP_BUF_MAX (64 * 1024 * 1024)
enum MHD_Result respond_err(struct req *r, const struct sfs_err *e);
/* The same with more members in the body (extra is borrowed). */
enum MHD_Result respond_err_with(struct req *r, const struct sfs_err *e,
				 json_t *extra);
enum MHD_Result respond_errf(struct req *r, enum sfs_status st,
			     enum sfs_reason why, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
enum MHD_Result respond_status(struct req *r, unsigned status, const char *type,
			       const char *msg);
enum MHD_Result respond_empty(struct req *r, unsigned status);
enum MHD_Result respond_text(struct req *r, unsigned status, const char *ctype,
			     char *body, size_t len);
enum MHD_Result respond_queue(struct req *r, unsigned status,
			      struct MHD_Response *resp);
/*
 * Serve an open blob (taken: closed on every path) with Range / If-Range,
 * ETag and the bandwidth limit of the actor; from its local file with
 * sendfile, else read from wherever it is kept (a 503 if that does not
 * answer for the first byte).
 */
struct sfs_blob;
enum MHD_Result respond_blob(struct req *r, struct sfs_blob *b,
			     const char *ctype, const char *etag,
			     int64_t mtime_ms, const char *filename);

/* api_session.c */
/* The session cookie's value, NULL without one. */
const char *httpd_session_cookie(struct req *r);
/*
 * Authenticate by a session token into r->actor; an unsafe method needs
 * the session's X-CSRF-Token too (SFS_FORBIDDEN, "csrf_failed").
 */
enum sfs_status httpd_session_auth(struct req *r, const char *token,
				   struct sfs_err *e);

/* www.c */
/*
 * Load the web page's files from dir (NULL: the tree's www/ beside a
 * build's binary, else the installed SFS_WWW_DIR). 0 on success, also
 * when there is no page to serve (it is logged); -1 on a read error.
 */
int www_init(const char *dir);
void www_free(void);
/* cache.c */
#define CACHE_ETAG_SIZE 20 /* "\"j\" 16 hex \"\"" and NUL */
#define CACHE_PRIVATE "private, no-cache"
#define CACHE_IMMUTABLE "private, max-age=31536000, immutable"
/* The strong ETag of a body, from a hash of its bytes. */
void cache_etag_of(const void *body, size_t len, char out[CACHE_ETAG_SIZE]);
/* Is the client's copy current (If-None-Match, else If-Modified-Since)? */
int cache_fresh(struct req *r, const char *etag, int64_t mtime_ms);
/* Answer 304 with the validators (each may be NULL). */
enum MHD_Result cache_not_modified(struct req *r, const char *etag,
				   const char *cache_control,
				   const char *last_modified);

/* cors.c */
/* Access-Control-Allow-Origin (and what a script may read) if allowed. */
void cors_headers(struct req *r);
/* OPTIONS on a resource whose methods are `allow`: a preflight or not. */
enum MHD_Result cors_options(struct req *r, const char *allow);

/* config.c */
void httpd_config_init(struct httpd_config *c);
/* Read a file into c; -1 with "FILE:LINE: KEY: ..." in e. */
int httpd_config_load(struct httpd_config *c, const char *path,
		      struct sfs_err *e);
/*
 * The core's keys of the daemon's file, read and checked as the daemon
 * reads it (its own keys too: a typo fails here as it would at start),
 * for the admin commands that open a store; -1 with a line on stderr.
 */
int httpd_config_load_core(const char *path, struct sfs_config *core);
/*
 * SIGHUP: read the file again; apply the run-time keys to g_httpd and the
 * log level (unless level_fixed: given on the command line), log each
 * change. A file with an error changes nothing. The number of changes,
 * or -1.
 */
int httpd_config_reload(struct httpd_config *cur, const char *path,
			int level_fixed);
/*
 * "8080", "HOST:PORT" (an IPv4 address or localhost), "[IPV6]:PORT".
 * 0, or -1 with why (and the forms accepted) in msg.
 */
int httpd_listen_parse(const char *s, struct sockaddr_storage *ss,
		       socklen_t *len, int *v6, char *msg, size_t msgsz);

/* limits.c */
int limits_init(void);
/* New request rates (a reload), taken by the buckets at once. */
void limits_set_rates(double rps, double burst, double upload_rps,
		      double upload_burst);
void limits_stop(void);
/* 0 allowed; else the seconds to wait (Retry-After). */
int limits_take(const struct sfs_actor *a, int upload);
/*
 * Failed authentications per client address (an IPv4 address, an IPv6
 * /64): limits_auth_wait is 0 while the address may still try, else the
 * seconds until it may (Retry-After); limits_auth_failed takes a token.
 */
int limits_auth_wait(const struct sockaddr *peer);
void limits_auth_failed(const struct sockaddr *peer);
/* The bandwidth of an actor in bytes per second, 0 unlimited. */
int64_t limits_bps(const struct sfs_actor *a);
/* The blob is taken (closed with the response). */
struct MHD_Response *limits_throttled_response(struct req *r,
					       struct sfs_blob *b, int64_t off,
					       int64_t len, int64_t bps);

/* metrics.c */
void metrics_record(int route_idx, unsigned status, int64_t ns, int64_t in,
		    int64_t out);
enum MHD_Result api_metrics(struct req *r);

/* api_content.c: PUT content's checks before its body streams in */
enum MHD_Result api_content_start(struct req *r, int64_t len);

/* api_uploads.c: resumable uploads' sessions */
/* PUT content's ?upload=: the session's stage into r->stage, or answered. */
enum MHD_Result api_uploads_put_start(struct req *r, int64_t len, int *go);
/* STORE/staging/.uploads recovered, the long polls' room open; -1 (logged). */
int uploads_init(void);
/* Answer every waiting poll (shutdown). */
void uploads_stop(void);
/* A request that ends while it is still listed (never, but safely). */
void uploads_req_free(struct req *r);

/* api_changes.c: the long polls' waiting room */
int changes_init(void);
/* Answer every waiting poll (shutdown) and refuse new waits. */
void changes_stop(void);
/* How many long polls wait now (the metrics' gauge). */
int changes_waiting(void);
/* The metrics' counters of the change feed since the daemon started. */
struct changes_counts {
	uint64_t looks;		 /* the watcher read the change sequence */
	uint64_t resumed;	 /* it resumed a waiting poll */
	uint64_t skipped_own;	 /* it moved one past its own client's */
	uint64_t answered;	 /* requests with a cursor, with changes */
	uint64_t answered_empty; /* with none (a long poll's time up) */
};
void changes_counts(struct changes_counts *out);
/* A request that ends while it is still listed (never, but safely). */
void changes_req_free(struct req *r);

/* handlers */
enum MHD_Result api_files_list(struct req *r);
enum MHD_Result api_files_shared(struct req *r);
enum MHD_Result api_files_create(struct req *r);
enum MHD_Result api_files_get(struct req *r);
enum MHD_Result api_files_content(struct req *r);
enum MHD_Result api_files_put_content(struct req *r);
enum MHD_Result api_uploads_create(struct req *r);
enum MHD_Result api_uploads_get(struct req *r);
enum MHD_Result api_uploads_delete(struct req *r);
enum MHD_Result api_uploads_content(struct req *r);
enum MHD_Result api_dirs_list(struct req *r);
enum MHD_Result api_dirs_create(struct req *r);
enum MHD_Result api_dirs_delete(struct req *r);
enum MHD_Result api_dirs_rename(struct req *r);
enum MHD_Result api_dirs_patch(struct req *r);
enum MHD_Result api_changes_get(struct req *r);
enum MHD_Result api_xattrs_list(struct req *r);
enum MHD_Result api_xattrs_put(struct req *r);
enum MHD_Result api_xattrs_delete(struct req *r);
enum MHD_Result api_space_get(struct req *r);
/* GET of a file's bytes: its content or its listening MP3 (Range, ETag). */
enum MHD_Result api_serve_content(struct req *r, enum sfs_content which);
enum MHD_Result api_files_patch(struct req *r);
enum MHD_Result api_files_delete(struct req *r);
enum MHD_Result api_files_discard(struct req *r);
enum MHD_Result api_files_restore(struct req *r);
enum MHD_Result api_files_sync(struct req *r);
/*
 * Extension: after a write of file f, its directory's own state as GET
 * …/directories tells it (counts and time, no path: the file's) in the
 * header X-Speechfs-Directory, read after the commit, so that a client
 * keeping directories need not ask again. Only for the caller's own
 * files; nothing when the stat fails.
 */
void api_dirs_header(struct req *r, const struct sfs_file *f);
/*
 * Extension: X-Speechfs-Content-Crc32c, the CRC32C of the bytes an
 * upload's stage got (base64 of its 4 bytes, big-endian, as S3's
 * x-amz-checksum-crc32c), so that a client checks what it sent without a
 * SHA-256 of it (api_content.c).
 */
struct sfs_stage;
void api_content_crc_header(struct req *r, const struct sfs_stage *st);
/*
 * Extension: the same header in the request (or, for a chunked body, as
 * its trailer) is the CRC32C the client computed of what it sent; the
 * stage's must be it, checked before the commit (sfs_stage_check_crc32c:
 * 400 checksum_mismatch, nothing stored). None sent, no stage, or the
 * extensions off: SFS_OK. A value not of the form: 400
 * invalid_parameter.
 */
enum sfs_status api_content_check_crc(struct req *r, struct sfs_err *e);
/*
 * The same header from a state read by the write itself (a create's,
 * sfs_file_spec.dir_out), when this client wants it.
 */
int api_dirs_header_wanted(struct req *r);
/*
 * Extension: the query parameter keepDirs of a call that can empty a
 * directory; true: the rest of this request keeps such directories
 * (made explicit) instead of letting them vanish. SFS_INVALID (e) for a
 * value not true/false, or any value with the extensions off.
 */
enum sfs_status api_dirs_keep_arg(struct req *r, struct sfs_err *e);
void api_dirs_header_set(struct req *r, const struct sfs_dir_info *d);
enum MHD_Result api_files_signed_url(struct req *r);
enum MHD_Result api_listening_stream(struct req *r);
enum MHD_Result api_listening_generate(struct req *r);
enum MHD_Result api_listening_delete(struct req *r);
enum MHD_Result api_listening_purge(struct req *r);
enum MHD_Result api_shares_list(struct req *r);
enum MHD_Result api_shares_create(struct req *r);
enum MHD_Result api_shares_delete(struct req *r);
enum MHD_Result api_users_list(struct req *r);
enum MHD_Result api_users_me(struct req *r);
enum MHD_Result api_listening_peaks(struct req *r);
enum MHD_Result api_tags_list(struct req *r);
enum MHD_Result api_session_create(struct req *r);
enum MHD_Result api_session_get(struct req *r);
enum MHD_Result api_session_delete(struct req *r);
enum MHD_Result api_www(struct req *r);
enum MHD_Result api_healthz(struct req *r);
enum MHD_Result api_openapi(struct req *r);

/*
 * The OpenAPI document as served (api_files.c): made once at start, the
 * embedded one or, with http.extensions = false, the one without the
 * routes that are off. -1 (logged) when it cannot be made: the route
 * then answers 500 with the error body.
 */
int httpd_openapi_init(void);
void httpd_openapi_free(void);

/* admin.c */
int admin_main(int argc, char **argv);
int admin_is_command(const char *arg);
/* The commands with their summaries, one per line. */
void admin_list_commands(FILE *f);

/* cli.c */
struct option;
/*
 * Check argv before getopt_long sees it: a long option must be given by
 * its whole name (no abbreviations) and a flag takes no "=value". Prints
 * what is wrong (naming the option) and returns -1.
 */
int cli_check_args(const char *prog, int argc, char **argv,
		   const char *shortopts, const struct option *lo);
/*
 * getopt_long with our messages: a missing value or an unknown option is
 * printed (naming it) and returned as '?'. shortopts starts with ':'.
 */
int cli_getopt(const char *prog, int argc, char **argv, const char *shortopts,
	       const struct option *lo);
/* admin_blob.c: speechfsd blob show|migrate */
int admin_blob_main(int argc, char **argv);
int admin_db_main(int argc, char **argv);

/* small helpers (respond.c) */
/* The client's address (never NULL: a zeroed one if unknown). */
const struct sockaddr *httpd_peer(struct req *r);

#endif
