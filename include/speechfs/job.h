/*
 * Persistent jobs: listening-audio generation and URI import live in a
 * table, not in memory. Worker threads of any process claim them
 * atomically under a lease; a job whose lease expired (its process died)
 * is claimed again. Deleting, purging or discarding a file cancels its
 * pending jobs.
 */
#ifndef SPEECHFS_JOB_H
#define SPEECHFS_JOB_H

#include <stdint.h>
#include "auth.h"
#include "err.h"

struct sfs_store;

enum sfs_job_kind {
	SFS_JOB_LISTENING = 1, /* make the listening MP3 */
	SFS_JOB_IMPORT = 2,    /* fetch a URI into the blob store */
	SFS_JOB_TEST = 99,     /* for the tests of the mechanism */
	SFS_JOB_KIND_MAX = 100
};

enum sfs_job_state {
	SFS_JOB_PENDING = 1,
	SFS_JOB_PROCESSING = 2,
	SFS_JOB_DONE = 3,
	SFS_JOB_FAILED = 4,
	SFS_JOB_CANCELLED = 5
};

struct sfs_job {
	int64_t id;
	enum sfs_job_kind kind;
	int64_t file_ino;
	char file_id[SFS_ID_SIZE];
	int64_t owner;
	int attempts;
	char *payload;	/* kind-specific text, may be NULL */
	char token[33]; /* this claim's lease token */
};

void sfs_job_release(struct sfs_job *j);

/*
 * The body of a job kind. Return SFS_OK when done; any other status fails
 * the job with e's message as its stored reason. Runs without a database
 * transaction held; long bodies call sfs_job_renew().
 */
typedef enum sfs_status (*sfs_job_fn)(struct sfs_store *s, struct sfs_job *j,
				      struct sfs_err *e);

/* Install the body of a kind for this store handle (before workers run). */
void sfs_job_set_handler(struct sfs_store *s, enum sfs_job_kind kind,
			 sfs_job_fn fn);

/* Queue a job (used by core; exposed for the test kind). */
enum sfs_status sfs_job_enqueue(struct sfs_store *s, enum sfs_job_kind kind,
				int64_t file_ino, const char *payload,
				int64_t *id_out,
				struct sfs_err *e) SFS_MUST_CHECK;

/* Claim the oldest runnable job of a kind with a handler. NOT_FOUND: none. */
enum sfs_status sfs_job_claim(struct sfs_store *s, struct sfs_job *out,
			      struct sfs_err *e) SFS_MUST_CHECK;
/*
 * Extend the lease; SFS_CONFLICT when the claim was lost (cancelled),
 * SFS_BUSY while sfs_workers_stop() runs. Either way the handler should
 * return that status soon: a job failing during a stop is left for the
 * next claim. (Workers also renew every lease/3 by themselves.)
 */
enum sfs_status sfs_job_renew(struct sfs_store *s, const struct sfs_job *j,
			      struct sfs_err *e) SFS_MUST_CHECK;
/* Run one claimed job's handler and record the outcome. */
enum sfs_status sfs_job_run(struct sfs_store *s, struct sfs_job *j,
			    struct sfs_err *e) SFS_MUST_CHECK;

/* Start n worker threads (0: number of cores) and the janitor. */
enum sfs_status sfs_workers_start(struct sfs_store *s, int n,
				  struct sfs_err *e) SFS_MUST_CHECK;
/* Stop and join them; a job in progress is left for the next claim. */
void sfs_workers_stop(struct sfs_store *s);

/* Wake the workers (a job was queued in this process). */
void sfs_workers_kick(struct sfs_store *s);

/* Jobs by state: fn(arg, kind, state, count) for each non-empty pair. */
enum sfs_status sfs_job_stats(struct sfs_store *s,
			      void (*fn)(void *arg, enum sfs_job_kind kind,
					 enum sfs_job_state st, int64_t n),
			      void *arg, struct sfs_err *e) SFS_MUST_CHECK;

const char *sfs_job_kind_name(enum sfs_job_kind k);
const char *sfs_job_state_name(enum sfs_job_state st);

#endif
