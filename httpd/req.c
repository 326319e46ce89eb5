/*
 * Per-request state and request bodies: allocated on libmicrohttpd's first
 * call, freed only in the request-completed callback, so stages and parsers
 * registered here are released however the request ends. Multipart uploads
 * stream the `file` part straight into a stage (constant memory) through
 * the parser below.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include "conn.h"
#include "httpd.h"
#include "multipart.h"
#include "speechfs/blob.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/upload.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define TEXT_PART_MAX (64 * 1024 + 1024)
#define MULTIPART_OVERHEAD (1024 * 1024)

const char *const httpd_part_names[PART_MAX] = {
	[PART_NAME] = "name", [PART_DESCRIPTION] = "description",
	[PART_PATH] = "path", [PART_METADATA] = "metadata",
	[PART_TAGS] = "tags", [PART_GLA] = "generateListeningAudio",
};

/*
 * X-Request-Id: a random (version 4) UUID from a per-thread xorshift128+
 * seeded once from the kernel. The ids only correlate log lines with
 * answers, so they need to be unique, not unpredictable; a getrandom()
 * per request was 3% of a listing.
 */
static __thread uint64_t rid_s[2];

static uint64_t rid_next(void)
{
	uint64_t x = rid_s[0], y = rid_s[1];

	if (!x && !y) {
		if (getrandom(rid_s, sizeof(rid_s), 0) != sizeof(rid_s) ||
		    (!rid_s[0] && !rid_s[1])) {
			rid_s[0] = (uint64_t)sfs_mono_ns() | 1;
			rid_s[1] = (uint64_t)(uintptr_t)&rid_s;
		}
		x = rid_s[0];
		y = rid_s[1];
	}
	rid_s[0] = y;
	x ^= x << 23;
	rid_s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
	return rid_s[1] + y;
}

void httpd_request_id(char out[SFS_ID_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	uint64_t a = rid_next(), c = rid_next();
	int i, o = 0;

	for (i = 0; i < 8; i++) {
		b[i] = (unsigned char)(a >> (8 * i));
		b[8 + i] = (unsigned char)(c >> (8 * i));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

struct req *req_new(struct MHD_Connection *conn, const char *uri)
{
	struct req *r = calloc(1, sizeof(*r));
	size_t n;
	int i;

	if (!r)
		return NULL;
	if (!uri || !*uri)
		uri = "/";
	r->uri_len = strlen(uri);
	for (n = 0; n < r->uri_len; n++)
		if ((unsigned char)uri[n] <= ' ' || uri[n] == 0x7f)
			r->bad_uri = 1;
	n = strcspn(uri, "?");
	r->conn = conn;
	r->method = "";
	r->path = strdup(uri);
	if (!r->path) {
		free(r);
		return NULL;
	}
	if (r->path[n] == '?') {
		r->path[n] = '\0';
		r->query = r->path + n + 1;
	}
	r->start_ns = sfs_mono_ns();
	r->route_idx = -1;
	httpd_request_id(r->id);
	r->cn = conn_of(conn);
	if (r->cn)
		memcpy(r->cn->rid, r->id, sizeof(r->id));
	sfs_buf_init(&r->json, (size_t)g_httpd.opts.max_json_bytes);
	for (i = 0; i < PART_MAX; i++)
		sfs_buf_init(&r->parts[i], TEXT_PART_MAX);
	return r;
}

void req_free(struct req *r)
{
	int i;

	if (!r)
		return;
	if (r->wait)
		changes_req_free(r);
	if (r->uwait)
		uploads_req_free(r);
	if (r->pending)
		MHD_destroy_response(r->pending);
	mp_free(r->mp);
	if (r->stage && r->upload)
		sfs_upload_stage_end(r->stage, r->body_ended);
	else if (r->stage)
		sfs_stage_free(r->stage);
	sfs_buf_release(&r->json);
	for (i = 0; i < PART_MAX; i++)
		sfs_buf_release(&r->parts[i]);
	free(r->filename);
	free(r->path);
	free(r->err);
	free(r);
}

const char *req_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *req_arg(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND,
					   name);
}

void req_set_header(struct req *r, const char *name, const char *val)
{
	size_t n;
	int i;

	for (i = 0; i < r->nxh; i++)
		if (strcasecmp(r->xh[i].name, name) == 0)
			break;
	n = strlen(val) + 1;
	if (i == REQ_MAX_HEADERS || n > sizeof(r->xh_buf) - r->xh_used) {
		/* a bug: a request sets a few short ones */
		sfs_warn("httpd", "request %s: no room for header '%s'", r->id,
			 name);
		return;
	}
	if (i == r->nxh)
		r->nxh++;
	r->xh[i].name = name;
	r->xh[i].val = memcpy(r->xh_buf + r->xh_used, val, n);
	r->xh_used += n;
}

const char *req_get_header_set(struct req *r, const char *name)
{
	int i;

	for (i = 0; i < r->nxh; i++)
		if (strcasecmp(r->xh[i].name, name) == 0)
			return r->xh[i].val;
	return NULL;
}

/* Keep the first error found in the body (a copy of e). */
static void keep_err(struct req *r, const struct sfs_err *e)
{
	if (r->has_err)
		return;
	r->has_err = 1;
	r->err = malloc(sizeof(*r->err));
	if (r->err)
		*r->err = *e;
}

/* First error wins; the rest of the body is read and dropped. */
static void body_fail(struct req *r, enum sfs_status st, enum sfs_reason type,
		      const char *field, const char *msg)
{
	struct sfs_err e;

	if (r->has_err)
		return;
	sfs_err_init(&e);
	if (field)
		sfs_err_field(&e, field, "invalid", "%s", msg);
	sfs_errf(&e, st, type, "%s", msg);
	keep_err(r, &e);
}

static enum MHD_Result part_iter(void *cls, enum MHD_ValueKind kind,
				 const char *key, const char *filename,
				 const char *content_type,
				 const char *transfer_encoding,
				 const char *data, uint64_t off, size_t size)
{
	struct req *r = cls;
	struct sfs_err e;
	int i;

	(void)kind;
	(void)content_type;
	(void)transfer_encoding;
	if (r->has_err)
		return MHD_NO;
	sfs_err_init(&e);
	if (key && strcmp(key, "file") == 0) {
		if (off == 0 && r->file_seen) {
			body_fail(r, SFS_INVALID, SFS_R_INVALID_MULTIPART,
				  "file", "more than one file part");
			return MHD_NO;
		}
		r->file_seen = 1;
		if (!r->stage) {
			if (sfs_stage_new(g_httpd.store, &r->stage, &e)) {
				keep_err(r, &e);
				return MHD_NO;
			}
			sfs_stage_set_limit(r->stage,
					    g_httpd.opts.max_upload_bytes);
		}
		if (filename && !r->filename)
			r->filename = strdup(filename);
		if (size && sfs_stage_write(r->stage, data, size, &e)) {
			if (e.status == SFS_TOO_LARGE) {
				sfs_err_init(&e);
				sfs_errf(&e, SFS_TOO_LARGE,
					 SFS_R_PAYLOAD_TOO_LARGE,
					 "the file is larger than %lld bytes",
					 (long long)
						 g_httpd.opts.max_upload_bytes);
			}
			keep_err(r, &e);
			return MHD_NO;
		}
		return MHD_YES;
	}
	for (i = 0; i < PART_MAX; i++)
		if (key && strcmp(key, httpd_part_names[i]) == 0)
			break;
	if (i == PART_MAX)
		return MHD_YES; /* unknown parts are ignored */
	if (off == 0 && r->part_seen[i]) {
		body_fail(r, SFS_INVALID, SFS_R_INVALID_MULTIPART, key,
			  "the part is given more than once");
		return MHD_NO;
	}
	r->part_seen[i] = 1;
	if (size && sfs_buf_add(&r->parts[i], data, size)) {
		body_fail(r, SFS_INVALID, SFS_R_INVALID_MULTIPART, key,
			  "the part is too long");
		return MHD_NO;
	}
	return MHD_YES;
}

/* A part's bytes from the parser (multipart.h) into the request. */
static int req_part(void *arg, const char *name, const char *filename,
		    const char *data, size_t n, uint64_t off)
{
	return part_iter(arg, MHD_POSTDATA_KIND, name, filename, NULL, NULL,
			 data, off, n) == MHD_YES
		       ? 0
		       : -1;
}

static int ctype_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	return ct && strncasecmp(ct, want, n) == 0 &&
	       (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

enum MHD_Result req_body_start(struct req *r)
{
	const char *ct = req_header(r, "Content-Type");
	const char *cl = req_header(r, "Content-Length");
	int64_t len = -1, limit;

	if (cl && sfs_parse_i64(cl, &len))
		len = -1;
	if (r->route->accepts == BODY_CONTENT)
		return api_content_start(r, cl ? len : -1);
	if (r->route->accepts == BODY_UPLOAD) {
		if (ctype_is(ct, "multipart/form-data")) {
			limit = g_httpd.opts.max_upload_bytes +
				MULTIPART_OVERHEAD;
			if (len > limit)
				return respond_errf(
					r, SFS_TOO_LARGE,
					SFS_R_PAYLOAD_TOO_LARGE,
					"the upload is larger than %lld bytes",
					(long long)
						g_httpd.opts.max_upload_bytes);
			r->mp = mp_new(ct, req_part, r);
			if (!r->mp)
				return respond_errf(
					r, SFS_INVALID, SFS_R_INVALID_MULTIPART,
					"the multipart body has no boundary");
			r->body = BODY_MULTIPART;
			return MHD_YES;
		}
		if (!ctype_is(ct, "application/json"))
			return respond_status(
				r, 415, "unsupported_media_type",
				"POST /files takes multipart/form-data "
				"(upload) or application/json (import)");
	}
	if (r->route->accepts == BODY_NO) {
		r->body = BODY_DISCARD;
		return MHD_YES;
	}
	if (ct && *ct && !ctype_is(ct, "application/json") && (len > 0 || !cl))
		return respond_status(r, 415, "unsupported_media_type",
				      "the body must be application/json");
	if (len > g_httpd.opts.max_json_bytes)
		return respond_errf(r, SFS_TOO_LARGE, SFS_R_PAYLOAD_TOO_LARGE,
				    "the JSON body is larger than %lld bytes",
				    (long long)g_httpd.opts.max_json_bytes);
	r->body = BODY_JSON;
	return MHD_YES;
}

/* Raw bytes into the stage (PUT content); an error drops the rest. */
static void stage_feed(struct req *r, const char *data, size_t size)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (!sfs_stage_write(r->stage, data, size, &e))
		return;
	if (e.status == SFS_TOO_LARGE) {
		sfs_err_init(&e);
		sfs_errf(&e, SFS_TOO_LARGE, SFS_R_PAYLOAD_TOO_LARGE,
			 "the content is larger than %lld bytes",
			 (long long)g_httpd.opts.max_upload_bytes);
	}
	keep_err(r, &e);
	r->body = BODY_DISCARD;
}

void req_body_feed(struct req *r, const char *data, size_t size)
{
	r->bytes_in += (int64_t)size;
	switch (r->body) {
	case BODY_JSON:
		if (sfs_buf_add(&r->json, data, size)) {
			body_fail(r, SFS_TOO_LARGE, SFS_R_PAYLOAD_TOO_LARGE,
				  NULL, "the JSON body is too large");
			r->body = BODY_DISCARD;
		}
		break;
	case BODY_STAGE:
		stage_feed(r, data, size);
		break;
	case BODY_MULTIPART:
		if (mp_feed(r->mp, data, size)) {
			body_fail(r, SFS_INVALID, SFS_R_INVALID_MULTIPART, NULL,
				  "the multipart body is malformed");
			r->body = BODY_DISCARD;
		}
		break;
	default:
		break;
	}
}

enum sfs_status req_body_finish(struct req *r, struct sfs_err *e)
{
	if (r->mp) {
		if (!mp_complete(r->mp))
			body_fail(r, SFS_INVALID, SFS_R_INVALID_MULTIPART, NULL,
				  "the multipart body is truncated or "
				  "malformed");
		mp_free(r->mp);
		r->mp = NULL;
	}
	if (r->has_err) {
		if (!r->err)
			return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					"out of memory");
		*e = *r->err;
		return e->status ? e->status : SFS_INVALID;
	}
	return SFS_OK;
}

enum sfs_status req_json(struct req *r, json_t **out, struct sfs_err *e)
{
	json_error_t je;
	json_t *j;

	*out = NULL;
	if (r->json.len == 0)
		return sfs_errf(e, SFS_INVALID, SFS_R_INVALID_JSON,
				"a JSON object body is required");
	j = json_loadb(r->json.buf, r->json.len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return sfs_errf(e, SFS_INVALID, SFS_R_INVALID_JSON,
				"malformed JSON at line %d column %d: %s",
				je.line, je.column, je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return sfs_errf(e, SFS_INVALID, SFS_R_INVALID_JSON,
				"the body must be a JSON object");
	}
	*out = j;
	return SFS_OK;
}

int req_int_arg(struct req *r, const char *name, int64_t lo, int64_t hi,
		int64_t *out, struct sfs_err *e)
{
	const char *v = req_arg(r, name);

	if (!v)
		return 0;
	if (sfs_parse_i64(v, out) || *out < lo || *out > hi) {
		sfs_err_field(e, name, "invalid",
			      "'%s' must be an integer from %" PRId64
			      " to %" PRId64,
			      name, lo, hi);
		return -1;
	}
	return 0;
}

int req_bool_arg(struct req *r, const char *name, int *out, struct sfs_err *e)
{
	const char *v = req_arg(r, name);

	if (!v)
		return 0;
	if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*out = 1;
		return 0;
	}
	if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0) {
		*out = 0;
		return 0;
	}
	sfs_err_field(e, name, "invalid", "'%s' is not a boolean", v);
	sfs_errf(e, SFS_INVALID, SFS_R_INVALID_PARAMETER,
		 "query parameter '%s' must be true or false", name);
	return -1;
}
