/*
 * Direct shares: the owner grants another user of the same tenant VIEW or
 * EDIT on a file; listing and revoking are the owner's too.
 */
#include <stdlib.h>
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "file_i.h"
#include "speechfs/share.h"
#include "store_i.h"
#include "util_i.h"
#include "remote_i.h"

#define SHARE_COLS "s.uuid, f.uuid, tu.uuid, s.perm, cu.uuid, s.created_at"
#define SHARE_FROM                                                             \
	" FROM share s JOIN file f ON f.id = s.file_id"                        \
	" JOIN user tu ON tu.id = s.user_id"                                   \
	" JOIN user cu ON cu.id = s.created_by"

static void share_from_row(struct db_stmt *st, struct sfs_share *sh)
{
	sfs_strlcpy(sh->id, sfsi_db_col_text(st, 0), sizeof(sh->id));
	sfs_strlcpy(sh->file_id, sfsi_db_col_text(st, 1), sizeof(sh->file_id));
	sfs_strlcpy(sh->user_id, sfsi_db_col_text(st, 2), sizeof(sh->user_id));
	sh->perm = (enum sfs_perm)sfsi_db_col_int(st, 3);
	sfs_strlcpy(sh->created_by, sfsi_db_col_text(st, 4),
		    sizeof(sh->created_by));
	sh->created_at = sfsi_db_col_int(st, 5);
}

enum sfs_status sfs_share_perm_check(int perm, struct sfs_err *e)
{
	if (perm == SFS_PERM_VIEW || perm == SFS_PERM_EDIT)
		return SFS_OK;
	return sfs_err_field(e, "permission", "invalid",
			     "'permission' must be VIEW or EDIT");
}

/* Resolve the file in a transaction and insist on ownership. */
static enum sfs_status owner_file(struct db *d, const struct sfs_actor *a,
				  const char *file_id, struct sfs_file *f,
				  struct sfs_err *e)
{
	enum sfs_status ret = sfsi_file_resolve(d, a, file_id, 0, f, e);

	if (ret)
		return ret;
	return sfs_file_allows(f, SFS_ACT_SHARE, e);
}

/* The target of a share: a user of the actor's tenant other than itself. */
static enum sfs_status target_user(struct db *d, const struct sfs_actor *a,
				   const char *user_id, int64_t *uid,
				   struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!user_id)
		return sfs_err_field(e, "userId", "missing", "field required");
	if (!sfs_uuid_valid(user_id))
		return sfs_err_field(e, "userId", "invalid", "must be a UUID");
	st = sfsi_db_prep(d,
			  "SELECT id FROM user WHERE uuid = lower(?1)"
			  " AND tenant_id = ?2",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_text(st, 1, user_id);
	sfsi_db_bind_int(st, 2, a->tenant);
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		*uid = sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	if (rc < 0)
		return SFS_IO;
	if (rc == 0)
		return sfs_err_field(e, "userId", "not_found",
				     "target user not found");
	if (*uid == a->user)
		return sfs_err_field(e, "userId", "invalid",
				     "cannot share with yourself");
	return SFS_OK;
}

/*
 * Grant `perm` on file `ino` to user `uid`: a new share (*created = 1), or
 * a new permission of the existing one. A permission that changed is a
 * change of the file for that user (the change feed's triggers see only
 * inserts and deletes of shares), so that their mounts learn of it.
 */
static enum sfs_status upsert(struct db *d, const struct sfs_actor *a,
			      int64_t ino, int64_t uid, enum sfs_perm perm,
			      int *created, struct sfs_err *e)
{
	char uuid[SFS_ID_SIZE];
	struct db_stmt *st;

	st = sfsi_db_prep(d,
			  "UPDATE share SET perm = ?3 WHERE file_id = ?1"
			  " AND user_id = ?2 AND perm <> ?3",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, uid);
	sfsi_db_bind_int(st, 3, perm);
	if (sfsi_db_run(st, e))
		return SFS_IO;
	if (sfsi_db_changes(d)) {
		st = sfsi_db_prep(d,
				  "INSERT INTO change(owner_id, file_id, dir,"
				  " at) VALUES (?1, ?2, NULL, ?3)",
				  e);
		if (!st)
			return SFS_IO;
		sfsi_db_bind_int(st, 1, uid);
		sfsi_db_bind_int(st, 2, ino);
		sfsi_db_bind_int(st, 3, sfs_now_ns());
		return sfsi_db_run(st, e) ? SFS_IO : SFS_OK;
	}
	sfs_uuid_new(uuid);
	st = sfsi_db_prep(d,
			  "INSERT INTO share(uuid, file_id, user_id, perm,"
			  " created_by, created_at)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
			  " ON CONFLICT(file_id, user_id) DO NOTHING",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_text(st, 1, uuid);
	sfsi_db_bind_int(st, 2, ino);
	sfsi_db_bind_int(st, 3, uid);
	sfsi_db_bind_int(st, 4, perm);
	sfsi_db_bind_int(st, 5, a->user);
	sfsi_db_bind_int(st, 6, sfs_now_ms());
	if (sfsi_db_run(st, e))
		return SFS_IO;
	*created = sfsi_db_changes(d) == 1;
	return SFS_OK;
}

enum sfs_status sfs_share_put(struct sfs_store *s, const struct sfs_actor *a,
			      const char *file_id, const char *user_id,
			      enum sfs_perm perm, struct sfs_share *out,
			      int *created, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->share_put(s, file_id, user_id, perm, out,
					 created, e);
	struct sfs_file f;
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t uid = 0;
	int rc;

	sfs_file_init(&f);
	*created = 0;
	ret = sfsi_need_scope(a, SFS_SCOPE_SHARE, e);
	if (ret)
		return ret;
	ret = sfs_share_perm_check((int)perm, e);
	if (ret)
		return ret;
	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = sfsi_db_begin(d, e);
	if (!ret)
		ret = owner_file(d, a, file_id, &f, e);
	if (!ret && f.deleted)
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_DELETED,
			       "the file is deleted");
	if (!ret)
		ret = target_user(d, a, user_id, &uid, e);
	if (ret)
		goto out;
	if (upsert(d, a, f.ino, uid, perm, created, e))
		goto io;
	if (out) {
		st = sfsi_db_prep(d,
				  "SELECT " SHARE_COLS SHARE_FROM
				  " WHERE s.file_id = ?1 AND s.user_id = ?2",
				  e);
		if (!st)
			goto io;
		sfsi_db_bind_int(st, 1, f.ino);
		sfsi_db_bind_int(st, 2, uid);
		rc = sfsi_db_step(st, e);
		if (rc == 1)
			share_from_row(st, out);
		sfsi_db_reset(st);
		if (rc != 1)
			goto io;
	}
	ret = sfsi_db_commit(d, e);
	goto out;
io:
	ret = e && e->status ? e->status : SFS_IO;
out:
	if (d && ret)
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	sfs_file_release(&f);
	return ret;
}

enum sfs_status sfs_share_list(struct sfs_store *s, const struct sfs_actor *a,
			       const char *file_id, struct sfs_share **out,
			       size_t *n, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->share_list(s, file_id, out, n, e);
	struct sfs_share *v = NULL, *nv;
	struct sfs_file f;
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	size_t cap = 0;
	int rc;

	sfs_file_init(&f);
	*out = NULL;
	*n = 0;
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = sfsi_db_begin_read(d, e);
	if (!ret)
		ret = owner_file(d, a, file_id, &f, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "SELECT " SHARE_COLS SHARE_FROM
			  " WHERE s.file_id = ?1 ORDER BY s.created_at, s.id",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, f.ino);
	while ((rc = sfsi_db_step(st, e)) == 1) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					       "out of memory");
				break;
			}
			v = nv;
		}
		share_from_row(st, &v[(*n)++]);
	}
	sfsi_db_reset(st);
	if (rc < 0)
		ret = SFS_IO;
out:
	if (d)
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	sfs_file_release(&f);
	if (ret) {
		free(v);
		*n = 0;
		return ret;
	}
	*out = v;
	return SFS_OK;
}

static enum sfs_status revoke(struct sfs_store *s, const struct sfs_actor *a,
			      const char *file_id, const char *share_id,
			      const char *user_id, struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;

	sfs_file_init(&f);
	ret = sfsi_need_scope(a, SFS_SCOPE_SHARE, e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = sfsi_db_begin(d, e);
	if (!ret)
		ret = owner_file(d, a, file_id, &f, e);
	if (ret)
		goto out;
	if (share_id && !sfs_uuid_valid(share_id)) {
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_SHARE_NOT_FOUND,
			       "no share with this id exists on the file");
		goto out;
	}
	if (share_id) {
		st = sfsi_db_prep(d,
				  "DELETE FROM share WHERE file_id = ?1"
				  " AND uuid = lower(?2)",
				  e);
	} else {
		st = sfsi_db_prep(d,
				  "DELETE FROM share WHERE file_id = ?1"
				  " AND user_id = (SELECT id FROM user"
				  " WHERE uuid = lower(?2))",
				  e);
	}
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, f.ino);
	sfsi_db_bind_text(st, 2, share_id ? share_id : user_id);
	ret = sfsi_db_run(st, e);
	if (!ret && sfsi_db_changes(d) == 0)
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_SHARE_NOT_FOUND,
			       "no share with this id exists on the file");
	if (!ret)
		ret = sfsi_db_commit(d, e);
out:
	if (d && ret)
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	sfs_file_release(&f);
	return ret;
}

enum sfs_status sfs_share_revoke(struct sfs_store *s, const struct sfs_actor *a,
				 const char *file_id, const char *share_id,
				 struct sfs_err *e)
{
	return revoke(s, a, file_id, share_id ? share_id : "", NULL, e);
}

enum sfs_status sfs_share_revoke_user(struct sfs_store *s,
				      const struct sfs_actor *a,
				      const char *file_id, const char *user_id,
				      struct sfs_err *e)
{
	if (s->ops)
		return s->ops->share_revoke_user(s, file_id, user_id, e);
	if (!user_id || !sfs_uuid_valid(user_id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_SHARE_NOT_FOUND,
				"no share for this user exists on the file");
	return revoke(s, a, file_id, NULL, user_id, e);
}

enum sfs_status sfs_share_user_name(struct sfs_store *s,
				    const struct sfs_actor *a,
				    const char *user_id, char *name,
				    size_t size, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->user_name(s, user_id, name, size, e);
	struct db_stmt *st;
	struct db *d = NULL;
	enum sfs_status ret;
	int rc;

	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d,
			  "SELECT name FROM user WHERE uuid = lower(?1)"
			  " AND tenant_id = ?2",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_text(st, 1, user_id);
	sfsi_db_bind_int(st, 2, a->tenant);
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		sfs_strlcpy(name, sfsi_db_col_text(st, 0), size);
	sfsi_db_reset(st);
	if (rc < 0)
		ret = SFS_IO;
	else if (rc == 0)
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
			       "no such user in the tenant");
out:
	sfsi_db_put(d);
	return ret;
}
