/*
 * Cross-origin requests from browsers (the Fetch standard's CORS
 * protocol). With http.cors_origins set, an answer to a request whose
 * Origin is listed carries Access-Control-Allow-Origin and the headers a
 * script may read; a preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered for every route without
 * credentials. Without the key no CORS header is ever sent. Credentials
 * are headers (X-API-Key, Authorization), never cookies, so
 * Access-Control-Allow-Credentials is not needed.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "httpd.h"
#include "speechfs/banned.h"

#define CORS_ALLOW_HEADERS                                                     \
	"X-API-Key, Authorization, Content-Type, Range, If-None-Match, "       \
	"If-Modified-Since, If-Range, X-Speechfs-Content-Crc32c"
#define CORS_EXPOSE_HEADERS                                                    \
	"X-Request-Id, ETag, Last-Modified, Content-Range, "                   \
	"Content-Disposition, Accept-Ranges, Retry-After, Allow, "             \
	"WWW-Authenticate, X-Speechfs-Content-Crc32c, X-Speechfs-Directory"
#define CORS_MAX_AGE "600"

/* Is `origin` in the list (comma or space separated, or "*")? */
static int listed(const char *list, const char *origin)
{
	const char *p = list;
	size_t n, olen = strlen(origin);

	while (*p) {
		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n == 1 && *p == '*')
			return 1;
		if (n && n == olen && strncasecmp(p, origin, n) == 0)
			return 1;
		p += n;
	}
	return 0;
}

/*
 * A list with "*" in it allows every origin, whatever else it names: the
 * answer is then "*", never the request's Origin echoed back (which a long
 * Origin would make a header of any size).
 */
static int wildcard(void)
{
	return listed(g_httpd.opts.cors_origins, "*");
}

/* The request's Origin if CORS is on and it is allowed, else NULL. */
static const char *allowed_origin(struct req *r)
{
	const char *origin;

	if (!g_httpd.opts.cors_origins[0])
		return NULL;
	origin = req_header(r, "Origin");
	if (!origin || !*origin || !listed(g_httpd.opts.cors_origins, origin))
		return NULL;
	return origin;
}

void cors_headers(struct req *r)
{
	const char *origin = allowed_origin(r);

	if (g_httpd.opts.cors_origins[0] && !wildcard())
		req_set_header(r, "Vary", "Origin");
	if (!origin)
		return;
	req_set_header(r, "Access-Control-Allow-Origin",
		       wildcard() ? "*" : origin);
	req_set_header(r, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
}

/* Is method (a preflight's) one of the comma-separated `allow`? */
static int method_in(const char *method, const char *allow)
{
	size_t n = strlen(method);
	const char *p = allow;

	if (strcmp(method, "HEAD") == 0)
		method = "GET", n = 3;
	while ((p = strstr(p, method))) {
		if ((p == allow || p[-1] == ' ') && (p[n] == ',' || !p[n]))
			return 1;
		p += n;
	}
	return 0;
}

enum MHD_Result cors_options(struct req *r, const char *allow)
{
	const char *want = req_header(r, "Access-Control-Request-Method");
	char methods[160];

	snprintf(methods, sizeof(methods), "%s, OPTIONS", allow);
	if (!want || !req_header(r, "Origin")) {
		/* a plain OPTIONS: what the resource supports */
		req_set_header(r, "Allow", methods);
		return respond_empty(r, 204);
	}
	if (!allowed_origin(r))
		return respond_status(r, 403, "cors_origin_not_allowed",
				      "this origin may not call the API "
				      "(http.cors_origins)");
	if (!method_in(want, allow)) {
		req_set_header(r, "Allow", methods);
		return respond_status(r, 405, "method_not_allowed",
				      "the method is not allowed on this "
				      "resource");
	}
	req_set_header(r, "Access-Control-Allow-Methods", methods);
	req_set_header(r, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
	req_set_header(r, "Access-Control-Max-Age", CORS_MAX_AGE);
	if (!wildcard())
		req_set_header(r, "Vary",
			       "Origin, Access-Control-Request-Method, "
			       "Access-Control-Request-Headers");
	return respond_empty(r, 204);
}
