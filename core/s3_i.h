/*
 * A client of one bucket of an S3-compatible object store (AWS S3, Ceph
 * RGW, MinIO ...): requests signed by libcurl's Signature V4, connections
 * kept alive in a pool of handles, large objects sent as multipart uploads
 * with their parts in parallel, Range GETs streamed to a callback, and
 * presigned GET URLs. Every key is relative to the client's prefix. A
 * client is safe to use from many threads at once. No libcurl type
 * crosses this header.
 *
 * Failures: SFS_NOT_FOUND (no such key), SFS_UNAVAILABLE (the store could
 * not be reached, timed out or answered 5xx, after the retries), SFS_IO
 * (the store refused: credentials, bucket, a bad answer), SFS_INVALID
 * (bad options), SFS_NOMEM, or what a callback returned. Messages name the
 * store's error code ("HTTP 403 SignatureDoesNotMatch").
 */
#ifndef SPEECHFS_S3_I_H
#define SPEECHFS_S3_I_H

#include <stddef.h>
#include <stdint.h>
#include "speechfs/buf.h"
#include "speechfs/err.h"

struct sfsi_s3;

/* Smallest part S3 accepts (but the last), and the most parts. */
#define SFSI_S3_MIN_PART ((int64_t)5 << 20)
#define SFSI_S3_MAX_PARTS 10000

struct sfsi_s3_opts {
	const char *endpoint;	   /* http(s)://host[:port][/path]; "" = AWS */
	const char *region;	   /* "" = us-east-1 */
	const char *bucket;	   /* 3-63 of [a-z0-9.-] */
	const char *prefix;	   /* before every key; "" = none */
	const char *access_key;	   /* "" = anonymous, unsigned requests */
	const char *secret_key;	   /* */
	const char *session_token; /* "" = none (x-amz-security-token) */
	const char *ca_file;	   /* "" = the system's CAs */
	int path_style;		   /* endpoint/bucket/key, else bucket.host */
	int64_t part_size;	   /* multipart above this, parts this big */
	int parallel;		   /* parts in flight at once (1-64) */
	int connect_timeout_s;	   /* per connection attempt */
	int stall_timeout_s;	   /* a transfer idle this long fails */
	int retries;		   /* attempts after the first, transient */
	int list_max_keys;	   /* keys per listing page (0 = the store's) */
};

/* The client's part size (multipart above it). */
int64_t sfsi_s3_part(const struct sfsi_s3 *c);

/* Defaults of every field (strings ""; part_size 16 MiB, parallel 4 ...). */
void sfsi_s3_opts_init(struct sfsi_s3_opts *o);

/*
 * Check the options (endpoint URL, bucket name, part size) and make a
 * client; nothing is sent yet. The strings are copied.
 * Ownership: free with sfsi_s3_free().
 */
enum sfs_status sfsi_s3_new(const struct sfsi_s3_opts *o, struct sfsi_s3 **out,
			    struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_s3_free(struct sfsi_s3 *c);

/*
 * Store `size` bytes of `fd` from `off` as `key`, replacing any object of
 * that name. Up to part_size bytes go in one PUT whose payload hash is
 * `sha256` (lowercase hex of exactly these bytes; the store checks it) or
 * computed here when NULL; larger objects go as a multipart upload, parts
 * read with pread, each hashed before it is sent (so the store checks
 * every part), `parallel` at a time, and an upload that fails is aborted.
 * The object exists complete or not at all.
 */
enum sfs_status sfsi_s3_put_fd(struct sfsi_s3 *c, const char *key, int fd,
			       int64_t off, int64_t size, const char *sha256,
			       struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A multipart upload built by the caller: parts (1 .. 10,000, all but the
 * last at least 5 MiB) sent in any order, from any threads, each from
 * `len` bytes of fd at `off`, with their SHA-256 (computed here when
 * NULL), which the store checks; complete with the number of parts. Free aborts
 * an upload not completed. *cancel (may be NULL), set by another thread,
 * stops a part in flight.
 */
struct sfsi_s3_upload;
enum sfs_status sfsi_s3_upload_begin(struct sfsi_s3 *c, const char *key,
				     struct sfsi_s3_upload **out,
				     struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfsi_s3_upload_part(struct sfsi_s3_upload *u, int n, int fd,
				    int64_t off, int64_t len,
				    const char *sha256, int *cancel,
				    struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfsi_s3_upload_complete(struct sfsi_s3_upload *u, int nparts,
					struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_s3_upload_free(struct sfsi_s3_upload *u);

/*
 * Copy object `from` to `to` inside the bucket, by the store (up to 5 GiB;
 * Ceph RGW shares the data, a moment for any size).
 */
enum sfs_status sfsi_s3_copy(struct sfsi_s3 *c, const char *from,
			     const char *to, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Whether the store checks x-amz-checksum-sha256, as the answer to the
 * last single PUT showed: 1 yes, -1 no (Ceph 16's RGW ignores it; the
 * payload hash and the size verify then), 0 not known yet.
 */
int sfsi_s3_checksums(const struct sfsi_s3 *c);

/* The same for bytes in memory (one PUT whatever the size). */
enum sfs_status sfsi_s3_put_mem(struct sfsi_s3 *c, const char *key,
				const void *data, size_t len,
				struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Called with the bytes of a GET as they arrive; non-zero stops the
 * transfer and becomes sfsi_s3_get's status.
 */
typedef int (*sfsi_s3_sink)(void *arg, const void *data, size_t len);

/*
 * Read `len` bytes of `key` from `off` (len < 0: to the end) into `sink`.
 * A transfer cut short is resumed from where it stopped (a Range GET), so
 * the sink sees every byte once, in order. *size (may be NULL) is the
 * object's whole size. A range past the end is SFS_RANGE.
 */
enum sfs_status sfsi_s3_get(struct sfsi_s3 *c, const char *key, int64_t off,
			    int64_t len, sfsi_s3_sink sink, void *arg,
			    int64_t *size, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The size of `key`; SFS_NOT_FOUND if there is none. A HEAD's answer has
 * no body, so a missing bucket is "not found" too: ask a listing (which
 * says NoSuchBucket) before concluding that objects are gone.
 */
enum sfs_status sfsi_s3_head(struct sfsi_s3 *c, const char *key, int64_t *size,
			     struct sfs_err *e) SFS_MUST_CHECK;

/* Delete `key` (a missing key is not an error). */
enum sfs_status sfsi_s3_delete(struct sfsi_s3 *c, const char *key,
			       struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Every key under `prefix` (relative, like all keys), in the store's
 * order (bytewise), page by page: fn(arg, key, size, mtime) for each
 * (mtime: its Last-Modified, seconds since the epoch); a non-zero return
 * stops the listing and becomes the status.
 */
enum sfs_status sfsi_s3_list(struct sfsi_s3 *c, const char *prefix,
			     int (*fn)(void *arg, const char *key, int64_t size,
				       int64_t mtime),
			     void *arg, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * One level under `prefix` (delimiter '/'): fn for the keys right under
 * it, dirs(arg, "name/") for each level below, names relative to prefix.
 */
enum sfs_status sfsi_s3_list_level(struct sfsi_s3 *c, const char *prefix,
				   int (*fn)(void *arg, const char *key,
					     int64_t size, int64_t mtime),
				   int (*dirs)(void *arg, const char *name),
				   void *arg, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Multipart uploads begun and never completed or aborted under `prefix`
 * (a process that died mid-upload leaves them): fn(arg, key, upload_id,
 * initiated, seconds since the epoch) for each.
 */
enum sfs_status sfsi_s3_uploads(struct sfsi_s3 *c, const char *prefix,
				int (*fn)(void *arg, const char *key,
					  const char *upload_id,
					  int64_t initiated),
				void *arg, struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfsi_s3_abort(struct sfsi_s3 *c, const char *key,
			      const char *upload_id,
			      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A presigned GET URL of `key` valid for `expires_s` seconds (1 to
 * 604800), made without a request. `content_type` and `disposition` (may
 * be NULL) become the response's Content-Type and Content-Disposition.
 * Ownership: *url is the caller's (free()).
 */
enum sfs_status sfsi_s3_presign(struct sfsi_s3 *c, const char *key,
				int expires_s, const char *content_type,
				const char *disposition, char **url,
				struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The URL of s3://bucket/key at an endpoint (path-style or virtual-hosted,
 * the key encoded as Signature V4 wants it), for callers with handles of
 * their own (the URI import).
 */
enum sfs_status sfsi_s3_object_url(const char *endpoint, const char *region,
				   int path_style, const char *bucket,
				   const char *key, struct sfs_buf *url,
				   struct sfs_err *e) SFS_MUST_CHECK;

/* curl_global_init, once per process; non-zero if it failed. */
int sfsi_curl_global_init(void);

#endif
