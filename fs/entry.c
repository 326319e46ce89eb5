/*
 * Attributes and names of the mount's entries: getattr and setattr (size,
 * times; modes and owners are accepted and ignored), unlink (soft delete,
 * or purge in /.trash/) and rename (of files, restoring them out of the
 * trash, and of whole directories).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/banned.h"

/*
 * The attributes of a file that was deleted while open: its descriptors
 * still work (fstat included), so the row answers, with no links left.
 */
static int open_but_deleted(uint64_t node, struct stat *st)
{
	struct sfs_file f;
	struct sfs_err e;
	enum sfs_status res;
	int ret = -ENOENT, opened;

	if (FS_KIND(node) != FS_FILE)
		return ret;
	sfs_err_init(&e);
	res = sfs_file_get_ino(g_fs.store, &g_fs.actor, FS_ID(node), &f, &e);
	if (res)
		return res == SFS_WOULD_WAIT ? -FS_EWAIT : ret;
	fs_stat_file(st, node, f.ino, f.size, f.mtime_ns, f.atime_ns,
		     f.ctime_ns, 0);
	opened = fs_open_attr(f.ino, st);
	if (opened < 0) {
		ret = -FS_EWAIT;
	} else if (opened || f.deleted) {
		st->st_nlink = f.deleted ? 0 : 1;
		ret = 0;
	}
	sfs_file_release(&f);
	return ret;
}

void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_node n;
	struct stat st;
	int ret;

	ret = fs_node_get(ino, &n);
	if (!ret)
		ret = fs_stat_node(&n, &st);
	else if (ret == -ENOENT && (fi || (FS_KIND(ino) == FS_FILE &&
					   fs_file_is_open(FS_ID(ino)))))
		ret = open_but_deleted(ino, &st);
	fs_node_release(&n);
	if (ret)
		fs_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, g_fs.timeout);
}

static int64_t ts_ns(const struct timespec *ts, int now, int64_t now_ns)
{
	if (now)
		return now_ns;
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* utimens: a file's (kept for the commit when being written) or a dir's. */
static int set_times(const struct fs_node *n, const struct stat *attr,
		     int to_set)
{
	struct sfs_file_update u = { 0 };
	struct sfs_err e;
	enum sfs_status st = SFS_OK;
	int64_t now = sfs_now_ns(); /* one instant for both (touch) */

	sfs_err_init(&e);
	if (to_set & FUSE_SET_ATTR_MTIME) {
		u.set |= SFS_UPD_MTIME;
		u.mtime_ns = ts_ns(&attr->st_mtim,
				   to_set & FUSE_SET_ATTR_MTIME_NOW, now);
	}
	if (to_set & FUSE_SET_ATTR_ATIME) {
		u.set |= SFS_UPD_ATIME;
		u.atime_ns = ts_ns(&attr->st_atim,
				   to_set & FUSE_SET_ATTR_ATIME_NOW, now);
	}
	if (!u.set)
		return 0;
	if (n->kind == FS_FILE) {
		if (u.set & SFS_UPD_MTIME)
			fs_open_times(n->f.ino, u.mtime_ns);
		st = sfs_file_update(g_fs.store, &g_fs.actor, n->f.id, &u, NULL,
				     &e);
	} else if (n->kind == FS_DIR || n->id == FS_ROOT) {
		if (u.set & SFS_UPD_MTIME)
			st = sfs_dir_set_mtime(g_fs.store, &g_fs.actor, n->dir,
					       u.mtime_ns, &e);
	} else {
		return -EACCES;
	}
	return -fs_errno(st, &e);
}

void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	struct fs_node n;
	struct stat st;
	int ret;

	ret = fs_node_get(ino, &n);
	if (ret == -ENOENT && fi && (to_set & FUSE_SET_ATTR_SIZE)) {
		/* ftruncate of a file deleted while open: nowhere to go */
		fs_node_release(&n);
		ret = open_but_deleted(ino, &st);
		if (ret)
			fs_reply_err(req, -ret);
		else
			fuse_reply_attr(req, &st, g_fs.timeout);
		return;
	}
	if (!ret && (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME |
			       FUSE_SET_ATTR_ATIME)))
		ret = fs_may_change();
	if (!ret && (to_set & FUSE_SET_ATTR_SIZE)) {
		if (n.kind != FS_FILE)
			ret = fs_is_file_kind(n.kind) ? -EACCES : -EISDIR;
		else if (!fi && sfs_file_allows(&n.f, SFS_ACT_WRITE, NULL))
			ret = -EACCES;
		else
			ret = fs_truncate(n.f.ino, n.f.id, attr->st_size, fi);
	}
	/* modes and owners are not part of the model: cp -a works */
	if (!ret)
		ret = set_times(&n, attr, to_set);
	fs_node_release(&n);
	if (!ret)
		ret = fs_node_get(ino, &n);
	if (!ret)
		ret = fs_stat_node(&n, &st);
	fs_node_release(&n);
	if (ret)
		fs_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, g_fs.timeout);
}

void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	sfs_err_init(&e);
	ret = fs_resolve_child(parent, name, &n);
	if (!ret && g_fs.ro)
		ret = -EROFS;
	if (!ret && n.kind == FS_LA_FILE)
		ret = -EACCES;
	else if (!ret && !fs_is_file_kind(n.kind))
		ret = -EISDIR;
	if (!ret) {
		st = sfs_file_delete(g_fs.store, &g_fs.actor, n.f.id,
				     n.kind == FS_TRASH_FILE, &e);
		ret = -fs_errno(st, &e);
		fs_names_changed();
	}
	fs_node_release(&n);
	fs_reply_err(req, -ret);
}

static int rename_dir(const struct fs_node *src, const struct fs_node *dst,
		      int dst_ret, const char *tdir)
{
	struct sfs_err e;
	enum sfs_status st;

	if (!dst_ret && dst->kind != FS_DIR)
		return -ENOTDIR;
	if (!strcmp(src->dir, "/"))
		return -EBUSY;
	sfs_err_init(&e);
	st = sfs_dir_rename(g_fs.store, &g_fs.actor, src->dir, tdir, &e);
	return -fs_errno(st, &e);
}

static int rename_file(struct fs_node *src, struct fs_node *dst, int dst_ret,
		       const char *tdir, const char *tname)
{
	struct sfs_file_update u = { 0 };
	char *name = NULL, *filename = NULL;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	sfs_err_init(&e);
	if (!dst_ret && !fs_is_file_kind(dst->kind))
		return -EISDIR;
	if (!dst_ret && dst->f.ino == src->f.ino)
		return 0;
	ret = fs_names_for_entry(&src->f, tname, &name, &filename);
	if (ret)
		return ret;
	/* restore, replace and rename: one transaction (core) */
	u.set = SFS_UPD_NAME | SFS_UPD_PATH | SFS_UPD_NO_SUFFIX |
		(filename ? SFS_UPD_FILENAME : 0);
	u.name = name;
	u.path = tdir;
	u.filename = filename;
	st = sfs_file_rename(
		g_fs.store, &g_fs.actor, src->f.id, &u,
		dst_ret ? NULL : dst->f.id,
		src->kind == FS_TRASH_FILE ? SFS_RENAME_RESTORE : 0, NULL, &e);
	free(name);
	free(filename);
	return -fs_errno(st, &e);
}

void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	char tdir[SFS_VPATH_MAX + 2];
	struct fs_node src, dst, np;
	int ret, dret;

	memset(&dst, 0, sizeof(dst));
	memset(&np, 0, sizeof(np));
	sfs_file_init(&dst.f);
	sfs_file_init(&np.f);
	if (flags & ~RENAME_NOREPLACE) {
		fs_reply_err(req, EINVAL); /* RENAME_EXCHANGE, WHITEOUT */
		return;
	}
	ret = fs_resolve_child(parent, name, &src);
	if (ret)
		goto out;
	dret = fs_resolve_child(newparent, newname, &dst);
	if (dret && dret != -ENOENT) {
		ret = dret;
		goto out;
	}
	if (!dret && (flags & RENAME_NOREPLACE)) {
		ret = -EEXIST;
		goto out;
	}
	ret = fs_dir_of(newparent, &np);
	if (!ret && np.kind != FS_DIR && newparent != FS_ROOT)
		ret = -EXDEV;
	if (!ret && newparent == FS_ROOT &&
	    (!strcmp(newname, FS_LISTENING) || !strcmp(newname, FS_TRASH) ||
	     !strcmp(newname, FS_SHARED)))
		ret = -EEXIST;
	if (!ret)
		ret = fs_may_change();
	if (ret)
		goto out;
	if (src.kind == FS_DIR) {
		ret = fs_child_dir(np.dir, newname, tdir, sizeof(tdir));
		if (!ret)
			ret = rename_dir(&src, &dst, dret, tdir);
	} else if (src.kind == FS_FILE || src.kind == FS_TRASH_FILE) {
		ret = rename_file(&src, &dst, dret, np.dir, newname);
	} else {
		ret = -EXDEV;
	}
	fs_names_changed();
	if (!ret) {
		fs_node_renamed(src.id, newparent, newname);
		/* out of the trash: its attributes are a live file's now */
		if (src.kind == FS_TRASH_FILE && g_fs.se)
			fuse_lowlevel_notify_inval_inode(g_fs.se, src.id, -1,
							 0);
	}
out:
	fs_node_release(&src);
	fs_node_release(&dst);
	fs_node_release(&np);
	fs_reply_err(req, -ret);
}
