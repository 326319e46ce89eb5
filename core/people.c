/*
 * Finding people: lists of tenants, users and API keys for the operator,
 * and, for a user, the users of their own tenant by name (the API's
 * directory, the mount's share.<name>). Accounts are made and changed in
 * auth.c; this file only reads them.
 */
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "speechfs/people.h"
#include "util_i.h"
#include "remote_i.h"

#define DIRECTORY_MAX 1000
#define NAME_MAX_BYTES 127 /* as auth.c takes them */

/* The columns and joins of a user row (user_from_row reads them). */
#define USER_COLS                                                              \
	"u.uuid, t.uuid, t.name, u.name, u.download_bps, u.created_at,"        \
	" (SELECT count(*) FROM api_key k WHERE k.user_id = u.id"              \
	" AND k.revoked_at IS NULL)"
#define USER_FROM " FROM user u JOIN tenant t ON t.id = u.tenant_id"

static enum sfs_status db_status(struct sfs_err *e)
{
	return e && e->status ? e->status : SFS_IO;
}

static void user_from_row(struct db_stmt *st, struct sfs_user_info *u)
{
	memset(u, 0, sizeof(*u));
	sfs_strlcpy(u->id, sfsi_db_col_text(st, 0), sizeof(u->id));
	sfs_strlcpy(u->tenant_id, sfsi_db_col_text(st, 1),
		    sizeof(u->tenant_id));
	sfs_strlcpy(u->tenant_name, sfsi_db_col_text(st, 2),
		    sizeof(u->tenant_name));
	sfs_strlcpy(u->name, sfsi_db_col_text(st, 3), sizeof(u->name));
	u->download_bps = sfsi_db_col_int(st, 4);
	u->created_ms = sfsi_db_col_int(st, 5);
	u->keys = sfsi_db_col_int(st, 6);
}

/* Step a prepared statement to its end, calling row(st) for each row. */
static enum sfs_status each_row(struct db_stmt *st,
				int (*row)(struct db_stmt *, void *), void *arg,
				struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;
	int rc;

	while ((rc = sfsi_db_step(st, e)) == 1)
		if (row(st, arg))
			break;
	if (rc < 0)
		ret = db_status(e);
	sfsi_db_reset(st);
	return ret;
}

/* ---- tenants ------------------------------------------------------------ */

struct tenant_cb {
	sfs_tenant_fn fn;
	void *arg;
};

static int tenant_row(struct db_stmt *st, void *arg)
{
	struct tenant_cb *cb = arg;
	struct sfs_tenant_info t;

	memset(&t, 0, sizeof(t));
	sfs_strlcpy(t.id, sfsi_db_col_text(st, 0), sizeof(t.id));
	sfs_strlcpy(t.name, sfsi_db_col_text(st, 1), sizeof(t.name));
	t.max_bytes = sfsi_db_col_int(st, 2);
	t.max_files = sfsi_db_col_int(st, 3);
	t.used_bytes = sfsi_db_col_int(st, 4);
	t.used_files = sfsi_db_col_int(st, 5);
	t.users = sfsi_db_col_int(st, 6);
	return cb->fn(cb->arg, &t);
}

enum sfs_status sfs_tenant_list(struct sfs_store *s, sfs_tenant_fn fn,
				void *arg, struct sfs_err *e)
{
	struct tenant_cb cb = { fn, arg };
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;

	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "SELECT t.uuid, t.name, t.max_bytes, t.max_files,"
			  " t.used_bytes, t.used_files, (SELECT count(*)"
			  " FROM user u WHERE u.tenant_id = t.id)"
			  " FROM tenant t ORDER BY t.id",
			  e);
	ret = st ? each_row(st, tenant_row, &cb, e) : db_status(e);
out:
	sfsi_db_put(d);
	return ret;
}

/* ---- users -------------------------------------------------------------- */

struct user_cb {
	sfs_user_fn fn;
	void *arg;
	int ids_only; /* the directory: id and name, nothing more */
};

static int user_row(struct db_stmt *st, void *arg)
{
	struct user_cb *cb = arg;
	struct sfs_user_info u;

	user_from_row(st, &u);
	if (cb->ids_only) {
		memset(u.tenant_id, 0, sizeof(u.tenant_id));
		memset(u.tenant_name, 0, sizeof(u.tenant_name));
		u.download_bps = u.created_ms = u.keys = 0;
	}
	return cb->fn(cb->arg, &u);
}

enum sfs_status sfs_user_list(struct sfs_store *s, const char *tenant_id,
			      sfs_user_fn fn, void *arg, struct sfs_err *e)
{
	struct user_cb cb = { fn, arg, 0 };
	char tenant[SFS_ID_SIZE];
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;

	if (tenant_id && sfsi_uuid_norm(tenant_id, tenant))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_TENANT_NOT_FOUND,
				"no tenant '%s'", tenant_id);
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	if (tenant_id) {
		ret = sfsi_tenant_exists(d, tenant, e);
		if (ret)
			goto out;
	}
	st = sfsi_db_prep(d,
			  "SELECT " USER_COLS USER_FROM
			  " WHERE CAST(?1 AS TEXT) IS NULL OR t.uuid = ?1"
			  " ORDER BY t.id, u.name COLLATE NOCASE, u.id",
			  e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfsi_db_bind_text(st, 1, tenant_id ? tenant : NULL);
	ret = each_row(st, user_row, &cb, e);
out:
	sfsi_db_put(d);
	return ret;
}

/* The one user of a query on the user columns, with ?1 and ?2 bound. */
#define ONE_USER(where) "SELECT " USER_COLS USER_FROM " WHERE " where
#define BY_ID ONE_USER("u.uuid = ?1")
#define BY_NAME ONE_USER("t.uuid = ?1 AND u.name = ?2 COLLATE NOCASE")
#define BY_ID_IN_TENANT ONE_USER("u.uuid = ?1 AND t.uuid = ?2")

/* sql is a constant (statements are cached by its address). */
static enum sfs_status one_user(struct sfs_store *s, const char *sql,
				const char *p1, const char *p2,
				struct sfs_user_info *out, struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st = NULL;
	enum sfs_status ret;
	int rc;

	memset(out, 0, sizeof(*out));
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d, sql, e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfsi_db_bind_text(st, 1, p1);
	if (p2)
		sfsi_db_bind_text(st, 2, p2);
	rc = sfsi_db_step(st, e);
	if (rc < 0)
		ret = db_status(e);
	else if (rc == 0)
		ret = SFS_NOT_FOUND;
	else
		user_from_row(st, out);
out:
	sfsi_db_reset(st);
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_user_get(struct sfs_store *s, const char *user_id,
			     struct sfs_user_info *out, struct sfs_err *e)
{
	char uuid[SFS_ID_SIZE];
	enum sfs_status ret = SFS_NOT_FOUND;

	if (!sfsi_uuid_norm(user_id, uuid))
		ret = one_user(s, BY_ID, uuid, NULL, out, e);
	if (ret == SFS_NOT_FOUND)
		sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND, "no user '%s'",
			 user_id ? user_id : "");
	return ret;
}

enum sfs_status sfs_user_find(struct sfs_store *s, const char *tenant_id,
			      const char *name, struct sfs_user_info *out,
			      struct sfs_err *e)
{
	char tenant[SFS_ID_SIZE];
	enum sfs_status ret = SFS_NOT_FOUND;

	memset(out, 0, sizeof(*out));
	if (sfsi_uuid_norm(tenant_id, tenant))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_TENANT_NOT_FOUND,
				"no tenant '%s'", tenant_id ? tenant_id : "");
	if (name && *name)
		ret = one_user(s, BY_NAME, tenant, name, out, e);
	if (ret == SFS_NOT_FOUND)
		sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
			 "no user named '%s' in tenant %s", name ? name : "",
			 tenant);
	return ret;
}

/* ---- keys --------------------------------------------------------------- */

struct key_cb {
	sfs_key_fn fn;
	void *arg;
};

static int key_row(struct db_stmt *st, void *arg)
{
	struct key_cb *cb = arg;
	struct sfs_key_info k;
	const char *label;

	memset(&k, 0, sizeof(k));
	sfs_strlcpy(k.id, sfsi_db_col_text(st, 0), sizeof(k.id));
	sfs_strlcpy(k.user_id, sfsi_db_col_text(st, 1), sizeof(k.user_id));
	label = sfsi_db_col_text(st, 2);
	sfs_strlcpy(k.label, label ? label : "", sizeof(k.label));
	k.scopes = (unsigned)sfsi_db_col_int(st, 3) & SFS_SCOPE_ALL;
	k.created_ms = sfsi_db_col_int(st, 4);
	k.last_used_ms = sfsi_db_col_int(st, 5);
	k.revoked_ms = sfsi_db_col_int(st, 6);
	return cb->fn(cb->arg, &k);
}

enum sfs_status sfs_key_list(struct sfs_store *s, const char *user_id,
			     sfs_key_fn fn, void *arg, struct sfs_err *e)
{
	struct key_cb cb = { fn, arg };
	struct sfs_user_info u;
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;

	ret = sfs_user_get(s, user_id, &u, e);
	if (ret)
		return ret;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "SELECT k.uuid, u.uuid, k.label, k.scopes,"
			  " k.created_at, coalesce(k.last_used_at, 0),"
			  " coalesce(k.revoked_at, 0) FROM api_key k"
			  " JOIN user u ON u.id = k.user_id"
			  " WHERE u.uuid = ?1 ORDER BY k.id",
			  e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfsi_db_bind_text(st, 1, u.id);
	ret = each_row(st, key_row, &cb, e);
out:
	sfsi_db_put(d);
	return ret;
}

/* ---- a user's view: their own tenant ------------------------------------ */

/* prefix% for LIKE, with LIKE's own characters escaped by '\'. */
static int like_prefix(const char *prefix, char *out, size_t size)
{
	size_t n = 0;

	for (; prefix && *prefix; prefix++) {
		if (n + 3 >= size)
			return -1;
		if (*prefix == '%' || *prefix == '_' || *prefix == '\\')
			out[n++] = '\\';
		out[n++] = *prefix;
	}
	out[n++] = '%';
	out[n] = '\0';
	return 0;
}

enum sfs_status sfs_user_directory(struct sfs_store *s,
				   const struct sfs_actor *a,
				   const char *prefix, int64_t offset,
				   int64_t limit, sfs_user_fn fn, void *arg,
				   int64_t *total, struct sfs_err *e)
{
	struct user_cb cb = { fn, arg, 1 };
	char like[2 * NAME_MAX_BYTES + 2];
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int rc;

	if (offset < 0)
		return sfs_err_field(e, "page", "invalid", "must be 0 or more");
	if (limit < 1 || limit > DIRECTORY_MAX)
		return sfs_err_field(e, "size", "invalid", "must be 1 to %d",
				     DIRECTORY_MAX);
	/* no name is longer: a longer prefix is a mistake, not a search */
	if ((prefix && strlen(prefix) > NAME_MAX_BYTES) ||
	    like_prefix(prefix, like, sizeof(like)))
		return sfs_err_field(e, "name", "too_long", "at most %d bytes",
				     NAME_MAX_BYTES);
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	if (total) {
		st = sfsi_db_prep(
			d,
			"SELECT count(*) FROM user WHERE"
			" tenant_id = ?1 AND name LIKE ?2 ESCAPE '\\'",
			e);
		if (!st) {
			ret = db_status(e);
			goto out;
		}
		sfsi_db_bind_int(st, 1, a->tenant);
		sfsi_db_bind_text(st, 2, like);
		rc = sfsi_db_step(st, e);
		*total = rc == 1 ? sfsi_db_col_int(st, 0) : 0;
		sfsi_db_reset(st);
		if (rc < 0) {
			ret = db_status(e);
			goto out;
		}
	}
	st = sfsi_db_prep(d,
			  "SELECT " USER_COLS USER_FROM
			  " WHERE u.tenant_id = ?1 AND u.name LIKE ?2"
			  " ESCAPE '\\' ORDER BY u.name COLLATE NOCASE, u.id"
			  " LIMIT ?3 OFFSET ?4",
			  e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfsi_db_bind_int(st, 1, a->tenant);
	sfsi_db_bind_text(st, 2, like);
	sfsi_db_bind_int(st, 3, limit);
	sfsi_db_bind_int(st, 4, offset);
	ret = each_row(st, user_row, &cb, e);
out:
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_user_resolve(struct sfs_store *s, const struct sfs_actor *a,
				 const char *who, char id_out[SFS_ID_SIZE],
				 struct sfs_err *e)
{
	if (s->ops)
		return s->ops->user_resolve(s, who, id_out, e);
	struct sfs_user_info u;
	char uuid[SFS_ID_SIZE];
	enum sfs_status ret = SFS_NOT_FOUND;

	/* an id first: names cannot take one's place */
	if (who && !sfsi_uuid_norm(who, uuid))
		ret = one_user(s, BY_ID_IN_TENANT, uuid, a->tenant_id, &u, e);
	if (ret == SFS_NOT_FOUND && who && *who)
		ret = one_user(s, BY_NAME, a->tenant_id, who, &u, e);
	if (ret == SFS_NOT_FOUND)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
				"no user '%s' in your tenant", who ? who : "");
	if (!ret)
		memcpy(id_out, u.id, SFS_ID_SIZE);
	return ret;
}
