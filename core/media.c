/*
 * The two media jobs: listening audio (the original's blob decoded by
 * libsndfile and encoded by LAME into a new blob) and URI import (libcurl
 * into a stage, then probed), their bodies and their outcomes. Both record
 * their progress in the file row so the API shows the jobs' states, both
 * stop early when the file's job is cancelled or the store is closing, and
 * an outcome commits only while its job still holds its claim.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "audio_i.h"
#include "blob_i.h"
#include "stage_i.h"
#include "db_i.h"
#include "file_i.h"
#include "media_i.h"
#include "speechfs/audio.h"
#include "speechfs/blob.h"
#include "speechfs/fetch.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "store_i.h"
#include "util_i.h"

struct job_ctx {
	struct sfs_store *s;
	struct sfs_job *j;
};

/* Called about once a second by the encoder and the transfer. */
static int keep_going(void *arg)
{
	struct job_ctx *c = arg;
	int stop;

	pthread_mutex_lock(&c->s->work_mu);
	stop = c->s->stopping;
	pthread_mutex_unlock(&c->s->work_mu);
	if (stop)
		return 1;
	/* a lost claim means the job was cancelled (file deleted ...) */
	return sfs_job_renew(c->s, c->j, NULL) == SFS_CONFLICT;
}

static enum sfs_status load_file(struct sfs_store *s, int64_t ino,
				 struct sfs_file *f, struct sfs_err *e)
{
	struct db *d = NULL;
	enum sfs_status ret;

	sfs_file_init(f);
	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = sfsi_file_load_ino(d, ino, f, e);
	sfsi_db_put(d);
	return ret;
}

/* Record a failure for the API and hand it to the job. */
static enum sfs_status failed(struct sfs_store *s, const struct sfs_job *j,
			      enum sfs_status st, struct sfs_err *e)
{
	if (st == SFS_CONFLICT && !strcmp(e->message, "cancelled"))
		return st; /* the file's own transition said why */
	if (sfsi_file_job_state(s, j, SFS_JS_FAILED,
				e->message[0] ? e->message : sfs_status_str(st),
				NULL))
		sfs_warn("media", "cannot record the failure of file %lld",
			 (long long)j->file_ino);
	return st;
}

static enum sfs_status do_listening(struct sfs_store *s, struct sfs_job *j,
				    struct sfs_err *e)
{
	struct job_ctx ctx = { s, j };
	struct sfs_audio_opts o;
	struct sfs_stage *st = NULL;
	struct sfs_blob *b = NULL;
	struct sfs_peaks *peaks = NULL;
	struct sfs_file f;
	enum sfs_status ret;
	int fd = -1;

	ret = load_file(s, j->file_ino, &f, e);
	if (ret)
		goto out;
	if (f.deleted || f.la.deleted || f.la.status == SFS_JS_COMPLETED) {
		ret = SFS_OK; /* nothing wanted any more */
		goto out;
	}
	ret = sfsi_file_job_state(s, j, SFS_JS_PROCESSING, NULL, e);
	if (ret)
		goto out;
	if (f.discarded || !f.sha256[0]) {
		ret = sfs_errf(e, SFS_GONE, SFS_R_NONE,
			       "the original content is not available");
		goto fail;
	}
	ret = sfs_blob_open(s, f.tenant, f.sha256, SFS_BLOB_SEQUENTIAL, &b, e);
	/* the decoder wants a file: bytes kept elsewhere are copied first */
	if (!ret && sfs_blob_fd(b) >= 0)
		fd = dup(sfs_blob_fd(b));
	else if (!ret)
		ret = sfsi_blob_local_copy(s, b, &fd, e);
	if (!ret && fd < 0)
		ret = sfsi_errno_status(e, errno, "duplicating a descriptor");
	sfs_blob_close(b);
	b = NULL;
	if (!ret)
		ret = sfs_stage_new(s, &st, e);
	if (ret)
		goto fail;
	peaks = malloc(sizeof(*peaks));
	if (!peaks) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto fail;
	}
	sfs_audio_opts_init(&o);
	o.bitrate_kbps = s->cfg.la_bitrate_kbps;
	o.sample_rate = s->cfg.la_sample_rate;
	o.channels = s->cfg.la_channels;
	o.vbr = s->cfg.la_vbr;
	ret = sfs_audio_encode(fd, st, &o, peaks, keep_going, &ctx, e);
	if (ret)
		goto fail;
	sfsi_crash_point("listening-encoded");
	ret = sfsi_file_listening_done(s, j, st, peaks, e);
	if (ret == SFS_CONFLICT)
		ret = SFS_OK; /* cancelled meanwhile: nothing is kept */
	goto out;
fail:
	ret = failed(s, j, ret, e);
out:
	if (fd >= 0)
		close(fd);
	free(peaks);
	sfs_stage_free(st);
	sfs_file_release(&f);
	return ret;
}

static enum sfs_status do_import(struct sfs_store *s, struct sfs_job *j,
				 struct sfs_err *e)
{
	struct job_ctx ctx = { s, j };
	struct sfs_tenant_info t;
	struct sfs_stage *st = NULL;
	struct sfs_file f;
	enum sfs_status ret;
	int64_t max = 0;
	double duration;
	char mime[96];

	ret = load_file(s, j->file_ino, &f, e);
	if (ret)
		goto out;
	if (f.deleted || f.discarded || f.ingestion == SFS_JS_COMPLETED ||
	    !f.source_uri) {
		ret = SFS_OK;
		goto out;
	}
	ret = sfsi_file_job_state(s, j, SFS_JS_PROCESSING, NULL, e);
	if (ret)
		goto out;
	if (!sfs_tenant_get(s, f.tenant_id, &t, NULL) && t.max_bytes > 0)
		max = t.max_bytes > t.used_bytes ? t.max_bytes - t.used_bytes
						 : 1;
	ret = sfs_stage_new(s, &st, e);
	if (!ret)
		ret = sfs_fetch(&s->cfg, f.source_uri, st, max, keep_going,
				&ctx, e);
	if (ret == SFS_TOO_LARGE && max > 0 && max < s->cfg.import_max_bytes)
		ret = sfs_errf(e, SFS_QUOTA, SFS_R_QUOTA_EXCEEDED,
			       "the tenant's storage quota would be exceeded");
	if (!ret)
		ret = sfs_stage_finish(st, e);
	if (ret)
		goto fail;
	sfsi_audio_probe_stage(st, &duration, mime, sizeof(mime));
	ret = sfsi_file_import_done(s, j, st, mime, duration, e);
	if (ret == SFS_CONFLICT)
		ret = SFS_OK;
	else if (ret)
		goto fail;
	sfs_workers_kick(s); /* listening audio may have been queued */
	goto out;
fail:
	ret = failed(s, j, ret, e);
out:
	sfs_stage_free(st);
	sfs_file_release(&f);
	return ret;
}

/* A media job given up: its file shows FAILED with the reason. */
static void gave_up(struct sfs_store *s, const struct sfs_job *j,
		    const char *why)
{
	if (j->file_ino && sfsi_file_job_state(s, j, SFS_JS_FAILED, why, NULL))
		sfs_warn("media", "cannot record the failure of job %lld",
			 (long long)j->id);
}

void sfsi_media_install(struct sfs_store *s)
{
	sfsi_job_kind_register(s, SFS_JOB_LISTENING, do_listening, gave_up);
	sfsi_job_kind_register(s, SFS_JOB_IMPORT, do_import, gave_up);
}

enum sfs_status sfsi_file_job_state(struct sfs_store *s,
				    const struct sfs_job *j, enum sfs_jstate js,
				    const char *reason, struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t ino = j->file_ino;

	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	ret = sfsi_db_begin(d, e);
	if (!ret)
		ret = sfsi_job_holds(d, j, e);
	if (ret)
		goto out;
	if (j->kind == SFS_JOB_IMPORT)
		st = sfsi_db_prep(d,
				  "UPDATE file SET ingestion = ?2,"
				  " ingest_error = ?3 WHERE id = ?1"
				  " AND ingestion IN (1, 2) AND is_deleted = 0",
				  e);
	else
		st = sfsi_db_prep(
			d,
			"UPDATE file SET la_status = ?2, la_error = ?3"
			" WHERE id = ?1 AND la_status IN (1, 2)"
			" AND la_deleted = 0 AND is_deleted = 0",
			e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, js);
	sfsi_db_bind_text(st, 3, reason);
	ret = sfsi_db_run(st, e);
	if (!ret)
		ret = sfsi_db_commit(d, e);
out:
	if (ret)
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	return ret;
}

/*
 * The start of a job outcome: finish the stage, open a write transaction,
 * insist the job still holds its claim, load the file. On failure *d is
 * released and NULL (f stays initialised).
 */
static enum sfs_status begin_outcome(struct sfs_store *s,
				     const struct sfs_job *j,
				     struct sfs_stage *stage, struct db **d,
				     struct sfs_file *f, struct sfs_err *e)
{
	enum sfs_status ret;

	*d = NULL;
	/*
	 * The bytes go to the blob backend before the write lock is taken
	 * (an object store's upload takes a while); the commit then only
	 * checks them.
	 */
	ret = load_file(s, j->file_ino, f, e);
	if (!ret)
		ret = sfsi_blob_stage_prepare(s, f->tenant, stage, e);
	sfs_file_release(f);
	sfs_file_init(f);
	if (!ret)
		ret = sfsi_db_get(s, d, e);
	if (ret)
		return ret;
	ret = sfsi_blob_begin(*d, stage, 0, e);
	if (!ret)
		ret = sfsi_job_holds(*d, j, e);
	if (!ret)
		ret = sfsi_file_load_ino(*d, j->file_ino, f, e);
	if (ret) {
		sfsi_db_put(*d); /* rolls back */
		*d = NULL;
	}
	return ret;
}

enum sfs_status sfsi_file_import_done(struct sfs_store *s,
				      const struct sfs_job *j,
				      struct sfs_stage *stage, const char *mime,
				      double duration, struct sfs_err *e)
{
	struct sfs_file f;
	struct db_stmt *st;
	struct db *d = NULL;
	enum sfs_status ret;
	int64_t added = 0, ino = j->file_ino;

	ret = begin_outcome(s, j, stage, &d, &f, e);
	if (ret)
		goto out;
	if (f.deleted || f.discarded || f.ingestion != SFS_JS_PROCESSING) {
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
			       "the import was cancelled");
		goto out;
	}
	ret = sfsi_blob_ref_stage(d, f.tenant, stage, &added, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(
		d,
		"UPDATE file SET size = ?2, sha256 = ?3, blob_ref = 1,"
		" ingestion = 3, ingest_error = NULL, mime = ?4,"
		" duration = ?5, mtime_ns = ?6, ctime_ns = ?6"
		" WHERE id = ?1",
		e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, sfs_stage_size(stage));
	sfsi_db_bind_text(st, 3, sfs_stage_sha256(stage));
	sfsi_db_bind_text(st, 4, mime);
	if (duration >= 0)
		sfsi_db_bind_double(st, 5, duration);
	else
		sfsi_db_bind_null(st, 5);
	sfsi_db_bind_int(st, 6, sfs_now_ns());
	ret = sfsi_db_run(st, e);
	if (!ret && f.source_uri && f.la.status == SFS_JS_NONE) {
		struct db_stmt *w = sfsi_db_prep(d,
						 "SELECT want_la FROM file"
						 " WHERE id = ?1",
						 e);
		int want = 0;

		if (!w) {
			ret = SFS_IO;
			goto out;
		}
		sfsi_db_bind_int(w, 1, ino);
		if (sfsi_db_step(w, e) == 1)
			want = (int)sfsi_db_col_int(w, 0);
		sfsi_db_reset(w);
		if (want)
			ret = sfsi_file_queue_listening(d, ino, e);
	}
	if (!ret)
		ret = sfsi_db_commit(d, e);
	if (!ret)
		sfsi_stage_done(stage);
out:
	if (ret && d)
		sfsi_db_rollback(d);
	sfs_file_release(&f);
	sfsi_db_put(d);
	return ret;
}

/* The peaks of the listening audio just made, beside it. */
static enum sfs_status store_peaks(struct db *d, int64_t ino, const char *sha,
				   const struct sfs_peaks *p, struct sfs_err *e)
{
	struct db_stmt *st;

	st = sfsi_db_prep(d,
			  "INSERT INTO peaks(file_id, la_sha256,"
			  " sample_rate, frames, frames_per_peak, data)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
			  " ON CONFLICT(file_id) DO UPDATE SET"
			  " la_sha256 = excluded.la_sha256,"
			  " sample_rate = excluded.sample_rate,"
			  " frames = excluded.frames,"
			  " frames_per_peak = excluded.frames_per_peak,"
			  " data = excluded.data",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_text(st, 2, sha);
	sfsi_db_bind_int(st, 3, p->sample_rate);
	sfsi_db_bind_int(st, 4, p->frames);
	sfsi_db_bind_int(st, 5, p->frames_per_peak);
	sfsi_db_bind_blob(st, 6, p->v, p->n);
	return sfsi_db_run(st, e);
}

enum sfs_status sfsi_file_listening_done(struct sfs_store *s,
					 const struct sfs_job *j,
					 struct sfs_stage *stage,
					 const struct sfs_peaks *peaks,
					 struct sfs_err *e)
{
	struct sfs_file f;
	struct db_stmt *st;
	struct db *d = NULL;
	enum sfs_status ret;
	int64_t added = 0, ino = j->file_ino, ns = sfs_now_ns();

	ret = begin_outcome(s, j, stage, &d, &f, e);
	if (ret)
		goto out;
	if (f.deleted || f.la.deleted || f.la.status != SFS_JS_PROCESSING) {
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
			       "the generation was cancelled");
		goto out;
	}
	ret = sfsi_blob_ref_stage(d, f.tenant, stage, &added, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(
		d,
		"UPDATE file SET la_status = 3, la_size = ?2,"
		" la_sha256 = ?3, la_blob_ref = 1, la_created_at = ?4,"
		" la_error = NULL WHERE id = ?1",
		e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, sfs_stage_size(stage));
	sfsi_db_bind_text(st, 3, sfs_stage_sha256(stage));
	sfsi_db_bind_int(st, 4, ns / 1000000);
	ret = sfsi_db_run(st, e);
	if (!ret && peaks)
		ret = store_peaks(d, ino, sfs_stage_sha256(stage), peaks, e);
	if (!ret)
		ret = sfsi_exec_ino(
			d, "UPDATE file SET ctime_ns = ?2 WHERE id = ?1", ino,
			ns, e);
	if (!ret)
		ret = sfsi_db_commit(d, e);
	if (!ret)
		sfsi_stage_done(stage);
out:
	if (ret && d)
		sfsi_db_rollback(d);
	sfs_file_release(&f);
	sfsi_db_put(d);
	return ret;
}
