/*
 * Tests of the block cache's reader (core/blockcache.c) with a fetch
 * function of the test's own that counts which blocks it is asked for:
 * the sequential detection starts read-ahead at the third block read in
 * order, not before, and a lend refused because its bytes lie across two
 * blocks does not count as a read (review s18 LOW-2: its first block
 * counted twice, and read-ahead started a block early). A sequential
 * reader's read-ahead asks for runs of `span` blocks in one range, a
 * block read out of order is asked for alone, and a block of a run is
 * readable as soon as it came whole, even when the rest of the run fails.
 * The blocks of a range go to the disk cache as one file, found there
 * with the server gone, a seek into its middle too, never when cut.
 * Read-ahead leaves the fetchers kept for urgent jobs: a read in another
 * blob is served while every other fetcher is held by read-ahead.
 * A mount's staging directory in the cache's is neither counted nor
 * evicted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "blob_i.h"
#include "blockcache_i.h"
#include "testhelp.h"

#define BLOCK 4096
#define NBLOCKS 8

/* What the fetch function was asked for: a count per block. */
struct asked {
	pthread_mutex_t mu;
	int blocks[NBLOCKS];
};

static enum sfs_status fetch(void *ctx, const char *key, int64_t off,
			     int64_t len, const struct sfsi_bc_dest *d,
			     struct sfs_err *e)
{
	struct asked *a = ctx;
	unsigned char buf[BLOCK];

	(void)key;
	(void)e;
	pthread_mutex_lock(&a->mu);
	a->blocks[off / BLOCK]++;
	pthread_mutex_unlock(&a->mu);
	memset(buf, (int)(off / BLOCK), sizeof(buf));
	return d->sink(d->arg, buf, (size_t)len) ? SFS_IO : SFS_OK;
}

static void count_lent(void *arg, const void *data, size_t len)
{
	(void)data;
	*(size_t *)arg += len;
}

/* A cache of one fetcher, two blocks read ahead, nothing on disk. */
static int start(struct sfsi_bcache *bc, struct asked *a)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	memset(bc, 0, sizeof(*bc));
	bc->block = BLOCK;
	bc->readahead = 2;
	bc->nthreads = 1;
	bc->fetch = fetch;
	bc->ctx = a;
	return sfsi_bcache_start(bc, NULL);
}

/* How many fetches of block idx (once the fetchers have stopped). */
static int fetched(const struct asked *a, int idx)
{
	return a->blocks[idx];
}

/* n bytes read at off through sfs_blob_pread's loop over blocks */
static size_t read_all(struct sfs_blob *b, int64_t off, size_t n)
{
	unsigned char buf[2 * BLOCK];
	size_t done = 0, got, want;

	while (done < n) {
		want = n - done < sizeof(buf) ? n - done : sizeof(buf);
		if (sfs_blob_pread(b, buf, want, off + (int64_t)done, &got,
				   NULL) ||
		    !got)
			break;
		done += got;
	}
	return done;
}

/*
 * A read across blocks 0 and 1, tried as a lend first (as the mount
 * does), is two blocks in order: no read-ahead yet. The old code counted
 * block 0 twice (the refused lend, then the pread) and fetched blocks 2
 * and 3 ahead. A third block in order then starts the read-ahead.
 */
static void test_refused_lend_not_counted(void)
{
	struct sfsi_bcache bc;
	struct sfs_blob *b = NULL;
	struct asked a;
	size_t lent = 0;

	REQUIRE_ST(start(&bc, &a), SFS_OK);
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "aa", NBLOCKS * BLOCK, 0, "k",
					 &b, NULL),
		   SFS_OK);
	CHECK_ST(sfs_blob_lend(b, BLOCK - 100, 200, count_lent, &lent, NULL),
		 SFS_UNSUPPORTED);
	CHECK(lent == 0);
	CHECK(read_all(b, BLOCK - 100, 200) == 200);
	/* every fetch queued has run once the fetchers stop */
	sfsi_bcache_stop(&bc);
	CHECK(fetched(&a, 0) == 1 && fetched(&a, 1) == 1);
	CHECK(fetched(&a, 2) == 0 && fetched(&a, 3) == 0);
	sfs_blob_close(b);
	pthread_mutex_destroy(&a.mu);

	REQUIRE_ST(start(&bc, &a), SFS_OK);
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "aa", NBLOCKS * BLOCK, 0, "k",
					 &b, NULL),
		   SFS_OK);
	CHECK(read_all(b, 0, 3 * BLOCK) == 3 * BLOCK);
	sfsi_bcache_stop(&bc);
	CHECK(fetched(&a, 3) == 1 && fetched(&a, 4) == 1);
	CHECK(fetched(&a, 5) == 0);
	sfs_blob_close(b);
	pthread_mutex_destroy(&a.mu);
}

/* The ranges asked for, in the order asked (block, blocks). */
struct ranges {
	pthread_mutex_t mu;
	int n;
	int first[2 * NBLOCKS], len[2 * NBLOCKS];
	int fail_runs; /* a range of two blocks or more fails after one */
	int gone;      /* every fetch fails: the server is gone */
	int pull;      /* bytes received in place (room, put), odd pieces */
	int poison;    /* block poison - 1 is sent as 0xee bytes (0: none) */
};

/*
 * n bytes of one value received in place: pieces of 1000 bytes
 * or what room gives, as a connection's recv would. 0, or -1.
 */
static int pull_block(const struct sfsi_bc_dest *d, int value, size_t n)
{
	size_t left = n, fit;
	unsigned char *to;

	while (left) {
		to = d->room(d->arg, &fit);
		if (!fit)
			return -1;
		fit = fit < 1000 ? fit : 1000;
		fit = fit < left ? fit : left;
		memset(to, value, fit);
		if (d->put(d->arg, fit))
			return -1;
		left -= fit;
	}
	return 0;
}

/* Each block's bytes are its index, sent a block at a time. */
static enum sfs_status fetch_ranges(void *ctx, const char *key, int64_t off,
				    int64_t len, const struct sfsi_bc_dest *d,
				    struct sfs_err *e)
{
	struct ranges *r = ctx;
	unsigned char buf[BLOCK];
	int64_t at, n;

	(void)key;
	if (r->gone)
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "the server is gone");
	pthread_mutex_lock(&r->mu);
	if (r->n < 2 * NBLOCKS) {
		r->first[r->n] = (int)(off / BLOCK);
		r->len[r->n] = (int)(len / BLOCK);
		r->n++;
	}
	pthread_mutex_unlock(&r->mu);
	for (at = off; at < off + len; at += BLOCK) {
		n = off + len - at < BLOCK ? off + len - at : BLOCK;
		memset(buf,
		       at / BLOCK == r->poison - 1 ? 0xee : (int)(at / BLOCK),
		       sizeof(buf));
		if (r->pull ? pull_block(d, buf[0], (size_t)n)
			    : d->sink(d->arg, buf, (size_t)n))
			return SFS_IO;
		if (r->fail_runs && len > BLOCK)
			return sfs_errf(e, SFS_IO, SFS_R_NONE, "cut");
	}
	return SFS_OK;
}

static int start_ranges(struct sfsi_bcache *bc, struct ranges *r, int fail)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->fail_runs = fail;
	memset(bc, 0, sizeof(*bc));
	bc->block = BLOCK;
	bc->readahead = 4;
	bc->span = 2;
	bc->nthreads = 1;
	bc->fetch = fetch_ranges;
	bc->ctx = r;
	return sfsi_bcache_start(bc, NULL);
}

/* Block idx, of len bytes, read whole and right: 1, else 0. */
static int read_block_of(struct sfs_blob *b, int idx, size_t len)
{
	unsigned char buf[BLOCK], want[BLOCK];
	size_t got = 0;

	memset(want, idx, sizeof(want));
	return sfs_blob_pread(b, buf, BLOCK, (int64_t)idx * BLOCK, &got,
			      NULL) == SFS_OK &&
	       got == len && memcmp(buf, want, len) == 0;
}

static int read_block(struct sfs_blob *b, int idx)
{
	return read_block_of(b, idx, BLOCK);
}

/*
 * Blocks 0-2 in order are asked for alone; at the third, read-ahead
 * (4 blocks, span 2) asks for 3-4 and 5-6 as two ranges, then 7 (the
 * last). A reader that jumps (block 6, then 1) asks for its block alone.
 * Before span, every block was a range of its own.
 */
static void test_read_ahead_in_runs(void)
{
	static const int first[] = { 0, 1, 2, 3, 5, 7, 6, 1 };
	static const int len[] = { 1, 1, 1, 2, 2, 1, 1, 1 };
	struct sfsi_bcache bc;
	struct sfs_blob *b = NULL;
	struct ranges r;
	int i, ok = 1;

	REQUIRE_ST(start_ranges(&bc, &r, 0), SFS_OK);
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "aa", NBLOCKS * BLOCK, 0, "k",
					 &b, NULL),
		   SFS_OK);
	for (i = 0; i < NBLOCKS; i++)
		ok = ok && read_block(b, i);
	CHECK(ok);
	sfs_blob_close(b);
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "aa", NBLOCKS * BLOCK, 0, "k",
					 &b, NULL),
		   SFS_OK);
	CHECK(read_block(b, 6) && read_block(b, 1));
	sfsi_bcache_stop(&bc);
	sfs_blob_close(b);
	CHECK(r.n == 8);
	for (i = 0; i < r.n && i < 8; i++)
		CHECK(r.first[i] == first[i] && r.len[i] == len[i]);
	pthread_mutex_destroy(&r.mu);
}

/*
 * A run that fails after its first block: that block is read (it came
 * whole), the second fails once and is asked for again, alone.
 */
static void test_run_cut_after_a_block(void)
{
	struct sfsi_bcache bc;
	struct sfs_blob *b = NULL;
	struct ranges r;
	unsigned char buf[BLOCK];
	size_t got = 0;

	REQUIRE_ST(start_ranges(&bc, &r, 1), SFS_OK);
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "aa", NBLOCKS * BLOCK, 0, "k",
					 &b, NULL),
		   SFS_OK);
	CHECK(read_block(b, 0) && read_block(b, 1) && read_block(b, 2));
	CHECK(read_block(b, 3));
	CHECK_ST(sfs_blob_pread(b, buf, BLOCK, 4 * BLOCK, &got, NULL), SFS_IO);
	CHECK(read_block(b, 4));
	sfsi_bcache_stop(&bc);
	sfs_blob_close(b);
	CHECK(r.n >= 4 && r.first[3] == 3 && r.len[3] == 2);
	pthread_mutex_destroy(&r.mu);
}

/*
 * The disk cache under dir (1 MiB) of a fetcher of ranges whose server
 * is there or gone.
 */
static int start_cached(struct sfsi_bcache *bc, struct ranges *r,
			const char *dir, int gone)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->gone = gone;
	memset(bc, 0, sizeof(*bc));
	bc->block = BLOCK;
	bc->readahead = 4;
	bc->span = 2;
	bc->nthreads = 1;
	bc->fetch = fetch_ranges;
	bc->ctx = r;
	snprintf(bc->cache_dir, sizeof(bc->cache_dir), "%s/c", dir);
	bc->cache_bytes = 1 << 20;
	return sfsi_bcache_start(bc, NULL);
}

/* Regular files in dir. */
static int files_in(const char *dir)
{
	struct dirent *de;
	struct stat sb;
	char path[4096];
	DIR *dh = opendir(dir);
	int n = 0;

	while (dh && (de = readdir(dh))) {
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n += stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
	}
	if (dh)
		closedir(dh);
	return n;
}

/* The size of the cache file of block idx under dir, or -1. */
static long long file_size(const char *dir, int idx)
{
	char path[4096];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/c/1/aa/aa.4k.%d", dir, idx);
	return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

#define SHORT (7 * BLOCK - 100) /* 7 blocks, the last 100 bytes short */

/*
 * With the server gone, the blocks of SHORT in `readable` (a bit a
 * block) are read right from the disk cache, the others fail: seeks into
 * runs' files first (block 4 in 3-4's, 6 in 5-6's), then all in order.
 */
static int read_offline(const char *dir, unsigned readable)
{
	static const int order[] = { 4, 6, 0, 1, 2, 3, 4, 5, 6 };
	struct sfsi_bcache bc;
	struct sfs_blob *b = NULL;
	struct ranges r;
	int i, idx, ok = 1;

	if (start_cached(&bc, &r, dir, 1) ||
	    sfsi_bcache_blob_open(&bc, 1, "aa", SHORT, SFS_BLOB_CACHED, "k", &b,
				  NULL)) {
		sfsi_bcache_stop(&bc);
		return 0;
	}
	for (i = 0; i < (int)(sizeof(order) / sizeof(*order)); i++) {
		idx = order[i];
		ok = ok &&
		     read_block_of(b, idx, idx == 6 ? BLOCK - 100 : BLOCK) ==
			     !!(readable & 1u << idx);
	}
	sfsi_bcache_stop(&bc);
	sfs_blob_close(b);
	pthread_mutex_destroy(&r.mu);
	return ok;
}

/*
 * Blocks fetched in one range go to the disk cache as one file (ext4's
 * new inode per 4 MiB block was 5 % of a cold read's CPU): 0, 1, 2
 * alone, 3-4 and 5-6 (the blob's short last block) as two files. With
 * the server gone, every block is read from there, a seek into the
 * middle of a run's file too; a file whose size is not a run's (cut) is
 * never served. The old code wrote a file per block (7 files).
 */
static void test_runs_cached_as_files(void)
{
	char *dir = th_tmpdir(), sub[4096];
	struct sfsi_bcache bc;
	struct sfs_blob *b = NULL;
	struct ranges r;
	int i, ok = 1;

	REQUIRE_ST(start_cached(&bc, &r, dir, 0), SFS_OK);
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "aa", SHORT, SFS_BLOB_CACHED,
					 "k", &b, NULL),
		   SFS_OK);
	for (i = 0; i < 6; i++)
		ok = ok && read_block(b, i);
	CHECK(ok && read_block_of(b, 6, BLOCK - 100));
	sfsi_bcache_stop(&bc); /* the fetcher's disk writes are done */
	sfs_blob_close(b);
	pthread_mutex_destroy(&r.mu);
	CHECK(r.n == 5 && r.first[3] == 3 && r.len[3] == 2);
	snprintf(sub, sizeof(sub), "%s/c/1/aa", dir);
	CHECK(files_in(sub) == 5);
	CHECK(file_size(dir, 3) == 2 * BLOCK && file_size(dir, 4) == -1);
	CHECK(file_size(dir, 5) == 2 * BLOCK - 100);
	CHECK(read_offline(dir, 0x7f));

	/* 3-4's file cut inside block 4: neither of its blocks is served */
	snprintf(sub, sizeof(sub), "%s/c/1/aa/aa.4k.3", dir);
	CHECK(truncate(sub, BLOCK + 1) == 0);
	CHECK(read_offline(dir, 0x7f & ~(1u << 3 | 1u << 4)));
	th_rmrf(dir);
}

/*
 * A range received in place: each block whole and right, in pieces that
 * do not divide it; a block of the range already on disk (block 4, read
 * alone first) is dropped, its buffer untouched: the server's bytes for
 * it now (0xee) never reach a reader. The range has nothing after its
 * end (room 0).
 */
static void test_received_in_place(void)
{
	struct sfsi_bcache bc;
	struct sfs_blob *b = NULL;
	struct ranges r;
	char *dir = th_tmpdir();
	int i, ok = 1;

	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.mu, NULL);
	r.pull = 1;
	memset(&bc, 0, sizeof(bc));
	bc.block = BLOCK;
	bc.readahead = 4;
	bc.span = 3;
	bc.nthreads = 1;
	bc.fetch = fetch_ranges;
	bc.ctx = &r;
	snprintf(bc.cache_dir, sizeof(bc.cache_dir), "%s", dir);
	bc.cache_bytes = 64 * BLOCK;
	REQUIRE_ST(sfsi_bcache_start(&bc, NULL), SFS_OK);
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "aa", NBLOCKS * BLOCK,
					 SFS_BLOB_CACHED, "k", &b, NULL),
		   SFS_OK);
	CHECK(read_block(b, 4));
	sfs_blob_close(b);
	r.poison = 4 + 1;
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "aa", NBLOCKS * BLOCK,
					 SFS_BLOB_CACHED, "k", &b, NULL),
		   SFS_OK);
	/* 0-2 alone, then the run 3-5 with 4 on disk; 4 after 5 came */
	for (i = 0; i < 4; i++)
		ok = ok && read_block(b, i);
	CHECK(ok && read_block(b, 5) && read_block(b, 4));
	CHECK(read_block(b, 6) && read_block(b, 7));
	sfsi_bcache_stop(&bc);
	sfs_blob_close(b);
	CHECK(r.n >= 5 && r.first[4] == 3 && r.len[4] == 3);
	pthread_mutex_destroy(&r.mu);
	th_rmrf(dir);
}

/* A file of size bytes at path, its mtime at second `when` of 1970. */
static int old_file(const char *path, off_t size, time_t when)
{
	struct timespec t[2] = { { when, 0 }, { when, 0 } };
	FILE *f = fopen(path, "w");
	int ok = f && ftruncate(fileno(f), size) == 0;

	if (f)
		ok = fclose(f) == 0 && ok;
	return ok && utimensat(AT_FDCWD, path, t, 0) == 0;
}

/*
 * A remote mount stages its writes in CACHE/staging/<pid>-<hex>/ (its
 * `lock`, made at mount and never touched again, and its stage files):
 * none of it is the cache's. The cache is full of an old block file
 * (1 MiB of 1 MiB); the staging files are older still. A block read
 * fills it past its bound: the old block file leaves, the staging files
 * stay and never counted. The old scan counted them (cache_used 1 MiB +
 * 64 KiB at start) and unlinked the lock and the stage first (re-read
 * s25 A1: the next mount of the cache then swept the live staging).
 */
static void test_staging_not_the_caches(void)
{
	char *dir = th_tmpdir(), path[4096], lock[4096], stage[4096];
	struct sfsi_bcache bc;
	struct sfs_blob *b = NULL;
	struct ranges r;
	int64_t used_at_start;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/c", dir);
	REQUIRE(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/c/staging", dir);
	REQUIRE(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/c/staging/1-ab", dir);
	REQUIRE(mkdir(path, 0700) == 0);
	snprintf(lock, sizeof(lock), "%s/lock", path);
	snprintf(stage, sizeof(stage), "%s/1.stage", path);
	REQUIRE(old_file(lock, 0, 1000) && old_file(stage, 64 << 10, 1000));
	snprintf(path, sizeof(path), "%s/c/1", dir);
	REQUIRE(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/c/1/bb", dir);
	REQUIRE(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/c/1/bb/bb.4k.0", dir);
	REQUIRE(old_file(path, 1 << 20, 2000));

	REQUIRE_ST(start_cached(&bc, &r, dir, 0), SFS_OK);
	used_at_start = bc.cache_used;
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "aa", SHORT, SFS_BLOB_CACHED,
					 "k", &b, NULL),
		   SFS_OK);
	CHECK(read_block(b, 0));
	sfsi_bcache_stop(&bc); /* the fetcher's disk writes are done */
	sfs_blob_close(b);
	pthread_mutex_destroy(&r.mu);

	CHECK(used_at_start == 1 << 20);
	CHECK(stat(path, &sb) < 0 && errno == ENOENT); /* eviction ran */
	CHECK(stat(lock, &sb) == 0);
	CHECK(stat(stage, &sb) == 0 && sb.st_size == 64 << 10);
	CHECK(file_size(dir, 0) == BLOCK && bc.cache_used == BLOCK);
	th_rmrf(dir);
}

/*
 * Blob "held"'s blocks past the first wait at a gate until the test opens
 * it (or 30 s pass: then it opens for good); blob "seek"'s fetch notes
 * whether the gate was still shut.
 */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int open;
	int held;	     /* fetches waiting at it */
	int seek_while_shut; /* "seek" fetched while fetches were held */
};

static enum sfs_status fetch_gated(void *ctx, const char *key, int64_t off,
				   int64_t len, const struct sfsi_bc_dest *d,
				   struct sfs_err *e)
{
	struct gate *g = ctx;
	unsigned char buf[BLOCK];
	struct timespec until;
	int64_t at;

	(void)e;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&g->mu);
	if (!strcmp(key, "seek"))
		g->seek_while_shut = !g->open && g->held > 0;
	if (!strcmp(key, "held") && off > 0) {
		g->held++;
		while (!g->open && pthread_cond_timedwait(&g->cv, &g->mu,
							  &until) != ETIMEDOUT)
			;
		g->open = 1;
		g->held--;
	}
	pthread_mutex_unlock(&g->mu);
	for (at = off; at < off + len; at += BLOCK) {
		memset(buf, (int)(at / BLOCK), sizeof(buf));
		if (d->sink(d->arg, buf, BLOCK))
			return SFS_IO;
	}
	return SFS_OK;
}

/*
 * A run is held at the gate, and nothing more a fetcher could take: the
 * queue empty, or its head read-ahead with read-ahead's share busy.
 */
static int fetchers_settled(struct sfsi_bcache *bc, struct gate *g)
{
	int settled;

	pthread_mutex_lock(&g->mu);
	settled = g->held > 0;
	pthread_mutex_unlock(&g->mu);
	pthread_mutex_lock(&bc->mu);
	settled = settled && (!bc->head || (!bc->head->urgent &&
					    bc->ahead_busy >= bc->ahead_max));
	pthread_mutex_unlock(&bc->mu);
	return settled;
}

/*
 * Two fetchers, one kept for urgent jobs: a reader in order of blob
 * "held" (read-ahead from its first read: two runs of two blocks) has
 * its runs held by the server, and a read of blob "seek" is still
 * fetched, while they are held. With urgent_fetchers 0 (before) both
 * fetchers took a run, and the read waited for the server (here the
 * gate's 30 s).
 */
static void test_a_fetcher_kept_for_urgent_reads(void)
{
	struct sfsi_bcache bc;
	struct sfs_blob *held = NULL, *seek = NULL;
	struct gate g;
	int i;

	memset(&g, 0, sizeof(g));
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	memset(&bc, 0, sizeof(bc));
	bc.block = BLOCK;
	bc.readahead = 4;
	bc.span = 2;
	bc.nthreads = 2;
	bc.urgent_fetchers = 1;
	bc.fetch = fetch_gated;
	bc.ctx = &g;
	REQUIRE_ST(sfsi_bcache_start(&bc, NULL), SFS_OK);
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "aa", NBLOCKS * BLOCK,
					 SFS_BLOB_SEQUENTIAL, "held", &held,
					 NULL),
		   SFS_OK);
	REQUIRE_ST(sfsi_bcache_blob_open(&bc, 1, "bb", NBLOCKS * BLOCK, 0,
					 "seek", &seek, NULL),
		   SFS_OK);
	CHECK(read_block(held, 0)); /* and runs 1-2, 3-4 queued */
	for (i = 0; i < 3000 && !fetchers_settled(&bc, &g); i++)
		usleep(10000);
	CHECK(fetchers_settled(&bc, &g));
	CHECK(read_block(seek, 5));
	pthread_mutex_lock(&g.mu);
	CHECK(g.seek_while_shut);
	g.open = 1;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	CHECK(read_block(held, 1) && read_block(held, 4));
	sfsi_bcache_stop(&bc);
	sfs_blob_close(held);
	sfs_blob_close(seek);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
}

int main(void)
{
	RUN(test_refused_lend_not_counted);
	RUN(test_read_ahead_in_runs);
	RUN(test_run_cut_after_a_block);
	RUN(test_runs_cached_as_files);
	RUN(test_received_in_place);
	RUN(test_staging_not_the_caches);
	RUN(test_a_fetcher_kept_for_urgent_reads);
	return th_report();
}
