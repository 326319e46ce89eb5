/*
 * Finding people: for the store's operator, the tenants, the users (all,
 * of a tenant, one by id or by name) and a user's API keys; for a user,
 * the users of their own tenant (a directory by name prefix) and a user
 * named by name or id resolved to an id, as sharing needs. User names
 * are unique in a tenant, ignoring case (ASCII letters, as SQLite's
 * NOCASE). The secret of a key is never stored, so never listed.
 */
#ifndef SPEECHFS_PEOPLE_H
#define SPEECHFS_PEOPLE_H

#include <stdint.h>
#include "auth.h"
#include "err.h"

struct sfs_store;

struct sfs_user_info {
	char id[SFS_ID_SIZE];
	char tenant_id[SFS_ID_SIZE];
	char tenant_name[128];
	char name[128];
	int64_t download_bps; /* -1: the daemon's default, 0: unlimited */
	int64_t created_ms;
	int64_t keys; /* API keys not revoked */
};

struct sfs_key_info {
	char id[SFS_ID_SIZE];
	char user_id[SFS_ID_SIZE];
	char label[128]; /* "" when none */
	unsigned scopes; /* enum sfs_scope bits */
	int64_t created_ms;
	int64_t last_used_ms; /* 0: never; to the minute */
	int64_t revoked_ms;   /* 0: valid */
};

/* List callbacks: a non-zero return stops the listing (and is no error). */
typedef int (*sfs_tenant_fn)(void *arg, const struct sfs_tenant_info *t);
typedef int (*sfs_user_fn)(void *arg, const struct sfs_user_info *u);
typedef int (*sfs_key_fn)(void *arg, const struct sfs_key_info *k);

/* Every tenant, oldest first. */
enum sfs_status sfs_tenant_list(struct sfs_store *s, sfs_tenant_fn fn,
				void *arg, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The users of a tenant (tenant_id NULL: of every tenant), by tenant and
 * name. SFS_NOT_FOUND for an unknown tenant.
 */
enum sfs_status sfs_user_list(struct sfs_store *s, const char *tenant_id,
			      sfs_user_fn fn, void *arg,
			      struct sfs_err *e) SFS_MUST_CHECK;

/* One user by id; SFS_NOT_FOUND ("user_not_found") when there is none. */
enum sfs_status sfs_user_get(struct sfs_store *s, const char *user_id,
			     struct sfs_user_info *out,
			     struct sfs_err *e) SFS_MUST_CHECK;

/* One user of a tenant by name, ignoring case; SFS_NOT_FOUND otherwise. */
enum sfs_status sfs_user_find(struct sfs_store *s, const char *tenant_id,
			      const char *name, struct sfs_user_info *out,
			      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A user's API keys, oldest first, revoked ones included (revoked_ms).
 * SFS_NOT_FOUND for an unknown user.
 */
enum sfs_status sfs_key_list(struct sfs_store *s, const char *user_id,
			     sfs_key_fn fn, void *arg,
			     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The users of the actor's own tenant whose names start with prefix
 * (ignoring case; NULL or "" for all), by name, skipping `offset` and at
 * most `limit` (1..1000); *total (may be NULL) gets how many match. Only
 * id and name of the info are filled: a user sees no more of another.
 */
enum sfs_status sfs_user_directory(struct sfs_store *s,
				   const struct sfs_actor *a,
				   const char *prefix, int64_t offset,
				   int64_t limit, sfs_user_fn fn, void *arg,
				   int64_t *total,
				   struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A user of the actor's tenant given by id or by name (ignoring case):
 * its id in id_out. A user of another tenant is not found, as an unknown
 * one (SFS_NOT_FOUND, "user_not_found").
 */
enum sfs_status sfs_user_resolve(struct sfs_store *s, const struct sfs_actor *a,
				 const char *who, char id_out[SFS_ID_SIZE],
				 struct sfs_err *e) SFS_MUST_CHECK;

#endif
