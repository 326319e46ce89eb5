/*
 * A remote server's answer read (remote_i.h): an error body turned back
 * into the core's status, reason and field errors, a file's JSON decoded
 * into struct sfs_file, and the answer's headers the requests look at.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "speechfs/buf.h"
#include "speechfs/json.h"
#include "speechfs/remote.h"
#include "speechfs/util.h"
#include "remote_i.h"
#include "speechfs/banned.h"

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

static const char *text_of(json_t *o, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? v : dflt;
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
	if (msg)
		sfs_errf(e, st, reason_of(type), "%s", msg);
	else /* not our error body: is it a speechfsd? */
		sfs_errf(e, st, reason_of(type),
			 "the server answered HTTP %ld without an error body",
			 http_status);
	/* the fields a validation error names (an idKey refused...) */
	if (e && e->status == SFS_INVALID) {
		json_t *ve = json_object_get(j, "validation_errors"), *v;
		size_t i;

		json_array_foreach(ve, i, v)
		{
			if (e->nfields >= SFS_ERR_MAX_FIELDS)
				break;
			struct sfs_field_err *fe = &e->fields[e->nfields++];

			sfs_strlcpy(fe->field, text_of(v, "location", ""),
				    sizeof(fe->field));
			sfs_strlcpy(fe->type,
				    text_of(v, "error_type", "invalid"),
				    sizeof(fe->type));
			sfs_strlcpy(fe->message, text_of(v, "message", ""),
				    sizeof(fe->message));
		}
	}
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
	out->deleted = json_is_true(json_object_get(la, "deleted"));
	out->purged = json_is_true(json_object_get(la, "isPurged"));
	out->error = dup_str(la, "error");
	s = json_string_value(json_object_get(la, "sha256"));
	if (s && strlen(s) == 64)
		sfs_strlcpy(out->sha256, s, sizeof(out->sha256));
}

/* An extension's ns time; the ms time `ms` where the server has none. */
static int64_t ns_of(json_t *o, const char *key, int64_t ms)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v)
				  : ms * 1000000;
}

enum sfs_status sfs_remote_file_decode(const char *json, size_t len,
				       struct sfs_file *f, struct sfs_err *e)
{
	json_t *o = json_loadb(json, len, 0, NULL);
	enum sfs_status st = sfsi_remote_file_decode_obj(o, f, e);

	json_decref(o);
	return st;
}

enum sfs_status sfsi_remote_file_decode_obj(json_t *o, struct sfs_file *f,
					    struct sfs_err *e)
{
	json_t *v, *t;
	const char *s;
	size_t i;

	sfs_file_init(f);
	s = json_string_value(json_object_get(o, "id"));
	if (!json_is_object(o) || !s || strlen(s) >= sizeof(f->id))
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"the server's answer is not a file");
	sfs_strlcpy(f->id, s, sizeof(f->id));
	f->name = dup_str(o, "name");
	f->filename = dup_str(o, "filename");
	f->description = dup_str(o, "description");
	f->path = dup_str(o, "path");
	f->mime = dup_str(o, "mimeType");
	f->ingest_error = dup_str(o, "ingestionError");
	f->source_uri = dup_str(o, "sourceUri");
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
	f->mtime_ns = ns_of(o, "modifiedAtNs", f->created_at);
	f->ctime_ns = ns_of(o, "changedAtNs", f->mtime_ns / 1000000);
	v = json_object_get(o, "accessedAtNs");
	f->atime_ns = json_is_integer(v) ? (int64_t)json_integer_value(v)
					 : f->mtime_ns;
	f->suffixed = json_is_true(json_object_get(o, "entrySuffix"));
	t = json_object_get(o, "tags");
	if (json_is_array(t) && json_array_size(t)) {
		f->tags = calloc(json_array_size(t), sizeof(*f->tags));
		for (i = 0; f->tags && i < json_array_size(t); i++) {
			s = json_string_value(json_array_get(t, i));
			if (s && (f->tags[f->ntags] = strdup(s)))
				f->ntags++;
		}
	}
	if (!f->name || !f->path) {
		sfs_file_release(f);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	return SFS_OK;
}
/* ---- an answer's headers ----------------------------------------------- */

void sfsi_remote_dir_state_of(CURL *c, int ok, char *out, size_t size)
{
	struct curl_header *h;

	out[0] = '\0';
	if (ok &&
	    curl_easy_header(c, "X-Speechfs-Directory", 0, CURLH_HEADER, -1,
			     &h) == CURLHE_OK &&
	    strlen(h->value) < size)
		sfs_strlcpy(out, h->value, size);
}

int64_t sfsi_remote_crc32c_of(CURL *c, int ok)
{
	struct sfs_buf b = SFS_BUF_INIT(64);
	const unsigned char *v;
	struct curl_header *h;
	int64_t crc = -1;

	if (ok &&
	    curl_easy_header(c, "X-Speechfs-Content-Crc32c", 0, CURLH_HEADER,
			     -1, &h) == CURLHE_OK &&
	    !sfs_base64_decode(h->value, strlen(h->value), &b) && b.len == 4) {
		v = (const unsigned char *)b.buf;
		crc = (int64_t)v[0] << 24 | v[1] << 16 | v[2] << 8 | v[3];
	}
	sfs_buf_release(&b);
	return crc;
}
