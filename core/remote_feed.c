/*
 * The remote store's change feed (remote_i.h): one thread holds a long
 * poll of GET …/changes?cursor= on its own connection and queues what
 * the server reports - a file (its number, its directory) or a directory
 * whose entries changed - then writes an eventfd, on which the mount's
 * poller sleeps (sfs_store_change_fd). An idle mount costs one pending
 * request. The poll asks for others' changes only (skipOwn): the mount's
 * own writes answer none of its polls (their answers told the mount's
 * cache already). A cursor the server no longer knows (410) queues
 * "everything below /"; a server gone is asked again after 1, 2, 4, 8 s
 * and every 8 s. While the server does not answer (sfsi_remote_down),
 * the poll asks with timeout=0: a server back answers it at once, which
 * notes it up ("answers again", the offline answers end) within that
 * retry, not at the end of a 25 s long poll; then long polls again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "remote_i.h"
#include "speechfs/log.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define POLL_S 25
#define QUEUE_MAX 4096
/*
 * After an answer of this store's own changes only (a server that does
 * not know skipOwn), the next poll waits this long: a burst of the mount's own
 * writes (each answered by a poll at once) costs the server a poll per
 * OWN_GAP_MS, not two per file; others' changes meanwhile come with the next
 * poll (the cursor keeps them), that much later.
 */
#define OWN_GAP_MS 50

struct fchange {
	int64_t seq;
	int64_t ino;
	char *dir; /* NULL: the file alone */
	int own;   /* made by this store (its origin) */
};

struct sfsi_rfeed {
	struct sfs_store *s;
	struct sfs_remote *r;
	pthread_t th;
	int running;
	int stop;
	int efd;
	pthread_mutex_t mu;
	struct fchange *q;
	size_t n;
	int64_t seq;
	char cursor[32];
	int own, others; /* changes of each kind in the last answer */
};

/* Queue one change (f->mu held); a full queue becomes "all of /". */
static void push(struct sfsi_rfeed *f, int64_t ino, const char *dir, int own)
{
	size_t i;

	if (f->n == QUEUE_MAX) {
		for (i = 0; i < f->n; i++)
			free(f->q[i].dir);
		f->n = 0;
		ino = 0;
		dir = "/";
		own = 0;
	}
	f->q[f->n].seq = ++f->seq;
	f->q[f->n].ino = ino;
	f->q[f->n].dir = dir ? strdup(dir) : NULL;
	f->q[f->n].own = own;
	f->n++;
}

/* One change of an answer (parsed once, with the answer). */
static void on_json(void *arg, json_t *j)
{
	struct sfsi_rfeed *f = arg;
	json_t *file;
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *id = json_string_value(json_object_get(j, "fileId"));
	const char *dir = NULL;
	struct sfs_file sf;
	int64_t ino = 0;
	/* this store's own change (the server compared the origin it
	 * sends): its cache and its mount know it */
	int own = json_is_true(json_object_get(j, "own"));
	sfs_file_init(&sf);
	if (type && !strcmp(type, "directory")) {
		dir = json_string_value(json_object_get(j, "path"));
		if (!own)
			sfsi_remote_saw_change(f->s, NULL, 0, dir, 1);
	} else if (id) {
		file = json_object_get(j, "file");
		if (json_is_object(file) &&
		    !sfsi_remote_file_decode_obj(file, &sf, NULL) &&
		    !sfsi_remote_file_number(f->s, &sf, NULL)) {
			ino = sf.ino;
			dir = sf.path;
		}
		if (!ino) /* removed, or not readable: its number if any */
			sf.ino = 0;
		/* the cache first: the mount's poller asks it next */
		if (!own)
			sfsi_remote_saw_change(f->s, id, ino, dir, 0);
	}
	pthread_mutex_lock(&f->mu);
	if (dir || ino)
		push(f, ino, dir, own);
	pthread_mutex_unlock(&f->mu);
	if (own)
		f->own++;
	else
		f->others++;
	sfs_file_release(&sf);
}

/* Sleep ms milliseconds, in steps of 10 ms while not stopped. */
static void nap_ms(struct sfsi_rfeed *f, int ms)
{
	int i;

	for (i = 0; i < ms / 10 && !__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST);
	     i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
}

static void nap(struct sfsi_rfeed *f, int s)
{
	nap_ms(f, s * 1000);
}

static void *feed(void *arg)
{
	struct sfsi_rfeed *f = arg;
	uint64_t one = 1;
	char next[32];
	struct sfs_err e;
	enum sfs_status st;
	int64_t before;
	int more, backoff = 1;

	while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
		sfs_err_init(&e);
		pthread_mutex_lock(&f->mu);
		before = f->seq;
		pthread_mutex_unlock(&f->mu);
		f->own = f->others = 0;
		st = sfsi_remote_changes_obj(
			f->r, f->cursor[0] ? f->cursor : NULL,
			sfsi_remote_down(f->r) ? 0 : POLL_S, 1, on_json, f,
			next, sizeof(next), &more, &e);
		if (st == SFS_GONE) {
			/* too old a cursor: a new one, and all of / again */
			f->cursor[0] = '\0';
			sfsi_remote_saw_change(f->s, NULL, 0, "/", 1);
			pthread_mutex_lock(&f->mu);
			push(f, 0, "/", 0);
			pthread_mutex_unlock(&f->mu);
		} else if (st) {
			/* changes may go unheard meanwhile */
			sfsi_remote_feed_live(f->s, 0);
			if (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST))
				sfs_warn("remote",
					 "change feed: %s; again in "
					 "%d s",
					 e.message, backoff);
			nap(f, backoff);
			backoff = backoff >= 8 ? 8 : backoff * 2;
			continue;
		} else {
			sfs_strlcpy(f->cursor, next, sizeof(f->cursor));
			backoff = 1;
			sfsi_remote_feed_live(f->s, 1);
		}
		pthread_mutex_lock(&f->mu);
		if (f->seq != before && write(f->efd, &one, sizeof(one)) < 0)
			sfs_debug("remote", "cannot wake the poller");
		pthread_mutex_unlock(&f->mu);
		if (!st && !more && f->own && !f->others)
			nap_ms(f, OWN_GAP_MS);
	}
	return NULL;
}

enum sfs_status sfsi_rfeed_start(struct sfs_store *s, struct sfs_remote *r,
				 struct sfsi_rfeed **out, struct sfs_err *e)
{
	struct sfsi_rfeed *f;
	char next[32];
	int more;
	enum sfs_status st;

	*out = NULL;
	if (!(sfs_remote_features(r) & SFS_REMOTE_CHANGES))
		return SFS_OK;
	f = calloc(1, sizeof(*f));
	if (!f)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	f->q = calloc(QUEUE_MAX, sizeof(*f->q));
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->s = s;
	f->r = r;
	pthread_mutex_init(&f->mu, NULL);
	/* the cursor of now, before anything is listed */
	st = f->q && f->efd >= 0
		     ? sfsi_remote_changes_obj(r, NULL, 0, 1, on_json, f, next,
					       sizeof(next), &more, e)
		     : sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (!st) {
		sfs_strlcpy(f->cursor, next, sizeof(f->cursor));
		if (pthread_create(&f->th, NULL, feed, f))
			st = sfs_errf(e, SFS_IO, SFS_R_NONE,
				      "cannot start the change feed");
		else
			f->running = 1;
	}
	if (st) {
		sfsi_rfeed_stop(f);
		return st;
	}
	*out = f;
	return SFS_OK;
}

void sfsi_rfeed_stop(struct sfsi_rfeed *f)
{
	size_t i;

	if (!f)
		return;
	if (f->running) {
		__atomic_store_n(&f->stop, 1, __ATOMIC_SEQ_CST);
		sfsi_remote_abort(f->r); /* the pending poll ends now */
		pthread_join(f->th, NULL);
	}
	for (i = 0; f->q && i < f->n; i++)
		free(f->q[i].dir);
	free(f->q);
	if (f->efd >= 0)
		close(f->efd);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

int64_t sfsi_rfeed_seq(struct sfsi_rfeed *f)
{
	int64_t seq;

	pthread_mutex_lock(&f->mu);
	seq = f->seq;
	pthread_mutex_unlock(&f->mu);
	return seq;
}

int sfsi_rfeed_fd(struct sfsi_rfeed *f)
{
	return f->efd;
}

void sfsi_rfeed_drain(struct sfsi_rfeed *f, int64_t user, sfs_change_fn fn,
		      void *arg, int64_t *last)
{
	struct fchange *v;
	size_t n, i;

	pthread_mutex_lock(&f->mu);
	n = f->n;
	v = malloc((n ? n : 1) * sizeof(*v));
	if (v) {
		memcpy(v, f->q, n * sizeof(*v));
		f->n = 0;
	} else {
		n = 0;
	}
	*last = f->seq;
	pthread_mutex_unlock(&f->mu);
	for (i = 0; i < n; i++) {
		if (!v[i].own) /* an old server's answer lists them too */
			fn(arg, v[i].seq, v[i].ino, user, v[i].dir);
		free(v[i].dir);
	}
	free(v);
}
