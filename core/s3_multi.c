/*
 * The S3 client's requests of many steps: multipart uploads with their
 * parts sent by several threads at once (each part hashed before it goes,
 * so the store checks it), and listings of keys and of unfinished
 * uploads, page by page.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "speechfs/log.h"
#include "s3_req_i.h"
#include "util_i.h"

#define ETAG_MAX 80

struct sfsi_s3_upload {
	struct sfsi_s3 *c;
	char key[1100];
	char upload_id[512];
	pthread_mutex_t mu; /* etags */
	char (*etags)[ETAG_MAX];
	int cap;
	int completed;
};

static enum sfs_status upload_query(struct sfs_buf *q, const char *upload_id)
{
	enum sfs_status ret = sfs_buf_adds(q, "uploadId=");

	return ret ? ret : sfsi_s3_encode(q, upload_id, 0);
}

enum sfs_status sfsi_s3_upload_begin(struct sfsi_s3 *c, const char *key,
				     struct sfsi_s3_upload **out,
				     struct sfs_err *e)
{
	struct sfsi_s3_upload *u = calloc(1, sizeof(*u));
	struct s3_req r;
	enum sfs_status ret;

	*out = NULL;
	sfsi_s3_req_init(&r, "POST");
	if (!u) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	u->c = c;
	pthread_mutex_init(&u->mu, NULL);
	sfs_strlcpy(u->key, key, sizeof(u->key));
	/* "uploads=": the query exactly as curl's signature canonicalises */
	if (sfsi_s3_url(c, &r, key, "uploads=")) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	ret = sfsi_s3_run(c, &r, e);
	if (ret)
		goto out;
	sfsi_s3_xml_text(r.body.buf, r.body.buf + r.body.len, "UploadId",
			 u->upload_id, sizeof(u->upload_id));
	if (!u->upload_id[0])
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "object store: no UploadId for '%s'", key);
out:
	sfsi_s3_req_release(&r);
	if (ret) {
		u->completed = 1; /* nothing to abort */
		sfsi_s3_upload_free(u);
	} else {
		*out = u;
	}
	return ret;
}

/* Room for the ETag of part n (u locked). */
static int etag_room(struct sfsi_s3_upload *u, int n)
{
	char(*v)[ETAG_MAX];
	int cap;

	if (n <= u->cap)
		return 0;
	cap = u->cap ? u->cap : 64;
	while (cap < n)
		cap *= 2;
	v = realloc(u->etags, (size_t)cap * ETAG_MAX);
	if (!v)
		return -1;
	memset(v + u->cap, 0, (size_t)(cap - u->cap) * ETAG_MAX);
	u->etags = v;
	u->cap = cap;
	return 0;
}

enum sfs_status sfsi_s3_upload_part(struct sfsi_s3_upload *u, int n, int fd,
				    int64_t off, int64_t len,
				    const char *sha256, int *cancel,
				    struct sfs_err *e)
{
	struct sfs_buf q = SFS_BUF_INIT(2048);
	struct s3_req r;
	char hex[65];
	enum sfs_status ret = SFS_OK;
	int room;

	sfsi_s3_req_init(&r, "PUT");
	if (!sha256) {
		ret = sfsi_s3_sha256_hex(fd, NULL, off, len, hex, e);
		if (ret)
			goto out;
		sha256 = hex;
	}
	if (n < 1 || n > SFSI_S3_MAX_PARTS) {
		ret = sfs_errf(e, SFS_INVALID, SFS_R_NONE, "part %d", n);
		goto out;
	}
	if (sfs_buf_addf(&q, "partNumber=%d&", n) ||
	    upload_query(&q, u->upload_id) ||
	    sfsi_s3_url(u->c, &r, u->key, q.buf)) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	r.fd = fd;
	r.src_off = off;
	r.src_len = len;
	/* the store checks it (Ceph 16's RGW too: XAmzContentSHA256Mismatch) */
	r.payload = sha256;
	r.cancel = cancel;
	ret = sfsi_s3_run(u->c, &r, e);
	if (!ret && !r.etag[0])
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "object store: no ETag for part %d of '%s'", n,
			       u->key);
	if (ret)
		goto out;
	pthread_mutex_lock(&u->mu);
	room = etag_room(u, n);
	if (!room)
		sfs_strlcpy(u->etags[n - 1], r.etag, ETAG_MAX);
	pthread_mutex_unlock(&u->mu);
	if (room)
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
out:
	sfs_buf_release(&q);
	sfsi_s3_req_release(&r);
	return ret;
}

enum sfs_status sfsi_s3_upload_complete(struct sfsi_s3_upload *u, int nparts,
					struct sfs_err *e)
{
	struct sfs_buf x = SFS_BUF_INIT((size_t)nparts * 160 + 128);
	struct sfs_buf q = SFS_BUF_INIT(2048);
	struct s3_req r;
	char sha[65];
	enum sfs_status ret;
	int i;

	sfsi_s3_req_init(&r, "POST");
	ret = sfs_buf_adds(&x, "<CompleteMultipartUpload>");
	for (i = 0; i < nparts && !ret; i++) {
		if (i >= u->cap || !u->etags[i][0]) {
			ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
				       "part %d of '%s' was not sent", i + 1,
				       u->key);
			goto out;
		}
		ret = sfs_buf_addf(&x,
				   "<Part><PartNumber>%d</PartNumber>"
				   "<ETag>%s</ETag></Part>",
				   i + 1, u->etags[i]);
	}
	if (!ret)
		ret = sfs_buf_adds(&x, "</CompleteMultipartUpload>");
	if (!ret)
		ret = upload_query(&q, u->upload_id);
	if (!ret)
		ret = sfsi_s3_url(u->c, &r, u->key, q.buf);
	if (ret) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	ret = sfsi_s3_sha256_hex(-1, x.buf, 0, (int64_t)x.len, sha, e);
	if (ret)
		goto out;
	r.post = x.buf;
	r.post_len = x.len;
	r.payload = sha;
	ret = sfsi_s3_run(u->c, &r, e);
	if (!ret)
		u->completed = 1;
out:
	sfs_buf_release(&x);
	sfs_buf_release(&q);
	sfsi_s3_req_release(&r);
	return ret;
}

enum sfs_status sfsi_s3_abort(struct sfsi_s3 *c, const char *key,
			      const char *upload_id, struct sfs_err *e)
{
	struct sfs_buf q = SFS_BUF_INIT(2048);
	struct s3_req r;
	enum sfs_status ret;

	sfsi_s3_req_init(&r, "DELETE");
	if (upload_query(&q, upload_id) || sfsi_s3_url(c, &r, key, q.buf)) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	ret = sfsi_s3_run(c, &r, e);
out:
	sfs_buf_release(&q);
	sfsi_s3_req_release(&r);
	return ret;
}

void sfsi_s3_upload_free(struct sfsi_s3_upload *u)
{
	struct sfs_err e;

	if (!u)
		return;
	sfs_err_init(&e);
	if (!u->completed && sfsi_s3_abort(u->c, u->key, u->upload_id, &e) &&
	    e.status != SFS_NOT_FOUND)
		sfs_warn("s3", "cannot abort the upload of '%s': %s", u->key,
			 e.message);
	pthread_mutex_destroy(&u->mu);
	free(u->etags);
	free(u);
}

enum sfs_status sfsi_s3_copy(struct sfsi_s3 *c, const char *from,
			     const char *to, struct sfs_err *e)
{
	struct sfs_buf src = SFS_BUF_INIT(4096);
	struct s3_req r;
	enum sfs_status ret;

	sfsi_s3_req_init(&r, "PUT");
	/* x-amz-copy-source: /bucket/prefix+key, URI-encoded */
	if (sfs_buf_addf(&src, "x-amz-copy-source: /%s/", c->bucket) ||
	    sfsi_s3_encode(&src, c->prefix, 1) ||
	    sfsi_s3_encode(&src, from, 1) || sfsi_s3_url(c, &r, to, NULL)) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	r.extra_header = src.buf;
	r.mem = "";
	r.src_len = 0;
	ret = sfsi_s3_run(c, &r, e);
out:
	sfs_buf_release(&src);
	sfsi_s3_req_release(&r);
	return ret;
}

/* ---- a file's bytes, parts sent by several threads at once ---- */

struct multipart {
	struct sfsi_s3_upload *u;
	int fd;
	int64_t off, size, part;
	int nparts;

	pthread_mutex_t mu;
	int next;
	int cancel; /* read atomically by the transfers */
	enum sfs_status st;
	struct sfs_err err;
};

static void *mp_worker(void *arg)
{
	struct multipart *m = arg;
	struct sfs_err e;
	enum sfs_status st;
	int64_t off, len;
	char sha[65];
	int n;

	for (;;) {
		pthread_mutex_lock(&m->mu);
		n = m->st ? m->nparts + 1 : ++m->next;
		pthread_mutex_unlock(&m->mu);
		if (n > m->nparts)
			break;
		off = (int64_t)(n - 1) * m->part;
		len = m->size - off < m->part ? m->size - off : m->part;
		sfs_err_init(&e);
		/* hashed first: the store checks each part as it comes */
		st = sfsi_s3_sha256_hex(m->fd, NULL, m->off + off, len, sha,
					&e);
		if (!st)
			st = sfsi_s3_upload_part(m->u, n, m->fd, m->off + off,
						 len, sha, &m->cancel, &e);
		if (!st)
			continue;
		pthread_mutex_lock(&m->mu);
		if (!m->st) {
			m->st = st;
			m->err = e;
			__atomic_store_n(&m->cancel, 1, __ATOMIC_RELAXED);
		}
		pthread_mutex_unlock(&m->mu);
		break;
	}
	return NULL;
}

/* Send the parts with `parallel` threads (the caller's is one of them). */
static enum sfs_status mp_send(struct multipart *m, int parallel,
			       struct sfs_err *e)
{
	pthread_t th[64];
	int i, nth = parallel < m->nparts ? parallel : m->nparts;
	int started = 0;

	for (i = 1; i < nth; i++) {
		if (pthread_create(&th[started], NULL, mp_worker, m))
			break; /* fewer threads, same result */
		started++;
	}
	mp_worker(m);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (m->st && e)
		*e = m->err;
	return m->st;
}

enum sfs_status sfsi_s3_multipart(struct sfsi_s3 *c, const char *key, int fd,
				  int64_t off, int64_t size, struct sfs_err *e)
{
	struct multipart m;
	enum sfs_status ret;
	int64_t got = -1;

	memset(&m, 0, sizeof(m));
	pthread_mutex_init(&m.mu, NULL);
	m.fd = fd;
	m.off = off;
	m.size = size;
	m.part = sfsi_s3_part_size(c, size);
	m.nparts = (int)((size + m.part - 1) / m.part);
	ret = sfsi_s3_upload_begin(c, key, &m.u, e);
	if (ret)
		goto out;
	ret = mp_send(&m, c->parallel, e);
	sfsi_crash_point("s3-parts-sent");
	if (!ret)
		ret = sfsi_s3_upload_complete(m.u, m.nparts, e);
	/* complete means complete: the whole object is there, or nothing */
	if (!ret)
		ret = sfsi_s3_head(c, key, &got, e);
	if (!ret && got != size)
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "object store: '%s' has %lld bytes after its "
			       "upload, not %lld",
			       key, (long long)got, (long long)size);
	if (ret && m.u && m.u->completed && sfsi_s3_delete(c, key, NULL))
		sfs_warn("s3", "cannot remove the bad object '%s'", key);
out:
	sfsi_s3_upload_free(m.u); /* aborts one not completed */
	pthread_mutex_destroy(&m.mu);
	return ret;
}

/* ---- listings ---- */

/* Each <tag>...</tag> block of a page, in turn: its bounds. */
static const char *next_block(const char *p, const char *end, const char *tag,
			      const char **bend)
{
	char open[32], close[32];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = memmem(p, (size_t)(end - p), open, strlen(open));
	if (!a)
		return NULL;
	b = memmem(a, (size_t)(end - a), close, strlen(close));
	if (!b)
		return NULL;
	*bend = b + strlen(close);
	return a;
}

static enum sfs_status list_page(struct sfsi_s3 *c, const char *query,
				 struct s3_req *r, struct sfs_err *e)
{
	enum sfs_status ret;

	sfsi_s3_req_release(r);
	sfsi_s3_req_init(r, "GET");
	if (sfsi_s3_url(c, r, NULL, query))
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	ret = sfsi_s3_run(c, r, e);
	return ret;
}

static int64_t parse_iso8601(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

/*
 * The keys under prefix, page by page, to fn; with `dirs` (delimiter '/'),
 * the names of the levels right under it (CommonPrefixes) to dirs too.
 */
static enum sfs_status list_keys(struct sfsi_s3 *c, const char *prefix,
				 int (*fn)(void *arg, const char *key,
					   int64_t size, int64_t mtime),
				 int (*dirs)(void *arg, const char *name),
				 void *arg, struct sfs_err *e)
{
	struct sfs_buf q = SFS_BUF_INIT(8192), full = SFS_BUF_INIT(4096);
	struct s3_req r;
	char token[1024] = "", key[1100], size[32], trunc[8], when[40];
	const char *p, *end, *bend;
	size_t plen = strlen(c->prefix);
	enum sfs_status ret;
	int rc;

	sfsi_s3_req_init(&r, "GET");
	if (sfs_buf_addf(&full, "%s%s", c->prefix, prefix)) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	do {
		/* sorted: continuation-token, delimiter, list-type,
		 * max-keys, prefix */
		sfs_buf_reset(&q);
		ret = SFS_OK;
		if (token[0]) {
			ret = sfs_buf_adds(&q, "continuation-token=");
			if (!ret)
				ret = sfsi_s3_encode(&q, token, 0);
			if (!ret)
				ret = sfs_buf_addch(&q, '&');
		}
		if (!ret && dirs)
			ret = sfs_buf_adds(&q, "delimiter=%2F&");
		if (!ret)
			ret = sfs_buf_adds(&q, "list-type=2&");
		if (!ret && c->list_max_keys)
			ret = sfs_buf_addf(&q, "max-keys=%d&",
					   c->list_max_keys);
		if (!ret)
			ret = sfs_buf_adds(&q, "prefix=");
		if (!ret)
			ret = sfsi_s3_encode(&q, full.buf, 0);
		if (ret) {
			ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				       "out of memory");
			goto out;
		}
		ret = list_page(c, q.buf, &r, e);
		if (ret)
			goto out;
		p = r.body.buf;
		end = r.body.buf + r.body.len;
		while ((p = next_block(p, end, "Contents", &bend))) {
			sfsi_s3_xml_text(p, bend, "Key", key, sizeof(key));
			sfsi_s3_xml_text(p, bend, "Size", size, sizeof(size));
			sfsi_s3_xml_text(p, bend, "LastModified", when,
					 sizeof(when));
			p = bend;
			if (strncmp(key, c->prefix, plen))
				continue;
			rc = fn(arg, key + plen, strtoll(size, NULL, 10),
				parse_iso8601(when));
			if (rc) {
				ret = (enum sfs_status)rc;
				goto out;
			}
		}
		p = r.body.buf;
		while (dirs &&
		       (p = next_block(p, end, "CommonPrefixes", &bend))) {
			sfsi_s3_xml_text(p, bend, "Prefix", key, sizeof(key));
			p = bend;
			if (strncmp(key, full.buf, full.len))
				continue;
			rc = dirs(arg, key + full.len);
			if (rc) {
				ret = (enum sfs_status)rc;
				goto out;
			}
		}
		sfsi_s3_xml_text(r.body.buf, end, "IsTruncated", trunc,
				 sizeof(trunc));
		sfsi_s3_xml_text(r.body.buf, end, "NextContinuationToken",
				 token, sizeof(token));
	} while (!strcmp(trunc, "true") && token[0]);
out:
	sfs_buf_release(&q);
	sfs_buf_release(&full);
	sfsi_s3_req_release(&r);
	return ret;
}

enum sfs_status sfsi_s3_list(struct sfsi_s3 *c, const char *prefix,
			     int (*fn)(void *arg, const char *key, int64_t size,
				       int64_t mtime),
			     void *arg, struct sfs_err *e)
{
	return list_keys(c, prefix, fn, NULL, arg, e);
}

enum sfs_status sfsi_s3_list_level(struct sfsi_s3 *c, const char *prefix,
				   int (*fn)(void *arg, const char *key,
					     int64_t size, int64_t mtime),
				   int (*dirs)(void *arg, const char *name),
				   void *arg, struct sfs_err *e)
{
	return list_keys(c, prefix, fn, dirs, arg, e);
}

static enum sfs_status uploads_query(struct sfs_buf *q, const char *kmark,
				     int max_keys, const char *full,
				     const char *umark)
{
	enum sfs_status ret = SFS_OK;

	/* sorted: key-marker, max-uploads, prefix, upload-id-marker, uploads */
	if (kmark[0]) {
		ret = sfs_buf_adds(q, "key-marker=");
		if (!ret)
			ret = sfsi_s3_encode(q, kmark, 0);
		if (!ret)
			ret = sfs_buf_addch(q, '&');
	}
	if (!ret && max_keys)
		ret = sfs_buf_addf(q, "max-uploads=%d&", max_keys);
	if (!ret)
		ret = sfs_buf_adds(q, "prefix=");
	if (!ret)
		ret = sfsi_s3_encode(q, full, 0);
	if (!ret && umark[0]) {
		ret = sfs_buf_adds(q, "&upload-id-marker=");
		if (!ret)
			ret = sfsi_s3_encode(q, umark, 0);
	}
	if (!ret)
		ret = sfs_buf_adds(q, "&uploads=");
	return ret;
}

enum sfs_status sfsi_s3_uploads(struct sfsi_s3 *c, const char *prefix,
				int (*fn)(void *arg, const char *key,
					  const char *upload_id,
					  int64_t initiated),
				void *arg, struct sfs_err *e)
{
	struct sfs_buf q = SFS_BUF_INIT(8192), full = SFS_BUF_INIT(4096);
	struct s3_req r;
	char kmark[1100] = "", umark[512] = "", key[1100], id[512], when[40];
	char trunc[8];
	const char *p, *end, *bend;
	size_t plen = strlen(c->prefix);
	enum sfs_status ret;
	int rc;

	sfsi_s3_req_init(&r, "GET");
	if (sfs_buf_addf(&full, "%s%s", c->prefix, prefix)) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	do {
		sfs_buf_reset(&q);
		if (uploads_query(&q, kmark, c->list_max_keys, full.buf,
				  umark)) {
			ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				       "out of memory");
			goto out;
		}
		ret = list_page(c, q.buf, &r, e);
		if (ret)
			goto out;
		p = r.body.buf;
		end = r.body.buf + r.body.len;
		while ((p = next_block(p, end, "Upload", &bend))) {
			sfsi_s3_xml_text(p, bend, "Key", key, sizeof(key));
			sfsi_s3_xml_text(p, bend, "UploadId", id, sizeof(id));
			sfsi_s3_xml_text(p, bend, "Initiated", when,
					 sizeof(when));
			p = bend;
			if (strncmp(key, c->prefix, plen))
				continue;
			rc = fn(arg, key + plen, id, parse_iso8601(when));
			if (rc) {
				ret = (enum sfs_status)rc;
				goto out;
			}
		}
		sfsi_s3_xml_text(r.body.buf, end, "IsTruncated", trunc,
				 sizeof(trunc));
		sfsi_s3_xml_text(r.body.buf, end, "NextKeyMarker", kmark,
				 sizeof(kmark));
		sfsi_s3_xml_text(r.body.buf, end, "NextUploadIdMarker", umark,
				 sizeof(umark));
	} while (!strcmp(trunc, "true") && (kmark[0] || umark[0]));
out:
	sfs_buf_release(&q);
	sfs_buf_release(&full);
	sfsi_s3_req_release(&r);
	return ret;
}
