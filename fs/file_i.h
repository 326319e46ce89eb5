/*
 * What fs/file.c (opens, reads, writes, commits) and fs/ofile.c (the
 * table of open files) share: a file with open handles and its handles.
 * A file's fields and its handles' are under its lock (of->lock).
 */
#ifndef SPEECHFS_FS_FILE_I_H
#define SPEECHFS_FS_FILE_I_H

#include <pthread.h>
#include <stdint.h>
#include "fs_i.h"

struct sfs_blob;
struct sfs_stage;

/* A file with open handles. */
struct ofile {
	int64_t ino;
	char id[SFS_ID_SIZE];
	int refs; /* handles */
	pthread_mutex_t lock;
	struct fh *handles;
	struct fh *writer; /* the last handle to change its version */
	int lazy;	   /* created here, the row not yet durable */
	uint64_t version;  /* commits made through the mount */
	/*
	 * The handle whose version is being committed, or NULL. A commit
	 * runs without the lock (hashing, staging and the database's sync
	 * take long for a big file), so that opens, attributes and listings
	 * of the file answer meanwhile; that handle's stage is not written
	 * until it ends, and the end is signalled on cv.
	 */
	struct fh *committing;
	pthread_cond_t cv;
	struct ofile *next;
};

/* The handle of one open (fi->fh). */
struct fh {
	struct ofile *of;
	enum sfs_content which;
	struct sfs_blob *blob; /* the committed version read, or NULL */
	uint64_t version;      /* of->version when blob was opened */
	int writable;
	/*
	 * Reads the writer's version, if there is one; cleared (under the
	 * lock, atomic: reads look without it) once nobody can write.
	 */
	int follow;
	int append;
	struct sfs_stage *stage; /* a writer's own version, or NULL */
	int dirty;		 /* the stage differs from the content */
	int64_t mtime_ns;	 /* the stage's last change */
	int64_t set_mtime_ns;	 /* utimens while dirty: for the commit */
	int failed;		 /* -errno: its last version's commit failed */
	/*
	 * A write of h waits at its stage's window with the lock let go
	 * (file.c window_wait): until it is 0 again, nothing else writes,
	 * truncates, commits or frees h->stage; its end is signalled on
	 * of->cv.
	 */
	int windowing;
	struct fh *next; /* in of->handles */
};

/*
 * Take of's lock; on a thread that may not wait (fs_nowait) only when it
 * is free at once: 0, or -FS_EWAIT (nothing taken).
 */
int fs_ofile_lock(struct ofile *of);
/*
 * Attach h (its writable set) to the open file of ino (made if needed),
 * as fs_ofile_lock takes its lock: 0 with h->of locked, -ENOMEM or
 * -FS_EWAIT (nothing attached).
 */
int fs_ofile_attach(struct fh *h, int64_t ino, const char *id);
/*
 * Take h off its open file (locked: its lock is held, and let go); the
 * file's last handle frees it.
 */
void fs_ofile_detach(struct fh *h, int locked);
/* The most recent writer with a version of its own, but h (of locked). */
struct fh *fs_other_writer(struct ofile *of, const struct fh *h);
/* 1 when a handle of of is open for writing (of locked). */
int fs_ofile_writable(const struct ofile *of);
/*
 * Whether inode node had content sha when it was last opened (a
 * read-only open keeps the kernel's page cache then); sha is kept.
 */
int fs_same_content(uint64_t node, const char *sha);
/*
 * Make the thread holding of's lock a slow holder (fs_file_busy) before
 * it waits far away under it: 1 when the lock was let go and taken
 * again, 0 when *slow said it already was one. fs_slow_end once the
 * lock is let go (or the wait is over).
 */
int fs_become_slow(struct ofile *of, int *slow);
void fs_slow_end(void);

#endif
