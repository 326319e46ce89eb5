/*
 * Tests of the store: init and open (errors, schema version, a newer
 * schema refused), configuration keys, the change feed seen from another
 * handle, the secret shared by handles, space and the test clock.
 *
 * About internals on purpose: a migration and the refusal of a newer
 * schema need a database of another version, made in SQL; the secret is
 * seen through the HMAC that signs with it (auth_i.h); and the statement
 * cache is the database layer's own (db_i.h).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "auth_i.h"
#include "db_i.h"
#include "speechfs/auth.h"
#include "speechfs/dir.h"
#include "speechfs/file.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/token.h"
#include "speechfs/util.h"
#include "fixture.h"
#include "testhelp.h"

/*
 * A new store on the metadata backend under test (SQLite, or with
 * SFS_DB_URL a schema of its own in PostgreSQL): handles opened later
 * without a configuration find it through the store's record.
 */
static enum sfs_status init_store(const char *dir, struct sfs_err *e)
{
	struct sfs_config c;

	sfs_config_init(&c);
	if (th_db_config(&c))
		return SFS_INVALID;
	return sfs_store_init_cfg(dir, &c, e);
}

static void test_init_open(void)
{
	char *dir = th_tmpdir(), sub[4096], path[4096];
	struct sfs_store *s = NULL;
	struct sfs_err e;
	struct stat sb;

	/* init makes missing parents */
	snprintf(sub, sizeof(sub), "%s/deep/store", dir);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_store_init(sub, &e), SFS_OK);
	snprintf(path, sizeof(path), "%s/speechfs.db", sub);
	CHECK(stat(path, &sb) == 0);
	snprintf(path, sizeof(path), "%s/blobs", sub);
	CHECK(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
	snprintf(path, sizeof(path), "%s/staging", sub);
	CHECK(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
	/* twice: a conflict, and the store is untouched */
	sfs_err_init(&e);
	CHECK_ST(sfs_store_init(sub, &e), SFS_CONFLICT);
	CHECK(e.message[0] != '\0');

	REQUIRE_ST(sfs_store_open(sub, NULL, &s, NULL), SFS_OK);
	CHECK(tfx_sql_int(s, "PRAGMA user_version") == DB_SCHEMA_VERSION);
	CHECK(tfx_sql_int(s, "PRAGMA foreign_keys") == 1);
	CHECK(tfx_sql_int(s, "SELECT count(*) FROM pragma_journal_mode"
			     " WHERE journal_mode = 'wal'") == 1);
	/* the directory is canonical */
	CHECK(sfs_store_dir(s)[0] == '/');
	CHECK(strstr(sfs_store_dir(s), "/deep/store") != NULL);
	CHECK(sfs_store_config(s)->retention_seconds == 30 * 24 * 3600);
	sfs_store_close(s);

	/* missing store */
	snprintf(path, sizeof(path), "%s/none", dir);
	sfs_err_init(&e);
	s = (struct sfs_store *)1;
	CHECK_ST(sfs_store_open(path, NULL, &s, &e), SFS_NOT_FOUND);
	CHECK(s == NULL);
	CHECK_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_NOT_FOUND);
	sfs_store_close(NULL);
	th_rmrf(dir);
}

/* The database holds the signing secret: only the owner may read it. */
static void test_init_modes(void)
{
	char *dir = th_tmpdir(), path[512];
	struct stat sb;

	REQUIRE_ST(sfs_store_init(dir, NULL), SFS_OK);
	CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	snprintf(path, sizeof(path), "%s/speechfs.db", dir);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	th_rmrf(dir);
}

/* A v1 store is migrated forward on open, its rows kept. */
static void test_migrate_v1(void)
{
	char *dir = th_tmpdir();
	struct sfs_store *s = NULL;

	REQUIRE_ST(sfs_store_init(dir, NULL), SFS_OK);
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	/* what schemas 2 to 8 added goes, as a store of schema 1 lacks it */
	CHECK(tfx_sql(s, DROP_V9_SQLITE
		      " ALTER TABLE file DROP COLUMN entry_suffix;"
		      " ALTER TABLE file DROP COLUMN atime_ns;"
		      " ALTER TABLE blob DROP COLUMN data;"
		      " ALTER TABLE change DROP COLUMN origin;"
		      " DROP TABLE peaks; DROP TABLE session;"
		      " DROP INDEX user_tenant_name;"
		      " ALTER TABLE api_key DROP COLUMN last_used_at;"
		      " DROP INDEX file_tag_owner;"
		      " ALTER TABLE file_tag DROP COLUMN owner_id;"
		      " PRAGMA user_version = 1") == 0);
	sfs_store_close(s);
	s = NULL;
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	CHECK(tfx_sql_int(s, "PRAGMA user_version") == DB_SCHEMA_VERSION);
	CHECK(tfx_sql_int(s, "SELECT count(*) FROM pragma_table_info('file')"
			     " WHERE name = 'entry_suffix'") == 1);
	CHECK(tfx_sql_int(s, "SELECT count(*) FROM sqlite_schema WHERE name IN"
			     " ('peaks', 'session', 'session_expires')") == 3);
	sfs_store_close(s);
	th_rmrf(dir);
}

/*
 * A v4 store's directories (ids that could be reused) move to v5 with
 * their ids, counts and change triggers; ids then only grow.
 */
static void test_migrate_v4_dirs(void)
{
	char *dir = th_tmpdir(), t[SFS_ID_SIZE];
	struct sfs_store *s = NULL;
	struct sfs_dir_info a, b;
	struct sfs_actor u;

	REQUIRE_ST(sfs_store_init(dir, NULL), SFS_OK);
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	REQUIRE(tfx_tenant(s, "t", 0, 0, t) == 0);
	REQUIRE(tfx_user(s, t, "u", NULL, &u) == 0);
	REQUIRE_ST(sfs_dir_make(s, &u, "/a/", NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_make(s, &u, "/b/", NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(s, &u, "/a/", &a, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(s, &u, "/b/", &b, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_remove(s, &u, "/b/", NULL), SFS_OK);
	/* the table as v1 to v4 made it: no AUTOINCREMENT */
	CHECK(tfx_sql(s,
		      "PRAGMA foreign_keys = OFF;" DROP_V9_SQLITE
		      " CREATE TABLE d4 AS SELECT * FROM dir; DROP TABLE dir;"
		      " CREATE TABLE dir(id INTEGER PRIMARY KEY,"
		      " owner_id INTEGER NOT NULL REFERENCES user(id),"
		      " path TEXT NOT NULL, parent TEXT NOT NULL,"
		      " nfiles INTEGER NOT NULL DEFAULT 0,"
		      " explicit INTEGER NOT NULL DEFAULT 0,"
		      " mtime_ns INTEGER NOT NULL, UNIQUE(owner_id, path));"
		      " INSERT INTO dir SELECT * FROM d4; DROP TABLE d4;"
		      " DELETE FROM sqlite_sequence WHERE name = 'dir';"
		      /* and without what v6 adds */
		      " DROP INDEX user_tenant_name;"
		      " ALTER TABLE api_key DROP COLUMN last_used_at;"
		      /* and v7 */
		      " DROP INDEX file_tag_owner;"
		      " ALTER TABLE file_tag DROP COLUMN owner_id;"
		      " PRAGMA user_version = 4") == 0);
	sfs_store_close(s);
	s = NULL;
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	CHECK(tfx_sql_int(s, "PRAGMA user_version") == DB_SCHEMA_VERSION);
	CHECK(tfx_sql_int(s,
			  "SELECT count(*) FROM sqlite_schema WHERE"
			  " name = 'dir' AND sql LIKE '%AUTOINCREMENT%'") == 1);
	CHECK(tfx_sql_int(s, "SELECT count(*) FROM sqlite_schema WHERE"
			     " type = 'trigger' AND tbl_name = 'dir'") == 3);
	CHECK(tfx_sql_int(s, "SELECT count(*) FROM sqlite_schema WHERE"
			     " name = 'dir_parent'") == 1);
	REQUIRE_ST(sfs_dir_stat(s, &u, "/a/", &b, NULL), SFS_OK);
	CHECK(b.ino == a.ino && b.explicit_);
	REQUIRE_ST(sfs_dir_make(s, &u, "/c/", NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(s, &u, "/c/", &b, NULL), SFS_OK);
	CHECK(b.ino > a.ino);
	CHECK(tfx_sql_int(s, "SELECT count(*) FROM change WHERE dir = '/'"
			     " AND at = (SELECT mtime_ns FROM dir"
			     " WHERE path = '/c/')") >= 1);
	sfs_store_close(s);
	th_rmrf(dir);
}

/*
 * v6 to v7, on both backends: the tags' rows get their file's owner, and
 * the index that counts them.
 */
static void test_migrate_v6_tag_owner(void)
{
	const char *tags[] = { "a", "b" };
	struct sfs_file_spec sp;
	struct sfs_actor u, v;
	struct sfs_file out;
	struct sfs_store *s = NULL;
	char *dir = NULL, t[SFS_ID_SIZE];
	int i;

	REQUIRE(tfx_store(&dir, &s, NULL) == 0);
	REQUIRE(tfx_tenant(s, "t", 0, 0, t) == 0);
	REQUIRE(tfx_user(s, t, "u", NULL, &u) == 0);
	REQUIRE(tfx_user(s, t, "v", NULL, &v) == 0);
	for (i = 0; i < 6; i++) {
		memset(&sp, 0, sizeof(sp));
		sp.name = i % 2 ? "odd" : "even";
		sp.path = "/";
		sp.tags = tags;
		sp.ntags = 1 + (size_t)(i % 2);
		REQUIRE_ST(sfs_file_create(s, i < 4 ? &u : &v, &sp, NULL, &out,
					   NULL),
			   SFS_OK);
		sfs_file_release(&out);
	}
	CHECK(tfx_sql(s, th_is_pg() ? DROP_V9_PG
				 " DROP INDEX file_tag_owner;"
				 " ALTER TABLE file_tag DROP COLUMN owner_id;"
				 " UPDATE schema_version SET version = 6"
				    : DROP_V9_SQLITE
				 " DROP INDEX file_tag_owner;"
				 " ALTER TABLE file_tag DROP COLUMN owner_id;"
				 " PRAGMA user_version = 6") == 0);
	sfs_store_close(s);
	s = NULL;
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	CHECK(tfx_sql_int(s, th_is_pg() ? "SELECT version FROM schema_version"
					: "PRAGMA user_version") ==
	      DB_SCHEMA_VERSION);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag") == 9);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag ft JOIN file f"
			     " ON f.id = ft.file_id"
			     " WHERE ft.owner_id = f.owner_id") == 9);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag WHERE owner_id"
			     " = (SELECT id FROM user WHERE name = 'v')") == 3);
	tfx_store_close(&dir, &s);
}

/*
 * v8 to v9, on both backends: each owner's files per tag are counted from
 * the tags' rows into tag_count, and its triggers count from then on.
 */
static void test_migrate_v8_tag_count(void)
{
	const char *tags[] = { "a", "b" };
	struct sfs_file_spec sp;
	struct sfs_actor u, v;
	struct sfs_file out;
	struct sfs_store *s = NULL;
	char *dir = NULL, t[SFS_ID_SIZE], sql[200];
	int i;

	REQUIRE(tfx_store(&dir, &s, NULL) == 0);
	REQUIRE(tfx_tenant(s, "t", 0, 0, t) == 0);
	REQUIRE(tfx_user(s, t, "u", NULL, &u) == 0);
	REQUIRE(tfx_user(s, t, "v", NULL, &v) == 0);
	memset(&sp, 0, sizeof(sp));
	sp.name = "f";
	sp.path = "/";
	sp.tags = tags;
	for (i = 0; i < 7; i++) {
		sp.ntags = 1 + (size_t)(i % 2);
		REQUIRE_ST(sfs_file_create(s, i < 5 ? &u : &v, &sp, NULL, &out,
					   NULL),
			   SFS_OK);
		sfs_file_release(&out);
	}
	CHECK(tfx_sql(s, th_is_pg() ? DROP_V9_PG
				 " UPDATE schema_version SET version = 8"
				    : DROP_V9_SQLITE
				 " PRAGMA user_version = 8") == 0);
	CHECK(tfx_sql_int(s, th_is_pg() ? "SELECT count(*) FROM pg_tables"
					  " WHERE tablename = 'tag_count' AND"
					  " schemaname = current_schema()"
					: "SELECT count(*) FROM sqlite_schema"
					  " WHERE name = 'tag_count'") == 0);
	sfs_store_close(s);
	s = NULL;
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	CHECK(tfx_sql_int(s, th_is_pg() ? "SELECT version FROM schema_version"
					: "PRAGMA user_version") ==
	      DB_SCHEMA_VERSION);
	snprintf(sql, sizeof(sql),
		 "SELECT c.n FROM tag_count c JOIN tag g ON g.id = c.tag_id"
		 " WHERE c.owner_id = %lld AND g.name = 'a'",
		 (long long)u.user);
	CHECK(tfx_sql_int(s, sql) == 5);
	CHECK(tfx_sql_int(s, "SELECT SUM(n) FROM tag_count") == 10);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM tag_count") == 4);
	/* and counted by the triggers from now on */
	REQUIRE_ST(sfs_file_create(s, &u, &sp, NULL, &out, NULL), SFS_OK);
	sfs_file_release(&out);
	CHECK(tfx_sql_int(s, sql) == 6);
	tfx_store_close(&dir, &s);
}

/*
 * v9 to v10, on both backends: the tags' rows get their file's creationDate
 * and deletion mark, the index of one-tag pages, and the trigger that
 * keeps them when the file is deleted or restored.
 */
static void test_migrate_v9_tag_rows(void)
{
	const char *tags[] = { "a", "b" };
	struct sfs_file_spec sp;
	struct sfs_actor u;
	struct sfs_file out;
	struct sfs_store *s = NULL;
	char *dir = NULL, t[SFS_ID_SIZE], id[SFS_ID_SIZE];
	static const char same[] =
		"SELECT COUNT(*) FROM file_tag ft JOIN file f"
		" ON f.id = ft.file_id WHERE ft.created_at = f.created_at"
		" AND ft.is_deleted = f.is_deleted";
	int i;

	REQUIRE(tfx_store(&dir, &s, NULL) == 0);
	REQUIRE(tfx_tenant(s, "t", 0, 0, t) == 0);
	REQUIRE(tfx_user(s, t, "u", NULL, &u) == 0);
	memset(&sp, 0, sizeof(sp));
	sp.name = "f";
	sp.path = "/";
	sp.tags = tags;
	for (i = 0; i < 4; i++) {
		sp.ntags = 1 + (size_t)(i % 2);
		REQUIRE_ST(sfs_file_create(s, &u, &sp, NULL, &out, NULL),
			   SFS_OK);
		snprintf(id, sizeof(id), "%s", out.id);
		sfs_file_release(&out);
	}
	REQUIRE_ST(sfs_file_delete(s, &u, id, 0, NULL), SFS_OK);
	CHECK(tfx_sql(s, th_is_pg() ? DROP_V10_PG
				 " UPDATE schema_version SET version = 9"
				    : DROP_V10_SQLITE
				 " PRAGMA user_version = 9") == 0);
	sfs_store_close(s);
	s = NULL;
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	CHECK(tfx_sql_int(s, th_is_pg() ? "SELECT version FROM schema_version"
					: "PRAGMA user_version") ==
	      DB_SCHEMA_VERSION);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag") == 6);
	CHECK(tfx_sql_int(s, same) == 6);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag"
			     " WHERE is_deleted = 1") == 2);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag"
			     " WHERE created_at = 0") == 0);
	/* kept from now on */
	REQUIRE_ST(sfs_file_restore(s, &u, id, NULL, NULL), SFS_OK);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag"
			     " WHERE is_deleted = 1") == 0);
	CHECK(tfx_sql_int(s, same) == 6);
	tfx_store_close(&dir, &s);
}

/* Rows of file_tag that differ from their file (-1: error). */
static int tag_rows_off(struct sfs_store *s)
{
	return tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag ft"
			      " JOIN file f ON f.id = ft.file_id"
			      " WHERE ft.owner_id <> f.owner_id"
			      " OR ft.created_at <> f.created_at"
			      " OR ft.is_deleted <> f.is_deleted");
}

/* Counters of tag_count that differ from file_tag's rows (-1: error). */
static int counters_off(struct sfs_store *s)
{
	return tfx_sql_int(
		s, "SELECT COUNT(*) FROM (SELECT c.owner_id FROM tag_count c"
		   " WHERE c.n <> (SELECT COUNT(*) FROM file_tag ft"
		   " WHERE ft.owner_id = c.owner_id AND ft.tag_id = c.tag_id)"
		   " UNION ALL SELECT ft.owner_id FROM file_tag ft"
		   " WHERE NOT EXISTS (SELECT 1 FROM tag_count c"
		   " WHERE c.owner_id = ft.owner_id"
		   " AND c.tag_id = ft.tag_id)) AS x");
}

/*
 * A process of an older version inserts tag rows as it knew them: without
 * their file's owner, creationDate and deletion mark (a mount still
 * running beside an upgraded daemon). The database fills them, and the
 * counters count the row under its file's owner.
 */
#define OLD_WRITER_TAGS(NAME, TAG)                                             \
	"INSERT INTO file_tag(file_id, tag_id) SELECT f.id, t.id"              \
	" FROM file f, tag t WHERE f.name = '" NAME "' AND t.name = '" TAG "'"

static void make_tagged(struct sfs_store *s, struct sfs_actor *u,
			const char *name, char id[SFS_ID_SIZE])
{
	const char *tags[] = { "a", "b" };
	struct sfs_file_spec sp;
	struct sfs_file out;

	memset(&sp, 0, sizeof(sp));
	sp.name = name;
	sp.path = "/";
	sp.tags = tags;
	sp.ntags = 1; /* "b" is known to the tenant, not on the file */
	REQUIRE_ST(sfs_file_create(s, u, &sp, NULL, &out, NULL), SFS_OK);
	snprintf(id, SFS_ID_SIZE, "%s", out.id);
	sfs_file_release(&out);
}

static void test_tag_rows_filled_by_the_database(void)
{
	struct sfs_actor u;
	struct sfs_store *s = NULL;
	char *dir = NULL, t[SFS_ID_SIZE], id[SFS_ID_SIZE], sql[200];
	const char *both[] = { "a", "b" };
	struct sfs_file_spec sp;
	struct sfs_file out;

	REQUIRE(tfx_store(&dir, &s, NULL) == 0);
	REQUIRE(tfx_tenant(s, "t", 0, 0, t) == 0);
	REQUIRE(tfx_user(s, t, "u", NULL, &u) == 0);
	memset(&sp, 0, sizeof(sp));
	sp.name = "known";
	sp.path = "/";
	sp.tags = both;
	sp.ntags = 2;
	REQUIRE_ST(sfs_file_create(s, &u, &sp, NULL, &out, NULL), SFS_OK);
	sfs_file_release(&out);
	make_tagged(s, &u, "old", id);
	make_tagged(s, &u, "gone", id);
	REQUIRE_ST(sfs_file_delete(s, &u, id, 0, NULL), SFS_OK);
	CHECK(tfx_sql(s, OLD_WRITER_TAGS("old", "b")) == 0);
	CHECK(tfx_sql(s, OLD_WRITER_TAGS("gone", "b")) == 0);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag") == 6);
	CHECK(tag_rows_off(s) == 0);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag"
			     " WHERE created_at = 0 OR owner_id = 0") == 0);
	CHECK(tfx_sql_int(s, "SELECT COUNT(*) FROM file_tag"
			     " WHERE is_deleted = 1") == 2);
	CHECK(counters_off(s) == 0);
	snprintf(sql, sizeof(sql),
		 "SELECT c.n FROM tag_count c JOIN tag g ON g.id = c.tag_id"
		 " WHERE c.owner_id = %lld AND g.name = 'b'",
		 (long long)u.user);
	CHECK(tfx_sql_int(s, sql) == 3);
	tfx_store_close(&dir, &s);
}

/*
 * v10 to v11, on both backends: the rows an older process inserted before
 * the upgrade are made good, and from then on the database fills them.
 */
static void test_migrate_v10_tag_fill(void)
{
	struct sfs_actor u;
	struct sfs_store *s = NULL;
	char *dir = NULL, t[SFS_ID_SIZE], id[SFS_ID_SIZE];

	REQUIRE(tfx_store(&dir, &s, NULL) == 0);
	REQUIRE(tfx_tenant(s, "t", 0, 0, t) == 0);
	REQUIRE(tfx_user(s, t, "u", NULL, &u) == 0);
	make_tagged(s, &u, "old", id);
	make_tagged(s, &u, "gone", id);
	REQUIRE_ST(sfs_file_delete(s, &u, id, 0, NULL), SFS_OK);
	CHECK(tfx_sql(s, "INSERT INTO tag(tenant_id, name)"
			 " SELECT id, 'b' FROM tenant") == 0);
	CHECK(tfx_sql(s, th_is_pg() ? DROP_V11_PG
				 " UPDATE schema_version SET version = 10"
				    : DROP_V11_SQLITE
				 " PRAGMA user_version = 10") == 0);
	/* schema 10 filled nothing: owner 0, created 0, not deleted */
	CHECK(tfx_sql(s, OLD_WRITER_TAGS("old", "b")) == 0);
	CHECK(tfx_sql(s, OLD_WRITER_TAGS("gone", "b")) == 0);
	CHECK(tag_rows_off(s) == 2);
	sfs_store_close(s);
	s = NULL;
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	CHECK(tfx_sql_int(s, th_is_pg() ? "SELECT version FROM schema_version"
					: "PRAGMA user_version") ==
	      DB_SCHEMA_VERSION);
	CHECK(tag_rows_off(s) == 0);
	CHECK(counters_off(s) == 0);
	CHECK(tfx_sql(s, "DELETE FROM file_tag WHERE tag_id ="
			 " (SELECT id FROM tag WHERE name = 'b')") == 0);
	CHECK(tfx_sql(s, OLD_WRITER_TAGS("old", "b")) == 0);
	CHECK(tag_rows_off(s) == 0);
	CHECK(counters_off(s) == 0);
	tfx_store_close(&dir, &s);
}

/*
 * v12 to v13 (SQLite): the blobs' WITHOUT ROWID table becomes a table
 * with row ids, every row kept (bytes, size, references), (tenant,
 * sha256) still unique, and the contents read and deduplicated as before.
 */
static void test_migrate_v12_blob_rows(void)
{
	struct sfs_actor u;
	struct sfs_store *s = NULL;
	char *dir = NULL, t[SFS_ID_SIZE], a[SFS_ID_SIZE], b[SFS_ID_SIZE];
	char c[SFS_ID_SIZE], sha[65], sha2[65], sql[256], got[64];
	size_t n = 0;

	if (th_is_pg())
		return; /* PostgreSQL's blob table is a heap: no change */
	REQUIRE(tfx_store(&dir, &s, NULL) == 0);
	REQUIRE(tfx_tenant(s, "t", 0, 0, t) == 0);
	REQUIRE(tfx_user(s, t, "u", NULL, &u) == 0);
	REQUIRE_ST(tfx_upload(s, &u, "a.txt", "same bytes", 10, a, sha),
		   SFS_OK);
	REQUIRE_ST(tfx_upload(s, &u, "b.txt", "same bytes", 10, b, NULL),
		   SFS_OK);
	REQUIRE_ST(tfx_upload(s, &u, "c.txt", "other", 5, c, sha2), SFS_OK);
	REQUIRE(tfx_blob_refs(s, u.tenant, sha) == 2);
	/* the table as v3 to v12 had it */
	CHECK(tfx_sql(s, "CREATE TABLE b12 AS SELECT tenant_id, sha256, size,"
			 " refs, created_at, data FROM blob; DROP TABLE blob;"
			 " CREATE TABLE blob("
			 " tenant_id INTEGER NOT NULL REFERENCES tenant(id),"
			 " sha256 TEXT NOT NULL, size INTEGER NOT NULL,"
			 " refs INTEGER NOT NULL, created_at INTEGER NOT NULL,"
			 " data BLOB, PRIMARY KEY(tenant_id, sha256))"
			 " WITHOUT ROWID; INSERT INTO blob SELECT * FROM b12;"
			 " DROP TABLE b12; " DROP_V14
			 "PRAGMA user_version = 12") == 0);
	CHECK(tfx_sql_int(s, "SELECT count(*) FROM sqlite_schema WHERE"
			     " name = 'blob' AND sql LIKE '%WITHOUT ROWID%'") ==
	      1);
	sfs_store_close(s);
	s = NULL;
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	CHECK(tfx_sql_int(s, "PRAGMA user_version") == DB_SCHEMA_VERSION);
	CHECK(tfx_sql_int(s, "SELECT count(*) FROM sqlite_schema WHERE"
			     " name = 'blob' AND sql LIKE '%WITHOUT ROWID%'") ==
	      0);
	CHECK(tfx_sql_int(s, "SELECT count(*) FROM blob") == 2);
	CHECK(tfx_blob_refs(s, u.tenant, sha) == 2);
	CHECK(tfx_blob_refs(s, u.tenant, sha2) == 1);
	snprintf(sql, sizeof(sql),
		 "SELECT size FROM blob WHERE sha256 = '%s'"
		 " AND data = CAST('other' AS BLOB)",
		 sha2);
	CHECK(tfx_sql_int(s, sql) == 5);
	CHECK(tfx_read(s, &u, b, SFS_CONTENT_ORIGINAL, got, sizeof(got), &n) ==
		      SFS_OK &&
	      n == 10 && !memcmp(got, "same bytes", 10));
	/* one row per (tenant, sha256), as the key made it */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO blob(tenant_id, sha256, size, refs, created_at)"
		 " VALUES (%lld, '%s', 5, 1, 0)",
		 (long long)u.tenant, sha2);
	CHECK(tfx_sql(s, "%s", sql) != 0);
	/* the same bytes again: one more reference, no new row */
	REQUIRE_ST(tfx_upload(s, &u, "d.txt", "other", 5, c, NULL), SFS_OK);
	CHECK(tfx_blob_refs(s, u.tenant, sha2) == 2);
	CHECK(tfx_sql_int(s, "SELECT count(*) FROM blob") == 2);
	CHECK(tfx_fsck_lines(s, 0, NULL) == 0);
	tfx_store_close(&dir, &s);
}

static void test_bad_database(void)
{
	char *dir = th_tmpdir(), path[4096];
	struct sfs_store *s = NULL;
	struct sfs_err e;
	int fd;

	REQUIRE_ST(sfs_store_init(dir, NULL), SFS_OK);
	/* a schema newer than this program is refused, not touched */
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	CHECK(tfx_sql(s, "PRAGMA user_version = 99") == 0);
	sfs_store_close(s);
	s = NULL;
	sfs_err_init(&e);
	CHECK_ST(sfs_store_open(dir, NULL, &s, &e), SFS_UNSUPPORTED);
	CHECK(s == NULL);
	th_rmrf(dir);

	/* garbage where the database should be */
	dir = th_tmpdir();
	REQUIRE_ST(sfs_store_init(dir, NULL), SFS_OK);
	snprintf(path, sizeof(path), "%s/speechfs.db", dir);
	fd = open(path, O_WRONLY | O_TRUNC);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, "this is not a database, not at all. ", 36) == 36);
	close(fd);
	snprintf(path, sizeof(path), "%s/speechfs.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/speechfs.db-shm", dir);
	unlink(path);
	sfs_err_init(&e);
	CHECK(sfs_store_open(dir, NULL, &s, &e) != SFS_OK);
	CHECK(s == NULL);
	th_rmrf(dir);
}

static void test_config(void)
{
	struct sfs_config c;
	struct sfs_err e;
	char long_val[600];

	sfs_config_init(&c);
	CHECK(c.retention_seconds == 30 * 24 * 3600);
	CHECK(c.sync_full == 1 && c.la_bitrate_kbps == 48 &&
	      c.la_sample_rate == 22050 && c.la_channels == 1);
	CHECK(c.busy_timeout_ms > 0 && c.job_lease_seconds > 0);

	CHECK_ST(sfs_config_set(&c, "retention_seconds", "60", NULL), SFS_OK);
	CHECK(c.retention_seconds == 60);
	CHECK_ST(sfs_config_set(&c, "retention_seconds", "0", NULL), SFS_OK);
	CHECK(c.retention_seconds == 0);
	CHECK_ST(sfs_config_set(&c, "listening.bitrate_kbps", "64", NULL),
		 SFS_OK);
	CHECK(c.la_bitrate_kbps == 64);
	CHECK_ST(sfs_config_set(&c, "db.sync_full", "false", NULL), SFS_OK);
	CHECK(c.sync_full == 0);
	CHECK_ST(sfs_config_set(&c, "listening.vbr", "true", NULL), SFS_OK);
	CHECK(c.la_vbr == 1);
	CHECK_ST(sfs_config_set(&c, "import.allow", "127.0.0.1,::1", NULL),
		 SFS_OK);
	CHECK(!strcmp(c.import_allow, "127.0.0.1,::1"));
	CHECK_ST(sfs_config_set(&c, "import.max_bytes", "1048576", NULL),
		 SFS_OK);
	CHECK(c.import_max_bytes == 1048576);
	CHECK_ST(sfs_config_set(&c, "jobs.workers", "3", NULL), SFS_OK);
	CHECK(c.workers == 3);

	/* invalid values name the key and change nothing */
#define BADV(key, val)                                                         \
	do {                                                                   \
		struct sfs_config before_ = c;                                 \
		sfs_err_init(&e);                                              \
		CHECK_ST(sfs_config_set(&c, key, val, &e), SFS_INVALID);       \
		CHECK(e.nfields == 1 && !strcmp(e.fields[0].field, key));      \
		CHECK(!memcmp(&before_, &c, sizeof(c)));                       \
	} while (0)
	BADV("retention_seconds", "-1");
	BADV("retention_seconds", "ten");
	BADV("retention_seconds", "10s");
	BADV("retention_seconds", "");
	BADV("listening.bitrate_kbps", "7");
	BADV("listening.bitrate_kbps", "321");
	BADV("listening.channels", "3");
	BADV("jobs.workers", "99999999999999999999");
	BADV("db.sync_full", "maybe");
	memset(long_val, 'h', sizeof(long_val) - 1);
	long_val[sizeof(long_val) - 1] = '\0';
	BADV("import.allow", long_val);
#undef BADV
	/* unknown keys: not found, so a front end may try its own */
	sfs_err_init(&e);
	CHECK_ST(sfs_config_set(&c, "no.such.key", "1", &e), SFS_NOT_FOUND);
	CHECK_ST(sfs_config_set(&c, "Retention_Seconds", "1", NULL),
		 SFS_NOT_FOUND);
}

static void test_config_applies(void)
{
	char *dir = th_tmpdir(), t[SFS_ID_SIZE], u[SFS_ID_SIZE];
	struct sfs_file_spec sp = { .name = "f" };
	struct sfs_store *s = NULL;
	struct sfs_config c;
	struct sfs_actor a;
	struct sfs_file out, g;

	sfs_config_init(&c);
	REQUIRE_ST(sfs_config_set(&c, "retention_seconds", "120", NULL),
		   SFS_OK);
	REQUIRE_ST(sfs_config_set(&c, "db.sync_full", "0", NULL), SFS_OK);
	REQUIRE_ST(init_store(dir, NULL), SFS_OK);
	REQUIRE_ST(sfs_store_open(dir, &c, &s, NULL), SFS_OK);
	/* the handle keeps its own copy */
	c.retention_seconds = 5;
	CHECK(sfs_store_config(s)->retention_seconds == 120);
	/* NORMAL: SQLite's setting (PostgreSQL's commits are its server's) */
	if (!th_is_pg())
		CHECK(tfx_sql_int(s, "PRAGMA synchronous") == 1);
	REQUIRE_ST(sfs_tenant_create(s, "t", 0, 0, t, NULL), SFS_OK);
	REQUIRE_ST(sfs_user_create(s, t, "u", -1, u, NULL), SFS_OK);
	REQUIRE_ST(sfs_auth_user(s, u, SFS_SCOPE_ALL, &a, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_create(s, &a, &sp, NULL, &out, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_delete(s, &a, out.id, 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(s, &a, out.id, &g, NULL), SFS_OK);
	CHECK(g.purge_at - g.deleted_at == 120 * 1000);
	sfs_file_release(&g);
	sfs_file_release(&out);
	sfs_store_close(s);
	th_rmrf(dir);
}

struct seen {
	int n;
	int64_t last_seq;
	int64_t file_ino;
	int64_t owner;
	int dir_changes;
	char dir[64];
};

static void on_change(void *arg, int64_t seq, int64_t file_ino, int64_t owner,
		      const char *dir)
{
	struct seen *w = arg;

	if (seq <= w->last_seq)
		w->n = -1000; /* not in order */
	w->last_seq = seq;
	w->n++;
	if (file_ino) {
		w->file_ino = file_ino;
		w->owner = owner;
		sfs_strlcpy(w->dir, dir ? dir : "", sizeof(w->dir));
	} else {
		w->dir_changes++;
	}
}

static void test_change_feed(void)
{
	char *dir = th_tmpdir(), t[SFS_ID_SIZE], u[SFS_ID_SIZE];
	struct sfs_file_spec sp = { .name = "f", .path = "/in/" };
	struct sfs_file_update up = { .set = SFS_UPD_NAME, .name = "g" };
	struct sfs_store *s1 = NULL, *s2 = NULL;
	struct seen w;
	struct sfs_actor a;
	struct sfs_file out;
	int64_t seq0 = -1, seq1 = -1, seq2 = -1, last = -1;

	REQUIRE_ST(init_store(dir, NULL), SFS_OK);
	REQUIRE_ST(sfs_store_open(dir, NULL, &s1, NULL), SFS_OK);
	REQUIRE_ST(sfs_store_open(dir, NULL, &s2, NULL), SFS_OK);
	REQUIRE_ST(sfs_tenant_create(s2, "t", 0, 0, t, NULL), SFS_OK);
	REQUIRE_ST(sfs_user_create(s2, t, "u", -1, u, NULL), SFS_OK);
	REQUIRE_ST(sfs_auth_user(s2, u, SFS_SCOPE_ALL, &a, NULL), SFS_OK);
	CHECK_ST(sfs_store_change_seq(s1, &seq0, NULL), SFS_OK);
	CHECK(seq0 >= 0);

	/* a file made through the other handle */
	REQUIRE_ST(sfs_file_create(s2, &a, &sp, NULL, &out, NULL), SFS_OK);
	CHECK_ST(sfs_store_change_seq(s1, &seq1, NULL), SFS_OK);
	CHECK(seq1 > seq0);
	memset(&w, 0, sizeof(w));
	w.last_seq = seq0;
	CHECK_ST(sfs_store_changes(s1, seq0, on_change, &w, &last, NULL),
		 SFS_OK);
	CHECK(w.n >= 1 && last == seq1);
	CHECK(w.file_ino == out.ino && w.owner == a.user);
	CHECK(!strcmp(w.dir, "/in/"));
	/* the new directory showed up as a directory change too */
	CHECK(w.dir_changes >= 1);

	/* nothing new: nothing seen, last stays */
	memset(&w, 0, sizeof(w));
	w.last_seq = seq1;
	CHECK_ST(sfs_store_changes(s1, seq1, on_change, &w, &last, NULL),
		 SFS_OK);
	CHECK(w.n == 0 && last == seq1);

	/* an update, a delete and a mkdir are each seen */
	REQUIRE_ST(sfs_file_update(s2, &a, out.id, &up, NULL, NULL), SFS_OK);
	CHECK_ST(sfs_store_change_seq(s1, &seq2, NULL), SFS_OK);
	CHECK(seq2 > seq1);
	REQUIRE_ST(sfs_file_delete(s2, &a, out.id, 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_make(s2, &a, "/made/", NULL), SFS_OK);
	memset(&w, 0, sizeof(w));
	w.last_seq = seq1;
	CHECK_ST(sfs_store_changes(s1, seq1, on_change, &w, &last, NULL),
		 SFS_OK);
	CHECK(w.n >= 3 && w.file_ino == out.ino && w.dir_changes >= 1);
	CHECK(last > seq2);
	sfs_file_release(&out);
	sfs_store_close(s2);
	sfs_store_close(s1);
	th_rmrf(dir);
}

static void test_secret_space_clock(void)
{
	char *dir = th_tmpdir(), h1[65], h2[65], h3[65];
	struct sfs_store *s1 = NULL, *s2 = NULL;
	uint64_t total = 0, avail = 0;
	int64_t t0, t1;

	REQUIRE_ST(init_store(dir, NULL), SFS_OK);
	REQUIRE_ST(sfs_store_open(dir, NULL, &s1, NULL), SFS_OK);
	REQUIRE_ST(sfs_store_open(dir, NULL, &s2, NULL), SFS_OK);
	/* one secret per store, the same for every handle */
	CHECK_ST(sfsi_hmac_sign(s1, "msg", h1, NULL), SFS_OK);
	CHECK_ST(sfsi_hmac_sign(s2, "msg", h2, NULL), SFS_OK);
	CHECK(!strcmp(h1, h2));
	CHECK_ST(sfsi_hmac_sign(s2, "other", h3, NULL), SFS_OK);
	CHECK(strcmp(h1, h3) != 0);
	CHECK(sfsi_hmac_verify(s1, "msg", h2));
	CHECK(!sfsi_hmac_verify(s1, "other", h2));

	CHECK_ST(sfs_store_space(s1, &total, &avail, NULL), SFS_OK);
	CHECK(total > 0 && avail <= total);

	t0 = sfs_now_ms();
	sfs_set_clock_offset_ms(3600 * 1000);
	t1 = sfs_now_ms();
	sfs_set_clock_offset_ms(0);
	CHECK(t1 - t0 >= 3600 * 1000 && t1 - t0 < 3600 * 1000 + 5000);
	CHECK(sfs_now_ms() - t0 < 5000);
	sfs_store_close(s2);
	sfs_store_close(s1);

	/* a second store has another secret */
	{
		char *dir2 = th_tmpdir();

		REQUIRE_ST(init_store(dir2, NULL), SFS_OK);
		REQUIRE_ST(sfs_store_open(dir2, NULL, &s1, NULL), SFS_OK);
		CHECK_ST(sfsi_hmac_sign(s1, "msg", h3, NULL), SFS_OK);
		CHECK(strcmp(h1, h3) != 0);
		sfs_store_close(s1);
		th_rmrf(dir2);
	}
	th_rmrf(dir);
}

/*
 * A long-lived connection ends up preparing every statement of the core
 * (well over a hundred, and growing): its cache must hold them all.
 */
static void test_statement_cache(void)
{
	static char sql[300][48];
	char *dir = th_tmpdir();
	struct sfs_store *s = NULL;
	struct db *d = NULL;
	struct db_stmt *st;
	int i, bad = 0;

	REQUIRE_ST(init_store(dir, NULL), SFS_OK);
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	REQUIRE_ST(sfsi_db_get(s, &d, NULL), SFS_OK);
	for (i = 0; i < 300; i++) {
		snprintf(sql[i], sizeof(sql[i]), "SELECT %d", i);
		st = sfsi_db_prep(d, sql[i], NULL);
		if (!st || sfsi_db_step(st, NULL) != 1 ||
		    sfsi_db_col_int(st, 0) != i)
			bad++;
		if (st)
			sfsi_db_reset(st);
	}
	CHECK(bad == 0);
	/* and each is found again, still answering for its own text */
	for (i = 0, bad = 0; i < 300; i++) {
		st = sfsi_db_prep(d, sql[i], NULL);
		if (!st || sfsi_db_step(st, NULL) != 1 ||
		    sfsi_db_col_int(st, 0) != i)
			bad++;
		if (st)
			sfsi_db_reset(st);
	}
	CHECK(bad == 0);
	sfsi_db_put(d);
	sfs_store_close(s);
	th_rmrf(dir);
}

/* db.url takes a PostgreSQL URL, db.schema a plain lower-case name. */
static void test_db_config(void)
{
	struct sfs_config c;

	sfs_config_init(&c);
	CHECK(c.db_url[0] == '\0' && c.db_schema[0] == '\0');
	CHECK_ST(sfs_config_set(&c, "db.url", "mysql://h/db", NULL),
		 SFS_INVALID);
	CHECK_ST(sfs_config_set(&c, "db.url", "speechfs.db", NULL),
		 SFS_INVALID);
	CHECK(c.db_url[0] == '\0');
	CHECK_ST(sfs_config_set(&c, "db.url", "postgresql://h:5432/db", NULL),
		 SFS_OK);
	CHECK(!strcmp(c.db_url, "postgresql://h:5432/db"));
	CHECK_ST(sfs_config_set(&c, "db.url", "postgres:///db?host=/s", NULL),
		 SFS_OK);
	CHECK_ST(sfs_config_set(&c, "db.url", "", NULL), SFS_OK);
	CHECK(c.db_url[0] == '\0');
	CHECK_ST(sfs_config_set(&c, "db.schema", "Store", NULL), SFS_INVALID);
	CHECK_ST(sfs_config_set(&c, "db.schema", "a-b", NULL), SFS_INVALID);
	CHECK_ST(sfs_config_set(&c, "db.schema", "1st", NULL), SFS_INVALID);
	CHECK_ST(sfs_config_set(&c, "db.schema", "a\"; DROP", NULL),
		 SFS_INVALID);
	CHECK_ST(sfs_config_set(&c, "db.schema", "team_2", NULL), SFS_OK);
	CHECK(!strcmp(c.db_schema, "team_2"));
}

/*
 * Where a store's metadata are: speechfs.db, or (db.url at init) the
 * database recorded in STORE/db.url, which later handles follow and a
 * configuration naming another database may not override.
 */
static void test_db_record(void)
{
	char *dir = th_tmpdir(), *dir2 = th_tmpdir(), path[4096];
	char t[SFS_ID_SIZE], t2[SFS_ID_SIZE];
	struct sfs_store *s = NULL;
	struct sfs_config c;
	struct sfs_tenant_info ti;
	struct sfs_err e;
	struct stat sb;

	sfs_config_init(&c);
	REQUIRE(th_db_config(&c) == 0);
	REQUIRE_ST(sfs_store_init_cfg(dir, &c, NULL), SFS_OK);
	snprintf(path, sizeof(path), "%s/db.url", dir);
	if (!th_is_pg()) {
		/* SQLite: the database is the file, and nothing else */
		CHECK(stat(path, &sb) < 0);
		snprintf(path, sizeof(path), "%s/speechfs.db", dir);
		CHECK(stat(path, &sb) == 0);
		/* a configuration naming PostgreSQL does not take it over */
		REQUIRE_ST(sfs_config_set(&c, "db.url", "postgresql:///nowhere",
					  NULL),
			   SFS_OK);
		sfs_err_init(&e);
		CHECK_ST(sfs_store_open(dir, &c, &s, &e), SFS_CONFLICT);
		CHECK(s == NULL && strstr(e.message, "speechfs.db"));
		goto out;
	}
	/* PostgreSQL: a record the owner alone reads, no speechfs.db */
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	snprintf(path, sizeof(path), "%s/speechfs.db", dir);
	CHECK(stat(path, &sb) < 0);
	/* opened without a configuration, the store is the same one */
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	REQUIRE_ST(sfs_tenant_create(s, "t", 0, 0, t, NULL), SFS_OK);
	CHECK(tfx_sql_int(s, "SELECT version FROM schema_version") ==
	      DB_SCHEMA_VERSION);
	sfs_store_close(s);
	s = NULL;
	REQUIRE_ST(sfs_store_open(dir, NULL, &s, NULL), SFS_OK);
	CHECK_ST(sfs_tenant_get(s, t, &ti, NULL), SFS_OK);
	sfs_store_close(s);
	s = NULL;
	/* a configuration naming another schema is refused */
	{
		struct sfs_config other = c;

		REQUIRE_ST(
			sfs_config_set(&other, "db.schema", "elsewhere", NULL),
			SFS_OK);
		sfs_err_init(&e);
		CHECK_ST(sfs_store_open(dir, &other, &s, &e), SFS_CONFLICT);
		CHECK(s == NULL && e.message[0]);
	}
	/* a second store cannot be made in a schema that holds one */
	sfs_err_init(&e);
	CHECK_ST(sfs_store_init_cfg(dir2, &c, &e), SFS_CONFLICT);
	snprintf(path, sizeof(path), "%s/db.url", dir2);
	CHECK(stat(path, &sb) < 0);
	/* in a schema of its own it can, and its tenants are apart */
	REQUIRE(th_db_config(&c) == 0);
	REQUIRE_ST(sfs_store_init_cfg(dir2, &c, NULL), SFS_OK);
	REQUIRE_ST(sfs_store_open(dir2, NULL, &s, NULL), SFS_OK);
	CHECK_ST(sfs_tenant_get(s, t, &ti, NULL), SFS_NOT_FOUND);
	REQUIRE_ST(sfs_tenant_create(s, "t", 0, 0, t2, NULL), SFS_OK);
	CHECK(strcmp(t, t2) != 0);
out:
	sfs_store_close(s);
	th_rmrf(dir);
	th_rmrf(dir2);
}

struct blocked {
	struct sfs_store *s;
	struct sfs_actor a;
	char id[SFS_ID_SIZE];
	enum sfs_status st;
	int done; /* atomic */
};

static void *get_blocked(void *arg)
{
	struct blocked *b = arg;
	struct sfs_file f;
	struct sfs_err e;

	sfs_err_init(&e);
	b->st = sfs_file_get(b->s, &b->a, b->id, &f, &e);
	if (!b->st)
		sfs_file_release(&f);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Sessions of the store's database waiting for a lock (PostgreSQL). */
static int64_t lock_waiters(struct db *d)
{
	struct db_stmt *st = sfsi_db_prep(
		d,
		"SELECT count(*) FROM pg_stat_activity WHERE datname ="
		" current_database() AND wait_event_type = 'Lock'",
		NULL);
	int64_t n = -1;

	if (st && sfsi_db_step(st, NULL) == 1)
		n = sfsi_db_col_int(st, 0);
	if (st)
		sfsi_db_reset(st);
	return n;
}

/*
 * sfs_store_interrupt: a read waiting in PostgreSQL for a lock held by
 * another session (as a daemon's request can wait at its stop) returns
 * SFS_BUSY at once, and the store goes on working; on SQLite there is
 * nothing to interrupt.
 */
static void test_interrupt(void)
{
	struct tfx_one f;
	struct blocked b;
	struct sfs_file got;
	struct db *lk = NULL, *q = NULL;
	pthread_t th;
	char buf[64];
	int64_t t0;

	memset(&b, 0, sizeof(b));
	REQUIRE(!tfx_one_open(&f, NULL));
	REQUIRE_ST(sfs_auth_user(f.s, f.user, SFS_SCOPE_ALL, &b.a, NULL),
		   SFS_OK);
	tfx_fill(buf, sizeof(buf), 7);
	REQUIRE_ST(tfx_upload(f.s, &b.a, "held", buf, sizeof(buf), b.id, NULL),
		   SFS_OK);
	b.s = f.s;
	if (!th_is_pg()) {
		CHECK(!sfs_store_is_shared(f.s));
		CHECK(sfs_store_interrupt(f.s) == 0);
		tfx_one_close(&f);
		return;
	}
	REQUIRE_ST(sfsi_db_get(f.s, &lk, NULL), SFS_OK);
	REQUIRE_ST(sfsi_db_get(f.s, &q, NULL), SFS_OK);
	REQUIRE_ST(sfsi_db_exec(lk,
				"BEGIN; LOCK TABLE file IN ACCESS EXCLUSIVE "
				"MODE",
				NULL),
		   SFS_OK);
	REQUIRE(!pthread_create(&th, NULL, get_blocked, &b));
	t0 = sfs_mono_ns();
	while (lock_waiters(q) < 1 && sfs_mono_ns() - t0 < 30000000000LL)
		usleep(10000);
	CHECK(lock_waiters(q) >= 1);
	CHECK(!__atomic_load_n(&b.done, __ATOMIC_ACQUIRE));
	/*
	 * Only the waiting session is asked: lk (idle in its transaction)
	 * and q (idle) are not, nor the sessions in the pool. A cancel sent
	 * to an idle session could land on its next statement: the read
	 * below failed so at CI under load.
	 */
	CHECK(sfs_store_interrupt(f.s) == 1);
	t0 = sfs_mono_ns();
	while (!__atomic_load_n(&b.done, __ATOMIC_ACQUIRE) &&
	       sfs_mono_ns() - t0 < 30000000000LL)
		usleep(10000);
	CHECK(__atomic_load_n(&b.done, __ATOMIC_ACQUIRE));
	/* released in any case, so that the thread ends */
	CHECK_ST(sfsi_db_exec(lk, "ROLLBACK", NULL), SFS_OK);
	pthread_join(th, NULL);
	CHECK_ST(b.st, SFS_BUSY);
	sfsi_db_put(q);
	sfsi_db_put(lk);
	/* the sessions go on: the same read answers */
	CHECK_ST(sfs_file_get(f.s, &b.a, b.id, &got, NULL), SFS_OK);
	sfs_file_release(&got);
	tfx_one_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_init_open);
	RUN(test_init_modes);
	RUN(test_migrate_v1);
	RUN(test_migrate_v4_dirs);
	RUN(test_migrate_v6_tag_owner);
	RUN(test_migrate_v8_tag_count);
	RUN(test_migrate_v9_tag_rows);
	RUN(test_migrate_v10_tag_fill);
	RUN(test_migrate_v12_blob_rows);
	RUN(test_tag_rows_filled_by_the_database);
	RUN(test_bad_database);
	RUN(test_config);
	RUN(test_config_applies);
	RUN(test_change_feed);
	RUN(test_secret_space_clock);
	RUN(test_statement_cache);
	RUN(test_db_config);
	RUN(test_db_record);
	RUN(test_interrupt);
	return th_report();
}
