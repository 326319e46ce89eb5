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
#include "speechfs/banned.h"

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

void fs_stat_file(struct stat *st, int64_t ino, int64_t size, int64_t mtime_ns,
		  int64_t ctime_ns, int writable)
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

/*
 * An open directory keeps what it listed when read from the start, so
 * readdir can hand entries out with offsets: libfuse 3.14 passes
 * attributes to READDIRPLUS only in offset mode, and with them `ls -l`
 * needs no LOOKUP per entry. Entry i is extra[i] (".", "..", the root's
 * special trees, /.shared/'s owners), then the listing's subdirectories,
 * then its files; stats are made as entries go out, nothing is copied.
 *
 * The kernel (readdirplus "auto") asks READDIRPLUS for the first batch
 * of every directory, and for later batches only once entries of the
 * previous one were looked up or stat'ed. Attributes cost a kernel inode
 * and a libfuse node per entry, which `find` never uses (100,000 files:
 * 1.3 s with attributes, 0.7 s without). So the first batch goes out
 * plain and attributes follow when the kernel asks again: `ls -l` of
 * 10,000 files looks up one batch (~200 entries) and gets the rest with
 * their attributes. Subdirectories (few) always carry theirs: a walk
 * then enters them without a LOOKUP each.
 */
#define MAX_EXTRA 8

struct dsnap {
	const char *extra[MAX_EXTRA];
	size_t nextra;
	struct fs_listing l;
	struct fs_listing owners; /* FS_SHARED_DIR: unique owners */
	int64_t dir_base;
	int files_writable; /* 1 rw, 0 ro, -1 listening MP3s */
	int listed;
};

static void dsnap_clear(struct dsnap *d)
{
	fs_listing_release(&d->l);
	fs_listing_release(&d->owners);
	memset(d, 0, sizeof(*d));
}

static size_t dsnap_len(const struct dsnap *d)
{
	return d->nextra + d->owners.n + d->l.nsub + d->l.n;
}

/* The name of entry i, and its stat in st (0: none to give). */
static const char *dsnap_entry(const struct dsnap *d, size_t i, struct stat *st,
			       int *has_st)
{
	const struct fs_entry *en;

	*has_st = 0;
	if (i < d->nextra)
		return d->extra[i];
	i -= d->nextra;
	if (i < d->owners.n)
		return d->owners.v[i].owner;
	i -= d->owners.n;
	*has_st = 1;
	if (i < d->l.nsub) {
		/* the real mtime: READDIRPLUS hands it to the kernel */
		fs_stat_dir(st, d->dir_base + d->l.subino[i], d->l.submtime[i]);
		return d->l.subdirs[i];
	}
	en = &d->l.v[i - d->l.nsub];
	fs_stat_file(
		st, en->ino + (d->files_writable < 0 ? FS_INO_LISTENING : 0),
		en->size, en->mtime_ns, en->ctime_ns, d->files_writable > 0);
	return en->name;
}

/* Keep one entry per owner who shares something with the user. */
static int list_owners(struct dsnap *d)
{
	struct fs_listing *l = &d->owners;
	size_t i, j, k = 0;
	int ret;

	ret = fs_list(NULL, FS_LIST_SHARED, l);
	if (ret)
		return ret;
	for (i = 0; i < l->n; i++) {
		for (j = 0; j < k; j++)
			if (!strcmp(l->v[j].owner, l->v[i].owner))
				break;
		if (j < k) {
			free(l->v[i].name);
			continue;
		}
		l->v[k++] = l->v[i];
	}
	l->n = k;
	l->hn = 0; /* the name index is stale now */
	free(l->hidx);
	l->hidx = NULL;
	l->hcap = 0;
	return 0;
}

static int list_dir(const char *path, struct dsnap *d)
{
	struct fs_node n;
	int ret;

	/*
	 * The kernel reads only what it knows as a directory: an ordinary
	 * one needs no lookup here (a directory removed meanwhile lists
	 * empty), the special trees are resolved.
	 */
	if (path[0] == '/' && path[1] != '.') {
		memset(&n, 0, sizeof(n));
		sfs_file_init(&n.f);
		n.kind = FS_DIR;
		ret = fs_dirpath(path, n.dir, sizeof(n.dir)) ? -ENOENT : 0;
	} else {
		ret = fs_resolve(path, &n);
	}
	if (ret)
		goto out;
	d->extra[d->nextra++] = ".";
	d->extra[d->nextra++] = "..";
	d->dir_base = FS_INO_DIR;
	d->files_writable = 0;
	switch (n.kind) {
	case FS_DIR:
		if (!strcmp(path, "/")) {
			if (g_fs.listening)
				d->extra[d->nextra++] = FS_LISTENING;
			d->extra[d->nextra++] = FS_TRASH;
			d->extra[d->nextra++] = FS_SHARED;
		}
		d->files_writable = 1;
		ret = fs_list(n.dir, FS_LIST_FILES, &d->l);
		break;
	case FS_LA_DIR:
		d->dir_base = FS_INO_SPECIAL + 16;
		d->files_writable = -1;
		ret = fs_list(n.dir, FS_LIST_LISTENING, &d->l);
		break;
	case FS_TRASH_DIR:
		ret = fs_list(NULL, FS_LIST_TRASH, &d->l);
		break;
	case FS_SHARED_DIR:
		ret = list_owners(d);
		break;
	case FS_SHARED_OWNER:
		ret = fs_list(n.owner, FS_LIST_SHARED, &d->l);
		break;
	default:
		ret = -ENOTDIR;
	}
out:
	fs_node_release(&n);
	return ret;
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
	struct stat st;
	const char *name;
	size_t i, n, sub;
	int ret, has_st;

	if (!d)
		return -EBADF;
	if (off <= 0 || !d->listed || (size_t)off > dsnap_len(d)) {
		dsnap_clear(d);
		ret = list_dir(path, d);
		if (ret) {
			dsnap_clear(d);
			return ret;
		}
		d->listed = 1;
		if (off < 0 || (size_t)off > dsnap_len(d))
			off = 0;
	}
	n = dsnap_len(d);
	sub = d->nextra + d->owners.n;
	for (i = (size_t)off; i < n; i++) {
		name = dsnap_entry(d, i, &st, &has_st);
		/* subdirectories always: walking into one needs no LOOKUP */
		plus = (flags & FUSE_READDIR_PLUS) && has_st &&
				       (off > 0 || i < sub + d->l.nsub)
			       ? FUSE_FILL_DIR_PLUS
			       : 0;
		if (fill(buf, name, has_st ? &st : NULL, (off_t)(i + 1), plus))
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
