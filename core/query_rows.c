/*
 * Running the list queries query.c assembles: a page's rows into a file
 * list, counts, the subdirectories of a directory's listing, and where a
 * cursor stands.
 */
#include <stdlib.h>
#include <string.h>
#include "db_i.h"
#include "file_i.h"
#include "query_i.h"
#include "speechfs/query.h"
#include "util_i.h"

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

/*
 * Run a page query: each row is FILE_COLS (FILE_LIST_COLS with list),
 * then (shared) access kind, permission, sharer uuid and share time, then
 * TAGS_COL; with total (set to -1 by the caller), the listing's total
 * after it, read from the first row (left -1 when no row came).
 */
enum sfs_status sfsi_query_fetch_page(struct db *d, struct qb *qb, int shared,
				      const struct sfs_actor *list, size_t keep,
				      int *more, int64_t *total,
				      struct sfs_file_list *l,
				      struct sfs_err *e)
{
	struct db_stmt *st;
	struct sfs_file *f = NULL;
	enum sfs_status ret = SFS_OK;
	size_t cap = 0;
	int ncols = list ? FILE_LIST_NCOLS : FILE_NCOLS;
	int rc, tags = shared ? ncols + 4 : ncols;

	st = sfsi_qb_prep(qb, d, e);
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
		ret = list ? sfsi_file_from_list_row(st, list, f, e)
			   : sfsi_file_from_row(st, f, e);
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
		f->access = (enum sfs_access)sfsi_db_col_int(st, ncols);
		f->perm = (enum sfs_perm)sfsi_db_col_int(st, ncols + 1);
		if (!sfsi_db_col_null(st, ncols + 2))
			sfs_strlcpy(f->shared_by,
				    sfsi_db_col_text(st, ncols + 2),
				    sizeof(f->shared_by));
		if (!sfsi_db_col_null(st, ncols + 3))
			f->shared_at = sfsi_db_col_int(st, ncols + 3);
	}
	if (rc < 0 && !ret)
		ret = status_of(e);
	sfsi_db_finalize(st);
	return ret;
}

/* The count; with owned, the second column too (see count_owned). */
enum sfs_status sfsi_query_fetch_count(struct db *d, struct qb *qb, int64_t *n,
				       int64_t *owned, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;
	int rc;

	st = sfsi_qb_prep(qb, d, e);
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

enum sfs_status sfsi_query_load_dirs(struct db *d, const struct sfs_actor *a,
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
void sfsi_query_scan_cheaper(const struct sfs_query *q, int64_t total,
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
enum sfs_status sfsi_query_fetch_owned(struct db *d, const struct sfs_actor *a,
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
 * A cursor continues the order it was made in, alone: no page beside it
 * (the seed's paging and the cursor's are two ways through one listing).
 */
enum sfs_status sfsi_query_check_cursor(const struct sfs_query *q,
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
enum sfs_status sfsi_query_cursor_at(struct db *d, const struct sfs_actor *a,
				     const struct sfs_query *q,
				     int64_t *created, int64_t *row,
				     struct sfs_err *e)
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
