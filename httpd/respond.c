/*
 * Responses: JSON bodies, THE error body built from struct sfs_err, the one
 * table from enum sfs_status to an HTTP status, X-Request-Id on every
 * response, and file bodies with Range, If-Range and Content-Disposition.
 */
#include <errno.h>
#include <sys/socket.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "conn.h"
#include "httpd.h"
#include "respcache.h"
#include "speechfs/blob.h"
#include "speechfs/log.h"
#include "speechfs/banned.h"

static const unsigned status_http[SFS_STATUS_MAX] = {
	[SFS_OK] = 200,		  [SFS_NOT_FOUND] = 404,
	[SFS_FORBIDDEN] = 403,	  [SFS_UNAUTHENTICATED] = 401,
	[SFS_CONFLICT] = 409,	  [SFS_GONE] = 410,
	[SFS_NOT_READY] = 422,	  [SFS_INVALID] = 400,
	[SFS_RANGE] = 416,	  [SFS_RATE_LIMITED] = 429,
	[SFS_QUOTA] = 413,	  [SFS_TOO_LARGE] = 413,
	[SFS_NO_SPACE] = 507,	  [SFS_BUSY] = 503,
	[SFS_IO] = 500,		  [SFS_NOMEM] = 500,
	[SFS_UNSUPPORTED] = 400,  [SFS_UNAVAILABLE] = 503,
	[SFS_PRECONDITION] = 412, [SFS_WOULD_WAIT] = 503,
};

unsigned httpd_http_status(enum sfs_status st)
{
	if ((int)st < 0 || st >= SFS_STATUS_MAX || !status_http[st])
		return 500;
	return status_http[st];
}

const struct sockaddr *httpd_peer(struct req *r)
{
	static const struct sockaddr none = { .sa_family = AF_UNSPEC };
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(r->conn,
				     MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	return ci && ci->client_addr ? ci->client_addr : &none;
}

/* A JSON string of any client text: invalid UTF-8 is escaped, not fatal. */
static json_t *json_text(const char *s)
{
	char buf[1024];
	json_t *j = json_string(s ? s : "");

	if (j)
		return j;
	httpd_echo(s, strlen(s), sizeof(buf) - 1, buf, sizeof(buf));
	return json_string(buf);
}

enum MHD_Result respond_queue(struct req *r, unsigned status,
			      struct MHD_Response *resp)
{
	enum MHD_Result ret;
	int i;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "X-Request-Id", r->id);
	for (i = 0; i < r->nxh; i++)
		MHD_add_response_header(resp, r->xh[i].name, r->xh[i].val);
	r->responded = 1;
	r->status = status;
	if (r->cn) {
		/* from here the bytes on the wire are ours (wire.c) */
		r->cn->ours = 1;
		conn_set_phase(r->cn, CONN_BUSY);
	}
	if (r->defer) {
		/*
		 * An answer found on the first call to a request without a
		 * body waits for the final call: queued any earlier,
		 * libmicrohttpd closes the connection after it.
		 */
		r->pending = resp;
		return MHD_YES;
	}
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/*
 * A 200 to GET or HEAD of user data names its bytes with an ETag and may
 * be kept only by the client, revalidated (304 while it still has them);
 * errors, other methods and what needs no credentials (health, metrics,
 * the API document) are never stored.
 */
static int cache_policy(struct req *r, unsigned status, const char *body,
			size_t len, char etag[CACHE_ETAG_SIZE])
{
	if (!r->route || !r->route->scope || status != 200 ||
	    (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))) {
		req_set_header(r, "Cache-Control", "no-store");
		return 0;
	}
	cache_etag_of(body, len, etag);
	req_set_header(r, "ETag", etag);
	req_set_header(r, "Cache-Control", CACHE_PRIVATE);
	return cache_fresh(r, etag, 0);
}

enum MHD_Result respond_text(struct req *r, unsigned status, const char *ctype,
			     char *body, size_t len)
{
	struct MHD_Response *resp;
	char etag[CACHE_ETAG_SIZE];

	if (cache_policy(r, status, body, len, etag)) {
		free(body);
		r->bytes_out = 0;
		return respond_empty(r, 304);
	}
	if (status == 200 && r->rc_gen &&
	    respcache_keep(r, body, len, etag, &resp)) {
		if (!resp)
			return MHD_NO; /* the body is the cache's now */
	} else {
		resp = MHD_create_response_from_buffer(len, body,
						       MHD_RESPMEM_MUST_FREE);
		if (!resp) {
			free(body);
			return MHD_NO;
		}
	}
	if (ctype)
		MHD_add_response_header(resp, "Content-Type", ctype);
	r->bytes_out = (int64_t)len;
	return respond_queue(r, status, resp);
}

/*
 * Encoding fails only for a bug (a string that is not UTF-8 reached a
 * success body) or for want of memory: say which, never guess.
 */
static enum MHD_Result encode_failed(struct req *r, const char *what)
{
	sfs_warn("httpd", "request %s: cannot encode the %s", r->id, what);
	return respond_status(r, 500, "internal_error",
			      "the response could not be encoded");
}

enum MHD_Result respond_json(struct req *r, unsigned status, json_t *j)
{
	char *s;

	if (!j)
		return encode_failed(r, "response");
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return encode_failed(r, "response");
	return respond_text(r, status, "application/json", s, strlen(s));
}

enum MHD_Result respond_buf(struct req *r, unsigned status, struct sfs_buf *b)
{
	size_t len;
	char *s = sfs_buf_detach(b, &len);

	if (!s)
		return encode_failed(r, "response");
	return respond_text(r, status, "application/json", s, len);
}

enum MHD_Result respond_empty(struct req *r, unsigned status)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	return respond_queue(r, status, resp);
}

static enum MHD_Result error_body(struct req *r, unsigned status,
				  const char *type, const char *msg,
				  const struct sfs_err *e, json_t *extra)
{
	json_t *j, *ve, *v;
	char *s;
	int i;

	ve = json_array();
	for (i = 0; e && i < e->nfields && i < SFS_ERR_MAX_FIELDS; i++) {
		v = json_pack("{s:o, s:o, s:o}", "error_type",
			      json_text(e->fields[i].type[0] ? e->fields[i].type
							     : "invalid"),
			      "location", json_text(e->fields[i].field),
			      "message", json_text(e->fields[i].message));
		json_array_append_new(ve, v);
	}
	j = json_pack("{s:i, s:o, s:o, s:o, s:s}", "status_code", (int)status,
		      "error_type", json_text(type), "message", json_text(msg),
		      "validation_errors", ve, "request_id", r->id);
	if (j && extra)
		json_object_update_missing(j, extra);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s) {
		/* no memory even for this: a body that needs none */
		static const char oom[] = "{\"status_code\":500,"
					  "\"error_type\":\"internal_error\","
					  "\"message\":\"out of memory\","
					  "\"validation_errors\":[]}";
		struct MHD_Response *resp = MHD_create_response_from_buffer(
			sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);

		if (resp)
			MHD_add_response_header(resp, "Content-Type",
						"application/json");
		return respond_queue(r, 500, resp);
	}
	return respond_text(r, status, "application/json", s, strlen(s));
}

enum MHD_Result respond_status(struct req *r, unsigned status, const char *type,
			       const char *msg)
{
	return error_body(r, status, type, msg, NULL, NULL);
}

enum MHD_Result respond_err(struct req *r, const struct sfs_err *e)
{
	return respond_err_with(r, e, NULL);
}

enum MHD_Result respond_err_with(struct req *r, const struct sfs_err *e,
				 json_t *extra)
{
	unsigned status = httpd_http_status(e->status);
	const char *type = sfs_err_type(e);
	const char *msg =
		e->message[0] ? e->message : sfs_status_str(e->status);

	if (e->status == SFS_OK) {
		status = 500;
		type = "internal_error";
		msg = "internal error";
	}
	if (status >= 500)
		sfs_warn("httpd", "request %s: %s", r->id, msg);
	if (status == 503 && !req_get_header_set(r, "Retry-After"))
		req_set_header(r, "Retry-After", "1");
	return error_body(r, status, type ? type : "error", msg, e, extra);
}

enum MHD_Result respond_errf(struct req *r, enum sfs_status st,
			     enum sfs_reason why, const char *fmt, ...)
{
	struct sfs_err e;
	va_list ap;

	sfs_err_init(&e);
	e.status = st;
	e.reason = why;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	return respond_err(r, &e);
}

/* Is the Range header to be honoured, given If-Range? */
static int if_range_ok(struct req *r, const char *etag, int64_t mtime_ms)
{
	const char *ir = req_header(r, "If-Range");

	if (!ir)
		return 1;
	if (ir[0] == '"' || (ir[0] == 'W' && ir[1] == '/'))
		return etag && ir[0] == '"' && strcmp(ir, etag) == 0;
	/* a date: only the Last-Modified itself, and only a strong one */
	return httpd_date_current(ir, mtime_ms, sfs_now_ms(), 1);
}

struct blob_body {
	struct sfs_blob *b;
	int64_t off;
};

static ssize_t blob_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct blob_body *bb = cls;
	struct sfs_err e;
	size_t got = 0;

	sfs_err_init(&e);
	if (sfs_blob_pread(bb->b, buf, max, bb->off + (int64_t)pos, &got, &e) ||
	    !got) {
		sfs_warn("httpd", "a download stopped at byte %lld: %s",
			 (long long)(bb->off + (int64_t)pos),
			 got ? e.message : "the blob ended early");
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	return (ssize_t)got;
}

static void blob_body_free(void *cls)
{
	struct blob_body *bb = cls;

	sfs_blob_close(bb->b);
	free(bb);
}

/* The body of len bytes from off: sendfile from a local file, else read. */
static struct MHD_Response *blob_response(struct sfs_blob *b, int64_t off,
					  int64_t len)
{
	struct MHD_Response *resp = NULL;
	struct blob_body *bb;
	int fd;

	if (sfs_blob_fd(b) >= 0) {
		fd = dup(sfs_blob_fd(b));
		sfs_blob_close(b);
		if (fd >= 0)
			resp = MHD_create_response_from_fd_at_offset64(
				(uint64_t)len, fd, (uint64_t)off);
		if (fd >= 0 && !resp)
			close(fd);
		return resp;
	}
	bb = calloc(1, sizeof(*bb));
	if (bb) {
		bb->b = b;
		bb->off = off;
		resp = MHD_create_response_from_callback((uint64_t)len,
							 256 * 1024, blob_read,
							 bb, blob_body_free);
	}
	if (!resp) {
		free(bb);
		sfs_blob_close(b);
	}
	return resp;
}

enum MHD_Result respond_blob(struct req *r, struct sfs_blob *b,
			     const char *ctype, const char *etag,
			     int64_t mtime_ms, const char *filename)
{
	struct MHD_Response *resp = NULL;
	const char *range = req_header(r, "Range");
	int64_t size = sfs_blob_size(b), from = 0, to = size - 1, bps;
	unsigned status = 200;
	struct sfs_err e;
	char hdr[1024], lm[64] = "";
	size_t got;
	int rc;

	sfs_err_init(&e);
	req_set_header(r, "Cache-Control",
		       r->immutable ? CACHE_IMMUTABLE : CACHE_PRIVATE);
	if (mtime_ms > 0)
		httpd_last_modified(mtime_ms, sfs_now_ms(), lm, sizeof(lm));
	if (cache_fresh(r, etag, mtime_ms)) {
		sfs_blob_close(b);
		return cache_not_modified(r, etag, NULL, lm[0] ? lm : NULL);
	}
	if (range && if_range_ok(r, etag, mtime_ms)) {
		rc = httpd_parse_range(range, size, &from, &to);
		if (rc == 1) {
			char cr[64];

			sfs_blob_close(b);
			sfs_errf(&e, SFS_RANGE, SFS_R_RANGE_NOT_SATISFIABLE,
				 "range '%s' is not satisfiable for %" PRId64
				 " bytes",
				 range, size);
			snprintf(cr, sizeof(cr), "bytes */%" PRId64, size);
			req_set_header(r, "Content-Range", cr);
			return respond_err(r, &e);
		}
		if (rc == 0)
			status = 206;
		else {
			from = 0;
			to = size - 1;
		}
	}
	/*
	 * Bytes kept elsewhere: the first of them now, so that an object
	 * store that does not answer is a 503, not a transfer cut short.
	 */
	if (size > 0 && sfs_blob_fd(b) < 0 &&
	    sfs_blob_pread(b, hdr, 1, from, &got, &e)) {
		sfs_blob_close(b);
		return respond_err(r, &e);
	}
	bps = limits_bps(&r->actor);
	if (size == 0) {
		sfs_blob_close(b);
		resp = MHD_create_response_from_buffer(0, NULL,
						       MHD_RESPMEM_PERSISTENT);
	} else if (bps > 0) {
		resp = limits_throttled_response(r, b, from, to - from + 1,
						 bps);
	} else {
		resp = blob_response(b, from, to - from + 1);
	}
	if (!resp)
		return respond_status(r, 500, "internal_error",
				      "cannot make a response");
	r->bytes_out = size ? to - from + 1 : 0;
	MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	if (etag)
		MHD_add_response_header(resp, "ETag", etag);
	if (lm[0])
		MHD_add_response_header(resp, "Last-Modified", lm);
	if (filename) {
		httpd_content_disposition(filename, hdr, sizeof(hdr));
		MHD_add_response_header(resp, "Content-Disposition", hdr);
	}
	if (status == 206) {
		snprintf(hdr, sizeof(hdr),
			 "bytes %" PRId64 "-%" PRId64 "/%" PRId64, from, to,
			 size);
		MHD_add_response_header(resp, "Content-Range", hdr);
	}
	return respond_queue(r, status, resp);
}
