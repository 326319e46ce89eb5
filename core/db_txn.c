/*
 * Transactions of the database layer (db_conn_i.h): BEGIN/COMMIT/ROLLBACK
 * and their hooks, the write turn of this process, and group commit (one
 * WAL sync shared by the commits of a moment).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "db_conn_i.h"
#include "db_pg_i.h"
#include "speechfs/log.h"
#include "store_i.h"
#include "util_i.h"

/* ---- transactions ---------------------------------------------------- */

enum sfs_status sfsi_db_exec(struct db *d, const char *sql, struct sfs_err *e)
{
	enum sfs_status ret;
	int rc;

	if (d->pg) {
		ret = sfsi_pg_exec(d->pg, sql, e);
		sfsi_db_pg_committed(d);
		return ret;
	}
	rc = sqlite3_exec(d->h, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? SFS_OK : rc_status(d, rc, e, sql);
}

/*
 * After a bulk load on PostgreSQL: VACUUM (ANALYZE) each table of the
 * store's schema (and only those: a database may hold several stores),
 * as after a restore. ANALYZE gives the planner the tables' sizes;
 * VACUUM sets the visibility map, without which an index-only scan of a
 * freshly loaded table still reads every row's page. VACUUM runs outside
 * a transaction, one statement per table. Nothing on SQLite.
 */
enum sfs_status sfsi_db_vacuum(struct db *d, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;
	char *sql = NULL;
	int rc;

	if (!d->pg)
		return SFS_OK;
	/* one statement naming the store's tables, however many: never
	 * the whole database, which may hold other stores */
	st = sfsi_db_prep_dyn(d,
			      "SELECT 'VACUUM (ANALYZE) ' || string_agg("
			      "format('%I.%I', schemaname, tablename), ', '"
			      " ORDER BY tablename) FROM pg_tables"
			      " WHERE schemaname = current_schema()",
			      e);
	if (!st)
		return e ? e->status : SFS_IO;
	rc = sfsi_db_step(st, e);
	if (rc < 0)
		ret = e ? e->status : SFS_IO;
	else if (rc == 1 && sfsi_db_col_text(st, 0)) {
		sql = strdup(sfsi_db_col_text(st, 0));
		if (!sql)
			ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				       "out of memory");
	}
	sfsi_db_finalize(st);
	if (!ret && sql)
		ret = sfsi_db_exec(d, sql, e);
	free(sql);
	return ret;
}

/* ---- group commit ---------------------------------------------------- */

/*
 * Commits made without waiting for the disk become durable together: the
 * first caller of sfsi_db_sync syncs the WAL for every commit made before
 * it starts, and callers that arrive meanwhile wait for the next sync,
 * which covers their commits too. Concurrent closes share one fdatasync.
 *
 * A failed sync is final for the handle: Linux reports a writeback error
 * once per open file, so a second fdatasync of the same WAL would return 0
 * for pages the kernel may have dropped. Every caller waiting for that sync,
 * and every later one, gets the error; reopening the store starts afresh
 * (SQLite then recovers from what the WAL really holds).
 */
void sfsi_db_sync_note_commit(struct sfs_store *s)
{
	pthread_mutex_lock(&s->sync_mu);
	s->sync_committed++;
	pthread_mutex_unlock(&s->sync_mu);
}

/*
 * The WAL's fd, (re)opened when the file is another one (sync_mu held);
 * -errno when there is none (-ENOENT: nothing to sync).
 */
static int wal_fd(struct sfs_store *s)
{
	char path[4096];
	struct stat a, b;

	snprintf(path, sizeof(path), "%s/speechfs.db-wal", s->dir);
	if (stat(path, &a) < 0)
		return -errno;
	if (s->wal_fd >= 0 && fstat(s->wal_fd, &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		return s->wal_fd;
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	s->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
	return s->wal_fd >= 0 ? s->wal_fd : -errno;
}

/*
 * Whether the store's commits need sfsi_db_sync: not where it accepts
 * NORMAL (db.sync_full off), nor on PostgreSQL, whose commits are durable.
 */
static int syncs(const struct sfs_store *s)
{
	return s->cfg.sync_full && !s->cfg.db_url[0];
}

enum sfs_status sfsi_db_sync(struct sfs_store *s, struct sfs_err *e)
{
	uint64_t ticket, target;
	enum sfs_status ret = SFS_OK;
	int fd, err = 0;

	if (!syncs(s))
		return SFS_OK;
	pthread_mutex_lock(&s->sync_mu);
	ticket = s->sync_committed;
	while (s->sync_done < ticket && !(err = s->sync_err)) {
		if (s->sync_running) {
			pthread_cond_wait(&s->sync_cv, &s->sync_mu);
			continue;
		}
		s->sync_running = 1;
		target = s->sync_committed;
		fd = wal_fd(s);
		pthread_mutex_unlock(&s->sync_mu);
		if (fd >= 0 && fdatasync(fd) < 0)
			err = errno;
		else if (fd < 0 && fd != -ENOENT)
			err = -fd;
		pthread_mutex_lock(&s->sync_mu);
		s->sync_running = 0;
		if (err)
			s->sync_err = err;
		else
			s->sync_done = target;
		pthread_cond_broadcast(&s->sync_cv);
	}
	pthread_mutex_unlock(&s->sync_mu);
	if (err) {
		sfs_error("db", "cannot sync the WAL: %s", strerror(err));
		ret = sfsi_errno_status(e, err, "syncing the database");
	}
	return ret;
}

enum sfs_status sfsi_db_sync_all(struct sfs_store *s, struct sfs_err *e)
{
	if (!syncs(s))
		return SFS_OK; /* owing nothing, it would owe for ever */
	/* as if this handle had committed: the next sync is owed */
	sfsi_db_sync_note_commit(s);
	return sfsi_db_sync(s, e);
}

/*
 * BEGIN, COMMIT and ROLLBACK come from the statement cache: through
 * sqlite3_exec they were parsed again for every transaction, a tenth of
 * the work of a GET of one file.
 */
enum sfs_status sfsi_db_txn_stmt(struct db *d, const char *sql,
				 struct sfs_err *e)
{
	struct db_stmt *st = sfsi_db_prep(d, sql, e);

	return st ? sfsi_db_run(st, e) : SFS_IO;
}

/*
 * The write turn: one write transaction of this process at a time. SQLite
 * answers a second writer SQLITE_BUSY and its busy handler sleeps (1, 2,
 * 5, 10 ms...) before it tries again, so threads of one process that
 * write at once (closes of four writers) spent their time asleep while
 * the lock was free; in turn, they queue here and start the moment the
 * previous transaction ends. Other processes still meet SQLite's lock. A
 * thread that already holds the turn (a transaction on another
 * connection) does not wait for itself, and no thread waits longer than
 * TURN_WAIT_MS (or the busy timeout when longer) for the others: a guard
 * against a holder that waits for one of them; then SQLite decides, as
 * before, so a BEGIN waits at most the turn's wait plus the busy timeout.
 * A turn freed as the wait times out is still taken: the waiter may have
 * consumed the signal meant for the next one.
 * PostgreSQL locks rows, not the database: no turn there.
 */
#define TURN_WAIT_MS 30000

static void write_turn(struct db *d)
{
	struct sfs_store *s = d->s;
	struct timespec until;
	int64_t ms;

	if (d->pg || !s)
		return;
	ms = s->cfg.busy_timeout_ms > TURN_WAIT_MS ? s->cfg.busy_timeout_ms
						   : TURN_WAIT_MS;
	if (s->write_wait_ms)
		ms = s->write_wait_ms;
	sfs_deadline(&until, ms);
	pthread_mutex_lock(&s->write_mu);
	if (s->write_busy && pthread_equal(s->write_owner, pthread_self()))
		goto out;
	while (s->write_busy)
		if (pthread_cond_timedwait(&s->write_cv, &s->write_mu,
					   &until) == ETIMEDOUT &&
		    s->write_busy)
			goto out; /* then SQLite decides */
	s->write_busy = 1;
	s->write_owner = pthread_self();
	d->turn = 1;
out:
	pthread_mutex_unlock(&s->write_mu);
}

static void write_turn_end(struct db *d)
{
	struct sfs_store *s = d->s;

	if (!d->turn)
		return;
	d->turn = 0;
	pthread_mutex_lock(&s->write_mu);
	s->write_busy = 0;
	pthread_cond_signal(&s->write_cv);
	pthread_mutex_unlock(&s->write_mu);
}

static enum sfs_status begin_write(struct db *d, int pg_kind, struct sfs_err *e)
{
	enum sfs_status st;

	if (d->batched)
		return sfsi_batch_begin(d, 1, e);
	if (d->pg) {
		/* the change rows' origin: set by sfsi_pg_begin */
		st = sfsi_pg_begin(d->pg, pg_kind, e);
	} else {
		write_turn(d);
		st = sfsi_db_txn_stmt(d, "BEGIN IMMEDIATE", e);
		if (st)
			write_turn_end(d);
	}
	if (!st)
		d->txn = 1;
	return st;
}

enum sfs_status sfsi_db_begin(struct db *d, struct sfs_err *e)
{
	return begin_write(d, PG_BEGIN_WRITE, e);
}

/*
 * The connections run at synchronous=NORMAL: a commit leaves the WAL
 * unsynced until sfsi_db_sync (or a checkpoint), and WAL recovery keeps a
 * prefix of commits, so that sync makes every earlier commit durable.
 * A transaction begun so is not synced at its commit.
 */
enum sfs_status sfsi_db_begin_nosync(struct db *d, struct sfs_err *e)
{
	enum sfs_status st = sfsi_db_begin(d, e);

	/* a batch's savepoints: the batcher syncs (and d->nosync would
	 * outlive them on the connection) */
	if (!st && !d->batched)
		d->nosync = 1;
	return st;
}

enum sfs_status sfsi_db_begin_read(struct db *d, struct sfs_err *e)
{
	enum sfs_status st;

	if (d->batched)
		return sfsi_batch_begin(d, 0, e);
	st = d->pg ? sfsi_pg_begin(d->pg, PG_BEGIN_READ, e)
		   : sfsi_db_txn_stmt(d, "BEGIN", e);

	if (!st)
		d->txn = 1;
	return st;
}

enum sfs_status sfsi_db_begin_rows(struct db *d, struct sfs_err *e)
{
	return begin_write(d, PG_BEGIN_ROWS, e);
}

enum sfs_status sfsi_db_on_commit(struct db *d, void (*fn)(struct db *, void *),
				  void *arg, struct sfs_err *e)
{
	struct hook *h = malloc(sizeof(*h));

	if (!h) {
		free(arg);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	h->fn = fn;
	h->arg = arg;
	h->level = d->sp;
	h->next = d->hooks;
	d->hooks = h;
	return SFS_OK;
}

void sfsi_db_run_hook_list(struct db *d, struct hook *h, int run)
{
	struct hook *next;

	for (; h; h = next) {
		next = h->next;
		if (run)
			h->fn(d, h->arg);
		free(h->arg);
		free(h);
	}
}

void sfsi_db_run_hooks(struct db *d, int run)
{
	struct hook *h = d->hooks;

	d->hooks = NULL;
	sfsi_db_run_hook_list(d, h, run);
}

/*
 * A SQLite transaction ended without its commit (rolled back, or a
 * COMMIT that failed): rolled back if still open, the write turn given
 * back; what was rolled back needs no sync.
 */
static void abandon(struct db *d)
{
	if (!sqlite3_get_autocommit(d->h))
		(void)sfsi_db_txn_stmt(d, "ROLLBACK", NULL);
	d->txn = 0;
	d->nosync = 0;
	write_turn_end(d);
	d->synced_changes = sqlite3_total_changes64(d->h);
}

/* PostgreSQL's commit: hooks as SQLite's, nothing to sync. */
static enum sfs_status pg_commit(struct db *d, struct sfs_err *e)
{
	enum sfs_status st = sfsi_pg_commit(d->pg, e);

	d->txn = 0;
	d->nosync = 0;
	if (!st)
		sfsi_db_pg_committed(d);
	sfsi_db_run_hooks(d, st == SFS_OK);
	return st;
}

enum sfs_status sfsi_db_commit(struct db *d, struct sfs_err *e)
{
	enum sfs_status st, ret = SFS_OK;

	if (d->pg)
		return pg_commit(d, e);
	if (d->batched)
		return sfsi_batch_end(d, 1, e);
	st = sfsi_db_txn_stmt(d, "COMMIT", e);

	if (st == SFS_OK) {
		d->txn = 0;
		write_turn_end(d);
		sfsi_db_sync_note_commit(d->s);
		d->synced_changes = sqlite3_total_changes64(d->h);
		/*
		 * hooks (a blob's bytes removed once its row is gone) run
		 * once the commit is durable, never when its sync failed: a
		 * commit begun "nosync" that has hooks syncs here (its caller
		 * syncs next anyway, and that finds nothing left to sync)
		 */
		if (!d->nosync || d->hooks)
			ret = sfsi_db_sync(d->s, e);
		d->nosync = 0;
		sfsi_db_run_hooks(d, ret == SFS_OK);
		return ret;
	}
	sfsi_db_run_hooks(d, 0);
	/* a failed COMMIT may leave the transaction open: end it */
	abandon(d);
	return st;
}

void sfsi_db_rollback(struct db *d)
{
	if (d->batched) {
		(void)sfsi_batch_end(d, 0, NULL);
		return;
	}
	sfsi_db_run_hooks(d, 0);
	if (d->pg) {
		sfsi_pg_rollback(d->pg);
		d->txn = 0;
		d->nosync = 0;
		return;
	}
	abandon(d);
}

int sfsi_db_in_txn(struct db *d)
{
	return d->txn;
}
