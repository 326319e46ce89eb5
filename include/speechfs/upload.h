/*
 * Resumable uploads (an extension): a session takes a file's new content
 * in parts, each a PUT of the content from an offset on, and keeps what
 * it got durably between them, so that a stream that breaks is resumed
 * where the server's disk has it instead of being sent again whole. The
 * session's bytes are a file under STORE/staging/.uploads/ of the store
 * directory it was made in (its row names that directory's node id, which
 * every process on it shares: a daemon on another store directory sharing
 * the database does not know it); its `durable` offset is recorded in the
 * row after each fdatasync, at least every SFS_UPLOAD_SYNC_BYTES, so it
 * survives a crash (the file is cut back to it when the daemon starts).
 * The body's end is the commit (as a PUT of the content without a
 * session); any answer to a body that ended ends the session; one that
 * did not end keeps it.
 */
#ifndef SPEECHFS_UPLOAD_H
#define SPEECHFS_UPLOAD_H

#include <stdint.h>
#include "auth.h"
#include "err.h"

struct sfs_store;
struct sfs_stage;

#define SFS_UPLOAD_ID_SIZE 33 /* 32 lowercase hex and NUL */
#define SFS_UPLOAD_SYNC_BYTES (32 << 20)
#define SFS_UPLOAD_MAX_PER_TENANT 32

struct sfs_upload {
	char id[SFS_UPLOAD_ID_SIZE];
	char file_id[SFS_ID_SIZE];
	int64_t offset;	 /* received: the streaming PUT's, else durable */
	int64_t durable; /* on the disk and recorded */
	int64_t expires_ms;
	int busy; /* a PUT streams into it now */
};

/* 1 when s is 32 lowercase hex digits (the form of a session's id). */
int sfs_upload_id_valid(const char *s);

/*
 * The daemon's side, once at start: STORE/staging/.uploads/ and its id made
 * (STORE/staging/.uploads/.node, read if there), the sessions of this store
 * directory recovered (each file cut back to its row's durable offset; rows
 * without a file and files without a row removed) and the janitor's sweep of
 * expired sessions installed. Without it the calls below answer
 * SFS_UNSUPPORTED. An error (errno's status: the daemon does not start) when
 * .node exists but cannot be read, rather than a new id that would make every
 * session made before unknown; a .node that holds no id is replaced, with a
 * warning (the sessions made under the old id are then unknown).
 */
enum sfs_status sfs_upload_install(struct sfs_store *s,
				   struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A new session for the content of file_id, which the actor must be
 * allowed to write (SFS_NOT_FOUND, SFS_FORBIDDEN as for the file);
 * SFS_RATE_LIMITED (too_many_uploads) past SFS_UPLOAD_MAX_PER_TENANT open
 * sessions of the tenant.
 */
enum sfs_status sfs_upload_create(struct sfs_store *s,
				  const struct sfs_actor *a,
				  const char *file_id, struct sfs_upload *out,
				  struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The session as it is now (its expiry moved on): SFS_NOT_FOUND
 * (upload_not_found) when it is unknown here, ended, expired, another
 * user's or another file's.
 */
enum sfs_status sfs_upload_get(struct sfs_store *s, const struct sfs_actor *a,
			       const char *file_id, const char *upload_id,
			       struct sfs_upload *out,
			       struct sfs_err *e) SFS_MUST_CHECK;
/*
 * End a session and drop its bytes (a PUT of this process streaming into it
 * fails at its end). SFS_CONFLICT upload_busy when another open file
 * description holds the session's file: a PUT of another process on the
 * store directory (which cannot be told), or a removal under way.
 */
enum sfs_status sfs_upload_delete(struct sfs_store *s,
				  const struct sfs_actor *a,
				  const char *file_id, const char *upload_id,
				  struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A PUT of the content from `offset` on: the session's file cut to offset
 * and a stage over it (ownership: end with sfs_upload_stage_end, never
 * sfs_stage_free) that appends, hashes the whole content from 0, and
 * makes its bytes durable as they come. SFS_CONFLICT upload_busy while
 * another PUT streams into it (or, for a moment, the sweep or a DELETE
 * removes it); upload_offset_mismatch when offset is past the durable
 * offset (*durable says it, for either).
 */
enum sfs_status sfs_upload_stage(struct sfs_store *s, const struct sfs_actor *a,
				 const char *file_id, const char *upload_id,
				 int64_t offset, struct sfs_stage **out,
				 int64_t *durable,
				 struct sfs_err *e) SFS_MUST_CHECK;
/*
 * SFS_NOT_FOUND once the session was deleted while the PUT streamed (a
 * DELETE here, or its row gone through another process on the store
 * directory); a database error's status if its row cannot be read.
 */
enum sfs_status sfs_upload_stage_alive(struct sfs_stage *st,
				       struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The PUT is over: ended (its body ended: whatever the answer, the
 * session goes, its bytes with it unless the commit took them), or not
 * (the connection lost: the session stays, durable up to what came).
 * Frees the stage.
 */
void sfs_upload_stage_end(struct sfs_stage *st, int ended);

/*
 * The session's durable bytes for reading: an fd of its own (the
 * caller closes it) and how many there are.
 */
enum sfs_status
sfs_upload_open_durable(struct sfs_store *s, const struct sfs_actor *a,
			const char *file_id, const char *upload_id, int *fd,
			int64_t *durable, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Called (from any thread) when a session's durable offset moved or the
 * session ended; one per store (the daemon's long polls).
 */
void sfs_upload_set_notify(struct sfs_store *s,
			   void (*fn)(void *arg, const char *upload_id),
			   void *arg);

/* Expired sessions of this store directory removed now (the janitor's). */
enum sfs_status sfs_upload_sweep(struct sfs_store *s, int *n,
				 struct sfs_err *e) SFS_MUST_CHECK;

#endif
