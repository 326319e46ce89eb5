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
 * leaves the commit to send the stage whole.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "remote_i.h"
#include "stage_i.h"
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
	char path[160];
	pthread_t th;
	int cancel; /* read atomically by the source and the transfer */
	int64_t sent;
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
	if (end && !sfsi_stage_complete(x->st))
		return -1; /* out of order now: not this body */
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

static void *sender(void *arg)
{
	struct rstream *x = arg;
	struct sfsi_remote_req q = { .method = "PUT",
				     .path = x->path,
				     .fd = -1,
				     .source = source,
				     .source_arg = x,
				     .cancel = &x->cancel,
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
	x->status = sfsi_remote_request(x->r, &q, &x->answer, &x->err);
	sfsi_stage_follow_detach(x->st);
	return NULL;
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
