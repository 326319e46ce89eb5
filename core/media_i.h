/* The media jobs: their kinds and their outcomes (core/media.c). */
#ifndef SPEECHFS_MEDIA_I_H
#define SPEECHFS_MEDIA_I_H

#include <stddef.h>
#include "speechfs/err.h"
#include "speechfs/file.h"

struct sfs_store;
struct sfs_stage;
struct sfs_peaks;

/*
 * Register the listening-audio and URI-import job kinds on a store (at
 * open; tests may set their own handlers after it).
 */
void sfsi_media_install(struct sfs_store *s);

struct sfs_job;

/*
 * Job outcomes of job j (on j->file_ino), each in its own write
 * transaction that first checks the job still holds its claim (not
 * cancelled, not taken over: SFS_CONFLICT otherwise) and the file still
 * wants the result (not deleted/purged/discarded meanwhile).
 * `stage` is consumed into the blob store on success.
 */
enum sfs_status sfsi_file_import_done(struct sfs_store *s,
				      const struct sfs_job *j,
				      struct sfs_stage *stage, const char *mime,
				      double duration,
				      struct sfs_err *e) SFS_MUST_CHECK;
/* `peaks` (may be NULL) are kept beside the listening audio. */
enum sfs_status sfsi_file_listening_done(struct sfs_store *s,
					 const struct sfs_job *j,
					 struct sfs_stage *stage,
					 const struct sfs_peaks *peaks,
					 struct sfs_err *e) SFS_MUST_CHECK;
/* Record FAILED (or PROCESSING) state of job j's import/listening audio. */
enum sfs_status sfsi_file_job_state(struct sfs_store *s,
				    const struct sfs_job *j, enum sfs_jstate st,
				    const char *reason,
				    struct sfs_err *e) SFS_MUST_CHECK;

#endif
