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
	rc = sqlite3_exec(db_live(d)->h, sql, NULL, NULL, NULL);
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
 * Which file fd or path is, asked without its times: a stat that asks
 * them marks them seen (Linux 6.13's multigrain timestamps), and the
 * next write of the file then stamps it with the fine clock, not the
 * 4 ms tick, so every commit changed the WAL's mtime and each fdatasync
 * also wrote its inode's block (3.3 device writes per sync against 2.7).
 */
static int file_id(int fd, const char *path, struct statx *x)
{
	return statx(fd, path, path[0] ? 0 : AT_EMPTY_PATH, STATX_INO, x);
}

/*
 * The WAL's fd, (re)opened when the file is another one (sync_mu held);
 * -errno when there is none (-ENOENT: nothing to sync).
 */
static int wal_fd(struct sfs_store *s)
{
	char path[4096];
	struct statx a, b;

	snprintf(path, sizeof(path), "%s/speechfs.db-wal", s->dir);
	if (file_id(AT_FDCWD, path, &a) < 0)
		return -errno;
	if (s->wal_fd >= 0 && file_id(s->wal_fd, "", &b) == 0 &&
	    a.stx_ino == b.stx_ino && a.stx_dev_major == b.stx_dev_major &&
	    a.stx_dev_minor == b.stx_dev_minor)
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

enum sfs_status sfsi_db_begin_immediate(struct db *d, struct sfs_err *e)
{
	int rc;

	if (!sfsi_nowait())
		return sfsi_db_txn_stmt(d, "BEGIN IMMEDIATE", e);
	sqlite3_busy_timeout(d->h, 0);
	rc = sqlite3_exec(d->h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	sqlite3_busy_timeout(d->h, d->s ? d->s->cfg.busy_timeout_ms
					: SFSI_DB_BUSY_MS);
	if ((rc & 0xff) == SQLITE_BUSY) {
		sfsi_would_wait(e, "the database's write lock");
		return SFS_WOULD_WAIT;
	}
	return sfsi_db_rc_status(d->h, rc, e, "begin");
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
 * consumed the signal meant for the next one. A thread that may not wait
 * (sfs_thread_nowait: the mount's reading thread, when a listing pins
 * the suffixes of its clashing names) waits neither for the turn nor for
 * SQLite's lock: its transaction is refused before it begins (review s16
 * F9: another process holding the lock held every request of the mount
 * for the busy timeout), and a worker begins the call again.
 * PostgreSQL locks rows, not the database: no turn there.
 *
 * Group commit of transactions. The turn's transactions run on one
 * connection of the store, grp_db, one after the other, each a savepoint
 * of one transaction, the group's: a transaction that ends while others
 * wait for the turn leaves its changes in the group and hands the turn
 * on; the last one (no one waiting, or the group full) commits the group
 * for all of them; they return from their commit once it is made, and
 * those that sync share the fdatasync after it. Four writers' closes
 * wrote the pages they share (the file table's and its indexes' last
 * pages, the change feed, the tenant's row, the directory) once each,
 * and each pool connection read them back from the WAL after another's
 * commit; now a group writes them once, and grp_db's page cache stays
 * warm. A lone transaction costs what it did: it begins the group's
 * transaction itself (no savepoint) and commits it. What a caller sees
 * is unchanged: its commit returns once its changes are committed (and
 * synced, unless nosync), or fails, changing nothing; a commit of the
 * group that fails fails every member's. A group ends after GRP_MAX
 * members or GRP_HOLD_MS (other processes wait for SQLite's lock
 * meanwhile), and as soon as a thread waits for a turn of its own.
 * Only a connection with no read under way joins (a transaction begun
 * while a statement of its connection still reads, fsck's loops, runs
 * on its connection, taking a turn of its own, as before).
 */
#define TURN_WAIT_MS 30000
#define GRP_MAX 32
#define GRP_HOLD_MS 50

#define MS_NS 1000000 /* nanoseconds in a millisecond */

/* A member done, waiting for its group's end (on its stack). */
struct sfsi_grp_ticket {
	struct sfsi_grp_ticket *next;
	enum sfs_status st;
	int done;
};

/* The turn is given back (write_mu held): wake one who may take it. */
static void turn_free(struct sfs_store *s)
{
	s->write_busy = 0;
	if (s->grp_open) {
		/* handed on inside the group: only a member may take it */
		pthread_cond_signal(&s->grp_cv);
		return;
	}
	if (s->plain_wait)
		pthread_cond_signal(&s->write_cv);
	if (s->grp_wait)
		pthread_cond_signal(&s->grp_cv);
}

static int turn_blocked(const struct sfs_store *s, int member)
{
	return s->write_busy || (!member && s->grp_open);
}

/*
 * Wait for the turn (write_mu held) until `until`: 0 when it may be
 * taken, -1 when the wait timed out (SQLite decides).
 */
static int turn_wait(struct sfs_store *s, int member,
		     const struct timespec *until)
{
	pthread_cond_t *cv = member ? &s->grp_cv : &s->write_cv;

	while (turn_blocked(s, member))
		if (pthread_cond_timedwait(cv, &s->write_mu, until) ==
			    ETIMEDOUT &&
		    turn_blocked(s, member))
			return -1;
	return 0;
}

/* Whether d's write transaction may run in a group. */
static int may_join(struct db *d)
{
	return d->h && !d->batched &&
	       sqlite3_txn_state(d->h, NULL) == SQLITE_TXN_NONE;
}

/*
 * Take the turn for d: 1 when d's transaction runs in the group (as its
 * first member when !s->grp_open), 0 when on d itself (with the turn,
 * d->turn, or without it: nested, or the wait timed out), -1 when the
 * thread may not wait (sfsi_nowait) and the turn is not free. `alone`:
 * never in a group (sfsi_db_begin_alone).
 */
static int write_turn(struct db *d, int alone)
{
	struct sfs_store *s = d->s;
	struct timespec until;
	int64_t ms;
	int member, got;

	if (d->pg || !s)
		return 0;
	ms = s->cfg.busy_timeout_ms > TURN_WAIT_MS ? s->cfg.busy_timeout_ms
						   : TURN_WAIT_MS;
	if (s->write_wait_ms)
		ms = s->write_wait_ms;
	sfs_deadline(&until, ms);
	pthread_mutex_lock(&s->write_mu);
	if (s->write_busy && pthread_equal(s->write_owner, pthread_self())) {
		pthread_mutex_unlock(&s->write_mu);
		return 0;
	}
	member = !alone && may_join(d);
	if (sfsi_nowait() && turn_blocked(s, member)) {
		pthread_mutex_unlock(&s->write_mu);
		return -1;
	}
	if (member)
		s->grp_wait++;
	else
		s->plain_wait++;
	got = turn_wait(s, member, &until) == 0;
	if (member)
		s->grp_wait--;
	else
		s->plain_wait--;
	if (got) {
		s->write_busy = 1;
		s->write_owner = pthread_self();
		d->turn = 1;
	}
	pthread_mutex_unlock(&s->write_mu);
	return got && member;
}

static void write_turn_end(struct db *d)
{
	struct sfs_store *s = d->s;

	if (!d->turn)
		return;
	d->turn = 0;
	pthread_mutex_lock(&s->write_mu);
	turn_free(s);
	pthread_mutex_unlock(&s->write_mu);
}

/* How a member's transaction began (d->grp_first). */
enum { GRP_SAVEPOINT = 0, GRP_FIRST = 1, GRP_NONE = 2 };

static enum sfs_status grp_end(struct db *d, int commit, struct sfs_err *e);

/*
 * Begin d's transaction in the group, the turn taken (write_turn): 0,
 * and *st its outcome (on failure the turn given back). A group
 * connection that cannot be made: 1, d's transaction runs on d (with
 * the turn).
 */
static int grp_begin(struct db *d, enum sfs_status *st, struct sfs_err *e)
{
	struct sfs_store *s = d->s;
	struct db *w;
	int first;

	pthread_mutex_lock(&s->write_mu);
	first = !s->grp_open;
	pthread_mutex_unlock(&s->write_mu);
	if (first && !s->grp_db) {
		if (sfsi_db_conn_new(s, &s->grp_db, NULL))
			return 1; /* grp_db is the turn's holder's alone */
		s->grp_db->grp = 1;
	}
	w = s->grp_db;
	*st = first ? sfsi_db_begin_immediate(w, e)
		    : sfsi_db_txn_stmt(w, "SAVEPOINT m", e);
	if (*st && first) {
		write_turn_end(d);
		return 0;
	}
	if (first)
		w->grp_lost = SFS_OK;
	pthread_mutex_lock(&s->write_mu);
	if (first) {
		s->grp_open = 1;
		s->grp_kept = 0;
		s->grp_members = 0;
		s->grp_since = sfs_mono_ns();
	}
	s->grp_members++;
	pthread_mutex_unlock(&s->write_mu);
	d->fw = w;
	d->grp_first = *st ? GRP_NONE : first ? GRP_FIRST : GRP_SAVEPOINT;
	d->txn = 1;
	if (*st) /* the group goes on, or ends, without this one */
		(void)grp_end(d, 0, NULL);
	return 0;
}

/*
 * A statement of a member failed on the group's connection w (its
 * turn's holder calls): when SQLite rolled the whole transaction back
 * for it (SQLITE_FULL, an I/O error, out of memory, in a statement
 * without a statement journal), its status is what the group's members
 * are told (a full disk is a full disk to each of them, not an
 * internal error).
 */
void sfsi_db_grp_failed(struct db *w, enum sfs_status st)
{
	if (st && !w->grp_lost && sqlite3_get_autocommit(w->h))
		w->grp_lost = st;
}

/* Reset what still runs on w: nothing of a member outlives its turn. */
static void reset_running(struct db *w)
{
	struct sqlite3_stmt *q = NULL;

	while ((q = sqlite3_next_stmt(w->h, q)))
		if (sqlite3_stmt_busy(q))
			sqlite3_reset(q);
}

/*
 * The group's end for its members done (write_mu held); then the
 * checkpoint its commit left due (on_wal_commit), which they do not wait
 * for, still in the turn (grp_db is the turn's); then the turn is free.
 */
static void grp_settle(struct sfs_store *s, struct db *w, enum sfs_status st)
{
	struct sfsi_grp_ticket *t;

	for (t = s->grp_tickets; t; t = t->next) {
		t->st = st;
		t->done = 1;
	}
	s->grp_tickets = NULL;
	s->grp_open = 0;
	pthread_cond_broadcast(&s->grp_done_cv);
	if (s->grp_ckpt) {
		s->grp_ckpt = 0;
		pthread_mutex_unlock(&s->write_mu);
		(void)sqlite3_wal_checkpoint_v2(
			w->h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&s->write_mu);
	}
	turn_free(s);
}

static enum sfs_status grp_error(enum sfs_status st, struct sfs_err *e)
{
	switch (st) {
	case SFS_BUSY:
		return sfs_errf(e, st, SFS_R_NONE,
				"the store is busy, try again");
	case SFS_NO_SPACE:
		return sfs_errf(e, st, SFS_R_NONE,
				"no space left on the store's disk");
	case SFS_NOMEM:
		return sfs_errf(e, st, SFS_R_NONE, "out of memory");
	default:
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"internal database error");
	}
}

/*
 * End d's member of the group: its changes kept (commit) or undone. It
 * hands the turn on when another member waits and the group may grow,
 * and then waits for the group's end; else it ends the group: COMMIT
 * when a member's changes are in it, else ROLLBACK. The member's own
 * outcome: a failed commit of the group fails it too.
 */
static enum sfs_status grp_end(struct db *d, int commit, struct sfs_err *e)
{
	struct sfs_store *s = d->s;
	struct db *w = d->fw;
	struct sfsi_grp_ticket me = { NULL, SFS_OK, 0 };
	enum sfs_status st = SFS_OK, gst = SFS_OK, why;
	int kept = 0, undone = 1, lost, more, hold;

	if (commit && d->grp_first == GRP_SAVEPOINT) {
		st = sfsi_db_txn_stmt(w, "RELEASE m", e);
		kept = !st;
	} else if (commit && d->grp_first == GRP_FIRST) {
		kept = 1;
	}
	if (!kept && d->grp_first == GRP_SAVEPOINT) {
		undone = sfsi_db_txn_stmt(w, "ROLLBACK TO m", NULL) == SFS_OK;
		if (undone)
			(void)sfsi_db_txn_stmt(w, "RELEASE m", NULL);
	}
	reset_running(w);
	d->fw = NULL;
	d->txn = 0;
	d->turn = 0;
	lost = sqlite3_get_autocommit(w->h);
	pthread_mutex_lock(&s->write_mu);
	if (lost || !undone || (!kept && d->grp_first == GRP_FIRST)) {
		/* SQLite ended the group's transaction (an I/O error, a
		 * full disk), its first member undid it, or a member's
		 * changes could not be undone alone (they must not be
		 * committed): nothing to commit; what the members done had
		 * is lost, for the reason the statement that ended it had */
		why = lost && w->grp_lost ? w->grp_lost : SFS_IO;
		if (!sqlite3_get_autocommit(w->h)) {
			pthread_mutex_unlock(&s->write_mu);
			(void)sfsi_db_txn_stmt(w, "ROLLBACK", NULL);
			pthread_mutex_lock(&s->write_mu);
		}
		if (lost && s->grp_tickets)
			sfs_error("db", "a group of commits was rolled back");
		grp_settle(s, w, why);
		pthread_mutex_unlock(&s->write_mu);
		if (commit && (kept || lost))
			st = grp_error(why, e);
		return st;
	}
	s->grp_kept += kept;
	hold = s->grp_hold_ms ? s->grp_hold_ms : GRP_HOLD_MS;
	more = s->grp_wait && !s->plain_wait && s->grp_members < GRP_MAX &&
	       sfs_mono_ns() - s->grp_since < (int64_t)hold * MS_NS;
	if (more) {
		if (kept) {
			me.next = s->grp_tickets;
			s->grp_tickets = &me;
		}
		turn_free(s);
		while (kept && !me.done)
			pthread_cond_wait(&s->grp_done_cv, &s->write_mu);
		pthread_mutex_unlock(&s->write_mu);
		if (kept && me.st)
			st = grp_error(me.st, e);
		return st;
	}
	more = s->grp_kept > 0;
	pthread_mutex_unlock(&s->write_mu);
	if (more) {
		gst = sfsi_db_txn_stmt(w, "COMMIT", kept ? e : NULL);
		if (gst && !sqlite3_get_autocommit(w->h))
			(void)sfsi_db_txn_stmt(w, "ROLLBACK", NULL);
		if (!gst)
			sfsi_db_sync_note_commit(s);
	} else {
		(void)sfsi_db_txn_stmt(w, "ROLLBACK", NULL);
	}
	pthread_mutex_lock(&s->write_mu);
	if (!gst && more) {
		s->grp_commits++;
		s->grp_joined += s->grp_kept;
	}
	grp_settle(s, w, gst);
	pthread_mutex_unlock(&s->write_mu);
	if (kept && !st)
		st = gst;
	return st;
}

/*
 * A begin on a connection already in a transaction (outside a batch,
 * whose levels nest) is the caller's bug: refused before the turn is
 * touched. Left to SQLite, the BEGIN failed and its cleanup gave the
 * turn away while the outer transaction went on (on the group's
 * connection: two threads on one connection); on PostgreSQL the BEGIN
 * only warned, and a failed one rolled the outer transaction back.
 */
static enum sfs_status in_txn(struct sfs_err *e)
{
	sfs_error("db", "a transaction begun inside another (a bug)");
	return sfs_errf(e, SFS_IO, SFS_R_NONE,
			"internal error: a transaction is already open on"
			" this connection");
}

static enum sfs_status begin_write(struct db *d, int pg_kind, int alone,
				   struct sfs_err *e)
{
	enum sfs_status st;
	int turn;

	if (d->batched)
		return sfsi_batch_begin(d, 1, e);
	if (d->txn)
		return in_txn(e);
	if (d->pg) {
		/* the change rows' origin: set by sfsi_pg_begin */
		st = sfsi_pg_begin(d->pg, pg_kind, e);
	} else if ((turn = write_turn(d, alone)) < 0) {
		sfsi_would_wait(e, "the write turn");
		return SFS_WOULD_WAIT;
	} else if (turn && !grp_begin(d, &st, e)) {
		return st;
	} else {
		st = sfsi_db_begin_immediate(d, e);
		if (st)
			write_turn_end(d);
	}
	if (!st)
		d->txn = 1;
	return st;
}

enum sfs_status sfsi_db_begin(struct db *d, struct sfs_err *e)
{
	return begin_write(d, PG_BEGIN_WRITE, 0, e);
}

int sfsi_db_in_group(const struct db *d)
{
	return d->fw != NULL;
}

enum sfs_status sfsi_db_begin_alone(struct db *d, struct sfs_err *e)
{
	return begin_write(d, PG_BEGIN_WRITE, 1, e);
}

/*
 * The connections run at synchronous=NORMAL: a commit leaves the WAL
 * unsynced until sfsi_db_sync (or a checkpoint), and WAL recovery keeps a
 * prefix of commits, so that sync makes every earlier commit durable.
 * A transaction begun so is not synced at its commit.
 */
static enum sfs_status begin_nosync(struct db *d, int alone, struct sfs_err *e)
{
	enum sfs_status st = begin_write(d, PG_BEGIN_WRITE, alone, e);

	/* a batch's savepoints: the batcher syncs (and d->nosync would
	 * outlive them on the connection) */
	if (!st && !d->batched)
		d->nosync = 1;
	return st;
}

enum sfs_status sfsi_db_begin_nosync(struct db *d, struct sfs_err *e)
{
	return begin_nosync(d, 0, e);
}

enum sfs_status sfsi_db_begin_alone_nosync(struct db *d, struct sfs_err *e)
{
	return begin_nosync(d, 1, e);
}

enum sfs_status sfsi_db_begin_read(struct db *d, struct sfs_err *e)
{
	enum sfs_status st;

	if (d->batched)
		return sfsi_batch_begin(d, 0, e);
	if (d->txn)
		return in_txn(e);
	st = d->pg ? sfsi_pg_begin(d->pg, PG_BEGIN_READ, e)
		   : sfsi_db_txn_stmt(d, "BEGIN", e);

	if (!st)
		d->txn = 1;
	return st;
}

enum sfs_status sfsi_db_begin_rows(struct db *d, struct sfs_err *e)
{
	return begin_write(d, PG_BEGIN_ROWS, 0, e);
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

/*
 * hooks (a blob's bytes removed once its row is gone) run once the
 * commit is durable, never when its sync failed: a commit begun "nosync"
 * that has hooks syncs here (its caller syncs next anyway, and that finds
 * nothing left to sync)
 */
static enum sfs_status committed(struct db *d, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;

	if (!d->nosync || d->hooks)
		ret = sfsi_db_sync(d->s, e);
	d->nosync = 0;
	sfsi_db_run_hooks(d, ret == SFS_OK);
	return ret;
}

enum sfs_status sfsi_db_commit(struct db *d, struct sfs_err *e)
{
	enum sfs_status st;

	if (d->pg)
		return pg_commit(d, e);
	if (d->batched)
		return sfsi_batch_end(d, 1, e);
	if (d->fw) {
		st = grp_end(d, 1, e);
		if (!st)
			return committed(d, e);
		d->nosync = 0;
		sfsi_db_run_hooks(d, 0);
		return st;
	}
	st = sfsi_db_txn_stmt(d, "COMMIT", e);

	if (st == SFS_OK) {
		d->txn = 0;
		write_turn_end(d);
		sfsi_db_sync_note_commit(d->s);
		d->synced_changes = sqlite3_total_changes64(d->h);
		return committed(d, e);
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
	if (d->fw) {
		(void)grp_end(d, 0, NULL);
		d->nosync = 0;
		return;
	}
	abandon(d);
}

int sfsi_db_in_txn(struct db *d)
{
	return d->txn;
}
