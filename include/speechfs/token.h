/*
 * Tokens made with the store's secret (HMAC-SHA256): HS256 JWTs for
 * `Authorization: Bearer`, and signed URLs that grant reading one file's
 * content or listening audio for a short while without credentials.
 */
#ifndef SPEECHFS_TOKEN_H
#define SPEECHFS_TOKEN_H

#include <stdint.h>
#include "auth.h"
#include "buf.h"
#include "err.h"
#include "file.h"

struct sfs_store;

/*
 * Verify a JWT: HS256 only, constant-time signature compare, exp and nbf
 * checked, sub = user id, scopes from "scope" (space-separated) or
 * "scopes" (array or string). SFS_UNAUTHENTICATED on any failure.
 */
enum sfs_status sfs_auth_jwt(struct sfs_store *s, const char *token,
			     struct sfs_actor *out,
			     struct sfs_err *e) SFS_MUST_CHECK;

/* Mint a JWT for a user (admin CLI, tests). Appends the token to out. */
enum sfs_status sfs_jwt_mint(struct sfs_store *s, const char *user_id,
			     unsigned scopes, int64_t ttl_seconds,
			     struct sfs_buf *out,
			     struct sfs_err *e) SFS_MUST_CHECK;

#define SFS_SIGNED_TTL_DEFAULT 300
#define SFS_SIGNED_TTL_MAX 3600

/* A signed URL's grant: the query parameters exp, uid and sig. */
struct sfs_signed_url {
	char file_id[SFS_ID_SIZE];
	char user_id[SFS_ID_SIZE]; /* uid: whose read access it lends */
	enum sfs_content which;	   /* the content or the listening audio */
	int64_t exp;		   /* expiry, seconds since the epoch */
	char sig[65];		   /* HMAC of all the above, hex */
};

/*
 * Grant reading one file's content (or listening audio) for ttl_seconds
 * (1..SFS_SIGNED_TTL_MAX): the actor must be able to read the file now
 * (sfs_file_get's errors); SFS_INVALID with a field error for a bad ttl.
 */
enum sfs_status sfs_signed_url_make(struct sfs_store *s,
				    const struct sfs_actor *a,
				    const char *file_id, enum sfs_content which,
				    int64_t ttl_seconds,
				    struct sfs_signed_url *out,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Verify a presented grant for file_id and which, from the URL's exp, uid
 * and sig parameters (any may be NULL). On success *out is the granting
 * user with the read scope only (the file's permissions still apply).
 * SFS_UNAUTHENTICATED, type "invalid_signature" (incomplete, forged, or
 * the user is gone) or "signed_url_expired".
 */
enum sfs_status sfs_signed_url_verify(struct sfs_store *s, const char *file_id,
				      enum sfs_content which, const char *exp,
				      const char *uid, const char *sig,
				      struct sfs_actor *out,
				      struct sfs_err *e) SFS_MUST_CHECK;

#endif
