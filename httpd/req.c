/*
 * Per-request state and request bodies: allocated on libmicrohttpd's first
 * call, freed only in the request-completed callback, so stages and parsers
 * registered here are released however the request ends. Multipart uploads
 * stream the `file` part straight into a stage (constant memory) through
 * the parser below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include "conn.h"
#include "httpd.h"
#include "speechfs/blob.h"
#include "speechfs/banned.h"
#include "speechfs/stage.h"

#define TEXT_PART_MAX (64 * 1024 + 1024)
#define MULTIPART_OVERHEAD (1024 * 1024)

const char *const httpd_part_names[PART_MAX] = {
	[PART_NAME] = "name", [PART_DESCRIPTION] = "description",
	[PART_PATH] = "path", [PART_METADATA] = "metadata",
	[PART_TAGS] = "tags", [PART_GLA] = "generateListeningAudio",
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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
			rid_s[0] = (uint64_t)mono_ns() | 1;
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
	r->path = strndup(uri, n);
	if (!r->path) {
		free(r);
		return NULL;
	}
	r->start_ns = mono_ns();
	r->route_idx = -1;
	httpd_request_id(r->id);
	r->cn = conn_of(conn);
	if (r->cn)
		memcpy(r->cn->rid, r->id, sizeof(r->id));
	sfs_buf_init(&r->json, (size_t)g_httpd.opts.max_json_bytes);
	for (i = 0; i < PART_MAX; i++)
		sfs_buf_init(&r->parts[i], TEXT_PART_MAX);
	sfs_err_init(&r->err);
	return r;
}

void req_free(struct req *r)
{
	int i;

	if (!r)
		return;
	if (r->pending)
		MHD_destroy_response(r->pending);
	free(r->mp);
	if (r->stage)
		sfs_stage_free(r->stage);
	sfs_buf_release(&r->json);
	for (i = 0; i < PART_MAX; i++)
		sfs_buf_release(&r->parts[i]);
	free(r->filename);
	free(r->path);
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
	int i;

	for (i = 0; i < r->nxh; i++)
		if (strcasecmp(r->xh[i].name, name) == 0)
			break;
	if (i == REQ_MAX_HEADERS)
		return; /* a bug: the handlers set a few at most */
	if (i == r->nxh)
		r->nxh++;
	r->xh[i].name = name;
	snprintf(r->xh[i].val, sizeof(r->xh[i].val), "%s", val);
}

const char *req_get_header_set(struct req *r, const char *name)
{
	int i;

	for (i = 0; i < r->nxh; i++)
		if (strcasecmp(r->xh[i].name, name) == 0)
			return r->xh[i].val;
	return NULL;
}

/* First error wins; the rest of the body is read and dropped. */
static void body_fail(struct req *r, enum sfs_status st, enum sfs_reason type,
		      const char *field, const char *msg)
{
	if (r->has_err)
		return;
	r->has_err = 1;
	sfs_err_init(&r->err);
	if (field)
		sfs_err_field(&r->err, field, "invalid", "%s", msg);
	sfs_errf(&r->err, st, type, "%s", msg);
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
				r->has_err = 1;
				r->err = e;
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
			r->has_err = 1;
			r->err = e;
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

/*
 * multipart/form-data (RFC 7578, RFC 2046 section 5.1), streamed. Part data
 * goes to part_iter straight from libmicrohttpd's buffer: the parser finds
 * each delimiter with memmem and keeps back only the last bytes of a read
 * that could begin one. libmicrohttpd's own post processor copied every
 * byte into a buffer of its own and stopped at every CR in the data; on a
 * 1 GiB upload that was a fifth of the receiving thread's time.
 */
#define MP_BOUNDARY_MAX 70 /* RFC 2046 */
#define MP_DELIM_MAX (MP_BOUNDARY_MAX + 4)
#define MP_HEADERS_MAX 8192

enum mp_state {
	MP_PREAMBLE,   /* before the first delimiter: dropped */
	MP_AFTER,      /* after a delimiter: "--" or padding and CRLF */
	MP_AFTER_LF,   /* the CR of that CRLF seen */
	MP_AFTER_DASH, /* the first '-' of "--" seen */
	MP_HEADERS,    /* a part's header lines, to an empty line */
	MP_DATA,       /* a part's body, to the next delimiter */
	MP_END,	       /* after the close delimiter: the epilogue, dropped */
	MP_FAILED
};

struct multipart {
	enum mp_state state;
	char delim[MP_DELIM_MAX + 1]; /* CRLF "--" boundary */
	size_t dlen;
	char carry[MP_DELIM_MAX]; /* a read's tail that may start a delim */
	size_t clen;
	char hdr[MP_HEADERS_MAX]; /* the headers of the part being read */
	size_t hlen;
	char name[128]; /* the part's name and filename */
	char filename[1024];
	int has_filename;
	uint64_t off; /* bytes of the part passed on */
	int called;   /* part_iter called for this part */
};

/* The boundary parameter of a multipart Content-Type; NULL if none. */
static int mp_boundary(const char *ct, char *out, size_t size)
{
	const char *p = ct;
	size_t n = 0;

	while ((p = strchr(p, ';'))) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "boundary=", 9))
			continue;
		p += 9;
		if (*p == '"') {
			for (p++; p[n] && p[n] != '"'; n++)
				;
			if (p[n] != '"')
				return -1;
		} else {
			n = strcspn(p, "; \t");
		}
		if (n == 0 || n > MP_BOUNDARY_MAX || n >= size)
			return -1;
		memcpy(out, p, n);
		out[n] = '\0';
		return 0;
	}
	return -1;
}

static struct multipart *mp_new(const char *ct)
{
	char b[MP_BOUNDARY_MAX + 1];
	struct multipart *m;

	if (!ct || mp_boundary(ct, b, sizeof(b)))
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->dlen = (size_t)snprintf(m->delim, sizeof(m->delim), "\r\n--%s", b);
	/* the first delimiter may open the body: as if a CRLF came first */
	memcpy(m->carry, "\r\n", 2);
	m->clen = 2;
	m->state = MP_PREAMBLE;
	return m;
}

/*
 * The value of parameter `key` in a Content-Disposition header value:
 * quoted (taken as is up to the closing quote, as browsers and curl send
 * it) or a token. 1 found, 0 not, -1 malformed or too long.
 */
static int mp_param(const char *v, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key), n;
	const char *p = v;

	while ((p = strchr(p, ';'))) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, key, klen) || p[klen] != '=')
			continue;
		p += klen + 1;
		if (*p == '"') {
			p++;
			n = strcspn(p, "\"");
			if (p[n] != '"')
				return -1;
		} else {
			n = strcspn(p, "; \t");
		}
		if (n >= size)
			return -1;
		memcpy(out, p, n);
		out[n] = '\0';
		return 1;
	}
	return 0;
}

/* The part's headers are in m->hdr: find its name and filename. */
static int mp_part_headers(struct multipart *m)
{
	char *line = m->hdr, *end, *v;
	int found = 0, rc;

	m->hdr[m->hlen] = '\0';
	for (; *line; line = end + 2) {
		end = strstr(line, "\r\n");
		if (!end)
			return -1;
		*end = '\0';
		if (strncasecmp(line, "Content-Disposition:", 20))
			continue;
		v = line + 20;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, "form-data", 9) ||
		    (v[9] && v[9] != ';' && v[9] != ' '))
			return -1;
		if (mp_param(v, "name", m->name, sizeof(m->name)) != 1)
			return -1;
		rc = mp_param(v, "filename", m->filename, sizeof(m->filename));
		if (rc < 0)
			return -1;
		m->has_filename = rc;
		found = 1;
	}
	return found ? 0 : -1;
}

/* Pass part bytes on (the preamble's are dropped). */
static int mp_emit_as(struct req *r, const char *data, size_t n, int final)
{
	struct multipart *m = r->mp;

	/* no bytes: no call, but for an empty part at its end (below) */
	if (m->state != MP_DATA || (!n && (m->called || !final)))
		return 0;
	m->called = 1;
	if (part_iter(r, MHD_POSTDATA_KIND, m->name,
		      m->has_filename ? m->filename : NULL, NULL, NULL, data,
		      m->off, n) != MHD_YES)
		return -1;
	m->off += n;
	return 0;
}

static int mp_emit(struct req *r, const char *data, size_t n)
{
	return mp_emit_as(r, data, n, 0);
}

/* A delimiter ended the data (or the preamble). */
static int mp_delimited(struct req *r)
{
	struct multipart *m = r->mp;

	if (mp_emit_as(r, "", 0, 1)) /* an empty part is still a part */
		return -1;
	m->state = MP_AFTER;
	return 0;
}

/*
 * Data up to the next delimiter; returns the bytes of `data` used. The
 * carry (under dlen bytes) comes logically before data: a delimiter that
 * starts in it ends within the first dlen - 1 bytes of data.
 */
static size_t mp_data(struct req *r, const char *data, size_t len, int *err)
{
	struct multipart *m = r->mp;
	char tmp[2 * MP_DELIM_MAX];
	const char *hit;
	size_t k, t, keep;

	if (m->clen) {
		k = len < m->dlen - 1 ? len : m->dlen - 1;
		memcpy(tmp, m->carry, m->clen);
		memcpy(tmp + m->clen, data, k);
		t = m->clen + k;
		hit = memmem(tmp, t, m->delim, m->dlen);
		if (hit) {
			m->clen = 0;
			*err = mp_emit(r, tmp, (size_t)(hit - tmp)) ||
			       mp_delimited(r);
			return (size_t)(hit - tmp) + m->dlen - (t - k);
		}
		if (k == len) {
			/* all of it is in tmp: keep what may start one */
			keep = t < m->dlen - 1 ? t : m->dlen - 1;
			*err = mp_emit(r, tmp, t - keep);
			memmove(m->carry, tmp + t - keep, keep);
			m->clen = keep;
			return len;
		}
		/* no delimiter starts in the carry */
		*err = mp_emit(r, m->carry, m->clen);
		m->clen = 0;
		if (*err)
			return len;
	}
	hit = memmem(data, len, m->delim, m->dlen);
	if (hit) {
		*err = mp_emit(r, data, (size_t)(hit - data)) ||
		       mp_delimited(r);
		return (size_t)(hit - data) + m->dlen;
	}
	keep = len < m->dlen - 1 ? len : m->dlen - 1;
	*err = mp_emit(r, data, len - keep);
	memcpy(m->carry, data + len - keep, keep);
	m->clen = keep;
	return len;
}

/* Feed body bytes; 0 ok, -1 malformed or refused by part_iter. */
static int mp_feed(struct req *r, const char *data, size_t len)
{
	struct multipart *m = r->mp;
	size_t used;
	int err = 0;
	char c;

	while (len && !err) {
		switch (m->state) {
		case MP_PREAMBLE:
		case MP_DATA:
			used = mp_data(r, data, len, &err);
			data += used;
			len -= used;
			continue;
		case MP_END:
			return 0; /* the epilogue */
		case MP_FAILED:
			return -1;
		default:
			break;
		}
		c = *data++;
		len--;
		switch (m->state) {
		case MP_AFTER:
			if (c == '-')
				m->state = MP_AFTER_DASH;
			else if (c == '\r')
				m->state = MP_AFTER_LF;
			else if (c != ' ' && c != '\t')
				err = -1;
			break;
		case MP_AFTER_DASH:
			if (c == '-')
				m->state = MP_END;
			else
				err = -1;
			break;
		case MP_AFTER_LF:
			if (c != '\n') {
				err = -1;
				break;
			}
			m->state = MP_HEADERS;
			m->hlen = 0;
			break;
		case MP_HEADERS:
			if (m->hlen + 1 >= sizeof(m->hdr)) {
				err = -1;
				break;
			}
			m->hdr[m->hlen++] = c;
			if (c != '\n' || m->hlen < 2 ||
			    m->hdr[m->hlen - 2] != '\r')
				break;
			if (m->hlen == 2) {
				m->hlen = 0; /* no headers at all */
				err = -1;
				break;
			}
			if (m->hlen < 4 ||
			    memcmp(m->hdr + m->hlen - 4, "\r\n\r\n", 4))
				break;
			m->hlen -= 2; /* keep the last line's CRLF */
			if (mp_part_headers(m)) {
				err = -1;
				break;
			}
			m->state = MP_DATA;
			m->off = 0;
			m->called = 0;
			break;
		default:
			err = -1;
		}
	}
	if (err)
		m->state = MP_FAILED;
	return err ? -1 : 0;
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
			r->mp = mp_new(ct);
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
	case BODY_MULTIPART:
		if (mp_feed(r, data, size)) {
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
		if (r->mp->state != MP_END)
			body_fail(r, SFS_INVALID, SFS_R_INVALID_MULTIPART, NULL,
				  "the multipart body is truncated or "
				  "malformed");
		free(r->mp);
		r->mp = NULL;
	}
	if (r->has_err) {
		*e = r->err;
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
