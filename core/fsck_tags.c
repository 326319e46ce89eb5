/*
 * fsck's checks of what the tags' rows derive: the copies of their file's
 * owner, creationDate and deletion mark in file_tag (schemas v7 and v10,
 * kept by a trigger on file) and the counters of each owner's files per
 * tag (tag_count, schema v9, kept by triggers on file_tag), and each file
 * row's copy of its tag names (schema v12, kept by triggers on file_tag
 * too). Derived data
 * that disagree are made again from what they derive from, never the
 * other way round.
 */
#include <stdio.h>
#include <string.h>
#include "db_i.h"
#include "fsck_i.h"
#include "util_i.h"

/*
 * The counters that differ from file_tag, in one statement (one
 * snapshot: the triggers change both in the same transaction, so a
 * concurrent writer never shows as a difference): those whose count is
 * wrong, and the (owner, tag) pairs that have rows and no counter.
 */
#define DIFFER                                                                 \
	"SELECT owner_id, tag_id, have, want FROM ("                           \
	"SELECT c.owner_id, c.tag_id, c.n AS have,"                            \
	" (SELECT COUNT(*) FROM file_tag ft WHERE ft.owner_id = c.owner_id"    \
	" AND ft.tag_id = c.tag_id) AS want FROM tag_count c"                  \
	" UNION ALL SELECT ft.owner_id, ft.tag_id, 0, COUNT(*)"                \
	" FROM file_tag ft WHERE NOT EXISTS (SELECT 1 FROM tag_count c"        \
	" WHERE c.owner_id = ft.owner_id AND c.tag_id = ft.tag_id)"            \
	" GROUP BY ft.owner_id, ft.tag_id) AS x WHERE have <> want"            \
	" ORDER BY owner_id, tag_id"

/* The separators in a TAG_NAMES_OF value. */
static size_t count_sep(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\x1f';
	return n;
}

static enum sfs_status status_of(struct sfs_err *e)
{
	return e && e->status ? e->status : SFS_IO;
}

/* Every counter made again from file_tag, in one write transaction. */
static enum sfs_status remake(struct db *d, struct sfs_err *e)
{
	enum sfs_status ret;

	ret = sfsi_db_begin(d, e);
	if (ret)
		return ret;
	ret = sfsi_db_exec(d, "DELETE FROM tag_count", e);
	if (!ret)
		ret = sfsi_db_exec(d,
				   "INSERT INTO tag_count(owner_id, tag_id, n)"
				   " SELECT owner_id, tag_id, COUNT(*)"
				   " FROM file_tag GROUP BY owner_id, tag_id",
				   e);
	if (!ret)
		ret = sfsi_db_commit(d, e);
	else
		sfsi_db_rollback(d);
	return ret;
}

#define ROWS_OFF TAG_ROW_OFF("file_tag")

enum sfs_status sfsi_fsck_tag_rows(struct db *d, int repair,
				   void (*say)(void *arg, const char *line),
				   void *arg, int64_t *found, int64_t *repaired,
				   struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;
	char line[160];
	int rc;

	*found = 0;
	st = sfsi_db_prep(d, "SELECT COUNT(*) FROM file_tag WHERE " ROWS_OFF,
			  e);
	if (!st)
		return status_of(e);
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		*found = sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	if (rc < 0)
		return status_of(e);
	if (!*found)
		return SFS_OK;
	snprintf(line, sizeof(line),
		 "%lld tag rows differ from their file's owner, creationDate"
		 " or deletion",
		 (long long)*found);
	if (say)
		say(arg, line);
	if (!repair)
		return SFS_OK;
	/* (a changed owner moves the row between counters: the triggers
	 * of tag_count count it) */
	ret = sfsi_db_begin(d, e);
	if (ret)
		return ret;
	ret = sfsi_db_exec(d, TAG_ROWS_MAKE_GOOD, e);
	if (!ret)
		ret = sfsi_db_commit(d, e);
	else
		sfsi_db_rollback(d);
	if (!ret) {
		(*repaired)++;
		if (say)
			say(arg,
			    "repaired: tag rows made again from their files");
	}
	return ret;
}

/* After the first max_lines of n findings told, how many more (what). */
static void say_rest(void (*say)(void *arg, const char *line), void *arg,
		     int64_t n, int max_lines, const char *what)
{
	char line[256];

	if (n <= max_lines || !say)
		return;
	snprintf(line, sizeof(line), "and %lld more %s differ",
		 (long long)(n - max_lines), what);
	say(arg, line);
}

enum sfs_status sfsi_fsck_tag_counts(struct db *d, int repair, int max_lines,
				     void (*say)(void *arg, const char *line),
				     void *arg, int64_t *found,
				     int64_t *repaired, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;
	char line[256];
	int64_t n = 0;
	int rc;

	*found = 0;
	st = sfsi_db_prep(d, DIFFER, e);
	if (!st)
		return status_of(e);
	while ((rc = sfsi_db_step(st, e)) == 1) {
		if (n++ >= max_lines)
			continue;
		snprintf(line, sizeof(line),
			 "user %lld: tag %lld is counted on %lld files,"
			 " found on %lld",
			 (long long)sfsi_db_col_int(st, 0),
			 (long long)sfsi_db_col_int(st, 1),
			 (long long)sfsi_db_col_int(st, 2),
			 (long long)sfsi_db_col_int(st, 3));
		if (say)
			say(arg, line);
	}
	sfsi_db_reset(st);
	if (rc < 0)
		return status_of(e);
	say_rest(say, arg, n, max_lines, "tag counters");
	*found = n;
	if (!n || !repair)
		return SFS_OK;
	ret = remake(d, e);
	if (!ret) {
		(*repaired)++;
		if (say)
			say(arg, "repaired: tag counters made again");
	}
	return ret;
}

/* The next name of a TAG_NAMES_OF value at *p (advanced), its length. */
static size_t next_name(const char **p, const char **name)
{
	const char *end = strchr(*p, '\x1f');

	*name = *p;
	if (!end)
		end = *p + strlen(*p);
	*p = *end ? end + 1 : end;
	return (size_t)(end - *name);
}

/* Whether b holds the name (of length n). */
static int holds(const char *b, const char *name, size_t n)
{
	const char *x;
	size_t k;

	while (*b) {
		k = next_name(&b, &x);
		if (k == n && !memcmp(x, name, n))
			return 1;
	}
	return 0;
}

/*
 * Whether two TAG_NAMES_OF values hold the same names, in any order (a
 * file's names are distinct: one row per tag, one tag per name).
 */
static int same_names(const char *a, const char *b)
{
	const char *p = a, *x;
	size_t na = 0, nb = 0, k;

	a = a ? a : "";
	b = b ? b : "";
	for (p = a; *p;) {
		k = next_name(&p, &x);
		if (!holds(b, x, k))
			return 0;
		na++;
	}
	for (p = b; *p; nb++)
		next_name(&p, &x);
	return na == nb;
}

#define NAMES_OF_F TAG_NAMES_OF("f.id")
#define OFF_F TAG_NAMES_OFF("f")
#define NAMES_OFF                                                              \
	"SELECT f.uuid, f.tagnames, " NAMES_OF_F " FROM file f WHERE " OFF_F   \
	" ORDER BY f.id"

enum sfs_status sfsi_fsck_tag_names(struct db *d, int repair, int max_lines,
				    void (*say)(void *arg, const char *line),
				    void *arg, int64_t *found,
				    int64_t *repaired, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;
	char line[256];
	int64_t n = 0;
	int rc;

	*found = 0;
	/* one statement, one snapshot: the triggers change the copy in the
	 * transaction that changes the tags */
	st = sfsi_db_prep(d, NAMES_OFF, e);
	if (!st)
		return status_of(e);
	while ((rc = sfsi_db_step(st, e)) == 1) {
		const char *have = sfsi_db_col_text(st, 1);
		const char *want = sfsi_db_col_text(st, 2);

		/* the same names in another order are the same tags */
		if (same_names(have, want))
			continue;
		if (n++ >= max_lines)
			continue;
		snprintf(line, sizeof(line),
			 "file %s: its row's tag names differ from its"
			 " tags' (%d names, %d tags)",
			 sfsi_db_col_text(st, 0),
			 have && *have ? 1 + (int)count_sep(have) : 0,
			 want && *want ? 1 + (int)count_sep(want) : 0);
		if (say)
			say(arg, line);
	}
	sfsi_db_reset(st);
	if (rc < 0)
		return status_of(e);
	say_rest(say, arg, n, max_lines, "files' tag names");
	*found = n;
	if (!n || !repair)
		return SFS_OK;
	ret = sfsi_db_begin(d, e);
	if (ret)
		return ret;
	ret = sfsi_db_exec(d,
			   "UPDATE file SET tagnames = " TAG_NAMES_OF(
				   "file.id") " WHERE " TAG_NAMES_OFF("file"),
			   e);
	if (!ret)
		ret = sfsi_db_commit(d, e);
	else
		sfsi_db_rollback(d);
	if (!ret) {
		(*repaired)++;
		if (say)
			say(arg, "repaired: files' tag names made again from"
				 " their tags");
	}
	return ret;
}
