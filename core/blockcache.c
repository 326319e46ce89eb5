/*
 * The window of blocks, the fetchers and the disk cache of content read
 * from far away (blockcache_i.h): the S3 backend's blobs and the remote
 * store's files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "blockcache_i.h"
#include "speechfs/log.h"
#include "util_i.h"

#define MAX_SLOTS 18
#define ALIGN 4096	    /* O_DIRECT's alignment of buffers and lengths */
#define HUGE_PAGE (2 << 20) /* a transparent huge page (x86-64, arm64 4K) */

enum slot_state { S_EMPTY, S_QUEUED, S_LOADING, S_READY, S_FAILED };

struct slot {
	int64_t idx;
	enum slot_state state;
	unsigned char *buf;
	size_t len;
	uint64_t used;
	int pinned;  /* being written to the block cache: not to be reused */
	int waiters; /* readers waiting for this block: not to be reused */
	int lent;    /* lent to readers (bc_lend): not to be reused */
	enum sfs_status st; /* a failed fetch's error */
	enum sfs_reason why;
	char msg[256];
};

struct bc_blob {
	struct sfs_blob b;
	struct sfsi_bcache *be;
	char key[256];
	unsigned flags;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot slots[MAX_SLOTS];
	int nslots;
	int64_t nblocks;
	uint64_t tick;
	int64_t last_idx;
	int seq;
	int inflight; /* jobs queued or being fetched, blocks lent */
	int closing;
};

/* ---- the local block cache ---- */

/*
 * A cache file: <dir>/<tenant>/<sha's first two>/<sha>.<block KiB>k.<idx>
 * holds block idx and the blocks after it that were fetched with it in
 * one range (up to SFSI_BC_MAX_SPAN): its size says how many. One file
 * per run instead of per block: ext4's new inode was 5 % of a cold
 * read's CPU at 256 files a GiB. A file of one block is the shape of
 * earlier versions, read alike. The block size is in the name because a
 * block is known by its index: after a change of size
 * (blob.s3.block_size_mb) an old file of the same index may hold other
 * bytes. Files of another size are never read again; they leave as the
 * least recent.
 */
static void cache_path(struct sfsi_bcache *be, const struct bc_blob *b,
		       int64_t idx, char *out, size_t size)
{
	snprintf(out, size, "%s/%lld/%.2s/%s.%lldk.%lld", be->cache_dir,
		 (long long)b->b.tenant, b->b.sha, b->b.sha,
		 (long long)(be->block >> 10), (long long)idx);
}

/* The cache file last opened by a fetch: its first block and size. */
struct cache_file {
	int fd; /* -1: none */
	int64_t first;
	int64_t size;
	int touched;
};

/*
 * Whether a file of `size` bytes from block `first` on holds block idx
 * whole. Its size must end at a block's end or at the blob's: a file is
 * renamed into place only once written whole, so another size is not
 * one of ours (and is never served).
 */
static int file_holds(const struct bc_blob *b, int64_t first, int64_t size,
		      int64_t idx, size_t len)
{
	int64_t at = first * b->be->block, in = (idx - first) * b->be->block;

	if (size < 0 || at + size > b->b.size)
		return 0;
	if (size % b->be->block && at + size != b->b.size)
		return 0;
	return idx >= first && in + (int64_t)len <= size;
}

/*
 * cf holds block idx: the file already open, or the one of the files
 * that may hold it (a run begun up to SFSI_BC_MAX_SPAN - 1 blocks
 * before) that does: 1, else 0 (cf closed).
 */
static int cache_find(struct sfsi_bcache *be, const struct bc_blob *b,
		      int64_t idx, size_t len, struct cache_file *cf)
{
	char path[4096];
	struct stat sb;
	int64_t first;

	if (cf->fd >= 0 && file_holds(b, cf->first, cf->size, idx, len))
		return 1;
	if (cf->fd >= 0)
		close(cf->fd);
	cf->fd = -1;
	for (first = idx; first >= 0 && first > idx - SFSI_BC_MAX_SPAN;
	     first--) {
		cache_path(be, b, first, path, sizeof(path));
		cf->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (cf->fd < 0)
			continue;
		if (fstat(cf->fd, &sb) == 0 &&
		    file_holds(b, first, sb.st_size, idx, len)) {
			cf->first = first;
			cf->size = sb.st_size;
			cf->touched = 0;
			return 1;
		}
		close(cf->fd);
		cf->fd = -1;
	}
	return 0;
}

/* A cached block of exactly `len` bytes into buf: 1, else 0. */
static int cache_read(struct sfsi_bcache *be, const struct bc_blob *b,
		      int64_t idx, unsigned char *buf, size_t len,
		      struct cache_file *cf)
{
	off_t in;

	if (!cache_find(be, b, idx, len, cf))
		return 0;
	in = (off_t)((idx - cf->first) * be->block);
	if (pread(cf->fd, buf, len, in) != (ssize_t)len)
		return 0;
	/* its time of use, for the eviction's order */
	if (!cf->touched)
		cf->touched = futimens(cf->fd, NULL) == 0;
	return 1;
}

static void cache_file_close(struct cache_file *cf)
{
	if (cf->fd >= 0)
		close(cf->fd);
	cf->fd = -1;
}

struct cached {
	int64_t mtime_ns;
	int64_t size;
	char rel[160]; /* below the cache's directory (a block's is ~100) */
};

static int by_age(const void *a, const void *b)
{
	const struct cached *x = a, *y = b;

	return x->mtime_ns < y->mtime_ns ? -1 : x->mtime_ns > y->mtime_ns;
}

/*
 * A name of the cache directory's top level that holds blocks: a
 * tenant's number (cache_path). Nothing else there is the cache's: a
 * remote mount stages its writes in CACHE/staging/<pid>-<hex>/, whose
 * `lock` tells other processes the mount lives; counted as blocks, its
 * files took from the bound and left as the oldest (the lock first),
 * and the next mount of the cache then swept the live mount's staging.
 */
static int is_tenant_dir(const char *name)
{
	const char *c = name + (name[0] == '-');

	if (!*c)
		return 0;
	while (*c >= '0' && *c <= '9')
		c++;
	return !*c;
}

/*
 * Every cached block under dir (two levels down, below a tenant's
 * directory) counted in *total and appended to *v, named below the
 * cache's directory (`root` bytes of every path): however long the
 * directory's own path, each block can leave. A file of a name too long
 * to be a block is counted, not kept.
 */
static void cache_scan(const char *dir, size_t root, int depth,
		       struct cached **v, size_t *n, size_t *cap,
		       int64_t *total)
{
	char path[4096];
	struct dirent *de;
	struct stat sb;
	DIR *dh = opendir(dir);

	while (dh && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		if (depth == 0 && !is_tenant_dir(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &sb) < 0)
			continue;
		if (S_ISDIR(sb.st_mode) && depth < 2) {
			cache_scan(path, root, depth + 1, v, n, cap, total);
			continue;
		}
		if (!S_ISREG(sb.st_mode))
			continue;
		*total += sb.st_size;
		if (!v || strlen(path + root) >= sizeof((*v)->rel))
			continue;
		if (*n == *cap) {
			size_t c = *cap ? *cap * 2 : 256;
			struct cached *nv = realloc(*v, c * sizeof(**v));

			if (!nv)
				break;
			*v = nv;
			*cap = c;
		}
		(*v)[*n].mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
				    sb.st_mtim.tv_nsec;
		(*v)[*n].size = sb.st_size;
		sfs_strlcpy((*v)[*n].rel, path + root, sizeof((*v)[*n].rel));
		(*n)++;
	}
	if (dh)
		closedir(dh);
}

/*
 * Over the bound: look at what the directory really holds (other
 * processes add to it too) and remove the oldest blocks down to 90 %.
 */
static void cache_evict(struct sfsi_bcache *be)
{
	struct cached *v = NULL;
	size_t n = 0, cap = 0, i, root = strlen(be->cache_dir) + 1;
	int64_t total = 0, goal = be->cache_bytes / 10 * 9;
	char path[4096];

	cache_scan(be->cache_dir, root, 0, &v, &n, &cap, &total);
	if (v)
		qsort(v, n, sizeof(*v), by_age);
	for (i = 0; i < n && total > goal; i++) {
		snprintf(path, sizeof(path), "%s/%s", be->cache_dir, v[i].rel);
		if (unlink(path) == 0)
			total -= v[i].size;
	}
	be->cache_used = total;
	free(v);
}

/*
 * A run's blocks (iov, n of them, len bytes) into the cache file fd:
 * straight from their buffers to the disk (O_DIRECT, buffers aligned and
 * room to the next ALIGN after the last), then cut to len; the page
 * cache is not touched. Copying each block into fresh page cache pages
 * was a third of a cold read's CPU (perf: 33 % in
 * copy_folio_from_iter_atomic, the reader and the cache sharing two
 * cores). Where the file system refuses O_DIRECT, a plain write.
 */
static int write_blocks(int fd, int direct, const struct iovec *iov, int n,
			size_t len)
{
	struct iovec d[SFSI_BC_MAX_SPAN];
	size_t padded;

	if (!direct)
		return writev(fd, iov, n) == (ssize_t)len;
	memcpy(d, iov, (size_t)n * sizeof(*d));
	d[n - 1].iov_len = (d[n - 1].iov_len + ALIGN - 1) / ALIGN * ALIGN;
	padded = len - iov[n - 1].iov_len + d[n - 1].iov_len;
	return writev(fd, d, n) == (ssize_t)padded &&
	       (padded == len || ftruncate(fd, (off_t)len) == 0);
}

/*
 * Some file systems take the O_DIRECT open and refuse the write (EINVAL:
 * some FUSE and overlay setups, ZFS versions): fd made plain, emptied and
 * written again; 1 when that worked.
 */
static int write_plain_again(int fd, const struct iovec *iov, int n, size_t len)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_DIRECT) == 0 &&
	       ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 &&
	       write_blocks(fd, 0, iov, n, len);
}

/* O_DIRECT takes a run whose blocks but the last end on an ALIGN. */
static int direct_fits(const struct iovec *iov, int n)
{
	int k;

	for (k = 0; k < n - 1; k++)
		if (iov[k].iov_len % ALIGN)
			return 0;
	return 1;
}

/* n blocks from block idx on, fetched in one range, as one cache file. */
static void cache_write(struct sfsi_bcache *be, const struct bc_blob *b,
			int64_t idx, const struct iovec *iov, int n)
{
	char path[4096], tmp[4200], *slash;
	size_t len = 0;
	int fd, ok, k;
	int direct = !__atomic_load_n(&be->no_direct, __ATOMIC_RELAXED) &&
		     direct_fits(iov, n);

	for (k = 0; k < n; k++)
		len += iov[k].iov_len;
	if (be->cache_bytes <= 0 || (int64_t)len > be->cache_bytes)
		return;
	cache_path(be, b, idx, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)gettid());
	slash = strrchr(tmp, '/');
	*slash = '\0';
	sfsi_mkdirs(tmp);
	*slash = '/';
	fd = open(tmp,
		  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
			  (direct ? O_DIRECT : 0),
		  0600);
	if (fd < 0 && direct && errno == EINVAL) {
		direct = 0;
		__atomic_store_n(&be->no_direct, 1, __ATOMIC_RELAXED);
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return;
	ok = write_blocks(fd, direct, iov, n, len);
	if (!ok && direct && errno == EINVAL) {
		/* the open took O_DIRECT, the write did not: never again */
		ok = write_plain_again(fd, iov, n, len);
		if (ok)
			__atomic_store_n(&be->no_direct, 1, __ATOMIC_RELAXED);
	}
	/* written whole, then renamed: a cache file is always complete */
	if (!ok || close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return;
	}
	pthread_mutex_lock(&be->cache_mu);
	be->cache_used += (int64_t)len;
	if (be->cache_used > be->cache_bytes)
		cache_evict(be);
	pthread_mutex_unlock(&be->cache_mu);
}

/* ---- the fetchers ---- */

/*
 * A slot's buffer, aligned and padded for cache_write's O_DIRECT. One of
 * a huge page or more is made of huge pages (MADV_HUGEPAGE, where THP is
 * "madvise"): its O_DIRECT write is then a few contiguous segments, where
 * 4 KiB pages made 1,024 per 4 MiB block and the disk took it as five
 * requests or more (virtio's 254 segments each); and filling it faults
 * twice, not 1,024 times. Cold reads of 1 GiB (A/B, medians of 5
 * rounds): the disk busy 2.63 -> 1.38 s, the mount's CPU 1.72 -> 1.38 s.
 */
static unsigned char *block_buf(int64_t size)
{
	size_t padded = ((size_t)size + ALIGN - 1) / ALIGN * ALIGN;
	size_t align = padded >= HUGE_PAGE ? HUGE_PAGE : ALIGN;
	void *p = NULL;

	if (posix_memalign(&p, align, padded ? padded : ALIGN))
		return NULL;
	if (align == HUGE_PAGE)
		madvise(p, padded / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
	return p;
}

/* b and its buffers, once nothing fetches for it. */
static void blob_free(struct bc_blob *b)
{
	int i;

	for (i = 0; i < b->nslots; i++)
		free(b->slots[i].buf);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b);
}

/* The length of block idx: `block`, the last one what is left. */
static size_t block_len(const struct bc_blob *b, int64_t idx)
{
	int64_t off = idx * b->be->block;

	return (size_t)(b->b.size - off < b->be->block ? b->b.size - off
						       : b->be->block);
}

/*
 * A job's blocks as one range (blocks in order): the bytes go to each
 * slot in turn. A block on disk (`cached`) is stepped over, its bytes
 * dropped (received into `drop`): it is ready, and readers may be
 * reading its buffer.
 */
struct run_fill {
	struct bc_blob *b;
	struct slot *sl[SFSI_BC_MAX_SPAN];
	size_t want[SFSI_BC_MAX_SPAN];
	unsigned char cached[SFSI_BC_MAX_SPAN];
	unsigned char fetched[SFSI_BC_MAX_SPAN]; /* whole, ready, pinned */
	int k, last; /* the slot being filled, the range's last */
	size_t len;  /* bytes in slot k so far */
	unsigned char drop[16 << 10];
};

/*
 * Slot k of the range holds its whole block (b locked): ready; one
 * fetched from far away is pinned until run_to_disk has written it.
 */
static void slot_ready(struct run_fill *f, int k, int fetched)
{
	struct slot *sl = f->sl[k];

	sl->st = SFS_OK;
	sl->len = f->want[k];
	sl->state = S_READY;
	if (fetched) {
		sl->pinned = (f->b->flags & SFS_BLOB_CACHED) != 0;
		f->fetched[k] = 1;
	} else {
		f->cached[k] = 1;
	}
}

/*
 * A block of the range came whole before its end: ready at once, so a
 * reader waits for its own block, not for the rest of the range.
 */
static void fetched_whole(struct run_fill *f)
{
	pthread_mutex_lock(&f->b->mu);
	slot_ready(f, f->k, 1);
	pthread_cond_broadcast(&f->b->cv);
	pthread_mutex_unlock(&f->b->mu);
}

/* sfsi_bc_room: the rest of slot k's block (or of drop, for a cached one) */
static void *run_room(void *arg, size_t *room)
{
	struct run_fill *f = arg;

	*room = 0;
	if (f->k > f->last)
		return NULL; /* more than the range asked for */
	*room = f->want[f->k] - f->len;
	if (f->cached[f->k]) {
		if (*room > sizeof(f->drop))
			*room = sizeof(f->drop);
		return f->drop;
	}
	return f->sl[f->k]->buf + f->len;
}

/* sfsi_bc_put: n bytes came at run_room's place */
static int run_put(void *arg, size_t n)
{
	struct run_fill *f = arg;

	f->len += n;
	if (f->len < f->want[f->k])
		return 0;
	/*
	 * the range's last block is made ready by run_end, once the fetch
	 * has given its connection back: a reader woken here may ask for
	 * its next block while the connection is still taken, and that
	 * fetch opens another. A lone block (a seek) is thus ready when it
	 * was before runs.
	 */
	if (!f->cached[f->k] && f->k < f->last)
		fetched_whole(f);
	f->k++;
	f->len = 0;
	return 0;
}

/* sfsi_bc_sink: bytes of the fetch's own buffer copied to their place */
static int run_sink(void *arg, const void *data, size_t len)
{
	struct run_fill *f = arg;
	const unsigned char *p = data;
	unsigned char *to;
	size_t n;

	while (len) {
		to = run_room(f, &n);
		if (!n)
			return SFS_IO; /* more than the range asked for */
		if (n > len)
			n = len;
		if (to != f->drop)
			memcpy(to, p, n);
		run_put(f, n);
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * The job's slots loading, with buffers (b locked): 0, or -1 when a
 * buffer could not be had. Every block of a small blob fits in the
 * blob's size.
 */
static int run_start(struct sfsi_bcache *be, struct sfsi_bc_job *j,
		     struct run_fill *f)
{
	struct bc_blob *b = j->b;
	struct slot *sl;
	int k, ok = 1;

	memset(f, 0, sizeof(*f));
	f->b = b;
	for (k = 0; k < j->n; k++) {
		sl = &b->slots[j->slot[k]];
		sl->state = S_LOADING;
		if (!sl->buf)
			sl->buf = block_buf(b->b.size < be->block ? b->b.size
								  : be->block);
		ok = ok && sl->buf;
		f->sl[k] = sl;
		f->want[k] = block_len(b, sl->idx);
	}
	f->last = j->n - 1;
	return ok ? 0 : -1;
}

/*
 * Blocks of the job the disk cache holds, ready at once; the range to
 * fetch then runs from the first block it lacks to the last (f->k ..
 * f->last), or f->k > f->last when it lacks none.
 */
static void run_from_disk(struct sfsi_bcache *be, struct run_fill *f)
{
	struct cache_file cf = { .fd = -1 };
	struct bc_blob *b = f->b;
	int k;

	for (k = 0; k <= f->last; k++) {
		if (!(b->flags & SFS_BLOB_CACHED) ||
		    !cache_read(be, b, f->sl[k]->idx, f->sl[k]->buf, f->want[k],
				&cf))
			continue;
		pthread_mutex_lock(&b->mu);
		slot_ready(f, k, 0);
		pthread_cond_broadcast(&b->cv);
		pthread_mutex_unlock(&b->mu);
	}
	cache_file_close(&cf);
	while (f->k <= f->last && f->cached[f->k])
		f->k++;
	while (f->last >= f->k && f->cached[f->last])
		f->last--;
}

/*
 * After the range (b locked): the last block, if the range came whole,
 * is ready (a block of 0 bytes, an empty blob's, is whole); a block
 * neither on disk nor whole failed with st (a short answer: SFS_IO).
 */
static void run_end(struct run_fill *f, int first, enum sfs_status st,
		    struct sfs_err *e)
{
	struct slot *sl;
	int k;

	for (k = first; k <= f->last; k++) {
		sl = f->sl[k];
		if (f->cached[k] || f->fetched[k])
			continue;
		if (!st &&
		    ((k == f->last && f->k > f->last) || f->want[k] == 0)) {
			slot_ready(f, k, 1);
			continue;
		}
		if (!st)
			st = sfs_errf(e, SFS_IO, SFS_R_NONE,
				      "short block of '%s'", f->b->key);
		sl->st = st;
		sl->why = e->reason;
		sfs_strlcpy(sl->msg, e->message, sizeof(sl->msg));
		sl->state = S_FAILED;
	}
}

/*
 * Blocks a cache file may hold: a run, unless that is more than a
 * quarter of the bound (a small -o cache_size would then keep no more
 * than a file or two: such a cache keeps blocks).
 */
static int file_span(const struct sfsi_bcache *be)
{
	int n = SFSI_BC_MAX_SPAN;

	while (n > 1 && (int64_t)n * be->block > be->cache_bytes / 4)
		n--;
	return n;
}

/*
 * The stretch of consecutive blocks fetched whole from slot k on, at most
 * `most`, as iov: how many. The padding O_DIRECT writes after a block
 * (room block_buf made, never read) is zeroed, so no bytes of an earlier
 * use of the buffer reach the disk.
 */
static int fetched_stretch(struct run_fill *f, int k, int most,
			   struct iovec *iov)
{
	struct slot *sl;
	size_t want;
	int n;

	for (n = 0; n < most && k + n < SFSI_BC_MAX_SPAN && f->fetched[k + n];
	     n++) {
		sl = f->sl[k + n];
		want = f->want[k + n];
		memset(sl->buf + want, 0,
		       (want + ALIGN - 1) / ALIGN * ALIGN - want);
		iov[n].iov_base = sl->buf;
		iov[n].iov_len = want;
	}
	return n;
}

/*
 * The blocks fetched whole to the disk cache while readers go on (b not
 * locked: pinned slots are not reused), each stretch of consecutive ones
 * as one file.
 */
static void run_to_disk(struct sfsi_bcache *be, struct run_fill *f)
{
	struct iovec iov[SFSI_BC_MAX_SPAN];
	int k, n, most = file_span(be);

	if (!(f->b->flags & SFS_BLOB_CACHED))
		return;
	for (k = 0; k < SFSI_BC_MAX_SPAN; k += n ? n : 1) {
		n = fetched_stretch(f, k, most, iov);
		if (n)
			cache_write(be, f->b, f->sl[k]->idx, iov, n);
	}
}

static void fetch_one(struct sfsi_bcache *be, struct sfsi_bc_job *j)
{
	struct bc_blob *b = j->b;
	struct run_fill f;
	const struct sfsi_bc_dest dest = {
		.sink = run_sink, .room = run_room, .put = run_put, .arg = &f
	};
	struct sfs_err e;
	enum sfs_status st = SFS_OK;
	int64_t off, len = 0;
	int k, first, last;

	sfs_err_init(&e);
	pthread_mutex_lock(&b->mu);
	if (b->closing) {
		for (k = 0; k < j->n; k++)
			b->slots[j->slot[k]].state = S_EMPTY;
		goto done;
	}
	if (run_start(be, j, &f) < 0)
		st = sfs_errf(&e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	pthread_mutex_unlock(&b->mu);
	if (!st)
		run_from_disk(be, &f);
	first = f.k;
	for (k = f.k; k <= f.last; k++)
		len += (int64_t)f.want[k];
	if (!st && first <= f.last) {
		off = f.sl[first]->idx * be->block;
		st = be->fetch(be->ctx, b->key, off, len, &dest, &e);
	}
	pthread_mutex_lock(&b->mu);
	run_end(&f, first, st, &e);
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	run_to_disk(be, &f);
	pthread_mutex_lock(&b->mu);
	/* pinned only where fetched_whole pinned it: a cached blob's */
	for (k = 0; k < j->n; k++)
		if (f.fetched[k] && (b->flags & SFS_BLOB_CACHED))
			f.sl[k]->pinned = 0;
done:
	last = --b->inflight == 0 && b->closing;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (last)
		blob_free(b); /* closed while this fetch ran (bc_close) */
}

/*
 * May a fetcher take the queue's head (be->mu locked)? Urgent jobs are
 * queued first, so a read-ahead job at the head means none waits; it
 * leaves the fetchers kept for urgent ones.
 */
static int may_take(const struct sfsi_bcache *be)
{
	return be->head && (be->head->urgent || be->ahead_busy < be->ahead_max);
}

static void *fetcher(void *arg)
{
	struct sfsi_bcache *be = arg;
	struct sfsi_bc_job *j;
	int ahead;

	for (;;) {
		pthread_mutex_lock(&be->mu);
		while (!may_take(be) && !be->stop)
			pthread_cond_wait(&be->cv, &be->mu);
		j = be->head; /* when stopping, whatever is left */
		if (j) {
			be->head = j->next;
			if (!be->head)
				be->tail = NULL;
		}
		ahead = j && !j->urgent;
		be->ahead_busy += ahead;
		pthread_mutex_unlock(&be->mu);
		if (!j)
			return NULL; /* stopping, nothing queued */
		fetch_one(be, j);
		free(j);
		if (ahead) { /* this thread looks at the queue next */
			pthread_mutex_lock(&be->mu);
			be->ahead_busy--;
			pthread_mutex_unlock(&be->mu);
		}
	}
}

/* Queue a job: one someone waits for goes first. */
static void enqueue(struct sfsi_bcache *be, struct sfsi_bc_job *j)
{
	pthread_mutex_lock(&be->mu);
	if (j->urgent || !be->tail) {
		j->next = be->head;
		be->head = j;
		if (!be->tail)
			be->tail = j;
	} else {
		be->tail->next = j;
		be->tail = j;
	}
	pthread_cond_signal(&be->cv);
	pthread_mutex_unlock(&be->mu);
}

/* Read-ahead's share of n fetchers: all but the kept, at least one. */
static int ahead_max(const struct sfsi_bcache *be, int n)
{
	int kept = be->urgent_fetchers > 0 ? be->urgent_fetchers : 0;

	return n - kept > 1 ? n - kept : 1;
}

enum sfs_status sfsi_bcache_start(struct sfsi_bcache *be, struct sfs_err *e)
{
	int64_t total = 0;
	int i;

	pthread_mutex_init(&be->mu, NULL);
	pthread_cond_init(&be->cv, NULL);
	pthread_mutex_init(&be->cache_mu, NULL);
	if (be->cache_bytes > 0) {
		if (sfsi_mkdirs(be->cache_dir) < 0)
			return sfsi_errno_status(e, errno,
						 "making the block cache");
		cache_scan(be->cache_dir, 0, 0, NULL, NULL, NULL, &total);
		be->cache_used = total;
	}
	be->threads = calloc((size_t)be->nthreads, sizeof(*be->threads));
	if (!be->threads)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	be->ahead_max = ahead_max(be, be->nthreads);
	for (i = 0; i < be->nthreads; i++)
		if (pthread_create(&be->threads[i], NULL, fetcher, be))
			break;
	if (i == 0)
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot start fetchers");
	pthread_mutex_lock(&be->mu);
	be->nthreads = i;
	be->ahead_max = ahead_max(be, i);
	pthread_mutex_unlock(&be->mu);
	return SFS_OK;
}

void sfsi_bcache_stop(struct sfsi_bcache *be)
{
	int i;

	if (!be->threads)
		return;
	pthread_mutex_lock(&be->mu);
	be->stop = 1;
	pthread_cond_broadcast(&be->cv);
	pthread_mutex_unlock(&be->mu);
	for (i = 0; i < be->nthreads; i++)
		pthread_join(be->threads[i], NULL);
	free(be->threads);
	be->threads = NULL;
	pthread_mutex_destroy(&be->mu);
	pthread_cond_destroy(&be->cv);
	pthread_mutex_destroy(&be->cache_mu);
}

/* ---- open blobs ---- */

/* The slot holding block idx, or -1 (b locked). */
static int find_slot(struct bc_blob *b, int64_t idx)
{
	int i;

	for (i = 0; i < b->nslots; i++)
		if (b->slots[i].idx == idx && b->slots[i].state != S_EMPTY)
			return i;
	return -1;
}

/*
 * A slot for block idx, marked queued (b locked): the least recently used
 * one that is not busy and not holding a block in [keep, idx); -1 if all
 * are.
 */
static int claim_slot(struct bc_blob *b, int64_t idx, int64_t keep)
{
	struct slot *sl;
	int i, best = -1;

	for (i = 0; i < b->nslots; i++) {
		sl = &b->slots[i];
		if (sl->state == S_QUEUED || sl->state == S_LOADING ||
		    sl->pinned || sl->waiters || sl->lent)
			continue;
		if (sl->state == S_READY && sl->idx >= keep && sl->idx < idx)
			continue;
		if (best < 0 || sl->state == S_EMPTY ||
		    (b->slots[best].state != S_EMPTY &&
		     sl->used < b->slots[best].used))
			best = i;
	}
	if (best < 0)
		return -1;
	sl = &b->slots[best];
	sl->idx = idx;
	sl->state = S_QUEUED;
	sl->used = ++b->tick;
	return best;
}

/*
 * Fetch the blocks of n claimed slots (consecutive blocks, in order) in
 * one range (b locked): 0, or -1 with the slots empty again.
 */
static int queue_run(struct bc_blob *b, const int *slot, int n, int urgent)
{
	struct sfsi_bc_job *j = calloc(1, sizeof(*j));
	int k;

	if (!j) {
		for (k = 0; k < n; k++)
			b->slots[slot[k]].state = S_EMPTY;
		return -1;
	}
	j->b = b;
	memcpy(j->slot, slot, (size_t)n * sizeof(*slot));
	j->n = n;
	j->urgent = urgent;
	b->inflight++;
	enqueue(b->be, j);
	return 0;
}

/*
 * Make sure block idx is in a slot or on its way (b locked), fetched
 * alone: the slot, or -1 if all are busy.
 */
static int want_block(struct bc_blob *b, int64_t idx, int64_t keep, int urgent)
{
	int i = find_slot(b, idx);

	if (i >= 0)
		return i;
	i = claim_slot(b, idx, keep);
	if (i < 0 || queue_run(b, &i, 1, urgent) < 0)
		return -1;
	return i;
}

/*
 * The `readahead` blocks after idx in slots or on their way, a run of up
 * to `span` blocks not yet asked for in one fetch. A run may end up to
 * span - 1 blocks past the window, so the window, moving a block at a
 * time, next lacks a whole run, not one block.
 */
static void read_ahead(struct bc_blob *b, int64_t idx)
{
	int span = b->be->span > 1 ? b->be->span : 1;
	int run[SFSI_BC_MAX_SPAN], n;
	int64_t k;

	if (span > SFSI_BC_MAX_SPAN)
		span = SFSI_BC_MAX_SPAN;
	for (k = idx + 1; k <= idx + b->be->readahead && k < b->nblocks; k++) {
		if (find_slot(b, k) >= 0)
			continue;
		n = 0;
		while (n < span && k + n < b->nblocks &&
		       find_slot(b, k + n) < 0 &&
		       (run[n] = claim_slot(b, k + n, idx)) >= 0)
			n++;
		if (!n || queue_run(b, run, n, 0) < 0)
			break;
		k += n - 1;
	}
}

/*
 * The slot holding the block of byte off, fetched (b locked): *out, or the
 * fetch's error. The caller copies or lends from it before unlocking.
 */
static enum sfs_status take_block(struct bc_blob *b, int64_t off,
				  struct slot **out, struct sfs_err *e)
{
	int64_t idx = off / b->be->block;
	enum sfs_status ret = SFS_OK;
	struct slot *sl;
	int i;

	/*
	 * A thread that may not wait reads a block in memory or refuses,
	 * before anything is queued: a fetch it left going made its caller's
	 * bc_close wait for the server (review s16 F8, 1 run in 4).
	 */
	if (sfsi_nowait()) {
		i = find_slot(b, idx);
		if ((i < 0 || b->slots[i].state != S_READY) &&
		    sfsi_would_wait(e, "a block not in memory"))
			return SFS_WOULD_WAIT;
	}
	if (idx == b->last_idx || idx == b->last_idx + 1)
		b->seq++;
	else
		b->seq = 0;
	b->last_idx = idx;
	/*
	 * A slot waited for is not given to another block (waiters): a
	 * reader of another block of the same open file took it once it
	 * was ready, before this reader woke, and this read failed ("a
	 * block was lost"). A slot emptied meanwhile (a failed fetch whose
	 * error another waiter took) is asked for again.
	 */
	do {
		while ((i = want_block(b, idx, idx, 1)) < 0)
			pthread_cond_wait(&b->cv, &b->mu); /* all busy */
		/* nor does it start fetches its bc_close would wait for */
		if (((b->flags & SFS_BLOB_SEQUENTIAL) || b->seq >= 2) &&
		    !sfsi_nowait())
			read_ahead(b, idx);
		sl = &b->slots[i];
		sl->waiters++;
		while (sl->state == S_QUEUED || sl->state == S_LOADING)
			pthread_cond_wait(&b->cv, &b->mu);
		sl->waiters--;
	} while (sl->state == S_EMPTY);
	if (sl->state == S_FAILED) {
		ret = sfs_errf(e, sl->st, sl->why, "%s", sl->msg);
		if (!sl->waiters)
			sl->state = S_EMPTY; /* the next read tries again */
		return ret;
	}
	sl->used = ++b->tick;
	*out = sl;
	return SFS_OK;
}

/* How many of len bytes at off sl's block holds, from *in on. */
static size_t in_block(const struct bc_blob *b, const struct slot *sl,
		       int64_t off, size_t len, size_t *in)
{
	size_t n;

	*in = (size_t)(off - sl->idx * b->be->block);
	n = sl->len > *in ? sl->len - *in : 0;
	return n > len ? len : n;
}

static enum sfs_status bc_pread(struct sfs_blob *bb, void *buf, size_t len,
				int64_t off, size_t *got, struct sfs_err *e)
{
	struct bc_blob *b = (struct bc_blob *)bb;
	enum sfs_status ret;
	struct slot *sl;
	size_t in;

	pthread_mutex_lock(&b->mu);
	ret = take_block(b, off, &sl, e);
	if (!ret) {
		*got = in_block(b, sl, off, len, &in);
		memcpy(buf, sl->buf + in, *got);
	}
	pthread_mutex_unlock(&b->mu);
	return ret;
}

/*
 * The bytes where the slot holds them, for use() to send on (the mount's
 * reply): one copy fewer than pread. The slot is lent meanwhile (never
 * given to another block) and counts in inflight, so a bc_close during
 * use() leaves the blob to be freed here.
 */
static enum sfs_status bc_lend(struct sfs_blob *bb, int64_t off, size_t len,
			       sfs_blob_use use, void *arg, struct sfs_err *e)
{
	struct bc_blob *b = (struct bc_blob *)bb;
	enum sfs_status ret;
	struct slot *sl;
	size_t in, n;
	int last;

	/*
	 * Refused before take_block: the caller reads these bytes again
	 * (pread), and a block taken twice counted twice in the sequential
	 * detection (read-ahead a block early; review s18 LOW-2).
	 */
	if (off / b->be->block != (off + (int64_t)len - 1) / b->be->block)
		return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				"the bytes lie across two blocks");
	pthread_mutex_lock(&b->mu);
	ret = take_block(b, off, &sl, e);
	if (!ret) {
		n = in_block(b, sl, off, len, &in);
		if (n < len) /* a block shorter than the blob says */
			ret = sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				       "the bytes lie across two blocks");
	}
	if (ret) {
		pthread_mutex_unlock(&b->mu);
		return ret;
	}
	sl->lent++;
	b->inflight++;
	pthread_mutex_unlock(&b->mu);
	use(arg, sl->buf + in, n);
	pthread_mutex_lock(&b->mu);
	sl->lent--;
	last = --b->inflight == 0 && b->closing;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (last)
		blob_free(b);
	return SFS_OK;
}

/*
 * Ready: every block of the range is in a slot (memory). A block only in
 * the disk cache is read by a fetcher, which may be busy with a fetch
 * from far away: that read may wait.
 */
static int bc_ready(struct sfs_blob *bb, int64_t off, size_t len)
{
	struct bc_blob *b = (struct bc_blob *)bb;
	int64_t idx, last = (off + (int64_t)len - 1) / b->be->block;
	int i, ok = 1;

	pthread_mutex_lock(&b->mu);
	for (idx = off / b->be->block; ok && idx <= last; idx++) {
		i = find_slot(b, idx);
		ok = i >= 0 && b->slots[i].state == S_READY;
	}
	pthread_mutex_unlock(&b->mu);
	return ok;
}

static enum sfs_status bc_url(struct sfs_blob *bb, int expires_s,
			      const char *ctype, const char *disposition,
			      char **url, struct sfs_err *e)
{
	struct bc_blob *b = (struct bc_blob *)bb;

	if (!b->be->url)
		return sfsi_blob_no_url(bb, expires_s, ctype, disposition, url,
					e);
	return b->be->url(b->be->ctx, b->key, expires_s, ctype, disposition,
			  url, e);
}

/*
 * Closed: queued jobs see `closing` and let go; a fetch under way is not
 * waited for (it may wait for a stalled server, and the closer may be
 * the mount's reading thread: review s17 F2): the last one frees b.
 */
static void bc_close(struct sfs_blob *bb)
{
	struct bc_blob *b = (struct bc_blob *)bb;
	int left;

	pthread_mutex_lock(&b->mu);
	b->closing = 1;
	left = b->inflight;
	pthread_mutex_unlock(&b->mu);
	if (!left)
		blob_free(b);
}

static const struct sfsi_blob_ops bc_ops = {
	.pread = bc_pread,
	.url = bc_url,
	.close = bc_close,
	.ready = bc_ready,
	.lend = bc_lend,
};

enum sfs_status sfsi_bcache_blob_open(struct sfsi_bcache *be, int64_t tenant,
				      const char *sha, int64_t size,
				      unsigned flags, const char *key,
				      struct sfs_blob **out, struct sfs_err *e)
{
	struct bc_blob *b = calloc(1, sizeof(*b));
	int i;

	*out = NULL;
	if (!b)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	b->b.ops = &bc_ops;
	b->b.tenant = tenant;
	sfs_strlcpy(b->b.sha, sha, sizeof(b->b.sha));
	b->b.size = size;
	b->b.fd = -1;
	b->be = be;
	b->flags = flags;
	if (strlen(key) >= sizeof(b->key)) {
		free(b);
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"a blob key too long");
	}
	sfs_strlcpy(b->key, key, sizeof(b->key));
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->nblocks = (size + be->block - 1) / be->block;
	/* the window, a run past it, the block read */
	b->nslots = be->readahead + (be->span > 1 ? be->span : 1) + 1;
	if (b->nslots > MAX_SLOTS)
		b->nslots = MAX_SLOTS;
	for (i = 0; i < b->nslots; i++)
		b->slots[i].idx = -1;
	b->last_idx = -2;
	*out = &b->b;
	return SFS_OK;
}
