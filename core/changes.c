/*
 * The change feed of one user (changes.h): the store's change rows after
 * a cursor, narrowed in SQL to the user's directories and to files of the
 * user's tenant the user may see or may have seen, each file reported once
 * in its state now (loaded with the actor's permissions).
 */
#include <stdlib.h>
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "speechfs/changes.h"
#include "speechfs/store.h"
#include "store_i.h"
#include "util_i.h"
#include "speechfs/banned.h"

/* One changed file or directory, as the rows are read. */
struct item {
	int64_t seq;
	int64_t ino;		/* file row id; 0 for a directory */
	char uuid[SFS_ID_SIZE]; /* the file's */
	char *dir;		/* a directory's path (owned) */
	int64_t origin;		/* of all its rows, or 0 */
};

struct items {
	struct item *v;
	size_t n, cap;
};

static void items_release(struct items *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].dir);
	free(l->v);
}

/* Note a change; a file or directory already noted moves to this seq. */
static enum sfs_status items_add(struct items *l, int64_t seq, int64_t ino,
				 const char *uuid, const char *dir,
				 int64_t origin, struct sfs_err *e)
{
	struct item *nv;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (ino ? l->v[i].ino == ino
			: !l->v[i].ino && !strcmp(l->v[i].dir, dir)) {
			l->v[i].seq = seq;
			if (l->v[i].origin != origin)
				l->v[i].origin = 0; /* made by more than one */
			return SFS_OK;
		}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		nv = realloc(l->v, l->cap * sizeof(*nv));
		if (!nv)
			return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					"out of memory");
		l->v = nv;
	}
	l->v[l->n].seq = seq;
	l->v[l->n].ino = ino;
	l->v[l->n].origin = origin;
	l->v[l->n].dir = NULL;
	l->v[l->n].uuid[0] = '\0';
	if (ino && uuid)
		sfs_strlcpy(l->v[l->n].uuid, uuid, sizeof(l->v[l->n].uuid));
	if (!ino) {
		l->v[l->n].dir = strdup(dir);
		if (!l->v[l->n].dir)
			return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					"out of memory");
	}
	l->n++;
	return SFS_OK;
}

static int by_seq(const void *x, const void *y)
{
	const struct item *a = x, *b = y;

	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The oldest and newest change rows kept (0 when none). */
static enum sfs_status bounds(struct db *d, int64_t *lo, int64_t *hi,
			      struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;

	st = sfsi_db_prep(d,
			  "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0)"
			  " FROM change",
			  e);
	if (!st)
		return SFS_IO;
	if (sfsi_db_step(st, e) == 1) {
		*lo = sfsi_db_col_int(st, 0);
		*hi = sfsi_db_col_int(st, 1);
	} else {
		ret = SFS_IO;
	}
	sfsi_db_reset(st);
	return ret;
}

/* The seq of the limit-th row after cursor, or 0 when there are fewer. */
static enum sfs_status window_end(struct db *d, int64_t cursor, int limit,
				  int64_t *end, struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	*end = 0;
	st = sfsi_db_prep(d,
			  "SELECT seq FROM change WHERE seq > ?1"
			  " ORDER BY seq LIMIT 1 OFFSET ?2",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, cursor);
	sfsi_db_bind_int(st, 2, limit - 1);
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		*end = sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	return rc < 0 ? SFS_IO : SFS_OK;
}

/*
 * The rows in (cursor, end] the actor may care about: directory rows of
 * the user; file rows of the user's tenant where the row names the user
 * (own file, a share given or taken) or the file is the user's, shared
 * with the user, INTERNAL, or was INTERNAL once (then made PRIVATE: the
 * user must hear that it is gone). Which of these the user may see now
 * is the file model's answer, asked afterwards.
 */
static enum sfs_status collect(struct db *d, const struct sfs_actor *a,
			       int64_t cursor, int64_t end, struct items *l,
			       struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;
	int rc;

	st = sfsi_db_prep(
		d,
		"SELECT c.seq, c.file_id, f.uuid, c.dir, c.origin FROM change c"
		" LEFT JOIN file f ON c.file_id > 0 AND f.id = c.file_id"
		" WHERE c.seq > ?1 AND c.seq <= ?2 AND ("
		" (c.file_id = 0 AND c.owner_id = ?3 AND substr(c.dir, 1, 1) = "
		"'/')"
		" OR (f.tenant_id = ?4 AND (c.owner_id = ?3"
		" OR f.owner_id = ?3 OR f.publish = 1"
		" OR f.published_at IS NOT NULL OR EXISTS (SELECT 1"
		" FROM share sh WHERE sh.file_id = f.id"
		" AND sh.user_id = ?3))))"
		" ORDER BY c.seq",
		e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, cursor);
	sfsi_db_bind_int(st, 2, end);
	sfsi_db_bind_int(st, 3, a->user);
	sfsi_db_bind_int(st, 4, a->tenant);
	while (!ret && (rc = sfsi_db_step(st, e)) == 1)
		ret = items_add(
			l, sfsi_db_col_int(st, 0), sfsi_db_col_int(st, 1),
			sfsi_db_col_text(st, 2), sfsi_db_col_text(st, 3),
			sfsi_db_col_null(st, 4) ? 0 : sfsi_db_col_int(st, 4),
			e);
	if (!ret && rc < 0)
		ret = SFS_IO;
	sfsi_db_reset(st);
	return ret;
}

static enum sfs_status expired(struct sfs_err *e, const char *why)
{
	return sfs_errf(e, SFS_GONE, SFS_R_CURSOR_EXPIRED,
			"the cursor %s: get a new cursor (without one) and "
			"list the files again",
			why);
}

enum sfs_status sfs_changes_since(struct sfs_store *s,
				  const struct sfs_actor *a, int64_t cursor,
				  int limit, int64_t skip, sfs_change_visit fn,
				  void *arg, int64_t *next, int *more,
				  struct sfs_err *e)
{
	struct items l = { 0 };
	struct sfs_change c;
	struct db *d = NULL;
	int64_t lo = 0, hi = 0, end = 0;
	enum sfs_status ret;
	size_t i;

	*next = cursor;
	*more = 0;
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (ret)
		return ret;
	if (cursor < 0)
		return expired(e, "is not one of this store's");
	if (limit < 1 || limit > SFS_CHANGES_LIMIT_MAX)
		limit = SFS_CHANGES_LIMIT_MAX;
	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = sfsi_db_begin_read(d, e);
	if (!ret)
		ret = bounds(d, &lo, &hi, e);
	if (ret)
		goto out;
	if (cursor > hi) {
		ret = expired(e, "is newer than this store's changes (it is "
				 "another store's, or the store was restored)");
		goto out;
	}
	if (lo > 0 && cursor < lo - 1) {
		ret = expired(e, "is older than the changes kept");
		goto out;
	}
	ret = window_end(d, cursor, limit, &end, e);
	if (ret)
		goto out;
	*more = end > 0 && end < hi;
	if (!end)
		end = hi;
	ret = collect(d, a, cursor, end, &l, e);
	if (ret)
		goto out;
	*next = end;
out:
	if (d && sfsi_db_in_txn(d))
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	if (ret) {
		items_release(&l);
		return ret;
	}
	/* in the order of each one's last change */
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), by_seq);
	for (i = 0; !ret && i < l.n; i++) {
		struct sfs_err fe;
		enum sfs_status fst;

		if (skip && l.v[i].origin == skip)
			continue;
		memset(&c, 0, sizeof(c));
		c.seq = l.v[i].seq;
		c.origin = l.v[i].origin;
		sfs_file_init(&c.file);
		if (!l.v[i].ino) {
			c.kind = SFS_CHANGE_DIR;
			c.dir = l.v[i].dir;
		} else {
			c.kind = SFS_CHANGE_FILE;
			sfs_strlcpy(c.file_id, l.v[i].uuid, sizeof(c.file_id));
			sfs_err_init(&fe);
			fst = sfs_file_get_ino(s, a, l.v[i].ino, &c.file, &fe);
			c.visible = fst == SFS_OK;
			if (fst && fst != SFS_NOT_FOUND &&
			    fst != SFS_FORBIDDEN) {
				ret = fst;
				if (e)
					*e = fe;
			}
		}
		if (!ret && fn(arg, &c))
			ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				       "out of memory");
		sfs_file_release(&c.file);
	}
	if (ret)
		*next = cursor;
	items_release(&l);
	return ret;
}

enum sfs_status sfs_changes_cursor(struct sfs_store *s,
				   const struct sfs_actor *a, int64_t *cursor,
				   struct sfs_err *e)
{
	enum sfs_status ret;

	*cursor = 0;
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = sfs_store_change_seq(s, cursor, e);
	return ret;
}

enum sfs_status sfs_changes_origin_after(struct sfs_store *s, int64_t after,
					 int64_t *seq, int64_t *origin,
					 struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st = NULL;
	enum sfs_status ret;

	*seq = after;
	*origin = 0;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	/* one pass over the rows after `after` (the seq's index) */
	st = sfsi_db_prep(
		d,
		"SELECT max(seq), min(origin), max(origin),"
		" count(*) - count(origin) FROM change WHERE seq > ?1",
		e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, after);
	if (sfsi_db_step(st, e) != 1) {
		ret = SFS_IO;
		goto out;
	}
	if (!sfsi_db_col_null(st, 0)) {
		*seq = sfsi_db_col_int(st, 0);
		if (!sfsi_db_col_int(st, 3) &&
		    sfsi_db_col_int(st, 1) == sfsi_db_col_int(st, 2))
			*origin = sfsi_db_col_int(st, 1);
	}
out:
	if (st)
		sfsi_db_reset(st);
	sfsi_db_put(d);
	return ret;
}
