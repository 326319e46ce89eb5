/*
 * The remote store inside core (design: the remote mount, issue 14). A
 * struct sfs_store opened by sfs_store_open_url has `ops` set: each public
 * entry point that a front end uses dispatches to it at its top, once,
 * and its local body below stays as it was. The bodies live in
 * remote_store.c, remote_nums.c and remote_dirs.c (the namespace and
 * metadata) and remote_blob.c (content through the block cache); remote.c
 * speaks HTTP, remote_body.c sets what a request sends, remote_answer.c
 * reads what it answers. Entry points the remote store does not offer
 * yet answer SFS_UNSUPPORTED (sfsi_remote_refuse).
 */
#ifndef SPEECHFS_REMOTE_I_H
#define SPEECHFS_REMOTE_I_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include "speechfs/auth.h"
#include "speechfs/buf.h"
#include "speechfs/dir.h"
#include "speechfs/file.h"
#include "speechfs/query.h"
#include "speechfs/remote.h"
#include "speechfs/share.h"
#include "speechfs/stage.h"
#include "speechfs/xattr.h"
#include "speechfs/store.h"
#include "store_i.h"

struct sfs_blob;

/* ---- HTTP (remote.c) ---- */

/* Where a 2xx answer's bytes go: 0, or a status that stops the transfer. */
typedef int (*sfsi_remote_sink)(void *arg, const void *data, size_t len);

/*
 * What a request does when the front end stops (sfsi_remote_stopping).
 * Once it is cut (SIGTERM), every call waiting for the server gives up:
 * an SFSI_STOP_ENDS request (the default) ends then, as at a cancel
 * (within a second), and one not begun yet is not sent; the calls
 * waiting for it fail (SFS_UNAVAILABLE). Once the front end's session
 * has ended in any way (an unmount too), an SFSI_STOP_STALLS request
 * begun then (a last try) is bounded by SFSI_STOPPING_STALL_S seconds
 * without a byte instead of the timeout, and so is one already waiting
 * when the cut comes (counted from the cut); an unmount cuts nothing:
 * the calls still running (a release's upload) go on as before it.
 */
enum sfsi_at_stop {
	SFSI_STOP_ENDS,	 /* a front end's call: it ends at the cut */
	SFSI_STOP_WAITS, /* its own bounds only (the feed, short ones) */
	SFSI_STOP_STALLS /* goes on at the cut, SFSI_STOPPING_STALL_S
			  * without a byte ends it; begun after any stop,
			  * stall_s SFSI_STOPPING_STALL_S */
};

/*
 * A body of a length not known beforehand (sent chunked): up to len
 * bytes into buf; how many (0: the body ends), or -1 to cut the request
 * off (the server sees the body end early and keeps nothing of it).
 */
typedef ssize_t (*sfsi_remote_source)(void *arg, char *buf, size_t len);

struct sfsi_remote_req {
	const char *method;
	const char *path;   /* under the base URL, query included */
	const char *header; /* one extra header line, or NULL */
	const char *body;   /* a request body (JSON), or NULL */
	/*
	 * A file's bytes sent (size bytes of fd), or -1: the body itself,
	 * or with form the part "file". Such a request has no bound on
	 * its whole transfer, only on a stall.
	 */
	int fd;
	int64_t size;
	int64_t off, len;      /* len > 0: Range: bytes=off-(off+len-1) */
	int timeout_s;	       /* 0: twice the connection's */
	sfsi_remote_sink sink; /* a 2xx answer's body (NULL: into b) */
	void *arg;
	/*
	 * A multipart form (POST /files): name, value pairs up to a NULL
	 * name, and a part "file" named form_file holding the bytes of fd
	 * (none when fd is -1).
	 */
	const char *const *form;
	const char *form_file;
	/*
	 * The body from source (fd -1): as a file's, no bound on the whole
	 * transfer, and no second try (a 429 is the answer).
	 */
	sfsi_remote_source source;
	void *source_arg;
	/*
	 * Set to non-zero by another thread (atomically), the transfer ends
	 * within about a second, wherever it waits (or NULL).
	 */
	const int *cancel;
	/* what it does when the front end stops (SFSI_STOP_ENDS: 0) */
	enum sfsi_at_stop at_stop;
	/*
	 * > 0: the request's only bound is a stall of this many seconds
	 * (connecting included): it goes on while the server sends.
	 */
	int stall_s;
	long *http_code; /* the answer's HTTP status, 0 when none (or NULL) */
	/*
	 * The answer's X-Speechfs-Directory (a write's directory, as the
	 * server has it after the write) into dir_state[dir_state_size],
	 * "" when it has none (or NULL: not asked)
	 */
	char *dir_state;
	size_t dir_state_size;
	/*
	 * The answer's X-Speechfs-Content-Crc32c (the CRC32C of the bytes
	 * the server got) into *crc32c, -1 when it has none (or NULL: not
	 * asked)
	 */
	int64_t *crc32c;
	/*
	 * The CRC32C of what the body sends, sent as
	 * X-Speechfs-Content-Crc32c so that the server refuses other bytes
	 * before it stores them: a header, or for a body from source its
	 * trailer, read when the source has ended the body (NULL: none)
	 */
	const uint32_t *content_crc32c;
};

/*
 * One request on a pooled connection (safe from any thread); the answer
 * as the core's status (remote.h's sfs_remote_status), an error body in
 * b, and b holding a 2xx body unless a sink took it.
 */
enum sfs_status sfsi_remote_request(struct sfs_remote *r,
				    const struct sfsi_remote_req *q,
				    struct sfs_buf *b,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * sfs_remote_set_content, and the answer's X-Speechfs-Directory into
 * dir_state[dir_state_size] ("" when none; NULL: not asked), its
 * X-Speechfs-Content-Crc32c into *crc32c (as sfsi_remote_req's; NULL:
 * not asked); send_crc32c: the CRC32C of fd's bytes, sent with them
 * (sfsi_remote_req's content_crc32c; NULL: none); at_stop the request's.
 */
enum sfs_status sfsi_remote_put_content(
	struct sfs_remote *r, const char *id, int fd, const char *if_match,
	unsigned flags, struct sfs_file *out, char *dir_state,
	size_t dir_state_size, int64_t *crc32c, const uint32_t *send_crc32c,
	enum sfsi_at_stop at_stop, struct sfs_err *e) SFS_MUST_CHECK;

/* Room for a directory's state (X-Speechfs-Directory). */
#define SFSI_DIR_STATE_MAX 512

/* ---- a request's body (remote_body.c) ---- */

struct curl_slist;

/*
 * What one request sends, kept for its transfer: a stream from
 * q->source, a file's bytes (q->fd), a multipart form (a small one built
 * whole in form, a larger one through libcurl's mime) or JSON.
 */
struct sfsi_remote_body {
	int fd;
	sfsi_remote_source source;
	void *source_arg;
	const uint32_t *crc32c; /* q->content_crc32c, for a trailer */
	struct sfs_buf form;	/* a small form, whole (when whole) */
	char ctype[96];		/* its Content-Type header line */
	int whole;
	void *mime; /* a larger form's curl_mime, or NULL */
};

/*
 * q's body set on the handle curl (a CURL *), body kept until the
 * transfer is done, then sfsi_remote_body_release. h: the request's
 * header lines, returned with a form's Content-Type added.
 */
struct curl_slist *sfsi_remote_body_set(struct sfsi_remote_body *body,
					void *curl,
					const struct sfsi_remote_req *q,
					struct curl_slist *h);
void sfsi_remote_body_release(struct sfsi_remote_body *body);

/* ---- a server's answer read (remote_answer.c) ---- */

/*
 * The answer's X-Speechfs-Directory on handle curl (a CURL *) into out:
 * "" when none, too long, or the transfer failed (ok 0).
 */
void sfsi_remote_dir_state_of(void *curl, int ok, char *out, size_t size);
/*
 * The answer's X-Speechfs-Content-Crc32c (base64 of the big-endian
 * CRC32C, as S3's x-amz-checksum-crc32c), -1 when none, not one, or the
 * transfer failed (ok 0).
 */
int64_t sfsi_remote_crc32c_of(void *curl, int ok);

/* ---- a block's Range GET received in place (remote_range.c) ---- */

/* Where the next bytes go, how many fit (0: no more); n of them came. */
typedef void *(*sfsi_remote_room)(void *arg, size_t *room);
typedef int (*sfsi_remote_put)(void *arg, size_t n);

struct sfsi_curl_pool;

/* A Range GET whose body is received in place. */
struct sfsi_remote_range {
	/*
	 * The request as the normal transfer would make it: its path, off
	 * and len (> 0), cancel and at_stop are this one's too
	 */
	const struct sfsi_remote_req *req;
	sfsi_remote_room room;
	sfsi_remote_put put;
	void *arg;
};

/*
 * q's GET on a connection of our own HTTP/1.1 framing (libcurl
 * connects: CURLOPT_CONNECT_ONLY; idle ones kept in pool), the body
 * received straight where q->room says. An answer other than a 206 of
 * exactly this range, with a Content-Length, not chunked, not encoded,
 * or a server this cannot ask (https, a proxy, basic auth): *other set,
 * nothing put, and the request is sfsi_remote_request's to make. Else
 * the status the normal transfer would have given: SFS_UNAVAILABLE when
 * no answer came (a stall of the timeout, twice the timeout in all, the
 * server gone, the transfer aborted, cancelled or ended at the stop), the
 * server noted down as there.
 */
enum sfs_status sfsi_remote_range_into(struct sfs_remote *r,
				       struct sfsi_curl_pool *pool,
				       const struct sfsi_remote_range *q,
				       int *other,
				       struct sfs_err *e) SFS_MUST_CHECK;

/* remote.c's side of it: 1 when base is http:// without a proxy nor a
 * user:password (and r is not aborting) */
int sfsi_remote_plain_http(struct sfs_remote *r);
/*
 * curl (a CURL *) reset and connected only to url, as every request
 * connects, its receive buffer buffer_size bytes: libcurl's CURLcode.
 * The connect ends, as a request's transfer does, at an abort, at
 * *cancel (cancel may be NULL) and, when stop_ends, at the cut.
 */
int sfsi_remote_connect_only(struct sfs_remote *r, void *curl, const char *url,
			     long buffer_size, const int *cancel,
			     int stop_ends);
/* the credentials' and origin's header lines, each ended by CRLF, into
 * out: their length, or -1 when they do not fit */
int sfsi_remote_head_lines(struct sfs_remote *r, char *out, size_t size);
int sfsi_remote_aborting(struct sfs_remote *r);
/* an answer came (why NULL), or none: why (noted once, as for any) */
void sfsi_remote_answered(struct sfs_remote *r, const char *why);

/* This client's origin (X-Speechfs-Origin): its changes in the feed. */
int64_t sfsi_remote_origin(const struct sfs_remote *r);

/* The connection's timeout (connect and stall bound), in seconds. */
int sfsi_remote_timeout(const struct sfs_remote *r);

/* How far a streamed write may run ahead of the server (0: no bound). */
int64_t sfsi_remote_window(const struct sfs_remote *r);

/* 1 while the server gives no answer at all (its last request failed). */
int sfsi_remote_down(struct sfs_remote *r);

/* Make every transfer of r in progress, and later ones, end now. */
void sfsi_remote_abort(struct sfs_remote *r);

/*
 * The front end stops (sfs_store_stopping): its session ended (an
 * unmount), or, with cut (SIGTERM), it ends now: then sfsi_remote_wait
 * returns at once from now on, and a request whose cancel is
 * sfsi_remote_stop_flag, or whose at_stop is SFSI_STOP_ENDS, ends
 * (within a second). Either way the last tries (SFSI_STOP_STALLS) are
 * bounded from then on.
 */
void sfsi_remote_stopping(struct sfs_remote *r, int cut);
const int *sfsi_remote_stop_flag(struct sfs_remote *r);
/*
 * on: the calling thread's requests are last tries (SFSI_STOP_STALLS,
 * whatever their at_stop says) until it is called with 0: a last try's
 * requests after its create (the times, the sync) go on after a cut too.
 */
void sfsi_remote_last_tries(int on);
/* What q does at the front end's stop on this thread (last tries too). */
enum sfsi_at_stop sfsi_remote_at_stop(const struct sfsi_remote_req *q);
/* Whether the front end is cut (sfsi_remote_stopping with cut came). */
int sfsi_remote_is_stopping(struct sfs_remote *r);
/*
 * st of a close's whole upload of file id (new_file: its create with the
 * content): no answer once the front end is cut (SFSI_STOP_ENDS cut it,
 * or it was not begun) is said so, as a stream's cut is; else st, e as
 * it was.
 */
enum sfs_status sfsi_remote_cut_said(struct sfs_remote *r, enum sfs_status st,
				     const char *id, int new_file,
				     struct sfs_err *e);
/*
 * Once the front end stops, what is still asked of the server (whether
 * a lost answer's commit happened, the store's last sends) is bounded by
 * a stall of this many seconds (stall_s): a server that says nothing for
 * that long is taken as not answering; one that sends goes on.
 */
#define SFSI_STOPPING_STALL_S 2
/* Wait ms milliseconds, or less when the front end stops: 1 if it did. */
int sfsi_remote_wait(struct sfs_remote *r, int64_t ms);

/* ---- the change feed (remote_feed.c) ---- */

struct sfsi_rfeed;

/*
 * Follow the server's change feed (a thread holding one long poll):
 * each change is queued with a sequence number and the eventfd
 * (sfs_store_change_fd) is written. NULL *out when the server has none.
 */
enum sfs_status sfsi_rfeed_start(struct sfs_store *s, struct sfs_remote *r,
				 struct sfsi_rfeed **out,
				 struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_rfeed_stop(struct sfsi_rfeed *f);
int64_t sfsi_rfeed_seq(struct sfsi_rfeed *f);
int sfsi_rfeed_fd(struct sfsi_rfeed *f);
/*
 * Hand the queued changes made by others than this store to fn and forget
 * them all; *last: the newest.
 */
void sfsi_rfeed_drain(struct sfsi_rfeed *f, int64_t user, sfs_change_fn fn,
		      void *arg, int64_t *last);

/* ---- the cache of directories (remote_cache.c) ---- */

struct sfsi_rcache;
struct json_t;

#define SFSI_RCACHE_FILES 100000 /* files of listings kept, in all */
#define SFSI_RCACHE_DIRS 8192	 /* directories kept */
#define SFSI_RCACHE_TTL_MS 1000	 /* how long an entry is good without a feed */

enum sfs_status sfsi_rcache_new(struct sfsi_rcache **out,
				struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_rcache_free(struct sfsi_rcache *c);
/*
 * live: the change feed follows the server, so entries are good until
 * it says otherwise; else for SFSI_RCACHE_TTL_MS (and a feed that stops
 * following makes everything be asked again). A listing no longer good
 * is still kept as the last one got, until a new one replaces it or it
 * is least recently used (what sfsi_rcache_files' last tells).
 */
void sfsi_rcache_live(struct sfsi_rcache *c, int live);
int sfsi_rcache_is_live(struct sfsi_rcache *c);

/*
 * A fill of directory path: the ticket taken before the request, then
 * its answer put in with it, which goes in only if nothing changed
 * there since (0: no memory, nothing goes in). put_files takes l's files.
 */
uint64_t sfsi_rcache_ticket(struct sfsi_rcache *c, const char *path);
void sfsi_rcache_put_files(struct sfsi_rcache *c, const char *path,
			   uint64_t ticket, struct sfs_file_list *l);
void sfsi_rcache_put_dir(struct sfsi_rcache *c, const char *path,
			 uint64_t ticket, struct json_t *j);

/*
 * 1 and copies into out (sfs_file_list_release) of the files of path
 * that sfsi_remote_name_is picks (all of them with all) when its
 * listing is kept and good (last: kept at all, however old: the last
 * one got, with the store's own changes since, for when the server does
 * not answer); 0 when it must be asked.
 */
int sfsi_rcache_files(struct sfsi_rcache *c, const char *path,
		      const char *const *names, size_t n, const char *id_prefix,
		      int all, int last, struct sfs_file_list *out);
/* 1 and a copy of file number ino when a good (last: any) listing holds it. */
int sfsi_rcache_file(struct sfsi_rcache *c, int64_t ino, int last,
		     struct sfs_file *out);
/*
 * The server's answer about directory path with a reference
 * (json_decref), or NULL: ANSWER when kept and good; SUBDIRS when it is
 * good for its list of subdirectories (their paths) at least; LAST the
 * last one got, however old.
 */
enum { SFSI_RCACHE_ANSWER, SFSI_RCACHE_SUBDIRS, SFSI_RCACHE_LAST };
struct json_t *sfsi_rcache_dir(struct sfsi_rcache *c, const char *path,
			       int what);
/*
 * A reference sfsi_rcache_dir gave (or one to an answer given to
 * sfsi_rcache_put_dir) dropped under the cache's lock: jansson's
 * reference counts are read plainly by json_decref, so a count the
 * cache's threads share is only changed under that lock. NULL is none.
 */
void sfsi_rcache_unref(struct sfsi_rcache *c, struct json_t *j);
/* 1 when SUBDIRS would answer (without a reference taken). */
int sfsi_rcache_dir_kept(struct sfsi_rcache *c, const char *path);
/* The entry of child directory path in its parent's answer j, or NULL. */
struct json_t *sfsi_rcache_child(struct json_t *j, const char *path);

/* Others changed directory path (below: and every one below it). */
void sfsi_rcache_forget_dir(struct sfsi_rcache *c, const char *path, int below);
/* Others changed file number ino, now in directory path (NULL: gone). */
void sfsi_rcache_forget_file(struct sfsi_rcache *c, int64_t ino,
			     const char *path);
void sfsi_rcache_forget_all(struct sfsi_rcache *c);
/* This store changed f: the server's answer (f as it is now) goes in. */
void sfsi_rcache_apply(struct sfsi_rcache *c, const struct sfs_file *f);
/* The cache's clock now: taken before a write's request (a ticket). */
uint64_t sfsi_rcache_clock(struct sfsi_rcache *c);
/*
 * sfsi_rcache_apply, and with state (the answer's X-Speechfs-Directory,
 * "" or NULL for none) the directory's answer made anew from it, when
 * nothing touched the directory since ticket t (0: none).
 */
void sfsi_rcache_apply_state(struct sfsi_rcache *c, const struct sfs_file *f,
			     uint64_t t, const char *state);
/*
 * This store changed directories (the feed does not tell it): from
 * (NULL: none) went (removed, or renamed to to), to (NULL: none) came
 * (made, or from renamed). Their parents' last answers (what lists while
 * the server does not answer) show it; what was kept of from and below
 * it goes (asked again at its new path); a directory made is empty.
 */
void sfsi_rcache_own_dirs(struct sfsi_rcache *c, const char *from,
			  const char *to);
/* This store deleted file number ino. */
void sfsi_rcache_remove(struct sfsi_rcache *c, int64_t ino);

/* The store's cache, and the number of file id (0: none) (remote_store.c). */
struct sfsi_rcache *sfsi_remote_cache(struct sfs_store *s);
int64_t sfsi_remote_number(struct sfs_store *s, const char *id);

/* The table's writes that keep the cache true (remote_kept.c). */
enum sfs_status sfsi_rkept_file_create(struct sfs_store *s,
				       const struct sfs_file_spec *spec,
				       struct sfs_stage *content,
				       enum sfsi_at_stop at_stop,
				       struct sfs_file *out, struct sfs_err *e);
enum sfs_status sfsi_rkept_set_content(struct sfs_store *s, const char *id,
				       struct sfs_stage *content,
				       unsigned flags, struct sfs_file *out,
				       struct sfs_err *e);
enum sfs_status sfsi_rkept_file_update(struct sfs_store *s, const char *id,
				       const struct sfs_file_update *u,
				       struct sfs_file *out, struct sfs_err *e);
enum sfs_status sfsi_rkept_file_delete(struct sfs_store *s, const char *id,
				       int purge, struct sfs_err *e);
enum sfs_status sfsi_rkept_listening_generate(struct sfs_store *s,
					      const char *id,
					      struct sfs_file *out,
					      struct sfs_err *e);
enum sfs_status sfsi_rkept_file_rename(struct sfs_store *s, const char *id,
				       const struct sfs_file_update *u,
				       const char *replace_id, unsigned flags,
				       struct sfs_file *out, struct sfs_err *e);
enum sfs_status sfsi_rkept_dir_make(struct sfs_store *s, const char *path,
				    struct sfs_err *e);
enum sfs_status sfsi_rkept_dir_remove(struct sfs_store *s, const char *path,
				      struct sfs_err *e);
enum sfs_status sfsi_rkept_dir_rename(struct sfs_store *s, const char *from,
				      const char *to, struct sfs_err *e);
enum sfs_status sfsi_rkept_dir_set_mtime(struct sfs_store *s, const char *path,
					 int64_t mtime_ns, struct sfs_err *e);
enum sfs_status sfsi_rkept_xattr_set(struct sfs_store *s, const char *id,
				     const char *name, const void *value,
				     size_t len, unsigned flags,
				     struct sfs_err *e);
enum sfs_status sfsi_rkept_xattr_remove(struct sfs_store *s, const char *id,
					const char *name, struct sfs_err *e);
enum sfs_status sfsi_rkept_share_put(struct sfs_store *s, const char *file_id,
				     const char *user_id, enum sfs_perm perm,
				     struct sfs_share *out, int *created,
				     struct sfs_err *e);
enum sfs_status sfsi_rkept_share_revoke_user(struct sfs_store *s,
					     const char *file_id,
					     const char *user_id,
					     struct sfs_err *e);

/* ---- new files not sent yet (remote_pending*.c) ---- */

struct sfsi_rpend;

/* The table (remote_pending_table.c). */
enum sfs_status sfsi_rpend_new(struct sfsi_rpend **out,
			       struct sfs_err *e) SFS_MUST_CHECK;
/* Those still pending are lost (the mount is gone: none can be open). */
void sfsi_rpend_free(struct sfsi_rpend *p);
/* The store's (remote_store.c). */
struct sfsi_rpend *sfsi_remote_pend(struct sfs_store *s);
/* File id is pending (1), was unlinked before it was sent (-1), or not. */
int sfsi_rpend_has(struct sfsi_rpend *p, const char *id);
/* File number ino pending: 1 and a copy in out; -1 unlinked; 0 not. */
int sfsi_rpend_file(struct sfsi_rpend *p, int64_t ino, struct sfs_file *out);
/*
 * fn of each pending file of directory path picked as by
 * sfsi_remote_name_is (every one with all) that the listing l (NULL:
 * none) lacks; 1 when fn said stop.
 */
int sfsi_rpend_files(struct sfsi_rpend *p, const char *path,
		     const char *const *names, size_t n, const char *id_prefix,
		     int all, const struct sfs_file_list *l,
		     int (*fn)(void *arg, const struct sfs_file *f), void *arg);
/* Sending them, and the calls that meet them (remote_pending.c). */
/*
 * A pending id whose send's outcome is unknown, asked of the server for
 * a call that only looks (stat, open): adopted when the server holds it,
 * still pending (and unknown) on a 404; SFS_OK then, else the failure to
 * ask (remote_pending.c).
 */
enum sfs_status sfsi_rpend_resolve(struct sfs_store *s, const char *id,
				   struct sfs_err *e) SFS_MUST_CHECK;
/* At the store's close: a last try of the files whose send failed. */
void sfsi_rpend_last_sends(struct sfs_store *s);
/*
 * Pending file id created on the server now (empty, lazily), if it is:
 * a stream's start, which its close waits for, so it ends at the front
 * end's stop (SFSI_STOP_ENDS).
 */
enum sfs_status sfsi_rpend_send(struct sfs_store *s, const char *id,
				struct sfs_err *e) SFS_MUST_CHECK;
/* The table's calls that know of pending files. */
enum sfs_status sfsi_rpend_file_create(struct sfs_store *s,
				       const struct sfs_file_spec *spec,
				       struct sfs_stage *content,
				       struct sfs_file *out, struct sfs_err *e);
enum sfs_status sfsi_rpend_set_content(struct sfs_store *s, const char *id,
				       struct sfs_stage *content,
				       unsigned flags, struct sfs_file *out,
				       struct sfs_err *e);
enum sfs_status sfsi_rpend_file_sync(struct sfs_store *s, const char *id,
				     struct sfs_err *e);
enum sfs_status sfsi_rpend_file_delete(struct sfs_store *s, const char *id,
				       int purge, struct sfs_err *e);
enum sfs_status sfsi_rpend_file_update(struct sfs_store *s, const char *id,
				       const struct sfs_file_update *u,
				       struct sfs_file *out, struct sfs_err *e);
enum sfs_status sfsi_rpend_file_rename(struct sfs_store *s, const char *id,
				       const struct sfs_file_update *u,
				       const char *replace_id, unsigned flags,
				       struct sfs_file *out, struct sfs_err *e);
enum sfs_status sfsi_rpend_listening_generate(struct sfs_store *s,
					      const char *id,
					      struct sfs_file *out,
					      struct sfs_err *e);
enum sfs_status sfsi_rpend_xattr_set(struct sfs_store *s, const char *id,
				     const char *name, const void *value,
				     size_t len, unsigned flags,
				     struct sfs_err *e);
enum sfs_status sfsi_rpend_xattr_remove(struct sfs_store *s, const char *id,
					const char *name, struct sfs_err *e);
enum sfs_status sfsi_rpend_share_put(struct sfs_store *s, const char *file_id,
				     const char *user_id, enum sfs_perm perm,
				     struct sfs_share *out, int *created,
				     struct sfs_err *e);
enum sfs_status sfsi_rpend_share_revoke_user(struct sfs_store *s,
					     const char *file_id,
					     const char *user_id,
					     struct sfs_err *e);
enum sfs_status sfsi_rpend_share_list(struct sfs_store *s, const char *file_id,
				      struct sfs_share **out, size_t *n,
				      struct sfs_err *e);
enum sfs_status sfsi_rpend_dir_rename(struct sfs_store *s, const char *from,
				      const char *to, struct sfs_err *e);
enum sfs_status sfsi_rpend_dir_remove(struct sfs_store *s, const char *path,
				      struct sfs_err *e);

/* Is f one named in names (case-insensitively), or by id_prefix? */
int sfsi_remote_name_is(const struct sfs_file *f, const char *const *names,
			size_t n, const char *id_prefix);

/*
 * The feed saw a change by others (remote_store.c): a directory's
 * entries (dir, ino 0), or file id (ino its number, 0 when it has none)
 * now in directory dir (NULL: no longer seen).
 */
void sfsi_remote_saw_change(struct sfs_store *s, const char *id, int64_t ino,
			    const char *dir, int is_dir);
/* The feed follows the server (1), or does not (0). */
void sfsi_remote_feed_live(struct sfs_store *s, int live);
/*
 * Whether it does now: every listing kept is then good with no time
 * bound, so a name's check in a directory just looked up asks nothing.
 */
int sfsi_remote_feed_is_live(struct sfs_store *s);

/* ---- the store's table ---- */

struct sfsi_store_ops {
	void (*close)(struct sfs_store *s);
	void (*stopping)(struct sfs_store *s, enum sfs_store_stop how);
	enum sfs_status (*auth_user)(struct sfs_store *s, struct sfs_actor *out,
				     struct sfs_err *e);
	enum sfs_status (*space_of)(struct sfs_store *s, struct sfs_space *out,
				    struct sfs_err *e);
	enum sfs_status (*dir_stat)(struct sfs_store *s, const char *path,
				    struct sfs_dir_info *out,
				    struct sfs_err *e);
	enum sfs_status (*dir_stat_ino)(struct sfs_store *s, int64_t ino,
					char *path, size_t size,
					struct sfs_dir_info *out,
					struct sfs_err *e);
	enum sfs_status (*dir_subdirs)(struct sfs_store *s, const char *path,
				       void (*fn)(void *arg, const char *name,
						  const struct sfs_dir_info *d),
				       void *arg, struct sfs_err *e);
	enum sfs_status (*dir_files)(struct sfs_store *s, const char *path,
				     const char *const *names, size_t n,
				     const char *id_prefix, int all,
				     int (*fn)(void *arg,
					       const struct sfs_file *f),
				     void *arg, struct sfs_err *e);
	enum sfs_status (*query_files)(struct sfs_store *s,
				       const struct sfs_query *q,
				       struct sfs_file_list *out,
				       struct sfs_err *e);
	enum sfs_status (*query_shared)(struct sfs_store *s,
					const struct sfs_query *q,
					struct sfs_file_list *out,
					struct sfs_err *e);
	enum sfs_status (*file_get_ino)(struct sfs_store *s, int64_t ino,
					struct sfs_file *out,
					struct sfs_err *e);
	enum sfs_status (*file_open_ino)(struct sfs_store *s, int64_t ino,
					 enum sfs_content which, unsigned flags,
					 struct sfs_blob **blob,
					 struct sfs_file *out,
					 struct sfs_err *e);
	enum sfs_status (*xattr_get)(struct sfs_store *s, const char *file_id,
				     const char *name, struct sfs_buf *out,
				     struct sfs_err *e);
	enum sfs_status (*xattr_list)(struct sfs_store *s, const char *file_id,
				      struct sfs_buf *out, struct sfs_err *e);
	enum sfs_status (*share_put)(struct sfs_store *s, const char *file_id,
				     const char *user_id, enum sfs_perm perm,
				     struct sfs_share *out, int *created,
				     struct sfs_err *e);
	enum sfs_status (*share_revoke_user)(struct sfs_store *s,
					     const char *file_id,
					     const char *user_id,
					     struct sfs_err *e);
	enum sfs_status (*user_resolve)(struct sfs_store *s, const char *who,
					char id_out[SFS_ID_SIZE],
					struct sfs_err *e);
	enum sfs_status (*user_name)(struct sfs_store *s, const char *user_id,
				     char *name, size_t size,
				     struct sfs_err *e);
	enum sfs_status (*share_list)(struct sfs_store *s, const char *file_id,
				      struct sfs_share **out, size_t *n,
				      struct sfs_err *e);

	/* writes (remote_write.c) */
	enum sfs_status (*file_create)(struct sfs_store *s,
				       const struct sfs_file_spec *spec,
				       struct sfs_stage *content,
				       struct sfs_file *out, struct sfs_err *e);
	enum sfs_status (*set_content)(struct sfs_store *s, const char *id,
				       struct sfs_stage *content,
				       unsigned flags, struct sfs_file *out,
				       struct sfs_err *e);
	enum sfs_status (*file_sync)(struct sfs_store *s, const char *id,
				     struct sfs_err *e);
	enum sfs_status (*file_update)(struct sfs_store *s, const char *id,
				       const struct sfs_file_update *u,
				       struct sfs_file *out, struct sfs_err *e);
	enum sfs_status (*file_delete)(struct sfs_store *s, const char *id,
				       int purge, struct sfs_err *e);
	enum sfs_status (*listening_generate)(struct sfs_store *s,
					      const char *id,
					      struct sfs_file *out,
					      struct sfs_err *e);
	enum sfs_status (*file_rename)(struct sfs_store *s, const char *id,
				       const struct sfs_file_update *u,
				       const char *replace_id, unsigned flags,
				       struct sfs_file *out, struct sfs_err *e);
	enum sfs_status (*dir_make)(struct sfs_store *s, const char *path,
				    struct sfs_err *e);
	enum sfs_status (*dir_remove)(struct sfs_store *s, const char *path,
				      struct sfs_err *e);
	enum sfs_status (*dir_rename)(struct sfs_store *s, const char *from,
				      const char *to, struct sfs_err *e);
	enum sfs_status (*dir_set_mtime)(struct sfs_store *s, const char *path,
					 int64_t mtime_ns, struct sfs_err *e);
	enum sfs_status (*xattr_set)(struct sfs_store *s, const char *file_id,
				     const char *name, const void *value,
				     size_t len, unsigned flags,
				     struct sfs_err *e);
	enum sfs_status (*xattr_remove)(struct sfs_store *s,
					const char *file_id, const char *name,
					struct sfs_err *e);

	/* the change feed */
	enum sfs_status (*change_seq)(struct sfs_store *s, int64_t *seq,
				      struct sfs_err *e);
	enum sfs_status (*changes)(struct sfs_store *s, int64_t since,
				   int others, sfs_change_fn fn, void *arg,
				   int64_t *last, struct sfs_err *e);
	int (*change_fd)(struct sfs_store *s);

	/* a stage sent while it is written (remote_stream.c) */
	void (*stage_stream)(struct sfs_store *s, struct sfs_stage *st);
	void (*stage_stream_free)(struct sfs_store *s, struct sfs_stage *st);
};

/* ---- shared by the remote store's files ---- */

struct sfs_remote *sfsi_remote_of(struct sfs_store *s);
/* A path or name made safe for a query string (all but unreserved, '/'). */
void sfsi_remote_escape(const char *in, char *out, size_t size);
/* The directories URL of `path` into url (NOT_FOUND when too long). */
enum sfs_status sfsi_remote_dir_url(const char *path, char *url, size_t size,
				    struct sfs_err *e);
/* Room for sfsi_remote_dir_url's URL: a path of 4095 bytes, escaped. */
#define SFSI_REMOTE_DIR_URL_MAX (3 * 4096 + 64)
/* sfs_remote_file_decode of a parsed File object. */
struct json_t;
enum sfs_status sfsi_remote_file_decode_obj(struct json_t *o,
					    struct sfs_file *f,
					    struct sfs_err *e) SFS_MUST_CHECK;
/*
 * sfs_remote_changes with fn given each change's parsed object
 * (borrowed: valid during the call), not its text parsed again; with
 * others set, only changes made with another origin than this client's
 * (skipOwn: a long poll goes on waiting past the client's own).
 */
enum sfs_status sfsi_remote_changes_obj(
	struct sfs_remote *r, const char *cursor, int timeout_s, int others,
	void (*fn)(void *arg, struct json_t *change), void *arg, char *next,
	size_t size, int *more, struct sfs_err *e) SFS_MUST_CHECK;
/* A file's JSON into out, numbered (its ino) and with its permission. */
enum sfs_status sfsi_remote_file_json(struct sfs_store *s, const char *json,
				      size_t len, struct sfs_file *out,
				      struct sfs_err *e) SFS_MUST_CHECK;
/* Number a file the server answered with (its ino, its permission). */
enum sfs_status sfsi_remote_file_number(struct sfs_store *s, struct sfs_file *f,
					struct sfs_err *e) SFS_MUST_CHECK;

/* A directory renamed: the numbers of it and below follow it. */
void sfsi_remote_dir_moved(struct sfs_store *s, const char *from,
			   const char *to);
/* A directory removed: it and below no longer stat while offline. */
void sfsi_remote_dir_gone(struct sfs_store *s, const char *path);
/*
 * File id `from` is now `to` on the server: its number follows it (a
 * seed-only server's replace of an empty file by a new one; a new file
 * of the mount never changes its id: it is derived, remote_pending.c).
 */
void sfsi_remote_renumber(struct sfs_store *s, const char *from,
			  const char *to);
/*
 * File id, a new file of this store's, unlinked before it was ever sent
 * (the server never had it, nor will: its key is gone): marked on its
 * number, asked by the commits of handles still open on it after its
 * pending entry went (remote_pending.c).
 */
void sfsi_remote_set_unsent_gone(struct sfs_store *s, const char *id);
int sfsi_remote_unsent_gone(struct sfs_store *s, const char *id);
/* The server's extensions (remote.h's enum sfs_remote_features). */
unsigned sfsi_remote_has(struct sfs_store *s);

/* remote_write.c's bodies (the table's) */
/*
 * dir_state (SFSI_DIR_STATE_MAX bytes, or NULL): the answer's
 * X-Speechfs-Directory, "" when none (sfsi_rcache_apply_state). A
 * create with content (a close's commit) and set_content's upload end
 * at the front end's cut (SFSI_STOP_ENDS), whatever at_stop says.
 */
enum sfs_status sfsi_remote_file_create(struct sfs_store *s,
					const struct sfs_file_spec *spec,
					struct sfs_stage *content,
					enum sfsi_at_stop at_stop,
					struct sfs_file *out, char *dir_state,
					struct sfs_err *e);
enum sfs_status sfsi_remote_set_content(struct sfs_store *s, const char *id,
					struct sfs_stage *content,
					unsigned flags, struct sfs_file *out,
					char *dir_state, struct sfs_err *e);
/* POST …/files/{id}/sync (a lazy create made durable), if offered. */
enum sfs_status sfsi_remote_file_sync(struct sfs_store *s, const char *id,
				      struct sfs_err *e);
enum sfs_status sfsi_remote_file_update(struct sfs_store *s, const char *id,
					const struct sfs_file_update *u,
					struct sfs_file *out,
					struct sfs_err *e);
enum sfs_status sfsi_remote_file_delete(struct sfs_store *s, const char *id,
					int purge, struct sfs_err *e);
enum sfs_status sfsi_remote_listening_generate(struct sfs_store *s,
					       const char *id,
					       struct sfs_file *out,
					       struct sfs_err *e);
enum sfs_status sfsi_remote_file_rename(struct sfs_store *s, const char *id,
					const struct sfs_file_update *u,
					const char *replace_id, unsigned flags,
					struct sfs_file *out,
					struct sfs_err *e);
enum sfs_status sfsi_remote_dir_make(struct sfs_store *s, const char *path,
				     struct sfs_err *e);
enum sfs_status sfsi_remote_dir_remove(struct sfs_store *s, const char *path,
				       struct sfs_err *e);
enum sfs_status sfsi_remote_dir_rename(struct sfs_store *s, const char *from,
				       const char *to, struct sfs_err *e);
enum sfs_status sfsi_remote_dir_set_mtime(struct sfs_store *s, const char *path,
					  int64_t mtime_ns, struct sfs_err *e);
enum sfs_status sfsi_remote_xattr_set(struct sfs_store *s, const char *id,
				      const char *name, const void *value,
				      size_t len, unsigned flags,
				      struct sfs_err *e);
enum sfs_status sfsi_remote_xattr_remove(struct sfs_store *s, const char *id,
					 const char *name, struct sfs_err *e);

/*
 * What a remote store does not do (yet): SFS_UNSUPPORTED naming `what`
 * (a front end makes it ENOTSUP; the mount is read-only remotely).
 */
enum sfs_status sfsi_remote_refuse(const char *what,
				   struct sfs_err *e) SFS_MUST_CHECK;

#define SFSI_REMOTE_REFUSE(s, what, e)                                         \
	do {                                                                   \
		if ((s)->ops)                                                  \
			return sfsi_remote_refuse(what, e);                    \
	} while (0)

/* GET path's JSON answer (remote_store.c). */
struct json_t;
enum sfs_status sfsi_remote_get_json(struct sfs_store *s, const char *path,
				     struct json_t **out,
				     struct sfs_err *e) SFS_MUST_CHECK;

/* ---- a stage sent while it is written (remote_stream.c) ---- */

/*
 * A stage with a target (sfs_stage_set_target) passed a few MiB in
 * order: start PUT …/files/{id}/content with a chunked body that follows
 * the stage's file (st->stream). Nothing when the server has no content
 * versions, or the stage no target.
 */
void sfsi_remote_stream_start(struct sfs_store *s, struct sfs_stage *st);
/* The stage goes without a commit: the request is cut off, joined. */
void sfsi_remote_stream_free(struct sfs_store *s, struct sfs_stage *st);
/*
 * The commit of the stage (hashed) as file id's content with flags:
 * 1 when its stream carried it (the server's answer: its status and
 * body in *answer, its X-Speechfs-Content-Crc32c in *crc32c as
 * sfsi_remote_req's, the error in e), 0 when the stage must go up whole
 * (no stream, another target, or no answer from the server: cut off,
 * gone, a 429). The stream is over either way.
 */
int sfsi_remote_stream_take(struct sfs_store *s, struct sfs_stage *st,
			    const char *id, unsigned flags,
			    struct sfs_buf *answer, int64_t *crc32c,
			    enum sfs_status *status, struct sfs_err *e);

/* ---- a streamed stage's resumable upload session (remote_parts.c) ---- */

struct sfsi_rparts {
	struct sfs_remote *r;
	struct sfs_stage *st;
	char upload[40]; /* the session's id, "" when none */
	char path[160];	 /* …/files/{id}/uploads/{upload} */
	pthread_t th;	 /* the poller */
	int polling;	 /* th runs */
	int stop;	 /* the poller's (atomic, and under mu) */
	int inited;	 /* mu and cv */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/*
 * Make a session for file_id's content (POST …/uploads); 0, or -1 when
 * none was made (the stream goes without, as before the extension).
 */
int sfsi_rparts_begin(struct sfsi_rparts *p, struct sfs_remote *r,
		      struct sfs_stage *st, const char *file_id);
/*
 * The poller: it long-polls the session's durable offset and frees the
 * stage's file below it (and below what the stream sent); stopped and
 * joined by poll_stop (or release, which frees p's own).
 */
void sfsi_rparts_poll_start(struct sfsi_rparts *p);
void sfsi_rparts_poll_stop(struct sfsi_rparts *p);
void sfsi_rparts_release(struct sfsi_rparts *p);
/* The session's durable offset now (SFS_NOT_FOUND: the session is gone). */
enum sfs_status sfsi_rparts_durable(struct sfsi_rparts *p, int64_t *durable,
				    struct sfs_err *e) SFS_MUST_CHECK;
/* End the session (DELETE), best effort. */
void sfsi_rparts_drop(struct sfsi_rparts *p);
/*
 * Bring the stage's first `freed` bytes (freed, no more freed since)
 * back into its file from the session's content; SFS_WOULD_WAIT on a
 * thread that may not wait (nothing done), SFS_IO when the server no
 * longer has them (logged).
 */
enum sfs_status sfsi_rparts_restore(struct sfsi_rparts *p, int64_t freed,
				    struct sfs_err *e) SFS_MUST_CHECK;
/*
 * How many bytes of memory the pipe of st, which a stream follows, may
 * keep its window in (stage_pipe.c's ring): the write window when the
 * stream will be in a session that frees it, else 0 (the file holds it).
 */
int64_t sfsi_remote_stream_ring(const struct sfs_stage *st);
/*
 * len bytes at off of the session's content (all below what was freed)
 * into buf, for a reader of the file being written; SFS_WOULD_WAIT on a
 * thread that may not wait, SFS_IO when the server no longer has them
 * (logged).
 */
enum sfs_status sfsi_rparts_read(struct sfsi_rparts *p, void *buf, size_t len,
				 int64_t off, struct sfs_err *e) SFS_MUST_CHECK;
/*
 * Bytes [off, off + len) of st, all below what its stream freed, from
 * the stream's session (sfsi_rparts_read).
 */
enum sfs_status sfsi_remote_stream_read(struct sfs_stage *st, void *buf,
					size_t len, int64_t off,
					struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The stage st is written out of order: its file is made whole
 * first (sfsi_rparts_restore when its stream has a session).
 */
enum sfs_status sfsi_remote_stream_whole(struct sfs_stage *st,
					 struct sfs_err *e) SFS_MUST_CHECK;

/* ---- users and shares (remote_share.c) ---- */

enum sfs_status sfsi_remote_user_resolve(struct sfs_store *s, const char *who,
					 char id_out[SFS_ID_SIZE],
					 struct sfs_err *e);
enum sfs_status sfsi_remote_user_name(struct sfs_store *s, const char *user_id,
				      char *name, size_t size,
				      struct sfs_err *e);
enum sfs_status sfsi_remote_share_put(struct sfs_store *s, const char *file_id,
				      const char *user_id, enum sfs_perm perm,
				      struct sfs_share *out, int *created,
				      struct sfs_err *e);
enum sfs_status sfsi_remote_share_list(struct sfs_store *s, const char *id,
				       struct sfs_share **out, size_t *n,
				       struct sfs_err *e);
enum sfs_status sfsi_remote_share_revoke_user(struct sfs_store *s,
					      const char *file_id,
					      const char *user_id,
					      struct sfs_err *e);

/* ---- content (remote_blob.c) ---- */

struct sfsi_rblob;

/* The block cache of a remote store: fetchers, the disk cache. */
enum sfs_status sfsi_rblob_start(struct sfs_remote *r, const char *cache_dir,
				 int64_t cache_bytes, struct sfsi_rblob **out,
				 struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_rblob_stop(struct sfsi_rblob *rb);

/*
 * File id's content (or listening MP3) of sha256 (size bytes), read by
 * Range GETs of GET …/files/{id}/content?sha256= (or
 * …/listening-audio/stream?sha256=) through the block cache.
 */
enum sfs_status sfsi_rblob_open(struct sfsi_rblob *rb, const char *id,
				enum sfs_content which, const char *sha,
				int64_t size, unsigned flags,
				struct sfs_blob **out,
				struct sfs_err *e) SFS_MUST_CHECK;

#endif
