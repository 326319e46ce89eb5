/* File internals shared by the core's modules (jobs, media, janitor). */
#ifndef SPEECHFS_FILE_I_H
#define SPEECHFS_FILE_I_H

#include <stdint.h>
#include "speechfs/file.h"

struct db;
struct sfs_store;

/* Load a file by row id without permission checks (workers). */
enum sfs_status file_load_ino(struct db *d, int64_t ino, struct sfs_file *out,
			      struct sfs_err *e) SFS_MUST_CHECK;

/* Release the content blob / listening blob references of a file row. */
enum sfs_status file_release_content(struct db *d, int64_t ino,
				     struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status file_release_listening(struct db *d, int64_t ino,
				       struct sfs_err *e) SFS_MUST_CHECK;

/* Queue listening-audio generation for a file (in a write transaction). */
enum sfs_status file_queue_listening(struct db *d, int64_t ino,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Job outcomes, each in its own write transaction that first checks the
 * file still wants the result (not deleted/purged/discarded meanwhile).
 * `stage` is consumed into the blob store on success.
 */
enum sfs_status file_import_done(struct sfs_store *s, int64_t ino,
				 struct sfs_stage *stage, const char *mime,
				 double duration, struct sfs_err *e)
	SFS_MUST_CHECK;
enum sfs_status file_listening_done(struct sfs_store *s, int64_t ino,
				    struct sfs_stage *stage,
				    struct sfs_err *e) SFS_MUST_CHECK;
/* Record FAILED (or PROCESSING) state of an import/listening job. */
enum sfs_status file_job_state(struct sfs_store *s, int64_t ino, int kind,
			       enum sfs_jstate st, const char *reason,
			       struct sfs_err *e) SFS_MUST_CHECK;

/* Cancel the file's pending jobs (in a write transaction). */
enum sfs_status job_cancel_file(struct db *d, int64_t ino, int kind,
				struct sfs_err *e) SFS_MUST_CHECK;
/* Queue a job inside an open write transaction. */
enum sfs_status job_enqueue_txn(struct db *d, int kind, int64_t ino,
				const char *payload, int64_t *id,
				struct sfs_err *e) SFS_MUST_CHECK;

#endif
