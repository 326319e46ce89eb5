/*
 * The JSON of the API's objects (files, listening audio, shares, lists),
 * in one place so the REST daemon and the mount's JSON xattr agree field
 * for field with the API document; its ISO 8601 timestamps are
 * json_time.c's. Each object's fields are written once, through an
 * encoder that either builds jansson objects or appends the same compact
 * text straight to a buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include "json_i.h"
#include "speechfs/json.h"
#include "speechfs/vpath.h"
#include "util_i.h"

/*
 * An encoder of one JSON object: with `obj` it fills a jansson object,
 * with `out` it appends compact JSON text, byte for byte what
 * json_dumps(obj, JSON_COMPACT) would give (insertion order, the same
 * escapes). The first failure sticks, so long runs of fields need one
 * check at the end.
 */
struct enc {
	json_t *obj;
	struct sfs_buf *out;
	int n; /* text: fields written so far */
	int bad;
};

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

static int tag_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int r = strcasecmp(x, y);

	return r ? r : strcmp(x, y);
}

/* ---- the encoder ------------------------------------------------------- */

/*
 * The field writers are inlined where the object's fields are listed, so
 * the keys' lengths and the literals' copies are known when compiling:
 * a listing writes some 800 fields.
 */
#define ENC_INLINE static inline __attribute__((always_inline))

/*
 * Text: room for n more bytes at the end of the buffer (NULL once
 * anything failed); out_commit then records what was written. One check
 * per field rather than one per character.
 */
static char *out_reserve_slow(struct enc *w, size_t n)
{
	if (w->bad || sfs_buf_grow(w->out, n)) {
		w->bad = 1;
		return NULL;
	}
	return w->out->buf + w->out->len;
}

/* The room is there but for the first fields of an object: inline. */
static inline char *out_reserve(struct enc *w, size_t n)
{
	struct sfs_buf *b = w->out;

	if (!w->bad && b->alloc - b->len > n && n <= b->max - b->len)
		return b->buf + b->len;
	return out_reserve_slow(w, n);
}

ENC_INLINE void out_commit(struct enc *w, char *end)
{
	w->out->len = (size_t)(end - w->out->buf);
	*end = '\0';
}

ENC_INLINE void out_add(struct enc *w, const char *s, size_t n)
{
	char *p = out_reserve(w, n);

	if (p) {
		memcpy(p, s, n);
		out_commit(w, p + n);
	}
}

ENC_INLINE void out_ch(struct enc *w, char c)
{
	out_add(w, &c, 1);
}

static int dump_cb(const char *buf, size_t size, void *data)
{
	return sfs_buf_add(data, buf, size) ? -1 : 0;
}

/* Text: a jansson value as jansson dumps it (taken: decref'd). */
static void out_json(struct enc *w, json_t *v)
{
	if (!v)
		w->bad = 1;
	else if (!w->bad && json_dump_callback(v, dump_cb, w->out,
					       JSON_COMPACT | JSON_ENCODE_ANY))
		w->bad = 1;
	json_decref(v);
}

/*
 * Text: a string as JSON. ASCII is escaped here as jansson does it
 * (\" \\ \b \f \n \r \t, other controls \u00XX, nothing else); anything
 * else goes through jansson, so UTF-8 checks and U+FFFD replacement stay
 * those of jstr().
 */
static void out_str(struct enc *w, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char *o;
	size_t n = 0;

	for (p = (const unsigned char *)s; *p; p++, n++)
		if (*p >= 0x80) {
			out_json(w, jstr(s));
			return;
		}
	if (w->bad || sfs_buf_grow(w->out, n * 6 + 2)) {
		w->bad = 1;
		return;
	}
	o = w->out->buf + w->out->len;
	*o++ = '"';
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x20 && *p != '"' && *p != '\\') {
			*o++ = (char)*p;
			continue;
		}
		*o++ = '\\';
		switch (*p) {
		case '"':
		case '\\':
			*o++ = (char)*p;
			break;
		case '\b':
			*o++ = 'b';
			break;
		case '\f':
			*o++ = 'f';
			break;
		case '\n':
			*o++ = 'n';
			break;
		case '\r':
			*o++ = 'r';
			break;
		case '\t':
			*o++ = 't';
			break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o++ = '"';
	*o = '\0';
	w->out->len = (size_t)(o - w->out->buf);
}

/*
 * Text: the key of the next field and `n` bytes of its value, s (which
 * must need no escaping). Keys are the API's names: plain ASCII.
 */
ENC_INLINE void out_field(struct enc *w, const char *key, const char *v,
			  size_t n)
{
	size_t k = strlen(key);
	char *p = out_reserve(w, k + n + 4);

	if (!p)
		return;
	if (w->n++)
		*p++ = ',';
	*p++ = '"';
	memcpy(p, key, k);
	p += k;
	*p++ = '"';
	*p++ = ':';
	memcpy(p, v, n);
	out_commit(w, p + n);
}

/* Text: the key of the next field (its value follows). */
ENC_INLINE void out_key(struct enc *w, const char *key)
{
	out_field(w, key, "", 0);
}

/*
 * The bytes that end a plain run: controls, '"', '\\', DEL and all but
 * ASCII (escaped, or checked as UTF-8), and the terminating NUL. One load
 * and compare a byte: a listing scans some 4 KiB of ids, names and dates.
 */
static const unsigned char not_plain[256] = {
	[0x00 ... 0x1f] = 1,
	['"'] = 1,
	['\\'] = 1,
	[0x7f ... 0xff] = 1,
};

/* Does s need no escaping nor UTF-8 checks (printable ASCII, no " \\)? */
static int plain(const char *s, size_t *len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (;;) {
		if (not_plain[p[0]])
			break;
		if (not_plain[p[1]]) {
			p += 1;
			break;
		}
		if (not_plain[p[2]]) {
			p += 2;
			break;
		}
		if (not_plain[p[3]]) {
			p += 3;
			break;
		}
		p += 4;
	}
	if (*p)
		return 0;
	*len = (size_t)(p - (const unsigned char *)s);
	return 1;
}

/* Text: a field whose string value is plain(): one copy. */
ENC_INLINE void out_plain(struct enc *w, const char *key, const char *s,
			  size_t n)
{
	size_t k = strlen(key);
	char *p = out_reserve(w, k + n + 6);

	if (!p)
		return;
	if (w->n++)
		*p++ = ',';
	*p++ = '"';
	memcpy(p, key, k);
	p += k;
	memcpy(p, "\":\"", 3);
	p += 3;
	memcpy(p, s, n);
	p += n;
	*p++ = '"';
	out_commit(w, p);
}

/* Any field as a jansson value (taken); the slow path of text. */
static void e_json(struct enc *w, const char *key, json_t *v)
{
	if (w->out) {
		out_key(w, key);
		out_json(w, v);
		return;
	}
	if (!v || json_object_set_new(w->obj, key, v))
		w->bad = 1;
}

/* A literal: null, true, false. */
ENC_INLINE void e_lit(struct enc *w, const char *key, const char *lit)
{
	if (!w->out) {
		e_json(w, key,
		       lit[0] == 'n' ? json_null()
				     : json_boolean(lit[0] == 't'));
		return;
	}
	out_field(w, key, lit, strlen(lit));
}

ENC_INLINE void e_null(struct enc *w, const char *key)
{
	e_lit(w, key, "null");
}

ENC_INLINE void e_bool(struct enc *w, const char *key, int b)
{
	e_lit(w, key, b ? "true" : "false");
}

/* v in decimal, as "%lld" writes it, into out[24]; its length. */
static size_t fmt_int(char out[24], int64_t v)
{
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[--i] = '-';
	memcpy(out, tmp + i, sizeof(tmp) - i);
	return sizeof(tmp) - i;
}

ENC_INLINE void e_int(struct enc *w, const char *key, int64_t v)
{
	char num[24];

	if (!w->out) {
		e_json(w, key, json_integer((json_int_t)v));
		return;
	}
	out_field(w, key, num, fmt_int(num, v));
}

/* An integer, null when negative. */
ENC_INLINE void e_size(struct enc *w, const char *key, int64_t v)
{
	if (v < 0)
		e_null(w, key);
	else
		e_int(w, key, v);
}

/* A user's string (U+FFFD for bad UTF-8), null when NULL. */
ENC_INLINE void e_str(struct enc *w, const char *key, const char *s)
{
	size_t n;

	if (!s) {
		e_null(w, key);
	} else if (w->out && plain(s, &n)) {
		out_plain(w, key, s, n);
	} else if (w->out) {
		out_key(w, key);
		out_str(w, s);
	} else {
		e_json(w, key, jstr(s));
	}
}

/* A name from a table, null when the value has none. */
ENC_INLINE void e_name(struct enc *w, const char *key, const char *s)
{
	if (!s)
		e_null(w, key);
	else if (w->out)
		e_str(w, key, s);
	else
		e_json(w, key, jname(s));
}

/* A timestamp the API never shows as null. */
ENC_INLINE void e_time_nn(struct enc *w, const char *key, int64_t ms)
{
	char buf[32];

	sfsi_json_format_ms(ms, buf);
	e_name(w, key, buf);
}

/* A timestamp, null when 0. */
ENC_INLINE void e_time(struct enc *w, const char *key, int64_t ms)
{
	if (!ms)
		e_null(w, key);
	else
		e_time_nn(w, key, ms);
}

/* Start a nested object under key; e_end puts it in place. */
static void e_begin(struct enc *w, const char *key, struct enc *child)
{
	memset(child, 0, sizeof(*child));
	if (w->out) {
		out_key(w, key);
		out_ch(w, '{');
		child->out = w->out;
		child->bad = w->bad;
		return;
	}
	child->obj = json_object();
	child->bad = !child->obj;
}

static void e_end(struct enc *w, const char *key, struct enc *child)
{
	if (w->out) {
		w->bad |= child->bad;
		out_ch(w, '}');
		return;
	}
	if (child->bad) {
		json_decref(child->obj);
		w->bad = 1;
		return;
	}
	e_json(w, key, child->obj);
}

/* A top-level encoder: a new jansson object, or text into out. */
static void enc_init(struct enc *w, struct sfs_buf *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	if (out)
		out_ch(w, '{');
	else
		w->bad = !(w->obj = json_object());
}

static json_t *enc_obj(struct enc *w)
{
	if (w->bad) {
		json_decref(w->obj);
		return NULL;
	}
	return w->obj;
}

static enum sfs_status enc_text(struct enc *w)
{
	out_ch(w, '}');
	return w->bad ? SFS_NOMEM : SFS_OK;
}

/* Tags, sorted case-insensitively (then bytewise). */
static void e_tags(struct enc *w, const char *key, char *const *tags, size_t n)
{
	json_t *arr = NULL;
	const char **v = NULL;
	size_t i;

	if (n) {
		v = malloc(n * sizeof(*v));
		if (!v) {
			w->bad = 1;
			return;
		}
		for (i = 0; i < n; i++)
			v[i] = tags[i];
		qsort(v, n, sizeof(*v), tag_cmp);
	}
	if (w->out) {
		out_key(w, key);
		out_ch(w, '[');
		for (i = 0; i < n; i++) {
			if (i)
				out_ch(w, ',');
			out_str(w, v[i]);
		}
		out_ch(w, ']');
		free(v);
		return;
	}
	arr = json_array();
	for (i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, jstr(v[i]))) {
			json_decref(arr);
			arr = NULL;
		}
	free(v);
	e_json(w, key, arr);
}

/* Stored metadata text, re-encoded; null unless it is a JSON object. */
static void e_metadata(struct enc *w, const char *key, const char *text)
{
	json_t *v;

	if (!text) {
		e_null(w, key);
		return;
	}
	v = json_loads(text, JSON_DECODE_ANY, NULL);
	if (!v || !json_is_object(v)) {
		json_decref(v);
		e_null(w, key);
		return;
	}
	e_json(w, key, v);
}

/* The names of the states set in a bit mask of 1 << enum sfs_jstate. */
static void e_states(struct enc *w, const char *key, unsigned mask)
{
	json_t *arr = json_array();
	int st;

	for (st = SFS_JS_PENDING; arr && st <= SFS_JS_FAILED; st++) {
		if (!(mask & (1u << st)))
			continue;
		if (json_array_append_new(arr, json_string(sfs_jstate_name(
						       (enum sfs_jstate)st)))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	e_json(w, key, arr);
}

/* ---- the objects --------------------------------------------------------- */

static void listening_fields(struct enc *w, const struct sfs_listening *la)
{
	e_name(w, "status", sfs_jstate_name(la->status));
	e_size(w, "size", la->size);
	e_time(w, "createdAt", la->created_at);
	e_bool(w, "deleted", la->deleted);
	e_bool(w, "isPurged", la->purged);
	e_time(w, "deletedAt", la->deleted_at);
	e_time(w, "purgedAt", la->purged_at);
	e_time(w, "purgeAt", la->purge_at);
	e_str(w, "error", la->error);
	/* extension: the MP3's content address, for a mount's cache */
	e_str(w, "sha256", la->sha256[0] ? la->sha256 : NULL);
}

json_t *sfs_json_listening(const struct sfs_listening *la)
{
	struct enc w;

	if (!la || la->status == SFS_JS_NONE)
		return json_null();
	enc_init(&w, NULL);
	listening_fields(&w, la);
	return enc_obj(&w);
}

static void file_fields(struct enc *w, const struct sfs_file *f)
{
	struct enc la;

	e_str(w, "id", f->id);
	e_str(w, "name", f->name ? f->name : "");
	e_str(w, "filename", f->filename);
	e_str(w, "description", f->description);
	e_str(w, "path", f->path ? f->path : "/");
	e_size(w, "size", f->size);
	if (f->duration >= 0 && isfinite(f->duration))
		e_json(w, "durationSeconds", json_real(f->duration));
	else
		e_null(w, "durationSeconds");
	e_str(w, "sha256", f->sha256[0] ? f->sha256 : NULL);
	e_str(w, "mimeType", f->mime);
	e_name(w, "ingestionStatus", sfs_jstate_name(f->ingestion));
	e_str(w, "ingestionError", f->ingest_error);
	if (f->la.status == SFS_JS_NONE) {
		e_null(w, "listeningAudio");
	} else {
		e_begin(w, "listeningAudio", &la);
		listening_fields(&la, &f->la);
		e_end(w, "listeningAudio", &la);
	}
	e_bool(w, "isDeleted", f->deleted);
	e_bool(w, "isPurged", f->purged);
	e_bool(w, "isContentDiscarded", f->discarded);
	e_time_nn(w, "creationDate", f->created_at);
	e_time(w, "deletedAt", f->deleted_at);
	e_time(w, "purgedAt", f->purged_at);
	e_time(w, "purgeAt", f->purge_at);
	e_time(w, "contentDiscardedAt", f->discarded_at);
	e_metadata(w, "metadata", f->metadata);
	e_tags(w, "tags", f->tags, f->ntags);
	e_name(w, "publishMode", sfs_publish_name(f->publish));
	e_time(w, "publishedAt", f->published_at);
	/* extensions for remote mounts: the times a mount shows, in ns,
	 * and whether its entry carries the id suffix for good */
	e_int(w, "modifiedAtNs", f->mtime_ns);
	e_int(w, "accessedAtNs", f->atime_ns);
	e_int(w, "changedAtNs", f->ctime_ns);
	e_bool(w, "entrySuffix", f->suffixed);
	/* the URI a file was imported from (a mount's user.xdg.origin.url) */
	e_str(w, "sourceUri", f->source_uri);
}

static void shared_file_fields(struct enc *w, const struct sfs_file *f)
{
	int direct = f->access == SFS_ACCESS_DIRECT_SHARE;

	file_fields(w, f);
	e_name(w, "accessType", sfs_access_name(f->access));
	e_name(w, "permission", direct ? sfs_perm_name(f->perm) : NULL);
	e_str(w, "sharedBy", direct && f->shared_by[0] ? f->shared_by : NULL);
	/* extension: whose file it is (a mount's /.shared/OWNER/) */
	e_str(w, "ownerId", f->owner_id[0] ? f->owner_id : NULL);
	/* ... and an integer that orders owners as the store made them
	 * (older first): a mount's tie-break of two owners of one name */
	e_size(w, "ownerOrder", f->owner_id[0] ? f->owner : -1);
	if (direct)
		e_time(w, "sharedAt", f->shared_at);
	else
		e_null(w, "sharedAt");
}

json_t *sfs_json_file(const struct sfs_file *f)
{
	struct enc w;

	enc_init(&w, NULL);
	file_fields(&w, f);
	return enc_obj(&w);
}

json_t *sfs_json_shared_file(const struct sfs_file *f)
{
	struct enc w;

	enc_init(&w, NULL);
	shared_file_fields(&w, f);
	return enc_obj(&w);
}

enum sfs_status sfs_json_file_text(const struct sfs_file *f,
				   struct sfs_buf *out)
{
	struct enc w;

	enc_init(&w, out);
	file_fields(&w, f);
	return enc_text(&w);
}

json_t *sfs_json_share(const struct sfs_share *sh)
{
	struct enc w;

	enc_init(&w, NULL);
	e_str(&w, "id", sh->id);
	e_str(&w, "fileId", sh->file_id);
	e_str(&w, "userId", sh->user_id);
	e_name(&w, "permission", sfs_perm_name(sh->perm));
	e_str(&w, "createdBy", sh->created_by);
	e_time_nn(&w, "createdAt", sh->created_at);
	return enc_obj(&w);
}

static void filter_fields(struct enc *w, const struct sfs_query *q, int shared)
{
	if (!q)
		return;
	if (shared) {
		if (q->access >= 0)
			e_name(w, "accessType",
			       sfs_access_name((enum sfs_access)q->access));
		if (q->name)
			e_str(w, "name", q->name);
		if (q->filename)
			e_str(w, "filename", q->filename);
		return;
	}
	e_str(w, "path", q->path ? q->path : "/");
	e_bool(w, "recursive", q->recursive);
	if (q->deleted >= 0)
		e_bool(w, "isDeleted", q->deleted);
	if (q->discarded >= 0)
		e_bool(w, "isContentDiscarded", q->discarded);
	if (q->purged >= 0)
		e_bool(w, "isPurged", q->purged);
	if (q->ingestion)
		e_states(w, "ingestionStatus", q->ingestion);
	if (q->name)
		e_str(w, "name", q->name);
	if (q->filename)
		e_str(w, "filename", q->filename);
	if (q->sha256[0])
		e_str(w, "sha256", q->sha256);
	if (q->created_after != INT64_MIN)
		e_time_nn(w, "createdAfter", q->created_after);
	if (q->created_before != INT64_MAX)
		e_time_nn(w, "createdBefore", q->created_before);
	if (q->la_status)
		e_states(w, "listeningAudio.status", q->la_status);
	if (q->la_deleted >= 0)
		e_bool(w, "listeningAudio.deleted", q->la_deleted);
	if (q->la_discarded >= 0)
		e_bool(w, "listeningAudio.contentDiscarded", q->la_discarded);
	if (q->ntags) {
		e_tags(w, "tags", q->tags, q->ntags);
		e_name(w, "tagsMatch", q->tags_any ? "any" : "all");
	}
	if (q->publish >= 0)
		e_name(w, "publishMode",
		       sfs_publish_name((enum sfs_publish)q->publish));
}

static void sort_fields(struct enc *w, const struct sfs_query *q)
{
	static const char *const fields[] = {
		[SFS_SORT_CREATED] = "creationDate",
		[SFS_SORT_NAME] = "name",
		[SFS_SORT_SIZE] = "size",
	};
	const char *field = "creationDate";
	int desc = 1;

	if (q) {
		if ((unsigned)q->sort < ARRAY_SIZE(fields))
			field = fields[q->sort];
		desc = q->desc;
	}
	e_name(w, "field", field);
	e_name(w, "direction", desc ? "desc" : "asc");
}

/* Text: the "files" array. */
static void out_files(struct enc *w, const struct sfs_file_list *l, int shared)
{
	struct enc f;
	size_t i;

	out_key(w, "files");
	out_ch(w, '[');
	for (i = 0; i < l->n; i++) {
		if (i)
			out_ch(w, ',');
		memset(&f, 0, sizeof(f));
		f.out = w->out;
		f.bad = w->bad;
		out_ch(&f, '{');
		if (shared)
			shared_file_fields(&f, &l->files[i]);
		else
			file_fields(&f, &l->files[i]);
		out_ch(&f, '}');
		w->bad |= f.bad;
	}
	out_ch(w, ']');
}

/* jansson: the "files" array. */
static void obj_files(struct enc *w, const struct sfs_file_list *l, int shared)
{
	json_t *files = json_array();
	size_t i;

	for (i = 0; files && i < l->n; i++)
		if (json_array_append_new(
			    files, shared ? sfs_json_shared_file(&l->files[i])
					  : sfs_json_file(&l->files[i])))
			w->bad = 1;
	e_json(w, "files", files);
}

static void list_fields(struct enc *w, const struct sfs_file_list *l,
			const struct sfs_query *q, int shared)
{
	char cursor[SFS_CURSOR_SIZE];
	struct enc sub;
	json_t *dirs;
	size_t i;

	if (w->out)
		out_files(w, l, shared);
	else
		obj_files(w, l, shared);
	if (!shared && l->has_dirs && !(q && q->recursive)) {
		if (w->out) {
			out_key(w, "directories");
			out_ch(w, '[');
			for (i = 0; i < l->ndirs; i++) {
				if (i)
					out_ch(w, ',');
				out_str(w, l->dirs[i]);
			}
			out_ch(w, ']');
		} else {
			dirs = json_array();
			for (i = 0; dirs && i < l->ndirs; i++)
				if (json_array_append_new(dirs,
							  jstr(l->dirs[i])))
					w->bad = 1;
			e_json(w, "directories", dirs);
		}
	}
	e_int(w, "size", (int64_t)l->n);
	e_int(w, "total", l->total);
	if (!shared) /* an extension: the next page by keyset */
		e_str(w, "nextCursor",
		      q && sfs_query_cursor(q, l, cursor, sizeof(cursor))
			      ? cursor
			      : NULL);
	e_begin(w, "filters", &sub);
	filter_fields(&sub, q, shared);
	e_end(w, "filters", &sub);
	e_begin(w, "sort", &sub);
	sort_fields(&sub, q);
	e_end(w, "sort", &sub);
}

json_t *sfs_json_file_list(const struct sfs_file_list *l,
			   const struct sfs_query *q, int shared)
{
	struct enc w;

	enc_init(&w, NULL);
	list_fields(&w, l, q, shared);
	return enc_obj(&w);
}

enum sfs_status sfs_json_file_list_text(const struct sfs_file_list *l,
					const struct sfs_query *q, int shared,
					struct sfs_buf *out)
{
	struct enc w;

	enc_init(&w, out);
	list_fields(&w, l, q, shared);
	return enc_text(&w);
}
