/*
 * Virtual directories of one user: implicit ones (a path holding a live
 * file at any depth) and explicit empty ones (made by mkdir). A directory
 * can be renamed - every descendant moves in one transaction - and removed
 * when empty.
 */
#ifndef SPEECHFS_DIR_H
#define SPEECHFS_DIR_H

#include <stddef.h>
#include <stdint.h>
#include "auth.h"
#include "err.h"

struct sfs_store;

struct sfs_dir_info {
	int64_t ino; /* stable per (owner, path) */
	int64_t mtime_ns;
	int64_t nfiles; /* live files at any depth */
	int64_t nsub;	/* direct subdirectories */
	int explicit_;	/* made by mkdir */
};

/* Does `path` exist for the actor? SFS_NOT_FOUND otherwise. "/" always. */
enum sfs_status sfs_dir_stat(struct sfs_store *s, const struct sfs_actor *a,
			     const char *path, struct sfs_dir_info *out,
			     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The actor's directory with row id `ino` (sfs_dir_info.ino): its path
 * into path[size] ("/a/b/") and its info. SFS_NOT_FOUND when there is no
 * such directory of the actor (any more: ids stay across renames).
 */
enum sfs_status sfs_dir_stat_ino(struct sfs_store *s, const struct sfs_actor *a,
				 int64_t ino, char *path, size_t size,
				 struct sfs_dir_info *out,
				 struct sfs_err *e) SFS_MUST_CHECK;

/* Make an explicit directory (parents too). SFS_CONFLICT if it exists. */
enum sfs_status sfs_dir_make(struct sfs_store *s, const struct sfs_actor *a,
			     const char *path,
			     struct sfs_err *e) SFS_MUST_CHECK;

/* Remove an empty directory. SFS_CONFLICT when not empty. */
enum sfs_status sfs_dir_remove(struct sfs_store *s, const struct sfs_actor *a,
			       const char *path,
			       struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Rename `from` to `to` (both directories): every file and directory below
 * moves in one transaction. SFS_CONFLICT when `to` exists and is not empty
 * or `to` is below `from`.
 */
enum sfs_status sfs_dir_rename(struct sfs_store *s, const struct sfs_actor *a,
			       const char *from, const char *to,
			       struct sfs_err *e) SFS_MUST_CHECK;

enum sfs_status sfs_dir_set_mtime(struct sfs_store *s,
				  const struct sfs_actor *a, const char *path,
				  int64_t mtime_ns,
				  struct sfs_err *e) SFS_MUST_CHECK;

/* Names of the direct subdirectories of `path`, sorted (callback each). */
enum sfs_status sfs_dir_subdirs(struct sfs_store *s, const struct sfs_actor *a,
				const char *path,
				void (*fn)(void *arg, const char *name,
					   const struct sfs_dir_info *d),
				void *arg, struct sfs_err *e) SFS_MUST_CHECK;

#endif
