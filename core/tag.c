/*
 * Tag names: validation, the comma-separated form the API's query strings
 * and the mount's xattrs use, string vectors, and the tenant's tags for
 * suggestions. Case-insensitivity is ASCII folding, the same as SQLite's
 * NOCASE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "speechfs/tag.h"
#include "speechfs/vpath.h"
#include "util_i.h"

static int fold(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int eq_nocase(const char *a, const char *b)
{
	while (*a && fold((unsigned char)*a) == fold((unsigned char)*b)) {
		a++;
		b++;
	}
	return fold((unsigned char)*a) == fold((unsigned char)*b);
}

static int is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

enum sfs_status sfs_tag_check(const char *tag, const char *field,
			      struct sfs_err *e)
{
	size_t len, i;

	if (!tag)
		return sfs_err_field(e, field, "missing", "a tag is required");
	len = strlen(tag);
	if (!len)
		return sfs_err_field(e, field, "invalid",
				     "a tag may not be empty");
	if (len > SFS_TAG_MAX)
		return sfs_err_field(e, field, "too_long",
				     "a tag is longer than %d bytes",
				     SFS_TAG_MAX);
	if (is_space((unsigned char)tag[0]) ||
	    is_space((unsigned char)tag[len - 1]))
		return sfs_err_field(e, field, "invalid",
				     "a tag may not start or end with a space");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tag[i];

		if (c < 0x20 || c == 0x7f)
			return sfs_err_field(e, field, "invalid",
					     "control characters are not "
					     "allowed in tags");
		if (c == ',')
			return sfs_err_field(e, field, "invalid",
					     "a tag may not contain ','");
	}
	if (!sfs_utf8_valid(tag, len))
		return sfs_err_field(e, field, "invalid", "not valid UTF-8");
	return SFS_OK;
}

enum sfs_status sfs_tags_split(const char *csv, char ***out, size_t *n,
			       struct sfs_err *e)
{
	enum sfs_status st = SFS_OK;
	char **v = NULL, *item = NULL;
	size_t cnt = 0, cap = 1, idx = 0, i;
	const char *p, *q, *end;
	char field[32];

	*out = NULL;
	*n = 0;
	if (!csv)
		csv = "";
	for (p = csv; *p; p++)
		if (*p == ',')
			cap++;
	v = calloc(cap + 1, sizeof(*v));
	if (!v) {
		st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	for (p = csv;; p = end + 1) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		q = end;
		while (p < q && is_space((unsigned char)*p))
			p++;
		while (q > p && is_space((unsigned char)q[-1]))
			q--;
		if (q > p) {
			item = strndup(p, (size_t)(q - p));
			if (!item) {
				st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					      "out of memory");
				goto out;
			}
			snprintf(field, sizeof(field), "tags[%zu]", idx++);
			st = sfs_tag_check(item, field, e);
			if (st)
				goto out;
			for (i = 0; i < cnt; i++)
				if (eq_nocase(v[i], item))
					break;
			if (i == cnt) {
				v[cnt++] = item;
			} else {
				free(item);
			}
			item = NULL;
		}
		if (!*end)
			break;
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	free(item);
	sfs_strv_free(v);
	return st;
}

enum sfs_status sfs_tags_join(char *const *tags, size_t n, struct sfs_buf *out)
{
	enum sfs_status st = SFS_OK;
	size_t i;

	sfs_buf_reset(out);
	for (i = 0; i < n && !st; i++) {
		if (i)
			st = sfs_buf_addch(out, ',');
		if (!st)
			st = sfs_buf_adds(out, tags[i]);
	}
	return st;
}

void sfs_strv_free(char **v)
{
	char **p;

	if (!v)
		return;
	for (p = v; *p; p++)
		free(*p);
	free(v);
}

/* A LIKE pattern matching what starts with `prefix` (escape '\\'). */
static char *like_prefix(const char *prefix)
{
	size_t i, o = 0, n = strlen(prefix);
	char *p = malloc(2 * n + 2);

	if (!p)
		return NULL;
	for (i = 0; i < n; i++) {
		if (prefix[i] == '%' || prefix[i] == '_' || prefix[i] == '\\')
			p[o++] = '\\';
		p[o++] = prefix[i];
	}
	p[o++] = '%';
	p[o] = '\0';
	return p;
}

enum sfs_status sfs_tag_list(struct sfs_store *s, const struct sfs_actor *a,
			     const char *prefix, size_t limit, char ***out,
			     size_t *n, struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st = NULL;
	enum sfs_status ret;
	char *like = NULL, **v = NULL;
	size_t k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (ret)
		return ret;
	if (limit < 1 || limit > SFS_TAG_LIST_MAX)
		return sfs_err_field(e, "size", "invalid",
				     "'size' must be from 1 to %d",
				     SFS_TAG_LIST_MAX);
	if (prefix && *prefix && !(like = like_prefix(prefix)))
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	v = calloc(limit + 1, sizeof(*v));
	if (!v) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "SELECT t.name FROM tag t WHERE t.tenant_id = ?1"
			  " AND (CAST(?2 AS TEXT) IS NULL"
			  " OR t.name LIKE ?2 ESCAPE '\\')"
			  " AND EXISTS (SELECT 1 FROM file_tag ft"
			  " JOIN file f ON f.id = ft.file_id"
			  " WHERE ft.tag_id = t.id AND f.is_purged = 0)"
			  " ORDER BY t.name COLLATE NOCASE LIMIT ?3",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, a->tenant);
	sfsi_db_bind_text(st, 2, like);
	sfsi_db_bind_int(st, 3, (int64_t)limit);
	while ((rc = sfsi_db_step(st, e)) == 1) {
		v[k] = sfsi_db_col_dup(st, 0);
		if (!v[k]) {
			ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				       "out of memory");
			goto out;
		}
		k++;
	}
	if (rc < 0)
		ret = SFS_IO;
out:
	sfsi_db_reset(st);
	sfsi_db_put(d);
	free(like);
	if (ret) {
		sfs_strv_free(v);
		return ret;
	}
	*out = v;
	*n = k;
	return SFS_OK;
}
