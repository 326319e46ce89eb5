/*
 * The names' full-text index of SQLite's stores (FTS5, schema v8): the
 * names waiting in fts_pending enter it in bulk, a chunk per
 * transaction, by the janitor's chore (query.c's searches find what
 * waits with LIKE meanwhile).
 */
#include "db_i.h"
#include "file_i.h"
#include "job_i.h"
#include "speechfs/log.h"
#include "store_i.h"
#include "util_i.h"

/* ---- the names' full-text index -------------------------------------- */

/*
 * A new file's name enters the index later, in bulk (schema v8): FTS5
 * wrote a segment of its own (three pages of the WAL, a fifth of the
 * commit's work) at every commit of a create, the mount's included.
 * Searches never write: they find what waits with LIKE (substring()).
 */

/* Whether any name waits for the index. */
static enum sfs_status fts_waiting(struct db *d, int *left, struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	st = sfsi_db_prep(d, "SELECT EXISTS(SELECT 1 FROM fts_pending)", e);
	if (!st)
		return e && e->status ? e->status : SFS_IO;
	rc = sfsi_db_step(st, e);
	*left = rc == 1 && sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	return rc < 0 ? (e && e->status ? e->status : SFS_IO) : SFS_OK;
}

/*
 * Index the next 1,000 waiting names (about 20 ms of the write lock);
 * *left: some still wait.
 */
static enum sfs_status fts_chunk(struct db *d, int *left, struct sfs_err *e)
{
	static const char *const steps[] = {
		"INSERT INTO file_fts(rowid, name, filename)"
		" SELECT f.id, f.name, f.filename FROM"
		" (SELECT id FROM fts_pending ORDER BY id LIMIT 1000) p"
		" JOIN file f ON f.id = p.id",
		"DELETE FROM fts_pending WHERE id IN (SELECT id FROM "
		"fts_pending"
		" ORDER BY id LIMIT 1000)",
	};
	struct db_stmt *st;
	enum sfs_status ret;
	size_t i;

	/* a long transaction: not in a group (sfsi_db_begin_alone_nosync) */
	ret = sfsi_db_begin_alone_nosync(d, e);
	for (i = 0; !ret && i < ARRAY_SIZE(steps); i++) {
		st = sfsi_db_prep(d, steps[i], e);
		ret = st ? sfsi_db_run(st, e) : SFS_IO;
	}
	if (!ret)
		ret = fts_waiting(d, left, e);
	if (ret) {
		sfsi_db_rollback(d);
		return ret;
	}
	return sfsi_db_commit(d, e);
}

enum sfs_status sfsi_fts_catch_up(struct sfs_store *s, struct sfs_err *e)
{
	struct db *d = NULL;
	enum sfs_status ret;
	int left = 0;

	if (sfsi_db_store_is_pg(s))
		return SFS_OK;
	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = fts_waiting(d, &left, e); /* no write lock for nothing */
	/* a transaction per chunk: writers wait for one chunk at most */
	while (!ret && left)
		ret = fts_chunk(d, &left, e);
	sfsi_db_put(d);
	return ret;
}

static void fts_chore(struct sfs_store *s)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfsi_fts_catch_up(s, &e))
		sfs_warn("janitor", "cannot index new names: %s", e.message);
}

/*
 * At the janitor's interval and every second between: right after a bulk
 * of new files the searches find their names with LIKE over all that
 * wait (a million waiting: ~190 ms a search), and indexing runs at ~50,000
 * names a second, so a fill of 5,000 files a second is indexed as it goes
 * (a tenth of the write lock's time) instead of a minute later. Nothing
 * waiting costs one read of fts_pending's first page.
 */
void sfsi_fts_install(struct sfs_store *s)
{
	if (sfsi_db_store_is_pg(s))
		return; /* pg_trgm's indexes are kept by the commits */
	sfsi_janitor_add(s, fts_chore);
	sfsi_janitor_often(s, fts_chore);
}
