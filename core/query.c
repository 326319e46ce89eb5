/*
 * Queries of files: the list queries of GET /files and shared-with-me,
 * assembled from fixed SQL fragments with every value bound (never spliced
 * into the SQL text). Their parameters are parsed in query_param.c, the
 * statements run in query_rows.c; the mount's reads of a directory are in
 * query_dir.c and the names' full-text index in query_fts.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "auth_i.h"
#include "db_i.h"
#include "file_i.h"
#include "query_i.h"
#include "speechfs/json.h"
#include "speechfs/log.h"
#include "speechfs/query.h"
#include "speechfs/tag.h"
#include "speechfs/vpath.h"
#include "store_i.h"
#include "util_i.h"
#include "remote_i.h"

void sfs_file_list_release(struct sfs_file_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		sfs_file_release(&l->files[i]);
	free(l->files);
	for (i = 0; i < l->ndirs; i++)
		free(l->dirs[i]);
	free(l->dirs);
	memset(l, 0, sizeof(*l));
}

/* ---- SQL assembly ------------------------------------------------------ */

static void qb_init(struct qb *qb)
{
	memset(qb, 0, sizeof(*qb));
	sfs_buf_init(&qb->sql, 1 << 20);
}

static void qb_release(struct qb *qb)
{
	int i;

	for (i = 0; i < qb->nowned; i++)
		free(qb->owned[i]);
	sfs_buf_release(&qb->sql);
}

/* Append a fixed SQL fragment (a string literal, never a value). */
static void add(struct qb *qb, const char *frag)
{
	if (!qb->st && sfs_buf_adds(&qb->sql, frag))
		qb->st = SFS_NOMEM;
}

static void bind_int(struct qb *qb, int64_t v)
{
	if (qb->n >= QB_BINDS) {
		qb->st = SFS_IO;
		return;
	}
	qb->b[qb->n].text = 0;
	qb->b[qb->n++].i = v;
}

/* Bind a string that outlives the statement (the query's own). */
static void bind_text(struct qb *qb, const char *s)
{
	if (qb->n >= QB_BINDS) {
		qb->st = SFS_IO;
		return;
	}
	qb->b[qb->n].text = 1;
	qb->b[qb->n++].s = s;
}

/* Bind a heap string the builder now owns. */
static void bind_owned(struct qb *qb, char *s)
{
	if (!s || qb->nowned >= QB_OWNED) {
		free(s);
		if (!qb->st)
			qb->st = SFS_NOMEM;
		return;
	}
	qb->owned[qb->nowned++] = s;
	bind_text(qb, s);
}

struct db_stmt *sfsi_qb_prep(struct qb *qb, struct db *d, struct sfs_err *e)
{
	struct db_stmt *st;
	int i;

	if (qb->st) {
		sfs_errf(e, qb->st, SFS_R_NONE, "cannot assemble the query");
		return NULL;
	}
	st = sfsi_db_prep_dyn(d, qb->sql.buf, e);
	if (!st)
		return NULL;
	for (i = 0; i < qb->n; i++) {
		if (qb->b[i].text)
			sfsi_db_bind_text(st, i + 1, qb->b[i].s);
		else
			sfsi_db_bind_int(st, i + 1, qb->b[i].i);
	}
	return st;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* The needle as one FTS5 string: "..." with each '"' doubled. */
static char *fts_phrase(const char *col, const char *needle)
{
	struct sfs_buf b = SFS_BUF_INIT(0);
	const char *p;
	int bad_ = 0;

	bad_ |= sfs_buf_adds(&b, col) != SFS_OK;
	bad_ |= sfs_buf_adds(&b, " : \"") != SFS_OK;
	for (p = needle; *p && !bad_; p++) {
		if (*p == '"')
			bad_ |= sfs_buf_addch(&b, '"') != SFS_OK;
		bad_ |= sfs_buf_addch(&b, *p) != SFS_OK;
	}
	bad_ |= sfs_buf_addch(&b, '"') != SFS_OK;
	if (bad_) {
		sfs_buf_release(&b);
		return NULL;
	}
	return sfs_buf_detach(&b, NULL);
}

/* %needle% for LIKE ... ESCAPE '\'. */
static char *like_pattern(const char *needle)
{
	struct sfs_buf b = SFS_BUF_INIT(0);
	const char *p;
	int bad_ = 0;

	bad_ |= sfs_buf_addch(&b, '%') != SFS_OK;
	for (p = needle; *p && !bad_; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			bad_ |= sfs_buf_addch(&b, '\\') != SFS_OK;
		bad_ |= sfs_buf_addch(&b, *p) != SFS_OK;
	}
	bad_ |= sfs_buf_addch(&b, '%') != SFS_OK;
	if (bad_) {
		sfs_buf_release(&b);
		return NULL;
	}
	return sfs_buf_detach(&b, NULL);
}

/*
 * Case-insensitive substring filter on f.name or f.filename: through the
 * trigram index when the needle has a trigram, else LIKE over the rows the
 * other conditions already narrowed to.
 */
static void substring(struct qb *qb, int filename, const char *needle)
{
	if (!needle)
		return;
	/* PostgreSQL: pg_trgm's indexes serve the (I)LIKE itself */
	if (!qb->pg && utf8_chars(needle) >= 3) {
		/*
		 * The index, and the names still waiting for it (schema v8):
		 * CROSS JOIN keeps fts_pending the outer loop (the planner
		 * otherwise scanned every file's name and probed the list).
		 */
		add(qb, " AND f.id IN (SELECT rowid FROM file_fts"
			" WHERE file_fts MATCH ? UNION ALL SELECT p.id"
			" FROM fts_pending p CROSS JOIN file w ON w.id = p.id"
			" WHERE");
		add(qb, filename ? " w.filename LIKE ? ESCAPE '\\')"
				 : " w.name LIKE ? ESCAPE '\\')");
		bind_owned(qb,
			   fts_phrase(filename ? "filename" : "name", needle));
		bind_owned(qb, like_pattern(needle));
	} else {
		add(qb, filename ? " AND f.filename LIKE ? ESCAPE '\\'"
				 : " AND f.name LIKE ? ESCAPE '\\'");
		bind_owned(qb, like_pattern(needle));
	}
}

/*
 * Tags (names compared case-insensitively within the tenant). Probing
 * each candidate row with EXISTS is cheapest when another index already
 * narrowed the rows (a directory, a trigram search); for a recursive
 * listing of everything, the files carrying the tag are the way in, so
 * the first condition is written as an IN list the planner can drive from
 * (`drive`). The tags' ids are looked up once per statement (a subquery
 * of constants), so a probe is one lookup of file_tag's key: PostgreSQL
 * otherwise read the tenant's tags for every row probed, comparing each
 * name under the ICU collation (50 compares a row, 2-3 ms a page).
 */
static void tag_ids(struct qb *qb, const struct sfs_query *q, int64_t tenant,
		    size_t i)
{
	size_t k;

	add(qb, "ft.tag_id");
	bind_int(qb, tenant);
	if (!q->tags_any) {
		add(qb, " = (SELECT id FROM tag WHERE tenant_id = ?"
			" AND name = ? COLLATE NOCASE)");
		bind_text(qb, q->tags[i]);
		return;
	}
	add(qb, " IN (SELECT id FROM tag WHERE tenant_id = ?"
		" AND name COLLATE NOCASE IN (");
	for (k = 0; k < q->ntags; k++) {
		add(qb, k ? ", ?" : "?");
		bind_text(qb, q->tags[k]);
	}
	add(qb, "))");
}

static void tags_filter(struct qb *qb, const struct sfs_query *q,
			int64_t tenant, int drive)
{
	/*
	 * PostgreSQL would turn a probe into a join of every tagged file
	 * and sort them all; an OFFSET keeps it a probe per row, walking
	 * the owner's files in the page's order as chosen above
	 */
	const char *probe_end = qb->pg ? " OFFSET 0)" : ")";
	size_t i;

	if (!q->ntags)
		return;
	if (drive) {
		add(qb, " AND f.id IN (SELECT ft.file_id FROM file_tag ft"
			" WHERE ");
		tag_ids(qb, q, tenant, 0);
		add(qb, ")");
	} else {
		add(qb, " AND EXISTS (SELECT 1 FROM file_tag ft"
			" WHERE ft.file_id = f.id AND ");
		tag_ids(qb, q, tenant, 0);
		add(qb, probe_end);
	}
	if (q->tags_any)
		return;
	for (i = 1; i < q->ntags; i++) {
		add(qb, " AND EXISTS (SELECT 1 FROM file_tag ft"
			" WHERE ft.file_id = f.id AND ");
		tag_ids(qb, q, tenant, i);
		add(qb, probe_end);
	}
}

static int uses_fts(const struct sfs_query *q)
{
	return (q->name && utf8_chars(q->name) >= 3) ||
	       (q->filename && utf8_chars(q->filename) >= 3);
}

/* Do the tagged files drive the query (see tags_filter)? */
static int tags_drive(const struct sfs_query *q)
{
	return q->ntags && q->recursive && !uses_fts(q) &&
	       (!q->path || !strcmp(q->path, "/"));
}

/*
 * The count of a listing driven by one tag and filtered by nothing else
 * but is_deleted, without counting the tag's rows: the owner's files with
 * the tag are one row of tag_count (schema v9, kept by triggers in the
 * transactions that change tags), and the deleted ones among them are
 * taken off by going through the owner's deleted files (the trash:
 * usually few) instead of looking up every tagged file's row. 0 when the
 * query has other conditions.
 */
/* A listing driven by one tag, filtered by nothing else but is_deleted. */
static int one_tag(const struct sfs_query *q)
{
	return tags_drive(q) && q->ntags == 1 && !q->name && !q->filename &&
	       q->discarded < 0 && q->purged < 0 && !q->ingestion &&
	       !q->la_status && q->la_deleted < 0 && q->la_discarded < 0 &&
	       !q->sha256[0] && q->created_after == INT64_MIN &&
	       q->created_before == INT64_MAX && q->publish < 0;
}

static int tag_count(struct qb *qb, const struct sfs_query *q,
		     const struct sfs_actor *a)
{
	static const char tagged[] =
		"SELECT coalesce((SELECT c.n FROM tag_count c"
		" JOIN tag t ON t.id = c.tag_id"
		" WHERE c.owner_id = ? AND t.tenant_id = ?"
		" AND t.name = ? COLLATE NOCASE), 0)";
	static const char trashed[] =
		"SELECT COUNT(*) FROM file f"
		" JOIN file_tag ft ON ft.file_id = f.id"
		" JOIN tag t ON t.id = ft.tag_id"
		" WHERE f.owner_id = ? AND f.is_deleted = 1 AND t.tenant_id = ?"
		" AND t.name = ? COLLATE NOCASE";

	if (!one_tag(q))
		return 0;
	if (q->deleted == 0) {
		add(qb, "SELECT (");
		add(qb, tagged);
		add(qb, ") - (");
		add(qb, trashed);
		add(qb, ")");
	} else {
		add(qb, q->deleted > 0 ? trashed : tagged);
	}
	if (q->deleted <= 0) {
		bind_int(qb, a->user);
		bind_int(qb, a->tenant);
		bind_text(qb, q->tags[0]);
	}
	if (q->deleted >= 0) {
		bind_int(qb, a->user);
		bind_int(qb, a->tenant);
		bind_text(qb, q->tags[0]);
	}
	return 1;
}

/* "/a/" -> "/a0": the first string greater than every path below "/a/". */
static void upper_bound(const char *path, char *out, size_t size)
{
	size_t n = sfs_strlcpy(out, path, size);

	if (n && n < size)
		out[n - 1] = '/' + 1;
}

/* The WHERE conditions of GET /files (after "WHERE f.owner_id = ?"). */
static void files_where(struct qb *qb, const struct sfs_query *q,
			const struct sfs_actor *a, const char *upper, int drive)
{
	const char *path = q->path ? q->path : "/";

	/*
	 * With a trigram search or driving tags, the matching rowids are
	 * the cheapest way in; without statistics the planner would rather
	 * walk the owner's whole index and probe the list, so the owner
	 * term is kept off the indexes ("+").
	 */
	add(qb, uses_fts(q) || drive ? " WHERE +f.owner_id = ?"
				     : " WHERE f.owner_id = ?");
	bind_int(qb, a->user);
	if (q->deleted >= 0) {
		/* a literal, so the partial indexes on is_deleted apply */
		add(qb, q->deleted ? " AND f.is_deleted = 1"
				   : " AND f.is_deleted = 0");
	} else {
		/* keeps the (owner_id, is_deleted, ...) indexes usable */
		add(qb, " AND f.is_deleted IN (0, 1)");
	}
	if (!q->recursive) {
		add(qb, " AND f.dir = ?");
		bind_text(qb, path);
	} else if (strcmp(path, "/")) {
		add(qb, " AND f.dir >= ? AND f.dir < ?");
		bind_text(qb, path);
		bind_text(qb, upper);
	}
	if (q->discarded >= 0) {
		add(qb, " AND f.is_discarded = ?");
		bind_int(qb, q->discarded);
	}
	if (q->purged >= 0) {
		add(qb, " AND f.is_purged = ?");
		bind_int(qb, q->purged);
	}
	if (q->ingestion) {
		add(qb, " AND ((? >> f.ingestion) & 1) <> 0");
		bind_int(qb, q->ingestion);
	}
	if (q->la_status) {
		add(qb, " AND ((? >> f.la_status) & 1) <> 0");
		bind_int(qb, q->la_status);
	}
	if (q->la_deleted >= 0) {
		add(qb, " AND f.la_deleted = ?");
		bind_int(qb, q->la_deleted);
	}
	if (q->la_discarded >= 0) {
		add(qb, " AND f.la_purged = ?");
		bind_int(qb, q->la_discarded);
	}
	if (q->sha256[0]) {
		add(qb, " AND f.sha256 = ?");
		bind_text(qb, q->sha256);
	}
	if (q->created_after != INT64_MIN) {
		add(qb, " AND f.created_at >= ?");
		bind_int(qb, q->created_after);
	}
	if (q->created_before != INT64_MAX) {
		add(qb, " AND f.created_at <= ?");
		bind_int(qb, q->created_before);
	}
	if (q->publish >= 0) {
		add(qb, " AND f.publish = ?");
		bind_int(qb, q->publish);
	}
	substring(qb, 0, q->name);
	substring(qb, 1, q->filename);
	tags_filter(qb, q, a->tenant, drive);
}

static void order_by(struct qb *qb, const struct sfs_query *q)
{
	static const char *const frag[3][2] = {
		[SFS_SORT_CREATED] = { " ORDER BY f.created_at ASC, f.id ASC",
				       " ORDER BY f.created_at DESC, f.id "
				       "DESC" },
		[SFS_SORT_NAME] = { " ORDER BY f.name COLLATE NOCASE ASC,"
				    " f.id ASC",
				    " ORDER BY f.name COLLATE NOCASE DESC,"
				    " f.id DESC" },
		[SFS_SORT_SIZE] = { " ORDER BY f.size ASC, f.id ASC",
				    " ORDER BY f.size DESC, f.id DESC" },
	};
	unsigned s = (unsigned)q->sort < 3 ? (unsigned)q->sort : 0;

	/* SQLite's NULLs are the smallest values; PostgreSQL's the largest */
	if (qb->pg && s == SFS_SORT_SIZE)
		add(qb, q->desc ? " ORDER BY f.size DESC NULLS LAST, f.id DESC"
				: " ORDER BY f.size ASC NULLS FIRST, f.id ASC");
	else
		add(qb, frag[s][q->desc ? 1 : 0]);
}

/* The same order for a compound SELECT, by result column number. */
static void order_by_cols(struct qb *qb, const struct sfs_query *q)
{
	static const char *const frag[3][2] = {
		[SFS_SORT_CREATED] = { " ORDER BY 22 ASC, 1 ASC",
				       " ORDER BY 22 DESC, 1 DESC" },
		[SFS_SORT_NAME] = { " ORDER BY 7 COLLATE NOCASE ASC, 1 ASC",
				    " ORDER BY 7 COLLATE NOCASE DESC, 1 DESC" },
		[SFS_SORT_SIZE] = { " ORDER BY 15 ASC, 1 ASC",
				    " ORDER BY 15 DESC, 1 DESC" },
	};
	unsigned s = (unsigned)q->sort < 3 ? (unsigned)q->sort : 0;

	if (qb->pg && s == SFS_SORT_SIZE)
		add(qb, q->desc ? " ORDER BY 15 DESC NULLS LAST, 1 DESC"
				: " ORDER BY 15 ASC NULLS FIRST, 1 ASC");
	else if (qb->pg && s == SFS_SORT_NAME)
		add(qb, q->desc ? " ORDER BY name_key DESC, 1 DESC"
				: " ORDER BY name_key ASC, 1 ASC");
	else
		add(qb, frag[s][q->desc ? 1 : 0]);
}

/* page and size of a query filled in directly rather than by param. */
static enum sfs_status check_page(const struct sfs_query *q, struct sfs_err *e)
{
	if (q->size < 1 || q->size > SFS_PAGE_SIZE_MAX)
		return sfs_err_field(e, "size", "invalid",
				     "must be an integer from 1 to %d",
				     SFS_PAGE_SIZE_MAX);
	if (q->page < 0 || q->page > INT64_MAX / SFS_PAGE_SIZE_MAX)
		return sfs_err_field(e, "page", "invalid",
				     "must be an integer >= 0");
	return SFS_OK;
}

/* One row more than the page: whether it comes says if more pages do. */
/*
 * The page's size is written into the statement, not bound: PostgreSQL
 * costs a plan with LIMIT $n as if a tenth of the rows were wanted, so
 * its generic plan looks dear and it plans every execution afresh (0.3
 * ms of a 1 ms tag filter); with the number in the text the generic plan
 * is chosen after five runs. So is the first page's offset (the usual
 * one); later pages bind theirs, so that scrolling makes no new
 * statement per page.
 */
static void limit(struct qb *qb, const struct sfs_query *q)
{
	char n[48];

	snprintf(n, sizeof(n), " LIMIT %lld OFFSET ", (long long)q->size + 1);
	add(qb, n);
	if (q->page == 0) {
		add(qb, "0");
		return;
	}
	add(qb, "?");
	bind_int(qb, q->page * q->size);
}

/*
 * A page of a one-tag listing in creationDate order, from the index of
 * the tag's rows (schema v10: they carry their file's owner, creationDate
 * and deletion mark): the page's ids are the first rows of one index
 * range, and only those files are read, instead of walking the owner's
 * files newest first and probing each for the tag. A cursor's position
 * is a bound of the same range.
 *
 * One statement: the tag's id looked up once (tg: a name compared under
 * the NOCASE collation, ICU's on PostgreSQL, against each of the
 * tenant's tags), the page's ids (ids), the page's rows with their tags
 * (the rows' own copy, schema v12) and, with_total, the listing's total
 * as the column after the tags (from the counters, see tag_count).
 */
static int tag_page_ok(const struct sfs_query *q)
{
	return one_tag(q) && q->deleted >= 0 && q->sort == SFS_SORT_CREATED;
}

/* The listing's total as a column of the page (tag_count's, with tg). */
static void tag_total(struct qb *qb, const struct sfs_query *q,
		      const struct sfs_actor *a)
{
	static const char trashed[] =
		"(SELECT COUNT(*) FROM file f2"
		" JOIN file_tag ft2 ON ft2.file_id = f2.id"
		" WHERE f2.owner_id = ? AND f2.is_deleted = 1"
		" AND ft2.tag_id = tg.id)";

	add(qb, ", (SELECT ");
	if (q->deleted) {
		add(qb, trashed);
	} else {
		add(qb, "coalesce((SELECT c.n FROM tag_count c"
			" WHERE c.owner_id = ? AND c.tag_id = tg.id),"
			" 0) - ");
		bind_int(qb, a->user);
		add(qb, trashed);
	}
	bind_int(qb, a->user);
	add(qb, " FROM tg)");
}

/* The page's tag rows (FROM on): its ids in the listing's order. */
static void tag_rows(struct qb *qb, const struct sfs_query *q,
		     const struct sfs_actor *a, int64_t at_created,
		     int64_t at_row)
{
	add(qb, " FROM file_tag ft WHERE ft.owner_id = ?");
	bind_int(qb, a->user);
	add(qb,
	    q->deleted ? " AND ft.is_deleted = 1" : " AND ft.is_deleted = 0");
	add(qb, " AND ft.tag_id = (SELECT id FROM tg)");
	if (q->cursor_id[0]) {
		add(qb, q->desc ? " AND (ft.created_at, ft.file_id) < (?, ?)"
				: " AND (ft.created_at, ft.file_id) > (?, ?)");
		bind_int(qb, at_created);
		bind_int(qb, at_row);
	}
	add(qb, q->desc ? " ORDER BY ft.created_at DESC, ft.file_id DESC"
			: " ORDER BY ft.created_at ASC, ft.file_id ASC");
	limit(qb, q);
}

static void tag_page(struct qb *qb, const struct sfs_query *q,
		     const struct sfs_actor *a, int64_t at_created,
		     int64_t at_row, int with_total)
{
	if (qb->pg) {
		/*
		 * PostgreSQL compares the name under its ICU collation with
		 * each of the tenant's tags (a sequential scan of a small
		 * table: 50 tags, 8 us of a page's ~85); the tag whose name
		 * has the same bytes is looked up first (a bytewise compare
		 * each), the ICU lookup only when none has: the same tag,
		 * as equal bytes are equal under NOCASE and the tenant's
		 * names are unique under it (tg's id is then NULL, not no
		 * row: no tag rows match it, and no row brings the total)
		 */
		add(qb, "WITH tg AS (SELECT coalesce((SELECT id FROM tag"
			" WHERE tenant_id = ? AND name COLLATE BINARY = ?),"
			" (SELECT id FROM tag WHERE tenant_id = ?"
			" AND name = ? COLLATE NOCASE)) AS id)");
		bind_int(qb, a->tenant);
		bind_text(qb, q->tags[0]);
	} else {
		add(qb, "WITH tg AS (SELECT id FROM tag WHERE tenant_id = ?"
			" AND name = ? COLLATE NOCASE)");
	}
	bind_int(qb, a->tenant);
	bind_text(qb, q->tags[0]);
	if (qb->pg) {
		/*
		 * PostgreSQL: the tag rows drive a nested loop in their
		 * index's order, one file row looked up by id for each (no
		 * semi-join, no sort of the wide rows; the join's key is an
		 * expression so that the planner does not cache lookups of
		 * ids that never repeat): 1,000,000 files, page of 20, server
		 * CPU 113-152 -> 85-99 us. Its rows are the listing row
		 * (FILE_LIST_COLS: the owner and tenant are the actor's).
		 */
		add(qb, " SELECT " FILE_LIST_COLS ", " FILE_TAGS_COL);
		if (with_total)
			tag_total(qb, q, a);
		add(qb, " FROM (SELECT ft.file_id, ft.file_id + 0 AS jid,"
			" ft.created_at");
		tag_rows(qb, q, a, at_created, at_row);
		add(qb, ") ids JOIN file f ON f.id = ids.jid"
			" WHERE f.owner_id = ?");
		bind_int(qb, a->user);
		add(qb, q->deleted ? " AND f.is_deleted = 1"
				   : " AND f.is_deleted = 0");
		add(qb,
		    q->desc ? " ORDER BY ids.created_at DESC,"
			      " ids.file_id DESC"
			    : " ORDER BY ids.created_at ASC, ids.file_id ASC");
		return;
	}
	add(qb, ", ids AS (SELECT ft.file_id");
	tag_rows(qb, q, a, at_created, at_row);
	add(qb, ") SELECT " FILE_COLS ", " FILE_TAGS_COL);
	if (with_total)
		tag_total(qb, q, a);
	add(qb, FILE_FROM);
	add(qb, " WHERE f.id IN (SELECT file_id FROM ids)");
	/* the files' own marks too: the ids are only where to look */
	add(qb, " AND +f.owner_id = ?");
	bind_int(qb, a->user);
	add(qb,
	    q->deleted ? " AND +f.is_deleted = 1" : " AND +f.is_deleted = 0");
	order_by(qb, q);
}

/*
 * The total without a COUNT when the page tells it: rows came and no row
 * beyond the page did (or the first page is short), so the total is the
 * offset plus the rows. Otherwise 0: a COUNT is needed.
 */
static int total_known(const struct sfs_query *q, const struct sfs_file_list *l,
		       int more)
{
	return !more && (l->n > 0 || q->page == 0);
}

/*
 * A page's tags come with its rows (FILE_TAGS_COL: the row's copy of its
 * tag names), instead of one more statement per row or per page (which
 * cost a tenth of a listing: statements, and json_each's allocations
 * under SQLite's global memory mutex) or a subquery per row (half of a
 * one-tag page's time on PostgreSQL).
 */
#define TAGS_COL FILE_TAGS_COL

/*
 * A count that chooses the plan also reads the owner's number of files,
 * in the same statement (one round trip less on PostgreSQL).
 */
static void count_owned(struct qb *qb, const struct sfs_actor *a)
{
	add(qb, "), (SELECT nfiles FROM dir WHERE owner_id = ?"
		" AND path = '/')");
	bind_int(qb, a->user);
}

/*
 * A GET /files listing on its way through sfs_query_files' steps: how it
 * is read, and what is known of it so far.
 */
struct listing {
	const struct sfs_query *q;
	const struct sfs_actor *a;
	char upper[SFS_VPATH_MAX + 2]; /* upper_bound of the path */
	int drive;		       /* the tagged files drive (tags_drive) */
	int tpage;		       /* a one-tag page (tag_page_ok) */
	int counted;		       /* the total is known */
	int dir_total;		       /* the page's rows bring the total */
	int64_t at_created, at_row;    /* a cursor's position (cursor_at) */
};

/* The count's statement; when the tags may drive, the plan's too. */
static void count_sql(const struct listing *ls, struct qb *count)
{
	if (ls->drive)
		add(count, "SELECT (");
	if (!tag_count(count, ls->q, ls->a)) {
		add(count, "SELECT COUNT(*) FROM file f");
		files_where(count, ls->q, ls->a, ls->upper, ls->drive);
	}
	if (ls->drive)
		count_owned(count, ls->a);
}

/*
 * Before the page: where a cursor stands, and whether the tags drive the
 * query, which the count decides.
 */
static enum sfs_status plan(struct listing *ls, struct db *d, struct qb *count,
			    struct sfs_file_list *out, struct sfs_err *e)
{
	const struct sfs_query *q = ls->q;
	enum sfs_status ret = SFS_OK;
	int64_t owned = 0;

	/* a cursor's walk was counted at its first page */
	if (q->cursor_id[0]) {
		ret = sfsi_query_cursor_at(d, ls->a, q, &ls->at_created,
					   &ls->at_row, e);
		out->total = q->cursor_total;
		ls->counted = 1;
	}
	/* driving from the tags is chosen by the count: count first */
	if (!ret && ls->drive && !ls->counted && !ls->tpage) {
		ret = sfsi_query_fetch_count(d, count, &out->total, &owned, e);
		ls->counted = 1;
	} else if (!ret && ls->drive && !ls->tpage) {
		ret = sfsi_query_fetch_owned(d, ls->a, &owned, e);
	}
	if (!ret && ls->drive && !ls->tpage)
		sfsi_query_scan_cheaper(q, out->total, owned, &ls->drive);
	return ret;
}

/* The page's statement: a one-tag page, or the filters' (files_where). */
static void page_sql(struct listing *ls, struct qb *page)
{
	const struct sfs_query *q = ls->q;

	if (ls->tpage) {
		/* no plan to choose: the total comes with the page's rows
		 * (from the counters: one statement, one round trip) */
		tag_page(page, q, ls->a, ls->at_created, ls->at_row,
			 !ls->counted);
	} else {
		/*
		 * A directory's page brings its count along too (one
		 * statement less): it reads the same index range as the
		 * page, of one directory only
		 */
		ls->dir_total = !ls->counted && !q->recursive && !q->name &&
				!q->filename;
		/* PostgreSQL: listing rows (the actor's own files, no join
		 * of the owner and tenant rows) */
		add(page, page->pg ? "SELECT " FILE_LIST_COLS ", " TAGS_COL
				   : "SELECT " FILE_COLS ", " TAGS_COL);
		if (ls->dir_total) {
			add(page, ", (SELECT COUNT(*) FROM file f");
			files_where(page, q, ls->a, ls->upper, ls->drive);
			add(page, ")");
		}
		add(page, page->pg ? " FROM file f" : FILE_FROM);
		files_where(page, q, ls->a, ls->upper, ls->drive);
		if (q->cursor_id[0]) {
			/* the order's key (order_by): an index range, not
			 * an OFFSET */
			add(page,
			    q->desc ? " AND (f.created_at, f.id) < (?, ?)"
				    : " AND (f.created_at, f.id) > (?, ?)");
			bind_int(page, ls->at_created);
			bind_int(page, ls->at_row);
		}
		order_by(page, q);
		limit(page, q);
	}
}

/*
 * The page's rows, then its total (brought by the rows, told by the page
 * or counted) and a directory's subdirectories.
 */
static enum sfs_status read_page(struct listing *ls, struct db *d,
				 struct qb *page, struct qb *count,
				 struct sfs_file_list *out, struct sfs_err *e)
{
	const struct sfs_query *q = ls->q;
	enum sfs_status ret;
	int64_t total = -1;
	int more = 0;

	/* on PostgreSQL the rows are listing rows (tag_page, page_sql) */
	ret = sfsi_query_fetch_page(
		d, page, 0, page->pg ? ls->a : NULL, (size_t)q->size, &more,
		(ls->tpage || ls->dir_total) && !ls->counted ? &total : NULL,
		out, e);
	out->more = more;
	if (!ret && !ls->counted && total >= 0) {
		out->total = total;
		ls->counted = 1;
	}
	if (!ret && !ls->counted) {
		if (total_known(q, out, more))
			out->total = q->page * q->size + (int64_t)out->n;
		else
			ret = sfsi_query_fetch_count(d, count, &out->total,
						     NULL, e);
	}
	if (!ret && !q->recursive) {
		out->has_dirs = 1;
		ret = sfsi_query_load_dirs(d, ls->a, q->path ? q->path : "/",
					   out, e);
	}
	return ret;
}

enum sfs_status sfs_query_files(struct sfs_store *s, const struct sfs_actor *a,
				const struct sfs_query *q,
				struct sfs_file_list *out, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->query_files(s, q, out, e);
	struct listing ls = { .q = q, .a = a, .tpage = tag_page_ok(q) };
	const char *path = q->path ? q->path : "/";
	struct qb page, count;
	struct db *d = NULL;
	enum sfs_status ret;
	/*
	 * A first page of one tag is one statement with its total (none
	 * after it: an empty first page's total is 0), so it is a snapshot
	 * by itself: no read transaction (on PostgreSQL, no BEGIN and no
	 * ROLLBACK sent and read back around it)
	 */
	int txn = !(ls.tpage && !q->cursor_id[0] && q->page == 0);

	memset(out, 0, sizeof(*out));
	qb_init(&page);
	qb_init(&count);
	page.pg = count.pg = sfsi_db_store_is_pg(s);
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = check_page(q, e);
	if (!ret)
		ret = sfsi_query_check_cursor(q, e);
	if (!ret)
		ret = sfs_vpath_check(path, "path", e);
	if (ret)
		goto out;
	upper_bound(path, ls.upper, sizeof(ls.upper));
	ls.drive = tags_drive(q);
	count_sql(&ls, &count);

	ret = sfsi_db_get(s, &d, e);
	if (!ret && txn)
		ret = sfsi_db_begin_read(d, e);
	if (!ret)
		ret = plan(&ls, d, &count, out, e);
	page_sql(&ls, &page);
	if (!ret)
		ret = read_page(&ls, d, &page, &count, out, e);
	if (d && txn)
		sfsi_db_rollback(d); /* a read: nothing to keep */
out:
	sfsi_db_put(d);
	qb_release(&page);
	qb_release(&count);
	if (ret)
		sfs_file_list_release(out);
	return ret;
}

/*
 * The two halves of shared-with-me: files shared directly with the actor,
 * and INTERNAL files of the tenant not directly shared with them (so a
 * file both shared and internal appears once, as a direct share).
 */
static void shared_body(struct qb *qb, const struct sfs_query *q,
			const struct sfs_actor *a, int count)
{
	int direct = q->access < 0 || q->access == SFS_ACCESS_DIRECT_SHARE;
	int internal = q->access < 0 || q->access == SFS_ACCESS_INTERNAL;

	/*
	 * PostgreSQL orders a compound SELECT by its output columns only,
	 * never by an expression of one: the name's sort key is a column
	 */
	const char *key = qb->pg && !count ? ", lower(f.name) AS name_key" : "";

	if (direct) {
		if (count) {
			add(qb, "SELECT f.id FROM share s"
				" JOIN file f ON f.id = s.file_id");
		} else {
			add(qb, "SELECT " FILE_COLS ", 1, s.perm, cu.uuid,"
				" s.created_at, " TAGS_COL);
			add(qb, key);
			add(qb, " FROM share s"
				" JOIN file f ON f.id = s.file_id"
				" JOIN user u ON u.id = f.owner_id"
				" JOIN tenant t ON t.id = f.tenant_id"
				" LEFT JOIN user cu ON cu.id = s.created_by");
		}
		add(qb, " WHERE s.user_id = ? AND f.tenant_id = ?"
			" AND f.owner_id <> ? AND f.is_deleted = 0");
		bind_int(qb, a->user);
		bind_int(qb, a->tenant);
		bind_int(qb, a->user);
		substring(qb, 0, q->name);
		substring(qb, 1, q->filename);
	}
	if (direct && internal)
		add(qb, " UNION ALL ");
	if (internal) {
		if (count) {
			add(qb, "SELECT f.id FROM file f");
		} else {
			add(qb, "SELECT " FILE_COLS
				", 2, 1, NULL, NULL, " TAGS_COL);
			add(qb, key);
			add(qb, FILE_FROM);
		}
		add(qb, uses_fts(q) ? " WHERE +f.tenant_id = ?"
				    : " WHERE f.tenant_id = ?");
		add(qb, " AND f.publish = 1"
			" AND f.is_deleted = 0 AND f.owner_id <> ?"
			" AND NOT EXISTS (SELECT 1 FROM share s"
			" WHERE s.file_id = f.id AND s.user_id = ?)");
		bind_int(qb, a->tenant);
		bind_int(qb, a->user);
		bind_int(qb, a->user);
		substring(qb, 0, q->name);
		substring(qb, 1, q->filename);
	}
}

enum sfs_status sfs_query_shared(struct sfs_store *s, const struct sfs_actor *a,
				 const struct sfs_query *q,
				 struct sfs_file_list *out, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->query_shared(s, q, out, e);
	struct qb page, count;
	struct db *d = NULL;
	enum sfs_status ret;
	int more = 0;

	memset(out, 0, sizeof(*out));
	qb_init(&page);
	qb_init(&count);
	page.pg = count.pg = sfsi_db_store_is_pg(s);
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = check_page(q, e);
	/* (keyset pages are GET /files' only: a cursor here would be
	 * ignored, and its client given the first page for ever) */
	if (!ret && q->cursor_id[0])
		ret = sfs_err_field(e, "cursor", "invalid",
				    "shared-with-me listings have no cursor: "
				    "page through them with page");
	if (ret)
		goto out;
	if (q->access == SFS_ACCESS_OWNER) {
		ret = sfs_err_field(e, "accessType", "invalid",
				    "must be DIRECT_SHARE or INTERNAL");
		goto out;
	}
	shared_body(&page, q, a, 0);
	order_by_cols(&page, q);
	limit(&page, q);
	add(&count, "SELECT COUNT(*) FROM (");
	shared_body(&count, q, a, 1);
	add(&count, ") AS shared");

	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = sfsi_db_begin_read(d, e);
	if (!ret)
		ret = sfsi_query_fetch_page(d, &page, 1, NULL, (size_t)q->size,
					    &more, NULL, out, e);
	if (!ret && total_known(q, out, more))
		out->total = q->page * q->size + (int64_t)out->n;
	else if (!ret)
		ret = sfsi_query_fetch_count(d, &count, &out->total, NULL, e);
	if (d)
		sfsi_db_rollback(d);
out:
	sfsi_db_put(d);
	qb_release(&page);
	qb_release(&count);
	if (ret)
		sfs_file_list_release(out);
	return ret;
}
