/*
 * /.shared/: one directory per user who shares files with the mount's
 * user, named by that user's name, holding the owner's virtual paths of
 * what is shared (a colleague's /meetings/2026/ is .shared/alice/
 * meetings/2026/). Two owners of one name: the later user (by the order
 * users were made) gets " (xxxxxxxx)", the start of its id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fs_i.h"
#include "speechfs/share.h"
#include "speechfs/banned.h"

struct owner {
	int64_t row; /* the user's row: the older one keeps a shared name */
	char id[SFS_ID_SIZE];
	char name[SFS_SEGMENT_MAX + 1];
};

static int by_row(const void *a, const void *b)
{
	const struct owner *x = a, *y = b;

	return x->row < y->row ? -1 : x->row > y->row;
}

/* The length of s cut to at most max bytes, at a character's start. */
static int cut_utf8(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return (int)n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return (int)n;
}

/*
 * A user's name as an entry: '/' as U+2215 (as in file names), cut to a
 * segment; the user's id when the name is none ("", ".", "..") or the
 * user cannot be read. 0, or -FS_EWAIT: the name is the server's to say.
 */
static int entry_name(const char *user_id, char *out, size_t size)
{
	char name[SFS_SEGMENT_MAX + 1], *shown = NULL;
	struct sfs_err e;
	enum sfs_status st;

	sfs_err_init(&e);
	st = sfs_share_user_name(g_fs.store, &g_fs.actor, user_id, name,
				 sizeof(name), &e);
	if (st == SFS_WOULD_WAIT)
		return -FS_EWAIT;
	if (st || !strcmp(name, "") || !strcmp(name, ".") ||
	    !strcmp(name, "..") || !(shown = fs_name_as_entry(name))) {
		snprintf(out, size, "%s", user_id);
		free(shown);
		return 0;
	}
	snprintf(out, size, "%.*s", cut_utf8(shown, size - 1), shown);
	free(shown);
	return 0;
}

/* The distinct owners of what is shared with the user, named. */
static int owners(struct owner **out, size_t *nout)
{
	struct sfs_file *all = NULL;
	struct owner *v = NULL, *nv;
	size_t n = 0, i, j, k = 0;
	int ret;

	ret = fs_query_all(1, &all, &n);
	for (i = 0; i < n; i++) {
		if (!ret && sfs_file_listed(&all[i], SFS_LIST_SHARED, NULL)) {
			for (j = 0; j < k; j++)
				if (!strcmp(v[j].id, all[i].owner_id))
					break;
			if (j == k) {
				nv = realloc(v, (k + 1) * sizeof(*v));
				if (!nv) {
					ret = -ENOMEM;
				} else {
					v = nv;
					v[k].row = all[i].owner;
					snprintf(v[k].id, sizeof(v[k].id), "%s",
						 all[i].owner_id);
					k++;
				}
			}
		}
		sfs_file_release(&all[i]);
	}
	free(all);
	if (ret) {
		free(v);
		return ret;
	}
	if (k)
		qsort(v, k, sizeof(*v), by_row);
	for (i = 0; i < k && !ret; i++) {
		ret = entry_name(v[i].id, v[i].name, sizeof(v[i].name));
		for (j = 0; j < i; j++)
			if (!strcmp(v[j].name, v[i].name))
				break;
		if (j < i) {
			char tmp[SFS_SEGMENT_MAX + 1];

			snprintf(tmp, sizeof(tmp), "%.*s (%.8s)",
				 cut_utf8(v[i].name, SFS_SEGMENT_MAX - 11),
				 v[i].name, v[i].id);
			memcpy(v[i].name, tmp, sizeof(tmp));
		}
	}
	if (ret) {
		free(v);
		return ret;
	}
	*out = v;
	*nout = k;
	return 0;
}

int fs_shared_owners(struct fs_listing *l)
{
	struct owner *v = NULL;
	size_t n = 0, i;
	int ret;

	memset(l, 0, sizeof(*l));
	ret = owners(&v, &n);
	for (i = 0; i < n && !ret; i++)
		ret = fs_listing_add_sub(
			l, v[i].name, fs_shared_dir_node(v[i].id, "/"), 0, 0);
	free(v);
	return ret;
}

int fs_shared_owner_find(const char *name, char owner[SFS_ID_SIZE],
			 int64_t *owner_row)
{
	struct owner *v = NULL;
	size_t n = 0, i;
	int ret;

	ret = owners(&v, &n);
	for (i = 0; i < n && !ret; i++)
		if (!strcmp(v[i].name, name)) {
			snprintf(owner, SFS_ID_SIZE, "%s", v[i].id);
			*owner_row = v[i].row;
			break;
		}
	if (!ret && i == n)
		ret = -ENOENT;
	free(v);
	return ret;
}
