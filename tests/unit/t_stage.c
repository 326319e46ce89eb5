/*
 * Tests of a stage's follower (core/stage_i.h), as a remote mount's
 * stream follows the stage it sends: one that reads from the pipe's
 * memory (follow_mem) and keeps up gets its bytes from the slots, not
 * from the stage's file (written around the page cache); one that lags
 * never holds the writer back (a FUSE write waiting for the network
 * would hold the whole mount) and reads what the pipe filled again from
 * the file; one that lets go (sfsi_stage_follow_detach) changes nothing
 * for the writer; and the stage's file holds every byte either way
 * (what a resend reads).
 *
 * About internals on purpose: the promise is where the follower's bytes
 * come from and that the writer never waits for it, so the tests spoil
 * the stage's file under the follower and read it back.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include "fixture.h"
#include "stage_i.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "testhelp.h"

#define MIB (1 << 20)
#define SIZE (29 * MIB + 777)
#define PIPED (4 * MIB) /* stage.c's PIPE_START: inline below it */
/* the slots handed over before the stage's end: whole MiB from PIPED */
#define HANDED (PIPED + (SIZE - PIPED) / MIB * MIB)
#define DEADLINE_S 120 /* for what must happen: a hang guard */

static unsigned char data[SIZE], got[SIZE], back[SIZE];

struct follower {
	struct sfs_stage *st;
	int spoil;	 /* overwrite the file's bytes in [PIPED, HANDED)
			    before reading them (from the slots then) */
	int64_t hold_at; /* wait there until let go (0: no) */
	int64_t stop_at; /* let go of the stage there (0: read to the end) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int go;	      /* hold_at passed: read on */
	int64_t held; /* it waits at hold_at (int64_t: for wait_for) */
	int64_t n;    /* bytes read */
	int over;
	int failed;
};

static void follower_init(struct follower *f)
{
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
}

static void follower_destroy(struct follower *f)
{
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
}

/* Wait until *v >= want or the follower is over; 0 if so in time. */
static int wait_for(struct follower *f, const int64_t *v, int64_t want)
{
	struct timespec dl;
	int ok, timedout = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += DEADLINE_S;
	pthread_mutex_lock(&f->mu);
	while (*v < want && !f->over && !timedout)
		timedout = pthread_cond_timedwait(&f->cv, &f->mu, &dl) != 0;
	ok = *v >= want || f->over;
	pthread_mutex_unlock(&f->mu);
	return ok ? 0 : -1;
}

/*
 * The stage file's bytes [off, off + len) overwritten (not the slots),
 * once the pipe has written them there (the follower may read the slots
 * before; the pipe writes in order).
 */
static int spoil(struct sfs_stage *st, int64_t off, size_t len)
{
	static unsigned char junk[MIB];
	struct timespec nap = { 0, 1000000 };
	struct stat sb;
	int fd, tries = 0;
	int ret = 0;

	while (fstat(sfs_stage_fd(st), &sb) == 0 &&
	       sb.st_size < off + (int64_t)len && tries++ < DEADLINE_S * 1000)
		nanosleep(&nap, NULL);
	fd = open(st->path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	memset(junk, 0xee, sizeof(junk));
	if (pwrite(fd, junk, len, off) != (ssize_t)len)
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
		if (f->hold_at && off == f->hold_at) {
			pthread_mutex_lock(&f->mu);
			f->held = 1;
			pthread_cond_broadcast(&f->cv);
			while (!f->go)
				pthread_cond_wait(&f->cv, &f->mu);
			pthread_mutex_unlock(&f->mu);
		}
		have = sfsi_stage_follow(f->st, off + 1, &end, NULL);
		if (have <= off)
			break; /* the end, all of it read */
		len = have - off > 300007 ? 300007 : (size_t)(have - off);
		/* pieces that stop at PIPED, HANDED and hold_at */
		if (off < PIPED && off + (int64_t)len > PIPED)
			len = (size_t)(PIPED - off);
		if (off < HANDED && off + (int64_t)len > HANDED)
			len = (size_t)(HANDED - off);
		if (off < f->hold_at && off + (int64_t)len > f->hold_at)
			len = (size_t)(f->hold_at - off);
		if (f->spoil && off >= PIPED && off < HANDED &&
		    spoil(f->st, off, len))
			f->failed = 1;
		n = sfsi_stage_follow_read(f->st, got + off, len, off);
		if (n <= 0) {
			f->failed = 1;
			break;
		}
		off += n;
		pthread_mutex_lock(&f->mu);
		f->n = off;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
	}
	sfsi_stage_follow_detach(f->st);
	pthread_mutex_lock(&f->mu);
	f->n = off;
	f->over = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
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
 * What each test starts from: a fresh store, data filled from seed (its
 * sha256 in want), a fresh stage whose follower f reads from memory in
 * its own thread. 0, or -1 with the step that failed said.
 */
struct rig {
	struct sfs_store *s;
	char *dir;
	char want[65];
	pthread_t th;
};

static int rig_start(struct rig *r, struct follower *f, unsigned seed)
{
	const char *step = NULL;

	memset(got, 0, SIZE);
	tfx_fill(data, SIZE, seed);
	follower_init(f);
	if (tfx_store(&r->dir, &r->s, tfx_files_only()))
		step = "store";
	else if (tfx_openssl_sha(data, SIZE, r->want))
		step = "sha256";
	else if (!(f->st = stage_followed(r->s)))
		step = "stage";
	else if (pthread_create(&r->th, NULL, follow, f))
		step = "follower thread";
	if (step)
		fprintf(stderr, "rig: %s failed\n", step);
	return step ? -1 : 0;
}

static void rig_stop(struct rig *r, struct follower *f)
{
	sfs_stage_free(f->st);
	follower_destroy(f);
	tfx_store_close(&r->dir, &r->s);
}

/*
 * Bytes [from, to) of data written: below PIPED in whole MiB (so the
 * pipe's slots start there), the rest in odd pieces, with a read of the
 * writer's version at `peek` (0: none), which hands a partial slot over:
 * later slots then sit at offsets not a whole MiB. With `gate`, each write
 * waits until the follower has read what the slots it fills again held (the
 * test keeps it near; the stage does not wait for it).
 */
static int write_range(struct sfs_stage *st, int64_t from, int64_t to,
		       int64_t peek, struct follower *gate)
{
	unsigned char tmp[4096];
	int64_t off, n;
	size_t rd;

	for (off = from; off < to; off += n) {
		n = off < PIPED ? MIB : 65521;
		if (n > to - off)
			n = to - off;
		if (gate && wait_for(gate, &gate->n, off + n - 4 * MIB))
			return -1;
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

static int write_all(struct sfs_stage *st, int64_t peek)
{
	return write_range(st, 0, SIZE, peek, NULL);
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

/*
 * A follower that keeps up gets its bytes from the slots: the file under
 * them is spoiled before each read (the test keeps the writer near the
 * follower; the stage would not).
 */
static void test_follower_reads_memory(void)
{
	struct follower f = { .spoil = 1 };
	struct rig r = { 0 };

	REQUIRE(rig_start(&r, &f, 14) == 0);
	CHECK(write_range(f.st, 0, SIZE, 0, &f) == 0);
	/* what the slots hold read before the end takes them back */
	CHECK(wait_for(&f, &f.n, HANDED) == 0);
	CHECK_ST(sfs_stage_finish(f.st, NULL), SFS_OK);
	pthread_join(r.th, NULL);
	CHECK(!f.failed);
	CHECK(f.n == SIZE);
	CHECK(same(got, data));
	CHECK(!strcmp(sfs_stage_sha256(f.st), r.want));
	/* the file did hold junk where the follower read right bytes */
	CHECK(pread(sfs_stage_fd(f.st), back, SIZE, 0) == SIZE);
	CHECK(back[PIPED] == 0xee && back[HANDED - 1] == 0xee);
	rig_stop(&r, &f);
}

struct writer {
	struct follower *f;
	int64_t first; /* written up to here, then waits until f is held */
	int64_t part;  /* written up to here next, then waits for `more` */
	int64_t done;  /* 1 once part is written, 2 once all is (finished) */
	int more;
	int failed;
};

static void writer_says(struct writer *w, int64_t done)
{
	pthread_mutex_lock(&w->f->mu);
	w->done = done;
	pthread_cond_broadcast(&w->f->cv);
	pthread_mutex_unlock(&w->f->mu);
}

static void *write_in_two(void *arg)
{
	struct writer *w = arg;
	struct sfs_stage *st = w->f->st;

	if (write_range(st, 0, w->first, 0, NULL) ||
	    wait_for(w->f, &w->f->held, 1) ||
	    write_range(st, w->first, w->part, 0, NULL))
		w->failed = 1;
	writer_says(w, 1);
	pthread_mutex_lock(&w->f->mu);
	while (!w->more)
		pthread_cond_wait(&w->f->cv, &w->f->mu);
	pthread_mutex_unlock(&w->f->mu);
	if (write_range(st, w->part, SIZE, 0, NULL) ||
	    sfs_stage_finish(st, NULL))
		w->failed = 1;
	writer_says(w, 2);
	return NULL;
}

/*
 * A follower that lags (held 2 MiB into the slots) never holds the
 * writer: 12 MiB are written, more than the slots hold, while it waits
 * (the writer starts them once it is held: written at once, they could
 * all be in before the follower's thread got there).
 * Let go, it reads what the pipe filled again from the file (also the
 * bytes of the slot being filled, whose old bytes it missed) and the
 * rest from the slots, every byte right, then the writer goes on.
 */
static void test_a_lagging_follower_never_holds_the_writer(void)
{
	struct follower f = { .hold_at = PIPED + 2 * MIB + 4321 };
	struct writer w = { .f = &f,
			    .first = PIPED + 4 * MIB,
			    .part = PIPED + 16 * MIB + 300000 };
	struct rig r = { 0 };
	pthread_t wth;

	REQUIRE(rig_start(&r, &f, 17) == 0);
	REQUIRE(pthread_create(&wth, NULL, write_in_two, &w) == 0);
	/* the writer gets through with the follower held */
	CHECK(wait_for(&f, &w.done, 1) == 0);
	pthread_mutex_lock(&f.mu);
	CHECK(f.held && f.n == f.hold_at && w.done >= 1);
	/* the follower reads on up to what was handed over, with the
	 * writer stopped in the middle of a slot it fills again (bytes
	 * 10-11 MiB past PIPED were there), then the writer goes on */
	f.go = 1;
	pthread_cond_broadcast(&f.cv);
	pthread_mutex_unlock(&f.mu);
	CHECK(wait_for(&f, &f.n, PIPED + 16 * MIB) == 0);
	pthread_mutex_lock(&f.mu);
	w.more = 1;
	pthread_cond_broadcast(&f.cv);
	pthread_mutex_unlock(&f.mu);
	pthread_join(wth, NULL);
	pthread_join(r.th, NULL);
	CHECK(!w.failed && !f.failed);
	CHECK(f.n == SIZE);
	CHECK(same(got, data));
	CHECK(!strcmp(sfs_stage_sha256(f.st), r.want));
	CHECK(file_holds_all(f.st));
	rig_stop(&r, &f);
}

/* Followed to the end, with a read of the writer's version mid-way. */
static void test_followed_stage_file_whole(void)
{
	struct follower f = { 0 };
	struct rig r = { 0 };

	REQUIRE(rig_start(&r, &f, 15) == 0);
	CHECK(write_all(f.st, 12 * MIB + 12345) == 0);
	CHECK_ST(sfs_stage_finish(f.st, NULL), SFS_OK);
	pthread_join(r.th, NULL);
	CHECK(!f.failed && f.n == SIZE);
	CHECK(same(got, data));
	CHECK(!strcmp(sfs_stage_sha256(f.st), r.want));
	CHECK(file_holds_all(f.st));
	rig_stop(&r, &f);
}

/* A follower that lets go mid-way: the writer goes on to the end. */
static void test_follower_lets_go(void)
{
	struct follower f = { .stop_at = PIPED + 3 * MIB };
	struct rig r = { 0 };

	REQUIRE(rig_start(&r, &f, 16) == 0);
	CHECK(write_all(f.st, 0) == 0);
	CHECK_ST(sfs_stage_finish(f.st, NULL), SFS_OK);
	pthread_join(r.th, NULL);
	CHECK(!f.failed && f.n >= f.stop_at && f.n < SIZE);
	CHECK(!strcmp(sfs_stage_sha256(f.st), r.want));
	CHECK(file_holds_all(f.st));
	rig_stop(&r, &f);
}

/* A fresh stage of s with PIPED bytes of data, its pipe a ring. */
static struct sfs_stage *stage_ringed(struct sfs_store *s)
{
	struct sfs_stage *st = NULL;

	if (sfs_stage_new(s, &st, NULL))
		return NULL;
	if (sfs_stage_write(st, data, PIPED, NULL)) {
		sfs_stage_free(st);
		return NULL;
	}
	sfsi_stage_pipe_start(st, (int64_t)128 * MIB);
	return st;
}

static int ringed(struct sfs_stage *st)
{
	int on;

	pthread_mutex_lock(&st->fmu);
	on = st->fring;
	pthread_mutex_unlock(&st->fmu);
	return on;
}

/*
 * Rings (a remote stream's window in memory, stage_pipe.c) have a
 * budget in the process: four of the default window; a fifth stage
 * written at once gets the plain pipe, and a ring given back is there
 * for the next (review s24 W1).
 */
static void test_rings_within_budget(void)
{
	struct sfs_stage *st[5] = { NULL };
	struct sfs_store *s = NULL;
	char *dir = NULL;
	size_t i;

	REQUIRE(tfx_store(&dir, &s, tfx_files_only()) == 0);
	tfx_fill(data, SIZE, 17);
	for (i = 0; i < 5; i++) {
		st[i] = stage_ringed(s);
		CHECK(st[i] != NULL && st[i]->pipe != NULL);
	}
	for (i = 0; i < 4; i++)
		CHECK(st[i] && ringed(st[i]));
	CHECK(st[4] && !ringed(st[4]));
	sfs_stage_free(st[0]);
	sfs_stage_free(st[4]);
	st[4] = stage_ringed(s);
	CHECK(st[4] && ringed(st[4]));
	for (i = 1; i < 5; i++)
		sfs_stage_free(st[i]);
	tfx_store_close(&dir, &s);
}

/*
 * A ring's writer leaves out of the file the slots below what the server
 * freed (st->freed: they are never written) and writes the rest there
 * when the stage is hashed; the hash covers every byte.
 */
static void test_ring_writes_only_what_was_not_freed(void)
{
	struct sfs_stage *st;
	struct sfs_store *s = NULL;
	char *dir = NULL, want[65];
	int64_t i, freed = 16 * MIB;

	REQUIRE(tfx_store(&dir, &s, tfx_files_only()) == 0);
	tfx_fill(data, SIZE, 18);
	REQUIRE(tfx_openssl_sha(data, SIZE, want) == 0);
	REQUIRE((st = stage_ringed(s)) != NULL);
	CHECK(ringed(st));
	pthread_mutex_lock(&st->fmu);
	st->freed = freed;
	pthread_mutex_unlock(&st->fmu);
	CHECK(write_range(st, PIPED, SIZE, 0, NULL) == 0);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	CHECK(!strcmp(sfs_stage_sha256(st), want));
	memset(back, 0xee, SIZE);
	CHECK(pread(sfs_stage_fd(st), back, SIZE, 0) == SIZE);
	CHECK(!memcmp(back, data, PIPED));
	for (i = PIPED; i < freed && !back[i]; i++)
		;
	CHECK(i == freed); /* holes: never written */
	CHECK(!memcmp(back + freed, data + freed, SIZE - freed));
	sfs_stage_free(st);
	tfx_store_close(&dir, &s);
}

/* Bytes this process handed to write calls so far (/proc/self/io). */
static int64_t wchar(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	long long v = -1;
	char line[128];

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "wchar: %lld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/*
 * A stage that goes before it was hashed (a file unlinked while
 * written, a close that failed) throws its ring away: the bytes the ring
 * holds never go to the file (re-read s24 B2: up to a window of disk
 * writes on the worker holding the file's lock). Nothing was freed here,
 * so the whole ring (25 MiB) was unwritten.
 */
static void test_a_ring_that_goes_is_not_written(void)
{
	struct sfs_stage *st;
	struct sfs_store *s = NULL;
	char *dir = NULL;
	int64_t w0;

	REQUIRE(tfx_store(&dir, &s, tfx_files_only()) == 0);
	tfx_fill(data, SIZE, 19);
	REQUIRE((st = stage_ringed(s)) != NULL);
	CHECK(ringed(st));
	CHECK(write_range(st, PIPED, SIZE, 0, NULL) == 0);
	w0 = wchar();
	sfs_stage_free(st);
	CHECK(w0 >= 0 && wchar() - w0 < MIB);
	tfx_store_close(&dir, &s);
}

/*
 * A truncate of a stage with a ring writes only what it keeps; the file
 * then holds the kept bytes, and the stage goes on (random) with the
 * right hash.
 */
static void test_a_ring_cut_writes_only_what_it_keeps(void)
{
	struct sfs_stage *st;
	struct sfs_store *s = NULL;
	char *dir = NULL, want[65];
	int64_t w0, w1, keep = 9 * MIB + 5;
	struct stat sb;

	REQUIRE(tfx_store(&dir, &s, tfx_files_only()) == 0);
	tfx_fill(data, SIZE, 20);
	REQUIRE((st = stage_ringed(s)) != NULL);
	CHECK(ringed(st));
	CHECK(write_range(st, PIPED, SIZE, 0, NULL) == 0);
	w0 = wchar();
	CHECK_ST(sfs_stage_truncate(st, keep, NULL), SFS_OK);
	w1 = wchar();
	/* [PIPED, keep) rounded up to its slot: about 6 MiB, not 25 */
	CHECK(w0 >= 0 && w1 - w0 < 7 * MIB);
	CHECK(fstat(sfs_stage_fd(st), &sb) == 0 && sb.st_size == keep);
	CHECK(pread(sfs_stage_fd(st), back, keep, 0) == keep);
	CHECK(!memcmp(back, data, keep));
	CHECK_ST(sfs_stage_write(st, data + keep, SIZE - keep, NULL), SFS_OK);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	REQUIRE(tfx_openssl_sha(data, SIZE, want) == 0);
	CHECK(sfs_stage_sha256(st) && !strcmp(sfs_stage_sha256(st), want));
	sfs_stage_free(st);
	tfx_store_close(&dir, &s);
}

/* The reaper reads it while it runs. */
static void set_idle_ms(int ms)
{
	__atomic_store_n(&sfsi_stage_ring_idle_ms, ms, __ATOMIC_RELAXED);
}

/*
 * The ring kept as a spare stays while a stream may come soon and is
 * given back once unused for sfsi_stage_ring_idle_ms (131 MiB resident
 * on an idle mount before).
 */
static void test_a_spare_ring_goes_when_idle(void)
{
	struct sfs_stage *st;
	struct sfs_store *s = NULL;
	char *dir = NULL;
	int64_t until;
	struct timespec nap = { 0, 10 * 1000000 };

	REQUIRE(tfx_store(&dir, &s, tfx_files_only()) == 0);
	tfx_fill(data, SIZE, 21);
	set_idle_ms(3600 * 1000);
	REQUIRE((st = stage_ringed(s)) != NULL);
	CHECK(ringed(st));
	sfs_stage_free(st);
	CHECK(sfsi_stage_ring_spared());
	REQUIRE((st = stage_ringed(s)) != NULL); /* takes the spare */
	CHECK(ringed(st));
	CHECK(!sfsi_stage_ring_spared());
	set_idle_ms(100);
	sfs_stage_free(st);
	until = time(NULL) + DEADLINE_S;
	while (sfsi_stage_ring_spared() && time(NULL) < until)
		nanosleep(&nap, NULL);
	CHECK(!sfsi_stage_ring_spared());
	set_idle_ms(60 * 1000);
	tfx_store_close(&dir, &s);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_WARN);
	RUN(test_follower_reads_memory);
	RUN(test_a_lagging_follower_never_holds_the_writer);
	RUN(test_followed_stage_file_whole);
	RUN(test_follower_lets_go);
	RUN(test_rings_within_budget);
	RUN(test_ring_writes_only_what_was_not_freed);
	RUN(test_a_ring_that_goes_is_not_written);
	RUN(test_a_ring_cut_writes_only_what_it_keeps);
	RUN(test_a_spare_ring_goes_when_idle);
	return th_report();
}
