/*
 * Tests of the S3 client (core/s3_i.h) against a real Ceph RADOS Gateway:
 * tests/rgw.py starts one and names it in SFS_S3_ENDPOINT, SFS_S3_REGION,
 * SFS_S3_ACCESS_KEY, SFS_S3_SECRET_KEY and SFS_S3_BUCKET (`make test` does
 * it, or `python3 tests/rgw.py run -- build/tests/t_s3`). Without them the
 * test fails. Every test works under a prefix of its own.
 *
 * About internals on purpose: the S3 client has no public header (it is
 * the core's own, below the blob store and imports), so these tests call
 * it through core/s3_i.h.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <time.h>
#include "s3_i.h"
#include "speechfs/buf.h"
#include "speechfs/fetch.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "fixture.h"
#include "testhelp.h"

static const char *endpoint, *region, *access_key, *secret_key, *bucket;
static char run_id[32];

/* Options for the gateway, keys under "<run>/<prefix>/". */
static void opts_for(struct sfsi_s3_opts *o, const char *prefix, char *buf,
		     size_t size)
{
	sfsi_s3_opts_init(o);
	snprintf(buf, size, "%s/%s/", run_id, prefix);
	o->endpoint = endpoint;
	o->region = region;
	o->bucket = bucket;
	o->access_key = access_key;
	o->secret_key = secret_key;
	o->prefix = buf;
	o->part_size = (int64_t)5 << 20;
}

static struct sfsi_s3 *client(const char *prefix)
{
	static char pfx[8][128];
	static int n;
	struct sfsi_s3_opts o;
	struct sfsi_s3 *c = NULL;
	struct sfs_err e;

	sfs_err_init(&e);
	opts_for(&o, prefix, pfx[n++ % 8], sizeof(pfx[0]));
	if (sfsi_s3_new(&o, &c, &e))
		fprintf(stderr, "sfsi_s3_new: %s\n", e.message);
	return c;
}

struct mem {
	unsigned char *buf;
	size_t len, cap;
};

static int mem_sink(void *arg, const void *data, size_t len)
{
	struct mem *m = arg;

	if (m->len + len > m->cap) {
		size_t cap = (m->len + len) * 2;
		unsigned char *b = realloc(m->buf, cap);

		if (!b)
			return SFS_NOMEM;
		m->buf = b;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, data, len);
	m->len += len;
	return 0;
}

/* A temporary file holding `pad` bytes then `n` pseudo-random bytes. */
static int temp_file(unsigned char **data, size_t n, size_t pad, unsigned seed)
{
	char path[] = "/tmp/sfs-t-s3-XXXXXX";
	unsigned char *p = malloc(n + pad);
	int fd = mkstemp(path);

	unlink(path);
	memset(p, 'x', pad);
	tfx_fill(p + pad, n, seed);
	if (fd < 0 || write(fd, p, n + pad) != (ssize_t)(n + pad)) {
		free(p);
		return -1;
	}
	memmove(p, p + pad, n);
	*data = p;
	return fd;
}

static void sha_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[32];
	int i;

	SHA256(p, n, md);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void t_put_get_head_delete(void)
{
	struct sfsi_s3 *c = client("basic");
	struct mem m = { 0 };
	struct sfs_err e;
	int64_t size = -1;
	const char *text = "hello from speechfs\n";

	REQUIRE(c);
	sfs_err_init(&e);
	CHECK_ST(sfsi_s3_put_mem(c, "hello.txt", text, strlen(text), &e),
		 SFS_OK);
	CHECK_ST(sfsi_s3_head(c, "hello.txt", &size, &e), SFS_OK);
	CHECK(size == (int64_t)strlen(text));
	size = -1;
	CHECK_ST(sfsi_s3_get(c, "hello.txt", 0, -1, mem_sink, &m, &size, &e),
		 SFS_OK);
	CHECK(m.len == strlen(text) && !memcmp(m.buf, text, m.len));
	CHECK(size == (int64_t)strlen(text));
	CHECK_ST(sfsi_s3_delete(c, "hello.txt", &e), SFS_OK);
	CHECK_ST(sfsi_s3_head(c, "hello.txt", &size, NULL), SFS_NOT_FOUND);
	sfs_err_init(&e);
	CHECK_ST(sfsi_s3_get(c, "hello.txt", 0, -1, mem_sink, &m, NULL, &e),
		 SFS_NOT_FOUND);
	CHECK(strstr(e.message, "hello.txt") != NULL);
	/* deleting what is not there is fine */
	CHECK_ST(sfsi_s3_delete(c, "hello.txt", NULL), SFS_OK);
	/* an empty object */
	m.len = 0;
	CHECK_ST(sfsi_s3_put_mem(c, "empty", "", 0, NULL), SFS_OK);
	CHECK_ST(sfsi_s3_get(c, "empty", 0, -1, mem_sink, &m, &size, NULL),
		 SFS_OK);
	CHECK(m.len == 0 && size == 0);
	free(m.buf);
	sfsi_s3_free(c);
}

static void t_put_fd_checked_hash(void)
{
	struct sfsi_s3 *c = client("hash");
	unsigned char *data = NULL;
	size_t n = 300000;
	int fd = temp_file(&data, n, 7, 1);
	struct mem m = { 0 };
	struct sfs_err e;
	char hex[65], bad[65];

	REQUIRE(c && fd >= 0);
	sha_hex(data, n, hex);
	sfs_err_init(&e);
	CHECK_ST(sfsi_s3_put_fd(c, "obj", fd, 7, (int64_t)n, hex, &e), SFS_OK);
	CHECK_ST(sfsi_s3_get(c, "obj", 0, -1, mem_sink, &m, NULL, &e), SFS_OK);
	CHECK(m.len == n && !memcmp(m.buf, data, n));
	/* the store checks the payload hash: a wrong one is refused */
	memcpy(bad, hex, sizeof(bad));
	bad[0] = bad[0] == '0' ? '1' : '0';
	sfs_err_init(&e);
	CHECK_ST(sfsi_s3_put_fd(c, "obj2", fd, 7, (int64_t)n, bad, &e), SFS_IO);
	CHECK(strstr(e.message, "SHA256Mismatch") != NULL);
	CHECK_ST(sfsi_s3_head(c, "obj2", NULL, NULL), SFS_NOT_FOUND);
	/* no hash given: computed */
	CHECK_ST(sfsi_s3_put_fd(c, "obj3", fd, 7, (int64_t)n, NULL, &e),
		 SFS_OK);
	free(m.buf);
	free(data);
	close(fd);
	sfsi_s3_free(c);
}

static int count_upload(void *arg, const char *key, const char *id,
			int64_t initiated)
{
	int *n = arg;

	(void)key;
	(void)id;
	CHECK(initiated > 1700000000);
	(*n)++;
	return 0;
}

static void t_multipart(void)
{
	struct sfsi_s3 *c = client("multi");
	unsigned char *data = NULL;
	size_t n = ((size_t)23 << 20) + 17; /* 5 parts, the last short */
	int fd = temp_file(&data, n, 3, 2);
	struct mem m = { 0 };
	struct sfs_err e;
	int64_t size = 0;
	int uploads = 0;

	REQUIRE(c && fd >= 0);
	sfs_err_init(&e);
	CHECK_ST(sfsi_s3_put_fd(c, "big", fd, 3, (int64_t)n, NULL, &e), SFS_OK);
	CHECK_ST(sfsi_s3_head(c, "big", &size, &e), SFS_OK);
	CHECK(size == (int64_t)n);
	CHECK_ST(sfsi_s3_get(c, "big", 0, -1, mem_sink, &m, NULL, &e), SFS_OK);
	CHECK(m.len == n && !memcmp(m.buf, data, n));
	CHECK_ST(sfsi_s3_uploads(c, "", count_upload, &uploads, &e), SFS_OK);
	CHECK(uploads == 0);
	free(m.buf);
	free(data);
	close(fd);
	sfsi_s3_free(c);
}

/* Parts sent by the caller, out of order and unsigned; then a copy. */
static void t_upload_parts_and_copy(void)
{
	struct sfsi_s3 *c = client("parts");
	struct sfsi_s3_upload *u = NULL;
	unsigned char *data = NULL;
	size_t n = ((size_t)11 << 20) + 3;
	int fd = temp_file(&data, n, 0, 6), uploads = 0;
	struct mem m = { 0 };
	int64_t size = 0;

	REQUIRE(c && fd >= 0);
	REQUIRE(sfsi_s3_upload_begin(c, "tmp", &u, NULL) == SFS_OK);
	CHECK_ST(sfsi_s3_upload_part(u, 3, fd, 10 << 20,
				     (int64_t)n - (10 << 20), NULL, NULL, NULL),
		 SFS_OK);
	CHECK_ST(sfsi_s3_upload_part(u, 1, fd, 0, 5 << 20, NULL, NULL, NULL),
		 SFS_OK);
	/* complete before every part is there: refused, nothing made */
	CHECK(sfsi_s3_upload_complete(u, 3, NULL) != SFS_OK);
	CHECK_ST(sfsi_s3_upload_part(u, 2, fd, 5 << 20, 5 << 20, NULL, NULL,
				     NULL),
		 SFS_OK);
	CHECK_ST(sfsi_s3_upload_complete(u, 3, NULL), SFS_OK);
	sfsi_s3_upload_free(u);
	CHECK_ST(sfsi_s3_copy(c, "tmp", "final", NULL), SFS_OK);
	CHECK_ST(sfsi_s3_delete(c, "tmp", NULL), SFS_OK);
	CHECK_ST(sfsi_s3_head(c, "final", &size, NULL), SFS_OK);
	CHECK(size == (int64_t)n);
	CHECK_ST(sfsi_s3_get(c, "final", 0, -1, mem_sink, &m, NULL, NULL),
		 SFS_OK);
	CHECK(m.len == n && !memcmp(m.buf, data, n));
	/* an upload freed before it completed is aborted */
	REQUIRE(sfsi_s3_upload_begin(c, "gone", &u, NULL) == SFS_OK);
	CHECK_ST(sfsi_s3_upload_part(u, 1, fd, 0, 5 << 20, NULL, NULL, NULL),
		 SFS_OK);
	sfsi_s3_upload_free(u);
	CHECK_ST(sfsi_s3_uploads(c, "", count_upload, &uploads, NULL), SFS_OK);
	CHECK(uploads == 0);
	CHECK_ST(sfsi_s3_head(c, "gone", NULL, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfsi_s3_copy(c, "nothing", "x", NULL), SFS_NOT_FOUND);
	free(m.buf);
	free(data);
	close(fd);
	sfsi_s3_free(c);
}

/* A part that cannot be read: the upload is aborted, nothing is left. */
static void t_multipart_failure_aborts(void)
{
	struct sfsi_s3 *c = client("abort");
	unsigned char *data = NULL;
	size_t n = (size_t)12 << 20;
	int fd = temp_file(&data, n, 0, 3);
	struct sfs_err e;
	int uploads = 0;

	REQUIRE(c && fd >= 0);
	sfs_err_init(&e);
	/* the file ends 8 MiB before the size claimed */
	CHECK(sfsi_s3_put_fd(c, "broken", fd, 0, (int64_t)n + (8 << 20), NULL,
			     &e) != SFS_OK);
	CHECK_ST(sfsi_s3_head(c, "broken", NULL, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfsi_s3_uploads(c, "", count_upload, &uploads, NULL), SFS_OK);
	CHECK(uploads == 0);
	free(data);
	close(fd);
	sfsi_s3_free(c);
}

/* A process that dies mid-upload leaves an upload to find and abort. */
static int abort_upload(void *arg, const char *key, const char *id,
			int64_t initiated)
{
	struct sfsi_s3 *c = arg;

	(void)initiated;
	CHECK(!strcmp(key, "crash"));
	CHECK_ST(sfsi_s3_abort(c, key, id, NULL), SFS_OK);
	return 0;
}

static void t_unfinished_upload_found(void)
{
	struct sfsi_s3 *c = client("crash");
	unsigned char *data = NULL;
	size_t n = (size_t)11 << 20;
	int fd = temp_file(&data, n, 0, 4), status = 0, uploads = 0;
	pid_t pid;

	REQUIRE(c && fd >= 0);
	pid = fork();
	if (pid == 0) {
		setenv("SFS_CRASH_AT", "s3-parts-sent", 1);
		if (sfsi_s3_put_fd(c, "crash", fd, 0, (int64_t)n, NULL, NULL))
			_exit(1);
		_exit(0);
	}
	REQUIRE(pid > 0);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 77);
	CHECK_ST(sfsi_s3_head(c, "crash", NULL, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfsi_s3_uploads(c, "", count_upload, &uploads, NULL), SFS_OK);
	CHECK(uploads == 1);
	CHECK_ST(sfsi_s3_uploads(c, "", abort_upload, c, NULL), SFS_OK);
	uploads = 0;
	CHECK_ST(sfsi_s3_uploads(c, "", count_upload, &uploads, NULL), SFS_OK);
	CHECK(uploads == 0);
	free(data);
	close(fd);
	sfsi_s3_free(c);
}

static void t_ranges(void)
{
	struct sfsi_s3 *c = client("range");
	unsigned char data[100000];
	struct mem m = { 0 };
	int64_t size = 0;
	struct sfs_err e;
	static const int64_t r[][2] = {
		{ 0, 1 },      { 0, 100000 }, { 99999, 1 }, { 12345, 54321 },
		{ 50000, -1 }, { 99999, -1 }, { 1, 99999 },
	};
	size_t i;

	REQUIRE(c);
	tfx_fill(data, sizeof(data), 5);
	REQUIRE(sfsi_s3_put_mem(c, "r", data, sizeof(data), NULL) == SFS_OK);
	for (i = 0; i < ARRAY_SIZE(r); i++) {
		int64_t want = r[i][1] < 0 ? 100000 - r[i][0] : r[i][1];

		m.len = 0;
		size = 0;
		CHECK_ST(sfsi_s3_get(c, "r", r[i][0], r[i][1], mem_sink, &m,
				     &size, NULL),
			 SFS_OK);
		CHECK(m.len == (size_t)want &&
		      !memcmp(m.buf, data + r[i][0], m.len));
		CHECK(size == 100000);
	}
	sfs_err_init(&e);
	CHECK_ST(sfsi_s3_get(c, "r", 100000, 10, mem_sink, &m, NULL, &e),
		 SFS_RANGE);
	/* a range running past the end is short: said so */
	CHECK_ST(sfsi_s3_get(c, "r", 99990, 20, mem_sink, &m, NULL, NULL),
		 SFS_RANGE);
	free(m.buf);
	sfsi_s3_free(c);
}

struct listing {
	char keys[64][64];
	int64_t sizes[64];
	int n;
};

static int collect(void *arg, const char *key, int64_t size, int64_t mtime)
{
	struct listing *l = arg;

	CHECK(mtime > 1700000000);
	if (l->n < 64) {
		snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
		l->sizes[l->n++] = size;
	}
	return 0;
}

static int stop_at_two(void *arg, const char *key, int64_t size, int64_t mtime)
{
	int *n = arg;

	(void)key;
	(void)size;
	(void)mtime;
	return ++*n == 2 ? SFS_CONFLICT : 0;
}

static void t_list_pages(void)
{
	struct sfsi_s3_opts o;
	struct sfsi_s3 *c = NULL;
	struct listing l;
	char pfx[128], key[32];
	int i, n = 0;

	opts_for(&o, "list", pfx, sizeof(pfx));
	o.list_max_keys = 3; /* several pages */
	REQUIRE(sfsi_s3_new(&o, &c, NULL) == SFS_OK);
	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "a/%02d", i);
		CHECK_ST(sfsi_s3_put_mem(c, key, "0123456789", (size_t)i, NULL),
			 SFS_OK);
	}
	CHECK_ST(sfsi_s3_put_mem(c, "b/x", "x", 1, NULL), SFS_OK);
	memset(&l, 0, sizeof(l));
	CHECK_ST(sfsi_s3_list(c, "a/", collect, &l, NULL), SFS_OK);
	CHECK(l.n == 10);
	for (i = 0; i < l.n && i < 10; i++) {
		snprintf(key, sizeof(key), "a/%02d", i);
		CHECK(!strcmp(l.keys[i], key));
		CHECK(l.sizes[i] == i);
	}
	memset(&l, 0, sizeof(l));
	CHECK_ST(sfsi_s3_list(c, "", collect, &l, NULL), SFS_OK);
	CHECK(l.n == 11 && !strcmp(l.keys[10], "b/x"));
	CHECK_ST(sfsi_s3_list(c, "", stop_at_two, &n, NULL), SFS_CONFLICT);
	CHECK(n == 2);
	sfsi_s3_free(c);
}

static void t_odd_keys(void)
{
	struct sfsi_s3 *c = client("odd");
	static const char *keys[] = {
		"with space", "plus+and&amp", "utf8-\xc3\xa9\xe2\x82\xac",
		"a~b_c-d.e",  "q?x=1#frag",   "percent%20",
	};
	struct listing l;
	struct mem m = { 0 };
	size_t i;

	REQUIRE(c);
	for (i = 0; i < ARRAY_SIZE(keys); i++)
		CHECK_ST(sfsi_s3_put_mem(c, keys[i], keys[i], strlen(keys[i]),
					 NULL),
			 SFS_OK);
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		m.len = 0;
		CHECK_ST(sfsi_s3_get(c, keys[i], 0, -1, mem_sink, &m, NULL,
				     NULL),
			 SFS_OK);
		CHECK(m.len == strlen(keys[i]) &&
		      !memcmp(m.buf, keys[i], m.len));
	}
	memset(&l, 0, sizeof(l));
	CHECK_ST(sfsi_s3_list(c, "", collect, &l, NULL), SFS_OK);
	CHECK(l.n == (int)ARRAY_SIZE(keys));
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		int found = 0, j;

		for (j = 0; j < l.n; j++)
			found |= !strcmp(l.keys[j], keys[i]);
		CHECK(found);
	}
	free(m.buf);
	sfsi_s3_free(c);
}

/* ---- presigned URLs, fetched by libcurl without credentials ---- */

struct fetched {
	struct mem body;
	char ctype[128], disp[256];
	long code;
};

static size_t fetch_body(char *p, size_t s, size_t n, void *arg)
{
	return mem_sink(&((struct fetched *)arg)->body, p, s * n) ? 0 : s * n;
}

static size_t fetch_header(char *p, size_t s, size_t n, void *arg)
{
	struct fetched *f = arg;
	size_t len = s * n;
	char line[512];

	if (len >= sizeof(line))
		return len;
	memcpy(line, p, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (!strncasecmp(line, "content-type: ", 14))
		snprintf(f->ctype, sizeof(f->ctype), "%s", line + 14);
	if (!strncasecmp(line, "content-disposition: ", 21))
		snprintf(f->disp, sizeof(f->disp), "%s", line + 21);
	return len;
}

static void fetch_url(const char *url, struct fetched *f)
{
	CURL *h = curl_easy_init();

	memset(f, 0, sizeof(*f));
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, fetch_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &f->code);
	curl_easy_cleanup(h);
}

static void t_presign(void)
{
	struct sfsi_s3 *c = client("presign");
	const char *text = "presigned bytes";
	struct fetched f;
	char *url = NULL, *sig;
	int64_t deadline;

	REQUIRE(c);
	REQUIRE(sfsi_s3_put_mem(c, "p q.mp3", text, strlen(text), NULL) ==
		SFS_OK);
	CHECK_ST(sfsi_s3_presign(c, "p q.mp3", 300, "audio/mpeg",
				 "attachment; filename=\"a b.mp3\"", &url,
				 NULL),
		 SFS_OK);
	REQUIRE(url);
	fetch_url(url, &f);
	CHECK(f.code == 200);
	CHECK(f.body.len == strlen(text) &&
	      !memcmp(f.body.buf, text, f.body.len));
	CHECK(!strcmp(f.ctype, "audio/mpeg"));
	CHECK(!strcmp(f.disp, "attachment; filename=\"a b.mp3\""));
	free(f.body.buf);
	/* a changed signature is refused */
	sig = strstr(url, "X-Amz-Signature=");
	REQUIRE(sig);
	sig += 16;
	*sig = *sig == 'a' ? 'b' : 'a';
	fetch_url(url, &f);
	CHECK(f.code == 403);
	free(f.body.buf);
	free(url);
	url = NULL;
	/* an expired one too (the store's clock has second resolution) */
	CHECK_ST(sfsi_s3_presign(c, "p q.mp3", 1, NULL, NULL, &url, NULL),
		 SFS_OK);
	deadline = (int64_t)time(NULL) + 15;
	do {
		fetch_url(url, &f);
		free(f.body.buf);
		if (f.code == 403)
			break;
		usleep(200000);
	} while ((int64_t)time(NULL) < deadline);
	CHECK(f.code == 403);
	free(url);
	url = NULL;
	CHECK_ST(sfsi_s3_presign(c, "x", 0, NULL, NULL, &url, NULL),
		 SFS_INVALID);
	CHECK(url == NULL);
	sfsi_s3_free(c);
}

/* ---- failures ---- */

static int closed_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(s, (struct sockaddr *)&a, sizeof(a));
	getsockname(s, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(s); /* bound, never listening, closed: refused */
	return port;
}

static void t_errors(void)
{
	struct sfsi_s3_opts o;
	struct sfsi_s3 *c = NULL;
	struct sfs_err e;
	char pfx[128], url[64];
	int64_t t0;

	/* wrong secret: the store says why */
	opts_for(&o, "err", pfx, sizeof(pfx));
	o.secret_key = "not-the-secret";
	REQUIRE(sfsi_s3_new(&o, &c, NULL) == SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfsi_s3_put_mem(c, "x", "x", 1, &e), SFS_IO);
	CHECK(strstr(e.message, "403") &&
	      strstr(e.message, "SignatureDoesNotMatch"));
	sfsi_s3_free(c);
	/* no such bucket */
	opts_for(&o, "err", pfx, sizeof(pfx));
	o.bucket = "no-such-bucket-here";
	REQUIRE(sfsi_s3_new(&o, &c, NULL) == SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfsi_s3_put_mem(c, "x", "x", 1, &e), SFS_IO);
	CHECK(strstr(e.message, "NoSuchBucket") != NULL);
	sfs_err_init(&e);
	/* not "no such object": RGW says 405 MethodNotAllowed here */
	CHECK_ST(sfsi_s3_get(c, "x", 0, -1, mem_sink, NULL, NULL, &e), SFS_IO);
	sfs_err_init(&e);
	CHECK_ST(sfsi_s3_list(c, "", collect, NULL, &e), SFS_IO);
	CHECK(strstr(e.message, "NoSuchBucket") != NULL);
	/* a HEAD has no body to say which: the key is "not found" */
	CHECK_ST(sfsi_s3_head(c, "x", NULL, NULL), SFS_NOT_FOUND);
	sfsi_s3_free(c);
	/* nothing listening: unavailable, after the retries, quickly */
	opts_for(&o, "err", pfx, sizeof(pfx));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
	o.endpoint = url;
	REQUIRE(sfsi_s3_new(&o, &c, NULL) == SFS_OK);
	sfs_err_init(&e);
	t0 = (int64_t)time(NULL);
	CHECK_ST(sfsi_s3_put_mem(c, "x", "x", 1, &e), SFS_UNAVAILABLE);
	CHECK(strstr(e.message, "127.0.0.1") != NULL);
	CHECK((int64_t)time(NULL) - t0 < 10);
	sfs_err_init(&e);
	CHECK_ST(sfsi_s3_get(c, "x", 0, -1, mem_sink, NULL, NULL, &e),
		 SFS_UNAVAILABLE);
	sfsi_s3_free(c);
	/* bad options */
	opts_for(&o, "err", pfx, sizeof(pfx));
	o.bucket = "Bad_Bucket";
	CHECK_ST(sfsi_s3_new(&o, &c, NULL), SFS_INVALID);
	opts_for(&o, "err", pfx, sizeof(pfx));
	o.endpoint = "ftp://example.org";
	CHECK_ST(sfsi_s3_new(&o, &c, NULL), SFS_INVALID);
	opts_for(&o, "err", pfx, sizeof(pfx));
	o.part_size = 1 << 20;
	CHECK_ST(sfsi_s3_new(&o, &c, NULL), SFS_INVALID);
	opts_for(&o, "err", pfx, sizeof(pfx));
	o.secret_key = "";
	CHECK_ST(sfsi_s3_new(&o, &c, NULL), SFS_INVALID);
}

/* Virtual-hosted addressing: bucket.localhost, resolved by curl. */
static void t_virtual_hosted(void)
{
	struct sfsi_s3_opts o;
	struct sfsi_s3 *c = NULL;
	struct mem m = { 0 };
	char pfx[128], url[128];
	const char *port = strrchr(endpoint, ':');

	REQUIRE(port);
	opts_for(&o, "vhost", pfx, sizeof(pfx));
	snprintf(url, sizeof(url), "http://localhost%s", port);
	o.endpoint = url;
	o.path_style = 0;
	REQUIRE(sfsi_s3_new(&o, &c, NULL) == SFS_OK);
	CHECK_ST(sfsi_s3_put_mem(c, "v", "virtual", 7, NULL), SFS_OK);
	CHECK_ST(sfsi_s3_get(c, "v", 0, -1, mem_sink, &m, NULL, NULL), SFS_OK);
	CHECK(m.len == 7 && !memcmp(m.buf, "virtual", 7));
	free(m.buf);
	sfsi_s3_free(c);
	/* the same object, path-style */
	c = client("vhost");
	REQUIRE(c);
	CHECK_ST(sfsi_s3_head(c, "v", NULL, NULL), SFS_OK);
	sfsi_s3_free(c);
}

struct worker {
	struct sfsi_s3 *c;
	int id, failed;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	unsigned char data[70000];
	struct mem m = { 0 };
	char key[32];
	int i;

	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "t%d-%d", w->id, i);
		tfx_fill(data, sizeof(data), (unsigned)(w->id * 100 + i));
		m.len = 0;
		if (sfsi_s3_put_mem(w->c, key, data, sizeof(data), NULL) ||
		    sfsi_s3_get(w->c, key, 0, -1, mem_sink, &m, NULL, NULL) ||
		    m.len != sizeof(data) || memcmp(m.buf, data, m.len) ||
		    sfsi_s3_delete(w->c, key, NULL))
			w->failed++;
	}
	free(m.buf);
	return NULL;
}

static void t_threads_share_a_client(void)
{
	struct sfsi_s3 *c = client("threads");
	struct worker w[8];
	pthread_t th[8];
	int i;

	REQUIRE(c);
	for (i = 0; i < 8; i++) {
		w[i].c = c;
		w[i].id = i;
		w[i].failed = 0;
		REQUIRE(pthread_create(&th[i], NULL, work, &w[i]) == 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK(w[i].failed == 0);
	}
	sfsi_s3_free(c);
}

/* The URI import signs with curl too: s3:// from the real gateway. */
static void t_import_from_gateway(void)
{
	struct sfsi_s3 *c = client("import");
	struct sfs_config cfg;
	struct sfs_store *s = NULL;
	struct sfs_stage *st = NULL;
	struct sfs_err e;
	char *dir = th_tmpdir(), uri[256], pfx[128], want[65];
	unsigned char data[50000];

	REQUIRE(c);
	tfx_fill(data, sizeof(data), 9);
	sha_hex(data, sizeof(data), want);
	REQUIRE(sfsi_s3_put_mem(c, "rec.wav", data, sizeof(data), NULL) ==
		SFS_OK);
	sfs_config_init(&cfg);
	REQUIRE(sfs_config_set(&cfg, "s3.endpoint", endpoint, NULL) == SFS_OK);
	REQUIRE(sfs_config_set(&cfg, "s3.region", region, NULL) == SFS_OK);
	REQUIRE(sfs_config_set(&cfg, "s3.access_key", access_key, NULL) ==
		SFS_OK);
	REQUIRE(sfs_config_set(&cfg, "s3.secret_key", secret_key, NULL) ==
		SFS_OK);
	REQUIRE(sfs_config_set(&cfg, "import.allow", "127.0.0.1", NULL) ==
		SFS_OK);
	REQUIRE(sfs_store_init(dir, NULL) == SFS_OK);
	REQUIRE(sfs_store_open(dir, &cfg, &s, NULL) == SFS_OK);
	REQUIRE(sfs_stage_new(s, &st, NULL) == SFS_OK);
	snprintf(pfx, sizeof(pfx), "%s/import/rec.wav", run_id);
	snprintf(uri, sizeof(uri), "s3://%s/%s", bucket, pfx);
	sfs_err_init(&e);
	CHECK_ST(sfs_fetch(&cfg, uri, st, 0, NULL, NULL, &e), SFS_OK);
	if (e.status)
		fprintf(stderr, "fetch: %s\n", e.message);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	CHECK(sfs_stage_size(st) == (int64_t)sizeof(data));
	CHECK(!strcmp(sfs_stage_sha256(st), want));
	sfs_stage_free(st);
	st = NULL;
	/* a key that is not there: the store's answer, for people */
	REQUIRE(sfs_stage_new(s, &st, NULL) == SFS_OK);
	snprintf(uri, sizeof(uri), "s3://%s/%s/import/none.wav", bucket,
		 run_id);
	sfs_err_init(&e);
	CHECK_ST(sfs_fetch(&cfg, uri, st, 0, NULL, NULL, &e), SFS_IO);
	CHECK(strstr(e.message, "404") && strstr(e.message, "NoSuchKey"));
	sfs_stage_free(st);
	sfs_store_close(s);
	th_rmrf(dir);
	sfsi_s3_free(c);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	endpoint = getenv("SFS_S3_ENDPOINT");
	region = getenv("SFS_S3_REGION");
	access_key = getenv("SFS_S3_ACCESS_KEY");
	secret_key = getenv("SFS_S3_SECRET_KEY");
	bucket = getenv("SFS_S3_BUCKET");
	if (!endpoint || !region || !access_key || !secret_key || !bucket) {
		fprintf(stderr,
			"t_s3 needs a gateway: SFS_S3_ENDPOINT, SFS_S3_REGION, "
			"SFS_S3_ACCESS_KEY, SFS_S3_SECRET_KEY, SFS_S3_BUCKET "
			"(run it with 'python3 tests/rgw.py run -- %s')\n",
			"build/tests/t_s3");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	snprintf(run_id, sizeof(run_id), "t%ld-%d", (long)time(NULL),
		 (int)getpid());
	RUN(t_put_get_head_delete);
	RUN(t_put_fd_checked_hash);
	RUN(t_multipart);
	RUN(t_upload_parts_and_copy);
	RUN(t_multipart_failure_aborts);
	RUN(t_unfinished_upload_found);
	RUN(t_ranges);
	RUN(t_list_pages);
	RUN(t_odd_keys);
	RUN(t_presign);
	RUN(t_errors);
	RUN(t_virtual_hosted);
	RUN(t_threads_share_a_client);
	RUN(t_import_from_gateway);
	return th_report();
}
