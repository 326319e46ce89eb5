/* File internals shared by the core's modules (jobs, media, janitor). */
#ifndef SPEECHFS_FILE_I_H
#define SPEECHFS_FILE_I_H

#include <stdint.h>
#include "speechfs/file.h"

struct db;
struct sfs_store;

/* Load a file by row id without permission checks (workers). */
enum sfs_status sfsi_file_load_ino(struct db *d, int64_t ino,
				   struct sfs_file *out,
				   struct sfs_err *e) SFS_MUST_CHECK;

/* Release the content blob / listening blob references of a file row. */
enum sfs_status sfsi_file_release_content(struct db *d, int64_t ino,
					  struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfsi_file_release_listening(struct db *d, int64_t ino,
					    struct sfs_err *e) SFS_MUST_CHECK;

/* Queue listening-audio generation for a file (in a write transaction). */
enum sfs_status sfsi_file_queue_listening(struct db *d, int64_t ino,
					  struct sfs_err *e) SFS_MUST_CHECK;

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
enum sfs_status sfsi_file_listening_done(struct sfs_store *s,
					 const struct sfs_job *j,
					 struct sfs_stage *stage,
					 struct sfs_err *e) SFS_MUST_CHECK;
/* Record FAILED (or PROCESSING) state of job j's import/listening audio. */
enum sfs_status sfsi_file_job_state(struct sfs_store *s,
				    const struct sfs_job *j, enum sfs_jstate st,
				    const char *reason,
				    struct sfs_err *e) SFS_MUST_CHECK;

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

/*
 * The columns every file query selects, in the order sfsi_file_from_row reads
 * them; FROM clause aliases: f = file, u = owner user, t = tenant.
 */
#define FILE_COLS                                                              \
	"f.id, f.uuid, f.owner_id, u.uuid, f.tenant_id, t.uuid, f.name,"       \
	" f.filename, f.description, f.dir, f.metadata, f.mime,"               \
	" f.source_uri, f.ingest_error, f.size, f.duration, f.sha256,"         \
	" f.ingestion, f.is_deleted, f.is_purged, f.is_discarded,"             \
	" f.created_at, f.deleted_at, f.purged_at, f.purge_at,"                \
	" f.discarded_at, f.publish, f.published_at, f.la_status,"             \
	" f.la_size, f.la_sha256, f.la_created_at, f.la_deleted,"              \
	" f.la_purged, f.la_deleted_at, f.la_purged_at, f.la_purge_at,"        \
	" f.la_error, f.mtime_ns, f.ctime_ns, f.entry_suffix"
#define FILE_NCOLS 41
#define FILE_FROM                                                              \
	" FROM file f JOIN user u ON u.id = f.owner_id"                        \
	" JOIN tenant t ON t.id = f.tenant_id"

struct db_stmt;

/* Fill f (initialised) from the FILE_COLS of the current row. */
enum sfs_status sfsi_file_from_row(struct db_stmt *st, struct sfs_file *f,
				   struct sfs_err *e) SFS_MUST_CHECK;
/* Load f->tags (sorted case-insensitively). */
enum sfs_status sfsi_file_load_tags(struct db *d, struct sfs_file *f,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Resolve a file for an actor by uuid (or by ino when uuid is NULL):
 * SFS_NOT_FOUND for another tenant's file, a bad id, or a deleted file of
 * someone else; SFS_FORBIDDEN when the actor has no access at all. Fills
 * out->access/perm/shared_by/shared_at.
 */
enum sfs_status sfsi_file_resolve(struct db *d, const struct sfs_actor *a,
				  const char *uuid, int64_t ino,
				  struct sfs_file *out,
				  struct sfs_err *e) SFS_MUST_CHECK;

/* SFS_FORBIDDEN unless the actor's token carries the scope. */
enum sfs_status sfsi_need_scope(const struct sfs_actor *a, unsigned scope,
				struct sfs_err *e) SFS_MUST_CHECK;
