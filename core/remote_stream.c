/*
 * A remote store's new content sent while it is written (remote_i.h): a
 * stage meant for file {id} (sfs_stage_set_target) that passes a few MiB
 * in order starts one PUT …/files/{id}/content with a chunked body, fed
 * from the stage as its bytes come (sfsi_stage_follow,
 * sfsi_stage_follow_read: from the pipe's memory while it holds them,
 * which the server keeping up finds there, else from the file). The
 * body ends only when the stage is hashed in order, which is the commit's
 * first step, so close() waits for the tail and the server's answer
 * instead of sending every byte after the last write. A stage that turns
 * random (a write out of order, a truncate) or goes without a commit cuts
 * the request off: the server sees the body end early and commits
 * nothing. The answer is checked by the commit as any upload's (size
 * and CRC32C, or sha256, against the stage's); a stream that got no answer
 * leaves the commit to send the stage whole, but for one cut off by the
 * mount's cut (sfs_store_stopping, SIGTERM): that commit fails. With the
 * server's uploads extension the stream goes in a resumable session
 * (remote_parts.c): the stage's file is freed below what the server holds
 * durably, a stream that got no answer resumes from the session's durable
 * offset, and one whose session is gone after bytes were freed fails
 * (EIO, the file keeps its old content on the server).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "remote_i.h"
#include "stage_i.h"
#include "crc32c_i.h"
#include "speechfs/file.h"
#include "speechfs/log.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define API "/api/v1/speech-services"
#define ANSWER_MAX (64 << 20)

struct rstream {
	struct sfs_store *s;
	struct sfs_remote *r;
	struct sfs_stage *st;
	char id[SFS_ID_SIZE];
	unsigned flags;
	char path[224];
	char header[48]; /* Upload-Offset, with a session */
	struct sfsi_rparts parts;
	int has_parts; /* parts made: under the stage's fmu (readers) */
	pthread_t th;
	int cancel; /* read atomically by the source and the transfer */
	int64_t sent;
	int cut; /* the source cut the body off: the stage turned random */
	/* the request's end, the sender's until it is joined */
	enum sfs_status status;
	struct sfs_err err;
	struct sfs_buf answer;
	long code;
	int64_t crc32c;
	uint32_t sent_crc; /* the stage's CRC32C, once the body ended */
};

/*
 * The body: the stage's bytes as they come; its end once the stage is
 * hashed in order; cut off when it turned random, goes, or is cancelled.
 */
static ssize_t source(void *arg, char *buf, size_t len)
{
	struct rstream *x = arg;
	int64_t got;
	ssize_t n;
	int end;

	got = sfsi_stage_follow(x->st, x->sent + 1, &end, &x->cancel);
	if (__atomic_load_n(&x->cancel, __ATOMIC_RELAXED))
		return -1;
	if (end && !sfsi_stage_complete(x->st)) {
		x->cut = 1;
		return -1; /* out of order now: not this body */
	}
	if (got <= x->sent) {
		/* complete, and all of it sent: its CRC32C is the trailer */
		x->sent_crc = sfs_stage_crc32c(x->st);
		return 0;
	}
	if ((int64_t)len > got - x->sent)
		len = (size_t)(got - x->sent);
	n = sfsi_stage_follow_read(x->st, buf, len, x->sent);
	if (n <= 0)
		return -1;
	x->sent += n;
	return n;
}

/* The stream's session was not there (deleted, expired, elsewhere). */
static int upload_gone(const struct rstream *x)
{
	return x->status && x->err.reason == SFS_R_UPLOAD_NOT_FOUND;
}

/* Worth asking again: the session busy (the old body not seen ended). */
static int upload_again(const struct rstream *x)
{
	return x->code == 429 ||
	       (x->status && (x->err.reason == SFS_R_UPLOAD_BUSY ||
			      x->err.reason == SFS_R_UPLOAD_OFFSET_MISMATCH));
}

/*
 * A fresh session's stream was refused upload_not_found: its requests
 * reach another daemon than the one that made it (a balancer without
 * affinity). No more sessions for this process: writes keep a whole
 * local copy (said once).
 */
static int sessions_off;

static void sessions_unreachable(void)
{
	if (!__atomic_exchange_n(&sessions_off, 1, __ATOMIC_RELAXED))
		sfs_warn("remote",
			 "the server's upload sessions are not reachable (a "
			 "balancer without affinity?): writes keep a whole "
			 "local copy");
}

/*
 * A session for the stream when the server has the extension: the body
 * goes to it from offset 0, and the poller frees what it holds durably.
 */
static void start_parts(struct rstream *x, struct sfsi_remote_req *q)
{
	size_t n = strlen(x->path);

	if (!(sfsi_remote_has(x->s) & SFS_REMOTE_UPLOADS) ||
	    __atomic_load_n(&sessions_off, __ATOMIC_RELAXED) ||
	    sfsi_rparts_begin(&x->parts, x->r, x->st, x->id))
		return;
	snprintf(x->path + n, sizeof(x->path) - n, "%supload=%s",
		 strchr(x->path, '?') ? "&" : "?", x->parts.upload);
	snprintf(x->header, sizeof(x->header), "Upload-Offset: 0");
	q->header = x->header;
	pthread_mutex_lock(&x->st->fmu);
	x->has_parts = 1;
	pthread_mutex_unlock(&x->st->fmu);
	sfsi_rparts_poll_start(&x->parts);
	if (!x->parts.polling)
		return;
	/* the writer keeps within reach of what the poller frees */
	pthread_mutex_lock(&x->st->fmu);
	x->st->window = sfsi_remote_window(x->r);
	x->st->window_s = sfsi_remote_timeout(x->r);
	x->st->wstop = sfsi_remote_stop_flag(x->r);
	pthread_mutex_unlock(&x->st->fmu);
}

static void *sender(void *arg)
{
	struct rstream *x = arg;
	struct sfsi_remote_req q = { .method = "PUT",
				     .path = x->path,
				     .fd = -1,
				     .source = source,
				     .source_arg = x,
				     .cancel = &x->cancel,
				     .at_stop = SFSI_STOP_ENDS,
				     .http_code = &x->code,
				     .crc32c = &x->crc32c };

	/* checked by the server before it stores (a server that does not
	 * check it ignores it) */
	if (sfsi_remote_has(x->s) & SFS_REMOTE_CRC32C)
		q.content_crc32c = &x->sent_crc;

	/*
	 * A new file not sent yet is created first, empty (as before the
	 * mount kept its creates): the stream is its content. Here, not in
	 * the write that started the stream: a FUSE write is answered by the
	 * mount's reading thread with the open file's lock held, and must
	 * not wait for the server. Not made: no answer, so the commit sends
	 * the stage whole (with the create, the file still pending).
	 */
	if (sfsi_rpend_send(x->s, x->id, &x->err)) {
		sfs_debug("remote", "no stream of '%s': %s", x->id,
			  x->err.message);
		x->status = SFS_IO;
		sfsi_stage_follow_detach(x->st);
		return NULL;
	}
	start_parts(x, &q);
	x->status = sfsi_remote_request(x->r, &q, &x->answer, &x->err);
	sfsi_stage_follow_detach(x->st);
	/*
	 * An answer at the body's end ended the session (and the poll); a
	 * refusal before it left it (dropped, as a cut one), unless close()
	 * may resume it (none, or busy).
	 */
	sfsi_rparts_poll_stop(&x->parts);
	if (x->parts.upload[0] &&
	    ((!x->code &&
	      (x->cut || __atomic_load_n(&x->cancel, __ATOMIC_RELAXED))) ||
	     (x->code && x->status && !upload_again(x) && !upload_gone(x))))
		sfsi_rparts_drop(&x->parts);
	return NULL;
}

/* The resumed body: the stage's file from x->sent to its end. */
static ssize_t file_source(void *arg, char *buf, size_t len)
{
	struct rstream *x = arg;
	ssize_t n;

	if (x->sent >= x->st->size) {
		x->sent_crc = sfs_stage_crc32c(x->st);
		return 0;
	}
	if ((int64_t)len > x->st->size - x->sent)
		len = (size_t)(x->st->size - x->sent);
	do
		n = pread(x->st->fd, buf, len, x->sent);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	x->sent += n;
	return n;
}

/* The stream again from the server's durable offset d (stage hashed). */
static void resume_put(struct rstream *x, int64_t d)
{
	struct sfsi_remote_req q = { .method = "PUT",
				     .path = x->path,
				     .header = x->header,
				     .fd = -1,
				     .source = file_source,
				     .source_arg = x,
				     .http_code = &x->code,
				     .crc32c = &x->crc32c };

	if (sfsi_remote_has(x->s) & SFS_REMOTE_CRC32C)
		q.content_crc32c = &x->sent_crc;
	snprintf(x->header, sizeof(x->header), "Upload-Offset: %lld",
		 (long long)d);
	x->sent = d;
	x->code = 0;
	sfs_err_init(&x->err);
	sfs_buf_reset(&x->answer);
	x->status = sfsi_remote_request(x->r, &q, &x->answer, &x->err);
}

static int crc_sink(void *arg, const void *data, size_t len)
{
	uint32_t *crc = arg;

	*crc = sfsi_crc32c(*crc, data, len);
	return 0;
}

/*
 * The session is gone with bytes freed: did its commit happen (the
 * answer lost)? The file's size, and its sha256 or the CRC32C of its
 * content (read once), against the stage's. 1: it did, x->answer holds
 * the file as the commit's answer; 0: it did not; -1: no answer. Its
 * requests end when the front end stops, or, with bounded (it stops
 * already), after SFSI_STOPPING_STALL_S seconds without a byte: a PUT whose
 * body went whole before the stop may be committed, and a server that
 * answers still says so (re-read s22 B3; review s23 W4: a bound on the
 * whole download said EIO for a file larger than 2 s of the link).
 */
static int committed_already(struct rstream *x, const char *id, int bounded)
{
	long code = 0;
	struct sfsi_remote_req q = { .method = "GET",
				     .fd = -1,
				     .http_code = &code };
	struct sfs_buf b = SFS_BUF_INIT(0);
	const char *sha = sfs_stage_sha256(x->st);
	char path[160];
	struct sfs_file f;
	struct sfs_err e;
	uint32_t crc = 0;
	int same;

	/* asked again after the cut (bounded): its answer may be "yes" */
	q.at_stop = bounded ? SFSI_STOP_STALLS : SFSI_STOP_ENDS;
	sfs_err_init(&e);
	sfs_buf_reset(&x->answer);
	snprintf(path, sizeof(path), API "/files/%s", id);
	q.path = path;
	if (sfsi_remote_request(x->r, &q, &x->answer, &e))
		return code ? 0 : -1;
	if (sfs_remote_file_decode(x->answer.buf, x->answer.len, &f, &e))
		return 0;
	same = f.size == x->st->size && !f.deleted;
	if (same && sha)
		same = !strcmp(sha, f.sha256);
	sfs_file_release(&f);
	if (!same || sha)
		return same;
	snprintf(path, sizeof(path), API "/files/%s/content", id);
	q.sink = crc_sink;
	q.arg = &crc;
	code = 0;
	if (sfsi_remote_request(x->r, &q, &b, &e))
		same = code ? 0 : -1;
	else
		same = crc == sfs_stage_crc32c(x->st);
	sfs_buf_release(&b);
	return same;
}

/* What one try of resume() came to. */
enum resumed {
	RESUMED, /* x holds the server's answer to the resumed stream */
	AGAIN,	 /* no answer, or the session busy: worth another try */
	GONE,	 /* the session is gone */
	SHORT,	 /* the session holds fewer bytes than were freed */
};

/*
 * One try: the session's durable offset, then the stream again from it;
 * why says what stopped it.
 */
static enum resumed resume_once(struct rstream *x, int64_t freed, char *why,
				size_t size)
{
	struct sfs_err e;
	int64_t d;

	sfs_err_init(&e);
	if (sfsi_rparts_durable(&x->parts, &d, &e)) {
		snprintf(why, size, "%s",
			 e.status == SFS_NOT_FOUND
				 ? "its upload session is gone"
				 : e.message);
		return e.status == SFS_NOT_FOUND ? GONE : AGAIN;
	}
	if (d < freed) {
		snprintf(why, size, "its upload session holds fewer bytes");
		return SHORT;
	}
	resume_put(x, d);
	if (upload_gone(x)) {
		snprintf(why, size, "its upload session is gone");
		return GONE;
	}
	if (x->code && !upload_again(x))
		return RESUMED; /* the commit's answer */
	snprintf(why, size, "%s",
		 x->code ? "its upload session stays busy" : x->err.message);
	return AGAIN;
}

/*
 * How long a close tries to resume a stream whose start was freed:
 * max(60 s, 2 x the timeout), in nanoseconds (sfs_mono_ns).
 */
static int64_t resume_until(struct sfs_remote *r)
{
	int64_t s = 2 * (int64_t)sfsi_remote_timeout(r);

	return sfs_mono_ns() + (s < 60 ? 60 : s) * 1000000000;
}

/* Whether the front end is cut (sfs_store_stopping): a close gives up. */
static int stopping(struct rstream *x)
{
	return sfsi_remote_is_stopping(x->r);
}

/*
 * Wait before the next try: `*pause` seconds (doubled each time, to 8 s
 * at most), never past until, less when the front end stops. 0 when
 * until has come or the front end stops.
 */
static int back_off(struct rstream *x, int64_t until, unsigned *pause)
{
	int64_t left = (until - sfs_mono_ns()) / 1000000;

	if (left <= 0 ||
	    sfsi_remote_wait(x->r, *pause * 1000 < left ? *pause * 1000 : left))
		return 0;
	if (*pause < 8)
		*pause *= 2;
	return 1;
}

/*
 * The stream got no answer: resume it from the session's durable offset.
 * Nothing freed yet: one try, then the stage goes up whole (the session
 * dropped), at once also when the session is busy (the server holds a
 * body it has not seen end until its connection timeout): the whole copy
 * is here, no need to wait for that timeout. Bytes freed: tries again,
 * with a back-off, while the server does not answer (down, restarting,
 * stopped) or says the session is busy, until max(60 s, 2 x the
 * timeout); before giving up, or when the session is gone, the file on
 * the server is checked: the commit may have happened with its answer
 * lost. 0: x holds the answer, or the stage goes up whole; 1: bytes were
 * freed and cannot reach the server (the session dropped when it
 * answers).
 */
static int resume(struct rstream *x, const char *id)
{
	struct sfs_stage *st = x->st;
	int64_t freed, until = resume_until(x->r);
	enum resumed r;
	unsigned pause = 1;
	char why[sizeof(x->err.message)];
	int said = 0, done = 0, bounded;

	pthread_mutex_lock(&st->fmu);
	st->whole = 1;
	freed = st->freed;
	pthread_mutex_unlock(&st->fmu);
	while ((r = resume_once(x, freed, why, sizeof(why))) == AGAIN &&
	       freed) {
		if (!said++)
			sfs_warn("remote",
				 "the upload of '%s' waits for the server to "
				 "resume it (%s)",
				 id, why);
		if (!back_off(x, until, &pause))
			break;
	}
	if (r == RESUMED)
		return 0;
	if (stopping(x))
		snprintf(why, sizeof(why), "the mount is ending");
	x->code = 0;
	bounded = stopping(x);
	if (freed)
		done = committed_already(x, id, bounded);
	/* cut by a stop that came meanwhile: a bounded look */
	if (done < 0 && !bounded && stopping(x))
		done = committed_already(x, id, 1);
	if (done > 0) {
		x->code = 200;
		x->status = SFS_OK;
		x->crc32c = sfs_stage_crc32c(st);
		return 0;
	}
	sfsi_rparts_drop(&x->parts);
	if (!freed)
		return 0; /* sent whole */
	sfs_error("remote",
		  "the upload of '%s' cannot resume: %s, and its first %lld "
		  "bytes were freed from the mount's cache; the file keeps "
		  "the content the server has%s",
		  id, why, (long long)freed,
		  done < 0 ? " (it may be this upload's: the server did not "
			     "answer whether it committed it)"
			   : "");
	return 1;
}

int64_t sfsi_remote_stream_ring(const struct sfs_stage *st)
{
	const struct rstream *x = st->stream;

	if (!x || !(sfsi_remote_has(x->s) & SFS_REMOTE_UPLOADS) ||
	    __atomic_load_n(&sessions_off, __ATOMIC_RELAXED))
		return 0;
	return sfsi_remote_window(x->r);
}

enum sfs_status sfsi_remote_stream_read(struct sfs_stage *st, void *buf,
					size_t len, int64_t off,
					struct sfs_err *e)
{
	struct rstream *x = st->stream;
	int has;

	pthread_mutex_lock(&st->fmu);
	has = x && x->has_parts;
	pthread_mutex_unlock(&st->fmu);
	if (!has)
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"the freed bytes of a file being written have "
				"no upload session");
	return sfsi_rparts_read(&x->parts, buf, len, off, e);
}

enum sfs_status sfsi_remote_stream_whole(struct sfs_stage *st,
					 struct sfs_err *e)
{
	struct rstream *x = st->stream;
	int64_t freed;
	int has;

	/* no punch from now on: the copy is whole again once restored */
	pthread_mutex_lock(&st->fmu);
	st->whole = 1;
	has = x->has_parts;
	freed = st->freed;
	pthread_mutex_unlock(&st->fmu);
	if (!has || !freed)
		return SFS_OK;
	return sfsi_rparts_restore(&x->parts, freed, e);
}

void sfsi_remote_stream_start(struct sfs_store *s, struct sfs_stage *st)
{
	struct rstream *x;

	if (!st->target[0] || !sfs_uuid_valid(st->target) ||
	    !(sfsi_remote_has(s) & SFS_REMOTE_CONTENT))
		return;
	x = calloc(1, sizeof(*x));
	if (!x)
		return;
	x->s = s;
	x->r = sfsi_remote_of(s);
	x->st = st;
	sfs_strlcpy(x->id, st->target, sizeof(x->id));
	x->flags = st->target_flags;
	snprintf(x->path, sizeof(x->path), API "/files/%s/content%s", x->id,
		 x->flags & SFS_SET_LISTENING
			 ? ""
			 : "?generateListeningAudio=false");
	sfs_err_init(&x->err);
	sfs_buf_init(&x->answer, ANSWER_MAX);
	/* before the sender starts: it may detach at once */
	pthread_mutex_lock(&st->fmu);
	st->follow_mem = 1;
	st->fdone = 0;
	pthread_mutex_unlock(&st->fmu);
	if (pthread_create(&x->th, NULL, sender, x)) {
		sfsi_stage_follow_detach(st);
		sfs_buf_release(&x->answer);
		free(x);
		return;
	}
	st->stream = x;
}

/* x's sender joined: the stage has no stream any more. */
static void stream_free(struct rstream *x)
{
	sfsi_rparts_release(&x->parts);
	x->st->stream = NULL;
	sfs_buf_release(&x->answer);
	free(x);
}

/*
 * Cut the request off (unless it is over), join the sender, free x. The
 * source sees the cancel at once; a transfer waiting for the socket (the
 * server stopped reading) sees it within about a second (on_progress),
 * not at the timeout's stall (review s14 finding 2).
 */
static void stream_end(struct rstream *x)
{
	__atomic_store_n(&x->cancel, 1, __ATOMIC_RELAXED);
	sfsi_stage_follow_wake(x->st);
	pthread_join(x->th, NULL);
	stream_free(x);
}

void sfsi_remote_stream_free(struct sfs_store *s, struct sfs_stage *st)
{
	(void)s;
	if (st->stream)
		stream_end(st->stream);
}

int sfsi_remote_stream_take(struct sfs_store *s, struct sfs_stage *st,
			    const char *id, unsigned flags,
			    struct sfs_buf *answer, int64_t *crc32c,
			    enum sfs_status *status, struct sfs_err *e)
{
	struct rstream *x = st->stream;

	(void)s;
	if (!x)
		return 0;
	if (strcmp(x->id, id) || ((x->flags ^ flags) & SFS_SET_LISTENING) ||
	    !sfsi_stage_complete(st)) {
		stream_end(x);
		return 0;
	}
	/* the body ends with the stage: wait for the server's answer */
	pthread_join(x->th, NULL);
	if (x->parts.upload[0] && upload_gone(x) && !st->freed)
		sessions_unreachable();
	/* a resume reads the stage's file from the durable offset */
	if ((!x->code || upload_again(x) || upload_gone(x)) &&
	    x->parts.upload[0] &&
	    (sfsi_stage_pipe_end(st, NULL) || resume(x, id))) {
		x->status = sfs_errf(&x->err, SFS_IO, SFS_R_NONE,
				     "the upload of '%s' cannot be finished "
				     "(its upload session is gone or does not "
				     "answer, bytes were freed): the file "
				     "keeps the content the server has",
				     id);
		x->code = 500;
	}
	/* cut off at the mount's cut (SFSI_STOP_ENDS): not sent again whole */
	if ((!x->code || x->code == 429) && stopping(x)) {
		sfs_err_init(&x->err);
		x->status = sfs_errf(&x->err, SFS_IO, SFS_R_NONE,
				     "the mount is ending: the stream of '%s' "
				     "is cut off before the server's answer "
				     "(the server keeps the file as it was, "
				     "unless it got all of the new content)",
				     id);
		x->code = 500;
	}
	if (!x->code || x->code == 429) {
		sfs_debug("remote",
			  "streaming '%s' got no answer (%s): sent whole", id,
			  x->code ? "429" : x->err.message);
		stream_free(x);
		return 0;
	}
	*status = x->status;
	*crc32c = x->crc32c;
	if (x->status && e)
		*e = x->err;
	sfs_buf_reset(answer);
	if (!x->status && sfs_buf_add(answer, x->answer.buf, x->answer.len))
		*status = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	stream_free(x);
	return 1;
}
