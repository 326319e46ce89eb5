/*
 * A remote store's users and shares (remote_i.h): the users directory
 * (GET /api/v1/speech-services/users) names and finds users of the
 * caller's tenant; shares are the seed API's
 * (GET/POST/DELETE /files/{id}/shares).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "remote_i.h"
#include "util_i.h"
#include "speechfs/json.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define API "/api/v1/speech-services"
#define PAGE 100
#define ANSWER_MAX (64 << 20)

/*
 * Find a user of the caller's tenant in the users directory
 * (GET /users?name=): by id (every page), else by name (case-insensitive,
 * as the store's own lookup). On success id_out and/or name are set.
 */
static enum sfs_status find_user(struct sfs_store *s, const char *id,
				 const char *name, char id_out[SFS_ID_SIZE],
				 char *name_out, size_t size, struct sfs_err *e)
{
	char esc[3 * 256 + 1], url[sizeof(esc) + 128];
	const char *uid, *un;
	enum sfs_status st = SFS_OK;
	int64_t p, total;
	json_t *j, *a, *o;
	size_t i, na;

	esc[0] = '\0';
	if (name && strlen(name) < 256)
		sfsi_remote_escape(name, esc, sizeof(esc));
	else if (name)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
				"no such user in your tenant");
	for (p = 0; !st; p++) {
		snprintf(url, sizeof(url),
			 API "/users?name=%s&size=%d&page=%lld", esc, PAGE,
			 (long long)p);
		st = sfsi_remote_get_json(s, url, &j, e);
		a = json_object_get(j, "users");
		total = json_integer_value(json_object_get(j, "total"));
		for (i = 0; !st && i < json_array_size(a); i++) {
			o = json_array_get(a, i);
			uid = json_string_value(json_object_get(o, "id"));
			un = json_string_value(json_object_get(o, "name"));
			if (!uid || !un || strlen(uid) >= SFS_ID_SIZE ||
			    (id && strcasecmp(uid, id)) ||
			    (name && strcasecmp(un, name)))
				continue;
			if (id_out)
				sfs_strlcpy(id_out, uid, SFS_ID_SIZE);
			if (name_out)
				sfs_strlcpy(name_out, un, size);
			json_decref(j);
			return SFS_OK;
		}
		na = json_array_size(a);
		json_decref(j);
		if (!na || (p + 1) * PAGE >= total)
			break;
	}
	if (st)
		return st;
	return sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
			"no such user in your tenant");
}

enum sfs_status sfsi_remote_user_resolve(struct sfs_store *s, const char *who,
					 char id_out[SFS_ID_SIZE],
					 struct sfs_err *e)
{
	enum sfs_status st;

	/* an id first: names cannot take one's place */
	if (who && sfs_uuid_valid(who)) {
		st = find_user(s, who, NULL, id_out, NULL, 0, e);
		if (st != SFS_NOT_FOUND)
			return st;
		if (e)
			sfs_err_init(e);
	}
	if (!who || !*who)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
				"no such user in your tenant");
	return find_user(s, NULL, who, id_out, NULL, 0, e);
}

enum sfs_status sfsi_remote_user_name(struct sfs_store *s, const char *user_id,
				      char *name, size_t size,
				      struct sfs_err *e)
{
	if (!user_id || !sfs_uuid_valid(user_id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
				"no such user in your tenant");
	return find_user(s, user_id, NULL, NULL, name, size, e);
}

/* POST /files/{id}/shares: a share made, or its permission changed. */
enum sfs_status sfsi_remote_share_put(struct sfs_store *s, const char *file_id,
				      const char *user_id, enum sfs_perm perm,
				      struct sfs_share *out, int *created,
				      struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	struct sfsi_remote_req q = { .method = "POST", .fd = -1 };
	char url[128], *text;
	enum sfs_status st;
	json_t *j;

	*created = 0;
	if (out)
		memset(out, 0, sizeof(*out));
	if (!sfs_uuid_valid(file_id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this id exists");
	snprintf(url, sizeof(url), API "/files/%s/shares", file_id);
	j = json_pack("{s:s, s:s}", "userId", user_id ? user_id : "",
		      "permission", sfs_perm_name(perm));
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	q.path = url;
	q.body = text;
	st = sfsi_remote_request(sfsi_remote_of(s), &q, &b, e);
	free(text);
	sfs_buf_release(&b);
	return st;
}

enum sfs_status sfsi_remote_share_list(struct sfs_store *s, const char *id,
				       struct sfs_share **out, size_t *n,
				       struct sfs_err *e)
{
	char url[128];
	enum sfs_status st;
	json_t *j, *a, *o;
	const char *v;
	size_t i;
	int p;

	*out = NULL;
	*n = 0;
	if (!sfs_uuid_valid(id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this id exists");
	snprintf(url, sizeof(url), API "/files/%s/shares", id);
	st = sfsi_remote_get_json(s, url, &j, e);
	a = json_object_get(j, "shares");
	if (!st && json_array_size(a)) {
		*out = calloc(json_array_size(a), sizeof(**out));
		if (!*out)
			st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				      "out of memory");
	}
	for (i = 0; !st && i < json_array_size(a); i++) {
		struct sfs_share *sh = &(*out)[*n];

		o = json_array_get(a, i);
		if ((v = json_string_value(json_object_get(o, "id"))))
			sfs_strlcpy(sh->id, v, sizeof(sh->id));
		sfs_strlcpy(sh->file_id, id, sizeof(sh->file_id));
		if ((v = json_string_value(json_object_get(o, "userId"))))
			sfs_strlcpy(sh->user_id, v, sizeof(sh->user_id));
		if ((v = json_string_value(json_object_get(o, "createdBy"))))
			sfs_strlcpy(sh->created_by, v, sizeof(sh->created_by));
		v = json_string_value(json_object_get(o, "permission"));
		p = v ? sfs_perm_parse(v) : -1;
		sh->perm = p > 0 ? (enum sfs_perm)p : SFS_PERM_VIEW;
		v = json_string_value(json_object_get(o, "createdAt"));
		if (v && sfs_iso8601_parse(v, &sh->created_at))
			sh->created_at = 0;
		(*n)++;
	}
	json_decref(j);
	if (st) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return st;
}

/* The user's share on the file, found in its list and deleted. */
enum sfs_status sfsi_remote_share_revoke_user(struct sfs_store *s,
					      const char *file_id,
					      const char *user_id,
					      struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	struct sfsi_remote_req q = { .method = "DELETE", .fd = -1 };
	struct sfs_share *v = NULL;
	enum sfs_status st;
	char url[192];
	size_t n = 0, i;

	st = sfsi_remote_share_list(s, file_id, &v, &n, e);
	for (i = 0; !st && i < n; i++)
		if (user_id && !strcasecmp(v[i].user_id, user_id))
			break;
	if (!st && i == n)
		st = sfs_errf(e, SFS_NOT_FOUND, SFS_R_SHARE_NOT_FOUND,
			      "no share for this user exists on the file");
	if (!st) {
		snprintf(url, sizeof(url), API "/files/%s/shares/%s", file_id,
			 v[i].id);
		q.path = url;
		st = sfsi_remote_request(sfsi_remote_of(s), &q, &b, e);
	}
	free(v);
	sfs_buf_release(&b);
	return st;
}
