/*
 * The remote store's cache of directories (remote_i.h): per directory,
 * the server's answer about it (GET …/directories?path=: its info and its
 * subdirectories) and the listing of its files, so that a lookup, a stat
 * or a listing costs no request while nothing changed there. An entry is
 * good until the change feed says its directory changed (or, with no
 * feed following the server, for SFSI_RCACHE_TTL_MS); the mount's own
 * writes put the server's answer in at once. Bounded: at most
 * SFSI_RCACHE_FILES files and SFSI_RCACHE_DIRS directories in all, the
 * least recently used directory out first.
 *
 * A fill races with changes: it takes a ticket (the clock) before its
 * request, and its answer goes in only if nothing touched the directory
 * (and nothing forgot everything) since; else the next call asks again.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "remote_i.h"
#include "speechfs/json.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define NBUCKETS 4096
#define NONE UINT32_MAX
#define INDEX_FROM 64 /* files in a listing before its names get an index */

struct rdir {
	char *path;	   /* "/a/b/" */
	struct rdir *next; /* in its bucket */
	uint64_t touch;	   /* the clock when last changed or forgotten */
	uint64_t used;	   /* the clock when last used (LRU) */
	/*
	 * the files of the directory, when has_files; with stale, only
	 * what was seen last (changed or forgotten since: told only while
	 * the server does not answer)
	 */
	int has_files, stale;
	int64_t files_at; /* monotonic ms of the fill */
	struct sfs_file *v;
	size_t n, cap;
	/*
	 * Its files by name (case folded), made at the first lookup of a
	 * large listing: chains of indices (NONE ends one), head by hash.
	 */
	uint32_t *head, *link;
	size_t nb, nlink;
	/* the server's answer about the directory, when dirj */
	json_t *dirj;
	int64_t dirj_at;
	/*
	 * The same answer while its list of subdirectories holds (a file
	 * made or changed in place changes only its counts and times)
	 */
	json_t *subj;
	/* the last answer about it ever got (what was seen last, offline) */
	json_t *lastj;
	/* the clock at this store's last change of its subdirectories */
	uint64_t mine;
};

/* Where a file of a listing is: its directory, its index there. */
struct rloc {
	struct rdir *d;
	size_t i;
};

struct sfsi_rcache {
	pthread_mutex_t mu;
	struct rdir *buckets[NBUCKETS];
	size_t ndirs, nfiles;
	uint64_t clock;
	uint64_t all_touch; /* the clock when everything was forgotten */
	int live;	    /* the feed follows the server: no time bound */
	struct rloc *where; /* by the store's file number */
	size_t nwhere;
};

static uint32_t hash(const char *k)
{
	uint32_t h = 2166136261u;

	while (*k)
		h = (h ^ (unsigned char)*k++) * 16777619u;
	return h % NBUCKETS;
}

static struct rdir *find(struct sfsi_rcache *c, const char *path)
{
	struct rdir *d;

	for (d = c->buckets[hash(path)]; d; d = d->next)
		if (!strcmp(d->path, path))
			return d;
	return NULL;
}

enum sfs_status sfsi_rcache_new(struct sfsi_rcache **out, struct sfs_err *e)
{
	struct sfsi_rcache *c = calloc(1, sizeof(*c));

	*out = c;
	if (!c)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	pthread_mutex_init(&c->mu, NULL);
	c->clock = 1;
	return SFS_OK;
}

/* ---- files of a listing -------------------------------------------------- */

static int file_copy(struct sfs_file *to, const struct sfs_file *f)
{
	size_t i;
	int bad = 0;

#define DUP(x) (to->x = f->x ? strdup(f->x) : NULL, bad |= f->x && !to->x)
	*to = *f;
	to->tags = NULL;
	to->ntags = 0;
	DUP(name);
	DUP(filename);
	DUP(description);
	DUP(path);
	DUP(metadata);
	DUP(mime);
	DUP(source_uri);
	DUP(ingest_error);
	DUP(la.error);
#undef DUP
	if (f->ntags && (to->tags = calloc(f->ntags, sizeof(char *)))) {
		for (i = 0; i < f->ntags; i++)
			bad |= !(to->tags[to->ntags++] = strdup(f->tags[i]));
	} else if (f->ntags) {
		bad = 1;
	}
	if (bad)
		sfs_file_release(to);
	return bad ? -1 : 0;
}

static void set_where(struct sfsi_rcache *c, int64_t ino, struct rdir *d,
		      size_t i)
{
	struct rloc *nv;
	size_t n;

	if (ino <= 0)
		return;
	if ((size_t)ino >= c->nwhere) {
		if (!d)
			return;
		n = c->nwhere ? c->nwhere : 1024;
		while (n <= (size_t)ino)
			n *= 2;
		nv = realloc(c->where, n * sizeof(*nv));
		if (!nv)
			return; /* found by a scan: see locate */
		memset(nv + c->nwhere, 0, (n - c->nwhere) * sizeof(*nv));
		c->where = nv;
		c->nwhere = n;
	}
	c->where[ino].d = d;
	c->where[ino].i = i;
}

/* The directory and index of file number ino in a listing (d NULL: none). */
static struct rloc locate(struct sfsi_rcache *c, int64_t ino)
{
	struct rloc l = { 0 };

	if (ino > 0 && (size_t)ino < c->nwhere) {
		l = c->where[ino];
		if (l.d && (l.i >= l.d->n || l.d->v[l.i].ino != ino))
			l.d = NULL; /* stale: never trusted */
	}
	return l;
}

/* ---- the index of a listing by name ----------------------------------- */

/* A name's hash, ASCII case folded as strcasecmp compares. */
static uint32_t name_hash(const char *k)
{
	uint32_t h = 2166136261u;
	unsigned char ch;

	for (; k && *k; k++) {
		ch = (unsigned char)*k;
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		h = (h ^ ch) * 16777619u;
	}
	return h;
}

static void index_free(struct rdir *d)
{
	free(d->head);
	free(d->link);
	d->head = d->link = NULL;
	d->nb = d->nlink = 0;
}

static void index_link(struct rdir *d, size_t i)
{
	uint32_t h = name_hash(d->v[i].name) & (uint32_t)(d->nb - 1);

	d->link[i] = d->head[h];
	d->head[h] = (uint32_t)i;
}

static void index_unlink(struct rdir *d, size_t i)
{
	uint32_t *p = &d->head[name_hash(d->v[i].name) & (uint32_t)(d->nb - 1)];

	while (*p != NONE && *p != i)
		p = &d->link[*p];
	if (*p == i)
		*p = d->link[i];
}

/* (Re)make the index for d's files as they are: 0, or -1 (no memory). */
static int index_make(struct rdir *d)
{
	size_t nb = 64, i;

	while (nb < 2 * d->n)
		nb *= 2;
	index_free(d);
	d->head = malloc(nb * sizeof(*d->head));
	d->link = malloc((d->cap ? d->cap : 1) * sizeof(*d->link));
	if (!d->head || !d->link || d->cap >= NONE) {
		index_free(d);
		return -1;
	}
	d->nb = nb;
	d->nlink = d->cap ? d->cap : 1;
	memset(d->head, 0xff, nb * sizeof(*d->head));
	for (i = 0; i < d->n; i++)
		index_link(d, i);
	return 0;
}

/* File d->n - 1 was added: into the index, if d has one. */
static void index_added(struct rdir *d)
{
	if (!d->head)
		return;
	if (d->n > d->nlink || 2 * d->n > d->nb) {
		if (index_make(d))
			index_free(d); /* looked up without one */
		return;
	}
	index_link(d, d->n - 1);
}

/* Take file i out of d's listing (the last one moves into its place). */
static void drop_file(struct sfsi_rcache *c, struct rdir *d, size_t i)
{
	if (d->head) {
		index_unlink(d, i);
		if (i + 1 < d->n)
			index_unlink(d, d->n - 1);
	}
	set_where(c, d->v[i].ino, NULL, 0);
	sfs_file_release(&d->v[i]);
	if (i + 1 < d->n) {
		d->v[i] = d->v[d->n - 1];
		set_where(c, d->v[i].ino, d, i);
		if (d->head)
			index_link(d, i);
	}
	d->n--;
	c->nfiles--;
}

static void drop_files(struct sfsi_rcache *c, struct rdir *d)
{
	index_free(d);
	while (d->n)
		drop_file(c, d, d->n - 1);
	free(d->v);
	d->v = NULL;
	d->cap = 0;
	d->has_files = 0;
	d->stale = 0;
}

/* d's listing is no longer good: kept as what was seen last only. */
static void stale_files(struct rdir *d)
{
	d->stale = d->has_files;
}

/* ---- directories ----------------------------------------------------- */

/* The answer about d goes (with shape: its subdirectories too). */
static void drop_answer(struct rdir *d, int shape)
{
	json_decref(d->dirj);
	d->dirj = NULL;
	if (shape) {
		json_decref(d->subj);
		d->subj = NULL;
	}
}

static void free_dir(struct sfsi_rcache *c, struct rdir *d)
{
	struct rdir **p = &c->buckets[hash(d->path)];

	while (*p != d)
		p = &(*p)->next;
	*p = d->next;
	drop_files(c, d);
	drop_answer(d, 1);
	json_decref(d->lastj);
	free(d->path);
	free(d);
	c->ndirs--;
}

/* Out with the least recently used directories but keep; c->mu held. */
static void trim(struct sfsi_rcache *c, struct rdir *keep)
{
	struct rdir *d, *old;
	size_t b;

	while (c->nfiles > SFSI_RCACHE_FILES || c->ndirs > SFSI_RCACHE_DIRS) {
		old = NULL;
		for (b = 0; b < NBUCKETS; b++)
			for (d = c->buckets[b]; d; d = d->next)
				if (d != keep && (!old || d->used < old->used))
					old = d;
		if (!old)
			break;
		free_dir(c, old);
	}
}

static struct rdir *get_dir(struct sfsi_rcache *c, const char *path)
{
	struct rdir *d = find(c, path);
	uint32_t h;

	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(path))) {
		free(d);
		return NULL;
	}
	/* after every touch so far: a fill older than it finds it newer */
	d->touch = c->clock;
	h = hash(path);
	d->next = c->buckets[h];
	c->buckets[h] = d;
	c->ndirs++;
	trim(c, d);
	return d;
}

static int fresh(struct sfsi_rcache *c, int64_t at)
{
	return c->live || sfs_mono_ns() / 1000000 - at < SFSI_RCACHE_TTL_MS;
}

/*
 * Directory path changed: its listing and answer go, and the answers of
 * its ancestors (their counts and times; with shape, their lists of
 * subdirectories too: a directory may have come or gone). c->mu held.
 */
static void touch(struct sfsi_rcache *c, const char *path, int files, int shape)
{
	uint64_t now = ++c->clock; /* even with no entry: see get_dir */
	char p[4096];
	struct rdir *d;
	char *slash;

	if (strlen(path) >= sizeof(p) || path[0] != '/')
		return;
	sfs_strlcpy(p, path, sizeof(p));
	for (;;) {
		if ((d = find(c, p))) {
			d->touch = now;
			if (files)
				stale_files(d);
			drop_answer(d, shape);
		}
		files = 0;
		if (!strcmp(p, "/"))
			break;
		/* "/a/b/" -> "/a/" */
		p[strlen(p) - 1] = '\0';
		slash = strrchr(p, '/');
		slash[1] = '\0';
	}
}

uint64_t sfsi_rcache_ticket(struct sfsi_rcache *c, const char *path)
{
	uint64_t t;

	pthread_mutex_lock(&c->mu);
	t = c->clock;
	if (!get_dir(c, path))
		t = 0; /* no memory: nothing goes in */
	pthread_mutex_unlock(&c->mu);
	return t;
}

/* The directory of a fill, if nothing touched it since ticket t. */
static struct rdir *fill_target(struct sfsi_rcache *c, const char *path,
				uint64_t t)
{
	struct rdir *d = find(c, path);

	if (!t || !d || d->touch > t || c->all_touch > t)
		return NULL;
	return d;
}

void sfsi_rcache_put_files(struct sfsi_rcache *c, const char *path, uint64_t t,
			   struct sfs_file_list *l)
{
	struct rdir *d;
	size_t i;

	pthread_mutex_lock(&c->mu);
	d = fill_target(c, path, t);
	/*
	 * A file of it still in another directory's listing moved here
	 * (the feed's event may come later, and finds it only here): that
	 * listing goes, and a fill of it under way does not go in
	 */
	for (i = 0; d && i < l->n; i++) {
		struct rloc o = locate(c, l->files[i].ino);

		if (o.d && o.d != d) {
			touch(c, o.d->path, 1, 1);
			drop_file(c, o.d, o.i); /* not there when seen last */
		}
	}
	if (d) {
		drop_files(c, d);
		d->v = l->files;
		d->n = d->cap = l->n;
		l->files = NULL;
		l->n = 0;
		for (i = 0; i < d->n; i++)
			set_where(c, d->v[i].ino, d, i);
		c->nfiles += d->n;
		d->has_files = 1;
		d->stale = 0;
		d->files_at = sfs_mono_ns() / 1000000;
		d->used = ++c->clock;
		trim(c, d);
	}
	pthread_mutex_unlock(&c->mu);
}

void sfsi_rcache_put_dir(struct sfsi_rcache *c, const char *path, uint64_t t,
			 json_t *j)
{
	struct rdir *d;

	pthread_mutex_lock(&c->mu);
	d = fill_target(c, path, t);
	if (d) {
		drop_answer(d, 1);
		d->dirj = json_incref(j);
		d->subj = json_incref(j);
		d->dirj_at = sfs_mono_ns() / 1000000;
		d->used = ++c->clock;
	}
	/*
	 * what was seen last, whatever others did since; but not an answer
	 * older than this store's own change there (sfsi_rcache_own_dirs)
	 */
	if ((d = find(c, path)) && t >= d->mine) {
		json_decref(d->lastj);
		d->lastj = json_incref(j);
	}
	pthread_mutex_unlock(&c->mu);
}

/* Is file i of d among the first k picked (their indices in picked)? */
static int picked_already(const size_t *picked, size_t k, size_t i)
{
	size_t j;

	for (j = 0; j < k; j++)
		if (picked[j] == i)
			return 1;
	return 0;
}

#define PICK_MAX 16

/*
 * The indices of d's files named in names (by the index), up to
 * PICK_MAX; -1 when the index cannot tell (none, or more than that).
 */
static int pick_by_name(struct rdir *d, const char *const *names, size_t n,
			size_t *picked)
{
	size_t k = 0, i;
	uint32_t j;

	if (!d->head && (d->n < INDEX_FROM || index_make(d)))
		return -1;
	for (i = 0; i < n; i++) {
		if (!names[i])
			continue;
		j = d->head[name_hash(names[i]) & (uint32_t)(d->nb - 1)];
		for (; j != NONE; j = d->link[j]) {
			if (!d->v[j].name ||
			    strcasecmp(d->v[j].name, names[i]) ||
			    picked_already(picked, k, j))
				continue;
			if (k == PICK_MAX)
				return -1;
			picked[k++] = j;
		}
	}
	return (int)k;
}

/* Whether d's listing answers: good, or (last) held at all. */
static int files_held(struct sfsi_rcache *c, struct rdir *d, int last)
{
	return d && d->has_files &&
	       (last || (!d->stale && fresh(c, d->files_at)));
}

int sfsi_rcache_files(struct sfsi_rcache *c, const char *path,
		      const char *const *names, size_t n, const char *id_prefix,
		      int all, int last, struct sfs_file_list *out)
{
	size_t picked[PICK_MAX], i, k = 0, want;
	struct sfs_file *v = NULL;
	struct rdir *d;
	int hit = 0, np = -1;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->mu);
	d = find(c, path);
	if (files_held(c, d, last)) {
		hit = 1;
		d->used = ++c->clock;
		/* by the index, unless an id prefix is asked too */
		if (!all && !(id_prefix && *id_prefix))
			np = pick_by_name(d, names, n, picked);
		want = all ? d->n : np >= 0 ? (size_t)np : 0;
		for (i = 0; !all && np < 0 && i < d->n; i++)
			want += (size_t)sfsi_remote_name_is(&d->v[i], names, n,
							    id_prefix);
		if (want && !(v = calloc(want, sizeof(*v))))
			hit = 0;
		for (i = 0;
		     hit && k < want && i < (np >= 0 ? (size_t)np : d->n);
		     i++) {
			size_t x = np >= 0 ? picked[i] : i;

			if (np < 0 && !all &&
			    !sfsi_remote_name_is(&d->v[x], names, n, id_prefix))
				continue;
			if (file_copy(&v[k], &d->v[x]))
				hit = 0;
			else
				k++;
		}
	}
	pthread_mutex_unlock(&c->mu);
	out->files = v;
	out->n = k;
	out->total = (int64_t)k;
	if (!hit)
		sfs_file_list_release(out);
	return hit;
}

int sfsi_rcache_file(struct sfsi_rcache *c, int64_t ino, int last,
		     struct sfs_file *out)
{
	struct rloc l;
	int hit = 0;

	sfs_file_init(out);
	pthread_mutex_lock(&c->mu);
	l = locate(c, ino);
	if (files_held(c, l.d, last) && !file_copy(out, &l.d->v[l.i])) {
		l.d->used = ++c->clock;
		hit = 1;
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

json_t *sfsi_rcache_dir(struct sfsi_rcache *c, const char *path, int what)
{
	struct rdir *d;
	json_t *j = NULL;

	pthread_mutex_lock(&c->mu);
	d = find(c, path);
	if (d && what == SFSI_RCACHE_LAST) {
		j = json_incref(d->lastj);
	} else if (d && what == SFSI_RCACHE_SUBDIRS && d->subj &&
		   fresh(c, d->dirj_at)) {
		j = json_incref(d->subj);
		d->used = ++c->clock;
	} else if (d && what == SFSI_RCACHE_ANSWER && d->dirj &&
		   fresh(c, d->dirj_at)) {
		j = json_incref(d->dirj);
		d->used = ++c->clock;
	}
	pthread_mutex_unlock(&c->mu);
	return j;
}

void sfsi_rcache_unref(struct sfsi_rcache *c, json_t *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&c->mu);
	json_decref(j);
	pthread_mutex_unlock(&c->mu);
}

int sfsi_rcache_dir_kept(struct sfsi_rcache *c, const char *path)
{
	struct rdir *d;
	int kept;

	pthread_mutex_lock(&c->mu);
	d = find(c, path);
	kept = d && d->subj && fresh(c, d->dirj_at);
	pthread_mutex_unlock(&c->mu);
	return kept;
}

/* ---- what changed ------------------------------------------------------ */

void sfsi_rcache_live(struct sfsi_rcache *c, int live)
{
	int was;

	pthread_mutex_lock(&c->mu);
	was = c->live;
	c->live = live;
	pthread_mutex_unlock(&c->mu);
	/*
	 * Either way what is kept may be older than what the feed tells:
	 * its changes may be missed now, or were made before it followed
	 */
	if (was != live)
		sfsi_rcache_forget_all(c);
}

int sfsi_rcache_is_live(struct sfsi_rcache *c)
{
	int live;

	pthread_mutex_lock(&c->mu);
	live = c->live;
	pthread_mutex_unlock(&c->mu);
	return live;
}

void sfsi_rcache_forget_all(struct sfsi_rcache *c)
{
	struct rdir *d;
	size_t b;

	pthread_mutex_lock(&c->mu);
	c->all_touch = ++c->clock;
	for (b = 0; b < NBUCKETS; b++)
		for (d = c->buckets[b]; d; d = d->next) {
			stale_files(d);
			drop_answer(d, 1);
		}
	pthread_mutex_unlock(&c->mu);
}

void sfsi_rcache_forget_dir(struct sfsi_rcache *c, const char *path, int below)
{
	struct rdir *d;
	size_t b, len = strlen(path);

	pthread_mutex_lock(&c->mu);
	touch(c, path, 1, 1);
	for (b = 0; below && b < NBUCKETS; b++)
		for (d = c->buckets[b]; d; d = d->next)
			if (!strncmp(d->path, path, len) && d->path[len]) {
				d->touch = ++c->clock;
				stale_files(d);
				drop_answer(d, 1);
			}
	pthread_mutex_unlock(&c->mu);
}

void sfsi_rcache_forget_file(struct sfsi_rcache *c, int64_t ino,
			     const char *path)
{
	struct rloc l;

	pthread_mutex_lock(&c->mu);
	l = locate(c, ino);
	if (l.d)
		touch(c, l.d->path, 1, 1);
	if (path)
		touch(c, path, 1, 1);
	pthread_mutex_unlock(&c->mu);
}

/* The entry of child directory path in its parent's answer j, or NULL. */
json_t *sfsi_rcache_child(json_t *j, const char *path)
{
	json_t *a = json_object_get(j, "directories"), *o;
	const char *p;
	size_t i;

	for (i = 0; i < json_array_size(a); i++) {
		o = json_array_get(a, i);
		p = json_string_value(json_object_get(o, "path"));
		if (p && !strcmp(p, path))
			return o;
	}
	return NULL;
}

/* Did directory path exist, as far as kept answers tell? c->mu held. */
static int known_dir(struct sfsi_rcache *c, const char *path)
{
	char parent[4096];
	size_t len = strlen(path);
	struct rdir *d = find(c, path);

	if (!strcmp(path, "/") ||
	    (d && ((d->has_files && !d->stale) || d->subj)))
		return 1;
	if (len < 2 || len >= sizeof(parent))
		return 0;
	sfs_strlcpy(parent, path, sizeof(parent));
	parent[len - 1] = '\0';
	*(strrchr(parent, '/') + 1) = '\0';
	d = find(c, parent);
	return d && d->subj && sfsi_rcache_child(d->subj, path);
}

uint64_t sfsi_rcache_clock(struct sfsi_rcache *c)
{
	uint64_t t;

	pthread_mutex_lock(&c->mu);
	t = c->clock;
	pthread_mutex_unlock(&c->mu);
	return t;
}

/*
 * The answer about directory d made of the server's state of it after a
 * write (X-Speechfs-Directory: its counts and time) and the list of its
 * subdirectories kept (a file written there changes none of them), or
 * NULL when the state is not that of a directory of this shape.
 */
static json_t *answer_with_state(struct rdir *d, const char *state)
{
	static const char *const keys[] = { "explicit", "descendantCount",
					    "subdirectoryCount", "modifiedAt",
					    "modifiedAtNs" };
	json_t *st = json_loads(state, 0, NULL), *j = NULL, *v;
	size_t i;

	if (!json_is_object(st) || !d->subj ||
	    !json_is_boolean(json_object_get(st, "explicit")) ||
	    !json_is_integer(json_object_get(st, "descendantCount")) ||
	    !json_is_string(json_object_get(st, "modifiedAt")) ||
	    !json_is_integer(json_object_get(st, "modifiedAtNs")) ||
	    json_integer_value(json_object_get(st, "subdirectoryCount")) !=
		    (json_int_t)json_array_size(
			    json_object_get(d->subj, "directories")))
		goto out;
	j = json_copy(d->subj); /* the subdirectories' array shared */
	for (i = 0; j && i < sizeof(keys) / sizeof(keys[0]); i++) {
		v = json_object_get(st, keys[i]);
		if (json_object_set(j, keys[i], v)) {
			json_decref(j);
			j = NULL;
		}
	}
out:
	json_decref(st);
	return j;
}

void sfsi_rcache_apply(struct sfsi_rcache *c, const struct sfs_file *f)
{
	sfsi_rcache_apply_state(c, f, 0, NULL);
}

void sfsi_rcache_apply_state(struct sfsi_rcache *c, const struct sfs_file *f,
			     uint64_t t, const char *state)
{
	struct sfs_file *nv;
	struct rloc l;
	struct rdir *d;
	json_t *j = NULL;
	int keep;

	pthread_mutex_lock(&c->mu);
	l = locate(c, f->ino);
	/* a deleted file is in the trash's listing, not its directory's */
	d = f->path && !f->deleted ? find(c, f->path) : NULL;
	/*
	 * The server's state of the directory after this write goes in if
	 * nothing touched the directory (no other write, no change the feed
	 * told) since the request began: the file stays where it was (its
	 * directory's shape holds), and the state is of the caller's own
	 * directory.
	 */
	keep = state && state[0] && t && d && (!l.d || l.d == d) &&
	       d->touch <= t && c->all_touch <= t && f->perm == SFS_PERM_OWNER;
	/*
	 * Where it was may be gone (its last file left): the shape of the
	 * tree there is asked again. Where it is now existed already if
	 * its listing or its parent's list of subdirectories says so.
	 */
	if (l.d) {
		touch(c, l.d->path, 0, l.d != d);
		drop_file(c, l.d, l.i);
	}
	if (f->path && !f->deleted)
		touch(c, f->path, 0, !known_dir(c, f->path));
	if (d && d->has_files) {
		if (d->n == d->cap) {
			nv = realloc(d->v,
				     (d->cap ? d->cap * 2 : 16) * sizeof(*nv));
			if (nv) {
				d->v = nv;
				d->cap = d->cap ? d->cap * 2 : 16;
			}
		}
		if (d->n < d->cap && !file_copy(&d->v[d->n], f)) {
			set_where(c, f->ino, d, d->n);
			d->n++;
			c->nfiles++;
			index_added(d);
		} else {
			drop_files(c, d); /* no memory: asked again */
		}
		trim(c, d);
	}
	if (keep && (j = answer_with_state(d, state))) {
		drop_answer(d, 0);
		d->dirj = j;
		d->dirj_at = sfs_mono_ns() / 1000000;
		json_decref(d->lastj);
		d->lastj = json_incref(j);
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- this store's own directory changes, in the last answers -------- */

/*
 * Answer j with its entry of subdirectory path left out and entry add
 * (NULL: none) put in: a new object (the entries shared with j), or
 * NULL (no memory). Answers are shared by reference, never changed.
 */
static json_t *with_child(json_t *j, const char *path, json_t *add)
{
	json_t *a = json_object_get(j, "directories"), *o;
	json_t *nj = json_copy(j), *na = json_array();
	const char *p;
	size_t i;
	int bad = !nj || !na;

	for (i = 0; !bad && i < json_array_size(a); i++) {
		o = json_array_get(a, i);
		p = json_string_value(json_object_get(o, "path"));
		if (!p || strcmp(p, path))
			bad = json_array_append(na, o);
	}
	if (!bad && add)
		bad = json_array_append(na, add);
	if (!bad)
		bad = json_object_set_new(
			nj, "subdirectoryCount",
			json_integer((json_int_t)json_array_size(na)));
	if (!bad) {
		bad = json_object_set_new(nj, "directories", na);
		na = NULL;
	}
	json_decref(na);
	if (bad) {
		json_decref(nj);
		nj = NULL;
	}
	return nj;
}

/* "/a/b/" -> "b" into out[size]: 0, or -1 (no such segment, too long). */
static int base_of(const char *path, char *out, size_t size)
{
	size_t len = strlen(path);
	const char *b;

	if (len < 2 || path[len - 1] != '/')
		return -1;
	for (b = path + len - 1; b > path && b[-1] != '/'; b--)
		;
	if ((size_t)(path + len - 1 - b) >= size)
		return -1;
	memcpy(out, b, (size_t)(path + len - 1 - b));
	out[path + len - 1 - b] = '\0';
	return 0;
}

/*
 * The entry of directory path in its parent's answer: old's (a rename:
 * its counts and times) at its new path, else a new empty one made now.
 */
static json_t *entry_at(json_t *old, const char *path)
{
	char name[4096], iso[32];
	int64_t ns = sfs_now_ns();
	json_t *o;

	if (base_of(path, name, sizeof(name)))
		return NULL;
	if (old) {
		o = json_copy(old);
		if (o && (json_object_set_new(o, "path", json_string(path)) ||
			  json_object_set_new(o, "name", json_string(name)))) {
			json_decref(o);
			o = NULL;
		}
		return o;
	}
	sfs_iso8601(ns / 1000000, iso);
	return json_pack("{s:s, s:s, s:b, s:I, s:I, s:s, s:I}", "path", path,
			 "name", name, "explicit", 1, "descendantCount",
			 (json_int_t)0, "subdirectoryCount", (json_int_t)0,
			 "modifiedAt", iso, "modifiedAtNs", (json_int_t)ns);
}

/*
 * Directory path's entry goes from its parent's last answer (with a
 * reference to it in *gone, if gone), and with coming, add (NULL: no
 * memory, then the answer goes: unknown, never wrong) comes into it. A
 * parent never answered stays so.
 */
static void parent_last(struct sfsi_rcache *c, const char *path, int coming,
			json_t *add, json_t **gone)
{
	char parent[4096];
	size_t len = strlen(path);
	struct rdir *d;
	json_t *nj;

	if (len < 2 || len >= sizeof(parent))
		return;
	sfs_strlcpy(parent, path, sizeof(parent));
	parent[len - 1] = '\0';
	*(strrchr(parent, '/') + 1) = '\0';
	d = find(c, parent);
	if (!d)
		return;
	d->mine = ++c->clock; /* a fill begun before: not the last answer */
	if (!d->lastj)
		return;
	if (gone)
		*gone = json_incref(sfsi_rcache_child(d->lastj, path));
	nj = coming && !add ? NULL : with_child(d->lastj, path, add);
	json_decref(d->lastj);
	d->lastj = nj;
}

/* Directory path and all below it are no more: what was kept of them goes. */
static void drop_below(struct sfsi_rcache *c, const char *path)
{
	size_t b, len = strlen(path);
	struct rdir *d, *next;

	for (b = 0; b < NBUCKETS; b++)
		for (d = c->buckets[b]; d; d = next) {
			next = d->next;
			if (!strncmp(d->path, path, len))
				free_dir(c, d);
		}
}

/* A directory this store made is empty: that is its last answer. */
static void made_empty(struct sfsi_rcache *c, const char *path, json_t *entry)
{
	struct rdir *d = get_dir(c, path);
	json_t *j = entry ? json_copy(entry) : NULL;

	if (!d || !j || json_object_del(j, "name") ||
	    json_object_set_new(j, "directories", json_array())) {
		json_decref(j);
		return;
	}
	d->mine = ++c->clock;
	d->lastj = j;
	/* its (empty) listing, told only while the server does not answer */
	d->has_files = d->stale = 1;
}

void sfsi_rcache_own_dirs(struct sfsi_rcache *c, const char *from,
			  const char *to)
{
	json_t *old = NULL, *entry = NULL;

	pthread_mutex_lock(&c->mu);
	if (from) {
		parent_last(c, from, 0, NULL, &old);
		drop_below(c, from);
	}
	if (to) {
		drop_below(c, to); /* an empty directory a rename replaced */
		entry = entry_at(old, to);
		parent_last(c, to, 1, entry, NULL);
		if (!from)
			made_empty(c, to, entry);
	}
	json_decref(entry);
	json_decref(old);
	pthread_mutex_unlock(&c->mu);
}

void sfsi_rcache_remove(struct sfsi_rcache *c, int64_t ino)
{
	struct rloc l;

	pthread_mutex_lock(&c->mu);
	l = locate(c, ino);
	if (l.d) {
		touch(c, l.d->path, 0, 1);
		drop_file(c, l.d, l.i);
	}
	pthread_mutex_unlock(&c->mu);
}

void sfsi_rcache_free(struct sfsi_rcache *c)
{
	size_t b;

	if (!c)
		return;
	for (b = 0; b < NBUCKETS; b++)
		while (c->buckets[b])
			free_dir(c, c->buckets[b]);
	free(c->where);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
