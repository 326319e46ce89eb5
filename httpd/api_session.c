/*
 * Sign-in sessions for the web page (an extension of the seed's API): an
 * API key sent once in X-API-Key is exchanged for a session cookie
 * (HttpOnly, SameSite=Strict, Secure behind TLS); requests with the
 * cookie act as the key's user, and unsafe methods must also carry the
 * session's CSRF token in X-CSRF-Token. GET shows the session and its
 * CSRF token; DELETE signs out. Core keeps the sessions (session.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "httpd.h"
#include "speechfs/json.h"
#include "speechfs/session.h"
#include "speechfs/banned.h"

#define COOKIE "sfs_session"
#define CSRF_HEADER "X-CSRF-Token"

/*
 * Secure only where the browser reached us over TLS: a reverse proxy in
 * front says so in X-Forwarded-Proto or Forwarded (a client lying about it
 * only makes its own cookie unusable over plain HTTP).
 */
static int behind_tls(struct req *r)
{
	const char *xf = req_header(r, "X-Forwarded-Proto");
	const char *fw = req_header(r, "Forwarded");

	if (xf && strncasecmp(xf, "https", 5) == 0 &&
	    (xf[5] == '\0' || xf[5] == ',' || xf[5] == ' '))
		return 1;
	return fw && strcasestr(fw, "proto=https") != NULL;
}

static void set_cookie(struct req *r, const char *token, int64_t max_age)
{
	char v[160];

	snprintf(v, sizeof(v),
		 COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; "
			"Max-Age=%lld%s",
		 token, (long long)max_age, behind_tls(r) ? "; Secure" : "");
	req_set_header(r, "Set-Cookie", v);
}

const char *httpd_session_cookie(struct req *r)
{
	return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, COOKIE);
}

static int unsafe_method(const char *m)
{
	return strcmp(m, "GET") && strcmp(m, "HEAD") && strcmp(m, "OPTIONS");
}

enum sfs_status httpd_session_auth(struct req *r, const char *token,
				   struct sfs_err *e)
{
	enum sfs_status st;

	st = sfs_auth_session(g_httpd.store, token, &r->actor, NULL, e);
	if (st == SFS_UNAUTHENTICATED) {
		set_cookie(r, "", 0); /* the browser forgets a dead cookie */
		return st;
	}
	if (st)
		return st;
	if (unsafe_method(r->method) &&
	    !sfs_session_csrf_ok(g_httpd.store, token,
				 req_header(r, CSRF_HEADER)))
		return sfs_errf(e, SFS_FORBIDDEN, SFS_R_CSRF_FAILED,
				"a request that changes something needs the "
				"session's " CSRF_HEADER " header");
	r->by_session = 1;
	return SFS_OK;
}

static json_t *scopes_json(unsigned scopes)
{
	json_t *a = json_array();
	unsigned bit;

	for (bit = 1; a && bit <= SFS_SCOPE_ALL; bit <<= 1)
		if (scopes & bit)
			json_array_append_new(a,
					      json_string(sfs_scope_name(bit)));
	return a;
}

static enum MHD_Result session_json(struct req *r, unsigned status,
				    const char *token,
				    const struct sfs_session *ses,
				    const struct sfs_actor *a)
{
	char csrf[SFS_CSRF_SIZE], created[32], expires[32], idle[32];
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_session_csrf(g_httpd.store, token, csrf, &e))
		return respond_err(r, &e);
	sfs_iso8601(ses->created_ms, created);
	sfs_iso8601(ses->expires_ms, expires);
	sfs_iso8601(ses->idle_until_ms, idle);
	return respond_json(
		r, status,
		json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s}", "id",
			  ses->id, "userId", a->user_id, "tenantId",
			  a->tenant_id, "scopes", scopes_json(a->scopes),
			  "createdAt", created, "expiresAt", expires,
			  "idleExpiresAt", idle, "csrfToken", csrf));
}

/* POST: the key in X-API-Key (and nothing else) for a new session. */
enum MHD_Result api_session_create(struct req *r)
{
	const struct sockaddr *peer = httpd_peer(r);
	const char *key = req_header(r, "X-API-Key");
	char token[SFS_SESSION_TOKEN_SIZE], ra[16];
	struct sfs_session ses;
	struct sfs_err e;
	int wait;

	sfs_err_init(&e);
	if (req_header(r, "Authorization"))
		return respond_errf(r, SFS_INVALID, SFS_R_AMBIGUOUS_CREDENTIALS,
				    "sign in with an X-API-Key header alone");
	wait = limits_auth_wait(peer);
	if (wait > 0) {
		snprintf(ra, sizeof(ra), "%d", wait);
		req_set_header(r, "Retry-After", ra);
		return respond_errf(r, SFS_RATE_LIMITED,
				    SFS_R_TOO_MANY_FAILURES,
				    "too many failed authentications from "
				    "this address; retry in %d s",
				    wait);
	}
	if (!key) {
		req_set_header(r, "WWW-Authenticate",
			       "Bearer realm=\"speechfs\"");
		return respond_errf(r, SFS_UNAUTHENTICATED,
				    SFS_R_UNAUTHENTICATED,
				    "sign in with an API key in the X-API-Key "
				    "header");
	}
	if (sfs_session_create(g_httpd.store, key, token, &ses, &r->actor,
			       &e)) {
		if (e.status == SFS_UNAUTHENTICATED)
			limits_auth_failed(peer);
		return respond_err(r, &e);
	}
	r->authed = 1;
	set_cookie(r, token, (ses.expires_ms - ses.created_ms + 999) / 1000);
	return session_json(r, 201, token, &ses, &r->actor);
}

/* The cookie's live session, or the answer (401) was queued. */
static int cookie_session(struct req *r, const char **token,
			  struct sfs_session *ses, enum MHD_Result *ret)
{
	struct sfs_err e;

	sfs_err_init(&e);
	*token = httpd_session_cookie(r);
	if (!*token) {
		*ret = respond_errf(r, SFS_UNAUTHENTICATED,
				    SFS_R_INVALID_SESSION,
				    "not signed in: no session cookie");
		return -1;
	}
	if (sfs_auth_session(g_httpd.store, *token, &r->actor, ses, &e)) {
		if (e.status == SFS_UNAUTHENTICATED)
			set_cookie(r, "", 0);
		*ret = respond_err(r, &e);
		return -1;
	}
	r->authed = 1;
	return 0;
}

enum MHD_Result api_session_get(struct req *r)
{
	struct sfs_session ses;
	const char *token;
	enum MHD_Result ret;

	if (cookie_session(r, &token, &ses, &ret))
		return ret;
	return session_json(r, 200, token, &ses, &r->actor);
}

enum MHD_Result api_session_delete(struct req *r)
{
	struct sfs_session ses;
	struct sfs_err e;
	const char *token;
	enum MHD_Result ret;

	sfs_err_init(&e);
	if (cookie_session(r, &token, &ses, &ret))
		return ret;
	if (!sfs_session_csrf_ok(g_httpd.store, token,
				 req_header(r, CSRF_HEADER)))
		return respond_errf(r, SFS_FORBIDDEN, SFS_R_CSRF_FAILED,
				    "signing out needs the session's "
				    "X-CSRF-Token header");
	if (sfs_session_revoke(g_httpd.store, token, &e))
		return respond_err(r, &e);
	set_cookie(r, "", 0);
	return respond_empty(r, 204);
}
