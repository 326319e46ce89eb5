/*
 * Entry names of the mount: a file's entry is its display name ('/' as
 * U+2215) plus the extension of its original filename, made unique in
 * its directory with the start of its uuid (listing.c applies the rule
 * to a whole directory). The lookup of one entry name by an indexed
 * query of the names it may stand for; the flat trees are looked up in
 * listing.c's cached listings.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

#define DIVSLASH "\xe2\x88\x95" /* U+2215 DIVISION SLASH */
#define EXT_MAX 16
#define SUFFIX_LEN 11 /* " (0123abcd)" */

static const char *const reserved[] = { FS_LISTENING, FS_TRASH, FS_SHARED };

const char *fs_ext(const char *filename)
{
	const char *dot;
	size_t n;

	if (!filename)
		return "";
	dot = strrchr(filename, '.');
	if (!dot || dot == filename || strchr(dot, '/'))
		return "";
	n = strlen(dot);
	if (n < 2 || n > EXT_MAX || strchr(dot, ' '))
		return "";
	return dot;
}

static int ends_with_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* '/' -> U+2215 into a new string, then the extension unless present. */
static char *entry_base(const char *name, const char *ext)
{
	size_t n = strlen(name), slashes = 0, i, j = 0;
	char *out;

	for (i = 0; i < n; i++)
		slashes += name[i] == '/';
	out = malloc(n + 2 * slashes + strlen(ext) + 1);
	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		if (name[i] == '/') {
			memcpy(out + j, DIVSLASH, 3);
			j += 3;
		} else {
			out[j++] = name[i];
		}
	}
	out[j] = '\0';
	if (*ext && !ends_with_ci(out, ext))
		memcpy(out + j, ext, strlen(ext) + 1);
	return out;
}

char *fs_name_as_entry(const char *name)
{
	return entry_base(name, "");
}

/* The entry a file has before clashes: its base, or the MP3's name. */
char *fs_entry_base(const struct sfs_file *f, enum fs_list_mode mode,
		    const char **ext)
{
	char *base, *mp3;
	size_t bl;

	*ext = fs_ext(f->filename);
	base = entry_base(f->name ? f->name : f->id, *ext);
	if (!base || mode != FS_LIST_LISTENING)
		return base;
	bl = strlen(base) - (ends_with_ci(base, *ext) ? strlen(*ext) : 0);
	mp3 = malloc(bl + 5);
	if (mp3) {
		memcpy(mp3, base, bl);
		memcpy(mp3 + bl, ".mp3", 5);
	}
	free(base);
	*ext = ".mp3";
	return mp3;
}

/*
 * "a.wav" + uuid -> "a (0123abcd).wav". The part before the extension is
 * cut (at a character boundary) so that the result fits in a segment.
 */
char *fs_entry_suffixed(const char *base, const char *ext, const char *id)
{
	size_t n = strlen(base), el = strlen(ext), keep;
	char *out = malloc(n + SUFFIX_LEN + 1);

	if (!out)
		return NULL;
	if (!ends_with_ci(base, ext))
		el = 0;
	keep = n - el;
	if (keep + SUFFIX_LEN + el > SFS_SEGMENT_MAX) {
		keep = SFS_SEGMENT_MAX > SUFFIX_LEN + el
			       ? SFS_SEGMENT_MAX - SUFFIX_LEN - el
			       : 0;
		while (keep && ((unsigned char)base[keep] & 0xc0) == 0x80)
			keep--;
	}
	memcpy(out, base, keep);
	snprintf(out + keep, SUFFIX_LEN + 1 + el, " (%.8s)%s", id,
		 base + n - el);
	return out;
}

int fs_entry_to_name(const char *entry, char **name)
{
	size_t n = strlen(entry), i, j = 0;
	char *out = malloc(n + 1);

	if (!out)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (!strncmp(entry + i, DIVSLASH, 3)) {
			out[j++] = '/';
			i += 2;
		} else {
			out[j++] = entry[i];
		}
	}
	out[j] = '\0';
	*name = out;
	return 0;
}

int fs_names_for_entry(const struct sfs_file *f, const char *entry, char **name,
		       char **filename)
{
	const char *oext = f ? fs_ext(f->filename) : "", *ext;
	int ret;

	*filename = NULL;
	ret = fs_entry_to_name(entry, name);
	if (ret)
		return ret;
	ext = fs_ext(*name);
	/*
	 * Renamed with its extension (or none) kept: the original filename
	 * stays, and the display name keeps showing its extension only if
	 * it did (a name given through the API may lack it).
	 */
	if (f && !strcasecmp(ext, oext) &&
	    (!*oext || !ends_with_ci(f->name, oext))) {
		if (*ext && (*name)[0] != '.')
			(*name)[strlen(*name) - strlen(ext)] = '\0';
		if (!**name) {
			free(*name);
			return fs_entry_to_name(entry, name);
		}
		return 0;
	}
	if (f && !strcasecmp(ext, oext))
		return 0; /* the name kept its extension, as the file's did */
	/* new or re-extended: as `cp` makes it, the entry minus extension */
	*filename = strdup(*name);
	if (!*filename) {
		free(*name);
		*name = NULL;
		return -ENOMEM;
	}
	if (*ext && ext > *name)
		(*name)[ext - *name] = '\0';
	return 0;
}

int fs_name_reserved(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(reserved); i++)
		if (!strcmp(name, reserved[i]) && (i > 0 || g_fs.listening))
			return 1;
	return 0;
}

int fs_child_dir(const char *vdir, const char *name, char *out, size_t size)
{
	struct sfs_err e;
	int n;

	if (!strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
		return -ENOENT;
	n = snprintf(out, size, "%s%s/", vdir, name);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	sfs_err_init(&e);
	return sfs_vpath_check(out, "path", &e) ? -ENOENT : 0;
}

/* ---- lookups --------------------------------------------------------- */

struct pick {
	const char *entry;
	int root;
	struct fs_entry *file;
	struct fs_listing seen; /* entries of lower inos with a claim */
	int found, err;
};

/*
 * A candidate file of an entry name (in ino order): it is the entry when
 * its unsuffixed base is that name and no lower ino claimed it first, or
 * when its suffixed name is.
 */
static int pick_file(void *arg, const struct sfs_file *f)
{
	struct pick *p = arg;
	ssize_t j;
	int err;

	if (p->found)
		return 1;
	err = fs_listing_add_file(&p->seen, f, p->root);
	if (err) {
		p->err = err;
		return 1;
	}
	j = fs_listing_find(&p->seen, p->entry);
	if (j < 0 || p->seen.v[j].ino != f->ino)
		return 0;
	*p->file = p->seen.v[j];
	p->file->name = NULL;
	p->found = 1;
	return 1;
}

/* Add name and name minus its extension to v (k counts them). */
static int with_and_without_ext(char *name, char *v[4], size_t *k)
{
	const char *ext = fs_ext(name);
	char *base;

	v[(*k)++] = name;
	if (*ext && ext > name) {
		base = strndup(name, (size_t)(ext - name));
		if (!base)
			return -ENOMEM;
		v[(*k)++] = base;
	}
	return 0;
}

/*
 * The display names an entry can stand for (at most 4): itself and
 * without its extension, and the same without a " (0123abcd)" suffix
 * (*plain gets the entry without it, prefix the id's start; else both
 * ""). Free v's strings.
 */
static int candidates(const char *entry, char *v[4], char *plain, size_t size,
		      char prefix[9])
{
	char *name = NULL, *stripped;
	const char *ext, *open;
	size_t n, k = 0;
	int ret;

	memset(v, 0, 4 * sizeof(*v));
	plain[0] = '\0';
	prefix[0] = '\0';
	ret = fs_entry_to_name(entry, &name);
	if (ret)
		return ret;
	ret = with_and_without_ext(name, v, &k);
	ext = fs_ext(entry);
	n = strlen(entry) - strlen(ext);
	open = n >= SUFFIX_LEN ? entry + n - SUFFIX_LEN : NULL;
	if (ret || !open || strncmp(open, " (", 2) || open[10] != ')' ||
	    strspn(open + 2, "0123456789abcdef") < 8)
		return ret;
	snprintf(prefix, 9, "%.8s", open + 2);
	snprintf(plain, size, "%.*s%s", (int)(open - entry), entry, ext);
	ret = fs_entry_to_name(plain, &stripped);
	if (!ret)
		ret = with_and_without_ext(stripped, v, &k);
	return ret;
}

/* A file of one of the user's directories by entry name. */
static int find_in_dir(const char *vdir, const char *entry,
		       struct fs_entry *file)
{
	struct pick p = { .entry = entry, .file = file };
	char *v[4], plain[SFS_SEGMENT_MAX + 1], path[SFS_VPATH_MAX + 2];
	char prefix[9];
	struct sfs_dir_info di;
	struct sfs_err e;
	enum sfs_status st;
	int ret, i;

	p.root = !strcmp(vdir, "/");
	if (p.root && fs_name_reserved(entry))
		return -ENOENT;
	ret = candidates(entry, v, plain, sizeof(plain), prefix);
	sfs_err_init(&e);
	/* a suffix may come of a clash with a subdirectory's name */
	if (!ret && plain[0] &&
	    !fs_child_dir(vdir, plain, path, sizeof(path))) {
		st = sfs_dir_stat(g_fs.store, &g_fs.actor, path, &di, &e);
		if (!st)
			ret = fs_listing_add_sub(&p.seen, plain, 0, 0, 0);
		else if (st == SFS_WOULD_WAIT)
			ret = -FS_EWAIT;
	}
	sfs_err_init(&e);
	if (!ret) {
		st = sfs_query_dir_names(
			g_fs.store, &g_fs.actor, vdir, (const char *const *)v,
			4, prefix[0] ? prefix : NULL, pick_file, &p, &e);
		ret = p.err ? p.err : st ? -fs_errno(st, &e) : 0;
	}
	for (i = 0; i < 4; i++)
		free(v[i]);
	fs_listing_release(&p.seen);
	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	return p.found ? 0 : -ENOENT;
}

int fs_find(const char *vdir, const char *owner, enum fs_list_mode mode,
	    const char *entry, struct fs_entry *file, struct fs_subdir *sub)
{
	char path[SFS_VPATH_MAX + 2];
	struct sfs_dir_info di;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	memset(file, 0, sizeof(*file));
	memset(sub, 0, sizeof(*sub));
	if (mode != FS_LIST_FILES)
		return fs_listing_find_cached(vdir, owner, mode, entry, file,
					      sub);
	/* a subdirectory wins over a file of the same entry name */
	ret = fs_child_dir(vdir, entry, path, sizeof(path));
	if (!ret) {
		sfs_err_init(&e);
		st = sfs_dir_stat(g_fs.store, &g_fs.actor, path, &di, &e);
		if (!st) {
			sub->node = FS_NODE(FS_DIR, di.ino);
			sub->mtime_ns = di.mtime_ns;
			sub->nsub = di.nsub;
			return 1;
		}
		if (st != SFS_NOT_FOUND)
			return -fs_errno(st, &e);
	} else if (ret != -ENOENT) {
		return ret;
	}
	return find_in_dir(vdir, entry, file);
}
