/*
 * One run of the consistency check, shared by fsck.c (the run, file
 * rows without a blob row, tenant usage) and fsck_blobs.c (blob rows,
 * what the backend holds): the run's state, a blob row, and the
 * helpers one calls in the other.
 */
#ifndef SFS_FSCK_RUN_I_H
#define SFS_FSCK_RUN_I_H

#include <stdint.h>
#include "speechfs/err.h"
#include "speechfs/fsck.h"

#define BATCH 256

struct db;
struct sfs_store;

struct fsck {
	struct sfs_store *s;
	struct db *d;
	int repair;
	struct sfs_fsck_report *r;
	void (*report)(void *arg, const char *line);
	void *arg;
	struct sfs_err *e;
};

struct blob_row {
	int64_t tenant;
	char sha[65];
	int64_t size;
	int64_t refs;
	int inl; /* its bytes are in the row (merge_backend's rows only) */
};

/* A line of the report: logged, and given to the caller's report(). */
void sfsi_fsck_say(struct fsck *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The status of the run's failure (SFS_IO when its error has none). */
static inline enum sfs_status sfsi_fsck_fail(struct fsck *c)
{
	return c->e->status ? c->e->status : SFS_IO;
}

/* Is there a blob row (tenant, sha)? 1 yes, 0 no, -1 error. */
int sfsi_fsck_row_exists(struct fsck *c, int64_t tenant, const char *sha,
			 int64_t *size);
/* How many file rows reference the blob (content and listening): 0, or -1. */
int sfsi_fsck_count_refs(struct fsck *c, int64_t tenant, const char *sha,
			 int64_t *n);
/*
 * Are the blob's bytes there: its row's data, else in the backend? 1 yes
 * (*size), 0 no, -1 the backend could not say: never taken for "missing".
 */
int sfsi_fsck_file_present(struct fsck *c, int64_t tenant, const char *sha,
			   int64_t *size);
/* Remove the blob's bytes when no row names them (under the write lock). */
enum sfs_status sfsi_fsck_remove_unreferenced(struct fsck *c, int64_t tenant,
					      const char *sha,
					      int *removed) SFS_MUST_CHECK;

/* fsck_blobs.c: every blob row against its bytes and its references. */
enum sfs_status sfsi_fsck_check_rows(struct fsck *c) SFS_MUST_CHECK;
/* Every blob the backend holds against its row. */
enum sfs_status sfsi_fsck_walk_blobs(struct fsck *c) SFS_MUST_CHECK;
/*
 * Can the backend be listed at all? (A bucket that is missing or
 * unreachable must not make every blob look missing.)
 */
enum sfs_status sfsi_fsck_probe_backend(struct fsck *c) SFS_MUST_CHECK;
/*
 * Both checks at once for a backend that lists a tenant's blobs in sha
 * order: its listing merged with the rows, tenant by tenant.
 */
enum sfs_status sfsi_fsck_merge_backend(struct fsck *c) SFS_MUST_CHECK;

#endif
