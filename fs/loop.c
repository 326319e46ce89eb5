/*
 * The mount's request loop on libfuse's session: the thread that reads
 * /dev/fuse answers what only looks itself and hands what may wait for
 * the disk to a few workers. Also the signal mask every other thread of
 * the mount takes, so that signals end the loop cleanly.
 */
#include "fs_i.h"
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "speechfs/store.h"
#include "speechfs/banned.h"

/*
 * Threads of the mount do not take SIGTERM/SIGINT/SIGHUP: libfuse's
 * handler must run on the thread that reads the device (main), so that
 * its read is interrupted and the loop sees the session end.
 */
void fs_signals_off(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

void fs_signals_on(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/*
 * libfuse's own loop lets every thread read the device, and the kernel
 * hands each request to the thread that has waited longest: on a
 * sequential walk two threads take turns, each with cold caches and a
 * contended lock (find over 100,000 files: 0.33 s against 0.25 s for one
 * thread). Here one thread reads and answers what only looks (lookup,
 * getattr, xattrs, readdir, open ...) itself, and hands what may wait
 * for the disk or for a database write (read, write, flush, fsync,
 * release, changes of names and attributes) to a few workers, so those
 * run in parallel and never hold up a lookup. Request buffers circulate
 * between the reader and the workers and are never freed on the way.
 */
#define LOOP_SLOTS 64

struct loop {
	struct fuse_session *se;
	pthread_mutex_t mu;
	pthread_cond_t work_cv;
	struct fuse_buf spare[LOOP_SLOTS]; /* free buffers */
	int nspare;
	struct fuse_buf queue[LOOP_SLOTS]; /* requests for the workers */
	int head, nqueued;
	int stop;
	pthread_t *threads;
	int nthreads;
};

/*
 * What the reading thread does with a request, by its opcode: one table
 * for the decision (in_place); an opcode not in it only looks.
 * - LOOKS: answered at once (lookup, getattr, xattrs, readdir, open...).
 * - IO (read, write): a lone one answered at once when it waits for
 *   nothing far away (fs_file_quick_io), else by a worker.
 * - WAITS: it may wait for the disk or the database's lock: a worker.
 * - CHANGE (creates, names, xattrs): a lone one answered at once when
 *   core says its commit will not wait (sfs_store_write_quick: with
 *   -o commit=MS, while the batch is open and its connection free),
 *   else by a worker.
 * - CREATE: as CHANGE, asked whether a new file's create waits
 *   (sfs_store_create_quick: a remote store keeps it until its first
 *   close, so it waits for nothing the lookups do not).
 * - CLOSE (flush, release): as CHANGE, asked with what the close
 *   commits (fs_file_quick_close); one that commits nothing (the
 *   release after a flush that committed) at once.
 */
enum req_kind { LOOKS = 0, IO, WAITS, CHANGE, CREATE, CLOSE };

static const unsigned char req_kinds[] = {
	[FUSE_READ] = IO,
	[FUSE_WRITE] = IO,
	[FUSE_FSYNC] = WAITS,
	[FUSE_FSYNCDIR] = WAITS,
	[FUSE_SETATTR] = WAITS,
	[FUSE_FALLOCATE] = WAITS,
	[FUSE_COPY_FILE_RANGE] = WAITS,
	[FUSE_LSEEK] = WAITS,
	[FUSE_CREATE] = CREATE,
	[FUSE_MKNOD] = CHANGE,
	[FUSE_MKDIR] = CHANGE,
	[FUSE_UNLINK] = CHANGE,
	[FUSE_RMDIR] = CHANGE,
	[FUSE_RENAME] = CHANGE,
	[FUSE_RENAME2] = CHANGE,
	[FUSE_SETXATTR] = CHANGE,
	[FUSE_REMOVEXATTR] = CHANGE,
	[FUSE_FLUSH] = CLOSE,
	[FUSE_RELEASE] = CLOSE,
};

static enum req_kind req_kind(const struct fuse_buf *b)
{
	const struct fuse_in_header *in = b->mem;

	if ((b->flags & FUSE_BUF_IS_FD) || b->size < sizeof(*in) ||
	    in->opcode >= sizeof(req_kinds))
		return LOOKS;
	return (enum req_kind)req_kinds[in->opcode];
}

static void *loop_worker(void *arg)
{
	struct loop *l = arg;
	struct fuse_buf b;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->nqueued && !l->stop)
			pthread_cond_wait(&l->work_cv, &l->mu);
		if (!l->nqueued)
			break;
		b = l->queue[l->head];
		l->head = (l->head + 1) % LOOP_SLOTS;
		l->nqueued--;
		pthread_mutex_unlock(&l->mu);
		fuse_session_process_buf(l->se, &b);
		pthread_mutex_lock(&l->mu);
		l->spare[l->nspare++] = b;
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/*
 * Hand *b to a worker and put a spare buffer in its place; 0 if none.
 * The worker is woken once the lock is let go: woken under it, it found
 * the lock still held and went to sleep on it again (a context switch
 * more per request handed over).
 */
static int hand_off(struct loop *l, struct fuse_buf *b)
{
	int ok = 0;

	pthread_mutex_lock(&l->mu);
	if (l->nspare && l->nqueued < LOOP_SLOTS) {
		l->queue[(l->head + l->nqueued) % LOOP_SLOTS] = *b;
		l->nqueued++;
		*b = l->spare[--l->nspare];
		ok = 1;
	}
	pthread_mutex_unlock(&l->mu);
	if (ok)
		pthread_cond_signal(&l->work_cv);
	return ok;
}

/* No other request waits on the device. */
static int lone(struct fuse_session *se)
{
	struct pollfd p = { .fd = fuse_session_fd(se), .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

/*
 * A read or write that waits for nothing far away (fs_file_quick_io):
 * fuse_read_in and fuse_write_in both start with fh, offset, size.
 */
static int quick_io(const struct fuse_buf *b)
{
	const struct fuse_in_header *in = b->mem;
	const struct fuse_read_in *r = (const void *)(in + 1);

	if (b->size < sizeof(*in) + offsetof(struct fuse_read_in, read_flags))
		return 0;
	return fs_file_quick_io(r->fh, in->opcode == FUSE_WRITE,
				(int64_t)r->offset, r->size);
}

/*
 * Whether the reading thread answers request b itself (req_kinds). A
 * read or write is handed over only while more requests wait (readahead
 * sends several reads at once: they are served in parallel); a lone one
 * (a sequential reader or writer waiting for it) is answered at once,
 * without the hand-over's extra wakeup (cold sequential reads of 1 GiB:
 * ~1,700 -> ~2,800 MB/s, libfuse's loop ~1,700-2,200), unless it would
 * wait for a server or an object store (bytes not fetched yet, a commit
 * of the file running, a writer's base to copy: fs_file_quick_io): a
 * stalled server then holds that reader or writer, not the mount. So is
 * a lone change that core says will not wait: bulk loads of small files with
 * -o commit=MS, 1,000-1,100 -> 1,500-2,500 files/s, the mount's CPU per
 * file 0.72-0.80 -> 0.37-0.53 ms (load 3). A change that would wait (a
 * batch to open: the database's lock and the pause between batches; the
 * batch's connection in use; a blob file to sync) goes to a worker, so
 * the reading thread never waits for it.
 */
static int in_place(struct fuse_session *se, const struct fuse_buf *b)
{
	const struct fuse_in_header *in = b->mem;
	/* fuse_flush_in and fuse_release_in start with the handle */
	const uint64_t *fh = (const void *)(in + 1);

	/* a file's lock is held across a wait: it may be this one's */
	if (fs_file_busy())
		return 0;
	switch (req_kind(b)) {
	case LOOKS:
		return 1;
	case IO:
		return quick_io(b) && lone(se);
	case CHANGE:
		return sfs_store_write_quick(g_fs.store, -1) && lone(se);
	case CREATE:
		return sfs_store_create_quick(g_fs.store) && lone(se);
	case CLOSE:
		return b->size >= sizeof(*in) + sizeof(*fh) &&
		       fs_file_quick_close(*fh) && lone(se);
	case WAITS:
	default:
		return 0;
	}
}

/*
 * Wait until the device has a request, taking SIGTERM/SIGINT/SIGHUP only
 * while waiting: a signal that comes between the loop's look at the
 * session and a blocking read would leave that read waiting for the next
 * request (the mount would not stop on Ctrl-C until something touched
 * it). ppoll unblocks them atomically with the wait; the device is
 * non-blocking, so a request taken back before the read (its caller
 * killed) only means another wait. 0, or -errno (-EINTR on a signal).
 */
static int wait_request(struct fuse_session *se, const sigset_t *sigs)
{
	struct pollfd p = { .fd = fuse_session_fd(se), .events = POLLIN };

	if (ppoll(&p, 1, NULL, sigs) < 0)
		return -errno;
	/* the kernel's EPOLLERR: the connection is gone (see session_end) */
	if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
		return -ENODEV;
	return 0;
}

/*
 * Whether res, from a wait or a read of the device, is the end of the
 * session rather than an error: the kernel ended the connection, the
 * normal way out after an unmount (a lazy one ends it when the last open
 * file closes). A read says ENODEV, or ECONNABORTED when the connection
 * was aborted (fusectl's abort, a connection that asked FUSE_ABORT_ERROR);
 * libfuse turns only ENODEV into an exit, and prints the other as an
 * error. Exit status 0 either way, as after fusermount3 -u.
 */
static int session_end(struct fuse_session *se, int res)
{
	if (res != -ENODEV && res != -ECONNABORTED)
		return 0;
	fuse_session_exit(se);
	return 1;
}

int fs_loop_run(struct fuse_session *se, int nworkers)
{
	struct fuse_buf b;
	struct loop l;
	sigset_t old;
	int i, res, ret = 0;

	memset(&l, 0, sizeof(l));
	memset(&b, 0, sizeof(b));
	l.se = se;
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.work_cv, NULL);
	/* buffers are allocated by libfuse on their first use, then kept */
	l.nspare = nworkers * 2 < LOOP_SLOTS ? nworkers * 2 : LOOP_SLOTS;
	l.threads = calloc((size_t)nworkers, sizeof(*l.threads));
	if (!l.threads)
		nworkers = 0;
	fs_signals_off(&old);
	for (i = 0; i < nworkers; i++)
		if (pthread_create(&l.threads[l.nthreads], NULL, loop_worker,
				   &l) == 0)
			l.nthreads++;
	if (!l.nthreads)
		l.nspare = 0; /* everything inline then */
	/* the signals stay blocked here but in wait_request (and after) */
	fcntl(fuse_session_fd(se), F_SETFL,
	      fcntl(fuse_session_fd(se), F_GETFL) | O_NONBLOCK);
	while (!fuse_session_exited(se)) {
		res = wait_request(se, &old);
		if (!res)
			res = fuse_session_receive_buf(se, &b);
		if (res == -EINTR || res == -EAGAIN)
			continue;
		if (session_end(se, res))
			break;
		if (res <= 0) {
			if (res < 0 && !fuse_session_exited(se))
				ret = -1;
			break;
		}
		if (in_place(se, &b) || !hand_off(&l, &b))
			fuse_session_process_buf(se, &b);
	}
	/*
	 * The change poller may be waiting in the kernel to invalidate an
	 * entry of a directory that a queued request holds locked (a
	 * writer's open, created while the signal came): answer requests
	 * (workers still take handed-off ones) until the poller has
	 * stopped, or the unmount would wait for it for ever.
	 * libfuse's receive drops what it reads once the session has
	 * exited (it returns 0 after the read): the request read was lost
	 * unanswered, its caller and the poller waited for ever (remote
	 * mounts hung at SIGTERM about 1 run in 12; the feed there shows
	 * the mount its own writes, so the poller invalidates while a
	 * writer opens). The exit is taken back for the drain; no signal
	 * comes meanwhile (blocked on every thread here), and the end of
	 * the connection exits the session again.
	 */
	fs_poller_ask_stop();
	if (!fs_poller_ended())
		fuse_session_reset(se);
	while (!fs_poller_ended()) {
		struct pollfd p = { .fd = fuse_session_fd(se),
				    .events = POLLIN };

		if (poll(&p, 1, 50) != 1)
			continue;
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
			break; /* the connection is gone: nothing to answer */
		res = fuse_session_receive_buf(se, &b);
		if (res == -EINTR || res == -EAGAIN)
			continue;
		if (res <= 0)
			break;
		if (in_place(se, &b) || !hand_off(&l, &b))
			fuse_session_process_buf(se, &b);
	}
	fs_signals_on(&old);
	pthread_mutex_lock(&l.mu);
	l.stop = 1;
	pthread_cond_broadcast(&l.work_cv);
	pthread_mutex_unlock(&l.mu);
	for (i = 0; i < l.nthreads; i++)
		pthread_join(l.threads[i], NULL);
	free(b.mem);
	for (i = 0; i < l.nspare; i++)
		free(l.spare[i].mem);
	free(l.threads);
	pthread_cond_destroy(&l.work_cv);
	pthread_mutex_destroy(&l.mu);
	fuse_session_reset(se);
	return ret;
}
