/*
 * Updating a file's fields (PATCH, a mount's rename, times and
 * publication): every field checked at once, then the row changed in the
 * caller's transaction. Creation and reading are file.c's.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "dir_i.h"
#include "file_i.h"
#include "speechfs/log.h"
#include "speechfs/vpath.h"
#include "store_i.h"
#include "util_i.h"
#include "remote_i.h"

/* Validate an update whole, so that every bad field is reported at once. */
static enum sfs_status check_update(const struct sfs_file *f,
				    const struct sfs_file_update *u,
				    struct sfs_buf *path, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;

	if ((u->set & SFS_UPD_NAME) && sfs_name_check(u->name, "name", e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_FILENAME) && u->filename &&
	    sfs_name_check(u->filename, "filename", e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_DESCRIPTION) &&
	    sfsi_file_description_check(u->description, e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_PATH) &&
	    sfs_vpath_norm(u->path ? u->path : "", "path", path, e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_METADATA) &&
	    sfs_metadata_check(u->metadata, "metadata", e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_TAGS) &&
	    sfsi_file_tags_check(u->tags, u->ntags, e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_PUBLISH) && u->publish != SFS_PUBLISH_PRIVATE &&
	    u->publish != SFS_PUBLISH_INTERNAL)
		ret = sfs_err_field(e, "publishMode", "invalid",
				    "must be PRIVATE or INTERNAL");
	if (!ret && (u->set & SFS_UPD_PUBLISH) && f->perm != SFS_PERM_OWNER &&
	    u->publish != f->publish)
		ret = sfs_errf(e, SFS_FORBIDDEN, SFS_R_FORBIDDEN,
			       "only the owner may change the publish mode");
	return ret;
}

/* The text columns an update sets as given: one statement each. */
static const struct {
	unsigned bit;
	size_t off; /* of the const char * in struct sfs_file_update */
	const char *sql;
} text_cols[] = {
	{ SFS_UPD_NAME, offsetof(struct sfs_file_update, name),
	  "UPDATE file SET name = ?2 WHERE id = ?1" },
	{ SFS_UPD_FILENAME, offsetof(struct sfs_file_update, filename),
	  "UPDATE file SET filename = ?2 WHERE id = ?1" },
	{ SFS_UPD_DESCRIPTION, offsetof(struct sfs_file_update, description),
	  "UPDATE file SET description = ?2 WHERE id = ?1" },
	{ SFS_UPD_METADATA, offsetof(struct sfs_file_update, metadata),
	  "UPDATE file SET metadata = ?2 WHERE id = ?1" },
};

static enum sfs_status set_text(struct db *d, const char *sql, int64_t ino,
				const char *v, struct sfs_err *e)
{
	struct db_stmt *st = sfsi_db_prep(d, sql, e);

	if (!st)
		return e && e->status ? e->status : SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_text(st, 2, v);
	return sfsi_db_run(st, e);
}

enum sfs_status sfsi_file_set_dir(struct db *d, struct sfs_file *f,
				  const char *to, struct sfs_err *e)
{
	char *p = strdup(to);
	enum sfs_status ret;

	if (!p)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	ret = set_text(d, "UPDATE file SET dir = ?2 WHERE id = ?1", f->ino, to,
		       e);
	if (ret) {
		free(p);
		return ret;
	}
	free(f->path);
	f->path = p;
	return SFS_OK;
}

/* publishedAt is set the first time the file becomes INTERNAL. */
static enum sfs_status set_publish(struct db *d, int64_t ino,
				   enum sfs_publish p, int64_t now_ms,
				   struct sfs_err *e)
{
	struct db_stmt *st;

	st = sfsi_db_prep(d,
			  "UPDATE file SET publish = ?2,"
			  " published_at = CASE WHEN ?2 = 1 AND"
			  " published_at IS NULL THEN ?3"
			  " ELSE published_at END WHERE id = ?1",
			  e);
	if (!st)
		return e && e->status ? e->status : SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, p);
	sfsi_db_bind_int(st, 3, now_ms);
	return sfsi_db_run(st, e);
}

/* The file leaves its directory for `to` (arrival first: a shared
 * ancestor must not vanish in between). */
static enum sfs_status move_file(struct db *d, const struct sfs_file *f,
				 const char *to, int64_t ns, struct sfs_err *e)
{
	enum sfs_status ret;

	ret = sfsi_dir_count(d, f->owner, to, 1, ns, e);
	if (!ret)
		ret = sfsi_dir_count(d, f->owner, f->path, -1, ns, e);
	if (!ret)
		ret = set_text(d, "UPDATE file SET dir = ?2 WHERE id = ?1",
			       f->ino, to, e);
	return ret;
}

enum sfs_status sfsi_file_apply_update(struct db *d, struct sfs_file *f,
				       const struct sfs_file_update *u,
				       struct sfs_err *e)
{
	struct sfs_buf path = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	int64_t ns = sfs_now_ns();
	int moved, renamed;
	enum sfs_status ret;
	size_t i;

	ret = check_update(f, u, &path, e);
	for (i = 0; i < ARRAY_SIZE(text_cols) && !ret; i++)
		if (u->set & text_cols[i].bit)
			ret = set_text(d, text_cols[i].sql, f->ino,
				       *(const char *const *)((const char *)u +
							      text_cols[i].off),
				       e);
	if (ret)
		goto out;
	moved = (u->set & SFS_UPD_PATH) && strcmp(path.buf, f->path);
	renamed = (u->set & SFS_UPD_NAME) && strcmp(u->name, f->name);
	if (moved)
		ret = move_file(d, f, path.buf, ns, e);
	if (!ret && (moved || renamed || (u->set & SFS_UPD_NO_SUFFIX)))
		ret = sfsi_file_arrive(d, f->ino, u->set & SFS_UPD_NO_SUFFIX,
				       e);
	if (!ret && (u->set & SFS_UPD_SUFFIX)) {
		ret = sfsi_exec_ino(d,
				    "UPDATE file SET entry_suffix = ?2"
				    " WHERE id = ?1",
				    f->ino, 1, e);
		/* not a change of the file's metadata: ctime stays */
		if (u->set == SFS_UPD_SUFFIX)
			goto out;
	}
	if (!ret && (u->set & SFS_UPD_TAGS))
		ret = sfsi_file_set_tags(d, f->tenant, f->ino, u->tags,
					 u->ntags, e);
	if (!ret && (u->set & SFS_UPD_PUBLISH))
		ret = set_publish(d, f->ino, u->publish, ns / 1000000, e);
	if (!ret && (u->set & SFS_UPD_MTIME))
		ret = sfsi_exec_ino(
			d, "UPDATE file SET mtime_ns = ?2 WHERE id = ?1",
			f->ino, u->mtime_ns, e);
	if (!ret && (u->set & SFS_UPD_ATIME))
		ret = sfsi_exec_ino(
			d, "UPDATE file SET atime_ns = ?2 WHERE id = ?1",
			f->ino, u->atime_ns, e);
	if (!ret)
		ret = sfsi_exec_ino(
			d, "UPDATE file SET ctime_ns = ?2 WHERE id = ?1",
			f->ino, ns, e);
out:
	sfs_buf_release(&path);
	return ret;
}

enum sfs_status sfs_file_update(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, const struct sfs_file_update *u,
				struct sfs_file *out, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->file_update(s, id, u, out, e);
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;

	if (out)
		sfs_file_init(out);
	ret = sfsi_file_begin(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = sfs_file_allows(&f, SFS_ACT_WRITE, e);
	if (!ret)
		ret = sfsi_file_apply_update(d, &f, u, e);
	return sfsi_file_end(s, d, ret, a, &f, out, e);
}
