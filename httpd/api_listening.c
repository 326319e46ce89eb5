/*
 * Handlers of a file's listening audio: stream the MP3 (Range, 206, 416),
 * generate (202), delete (?purge) and purge.
 */
#include "httpd.h"
#include "speechfs/file.h"
#include "speechfs/job.h"
#include "speechfs/json.h"
#include "speechfs/banned.h"

enum MHD_Result api_listening_stream(struct req *r)
{
	return api_serve_content(r, SFS_CONTENT_LISTENING);
}

enum MHD_Result api_listening_generate(struct req *r)
{
	struct sfs_file f;
	struct sfs_err e;
	json_t *j;

	sfs_err_init(&e);
	sfs_file_init(&f);
	if (sfs_listening_generate(g_httpd.store, &r->actor, r->params[0], &f,
				   &e)) {
		sfs_file_release(&f);
		return respond_err(r, &e);
	}
	sfs_workers_kick(g_httpd.store);
	j = sfs_json_file(&f);
	sfs_file_release(&f);
	return respond_json(r, 202, j);
}

enum MHD_Result api_listening_delete(struct req *r)
{
	struct sfs_err e;
	int purge = 0;

	sfs_err_init(&e);
	if (req_bool_arg(r, "purge", &purge, &e) ||
	    sfs_listening_delete(g_httpd.store, &r->actor, r->params[0], purge,
				 &e))
		return respond_err(r, &e);
	return respond_empty(r, 204);
}

enum MHD_Result api_listening_purge(struct req *r)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_listening_purge(g_httpd.store, &r->actor, r->params[0], &e))
		return respond_err(r, &e);
	return respond_empty(r, 204);
}
