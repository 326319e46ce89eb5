/*
 * A file's extra attributes (an extension for remote mounts): the user.*
 * attributes a mount keeps beside the file model's own (core's xattr.h),
 * so cp -a, rsync -X and tar --xattrs round-trip through a remote mount
 * too. Values are bytes: base64 in JSON. The rules are core's.
 */
#include <stdio.h>
#include <string.h>
#include "httpd.h"
#include "speechfs/xattr.h"
#include "speechfs/banned.h"

/* {"xattrs":[{"name":..,"value":"<base64>"}, ...]}, in name order. */
enum MHD_Result api_xattrs_list(struct req *r)
{
	struct sfs_buf names = SFS_BUF_INIT(0), val = SFS_BUF_INIT(0);
	struct sfs_buf enc = SFS_BUF_INIT(0);
	struct sfs_err e;
	enum MHD_Result ret;
	json_t *arr, *one;
	size_t off;

	sfs_err_init(&e);
	arr = json_array();
	if (!arr)
		return respond_errf(r, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (sfs_xattr_list(g_httpd.store, &r->actor, r->params[0], &names,
			   &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	for (off = 0; off < names.len; off += strlen(names.buf + off) + 1) {
		const char *name = names.buf + off;

		sfs_buf_reset(&val);
		sfs_buf_reset(&enc);
		if (sfs_xattr_get(g_httpd.store, &r->actor, r->params[0], name,
				  &val, &e)) {
			if (e.status == SFS_NOT_FOUND) { /* removed meanwhile */
				sfs_err_init(&e);
				continue;
			}
			ret = respond_err(r, &e);
			goto out;
		}
		one = sfs_base64_encode(val.buf, val.len, &enc)
			      ? NULL
			      : json_pack("{s:s, s:s}", "name", name, "value",
					  enc.buf);
		if (!one || json_array_append_new(arr, one)) {
			ret = respond_errf(r, SFS_NOMEM, SFS_R_NONE,
					   "out of memory");
			goto out;
		}
	}
	ret = respond_json(r, 200, json_pack("{s:O}", "xattrs", arr));
out:
	json_decref(arr);
	sfs_buf_release(&names);
	sfs_buf_release(&val);
	sfs_buf_release(&enc);
	return ret;
}

/* {"name", "value" (base64), "create"?, "replace"?}: set one attribute. */
enum MHD_Result api_xattrs_put(struct req *r)
{
	struct sfs_buf val = SFS_BUF_INIT(0);
	struct sfs_err e;
	const char *name, *v;
	enum MHD_Result ret;
	unsigned flags = 0;
	json_t *j = NULL;

	sfs_err_init(&e);
	if (req_json(r, &j, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	name = json_string_value(json_object_get(j, "name"));
	v = json_string_value(json_object_get(j, "value"));
	if (!name)
		sfs_err_field(&e, "name", "missing",
			      "'name' (a string) is required");
	if (!v)
		sfs_err_field(&e, "value", "missing",
			      "'value' (base64) is required");
	else if (sfs_base64_decode(v, strlen(v), &val))
		sfs_err_field(&e, "value", "invalid",
			      "'value' is not canonical base64");
	if (json_is_true(json_object_get(j, "create")))
		flags |= SFS_XATTR_CREATE;
	if (json_is_true(json_object_get(j, "replace")))
		flags |= SFS_XATTR_REPLACE;
	if (e.nfields || sfs_xattr_set(g_httpd.store, &r->actor, r->params[0],
				       name, val.buf, val.len, flags, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	ret = respond_empty(r, 204);
out:
	json_decref(j);
	sfs_buf_release(&val);
	return ret;
}

enum MHD_Result api_xattrs_delete(struct req *r)
{
	const char *name = req_arg(r, "name");
	struct sfs_err e;

	sfs_err_init(&e);
	if (!name) {
		sfs_err_field(&e, "name", "missing",
			      "the query parameter 'name' is required");
		return respond_err(r, &e);
	}
	if (sfs_xattr_remove(g_httpd.store, &r->actor, r->params[0], name, &e))
		return respond_err(r, &e);
	return respond_empty(r, 204);
}
