/*
 * The mount's table of open files: one struct ofile per file with open
 * handles, found by inode and kept by references, its handles' list, what
 * the handles know better than the file's row, and the rule of a file's
 * lock for threads that wait far away under it (fs_file_busy).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "file_i.h"
#include "speechfs/stage.h"
#include "speechfs/banned.h"

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ofile *files;

/*
 * The content each inode had when last opened: a read-only open keeps the
 * kernel's page cache (keep_cache) only when the blob is the same.
 */
#define SEEN_SLOTS 1024
static struct {
	uint64_t node;
	char sha[65];
} seen[SEEN_SLOTS];

int fs_same_content(uint64_t node, const char *sha)
{
	unsigned i = (unsigned)(node % SEEN_SLOTS);
	int same;

	pthread_mutex_lock(&files_lock);
	same = seen[i].node == node && sha[0] && !strcmp(seen[i].sha, sha);
	seen[i].node = node;
	snprintf(seen[i].sha, sizeof(seen[i].sha), "%s", sha);
	pthread_mutex_unlock(&files_lock);
	return same;
}

static struct ofile *find_locked(int64_t ino)
{
	struct ofile *of;

	for (of = files; of; of = of->next)
		if (of->ino == ino)
			return of;
	return NULL;
}

/*
 * files_lock is never held while an of->lock is awaited: a worker may hold
 * a file's lock across a wait for a server (a writer's base to copy, a
 * block to fetch), and every open, close and attribute of every open file
 * takes files_lock. A handle or a look at a file's attributes keeps its
 * ofile with a reference (refs) instead.
 */

/* Let go of a reference to of: the last one frees it. */
static void ofile_put(struct ofile *of)
{
	struct ofile **p;
	int last;

	pthread_mutex_lock(&files_lock);
	last = --of->refs == 0;
	if (last)
		for (p = &files; *p; p = &(*p)->next)
			if (*p == of) {
				*p = of->next;
				break;
			}
	pthread_mutex_unlock(&files_lock);
	if (!last)
		return;
	pthread_mutex_destroy(&of->lock);
	pthread_cond_destroy(&of->cv);
	free(of);
}

/* The open file of ino with a reference (ofile_put), or NULL. */
static struct ofile *ofile_get(int64_t ino)
{
	struct ofile *of;

	pthread_mutex_lock(&files_lock);
	of = find_locked(ino);
	if (of)
		of->refs++;
	pthread_mutex_unlock(&files_lock);
	return of;
}

/*
 * How many threads hold a file's lock across a wait for something far
 * away (a server, an object store) or a long copy: while any does, the
 * reading thread takes no file's lock (fs_file_busy).
 */
static int slow_holders;

static void slow_begin(void)
{
	__atomic_add_fetch(&slow_holders, 1, __ATOMIC_SEQ_CST);
}

void fs_slow_end(void)
{
	__atomic_sub_fetch(&slow_holders, 1, __ATOMIC_SEQ_CST);
}

/*
 * A test's hold on the reading thread's look (SPEECHFS_TEST_BUSY_UNSEEN
 * set): fs_file_busy() says no, as when the reading thread looked just
 * before a worker said it would wait far away under a file's lock, and
 * the request then met that lock (review s16 F9). The reading thread is
 * its only caller.
 */
static int busy_unseen(void)
{
	static int unseen = -1;

	if (unseen < 0)
		unseen = getenv("SPEECHFS_TEST_BUSY_UNSEEN") != NULL;
	return unseen;
}

int fs_file_busy(void)
{
	return __atomic_load_n(&slow_holders, __ATOMIC_SEQ_CST) > 0 &&
	       !busy_unseen();
}

/*
 * Make the thread holding of's lock a slow holder before it waits far
 * away under the lock (*slow: whether it is one; fs_slow_end once the lock
 * is let go). It says so before it takes the lock, never after: the
 * reading thread takes a file's lock only while no thread is one
 * (fs_file_busy), and between a worker's lock and a late slow_begin()
 * it took the lock's next turn and waited behind the server with it
 * (review s15 F9). 1 when the lock was let go and taken again (what was
 * looked at under it must be looked at again), 0 when already one.
 */
int fs_become_slow(struct ofile *of, int *slow)
{
	if (*slow)
		return 0;
	pthread_mutex_unlock(&of->lock);
	slow_begin();
	*slow = 1;
	pthread_mutex_lock(&of->lock);
	return 1;
}

/*
 * A worker may hold a file's lock across a wait far away having said so
 * (fs_file_busy) only after the reading thread looked: the reading
 * thread checks fs_file_busy() once, as a request begins, and takes a
 * file's lock later in it (review s16 F9). A thread that may not wait
 * (fs_nowait) therefore only tries the lock: -FS_EWAIT when it is held,
 * and the request is begun again by a worker, which waits for it.
 */
int fs_ofile_lock(struct ofile *of)
{
	if (fs_nowait())
		return pthread_mutex_trylock(&of->lock) ? -FS_EWAIT : 0;
	pthread_mutex_lock(&of->lock);
	return 0;
}

/* Attach h to the open file of ino (made if needed); of->lock held. */
int fs_ofile_attach(struct fh *h, int64_t ino, const char *id)
{
	struct ofile *of;

	pthread_mutex_lock(&files_lock);
	of = find_locked(ino);
	if (!of) {
		of = calloc(1, sizeof(*of));
		if (!of) {
			pthread_mutex_unlock(&files_lock);
			return -ENOMEM;
		}
		pthread_mutex_init(&of->lock, NULL);
		pthread_cond_init(&of->cv, NULL);
		of->ino = ino;
		snprintf(of->id, sizeof(of->id), "%s", id);
		of->next = files;
		files = of;
	}
	of->refs++;
	pthread_mutex_unlock(&files_lock);
	if (fs_ofile_lock(of)) {
		ofile_put(of); /* as it was: nothing attached */
		return -FS_EWAIT;
	}
	h->of = of;
	h->next = of->handles;
	of->handles = h;
	h->version = of->version;
	/* opened while the file is being written: reads the writer's */
	h->follow = !h->writable && of->writer != NULL;
	return 0;
}

/* The most recent writer with a version of its own, but h (of locked). */
struct fh *fs_other_writer(struct ofile *of, const struct fh *h)
{
	struct fh *w, *best = NULL;

	for (w = of->handles; w; w = w->next)
		if (w != h && w->stage && w->dirty &&
		    (!best || w->mtime_ns > best->mtime_ns))
			best = w;
	return best;
}

int fs_ofile_writable(const struct ofile *of)
{
	const struct fh *h;

	for (h = of->handles; h; h = h->next)
		if (h->writable)
			return 1;
	return 0;
}

void fs_ofile_detach(struct fh *h, int locked)
{
	struct ofile *of = h->of;
	struct fh **q;

	if (!locked)
		pthread_mutex_lock(&of->lock);
	for (q = &of->handles; *q; q = &(*q)->next)
		if (*q == h) {
			*q = h->next;
			break;
		}
	if (of->writer == h)
		of->writer = fs_other_writer(of, h);
	pthread_mutex_unlock(&of->lock);
	ofile_put(of);
}

int fs_file_is_open(int64_t ino)
{
	int open;

	pthread_mutex_lock(&files_lock);
	open = find_locked(ino) != NULL;
	pthread_mutex_unlock(&files_lock);
	return open;
}

int fs_open_attr(int64_t ino, struct stat *st)
{
	struct ofile *of = ofile_get(ino);
	struct fh *w;
	int changed = 0;

	if (!of)
		return 0;
	if (fs_ofile_lock(of)) {
		ofile_put(of);
		return -FS_EWAIT;
	}
	w = of->writer;
	if (w && w->stage && w->dirty) {
		st->st_size = sfs_stage_size(w->stage);
		st->st_blocks = (st->st_size + 511) / 512;
		st->st_mtim.tv_sec = w->mtime_ns / 1000000000;
		st->st_mtim.tv_nsec = w->mtime_ns % 1000000000;
		st->st_ctim = st->st_mtim;
		changed = 1;
	}
	pthread_mutex_unlock(&of->lock);
	ofile_put(of);
	return changed;
}

void fs_open_times(int64_t ino, int64_t mtime_ns)
{
	struct ofile *of = ofile_get(ino);
	struct fh *w;

	if (!of)
		return;
	pthread_mutex_lock(&of->lock);
	w = of->writer;
	if (w && w->dirty)
		w->set_mtime_ns = w->mtime_ns = mtime_ns;
	pthread_mutex_unlock(&of->lock);
	ofile_put(of);
}
