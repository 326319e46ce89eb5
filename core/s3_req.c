/*
 * The S3 client's requests (s3_req_i.h): a pool of curl handles whose
 * connections stay open, one attempt at a time signed by libcurl
 * (CURLOPT_AWS_SIGV4 with the payload hash header it does not add itself),
 * the answer turned into a status, and retries of transient failures.
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "speechfs/log.h"
#include "s3_req_i.h"
#include "util_i.h"

#define ERRBODY_MAX 4096
#define XML_MAX ((size_t)16 << 20)

/* Back to the pool: curl_easy_reset keeps the live connection. */
static void handle_put(struct sfsi_s3 *c, CURL *h)
{
	if (!h)
		return;
	curl_easy_reset(h);
	sfsi_curl_pool_give(&c->pool, h);
}

static size_t on_header(char *buf, size_t size, size_t n, void *p)
{
	struct s3_req *r = p;
	size_t len = size * n;
	char line[256];
	long long a, b, t;

	if (len >= sizeof(line))
		return len;
	memcpy(line, buf, len);
	line[len] = '\0';
	if (!strncmp(line, "HTTP/", 5)) {
		/* a new response (after a 100 Continue, say) */
		r->clen = -1;
		r->total = -1;
		r->range_start = -1;
		r->etag[0] = '\0';
		r->checksum_back[0] = '\0';
	} else if (!strncasecmp(line, "content-length:", 15)) {
		r->clen = strtoll(line + 15, NULL, 10);
	} else if (!strncasecmp(line, "etag:", 5)) {
		sfs_strlcpy(r->etag, line + 5 + strspn(line + 5, " \t"),
			    sizeof(r->etag));
		r->etag[strcspn(r->etag, "\r\n")] = '\0';
	} else if (!strncasecmp(line, "x-amz-checksum-sha256:", 22)) {
		sfs_strlcpy(r->checksum_back,
			    line + 22 + strspn(line + 22, " \t"),
			    sizeof(r->checksum_back));
		r->checksum_back[strcspn(r->checksum_back, "\r\n")] = '\0';
	} else if (!strncasecmp(line, "content-range:", 14) &&
		   sscanf(line + 14, " bytes %lld-%lld/%lld", &a, &b, &t) ==
			   3) {
		r->range_start = a;
		r->total = t;
	}
	return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *p)
{
	struct s3_req *r = p;
	size_t len = size * n;
	long code = 0;

	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code >= 300) {
		/* an error body: its start is enough (S3's XML) */
		if (r->body.len < ERRBODY_MAX &&
		    sfs_buf_add(&r->body, buf,
				len < ERRBODY_MAX - r->body.len
					? len
					: ERRBODY_MAX - r->body.len))
			return 0;
		return len;
	}
	if (r->sink) {
		r->sink_rc = r->sink(r->arg, buf, len);
		if (r->sink_rc)
			return 0;
	} else if (sfs_buf_add(&r->body, buf, len)) {
		return 0;
	}
	r->got += (int64_t)len;
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *p)
{
	struct s3_req *r = p;
	size_t want = size * n;
	int64_t left = r->src_len - r->sent;
	ssize_t k;

	if (r->cancel && __atomic_load_n(r->cancel, __ATOMIC_RELAXED))
		return CURL_READFUNC_ABORT;
	if ((int64_t)want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (r->mem) {
		memcpy(buf, r->mem + r->sent, want);
	} else {
		k = pread(r->fd, buf, want, r->src_off + r->sent);
		if (k <= 0) {
			r->read_errno = k < 0 ? errno : EIO;
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)k;
	}
	r->sent += (int64_t)want;
	return want;
}

static int on_seek(void *p, curl_off_t off, int origin)
{
	struct s3_req *r = p;

	if (origin != SEEK_SET || off < 0 || off > r->src_len)
		return CURL_SEEKFUNC_CANTSEEK;
	r->sent = off;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut,
		       curl_off_t un)
{
	struct s3_req *r = p;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return r->cancel && __atomic_load_n(r->cancel, __ATOMIC_RELAXED);
}

static enum sfs_status add_header(struct curl_slist **l, const char *h)
{
	struct curl_slist *n = curl_slist_append(*l, h);

	if (!n)
		return SFS_NOMEM;
	*l = n;
	return SFS_OK;
}

static enum sfs_status request_headers(struct sfsi_s3 *c, struct s3_req *r,
				       struct curl_slist **l)
{
	char h[128];
	enum sfs_status ret;

	snprintf(h, sizeof(h), "x-amz-content-sha256: %s",
		 r->payload ? r->payload : SFSI_S3_EMPTY_SHA256);
	ret = add_header(l, h);
	if (!ret && r->checksum) {
		snprintf(h, sizeof(h), "x-amz-checksum-sha256: %s",
			 r->checksum);
		ret = add_header(l, h);
	}
	if (!ret && c->token_hdr)
		ret = add_header(l, c->token_hdr);
	if (!ret && r->extra_header)
		ret = add_header(l, r->extra_header);
	if (!ret && r->post)
		ret = add_header(l, "Content-Type: application/xml");
	return ret;
}

static int setup_method(CURL *h, struct s3_req *r)
{
	if (!strcmp(r->method, "HEAD"))
		return curl_easy_setopt(h, CURLOPT_NOBODY, 1L) != CURLE_OK;
	if (!strcmp(r->method, "PUT"))
		return curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) ||
		       curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
					(curl_off_t)r->src_len) ||
		       curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read) ||
		       curl_easy_setopt(h, CURLOPT_READDATA, r) ||
		       curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek) ||
		       curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
	if (!strcmp(r->method, "POST"))
		return curl_easy_setopt(h, CURLOPT_POST, 1L) ||
		       curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE,
					(long)r->post_len) ||
		       curl_easy_setopt(h, CURLOPT_POSTFIELDS,
					r->post ? r->post : "");
	if (!strcmp(r->method, "DELETE"))
		return curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE") !=
		       CURLE_OK;
	return 0; /* GET */
}

static int setup(struct sfsi_s3 *c, struct s3_req *r, struct curl_slist *l,
		 char *errbuf)
{
	CURL *h = r->h;
	char range[64];

	if (curl_easy_setopt(h, CURLOPT_URL, r->url.buf) ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") ||
	    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L) ||
	    curl_easy_setopt(h, CURLOPT_PROXY, "") ||
	    curl_easy_setopt(h, CURLOPT_NOPROXY, "*") ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L) ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
			     (long)c->connect_timeout_s) ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
			     (long)c->stall_timeout_s) ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) ||
	    (c->ca_file[0] &&
	     curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file)) ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l) ||
	    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) ||
	    curl_easy_setopt(h, CURLOPT_HEADERDATA, r) ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write) ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, r) ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT, "speechfs/" SFS_VERSION) ||
	    /*
	     * no wait for "100 Continue" before a body; an empty "Expect:"
	     * header would do it too, but curl 7.88 signs that header
	     * and the store's signature then differs
	     */
	    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L) ||
	    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L << 10) ||
	    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L << 10))
		return -1;
	if (r->cancel &&
	    (curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress) ||
	     curl_easy_setopt(h, CURLOPT_XFERINFODATA, r) ||
	     curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L)))
		return -1;
	if (c->access_key[0] &&
	    (curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4) ||
	     curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key) ||
	     curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key)))
		return -1;
	if (r->range_off > 0 || r->range_len >= 0) {
		if (r->range_len >= 0)
			snprintf(range, sizeof(range), "%lld-%lld",
				 (long long)r->range_off,
				 (long long)(r->range_off + r->range_len - 1));
		else
			snprintf(range, sizeof(range), "%lld-",
				 (long long)r->range_off);
		if (curl_easy_setopt(h, CURLOPT_RANGE, range))
			return -1;
	}
	return setup_method(h, r);
}

/* <tag>text</tag> of an XML body, entities decoded, into out. */
void sfsi_s3_xml_text(const char *xml, const char *end, const char *tag,
		      char *out, size_t size)
{
	char open[64], close[64];
	const char *a, *b;
	size_t n = 0;

	out[0] = '\0';
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = memmem(xml, (size_t)(end - xml), open, strlen(open));
	if (!a)
		return;
	a += strlen(open);
	b = memmem(a, (size_t)(end - a), close, strlen(close));
	if (!b)
		return;
	while (a < b && n + 1 < size) {
		static const struct {
			const char *ent;
			char c;
		} ents[] = { { "&amp;", '&' },
			     { "&lt;", '<' },
			     { "&gt;", '>' },
			     { "&quot;", '"' },
			     { "&apos;", '\'' } };
		size_t k = ARRAY_SIZE(ents);

		if (*a == '&')
			for (k = 0; k < ARRAY_SIZE(ents); k++)
				if (!strncmp(a, ents[k].ent,
					     strlen(ents[k].ent)))
					break;
		if (k < ARRAY_SIZE(ents)) {
			out[n++] = ents[k].c;
			a += strlen(ents[k].ent);
		} else {
			out[n++] = *a++;
		}
	}
	out[n] = '\0';
}

/* 5xx, throttling and a body that arrived damaged are worth a retry. */
/* The store is down, overloaded or slow: worth a retry, then a 503. */
static int unavailable(long code, const char *s3code)
{
	return code == 500 || code == 502 || code == 503 || code == 504 ||
	       !strcmp(s3code, "InternalError") ||
	       !strcmp(s3code, "RequestTimeout") || !strcmp(s3code, "SlowDown");
}

/* The bytes arrived damaged: worth sending again. */
static int damaged(const char *s3code)
{
	return !strcmp(s3code, "XAmzContentSHA256Mismatch") ||
	       !strcmp(s3code, "BadDigest") ||
	       !strcmp(s3code, "IncompleteBody");
}

static int transient_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

/* The status of a finished attempt; *again if a retry may help. */
static enum sfs_status outcome(struct sfsi_s3 *c, struct s3_req *r, CURLcode rc,
			       const char *errbuf, int *again,
			       struct sfs_err *e)
{
	char s3code[64];

	*again = 0;
	if (r->sink_rc)
		return (enum sfs_status)r->sink_rc;
	if (r->read_errno)
		return sfsi_errno_status(e, r->read_errno,
					 "reading the bytes to send");
	if (r->cancel && __atomic_load_n(r->cancel, __ATOMIC_RELAXED))
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "cancelled");
	if (rc != CURLE_OK) {
		*again = transient_curl(rc);
		return sfs_errf(e, *again ? SFS_UNAVAILABLE : SFS_IO,
				SFS_R_NONE, "object store %s: %s", c->host,
				errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->code);
	if (r->code >= 200 && r->code < 300) {
		if (!r->sink && strcmp(r->method, "HEAD") &&
		    memmem(r->body.buf, r->body.len, "<Error>", 7)) {
			/* S3 may say 200 and then fail in the body */
			sfsi_s3_xml_text(r->body.buf, r->body.buf + r->body.len,
					 "Code", s3code, sizeof(s3code));
			*again = unavailable(200, s3code);
			return sfs_errf(e, *again ? SFS_UNAVAILABLE : SFS_IO,
					SFS_R_NONE,
					"object store: %s %s failed: %s",
					r->method, r->what, s3code);
		}
		if (r->clen >= 0 && strcmp(r->method, "HEAD") &&
		    r->got != r->clen)
			goto short_body;
		return SFS_OK;
	}
	sfsi_s3_xml_text(r->body.buf, r->body.buf + r->body.len, "Code", s3code,
			 sizeof(s3code));
	if (r->code == 404 && strcmp(s3code, "NoSuchBucket"))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
				"object store: no object '%s'", r->what);
	if (r->code == 416)
		return sfs_errf(e, SFS_RANGE, SFS_R_NONE,
				"object store: range outside '%s'", r->what);
	*again = unavailable(r->code, s3code) || damaged(s3code);
	return sfs_errf(
		e, unavailable(r->code, s3code) ? SFS_UNAVAILABLE : SFS_IO,
		SFS_R_NONE, "object store: %s %s: HTTP %ld%s%s", r->method,
		r->what, r->code, s3code[0] ? " " : "", s3code);
short_body:
	*again = 1;
	return sfs_errf(e, SFS_UNAVAILABLE, SFS_R_NONE,
			"object store: %s cut short (%lld of %lld bytes)",
			r->what, (long long)r->got, (long long)r->clen);
}

static enum sfs_status attempt(struct sfsi_s3 *c, struct s3_req *r, int *again,
			       struct sfs_err *e)
{
	struct curl_slist *l = NULL;
	char errbuf[CURL_ERROR_SIZE];
	enum sfs_status ret;
	CURLcode rc;

	errbuf[0] = '\0';
	r->h = sfsi_curl_pool_take(&c->pool);
	*again = 0;
	if (!r->h) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	ret = request_headers(c, r, &l);
	if (ret) {
		ret = sfs_errf(e, ret, SFS_R_NONE, "out of memory");
		goto out;
	}
	if (setup(c, r, l, errbuf)) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "libcurl refused an option");
		goto out;
	}
	rc = curl_easy_perform(r->h);
	ret = outcome(c, r, rc, errbuf, again, e);
out:
	handle_put(c, r->h);
	r->h = NULL;
	curl_slist_free_all(l);
	return ret;
}

/*
 * Run a request, again after a pause when the failure was transient
 * (0.1, 0.3, 0.9 s ...). A GET that delivered part of its bytes goes on
 * from there; an upload starts over.
 */
enum sfs_status sfsi_s3_run(struct sfsi_s3 *c, struct s3_req *r,
			    struct sfs_err *e)
{
	struct sfs_err tmp;
	enum sfs_status ret;
	int again, i;
	long pause_ms = 100;

	for (i = 0;; i++) {
		sfs_err_init(&tmp);
		r->sent = 0;
		r->read_errno = 0;
		r->clen = -1;
		r->total = -1;
		r->range_start = -1;
		sfs_buf_reset(&r->body);
		ret = attempt(c, r, &again, &tmp);
		if (!ret || !again || i >= c->retries ||
		    (r->cancel && __atomic_load_n(r->cancel, __ATOMIC_RELAXED)))
			break;
		sfs_debug("s3", "retrying %s %s: %s", r->method, r->what,
			  tmp.message);
		if (r->sink && r->got) {
			/* resume after what the sink has */
			r->range_off += r->got;
			if (r->range_len >= 0)
				r->range_len -= r->got;
			r->done += r->got;
			r->got = 0;
		}
		usleep((useconds_t)pause_ms * 1000);
		pause_ms *= 3;
	}
	if (ret && e)
		*e = tmp;
	return ret;
}

/* The URL of key (NULL: the bucket) with a query (sorted, encoded). */
enum sfs_status sfsi_s3_url(struct sfsi_s3 *c, struct s3_req *r,
			    const char *key, const char *query)
{
	enum sfs_status ret;

	sfs_buf_reset(&r->url);
	ret = sfs_buf_addf(&r->url, "%s%s", c->base,
			   key ? c->root : c->bucket_path);
	if (!ret && key)
		ret = sfsi_s3_encode(&r->url, c->prefix, 1);
	if (!ret && key)
		ret = sfsi_s3_encode(&r->url, key, 1);
	if (!ret && query && query[0])
		ret = sfs_buf_addf(&r->url, "?%s", query);
	r->what = key ? key : "bucket";
	return ret;
}

void sfsi_s3_req_init(struct s3_req *r, const char *method)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->fd = -1;
	r->range_off = 0;
	r->range_len = -1;
	sfs_buf_init(&r->url, 16384);
	sfs_buf_init(&r->body, XML_MAX);
}

void sfsi_s3_req_release(struct s3_req *r)
{
	sfs_buf_release(&r->url);
	sfs_buf_release(&r->body);
}

/* ---- hashing what is sent ---- */

enum sfs_status sfsi_s3_sha256_hex(int fd, const void *mem, int64_t off,
				   int64_t len, char out[65], struct sfs_err *e)
{
	unsigned char md[32], *buf = NULL;
	unsigned int mdlen = 32;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	enum sfs_status ret = SFS_OK;
	int64_t done = 0;
	ssize_t k;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	if (mem) {
		if (!EVP_DigestUpdate(ctx, mem, (size_t)len))
			ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "sha256 failed");
		goto fin;
	}
	buf = malloc(SFSI_S3_HASH_BUF);
	if (!buf) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	while (done < len) {
		size_t want = len - done < (int64_t)SFSI_S3_HASH_BUF
				      ? (size_t)(len - done)
				      : SFSI_S3_HASH_BUF;

		k = pread(fd, buf, want, off + done);
		if (k <= 0) {
			ret = sfsi_errno_status(e, k < 0 ? errno : EIO,
						"reading the bytes to send");
			goto out;
		}
		if (!EVP_DigestUpdate(ctx, buf, (size_t)k)) {
			ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "sha256 failed");
			goto out;
		}
		done += k;
	}
fin:
	if (!ret && !EVP_DigestFinal_ex(ctx, md, &mdlen))
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "sha256 failed");
	if (!ret)
		sfsi_hex(md, 32, out);
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	return ret;
}
