/*
 * Extra attributes of a file, stored and returned as given (the mount's
 * user.* attributes that are not the file model's own), so cp -a,
 * rsync -X and tar --xattrs round-trip. Reading needs read access; setting
 * and removing need EDIT (or ownership) and a live file.
 */
#ifndef SPEECHFS_XATTR_H
#define SPEECHFS_XATTR_H

#include <stddef.h>
#include <stdint.h>
#include "auth.h"
#include "buf.h"
#include "err.h"

struct sfs_store;

#define SFS_XATTR_NAME_MAX 255
#define SFS_XATTR_VALUE_MAX 65536
#define SFS_XATTR_PER_FILE 128

enum sfs_xattr_flags {
	SFS_XATTR_CREATE = 1 << 0, /* SFS_CONFLICT if it exists */
	SFS_XATTR_REPLACE = 1 << 1 /* SFS_NOT_FOUND if it does not */
};

/* The value into out (reset first). SFS_NOT_FOUND: no such attribute. */
enum sfs_status sfs_xattr_get(struct sfs_store *s, const struct sfs_actor *a,
			      const char *file_id, const char *name,
			      struct sfs_buf *out,
			      struct sfs_err *e) SFS_MUST_CHECK;

/* SFS_INVALID for a bad name, SFS_TOO_LARGE past the value/count limits. */
enum sfs_status sfs_xattr_set(struct sfs_store *s, const struct sfs_actor *a,
			      const char *file_id, const char *name,
			      const void *value, size_t len, unsigned flags,
			      struct sfs_err *e) SFS_MUST_CHECK;

enum sfs_status sfs_xattr_remove(struct sfs_store *s, const struct sfs_actor *a,
				 const char *file_id, const char *name,
				 struct sfs_err *e) SFS_MUST_CHECK;

/* The names, each NUL-terminated, appended to out in name order. */
enum sfs_status sfs_xattr_list(struct sfs_store *s, const struct sfs_actor *a,
			       const char *file_id, struct sfs_buf *out,
			       struct sfs_err *e) SFS_MUST_CHECK;

#endif
