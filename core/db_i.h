/*
 * The database layer: a pool of connections to SQLite or, with db.url,
 * PostgreSQL; cached prepared statements (core/db.c), transactions and
 * group commit (core/db_txn.c), batched commits (core/db_batch.c), the
 * notices of other processes (core/db_listen.c), and the schema with its
 * migrations (core/schema.c; PostgreSQL's in core/db_pg_schema.c), SQLite's
 * files (core/db_vfs.c). Only those files of SQLite's (db.c, db_txn.c,
 * db_batch.c, db_vfs.c, schema.c) include sqlite3.h and only PostgreSQL's
 * (db_pg.c, db_pg_txn.c, db_pg_schema.c) libpq-fe.h; the other modules
 * use these wrappers, and result codes become enum sfs_status in db.c and
 * db_pg.c alone.
 */
#ifndef SPEECHFS_DB_I_H
#define SPEECHFS_DB_I_H

#include <stddef.h>
#include <stdint.h>
#include "speechfs/err.h"

struct sfs_store;
struct db;
struct db_stmt;

#define DB_SCHEMA_VERSION 14

/*
 * A tag row that differs from its file's owner, creationDate or deletion
 * mark (ROW names the file_tag row: "file_tag", "new"), the SET that
 * makes one good again, and the UPDATE of all such rows: the schema's
 * trigger and migration (v11) and fsck's repair.
 */
#define TAG_ROW_OFF(ROW)                                                       \
	"EXISTS (SELECT 1 FROM file f WHERE f.id = " ROW ".file_id"            \
	" AND (f.owner_id <> " ROW ".owner_id"                                 \
	" OR f.created_at <> " ROW ".created_at"                               \
	" OR f.is_deleted <> " ROW ".is_deleted))"
#define TAG_ROW_FILL                                                           \
	" owner_id = (SELECT f.owner_id FROM file f"                           \
	" WHERE f.id = file_tag.file_id),"                                     \
	" created_at = (SELECT f.created_at FROM file f"                       \
	" WHERE f.id = file_tag.file_id),"                                     \
	" is_deleted = (SELECT f.is_deleted FROM file f"                       \
	" WHERE f.id = file_tag.file_id)"
#define TAG_ROWS_MAKE_GOOD                                                     \
	"UPDATE file_tag SET" TAG_ROW_FILL " WHERE " TAG_ROW_OFF("file_tag")

/*
 * The names of the tags of file ID (an SQL expression: "new.file_id",
 * "file.id"), char(31) between them, in no particular order (readers sort
 * them), NULL for none: what a file row's copy file.tagnames (schema v12)
 * holds, kept by triggers on file_tag in the transaction that changes the
 * tags; the migration, the triggers and fsck's check and repair use it.
 */
#define TAG_NAMES_OF(ID)                                                       \
	"(SELECT group_concat(xt.name, char(31)) FROM file_tag xft"            \
	" JOIN tag xt ON xt.id = xft.tag_id WHERE xft.file_id = " ID ")"
/* The file rows whose copy differs from TAG_NAMES_OF (as bytes) */
#define TAG_NAMES_OFF(ROW)                                                     \
	"coalesce(" ROW ".tagnames, '') <> coalesce(" TAG_NAMES_OF(            \
		ROW ".id") ", '') COLLATE BINARY"

/* Take a connection of the store's pool (blocking when all are in use). */
enum sfs_status sfsi_db_get(struct sfs_store *s, struct db **out,
			    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A connection of the pool even while the store batches (-o commit=MS):
 * its reads see the last commit, not the open window's changes, which a
 * crash may still undo. Given back with sfsi_db_put.
 */
enum sfs_status sfsi_db_get_committed(struct sfs_store *s, struct db **out,
				      struct sfs_err *e) SFS_MUST_CHECK;

/* 1 if d is the batch's connection (its view holds the open window). */
int sfsi_db_batching(const struct db *d);
/* 1 if d's write transaction runs in a group of commits (db_txn.c). */
int sfsi_db_in_group(const struct db *d);
/* Give it back; an open transaction is rolled back first. */
void sfsi_db_put(struct db *d);

/*
 * A cached prepared statement for `sql`, which must be a string literal
 * (the cache is keyed by its address). Reset and with bindings cleared.
 * NULL on failure (e filled).
 */
struct db_stmt *sfsi_db_prep(struct db *d, const char *sql, struct sfs_err *e);
/*
 * For SQL built from fixed fragments: the last few texts stay prepared per
 * connection. Give it back with sfsi_db_finalize (which resets it).
 */
struct db_stmt *sfsi_db_prep_dyn(struct db *d, const char *sql,
				 struct sfs_err *e);
void sfsi_db_finalize(struct db_stmt *st);
void sfsi_db_reset(struct db_stmt *st);

/* Bind by 1-based index. text: NULL binds NULL. */
void sfsi_db_bind_int(struct db_stmt *st, int i, int64_t v);
void sfsi_db_bind_double(struct db_stmt *st, int i, double v);
void sfsi_db_bind_text(struct db_stmt *st, int i, const char *v);
void sfsi_db_bind_textn(struct db_stmt *st, int i, const char *v, size_t n);
void sfsi_db_bind_blob(struct db_stmt *st, int i, const void *v, size_t n);
void sfsi_db_bind_null(struct db_stmt *st, int i);

/* 1: a row, 0: done, -1: error (status in e). */
int sfsi_db_step(struct db_stmt *st, struct sfs_err *e);
/* Step a statement that returns no rows; reset afterwards. */
enum sfs_status sfsi_db_run(struct db_stmt *st,
			    struct sfs_err *e) SFS_MUST_CHECK;

int64_t sfsi_db_col_int(struct db_stmt *st, int i);
double sfsi_db_col_double(struct db_stmt *st, int i);
const char *sfsi_db_col_text(struct db_stmt *st, int i); /* NULL for NULL */
const void *sfsi_db_col_blob(struct db_stmt *st, int i, size_t *n);
int sfsi_db_col_null(struct db_stmt *st, int i);
/* strdup of a text column (NULL for NULL). */
char *sfsi_db_col_dup(struct db_stmt *st, int i);

int64_t sfsi_db_last_rowid(struct db *d);
int sfsi_db_changes(struct db *d);

/* BEGIN IMMEDIATE (writes) / BEGIN (a consistent read). */
enum sfs_status sfsi_db_begin(struct db *d, struct sfs_err *e) SFS_MUST_CHECK;
/*
 * A write transaction of its own, never in a group of commits: it sees
 * committed rows only, with the write lock held. For a caller that acts
 * outside the database on what it reads (unlinking bytes no row names):
 * a group's uncommitted change may yet be undone by the group's failure
 * or a crash.
 */
enum sfs_status sfsi_db_begin_alone(struct db *d,
				    struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The same for a long transaction (a sweep, a bulk load, an index's
 * chunk): a group's members wait for every member's end, so a long one
 * would hold back every commit that joined before it.
 */
enum sfs_status sfsi_db_begin_alone_nosync(struct db *d,
					   struct sfs_err *e) SFS_MUST_CHECK;
/*
 * A write transaction whose commit does not wait for the disk: durable
 * with the next sfsi_db_sync of the store (group commit).
 */
enum sfs_status sfsi_db_begin_nosync(struct db *d,
				     struct sfs_err *e) SFS_MUST_CHECK;
/* Make every commit of this store so far durable (one shared sync). */
enum sfs_status sfsi_db_sync(struct sfs_store *s,
			     struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The same for every process's commits: one sync of the WAL even when
 * this handle made none since its last (a lazy create another process
 * answered, a daemon restarted between the create and its sync).
 */
enum sfs_status sfsi_db_sync_all(struct sfs_store *s,
				 struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfsi_db_begin_read(struct db *d,
				   struct sfs_err *e) SFS_MUST_CHECK;
/* Batched commits (sfs_store_batch): set up at open; commit the open one. */
void sfsi_batch_init(struct sfs_store *s);
enum sfs_status sfsi_batch_commit(struct sfs_store *s,
				  struct sfs_err *e) SFS_MUST_CHECK;
/*
 * A write transaction serialised only by the rows it locks (SELECT ...
 * FOR UPDATE [SKIP LOCKED]) on PostgreSQL, not by the store's write lock:
 * for writes that touch nothing but rows they locked first (job claims).
 * On SQLite it is sfsi_db_begin (one writer at a time anyway).
 */
enum sfs_status sfsi_db_begin_rows(struct db *d,
				   struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfsi_db_commit(struct db *d, struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_db_rollback(struct db *d);
int sfsi_db_in_txn(struct db *d);

enum sfs_status sfsi_db_exec(struct db *d, const char *sql,
			     struct sfs_err *e) SFS_MUST_CHECK;
/* VACUUM (ANALYZE) the store's tables after a bulk load (PostgreSQL). */
enum sfs_status sfsi_db_vacuum(struct db *d, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Run fn(d, arg) after the current transaction commits (outside it, on the
 * same connection); on rollback fn is not run. free(arg) follows either way.
 */
enum sfs_status sfsi_db_on_commit(struct db *d, void (*fn)(struct db *, void *),
				  void *arg, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * One SQL text serves both backends (db_pg_sql.c rewrites SQLite's dialect
 * for PostgreSQL once per connection); where no rewrite is honest, a
 * statement has a text per dialect and this picks the connection's.
 * Both must be string literals (the statement cache keys on addresses).
 */
int sfsi_db_is_pg(struct db *d);
int sfsi_db_store_is_pg(const struct sfs_store *s);
/* Cancel the statements the store's PostgreSQL sessions run
 * (sfs_store_interrupt); the number of sessions asked. */
int sfsi_db_interrupt(struct sfs_store *s);

/*
 * SQLite: whether the FTS5 index of names (file_fts) holds exactly the
 * file rows' names once the names waiting in fts_pending are in it: 1
 * yes, 0 no (entries missing, stale or corrupt), -1 on another error (e
 * filled). FTS5's integrity-check against its content table, in a write
 * transaction that indexes the waiting names first and is rolled back:
 * nothing changes, and the store's writers wait for the check (2.3 s at
 * 100,000 files on this machine at load 17; fsck runs it with --repair).
 */
int sfsi_db_fts_sound(struct db *d, struct sfs_err *e);
static inline const char *sfsi_db_sql(struct db *d, const char *sqlite,
				      const char *pg)
{
	return sfsi_db_is_pg(d) ? pg : sqlite;
}

/*
 * PostgreSQL: a thread of the store that LISTENs for what other processes
 * and machines commit (a connection of its own, remade when lost): their
 * writes wake sfsi_db_note_wait, their queued jobs kick this process's
 * workers. Started on first need; 0 when it runs. -1 on SQLite (a
 * shared-memory futex does this there) or when it cannot start.
 */
int sfsi_db_listen_start(struct sfs_store *s);
void sfsi_db_listen_stop(struct sfs_store *s);
/*
 * Sleep until a write is heard that this store's waiters have not seen
 * yet, sfsi_db_note_wake, or timeout_ms. One watcher per process is the
 * intended caller; a notice taken by another waiter costs the caller its
 * timeout, so callers also poll.
 */
void sfsi_db_note_wait(struct sfs_store *s, int timeout_ms);
void sfsi_db_note_wake(struct sfs_store *s);
/* PostgreSQL: an eventfd written when a write is heard (the listening
 * thread started); the store closes it. -1 on SQLite or on failure. */
int sfsi_db_change_fd(struct sfs_store *s);
/* Tell other processes at this transaction's commit: jobs were queued. */
void sfsi_db_notify_jobs(struct db *d);
/*
 * ... that credentials changed (their key caches drop what they hold).
 * Called before the statement when it runs outside a transaction (it is
 * its own then). SQLite: nothing (STORE/auth.gen tells them).
 */
void sfsi_db_notify_auth(struct db *d);

/*
 * A PostgreSQL connection of no store (db_migrate.c's target): its schema
 * made or migrated to this version. Close with sfsi_db_close_pg.
 */
enum sfs_status sfsi_db_open_pg(const char *url, const char *schema,
				struct db **out,
				struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_db_close_pg(struct db *d);

/* The store a connection belongs to. */
struct sfs_store *sfsi_db_store(struct db *d);

/* Open the pool and migrate (store.c). */
enum sfs_status sfsi_db_pool_open(struct sfs_store *s, const char *path,
				  struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_db_pool_close(struct sfs_store *s);
/* Create the schema of a new store. */
enum sfs_status sfsi_db_create(const char *path,
			       struct sfs_err *e) SFS_MUST_CHECK;

#endif
