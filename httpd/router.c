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
#include "httpd.h"
#include "speechfs/log.h"
#include "speechfs/banned.h"

#define B API_BASE
#define R SFS_SCOPE_READ
#define W SFS_SCOPE_WRITE
#define D SFS_SCOPE_DELETE
#define S SFS_SCOPE_SHARE

static const struct route routes[] = {
	{ "GET", "/healthz", 0, BODY_NO, 0, api_healthz, "healthz", SIGNED_NO },
	{ "GET", "/metrics", 0, BODY_NO, 0, api_metrics, "metrics", SIGNED_NO },
	{ "GET", "/api/v1/openapi.json", 0, BODY_NO, 0, api_openapi, "openapi",
	  SIGNED_NO },
	{ "GET", B, R, BODY_NO, 0, api_files_list, "files_list", SIGNED_NO },
	{ "POST", B, W, BODY_UPLOAD, 1, api_files_create, "files_create",
	  SIGNED_NO },
	{ "GET", B "/shared-with-me", R, BODY_NO, 0, api_files_shared,
	  "files_shared", SIGNED_NO },
	{ "GET", B "/{id}", R, BODY_NO, 0, api_files_get, "files_get",
	  SIGNED_NO },
	{ "PATCH", B "/{id}", W, BODY_JSON_OK, 0, api_files_patch,
	  "files_patch", SIGNED_NO },
	{ "DELETE", B "/{id}", D, BODY_NO, 0, api_files_delete, "files_delete",
	  SIGNED_NO },
	{ "GET", B "/{id}/content", R, BODY_NO, 0, api_files_content,
	  "files_content", SIGNED_CONTENT },
	{ "POST", B "/{id}/discard-content", W, BODY_NO, 0, api_files_discard,
	  "files_discard", SIGNED_NO },
	{ "POST", B "/{id}/restore", W, BODY_NO, 0, api_files_restore,
	  "files_restore", SIGNED_NO },
	{ "POST", B "/{id}/signed-url", R, BODY_JSON_OK, 0,
	  api_files_signed_url, "files_signed_url", SIGNED_NO },
	{ "GET", B "/{id}/listening-audio/stream", R, BODY_NO, 0,
	  api_listening_stream, "listening_stream", SIGNED_LISTENING },
	{ "POST", B "/{id}/listening-audio/generate", W, BODY_NO, 0,
	  api_listening_generate, "listening_generate", SIGNED_NO },
	{ "DELETE", B "/{id}/listening-audio", D, BODY_NO, 0,
	  api_listening_delete, "listening_delete", SIGNED_NO },
	{ "POST", B "/{id}/listening-audio/purge", W, BODY_NO, 0,
	  api_listening_purge, "listening_purge", SIGNED_NO },
	{ "GET", B "/{fileId}/shares", R, BODY_NO, 0, api_shares_list,
	  "shares_list", SIGNED_NO },
	{ "POST", B "/{fileId}/shares", S, BODY_JSON_OK, 0, api_shares_create,
	  "shares_create", SIGNED_NO },
	{ "DELETE", B "/{fileId}/shares/{shareId}", S, BODY_NO, 0,
	  api_shares_delete, "shares_delete", SIGNED_NO },
	{ "GET", "/api/v1/speech-services/users", R, BODY_NO, 0, api_users_list,
	  "users_list", SIGNED_NO },
};

#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))

int httpd_route_count(void)
{
	return NROUTES;
}

const char *httpd_route_name(int idx)
{
	return idx >= 0 && idx < NROUTES ? routes[idx].name : "none";
}

/*
 * Match a path against a pattern; {x} segments are captured into
 * params (and names into pnames). Returns 1 on a match.
 */
static int match(const char *pat, const char *path, char params[2][64],
		 const char *pnames[2])
{
	int np = 0;

	while (*pat && *path) {
		if (*pat == '{') {
			const char *pe = strchr(pat, '}');
			size_t n = strcspn(path, "/");

			if (!pe || n == 0)
				return 0;
			if (np < 2) {
				snprintf(params[np], 64, "%.*s",
					 n > 63 ? 63 : (int)n, path);
				if (n > 63)
					params[np][0] = '!';
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

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind,
				    const char *key, const char *value)
{
	size_t *n = cls;

	(void)kind;
	*n += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

static enum sfs_status authenticate(struct req *r, struct sfs_err *e)
{
	const char *key = req_header(r, "X-API-Key");
	const char *authz = req_header(r, "Authorization");

	if (key)
		return sfs_auth_api_key(g_httpd.store, key, &r->actor, e);
	if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
		authz += 7;
		while (*authz == ' ')
			authz++;
		return sfs_auth_jwt(g_httpd.store, authz, &r->actor, e);
	}
	return sfs_errf(e, SFS_UNAUTHENTICATED, "unauthenticated",
			"an X-API-Key or Authorization: Bearer header is "
			"required");
}

/* The first call: everything that does not need the body. */
static enum MHD_Result begin(struct req *r)
{
	char params[2][64];
	const char *pnames[2];
	char allow[128] = "";
	struct sfs_err e;
	size_t hb = 0;
	int i, np, wait;

	sfs_err_init(&e);
	if (g_httpd.stopping)
		return respond_status(r, 503, "shutting_down",
				      "the server is shutting down");
	/* MHD hands the path without its query: count the arguments too */
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, count_header,
				  &hb);
	if (strlen(r->path) + hb > g_httpd.opts.max_url_len)
		return respond_status(r, 414, "uri_too_long",
				      "the request URI is too long");
	hb = 0;
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &hb);
	if (hb > g_httpd.opts.max_header_bytes)
		return respond_status(r, 431, "headers_too_large",
				      "the request headers are too large");
	for (i = 0; i < NROUTES; i++) {
		if (!match(routes[i].pattern, r->path, params, pnames))
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
	for (i = 0, np = 0; r->route->pattern[i]; i++)
		np += r->route->pattern[i] == '{';
	/* raw copies: a signed URL is checked before the UUIDs are */
	for (i = 0; i < np && i < 2; i++)
		snprintf(r->params[i], SFS_ID_SIZE, "%s", params[i]);

	if (r->route->scope) {
		if (r->route->signed_url != SIGNED_NO && req_arg(r, "sig")) {
			if (sfs_signed_url_verify(
				    g_httpd.store, r->params[0],
				    r->route->signed_url == SIGNED_LISTENING
					    ? SFS_CONTENT_LISTENING
					    : SFS_CONTENT_ORIGINAL,
				    req_arg(r, "exp"), req_arg(r, "uid"),
				    req_arg(r, "sig"), &r->actor, &e))
				return respond_err(r, &e);
			r->signed_url = 1;
		} else if (authenticate(r, &e)) {
			req_set_header(r, "WWW-Authenticate",
				       "Bearer realm=\"speechfs\"");
			return respond_err(r, &e);
		}
		r->authed = 1;
		if ((r->actor.scopes & r->route->scope) != r->route->scope)
			return respond_errf(r, SFS_FORBIDDEN,
					    "insufficient_scope",
					    "this endpoint requires the scope "
					    "'%s'",
					    sfs_scope_name(r->route->scope));
		wait = limits_take(&r->actor, r->route->upload_limited);
		if (wait > 0) {
			char ra[16];

			snprintf(ra, sizeof(ra), "%d", wait);
			req_set_header(r, "Retry-After", ra);
			return respond_errf(r, SFS_RATE_LIMITED, "rate_limited",
					    "too many requests; retry in %d s",
					    wait);
		}
	}
	for (i = 0; i < np && i < 2; i++) {
		char pn[16];
		const char *pe = strchr(pnames[i], '}');

		snprintf(pn, sizeof(pn), "%.*s", (int)(pe - pnames[i]),
			 pnames[i]);
		if (!sfs_uuid_valid(params[i])) {
			sfs_err_field(&e, pn, "invalid_uuid",
				      "'%.60s' is not a UUID", params[i]);
			sfs_errf(&e, SFS_INVALID, "invalid_request",
				 "path parameter '%s' must be a UUID", pn);
			return respond_err(r, &e);
		}
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

enum MHD_Result httpd_access(void *cls, struct MHD_Connection *conn,
			     const char *url, const char *method,
			     const char *version, const char *upload_data,
			     size_t *upload_data_size, void **con_cls)
{
	struct req *r = *con_cls;
	struct sfs_err e;
	enum MHD_Result ret;

	(void)cls;
	(void)version;
	if (!r) {
		r = req_new(conn, url, method);
		if (!r)
			return MHD_NO;
		*con_cls = r;
		__atomic_add_fetch(&g_httpd.inflight, 1, __ATOMIC_SEQ_CST);
		r->defer = !has_body(r);
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
	if (req_body_finish(r, &e))
		return respond_err(r, &e);
	return r->route->fn(r);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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
	ns = mono_ns() - r->start_ns;
	sfs_info("access", "%s %s %u %" PRId64 " %.1fms %s%s", r->method,
		 r->path, r->status, r->bytes_out, (double)ns / 1e6, r->id,
		 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
	metrics_record(r->route_idx, r->status, ns, r->bytes_in, r->bytes_out);
	req_free(r);
	*con_cls = NULL;
	__atomic_sub_fetch(&g_httpd.inflight, 1, __ATOMIC_SEQ_CST);
}
