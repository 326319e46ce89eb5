/*
 * PostgreSQL's transactions (begin, commit, rollback, the origin of
 * their change rows) and the notices they send to the store's listeners
 * at commit, with the listening connection that hears them.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db_i.h"
#include "db_pg_conn_i.h"
#include "store_i.h"
#include "speechfs/log.h"
#include "util_i.h"

/* ---- transactions ---------------------------------------------------- */

/*
 * The change rows a write transaction makes carry the calling thread's
 * origin (sfsi_origin_now): set for this transaction only, so nothing of
 * one request's client is left on the pooled session for the next. The
 * session's own value is the store handle's (c->setup), so a write
 * outside these (a read transaction's) is the store's, never a client's.
 */
static int txn_origin(struct pgconn *c, struct sfs_err *e)
{
	int64_t o = sfsi_origin_now(c->origin);
	char v[24];
	const char *val[1] = { v };
	PGresult *r;
	int ok;

	if (o == c->origin)
		return 0;
	snprintf(v, sizeof(v), "%lld", (long long)o);
	r = PQexecParams(c->c, "SELECT set_config('speechfs.origin', $1, true)",
			 1, NULL, val, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		sfsi_pg_res_status(c, r, e, "origin");
	PQclear(r);
	return ok ? 0 : -1;
}

/*
 * The writers' lock (begin_write), tried only by a thread that may not
 * wait (sfs_thread_nowait: the mount's reading thread pinning a
 * listing's suffixes): another process's writer holding it is
 * SFS_WOULD_WAIT, nothing begun, and a worker begins the call again.
 */
static PGresult *begin_try(struct pgconn *c, int *held, struct sfs_err *e)
{
	PGresult *r = sfsi_pg_run(c, c->begin_try, PGRES_TUPLES_OK, e, "begin");

	if (!r || (PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't'))
		return r;
	PQclear(r);
	*held = sfsi_would_wait(e, "the database's write lock");
	return NULL;
}

enum sfs_status sfsi_pg_begin(struct pgconn *c, int mode, struct sfs_err *e)
{
	PGresult *r;
	int held = 0;

	if (mode == PG_BEGIN_READ) {
		/* sent with the first statement (execute) */
		c->begin_pending = 1;
		c->txn = 1;
		c->txn_wrote = 0;
		return SFS_OK;
	}
	if (mode == PG_BEGIN_WRITE && sfsi_nowait())
		r = begin_try(c, &held, e);
	else if (mode == PG_BEGIN_WRITE)
		r = sfsi_pg_run(c, c->begin_write, PGRES_TUPLES_OK, e, "begin");
	else
		r = sfsi_pg_run(c, "BEGIN ISOLATION LEVEL READ COMMITTED",
				PGRES_COMMAND_OK, e, "begin");
	if (!r) {
		PQclear(PQexec(c->c, "ROLLBACK"));
		return held ? SFS_WOULD_WAIT : e ? e->status : SFS_IO;
	}
	PQclear(r);
	if (mode != PG_BEGIN_READ && txn_origin(c, e)) {
		PQclear(PQexec(c->c, "ROLLBACK"));
		sfsi_pg_check_conn(c);
		return e ? e->status : SFS_IO;
	}
	c->txn = 1;
	c->txn_wrote = 0;
	return SFS_OK;
}

void sfsi_pg_notify_jobs(struct pgconn *c)
{
	c->notify_jobs = 1;
}

void sfsi_pg_notify_auth(struct pgconn *c)
{
	c->notify_auth = 1;
}

void sfsi_pg_set_domain(struct pgconn *c, const int64_t *domain)
{
	/* atomic: sfsi_pg_cancel reads it from other threads */
	__atomic_store_n(&c->domain, domain, __ATOMIC_RELEASE);
}

/* Who a notice says sent it: the generations' domain, else the handle. */
static int64_t sender(const struct pgconn *c)
{
	int64_t dom =
		c->domain ? __atomic_load_n(c->domain, __ATOMIC_SEQ_CST) : 0;

	return dom ? dom : c->origin;
}

/*
 * A transaction that changed rows tells the store's listeners (other
 * processes, other machines) at its commit, in the same round trip:
 * NOTIFY is delivered when, and only if, the transaction commits; the
 * payload is a letter and the sender (see sfsi_pg_set_domain). 'w':
 * something was written (the change feed's watchers look, answer caches
 * drop what they hold); 'j': jobs were queued (idle workers claim); 'a':
 * credentials changed (key caches drop what they hold).
 */
enum sfs_status sfsi_pg_commit(struct pgconn *c, struct sfs_err *e)
{
	char sql[200];
	PGresult *r;
	enum sfs_status ret = SFS_OK;

	size_t n = 0;

	if (c->begin_pending) {
		/* nothing ran: nothing to commit */
		c->begin_pending = 0;
		c->txn = 0;
		c->txn_wrote = 0;
		c->notify_jobs = 0;
		c->notify_auth = 0;
		return SFS_OK;
	}
	sql[0] = '\0';
	if (c->txn_wrote)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n,
				      "NOTIFY %s, 'w %lld'; ", c->channel,
				      (long long)sender(c));
	if (c->notify_jobs)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n,
				      "NOTIFY %s, 'j %lld'; ", c->channel,
				      (long long)sender(c));
	if (c->notify_auth)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n,
				      "NOTIFY %s, 'a %lld'; ", c->channel,
				      (long long)sender(c));
	snprintf(sql + n, sizeof(sql) - n, "COMMIT");
	c->notify_jobs = 0;
	c->notify_auth = 0;
	sfsi_pg_out(c, 1);
	r = PQexec(c->c, sql);
	sfsi_pg_out(c, 0);

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		ret = sfsi_pg_res_status(c, r, e, "commit");
		PQclear(PQexec(c->c, "ROLLBACK"));
	} else if (strcmp(PQcmdStatus(r), "COMMIT")) {
		/* a statement of it failed: PostgreSQL rolled it back */
		sfs_error("db", "commit: the transaction was rolled back");
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "internal database error");
	} else if (c->txn_wrote) {
		c->wrote = 1;
	}
	PQclear(r);
	c->txn = 0;
	c->txn_wrote = 0;
	sfsi_pg_check_conn(c);
	return ret;
}

/*
 * The ROLLBACK is sent and not waited for: the server ends the
 * transaction when it reads it, and its answer is read before the
 * connection's next command (sfsi_pg_settle, or libpq's PQexec family, which
 * discards what is pending). A transaction whose BEGIN was never sent
 * needs none.
 */
void sfsi_pg_rollback(struct pgconn *c)
{
	c->notify_jobs = 0;
	c->notify_auth = 0;
	if (c->begin_pending) {
		c->begin_pending = 0;
	} else if (c->txn) {
		sfsi_pg_settle(c);
		if (PQsendQuery(c->c, "ROLLBACK"))
			c->unsettled = 1;
		else
			PQclear(PQexec(c->c, "ROLLBACK"));
	}
	c->txn = 0;
	c->txn_wrote = 0;
	sfsi_pg_check_conn(c);
}

int sfsi_pg_in_txn(struct pgconn *c)
{
	return c->txn;
}

/* ---- notifications --------------------------------------------------- */

enum sfs_status sfsi_pg_listen(const char *url, const char *schema,
			       int64_t origin, struct pgconn **out,
			       struct sfs_err *e)
{
	enum sfs_status ret = sfsi_pg_open(url, schema, origin, 0, out, e);
	char sql[64];

	if (ret)
		return ret;
	snprintf(sql, sizeof(sql), "LISTEN %s", (*out)->channel);
	if (sfsi_pg_run_ok(*out, sql, e, "listen")) {
		sfsi_pg_close(*out);
		*out = NULL;
		return e ? e->status : SFS_IO;
	}
	return SFS_OK;
}

/*
 * The notices waiting on the connection, as PG_NOTE_* bits; those of the
 * listener's own sender (the processes sharing its generations) are
 * writes only: those processes moved the generations at their commits.
 */
static int notices(struct pgconn *c)
{
	PGnotify *n;
	int got = 0, own;
	char kind;

	while ((n = PQnotifies(c->c))) {
		kind = n->extra[0];
		own = kind && n->extra[1] == ' ' &&
		      strtoll(n->extra + 2, NULL, 10) == sender(c);
		if (kind == 'j')
			got |= PG_NOTE_JOBS;
		else if (kind == 'a')
			got |= own ? 0 : PG_NOTE_AUTH;
		else
			got |= own ? PG_NOTE_WRITE
				   : PG_NOTE_WRITE | PG_NOTE_OTHERS;
		PQfreemem(n);
	}
	return got;
}

int sfsi_pg_listen_wait(struct pgconn *c, int stop_fd, int timeout_ms)
{
	struct pollfd pf[2] = {
		{ .fd = PQsocket(c->c), .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};
	int rc;

	if (pf[0].fd < 0)
		return -1;
	rc = poll(pf, 2, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	if (rc == 0)
		return PG_NOTE_QUIET;
	if (pf[1].revents)
		return 0;
	if (!PQconsumeInput(c->c) || PQstatus(c->c) != CONNECTION_OK)
		return -1;
	return notices(c);
}

int sfsi_pg_listen_ping(struct pgconn *c, int stop_fd, int timeout_ms)
{
	struct pollfd pf[2] = {
		{ .fd = PQsocket(c->c), .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};
	int64_t deadline = sfs_mono_ns() / 1000000 + timeout_ms, left;
	PGresult *r;
	int got = 0;

	if (pf[0].fd < 0 || !PQsendQuery(c->c, "SELECT 1"))
		return -1;
	for (;;) {
		left = deadline - sfs_mono_ns() / 1000000;
		if (left <= 0)
			return -1; /* no answer: as good as lost */
		if (poll(pf, 2, (int)left) < 0 && errno != EINTR)
			return -1;
		if (pf[1].revents)
			return got; /* stopping */
		if (!pf[0].revents)
			continue;
		if (!PQconsumeInput(c->c) || PQstatus(c->c) != CONNECTION_OK)
			return -1;
		got |= notices(c);
		while (!PQisBusy(c->c)) {
			r = PQgetResult(c->c);
			if (!r)
				return got | notices(c);
			if (PQresultStatus(r) != PGRES_TUPLES_OK) {
				PQclear(r);
				return -1;
			}
			PQclear(r);
		}
	}
}

int sfsi_pg_backend_pid(struct pgconn *c)
{
	return PQbackendPID(c->c);
}
