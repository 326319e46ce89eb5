/*
 * PostgreSQL behind the core (libpq): connections, errors, and the
 * SQLite-dialect statements of the core rewritten once per connection
 * (db_pg_sql.c) and prepared by name, with their results. Transactions
 * and the notices they send are in db_pg_txn.c, the schema with its
 * versions in db_pg_schema.c; db_pg_conn_i.h is what they share.
 *
 * Writers are serialised as SQLite serialises them (BEGIN IMMEDIATE): a
 * write transaction takes a transaction-scoped advisory lock of the
 * store first, and a write outside a transaction runs in a short one
 * that takes it too. So every read-check-write of the core keeps the
 * meaning it has on SQLite, across processes and machines. Reading
 * transactions see one snapshot (REPEATABLE READ) and take no lock.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db_i.h"
#include "db_pg_conn_i.h"
#include "speechfs/log.h"
#include "util_i.h"

/* type OIDs (pg_type.h is the server's header) */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_FLOAT8 701

/* ---- errors ---------------------------------------------------------- */

enum sfs_status sfsi_pg_res_status(struct pgconn *c, const PGresult *r,
				   struct sfs_err *e, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->c);

	if (!state)
		state = "";
	if (!strncmp(state, "23", 2)) {
		sfs_debug("db", "%s: %s", what, msg);
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"conflicting change");
	}
	if (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
	    !strcmp(state, "55P03") || !strcmp(state, "57014")) {
		sfs_warn("db", "%s: database busy: %s", what, msg);
		return sfs_errf(e, SFS_BUSY, SFS_R_NONE,
				"the store is busy, try again");
	}
	if (!strcmp(state, "53100")) {
		sfs_error("db", "%s: disk full", what);
		return sfs_errf(e, SFS_NO_SPACE, SFS_R_NONE,
				"no space left on the store's disk");
	}
	/* text that is not UTF-8 (no stored name or tag can be) */
	if (!strcmp(state, "22021")) {
		sfs_debug("db", "%s: %s", what, msg);
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"text is not valid UTF-8");
	}
	if (!strcmp(state, "53200"))
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	sfs_error("db", "%s: %s%s", what, state, msg);
	return sfs_errf(e, SFS_IO, SFS_R_NONE, "internal database error");
}

/* ---- cancelling from another thread ----------------------------------- */

/*
 * Every connection of the process, for sfsi_pg_cancel: each one's
 * PGcancel is made (PQgetCancel reads the session) by the thread using
 * it, at connect and reconnect, in a key shared by reference with the
 * threads that send it; the keys and the list are under this lock.
 *
 * A cancel is sent by a thread of its own that nobody joins, never under
 * the lock: libpq 15's PQcancel connects to the postmaster, sends the key
 * and then waits for the postmaster to close the connection, with no
 * timeout, so a server that runs no more (stopped, a dead link whose
 * connect still succeeds) holds it for as long as it does (review s14
 * finding 3: it held the lock, and every thread opening or closing a
 * session with it). A key whose send is still under way is not sent
 * again: one thread a session at most waits so.
 */
struct cancel_key {
	PGcancel *k;
	int refs;    /* the session's, a sending thread's */
	int sending; /* a thread is sending it */
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pgconn *reg_head;

/* Under reg_mu. */
static void key_put(struct cancel_key *key)
{
	if (!key || --key->refs > 0)
		return;
	PQfreeCancel(key->k);
	free(key);
}

static void reg_cancel_key(struct pgconn *c)
{
	struct cancel_key *fresh = NULL;
	PGcancel *k =
		PQstatus(c->c) == CONNECTION_OK ? PQgetCancel(c->c) : NULL;

	if (k) {
		fresh = calloc(1, sizeof(*fresh));
		if (fresh) {
			fresh->k = k;
			fresh->refs = 1;
		} else {
			PQfreeCancel(k); /* this session cannot be cancelled */
		}
	}
	pthread_mutex_lock(&reg_mu);
	key_put(c->cancel);
	c->cancel = fresh;
	pthread_mutex_unlock(&reg_mu);
}

static void reg_add(struct pgconn *c)
{
	reg_cancel_key(c);
	pthread_mutex_lock(&reg_mu);
	c->reg_prev = NULL;
	c->reg_next = reg_head;
	if (reg_head)
		reg_head->reg_prev = c;
	reg_head = c;
	pthread_mutex_unlock(&reg_mu);
}

static void reg_remove(struct pgconn *c)
{
	pthread_mutex_lock(&reg_mu);
	if (c->reg_prev)
		c->reg_prev->reg_next = c->reg_next;
	else if (reg_head == c)
		reg_head = c->reg_next;
	if (c->reg_next)
		c->reg_next->reg_prev = c->reg_prev;
	c->reg_prev = c->reg_next = NULL;
	key_put(c->cancel);
	c->cancel = NULL;
	pthread_mutex_unlock(&reg_mu);
}

static void *send_cancel(void *arg)
{
	struct cancel_key *key = arg;
	char msg[256];

	/* a session running nothing ignores it */
	if (!PQcancel(key->k, msg, sizeof(msg)))
		sfs_warn("db", "cannot cancel a statement: %s", msg);
	pthread_mutex_lock(&reg_mu);
	key->sending = 0;
	key_put(key);
	pthread_mutex_unlock(&reg_mu);
	return NULL;
}

int sfsi_pg_cancel(const int64_t *domain)
{
	pthread_attr_t attr;
	struct pgconn *c;
	pthread_t th;
	int n = 0, rc;

	if (pthread_attr_init(&attr))
		return 0;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&reg_mu);
	for (c = reg_head; c; c = c->reg_next) {
		struct cancel_key *key = c->cancel;

		if (__atomic_load_n(&c->domain, __ATOMIC_ACQUIRE) != domain ||
		    !key || !__atomic_load_n(&c->out, __ATOMIC_ACQUIRE))
			continue;
		n++;
		if (key->sending)
			continue; /* the last one is still under way */
		key->sending = 1;
		key->refs++;
		rc = pthread_create(&th, &attr, send_cancel, key);
		if (rc) {
			sfs_warn("db", "cannot cancel a statement: %s",
				 strerror(rc));
			key->sending = 0;
			key->refs--; /* the session's is left */
		}
	}
	pthread_mutex_unlock(&reg_mu);
	pthread_attr_destroy(&attr);
	return n;
}

/* The session made again (its prepared statements with it). */
static void reset_conn(struct pgconn *c)
{
	PQreset(c->c);
	reg_cancel_key(c);
	/* a new session: its search_path and the store's origin again */
	if (PQstatus(c->c) == CONNECTION_OK)
		PQclear(PQexec(c->c, c->setup));
	c->gen++;
	c->txn = 0;
	c->begin_pending = 0;
	c->unsettled = 0;
	c->notify_jobs = 0;
	c->notify_auth = 0;
}

/* A lost connection is made again. */
void sfsi_pg_check_conn(struct pgconn *c)
{
	if (PQstatus(c->c) == CONNECTION_OK)
		return;
	sfs_warn("db", "connection lost, reconnecting");
	reset_conn(c);
}

/* Read the answer to what was sent without waiting (a ROLLBACK). */
void sfsi_pg_settle(struct pgconn *c)
{
	PGresult *r;

	if (!c->unsettled)
		return;
	c->unsettled = 0;
	while ((r = PQgetResult(c->c)))
		PQclear(r);
}

static void notice(void *arg, const char *msg)
{
	(void)arg;
	sfs_debug("db", "%s", msg);
}
/* ---- running SQL --------------------------------------------------- */

/* FNV-1a: an advisory lock's key from a name. */
int64_t sfsi_pg_lock_key(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;
	const char *p;

	for (p = a; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	for (p = b; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (int64_t)h;
}

/* Run SQL without parameters; the result when it is `want`. */
PGresult *sfsi_pg_run(struct pgconn *c, const char *sql, ExecStatusType want,
		      struct sfs_err *e, const char *what)
{
	PGresult *r;

	sfsi_pg_out(c, 1);
	r = PQexec(c->c, sql);
	sfsi_pg_out(c, 0);
	if (PQresultStatus(r) == want)
		return r;
	sfsi_pg_res_status(c, r, e, what);
	PQclear(r);
	sfsi_pg_check_conn(c);
	return NULL;
}

int sfsi_pg_run_ok(struct pgconn *c, const char *sql, struct sfs_err *e,
		   const char *what)
{
	PGresult *r = sfsi_pg_run(c, sql, PGRES_COMMAND_OK, e, what);

	PQclear(r);
	return r ? 0 : -1;
}

/* ---- connections ----------------------------------------------------- */

enum sfs_status sfsi_pg_open(const char *url, const char *schema,
			     int64_t origin, int do_migrate,
			     struct pgconn **out, struct sfs_err *e)
{
	struct pgconn *c = calloc(1, sizeof(*c));
	enum sfs_status ret = SFS_OK;

	*out = NULL;
	if (!c)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (!schema[0])
		schema = "public";
	c->gen = 1;
	c->origin = origin;
	c->c = PQconnectdb(url);
	if (!c->c || PQstatus(c->c) != CONNECTION_OK) {
		sfs_error("db", "cannot connect to PostgreSQL: %s",
			  c->c ? PQerrorMessage(c->c) : "out of memory");
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "cannot connect to the store's database");
		goto out;
	}
	PQsetNoticeProcessor(c->c, notice, NULL);
	reg_add(c);
	snprintf(c->setup, sizeof(c->setup),
		 "SET search_path = \"%s\", public;"
		 " SET speechfs.origin = '%lld';"
		 " SET client_min_messages = warning;"
		 /* JIT compiling costs more than the short queries of a
		  * store spend (105 ms for a page of 20 once its plan cost
		  * crossed jit_above_cost) */
		 " SET jit = off",
		 schema, (long long)origin);
	if (sfsi_pg_run_ok(c, c->setup, e, "connect")) {
		ret = e ? e->status : SFS_IO;
		goto out;
	}
	snprintf(c->begin_write, sizeof(c->begin_write),
		 "BEGIN; SELECT pg_advisory_xact_lock(%lld)",
		 (long long)sfsi_pg_lock_key("speechfs:write:", schema));
	snprintf(c->begin_try, sizeof(c->begin_try),
		 "BEGIN; SELECT pg_try_advisory_xact_lock(%lld)",
		 (long long)sfsi_pg_lock_key("speechfs:write:", schema));
	snprintf(c->channel, sizeof(c->channel), "speechfs_%016llx",
		 (unsigned long long)sfsi_pg_lock_key("speechfs:notify:",
						      schema));
	if (do_migrate)
		ret = sfsi_pg_migrate(c, schema, e);
out:
	if (ret) {
		sfsi_pg_close(c);
		return ret;
	}
	*out = c;
	return SFS_OK;
}

void sfsi_pg_close(struct pgconn *c)
{
	if (!c)
		return;
	reg_remove(c);
	PQfinish(c->c);
	free(c);
}

int sfsi_pg_has_store(struct pgconn *c)
{
	PGresult *r =
		PQexec(c->c, "SELECT 1 FROM setting WHERE key = 'secret'");
	int has = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;

	PQclear(r);
	return has;
}

/* ---- statements ------------------------------------------------------ */
struct pgstmt *sfsi_pg_prep(struct pgconn *c, const char *sql,
			    struct sfs_err *e)
{
	struct pgstmt *st = calloc(1, sizeof(*st));
	int np = 0;

	if (!st)
		goto nomem;
	st->c = c;
	st->text = sfsi_pg_rewrite(sql, &np);
	if (!st->text)
		goto nomem;
	st->np = np;
	st->write = !sfsi_pg_first_word_is(sql, "SELECT") &&
		    !sfsi_pg_first_word_is(sql, "VALUES") &&
		    !sfsi_pg_first_word_is(sql, "WITH") &&
		    !sfsi_pg_first_word_is(sql, "EXPLAIN");
	/*
	 * A pattern's selectivity is all the plan depends on: PostgreSQL's
	 * generic plan (taken after five runs when it looks no dearer)
	 * costs every pattern alike, as a match of 0.5% of the rows, and
	 * walks the owner's files in the listing's order filtering each
	 * (1,000,000 files: 0.7-1.2 s a page, where the trigram index
	 * takes 0.1-0.4 ms). Unnamed, the statement is planned with its
	 * pattern at each run, as it then mostly was anyway.
	 */
	st->each_run = sfsi_pg_binds_pattern(st->text);
	snprintf(st->name, sizeof(st->name), "s%u", ++c->next_name);
	if (np) {
		st->val = calloc((size_t)np, sizeof(*st->val));
		st->len = calloc((size_t)np, sizeof(*st->len));
		st->fmt = calloc((size_t)np, sizeof(*st->fmt));
		st->type = calloc((size_t)np, sizeof(*st->type));
		if (!st->val || !st->len || !st->fmt || !st->type)
			goto nomem;
	}
	return st;
nomem:
	sfsi_pg_stmt_free(st);
	sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	return NULL;
}

static void drop_decoded(struct pgstmt *st)
{
	int i;

	for (i = 0; i < st->ndec; i++) {
		free(st->dec[i]);
		st->dec[i] = NULL;
	}
}

void sfsi_pg_reset(struct pgstmt *st)
{
	drop_decoded(st);
	PQclear(st->res);
	st->res = NULL;
	st->row = st->nrows = 0;
}

void sfsi_pg_clear(struct pgstmt *st)
{
	int i;

	for (i = 0; i < st->np; i++) {
		free(st->val[i]);
		st->val[i] = NULL;
		st->len[i] = st->fmt[i] = 0;
	}
}

void sfsi_pg_stmt_free(struct pgstmt *st)
{
	if (!st)
		return;
	sfsi_pg_reset(st);
	if (st->val)
		sfsi_pg_clear(st);
	if (st->gen && st->c && st->gen == st->c->gen) {
		char sql[40];

		snprintf(sql, sizeof(sql), "DEALLOCATE %s", st->name);
		PQclear(PQexec(st->c->c, sql));
	}
	free(st->val);
	free(st->len);
	free(st->fmt);
	free(st->type);
	free(st->dec);
	free(st->declen);
	free(st->text);
	free(st);
}

const char *sfsi_pg_sql(struct pgstmt *st)
{
	return st->text;
}

/* Set parameter i (1-based) to a copy of v; 0 when it is out of range. */
static char *slot(struct pgstmt *st, int i, unsigned type, int fmt, size_t n)
{
	if (i < 1 || i > st->np)
		return NULL;
	free(st->val[i - 1]);
	st->val[i - 1] = malloc(n + 1);
	st->len[i - 1] = (int)n;
	st->fmt[i - 1] = fmt;
	if (!st->gen || st->gen != st->c->gen)
		st->type[i - 1] = type;
	return st->val[i - 1];
}

void sfsi_pg_bind_int(struct pgstmt *st, int i, int64_t v)
{
	char *p = slot(st, i, OID_INT8, 0, 24);

	if (p)
		snprintf(p, 25, "%lld", (long long)v);
}

void sfsi_pg_bind_double(struct pgstmt *st, int i, double v)
{
	char *p = slot(st, i, OID_FLOAT8, 0, 32);

	if (p)
		snprintf(p, 33, "%.17g", v);
}

void sfsi_pg_bind_textn(struct pgstmt *st, int i, const char *v, size_t n)
{
	char *p = slot(st, i, OID_TEXT, 0, n);

	if (p) {
		memcpy(p, v, n);
		p[n] = '\0';
	}
}

void sfsi_pg_bind_blob(struct pgstmt *st, int i, const void *v, size_t n)
{
	char *p = slot(st, i, OID_BYTEA, 1, n);

	if (p && n)
		memcpy(p, v, n);
}

void sfsi_pg_bind_null(struct pgstmt *st, int i)
{
	if (i < 1 || i > st->np)
		return;
	free(st->val[i - 1]);
	st->val[i - 1] = NULL;
	st->len[i - 1] = st->fmt[i - 1] = 0;
	if (!st->gen || st->gen != st->c->gen)
		st->type[i - 1] = 0;
}

#define BEGIN_READ "BEGIN ISOLATION LEVEL REPEATABLE READ"

/* Send a pending BEGIN now, alone; -1 when it failed. */
static int flush_begin(struct pgconn *c, struct sfs_err *e)
{
	PGresult *r;

	if (!c->begin_pending)
		return 0;
	c->begin_pending = 0;
	r = sfsi_pg_run(c, BEGIN_READ, PGRES_COMMAND_OK, e, "begin");
	if (!r) {
		c->txn = 0;
		return -1;
	}
	PQclear(r);
	return 0;
}

/* Run the statement: by its name, or by its text (each_run). */
static PGresult *run_stmt(struct pgstmt *st)
{
	PGresult *r;

	sfsi_pg_out(st->c, 1);
	if (st->each_run)
		r = PQexecParams(
			st->c->c, st->text, st->np, (const Oid *)st->type,
			(const char *const *)st->val, st->len, st->fmt, 0);
	else
		r = PQexecPrepared(st->c->c, st->name, st->np,
				   (const char *const *)st->val, st->len,
				   st->fmt, 0);
	sfsi_pg_out(st->c, 0);
	return r;
}

/* The same, sent without waiting for the answer; 0 when it failed. */
static int send_stmt(struct pgstmt *st)
{
	if (st->each_run)
		return PQsendQueryParams(
			st->c->c, st->text, st->np, (const Oid *)st->type,
			(const char *const *)st->val, st->len, st->fmt, 0);
	return PQsendQueryPrepared(st->c->c, st->name, st->np,
				   (const char *const *)st->val, st->len,
				   st->fmt, 0);
}

/*
 * The pending BEGIN and a prepared statement in one round trip (libpq's
 * pipeline mode); the statement's result, or NULL with e set when the
 * BEGIN failed or the connection broke.
 */
static PGresult *begin_and_run(struct pgstmt *st, struct sfs_err *e)
{
	struct pgconn *c = st->c;
	PGresult *r, *b = NULL, *out = NULL;
	int ends = 0, sent;

	c->begin_pending = 0;
	sfsi_pg_settle(c);
	if (!PQenterPipelineMode(c->c)) {
		c->begin_pending = 1;
		if (flush_begin(c, e))
			return NULL;
		return run_stmt(st);
	}
	sfsi_pg_out(c, 1);
	sent = PQsendQueryParams(c->c, BEGIN_READ, 0, NULL, NULL, NULL, NULL,
				 0) &&
	       send_stmt(st) && PQpipelineSync(c->c);
	/* each query's results end with a NULL; then the sync's */
	while (sent && ends < 2) {
		r = PQgetResult(c->c);
		if (!r) {
			ends++;
		} else if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		} else if (ends == 0 && !b) {
			b = r;
		} else if (ends == 1 && !out) {
			out = r;
		} else {
			PQclear(r);
		}
	}
	if (sent && ends == 2)
		PQclear(PQgetResult(c->c)); /* the sync */
	sfsi_pg_out(c, 0);
	if (!PQexitPipelineMode(c->c)) {
		/* the protocol's state is not known: a new session */
		sfs_warn("db", "pipeline: %s", PQerrorMessage(c->c));
		PQclear(b);
		PQclear(out);
		reset_conn(c);
		sfs_errf(e, SFS_IO, SFS_R_NONE, "internal database error");
		return NULL;
	}
	if (!b || PQresultStatus(b) != PGRES_COMMAND_OK) {
		sfsi_pg_res_status(c, b, e, "begin");
		PQclear(b);
		PQclear(out);
		c->txn = 0;
		sfsi_pg_check_conn(c);
		return NULL;
	}
	PQclear(b);
	return out;
}

/* Run the statement; its rows wait in st->res. */
static int execute_once(struct pgstmt *st, struct sfs_err *e)
{
	struct pgconn *c = st->c;
	PGresult *r;
	int own_txn = 0, ok;
	const char *n;

	if (!st->each_run && st->gen != c->gen && flush_begin(c, e))
		return -1;
	if (!st->each_run && st->gen != c->gen) {
		/* a prepare waits too: it locks the tables it names */
		sfsi_pg_out(c, 1);
		r = PQprepare(c->c, st->name, st->text, st->np,
			      (const Oid *)st->type);
		sfsi_pg_out(c, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			sfsi_pg_res_status(c, r, e, st->text);
			PQclear(r);
			sfsi_pg_check_conn(c);
			return -1;
		}
		PQclear(r);
		st->gen = c->gen;
	}
	if (st->write && !c->txn) {
		if (sfsi_pg_begin(c, PG_BEGIN_WRITE, e))
			return -1;
		own_txn = 1;
	}
	if (c->begin_pending) {
		r = begin_and_run(st, e);
		if (!r)
			return -1;
	} else {
		r = run_stmt(st);
	}
	ok = PQresultStatus(r) == PGRES_TUPLES_OK ||
	     PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok) {
		sfsi_pg_res_status(c, r, e, st->text);
		PQclear(r);
		if (own_txn)
			sfsi_pg_rollback(c);
		sfsi_pg_check_conn(c);
		return -1;
	}
	st->res = r;
	st->row = -1;
	st->nrows = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
	if (st->write) {
		n = PQcmdTuples(r);
		c->changes = n[0] ? (int)strtol(n, NULL, 10) : 0;
		if (c->changes)
			c->txn_wrote = 1;
		if (st->nrows > 0 && PQnfields(r) > 0 &&
		    !strcmp(PQfname(r, 0), "id") &&
		    sfsi_pg_first_word_is(st->text, "INSERT"))
			c->last_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	}
	if (PQnfields(r) > st->ndec) {
		int nf = PQnfields(r);
		unsigned char **d = realloc(st->dec, (size_t)nf * sizeof(*d));
		size_t *dl;

		if (d) {
			st->dec = d;
			dl = realloc(st->declen, (size_t)nf * sizeof(*dl));
			if (dl) {
				st->declen = dl;
				memset(d + st->ndec, 0,
				       (size_t)(nf - st->ndec) * sizeof(*d));
				st->ndec = nf;
			}
		}
	}
	if (own_txn && sfsi_pg_commit(c, e)) {
		sfsi_pg_reset(st);
		return -1;
	}
	return 0;
}

/*
 * A read that starts a transaction (its BEGIN still to send) or runs
 * outside one has done nothing yet on its session: when that session is
 * found lost (a restarted server, an idle session ended by the server,
 * the answer to a ROLLBACK sent without waiting), the read runs once
 * more on the new session instead of failing its request. A write, or a
 * read inside a transaction already begun, fails as before: what the
 * session held is gone with it.
 */
static int execute(struct pgstmt *st, struct sfs_err *e)
{
	struct pgconn *c = st->c;
	int pending = c->begin_pending,
	    fresh = !st->write && (!c->txn || c->begin_pending);
	unsigned gen = c->gen;

	if (!execute_once(st, e))
		return 0;
	if (!fresh || c->gen == gen || PQstatus(c->c) != CONNECTION_OK)
		return -1;
	sfs_warn("db", "a read's session was lost: run again on a new one");
	if (e)
		sfs_err_init(e);
	if (pending) {
		c->txn = 1;
		c->begin_pending = 1;
	}
	return execute_once(st, e);
}

int sfsi_pg_step(struct pgstmt *st, struct sfs_err *e)
{
	if (!st->res && execute(st, e))
		return -1;
	drop_decoded(st);
	if (st->row + 1 < st->nrows) {
		st->row++;
		return 1;
	}
	st->row = st->nrows;
	return 0;
}

static const char *value(struct pgstmt *st, int i)
{
	if (!st->res || st->row < 0 || st->row >= st->nrows || i < 0 ||
	    i >= PQnfields(st->res) || PQgetisnull(st->res, st->row, i))
		return NULL;
	return PQgetvalue(st->res, st->row, i);
}

int64_t sfsi_pg_col_int(struct pgstmt *st, int i)
{
	const char *v = value(st, i);

	if (!v)
		return 0;
	if (PQftype(st->res, i) == OID_BOOL)
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

double sfsi_pg_col_double(struct pgstmt *st, int i)
{
	const char *v = value(st, i);

	if (!v)
		return 0;
	if (PQftype(st->res, i) == OID_BOOL)
		return v[0] == 't';
	return strtod(v, NULL);
}

/* A bytea column's bytes (NUL-terminated); NULL when not bytea. */
static const unsigned char *decoded(struct pgstmt *st, int i, size_t *n)
{
	const char *v = value(st, i);
	unsigned char *raw;
	size_t len;

	if (!v || PQftype(st->res, i) != OID_BYTEA || i >= st->ndec)
		return NULL;
	if (!st->dec[i]) {
		raw = PQunescapeBytea((const unsigned char *)v, &len);
		if (!raw)
			return NULL;
		/* with a terminator, for a text reader */
		st->dec[i] = malloc(len + 1);
		if (st->dec[i]) {
			memcpy(st->dec[i], raw, len);
			st->dec[i][len] = '\0';
		}
		PQfreemem(raw);
		if (!st->dec[i])
			return NULL;
		st->declen[i] = len;
	}
	*n = st->declen[i];
	return st->dec[i];
}

const char *sfsi_pg_col_text(struct pgstmt *st, int i)
{
	const char *v = value(st, i);
	size_t n;

	if (!v)
		return NULL;
	if (PQftype(st->res, i) == OID_BOOL)
		return v[0] == 't' ? "1" : "0";
	if (PQftype(st->res, i) == OID_BYTEA)
		return (const char *)decoded(st, i, &n);
	return v;
}

const void *sfsi_pg_col_blob(struct pgstmt *st, int i, size_t *n)
{
	const char *v = value(st, i);

	*n = 0;
	if (!v)
		return NULL;
	if (PQftype(st->res, i) == OID_BYTEA)
		return decoded(st, i, n);
	*n = (size_t)PQgetlength(st->res, st->row, i);
	return v;
}

int sfsi_pg_col_null(struct pgstmt *st, int i)
{
	return value(st, i) == NULL;
}

int64_t sfsi_pg_last_id(struct pgconn *c)
{
	return c->last_id;
}

int sfsi_pg_changes(struct pgconn *c)
{
	return c->changes;
}

int sfsi_pg_take_wrote(struct pgconn *c)
{
	int w = c->wrote;

	c->wrote = 0;
	return w;
}

enum sfs_status sfsi_pg_exec(struct pgconn *c, const char *sql,
			     struct sfs_err *e)
{
	int np;
	char *text = sfsi_pg_rewrite(sql, &np);
	PGresult *r;
	ExecStatusType rs;
	enum sfs_status ret = SFS_OK;

	if (!text)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (flush_begin(c, e)) {
		free(text);
		return e ? e->status : SFS_IO;
	}
	sfsi_pg_out(c, 1);
	r = PQexec(c->c, text);
	sfsi_pg_out(c, 0);
	free(text);
	rs = PQresultStatus(r);

	if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
		ret = sfsi_pg_res_status(c, r, e, sql);
		sfsi_pg_check_conn(c);
	} else if (!c->txn) {
		c->wrote = 1;
	} else {
		c->txn_wrote = 1;
	}
	PQclear(r);
	return ret;
}
