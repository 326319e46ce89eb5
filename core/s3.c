/*
 * The S3 client (s3_i.h): its options, the URLs of a bucket at an
 * endpoint, the object verbs, and presigned URLs. Requests are made in
 * core/s3_req.c, multipart uploads and listings in core/s3_multi.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "speechfs/log.h"
#include "s3_req_i.h"
#include "util_i.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int sfsi_curl_global_init(void)
{
	pthread_once(&curl_once, curl_init);
	return curl_init_rc != CURLE_OK;
}

void sfsi_s3_opts_init(struct sfsi_s3_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->endpoint = o->region = o->bucket = o->prefix = "";
	o->access_key = o->secret_key = o->session_token = o->ca_file = "";
	o->path_style = 1;
	o->part_size = (int64_t)16 << 20;
	o->parallel = 4;
	o->connect_timeout_s = 5;
	o->stall_timeout_s = 30;
	o->retries = 3;
}

/* ---- names and URLs ---- */

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

enum sfs_status sfsi_s3_encode(struct sfs_buf *b, const char *s, int slash)
{
	static const char hex[] = "0123456789ABCDEF";
	enum sfs_status ret = SFS_OK;
	unsigned char c;

	for (; *s && !ret; s++) {
		c = (unsigned char)*s;
		if (unreserved(c) || (slash && c == '/'))
			ret = sfs_buf_addch(b, (char)c);
		else
			ret = sfs_buf_addf(b, "%%%c%c", hex[c >> 4],
					   hex[c & 15]);
	}
	return ret;
}

static int bucket_ok(const char *b)
{
	size_t n = strlen(b), i;

	if (n < 3 || n > 63)
		return 0;
	for (i = 0; i < n; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') ||
		      (b[i] >= '0' && b[i] <= '9') || b[i] == '.' ||
		      b[i] == '-'))
			return 0;
	return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

/* The endpoint's parts: scheme, host (brackets kept), port, path. */
struct endpoint {
	char *scheme, *host, *port, *path;
};

static void endpoint_release(struct endpoint *ep)
{
	curl_free(ep->scheme);
	curl_free(ep->host);
	curl_free(ep->port);
	curl_free(ep->path);
}

static enum sfs_status endpoint_parse(const char *url, const char *region,
				      struct endpoint *ep, struct sfs_err *e)
{
	char def[128];
	enum sfs_status ret = SFS_OK;
	CURLU *u = curl_url();
	size_t n;

	memset(ep, 0, sizeof(*ep));
	if (!u)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (!url || !url[0]) {
		snprintf(def, sizeof(def), "https://s3.%s.amazonaws.com",
			 region && region[0] ? region : "us-east-1");
		url = def;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &ep->scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &ep->host, 0) ||
	    curl_url_get(u, CURLUPART_PATH, &ep->path, 0) ||
	    (strcmp(ep->scheme, "http") && strcmp(ep->scheme, "https"))) {
		ret = sfs_errf(e, SFS_INVALID, SFS_R_NONE,
			       "the s3 endpoint '%s' is not an http or https "
			       "URL",
			       url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &ep->port, 0))
		ep->port = NULL; /* no explicit port */
	n = strlen(ep->path);
	while (n && ep->path[n - 1] == '/')
		ep->path[--n] = '\0';
out:
	curl_url_cleanup(u);
	return ret;
}

/*
 * "scheme://host[:port]" into base, the Host header's value into host and
 * the path of the bucket's root (ending in '/') into root.
 */
static enum sfs_status bucket_urls(const struct endpoint *ep, int path_style,
				   const char *bucket, struct sfs_buf *base,
				   struct sfs_buf *host, struct sfs_buf *root)
{
	enum sfs_status ret;

	ret = sfs_buf_addf(host, "%s%s%s%s%s", path_style ? "" : bucket,
			   path_style ? "" : ".", ep->host, ep->port ? ":" : "",
			   ep->port ? ep->port : "");
	if (!ret)
		ret = sfs_buf_addf(base, "%s://%s", ep->scheme, host->buf);
	if (!ret)
		ret = sfs_buf_addf(root, "%s/%s%s", ep->path,
				   path_style ? bucket : "",
				   path_style ? "/" : "");
	return ret;
}

enum sfs_status sfsi_s3_object_url(const char *endpoint, const char *region,
				   int path_style, const char *bucket,
				   const char *key, struct sfs_buf *url,
				   struct sfs_err *e)
{
	struct sfs_buf host = SFS_BUF_INIT(512), root = SFS_BUF_INIT(1024);
	struct endpoint ep;
	enum sfs_status ret;

	ret = endpoint_parse(endpoint, region, &ep, e);
	if (ret)
		goto out;
	ret = bucket_urls(&ep, path_style, bucket, url, &host, &root);
	if (!ret)
		ret = sfs_buf_add(url, root.buf, root.len);
	if (!ret)
		ret = sfsi_s3_encode(url, key, 1);
	if (ret)
		ret = sfs_errf(e, ret, SFS_R_NONE, "cannot build the s3 URL");
out:
	endpoint_release(&ep);
	sfs_buf_release(&host);
	sfs_buf_release(&root);
	return ret;
}

/* ---- the client ---- */

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

void sfsi_s3_free(struct sfsi_s3 *c)
{
	if (!c)
		return;
	sfsi_curl_pool_release(&c->pool);
	free(c->base);
	free(c->host);
	free(c->root);
	free(c->bucket_path);
	free(c->bucket);
	free(c->prefix);
	free(c->access_key);
	if (c->secret_key)
		OPENSSL_cleanse(c->secret_key, strlen(c->secret_key));
	free(c->secret_key);
	free(c->token);
	free(c->token_hdr);
	free(c->ca_file);
	free(c);
}

static enum sfs_status check_opts(const struct sfsi_s3_opts *o,
				  struct sfs_err *e)
{
	if (!o->bucket || !bucket_ok(o->bucket))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"'%s' is not a valid bucket name (3-63 "
				"characters of a-z, 0-9, '.' and '-')",
				o->bucket ? o->bucket : "");
	if (o->part_size < SFSI_S3_MIN_PART ||
	    o->part_size > ((int64_t)5 << 30))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"the part size must be 5 MiB to 5 GiB (got "
				"%lld)",
				(long long)o->part_size);
	if (o->parallel < 1 || o->parallel > 64)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"parts in parallel must be 1 to 64 (got %d)",
				o->parallel);
	if (o->access_key && o->access_key[0] &&
	    (!o->secret_key || !o->secret_key[0]))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"an access key without a secret key");
	return SFS_OK;
}

enum sfs_status sfsi_s3_new(const struct sfsi_s3_opts *o, struct sfsi_s3 **out,
			    struct sfs_err *e)
{
	struct sfs_buf base = SFS_BUF_INIT(1024), host = SFS_BUF_INIT(512);
	struct sfs_buf root = SFS_BUF_INIT(2048), th = SFS_BUF_INIT(4096);
	struct endpoint ep;
	struct sfsi_s3 *c = NULL;
	enum sfs_status ret;

	*out = NULL;
	memset(&ep, 0, sizeof(ep));
	ret = check_opts(o, e);
	if (ret)
		goto out;
	if (sfsi_curl_global_init()) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "cannot initialise libcurl");
		goto out;
	}
	ret = endpoint_parse(o->endpoint, o->region, &ep, e);
	if (ret)
		goto out;
	ret = bucket_urls(&ep, o->path_style, o->bucket, &base, &host, &root);
	if (!ret && o->session_token && o->session_token[0])
		ret = sfs_buf_addf(&th, "x-amz-security-token: %s",
				   o->session_token);
	c = calloc(1, sizeof(*c));
	if (ret || !c) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	sfsi_curl_pool_init(&c->pool);
	sfs_strlcpy(c->region,
		    o->region && o->region[0] ? o->region : "us-east-1",
		    sizeof(c->region));
	snprintf(c->sigv4, sizeof(c->sigv4), "aws:amz:%s:s3", c->region);
	c->base = sfs_buf_detach(&base, NULL);
	c->host = sfs_buf_detach(&host, NULL);
	c->root = sfs_buf_detach(&root, NULL);
	/* a bucket's own requests: "/bucket" path-style, "/" else */
	c->bucket_path = strdup(c->root ? c->root : "");
	if (c->bucket_path && o->path_style)
		c->bucket_path[strlen(c->bucket_path) - 1] = '\0';
	c->prefix = dup_or_empty(o->prefix);
	c->bucket = dup_or_empty(o->bucket);
	c->access_key = dup_or_empty(o->access_key);
	c->secret_key = dup_or_empty(o->secret_key);
	c->token = dup_or_empty(o->session_token);
	c->token_hdr = th.len ? sfs_buf_detach(&th, NULL) : NULL;
	c->ca_file = dup_or_empty(o->ca_file);
	c->part_size = o->part_size;
	c->parallel = o->parallel;
	c->connect_timeout_s =
		o->connect_timeout_s > 0 ? o->connect_timeout_s : 5;
	c->stall_timeout_s = o->stall_timeout_s > 0 ? o->stall_timeout_s : 30;
	c->retries = o->retries >= 0 ? o->retries : 0;
	c->list_max_keys = o->list_max_keys > 0 ? o->list_max_keys : 0;
	if (!c->base || !c->host || !c->root || !c->bucket_path || !c->bucket ||
	    !c->prefix || !c->access_key || !c->secret_key || !c->token ||
	    (th.len && !c->token_hdr) || !c->ca_file) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	*out = c;
	c = NULL;
out:
	sfsi_s3_free(c);
	endpoint_release(&ep);
	sfs_buf_release(&base);
	sfs_buf_release(&host);
	sfs_buf_release(&root);
	sfs_buf_release(&th);
	return ret;
}

int64_t sfsi_s3_part(const struct sfsi_s3 *c)
{
	return c->part_size;
}

int64_t sfsi_s3_part_size(const struct sfsi_s3 *c, int64_t size)
{
	int64_t p = c->part_size;

	while (size / p >= SFSI_S3_MAX_PARTS)
		p *= 2;
	return p;
}

/* ---- objects ---- */

int sfsi_s3_checksums(const struct sfsi_s3 *c)
{
	return __atomic_load_n(&c->checksums, __ATOMIC_RELAXED);
}

/*
 * What the answer to a PUT that carried x-amz-checksum-sha256 says of it:
 * a store that checks the header echoes it (a different value is a
 * failure), one that ignores it does not. Learnt once, said once.
 */
static enum sfs_status learn_checksums(struct sfsi_s3 *c,
				       const struct s3_req *r, const char *key,
				       struct sfs_err *e)
{
	int was, now = r->checksum_back[0] ? 1 : -1;

	if (now > 0 && strcmp(r->checksum_back, r->checksum))
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"the object store stored '%s' with "
				"x-amz-checksum-sha256 %s, not %s",
				key, r->checksum_back, r->checksum);
	was = __atomic_exchange_n(&c->checksums, now, __ATOMIC_RELAXED);
	if (was != now)
		sfs_info("s3",
			 now > 0 ? "the object store checks "
				   "x-amz-checksum-sha256"
				 : "the object store ignores "
				   "x-amz-checksum-sha256: uploads are "
				   "verified by x-amz-content-sha256 and size");
	return SFS_OK;
}

/*
 * One PUT of bytes from fd or memory, with the SHA-256 of its bytes as the
 * payload hash (the store checks it) and as x-amz-checksum-sha256 (a
 * store that supports it checks and keeps it with the object).
 */
static enum sfs_status put_one(struct sfsi_s3 *c, const char *key, int fd,
			       const void *mem, int64_t off, int64_t size,
			       const char *sha256, struct sfs_err *e)
{
	struct s3_req r;
	unsigned char md[32];
	char hex[65], b64[48];
	enum sfs_status ret = SFS_OK;

	sfsi_s3_req_init(&r, "PUT");
	if (!sha256) {
		ret = sfsi_s3_sha256_hex(fd, mem, off, size, hex, e);
		sha256 = hex;
	}
	if (!ret && sfsi_s3_url(c, &r, key, NULL))
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (ret)
		goto out;
	if (strlen(sha256) == 64 && !sfsi_unhex(sha256, 32, md)) {
		EVP_EncodeBlock((unsigned char *)b64, md, sizeof(md));
		r.checksum = b64;
	}
	r.fd = fd;
	r.mem = mem;
	r.src_off = off;
	r.src_len = size;
	r.payload = sha256;
	ret = sfsi_s3_run(c, &r, e);
	if (!ret && r.checksum)
		ret = learn_checksums(c, &r, key, e);
out:
	sfsi_s3_req_release(&r);
	return ret;
}

enum sfs_status sfsi_s3_put_fd(struct sfsi_s3 *c, const char *key, int fd,
			       int64_t off, int64_t size, const char *sha256,
			       struct sfs_err *e)
{
	if (size > c->part_size)
		return sfsi_s3_multipart(c, key, fd, off, size, e);
	return put_one(c, key, fd, NULL, off, size, sha256, e);
}

enum sfs_status sfsi_s3_put_mem(struct sfsi_s3 *c, const char *key,
				const void *data, size_t len, struct sfs_err *e)
{
	return put_one(c, key, -1, data ? data : "", 0, (int64_t)len, NULL, e);
}

enum sfs_status sfsi_s3_get(struct sfsi_s3 *c, const char *key, int64_t off,
			    int64_t len, sfsi_s3_sink sink, void *arg,
			    int64_t *size, struct sfs_err *e)
{
	struct s3_req r;
	enum sfs_status ret;

	if (len == 0 && !size)
		return SFS_OK;
	if (len == 0)
		return sfsi_s3_head(c, key, size, e);
	sfsi_s3_req_init(&r, "GET");
	if (sfsi_s3_url(c, &r, key, NULL)) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	r.sink = sink;
	r.arg = arg;
	r.range_off = off;
	r.range_len = len;
	ret = sfsi_s3_run(c, &r, e);
	if (ret)
		goto out;
	if (r.range_start >= 0 && r.range_start != r.range_off) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "object store: asked for '%s' from %lld, got "
			       "bytes from %lld",
			       key, (long long)r.range_off,
			       (long long)r.range_start);
		goto out;
	}
	if (r.range_start < 0 && r.range_off > 0) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "object store: the Range of '%s' was ignored",
			       key);
		goto out;
	}
	if (len > 0 && r.done + r.got != len) {
		ret = sfs_errf(e, SFS_RANGE, SFS_R_NONE,
			       "object store: '%s' ends before %lld", key,
			       (long long)(off + len));
		goto out;
	}
	if (size)
		*size = r.total >= 0 ? r.total : r.done + r.got;
out:
	sfsi_s3_req_release(&r);
	return ret;
}

enum sfs_status sfsi_s3_head(struct sfsi_s3 *c, const char *key, int64_t *size,
			     struct sfs_err *e)
{
	struct s3_req r;
	enum sfs_status ret;

	sfsi_s3_req_init(&r, "HEAD");
	if (sfsi_s3_url(c, &r, key, NULL)) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	ret = sfsi_s3_run(c, &r, e);
	if (!ret && size)
		*size = r.clen;
out:
	sfsi_s3_req_release(&r);
	return ret;
}

enum sfs_status sfsi_s3_delete(struct sfsi_s3 *c, const char *key,
			       struct sfs_err *e)
{
	struct s3_req r;
	enum sfs_status ret;

	sfsi_s3_req_init(&r, "DELETE");
	if (sfsi_s3_url(c, &r, key, NULL)) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	ret = sfsi_s3_run(c, &r, e);
	if (ret == SFS_NOT_FOUND) {
		if (e)
			sfs_err_init(e);
		ret = SFS_OK;
	}
out:
	sfsi_s3_req_release(&r);
	return ret;
}

/* ---- presigned URLs (curl signs headers, not query strings) ---- */

static void hmac256(const void *key, size_t klen, const char *msg,
		    unsigned char out[32])
{
	unsigned int n = 32;

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
	     strlen(msg), out, &n);
}

static enum sfs_status presign_query(struct sfsi_s3 *c, struct sfs_buf *q,
				     const char *amzdate, int expires_s,
				     const char *ctype, const char *disp)
{
	enum sfs_status ret;
	struct sfs_buf cred = SFS_BUF_INIT(512);

	/* sorted by name: upper case X before lower case r */
	ret = sfs_buf_addf(&cred, "%s/%.8s/%s/s3/aws4_request", c->access_key,
			   amzdate, c->region);
	if (!ret)
		ret = sfs_buf_adds(q, "X-Amz-Algorithm=AWS4-HMAC-SHA256"
				      "&X-Amz-Credential=");
	if (!ret)
		ret = sfsi_s3_encode(q, cred.buf, 0);
	if (!ret)
		ret = sfs_buf_addf(q, "&X-Amz-Date=%s&X-Amz-Expires=%d",
				   amzdate, expires_s);
	if (!ret && c->token[0]) {
		ret = sfs_buf_adds(q, "&X-Amz-Security-Token=");
		if (!ret)
			ret = sfsi_s3_encode(q, c->token, 0);
	}
	if (!ret)
		ret = sfs_buf_adds(q, "&X-Amz-SignedHeaders=host");
	if (!ret && disp && disp[0]) {
		ret = sfs_buf_adds(q, "&response-content-disposition=");
		if (!ret)
			ret = sfsi_s3_encode(q, disp, 0);
	}
	if (!ret && ctype && ctype[0]) {
		ret = sfs_buf_adds(q, "&response-content-type=");
		if (!ret)
			ret = sfsi_s3_encode(q, ctype, 0);
	}
	sfs_buf_release(&cred);
	return ret;
}

enum sfs_status sfsi_s3_presign(struct sfsi_s3 *c, const char *key,
				int expires_s, const char *content_type,
				const char *disposition, char **url,
				struct sfs_err *e)
{
	struct sfs_buf path = SFS_BUF_INIT(4096), q = SFS_BUF_INIT(8192);
	struct sfs_buf canon = SFS_BUF_INIT(16384), sts = SFS_BUF_INIT(1024);
	struct sfs_buf u = SFS_BUF_INIT(16384);
	unsigned char k[32], md[32];
	char amzdate[17], hex[65], *secret = NULL;
	enum sfs_status ret;
	time_t now = time(NULL);
	struct tm tm;

	*url = NULL;
	if (expires_s < 1 || expires_s > 604800)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"a presigned URL lasts 1 s to 7 days");
	if (!c->access_key[0])
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"presigned URLs need credentials");
	gmtime_r(&now, &tm);
	strftime(amzdate, sizeof(amzdate), "%Y%m%dT%H%M%SZ", &tm);
	ret = sfs_buf_adds(&path, c->root);
	if (!ret)
		ret = sfsi_s3_encode(&path, c->prefix, 1);
	if (!ret)
		ret = sfsi_s3_encode(&path, key, 1);
	if (!ret)
		ret = presign_query(c, &q, amzdate, expires_s, content_type,
				    disposition);
	if (!ret)
		ret = sfs_buf_addf(&canon,
				   "GET\n%s\n%s\nhost:%s\n\nhost\n"
				   "UNSIGNED-PAYLOAD",
				   path.buf, q.buf, c->host);
	if (ret)
		goto nomem;
	SHA256((const unsigned char *)canon.buf, canon.len, md);
	sfsi_hex(md, 32, hex);
	ret = sfs_buf_addf(&sts,
			   "AWS4-HMAC-SHA256\n%s\n%.8s/%s/s3/aws4_request\n%s",
			   amzdate, amzdate, c->region, hex);
	if (ret || asprintf(&secret, "AWS4%s", c->secret_key) < 0) {
		secret = NULL;
		goto nomem;
	}
	amzdate[8] = '\0';
	hmac256(secret, strlen(secret), amzdate, k);
	hmac256(k, 32, c->region, k);
	hmac256(k, 32, "s3", k);
	hmac256(k, 32, "aws4_request", k);
	hmac256(k, 32, sts.buf, md);
	sfsi_hex(md, 32, hex);
	OPENSSL_cleanse(k, sizeof(k));
	if (sfs_buf_addf(&u, "%s%s?%s&X-Amz-Signature=%s", c->base, path.buf,
			 q.buf, hex) ||
	    !(*url = sfs_buf_detach(&u, NULL)))
		goto nomem;
	ret = SFS_OK;
	goto out;
nomem:
	ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
out:
	if (secret) {
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
	}
	sfs_buf_release(&path);
	sfs_buf_release(&q);
	sfs_buf_release(&canon);
	sfs_buf_release(&sts);
	sfs_buf_release(&u);
	return ret;
}
