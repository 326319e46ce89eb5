/*
 * Handlers of a file's direct shares: list, create or update (201 / 200)
 * and revoke. Core enforces that only the owner may do any of them.
 */
#include <stdlib.h>
#include "httpd.h"
#include "speechfs/json.h"
#include "speechfs/share.h"
#include "speechfs/banned.h"

enum MHD_Result api_shares_list(struct req *r)
{
	struct sfs_share *sh = NULL;
	struct sfs_err e;
	json_t *arr;
	size_t i, n = 0;

	sfs_err_init(&e);
	if (sfs_share_list(g_httpd.store, &r->actor, r->params[0], &sh, &n, &e))
		return respond_err(r, &e);
	arr = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(arr, sfs_json_share(&sh[i]));
	free(sh);
	return respond_json(r, 200, json_pack("{s:o}", "shares", arr));
}

enum MHD_Result api_shares_create(struct req *r)
{
	struct sfs_share sh;
	struct sfs_err e;
	json_t *j = NULL, *uid, *perm;
	enum MHD_Result ret;
	int p = SFS_PERM_VIEW, created = 0;

	sfs_err_init(&e);
	if (req_json(r, &j, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	uid = json_object_get(j, "userId");
	if (!json_is_string(uid))
		sfs_err_field(&e, "userId", uid ? "invalid_type" : "missing",
			      "'userId' is required and must be a string");
	else if (!sfs_uuid_valid(json_string_value(uid)))
		sfs_err_field(&e, "userId", "invalid_uuid",
			      "'userId' must be a UUID");
	perm = json_object_get(j, "permission");
	if (perm) {
		p = json_is_string(perm)
			    ? sfs_perm_parse(json_string_value(perm))
			    : -1;
		if (sfs_share_perm_check(p, &e))
			p = SFS_PERM_VIEW; /* reported with the fields */
	}
	if (e.nfields) {
		sfs_errf(&e, SFS_INVALID, SFS_R_VALIDATION_ERROR,
			 "the share request is invalid");
		ret = respond_err(r, &e);
		goto out;
	}
	if (sfs_share_put(g_httpd.store, &r->actor, r->params[0],
			  json_string_value(uid), (enum sfs_perm)p, &sh,
			  &created, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	ret = respond_json(r, created ? 201 : 200, sfs_json_share(&sh));
out:
	json_decref(j);
	return ret;
}

enum MHD_Result api_shares_delete(struct req *r)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_share_revoke(g_httpd.store, &r->actor, r->params[0],
			     r->params[1], &e))
		return respond_err(r, &e);
	return respond_empty(r, 204);
}
