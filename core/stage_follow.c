/*
 * A stage's followers (stage_i.h): threads that read a sequential stage
 * while it is written (the S3 backend's multipart upload, a remote
 * mount's stream of new content). They wait for bytes in the file, and
 * one that reads from memory (follow_mem) copies what the pipe's slots
 * still hold (the pipe of stage_pipe.c publishes them here) and reads the
 * file for what the pipe filled again before it came: it never holds the
 * writer back (sfsi_stage_slot_reusable).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include "stage_i.h"
#include "util_i.h"
#include "speechfs/log.h"
#include "speechfs/util.h"

/* Followers of the stage: `written` bytes are in the file; `end`: no more. */
void sfsi_stage_followers(struct sfs_stage *st, int64_t written, int end)
{
	pthread_mutex_lock(&st->fmu);
	if (written > st->fwritten)
		st->fwritten = written;
	if (written > st->ffile)
		st->ffile = written;
	st->fend |= end;
	pthread_cond_broadcast(&st->fcv);
	pthread_mutex_unlock(&st->fmu);
}

int64_t sfsi_stage_follow(struct sfs_stage *st, int64_t want, int *end,
			  const int *cancel)
{
	int64_t got;

	pthread_mutex_lock(&st->fmu);
	while (st->fwritten < want && !st->fend &&
	       !(cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)))
		pthread_cond_wait(&st->fcv, &st->fmu);
	got = st->fwritten;
	if (end)
		*end = st->fend;
	pthread_mutex_unlock(&st->fmu);
	return got;
}

int sfsi_stage_complete(struct sfs_stage *st)
{
	int done;

	pthread_mutex_lock(&st->fmu);
	done = st->fcomplete;
	pthread_mutex_unlock(&st->fmu);
	return done;
}

void sfsi_stage_follow_wake(struct sfs_stage *st)
{
	pthread_mutex_lock(&st->fmu);
	pthread_cond_broadcast(&st->fcv);
	pthread_mutex_unlock(&st->fmu);
}

/*
 * Whether an append of len bytes would put more than the window above
 * what was freed (fmu held): only while the stream that frees follows
 * the stage (follow_mem: its sender did not end) and may still free.
 */
static int window_full(const struct sfs_stage *st, size_t len)
{
	return st->window && !st->whole && st->follow_mem && !st->fend &&
	       st->size + (int64_t)len - st->freed > st->window;
}

int sfs_stage_write_waits(struct sfs_stage *st, int64_t off, size_t len)
{
	int full;

	if (!st->stream || st->random || off != st->size)
		return 0;
	pthread_mutex_lock(&st->fmu);
	full = window_full(st, len);
	pthread_mutex_unlock(&st->fmu);
	return full;
}

/* The front end stops (fmu held): the window ends (the stream's flag). */
static int window_stopped(const struct sfs_stage *st)
{
	return st->wstop && __atomic_load_n(st->wstop, __ATOMIC_RELAXED);
}

/*
 * The writer's back-pressure: the pages the stream frees (remote_parts.c)
 * are those the writer fills next, instead of fresh memory for all it
 * runs ahead of the server (up to ~600 MiB of 1 GiB, page-cache pages at
 * tens of microseconds each here). The wait ends when the poller frees,
 * the sender ends (detach), the front end is cut (sfs_store_stopping: a
 * flag nothing broadcasts on fcv, looked at every WINDOW_SLICE_MS), or
 * nothing moves (neither freed nor what the sender read) for window_s
 * seconds: the window is off for the stage, which then grows as it did
 * without one; a server gone ends the stream within its timeout too,
 * and close() says what happened. A thread that may not wait (the
 * mount's reading thread: sfs_thread_nowait) writes on: its caller
 * asked sfs_stage_write_waits first, but the window may have been set
 * since (review s22 V4).
 */
#define WINDOW_SLICE_MS 250

void sfs_stage_window_wait(struct sfs_stage *st, size_t len)
{
	int64_t seen = -1, moved, now, until = 0;
	struct timespec t;

	if (sfsi_nowait())
		return;
	pthread_mutex_lock(&st->fmu);
	while (window_full(st, len) && !window_stopped(st)) {
		moved = st->freed + st->fdone;
		now = sfs_mono_ns();
		if (moved != seen) {
			seen = moved;
			until = now + (int64_t)st->window_s * 1000000000;
		} else if (now >= until) {
			sfs_warn("remote",
				 "the server freed nothing of '%s' for %d s: "
				 "its writes go on without a window",
				 st->target, st->window_s);
			st->window = 0;
			break;
		}
		now += (int64_t)WINDOW_SLICE_MS * 1000000;
		sfs_mono_ts(&t, now < until ? now : until);
		pthread_cond_timedwait(&st->fcv, &st->fmu, &t);
	}
	pthread_mutex_unlock(&st->fmu);
}

/*
 * The slot of the pipe's memory holding byte off, pinned (fmu held): a
 * slot handed over (its number below fhead) and not being filled again
 * (above ffill less the slots). NULL: not in memory (any more).
 */
static const char *slot_pin(struct sfs_stage *st, int64_t off, size_t *len)
{
	const struct sfsi_stage_slot *sl;
	unsigned i;

	for (i = 0; st->fmem && i < st->fnslots; i++) {
		sl = &st->fslot[i];
		if (!sl->len || sl->seq >= st->fhead ||
		    sl->seq + st->fnslots <= st->ffill || off < sl->off ||
		    off >= sl->off + (int64_t)sl->len)
			continue;
		if (*len > (size_t)(sl->off + (int64_t)sl->len - off))
			*len = (size_t)(sl->off + (int64_t)sl->len - off);
		st->fpin = sl->seq;
		return st->fmem + (size_t)i * SFSI_PIPE_CHUNK +
		       (size_t)(off - sl->off);
	}
	return NULL;
}

ssize_t sfsi_stage_follow_read(struct sfs_stage *st, void *buf, size_t len,
			       int64_t off)
{
	const char *from;
	ssize_t n;

	pthread_mutex_lock(&st->fmu);
	from = slot_pin(st, off, &len);
	pthread_mutex_unlock(&st->fmu);
	if (from) {
		memcpy(buf, from, len);
		n = (ssize_t)len;
	} else {
		do
			n = pread(st->fd, buf, len, off);
		while (n < 0 && errno == EINTR);
	}
	pthread_mutex_lock(&st->fmu);
	st->fpin = -1;
	if (n > 0)
		st->fdone = off + n;
	pthread_cond_broadcast(&st->fcv);
	pthread_mutex_unlock(&st->fmu);
	return n;
}

void sfsi_stage_follow_detach(struct sfs_stage *st)
{
	pthread_mutex_lock(&st->fmu);
	st->follow_mem = 0;
	pthread_cond_broadcast(&st->fcv);
	pthread_mutex_unlock(&st->fmu);
}

void sfsi_stage_slots_open(struct sfs_stage *st, const char *mem,
			   struct sfsi_stage_slot *slots, unsigned n)
{
	pthread_mutex_lock(&st->fmu);
	st->fmem = mem;
	st->fslot = slots;
	st->fnslots = n;
	memset(slots, 0, n * sizeof(*slots));
	st->fhead = 0;
	st->ffill = 0;
	pthread_mutex_unlock(&st->fmu);
}

void sfsi_stage_slots_close(struct sfs_stage *st, const char *mem)
{
	/* followers read the file from now on; none copies from the slots */
	pthread_mutex_lock(&st->fmu);
	if (st->fmem == mem)
		st->fmem = NULL;
	while (st->fpin >= 0)
		pthread_cond_wait(&st->fcv, &st->fmu);
	st->fslot = NULL;
	st->fnslots = 0;
	st->fring = 0;
	pthread_mutex_unlock(&st->fmu);
}

void sfsi_stage_slot_handed(struct sfs_stage *st, unsigned i, int64_t seq,
			    int64_t off, size_t len)
{
	pthread_mutex_lock(&st->fmu);
	st->fslot[i].seq = seq;
	st->fslot[i].off = off;
	st->fslot[i].len = len;
	st->fhead = seq + 1;
	/*
	 * A memory follower may read it now, before the pipe's writer has
	 * it in the file: the pipe fills the slot again only once its
	 * workers are done with it (pipe_push), and takes the slots back
	 * only once they are done with all (pipe_end), so whatever the
	 * follower no longer finds in a slot is in the file by then.
	 */
	if (st->follow_mem && off + (int64_t)len > st->fwritten) {
		st->fwritten = off + (int64_t)len;
		pthread_cond_broadcast(&st->fcv);
	}
	pthread_mutex_unlock(&st->fmu);
}

/*
 * Wait until the memory of slot i, filled next as number seq, is no
 * follower's: none copies from it (a pin lasts one memcpy). The writer
 * never waits for a follower to read: its wait would be on the network
 * (a remote stream goes at the server's pace), and a FUSE write is
 * answered by the mount's reading thread with the open file's lock
 * held, so a slow or stalled server would hold every request of the
 * mount. A follower that lags reads the bytes it missed from the file
 * (pipe_push hands a slot over again only once the pipe's writer wrote
 * it there; slot_pin no longer offers it).
 */
void sfsi_stage_slot_reusable(struct sfs_stage *st, unsigned i, int64_t seq)
{
	(void)i;
	pthread_mutex_lock(&st->fmu);
	while (st->fpin >= 0 && st->fpin + st->fnslots <= seq)
		pthread_cond_wait(&st->fcv, &st->fmu);
	st->ffill = seq; /* its old bytes are no follower's any more */
	pthread_mutex_unlock(&st->fmu);
}

int64_t sfsi_stage_follower_at(struct sfs_stage *st)
{
	int64_t at = INT64_MAX;

	pthread_mutex_lock(&st->fmu);
	if (st->follow_mem && !st->fend)
		at = st->fdone;
	pthread_mutex_unlock(&st->fmu);
	return at;
}
