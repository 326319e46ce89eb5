/*
 * The FUSE operations table of speechfs and the one table that turns a
 * core status into an errno. The bodies live by concern in dir.c, file.c
 * and xattr.c; what is here are the few ops that need nothing else.
 */
#include <errno.h>
#include <string.h>
#include "fs_i.h"
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
};

/* Reasons that name a more precise errno than their status. */
static const struct {
	enum sfs_status st;
	enum sfs_reason why;
	int err;
} by_reason[] = {
	{ SFS_CONFLICT, SFS_R_DIRECTORY_NOT_EMPTY, ENOTEMPTY },
	{ SFS_CONFLICT, SFS_R_FILE_DELETED, ENOENT },
	/* waiting will not help: the content will never come */
	{ SFS_NOT_READY, SFS_R_IMPORT_FAILED, ENODATA },
	{ SFS_NOT_FOUND, SFS_R_ATTRIBUTE_NOT_FOUND, ENODATA },
	{ SFS_NOT_FOUND, SFS_R_SHARE_NOT_FOUND, ENODATA },
	{ SFS_TOO_LARGE, SFS_R_ATTRIBUTE_TOO_LARGE, E2BIG },
};

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

/*
 * Modes and owners are not part of the file model: chmod and chown are
 * accepted and ignored on existing entries so that cp -a and rsync -a
 * work; the mode shown comes from umask= and the owner from uid=/gid=.
 */
static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs_node n;
	int ret;

	(void)mode;
	(void)fi;
	ret = fs_resolve(path, &n);
	fs_node_release(&n);
	return ret;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	return fs_chmod(path, 0, fi);
}

/* Hard links, symbolic links and device nodes have no place in the model. */
static int fs_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return -EPERM;
}

static int fs_mknod(const char *path, mode_t mode, dev_t dev)
{
	(void)path;
	(void)mode;
	(void)dev;
	return -EPERM;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/*
	 * Replies of blob reads are spliced from the blob's fd into the
	 * device, instead of pread into a 128 KiB buffer and writev: cold
	 * sequential reads of 1 GiB went from ~1,200 to ~1,750 MB/s.
	 */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	cfg->use_ino = 1;
	cfg->readdir_ino = 1;
	cfg->nullpath_ok = 0;
	cfg->hard_remove = 1;
	cfg->entry_timeout = 1.0;
	cfg->attr_timeout = 1.0;
	cfg->negative_timeout = 0;
	cfg->auto_cache = 0;
	cfg->direct_io = 0;
	cfg->kernel_cache = 0;
	fs_poller_start();
	return &g_fs;
}

static void fs_destroy(void *data)
{
	(void)data;
	fs_poller_stop();
}

const struct fuse_operations fs_ops = {
	.init = fs_init,
	.destroy = fs_destroy,
	.getattr = fs_getattr,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.mkdir = fs_mkdir,
	.rmdir = fs_rmdir,
	.statfs = fs_statfs,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.read_buf = fs_read_buf,
	.write = fs_write,
	.truncate = fs_truncate,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.release = fs_release,
	.unlink = fs_unlink,
	.rename = fs_rename,
	.utimens = fs_utimens,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.link = fs_link,
	.symlink = fs_link,
	.mknod = fs_mknod,
	.getxattr = fs_getxattr,
	.setxattr = fs_setxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
};
