/*
 * The stage struct, shared by the staging (stage.c; its pipe in
 * stage_pipe.c, its followers in stage_follow.c, its directories in
 * staging.c) and the blob store (blob.c) that links finished stages into
 * blobs/.
 */
#ifndef SPEECHFS_STAGE_I_H
#define SPEECHFS_STAGE_I_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include "speechfs/stage.h"

struct pipe;

/* Slots of a pipe (stage_pipe.c): what a follower may read from memory. */
#define SFSI_PIPE_SLOTS 6
#define SFSI_PIPE_CHUNK (1 << 20)
/* sfs_stage.alone: not known before the begin looks (blob.c) */
#define SFSI_STAGE_LOOK 2

struct sfsi_stage_slot {
	int64_t seq; /* the slot's number in the pipe, from 0 */
	int64_t off; /* where its bytes are in the stage */
	size_t len;  /* 0: never filled */
};

struct sfs_stage {
	struct sfs_store *s;
	int fd;
	char path[4096];
	EVP_MD_CTX *md;
	int64_t size;
	int64_t limit;
	int64_t synced;	   /* writeback started up to here */
	int64_t written;   /* in the file (size less what the pipe holds) */
	int64_t dropped;   /* written back and out of the cache below */
	struct pipe *pipe; /* writer and hasher threads; NULL: inline */
	int random;	   /* written out of order: hash at finish */
	int hashed;	   /* sha valid, no more writes */
	int finished;	   /* hashed and on disk (fsync) */
	int linked;	   /* bytes in the blob backend, commit not seen */
	int inlined;	   /* bytes in the database's row: file spare */
	int64_t linked_tenant;
	char sha[65];
	/*
	 * The bytes' CRC32C, computed beside the SHA-256 (valid once
	 * hashed); crc_only: no SHA-256 at all (a remote mount's stage when
	 * its server answers an upload with the CRC32C of what it got: the
	 * check of what was sent needs no more).
	 */
	uint32_t crc;
	int crc_only;
	/*
	 * Set by sfsi_blob_stage_prepare, so that the begin and the
	 * reference decide alike: blobs.inline_max read once, and whether
	 * the reference waits for the backend (bytes outside the row: its
	 * own, or those of the row it dedupes against). SFSI_STAGE_LOOK:
	 * small bytes, the row they may dedupe against looked at by the
	 * begin, in its transaction (that of prep_tenant).
	 */
	int prepared;
	int64_t inline_max;
	int alone;
	int64_t prep_tenant;

	/*
	 * A sequential stage can be followed as it is written (the S3
	 * backend sends it while it is received): fwritten bytes are in the
	 * file, in order (for a memory follower, in the file or in the
	 * pipe's slots handed over); fend says no more will come.
	 */
	pthread_mutex_t fmu;
	pthread_cond_t fcv;
	int64_t fwritten;
	int fend;
	int fcomplete; /* fend because it was hashed in order: all there is */
	int stream_tried;
	void *stream; /* the blob backend's (or the remote store's), or NULL */
	/*
	 * A remote stream in a resumable upload (remote_parts.c) frees the
	 * file's pages the server holds durably: [0, freed) of the file is
	 * holes (punched, the file's size kept); ffile: bytes the writer
	 * has put in the file (in order); whole: nothing is freed any more
	 * (the stage is read or turned random). Under fmu.
	 */
	int64_t ffile;
	int64_t freed;
	int whole;
	/*
	 * fring: the pipe keeps the stream's window in its memory (a ring,
	 * stage_pipe.c) and writes a slot to the file only when it must
	 * (the ring needs it again before the server freed it, the file is
	 * read, the pipe ends); freed may then pass ffile: bytes the server
	 * holds durably never went to the file at all (holes).
	 */
	int fring;
	/*
	 * The writer's window (remote_stream.c, with a session): an append
	 * that would put more than `window` bytes of the file above `freed`
	 * waits (sfs_stage_window_wait) while the stream goes on; one that
	 * sees neither freed nor fdone move for window_s seconds ends the
	 * window (0: no bound). *wstop set (the front end stops:
	 * sfsi_remote_stop_flag, or NULL): no write waits (the window
	 * stays, each wait is skipped). Under fmu.
	 */
	int64_t window;
	int window_s;
	const int *wstop;
	/*
	 * The follower reads what the pipe holds from its memory
	 * (sfsi_stage_follow_read) while they are there, and the file for
	 * what the pipe filled again before it read it: while it follows,
	 * the file's pages stay in the page cache, unsynced (stage.c,
	 * writeback). fmem is the pipe's memory
	 * (NULL: none), fslot[i] what slot i holds, fhead the number of
	 * slots handed over, ffill the number of the slot the filler may be
	 * writing, fpin the slot a follower copies from (-1: none); all under
	 * fmu.
	 */
	int follow_mem;
	int64_t fdone; /* what the follower has read */
	const char *fmem;
	struct sfsi_stage_slot *fslot; /* fnslots of them, the pipe's */
	unsigned fnslots;
	int64_t fhead;
	int64_t ffill;
	int64_t fpin;
	char target[40]; /* sfs_stage_set_target's file id, or "" */
	unsigned target_flags;

	/*
	 * A resumable upload's stage (upload.c): its file is the session's,
	 * synced and its offset recorded (durable) every
	 * SFS_UPLOAD_SYNC_BYTES as the writer writes it; keep_file: the file
	 * outlives the stage (the session goes on). NULL for other stages.
	 */
	struct sfsi_upload *upload;
	int64_t durable;
	int keep_file;
};

/*
 * A stage over an existing file (a session's), open as fd (read-write,
 * locked by upload.c: the stage takes fd, closed with it, even on
 * failure), cut to `off` bytes, which are hashed first unless md is given
 * (their SHA-256 state, copied, and crc their running CRC32C): appends go
 * after them (sfs_stage_free unlinks the file unless keep_file is set).
 */
enum sfs_status sfsi_stage_open_at(struct sfs_store *s, const char *path,
				   int fd, int64_t off, const EVP_MD_CTX *md,
				   uint32_t crc, struct sfs_stage **out,
				   struct sfs_err *e) SFS_MUST_CHECK;
/*
 * upload.c's side of a session's stage: `written` moved (the thread that
 * writes the file: sync and record when due); `size` moved (the
 * receiving thread).
 */
void sfsi_upload_written(struct sfs_stage *st);
void sfsi_upload_received(struct sfs_stage *st);

/*
 * Wait until `want` bytes are in the stage's file, or no more will come,
 * or *cancel is set (sfsi_stage_follow_wake wakes the waiters); returns
 * how many are there. *end (may be NULL): no more will come.
 */
int64_t sfsi_stage_follow(struct sfs_stage *st, int64_t want, int *end,
			  const int *cancel);
void sfsi_stage_follow_wake(struct sfs_stage *st);
/*
 * Up to len bytes of the stage from off (below what sfsi_stage_follow
 * returned) into buf: from the pipe's memory while a slot still holds
 * them, else from the file. One follower at a time. The bytes copied, or
 * -1 (errno) when the file cannot be read.
 */
ssize_t sfsi_stage_follow_read(struct sfs_stage *st, void *buf, size_t len,
			       int64_t off);
/*
 * The follower reads no more (its request ended): the stage's file is
 * written back and dropped from the page cache as any stage's (follow_mem
 * off).
 */
void sfsi_stage_follow_detach(struct sfs_stage *st);
/* 1 once the stage was hashed in order: the follower has all of it. */
int sfsi_stage_complete(struct sfs_stage *st);

/*
 * The writer's side (stage.c, stage_pipe.c; stage_follow.c): `written` bytes
 * are in the file, `end`: no more will come. The pipe's memory mem shown to
 * followers (slots_open) and taken back once no follower copies from it
 * (slots_close); slot i handed to the pipe's workers as number seq,
 * holding [off, off + len); slot i about to be filled again as number
 * seq, once no follower copies from it (slot_reusable: waits for a
 * memcpy, never for a follower to read: one that lags reads the file).
 * follower_at: what the memory follower has read (it may still read the
 * file from there), INT64_MAX when none reads any more.
 */
void sfsi_stage_followers(struct sfs_stage *st, int64_t written, int end);
void sfsi_stage_slots_open(struct sfs_stage *st, const char *mem,
			   struct sfsi_stage_slot *slots, unsigned n);
void sfsi_stage_slots_close(struct sfs_stage *st, const char *mem);
void sfsi_stage_slot_handed(struct sfs_stage *st, unsigned i, int64_t seq,
			    int64_t off, size_t len);
void sfsi_stage_slot_reusable(struct sfs_stage *st, unsigned i, int64_t seq);
int64_t sfsi_stage_follower_at(struct sfs_stage *st);

/*
 * The stage's pipe (stage_pipe.c), for big sequential stages: start the
 * writer and hasher threads (on failure the stage just stays inline;
 * ring > 0: a remote stream's window, kept in that many bytes of memory,
 * see fring);
 * append (the pipe's first failure, once the bytes are handed over);
 * sync: everything handed over is in the file (hashing may go on); end:
 * back to inline, everything written and hashed, the threads joined,
 * st->md holding the hash of all bytes so far (before any other use of
 * the file: pwrite, truncate, finish, free; SFS_OK without a pipe).
 */
void sfsi_stage_pipe_start(struct sfs_stage *st, int64_t ring);
enum sfs_status sfsi_stage_pipe_write(struct sfs_stage *st, const char *data,
				      size_t len,
				      struct sfs_err *e) SFS_MUST_CHECK;
/*
 * 1 when a pipe_sync would write more than the plain pipe's slots to
 * the file (a ring holding its window; the caller writes the stage).
 */
int sfsi_stage_pipe_unwritten(struct sfs_stage *st);
enum sfs_status sfsi_stage_pipe_sync(struct sfs_stage *st,
				     struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfsi_stage_pipe_end(struct sfs_stage *st, struct sfs_err *e);
/*
 * The stage's file cut to size (ftruncate), its pipe ended first as by
 * sfsi_stage_pipe_end, but the slots the cut would take are not written
 * (a session's stage writes them all). On failure the stage is as after
 * sfsi_stage_pipe_end.
 */
enum sfs_status sfsi_stage_pipe_cut(struct sfs_stage *st, int64_t size,
				    struct sfs_err *e) SFS_MUST_CHECK;
/*
 * A remote stream's stage at its hash (sfsi_stage_hash_held): every byte
 * handed over is hashed, but a ring's unwritten slots stay in its memory
 * (its writer goes on leaving out what the server frees) while the
 * stream waits for the server's answer: the server that answers holds
 * them, and the stage then goes (sfsi_stage_pipe_discard). Whoever
 * reads the stage's file before (a resume, a whole PUT) ends the pipe
 * first (sfsi_stage_pipe_end: they go to the file). Other pipes end.
 */
enum sfs_status sfsi_stage_pipe_hold(struct sfs_stage *st,
				     struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The stage goes (sfs_stage_free, its file with it): its pipe ends
 * without writing what the file has not got.
 */
void sfsi_stage_pipe_discard(struct sfs_stage *st);
/*
 * How long a ring kept as a spare stays unused before it is freed
 * (stage_pipe.c; tests shorten it), and whether one is kept now.
 */
extern int sfsi_stage_ring_idle_ms;
int sfsi_stage_ring_spared(void);
/*
 * For the pipe's writer (stage.c): len bytes at off (-1: at the file's
 * position) into fd, all of them or a failure; the writeback of what is
 * written (drop: and its pages dropped once on the disk).
 */
enum sfs_status sfsi_stage_write_all(int fd, const void *data, size_t len,
				     int64_t off,
				     struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_stage_writeback(struct sfs_stage *st, int drop);

/* Hash the stage if not yet done (no more writes after it). */
enum sfs_status sfsi_stage_hash(struct sfs_stage *st,
				struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The same, its pipe held (sfsi_stage_pipe_hold) instead of ended: for a
 * remote stream's commit (remote_write.c), which ends it before it reads
 * the file.
 */
enum sfs_status sfsi_stage_hash_held(struct sfs_stage *st,
				     struct sfs_err *e) SFS_MUST_CHECK;

/* The stage's commit happened: nothing to undo, the stage file goes. */
void sfsi_stage_done(struct sfs_stage *st);

/*
 * Make this process's staging directory under root (a local store's
 * STORE/staging, a remote store's CACHE/staging) and hold its lock.
 */
enum sfs_status sfsi_staging_open(struct sfs_store *s, const char *root,
				  struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_staging_close(struct sfs_store *s);
/* The store's spare stage files closed (stage.c; staging.c's close). */
void sfsi_stage_spares_close(const struct sfs_store *s);

/*
 * Clean the staging directories of processes that died (store open); a
 * named stage whose commit never happened leaves an orphan blob file,
 * which goes too.
 */
enum sfs_status sfsi_staging_recover(struct sfs_store *s,
				     struct sfs_err *e) SFS_MUST_CHECK;
/*
 * Remove the staging directories under root of processes that died
 * (their lock free), after giving each named stage's name to named (may
 * be NULL). -1 with errno when root cannot be read.
 */
int sfsi_staging_sweep(const char *root,
		       void (*named)(void *arg, const char *name), void *arg);

/*
 * The stage's bytes went to the blob backend for a commit that did not
 * happen: remove them unless a row names them (blob.c).
 */
void sfsi_blob_unlink_uncommitted(struct sfs_stage *st);

/* Is blob (tenant, sha) being committed by a live process right now? */
int sfsi_staging_in_flight(struct sfs_store *s, int64_t tenant,
			   const char *sha);

/* How many other processes have the store open right now. */
int sfsi_staging_others(struct sfs_store *s);
/*
 * How many staging directories under root live processes hold (their
 * lock taken), leaving out the one whose path begins with mine (NULL:
 * none).
 */
int sfsi_staging_held(const char *root, const char *mine);

#endif
