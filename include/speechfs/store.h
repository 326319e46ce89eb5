/*
 * A store is one directory: speechfs.db (SQLite, WAL), blobs/ (immutable,
 * content-addressed files) and staging/ (writes in progress). A daemon and
 * any number of mounts may have one store open at once; correctness comes
 * from database transactions. A struct sfs_store is safe to use from many
 * threads at once.
 */
#ifndef SPEECHFS_STORE_H
#define SPEECHFS_STORE_H

#include <stdint.h>
#include "auth.h"
#include "err.h"

struct sfs_store;

/*
 * Options of the core, with defaults from sfs_config_init(). Front ends
 * read a configuration file of "key = value" lines and hand every key to
 * sfs_config_set(), which knows the core's keys (see README).
 */
struct sfs_config {
	int64_t retention_seconds; /* delete -> automatic purge (30 d) */
	int job_lease_seconds;	   /* a claim lasts this long unrenewed */
	int workers;		   /* job worker threads (0 = #cores) */
	int janitor_interval_ms;   /* how often the janitor looks */
	int64_t upload_expire_s;   /* an idle upload session lasts (1 d) */
	int sync_full;		   /* SQLite synchronous=FULL (1) */
	int64_t blob_inline_max;   /* blobs this small live in their row */
	int busy_timeout_ms;
	/*
	 * Metadata in PostgreSQL instead of STORE/speechfs.db: a libpq URL
	 * ("postgresql://…"), and the schema of the database that holds the
	 * store ("" = public). Recorded in STORE/db.url at init.
	 */
	char db_url[1024];
	char db_schema[64];

	/* listening audio (media) */
	int la_bitrate_kbps; /* 48 */
	int la_sample_rate;  /* 22050 */
	int la_channels;     /* 1 */
	int la_vbr;	     /* 0 = CBR */

	/* URI import */
	int64_t import_max_bytes;
	int import_connect_timeout_s;
	int import_timeout_s;
	int import_max_redirects;
	char import_allow[512]; /* hosts/CIDRs, comma-separated */
	char s3_endpoint[256];
	char s3_region[64];
	char s3_access_key[128];
	char s3_secret_key[128];
	int s3_path_style;

	/* JWTs: the longest lifetime accepted (exp - iat, or exp - now) */
	int64_t jwt_max_ttl_s; /* 86400 */

	/*
	 * The blob store (blob.h). Where blobs live is recorded in the store
	 * when first used; empty strings take the store's record, and a
	 * configuration naming another place is refused at open.
	 */
	char blob_backend[16];	    /* "local" | "s3" | "" */
	char blob_s3_endpoint[256]; /* "" = AWS_ENDPOINT_URL or AWS */
	char blob_s3_bucket[64];
	char blob_s3_prefix[256];
	char blob_s3_region[64];      /* "" = AWS_REGION or us-east-1 */
	char blob_s3_access_key[128]; /* "" = AWS_* or a credentials file */
	char blob_s3_secret_key[128];
	char blob_s3_credentials_file[512]; /* "" = ~/.aws/credentials */
	char blob_s3_profile[64];	    /* "" = AWS_PROFILE or default */
	char blob_s3_ca_file[512];
	int blob_s3_path_style;	   /* -1 = the store's record (1) */
	int blob_s3_part_size_mb;  /* multipart above this (16) */
	int blob_s3_parallel;	   /* parts in flight (4) */
	int blob_s3_block_size_mb; /* a read's Range GET (4) */
	int blob_s3_readahead;	   /* blocks ahead of a reader (8) */
	int blob_s3_connect_timeout_s;
	int blob_s3_timeout_s; /* a transfer stalled this long fails */
	int blob_s3_retries;
	int blob_s3_list_max_keys; /* keys per listing page (0: the store's) */
	char blob_cache_dir[512];  /* "" = STORE/cache */
	int64_t blob_cache_bytes;  /* the mount's block cache (1 GiB) */
	/* sign-in sessions: idle and absolute lifetimes */
	int64_t session_idle_s; /* 1800 */
	int64_t session_max_s;	/* 43200 */
};

void sfs_config_init(struct sfs_config *c);

/*
 * Set one option by its configuration-file name ("retention_seconds",
 * "listening.bitrate_kbps", "import.allow" ...). Unknown keys give
 * SFS_NOT_FOUND so a front end can try its own keys first.
 */
enum sfs_status sfs_config_set(struct sfs_config *c, const char *key,
			       const char *value,
			       struct sfs_err *e) SFS_MUST_CHECK;

/* Create a new store in `dir` (made if missing; must be empty of a store). */
enum sfs_status sfs_store_init(const char *dir,
			       struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The same with a configuration: with db.url, the metadata go to that
 * PostgreSQL database (its schema db.schema, made if missing, must not
 * hold a store yet) and STORE/db.url records where (mode 0600).
 */
enum sfs_status sfs_store_init_cfg(const char *dir,
				   const struct sfs_config *cfg,
				   struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Open a store, migrating its schema forward and removing staging files of
 * processes that died. `cfg` is copied; NULL means defaults.
 * Ownership: close with sfs_store_close().
 */
enum sfs_status sfs_store_open(const char *dir, const struct sfs_config *cfg,
			       struct sfs_store **out,
			       struct sfs_err *e) SFS_MUST_CHECK;
void sfs_store_close(struct sfs_store *s);

/*
 * VACUUM (ANALYZE) the store's tables after a bulk load (a fill; `db
 * migrate` does it itself), as after a restore: PostgreSQL plans by the
 * statistics, and until autovacuum's next analyze a freshly filled table
 * is planned as the small table it was; VACUUM sets the visibility map
 * that index-only scans need. On SQLite it does nothing (its
 * statements are planned without statistics, for the indexes they were
 * written for).
 */
enum sfs_status sfs_store_analyze(struct sfs_store *s,
				  struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Move a store's metadata from its speechfs.db into PostgreSQL (`url`, a
 * schema `schema` of its own, made if missing): every table copied in
 * chunks that commit one by one, counts and checksums compared table by
 * table, then STORE/db.url written and speechfs.db set aside
 * (speechfs.db.moved-to-postgresql). A run that stops, fails, or reaches
 * max_rows (> 0: rows to copy in this run) resumes where it stopped.
 * The store must not be in use (its SQLite write lock is held
 * throughout). SFS_BUSY: stopped at max_rows; SFS_CONFLICT: the schema
 * holds another store, or the store is in PostgreSQL already; SFS_IO
 * with r->table: that table differs after the copy (nothing switched).
 */
struct sfs_db_migrate_report {
	int64_t tables;	  /* tables copied */
	int64_t copied;	  /* rows copied by this run */
	int64_t rows;	  /* rows of the store (counted at the check) */
	int64_t verified; /* rows whose counts and checksums agree */
	int resumed;	  /* the target held part of the copy already */
	int complete;	  /* every row is in the target */
	int switched;	  /* the store now opens PostgreSQL */
	char table[32];	  /* the table that differs, if one does */
};
enum sfs_status sfs_db_migrate(const char *dir, const char *url,
			       const char *schema, int64_t max_rows,
			       struct sfs_db_migrate_report *r,
			       struct sfs_err *e) SFS_MUST_CHECK;

const struct sfs_config *sfs_store_config(const struct sfs_store *s);
const char *sfs_store_dir(const struct sfs_store *s);
/*
 * A file descriptor that becomes readable when changes may be waiting
 * for sfs_store_changes_by_others (an eventfd: read it to rearm): a
 * remote store's feed, or a PostgreSQL store's LISTEN (any process's
 * commit, and each time the listening connection is made again, when
 * what was said meanwhile is unknown). -1 for a store on SQLite (watch
 * its directory: every commit writes its WAL there).
 */
int sfs_store_change_fd(struct sfs_store *s);
/*
 * How a directory the API made (implicit: it exists while it holds
 * something) behaves when its last entry leaves through this handle
 * (a delete, a move out, the removal of its last subdirectory). By
 * default it vanishes with it, as the REST API has it. With on, it
 * stays, made explicit in the same transaction (as by sfs_dir_make),
 * until sfs_dir_remove: a directory of a file system does not vanish
 * when emptied, and the mount turns this on. A remote store's handle
 * asks its server for the same with each such call (keepDirs=true),
 * when the server offers it (SFS_REMOTE_KEEP_DIRS); else its server's
 * rule holds there (it vanishes).
 */
void sfs_store_keep_dirs(struct sfs_store *s, int on);
/*
 * The same for the calling thread's calls on any store handle, until it
 * sets 0: a daemon sets it for the length of one request whose client
 * asked for it (keepDirs=true), so that request's transaction keeps the
 * directories it empties and other requests keep the API's rule.
 */
void sfs_store_keep_dirs_here(int on);
/* Was it opened by sfs_store_open_url (remote.h)? */
int sfs_store_is_remote(const struct sfs_store *s);
/*
 * Whether processes of other machines may change the store's metadata
 * (db.url: PostgreSQL). A process learns of their commits by the
 * database's notice, a moment after they returned: what it keeps under
 * the store's generations (its caches) may be that moment late.
 */
int sfs_store_is_shared(const struct sfs_store *s);
/*
 * For a front end stopping that cannot wait longer: the statements this
 * handle's threads are waiting for in the database are cancelled, so
 * that those calls return (SFS_BUSY) instead of waiting for as long as
 * the database holds them (a lock held elsewhere, a long query; a server
 * that runs no more does not take the cancel: this call returns at once
 * all the same, the cancels being sent by threads of their own). Its job
 * workers are told to stop first (sfs_workers_stop still joins them): a
 * job cut short is left for a later claim, not failed. Only a store on
 * PostgreSQL waits so (SQLite's waits end at its busy timeout); elsewhere
 * it does nothing. The number of the store's sessions asked: those
 * waiting for a statement's answer (a session between statements is
 * left alone, so the store's next reads are not cut).
 */
int sfs_store_interrupt(struct sfs_store *s);
/* How the front end stops (sfs_store_stopping). */
enum sfs_store_stop {
	SFS_STORE_ENDED, /* its session ended (an unmount): calls go on */
	SFS_STORE_CUT	 /* it ends now (SIGTERM): waits for a server end */
};
/*
 * The front end is stopping. SFS_STORE_CUT (a mount's SIGTERM): every
 * call of a remote store that waits for its server gives up now, so that
 * it returns and the front end can end: a close that waits for its
 * server to resume an upload fails (SFS_IO) at once, a write waiting at
 * a stream's write window goes on without it (unbounded), and every
 * request in flight is cut off (none is begun after the cut): what a
 * close or fsync waits for (a stream, the create that starts a new
 * file's stream, a file's content sent whole at its close) — that close
 * fails (SFS_IO or SFS_UNAVAILABLE, "the mount is ending"), the file
 * stays as the server has it — and any other call's (a rename, an
 * xattr, a read of a block not cached: SFS_UNAVAILABLE). What is asked
 * after (whether a lost answer's commit happened, the release's and the
 * store's last try of a new file whose close failed, the end of an
 * upload session) still goes, each request bounded by 2 s without a byte
 * (the session's end: 2 s). SFS_STORE_ENDED (the mount's session ended:
 * an unmount): calls still running (a release's upload) go on as
 * before; only the last tries of new files are bounded so. Any thread;
 * more than once is harmless, and a cut after an end still cuts.
 */
void sfs_store_stopping(struct sfs_store *s, enum sfs_store_stop how);

/*
 * The data generation: changes after every commit to the store's
 * database, by any process of this version, with no query (a load from a
 * mapped counter). An answer made from what was read after the generation
 * was g is current while the generation is still g. 0 when unknown: then
 * nothing may be cached by it.
 */
uint64_t sfs_store_data_gen(struct sfs_store *s);

/*
 * Sleep until the data generation is no longer `gen` (a commit of any
 * process of this version), sfs_store_data_gen_wake is called, or
 * timeout_ms pass, whichever comes first; returns the generation then
 * (a futex on the shared counter: no polling). Without a generation it
 * sleeps the timeout and returns 0. Spurious returns are possible.
 */
uint64_t sfs_store_data_gen_wait(struct sfs_store *s, uint64_t gen,
				 int timeout_ms);
/* Wake every thread in sfs_store_data_gen_wait on this store. */
void sfs_store_data_gen_wake(struct sfs_store *s);

/*
 * A number that grows with every committed change of file metadata, in
 * any process. Front ends poll it to notice changes made elsewhere.
 */
enum sfs_status sfs_store_change_seq(struct sfs_store *s, int64_t *seq,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The origin the changes the calling thread commits carry, until it sets
 * another (0: the store handle's own): a daemon sets a client's for the
 * length of one request (the client's X-Speechfs-Origin), so the change
 * feed can tell that client which changes were its own. 1..INT64_MAX.
 */
void sfs_store_origin_set(int64_t origin);

/*
 * Changes after `since`: calls fn(arg, seq, file_ino, owner, dir) for each
 * (file_ino 0 for directory-only changes). Returns the last seq seen.
 * A remote store answers SFS_UNSUPPORTED: its feed leaves the store's own
 * changes out (sfs_store_changes_by_others).
 */
typedef void (*sfs_change_fn)(void *arg, int64_t seq, int64_t file_ino,
			      int64_t owner, const char *dir);
enum sfs_status sfs_store_changes(struct sfs_store *s, int64_t since,
				  sfs_change_fn fn, void *arg, int64_t *last,
				  struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The same without the changes made through this store handle (a mount
 * knows its own): *last still moves past them.
 */
enum sfs_status sfs_store_changes_by_others(struct sfs_store *s, int64_t since,
					    sfs_change_fn fn, void *arg,
					    int64_t *last,
					    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Make every commit of this store handle so far durable, with one sync
 * shared by the callers waiting at the time (group commit). Commits that
 * do not wait for the disk themselves (SFS_SET_NOSYNC, lazy creates) are
 * durable once it returns.
 */
enum sfs_status sfs_store_sync(struct sfs_store *s,
			       struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Batched commits, for bulk loads (a mount's -o commit=MS): from now on
 * the handle's transactions are savepoints of one transaction it keeps
 * open on a single connection, which a thread of its own commits and
 * syncs at most min(ms, 1000) ms after it began (one WAL write of the
 * pages the batch shares: indexes, the change feed, the tenant's row).
 * Nothing of a batch is durable, or seen by other processes, before its
 * commit; a crash (of the machine or of this process) within the window
 * loses that batch whole, never part of it. Other processes' writes wait
 * for the batch's commit (within their busy timeout). sfs_store_sync()
 * commits the open batch and syncs at once. The handle's threads share
 * the connection (one at a time). PostgreSQL and remote stores commit as
 * before (their commits are durable; PostgreSQL groups concurrent commits
 * itself). 0 ms stops batching.
 */
enum sfs_status sfs_store_batch(struct sfs_store *s, int ms,
				struct sfs_err *e) SFS_MUST_CHECK;
/* Whether the handle batches its commits now (not on PostgreSQL, remote). */
int sfs_store_batching(struct sfs_store *s);
/*
 * Whether a write of this handle, made now, commits without waiting: its
 * batch is open (sfs_store_batch: the handle holds the database's write
 * lock, so no other process and no pause between batches to wait for,
 * and a commit does not sync), no thread of the handle uses or waits for
 * the batch's connection, and a content of content_size bytes (-1: no
 * content) is kept in its row (blobs.inline_max: no blob file to sync).
 * For a thread that must not wait (the mount's reading thread); a hint
 * only, as another thread may take the connection right after.
 */
int sfs_store_write_quick(struct sfs_store *s, int64_t content_size);
/*
 * Whether a new empty file's create made now (sfs_file_create, spec.lazy,
 * no content) returns without waiting: as sfs_store_write_quick(s, -1)
 * on a local store; on a remote store whose server takes idKey while its
 * change feed follows the server (the file is kept in the handle until
 * its first commit: no request, only the name's check in the listing,
 * kept with no time bound while the feed follows). A hint, as above.
 */
int sfs_store_create_quick(struct sfs_store *s);
/*
 * While on, a call of this thread that would send a request to a server
 * (a remote store's) fails at once with SFS_WOULD_WAIT, having changed
 * nothing: the mount's reading thread answers what the caches know and
 * gives the rest to a worker, which calls again with it off. A local
 * store never waits for a server. Per thread; off by default. Returns
 * whether a call was refused since it was last turned on.
 */
int sfs_thread_nowait(int on);

/* Space of the store's filesystem, in bytes. */
enum sfs_status sfs_store_space(struct sfs_store *s, uint64_t *total,
				uint64_t *avail,
				struct sfs_err *e) SFS_MUST_CHECK;

/* The space a user has: the store's, as the tenant's quotas cap it. */
struct sfs_space {
	uint64_t total_bytes; /* the byte quota, or the disk's size */
	uint64_t used_bytes;  /* the tenant's bytes */
	uint64_t free_bytes;  /* total - used */
	uint64_t avail_bytes; /* what can still be stored (disk and quota) */
	uint64_t total_files; /* the file quota, or used + what is free */
	uint64_t free_files;
};

/* The actor's space (statfs of the mount, df). */
enum sfs_status sfs_store_space_of(struct sfs_store *s,
				   const struct sfs_actor *a,
				   struct sfs_space *out,
				   struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Purge every deleted file whose purgeAt has passed (and listening audio
 * likewise). Returns how many were purged in *n (may be NULL).
 */
enum sfs_status sfs_store_janitor_run(struct sfs_store *s, int *n,
				      struct sfs_err *e) SFS_MUST_CHECK;

#endif
