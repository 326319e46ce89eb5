/*
 * What the list queries' files share: query.c (assembling GET /files
 * and shared-with-me), query_rows.c (running them) and query_dir.c (the
 * mount's reads of a directory): the statement being assembled, and the
 * helpers one calls in another.
 */
#ifndef SPEECHFS_QUERY_I_H
#define SPEECHFS_QUERY_I_H

#include <stddef.h>
#include <stdint.h>
#include "db_i.h"
#include "speechfs/auth.h"
#include "speechfs/buf.h"
#include "speechfs/err.h"
#include "speechfs/file.h"
#include "speechfs/query.h"

/*
 * The most values a statement binds. files_where binds at most 15 values
 * besides the substrings (2 each) and the tags (2 each, every tag probed
 * when all must match), and a directory's page holds it twice (its count
 * with its rows), plus a cursor's 2 and the limit's 2; a count adds the
 * owner. Too few failed well-formed queries with SFS_IO (found by
 * fuzz_query: a directory's page with 29 tags).
 */
#define QB_WHERE_BINDS (15 + 2 * 2 + 2 * SFS_QUERY_TAGS_MAX)
#define QB_BINDS (2 * QB_WHERE_BINDS + 8)
/* the substrings' patterns: 2 each, twice in a statement */
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

/* The error's status, SFS_IO when it has none. */
static inline enum sfs_status status_of(struct sfs_err *e)
{
	return e && e->status ? e->status : SFS_IO;
}

/* The statement assembled, prepared and bound (query.c). */
struct db_stmt *sfsi_qb_prep(struct qb *qb, struct db *d, struct sfs_err *e);

/* ---- running them (query_rows.c) ---- */

/*
 * Run a page query: each row is FILE_COLS (FILE_LIST_COLS with list: a
 * page of list's own files, file_i.h),
 * then (shared) access kind, permission, sharer uuid and share time, then
 * the tags; with total (set to -1 by the caller), the listing's total
 * after it, read from the first row (left -1 when no row came).
 */
enum sfs_status sfsi_query_fetch_page(struct db *d, struct qb *qb, int shared,
				      const struct sfs_actor *list, size_t keep,
				      int *more, int64_t *total,
				      struct sfs_file_list *l,
				      struct sfs_err *e);
/* The count; with owned, the second column too (see count_owned). */
enum sfs_status sfsi_query_fetch_count(struct db *d, struct qb *qb, int64_t *n,
				       int64_t *owned, struct sfs_err *e);
/* The subdirectories of path into l->dirs, by name. */
enum sfs_status sfsi_query_load_dirs(struct db *d, const struct sfs_actor *a,
				     const char *path, struct sfs_file_list *l,
				     struct sfs_err *e);
/* Whether walking the owner's files is cheaper than the tags (*drive). */
void sfsi_query_scan_cheaper(const struct sfs_query *q, int64_t total,
			     int64_t owned, int *drive);
/* The owner's number of live files, for a cursor's page. */
enum sfs_status sfsi_query_fetch_owned(struct db *d, const struct sfs_actor *a,
				       int64_t *owned, struct sfs_err *e);
/* A cursor continues the order and filters it was made with, alone. */
enum sfs_status sfsi_query_check_cursor(const struct sfs_query *q,
					struct sfs_err *e);
/* Where a cursor's file stands: its creationDate and row. */
enum sfs_status sfsi_query_cursor_at(struct db *d, const struct sfs_actor *a,
				     const struct sfs_query *q,
				     int64_t *created, int64_t *row,
				     struct sfs_err *e);

#endif
