/*
 * The caller's space (an extension for remote mounts: their statfs, df):
 * the store's disk as the tenant's quotas cap it (core's
 * sfs_store_space_of).
 */
#include "httpd.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

enum MHD_Result api_space_get(struct req *r)
{
	struct sfs_space sp;
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_store_space_of(g_httpd.store, &r->actor, &sp, &e))
		return respond_err(r, &e);
	return respond_json(r, 200,
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
				      "totalBytes", (json_int_t)sp.total_bytes,
				      "usedBytes", (json_int_t)sp.used_bytes,
				      "freeBytes", (json_int_t)sp.free_bytes,
				      "availableBytes",
				      (json_int_t)sp.avail_bytes, "totalFiles",
				      (json_int_t)sp.total_files, "freeFiles",
				      (json_int_t)sp.free_files));
}
