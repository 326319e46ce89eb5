/*
 * For tests that play a job worker by hand: claim the job of one kind for
 * one file, as a worker would, so its outcome can be reported with the
 * claim (sfsi_file_job_state, file_*_done).
 */
#ifndef SPEECHFS_TESTJOB_H
#define SPEECHFS_TESTJOB_H

#include "speechfs/job.h"

static enum sfs_status tj_noop(struct sfs_store *s, struct sfs_job *j,
			       struct sfs_err *e)
{
	(void)s;
	(void)j;
	(void)e;
	return SFS_OK;
}

/* Claim the runnable job of `kind` on `ino` (only that kind is claimed). */
static inline enum sfs_status claim_for(struct sfs_store *s, int kind,
					int64_t ino, struct sfs_job *j)
{
	enum sfs_status ret;
	int k;

	for (k = 1; k < SFS_JOB_KIND_MAX; k++)
		sfs_job_set_handler(s, (enum sfs_job_kind)k,
				    k == kind ? tj_noop : NULL);
	for (;;) {
		memset(j, 0, sizeof(*j));
		ret = sfs_job_claim(s, j, NULL);
		if (ret)
			return ret;
		if (j->file_ino == ino)
			return SFS_OK;
		sfs_job_release(j);
	}
}

#endif
