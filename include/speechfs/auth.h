/*
 * Identity: tenants, users, API keys and JWTs, and the actor that every
 * core call on user data takes. API keys are 256 random bits shown once and
 * stored as a SHA-256 hash; JWTs are HS256 only, signed with a per-store
 * secret made at init.
 */
#ifndef SPEECHFS_AUTH_H
#define SPEECHFS_AUTH_H

#include <stdint.h>
#include "buf.h"
#include "err.h"

struct sfs_store;

#define SFS_UUID_LEN 36
#define SFS_ID_SIZE (SFS_UUID_LEN + 1)

enum sfs_scope {
	SFS_SCOPE_READ = 1 << 0,   /* speech:files:read */
	SFS_SCOPE_WRITE = 1 << 1,  /* speech:files:write */
	SFS_SCOPE_DELETE = 1 << 2, /* speech:files:delete */
	SFS_SCOPE_SHARE = 1 << 3,  /* speech:files:share */
	SFS_SCOPE_ALL = 0xf
};

/* Who is calling: handed to every core call on user data. */
struct sfs_actor {
	int64_t user; /* internal row ids */
	int64_t tenant;
	char user_id[SFS_ID_SIZE]; /* UUIDs */
	char tenant_id[SFS_ID_SIZE];
	unsigned scopes;      /* enum sfs_scope bits */
	int64_t download_bps; /* effective rate, 0 = unlimited */
};

/* "speech:files:read" -> SFS_SCOPE_READ; 0 when unknown. */
unsigned sfs_scope_parse(const char *name);
/* Parse "read,write" or "speech:files:read speech:files:write". */
enum sfs_status sfs_scopes_parse(const char *list, unsigned *out,
				 struct sfs_err *e) SFS_MUST_CHECK;
const char *sfs_scope_name(unsigned one_scope);

/* A UUID is 36 characters of canonical 8-4-4-4-12 lowercase-able hex. */
int sfs_uuid_valid(const char *s);
void sfs_uuid_new(char out[SFS_ID_SIZE]);
/*
 * The id of the file that user owner makes with POST /files?idKey=key
 * (both UUIDs, any case): a version 8 UUID from SHA-256 of the two, so a
 * client can know it before the file is made, and no two owners' keys
 * give one id. 0, or -1 when owner or key is no UUID.
 */
int sfs_uuid_derive(const char *owner, const char *key, char out[SFS_ID_SIZE]);

struct sfs_tenant_info {
	char id[SFS_ID_SIZE];
	char name[128];
	int64_t max_bytes; /* 0 = unlimited */
	int64_t max_files; /* 0 = unlimited */
	int64_t used_bytes;
	int64_t used_files;
	int64_t users;
};

enum sfs_status sfs_tenant_create(struct sfs_store *s, const char *name,
				  int64_t max_bytes, int64_t max_files,
				  char id_out[SFS_ID_SIZE],
				  struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_tenant_set_quota(struct sfs_store *s, const char *id,
				     int64_t max_bytes, int64_t max_files,
				     struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_tenant_get(struct sfs_store *s, const char *id,
			       struct sfs_tenant_info *out,
			       struct sfs_err *e) SFS_MUST_CHECK;

/*
 * download_bps: -1 = the daemon's default, 0 = unlimited. A name another
 * user of the tenant has (ignoring case) is SFS_CONFLICT ("user_exists").
 */
enum sfs_status sfs_user_create(struct sfs_store *s, const char *tenant_id,
				const char *name, int64_t download_bps,
				char id_out[SFS_ID_SIZE],
				struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_user_set_rate(struct sfs_store *s, const char *user_id,
				  int64_t download_bps,
				  struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The actor of a user with the given scopes (a mount acts with all).
 * SFS_NOT_FOUND for an unknown user.
 */
enum sfs_status sfs_auth_user(struct sfs_store *s, const char *user_id,
			      unsigned scopes, struct sfs_actor *out,
			      struct sfs_err *e) SFS_MUST_CHECK;

#define SFS_API_KEY_SIZE 72 /* "sfs_" + 64 hex + NUL, rounded */

/*
 * Make an API key for a user. The key is written to key_out once and is
 * never retrievable again; only its SHA-256 is stored.
 */
enum sfs_status sfs_key_create(struct sfs_store *s, const char *user_id,
			       unsigned scopes, const char *label,
			       char key_out[SFS_API_KEY_SIZE],
			       char key_id_out[SFS_ID_SIZE],
			       struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_key_revoke(struct sfs_store *s, const char *key_id,
			       struct sfs_err *e) SFS_MUST_CHECK;

/*
 * SFS_UNAUTHENTICATED for an unknown or revoked key. A key's last use is
 * recorded to the minute (one write a minute at most, best effort).
 */
enum sfs_status sfs_auth_api_key(struct sfs_store *s, const char *key,
				 struct sfs_actor *out,
				 struct sfs_err *e) SFS_MUST_CHECK;

#endif
