/*
 * A streamed stage's resumable upload session (remote_i.h): a server
 * with the uploads extension (SFS_REMOTE_UPLOADS) takes the stream of
 * remote_stream.c in a session it makes durable in parts. A poller
 * thread long-polls the session's durable offset on a pooled connection
 * of its own and punches holes in the stage's file below it (what the
 * server holds durably and the stream has sent), so that the pages the
 * writer fills next are those just freed, not fresh memory: writing the
 * whole local copy into fresh page-cache pages was most of the mount's
 * CPU per GiB streamed (work notes writeperf2, parts-mount). What was
 * freed comes back from the session's content (GET …/uploads/U/content)
 * when the stage is read or turns random; a lost stream resumes from the
 * session's durable offset (remote_stream.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "remote_i.h"
#include "stage_i.h"
#include "util_i.h"
#include "speechfs/log.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define API "/api/v1/speech-services"
#define PAGE 4096
#define POLL_S 5 /* the long poll's wait on the server */

/* The session's JSON answer in b: its id (may be NULL) and durable. */
static enum sfs_status session_json(const struct sfs_buf *b, char *id,
				    size_t size, int64_t *durable,
				    struct sfs_err *e)
{
	json_t *j = json_loadb(b->buf, b->len, 0, NULL);
	json_t *d = json_object_get(j, "durable");
	const char *u = json_string_value(json_object_get(j, "id"));
	enum sfs_status st = SFS_OK;

	if (!json_is_integer(d) || json_integer_value(d) < 0 ||
	    (id && (!u || strlen(u) >= size || !u[0])))
		st = sfs_errf(e, SFS_IO, SFS_R_NONE,
			      "the server's upload session answer is not one");
	else {
		*durable = (int64_t)json_integer_value(d);
		if (id)
			sfs_strlcpy(id, u, size);
	}
	json_decref(j);
	return st;
}

int sfsi_rparts_begin(struct sfsi_rparts *p, struct sfs_remote *r,
		      struct sfs_stage *st, const char *file_id)
{
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	/* the stream's sender asks, which a close may be waiting for */
	struct sfsi_remote_req q = { .method = "POST",
				     .fd = -1,
				     .at_stop = SFSI_STOP_ENDS };
	char path[160];
	enum sfs_status ret;
	struct sfs_err e;
	int64_t durable = 0;

	memset(p, 0, sizeof(*p));
	p->r = r;
	p->st = st;
	snprintf(path, sizeof(path), API "/files/%s/uploads", file_id);
	q.path = path;
	sfs_err_init(&e);
	ret = sfsi_remote_request(r, &q, &b, &e);
	if (!ret)
		ret = session_json(&b, p->upload, sizeof(p->upload), &durable,
				   &e);
	sfs_buf_release(&b);
	if (ret || strspn(p->upload, "0123456789abcdef") != strlen(p->upload)) {
		/* streamed as before: kept whole, resent whole */
		sfs_debug("remote", "no upload session for '%s': %s", file_id,
			  ret ? e.message : "a bad id");
		p->upload[0] = '\0';
		return -1;
	}
	snprintf(p->path, sizeof(p->path), API "/files/%s/uploads/%s", file_id,
		 p->upload);
	sfs_cond_init_mono(&p->cv);
	pthread_mutex_init(&p->mu, NULL);
	p->inited = 1;
	return 0;
}

/*
 * The server holds [0, durable) durably: free the stage's file below it,
 * below what the stream has sent (fdone) and what the writer has put in
 * the file (ffile), in whole pages. A pipe that keeps the window in its
 * memory (fring) frees past ffile: its writer then never writes those
 * bytes to the file (stage_pipe.c). Under fmu, so that a reader that
 * turned the stage whole (sfsi_rparts_restore) sees no punch after, and
 * one that reads the file above freed (sfs_stage_pread) none during.
 */
static void punch(struct sfs_stage *st, int64_t durable)
{
	int64_t lim = durable, hole;

	pthread_mutex_lock(&st->fmu);
	if (lim > st->fdone)
		lim = st->fdone;
	if (lim > st->ffile && !st->fring)
		lim = st->ffile;
	lim -= lim % PAGE;
	hole = lim < st->ffile ? lim : st->ffile - st->ffile % PAGE;
	if (!st->whole && lim > st->freed) {
		if (hole <= st->freed ||
		    fallocate(st->fd,
			      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      st->freed, hole - st->freed) == 0)
			st->freed = lim;
		else
			st->whole = 1; /* cannot: the copy stays whole */
		/* a writer waiting for the window (sfs_stage_window_wait) */
		pthread_cond_broadcast(&st->fcv);
	}
	pthread_mutex_unlock(&st->fmu);
}

/*
 * Wait ms milliseconds or until the poller is stopped; 1 when stopped.
 * On the monotonic clock (p->cv is made so): a step of the wall clock
 * neither ends the back-off early nor stretches it by the step.
 */
static int pause_ms(struct sfsi_rparts *p, long ms)
{
	struct timespec t;
	int stop;

	sfs_deadline(&t, ms);
	pthread_mutex_lock(&p->mu);
	while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &t) == 0)
		;
	stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

/*
 * Long-poll the session's durable offset until the session ends (404:
 * the stream's answer ended it) or the poller is stopped; a server that
 * does not answer is asked again each second, one that answers at once
 * without a change (no long poll) every 100 ms.
 */
static void *poller(void *arg)
{
	struct sfsi_rparts *p = arg;
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	struct sfsi_remote_req q = { .method = "GET",
				     .fd = -1,
				     .cancel = &p->stop,
				     .timeout_s = POLL_S + 10,
				     /* the stream's end stops it */
				     .at_stop = SFSI_STOP_WAITS };
	char path[sizeof(p->path) + 48];
	int64_t seen = 0, d, t0; /* t0: sfs_mono_ns */
	enum sfs_status ret;
	struct sfs_err e;

	q.path = path;
	while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
		snprintf(path, sizeof(path), "%s?durableAbove=%lld&timeout=%d",
			 p->path, (long long)seen, POLL_S);
		sfs_err_init(&e);
		sfs_buf_reset(&b);
		t0 = sfs_mono_ns();
		ret = sfsi_remote_request(p->r, &q, &b, &e);
		if (ret == SFS_NOT_FOUND)
			break;
		if (!ret)
			ret = session_json(&b, NULL, 0, &d, &e);
		if (ret) {
			if (pause_ms(p, 1000))
				break;
			continue;
		}
		if (d > seen) {
			seen = d;
			punch(p->st, d);
		} else if (sfs_mono_ns() - t0 < 50 * 1000000 &&
			   pause_ms(p, 100)) {
			break;
		}
	}
	sfs_buf_release(&b);
	return NULL;
}

void sfsi_rparts_poll_start(struct sfsi_rparts *p)
{
	if (p->upload[0] && !pthread_create(&p->th, NULL, poller, p))
		p->polling = 1;
}

void sfsi_rparts_poll_stop(struct sfsi_rparts *p)
{
	if (!p->polling)
		return;
	pthread_mutex_lock(&p->mu);
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	p->polling = 0;
}

void sfsi_rparts_release(struct sfsi_rparts *p)
{
	sfsi_rparts_poll_stop(p);
	if (!p->inited)
		return;
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	p->inited = 0;
}

enum sfs_status sfsi_rparts_durable(struct sfsi_rparts *p, int64_t *durable,
				    struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	/* asked by a close: it ends at the front end's cut (SFSI_STOP_ENDS) */
	struct sfsi_remote_req q = { .method = "GET",
				     .path = p->path,
				     .fd = -1 };
	enum sfs_status ret = sfsi_remote_request(p->r, &q, &b, e);

	if (!ret)
		ret = session_json(&b, NULL, 0, durable, e);
	sfs_buf_release(&b);
	return ret;
}

void sfsi_rparts_drop(struct sfsi_rparts *p)
{
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	struct sfsi_remote_req q = {
		.method = "DELETE",
		.path = p->path,
		.fd = -1,
		.timeout_s = 2,
		.at_stop = SFSI_STOP_WAITS /* also after a cut: 2 s at most */
	};
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfsi_remote_request(p->r, &q, &b, &e))
		sfs_debug("remote", "cannot end the upload session '%s': %s",
			  p->upload, e.message);
	sfs_buf_release(&b);
}

/*
 * len bytes at off of the session's content into sink, which counts
 * them in *got; SFS_WOULD_WAIT on a thread that may not wait, SFS_IO
 * when the server does not give them all (logged).
 */
static enum sfs_status content_get(struct sfsi_rparts *p, int64_t off,
				   int64_t len, sfsi_remote_sink sink,
				   void *arg, const int64_t *got,
				   struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	struct sfsi_remote_req q = { .method = "GET",
				     .fd = -1,
				     .sink = sink,
				     .arg = arg,
				     .off = off,
				     .len = len };
	char path[sizeof(p->path) + 16];
	enum sfs_status ret;

	if (sfsi_would_wait(e, p->path))
		return SFS_WOULD_WAIT;
	snprintf(path, sizeof(path), "%s/content", p->path);
	q.path = path;
	ret = sfsi_remote_request(p->r, &q, &b, e);
	if (!ret && *got != len)
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "short answer");
	sfs_buf_release(&b);
	if (!ret)
		return SFS_OK;
	sfs_error("remote",
		  "cannot read %lld bytes at %lld of a file being written "
		  "from its upload session '%s' (they were freed from the "
		  "mount's cache): %s",
		  (long long)len, (long long)off, p->upload,
		  e ? e->message : "");
	return sfs_errf(e, SFS_IO, SFS_R_NONE,
			"the server no longer gives the bytes of the upload "
			"session '%s'",
			p->upload);
}

struct restore {
	int fd;
	int64_t off;
};

/* The session's bytes into the stage's file where they were. */
static int restore_sink(void *arg, const void *data, size_t len)
{
	struct restore *w = arg;
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfsi_stage_write_all(w->fd, data, len, w->off, &e))
		return SFS_IO;
	w->off += (int64_t)len;
	return 0;
}

enum sfs_status sfsi_rparts_restore(struct sfsi_rparts *p, int64_t freed,
				    struct sfs_err *e)
{
	struct sfs_stage *st = p->st;
	struct restore w = { .fd = st->fd };
	enum sfs_status ret =
		content_get(p, 0, freed, restore_sink, &w, &w.off, e);

	if (ret)
		return ret;
	pthread_mutex_lock(&st->fmu);
	st->freed = 0;
	pthread_mutex_unlock(&st->fmu);
	return SFS_OK;
}

struct piece {
	char *buf;
	int64_t len, got;
};

/* A Range answer's bytes into the reader's buffer, no more than asked. */
static int piece_sink(void *arg, const void *data, size_t len)
{
	struct piece *w = arg;

	if ((int64_t)len > w->len - w->got)
		return SFS_IO;
	memcpy(w->buf + w->got, data, len);
	w->got += (int64_t)len;
	return 0;
}

enum sfs_status sfsi_rparts_read(struct sfsi_rparts *p, void *buf, size_t len,
				 int64_t off, struct sfs_err *e)
{
	struct piece w = { .buf = buf, .len = (int64_t)len };

	if (!len)
		return SFS_OK;
	return content_get(p, off, w.len, piece_sink, &w, &w.got, e);
}
