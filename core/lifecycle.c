/*
 * The lifecycle of a file: soft delete (purgeAt set by the retention),
 * restore, purge (content and listening audio released for good), discard
 * of the content (metadata kept), and the janitor that purges what the
 * retention let go.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "auth_i.h"
#include "blob_i.h"
#include "db_i.h"
#include "dir_i.h"
#include "file_i.h"
#include "job_i.h"
#include "speechfs/blob.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/vpath.h"
#include "store_i.h"
#include "util_i.h"
#include "remote_i.h"

/*
 * Drop a file row's reference on one of its blobs: `get` selects
 * (tenant_id, sha) where the reference is held, `clear` marks it dropped.
 * Both are string literals (statements are cached by address).
 */
static enum sfs_status release_ref(struct db *d, int64_t ino, const char *get,
				   const char *clear, struct sfs_err *e)
{
	struct db_stmt *st;
	char sha[65] = "";
	int64_t tenant = 0;
	int rc;

	st = sfsi_db_prep(d, get, e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		tenant = sfsi_db_col_int(st, 0);
		sfs_strlcpy(sha, sfsi_db_col_text(st, 1), sizeof(sha));
	}
	sfsi_db_reset(st);
	if (rc < 0)
		return SFS_IO;
	if (rc == 0)
		return SFS_OK;
	if (sfsi_exec_ino(d, clear, ino, 0, e))
		return SFS_IO;
	return sfsi_blob_unref(d, tenant, sha, e);
}

enum sfs_status sfsi_file_release_content(struct db *d, int64_t ino,
					  struct sfs_err *e)
{
	return release_ref(d, ino,
			   "SELECT tenant_id, sha256 FROM file"
			   " WHERE id = ?1 AND blob_ref = 1",
			   "UPDATE file SET blob_ref = ?2 WHERE id = ?1", e);
}

enum sfs_status sfsi_file_release_listening(struct db *d, int64_t ino,
					    struct sfs_err *e)
{
	enum sfs_status ret;

	ret = release_ref(d, ino,
			  "SELECT tenant_id, la_sha256 FROM file"
			  " WHERE id = ?1 AND la_blob_ref = 1",
			  "UPDATE file SET la_blob_ref = ?2 WHERE id = ?1", e);
	/* the peaks go with the audio they were drawn from */
	if (!ret)
		ret = sfsi_exec_ino(d, "DELETE FROM peaks WHERE file_id = ?1",
				    ino, 0, e);
	return ret;
}

/* Purge a (deleted) file: content and listening audio released for good. */
static enum sfs_status purge_file(struct db *d, const struct sfs_file *f,
				  int64_t ns, struct sfs_err *e)
{
	enum sfs_status ret;

	if (f->purged)
		return SFS_OK;
	ret = sfsi_job_cancel_file(d, f->ino, 0, e);
	if (!ret)
		ret = sfsi_file_release_content(d, f->ino, e);
	if (!ret)
		ret = sfsi_file_release_listening(d, f->ino, e);
	if (!ret)
		ret = sfsi_exec_ino(
			d,
			"UPDATE file SET is_purged = 1,"
			" purged_at = ?2, purge_at = NULL,"
			" la_purged = CASE WHEN la_status = 0 THEN 0"
			" ELSE 1 END,"
			" la_purged_at = CASE WHEN la_status = 0"
			" THEN NULL ELSE coalesce(la_purged_at, ?2)"
			" END, la_purge_at = NULL WHERE id = ?1",
			f->ino, ns / 1000000, e);
	if (!ret)
		ret = sfsi_file_count(d, f->tenant, -1, e);
	return ret;
}

/* f's row marked deleted, its directory not counted yet (soft_delete). */
static enum sfs_status mark_deleted(struct db *d, struct sfs_store *s,
				    const struct sfs_file *f, int64_t ns,
				    struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;

	ret = sfsi_job_cancel_file(d, f->ino, 0, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d,
			  "UPDATE file SET is_deleted = 1, deleted_at = ?2,"
			  " purge_at = ?3, ctime_ns = ?4,"
			  " ingestion = CASE WHEN ingestion IN (1, 2) THEN 4"
			  " ELSE ingestion END,"
			  " ingest_error = CASE WHEN ingestion IN (1, 2)"
			  " THEN 'cancelled: the file was deleted'"
			  " ELSE ingest_error END,"
			  " la_status = CASE WHEN la_status IN (1, 2) THEN 4"
			  " ELSE la_status END,"
			  " la_error = CASE WHEN la_status IN (1, 2)"
			  " THEN 'cancelled: the file was deleted'"
			  " ELSE la_error END"
			  " WHERE id = ?1",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, f->ino);
	sfsi_db_bind_int(st, 2, ns / 1000000);
	sfsi_db_bind_int(st, 3, ns / 1000000 + s->cfg.retention_seconds * 1000);
	sfsi_db_bind_int(st, 4, ns);
	return sfsi_db_run(st, e);
}

static enum sfs_status soft_delete(struct db *d, struct sfs_store *s,
				   const struct sfs_file *f, int64_t ns,
				   struct sfs_err *e)
{
	enum sfs_status ret = mark_deleted(d, s, f, ns, e);

	if (!ret)
		ret = sfsi_dir_count(d, f->owner, f->path, -1, ns, e);
	return ret;
}

enum sfs_status sfs_file_delete(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, int purge, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->file_delete(s, id, purge, e);
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;
	int64_t ns = sfs_now_ns();

	ret = sfsi_file_begin(s, a, id, SFS_SCOPE_DELETE, &d, &f, e);
	if (ret)
		return ret;
	ret = sfsi_file_need_perm(&f, SFS_PERM_OWNER, "delete", e);
	if (ret)
		goto out;
	if (f.deleted && !purge) {
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_DELETED,
			       "the file is already deleted");
		goto out;
	}
	if (!f.deleted)
		ret = soft_delete(d, s, &f, ns, e);
	if (!ret && purge)
		ret = purge_file(d, &f, ns, e);
out:
	return sfsi_file_end(s, d, ret, a, &f, NULL, e);
}

/*
 * Undo the soft delete of f (resolved in d's transaction), into directory
 * `to` (normalised; NULL: its own), counted there only: a restore that
 * moves the file leaves its old directory as it was (counted there, then
 * moved out, a directory that was not there stayed, kept, through a
 * handle that keeps directories). The caller makes it arrive
 * (sfsi_file_arrive) once it is where it stays.
 */
static enum sfs_status restore_row(struct db *d, struct sfs_file *f,
				   const char *to, int64_t ns,
				   struct sfs_err *e)
{
	enum sfs_status ret;

	ret = sfsi_file_need_perm(f, SFS_PERM_OWNER, "restore", e);
	if (!ret && !f->deleted)
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_NOT_DELETED,
			       "the file is not deleted");
	if (!ret && f->purged)
		ret = sfs_errf(e, SFS_GONE, SFS_R_FILE_PURGED,
			       "the file was purged and cannot be restored");
	if (!ret)
		ret = sfsi_exec_ino(d,
				    "UPDATE file SET is_deleted = 0,"
				    " deleted_at = NULL, purge_at = NULL,"
				    " ctime_ns = ?2 WHERE id = ?1",
				    f->ino, ns, e);
	if (!ret && to && strcmp(to, f->path))
		ret = sfsi_file_set_dir(d, f, to, e);
	if (!ret)
		ret = sfsi_dir_count(d, f->owner, f->path, 1, ns, e);
	if (!ret)
		f->deleted = 0;
	return ret;
}

enum sfs_status sfs_file_restore(struct sfs_store *s, const struct sfs_actor *a,
				 const char *id, struct sfs_file *out,
				 struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;

	if (out)
		sfs_file_init(out);
	ret = sfsi_file_begin(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = restore_row(d, &f, NULL, sfs_now_ns(), e);
	if (!ret)
		ret = sfsi_file_arrive(d, f.ino, 0, e);
	return sfsi_file_end(s, d, ret, a, &f, out, e);
}

enum sfs_status sfs_file_rename(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, const struct sfs_file_update *u,
				const char *replace_id, unsigned flags,
				struct sfs_file *out, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->file_rename(s, id, u, replace_id, flags, out, e);
	struct sfs_buf to = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	struct sfs_file f, t;
	struct db *d;
	enum sfs_status ret;
	int64_t ns = sfs_now_ns();
	int replaced = 0, restored = 0;

	if (out)
		sfs_file_init(out);
	sfs_file_init(&t);
	if (replace_id) {
		ret = sfsi_need_scope(a, SFS_SCOPE_DELETE, e);
		if (ret)
			return ret;
	}
	ret = sfsi_file_begin(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	if ((flags & SFS_RENAME_RESTORE) && f.deleted) {
		/* where the update puts it (an invalid path: its error) */
		if ((u->set & SFS_UPD_PATH) &&
		    sfs_vpath_norm(u->path ? u->path : "", "path", &to, e))
			ret = SFS_INVALID;
		if (!ret)
			ret = restore_row(d, &f, to.len ? to.buf : NULL, ns, e);
		restored = !ret;
	}
	if (!ret)
		ret = sfs_file_allows(&f, SFS_ACT_WRITE, e);
	if (!ret && replace_id && strcmp(replace_id, f.id)) {
		ret = sfsi_file_resolve(d, a, replace_id, 0, &t, e);
		if (!ret)
			ret = sfsi_file_need_perm(&t, SFS_PERM_OWNER, "delete",
						  e);
		/* deleted meanwhile: its name is free already */
		if (!ret && !t.deleted) {
			ret = mark_deleted(d, s, &t, ns, e);
			replaced = 1;
		}
	}
	if (!ret)
		ret = sfsi_file_apply_update(d, &f, u, e);
	/*
	 * The replaced file leaves its directory once f has arrived (as a
	 * move counts, arrival first): a directory that f fills again
	 * neither vanishes in between nor is kept (sfs_store_keep_dirs).
	 */
	if (!ret && replaced)
		ret = sfsi_dir_count(d, t.owner, t.path, -1, ns, e);
	/* out of the trash: it arrives where it stays, the replaced gone */
	if (!ret && restored)
		ret = sfsi_file_arrive(d, f.ino, u->set & SFS_UPD_NO_SUFFIX, e);
	sfs_file_release(&t);
	sfs_buf_release(&to);
	return sfsi_file_end(s, d, ret, a, &f, out, e);
}

enum sfs_status sfs_file_discard(struct sfs_store *s, const struct sfs_actor *a,
				 const char *id, struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;
	int64_t ns = sfs_now_ns();

	ret = sfsi_file_begin(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = sfsi_file_need_perm(&f, SFS_PERM_OWNER, "discard the content of",
				  e);
	if (!ret && f.deleted)
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_DELETED,
			       "the file is deleted");
	if (!ret && f.discarded)
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_CONTENT_DISCARDED,
			       "the content is already discarded");
	if (!ret)
		ret = sfsi_job_cancel_file(d, f.ino, 0, e);
	if (!ret)
		ret = sfsi_file_release_content(d, f.ino, e);
	if (!ret)
		ret = sfsi_exec_ino(
			d,
			"UPDATE file SET is_discarded = 1,"
			" discarded_at = ?2,"
			" ingestion = CASE WHEN ingestion IN (1, 2)"
			" THEN 4 ELSE ingestion END,"
			" ingest_error = CASE WHEN ingestion IN (1, 2)"
			" THEN 'cancelled: the content was discarded'"
			" ELSE ingest_error END,"
			" la_status = CASE WHEN la_status IN (1, 2)"
			" THEN 4 ELSE la_status END,"
			" la_error = CASE WHEN la_status IN (1, 2)"
			" THEN 'cancelled: the content was discarded'"
			" ELSE la_error END WHERE id = ?1",
			f.ino, ns / 1000000, e);
	if (!ret)
		ret = sfsi_exec_ino(
			d, "UPDATE file SET ctime_ns = ?2 WHERE id = ?1", f.ino,
			ns, e);
	return sfsi_file_end(s, d, ret, a, &f, NULL, e);
}

enum sfs_status sfs_store_janitor_run(struct sfs_store *s, int *n,
				      struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t ns = sfs_now_ns(), now = ns / 1000000, inos[64];
	int k = 0, m = 0, i, rc, total = 0;

	if (n)
		*n = 0;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	do {
		/* a sweep: a long transaction, not in a group */
		ret = sfsi_db_begin_alone(d, e);
		if (ret)
			break;
		st = sfsi_db_prep(
			d,
			"SELECT id FROM file WHERE is_deleted = 1"
			" AND is_purged = 0 AND purge_at <= ?1 LIMIT 64",
			e);
		if (!st) {
			ret = SFS_IO;
			break;
		}
		sfsi_db_bind_int(st, 1, now);
		for (k = 0; k < 64 && (rc = sfsi_db_step(st, e)) == 1; k++)
			inos[k] = sfsi_db_col_int(st, 0);
		sfsi_db_reset(st);
		if (k < 64 && rc < 0)
			ret = e && e->status ? e->status : SFS_IO;
		for (i = 0; i < k && !ret; i++) {
			struct sfs_file f;

			ret = sfsi_file_load_ino(d, inos[i], &f, e);
			if (!ret)
				ret = purge_file(d, &f, ns, e);
			sfs_file_release(&f);
		}
		/* listening audio whose own retention ran out */
		st = sfsi_db_prep(d,
				  "SELECT id FROM file WHERE la_deleted = 1"
				  " AND la_purged = 0 AND la_purge_at <= ?1"
				  " LIMIT 64",
				  e);
		if (!ret && !st)
			ret = SFS_IO;
		m = 0;
		if (!ret) {
			sfsi_db_bind_int(st, 1, now);
			while (m < 64 && sfsi_db_step(st, e) == 1)
				inos[m++] = sfsi_db_col_int(st, 0);
			sfsi_db_reset(st);
			for (i = 0; i < m && !ret; i++) {
				ret = sfsi_file_release_listening(d, inos[i],
								  e);
				if (!ret)
					ret = sfsi_exec_ino(
						d,
						"UPDATE file SET la_purged = 1,"
						" la_purged_at = ?2,"
						" la_purge_at = NULL WHERE id "
						"= ?1",
						inos[i], now, e);
			}
		}
		if (ret) {
			sfsi_db_rollback(d);
			break;
		}
		ret = sfsi_db_commit(d, e);
		total += k + m;
	} while (!ret && (k == 64 || m == 64));
	sfsi_db_put(d);
	if (n)
		*n = total;
	if (total)
		sfs_info("janitor", "purged %d expired item(s)", total);
	return ret;
}

static void janitor_chore(struct sfs_store *s)
{
	struct sfs_err e;
	int n = 0;

	sfs_err_init(&e);
	if (sfs_store_janitor_run(s, &n, &e))
		sfs_warn("janitor", "purge pass failed: %s", e.message);
}

void sfsi_lifecycle_install(struct sfs_store *s)
{
	sfsi_janitor_add(s, janitor_chore);
}
