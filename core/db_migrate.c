/*
 * Moving a store's metadata from its SQLite file into PostgreSQL
 * (`speechfsd db migrate --to postgresql://…`): every table copied in
 * primary-key order, in chunks that commit one by one, so that a run
 * stopped anywhere resumes after the last chunk that reached the target;
 * then counts and checksums compared table by table, the tables
 * vacuumed and analyzed (as after a restore), and only then the store
 * switched (STORE/db.url written, speechfs.db set aside).
 *
 * The target is a schema of its own, made at this program's version by
 * the PostgreSQL backend. The store's secret is the last row copied: a
 * schema without it is a copy under way (resumed), a schema with the
 * source's secret is a copy to verify, and a schema with another secret
 * holds another store (refused). The store's triggers (the change
 * feed's, the tag counts') are off on the target while rows are copied
 * (the feed and the counts are copied as they are, and verified as every
 * table is) and identity sequences are moved past the copied ids before
 * the switch.
 *
 * The source is held with SQLite's write lock for the whole run: nothing
 * can change it between the copy and the check (a daemon or mount that
 * writes meanwhile waits, then fails busy; stop them first).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "auth_i.h"
#include "db_i.h"
#include "speechfs/log.h"
#include "store_i.h"
#include "util_i.h"

#define CHUNK 1000 /* rows per committed chunk */
#define MAX_COLS 64
#define MAX_PK 4
#define SQL_MAX 4096

/* Parents before children (foreign keys); the secret's table last. */
static const char *const tables[] = {
	"tenant",   "user",	 "api_key", "blob",   "file",	 "tag",
	"file_tag", "tag_count", "share",   "dir",    "xattr",	 "job",
	"change",   "peaks",	 "session", "upload", "setting",
};

enum coltype { C_INT, C_REAL, C_TEXT, C_BLOB };

struct table {
	const char *name;
	int ncols, npk;
	char col[MAX_COLS][64];
	enum coltype type[MAX_COLS];
	int pk[MAX_PK]; /* indexes into col */
	char cols[SQL_MAX];
	char order[256];
};

/* ---- the target's catalogue ------------------------------------------- */

static enum coltype type_of(const char *pg)
{
	if (!strcmp(pg, "bigint") || !strcmp(pg, "integer") ||
	    !strcmp(pg, "smallint") || !strcmp(pg, "boolean"))
		return C_INT;
	if (!strcmp(pg, "double precision") || !strcmp(pg, "real"))
		return C_REAL;
	if (!strcmp(pg, "bytea"))
		return C_BLOB;
	return C_TEXT;
}

/* A table's columns and primary key, from the target's catalogue. */
static enum sfs_status describe(struct db *dst, const char *name,
				struct table *t, struct sfs_err *e)
{
	struct db_stmt *st;
	char qname[72];
	size_t n = 0, m = 0;
	int rc, i;

	memset(t, 0, sizeof(*t));
	t->name = name;
	snprintf(qname, sizeof(qname), "\"%s\"", name);
	st = sfsi_db_prep(
		dst,
		"SELECT attname, format_type(atttypid, NULL)"
		" FROM pg_attribute WHERE attrelid = to_regclass(?1)"
		" AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
		e);
	if (!st)
		return e ? e->status : SFS_IO;
	sfsi_db_bind_text(st, 1, qname);
	while ((rc = sfsi_db_step(st, e)) == 1 && t->ncols < MAX_COLS) {
		sfs_strlcpy(t->col[t->ncols], sfsi_db_col_text(st, 0),
			    sizeof(t->col[0]));
		t->type[t->ncols] = type_of(sfsi_db_col_text(st, 1));
		n += (size_t)snprintf(t->cols + n, sizeof(t->cols) - n, "%s%s",
				      t->ncols ? ", " : "", t->col[t->ncols]);
		t->ncols++;
	}
	sfsi_db_reset(st);
	if (rc < 0)
		return e ? e->status : SFS_IO;
	if (!t->ncols)
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"the target has no table %s", name);
	st = sfsi_db_prep(
		dst,
		"SELECT a.attname FROM pg_index i JOIN pg_attribute a"
		" ON a.attrelid = i.indrelid"
		" AND a.attnum = ANY(i.indkey::int2[])"
		" WHERE i.indrelid = to_regclass(?1) AND i.indisprimary"
		" ORDER BY array_position(i.indkey::int2[], a.attnum)",
		e);
	if (!st)
		return e ? e->status : SFS_IO;
	sfsi_db_bind_text(st, 1, qname);
	while ((rc = sfsi_db_step(st, e)) == 1 && t->npk < MAX_PK) {
		for (i = 0; i < t->ncols; i++)
			if (!strcmp(t->col[i], sfsi_db_col_text(st, 0)))
				break;
		t->pk[t->npk++] = i;
		m += (size_t)snprintf(t->order + m, sizeof(t->order) - m,
				      "%s%s", m ? ", " : "", t->col[i]);
	}
	sfsi_db_reset(st);
	if (rc < 0)
		return e ? e->status : SFS_IO;
	if (!t->npk)
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"table %s has no primary key", name);
	return SFS_OK;
}

/* Every table of the target is one this program copies. */
static enum sfs_status all_known(struct db *dst, struct sfs_err *e)
{
	struct db_stmt *st;
	const char *name;
	size_t i;
	int rc, known;

	st = sfsi_db_prep(dst,
			  "SELECT tablename FROM pg_tables"
			  " WHERE schemaname = current_schema()"
			  " AND tablename <> 'schema_version'",
			  e);
	if (!st)
		return e ? e->status : SFS_IO;
	while ((rc = sfsi_db_step(st, e)) == 1) {
		name = sfsi_db_col_text(st, 0);
		for (known = 0, i = 0; i < ARRAY_SIZE(tables); i++)
			known |= !strcmp(name, tables[i]);
		if (!known) {
			sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				 "table %s is not known to migrate", name);
			rc = -1;
			break;
		}
	}
	sfsi_db_reset(st);
	return rc < 0 ? (e ? e->status : SFS_IO) : SFS_OK;
}

/* ---- rows ------------------------------------------------------------- */

/* Bind column i of the source's row to parameter p of a statement. */
static void bind_col(struct db_stmt *to, int p, struct db_stmt *from, int i,
		     enum coltype type)
{
	const void *b;
	size_t n;

	if (sfsi_db_col_null(from, i)) {
		sfsi_db_bind_null(to, p);
		return;
	}
	switch (type) {
	case C_INT:
		sfsi_db_bind_int(to, p, sfsi_db_col_int(from, i));
		break;
	case C_REAL:
		sfsi_db_bind_double(to, p, sfsi_db_col_double(from, i));
		break;
	case C_BLOB:
		b = sfsi_db_col_blob(from, i, &n);
		sfsi_db_bind_blob(to, p, b ? b : "", n);
		break;
	default:
		sfsi_db_bind_text(to, p, sfsi_db_col_text(from, i));
	}
}

/*
 * A row's checksum: SHA-256 of its values, typed and length-prefixed,
 * added into a 128-bit sum (the order of rows does not matter, so each
 * side reads in its own order).
 */
static int row_sum(struct db_stmt *st, const struct table *t, uint64_t sum[2])
{
	unsigned char *buf = NULL, h[32];
	size_t len = 0, cap = 0, n;
	const void *v;
	char num[40];
	uint64_t w;
	int i, j;

	for (i = 0; i < t->ncols; i++) {
		if (sfsi_db_col_null(st, i)) {
			v = NULL;
			n = 0;
		} else if (t->type[i] == C_INT) {
			n = (size_t)snprintf(num, sizeof(num), "%" PRId64,
					     sfsi_db_col_int(st, i));
			v = num;
		} else if (t->type[i] == C_REAL) {
			n = (size_t)snprintf(num, sizeof(num), "%.17g",
					     sfsi_db_col_double(st, i));
			v = num;
		} else if (t->type[i] == C_BLOB) {
			v = sfsi_db_col_blob(st, i, &n);
		} else {
			v = sfsi_db_col_text(st, i);
			n = v ? strlen(v) : 0;
		}
		if (len + n + 16 > cap) {
			unsigned char *nb;

			cap = (len + n + 16) * 2;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return -1;
			}
			buf = nb;
		}
		buf[len++] = v ? (unsigned char)('0' + t->type[i]) : 'N';
		for (j = 0; j < 8; j++)
			buf[len++] = (unsigned char)(n >> (8 * j));
		if (n)
			memcpy(buf + len, v, n);
		len += n;
	}
	sfsi_sha256(buf ? (const void *)buf : "", len, h);
	free(buf);
	for (j = 0; j < 2; j++) {
		memcpy(&w, h + 8 * j, 8);
		sum[j] += w;
	}
	return 0;
}

/*
 * The next chunk of a table in primary-key order after the key in
 * `after` (a row of a statement that has its pk columns first), or from
 * the start when after is NULL.
 */
static struct db_stmt *chunk(struct db *d, const struct table *t,
			     const int64_t *ki, char (*kt)[256], int have,
			     const char *extra, int limit, struct sfs_err *e)
{
	char sql[SQL_MAX * 2], lhs[256] = "", rhs[128] = "", where[640] = "";
	struct db_stmt *st;
	size_t a = 0, b = 0;
	int i;

	for (i = 0; i < t->npk; i++) {
		a += (size_t)snprintf(lhs + a, sizeof(lhs) - a, "%s%s",
				      i ? ", " : "", t->col[t->pk[i]]);
		b += (size_t)snprintf(rhs + b, sizeof(rhs) - b, "%s?%d",
				      i ? ", " : "", i + 1);
	}
	if (have && extra)
		snprintf(where, sizeof(where), " WHERE (%s) > (%s) AND %s", lhs,
			 rhs, extra);
	else if (have)
		snprintf(where, sizeof(where), " WHERE (%s) > (%s)", lhs, rhs);
	else if (extra)
		snprintf(where, sizeof(where), " WHERE %s", extra);
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s%s ORDER BY %s LIMIT %d",
		 t->cols, t->name, where, t->order, limit);
	st = sfsi_db_prep_dyn(d, sql, e);
	if (!st)
		return NULL;
	for (i = 0; have && i < t->npk; i++) {
		if (t->type[t->pk[i]] == C_INT)
			sfsi_db_bind_int(st, i + 1, ki[i]);
		else
			sfsi_db_bind_text(st, i + 1, kt[i]);
	}
	return st;
}

/* Remember the current row's key as where the next chunk starts. */
static void keep_key(struct db_stmt *st, const struct table *t, int64_t *ki,
		     char (*kt)[256])
{
	const char *s;
	int i;

	for (i = 0; i < t->npk; i++) {
		if (t->type[t->pk[i]] == C_INT) {
			ki[i] = sfsi_db_col_int(st, t->pk[i]);
		} else {
			s = sfsi_db_col_text(st, t->pk[i]);
			sfs_strlcpy(kt[i], s ? s : "", sizeof(kt[i]));
		}
	}
}

/* The last key the target has of a table (resume point); 0 if empty. */
static int last_key(struct db *dst, const struct table *t, int64_t *ki,
		    char (*kt)[256], struct sfs_err *e)
{
	char sql[SQL_MAX * 2], desc[512];
	struct db_stmt *st;
	size_t n = 0;
	int i, rc;

	for (i = 0; i < t->npk; i++)
		n += (size_t)snprintf(desc + n, sizeof(desc) - n, "%s%s DESC",
				      i ? ", " : "", t->col[t->pk[i]]);
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s LIMIT 1",
		 t->cols, t->name, desc);
	st = sfsi_db_prep_dyn(dst, sql, e);
	if (!st)
		return -1;
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		keep_key(st, t, ki, kt);
	sfsi_db_finalize(st);
	return rc;
}

/*
 * Rows per INSERT: one statement carries many rows (a round trip per row
 * made a 1,000,000-file store's move take most of an hour here).
 */
#define ROWS_PER_INSERT 100
#define INSERT_MAX (SQL_MAX + ROWS_PER_INSERT * (MAX_COLS * 8 + 4))

/* INSERT INTO t(cols) VALUES (?1, ...), ... for `rows` rows. */
static void insert_sql(const struct table *t, int rows, char *sql)
{
	size_t n;
	int r, i, p = 1;

	n = (size_t)snprintf(sql, INSERT_MAX, "INSERT INTO %s(%s) VALUES ",
			     t->name, t->cols);
	for (r = 0; r < rows && n < INSERT_MAX; r++) {
		n += (size_t)snprintf(sql + n, INSERT_MAX - n, "%s(",
				      r ? ", " : "");
		for (i = 0; i < t->ncols && n < INSERT_MAX; i++)
			n += (size_t)snprintf(sql + n, INSERT_MAX - n, "%s?%d",
					      i ? ", " : "", p++);
		if (n < INSERT_MAX)
			n += (size_t)snprintf(sql + n, INSERT_MAX - n, ")");
	}
}

/*
 * Insert a chunk's n rows (the source statement, stepped from its start)
 * into the target, ROWS_PER_INSERT at a time; the last row's key into
 * ki/kt.
 */
static enum sfs_status insert_chunk(struct db *dst, const struct table *t,
				    struct db_stmt *from, int n, int64_t *ki,
				    char (*kt)[256], char *sql,
				    struct sfs_err *e)
{
	struct db_stmt *to = NULL;
	enum sfs_status ret = SFS_OK;
	int rows = 0, k = 0, group = 0, rc = 1, i;

	while (!ret && rows < n && (rc = sfsi_db_step(from, e)) == 1) {
		if (!to) {
			group = n - rows < ROWS_PER_INSERT ? n - rows
							   : ROWS_PER_INSERT;
			insert_sql(t, group, sql);
			to = sfsi_db_prep_dyn(dst, sql, e);
			if (!to) {
				ret = e ? e->status : SFS_IO;
				break;
			}
		}
		for (i = 0; i < t->ncols; i++)
			bind_col(to, k * t->ncols + i + 1, from, i, t->type[i]);
		keep_key(from, t, ki, kt);
		rows++;
		if (++k == group) {
			ret = sfsi_db_run(to, e);
			sfsi_db_finalize(to);
			to = NULL;
			k = 0;
		}
	}
	sfsi_db_finalize(to);
	if (!ret && rc < 0)
		ret = e ? e->status : SFS_IO;
	else if (!ret && rows < n)
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "table %s changed during the copy", t->name);
	return ret;
}

/* Copy a table's rows the target lacks, chunk by chunk. */
static enum sfs_status copy_table(struct db *src, struct db *dst,
				  const struct table *t, const char *extra,
				  int resume, int64_t max_rows,
				  struct sfs_db_migrate_report *r,
				  struct sfs_err *e)
{
	int64_t ki[MAX_PK] = { 0 };
	char kt[MAX_PK][256], *sql;
	struct db_stmt *from;
	enum sfs_status ret;
	int have = 0, rc = 0, rows, limit;

	if (resume)
		have = last_key(dst, t, ki, kt, e);
	if (have < 0)
		return e ? e->status : SFS_IO;
	if (have)
		r->resumed = 1;
	sql = malloc(INSERT_MAX);
	if (!sql)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	for (;;) {
		if (max_rows > 0 && r->copied >= max_rows) {
			ret = sfs_errf(e, SFS_BUSY, SFS_R_NONE,
				       "stopped after %" PRId64
				       " rows (--max-rows): run again to go"
				       " on",
				       r->copied);
			break;
		}
		limit = CHUNK;
		if (max_rows > 0 && max_rows - r->copied < limit)
			limit = (int)(max_rows - r->copied);
		from = chunk(src, t, ki, kt, have, extra, limit, e);
		if (!from) {
			ret = e ? e->status : SFS_IO;
			break;
		}
		/* the chunk's rows counted first, so that each INSERT is
		 * made for the rows it gets (the source, held under its
		 * write lock, gives the same rows again) */
		rows = 0;
		while ((rc = sfsi_db_step(from, e)) == 1)
			rows++;
		sfsi_db_reset(from);
		ret = rc < 0 ? (e ? e->status : SFS_IO) : sfsi_db_begin(dst, e);
		if (!ret)
			ret = insert_chunk(dst, t, from, rows, ki, kt, sql, e);
		sfsi_db_finalize(from);
		if (!ret)
			ret = sfsi_db_commit(dst, e);
		if (ret) {
			sfsi_db_rollback(dst);
			break;
		}
		r->copied += rows;
		have = 1;
		if (rows < limit)
			break;
	}
	free(sql);
	return ret;
}

/* A table's row count and checksum on one side, chunk by chunk. */
static enum sfs_status sum_table(struct db *d, const struct table *t,
				 int64_t *count, uint64_t sum[2],
				 struct sfs_err *e)
{
	int64_t ki[MAX_PK] = { 0 };
	char kt[MAX_PK][256];
	struct db_stmt *st;
	int have = 0, rows, rc;

	*count = 0;
	sum[0] = sum[1] = 0;
	do {
		st = chunk(d, t, ki, kt, have, NULL, CHUNK, e);
		if (!st)
			return e ? e->status : SFS_IO;
		rows = 0;
		while ((rc = sfsi_db_step(st, e)) == 1) {
			if (row_sum(st, t, sum)) {
				sfsi_db_finalize(st);
				return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
						"out of memory");
			}
			keep_key(st, t, ki, kt);
			rows++;
		}
		sfsi_db_finalize(st);
		if (rc < 0)
			return e ? e->status : SFS_IO;
		*count += rows;
		have = 1;
	} while (rows == CHUNK);
	return SFS_OK;
}

/* ---- the store's secret: the copy's completion ----------------------- */

/* The target's secret into `out` (empty when none). */
static enum sfs_status secret_of(struct db *d, char *out, size_t n,
				 struct sfs_err *e)
{
	struct db_stmt *st = sfsi_db_prep(
		d, "SELECT value FROM setting WHERE key = 'secret'", e);
	int rc;

	out[0] = '\0';
	if (!st)
		return e ? e->status : SFS_IO;
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		sfs_strlcpy(out, sfsi_db_col_text(st, 0), n);
	sfsi_db_reset(st);
	return rc < 0 ? (e ? e->status : SFS_IO) : SFS_OK;
}

/*
 * The store's own triggers (the change feed's) off or on, each by name
 * ("DISABLE TRIGGER ALL" would need a superuser for the foreign keys').
 */
static enum sfs_status triggers(struct db *dst, const char *how,
				struct sfs_err *e)
{
	char sql[256], names[16][2][64];
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;
	int n = 0, i, rc;

	st = sfsi_db_prep(
		dst,
		"SELECT c.relname, t.tgname FROM pg_trigger t"
		" JOIN pg_class c ON c.oid = t.tgrelid"
		" WHERE NOT t.tgisinternal"
		" AND c.relnamespace = current_schema()::regnamespace",
		e);
	if (!st)
		return e ? e->status : SFS_IO;
	while ((rc = sfsi_db_step(st, e)) == 1 && n < 16) {
		sfs_strlcpy(names[n][0], sfsi_db_col_text(st, 0),
			    sizeof(names[n][0]));
		sfs_strlcpy(names[n][1], sfsi_db_col_text(st, 1),
			    sizeof(names[n][1]));
		n++;
	}
	sfsi_db_reset(st);
	if (rc < 0)
		return e ? e->status : SFS_IO;
	if (rc == 1)
		return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				"more triggers than migrate knows");
	for (i = 0; i < n && !ret; i++) {
		snprintf(sql, sizeof(sql), "ALTER TABLE %s %s TRIGGER %s",
			 names[i][0], how, names[i][1]);
		ret = sfsi_db_exec(dst, sql, e);
	}
	return ret;
}

/* Identity columns continue after the copied ids. */
static enum sfs_status sequences(struct db *dst, const struct table *t,
				 struct sfs_err *e)
{
	char sql[512];

	if (t->npk != 1 || t->type[t->pk[0]] != C_INT ||
	    (strcmp(t->col[t->pk[0]], "id") && strcmp(t->col[t->pk[0]], "seq")))
		return SFS_OK;
	snprintf(sql, sizeof(sql),
		 "SELECT setval(pg_get_serial_sequence('\"%s\"', '%s'),"
		 " max(%s)) FROM %s HAVING max(%s) IS NOT NULL",
		 t->name, t->col[t->pk[0]], t->col[t->pk[0]], t->name,
		 t->col[t->pk[0]]);
	return sfsi_db_exec(dst, sql, e);
}

/* Set speechfs.db (and its WAL files) aside once the store has moved. */
static enum sfs_status set_aside(const char *dir, struct sfs_err *e)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char from[4096], to[4096];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sfx); i++) {
		snprintf(from, sizeof(from), "%s/speechfs.db%s", dir, sfx[i]);
		snprintf(to, sizeof(to), "%s/speechfs.db%s.moved-to-postgresql",
			 dir, sfx[i]);
		if (rename(from, to) < 0 && (i == 0 || errno != ENOENT))
			return sfsi_errno_status(e, errno,
						 "setting speechfs.db aside");
	}
	sfsi_fsync_dir(dir);
	return SFS_OK;
}

/*
 * Every table into the empty schema of dst, the triggers off meanwhile,
 * then each table's sequence set past its rows. The store's secret goes
 * last: a schema that holds it is a whole copy (a later run resumes).
 */
static enum sfs_status copy_all(struct db *src, struct db *dst, struct table *t,
				int64_t max_rows,
				struct sfs_db_migrate_report *r,
				struct sfs_err *e)
{
	enum sfs_status ret;
	size_t i;

	ret = triggers(dst, "DISABLE", e);
	for (i = 0; !ret && i < ARRAY_SIZE(tables); i++)
		ret = copy_table(src, dst, &t[i],
				 !strcmp(tables[i], "setting")
					 ? "key <> 'secret'"
					 : NULL,
				 1, max_rows, r, e);
	for (i = 0; !ret && i < ARRAY_SIZE(tables); i++)
		ret = sequences(dst, &t[i], e);
	if (!ret)
		ret = triggers(dst, "ENABLE", e);
	if (!ret)
		ret = copy_table(src, dst, &t[ARRAY_SIZE(tables) - 1],
				 "key = 'secret'", 0, 0, r, e);
	return ret;
}

/*
 * Each table's rows counted and summed on both sides; the first that
 * differs is named in r->table and is an error. r->verified: the rows
 * verified, all of them on success.
 */
static enum sfs_status verify_all(struct db *src, struct db *dst,
				  struct table *t,
				  struct sfs_db_migrate_report *r,
				  struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;
	uint64_t s1[2], s2[2];
	int64_t n1, n2;
	size_t i;

	for (i = 0; !ret && i < ARRAY_SIZE(tables); i++) {
		ret = sum_table(src, &t[i], &n1, s1, e);
		if (!ret)
			ret = sum_table(dst, &t[i], &n2, s2, e);
		if (ret)
			break;
		r->rows += n1;
		if (n1 != n2 || s1[0] != s2[0] || s1[1] != s2[1]) {
			sfs_strlcpy(r->table, tables[i], sizeof(r->table));
			ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
				       "table %s differs: %" PRId64
				       " rows here, %" PRId64
				       " in PostgreSQL%s",
				       tables[i], n1, n2,
				       n1 == n2 ? ", checksums differ" : "");
		}
	}
	if (!ret)
		r->verified = r->rows;
	return ret;
}

enum sfs_status sfs_db_migrate(const char *dir, const char *url,
			       const char *schema, int64_t max_rows,
			       struct sfs_db_migrate_report *r,
			       struct sfs_err *e)
{
	struct sfs_store *s = NULL;
	struct db *src = NULL, *dst = NULL;
	struct table *t = NULL;
	struct sfs_config cfg;
	char have[80], want[80];
	enum sfs_status ret;
	size_t i;

	memset(r, 0, sizeof(*r));
	sfs_config_init(&cfg);
	ret = sfs_config_set(&cfg, "db.url", url, e);
	if (!ret && schema && *schema)
		ret = sfs_config_set(&cfg, "db.schema", schema, e);
	if (ret)
		return ret;
	ret = sfs_store_open(dir, NULL, &s, e);
	if (ret)
		return ret;
	if (sfsi_db_store_is_pg(s)) {
		ret = sfs_errf(
			e, SFS_CONFLICT, SFS_R_NONE,
			"the store's metadata are in PostgreSQL already");
		goto out;
	}
	t = calloc(ARRAY_SIZE(tables), sizeof(*t));
	if (!t) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	ret = sfsi_db_get(s, &src, e);
	if (!ret)
		ret = sfsi_db_open_pg(cfg.db_url, cfg.db_schema, &dst, e);
	/* no writer may change the source until the store has moved */
	if (!ret)
		ret = sfsi_db_begin(src, e);
	if (!ret)
		ret = all_known(dst, e);
	for (i = 0; !ret && i < ARRAY_SIZE(tables); i++)
		ret = describe(dst, tables[i], &t[i], e);
	if (!ret)
		ret = secret_of(src, want, sizeof(want), e);
	if (!ret)
		ret = secret_of(dst, have, sizeof(have), e);
	if (ret)
		goto out;
	r->tables = (int64_t)ARRAY_SIZE(tables);
	if (have[0] && strcmp(have, want)) {
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
			       "the database holds another store");
		goto out;
	}
	if (!have[0])
		ret = copy_all(src, dst, t, max_rows, r, e);
	else
		r->resumed = 1;
	if (!ret) {
		r->complete = 1;
		ret = verify_all(src, dst, t, r, e);
	}
	/* as after a restore: the planner's statistics and the visibility
	 * map of the loaded tables, before the first query plans by them */
	if (!ret)
		ret = sfsi_db_vacuum(dst, e);
	if (ret)
		goto out;
	/* still under the source's write lock: from this record on, every
	 * process that opens the store opens PostgreSQL */
	ret = sfsi_store_record_db(dir, &cfg, e);
out:
	sfsi_db_close_pg(dst);
	if (src)
		sfsi_db_rollback(src);
	sfsi_db_put(src);
	sfs_store_close(s);
	free(t);
	if (!ret && r->verified == r->rows && r->complete) {
		ret = set_aside(dir, e);
		r->switched = !ret;
	}
	return ret;
}
