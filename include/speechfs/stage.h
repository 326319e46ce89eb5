/*
 * Stages: bytes on their way into the blob store (an upload, a mount's
 * write, an import, an encode), written to a file under staging/ of this
 * process and hashed (SHA-256) as they pass, in constant memory. A stage
 * is handed to the file operation that commits it (file.h).
 */
#ifndef SPEECHFS_STAGE_H
#define SPEECHFS_STAGE_H

#include <stdint.h>
#include <sys/types.h>
#include "err.h"

struct sfs_store;
struct sfs_stage;

/* Ownership: free with sfs_stage_free() (which discards it if uncommitted). */
enum sfs_status sfs_stage_new(struct sfs_store *s, struct sfs_stage **out,
			      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Append bytes; hashed as they pass (sequential writes only). This and
 * sfs_stage_pwrite may wait for a remote store's server at the write
 * window (sfs_stage_write_waits says when), up to its timeout without
 * progress; never on a thread that may not wait (sfs_thread_nowait).
 */
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

/* The same from an open blob, wherever its bytes are (blob.h). */
struct sfs_blob;
enum sfs_status sfs_stage_copy_blob(struct sfs_stage *st, struct sfs_blob *b,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The stage is meant to become the content of file `file_id` (by
 * sfs_file_set_content with `flags`): a remote store may start sending
 * it to the server while it is written in order, so that the commit only
 * waits for the tail. Nothing changes for the caller: the commit still
 * decides, and a stage written out of order, or committed elsewhere,
 * goes up whole at the commit.
 */
void sfs_stage_set_target(struct sfs_stage *st, const char *file_id,
			  unsigned flags);

/*
 * 1 when a write of len bytes at off would wait for the server: a stage
 * a remote store streams keeps what it has not freed within a window
 * (sfs_remote_opts.write_window), and an append past it waits until the
 * server holds more durably (bounded by the connection's timeout). The
 * mount asks before it writes on a thread that must not wait.
 */
int sfs_stage_write_waits(struct sfs_stage *st, int64_t off, size_t len);

/*
 * 1 when a read at off (sfs_stage_pread) may take long: a
 * stage a remote store streams gets bytes it freed from the server, and
 * first puts what it keeps of its window in memory into its file (up to
 * the window). The mount asks before it reads on a thread that must not
 * wait (review s24 W4).
 */
int sfs_stage_read_waits(struct sfs_stage *st, int64_t off);

/*
 * The wait an append of len bytes makes at the window (the one
 * sfs_stage_write makes itself), for a caller that waits with its own
 * locks let go: returns once the append would not pass the window, the
 * window is off (nothing freed for the timeout) or the front end stops
 * (sfs_store_stopping); at once on a thread that may not wait. Meanwhile
 * other threads may call sfs_stage_size, sfs_stage_write_waits and
 * sfs_stage_pread on st, nothing else (no write, truncate, finish, free).
 */
void sfs_stage_window_wait(struct sfs_stage *st, size_t len);

/* Refuse to grow the stage past this many bytes (SFS_TOO_LARGE). */
void sfs_stage_set_limit(struct sfs_stage *st, int64_t max_bytes);

/* fsync and compute the hash. Called by commit; callable early. */
enum sfs_status sfs_stage_finish(struct sfs_stage *st,
				 struct sfs_err *e) SFS_MUST_CHECK;

int64_t sfs_stage_size(const struct sfs_stage *st);
/*
 * Lowercase hex SHA-256, valid after finish (NULL before, and for a
 * remote mount's stage that its server checks by CRC32C alone).
 */
const char *sfs_stage_sha256(const struct sfs_stage *st);
/* The CRC32C of the bytes (RFC 3720's), valid after finish. */
uint32_t sfs_stage_crc32c(const struct sfs_stage *st);
/*
 * The bytes are those whose CRC32C a client computed (crc, sent with
 * them): the stage hashed (its end: nothing more is written to it) and
 * its CRC32C compared. SFS_INVALID with SFS_R_CHECKSUM_MISMATCH when
 * they differ: the bytes changed on their way, and the stage must not
 * be committed (nothing is stored; a file keeps its content).
 */
enum sfs_status sfs_stage_check_crc32c(struct sfs_stage *st, uint32_t crc,
				       struct sfs_err *e) SFS_MUST_CHECK;
/* The stage's file, for probing (audio) after finish. */
int sfs_stage_fd(const struct sfs_stage *st);
void sfs_stage_free(struct sfs_stage *st);

/*
 * SHA-256 of a whole fd from offset 0 (OpenSSL EVP, reused buffer):
 * lowercase hex into out[65].
 */
enum sfs_status sfs_sha256_fd(int fd, char out[65], int64_t *size,
			      struct sfs_err *e) SFS_MUST_CHECK;

#endif
