/*
 * Listening audio of a file as the API drives it: generate (or again
 * after a failure), delete (soft, with its own retention), purge. The
 * encoding itself is a job (media.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "blob_i.h"
#include "db_i.h"
#include "dir_i.h"
#include "file_i.h"
#include "job_i.h"
#include "speechfs/audio.h"
#include "speechfs/blob.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "store_i.h"
#include "util_i.h"
#include "remote_i.h"

/*
 * A file's listening audio back to nothing: its job cancelled, its MP3
 * released, its state cleared; wanted (1: pending again) or not (0).
 */
static enum sfs_status reset_listening(struct db *d, int64_t ino, int want,
				       struct sfs_err *e)
{
	enum sfs_status ret;

	ret = sfsi_job_cancel_file(d, ino, SFS_JOB_LISTENING, e);
	if (!ret)
		ret = sfsi_file_release_listening(d, ino, e);
	if (!ret)
		ret = sfsi_exec_ino(
			d,
			"UPDATE file SET la_status = ?2, la_size = NULL,"
			" la_sha256 = NULL, la_created_at = NULL,"
			" la_deleted = 0, la_purged = 0,"
			" la_deleted_at = NULL, la_purged_at = NULL,"
			" la_purge_at = NULL, la_error = NULL,"
			" want_la = ?2 WHERE id = ?1",
			ino, want, e);
	return ret;
}

/* Start (or restart) listening-audio generation of a file. */
enum sfs_status sfsi_file_queue_listening(struct db *d, int64_t ino,
					  struct sfs_err *e)
{
	enum sfs_status ret = reset_listening(d, ino, 1, e);

	if (!ret)
		ret = sfsi_job_enqueue_txn(d, SFS_JOB_LISTENING, ino, NULL,
					   NULL, e);
	return ret;
}

enum sfs_status sfsi_file_clear_listening(struct db *d, int64_t ino,
					  struct sfs_err *e)
{
	return reset_listening(d, ino, 0, e);
}

enum sfs_status sfs_listening_generate(struct sfs_store *s,
				       const struct sfs_actor *a,
				       const char *id, struct sfs_file *out,
				       struct sfs_err *e)
{
	if (s->ops)
		return s->ops->listening_generate(s, id, out, e);
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;

	if (out)
		sfs_file_init(out);
	ret = sfsi_file_begin(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = sfsi_file_need_perm(&f, SFS_PERM_EDIT, "modify", e);
	if (!ret && (f.deleted || f.purged))
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
			       "the file has been deleted");
	else if (!ret && f.discarded)
		ret = sfs_errf(e, SFS_GONE, SFS_R_CONTENT_DISCARDED,
			       "the file's content has been discarded");
	else if (!ret && f.ingestion != SFS_JS_NONE &&
		 f.ingestion != SFS_JS_COMPLETED)
		ret = sfs_errf(e, SFS_NOT_READY, SFS_R_INGESTION_NOT_COMPLETED,
			       "the file's ingestion is not completed");
	else if (!ret && (f.la.deleted || f.la.purged))
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_LISTENING_AUDIO_DELETED,
			       "the listening audio has been deleted");
	else if (!ret && f.la.status != SFS_JS_NONE &&
		 f.la.status != SFS_JS_FAILED)
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_LISTENING_AUDIO_EXISTS,
			       "listening audio already exists or is in "
			       "progress");
	if (!ret)
		ret = sfsi_file_queue_listening(d, f.ino, e);
	ret = sfsi_file_end(s, d, ret, a, &f, out, e);
	if (!ret)
		sfs_workers_kick(s);
	return ret;
}

enum sfs_status sfs_listening_delete(struct sfs_store *s,
				     const struct sfs_actor *a, const char *id,
				     int purge, struct sfs_err *e)
{
	struct sfs_file f;
	struct db_stmt *st;
	struct db *d;
	enum sfs_status ret;
	int64_t now = sfs_now_ms();

	ret = sfsi_file_begin(s, a, id, SFS_SCOPE_DELETE, &d, &f, e);
	if (ret)
		return ret;
	ret = sfsi_file_need_perm(&f, SFS_PERM_OWNER, "delete", e);
	if (!ret && f.la.status == SFS_JS_NONE)
		ret = sfs_errf(e, SFS_NOT_FOUND,
			       SFS_R_LISTENING_AUDIO_NOT_FOUND,
			       "the file has no listening audio");
	else if (!ret && f.la.deleted && !purge)
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_LISTENING_AUDIO_DELETED,
			       "the listening audio is already deleted");
	if (ret)
		goto out;
	ret = sfsi_job_cancel_file(d, f.ino, SFS_JOB_LISTENING, e);
	if (ret)
		goto out;
	if (!f.la.deleted) {
		st = sfsi_db_prep(d,
				  "UPDATE file SET la_deleted = 1,"
				  " la_deleted_at = ?2, la_purge_at = ?3,"
				  " la_status = CASE WHEN la_status IN (1, 2)"
				  " THEN 4 ELSE la_status END,"
				  " la_error = CASE WHEN la_status IN (1, 2)"
				  " THEN 'cancelled: deleted' ELSE la_error END"
				  " WHERE id = ?1",
				  e);
		if (!st) {
			ret = SFS_IO;
			goto out;
		}
		sfsi_db_bind_int(st, 1, f.ino);
		sfsi_db_bind_int(st, 2, now);
		sfsi_db_bind_int(st, 3, now + s->cfg.retention_seconds * 1000);
		ret = sfsi_db_run(st, e);
	}
	if (!ret && purge && !f.la.purged) {
		ret = sfsi_file_release_listening(d, f.ino, e);
		if (!ret)
			ret = sfsi_exec_ino(
				d,
				"UPDATE file SET la_purged = 1,"
				" la_purged_at = ?2, la_purge_at = NULL"
				" WHERE id = ?1",
				f.ino, now, e);
	}
out:
	return sfsi_file_end(s, d, ret, a, &f, NULL, e);
}

enum sfs_status sfs_listening_purge(struct sfs_store *s,
				    const struct sfs_actor *a, const char *id,
				    struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;

	ret = sfsi_file_begin(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = sfsi_file_need_perm(&f, SFS_PERM_OWNER, "purge", e);
	if (!ret && f.la.status == SFS_JS_NONE)
		ret = sfs_errf(e, SFS_NOT_FOUND,
			       SFS_R_LISTENING_AUDIO_NOT_FOUND,
			       "the file has no listening audio");
	else if (!ret && (f.la.status != SFS_JS_COMPLETED || f.la.deleted ||
			  f.la.purged))
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_LISTENING_AUDIO_CONFLICT,
			       "the listening audio is %s",
			       f.la.purged    ? "already purged"
			       : f.la.deleted ? "deleted"
					      : "not completed");
	if (!ret)
		ret = sfsi_file_release_listening(d, f.ino, e);
	if (!ret)
		ret = sfsi_exec_ino(d,
				    "UPDATE file SET la_purged = 1,"
				    " la_purged_at = ?2, la_purge_at = NULL"
				    " WHERE id = ?1",
				    f.ino, sfs_now_ms(), e);
	return sfsi_file_end(s, d, ret, a, &f, NULL, e);
}

/* The listening audio can be read (sfs_file_open's rules). */
static enum sfs_status listening_ready(const struct sfs_file *f,
				       struct sfs_err *e)
{
	if (f->deleted || f->purged)
		return sfs_errf(e, SFS_GONE, SFS_R_FILE_DELETED,
				"the file has been deleted");
	if (f->la.deleted || f->la.purged)
		return sfs_errf(e, SFS_GONE, SFS_R_LISTENING_AUDIO_DELETED,
				"the listening audio has been %s",
				f->la.purged ? "purged" : "deleted");
	if (f->la.status != SFS_JS_COMPLETED)
		return sfs_errf(e, SFS_NOT_READY,
				SFS_R_LISTENING_AUDIO_NOT_READY,
				f->la.status == SFS_JS_NONE
					? "the file has no listening audio"
					: "the listening audio is not ready");
	return SFS_OK;
}

enum sfs_status sfs_listening_peaks(struct sfs_store *s,
				    const struct sfs_actor *a, const char *id,
				    struct sfs_peaks *out, char *la_sha256,
				    struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d = NULL;
	struct db_stmt *st = NULL;
	enum sfs_status ret;
	const void *data;
	size_t n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	sfs_file_init(&f);
	ret = sfs_file_get(s, a, id, &f, e);
	if (!ret)
		ret = listening_ready(&f, e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "SELECT sample_rate, frames, frames_per_peak, data"
			  " FROM peaks WHERE file_id = ?1 AND la_sha256 = ?2",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, f.ino);
	sfsi_db_bind_text(st, 2, f.la.sha256);
	rc = sfsi_db_step(st, e);
	if (rc < 0) {
		ret = SFS_IO;
		goto out;
	}
	if (rc == 0) {
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_PEAKS_NOT_FOUND,
			       "this listening audio was made before the "
			       "store kept waveform peaks; they come when it "
			       "is made again");
		goto out;
	}
	data = sfsi_db_col_blob(st, 3, &n);
	out->sample_rate = (int)sfsi_db_col_int(st, 0);
	out->frames = sfsi_db_col_int(st, 1);
	out->frames_per_peak = sfsi_db_col_int(st, 2);
	out->n = n < SFS_PEAKS_MAX ? n : SFS_PEAKS_MAX;
	if (out->n)
		memcpy(out->v, data, out->n);
	if (la_sha256)
		memcpy(la_sha256, f.la.sha256, sizeof(f.la.sha256));
out:
	sfsi_db_reset(st);
	sfsi_db_put(d);
	sfs_file_release(&f);
	return ret;
}
