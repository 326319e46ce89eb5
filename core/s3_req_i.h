/*
 * The S3 client's insides, shared by core/s3.c (requests, objects,
 * presigning) and core/s3_multi.c (multipart uploads, listings) alone.
 */
#ifndef SPEECHFS_S3_REQ_I_H
#define SPEECHFS_S3_REQ_I_H

#include <pthread.h>
#include <stdint.h>
#include "curl_pool_i.h"
#include "s3_i.h"

#define SFSI_S3_EMPTY_SHA256                                                   \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* The buffer of a hashing pass over bytes about to be sent. */
#define SFSI_S3_HASH_BUF ((size_t)256 << 10)

struct sfsi_s3 {
	char *base;	   /* scheme://host[:port] */
	char *host;	   /* the Host header's value */
	char *root;	   /* encoded path of the bucket's root, ends in '/' */
	char *bucket_path; /* the path of the bucket's own requests */
	char *bucket;
	char *prefix;
	char region[64];
	char sigv4[96]; /* CURLOPT_AWS_SIGV4's provider:region:service */
	char *access_key, *secret_key, *token;
	char *token_hdr; /* "x-amz-security-token: ..." or NULL */
	char *ca_file;
	int64_t part_size;
	int parallel;
	int connect_timeout_s, stall_timeout_s, retries;
	int list_max_keys;
	/*
	 * x-amz-checksum-sha256 as learnt from the first single PUT's answer:
	 * 0 not yet known, 1 the store checks it (and echoes it), -1 it
	 * ignores the header (Ceph 16's RGW): x-amz-content-sha256 and the
	 * object's size verify instead. Atomic.
	 */
	int checksums;

	struct sfsi_curl_pool pool; /* idle handles */
};

/* One request and what came back; reused across its retries. */
struct s3_req {
	const char *method;
	const char *what; /* the key, for messages */
	struct sfs_buf url;
	void *h; /* the curl handle of the attempt */

	/* the body sent: fd from src_off, or mem; POST bodies in post */
	int fd;
	const char *mem;
	int64_t src_off, src_len, sent;
	const char *post;
	size_t post_len;
	const char *payload;	  /* x-amz-content-sha256 (NULL: empty body) */
	const char *extra_header; /* one more (x-amz-copy-source), or NULL */
	const char *checksum;	  /* x-amz-checksum-sha256 (base64), or NULL */
	int read_errno;

	/* the bytes wanted: from range_off, range_len of them (-1: all) */
	int64_t range_off, range_len;
	sfsi_s3_sink sink; /* NULL: the body goes to `body` */
	void *arg;
	int sink_rc;
	int64_t got;  /* bytes of this attempt given to the sink */
	int64_t done; /* ... of the attempts before */

	struct sfs_buf body;
	long code;
	int64_t clen, total, range_start;
	char etag[80];
	char checksum_back[64]; /* the x-amz-checksum-sha256 answered */
	int *cancel;		/* set by another thread: stop */
};

void sfsi_s3_req_init(struct s3_req *r, const char *method);
void sfsi_s3_req_release(struct s3_req *r);
/* The URL of key (NULL: the bucket's) with a sorted, encoded query. */
enum sfs_status sfsi_s3_url(struct sfsi_s3 *c, struct s3_req *r,
			    const char *key, const char *query) SFS_MUST_CHECK;
/* Perform with retries; the last attempt's error into e. */
enum sfs_status sfsi_s3_run(struct sfsi_s3 *c, struct s3_req *r,
			    struct sfs_err *e) SFS_MUST_CHECK;
/* AWS's URI encoding; '/' kept when slash. */
enum sfs_status sfsi_s3_encode(struct sfs_buf *b, const char *s,
			       int slash) SFS_MUST_CHECK;
/* The text of the first <tag> in xml..end, entities decoded. */
void sfsi_s3_xml_text(const char *xml, const char *end, const char *tag,
		      char *out, size_t size);
/* SHA-256 of len bytes of fd from off (or of mem), lowercase hex. */
enum sfs_status sfsi_s3_sha256_hex(int fd, const void *mem, int64_t off,
				   int64_t len, char out[65],
				   struct sfs_err *e) SFS_MUST_CHECK;
/* The part size for an object of `size` bytes (at most 10,000 parts). */
int64_t sfsi_s3_part_size(const struct sfsi_s3 *c, int64_t size);
enum sfs_status sfsi_s3_multipart(struct sfsi_s3 *c, const char *key, int fd,
				  int64_t off, int64_t size,
				  struct sfs_err *e) SFS_MUST_CHECK;

#endif
