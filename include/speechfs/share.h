/*
 * Direct shares of a file with another user of the same tenant, with VIEW
 * or EDIT permission. Only the owner lists, creates and revokes them.
 */
#ifndef SPEECHFS_SHARE_H
#define SPEECHFS_SHARE_H

#include <stddef.h>
#include <stdint.h>
#include "auth.h"
#include "err.h"
#include "file.h"

struct sfs_store;

struct sfs_share {
	char id[SFS_ID_SIZE];
	char file_id[SFS_ID_SIZE];
	char user_id[SFS_ID_SIZE];
	enum sfs_perm perm; /* VIEW or EDIT */
	char created_by[SFS_ID_SIZE];
	int64_t created_at;
};

/*
 * The permissions a share can grant: VIEW or EDIT (sfs_perm_parse of the
 * API's names gives one of them or -1). SFS_INVALID with a field error
 * on "permission" for anything else.
 */
enum sfs_status sfs_share_perm_check(int perm,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Create or update the share of file_id with user_id. *created says which
 * (1: new, 0: permission updated). SFS_INVALID for sharing with oneself or
 * an unknown user or a user of another tenant (field "userId").
 */
enum sfs_status sfs_share_put(struct sfs_store *s, const struct sfs_actor *a,
			      const char *file_id, const char *user_id,
			      enum sfs_perm perm, struct sfs_share *out,
			      int *created, struct sfs_err *e) SFS_MUST_CHECK;

/* Ownership: *out is an array of *n shares, free() it. */
enum sfs_status sfs_share_list(struct sfs_store *s, const struct sfs_actor *a,
			       const char *file_id, struct sfs_share **out,
			       size_t *n, struct sfs_err *e) SFS_MUST_CHECK;

/* SFS_NOT_FOUND when the share does not exist on that file. */
enum sfs_status sfs_share_revoke(struct sfs_store *s, const struct sfs_actor *a,
				 const char *file_id, const char *share_id,
				 struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_share_revoke_user(struct sfs_store *s,
				      const struct sfs_actor *a,
				      const char *file_id, const char *user_id,
				      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The name of a user of the actor's tenant (the owners under the mount's
 * /.shared/), at most size - 1 bytes; SFS_NOT_FOUND for anyone else.
 */
enum sfs_status sfs_share_user_name(struct sfs_store *s,
				    const struct sfs_actor *a,
				    const char *user_id, char *name,
				    size_t size,
				    struct sfs_err *e) SFS_MUST_CHECK;

#endif
