/*
 * Files of the mount: stat, open/read straight from the immutable blobs,
 * and writes staged in an sfs_stage that becomes a new content version of
 * the same file id when it is closed or fsync'd (the commit's error is
 * what close() and fsync() return). Also unlink, rename and utimens.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "fs_i.h"
#include "speechfs/blob.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

/* The handle of one open file (fi->fh). */
struct fh {
	pthread_mutex_t lock;
	int fd; /* committed content, -1: none yet */
	enum sfs_content which;
	struct sfs_stage *stage; /* writes in progress, NULL: none */
	int writable;
	int dirty;	 /* the stage differs from the file */
	int empty_start; /* a new stage starts empty */
	int append;
	int lazy; /* created here, not yet durable */
	int64_t ino;
	int64_t pending_mtime_ns; /* utimens while dirty, 0: none */
	char id[SFS_ID_SIZE];
	struct fh *next; /* registry of write handles */
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fh *reg;

/*
 * The content each inode had when last opened: a read-only open keeps the
 * kernel's page cache (keep_cache) only when the blob is the same.
 */
#define SEEN_SLOTS 1024
static struct {
	int64_t ino;
	char sha[65];
} seen[SEEN_SLOTS];

static int same_content(int64_t ino, const char *sha)
{
	unsigned i = (unsigned)(ino % SEEN_SLOTS);
	int same;

	pthread_mutex_lock(&reg_lock);
	same = seen[i].ino == ino && !strcmp(seen[i].sha, sha);
	seen[i].ino = ino;
	snprintf(seen[i].sha, sizeof(seen[i].sha), "%s", sha);
	pthread_mutex_unlock(&reg_lock);
	return same;
}

static struct fh *fh_of(struct fuse_file_info *fi)
{
	return (struct fh *)(uintptr_t)fi->fh;
}

static struct fh *fh_new(const struct sfs_file *f, int writable)
{
	struct fh *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->fd = -1;
	h->ino = f->ino;
	h->writable = writable;
	snprintf(h->id, sizeof(h->id), "%s", f->id);
	if (writable) {
		pthread_mutex_lock(&reg_lock);
		h->next = reg;
		reg = h;
		pthread_mutex_unlock(&reg_lock);
	}
	return h;
}

static void fh_free(struct fh *h)
{
	struct fh **p;

	if (h->writable) {
		pthread_mutex_lock(&reg_lock);
		for (p = &reg; *p; p = &(*p)->next)
			if (*p == h) {
				*p = h->next;
				break;
			}
		pthread_mutex_unlock(&reg_lock);
	}
	if (h->fd >= 0)
		close(h->fd);
	sfs_stage_free(h->stage);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int64_t fs_open_size(int64_t ino)
{
	int64_t size = -1;
	struct fh *h;

	pthread_mutex_lock(&reg_lock);
	for (h = reg; h; h = h->next)
		if (h->ino == ino && h->stage && h->dirty)
			size = sfs_stage_size(h->stage);
	pthread_mutex_unlock(&reg_lock);
	return size;
}

/* Open the committed content into h->fd (h locked). */
static int open_content(struct fh *h)
{
	struct sfs_err e;
	enum sfs_status st;

	if (h->fd >= 0)
		return 0;
	sfs_err_init(&e);
	st = sfs_file_open(g_fs.store, &g_fs.actor, h->id, h->which, &h->fd,
			   NULL, &e);
	return -fs_errno(st, &e);
}

/* Make the stage on the first change: a copy of the content, or empty. */
static int ensure_stage(struct fh *h)
{
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	if (h->stage)
		return 0;
	sfs_err_init(&e);
	st = sfs_stage_new(g_fs.store, &h->stage, &e);
	if (st)
		return -fs_errno(st, &e);
	if (h->empty_start)
		return 0;
	ret = open_content(h);
	if (ret == -ENODATA)
		return 0; /* discarded content: the new one starts empty */
	if (!ret) {
		st = sfs_stage_copy_fd(h->stage, h->fd, &e);
		ret = -fs_errno(st, &e);
	}
	if (ret) {
		sfs_stage_free(h->stage);
		h->stage = NULL;
	}
	return ret;
}

static enum sfs_status apply_mtime(const char *id, int64_t mtime_ns,
				   struct sfs_err *e)
{
	struct sfs_file_update u = { 0 };

	u.set = SFS_UPD_MTIME;
	u.mtime_ns = mtime_ns;
	return sfs_file_update(g_fs.store, &g_fs.actor, id, &u, NULL, e);
}

/*
 * Commit the stage as the file's new content (h locked). On failure the
 * previous content stays and the stage is dropped: the error is reported
 * once, by the close() or fsync() that triggered it.
 */
static int commit(struct fh *h)
{
	struct sfs_err e;
	enum sfs_status st;

	sfs_err_init(&e);
	if (!h->dirty) {
		/* a created file closed without content (touch) */
		if (!h->lazy)
			return 0;
		st = sfs_file_sync(g_fs.store, &g_fs.actor, h->id, &e);
		if (st == SFS_CONFLICT && e.reason == SFS_R_FILE_DELETED)
			st = SFS_OK;
		if (!st)
			h->lazy = 0;
		else
			sfs_warn("fs", "cannot sync '%s': %s", h->id,
				 e.message);
		return -fs_errno(st, &e);
	}
	st = sfs_file_set_content(g_fs.store, &g_fs.actor, h->id, h->stage,
				  g_fs.generate, NULL, &e);
	if (st == SFS_CONFLICT && e.reason == SFS_R_FILE_DELETED) {
		/* unlinked while open: its writes go nowhere, as on POSIX */
		st = SFS_OK;
		sfs_err_init(&e);
	} else if (st) {
		sfs_warn("fs", "cannot commit '%s': %s", h->id, e.message);
	}
	/* a content commit syncs the lazy create with it */
	if (!st)
		h->lazy = 0;
	sfs_stage_free(h->stage);
	h->stage = NULL;
	h->dirty = 0;
	h->empty_start = 0;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	if (!st && h->pending_mtime_ns &&
	    apply_mtime(h->id, h->pending_mtime_ns, &e))
		sfs_warn("fs", "cannot set the mtime of '%s': %s", h->id,
			 e.message);
	h->pending_mtime_ns = 0;
	return -fs_errno(st, &e);
}

int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fs_node n;
	int64_t size;
	int ret;

	if (!path && fi && fi->fh) {
		struct fh *h = fh_of(fi);

		fs_stat_file(st, h->ino,
			     h->stage ? sfs_stage_size(h->stage) : 0, 0, 0,
			     h->writable);
		return 0;
	}
	ret = fs_resolve(path, &n);
	if (ret)
		goto out;
	switch (n.kind) {
	case FS_FILE:
	case FS_TRASH_FILE:
	case FS_SHARED_FILE:
		size = fs_open_size(n.f.ino);
		fs_stat_file(st, n.f.ino, size >= 0 ? size : n.f.size,
			     n.f.mtime_ns, n.f.ctime_ns,
			     !sfs_file_allows(&n.f, SFS_ACT_WRITE, NULL));
		break;
	case FS_LA_FILE:
		fs_stat_file(st, FS_INO_LISTENING + n.f.ino, n.f.la.size,
			     n.f.mtime_ns, n.f.ctime_ns, 0);
		break;
	default:
		ret = fs_stat_node_dir(&n, st);
	}
out:
	fs_node_release(&n);
	return ret;
}

static int open_node(struct fs_node *n, struct fuse_file_info *fi)
{
	int acc = fi->flags & O_ACCMODE, wr = acc != O_RDONLY;
	struct sfs_err e;
	enum sfs_status st;
	struct fh *h;
	int ret;

	if (n->kind != FS_FILE && n->kind != FS_LA_FILE &&
	    n->kind != FS_SHARED_FILE && n->kind != FS_TRASH_FILE)
		return -EISDIR;
	/* the mirror and the trash are read-only views */
	if (wr && (n->kind == FS_LA_FILE || n->kind == FS_TRASH_FILE))
		return -EACCES;
	sfs_err_init(&e);
	if (wr && (st = sfs_file_allows(&n->f, SFS_ACT_WRITE, &e)))
		return -fs_errno(st, &e);
	if (wr && g_fs.ro)
		return -EROFS;
	h = fh_new(&n->f, wr);
	if (!h)
		return -ENOMEM;
	h->which = n->kind == FS_LA_FILE ? SFS_CONTENT_LISTENING
					 : SFS_CONTENT_ORIGINAL;
	h->append = !!(fi->flags & O_APPEND);
	if (wr && (fi->flags & O_TRUNC)) {
		h->empty_start = 1;
		h->dirty = 1;
		ret = ensure_stage(h);
	} else {
		ret = open_content(h);
		/* discarded content: writes start anew */
		if (ret == -ENODATA && wr)
			ret = 0;
	}
	if (ret) {
		fh_free(h);
		return ret;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = 0;
	fi->keep_cache =
		!wr && (h->which ? same_content(FS_INO_LISTENING + h->ino,
						n->f.la.sha256)
				 : same_content(h->ino, n->f.sha256));
	return 0;
}

int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct fs_node n;
	int ret;

	ret = fs_resolve(path, &n);
	if (!ret)
		ret = open_node(&n, fi);
	fs_node_release(&n);
	return ret;
}

/*
 * A new file's row is committed at once, so every process sees it, but
 * without waiting for the disk: the content commit at close (or fsync)
 * makes both durable with one sync, and a file closed without content
 * is synced then. Its content starts empty, in the handle's stage.
 */
int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct sfs_file_spec spec = { 0 };
	char dir[SFS_VPATH_MAX + 2];
	const char *last;
	char *name = NULL, *base = NULL;
	const char *ext;
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	(void)mode;
	sfs_err_init(&e);
	ret = fs_resolve(path, &n);
	if (!ret)
		ret = open_node(&n, fi); /* lost a race: it exists */
	fs_node_release(&n);
	if (ret != -ENOENT)
		return ret;
	ret = fs_split(path, dir, sizeof(dir), &last);
	if (ret)
		return ret;
	ret = fs_resolve(dir, &n);
	if (!ret && n.kind != FS_DIR)
		ret = -EACCES;
	if (!ret)
		ret = fs_entry_to_name(last, &name);
	if (ret)
		goto out;
	/* the entry minus its extension is the display name (it round-trips) */
	spec.filename = name;
	ext = fs_ext(name);
	if (*ext && ext > name) {
		base = strndup(name, (size_t)(ext - name));
		if (!base) {
			ret = -ENOMEM;
			goto out;
		}
	}
	spec.name = base ? base : name;
	spec.path = n.dir;
	spec.no_suffix = 1; /* the entry is exactly the one created */
	spec.lazy = 1;
	st = sfs_file_create(g_fs.store, &g_fs.actor, &spec, NULL, &n.f, &e);
	ret = -fs_errno(st, &e);
	if (!ret) {
		fs_names_added(n.dir, last, &n.f);
		n.kind = FS_FILE;
		fi->flags |= O_TRUNC;
		ret = open_node(&n, fi);
		if (!ret) {
			fh_of(fi)->dirty = 0; /* empty already */
			fh_of(fi)->lazy = 1;
		}
	}
out:
	free(name);
	free(base);
	fs_node_release(&n);
	return ret;
}

int fs_read(const char *path, char *buf, size_t size, off_t off,
	    struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	struct sfs_err e;
	enum sfs_status st;
	size_t got = 0;
	ssize_t r;
	int ret;

	(void)path;
	sfs_err_init(&e);
	pthread_mutex_lock(&h->lock);
	if (h->stage) {
		st = sfs_stage_pread(h->stage, buf, size, off, &got, &e);
		ret = st ? -fs_errno(st, &e) : (int)got;
	} else {
		ret = open_content(h);
		if (!ret) {
			r = pread(h->fd, buf, size, off);
			ret = r < 0 ? -errno : (int)r;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/*
 * Reads of committed content hand libfuse the blob's fd, so it can splice
 * straight from the blob; staged content is read through memory.
 */
int fs_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size,
		off_t off, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	struct fuse_bufvec *bv;
	void *mem;
	int ret;

	if (h->writable) {
		bv = malloc(sizeof(*bv));
		mem = malloc(size ? size : 1);
		if (!bv || !mem) {
			free(bv);
			free(mem);
			return -ENOMEM;
		}
		ret = fs_read(path, mem, size, off, fi);
		if (ret < 0) {
			free(bv);
			free(mem);
			return ret;
		}
		*bv = FUSE_BUFVEC_INIT((size_t)ret);
		bv->buf[0].mem = mem;
		*bufp = bv;
		return 0;
	}
	pthread_mutex_lock(&h->lock);
	ret = open_content(h);
	pthread_mutex_unlock(&h->lock);
	if (ret)
		return ret;
	bv = malloc(sizeof(*bv));
	if (!bv)
		return -ENOMEM;
	*bv = FUSE_BUFVEC_INIT(size);
	bv->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv->buf[0].fd = h->fd;
	bv->buf[0].pos = off;
	*bufp = bv;
	return 0;
}

int fs_write(const char *path, const char *buf, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	(void)path;
	if (!h->writable)
		return -EBADF;
	sfs_err_init(&e);
	pthread_mutex_lock(&h->lock);
	ret = ensure_stage(h);
	if (!ret) {
		if (h->append)
			off = sfs_stage_size(h->stage);
		st = sfs_stage_pwrite(h->stage, buf, size, off, &e);
		ret = st ? -fs_errno(st, &e) : (int)size;
		if (!st)
			h->dirty = 1;
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

static int truncate_handle(struct fh *h, off_t size)
{
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	sfs_err_init(&e);
	pthread_mutex_lock(&h->lock);
	if (!h->stage && size == 0)
		h->empty_start = 1;
	ret = ensure_stage(h);
	if (!ret) {
		st = sfs_stage_truncate(h->stage, size, &e);
		ret = -fs_errno(st, &e);
		if (!st)
			h->dirty = 1;
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/*
 * Run fn on the open write handle of ino, if any, holding the registry so
 * the handle cannot be released meanwhile. 1 when there was none.
 */
static int with_write_handle(int64_t ino, int (*fn)(struct fh *, void *),
			     void *arg)
{
	struct fh *h;
	int ret = 1;

	pthread_mutex_lock(&reg_lock);
	for (h = reg; h; h = h->next)
		if (h->ino == ino) {
			ret = fn(h, arg);
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	return ret;
}

static int truncate_cb(struct fh *h, void *arg)
{
	return truncate_handle(h, *(off_t *)arg);
}

static int mtime_cb(struct fh *h, void *arg)
{
	pthread_mutex_lock(&h->lock);
	h->pending_mtime_ns = h->dirty ? *(int64_t *)arg : 0;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fh tmp;
	struct fs_node n;
	int ret;

	if (size < 0)
		return -EINVAL;
	if (fi && fi->fh)
		return fh_of(fi)->writable ? truncate_handle(fh_of(fi), size)
					   : -EBADF;
	ret = fs_resolve(path, &n);
	if (!ret && n.kind != FS_FILE && n.kind != FS_SHARED_FILE)
		ret = n.kind == FS_LA_FILE || n.kind == FS_TRASH_FILE ? -EACCES
								      : -EISDIR;
	if (ret)
		goto out;
	/* the kernel may truncate by path while the file is open */
	ret = with_write_handle(n.f.ino, truncate_cb, &size);
	if (ret <= 0)
		goto out;
	memset(&tmp, 0, sizeof(tmp));
	pthread_mutex_init(&tmp.lock, NULL);
	tmp.fd = -1;
	tmp.ino = n.f.ino;
	snprintf(tmp.id, sizeof(tmp.id), "%s", n.f.id);
	ret = truncate_handle(&tmp, size);
	if (!ret)
		ret = commit(&tmp);
	if (tmp.fd >= 0)
		close(tmp.fd);
	sfs_stage_free(tmp.stage);
	pthread_mutex_destroy(&tmp.lock);
out:
	fs_node_release(&n);
	return ret;
}

int fs_flush(const char *path, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	int ret;

	(void)path;
	pthread_mutex_lock(&h->lock);
	ret = commit(h);
	pthread_mutex_unlock(&h->lock);
	return ret;
}

int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	return fs_flush(path, fi);
}

int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);

	(void)path;
	pthread_mutex_lock(&h->lock);
	(void)commit(h);
	pthread_mutex_unlock(&h->lock);
	fh_free(h);
	return 0;
}

int fs_unlink(const char *path)
{
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	sfs_err_init(&e);
	ret = fs_resolve(path, &n);
	if (ret)
		goto out;
	switch (n.kind) {
	case FS_FILE:
	case FS_SHARED_FILE:
	case FS_TRASH_FILE:
		st = sfs_file_delete(g_fs.store, &g_fs.actor, n.f.id,
				     n.kind == FS_TRASH_FILE, &e);
		ret = -fs_errno(st, &e);
		fs_names_changed();
		break;
	case FS_LA_FILE:
		ret = -EACCES;
		break;
	default:
		ret = -EISDIR;
	}
out:
	fs_node_release(&n);
	return ret;
}

static int rename_dir(const struct fs_node *src, const struct fs_node *dst,
		      int dst_ret, const char *to)
{
	char tdir[SFS_VPATH_MAX + 2];
	struct sfs_err e;
	enum sfs_status st;

	if (!dst_ret && dst->kind != FS_DIR)
		return -ENOTDIR;
	if (fs_dirpath(to, tdir, sizeof(tdir)))
		return -EINVAL;
	if (!strcmp(src->dir, "/"))
		return -EBUSY;
	sfs_err_init(&e);
	st = sfs_dir_rename(g_fs.store, &g_fs.actor, src->dir, tdir, &e);
	return -fs_errno(st, &e);
}

static int rename_file(struct fs_node *src, struct fs_node *dst, int dst_ret,
		       const char *tdir, const char *tlast)
{
	struct sfs_file_update u = { 0 };
	char *name = NULL, *filename = NULL;
	struct sfs_err e;
	enum sfs_status st = SFS_OK;
	int ret, replaced = 0;

	sfs_err_init(&e);
	if (!dst_ret && dst->kind != FS_FILE)
		return -EISDIR;
	if (!dst_ret && dst->f.ino == src->f.ino)
		return 0;
	ret = fs_rename_names(&src->f, tlast, &name, &filename);
	if (ret)
		return ret;
	if (src->kind == FS_TRASH_FILE)
		st = sfs_file_restore(g_fs.store, &g_fs.actor, src->f.id, NULL,
				      &e);
	if (!st && !dst_ret) {
		st = sfs_file_delete(g_fs.store, &g_fs.actor, dst->f.id, 0, &e);
		replaced = !st;
	}
	if (st)
		goto out;
	u.set = SFS_UPD_NAME | SFS_UPD_PATH | SFS_UPD_NO_SUFFIX |
		(filename ? SFS_UPD_FILENAME : 0);
	u.name = name;
	u.path = tdir;
	u.filename = filename;
	st = sfs_file_update(g_fs.store, &g_fs.actor, src->f.id, &u, NULL, &e);
	if (st && replaced) {
		struct sfs_err e2;

		sfs_err_init(&e2);
		if (sfs_file_restore(g_fs.store, &g_fs.actor, dst->f.id, NULL,
				     &e2))
			sfs_warn("fs", "cannot restore '%s': %s", dst->f.id,
				 e2.message);
	}
out:
	free(name);
	free(filename);
	return -fs_errno(st, &e);
}

int fs_rename(const char *from, const char *to, unsigned int flags)
{
	char tdir[SFS_VPATH_MAX + 2];
	struct fs_node src, dst, parent;
	const char *tlast;
	int ret, dret;

	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	ret = fs_resolve(from, &src);
	dret = fs_resolve(to, &dst);
	if (ret)
		goto out;
	if (dret && dret != -ENOENT) {
		ret = dret;
		goto out;
	}
	if (!dret && (flags & RENAME_NOREPLACE)) {
		ret = -EEXIST;
		goto out;
	}
	ret = fs_split(to, tdir, sizeof(tdir), &tlast);
	if (!ret) {
		ret = fs_resolve(tdir, &parent);
		if (!ret && parent.kind != FS_DIR)
			ret = -EXDEV;
		fs_node_release(&parent);
	}
	if (ret)
		goto out;
	if (src.kind == FS_DIR)
		ret = rename_dir(&src, &dst, dret, to);
	else if (src.kind == FS_FILE || src.kind == FS_TRASH_FILE)
		ret = rename_file(&src, &dst, dret, tdir, tlast);
	else
		ret = -EXDEV;
	fs_names_changed();
out:
	fs_node_release(&src);
	fs_node_release(&dst);
	return ret;
}

static int64_t ts_ns(const struct timespec *ts)
{
	if (ts->tv_nsec == UTIME_NOW)
		return sfs_now_ms() * 1000000;
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int fs_utimens(const char *path, const struct timespec tv[2],
	       struct fuse_file_info *fi)
{
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st = SFS_OK;
	int64_t ns;
	int ret;

	(void)fi;
	if (tv[1].tv_nsec == UTIME_OMIT)
		return 0;
	ns = ts_ns(&tv[1]);
	sfs_err_init(&e);
	ret = fs_resolve(path, &n);
	if (ret)
		goto out;
	if (n.kind == FS_FILE || n.kind == FS_SHARED_FILE) {
		(void)with_write_handle(n.f.ino, mtime_cb, &ns);
		st = apply_mtime(n.f.id, ns, &e);
	} else if (n.kind == FS_DIR) {
		st = sfs_dir_set_mtime(g_fs.store, &g_fs.actor, n.dir, ns, &e);
	} else {
		ret = -EACCES;
	}
	if (!ret)
		ret = -fs_errno(st, &e);
out:
	fs_node_release(&n);
	return ret;
}
