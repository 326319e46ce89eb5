/*
 * SQLite behind the core: a pool of connections (WAL, foreign keys, a busy
 * timeout), per-connection caches of prepared statements, transactions.
 * The schema and its migrations are core/schema.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "auth_i.h"
#include "blob_i.h"
#include "db_i.h"
#include "db_pg_i.h"
#include "schema_i.h"
#include "speechfs/log.h"
#include "store_i.h"
#include "util_i.h"

#define STMT_CACHE_MIN 256 /* slots; grows to stay at most half full */

struct db_stmt {
	sqlite3_stmt *st;
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
	sqlite3 *h;
	struct pgconn *pg; /* instead of h on PostgreSQL (db_pg.c) */
	struct sfs_store *s;
	struct db *next;
	int txn;
	int nosync; /* this transaction commits without waiting for the disk */
	int turn;   /* holds the store's write turn (write_turn) */
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

enum sfs_status sfsi_db_rc_status(sqlite3 *h, int rc, struct sfs_err *e,
				  const char *what)
{
	int prim = rc & 0xff;

	switch (prim) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return SFS_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		sfs_warn("db", "%s: database busy", what);
		return sfs_errf(e, SFS_BUSY, SFS_R_NONE,
				"the store is busy, try again");
	case SQLITE_FULL:
		sfs_error("db", "%s: disk full", what);
		return sfs_errf(e, SFS_NO_SPACE, SFS_R_NONE,
				"no space left on the store's disk");
	case SQLITE_NOMEM:
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	case SQLITE_CONSTRAINT:
		sfs_debug("db", "%s: %s", what, h ? sqlite3_errmsg(h) : "");
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"conflicting change");
	default:
		sfs_error("db", "%s: %s (%d)", what,
			  h ? sqlite3_errmsg(h) : sqlite3_errstr(rc), rc);
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"internal database error");
	}
}

static enum sfs_status rc_status(struct db *d, int rc, struct sfs_err *e,
				 const char *what)
{
	return sfsi_db_rc_status(d ? d->h : NULL, rc, e, what);
}

static enum sfs_status configure(sqlite3 *h, const struct sfs_config *cfg,
				 struct sfs_err *e)
{
	char sql[224];
	int rc;

	sqlite3_busy_timeout(h, cfg ? cfg->busy_timeout_ms : 10000);
	/*
	 * NORMAL: a commit writes the WAL without syncing it; durable
	 * commits then sync it themselves (sfsi_db_commit, sfsi_db_put), one
	 * fdatasync shared by the commits of that moment (group commit).
	 */
	(void)cfg;
	snprintf(sql, sizeof(sql),
		 "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"
		 " PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
		 " PRAGMA mmap_size=1073741824;");
	rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sfs_error("db", "configuring connection: %s",
			  sqlite3_errmsg(h));
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"cannot open the database");
	}
	return SFS_OK;
}

/* sfs_origin(): the origin of the calling thread's changes. */
static void sql_origin(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	sqlite3_result_int64(
		ctx,
		sfsi_origin_now((int64_t)(intptr_t)sqlite3_user_data(ctx)));
}

/*
 * Changes this connection makes carry the origin of the thread making
 * them (the store handle's, or a client's for a daemon's request): a
 * trigger of the connection's own (TEMP), so the schema's triggers stay
 * plain SQL that any program can run.
 */
static enum sfs_status tag_origin(sqlite3 *h, int64_t origin, struct sfs_err *e)
{
	static const char sql[] =
		"CREATE TEMP TRIGGER IF NOT EXISTS change_origin"
		" AFTER INSERT ON main.change BEGIN"
		" UPDATE change SET origin = sfs_origin() WHERE seq = new.seq;"
		" END";

	if (sqlite3_create_function(h, "sfs_origin", 0, SQLITE_UTF8,
				    (void *)(intptr_t)origin, sql_origin, NULL,
				    NULL) != SQLITE_OK ||
	    sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK) {
		sfs_error("db", "tagging changes: %s", sqlite3_errmsg(h));
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"cannot open the database");
	}
	return SFS_OK;
}

/*
 * Before the library's first use: no memory statistics. They are kept
 * under one mutex of the whole process, taken by every allocation of
 * every connection (about 40 a GET of one file, 400 a listing): the
 * daemon's threads queued on it. Nothing here reads them.
 */
static void sqlite_setup(void)
{
	if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
		sfs_debug("db", "sqlite was initialised before the store");
}

static enum sfs_status open_conn(const char *path, int create,
				 const struct sfs_config *cfg, sqlite3 **out,
				 struct sfs_err *e)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
		    (create ? SQLITE_OPEN_CREATE : 0);
	sqlite3 *h = NULL;
	int rc;

	pthread_once(&once, sqlite_setup);
	rc = sqlite3_open_v2(path, &h, flags, NULL);
	if (rc != SQLITE_OK) {
		sfs_error("db", "cannot open '%s': %s", path,
			  h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
		sqlite3_close(h);
		return sfs_errf(e,
				rc == SQLITE_CANTOPEN ? SFS_NOT_FOUND : SFS_IO,
				SFS_R_NONE, "cannot open the store's database");
	}
	sqlite3_extended_result_codes(h, 1);
	if (configure(h, cfg, e)) {
		sqlite3_close(h);
		return e ? e->status : SFS_IO;
	}
	*out = h;
	return SFS_OK;
}

enum sfs_status sfsi_db_create(const char *path, struct sfs_err *e)
{
	sqlite3 *h = NULL;
	enum sfs_status st;

	st = open_conn(path, 1, NULL, &h, e);
	if (st)
		return st;
	st = sfsi_schema_migrate(h, e);
	sqlite3_close(h);
	return st;
}

/*
 * Called after each commit of a connection (arg), once the commit is
 * visible to new readers: the data generation moves on
 * (sfs_store_data_gen). A WAL hook replaces SQLite's automatic
 * checkpoint, so it does that too, as the default does (passive, at
 * 1,000 frames). Not on the batch connection: a batch's checkpoint took
 * 70-300 ms (two syncs and a window's pages copied) while the connection
 * was taken, and every change of the mount waited for it; the batcher
 * checkpoints on another connection once it has let the batch's go
 * (checkpoint_aside).
 */
#define WAL_AUTOCHECKPOINT 1000

static int on_wal_commit(void *arg, sqlite3 *h, const char *db, int frames)
{
	struct db *d = arg;

	sfsi_data_gen_bump(d->s);
	if (frames < WAL_AUTOCHECKPOINT)
		return SQLITE_OK;
	if (d->batched)
		__atomic_store_n(&d->s->ckpt_due, 1, __ATOMIC_RELEASE);
	else
		(void)sqlite3_wal_checkpoint_v2(
			h, db, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

enum sfs_status sfsi_db_pool_open(struct sfs_store *s, const char *path,
				  struct sfs_err *e)
{
	struct db *d;
	enum sfs_status st;

	d = calloc(1, sizeof(*d));
	if (!d)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (s->cfg.db_url[0]) {
		st = sfsi_pg_open(s->cfg.db_url, s->cfg.db_schema, s->origin, 1,
				  &d->pg, e);
		if (st) {
			free(d);
			return st;
		}
		sfsi_pg_set_domain(d->pg, &s->gen_domain);
		goto done;
	}
	st = open_conn(path, 0, &s->cfg, &d->h, e);
	if (st) {
		free(d);
		return st;
	}
	st = sfsi_schema_migrate(d->h, e);
	if (!st)
		st = tag_origin(d->h, s->origin, e);
	d->s = s;
	if (!st)
		sqlite3_wal_hook(d->h, on_wal_commit, d);
	if (st) {
		sqlite3_close(d->h);
		free(d);
		return st;
	}
done:
	d->s = s;
	s->pool_free = d;
	s->pool_n = 1;
	return SFS_OK;
}

static void conn_close(struct db *d)
{
	size_t i;

	for (i = 0; i < d->cap; i++)
		if (d->cache[i].stmt) {
			sqlite3_finalize(d->cache[i].stmt->st);
			sfsi_pg_stmt_free(d->cache[i].stmt->pg);
			free(d->cache[i].stmt);
		}
	free(d->cache);
	for (i = 0; i < DYN_CACHE; i++) {
		sqlite3_finalize(d->dyn[i].st);
		sfsi_pg_stmt_free(d->dyn[i].pg);
		free(d->dyn[i].text);
	}
	sqlite3_close(d->h);
	sfsi_pg_close(d->pg);
	free(d);
}

enum sfs_status sfsi_db_open_pg(const char *url, const char *schema,
				struct db **out, struct sfs_err *e)
{
	struct db *d = calloc(1, sizeof(*d));
	enum sfs_status st;

	*out = NULL;
	if (!d)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	st = sfsi_pg_open(url, schema, 0, 1, &d->pg, e);
	if (st) {
		free(d);
		return st;
	}
	*out = d;
	return SFS_OK;
}

void sfsi_db_close_pg(struct db *d)
{
	if (!d)
		return;
	if (d->txn)
		sfsi_db_rollback(d);
	conn_close(d);
}

void sfsi_db_pool_close(struct sfs_store *s)
{
	struct db *d, *next;

	pthread_mutex_lock(&s->pool_mu);
	for (d = s->pool_free; d; d = next) {
		next = d->next;
		conn_close(d);
	}
	s->pool_free = NULL;
	pthread_mutex_unlock(&s->pool_mu);
}

static int batch_get(struct sfs_store *s, struct db **out);
static void batch_put(struct db *d);

/* A connection of the pool (never the batch's). */
static enum sfs_status pool_get(struct sfs_store *s, struct db **out,
				struct sfs_err *e)
{
	struct db *d = NULL;
	char path[4096];
	enum sfs_status st;

	pthread_mutex_lock(&s->pool_mu);
	while (!s->pool_free && s->pool_n >= DB_POOL_MAX)
		pthread_cond_wait(&s->pool_cv, &s->pool_mu);
	if (s->pool_free) {
		d = s->pool_free;
		s->pool_free = d->next;
		pthread_mutex_unlock(&s->pool_mu);
		d->next = NULL;
		*out = d;
		return SFS_OK;
	}
	s->pool_n++;
	pthread_mutex_unlock(&s->pool_mu);

	d = calloc(1, sizeof(*d));
	snprintf(path, sizeof(path), "%s/speechfs.db", s->dir);
	if (!d) {
		st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	} else if (s->cfg.db_url[0]) {
		st = sfsi_pg_open(s->cfg.db_url, s->cfg.db_schema, s->origin, 0,
				  &d->pg, e);
		if (!st)
			sfsi_pg_set_domain(d->pg, &s->gen_domain);
	} else {
		st = open_conn(path, 0, &s->cfg, &d->h, e);
		if (!st && (st = tag_origin(d->h, s->origin, e))) {
			sqlite3_close(d->h);
			d->h = NULL;
		}
		d->s = s;
		if (!st)
			sqlite3_wal_hook(d->h, on_wal_commit, d);
	}
	if (st) {
		free(d);
		pthread_mutex_lock(&s->pool_mu);
		s->pool_n--;
		pthread_cond_signal(&s->pool_cv);
		pthread_mutex_unlock(&s->pool_mu);
		return st;
	}
	d->s = s;
	*out = d;
	return SFS_OK;
}

enum sfs_status sfsi_db_get(struct sfs_store *s, struct db **out,
			    struct sfs_err *e)
{
	if (batch_get(s, out))
		return SFS_OK;
	return pool_get(s, out, e);
}

static void sync_note_commit(struct sfs_store *s);

void sfsi_db_put(struct db *d)
{
	struct sfs_store *s;

	if (!d)
		return;
	s = d->s;
	if (d->batched) {
		batch_put(d);
		return;
	}
	if (d->txn)
		sfsi_db_rollback(d);
	/* writes made outside a transaction (autocommit) are durable too */
	if (!d->pg && sqlite3_total_changes64(d->h) != d->synced_changes) {
		sync_note_commit(s);
		if (sfsi_db_sync(s, NULL))
			sfs_error("db", "a write may not be durable");
		d->synced_changes = sqlite3_total_changes64(d->h);
	}
	pthread_mutex_lock(&s->pool_mu);
	d->next = s->pool_free;
	s->pool_free = d;
	pthread_cond_signal(&s->pool_cv);
	pthread_mutex_unlock(&s->pool_mu);
}

struct sfs_store *sfsi_db_store(struct db *d)
{
	return d->s;
}

int sfsi_db_is_pg(struct db *d)
{
	return d->pg != NULL;
}

int sfsi_db_store_is_pg(const struct sfs_store *s)
{
	return s->cfg.db_url[0] != '\0';
}

/* On PostgreSQL, a commit moves the data generation on here. */
static void pg_committed(struct db *d)
{
	if (sfsi_pg_take_wrote(d->pg) && d->s)
		sfsi_data_gen_bump(d->s);
}

/* ---- statements ------------------------------------------------------ */

static size_t slot_of(const struct cache_ent *tab, size_t cap, const char *sql)
{
	size_t k = ((uintptr_t)sql >> 3) % cap;

	while (tab[k].sql && tab[k].sql != sql)
		k = (k + 1) % cap;
	return k;
}

/* Rehash into a table twice as large (the statements do not move). */
static int cache_grow(struct db *d)
{
	size_t cap = d->cap ? d->cap * 2 : STMT_CACHE_MIN, i;
	struct cache_ent *tab = calloc(cap, sizeof(*tab));

	if (!tab)
		return -1;
	for (i = 0; i < d->cap; i++)
		if (d->cache[i].sql)
			tab[slot_of(tab, cap, d->cache[i].sql)] = d->cache[i];
	free(d->cache);
	d->cache = tab;
	d->cap = cap;
	return 0;
}

/*
 * Reset a statement. A write outside a transaction that is reset before
 * it ran to its end (one row of a RETURNING taken) commits here, where
 * SQLite calls no WAL hook: the data generation moves on all the same.
 */
static void stmt_reset(struct db_stmt *st)
{
	if (st->pg) {
		sfsi_pg_reset(st->pg);
		return;
	}
	sqlite3_reset(st->st);
	if (!sqlite3_stmt_readonly(st->st) && st->d->s &&
	    sqlite3_get_autocommit(st->d->h))
		sfsi_data_gen_bump(st->d->s);
}

struct db_stmt *sfsi_db_prep(struct db *d, const char *sql, struct sfs_err *e)
{
	struct db_stmt *st;
	size_t k;
	int rc;

	if (d->cap) {
		k = slot_of(d->cache, d->cap, sql);
		if (d->cache[k].sql) {
			st = d->cache[k].stmt;
			stmt_reset(st);
			if (st->pg)
				sfsi_pg_clear(st->pg);
			else
				sqlite3_clear_bindings(st->st);
			return st;
		}
	}
	if ((d->ncache + 1) * 2 > d->cap && cache_grow(d) < 0) {
		sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		return NULL;
	}
	if (d->pg) {
		st->pg = sfsi_pg_prep(d->pg, sql, e);
		if (!st->pg) {
			free(st);
			return NULL;
		}
		goto prepared;
	}
	rc = sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT,
				&st->st, NULL);
	if (rc != SQLITE_OK) {
		rc_status(d, rc, e, "prepare");
		sqlite3_finalize(st->st);
		free(st);
		return NULL;
	}
prepared:
	st->d = d;
	k = slot_of(d->cache, d->cap, sql);
	d->cache[k].sql = sql;
	d->cache[k].stmt = st;
	d->ncache++;
	return st;
}

struct db_stmt *sfsi_db_prep_dyn(struct db *d, const char *sql,
				 struct sfs_err *e)
{
	struct db_stmt *st;
	char *text;
	size_t i;
	int rc;

	for (i = 0; i < DYN_CACHE; i++) {
		st = &d->dyn[i];
		if (!st->busy && st->text && !strcmp(st->text, sql)) {
			stmt_reset(st);
			if (st->pg)
				sfsi_pg_clear(st->pg);
			else
				sqlite3_clear_bindings(st->st);
			st->busy = 1;
			return st;
		}
	}
	text = strdup(sql);
	if (!text) {
		sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		return NULL;
	}
	for (i = 0; i < DYN_CACHE; i++) {
		st = &d->dyn[d->dyn_next++ % DYN_CACHE];
		if (!st->busy)
			break;
	}
	if (st->busy) {
		free(text);
		sfs_error("db", "too many dynamic statements in use");
		sfs_errf(e, SFS_IO, SFS_R_NONE, "internal database error");
		return NULL;
	}
	sqlite3_finalize(st->st);
	sfsi_pg_stmt_free(st->pg);
	free(st->text);
	st->st = NULL;
	st->pg = NULL;
	st->text = NULL;
	if (d->pg) {
		st->pg = sfsi_pg_prep(d->pg, sql, e);
		rc = st->pg ? SQLITE_OK : SQLITE_NOMEM;
		if (!st->pg) {
			free(text);
			return NULL;
		}
	} else {
		rc = sqlite3_prepare_v3(d->h, sql, -1,
					SQLITE_PREPARE_PERSISTENT, &st->st,
					NULL);
	}
	if (rc != SQLITE_OK) {
		rc_status(d, rc, e, "prepare");
		free(text);
		return NULL;
	}
	st->d = d;
	st->text = text;
	st->busy = 1;
	return st;
}

/* Done with a dynamic statement: it stays cached, reset. */
void sfsi_db_finalize(struct db_stmt *st)
{
	if (st) {
		stmt_reset(st);
		st->busy = 0;
	}
}

void sfsi_db_reset(struct db_stmt *st)
{
	if (st)
		stmt_reset(st);
}

void sfsi_db_bind_int(struct db_stmt *st, int i, int64_t v)
{
	if (st->pg) {
		sfsi_pg_bind_int(st->pg, i, v);
		return;
	}
	sqlite3_bind_int64(st->st, i, v);
}

void sfsi_db_bind_double(struct db_stmt *st, int i, double v)
{
	if (st->pg) {
		sfsi_pg_bind_double(st->pg, i, v);
		return;
	}
	sqlite3_bind_double(st->st, i, v);
}

void sfsi_db_bind_text(struct db_stmt *st, int i, const char *v)
{
	if (st->pg) {
		if (v)
			sfsi_pg_bind_textn(st->pg, i, v, strlen(v));
		else
			sfsi_pg_bind_null(st->pg, i);
		return;
	}
	if (v)
		sqlite3_bind_text(st->st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st->st, i);
}

void sfsi_db_bind_textn(struct db_stmt *st, int i, const char *v, size_t n)
{
	if (st->pg) {
		sfsi_pg_bind_textn(st->pg, i, v, n);
		return;
	}
	sqlite3_bind_text(st->st, i, v, (int)n, SQLITE_TRANSIENT);
}

void sfsi_db_bind_blob(struct db_stmt *st, int i, const void *v, size_t n)
{
	if (st->pg) {
		sfsi_pg_bind_blob(st->pg, i, v, n);
		return;
	}
	sqlite3_bind_blob(st->st, i, v, (int)n, SQLITE_TRANSIENT);
}

void sfsi_db_bind_null(struct db_stmt *st, int i)
{
	if (st->pg) {
		sfsi_pg_bind_null(st->pg, i);
		return;
	}
	sqlite3_bind_null(st->st, i);
}

/* A PostgreSQL statement's step (it may commit a write of its own). */
static int pg_step(struct db_stmt *st, struct sfs_err *e)
{
	int rc = sfsi_pg_step(st->pg, e);

	pg_committed(st->d);
	return rc;
}

int sfsi_db_step(struct db_stmt *st, struct sfs_err *e)
{
	int rc;

	if (st->pg) {
		rc = pg_step(st, e);
		if (rc < 0)
			sfsi_pg_reset(st->pg);
		return rc;
	}
	rc = sqlite3_step(st->st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	rc_status(st->d, rc, e, sqlite3_sql(st->st));
	stmt_reset(st);
	return -1;
}

enum sfs_status sfsi_db_run(struct db_stmt *st, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;
	int rc;

	if (st->pg) {
		if (pg_step(st, e) < 0)
			ret = e && e->status ? e->status : SFS_IO;
		sfsi_pg_reset(st->pg);
		return ret;
	}
	rc = sqlite3_step(st->st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = rc_status(st->d, rc, e, sqlite3_sql(st->st));
	stmt_reset(st);
	return ret;
}

int64_t sfsi_db_col_int(struct db_stmt *st, int i)
{
	if (st->pg)
		return sfsi_pg_col_int(st->pg, i);
	return sqlite3_column_int64(st->st, i);
}

double sfsi_db_col_double(struct db_stmt *st, int i)
{
	if (st->pg)
		return sfsi_pg_col_double(st->pg, i);
	return sqlite3_column_double(st->st, i);
}

const char *sfsi_db_col_text(struct db_stmt *st, int i)
{
	if (st->pg)
		return sfsi_pg_col_text(st->pg, i);
	return (const char *)sqlite3_column_text(st->st, i);
}

const void *sfsi_db_col_blob(struct db_stmt *st, int i, size_t *n)
{
	const void *p;

	if (st->pg)
		return sfsi_pg_col_blob(st->pg, i, n);
	p = sqlite3_column_blob(st->st, i);
	*n = (size_t)sqlite3_column_bytes(st->st, i);
	return p;
}

int sfsi_db_col_null(struct db_stmt *st, int i)
{
	if (st->pg)
		return sfsi_pg_col_null(st->pg, i);
	return sqlite3_column_type(st->st, i) == SQLITE_NULL;
}

char *sfsi_db_col_dup(struct db_stmt *st, int i)
{
	const char *t = sfsi_db_col_text(st, i);

	return t ? strdup(t) : NULL;
}

int64_t sfsi_db_last_rowid(struct db *d)
{
	if (d->pg)
		return sfsi_pg_last_id(d->pg);
	return sqlite3_last_insert_rowid(d->h);
}

int sfsi_db_changes(struct db *d)
{
	if (d->pg)
		return sfsi_pg_changes(d->pg);
	return sqlite3_changes(d->h);
}

/* ---- transactions ---------------------------------------------------- */

enum sfs_status sfsi_db_exec(struct db *d, const char *sql, struct sfs_err *e)
{
	enum sfs_status ret;
	int rc;

	if (d->pg) {
		ret = sfsi_pg_exec(d->pg, sql, e);
		pg_committed(d);
		return ret;
	}
	rc = sqlite3_exec(d->h, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? SFS_OK : rc_status(d, rc, e, sql);
}

/*
 * After a bulk load on PostgreSQL: VACUUM (ANALYZE) each table of the
 * store's schema (and only those: a database may hold several stores),
 * as after a restore. ANALYZE gives the planner the tables' sizes;
 * VACUUM sets the visibility map, without which an index-only scan of a
 * freshly loaded table still reads every row's page. VACUUM runs outside
 * a transaction, one statement per table. Nothing on SQLite.
 */
enum sfs_status sfsi_db_vacuum(struct db *d, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;
	char *sql = NULL;
	int rc;

	if (!d->pg)
		return SFS_OK;
	/* one statement naming the store's tables, however many: never
	 * the whole database, which may hold other stores */
	st = sfsi_db_prep_dyn(d,
			      "SELECT 'VACUUM (ANALYZE) ' || string_agg("
			      "format('%I.%I', schemaname, tablename), ', '"
			      " ORDER BY tablename) FROM pg_tables"
			      " WHERE schemaname = current_schema()",
			      e);
	if (!st)
		return e ? e->status : SFS_IO;
	rc = sfsi_db_step(st, e);
	if (rc < 0)
		ret = e ? e->status : SFS_IO;
	else if (rc == 1 && sfsi_db_col_text(st, 0)) {
		sql = strdup(sfsi_db_col_text(st, 0));
		if (!sql)
			ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				       "out of memory");
	}
	sfsi_db_finalize(st);
	if (!ret && sql)
		ret = sfsi_db_exec(d, sql, e);
	free(sql);
	return ret;
}

/* ---- group commit ---------------------------------------------------- */

/*
 * Commits made without waiting for the disk become durable together: the
 * first caller of sfsi_db_sync syncs the WAL for every commit made before
 * it starts, and callers that arrive meanwhile wait for the next sync,
 * which covers their commits too. Concurrent closes share one fdatasync.
 *
 * A failed sync is final for the handle: Linux reports a writeback error
 * once per open file, so a second fdatasync of the same WAL would return 0
 * for pages the kernel may have dropped. Every caller waiting for that sync,
 * and every later one, gets the error; reopening the store starts afresh
 * (SQLite then recovers from what the WAL really holds).
 */
static void sync_note_commit(struct sfs_store *s)
{
	pthread_mutex_lock(&s->sync_mu);
	s->sync_committed++;
	pthread_mutex_unlock(&s->sync_mu);
}

/*
 * The WAL's fd, (re)opened when the file is another one (sync_mu held);
 * -errno when there is none (-ENOENT: nothing to sync).
 */
static int wal_fd(struct sfs_store *s)
{
	char path[4096];
	struct stat a, b;

	snprintf(path, sizeof(path), "%s/speechfs.db-wal", s->dir);
	if (stat(path, &a) < 0)
		return -errno;
	if (s->wal_fd >= 0 && fstat(s->wal_fd, &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		return s->wal_fd;
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	s->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
	return s->wal_fd >= 0 ? s->wal_fd : -errno;
}

enum sfs_status sfsi_db_sync(struct sfs_store *s, struct sfs_err *e)
{
	uint64_t ticket, target;
	enum sfs_status ret = SFS_OK;
	int fd, err = 0;

	if (!s->cfg.sync_full)
		return SFS_OK; /* the store accepts NORMAL (db.sync_full) */
	if (s->cfg.db_url[0])
		return SFS_OK; /* PostgreSQL's commits are durable */
	pthread_mutex_lock(&s->sync_mu);
	ticket = s->sync_committed;
	while (s->sync_done < ticket && !(err = s->sync_err)) {
		if (s->sync_running) {
			pthread_cond_wait(&s->sync_cv, &s->sync_mu);
			continue;
		}
		s->sync_running = 1;
		target = s->sync_committed;
		fd = wal_fd(s);
		pthread_mutex_unlock(&s->sync_mu);
		if (fd >= 0 && fdatasync(fd) < 0)
			err = errno;
		else if (fd < 0 && fd != -ENOENT)
			err = -fd;
		pthread_mutex_lock(&s->sync_mu);
		s->sync_running = 0;
		if (err)
			s->sync_err = err;
		else
			s->sync_done = target;
		pthread_cond_broadcast(&s->sync_cv);
	}
	pthread_mutex_unlock(&s->sync_mu);
	if (err) {
		sfs_error("db", "cannot sync the WAL: %s", strerror(err));
		ret = sfsi_errno_status(e, err, "syncing the database");
	}
	return ret;
}

/*
 * BEGIN, COMMIT and ROLLBACK come from the statement cache: through
 * sqlite3_exec they were parsed again for every transaction, a tenth of
 * the work of a GET of one file.
 */
static enum sfs_status txn_stmt(struct db *d, const char *sql,
				struct sfs_err *e)
{
	struct db_stmt *st = sfsi_db_prep(d, sql, e);

	return st ? sfsi_db_run(st, e) : SFS_IO;
}

/*
 * The write turn: one write transaction of this process at a time. SQLite
 * answers a second writer SQLITE_BUSY and its busy handler sleeps (1, 2,
 * 5, 10 ms...) before it tries again, so threads of one process that
 * write at once (closes of four writers) spent their time asleep while
 * the lock was free; in turn, they queue here and start the moment the
 * previous transaction ends. Other processes still meet SQLite's lock. A
 * thread that already holds the turn (a transaction on another
 * connection) does not wait for itself, and no thread waits longer than
 * TURN_WAIT_MS (or the busy timeout when longer) for the others: a guard
 * against a holder that waits for one of them; then SQLite decides, as
 * before, so a BEGIN waits at most the turn's wait plus the busy timeout.
 * A turn freed as the wait times out is still taken: the waiter may have
 * consumed the signal meant for the next one.
 * PostgreSQL locks rows, not the database: no turn there.
 */
#define TURN_WAIT_MS 30000

static void write_turn(struct db *d)
{
	struct sfs_store *s = d->s;
	struct timespec until;
	int64_t ms;

	if (d->pg || !s)
		return;
	ms = s->cfg.busy_timeout_ms > TURN_WAIT_MS ? s->cfg.busy_timeout_ms
						   : TURN_WAIT_MS;
	if (s->write_wait_ms)
		ms = s->write_wait_ms;
	sfs_deadline(&until, ms);
	pthread_mutex_lock(&s->write_mu);
	if (s->write_busy && pthread_equal(s->write_owner, pthread_self()))
		goto out;
	while (s->write_busy)
		if (pthread_cond_timedwait(&s->write_cv, &s->write_mu,
					   &until) == ETIMEDOUT &&
		    s->write_busy)
			goto out; /* then SQLite decides */
	s->write_busy = 1;
	s->write_owner = pthread_self();
	d->turn = 1;
out:
	pthread_mutex_unlock(&s->write_mu);
}

static void write_turn_end(struct db *d)
{
	struct sfs_store *s = d->s;

	if (!d->turn)
		return;
	d->turn = 0;
	pthread_mutex_lock(&s->write_mu);
	s->write_busy = 0;
	pthread_cond_signal(&s->write_cv);
	pthread_mutex_unlock(&s->write_mu);
}

static enum sfs_status batch_begin(struct db *d, int write, struct sfs_err *e);

static enum sfs_status begin_write(struct db *d, int pg_kind, struct sfs_err *e)
{
	enum sfs_status st;

	if (d->batched)
		return batch_begin(d, 1, e);
	if (d->pg) {
		/* the change rows' origin: set by sfsi_pg_begin */
		st = sfsi_pg_begin(d->pg, pg_kind, e);
	} else {
		write_turn(d);
		st = txn_stmt(d, "BEGIN IMMEDIATE", e);
		if (st)
			write_turn_end(d);
	}
	if (!st)
		d->txn = 1;
	return st;
}

enum sfs_status sfsi_db_begin(struct db *d, struct sfs_err *e)
{
	return begin_write(d, PG_BEGIN_WRITE, e);
}

/*
 * The connections run at synchronous=NORMAL: a commit leaves the WAL
 * unsynced until sfsi_db_sync (or a checkpoint), and WAL recovery keeps a
 * prefix of commits, so that sync makes every earlier commit durable.
 * A transaction begun so is not synced at its commit.
 */
enum sfs_status sfsi_db_begin_nosync(struct db *d, struct sfs_err *e)
{
	enum sfs_status st = sfsi_db_begin(d, e);

	/* a batch's savepoints: the batcher syncs (and d->nosync would
	 * outlive them on the connection) */
	if (!st && !d->batched)
		d->nosync = 1;
	return st;
}

enum sfs_status sfsi_db_begin_read(struct db *d, struct sfs_err *e)
{
	enum sfs_status st;

	if (d->batched)
		return batch_begin(d, 0, e);
	st = d->pg ? sfsi_pg_begin(d->pg, PG_BEGIN_READ, e)
		   : txn_stmt(d, "BEGIN", e);

	if (!st)
		d->txn = 1;
	return st;
}

enum sfs_status sfsi_db_begin_rows(struct db *d, struct sfs_err *e)
{
	return begin_write(d, PG_BEGIN_ROWS, e);
}

enum sfs_status sfsi_db_on_commit(struct db *d, void (*fn)(struct db *, void *),
				  void *arg, struct sfs_err *e)
{
	struct hook *h = malloc(sizeof(*h));

	if (!h) {
		free(arg);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	h->fn = fn;
	h->arg = arg;
	h->level = d->sp;
	h->next = d->hooks;
	d->hooks = h;
	return SFS_OK;
}

static void run_hook_list(struct db *d, struct hook *h, int run)
{
	struct hook *next;

	for (; h; h = next) {
		next = h->next;
		if (run)
			h->fn(d, h->arg);
		free(h->arg);
		free(h);
	}
}

static void run_hooks(struct db *d, int run)
{
	struct hook *h = d->hooks;

	d->hooks = NULL;
	run_hook_list(d, h, run);
}

/* PostgreSQL's commit: hooks as SQLite's, nothing to sync. */
static enum sfs_status pg_commit(struct db *d, struct sfs_err *e)
{
	enum sfs_status st = sfsi_pg_commit(d->pg, e);

	d->txn = 0;
	d->nosync = 0;
	if (!st)
		pg_committed(d);
	run_hooks(d, st == SFS_OK);
	return st;
}

static enum sfs_status batch_end(struct db *d, int commit, struct sfs_err *e);

enum sfs_status sfsi_db_commit(struct db *d, struct sfs_err *e)
{
	enum sfs_status st, ret = SFS_OK;

	if (d->pg)
		return pg_commit(d, e);
	if (d->batched)
		return batch_end(d, 1, e);
	st = txn_stmt(d, "COMMIT", e);

	if (st == SFS_OK) {
		d->txn = 0;
		write_turn_end(d);
		sync_note_commit(d->s);
		d->synced_changes = sqlite3_total_changes64(d->h);
		/*
		 * hooks (a blob's bytes removed once its row is gone) run
		 * once the commit is durable, never when its sync failed: a
		 * commit begun "nosync" that has hooks syncs here (its caller
		 * syncs next anyway, and that finds nothing left to sync)
		 */
		if (!d->nosync || d->hooks)
			ret = sfsi_db_sync(d->s, e);
		d->nosync = 0;
		run_hooks(d, ret == SFS_OK);
		return ret;
	}
	run_hooks(d, 0);
	/* a failed COMMIT may leave the transaction open: end it */
	if (!sqlite3_get_autocommit(d->h))
		(void)txn_stmt(d, "ROLLBACK", NULL);
	d->txn = 0;
	d->nosync = 0;
	write_turn_end(d);
	d->synced_changes = sqlite3_total_changes64(d->h);
	return st;
}

void sfsi_db_rollback(struct db *d)
{
	if (d->batched) {
		(void)batch_end(d, 0, NULL);
		return;
	}
	run_hooks(d, 0);
	if (d->pg) {
		sfsi_pg_rollback(d->pg);
		d->txn = 0;
		d->nosync = 0;
		return;
	}
	if (!sqlite3_get_autocommit(d->h))
		(void)txn_stmt(d, "ROLLBACK", NULL);
	d->txn = 0;
	d->nosync = 0;
	write_turn_end(d);
	/* what was rolled back needs no sync */
	d->synced_changes = sqlite3_total_changes64(d->h);
}

int sfsi_db_in_txn(struct db *d)
{
	return d->txn;
}

/* ---- batched commits (sfs_store_batch) ------------------------------- */

/*
 * While a store handle batches, it has one connection, batch_db, used by
 * one thread at a time (a thread that already uses it gets it again,
 * nested); its transactions are savepoints of the batch's transaction,
 * which the batcher thread commits at most BATCH_HOLD_MS after it began.
 * Hooks of a savepoint wait for the batch's commit (they see committed
 * data); a savepoint rolled back drops its own.
 */
#define BATCH_HOLD_MS 1000 /* other processes' writes wait at most so */
#define BATCH_GAP_MS 120   /* then the lock is free at least so long */

#define MS_NS 1000000 /* nanoseconds in a millisecond */

/* page caches (KiB): the batch's connection, the others (SQLite's own) */
#define BATCH_CACHE "-65536"
#define POOL_CACHE "-2000"

/*
 * After a batch that was held its whole window, the next one waits until
 * BATCH_GAP_MS after its commit: another process's writer, whose busy
 * handler tries again every 100 ms at most, gets the lock in between;
 * without the gap a bulk load took the lock again within microseconds and
 * the daemon's writes failed busy after their timeout. A bulk load loses
 * about a tenth of its time; occasional batches none (d owned).
 */
static void batch_pause(struct sfs_store *s)
{
	struct timespec gap;
	int64_t at;

	pthread_mutex_lock(&s->batch_mu);
	at = s->batch_gap;
	pthread_mutex_unlock(&s->batch_mu);
	if (!at)
		return;
	sfs_mono_ts(&gap, at);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &gap, NULL) ==
	       EINTR)
		;
}

void sfsi_batch_init(struct sfs_store *s)
{
	pthread_mutex_init(&s->batch_mu, NULL);
	sfs_cond_init_mono(&s->batch_cv);
	sfs_cond_init_mono(&s->batch_tick);
}

/* The batch connection for this thread, when batching; 1 if so. */
static int batch_get(struct sfs_store *s, struct db **out)
{
	pthread_mutex_lock(&s->batch_mu);
	for (;;) {
		if (!s->batch_db) { /* not batching (any more) */
			pthread_mutex_unlock(&s->batch_mu);
			return 0;
		}
		if (s->batch_depth &&
		    pthread_equal(s->batch_owner, pthread_self())) {
			s->batch_depth++;
			break;
		}
		if (!s->batch_depth && !s->batch_want) {
			s->batch_owner = pthread_self();
			s->batch_depth = 1;
			break;
		}
		pthread_cond_wait(&s->batch_cv, &s->batch_mu);
	}
	*out = s->batch_db;
	pthread_mutex_unlock(&s->batch_mu);
	return 1;
}

/*
 * Since when the window runs (batch_mu held). The batcher is woken only
 * when a window begins: it sleeps until the window's end, which no later
 * change moves. (It waited on batch_cv, which every use of the
 * connection signals: a wake-up and a context switch per statement of
 * a bulk load, a third of the mount's CPU with -o commit.)
 */
static void batch_window(struct sfs_store *s)
{
	if (s->batch_dirty || s->batch_open)
		return;
	s->batch_since = sfs_mono_ns();
	pthread_cond_signal(&s->batch_tick);
}

static void batch_put(struct db *d)
{
	struct sfs_store *s = d->s;

	pthread_mutex_lock(&s->batch_mu);
	if (s->batch_depth > 1) {
		s->batch_depth--;
		pthread_mutex_unlock(&s->batch_mu);
		return;
	}
	pthread_mutex_unlock(&s->batch_mu);
	/* what its user left open ends as sfsi_db_put ends it */
	while (d->sp)
		(void)batch_end(d, 0, NULL);
	pthread_mutex_lock(&s->batch_mu);
	/* a write outside a transaction, committed at once: in the window */
	if (sqlite3_total_changes64(d->h) != d->synced_changes) {
		d->synced_changes = sqlite3_total_changes64(d->h);
		if (!s->batch_open) {
			batch_window(s);
			s->batch_dirty = 1;
			sync_note_commit(s);
		}
	}
	s->batch_depth = 0;
	pthread_cond_broadcast(&s->batch_cv);
	pthread_mutex_unlock(&s->batch_mu);
}

/* Drop the hooks of savepoint `level` and deeper ones. */
static void drop_hooks_from(struct db *d, int level)
{
	struct hook **p = &d->hooks, *h;

	while ((h = *p)) {
		if (h->level >= level) {
			*p = h->next;
			free(h->arg);
			free(h);
		} else {
			p = &h->next;
		}
	}
}

/*
 * SQLite ended the batch's transaction itself (an I/O error, a full
 * disk): what the window held is lost. Said once, and every later
 * sfs_store_sync fails (d owned).
 */
static void batch_check_lost(struct db *d)
{
	struct sfs_store *s = d->s;

	if (!sqlite3_get_autocommit(d->h))
		return;
	pthread_mutex_lock(&s->batch_mu);
	if (s->batch_open) {
		s->batch_open = 0;
		s->batch_lost = 1;
		sfs_error("db", "a batch of commits was rolled back: the "
				"changes of its window are lost");
	}
	pthread_mutex_unlock(&s->batch_mu);
	if (d->sp_real == 0) {
		d->sp = 0;
		d->txn = 0;
		drop_hooks_from(d, 0);
	}
}

static enum sfs_status batch_begin(struct db *d, int write, struct sfs_err *e)
{
	struct sfs_store *s = d->s;
	enum sfs_status st;
	int open;

	pthread_mutex_lock(&s->batch_mu);
	open = s->batch_open;
	pthread_mutex_unlock(&s->batch_mu);
	if (!open && !d->sp) {
		if (!write) {
			/* a read outside a batch: a transaction of its own */
			st = txn_stmt(d, "BEGIN", e);
			if (!st) {
				d->sp = d->sp_real = 1;
				d->txn = 1;
			}
			return st;
		}
		batch_pause(s);
		st = txn_stmt(d, "BEGIN IMMEDIATE", e);
		if (st)
			return st;
		d->batch_base = sqlite3_total_changes64(d->h);
		pthread_mutex_lock(&s->batch_mu);
		batch_window(s);
		s->batch_open = 1;
		pthread_mutex_unlock(&s->batch_mu);
	}
	if (!d->sp)
		d->sp_base = sqlite3_total_changes64(d->h);
	st = txn_stmt(d, "SAVEPOINT sfs", e);
	if (st) {
		batch_check_lost(d);
		return st;
	}
	d->sp++;
	d->txn = 1;
	return SFS_OK;
}

/*
 * The outermost savepoint was rolled back: when the batch held nothing
 * before it began (no change since the batch's BEGIN: no savepoint
 * released into it, no write outside one; every change, kept or rolled
 * back, counts in sqlite3_total_changes64), the batch holds nothing now
 * either: end its transaction instead of keeping SQLite's write lock
 * for the rest of the window (a blob's removal after a commit, a failed
 * change). d owned.
 */
static void batch_end_empty(struct db *d)
{
	struct sfs_store *s = d->s;
	int empty;

	pthread_mutex_lock(&s->batch_mu);
	empty = s->batch_open && d->sp_base == d->batch_base && !d->hooks;
	if (empty)
		s->batch_open = 0;
	pthread_mutex_unlock(&s->batch_mu);
	if (!empty)
		return;
	if (!sqlite3_get_autocommit(d->h))
		(void)txn_stmt(d, "ROLLBACK", NULL);
	/* what was rolled back needs no sync (nor a window: batch_put) */
	d->synced_changes += sqlite3_total_changes64(d->h) - d->batch_base;
}

/* End the innermost level: commit (release) or roll back. */
static enum sfs_status batch_end(struct db *d, int commit, struct sfs_err *e)
{
	struct sfs_store *s = d->s;
	enum sfs_status st = SFS_OK;
	struct hook *h;

	if (!d->sp) {
		run_hooks(d, 0);
		return SFS_OK;
	}
	if (d->sp == d->sp_real) {
		/* a transaction of its own (a read begun outside a batch) */
		st = txn_stmt(d, commit ? "COMMIT" : "ROLLBACK", e);
		if (st && !sqlite3_get_autocommit(d->h))
			(void)txn_stmt(d, "ROLLBACK", NULL);
		d->sp = d->sp_real = 0;
		d->txn = 0;
		run_hooks(d, commit && !st);
		if (sqlite3_total_changes64(d->h) != d->synced_changes) {
			d->synced_changes = sqlite3_total_changes64(d->h);
			pthread_mutex_lock(&s->batch_mu);
			batch_window(s);
			s->batch_dirty = 1;
			pthread_mutex_unlock(&s->batch_mu);
			sync_note_commit(s);
		}
		return st;
	}
	if (commit) {
		st = txn_stmt(d, "RELEASE sfs", e);
		if (!st) {
			/* its hooks wait for the enclosing level's end */
			for (h = d->hooks; h; h = h->next)
				if (h->level == d->sp)
					h->level--;
			d->sp--;
			d->txn = d->sp > 0;
			return SFS_OK;
		}
	}
	if (txn_stmt(d, "ROLLBACK TO sfs", NULL) == SFS_OK)
		(void)txn_stmt(d, "RELEASE sfs", NULL);
	drop_hooks_from(d, d->sp);
	d->sp--;
	d->txn = d->sp > 0;
	batch_check_lost(d);
	if (!d->sp)
		batch_end_empty(d);
	return st;
}

/* When the open window ends (batch_mu held). */
static int64_t batch_due(const struct sfs_store *s)
{
	int hold = s->batch_hold_ms ? s->batch_hold_ms : BATCH_HOLD_MS;
	int ms = s->batch_ms < hold ? s->batch_ms : hold;

	return s->batch_since + (int64_t)ms * MS_NS;
}

/* The gap after a batch held its whole window (batch_mu held). */
static void batch_set_gap(struct sfs_store *s)
{
	int64_t now = sfs_mono_ns();

	s->batch_gap = now >= batch_due(s) ? now + BATCH_GAP_MS * MS_NS : 0;
}

/*
 * Take the batch connection for this thread (batch_mu held): again when
 * it has it already (then 1: nested), else ahead of new users
 * (batch_want) once its user has put it back.
 */
static int batch_take(struct sfs_store *s)
{
	if (s->batch_depth && pthread_equal(s->batch_owner, pthread_self())) {
		s->batch_depth++;
		return 1;
	}
	s->batch_want++;
	while (s->batch_depth)
		pthread_cond_wait(&s->batch_cv, &s->batch_mu);
	s->batch_want--;
	s->batch_owner = pthread_self();
	s->batch_depth = 1;
	return 0;
}

/*
 * Commit the open batch, d taken (batch_mu held; released while COMMIT
 * runs). Its hooks move to *hooks, to run once the commit is synced and
 * d is no longer taken (batch_run_hooks).
 */
static enum sfs_status batch_commit_owned(struct sfs_store *s, struct db *d,
					  struct hook **hooks,
					  struct sfs_err *e)
{
	enum sfs_status st = SFS_OK;

	*hooks = NULL;
	if (s->batch_open) {
		pthread_mutex_unlock(&s->batch_mu);
		st = txn_stmt(d, "COMMIT", e);
		if (st && !sqlite3_get_autocommit(d->h))
			(void)txn_stmt(d, "ROLLBACK", NULL);
		if (!st)
			sync_note_commit(s);
		d->synced_changes = sqlite3_total_changes64(d->h);
		if (st)
			run_hooks(d, 0);
		*hooks = d->hooks;
		d->hooks = NULL;
		pthread_mutex_lock(&s->batch_mu);
		s->batch_open = 0;
		batch_set_gap(s);
		if (st) {
			s->batch_lost = 1;
			sfs_error("db",
				  "a batch of commits failed: the changes "
				  "of its window are lost");
		}
	}
	s->batch_dirty = 0;
	if (s->batch_lost && !st)
		st = sfs_errf(e, SFS_IO, SFS_R_NONE,
			      "a batch of commits was lost");
	return st;
}

/*
 * The hooks of a committed batch, after its sync (a blob's bytes go only
 * once the commit that dropped its row is durable; not at all when the
 * sync failed) and with the connection no longer taken: a hook's
 * transaction would open a batch of its own, after the gap
 * (batch_pause), which it waits for here without holding up the
 * handle's other threads. `d` the connection when the caller still has
 * it taken (nested), else NULL.
 */
static void batch_run_hooks(struct sfs_store *s, struct db *d,
			    struct hook *hooks, int run)
{
	int batching;

	if (!hooks)
		return;
	if (run && !d) {
		pthread_mutex_lock(&s->batch_mu);
		batching = s->batch_db != NULL;
		pthread_mutex_unlock(&s->batch_mu);
		if (batching)
			batch_pause(s);
		if (sfsi_db_get(s, &d, NULL)) {
			sfs_warn("db", "blobs of a batch left for fsck");
			run_hook_list(NULL, hooks, 0);
			return;
		}
		run_hook_list(d, hooks, 1);
		sfsi_db_put(d);
		return;
	}
	run_hook_list(d, hooks, run);
}

/*
 * Commit the open batch and sync (the caller does not use the connection,
 * or uses it outside any transaction).
 */
enum sfs_status sfsi_batch_commit(struct sfs_store *s, struct sfs_err *e)
{
	enum sfs_status st;
	struct hook *hooks;
	struct db *d;
	int nested;

	pthread_mutex_lock(&s->batch_mu);
	d = s->batch_db;
	if (!d || (s->batch_depth &&
		   pthread_equal(s->batch_owner, pthread_self()) && d->sp)) {
		/* not batching, or inside a transaction of its own: the
		 * batcher's turn */
		pthread_mutex_unlock(&s->batch_mu);
		return SFS_OK;
	}
	nested = batch_take(s);
	st = batch_commit_owned(s, d, &hooks, e);
	s->batch_depth = nested ? s->batch_depth - 1 : 0;
	pthread_cond_broadcast(&s->batch_cv);
	/* a commit of fsync's may leave a checkpoint due: the batcher's */
	if (__atomic_load_n(&s->ckpt_due, __ATOMIC_ACQUIRE))
		pthread_cond_signal(&s->batch_tick);
	pthread_mutex_unlock(&s->batch_mu);
	if (!st)
		st = sfsi_db_sync(s, e);
	batch_run_hooks(s, nested ? d : NULL, hooks, st == SFS_OK);
	return st;
}

/*
 * The checkpoint a batch's commit left due (on_wal_commit), on a
 * connection of the pool: passive, it runs beside the batch connection's
 * next changes instead of holding them up.
 */
static void checkpoint_aside(struct sfs_store *s)
{
	struct db *d;

	if (!__atomic_exchange_n(&s->ckpt_due, 0, __ATOMIC_ACQ_REL))
		return;
	if (pool_get(s, &d, NULL))
		return; /* the next commit outside a batch does it */
	(void)sqlite3_wal_checkpoint_v2(d->h, NULL, SQLITE_CHECKPOINT_PASSIVE,
					NULL, NULL);
	sfsi_db_put(d);
}

static void *batcher(void *arg)
{
	struct sfs_store *s = arg;
	struct timespec at;
	int64_t due;

	pthread_mutex_lock(&s->batch_mu);
	while (!s->batch_stop) {
		/*
		 * A checkpoint left due by a commit that was not ours
		 * (fsync's): made now, or a mount whose batches all end in
		 * fsync() never checkpoints and its WAL only grows.
		 */
		if (__atomic_load_n(&s->ckpt_due, __ATOMIC_ACQUIRE)) {
			pthread_mutex_unlock(&s->batch_mu);
			checkpoint_aside(s);
			pthread_mutex_lock(&s->batch_mu);
			continue;
		}
		if (!s->batch_open && !s->batch_dirty) {
			pthread_cond_wait(&s->batch_tick, &s->batch_mu);
			continue;
		}
		due = batch_due(s);
		if (sfs_mono_ns() < due) {
			sfs_mono_ts(&at, due);
			pthread_cond_timedwait(&s->batch_tick, &s->batch_mu,
					       &at);
			continue;
		}
		pthread_mutex_unlock(&s->batch_mu);
		if (sfsi_batch_commit(s, NULL))
			sfs_warn("db", "a batch's commits may not be durable");
		checkpoint_aside(s);
		pthread_mutex_lock(&s->batch_mu);
	}
	pthread_mutex_unlock(&s->batch_mu);
	return NULL;
}

int sfs_store_batching(struct sfs_store *s)
{
	int on;

	if (s->ops)
		return 0;
	pthread_mutex_lock(&s->batch_mu);
	on = s->batch_db != NULL;
	pthread_mutex_unlock(&s->batch_mu);
	return on;
}

int sfs_store_write_quick(struct sfs_store *s, int64_t content_size)
{
	int quick;

	if (s->ops ||
	    (content_size >= 0 && !sfsi_blob_inline_size(s, content_size)))
		return 0; /* a round trip; a blob file synced at its commit */
	pthread_mutex_lock(&s->batch_mu);
	/*
	 * the batch open: SQLite's write lock is ours (no other process,
	 * no gap, to wait for; its commit does not sync); the connection
	 * free and wanted by no one (no thread of ours to wait for)
	 */
	quick = s->batch_db && s->batch_open && !s->batch_depth &&
		!s->batch_want && !s->batch_stop;
	pthread_mutex_unlock(&s->batch_mu);
	return quick;
}

enum sfs_status sfs_store_batch(struct sfs_store *s, int ms, struct sfs_err *e)
{
	enum sfs_status st, st2;
	struct hook *hooks;
	struct db *d;

	if (s->ops || s->cfg.db_url[0])
		return SFS_OK; /* commits durable at the server / PostgreSQL */
	pthread_mutex_lock(&s->batch_mu);
	if (ms > 0 && s->batch_db) {
		s->batch_ms = ms;
		pthread_cond_signal(&s->batch_tick); /* a window's new end */
		pthread_mutex_unlock(&s->batch_mu);
		return SFS_OK;
	}
	if (ms <= 0 && !s->batch_db) {
		pthread_mutex_unlock(&s->batch_mu);
		return SFS_OK;
	}
	pthread_mutex_unlock(&s->batch_mu);
	if (ms > 0) {
		st = sfsi_db_get(s, &d, e);
		if (st)
			return st;
		/* a window's pages stay in memory, not spilled to the WAL
		 * and read back (pread and pwrite per new file 5.6 and 5.1
		 * with SQLite's default 2 MiB, 3.2 and 3.9 so) */
		(void)sqlite3_exec(d->h, "PRAGMA cache_size = " BATCH_CACHE,
				   NULL, NULL, NULL);
		pthread_mutex_lock(&s->batch_mu);
		d->batched = 1;
		d->synced_changes = sqlite3_total_changes64(d->h);
		s->batch_db = d;
		s->batch_ms = ms;
		s->batch_stop = 0;
		s->batch_lost = 0;
		s->batch_thread_on =
			pthread_create(&s->batch_thread, NULL, batcher, s) == 0;
		/* its name in /proc and perf (t_sync counts its wake-ups) */
		if (s->batch_thread_on)
			(void)pthread_setname_np(s->batch_thread, "sfs-batch");
		if (!s->batch_thread_on) {
			s->batch_db = NULL;
			d->batched = 0;
		}
		pthread_mutex_unlock(&s->batch_mu);
		if (!s->batch_thread_on) {
			sfsi_db_put(d);
			return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					"cannot start the batch committer");
		}
		return SFS_OK;
	}
	/*
	 * stop: the connection taken first, so that no thread opens a new
	 * batch between the last commit and the detach; the last batch
	 * committed and synced, the connection back in the pool without a
	 * transaction
	 */
	pthread_mutex_lock(&s->batch_mu);
	s->batch_stop = 1;
	pthread_cond_signal(&s->batch_tick);
	pthread_cond_broadcast(&s->batch_cv);
	pthread_mutex_unlock(&s->batch_mu);
	pthread_join(s->batch_thread, NULL);
	pthread_mutex_lock(&s->batch_mu);
	d = s->batch_db;
	(void)batch_take(s);
	st = batch_commit_owned(s, d, &hooks, e);
	s->batch_db = NULL;
	s->batch_thread_on = 0;
	s->batch_depth = 0;
	pthread_cond_broadcast(&s->batch_cv);
	pthread_mutex_unlock(&s->batch_mu);
	if (!sqlite3_get_autocommit(d->h)) {
		sfs_error("db", "a transaction outlived its batch");
		(void)txn_stmt(d, "ROLLBACK", NULL);
	}
	d->batched = 0;
	(void)sqlite3_exec(d->h, "PRAGMA cache_size = " POOL_CACHE, NULL, NULL,
			   NULL);
	d->sp = d->sp_real = 0;
	d->txn = 0;
	d->nosync = 0;
	sfsi_db_put(d);
	st2 = sfsi_db_sync(s, st ? NULL : e);
	batch_run_hooks(s, NULL, hooks, !st && !st2);
	checkpoint_aside(s);
	return st ? st : st2;
}

/* ---- notices from other processes (PostgreSQL) ------------------------ */

/*
 * An idle listening connection is pinged after PING_MS without a byte,
 * and counts as lost when the answer takes PING_WAIT_MS: a connection
 * that died silently (a network partition) stops the caches it drives
 * within PING_MS + PING_WAIT_MS (keycache.c).
 */
#define PING_MS 5000
#define PING_WAIT_MS 5000
#define RELISTEN_MS 1000 /* between attempts to connect again */

static void note(struct sfs_store *s)
{
	uint64_t one = 1;

	pthread_mutex_lock(&s->note_mu);
	s->notes++;
	pthread_cond_broadcast(&s->note_cv);
	/* a full counter is awake already */
	if (s->note_efd >= 0 && write(s->note_efd, &one, sizeof(one)) < 0)
		sfs_debug("db", "cannot wake the change fd");
	pthread_mutex_unlock(&s->note_mu);
}

static int note_stopping(struct sfs_store *s)
{
	int stop;

	pthread_mutex_lock(&s->note_mu);
	stop = s->note_stop;
	pthread_mutex_unlock(&s->note_mu);
	return stop;
}

static void listener_lost(struct sfs_store *s, struct pgconn **c)
{
	sfsi_gens_live(s, 0); /* first: nothing cached is served again */
	__atomic_store_n(&s->note_pid, 0, __ATOMIC_SEQ_CST);
	sfsi_pg_close(*c);
	*c = NULL;
}

static void *listener(void *arg)
{
	struct sfs_store *s = arg;
	struct pgconn *c = NULL;
	struct pollfd pf = { .fd = s->note_pipe[0], .events = POLLIN };
	struct sfs_err e;
	int got, warned = 0;

	while (!note_stopping(s)) {
		if (!c) {
			sfs_err_init(&e);
			if (sfsi_pg_listen(s->cfg.db_url, s->cfg.db_schema,
					   s->origin, &c, &e)) {
				c = NULL;
				if (!warned++)
					sfs_warn("db",
						 "cannot listen for other "
						 "processes' changes (%s): "
						 "polling until it can",
						 e.message);
				poll(&pf, 1, RELISTEN_MS);
				continue;
			}
			warned = 0;
			sfsi_pg_set_domain(c, &s->gen_domain);
			/* what was said while no one listened is unknown:
			 * the caches start afresh, the waiters look */
			__atomic_store_n(&s->note_pid, sfsi_pg_backend_pid(c),
					 __ATOMIC_SEQ_CST);
			sfsi_gens_live(s, 1);
			note(s);
			sfs_workers_kick(s);
		}
		got = sfsi_pg_listen_wait(c, s->note_pipe[0], PING_MS);
		if (got == PG_NOTE_QUIET)
			got = sfsi_pg_listen_ping(c, s->note_pipe[0],
						  PING_WAIT_MS);
		if (got < 0) {
			sfs_warn("db", "the listening connection was lost");
			listener_lost(s, &c);
			continue;
		}
		if (got & PG_NOTE_AUTH)
			sfsi_auth_gen_bump(s);
		if (got & PG_NOTE_OTHERS)
			sfsi_data_gen_bump(s);
		if (got & PG_NOTE_WRITE)
			note(s);
		if (got & PG_NOTE_JOBS)
			sfs_workers_kick(s);
	}
	/* stopping: the caches end with the store, nothing to drop */
	__atomic_store_n(&s->gen_live, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&s->note_pid, 0, __ATOMIC_SEQ_CST);
	sfsi_pg_close(c);
	return NULL;
}

int sfsi_db_listen_start(struct sfs_store *s)
{
	int ok;

	if (!s->cfg.db_url[0])
		return -1;
	pthread_mutex_lock(&s->note_mu);
	if (!s->note_state && !s->note_stop) {
		s->note_state = 2;
		if (pipe2(s->note_pipe, O_CLOEXEC) == 0) {
			if (pthread_create(&s->note_th, NULL, listener, s) == 0)
				s->note_state = 1;
			else {
				close(s->note_pipe[0]);
				close(s->note_pipe[1]);
			}
		}
		if (s->note_state != 1)
			sfs_warn("db", "cannot start the listening thread");
	}
	ok = s->note_state == 1;
	pthread_mutex_unlock(&s->note_mu);
	return ok ? 0 : -1;
}

void sfsi_db_listen_stop(struct sfs_store *s)
{
	ssize_t n;

	pthread_mutex_lock(&s->note_mu);
	if (s->note_state != 1) {
		pthread_mutex_unlock(&s->note_mu);
		return;
	}
	s->note_stop = 1;
	pthread_cond_broadcast(&s->note_cv);
	pthread_mutex_unlock(&s->note_mu);
	n = write(s->note_pipe[1], "x", 1);
	(void)n; /* a full pipe is awake already */
	pthread_join(s->note_th, NULL);
	close(s->note_pipe[0]);
	close(s->note_pipe[1]);
	s->note_state = 0;
}

void sfsi_db_note_wait(struct sfs_store *s, int timeout_ms)
{
	struct timespec ts;

	sfs_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&s->note_mu);
	while (s->notes == s->notes_seen && !s->note_stop)
		if (pthread_cond_timedwait(&s->note_cv, &s->note_mu, &ts) ==
		    ETIMEDOUT)
			break;
	s->notes_seen = s->notes;
	pthread_mutex_unlock(&s->note_mu);
}

void sfsi_db_note_wake(struct sfs_store *s)
{
	note(s);
}

int sfsi_db_change_fd(struct sfs_store *s)
{
	int fd;

	if (!s->cfg.db_url[0])
		return -1;
	pthread_mutex_lock(&s->note_mu);
	if (s->note_efd < 0)
		s->note_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fd = s->note_efd;
	pthread_mutex_unlock(&s->note_mu);
	if (fd < 0) {
		sfs_warn("db", "cannot make the change fd: %s",
			 strerror(errno));
		return -1;
	}
	/* not listening: the caller polls, as on a lost connection */
	if (sfsi_db_listen_start(s))
		sfs_warn("db", "changes of other processes are polled for");
	return fd;
}

void sfsi_db_notify_jobs(struct db *d)
{
	if (d->pg)
		sfsi_pg_notify_jobs(d->pg);
}

void sfsi_db_notify_auth(struct db *d)
{
	if (d->pg)
		sfsi_pg_notify_auth(d->pg);
}
