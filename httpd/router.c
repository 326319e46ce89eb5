/*
 * The one route table and the libmicrohttpd access handler: match the path
 * ({id} segments), authenticate (API key, JWT or a signed URL), check the
 * route's scope and the rate limit, stream the body in, then call the
 * handler. Wrong method: 405 with Allow; no match: 404 with the error body.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "conn.h"
#include "httpd.h"
#include "respcache.h"
#include "speechfs/log.h"
#include "speechfs/upload.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define B API_BASE
#define R SFS_SCOPE_READ
#define W SFS_SCOPE_WRITE
#define D SFS_SCOPE_DELETE
#define S SFS_SCOPE_SHARE

static const struct route routes[] = {
	{ "GET", "/healthz", 0, BODY_NO, 0, api_healthz, "healthz", SIGNED_NO,
	  0, ROUTE_OWN },
	{ "GET", "/metrics", 0, BODY_NO, 0, api_metrics, "metrics", SIGNED_NO,
	  0, ROUTE_OWN },
	{ "GET", "/api/v1/openapi.json", 0, BODY_NO, 0, api_openapi, "openapi",
	  SIGNED_NO, 0, ROUTE_OWN },
	{ "GET", B, R, BODY_NO, 0, api_files_list, "files_list", SIGNED_NO, 1,
	  ROUTE_SEED },
	{ "POST", B, W, BODY_UPLOAD, 1, api_files_create, "files_create",
	  SIGNED_NO, 0, ROUTE_SEED },
	{ "GET", B "/shared-with-me", R, BODY_NO, 0, api_files_shared,
	  "files_shared", SIGNED_NO, 1, ROUTE_SEED },
	{ "GET", B "/{id}", R, BODY_NO, 0, api_files_get, "files_get",
	  SIGNED_NO, 1, ROUTE_SEED },
	{ "PATCH", B "/{id}", W, BODY_JSON_OK, 0, api_files_patch,
	  "files_patch", SIGNED_NO, 0, ROUTE_SEED },
	{ "DELETE", B "/{id}", D, BODY_NO, 0, api_files_delete, "files_delete",
	  SIGNED_NO, 0, ROUTE_SEED },
	{ "GET", B "/{id}/content", R, BODY_NO, 0, api_files_content,
	  "files_content", SIGNED_CONTENT, 0, ROUTE_SEED },
	{ "PUT", B "/{id}/content", W, BODY_CONTENT, 1, api_files_put_content,
	  "files_put_content", SIGNED_NO, 0, ROUTE_EXT },
	{ "POST", B "/{id}/uploads", W, BODY_NO, 0, api_uploads_create,
	  "uploads_create", SIGNED_NO, 0, ROUTE_EXT },
	{ "GET", B "/{id}/uploads/{uploadId}", W, BODY_NO, 0, api_uploads_get,
	  "uploads_get", SIGNED_NO, 0, ROUTE_EXT },
	{ "DELETE", B "/{id}/uploads/{uploadId}", W, BODY_NO, 0,
	  api_uploads_delete, "uploads_delete", SIGNED_NO, 0, ROUTE_EXT },
	{ "GET", B "/{id}/uploads/{uploadId}/content", W, BODY_NO, 0,
	  api_uploads_content, "uploads_content", SIGNED_NO, 0, ROUTE_EXT },
	{ "GET", B "/{id}/xattrs", R, BODY_NO, 0, api_xattrs_list,
	  "xattrs_list", SIGNED_NO, 0, ROUTE_EXT },
	{ "PUT", B "/{id}/xattrs", W, BODY_JSON_OK, 0, api_xattrs_put,
	  "xattrs_put", SIGNED_NO, 0, ROUTE_EXT },
	{ "DELETE", B "/{id}/xattrs", W, BODY_NO, 0, api_xattrs_delete,
	  "xattrs_delete", SIGNED_NO, 0, ROUTE_EXT },
	{ "POST", B "/{id}/discard-content", W, BODY_NO, 0, api_files_discard,
	  "files_discard", SIGNED_NO, 0, ROUTE_SEED },
	{ "POST", B "/{id}/restore", W, BODY_NO, 0, api_files_restore,
	  "files_restore", SIGNED_NO, 0, ROUTE_EXT },
	{ "POST", B "/{id}/sync", W, BODY_NO, 0, api_files_sync, "files_sync",
	  SIGNED_NO, 0, ROUTE_EXT },
	{ "POST", B "/{id}/signed-url", R, BODY_JSON_OK, 0,
	  api_files_signed_url, "files_signed_url", SIGNED_NO, 0, ROUTE_EXT },
	{ "GET", B "/{id}/listening-audio/stream", R, BODY_NO, 0,
	  api_listening_stream, "listening_stream", SIGNED_LISTENING, 0,
	  ROUTE_SEED },
	{ "POST", B "/{id}/listening-audio/generate", W, BODY_NO, 0,
	  api_listening_generate, "listening_generate", SIGNED_NO, 0,
	  ROUTE_SEED },
	{ "DELETE", B "/{id}/listening-audio", D, BODY_NO, 0,
	  api_listening_delete, "listening_delete", SIGNED_NO, 0, ROUTE_SEED },
	{ "POST", B "/{id}/listening-audio/purge", W, BODY_NO, 0,
	  api_listening_purge, "listening_purge", SIGNED_NO, 0, ROUTE_SEED },
	{ "GET", B "/{fileId}/shares", R, BODY_NO, 0, api_shares_list,
	  "shares_list", SIGNED_NO, 0, ROUTE_SEED },
	{ "POST", B "/{fileId}/shares", S, BODY_JSON_OK, 0, api_shares_create,
	  "shares_create", SIGNED_NO, 0, ROUTE_SEED },
	{ "DELETE", B "/{fileId}/shares/{shareId}", S, BODY_NO, 0,
	  api_shares_delete, "shares_delete", SIGNED_NO, 0, ROUTE_SEED },
	{ "GET", "/api/v1/speech-services/users", R, BODY_NO, 0, api_users_list,
	  "users_list", SIGNED_NO, 0, ROUTE_EXT },
	{ "GET", "/api/v1/speech-services/users/me", R, BODY_NO, 0,
	  api_users_me, "users_me", SIGNED_NO, 0, ROUTE_EXT },

	{ "GET", B "/{id}/listening-audio/peaks", R, BODY_NO, 0,
	  api_listening_peaks, "listening_peaks", SIGNED_NO, 0, ROUTE_EXT },
	{ "GET", "/api/v1/speech-services/tags", R, BODY_NO, 0, api_tags_list,
	  "tags_list", SIGNED_NO, 0, ROUTE_EXT },
	/* extensions for remote mounts: directories and the change feed */
	{ "GET", "/api/v1/speech-services/directories", R, BODY_NO, 0,
	  api_dirs_list, "dirs_list", SIGNED_NO, 0, ROUTE_EXT },
	{ "POST", "/api/v1/speech-services/directories", W, BODY_JSON_OK, 0,
	  api_dirs_create, "dirs_create", SIGNED_NO, 0, ROUTE_EXT },
	{ "PATCH", "/api/v1/speech-services/directories", W, BODY_JSON_OK, 0,
	  api_dirs_patch, "dirs_patch", SIGNED_NO, 0, ROUTE_EXT },
	{ "DELETE", "/api/v1/speech-services/directories", W, BODY_NO, 0,
	  api_dirs_delete, "dirs_delete", SIGNED_NO, 0, ROUTE_EXT },
	{ "POST", "/api/v1/speech-services/directories/rename", W, BODY_JSON_OK,
	  0, api_dirs_rename, "dirs_rename", SIGNED_NO, 0, ROUTE_EXT },
	{ "GET", "/api/v1/speech-services/space", R, BODY_NO, 0, api_space_get,
	  "space", SIGNED_NO, 0, ROUTE_EXT },
	{ "GET", "/api/v1/speech-services/changes", R, BODY_NO, 0,
	  api_changes_get, "changes", SIGNED_NO, 0, ROUTE_EXT },
	/* sign-in sessions authenticate themselves (api_session.c) */
	{ "POST", "/api/v1/speech-services/session", 0, BODY_NO, 0,
	  api_session_create, "session_create", SIGNED_NO, 0, ROUTE_EXT },
	{ "GET", "/api/v1/speech-services/session", 0, BODY_NO, 0,
	  api_session_get, "session_get", SIGNED_NO, 0, ROUTE_EXT },
	{ "DELETE", "/api/v1/speech-services/session", 0, BODY_NO, 0,
	  api_session_delete, "session_delete", SIGNED_NO, 0, ROUTE_EXT },
	/* last: the web page's files, at every path outside /api/ */
	{ "GET", "/*", 0, BODY_NO, 0, api_www, "www", SIGNED_NO, 0, ROUTE_OWN },
};

#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))
/* a route past the bound would be counted as "none" in /metrics */
_Static_assert(NROUTES <= HTTPD_MAX_ROUTES, "routes outgrow HTTPD_MAX_ROUTES");

/* With http.extensions = false only the seed's and the daemon's own. */
static int route_on(const struct route *rt)
{
	return g_httpd.opts.extensions || rt->api != ROUTE_EXT;
}

const char *httpd_route_name(int idx)
{
	return idx >= 0 && idx < NROUTES ? routes[idx].name : "none";
}

/*
 * Match the raw (still percent-encoded) path against a pattern: literal
 * segments compare byte for byte, each {x} takes one whole segment, so
 * "%2f" can never split or join segments; a final "*" takes the rest of a
 * path that is not under /api/ (those stay the API's: 404 or 405).
 * Captured segments go to seg[] / seglen[] and their names to pnames[].
 * Returns 1 on a match.
 */
static int match(const char *pat, const char *path, const char *seg[2],
		 size_t seglen[2], const char *pnames[2])
{
	const char *start = path;
	int np = 0;

	for (;;) {
		if (pat[0] == '*' && pat[1] == '\0')
			return strncmp(start, "/api/", 5) != 0;
		if (!*pat || !*path)
			break;
		if (*pat == '{') {
			const char *pe = strchr(pat, '}');
			size_t n = strcspn(path, "/");

			if (!pe || n == 0)
				return 0;
			if (np < 2) {
				seg[np] = path;
				seglen[np] = n;
				pnames[np] = pat + 1;
				np++;
			}
			pat = pe + 1;
			path += n;
			continue;
		}
		if (*pat != *path)
			return 0;
		pat++;
		path++;
	}
	return *pat == 0 && *path == 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Percent-decode one path segment into out[outsz]. -1 for a bad escape,
 * a decoded NUL or '/', or a result that does not fit: such a segment is
 * never a canonical id.
 */
static int segment_decode(const char *in, size_t n, char *out, size_t outsz)
{
	size_t i, o = 0;
	int c, hi, lo;

	for (i = 0; i < n; i++) {
		c = (unsigned char)in[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			hi = hexval((unsigned char)in[i + 1]);
			lo = hexval((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi << 4 | lo;
			i += 2;
		}
		if (c == 0 || c == '/' || o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/*
 * What one pass over the headers and arguments finds: their size, and the
 * credentials, counted to refuse ambiguous ones.
 */
struct creds {
	size_t hbytes;	   /* headers, as "name: value\r\n" */
	int keys, authz;   /* X-API-Key, Authorization headers */
	int sig, exp, uid; /* signed URL arguments */
	int nul;	   /* an argument with an embedded NUL */
	int bad_header;	   /* a name that is not a token, a control byte */
};

/*
 * RFC 9110 5.1 and 5.5: a field name is a token, a value has no control
 * characters but HTAB. libmicrohttpd 0.9.75 takes "Name : v" and control
 * bytes as they come; a proxy in front might not read them the same way.
 */
static int header_ok(const char *k, size_t klen, const char *v, size_t vlen)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";
	unsigned char ch;
	size_t i;

	if (!klen)
		return 0;
	for (i = 0; i < klen; i++) {
		ch = (unsigned char)k[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || (ch && strchr(tchar, ch))))
			return 0;
	}
	for (i = 0; v && i < vlen; i++) {
		ch = (unsigned char)v[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return 0;
	}
	return 1;
}

static enum MHD_Result count_headers(void *cls, enum MHD_ValueKind kind,
				     const char *key, size_t klen,
				     const char *value, size_t vlen)
{
	struct creds *c = cls;

	if (kind != MHD_HEADER_KIND)
		return MHD_YES;
	c->hbytes += klen + vlen + 4;
	if (!header_ok(key, klen, value, vlen))
		c->bad_header = 1;
	if (strcasecmp(key, "X-API-Key") == 0)
		c->keys++;
	else if (strcasecmp(key, "Authorization") == 0)
		c->authz++;
	return MHD_YES;
}

static enum MHD_Result count_args(void *cls, enum MHD_ValueKind kind,
				  const char *key, size_t klen,
				  const char *value, size_t vlen)
{
	struct creds *c = cls;

	(void)kind;
	if (strlen(key) != klen || (value && strlen(value) != vlen))
		c->nul = 1;
	if (strcmp(key, "sig") == 0)
		c->sig++;
	else if (strcmp(key, "exp") == 0)
		c->exp++;
	else if (strcmp(key, "uid") == 0)
		c->uid++;
	return MHD_YES;
}

/*
 * One credential, or none: two X-API-Key headers, a key and an
 * Authorization header, or a signed URL with either are refused rather
 * than resolved by "first wins".
 */
static enum sfs_status check_ambiguous(const struct creds *c, int signed_url,
				       struct sfs_err *e)
{
	if (c->keys > 1 || c->authz > 1 || (c->keys && c->authz))
		return sfs_errf(e, SFS_INVALID, SFS_R_AMBIGUOUS_CREDENTIALS,
				"send one credential: a single X-API-Key or "
				"a single Authorization header");
	if (signed_url &&
	    (c->keys || c->authz || c->sig > 1 || c->exp > 1 || c->uid > 1))
		return sfs_errf(e, SFS_INVALID, SFS_R_AMBIGUOUS_CREDENTIALS,
				"a signed URL carries its own credential: "
				"send it alone, with each argument once");
	return SFS_OK;
}

static enum sfs_status authenticate(struct req *r, struct sfs_err *e)
{
	const char *key = req_header(r, "X-API-Key");
	const char *authz = req_header(r, "Authorization");

	const char *cookie;

	if (key)
		return sfs_auth_api_key(g_httpd.store, key, &r->actor, e);
	if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
		authz += 7;
		while (*authz == ' ')
			authz++;
		return sfs_auth_jwt(g_httpd.store, authz, &r->actor, e);
	}
	/* a browser's session: ambient, so any header above wins over it */
	cookie = httpd_session_cookie(r);
	if (cookie && !authz) {
		r->session_tried = 1;
		return httpd_session_auth(r, cookie, e);
	}
	return sfs_errf(e, SFS_UNAUTHENTICATED, SFS_R_UNAUTHENTICATED,
			"an X-API-Key or Authorization: Bearer header is "
			"required");
}

int httpd_route_enabled(const char *method, const char *path)
{
	const char *seg[2], *pnames[2];
	size_t seglen[2];
	int i;

	for (i = 0; i < NROUTES; i++)
		if (!strcasecmp(routes[i].method, method) &&
		    match(routes[i].pattern, path, seg, seglen, pnames))
			return route_on(&routes[i]);
	return 0;
}

/* Find the route; 404 or 405 (with Allow) answered here. */
static enum MHD_Result route(struct req *r, const char *seg[2],
			     size_t seglen[2], const char *pnames[2], int *np)
{
	char allow[128] = "";
	int i;

	for (i = 0; i < NROUTES; i++) {
		if (!route_on(&routes[i]) ||
		    !match(routes[i].pattern, r->path, seg, seglen, pnames))
			continue;
		if (strcmp(routes[i].method, r->method) == 0 ||
		    (strcmp(r->method, "HEAD") == 0 &&
		     strcmp(routes[i].method, "GET") == 0))
			break;
		if (!strstr(allow, routes[i].method)) {
			size_t l = strlen(allow);

			snprintf(allow + l, sizeof(allow) - l, "%s%s",
				 l ? ", " : "", routes[i].method);
		}
	}
	if (i == NROUTES) {
		if (allow[0] && strcmp(r->method, "OPTIONS") == 0)
			return cors_options(r, allow);
		if (allow[0]) {
			req_set_header(r, "Allow", allow);
			return respond_status(r, 405, "method_not_allowed",
					      "the method is not allowed on "
					      "this resource");
		}
		return respond_status(r, 404, "not_found", "no such endpoint");
	}
	r->route = &routes[i];
	r->route_idx = i;
	for (i = 0, *np = 0; r->route->pattern[i]; i++)
		*np += r->route->pattern[i] == '{';
	if (*np > 2)
		*np = 2;
	return MHD_YES;
}

/* A signed URL's grant: for this file, this kind of content, in time. */
static enum sfs_status signed_auth(struct req *r, struct sfs_err *e)
{
	return sfs_signed_url_verify(g_httpd.store, r->params[0],
				     r->route->signed_url == SIGNED_LISTENING
					     ? SFS_CONTENT_LISTENING
					     : SFS_CONTENT_ORIGINAL,
				     req_arg(r, "exp"), req_arg(r, "uid"),
				     req_arg(r, "sig"), &r->actor, e);
}

/* Credentials, scope and rate: 0 to go on, else the answer was queued. */
static int admit(struct req *r, const struct creds *c, enum MHD_Result *ret)
{
	const struct sockaddr *peer = httpd_peer(r);
	struct sfs_err e;
	char ra[16];
	int wait;

	sfs_err_init(&e);
	r->signed_url = r->route->signed_url != SIGNED_NO && c->sig;
	if (check_ambiguous(c, r->signed_url, &e)) {
		*ret = respond_err(r, &e);
		return -1;
	}
	wait = limits_auth_wait(peer);
	if (wait > 0) {
		snprintf(ra, sizeof(ra), "%d", wait);
		req_set_header(r, "Retry-After", ra);
		*ret = respond_errf(r, SFS_RATE_LIMITED,
				    SFS_R_TOO_MANY_FAILURES,
				    "too many failed authentications from "
				    "this address; retry in %d s",
				    wait);
		return -1;
	}
	if (r->signed_url ? signed_auth(r, &e) != SFS_OK
			  : authenticate(r, &e) != SFS_OK) {
		/* 256-bit session tokens are not guessed: a stale cookie
		 * of a page left open is no attack to throttle */
		if (e.status == SFS_UNAUTHENTICATED && !r->session_tried)
			limits_auth_failed(peer);
		if (!r->signed_url)
			req_set_header(r, "WWW-Authenticate",
				       "Bearer realm=\"speechfs\"");
		*ret = respond_err(r, &e);
		return -1;
	}
	r->authed = 1;
	if ((r->actor.scopes & r->route->scope) != r->route->scope) {
		*ret = respond_errf(r, SFS_FORBIDDEN, SFS_R_INSUFFICIENT_SCOPE,
				    "this endpoint requires the scope '%s'",
				    sfs_scope_name(r->route->scope));
		return -1;
	}
	wait = limits_take(&r->actor, r->route->upload_limited);
	if (wait > 0) {
		snprintf(ra, sizeof(ra), "%d", wait);
		req_set_header(r, "Retry-After", ra);
		*ret = respond_errf(r, SFS_RATE_LIMITED, SFS_R_RATE_LIMITED,
				    "too many requests; retry in %d s", wait);
		return -1;
	}
	return 0;
}

/* A path parameter's form: a UUID, or an upload session's id. */
static int param_valid(const char *pname, const char *v)
{
	if (!strncmp(pname, "uploadId}", 9))
		return sfs_upload_id_valid(v);
	return sfs_uuid_valid(v);
}

/* The first call: everything that does not need the body. */
static enum MHD_Result begin(struct req *r)
{
	const char *seg[2], *pnames[2];
	size_t seglen[2];
	struct creds c = { 0 };
	struct sfs_err e;
	enum MHD_Result ret;
	char echo[80];
	int i, np = 0, bad = 0;

	sfs_err_init(&e);
	if (httpd_stopping())
		return respond_status(r, 503, "shutting_down",
				      "the server is shutting down");
	if (r->uri_len > g_httpd.opts.max_url_len)
		return respond_status(r, 414, "uri_too_long",
				      "the request URI is too long");
	MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, count_headers,
				    &c);
	if (c.hbytes > g_httpd.opts.max_header_bytes)
		return respond_status(r, 431, "headers_too_large",
				      "the request headers are too large");
	if (c.bad_header || r->bad_uri ||
	    (strcmp(r->version, MHD_HTTP_VERSION_1_1) == 0 &&
	     !req_header(r, "Host"))) {
		req_set_header(r, "Connection", "close");
		return respond_status(r, 400, "bad_request",
				      c.bad_header ? "a header name is not a "
						     "token or a header has "
						     "control characters"
				      : r->bad_uri
					      ? "the URI has spaces or "
						"control characters"
					      : "an HTTP/1.1 request needs "
						"a Host header");
	}
	MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, count_args,
				    &c);
	if (c.nul)
		return respond_status(r, 400, "invalid_parameter",
				      "a query argument contains a NUL "
				      "character");
	cors_headers(r);
	ret = route(r, seg, seglen, pnames, &np);
	if (!r->route)
		return ret;
	/* decoded before the credentials: a signed URL names its file */
	for (i = 0; i < np; i++)
		if (segment_decode(seg[i], seglen[i], r->params[i],
				   sizeof(r->params[i])) ||
		    !param_valid(pnames[i], r->params[i]))
			bad |= 1 << i;
	if (r->route->scope && admit(r, &c, &ret))
		return ret;
	for (i = 0; i < np; i++) {
		char pn[16];
		const char *pe = strchr(pnames[i], '}');

		if (!(bad & 1 << i))
			continue;
		if (!strncmp(pnames[i], "uploadId}", 9))
			return respond_errf(r, SFS_NOT_FOUND,
					    SFS_R_UPLOAD_NOT_FOUND,
					    "no such upload session");
		snprintf(pn, sizeof(pn), "%.*s", (int)(pe - pnames[i]),
			 pnames[i]);
		httpd_echo(seg[i], seglen[i], 60, echo, sizeof(echo));
		sfs_err_field(&e, pn, "invalid_uuid", "'%s' is not a UUID",
			      echo);
		e.reason = SFS_R_INVALID_UUID;
		snprintf(e.message, sizeof(e.message),
			 "path parameter '%s' must be a UUID", pn);
		return respond_err(r, &e);
	}
	return req_body_start(r);
}

/* Does the request announce a body? */
static int has_body(struct req *r)
{
	const char *cl = req_header(r, "Content-Length");

	if (req_header(r, "Transfer-Encoding"))
		return 1;
	return cl && strcmp(cl, "0") != 0;
}

/*
 * libmicrohttpd's URI log callback: the request line has been read and the
 * URI is still as the client sent it. The request state starts here, so
 * routing sees the raw path (an encoded "/" or NUL cannot change a route or
 * cut an id) and every request ends in httpd_completed, even one that
 * libmicrohttpd refuses before its headers are complete.
 */
void *httpd_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct req *r = req_new(conn, uri);

	(void)cls;
	if (r)
		__atomic_add_fetch(&g_httpd.inflight, 1, __ATOMIC_SEQ_CST);
	return r;
}

/*
 * The client's origin (X-Speechfs-Origin: a number 1..2^63-1 it chose),
 * which the changes of its request carry so the change feed can tell the
 * client its own; 0 when none, or not such a number (ignored).
 */
int64_t req_origin(struct req *r)
{
	const char *v = req_header(r, "X-Speechfs-Origin");
	int64_t o;

	return v && !sfs_parse_i64(v, &o) && o > 0 ? o : 0;
}

enum MHD_Result httpd_access(void *cls, struct MHD_Connection *conn,
			     const char *url, const char *method,
			     const char *version, const char *upload_data,
			     size_t *upload_data_size, void **con_cls)
{
	struct req *r = *con_cls;
	struct sfs_err e;
	enum MHD_Result ret;

	(void)cls;
	(void)url; /* decoded: routing uses the raw path */
	if (!r)
		return MHD_NO; /* no memory for it in httpd_uri_log */
	if (!r->begun) {
		r->begun = 1;
		r->method = method;
		r->version = version;
		r->defer = !has_body(r);
		if (r->cn) {
			r->cn->head_only = strcmp(method, "HEAD") == 0;
			conn_set_phase(r->cn, r->defer ? CONN_BUSY : CONN_BODY);
		}
		ret = begin(r);
		r->defer = 0;
		return ret;
	}
	if (r->pending) {
		ret = MHD_queue_response(conn, r->status, r->pending);
		MHD_destroy_response(r->pending);
		r->pending = NULL;
		return ret;
	}
	if (r->responded) {
		r->bytes_in += (int64_t)*upload_data_size;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		req_body_feed(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	sfs_err_init(&e);
	conn_set_phase(r->cn, CONN_BUSY);
	r->body_ended = 1;
	if (req_body_finish(r, &e))
		return respond_err(r, &e);
	if (respcache_lookup(r, &ret))
		return ret;
	sfs_store_origin_set(req_origin(r));
	ret = r->route->fn(r);
	sfs_store_origin_set(0);
	sfs_store_keep_dirs_here(0); /* a handler's keepDirs= ends here */
	return ret;
}

/* The access log's line (the path escaped: it is the client's). */
static void access_line(struct req *r, int64_t ns,
			enum MHD_RequestTerminationCode toe)
{
	char path[256];

	httpd_echo(r->path, strlen(r->path), 200, path, sizeof(path));
	sfs_info("access", "%s %s %u %" PRId64 " %.1fms %s%s",
		 r->begun ? r->method : "-", path, r->status, r->bytes_out,
		 (double)ns / 1e6, r->id,
		 !r->begun				      ? " refused"
		 : toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
							      : " aborted");
}

void httpd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		     enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;
	int64_t ns;

	(void)cls;
	(void)conn;
	if (!r)
		return;
	if (r->cn) {
		if (!r->responded && r->cn->replaced)
			r->status = r->cn->own_status; /* the library's reply */
		r->cn->ours = 0;
		r->cn->rid[0] = '\0';
		conn_set_phase(r->cn, CONN_IDLE);
	}
	ns = sfs_mono_ns() - r->start_ns;
	if (sfs_log_get_level() >= SFS_LOG_INFO)
		access_line(r, ns, toe);
	metrics_record(r->route_idx, r->status, ns, r->bytes_in, r->bytes_out);
	req_free(r);
	*con_cls = NULL;
	__atomic_sub_fetch(&g_httpd.inflight, 1, __ATOMIC_SEQ_CST);
}
