/*
 * Tests of group commit when the disk fails: a failed sync of the WAL is
 * reported to its caller and to every later caller of that store handle,
 * never answered by a second fdatasync that Linux would let succeed for
 * pages it may have dropped.
 *
 * This binary defines fdatasync() itself, on purpose: the library's calls
 * (and SQLite's) reach it, and it fails while `fail_syncs` is set.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "fixture.h"
#include "speechfs/file.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "testhelp.h"

static int fail_syncs, syncs_failed;

int fdatasync(int fd)
{
	if (fail_syncs) {
		syncs_failed++;
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fdatasync, fd);
}

struct fx {
	char *dir;
	struct sfs_store *s;
	char t[SFS_ID_SIZE];
	struct sfs_actor a;
	char id[SFS_ID_SIZE];
};

static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, NULL) ||
	    tfx_tenant(f->s, "t", 0, 0, f->t) ||
	    tfx_user(f->s, f->t, "alice", NULL, &f->a) ||
	    tfx_upload(f->s, &f->a, "f", "first", 5, f->id, NULL))
		return -1;
	return 0;
}

/* A new version of the file, committed without waiting for the disk. */
static enum sfs_status set_nosync(struct fx *f, const char *text)
{
	struct sfs_stage *st = tfx_stage(f->s, text, strlen(text));
	enum sfs_status ret;

	if (!st)
		return SFS_IO;
	ret = sfs_file_set_content(f->s, &f->a, f->id, st, SFS_SET_NOSYNC, NULL,
				   NULL);
	sfs_stage_free(st);
	return ret;
}

static void test_failed_sync_is_final(void)
{
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	if (th_is_pg()) {
		/*
		 * PostgreSQL: a commit is durable on the server when it
		 * returns (group commit is SQLite's WAL), so a store's sync
		 * has nothing of its own to write and this machine's disk
		 * has no say: no fdatasync here, no failure to keep
		 */
		CHECK_ST(set_nosync(&f, "second"), SFS_OK);
		fail_syncs = 1;
		CHECK_ST(sfs_store_sync(f.s, NULL), SFS_OK);
		CHECK_ST(sfs_file_sync(f.s, &f.a, f.id, NULL), SFS_OK);
		fail_syncs = 0;
		CHECK(syncs_failed == 0);
		tfx_store_close(&f.dir, &f.s);
		return;
	}
	CHECK_ST(set_nosync(&f, "second"), SFS_OK);
	fail_syncs = 1;
	sfs_err_init(&e);
	CHECK(sfs_store_sync(f.s, &e) != SFS_OK);
	CHECK(syncs_failed == 1);
	CHECK(strstr(e.message, "sync") != NULL);
	fail_syncs = 0;
	/* the disk answers again: the handle still does not claim durability */
	CHECK(sfs_store_sync(f.s, NULL) != SFS_OK);
	CHECK_ST(set_nosync(&f, "third"), SFS_OK);
	CHECK(sfs_store_sync(f.s, NULL) != SFS_OK);
	CHECK(sfs_file_sync(f.s, &f.a, f.id, NULL) != SFS_OK);
	CHECK(syncs_failed == 1);
	sfs_store_close(f.s);
	f.s = NULL;
	/* a new handle on the same store starts afresh */
	sfs_err_init(&e);
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &f.s, &e), SFS_OK);
	CHECK_ST(sfs_store_sync(f.s, NULL), SFS_OK);
	tfx_store_close(&f.dir, &f.s);
}

static void test_sync_without_failure(void)
{
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	CHECK_ST(set_nosync(&f, "second"), SFS_OK);
	CHECK_ST(sfs_store_sync(f.s, NULL), SFS_OK);
	CHECK_ST(sfs_store_sync(f.s, NULL), SFS_OK); /* nothing left to sync */
	CHECK(syncs_failed == 0);
	tfx_store_close(&f.dir, &f.s);
}

#define TURN_THREADS 4
#define TURN_COMMITS 60

struct turn_arg {
	struct fx *f;
	char id[SFS_ID_SIZE];
	int failed;
};

static void *turn_writer(void *p)
{
	struct turn_arg *t = p;
	struct sfs_stage *st;
	char text[32];
	int i;

	for (i = 0; i < TURN_COMMITS; i++) {
		snprintf(text, sizeof(text), "%s %d", t->id, i);
		st = tfx_stage(t->f->s, text, strlen(text));
		if (!st || sfs_file_set_content(t->f->s, &t->f->a, t->id, st,
						i % 2 ? SFS_SET_NOSYNC : 0,
						NULL, NULL))
			t->failed++;
		sfs_stage_free(st);
	}
	return NULL;
}

/*
 * Threads of one process that commit at once take turns: with a busy
 * timeout of 1 ms, SQLite alone answered most of them SQLITE_BUSY (its
 * handler sleeps 1 ms, then gives up); in turn, every commit is made,
 * and each file holds its thread's last version.
 */
static void test_writers_take_turns(void)
{
	struct sfs_config c;
	struct turn_arg t[TURN_THREADS];
	pthread_t th[TURN_THREADS];
	char want[32], got[64];
	size_t n;
	struct fx f;
	int i;

	memset(&f, 0, sizeof(f));
	sfs_config_init(&c);
	REQUIRE(sfs_config_set(&c, "db.busy_timeout_ms", "1", NULL) == 0);
	REQUIRE(tfx_store(&f.dir, &f.s, &c) == 0);
	REQUIRE(tfx_tenant(f.s, "t", 0, 0, f.t) == 0);
	REQUIRE(tfx_user(f.s, f.t, "alice", NULL, &f.a) == 0);
	for (i = 0; i < TURN_THREADS; i++) {
		t[i].f = &f;
		t[i].failed = 0;
		snprintf(want, sizeof(want), "w%d", i);
		REQUIRE_ST(
			tfx_upload(f.s, &f.a, want, "first", 5, t[i].id, NULL),
			SFS_OK);
	}
	for (i = 0; i < TURN_THREADS; i++)
		REQUIRE(pthread_create(&th[i], NULL, turn_writer, &t[i]) == 0);
	for (i = 0; i < TURN_THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < TURN_THREADS; i++) {
		CHECK(t[i].failed == 0);
		snprintf(want, sizeof(want), "%s %d", t[i].id,
			 TURN_COMMITS - 1);
		n = 0;
		CHECK_ST(tfx_read(f.s, &f.a, t[i].id, SFS_CONTENT_ORIGINAL, got,
				  sizeof(got), &n),
			 SFS_OK);
		CHECK(n == strlen(want) && !memcmp(got, want, n));
	}
	CHECK_ST(sfs_store_sync(f.s, NULL), SFS_OK);
	tfx_store_close(&f.dir, &f.s);
}

int main(void)
{
	RUN(test_writers_take_turns);
	RUN(test_sync_without_failure);
	RUN(test_failed_sync_is_final);
	return th_report();
}
