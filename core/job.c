/*
 * Persistent jobs: queueing, atomic claims under a lease, running a kind's
 * handler and recording its outcome, and the per-store threads that do it
 * (workers, a lease renewer and the janitor).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "db_i.h"
#include "job_i.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "store_i.h"
#include "util_i.h"
#include "remote_i.h"

#define IDLE_WAIT_MS 500 /* notice jobs of other processes this fast */
#define MAX_WORKERS 256
#define JOB_MAX_ATTEMPTS 5 /* claims of one job before it is failed */

/* s->stopping: workers are asked to stop, then the helper threads too. */
enum { RUN = 0, STOP_WORKERS = 1, STOP_ALL = 2 };

/*
 * Jobs that worker threads of this process are running, for the lease
 * renewer. Nodes live on the workers' stacks; the list is process-wide
 * (several store handles may share it) and each node names its store.
 */
struct running {
	struct sfs_store *s;
	int64_t id;
	char token[33];
	int lost;	      /* the claim was lost: renew no more */
	struct running *orig; /* in the renewer's copies */
	struct running *next;
};

static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static struct running *running_head;

static enum sfs_status status_of(struct sfs_err *e)
{
	return e && e->status ? e->status : SFS_IO;
}

static int kind_valid(int kind)
{
	return kind == SFS_JOB_LISTENING || kind == SFS_JOB_IMPORT ||
	       kind == SFS_JOB_TEST;
}

const char *sfs_job_kind_name(enum sfs_job_kind k)
{
	switch (k) {
	case SFS_JOB_LISTENING:
		return "listening";
	case SFS_JOB_IMPORT:
		return "import";
	case SFS_JOB_TEST:
		return "test";
	default:
		return "unknown";
	}
}

const char *sfs_job_state_name(enum sfs_job_state st)
{
	static const char *const names[] = {
		[SFS_JOB_PENDING] = "PENDING",
		[SFS_JOB_PROCESSING] = "PROCESSING",
		[SFS_JOB_DONE] = "DONE",
		[SFS_JOB_FAILED] = "FAILED",
		[SFS_JOB_CANCELLED] = "CANCELLED",
	};

	if ((int)st < 0 || (size_t)st >= ARRAY_SIZE(names) || !names[st])
		return "UNKNOWN";
	return names[st];
}

void sfs_job_release(struct sfs_job *j)
{
	if (!j)
		return;
	free(j->payload);
	memset(j, 0, sizeof(*j));
}

void sfs_job_set_handler(struct sfs_store *s, enum sfs_job_kind kind,
			 sfs_job_fn fn)
{
	if ((int)kind <= 0 || kind >= SFS_JOB_KIND_MAX)
		return;
	pthread_mutex_lock(&s->work_mu);
	s->kinds[kind].run = fn;
	pthread_mutex_unlock(&s->work_mu);
}

void sfsi_job_kind_register(struct sfs_store *s, enum sfs_job_kind kind,
			    sfs_job_fn run,
			    void (*gave_up)(struct sfs_store *s,
					    const struct sfs_job *j,
					    const char *why))
{
	if ((int)kind <= 0 || kind >= SFS_JOB_KIND_MAX)
		return;
	pthread_mutex_lock(&s->work_mu);
	s->kinds[kind].run = run;
	s->kinds[kind].gave_up = gave_up;
	pthread_mutex_unlock(&s->work_mu);
}

void sfsi_janitor_add(struct sfs_store *s, void (*chore)(struct sfs_store *s))
{
	pthread_mutex_lock(&s->work_mu);
	if (s->nchores < SFSI_CHORES_MAX)
		s->chores[s->nchores++] = chore;
	else
		sfs_error("janitor", "too many chores"); /* a BUG */
	pthread_mutex_unlock(&s->work_mu);
}

void sfsi_janitor_often(struct sfs_store *s, void (*chore)(struct sfs_store *s))
{
	pthread_mutex_lock(&s->work_mu);
	s->often = chore;
	pthread_mutex_unlock(&s->work_mu);
}

/* ---- queueing and cancelling (inside a write transaction) ------------ */

enum sfs_status sfsi_job_enqueue_txn(struct db *d, int kind, int64_t ino,
				     const char *payload, int64_t *id,
				     struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;

	if (!kind_valid(kind))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"unknown job kind %d", kind);
	if (ino < 0)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "bad file %lld",
				(long long)ino);
		/* PostgreSQL has no last row id: the row says it */
#define INSERT_JOB                                                             \
	"INSERT INTO job(kind, file_id, state, payload,"                       \
	" created_at) VALUES (?1, ?2, ?3, ?4, ?5)"
	st = sfsi_db_prep(
		d, sfsi_db_sql(d, INSERT_JOB, INSERT_JOB " RETURNING id"), e);
#undef INSERT_JOB
	if (!st)
		return status_of(e);
	sfsi_db_bind_int(st, 1, kind);
	if (ino > 0)
		sfsi_db_bind_int(st, 2, ino);
	else
		sfsi_db_bind_null(st, 2);
	sfsi_db_bind_int(st, 3, SFS_JOB_PENDING);
	sfsi_db_bind_text(st, 4, payload);
	sfsi_db_bind_int(st, 5, sfs_now_ms());
	ret = sfsi_db_run(st, e);
	if (!ret && id)
		*id = sfsi_db_last_rowid(d);
	if (!ret)
		sfsi_db_notify_jobs(d); /* other processes' workers */
	return ret;
}

enum sfs_status sfsi_job_cancel_file(struct db *d, int64_t ino, int kind,
				     struct sfs_err *e)
{
	struct db_stmt *st;

	/* clearing the token makes a running worker's outcome a no-op */
	st = sfsi_db_prep(d,
			  "UPDATE job SET state = ?1, lease_token = NULL,"
			  " lease_until = NULL, finished_at = ?2,"
			  " error = 'cancelled'"
			  " WHERE file_id = ?3 AND state IN (?4, ?5)"
			  " AND (?6 = 0 OR kind = ?6)",
			  e);
	if (!st)
		return status_of(e);
	sfsi_db_bind_int(st, 1, SFS_JOB_CANCELLED);
	sfsi_db_bind_int(st, 2, sfs_now_ms());
	sfsi_db_bind_int(st, 3, ino);
	sfsi_db_bind_int(st, 4, SFS_JOB_PENDING);
	sfsi_db_bind_int(st, 5, SFS_JOB_PROCESSING);
	sfsi_db_bind_int(st, 6, kind);
	return sfsi_db_run(st, e);
}

enum sfs_status sfs_job_enqueue(struct sfs_store *s, enum sfs_job_kind kind,
				int64_t file_ino, const char *payload,
				int64_t *id_out, struct sfs_err *e)
{
	struct db *d = NULL;
	enum sfs_status ret;

	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	ret = sfsi_db_begin(d, e);
	if (ret)
		goto out;
	ret = sfsi_job_enqueue_txn(d, kind, file_ino, payload, id_out, e);
	if (ret)
		goto out;
	ret = sfsi_db_commit(d, e);
out:
	sfsi_db_put(d); /* rolls back an open transaction */
	if (!ret)
		sfs_workers_kick(s);
	return ret;
}

enum sfs_status sfsi_job_holds(struct db *d, const struct sfs_job *j,
			       struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	/*
	 * On PostgreSQL claims take no store-wide lock: lock the job's row,
	 * so that a claim after an expired lease waits for this transaction
	 * (or skips the job) instead of taking it while the result commits.
	 */
#define HOLDS                                                                  \
	"SELECT 1 FROM job WHERE id = ?1 AND lease_token = ?2 AND state = ?3"
	st = sfsi_db_prep(d, sfsi_db_sql(d, HOLDS, HOLDS " FOR UPDATE"), e);
#undef HOLDS
	if (!st)
		return status_of(e);
	sfsi_db_bind_int(st, 1, j->id);
	sfsi_db_bind_text(st, 2, j->token);
	sfsi_db_bind_int(st, 3, SFS_JOB_PROCESSING);
	rc = sfsi_db_step(st, e);
	sfsi_db_reset(st);
	if (rc < 0)
		return status_of(e);
	if (rc == 0)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE, "cancelled");
	return SFS_OK;
}

/* ---- claims ---------------------------------------------------------- */

/*
 * The oldest runnable job of one kind: PENDING, or PROCESSING with an
 * expired lease. Two index lookups on job_runnable(state, kind, id).
 */
static enum sfs_status oldest_of_kind(struct db *d, int kind, int64_t now,
				      int64_t *id, struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	*id = 0;
	st = sfsi_db_prep(d,
			  "SELECT id FROM job WHERE state = ?1 AND kind = ?2"
			  " ORDER BY id LIMIT 1",
			  e);
	if (!st)
		return status_of(e);
	sfsi_db_bind_int(st, 1, SFS_JOB_PENDING);
	sfsi_db_bind_int(st, 2, kind);
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		*id = sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	if (rc < 0)
		return status_of(e);

	st = sfsi_db_prep(d,
			  "SELECT id FROM job WHERE state = ?1 AND kind = ?2"
			  " AND lease_until < ?3 ORDER BY id LIMIT 1",
			  e);
	if (!st)
		return status_of(e);
	sfsi_db_bind_int(st, 1, SFS_JOB_PROCESSING);
	sfsi_db_bind_int(st, 2, kind);
	sfsi_db_bind_int(st, 3, now);
	rc = sfsi_db_step(st, e);
	if (rc == 1 && (!*id || sfsi_db_col_int(st, 0) < *id))
		*id = sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	return rc < 0 ? status_of(e) : SFS_OK;
}

/* The oldest runnable job of any of the kinds; 0 when there is none. */
static enum sfs_status pick(struct db *d, const int *kinds, int nkinds,
			    int64_t now, int64_t *best, struct sfs_err *e)
{
	enum sfs_status ret;
	int64_t id;
	int i;

	*best = 0;
	for (i = 0; i < nkinds; i++) {
		ret = oldest_of_kind(d, kinds[i], now, &id, e);
		if (ret)
			return ret;
		if (id && (!*best || id < *best))
			*best = id;
	}
	return SFS_OK;
}

/*
 * PostgreSQL: lock the oldest runnable job of the kinds that no other
 * claim holds (FOR UPDATE SKIP LOCKED), in a transaction begun with
 * sfsi_db_begin_rows; 0 when there is none. A job row changed by a
 * commit since the statement began is checked again by PostgreSQL
 * before it is locked, so a job claimed meanwhile is not taken twice.
 */
static enum sfs_status pick_locked(struct db *d, const int *kinds, int nkinds,
				   int64_t now, int64_t *best,
				   struct sfs_err *e)
{
	struct db_stmt *st;
	int64_t mask = 0;
	int i, rc;

	for (i = 0; i < nkinds; i++)
		mask |= (int64_t)1 << kinds[i];
	*best = 0;
	st = sfsi_db_prep(d,
			  "SELECT id FROM job WHERE (state = ?1"
			  " OR (state = ?2 AND lease_until < ?3))"
			  " AND ((?4 >> kind) & 1) <> 0"
			  " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
			  e);
	if (!st)
		return status_of(e);
	sfsi_db_bind_int(st, 1, SFS_JOB_PENDING);
	sfsi_db_bind_int(st, 2, SFS_JOB_PROCESSING);
	sfsi_db_bind_int(st, 3, now);
	sfsi_db_bind_int(st, 4, mask);
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		*best = sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	return rc < 0 ? status_of(e) : SFS_OK;
}

/* Take job `id` for this claim and read it into `out`. */
static enum sfs_status take(struct db *d, int64_t id, int64_t now,
			    int64_t lease_ms, struct sfs_job *out,
			    struct sfs_err *e)
{
	unsigned char rnd[16];
	struct db_stmt *st;
	enum sfs_status ret;
	const char *uuid;
	int rc;

	if (sfsi_random(rnd, sizeof(rnd)))
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"no randomness for a lease");
	sfsi_hex(rnd, sizeof(rnd), out->token);
	out->token[32] = '\0';

	st = sfsi_db_prep(
		d,
		"UPDATE job SET state = ?1, attempts = attempts + 1,"
		" lease_token = ?2, lease_until = ?3, started_at = ?4,"
		" error = NULL WHERE id = ?5",
		e);
	if (!st)
		return status_of(e);
	sfsi_db_bind_int(st, 1, SFS_JOB_PROCESSING);
	sfsi_db_bind_text(st, 2, out->token);
	sfsi_db_bind_int(st, 3, now + lease_ms);
	sfsi_db_bind_int(st, 4, now);
	sfsi_db_bind_int(st, 5, id);
	ret = sfsi_db_run(st, e);
	if (ret)
		return ret;

	st = sfsi_db_prep(d,
			  "SELECT j.kind, j.file_id, f.uuid, f.owner_id,"
			  " j.attempts, j.payload"
			  " FROM job j LEFT JOIN file f ON f.id = j.file_id"
			  " WHERE j.id = ?1",
			  e);
	if (!st)
		return status_of(e);
	sfsi_db_bind_int(st, 1, id);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		out->id = id;
		out->kind = (enum sfs_job_kind)sfsi_db_col_int(st, 0);
		out->file_ino = sfsi_db_col_int(st, 1);
		uuid = sfsi_db_col_text(st, 2);
		sfs_strlcpy(out->file_id, uuid ? uuid : "",
			    sizeof(out->file_id));
		out->owner = sfsi_db_col_int(st, 3);
		out->attempts = (int)sfsi_db_col_int(st, 4);
		if (!sfsi_db_col_null(st, 5)) {
			out->payload = sfsi_db_col_dup(st, 5);
			if (!out->payload)
				ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					       "out of memory");
		}
	} else {
		ret = rc < 0 ? status_of(e)
			     : sfs_errf(e, SFS_IO, SFS_R_NONE,
					"job %lld vanished", (long long)id);
	}
	sfsi_db_reset(st);
	return ret;
}

enum sfs_status sfs_job_claim(struct sfs_store *s, struct sfs_job *out,
			      struct sfs_err *e)
{
	int kinds[SFS_JOB_KIND_MAX];
	int nkinds = 0, i;
	struct db *d = NULL;
	int64_t now = 0, best = 0;
	enum sfs_status ret;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->work_mu);
	for (i = 1; i < SFS_JOB_KIND_MAX; i++)
		if (s->kinds[i].run)
			kinds[nkinds++] = i;
	pthread_mutex_unlock(&s->work_mu);
	if (!nkinds)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
				"no job handlers installed");

	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	/* idle polling must not take the write lock: look first */
	ret = pick(d, kinds, nkinds, sfs_now_ms(), &best, e);
	if (ret)
		goto out;
	if (best && sfsi_db_is_pg(d)) {
		/* claimers pass each other by: no store-wide lock */
		ret = sfsi_db_begin_rows(d, e);
		if (ret)
			goto out;
		now = sfs_now_ms();
		ret = pick_locked(d, kinds, nkinds, now, &best, e);
		if (ret)
			goto out;
	} else if (best) {
		/* BEGIN IMMEDIATE: one writer at a time, across processes */
		ret = sfsi_db_begin(d, e);
		if (ret)
			goto out;
		now = sfs_now_ms();
		ret = pick(d, kinds, nkinds, now, &best, e);
		if (ret)
			goto out;
	}
	if (!best) {
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE, "no runnable job");
		goto out;
	}
	ret = take(d, best, now, (int64_t)s->cfg.job_lease_seconds * 1000, out,
		   e);
	if (ret)
		goto out;
	ret = sfsi_db_commit(d, e);
out:
	sfsi_db_put(d);
	if (ret)
		sfs_job_release(out);
	return ret;
}

/* ---- leases and outcomes --------------------------------------------- */

static enum sfs_status renew(struct sfs_store *s, int64_t id, const char *token,
			     struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;

	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d,
			  "UPDATE job SET lease_until = ?1"
			  " WHERE id = ?2 AND lease_token = ?3"
			  " AND state = ?4",
			  e);
	if (!st) {
		ret = status_of(e);
		goto out;
	}
	sfsi_db_bind_int(
		st, 1, sfs_now_ms() + (int64_t)s->cfg.job_lease_seconds * 1000);
	sfsi_db_bind_int(st, 2, id);
	sfsi_db_bind_text(st, 3, token);
	sfsi_db_bind_int(st, 4, SFS_JOB_PROCESSING);
	ret = sfsi_db_run(st, e);
	if (!ret && sfsi_db_changes(d) == 0)
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
			       "job %lld is no longer ours (cancelled or"
			       " taken over)",
			       (long long)id);
out:
	sfsi_db_put(d);
	return ret;
}

static int stopping(struct sfs_store *s)
{
	int v;

	pthread_mutex_lock(&s->work_mu);
	v = s->stopping;
	pthread_mutex_unlock(&s->work_mu);
	return v;
}

/*
 * Besides extending the lease, this is how a long handler learns that the
 * workers are stopping: it then fails with SFS_BUSY, the handler returns,
 * and the job is left for the next claim.
 */
enum sfs_status sfs_job_renew(struct sfs_store *s, const struct sfs_job *j,
			      struct sfs_err *e)
{
	if (stopping(s))
		return sfs_errf(e, SFS_BUSY, SFS_R_NONE,
				"the job workers are stopping");
	return renew(s, j->id, j->token, e);
}

/*
 * Record the outcome if the claim still holds. A state of PROCESSING with
 * lease 0 gives the claim up: the job stays PROCESSING for the API but
 * the next claim, in any process, may take it at once.
 */
static enum sfs_status finish(struct sfs_store *s, const struct sfs_job *j,
			      enum sfs_job_state state, const char *error,
			      struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int give_up = state == SFS_JOB_PROCESSING;

	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	if (give_up)
		st = sfsi_db_prep(d,
				  "UPDATE job SET lease_until = 0"
				  " WHERE id = ?1 AND lease_token = ?2"
				  " AND state = ?3",
				  e);
	else
		st = sfsi_db_prep(d,
				  "UPDATE job SET state = ?4, error = ?5,"
				  " finished_at = ?6, lease_token = NULL,"
				  " lease_until = NULL"
				  " WHERE id = ?1 AND lease_token = ?2"
				  " AND state = ?3",
				  e);
	if (!st) {
		ret = status_of(e);
		goto out;
	}
	sfsi_db_bind_int(st, 1, j->id);
	sfsi_db_bind_text(st, 2, j->token);
	sfsi_db_bind_int(st, 3, SFS_JOB_PROCESSING);
	if (!give_up) {
		sfsi_db_bind_int(st, 4, state);
		sfsi_db_bind_text(st, 5, error);
		sfsi_db_bind_int(st, 6, sfs_now_ms());
	}
	ret = sfsi_db_run(st, e);
	if (!ret && sfsi_db_changes(d) == 0)
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
			       "job %lld was cancelled or taken over;"
			       " its outcome is ignored",
			       (long long)j->id);
out:
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_job_run(struct sfs_store *s, struct sfs_job *j,
			    struct sfs_err *e)
{
	struct sfsi_job_kind k = { 0 };
	struct sfs_err herr;
	enum sfs_status hst, ret;
	const char *why;

	sfs_err_init(&herr);
	pthread_mutex_lock(&s->work_mu);
	if ((int)j->kind > 0 && j->kind < SFS_JOB_KIND_MAX)
		k = s->kinds[j->kind];
	pthread_mutex_unlock(&s->work_mu);

	if (j->attempts > JOB_MAX_ATTEMPTS) {
		/* its process died every time: do not take a third down */
		hst = sfs_errf(&herr, SFS_IO, SFS_R_NONE,
			       "gave up after %d attempts (the process "
			       "running it stopped each time)",
			       j->attempts - 1);
		if (k.gave_up)
			k.gave_up(s, j, herr.message);
	} else if (k.run)
		hst = k.run(s, j, &herr);
	else
		hst = sfs_errf(&herr, SFS_UNSUPPORTED, SFS_R_NONE,
			       "no handler for job kind '%s'",
			       sfs_job_kind_name(j->kind));

	if (hst == SFS_OK) {
		ret = finish(s, j, SFS_JOB_DONE, NULL, e);
		if (!ret)
			sfs_debug("job", "job %lld (%s) done", (long long)j->id,
				  sfs_job_kind_name(j->kind));
		else if (ret == SFS_CONFLICT)
			sfs_info("job",
				 "job %lld (%s) finished after losing"
				 " its claim",
				 (long long)j->id, sfs_job_kind_name(j->kind));
		return ret;
	}

	why = herr.message[0] ? herr.message : sfs_status_str(hst);
	if (stopping(s)) {
		/* most likely interrupted by the stop: leave it for later */
		sfs_info("job", "job %lld (%s) interrupted: %s",
			 (long long)j->id, sfs_job_kind_name(j->kind), why);
		ret = finish(s, j, SFS_JOB_PROCESSING, NULL, NULL);
	} else {
		ret = finish(s, j, SFS_JOB_FAILED, why, e);
		if (ret == SFS_CONFLICT)
			sfs_info("job",
				 "job %lld (%s) ended after losing its"
				 " claim: %s",
				 (long long)j->id, sfs_job_kind_name(j->kind),
				 why);
		else
			sfs_warn("job", "job %lld (%s) failed: %s",
				 (long long)j->id, sfs_job_kind_name(j->kind),
				 why);
	}
	if (ret == SFS_OK || ret == SFS_CONFLICT) {
		/* the handler's failure is the news */
		if (e) {
			*e = herr;
			if (!e->message[0])
				sfs_errf(e, hst, SFS_R_NONE, "%s", why);
			e->status = hst;
		}
		ret = hst;
	}
	return ret;
}

enum sfs_status sfs_job_stats(struct sfs_store *s,
			      void (*fn)(void *arg, enum sfs_job_kind kind,
					 enum sfs_job_state st, int64_t n),
			      void *arg, struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int rc;

	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d,
			  "SELECT kind, state, count(*) FROM job"
			  " GROUP BY kind, state ORDER BY kind, state",
			  e);
	if (!st) {
		ret = status_of(e);
		goto out;
	}
	while ((rc = sfsi_db_step(st, e)) == 1)
		fn(arg, (enum sfs_job_kind)sfsi_db_col_int(st, 0),
		   (enum sfs_job_state)sfsi_db_col_int(st, 1),
		   sfsi_db_col_int(st, 2));
	if (rc < 0)
		ret = status_of(e);
	sfsi_db_reset(st);
out:
	sfsi_db_put(d);
	return ret;
}

/* ---- threads ----------------------------------------------------------- */

/*
 * Wait on work_cv (work_mu held) until `deadline` or until s->stopping
 * reaches `until`. Returns 1 when stopping.
 */
static int wait_until(struct sfs_store *s, const struct timespec *deadline,
		      int until)
{
	while (s->stopping < until)
		if (pthread_cond_timedwait(&s->work_cv, &s->work_mu,
					   deadline) == ETIMEDOUT)
			break;
	return s->stopping >= until;
}

static void run_one(struct sfs_store *s, struct sfs_job *j)
{
	struct running self = { .s = s, .id = j->id }, **pp;
	enum sfs_status st;

	sfs_strlcpy(self.token, j->token, sizeof(self.token));
	pthread_mutex_lock(&running_mu);
	self.next = running_head;
	running_head = &self;
	pthread_mutex_unlock(&running_mu);

	/* sfs_job_run records and logs the outcome itself */
	st = sfs_job_run(s, j, NULL);
	(void)st;

	pthread_mutex_lock(&running_mu);
	for (pp = &running_head; *pp; pp = &(*pp)->next)
		if (*pp == &self) {
			*pp = self.next;
			break;
		}
	pthread_mutex_unlock(&running_mu);
}

static void *worker_main(void *arg)
{
	struct sfs_store *s = arg;
	struct timespec ts;
	struct sfs_job j;
	struct sfs_err e;
	enum sfs_status st;
	int gen;

	for (;;) {
		pthread_mutex_lock(&s->work_mu);
		gen = s->kicked;
		if (s->stopping) {
			pthread_mutex_unlock(&s->work_mu);
			break;
		}
		pthread_mutex_unlock(&s->work_mu);

		sfs_err_init(&e);
		st = sfs_job_claim(s, &j, &e);
		if (st == SFS_OK) {
			run_one(s, &j);
			sfs_job_release(&j);
			continue;
		}
		if (st != SFS_NOT_FOUND)
			sfs_warn("job", "cannot claim a job: %s", e.message);

		/* idle: a kick of this process, or poll for other processes */
		sfs_deadline(&ts, IDLE_WAIT_MS);
		pthread_mutex_lock(&s->work_mu);
		while (!s->stopping && s->kicked == gen)
			if (pthread_cond_timedwait(&s->work_cv, &s->work_mu,
						   &ts) == ETIMEDOUT)
				break;
		pthread_mutex_unlock(&s->work_mu);
	}
	return NULL;
}

/* Stop renewing a claim that was lost, if its worker still runs it. */
static void mark_lost(struct running *node)
{
	struct running *r;

	pthread_mutex_lock(&running_mu);
	for (r = running_head; r; r = r->next)
		if (r == node)
			r->lost = 1;
	pthread_mutex_unlock(&running_mu);
}

/* Renew this store's running leases every third of a lease. */
static void *renewer_main(void *arg)
{
	struct sfs_store *s = arg;
	int64_t period = (int64_t)s->cfg.job_lease_seconds * 1000 / 3;
	struct running *r, *copy = NULL;
	struct timespec ts;
	struct sfs_err e;
	size_t n, cap = 0, i;

	if (period < 50)
		period = 50;
	for (;;) {
		sfs_deadline(&ts, period);
		pthread_mutex_lock(&s->work_mu);
		if (wait_until(s, &ts, STOP_ALL)) {
			pthread_mutex_unlock(&s->work_mu);
			break;
		}
		pthread_mutex_unlock(&s->work_mu);

		/* copy, so no lock is held across database calls */
		pthread_mutex_lock(&running_mu);
		n = 0;
		for (r = running_head; r; r = r->next) {
			if (r->s != s || r->lost)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				struct running *p;

				p = realloc(copy, ncap * sizeof(*copy));
				if (!p)
					break;
				copy = p;
				cap = ncap;
			}
			copy[n] = *r;
			copy[n++].orig = r;
		}
		pthread_mutex_unlock(&running_mu);

		for (i = 0; i < n; i++) {
			sfs_err_init(&e);
			if (!renew(s, copy[i].id, copy[i].token, &e))
				continue;
			sfs_info("job",
				 "cannot renew the lease of job"
				 " %lld: %s",
				 (long long)copy[i].id, e.message);
			if (e.status == SFS_CONFLICT)
				mark_lost(copy[i].orig);
		}
	}
	free(copy);
	return NULL;
}

/* Every chore at each interval; the often one between (SFSI_OFTEN_MS). */
static void *janitor_main(void *arg)
{
	struct sfs_store *s = arg;
	void (*chores[SFSI_CHORES_MAX])(struct sfs_store * s);
	void (*often)(struct sfs_store * s);
	int64_t every = s->cfg.janitor_interval_ms > 0
				? s->cfg.janitor_interval_ms
				: 60000,
		next = sfs_mono_ns() / 1000000 + every, left;
	struct timespec ts;
	int i, n;

	for (;;) {
		left = next - sfs_mono_ns() / 1000000;
		if (left > SFSI_OFTEN_MS)
			left = SFSI_OFTEN_MS;
		sfs_deadline(&ts, left > 0 ? left : 0);
		pthread_mutex_lock(&s->work_mu);
		if (wait_until(s, &ts, STOP_WORKERS)) {
			pthread_mutex_unlock(&s->work_mu);
			break;
		}
		n = s->nchores;
		memcpy(chores, s->chores, sizeof(chores));
		often = s->often;
		pthread_mutex_unlock(&s->work_mu);
		if (sfs_mono_ns() / 1000000 < next) {
			if (often)
				often(s);
			continue;
		}
		for (i = 0; i < n; i++)
			chores[i](s);
		next = sfs_mono_ns() / 1000000 + every;
	}
	return NULL;
}

static int default_workers(const struct sfs_store *s)
{
	long n = s->cfg.workers;

	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* Join what was started; the caller has set STOP_WORKERS. */
static void join_all(struct sfs_store *s, int nstarted, int renewer)
{
	int i;

	for (i = 0; i < nstarted; i++)
		pthread_join(s->workers[i], NULL);
	/* the renewer kept the leases alive until the last worker ended */
	pthread_mutex_lock(&s->work_mu);
	s->stopping = STOP_ALL;
	pthread_cond_broadcast(&s->work_cv);
	pthread_mutex_unlock(&s->work_mu);
	if (renewer)
		pthread_join(s->workers[s->nworkers], NULL);
	if (s->janitor_running)
		pthread_join(s->janitor, NULL);
	s->janitor_running = 0;
	free(s->workers);
	s->workers = NULL;
	s->nworkers = 0;
	pthread_mutex_lock(&s->work_mu);
	s->stopping = RUN; /* sfs_job_renew works again */
	pthread_mutex_unlock(&s->work_mu);
}

/*
 * s->workers holds n + 1 threads: the workers, then the lease renewer.
 * Start and stop are called by the thread that owns the handle, not
 * concurrently with each other.
 */
enum sfs_status sfs_workers_start(struct sfs_store *s, int n, struct sfs_err *e)
{
	if (s->ops)
		return SFS_OK; /* the server runs the jobs */
	int nstarted = 0, rc = 0, renewer = 0;

	if (n < 0 || n > MAX_WORKERS)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"bad number of workers %d", n);
	if (s->workers)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"the workers are already running");
	if (n == 0)
		n = default_workers(s);
	s->workers = calloc((size_t)n + 1, sizeof(*s->workers));
	if (!s->workers)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	/* PostgreSQL: jobs queued by other processes kick these workers
	 * (without it they still poll, IDLE_WAIT_MS) */
	if (sfsi_db_store_is_pg(s))
		(void)sfsi_db_listen_start(s);
	pthread_mutex_lock(&s->work_mu);
	s->stopping = RUN;
	pthread_mutex_unlock(&s->work_mu);
	s->nworkers = n;

	while (nstarted < n && !rc) {
		rc = pthread_create(&s->workers[nstarted], NULL, worker_main,
				    s);
		nstarted += !rc;
	}
	if (!rc) {
		rc = pthread_create(&s->workers[n], NULL, renewer_main, s);
		renewer = !rc;
	}
	if (!rc) {
		rc = pthread_create(&s->janitor, NULL, janitor_main, s);
		s->janitor_running = !rc;
	}
	if (rc) {
		pthread_mutex_lock(&s->work_mu);
		s->stopping = STOP_WORKERS;
		pthread_cond_broadcast(&s->work_cv);
		pthread_mutex_unlock(&s->work_mu);
		join_all(s, nstarted, renewer);
		return sfsi_errno_status(e, rc, "cannot start the job workers");
	}
	sfs_debug("job", "%d workers started", n);
	return SFS_OK;
}

void sfs_workers_stop(struct sfs_store *s)
{
	if (s->ops)
		return;
	if (!s || !s->workers)
		return;
	pthread_mutex_lock(&s->work_mu);
	s->stopping = STOP_WORKERS;
	pthread_cond_broadcast(&s->work_cv);
	pthread_mutex_unlock(&s->work_mu);
	join_all(s, s->nworkers, 1);
}

void sfsi_workers_stopping(struct sfs_store *s)
{
	pthread_mutex_lock(&s->work_mu);
	if (s->stopping == RUN) {
		s->stopping = STOP_WORKERS;
		pthread_cond_broadcast(&s->work_cv);
	}
	pthread_mutex_unlock(&s->work_mu);
}

void sfs_workers_kick(struct sfs_store *s)
{
	pthread_mutex_lock(&s->work_mu);
	s->kicked++;
	pthread_cond_broadcast(&s->work_cv);
	pthread_mutex_unlock(&s->work_mu);
}
