/*
 * A store on a server: the first pieces of the core's second
 * implementation, over the REST API (design: the remote mount, issue 14).
 * A connection to a speechfsd (safe from many threads: a pool of kept-alive
 * connections), what it offers, its answers turned back into the core's
 * statuses and reasons (so a front end's one errno or status table serves
 * both stores), a file's JSON decoded into struct sfs_file, new content
 * versions and the change feed; and sfs_store_open_url, the store a
 * remote mount reads through.
 */
#ifndef SPEECHFS_REMOTE_H
#define SPEECHFS_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "file.h"

struct sfs_remote;

/* The extensions a server offers beyond the seed's API. */
enum sfs_remote_features {
	SFS_REMOTE_CONTENT = 1 << 0, /* PUT /files/{id}/content */
	SFS_REMOTE_DIRS = 1 << 1,    /* /directories */
	SFS_REMOTE_CHANGES = 1 << 2, /* /changes with its long poll */
	SFS_REMOTE_XATTRS = 1 << 3,  /* /files/{id}/xattrs */
	SFS_REMOTE_SPACE = 1 << 4,   /* /space */
	/* POST /files?lazy=true and POST /files/{id}/sync */
	SFS_REMOTE_LAZY = 1 << 5,
	/*
	 * POST /files?idKey= and GET /users/me: a new file's id derived
	 * from the user's id and a key the client chose
	 * (sfs_uuid_derive), known before the file is made
	 */
	SFS_REMOTE_ID_KEY = 1 << 6,
	/*
	 * X-Speechfs-Content-Crc32c in the answers of POST /files and PUT
	 * /files/{id}/content: the CRC32C of the bytes the server got, so
	 * that a stage needs no SHA-256 to check what was sent
	 */
	SFS_REMOTE_CRC32C = 1 << 7,
	/*
	 * keepDirs=true on the calls that can empty a directory (DELETE
	 * and PATCH /files/{id}, DELETE /directories, POST
	 * /directories/rename): a directory emptied stays, explicit, as
	 * sfs_store_keep_dirs has it locally
	 */
	SFS_REMOTE_KEEP_DIRS = 1 << 8,
	/*
	 * /files/{id}/uploads: a PUT of content streamed in a session the
	 * server makes durable in parts and lets resume from its durable
	 * offset, so a streamed stage frees what the server holds
	 */
	SFS_REMOTE_UPLOADS = 1 << 9
};

/*
 * Connect to base_url ("http://host:port", no path) with an API key: a
 * seed route (GET /files?size=1) checks the server and the key, then the
 * server's OpenAPI document tells its features (none when it has no
 * document: 404; any other failure to read it is the open's error).
 * timeout_s bounds a connect and a stall (0: 10 s). SFS_UNAVAILABLE when
 * the server does not answer. Ownership: sfs_remote_close().
 */
enum sfs_status sfs_remote_open(const char *base_url, const char *api_key,
				int timeout_s, struct sfs_remote **out,
				struct sfs_err *e) SFS_MUST_CHECK;
void sfs_remote_close(struct sfs_remote *r);
unsigned sfs_remote_features(const struct sfs_remote *r);
/*
 * The server's URL as lines name it: without a user:password@ the URL
 * had (those are sent, not shown).
 */
const char *sfs_remote_url(const struct sfs_remote *r);
/* The caller's user id with SFS_REMOTE_ID_KEY ("" without). */
const char *sfs_remote_user_id(const struct sfs_remote *r);
/*
 * The scopes (enum sfs_scope) of the credentials as the server tells them
 * (GET /users/me, an extension), SFS_SCOPE_ALL when it does not tell.
 */
unsigned sfs_remote_scopes(const struct sfs_remote *r);

/*
 * An answer of the server as the core's status: 2xx is SFS_OK; an error
 * body's status_code and error_type become the status and reason that
 * made it (the inverse of the daemon's table), its message the message.
 */
enum sfs_status sfs_remote_status(long http_status, const char *body,
				  size_t len, struct sfs_err *e) SFS_MUST_CHECK;

/* A file's JSON (the API's File object) into out (sfs_file_release). */
enum sfs_status sfs_remote_file_decode(const char *json, size_t len,
				       struct sfs_file *out,
				       struct sfs_err *e) SFS_MUST_CHECK;

enum sfs_status sfs_remote_file_get(struct sfs_remote *r, const char *id,
				    struct sfs_file *out,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A new content version of file id from the bytes of fd (read from its
 * offset 0 to its end, streamed), on the condition if_match (a sha256,
 * "*", or NULL for none); listening audio made of audio content only with
 * SFS_SET_LISTENING in flags. SFS_UNSUPPORTED when the server lacks it.
 */
enum sfs_status sfs_remote_set_content(struct sfs_remote *r, const char *id,
				       int fd, const char *if_match,
				       unsigned flags, struct sfs_file *out,
				       struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The change feed after cursor (NULL: the cursor of now), waiting up to
 * timeout_s for a change. fn gets each change's JSON object text; the
 * next cursor goes to next[size]. SFS_GONE (cursor_expired): list again.
 */
enum sfs_status
sfs_remote_changes(struct sfs_remote *r, const char *cursor, int timeout_s,
		   void (*fn)(void *arg, const char *json, size_t len),
		   void *arg, char *next, size_t size, int *more,
		   struct sfs_err *e) SFS_MUST_CHECK;

/* ---- a store on a server, for a mount ---- */

struct sfs_store;

struct sfs_remote_opts {
	const char *url;       /* http(s)://HOST[:PORT], no path */
	const char *api_key;   /* sent as X-API-Key, or */
	const char *token;     /* a JWT sent as Authorization: Bearer */
	const char *cafile;    /* CA certificates for https (NULL: system) */
	const char *proxy;     /* a proxy's URL (NULL: none, whatever the
				* environment's *_proxy say) */
	const char *cred_file; /* the file api_key or token came from: read
				* again when the server answers 401 (a key
				* rotated, a token renewed); NULL: never */
	int timeout_s;	       /* connect and stall bound (0: 10 s) */
	const char *cache_dir; /* NULL: $XDG_CACHE_HOME/speechfs/HOST_PORT */
	int64_t cache_bytes;   /* the block cache's bound (<0: 1 GiB) */
	/*
	 * How far a file written in order may run ahead of what the server
	 * holds durably, in bytes (0: 128 MiB; <0: no bound): past it a
	 * write waits for the server (SFS_REMOTE_WINDOW_MIN at least).
	 */
	int64_t write_window;
};

#define SFS_REMOTE_WINDOW_DEFAULT ((int64_t)128 << 20)
/* the server makes a session durable every 32 MiB: room for that and more */
#define SFS_REMOTE_WINDOW_MIN ((int64_t)64 << 20)

/* sfs_remote_open with every option. */
enum sfs_status sfs_remote_open_opts(const struct sfs_remote_opts *o,
				     struct sfs_remote **out,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A store on a server: the public calls a mount makes to read (listing
 * directories and files, a file and its content, its xattrs and shares,
 * the space) go to the server over the REST API, content through a block
 * cache on local disk; the others answer SFS_UNSUPPORTED for now. The
 * server must offer the directories extension. Ownership:
 * sfs_store_close().
 */
enum sfs_status sfs_store_open_url(const struct sfs_remote_opts *o,
				   struct sfs_store **out,
				   struct sfs_err *e) SFS_MUST_CHECK;

#endif
