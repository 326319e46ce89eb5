/*
 * What the PostgreSQL backend's files share: db_pg.c (connections,
 * errors, statements), db_pg_txn.c (transactions, notices) and
 * db_pg_schema.c (the schema and its migrations). It includes
 * libpq-fe.h: only these files include it, no other module.
 */
#ifndef SPEECHFS_DB_PG_CONN_I_H
#define SPEECHFS_DB_PG_CONN_I_H

#include <libpq-fe.h>
#include <stdint.h>
#include "db_pg_i.h"

struct cancel_key; /* db_pg.c */

struct pgconn {
	PGconn *c;
	unsigned gen; /* bumped when reconnected: statements prepare again */
	unsigned next_name;
	int txn;
	/*
	 * A read transaction's BEGIN not sent yet: it goes in one round trip
	 * with the transaction's first statement (a pipeline), and a
	 * transaction that ran nothing costs none. A REPEATABLE READ
	 * transaction takes its snapshot at its first statement all the
	 * same.
	 */
	int begin_pending;
	/* a ROLLBACK sent and not waited for: read before the next command */
	int unsettled;
	int changes;
	int wrote; /* a write committed since sfsi_pg_take_wrote */
	int txn_wrote;
	int64_t last_id;
	int64_t origin;	       /* the store handle's (speechfs.origin) */
	const int64_t *domain; /* the store's generations', or NULL */
	int notify_jobs;       /* jobs queued in this transaction */
	int notify_auth;       /* credentials changed in this transaction */
	char begin_write[128];
	char begin_try[128]; /* begin_write's, for a thread that may not wait */
	char channel[40];    /* the store's LISTEN/NOTIFY channel */
	char setup[256]; /* the session's settings, again after a reconnect */
	/*
	 * What cancels its statement from another thread (sfsi_pg_cancel),
	 * made by the thread that connects; the process's connections are
	 * listed for it. Both under db_pg.c's registry lock.
	 */
	struct cancel_key *cancel;
	struct pgconn *reg_prev, *reg_next;
	/*
	 * A statement is out and its thread waits for the answer
	 * (sfsi_pg_out): only then is the session sent a cancel. A cancel
	 * reaches the server some time after it is sent; one sent to a
	 * session between statements could land on its next one, a read
	 * that had nothing to do with what was interrupted.
	 */
	int out;
};

static inline void sfsi_pg_out(struct pgconn *c, int on)
{
	__atomic_store_n(&c->out, on, __ATOMIC_RELEASE);
}

struct pgstmt {
	struct pgconn *c;
	char *text; /* PostgreSQL's */
	char name[16];
	unsigned gen; /* connection generation it was prepared in; 0: not */
	int write;
	int each_run; /* sent with its text, planned at each run (no name) */
	int np;
	char **val;
	int *len, *fmt;
	unsigned *type;
	PGresult *res;
	int row, nrows;
	/* a bytea column of the current row, decoded */
	unsigned char **dec;
	size_t *declen;
	int ndec;
};

/* The status (and e) of a failed result r (NULL: the connection's). */
enum sfs_status sfsi_pg_res_status(struct pgconn *c, const PGresult *r,
				   struct sfs_err *e, const char *what);
/* A lost connection is made again. */
void sfsi_pg_check_conn(struct pgconn *c);
/* Read the answer to what was sent without waiting (a ROLLBACK). */
void sfsi_pg_settle(struct pgconn *c);
/* FNV-1a: an advisory lock's key from a name. */
int64_t sfsi_pg_lock_key(const char *a, const char *b);
/* Run SQL without parameters; the result when it is `want`. */
PGresult *sfsi_pg_run(struct pgconn *c, const char *sql, ExecStatusType want,
		      struct sfs_err *e, const char *what);
/* The same, 0 when the command went well, -1 (e filled) when not. */
int sfsi_pg_run_ok(struct pgconn *c, const char *sql, struct sfs_err *e,
		   const char *what);
/* Create or migrate the store's schema (db_pg_schema.c). */
enum sfs_status sfsi_pg_migrate(struct pgconn *c, const char *schema,
				struct sfs_err *e);

#endif
