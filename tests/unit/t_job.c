/*
 * Tests of the persistent jobs: claims under a lease across store handles
 * and processes, outcomes, cancellation, the worker threads and their
 * lease renewer and janitor.
 *
 * About internals on purpose: the queue is tested on its own, below the
 * file model, so its files are raw rows (make_file); a job's whole row
 * (attempts, error, lease token, finish time) is what a claim, an outcome
 * or a lease expiry promises, so job_row reads it; cancellation is the
 * file model's call inside its transaction (sfsi_job_cancel_file); and the
 * number of worker threads started is read off the store (store_i.h).
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include "db_i.h"
#include "fixture.h"
#include "speechfs/job.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "store_i.h"
#include "testhelp.h"

#define NJOBS 200

static char *tdir;

/* ---- helpers ----------------------------------------------------------- */

static struct sfs_store *open_store(const struct sfs_config *cfg)
{
	struct sfs_store *s = NULL;
	struct sfs_err e;

	sfs_err_init(&e);
	tdir = th_tmpdir();
	if (sfs_store_init(tdir, &e) || sfs_store_open(tdir, cfg, &s, &e)) {
		fprintf(stderr, "cannot make a store: %s\n", e.message);
		return NULL;
	}
	return s;
}

/* Another handle on the same store, as a second process would have. */
static struct sfs_store *reopen(const struct sfs_config *cfg)
{
	struct sfs_store *s = NULL;
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_store_open(tdir, cfg, &s, &e))
		fprintf(stderr, "cannot open the store: %s\n", e.message);
	return s;
}

static void done_store(struct sfs_store *s)
{
	sfs_store_close(s);
	th_rmrf(tdir);
	tdir = NULL;
	sfs_set_clock_offset_ms(0);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

struct row {
	int state;
	int attempts;
	char error[256];
	int has_token;
	int64_t finished_at;
};

/* A job row read straight from the table; state 0 when it is missing. */
static struct row job_row(struct sfs_store *s, int64_t id)
{
	struct row r = { 0 };
	struct db *d = NULL;
	struct db_stmt *st;
	const char *t;

	if (sfsi_db_get(s, &d, NULL))
		return r;
	st = sfsi_db_prep(d,
			  "SELECT state, attempts, error, lease_token,"
			  " coalesce(finished_at, 0) FROM job WHERE id = ?1",
			  NULL);
	if (st) {
		sfsi_db_bind_int(st, 1, id);
		if (sfsi_db_step(st, NULL) == 1) {
			r.state = (int)sfsi_db_col_int(st, 0);
			r.attempts = (int)sfsi_db_col_int(st, 1);
			t = sfsi_db_col_text(st, 2);
			snprintf(r.error, sizeof(r.error), "%s", t ? t : "");
			r.has_token = !sfsi_db_col_null(st, 3);
			r.finished_at = sfsi_db_col_int(st, 4);
		}
		sfsi_db_reset(st);
	}
	sfsi_db_put(d);
	return r;
}

static int64_t stat_counts[SFS_JOB_KIND_MAX][6];

static void count_fn(void *arg, enum sfs_job_kind kind, enum sfs_job_state st,
		     int64_t n)
{
	(void)arg;
	if (kind > 0 && kind < SFS_JOB_KIND_MAX && st > 0 && st < 6)
		stat_counts[kind][st] = n;
}

static int64_t count_state(struct sfs_store *s, int kind, int state)
{
	memset(stat_counts, 0, sizeof(stat_counts));
	if (sfs_job_stats(s, count_fn, NULL, NULL))
		return -1;
	return stat_counts[kind][state];
}

/* Wait up to ms for count_state to reach want. */
static int wait_count(struct sfs_store *s, int kind, int state, int64_t want,
		      int ms)
{
	int waited;

	for (waited = 0; waited <= ms; waited += 20) {
		if (count_state(s, kind, state) == want)
			return 1;
		sleep_ms(20);
	}
	return 0;
}

/* A tenant, a user and file 7 owned by user 1, in raw rows. */
static int make_file(struct sfs_store *s)
{
	struct db *d = NULL;
	int ret;

	if (sfsi_db_get(s, &d, NULL))
		return -1;
	ret = sfsi_db_exec(
		      d,
		      "INSERT INTO tenant(id, uuid, name, created_at)"
		      " VALUES (1, 't-1', 'acme', 0);"
		      "INSERT INTO user(id, uuid, tenant_id, name,"
		      " created_at) VALUES (1, 'u-1', 1, 'ann', 0);"
		      "INSERT INTO file(id, uuid, tenant_id, owner_id, name,"
		      " dir, created_at, mtime_ns, ctime_ns)"
		      " VALUES (7, 'f-uuid-7', 1, 1, 'a.wav', '/', 0, 0, 0)",
		      NULL)
		      ? -1
		      : 0;
	sfsi_db_put(d);
	return ret;
}

static enum sfs_status cancel(struct sfs_store *s, int64_t ino, int kind)
{
	struct db *d = NULL;
	struct sfs_err e;
	enum sfs_status ret;

	sfs_err_init(&e);
	ret = sfsi_db_get(s, &d, &e);
	if (ret)
		return ret;
	ret = sfsi_db_begin(d, &e);
	if (!ret)
		ret = sfsi_job_cancel_file(d, ino, kind, &e);
	if (!ret)
		ret = sfsi_db_commit(d, &e);
	sfsi_db_put(d);
	return ret;
}

/* ---- handlers ---------------------------------------------------------- */

static int calls;
static char last_payload[64];
static int runs[NJOBS];

static enum sfs_status h_ok(struct sfs_store *s, struct sfs_job *j,
			    struct sfs_err *e)
{
	(void)s;
	(void)e;
	__atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
	snprintf(last_payload, sizeof(last_payload), "%s",
		 j->payload ? j->payload : "(null)");
	return SFS_OK;
}

static enum sfs_status h_fail(struct sfs_store *s, struct sfs_job *j,
			      struct sfs_err *e)
{
	(void)s;
	calls++;
	if (j->payload && !strcmp(j->payload, "quiet"))
		return SFS_BUSY;
	return sfs_errf(e, SFS_IO, SFS_R_NONE, "the disk is on fire");
}

/* Counts runs per job, by the index in the payload. */
static enum sfs_status h_count(struct sfs_store *s, struct sfs_job *j,
			       struct sfs_err *e)
{
	int64_t i;

	(void)s;
	if (!j->payload || sfs_parse_i64(j->payload, &i) || i < 0 || i >= NJOBS)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "bad payload");
	__atomic_add_fetch(&runs[i], 1, __ATOMIC_SEQ_CST);
	return SFS_OK;
}

static int slow_started, slow_renewed;

/*
 * A long job that renews its lease, as long bodies do, until told off; its
 * sleeps are the job's work (20 ms a step, 10 s in all).
 */
static enum sfs_status h_slow(struct sfs_store *s, struct sfs_job *j,
			      struct sfs_err *e)
{
	enum sfs_status st;
	int i;

	__atomic_store_n(&slow_started, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < 500; i++) {
		sleep_ms(20);
		st = sfs_job_renew(s, j, e);
		if (st) {
			__atomic_store_n(&slow_started, 2, __ATOMIC_SEQ_CST);
			return st;
		}
		__atomic_add_fetch(&slow_renewed, 1, __ATOMIC_SEQ_CST);
	}
	return SFS_OK;
}

/*
 * A long job that never renews: the renewer must keep its lease. It works
 * until t_lease_renewer lets it end (sleepy_go), once the lease has
 * outlived its length twice; at most two minutes (a hang otherwise).
 */
static int sleepy_go;

static enum sfs_status h_sleepy(struct sfs_store *s, struct sfs_job *j,
				struct sfs_err *e)
{
	int i;

	(void)s;
	(void)j;
	(void)e;
	__atomic_store_n(&slow_started, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < 12000 * th_slow() &&
		    !__atomic_load_n(&sleepy_go, __ATOMIC_SEQ_CST);
	     i++)
		sleep_ms(10);
	__atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
	return SFS_OK;
}

/* ---- tests ------------------------------------------------------------- */

static void t_names(void)
{
	CHECK(!strcmp(sfs_job_kind_name(SFS_JOB_LISTENING), "listening"));
	CHECK(!strcmp(sfs_job_kind_name(SFS_JOB_IMPORT), "import"));
	CHECK(!strcmp(sfs_job_kind_name(SFS_JOB_TEST), "test"));
	CHECK(!strcmp(sfs_job_kind_name((enum sfs_job_kind)42), "unknown"));
	CHECK(!strcmp(sfs_job_state_name(SFS_JOB_PENDING), "PENDING"));
	CHECK(!strcmp(sfs_job_state_name(SFS_JOB_PROCESSING), "PROCESSING"));
	CHECK(!strcmp(sfs_job_state_name(SFS_JOB_DONE), "DONE"));
	CHECK(!strcmp(sfs_job_state_name(SFS_JOB_FAILED), "FAILED"));
	CHECK(!strcmp(sfs_job_state_name(SFS_JOB_CANCELLED), "CANCELLED"));
	CHECK(!strcmp(sfs_job_state_name((enum sfs_job_state)0), "UNKNOWN"));
	CHECK(!strcmp(sfs_job_state_name((enum sfs_job_state)77), "UNKNOWN"));
}

static void t_enqueue_claim_done(void)
{
	struct sfs_store *s = open_store(NULL);
	struct sfs_job j, k;
	struct sfs_err e;
	struct row r;
	int64_t id = 0, lid = 0;
	size_t i;

	REQUIRE(s);
	sfs_err_init(&e);
	/* the store registers its media kinds at open; with their handlers
	 * unset nothing is runnable for this handle */
	sfs_job_set_handler(s, SFS_JOB_LISTENING, NULL);
	sfs_job_set_handler(s, SFS_JOB_IMPORT, NULL);
	CHECK_ST(sfs_job_enqueue(s, SFS_JOB_LISTENING, 0, NULL, &lid, &e),
		 SFS_OK);
	CHECK_ST(sfs_job_claim(s, &j, &e), SFS_NOT_FOUND);
	CHECK_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, "hello", &id, &e), SFS_OK);
	CHECK(id > lid);
	CHECK_ST(sfs_job_enqueue(s, (enum sfs_job_kind)42, 0, NULL, NULL, &e),
		 SFS_INVALID);

	sfs_job_set_handler(s, SFS_JOB_TEST, h_ok);
	calls = 0;
	REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
	/* the older LISTENING job has no handler here: skipped */
	CHECK(j.id == id);
	CHECK(j.kind == SFS_JOB_TEST);
	CHECK(j.attempts == 1);
	CHECK(j.file_ino == 0 && j.file_id[0] == '\0');
	CHECK(j.payload && !strcmp(j.payload, "hello"));
	CHECK(strlen(j.token) == 32);
	for (i = 0; i < strlen(j.token); i++)
		CHECK(strchr("0123456789abcdef", j.token[i]) != NULL);
	r = job_row(s, id);
	CHECK(r.state == SFS_JOB_PROCESSING && r.has_token);
	CHECK(job_row(s, lid).state == SFS_JOB_PENDING);

	/* claimed: not handed out again */
	CHECK_ST(sfs_job_claim(s, &k, &e), SFS_NOT_FOUND);
	CHECK_ST(sfs_job_renew(s, &j, &e), SFS_OK);

	CHECK_ST(sfs_job_run(s, &j, &e), SFS_OK);
	CHECK(calls == 1);
	CHECK(!strcmp(last_payload, "hello"));
	r = job_row(s, id);
	CHECK(r.state == SFS_JOB_DONE);
	CHECK(!r.has_token);
	CHECK(r.finished_at > 0);
	CHECK(r.attempts == 1);
	/* a finished job's lease cannot be renewed, nor run recorded twice */
	CHECK_ST(sfs_job_renew(s, &j, &e), SFS_CONFLICT);
	CHECK_ST(sfs_job_run(s, &j, &e), SFS_CONFLICT);
	CHECK(job_row(s, id).state == SFS_JOB_DONE);
	sfs_job_release(&j);
	CHECK(j.payload == NULL);
	CHECK_ST(sfs_job_claim(s, &j, &e), SFS_NOT_FOUND);
	done_store(s);
}

static void t_handler_failure(void)
{
	struct sfs_store *s = open_store(NULL);
	struct sfs_job j;
	struct sfs_err e;
	struct row r;
	int64_t id = 0, id2 = 0;

	REQUIRE(s);
	sfs_err_init(&e);
	sfs_job_set_handler(s, SFS_JOB_TEST, h_fail);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, NULL, &id, &e), SFS_OK);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, "quiet", &id2, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
	CHECK(j.id == id);
	CHECK_ST(sfs_job_run(s, &j, &e), SFS_IO);
	CHECK(strstr(e.message, "disk is on fire") != NULL);
	r = job_row(s, id);
	CHECK(r.state == SFS_JOB_FAILED);
	CHECK(!strcmp(r.error, "the disk is on fire"));
	CHECK(r.attempts == 1);
	CHECK(!r.has_token);
	sfs_job_release(&j);

	/* a failure without a message stores the status's text */
	sfs_err_init(&e);
	REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
	CHECK(j.id == id2);
	CHECK_ST(sfs_job_run(s, &j, &e), SFS_BUSY);
	r = job_row(s, id2);
	CHECK(r.state == SFS_JOB_FAILED);
	CHECK(r.error[0] != '\0');
	CHECK(!strcmp(r.error, sfs_status_str(SFS_BUSY)));
	sfs_job_release(&j);

	/* failed jobs are not claimed again */
	CHECK_ST(sfs_job_claim(s, &j, &e), SFS_NOT_FOUND);
	done_store(s);
}

static void t_claim_nothing(void)
{
	struct sfs_store *s = open_store(NULL);
	struct sfs_job j;
	struct sfs_err e;

	REQUIRE(s);
	sfs_err_init(&e);
	/* no handlers at all */
	CHECK_ST(sfs_job_claim(s, &j, &e), SFS_NOT_FOUND);
	sfs_job_set_handler(s, SFS_JOB_TEST, h_ok);
	sfs_err_init(&e);
	CHECK_ST(sfs_job_claim(s, &j, &e), SFS_NOT_FOUND);
	CHECK(e.status == SFS_NOT_FOUND);
	CHECK(j.payload == NULL && j.id == 0);
	/* NULL err is fine */
	CHECK_ST(sfs_job_claim(s, &j, NULL), SFS_NOT_FOUND);
	/* a handler can be removed again */
	CHECK_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, NULL, NULL, &e), SFS_OK);
	sfs_job_set_handler(s, SFS_JOB_TEST, NULL);
	CHECK_ST(sfs_job_claim(s, &j, &e), SFS_NOT_FOUND);
	done_store(s);
}

struct claimer {
	struct sfs_store *s;
	int ran;
	int errors;
};

static void *claim_loop(void *arg)
{
	struct claimer *c = arg;
	struct sfs_job j;
	struct sfs_err e;
	enum sfs_status st;

	for (;;) {
		sfs_err_init(&e);
		st = sfs_job_claim(c->s, &j, &e);
		if (st == SFS_NOT_FOUND)
			break;
		if (st == SFS_BUSY)
			continue;
		if (st) {
			c->errors++;
			break;
		}
		if (sfs_job_run(c->s, &j, &e))
			c->errors++;
		c->ran++;
		sfs_job_release(&j);
	}
	return NULL;
}

static void t_two_handles_concurrent(void)
{
	struct sfs_store *a = open_store(NULL), *b = NULL;
	struct claimer c[4];
	pthread_t th[4];
	struct sfs_err e;
	char num[16];
	int i, total = 0, once = 1;

	REQUIRE(a);
	b = reopen(NULL);
	REQUIRE(b);
	sfs_err_init(&e);
	for (i = 0; i < NJOBS; i++) {
		snprintf(num, sizeof(num), "%d", i);
		REQUIRE_ST(sfs_job_enqueue(a, SFS_JOB_TEST, 0, num, NULL, &e),
			   SFS_OK);
	}
	memset(runs, 0, sizeof(runs));
	sfs_job_set_handler(a, SFS_JOB_TEST, h_count);
	sfs_job_set_handler(b, SFS_JOB_TEST, h_count);
	for (i = 0; i < 4; i++) {
		c[i] = (struct claimer){ .s = i < 2 ? a : b };
		REQUIRE(!pthread_create(&th[i], NULL, claim_loop, &c[i]));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(c[i].errors == 0);
		total += c[i].ran;
	}
	for (i = 0; i < NJOBS; i++)
		if (runs[i] != 1) {
			fprintf(stderr, "job %d ran %d times\n", i, runs[i]);
			once = 0;
		}
	CHECK(once);
	CHECK(total == NJOBS);
	CHECK(count_state(a, SFS_JOB_TEST, SFS_JOB_DONE) == NJOBS);
	CHECK(count_state(b, SFS_JOB_TEST, SFS_JOB_PROCESSING) == 0);
	sfs_store_close(b);
	done_store(a);
}

static void t_lease_expiry(void)
{
	struct sfs_config cfg;
	struct sfs_store *s;
	struct sfs_job j1, j2, k;
	struct sfs_err e;
	int64_t id = 0;

	/*
	 * The test clock is an offset on the real one, so the real time
	 * that passes between two steps counts too: a 60 s lease and steps
	 * of 30 s leave a loaded machine 30 s between two calls (with 1 s
	 * and 100 ms it failed when a step took more than 100 ms).
	 */
	sfs_config_init(&cfg);
	cfg.job_lease_seconds = 60;
	s = open_store(&cfg);
	REQUIRE(s);
	sfs_err_init(&e);
	sfs_job_set_handler(s, SFS_JOB_TEST, h_ok);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, "x", &id, &e), SFS_OK);
	REQUIRE_ST(sfs_job_claim(s, &j1, &e), SFS_OK);
	CHECK_ST(sfs_job_claim(s, &k, &e), SFS_NOT_FOUND);

	/* 30 s later the lease still holds */
	sfs_set_clock_offset_ms(30000);
	CHECK_ST(sfs_job_claim(s, &k, &e), SFS_NOT_FOUND);
	/* past it: the job is claimed again, with a new token */
	sfs_set_clock_offset_ms(90000);
	REQUIRE_ST(sfs_job_claim(s, &j2, &e), SFS_OK);
	CHECK(j2.id == id);
	CHECK(j2.attempts == 2);
	CHECK(strcmp(j1.token, j2.token) != 0);
	CHECK(j2.payload && !strcmp(j2.payload, "x"));

	/* the first claim is lost: renew and outcome are refused */
	CHECK_ST(sfs_job_renew(s, &j1, &e), SFS_CONFLICT);
	calls = 0;
	CHECK_ST(sfs_job_run(s, &j1, &e), SFS_CONFLICT);
	CHECK(job_row(s, id).state == SFS_JOB_PROCESSING);
	CHECK(job_row(s, id).has_token);

	/* renewing pushes the lease forward from now */
	sfs_set_clock_offset_ms(120000);
	CHECK_ST(sfs_job_renew(s, &j2, &e), SFS_OK);
	sfs_set_clock_offset_ms(150000);
	CHECK_ST(sfs_job_claim(s, &k, &e), SFS_NOT_FOUND);
	CHECK_ST(sfs_job_run(s, &j2, &e), SFS_OK);
	CHECK(job_row(s, id).state == SFS_JOB_DONE);
	CHECK(job_row(s, id).attempts == 2);
	sfs_job_release(&j1);
	sfs_job_release(&j2);
	done_store(s);
}

/* A job whose process dies every time is failed, not claimed forever. */
static void t_gives_up(void)
{
	struct sfs_config cfg;
	struct sfs_store *s;
	struct sfs_job j;
	struct sfs_err e;
	struct row r;
	int64_t id = 0;
	int i;

	sfs_config_init(&cfg);
	cfg.job_lease_seconds = 1;
	s = open_store(&cfg);
	REQUIRE(s);
	sfs_err_init(&e);
	calls = 0;
	sfs_job_set_handler(s, SFS_JOB_TEST, h_ok);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, NULL, &id, &e), SFS_OK);
	for (i = 1; i <= 5; i++) {
		/* claimed, then "the process died": the lease runs out */
		sfs_set_clock_offset_ms(2000 * i);
		REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
		CHECK(j.attempts == i);
		sfs_job_release(&j);
	}
	sfs_set_clock_offset_ms(2000 * 6);
	REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
	CHECK(j.attempts == 6);
	CHECK_ST(sfs_job_run(s, &j, &e), SFS_IO);
	CHECK(calls == 0);
	r = job_row(s, id);
	CHECK(r.state == SFS_JOB_FAILED);
	CHECK(strstr(r.error, "gave up after 5 attempts") != NULL);
	sfs_job_release(&j);
	sfs_set_clock_offset_ms(0);
	done_store(s);
}

static void t_cancel(void)
{
	struct sfs_store *s = open_store(NULL);
	struct sfs_job j, k;
	struct sfs_err e;
	int64_t lid = 0, iid = 0, tid = 0, did = 0;

	REQUIRE(s);
	REQUIRE(make_file(s) == 0);
	sfs_err_init(&e);
	sfs_job_set_handler(s, SFS_JOB_IMPORT, h_ok);
	sfs_job_set_handler(s, SFS_JOB_LISTENING, NULL); /* not claimed here */
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_IMPORT, 7, "done", &did, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
	CHECK(j.file_ino == 7);
	CHECK(!strcmp(j.file_id, "f-uuid-7"));
	CHECK(j.owner == 1);
	REQUIRE_ST(sfs_job_run(s, &j, &e), SFS_OK);
	sfs_job_release(&j);

	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_LISTENING, 7, NULL, &lid, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_IMPORT, 7, NULL, &iid, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, NULL, &tid, &e), SFS_OK);
	REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
	CHECK(j.id == iid);

	/* cancel one kind only: the pending listening job */
	CHECK_ST(cancel(s, 7, SFS_JOB_LISTENING), SFS_OK);
	CHECK(job_row(s, lid).state == SFS_JOB_CANCELLED);
	CHECK(job_row(s, iid).state == SFS_JOB_PROCESSING);
	CHECK_ST(sfs_job_renew(s, &j, &e), SFS_OK);

	/* any kind: the running import loses its claim */
	CHECK_ST(cancel(s, 7, 0), SFS_OK);
	CHECK(job_row(s, iid).state == SFS_JOB_CANCELLED);
	CHECK(!job_row(s, iid).has_token);
	CHECK_ST(sfs_job_renew(s, &j, &e), SFS_CONFLICT);
	calls = 0;
	CHECK_ST(sfs_job_run(s, &j, &e), SFS_CONFLICT);
	CHECK(calls == 1); /* it ran, but its outcome is ignored */
	CHECK(job_row(s, iid).state == SFS_JOB_CANCELLED);
	sfs_job_release(&j);

	/* finished jobs and jobs of no file are untouched */
	CHECK(job_row(s, did).state == SFS_JOB_DONE);
	CHECK(job_row(s, tid).state == SFS_JOB_PENDING);
	/* cancelled jobs are not claimed, even with every handler */
	sfs_job_set_handler(s, SFS_JOB_LISTENING, h_ok);
	CHECK_ST(sfs_job_claim(s, &k, &e), SFS_NOT_FOUND);
	/* cancelling a file without jobs is fine */
	CHECK_ST(cancel(s, 12345, 0), SFS_OK);
	/* jobs of a missing file, or a negative one, are refused */
	CHECK_ST(sfs_job_enqueue(s, SFS_JOB_IMPORT, 12345, NULL, NULL, &e),
		 SFS_CONFLICT);
	CHECK_ST(sfs_job_enqueue(s, SFS_JOB_IMPORT, -1, NULL, NULL, &e),
		 SFS_INVALID);
	done_store(s);
}

/* Cancel while a worker runs it: the handler learns it, CANCELLED stays. */
static void t_cancel_running(void)
{
	struct sfs_store *s = open_store(NULL);
	struct sfs_err e;
	int64_t id = 0;
	int i;

	REQUIRE(s);
	REQUIRE(make_file(s) == 0);
	sfs_err_init(&e);
	slow_started = slow_renewed = 0;
	sfs_job_set_handler(s, SFS_JOB_LISTENING, h_slow);
	REQUIRE_ST(sfs_workers_start(s, 1, &e), SFS_OK);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_LISTENING, 7, NULL, &id, &e),
		   SFS_OK);
	for (i = 0;
	     i < 250 && !__atomic_load_n(&slow_renewed, __ATOMIC_SEQ_CST); i++)
		sleep_ms(20);
	REQUIRE(slow_renewed > 0);
	CHECK_ST(cancel(s, 7, SFS_JOB_LISTENING), SFS_OK);
	/* the handler's next renew fails; the worker goes back to idle */
	for (i = 0; i < 100; i++) {
		if (count_state(s, SFS_JOB_LISTENING, SFS_JOB_CANCELLED) == 1 &&
		    __atomic_load_n(&slow_started, __ATOMIC_SEQ_CST) == 2)
			break;
		sleep_ms(20);
	}
	CHECK(__atomic_load_n(&slow_started, __ATOMIC_SEQ_CST) == 2);
	sfs_workers_stop(s);
	CHECK(job_row(s, id).state == SFS_JOB_CANCELLED);
	CHECK(!strcmp(job_row(s, id).error, "cancelled"));
	done_store(s);
}

/* A process that claims a job and dies: the job returns after the lease. */
static void t_dead_process(void)
{
	struct sfs_config cfg;
	struct sfs_store *s;
	struct sfs_job j;
	struct sfs_err e;
	int64_t id = 0;
	int status = -1;
	pid_t pid;

	sfs_config_init(&cfg);
	cfg.job_lease_seconds = 5;
	s = open_store(&cfg);
	REQUIRE(s);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, "orphan", &id, &e),
		   SFS_OK);
	/* no SQLite connection may cross fork(): close ours first */
	sfs_store_close(s);
	fflush(NULL);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct sfs_store *c = reopen(&cfg);

		if (!c)
			_exit(2);
		sfs_job_set_handler(c, SFS_JOB_TEST, h_ok);
		if (sfs_job_claim(c, &j, NULL))
			_exit(3);
		_exit(j.id == id ? 0 : 4);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	s = reopen(&cfg);
	REQUIRE(s);
	sfs_job_set_handler(s, SFS_JOB_TEST, h_ok);
	CHECK(job_row(s, id).state == SFS_JOB_PROCESSING);
	CHECK(job_row(s, id).attempts == 1);
	CHECK_ST(sfs_job_claim(s, &j, &e), SFS_NOT_FOUND);
	sfs_set_clock_offset_ms(6000);
	REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
	CHECK(j.id == id);
	CHECK(j.attempts == 2);
	calls = 0;
	CHECK_ST(sfs_job_run(s, &j, &e), SFS_OK);
	CHECK(calls == 1);
	CHECK(job_row(s, id).state == SFS_JOB_DONE);
	sfs_job_release(&j);
	done_store(s);
}

static void t_workers_run_jobs(void)
{
	struct sfs_store *s = open_store(NULL), *other = NULL;
	struct sfs_err e;
	char num[16];
	int i, once = 1;

	REQUIRE(s);
	sfs_err_init(&e);
	memset(runs, 0, sizeof(runs));
	sfs_job_set_handler(s, SFS_JOB_TEST, h_count);
	REQUIRE_ST(sfs_workers_start(s, 2, &e), SFS_OK);
	for (i = 0; i < 20; i++) {
		snprintf(num, sizeof(num), "%d", i);
		REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, num, NULL, &e),
			   SFS_OK);
	}
	CHECK(wait_count(s, SFS_JOB_TEST, SFS_JOB_DONE, 20, 10000));

	/*
	 * Queued by another handle (process): no kick reaches these workers,
	 * only their idle polling finds it.
	 */
	other = reopen(NULL);
	REQUIRE(other);
	snprintf(num, sizeof(num), "%d", 20);
	REQUIRE_ST(sfs_job_enqueue(other, SFS_JOB_TEST, 0, num, NULL, &e),
		   SFS_OK);
	CHECK(wait_count(s, SFS_JOB_TEST, SFS_JOB_DONE, 21, 20000));
	sfs_store_close(other);

	sfs_workers_stop(s);
	for (i = 0; i <= 20; i++)
		if (runs[i] != 1)
			once = 0;
	CHECK(once);
	/* after stop no worker is left to run anything, kicked or not */
	CHECK(s->nworkers == 0 && s->workers == NULL);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, "21", NULL, &e), SFS_OK);
	sfs_workers_kick(s);
	CHECK(runs[21] == 0);
	CHECK(count_state(s, SFS_JOB_TEST, SFS_JOB_PENDING) == 1);
	done_store(s);
}

static void t_workers_start_stop(void)
{
	struct sfs_config cfg;
	struct sfs_store *s;
	struct sfs_err e;

	sfs_config_init(&cfg);
	cfg.workers = 3;
	s = open_store(&cfg);
	REQUIRE(s);
	sfs_err_init(&e);
	/* stop without start, twice */
	sfs_workers_stop(s);
	sfs_workers_stop(s);
	CHECK_ST(sfs_workers_start(s, -1, &e), SFS_INVALID);
	CHECK_ST(sfs_workers_start(s, 0, &e), SFS_OK);
	CHECK(s->nworkers == 3); /* 0: the configured number */
	CHECK_ST(sfs_workers_start(s, 1, &e), SFS_CONFLICT);
	CHECK(s->nworkers == 3);
	sfs_workers_kick(s);
	sfs_workers_stop(s);
	CHECK(s->nworkers == 0 && s->workers == NULL);
	sfs_workers_stop(s);
	/* 0 and no configured number: one per online CPU */
	s->cfg.workers = 0;
	CHECK_ST(sfs_workers_start(s, 0, &e), SFS_OK);
	CHECK(s->nworkers == (int)sysconf(_SC_NPROCESSORS_ONLN));
	sfs_workers_stop(s);
	/* and again; close stops them too */
	CHECK_ST(sfs_workers_start(s, 1, &e), SFS_OK);
	done_store(s);
}

/* Stop while a handler runs: it is told, and the job is left for later. */
static void t_workers_stop_slow(void)
{
	struct sfs_config cfg;
	struct sfs_store *s, *t = NULL;
	struct sfs_job j;
	struct sfs_err e;
	int64_t id = 0;
	int i;

	sfs_config_init(&cfg);
	s = open_store(&cfg);
	REQUIRE(s);
	sfs_err_init(&e);
	slow_started = slow_renewed = 0;
	sfs_job_set_handler(s, SFS_JOB_TEST, h_slow);
	REQUIRE_ST(sfs_workers_start(s, 1, &e), SFS_OK);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, "slow", &id, &e),
		   SFS_OK);
	for (i = 0;
	     i < 250 && !__atomic_load_n(&slow_renewed, __ATOMIC_SEQ_CST); i++)
		sleep_ms(20);
	CHECK(slow_started && slow_renewed > 0);
	CHECK(job_row(s, id).state == SFS_JOB_PROCESSING);
	sfs_workers_stop(s);
	/* the handler was told by its next renew, not left to its 10 s */
	CHECK(__atomic_load_n(&slow_started, __ATOMIC_SEQ_CST) == 2);
	CHECK(job_row(s, id).state == SFS_JOB_PROCESSING);
	CHECK(job_row(s, id).error[0] == '\0');

	/* a fresh handle takes it over at once: the lease was given up */
	t = reopen(&cfg);
	REQUIRE(t);
	sfs_job_set_handler(t, SFS_JOB_TEST, h_ok);
	REQUIRE_ST(sfs_job_claim(t, &j, &e), SFS_OK);
	CHECK(j.id == id);
	CHECK(j.attempts == 2);
	CHECK_ST(sfs_job_run(t, &j, &e), SFS_OK);
	CHECK(job_row(t, id).state == SFS_JOB_DONE);
	sfs_job_release(&j);
	/* renewing works again on the stopped handle (no false BUSY) */
	REQUIRE_ST(sfs_job_enqueue(t, SFS_JOB_TEST, 0, NULL, &id, &e), SFS_OK);
	REQUIRE_ST(sfs_job_claim(t, &j, &e), SFS_OK);
	CHECK_ST(sfs_job_renew(s, &j, &e), SFS_OK);
	sfs_job_release(&j);
	sfs_store_close(t);
	done_store(s);
}

/* A job's lease_until as the table has it (0: none or no row). */
static int64_t lease_of(struct sfs_store *s, int64_t id)
{
	struct db *d = NULL;
	struct db_stmt *st;
	int64_t until = 0;

	if (sfsi_db_get(s, &d, NULL))
		return 0;
	st = sfsi_db_prep(
		d, "SELECT coalesce(lease_until, 0) FROM job WHERE id = ?1",
		NULL);
	if (st) {
		sfsi_db_bind_int(st, 1, id);
		if (sfsi_db_step(st, NULL) == 1)
			until = sfsi_db_col_int(st, 0);
		sfsi_db_reset(st);
	}
	sfsi_db_put(d);
	return until;
}

/*
 * A handler that never renews keeps its claim: the renewer thread does.
 * Another handle tries to claim the job until the store's clock has gone
 * two leases past the claim (the first lease long expired); the lease's
 * length scales with th_slow, so a renewer slowed as much (valgrind on a
 * loaded machine) still renews within it (it renews every third).
 */
static void t_lease_renewer(void)
{
	struct sfs_config cfg;
	struct sfs_store *s, *t = NULL;
	struct sfs_job j;
	struct sfs_err e;
	int64_t id = 0, first, until;
	int i, stolen = 0, slow = th_slow();

	sfs_config_init(&cfg);
	cfg.job_lease_seconds = 2 * slow;
	s = open_store(&cfg);
	REQUIRE(s);
	t = reopen(&cfg);
	REQUIRE(t);
	sfs_err_init(&e);
	slow_started = 0;
	sleepy_go = 0;
	calls = 0;
	sfs_job_set_handler(s, SFS_JOB_TEST, h_sleepy);
	sfs_job_set_handler(t, SFS_JOB_TEST, h_ok);
	REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, NULL, &id, &e), SFS_OK);
	REQUIRE_ST(sfs_workers_start(s, 1, &e), SFS_OK);
	for (i = 0; i < 1500 * slow &&
		    !__atomic_load_n(&slow_started, __ATOMIC_SEQ_CST);
	     i++)
		sleep_ms(20);
	CHECK(slow_started);
	first = lease_of(s, id);
	CHECK(first > 0);
	until = first + (int64_t)cfg.job_lease_seconds * 1000;
	/* two leases from the claim: nobody may take it meanwhile */
	for (i = 0; i < 1200 * slow && sfs_now_ms() <= until; i++) {
		if (sfs_job_claim(t, &j, NULL) == SFS_OK) {
			stolen = 1;
			sfs_job_release(&j);
			break;
		}
		sleep_ms(100);
	}
	CHECK(!stolen);
	CHECK(sfs_now_ms() > until);
	/* renewed: its lease now ends after the first one's end */
	CHECK(lease_of(s, id) > first);
	__atomic_store_n(&sleepy_go, 1, __ATOMIC_SEQ_CST);
	CHECK(wait_count(s, SFS_JOB_TEST, SFS_JOB_DONE, 1, 5000 * slow));
	CHECK(job_row(s, id).attempts == 1);
	CHECK(calls == 1);
	sfs_store_close(t);
	done_store(s);
}

static void t_stats(void)
{
	struct sfs_store *s = open_store(NULL);
	struct sfs_job j;
	struct sfs_err e;
	int i;

	REQUIRE(s);
	sfs_err_init(&e);
	CHECK(count_state(s, SFS_JOB_TEST, SFS_JOB_PENDING) == 0);
	for (i = 0; i < 5; i++)
		REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_TEST, 0, NULL, NULL, &e),
			   SFS_OK);
	for (i = 0; i < 2; i++)
		REQUIRE_ST(sfs_job_enqueue(s, SFS_JOB_LISTENING, 0, NULL, NULL,
					   &e),
			   SFS_OK);
	sfs_job_set_handler(s, SFS_JOB_TEST, h_ok);
	REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
	REQUIRE_ST(sfs_job_run(s, &j, &e), SFS_OK);
	sfs_job_release(&j);
	REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
	sfs_job_release(&j);
	sfs_job_set_handler(s, SFS_JOB_TEST, h_fail);
	REQUIRE_ST(sfs_job_claim(s, &j, &e), SFS_OK);
	CHECK_ST(sfs_job_run(s, &j, &e), SFS_IO);
	sfs_job_release(&j);

	memset(stat_counts, 0, sizeof(stat_counts));
	REQUIRE_ST(sfs_job_stats(s, count_fn, NULL, &e), SFS_OK);
	CHECK(stat_counts[SFS_JOB_TEST][SFS_JOB_PENDING] == 2);
	CHECK(stat_counts[SFS_JOB_TEST][SFS_JOB_PROCESSING] == 1);
	CHECK(stat_counts[SFS_JOB_TEST][SFS_JOB_DONE] == 1);
	CHECK(stat_counts[SFS_JOB_TEST][SFS_JOB_FAILED] == 1);
	CHECK(stat_counts[SFS_JOB_TEST][SFS_JOB_CANCELLED] == 0);
	CHECK(stat_counts[SFS_JOB_LISTENING][SFS_JOB_PENDING] == 2);
	CHECK(stat_counts[SFS_JOB_IMPORT][SFS_JOB_PENDING] == 0);
	done_store(s);
}

static int64_t change_rows(struct sfs_store *s, int64_t *min_seq)
{
	struct db *d = NULL;
	struct db_stmt *st;
	int64_t n = -1;

	if (sfsi_db_get(s, &d, NULL))
		return -1;
	st = sfsi_db_prep(
		d, "SELECT count(*), coalesce(min(seq), 0) FROM change", NULL);
	if (st && sfsi_db_step(st, NULL) == 1) {
		n = sfsi_db_col_int(st, 0);
		*min_seq = sfsi_db_col_int(st, 1);
	}
	sfsi_db_reset(st);
	sfsi_db_put(d);
	return n;
}

static void t_janitor_prunes_changes(void)
{
	struct sfs_config cfg;
	struct sfs_store *s;
	struct sfs_err e;
	struct db *d = NULL;
	int64_t n = -1, min_seq = 0;
	int i;

	sfs_config_init(&cfg);
	cfg.janitor_interval_ms = 50;
	s = open_store(&cfg);
	REQUIRE(s);
	sfs_err_init(&e);
	REQUIRE_ST(sfsi_db_get(s, &d, &e), SFS_OK);
	CHECK_ST(sfsi_db_exec(d,
			      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL"
			      " SELECT x + 1 FROM c WHERE x < 100050)"
			      " INSERT INTO change(owner_id, file_id, dir, at)"
			      " SELECT 1, 0, '/', x FROM c",
			      &e),
		 SFS_OK);
	sfsi_db_put(d);
	CHECK(change_rows(s, &min_seq) == 100050);
	REQUIRE_ST(sfs_workers_start(s, 1, &e), SFS_OK);
	for (i = 0; i < 250; i++) {
		n = change_rows(s, &min_seq);
		if (n <= 100001)
			break;
		sleep_ms(20);
	}
	sfs_workers_stop(s);
	CHECK(n == 100001);
	CHECK(min_seq == 50);
	done_store(s);
}

/* Names waiting for the index (SQLite's fts_pending). */
static int64_t names_waiting(struct sfs_store *s)
{
	struct db *d = NULL;
	struct db_stmt *st;
	int64_t n = -1;

	if (sfsi_db_get(s, &d, NULL))
		return -1;
	st = sfsi_db_prep(d, "SELECT COUNT(*) FROM fts_pending", NULL);
	if (st && sfsi_db_step(st, NULL) == 1)
		n = sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	sfsi_db_put(d);
	return n;
}

/*
 * Between the janitor's intervals (an hour here) its often chore indexes
 * the names that wait, within a second or so; on PostgreSQL (pg_trgm)
 * nothing waits and there is no such chore.
 */
static void t_janitor_indexes_names_often(void)
{
	struct sfs_config cfg;
	struct sfs_store *s;
	struct sfs_err e;
	int64_t n = -1;
	int i;

	sfs_config_init(&cfg);
	sfs_err_init(&e);
	REQUIRE(th_db_config(&cfg) == 0); /* the backend under test */
	cfg.janitor_interval_ms = 3600 * 1000;
	tdir = th_tmpdir();
	REQUIRE_ST(sfs_store_init_cfg(tdir, &cfg, &e), SFS_OK);
	s = NULL;
	REQUIRE_ST(sfs_store_open(tdir, &cfg, &s, &e), SFS_OK);
	CHECK(sfsi_db_store_is_pg(s) == th_is_pg());
	if (th_is_pg()) {
		CHECK(s->often == NULL);
		done_store(s);
		return;
	}
	CHECK(s->often != NULL);
	/* waiting names of rows gone: the chore's pass takes them off */
	REQUIRE(tfx_sql(s, "INSERT INTO fts_pending(id) VALUES (-1), (-2),"
			   " (-3)") == 0);
	CHECK(names_waiting(s) == 3);
	REQUIRE_ST(sfs_workers_start(s, 1, &e), SFS_OK);
	for (i = 0; i < 1500; i++) { /* 30 s at most */
		n = names_waiting(s);
		if (n == 0)
			break;
		sleep_ms(20);
	}
	sfs_workers_stop(s);
	CHECK(n == 0);
	done_store(s);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(t_names);
	RUN(t_enqueue_claim_done);
	RUN(t_handler_failure);
	RUN(t_claim_nothing);
	RUN(t_two_handles_concurrent);
	RUN(t_lease_expiry);
	RUN(t_gives_up);
	RUN(t_cancel);
	RUN(t_cancel_running);
	RUN(t_dead_process);
	RUN(t_workers_run_jobs);
	RUN(t_workers_start_stop);
	RUN(t_workers_stop_slow);
	RUN(t_lease_renewer);
	RUN(t_stats);
	RUN(t_janitor_prunes_changes);
	RUN(t_janitor_indexes_names_often);
	return th_report();
}
