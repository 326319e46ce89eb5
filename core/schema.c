/*
 * The schema of the store's database: version 1 as made by a new store,
 * and the forward migrations that take an older store to
 * DB_SCHEMA_VERSION (PRAGMA user_version), each in SQL and, where a step
 * needs it, in C after its SQL.
 */
#include <sqlite3.h>
#include <stdio.h>
#include "db_i.h"
#include "schema_i.h"
#include "speechfs/log.h"
#include "util_i.h"

/* A directory's changes, for the change feed (v1; made again by v5). */
#define DIR_TRIGGERS                                                           \
	"CREATE TRIGGER change_dir_ai AFTER INSERT ON dir BEGIN"               \
	" INSERT INTO change(owner_id, file_id, dir, at)"                      \
	" VALUES (new.owner_id, 0, new.parent, new.mtime_ns); END;"            \
	"CREATE TRIGGER change_dir_au AFTER UPDATE OF path ON dir BEGIN"       \
	" INSERT INTO change(owner_id, file_id, dir, at)"                      \
	" VALUES (old.owner_id, 0, old.parent, new.mtime_ns);"                 \
	" INSERT INTO change(owner_id, file_id, dir, at)"                      \
	" VALUES (new.owner_id, 0, new.parent, new.mtime_ns); END;"            \
	"CREATE TRIGGER change_dir_ad AFTER DELETE ON dir BEGIN"               \
	" INSERT INTO change(owner_id, file_id, dir, at)"                      \
	" VALUES (old.owner_id, 0, old.parent, old.mtime_ns); END;"

static const char schema_v1[] =
	"CREATE TABLE setting(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
	"CREATE TABLE tenant("
	" id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
	" name TEXT NOT NULL,"
	" max_bytes INTEGER NOT NULL DEFAULT 0,"
	" max_files INTEGER NOT NULL DEFAULT 0,"
	" used_bytes INTEGER NOT NULL DEFAULT 0,"
	" used_files INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL);"
	"CREATE TABLE user("
	" id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
	" tenant_id INTEGER NOT NULL REFERENCES tenant(id),"
	" name TEXT NOT NULL,"
	" download_bps INTEGER NOT NULL DEFAULT -1,"
	" created_at INTEGER NOT NULL);"
	"CREATE INDEX user_tenant ON user(tenant_id);"
	"CREATE TABLE api_key("
	" id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
	" user_id INTEGER NOT NULL REFERENCES user(id),"
	" hash BLOB NOT NULL UNIQUE, scopes INTEGER NOT NULL, label TEXT,"
	" created_at INTEGER NOT NULL, revoked_at INTEGER);"
	"CREATE TABLE blob("
	" tenant_id INTEGER NOT NULL REFERENCES tenant(id),"
	" sha256 TEXT NOT NULL, size INTEGER NOT NULL,"
	" refs INTEGER NOT NULL, created_at INTEGER NOT NULL,"
	" PRIMARY KEY(tenant_id, sha256)) WITHOUT ROWID;"
	"CREATE TABLE file("
	" id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
	" tenant_id INTEGER NOT NULL REFERENCES tenant(id),"
	" owner_id INTEGER NOT NULL REFERENCES user(id),"
	" name TEXT NOT NULL, filename TEXT, description TEXT,"
	" dir TEXT NOT NULL, metadata TEXT, mime TEXT, source_uri TEXT,"
	" ingest_error TEXT,"
	" size INTEGER, duration REAL, sha256 TEXT,"
	" blob_ref INTEGER NOT NULL DEFAULT 0,"
	" ingestion INTEGER NOT NULL DEFAULT 0,"
	" is_deleted INTEGER NOT NULL DEFAULT 0,"
	" is_purged INTEGER NOT NULL DEFAULT 0,"
	" is_discarded INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL, deleted_at INTEGER,"
	" purged_at INTEGER, purge_at INTEGER, discarded_at INTEGER,"
	" publish INTEGER NOT NULL DEFAULT 0, published_at INTEGER,"
	" want_la INTEGER NOT NULL DEFAULT 0,"
	" la_status INTEGER NOT NULL DEFAULT 0, la_size INTEGER,"
	" la_sha256 TEXT, la_blob_ref INTEGER NOT NULL DEFAULT 0,"
	" la_created_at INTEGER,"
	" la_deleted INTEGER NOT NULL DEFAULT 0,"
	" la_purged INTEGER NOT NULL DEFAULT 0,"
	" la_deleted_at INTEGER, la_purged_at INTEGER, la_purge_at INTEGER,"
	" la_error TEXT,"
	" mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL);"
	"CREATE INDEX file_dir ON file(owner_id, is_deleted, dir, created_at);"
	"CREATE INDEX file_created ON file(owner_id, is_deleted, created_at);"
	"CREATE INDEX file_dir_name ON file(owner_id, is_deleted, dir,"
	" name COLLATE NOCASE);"
	"CREATE INDEX file_sha ON file(owner_id, sha256);"
	"CREATE INDEX file_internal ON file(tenant_id, created_at)"
	" WHERE publish = 1 AND is_deleted = 0;"
	"CREATE INDEX file_purge ON file(purge_at)"
	" WHERE is_deleted = 1 AND is_purged = 0;"
	"CREATE INDEX file_la_purge ON file(la_purge_at)"
	" WHERE la_deleted = 1 AND la_purged = 0;"
	"CREATE INDEX file_blob ON file(tenant_id, sha256) WHERE blob_ref "
	"= 1;"
	"CREATE INDEX file_la_blob ON file(tenant_id, la_sha256)"
	" WHERE la_blob_ref = 1;"
	"CREATE VIRTUAL TABLE file_fts USING fts5(name, filename,"
	" content='file', content_rowid='id', tokenize='trigram');"
	"CREATE TRIGGER file_fts_ai AFTER INSERT ON file BEGIN"
	" INSERT INTO file_fts(rowid, name, filename)"
	" VALUES (new.id, new.name, new.filename); END;"
	"CREATE TRIGGER file_fts_ad AFTER DELETE ON file BEGIN"
	" INSERT INTO file_fts(file_fts, rowid, name, filename)"
	" VALUES ('delete', old.id, old.name, old.filename); END;"
	"CREATE TRIGGER file_fts_au AFTER UPDATE OF name, filename ON file"
	" BEGIN"
	" INSERT INTO file_fts(file_fts, rowid, name, filename)"
	" VALUES ('delete', old.id, old.name, old.filename);"
	" INSERT INTO file_fts(rowid, name, filename)"
	" VALUES (new.id, new.name, new.filename); END;"
	"CREATE TABLE tag("
	" id INTEGER PRIMARY KEY,"
	" tenant_id INTEGER NOT NULL REFERENCES tenant(id),"
	" name TEXT NOT NULL COLLATE NOCASE, UNIQUE(tenant_id, name));"
	"CREATE TABLE file_tag("
	" file_id INTEGER NOT NULL REFERENCES file(id) ON DELETE CASCADE,"
	" tag_id INTEGER NOT NULL REFERENCES tag(id),"
	" PRIMARY KEY(file_id, tag_id)) WITHOUT ROWID;"
	"CREATE INDEX file_tag_tag ON file_tag(tag_id, file_id);"
	"CREATE TABLE share("
	" id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
	" file_id INTEGER NOT NULL REFERENCES file(id) ON DELETE CASCADE,"
	" user_id INTEGER NOT NULL REFERENCES user(id),"
	" perm INTEGER NOT NULL, created_by INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL, UNIQUE(file_id, user_id));"
	"CREATE INDEX share_user ON share(user_id, created_at);"
	"CREATE TABLE dir("
	" id INTEGER PRIMARY KEY,"
	" owner_id INTEGER NOT NULL REFERENCES user(id),"
	" path TEXT NOT NULL, parent TEXT NOT NULL,"
	" nfiles INTEGER NOT NULL DEFAULT 0,"
	" explicit INTEGER NOT NULL DEFAULT 0,"
	" mtime_ns INTEGER NOT NULL, UNIQUE(owner_id, path));"
	"CREATE INDEX dir_parent ON dir(owner_id, parent, path);"
	"CREATE TABLE xattr("
	" file_id INTEGER NOT NULL REFERENCES file(id) ON DELETE CASCADE,"
	" name TEXT NOT NULL, value BLOB NOT NULL,"
	" PRIMARY KEY(file_id, name)) WITHOUT ROWID;"
	"CREATE TABLE job("
	" id INTEGER PRIMARY KEY, kind INTEGER NOT NULL,"
	" file_id INTEGER REFERENCES file(id) ON DELETE CASCADE,"
	" state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
	" error TEXT, payload TEXT, lease_token TEXT, lease_until INTEGER,"
	" created_at INTEGER NOT NULL, started_at INTEGER,"
	" finished_at INTEGER);"
	"CREATE INDEX job_runnable ON job(state, kind, id);"
	"CREATE INDEX job_file ON job(file_id);"
	"CREATE TABLE change("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT, owner_id INTEGER,"
	" file_id INTEGER, dir TEXT, at INTEGER NOT NULL);"
	"CREATE TRIGGER change_file_ai AFTER INSERT ON file BEGIN"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (new.owner_id, new.id, new.dir, new.ctime_ns); END;"
	"CREATE TRIGGER change_file_au AFTER UPDATE ON file BEGIN"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (new.owner_id, new.id, new.dir, new.ctime_ns);"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" SELECT old.owner_id, old.id, old.dir, new.ctime_ns"
	" WHERE old.dir <> new.dir; END;"
	"CREATE TRIGGER change_share_ai AFTER INSERT ON share BEGIN"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (new.user_id, new.file_id, NULL, new.created_at); END;"
	"CREATE TRIGGER change_share_ad AFTER DELETE ON share BEGIN"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (old.user_id, old.file_id, NULL, old.created_at); "
	"END;" DIR_TRIGGERS;

/*
 * v2: a file that arrived second under a display name another live file
 * of its directory had keeps the mount's disambiguating suffix for good.
 */
static const char schema_v2[] =
	"ALTER TABLE file ADD COLUMN entry_suffix INTEGER NOT NULL DEFAULT 0;";

/*
 * v3: a file's access time of its own (NULL: its mtime), small contents
 * kept in their blob's row (data) instead of a file of blobs/, and the
 * store handle that made a change (origin; NULL for other programs).
 */
static const char schema_v3[] = "ALTER TABLE file ADD COLUMN atime_ns INTEGER;"
				"ALTER TABLE blob ADD COLUMN data BLOB;"
				"ALTER TABLE change ADD COLUMN origin INTEGER;";

/*
 * v4: the waveform peaks of a file's listening audio, made by the
 * listening-audio job beside the MP3 (la_sha256 names the MP3 they were
 * drawn from; audio made before v4 has none until it is made again);
 * and the web page's sign-in sessions, stored as SHA-256 hashes of their
 * tokens and tied to the API key that opened them.
 */
static const char schema_v4[] =
	"CREATE TABLE peaks("
	" file_id INTEGER PRIMARY KEY REFERENCES file(id) ON DELETE CASCADE,"
	" la_sha256 TEXT NOT NULL, sample_rate INTEGER NOT NULL,"
	" frames INTEGER NOT NULL, frames_per_peak INTEGER NOT NULL,"
	" data BLOB NOT NULL);"
	"CREATE TABLE session("
	" id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
	" hash BLOB NOT NULL UNIQUE,"
	" key_id INTEGER NOT NULL REFERENCES api_key(id),"
	" created_at INTEGER NOT NULL, idle_until INTEGER NOT NULL,"
	" expires_at INTEGER NOT NULL, revoked_at INTEGER);"
	"CREATE INDEX session_expires ON session(expires_at);";

/*
 * v5: directory ids are never used again (AUTOINCREMENT). The mount's
 * node ids are row ids: a new directory that took the id of a removed one
 * became, for the kernel, the old directory's inode, and a process inside
 * the old one (its cwd, an open fd) listed and created files in the new.
 */
static const char schema_v5[] =
	"CREATE TABLE dir_v5("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" owner_id INTEGER NOT NULL REFERENCES user(id),"
	" path TEXT NOT NULL, parent TEXT NOT NULL,"
	" nfiles INTEGER NOT NULL DEFAULT 0,"
	" explicit INTEGER NOT NULL DEFAULT 0,"
	" mtime_ns INTEGER NOT NULL, UNIQUE(owner_id, path));"
	"INSERT INTO dir_v5(id, owner_id, path, parent, nfiles, explicit,"
	" mtime_ns) SELECT id, owner_id, path, parent, nfiles, explicit,"
	" mtime_ns FROM dir;"
	"DROP TABLE dir;"
	"ALTER TABLE dir_v5 RENAME TO dir;"
	"CREATE INDEX dir_parent ON dir(owner_id, parent, path);" DIR_TRIGGERS;

/*
 * v6: user names become unique in a tenant, ignoring case. Of users
 * sharing a name, the first made keeps it and the others get " (xxxxxxxx)", the
 * start of their id, as same-named files do in a listing; the migration
 * logs each (see renamed_users). API keys note their last use.
 */
static const char schema_v6[] =
	"CREATE TEMP TABLE renamed_user AS SELECT u.id, u.uuid, u.name"
	" FROM user u WHERE EXISTS (SELECT 1 FROM user o"
	" WHERE o.tenant_id = u.tenant_id"
	" AND o.name = u.name COLLATE NOCASE AND o.id < u.id);"
	"UPDATE user SET name = name || ' (' || substr(uuid, 1, 8) || ')'"
	" WHERE id IN (SELECT id FROM temp.renamed_user);"
	"CREATE UNIQUE INDEX user_tenant_name ON user(tenant_id,"
	" name COLLATE NOCASE);"
	"ALTER TABLE api_key ADD COLUMN last_used_at INTEGER;";

/*
 * v7: a file's tags carry its owner, so that counting an owner's files
 * with a tag reads one index (query.c's tag_count) instead of looking up
 * every tagged file's row. Files never change owner.
 */
static const char schema_v7[] =
	"ALTER TABLE file_tag ADD COLUMN owner_id INTEGER NOT NULL DEFAULT 0;"
	"UPDATE file_tag SET owner_id ="
	" (SELECT f.owner_id FROM file f WHERE f.id = file_tag.file_id);"
	"CREATE INDEX file_tag_owner ON file_tag(owner_id, tag_id);";

/*
 * v8: a new file's row enters the full-text index of names later, in
 * bulk: its id waits in fts_pending (one page of an append-only table)
 * instead of FTS5 writing a segment of its own (three pages and a fifth
 * of the commit's work) at each commit of a create. The janitor indexes
 * what waits (query.c, sfsi_fts_catch_up), a search finds it with LIKE;
 * renames and deletes of a waiting row leave the index alone.
 */
static const char schema_v8[] =
	"CREATE TABLE IF NOT EXISTS fts_pending(id INTEGER PRIMARY KEY);"
	"DROP TRIGGER IF EXISTS file_fts_ai;"
	"DROP TRIGGER IF EXISTS file_fts_ad;"
	"DROP TRIGGER IF EXISTS file_fts_au;"
	"CREATE TRIGGER file_fts_ai AFTER INSERT ON file BEGIN"
	" INSERT INTO fts_pending(id) VALUES (new.id); END;"
	"CREATE TRIGGER file_fts_ad AFTER DELETE ON file BEGIN"
	" INSERT INTO file_fts(file_fts, rowid, name, filename)"
	" SELECT 'delete', old.id, old.name, old.filename"
	" WHERE NOT EXISTS(SELECT 1 FROM fts_pending WHERE id = old.id);"
	" DELETE FROM fts_pending WHERE id = old.id; END;"
	"CREATE TRIGGER file_fts_au AFTER UPDATE OF name, filename ON file"
	" WHEN NOT EXISTS(SELECT 1 FROM fts_pending WHERE id = old.id) BEGIN"
	" INSERT INTO file_fts(file_fts, rowid, name, filename)"
	" VALUES ('delete', old.id, old.name, old.filename);"
	" INSERT INTO file_fts(rowid, name, filename)"
	" VALUES (new.id, new.name, new.filename); END;";

/*
 * v9: the number of each owner's files with each tag (tag_count), kept
 * by triggers on file_tag in the transaction that changes the tags, so
 * that a listing driven by one tag reads its total from one row instead
 * of counting the tag's rows (query.c's tag_count). Derived data: made
 * again from file_tag here (whatever an older store holds), checked and
 * remade by fsck (sfsi_fsck_tag_counts).
 */
static const char schema_v9[] =
	"CREATE TABLE IF NOT EXISTS tag_count("
	" owner_id INTEGER NOT NULL, tag_id INTEGER NOT NULL,"
	" n INTEGER NOT NULL, PRIMARY KEY(owner_id, tag_id)) WITHOUT ROWID;"
	"DELETE FROM tag_count;"
	"INSERT INTO tag_count(owner_id, tag_id, n)"
	" SELECT owner_id, tag_id, COUNT(*) FROM file_tag"
	" GROUP BY owner_id, tag_id;"
	"DROP TRIGGER IF EXISTS tag_count_ai;"
	"DROP TRIGGER IF EXISTS tag_count_ad;"
	"DROP TRIGGER IF EXISTS tag_count_au;"
	"CREATE TRIGGER tag_count_ai AFTER INSERT ON file_tag BEGIN"
	" INSERT INTO tag_count(owner_id, tag_id, n)"
	" VALUES (new.owner_id, new.tag_id, 1)"
	" ON CONFLICT(owner_id, tag_id) DO UPDATE SET n = n + 1; END;"
	"CREATE TRIGGER tag_count_ad AFTER DELETE ON file_tag BEGIN"
	" UPDATE tag_count SET n = n - 1"
	" WHERE owner_id = old.owner_id AND tag_id = old.tag_id; END;"
	"CREATE TRIGGER tag_count_au AFTER UPDATE OF owner_id, tag_id"
	" ON file_tag BEGIN"
	" UPDATE tag_count SET n = n - 1"
	" WHERE owner_id = old.owner_id AND tag_id = old.tag_id;"
	" INSERT INTO tag_count(owner_id, tag_id, n)"
	" VALUES (new.owner_id, new.tag_id, 1)"
	" ON CONFLICT(owner_id, tag_id) DO UPDATE SET n = n + 1; END;";

/*
 * v10: a file's tags carry its creationDate and deletion mark too (kept by
 * a trigger when the file's change), and an index walks one owner's files
 * with one tag in the listings' default order: a page of a one-tag
 * listing reads its rows from there instead of walking all the owner's
 * files and probing each for the tag (query.c's tag_page). Derived data,
 * checked and made again by fsck (sfsi_fsck_tag_rows).
 */
static const char schema_v10[] =
	"ALTER TABLE file_tag ADD COLUMN created_at INTEGER NOT NULL DEFAULT "
	"0;"
	"ALTER TABLE file_tag ADD COLUMN is_deleted INTEGER NOT NULL DEFAULT "
	"0;"
	"UPDATE file_tag SET"
	" created_at = (SELECT f.created_at FROM file f"
	" WHERE f.id = file_tag.file_id),"
	" is_deleted = (SELECT f.is_deleted FROM file f"
	" WHERE f.id = file_tag.file_id);"
	"CREATE INDEX file_tag_page ON file_tag(owner_id, tag_id, is_deleted,"
	" created_at, file_id);"
	"CREATE TRIGGER file_tag_file_au AFTER UPDATE OF created_at, "
	"is_deleted"
	" ON file BEGIN"
	" UPDATE file_tag SET created_at = new.created_at,"
	" is_deleted = new.is_deleted WHERE file_id = new.id; END;";

/*
 * v11: a tag row's copies of its file's owner, creationDate and deletion
 * mark come from the database, whoever inserts the row: a process of an
 * older version (a mount still running beside an upgraded daemon) inserts
 * it without them (owner 0, created 0), and a one-tag page put such a
 * file at the oldest end until fsck --repair. tag_count_ai counts the row
 * as inserted and then makes good a row that differs from its file (one
 * lookup of the file per row set_tags inserted right): that UPDATE of
 * owner_id moves the count by tag_count_au, so the counters stay exact
 * (one trigger, so the order is its statements', not the triggers'). The
 * last UPDATE makes good the rows such processes left before.
 */
static const char schema_v11[] =
	"DROP TRIGGER IF EXISTS tag_count_ai;"
	"CREATE TRIGGER tag_count_ai AFTER INSERT ON file_tag BEGIN"
	" INSERT INTO tag_count(owner_id, tag_id, n)"
	" VALUES (new.owner_id, new.tag_id, 1)"
	" ON CONFLICT(owner_id, tag_id) DO UPDATE SET n = n + 1;"
	" UPDATE file_tag SET" TAG_ROW_FILL
	" WHERE file_id = new.file_id AND tag_id = new.tag_id"
	" AND " TAG_ROW_OFF("file_tag") "; END;" TAG_ROWS_MAKE_GOOD ";";

/*
 * v12: each file row carries its tag names (file.tagnames, TAG_NAMES_OF),
 * so that a listing's rows and a GET come with their tags without a
 * subquery per row. Kept by triggers on file_tag in the transaction that
 * changes the tags, whoever changes them (an older process too); checked
 * and made again by fsck (sfsi_fsck_tag_names). The copy changing is not
 * a change of the file for the change feed: the writer's own UPDATE of
 * the file (ctime) makes that row; change_file_au skips the triggers'
 * UPDATEs (only they change tagnames). The fill runs after it.
 */
#define TAGNAMES_SET(ID)                                                       \
	" UPDATE file SET tagnames = " TAG_NAMES_OF(ID) " WHERE id = " ID ";"
#define TAGNAMES_NEW TAGNAMES_SET("new.file_id")
#define TAGNAMES_OLD TAGNAMES_SET("old.file_id")
#define TAGNAMES_FILL                                                          \
	"UPDATE file SET tagnames = " TAG_NAMES_OF(                            \
		"file.id") " WHERE id IN (SELECT file_id FROM file_tag);"
static const char schema_v12[] =
	"ALTER TABLE file ADD COLUMN tagnames TEXT;"
	"DROP TRIGGER IF EXISTS change_file_au;"
	"CREATE TRIGGER change_file_au AFTER UPDATE ON file"
	" WHEN old.tagnames IS new.tagnames BEGIN"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (new.owner_id, new.id, new.dir, new.ctime_ns);"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" SELECT old.owner_id, old.id, old.dir, new.ctime_ns"
	" WHERE old.dir <> new.dir; END;" TAGNAMES_FILL
	"CREATE TRIGGER file_tagnames_ai AFTER INSERT ON file_tag"
	" BEGIN" TAGNAMES_NEW " END;"
	"CREATE TRIGGER file_tagnames_ad AFTER DELETE ON file_tag"
	" BEGIN" TAGNAMES_OLD " END;"
	"CREATE TRIGGER file_tagnames_au AFTER UPDATE OF file_id, tag_id"
	" ON file_tag BEGIN" TAGNAMES_OLD TAGNAMES_NEW " END;";

/*
 * v13: blobs in a table with row ids; (tenant_id, sha256) stays unique by
 * an index of its own. WITHOUT ROWID kept every column in the key's
 * b-tree, so a small content (up to blobs.inline_max, in `data`) filled
 * its interior pages as well: a few keys a page, a tree many levels
 * deep, and each lookup of a sha256 read most of them (the check before
 * a new content's insert: 25-40 us against 3-4 us so, 20,000 blobs of
 * 100 B - 4 KiB in SQLite's default page cache). Now the key's index
 * holds the keys and row ids only, and the rows (data last) sit in the
 * table's leaves. The row id is SQLite's own (no column names it), so the
 * table has PostgreSQL's columns, as every table does (test_schemas_agree).
 * The copy of the rows runs once, in the migration's transaction.
 */
static const char schema_v13[] =
	"CREATE TABLE blob_v13("
	" tenant_id INTEGER NOT NULL REFERENCES tenant(id),"
	" sha256 TEXT NOT NULL, size INTEGER NOT NULL,"
	" refs INTEGER NOT NULL, created_at INTEGER NOT NULL, data BLOB,"
	" UNIQUE(tenant_id, sha256));"
	"INSERT INTO blob_v13(tenant_id, sha256, size, refs, created_at,"
	" data) SELECT tenant_id, sha256, size, refs, created_at, data"
	" FROM blob ORDER BY tenant_id, sha256;"
	"DROP TABLE blob;"
	"ALTER TABLE blob_v13 RENAME TO blob;";

/*
 * v14: resumable uploads (upload.c): a session's row, on the daemon
 * (node: its store directory's id) whose staging/.uploads/ holds its
 * file, with the offset below which that file is on the disk (durable),
 * owned by the user who made it for one file, and its expiry.
 */
static const char schema_v14[] =
	"CREATE TABLE upload("
	" id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
	" node TEXT NOT NULL,"
	" tenant_id INTEGER NOT NULL REFERENCES tenant(id),"
	" user_id INTEGER NOT NULL REFERENCES user(id),"
	" file_id INTEGER NOT NULL REFERENCES file(id) ON DELETE CASCADE,"
	" durable INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
	"CREATE INDEX upload_tenant ON upload(tenant_id, expires_at);"
	"CREATE INDEX upload_node ON upload(node, expires_at);";

/* Forward migrations: migrations[v] takes a store from v to v + 1. */
static const char *const migrations[] = {
	[0] = schema_v1,   [1] = schema_v2,   [2] = schema_v3,
	[3] = schema_v4,   [4] = schema_v5,   [5] = schema_v6,
	[6] = schema_v7,   [7] = schema_v8,   [8] = schema_v9,
	[9] = schema_v10,  [10] = schema_v11, [11] = schema_v12,
	[12] = schema_v13, [13] = schema_v14,
};

/* After schema_v6: say which users were renamed, then forget them. */
static void renamed_users(sqlite3 *h)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(
		    h,
		    "SELECT r.uuid, r.name, u.name FROM"
		    " temp.renamed_user r JOIN user u ON u.id = r.id",
		    -1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			sfs_warn("db",
				 "user names are unique in a tenant now: user "
				 "%s '%s' is now '%s'",
				 (const char *)sqlite3_column_text(st, 0),
				 (const char *)sqlite3_column_text(st, 1),
				 (const char *)sqlite3_column_text(st, 2));
	sqlite3_finalize(st);
	sqlite3_exec(h, "DROP TABLE IF EXISTS temp.renamed_user", NULL, NULL,
		     NULL);
}

/* What a migration leaves to do in C (NULL: nothing). */
static void (*const after_migration[])(sqlite3 *h) = {
	[5] = renamed_users,
};

/* The schema's version of the database of `h` (0: a new database). */
static int schema_version(sqlite3 *h)
{
	sqlite3_stmt *st = NULL;
	int version = 0;

	if (sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return version;
}

/* One step, inside the migration's transaction: `version` to version + 1. */
static enum sfs_status migrate_step(sqlite3 *h, int version, struct sfs_err *e)
{
	char pragma[64];
	int rc;

	rc = sqlite3_exec(h, migrations[version], NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sfs_error("db", "migration to %d: %s", version + 1,
			  sqlite3_errmsg(h));
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"schema migration failed");
	}
	if ((size_t)version < ARRAY_SIZE(after_migration) &&
	    after_migration[version])
		after_migration[version](h);
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", version + 1);
	rc = sqlite3_exec(h, pragma, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sfsi_db_rc_status(NULL, rc, e, "migrate: version");
	sfs_info("db", "schema migrated to version %d", version + 1);
	return SFS_OK;
}

enum sfs_status sfsi_schema_migrate(sqlite3 *h, struct sfs_err *e)
{
	int version, rc;
	enum sfs_status ret = SFS_OK;

	rc = sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sfsi_db_rc_status(NULL, rc, e, "migrate: begin");
	version = schema_version(h);
	if (version > DB_SCHEMA_VERSION) {
		ret = sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
			       "the store's schema %d is newer than this "
			       "program's %d",
			       version, DB_SCHEMA_VERSION);
		goto out;
	}
	for (; version < DB_SCHEMA_VERSION; version++) {
		ret = migrate_step(h, version, e);
		if (ret)
			goto out;
	}
	rc = sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		ret = sfsi_db_rc_status(NULL, rc, e, "migrate: commit");
out:
	if (ret)
		sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}
