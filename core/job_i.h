/*
 * The job queue's internals: kinds register their body and what to record
 * when a job is given up; file operations queue and cancel jobs inside
 * their own write transactions; job outcomes check their claim.
 */
#ifndef SPEECHFS_JOB_I_H
#define SPEECHFS_JOB_I_H

#include <stdint.h>
#include "speechfs/job.h"

struct db;

/* A kind of job, as registered with sfsi_job_kind_register. */
struct sfsi_job_kind {
	sfs_job_fn run;
	/*
	 * The job was given up without running (its process died while
	 * running it, every time): record `why` where the kind keeps the
	 * state the users see. May be NULL.
	 */
	void (*gave_up)(struct sfs_store *s, const struct sfs_job *j,
			const char *why);
};

#define SFSI_CHORES_MAX 6

/* Register a kind's body and give-up hook on a store (at open). */
void sfsi_job_kind_register(struct sfs_store *s, enum sfs_job_kind kind,
			    sfs_job_fn run,
			    void (*gave_up)(struct sfs_store *s,
					    const struct sfs_job *j,
					    const char *why));

/*
 * Tell the store's workers to stop (as sfs_workers_stop does) without
 * waiting for them: a job whose handler fails from now on is left for a
 * later claim, not failed (sfs_store_interrupt, before it cancels the
 * statements they may be waiting for). sfs_workers_stop joins them.
 */
void sfsi_workers_stopping(struct sfs_store *s);

/*
 * Add a chore that the janitor thread runs every janitor.interval_ms
 * while the workers run (at open; at most SFSI_CHORES_MAX).
 */
void sfsi_janitor_add(struct sfs_store *s, void (*chore)(struct sfs_store *s));

/*
 * The one chore that the janitor also runs every SFSI_OFTEN_MS between
 * its intervals (the names' index: after a bulk of new files their names
 * wait a second for it, not a minute, so that searches find them with
 * the index, not with LIKE over all that wait). It must cost next to
 * nothing when it has nothing to do.
 */
#define SFSI_OFTEN_MS 1000
void sfsi_janitor_often(struct sfs_store *s,
			void (*chore)(struct sfs_store *s));

/* In a transaction: SFS_CONFLICT unless job j still holds its claim. */
enum sfs_status sfsi_job_holds(struct db *d, const struct sfs_job *j,
			       struct sfs_err *e) SFS_MUST_CHECK;

/* Cancel the file's pending jobs (in a write transaction). */
enum sfs_status sfsi_job_cancel_file(struct db *d, int64_t ino, int kind,
				     struct sfs_err *e) SFS_MUST_CHECK;
/* Queue a job inside an open write transaction. */
enum sfs_status sfsi_job_enqueue_txn(struct db *d, int kind, int64_t ino,
				     const char *payload, int64_t *id,
				     struct sfs_err *e) SFS_MUST_CHECK;

#endif
