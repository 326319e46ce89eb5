/*
 * Tests of a stage's follower (core/stage_i.h), as a remote mount's
 * stream follows the stage it sends: one that reads from the pipe's
 * memory (follow_mem) gets every byte in order from the slots, not from
 * the stage's file (written around the page cache), because the writer
 * goes no further ahead of it than the slots hold; one that lets go
 * (sfsi_stage_follow_detach) no longer holds the writer; and the stage's
 * file holds every byte either way (what a resend reads).
 *
 * About internals on purpose: the promise is where the follower's bytes
 * come from and how far the writer may run, so the tests spoil the
 * stage's file under the follower and read it back.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include "fixture.h"
#include "stage_i.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "testhelp.h"

#define MIB (1 << 20)
#define SIZE (29 * MIB + 777)
#define PIPED (4 * MIB) /* stage.c's PIPE_START: inline below it */
#define SLOTS ((int64_t)SFSI_PIPE_SLOTS * MIB)

static unsigned char data[SIZE], got[SIZE], back[SIZE];

struct follower {
	struct sfs_stage *st;
	int64_t spoil_at; /* pause there, spoil the file's next slots */
	int64_t stop_at;  /* let go there (0: read to the end) */
	int64_t n;	  /* bytes read */
	int64_t ahead;	  /* the file's bytes when the spoiling began */
	int failed;
};

/* The stage file's bytes [off, off + len) overwritten (not the slots). */
static int spoil(const char *path, int64_t off, int64_t len)
{
	static unsigned char junk[MIB];
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int64_t done;
	int ret = 0;

	if (fd < 0)
		return -1;
	memset(junk, 0xee, sizeof(junk));
	for (done = 0; done < len && !ret; done += MIB)
		if (pwrite(fd, junk, MIB, off + done) != MIB)
			ret = -1;
	close(fd);
	return ret;
}

static void *follow(void *arg)
{
	struct follower *f = arg;
	int64_t off = 0, have;
	ssize_t n;
	size_t len;
	int end = 0;

	for (;;) {
		if (f->stop_at && off >= f->stop_at)
			break;
		if (f->spoil_at && off == f->spoil_at && !f->ahead) {
			/* the writer fills every slot, then waits for us */
			f->ahead = sfsi_stage_follow(f->st, off + SLOTS, NULL,
						     NULL);
			if (spoil(f->st->path, off, SLOTS))
				f->failed = 1;
		}
		have = sfsi_stage_follow(f->st, off + 1, &end, NULL);
		if (have <= off)
			break; /* the end, all of it read */
		len = have - off > 300007 ? 300007 : (size_t)(have - off);
		if (off < f->spoil_at && off + (int64_t)len > f->spoil_at)
			len = (size_t)(f->spoil_at - off);
		n = sfsi_stage_follow_read(f->st, got + off, len, off);
		if (n <= 0) {
			f->failed = 1;
			break;
		}
		off += n;
	}
	f->n = off;
	sfsi_stage_follow_detach(f->st);
	return NULL;
}

/* A stage whose follower reads from memory, fresh. */
static struct sfs_stage *stage_followed(struct sfs_store *s)
{
	struct sfs_stage *st = NULL;

	if (sfs_stage_new(s, &st, NULL))
		return NULL;
	pthread_mutex_lock(&st->fmu);
	st->follow_mem = 1;
	st->fdone = 0;
	pthread_mutex_unlock(&st->fmu);
	return st;
}

/*
 * The first PIPED bytes in whole MiB (so the pipe's slots start there),
 * the rest in odd pieces, with a read of the writer's version at `peek`
 * (0: none), which hands a partial slot over: later slots then sit at
 * offsets O_DIRECT refuses and go through the page cache.
 */
static int write_all(struct sfs_stage *st, int64_t peek)
{
	unsigned char tmp[4096];
	int64_t off, n;
	size_t rd;

	for (off = 0; off < SIZE; off += n) {
		n = off < PIPED ? MIB : 65521;
		if (n > SIZE - off)
			n = SIZE - off;
		if (sfs_stage_write(st, data + off, (size_t)n, NULL))
			return -1;
		if (peek && off < peek && off + n >= peek) {
			if (sfs_stage_pread(st, tmp, 4000, peek - 4000, &rd,
					    NULL) ||
			    rd != 4000 || memcmp(tmp, data + peek - 4000, rd))
				return -1;
		}
	}
	return 0;
}

/* SIZE bytes alike; the first difference said. */
static int same(const unsigned char *a, const unsigned char *b)
{
	int64_t i;

	for (i = 0; i < SIZE; i++)
		if (a[i] != b[i]) {
			fprintf(stderr, "first difference at %lld\n",
				(long long)i);
			return 0;
		}
	return 1;
}

static int file_holds_all(struct sfs_stage *st)
{
	return pread(sfs_stage_fd(st), back, SIZE, 0) == SIZE &&
	       same(back, data);
}

/* The follower's bytes come from the slots: the file under them spoiled. */
static void test_follower_reads_memory(void)
{
	struct follower f = { .spoil_at = PIPED };
	struct sfs_store *s = NULL;
	char *dir = NULL, want[65];
	pthread_t th;

	REQUIRE(tfx_store(&dir, &s, tfx_files_only()) == 0);
	tfx_fill(data, SIZE, 14);
	REQUIRE(tfx_openssl_sha(data, SIZE, want) == 0);
	memset(got, 0, SIZE);
	f.st = stage_followed(s);
	REQUIRE(f.st);
	REQUIRE(pthread_create(&th, NULL, follow, &f) == 0);
	CHECK(write_all(f.st, 0) == 0);
	CHECK_ST(sfs_stage_finish(f.st, NULL), SFS_OK);
	pthread_join(th, NULL);
	CHECK(!f.failed);
	/* the writer stopped where the slots were full, not further */
	CHECK(f.ahead == PIPED + SLOTS);
	CHECK(f.n == SIZE);
	CHECK(same(got, data));
	CHECK(!strcmp(sfs_stage_sha256(f.st), want));
	sfs_stage_free(f.st);
	tfx_store_close(&dir, &s);
}

/* Followed to the end, with a read of the writer's version mid-way. */
static void test_followed_stage_file_whole(void)
{
	struct follower f = { 0 };
	struct sfs_store *s = NULL;
	char *dir = NULL, want[65];
	pthread_t th;

	REQUIRE(tfx_store(&dir, &s, tfx_files_only()) == 0);
	tfx_fill(data, SIZE, 15);
	REQUIRE(tfx_openssl_sha(data, SIZE, want) == 0);
	memset(got, 0, SIZE);
	f.st = stage_followed(s);
	REQUIRE(f.st);
	REQUIRE(pthread_create(&th, NULL, follow, &f) == 0);
	CHECK(write_all(f.st, 12 * MIB + 12345) == 0);
	CHECK_ST(sfs_stage_finish(f.st, NULL), SFS_OK);
	pthread_join(th, NULL);
	CHECK(!f.failed && f.n == SIZE);
	CHECK(same(got, data));
	CHECK(!strcmp(sfs_stage_sha256(f.st), want));
	CHECK(file_holds_all(f.st));
	sfs_stage_free(f.st);
	tfx_store_close(&dir, &s);
}

/* A follower that lets go mid-way: the writer goes on to the end. */
static void test_follower_lets_go(void)
{
	struct follower f = { .stop_at = PIPED + 3 * MIB };
	struct sfs_store *s = NULL;
	char *dir = NULL, want[65];
	pthread_t th;

	REQUIRE(tfx_store(&dir, &s, tfx_files_only()) == 0);
	tfx_fill(data, SIZE, 16);
	REQUIRE(tfx_openssl_sha(data, SIZE, want) == 0);
	f.st = stage_followed(s);
	REQUIRE(f.st);
	REQUIRE(pthread_create(&th, NULL, follow, &f) == 0);
	CHECK(write_all(f.st, 0) == 0);
	CHECK_ST(sfs_stage_finish(f.st, NULL), SFS_OK);
	pthread_join(th, NULL);
	CHECK(!f.failed && f.n >= f.stop_at && f.n < SIZE);
	CHECK(!strcmp(sfs_stage_sha256(f.st), want));
	CHECK(file_holds_all(f.st));
	sfs_stage_free(f.st);
	tfx_store_close(&dir, &s);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_WARN);
	RUN(test_follower_reads_memory);
	RUN(test_followed_stage_file_whole);
	RUN(test_follower_lets_go);
	return th_report();
}
