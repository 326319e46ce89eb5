/*
 * Tests of the block cache's reader (core/blockcache.c) with a fetch
 * function of the test's own that counts which blocks it is asked for:
 * the sequential detection starts read-ahead at the third block read in
 * order, not before, and a lend refused because its bytes lie across two
 * blocks does not count as a read (review s18 LOW-2: its first block
 * counted twice, and read-ahead started a block early).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
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
			     int64_t len, sfsi_bc_sink sink, void *arg,
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
	return sink(arg, buf, (size_t)len) ? SFS_IO : SFS_OK;
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

int main(void)
{
	RUN(test_refused_lend_not_counted);
	return th_report();
}
