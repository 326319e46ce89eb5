/*
 * The mount's request loop on libfuse's session: the thread that reads
 * /dev/fuse answers what only looks itself and hands what may wait for
 * the disk to a few workers; a close's flush it answers itself while
 * another thread reads in its place. Also the signal mask every other
 * thread of the mount takes, so that signals end the loop cleanly.
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

/*
 * Threads of the mount do not take SIGTERM/SIGINT/SIGHUP: libfuse's
 * handler must run on the thread that reads the device (the one holding
 * the reading role, see below), so that its wait is interrupted and the
 * loop sees the session end.
 */
static void loop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

void fs_signals_off(sigset_t *old)
{
	sigset_t set;

	loop_signals(&set);
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
 * release, changes of names and attributes) to workers, so those run in
 * parallel and never hold up a lookup. Request buffers circulate
 * between the reader and the workers and are never freed on the way.
 *
 * A handed-off request never waits for a worker: when none is idle,
 * another is started, up to the mount's most (-o max_threads, LOOP_MAX
 * by default), and one more than the kept few (LOOP_KEPT) that finds nothing to
 * do for a while ends. Calls that wait for a stalled server (a remote
 * mount's closes, renames, uncached reads) so hold only themselves,
 * however many they are: with a fixed ten workers, ten such calls held
 * every request handed over after them, and twenty took every spare
 * buffer, so the reading thread answered the next request itself and
 * waited with it (review s15 finding 2: 32 closes of a stalled server's
 * files held a create elsewhere). Buffers grow likewise, up to two per
 * worker, and go back to the kept number as extra workers end.
 *
 * A close's flush that would be handed over (its upload, its commit) is
 * answered by the thread that read it (1,000 creates on a remote mount
 * against the hand-off: the mount's CPU -14 to -34 % and 8.5 -> 6.1-6.6
 * context switches a file in every run; files/s +18 % under perf stat,
 * +31 % and -8 % in two runs without it). That thread must not wait for a
 * server while it is the only one reading, so it first arms the
 * standby: one thread of the pool asleep in epoll_wait on a set (sfd)
 * that holds the device and a signalfd of the loop's signals only while
 * armed. A request that comes during the flush (or a signal) wakes the
 * standby, which takes the reading role and reads and serves as the
 * reader did (the same rules); the reader, its flush answered, becomes
 * the standby. Nothing coming (the writer waits in its close), the
 * reader disarms just before it answers (fs_loop_answering) and reads
 * on: no thread woke. (Handing the role to a worker woken at every flush
 * cost what the hand-off does: the wake-up is the cost.) The reading
 * role is a token held by one thread at a time (main first); arming
 * lends it to the standby until disarmed, and whoever takes it under
 * l->mu holds it. Without a standby (it reads while the flush's reader
 * waits for a server), a free buffer, or while draining, the flush is
 * handed over as before. The standby's buffer to read into is taken as
 * a hand-off takes one; the flush's becomes a spare if the role moved.
 *
 * Signals: blocked on every thread but in the role holder's ppoll
 * (wait_request). One that comes while a flush is kept stays pending for
 * the process; the armed standby's signalfd wakes it, and its ppoll
 * takes the signal. So only the holder sees the session end, drains it
 * (loop_drain) and stops the pool; no other thread reads meanwhile. A
 * flush still waiting for a stalled server holds the loop's end as a
 * handed-over one did.
 */
#define LOOP_IDLE_S 2 /* an extra worker's idle life, seconds */

struct loop {
	struct fuse_session *se;
	const sigset_t *sigs; /* the mask the reader's ppoll takes */
	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* a request queued, or stop */
	pthread_cond_t done_cv; /* the last worker ended */
	struct fuse_buf *spare; /* free buffers, nbufs at most */
	struct fuse_buf *queue; /* requests for the workers: a ring */
	struct fuse_buf role;	/* the standby's buffer, while armed */
	int nspare, head, nqueued;
	int nbufs, maxbufs;   /* buffers made (the reader's not counted) */
	int nthreads, idle;   /* workers running (main not), waiting for work */
	int kept, max;	      /* workers that stay, the most */
	int sfd, sigfd, kick; /* the standby's epoll set, signals, stop */
	int standby;	      /* a thread is the standby */
	int armed;	      /* a flush is kept: the role is the standby's */
	int draining;	      /* the session ended: the role stays */
	int signalled;	      /* a signal ended it (not an unmount) */
	int ended;	      /* the pool ended: cut_watch's end (eventfd) */
	pthread_t watch;      /* cut_watch, while ended >= 0 */
	int stop;
	int ret; /* the loop's result: 0, or -1 on a read's error */
};

/*
 * What the reading thread does with a request, by its opcode: one table
 * for the decision (in_place); an opcode not in it only looks.
 * - LOOKS: begun at once (lookup, getattr, xattrs, readdir, open...),
 *   given to a worker if it would ask a server (serve_one).
 * - SESSION (init, destroy, interrupt, forget): answered at once.
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
 *   commits (fs_file_quick_close); one that only frees memory (the
 *   release after a flush that committed) at once, even while other
 *   requests wait: handed over, it cost the worker's wake-up and two
 *   context switches per file written, for a few microseconds of work.
 */
enum req_kind { LOOKS = 0, IO, WAITS, CHANGE, CREATE, CLOSE, SESSION };

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
	[FUSE_INIT] = SESSION,
	[FUSE_DESTROY] = SESSION,
	[FUSE_INTERRUPT] = SESSION,
	[FUSE_FORGET] = SESSION,
	[FUSE_BATCH_FORGET] = SESSION,
};

static enum req_kind req_kind(const struct fuse_buf *b)
{
	const struct fuse_in_header *in = b->mem;

	if ((b->flags & FUSE_BUF_IS_FD) || b->size < sizeof(*in) ||
	    in->opcode >= sizeof(req_kinds))
		return LOOKS;
	return (enum req_kind)req_kinds[in->opcode];
}

static void *loop_worker(void *arg);

/* One more worker; the reader's signal mask is every worker's. */
static int start_worker(struct loop *l)
{
	pthread_attr_t a;
	pthread_t t;
	int res;

	if (pthread_attr_init(&a))
		return -1;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	res = pthread_create(&t, &a, loop_worker, l);
	pthread_attr_destroy(&a);
	return res ? -1 : 0;
}

/*
 * Wait for a request (l->mu held); 0 when the thread is to end: at stop,
 * or (a worker) idle for LOOP_IDLE_S while more than the kept ones run.
 */
static int wait_work(struct loop *l, int is_main)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += LOOP_IDLE_S;
	l->idle++;
	while (!l->nqueued && !l->stop) {
		if (is_main || l->nthreads <= l->kept)
			pthread_cond_wait(&l->work_cv, &l->mu);
		else if (pthread_cond_timedwait(&l->work_cv, &l->mu, &until) ==
				 ETIMEDOUT &&
			 !l->nqueued && l->nthreads > l->kept)
			break; /* still one too many: this one ends */
	}
	l->idle--;
	return l->nqueued > 0;
}

/* A buffer answered goes back to the spare ones (l->mu held). */
static void put_spare(struct loop *l, const struct fuse_buf *b)
{
	l->spare[l->nspare++] = *b;
}

static void read_role(struct loop *l, struct fuse_buf *b);
static int watch(struct loop *l, int op);

/*
 * Be the standby (l->mu held, let go while waiting): sleep until a
 * flush's reader arms it and a request or a signal comes, then take the
 * reading role and read (read_role); or until stop.
 */
static void standby(struct loop *l)
{
	struct epoll_event ev[3];
	struct fuse_buf b;

	l->standby = 1;
	while (!l->armed && !l->stop) {
		pthread_mutex_unlock(&l->mu);
		epoll_wait(l->sfd, ev, 3, -1);
		pthread_mutex_lock(&l->mu);
	}
	l->standby = 0;
	if (!l->armed)
		return;
	watch(l, EPOLL_CTL_DEL); /* taken: no longer armed */
	l->armed = 0;
	b = l->role;
	pthread_mutex_unlock(&l->mu);
	read_role(l, &b);
	pthread_mutex_lock(&l->mu);
}

/*
 * A thread of the pool: the standby when there is none and no request is
 * queued, else a worker for queued requests (a worker started for one
 * took the standby's place, and the request waited in the queue for as
 * long as a stalled server held every other thread). Returns at stop,
 * or (a worker) when one too many.
 */
static void loop_thread(struct loop *l, int is_main)
{
	struct fuse_buf b;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		if (!l->standby && !l->nqueued && !l->stop) {
			standby(l);
			continue;
		}
		if (!wait_work(l, is_main))
			break;
		b = l->queue[l->head];
		l->head = (l->head + 1) % l->maxbufs;
		l->nqueued--;
		pthread_mutex_unlock(&l->mu);
		fuse_session_process_buf(l->se, &b);
		pthread_mutex_lock(&l->mu);
		put_spare(l, &b);
	}
	pthread_mutex_unlock(&l->mu);
}

static void *loop_worker(void *arg)
{
	struct loop *l = arg;

	loop_thread(l, 0);
	pthread_mutex_lock(&l->mu);
	/* the buffers beyond the kept ones' go with the extra workers */
	while (l->nbufs > 2 * l->kept && l->nspare) {
		free(l->spare[--l->nspare].mem);
		l->nbufs--;
	}
	if (!--l->nthreads)
		pthread_cond_broadcast(&l->done_cv);
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/*
 * Hand *b to a worker and put a free buffer in its place (a spare one,
 * or a new one libfuse fills on its first read); 0 if every buffer is
 * taken. A worker is started when none is idle to take it. The worker
 * is woken once the lock is let go: woken under it, it found the lock
 * still held and went to sleep on it again (a context switch more per
 * request handed over).
 */
static int hand_off(struct loop *l, struct fuse_buf *b)
{
	int more = 0;

	pthread_mutex_lock(&l->mu);
	if (!l->nspare && l->nbufs == l->maxbufs) {
		pthread_mutex_unlock(&l->mu);
		return 0;
	}
	l->queue[(l->head + l->nqueued) % l->maxbufs] = *b;
	l->nqueued++;
	if (l->nspare) {
		*b = l->spare[--l->nspare];
	} else {
		memset(b, 0, sizeof(*b));
		l->nbufs++;
	}
	if (l->nqueued > l->idle && l->nthreads < l->max) {
		l->nthreads++;
		more = 1;
	}
	pthread_mutex_unlock(&l->mu);
	if (more && start_worker(l)) {
		/* the running ones take it in turn */
		pthread_mutex_lock(&l->mu);
		l->nthreads--;
		pthread_mutex_unlock(&l->mu);
	}
	pthread_cond_signal(&l->work_cv);
	return 1;
}

/* Put the device and the signals in the standby's set, or out (op). */
static int watch(struct loop *l, int op)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (epoll_ctl(l->sfd, op, fuse_session_fd(l->se), &ev))
		return -1;
	return epoll_ctl(l->sfd, op, l->sigfd, &ev);
}

/*
 * Arm the standby to read in this thread's place while it answers flush
 * b (with a free buffer to read into, taken as hand_off takes one); 0
 * when b is no flush, there is no standby or no free buffer, or the
 * session is being drained (its holder reads until the poller stops).
 */
static int arm(struct loop *l, const struct fuse_buf *b)
{
	const struct fuse_in_header *in = b->mem;
	int ok = 0;

	if ((b->flags & FUSE_BUF_IS_FD) || in->opcode != FUSE_FLUSH)
		return 0;
	/* the set holds the device exactly while armed (under l->mu) */
	pthread_mutex_lock(&l->mu);
	if (l->standby && !l->draining &&
	    (l->nspare || l->nbufs < l->maxbufs)) {
		ok = !watch(l, EPOLL_CTL_ADD);
		if (!ok)
			watch(l, EPOLL_CTL_DEL);
	}
	if (ok) {
		if (l->nspare) {
			l->role = l->spare[--l->nspare];
		} else {
			memset(&l->role, 0, sizeof(l->role));
			l->nbufs++;
		}
		l->armed = 1;
	}
	pthread_mutex_unlock(&l->mu);
	return ok;
}

/*
 * Disarm the standby: 1 when the role is still this thread's (the
 * standby's buffer back with the spare ones), 0 when the standby took it.
 */
static int disarm(struct loop *l)
{
	int still;

	pthread_mutex_lock(&l->mu);
	still = l->armed;
	if (still) {
		watch(l, EPOLL_CTL_DEL);
		l->armed = 0;
		put_spare(l, &l->role);
	}
	pthread_mutex_unlock(&l->mu);
	return still;
}

/*
 * The loop whose standby this thread armed while it answers a flush, and
 * whether it still reads once disarmed (-1: not yet). It disarms just
 * before the flush's answer (fs_loop_answering): disarmed after it, the
 * writer's release, sent as its close returns, woke the standby for 1
 * file in 4 (1,000 creates), which took the role: ~0.9 context switches
 * a file more.
 */
static __thread struct loop *armed_by;
static __thread int still_reads;

void fs_loop_answering(void)
{
	if (armed_by && still_reads < 0)
		still_reads = disarm(armed_by);
}

/*
 * Answer flush b with the standby armed (arm): 1 when this thread still
 * reads afterwards, 0 when the standby took the role (b is a spare
 * buffer then).
 */
static int answer_kept(struct loop *l, struct fuse_buf *b)
{
	armed_by = l;
	still_reads = -1;
	fuse_session_process_buf(l->se, b);
	fs_loop_answering(); /* libfuse answered it (a bad request) */
	armed_by = NULL;
	if (still_reads)
		return 1;
	pthread_mutex_lock(&l->mu);
	put_spare(l, b);
	pthread_mutex_unlock(&l->mu);
	return 0;
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
 * of the file running, a writer's base to copy, a stream's write window
 * full: fs_file_quick_io): a
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
	int quick;

	/* a file's lock is held across a wait: it may be this one's */
	if (fs_file_busy())
		return 0;
	switch (req_kind(b)) {
	case LOOKS:
	case SESSION:
		return 1;
	case IO:
		return quick_io(b) && lone(se);
	case CHANGE:
		return sfs_store_write_quick(g_fs.store, -1) && lone(se);
	case CREATE:
		return sfs_store_create_quick(g_fs.store) && lone(se);
	case CLOSE:
		if (b->size < sizeof(*in) + sizeof(*fh))
			return 0;
		quick = fs_file_quick_close(*fh);
		return quick == FS_CLOSE_FREES || (quick && lone(se));
	case WAITS:
	default:
		return 0;
	}
}

/*
 * Answer request b, or give it to a worker. What only looks is begun
 * here unable to wait for a server (fs_nowait_begin): a lookup, a stat
 * or a listing the caches answer takes microseconds, one that would ask
 * a remote store's server (a directory not listed yet, a file's first
 * open) is left unanswered at its first request, and a worker begins it
 * again (as io_uring punts a call that would block to its workers). The
 * reading thread so never waits for a server: before, an `ls` of a
 * directory not listed yet held every request of the mount while the
 * server stalled, for the whole timeout. A read, write or close
 * answered here is begun so too, and so is what takes an open file's
 * lock: in_place looked at fs_file_busy() once, and a worker that
 * takes the lock later and holds it across a wait far away (a base to
 * copy, bytes to fetch) or a commit of the file under way are left to
 * a worker too, not waited for (review s16 F9). The buffer read from
 * the device is not changed by its processing. Without a free buffer
 * (every one is taken, which the pool's size makes rare) a request is
 * answered here, waiting if it must. A flush to hand over is answered
 * here while the standby is armed (arm): 0 when the standby took the
 * reading role meanwhile, this thread no longer reads; else 1.
 */
static int serve_one(struct loop *l, struct fuse_buf *b)
{
	const struct fuse_in_header *in = b->mem;
	enum req_kind kind = req_kind(b);
	int punts = !(b->flags & FUSE_BUF_IS_FD) &&
		    (kind == LOOKS || kind == IO || kind == CLOSE);
	int res;

	if (!in_place(l->se, b)) {
		if (arm(l, b))
			return answer_kept(l, b);
		if (!hand_off(l, b))
			fuse_session_process_buf(l->se, b);
		return 1;
	}
	/* a close's commit is the core's, begun: only fs/ waits refused */
	if (punts)
		fs_nowait_begin(kind != CLOSE);
	fuse_session_process_buf(l->se, b);
	if (!punts)
		return 1;
	res = fs_nowait_end();
	if (res < 0) /* the e2e tests fail on this line */
		sfs_error("fs",
			  "request %u answered without the server's "
			  "answer it needed",
			  in->opcode);
	if (res > 0 && !hand_off(l, b))
		fuse_session_process_buf(l->se, b);
	return 1;
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

/*
 * The standby's epoll set (the device and the signals added while armed)
 * and its stop (kick, an eventfd). 0, or -1.
 */
static int standby_init(struct loop *l)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t set;

	loop_signals(&set);
	l->sfd = epoll_create1(EPOLL_CLOEXEC);
	l->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	l->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->sfd >= 0 && l->sigfd >= 0 && l->kick >= 0 &&
	    !epoll_ctl(l->sfd, EPOLL_CTL_ADD, l->kick, &ev))
		return 0;
	return -1;
}

static void standby_end(struct loop *l)
{
	if (l->sfd >= 0)
		close(l->sfd);
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->kick >= 0)
		close(l->kick);
}

/*
 * The pool's rings and its first workers (one of them the standby, which
 * max does not count); main reads first, its signal mask sigs. Without a
 * standby a flush is handed over; everything is answered in place when
 * not one worker starts. 0, or -1 without memory.
 */
static int loop_init(struct loop *l, struct fuse_session *se, int kept, int max,
		     const sigset_t *sigs)
{
	pthread_condattr_t ca;
	int i;

	memset(l, 0, sizeof(*l));
	l->se = se;
	l->sigs = sigs;
	l->sfd = l->sigfd = l->kick = l->ended = -1;
	l->max = (max < 1 ? 1 : max) + 1;
	l->kept = kept < 1 ? 1 : kept > l->max ? l->max : kept;
	l->maxbufs = 2 * l->max;
	l->spare = calloc((size_t)l->maxbufs, sizeof(*l->spare));
	l->queue = calloc((size_t)l->maxbufs, sizeof(*l->queue));
	if (!l->spare || !l->queue || standby_init(l)) {
		free(l->spare);
		free(l->queue);
		standby_end(l);
		return -1;
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->work_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&l->done_cv, NULL);
	/* buffers are allocated by libfuse on their first use, then kept */
	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->kept && !start_worker(l); i++)
		l->nthreads++;
	if (!l->nthreads)
		l->maxbufs = 0; /* everything in place then */
	l->nspare = l->nbufs =
		l->maxbufs < 2 * l->nthreads ? l->maxbufs : 2 * l->nthreads;
	pthread_mutex_unlock(&l->mu);
	return 0;
}

/*
 * After an unmount, until the pool has ended: a signal (a SIGTERM once
 * fusermount3 -u returned, with a release's upload still waiting for its
 * server) cuts as one that ended the session would have. No thread takes
 * the loop's signals any more (they are blocked but in the reading
 * role's wait), so it stays pending for the process: its signalfd.
 */
static void *cut_watch(void *arg)
{
	struct loop *l = arg;
	struct pollfd p[2] = { { .fd = l->sigfd, .events = POLLIN },
			       { .fd = l->ended, .events = POLLIN } };
	struct signalfd_siginfo si;

	while (poll(p, 2, -1) < 0 && errno == EINTR)
		;
	if ((p[0].revents & POLLIN) &&
	    read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		sfs_info("fs", "signal %u: the mount's end is cut short",
			 si.ssi_signo);
		sfs_store_stopping(g_fs.store, SFS_STORE_CUT);
	}
	return NULL;
}

/* cut_watch started (with its signals blocked, as on every thread). */
static void cut_watch_start(struct loop *l)
{
	l->ended = eventfd(0, EFD_CLOEXEC);
	if (l->ended >= 0 && !pthread_create(&l->watch, NULL, cut_watch, l))
		return;
	sfs_error("fs", "a signal cannot end the unmount's wait");
	if (l->ended >= 0)
		close(l->ended);
	l->ended = -1;
}

static void cut_watch_end(struct loop *l)
{
	if (l->ended < 0)
		return;
	if (eventfd_write(l->ended, 1))
		sfs_error("fs", "the signal watch's end: %s", strerror(errno));
	pthread_join(l->watch, NULL);
	close(l->ended);
	l->ended = -1;
}

/*
 * The session ended (its reader, the role's holder, saw it): answer
 * requests until the poller has stopped, then stop the pool. The change
 * poller may be waiting in the kernel to invalidate an entry of a
 * directory that a queued request holds locked (a writer's open, created
 * while the signal came): requests are answered (workers still take
 * handed-off ones) until the poller has stopped, or the unmount would
 * wait for it for ever. libfuse's receive drops what it reads once the
 * session has exited (it returns 0 after the read): the request read was
 * lost unanswered, its caller and the poller waited for ever (remote
 * mounts hung at SIGTERM about 1 run in 12; the feed there shows the
 * mount its own writes, so the poller invalidates while a writer opens).
 * The exit is taken back for the drain; no signal comes meanwhile
 * (blocked on every thread but in the holder's ppoll, not used here:
 * after an unmount, cut_watch takes one until the pool has ended),
 * the role stays with this thread (draining), and the end of the
 * connection exits the session again. b, the role's buffer, is freed.
 */
static void loop_drain(struct loop *l, struct fuse_buf *b)
{
	struct fuse_session *se = l->se;
	int res;

	pthread_mutex_lock(&l->mu);
	l->draining = 1;
	pthread_mutex_unlock(&l->mu);
	fs_poller_ask_stop();
	/*
	 * A signal cuts: a call waiting for its server (a close to try it
	 * again, an upload's answer, a read) gives up, or the workers' end
	 * below would wait for it. An unmount cuts nothing: a release that
	 * runs now (a file written through a shared mapping after its
	 * close is sent at its release) still sends what it holds.
	 */
	sfs_store_stopping(g_fs.store,
			   l->signalled ? SFS_STORE_CUT : SFS_STORE_ENDED);
	if (!l->signalled)
		cut_watch_start(l);
	if (!fs_poller_ended())
		fuse_session_reset(se);
	while (!fs_poller_ended()) {
		struct pollfd p = { .fd = fuse_session_fd(se),
				    .events = POLLIN };

		if (poll(&p, 1, 50) != 1)
			continue;
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
			break; /* the connection is gone: nothing to answer */
		res = fuse_session_receive_buf(se, b);
		if (res == -EINTR || res == -EAGAIN)
			continue;
		if (res <= 0)
			break;
		serve_one(l, b);
	}
	free(b->mem);
	pthread_mutex_lock(&l->mu);
	l->stop = 1;
	pthread_cond_broadcast(&l->work_cv);
	pthread_mutex_unlock(&l->mu);
	if (eventfd_write(l->kick, 1)) /* the standby's wake */
		sfs_error("fs", "the loop's stop: %s", strerror(errno));
}

/*
 * Read and serve requests while this thread holds the reading role:
 * until it gave the role on with a flush it kept (answered by then), or
 * the session ended: then it drains the session and stops the pool.
 */
static void read_role(struct loop *l, struct fuse_buf *b)
{
	struct fuse_session *se = l->se;
	int res;

	while (!fuse_session_exited(se)) {
		res = wait_request(se, l->sigs);
		/* libfuse's handler runs only in that wait (ppoll) */
		if (res == -EINTR && fuse_session_exited(se))
			l->signalled = 1;
		if (!res)
			res = fuse_session_receive_buf(se, b);
		if (res == -EINTR || res == -EAGAIN)
			continue;
		if (session_end(se, res))
			break;
		if (res <= 0) {
			if (res < 0 && !fuse_session_exited(se))
				l->ret = -1;
			break;
		}
		if (!serve_one(l, b))
			return; /* the role went on with b's flush */
	}
	loop_drain(l, b);
}

/* Wait for the workers to end (stop is set), and free the pool. */
static void loop_end(struct loop *l)
{
	int i;

	pthread_mutex_lock(&l->mu);
	while (l->nthreads)
		pthread_cond_wait(&l->done_cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
	cut_watch_end(l);
	for (i = 0; i < l->nspare; i++)
		free(l->spare[i].mem);
	free(l->spare);
	free(l->queue);
	pthread_cond_destroy(&l->done_cv);
	pthread_cond_destroy(&l->work_cv);
	pthread_mutex_destroy(&l->mu);
	standby_end(l);
}

/*
 * Main reads first, and once the role has moved on it is a thread of the
 * pool (it never ends idle) until the role's holder has drained the
 * session and stopped it.
 */
int fs_loop_run(struct fuse_session *se, int kept, int max)
{
	struct fuse_buf b;
	struct loop l;
	sigset_t old;

	fs_signals_off(&old);
	/* the signals stay blocked but in wait_request (and after) */
	fcntl(fuse_session_fd(se), F_SETFL,
	      fcntl(fuse_session_fd(se), F_GETFL) | O_NONBLOCK);
	if (loop_init(&l, se, kept, max, &old)) {
		fs_signals_on(&old);
		return -1;
	}
	memset(&b, 0, sizeof(b));
	read_role(&l, &b);
	loop_thread(&l, 1);
	/* blocked until the pool ended: a signal meanwhile is cut_watch's */
	loop_end(&l);
	fs_signals_on(&old);
	fuse_session_reset(se);
	return l.ret;
}
