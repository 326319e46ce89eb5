/*
 * Resumable uploads' sessions (upload.h): a row each in the database, a
 * file each under STORE/staging/.uploads/ (uploads in progress: the
 * per-process staging sweep leaves that dot entry alone), and, while a
 * PUT streams into one, an entry in this process's list of busy sessions
 * (what it received, what is durable, whether it was deleted
 * meanwhile). The stage of such a PUT (stage.c) calls back here as its
 * file grows: every SFS_UPLOAD_SYNC_BYTES the file is synced and the
 * offset recorded.
 *
 * Every process on the store directory shares STORE/staging/.uploads/
 * and its node id (a second daemon, anything that installs uploads), so a
 * session file is locked (an open file description's write lock,
 * F_OFD_SETLK, which a GET can test without taking it) by the one that
 * acts on it: from
 * its making until its row is in, for a PUT's whole stream, while a
 * start's recovery, the sweep or a DELETE cuts or removes it. A file
 * another process holds is live there: never cut, removed or streamed
 * into here (409 upload_busy; GET says busy). A lock dies with its
 * process: a crashed daemon's sessions are recovered at the next start
 * (upload_sweep.c, with the janitor's sweep of expired sessions).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "auth_i.h"
#include "db_i.h"
#include "speechfs/file.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/upload.h"
#include "stage_i.h"
#include "store_i.h"
#include "upload_i.h"
#include "util_i.h"

#define TOUCH_MS 10000 /* an expiry moves on at most this often */

/* A session a PUT streams into, in this process. */
struct sfsi_upload {
	struct sfsi_upload *next;
	struct sfs_store *s;
	char id[SFS_UPLOAD_ID_SIZE];
	int64_t row;
	int64_t received; /* atomics: read by GETs of other threads */
	int64_t durable;
	int deleted;
	int failed; /* a sync failed: nothing more becomes durable */
	int ending; /* its PUT ends: told once it is no longer busy */
	/*
	 * What the row holds (the syncer's, or the writer's before it):
	 * below st->durable when a row's update failed (busy, a dropped
	 * database connection), for the next sync to record again.
	 */
	int64_t recorded;
	/*
	 * The syncer (see sync_ask): started at the first sync that is
	 * due, stopped by the PUT's end; `asked` is the writer's (what it
	 * last handed over), the rest under smu.
	 */
	int64_t asked;
	pthread_mutex_t smu;
	pthread_cond_t scv;
	pthread_t syncer;
	int sync_on;	   /* the syncer runs */
	int sync_closed;   /* it was stopped: syncs are the writer's again */
	int sync_drop;	   /* stopped as the session ended: none pending */
	int64_t sync_want; /* written bytes it is to make durable */
	int64_t sync_done; /* what it last made durable (or tried to) */
};

static pthread_mutex_t busy_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sfsi_upload *busy;

/*
 * The hashes of a session's bytes where its PUT's body stopped, so that
 * the resume from there (the common case: this daemon, from durable)
 * does not read them again to hash them (~0.7 s a GiB, in the thread of
 * the PUT's first call). A few, replaced in turn, under busy_mu; lost at
 * a restart, when the bytes are read again. They trust the file only as
 * it was when they were kept: between two PUTs here, one of another
 * process on this store directory may cut and rewrite it (re-read s22
 * A8: the blob was then named by the old bytes' sha256). So the file's
 * identity is kept with them, taken under the PUT's lock after its last
 * cut, and a resume uses them only when the locked file still has it:
 * any write or cut moves ctime. (Since Linux 6.13 a change after an
 * fstat gets a fine-grained ctime: 0 of 10,000 stat-write-stat rounds kept
 * it here. Older kernels tick it every jiffy, 1-10 ms: a rewrite to the
 * same size by another process that soon after this PUT's end passes.)
 */
#define KEPT_MAX 8
struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

static struct kept {
	const struct sfs_store *s;
	char id[SFS_UPLOAD_ID_SIZE];
	int64_t off;
	uint32_t crc;
	EVP_MD_CTX *md;
	struct file_id file;
} kept[KEPT_MAX];
static unsigned kept_next;

/* fd's file as kept with the hashes; -1 (errno) if fstat fails. */
static int file_id_of(int fd, struct file_id *out)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	out->dev = sb.st_dev;
	out->ino = sb.st_ino;
	out->size = sb.st_size;
	out->mtime = sb.st_mtim;
	out->ctime = sb.st_ctim;
	return 0;
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static int same_file(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       same_time(&a->mtime, &b->mtime) &&
	       same_time(&a->ctime, &b->ctime);
}

/* Session id's kept hash (busy_mu held): its slot, or NULL. */
static struct kept *kept_find(const struct sfs_store *s, const char *id)
{
	size_t i;

	for (i = 0; i < KEPT_MAX; i++)
		if (kept[i].md && kept[i].s == s && !strcmp(kept[i].id, id))
			return &kept[i];
	return NULL;
}

/*
 * Keep the hashes of all of st's bytes for session id, with its file's
 * identity now (its lock held, its last cut made).
 */
static void keep_hash(struct sfs_stage *st, const char *id)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct file_id file;
	struct kept *k;

	if (!md || file_id_of(st->fd, &file) < 0 ||
	    !EVP_MD_CTX_copy_ex(md, st->md)) {
		EVP_MD_CTX_free(md);
		return;
	}
	pthread_mutex_lock(&busy_mu);
	k = kept_find(st->s, id);
	if (!k)
		k = &kept[kept_next++ % KEPT_MAX];
	EVP_MD_CTX_free(k->md);
	k->s = st->s;
	sfs_strlcpy(k->id, id, sizeof(k->id));
	k->off = st->size;
	k->crc = st->crc;
	k->md = md;
	k->file = file;
	pthread_mutex_unlock(&busy_mu);
}

/*
 * Take session id's kept hashes: into *md (the caller frees it) when
 * they are of `off` bytes of the file as it is now (fd, locked); else
 * NULL. Forgotten either way. fd -1: forget them.
 */
static void take_hash(const struct sfs_store *s, const char *id, int fd,
		      int64_t off, EVP_MD_CTX **md, uint32_t *crc)
{
	struct file_id now = { 0 };
	struct kept *k;
	int same;

	*md = NULL;
	same = fd >= 0 && !file_id_of(fd, &now);
	pthread_mutex_lock(&busy_mu);
	k = kept_find(s, id);
	if (k && same && k->off == off && same_file(&k->file, &now)) {
		*md = k->md;
		*crc = k->crc;
	} else if (k) {
		EVP_MD_CTX_free(k->md);
	}
	if (k)
		memset(k, 0, sizeof(*k));
	pthread_mutex_unlock(&busy_mu);
}

void sfsi_upload_forget(const struct sfs_store *s, const char *id)
{
	EVP_MD_CTX *md;
	uint32_t crc;

	take_hash(s, id, -1, -1, &md, &crc);
}

/* The busy entry of (s, id), or NULL (busy_mu held). */
static struct sfsi_upload *busy_find(struct sfs_store *s, const char *id)
{
	struct sfsi_upload *u;

	for (u = busy; u; u = u->next)
		if (u->s == s && !strcmp(u->id, id))
			return u;
	return NULL;
}

int sfs_upload_id_valid(const char *s)
{
	int i;

	for (i = 0; i < SFS_UPLOAD_ID_SIZE - 1; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}

static enum sfs_status not_found(struct sfs_err *e, const char *id)
{
	return sfs_errf(e, SFS_NOT_FOUND, SFS_R_UPLOAD_NOT_FOUND,
			"no upload session '%s' of this file here: unknown, "
			"ended or expired",
			id);
}

void sfsi_upload_notify(struct sfs_store *s, const char *id)
{
	if (s->upload_notify)
		s->upload_notify(s->upload_notify_arg, id);
}

void sfs_upload_set_notify(struct sfs_store *s,
			   void (*fn)(void *arg, const char *upload_id),
			   void *arg)
{
	s->upload_notify_arg = arg;
	s->upload_notify = fn;
}

void sfsi_upload_path(const struct sfs_store *s, const char *id, char *out,
		      size_t n)
{
	snprintf(out, n, "%s/%s", s->upload_dir, id);
}

/* Take (F_OFD_SETLK) or test (F_OFD_GETLK: 1 if held) fd's whole lock. */
static int file_lock(int fd, int cmd)
{
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (fcntl(fd, cmd, &l) < 0)
		return -1;
	return cmd == F_OFD_GETLK ? l.l_type != F_UNLCK : 0;
}

static enum sfs_status session_busy(struct sfs_err *e, const char *id)
{
	return sfs_errf(e, SFS_CONFLICT, SFS_R_UPLOAD_BUSY,
			"upload session '%s' is in use now (a PUT streams "
			"into it, or it is being removed): try again after it",
			id);
}

/*
 * Whether fd's file was unlinked: between an open and its lock, whoever
 * held the lock may have removed the session (the sweep, a DELETE, the
 * end of a PUT), whatever its row says now.
 */
static int unlinked(int fd)
{
	struct stat sb;

	return !fstat(fd, &sb) && sb.st_nlink == 0;
}

enum sfs_status sfsi_upload_lock(struct sfs_store *s, const char *id, int *fd,
				 struct sfs_err *e)
{
	char path[4096];

	sfsi_upload_path(s, id, path, sizeof(path));
	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd < 0 && errno == ENOENT)
		return not_found(e, id);
	if (*fd < 0)
		return sfsi_errno_status(e, errno, "opening an upload");
	if (!file_lock(*fd, F_OFD_SETLK)) {
		if (!unlinked(*fd))
			return SFS_OK;
		close(*fd);
		*fd = -1;
		return not_found(e, id);
	}
	close(*fd);
	*fd = -1;
	if (errno == EAGAIN || errno == EACCES)
		return session_busy(e, id);
	return sfsi_errno_status(e, errno, "locking an upload");
}

/*
 * The size of session file `id` if another process holds it (its PUT
 * streams into it), else -1.
 */
static int64_t held_elsewhere(struct sfs_store *s, const char *id)
{
	char path[4096];
	struct stat sb;
	int64_t size = -1;
	int fd;

	sfsi_upload_path(s, id, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (file_lock(fd, F_OFD_GETLK) == 1 && !fstat(fd, &sb))
		size = sb.st_size;
	close(fd);
	return size;
}

/*
 * A row of this daemon's: the row id, durable offset and expiry of the
 * actor's session `id` of file_id, or SFS_NOT_FOUND.
 */
static enum sfs_status find(struct db *d, struct sfs_store *s,
			    const struct sfs_actor *a, const char *file_id,
			    const char *id, struct sfsi_upload_row *out,
			    struct sfs_err *e)
{
	struct db_stmt *st;
	char fid[SFS_ID_SIZE];
	int rc;

	if (!s->upload_dir)
		return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				"this store takes no upload sessions");
	if (!sfs_upload_id_valid(id) || sfsi_uuid_norm(file_id, fid))
		return not_found(e, id);
	st = sfsi_db_prep(d,
			  "SELECT u.id, u.durable, u.expires_at FROM upload u"
			  " JOIN file f ON f.id = u.file_id"
			  " WHERE u.uuid = ?1 AND u.node = ?2"
			  " AND u.user_id = ?3 AND f.uuid = ?4"
			  " AND u.expires_at > ?5",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_text(st, 1, id);
	sfsi_db_bind_text(st, 2, s->upload_node);
	sfsi_db_bind_int(st, 3, a->user);
	sfsi_db_bind_text(st, 4, fid);
	sfsi_db_bind_int(st, 5, sfs_now_ms());
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		out->row = sfsi_db_col_int(st, 0);
		out->durable = sfsi_db_col_int(st, 1);
		out->expires = sfsi_db_col_int(st, 2);
	}
	sfsi_db_reset(st);
	if (rc < 0)
		return SFS_IO;
	return rc ? SFS_OK : not_found(e, id);
}

/* A connection (put back by the caller, even on failure) and the row. */
static enum sfs_status lookup(struct sfs_store *s, const struct sfs_actor *a,
			      const char *file_id, const char *id,
			      struct db **d, struct sfsi_upload_row *out,
			      struct sfs_err *e)
{
	enum sfs_status ret = sfsi_db_get(s, d, e);

	return ret ? ret : find(*d, s, a, file_id, id, out, e);
}

/*
 * A session's row by its id and its uuid: SQLite gives a new row the id
 * of a removed last one (no AUTOINCREMENT), so a statement by id alone,
 * run after the row went (another process's DELETE, a DELETE during a
 * sync), would reach the next session's row (re-read s24 A1).
 */
#define ROW_WHERE " WHERE id = ?1 AND uuid = ?2"

static void bind_row(struct db_stmt *st, int64_t row, const char *id)
{
	sfsi_db_bind_int(st, 1, row);
	sfsi_db_bind_text(st, 2, id);
}

/*
 * Move the session's expiry on (a use of it), at most every TOUCH_MS (a
 * long poll's loop is no write each); never a refusal.
 */
static int64_t touch(struct db *d, struct sfs_store *s, const char *id,
		     const struct sfsi_upload_row *f)
{
	struct db_stmt *st;
	int64_t exp = sfs_now_ms() + s->cfg.upload_expire_s * 1000;

	if (exp - f->expires < TOUCH_MS)
		return f->expires;
	st = sfsi_db_prep(d, "UPDATE upload SET expires_at = ?3" ROW_WHERE,
			  NULL);
	if (st) {
		bind_row(st, f->row, id);
		sfsi_db_bind_int(st, 3, exp);
		if (sfsi_db_run(st, NULL))
			sfs_debug("upload", "could not move an expiry");
	}
	return exp;
}

/*
 * Row `row` again, its file locked (another process may have moved it
 * meanwhile): 1 with its durable offset and expiry, 0 if it is gone,
 * -1 on an error.
 */
int sfsi_upload_reread(struct db *d, int64_t row, const char *id,
		       struct sfsi_upload_row *f, struct sfs_err *e)
{
	struct db_stmt *st = sfsi_db_prep(
		d, "SELECT durable, expires_at FROM upload" ROW_WHERE, e);
	int rc;

	if (!st)
		return -1;
	bind_row(st, row, id);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		f->row = row;
		f->durable = sfsi_db_col_int(st, 0);
		f->expires = sfsi_db_col_int(st, 1);
	}
	sfsi_db_reset(st);
	return rc;
}

static enum sfs_status set_durable(struct db *d, int64_t row, const char *id,
				   int64_t durable, struct sfs_err *e)
{
	struct db_stmt *st =
		sfsi_db_prep(d, "UPDATE upload SET durable = ?3" ROW_WHERE, e);

	if (!st)
		return SFS_IO;
	bind_row(st, row, id);
	sfsi_db_bind_int(st, 3, durable);
	return sfsi_db_run(st, e);
}

enum sfs_status sfsi_upload_delete_row(struct db *d, int64_t row,
				       const char *id, struct sfs_err *e)
{
	struct db_stmt *st = sfsi_db_prep(d, "DELETE FROM upload" ROW_WHERE, e);

	if (!st)
		return SFS_IO;
	bind_row(st, row, id);
	return sfsi_db_run(st, e);
}

static enum sfs_status insert_row(struct db *d, struct sfs_store *s,
				  const struct sfs_actor *a, int64_t ino,
				  struct sfs_upload *u, struct sfs_err *e)
{
	struct db_stmt *st;
	int64_t now = sfs_now_ms();
	enum sfs_status ret;

	st = sfsi_db_prep(d,
			  "INSERT INTO upload(uuid, node, tenant_id, user_id,"
			  " file_id, durable, created_at, expires_at)"
			  " SELECT ?1, ?2, ?3, ?4, ?5, 0, ?6, ?7 WHERE"
			  " (SELECT COUNT(*) FROM upload WHERE tenant_id = ?3"
			  " AND expires_at > ?6) < ?8",
			  e);
	if (!st)
		return SFS_IO;
	u->expires_ms = now + s->cfg.upload_expire_s * 1000;
	sfsi_db_bind_text(st, 1, u->id);
	sfsi_db_bind_text(st, 2, s->upload_node);
	sfsi_db_bind_int(st, 3, a->tenant);
	sfsi_db_bind_int(st, 4, a->user);
	sfsi_db_bind_int(st, 5, ino);
	sfsi_db_bind_int(st, 6, now);
	sfsi_db_bind_int(st, 7, u->expires_ms);
	sfsi_db_bind_int(st, 8, SFS_UPLOAD_MAX_PER_TENANT);
	ret = sfsi_db_run(st, e);
	if (!ret && sfsi_db_changes(d) != 1)
		ret = sfs_errf(e, SFS_RATE_LIMITED, SFS_R_TOO_MANY_UPLOADS,
			       "the tenant has %d upload sessions open "
			       "already: end one (DELETE) or let it expire",
			       SFS_UPLOAD_MAX_PER_TENANT);
	return ret;
}

enum sfs_status sfs_upload_create(struct sfs_store *s,
				  const struct sfs_actor *a,
				  const char *file_id, struct sfs_upload *out,
				  struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d = NULL;
	unsigned char r[16];
	char path[4096];
	enum sfs_status ret;
	int fd = -1;

	memset(out, 0, sizeof(*out));
	path[0] = '\0';
	sfs_file_init(&f);
	if (!s->upload_dir) {
		ret = sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
			       "this store takes no upload sessions");
		goto out;
	}
	ret = sfs_file_get(s, a, file_id, &f, e);
	if (!ret)
		ret = sfs_file_allows(&f, SFS_ACT_WRITE, e);
	if (!ret && sfsi_random(r, sizeof(r)))
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "no randomness");
	if (ret)
		goto out;
	sfsi_hex(r, sizeof(r), out->id);
	sfs_strlcpy(out->file_id, f.id, sizeof(out->file_id));
	sfsi_upload_path(s, out->id, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	/* locked until its row is in: another process's recovery leaves it */
	if (fd < 0 || file_lock(fd, F_OFD_SETLK) < 0 ||
	    sfsi_fsync_dir(s->upload_dir) < 0) {
		ret = sfsi_errno_status(e, errno, "making an upload's file");
		goto out;
	}
	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = insert_row(d, s, a, f.ino, out, e);
out:
	if (ret && path[0])
		unlink(path);
	if (fd >= 0)
		close(fd);
	sfsi_db_put(d);
	sfs_file_release(&f);
	return ret;
}

enum sfs_status sfs_upload_get(struct sfs_store *s, const struct sfs_actor *a,
			       const char *file_id, const char *upload_id,
			       struct sfs_upload *out, struct sfs_err *e)
{
	struct sfsi_upload *u;
	struct db *d = NULL;
	struct sfsi_upload_row f;
	enum sfs_status ret;
	int64_t size, dur;

	memset(out, 0, sizeof(*out));
	ret = lookup(s, a, file_id, upload_id, &d, &f, e);
	if (ret)
		goto out;
	out->durable = f.durable;
	out->expires_ms = touch(d, s, upload_id, &f);
	sfs_strlcpy(out->id, upload_id, sizeof(out->id));
	sfsi_uuid_norm(file_id, out->file_id);
	out->offset = out->durable;
	pthread_mutex_lock(&busy_mu);
	u = busy_find(s, upload_id);
	if (u) {
		out->busy = 1;
		out->offset = __atomic_load_n(&u->received, __ATOMIC_RELAXED);
		/*
		 * the writer may have recorded more since the row was read;
		 * one atomic load (record() stores it from the PUT's thread)
		 */
		dur = __atomic_load_n(&u->durable, __ATOMIC_RELAXED);
		if (dur > out->durable)
			out->durable = dur;
	}
	pthread_mutex_unlock(&busy_mu);
	/*
	 * Another process streams into it: busy, durable as its row says (a
	 * true lower bound: moved up after each sync, down before a cut), at
	 * the offset its file has (what it received is not known here).
	 */
	if (!u && (size = held_elsewhere(s, upload_id)) >= 0) {
		out->busy = 1;
		out->offset = size > out->durable ? size : out->durable;
	}
out:
	sfsi_db_put(d);
	return ret;
}

/* DELETE's lock of the file: fd, none when it is gone, or busy. */
static enum sfs_status delete_lock(struct sfs_store *s, const char *id, int *fd,
				   struct sfs_err *e)
{
	struct sfs_err le;
	enum sfs_status ret;

	sfs_err_init(&le);
	ret = sfsi_upload_lock(s, id, fd, &le);
	if (ret == SFS_NOT_FOUND)
		return SFS_OK;
	if (ret && e)
		*e = le;
	return ret;
}

/*
 * Unlink session file `id` (its row gone) under its lock, taken here: a
 * file another process holds stays. That is a PUT there which read the
 * row before it went (re-read s23 A3: it was unlinked under it, and its
 * commit failed with 500, or on an S3 blob store went through); it
 * streams into a file a path still names, and at its end finds the row
 * gone (sfs_upload_stage_alive) and removes the file itself; one that
 * finds the row gone as it takes the lock does too (stage_lock).
 */
static void unlink_if_free(struct sfs_store *s, const char *id)
{
	enum sfs_status lk;
	struct sfs_err le;
	char path[4096];
	int fd;

	sfs_err_init(&le);
	lk = sfsi_upload_lock(s, id, &fd, &le);
	if (lk && lk != SFS_NOT_FOUND && lk != SFS_CONFLICT)
		sfs_warn("upload", "session '%s': its file stays: %s", id,
			 le.message);
	if (lk)
		return;
	sfsi_upload_path(s, id, path, sizeof(path));
	unlink(path);
	close(fd);
}

enum sfs_status sfs_upload_delete(struct sfs_store *s,
				  const struct sfs_actor *a,
				  const char *file_id, const char *upload_id,
				  struct sfs_err *e)
{
	struct sfsi_upload *u;
	struct db *d = NULL;
	struct sfsi_upload_row f;
	enum sfs_status ret;
	char path[4096];
	int fd = -1;

	ret = lookup(s, a, file_id, upload_id, &d, &f, e);
	pthread_mutex_lock(&busy_mu);
	u = ret ? NULL : busy_find(s, upload_id);
	pthread_mutex_unlock(&busy_mu);
	/* another process's PUT could not be told: refused */
	if (!ret && !u)
		ret = delete_lock(s, upload_id, &fd, e);
	if (!ret)
		ret = sfsi_upload_delete_row(d, f.row, upload_id, e);
	sfsi_db_put(d);
	if (!ret) {
		/* a PUT streaming into it: its stage drops the file at its end
		 */
		pthread_mutex_lock(&busy_mu);
		u = fd < 0 ? busy_find(s, upload_id) : NULL;
		if (u)
			__atomic_store_n(&u->deleted, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&busy_mu);
		sfsi_upload_path(s, upload_id, path, sizeof(path));
		if (fd >= 0)
			unlink(path);
		else if (!u) /* the PUT here ended meanwhile */
			unlink_if_free(s, upload_id);
		sfsi_upload_forget(s, upload_id);
		sfsi_upload_notify(s, upload_id);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

int sfsi_upload_busy_here(struct sfs_store *s, const char *id)
{
	int taken;

	pthread_mutex_lock(&busy_mu);
	taken = busy_find(s, id) != NULL;
	pthread_mutex_unlock(&busy_mu);
	return taken;
}

/* Take the session for a PUT: its busy entry (a conflict if taken). */
static enum sfs_status take(struct sfs_store *s, const char *id, int64_t row,
			    int64_t durable, struct sfsi_upload **out,
			    struct sfs_err *e)
{
	struct sfsi_upload *u;

	*out = NULL;
	pthread_mutex_lock(&busy_mu);
	if (busy_find(s, id)) {
		pthread_mutex_unlock(&busy_mu);
		return session_busy(e, id);
	}
	u = calloc(1, sizeof(*u));
	if (u && pthread_mutex_init(&u->smu, NULL)) {
		free(u);
		u = NULL;
	}
	if (u && pthread_cond_init(&u->scv, NULL)) {
		pthread_mutex_destroy(&u->smu);
		free(u);
		u = NULL;
	}
	if (u) {
		u->s = s;
		sfs_strlcpy(u->id, id, sizeof(u->id));
		u->row = row;
		u->received = u->durable = durable;
		u->next = busy;
		busy = u;
	}
	pthread_mutex_unlock(&busy_mu);
	if (!u)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	*out = u;
	return SFS_OK;
}

/* The session no longer busy here; 1 when a DELETE came meanwhile. */
static int give_back(struct sfsi_upload *u)
{
	struct sfsi_upload **p;
	int deleted;

	pthread_mutex_lock(&busy_mu);
	for (p = &busy; *p; p = &(*p)->next)
		if (*p == u) {
			*p = u->next;
			break;
		}
	deleted = u->deleted;
	pthread_mutex_unlock(&busy_mu);
	pthread_cond_destroy(&u->scv);
	pthread_mutex_destroy(&u->smu);
	free(u);
	return deleted;
}

/*
 * The PUT's lock of the session file (busy if another process holds it)
 * and, under it, the row's durable offset again.
 */
static enum sfs_status stage_lock(struct db *d, struct sfs_store *s,
				  const char *id, struct sfsi_upload_row *f,
				  int *fd, struct sfs_err *e)
{
	enum sfs_status ret = sfsi_upload_lock(s, id, fd, e);
	char path[4096];
	int rc;

	if (ret)
		return ret;
	rc = sfsi_upload_reread(d, f->row, id, f, e);
	if (!rc) {
		/*
		 * Its row went since the lookup, removed by one that found the
		 * file locked and left it to the lock's holder
		 * (unlink_if_free): that is this PUT now, else the file stayed
		 * until a start.
		 */
		sfsi_upload_path(s, id, path, sizeof(path));
		unlink(path);
	}
	return rc < 0 ? SFS_IO : rc ? SFS_OK : not_found(e, id);
}

enum sfs_status sfs_upload_stage(struct sfs_store *s, const struct sfs_actor *a,
				 const char *file_id, const char *upload_id,
				 int64_t offset, struct sfs_stage **out,
				 int64_t *durable, struct sfs_err *e)
{
	struct sfsi_upload *u = NULL;
	struct db *d = NULL;
	struct sfsi_upload_row f = { 0 };
	enum sfs_status ret;
	EVP_MD_CTX *md;
	uint32_t crc = 0;
	char path[4096];
	int fd = -1;

	*out = NULL;
	ret = lookup(s, a, file_id, upload_id, &d, &f, e);
	if (!ret)
		ret = take(s, upload_id, f.row, f.durable, &u, e);
	if (!ret)
		ret = stage_lock(d, s, upload_id, &f, &fd, e);
	*durable = f.durable;
	if (!ret && (offset < 0 || offset > *durable))
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_UPLOAD_OFFSET_MISMATCH,
			       "Upload-Offset %lld is past what the session "
			       "holds durably (%lld bytes): resume from there",
			       (long long)offset, (long long)*durable);
	if (!ret)
		touch(d, s, upload_id, &f);
	/* below what is durable: the row says so before the file is cut */
	if (!ret && offset < f.durable)
		ret = set_durable(d, f.row, upload_id, offset, e);
	sfsi_db_put(d);
	if (ret)
		goto out;
	__atomic_store_n(&u->durable, offset, __ATOMIC_SEQ_CST);
	__atomic_store_n(&u->received, offset, __ATOMIC_SEQ_CST);
	sfsi_upload_path(s, upload_id, path, sizeof(path));
	take_hash(s, upload_id, fd, offset, &md, &crc);
	ret = sfsi_stage_open_at(s, path, fd, offset, md, crc, out, e);
	fd = -1; /* the stage's, even on failure */
	EVP_MD_CTX_free(md);
	if (ret)
		goto out;
	(*out)->upload = u;
	u->asked = offset;
	u->recorded = offset;
	u = NULL;
out:
	if (fd >= 0)
		close(fd);
	if (u)
		give_back(u);
	return ret;
}

enum sfs_status sfs_upload_stage_alive(struct sfs_stage *st, struct sfs_err *e)
{
	struct sfsi_upload *u = st->upload;
	struct sfsi_upload_row f;
	struct db *d = NULL;
	enum sfs_status ret;
	int rc = -1;

	if (!u)
		return SFS_OK;
	if (__atomic_load_n(&u->deleted, __ATOMIC_SEQ_CST))
		return not_found(e, u->id);
	/*
	 * Its row, in case another process's DELETE took it: one that met
	 * its own PUT's end there, and so did not ask for the lock this PUT
	 * then took (re-read s23 A3), answered 204; this one ends as a PUT
	 * of this process does after a DELETE here.
	 */
	ret = sfsi_db_get(u->s, &d, e);
	if (!ret)
		rc = sfsi_upload_reread(d, u->row, u->id, &f, e);
	sfsi_db_put(d);
	if (ret)
		return ret;
	return rc < 0 ? SFS_IO : rc ? SFS_OK : not_found(e, u->id);
}

/*
 * Record the durable offset in the row (after the file's sync). A failed
 * update costs only that record: the bytes are synced, and the next sync
 * (or the PUT's end) records again, past them (re-read s23 A2: it
 * stopped durability for the rest of the body).
 */
static void record(struct sfsi_upload *u, int64_t durable)
{
	struct sfs_store *s = u->s;
	struct db *d = NULL;
	struct db_stmt *st;
	struct sfs_err e;
	enum sfs_status ret;
	int gone = 0;

	sfs_err_init(&e);
	ret = sfsi_db_get(s, &d, &e);
	st = ret ? NULL
		 : sfsi_db_prep(d,
				"UPDATE upload SET durable = ?3, expires_at = "
				"?4" ROW_WHERE,
				&e);
	if (st) {
		bind_row(st, u->row, u->id);
		sfsi_db_bind_int(st, 3, durable);
		sfsi_db_bind_int(st, 4,
				 sfs_now_ms() + s->cfg.upload_expire_s * 1000);
		ret = sfsi_db_run(st, &e);
		gone = !ret && sfsi_db_changes(d) == 0;
	} else {
		ret = SFS_IO;
	}
	sfsi_db_put(d);
	if (ret) {
		sfs_warn("upload",
			 "session '%s': cannot record %lld bytes (again at "
			 "the next sync): %s",
			 u->id, (long long)durable, e.message);
		return;
	}
	if (gone) {
		/*
		 * Another process's DELETE took the row while this PUT
		 * streamed (re-read s24 A3): it ends as after a DELETE here,
		 * its file removed at its end, under its lock.
		 */
		__atomic_store_n(&u->deleted, 1, __ATOMIC_SEQ_CST);
		return;
	}
	u->recorded = durable;
	__atomic_store_n(&u->durable, durable, __ATOMIC_SEQ_CST);
	if (!u->ending)
		sfsi_upload_notify(s, u->id);
}

/*
 * Sync the file's first `written` bytes (all in it before this call) and
 * record them, with any synced bytes a failed record left out. One
 * thread at a time: the syncer while it runs, else the writer or the
 * PUT's end.
 */
static void make_durable_to(struct sfs_stage *st, int64_t written)
{
	struct sfsi_upload *u = st->upload;

	if (__atomic_load_n(&u->failed, __ATOMIC_SEQ_CST) ||
	    __atomic_load_n(&u->deleted, __ATOMIC_SEQ_CST))
		return;
	if (written > st->durable) {
		if (fdatasync(st->fd) < 0) {
			/* what the file holds is unknown from here */
			sfs_warn("upload", "session '%s': cannot sync: %s",
				 u->id, strerror(errno));
			__atomic_store_n(&u->failed, 1, __ATOMIC_SEQ_CST);
			return;
		}
		st->durable = written;
	}
	if (st->durable > u->recorded)
		record(u, st->durable);
}

static void make_durable(struct sfs_stage *st)
{
	make_durable_to(st, st->written);
}

/*
 * The syncer: a session's syncs (fdatasync of the file, then the row's
 * commit, itself synced) in a thread of their own, so that the writer
 * goes on writing meanwhile. In the writer they held the PUT's pipeline
 * for both syncs every SFS_UPLOAD_SYNC_BYTES (10-35 ms each here, 67 per
 * GiB): its few slots filled, the receiving stopped, and the sender (a
 * remote mount's stream) waited. The syncs still come in order, each of
 * what was written before it began; one that comes late covers more.
 */
static void *syncer_main(void *arg)
{
	struct sfs_stage *st = arg;
	struct sfsi_upload *u = st->upload;
	int64_t want;

	(void)pthread_setname_np(pthread_self(), "sfs-sync");
	pthread_mutex_lock(&u->smu);
	for (;;) {
		while (u->sync_on && u->sync_want <= u->sync_done)
			pthread_cond_wait(&u->scv, &u->smu);
		if (u->sync_want <= u->sync_done || u->sync_drop)
			break; /* stopped, nothing left (or nothing wanted) */
		want = u->sync_want;
		pthread_mutex_unlock(&u->smu);
		make_durable_to(st, want);
		pthread_mutex_lock(&u->smu);
		u->sync_done = want;
	}
	pthread_mutex_unlock(&u->smu);
	return NULL;
}

/* Hand a sync of `written` bytes to the syncer; 1: none, sync here. */
static int sync_ask(struct sfs_stage *st, int64_t written)
{
	struct sfsi_upload *u = st->upload;
	int here = 0;

	pthread_mutex_lock(&u->smu);
	if (!u->sync_on && !u->sync_closed) {
		u->sync_done = st->durable;
		u->sync_on = !pthread_create(&u->syncer, NULL, syncer_main, st);
		/* no thread: the writer syncs, as it did before */
		u->sync_closed = !u->sync_on;
	}
	if (u->sync_on)
		u->sync_want = written;
	else
		here = 1;
	pthread_cond_signal(&u->scv);
	pthread_mutex_unlock(&u->smu);
	return here;
}

/*
 * The syncer's last sync done, the syncer gone: syncs are inline again.
 * drop: the session ended (its commit has the bytes, or they go): a sync
 * asked and not begun is not made (re-read s23 A6: a sync, a row update
 * and a notice for nothing, in the thread that ends the request).
 */
static void sync_stop(struct sfsi_upload *u, int drop)
{
	int on;

	pthread_mutex_lock(&u->smu);
	on = u->sync_on;
	u->sync_on = 0;
	u->sync_closed = 1;
	u->sync_drop = drop;
	pthread_cond_signal(&u->scv);
	pthread_mutex_unlock(&u->smu);
	if (on)
		pthread_join(u->syncer, NULL);
}

void sfsi_upload_written(struct sfs_stage *st)
{
	struct sfsi_upload *u = st->upload;

	if (st->written - u->asked < SFS_UPLOAD_SYNC_BYTES)
		return;
	u->asked = st->written;
	if (sync_ask(st, st->written))
		make_durable(st);
}

void sfsi_upload_received(struct sfs_stage *st)
{
	__atomic_store_n(&st->upload->received, st->size, __ATOMIC_RELAXED);
}

/*
 * The session's row and file go (its body ended; its file is gone
 * already when the commit took it). The file only with its row, as the
 * sweep's (re-read s23 A4: a row whose DELETE failed, busy or cancelled,
 * outlived its file: GET said a live session, a resume 404): else both
 * stay for a later sweep. 1 when they went.
 */
static int end_session(struct sfsi_upload *u)
{
	struct db *d = NULL;
	struct sfs_err e;
	int gone = 0;

	sfs_err_init(&e);
	if (sfsi_db_get(u->s, &d, &e))
		sfs_warn("upload", "session '%s' left for a later sweep: %s",
			 u->id, e.message);
	else
		gone = !sfsi_upload_drop(d, u->s, u->row, u->id);
	sfsi_db_put(d);
	sfsi_upload_forget(u->s, u->id);
	return gone;
}

/* Whether st's file is still at session u's path. */
static int is_session_file(const struct sfs_stage *st,
			   const struct sfsi_upload *u)
{
	char path[4096];

	sfsi_upload_path(u->s, u->id, path, sizeof(path));
	return !strcmp(st->path, path);
}

void sfs_upload_stage_end(struct sfs_stage *st, int ended)
{
	struct sfsi_upload *u;
	struct sfs_store *s;
	char id[SFS_UPLOAD_ID_SIZE];
	enum sfs_status piped;
	int deleted, keep = 0;

	if (!st)
		return;
	u = st->upload;
	if (!u) {
		sfs_stage_free(st);
		return;
	}
	s = u->s;
	sfs_strlcpy(id, u->id, sizeof(id));
	/*
	 * The pipe's writer first (it records syncs and reads st->upload
	 * until it ends), then the syncer: st->durable and the row are this
	 * thread's from here, before the row goes or st->upload is cleared.
	 */
	piped = sfsi_stage_pipe_end(st, NULL);
	sync_stop(u, ended || __atomic_load_n(&u->deleted, __ATOMIC_SEQ_CST));
	deleted = __atomic_load_n(&u->deleted, __ATOMIC_SEQ_CST);
	if (ended || deleted) {
		/*
		 * Its file, wherever the commit left it, goes with its row; a
		 * row that stays keeps it only while it is the session's (a
		 * commit that failed after naming its blob renamed it).
		 */
		if (deleted || end_session(u) || !is_session_file(st, u))
			st->keep_file = 0;
	} else if (!piped && !st->hashed) {
		/* all that came is kept: the client resumes from there */
		u->ending = 1; /* a poll told now would find it busy */
		make_durable(st);
		/* its record may find the row gone: another process's DELETE */
		deleted = __atomic_load_n(&u->deleted, __ATOMIC_SEQ_CST);
		if (deleted)
			st->keep_file = 0;
		else
			keep = st->durable == st->size && !st->random;
	}
	if (!ended && !deleted && ftruncate(st->fd, st->durable) < 0) {
		sfs_warn("upload", "session '%s': cannot cut to %lld bytes", id,
			 (long long)st->durable);
		keep = 0;
	}
	if (keep) /* after the cut, which moves the file's times */
		keep_hash(st, id);
	st->upload = NULL;
	sfs_stage_free(st); /* its file's lock goes */
	if (give_back(u) && !deleted) {
		/* a DELETE met its end: it left the file to this stage */
		unlink_if_free(s, id);
		sfsi_upload_forget(s, id);
	}
	sfsi_upload_notify(s, id);
}

enum sfs_status sfs_upload_open_durable(struct sfs_store *s,
					const struct sfs_actor *a,
					const char *file_id,
					const char *upload_id, int *fd,
					int64_t *durable, struct sfs_err *e)
{
	struct sfs_upload u;
	enum sfs_status ret;
	char path[4096];

	*fd = -1;
	ret = sfs_upload_get(s, a, file_id, upload_id, &u, e);
	if (ret)
		return ret;
	sfsi_upload_path(s, upload_id, path, sizeof(path));
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return errno == ENOENT ? not_found(e, upload_id)
				       : sfsi_errno_status(e, errno,
							   "opening an upload");
	*durable = u.durable;
	return SFS_OK;
}
