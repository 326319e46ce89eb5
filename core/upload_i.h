/*
 * What the upload sessions' two files share: upload.c (the sessions'
 * calls, the busy list of this process) and upload_sweep.c (the daemon's
 * start: the node id and the recovery, and the janitor's sweep).
 */
#ifndef SPEECHFS_UPLOAD_I_H
#define SPEECHFS_UPLOAD_I_H

#include <stddef.h>
#include <stdint.h>
#include "speechfs/err.h"

struct db;
struct sfs_store;

/* A session's row: its id, durable offset and expiry (ms). */
struct sfsi_upload_row {
	int64_t row, durable, expires;
};

/* The path of session file `id` (under STORE/staging/.uploads/). */
void sfsi_upload_path(const struct sfs_store *s, const char *id, char *out,
		      size_t n);

/*
 * Session file `id` opened read-write and locked (F_OFD_SETLK) in *fd;
 * else *fd is -1 and the status says why: SFS_CONFLICT upload_busy when
 * another open file description holds it (another process's PUT, or this
 * process's sweep, DELETE or recovery for the moment they act: OFD locks
 * conflict within a process too), SFS_NOT_FOUND upload_not_found when it
 * is missing or was unlinked before the lock was taken (its holder
 * removed it), errno's status otherwise.
 */
enum sfs_status sfsi_upload_lock(struct sfs_store *s, const char *id, int *fd,
				 struct sfs_err *e) SFS_MUST_CHECK;

/* Row `row` read again: 1 with *f filled, 0 if it is gone, -1 an error. */
int sfsi_upload_reread(struct db *d, int64_t row, const char *id,
		       struct sfsi_upload_row *f, struct sfs_err *e);

enum sfs_status sfsi_upload_delete_row(struct db *d, int64_t row,
				       const char *id, struct sfs_err *e);

/*
 * Remove session `id` (row `row`), row and file: the file only once the
 * row went (re-read s22 A1: a DELETE that failed, busy or cancelled, left
 * a row whose file was gone, and a PUT that found the row streamed into
 * the unlinked file). Else a warning, and both stay for a later sweep.
 * The caller holds the file's lock (or it is missing).
 */
enum sfs_status sfsi_upload_drop(struct db *d, struct sfs_store *s, int64_t row,
				 const char *id);

/* 1 when a PUT of this process streams into session `id` now. */
int sfsi_upload_busy_here(struct sfs_store *s, const char *id);

/* Forget the hashes kept for session `id` (it ended). */
void sfsi_upload_forget(const struct sfs_store *s, const char *id);

/* Tell the store's listener (the long polls) that session `id` moved. */
void sfsi_upload_notify(struct sfs_store *s, const char *id);

#endif
