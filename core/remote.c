/*
 * The remote store's first pieces (remote.h): one libcurl handle kept
 * alive between requests (one TCP connection), the server's features
 * read from its OpenAPI document, error bodies turned back into the
 * core's statuses and reasons, a file's JSON decoded, new content
 * versions streamed from a file, and the change feed.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <jansson.h>
#include "speechfs/buf.h"
#include "speechfs/json.h"
#include "speechfs/log.h"
#include "speechfs/remote.h"
#include "util_i.h"
#include "speechfs/banned.h"

#define API "/api/v1/speech-services"
#define ANSWER_MAX (64 << 20)

struct sfs_remote {
	CURL *curl;
	char base[512];
	char key_header[128];
	int timeout_s;
	unsigned features;
};

/* ---- answers -> the core's statuses ---------------------------------- */

static enum sfs_status status_of_http(long code, const char *type)
{
	switch (code) {
	case 400:
		return SFS_INVALID;
	case 401:
		return SFS_UNAUTHENTICATED;
	case 403:
		return SFS_FORBIDDEN;
	case 404:
		return SFS_NOT_FOUND;
	case 409:
		return SFS_CONFLICT;
	case 410:
		return SFS_GONE;
	case 412:
		return SFS_PRECONDITION;
	case 413:
		return type && !strcmp(type, "quota_exceeded") ? SFS_QUOTA
							       : SFS_TOO_LARGE;
	case 416:
		return SFS_RANGE;
	case 422:
		return SFS_NOT_READY;
	case 429:
		return SFS_RATE_LIMITED;
	case 503:
		return type && !strcmp(type, "busy") ? SFS_BUSY
						     : SFS_UNAVAILABLE;
	case 507:
		return SFS_NO_SPACE;
	default:
		return SFS_IO;
	}
}

static enum sfs_reason reason_of(const char *type)
{
	int i;

	for (i = 1; type && i < SFS_R_MAX; i++) {
		const char *n = sfs_reason_name((enum sfs_reason)i);

		if (n && !strcmp(n, type))
			return (enum sfs_reason)i;
	}
	return SFS_R_NONE;
}

enum sfs_status sfs_remote_status(long http_status, const char *body,
				  size_t len, struct sfs_err *e)
{
	const char *type = NULL, *msg = NULL;
	enum sfs_status st;
	json_t *j = NULL;

	if (http_status >= 200 && http_status < 300)
		return SFS_OK;
	if (body && len)
		j = json_loadb(body, len, 0, NULL);
	type = json_string_value(json_object_get(j, "error_type"));
	msg = json_string_value(json_object_get(j, "message"));
	st = status_of_http(http_status, type);
	sfs_errf(e, st, reason_of(type), "%s",
		 msg ? msg : "the server answered an error");
	json_decref(j);
	return st;
}

/* ---- a file's JSON ----------------------------------------------------- */

static char *dup_str(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? strdup(v) : NULL;
}

static int64_t ms_of(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	int64_t ms = 0;

	if (v && sfs_iso8601_parse(v, &ms))
		ms = 0;
	return ms;
}

static void decode_listening(json_t *la, struct sfs_listening *out)
{
	const char *s = json_string_value(json_object_get(la, "status"));
	json_t *v;

	if (!json_is_object(la))
		return;
	out->status = s && sfs_jstate_parse(s) > 0 ? sfs_jstate_parse(s)
						   : SFS_JS_NONE;
	v = json_object_get(la, "size");
	out->size = json_is_integer(v) ? json_integer_value(v) : -1;
	out->created_at = ms_of(la, "createdAt");
	out->deleted = json_is_true(json_object_get(la, "isDeleted"));
	out->purged = json_is_true(json_object_get(la, "isPurged"));
	out->error = dup_str(la, "error");
}

enum sfs_status sfs_remote_file_decode(const char *json, size_t len,
				       struct sfs_file *f, struct sfs_err *e)
{
	json_t *o, *v, *t;
	const char *s;
	size_t i;

	sfs_file_init(f);
	o = json_loadb(json, len, 0, NULL);
	s = json_string_value(json_object_get(o, "id"));
	if (!json_is_object(o) || !s || strlen(s) >= sizeof(f->id)) {
		json_decref(o);
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"the server's answer is not a file");
	}
	sfs_strlcpy(f->id, s, sizeof(f->id));
	f->name = dup_str(o, "name");
	f->filename = dup_str(o, "filename");
	f->description = dup_str(o, "description");
	f->path = dup_str(o, "path");
	f->mime = dup_str(o, "mimeType");
	f->ingest_error = dup_str(o, "ingestionError");
	v = json_object_get(o, "metadata");
	if (json_is_object(v))
		f->metadata = json_dumps(v, JSON_COMPACT);
	v = json_object_get(o, "size");
	f->size = json_is_integer(v) ? json_integer_value(v) : -1;
	v = json_object_get(o, "durationSeconds");
	f->duration = json_is_number(v) ? json_number_value(v) : -1;
	s = json_string_value(json_object_get(o, "sha256"));
	if (s)
		sfs_strlcpy(f->sha256, s, sizeof(f->sha256));
	s = json_string_value(json_object_get(o, "ingestionStatus"));
	f->ingestion = s && sfs_jstate_parse(s) > 0 ? sfs_jstate_parse(s)
						    : SFS_JS_NONE;
	f->deleted = json_is_true(json_object_get(o, "isDeleted"));
	f->purged = json_is_true(json_object_get(o, "isPurged"));
	f->discarded = json_is_true(json_object_get(o, "isContentDiscarded"));
	f->created_at = ms_of(o, "creationDate");
	f->deleted_at = ms_of(o, "deletedAt");
	f->purged_at = ms_of(o, "purgedAt");
	f->purge_at = ms_of(o, "purgeAt");
	f->discarded_at = ms_of(o, "contentDiscardedAt");
	f->published_at = ms_of(o, "publishedAt");
	s = json_string_value(json_object_get(o, "publishMode"));
	f->publish = s && sfs_publish_parse(s) > 0 ? SFS_PUBLISH_INTERNAL
						   : SFS_PUBLISH_PRIVATE;
	decode_listening(json_object_get(o, "listeningAudio"), &f->la);
	t = json_object_get(o, "tags");
	if (json_is_array(t) && json_array_size(t)) {
		f->tags = calloc(json_array_size(t), sizeof(*f->tags));
		for (i = 0; f->tags && i < json_array_size(t); i++) {
			s = json_string_value(json_array_get(t, i));
			if (s && (f->tags[f->ntags] = strdup(s)))
				f->ntags++;
		}
	}
	json_decref(o);
	if (!f->name || !f->path) {
		sfs_file_release(f);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	return SFS_OK;
}

/* ---- requests ---------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct sfs_buf *b = arg;

	return sfs_buf_add(b, p, size * n) ? 0 : size * n;
}

struct upload {
	int fd;
};

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	ssize_t got;

	do
		got = read(u->fd, p, size * n);
	while (got < 0 && errno == EINTR);
	return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

/*
 * One request: method and path under the base URL, an optional upload
 * (fd, its size) and extra header; the answer's body into b. The core's
 * status of the answer (SFS_UNAVAILABLE when there was none).
 */
static enum sfs_status request(struct sfs_remote *r, const char *method,
			       const char *path, int fd, int64_t size,
			       const char *header, int timeout_s,
			       struct sfs_buf *b, struct sfs_err *e)
{
	struct curl_slist *h = NULL;
	struct upload u = { fd };
	char url[2048];
	long code = 0;
	CURLcode rc;

	snprintf(url, sizeof(url), "%s%s", r->base, path);
	curl_easy_reset(r->curl);
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	curl_easy_setopt(r->curl, CURLOPT_PROXY, "");
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, (long)r->timeout_s);
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_TIME, (long)r->timeout_s);
	curl_easy_setopt(r->curl, CURLOPT_TIMEOUT,
			 (long)(timeout_s ? timeout_s : 2 * r->timeout_s));
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, b);
	h = curl_slist_append(h, r->key_header);
	if (header)
		h = curl_slist_append(h, header);
	if (fd >= 0) {
		curl_easy_setopt(r->curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(r->curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(r->curl, CURLOPT_READDATA, &u);
		curl_easy_setopt(r->curl, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)size);
	}
	curl_easy_setopt(r->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, h);
	rc = curl_easy_perform(r->curl);
	curl_slist_free_all(h);
	if (rc != CURLE_OK)
		return sfs_errf(e, SFS_UNAVAILABLE, SFS_R_NONE, "'%s': %s", url,
				curl_easy_strerror(rc));
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
	return sfs_remote_status(code, b->buf, b->len, e);
}

static void read_features(struct sfs_remote *r)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	json_t *doc, *paths, *content;

	r->features = 0;
	if (request(r, "GET", "/api/v1/openapi.json", -1, 0, NULL, 0, &b,
		    NULL) == SFS_OK) {
		doc = json_loadb(b.buf, b.len, 0, NULL);
		paths = json_object_get(doc, "paths");
		content = json_object_get(paths, API "/files/{id}/content");
		if (json_object_get(content, "put"))
			r->features |= SFS_REMOTE_CONTENT;
		if (json_object_get(paths, API "/directories/rename"))
			r->features |= SFS_REMOTE_DIRS;
		if (json_object_get(paths, API "/changes"))
			r->features |= SFS_REMOTE_CHANGES;
		json_decref(doc);
	}
	sfs_buf_release(&b);
}

enum sfs_status sfs_remote_open(const char *base_url, const char *api_key,
				int timeout_s, struct sfs_remote **out,
				struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	struct sfs_remote *r;
	enum sfs_status st;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (strlen(base_url) >= sizeof(r->base) ||
	    strlen(api_key) > sizeof(r->key_header) - 12) {
		free(r);
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"the URL or the key is too long");
	}
	sfs_strlcpy(r->base, base_url, sizeof(r->base));
	snprintf(r->key_header, sizeof(r->key_header), "X-API-Key: %s",
		 api_key);
	r->timeout_s = timeout_s > 0 ? timeout_s : 10;
	r->curl = curl_easy_init();
	if (!r->curl) {
		free(r);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	st = request(r, "GET", "/healthz", -1, 0, NULL, 0, &b, e);
	sfs_buf_release(&b);
	if (st) {
		sfs_remote_close(r);
		return st;
	}
	read_features(r);
	*out = r;
	return SFS_OK;
}

void sfs_remote_close(struct sfs_remote *r)
{
	if (!r)
		return;
	curl_easy_cleanup(r->curl);
	free(r);
}

unsigned sfs_remote_features(const struct sfs_remote *r)
{
	return r->features;
}

enum sfs_status sfs_remote_file_get(struct sfs_remote *r, const char *id,
				    struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	char path[128];
	enum sfs_status st;

	sfs_file_init(out);
	if (!sfs_uuid_valid(id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this id exists");
	snprintf(path, sizeof(path), API "/files/%s", id);
	st = request(r, "GET", path, -1, 0, NULL, 0, &b, e);
	if (!st)
		st = sfs_remote_file_decode(b.buf, b.len, out, e);
	sfs_buf_release(&b);
	return st;
}

enum sfs_status sfs_remote_set_content(struct sfs_remote *r, const char *id,
				       int fd, const char *if_match,
				       struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	char path[128], hdr[96];
	enum sfs_status st;
	off_t size;

	if (out)
		sfs_file_init(out);
	if (!(r->features & SFS_REMOTE_CONTENT))
		return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				"the server keeps no content versions (no "
				"PUT /files/{id}/content)");
	if (!sfs_uuid_valid(id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this id exists");
	size = lseek(fd, 0, SEEK_END);
	if (size < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot seek: %s",
				strerror(errno));
	snprintf(path, sizeof(path), API "/files/%s/content", id);
	if (if_match)
		snprintf(hdr, sizeof(hdr), "If-Match: %s%s%s",
			 strcmp(if_match, "*") ? "\"" : "", if_match,
			 strcmp(if_match, "*") ? "\"" : "");
	st = request(r, "PUT", path, fd, size, if_match ? hdr : NULL, 0, &b, e);
	if (!st && out)
		st = sfs_remote_file_decode(b.buf, b.len, out, e);
	sfs_buf_release(&b);
	return st;
}

enum sfs_status
sfs_remote_changes(struct sfs_remote *r, const char *cursor, int timeout_s,
		   void (*fn)(void *arg, const char *json, size_t len),
		   void *arg, char *next, size_t size, int *more,
		   struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	json_t *j = NULL, *ch;
	char path[160];
	const char *c;
	enum sfs_status st;
	size_t i;

	*more = 0;
	if (!(r->features & SFS_REMOTE_CHANGES))
		return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				"the server has no change feed");
	if (cursor && strspn(cursor, "0123456789") != strlen(cursor))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "a bad cursor");
	if (cursor)
		snprintf(path, sizeof(path),
			 API "/changes?cursor=%s&timeout=%d", cursor,
			 timeout_s);
	else
		snprintf(path, sizeof(path), API "/changes");
	st = request(r, "GET", path, -1, 0, NULL, timeout_s + r->timeout_s + 5,
		     &b, e);
	if (!st)
		j = json_loadb(b.buf, b.len, 0, NULL);
	c = json_string_value(json_object_get(j, "cursor"));
	ch = json_object_get(j, "changes");
	if (!st && (!c || !json_is_array(ch)))
		st = sfs_errf(e, SFS_IO, SFS_R_NONE,
			      "the server's answer is not a change list");
	if (!st) {
		sfs_strlcpy(next, c, size);
		*more = json_is_true(json_object_get(j, "hasMore"));
		for (i = 0; i < json_array_size(ch); i++) {
			char *s =
				json_dumps(json_array_get(ch, i), JSON_COMPACT);

			if (!s) {
				st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					      "out of memory");
				break;
			}
			fn(arg, s, strlen(s));
			free(s);
		}
	}
	json_decref(j);
	sfs_buf_release(&b);
	return st;
}
