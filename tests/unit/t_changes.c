/*
 * Tests of the change feed as a user sees it (core/changes.c), of new
 * content versions on a condition (sfs_file_set_content_if) and of waiting
 * on the data generation (sfs_store_data_gen_wait): a file is reported
 * once, in its state now; shares make a file appear and disappear for
 * their user; another tenant hears nothing; the window is bounded by the
 * limit; old and foreign cursors expire; a condition that no longer holds
 * is SFS_PRECONDITION and changes nothing; a commit wakes a waiter.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fixture.h"
#include "speechfs/changes.h"
#include "speechfs/dir.h"
#include "speechfs/file.h"
#include "speechfs/log.h"
#include "speechfs/share.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "testhelp.h"

struct fx {
	char *dir;
	struct sfs_store *s;
	char t1[SFS_ID_SIZE], t2[SFS_ID_SIZE];
	char ua[SFS_ID_SIZE], ub[SFS_ID_SIZE], ux[SFS_ID_SIZE];
	struct sfs_actor a, b, x;
};

static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, NULL))
		return -1;
	if (tfx_tenant(f->s, "one", 0, 0, f->t1) ||
	    tfx_tenant(f->s, "two", 0, 0, f->t2) ||
	    tfx_user(f->s, f->t1, "alice", f->ua, &f->a) ||
	    tfx_user(f->s, f->t1, "bob", f->ub, &f->b) ||
	    tfx_user(f->s, f->t2, "xavier", f->ux, &f->x))
		return -1;
	return 0;
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
}

/* What one read of the feed gave. */
struct seen {
	int n, files, dirs, removed;
	char ids[16][SFS_ID_SIZE];
	int visible[16];
	char names[16][32];
	char dir_paths[8][64];
	int64_t origins[16], dir_origins[8];
};

static int note(void *arg, const struct sfs_change *c)
{
	struct seen *w = arg;

	if (c->kind == SFS_CHANGE_DIR) {
		if (w->dirs < 8) {
			snprintf(w->dir_paths[w->dirs], 64, "%s", c->dir);
			w->dir_origins[w->dirs] = c->origin;
		}
		w->dirs++;
	} else if (w->files < 16) {
		memcpy(w->ids[w->files], c->file_id, SFS_ID_SIZE);
		w->visible[w->files] = c->visible;
		w->origins[w->files] = c->origin;
		snprintf(w->names[w->files], 32, "%s",
			 c->visible ? c->file.name : "");
		w->removed += !c->visible;
		w->files++;
	}
	w->n++;
	return 0;
}

static enum sfs_status feed(struct fx *f, const struct sfs_actor *a,
			    int64_t *cur, int limit, struct seen *w, int *more)
{
	struct sfs_err e;
	int64_t next;
	int m;
	enum sfs_status st;

	memset(w, 0, sizeof(*w));
	sfs_err_init(&e);
	st = sfs_changes_since(f->s, a, *cur, limit, 0, note, w, &next, &m, &e);
	if (!st)
		*cur = next;
	if (more)
		*more = m;
	return st;
}

static int64_t now_cursor(struct fx *f, const struct sfs_actor *a)
{
	int64_t c = -1;

	if (sfs_changes_cursor(f->s, a, &c, NULL))
		return -1;
	return c;
}

static void test_a_file_once_as_it_is_now(void)
{
	struct sfs_file_update u = { 0 };
	struct seen w;
	struct fx f;
	char id[SFS_ID_SIZE];
	int64_t cur;

	REQUIRE(fx_open(&f) == 0);
	cur = now_cursor(&f, &f.a);
	REQUIRE(cur >= 0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "first", "abc", 3, id, NULL), SFS_OK);
	u.set = SFS_UPD_NAME;
	u.name = "second";
	REQUIRE_ST(sfs_file_update(f.s, &f.a, id, &u, NULL, NULL), SFS_OK);
	REQUIRE_ST(feed(&f, &f.a, &cur, 100, &w, NULL), SFS_OK);
	CHECK(w.files == 1);
	CHECK(!strcmp(w.ids[0], id) && w.visible[0]);
	CHECK(!strcmp(w.names[0], "second"));
	/* nothing new: nothing reported, the cursor stays */
	REQUIRE_ST(feed(&f, &f.a, &cur, 100, &w, NULL), SFS_OK);
	CHECK(w.n == 0);
	/* a directory made: its parent's entries changed */
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/made/", NULL), SFS_OK);
	REQUIRE_ST(feed(&f, &f.a, &cur, 100, &w, NULL), SFS_OK);
	CHECK(w.files == 0 && w.dirs == 1 && !strcmp(w.dir_paths[0], "/"));
	fx_close(&f);
}

/*
 * The origin a thread sets (a daemon: the client's, for one request) is
 * the one its changes carry; a change made by two origins carries none.
 */
static void test_origin(void)
{
	struct sfs_file_update u = { 0 };
	char mine[SFS_ID_SIZE], both[SFS_ID_SIZE];
	struct seen w;
	struct fx f;
	int64_t cur;
	int i;

	REQUIRE(fx_open(&f) == 0);
	cur = now_cursor(&f, &f.a);
	REQUIRE(cur >= 0);
	sfs_store_origin_set(77);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "mine", "m", 1, mine, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/o/", NULL), SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "both", "b", 1, both, NULL), SFS_OK);
	sfs_store_origin_set(0);
	u.set = SFS_UPD_NAME;
	u.name = "both2";
	REQUIRE_ST(sfs_file_update(f.s, &f.a, both, &u, NULL, NULL), SFS_OK);
	REQUIRE_ST(feed(&f, &f.a, &cur, 100, &w, NULL), SFS_OK);
	REQUIRE(w.files == 2 && w.dirs == 1);
	for (i = 0; i < 2; i++)
		CHECK(w.origins[i] == (!strcmp(w.ids[i], mine) ? 77 : 0));
	CHECK(w.dir_origins[0] == 77);
	/* the store handle's own origin again: not 77 */
	REQUIRE_ST(sfs_file_update(f.s, &f.a, mine, &u, NULL, NULL), SFS_OK);
	REQUIRE_ST(feed(&f, &f.a, &cur, 100, &w, NULL), SFS_OK);
	REQUIRE(w.files == 1);
	CHECK(w.origins[0] != 77 && w.origins[0] != 0);
	fx_close(&f);
}

/*
 * A feed that skips an origin passes over the changes all made by it (a
 * change another origin made too is still there), its cursor past them;
 * the one origin of the changes after a cursor is told while there is
 * one, 0 once two made them or none came.
 */
static void test_skip_origin(void)
{
	struct sfs_file_update u = { 0 };
	char mine[SFS_ID_SIZE], both[SFS_ID_SIZE], other[SFS_ID_SIZE];
	struct sfs_err e;
	struct seen w;
	struct fx f;
	int64_t cur, start, next, seq, origin;
	int more;

	REQUIRE(fx_open(&f) == 0);
	start = cur = now_cursor(&f, &f.a);
	REQUIRE(cur >= 0);
	sfs_store_origin_set(77);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "mine", "m", 1, mine, NULL), SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "both", "b", 1, both, NULL), SFS_OK);
	REQUIRE_ST(sfs_changes_origin_after(f.s, start, &seq, &origin, NULL),
		   SFS_OK);
	CHECK(seq > start && origin == 77);
	sfs_store_origin_set(78);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "other", "o", 1, other, NULL), SFS_OK);
	u.set = SFS_UPD_NAME;
	u.name = "both2";
	REQUIRE_ST(sfs_file_update(f.s, &f.a, both, &u, NULL, NULL), SFS_OK);
	sfs_store_origin_set(0);
	REQUIRE_ST(sfs_changes_origin_after(f.s, start, &seq, &origin, NULL),
		   SFS_OK);
	CHECK(origin == 0);
	REQUIRE_ST(sfs_changes_origin_after(f.s, seq, &next, &origin, NULL),
		   SFS_OK);
	CHECK(next == seq && origin == 0); /* nothing after the last */
	memset(&w, 0, sizeof(w));
	sfs_err_init(&e);
	REQUIRE_ST(sfs_changes_since(f.s, &f.a, cur, 100, 77, note, &w, &next,
				     &more, &e),
		   SFS_OK);
	CHECK(next == seq && !more);
	REQUIRE(w.files == 2);
	CHECK(!strcmp(w.ids[0], other) && !strcmp(w.ids[1], both));
	/* the same rows without a skip: the origin's own file too */
	REQUIRE_ST(feed(&f, &f.a, &cur, 100, &w, NULL), SFS_OK);
	CHECK(w.files == 3 && cur == seq);
	fx_close(&f);
}

/*
 * Threads of one store handle write at once, each with an origin of its
 * own (a daemon's requests of several clients), on the connections of the
 * pool, which pass from thread to thread: every change row carries the
 * origin of the thread that made it, never one a connection kept from
 * another thread. Then threads without an origin write on the same
 * connections: the store's own, none of the clients'.
 */
#define OT_THREADS 6
#define OT_FILES 12

struct origin_writer {
	struct fx *f;
	char prefix; /* of its names: 't' with an origin, 'u' without */
	int i, failed;
};

static int64_t origin_of(const struct origin_writer *w)
{
	return w->prefix == 't' ? 1000 + w->i : 0;
}

static void *origin_writer(void *p)
{
	struct origin_writer *w = p;
	struct sfs_file_update u = { 0 };
	char id[SFS_ID_SIZE], name[32], path[32];
	int k;

	sfs_store_origin_set(origin_of(w));
	for (k = 0; k < OT_FILES && !w->failed; k++) {
		snprintf(name, sizeof(name), "%c%d-%d", w->prefix, w->i, k);
		snprintf(path, sizeof(path), "/%c%d-%d/", w->prefix, w->i, k);
		if (tfx_upload(w->f->s, &w->f->a, name, "x", 1, id, NULL) ||
		    sfs_dir_make(w->f->s, &w->f->a, path, NULL))
			w->failed = 1;
		u.set = SFS_UPD_NAME;
		snprintf(name, sizeof(name), "%c%d-%d.b", w->prefix, w->i, k);
		u.name = name;
		if (!w->failed &&
		    sfs_file_update(w->f->s, &w->f->a, id, &u, NULL, NULL))
			w->failed = 1;
	}
	sfs_store_origin_set(0);
	return NULL;
}

/* OT_THREADS writers at once, names by prefix; 0 when all wrote. */
static int origin_writers(struct fx *f, char prefix)
{
	struct origin_writer w[OT_THREADS];
	pthread_t th[OT_THREADS];
	int i, started = 0, failed = 0;

	for (i = 0; i < OT_THREADS; i++) {
		w[i].f = f;
		w[i].prefix = prefix;
		w[i].i = i;
		w[i].failed = 0;
		if (pthread_create(&th[i], NULL, origin_writer, &w[i]))
			break;
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		failed |= w[i].failed;
	}
	return started == OT_THREADS && !failed ? 0 : -1;
}

/* The change rows of writer `i` of `prefix`: all, or those off `want`. */
static int origin_rows(struct fx *f, char prefix, int i, const char *off)
{
	char sql[320];

	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*) FROM change c LEFT JOIN file f"
		 " ON f.id = c.file_id WHERE (f.name LIKE '%c%d-%%'"
		 " OR c.dir LIKE '/%c%d-%%')%s",
		 prefix, i, prefix, i, off);
	return tfx_sql_int(f->s, sql);
}

static void test_origin_threads(void)
{
	char off[96];
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	CHECK(origin_writers(&f, 't') == 0);
	CHECK(origin_writers(&f, 'u') == 0);
	snprintf(off, sizeof(off),
		 " AND coalesce(c.origin, 0) BETWEEN 0 AND %d",
		 1000 + OT_THREADS);
	for (i = 0; i < OT_THREADS; i++) {
		char mine[64];

		/* a file's rows (made, renamed) and a directory's */
		CHECK(origin_rows(&f, 't', i, "") >= 3 * OT_FILES);
		CHECK(origin_rows(&f, 'u', i, "") >= 3 * OT_FILES);
		snprintf(mine, sizeof(mine), " AND coalesce(c.origin, 0) <> %d",
			 1000 + i);
		CHECK(origin_rows(&f, 't', i, mine) == 0);
		CHECK(origin_rows(&f, 'u', i, off) == 0);
	}
	fx_close(&f);
}

/*
 * PostgreSQL: the pooled connection a thread writes on is lost (its own
 * backend killed) and made again: its changes still carry the thread's
 * origin, and the store's own once the thread has none -- the new session
 * is set up as the first was, and no origin is kept from before it.
 */
static void test_origin_reconnect(void)
{
	char a[SFS_ID_SIZE], b[SFS_ID_SIZE], c[SFS_ID_SIZE];
	struct seen w;
	struct fx f;
	int64_t cur;
	int i;

	if (!th_is_pg())
		return; /* SQLite: a connection is not lost */
	REQUIRE(fx_open(&f) == 0);
	cur = now_cursor(&f, &f.a);
	REQUIRE(cur >= 0);
	sfs_store_origin_set(77);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", "a", 1, a, NULL), SFS_OK);
	/* fails: the connection is gone; it is made again */
	tfx_sql(f.s, "SELECT pg_terminate_backend(pg_backend_pid())");
	REQUIRE_ST(tfx_upload(f.s, &f.a, "b", "b", 1, b, NULL), SFS_OK);
	sfs_store_origin_set(0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "c", "c", 1, c, NULL), SFS_OK);
	REQUIRE_ST(feed(&f, &f.a, &cur, 100, &w, NULL), SFS_OK);
	REQUIRE(w.files == 3);
	for (i = 0; i < 3; i++) {
		if (!strcmp(w.ids[i], c))
			CHECK(w.origins[i] != 77 && w.origins[i] != 0);
		else
			CHECK(w.origins[i] == 77);
	}
	fx_close(&f);
}

static void test_shares_and_tenants(void)
{
	struct sfs_share sh;
	struct seen w;
	struct fx f;
	char id[SFS_ID_SIZE];
	int64_t cb, cx, ca;
	int created;

	REQUIRE(fx_open(&f) == 0);
	cb = now_cursor(&f, &f.b);
	cx = now_cursor(&f, &f.x);
	REQUIRE(cb >= 0 && cx >= 0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "private", "p", 1, id, NULL), SFS_OK);
	REQUIRE_ST(feed(&f, &f.b, &cb, 100, &w, NULL), SFS_OK);
	CHECK(w.n == 0); /* a colleague's private file: not a word */
	REQUIRE_ST(sfs_share_put(f.s, &f.a, id, f.ub, SFS_PERM_VIEW, &sh,
				 &created, NULL),
		   SFS_OK);
	REQUIRE_ST(feed(&f, &f.b, &cb, 100, &w, NULL), SFS_OK);
	CHECK(w.files == 1 && w.visible[0] && !strcmp(w.ids[0], id));
	REQUIRE_ST(sfs_share_revoke_user(f.s, &f.a, id, f.ub, NULL), SFS_OK);
	REQUIRE_ST(feed(&f, &f.b, &cb, 100, &w, NULL), SFS_OK);
	CHECK(w.files == 1 && w.removed == 1 && !strcmp(w.ids[0], id));
	/* another tenant's feed never names it */
	REQUIRE_ST(feed(&f, &f.x, &cx, 100, &w, NULL), SFS_OK);
	CHECK(w.n == 0);
	/* the read scope is needed */
	ca = 0;
	f.a.scopes = SFS_SCOPE_WRITE;
	CHECK_ST(feed(&f, &f.a, &ca, 100, &w, NULL), SFS_FORBIDDEN);
	fx_close(&f);
}

static void test_limit_and_expiry(void)
{
	struct seen w;
	struct fx f;
	struct sfs_err e;
	int64_t cur, start, far;
	int i, more = 0, total = 0, pages = 0;

	REQUIRE(fx_open(&f) == 0);
	start = cur = now_cursor(&f, &f.a);
	for (i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		REQUIRE_ST(tfx_upload(f.s, &f.a, name, name, strlen(name), NULL,
				      NULL),
			   SFS_OK);
	}
	do {
		REQUIRE_ST(feed(&f, &f.a, &cur, 2, &w, &more), SFS_OK);
		total += w.files;
		pages++;
	} while (more && pages < 20);
	CHECK(total == 5);
	CHECK(pages >= 3);
	/* a cursor beyond the store's last change is another store's */
	far = cur + 1000;
	sfs_err_init(&e);
	CHECK_ST(sfs_changes_since(f.s, &f.a, far, 10, 0, note, &w, &cur, &i,
				   &e),
		 SFS_GONE);
	CHECK(e.reason == SFS_R_CURSOR_EXPIRED);
	CHECK(start >= 0);
	fx_close(&f);
}

static void test_set_content_if(void)
{
	struct sfs_stage *st;
	struct sfs_file out;
	struct sfs_err e;
	struct fx f;
	char id[SFS_ID_SIZE], sha[65], got[16];
	size_t n = 0;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "doc", "one", 3, id, sha), SFS_OK);
	/* the content the caller saw: stored */
	st = tfx_stage(f.s, "two", 3);
	REQUIRE(st);
	sfs_file_init(&out);
	CHECK_ST(sfs_file_set_content_if(f.s, &f.a, id, st, 0, sha, &out, NULL),
		 SFS_OK);
	CHECK(strcmp(out.sha256, sha) != 0);
	sfs_file_release(&out);
	sfs_stage_free(st);
	/* the old one again: refused, nothing changes */
	st = tfx_stage(f.s, "three", 5);
	REQUIRE(st);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_set_content_if(f.s, &f.a, id, st, 0, sha, NULL, &e),
		 SFS_PRECONDITION);
	sfs_stage_free(st);
	CHECK_ST(tfx_read(f.s, &f.a, id, SFS_CONTENT_ORIGINAL, got, sizeof(got),
			  &n),
		 SFS_OK);
	CHECK(n == 3 && !memcmp(got, "two", 3));
	/* "*" is any content; "" is none (and the file has some) */
	st = tfx_stage(f.s, "four", 4);
	REQUIRE(st);
	CHECK_ST(sfs_file_set_content_if(f.s, &f.a, id, st, 0, "", NULL, NULL),
		 SFS_PRECONDITION);
	CHECK_ST(sfs_file_set_content_if(f.s, &f.a, id, st, 0, "*", NULL, NULL),
		 SFS_OK);
	sfs_stage_free(st);
	fx_close(&f);
}

struct waiter {
	struct sfs_store *s;
	uint64_t gen, got;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->got = sfs_store_data_gen_wait(w->s, w->gen, 60000);
	return NULL;
}

/*
 * A commit through another handle of the store (as another daemon would
 * make it) wakes a waiter long before its minute is up. The other handle
 * commits until the waiter wakes (30 s at most): on PostgreSQL a first
 * commit may come before the waiter's store listens.
 */
static void wait_woken_by_other_handle(struct fx *f, uint64_t g)
{
	struct sfs_store *other = NULL;
	struct timespec dl;
	struct waiter w;
	pthread_t th;
	char name[32];
	int i, joined = 0;

	REQUIRE_ST(sfs_store_open(f->dir, NULL, &other, NULL), SFS_OK);
	w.s = f->s;
	w.gen = g;
	w.got = g;
	REQUIRE(pthread_create(&th, NULL, wait_thread, &w) == 0);
	for (i = 0; i < 150 && !joined; i++) {
		snprintf(name, sizeof(name), "other-%d", i);
		REQUIRE_ST(tfx_upload(other, &f->a, name, "o", 1, NULL, NULL),
			   SFS_OK);
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += 200000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		joined = pthread_timedjoin_np(th, NULL, &dl) == 0;
	}
	CHECK(joined);
	if (!joined)
		pthread_join(th, NULL);
	CHECK(w.got != g);
	sfs_store_close(other);
}

static void test_data_gen_wait(void)
{
	struct waiter w;
	struct fx f;
	pthread_t th;
	uint64_t g;
	int i;

	REQUIRE(fx_open(&f) == 0);
	/*
	 * PostgreSQL: the generation is unknown (0) until the store's
	 * listener hears the store's notices (keycache.c); a waiter on 0
	 * is woken when it does
	 */
	for (i = 0; i < 30000 && !sfs_store_data_gen(f.s); i += 10)
		(void)sfs_store_data_gen_wait(f.s, 0, 10);
	g = sfs_store_data_gen(f.s);
	REQUIRE(g != 0);
	/* no commit, a short timeout: the same generation */
	CHECK(sfs_store_data_gen_wait(f.s, g, 20) == g);
	/* a stale generation returns at once */
	CHECK(sfs_store_data_gen_wait(f.s, g + 2, 60000) == g);
	/* a commit wakes a waiter long before its minute is up */
	w.s = f.s;
	w.gen = g;
	w.got = 0;
	REQUIRE(pthread_create(&th, NULL, wait_thread, &w) == 0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "wake", "w", 1, NULL, NULL), SFS_OK);
	pthread_join(th, NULL);
	CHECK(w.got != g && w.got != 0);
	wait_woken_by_other_handle(&f, w.got);
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_a_file_once_as_it_is_now);
	RUN(test_origin);
	RUN(test_skip_origin);
	RUN(test_origin_reconnect);
	RUN(test_origin_threads);
	RUN(test_shares_and_tenants);
	RUN(test_limit_and_expiry);
	RUN(test_set_content_if);
	RUN(test_data_gen_wait);
	return th_report();
}
