/*
 * Mount paths <-> core: which file or virtual directory a path names, and
 * the entry names a directory shows (display name with '/' as U+2215, plus
 * the original filename's extension, made unique with the uuid's start).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/query.h"
#include "speechfs/store.h"
#include <pthread.h>
#include "speechfs/banned.h"

#define DIVSLASH "\xe2\x88\x95" /* U+2215 DIVISION SLASH */
#define EXT_MAX 16

static const char *const reserved[] = { FS_LISTENING, FS_TRASH, FS_SHARED };

/* The core listing each mode shows. */
static const enum sfs_listing listing_of[] = {
	[FS_LIST_FILES] = SFS_LIST_DIR,
	[FS_LIST_LISTENING] = SFS_LIST_LISTENING,
	[FS_LIST_TRASH] = SFS_LIST_TRASH,
	[FS_LIST_SHARED] = SFS_LIST_SHARED,
};

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

/*
 * "a.wav" + uuid -> "a (0123abcd).wav". The part before the extension is
 * cut (at a character boundary) so that the result fits in a segment.
 */
static char *with_suffix(const char *base, const char *ext, const char *id)
{
	size_t n = strlen(base), el = strlen(ext), keep;
	char *out = malloc(n + 12);

	if (!out)
		return NULL;
	if (!ends_with_ci(base, ext))
		el = 0;
	keep = n - el;
	if (keep + 11 + el > SFS_SEGMENT_MAX) {
		keep = SFS_SEGMENT_MAX > 11 + el ? SFS_SEGMENT_MAX - 11 - el
						 : 0;
		while (keep && ((unsigned char)base[keep] & 0xc0) == 0x80)
			keep--;
	}
	memcpy(out, base, keep);
	snprintf(out + keep, 12 + el, " (%.8s)%s", id, base + n - el);
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

static size_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)h;
}

/* Put v[i] in the index unless its name is there already (first wins). */
static void index_put(struct fs_listing *l, size_t i)
{
	size_t k = name_hash(l->v[i].name) & (l->hcap - 1);

	while (l->hidx[k]) {
		if (!strcmp(l->v[l->hidx[k] - 1].name, l->v[i].name))
			return;
		k = (k + 1) & (l->hcap - 1);
	}
	l->hidx[k] = i + 1;
}

/*
 * The index of the first entry named `name`, or -1. The hash index is
 * brought up to date first (entries are only ever appended), so
 * listings of big directories are not quadratic.
 */
static ssize_t find_entry(struct fs_listing *l, const char *name)
{
	size_t k;

	if (l->hn < l->n) {
		if (2 * l->n > l->hcap) {
			size_t cap = 64;
			size_t *nh;

			while (cap < 4 * l->n)
				cap *= 2;
			nh = calloc(cap, sizeof(*nh));
			if (!nh)
				goto linear;
			free(l->hidx);
			l->hidx = nh;
			l->hcap = cap;
			l->hn = 0;
		}
		for (; l->hn < l->n; l->hn++)
			index_put(l, l->hn);
	}
	if (!l->hcap)
		return -1;
	for (k = name_hash(name) & (l->hcap - 1); l->hidx[k];
	     k = (k + 1) & (l->hcap - 1))
		if (!strcmp(l->v[l->hidx[k] - 1].name, name))
			return (ssize_t)l->hidx[k] - 1;
	return -1;
linear:
	for (k = 0; k < l->n; k++)
		if (!strcmp(l->v[k].name, name))
			return (ssize_t)k;
	return -1;
}

static int taken(struct fs_listing *l, const char *name, int root)
{
	size_t i;

	if (!strcmp(name, ".") || !strcmp(name, "..") ||
	    strlen(name) > SFS_SEGMENT_MAX)
		return 1;
	if (root)
		for (i = 0; i < sizeof(reserved) / sizeof(*reserved); i++)
			if (!strcmp(name, reserved[i]) &&
			    (i > 0 || g_fs.listening))
				return 1;
	for (i = 0; i < l->nsub; i++)
		if (!strcmp(l->subdirs[i], name))
			return 1;
	return find_entry(l, name) >= 0;
}

struct list_ctx {
	struct fs_listing *l;
	enum fs_list_mode mode;
	int root;
	int err;
	char (*pin)[SFS_ID_SIZE]; /* files to mark suffixed for good */
	size_t npin, pin_alloc;
};

/* Remember a file shown with a suffix of the listing's own making. */
static void pin_later(struct list_ctx *c, const char *id)
{
	char(*nv)[SFS_ID_SIZE];
	size_t na;

	if (c->mode != FS_LIST_FILES || g_fs.ro)
		return;
	if (c->npin == c->pin_alloc) {
		na = c->pin_alloc ? 2 * c->pin_alloc : 8;
		nv = realloc(c->pin, na * sizeof(*nv));
		if (!nv)
			return; /* shown, just not pinned */
		c->pin = nv;
		c->pin_alloc = na;
	}
	snprintf(c->pin[c->npin++], SFS_ID_SIZE, "%s", id);
}

/*
 * Clashes the listing resolved (a file named like a subdirectory or a
 * reserved name, different names giving one entry) are recorded in core,
 * so the entry stays when the other side goes away (rm -r works).
 */
static void pin_now(struct list_ctx *c)
{
	struct sfs_file_update u = { 0 };
	struct sfs_err e;
	size_t i;

	u.set = SFS_UPD_SUFFIX;
	for (i = 0; i < c->npin; i++) {
		sfs_err_init(&e);
		if (sfs_file_update(g_fs.store, &g_fs.actor, c->pin[i], &u,
				    NULL, &e))
			sfs_warn("fs", "cannot keep the suffix of '%s': %s",
				 c->pin[i], e.message);
	}
	free(c->pin);
	c->pin = NULL;
	c->npin = c->pin_alloc = 0;
}

static int add_file(void *arg, const struct sfs_file *f)
{
	struct list_ctx *c = arg;
	struct fs_listing *l = c->l;
	struct fs_entry *en;
	const char *ext = fs_ext(f->filename);
	char *base = NULL, *name;
	int64_t size = f->size < 0 ? 0 : f->size;
	int keep;

	if (c->mode == FS_LIST_LISTENING) {
		if (!sfs_file_listed(f, SFS_LIST_LISTENING, f->path))
			return 0;
		size = f->la.size < 0 ? 0 : f->la.size;
	}
	base = entry_base(f->name ? f->name : f->id, ext);
	if (base && c->mode == FS_LIST_LISTENING) {
		char *mp3 = malloc(strlen(base) + 5);

		if (mp3) {
			size_t bl = strlen(base) -
				    (ends_with_ci(base, ext) ? strlen(ext) : 0);
			memcpy(mp3, base, bl);
			memcpy(mp3 + bl, ".mp3", 5);
		}
		free(base);
		base = mp3;
		ext = ".mp3";
	}
	if (!base)
		goto nomem;
	if (l->n == l->alloc) {
		size_t na = l->alloc ? 2 * l->alloc : 32;
		struct fs_entry *nv = realloc(l->v, na * sizeof(*nv));

		if (!nv)
			goto nomem;
		l->v = nv;
		l->alloc = na;
	}
	name = base;
	/* suffixed for good in its directory (not in the flat lists) */
	keep = f->suffixed &&
	       (c->mode == FS_LIST_FILES || c->mode == FS_LIST_LISTENING);
	if (keep || taken(l, base, c->root)) {
		if (!keep)
			pin_later(c, f->id);
		name = with_suffix(base, ext, f->id);
		free(base);
		if (!name)
			goto nomem;
	}
	en = &l->v[l->n++];
	en->name = name;
	en->ino = f->ino;
	/* both are NUL-terminated arrays of the same size */
	memcpy(en->id, f->id, sizeof(en->id));
	memcpy(en->owner, f->owner_id, sizeof(en->owner));
	en->size = size;
	en->mtime_ns = f->mtime_ns;
	en->ctime_ns = f->ctime_ns;
	return 0;
nomem:
	free(base);
	c->err = -ENOMEM;
	return 1;
}

static void add_subdir(void *arg, const char *name,
		       const struct sfs_dir_info *d)
{
	struct list_ctx *c = arg;
	struct fs_listing *l = c->l;
	int64_t *ni;
	char **nv;

	if (c->err)
		return;
	if (l->nsub == l->subdirs_alloc) {
		size_t na = l->subdirs_alloc ? 2 * l->subdirs_alloc : 16;

		nv = realloc(l->subdirs, na * sizeof(*nv));
		if (!nv) {
			c->err = -ENOMEM;
			return;
		}
		l->subdirs = nv;
		ni = realloc(l->subino, na * sizeof(*ni));
		if (!ni) {
			c->err = -ENOMEM;
			return;
		}
		l->subino = ni;
		ni = realloc(l->submtime, na * sizeof(*ni));
		if (!ni) {
			c->err = -ENOMEM;
			return;
		}
		l->submtime = ni;
		l->subdirs_alloc = na;
	}
	l->subino[l->nsub] = d->ino;
	l->submtime[l->nsub] = d->mtime_ns;
	l->subdirs[l->nsub] = strdup(name);
	if (!l->subdirs[l->nsub])
		c->err = -ENOMEM;
	else
		l->nsub++;
}

static int by_ino(const void *a, const void *b)
{
	const struct sfs_file *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/*
 * The trash (deleted, unpurged files of the user, all directories) or
 * the files one owner shares with the user: one flat list, named in ino
 * order like a directory. All pages are gathered first.
 */
static int list_query(struct list_ctx *c, int shared, const char *owner)
{
	struct sfs_file_list fl = { 0 };
	struct sfs_file *all = NULL, *na;
	size_t n = 0, alloc = 0, i, got;
	struct sfs_query q;
	struct sfs_err e;
	enum sfs_status st;
	int64_t page = 0;
	int ret = 0;

	sfs_err_init(&e);
	for (;;) {
		sfs_query_init(&q);
		q.page = page;
		q.size = SFS_PAGE_SIZE_MAX;
		q.desc = 0;
		if (!shared) {
			q.deleted = 1;
			q.recursive = 1;
		}
		st = shared ? sfs_query_shared(g_fs.store, &g_fs.actor, &q, &fl,
					       &e)
			    : sfs_query_files(g_fs.store, &g_fs.actor, &q, &fl,
					      &e);
		sfs_query_release(&q);
		if (st) {
			ret = -fs_errno(st, &e);
			break;
		}
		got = fl.n;
		if (n + got > alloc) {
			alloc = 2 * (n + got);
			na = realloc(all, alloc * sizeof(*all));
			if (!na) {
				sfs_file_list_release(&fl);
				ret = -ENOMEM;
				break;
			}
			all = na;
		}
		/* take the files over: the list keeps nothing to free */
		if (got)
			memcpy(all + n, fl.files, got * sizeof(*all));
		n += got;
		fl.n = 0;
		sfs_file_list_release(&fl);
		if (got < SFS_PAGE_SIZE_MAX)
			break;
		page++;
	}
	if (n)
		qsort(all, n, sizeof(*all), by_ino);
	for (i = 0; i < n; i++) {
		if (!ret && !c->err &&
		    sfs_file_listed(&all[i], listing_of[c->mode], NULL) &&
		    !(shared && owner && strcmp(all[i].owner_id, owner)))
			add_file(c, &all[i]);
		sfs_file_release(&all[i]);
	}
	free(all);
	return c->err ? c->err : ret;
}

int fs_list(const char *vdir, enum fs_list_mode mode, struct fs_listing *l)
{
	struct list_ctx c = { .l = l, .mode = mode };
	struct sfs_err e;
	enum sfs_status st;

	memset(l, 0, sizeof(*l));
	sfs_err_init(&e);
	if (mode == FS_LIST_TRASH)
		return list_query(&c, 0, NULL);
	if (mode == FS_LIST_SHARED)
		return list_query(&c, 1, vdir);
	c.root = mode == FS_LIST_FILES && !strcmp(vdir, "/");
	st = sfs_dir_subdirs(g_fs.store, &g_fs.actor, vdir, add_subdir, &c, &e);
	if (!st && !c.err)
		st = sfs_query_dir_files(g_fs.store, &g_fs.actor, vdir,
					 add_file, &c, &e);
	pin_now(&c);
	if (c.err)
		return c.err;
	return st ? -fs_errno(st, &e) : 0;
}

void fs_listing_release(struct fs_listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].name);
	for (i = 0; i < l->nsub; i++)
		free(l->subdirs[i]);
	free(l->v);
	free(l->subdirs);
	free(l->subino);
	free(l->submtime);
	free(l->hidx);
	memset(l, 0, sizeof(*l));
}

int fs_rename_names(const struct sfs_file *f, const char *entry, char **name,
		    char **filename)
{
	const char *oext = fs_ext(f->filename);
	int ret;

	*filename = NULL;
	ret = fs_entry_to_name(entry, name);
	if (ret)
		return ret;
	if (*oext && ends_with_ci(*name, oext)) {
		/* same extension: keep the display name without it if it was */
		if (!ends_with_ci(f->name, oext))
			(*name)[strlen(*name) - strlen(oext)] = '\0';
		if (!**name) {
			free(*name);
			return fs_entry_to_name(entry, name);
		}
		return 0;
	}
	if (!*oext && !*fs_ext(*name))
		return 0;
	*filename = strdup(*name);
	if (!*filename) {
		free(*name);
		*name = NULL;
		return -ENOMEM;
	}
	return 0;
}

int fs_dirpath(const char *mpath, char *out, size_t size)
{
	size_t n = strlen(mpath);
	struct sfs_err e;

	if (n + 2 > size)
		return -ENAMETOOLONG;
	memcpy(out, mpath, n);
	if (n == 0 || out[n - 1] != '/')
		out[n++] = '/';
	out[n] = '\0';
	sfs_err_init(&e);
	if (sfs_vpath_check(out, "path", &e))
		return -EINVAL;
	return 0;
}

int fs_split(const char *mpath, char *dir, size_t dirsize, const char **last)
{
	const char *slash = strrchr(mpath, '/');
	size_t n;

	if (!slash || !slash[1])
		return -ENOENT;
	n = (size_t)(slash - mpath) + 1;
	if (n + 1 > dirsize)
		return -ENAMETOOLONG;
	memcpy(dir, mpath, n);
	dir[n] = '\0';
	*last = slash + 1;
	if (strlen(*last) > SFS_SEGMENT_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * A few recent listings, so that a lookup does not list its directory
 * again each time (cp -r into a big directory). A listing is trusted for
 * at most a second and only while no change was seen: the mount's own
 * renames and removals, and the change poller for everything else, bump
 * the generation. Files the mount creates are added in place.
 */
#define CACHE_SLOTS 8
#define CACHE_TTL_MS 1000

static struct cached {
	char vdir[SFS_VPATH_MAX + 2];
	enum fs_list_mode mode;
	uint64_t gen;
	int64_t at_ms;
	uint64_t used;
	struct fs_listing l;
} cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t cache_gen = 1, cache_clock;
/* files added in place: a listing made meanwhile may lack them */
static uint64_t cache_adds;

void fs_names_changed(void)
{
	pthread_mutex_lock(&cache_lock);
	cache_gen++;
	pthread_mutex_unlock(&cache_lock);
}

/* A valid cached listing of (vdir, mode), cache_lock held. */
static struct cached *cache_get(const char *vdir, enum fs_list_mode mode)
{
	int64_t now = sfs_now_ms();
	size_t i;

	for (i = 0; i < CACHE_SLOTS; i++) {
		struct cached *c = &cache[i];

		if (c->gen == cache_gen && c->mode == mode &&
		    now - c->at_ms < CACHE_TTL_MS && !strcmp(c->vdir, vdir)) {
			c->used = ++cache_clock;
			return c;
		}
	}
	return NULL;
}

/* Keep l (taken over) as the listing of (vdir, mode) made at gen. */
static void cache_put(const char *vdir, enum fs_list_mode mode, uint64_t gen,
		      uint64_t adds, struct fs_listing *l)
{
	struct cached *c = &cache[0];
	size_t i;

	pthread_mutex_lock(&cache_lock);
	if (gen != cache_gen || adds != cache_adds ||
	    strlen(vdir) >= sizeof(c->vdir)) {
		pthread_mutex_unlock(&cache_lock);
		fs_listing_release(l);
		return;
	}
	for (i = 1; i < CACHE_SLOTS; i++)
		if (cache[i].used < c->used)
			c = &cache[i];
	fs_listing_release(&c->l);
	c->l = *l;
	memset(l, 0, sizeof(*l));
	snprintf(c->vdir, sizeof(c->vdir), "%s", vdir);
	c->mode = mode;
	c->gen = gen;
	c->at_ms = sfs_now_ms();
	c->used = ++cache_clock;
	pthread_mutex_unlock(&cache_lock);
}

void fs_names_added(const char *vdir, const char *entry,
		    const struct sfs_file *f)
{
	struct fs_listing *l;
	struct fs_entry *en;
	struct cached *c;

	pthread_mutex_lock(&cache_lock);
	cache_adds++;
	c = cache_get(vdir, FS_LIST_FILES);
	if (!c)
		goto out;
	l = &c->l;
	if (l->n == l->alloc) {
		size_t na = l->alloc ? 2 * l->alloc : 32;
		struct fs_entry *nv = realloc(l->v, na * sizeof(*nv));

		if (!nv) {
			c->gen = 0;
			goto out;
		}
		l->v = nv;
		l->alloc = na;
	}
	en = &l->v[l->n];
	memset(en, 0, sizeof(*en));
	en->name = strdup(entry);
	if (!en->name) {
		c->gen = 0;
		goto out;
	}
	en->ino = f->ino;
	snprintf(en->id, sizeof(en->id), "%s", f->id);
	snprintf(en->owner, sizeof(en->owner), "%s", f->owner_id);
	l->n++;
out:
	pthread_mutex_unlock(&cache_lock);
}

/* The ino of `entry` in (vdir, mode): cached, or by listing anew. */
static int lookup_ino(const char *vdir, const char *entry,
		      enum fs_list_mode mode, int fresh, int64_t *ino)
{
	struct fs_listing l;
	struct cached *c;
	uint64_t gen, adds;
	size_t i;
	int ret;

	*ino = 0;
	pthread_mutex_lock(&cache_lock);
	c = fresh ? NULL : cache_get(vdir, mode);
	if (c) {
		ssize_t j = find_entry(&c->l, entry);

		if (j >= 0)
			*ino = c->l.v[j].ino;
	}
	gen = cache_gen;
	adds = cache_adds;
	pthread_mutex_unlock(&cache_lock);
	if (c)
		return *ino ? 0 : -ENOENT;
	ret = fs_list(vdir, mode, &l);
	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	for (i = 0; i < l.n; i++)
		if (!strcmp(l.v[i].name, entry)) {
			*ino = l.v[i].ino;
			break;
		}
	cache_put(vdir, mode, gen, adds, &l);
	return *ino ? 0 : -ENOENT;
}

/* Find `entry` among the listing of `vdir`; load its full row. */
int fs_find_file(const char *vdir, const char *entry, enum fs_list_mode mode,
		 struct fs_node *n)
{
	struct sfs_err e;
	enum sfs_status st;
	int64_t ino;
	int fresh, ret;

	for (fresh = 0; fresh < 2; fresh++) {
		ret = lookup_ino(vdir, entry, mode, fresh, &ino);
		if (ret)
			return ret;
		sfs_err_init(&e);
		sfs_file_release(&n->f);
		st = sfs_file_get_ino(g_fs.store, &g_fs.actor, ino, &n->f, &e);
		/* does the row still belong where the listing put it? */
		if (!st && sfs_file_listed(&n->f, listing_of[mode], vdir))
			return 0;
		/* gone, or no longer shared with us: list again */
		if (st && st != SFS_NOT_FOUND && st != SFS_FORBIDDEN)
			return -fs_errno(st, &e);
		fs_names_changed();
	}
	return -ENOENT;
}

int fs_stat_vdir(const char *vdir, struct fs_node *n)
{
	struct sfs_err e;
	enum sfs_status st;

	sfs_err_init(&e);
	st = sfs_dir_stat(g_fs.store, &g_fs.actor, vdir, &n->di, &e);
	if (st == SFS_INVALID)
		return -ENOENT;
	return st ? -fs_errno(st, &e) : 0;
}

/* The part of mpath after "/<top>" if it starts so ("" or "/..."). */
static const char *under_top(const char *mpath, const char *top)
{
	size_t n = strlen(top);

	if (mpath[0] != '/' || strncmp(mpath + 1, top, n))
		return NULL;
	if (mpath[n + 1] != '\0' && mpath[n + 1] != '/')
		return NULL;
	return mpath + n + 1;
}

/* Below /.listening/ (mirror), /.trash/ (flat) or /.shared/ (owners). */
static int resolve_special(const char *mpath, struct fs_node *n)
{
	const char *rest, *last, *slash;
	struct fs_listing l;
	int ret;

	if ((rest = under_top(mpath, FS_LISTENING)) && g_fs.listening)
		return fs_listening_resolve(rest, n);
	if ((rest = under_top(mpath, FS_TRASH))) {
		if (!*rest || !strcmp(rest, "/")) {
			n->kind = FS_TRASH_DIR;
			return 0;
		}
		if (strchr(rest + 1, '/'))
			return -ENOENT;
		ret = fs_find_file("", rest + 1, FS_LIST_TRASH, n);
		if (!ret)
			n->kind = FS_TRASH_FILE;
		return ret;
	}
	if ((rest = under_top(mpath, FS_SHARED))) {
		if (!*rest || !strcmp(rest, "/")) {
			n->kind = FS_SHARED_DIR;
			return 0;
		}
		slash = strchr(rest + 1, '/');
		if (!slash) {
			if (!sfs_uuid_valid(rest + 1))
				return -ENOENT;
			snprintf(n->owner, sizeof(n->owner), "%s", rest + 1);
			ret = fs_list(n->owner, FS_LIST_SHARED, &l);
			if (ret)
				return ret;
			ret = l.n ? 0 : -ENOENT;
			fs_listing_release(&l);
			n->kind = FS_SHARED_OWNER;
			return ret;
		}
		if ((size_t)(slash - rest - 1) != SFS_UUID_LEN ||
		    strchr(slash + 1, '/'))
			return -ENOENT;
		snprintf(n->owner, sizeof(n->owner), "%.36s", rest + 1);
		last = slash + 1;
		ret = fs_find_file(n->owner, last, FS_LIST_SHARED, n);
		if (!ret)
			n->kind = FS_SHARED_FILE;
		return ret;
	}
	return 1;
}

int fs_resolve(const char *path, struct fs_node *n)
{
	char mpath[SFS_VPATH_MAX + 2];
	const char *last;
	size_t len = strlen(path);
	int ret;

	memset(n, 0, sizeof(*n));
	sfs_file_init(&n->f);
	if (len >= sizeof(mpath))
		return -ENAMETOOLONG;
	memcpy(mpath, path, len + 1);
	while (len > 1 && mpath[len - 1] == '/')
		mpath[--len] = '\0';
	if (!strcmp(mpath, "/")) {
		snprintf(n->dir, sizeof(n->dir), "/");
		n->kind = FS_DIR;
		return fs_stat_vdir("/", n);
	}
	ret = resolve_special(mpath, n);
	if (ret <= 0)
		return ret;
	ret = fs_split(mpath, n->dir, sizeof(n->dir), &last);
	if (ret)
		return ret;
	ret = fs_find_file(n->dir, last, FS_LIST_FILES, n);
	if (!ret) {
		n->kind = FS_FILE;
		return 0;
	}
	if (ret != -ENOENT)
		return ret;
	if (fs_dirpath(mpath, n->dir, sizeof(n->dir)))
		return -ENOENT;
	ret = fs_stat_vdir(n->dir, n);
	if (!ret)
		n->kind = FS_DIR;
	return ret;
}

void fs_node_release(struct fs_node *n)
{
	sfs_file_release(&n->f);
	n->kind = FS_NONE;
}
