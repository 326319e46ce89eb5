/*
 * SQLite behind the core: a pool of connections (WAL, foreign keys, a busy
 * timeout), per-connection caches of prepared statements. Transactions and
 * group commit are core/db_txn.c's, batched commits core/db_batch.c's, the
 * notices of other processes core/db_listen.c's (db_conn_i.h: what they
 * share). The schema and its migrations are core/schema.c's.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth_i.h"
#include "db_conn_i.h"
#include "db_pg_i.h"
#include "speechfs/log.h"
#include "store_i.h"
#include "util_i.h"

#define STMT_CACHE_MIN 256 /* slots; grows to stay at most half full */

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

static enum sfs_status configure(sqlite3 *h, const struct sfs_config *cfg,
				 struct sfs_err *e)
{
	char sql[224];
	int rc;

	sqlite3_busy_timeout(h, cfg ? cfg->busy_timeout_ms : SFSI_DB_BUSY_MS);
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
	rc = sqlite3_open_v2(path, &h, flags, sfsi_db_vfs());
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
 * (checkpoint_aside). Nor inside a group's commit: its members' commits
 * return first, then the committer checkpoints (grp_end).
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
	else if (d == d->s->grp_db)
		d->s->grp_ckpt = 1; /* after its members are told (grp_end) */
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

void sfsi_db_conn_close(struct db *d)
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
	sfsi_db_conn_close(d);
}

void sfsi_db_pool_close(struct sfs_store *s)
{
	struct db *d, *next;

	pthread_mutex_lock(&s->pool_mu);
	for (d = s->pool_free; d; d = next) {
		next = d->next;
		sfsi_db_conn_close(d);
	}
	s->pool_free = NULL;
	if (s->pool_spare)
		sfsi_db_conn_close(s->pool_spare);
	s->pool_spare = NULL;
	pthread_mutex_unlock(&s->pool_mu);
	if (s->grp_db)
		sfsi_db_conn_close(s->grp_db);
	s->grp_db = NULL;
}

/*
 * The spare connection for a thread that may not wait, every other one
 * taken (pool_mu held; let go). Changes waiting for another process's
 * write lock hold their connections for up to db.busy_timeout_ms: a
 * lookup of the mount's reading thread waited for one, and the whole
 * mount with it (review s16 F6). Taken already (a second connection of
 * the same call): SFS_WOULD_WAIT, the call goes to a worker.
 */
static enum sfs_status spare_get(struct sfs_store *s, struct db **out,
				 struct sfs_err *e)
{
	enum sfs_status st = SFS_OK;
	struct db *d;

	if (s->spare_busy) {
		pthread_mutex_unlock(&s->pool_mu);
		sfsi_would_wait(e, "a database connection");
		return SFS_WOULD_WAIT;
	}
	s->spare_busy = 1;
	d = s->pool_spare;
	pthread_mutex_unlock(&s->pool_mu);
	if (!d && !(st = sfsi_db_conn_new(s, &d, e))) {
		d->spare = 1;
		s->pool_spare = d; /* only its holder (spare_busy) looks */
	}
	if (st) {
		pthread_mutex_lock(&s->pool_mu);
		s->spare_busy = 0;
		pthread_mutex_unlock(&s->pool_mu);
		return st;
	}
	*out = d;
	return SFS_OK;
}

/* A connection of the pool (never the batch's). */
enum sfs_status sfsi_db_pool_get(struct sfs_store *s, struct db **out,
				 struct sfs_err *e)
{
	struct db *d = NULL;
	enum sfs_status st;

	pthread_mutex_lock(&s->pool_mu);
	if (!s->pool_free && s->pool_n >= DB_POOL_MAX && sfsi_nowait())
		return spare_get(s, out, e);
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

	st = sfsi_db_conn_new(s, &d, e);
	if (st) {
		pthread_mutex_lock(&s->pool_mu);
		s->pool_n--;
		pthread_cond_signal(&s->pool_cv);
		pthread_mutex_unlock(&s->pool_mu);
		return st;
	}
	*out = d;
	return SFS_OK;
}

enum sfs_status sfsi_db_conn_new(struct sfs_store *s, struct db **out,
				 struct sfs_err *e)
{
	struct db *d = calloc(1, sizeof(*d));
	char path[4096];
	enum sfs_status st;

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
		return st;
	}
	d->s = s;
	*out = d;
	return SFS_OK;
}

enum sfs_status sfsi_db_get(struct sfs_store *s, struct db **out,
			    struct sfs_err *e)
{
	int batch = sfsi_batch_get(s, out);

	if (batch < 0) {
		sfsi_would_wait(e, "the batch's connection");
		return SFS_WOULD_WAIT;
	}
	if (batch)
		return SFS_OK;
	return sfsi_db_pool_get(s, out, e);
}

enum sfs_status sfsi_db_get_committed(struct sfs_store *s, struct db **out,
				      struct sfs_err *e)
{
	return sfsi_db_pool_get(s, out, e);
}

int sfsi_db_batching(const struct db *d)
{
	return d->batched;
}

void sfsi_db_put(struct db *d)
{
	struct sfs_store *s;

	if (!d)
		return;
	s = d->s;
	if (d->batched) {
		sfsi_batch_put(d);
		return;
	}
	if (d->txn)
		sfsi_db_rollback(d);
	/* writes made outside a transaction (autocommit) are durable too */
	if (!d->pg && sqlite3_total_changes64(d->h) != d->synced_changes) {
		sfsi_db_sync_note_commit(s);
		if (sfsi_db_sync(s, NULL))
			sfs_error("db", "a write may not be durable");
		d->synced_changes = sqlite3_total_changes64(d->h);
	}
	pthread_mutex_lock(&s->pool_mu);
	if (d->spare) {
		s->spare_busy = 0;
	} else {
		d->next = s->pool_free;
		s->pool_free = d;
		pthread_cond_signal(&s->pool_cv);
	}
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

int sfsi_db_interrupt(struct sfs_store *s)
{
	/* the store's connections are those of its generations' domain */
	return sfsi_pg_cancel(&s->gen_domain);
}

int sfsi_db_fts_sound(struct db *d, struct sfs_err *e)
{
	static const char waiting[] =
		"INSERT INTO file_fts(rowid, name, filename)"
		" SELECT f.id, f.name, f.filename FROM fts_pending p"
		" JOIN file f ON f.id = p.id";
	static const char check[] = "INSERT INTO file_fts(file_fts, rank) "
				    "VALUES('integrity-check', 1)";
	int rc, sound = -1;
	sqlite3 *h;

	if (d->pg || sfsi_db_begin(d, e))
		return -1;
	h = db_live(d)->h;
	rc = sqlite3_exec(h, waiting, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc_status(d, rc, e, "fsck: names waiting");
		goto out;
	}
	rc = sqlite3_exec(h, check, NULL, NULL, NULL);
	if ((rc & 0xff) == SQLITE_CORRUPT) {
		sfs_debug("db", "fsck: names' index: %s", sqlite3_errmsg(h));
		sound = 0;
	} else if (rc == SQLITE_OK) {
		sound = 1;
	} else {
		rc_status(d, rc, e, "fsck: names' index");
	}
out:
	sfsi_db_rollback(d);
	return sound;
}

/* On PostgreSQL, a commit moves the data generation on here. */
void sfsi_db_pg_committed(struct db *d)
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

	d = db_live(d);
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

	d = db_live(d);
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

	sfsi_db_pg_committed(st->d);
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
	d = db_live(d);
	if (d->pg)
		return sfsi_pg_last_id(d->pg);
	return sqlite3_last_insert_rowid(d->h);
}

int sfsi_db_changes(struct db *d)
{
	d = db_live(d);
	if (d->pg)
		return sfsi_pg_changes(d->pg);
	return sqlite3_changes(d->h);
}
