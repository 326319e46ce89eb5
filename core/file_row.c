/*
 * A file's row as the statements read it: the whole row (FILE_COLS), the
 * listing row of PostgreSQL's pages (FILE_LIST_COLS) and the tag names
 * kept in the row, into struct sfs_file. Split from file.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "db_i.h"
#include "file_i.h"
#include "speechfs/tag.h"
#include "util_i.h"

/* A NULL time reads as 0 (sqlite3_column_int64's NULL): no type check. */
static int64_t ms_or_zero(struct db_stmt *st, int i)
{
	return sfsi_db_col_int(st, i);
}

/* The columns both rows share, name .. sha256, from column `first`. */
static void file_text_cols(struct db_stmt *st, int first, struct sfs_file *f)
{
	const char *t;

	f->name = sfsi_db_col_dup(st, first);
	f->filename = sfsi_db_col_dup(st, first + 1);
	f->description = sfsi_db_col_dup(st, first + 2);
	f->path = sfsi_db_col_dup(st, first + 3);
	f->metadata = sfsi_db_col_dup(st, first + 4);
	f->mime = sfsi_db_col_dup(st, first + 5);
	f->source_uri = sfsi_db_col_dup(st, first + 6);
	f->ingest_error = sfsi_db_col_dup(st, first + 7);
	f->size = sfsi_db_col_null(st, first + 8)
			  ? -1
			  : sfsi_db_col_int(st, first + 8);
	f->duration = sfsi_db_col_null(st, first + 9)
			      ? -1
			      : sfsi_db_col_double(st, first + 9);
	t = sfsi_db_col_text(st, first + 10);
	sfs_strlcpy(f->sha256, t ? t : "", sizeof(f->sha256));
}

enum sfs_status sfsi_file_from_row(struct db_stmt *st, struct sfs_file *f,
				   struct sfs_err *e)
{
	const char *t;

	f->ino = sfsi_db_col_int(st, 0);
	sfs_strlcpy(f->id, sfsi_db_col_text(st, 1), sizeof(f->id));
	f->owner = sfsi_db_col_int(st, 2);
	sfs_strlcpy(f->owner_id, sfsi_db_col_text(st, 3), sizeof(f->owner_id));
	f->tenant = sfsi_db_col_int(st, 4);
	sfs_strlcpy(f->tenant_id, sfsi_db_col_text(st, 5),
		    sizeof(f->tenant_id));
	file_text_cols(st, 6, f);
	f->ingestion = (enum sfs_jstate)sfsi_db_col_int(st, 17);
	f->deleted = (int)sfsi_db_col_int(st, 18);
	f->purged = (int)sfsi_db_col_int(st, 19);
	f->discarded = (int)sfsi_db_col_int(st, 20);
	f->created_at = sfsi_db_col_int(st, 21);
	f->deleted_at = ms_or_zero(st, 22);
	f->purged_at = ms_or_zero(st, 23);
	f->purge_at = ms_or_zero(st, 24);
	f->discarded_at = ms_or_zero(st, 25);
	f->publish = (enum sfs_publish)sfsi_db_col_int(st, 26);
	f->published_at = ms_or_zero(st, 27);
	f->la.status = (enum sfs_jstate)sfsi_db_col_int(st, 28);
	f->la.size = sfsi_db_col_null(st, 29) ? -1 : sfsi_db_col_int(st, 29);
	t = sfsi_db_col_text(st, 30);
	sfs_strlcpy(f->la.sha256, t ? t : "", sizeof(f->la.sha256));
	f->la.created_at = ms_or_zero(st, 31);
	f->la.deleted = (int)sfsi_db_col_int(st, 32);
	f->la.purged = (int)sfsi_db_col_int(st, 33);
	f->la.deleted_at = ms_or_zero(st, 34);
	f->la.purged_at = ms_or_zero(st, 35);
	f->la.purge_at = ms_or_zero(st, 36);
	f->la.error = sfsi_db_col_dup(st, 37);
	f->mtime_ns = sfsi_db_col_int(st, 38);
	f->ctime_ns = sfsi_db_col_int(st, 39);
	f->suffixed = (int)sfsi_db_col_int(st, 40);
	/* an access time of its own only once set (utimens) */
	f->atime_ns = sfsi_db_col_null(st, 41) ? f->mtime_ns
					       : sfsi_db_col_int(st, 41);
	if (!f->name || !f->path)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	return SFS_OK;
}

/*
 * The next of a group column's comma-joined integers (FILE_LIST_COLS) from
 * *p; an empty one is dflt. *p moves past its comma.
 */
static int64_t next_int(const char **p, int64_t dflt)
{
	const char *s = *p, *c = strchr(s, ',');
	int64_t v = c == s || !*s ? dflt : strtoll(s, NULL, 10);

	*p = c ? c + 1 : s + strlen(s);
	return v;
}

enum sfs_status sfsi_file_from_list_row(struct db_stmt *st,
					const struct sfs_actor *a,
					struct sfs_file *f, struct sfs_err *e)
{
	const char *t;

	f->ino = sfsi_db_col_int(st, 0);
	sfs_strlcpy(f->id, sfsi_db_col_text(st, 1), sizeof(f->id));
	/* the statement's filter: the actor's own files */
	f->owner = a->user;
	sfs_strlcpy(f->owner_id, a->user_id, sizeof(f->owner_id));
	f->tenant = a->tenant;
	sfs_strlcpy(f->tenant_id, a->tenant_id, sizeof(f->tenant_id));
	file_text_cols(st, 2, f);
	t = sfsi_db_col_text(st, 13); /* the marks, NULL when all are 0 */
	if (t) {
		f->ingestion = (enum sfs_jstate)next_int(&t, 0);
		f->deleted = (int)next_int(&t, 0);
		f->purged = (int)next_int(&t, 0);
		f->discarded = (int)next_int(&t, 0);
		f->publish = (enum sfs_publish)next_int(&t, 0);
		f->suffixed = (int)next_int(&t, 0);
	} else {
		f->ingestion = SFS_JS_NONE;
		f->deleted = f->purged = f->discarded = 0;
		f->publish = SFS_PUBLISH_PRIVATE;
		f->suffixed = 0;
	}
	f->mtime_ns = sfsi_db_col_int(st, 18);
	/* NULL: mtime_ns's millisecond */
	f->created_at = sfsi_db_col_null(st, 14) ? f->mtime_ns / 1000000
						 : sfsi_db_col_int(st, 14);
	t = sfsi_db_col_text(st, 15); /* the times, NULL when all are */
	if (t) {
		f->deleted_at = next_int(&t, 0);
		f->purged_at = next_int(&t, 0);
		f->purge_at = next_int(&t, 0);
		f->discarded_at = next_int(&t, 0);
		f->published_at = next_int(&t, 0);
	} else {
		f->deleted_at = f->purged_at = f->purge_at = 0;
		f->discarded_at = f->published_at = 0;
	}
	t = sfsi_db_col_text(st, 16); /* the listening audio's, NULL: none */
	if (t) {
		f->la.status = (enum sfs_jstate)next_int(&t, 0);
		f->la.size = next_int(&t, -1);
		f->la.created_at = next_int(&t, 0);
		f->la.deleted = (int)next_int(&t, 0);
		f->la.purged = (int)next_int(&t, 0);
		f->la.deleted_at = next_int(&t, 0);
		f->la.purged_at = next_int(&t, 0);
		f->la.purge_at = next_int(&t, 0);
		sfs_strlcpy(f->la.sha256, t, sizeof(f->la.sha256));
	} else {
		f->la.status = SFS_JS_NONE;
		f->la.size = -1;
		f->la.created_at = 0;
		f->la.deleted = f->la.purged = 0;
		f->la.deleted_at = f->la.purged_at = f->la.purge_at = 0;
		f->la.sha256[0] = '\0';
	}
	f->la.error = sfsi_db_col_dup(st, 17);
	/* NULL: the same as mtime_ns */
	f->ctime_ns = sfsi_db_col_null(st, 19) ? f->mtime_ns
					       : sfsi_db_col_int(st, 19);
	f->atime_ns = sfsi_db_col_null(st, 20) ? f->mtime_ns
					       : sfsi_db_col_int(st, 20);
	if (!f->name || !f->path)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	return SFS_OK;
}

static int tag_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int r = strcasecmp(x, y);

	return r ? r : strcmp(x, y);
}

enum sfs_status sfsi_file_split_tags(const char *s, struct sfs_file *f,
				     struct sfs_err *e)
{
	const char *p, *end;
	size_t n = 1, i = 0;
	char **v;

	if (!s || !*s)
		return SFS_OK;
	for (p = s; *p; p++)
		n += *p == '\x1f';
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	for (p = s; i < n; p = end + 1) {
		end = strchr(p, '\x1f');
		if (!end)
			end = p + strlen(p);
		v[i] = strndup(p, (size_t)(end - p));
		if (!v[i]) {
			sfs_strv_free(v);
			return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					"out of memory");
		}
		i++;
	}
	qsort(v, n, sizeof(*v), tag_cmp);
	f->tags = v;
	f->ntags = n;
	return SFS_OK;
}
