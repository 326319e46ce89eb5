/*
 * The S3 backend's streaming of big sequential stages (an upload, an
 * import, a file copied into the mount): while the stage is received,
 * written and hashed, its full parts go to the object store as a
 * multipart upload under a temporary key "incoming/<random>", a few at a
 * time, read back from the stage's file as soon as they are in it. When
 * the stage is done and its hash known, prepare sends the last part,
 * completes the upload and copies it to the blob's key (Ceph RGW shares
 * the data; a moment) — or aborts it when the tenant has the bytes
 * already. Whatever goes wrong, prepare falls back to sending the whole
 * stage, so streaming only ever saves time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blob_s3_i.h"
#include "speechfs/log.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"

/* CopyObject takes up to 5 GiB: beyond it, no streaming. */
#define COPY_MAX ((int64_t)5 << 30)
#define MAX_SENDERS 8

struct s3_stream {
	struct sfsi_s3_backend *be;
	struct sfs_stage *st;
	char tmp[64];
	int64_t part;
	pthread_mutex_t mu;
	struct sfsi_s3_upload *u;
	int next;   /* parts handed out */
	int cancel; /* read atomically by the transfers */
	int failed;
	char why[256];
	pthread_t th[MAX_SENDERS];
	int nth;
};

static void fail(struct s3_stream *s, const char *why)
{
	pthread_mutex_lock(&s->mu);
	if (!s->failed) {
		s->failed = 1;
		sfs_strlcpy(s->why, why, sizeof(s->why));
	}
	pthread_mutex_unlock(&s->mu);
	__atomic_store_n(&s->cancel, 1, __ATOMIC_RELAXED);
	sfsi_stage_follow_wake(s->st);
}

/* The upload, begun by the first part that is ready. */
static struct sfsi_s3_upload *upload_of(struct s3_stream *s)
{
	struct sfs_err e;
	struct sfsi_s3_upload *u;

	pthread_mutex_lock(&s->mu);
	if (!s->u && !s->failed) {
		sfs_err_init(&e);
		if (sfsi_s3_upload_begin(s->be->c, s->tmp, &s->u, &e)) {
			pthread_mutex_unlock(&s->mu);
			fail(s, e.message);
			return NULL;
		}
	}
	u = s->failed ? NULL : s->u;
	pthread_mutex_unlock(&s->mu);
	return u;
}

/* A sender: the next full part, once it is in the file, then the next. */
static void *sender(void *arg)
{
	struct s3_stream *s = arg;
	struct sfsi_s3_upload *u;
	struct sfs_err e;
	int64_t want, got;
	int n, end;

	for (;;) {
		pthread_mutex_lock(&s->mu);
		n = ++s->next;
		pthread_mutex_unlock(&s->mu);
		want = (int64_t)n * s->part;
		got = sfsi_stage_follow(s->st, want, &end, &s->cancel);
		if (__atomic_load_n(&s->cancel, __ATOMIC_RELAXED) || got < want)
			break; /* stopped, or the stage ended before: the
				  rest is prepare's */
		if (want > COPY_MAX) {
			fail(s, "too big to stream");
			break;
		}
		u = upload_of(s);
		if (!u)
			break;
		sfs_err_init(&e);
		if (sfsi_s3_upload_part(u, n, s->st->fd, want - s->part,
					s->part, NULL, &s->cancel, &e)) {
			fail(s, e.message);
			break;
		}
	}
	return NULL;
}

void sfsi_s3_stream_start(struct sfs_store *s, struct sfs_stage *st)
{
	struct sfsi_s3_backend *be = s->blob_state;
	struct s3_stream *x = calloc(1, sizeof(*x));
	unsigned char r[12];
	int i, n;

	if (!x || sfsi_random(r, sizeof(r))) {
		free(x);
		return;
	}
	x->be = be;
	x->st = st;
	x->part = sfsi_s3_part(be->c);
	memcpy(x->tmp, "incoming/", 9);
	sfsi_hex(r, sizeof(r), x->tmp + 9);
	pthread_mutex_init(&x->mu, NULL);
	n = be->parallel < MAX_SENDERS ? be->parallel : MAX_SENDERS;
	for (i = 0; i < n; i++)
		if (!pthread_create(&x->th[x->nth], NULL, sender, x))
			x->nth++;
	if (!x->nth) {
		pthread_mutex_destroy(&x->mu);
		free(x);
		return;
	}
	st->stream = x;
}

/* Wait for the senders (the stage has ended, or cancel is set). */
static void join(struct s3_stream *x)
{
	int i;

	for (i = 0; i < x->nth; i++)
		pthread_join(x->th[i], NULL);
	x->nth = 0;
}

static void stream_free(struct s3_stream *x, int remove_tmp)
{
	__atomic_store_n(&x->cancel, 1, __ATOMIC_RELAXED);
	sfsi_stage_follow_wake(x->st);
	join(x);
	sfsi_s3_upload_free(x->u); /* aborts it unless completed */
	if (remove_tmp && sfsi_s3_delete(x->be->c, x->tmp, NULL))
		sfs_warn("s3", "cannot remove '%s' (left for fsck)", x->tmp);
	x->st->stream = NULL;
	pthread_mutex_destroy(&x->mu);
	free(x);
}

void sfsi_s3_stream_free(struct sfs_store *s, struct sfs_stage *st)
{
	(void)s;
	if (st->stream)
		stream_free(st->stream, 0);
}

enum sfs_status sfsi_s3_stream_finish(struct sfs_store *s, int64_t tenant,
				      struct sfs_stage *st, int known,
				      int *done, struct sfs_err *e)
{
	struct s3_stream *x = st->stream;
	char key[128];
	int64_t full, rest;
	int completed = 0;
	enum sfs_status ret = SFS_OK;

	(void)s;
	*done = 0;
	join(x); /* the stage is hashed: every full part is sent */
	full = st->size / x->part;
	rest = st->size - full * x->part;
	if (known || x->failed || st->random || !x->u || !full ||
	    st->size > COPY_MAX) {
		if (x->failed)
			sfs_debug("s3", "streaming '%s' gave up: %s", st->sha,
				  x->why);
		stream_free(x, 0);
		return SFS_OK; /* the whole stage goes the usual way */
	}
	if (rest)
		ret = sfsi_s3_upload_part(x->u, (int)full + 1, st->fd,
					  full * x->part, rest, NULL, NULL, e);
	if (!ret)
		ret = sfsi_s3_upload_complete(x->u, (int)(full + !!rest), e);
	completed = !ret;
	sfsi_s3_blob_key(tenant, st->sha, key, sizeof(key));
	if (!ret)
		ret = sfsi_s3_copy(x->be->c, x->tmp, key, e);
	stream_free(x, completed);
	if (!ret)
		*done = 1;
	return ret;
}
