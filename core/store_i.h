/* The store handle's insides, shared by the core's modules. */
#ifndef SPEECHFS_STORE_I_H
#define SPEECHFS_STORE_I_H

#include <pthread.h>
#include <stdint.h>
#include "speechfs/job.h"
#include "job_i.h"
#include "speechfs/store.h"

#define DB_POOL_MAX 32

struct db;
struct sfsi_blob_backend;
struct sfsi_keycache;

struct sfsi_store_ops;

struct sfs_store {
	/* a remote store's table and state (remote_i.h), NULL when local */
	const struct sfsi_store_ops *ops;
	void *remote;
	char *dir;	     /* the store directory */
	char *blob_dir;	     /* dir/blobs */
	char *staging_dir;   /* dir/staging/<this process> */
	int staging_lock_fd; /* flock held while open */
	struct sfs_config cfg;
	/* where blob bytes live (blob_i.h), chosen at open */
	const struct sfsi_blob_backend *blob_be;
	void *blob_state;
	unsigned char secret[32]; /* JWT / signed-URL key */
	int64_t origin;		  /* tags the changes of this handle */
	int keep_dirs; /* sfs_store_keep_dirs: emptied directories stay */
	/* resumable uploads (upload.c): dir/staging/.uploads, our id there */
	char *upload_dir;
	char upload_node[17];
	void (*upload_notify)(void *arg, const char *upload_id);
	void *upload_notify_arg;

	/* group commit (db_txn.c): commits made without syncing, and synced */
	pthread_mutex_t sync_mu;
	pthread_cond_t sync_cv;
	uint64_t sync_committed, sync_done;
	int sync_running;
	int sync_err; /* errno of a failed WAL sync: sticky (see db_txn.c) */
	int wal_fd;
	/*
	 * One write transaction of this process at a time (db_txn.c): its
	 * threads queue here instead of polling SQLite's write lock.
	 */
	pthread_mutex_t write_mu;
	pthread_cond_t write_cv;
	int write_busy;
	pthread_t write_owner;
	int write_wait_ms; /* the turn's wait (write_turn); 0: default */
	/*
	 * Group commit of transactions (db_txn.c): the process's write
	 * transactions run on one connection, grp_db, each a savepoint of
	 * the group's transaction, which the last of them commits; guarded
	 * by write_mu.
	 */
	pthread_cond_t grp_cv;	    /* threads waiting to join a group */
	pthread_cond_t grp_done_cv; /* members waiting for their group's end */
	struct db *grp_db;
	struct sfsi_grp_ticket *grp_tickets; /* members done, not committed */
	int grp_open;	   /* grp_db holds the group's transaction */
	int grp_kept;	   /* members whose changes it holds */
	int grp_members;   /* members it has had */
	int grp_wait;	   /* threads waiting to join */
	int plain_wait;	   /* threads waiting for a turn of their own */
	int grp_ckpt;	   /* the group's commit left a checkpoint due */
	int grp_hold_ms;   /* a group's longest time (t_sync); 0: default */
	int64_t grp_since; /* when it began (sfs_mono_ns) */
	int64_t grp_commits, grp_joined; /* groups committed, members in them */

	/* batched commits (db_batch.c): batch_mu guards these */
	pthread_mutex_t batch_mu;
	pthread_cond_t batch_cv;   /* the connection's users; CLOCK_MONOTONIC */
	pthread_cond_t batch_tick; /* the batcher alone; CLOCK_MONOTONIC */
	struct db *batch_db;	   /* the one connection while batching */
	pthread_t batch_owner;	   /* the thread using it */
	int batch_depth;	   /* its nested sfsi_db_get calls; 0: free */
	int batch_want;		   /* committers waiting for the connection */
	int batch_open;		   /* batch_db holds the batch's transaction */
	int batch_dirty; /* commits since the last batch commit/sync */
	int batch_lost;	 /* a batch was rolled back: sticky error */
	int batch_ms, batch_stop, batch_thread_on;
	int batch_hold_ms;   /* the longest window (batch_due); 0: default */
	int64_t batch_since; /* when the window began (sfs_mono_ns) */
	int64_t batch_gap;   /* no new batch before (batch_pause), or 0 */
	/* the batcher's waits: 1 asleep without a window, 2 asleep until
	 * the window's end, 0 awake; and how often it woke (t_sync) */
	int batch_asleep;
	int64_t batch_wakes;
	pthread_t batch_thread;
	int ckpt_due; /* a batch's checkpoint waits for the batcher (atomic) */

	/* recent API keys' actors, valid under *auth_gen (keycache.c) */
	struct sfsi_keycache *keycache;
	uint64_t *auth_gen;    /* STORE/auth.gen, mapped shared */
	uint64_t *data_gen;    /* its second word: bumped after every commit */
	uint64_t *gen_waiters; /* its third: processes' threads waiting on it */
	uint64_t *gen_mem;  /* the three words, when not mapped (PostgreSQL) */
	int gen_pg;	    /* PostgreSQL: the listener drives the caches */
	int64_t gen_domain; /* PostgreSQL: auth.gen's number (keycache.c) */
	int gen_live; /* PostgreSQL: 1 while the listener hears (atomic) */

	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	struct db *pool_free;
	int pool_n; /* connections made */
	/*
	 * One more, kept for a thread that may not wait (sfs_thread_nowait:
	 * the mount's reading thread) while changes hold every other one
	 * waiting for the database's write lock; in use: spare_busy.
	 */
	struct db *pool_spare;
	int spare_busy;

	/* jobs: the kinds registered at open, and the janitor's chores */
	struct sfsi_job_kind kinds[SFS_JOB_KIND_MAX];
	void (*chores[SFSI_CHORES_MAX])(struct sfs_store *s);
	int nchores;
	void (*often)(struct sfs_store *s); /* sfsi_janitor_often */
	pthread_mutex_t work_mu;
	pthread_cond_t work_cv;
	pthread_t *workers;
	int nworkers;
	int stopping;
	int kicked;
	pthread_t janitor;
	int janitor_running;

	/* PostgreSQL: what other processes NOTIFY (db_listen.c's listener) */
	pthread_mutex_t note_mu;
	pthread_cond_t note_cv;
	pthread_t note_th;
	int note_state; /* 0 not started, 1 running, 2 cannot start */
	int note_stop;
	int note_pipe[2];
	uint64_t notes, notes_seen; /* writes heard (and wake-ups) */
	int note_efd; /* written per write heard (sfs_store_change_fd) */
	int note_pid; /* the listening connection's server pid, 0: none */
};

/* Write STORE/db.url (cfg's db.url and db.schema), mode 0600; it must
 * not exist yet. */
enum sfs_status sfsi_store_record_db(const char *dir,
				     const struct sfs_config *cfg,
				     struct sfs_err *e);

/*
 * The origin the changes of the calling thread carry: the one set by
 * sfs_store_origin_set (a client's, for one request), else `own` (the
 * store handle's).
 */
int64_t sfsi_origin_now(int64_t own);

/*
 * Whether a directory emptied by the calling thread's call on s stays:
 * s's own mode (sfs_store_keep_dirs) or the thread's, for one request
 * (sfs_store_keep_dirs_here).
 */
int sfsi_keep_dirs(const struct sfs_store *s);

#endif
