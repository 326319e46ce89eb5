/*
 * Tests of the SQL dialect layer's rewrite (db_pg_i.h): the core's
 * statements, written in SQLite's dialect, as PostgreSQL gets them.
 * Placeholders are numbered as SQLite numbers them, the words PostgreSQL
 * reads otherwise are replaced as whole words outside literals only, and
 * an ORDER BY … COLLATE NOCASE sorts as SQLite's NOCASE sorts. No server
 * is needed: the statements themselves run in the [pg] runs of t_dir and
 * the other modules (tests/test_unit.py).
 */
#include <stdlib.h>
#include <string.h>
#include "db_pg_i.h"
#include "speechfs/log.h"
#include "testhelp.h"

/* The rewrite of `sql` equals `want`, with `np` parameters. */
static int rw(const char *sql, const char *want, int np)
{
	int n = -1, ok;
	char *out = sfsi_pg_rewrite(sql, &n);

	ok = out && !strcmp(out, want) && n == np;
	if (!ok)
		fprintf(stderr,
			"  rewrite of  %s\n  gave        %s (%d)\n"
			"  want        %s (%d)\n",
			sql, out ? out : "(null)", n, want, np);
	free(out);
	return ok;
}

static void test_placeholders(void)
{
	CHECK(rw("SELECT 1", "SELECT 1", 0));
	CHECK(rw("SELECT a FROM t WHERE b = ?1 AND c = ?2 OR d = ?1",
		 "SELECT a FROM t WHERE b = $1 AND c = $2 OR d = $1", 2));
	/* a bare ? is one more than the highest so far, as in SQLite */
	CHECK(rw("SELECT ? , ?, ?5, ?", "SELECT $1 , $2, $5, $6", 6));
	CHECK(rw("VALUES (?10)", "VALUES ($10)", 10));
	/* not in literals */
	CHECK(rw("SELECT '?1', \"a?\" FROM t WHERE x = ?1",
		 "SELECT '?1', \"a?\" FROM t WHERE x = $1", 1));
	CHECK(rw("SELECT 'it''s ?' || ?1", "SELECT 'it''s ?' || $1", 1));
}

static void test_words(void)
{
	/* user is reserved in PostgreSQL; user_id and u.user are not it */
	CHECK(rw("SELECT u.name FROM user u JOIN api_key k ON"
		 " k.user_id = u.id",
		 "SELECT u.name FROM \"user\" u JOIN api_key k ON"
		 " k.user_id = u.id",
		 0));
	CHECK(rw("UPDATE user SET name = 'user' WHERE id = ?1",
		 "UPDATE \"user\" SET name = 'user' WHERE id = $1", 1));
	/* SQLite's LIKE folds ASCII case: ILIKE under the C collation */
	CHECK(rw("SELECT 1 FROM t WHERE name LIKE ?1 ESCAPE '\\'",
		 "SELECT 1 FROM t WHERE name COLLATE \"C\" ILIKE $1"
		 " ESCAPE '\\'",
		 1));
	CHECK(rw("SELECT 1 FROM t WHERE name NOT LIKE 'a%'",
		 "SELECT 1 FROM t WHERE name COLLATE \"C\" NOT ILIKE 'a%'", 0));
	/* a scalar max/min is greatest/least; the aggregate stays */
	CHECK(rw("SELECT max(a + 1, ?2), min(f(x, y), 0), max(seq) FROM t",
		 "SELECT greatest(a + 1, $2), least(f(x, y), 0), max(seq)"
		 " FROM t",
		 2));
	CHECK(rw("SELECT max((SELECT count(*) FROM t), 1)",
		 "SELECT greatest((SELECT count(*) FROM t), 1)", 0));
	CHECK(rw("SELECT group_concat(x.name, char(31)) FROM x",
		 "SELECT string_agg(x.name, chr(31)) FROM x", 0));
	CHECK(rw("SELECT ifnull(a, 0), CAST(b AS INTEGER) FROM t",
		 "SELECT coalesce(a, 0), CAST(b AS bigint) FROM t", 0));
	/* SQLite's index hint +col goes (no unary + on text there);
	 * a binary plus stays */
	CHECK(rw("SELECT a+b, a + 1 FROM t WHERE +f.owner_id = ?1"
		 " AND +dir = ?2 AND (+x > 0 OR +y) AND n = +z",
		 "SELECT a+b, a + 1 FROM t WHERE f.owner_id = $1"
		 " AND dir = $2 AND (x > 0 OR y) AND n = z",
		 2));
	/* words inside other words stay */
	CHECK(rw("SELECT maxima, likes, users FROM t",
		 "SELECT maxima, likes, users FROM t", 0));
}

static void test_insert_or_ignore(void)
{
	CHECK(rw("INSERT OR IGNORE INTO s(k, v) VALUES ('a', ?1)",
		 "INSERT INTO s(k, v) VALUES ('a', $1) ON CONFLICT DO NOTHING",
		 1));
	CHECK(rw("INSERT OR IGNORE INTO s(k) VALUES (?1) RETURNING k",
		 "INSERT INTO s(k) VALUES ($1) ON CONFLICT DO NOTHING"
		 " RETURNING k",
		 1));
	CHECK(rw("INSERT INTO s(k) VALUES (1) ON CONFLICT(k) DO NOTHING",
		 "INSERT INTO s(k) VALUES (1) ON CONFLICT(k) DO NOTHING", 0));
}

static void test_order_nocase(void)
{
	CHECK(rw("SELECT name FROM t ORDER BY t.name COLLATE NOCASE, t.id",
		 "SELECT name FROM t ORDER BY lower(t.name COLLATE \"C\"),"
		 " t.id",
		 0));
	CHECK(rw("SELECT a FROM t ORDER BY t.id, u.name COLLATE NOCASE DESC"
		 " LIMIT ?1",
		 "SELECT a FROM t ORDER BY t.id, lower(u.name COLLATE \"C\")"
		 " DESC LIMIT $1",
		 1));
	/* equality keeps the nocase collation (case-insensitive) */
	CHECK(rw("SELECT 1 FROM t WHERE a = ?1 COLLATE NOCASE ORDER BY a",
		 "SELECT 1 FROM t WHERE a = $1 COLLATE NOCASE ORDER BY a", 1));
	/* an ORDER BY inside parentheses ends with them */
	CHECK(rw("SELECT (SELECT x FROM t ORDER BY x LIMIT 1), y COLLATE"
		 " NOCASE FROM u",
		 "SELECT (SELECT x FROM t ORDER BY x LIMIT 1), y COLLATE"
		 " NOCASE FROM u",
		 0));
	/* SQLite's bytewise comparison is the "C" collation's */
	CHECK(rw("SELECT 1 FROM t WHERE a <> b COLLATE BINARY",
		 "SELECT 1 FROM t WHERE a <> b COLLATE \"C\"", 0));
	CHECK(rw("SELECT 1 FROM t WHERE a <> b collate  binary AND c = 1",
		 "SELECT 1 FROM t WHERE a <> b COLLATE \"C\" AND c = 1", 0));
	CHECK(rw("SELECT binary FROM t WHERE a = b COLLATE BINARYX",
		 "SELECT binary FROM t WHERE a = b COLLATE BINARYX", 0));
}

/*
 * A LIKE whose pattern is a parameter makes a statement planned at each
 * run (db_pg.c: PostgreSQL's generic plan costs every pattern alike); a
 * pattern written in the text does not.
 */
static int binds(const char *sql)
{
	int n;
	char *out = sfsi_pg_rewrite(sql, &n);
	int b = out ? sfsi_pg_binds_pattern(out) : -1;

	free(out);
	return b;
}

static void test_binds_pattern(void)
{
	CHECK(binds("SELECT id FROM file WHERE name LIKE ?2 ESCAPE '\\'") == 1);
	CHECK(binds("SELECT id FROM file WHERE name NOT LIKE ?") == 1);
	CHECK(binds("SELECT id FROM file WHERE name LIKE\n ?3") == 1);
	CHECK(binds("SELECT key FROM setting WHERE key LIKE 'blob.%'") == 0);
	CHECK(binds("SELECT id FROM t WHERE a LIKE '%ILIKE $1%' AND b = ?") ==
	      0);
	CHECK(binds("SELECT id FROM file WHERE name = ?") == 0);
	CHECK(binds("SELECT id FROM file WHERE dir = ? ORDER BY name") == 0);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_placeholders);
	RUN(test_words);
	RUN(test_insert_or_ignore);
	RUN(test_order_nocase);
	RUN(test_binds_pattern);
	return th_report();
}
