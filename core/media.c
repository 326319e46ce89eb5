/*
 * The bodies of the two media jobs: listening audio (the original's blob
 * decoded by libsndfile and encoded by LAME into a new blob) and URI import
 * (libcurl into a stage, then probed and committed). Both record their
 * progress in the file row so the API shows the jobs' states, and both
 * stop early when the file's job is cancelled or the store is closing.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "blob_i.h"
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

void sfsi_media_probe(struct sfs_stage *st, double *duration, char *mime,
		      size_t mime_size)
{
	struct sfs_err e;

	sfs_err_init(&e);
	*duration = -1;
	sfs_strlcpy(mime, "application/octet-stream", mime_size);
	if (sfs_audio_probe(sfs_stage_fd(st), duration, mime, mime_size, &e))
		sfs_warn("media", "probe failed: %s", e.message);
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
		ret = sfs_errf(e, SFS_GONE, NULL,
			       "the original content is not available");
		goto fail;
	}
	ret = sfs_blob_open(s, f.tenant, f.sha256, &fd, NULL, e);
	if (!ret)
		ret = sfs_stage_new(s, &st, e);
	if (ret)
		goto fail;
	sfs_audio_opts_init(&o);
	o.bitrate_kbps = s->cfg.la_bitrate_kbps;
	o.sample_rate = s->cfg.la_sample_rate;
	o.channels = s->cfg.la_channels;
	o.vbr = s->cfg.la_vbr;
	ret = sfs_audio_encode(fd, st, &o, keep_going, &ctx, e);
	if (ret)
		goto fail;
	sfsi_crash_point("listening-encoded");
	ret = sfsi_file_listening_done(s, j, st, e);
	if (ret == SFS_CONFLICT)
		ret = SFS_OK; /* cancelled meanwhile: nothing is kept */
	goto out;
fail:
	ret = failed(s, j, ret, e);
out:
	if (fd >= 0)
		close(fd);
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
		ret = sfs_errf(e, SFS_QUOTA, "quota_exceeded",
			       "the tenant's storage quota would be exceeded");
	if (!ret)
		ret = sfs_stage_finish(st, e);
	if (ret)
		goto fail;
	sfsi_media_probe(st, &duration, mime, sizeof(mime));
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

void sfsi_media_install(struct sfs_store *s)
{
	int has_la, has_import;

	pthread_mutex_lock(&s->work_mu);
	has_la = s->handlers[SFS_JOB_LISTENING] != NULL;
	has_import = s->handlers[SFS_JOB_IMPORT] != NULL;
	pthread_mutex_unlock(&s->work_mu);
	if (!has_la)
		sfs_job_set_handler(s, SFS_JOB_LISTENING, do_listening);
	if (!has_import)
		sfs_job_set_handler(s, SFS_JOB_IMPORT, do_import);
}
