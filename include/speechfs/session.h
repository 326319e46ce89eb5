/*
 * Sign-in sessions (the web page's): an API key is exchanged once for a
 * session token that a browser keeps in a cookie. The token then stands
 * for the key's user and scopes until it has been idle for
 * `session.idle_seconds`, reaches `session.max_seconds` from sign-in, is
 * revoked (sign-out), or its API key is revoked. Tokens are 256 random
 * bits, shown once and stored only as SHA-256 hashes. Each session has a
 * CSRF token derived from its token with the store's secret (HMAC), so it
 * needs no storage and cannot be had without the session token.
 */
#ifndef SPEECHFS_SESSION_H
#define SPEECHFS_SESSION_H

#include <stdint.h>
#include "auth.h"
#include "err.h"

struct sfs_store;

#define SFS_SESSION_TOKEN_SIZE 72 /* "sfss_" + 64 hex + NUL, rounded */
#define SFS_CSRF_SIZE 65	  /* 64 hex + NUL */

struct sfs_session {
	char id[SFS_ID_SIZE]; /* names the session, never authenticates */
	int64_t created_ms;
	int64_t idle_until_ms; /* moves on with use, up to expires_ms */
	int64_t expires_ms;    /* the latest end, fixed at sign-in */
};

/*
 * Sign in with an API key: a new session of the key's user with the key's
 * scopes. The token is written to token_out once; the session into info
 * and the actor it stands for into actor (either may be NULL).
 * SFS_UNAUTHENTICATED for a key that is unknown, malformed or revoked.
 */
enum sfs_status sfs_session_create(struct sfs_store *s, const char *api_key,
				   char token_out[SFS_SESSION_TOKEN_SIZE],
				   struct sfs_session *info,
				   struct sfs_actor *actor,
				   struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The actor of a session token (info may be NULL). Use moves the idle
 * deadline on (a write at most once a minute per session).
 * SFS_UNAUTHENTICATED: "invalid_session" (unknown, malformed, signed out,
 * its key revoked) or "session_expired".
 */
enum sfs_status sfs_auth_session(struct sfs_store *s, const char *token,
				 struct sfs_actor *out,
				 struct sfs_session *info,
				 struct sfs_err *e) SFS_MUST_CHECK;

/* The CSRF token of a session token (whether or not the session lives). */
enum sfs_status sfs_session_csrf(struct sfs_store *s, const char *token,
				 char out[SFS_CSRF_SIZE],
				 struct sfs_err *e) SFS_MUST_CHECK;

/* 1 when csrf is the session token's CSRF token (a constant-time check). */
int sfs_session_csrf_ok(struct sfs_store *s, const char *token,
			const char *csrf);

/*
 * Sign out: the session ends at once. SFS_UNAUTHENTICATED
 * ("invalid_session") for a token that names no live session.
 */
enum sfs_status sfs_session_revoke(struct sfs_store *s, const char *token,
				   struct sfs_err *e) SFS_MUST_CHECK;

#endif
