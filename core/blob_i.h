/*
 * The blob store inside core: its part of a metadata transaction (rows,
 * reference counts, the tenant's byte usage; blob.c) and the backends
 * that keep the bytes, one table of functions each, chosen once when the
 * store opens (the way SQLite's sqlite3_vfs is): blob_local.c (files under
 * blobs/) and blob_s3.c (objects in a bucket). Nothing else in core knows
 * which backend is in use.
 */
#ifndef SPEECHFS_BLOB_I_H
#define SPEECHFS_BLOB_I_H

#include <stdint.h>
#include "speechfs/blob.h"

struct db;
struct sfs_stage;
struct sfs_store;

/* ---- open blobs ---- */

struct sfsi_blob_ops {
	enum sfs_status (*pread)(struct sfs_blob *b, void *buf, size_t len,
				 int64_t off, size_t *got, struct sfs_err *e);
	enum sfs_status (*url)(struct sfs_blob *b, int expires_s,
			       const char *ctype, const char *disposition,
			       char **url, struct sfs_err *e);
	void (*close)(struct sfs_blob *b);
	/*
	 * Whether pread of [off, off + len) answers without waiting for
	 * the network or a fetch of another thread (sfs_blob_ready); NULL:
	 * always (the bytes are in memory or a local file).
	 */
	int (*ready)(struct sfs_blob *b, int64_t off, size_t len);
	/* sfs_blob_lend (NULL: the blob keeps no bytes in memory to lend) */
	enum sfs_status (*lend)(struct sfs_blob *b, int64_t off, size_t len,
				sfs_blob_use use, void *arg, struct sfs_err *e);
};

/* The head of every backend's open blob. */
struct sfs_blob {
	const struct sfsi_blob_ops *ops;
	int64_t tenant;
	char sha[65];
	int64_t size;
	int fd; /* the bytes in a local file, or -1 */
};

/* The url of a blob whose bytes the store serves itself: SFS_UNSUPPORTED. */
enum sfs_status sfsi_blob_no_url(struct sfs_blob *b, int expires_s,
				 const char *ctype, const char *disposition,
				 char **url, struct sfs_err *e);

/* ---- backends ---- */

/*
 * A report of a backend's walk over what it stores: a blob (sha set), or
 * an entry that is not one (odd set, a name for people).
 */
typedef int (*sfsi_blob_each)(void *arg, int64_t tenant, const char *sha,
			      int64_t size, const char *odd);

struct sfsi_blob_backend {
	const char *name; /* "local", "s3" */

	/* At store open: check the configuration, connect nothing yet. */
	enum sfs_status (*open)(struct sfs_store *s, struct sfs_err *e);
	void (*close)(struct sfs_store *s);

	/*
	 * Outside any transaction, the stage hashed and named after its
	 * blob: make the bytes ready to become blob (tenant, sha) cheaply
	 * under the write lock. `known`: the tenant has that blob already,
	 * so the bytes will most likely be dropped. (local: fsync the
	 * stage unless known; s3: upload the object unless known.)
	 */
	enum sfs_status (*prepare)(struct sfs_store *s, int64_t tenant,
				   struct sfs_stage *st, int known,
				   struct sfs_err *e);
	/*
	 * In the write transaction that inserts the blob's row: the stage's
	 * bytes are durable and verified as blob (tenant, sha) when this
	 * returns SFS_OK (local: link into blobs/ and fsync the directory;
	 * s3: upload if prepare did not, then HEAD for the size). Checked
	 * under the write lock, so a removal of the same blob by another
	 * process (under the lock too) cannot slip in between.
	 */
	enum sfs_status (*store)(struct sfs_store *s, int64_t tenant,
				 struct sfs_stage *st, struct sfs_err *e);
	/* Are the bytes of (tenant, sha) there? 1 yes (size), 0 no. */
	enum sfs_status (*stat)(struct sfs_store *s, int64_t tenant,
				const char *sha, int *present, int64_t *size,
				struct sfs_err *e);
	/* Remove them (no row names them; under the write lock). */
	enum sfs_status (*remove)(struct sfs_store *s, int64_t tenant,
				  const char *sha, struct sfs_err *e);
	/* Open them for reading; the size is known from the row. */
	enum sfs_status (*open_blob)(struct sfs_store *s, int64_t tenant,
				     const char *sha, int64_t size,
				     unsigned flags, struct sfs_blob **out,
				     struct sfs_err *e);
	/* Everything stored, for fsck: each(arg, ...) per entry. */
	enum sfs_status (*walk)(struct sfs_store *s, sfsi_blob_each each,
				void *arg, struct sfs_err *e);
	/*
	 * For fsck's merge of a large store against its rows, a page at a
	 * time, never every name in memory (NULL: fsck asks stat for each
	 * row and walks everything for objects without rows): the blobs of
	 * one tenant in the order of their sha, and the tenants that have
	 * any (fn(arg, tenant, NULL)) or entries that are not a tenant's
	 * (fn(arg, 0, odd)), in any order.
	 */
	enum sfs_status (*walk_tenant)(struct sfs_store *s, int64_t tenant,
				       sfsi_blob_each each, void *arg,
				       struct sfs_err *e);
	enum sfs_status (*tenants)(struct sfs_store *s,
				   int (*fn)(void *arg, int64_t tenant,
					     const char *odd),
				   void *arg, struct sfs_err *e);
	/*
	 * fsck's chores of the backend beyond blobs (s3: multipart uploads
	 * left unfinished for a day, aborted on repair), or NULL.
	 */
	enum sfs_status (*sweep)(struct sfs_store *s, int repair,
				 int64_t *found, int64_t *fixed,
				 void (*say)(void *arg, const char *line),
				 void *arg, struct sfs_err *e);
	/*
	 * A sequential stage passed a few MiB: start sending it while it is
	 * written (st->stream), for prepare to finish (NULL: no streaming).
	 */
	void (*stream)(struct sfs_store *s, struct sfs_stage *st);
	/* The stage goes without a commit: stop and undo its stream. */
	void (*stream_free)(struct sfs_store *s, struct sfs_stage *st);
};

extern const struct sfsi_blob_backend sfsi_blob_local;
extern const struct sfsi_blob_backend sfsi_blob_s3;

/*
 * Choose the store's backend at open: the store records where its blobs
 * live (setting rows blob.*); a configuration that names another place is
 * refused, a fresh store takes the configured one.
 */
enum sfs_status sfsi_blob_backend_open(struct sfs_store *s,
				       struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_blob_backend_close(struct sfs_store *s);

/* ---- the blob store's part of a transaction ---- */

/*
 * Take a reference on the finished stage's content for `tenant`: store
 * its bytes in the backend (durable, verified) and insert the row, or
 * count one more reference on an existing blob. Must be in a write
 * transaction. *added_bytes is the tenant's growth (0 when deduplicated).
 */
enum sfs_status sfsi_blob_ref_stage(struct db *d, int64_t tenant,
				    struct sfs_stage *st, int64_t *added_bytes,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Begin d's write transaction for one that will reference the stage st
 * (sfsi_blob_ref_stage; st may be NULL): nosync as sfsi_db_begin_nosync,
 * and of its own (sfsi_db_begin_alone) when that reference waits for the
 * backend under the write lock — the stage's bytes not kept in the row
 * (local: a link and its directory's fsync; s3: the HEAD that checks the
 * object, the upload again if it went), or small bytes that dedupe
 * against a row keeping its bytes outside (the backend's stat, a store
 * if they went) —: in a group of commits every member done before it
 * would wait too. sfsi_blob_stage_prepare decides it, with the
 * blobs.inline_max that sfsi_blob_ref_stage then uses; for small bytes
 * this begin looks at the row they dedupe against, in its transaction,
 * and leaves a group for a turn of its own when that row keeps its
 * bytes outside.
 */
enum sfs_status sfsi_blob_begin(struct db *d, const struct sfs_stage *st,
				int nosync, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Hash the stage and freeze it, outside any transaction, and let the
 * backend prepare its bytes (prepare above): sfsi_blob_ref_stage then
 * holds the write lock as briefly as it can.
 */
enum sfs_status sfsi_blob_stage_prepare(struct sfs_store *s, int64_t tenant,
					struct sfs_stage *st,
					struct sfs_err *e) SFS_MUST_CHECK;

/* One more reference on an existing blob (e.g. copying a file). */
enum sfs_status sfsi_blob_ref(struct db *d, int64_t tenant, const char *sha256,
			      struct sfs_err *e) SFS_MUST_CHECK;

/* Drop a reference; the last one removes the row and then the bytes. */
enum sfs_status sfsi_blob_unref(struct db *d, int64_t tenant,
				const char *sha256,
				struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Under the write lock: remove the bytes of (tenant, sha) if no row names
 * them (a commit that did not happen, a dead process's stage, fsck).
 * *removed (may be NULL) says whether it did.
 */
enum sfs_status sfsi_blob_remove_unreferenced(struct db *d, int64_t tenant,
					      const char *sha, int *removed,
					      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Small blobs are kept in their row (blob_inline.c): at most
 * blobs.inline_max bytes (64 KiB), committed with the metadata, no file
 * of their own. Is a blob of `size` bytes kept so?
 */
int sfsi_blob_inline_size(const struct sfs_store *s, int64_t size);
/* Does the tenant's blob row hold its bytes? */
int sfsi_blob_row_inline(struct db *d, int64_t tenant, const char *sha256);
/*
 * Insert the row of a new small blob with the stage's bytes and count
 * them to the tenant (in a write transaction).
 */
enum sfs_status sfsi_blob_put_inline(struct db *d, int64_t tenant,
				     struct sfs_stage *st, int64_t *added_bytes,
				     struct sfs_err *e) SFS_MUST_CHECK;
/* A memfd of an inline blob's bytes; SFS_GONE when there is none. */
enum sfs_status sfsi_blob_open_inline(struct sfs_store *s, int64_t tenant,
				      const char *sha256, int *fd,
				      int64_t *size,
				      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * An open blob reading the file fd (a blob file, an inline blob's memfd);
 * takes the fd, closed even on failure.
 */
enum sfs_status sfsi_blob_open_fd(int fd, int64_t tenant, const char *sha,
				  struct sfs_blob **out,
				  struct sfs_err *e) SFS_MUST_CHECK;

/* blobs/<tenant>/<sha[0:2]>/<sha> into out (the local backend's). */
void sfsi_blob_path(struct sfs_store *s, int64_t tenant, const char *sha256,
		    char *out, size_t size);

/* A temporary local file holding the blob's bytes (for a decoder). */
enum sfs_status sfsi_blob_local_copy(struct sfs_store *s, struct sfs_blob *b,
				     int *fd, struct sfs_err *e) SFS_MUST_CHECK;

#endif
