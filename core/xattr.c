/*
 * Extra attributes of a file (table xattr): opaque values under names the
 * file model does not know, with the model's permission rules.
 */
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "file_i.h"
#include "speechfs/vpath.h"
#include "speechfs/xattr.h"
#include "store_i.h"
#include "util_i.h"
#include "remote_i.h"

static enum sfs_status name_check(const char *name, struct sfs_err *e)
{
	size_t n = name ? strlen(name) : 0;

	if (!n || n > SFS_XATTR_NAME_MAX || !sfs_utf8_valid(name, n))
		return sfs_err_field(e, "name", "invalid",
				     "an attribute name is 1..%d bytes of "
				     "UTF-8",
				     SFS_XATTR_NAME_MAX);
	return SFS_OK;
}

/* Resolve the file in a transaction and check the permission needed. */
static enum sfs_status open_file(struct sfs_store *s, const struct sfs_actor *a,
				 const char *id, int write, struct db **dp,
				 int64_t *ino, struct sfs_err *e)
{
	struct sfs_file f;
	enum sfs_status ret;

	*dp = NULL;
	ret = sfsi_need_scope(a, write ? SFS_SCOPE_WRITE : SFS_SCOPE_READ, e);
	if (!ret)
		ret = sfsi_db_get(s, dp, e);
	if (ret)
		return ret;
	ret = write ? sfsi_db_begin(*dp, e) : sfsi_db_begin_read(*dp, e);
	if (!ret)
		ret = sfsi_file_resolve(*dp, a, id, 0, &f, e);
	if (!ret && write)
		ret = sfs_file_allows(&f, SFS_ACT_WRITE, e);
	*ino = f.ino;
	sfs_file_release(&f);
	if (ret) {
		sfsi_db_put(*dp);
		*dp = NULL;
	}
	return ret;
}

static enum sfs_status finish(struct db *d, int write, enum sfs_status ret,
			      struct sfs_err *e)
{
	if (write && !ret)
		ret = sfsi_db_commit(d, e);
	else
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_xattr_get(struct sfs_store *s, const struct sfs_actor *a,
			      const char *file_id, const char *name,
			      struct sfs_buf *out, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->xattr_get(s, file_id, name, out, e);
	struct db_stmt *st;
	struct db *d;
	enum sfs_status ret;
	const void *v;
	int64_t ino;
	size_t n;
	int rc;

	sfs_buf_reset(out);
	ret = name_check(name, e);
	if (!ret)
		ret = open_file(s, a, file_id, 0, &d, &ino, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d,
			  "SELECT value FROM xattr WHERE file_id = ?1"
			  " AND name = ?2",
			  e);
	if (!st)
		return finish(d, 0, SFS_IO, e);
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_text(st, 2, name);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		v = sfsi_db_col_blob(st, 0, &n);
		if (sfs_buf_add(out, v ? v : "", n))
			ret = sfs_errf(e, SFS_TOO_LARGE,
				       SFS_R_ATTRIBUTE_TOO_LARGE,
				       "the value is too large");
	} else {
		ret = rc < 0 ? SFS_IO
			     : sfs_errf(e, SFS_NOT_FOUND,
					SFS_R_ATTRIBUTE_NOT_FOUND,
					"no such attribute");
	}
	sfsi_db_reset(st);
	return finish(d, 0, ret, e);
}

static int64_t count_of(struct db *d, int64_t ino, int *exists,
			const char *name, struct sfs_err *e)
{
	struct db_stmt *st;
	int64_t n = -1;

	st = sfsi_db_prep(d,
			  "SELECT count(*),"
			  " sum(CASE WHEN name = ?2 THEN 1 ELSE 0 END)"
			  " FROM xattr"
			  " WHERE file_id = ?1",
			  e);
	if (!st)
		return -1;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_text(st, 2, name);
	if (sfsi_db_step(st, e) == 1) {
		n = sfsi_db_col_int(st, 0);
		*exists = sfsi_db_col_int(st, 1) > 0;
	}
	sfsi_db_reset(st);
	return n;
}

static enum sfs_status touch(struct db *d, int64_t ino, struct sfs_err *e)
{
	struct db_stmt *st = sfsi_db_prep(d,
					  "UPDATE file SET ctime_ns = ?2"
					  " WHERE id = ?1",
					  e);

	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, sfs_now_ns());
	return sfsi_db_run(st, e);
}

enum sfs_status sfs_xattr_set(struct sfs_store *s, const struct sfs_actor *a,
			      const char *file_id, const char *name,
			      const void *value, size_t len, unsigned flags,
			      struct sfs_err *e)
{
	if (s->ops)
		return s->ops->xattr_set(s, file_id, name, value, len, flags,
					 e);
	struct db_stmt *st;
	struct db *d;
	enum sfs_status ret;
	int64_t ino, n;
	int exists = 0;

	ret = name_check(name, e);
	if (!ret && len > SFS_XATTR_VALUE_MAX)
		ret = sfs_errf(e, SFS_TOO_LARGE, SFS_R_ATTRIBUTE_TOO_LARGE,
			       "an attribute value is at most %d bytes",
			       SFS_XATTR_VALUE_MAX);
	if (!ret)
		ret = open_file(s, a, file_id, 1, &d, &ino, e);
	if (ret)
		return ret;
	n = count_of(d, ino, &exists, name, e);
	if (n < 0)
		ret = SFS_IO;
	else if (exists && (flags & SFS_XATTR_CREATE))
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_ATTRIBUTE_EXISTS,
			       "the attribute exists");
	else if (!exists && (flags & SFS_XATTR_REPLACE))
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_ATTRIBUTE_NOT_FOUND,
			       "no such attribute");
	else if (!exists && n >= SFS_XATTR_PER_FILE)
		ret = sfs_errf(e, SFS_TOO_LARGE, SFS_R_ATTRIBUTE_TOO_LARGE,
			       "a file has at most %d extra attributes",
			       SFS_XATTR_PER_FILE);
	if (ret)
		return finish(d, 1, ret, e);
	st = sfsi_db_prep(d,
			  "INSERT INTO xattr(file_id, name, value)"
			  " VALUES (?1, ?2, ?3) ON CONFLICT(file_id, name)"
			  " DO UPDATE SET value = excluded.value",
			  e);
	if (!st)
		return finish(d, 1, SFS_IO, e);
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_text(st, 2, name);
	sfsi_db_bind_blob(st, 3, len ? value : "", len);
	ret = sfsi_db_run(st, e);
	if (!ret)
		ret = touch(d, ino, e);
	return finish(d, 1, ret, e);
}

enum sfs_status sfs_xattr_remove(struct sfs_store *s, const struct sfs_actor *a,
				 const char *file_id, const char *name,
				 struct sfs_err *e)
{
	if (s->ops)
		return s->ops->xattr_remove(s, file_id, name, e);
	struct db_stmt *st;
	struct db *d;
	enum sfs_status ret;
	int64_t ino;

	ret = name_check(name, e);
	if (!ret)
		ret = open_file(s, a, file_id, 1, &d, &ino, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(
		d, "DELETE FROM xattr WHERE file_id = ?1 AND name = ?2", e);
	if (!st)
		return finish(d, 1, SFS_IO, e);
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_text(st, 2, name);
	ret = sfsi_db_run(st, e);
	if (!ret && sfsi_db_changes(d) == 0)
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_ATTRIBUTE_NOT_FOUND,
			       "no such attribute");
	if (!ret)
		ret = touch(d, ino, e);
	return finish(d, 1, ret, e);
}

enum sfs_status sfs_xattr_list(struct sfs_store *s, const struct sfs_actor *a,
			       const char *file_id, struct sfs_buf *out,
			       struct sfs_err *e)
{
	if (s->ops)
		return s->ops->xattr_list(s, file_id, out, e);
	struct db_stmt *st;
	struct db *d;
	enum sfs_status ret;
	int64_t ino;
	int rc;

	ret = open_file(s, a, file_id, 0, &d, &ino, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d,
			  "SELECT name FROM xattr WHERE file_id = ?1"
			  " ORDER BY name",
			  e);
	if (!st)
		return finish(d, 0, SFS_IO, e);
	sfsi_db_bind_int(st, 1, ino);
	while ((rc = sfsi_db_step(st, e)) == 1) {
		const char *nm = sfsi_db_col_text(st, 0);

		if (sfs_buf_add(out, nm, strlen(nm) + 1)) {
			ret = sfs_errf(e, SFS_TOO_LARGE,
				       SFS_R_ATTRIBUTE_TOO_LARGE,
				       "too many attributes");
			break;
		}
	}
	if (rc < 0 && !ret)
		ret = SFS_IO;
	sfsi_db_reset(st);
	return finish(d, 0, ret, e);
}
