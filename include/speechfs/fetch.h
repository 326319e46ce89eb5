/*
 * URI import transport: downloads an http, https or s3 URI into a stage
 * (blob.h) with hard limits on size, time and redirects, and refuses to
 * connect to loopback, private, link-local and other internal addresses
 * unless the configuration's allow-list (import.allow) opens them.
 */
#ifndef SPEECHFS_FETCH_H
#define SPEECHFS_FETCH_H

#include <stdint.h>
#include "err.h"

struct sfs_config;
struct sfs_stage;

/* The longest URI accepted, in bytes. */
#define SFS_FETCH_URI_MAX 2048

/*
 * Validate a URI at request time, without any network access: only the
 * schemes http, https (with a host) and s3 (s3://bucket/key, bucket 3-63
 * characters of [a-z0-9.-], key not empty) are accepted, at most
 * SFS_FETCH_URI_MAX bytes, no spaces or control characters. Anything else
 * is SFS_INVALID with a field error on "uri".
 */
enum sfs_status sfs_fetch_check_uri(const char *uri,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Download `uri` into the stage `out` with sfs_stage_write(), which the
 * caller then finishes and commits (or frees). `cfg` (NULL = defaults)
 * gives the timeouts, the redirect limit, the allow-list and the S3
 * endpoint and credentials; at most min(max_bytes, cfg->import_max_bytes)
 * bytes are accepted (max_bytes <= 0: the configuration's limit only).
 * s3://bucket/key is fetched from cfg->s3_endpoint (default
 * https://s3.<region>.amazonaws.com) with an AWS Signature Version 4
 * request, path-style or virtual-hosted, unsigned if no access key is set.
 *
 * `progress(arg)` (may be NULL) is called about once a second while the
 * transfer runs; a non-zero return cancels it. On failure the stage holds
 * a partial body and must be discarded. Messages are meant for people:
 * "HTTP 404 Not Found", "could not resolve host 'x'", "connection timed
 * out", "too large: more than N bytes", "blocked address 10.0.0.1 (private
 * network)", "transfer cut short: got N of M bytes".
 *
 * Errors: SFS_INVALID (bad URI), SFS_FORBIDDEN ("import_blocked": an
 * address refused by the SSRF check), SFS_TOO_LARGE, SFS_CONFLICT
 * ("cancelled"), SFS_UNSUPPORTED (an s3 endpoint not http(s)), SFS_IO
 * ("import_failed": the remote side or the network failed), or what the
 * stage returned (SFS_NO_SPACE, SFS_IO ...).
 * Safe to call from many threads at once.
 */
enum sfs_status sfs_fetch(const struct sfs_config *cfg, const char *uri,
			  struct sfs_stage *out, int64_t max_bytes,
			  int (*progress)(void *arg), void *arg,
			  struct sfs_err *e) SFS_MUST_CHECK;

#endif
