/*
 * The blob store: immutable, content-addressed files under blobs/, named
 * by SHA-256 and deduplicated within a tenant with reference counts.
 * Bytes come in through a stage (a file under staging/ of this process),
 * hashed as they pass, in constant memory; a stage is committed by the
 * file operations that take it (file.h), which make it durable in the
 * order fsync(file) -> link into blobs/ -> fsync(dir) -> database commit.
 */
#ifndef SPEECHFS_BLOB_H
#define SPEECHFS_BLOB_H

#include <stdint.h>
#include <sys/types.h>
#include "err.h"

struct sfs_store;
struct sfs_stage;

/* Ownership: free with sfs_stage_free() (which discards it if uncommitted). */
enum sfs_status sfs_stage_new(struct sfs_store *s, struct sfs_stage **out,
			      struct sfs_err *e) SFS_MUST_CHECK;

/* Append bytes; hashed as they pass (sequential writes only). */
enum sfs_status sfs_stage_write(struct sfs_stage *st, const void *data,
				size_t len, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Random-access writes (the mount): after the first pwrite or truncate the
 * stage is hashed by reading it back at finish instead of as it passes.
 */
enum sfs_status sfs_stage_pwrite(struct sfs_stage *st, const void *data,
				 size_t len, int64_t off,
				 struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_stage_pread(struct sfs_stage *st, void *data, size_t len,
				int64_t off, size_t *got,
				struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_stage_truncate(struct sfs_stage *st, int64_t size,
				   struct sfs_err *e) SFS_MUST_CHECK;

/* Fill a stage with a copy of an existing blob (for writes that modify). */
enum sfs_status sfs_stage_copy_fd(struct sfs_stage *st, int fd,
				  struct sfs_err *e) SFS_MUST_CHECK;

/* Refuse to grow the stage past this many bytes (SFS_TOO_LARGE). */
void sfs_stage_set_limit(struct sfs_stage *st, int64_t max_bytes);

/* fsync and compute the hash. Called by commit; callable early. */
enum sfs_status sfs_stage_finish(struct sfs_stage *st,
				 struct sfs_err *e) SFS_MUST_CHECK;

int64_t sfs_stage_size(const struct sfs_stage *st);
/* Lowercase hex SHA-256, valid after finish. */
const char *sfs_stage_sha256(const struct sfs_stage *st);
/* The stage's file, for probing (audio) after finish. */
int sfs_stage_fd(const struct sfs_stage *st);
void sfs_stage_free(struct sfs_stage *st);

/* Open a blob for reading (O_RDONLY|O_CLOEXEC). Caller closes the fd. */
enum sfs_status sfs_blob_open(struct sfs_store *s, int64_t tenant,
			      const char *sha256, int *fd, int64_t *size,
			      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * SHA-256 of a whole fd from offset 0 (OpenSSL EVP, reused buffer):
 * lowercase hex into out[65].
 */
enum sfs_status sfs_sha256_fd(int fd, char out[65], int64_t *size,
			      struct sfs_err *e) SFS_MUST_CHECK;

struct sfs_fsck_report {
	int64_t blobs_checked;
	int64_t orphan_files;  /* files under blobs/ with no row */
	int64_t missing_files; /* rows whose file is missing */
	int64_t bad_refcounts; /* refs disagreeing with references */
	int64_t repaired;
};

/*
 * The consistency check: blobs without rows and rows without blobs, and
 * reference counts against the files and listening audio that use them.
 * With repair, orphan files are removed, counts corrected, and files whose
 * blob is missing are marked content-discarded (never silently deleted).
 * `report(arg, line)` gets one line per finding (may be NULL).
 */
enum sfs_status sfs_fsck(struct sfs_store *s, int repair,
			 struct sfs_fsck_report *r,
			 void (*report)(void *arg, const char *line), void *arg,
			 struct sfs_err *e) SFS_MUST_CHECK;

#endif
