/*
 * Unit tests of core/keycache.c: the API-key cache and the two
 * generations that drive it and the daemon's answer cache -- a change is
 * seen at once by every handle on one store directory (one machine), and
 * on PostgreSQL by a handle on another directory (another machine) once
 * the store's notice arrived (the delays are measured and printed), with
 * the caches off while a handle's listening connection is down.
 *
 * About internals on purpose: whether a handle listens (store_i.h's
 * gen_live, note_pid) and its credential generation (auth_i.h) are read
 * to wait for the state a test needs and to show which path answered.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "auth_i.h"
#include "db_i.h"
#include "speechfs/auth.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "store_i.h"
#include "fixture.h"
#include "testhelp.h"

#define DEADLINE_MS 30000 /* only stops a hang: never a speed target */

/* the shared fixture: a store, one tenant, one user (fixture.h) */
#define fx tfx_one

static int fx_open(struct fx *f)
{
	return tfx_one_open(f, NULL);
}

static void fx_close(struct fx *f)
{
	tfx_one_close(f);
}

static int64_t now_us(void)
{
	return sfs_mono_ns() / 1000;
}

/* A short pause inside a wait on a condition (not a wait by itself). */
static void pause_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * Wait until the handle's caches are on (PostgreSQL: its listener hears
 * the store's notices; SQLite: always); 0 when they are.
 */
static int wait_live(struct sfs_store *s, int live)
{
	int64_t end = now_us() + DEADLINE_MS * 1000LL;

	if (!th_is_pg())
		return 0;
	(void)sfs_store_data_gen(s); /* starts the listener */
	while (__atomic_load_n(&s->gen_live, __ATOMIC_SEQ_CST) != live) {
		if (now_us() > end)
			return -1;
		pause_us(1000);
	}
	return 0;
}

/*
 * PostgreSQL: a handle on the same database from a store directory of its
 * own (a copy of STORE/db.url and an empty staging/), as a daemon on
 * another machine opens it; as the role `role` when not NULL (a login
 * role the test made). *dir to th_rmrf after closing.
 */
static struct sfs_store *open_elsewhere(const struct fx *f, const char *role,
					char **dir)
{
	struct sfs_store *s = NULL;

	*dir = th_tmpdir();
	if (tfx_run("cp -p '%s/db.url' '%s/' && mkdir -m 0700 '%s/staging'"
		    " '%s/blobs'",
		    f->dir, *dir, *dir, *dir) ||
	    (role && tfx_run("sed -i 's/user=[^&]*/user=%s/' '%s/db.url'", role,
			     *dir)) ||
	    sfs_store_open(*dir, NULL, &s, NULL))
		return NULL;
	return s;
}

/* The key's lookup through s, until it is refused; its delay in µs. */
static int64_t until_refused(struct sfs_store *s, const char *key,
			     int64_t since)
{
	struct sfs_actor a;
	int64_t end = since + DEADLINE_MS * 1000LL;

	while (sfs_auth_api_key(s, key, &a, NULL) == SFS_OK) {
		if (now_us() > end)
			return -1;
		pause_us(20);
	}
	return now_us() - since;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * A key's actor is cached: a revocation or a rate change, here or through
 * another handle on the store directory (another process), is seen at
 * once; a change made behind the store's back within a minute.
 */
static void test_key_cache(void)
{
	char key[SFS_API_KEY_SIZE], kid[SFS_ID_SIZE];
	struct sfs_store *other = NULL;
	struct sfs_actor a;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	REQUIRE(f.s->keycache != NULL);
	REQUIRE(wait_live(f.s, 1) == 0);
	REQUIRE_ST(
		sfs_key_create(f.s, f.user, SFS_SCOPE_READ, NULL, key, kid, &e),
		SFS_OK);
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_OK);
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_OK); /* cached */
	CHECK(a.scopes == SFS_SCOPE_READ && a.download_bps == -1);
	/* a rate change is in the next lookup */
	CHECK_ST(sfs_user_set_rate(f.s, f.user, 4096, &e), SFS_OK);
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_OK);
	CHECK(a.download_bps == 4096);
	/* revoked through another handle: refused here at once */
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &other, &e), SFS_OK);
	CHECK_ST(sfs_key_revoke(other, kid, &e), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "revoked") != NULL);
	/* behind the store's back: good for at most a minute */
	REQUIRE_ST(
		sfs_key_create(f.s, f.user, SFS_SCOPE_READ, NULL, key, kid, &e),
		SFS_OK);
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_OK);
	CHECK(tfx_sql_int(f.s, "UPDATE api_key SET revoked_at = 1"
			       " WHERE revoked_at IS NULL RETURNING 1") == 1);
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_OK);
	sfs_set_clock_offset_ms(61 * 1000);
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, NULL), SFS_UNAUTHENTICATED);
	sfs_set_clock_offset_ms(0);
	/* a wrong key in a cached key's slot is not taken for it */
	REQUIRE_ST(
		sfs_key_create(f.s, f.user, SFS_SCOPE_READ, NULL, key, kid, &e),
		SFS_OK);
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_OK);
	key[strlen(key) - 1] = key[strlen(key) - 1] == '0' ? '1' : '0';
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, NULL), SFS_UNAUTHENTICATED);
	sfs_store_close(other);
	fx_close(&f);
}

/*
 * The credential generation's file has the mode of the database (SQLite)
 * or of its record (PostgreSQL: db.url) whatever the umask of the process
 * that made it: a group that may change the store (the admin CLI run by
 * a member) can tell the daemon of a revocation.
 */
static void test_key_cache_counter_mode(void)
{
	char db[4096], gen[4096];
	struct sfs_store *s = NULL;
	struct stat sb;
	mode_t old;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	snprintf(db, sizeof(db), "%s/%s", f.dir,
		 th_is_pg() ? "db.url" : "speechfs.db");
	snprintf(gen, sizeof(gen), "%s/auth.gen", f.dir);
	REQUIRE(chmod(db, 0660) == 0);
	REQUIRE(unlink(gen) == 0);
	old = umask(022);
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &s, NULL), SFS_OK);
	umask(old);
	CHECK(stat(gen, &sb) == 0 && (sb.st_mode & 0777) == 0660);
	sfs_store_close(s);
	fx_close(&f);
}

/* The data generation: moved by every commit, of any handle, not reads. */
static void test_data_gen(void)
{
	char key[SFS_API_KEY_SIZE], kid[SFS_ID_SIZE];
	struct sfs_store *other = NULL;
	struct sfs_actor a;
	struct sfs_err e;
	struct fx f;
	uint64_t g0, g1, g2;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	REQUIRE(wait_live(f.s, 1) == 0);
	g0 = sfs_store_data_gen(f.s);
	CHECK(g0 != 0);
	REQUIRE_ST(
		sfs_key_create(f.s, f.user, SFS_SCOPE_READ, NULL, key, kid, &e),
		SFS_OK);
	/* a key's first use in a minute notes it (last_used_at): a write */
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_OK);
	g1 = sfs_store_data_gen(f.s);
	CHECK(g1 != g0 && g1 != 0);
	/* reads leave it */
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_OK);
	CHECK(tfx_sql_int(f.s, "SELECT COUNT(*) FROM api_key") >= 1);
	CHECK(sfs_store_data_gen(f.s) == g1);
	/* a commit through another handle (another process) moves it here */
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &other, &e), SFS_OK);
	REQUIRE(wait_live(other, 1) == 0);
	/* (PostgreSQL: the other's listener moved it when it connected) */
	g1 = sfs_store_data_gen(f.s);
	CHECK(sfs_store_data_gen(other) == g1);
	CHECK_ST(sfs_key_revoke(other, kid, &e), SFS_OK);
	g2 = sfs_store_data_gen(f.s);
	CHECK(g2 != g1 && g2 != 0);
	CHECK(sfs_store_data_gen(other) == g2);
	/* a statement outside a transaction commits too */
	CHECK(tfx_sql_int(f.s, "UPDATE api_key SET label = 'x'"
			       " RETURNING 1") >= 1);
	CHECK(sfs_store_data_gen(other) != g2);
	sfs_store_close(other);
	fx_close(&f);
}

/*
 * PostgreSQL, two machines (two store directories on one database): a
 * key revoked through one is refused by the other once the notice sent
 * at the revocation's commit arrived -- measured from the revocation's
 * return, over ROUNDS keys, and printed; a rate change and a data change
 * the same way. The other handle's answers came from its cache until
 * then (its credential generation moved by the notice, not by a miss).
 */
#define ROUNDS 20

static void test_notice_across_machines(void)
{
	char key[SFS_API_KEY_SIZE], kid[SFS_ID_SIZE], *dir2 = NULL;
	struct sfs_store *b = NULL;
	struct sfs_actor a;
	struct sfs_err e;
	struct fx f;
	int64_t delay[ROUNDS], t0, end;
	uint64_t ag, dg;
	int i;

	if (!th_is_pg())
		return; /* one machine: test_key_cache */
	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	b = open_elsewhere(&f, NULL, &dir2);
	REQUIRE(b != NULL);
	REQUIRE(wait_live(b, 1) == 0);
	for (i = 0; i < ROUNDS; i++) {
		delay[i] = -1;
		REQUIRE_ST(sfs_key_create(f.s, f.user, SFS_SCOPE_READ, NULL,
					  key, kid, &e),
			   SFS_OK);
		CHECK_ST(sfs_auth_api_key(b, key, &a, &e), SFS_OK);
		CHECK_ST(sfs_auth_api_key(b, key, &a, &e), SFS_OK);
		ag = sfsi_auth_gen(b);
		CHECK_ST(sfs_key_revoke(f.s, kid, &e), SFS_OK);
		t0 = now_us();
		delay[i] = until_refused(b, key, t0);
		CHECK(delay[i] >= 0);
		/* the notice moved it, the listener never stopped */
		CHECK(sfsi_auth_gen(b) != ag);
		CHECK(__atomic_load_n(&b->gen_live, __ATOMIC_SEQ_CST) == 1);
	}
	qsort(delay, ROUNDS, sizeof(delay[0]), cmp64);
	printf("revoked through one machine, refused by the other after"
	       " (us, %d keys): min %lld median %lld max %lld\n",
	       ROUNDS, (long long)delay[0], (long long)delay[ROUNDS / 2],
	       (long long)delay[ROUNDS - 1]);
	/* a rate change: in the other's next lookups once heard */
	REQUIRE_ST(
		sfs_key_create(f.s, f.user, SFS_SCOPE_READ, NULL, key, kid, &e),
		SFS_OK);
	CHECK_ST(sfs_auth_api_key(b, key, &a, &e), SFS_OK);
	CHECK(a.download_bps == -1);
	CHECK_ST(sfs_user_set_rate(f.s, f.user, 8192, &e), SFS_OK);
	t0 = now_us();
	end = t0 + DEADLINE_MS * 1000LL;
	while (sfs_auth_api_key(b, key, &a, &e) == SFS_OK &&
	       a.download_bps != 8192 && now_us() < end)
		pause_us(20);
	CHECK(a.download_bps == 8192);
	printf("a rate change seen by the other after %lld us\n",
	       (long long)(now_us() - t0));
	/* a commit through one moves the other's data generation */
	dg = sfs_store_data_gen(b);
	CHECK(dg != 0);
	CHECK(tfx_sql_int(f.s, "UPDATE api_key SET label = 'y'"
			       " RETURNING 1") >= 1);
	t0 = now_us();
	while (sfs_store_data_gen(b) == dg && now_us() < end)
		pause_us(20);
	CHECK(sfs_store_data_gen(b) != dg);
	printf("a commit seen by the other's data generation after %lld us\n",
	       (long long)(now_us() - t0));
	sfs_store_close(b);
	th_rmrf(dir2);
	fx_close(&f);
}

/*
 * PostgreSQL: the other machine's listening connection killed
 * (pg_terminate_backend) and kept from coming back (its role may no
 * longer log in): while it is down its caches are off -- a key revoked
 * behind the store's back, with no notice at all, is refused at once --
 * and when it is back, nothing cached before is served: a key revoked
 * behind the back before the loss (and still cached then) is refused too.
 */
static void test_listener_lost(void)
{
	char k1[SFS_API_KEY_SIZE], id1[SFS_ID_SIZE];
	char k2[SFS_API_KEY_SIZE], id2[SFS_ID_SIZE], *dir2 = NULL;
	char role[64];
	struct sfs_store *b = NULL;
	struct sfs_actor a;
	struct sfs_err e;
	struct fx f;
	enum sfs_status st = SFS_IO;
	uint64_t ag, g;
	int pid, tries;

	if (!th_is_pg())
		return; /* SQLite: no listener */
	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	snprintf(role, sizeof(role), "sfs_t_%d_%lld", (int)getpid(),
		 (long long)(sfs_mono_ns() % 1000000000));
	REQUIRE(tfx_sql(f.s, "CREATE ROLE %s LOGIN SUPERUSER", role) == 0);
	b = open_elsewhere(&f, role, &dir2);
	CHECK(b != NULL);
	if (!b)
		goto out;
	CHECK(wait_live(b, 1) == 0);
	CHECK_ST(sfs_key_create(f.s, f.user, SFS_SCOPE_READ, NULL, k1, id1, &e),
		 SFS_OK);
	CHECK_ST(sfs_key_create(f.s, f.user, SFS_SCOPE_READ, NULL, k2, id2, &e),
		 SFS_OK);
	/*
	 * k1 behind the back (no notice at all): b answers from its cache.
	 * The keys' own notices (their creation) may reach b's listener
	 * after b cached them, and start its cache afresh: the step is
	 * tried again, k1 made good again, until no notice came between.
	 */
	for (tries = 0; tries < 100; tries++) {
		g = sfsi_auth_gen(b);
		CHECK_ST(sfs_auth_api_key(b, k1, &a, &e), SFS_OK);
		CHECK_ST(sfs_auth_api_key(b, k2, &a, &e), SFS_OK);
		CHECK(tfx_sql(f.s,
			      "UPDATE api_key SET revoked_at = 1 WHERE uuid ="
			      " '%s'",
			      id1) == 0);
		st = sfs_auth_api_key(b, k1, &a, &e);
		if (sfsi_auth_gen(b) == g)
			break;
		CHECK(tfx_sql(f.s,
			      "UPDATE api_key SET revoked_at = NULL WHERE"
			      " uuid = '%s'",
			      id1) == 0);
	}
	CHECK(tries < 100);
	CHECK_ST(st, SFS_OK);
	/* the listener killed, and kept out */
	CHECK(tfx_sql(f.s, "ALTER ROLE %s NOLOGIN", role) == 0);
	pid = __atomic_load_n(&b->note_pid, __ATOMIC_SEQ_CST);
	CHECK(pid > 0);
	ag = sfsi_auth_gen(b);
	CHECK(tfx_sql(f.s, "SELECT pg_terminate_backend(%d)", pid) == 0);
	CHECK(wait_live(b, 0) == 0);
	CHECK(sfsi_auth_gen(b) != ag);
	CHECK(sfs_store_data_gen(b) == 0); /* nothing cached by it */
	/* k2 behind the back while b hears nothing: refused at once */
	CHECK(tfx_sql(f.s,
		      "UPDATE api_key SET revoked_at = 1 WHERE uuid ="
		      " '%s'",
		      id2) == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_api_key(b, k2, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "revoked") != NULL);
	CHECK_ST(sfs_auth_api_key(b, k1, &a, NULL), SFS_UNAUTHENTICATED);
	/* back: it reconnects by itself, and serves nothing from before */
	CHECK(tfx_sql(f.s, "ALTER ROLE %s LOGIN", role) == 0);
	CHECK(wait_live(b, 1) == 0);
	CHECK(__atomic_load_n(&b->note_pid, __ATOMIC_SEQ_CST) != pid);
	CHECK(sfs_store_data_gen(b) != 0);
	CHECK_ST(sfs_auth_api_key(b, k1, &a, NULL), SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_auth_api_key(b, k2, &a, NULL), SFS_UNAUTHENTICATED);
out:
	sfs_store_close(b);
	th_rmrf(dir2);
	CHECK(tfx_sql(f.s, "DROP ROLE %s", role) == 0);
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_WARN);
	RUN(test_key_cache);
	RUN(test_key_cache_counter_mode);
	RUN(test_data_gen);
	RUN(test_notice_across_machines);
	RUN(test_listener_lost);
	return th_report();
}
