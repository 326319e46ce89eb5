/*
 * Tests of the store's SQLite VFS (core/db_vfs.c), which gathers the WAL's
 * appended frames into one write: what other connections, SQLite's own
 * VFS and WAL recovery find in the files is what SQLite wrote, commit by
 * commit, whatever was gathered, spilled, overwritten or rolled back.
 */
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "db_conn_i.h"
#include "testhelp.h"

#define ROW_BYTES 3000 /* about one page a row */

/* The value of row id: ROW_BYTES bytes that name it (SQL of `id`). */
#define ROW_VALUE(ID)                                                          \
	"replace(hex(zeroblob(1500)), '00', printf('%02x', (" ID ") % 251))"

static sqlite3 *open_db(const char *path, const char *vfs)
{
	sqlite3 *h = NULL;

	if (sqlite3_open_v2(path, &h,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    vfs) != SQLITE_OK) {
		sqlite3_close(h);
		return NULL;
	}
	sqlite3_busy_timeout(h, 10000);
	if (sqlite3_exec(h,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 " PRAGMA wal_autocheckpoint=0;",
			 NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return NULL;
	}
	return h;
}

static int exec(sqlite3 *h, const char *sql)
{
	int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(h));
	return rc;
}

/* One integer a query gives, or -1. */
static int64_t query_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(h));
	sqlite3_finalize(st);
	return v;
}

/* Rows in t, or -1 when one of them is not what its id says. */
static int64_t good_rows(sqlite3 *h)
{
	if (query_int(h, "SELECT count(*) FROM t WHERE v <> " ROW_VALUE(
				 "id")) != 0)
		return -1;
	return query_int(h, "SELECT count(*) FROM t");
}

static int sound(sqlite3 *h)
{
	sqlite3_stmt *st = NULL;
	int ok = 0;

	if (sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		ok = !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	return ok;
}

/* Insert rows [from, to) of t on h. */
static int insert(sqlite3 *h, int from, int to)
{
	static const char sql[] =
		"WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1"
		" FROM n WHERE i + 1 < ?2) INSERT INTO t(id, v)"
		" SELECT i, " ROW_VALUE("i") " FROM n";
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(st, 1, from);
		sqlite3_bind_int(st, 2, to);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	if (rc != SQLITE_OK)
		fprintf(stderr, "insert: %s\n", sqlite3_errmsg(h));
	sqlite3_finalize(st);
	return rc;
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t n;
	int ret = in && out ? 0 : -1;

	while (!ret && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			ret = -1;
	if (in)
		fclose(in);
	if (out && fclose(out))
		ret = -1;
	return ret;
}

/*
 * The database and its WAL copied elsewhere, without the wal-index, as a
 * crash leaves them: what SQLite's recovery (frame checksums, commit
 * marks) makes of them, opened by SQLite's own VFS. -2 on failure.
 */
static int64_t recovered_rows(const char *dir, const char *db)
{
	char from[4200], to[4200];
	sqlite3 *h;
	int64_t n = -2;

	snprintf(from, sizeof(from), "%s-wal", db);
	snprintf(to, sizeof(to), "%s/copy.db-wal", dir);
	if (copy_file(from, to))
		return -2;
	snprintf(to, sizeof(to), "%s/copy.db", dir);
	if (copy_file(db, to) || !(h = open_db(to, NULL)))
		return -2;
	if (sound(h))
		n = good_rows(h);
	sqlite3_close(h);
	return n;
}

struct fx {
	char *dir;
	char path[4096];
	sqlite3 *a, *b, *plain;
};

static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	f->dir = th_tmpdir();
	if (!f->dir || !sfsi_db_vfs())
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	f->a = open_db(f->path, sfsi_db_vfs());
	if (!f->a || exec(f->a, "CREATE TABLE t(id INTEGER PRIMARY KEY,"
				" v TEXT NOT NULL)"))
		return -1;
	f->b = open_db(f->path, sfsi_db_vfs());
	f->plain = open_db(f->path, NULL); /* another program's */
	return f->b && f->plain ? 0 : -1;
}

static void fx_close(struct fx *f)
{
	sqlite3_close(f->a);
	sqlite3_close(f->b);
	sqlite3_close(f->plain);
	if (f->dir)
		th_rmrf(f->dir); /* frees it */
}

/*
 * Each commit, of one row or of a few hundred (more than one buffer of
 * frames), is whole for another connection of the VFS and for SQLite's
 * own VFS the moment it returns, and for recovery from the files.
 */
static void test_commits_seen_at_once(void)
{
	struct fx f;
	int i, n = 0, size;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 40; i++) {
		size = i % 8 == 7 ? 150 : 1 + i % 3;
		REQUIRE(insert(f.a, n, n + size) == SQLITE_OK);
		n += size;
		CHECK(good_rows(f.b) == n);
		CHECK(good_rows(f.plain) == n);
	}
	CHECK(recovered_rows(f.dir, f.path) == n);
	fx_close(&f);
}

/*
 * A transaction larger than its connection's page cache writes frames
 * before its commit (a spill) and writes some of them again in place
 * (checksums then rewritten at the commit): recovery keeps every commit.
 */
static void test_spilled_commit_recovers(void)
{
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(exec(f.a, "PRAGMA cache_size=8") == SQLITE_OK);
	for (i = 0; i < 3; i++) {
		REQUIRE(exec(f.a, "BEGIN") == SQLITE_OK);
		REQUIRE(insert(f.a, i * 100, i * 100 + 100) == SQLITE_OK);
		/* pages spilled already are changed again */
		REQUIRE(exec(f.a, "UPDATE t SET v = v WHERE id % 7 = 0") ==
			SQLITE_OK);
		REQUIRE(exec(f.a, "COMMIT") == SQLITE_OK);
		CHECK(good_rows(f.plain) == i * 100 + 100);
	}
	CHECK(recovered_rows(f.dir, f.path) == 300);
	fx_close(&f);
}

/*
 * Rows 0-4 committed and checkpointed (the pages a rollback reads again
 * are the database file's), then an open transaction of f.a whose 20 rows
 * spilled frames into the WAL (gathered, not yet written). 0 or -1.
 */
static int spill_open(struct fx *f)
{
	if (insert(f->a, 0, 5) != SQLITE_OK ||
	    sqlite3_wal_checkpoint_v2(f->a, NULL, SQLITE_CHECKPOINT_TRUNCATE,
				      NULL, NULL) != SQLITE_OK ||
	    exec(f->a, "PRAGMA cache_size=8") != SQLITE_OK ||
	    exec(f->a, "BEGIN") != SQLITE_OK)
		return -1;
	return insert(f->a, 1000, 1020) == SQLITE_OK ? 0 : -1;
}

/*
 * A transaction that spilled frames and was rolled back leaves nothing
 * gathered behind: another connection's commit then writes those offsets
 * of the WAL, and a later call of the first connection must not write
 * the abandoned frames over it.
 */
static void test_rolled_back_spill_leaves_nothing(void)
{
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(spill_open(&f) == 0);
	REQUIRE(exec(f.a, "ROLLBACK") == SQLITE_OK);
	REQUIRE(insert(f.b, 5, 25) == SQLITE_OK);
	/* the first connection reads (its WAL file is called again) */
	CHECK(good_rows(f.a) == 25);
	CHECK(good_rows(f.plain) == 25);
	CHECK(sound(f.plain));
	CHECK(recovered_rows(f.dir, f.path) == 25);
	fx_close(&f);
}

/*
 * The WAL of f may grow by `room` bytes at most from now (a full disk);
 * *was: the limit to give back. SIGXFSZ is ignored, so a write past it
 * fails with EFBIG. 0, or -1 when the limit could not be set.
 */
static int wal_may_not_grow(const struct fx *f, off_t room, struct rlimit *was)
{
	char wal[4200];
	struct rlimit lim;
	struct stat sb;

	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	if (stat(wal, &sb) || getrlimit(RLIMIT_FSIZE, was))
		return -1;
	signal(SIGXFSZ, SIG_IGN);
	lim = *was;
	lim.rlim_cur = (rlim_t)(sb.st_size + room);
	return setrlimit(RLIMIT_FSIZE, &lim);
}

/*
 * A commit whose frames cannot be written (the file may not grow: a full
 * disk) fails, as when SQLite wrote them itself, and leaves nothing of
 * it for the others; gathered, the frames are written within the commit,
 * not after it.
 */
static void test_failed_write_fails_commit(void)
{
	struct rlimit was;
	struct fx f;
	int rc;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(insert(f.a, 0, 5) == SQLITE_OK);
	REQUIRE(wal_may_not_grow(&f, 4096, &was) == 0);
	rc = insert(f.a, 5, 15); /* ~10 frames: gathered whole */
	REQUIRE(setrlimit(RLIMIT_FSIZE, &was) == 0);
	CHECK(rc != SQLITE_OK);
	CHECK(sqlite3_get_autocommit(f.a));
	CHECK(good_rows(f.b) == 5);
	CHECK(good_rows(f.plain) == 5);
	CHECK(insert(f.a, 5, 15) == SQLITE_OK);
	CHECK(good_rows(f.plain) == 15);
	CHECK(recovered_rows(f.dir, f.path) == 15);
	fx_close(&f);
}

/*
 * A rolled-back spill whose gathered frames cannot be written when the
 * write lock is given up (the WAL may not grow: a full disk) still gives
 * the lock up: SQLite ignores an unlock's result, so a lock kept here
 * would stop every other writer until this connection wrote again.
 */
static void test_unlock_after_failed_flush(void)
{
	struct rlimit was;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(spill_open(&f) == 0);
	REQUIRE(wal_may_not_grow(&f, 0, &was) == 0);
	sqlite3_exec(f.a, "ROLLBACK", NULL, NULL, NULL);
	REQUIRE(setrlimit(RLIMIT_FSIZE, &was) == 0);
	CHECK(sqlite3_get_autocommit(f.a));
	CHECK(exec(f.b, "PRAGMA busy_timeout=500") == SQLITE_OK);
	CHECK(insert(f.b, 5, 25) == SQLITE_OK);
	CHECK(good_rows(f.plain) == 25);
	CHECK(insert(f.a, 25, 30) == SQLITE_OK);
	CHECK(good_rows(f.plain) == 30);
	CHECK(recovered_rows(f.dir, f.path) == 30);
	fx_close(&f);
}

/* Write calls the default VFS made (its system calls, counted). */
static int writes;
static sqlite3_syscall_ptr real_pwrite, real_pwrite64, real_write;

static ssize_t count_pwrite(int fd, const void *p, size_t n, off_t off)
{
	writes++;
	return ((ssize_t(*)(int, const void *, size_t, off_t))real_pwrite)(
		fd, p, n, off);
}

static ssize_t count_pwrite64(int fd, const void *p, size_t n, off_t off)
{
	writes++;
	return ((ssize_t(*)(int, const void *, size_t, off_t))real_pwrite64)(
		fd, p, n, off);
}

static ssize_t count_write(int fd, const void *p, size_t n)
{
	writes++;
	return ((ssize_t(*)(int, const void *, size_t))real_write)(fd, p, n);
}

static int count_writes(void)
{
	sqlite3_vfs *u = sqlite3_vfs_find("unix");
	int rc = 0;

	if (!u || u->iVersion < 3)
		return -1;
	/* the ones this build of SQLite has (a missing one is NULL) */
	real_pwrite = u->xGetSystemCall(u, "pwrite");
	real_pwrite64 = u->xGetSystemCall(u, "pwrite64");
	real_write = u->xGetSystemCall(u, "write");
	if (real_pwrite)
		rc |= u->xSetSystemCall(u, "pwrite",
					(sqlite3_syscall_ptr)count_pwrite);
	if (real_pwrite64)
		rc |= u->xSetSystemCall(u, "pwrite64",
					(sqlite3_syscall_ptr)count_pwrite64);
	if (real_write)
		rc |= u->xSetSystemCall(u, "write",
					(sqlite3_syscall_ptr)count_write);
	return rc || !(real_pwrite || real_pwrite64 || real_write) ? -1 : 0;
}

/*
 * What the VFS is for: a commit's frames reach the WAL in one write (two
 * when a buffer fills), where SQLite's own VFS makes two a frame. No
 * checkpoint runs (wal_autocheckpoint=0), so every write of a commit is
 * the WAL's.
 */
static void test_one_write_a_commit(void)
{
	struct fx f;
	int ours, plain;

	REQUIRE(count_writes() == 0);
	REQUIRE(fx_open(&f) == 0);
	REQUIRE(insert(f.a, 0, 5) == SQLITE_OK);
	REQUIRE(insert(f.plain, 5, 10) == SQLITE_OK);
	writes = 0;
	REQUIRE(insert(f.a, 10, 30) == SQLITE_OK); /* ~22 frames, < 128 KiB */
	ours = writes;
	writes = 0;
	REQUIRE(insert(f.plain, 30, 50) == SQLITE_OK);
	plain = writes;
	CHECK(ours >= 1 && ours <= 2);
	CHECK(plain >= 40);
	CHECK(good_rows(f.b) == 50);
	CHECK(recovered_rows(f.dir, f.path) == 50);
	fx_close(&f);
}

/*
 * Another process reading through SQLite's own VFS: until `stop` exists,
 * each look (one read transaction) reads the newest rows, those of the
 * last commits, and must find each of them with its value and the newest
 * id no lower than the look before. Exit 0, or 1 on a bad look.
 */
static int read_until(const char *path, const char *stop)
{
	static const char newest[] =
		"SELECT count(*) - min((SELECT max(id) FROM t) + 1, 130) FROM t"
		" WHERE id > (SELECT max(id) FROM t) - 130"
		" AND v = " ROW_VALUE("id");
	sqlite3 *h = open_db(path, NULL);
	int64_t top, last = 0;
	int looks = 0, done = 0;

	if (!h)
		return 1;
	while (!done) {
		done = looks && access(stop, F_OK) == 0;
		if (exec(h, "BEGIN") != SQLITE_OK)
			break;
		top = query_int(h, "SELECT max(id) FROM t");
		if (query_int(h, newest) != 0 ||
		    exec(h, "COMMIT") != SQLITE_OK || top < last) {
			fprintf(stderr, "look %d: max(id) %lld, before %lld\n",
				looks, (long long)top, (long long)last);
			break;
		}
		last = top;
		looks++;
	}
	sqlite3_close(h);
	return done ? 0 : 1;
}

static const char *self; /* this binary: argv[0] */

/*
 * Commits of 1-4 rows, every 50th of 120 (spilled), a passive checkpoint
 * every 200, while another process reads: it never sees part of a
 * commit. A commit published in the wal-index before its frames are in
 * the file shows there as a short read or a wrong row; no single-process
 * test can see that window. The reader is this binary run again.
 */
static void test_other_process_sees_whole_commits(void)
{
	char *dir = th_tmpdir(), path[4200], stop[4200];
	int i, n = 5, size, status = -1;
	sqlite3 *h;
	pid_t pid;

	REQUIRE(dir && sfsi_db_vfs());
	snprintf(path, sizeof(path), "%s/t.db", dir);
	snprintf(stop, sizeof(stop), "%s/stop", dir);
	REQUIRE((h = open_db(path, sfsi_db_vfs())) != NULL);
	REQUIRE(exec(h, "CREATE TABLE t(id INTEGER PRIMARY KEY,"
			" v TEXT NOT NULL)") == SQLITE_OK);
	REQUIRE(insert(h, 0, n) == SQLITE_OK);
	sqlite3_close(h);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) { /* a program of its own: no state of this one */
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* not left reading */
		execl(self, self, "read", path, stop, (char *)NULL);
		_exit(127);
	}
	h = open_db(path, sfsi_db_vfs());
	CHECK(h && exec(h, "PRAGMA cache_size=20") == SQLITE_OK);
	for (i = 0; h && i < 6000; i++) {
		size = i % 50 == 49 ? 120 : 1 + i % 4;
		if (insert(h, n, n + size) != SQLITE_OK)
			break;
		n += size;
		if (i % 200 == 199)
			sqlite3_wal_checkpoint_v2(
				h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	}
	CHECK(i == 6000);
	sqlite3_close(h);
	CHECK(close(open(stop, O_CREAT | O_WRONLY, 0600)) == 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "reader: status %#x\n", status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	th_rmrf(dir);
}

/*
 * A checkpoint that restarts the WAL: the next commit writes the WAL's
 * header again and frames from the start, over the old ones.
 */
static void test_restarted_wal(void)
{
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 4; i++) {
		REQUIRE(insert(f.a, i * 30, i * 30 + 30) == SQLITE_OK);
		REQUIRE(sqlite3_wal_checkpoint_v2(f.b, NULL,
						  SQLITE_CHECKPOINT_RESTART,
						  NULL, NULL) == SQLITE_OK);
		REQUIRE(insert(f.b, 1000 + i, 1001 + i) == SQLITE_OK);
		CHECK(good_rows(f.plain) == i * 31 + 31);
	}
	CHECK(recovered_rows(f.dir, f.path) == 124);
	fx_close(&f);
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "read"))
		return read_until(argv[2], argv[3]);
	self = argv[0];
	RUN(test_commits_seen_at_once);
	RUN(test_spilled_commit_recovers);
	RUN(test_rolled_back_spill_leaves_nothing);
	RUN(test_failed_write_fails_commit);
	RUN(test_unlock_after_failed_flush);
	RUN(test_restarted_wal);
	RUN(test_one_write_a_commit);
	RUN(test_other_process_sees_whole_commits);
	return th_report();
}
