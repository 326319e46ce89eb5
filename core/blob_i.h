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

/* blobs/<tenant>/<sha[0:2]>/<sha> into out. */
void sfsi_blob_path(struct sfs_store *s, int64_t tenant, const char *sha256,
		    char *out, size_t size);

#endif
