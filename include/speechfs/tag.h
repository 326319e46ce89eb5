/*
 * Tags: per-tenant display names, unique case-insensitively (the first
 * spelling a tenant used is kept), at most 64 bytes of printable UTF-8
 * with no commas (the mount joins tags with commas), returned sorted.
 */
#ifndef SPEECHFS_TAG_H
#define SPEECHFS_TAG_H

#include <stddef.h>
#include "auth.h"
#include "buf.h"
#include "err.h"

struct sfs_store;

#define SFS_TAG_MAX 64

enum sfs_status sfs_tag_check(const char *tag, const char *field,
			      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Split "a, b,c" into trimmed tags (empty string: no tags).
 * Ownership: *out is a NULL-terminated array; free with sfs_strv_free().
 */
enum sfs_status sfs_tags_split(const char *csv, char ***out, size_t *n,
			       struct sfs_err *e) SFS_MUST_CHECK;
/* Join tags with ',' into out. */
enum sfs_status sfs_tags_join(char *const *tags, size_t n,
			      struct sfs_buf *out) SFS_MUST_CHECK;

void sfs_strv_free(char **v);

#define SFS_TAG_LIST_MAX 1000

/*
 * The tags in use in the actor's tenant (on any file not purged, whoever
 * owns it), for suggestions: those starting with `prefix` (ignoring ASCII
 * case; NULL or "" for all), by name, at most `limit` (1..SFS_TAG_LIST_MAX,
 * else SFS_INVALID). Needs the read scope.
 * Ownership: *out is a NULL-terminated array; free with sfs_strv_free().
 */
enum sfs_status sfs_tag_list(struct sfs_store *s, const struct sfs_actor *a,
			     const char *prefix, size_t limit, char ***out,
			     size_t *n, struct sfs_err *e) SFS_MUST_CHECK;

#endif
