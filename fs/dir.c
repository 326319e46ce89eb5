/*
 * Directories of the mount: stat of entries, readdir of virtual
 * directories, /.listening/, /.trash/ and /.shared/, mkdir and rmdir
 * (explicit empty directories of core) and statfs of the store.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include "fs_i.h"
#include "speechfs/store.h"
#include "banned.h"

static void set_times(struct stat *st, int64_t mtime_ns, int64_t ctime_ns)
{
	st->st_mtim.tv_sec = mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = mtime_ns % 1000000000;
	st->st_ctim.tv_sec = ctime_ns / 1000000000;
	st->st_ctim.tv_nsec = ctime_ns % 1000000000;
	st->st_atim = st->st_mtim;
}

void fs_stat_dir(struct stat *st, int64_t ino, int64_t mtime_ns)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)ino;
	st->st_mode = S_IFDIR | (0755 & ~g_fs.umask);
	st->st_nlink = 2;
	st->st_uid = g_fs.uid;
	st->st_gid = g_fs.gid;
	st->st_size = 4096;
	st->st_blocks = 8;
	st->st_blksize = 4096;
	if (mtime_ns <= 0)
		mtime_ns = g_fs.start_ns;
	set_times(st, mtime_ns, mtime_ns);
}

void fs_stat_file(struct stat *st, int64_t ino, int64_t size,
		  int64_t mtime_ns, int64_t ctime_ns, int writable)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)ino;
	st->st_mode = S_IFREG | ((writable ? 0644 : 0444) & ~g_fs.umask);
	st->st_nlink = 1;
	st->st_uid = g_fs.uid;
	st->st_gid = g_fs.gid;
	st->st_size = size < 0 ? 0 : size;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_blksize = 65536;
	set_times(st, mtime_ns, ctime_ns);
}

static int fill_listing(void *buf, fuse_fill_dir_t fill,
			const struct fs_listing *l, int64_t dir_base,
			int files_writable)
{
	struct stat st;
	size_t i;

	for (i = 0; i < l->nsub; i++) {
		/* the real mtime: READDIRPLUS hands it to the kernel */
		fs_stat_dir(&st, dir_base + l->subino[i], l->submtime[i]);
		if (fill(buf, l->subdirs[i], &st, 0, 0))
			return 0;
	}
	for (i = 0; i < l->n; i++) {
		fs_stat_file(&st, l->v[i].ino + (files_writable < 0
						 ? FS_INO_LISTENING : 0),
			     l->v[i].size, l->v[i].mtime_ns,
			     l->v[i].ctime_ns, files_writable > 0);
		if (fill(buf, l->v[i].name, &st, 0, 0))
			return 0;
	}
	return 0;
}

/* One entry per owner who shares something with the user. */
static int fill_owners(void *buf, fuse_fill_dir_t fill)
{
	struct fs_listing l;
	size_t i, j;
	int ret;

	ret = fs_list(NULL, FS_LIST_SHARED, &l);
	if (ret)
		return ret;
	for (i = 0; i < l.n; i++) {
		for (j = 0; j < i; j++)
			if (!strcmp(l.v[j].owner, l.v[i].owner))
				break;
		if (j == i && fill(buf, l.v[i].owner, NULL, 0, 0))
			break;
	}
	fs_listing_release(&l);
	return 0;
}

static int list_dir(const char *path, void *buf, fuse_fill_dir_t fill)
{
	struct fs_listing l;
	struct fs_node n;
	int ret;

	ret = fs_resolve(path, &n);
	if (ret)
		goto out;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	switch (n.kind) {
	case FS_DIR:
		if (!strcmp(path, "/")) {
			if (g_fs.listening)
				fill(buf, FS_LISTENING, NULL, 0, 0);
			fill(buf, FS_TRASH, NULL, 0, 0);
			fill(buf, FS_SHARED, NULL, 0, 0);
		}
		ret = fs_list(n.dir, FS_LIST_FILES, &l);
		break;
	case FS_LA_DIR:
		ret = fs_list(n.dir, FS_LIST_LISTENING, &l);
		break;
	case FS_TRASH_DIR:
		ret = fs_list(NULL, FS_LIST_TRASH, &l);
		break;
	case FS_SHARED_DIR:
		ret = fill_owners(buf, fill);
		goto out;
	case FS_SHARED_OWNER:
		ret = fs_list(n.owner, FS_LIST_SHARED, &l);
		break;
	default:
		ret = -ENOTDIR;
		goto out;
	}
	if (!ret) {
		ret = fill_listing(buf, fill, &l,
				   n.kind == FS_LA_DIR ? FS_INO_SPECIAL + 16
						       : FS_INO_DIR,
				   n.kind == FS_LA_DIR ? -1 : n.kind == FS_DIR);
		fs_listing_release(&l);
	}
out:
	fs_node_release(&n);
	return ret;
}

/*
 * An open directory keeps the entries listed when it was read from the
 * start, so readdir can hand them out with offsets: libfuse 3.14 passes
 * attributes to READDIRPLUS only in offset mode, and with them `ls -l`
 * needs no LOOKUP per entry.
 */
struct dent {
	char *name;
	struct stat st;
	int has_st;
};

struct dsnap {
	struct dent *v;
	size_t n, alloc;
	int err;
};

static void dsnap_clear(struct dsnap *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static int collect(void *buf, const char *name, const struct stat *st,
		   off_t off, enum fuse_fill_dir_flags flags)
{
	struct dsnap *d = buf;
	struct dent *e;

	(void)off;
	(void)flags;
	if (d->n == d->alloc) {
		size_t na = d->alloc ? 2 * d->alloc : 64;
		struct dent *nv = realloc(d->v, na * sizeof(*nv));

		if (!nv) {
			d->err = -ENOMEM;
			return 1;
		}
		d->v = nv;
		d->alloc = na;
	}
	e = &d->v[d->n];
	e->name = strdup(name);
	if (!e->name) {
		d->err = -ENOMEM;
		return 1;
	}
	e->has_st = st != NULL;
	if (st)
		e->st = *st;
	else
		memset(&e->st, 0, sizeof(e->st));
	d->n++;
	return 0;
}

int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct dsnap *d = calloc(1, sizeof(*d));

	(void)path;
	if (!d)
		return -ENOMEM;
	fi->fh = (uint64_t)(uintptr_t)d;
	return 0;
}

int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct dsnap *d = (struct dsnap *)(uintptr_t)fi->fh;

	(void)path;
	if (d) {
		dsnap_clear(d);
		free(d);
	}
	return 0;
}

int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
	       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct dsnap *d = (struct dsnap *)(uintptr_t)fi->fh;
	enum fuse_fill_dir_flags plus;
	size_t i;
	int ret;

	if (!d)
		return -EBADF;
	if (off <= 0 || (size_t)off > d->n) {
		dsnap_clear(d);
		ret = list_dir(path, d, collect);
		if (!ret)
			ret = d->err;
		if (ret) {
			dsnap_clear(d);
			return ret;
		}
		if (off < 0 || (size_t)off > d->n)
			off = 0;
	}
	for (i = (size_t)off; i < d->n; i++) {
		const struct dent *e = &d->v[i];

		plus = (flags & FUSE_READDIR_PLUS) && e->has_st &&
		       strcmp(e->name, ".") && strcmp(e->name, "..")
		       ? FUSE_FILL_DIR_PLUS : 0;
		if (fill(buf, e->name, e->has_st ? &e->st : NULL,
			 (off_t)(i + 1), plus))
			break;
	}
	return 0;
}

int fs_mkdir(const char *path, mode_t mode)
{
	char dir[SFS_VPATH_MAX + 2];
	const char *last;
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	(void)mode;
	sfs_err_init(&e);
	ret = fs_resolve(path, &n);
	fs_node_release(&n);
	if (ret != -ENOENT)
		return ret ? ret : -EEXIST;
	ret = fs_split(path, dir, sizeof(dir), &last);
	if (ret)
		return ret;
	ret = fs_resolve(dir, &n);
	if (!ret && n.kind != FS_DIR)
		ret = -EPERM;
	fs_node_release(&n);
	if (ret)
		return ret;
	if (fs_dirpath(path, dir, sizeof(dir)))
		return -EINVAL;
	st = sfs_dir_make(g_fs.store, &g_fs.actor, dir, &e);
	fs_names_changed();
	return -fs_errno(st, &e);
}

int fs_rmdir(const char *path)
{
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	sfs_err_init(&e);
	ret = fs_resolve(path, &n);
	/*
	 * A virtual directory vanishes with its last file, so rm -r finds
	 * the directory it emptied already gone: that is a success (the
	 * kernel asks only for a directory it has just seen).
	 */
	if (ret == -ENOENT) {
		fs_node_release(&n);
		fs_names_changed();
		return 0;
	}
	if (!ret && n.kind != FS_DIR)
		ret = n.kind == FS_FILE ? -ENOTDIR : -EPERM;
	if (!ret && !strcmp(n.dir, "/"))
		ret = -EBUSY;
	if (!ret) {
		st = sfs_dir_remove(g_fs.store, &g_fs.actor, n.dir, &e);
		ret = st == SFS_CONFLICT ? -ENOTEMPTY : -fs_errno(st, &e);
		fs_names_changed();
	}
	fs_node_release(&n);
	return ret;
}

int fs_statfs(const char *path, struct statvfs *st)
{
	uint64_t total = 0, avail = 0;
	struct sfs_err e;
	enum sfs_status s;

	(void)path;
	sfs_err_init(&e);
	s = sfs_store_space(g_fs.store, &total, &avail, &e);
	if (s)
		return -fs_errno(s, &e);
	memset(st, 0, sizeof(*st));
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_blocks = total / 4096;
	st->f_bfree = avail / 4096;
	st->f_bavail = avail / 4096;
	st->f_files = 1 << 30;
	st->f_ffree = 1 << 29;
	st->f_favail = 1 << 29;
	st->f_namemax = SFS_SEGMENT_MAX;
	return 0;
}

int fs_stat_node_dir(const struct fs_node *n, struct stat *st)
{
	switch (n->kind) {
	case FS_DIR:
		fs_stat_dir(st, FS_INO_DIR + n->di.ino, n->di.mtime_ns);
		if (!strcmp(n->dir, "/"))
			st->st_ino = 1;
		return 0;
	case FS_LA_DIR:
		fs_stat_dir(st, FS_INO_SPECIAL + 16 + n->di.ino,
			    n->di.mtime_ns);
		st->st_mode &= ~0222;
		return 0;
	case FS_TRASH_DIR:
		fs_stat_dir(st, FS_INO_SPECIAL + 2, 0);
		return 0;
	case FS_SHARED_DIR:
	case FS_SHARED_OWNER:
		fs_stat_dir(st, FS_INO_SPECIAL + 3, 0);
		st->st_mode &= ~0222;
		return 0;
	default:
		return -ENOENT;
	}
}
