/*
 * The database layer's own, shared by its files and by no other module
 * (they use db_i.h): a connection (struct db), its statements and commit
 * hooks, and the calls the files make to each other.
 *   db.c         connections, the pool, statements
 *   db_txn.c     transactions, the write turn, group commit
 *   db_batch.c   batched commits (sfs_store_batch)
 *   db_listen.c  notices from other processes (PostgreSQL)
 *   db_vfs.c     SQLite's files: the WAL's appends gathered into one write
 */
#ifndef SPEECHFS_DB_CONN_I_H
#define SPEECHFS_DB_CONN_I_H

#include <stddef.h>
#include <stdint.h>
#include "db_i.h"
#include "schema_i.h"
#include "speechfs/err.h"

struct sqlite3;
struct sqlite3_stmt;
struct pgconn;
struct pgstmt;
struct sfs_store;

struct db_stmt {
	struct sqlite3_stmt *st;
	struct pgstmt *pg; /* instead of st on PostgreSQL */
	struct db *d;
	char *text; /* a cached dynamic statement's SQL */
	int busy;   /* handed out, not yet given back */
};

#define DYN_CACHE 16 /* dynamic statements kept per connection */

struct hook {
	void (*fn)(struct db *, void *);
	void *arg;
	int level; /* the savepoint it belongs to (batched commits) */
	struct hook *next;
};

struct db {
	struct sqlite3 *h;
	struct pgconn *pg; /* instead of h on PostgreSQL (db_pg.c) */
	struct sfs_store *s;
	struct db *next;
	int spare; /* the store's pool_spare */
	int txn;
	int nosync; /* this transaction commits without waiting for the disk */
	int turn;   /* holds the store's write turn (write_turn) */
	/*
	 * a connection of the pool whose write transaction runs on the
	 * store's group connection (db_txn.c): its statements go there
	 */
	struct db *fw;
	int grp_first; /* that transaction began the group's (no savepoint) */
	/* the store's group connection (grp_db): what ended its group */
	int grp;
	enum sfs_status grp_lost; /* a statement whose failure rolled the
				     group back (SQLite did): its status */
	/* the store's batch connection (sfs_store_batch): its levels */
	int batched;
	int sp;	     /* transactions begun and not ended, nested */
	int sp_real; /* the level that is a transaction of its own, or 0 */
	int64_t synced_changes; /* sqlite3_total_changes64 when last synced */
	int64_t batch_base; /* sqlite3_total_changes64 when the batch began */
	int64_t sp_base;    /* ... when its outermost savepoint began */
	struct hook *hooks;
	/* open addressing by the SQL's address; statements stay in place */
	struct cache_ent {
		const char *sql;
		struct db_stmt *stmt;
	} * cache;
	size_t ncache, cap;
	/* dynamic SQL (query filters) recurs: keep the last few prepared */
	struct db_stmt dyn[DYN_CACHE];
	unsigned dyn_next;
};

/* The connection a call on d uses: the group's while d writes there. */
static inline struct db *db_live(struct db *d)
{
	return d->fw ? d->fw : d;
}

/* db_txn.c: a statement on d failed with st (the group's end, if so). */
void sfsi_db_grp_failed(struct db *d, enum sfs_status st);

static inline enum sfs_status rc_status(struct db *d, int rc, struct sfs_err *e,
					const char *what)
{
	enum sfs_status st =
		sfsi_db_rc_status(d ? db_live(d)->h : NULL, rc, e, what);

	if (d && db_live(d)->grp)
		sfsi_db_grp_failed(db_live(d), st);
	return st;
}

/* db.c */
/* A connection of the pool (never the batch's). */
enum sfs_status sfsi_db_pool_get(struct sfs_store *s, struct db **out,
				 struct sfs_err *e);
/* On PostgreSQL, a commit moves the data generation on here. */
void sfsi_db_pg_committed(struct db *d);
/* A new SQLite connection of the store, outside the pool. */
enum sfs_status sfsi_db_conn_new(struct sfs_store *s, struct db **out,
				 struct sfs_err *e);
void sfsi_db_conn_close(struct db *d);

/* db_vfs.c */
#define SFSI_DB_VFS "speechfs"
/*
 * The name of the VFS the store's connections open (registered at the
 * first call), or NULL: SQLite's default.
 */
const char *sfsi_db_vfs(void);

/* db_txn.c */
/* A commit made that the next sfsi_db_sync makes durable. */
void sfsi_db_sync_note_commit(struct sfs_store *s);
/* BEGIN, COMMIT, ROLLBACK, SAVEPOINT ... from the statement cache. */
enum sfs_status sfsi_db_txn_stmt(struct db *d, const char *sql,
				 struct sfs_err *e);
/* A connection's busy timeout when its store has no configuration. */
#define SFSI_DB_BUSY_MS 10000
/*
 * BEGIN IMMEDIATE on d (SQLite): waits for SQLite's write lock up to the
 * busy timeout, unless the thread may not wait (sfs_thread_nowait): then
 * SFS_WOULD_WAIT at once when another process holds it, nothing begun.
 */
enum sfs_status sfsi_db_begin_immediate(struct db *d, struct sfs_err *e);
/* Run (run 1) or drop the hooks, and free them. */
void sfsi_db_run_hook_list(struct db *d, struct hook *h, int run);
void sfsi_db_run_hooks(struct db *d, int run);

/* db_batch.c */
/*
 * The batch connection for this thread, when batching: 1 if so, 0 when
 * not batching, -1 when it would wait for a batch's opening and the
 * thread may not wait (sfs_thread_nowait).
 */
int sfsi_batch_get(struct sfs_store *s, struct db **out);
void sfsi_batch_put(struct db *d);
/* A level of the batch's connection: begin one; end the innermost. */
enum sfs_status sfsi_batch_begin(struct db *d, int write, struct sfs_err *e);
enum sfs_status sfsi_batch_end(struct db *d, int commit, struct sfs_err *e);

#endif
