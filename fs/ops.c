/*
 * The FUSE operations table of speechfs (libfuse's low-level API: node
 * ids are rows of the store) and the one table that turns a core status
 * into an errno. The bodies live by concern in dir.c, entry.c, file.c and
 * xattr.c; what is here are the few ops that need nothing else.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "fs_i.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

static const int errnos[SFS_STATUS_MAX] = {
	[SFS_OK] = 0,
	[SFS_NOT_FOUND] = ENOENT,
	[SFS_FORBIDDEN] = EACCES,
	[SFS_UNAUTHENTICATED] = EACCES,
	[SFS_CONFLICT] = EEXIST,
	[SFS_GONE] = ENODATA,
	[SFS_NOT_READY] = EAGAIN,
	[SFS_INVALID] = EINVAL,
	[SFS_RANGE] = EINVAL,
	[SFS_RATE_LIMITED] = EAGAIN,
	[SFS_QUOTA] = EDQUOT,
	[SFS_TOO_LARGE] = EFBIG,
	[SFS_NO_SPACE] = ENOSPC,
	[SFS_BUSY] = EBUSY,
	[SFS_IO] = EIO,
	[SFS_NOMEM] = ENOMEM,
	[SFS_UNSUPPORTED] = ENOTSUP,
	[SFS_UNAVAILABLE] = EIO,
	[SFS_PRECONDITION] = ESTALE,
	[SFS_WOULD_WAIT] = FS_EWAIT,
};

/* Reasons that name a more precise errno than their status. */
static const struct {
	enum sfs_status st;
	enum sfs_reason why;
	int err;
} by_reason[] = {
	{ SFS_CONFLICT, SFS_R_DIRECTORY_NOT_EMPTY, ENOTEMPTY },
	{ SFS_CONFLICT, SFS_R_FILE_DELETED, ENOENT },
	/* the version this descriptor read is no longer on the server */
	{ SFS_CONFLICT, SFS_R_CONTENT_CHANGED, ESTALE },
	/* waiting will not help: the content will never come */
	{ SFS_NOT_READY, SFS_R_IMPORT_FAILED, ENODATA },
	{ SFS_NOT_FOUND, SFS_R_ATTRIBUTE_NOT_FOUND, ENODATA },
	{ SFS_NOT_FOUND, SFS_R_SHARE_NOT_FOUND, ENODATA },
	{ SFS_TOO_LARGE, SFS_R_ATTRIBUTE_TOO_LARGE, E2BIG },
};

int fs_may_change(void)
{
	return g_fs.ro ? -EROFS : g_fs.delete_only ? -EACCES : 0;
}

int fs_errno(enum sfs_status st, const struct sfs_err *e)
{
	size_t i;

	if (e && e->reason)
		for (i = 0; i < ARRAY_SIZE(by_reason); i++)
			if (st == by_reason[i].st &&
			    e->reason == by_reason[i].why)
				return by_reason[i].err;
	if (st < 0 || st >= SFS_STATUS_MAX)
		return EIO;
	return errnos[st] ? errnos[st] : (st ? EIO : 0);
}

/* A request of the reading thread's left to a worker (fs_reply_err). */
static __thread int nowait, waits;

void fs_nowait_begin(int core)
{
	nowait = 1;
	waits = 0;
	if (core)
		sfs_thread_nowait(1);
}

int fs_nowait(void)
{
	return nowait;
}

int fs_nowait_end(void)
{
	int refused = sfs_thread_nowait(0);

	nowait = 0;
	return waits ? 1 : refused ? -1 : 0;
}

void fs_reply_err(fuse_req_t req, int err)
{
	if (err == FS_EWAIT && nowait) {
		fuse_reply_none(req); /* frees it, answers nothing */
		waits = 1;
		return;
	}
	fuse_reply_err(req, err == FS_EWAIT ? EIO : err);
}

/*
 * One buffer per thread, freed with the thread: libfuse ends idle workers,
 * and a buffer of theirs must not outlive them.
 */
struct reply_buf {
	size_t size;
	char data[];
};
static pthread_key_t reply_key;
static pthread_once_t reply_once = PTHREAD_ONCE_INIT;
static int reply_key_ok;

static void reply_key_make(void)
{
	reply_key_ok = pthread_key_create(&reply_key, free) == 0;
}

char *fs_reply_buf(size_t size)
{
	struct reply_buf *b, *nb;

	pthread_once(&reply_once, reply_key_make);
	if (!reply_key_ok)
		return NULL;
	b = pthread_getspecific(reply_key);
	if (b && size <= b->size)
		return b->data;
	/* the key never holds a pointer realloc may have freed */
	if (b && pthread_setspecific(reply_key, NULL))
		return NULL;
	nb = realloc(b, sizeof(*nb) + size);
	if (!nb) {
		free(b);
		return NULL;
	}
	nb->size = size;
	if (pthread_setspecific(reply_key, nb)) {
		free(nb);
		return NULL;
	}
	return nb->data;
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_node_forget(ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		fs_node_forget(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* Hard links and symbolic links have no place in the model. */
static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fs_reply_err(req, EPERM);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fs_reply_err(req, EPERM);
}

/*
 * Directories are opened without a handle of the mount (listings live by
 * node, dir.c) and without the kernel's cache of listings: answering
 * ENOSYS would spare OPENDIR and RELEASEDIR (two of the four round trips
 * a directory of `find` costs), but the kernel then keeps every listing
 * (FOPEN_CACHE_DIR) until the directory's mtime changes, and the
 * mirrors of /.listening/, /.trash/ and /.shared/ change without theirs.
 */
static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	fi->cache_readdir = 0;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static void fs_init(void *data, struct fuse_conn_info *conn)
{
	(void)data;
	/*
	 * Replies of blob reads are spliced from the blob's fd into the
	 * device, instead of pread into a 128 KiB buffer and writev: cold
	 * sequential reads of 1 GiB went from ~1,200 to ~1,750 MB/s.
	 */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* the mount checks nothing by mode: the kernel does with -o allow_other
	 */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* entries are invalidated by name, data by version */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* READDIRPLUS for every batch: dir.c says who gets attributes */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* the kernel keeps the lower of this and the window (readahead.c) */
	if (g_fs.read_ahead > conn->max_readahead)
		conn->max_readahead = g_fs.read_ahead;
	fs_poller_start();
}

static void fs_destroy(void *data)
{
	(void)data;
	fs_poller_stop();
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.destroy = fs_destroy,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.release = fs_release,
	.fsync = fs_fsync,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.statfs = fs_statfs,
	.setxattr = fs_setxattr,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
	.create = fs_create,
};
