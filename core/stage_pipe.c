/*
 * A stage's pipe: the writer and hasher threads that big sequential
 * stages (stage.c) hand their bytes to, in slots of memory that followers
 * may read from too (stage_follow.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "crc32c_i.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"
#include "speechfs/remote.h"
#include "speechfs/util.h"

/*
 * Big sequential stages write and hash in two threads of their own: the
 * caller only copies the bytes into one of PIPE_SLOTS chunks and goes back
 * to receiving; a writer writes the chunks to the file (and paces the
 * writeback) while a hasher hashes them, in order. SHA-256 is the largest
 * single cost of an upload (about 0.7 s per GiB here), about as much as
 * receiving and writing together, so in a pipeline the three overlap.
 * Stages start inline and turn to the pipeline past PIPE_START bytes
 * (stage.c).
 */
#define PIPE_CHUNK SFSI_PIPE_CHUNK
#define PIPE_SLOTS SFSI_PIPE_SLOTS
/*
 * A stage no thread reads while it is written (a daemon's upload, a local
 * mount's write; not a remote mount's, not one an S3 stream follows) has
 * its slots written around the page cache (O_DIRECT) where they are
 * aligned: the bytes go to the disk once, instead of into fresh
 * page-cache pages that the writeback (stage.c) then writes and drops, which
 * cost the daemon a sixth of its CPU per GiB uploaded (1.96 -> 1.67 s;
 * fresh pages are dear on these VMs). The pipe's memory is aligned for
 * it, in huge pages (few segments per disk request), and every slot but
 * the first starts at an aligned offset. DIRECT_OFF: buffered writes.
 */
#define DIRECT_ALIGN 4096
#define DIRECT_OFF (-2)
#define PIPE_MEM_ALIGN (2 << 20)

/*
 * A remote mount's stream in a resumable session (remote_parts.c) keeps
 * its window in the pipe's memory, a ring of the window's size (at most
 * RING_MAX, and RING_SLACK slots more: the slot being filled and a
 * partial one at each end), instead of in the stage's file: the writer
 * thread writes a slot to the file only when the server has not freed
 * it (st->freed) by the time the ring needs it again, or when the file
 * must hold it (pipe_sync: a read; pipe_end: the stage is hashed,
 * written out of order, truncated or freed). In the steady state the
 * server frees what the sender sent before the ring comes round, and no
 * byte goes to the file: the file's page-cache copy and its read back
 * for the sender were two of the five copies of each byte the mount
 * made (work notes s23 perfwrite). The pipe never waits for the server
 * for its memory (pipe_push presses the writer instead): a FUSE write is
 * answered with the open file's lock held.
 */
#define RING_MAX ((int64_t)256 << 20)
#define RING_SLACK 3
/*
 * Rings are resident memory (not page cache the kernel may write back or
 * drop), one per stream: past RING_BUDGET bytes of rings in use in the
 * process (four rings of the default window, 524 MiB), a further
 * stream's pipe is the plain one of PIPE_SLOTS, its window in the
 * stage's file as before (review s24 W1: many parallel copies would
 * hold a window each).
 */
#define RING_BUDGET                                                            \
	(4 * ((size_t)SFS_REMOTE_WINDOW_DEFAULT +                              \
	      (size_t)RING_SLACK * PIPE_CHUNK))

enum { P_WRITER, P_HASHER, P_WORKERS };

struct pipe {
	pthread_t th[P_WORKERS];
	int nth; /* threads started */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned nslots; /* PIPE_SLOTS, or a ring's */
	int ring;	 /* the writer writes a slot only when it must */
	char *mem;	 /* nslots * PIPE_CHUNK */
	int dfd; /* the writer's O_DIRECT fd: -1 not open yet, DIRECT_OFF */
	size_t *len;
	struct sfsi_stage_slot *slots; /* the followers' view (fslot) */
	unsigned head; /* slots handed over, [done[w], head) to do */
	unsigned done[P_WORKERS];
	/*
	 * A ring's writer writes slot number done[P_WRITER] at once while
	 * it is below need (pipe_push needs its memory, pipe_sync the
	 * file); read and written under the stage's fmu (the writer waits
	 * on its fcv for freed to move).
	 */
	unsigned need;
	/*
	 * keep: slots that begin at or above it are not written (INT64_MAX:
	 * all are): their bytes are about to be cut or thrown away
	 * (sfsi_stage_pipe_cut, re-read s24 B2); atomic. The writer
	 * stops at st->written then, and `dropped` counts the slots it
	 * left out, the last ones handed over.
	 */
	int64_t keep;
	unsigned dropped;
	size_t fill; /* bytes in slot head % PIPE_SLOTS */
	int64_t seq; /* the filling slot's number (head without wrapping) */
	int64_t off; /* where the filling slot's bytes go in the stage */
	int stop;
	struct sfs_stage *st; /* md and the file's offsets are the
				 workers' while the pipe runs */
	enum sfs_status wst;  /* the writer's first failure */
	struct sfs_err werr;
};

/*
 * Spare pipeline buffers, so uploads (and a mount's streams: one ring
 * kept at most) reuse memory already touched; each of its size (in
 * slots). A ring kept unused for sfsi_stage_ring_idle_ms is given back
 * (a reaper thread runs while one is kept): 131 MiB resident on a mount
 * that wrote one big file hours ago is too dear. Touching a fresh ring
 * costs 0.6-0.65 s of CPU here in 4 KiB pages, 20-250 ms when the
 * kernel finds huge pages (s25 ring2, 131 MiB, five rounds each); its
 * reuse 9-13 ms. Given back after a minute, a mount that writes a big
 * file each minute pays at most about 1 % of a core for it.
 */
#define RING_IDLE_MS (60 * 1000)
int sfsi_stage_ring_idle_ms = RING_IDLE_MS;

static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spare_cv; /* the reaper's (monotonic) */
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static int reaper_on; /* under spare_mu */
static struct spare_mem {
	char *mem;
	unsigned nslots;
	int64_t since; /* sfs_mono_ns when it was put back */
} spare[3];
static size_t rings_in_use; /* bytes, under spare_mu */

static void spare_cv_init(void)
{
	sfs_cond_init_mono(&spare_cv);
}

/* The index in spare[] of the kept ring, or -1 (spare_mu held). */
static int ring_kept(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(spare); i++)
		if (spare[i].mem && spare[i].nslots != PIPE_SLOTS)
			return (int)i;
	return -1;
}

/* Frees the kept ring once it was unused for the idle time; ends then. */
static void *ring_reaper(void *arg)
{
	struct timespec t;
	int64_t until;
	char *m;
	int i;

	(void)arg;
	(void)pthread_setname_np(pthread_self(), "sfs-ringidle");
	pthread_mutex_lock(&spare_mu);
	while ((i = ring_kept()) >= 0) {
		until = spare[i].since +
			(int64_t)__atomic_load_n(&sfsi_stage_ring_idle_ms,
						 __ATOMIC_RELAXED) *
				1000000;
		if (sfs_mono_ns() < until) {
			sfs_mono_ts(&t, until);
			pthread_cond_timedwait(&spare_cv, &spare_mu, &t);
			continue;
		}
		m = spare[i].mem;
		spare[i].mem = NULL;
		pthread_mutex_unlock(&spare_mu);
		free(m);
		pthread_mutex_lock(&spare_mu);
	}
	reaper_on = 0;
	pthread_mutex_unlock(&spare_mu);
	return NULL;
}

/* A ring was kept (spare_mu held): its reaper runs. */
static void reaper_start(void)
{
	pthread_attr_t a;
	pthread_t th;

	pthread_once(&spare_once, spare_cv_init);
	pthread_cond_broadcast(&spare_cv); /* a new `since` */
	if (reaper_on || pthread_attr_init(&a))
		return;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	reaper_on = !pthread_create(&th, &a, ring_reaper, NULL);
	pthread_attr_destroy(&a);
}

int sfsi_stage_ring_spared(void)
{
	int kept;

	pthread_mutex_lock(&spare_mu);
	kept = ring_kept() >= 0;
	pthread_mutex_unlock(&spare_mu);
	return kept;
}

/* Take nslots of the rings' budget; 0 when it is spent. */
static int ring_budget_take(unsigned nslots)
{
	size_t size = (size_t)nslots * PIPE_CHUNK;
	int ok;

	pthread_mutex_lock(&spare_mu);
	ok = rings_in_use + size <= RING_BUDGET;
	if (ok)
		rings_in_use += size;
	pthread_mutex_unlock(&spare_mu);
	return ok;
}

static void ring_budget_put(unsigned nslots)
{
	pthread_mutex_lock(&spare_mu);
	rings_in_use -= (size_t)nslots * PIPE_CHUNK;
	pthread_mutex_unlock(&spare_mu);
}

static char *pipe_mem_get(unsigned nslots)
{
	size_t i, size = (size_t)nslots * PIPE_CHUNK;
	char *m = NULL;

	pthread_mutex_lock(&spare_mu);
	for (i = 0; i < ARRAY_SIZE(spare) && !m; i++)
		if (spare[i].mem && spare[i].nslots == nslots) {
			m = spare[i].mem;
			spare[i].mem = NULL;
		}
	pthread_mutex_unlock(&spare_mu);
	if (m)
		return m;
	if (posix_memalign((void **)&m, PIPE_MEM_ALIGN, size))
		return NULL;
	madvise(m, size, MADV_HUGEPAGE);
	return m;
}

static void pipe_mem_put(char *m, unsigned nslots)
{
	size_t i;

	pthread_mutex_lock(&spare_mu);
	/* one ring at most: each holds a window's memory */
	for (i = 0; i < ARRAY_SIZE(spare) && m && nslots != PIPE_SLOTS; i++)
		if (spare[i].mem && spare[i].nslots != PIPE_SLOTS) {
			free(m);
			m = NULL;
		}
	for (i = 0; i < ARRAY_SIZE(spare) && m; i++)
		if (!spare[i].mem) {
			spare[i].mem = m;
			spare[i].nslots = nslots;
			spare[i].since = sfs_mono_ns();
			m = NULL;
			if (nslots != PIPE_SLOTS)
				reaper_start();
		}
	pthread_mutex_unlock(&spare_mu);
	free(m);
}

/* Up to len bytes of buf at off through the O_DIRECT fd: how many, or -1. */
static ssize_t direct_write(struct pipe *p, const char *buf, size_t len,
			    int64_t off)
{
	ssize_t n;

	if (p->dfd == -1) {
		p->dfd = open(p->st->path, O_WRONLY | O_DIRECT | O_CLOEXEC);
		if (p->dfd < 0)
			p->dfd = DIRECT_OFF;
	}
	if (p->dfd < 0 || off % DIRECT_ALIGN || len % DIRECT_ALIGN ||
	    (uintptr_t)buf % DIRECT_ALIGN)
		return 0;
	do
		n = pwrite(p->dfd, buf, len, off);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EINVAL) {
		/* not on this file system: buffered from now on */
		close(p->dfd);
		p->dfd = DIRECT_OFF;
		return 0;
	}
	return n;
}

/* A slot into the file: around the page cache where it can, the rest
 * through it (and its writeback). */
static enum sfs_status slot_write(struct pipe *p, const char *buf, size_t len,
				  struct sfs_err *e)
{
	struct sfs_stage *st = p->st;
	ssize_t n = direct_write(p, buf, len, st->written);
	enum sfs_status ret;

	if (n < 0)
		return sfsi_errno_status(e, errno, "writing the stage");
	if (n > 0) {
		/* on the disk: no cache to write back or drop below here */
		st->written += n;
		st->synced = st->written;
		st->dropped = st->written;
	}
	if ((size_t)n == len)
		return SFS_OK;
	ret = sfsi_stage_write_all(st->fd, buf + n, len - (size_t)n,
				   st->written, e);
	if (ret)
		return ret;
	st->written += (int64_t)(len - (size_t)n);
	sfsi_stage_writeback(st, 1);
	return SFS_OK;
}

/*
 * A ring's writer, before slot number seq (its bytes from st->written):
 * 1 when the server holds them durably and the stream sent them (freed
 * past them: they need not go to the file), 0 when they must go there
 * now (the pipe needs the slot or the file, it stops, or the stage
 * turned whole); waits otherwise.
 */
static int ring_skip(struct pipe *p, unsigned seq, size_t len)
{
	struct sfs_stage *st = p->st;
	int64_t end = st->written + (int64_t)len;
	int skip;

	pthread_mutex_lock(&st->fmu);
	while (st->freed < end && !st->whole && seq >= p->need &&
	       !__atomic_load_n(&p->stop, __ATOMIC_RELAXED))
		pthread_cond_wait(&st->fcv, &st->fmu);
	skip = st->freed >= end;
	pthread_mutex_unlock(&st->fmu);
	return skip;
}

/* The ring's writer must write slots below number seq now. */
static void ring_need(struct pipe *p, unsigned seq)
{
	struct sfs_stage *st = p->st;

	if (!p->ring)
		return;
	pthread_mutex_lock(&st->fmu);
	if ((int)(seq - p->need) > 0)
		p->need = seq;
	pthread_cond_broadcast(&st->fcv);
	pthread_mutex_unlock(&st->fmu);
}

/* The writer's slot (from st->written) is to be left out (p->keep). */
static int dropping(const struct pipe *p)
{
	return p->st->written >= __atomic_load_n(&p->keep, __ATOMIC_RELAXED);
}

static enum sfs_status pipe_work(struct pipe *p, int w, unsigned slot,
				 unsigned seq, int failed, struct sfs_err *e)
{
	struct sfs_stage *st = p->st;
	const char *buf = p->mem + (size_t)slot * PIPE_CHUNK;
	enum sfs_status ret;

	if (w == P_HASHER) {
		if (!st->crc_only)
			EVP_DigestUpdate(st->md, buf, p->len[slot]);
		st->crc = sfsi_crc32c(st->crc, buf, p->len[slot]);
		return SFS_OK;
	}
	if (failed)
		return SFS_OK; /* the stage is lost anyway: just drain */
	if (p->ring && !dropping(p) && ring_skip(p, seq, p->len[slot])) {
		/* a hole in the file, below freed as punched bytes are */
		st->written += (int64_t)p->len[slot];
		st->synced = st->dropped = st->written;
		sfsi_stage_followers(st, st->written, 0);
		return SFS_OK;
	}
	if (dropping(p)) {
		/* cut or thrown away next: never written (written stays) */
		p->dropped++;
		return SFS_OK;
	}
	ret = slot_write(p, buf, p->len[slot], e);
	if (ret)
		return ret;
	if (st->upload)
		sfsi_upload_written(st);
	sfsi_stage_followers(st, st->written, 0);
	return SFS_OK;
}

struct worker_arg {
	struct pipe *p;
	int w;
};

static void *pipe_worker(void *arg)
{
	struct worker_arg *a = arg;
	struct pipe *p = a->p;
	struct sfs_err e;
	enum sfs_status ret;
	int w = a->w, failed;
	unsigned slot, seq;

	free(a);
	/* for top -H, perf and /proc: else they bear their creator's name */
	(void)pthread_setname_np(pthread_self(),
				 w == P_WRITER ? "sfs-pwrite" : "sfs-hash");
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->done[w] == p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->done[w] == p->head)
			break;
		seq = p->done[w];
		slot = seq % p->nslots;
		failed = p->wst != SFS_OK;
		pthread_mutex_unlock(&p->mu);
		sfs_err_init(&e);
		ret = pipe_work(p, w, slot, seq, failed, &e);
		pthread_mutex_lock(&p->mu);
		if (ret && !p->wst) {
			p->wst = ret;
			p->werr = e;
		}
		p->done[w]++;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Slots handed over that some worker has not done yet. */
static unsigned pipe_lag(const struct pipe *p)
{
	unsigned w = p->head - p->done[P_WRITER];
	unsigned h = p->head - p->done[P_HASHER];

	return w > h ? w : h;
}

/* The pipe's memory and its slots' tables; NULL without memory. */
static struct pipe *pipe_alloc(struct sfs_stage *st, int64_t ring)
{
	struct pipe *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->st = st;
	p->keep = INT64_MAX;
	p->nslots = PIPE_SLOTS;
	if (ring > 0) {
		p->nslots = (unsigned)((ring < RING_MAX ? ring : RING_MAX) /
				       PIPE_CHUNK) +
			    RING_SLACK;
		p->ring = ring_budget_take(p->nslots);
		if (!p->ring)
			p->nslots = PIPE_SLOTS;
	}
	p->len = calloc(p->nslots, sizeof(*p->len));
	p->slots = calloc(p->nslots, sizeof(*p->slots));
	p->mem = p->len && p->slots ? pipe_mem_get(p->nslots) : NULL;
	if (!p->mem) {
		if (p->ring)
			ring_budget_put(p->nslots);
		free(p->len);
		free(p->slots);
		free(p);
		return NULL;
	}
	return p;
}

/* pipe_alloc undone. */
static void pipe_dealloc(struct pipe *p)
{
	pipe_mem_put(p->mem, p->nslots);
	if (p->ring)
		ring_budget_put(p->nslots);
	free(p->len);
	free(p->slots);
	free(p);
}

static void pipe_free(struct pipe *p)
{
	sfsi_stage_slots_close(p->st, p->mem);
	if (p->dfd >= 0)
		close(p->dfd);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	pipe_dealloc(p);
}

/* Stop the workers once they have done every slot handed over. */
static void pipe_join(struct pipe *p)
{
	int i;

	pthread_mutex_lock(&p->mu);
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	ring_need(p, p->head); /* a ring's writer waits on the stage's fcv */
	for (i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
}

/* Start the workers; on failure the stage just stays inline. */
void sfsi_stage_pipe_start(struct sfs_stage *st, int64_t ring)
{
	struct pipe *p = pipe_alloc(st, ring);
	struct worker_arg *a;
	int w;

	if (!p)
		return;
	p->off = st->size; /* what came before is in the file */
	p->dfd = st->s->ops || st->stream ? DIRECT_OFF : -1;
	if (pthread_mutex_init(&p->mu, NULL)) {
		pipe_dealloc(p);
		return;
	}
	if (pthread_cond_init(&p->cv, NULL)) {
		pthread_mutex_destroy(&p->mu);
		pipe_dealloc(p);
		return;
	}
	for (w = 0; w < P_WORKERS; w++) {
		a = malloc(sizeof(*a));
		if (!a)
			break;
		a->p = p;
		a->w = w;
		if (pthread_create(&p->th[w], NULL, pipe_worker, a)) {
			free(a);
			break;
		}
		p->nth++;
	}
	if (p->nth < P_WORKERS) {
		/* nothing was handed over: the stage is as it was */
		pipe_join(p);
		pipe_free(p);
		return;
	}
	sfsi_stage_slots_open(st, p->mem, p->slots, p->nslots);
	if (p->ring) {
		pthread_mutex_lock(&st->fmu);
		st->fring = 1;
		pthread_mutex_unlock(&st->fmu);
	}
	st->pipe = p;
}

/* Hand the filling slot over; then wait for the next one to be free. */
static void pipe_push(struct pipe *p)
{
	struct sfs_stage *st = p->st;
	unsigned slot = p->head % p->nslots;

	if (!p->fill)
		return;
	p->len[slot] = p->fill;
	/* what the slot holds, for followers, before any worker has it */
	sfsi_stage_slot_handed(st, slot, p->seq++, p->off, p->fill);
	p->off += (int64_t)p->fill;
	p->fill = 0;
	pthread_mutex_lock(&p->mu);
	p->head++;
	pthread_cond_broadcast(&p->cv);
	if (p->ring && p->head - p->done[P_WRITER] >= p->nslots) {
		/* the server has not freed the oldest slot: to the file */
		pthread_mutex_unlock(&p->mu);
		ring_need(p, p->head - p->nslots + 1);
		pthread_mutex_lock(&p->mu);
	}
	while (pipe_lag(p) >= p->nslots)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	sfsi_stage_slot_reusable(st, p->head % p->nslots, p->seq);
}

static enum sfs_status pipe_status(struct pipe *p, struct sfs_err *e)
{
	enum sfs_status ret;

	pthread_mutex_lock(&p->mu);
	ret = p->wst;
	if (ret && e)
		*e = p->werr;
	pthread_mutex_unlock(&p->mu);
	return ret;
}

int sfsi_stage_pipe_unwritten(struct sfs_stage *st)
{
	struct pipe *p = st->pipe;
	unsigned n;

	if (!p || !p->ring)
		return 0;
	pthread_mutex_lock(&p->mu);
	n = p->head - p->done[P_WRITER];
	pthread_mutex_unlock(&p->mu);
	return n + (p->fill > 0) > PIPE_SLOTS;
}

/* Everything handed over is in the file (hashing may go on). */
enum sfs_status sfsi_stage_pipe_sync(struct sfs_stage *st, struct sfs_err *e)
{
	struct pipe *p = st->pipe;

	pipe_push(p);
	ring_need(p, p->head);
	pthread_mutex_lock(&p->mu);
	while (p->done[P_WRITER] != p->head)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	return pipe_status(p, e);
}

/*
 * The workers stopped once they have done every slot handed over; the
 * writer leaves out of the file those that begin at or above keep.
 */
static enum sfs_status pipe_stop(struct pipe *p, int64_t keep,
				 struct sfs_err *e)
{
	pipe_push(p);
	/* before the join wakes the writer (ring_need: fmu) */
	__atomic_store_n(&p->keep, keep, __ATOMIC_RELAXED);
	pipe_join(p);
	return pipe_status(p, e);
}

/* The slots pipe_stop left out go to the file after all (in order). */
static enum sfs_status pipe_write_dropped(struct pipe *p, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;
	unsigned seq, slot;

	for (seq = p->head - p->dropped; !ret && seq != p->head; seq++) {
		slot = seq % p->nslots;
		ret = slot_write(p, p->mem + (size_t)slot * PIPE_CHUNK,
				 p->len[slot], e);
	}
	p->dropped = 0;
	return ret;
}

/* The stopped pipe freed: the stage is inline again. */
static enum sfs_status pipe_close(struct sfs_stage *st, enum sfs_status ret,
				  struct sfs_err *e)
{
	pipe_free(st->pipe);
	st->pipe = NULL;
	/* the writer wrote at offsets: later appends go at the end */
	if (!ret && lseek(st->fd, st->written, SEEK_SET) < 0)
		ret = sfsi_errno_status(e, errno, "seeking the stage");
	return ret;
}

/*
 * Back to inline: everything buffered written and hashed, the workers
 * joined, st->md holding the hash of all bytes so far. Called before any
 * other use of the file (pwrite, truncate, finish, free).
 */
enum sfs_status sfsi_stage_pipe_end(struct sfs_stage *st, struct sfs_err *e)
{
	if (!st->pipe)
		return SFS_OK;
	return pipe_close(st, pipe_stop(st->pipe, INT64_MAX, e), e);
}

/*
 * A ring holds up to a window of bytes the file has not got (131-259
 * MiB): a truncate need not write those it cuts, nor a stage that goes
 * any (re-read s24 B2: a window of disk writes on the worker that holds
 * the file's lock). The cut is made while the pipe's memory still holds
 * them: a cut that fails writes them after all, and the stage is as
 * after sfsi_stage_pipe_end.
 */
enum sfs_status sfsi_stage_pipe_cut(struct sfs_stage *st, int64_t size,
				    struct sfs_err *e)
{
	struct pipe *p = st->pipe;
	enum sfs_status ret;

	if (!p)
		return ftruncate(st->fd, size) < 0
			       ? sfsi_errno_status(e, errno,
						   "truncating the stage")
			       : SFS_OK;
	/* a session's file is recorded as it is written (upload.c) */
	ret = pipe_stop(p, st->upload ? INT64_MAX : size, e);
	if (!ret && ftruncate(st->fd, size) < 0) {
		ret = sfsi_errno_status(e, errno, "truncating the stage");
		(void)pipe_write_dropped(p, NULL);
	}
	return pipe_close(st, ret, e);
}

enum sfs_status sfsi_stage_pipe_hold(struct sfs_stage *st, struct sfs_err *e)
{
	struct pipe *p = st->pipe;

	if (!p || !p->ring || !st->stream)
		return sfsi_stage_pipe_end(st, e);
	pipe_push(p);
	pthread_mutex_lock(&p->mu);
	while (p->done[P_HASHER] != p->head)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	return pipe_status(p, e);
}

void sfsi_stage_pipe_discard(struct sfs_stage *st)
{
	if (st->pipe)
		(void)pipe_close(st, pipe_stop(st->pipe, 0, NULL), NULL);
}

enum sfs_status sfsi_stage_pipe_write(struct sfs_stage *st, const char *data,
				      size_t len, struct sfs_err *e)
{
	struct pipe *p = st->pipe;
	size_t n, cap;

	while (len) {
		/* a full slot ends at an aligned offset (DIRECT_ALIGN) */
		cap = PIPE_CHUNK - (size_t)(p->off % DIRECT_ALIGN);
		n = cap - p->fill;
		if (n > len)
			n = len;
		memcpy(p->mem + (size_t)(p->head % p->nslots) * PIPE_CHUNK +
			       p->fill,
		       data, n);
		p->fill += n;
		data += n;
		len -= n;
		if (p->fill == cap)
			pipe_push(p);
	}
	return pipe_status(p, e);
}
