/*
 * The web page's static files, served at every path outside /api/: read
 * once at start from the page's directory into memory (a request never
 * touches the file system, so no path can reach outside it), each with a
 * content type and an ETag of its bytes; answered with 304 when the
 * browser has them, and with headers that keep the page to its own origin.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "httpd.h"
#include "speechfs/log.h"
#include "speechfs/banned.h"

#ifndef SFS_WWW_DIR
#define SFS_WWW_DIR "/usr/local/share/speechfs/www"
#endif

#define WWW_FILE_MAX (8 << 20)	 /* bytes of one file */
#define WWW_TOTAL_MAX (64 << 20) /* bytes of them all */
#define WWW_FILES_MAX 512
#define WWW_DEPTH_MAX 4

/* The browser revalidates every file (a 304 costs a round trip only)... */
#define CACHE_CONTROL "no-cache"
/* ... but keeps those named by the page's version without asking. */
#define CACHE_VERSIONED "public, max-age=31536000, immutable"
#define VERSION_PREFIX "/v/"
#define VERSION_LEN 16
/*
 * The page loads nothing from elsewhere and may not be framed; audio comes
 * from the API (same origin), waveforms are drawn on a canvas.
 */
#define CSP                                                                    \
	"default-src 'self'; script-src 'self'; style-src 'self'; "            \
	"img-src 'self' data:; media-src 'self'; connect-src 'self'; "         \
	"object-src 'none'; base-uri 'none'; form-action 'self'; "             \
	"frame-ancestors 'none'"

struct wfile {
	char *path; /* "/app.js", as requested */
	char *body;
	size_t len;
	const char *ctype;
	char etag[24]; /* "\"<16 hex>\"" */
};

static struct wfile *files;
static size_t nfiles;
static size_t total;
static char version[VERSION_LEN + 1]; /* of all the files together */

static const struct {
	const char *ext;
	const char *ctype;
} types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".webmanifest", "application/manifest+json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".txt", "text/plain; charset=utf-8" },
	{ ".woff2", "font/woff2" },
};

static const char *ctype_of(const char *path)
{
	size_t i, n = strlen(path), m;

	for (i = 0; i < ARRAY_SIZE(types); i++) {
		m = strlen(types[i].ext);
		if (n > m && strcasecmp(path + n - m, types[i].ext) == 0)
			return types[i].ctype;
	}
	return "application/octet-stream";
}

/* FNV-1a, 64 bits: an ETag tells versions apart, it guards nothing. */
static void etag_of(const char *b, size_t n, char out[24])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)b[i];
		h *= 0x100000001b3ULL;
	}
	snprintf(out, 24, "\"%016llx\"", (unsigned long long)h);
}

static int read_all(const char *path, size_t size, char **out)
{
	char *b = malloc(size ? size : 1);
	FILE *f = fopen(path, "rb");
	int rc = -1;

	if (b && f && fread(b, 1, size, f) == size) {
		*out = b;
		b = NULL;
		rc = 0;
	}
	if (f)
		fclose(f);
	free(b);
	return rc;
}

static int add_file(const char *fs_path, const char *url, size_t size)
{
	struct wfile *w;

	if (nfiles == WWW_FILES_MAX || size > WWW_FILE_MAX ||
	    total + size > WWW_TOTAL_MAX) {
		sfs_error("www",
			  "'%s': the page's files are too many or "
			  "too large",
			  fs_path);
		return -1;
	}
	if (!files) {
		files = calloc(WWW_FILES_MAX, sizeof(*files));
		if (!files)
			return -1;
	}
	w = &files[nfiles];
	w->path = strdup(url);
	if (!w->path || read_all(fs_path, size, &w->body)) {
		sfs_error("www", "cannot read '%s': %s", fs_path,
			  strerror(errno ? errno : EIO));
		free(w->path);
		w->path = NULL;
		return -1;
	}
	w->len = size;
	w->ctype = ctype_of(url);
	etag_of(w->body, size, w->etag);
	total += size;
	nfiles++;
	return 0;
}

/* Every regular file under dir, hidden ones left out. */
static int walk(const char *dir, const char *url, int depth)
{
	char fs_path[PATH_MAX], sub[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d) {
		sfs_error("www", "cannot open '%s': %s", dir, strerror(errno));
		return -1;
	}
	while (!rc && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(fs_path, sizeof(fs_path), "%s/%s", dir,
			     de->d_name) >= (int)sizeof(fs_path) ||
		    snprintf(sub, sizeof(sub), "%s/%s", url, de->d_name) >=
			    (int)sizeof(sub) ||
		    stat(fs_path, &sb)) {
			rc = -1;
			break;
		}
		if (S_ISDIR(sb.st_mode) && depth < WWW_DEPTH_MAX)
			rc = walk(fs_path, sub, depth + 1);
		else if (S_ISREG(sb.st_mode))
			rc = add_file(fs_path, sub, (size_t)sb.st_size);
	}
	closedir(d);
	return rc;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct wfile *)a)->path,
		      ((const struct wfile *)b)->path);
}

static struct wfile *find(const char *path)
{
	struct wfile key;

	key.path = (char *)path;
	return files ? bsearch(&key, files, nfiles, sizeof(*files), by_path)
		     : NULL;
}

/* The page's version: a hash of its files' ETags (they are sorted). */
static void page_version(void)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i, k;

	for (i = 0; i < nfiles; i++)
		for (k = 0; files[i].etag[k]; k++) {
			h ^= (unsigned char)files[i].etag[k];
			h *= 0x100000001b3ULL;
		}
	snprintf(version, sizeof(version), "%016llx", (unsigned long long)h);
}

/*
 * In /index.html, every attribute value that names one of the page's
 * files (style.css, js/app.js) becomes v/VERSION/ and that name, and the
 * modules' relative imports follow it: the browser keeps them all until
 * the page changes, where it would otherwise ask for each one again at
 * every visit. The version names what the files are now, so an old page
 * never gets new files under an old name kept for good.
 */
static int versioned_index(void)
{
	struct wfile *w = find("/index.html");
	const char *p, *q, *end;
	char path[PATH_MAX], *out, *o;
	size_t n = 0;

	if (!w)
		return 0;
	for (p = w->body, end = w->body + w->len; p + 1 < end; p++)
		n += p[0] == '=' && p[1] == '"';
	out = malloc(w->len + n * (sizeof(VERSION_PREFIX) + VERSION_LEN) + 1);
	if (!out)
		return -1;
	for (p = w->body, o = out; p < end;) {
		*o++ = *p++;
		if (p[-1] != '=' || p == end || *p != '"')
			continue;
		*o++ = *p++;
		q = memchr(p, '"', (size_t)(end - p));
		if (!q || q - p >= (ptrdiff_t)sizeof(path) - 1 || *p == '/')
			continue;
		snprintf(path, sizeof(path), "/%.*s", (int)(q - p), p);
		if (!find(path))
			continue;
		memcpy(o, VERSION_PREFIX + 1, strlen(VERSION_PREFIX) - 1);
		o += strlen(VERSION_PREFIX) - 1;
		memcpy(o, version, VERSION_LEN);
		o += VERSION_LEN;
		*o++ = '/';
	}
	free(w->body);
	w->body = out;
	total += (size_t)(o - out) - w->len;
	w->len = (size_t)(o - out);
	etag_of(w->body, w->len, w->etag);
	return 0;
}

/* A build's binary finds the page in the tree: <binary>/../www. */
static int tree_dir(char *out, size_t size)
{
	char exe[PATH_MAX], probe[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	snprintf(probe, sizeof(probe), "%s/../www/index.html", exe);
	if (access(probe, R_OK))
		return -1;
	snprintf(out, size, "%s/../www", exe);
	return 0;
}

int www_init(const char *dir)
{
	char found[PATH_MAX];

	if (!dir)
		dir = tree_dir(found, sizeof(found)) == 0 ? found : SFS_WWW_DIR;
	if (access(dir, F_OK)) {
		sfs_info("www", "no web page at '%s': '/' answers 404", dir);
		return 0;
	}
	if (walk(dir, "", 0)) {
		www_free();
		return -1;
	}
	qsort(files, nfiles, sizeof(*files), by_path);
	page_version();
	if (versioned_index()) {
		www_free();
		return -1;
	}
	sfs_info("www", "web page: %zu files (%zu bytes) from '%s', version %s",
		 nfiles, total, dir, version);
	return 0;
}

void www_free(void)
{
	size_t i;

	for (i = 0; i < nfiles; i++) {
		free(files[i].path);
		free(files[i].body);
	}
	free(files);
	files = NULL;
	nfiles = total = 0;
}

enum MHD_Result api_www(struct req *r)
{
	const char *cc = CACHE_CONTROL, *rel = r->path, *slash;
	struct MHD_Response *resp;
	struct wfile *w;
	char path[PATH_MAX];
	size_t n;

	/* /v/VERSION/NAME is NAME, kept for good when VERSION is current */
	if (strncmp(rel, VERSION_PREFIX, strlen(VERSION_PREFIX)) == 0) {
		rel += strlen(VERSION_PREFIX);
		slash = strchr(rel, '/');
		if (!slash)
			return respond_status(r, 404, "not_found",
					      "no such page");
		if (slash - rel == VERSION_LEN &&
		    memcmp(rel, version, VERSION_LEN) == 0)
			cc = CACHE_VERSIONED;
		rel = slash;
	}
	/* a directory's page is its index.html */
	n = strlen(rel);
	snprintf(path, sizeof(path), "%s%s", rel,
		 n && rel[n - 1] == '/' ? "index.html" : "");
	w = find(path);
	if (!w)
		return respond_status(r, 404, "not_found", "no such page");
	if (cache_fresh(r, w->etag, 0))
		return cache_not_modified(r, w->etag, cc, NULL);
	resp = MHD_create_response_from_buffer(w->len, w->body,
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", w->ctype);
	MHD_add_response_header(resp, "ETag", w->etag);
	MHD_add_response_header(resp, "Cache-Control", cc);
	MHD_add_response_header(resp, "Content-Security-Policy", CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	r->bytes_out = (int64_t)w->len;
	return respond_queue(r, 200, resp);
}
