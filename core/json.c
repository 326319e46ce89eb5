/*
 * The JSON of the API's objects (files, listening audio, shares, lists)
 * and ISO 8601 timestamps, in one place so the REST daemon and the mount's
 * JSON xattr agree field for field with the API document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "speechfs/json.h"
#include "speechfs/vpath.h"
#include "util_i.h"

/*
 * A JSON builder that remembers the first failure, so long runs of fields
 * need one check at the end instead of one per field.
 */
struct jb {
	json_t *obj;
	int bad;
};

static void put(struct jb *b, const char *key, json_t *v)
{
	if (!v || json_object_set_new(b->obj, key, v))
		b->bad = 1;
}

static json_t *finish(struct jb *b)
{
	if (b->bad) {
		json_decref(b->obj);
		return NULL;
	}
	return b->obj;
}

/* Bytes in the UTF-8 sequence a lead byte starts; 0 for no lead byte. */
static size_t seq_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 0;
}

/*
 * A string that is always valid JSON: bytes that are not UTF-8 (which the
 * validators should have kept out) become U+FFFD instead of failing.
 */
static json_t *jstr_n(const char *s, size_t len)
{
	json_t *v;
	char *tmp;
	size_t i = 0, o = 0, n;

	v = json_stringn(s, len);
	if (v)
		return v;
	tmp = malloc(len * 3 + 1);
	if (!tmp)
		return NULL;
	while (i < len) {
		n = seq_len((unsigned char)s[i]);
		if (n && s[i] && n <= len - i && sfs_utf8_valid(s + i, n)) {
			memcpy(tmp + o, s + i, n);
			o += n;
			i += n;
			continue;
		}
		memcpy(tmp + o, "\xef\xbf\xbd", 3);
		o += 3;
		i++;
	}
	v = json_stringn(tmp, o);
	free(tmp);
	return v;
}

static json_t *jstr(const char *s)
{
	return s ? jstr_n(s, strlen(s)) : json_null();
}

/* A name from a table, or null when the value has none. */
static json_t *jname(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void format_ms(int64_t ms, char out[32])
{
	int64_t secs = ms / 1000, frac = ms % 1000;
	time_t t;
	struct tm tm;
	char tmp[96];

	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	t = (time_t)secs;
	if (!gmtime_r(&t, &tm)) {
		out[0] = '\0';
		return;
	}
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)frac);
	sfs_strlcpy(out, tmp, 32);
}

void sfs_iso8601(int64_t ms, char out[32])
{
	if (!ms) {
		out[0] = '\0';
		return;
	}
	format_ms(ms, out);
}

/* A timestamp, null when 0. */
static json_t *jtime(int64_t ms)
{
	char buf[32];

	if (!ms)
		return json_null();
	format_ms(ms, buf);
	return json_string(buf);
}

/* A timestamp the API never shows as null. */
static json_t *jtime_nn(int64_t ms)
{
	char buf[32];

	format_ms(ms, buf);
	return json_string(buf);
}

static int digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30,
				 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : d[m - 1];
}

int sfs_iso8601_parse(const char *s, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0, oh, om, n;
	struct tm tm;
	time_t t;

	if (!s || !ms)
		return -1;
	if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -1;
	s += 10;
	if (*s) {
		if (*s != 'T' || digits(s + 1, 2, &h) || s[3] != ':' ||
		    digits(s + 4, 2, &mi) || s[6] != ':' ||
		    digits(s + 7, 2, &sec))
			return -1;
		if (h > 23 || mi > 59 || sec > 59)
			return -1;
		s += 9;
		if (*s == '.') {
			s++;
			for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
				if (n < 3)
					frac = frac * 10 + (s[n] - '0');
			if (!n)
				return -1;
			for (; n < 3; n++)
				frac *= 10;
			while (*s >= '0' && *s <= '9')
				s++;
		}
		if (*s == 'Z') {
			s++;
		} else if (*s == '+' || *s == '-') {
			if (digits(s + 1, 2, &oh) || s[3] != ':' ||
			    digits(s + 4, 2, &om) || oh > 23 || om > 59)
				return -1;
			off = (oh * 60 + om) * 60;
			if (*s == '-')
				off = -off;
			s += 6;
		} else {
			return -1;
		}
		if (*s)
			return -1;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*ms = ((int64_t)t - off) * 1000 + frac;
	return 0;
}

static int tag_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int r = strcasecmp(x, y);

	return r ? r : strcmp(x, y);
}

static json_t *jtags(char *const *tags, size_t n)
{
	json_t *arr = json_array();
	const char **v = NULL;
	size_t i;

	if (!arr)
		return NULL;
	if (!n)
		return arr;
	v = malloc(n * sizeof(*v));
	if (!v)
		goto fail;
	for (i = 0; i < n; i++)
		v[i] = tags[i];
	qsort(v, n, sizeof(*v), tag_cmp);
	for (i = 0; i < n; i++)
		if (json_array_append_new(arr, jstr(v[i])))
			goto fail;
	free(v);
	return arr;
fail:
	free(v);
	json_decref(arr);
	return NULL;
}

static json_t *jmetadata(const char *text)
{
	json_t *v;

	if (!text)
		return json_null();
	v = json_loads(text, JSON_DECODE_ANY, NULL);
	if (!v || !json_is_object(v)) {
		json_decref(v);
		return json_null();
	}
	return v;
}

json_t *sfs_json_listening(const struct sfs_listening *la)
{
	struct jb b = { NULL, 0 };

	if (!la || la->status == SFS_JS_NONE)
		return json_null();
	b.obj = json_object();
	if (!b.obj)
		return NULL;
	put(&b, "status", jname(sfs_jstate_name(la->status)));
	put(&b, "size", la->size < 0 ? json_null() : json_integer(la->size));
	put(&b, "createdAt", jtime(la->created_at));
	put(&b, "deleted", json_boolean(la->deleted));
	put(&b, "isPurged", json_boolean(la->purged));
	put(&b, "deletedAt", jtime(la->deleted_at));
	put(&b, "purgedAt", jtime(la->purged_at));
	put(&b, "purgeAt", jtime(la->purge_at));
	put(&b, "error", jstr(la->error));
	return finish(&b);
}

static void file_fields(struct jb *b, const struct sfs_file *f)
{
	put(b, "id", jstr(f->id));
	put(b, "name", jstr(f->name ? f->name : ""));
	put(b, "filename", jstr(f->filename));
	put(b, "description", jstr(f->description));
	put(b, "path", jstr(f->path ? f->path : "/"));
	put(b, "size", f->size < 0 ? json_null() : json_integer(f->size));
	put(b, "durationSeconds",
	    f->duration >= 0 && isfinite(f->duration) ?
		    json_real(f->duration) : json_null());
	put(b, "sha256", f->sha256[0] ? jstr(f->sha256) : json_null());
	put(b, "mimeType", jstr(f->mime));
	put(b, "ingestionStatus", jname(sfs_jstate_name(f->ingestion)));
	put(b, "ingestionError", jstr(f->ingest_error));
	put(b, "listeningAudio", sfs_json_listening(&f->la));
	put(b, "isDeleted", json_boolean(f->deleted));
	put(b, "isPurged", json_boolean(f->purged));
	put(b, "isContentDiscarded", json_boolean(f->discarded));
	put(b, "creationDate", jtime_nn(f->created_at));
	put(b, "deletedAt", jtime(f->deleted_at));
	put(b, "purgedAt", jtime(f->purged_at));
	put(b, "purgeAt", jtime(f->purge_at));
	put(b, "contentDiscardedAt", jtime(f->discarded_at));
	put(b, "metadata", jmetadata(f->metadata));
	put(b, "tags", jtags(f->tags, f->ntags));
	put(b, "publishMode", jname(sfs_publish_name(f->publish)));
	put(b, "publishedAt", jtime(f->published_at));
}

json_t *sfs_json_file(const struct sfs_file *f)
{
	struct jb b = { json_object(), 0 };

	if (!b.obj)
		return NULL;
	file_fields(&b, f);
	return finish(&b);
}

json_t *sfs_json_shared_file(const struct sfs_file *f)
{
	struct jb b = { json_object(), 0 };
	int direct = f->access == SFS_ACCESS_DIRECT_SHARE;

	if (!b.obj)
		return NULL;
	file_fields(&b, f);
	put(&b, "accessType", jname(sfs_access_name(f->access)));
	put(&b, "permission",
	    direct ? jname(sfs_perm_name(f->perm)) : json_null());
	put(&b, "sharedBy",
	    direct && f->shared_by[0] ? jstr(f->shared_by) : json_null());
	put(&b, "sharedAt", direct ? jtime(f->shared_at) : json_null());
	return finish(&b);
}

json_t *sfs_json_share(const struct sfs_share *sh)
{
	struct jb b = { json_object(), 0 };

	if (!b.obj)
		return NULL;
	put(&b, "id", jstr(sh->id));
	put(&b, "fileId", jstr(sh->file_id));
	put(&b, "userId", jstr(sh->user_id));
	put(&b, "permission", jname(sfs_perm_name(sh->perm)));
	put(&b, "createdBy", jstr(sh->created_by));
	put(&b, "createdAt", jtime_nn(sh->created_at));
	return finish(&b);
}

/* The names of the states set in a bit mask of 1 << enum sfs_jstate. */
static json_t *jstates(unsigned mask)
{
	json_t *arr = json_array();
	int st;

	if (!arr)
		return NULL;
	for (st = SFS_JS_PENDING; st <= SFS_JS_FAILED; st++) {
		if (!(mask & (1u << st)))
			continue;
		if (json_array_append_new(arr, json_string(sfs_jstate_name(
						       (enum sfs_jstate)st)))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *jfilters(const struct sfs_query *q, int shared)
{
	struct jb b = { json_object(), 0 };

	if (!b.obj)
		return NULL;
	if (!q)
		return b.obj;
	if (shared) {
		if (q->access >= 0)
			put(&b, "accessType",
			    jname(sfs_access_name((enum sfs_access)q->access)));
		if (q->name)
			put(&b, "name", jstr(q->name));
		if (q->filename)
			put(&b, "filename", jstr(q->filename));
		return finish(&b);
	}
	put(&b, "path", jstr(q->path ? q->path : "/"));
	put(&b, "recursive", json_boolean(q->recursive));
	if (q->deleted >= 0)
		put(&b, "isDeleted", json_boolean(q->deleted));
	if (q->discarded >= 0)
		put(&b, "isContentDiscarded", json_boolean(q->discarded));
	if (q->ingestion)
		put(&b, "ingestionStatus", jstates(q->ingestion));
	if (q->name)
		put(&b, "name", jstr(q->name));
	if (q->filename)
		put(&b, "filename", jstr(q->filename));
	if (q->sha256[0])
		put(&b, "sha256", jstr(q->sha256));
	if (q->created_after != INT64_MIN)
		put(&b, "createdAfter", jtime_nn(q->created_after));
	if (q->created_before != INT64_MAX)
		put(&b, "createdBefore", jtime_nn(q->created_before));
	if (q->la_status)
		put(&b, "listeningAudio.status", jstates(q->la_status));
	if (q->la_deleted >= 0)
		put(&b, "listeningAudio.deleted", json_boolean(q->la_deleted));
	if (q->la_discarded >= 0)
		put(&b, "listeningAudio.contentDiscarded",
		    json_boolean(q->la_discarded));
	if (q->ntags) {
		put(&b, "tags", jtags(q->tags, q->ntags));
		put(&b, "tagsMatch", json_string(q->tags_any ? "any" : "all"));
	}
	if (q->publish >= 0)
		put(&b, "publishMode",
		    jname(sfs_publish_name((enum sfs_publish)q->publish)));
	return finish(&b);
}

static json_t *jsort(const struct sfs_query *q)
{
	static const char *const fields[] = {
		[SFS_SORT_CREATED] = "creationDate",
		[SFS_SORT_NAME] = "name",
		[SFS_SORT_SIZE] = "size",
	};
	struct jb b = { json_object(), 0 };
	const char *field = "creationDate";
	int desc = 1;

	if (!b.obj)
		return NULL;
	if (q) {
		if ((unsigned)q->sort < ARRAY_SIZE(fields))
			field = fields[q->sort];
		desc = q->desc;
	}
	put(&b, "field", json_string(field));
	put(&b, "direction", json_string(desc ? "desc" : "asc"));
	return finish(&b);
}

json_t *sfs_json_file_list(const struct sfs_file_list *l,
			   const struct sfs_query *q, int shared)
{
	struct jb b = { json_object(), 0 };
	json_t *files = NULL, *dirs = NULL;
	size_t i;

	if (!b.obj)
		return NULL;
	files = json_array();
	put(&b, "files", files);
	for (i = 0; files && i < l->n; i++)
		if (json_array_append_new(files,
					  shared ? sfs_json_shared_file(
							   &l->files[i])
						 : sfs_json_file(&l->files[i])))
			b.bad = 1;
	if (!shared && l->has_dirs && !(q && q->recursive)) {
		dirs = json_array();
		put(&b, "directories", dirs);
		for (i = 0; dirs && i < l->ndirs; i++)
			if (json_array_append_new(dirs, jstr(l->dirs[i])))
				b.bad = 1;
	}
	put(&b, "size", json_integer((json_int_t)l->n));
	put(&b, "total", json_integer(l->total));
	put(&b, "filters", jfilters(q, shared));
	put(&b, "sort", jsort(q));
	return finish(&b);
}
