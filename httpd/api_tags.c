/*
 * The tags in use in the caller's tenant, by name prefix (an extension of
 * the seed's API): suggestions for a client that edits a file's tags.
 */
#include <stdlib.h>
#include "httpd.h"
#include "speechfs/tag.h"
#include "speechfs/banned.h"

#define TAGS_DEFAULT 20

enum MHD_Result api_tags_list(struct req *r)
{
	const char *size_arg = req_arg(r, "size");
	char **tags = NULL;
	struct sfs_err e;
	int64_t size = TAGS_DEFAULT;
	json_t *arr;
	size_t i, n = 0;

	sfs_err_init(&e);
	if (size_arg && (sfs_parse_i64(size_arg, &size) || size < 1 ||
			 size > SFS_TAG_LIST_MAX)) {
		sfs_err_field(&e, "size", "invalid",
			      "'size' must be a whole number from 1 to %d",
			      SFS_TAG_LIST_MAX);
		return respond_err(r, &e);
	}
	if (sfs_tag_list(g_httpd.store, &r->actor, req_arg(r, "prefix"),
			 (size_t)size, &tags, &n, &e))
		return respond_err(r, &e);
	arr = json_array();
	for (i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_string(tags[i]));
	sfs_strv_free(tags);
	return respond_json(
		r, 200,
		json_pack("{s:o, s:I}", "tags", arr, "size", (json_int_t)n));
}
