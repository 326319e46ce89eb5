/*
 * Virtual directory paths ("S3-key style"): the one validator and
 * normaliser that every path of the API and the mount passes through.
 * A valid path starts and ends with '/', has no empty, "." or ".."
 * segment, no control character or NUL, is valid UTF-8, and is bounded in
 * length and depth. "/" is the root.
 */
#ifndef SPEECHFS_VPATH_H
#define SPEECHFS_VPATH_H

#include <stddef.h>
#include "buf.h"
#include "err.h"

#define SFS_VPATH_MAX 1024  /* bytes, including both slashes */
#define SFS_VPATH_DEPTH 32  /* segments */
#define SFS_SEGMENT_MAX 255 /* bytes of one segment */

/*
 * Validate `in`; on success write the normalised path to out (reset first).
 * Normalisation is limited to what is unambiguous: a missing trailing '/'
 * is NOT added (that is an error the user should see). `field` names the
 * field in validation errors.
 */
enum sfs_status sfs_vpath_norm(const char *in, const char *field,
			       struct sfs_buf *out,
			       struct sfs_err *e) SFS_MUST_CHECK;

/* Validate a whole path in place (no copy). */
enum sfs_status sfs_vpath_check(const char *in, const char *field,
				struct sfs_err *e) SFS_MUST_CHECK;

/* Validate one segment (a directory or entry name). */
enum sfs_status sfs_segment_check(const char *seg, size_t len,
				  const char *field,
				  struct sfs_err *e) SFS_MUST_CHECK;

/* Is `s` valid UTF-8 (no overlongs, no surrogates)? */
int sfs_utf8_valid(const char *s, size_t len);

/* "/a/b/" -> "/a/", "/" -> "/" (parent written to out). */
enum sfs_status sfs_vpath_parent(const char *path,
				 struct sfs_buf *out) SFS_MUST_CHECK;

/* Last segment of "/a/b/" is "b" (pointer into path, length in *len). */
const char *sfs_vpath_base(const char *path, size_t *len);

/* Is `path` equal to or below `dir`? ("/a/b/" is below "/a/"). */
int sfs_vpath_under(const char *path, const char *dir);

#endif
