/*
 * fsck's check of the names' index, derived data of the file rows: on
 * SQLite the FTS5 index (file_fts) and the names waiting for it
 * (fts_pending, schema v8), on PostgreSQL pg_trgm's indexes of name and
 * filename. Made again from the files, never the other way round.
 */
#include <stdio.h>
#include "db_i.h"
#include "fsck_i.h"
#include "util_i.h"

static enum sfs_status status_of(struct sfs_err *e)
{
	return e && e->status ? e->status : SFS_IO;
}

/* One number the statement answers, or -1 (e filled). */
static int64_t count_of(struct db *d, const char *sql, struct sfs_err *e)
{
	struct db_stmt *st = sfsi_db_prep(d, sql, e);
	int64_t n = -1;
	int rc;

	if (!st)
		return -1;
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		n = sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	return rc < 0 ? -1 : n;
}

/* The SQL of a repair run in one write transaction. */
static enum sfs_status remake(struct db *d, const char *sql, struct sfs_err *e)
{
	enum sfs_status ret = sfsi_db_begin(d, e);

	if (ret)
		return ret;
	ret = sfsi_db_exec(d, sql, e);
	if (!ret)
		return sfsi_db_commit(d, e);
	sfsi_db_rollback(d);
	return ret;
}

/*
 * SQLite, read-only (a reader beside the store's writers): which rows the
 * index holds, from FTS5's table of one row per indexed name
 * (file_fts_docsize), against the files and the names waiting.
 */
static const struct {
	const char *sql, *what;
} fts_probes[] = {
	{ "SELECT COUNT(*) FROM fts_pending p WHERE NOT EXISTS"
	  " (SELECT 1 FROM file f WHERE f.id = p.id)",
	  "names waiting for the names' index have no file" },
	{ "SELECT COUNT(*) FROM file f WHERE NOT EXISTS"
	  " (SELECT 1 FROM file_fts_docsize d WHERE d.id = f.id)"
	  " AND NOT EXISTS (SELECT 1 FROM fts_pending p WHERE p.id = f.id)",
	  "files are neither in the names' index nor waiting for it" },
	{ "SELECT COUNT(*) FROM file_fts_docsize d WHERE NOT EXISTS"
	  " (SELECT 1 FROM file f WHERE f.id = d.id)",
	  "entries of the names' index have no file" },
	{ "SELECT COUNT(*) FROM fts_pending p"
	  " JOIN file_fts_docsize d ON d.id = p.id",
	  "names wait for the names' index and are in it already" },
};

/*
 * SQLite: the read-only probes; with repair, when they find nothing,
 * FTS5's integrity check too (stale or corrupt entries), which holds
 * the store's write lock while it runs, as the repair does. The repair
 * rebuilds the index from the files and empties fts_pending in the same
 * transaction (a rebuild that left the waiting rows would have the next
 * catch-up index them twice).
 */
static enum sfs_status check_fts(struct db *d, int repair,
				 void (*say)(void *arg, const char *line),
				 void *arg, int64_t *found, int64_t *repaired,
				 struct sfs_err *e)
{
	char line[160];
	int64_t n;
	size_t i;
	int sound;

	for (i = 0; i < ARRAY_SIZE(fts_probes); i++) {
		n = count_of(d, fts_probes[i].sql, e);
		if (n < 0)
			return status_of(e);
		*found += n;
		if (n && say) {
			snprintf(line, sizeof(line), "%lld %s", (long long)n,
				 fts_probes[i].what);
			say(arg, line);
		}
	}
	if (!repair)
		return SFS_OK;
	if (!*found) {
		sound = sfsi_db_fts_sound(d, e);
		if (sound < 0)
			return status_of(e);
		if (sound)
			return SFS_OK;
		*found = 1;
		if (say)
			say(arg, "the names' index does not hold the files'"
				 " names (stale or corrupt entries)");
	}
	if (remake(d,
		   "INSERT INTO file_fts(file_fts) VALUES('rebuild');"
		   " DELETE FROM fts_pending",
		   e))
		return status_of(e);
	(*repaired)++;
	if (say)
		say(arg,
		    "repaired: the names' index made again from the files");
	return SFS_OK;
}

/* PostgreSQL's: pg_trgm's two indexes are there and valid. */
#define PG_TRGM_INDEXES                                                        \
	"CREATE INDEX file_name_trgm ON file USING gin (name gin_trgm_ops);"   \
	"CREATE INDEX file_filename_trgm ON file"                              \
	" USING gin (filename gin_trgm_ops);"

static enum sfs_status check_trgm(struct db *d, int repair,
				  void (*say)(void *arg, const char *line),
				  void *arg, int64_t *found, int64_t *repaired,
				  struct sfs_err *e)
{
	int64_t n;

	n = count_of(
		d,
		"SELECT COUNT(*) FROM pg_index i"
		" JOIN pg_class c ON c.oid = i.indexrelid"
		" WHERE c.relnamespace = current_schema()::regnamespace"
		" AND c.relname IN ('file_name_trgm', 'file_filename_trgm')"
		" AND i.indisvalid AND i.indisready",
		e);
	if (n < 0)
		return status_of(e);
	*found = n < 2;
	if (!*found)
		return SFS_OK;
	if (say)
		say(arg, "the names' index (pg_trgm's file_name_trgm,"
			 " file_filename_trgm) is missing or not valid");
	if (!repair)
		return SFS_OK;
	if (remake(d,
		   "DROP INDEX IF EXISTS file_name_trgm;"
		   " DROP INDEX IF EXISTS file_filename_trgm;" PG_TRGM_INDEXES,
		   e))
		return status_of(e);
	(*repaired)++;
	if (say)
		say(arg,
		    "repaired: the names' index made again from the files");
	return SFS_OK;
}

enum sfs_status sfsi_fsck_names(struct db *d, int repair,
				void (*say)(void *arg, const char *line),
				void *arg, int64_t *found, int64_t *repaired,
				struct sfs_err *e)
{
	*found = 0;
	return sfsi_db_is_pg(d)
		       ? check_trgm(d, repair, say, arg, found, repaired, e)
		       : check_fts(d, repair, say, arg, found, repaired, e);
}
