/*
 * The stage struct, shared by the staging (stage.c) and the blob store
 * (blob.c) that links finished stages into blobs/.
 */
#ifndef SPEECHFS_STAGE_I_H
#define SPEECHFS_STAGE_I_H

#include <stdint.h>
#include <openssl/evp.h>
#include "speechfs/stage.h"

struct pipe;

struct sfs_stage {
	struct sfs_store *s;
	int fd;
	char path[4096];
	EVP_MD_CTX *md;
	int64_t size;
	int64_t limit;
	int64_t synced;	   /* writeback started up to here */
	int64_t written;   /* in the file (size less what the pipe holds) */
	int64_t dropped;   /* written back and out of the cache below */
	struct pipe *pipe; /* writer and hasher threads; NULL: inline */
	int random;	   /* written out of order: hash at finish */
	int hashed;	   /* sha valid, no more writes */
	int finished;	   /* hashed and on disk (fsync) */
	int linked;	   /* linked into blobs/, commit not seen */
	int64_t linked_tenant;
	char sha[65];
};

/* Hash the stage if not yet done (no more writes after it). */
enum sfs_status sfsi_stage_hash(struct sfs_stage *st,
				struct sfs_err *e) SFS_MUST_CHECK;

/* The stage's commit happened: nothing to undo, the stage file goes. */
void sfsi_stage_done(struct sfs_stage *st);

/* Make this process's staging directory and hold its lock (store open). */
enum sfs_status sfsi_staging_open(struct sfs_store *s,
				  struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_staging_close(struct sfs_store *s);

/*
 * Clean the staging directories of processes that died (store open); a
 * named stage whose commit never happened leaves an orphan blob file,
 * which goes too.
 */
enum sfs_status sfsi_staging_recover(struct sfs_store *s,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The stage was linked into blobs/ by a transaction that did not commit:
 * remove the blob file unless a row names it (blob.c).
 */
void sfsi_blob_unlink_uncommitted(struct sfs_stage *st);

#endif
