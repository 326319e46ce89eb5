/*
 * The users directory (an extension of the seed's API): the id and name
 * of the users of the caller's own tenant, by name prefix, so that a
 * client can find the id a share takes. Core scopes it to the tenant.
 */
#include "httpd.h"
#include "speechfs/people.h"
#include "speechfs/banned.h"

#define PAGE_MAX 100

/* A non-negative whole number query argument, or dflt when absent. */
static int64_t num_arg(struct req *r, const char *name, int64_t dflt,
		       int64_t max, struct sfs_err *e)
{
	const char *v = req_arg(r, name);
	int64_t n;

	if (!v)
		return dflt;
	if (sfs_parse_i64(v, &n) || n < 0 || n > max) {
		sfs_err_field(e, name, "invalid",
			      "'%s' must be a whole number from 0 to %lld",
			      name, (long long)max);
		return dflt;
	}
	return n;
}

static int add_user(void *arg, const struct sfs_user_info *u)
{
	json_t *arr = arg;

	return json_array_append_new(
		arr, json_pack("{s:s, s:s}", "id", u->id, "name", u->name));
}

enum MHD_Result api_users_list(struct req *r)
{
	const char *prefix = req_arg(r, "name");
	json_t *arr = json_array();
	int64_t page, size, total = 0;
	enum sfs_status st = SFS_OK;
	struct sfs_err e;

	sfs_err_init(&e);
	page = num_arg(r, "page", 0, INT32_MAX, &e);
	size = num_arg(r, "size", 20, PAGE_MAX, &e);
	if (!e.nfields && size == 0)
		sfs_err_field(&e, "size", "invalid",
			      "'size' must be a whole number from 1 to %d",
			      PAGE_MAX);
	if (e.nfields)
		sfs_errf(&e, SFS_INVALID, SFS_R_VALIDATION_ERROR,
			 "the query parameters are invalid");
	else if (!arr)
		sfs_errf(&e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	else
		st = sfs_user_directory(g_httpd.store, &r->actor, prefix,
					page * size, size, add_user, arr,
					&total, &e);
	if (st || e.status) {
		json_decref(arr);
		return respond_err(r, &e);
	}
	return respond_json(r, 200,
			    json_pack("{s:o, s:I, s:I, s:I}", "users", arr,
				      "page", (json_int_t)page, "size",
				      (json_int_t)json_array_size(arr), "total",
				      (json_int_t)total));
}

/*
 * The caller (extension): its user id and tenant id, and the scopes its
 * credentials carry. A remote mount derives its new files' ids from its
 * user id (POST /files?idKey=).
 */
enum MHD_Result api_users_me(struct req *r)
{
	json_t *scopes = json_array();
	unsigned bit;

	for (bit = 1; scopes && bit <= SFS_SCOPE_ALL; bit <<= 1)
		if (r->actor.scopes & bit)
			json_array_append_new(scopes,
					      json_string(sfs_scope_name(bit)));
	if (!scopes)
		return respond_status(r, 500, "internal_error",
				      "out of memory");
	return respond_json(r, 200,
			    json_pack("{s:s, s:s, s:o}", "id", r->actor.user_id,
				      "tenantId", r->actor.tenant_id, "scopes",
				      scopes));
}
