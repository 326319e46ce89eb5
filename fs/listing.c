/*
 * Directory listings of the mount: a directory's entries named as
 * names.c makes them (names only for a walk, their attributes matched by
 * ino for READDIRPLUS), the flat trees (/.listening/ mirrors, /.trash/,
 * /.shared/), and the short-lived cached listings their lookups use.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

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
ssize_t fs_listing_find(struct fs_listing *l, const char *name)
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
	if (root && fs_name_reserved(name))
		return 1;
	for (i = 0; i < l->nsub; i++)
		if (!strcmp(l->sub[i].name, name))
			return 1;
	return fs_listing_find(l, name) >= 0;
}

struct list_ctx {
	struct fs_listing *l;
	enum fs_list_mode mode;
	const char *vdir;
	int root;
	int bare; /* rows of sfs_query_dir_entries: names only */
	int err;
	char (*pin)[SFS_ID_SIZE]; /* files to mark suffixed for good */
	size_t npin, pin_alloc;
};

/* Remember a file shown with a suffix of the listing's own making. */
static void pin_later(struct list_ctx *c, const char *id)
{
	char(*nv)[SFS_ID_SIZE];
	size_t na;

	/* the pin is a write (a PATCH): none the credentials cannot make */
	if (c->mode != FS_LIST_FILES || fs_may_change())
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
 * so the entry stays when the other side goes away (rm -r works), and a
 * lookup by name finds it where the listing showed it.
 */
static void pin_now(struct list_ctx *c)
{
	struct sfs_file_update u = { 0 };
	enum sfs_status st;
	struct sfs_err e;
	size_t i;

	u.set = SFS_UPD_SUFFIX;
	for (i = 0; i < c->npin && c->err != -FS_EWAIT; i++) {
		sfs_err_init(&e);
		st = sfs_file_update(g_fs.store, &g_fs.actor, c->pin[i], &u,
				     NULL, &e);
		/* the whole listing again, on a thread that may wait */
		if (st == SFS_WOULD_WAIT)
			c->err = -FS_EWAIT;
		else if (st)
			sfs_warn("fs", "cannot keep the suffix of '%s': %s",
				 c->pin[i], e.message);
	}
	free(c->pin);
	c->pin = NULL;
	c->npin = c->pin_alloc = 0;
}

static int writable_in(const struct sfs_file *f, enum fs_list_mode mode)
{
	if (fs_may_change() || mode == FS_LIST_LISTENING ||
	    mode == FS_LIST_TRASH)
		return 0;
	return !sfs_file_allows(f, SFS_ACT_WRITE, NULL);
}

static void set_attrs(struct fs_entry *en, const struct sfs_file *f,
		      enum fs_list_mode mode)
{
	en->size = mode == FS_LIST_LISTENING ? f->la.size : f->size;
	en->mtime_ns = f->mtime_ns;
	en->atime_ns = f->atime_ns;
	en->ctime_ns = f->ctime_ns;
	en->writable = writable_in(f, mode);
	en->bare = 0;
}

static int add_file(void *arg, const struct sfs_file *f)
{
	struct list_ctx *c = arg;
	struct fs_listing *l = c->l;
	struct fs_entry *en;
	const char *ext;
	char *base = NULL, *name;
	int keep;

	if (c->mode == FS_LIST_LISTENING &&
	    !sfs_file_listed(f, SFS_LIST_LISTENING, c->vdir))
		return 0;
	base = fs_entry_base(f, c->mode, &ext);
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
		name = fs_entry_suffixed(base, ext, f->id);
		free(base);
		if (!name)
			goto nomem;
	}
	en = &l->v[l->n++];
	en->name = name;
	en->ino = f->ino;
	en->bare = c->bare;
	if (!c->bare)
		set_attrs(en, f, c->mode);
	return 0;
nomem:
	free(base);
	c->err = -ENOMEM;
	return 1;
}

int fs_listing_add_file(struct fs_listing *l, const struct sfs_file *f,
			int root)
{
	struct list_ctx c = { 0 };

	c.l = l;
	c.mode = FS_LIST_FILES;
	c.root = root;
	c.vdir = f->path;
	add_file(&c, f);
	free(c.pin); /* the listing of the directory pins, not a lookup */
	return c.err;
}

/* Append a subdirectory entry (name copied). */
int fs_listing_add_sub(struct fs_listing *l, const char *name, uint64_t node,
		       int64_t mtime_ns, int64_t nsub)
{
	struct fs_subdir *nv;

	if (l->nsub == l->sub_alloc) {
		size_t na = l->sub_alloc ? 2 * l->sub_alloc : 16;

		nv = realloc(l->sub, na * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		l->sub = nv;
		l->sub_alloc = na;
	}
	l->sub[l->nsub].name = strdup(name);
	if (!l->sub[l->nsub].name)
		return -ENOMEM;
	l->sub[l->nsub].node = node;
	l->sub[l->nsub].mtime_ns = mtime_ns;
	l->sub[l->nsub].nsub = nsub;
	l->nsub++;
	return 0;
}

static void add_subdir(void *arg, const char *name,
		       const struct sfs_dir_info *d)
{
	struct list_ctx *c = arg;

	if (c->err)
		return;
	c->err = fs_listing_add_sub(
		c->l, name,
		FS_NODE(c->mode == FS_LIST_LISTENING ? FS_LA_DIR : FS_DIR,
			d->ino),
		d->mtime_ns, d->nsub);
}

static int by_ino(const void *a, const void *b)
{
	const struct sfs_file *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/*
 * Every file of a query (the trash, or all that is shared with the user):
 * all pages, in ino order. Ownership: sfs_file_release each, free(*out).
 */
int fs_query_all(int shared, struct sfs_file **out, size_t *nout)
{
	struct sfs_file_list fl = { 0 };
	struct sfs_file *all = NULL, *na;
	size_t n = 0, alloc = 0, got;
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
	*out = all;
	*nout = n;
	return ret;
}

/* The segment of path after vdir ("/a/" in "/a/b/c/" -> "b"), or NULL. */
static const char *child_of(const char *path, const char *vdir, size_t *len)
{
	size_t n = strlen(vdir);
	const char *slash;

	if (strncmp(path, vdir, n) || !path[n])
		return NULL;
	slash = strchr(path + n, '/');
	if (!slash)
		return NULL;
	*len = (size_t)(slash - path - n);
	return path + n;
}

/* The files one owner shares with the user below vdir, and its subdirs. */
static int list_shared(struct list_ctx *c, const char *owner)
{
	char seg[SFS_SEGMENT_MAX + 1], sub[SFS_VPATH_MAX + 2];
	struct sfs_file *all = NULL;
	size_t n = 0, i, j, len;
	const char *p;
	int ret;

	ret = fs_query_all(1, &all, &n);
	for (i = 0; i < n; i++) {
		if (ret || c->err || strcmp(all[i].owner_id, owner) ||
		    !sfs_file_listed(&all[i], SFS_LIST_SHARED, NULL))
			goto next;
		if (!strcmp(all[i].path, c->vdir)) {
			add_file(c, &all[i]);
			goto next;
		}
		p = child_of(all[i].path, c->vdir, &len);
		if (!p || len > SFS_SEGMENT_MAX)
			goto next;
		memcpy(seg, p, len);
		seg[len] = '\0';
		for (j = 0; j < c->l->nsub; j++)
			if (!strcmp(c->l->sub[j].name, seg))
				break;
		if (j == c->l->nsub) {
			snprintf(sub, sizeof(sub), "%s%s/", c->vdir, seg);
			ret = fs_listing_add_sub(c->l, seg,
						 fs_shared_dir_node(owner, sub),
						 0, 0);
		}
	next:
		sfs_file_release(&all[i]);
	}
	free(all);
	return c->err ? c->err : ret;
}

static int list_trash(struct list_ctx *c)
{
	struct sfs_file *all = NULL;
	size_t n = 0, i;
	int ret;

	ret = fs_query_all(0, &all, &n);
	for (i = 0; i < n; i++) {
		if (!ret && !c->err &&
		    sfs_file_listed(&all[i], SFS_LIST_TRASH, NULL))
			add_file(c, &all[i]);
		sfs_file_release(&all[i]);
	}
	free(all);
	return c->err ? c->err : ret;
}

/*
 * The rows of sfs_query_dir_entries come in the order of the directory's
 * index; entries are made in ino order (of two files that clash, the
 * later is suffixed), so the rows are kept here first, then sorted: an
 * ORDER BY was a quarter of the statement's cost. Kept in buffers reused
 * from one listing to the next (bare_lock), let go when they grew big.
 */
struct bare_row {
	int64_t ino;
	size_t name, filename; /* offsets in bare_text */
	char id[SFS_ID_SIZE];
	int suffixed;
	int has_filename;
	int la_status, la_deleted, la_purged; /* the mirror's rule */
};

#define BARE_KEEP (1 << 20) /* bytes of buffers kept between listings */

static pthread_mutex_t bare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bare_row *bare_v;
static size_t bare_n, bare_alloc;
static char *bare_text;
static size_t bare_tlen, bare_talloc;

/* Append s (and its NUL) to bare_text; its offset, or SIZE_MAX. */
static size_t bare_str(const char *s)
{
	size_t n = strlen(s) + 1, at = bare_tlen, na;
	char *nt;

	if (bare_tlen + n > bare_talloc) {
		na = bare_talloc ? 2 * bare_talloc : 4096;
		while (na < bare_tlen + n)
			na *= 2;
		nt = realloc(bare_text, na);
		if (!nt)
			return SIZE_MAX;
		bare_text = nt;
		bare_talloc = na;
	}
	memcpy(bare_text + at, s, n);
	bare_tlen += n;
	return at;
}

static int keep_row(void *arg, const struct sfs_file *f)
{
	struct list_ctx *c = arg;
	struct bare_row *r, *nv;
	size_t na;

	if (bare_n == bare_alloc) {
		na = bare_alloc ? 2 * bare_alloc : 128;
		nv = realloc(bare_v, na * sizeof(*nv));
		if (!nv)
			goto nomem;
		bare_v = nv;
		bare_alloc = na;
	}
	r = &bare_v[bare_n];
	r->ino = f->ino;
	r->suffixed = f->suffixed;
	r->la_status = (int)f->la.status;
	r->la_deleted = f->la.deleted;
	r->la_purged = f->la.purged;
	snprintf(r->id, sizeof(r->id), "%s", f->id);
	r->has_filename = f->filename != NULL;
	r->name = bare_str(f->name);
	r->filename = r->has_filename ? bare_str(f->filename) : 0;
	if (r->name == SIZE_MAX || r->filename == SIZE_MAX)
		goto nomem;
	bare_n++;
	return 0;
nomem:
	c->err = -ENOMEM;
	return 1;
}

static int by_row_ino(const void *a, const void *b)
{
	const struct bare_row *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* The directory's files by sfs_query_dir_entries, added in ino order. */
static enum sfs_status list_bare(struct list_ctx *c, const char *vdir,
				 struct sfs_err *e)
{
	enum sfs_status st;
	struct sfs_file f;
	size_t i;

	pthread_mutex_lock(&bare_lock);
	bare_n = bare_tlen = 0;
	st = sfs_query_dir_entries(g_fs.store, &g_fs.actor, vdir, keep_row, c,
				   e);
	if (!st && !c->err) {
		if (bare_n) /* bare_v may be NULL */
			qsort(bare_v, bare_n, sizeof(*bare_v), by_row_ino);
		sfs_file_init(&f);
		f.path = (char *)vdir;
		f.access = SFS_ACCESS_OWNER;
		f.perm = SFS_PERM_OWNER;
		for (i = 0; i < bare_n && !c->err; i++) {
			f.ino = bare_v[i].ino;
			f.suffixed = bare_v[i].suffixed;
			f.la.status = (enum sfs_jstate)bare_v[i].la_status;
			f.la.deleted = bare_v[i].la_deleted;
			f.la.purged = bare_v[i].la_purged;
			memcpy(f.id, bare_v[i].id, sizeof(f.id));
			f.name = bare_text + bare_v[i].name;
			f.filename = bare_v[i].has_filename
					     ? bare_text + bare_v[i].filename
					     : NULL;
			add_file(c, &f);
		}
	}
	if (bare_alloc * sizeof(*bare_v) + bare_talloc > BARE_KEEP) {
		free(bare_v);
		free(bare_text);
		bare_v = NULL;
		bare_text = NULL;
		bare_alloc = bare_talloc = 0;
	}
	bare_n = bare_tlen = 0;
	pthread_mutex_unlock(&bare_lock);
	return st;
}

static int list(const char *vdir, const char *owner, enum fs_list_mode mode,
		int bare, struct fs_listing *l)
{
	struct list_ctx c = { .l = l, .mode = mode, .vdir = vdir };
	struct sfs_err e;
	enum sfs_status st;

	memset(l, 0, sizeof(*l));
	sfs_err_init(&e);
	if (mode == FS_LIST_TRASH)
		return list_trash(&c);
	if (mode == FS_LIST_SHARED)
		return list_shared(&c, owner);
	c.root = mode == FS_LIST_FILES && !strcmp(vdir, "/");
	/* a remote store's rows come whole anyway */
	c.bare = bare && (mode == FS_LIST_FILES || mode == FS_LIST_LISTENING) &&
		 !sfs_store_is_remote(g_fs.store);
	l->bare = c.bare;
	st = sfs_dir_subdirs(g_fs.store, &g_fs.actor, vdir, add_subdir, &c, &e);
	if (!st && !c.err)
		st = c.bare ? list_bare(&c, vdir, &e)
			    : sfs_query_dir_files(g_fs.store, &g_fs.actor, vdir,
						  add_file, &c, &e);
	pin_now(&c);
	if (c.err)
		return c.err;
	if (st == SFS_INVALID)
		return -ENOENT;
	return st ? -fs_errno(st, &e) : 0;
}

int fs_list(const char *vdir, const char *owner, enum fs_list_mode mode,
	    struct fs_listing *l)
{
	return list(vdir, owner, mode, 0, l);
}

int fs_list_names(const char *vdir, const char *owner, enum fs_list_mode mode,
		  struct fs_listing *l)
{
	return list(vdir, owner, mode, 1, l);
}

/*
 * Both in ino order: the next bare entry at or after *i gets f's, if f
 * still passes the listing's rule (add_file's): in the mirror, an MP3
 * deleted or regenerating since the names were listed goes without.
 */
struct attrs_ctx {
	struct fs_listing *l;
	enum fs_list_mode mode;
	const char *vdir;
	size_t i;
};

static int fill_attrs(void *arg, const struct sfs_file *f)
{
	struct attrs_ctx *c = arg;
	struct fs_listing *l = c->l;

	while (c->i < l->n && l->v[c->i].ino < f->ino)
		c->i++;
	if (c->i == l->n)
		return 1;
	if (l->v[c->i].ino != f->ino)
		return 0;
	if (c->mode != FS_LIST_LISTENING ||
	    sfs_file_listed(f, SFS_LIST_LISTENING, c->vdir))
		set_attrs(&l->v[c->i], f, c->mode);
	c->i++;
	return 0;
}

int fs_listing_attrs(const char *vdir, const char *owner,
		     enum fs_list_mode mode, struct fs_listing *l)
{
	struct attrs_ctx c = { .l = l, .mode = mode, .vdir = vdir };
	struct sfs_err e;
	enum sfs_status st;

	(void)owner;
	if (!l->bare)
		return 0;
	sfs_err_init(&e);
	st = sfs_query_dir_files(g_fs.store, &g_fs.actor, vdir, fill_attrs, &c,
				 &e);
	if (st == SFS_INVALID)
		return -ENOENT;
	if (st)
		return -fs_errno(st, &e);
	l->bare = 0;
	return 0;
}

void fs_listing_release(struct fs_listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].name);
	for (i = 0; i < l->nsub; i++)
		free(l->sub[i].name);
	free(l->v);
	free(l->sub);
	free(l->hidx);
	memset(l, 0, sizeof(*l));
}

/*
 * A few recent listings of the flat trees (/.listening/ mirrors, /.trash/,
 * /.shared/), so that looking up their entries one by one does not list
 * them again each time. A listing is trusted for at most a second and
 * only while no change was seen: the mount's own changes and the change
 * poller bump the generation.
 */
#define CACHE_SLOTS 8
#define CACHE_TTL_MS 1000

static struct cached {
	char vdir[SFS_VPATH_MAX + 2];
	char owner[SFS_ID_SIZE];
	enum fs_list_mode mode;
	uint64_t gen;
	int64_t at_ms;
	uint64_t used;
	struct fs_listing l;
} cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t cache_gen = 1, cache_clock;

void fs_names_changed(void)
{
	pthread_mutex_lock(&cache_lock);
	cache_gen++;
	pthread_mutex_unlock(&cache_lock);
}

void fs_names_added(const char *vdir, const char *entry,
		    const struct sfs_file *f)
{
	(void)vdir;
	(void)entry;
	(void)f;
	fs_names_changed();
}

static int same_key(const struct cached *c, const char *vdir, const char *owner,
		    enum fs_list_mode mode)
{
	return c->mode == mode && !strcmp(c->vdir, vdir) &&
	       !strcmp(c->owner, owner ? owner : "");
}

/* Look entry up in the cached listing of (vdir, owner, mode). */
int fs_listing_find_cached(const char *vdir, const char *owner,
			   enum fs_list_mode mode, const char *entry,
			   struct fs_entry *file, struct fs_subdir *sub)
{
	struct cached *c = NULL;
	struct fs_listing l;
	int64_t now = sfs_now_ms();
	uint64_t gen;
	ssize_t j;
	size_t i;
	int ret;

	pthread_mutex_lock(&cache_lock);
	gen = cache_gen;
	for (i = 0; i < CACHE_SLOTS && !c; i++)
		if (cache[i].gen == gen &&
		    now - cache[i].at_ms < CACHE_TTL_MS &&
		    same_key(&cache[i], vdir, owner, mode))
			c = &cache[i];
	if (!c) {
		pthread_mutex_unlock(&cache_lock);
		ret = fs_list(vdir, owner, mode, &l);
		if (ret)
			return ret;
		pthread_mutex_lock(&cache_lock);
		c = &cache[0];
		for (i = 1; i < CACHE_SLOTS; i++)
			if (cache[i].used < c->used)
				c = &cache[i];
		fs_listing_release(&c->l);
		c->l = l;
		snprintf(c->vdir, sizeof(c->vdir), "%s", vdir);
		snprintf(c->owner, sizeof(c->owner), "%s", owner ? owner : "");
		c->mode = mode;
		c->gen = gen;
		c->at_ms = now;
	}
	c->used = ++cache_clock;
	ret = -ENOENT;
	for (i = 0; i < c->l.nsub && ret; i++)
		if (!strcmp(c->l.sub[i].name, entry)) {
			*sub = c->l.sub[i];
			sub->name = NULL;
			ret = 1;
		}
	if (ret && (j = fs_listing_find(&c->l, entry)) >= 0) {
		*file = c->l.v[j];
		file->name = NULL;
		ret = 0;
	}
	pthread_mutex_unlock(&cache_lock);
	return ret;
}
