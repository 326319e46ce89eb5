/*
 * The remote store's directories (a server's /directories answers, or
 * what the paths of the files below show on a server with only the
 * seed's API) and its listings of files, every page of them, numbered in
 * the order they are listed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "remote_store_i.h"
#include "util_i.h"
#include "speechfs/json.h"
#include "speechfs/log.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define PAGE 100

/* ---- directories ------------------------------------------------------- */

static void dir_info(struct rstore *rs, json_t *o, const char *path,
		     struct sfs_dir_info *d)
{
	const char *m = json_string_value(json_object_get(o, "modifiedAt"));
	int64_t ms = 0;

	memset(d, 0, sizeof(*d));
	d->ino = sfsi_rstore_ino_of(rs, path, 0);
	d->explicit_ = json_is_true(json_object_get(o, "explicit"));
	d->nfiles = json_integer_value(json_object_get(o, "descendantCount"));
	d->nsub = json_integer_value(json_object_get(o, "subdirectoryCount"));
	if (json_is_integer(json_object_get(o, "modifiedAtNs")))
		d->mtime_ns = (int64_t)json_integer_value(
			json_object_get(o, "modifiedAtNs"));
	else if (m && !sfs_iso8601_parse(m, &ms))
		d->mtime_ns = ms * 1000000;
	pthread_mutex_lock(&rs->mu);
	if (d->ino > 0 && (size_t)d->ino <= rs->n) {
		rs->v[d->ino - 1].dir = *d;
		rs->v[d->ino - 1].has_dir = 1;
	}
	pthread_mutex_unlock(&rs->mu);
}

/* A directory as last seen while the server does not answer. */
static enum sfs_status last_dir(struct rstore *rs, const char *path,
				struct sfs_dir_info *out)
{
	int64_t i = sfsi_rstore_known(rs, path);
	enum sfs_status st = SFS_NOT_FOUND;

	pthread_mutex_lock(&rs->mu);
	if (i && rs->v[i - 1].has_dir) {
		*out = rs->v[i - 1].dir;
		st = SFS_OK;
	}
	pthread_mutex_unlock(&rs->mu);
	return st;
}

/* The parent of directory path ("/a/b/" -> "/a/"); -1 for "/". */
static int parent_of(const char *path, char *out, size_t size)
{
	size_t len = strlen(path);

	if (len < 2 || len >= size || path[len - 1] != '/')
		return -1;
	sfs_strlcpy(out, path, size);
	out[len - 1] = '\0';
	*(strrchr(out, '/') + 1) = '\0';
	return 0;
}

/*
 * 1 if directory path did not exist when its parent was last seen (its
 * last answer lists its subdirectories, and not path). A lookup of a
 * file tries its name as a directory first, which must not fail while
 * the server does not answer.
 */
static int last_dir_absent(struct rstore *rs, const char *path)
{
	char parent[4096];
	json_t *j;
	int absent;

	if (parent_of(path, parent, sizeof(parent)))
		return 0;
	j = sfsi_rcache_dir(rs->cache, parent, SFSI_RCACHE_LAST);
	absent = j && !sfsi_rcache_child(j, path);
	sfsi_rcache_unref(rs->cache, j);
	return absent;
}

/* The server's answer about directory path: kept, or asked (and kept). */
static enum sfs_status get_dir(struct rstore *rs, const char *path,
			       json_t **out, struct sfs_err *e)
{
	char url[SFSI_REMOTE_DIR_URL_MAX];
	enum sfs_status st = sfsi_remote_dir_url(path, url, sizeof(url), e);
	uint64_t t;

	if (st || (*out = sfsi_rcache_dir(rs->cache, path, SFSI_RCACHE_ANSWER)))
		return st;
	t = sfsi_rcache_ticket(rs->cache, path);
	st = sfsi_rstore_get_json(rs, url, out, e);
	if (!st)
		sfsi_rcache_put_dir(rs->cache, path, t, *out);
	return st;
}

/*
 * Directory path as its parent's answer lists it (kept, else asked and
 * kept: the next lookup there costs nothing): 1 and *out (the parent's
 * answer, with a reference) pointing *child at its entry, 0 when the
 * parent has no such subdirectory (or is no directory), -1 when not
 * known (or known to exist, with counts that may have changed since),
 * -2 when asking failed (*st, e).
 */
static int dir_by_parent(struct rstore *rs, const char *path, json_t **out,
			 json_t **child, enum sfs_status *st, struct sfs_err *e)
{
	char parent[4096];
	json_t *j;
	int ret;

	*out = *child = NULL;
	*st = SFS_OK;
	if (parent_of(path, parent, sizeof(parent)))
		return -1;
	j = sfsi_rcache_dir(rs->cache, parent, SFSI_RCACHE_ANSWER);
	if (!j && !sfsi_rcache_dir_kept(rs->cache, parent)) {
		*st = get_dir(rs, parent, &j, e);
		if (*st == SFS_NOT_FOUND)
			sfs_err_init(e);
		if (*st)
			return *st == SFS_NOT_FOUND ? 0 : -2;
	}
	if (j) {
		*child = sfsi_rcache_child(j, path);
		if (*child)
			*out = j;
		else
			sfsi_rcache_unref(rs->cache, j);
		return *child ? 1 : 0;
	}
	j = sfsi_rcache_dir(rs->cache, parent, SFSI_RCACHE_SUBDIRS);
	ret = !j ? -1 : sfsi_rcache_child(j, path) ? -1 : 0;
	sfsi_rcache_unref(rs->cache, j);
	return ret;
}

static enum sfs_status list_all(struct rstore *rs, const char *url, int perm,
				struct sfs_file_list *l, struct sfs_err *e);

/*
 * Directories of a server with only the seed's API (no /directories):
 * what the paths of the files below show, by one recursive listing of
 * path. No empty directory exists there.
 */
struct seed_sub {
	char *name;
	int64_t nfiles, mtime_ms, nsub;
	char **segs; /* its own subdirectories' names */
};

struct seed_dir {
	int64_t nfiles, mtime_ms;
	struct seed_sub *subs;
	size_t nsubs;
};

static int seed_add(char ***v, int64_t *n, const char *name, size_t len)
{
	char **nv;
	int64_t i;

	for (i = 0; i < *n; i++)
		if (strlen((*v)[i]) == len && !strncmp((*v)[i], name, len))
			return 0;
	nv = realloc(*v, (size_t)(*n + 1) * sizeof(*nv));
	if (!nv || !(nv[*n] = strndup(name, len))) {
		if (nv)
			*v = nv;
		return -1;
	}
	*v = nv;
	(*n)++;
	return 0;
}

static void seed_release(struct seed_dir *d)
{
	size_t i;
	int64_t k;

	for (i = 0; i < d->nsubs; i++) {
		for (k = 0; k < d->subs[i].nsub; k++)
			free(d->subs[i].segs[k]);
		free(d->subs[i].segs);
		free(d->subs[i].name);
	}
	free(d->subs);
	memset(d, 0, sizeof(*d));
}

static enum sfs_status seed_scan(struct rstore *rs, const char *path,
				 struct seed_dir *d, struct sfs_err *e)
{
	char esc[3 * 4096], url[sizeof(esc) + 128];
	struct sfs_file_list l;
	struct seed_sub *ns;
	const char *rest, *slash, *slash2;
	size_t i, j, plen = strlen(path);
	enum sfs_status st;

	memset(d, 0, sizeof(*d));
	if (plen >= 4096)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
				"no such directory");
	sfsi_remote_escape(path, esc, sizeof(esc));
	snprintf(url, sizeof(url),
		 API "/files?path=%s&recursive=true&sort=creationDate,asc",
		 esc);
	st = list_all(rs, url, SFS_PERM_OWNER, &l, e);
	if (st)
		return st;
	for (i = 0; !st && i < l.n; i++) {
		if (!l.files[i].path || strncmp(l.files[i].path, path, plen))
			continue;
		d->nfiles++;
		if (l.files[i].created_at > d->mtime_ms)
			d->mtime_ms = l.files[i].created_at;
		rest = l.files[i].path + plen;
		if (!(slash = strchr(rest, '/')))
			continue;
		for (j = 0; j < d->nsubs; j++)
			if (strlen(d->subs[j].name) == (size_t)(slash - rest) &&
			    !strncmp(d->subs[j].name, rest,
				     (size_t)(slash - rest)))
				break;
		if (j == d->nsubs) {
			ns = realloc(d->subs, (j + 1) * sizeof(*ns));
			if (!ns) {
				st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					      "out of memory");
				break;
			}
			d->subs = ns;
			memset(&ns[j], 0, sizeof(ns[j]));
			ns[j].name = strndup(rest, (size_t)(slash - rest));
			d->nsubs++;
			if (!ns[j].name) {
				st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					      "out of memory");
				break;
			}
		}
		d->subs[j].nfiles++;
		if (l.files[i].created_at > d->subs[j].mtime_ms)
			d->subs[j].mtime_ms = l.files[i].created_at;
		slash2 = strchr(slash + 1, '/');
		if (slash2 && seed_add(&d->subs[j].segs, &d->subs[j].nsub,
				       slash + 1, (size_t)(slash2 - slash - 1)))
			st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				      "out of memory");
	}
	if (!st && !d->nfiles && strcmp(path, "/"))
		st = sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
			      "no such directory");
	sfs_file_list_release(&l);
	if (st)
		seed_release(d);
	return st;
}

/* A directory's info as the seed's API shows it (numbered, kept). */
static void seed_info(struct rstore *rs, const char *path, int64_t nfiles,
		      int64_t nsub, int64_t mtime_ms, struct sfs_dir_info *d)
{
	memset(d, 0, sizeof(*d));
	d->ino = sfsi_rstore_ino_of(rs, path, 0);
	d->nfiles = nfiles;
	d->nsub = nsub;
	d->mtime_ns = mtime_ms * 1000000;
	pthread_mutex_lock(&rs->mu);
	if (d->ino > 0 && (size_t)d->ino <= rs->n) {
		rs->v[d->ino - 1].dir = *d;
		rs->v[d->ino - 1].has_dir = 1;
	}
	pthread_mutex_unlock(&rs->mu);
}

static enum sfs_status seed_dir_stat(struct rstore *rs, const char *path,
				     struct sfs_dir_info *out,
				     struct sfs_err *e)
{
	struct seed_dir d;
	enum sfs_status st = seed_scan(rs, path, &d, e);

	if (!st)
		seed_info(rs, path, d.nfiles, (int64_t)d.nsubs, d.mtime_ms,
			  out);
	seed_release(&d);
	return st;
}

static enum sfs_status seed_subdirs(struct rstore *rs, const char *path,
				    void (*fn)(void *arg, const char *name,
					       const struct sfs_dir_info *d),
				    void *arg, struct sfs_err *e)
{
	struct sfs_dir_info di;
	struct seed_dir d;
	char sub[4096 + 256];
	enum sfs_status st = seed_scan(rs, path, &d, e);
	size_t i;

	for (i = 0; !st && i < d.nsubs; i++) {
		snprintf(sub, sizeof(sub), "%s%s/", path, d.subs[i].name);
		seed_info(rs, sub, d.subs[i].nfiles, d.subs[i].nsub,
			  d.subs[i].mtime_ms, &di);
		fn(arg, d.subs[i].name, &di);
	}
	seed_release(&d);
	return st;
}

enum sfs_status sfsi_remote_dir_stat(struct sfs_store *s, const char *path,
				     struct sfs_dir_info *out,
				     struct sfs_err *e)
{
	struct rstore *rs = rs_of(s);
	json_t *j = NULL, *parent = NULL, *child = NULL;
	enum sfs_status st;
	int by_parent;

	if (!(sfs_remote_features(rs->r) & SFS_REMOTE_DIRS)) {
		st = seed_dir_stat(rs, path, out, e);
	} else if ((j = sfsi_rcache_dir(rs->cache, path, SFSI_RCACHE_ANSWER))) {
		st = SFS_OK;
	} else if ((by_parent = dir_by_parent(rs, path, &parent, &child, &st,
					      e)) >= 0) {
		/* the parent's answer tells */
		if (child)
			dir_info(rs, child, path, out);
		sfsi_rcache_unref(rs->cache, parent);
		return by_parent ? SFS_OK
				 : sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
					    "no such directory");
	} else if (by_parent == -1) {
		st = get_dir(rs, path, &j, e);
	}
	if (!st && j)
		dir_info(rs, j, path, out);
	if (st && sfsi_rstore_offline(rs, st) && !last_dir(rs, path, out)) {
		sfs_err_init(e);
		st = SFS_OK;
	} else if (st && sfsi_rstore_offline(rs, st) &&
		   last_dir_absent(rs, path)) {
		st = sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
			      "no such directory (when last seen)");
	}
	sfsi_rcache_unref(rs->cache, j);
	return st;
}

enum sfs_status sfsi_remote_dir_stat_ino(struct sfs_store *s, int64_t ino,
					 char *path, size_t size,
					 struct sfs_dir_info *out,
					 struct sfs_err *e)
{
	char key[4096];

	if (sfsi_rstore_key_of(rs_of(s), ino, key, sizeof(key), NULL) ||
	    key[0] != '/' || strlen(key) >= size)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
				"no such directory");
	sfs_strlcpy(path, key, size);
	return sfsi_remote_dir_stat(s, key, out, e);
}

enum sfs_status sfsi_remote_dir_subdirs(
	struct sfs_store *s, const char *path,
	void (*fn)(void *arg, const char *name, const struct sfs_dir_info *d),
	void *arg, struct sfs_err *e)
{
	struct rstore *rs = rs_of(s);
	struct sfs_dir_info d;
	enum sfs_status st;
	json_t *j, *a, *o;
	const char *name, *p;
	size_t i;

	if (!(sfs_remote_features(rs->r) & SFS_REMOTE_DIRS))
		return seed_subdirs(rs, path, fn, arg, e);
	st = get_dir(rs, path, &j, e);
	/* offline: the subdirectories as the last answer about it had them */
	if (st && sfsi_rstore_offline(rs, st) &&
	    (j = sfsi_rcache_dir(rs->cache, path, SFSI_RCACHE_LAST))) {
		sfs_err_init(e);
		st = SFS_OK;
	}
	a = json_object_get(j, "directories");
	for (i = 0; !st && i < json_array_size(a); i++) {
		o = json_array_get(a, i);
		name = json_string_value(json_object_get(o, "name"));
		p = json_string_value(json_object_get(o, "path"));
		if (!name || !p)
			continue;
		dir_info(rs, o, p, &d);
		fn(arg, name, &d);
	}
	sfsi_rcache_unref(rs->cache, j);
	return st;
}

/* ---- listings ------------------------------------------------------------ */

static int by_ino(const void *a, const void *b)
{
	const struct sfs_file *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/*
 * The fields of a SharedFile (shared-with-me) beyond the File: how the
 * caller reaches it, the sharer, and the owner with its order (extensions).
 */
static void shared_fields(struct rstore *rs, json_t *o, struct sfs_file *f)
{
	char key[SFS_ID_SIZE + 4];
	const char *v;
	json_t *v2;
	int p;

	v = json_string_value(json_object_get(o, "accessType"));
	p = v ? sfs_access_parse(v) : -1;
	if (p >= 0)
		f->access = (enum sfs_access)p;
	v = json_string_value(json_object_get(o, "sharedBy"));
	if (v)
		sfs_strlcpy(f->shared_by, v, sizeof(f->shared_by));
	v = json_string_value(json_object_get(o, "sharedAt"));
	if (!v || sfs_iso8601_parse(v, &f->shared_at))
		f->shared_at = 0;
	v = json_string_value(json_object_get(o, "ownerId"));
	if (!v || strlen(v) >= sizeof(f->owner_id))
		return;
	sfs_strlcpy(f->owner_id, v, sizeof(f->owner_id));
	/* the server's order of owners (an extension), else the client's
	 * first sight of them */
	v2 = json_object_get(o, "ownerOrder");
	if (json_is_integer(v2) && json_integer_value(v2) > 0) {
		f->owner = (int64_t)json_integer_value(v2);
	} else {
		snprintf(key, sizeof(key), "u:%s", v);
		f->owner = sfsi_rstore_ino_of(rs, key, 0);
	}
}

/* A SharedFile's permission as the file's number keeps it. */
static int shared_perm(json_t *o)
{
	const char *v = json_string_value(json_object_get(o, "permission"));
	int p = v ? sfs_perm_parse(v) : -1;

	return p == SFS_PERM_EDIT ? SFS_PERM_EDIT : SFS_PERM_VIEW;
}

/*
 * Every page of a listing of files (perm: that of the caller on them;
 * -1: a shared-with-me listing, each with its own).
 */
/*
 * The files of one page's answer j appended to l. The server's total is
 * a hint only: it may be wrong or hostile, so it sizes the list at most
 * HINT_FILES past what is in hand; past that the list grows by doubling.
 */
#define HINT_FILES (64 * PAGE)
static enum sfs_status page_files(struct rstore *rs, json_t *j, int perm,
				  struct sfs_file_list *l, size_t *cap,
				  int64_t *total, size_t *na, struct sfs_err *e)
{
	json_t *a = json_object_get(j, "files");
	enum sfs_status st = SFS_OK;
	struct sfs_file *nv;
	size_t i, need, want, hint;

	*total = json_integer_value(json_object_get(j, "total"));
	*na = json_array_size(a);
	need = l->n + *na;
	if (*na && need > *cap) {
		want = *cap > need / 2 ? *cap * 2 : need;
		if (*total > 0 && (uint64_t)*total > want) {
			hint = (uint64_t)*total - need < HINT_FILES
				       ? (size_t)*total
				       : need + HINT_FILES;
			if (hint > want)
				want = hint;
		}
		nv = reallocarray(l->files, want, sizeof(*nv));
		if (!nv)
			return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					"out of memory");
		l->files = nv;
		*cap = want;
	}
	for (i = 0; !st && i < *na; i++) {
		json_t *o = json_array_get(a, i);

		st = sfsi_rstore_file_of(rs, o,
					 perm < 0 ? shared_perm(o) : perm,
					 &l->files[l->n], e);
		if (!st && perm < 0)
			shared_fields(rs, o, &l->files[l->n]);
		if (!st)
			l->n++;
	}
	return st;
}

/* A cursor fit to go into a URL as it is (the server's, so checked). */
static int cursor_ok(const char *v)
{
	size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyz"
			     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~");

	return n && !v[n] && n < SFS_CURSOR_SIZE;
}

/*
 * Every page of GET url into l (sfs_file_list_release), each file
 * numbered with perm; the first pages' files get the lower numbers, so
 * the order of a listing (oldest first) is the order of numbers. The
 * server's total sizes the list only as a capped hint (page_files).
 * A server that answers a nextCursor (our extension) is followed by it:
 * each page an index range on the server, where page=N makes it skip
 * N pages' rows first (and count them all again); the seed's paging
 * otherwise.
 */
static enum sfs_status list_all(struct rstore *rs, const char *url, int perm,
				struct sfs_file_list *l, struct sfs_err *e)
{
	char page[4200], cursor[SFS_CURSOR_SIZE];
	enum sfs_status st = SFS_OK;
	json_t *j = NULL, *next;
	const char *v;
	int64_t p, total = 0;
	size_t cap = 0, na = 0;
	int by_cursor = 0;

	memset(l, 0, sizeof(*l));
	for (p = 0; !st; p++) {
		if (by_cursor)
			snprintf(page, sizeof(page), "%s&size=%d&cursor=%s",
				 url, PAGE, cursor);
		else
			snprintf(page, sizeof(page), "%s&size=%d&page=%lld",
				 url, PAGE, (long long)p);
		st = sfsi_rstore_get_json(rs, page, &j, e);
		if (!st)
			st = page_files(rs, j, perm, l, &cap, &total, &na, e);
		next = st ? NULL : json_object_get(j, "nextCursor");
		if (json_is_string(next)) {
			v = json_string_value(next);
			/* one that cannot be sent, or the same again: broken */
			if (!cursor_ok(v) || (by_cursor && !strcmp(v, cursor)))
				st = sfs_errf(e, SFS_IO, SFS_R_NONE,
					      "the server's nextCursor '%.80s' "
					      "cannot continue the listing",
					      v);
			else
				sfs_strlcpy(cursor, v, sizeof(cursor));
			by_cursor = 1;
		} else if (by_cursor) {
			na = 0; /* the last page of a cursor's walk */
		}
		json_decref(j);
		j = NULL;
		if (!na || (!by_cursor && (int64_t)l->n >= total))
			break;
	}
	l->total = (int64_t)l->n;
	if (st)
		sfs_file_list_release(l);
	return st;
}

/* The listing of path as last got, all of it or the names asked if any. */
static int last_listing(struct rstore *rs, const char *path,
			const char *const *names, size_t n,
			const char *id_prefix, int all, struct sfs_file_list *l)
{
	if (!sfsi_rcache_files(rs->cache, path, names, n, id_prefix, all, 1, l))
		return 0;
	if (all || l->n)
		return 1;
	sfs_file_list_release(l);
	return 0;
}

enum sfs_status
sfsi_remote_dir_files(struct sfs_store *s, const char *path,
		      const char *const *names, size_t n, const char *id_prefix,
		      int all, int (*fn)(void *arg, const struct sfs_file *f),
		      void *arg, struct sfs_err *e)
{
	char esc[3 * 4096], url[sizeof(esc) + 128];
	struct sfs_file_list l;
	enum sfs_status st;
	size_t i;

	struct rstore *rs = rs_of(s);
	uint64_t t = 0;
	int hit;

	if (strlen(path) >= 4096)
		return SFS_OK;
	hit = sfsi_rcache_files(rs->cache, path, names, n, id_prefix, all, 0,
				&l);
	st = SFS_OK;
	if (!hit) {
		sfsi_remote_escape(path, esc, sizeof(esc));
		snprintf(url, sizeof(url),
			 API "/files?path=%s&recursive=false"
			     "&sort=creationDate,asc",
			 esc);
		t = sfsi_rcache_ticket(rs->cache, path);
		st = list_all(rs, url, SFS_PERM_OWNER, &l, e);
	}
	/*
	 * offline: the listing as last got (a name found in it for a
	 * lookup), else the files last got one by one; a name not known
	 * is not known to be absent: st
	 */
	if (st && sfsi_rstore_offline(rs, st) &&
	    (hit = last_listing(rs, path, names, n, id_prefix, all, &l))) {
		sfs_err_init(e);
		st = SFS_OK;
	}
	if (st && !all && sfsi_rstore_offline(rs, st) &&
	    sfsi_rstore_last_files_in(rs, path, names, n, id_prefix, fn, arg)) {
		sfs_err_init(e);
		return SFS_OK;
	}
	if (st)
		return st;
	if (l.n > 1)
		qsort(l.files, l.n, sizeof(*l.files), by_ino);
	for (i = 0; i < l.n; i++)
		if ((all ||
		     sfsi_remote_name_is(&l.files[i], names, n, id_prefix)) &&
		    fn(arg, &l.files[i]))
			break;
	/* and the new files of this store not sent yet */
	if (i == l.n)
		sfsi_rpend_files(rs->pend, path, names, n, id_prefix, all, &l,
				 fn, arg);
	if (!hit) /* kept (in ino order) for the next lookup */
		sfsi_rcache_put_files(rs->cache, path, t, &l);
	sfs_file_list_release(&l);
	return SFS_OK;
}

/* The trash's listing (isDeleted): the one a mount asks of this kind. */
enum sfs_status sfsi_remote_query_files(struct sfs_store *s,
					const struct sfs_query *q,
					struct sfs_file_list *out,
					struct sfs_err *e)
{
	char url[256];

	memset(out, 0, sizeof(*out));
	if (q->page > 0)
		return SFS_OK; /* list_all gave every page at page 0 */
	snprintf(url, sizeof(url),
		 API "/files?recursive=%s&sort=creationDate,asc%s",
		 q->recursive ? "true" : "false",
		 q->deleted == 1   ? "&isDeleted=true"
		 : q->deleted == 0 ? "&isDeleted=false"
				   : "");
	return list_all(rs_of(s), url, SFS_PERM_OWNER, out, e);
}

/* What is shared with the caller: directly, or published to the tenant. */
enum sfs_status sfsi_remote_query_shared(struct sfs_store *s,
					 const struct sfs_query *q,
					 struct sfs_file_list *out,
					 struct sfs_err *e)
{
	memset(out, 0, sizeof(*out));
	if (q->page > 0)
		return SFS_OK; /* list_all gave every page at page 0 */
	return list_all(rs_of(s),
			API "/files/shared-with-me?sort=creationDate,asc", -1,
			out, e);
}
