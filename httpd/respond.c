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
#include "speechfs/log.h"
#include "speechfs/banned.h"

static const unsigned status_http[SFS_STATUS_MAX] = {
	[SFS_OK] = 200,		 [SFS_NOT_FOUND] = 404,
	[SFS_FORBIDDEN] = 403,	 [SFS_UNAUTHENTICATED] = 401,
	[SFS_CONFLICT] = 409,	 [SFS_GONE] = 410,
	[SFS_NOT_READY] = 422,	 [SFS_INVALID] = 400,
	[SFS_RANGE] = 416,	 [SFS_RATE_LIMITED] = 429,
	[SFS_QUOTA] = 413,	 [SFS_TOO_LARGE] = 413,
	[SFS_NO_SPACE] = 507,	 [SFS_BUSY] = 503,
	[SFS_IO] = 500,		 [SFS_NOMEM] = 500,
	[SFS_UNSUPPORTED] = 400, [SFS_UNAVAILABLE] = 503,
};

unsigned httpd_http_status(enum sfs_status st)
{
	if ((int)st < 0 || st >= SFS_STATUS_MAX || !status_http[st])
		return 500;
	return status_http[st];
}

/* The length of the UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0], cp;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

void httpd_echo(const char *s, size_t n, size_t max, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, len, room;

	if (!outsz)
		return;
	room = outsz - 1 < max ? outsz - 1 : max;
	while (i < n) {
		len = utf8_len(p + i, n - i);
		if (len == 1 && (p[i] < 0x20 || p[i] == 0x7f))
			len = 0;
		if (len) {
			if (o + len > room)
				break;
			memcpy(out + o, p + i, len);
			o += len;
			i += len;
			continue;
		}
		if (o + 4 > room)
			break;
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[p[i] >> 4];
		out[o++] = hex[p[i] & 15];
		i++;
	}
	out[o] = '\0';
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

enum MHD_Result respond_text(struct req *r, unsigned status, const char *ctype,
			     char *body, size_t len)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(len, body,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
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
				  const struct sfs_err *e)
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
	return error_body(r, status, type, msg, NULL);
}

enum MHD_Result respond_err(struct req *r, const struct sfs_err *e)
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
	return error_body(r, status, type ? type : "error", msg, e);
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

int httpd_parse_range(const char *h, int64_t size, int64_t *from, int64_t *to)
{
	const char *p, *dash;
	int64_t a = -1, b = -1;
	char num[32];
	size_t n;

	if (strncmp(h, "bytes=", 6) != 0)
		return -1;
	p = h + 6;
	while (*p == ' ')
		p++;
	if (strchr(p, ','))
		return -1; /* several ranges: serve the whole body */
	dash = strchr(p, '-');
	if (!dash)
		return -1;
	n = (size_t)(dash - p);
	if (n) {
		if (n >= sizeof(num))
			return -1;
		memcpy(num, p, n);
		num[n] = 0;
		if (sfs_parse_i64(num, &a) || a < 0)
			return -1;
	}
	if (dash[1]) {
		if (sfs_parse_i64(dash + 1, &b) || b < 0)
			return -1;
	}
	if (a < 0 && b < 0)
		return -1;
	if (a < 0) {
		/* suffix: the last b bytes */
		if (b == 0 || size == 0)
			return 1;
		*from = b >= size ? 0 : size - b;
		*to = size - 1;
		return 0;
	}
	if (b >= 0 && b < a)
		return -1;
	if (a >= size)
		return 1;
	*from = a;
	*to = (b < 0 || b >= size) ? size - 1 : b;
	return 0;
}

void httpd_content_disposition(const char *filename, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	char ascii[256], enc[800];
	size_t i, ai = 0, ei = 0;
	int plain = 1;

	if (!filename || !*filename)
		filename = "download";
	for (i = 0; filename[i] && ai < sizeof(ascii) - 1; i++) {
		unsigned char c = (unsigned char)filename[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
			plain = 0;
			/* one '_' per UTF-8 sequence, not per byte */
			if (c < 0x80 || c >= 0xc0)
				ascii[ai++] = '_';
		} else {
			ascii[ai++] = (char)c;
		}
	}
	ascii[ai] = 0;
	if (plain) {
		snprintf(out, outsz, "attachment; filename=\"%s\"", ascii);
		return;
	}
	for (i = 0; filename[i] && ei + 4 < sizeof(enc); i++) {
		unsigned char c = (unsigned char)filename[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c)) {
			enc[ei++] = (char)c;
		} else {
			enc[ei++] = '%';
			enc[ei++] = hex[c >> 4];
			enc[ei++] = hex[c & 15];
		}
	}
	enc[ei] = 0;
	snprintf(out, outsz, "attachment; filename=\"%s\"; filename*=UTF-8''%s",
		 ascii, enc);
}

static void http_date(int64_t ms, char *out, size_t outsz)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outsz, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Is the Range header to be honoured, given If-Range? */
static int if_range_ok(struct req *r, const char *etag, int64_t mtime_ms)
{
	const char *ir = req_header(r, "If-Range");
	struct tm tm;
	char *end;

	if (!ir)
		return 1;
	if (ir[0] == '"' || (ir[0] == 'W' && ir[1] == '/'))
		return etag && ir[0] == '"' && strcmp(ir, etag) == 0;
	memset(&tm, 0, sizeof(tm));
	end = strptime(ir, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end || mtime_ms <= 0)
		return 0;
	return (int64_t)timegm(&tm) >= mtime_ms / 1000;
}

enum MHD_Result respond_fd(struct req *r, int fd, int64_t size,
			   const char *ctype, const char *etag,
			   int64_t mtime_ms, const char *filename)
{
	struct MHD_Response *resp = NULL;
	const char *range = req_header(r, "Range");
	int64_t from = 0, to = size - 1, bps;
	unsigned status = 200;
	char hdr[1024];
	int rc;

	if (range && if_range_ok(r, etag, mtime_ms)) {
		rc = httpd_parse_range(range, size, &from, &to);
		if (rc == 1) {
			struct sfs_err e;
			char cr[64];

			close(fd);
			sfs_err_init(&e);
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
	bps = limits_bps(&r->actor);
	if (size == 0)
		resp = MHD_create_response_from_buffer(0, NULL,
						       MHD_RESPMEM_PERSISTENT);
	else if (bps > 0)
		resp = limits_throttled_response(r, fd, from, to - from + 1,
						 bps);
	else
		resp = MHD_create_response_from_fd_at_offset64(
			(uint64_t)(to - from + 1), fd, (uint64_t)from);
	if (!resp) {
		close(fd);
		return respond_status(r, 500, "internal_error",
				      "cannot make a response");
	}
	if (size == 0)
		close(fd);
	r->bytes_out = size ? to - from + 1 : 0;
	MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	if (etag)
		MHD_add_response_header(resp, "ETag", etag);
	if (mtime_ms > 0) {
		http_date(mtime_ms, hdr, sizeof(hdr));
		MHD_add_response_header(resp, "Last-Modified", hdr);
	}
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
