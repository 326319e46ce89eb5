/*
 * The stage struct, shared by the staging (stage.c; its directories in
 * staging.c) and the blob store (blob.c) that links finished stages into
 * blobs/.
 */
#ifndef SPEECHFS_STAGE_I_H
#define SPEECHFS_STAGE_I_H

#include <pthread.h>
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
	int linked;	   /* bytes in the blob backend, commit not seen */
	int inlined;	   /* bytes in the database's row: file spare */
	int64_t linked_tenant;
	char sha[65];
	/*
	 * Set by sfsi_blob_stage_prepare, so that the begin and the
	 * reference decide alike: blobs.inline_max read once, and whether
	 * the reference waits for the backend (bytes outside the row: its
	 * own, or those of the row it dedupes against).
	 */
	int prepared;
	int64_t inline_max;
	int alone;

	/*
	 * A sequential stage can be followed as it is written (the S3
	 * backend sends it while it is received): fwritten bytes are in the
	 * file, in order; fend says no more will come.
	 */
	pthread_mutex_t fmu;
	pthread_cond_t fcv;
	int64_t fwritten;
	int fend;
	int fcomplete; /* fend because it was hashed in order: all there is */
	int stream_tried;
	void *stream; /* the blob backend's (or the remote store's), or NULL */
	char target[40]; /* sfs_stage_set_target's file id, or "" */
	unsigned target_flags;
};

/*
 * Wait until `want` bytes are in the stage's file, or no more will come,
 * or *cancel is set (sfsi_stage_follow_wake wakes the waiters); returns
 * how many are there. *end (may be NULL): no more will come.
 */
int64_t sfsi_stage_follow(struct sfs_stage *st, int64_t want, int *end,
			  const int *cancel);
void sfsi_stage_follow_wake(struct sfs_stage *st);
/* 1 once the stage was hashed in order: the follower has all of it. */
int sfsi_stage_complete(struct sfs_stage *st);

/* Hash the stage if not yet done (no more writes after it). */
enum sfs_status sfsi_stage_hash(struct sfs_stage *st,
				struct sfs_err *e) SFS_MUST_CHECK;

/* The stage's commit happened: nothing to undo, the stage file goes. */
void sfsi_stage_done(struct sfs_stage *st);

/* Make this process's staging directory and hold its lock (store open). */
enum sfs_status sfsi_staging_open(struct sfs_store *s,
				  struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_staging_close(struct sfs_store *s);
/* The store's spare stage files closed (stage.c; staging.c's close). */
void sfsi_stage_spares_close(const struct sfs_store *s);

/*
 * Clean the staging directories of processes that died (store open); a
 * named stage whose commit never happened leaves an orphan blob file,
 * which goes too.
 */
enum sfs_status sfsi_staging_recover(struct sfs_store *s,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The stage's bytes went to the blob backend for a commit that did not
 * happen: remove them unless a row names them (blob.c).
 */
void sfsi_blob_unlink_uncommitted(struct sfs_stage *st);

/* Is blob (tenant, sha) being committed by a live process right now? */
int sfsi_staging_in_flight(struct sfs_store *s, int64_t tenant,
			   const char *sha);

/* How many other processes have the store open right now. */
int sfsi_staging_others(struct sfs_store *s);

#endif
