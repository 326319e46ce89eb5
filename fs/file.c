/*
 * Open files of the mount. Each handle open for writing writes a version
 * of its own (a stage that becomes a new content version of the same file
 * id when it is closed or fsync'd; the commit's error is what close() and
 * fsync() return). A read-only handle reads the version it opened (the
 * immutable blob, kept even when the file is deleted meanwhile), or,
 * opened while the file was being written, the version of the writer that
 * changed it last, as it goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "file_i.h"
#include "speechfs/blob.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

static struct fh *fh_of(struct fuse_file_info *fi)
{
	return (struct fh *)(uintptr_t)fi->fh;
}

/*
 * (Re)open the committed content for h (of locked). Bytes kept in an
 * object store are read through the store's local block cache; a
 * writer's are its base, kept at once (SFS_BLOB_KEEP).
 */
static int open_content(struct fh *h, unsigned fresh)
{
	struct sfs_err e;
	enum sfs_status st;

	if (h->blob && h->version == h->of->version && !fresh)
		return 0;
	sfs_blob_close(h->blob);
	h->blob = NULL;
	sfs_err_init(&e);
	st = sfs_file_open_ino(g_fs.store, &g_fs.actor, h->of->ino, h->which,
			       (h->writable ? SFS_BLOB_CACHED | SFS_BLOB_KEEP
					    : SFS_BLOB_CACHED) |
				       fresh,
			       &h->blob, NULL, &e);
	if (st && st != SFS_GONE && st != SFS_NOT_READY && st != SFS_WOULD_WAIT)
		sfs_warn("fs", "cannot open the content of '%s': %s", h->of->id,
			 e.message);
	h->version = h->of->version;
	return -fs_errno(st, &e);
}

/* Read all of [off, off + size) that the blob has; bytes or -errno. */
static int blob_read(struct sfs_blob *b, char *buf, size_t size, off_t off)
{
	struct sfs_err e;
	enum sfs_status st;
	size_t done = 0, got;

	sfs_err_init(&e);
	while (done < size) {
		st = sfs_blob_pread(b, buf + done, size - done,
				    (int64_t)off + (int64_t)done, &got, &e);
		if (st) {
			if (st != SFS_WOULD_WAIT) /* a worker reads it */
				sfs_warn("fs", "cannot read content: %s",
					 e.message);
			return -fs_errno(st, &e);
		}
		if (!got)
			break;
		done += got;
	}
	return (int)done;
}

static void reply_bytes(void *arg, const void *data, size_t len)
{
	fuse_reply_buf(*(fuse_req_t *)arg, data, len);
}

/*
 * Answer a read with the blob's own memory (a block fetched from far
 * away): one copy of each byte fewer than through the reply buffer. 0
 * when the blob cannot lend those bytes (nothing answered).
 */
static int reply_lent(fuse_req_t req, struct sfs_blob *b, size_t size,
		      off_t off)
{
	struct sfs_err e;
	enum sfs_status st;

	sfs_err_init(&e);
	st = sfs_blob_lend(b, (int64_t)off, size, reply_bytes, &req, &e);
	if (st == SFS_UNSUPPORTED)
		return 0;
	if (st) {
		if (st != SFS_WOULD_WAIT) /* a worker reads it */
			sfs_warn("fs", "cannot read content: %s", e.message);
		fs_reply_err(req, fs_errno(st, &e));
	}
	return 1;
}

/* The flags of a content commit (commit_stage). */
static unsigned commit_flags(void)
{
	return SFS_SET_IF_AUDIO | (g_fs.generate ? SFS_SET_LISTENING : 0) |
	       (g_fs.commit_ms ? SFS_SET_NOSYNC : 0);
}

/*
 * A test's hold on a slow step: with the variable `var` naming a FIFO,
 * the first such step of the mount waits until the test opens the FIFO
 * and writes a byte. SPEECHFS_TEST_HOLD_COMMIT holds the first content
 * commit (without the file's lock); SPEECHFS_TEST_HOLD_BASE the first
 * copy of a writer's base, with the lock, as a slow server would.
 */
static void test_hold(const char *var, int *done)
{
	const char *fifo = getenv(var);
	char c;
	int fd;

	if (!fifo || __atomic_exchange_n(done, 1, __ATOMIC_SEQ_CST))
		return;
	fd = open(fifo, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		while (read(fd, &c, 1) < 0 && errno == EINTR)
			;
		close(fd);
	}
}

/*
 * Make a writer's version on its first change: a copy of the content, or
 * empty (of locked). An empty one written in order may be sent to a
 * remote store's server as it is written (sfs_stage_set_target). A copy
 * may wait far away (a server, an object store, a big file): the caller
 * made itself a slow holder first (fs_become_slow, when !empty && !h->stage).
 */
static int ensure_stage(struct fh *h, int empty)
{
	static int held;
	unsigned fresh = 0;
	struct sfs_err e;
	enum sfs_status st;
	int ret = 0, tries = 0;

	if (h->stage)
		return 0;
	if (!empty)
		test_hold("SPEECHFS_TEST_HOLD_BASE", &held);
again:
	sfs_err_init(&e);
	st = sfs_stage_new(g_fs.store, &h->stage, &e);
	if (st)
		return -fs_errno(st, &e);
	if (empty)
		sfs_stage_set_target(h->stage, h->of->id, commit_flags());
	if (!empty) {
		/* the base: from a server, an object store, or a big file */
		ret = open_content(h, fresh);
		if (ret == -ENODATA) {
			ret = 0; /* no content (discarded): starts empty */
		} else if (!ret) {
			st = sfs_stage_copy_blob(h->stage, h->blob, &e);
			ret = -fs_errno(st, &e);
		}
	}
	if (ret) {
		sfs_stage_free(h->stage);
		h->stage = NULL;
	}
	/*
	 * Replaced by others' commit since it was opened (a remote store's
	 * server keeps the current version only, SFS_BLOB_KEEP kept its
	 * first block): nothing is written yet, so the version the store
	 * has now is the base.
	 */
	if (ret == -ESTALE && !empty && ++tries < 4) {
		fresh = SFS_BLOB_FRESH;
		goto again;
	}
	return ret;
}

/* h changed its version: readers opened from now on see it. */
static void touched(struct fh *h)
{
	h->dirty = 1;
	h->failed = 0;
	h->mtime_ns = sfs_now_ns();
	h->set_mtime_ns = 0;
	h->of->writer = h;
}

/* Wait until h's version is not being committed (of locked). */
static void wait_commit_of(struct ofile *of, const struct fh *h)
{
	while (of->committing && (!h || of->committing == h))
		pthread_cond_wait(&of->cv, &of->lock);
}

/*
 * Wait until h's stage is h's to change (of locked): no commit of its
 * version runs and no write of it waits at the window (h->windowing).
 */
static void wait_stage_of(struct fh *h)
{
	while (h->of->committing == h || h->windowing)
		pthread_cond_wait(&h->of->cv, &h->of->lock);
}

/*
 * Whether h's write of size bytes at off would wait for a remote server
 * to free its stage (the stream's window, sfs_stage_write_waits; of
 * locked).
 */
static int window_waits(struct fh *h, off_t off, size_t size)
{
	if (!h->stage)
		return 0;
	if (h->append)
		off = sfs_stage_size(h->stage);
	return sfs_stage_write_waits(h->stage, off, size);
}

/*
 * Wait at h's window for the server to free room for size bytes (of
 * locked, on a worker), with the file's lock let go: the wait lasts as
 * long as the server frees nothing (up to -o timeout, again and again
 * for a server slower than the writer), and the file's attributes (stat,
 * ls -l), its readers and its other handles answer meanwhile, while the
 * reading thread keeps its fast paths (no slow holder: fs_file_busy).
 * Under the lock it held, the stage was the writer's alone: h->windowing
 * keeps it so (wait_stage_of) until the lock is taken again.
 */
static void window_wait(struct fh *h, size_t size)
{
	struct ofile *of = h->of;
	struct sfs_stage *stage = h->stage;

	h->windowing++;
	pthread_mutex_unlock(&of->lock);
	sfs_stage_window_wait(stage, size);
	pthread_mutex_lock(&of->lock);
	h->windowing--;
	/* the others wake once this write is made and the lock let go */
	pthread_cond_broadcast(&of->cv);
}

/*
 * Get h ready to write size bytes at off (of locked): its last version's
 * commit over, its stage made (a base copied: announced first,
 * fs_become_slow) or the server to free room in the stage (window_wait,
 * without the lock). The reading thread (fs_nowait) waits for none:
 * -FS_EWAIT, nothing changed, and the write goes to a worker.
 */
static int write_ready(struct fh *h, off_t off, size_t size, int *slow)
{
	if (fs_nowait() && (h->of->committing == h || h->windowing ||
			    !h->stage || window_waits(h, off, size)))
		return -FS_EWAIT;
	do
		wait_stage_of(h);
	while (!h->stage && fs_become_slow(h->of, slow));
	/*
	 * Once: the wait ends when the window has room, or is off, or the
	 * mount stops (then the write goes on past the window).
	 */
	if (window_waits(h, off, size))
		window_wait(h, size);
	return ensure_stage(h, 0);
}

/* Make a content-less create durable (touch); 0 or -errno. */
static int commit_create(struct ofile *of)
{
	struct sfs_err e;
	enum sfs_status st;

	/* a remote store (or PostgreSQL) has no batch: the sync is asked */
	if (g_fs.commit_ms && sfs_store_batching(g_fs.store)) {
		of->lazy = 0; /* durable with its batch */
		return 0;
	}
	sfs_err_init(&e);
	st = sfs_file_sync(g_fs.store, &g_fs.actor, of->id, &e);
	if (st == SFS_CONFLICT && e.reason == SFS_R_FILE_DELETED)
		st = SFS_OK;
	if (!st)
		of->lazy = 0;
	else
		sfs_warn("fs", "cannot sync '%s': %s", of->id, e.message);
	return -fs_errno(st, &e);
}

/* Commit a stage as the content of file `id` (no lock held). */
static enum sfs_status commit_stage(const char *id, struct sfs_stage *stage,
				    struct sfs_err *e)
{
	static int held;
	enum sfs_status st;

	test_hold("SPEECHFS_TEST_HOLD_COMMIT", &held);
	st = sfs_file_set_content(g_fs.store, &g_fs.actor, id, stage,
				  commit_flags(), NULL, e);
	if (st == SFS_CONFLICT && e->reason == SFS_R_FILE_DELETED) {
		/* unlinked while open: its writes go nowhere, as on POSIX */
		sfs_err_init(e);
		return SFS_OK;
	}
	if (st)
		sfs_warn("fs", "cannot commit '%s': %s", id, e->message);
	return st;
}

/*
 * Commit a writer's version as the file's new content (of locked; the
 * lock is let go while the commit runs). On failure the previous
 * content stays and the version is dropped: the error is reported by the
 * close() or fsync() that triggered it, and by every later close() of the
 * handle until it writes again or an fsync() has said it. A handle is
 * shared by every descriptor of one open (dup, fork): a child that closes
 * its copy (at exec or exit) sends a flush too, and when that commit
 * failed, the writer's own close() must not say 0 for the bytes the
 * server never got. With spent, the stage committed is the caller's to
 * free (a flush frees it once answered: emptying its file for the next
 * stage took 25-35 us of the close, a remote mount's small creates).
 */
static int commit_to(struct fh *h, struct sfs_stage **spent)
{
	struct sfs_file_update u = { 0 };
	struct ofile *of = h->of;
	struct sfs_stage *stage;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	/* nothing to commit, nothing to wait for (a release answered by
	 * the reading thread must not wait for another handle's commit) */
	if (!h->dirty && !of->lazy)
		return h->failed;
	/* the reading thread waits for no other commit (fs_nowait), nor
	 * for a write of h at the window */
	if ((of->committing || h->windowing) && fs_nowait())
		return -FS_EWAIT;
	/* one commit of a file at a time, of a stage no write waits on */
	while (of->committing || h->windowing)
		pthread_cond_wait(&of->cv, &of->lock);
	if (!h->dirty && !of->lazy)
		return h->failed;
	of->committing = h;
	pthread_mutex_unlock(&of->lock);
	sfs_err_init(&e);
	if (!h->dirty) {
		/* a created file closed without content (touch), or one
		 * whose content a flush of this handle could not commit:
		 * its name made durable, that failure still said */
		ret = commit_create(of);
		pthread_mutex_lock(&of->lock);
		if (!ret)
			ret = h->failed;
		goto out;
	}
	st = commit_stage(of->id, h->stage, &e);
	pthread_mutex_lock(&of->lock);
	if (!st)
		of->lazy = 0; /* a content commit syncs the lazy create */
	stage = h->stage;
	h->stage = NULL;
	h->dirty = 0;
	of->version++;
	if (of->writer == h)
		of->writer = fs_other_writer(of, h);
	u.mtime_ns = h->set_mtime_ns;
	h->set_mtime_ns = 0;
	/*
	 * The stage freed without the file's lock: its stream, when the
	 * commit returned before taking it (a failed hash), is cut off and
	 * joined there, and a stat of the file answered by the reading
	 * thread must not wait for that (review s14 finding 2).
	 */
	pthread_mutex_unlock(&of->lock);
	if (spent)
		*spent = stage;
	else
		sfs_stage_free(stage);
	if (!st && u.mtime_ns) {
		u.set = SFS_UPD_MTIME;
		if (sfs_file_update(g_fs.store, &g_fs.actor, of->id, &u, NULL,
				    &e))
			sfs_warn("fs", "cannot set the mtime of '%s': %s",
				 of->id, e.message);
		sfs_err_init(&e);
	}
	pthread_mutex_lock(&of->lock);
	ret = -fs_errno(st, &e);
	h->failed = ret;
out:
	of->committing = NULL;
	pthread_cond_broadcast(&of->cv);
	return ret;
}

static int commit(struct fh *h)
{
	return commit_to(h, NULL);
}

/*
 * A handle of file ino, attached to its open file: 0 with (*hp)->of
 * locked, -ENOMEM, or -FS_EWAIT on a thread that may not wait for the
 * file's lock (fs_ofile_lock).
 */
static int fh_new(int64_t ino, const char *id, int writable, struct fh **hp)
{
	struct fh *h = calloc(1, sizeof(*h));
	int ret;

	if (!h)
		return -ENOMEM;
	h->writable = writable;
	ret = fs_ofile_attach(h, ino, id);
	if (ret) {
		free(h);
		return ret;
	}
	*hp = h;
	return 0;
}

/* Free h (locked: its file's lock is held, and let go). */
static void fh_free(struct fh *h, int locked)
{
	fs_ofile_detach(h, locked);
	sfs_blob_close(h->blob);
	sfs_stage_free(h->stage);
	free(h);
}

/* Open a file for reading: its row and its content, loaded once. */
static int open_read(uint64_t node, struct fuse_file_info *fi, struct fh **hp)
{
	enum sfs_content which = FS_KIND(node) == FS_LA_FILE
					 ? SFS_CONTENT_LISTENING
					 : SFS_CONTENT_ORIGINAL;
	struct sfs_file f;
	struct sfs_err e;
	enum sfs_status st;
	struct sfs_blob *blob = NULL;
	struct fh *h = NULL;
	int ret;

	sfs_file_init(&f);
	sfs_err_init(&e);
	st = sfs_file_open_ino(g_fs.store, &g_fs.actor, FS_ID(node), which,
			       SFS_BLOB_CACHED, &blob, &f, &e);
	ret = -fs_errno(st, &e);
	if (!ret && FS_KIND(node) == FS_FILE && f.deleted)
		ret = -ENOENT;
	if (!ret)
		ret = fh_new(f.ino, f.id, 0, &h);
	if (ret) {
		sfs_blob_close(blob);
		goto out;
	}
	pthread_mutex_unlock(&h->of->lock); /* h->follow set */
	h->blob = blob;
	h->which = which;
	fi->keep_cache = !h->follow &&
			 fs_same_content(node, which ? f.la.sha256 : f.sha256);
	*hp = h;
out:
	sfs_file_release(&f);
	return ret;
}

/* Open a file for writing (not in /.listening/ or /.trash/). */
static int open_write(uint64_t node, struct fuse_file_info *fi, struct fh **hp)
{
	int trunc = !!(fi->flags & O_TRUNC);
	struct sfs_file f;
	struct sfs_err e;
	enum sfs_status st;
	struct sfs_blob *blob = NULL;
	struct fh *h = NULL;
	int ret;

	if (FS_KIND(node) == FS_LA_FILE)
		return -EACCES; /* the mirror is read-only */
	ret = fs_may_change();
	if (ret)
		return ret;
	sfs_file_init(&f);
	sfs_err_init(&e);
	/* the content a write will start from, with the row */
	st = trunc ? SFS_GONE
		   : sfs_file_open_ino(g_fs.store, &g_fs.actor, FS_ID(node),
				       SFS_CONTENT_ORIGINAL,
				       SFS_BLOB_CACHED | SFS_BLOB_KEEP, &blob,
				       &f, &e);
	if (st == SFS_GONE || st == SFS_NOT_READY) {
		sfs_err_init(&e);
		st = sfs_file_get_ino(g_fs.store, &g_fs.actor, FS_ID(node), &f,
				      &e);
	}
	ret = -fs_errno(st, &e);
	/* the trash is read-only; a file deleted meanwhile is gone */
	if (!ret && f.deleted)
		ret = FS_KIND(node) == FS_TRASH_FILE ? -EACCES : -ENOENT;
	if (!ret && (st = sfs_file_allows(&f, SFS_ACT_WRITE, &e)))
		ret = -fs_errno(st, &e);
	if (!ret)
		ret = fh_new(f.ino, f.id, 1, &h);
	if (ret) {
		sfs_blob_close(blob);
		goto out;
	}
	h->blob = blob;
	h->append = !!(fi->flags & O_APPEND);
	if (trunc) {
		ret = ensure_stage(h, 1);
		if (!ret)
			touched(h);
	}
	if (ret) {
		fh_free(h, 1);
		goto out;
	}
	pthread_mutex_unlock(&h->of->lock);
	fi->keep_cache = 0;
	*hp = h;
out:
	sfs_file_release(&f);
	return ret;
}

void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = NULL;
	int ret;

	if (!fs_is_file_kind(FS_KIND(ino))) {
		fs_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) == O_RDONLY)
		ret = open_read(ino, fi, &h);
	else
		ret = open_write(ino, fi, &h);
	if (ret) {
		fs_reply_err(req, -ret);
		return;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = 0;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fh_free(h, 0); /* the open was interrupted */
}

/*
 * Make the file `name` in directory node parent, as node c: committed at
 * once so that every process sees it; with lazy, without waiting for the
 * disk (its first close or content commit makes it durable).
 */
static int make_file(uint64_t parent, const char *name, int lazy,
		     struct fs_node *c)
{
	struct sfs_file_spec spec = { 0 };
	char *dname = NULL, *filename = NULL;
	struct fs_node n;
	struct sfs_err err;
	enum sfs_status st;
	int ret;

	sfs_err_init(&err);
	ret = fs_dir_of(parent, &n);
	if (!ret && n.kind != FS_DIR && parent != FS_ROOT)
		ret = -EACCES;
	if (!ret)
		ret = fs_may_change();
	if (!ret)
		ret = fs_name_free(parent, &n, name);
	if (!ret)
		ret = fs_names_for_entry(NULL, name, &dname, &filename);
	if (ret)
		goto out;
	spec.name = dname;
	spec.filename = filename;
	spec.path = n.dir;
	spec.no_suffix = 1; /* the entry is exactly the one created */
	spec.lazy = lazy;
	st = sfs_file_create(g_fs.store, &g_fs.actor, &spec, NULL, &c->f, &err);
	ret = -fs_errno(st, &err);
	if (!ret) {
		fs_names_added(n.dir, name, &c->f);
		c->kind = FS_FILE;
		c->id = FS_NODE(FS_FILE, c->f.ino);
	}
out:
	free(dname);
	free(filename);
	fs_node_release(&n);
	return ret;
}

void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	struct fs_node c;
	struct fh *h = NULL;
	int ret;

	(void)mode;
	memset(&c, 0, sizeof(c));
	sfs_file_init(&c.f);
	ret = make_file(parent, name, 1, &c);
	if (!ret)
		ret = fh_new(c.f.ino, c.f.id, 1, &h);
	if (ret)
		goto out;
	/*
	 * Its content starts empty, in the handle's version, which readers
	 * opened from now on read (follow), as they would after its first
	 * write: its writes may skip the page cache (direct_io below), and
	 * a reader opened before them then read the empty version it opened
	 * for good (0 bytes at any size stat gave, a mapping's SIGBUS).
	 */
	h->of->lazy = 1;
	ret = ensure_stage(h, 1);
	if (!ret)
		h->of->writer = h;
	pthread_mutex_unlock(&h->of->lock);
	if (!ret)
		ret = fs_entry_of(&c, parent, name, &e);
	if (ret) {
		fh_free(h, 0);
		goto out;
	}
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;
	/*
	 * A new file opened only to write: its writes bypass the kernel's
	 * page cache (nothing of a new file is cached yet, and no reader can
	 * map it through this handle), so the kernel does not ask the
	 * security.capability attribute before each write (file_remove_privs,
	 * a GETXATTR round trip per write() that the mount answers ENOTSUP).
	 */
	fi->direct_io = (fi->flags & O_ACCMODE) == O_WRONLY;
	fuse_reply_create(req, &e, fi);
out:
	if (ret)
		fs_reply_err(req, -ret);
	fs_node_release(&c);
}

/*
 * mknod makes only regular files (tar does so for files with attributes):
 * empty and durable at once, as no close will follow. Device nodes and
 * pipes have no place in the model.
 */
void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	      dev_t rdev)
{
	struct fuse_entry_param e;
	struct fs_node c;
	int ret;

	(void)rdev;
	memset(&c, 0, sizeof(c));
	sfs_file_init(&c.f);
	ret = S_ISREG(mode) ? make_file(parent, name, 0, &c) : -EPERM;
	if (!ret)
		ret = fs_entry_of(&c, parent, name, &e);
	if (ret)
		fs_reply_err(req, -ret);
	else
		fuse_reply_entry(req, &e);
	fs_node_release(&c);
}

/* Whether h's read of [off, off + size) fetches from far away (of locked). */
static int fetches(const struct fh *h, off_t off, size_t size)
{
	return !h->blob || h->version != h->of->version ||
	       !sfs_blob_ready(h->blob, off, size);
}

/*
 * Whether h reads its own version (h->blob, which then never changes):
 * without the file's lock. A follower that left the follow path
 * (follow_end) is one from then on; h->follow is cleared under the lock,
 * once h->blob holds the version it reads.
 */
static int reads_own(const struct fh *h)
{
	return !h->writable && !__atomic_load_n(&h->follow, __ATOMIC_ACQUIRE);
}

/*
 * A follower of a file nobody can write any more (no handle open for
 * writing, no commit running) reads the committed version, h->blob, as a
 * reader opened now would: without the file's lock from now on, so its
 * reads run in parallel and lend the block cache's memory (of locked).
 * While a handle may write, it follows (a flush leaves no writer, but its
 * handle may write again).
 */
static void follow_end(struct fh *h)
{
	struct ofile *of = h->of;

	if (h->follow && h->blob && h->version == of->version &&
	    !of->committing && !fs_ofile_writable(of))
		__atomic_store_n(&h->follow, 0, __ATOMIC_RELEASE);
}

/* A read of h's own version (reads_own): from the blob. */
static void read_own(fuse_req_t req, struct fh *h, size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
	char *mem;
	int ret;

	/* a local file: straight from the blob (splice) */
	if (sfs_blob_fd(h->blob) >= 0) {
		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = sfs_blob_fd(h->blob);
		bv.buf[0].pos = off;
		fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	/*
	 * Kept in an object store: through memory, without the file's lock
	 * (the blob never changes), so reads in parallel stay parallel while
	 * blocks are fetched.
	 */
	if (reply_lent(req, h->blob, size, off))
		return;
	mem = fs_reply_buf(size ? size : 1);
	if (!mem) {
		fs_reply_err(req, ENOMEM);
		return;
	}
	ret = blob_read(h->blob, mem, size, off);
	if (ret < 0)
		fs_reply_err(req, -ret);
	else
		fuse_reply_buf(req, mem, (size_t)ret);
}

void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	struct ofile *of = h->of;
	struct sfs_err e;
	enum sfs_status st;
	struct fh *w;
	size_t got = 0;
	char *mem;
	int ret = 0, slow = 0;

	(void)ino;
	if (reads_own(h)) {
		read_own(req, h, size, off);
		return;
	}
	mem = fs_reply_buf(size ? size : 1);
	if (!mem) {
		fs_reply_err(req, ENOMEM);
		return;
	}
	sfs_err_init(&e);
	ret = fs_ofile_lock(of);
	if (ret) {
		fs_reply_err(req, -ret);
		return;
	}
	/* it left the follow path while this read waited for the lock */
	if (reads_own(h)) {
		pthread_mutex_unlock(&of->lock);
		read_own(req, h, size, off);
		return;
	}
	/*
	 * A writer reads its version, a follower the last writer's (the
	 * blob once its commit is over); bytes to fetch from far away make
	 * the thread a slow holder first. The reading thread waits for
	 * neither (fs_nowait): the read goes to a worker.
	 */
	for (;;) {
		w = h->stage ? h : h->follow ? of->writer : NULL;
		if (!(w && w == of->committing) &&
		    ((w && w->stage) || !fetches(h, off, size)))
			break;
		if (fs_nowait())
			ret = -FS_EWAIT;
		else if (w && w == of->committing)
			pthread_cond_wait(&of->cv, &of->lock);
		else if (!fs_become_slow(of, &slow))
			break;
		if (ret)
			break;
	}
	if (ret) {
		/* nothing read */
	} else if (w && w->stage) {
		st = sfs_stage_pread(w->stage, mem, size, off, &got, &e);
		ret = -fs_errno(st, &e);
	} else {
		/* bytes to fetch: from far away, under the file's lock */
		ret = open_content(h, 0);
		if (!ret) {
			follow_end(h);
			ret = blob_read(h->blob, mem, size, off);
		}
		got = ret < 0 ? 0 : (size_t)ret;
		ret = ret < 0 ? ret : 0;
	}
	pthread_mutex_unlock(&of->lock);
	if (slow)
		fs_slow_end();
	if (ret)
		fs_reply_err(req, -ret);
	else
		fuse_reply_buf(req, mem, got);
}

void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	struct sfs_err e;
	enum sfs_status st;
	int ret, slow = 0;

	(void)ino;
	if (!h->writable) {
		fs_reply_err(req, EBADF);
		return;
	}
	sfs_err_init(&e);
	ret = fs_ofile_lock(h->of);
	if (ret) {
		fs_reply_err(req, -ret);
		return;
	}
	ret = write_ready(h, off, size, &slow);
	if (!ret) {
		if (h->append)
			off = sfs_stage_size(h->stage);
		st = sfs_stage_pwrite(h->stage, buf, size, off, &e);
		ret = -fs_errno(st, &e);
		if (!st)
			touched(h);
	}
	pthread_mutex_unlock(&h->of->lock);
	if (slow)
		fs_slow_end();
	if (ret)
		fs_reply_err(req, -ret);
	else
		fuse_reply_write(req, size);
}

/*
 * Truncate a writer's version (of locked; *slow as for fs_become_slow, which
 * it calls when the version's base is to be copied).
 */
static int truncate_locked(struct fh *h, off_t size, int *slow)
{
	struct sfs_err e;
	int ret;

	sfs_err_init(&e);
	do
		wait_stage_of(h);
	while (!h->stage && size && fs_become_slow(h->of, slow));
	ret = ensure_stage(h, size == 0);
	if (!ret)
		ret = -fs_errno(sfs_stage_truncate(h->stage, size, &e), &e);
	if (!ret)
		touched(h);
	return ret;
}

int fs_truncate(int64_t ino, const char *id, off_t size,
		struct fuse_file_info *fi)
{
	struct fh *h, *w;
	int ret, slow = 0;

	if (size < 0)
		return -EINVAL;
	if (fi && fi->fh) {
		h = fh_of(fi);
		if (!h->writable)
			return -EBADF;
		pthread_mutex_lock(&h->of->lock);
		ret = truncate_locked(h, size, &slow);
		pthread_mutex_unlock(&h->of->lock);
		if (slow)
			fs_slow_end();
		return ret;
	}
	/*
	 * By name: the version of the file's writer, if it has one (the
	 * kernel truncates by name what a writer opened with O_TRUNC), or
	 * a new version committed at once.
	 */
	ret = fh_new(ino, id, 1, &h);
	if (ret)
		return ret;
	for (;;) {
		wait_commit_of(h->of, NULL); /* a committed writer is none */
		w = h->of->writer;
		/* picked with the lock held to its truncate: freed otherwise */
		if (w && w->windowing)
			pthread_cond_wait(&h->of->cv, &h->of->lock);
		else if (w || !size || !fs_become_slow(h->of, &slow))
			break;
	}
	ret = truncate_locked(w ? w : h, size, &slow);
	if (slow)
		fs_slow_end(); /* copied; a commit lets go of the lock */
	if (!ret && !w)
		ret = commit(h);
	fh_free(h, 1);
	return ret;
}

int fs_file_quick_io(uint64_t fh, int write, int64_t off, size_t size)
{
	struct fh *h = (struct fh *)(uintptr_t)fh;
	struct ofile *of;
	struct fh *w;
	int quick = 0;

	if (!h)
		return 0;
	/* a reader of its own version: the blob, without the file's lock */
	if (reads_own(h))
		return sfs_blob_ready(h->blob, off, size);
	of = h->of;
	/* held by a worker (a commit, a copy from far away): may be long */
	if (pthread_mutex_trylock(&of->lock))
		return 0;
	w = h->stage ? h : h->follow ? of->writer : NULL;
	if (of->committing) {
		/* fs_write and fs_read wait for it */
	} else if (write) {
		/* without a stage, ensure_stage copies the base; a stage
		 * past its window waits for the server */
		quick = h->stage != NULL && !h->windowing &&
			!window_waits(h, off, size);
	} else if (w && w->stage) {
		/* the writer's stage: a local file, unless what is read
		 * comes from the server or the ring's window goes to it */
		quick = !sfs_stage_read_waits(w->stage, off);
	} else {
		quick = h->blob && h->version == of->version &&
			sfs_blob_ready(h->blob, off, size);
	}
	pthread_mutex_unlock(&of->lock);
	return quick;
}

int fs_file_quick_close(uint64_t fh)
{
	struct fh *h = (struct fh *)(uintptr_t)fh;
	int64_t size = -1;
	int busy, clean;

	if (!h || !h->writable)
		return FS_CLOSE_QUICK; /* commits nothing */
	/* held by a worker (a commit, a copy from far away): may be long */
	if (pthread_mutex_trylock(&h->of->lock))
		return FS_CLOSE_WAITS;
	/* the close would wait for it, or for a write at the window */
	busy = h->of->committing != NULL || h->windowing;
	/* nothing to commit (the release after a flush that committed) */
	clean = !h->dirty && !h->of->lazy;
	if (h->dirty && h->stage)
		size = sfs_stage_size(h->stage);
	pthread_mutex_unlock(&h->of->lock);
	if (busy)
		return FS_CLOSE_WAITS;
	/* no base to let go of either: its release only frees memory */
	if (clean && !h->blob)
		return FS_CLOSE_FREES;
	return clean || sfs_store_write_quick(g_fs.store, size)
		       ? FS_CLOSE_QUICK
		       : FS_CLOSE_WAITS;
}

void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	struct sfs_stage *spent = NULL;
	int ret = 0;

	(void)ino;
	if (h->writable && !(ret = fs_ofile_lock(h->of))) {
		ret = commit_to(h, &spent);
		pthread_mutex_unlock(&h->of->lock);
	}
	fs_loop_answering();
	fs_reply_err(req, -ret);
	sfs_stage_free(spent); /* h may be released already: not used */
}

void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	int ret = 0;

	(void)ino;
	(void)datasync;
	if (h->writable) {
		pthread_mutex_lock(&h->of->lock);
		ret = commit(h);
		h->failed = 0; /* said to the writer itself */
		pthread_mutex_unlock(&h->of->lock);
	}
	/* with -o commit=MS: this file's earlier closes too */
	if (!ret)
		ret = fs_commits_sync();
	fs_reply_err(req, -ret);
}

/*
 * The last close of an open: its version committed (a failure was said
 * by its flush) and the handle freed. On the reading thread, a file
 * whose lock or commit is another's is left to a worker, unchanged.
 */
void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	int ret;

	(void)ino;
	ret = fs_ofile_lock(h->of);
	if (!ret && h->writable && commit(h) == -FS_EWAIT) {
		pthread_mutex_unlock(&h->of->lock);
		ret = -FS_EWAIT;
	}
	if (ret) {
		fs_reply_err(req, -ret);
		return;
	}
	fh_free(h, 1);
	fs_reply_err(req, 0);
}
