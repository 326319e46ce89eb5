/* Identity internals shared by accounts (auth.c) and tokens (token.c). */
#ifndef SPEECHFS_AUTH_I_H
#define SPEECHFS_AUTH_I_H

#include "speechfs/auth.h"

struct db;
struct sfs_store;

/*
 * The actor of a user by its (normalised) UUID, scopes left 0.
 * SFS_NOT_FOUND without a message when there is no such user, so each
 * caller can say what that means for it.
 */
enum sfs_status sfsi_auth_load_actor(struct db *d, const char *uuid,
				     struct sfs_actor *out,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * SFS_OK when a tenant with this (normalised) UUID exists, else
 * SFS_NOT_FOUND ("tenant_not_found", with a message) or the database's
 * error.
 */
enum sfs_status sfsi_tenant_exists(struct db *d, const char *uuid,
				   struct sfs_err *e) SFS_MUST_CHECK;

/* A valid UUID in lowercase into out; -1 when in is not a UUID. */
int sfsi_uuid_norm(const char *in, char out[SFS_ID_SIZE]);

/*
 * The known scopes of a comma- or space-separated list; unknown names are
 * ignored (tokens carry scopes of other services too).
 */
unsigned sfsi_scopes_lenient(const char *list);

/* HMAC-SHA256 of msg with the store's secret, lowercase hex into out[65]. */
/* SHA-256 of n bytes into out: 0, or -1 when OpenSSL fails. */
int sfsi_sha256(const void *data, size_t n, unsigned char out[32]);

enum sfs_status sfsi_hmac_sign(struct sfs_store *s, const char *msg,
			       char out[65], struct sfs_err *e) SFS_MUST_CHECK;
/* 1 when hex (any case) is msg's HMAC; compared in constant time. */
int sfsi_hmac_verify(struct sfs_store *s, const char *msg, const char *hex);

/* Give the janitor the chore of forgetting ended sessions (session.c). */
void sfsi_session_install(struct sfs_store *s);

/*
 * The credential generation (keycache.c): changes when anything a cached
 * actor holds may have changed, in any process (on PostgreSQL, once this
 * process has heard of it). 0 without one.
 */
uint64_t sfsi_auth_gen(struct sfs_store *s);
/* After committing such a change (a key revoked, a user's rate). */
void sfsi_auth_gen_bump(struct sfs_store *s);
/* After a commit of this process (db.c's WAL hook), or a write heard. */
void sfsi_data_gen_bump(struct sfs_store *s);
/*
 * PostgreSQL (db_listen.c's listener): live 1 once it hears the store's notices
 * (LISTEN done), 0 when it lost them; both generations move either way,
 * and the caches serve nothing while it is 0. A no-op on SQLite.
 */
void sfsi_gens_live(struct sfs_store *s, int live);
void sfsi_keycache_open(struct sfs_store *s);
void sfsi_keycache_close(struct sfs_store *s);
/* 1 and the actor when `key` was looked up under the current generation. */
int sfsi_keycache_get(struct sfs_store *s, const char *key, size_t len,
		      struct sfs_actor *out);
/* Remember a key's actor, looked up under generation `gen`. */
void sfsi_keycache_put(struct sfs_store *s, const char *key, size_t len,
		       uint64_t gen, const struct sfs_actor *a);

/* SFS_FORBIDDEN unless the actor's token carries the scope. */
enum sfs_status sfsi_need_scope(const struct sfs_actor *a, unsigned scope,
				struct sfs_err *e) SFS_MUST_CHECK;

#endif
