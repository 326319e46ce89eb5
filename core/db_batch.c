/*
 * Batched commits (sfs_store_batch, db_conn_i.h): one connection whose
 * transactions are savepoints of a batch that a thread of its own commits
 * at the end of its window.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <time.h>
#include "blob_i.h"
#include "db_conn_i.h"
#include "remote_i.h"
#include "speechfs/remote.h"
#include "speechfs/log.h"
#include "store_i.h"
#include "util_i.h"

/* ---- batched commits (sfs_store_batch) ------------------------------- */

/*
 * While a store handle batches, it has one connection, batch_db, used by
 * one thread at a time (a thread that already uses it gets it again,
 * nested); its transactions are savepoints of the batch's transaction,
 * which the batcher thread commits at most BATCH_HOLD_MS after it began.
 * Hooks of a savepoint wait for the batch's commit (they see committed
 * data); a savepoint rolled back drops its own.
 */
#define BATCH_HOLD_MS 1000 /* other processes' writes wait at most so */
#define BATCH_GAP_MS 120   /* then the lock is free at least so long */

#define MS_NS 1000000 /* nanoseconds in a millisecond */

/* page caches (KiB): the batch's connection, the others (SQLite's own) */
#define BATCH_CACHE "-65536"
#define POOL_CACHE "-2000"

/*
 * After a batch that was held its whole window, the next one waits until
 * BATCH_GAP_MS after its commit: another process's writer, whose busy
 * handler tries again every 100 ms at most, gets the lock in between;
 * without the gap a bulk load took the lock again within microseconds and
 * the daemon's writes failed busy after their timeout. A bulk load loses
 * about a tenth of its time; occasional batches none (d owned).
 */
static void batch_pause(struct sfs_store *s)
{
	struct timespec gap;
	int64_t at;

	pthread_mutex_lock(&s->batch_mu);
	at = s->batch_gap;
	pthread_mutex_unlock(&s->batch_mu);
	if (!at)
		return;
	sfs_mono_ts(&gap, at);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &gap, NULL) ==
	       EINTR)
		;
}

void sfsi_batch_init(struct sfs_store *s)
{
	pthread_mutex_init(&s->batch_mu, NULL);
	sfs_cond_init_mono(&s->batch_cv);
	sfs_cond_init_mono(&s->batch_tick);
}

/*
 * The batch connection for this thread, when batching; 1 if so. A thread
 * that may not wait (sfsi_nowait, the mount's reading thread) does not
 * wait for another user of it: -1. That user may be opening a batch
 * (it waits for SQLite's lock, which another process may hold), working
 * inside the open batch, or committing it (COMMIT and its sync: the
 * batcher, an fsync); before, a lookup waited on the reading thread for
 * a worker's change and the commit of a batch.
 */
int sfsi_batch_get(struct sfs_store *s, struct db **out)
{
	pthread_mutex_lock(&s->batch_mu);
	for (;;) {
		if (!s->batch_db) { /* not batching (any more) */
			pthread_mutex_unlock(&s->batch_mu);
			return 0;
		}
		if (s->batch_depth &&
		    pthread_equal(s->batch_owner, pthread_self())) {
			s->batch_depth++;
			break;
		}
		if (!s->batch_depth && !s->batch_want) {
			s->batch_owner = pthread_self();
			s->batch_depth = 1;
			break;
		}
		if (sfsi_nowait()) {
			pthread_mutex_unlock(&s->batch_mu);
			return -1;
		}
		pthread_cond_wait(&s->batch_cv, &s->batch_mu);
	}
	*out = s->batch_db;
	pthread_mutex_unlock(&s->batch_mu);
	return 1;
}

/*
 * Since when the window runs (batch_mu held). The batcher is woken only
 * when a window begins: it sleeps until the window's end, which no later
 * change moves. (It waited on batch_cv, which every use of the
 * connection signals: a wake-up and a context switch per statement of
 * a bulk load, a third of the mount's CPU with -o commit.)
 */
static void batch_window(struct sfs_store *s)
{
	if (s->batch_dirty || s->batch_open)
		return;
	s->batch_since = sfs_mono_ns();
	pthread_cond_signal(&s->batch_tick);
}

void sfsi_batch_put(struct db *d)
{
	struct sfs_store *s = d->s;

	pthread_mutex_lock(&s->batch_mu);
	if (s->batch_depth > 1) {
		s->batch_depth--;
		pthread_mutex_unlock(&s->batch_mu);
		return;
	}
	pthread_mutex_unlock(&s->batch_mu);
	/* what its user left open ends as sfsi_db_put ends it */
	while (d->sp)
		(void)sfsi_batch_end(d, 0, NULL);
	pthread_mutex_lock(&s->batch_mu);
	/* a write outside a transaction, committed at once: in the window */
	if (sqlite3_total_changes64(d->h) != d->synced_changes) {
		d->synced_changes = sqlite3_total_changes64(d->h);
		if (!s->batch_open) {
			batch_window(s);
			s->batch_dirty = 1;
			sfsi_db_sync_note_commit(s);
		}
	}
	s->batch_depth = 0;
	pthread_cond_broadcast(&s->batch_cv);
	pthread_mutex_unlock(&s->batch_mu);
}

/* Drop the hooks of savepoint `level` and deeper ones. */
static void drop_hooks_from(struct db *d, int level)
{
	struct hook **p = &d->hooks, *h;

	while ((h = *p)) {
		if (h->level >= level) {
			*p = h->next;
			free(h->arg);
			free(h);
		} else {
			p = &h->next;
		}
	}
}

/*
 * SQLite ended the batch's transaction itself (an I/O error, a full
 * disk): what the window held is lost. Said once, and every later
 * sfs_store_sync fails (d owned).
 */
static void batch_check_lost(struct db *d)
{
	struct sfs_store *s = d->s;

	if (!sqlite3_get_autocommit(d->h))
		return;
	pthread_mutex_lock(&s->batch_mu);
	if (s->batch_open) {
		s->batch_open = 0;
		s->batch_lost = 1;
		sfs_error("db", "a batch of commits was rolled back: the "
				"changes of its window are lost");
	}
	pthread_mutex_unlock(&s->batch_mu);
	if (d->sp_real == 0) {
		d->sp = 0;
		d->txn = 0;
		drop_hooks_from(d, 0);
	}
}

enum sfs_status sfsi_batch_begin(struct db *d, int write, struct sfs_err *e)
{
	struct sfs_store *s = d->s;
	enum sfs_status st;
	int open;

	pthread_mutex_lock(&s->batch_mu);
	open = s->batch_open;
	pthread_mutex_unlock(&s->batch_mu);
	if (!open && !d->sp) {
		if (!write) {
			/* a read outside a batch: a transaction of its own */
			st = sfsi_db_txn_stmt(d, "BEGIN", e);
			if (!st) {
				d->sp = d->sp_real = 1;
				d->txn = 1;
			}
			return st;
		}
		/* a new batch waits for the pause and SQLite's lock */
		if (sfsi_would_wait(e, "a new batch"))
			return SFS_WOULD_WAIT;
		batch_pause(s);
		st = sfsi_db_txn_stmt(d, "BEGIN IMMEDIATE", e);
		if (st)
			return st;
		d->batch_base = sqlite3_total_changes64(d->h);
		pthread_mutex_lock(&s->batch_mu);
		batch_window(s);
		s->batch_open = 1;
		pthread_mutex_unlock(&s->batch_mu);
	}
	if (!d->sp)
		d->sp_base = sqlite3_total_changes64(d->h);
	st = sfsi_db_txn_stmt(d, "SAVEPOINT sfs", e);
	if (st) {
		batch_check_lost(d);
		return st;
	}
	d->sp++;
	d->txn = 1;
	return SFS_OK;
}

/*
 * The outermost savepoint was rolled back: when the batch held nothing
 * before it began (no change since the batch's BEGIN: no savepoint
 * released into it, no write outside one; every change, kept or rolled
 * back, counts in sqlite3_total_changes64), the batch holds nothing now
 * either: end its transaction instead of keeping SQLite's write lock
 * for the rest of the window (a blob's removal after a commit, a failed
 * change). d owned.
 */
static void batch_end_empty(struct db *d)
{
	struct sfs_store *s = d->s;
	int empty;

	pthread_mutex_lock(&s->batch_mu);
	empty = s->batch_open && d->sp_base == d->batch_base && !d->hooks;
	if (empty)
		s->batch_open = 0;
	pthread_mutex_unlock(&s->batch_mu);
	if (!empty)
		return;
	if (!sqlite3_get_autocommit(d->h))
		(void)sfsi_db_txn_stmt(d, "ROLLBACK", NULL);
	/* what was rolled back needs no sync (nor a window: sfsi_batch_put) */
	d->synced_changes += sqlite3_total_changes64(d->h) - d->batch_base;
}

/* End the innermost level: commit (release) or roll back. */
enum sfs_status sfsi_batch_end(struct db *d, int commit, struct sfs_err *e)
{
	struct sfs_store *s = d->s;
	enum sfs_status st = SFS_OK;
	struct hook *h;

	if (!d->sp) {
		sfsi_db_run_hooks(d, 0);
		return SFS_OK;
	}
	if (d->sp == d->sp_real) {
		/* a transaction of its own (a read begun outside a batch) */
		st = sfsi_db_txn_stmt(d, commit ? "COMMIT" : "ROLLBACK", e);
		if (st && !sqlite3_get_autocommit(d->h))
			(void)sfsi_db_txn_stmt(d, "ROLLBACK", NULL);
		d->sp = d->sp_real = 0;
		d->txn = 0;
		sfsi_db_run_hooks(d, commit && !st);
		if (sqlite3_total_changes64(d->h) != d->synced_changes) {
			d->synced_changes = sqlite3_total_changes64(d->h);
			pthread_mutex_lock(&s->batch_mu);
			batch_window(s);
			s->batch_dirty = 1;
			pthread_mutex_unlock(&s->batch_mu);
			sfsi_db_sync_note_commit(s);
		}
		return st;
	}
	if (commit) {
		st = sfsi_db_txn_stmt(d, "RELEASE sfs", e);
		if (!st) {
			/* its hooks wait for the enclosing level's end */
			for (h = d->hooks; h; h = h->next)
				if (h->level == d->sp)
					h->level--;
			d->sp--;
			d->txn = d->sp > 0;
			return SFS_OK;
		}
	}
	if (sfsi_db_txn_stmt(d, "ROLLBACK TO sfs", NULL) == SFS_OK)
		(void)sfsi_db_txn_stmt(d, "RELEASE sfs", NULL);
	drop_hooks_from(d, d->sp);
	d->sp--;
	d->txn = d->sp > 0;
	batch_check_lost(d);
	if (!d->sp)
		batch_end_empty(d);
	return st;
}

/* When the open window ends (batch_mu held). */
static int64_t batch_due(const struct sfs_store *s)
{
	int hold = s->batch_hold_ms ? s->batch_hold_ms : BATCH_HOLD_MS;
	int ms = s->batch_ms < hold ? s->batch_ms : hold;

	return s->batch_since + (int64_t)ms * MS_NS;
}

/* The gap after a batch held its whole window (batch_mu held). */
static void batch_set_gap(struct sfs_store *s)
{
	int64_t now = sfs_mono_ns();

	s->batch_gap = now >= batch_due(s) ? now + BATCH_GAP_MS * MS_NS : 0;
}

/*
 * Take the batch connection for this thread (batch_mu held): again when
 * it has it already (then 1: nested), else ahead of new users
 * (batch_want) once its user has put it back.
 */
static int batch_take(struct sfs_store *s)
{
	if (s->batch_depth && pthread_equal(s->batch_owner, pthread_self())) {
		s->batch_depth++;
		return 1;
	}
	s->batch_want++;
	while (s->batch_depth)
		pthread_cond_wait(&s->batch_cv, &s->batch_mu);
	s->batch_want--;
	s->batch_owner = pthread_self();
	s->batch_depth = 1;
	return 0;
}

/*
 * Commit the open batch, d taken (batch_mu held; released while COMMIT
 * runs). Its hooks move to *hooks, to run once the commit is synced and
 * d is no longer taken (batch_run_hooks).
 */
static enum sfs_status batch_commit_owned(struct sfs_store *s, struct db *d,
					  struct hook **hooks,
					  struct sfs_err *e)
{
	enum sfs_status st = SFS_OK;

	*hooks = NULL;
	if (s->batch_open) {
		pthread_mutex_unlock(&s->batch_mu);
		st = sfsi_db_txn_stmt(d, "COMMIT", e);
		if (st && !sqlite3_get_autocommit(d->h))
			(void)sfsi_db_txn_stmt(d, "ROLLBACK", NULL);
		if (!st)
			sfsi_db_sync_note_commit(s);
		d->synced_changes = sqlite3_total_changes64(d->h);
		if (st)
			sfsi_db_run_hooks(d, 0);
		*hooks = d->hooks;
		d->hooks = NULL;
		pthread_mutex_lock(&s->batch_mu);
		s->batch_open = 0;
		batch_set_gap(s);
		if (st) {
			s->batch_lost = 1;
			sfs_error("db",
				  "a batch of commits failed: the changes "
				  "of its window are lost");
		}
	}
	s->batch_dirty = 0;
	if (s->batch_lost && !st)
		st = sfs_errf(e, SFS_IO, SFS_R_NONE,
			      "a batch of commits was lost");
	return st;
}

/*
 * The hooks of a committed batch, after its sync (a blob's bytes go only
 * once the commit that dropped its row is durable; not at all when the
 * sync failed) and with the connection no longer taken: a hook's
 * transaction would open a batch of its own, after the gap
 * (batch_pause), which it waits for here without holding up the
 * handle's other threads. `d` the connection when the caller still has
 * it taken (nested), else NULL.
 */
static void batch_run_hooks(struct sfs_store *s, struct db *d,
			    struct hook *hooks, int run)
{
	int batching;

	if (!hooks)
		return;
	if (run && !d) {
		pthread_mutex_lock(&s->batch_mu);
		batching = s->batch_db != NULL;
		pthread_mutex_unlock(&s->batch_mu);
		if (batching)
			batch_pause(s);
		if (sfsi_db_get(s, &d, NULL)) {
			sfs_warn("db", "blobs of a batch left for fsck");
			sfsi_db_run_hook_list(NULL, hooks, 0);
			return;
		}
		sfsi_db_run_hook_list(d, hooks, 1);
		sfsi_db_put(d);
		return;
	}
	sfsi_db_run_hook_list(d, hooks, run);
}

/*
 * Commit the open batch and sync (the caller does not use the connection,
 * or uses it outside any transaction).
 */
enum sfs_status sfsi_batch_commit(struct sfs_store *s, struct sfs_err *e)
{
	enum sfs_status st;
	struct hook *hooks;
	struct db *d;
	int nested;

	pthread_mutex_lock(&s->batch_mu);
	d = s->batch_db;
	if (!d || (s->batch_depth &&
		   pthread_equal(s->batch_owner, pthread_self()) && d->sp)) {
		/* not batching, or inside a transaction of its own: the
		 * batcher's turn */
		pthread_mutex_unlock(&s->batch_mu);
		return SFS_OK;
	}
	nested = batch_take(s);
	st = batch_commit_owned(s, d, &hooks, e);
	s->batch_depth = nested ? s->batch_depth - 1 : 0;
	pthread_cond_broadcast(&s->batch_cv);
	/* a commit of fsync's may leave a checkpoint due: the batcher's */
	if (__atomic_load_n(&s->ckpt_due, __ATOMIC_ACQUIRE))
		pthread_cond_signal(&s->batch_tick);
	pthread_mutex_unlock(&s->batch_mu);
	if (!st)
		st = sfsi_db_sync(s, e);
	batch_run_hooks(s, nested ? d : NULL, hooks, st == SFS_OK);
	return st;
}

/*
 * The checkpoint a batch's commit left due (on_wal_commit), on a
 * connection of the pool: passive, it runs beside the batch connection's
 * next changes instead of holding them up.
 */
static void checkpoint_aside(struct sfs_store *s)
{
	struct db *d;

	if (!__atomic_exchange_n(&s->ckpt_due, 0, __ATOMIC_ACQ_REL))
		return;
	if (sfsi_db_pool_get(s, &d, NULL))
		return; /* the next commit outside a batch does it */
	(void)sqlite3_wal_checkpoint_v2(d->h, NULL, SQLITE_CHECKPOINT_PASSIVE,
					NULL, NULL);
	sfsi_db_put(d);
}

static void *batcher(void *arg)
{
	struct sfs_store *s = arg;
	struct timespec at;
	int64_t due;

	pthread_mutex_lock(&s->batch_mu);
	while (!s->batch_stop) {
		/*
		 * A checkpoint left due by a commit that was not ours
		 * (fsync's): made now, or a mount whose batches all end in
		 * fsync() never checkpoints and its WAL only grows.
		 */
		if (__atomic_load_n(&s->ckpt_due, __ATOMIC_ACQUIRE)) {
			pthread_mutex_unlock(&s->batch_mu);
			checkpoint_aside(s);
			pthread_mutex_lock(&s->batch_mu);
			continue;
		}
		if (!s->batch_open && !s->batch_dirty) {
			s->batch_asleep = 1;
			pthread_cond_wait(&s->batch_tick, &s->batch_mu);
			s->batch_asleep = 0;
			s->batch_wakes++;
			continue;
		}
		due = batch_due(s);
		if (sfs_mono_ns() < due) {
			sfs_mono_ts(&at, due);
			s->batch_asleep = 2;
			pthread_cond_timedwait(&s->batch_tick, &s->batch_mu,
					       &at);
			s->batch_asleep = 0;
			s->batch_wakes++;
			continue;
		}
		pthread_mutex_unlock(&s->batch_mu);
		if (sfsi_batch_commit(s, NULL))
			sfs_warn("db", "a batch's commits may not be durable");
		checkpoint_aside(s);
		pthread_mutex_lock(&s->batch_mu);
	}
	pthread_mutex_unlock(&s->batch_mu);
	return NULL;
}

int sfs_store_batching(struct sfs_store *s)
{
	int on;

	if (s->ops)
		return 0;
	pthread_mutex_lock(&s->batch_mu);
	on = s->batch_db != NULL;
	pthread_mutex_unlock(&s->batch_mu);
	return on;
}

int sfs_store_write_quick(struct sfs_store *s, int64_t content_size)
{
	int quick;

	if (s->ops ||
	    (content_size >= 0 && !sfsi_blob_inline_size(s, content_size)))
		return 0; /* a round trip; a blob file synced at its commit */
	pthread_mutex_lock(&s->batch_mu);
	/*
	 * the batch open: SQLite's write lock is ours (no other process,
	 * no gap, to wait for; its commit does not sync); the connection
	 * free and wanted by no one (no thread of ours to wait for)
	 */
	quick = s->batch_db && s->batch_open && !s->batch_depth &&
		!s->batch_want && !s->batch_stop;
	pthread_mutex_unlock(&s->batch_mu);
	return quick;
}

int sfs_store_create_quick(struct sfs_store *s)
{
	/*
	 * a remote store keeps the file until it is sent (remote_pending.c);
	 * its name is checked in the directory's listing, which the lookup
	 * before the create brought, good while the feed follows the server
	 * (without it, for 1 s: the check could ask the server again)
	 */
	if (s->ops)
		return (sfsi_remote_has(s) & SFS_REMOTE_ID_KEY) &&
		       sfsi_remote_feed_is_live(s);
	return sfs_store_write_quick(s, -1);
}

enum sfs_status sfs_store_batch(struct sfs_store *s, int ms, struct sfs_err *e)
{
	enum sfs_status st, st2;
	struct hook *hooks;
	struct db *d;

	if (s->ops || s->cfg.db_url[0])
		return SFS_OK; /* commits durable at the server / PostgreSQL */
	pthread_mutex_lock(&s->batch_mu);
	if (ms > 0 && s->batch_db) {
		s->batch_ms = ms;
		pthread_cond_signal(&s->batch_tick); /* a window's new end */
		pthread_mutex_unlock(&s->batch_mu);
		return SFS_OK;
	}
	if (ms <= 0 && !s->batch_db) {
		pthread_mutex_unlock(&s->batch_mu);
		return SFS_OK;
	}
	pthread_mutex_unlock(&s->batch_mu);
	if (ms > 0) {
		st = sfsi_db_get(s, &d, e);
		if (st)
			return st;
		/* a window's pages stay in memory, not spilled to the WAL
		 * and read back (pread and pwrite per new file 5.6 and 5.1
		 * with SQLite's default 2 MiB, 3.2 and 3.9 so) */
		(void)sqlite3_exec(d->h, "PRAGMA cache_size = " BATCH_CACHE,
				   NULL, NULL, NULL);
		pthread_mutex_lock(&s->batch_mu);
		d->batched = 1;
		d->synced_changes = sqlite3_total_changes64(d->h);
		s->batch_db = d;
		s->batch_ms = ms;
		s->batch_stop = 0;
		s->batch_lost = 0;
		s->batch_thread_on =
			pthread_create(&s->batch_thread, NULL, batcher, s) == 0;
		/* its name in /proc and perf (t_sync counts its wake-ups) */
		if (s->batch_thread_on)
			(void)pthread_setname_np(s->batch_thread, "sfs-batch");
		if (!s->batch_thread_on) {
			s->batch_db = NULL;
			d->batched = 0;
		}
		pthread_mutex_unlock(&s->batch_mu);
		if (!s->batch_thread_on) {
			sfsi_db_put(d);
			return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					"cannot start the batch committer");
		}
		return SFS_OK;
	}
	/*
	 * stop: the connection taken first, so that no thread opens a new
	 * batch between the last commit and the detach; the last batch
	 * committed and synced, the connection back in the pool without a
	 * transaction
	 */
	pthread_mutex_lock(&s->batch_mu);
	s->batch_stop = 1;
	pthread_cond_signal(&s->batch_tick);
	pthread_cond_broadcast(&s->batch_cv);
	pthread_mutex_unlock(&s->batch_mu);
	pthread_join(s->batch_thread, NULL);
	pthread_mutex_lock(&s->batch_mu);
	d = s->batch_db;
	(void)batch_take(s);
	st = batch_commit_owned(s, d, &hooks, e);
	s->batch_db = NULL;
	s->batch_thread_on = 0;
	s->batch_depth = 0;
	pthread_cond_broadcast(&s->batch_cv);
	pthread_mutex_unlock(&s->batch_mu);
	if (!sqlite3_get_autocommit(d->h)) {
		sfs_error("db", "a transaction outlived its batch");
		(void)sfsi_db_txn_stmt(d, "ROLLBACK", NULL);
	}
	d->batched = 0;
	(void)sqlite3_exec(d->h, "PRAGMA cache_size = " POOL_CACHE, NULL, NULL,
			   NULL);
	d->sp = d->sp_real = 0;
	d->txn = 0;
	d->nosync = 0;
	sfsi_db_put(d);
	st2 = sfsi_db_sync(s, st ? NULL : e);
	batch_run_hooks(s, NULL, hooks, !st && !st2);
	checkpoint_aside(s);
	return st ? st : st2;
}
