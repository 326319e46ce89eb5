/*
 * The blob store: immutable content named by SHA-256, deduplicated within
 * a tenant with reference counts. Its bytes live in a backend chosen when
 * the store opens (`blob.backend`): `local`, files under blobs/ of the
 * store, or `s3`, objects in a bucket of an S3-compatible object store.
 * Bytes come in through a stage (stage.h); a stage is committed by the
 * file operations that take it (file.h), and a blob's row is written only
 * once its bytes are durable and verified in the backend. Reading goes
 * through an open blob, whichever backend keeps the bytes.
 */
#ifndef SPEECHFS_BLOB_H
#define SPEECHFS_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "err.h"

struct sfs_store;
struct sfs_config;
struct sfs_blob;

enum sfs_blob_flags {
	/* read ahead from the start: the bytes will be read in order */
	SFS_BLOB_SEQUENTIAL = 1 << 0,
	/* keep what is fetched in the store's local block cache (the mount) */
	SFS_BLOB_CACHED = 1 << 1,
	/*
	 * sfs_file_open: the original of a deleted (not purged) file opens
	 * too, for a reader who held it open (POSIX: an unlinked file stays
	 * readable through its open descriptors); owner only, as deleted
	 * files are.
	 */
	SFS_BLOB_IF_DELETED = 1 << 2,
	/*
	 * sfs_file_open: the content is a writer's base, read when it first
	 * writes, by then perhaps replaced by others' commits. A store that
	 * serves a version only while it is the file's (a remote store)
	 * takes the first block of it now, and opens the file again when
	 * the version changed before that. A later block of a version
	 * replaced meanwhile fails SFS_CONFLICT (SFS_R_CONTENT_CHANGED).
	 */
	SFS_BLOB_KEEP = 1 << 3,
	/*
	 * sfs_file_open: the file as the store has it now, past what a
	 * remote store's cache knows (it asks its server).
	 */
	SFS_BLOB_FRESH = 1 << 4,
};

/*
 * Open blob (tenant, sha256) for reading. SFS_GONE if the store has no
 * such blob, SFS_UNAVAILABLE if its backend cannot be reached.
 * Ownership: close with sfs_blob_close().
 */
enum sfs_status sfs_blob_open(struct sfs_store *s, int64_t tenant,
			      const char *sha256, unsigned flags,
			      struct sfs_blob **out,
			      struct sfs_err *e) SFS_MUST_CHECK;

/* An open blob of no bytes (a file made empty, without content). */
enum sfs_status sfs_blob_open_empty(struct sfs_blob **out,
				    struct sfs_err *e) SFS_MUST_CHECK;

int64_t sfs_blob_size(const struct sfs_blob *b);

/*
 * Read up to `len` bytes at `off`; *got is 0 at the end. Safe to call
 * from several threads on one blob. Errors: SFS_IO, SFS_UNAVAILABLE (the
 * object store did not answer).
 */
enum sfs_status sfs_blob_pread(struct sfs_blob *b, void *buf, size_t len,
			       int64_t off, size_t *got,
			       struct sfs_err *e) SFS_MUST_CHECK;

/* Where sfs_blob_lend hands bytes: they are valid during the call only. */
typedef void (*sfs_blob_use)(void *arg, const void *data, size_t len);

/*
 * sfs_blob_pread without its copy: `use` is called once, on this thread,
 * with up to `len` bytes at `off` where the blob keeps them in memory (a
 * block fetched from far away), fewer only at the end of the blob, and
 * none past it. SFS_UNSUPPORTED when the blob keeps no such memory or
 * the bytes lie across two of its blocks: pread them instead. Other
 * errors are pread's, and `use` is not called.
 */
enum sfs_status sfs_blob_lend(struct sfs_blob *b, int64_t off, size_t len,
			      sfs_blob_use use, void *arg,
			      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Whether sfs_blob_pread of up to `len` bytes at `off` answers at once:
 * the bytes are in memory or a local file, not to be fetched from an
 * object store or a server (whose wait a caller may not afford on a
 * thread that answers others). A hint: a 0 only means the read may wait.
 */
int sfs_blob_ready(struct sfs_blob *b, int64_t off, size_t len);

/*
 * A file descriptor of exactly the blob's bytes when they are in a local
 * file (for sendfile or a decoder that wants a file), else -1. It belongs
 * to the blob: valid until sfs_blob_close().
 */
int sfs_blob_fd(const struct sfs_blob *b);

/*
 * A URL from which a client may GET the bytes without us, valid for
 * `expires_s` seconds, the response carrying `content_type` and
 * `disposition` (may be NULL): a presigned URL of the object store.
 * SFS_UNSUPPORTED when the backend keeps the bytes itself (local).
 * Ownership: *url is the caller's (free()).
 */
enum sfs_status sfs_blob_url(struct sfs_blob *b, int expires_s,
			     const char *content_type, const char *disposition,
			     char **url, struct sfs_err *e) SFS_MUST_CHECK;

void sfs_blob_close(struct sfs_blob *b);

/* The name of the store's blob backend: "local" or "s3". */
const char *sfs_blob_backend_name(const struct sfs_store *s);

struct sfs_blob_migrate_report {
	int64_t blobs;	 /* blobs of the store */
	int64_t copied;	 /* sent to the target and verified */
	int64_t present; /* already there and verified (a resumed run) */
	int64_t bytes;	 /* bytes sent */
	int switched;	 /* the store now uses the target */
};

/*
 * Copy every blob of a store using the local backend into the object
 * store that `cfg` names (blob.s3.*), verify each there (size and, as it
 * is sent, its SHA-256), then switch the store to it (the store's record,
 * which every process opening it follows). Objects already present with
 * the right size are verified and kept, so an interrupted run resumes
 * where it stopped. The store must not be open elsewhere while it
 * switches (SFS_BUSY otherwise); the local files stay until fsck-ed away
 * by the administrator. `progress(arg, report)` (may be NULL) is called
 * after each blob.
 */
enum sfs_status sfs_blob_migrate(
	const char *dir, const struct sfs_config *cfg,
	struct sfs_blob_migrate_report *r,
	void (*progress)(void *arg, const struct sfs_blob_migrate_report *r),
	void *arg, struct sfs_err *e) SFS_MUST_CHECK;

#endif
