/*
 * The remote store's numbers (remote_store_i.h): the API names files by
 * UUID and directories by path, the mount names nodes by number, so the
 * store gives one number per file id and per directory path at first
 * sight, never reused while it is open; and what it last heard of each,
 * for when the server does not answer.
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
int64_t sfsi_rstore_ino_of(struct rstore *rs, const char *key, int perm)
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
		rs->v[rs->n].unsent_gone = 0;
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
int sfsi_rstore_key_of(struct rstore *rs, int64_t ino, char *out, size_t size,
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

int sfsi_rstore_offline(struct rstore *rs, enum sfs_status st)
{
	return st == SFS_UNAVAILABLE && sfsi_remote_down(rs->r);
}

/* The number of key if it has one (0: none), given no number now. */
int64_t sfsi_rstore_known(struct rstore *rs, const char *key)
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

void sfsi_rstore_remember_file(struct rstore *rs, int64_t ino, json_t *o)
{
	remember_text(rs, ino, json_dumps(o, JSON_COMPACT));
}

/* The same of a file the cache gave (its JSON made again). */
void sfsi_rstore_remember_kept(struct rstore *rs, const struct sfs_file *f)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);

	if (!sfs_json_file_text(f, &b))
		remember_text(rs, f->ino, sfs_buf_detach(&b, NULL));
	sfs_buf_release(&b);
}

/* A file as last got (stat, open) while the server does not answer. */
enum sfs_status sfsi_rstore_last_file(struct rstore *rs, int64_t ino,
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
int sfsi_rstore_last_files_in(struct rstore *rs, const char *path,
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
		if (sfsi_rstore_last_file(rs, (int64_t)i, &f))
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
 * Kept with the number (which lives as long as the store): the pending
 * entry of a file unlinked before it was sent goes after 4,096 newer
 * ones (remote_pending.c), this stays, so that a handle still open on
 * the file commits into nothing as before, not to an id the server
 * never had.
 */
void sfsi_remote_set_unsent_gone(struct sfs_store *s, const char *id)
{
	struct rstore *rs = rs_of(s);
	int64_t i;

	pthread_mutex_lock(&rs->mu);
	i = find(rs, id);
	if (i)
		rs->v[i - 1].unsent_gone = 1;
	pthread_mutex_unlock(&rs->mu);
}

int sfsi_remote_unsent_gone(struct sfs_store *s, const char *id)
{
	struct rstore *rs = rs_of(s);
	int64_t i;
	int ret;

	pthread_mutex_lock(&rs->mu);
	i = find(rs, id);
	ret = i && rs->v[i - 1].unsent_gone;
	pthread_mutex_unlock(&rs->mu);
	return ret;
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

/*
 * A directory removed on the server: it and what is below it are no
 * longer said to exist while the server does not answer (their numbers
 * stay: a node the mount holds still names them).
 */
void sfsi_remote_dir_gone(struct sfs_store *s, const char *path)
{
	struct rstore *rs = rs_of(s);
	size_t i, len = strlen(path);

	pthread_mutex_lock(&rs->mu);
	for (i = 0; i < rs->n; i++)
		if (rs->v[i].key[0] == '/' && !strncmp(rs->v[i].key, path, len))
			rs->v[i].has_dir = 0;
	pthread_mutex_unlock(&rs->mu);
}
