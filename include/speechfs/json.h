/*
 * The JSON of the API's objects, made in one place so the REST daemon and
 * the mount's user.speechfs.json can never disagree: field names, types
 * and nullability exactly as the API document; timestamps ISO 8601 UTC
 * with "Z". Functions return new references (json_decref them).
 */
#ifndef SPEECHFS_JSON_H
#define SPEECHFS_JSON_H

#include <jansson.h>
#include <stdint.h>
#include "buf.h"
#include "err.h"
#include "file.h"
#include "query.h"
#include "share.h"

json_t *sfs_json_file(const struct sfs_file *f);
json_t *sfs_json_shared_file(const struct sfs_file *f);
json_t *sfs_json_listening(const struct sfs_listening *la);
json_t *sfs_json_share(const struct sfs_share *sh);
/* The list response; shared selects the shared-with-me shape. */
json_t *sfs_json_file_list(const struct sfs_file_list *l,
			   const struct sfs_query *q, int shared);

/*
 * The same file and list as compact JSON text appended to `out`, the very
 * bytes json_dumps(sfs_json_file(f), JSON_COMPACT) would give, without
 * building jansson objects (the daemon's responses). SFS_NOMEM when out
 * cannot grow (memory or its limit); out may then hold a partial text.
 */
enum sfs_status sfs_json_file_text(const struct sfs_file *f,
				   struct sfs_buf *out) SFS_MUST_CHECK;
enum sfs_status sfs_json_file_list_text(const struct sfs_file_list *l,
					const struct sfs_query *q, int shared,
					struct sfs_buf *out) SFS_MUST_CHECK;
/* "2026-02-25T14:30:00.123Z" into out[32]; "" for 0. */
void sfs_iso8601(int64_t ms, char out[32]);
/*
 * Parse an ISO 8601 date-time (Z or +hh:mm offset, optional fraction) or
 * a date alone (midnight UTC). Returns 0 on success.
 */
int sfs_iso8601_parse(const char *s, int64_t *ms);

#endif
