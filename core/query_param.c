/*
 * The query parameters of the file listings (GET /files and
 * shared-with-me): one parser per parameter, found by name in a table;
 * a bad value is a field error named after the parameter.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "speechfs/json.h"
#include "speechfs/query.h"
#include "speechfs/tag.h"
#include "speechfs/vpath.h"
#include "util_i.h"

void sfs_query_init(struct sfs_query *q)
{
	memset(q, 0, sizeof(*q));
	q->page = 0;
	q->size = SFS_PAGE_SIZE_DEFAULT;
	q->deleted = 0;
	q->discarded = -1;
	q->purged = -1;
	q->created_after = INT64_MIN;
	q->created_before = INT64_MAX;
	q->la_deleted = -1;
	q->la_discarded = -1;
	q->path = strdup("/"); /* NULL (out of memory) also means "/" */
	q->recursive = 0;
	q->sort = SFS_SORT_CREATED;
	q->desc = 1;
	q->tags_any = 0;
	q->publish = -1;
	q->access = -1;
}

void sfs_query_release(struct sfs_query *q)
{
	free(q->name);
	free(q->filename);
	free(q->path);
	sfs_strv_free(q->tags);
	q->name = q->filename = q->path = NULL;
	q->tags = NULL;
	q->ntags = 0;
}

static enum sfs_status bad(struct sfs_err *e, const char *key, const char *why)
{
	return sfs_err_field(e, key, "invalid", "%s", why);
}

static enum sfs_status parse_bool(const char *key, const char *v, int *out,
				  struct sfs_err *e)
{
	if (!strcmp(v, "true"))
		*out = 1;
	else if (!strcmp(v, "false"))
		*out = 0;
	else
		return bad(e, key, "must be true or false");
	return SFS_OK;
}

/* "PENDING,FAILED" -> a mask of 1 << enum sfs_jstate. */
static enum sfs_status parse_states(const char *key, const char *v,
				    unsigned *out, struct sfs_err *e)
{
	char item[16];
	const char *p = v, *end;
	unsigned mask = 0;
	int st;

	for (;;) {
		size_t n;

		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		while (p < end && *p == ' ')
			p++;
		n = (size_t)(end - p);
		while (n && p[n - 1] == ' ')
			n--;
		st = -1;
		if (n && n < sizeof(item)) {
			memcpy(item, p, n);
			item[n] = '\0';
			st = sfs_jstate_parse(item);
		}
		if (st < 0)
			return bad(e, key,
				   "values are PENDING, PROCESSING, "
				   "COMPLETED, FAILED");
		mask |= 1u << st;
		if (!*end)
			break;
		p = end + 1;
	}
	*out = mask;
	return SFS_OK;
}

static enum sfs_status parse_sort(const char *key, const char *v,
				  struct sfs_query *q, struct sfs_err *e)
{
	static const struct {
		const char *name;
		enum sfs_sort sort;
	} fields[] = {
		{ "creationDate", SFS_SORT_CREATED },
		{ "name", SFS_SORT_NAME },
		{ "size", SFS_SORT_SIZE },
	};
	const char *comma = strchr(v, ',');
	size_t n = comma ? (size_t)(comma - v) : strlen(v), i;
	int desc = 0;

	for (i = 0; i < ARRAY_SIZE(fields); i++)
		if (strlen(fields[i].name) == n &&
		    !memcmp(fields[i].name, v, n))
			break;
	if (i == ARRAY_SIZE(fields))
		return bad(e, key, "fields are name, creationDate, size");
	if (comma) {
		if (!strcasecmp(comma + 1, "desc"))
			desc = 1;
		else if (strcasecmp(comma + 1, "asc"))
			return bad(e, key, "direction is asc or desc");
	}
	q->sort = fields[i].sort;
	q->desc = desc;
	return SFS_OK;
}

static enum sfs_status parse_tags(const char *key, const char *v,
				  struct sfs_query *q, struct sfs_err *e)
{
	struct sfs_err sub;
	char **tags = NULL;
	size_t n = 0;
	enum sfs_status ret;

	sfs_err_init(&sub);
	ret = sfs_tags_split(v, &tags, &n, &sub);
	if (ret == SFS_INVALID)
		return bad(e, key,
			   sub.nfields ? sub.fields[0].message : "invalid tag");
	if (ret)
		return sfs_errf(e, ret, SFS_R_NONE, "%s", sub.message);
	if (n > SFS_QUERY_TAGS_MAX) {
		sfs_strv_free(tags);
		return sfs_err_field(e, key, "too_long", "at most %d tags",
				     SFS_QUERY_TAGS_MAX);
	}
	sfs_strv_free(q->tags);
	q->tags = tags;
	q->ntags = n;
	return SFS_OK;
}

static enum sfs_status set_str(char **dst, const char *v, struct sfs_err *e)
{
	char *s = NULL;

	if (*v) {
		s = strdup(v);
		if (!s)
			return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					"out of memory");
	}
	free(*dst);
	*dst = s;
	return SFS_OK;
}

typedef enum sfs_status (*param_fn)(struct sfs_query *q, const char *key,
				    const char *v, struct sfs_err *e);

static enum sfs_status p_page(struct sfs_query *q, const char *key,
			      const char *v, struct sfs_err *e)
{
	int64_t n;

	if (sfs_parse_i64(v, &n) || n < 0 || n > INT64_MAX / SFS_PAGE_SIZE_MAX)
		return bad(e, key, "must be an integer >= 0");
	q->page = n;
	return SFS_OK;
}

static enum sfs_status p_size(struct sfs_query *q, const char *key,
			      const char *v, struct sfs_err *e)
{
	int64_t n;

	if (sfs_parse_i64(v, &n) || n < 1 || n > SFS_PAGE_SIZE_MAX)
		return sfs_err_field(e, key, "invalid",
				     "must be an integer from 1 to %d",
				     SFS_PAGE_SIZE_MAX);
	q->size = n;
	return SFS_OK;
}

/*
 * "a" or "d" (creationDate ascending or descending), the id of the last
 * file of the page before, "." the total the walk began with, "." and
 * the mark of the walk's filters (8 lowercase hex digits): what
 * sfs_query_cursor wrote. The mark is checked once every parameter is
 * known (query.c).
 */
static enum sfs_status p_cursor(struct sfs_query *q, const char *key,
				const char *v, struct sfs_err *e)
{
	char id[SFS_ID_SIZE], num[24];
	const char *t = v + 2 + SFS_UUID_LEN, *dot;
	unsigned long mark;
	int64_t total;
	char *end;

	if ((v[0] != 'a' && v[0] != 'd') || strlen(v) < 2 + SFS_UUID_LEN ||
	    v[1 + SFS_UUID_LEN] != '.')
		return bad(e, key, "is not a cursor of this listing");
	memcpy(id, v + 1, SFS_UUID_LEN);
	id[SFS_UUID_LEN] = '\0';
	dot = strchr(t, '.');
	if (!sfs_uuid_valid(id) || !dot || (size_t)(dot - t) >= sizeof(num) ||
	    strlen(dot + 1) != 8 || strspn(dot + 1, "0123456789abcdef") != 8)
		return bad(e, key, "is not a cursor of this listing");
	memcpy(num, t, (size_t)(dot - t));
	num[dot - t] = '\0';
	mark = strtoul(dot + 1, &end, 16);
	if (sfs_parse_i64(num, &total) || total < 0 || *end)
		return bad(e, key, "is not a cursor of this listing");
	memcpy(q->cursor_id, id, sizeof(id));
	q->cursor_desc = v[0] == 'd';
	q->cursor_total = total;
	q->cursor_filters = (uint32_t)mark;
	return SFS_OK;
}

/* FNV-1a, 32 bits: a mark against mistakes, not a signature. */
static uint32_t mark_bytes(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--) {
		h ^= *b++;
		h *= 16777619u;
	}
	return h;
}

static uint32_t mark_str(uint32_t h, const char *s)
{
	return mark_bytes(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

static uint32_t mark_int(uint32_t h, int64_t v)
{
	return mark_bytes(h, &v, sizeof(v));
}

uint32_t sfs_query_filters_mark(const struct sfs_query *q)
{
	const int64_t ints[] = { q->deleted,	   q->discarded,
				 q->purged,	   q->ingestion,
				 q->created_after, q->created_before,
				 q->la_status,	   q->la_deleted,
				 q->la_discarded,  q->recursive,
				 q->tags_any,	   q->publish,
				 q->access,	   (int64_t)q->ntags };
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		h = mark_int(h, ints[i]);
	h = mark_str(h, q->name);
	h = mark_str(h, q->filename);
	h = mark_str(h, q->sha256);
	h = mark_str(h, q->path);
	for (i = 0; i < q->ntags; i++)
		h = mark_str(h, q->tags[i]);
	return h;
}

int sfs_query_cursor(const struct sfs_query *q, const struct sfs_file_list *l,
		     char *out, size_t size)
{
	if (!l->more || !l->n || q->sort != SFS_SORT_CREATED)
		return 0;
	snprintf(out, size, "%c%s.%" PRId64 ".%08" PRIx32, q->desc ? 'd' : 'a',
		 l->files[l->n - 1].id, l->total, sfs_query_filters_mark(q));
	return 1;
}

static enum sfs_status p_deleted(struct sfs_query *q, const char *key,
				 const char *v, struct sfs_err *e)
{
	return parse_bool(key, v, &q->deleted, e);
}

static enum sfs_status p_discarded(struct sfs_query *q, const char *key,
				   const char *v, struct sfs_err *e)
{
	return parse_bool(key, v, &q->discarded, e);
}

static enum sfs_status p_purged(struct sfs_query *q, const char *key,
				const char *v, struct sfs_err *e)
{
	return parse_bool(key, v, &q->purged, e);
}

static enum sfs_status p_ingestion(struct sfs_query *q, const char *key,
				   const char *v, struct sfs_err *e)
{
	return parse_states(key, v, &q->ingestion, e);
}

static enum sfs_status p_name(struct sfs_query *q, const char *key,
			      const char *v, struct sfs_err *e)
{
	(void)key;
	return set_str(&q->name, v, e);
}

static enum sfs_status p_filename(struct sfs_query *q, const char *key,
				  const char *v, struct sfs_err *e)
{
	(void)key;
	return set_str(&q->filename, v, e);
}

static enum sfs_status p_sha256(struct sfs_query *q, const char *key,
				const char *v, struct sfs_err *e)
{
	char low[65];
	size_t i;

	for (i = 0; i < 64 && v[i]; i++)
		low[i] = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] + 32 : v[i]);
	low[i] = '\0';
	if (i < 64 || v[64] || !sfsi_is_sha256_hex(low))
		return bad(e, key, "must be 64 hexadecimal digits");
	memcpy(q->sha256, low, sizeof(low));
	return SFS_OK;
}

static enum sfs_status p_created(struct sfs_query *q, const char *key,
				 const char *v, struct sfs_err *e)
{
	int64_t n;

	if (sfs_iso8601_parse(v, &n))
		return bad(e, key, "must be an ISO 8601 date-time");
	if (!strcmp(key, "createdAfter"))
		q->created_after = n;
	else
		q->created_before = n;
	return SFS_OK;
}

static enum sfs_status p_la_status(struct sfs_query *q, const char *key,
				   const char *v, struct sfs_err *e)
{
	return parse_states(key, v, &q->la_status, e);
}

static enum sfs_status p_la_deleted(struct sfs_query *q, const char *key,
				    const char *v, struct sfs_err *e)
{
	return parse_bool(key, v, &q->la_deleted, e);
}

static enum sfs_status p_la_discarded(struct sfs_query *q, const char *key,
				      const char *v, struct sfs_err *e)
{
	return parse_bool(key, v, &q->la_discarded, e);
}

static enum sfs_status p_path(struct sfs_query *q, const char *key,
			      const char *v, struct sfs_err *e)
{
	char *p;

	if (sfs_vpath_check(v, key, e))
		return SFS_INVALID;
	p = strdup(v);
	if (!p)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	free(q->path);
	q->path = p;
	return SFS_OK;
}

static enum sfs_status p_recursive(struct sfs_query *q, const char *key,
				   const char *v, struct sfs_err *e)
{
	return parse_bool(key, v, &q->recursive, e);
}

static enum sfs_status p_sort(struct sfs_query *q, const char *key,
			      const char *v, struct sfs_err *e)
{
	return parse_sort(key, v, q, e);
}

static enum sfs_status p_tags(struct sfs_query *q, const char *key,
			      const char *v, struct sfs_err *e)
{
	return parse_tags(key, v, q, e);
}

static enum sfs_status p_tags_match(struct sfs_query *q, const char *key,
				    const char *v, struct sfs_err *e)
{
	if (!strcasecmp(v, "all"))
		q->tags_any = 0;
	else if (!strcasecmp(v, "any"))
		q->tags_any = 1;
	else
		return bad(e, key, "must be all or any");
	return SFS_OK;
}

static enum sfs_status p_publish(struct sfs_query *q, const char *key,
				 const char *v, struct sfs_err *e)
{
	int b = sfs_publish_parse(v);

	if (b < 0)
		return bad(e, key, "must be PRIVATE or INTERNAL");
	q->publish = b;
	return SFS_OK;
}

static enum sfs_status p_access(struct sfs_query *q, const char *key,
				const char *v, struct sfs_err *e)
{
	int b = sfs_access_parse(v);

	if (b < 0)
		return bad(e, key, "must be DIRECT_SHARE or INTERNAL");
	q->access = b;
	return SFS_OK;
}

static const struct {
	const char *key;
	param_fn parse;
} params[] = {
	{ "page", p_page },
	{ "size", p_size },
	{ "cursor", p_cursor },
	{ "isDeleted", p_deleted },
	{ "isContentDiscarded", p_discarded },
	{ "isPurged", p_purged },
	{ "ingestionStatus", p_ingestion },
	{ "name", p_name },
	{ "filename", p_filename },
	{ "sha256", p_sha256 },
	{ "createdAfter", p_created },
	{ "createdBefore", p_created },
	{ "listeningAudio.status", p_la_status },
	{ "listeningAudio.deleted", p_la_deleted },
	{ "listeningAudio.contentDiscarded", p_la_discarded },
	{ "path", p_path },
	{ "recursive", p_recursive },
	{ "sort", p_sort },
	{ "tags", p_tags },
	{ "tagsMatch", p_tags_match },
	{ "publishMode", p_publish },
	{ "accessType", p_access },
};

enum sfs_status sfs_query_param(struct sfs_query *q, const char *key,
				const char *v, struct sfs_err *e)
{
	size_t i;

	if (!key)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
				"no parameter name");
	for (i = 0; i < ARRAY_SIZE(params); i++)
		if (!strcmp(key, params[i].key))
			return params[i].parse(q, key, v ? v : "", e);
	return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE, "unknown parameter '%s'",
			key);
}
