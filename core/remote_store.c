/*
 * The remote store (remote_i.h): sfs_store_open_url, and the bodies of
 * the public entry points a mount uses to read, over the REST API. The
 * API names files by UUID and directories by path; the mount names nodes
 * by number, so this store numbers what it sees (an in-memory map, one
 * number per file id and per directory path, given at first sight and
 * never reused while it is open). Files of the caller's own listings are
 * the caller's (SFS_PERM_OWNER): the server lists no one else's there.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "blob_i.h"
#include "remote_i.h"
#include "store_i.h"
#include "util_i.h"
#include "speechfs/json.h"
#include "speechfs/log.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define API "/api/v1/speech-services"
#define ANSWER_MAX (64 << 20)
#define NBUCKETS 65536
#define PAGE 100

struct rnode {
	char *key; /* a file's id, or a directory's path ("/a/b/") */
	int perm;  /* a file's, as last listed */
	int64_t next;
	/*
	 * What the server last said of it, kept for when it does not
	 * answer (offline): a file's JSON as last got alone (stat, open),
	 * a directory's stat.
	 */
	char *last;
	int has_dir;
	struct sfs_dir_info dir;
};

struct rstore {
	struct sfs_remote *r;
	struct sfsi_rblob *rb;
	struct sfsi_rfeed *feed;   /* NULL: the server has no change feed */
	struct sfsi_rcache *cache; /* directories and their listings */
	int64_t user;		   /* the actor's user (sfs_auth_user) */
	pthread_mutex_t mu;
	struct rnode *v; /* number n is v[n - 1] */
	size_t n, cap;
	int64_t *buckets;
};

static struct rstore *rs_of(struct sfs_store *s)
{
	return s->remote;
}

enum sfs_status sfsi_remote_refuse(const char *what, struct sfs_err *e)
{
	return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
			"a remote store does not %s yet", what);
}

/* ---- numbers of ids and paths ----------------------------------------- */

static uint32_t hash(const char *k)
{
	uint32_t h = 2166136261u;

	while (*k)
		h = (h ^ (unsigned char)*k++) * 16777619u;
	return h % NBUCKETS;
}

/* The number of key (0: none); rs->mu held. */
static int64_t find(struct rstore *rs, const char *key)
{
	int64_t i;

	for (i = rs->buckets[hash(key)]; i; i = rs->v[i - 1].next)
		if (!strcmp(rs->v[i - 1].key, key))
			break;
	return i;
}

/* Number i into its key's chain, or out of it; rs->mu held. */
static void link_node(struct rstore *rs, int64_t i)
{
	uint32_t h = hash(rs->v[i - 1].key);

	rs->v[i - 1].next = rs->buckets[h];
	rs->buckets[h] = i;
}

static void unlink_node(struct rstore *rs, int64_t i)
{
	int64_t *p = &rs->buckets[hash(rs->v[i - 1].key)];

	while (*p && *p != i)
		p = &rs->v[*p - 1].next;
	if (*p)
		*p = rs->v[i - 1].next;
	rs->v[i - 1].next = 0;
}

/* Every chain again, by the keys as they are now; rs->mu held. */
static void rehash(struct rstore *rs)
{
	size_t k;

	memset(rs->buckets, 0, NBUCKETS * sizeof(*rs->buckets));
	for (k = 0; k < rs->n; k++)
		link_node(rs, (int64_t)k + 1);
}

/* The number of key, given now if new (perm > 0: the file's now). */
static int64_t ino_of(struct rstore *rs, const char *key, int perm)
{
	struct rnode *nv;
	int64_t i;
	char *k;

	pthread_mutex_lock(&rs->mu);
	i = find(rs, key);
	if (!i && rs->n == rs->cap) {
		nv = realloc(rs->v,
			     (rs->cap ? rs->cap * 2 : 1024) * sizeof(*nv));
		if (nv) {
			rs->v = nv;
			rs->cap = rs->cap ? rs->cap * 2 : 1024;
		}
	}
	if (!i && rs->n < rs->cap && (k = strdup(key))) {
		rs->v[rs->n].key = k;
		rs->v[rs->n].perm = SFS_PERM_OWNER;
		rs->v[rs->n].last = NULL;
		rs->v[rs->n].has_dir = 0;
		i = (int64_t)++rs->n;
		link_node(rs, i);
	}
	if (i && perm > 0)
		rs->v[i - 1].perm = perm;
	pthread_mutex_unlock(&rs->mu);
	return i; /* 0: out of memory */
}

/* The key numbered ino into out[size] and its perm: 0, or -1 unknown. */
static int key_of(struct rstore *rs, int64_t ino, char *out, size_t size,
		  int *perm)
{
	int ret = -1;

	pthread_mutex_lock(&rs->mu);
	if (ino > 0 && (size_t)ino <= rs->n) {
		sfs_strlcpy(out, rs->v[ino - 1].key, size);
		if (perm)
			*perm = rs->v[ino - 1].perm;
		ret = 0;
	}
	pthread_mutex_unlock(&rs->mu);
	return ret;
}

/* ---- what is known while the server does not answer ------------------ */

int sfsi_remote_name_is(const struct sfs_file *f, const char *const *names,
			size_t n, const char *id_prefix)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (names[i] && f->name && !strcasecmp(f->name, names[i]))
			return 1;
	return id_prefix && *id_prefix &&
	       !strncmp(f->id, id_prefix, strlen(id_prefix));
}

static int offline(struct rstore *rs, enum sfs_status st)
{
	return st == SFS_UNAVAILABLE && sfsi_remote_down(rs->r);
}

/* The number of key if it has one (0: none), given no number now. */
static int64_t known(struct rstore *rs, const char *key)
{
	int64_t i;

	pthread_mutex_lock(&rs->mu);
	i = find(rs, key);
	pthread_mutex_unlock(&rs->mu);
	return i;
}

static void remember_text(struct rstore *rs, int64_t ino, char *text)
{
	pthread_mutex_lock(&rs->mu);
	if (text && ino > 0 && (size_t)ino <= rs->n) {
		free(rs->v[ino - 1].last);
		rs->v[ino - 1].last = text;
		text = NULL;
	}
	pthread_mutex_unlock(&rs->mu);
	free(text);
}

static void remember_file(struct rstore *rs, int64_t ino, json_t *o)
{
	remember_text(rs, ino, json_dumps(o, JSON_COMPACT));
}

/* The same of a file the cache gave (its JSON made again). */
static void remember_kept(struct rstore *rs, const struct sfs_file *f)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);

	if (!sfs_json_file_text(f, &b))
		remember_text(rs, f->ino, sfs_buf_detach(&b, NULL));
	sfs_buf_release(&b);
}

/* A file as last got (stat, open) while the server does not answer. */
static enum sfs_status last_file(struct rstore *rs, int64_t ino,
				 struct sfs_file *out)
{
	enum sfs_status st = SFS_NOT_FOUND;
	char *text = NULL;
	int perm = SFS_PERM_OWNER;

	pthread_mutex_lock(&rs->mu);
	if (ino > 0 && (size_t)ino <= rs->n && rs->v[ino - 1].last) {
		text = strdup(rs->v[ino - 1].last);
		perm = rs->v[ino - 1].perm;
	}
	pthread_mutex_unlock(&rs->mu);
	if (text && !sfs_remote_file_decode(text, strlen(text), out, NULL)) {
		out->ino = ino;
		out->perm = (enum sfs_perm)perm;
		st = SFS_OK;
	}
	free(text);
	return st;
}

/*
 * The files of directory path named in names (or by id_prefix) among
 * those last got one by one, while the server does not answer: a
 * lookup of a file read before finds it, a listing is not made of it.
 * How many were found.
 */
static int last_files_in(struct rstore *rs, const char *path,
			 const char *const *names, size_t n,
			 const char *id_prefix,
			 int (*fn)(void *arg, const struct sfs_file *f),
			 void *arg)
{
	struct sfs_file f;
	size_t i, count;
	int found = 0, stop = 0;

	pthread_mutex_lock(&rs->mu);
	count = rs->n;
	pthread_mutex_unlock(&rs->mu);
	for (i = 1; i <= count && !stop; i++) {
		if (last_file(rs, (int64_t)i, &f))
			continue;
		if (f.path && !strcmp(f.path, path) &&
		    sfsi_remote_name_is(&f, names, n, id_prefix)) {
			found++;
			stop = fn(arg, &f);
		}
		sfs_file_release(&f);
	}
	return found;
}

/*
 * Found and rekeyed under one lock (two nodes never hold one key): the
 * node of `from` leaves its chain and joins that of `to`. A node `to`
 * already has (the server's answer numbered first) lets its key go.
 */
void sfsi_remote_renumber(struct sfs_store *s, const char *from, const char *to)
{
	struct rstore *rs = rs_of(s);
	char *n = strdup(to);
	int64_t i, j;

	if (!n)
		return;
	pthread_mutex_lock(&rs->mu);
	i = find(rs, from);
	j = find(rs, to);
	if (i && j != i) {
		if (j) {
			unlink_node(rs, j);
			rs->v[j - 1].key[0] = '\0';
			link_node(rs, j);
		}
		unlink_node(rs, i);
		free(rs->v[i - 1].key);
		rs->v[i - 1].key = n;
		n = NULL;
		free(rs->v[i - 1].last);
		rs->v[i - 1].last = NULL;
		link_node(rs, i);
	}
	pthread_mutex_unlock(&rs->mu);
	free(n);
}

/*
 * A directory renamed on the server: its number and those below it keep
 * theirs under the new paths (as the local store's directory rows do),
 * so the mount's nodes stay valid.
 */
void sfsi_remote_dir_moved(struct sfs_store *s, const char *from,
			   const char *to)
{
	struct rstore *rs = rs_of(s);
	size_t i, fl = strlen(from);
	char *k;

	pthread_mutex_lock(&rs->mu);
	/* what was at the new paths (an empty directory replaced) is gone */
	for (i = 0; i < rs->n; i++)
		if (rs->v[i].key[0] == '/' &&
		    !strncmp(rs->v[i].key, to, strlen(to)) &&
		    strncmp(rs->v[i].key, from, fl))
			rs->v[i].key[0] = '\0';
	for (i = 0; i < rs->n; i++) {
		if (strncmp(rs->v[i].key, from, fl) || rs->v[i].key[0] != '/' ||
		    asprintf(&k, "%s%s", to, rs->v[i].key + fl) < 0)
			continue;
		free(rs->v[i].key);
		rs->v[i].key = k;
	}
	/* the chains again, by the new keys; the old paths are free */
	rehash(rs);
	pthread_mutex_unlock(&rs->mu);
}

/* ---- requests ------------------------------------------------------------ */

/* A path made safe for a query string: all but unreserved bytes and '/'. */
void sfsi_remote_escape(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in && o + 4 < size; in++) {
		unsigned char c = (unsigned char)*in;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~/", c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

enum sfs_status sfsi_remote_dir_url(const char *path, char *url, size_t size,
				    struct sfs_err *e)
{
	char esc[3 * 4096];

	if (strlen(path) >= 4096)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
				"no such directory");
	sfsi_remote_escape(path, esc, sizeof(esc));
	snprintf(url, size, API "/directories?path=%s", esc);
	return SFS_OK;
}

/* GET path: the answer's JSON in *out (json_decref). */
static enum sfs_status get_json(struct rstore *rs, const char *path,
				json_t **out, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	struct sfsi_remote_req q = { .method = "GET", .path = path, .fd = -1 };
	enum sfs_status st;

	*out = NULL;
	st = sfsi_remote_request(rs->r, &q, &b, e);
	if (!st) {
		*out = json_loadb(b.buf, b.len, 0, NULL);
		if (!*out)
			st = sfs_errf(e, SFS_IO, SFS_R_NONE,
				      "the server's answer to '%s' is not JSON",
				      path);
	}
	sfs_buf_release(&b);
	return st;
}

/*
 * A decoded file numbered (its ino, given at first sight) and with the
 * permission its number records (perm when first seen).
 */
static enum sfs_status number(struct rstore *rs, struct sfs_file *f, int perm,
			      struct sfs_err *e)
{
	char id[SFS_ID_SIZE];
	int known;

	/* without content versions a new file is made twice (empty, then
	 * uploaded whole), so the server's suffix of it is that fallback's
	 * own clash: the mount's names ignore it there */
	if (!(sfs_remote_features(rs->r) & SFS_REMOTE_CONTENT))
		f->suffixed = 0;
	f->ino = ino_of(rs, f->id, perm);
	if (!f->ino) {
		sfs_file_release(f);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	if (key_of(rs, f->ino, id, sizeof(id), &known) == 0)
		f->perm = (enum sfs_perm)known;
	return SFS_OK;
}

enum sfs_status sfsi_remote_get_json(struct sfs_store *s, const char *path,
				     json_t **out, struct sfs_err *e)
{
	return get_json(rs_of(s), path, out, e);
}

/* A file of an answer, numbered, with the caller's permission. */
static enum sfs_status file_of(struct rstore *rs, json_t *o, int perm,
			       struct sfs_file *f, struct sfs_err *e)
{
	enum sfs_status st = sfsi_remote_file_decode_obj(o, f, e);

	return st ? st : number(rs, f, perm, e);
}

struct sfs_remote *sfsi_remote_of(struct sfs_store *s)
{
	return rs_of(s)->r;
}

unsigned sfsi_remote_has(struct sfs_store *s)
{
	return sfs_remote_features(rs_of(s)->r);
}

enum sfs_status sfsi_remote_file_number(struct sfs_store *s, struct sfs_file *f,
					struct sfs_err *e)
{
	return number(rs_of(s), f, 0, e);
}

enum sfs_status sfsi_remote_file_json(struct sfs_store *s, const char *json,
				      size_t len, struct sfs_file *out,
				      struct sfs_err *e)
{
	enum sfs_status st = sfs_remote_file_decode(json, len, out, e);

	return st ? st : sfsi_remote_file_number(s, out, e);
}

/* ---- directories ------------------------------------------------------- */

static void dir_info(struct rstore *rs, json_t *o, const char *path,
		     struct sfs_dir_info *d)
{
	const char *m = json_string_value(json_object_get(o, "modifiedAt"));
	int64_t ms = 0;

	memset(d, 0, sizeof(*d));
	d->ino = ino_of(rs, path, 0);
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
	int64_t i = known(rs, path);
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
	json_decref(j);
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
	st = get_json(rs, url, out, e);
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
			json_decref(j);
		return *child ? 1 : 0;
	}
	j = sfsi_rcache_dir(rs->cache, parent, SFSI_RCACHE_SUBDIRS);
	ret = !j ? -1 : sfsi_rcache_child(j, path) ? -1 : 0;
	json_decref(j);
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
	d->ino = ino_of(rs, path, 0);
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

static enum sfs_status r_dir_stat(struct sfs_store *s, const char *path,
				  struct sfs_dir_info *out, struct sfs_err *e)
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
		json_decref(parent);
		return by_parent ? SFS_OK
				 : sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
					    "no such directory");
	} else if (by_parent == -1) {
		st = get_dir(rs, path, &j, e);
	}
	if (!st && j)
		dir_info(rs, j, path, out);
	if (st && offline(rs, st) && !last_dir(rs, path, out)) {
		sfs_err_init(e);
		st = SFS_OK;
	} else if (st && offline(rs, st) && last_dir_absent(rs, path)) {
		st = sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
			      "no such directory (when last seen)");
	}
	json_decref(j);
	return st;
}

static enum sfs_status r_dir_stat_ino(struct sfs_store *s, int64_t ino,
				      char *path, size_t size,
				      struct sfs_dir_info *out,
				      struct sfs_err *e)
{
	char key[4096];

	if (key_of(rs_of(s), ino, key, sizeof(key), NULL) || key[0] != '/' ||
	    strlen(key) >= size)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
				"no such directory");
	sfs_strlcpy(path, key, size);
	return r_dir_stat(s, key, out, e);
}

static enum sfs_status r_dir_subdirs(struct sfs_store *s, const char *path,
				     void (*fn)(void *arg, const char *name,
						const struct sfs_dir_info *d),
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
	json_decref(j);
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
		f->owner = ino_of(rs, key, 0);
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

		st = file_of(rs, o, perm < 0 ? shared_perm(o) : perm,
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
		st = get_json(rs, page, &j, e);
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

static enum sfs_status
r_dir_files(struct sfs_store *s, const char *path, const char *const *names,
	    size_t n, const char *id_prefix, int all,
	    int (*fn)(void *arg, const struct sfs_file *f), void *arg,
	    struct sfs_err *e)
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
	hit = sfsi_rcache_files(rs->cache, path, names, n, id_prefix, all, &l);
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
	/* offline, a name not known is not known to be absent: st */
	if (st && !all && offline(rs_of(s), st) &&
	    last_files_in(rs_of(s), path, names, n, id_prefix, fn, arg)) {
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
	if (!hit) /* kept (in ino order) for the next lookup */
		sfsi_rcache_put_files(rs->cache, path, t, &l);
	sfs_file_list_release(&l);
	return SFS_OK;
}

/* The trash's listing (isDeleted): the one a mount asks of this kind. */
static enum sfs_status r_query_files(struct sfs_store *s,
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
static enum sfs_status r_query_shared(struct sfs_store *s,
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

/* ---- files ------------------------------------------------------------- */

static enum sfs_status r_file_get_ino(struct sfs_store *s, int64_t ino,
				      struct sfs_file *out, struct sfs_err *e)
{
	struct rstore *rs = rs_of(s);
	char id[SFS_ID_SIZE], url[128];
	enum sfs_status st;
	int perm = 0;
	json_t *j;

	sfs_file_init(out);
	if (key_of(rs, ino, id, sizeof(id), &perm) || id[0] == '/')
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this number");
	if (sfsi_rcache_file(rs->cache, ino, out)) {
		remember_kept(rs, out);
		return SFS_OK;
	}
	snprintf(url, sizeof(url), API "/files/%s", id);
	st = get_json(rs, url, &j, e);
	if (!st)
		st = file_of(rs, j, 0, out, e);
	if (!st)
		remember_file(rs, ino, j);
	if (st && offline(rs, st) && !last_file(rs, ino, out)) {
		sfs_err_init(e); /* its blocks may be in the cache */
		st = SFS_OK;
	}
	json_decref(j);
	return st;
}

static enum sfs_status r_file_open_ino(struct sfs_store *s, int64_t ino,
				       enum sfs_content which, unsigned flags,
				       struct sfs_blob **blob,
				       struct sfs_file *out, struct sfs_err *e)
{
	int la = which == SFS_CONTENT_LISTENING;
	struct sfs_file f;
	enum sfs_status st;
	int64_t size;

	*blob = NULL;
	st = r_file_get_ino(s, ino, &f, e);
	if (!st)
		st = sfs_content_state_check(sfs_file_content_state(&f, which),
					     which, e);
	size = la ? f.la.size : f.size;
	if (!st && size == 0)
		st = sfs_blob_open_empty(blob, e);
	else if (!st)
		st = sfsi_rblob_open(rs_of(s)->rb, f.id, which,
				     la ? f.la.sha256 : f.sha256, size, flags,
				     blob, e);
	if (!st && out) {
		*out = f;
		return SFS_OK;
	}
	sfs_file_release(&f);
	return st;
}

/* ---- attributes, shares, space ----------------------------------------- */

static enum sfs_status get_xattrs(struct rstore *rs, const char *id,
				  json_t **out, struct sfs_err *e)
{
	char url[128];

	if (!sfs_uuid_valid(id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this id exists");
	if (!(sfs_remote_features(rs->r) & SFS_REMOTE_XATTRS)) {
		/* the seed's API keeps none: a file has no extra attribute */
		*out = json_pack("{s:[]}", "xattrs");
		return *out ? SFS_OK
			    : sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				       "out of memory");
	}
	snprintf(url, sizeof(url), API "/files/%s/xattrs", id);
	return get_json(rs, url, out, e);
}

static enum sfs_status r_xattr_list(struct sfs_store *s, const char *id,
				    struct sfs_buf *out, struct sfs_err *e)
{
	enum sfs_status st;
	const char *name;
	json_t *j, *a;
	size_t i;

	st = get_xattrs(rs_of(s), id, &j, e);
	a = json_object_get(j, "xattrs");
	for (i = 0; !st && i < json_array_size(a); i++) {
		name = json_string_value(
			json_object_get(json_array_get(a, i), "name"));
		if (name && sfs_buf_add(out, name, strlen(name) + 1))
			st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				      "out of memory");
	}
	json_decref(j);
	return st;
}

static enum sfs_status r_xattr_get(struct sfs_store *s, const char *id,
				   const char *name, struct sfs_buf *out,
				   struct sfs_err *e)
{
	enum sfs_status st;
	const char *n, *v = NULL;
	json_t *j, *a, *o;
	size_t i;

	st = get_xattrs(rs_of(s), id, &j, e);
	a = json_object_get(j, "xattrs");
	for (i = 0; !st && i < json_array_size(a); i++) {
		o = json_array_get(a, i);
		n = json_string_value(json_object_get(o, "name"));
		v = json_string_value(json_object_get(o, "value"));
		if (n && v && !strcmp(n, name))
			break;
	}
	if (!st && i == json_array_size(a))
		st = sfs_errf(e, SFS_NOT_FOUND, SFS_R_ATTRIBUTE_NOT_FOUND,
			      "no attribute '%s'", name);
	else if (!st && (!v || sfs_base64_decode(v, strlen(v), out)))
		st = sfs_errf(e, SFS_IO, SFS_R_NONE,
			      "the server's value of '%s' is not base64", name);
	json_decref(j);
	return st;
}

static enum sfs_status r_space_of(struct sfs_store *s, struct sfs_space *out,
				  struct sfs_err *e)
{
	enum sfs_status st;
	json_t *j;

	memset(out, 0, sizeof(*out));
	if (!(sfs_remote_features(rs_of(s)->r) & SFS_REMOTE_SPACE))
		return SFS_OK; /* not told: df shows 0 */
	st = get_json(rs_of(s), API "/space", &j, e);
	if (!st) {
#define U(k) (uint64_t) json_integer_value(json_object_get(j, k))
		out->total_bytes = U("totalBytes");
		out->used_bytes = U("usedBytes");
		out->free_bytes = U("freeBytes");
		out->avail_bytes = U("availableBytes");
		out->total_files = U("totalFiles");
		out->free_files = U("freeFiles");
#undef U
	}
	json_decref(j);
	return st;
}

/* The key's user: what it may do is the server's to say, call by call. */
static enum sfs_status r_auth_user(struct sfs_store *s, struct sfs_actor *out,
				   struct sfs_err *e)
{
	(void)s;
	(void)e;
	memset(out, 0, sizeof(*out));
	out->user = rs_of(s)->user;
	out->tenant = 1;
	out->scopes = SFS_SCOPE_ALL;
	return SFS_OK;
}

/* ---- the store ------------------------------------------------------------
 */

static void r_close(struct sfs_store *s)
{
	struct rstore *rs = rs_of(s);
	size_t i;

	if (rs) {
		sfsi_rfeed_stop(rs->feed);
		sfsi_rblob_stop(rs->rb);
		sfsi_rcache_free(rs->cache);
		sfs_remote_close(rs->r);
		for (i = 0; i < rs->n; i++) {
			free(rs->v[i].key);
			free(rs->v[i].last);
		}
		free(rs->v);
		free(rs->buckets);
		pthread_mutex_destroy(&rs->mu);
		free(rs);
	}
	free(s->staging_dir);
	free(s->dir);
	free(s);
}

/* ---- the change feed -------------------------------------------------- */

static enum sfs_status r_change_seq(struct sfs_store *s, int64_t *seq,
				    struct sfs_err *e)
{
	struct rstore *rs = rs_of(s);

	*seq = 0;
	if (!rs->feed)
		return sfsi_remote_refuse("follow changes (no change feed)", e);
	*seq = sfsi_rfeed_seq(rs->feed);
	return SFS_OK;
}

static enum sfs_status r_changes(struct sfs_store *s, int64_t since, int others,
				 sfs_change_fn fn, void *arg, int64_t *last,
				 struct sfs_err *e)
{
	struct rstore *rs = rs_of(s);

	(void)since; /* the queue holds only what was not handed out */
	*last = since;
	if (!rs->feed)
		return sfsi_remote_refuse("follow changes (no change feed)", e);
	sfsi_rfeed_drain(rs->feed, rs->user, others, fn, arg, last);
	return SFS_OK;
}

static int r_change_fd(struct sfs_store *s)
{
	return rs_of(s)->feed ? sfsi_rfeed_fd(rs_of(s)->feed) : -1;
}

/* ---- the cache's numbers ------------------------------------------------ */

struct sfsi_rcache *sfsi_remote_cache(struct sfs_store *s)
{
	return rs_of(s)->cache;
}

int64_t sfsi_remote_number(struct sfs_store *s, const char *id)
{
	return known(rs_of(s), id);
}

static const struct sfsi_store_ops remote_ops = {
	.close = r_close,
	.auth_user = r_auth_user,
	.space_of = r_space_of,
	.dir_stat = r_dir_stat,
	.dir_stat_ino = r_dir_stat_ino,
	.dir_subdirs = r_dir_subdirs,
	.dir_files = r_dir_files,
	.query_files = r_query_files,
	.query_shared = r_query_shared,
	.file_get_ino = r_file_get_ino,
	.file_open_ino = r_file_open_ino,
	.xattr_get = r_xattr_get,
	.xattr_list = r_xattr_list,
	.share_list = sfsi_remote_share_list,
	.share_put = sfsi_rkept_share_put,
	.share_revoke_user = sfsi_rkept_share_revoke_user,
	.user_resolve = sfsi_remote_user_resolve,
	.user_name = sfsi_remote_user_name,
	.file_create = sfsi_rkept_file_create,
	.set_content = sfsi_rkept_set_content,
	.file_sync = sfsi_remote_file_sync,
	.file_update = sfsi_rkept_file_update,
	.file_delete = sfsi_rkept_file_delete,
	.listening_generate = sfsi_rkept_listening_generate,
	.file_rename = sfsi_rkept_file_rename,
	.dir_make = sfsi_rkept_dir_make,
	.dir_remove = sfsi_rkept_dir_remove,
	.dir_rename = sfsi_rkept_dir_rename,
	.dir_set_mtime = sfsi_rkept_dir_set_mtime,
	.xattr_set = sfsi_rkept_xattr_set,
	.xattr_remove = sfsi_rkept_xattr_remove,
	.change_seq = r_change_seq,
	.changes = r_changes,
	.change_fd = r_change_fd,
	.stage_stream = sfsi_remote_stream_start,
	.stage_stream_free = sfsi_remote_stream_free,
};

/* $XDG_CACHE_HOME/speechfs/<host_port>, else ~/.cache/speechfs/… */
static void default_cache_dir(const char *url, char *out, size_t size)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	const char *host = strstr(url, "://");
	char name[256];
	size_t i;

	sfs_strlcpy(name, host ? host + 3 : url, sizeof(name));
	for (i = 0; name[i]; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
		      name[i] == '-'))
			name[i] = '_';
	if (xdg && xdg[0] == '/')
		snprintf(out, size, "%s/speechfs/%s", xdg, name);
	else
		snprintf(out, size, "%s/.cache/speechfs/%s",
			 home && home[0] == '/' ? home : "/tmp", name);
}

/*
 * Said once at mount: what the server lacks of the extensions (a server
 * with the seed's API only lacks them all) and what that turns off.
 */
static void features_off(const char *url, unsigned f, int no_feed)
{
	char off[1024] = "";
	size_t n = 0;

#define OFF(cond, text)                                                        \
	do {                                                                   \
		if ((cond) && n < sizeof(off))                                 \
			n += (size_t)snprintf(off + n, sizeof(off) - n,        \
					      "%s%s", n ? "; " : "", text);    \
	} while (0)
	OFF(!(f & SFS_REMOTE_CONTENT),
	    "content versions (a new file is uploaded whole at close, "
	    "rewriting a file is ENOTSUP)");
	/* the PATCH fields and restore come with the same extensions */
	OFF(!(f & SFS_REMOTE_CONTENT),
	    "file times, original filenames and restore (touch, a rename "
	    "that changes a file's extension and moving one out of .trash "
	    "are ENOTSUP)");
	OFF(!(f & SFS_REMOTE_DIRS),
	    "directories (they are what file paths show: mkdir, rmdir and "
	    "renaming one are ENOTSUP)");
	OFF(!(f & SFS_REMOTE_XATTRS), "attributes (user.* xattrs are ENOTSUP)");
	OFF(!(f & SFS_REMOTE_SPACE), "space (df shows 0)");
	OFF(no_feed, "change feed (others' changes show as the kernel's "
		     "entries expire, in 1 s)");
#undef OFF
	if (n)
		sfs_warn("remote",
			 "'%s' lacks extensions, so these are off: %s", url,
			 off);
}

int sfs_store_is_remote(const struct sfs_store *s)
{
	return s->ops != NULL;
}

enum sfs_status sfs_store_open_url(const struct sfs_remote_opts *o,
				   struct sfs_store **out, struct sfs_err *e)
{
	struct sfs_store *s = NULL;
	struct rstore *rs = NULL;
	char cache[4096];
	enum sfs_status st;
	unsigned f;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	rs = calloc(1, sizeof(*rs));
	if (!s || !rs || !(rs->buckets = calloc(NBUCKETS, sizeof(int64_t))) ||
	    !(s->dir = strdup(o->url ? o->url : ""))) {
		if (rs)
			free(rs->buckets);
		free(rs);
		if (s)
			free(s->dir);
		free(s);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	pthread_mutex_init(&rs->mu, NULL);
	sfs_config_init(&s->cfg);
	if (sfsi_rcache_new(&rs->cache, e)) {
		pthread_mutex_destroy(&rs->mu);
		free(rs->buckets);
		free(rs);
		free(s->dir);
		free(s);
		return SFS_NOMEM;
	}
	s->ops = &remote_ops;
	s->remote = rs;
	s->wal_fd = -1;
	s->staging_lock_fd = -1;
	st = sfs_remote_open_opts(o, &rs->r, e);
	f = st ? 0 : sfs_remote_features(rs->r);
	if (!st) {
		/* the credentials, checked now rather than at the first ls */
		struct sfs_dir_info root;

		st = r_dir_stat(s, "/", &root, e);
	}
	if (!st) {
		if (o->cache_dir)
			sfs_strlcpy(cache, o->cache_dir, sizeof(cache));
		else
			default_cache_dir(o->url, cache, sizeof(cache));
		/* writes are staged beside the cache, then sent on close */
		if (asprintf(&s->staging_dir, "%s/staging", cache) < 0)
			s->staging_dir = NULL;
		if (!s->staging_dir || sfsi_mkdirs(s->staging_dir) < 0)
			st = sfs_errf(e, SFS_IO, SFS_R_NONE,
				      "cannot make '%s/staging'", cache);
	}
	if (!st) {
		st = sfsi_rblob_start(rs->r, cache,
				      o->cache_bytes < 0 ? (int64_t)1 << 30
							 : o->cache_bytes,
				      &rs->rb, e);
	}
	rs->user = 1;
	if (!st)
		st = sfsi_rfeed_start(s, rs->r, &rs->feed, e);
	if (!st && rs->feed)
		sfsi_rcache_live(rs->cache, 1);
	if (st) {
		r_close(s);
		return st;
	}
	sfs_info("remote", "'%s': block cache '%s'", o->url, cache);
	features_off(o->url, f, !rs->feed);
	*out = s;
	return SFS_OK;
}
