/*
 * Handlers of a file's listening audio: stream the MP3 (Range, 206, 416),
 * generate (202), delete (?purge), purge, and its waveform peaks.
 */
#include <stdio.h>
#include <stdlib.h>
#include "httpd.h"
#include "speechfs/audio.h"
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

/*
 * The waveform overview of the listening audio as JSON (an extension):
 * 0..255 peaks of equal slices of time. Like every JSON answer it carries
 * an ETag of its bytes, so a browser revalidates it with a 304.
 */
enum MHD_Result api_listening_peaks(struct req *r)
{
	struct sfs_peaks *p = malloc(sizeof(*p));
	char sha[65];
	struct sfs_err e;
	enum MHD_Result ret;
	json_t *arr;
	size_t i;

	sfs_err_init(&e);
	if (!p)
		return respond_errf(r, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (sfs_listening_peaks(g_httpd.store, &r->actor, r->params[0], p, sha,
				&e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	arr = json_array();
	for (i = 0; arr && i < p->n; i++)
		json_array_append_new(arr, json_integer(p->v[i]));
	ret = respond_json(
		r, 200,
		json_pack("{s:i, s:i, s:f, s:f, s:I, s:o}", "bits", 8,
			  "sampleRate", p->sample_rate, "durationSeconds",
			  p->sample_rate ? (double)p->frames / p->sample_rate
					 : 0.0,
			  "secondsPerPeak",
			  p->sample_rate
				  ? (double)p->frames_per_peak / p->sample_rate
				  : 0.0,
			  "count", (json_int_t)p->n, "peaks", arr));
out:
	free(p);
	return ret;
}
