/*
 * Stages: the files that uploads, mount writes, imports and encodes write
 * into under staging/<process>/, hashed (SHA-256) as the bytes pass, in
 * two threads of their own for big sequential writes. A finished stage is
 * synced and hashed; blob.c turns it into a blob. The staging directory of
 * each process is locked, so recovery never touches a live one (the
 * directories and recovery: staging.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blob_i.h"
#include "crc32c_i.h"
#include "remote_i.h"
#include "speechfs/log.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"

#define IO_CHUNK (128 * 1024)
#define WRITEBACK_CHUNK (8 << 20) /* start writeback this often */
#define WRITEBACK_KEEP 3	  /* chunks of dirty cache kept (see below) */

/*
 * Big sequential stages write and hash in two threads of their own: the
 * caller only copies the bytes into one of PIPE_SLOTS chunks and goes back
 * to receiving; a writer writes the chunks to the file (and paces the
 * writeback) while a hasher hashes them, in order. SHA-256 is the largest
 * single cost of an upload (about 0.7 s per GiB here), about as much as
 * receiving and writing together, so in a pipeline the three overlap.
 * Stages start inline and turn to the pipeline past PIPE_START bytes.
 */
#define PIPE_CHUNK SFSI_PIPE_CHUNK
#define PIPE_SLOTS SFSI_PIPE_SLOTS
#define PIPE_START (4 << 20)
/*
 * A stage no thread reads while it is written (a daemon's upload, a local
 * mount's write; not a remote mount's, not one an S3 stream follows) has
 * its slots written around the page cache (O_DIRECT) where they are
 * aligned: the bytes go to the disk once, instead of into fresh
 * page-cache pages that the writeback below then writes and drops, which
 * cost the daemon a sixth of its CPU per GiB uploaded (1.96 -> 1.67 s;
 * fresh pages are dear on these VMs). The pipe's memory is aligned for
 * it, in huge pages (few segments per disk request), and every slot but
 * the first starts at an aligned offset. DIRECT_OFF: buffered writes.
 */
#define DIRECT_ALIGN 4096
#define DIRECT_OFF (-2)
#define PIPE_MEM_ALIGN (2 << 20)

enum { P_WRITER, P_HASHER, P_WORKERS };

struct pipe {
	pthread_t th[P_WORKERS];
	int nth; /* threads started */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *mem; /* PIPE_SLOTS * PIPE_CHUNK */
	int dfd;   /* the writer's O_DIRECT fd: -1 not open yet, DIRECT_OFF */
	size_t len[PIPE_SLOTS];
	unsigned head; /* slots handed over, [done[w], head) to do */
	unsigned done[P_WORKERS];
	size_t fill; /* bytes in slot head % PIPE_SLOTS */
	int64_t seq; /* the filling slot's number (head without wrapping) */
	int64_t off; /* where the filling slot's bytes go in the stage */
	int stop;
	struct sfs_stage *st; /* md and the file's offsets are the
				 workers' while the pipe runs */
	enum sfs_status wst;  /* the writer's first failure */
	struct sfs_err werr;
};

static void stage_name(struct sfs_stage *st, char *out, size_t n,
		       const char *suffix)
{
	unsigned char r[8];
	char hex[17];

	if (sfsi_random(r, sizeof(r)))
		memset(r, 0, sizeof(r));
	sfsi_hex(r, sizeof(r), hex);
	snprintf(out, n, "%s/%s%s", st->s->staging_dir, hex, suffix);
}

/*
 * Spare stage files: a stage whose bytes went into the database (a small
 * content, sfsi_blob_put_inline) leaves its file, emptied, for the next
 * stage of the process. A new file under staging/ per stage cost an
 * inode each, and ext4 without a journal (these machines' root file
 * system) passes over every inode freed in the last minute or more when
 * it picks one (recently_deleted): in perf of 1,000 durable creates
 * through the mount, the open() of the stage took 15 % of the mount's
 * CPU, and it grows with the rate of creates (and of any deletes nearby).
 * A remote store's stage is sent (or dropped) before it is freed: each
 * leaves its file too (the open and unlink were 12 % of a remote mount's
 * CPU per small create). The files are closed and removed with the
 * staging directory, or by the remote store's close.
 */
#define STAGE_SPARES 16
#define PART ".part"

static pthread_mutex_t spare_files_mu = PTHREAD_MUTEX_INITIALIZER;
static struct spare_file {
	const struct sfs_store *s;
	int fd;
	char name[24]; /* under the store's staging directory */
} spare_files[STAGE_SPARES];

/* An emptied stage file of the store for st, or 0. */
static int spare_take(struct sfs_stage *st)
{
	size_t i;
	int got = 0;

	pthread_mutex_lock(&spare_files_mu);
	for (i = 0; i < STAGE_SPARES && !got; i++) {
		if (spare_files[i].s != st->s)
			continue;
		st->fd = spare_files[i].fd;
		snprintf(st->path, sizeof(st->path), "%s/%s",
			 st->s->staging_dir, spare_files[i].name);
		spare_files[i].s = NULL;
		got = 1;
	}
	pthread_mutex_unlock(&spare_files_mu);
	return got;
}

/*
 * Keep st's file as a spare: still its anonymous name, linked nowhere
 * else (a blob of blobs/ is a link of a named stage), emptied; 1 if so.
 */
static int spare_give(struct sfs_stage *st)
{
	size_t dirlen, i;
	const char *name;
	struct stat sb;
	int kept = 0;

	/* not after sfsi_staging_close: the table would outlive the store */
	if (st->fd < 0 || !st->s->staging_dir ||
	    (!st->s->ops && st->s->staging_lock_fd < 0))
		return 0;
	dirlen = strlen(st->s->staging_dir);
	name = st->path + dirlen + 1;
	if (strncmp(st->path, st->s->staging_dir, dirlen) ||
	    st->path[dirlen] != '/' ||
	    strlen(name) >= sizeof(spare_files[0].name) ||
	    strlen(name) < sizeof(PART) ||
	    strcmp(name + strlen(name) - (sizeof(PART) - 1), PART))
		return 0;
	if (fstat(st->fd, &sb) < 0 || sb.st_nlink != 1 ||
	    ftruncate(st->fd, 0) < 0 || lseek(st->fd, 0, SEEK_SET) < 0)
		return 0;
	pthread_mutex_lock(&spare_files_mu);
	for (i = 0; i < STAGE_SPARES && !kept; i++) {
		if (spare_files[i].s)
			continue;
		spare_files[i].s = st->s;
		spare_files[i].fd = st->fd;
		sfs_strlcpy(spare_files[i].name, name,
			    sizeof(spare_files[i].name));
		kept = 1;
	}
	pthread_mutex_unlock(&spare_files_mu);
	return kept;
}

/* The store's spare files closed and removed. */
void sfsi_stage_spares_close(const struct sfs_store *s)
{
	char path[4096];
	size_t i;

	pthread_mutex_lock(&spare_files_mu);
	for (i = 0; i < STAGE_SPARES; i++)
		if (spare_files[i].s == s) {
			close(spare_files[i].fd);
			snprintf(path, sizeof(path), "%s/%s", s->staging_dir,
				 spare_files[i].name);
			unlink(path);
			spare_files[i].s = NULL;
		}
	pthread_mutex_unlock(&spare_files_mu);
}

enum sfs_status sfs_stage_new(struct sfs_store *s, struct sfs_stage **out,
			      struct sfs_err *e)
{
	struct sfs_stage *st;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	st->s = s;
	st->limit = INT64_MAX;
	st->fpin = -1;
	pthread_mutex_init(&st->fmu, NULL);
	pthread_cond_init(&st->fcv, NULL);
	if (spare_take(st))
		goto opened;
	stage_name(st, st->path, sizeof(st->path), PART);
	st->fd = open(st->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (st->fd < 0) {
		enum sfs_status ret = sfsi_errno_status(e, errno, "staging");

		sfs_error("blob", "cannot create '%s': %s", st->path,
			  strerror(errno));
		free(st);
		return ret;
	}
opened:
	st->crc_only = s->ops && (sfsi_remote_has(s) & SFS_REMOTE_CRC32C);
	st->md = EVP_MD_CTX_new();
	if (!st->md || !EVP_DigestInit_ex(st->md, EVP_sha256(), NULL)) {
		sfs_stage_free(st);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	*out = st;
	return SFS_OK;
}

void sfs_stage_set_target(struct sfs_stage *st, const char *file_id,
			  unsigned flags)
{
	sfs_strlcpy(st->target, file_id ? file_id : "", sizeof(st->target));
	st->target_flags = flags;
}

/*
 * Big and in order: the blob backend, or a remote store (its table's
 * stream), may send the stage as it comes.
 */
static void stream_start(struct sfs_stage *st)
{
	struct sfs_store *s = st->s;

	if (s->ops && s->ops->stage_stream)
		s->ops->stage_stream(s, st);
	else if (!s->ops && s->blob_be && s->blob_be->stream)
		s->blob_be->stream(s, st);
}

static void stream_free(struct sfs_stage *st)
{
	struct sfs_store *s = st->s;

	if (!st->stream)
		return;
	if (s->ops && s->ops->stage_stream_free)
		s->ops->stage_stream_free(s, st);
	else if (!s->ops && s->blob_be && s->blob_be->stream_free)
		s->blob_be->stream_free(s, st);
}

void sfs_stage_set_limit(struct sfs_stage *st, int64_t max_bytes)
{
	st->limit = max_bytes > 0 ? max_bytes : INT64_MAX;
}

static enum sfs_status write_all(int fd, const void *data, size_t len,
				 int64_t off, struct sfs_err *e)
{
	const char *p = data;

	while (len) {
		ssize_t n =
			off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sfsi_errno_status(e, errno, "writing the stage");
		}
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return SFS_OK;
}

/*
 * Start writeback of each WRITEBACK_CHUNK as it fills, so the final fsync
 * is short; and once a chunk WRITEBACK_KEEP chunks back is on the disk,
 * drop it from the page cache. An upload then recycles a few dozen MiB of
 * cache pages instead of claiming fresh ones for every byte (on this kind
 * of virtual machine, first touches of memory are what write() spends
 * its time on). Durability is unchanged: finish still fsyncs everything.
 *
 * Not while a memory follower reads the stage (a remote mount's stream
 * of new content): that stage is never synced (the server holds the
 * bytes when close() returns), its file is only a copy kept for a
 * resend and for reads of the file while it is written, and it is freed
 * (emptied as a spare, or unlinked) once the server has answered, which
 * drops its pages unwritten. Written back, or around the page cache
 * (O_DIRECT, as it was until 2026-12-05), it cost the disk a second
 * GiB per GiB streamed beside the server's own copy, on the one disk of
 * these machines (~700 MB/s): the `cp` of 1 GiB into a remote mount
 * went at half of curl's upload, its pipe's writer waiting for the disk
 * (`D` state in the O_DIRECT write for 0.1-0.7 s at a time while the
 * server sat idle). Its pages stay dirty until then, bounded by the
 * kernel's own dirty limits (past those it writes them as any file's).
 */
static void writeback(struct sfs_stage *st, int drop)
{
	int64_t old;

	if (st->written - st->synced < WRITEBACK_CHUNK ||
	    sfsi_stage_follower_at(st) != INT64_MAX)
		return;
	sync_file_range(st->fd, st->synced, st->written - st->synced,
			SYNC_FILE_RANGE_WRITE);
	st->synced = st->written;
	if (!drop)
		return;
	old = st->synced - (int64_t)WRITEBACK_KEEP * WRITEBACK_CHUNK;
	if (old <= st->dropped)
		return;
	if (sync_file_range(st->fd, st->dropped, old - st->dropped,
			    SYNC_FILE_RANGE_WAIT_BEFORE |
				    SYNC_FILE_RANGE_WRITE |
				    SYNC_FILE_RANGE_WAIT_AFTER) == 0)
		posix_fadvise(st->fd, st->dropped, old - st->dropped,
			      POSIX_FADV_DONTNEED);
	st->dropped = old;
}

/* Spare pipeline buffers, so uploads reuse memory already touched. */
static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static char *spare[2];

static char *pipe_mem_get(void)
{
	char *m = NULL;
	size_t i;

	pthread_mutex_lock(&spare_mu);
	for (i = 0; i < ARRAY_SIZE(spare) && !m; i++) {
		m = spare[i];
		spare[i] = NULL;
	}
	pthread_mutex_unlock(&spare_mu);
	if (!m && posix_memalign((void **)&m, PIPE_MEM_ALIGN,
				 (size_t)PIPE_SLOTS * PIPE_CHUNK))
		m = NULL;
	if (m)
		madvise(m, (size_t)PIPE_SLOTS * PIPE_CHUNK, MADV_HUGEPAGE);
	return m;
}

static void pipe_mem_put(char *m)
{
	size_t i;

	pthread_mutex_lock(&spare_mu);
	for (i = 0; i < ARRAY_SIZE(spare) && m; i++)
		if (!spare[i]) {
			spare[i] = m;
			m = NULL;
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
	ret = write_all(st->fd, buf + n, len - (size_t)n, st->written, e);
	if (ret)
		return ret;
	st->written += (int64_t)(len - (size_t)n);
	writeback(st, 1);
	return SFS_OK;
}

static enum sfs_status pipe_work(struct pipe *p, int w, unsigned slot,
				 int failed, struct sfs_err *e)
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
	ret = slot_write(p, buf, p->len[slot], e);
	if (ret)
		return ret;
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
	unsigned slot;

	free(a);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->done[w] == p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->done[w] == p->head)
			break;
		slot = p->done[w] % PIPE_SLOTS;
		failed = p->wst != SFS_OK;
		pthread_mutex_unlock(&p->mu);
		sfs_err_init(&e);
		ret = pipe_work(p, w, slot, failed, &e);
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

static void pipe_free(struct pipe *p)
{
	sfsi_stage_slots_close(p->st, p->mem);
	if (p->dfd >= 0)
		close(p->dfd);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	pipe_mem_put(p->mem);
	free(p);
}

/* Stop the workers once they have done every slot handed over. */
static void pipe_join(struct pipe *p)
{
	int i;

	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
}

/* Start the workers; on failure the stage just stays inline. */
static void pipe_start(struct sfs_stage *st)
{
	struct pipe *p = calloc(1, sizeof(*p));
	struct worker_arg *a;
	int w;

	if (!p)
		return;
	p->st = st;
	p->off = st->size; /* what came before is in the file */
	p->dfd = st->s->ops || st->stream ? DIRECT_OFF : -1;
	p->mem = pipe_mem_get();
	if (!p->mem || pthread_mutex_init(&p->mu, NULL)) {
		free(p->mem);
		free(p);
		return;
	}
	if (pthread_cond_init(&p->cv, NULL)) {
		pthread_mutex_destroy(&p->mu);
		pipe_mem_put(p->mem);
		free(p);
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
	sfsi_stage_slots_open(st, p->mem);
	st->pipe = p;
}

/* Hand the filling slot over; then wait for the next one to be free. */
static void pipe_push(struct pipe *p)
{
	struct sfs_stage *st = p->st;
	unsigned slot = p->head % PIPE_SLOTS;

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
	while (pipe_lag(p) >= PIPE_SLOTS)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	sfsi_stage_slot_reusable(st, p->head % PIPE_SLOTS, p->seq);
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

/* Everything handed over is in the file (hashing may go on). */
static enum sfs_status pipe_sync(struct sfs_stage *st, struct sfs_err *e)
{
	struct pipe *p = st->pipe;

	pipe_push(p);
	pthread_mutex_lock(&p->mu);
	while (p->done[P_WRITER] != p->head)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	return pipe_status(p, e);
}

/*
 * Back to inline: everything buffered written and hashed, the workers
 * joined, st->md holding the hash of all bytes so far. Called before any
 * other use of the file (pwrite, truncate, finish, free).
 */
static enum sfs_status pipe_end(struct sfs_stage *st, struct sfs_err *e)
{
	struct pipe *p = st->pipe;
	enum sfs_status ret;

	if (!p)
		return SFS_OK;
	pipe_push(p);
	pipe_join(p);
	ret = pipe_status(p, e);
	pipe_free(p);
	st->pipe = NULL;
	/* the writer wrote at offsets: later appends go at the end */
	if (!ret && lseek(st->fd, st->written, SEEK_SET) < 0)
		ret = sfsi_errno_status(e, errno, "seeking the stage");
	return ret;
}

static enum sfs_status pipe_write(struct sfs_stage *st, const char *data,
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
		memcpy(p->mem + (size_t)(p->head % PIPE_SLOTS) * PIPE_CHUNK +
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

enum sfs_status sfs_stage_write(struct sfs_stage *st, const void *data,
				size_t len, struct sfs_err *e)
{
	enum sfs_status ret;

	if (st->hashed)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"stage already finished");
	if ((int64_t)len > st->limit - st->size)
		return sfs_errf(e, SFS_TOO_LARGE, SFS_R_NONE,
				"more than %lld bytes", (long long)st->limit);
	if (!st->random && !st->stream_tried && st->size >= PIPE_START) {
		st->stream_tried = 1;
		stream_start(st); /* may set follow_mem */
	}
	if (!st->random && !st->pipe && st->size >= PIPE_START)
		pipe_start(st);
	if (st->pipe) {
		ret = pipe_write(st, data, len, e);
		if (ret)
			return ret;
		st->size += (int64_t)len;
		return SFS_OK;
	}
	if (st->random)
		ret = write_all(st->fd, data, len, st->size, e);
	else
		ret = write_all(st->fd, data, len, -1, e);
	if (ret)
		return ret;
	if (!st->random && !st->crc_only)
		EVP_DigestUpdate(st->md, data, len);
	if (!st->random)
		st->crc = sfsi_crc32c(st->crc, data, len);
	st->size += (int64_t)len;
	st->written = st->size;
	if (!st->random)
		sfsi_stage_followers(st, st->written, 0);
	/* a random stage is read back to hash it: keep its cache */
	writeback(st, !st->random);
	return SFS_OK;
}

enum sfs_status sfs_stage_pwrite(struct sfs_stage *st, const void *data,
				 size_t len, int64_t off, struct sfs_err *e)
{
	enum sfs_status ret;

	if (st->hashed)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"stage already finished");
	if (off < 0)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "negative offset");
	if (off > st->limit || (int64_t)len > st->limit - off)
		return sfs_errf(e, SFS_TOO_LARGE, SFS_R_NONE,
				"more than %lld bytes", (long long)st->limit);
	if (!st->random && off == st->size)
		return sfs_stage_write(st, data, len, e);
	sfsi_stage_followers(st, 0, 1); /* first: the pipe waits for none */
	ret = pipe_end(st, e);
	if (ret)
		return ret;
	st->random = 1;
	sfsi_stage_followers(st, 0, 1);
	ret = write_all(st->fd, data, len, off, e);
	if (ret)
		return ret;
	if (off + (int64_t)len > st->size)
		st->size = off + (int64_t)len;
	st->written = st->size;
	return SFS_OK;
}

enum sfs_status sfs_stage_pread(struct sfs_stage *st, void *data, size_t len,
				int64_t off, size_t *got, struct sfs_err *e)
{
	size_t done = 0;
	/* the bytes still buffered go to the file; hashing goes on */
	enum sfs_status ret = st->pipe ? pipe_sync(st, e) : SFS_OK;

	if (ret)
		return ret;
	while (done < len) {
		ssize_t n = pread(st->fd, (char *)data + done, len - done,
				  off + (int64_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sfsi_errno_status(e, errno, "reading the stage");
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return SFS_OK;
}

enum sfs_status sfs_stage_truncate(struct sfs_stage *st, int64_t size,
				   struct sfs_err *e)
{
	enum sfs_status ret;

	if (st->hashed)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"stage already finished");
	if (size < 0)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "negative size");
	if (size > st->limit)
		return sfs_errf(e, SFS_TOO_LARGE, SFS_R_NONE,
				"more than %lld bytes", (long long)st->limit);
	if (size == st->size)
		return SFS_OK;
	sfsi_stage_followers(st, 0, 1); /* first: the pipe waits for none */
	ret = pipe_end(st, e);
	if (ret)
		return ret;
	if (ftruncate(st->fd, size) < 0)
		return sfsi_errno_status(e, errno, "truncating the stage");
	st->random = 1;
	sfsi_stage_followers(st, 0, 1);
	st->size = size;
	st->written = size;
	return SFS_OK;
}

enum sfs_status sfs_stage_copy_fd(struct sfs_stage *st, int fd,
				  struct sfs_err *e)
{
	unsigned char buf[IO_CHUNK];
	int64_t off = 0;
	enum sfs_status ret;

	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sfsi_errno_status(e, errno, "reading a blob");
		}
		if (n == 0)
			return SFS_OK;
		ret = sfs_stage_write(st, buf, (size_t)n, e);
		if (ret)
			return ret;
		off += n;
	}
}

enum sfs_status sfs_stage_copy_blob(struct sfs_stage *st, struct sfs_blob *b,
				    struct sfs_err *e)
{
	unsigned char buf[IO_CHUNK];
	int64_t off = 0;
	enum sfs_status ret;
	size_t got;

	if (sfs_blob_fd(b) >= 0)
		return sfs_stage_copy_fd(st, sfs_blob_fd(b), e);
	while (off < sfs_blob_size(b)) {
		ret = sfs_blob_pread(b, buf, sizeof(buf), off, &got, e);
		if (!ret && !got)
			ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
				       "the blob ended early");
		if (!ret)
			ret = sfs_stage_write(st, buf, got, e);
		if (ret)
			return ret;
		off += (int64_t)got;
	}
	return SFS_OK;
}

/*
 * The SHA-256 (out: lowercase hex; NULL: none made) and the CRC32C (crc,
 * or NULL) of a whole fd from offset 0.
 */
static enum sfs_status sums_fd(int fd, char *out, uint32_t *crc, int64_t *size,
			       struct sfs_err *e)
{
	unsigned char buf[IO_CHUNK], md[32];
	EVP_MD_CTX *ctx = out ? EVP_MD_CTX_new() : NULL;
	enum sfs_status ret = SFS_OK;
	int64_t off = 0;
	unsigned int mdlen = 0;

	if (crc)
		*crc = 0;
	if (out && (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = sfsi_errno_status(e, errno, "hashing");
			goto out;
		}
		if (n == 0)
			break;
		if (out)
			EVP_DigestUpdate(ctx, buf, (size_t)n);
		if (crc)
			*crc = sfsi_crc32c(*crc, buf, (size_t)n);
		off += n;
	}
	if (out) {
		EVP_DigestFinal_ex(ctx, md, &mdlen);
		sfsi_hex(md, 32, out);
	}
	if (size)
		*size = off;
out:
	EVP_MD_CTX_free(ctx);
	return ret;
}

enum sfs_status sfs_sha256_fd(int fd, char out[65], int64_t *size,
			      struct sfs_err *e)
{
	return sums_fd(fd, out, NULL, size, e);
}

enum sfs_status sfsi_stage_hash(struct sfs_stage *st, struct sfs_err *e)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	enum sfs_status ret;

	if (st->hashed)
		return SFS_OK;
	ret = pipe_end(st, e);
	if (ret)
		return ret;
	if (st->random) {
		int64_t size;

		ret = sums_fd(st->fd, st->crc_only ? NULL : st->sha, &st->crc,
			      &size, e);
		if (ret)
			return ret;
		if (size != st->size)
			return sfs_errf(e, SFS_IO, SFS_R_NONE,
					"stage size changed");
	} else if (!st->crc_only) {
		EVP_DigestFinal_ex(st->md, md, &mdlen);
		sfsi_hex(md, 32, st->sha);
	}
	st->hashed = 1;
	/* complete before the end: whoever sees the end sees it complete */
	if (!st->random) {
		pthread_mutex_lock(&st->fmu);
		st->fcomplete = 1;
		pthread_mutex_unlock(&st->fmu);
	}
	sfsi_stage_followers(st, st->random ? 0 : st->size,
			     1); /* all there is */
	return SFS_OK;
}

enum sfs_status sfs_stage_finish(struct sfs_stage *st, struct sfs_err *e)
{
	enum sfs_status ret;

	if (st->finished)
		return SFS_OK;
	ret = sfsi_stage_hash(st, e);
	if (ret)
		return ret;
	if (fsync(st->fd) < 0)
		return sfsi_errno_status(e, errno, "syncing the stage");
	st->finished = 1;
	return SFS_OK;
}

int64_t sfs_stage_size(const struct sfs_stage *st)
{
	return st->size;
}

const char *sfs_stage_sha256(const struct sfs_stage *st)
{
	return st->hashed && !st->crc_only ? st->sha : NULL;
}

uint32_t sfs_stage_crc32c(const struct sfs_stage *st)
{
	return st->crc;
}

enum sfs_status sfs_stage_check_crc32c(struct sfs_stage *st, uint32_t crc,
				       struct sfs_err *e)
{
	enum sfs_status ret = sfsi_stage_hash(st, e);

	if (ret)
		return ret;
	if (st->crc != crc)
		return sfs_errf(e, SFS_INVALID, SFS_R_CHECKSUM_MISMATCH,
				"the content's CRC32C is %08x, not the %08x "
				"sent with it (%lld bytes got): nothing is "
				"stored",
				st->crc, crc, (long long)st->size);
	return SFS_OK;
}

int sfs_stage_fd(const struct sfs_stage *st)
{
	return st->fd;
}

void sfs_stage_free(struct sfs_stage *st)
{
	if (!st)
		return;
	sfsi_stage_followers(st, 0, 1); /* first: the pipe waits for none */
	if (st->pipe)
		(void)pipe_end(st, NULL);
	stream_free(st);
	if (st->linked)
		sfsi_blob_unlink_uncommitted(st);
	if ((st->inlined || st->s->ops) && st->path[0] && spare_give(st)) {
		st->fd = -1;
		st->path[0] = '\0';
	}
	if (st->fd >= 0)
		close(st->fd);
	if (st->path[0])
		unlink(st->path);
	EVP_MD_CTX_free(st->md);
	pthread_mutex_destroy(&st->fmu);
	pthread_cond_destroy(&st->fcv);
	free(st);
}

void sfsi_stage_done(struct sfs_stage *st)
{
	size_t n;

	if (st)
		st->linked = 0;
	/* its bytes are in the database: its file may be a spare (free) */
	n = st ? strlen(st->path) : 0;
	if (n > sizeof(PART) && st->inlined &&
	    !strcmp(st->path + n - (sizeof(PART) - 1), PART))
		return;
	if (st && st->path[0]) {
		unlink(st->path);
		st->path[0] = '\0';
	}
}
