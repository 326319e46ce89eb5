/*
 * The blob store's part of a metadata transaction. These run inside a
 * write transaction on `d` and keep blob rows, reference counts, the
 * tenant's byte usage and the files under blobs/ in step.
 */
#ifndef SPEECHFS_BLOB_I_H
#define SPEECHFS_BLOB_I_H

#include <stdint.h>
#include "speechfs/blob.h"

struct db;
struct sfs_stage;
struct sfs_store;

/*
 * Take a reference on the finished stage's content for `tenant`: link it
 * into blobs/ (fsync of the directory) and insert the row, or count one
 * more reference on an existing blob. Must be in a write transaction.
 * *added_bytes is the tenant's growth (0 when deduplicated).
 */
enum sfs_status sfsi_blob_ref_stage(struct db *d, int64_t tenant,
				    struct sfs_stage *st, int64_t *added_bytes,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Hash the stage and freeze it, outside any transaction; sync it unless
 * the tenant has these bytes as a blob already (they are on disk then,
 * and the stage will be dropped). sfsi_blob_ref_stage syncs what is left
 * unsynced if its bytes do become a new blob file after all.
 */
enum sfs_status sfsi_blob_stage_prepare(struct sfs_store *s, int64_t tenant,
					struct sfs_stage *st,
					struct sfs_err *e) SFS_MUST_CHECK;

/* One more reference on an existing blob (e.g. copying a file). */
enum sfs_status sfsi_blob_ref(struct db *d, int64_t tenant, const char *sha256,
			      struct sfs_err *e) SFS_MUST_CHECK;

/* Drop a reference; the last one removes the row and the file. */
enum sfs_status sfsi_blob_unref(struct db *d, int64_t tenant,
				const char *sha256,
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

/* blobs/<tenant>/<sha[0:2]>/<sha> into out. */
void sfsi_blob_path(struct sfs_store *s, int64_t tenant, const char *sha256,
		    char *out, size_t size);

#endif
