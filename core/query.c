/*
 * Queries of files: the list queries of GET /files and shared-with-me,
 * assembled from fixed SQL fragments with every value bound (never spliced
 * into the SQL text). Their parameters are parsed in query_param.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "auth_i.h"
#include "db_i.h"
#include "file_i.h"
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

#define QB_BINDS 96
#define QB_OWNED 8

/*
 * A statement being assembled: SQL text made of fixed fragments only, and
 * the values for its '?' placeholders in order. The first failure sticks.
 */
struct qb {
	struct sfs_buf sql;
	struct {
		int text;
		int64_t i;
		const char *s;
	} b[QB_BINDS];
	int n;
	char *owned[QB_OWNED];
	int nowned;
	enum sfs_status st;
	int pg; /* the store's metadata are in PostgreSQL */
};

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

static struct db_stmt *qb_prep(struct qb *qb, struct db *d, struct sfs_err *e)
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

	ret = sfsi_db_begin_nosync(d, e);
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

void sfsi_fts_install(struct sfs_store *s)
{
	sfsi_janitor_add(s, fts_chore);
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
 */
static int tag_page_ok(const struct sfs_query *q)
{
	return one_tag(q) && q->deleted >= 0 && q->sort == SFS_SORT_CREATED;
}

static void tag_page(struct qb *qb, const struct sfs_query *q,
		     const struct sfs_actor *a, int64_t at_created,
		     int64_t at_row)
{
	add(qb, " WHERE f.id IN (SELECT ft.file_id FROM file_tag ft"
		" WHERE ft.owner_id = ?");
	bind_int(qb, a->user);
	add(qb,
	    q->deleted ? " AND ft.is_deleted = 1" : " AND ft.is_deleted = 0");
	add(qb, " AND ft.tag_id = (SELECT id FROM tag WHERE tenant_id = ?"
		" AND name = ? COLLATE NOCASE)");
	bind_int(qb, a->tenant);
	bind_text(qb, q->tags[0]);
	if (q->cursor_id[0]) {
		add(qb, q->desc ? " AND (ft.created_at, ft.file_id) < (?, ?)"
				: " AND (ft.created_at, ft.file_id) > (?, ?)");
		bind_int(qb, at_created);
		bind_int(qb, at_row);
	}
	add(qb, q->desc ? " ORDER BY ft.created_at DESC, ft.file_id DESC"
			: " ORDER BY ft.created_at ASC, ft.file_id ASC");
	limit(qb, q);
	/* the files' own marks too: the ids are only where to look */
	add(qb, ") AND +f.owner_id = ?");
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

/* ---- running them ------------------------------------------------------ */

static enum sfs_status push_file(struct sfs_file_list *l, size_t *cap,
				 struct sfs_file **slot, struct sfs_err *e)
{
	if (l->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct sfs_file *nf = realloc(l->files, nc * sizeof(*nf));

		if (!nf)
			return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					"out of memory");
		l->files = nf;
		*cap = nc;
	}
	*slot = &l->files[l->n];
	sfs_file_init(*slot);
	return SFS_OK;
}

static enum sfs_status status_of(struct sfs_err *e)
{
	return e && e->status ? e->status : SFS_IO;
}

/*
 * A page's tags come with its rows (FILE_TAGS_COL), one correlated
 * subquery per row in the page statement, instead of one more statement
 * per row or per page (which cost a tenth of a listing: statements, and
 * json_each's allocations under SQLite's global memory mutex).
 */
#define TAGS_COL FILE_TAGS_COL

/*
 * Run a page query: each row is FILE_COLS, then (shared) access kind,
 * permission, sharer uuid and share time, then TAGS_COL; with total (set
 * to -1 by the caller), the listing's total after it, read from the
 * first row (left -1 when no row came).
 */
static enum sfs_status fetch_page(struct db *d, struct qb *qb, int shared,
				  size_t keep, int *more, int64_t *total,
				  struct sfs_file_list *l, struct sfs_err *e)
{
	struct db_stmt *st;
	struct sfs_file *f = NULL;
	enum sfs_status ret = SFS_OK;
	size_t cap = 0;
	int rc, tags = shared ? FILE_NCOLS + 4 : FILE_NCOLS;

	st = qb_prep(qb, d, e);
	if (!st)
		return status_of(e);
	*more = 0;
	while ((rc = sfsi_db_step(st, e)) == 1) {
		/* a total as the column after the tags: any row has it */
		if (total && *total < 0)
			*total = sfsi_db_col_int(st, tags + 1);
		if (l->n == keep) {
			*more = 1;
			break;
		}
		ret = push_file(l, &cap, &f, e);
		if (ret)
			break;
		ret = sfsi_file_from_row(st, f, e);
		l->n++; /* released with the list even when partial */
		if (!ret)
			ret = sfsi_file_split_tags(sfsi_db_col_text(st, tags),
						   f, e);
		if (ret)
			break;
		if (!shared) {
			f->access = SFS_ACCESS_OWNER;
			f->perm = SFS_PERM_OWNER;
			continue;
		}
		f->access = (enum sfs_access)sfsi_db_col_int(st, FILE_NCOLS);
		f->perm = (enum sfs_perm)sfsi_db_col_int(st, FILE_NCOLS + 1);
		if (!sfsi_db_col_null(st, FILE_NCOLS + 2))
			sfs_strlcpy(f->shared_by,
				    sfsi_db_col_text(st, FILE_NCOLS + 2),
				    sizeof(f->shared_by));
		if (!sfsi_db_col_null(st, FILE_NCOLS + 3))
			f->shared_at = sfsi_db_col_int(st, FILE_NCOLS + 3);
	}
	if (rc < 0 && !ret)
		ret = status_of(e);
	sfsi_db_finalize(st);
	return ret;
}

/* The count; with owned, the second column too (see count_owned). */
static enum sfs_status fetch_count(struct db *d, struct qb *qb, int64_t *n,
				   int64_t *owned, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;
	int rc;

	st = qb_prep(qb, d, e);
	if (!st)
		return status_of(e);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		*n = sfsi_db_col_int(st, 0);
		if (owned)
			*owned = sfsi_db_col_int(st, 1);
	} else
		ret = rc < 0 ? status_of(e) : SFS_IO;
	sfsi_db_finalize(st);
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum sfs_status load_dirs(struct db *d, const struct sfs_actor *a,
				 const char *path, struct sfs_file_list *l,
				 struct sfs_err *e)
{
	struct db_stmt *st;
	size_t plen = strlen(path), cap = 0;
	enum sfs_status ret = SFS_OK;
	int rc;

	st = sfsi_db_prep(d,
			  "SELECT path FROM dir WHERE owner_id = ?1"
			  " AND parent = ?2 ORDER BY path",
			  e);
	if (!st)
		return status_of(e);
	sfsi_db_bind_int(st, 1, a->user);
	sfsi_db_bind_text(st, 2, path);
	while ((rc = sfsi_db_step(st, e)) == 1) {
		const char *p = sfsi_db_col_text(st, 0);
		size_t n = p ? strlen(p) : 0;

		if (n <= plen + 1 || strncmp(p, path, plen))
			continue;
		if (l->ndirs == cap) {
			size_t nc = cap ? cap * 2 : 8;
			char **nd = realloc(l->dirs, nc * sizeof(*nd));

			if (!nd) {
				ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					       "out of memory");
				break;
			}
			l->dirs = nd;
			cap = nc;
		}
		l->dirs[l->ndirs] = strndup(p + plen, n - plen - 1);
		if (!l->dirs[l->ndirs]) {
			ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				       "out of memory");
			break;
		}
		l->ndirs++;
	}
	if (rc < 0 && !ret)
		ret = status_of(e);
	sfsi_db_reset(st);
	/* by name: the rows come in path order, where "a-x/" < "a/" */
	if (!ret && l->ndirs > 1)
		qsort(l->dirs, l->ndirs, sizeof(*l->dirs), cmp_str);
	return ret;
}

/*
 * After counting through the tagged files: is walking the owner's files
 * newest first and probing each for the tags cheaper for this page? It
 * visits about (offset + size) * owned / total rows, where driving from
 * the tags costs about total row lookups. owned: the owner's live files
 * at any depth (the root's row), read by the count's statement.
 */
static void scan_cheaper(const struct sfs_query *q, int64_t total,
			 int64_t owned, int *drive)
{
	double want;

	if (total <= 0 || q->deleted != 0)
		return;
	want = (double)(q->page + 1) * (double)q->size;
	if (want * (double)owned < (double)total * (double)total)
		*drive = 0;
}

/* owned alone, for a cursor's page (its walk was counted before) */
static enum sfs_status fetch_owned(struct db *d, const struct sfs_actor *a,
				   int64_t *owned, struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	st = sfsi_db_prep(d,
			  "SELECT nfiles FROM dir WHERE owner_id = ?1"
			  " AND path = '/'",
			  e);
	if (!st)
		return status_of(e);
	sfsi_db_bind_int(st, 1, a->user);
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		*owned = sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	return rc < 0 ? status_of(e) : SFS_OK;
}

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
 * A cursor continues the order it was made in, alone: no page beside it
 * (the seed's paging and the cursor's are two ways through one listing).
 */
static enum sfs_status check_cursor(const struct sfs_query *q,
				    struct sfs_err *e)
{
	if (!q->cursor_id[0])
		return SFS_OK;
	if (q->sort != SFS_SORT_CREATED || q->desc != q->cursor_desc)
		return sfs_err_field(e, "cursor", "invalid",
				     "continues a listing sorted by "
				     "creationDate,%s: give that sort",
				     q->cursor_desc ? "desc" : "asc");
	if (q->page)
		return sfs_err_field(e, "page", "invalid",
				     "must be 0 or absent with a cursor");
	if (q->cursor_filters != sfs_query_filters_mark(q))
		return sfs_err_field(e, "cursor", "invalid",
				     "continues a listing with other filters: "
				     "give the filters it was made with");
	return SFS_OK;
}

/*
 * Where a cursor's file stands in the order by creationDate: its
 * creationDate and row. Only the actor's own files are positions (any
 * other id is not a cursor of theirs, whether it exists or not); a file
 * row is never removed, so a cursor outlives its file's deletion.
 */
static enum sfs_status cursor_at(struct db *d, const struct sfs_actor *a,
				 const struct sfs_query *q, int64_t *created,
				 int64_t *row, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;
	int rc;

	st = sfsi_db_prep(d,
			  "SELECT created_at, id FROM file WHERE uuid = ?1"
			  " AND owner_id = ?2",
			  e);
	if (!st)
		return status_of(e);
	sfsi_db_bind_text(st, 1, q->cursor_id);
	sfsi_db_bind_int(st, 2, a->user);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		*created = sfsi_db_col_int(st, 0);
		*row = sfsi_db_col_int(st, 1);
	} else if (rc == 0) {
		ret = sfs_err_field(e, "cursor", "invalid",
				    "is not a cursor of this listing");
	} else {
		ret = status_of(e);
	}
	sfsi_db_reset(st);
	return ret;
}

enum sfs_status sfs_query_files(struct sfs_store *s, const struct sfs_actor *a,
				const struct sfs_query *q,
				struct sfs_file_list *out, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->query_files(s, q, out, e);
	char upper[SFS_VPATH_MAX + 2];
	const char *path = q->path ? q->path : "/";
	struct qb page, count;
	struct db *d = NULL;
	enum sfs_status ret;
	int64_t owned = 0, total = -1;
	int drive, more = 0, counted = 0, tpage = tag_page_ok(q), dir_total = 0;
	int64_t at_created = 0, at_row = 0;

	memset(out, 0, sizeof(*out));
	qb_init(&page);
	qb_init(&count);
	page.pg = count.pg = sfsi_db_store_is_pg(s);
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = check_page(q, e);
	if (!ret)
		ret = check_cursor(q, e);
	if (!ret)
		ret = sfs_vpath_check(path, "path", e);
	if (ret)
		goto out;
	upper_bound(path, upper, sizeof(upper));
	drive = tags_drive(q);
	if (drive)
		add(&count, "SELECT (");
	if (!tag_count(&count, q, a)) {
		add(&count, "SELECT COUNT(*) FROM file f");
		files_where(&count, q, a, upper, drive);
	}
	if (drive)
		count_owned(&count, a);

	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = sfsi_db_begin_read(d, e);
	/* a cursor's walk was counted at its first page */
	if (!ret && q->cursor_id[0]) {
		ret = cursor_at(d, a, q, &at_created, &at_row, e);
		out->total = q->cursor_total;
		counted = 1;
	}
	/* driving from the tags is chosen by the count: count first */
	if (!ret && drive && !counted && !tpage) {
		ret = fetch_count(d, &count, &out->total, &owned, e);
		counted = 1;
	} else if (!ret && drive && !tpage) {
		ret = fetch_owned(d, a, &owned, e);
	}
	if (!ret && drive && !tpage)
		scan_cheaper(q, out->total, owned, &drive);
	if (tpage) {
		/* no plan to choose: the total comes with the page's rows
		 * (from the counters: one statement, one round trip) */
		add(&page, "SELECT " FILE_COLS ", " TAGS_COL);
		if (!counted) {
			add(&page, ", (");
			tag_count(&page, q, a);
			add(&page, ")");
		}
		add(&page, FILE_FROM);
		tag_page(&page, q, a, at_created, at_row);
	} else {
		/*
		 * A directory's page brings its count along too (one
		 * statement less): it reads the same index range as the
		 * page, of one directory only
		 */
		dir_total =
			!counted && !q->recursive && !q->name && !q->filename;
		add(&page, "SELECT " FILE_COLS ", " TAGS_COL);
		if (dir_total) {
			add(&page, ", (SELECT COUNT(*) FROM file f");
			files_where(&page, q, a, upper, drive);
			add(&page, ")");
		}
		add(&page, FILE_FROM);
		files_where(&page, q, a, upper, drive);
		if (q->cursor_id[0]) {
			/* the order's key (order_by): an index range, not
			 * an OFFSET */
			add(&page,
			    q->desc ? " AND (f.created_at, f.id) < (?, ?)"
				    : " AND (f.created_at, f.id) > (?, ?)");
			bind_int(&page, at_created);
			bind_int(&page, at_row);
		}
		order_by(&page, q);
		limit(&page, q);
	}
	if (!ret)
		ret = fetch_page(d, &page, 0, (size_t)q->size, &more,
				 (tpage || dir_total) && !counted ? &total
								  : NULL,
				 out, e);
	out->more = more;
	if (!ret && !counted && total >= 0) {
		out->total = total;
		counted = 1;
	}
	if (!ret && !counted) {
		if (total_known(q, out, more))
			out->total = q->page * q->size + (int64_t)out->n;
		else
			ret = fetch_count(d, &count, &out->total, NULL, e);
	}
	if (!ret && !q->recursive) {
		out->has_dirs = 1;
		ret = load_dirs(d, a, path, out, e);
	}
	if (d)
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
		ret = fetch_page(d, &page, 1, (size_t)q->size, &more, NULL, out,
				 e);
	if (!ret && total_known(q, out, more))
		out->total = q->page * q->size + (int64_t)out->n;
	else if (!ret)
		ret = fetch_count(d, &count, &out->total, NULL, e);
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

struct names_ctx {
	const char *const *names;
	size_t n;
	const char *prefix;
	int (*fn)(void *arg, const struct sfs_file *f);
	void *arg;
};

/* Only the rows whose name is exactly one of the names, or id prefixed. */
static int name_filter(void *arg, const struct sfs_file *f)
{
	const struct names_ctx *c = arg;
	size_t i;

	if (c->prefix && !strncmp(f->id, c->prefix, strlen(c->prefix)))
		return c->fn(c->arg, f);
	for (i = 0; i < c->n; i++)
		if (c->names[i] && !strcmp(c->names[i], f->name))
			return c->fn(c->arg, f);
	return 0;
}

/*
 * The mount's rows of one directory: read only what an entry shows, with
 * no joins (the owner is the actor) and no copies: the strings point into
 * the row while fn runs. Filled: ino, id, owner and tenant (the actor's),
 * name, filename, path, size, la.status, la.size, la.deleted, la.purged,
 * mtime_ns, atime_ns, ctime_ns, suffixed, access, perm.
 */
#define DIR_SEL                                                                \
	"id, uuid, name, filename, size, la_status, la_size, la_deleted,"      \
	" la_purged, mtime_ns, ctime_ns, entry_suffix, atime_ns"
#define DIR_COLS                                                               \
	"SELECT " DIR_SEL " FROM file WHERE owner_id = ?1 AND is_deleted = 0"  \
	" AND dir = ?2"

static enum sfs_status dir_rows(struct db_stmt *st, const struct sfs_actor *a,
				const char *path,
				int (*fn)(void *arg, const struct sfs_file *f),
				void *arg, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;
	int rc, stop = 0;

	while ((rc = sfsi_db_step(st, e)) == 1) {
		struct sfs_file f;

		sfs_file_init(&f);
		f.ino = sfsi_db_col_int(st, 0);
		sfs_strlcpy(f.id, sfsi_db_col_text(st, 1), sizeof(f.id));
		f.owner = a->user;
		sfs_strlcpy(f.owner_id, a->user_id, sizeof(f.owner_id));
		f.tenant = a->tenant;
		sfs_strlcpy(f.tenant_id, a->tenant_id, sizeof(f.tenant_id));
		f.name = (char *)sfsi_db_col_text(st, 2);
		f.filename = (char *)sfsi_db_col_text(st, 3);
		f.path = (char *)path;
		f.size = sfsi_db_col_null(st, 4) ? -1 : sfsi_db_col_int(st, 4);
		f.la.status = (enum sfs_jstate)sfsi_db_col_int(st, 5);
		f.la.size =
			sfsi_db_col_null(st, 6) ? -1 : sfsi_db_col_int(st, 6);
		f.la.deleted = (int)sfsi_db_col_int(st, 7);
		f.la.purged = (int)sfsi_db_col_int(st, 8);
		f.mtime_ns = sfsi_db_col_int(st, 9);
		f.ctime_ns = sfsi_db_col_int(st, 10);
		f.suffixed = (int)sfsi_db_col_int(st, 11);
		f.atime_ns = sfsi_db_col_null(st, 12) ? f.mtime_ns
						      : sfsi_db_col_int(st, 12);
		f.access = SFS_ACCESS_OWNER;
		f.perm = SFS_PERM_OWNER;
		if (!f.name)
			ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
				       "a file without name");
		else
			stop = fn(arg, &f);
		f.name = f.filename = f.path = NULL;
		sfs_file_release(&f);
		if (ret || stop)
			break;
	}
	if (rc < 0 && !ret)
		ret = status_of(e);
	sfsi_db_reset(st);
	return ret;
}

enum sfs_status sfs_query_dir_files(struct sfs_store *s,
				    const struct sfs_actor *a, const char *path,
				    int (*fn)(void *arg,
					      const struct sfs_file *f),
				    void *arg, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->dir_files(s, path, NULL, 0, NULL, 1, fn, arg, e);
	struct db_stmt *st;
	struct db *d = NULL;
	enum sfs_status ret;

	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = sfs_vpath_check(path, "path", e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d, DIR_COLS " ORDER BY id", e);
	if (st) {
		sfsi_db_bind_int(st, 1, a->user);
		sfsi_db_bind_text(st, 2, path);
		ret = dir_rows(st, a, path, fn, arg, e);
	} else {
		ret = status_of(e);
	}
	sfsi_db_put(d);
	return ret;
}

enum sfs_status
sfs_query_dir_names(struct sfs_store *s, const struct sfs_actor *a,
		    const char *path, const char *const *names, size_t n,
		    const char *id_prefix,
		    int (*fn)(void *arg, const struct sfs_file *f), void *arg,
		    struct sfs_err *e)
{
	if (s->ops)
		return s->ops->dir_files(s, path, names, n, id_prefix, 0, fn,
					 arg, e);
	struct names_ctx c = { names, n, id_prefix, fn, arg };
	char upper[SFS_ID_SIZE];
	struct db_stmt *st;
	struct db *d = NULL;
	enum sfs_status ret;
	size_t i;

	if (n > 4)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"at most four names at once");
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = sfs_vpath_check(path, "path", e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	/*
	 * Two searches of one index each: the names by (owner, is_deleted,
	 * dir, name NOCASE), the id's range by the ids' (the + keeps the
	 * directory's index out of the second)
	 */
	st = sfsi_db_prep(d,
			  DIR_COLS
			  " AND name COLLATE NOCASE IN (?3, ?4, ?5, ?6)"
			  " UNION SELECT " DIR_SEL
			  " FROM file WHERE uuid >= ?7 AND uuid < ?8"
			  " AND +owner_id = ?1 AND +is_deleted = 0"
			  " AND +dir = ?2 ORDER BY 1",
			  e);
	if (st) {
		sfsi_db_bind_int(st, 1, a->user);
		sfsi_db_bind_text(st, 2, path);
		/* a name that is not UTF-8 is no file's (and PostgreSQL
		 * refuses it as text) */
		for (i = 0; i < 4; i++)
			if (i < n && names[i] &&
			    sfs_utf8_valid(names[i], strlen(names[i])))
				sfsi_db_bind_text(st, (int)i + 3, names[i]);
			else
				sfsi_db_bind_null(st, (int)i + 3);
		/* ids are lower case hex: "0123" .. "0124" */
		if (id_prefix && *id_prefix &&
		    strlen(id_prefix) < sizeof(upper)) {
			sfs_strlcpy(upper, id_prefix, sizeof(upper));
			upper[strlen(upper) - 1]++;
			sfsi_db_bind_text(st, 7, id_prefix);
			sfsi_db_bind_text(st, 8, upper);
		} else {
			sfsi_db_bind_null(st, 7);
			sfsi_db_bind_null(st, 8);
		}
		ret = dir_rows(st, a, path, name_filter, &c, e);
	} else {
		ret = status_of(e);
	}
	sfsi_db_put(d);
	return ret;
}

int sfs_file_listed(const struct sfs_file *f, enum sfs_listing listing,
		    const char *dir)
{
	int own = f->perm == SFS_PERM_OWNER;

	switch (listing) {
	case SFS_LIST_DIR:
		return own && !f->deleted && f->path && dir &&
		       !strcmp(f->path, dir);
	case SFS_LIST_LISTENING:
		return sfs_file_listed(f, SFS_LIST_DIR, dir) &&
		       sfs_file_content_state(f, SFS_CONTENT_LISTENING) ==
			       SFS_CS_READY;
	case SFS_LIST_TRASH:
		return own && f->deleted && !f->purged;
	case SFS_LIST_SHARED:
		return !own && !f->deleted && f->perm >= SFS_PERM_VIEW;
	}
	return 0;
}
