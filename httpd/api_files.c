/*
 * Handlers of the file resource: list, shared-with-me, upload / import,
 * get, download, update, delete, discard, restore and signed URLs. Each
 * parses the request, calls core, and encodes the answer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "body.h"
#include "httpd.h"
#include "openapi.h"
#include "speechfs/blob.h"
#include "speechfs/dir.h"
#include "speechfs/file.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/json.h"
#include "speechfs/query.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

struct qctx {
	struct sfs_query *q;
	struct sfs_err *e;
	int bad;
};

/* A core encoder failed: for want of memory, or (a bug) on bad text. */
static enum MHD_Result encode_failed(struct req *r, enum sfs_status st)
{
	return respond_errf(r, st == SFS_NOMEM ? SFS_NOMEM : SFS_IO, SFS_R_NONE,
			    "%s",
			    st == SFS_NOMEM ? "out of memory"
					    : "the response could not be "
					      "encoded");
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind,
				 const char *key, const char *value)
{
	struct qctx *c = cls;
	struct sfs_err e;
	enum sfs_status st;

	(void)kind;
	sfs_err_init(&e);
	st = sfs_query_param(c->q, key, value ? value : "", &e);
	if (st == SFS_OK || st == SFS_NOT_FOUND)
		return MHD_YES;
	if (!c->bad) {
		*c->e = e;
		c->bad = 1;
	} else if (c->e->nfields < SFS_ERR_MAX_FIELDS && e.nfields) {
		c->e->fields[c->e->nfields++] = e.fields[0];
	}
	return MHD_YES;
}

static enum MHD_Result list(struct req *r, int shared)
{
	struct sfs_query q;
	struct sfs_file_list l;
	struct sfs_err e;
	struct qctx c = { &q, &e, 0 };
	struct sfs_buf b;
	enum MHD_Result ret;
	enum sfs_status st;

	sfs_err_init(&e);
	sfs_query_init(&q);
	memset(&l, 0, sizeof(l));
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_arg,
				  &c);
	if (c.bad) {
		ret = respond_err(r, &e);
		goto out;
	}
	if ((shared ? sfs_query_shared
		    : sfs_query_files)(g_httpd.store, &r->actor, &q, &l, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	sfs_buf_init(&b, RESP_BUF_MAX);
	st = sfs_buf_grow(&b, RESP_BUF_INITIAL);
	if (!st)
		st = sfs_json_file_list_text(&l, &q, shared, &b);
	ret = st ? encode_failed(r, st) : respond_buf(r, 200, &b);
	sfs_buf_release(&b);
	sfs_file_list_release(&l);
out:
	sfs_query_release(&q);
	return ret;
}

enum MHD_Result api_files_list(struct req *r)
{
	return list(r, 0);
}

enum MHD_Result api_files_shared(struct req *r)
{
	return list(r, 1);
}

static enum MHD_Result respond_file(struct req *r, unsigned status,
				    struct sfs_file *f)
{
	struct sfs_buf b;
	enum MHD_Result ret;
	enum sfs_status st;

	sfs_buf_init(&b, RESP_BUF_MAX);
	st = sfs_buf_grow(&b, 2048);
	if (!st)
		st = sfs_json_file_text(f, &b);
	ret = st ? encode_failed(r, st) : respond_buf(r, status, &b);
	sfs_buf_release(&b);
	sfs_file_release(f);
	return ret;
}

static int parse_bool_text(const char *s, int *out)
{
	if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = 1;
	else if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/*
 * The upload's idKey (extension): a UUID; the new file's id is derived
 * from it and the caller's id. A parameter a server does not honour is
 * refused, never ignored (a client that took its file's id for known
 * would lose track of it): idKey with the extensions off, and id (an
 * earlier form of this extension, whose id was the file's own: one
 * namespace with every other user's files) always.
 */
static void id_key_arg(struct req *r, const char **out, struct sfs_err *e)
{
	const char *v = req_arg(r, "idKey");

	if (req_arg(r, "id"))
		sfs_err_field(e, "id", "unsupported",
			      "a new file's id is not chosen by the client; "
			      "see idKey");
	if (!v)
		return;
	if (!g_httpd.opts.extensions)
		sfs_err_field(e, "idKey", "unsupported",
			      "this server takes no idKey (its extensions "
			      "are off)");
	else if (!sfs_uuid_valid(v))
		sfs_err_field(e, "idKey", "invalid", "idKey must be a UUID");
	else if (out)
		*out = v;
}

static enum MHD_Result upload(struct req *r)
{
	struct sfs_dir_info dir;
	struct sfs_file_spec spec;
	struct sfs_file f;
	struct sfs_err e;
	json_t *tags = NULL, *meta = NULL;
	const char **tagv = NULL;
	enum MHD_Result ret;
	int gla = 1;

	sfs_err_init(&e);
	sfs_file_init(&f);
	memset(&spec, 0, sizeof(spec));
	if (!r->file_seen || !r->stage)
		sfs_err_field(&e, "file", "missing",
			      "the file part is required");
	if (!r->part_seen[PART_NAME])
		sfs_err_field(&e, "name", "missing",
			      "the name part is required");
	if (r->part_seen[PART_METADATA]) {
		meta = json_loads(r->parts[PART_METADATA].buf, 0, NULL);
		if (!json_is_object(meta))
			sfs_err_field(&e, "metadata", "invalid_json",
				      "metadata must be a JSON object");
	}
	if (r->part_seen[PART_TAGS]) {
		tags = json_loads(r->parts[PART_TAGS].buf, 0, NULL);
		if (body_string_array(tags, &tagv, &spec.ntags))
			sfs_err_field(&e, "tags", "invalid_json",
				      "tags must be a JSON array of strings");
	}
	if (r->part_seen[PART_GLA] &&
	    parse_bool_text(r->parts[PART_GLA].buf, &gla))
		sfs_err_field(&e, "generateListeningAudio", "invalid",
			      "generateListeningAudio must be true or false");
	/* extension: an empty file's commit need not wait for the disk */
	if (g_httpd.opts.extensions && req_arg(r, "lazy") &&
	    parse_bool_text(req_arg(r, "lazy"), &spec.lazy))
		sfs_err_field(&e, "lazy", "invalid",
			      "lazy must be true or false");
	/* extension: the new file's id derived from the client's key */
	id_key_arg(r, &spec.id_key, &e);
	if (e.nfields) {
		sfs_errf(&e, SFS_INVALID, SFS_R_VALIDATION_ERROR,
			 "the upload has invalid or missing parts");
		ret = respond_err(r, &e);
		goto out;
	}
	spec.name = r->parts[PART_NAME].buf;
	spec.filename = r->filename;
	if (r->part_seen[PART_DESCRIPTION])
		spec.description = r->parts[PART_DESCRIPTION].buf;
	if (r->part_seen[PART_PATH])
		spec.path = r->parts[PART_PATH].buf;
	if (meta)
		spec.metadata = r->parts[PART_METADATA].buf;
	spec.tags = tagv;
	spec.listening = gla;
	if (api_dirs_header_wanted(r))
		spec.dir_out = &dir;
	if (api_content_check_crc(r, &e) ||
	    sfs_file_create(g_httpd.store, &r->actor, &spec, r->stage, &f,
			    &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	if (gla)
		sfs_workers_kick(g_httpd.store);
	/* read in the create's transaction (a row: it holds the file) */
	if (spec.dir_out && dir.ino)
		api_dirs_header_set(r, &dir);
	api_content_crc_header(r, r->stage);
	ret = respond_file(r, 201, &f);
out:
	sfs_file_release(&f);
	free(tagv);
	json_decref(tags);
	json_decref(meta);
	return ret;
}

static enum MHD_Result import(struct req *r)
{
	struct sfs_file f;
	struct sfs_err e;
	struct body b;
	json_t *j = NULL;
	enum MHD_Result ret;

	sfs_err_init(&e);
	sfs_file_init(&f);
	body_init(&b);
	if (req_json(r, &j, &e) || body_import(j, &b, &e) ||
	    sfs_file_create(g_httpd.store, &r->actor, &b.spec, NULL, &f, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	sfs_workers_kick(g_httpd.store);
	ret = respond_file(r, 201, &f);
out:
	sfs_file_release(&f);
	body_release(&b);
	json_decref(j);
	return ret;
}

enum MHD_Result api_files_create(struct req *r)
{
	struct sfs_err e;
	int lazy = 0;

	if (r->body == BODY_MULTIPART)
		return upload(r);
	sfs_err_init(&e);
	if (g_httpd.opts.extensions && req_bool_arg(r, "lazy", &lazy, &e))
		return respond_err(r, &e);
	if (lazy) {
		sfs_err_field(&e, "lazy", "invalid",
			      "only an empty upload can be lazy, not an "
			      "import");
		return respond_err(r, &e);
	}
	if (req_arg(r, "idKey") || req_arg(r, "id")) {
		id_key_arg(r, NULL, &e);
		if (!e.nfields)
			sfs_err_field(&e, "idKey", "invalid",
				      "only an upload takes an idKey, not an "
				      "import");
		return respond_err(r, &e);
	}
	return import(r);
}

/* Extension: the file's commits so far made durable (a lazy create). */
enum MHD_Result api_files_sync(struct req *r)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_file_sync(g_httpd.store, &r->actor, r->params[0], &e))
		return respond_err(r, &e);
	return respond_empty(r, 204);
}

enum MHD_Result api_files_get(struct req *r)
{
	struct sfs_file f;
	struct sfs_err e;

	sfs_err_init(&e);
	sfs_file_init(&f);
	if (sfs_file_get(g_httpd.store, &r->actor, r->params[0], &f, &e)) {
		sfs_file_release(&f);
		return respond_err(r, &e);
	}
	return respond_file(r, 200, &f);
}

/*
 * With http.redirect_to_object_store, a blob kept in an object store is
 * answered with a 302 to a short-lived presigned URL of it (carrying the
 * type and the attachment name), so its bytes do not pass through us.
 * 1 if answered so.
 */
static int redirect(struct req *r, struct sfs_blob *b, const char *ctype,
		    const char *filename, enum MHD_Result *ret)
{
	struct MHD_Response *resp;
	char disp[1024], *url = NULL;

	if (!g_httpd.opts.redirect_to_object_store)
		return 0;
	if (filename)
		httpd_content_disposition(filename, disp, sizeof(disp));
	if (sfs_blob_url(b, g_httpd.opts.redirect_ttl_s, ctype,
			 filename ? disp : NULL, &url, NULL))
		return 0; /* the store serves these bytes itself */
	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (resp) {
		MHD_add_response_header(resp, "Location", url);
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	}
	*ret = resp ? respond_queue(r, 302, resp)
		    : respond_status(r, 500, "internal_error",
				     "cannot make a response");
	free(url);
	sfs_blob_close(b);
	return 1;
}

/*
 * A file's content or its listening MP3: the bytes with Range support, the
 * sha256 as ETag, and the time it was made as Last-Modified; the original
 * goes as an attachment named by its filename.
 */
enum MHD_Result api_serve_content(struct req *r, enum sfs_content which)
{
	int listening = which == SFS_CONTENT_LISTENING;
	const char *sha, *want, *ctype, *filename;
	struct sfs_blob *b = NULL;
	struct sfs_file f;
	struct sfs_err e;
	char etag[80];
	enum MHD_Result ret;
	int64_t mtime;

	sfs_err_init(&e);
	sfs_file_init(&f);
	want = req_arg(r, "sha256");
	/* bytes named by their sha256 (a mount's reads): those of a deleted
	 * file too, for a reader that had it open (extension) */
	if (sfs_file_open(g_httpd.store, &r->actor, r->params[0], which,
			  SFS_BLOB_SEQUENTIAL |
				  (want ? SFS_BLOB_IF_DELETED : 0),
			  &b, &f, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	sha = listening ? f.la.sha256 : f.sha256;
	if (want && (!sha[0] || strcasecmp(want, sha))) {
		/* named by its sha256: these bytes or none */
		sfs_blob_close(b);
		ret = respond_status(r, 409, "content_changed",
				     "the content is no longer the one with "
				     "this sha256");
		goto out;
	}
	r->immutable = want != NULL;
	snprintf(etag, sizeof(etag), "\"%s\"", sha);
	ctype = listening ? "audio/mpeg" : "application/octet-stream";
	filename = listening ? NULL : f.filename ? f.filename : f.name;
	mtime = listening	 ? f.la.created_at
		: f.mtime_ns > 0 ? f.mtime_ns / 1000000
				 : f.created_at;
	/* a client's fresh copy is a 304 here, not a trip to the store */
	if (!cache_fresh(r, sha[0] ? etag : NULL, mtime) &&
	    redirect(r, b, ctype, filename, &ret))
		goto out;
	ret = respond_blob(r, b, ctype, sha[0] ? etag : NULL, mtime, filename);
out:
	sfs_file_release(&f);
	return ret;
}

enum MHD_Result api_files_content(struct req *r)
{
	return api_serve_content(r, SFS_CONTENT_ORIGINAL);
}

enum MHD_Result api_files_patch(struct req *r)
{
	struct sfs_file f;
	struct sfs_err e;
	struct body b;
	json_t *j = NULL;
	enum MHD_Result ret;

	sfs_err_init(&e);
	sfs_file_init(&f);
	body_init(&b);
	if (req_json(r, &j, &e) || body_update(j, &b, &e) ||
	    api_dirs_keep_arg(r, &e) ||
	    (b.rename ? sfs_file_rename(g_httpd.store, &r->actor, r->params[0],
					&b.upd, b.replace_id, b.rename_flags,
					&f, &e)
		      : sfs_file_update(g_httpd.store, &r->actor, r->params[0],
					&b.upd, &f, &e))) {
		ret = respond_err(r, &e);
		goto out;
	}
	ret = respond_file(r, 200, &f);
out:
	sfs_file_release(&f);
	body_release(&b);
	json_decref(j);
	return ret;
}

enum MHD_Result api_files_delete(struct req *r)
{
	struct sfs_err e;
	int purge = 0;

	sfs_err_init(&e);
	if (req_bool_arg(r, "purge", &purge, &e) || api_dirs_keep_arg(r, &e) ||
	    sfs_file_delete(g_httpd.store, &r->actor, r->params[0], purge, &e))
		return respond_err(r, &e);
	return respond_empty(r, 204);
}

enum MHD_Result api_files_discard(struct req *r)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_file_discard(g_httpd.store, &r->actor, r->params[0], &e))
		return respond_err(r, &e);
	return respond_empty(r, 204);
}

enum MHD_Result api_files_restore(struct req *r)
{
	struct sfs_file f;
	struct sfs_err e;

	sfs_err_init(&e);
	sfs_file_init(&f);
	if (sfs_file_restore(g_httpd.store, &r->actor, r->params[0], &f, &e)) {
		sfs_file_release(&f);
		return respond_err(r, &e);
	}
	return respond_file(r, 200, &f);
}

enum MHD_Result api_files_signed_url(struct req *r)
{
	struct sfs_signed_url u;
	struct sfs_err e;
	json_t *j = NULL, *v;
	enum sfs_content which = SFS_CONTENT_ORIGINAL;
	int64_t ttl = SFS_SIGNED_TTL_DEFAULT;
	char url[512], iso[32];
	const char *target;
	enum MHD_Result ret;

	sfs_err_init(&e);
	if (r->json.len && req_json(r, &j, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	v = json_object_get(j, "target");
	if (v) {
		target = json_string_value(v);
		if (target && !strcmp(target, "listening-audio"))
			which = SFS_CONTENT_LISTENING;
		else if (!target || strcmp(target, "content"))
			sfs_err_field(&e, "target", "invalid",
				      "'target' must be \"content\" or "
				      "\"listening-audio\"");
	}
	v = json_object_get(j, "expiresInSeconds");
	if (v)
		ttl = json_is_integer(v) ? json_integer_value(v) : -1;
	if (e.nfields ||
	    sfs_signed_url_make(g_httpd.store, &r->actor, r->params[0], which,
				ttl, &u, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	snprintf(url, sizeof(url),
		 API_BASE "/%s/%s?exp=%" PRId64 "&uid=%s&sig=%s", u.file_id,
		 which == SFS_CONTENT_LISTENING ? "listening-audio/stream"
						: "content",
		 u.exp, u.user_id, u.sig);
	sfs_iso8601(u.exp * 1000, iso);
	ret = respond_json(
		r, 200, json_pack("{s:s, s:s}", "url", url, "expiresAt", iso));
out:
	json_decref(j);
	return ret;
}

enum MHD_Result api_healthz(struct req *r)
{
	return respond_json(r, 200,
			    json_pack("{s:s, s:s}", "status", "ok", "version",
				      SFS_VERSION));
}

/*
 * What /api/v1/openapi.json answers, made once at start: the embedded
 * document, or with http.extensions = false the one without the
 * operations that do not answer here. When that cannot be made, why.
 */
static char *openapi_made; /* malloc'd: the filtered one */
static const char *openapi_doc;
static size_t openapi_len;
static char openapi_why[320];

int httpd_openapi_init(void)
{
	struct sfs_err e;

	sfs_err_init(&e);
	httpd_openapi_free();
	if (g_httpd.opts.extensions) {
		openapi_doc = httpd_openapi_json;
	} else {
		openapi_made = httpd_openapi_filter(httpd_openapi_json,
						    httpd_route_enabled, &e);
		openapi_doc = openapi_made;
	}
	if (!openapi_doc) {
		snprintf(openapi_why, sizeof(openapi_why),
			 "the OpenAPI document could not be made: %s",
			 e.message);
		sfs_error("httpd", "%s", openapi_why);
		return -1;
	}
	openapi_len = strlen(openapi_doc);
	return 0;
}

void httpd_openapi_free(void)
{
	free(openapi_made);
	openapi_made = NULL;
	openapi_doc = NULL;
	openapi_len = 0;
}

enum MHD_Result api_openapi(struct req *r)
{
	struct MHD_Response *resp;

	if (!openapi_doc)
		return respond_status(r, 500, "internal_error", openapi_why);
	resp = MHD_create_response_from_buffer(openapi_len, (void *)openapi_doc,
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	req_set_header(r, "Cache-Control", "no-store");
	r->bytes_out = (int64_t)openapi_len;
	return respond_queue(r, 200, resp);
}
