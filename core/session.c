/*
 * Sign-in sessions: an API key exchanged for a random token kept by a
 * browser, stored as its SHA-256 hash, tied to the key (revoking the key
 * ends its sessions), with an idle and an absolute deadline; the CSRF
 * token is an HMAC of the session token, and the janitor forgets sessions
 * that have ended.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "job_i.h"
#include "speechfs/log.h"
#include "speechfs/session.h"
#include "store_i.h"
#include "util_i.h"

#define TOKEN_PREFIX "sfss_"
#define TOKEN_PREFIX_LEN 5
#define TOKEN_RAW 32
#define TOKEN_LEN (TOKEN_PREFIX_LEN + 2 * TOKEN_RAW)
#define TOUCH_MS 60000 /* the idle deadline moves at most this often */

static int token_format_ok(const char *t)
{
	size_t i;

	if (!t || strncmp(t, TOKEN_PREFIX, TOKEN_PREFIX_LEN))
		return 0;
	for (i = TOKEN_PREFIX_LEN; i < TOKEN_LEN; i++)
		if (!((t[i] >= '0' && t[i] <= '9') ||
		      (t[i] >= 'a' && t[i] <= 'f')))
			return 0;
	return t[TOKEN_LEN] == '\0';
}

static enum sfs_status invalid(struct sfs_err *e, const char *why)
{
	sfs_debug("session", "refused: %s", why);
	return sfs_errf(e, SFS_UNAUTHENTICATED, SFS_R_INVALID_SESSION, "%s",
			why);
}

/* A well-formed token's hash (the session row's key). */
static enum sfs_status token_hash(const char *token, unsigned char hash[32],
				  struct sfs_err *e)
{
	if (!token_format_ok(token))
		return invalid(e, "invalid session");
	if (sfsi_sha256(token, TOKEN_LEN, hash))
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot hash a token");
	return SFS_OK;
}

enum sfs_status sfs_session_create(struct sfs_store *s, const char *api_key,
				   char token_out[SFS_SESSION_TOKEN_SIZE],
				   struct sfs_session *info,
				   struct sfs_actor *actor, struct sfs_err *e)
{
	unsigned char raw[TOKEN_RAW], hash[32], khash[32];
	char token[SFS_SESSION_TOKEN_SIZE];
	struct sfs_session ses;
	struct sfs_actor a;
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t now = sfs_now_ms();

	memset(&ses, 0, sizeof(ses));
	ret = sfs_auth_api_key(s, api_key, &a, e);
	if (ret)
		goto out;
	if (sfsi_random(raw, sizeof(raw)) ||
	    sfsi_sha256(api_key, strlen(api_key), khash)) {
		sfs_error("session", "no randomness or hash for a session");
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot make a session");
		goto out;
	}
	memcpy(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
	sfsi_hex(raw, sizeof(raw), token + TOKEN_PREFIX_LEN);
	if (sfsi_sha256(token, TOKEN_LEN, hash)) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot make a session");
		goto out;
	}
	sfs_uuid_new(ses.id);
	ses.created_ms = now;
	ses.expires_ms = now + s->cfg.session_max_s * 1000;
	ses.idle_until_ms = now + s->cfg.session_idle_s * 1000;
	if (ses.idle_until_ms > ses.expires_ms)
		ses.idle_until_ms = ses.expires_ms;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	/* the key as it is now: revoked meanwhile, no session */
	st = sfsi_db_prep(d,
			  "INSERT INTO session(uuid, hash, key_id, created_at,"
			  " idle_until, expires_at) SELECT ?1, ?2, id, ?3,"
			  " ?4, ?5 FROM api_key WHERE hash = ?6"
			  " AND revoked_at IS NULL",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_text(st, 1, ses.id);
	sfsi_db_bind_blob(st, 2, hash, sizeof(hash));
	sfsi_db_bind_int(st, 3, now);
	sfsi_db_bind_int(st, 4, ses.idle_until_ms);
	sfsi_db_bind_int(st, 5, ses.expires_ms);
	sfsi_db_bind_blob(st, 6, khash, sizeof(khash));
	ret = sfsi_db_run(st, e);
	if (ret)
		goto out;
	if (sfsi_db_changes(d) != 1) {
		ret = sfs_errf(e, SFS_UNAUTHENTICATED, SFS_R_NONE,
			       "API key revoked");
		goto out;
	}
	sfs_info("session", "user %s signed in (session %s)", a.user_id,
		 ses.id);
	memcpy(token_out, token, TOKEN_LEN + 1);
	if (info)
		*info = ses;
	if (actor)
		*actor = a;
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(token, sizeof(token));
	sfsi_db_put(d);
	return ret;
}

/* Move the idle deadline on, at most once a minute; never a refusal. */
static void touch(struct db *d, int64_t row, int64_t idle_until,
		  int64_t expires, int64_t idle_ms, int64_t now)
{
	struct db_stmt *st;
	int64_t next = now + idle_ms < expires ? now + idle_ms : expires;

	if (next - idle_until < TOUCH_MS)
		return;
	st = sfsi_db_prep(d,
			  "UPDATE session SET idle_until = ?2 WHERE id = ?1"
			  " AND idle_until < ?2",
			  NULL);
	if (!st)
		return;
	sfsi_db_bind_int(st, 1, row);
	sfsi_db_bind_int(st, 2, next);
	if (sfsi_db_run(st, NULL))
		sfs_debug("session", "could not move a session's deadline");
}

enum sfs_status sfs_auth_session(struct sfs_store *s, const char *token,
				 struct sfs_actor *out,
				 struct sfs_session *info, struct sfs_err *e)
{
	unsigned char hash[32];
	struct sfs_session ses;
	struct db *d = NULL;
	struct db_stmt *st = NULL;
	enum sfs_status ret;
	int64_t now = sfs_now_ms(), row;
	int rc;

	memset(out, 0, sizeof(*out));
	ret = token_hash(token, hash, e);
	if (ret)
		return ret;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "SELECT s.id, s.uuid, s.created_at, s.idle_until,"
			  " s.expires_at, s.revoked_at, k.revoked_at,"
			  " k.scopes, u.id, u.uuid, t.id, t.uuid,"
			  " u.download_bps FROM session s"
			  " JOIN api_key k ON k.id = s.key_id"
			  " JOIN user u ON u.id = k.user_id"
			  " JOIN tenant t ON t.id = u.tenant_id"
			  " WHERE s.hash = ?1",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_blob(st, 1, hash, sizeof(hash));
	rc = sfsi_db_step(st, e);
	if (rc < 0) {
		ret = SFS_IO;
		goto out;
	}
	if (rc == 0 || !sfsi_db_col_null(st, 5)) {
		ret = invalid(e, rc ? "signed out" : "invalid session");
		goto out;
	}
	if (!sfsi_db_col_null(st, 6)) {
		ret = invalid(e, "the session's API key was revoked");
		goto out;
	}
	row = sfsi_db_col_int(st, 0);
	sfs_strlcpy(ses.id, sfsi_db_col_text(st, 1), sizeof(ses.id));
	ses.created_ms = sfsi_db_col_int(st, 2);
	ses.idle_until_ms = sfsi_db_col_int(st, 3);
	ses.expires_ms = sfsi_db_col_int(st, 4);
	if (now >= ses.idle_until_ms || now >= ses.expires_ms) {
		ret = sfs_errf(e, SFS_UNAUTHENTICATED, SFS_R_SESSION_EXPIRED,
			       "the session has expired: sign in again");
		goto out;
	}
	out->scopes = (unsigned)sfsi_db_col_int(st, 7) & SFS_SCOPE_ALL;
	out->user = sfsi_db_col_int(st, 8);
	sfs_strlcpy(out->user_id, sfsi_db_col_text(st, 9),
		    sizeof(out->user_id));
	out->tenant = sfsi_db_col_int(st, 10);
	sfs_strlcpy(out->tenant_id, sfsi_db_col_text(st, 11),
		    sizeof(out->tenant_id));
	out->download_bps = sfsi_db_col_int(st, 12);
	sfsi_db_reset(st);
	st = NULL;
	touch(d, row, ses.idle_until_ms, ses.expires_ms,
	      s->cfg.session_idle_s * 1000, now);
	if (ses.idle_until_ms < now + s->cfg.session_idle_s * 1000)
		ses.idle_until_ms =
			now + s->cfg.session_idle_s * 1000 < ses.expires_ms
				? now + s->cfg.session_idle_s * 1000
				: ses.expires_ms;
	if (info)
		*info = ses;
out:
	if (ret)
		memset(out, 0, sizeof(*out));
	sfsi_db_reset(st);
	sfsi_db_put(d);
	return ret;
}

static void csrf_msg(const char *token, char *msg, size_t n)
{
	snprintf(msg, n, "csrf|%s", token);
}

enum sfs_status sfs_session_csrf(struct sfs_store *s, const char *token,
				 char out[SFS_CSRF_SIZE], struct sfs_err *e)
{
	char msg[SFS_SESSION_TOKEN_SIZE + 8];

	if (!token_format_ok(token))
		return invalid(e, "invalid session");
	csrf_msg(token, msg, sizeof(msg));
	return sfsi_hmac_sign(s, msg, out, e);
}

int sfs_session_csrf_ok(struct sfs_store *s, const char *token,
			const char *csrf)
{
	char msg[SFS_SESSION_TOKEN_SIZE + 8];

	if (!token_format_ok(token) || !csrf)
		return 0;
	csrf_msg(token, msg, sizeof(msg));
	return sfsi_hmac_verify(s, msg, csrf);
}

enum sfs_status sfs_session_revoke(struct sfs_store *s, const char *token,
				   struct sfs_err *e)
{
	unsigned char hash[32];
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;

	ret = token_hash(token, hash, e);
	if (ret)
		return ret;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "UPDATE session SET revoked_at = ?2 WHERE hash = ?1"
			  " AND revoked_at IS NULL",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_blob(st, 1, hash, sizeof(hash));
	sfsi_db_bind_int(st, 2, sfs_now_ms());
	ret = sfsi_db_run(st, e);
	if (!ret && sfsi_db_changes(d) != 1)
		ret = invalid(e, "no such session");
	if (!ret)
		sfs_info("session", "signed out");
out:
	sfsi_db_put(d);
	return ret;
}

/*
 * The janitor forgets sessions a day after they ended (kept that long so
 * a refused cookie still says why: signed out or expired).
 */
static void prune_sessions(struct sfs_store *s)
{
	struct db *d = NULL;
	struct db_stmt *st;
	struct sfs_err e;
	enum sfs_status ret;
	int64_t before = sfs_now_ms() - 24 * 3600 * 1000;

	sfs_err_init(&e);
	ret = sfsi_db_get(s, &d, &e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "DELETE FROM session WHERE expires_at < ?1"
			  " OR idle_until < ?1 OR revoked_at < ?1",
			  &e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, before);
	ret = sfsi_db_run(st, &e);
out:
	if (ret)
		sfs_warn("janitor", "cannot forget ended sessions: %s",
			 e.message);
	sfsi_db_put(d);
}

void sfsi_session_install(struct sfs_store *s)
{
	sfsi_janitor_add(s, prune_sessions);
}
