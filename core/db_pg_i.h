/*
 * The PostgreSQL backend of the database layer (core/db_pg*.c), used by the
 * layer's own files alone (db.c, db_txn.c, db_listen.c): they keep the
 * pool, the statement caches and the transaction bookkeeping for both
 * backends and call down here when a connection is PostgreSQL's. Only
 * the PostgreSQL backend's own files (db_pg.c, db_pg_txn.c,
 * db_pg_schema.c, through db_pg_conn_i.h) include libpq-fe.h.
 */
#ifndef SPEECHFS_DB_PG_I_H
#define SPEECHFS_DB_PG_I_H

#include <stddef.h>
#include <stdint.h>
#include "speechfs/err.h"

struct pgconn;
struct pgstmt;

/*
 * Connect to `url` (a libpq URL or conninfo), with `schema` ("" is
 * public) first on the search path and `origin` tagging the change feed.
 * With `migrate`, create or migrate the schema first (under an advisory
 * lock: several processes may start together).
 */
enum sfs_status sfsi_pg_open(const char *url, const char *schema,
			     int64_t origin, int migrate, struct pgconn **out,
			     struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_pg_close(struct pgconn *c);
/*
 * Cancel the statement each connection of `domain` (sfsi_pg_set_domain:
 * a store's) is running, from any thread: the waiting call fails with
 * SFS_BUSY (57014). Only connections with a statement out are asked
 * (sfsi_pg_out): a cancel lands some time after it is sent, and one sent
 * to an idle session could cut its next statement instead. Returns at
 * once: each cancel is sent by a thread of its own, which a server that
 * does not answer holds instead of the caller. The number of connections
 * asked (one whose last cancel is still under way counts, and is not
 * sent again).
 */
int sfsi_pg_cancel(const int64_t *domain);

/* The SQLite-dialect text `sql` in PostgreSQL's (malloc'd; NULL: no
 * memory); *nparams is the highest parameter number. */
char *sfsi_pg_rewrite(const char *sql, int *nparams);
/*
 * Whether PostgreSQL's text `pgsql` has a LIKE whose pattern is a
 * parameter (ILIKE $n): such a statement is planned at each run, with
 * its values (sfsi_pg_prep).
 */
int sfsi_pg_binds_pattern(const char *pgsql);
/* Whether the statement's first word is w (any case). */
int sfsi_pg_first_word_is(const char *sql, const char *w);

struct pgstmt *sfsi_pg_prep(struct pgconn *c, const char *sql,
			    struct sfs_err *e);
void sfsi_pg_stmt_free(struct pgstmt *st);
void sfsi_pg_reset(struct pgstmt *st);
void sfsi_pg_clear(struct pgstmt *st);
const char *sfsi_pg_sql(struct pgstmt *st);

void sfsi_pg_bind_int(struct pgstmt *st, int i, int64_t v);
void sfsi_pg_bind_double(struct pgstmt *st, int i, double v);
void sfsi_pg_bind_textn(struct pgstmt *st, int i, const char *v, size_t n);
void sfsi_pg_bind_blob(struct pgstmt *st, int i, const void *v, size_t n);
void sfsi_pg_bind_null(struct pgstmt *st, int i);

/* 1: a row, 0: done, -1: error (e filled). *wrote: it changed rows. */
int sfsi_pg_step(struct pgstmt *st, struct sfs_err *e);

int64_t sfsi_pg_col_int(struct pgstmt *st, int i);
double sfsi_pg_col_double(struct pgstmt *st, int i);
const char *sfsi_pg_col_text(struct pgstmt *st, int i);
const void *sfsi_pg_col_blob(struct pgstmt *st, int i, size_t *n);
int sfsi_pg_col_null(struct pgstmt *st, int i);

int64_t sfsi_pg_last_id(struct pgconn *c);
int sfsi_pg_changes(struct pgconn *c);
/* Whether a write committed since the last call (and forget it). */
int sfsi_pg_take_wrote(struct pgconn *c);

/* SQL without parameters, several statements allowed. */
enum sfs_status sfsi_pg_exec(struct pgconn *c, const char *sql,
			     struct sfs_err *e) SFS_MUST_CHECK;

/* how a transaction begins */
enum { PG_BEGIN_READ, PG_BEGIN_WRITE, PG_BEGIN_ROWS };
enum sfs_status sfsi_pg_begin(struct pgconn *c, int mode,
			      struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The number a connection's notices name their sender by, read at each
 * commit (the store's STORE/auth.gen number, keycache.c: the processes
 * sharing it have moved their caches' generations already); 0 or NULL:
 * the store handle's origin.
 */
void sfsi_pg_set_domain(struct pgconn *c, const int64_t *domain);
/* Tell the store's listeners that jobs were queued, at this commit. */
void sfsi_pg_notify_jobs(struct pgconn *c);
/* ... that credentials changed (a key revoked, a user's rate), at it. */
void sfsi_pg_notify_auth(struct pgconn *c);
enum sfs_status sfsi_pg_commit(struct pgconn *c,
			       struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_pg_rollback(struct pgconn *c);
int sfsi_pg_in_txn(struct pgconn *c);

/*
 * A connection of its own that LISTENs on the store's channel for the
 * store handle of `origin`, and a wait on it (until a notice, stop_fd
 * readable, or timeout_ms): what it heard (PG_NOTE_*; PG_NOTE_QUIET alone
 * when timeout_ms passed without a byte), 0 for none, -1 when the
 * connection is lost. PG_NOTE_WRITE: a write of anyone; PG_NOTE_OTHERS:
 * a write of another handle; PG_NOTE_AUTH: credentials changed through
 * another handle; PG_NOTE_JOBS: jobs queued.
 */
enum {
	PG_NOTE_WRITE = 1,
	PG_NOTE_JOBS = 2,
	PG_NOTE_AUTH = 4,
	PG_NOTE_OTHERS = 8,
	PG_NOTE_QUIET = 16
};
enum sfs_status sfsi_pg_listen(const char *url, const char *schema,
			       int64_t origin, struct pgconn **out,
			       struct sfs_err *e) SFS_MUST_CHECK;
int sfsi_pg_listen_wait(struct pgconn *c, int stop_fd, int timeout_ms);
/*
 * A round trip on the listening connection, answered within timeout_ms
 * (a silently lost connection is found so): the notices heard meanwhile,
 * or -1 when no answer came. Returns early when stop_fd is readable.
 */
int sfsi_pg_listen_ping(struct pgconn *c, int stop_fd, int timeout_ms);
/* The server process of the connection (pg_stat_activity's pid). */
int sfsi_pg_backend_pid(struct pgconn *c);

/* Whether a store's schema holds a store already (its secret). */
int sfsi_pg_has_store(struct pgconn *c);

#endif
