/* Directory bookkeeping inside file transactions. */
#ifndef SPEECHFS_DIR_I_H
#define SPEECHFS_DIR_I_H

#include <stdint.h>
#include "speechfs/err.h"

struct db;
struct sfs_dir_info;

/*
 * A live file entered (delta 1) or left (delta -1) directory `path` of
 * `owner`: adjust the counts of the path and its ancestors, create or
 * drop implicit directory rows, and bump the mtimes of directories whose
 * listing changed.
 */
enum sfs_status sfsi_dir_count(struct db *d, int64_t owner, const char *path,
			       int delta, int64_t now_ns,
			       struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Bump the mtime of one directory (its listing changed): to now_ns, or
 * one nanosecond past its mtime when that is not earlier.
 */
enum sfs_status sfsi_dir_touch(struct db *d, int64_t owner, const char *path,
			       int64_t now_ns,
			       struct sfs_err *e) SFS_MUST_CHECK;

/*
 * sfs_dir_stat of owner's directory `path` on d, inside the caller's
 * transaction.
 */
enum sfs_status sfsi_dir_info(struct db *d, int64_t owner, const char *path,
			      struct sfs_dir_info *out,
			      struct sfs_err *e) SFS_MUST_CHECK;

#endif
