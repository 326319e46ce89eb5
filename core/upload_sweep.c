/*
 * Upload sessions at the daemon's start and later (upload.h): the store
 * directory's node id, the recovery of this node's sessions after a crash
 * (each file cut back to its row's durable offset, strays removed), and
 * the janitor's sweep of expired sessions. A session file another process
 * holds locked is live there and left alone (upload.c says why).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "db_i.h"
#include "job_i.h"
#include "speechfs/log.h"
#include "speechfs/upload.h"
#include "store_i.h"
#include "upload_i.h"
#include "util_i.h"

#define NODE_FILE ".node"

enum node_read { NODE_ERROR = -1, NODE_MISSING, NODE_FOUND, NODE_DAMAGED };

/*
 * The id in file `path` into out (NODE_FOUND); NODE_MISSING, NODE_DAMAGED
 * (it holds no id: 16 lowercase hex digits), or NODE_ERROR with errno.
 */
static enum node_read read_node(const char *path, char *out)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0)
		return errno == ENOENT ? NODE_MISSING : NODE_ERROR;
	n = read(fd, buf, sizeof(buf) - 1);
	err = errno;
	close(fd);
	errno = err;
	if (n < 0)
		return NODE_ERROR;
	buf[n] = '\0';
	if (n != 16 || strspn(buf, "0123456789abcdef") < 16)
		return NODE_DAMAGED;
	memcpy(out, buf, 16);
	out[16] = '\0';
	return NODE_FOUND;
}

/* A new id into out, written whole and synced to tmp, renamed to path. */
static enum sfs_status new_node(const char *dir, const char *path,
				const char *tmp, char *out, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;
	unsigned char r[8];
	int fd;

	if (sfsi_random(r, sizeof(r)))
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "no randomness");
	sfsi_hex(r, sizeof(r), out);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, out, 16) != 16 || fsync(fd) < 0 ||
	    rename(tmp, path) < 0)
		ret = sfsi_errno_status(e, errno, "writing the uploads' id");
	if (fd >= 0)
		close(fd);
	if (ret)
		unlink(tmp);
	else
		sfsi_fsync_dir(dir);
	return ret;
}

/*
 * This store directory's id as a daemon of sessions (made once). Every
 * process on the directory must use the same one: two that start at once
 * on a store without it would both find none and each keep its own (its
 * sessions unknown to the other, and to itself at its next start, the
 * other's write being the one on disk). So they look in turn, under a
 * lock of the directory; one that cannot read the file (EIO, EACCES ...)
 * does not start rather than replace a good id.
 */
static enum sfs_status node_id(struct sfs_store *s, struct sfs_err *e)
{
	char path[4096], tmp[4096];
	enum sfs_status ret = SFS_OK;
	enum node_read rd;
	int dfd;

	snprintf(path, sizeof(path), "%s/" NODE_FILE, s->upload_dir);
	snprintf(tmp, sizeof(tmp), "%s/" NODE_FILE ".tmp", s->upload_dir);
	dfd = open(s->upload_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || flock(dfd, LOCK_EX) < 0) {
		ret = sfsi_errno_status(e, errno,
					"locking STORE/staging/.uploads");
		goto out;
	}
	unlink(tmp); /* a crash's, between its write and its rename */
	rd = read_node(path, s->upload_node);
	if (rd == NODE_ERROR)
		ret = sfsi_errno_status(
			e, errno, "reading STORE/staging/.uploads/" NODE_FILE);
	if (rd == NODE_DAMAGED)
		sfs_warn("upload", "'%s' holds no id: a new one replaces it",
			 path);
	if (rd == NODE_MISSING || rd == NODE_DAMAGED)
		ret = new_node(s->upload_dir, path, tmp, s->upload_node, e);
out:
	if (dfd >= 0)
		close(dfd); /* and its lock */
	return ret;
}

enum sfs_status sfsi_upload_drop(struct db *d, struct sfs_store *s, int64_t row,
				 const char *id)
{
	char path[4096];
	struct sfs_err e;
	enum sfs_status ret;

	sfs_err_init(&e);
	ret = sfsi_upload_delete_row(d, row, id, &e);
	if (ret) {
		sfs_warn("upload",
			 "session '%s' left for a later sweep: cannot remove "
			 "its row: %s",
			 id, e.message);
		return ret;
	}
	sfsi_upload_path(s, id, path, sizeof(path));
	unlink(path);
	return SFS_OK;
}

struct ids {
	int64_t *row;
	char (*id)[SFS_UPLOAD_ID_SIZE];
	int64_t *durable;
	size_t n, cap;
};

static void ids_free(struct ids *l)
{
	free(l->row);
	free(l->id);
	free(l->durable);
	memset(l, 0, sizeof(*l));
}

static int ids_add(struct ids *l, int64_t row, const char *id, int64_t dur)
{
	size_t cap = l->cap ? 2 * l->cap : 64;
	void *a, *b, *c;

	if (l->n == l->cap) {
		a = realloc(l->row, cap * sizeof(*l->row));
		if (a)
			l->row = a;
		b = realloc(l->id, cap * sizeof(*l->id));
		if (b)
			l->id = b;
		c = realloc(l->durable, cap * sizeof(*l->durable));
		if (c)
			l->durable = c;
		if (!a || !b || !c)
			return -1;
		l->cap = cap;
	}
	l->row[l->n] = row;
	sfs_strlcpy(l->id[l->n], id, sizeof(l->id[0]));
	l->durable[l->n++] = dur;
	return 0;
}

/*
 * This daemon's sessions whose expiry is before `before` (INT64_MAX:
 * all of them), into l.
 */
static enum sfs_status list(struct db *d, struct sfs_store *s, int64_t before,
			    struct ids *l, struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	st = sfsi_db_prep(d,
			  "SELECT id, uuid, durable FROM upload"
			  " WHERE node = ?1 AND expires_at <= ?2",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_text(st, 1, s->upload_node);
	sfsi_db_bind_int(st, 2, before);
	while ((rc = sfsi_db_step(st, e)) == 1)
		if (ids_add(l, sfsi_db_col_int(st, 0), sfsi_db_col_text(st, 1),
			    sfsi_db_col_int(st, 2))) {
			rc = -1;
			break;
		}
	sfsi_db_reset(st);
	return rc < 0 ? sfs_errf(e, SFS_IO, SFS_R_NONE,
				 "cannot list the upload sessions")
		      : SFS_OK;
}

/* Whether session `id` has a row of this node: 1, 0, or -1 an error. */
static int has_row(struct db *d, struct sfs_store *s, const char *id)
{
	struct db_stmt *st = sfsi_db_prep(
		d, "SELECT 1 FROM upload WHERE uuid = ?1 AND node = ?2", NULL);
	int rc;

	if (!st)
		return -1;
	sfsi_db_bind_text(st, 1, id);
	sfsi_db_bind_text(st, 2, s->upload_node);
	rc = sfsi_db_step(st, NULL);
	sfsi_db_reset(st);
	return rc;
}

/*
 * Delete the rows of session `id` of other nodes: the number deleted,
 * or -1. Its file is in this store directory, so they are of this
 * directory's old id (a .node that held none was replaced): no process
 * knows them any more, and no sweep would ever look at them (re-read s22
 * A6: they stayed in the table, their files in .uploads/ for good).
 */
static int delete_old_rows(struct db *d, struct sfs_store *s, const char *id)
{
	struct db_stmt *st = sfsi_db_prep(
		d, "DELETE FROM upload WHERE uuid = ?1 AND node <> ?2", NULL);

	if (!st)
		return -1;
	sfsi_db_bind_text(st, 1, id);
	sfsi_db_bind_text(st, 2, s->upload_node);
	if (sfsi_db_run(st, NULL))
		return -1;
	return sfsi_db_changes(d);
}

/*
 * Session `id` (row `row`) after a crash, its file locked in fd (-1: it
 * is missing): cut back to what the row (read again under the lock) says
 * is durable; missing or shorter (a disk that is not the one its row
 * knew): it ends. A file that cannot be cut is left as it is, with a
 * warning: one session's disk error must not keep the daemon from
 * starting, and the bytes past its durable offset are never used (a GET
 * of its content serves the durable ones; a resume cuts the file first).
 */
static enum sfs_status recover_one(struct db *d, struct sfs_store *s,
				   int64_t row, const char *id, int fd,
				   struct sfs_err *e)
{
	struct sfsi_upload_row f;
	struct stat sb;
	char path[4096];
	int rc = sfsi_upload_reread(d, row, id, &f, e);

	if (rc <= 0)
		return rc < 0 ? SFS_IO : SFS_OK; /* ended meanwhile */
	if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size < f.durable) {
		sfs_warn("upload", "session '%s' lost its bytes: it ends", id);
		if (sfsi_upload_drop(d, s, row, id) && fd >= 0) {
			/*
			 * its row stays: a resume must find no file (404), not
			 * one a cut to the row's offset fills with zeros
			 */
			sfsi_upload_path(s, id, path, sizeof(path));
			unlink(path);
		}
	} else if (sb.st_size > f.durable && ftruncate(fd, f.durable) < 0) {
		sfs_warn("upload",
			 "session '%s': cannot cut it back to its %lld durable "
			 "bytes: %s; left as it is",
			 id, (long long)f.durable, strerror(errno));
	}
	return SFS_OK;
}

/*
 * A file of .uploads/ without a row in l: gone unless live elsewhere or
 * made meanwhile (a row of this node now), its rows of an old id with it.
 * 1 when it had such rows, else 0.
 */
static int recover_stray(struct db *d, struct sfs_store *s, const char *id)
{
	char path[4096];
	int fd, old = 0;

	/* a session being made locks its file until its row is in */
	if (sfsi_upload_lock(s, id, &fd, NULL))
		return 0;
	sfsi_upload_path(s, id, path, sizeof(path));
	if (has_row(d, s, id) == 0) {
		old = delete_old_rows(d, s, id);
		if (old >= 0)
			unlink(path);
	}
	close(fd);
	return old > 0;
}

/*
 * After a crash: each session's file cut back to its durable offset, a
 * file without a row of this node removed (and its rows of an old id).
 * A file another process holds (it runs on this store directory, its PUT
 * streams into it) is live: left alone.
 */
static enum sfs_status recover(struct db *d, struct sfs_store *s,
			       struct sfs_err *e)
{
	struct ids l = { 0 };
	struct dirent *de;
	enum sfs_status ret;
	enum sfs_status lk;
	struct sfs_err le;
	size_t i;
	DIR *dh;
	int fd, old = 0;

	ret = list(d, s, INT64_MAX, &l, e);
	for (i = 0; !ret && i < l.n; i++) {
		sfs_err_init(&le);
		lk = sfsi_upload_lock(s, l.id[i], &fd, &le);
		if (!lk || lk == SFS_NOT_FOUND)
			ret = recover_one(d, s, l.row[i], l.id[i], fd, e);
		else if (lk != SFS_CONFLICT) /* a disk error: not lost */
			sfs_warn("upload", "session '%s' left as it is: %s",
				 l.id[i], le.message);
		if (fd >= 0)
			close(fd);
	}
	dh = ret ? NULL : opendir(s->upload_dir);
	while (dh && (de = readdir(dh))) {
		int known = 0;

		if (!sfs_upload_id_valid(de->d_name))
			continue;
		for (i = 0; i < l.n && !known; i++)
			known = !strcmp(l.id[i], de->d_name);
		if (!known)
			old += recover_stray(d, s, de->d_name);
	}
	if (dh)
		closedir(dh);
	if (old)
		sfs_warn("upload",
			 "%d session(s) of this store directory's former id "
			 "removed",
			 old);
	ids_free(&l);
	return ret;
}

/*
 * Whether session `id` may go as expired: its file is locked here (or
 * missing), and its row (read again under the lock) is still expired.
 * When it may, *fd keeps the lock (-1: the file is missing) until the
 * session is gone: a PUT that found the row just before it expired must
 * not take the file between this look and the removal (it would stream
 * into a session removed under it). A file that cannot be opened or
 * locked (EMFILE, EIO ...) may be another process's live session: it
 * waits for a later sweep.
 */
static int expired(struct db *d, struct sfs_store *s, int64_t row,
		   const char *id, int *fd)
{
	struct sfsi_upload_row f;
	enum sfs_status lk;
	struct sfs_err le;

	sfs_err_init(&le);
	lk = sfsi_upload_lock(s, id, fd, &le);
	if (lk == SFS_CONFLICT)
		return 0;
	if (lk && lk != SFS_NOT_FOUND) {
		sfs_warn("upload",
			 "expired session '%s' left for a later sweep: %s", id,
			 le.message);
		return 0;
	}
	if (sfsi_upload_reread(d, row, id, &f, NULL) == 1 &&
	    f.expires <= sfs_now_ms())
		return 1;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return 0;
}

enum sfs_status sfs_upload_sweep(struct sfs_store *s, int *n, struct sfs_err *e)
{
	struct ids l = { 0 };
	struct db *d = NULL;
	enum sfs_status ret;
	size_t i;
	int k = 0, fd, gone;

	if (n)
		*n = 0;
	if (!s->upload_dir)
		return SFS_OK;
	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = list(d, s, sfs_now_ms(), &l, e);
	for (i = 0; !ret && i < l.n; i++) {
		/* a PUT streaming into it moves its expiry on at its end */
		if (sfsi_upload_busy_here(s, l.id[i]) ||
		    !expired(d, s, l.row[i], l.id[i], &fd))
			continue;
		gone = !sfsi_upload_drop(d, s, l.row[i], l.id[i]);
		if (fd >= 0)
			close(fd);
		if (!gone)
			continue;
		sfsi_upload_forget(s, l.id[i]);
		sfsi_upload_notify(s, l.id[i]);
		k++;
	}
	sfsi_db_put(d);
	ids_free(&l);
	if (k)
		sfs_info("upload", "%d expired upload session(s) removed", k);
	if (n)
		*n = k;
	return ret;
}

static void sweep_chore(struct sfs_store *s)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_upload_sweep(s, NULL, &e))
		sfs_warn("upload", "sweep failed: %s", e.message);
}

enum sfs_status sfs_upload_install(struct sfs_store *s, struct sfs_err *e)
{
	struct db *d = NULL;
	enum sfs_status ret;
	char path[4096];

	if (s->ops || s->upload_dir)
		return SFS_OK;
	snprintf(path, sizeof(path), "%s/staging/.uploads", s->dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return sfsi_errno_status(e, errno,
					 "making STORE/staging/.uploads");
	s->upload_dir = strdup(path);
	if (!s->upload_dir)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	ret = node_id(s, e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = recover(d, s, e);
	sfsi_db_put(d);
	if (ret) {
		free(s->upload_dir);
		s->upload_dir = NULL;
		return ret;
	}
	sfsi_janitor_add(s, sweep_chore);
	return SFS_OK;
}
