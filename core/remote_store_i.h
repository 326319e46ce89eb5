/*
 * What the remote store's files share: remote_store.c (the store, its
 * requests, files, attributes, the ops table), remote_nums.c (numbers of
 * ids and paths, what is known while the server does not answer) and
 * remote_dirs.c (directories and listings): struct rstore, and the
 * helpers one calls in another.
 */
#ifndef SPEECHFS_REMOTE_STORE_I_H
#define SPEECHFS_REMOTE_STORE_I_H

#include <pthread.h>
#include <stdint.h>
#include <jansson.h>
#include "remote_i.h"
#include "speechfs/dir.h"
#include "speechfs/file.h"

#define API "/api/v1/speech-services"
#define ANSWER_MAX (64 << 20)
#define NBUCKETS 65536

struct rnode {
	char *key;	 /* a file's id, or a directory's path ("/a/b/") */
	int perm;	 /* a file's, as last listed */
	int unsent_gone; /* a new file unlinked before it was ever sent */
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
	struct sfsi_rpend *pend;   /* new files not sent yet */
	int64_t user;		   /* the actor's user (sfs_auth_user) */
	pthread_mutex_t mu;
	struct rnode *v; /* number n is v[n - 1] */
	size_t n, cap;
	int64_t *buckets;
};

static inline struct rstore *rs_of(struct sfs_store *s)
{
	return s->remote;
}

/* ---- numbers (remote_nums.c) ---- */

/* The number of key, given now if new (perm > 0: the file's now). */
int64_t sfsi_rstore_ino_of(struct rstore *rs, const char *key, int perm);
/* The key numbered ino into out[size] and its perm: 0, or -1 unknown. */
int sfsi_rstore_key_of(struct rstore *rs, int64_t ino, char *out, size_t size,
		       int *perm);
/* The number of key if it has one (0: none), given no number now. */
int64_t sfsi_rstore_known(struct rstore *rs, const char *key);
/* Whether st says the server does not answer (the mount is offline). */
int sfsi_rstore_offline(struct rstore *rs, enum sfs_status st);
/* A file's answer o kept as what was last heard of number ino. */
void sfsi_rstore_remember_file(struct rstore *rs, int64_t ino, json_t *o);
/* The same of a file the cache gave (its JSON made again). */
void sfsi_rstore_remember_kept(struct rstore *rs, const struct sfs_file *f);
/* A file as last got (stat, open) while the server does not answer. */
enum sfs_status sfsi_rstore_last_file(struct rstore *rs, int64_t ino,
				      struct sfs_file *out);
/* The files of directory path last got one by one that names picks. */
int sfsi_rstore_last_files_in(struct rstore *rs, const char *path,
			      const char *const *names, size_t n,
			      const char *id_prefix,
			      int (*fn)(void *arg, const struct sfs_file *f),
			      void *arg);

/* ---- requests (remote_store.c) ---- */

/* GET path: the answer's JSON in *out (json_decref). */
enum sfs_status sfsi_rstore_get_json(struct rstore *rs, const char *path,
				     json_t **out, struct sfs_err *e);
/* A file of an answer, numbered, with the caller's permission. */
enum sfs_status sfsi_rstore_file_of(struct rstore *rs, json_t *o, int perm,
				    struct sfs_file *f, struct sfs_err *e);

/* ---- directories and listings (remote_dirs.c): the ops' bodies ---- */

enum sfs_status sfsi_remote_dir_stat(struct sfs_store *s, const char *path,
				     struct sfs_dir_info *out,
				     struct sfs_err *e);
enum sfs_status sfsi_remote_dir_stat_ino(struct sfs_store *s, int64_t ino,
					 char *path, size_t size,
					 struct sfs_dir_info *out,
					 struct sfs_err *e);
enum sfs_status sfsi_remote_dir_subdirs(
	struct sfs_store *s, const char *path,
	void (*fn)(void *arg, const char *name, const struct sfs_dir_info *d),
	void *arg, struct sfs_err *e);
enum sfs_status
sfsi_remote_dir_files(struct sfs_store *s, const char *path,
		      const char *const *names, size_t n, const char *id_prefix,
		      int all, int (*fn)(void *arg, const struct sfs_file *f),
		      void *arg, struct sfs_err *e);
enum sfs_status sfsi_remote_query_files(struct sfs_store *s,
					const struct sfs_query *q,
					struct sfs_file_list *out,
					struct sfs_err *e);
enum sfs_status sfsi_remote_query_shared(struct sfs_store *s,
					 const struct sfs_query *q,
					 struct sfs_file_list *out,
					 struct sfs_err *e);

#endif
