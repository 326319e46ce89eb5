/*
 * -o commit=MS, for bulk loads: close() commits what was written without
 * waiting for the disk, and one thread makes those commits durable
 * together (one sync of the store's log) at most MS ms after the first of
 * them. fsync() still waits for the disk, and so does unmounting. A crash
 * of the machine within the window loses the closes of those MS ms (the
 * files keep their previous content); a crash of speechfs alone loses
 * nothing, as the commits are in the log.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static pthread_t thread;
static int running, stop, pending;

/* Make every commit so far durable; logs what failed. 0 or -errno. */
static int sync_now(void)
{
	struct sfs_err e;
	enum sfs_status st;

	sfs_err_init(&e);
	st = sfs_store_sync(g_fs.store, &e);
	if (st)
		sfs_error("fs",
			  "commits of closed files may not be durable: %s",
			  e.message);
	return -fs_errno(st, &e);
}

static void *committer(void *arg)
{
	struct timespec at;

	(void)arg;
	pthread_mutex_lock(&mu);
	while (!stop) {
		if (!pending) {
			pthread_cond_wait(&cv, &mu);
			continue;
		}
		/* the window of the first commit since the last sync */
		clock_gettime(CLOCK_MONOTONIC, &at);
		at.tv_sec += g_fs.commit_ms / 1000;
		at.tv_nsec += (long)(g_fs.commit_ms % 1000) * 1000000L;
		if (at.tv_nsec >= 1000000000L) {
			at.tv_sec++;
			at.tv_nsec -= 1000000000L;
		}
		while (!stop &&
		       pthread_cond_timedwait(&cv, &mu, &at) != ETIMEDOUT)
			;
		pending = 0;
		pthread_mutex_unlock(&mu);
		(void)sync_now();
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

void fs_commits_note(void)
{
	pthread_mutex_lock(&mu);
	if (!pending) {
		pending = 1;
		pthread_cond_signal(&cv);
	}
	pthread_mutex_unlock(&mu);
}

int fs_commits_sync(void)
{
	return g_fs.commit_ms ? sync_now() : 0;
}

void fs_commits_start(void)
{
	pthread_condattr_t ca;

	if (!g_fs.commit_ms || running)
		return;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &ca);
	pthread_condattr_destroy(&ca);
	stop = 0;
	if (pthread_create(&thread, NULL, committer, NULL) == 0) {
		running = 1;
		return;
	}
	/* no thread: every close waits for the disk, as without the option */
	sfs_warn("fs", "cannot start the committer: closes are durable");
	g_fs.commit_ms = 0;
}

void fs_commits_drain(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&mu);
	stop = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(thread, NULL);
	running = 0;
	(void)sync_now();
	pthread_cond_destroy(&cv);
}
