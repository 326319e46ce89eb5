/*
 * Virtual directories: a row per directory that holds live files or
 * explicit subdirectories at any depth (nfiles counts both), or that was
 * made by mkdir (explicit). Renaming a directory moves every descendant
 * file and directory in one transaction.
 */
#include <stdlib.h>
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "dir_i.h"
#include "file_i.h"
#include "speechfs/dir.h"
#include "speechfs/vpath.h"
#include "store_i.h"
#include "util_i.h"
#include "remote_i.h"

/* Length of the parent prefix of a directory path ("/a/b/" -> 3). */
static size_t parent_len(const char *path, size_t len)
{
	size_t i;

	if (len <= 1)
		return 0;
	for (i = len - 1; i > 0; i--)
		if (path[i - 1] == '/')
			return i;
	return 0;
}

/*
 * Stamp a directory's mtime: exactly `ns` when `exact` (utimens), else
 * the change's time, but never backwards (two changes within one tick of
 * the clock, or a clock stepped back, still move it forward).
 */
static enum sfs_status stamp(struct db *d, int64_t owner, const char *path,
			     int64_t ns, int exact, struct sfs_err *e)
{
	struct db_stmt *st;

	if (!strcmp(path, "/")) {
		st = sfsi_db_prep(d,
				  "INSERT INTO dir(owner_id, path, parent,"
				  " mtime_ns) VALUES (?1, '/', '', ?2)"
				  " ON CONFLICT(owner_id, path) DO UPDATE"
				  " SET mtime_ns = CASE WHEN ?3 <> 0 THEN ?2"
				  " ELSE max(dir.mtime_ns + 1, ?2) END",
				  e);
		if (!st)
			return SFS_IO;
		sfsi_db_bind_int(st, 1, owner);
		sfsi_db_bind_int(st, 2, ns);
		sfsi_db_bind_int(st, 3, exact);
		return sfsi_db_run(st, e);
	}
	st = sfsi_db_prep(d,
			  "UPDATE dir SET mtime_ns = CASE WHEN ?4 <> 0 THEN ?3"
			  " ELSE max(mtime_ns + 1, ?3) END"
			  " WHERE owner_id = ?1 AND path = ?2",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, owner);
	sfsi_db_bind_text(st, 2, path);
	sfsi_db_bind_int(st, 3, ns);
	sfsi_db_bind_int(st, 4, exact);
	return sfsi_db_run(st, e);
}

enum sfs_status sfsi_dir_touch(struct db *d, int64_t owner, const char *path,
			       int64_t now_ns, struct sfs_err *e)
{
	return stamp(d, owner, path, now_ns, 0, e);
}

/*
 * Adjust one directory row; *changed says whether it appeared or vanished
 * (1), or stayed, made explicit, where it would have vanished (2: keep,
 * sfs_store_keep_dirs, sfs_store_keep_dirs_here).
 */
static enum sfs_status count_one(struct db *d, int64_t owner, const char *path,
				 size_t len, int delta, int keep,
				 int64_t now_ns, int *changed,
				 struct sfs_err *e)
{
	struct db_stmt *st;
	size_t plen = parent_len(path, len);
	int64_t nfiles = 0;
	int rc, explicit_ = 0, vanish;

	*changed = 0;
	st = sfsi_db_prep(d,
			  "SELECT nfiles, explicit FROM dir"
			  " WHERE owner_id = ?1 AND path = ?2",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, owner);
	sfsi_db_bind_textn(st, 2, path, len);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		nfiles = sfsi_db_col_int(st, 0);
		explicit_ = (int)sfsi_db_col_int(st, 1);
	}
	sfsi_db_reset(st);
	if (rc < 0)
		return SFS_IO;
	if (rc == 0) {
		if (delta <= 0)
			return SFS_OK; /* nothing to take from */
		st = sfsi_db_prep(
			d,
			"INSERT INTO dir(owner_id, path, parent, nfiles,"
			" mtime_ns) VALUES (?1, ?2, ?3, ?4, ?5)",
			e);
		if (!st)
			return SFS_IO;
		sfsi_db_bind_int(st, 1, owner);
		sfsi_db_bind_textn(st, 2, path, len);
		sfsi_db_bind_textn(st, 3, path, plen);
		sfsi_db_bind_int(st, 4, delta);
		sfsi_db_bind_int(st, 5, now_ns);
		*changed = len > 1;
		return sfsi_db_run(st, e);
	}
	vanish = nfiles + delta <= 0 && !explicit_ && len > 1;
	if (vanish && !keep) {
		st = sfsi_db_prep(d,
				  "DELETE FROM dir WHERE owner_id = ?1"
				  " AND path = ?2",
				  e);
		if (!st)
			return SFS_IO;
		sfsi_db_bind_int(st, 1, owner);
		sfsi_db_bind_textn(st, 2, path, len);
		*changed = 1;
		return sfsi_db_run(st, e);
	}
	/* kept where it would vanish: explicit (it was not), nothing in it */
	*changed = vanish ? 2 : 0;
	st = sfsi_db_prep(d,
			  "UPDATE dir SET nfiles = max(0, nfiles + ?3),"
			  " explicit = explicit + ?4"
			  " WHERE owner_id = ?1 AND path = ?2",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, owner);
	sfsi_db_bind_textn(st, 2, path, len);
	sfsi_db_bind_int(st, 3, delta);
	sfsi_db_bind_int(st, 4, vanish);
	return sfsi_db_run(st, e);
}

enum sfs_status sfsi_dir_count(struct db *d, int64_t owner, const char *path,
			       int delta, int64_t now_ns, struct sfs_err *e)
{
	size_t len = strlen(path), i;
	enum sfs_status ret;
	int changed = 0, keep;

	/*
	 * An entry leaving path through a handle that keeps directories:
	 * path stays where it would vanish, explicit; its ancestors then
	 * count it instead of what left (one less to take).
	 */
	keep = delta < 0 && sfsi_keep_dirs(sfsi_db_store(d));
	/* deepest first, so a vanished child bumps its parent's mtime */
	for (i = len; i > 0;) {
		ret = count_one(d, owner, path, i, delta, keep && i == len,
				now_ns, &changed, e);
		if (ret)
			return ret;
		if (changed == 2) {
			changed = 0;
			if (++delta == 0)
				break;
		}
		i = parent_len(path, i);
		if (changed && i) {
			char parent[SFS_VPATH_MAX + 1];

			sfs_strlcpy(parent, path,
				    i + 1 < sizeof(parent) ? i + 1
							   : sizeof(parent));
			ret = sfsi_dir_touch(d, owner, parent, now_ns, e);
			if (ret)
				return ret;
		}
	}
	return sfsi_dir_touch(d, owner, path, now_ns, e);
}

static enum sfs_status check_path(const char *path, struct sfs_buf *out,
				  struct sfs_err *e)
{
	return sfs_vpath_norm(path, "path", out, e);
}

/* The number of direct subdirectories of an owner's path. */
static enum sfs_status count_sub(struct db *d, int64_t owner, const char *path,
				 int64_t *n, struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	st = sfsi_db_prep(d,
			  "SELECT count(*) FROM dir WHERE owner_id = ?1"
			  " AND parent = ?2",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, owner);
	sfsi_db_bind_text(st, 2, path);
	rc = sfsi_db_step(st, e);
	*n = rc == 1 ? sfsi_db_col_int(st, 0) : 0;
	sfsi_db_reset(st);
	return rc == 1 ? SFS_OK : SFS_IO;
}

/*
 * An owner's directory by path, or by row id when path is NULL (its path
 * then copied into out_path[size]), with its subdirectories counted in
 * the same statement.
 */
static enum sfs_status dir_info(struct db *d, int64_t owner, const char *path,
				int64_t ino, char *out_path, size_t size,
				struct sfs_dir_info *out, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;
	char found[SFS_VPATH_MAX + 2];
	int rc;

	memset(out, 0, sizeof(*out));
#define DIR_INFO                                                               \
	"SELECT p.id, p.mtime_ns, p.nfiles, p.explicit, p.path,"               \
	" (SELECT count(*) FROM dir c WHERE c.owner_id = p.owner_id"           \
	" AND c.parent = p.path) FROM dir p WHERE p.owner_id = ?1"
	st = path ? sfsi_db_prep(d, DIR_INFO " AND p.path = ?2", e)
		  : sfsi_db_prep(d, DIR_INFO " AND p.id = ?2", e);
#undef DIR_INFO
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, owner);
	if (path)
		sfsi_db_bind_text(st, 2, path);
	else
		sfsi_db_bind_int(st, 2, ino);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		out->ino = sfsi_db_col_int(st, 0);
		out->mtime_ns = sfsi_db_col_int(st, 1);
		out->nfiles = sfsi_db_col_int(st, 2);
		out->explicit_ = (int)sfsi_db_col_int(st, 3);
		sfs_strlcpy(found, sfsi_db_col_text(st, 4), sizeof(found));
		out->nsub = sfsi_db_col_int(st, 5);
	} else if (rc == 0 && path && !strcmp(path, "/")) {
		/* the root exists without a row (nothing stamped it yet) */
		out->explicit_ = 1;
		sfs_strlcpy(found, "/", sizeof(found));
	} else if (rc == 0) {
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_DIRECTORY_NOT_FOUND,
			       "no such directory");
	} else {
		ret = SFS_IO;
	}
	sfsi_db_reset(st);
	if (!ret && rc == 0)
		ret = count_sub(d, owner, found, &out->nsub, e);
	if (!ret && out_path)
		sfs_strlcpy(out_path, found, size);
	return ret;
}

enum sfs_status sfsi_dir_info(struct db *d, int64_t owner, const char *path,
			      struct sfs_dir_info *out, struct sfs_err *e)
{
	return dir_info(d, owner, path, 0, NULL, 0, out, e);
}

enum sfs_status sfs_dir_stat(struct sfs_store *s, const struct sfs_actor *a,
			     const char *path, struct sfs_dir_info *out,
			     struct sfs_err *e)
{
	if (s->ops)
		return s->ops->dir_stat(s, path, out, e);
	struct db *d = NULL;
	enum sfs_status ret;

	memset(out, 0, sizeof(*out));
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = sfs_vpath_check(path, "path", e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	ret = dir_info(d, a->user, path, 0, NULL, 0, out, e);
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_dir_stat_ino(struct sfs_store *s, const struct sfs_actor *a,
				 int64_t ino, char *path, size_t size,
				 struct sfs_dir_info *out, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->dir_stat_ino(s, ino, path, size, out, e);
	struct db *d = NULL;
	enum sfs_status ret;

	memset(out, 0, sizeof(*out));
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	ret = dir_info(d, a->user, NULL, ino, path, size, out, e);
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_dir_make(struct sfs_store *s, const struct sfs_actor *a,
			     const char *path, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->dir_make(s, path, e);
	struct sfs_buf p = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t ns = sfs_now_ns();
	size_t plen;
	int rc;

	ret = sfsi_need_scope(a, SFS_SCOPE_WRITE, e);
	if (!ret)
		ret = check_path(path, &p, e);
	if (ret)
		goto out;
	if (!strcmp(p.buf, "/")) {
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_NONE, "the root exists");
		goto out;
	}
	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = sfsi_db_begin(d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(
		d, "SELECT 1 FROM dir WHERE owner_id = ?1 AND path = ?2", e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, a->user);
	sfsi_db_bind_text(st, 2, p.buf);
	rc = sfsi_db_step(st, e);
	sfsi_db_reset(st);
	if (rc != 0) {
		ret = rc < 0 ? SFS_IO
			     : sfs_errf(e, SFS_CONFLICT, SFS_R_DIRECTORY_EXISTS,
					"the directory exists");
		goto out;
	}
	plen = parent_len(p.buf, p.len);
	st = sfsi_db_prep(d,
			  "INSERT INTO dir(owner_id, path, parent, explicit,"
			  " mtime_ns) VALUES (?1, ?2, ?3, 1, ?4)",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, a->user);
	sfsi_db_bind_text(st, 2, p.buf);
	sfsi_db_bind_textn(st, 3, p.buf, plen);
	sfsi_db_bind_int(st, 4, ns);
	ret = sfsi_db_run(st, e);
	if (!ret) {
		char parent[SFS_VPATH_MAX + 1];

		sfs_strlcpy(parent, p.buf, plen + 1);
		ret = sfsi_dir_count(d, a->user, parent, 1, ns, e);
	}
	if (!ret)
		ret = sfsi_db_commit(d, e);
out:
	if (d && ret)
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	sfs_buf_release(&p);
	return ret;
}

enum sfs_status sfs_dir_remove(struct sfs_store *s, const struct sfs_actor *a,
			       const char *path, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->dir_remove(s, path, e);
	struct sfs_buf p = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t nfiles = 0, ns = sfs_now_ns();
	int rc, explicit_ = 0;

	ret = sfsi_need_scope(a, SFS_SCOPE_WRITE, e);
	if (!ret)
		ret = check_path(path, &p, e);
	if (ret)
		goto out;
	if (!strcmp(p.buf, "/")) {
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
			       "the root cannot be removed");
		goto out;
	}
	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = sfsi_db_begin(d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "SELECT nfiles, explicit FROM dir WHERE owner_id = ?1"
			  " AND path = ?2",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, a->user);
	sfsi_db_bind_text(st, 2, p.buf);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		nfiles = sfsi_db_col_int(st, 0);
		explicit_ = (int)sfsi_db_col_int(st, 1);
	}
	sfsi_db_reset(st);
	if (rc != 1) {
		ret = rc < 0 ? SFS_IO
			     : sfs_errf(e, SFS_NOT_FOUND,
					SFS_R_DIRECTORY_NOT_FOUND,
					"no such directory");
		goto out;
	}
	if (nfiles > 0) {
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_DIRECTORY_NOT_EMPTY,
			       "the directory is not empty");
		goto out;
	}
	st = sfsi_db_prep(
		d, "DELETE FROM dir WHERE owner_id = ?1 AND path = ?2", e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, a->user);
	sfsi_db_bind_text(st, 2, p.buf);
	ret = sfsi_db_run(st, e);
	if (!ret && explicit_) {
		char parent[SFS_VPATH_MAX + 1];

		sfs_strlcpy(parent, p.buf, parent_len(p.buf, p.len) + 1);
		ret = sfsi_dir_count(d, a->user, parent, -1, ns, e);
	}
	if (!ret)
		ret = sfsi_db_commit(d, e);
out:
	if (d && ret)
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	sfs_buf_release(&p);
	return ret;
}

/* "/a/" -> "/a0": the first string greater than every path below "/a/". */
static void upper_bound(const char *path, char *out, size_t size)
{
	size_t n = sfs_strlcpy(out, path, size);

	if (n && n < size)
		out[n - 1] = '/' + 1;
}

/* A directory row: 1 found (counts filled), 0 none, -1 error. */
static int dir_row(struct db *d, int64_t owner, const char *path,
		   int64_t *nfiles, int *explicit_, struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	st = sfsi_db_prep(d,
			  "SELECT nfiles, explicit FROM dir WHERE owner_id = ?1"
			  " AND path = ?2",
			  e);
	if (!st)
		return -1;
	sfsi_db_bind_int(st, 1, owner);
	sfsi_db_bind_text(st, 2, path);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		*nfiles = sfsi_db_col_int(st, 0);
		*explicit_ = (int)sfsi_db_col_int(st, 1);
	}
	sfsi_db_reset(st);
	return rc;
}

/* Every file and directory below `from` moves below `to` (one statement
 * each, by the range of their paths). */
static enum sfs_status move_subtree(struct db *d, int64_t owner,
				    const struct sfs_buf *from,
				    const struct sfs_buf *to,
				    const char *tparent, int64_t ns,
				    struct sfs_err *e)
{
	char upper[SFS_VPATH_MAX + 2];
	struct db_stmt *st;
	enum sfs_status ret;

	upper_bound(from->buf, upper, sizeof(upper));
	st = sfsi_db_prep(
		d,
		"UPDATE file SET dir = ?4 || substr(dir, ?5),"
		" ctime_ns = ?6 WHERE owner_id = ?1"
		" AND is_deleted IN (0, 1) AND dir >= ?2 AND dir < ?3",
		e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, owner);
	sfsi_db_bind_text(st, 2, from->buf);
	sfsi_db_bind_text(st, 3, upper);
	sfsi_db_bind_text(st, 4, to->buf);
	sfsi_db_bind_int(st, 5, (int64_t)from->len + 1);
	sfsi_db_bind_int(st, 6, ns);
	ret = sfsi_db_run(st, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d,
			  "UPDATE dir SET path = ?4 || substr(path, ?5),"
			  " parent = CASE WHEN path = ?2 THEN ?6"
			  " ELSE ?4 || substr(parent, ?5) END"
			  " WHERE owner_id = ?1 AND path >= ?2 AND path < ?3",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, owner);
	sfsi_db_bind_text(st, 2, from->buf);
	sfsi_db_bind_text(st, 3, upper);
	sfsi_db_bind_text(st, 4, to->buf);
	sfsi_db_bind_int(st, 5, (int64_t)from->len + 1);
	sfsi_db_bind_text(st, 6, tparent);
	return sfsi_db_run(st, e);
}

enum sfs_status sfs_dir_rename(struct sfs_store *s, const struct sfs_actor *a,
			       const char *from, const char *to,
			       struct sfs_err *e)
{
	if (s->ops)
		return s->ops->dir_rename(s, from, to, e);
	struct sfs_buf f = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	struct sfs_buf t = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	char fparent[SFS_VPATH_MAX + 1], tparent[SFS_VPATH_MAX + 1];
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t fcount = 0, tfiles = 0, tdelta, ns = sfs_now_ns();
	int rc, fexplicit = 0, texplicit = 0, texists;

	ret = sfsi_need_scope(a, SFS_SCOPE_WRITE, e);
	if (!ret && check_path(from, &f, e))
		ret = SFS_INVALID;
	if (!ret && sfs_vpath_norm(to, "to", &t, e))
		ret = SFS_INVALID;
	if (ret)
		goto out;
	if (!strcmp(f.buf, "/") || !strcmp(t.buf, "/")) {
		ret = sfs_errf(e, SFS_INVALID, SFS_R_NONE,
			       "the root cannot be renamed or replaced");
		goto out;
	}
	if (!strcmp(f.buf, t.buf))
		goto out;
	if (sfs_vpath_under(t.buf, f.buf)) {
		ret = sfs_errf(e, SFS_INVALID, SFS_R_NONE,
			       "a directory cannot move below itself");
		goto out;
	}
	sfs_strlcpy(fparent, f.buf, parent_len(f.buf, f.len) + 1);
	sfs_strlcpy(tparent, t.buf, parent_len(t.buf, t.len) + 1);
	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = sfsi_db_begin(d, e);
	if (ret)
		goto out;
	rc = dir_row(d, a->user, f.buf, &fcount, &fexplicit, e);
	if (rc != 1) {
		ret = rc < 0 ? SFS_IO
			     : sfs_errf(e, SFS_NOT_FOUND,
					SFS_R_DIRECTORY_NOT_FOUND,
					"no such directory");
		goto out;
	}
	fcount += fexplicit; /* what the directory counts in its parent */
	rc = dir_row(d, a->user, t.buf, &tfiles, &texplicit, e);
	if (rc < 0)
		goto io;
	texists = rc == 1;
	if (texists && tfiles > 0) {
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_DIRECTORY_NOT_EMPTY,
			       "the target directory is not empty");
		goto out;
	}
	if (texists) {
		st = sfsi_db_prep(d,
				  "DELETE FROM dir WHERE owner_id = ?1"
				  " AND path = ?2",
				  e);
		if (!st)
			goto io;
		sfsi_db_bind_int(st, 1, a->user);
		sfsi_db_bind_text(st, 2, t.buf);
		if (sfsi_db_run(st, e))
			goto io;
	}
	/*
	 * Count the arrival before the departure, so that a common ancestor
	 * never drops to zero on the way and is remade with a new inode.
	 */
	tdelta = fcount - (texists && texplicit ? 1 : 0);
	if (tdelta && sfsi_dir_count(d, a->user, tparent, (int)tdelta, ns, e))
		goto io;
	if (fcount && sfsi_dir_count(d, a->user, fparent, -(int)fcount, ns, e))
		goto io;
	ret = move_subtree(d, a->user, &f, &t, tparent, ns, e);
	if (!ret)
		ret = sfsi_dir_touch(d, a->user, tparent, ns, e);
	if (!ret)
		ret = sfsi_dir_touch(d, a->user, fparent, ns, e);
	if (!ret)
		ret = sfsi_db_commit(d, e);
	goto out;
io:
	ret = e && e->status ? e->status : SFS_IO;
out:
	if (d && ret)
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	sfs_buf_release(&f);
	sfs_buf_release(&t);
	return ret;
}

enum sfs_status sfs_dir_set_mtime(struct sfs_store *s,
				  const struct sfs_actor *a, const char *path,
				  int64_t mtime_ns, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->dir_set_mtime(s, path, mtime_ns, e);
	struct sfs_dir_info info;
	struct db *d = NULL;
	enum sfs_status ret;

	ret = sfs_dir_stat(s, a, path, &info, e);
	if (!ret)
		ret = sfsi_need_scope(a, SFS_SCOPE_WRITE, e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = stamp(d, a->user, path, mtime_ns, 1, e);
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_dir_subdirs(struct sfs_store *s, const struct sfs_actor *a,
				const char *path,
				void (*fn)(void *arg, const char *name,
					   const struct sfs_dir_info *d),
				void *arg, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->dir_subdirs(s, path, fn, arg, e);
	struct sfs_dir_info info;
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	size_t plen = strlen(path);
	int rc;

	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = sfs_vpath_check(path, "path", e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d,
			  "SELECT p.path, p.id, p.mtime_ns, p.nfiles,"
			  " p.explicit, (SELECT count(*) FROM dir c"
			  " WHERE c.owner_id = p.owner_id"
			  " AND c.parent = p.path) FROM dir p"
			  " WHERE p.owner_id = ?1 AND p.parent = ?2"
			  " ORDER BY p.path",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, a->user);
	sfsi_db_bind_text(st, 2, path);
	while ((rc = sfsi_db_step(st, e)) == 1) {
		const char *p = sfsi_db_col_text(st, 0);
		char name[SFS_SEGMENT_MAX + 1];
		size_t n = strlen(p);

		if (n <= plen + 1)
			continue;
		sfs_strlcpy(name, p + plen,
			    n - plen < sizeof(name) ? n - plen : sizeof(name));
		info.ino = sfsi_db_col_int(st, 1);
		info.mtime_ns = sfsi_db_col_int(st, 2);
		info.nfiles = sfsi_db_col_int(st, 3);
		info.explicit_ = (int)sfsi_db_col_int(st, 4);
		info.nsub = sfsi_db_col_int(st, 5);
		fn(arg, name, &info);
	}
	if (rc < 0)
		ret = SFS_IO;
	sfsi_db_reset(st);
out:
	sfsi_db_put(d);
	return ret;
}
