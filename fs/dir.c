/*
 * Directories of the mount: lookups of names, listings (readdir and
 * readdirplus) of the user's directories and of /.listening/, /.trash/
 * and /.shared/, mkdir and rmdir (explicit directories of core), and
 * statfs of the store as the user's tenant sees it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

/* What a directory node lists: its mode and the vpath (or owner). */
struct dir_view {
	enum fs_list_mode mode;
	char vdir[SFS_VPATH_MAX + 2];
	char owner[SFS_ID_SIZE];
	int shared_root; /* /.shared/: its owners */
};

int fs_dir_of(uint64_t node, struct fs_node *n)
{
	int ret = fs_node_get(node, n);

	if (!ret && fs_is_file_kind(n->kind))
		ret = -ENOTDIR;
	return ret;
}

static int view_of(uint64_t node, struct dir_view *v)
{
	struct fs_node n;
	int ret;

	memset(v, 0, sizeof(*v));
	/*
	 * The root's vpath needs no question: a lookup there asks the store
	 * nothing about "/" (a remote store forgets its answer about "/" at
	 * each write below it, as "/" counts the files below)
	 */
	if (node == FS_ROOT) {
		snprintf(v->vdir, sizeof(v->vdir), "/");
		return 0;
	}
	ret = fs_dir_of(node, &n);
	if (ret)
		goto out;
	snprintf(v->vdir, sizeof(v->vdir), "%s", n.dir);
	snprintf(v->owner, sizeof(v->owner), "%s", n.owner);
	switch (n.kind) {
	case FS_SPECIAL:
		if (node == FS_LA_ROOT)
			v->mode = FS_LIST_LISTENING;
		else if (node == FS_TRASH_ROOT)
			v->mode = FS_LIST_TRASH;
		else if (node == FS_SHARED_ROOT)
			v->shared_root = 1;
		break;
	case FS_LA_DIR:
		v->mode = FS_LIST_LISTENING;
		break;
	case FS_SHARED_DIR:
		v->mode = FS_LIST_SHARED;
		break;
	default:
		break;
	}
out:
	fs_node_release(&n);
	return ret;
}

/* The node a listing's file entry stands for. */
static uint64_t file_node(enum fs_list_mode mode, int64_t ino)
{
	if (mode == FS_LIST_LISTENING)
		return FS_NODE(FS_LA_FILE, ino);
	if (mode == FS_LIST_TRASH)
		return FS_NODE(FS_TRASH_FILE, ino);
	return FS_NODE(FS_FILE, ino);
}

/*
 * A file's stat as a listing shows it; 0, or -FS_EWAIT when its open
 * handles' lock is another thread's and this one may not wait.
 */
static int stat_entry(struct stat *st, enum fs_list_mode mode,
		      const struct fs_entry *en)
{
	uint64_t node = file_node(mode, en->ino);

	if (en->bare) {
		/* what a dirent shows: the inode fs_stat_file gives, a type */
		memset(st, 0, sizeof(*st));
		st->st_ino =
			FS_KIND(node) == FS_LA_FILE ? node : (ino_t)en->ino;
		st->st_mode = S_IFREG;
		return 0;
	}

	fs_stat_file(st, node, en->ino, en->size, en->mtime_ns, en->atime_ns,
		     en->ctime_ns, en->writable);
	if (mode != FS_LIST_LISTENING && fs_open_attr(en->ino, st) < 0)
		return -FS_EWAIT;
	return 0;
}

static void stat_sub(struct stat *st, enum fs_list_mode mode,
		     const struct fs_subdir *sd)
{
	fs_stat_dir(st, sd->node, sd->mtime_ns, sd->nsub,
		    mode == FS_LIST_FILES && !g_fs.ro);
}

/* The special names of the root. */
static uint64_t root_special(const char *name)
{
	if (!strcmp(name, FS_LISTENING) && g_fs.listening)
		return FS_LA_ROOT;
	if (!strcmp(name, FS_TRASH))
		return FS_TRASH_ROOT;
	if (!strcmp(name, FS_SHARED))
		return FS_SHARED_ROOT;
	return 0;
}

/*
 * Find `name` in the directory node `parent`: the node and, when the
 * lookup already has them, its attributes (*has_st). 0 or -errno.
 */
static int find_child(uint64_t parent, const char *name, uint64_t *node,
		      struct stat *st, int *has_st)
{
	struct dir_view v;
	struct fs_entry en;
	struct fs_subdir sd;
	char owner[SFS_ID_SIZE];
	int64_t row;
	int ret;

	*has_st = 0;
	if (strlen(name) > SFS_SEGMENT_MAX)
		return -ENAMETOOLONG;
	if (parent == FS_ROOT && (*node = root_special(name)))
		return 0;
	ret = view_of(parent, &v);
	if (ret)
		return ret;
	if (v.shared_root) {
		ret = fs_shared_owner_find(name, owner, &row);
		if (!ret)
			*node = fs_shared_dir_node(owner, "/");
		return ret || *node ? ret : -ENOMEM;
	}
	ret = fs_find(v.vdir, v.owner, v.mode, name, &en, &sd);
	if (ret < 0)
		return ret;
	*has_st = 1;
	if (ret == 1) {
		*node = sd.node;
		stat_sub(st, v.mode, &sd);
		return 0;
	}
	*node = file_node(v.mode, en.ino);
	return stat_entry(st, v.mode, &en);
}

static void advise(uint64_t parent);

void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	uint64_t node = 0;
	int ret, has_st;

	memset(&e, 0, sizeof(e));
	advise(parent);
	ret = find_child(parent, name, &node, &e.attr, &has_st);
	if (ret) {
		fs_reply_err(req, -ret);
		return;
	}
	if (!has_st) {
		fs_reply_entry_node(req, parent, name, node);
		return;
	}
	e.ino = node;
	e.attr_timeout = g_fs.timeout;
	e.entry_timeout = g_fs.timeout;
	fs_node_ref(node, parent, name, NULL, NULL);
	fuse_reply_entry(req, &e);
}

int fs_name_free(uint64_t parent, const struct fs_node *dir, const char *name)
{
	struct fs_entry en;
	struct fs_subdir sd;
	int ret;

	if (strlen(name) > SFS_SEGMENT_MAX)
		return -ENAMETOOLONG;
	if (parent == FS_ROOT && root_special(name))
		return -EEXIST;
	ret = fs_find(dir->dir, dir->owner, FS_LIST_FILES, name, &en, &sd);
	return ret == -ENOENT ? 0 : ret < 0 ? ret : -EEXIST;
}

int fs_resolve_child(uint64_t parent, const char *name, struct fs_node *n)
{
	struct stat st;
	uint64_t node = 0;
	int ret, has_st;

	memset(n, 0, sizeof(*n));
	sfs_file_init(&n->f);
	ret = find_child(parent, name, &node, &st, &has_st);
	if (ret)
		return ret;
	return fs_node_get(node, n);
}

/*
 * A listing is taken when a directory is read from its start, and kept
 * so the kernel's later batches (with offsets) continue it: entry i is
 * extra[i] (".", "..", the root's special trees), then the
 * subdirectories, then the files; stats are made as entries go out,
 * nothing is copied. The listings live in a few slots by node, for a few
 * seconds (not by open handle: see fs_opendir in ops.c); a batch that
 * finds none lists again.
 *
 * The kernel asks READDIRPLUS for every batch (readdirplus is not
 * "auto"). Attributes cost a kernel inode per entry, which `find` never
 * uses (100,000 files: 1.3 s with attributes, 0.7 s without). So files
 * carry theirs only once an entry of the directory was looked up since
 * its listing began, as the kernel's own "auto" mode decides: `ls -l` of
 * 10,000 files looks up one batch (~200 entries) and gets the rest with
 * their attributes. The listing itself reads the files' names only
 * (fs_list_names: half the cost of whole rows, most of a `find`'s CPU in
 * the mount); the first batch asked with attributes after a lookup
 * fetches them for the rest of the listing (fs_listing_attrs: matched by
 * ino; a file gone since goes without). Subdirectories (few) always
 * carry theirs, in every batch: a walk then enters them without a LOOKUP
 * each (in "auto" mode the kernel asked plain READDIR after the first
 * batch, and `find` then looked up ~800 of the 1,000 directories of
 * /tree/ one by one).
 */
#define MAX_EXTRA 8
#define SNAP_SLOTS 16
#define SNAP_TTL_MS 10000

struct dsnap {
	uint64_t node;
	int64_t at_ms;
	uint64_t used;
	const char *extra[MAX_EXTRA];
	uint64_t extra_node[MAX_EXTRA];
	size_t nextra;
	struct fs_listing l;
	enum fs_list_mode mode;
	char vdir[SFS_VPATH_MAX + 2]; /* what was listed */
	char owner[SFS_ID_SIZE];
	int advised; /* an entry was looked up: files get attributes */
};

static pthread_mutex_t snaps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dsnap snaps[SNAP_SLOTS];
static uint64_t snaps_clock;

/*
 * Take snaps_lock. A worker holds it while it lists a directory, which
 * may wait for a server: a thread that may not wait (fs_nowait, the
 * reading thread) only tries it, -FS_EWAIT when it is held.
 */
static int snaps_take(void)
{
	if (fs_nowait())
		return pthread_mutex_trylock(&snaps_lock) ? -FS_EWAIT : 0;
	pthread_mutex_lock(&snaps_lock);
	return 0;
}

/*
 * An entry of directory node `parent` was looked up (see fill): a hint,
 * left out while a listing is being made.
 */
static void advise(uint64_t parent)
{
	size_t i;

	if (snaps_take())
		return;
	for (i = 0; i < SNAP_SLOTS; i++)
		if (snaps[i].node == parent)
			snaps[i].advised = 1;
	pthread_mutex_unlock(&snaps_lock);
}

static void dsnap_clear(struct dsnap *d)
{
	fs_listing_release(&d->l);
	memset(d, 0, sizeof(*d));
}

static size_t dsnap_len(const struct dsnap *d)
{
	return d->nextra + d->l.nsub + d->l.n;
}

static int list_dir(uint64_t node, struct dsnap *d)
{
	struct dir_view v;
	int ret;

	ret = view_of(node, &v);
	if (ret)
		return ret;
	d->mode = v.mode;
	d->extra[d->nextra++] = ".";
	d->extra[d->nextra++] = "..";
	if (node == FS_ROOT) {
		if (g_fs.listening) {
			d->extra_node[d->nextra] = FS_LA_ROOT;
			d->extra[d->nextra++] = FS_LISTENING;
		}
		d->extra_node[d->nextra] = FS_TRASH_ROOT;
		d->extra[d->nextra++] = FS_TRASH;
		d->extra_node[d->nextra] = FS_SHARED_ROOT;
		d->extra[d->nextra++] = FS_SHARED;
	}
	snprintf(d->vdir, sizeof(d->vdir), "%s", v.vdir);
	snprintf(d->owner, sizeof(d->owner), "%s", v.owner);
	if (v.shared_root)
		return fs_shared_owners(&d->l);
	/* files' attributes only once asked for (see fill) */
	return fs_list_names(v.vdir, v.owner, v.mode, &d->l);
}

/* The listing of node to continue at off (snaps_lock held), or NULL. */
static struct dsnap *snap_find(uint64_t node, off_t off)
{
	int64_t now = sfs_now_ms();
	struct dsnap *d = NULL;
	size_t i;

	for (i = 0; off > 0 && i < SNAP_SLOTS; i++)
		if (snaps[i].node == node &&
		    now - snaps[i].at_ms < SNAP_TTL_MS &&
		    (size_t)off <= dsnap_len(&snaps[i]))
			d = &snaps[i];
	return d;
}

/*
 * Keep *fresh, a new listing of node, in the slot of node's older one if
 * any (a later batch must not continue that one: an entry gone since
 * came back in it), else in the least used (snaps_lock held).
 */
static struct dsnap *snap_put(uint64_t node, struct dsnap *fresh)
{
	struct dsnap *d = &snaps[0];
	size_t i;

	for (i = 1; i < SNAP_SLOTS; i++)
		if (d->node != node &&
		    (snaps[i].node == node || snaps[i].used < d->used))
			d = &snaps[i];
	dsnap_clear(d);
	*d = *fresh;
	d->node = node;
	d->at_ms = sfs_now_ms();
	return d;
}

/*
 * The listing of node to continue at off, or a new one from the start,
 * with snaps_lock held; NULL with *err (the lock not held) on failure.
 * A new one is made without the lock: a listing may wait (a remote
 * store's server, the database's write lock for the suffixes it pins),
 * and the listings of other directories must not wait for it.
 */
static struct dsnap *snapshot(uint64_t node, off_t off, int *err)
{
	struct dsnap *d, fresh;

	*err = snaps_take();
	if (*err)
		return NULL;
	d = snap_find(node, off);
	if (!d) {
		pthread_mutex_unlock(&snaps_lock);
		memset(&fresh, 0, sizeof(fresh));
		*err = list_dir(node, &fresh);
		if (!*err)
			*err = snaps_take();
		if (*err) {
			dsnap_clear(&fresh);
			return NULL;
		}
		d = snap_put(node, &fresh);
	}
	d->used = ++snaps_clock;
	return d;
}

/*
 * Entry i as a name and, when it has them, its stat and node; NULL when
 * its stat would wait (stat_entry).
 */
static const char *dsnap_entry(const struct dsnap *d, size_t i, struct stat *st,
			       uint64_t *node)
{
	const struct fs_entry *en;
	const struct fs_subdir *sd;

	*node = 0;
	memset(st, 0, sizeof(*st));
	if (i < d->nextra) {
		st->st_mode = S_IFDIR;
		st->st_ino = d->extra_node[i];
		return d->extra[i];
	}
	i -= d->nextra;
	if (i < d->l.nsub) {
		sd = &d->l.sub[i];
		stat_sub(st, d->mode, sd);
		*node = sd->node;
		return sd->name;
	}
	en = &d->l.v[i - d->l.nsub];
	*node = file_node(d->mode, en->ino);
	return stat_entry(st, d->mode, en) ? NULL : en->name;
}

/*
 * Fill buf[size] with the entries from off; the bytes used. An entry
 * whose stat would wait ends the batch before it (the kernel asks for
 * the rest); *err is -FS_EWAIT when that is the first.
 */
static size_t fill(fuse_req_t req, const struct dsnap *d, uint64_t parent,
		   char *buf, size_t size, off_t off, int plus, int *err)
{
	struct fuse_entry_param e;
	size_t i, n = dsnap_len(d), used = 0, len;
	size_t files = d->nextra + d->l.nsub;
	const char *name;
	uint64_t node;
	int attrs;

	for (i = (size_t)off; i < n; i++) {
		memset(&e, 0, sizeof(e));
		name = dsnap_entry(d, i, &e.attr, &node);
		if (!name) {
			if (!used)
				*err = -FS_EWAIT;
			break;
		}
		if (!plus) {
			len = fuse_add_direntry(req, buf + used, size - used,
						name, &e.attr, (off_t)(i + 1));
			if (len > size - used)
				break;
			used += len;
			continue;
		}
		/* subdirectories always; files once entries are looked up */
		attrs = node &&
			(i < files || (d->advised && !d->l.v[i - files].bare));
		if (attrs) {
			e.ino = node;
			e.attr_timeout = g_fs.timeout;
			e.entry_timeout = g_fs.timeout;
		}
		len = fuse_add_direntry_plus(req, buf + used, size - used, name,
					     &e, (off_t)(i + 1));
		if (len > size - used)
			break;
		used += len;
		if (attrs)
			fs_node_ref(node, parent, name, NULL, NULL);
	}
	return used;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       int plus)
{
	struct dsnap *d;
	size_t used;
	char *dbuf = fs_reply_buf(size ? size : 1);
	int err = 0;

	if (!dbuf) {
		fs_reply_err(req, ENOMEM);
		return;
	}
	d = snapshot(ino, off < 0 ? 0 : off, &err);
	if (!d) {
		fs_reply_err(req, -err);
		return;
	}
	if (off < 0 || (size_t)off > dsnap_len(d))
		off = 0;
	/* the listing was names only: the rest of it with attributes */
	if (plus && d->advised && d->l.bare &&
	    (err = fs_listing_attrs(d->vdir, d->owner, d->mode, &d->l)) &&
	    err != -FS_EWAIT)
		sfs_debug("fs", "no attributes for a listing of %s: %s",
			  d->vdir, strerror(-err));
	/* the attributes from the server, on a thread that may wait */
	if (err == -FS_EWAIT)
		d = NULL;
	used = d ? fill(req, d, ino, dbuf, size, off, plus, &err) : 0;
	pthread_mutex_unlock(&snaps_lock);
	if (!d || err == -FS_EWAIT)
		fs_reply_err(req, -err);
	else
		fuse_reply_buf(req, dbuf, used);
}

void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 0);
}

void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 1);
}

void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	char path[SFS_VPATH_MAX + 2];
	struct sfs_dir_info di;
	struct fs_node n, c;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	(void)mode;
	ret = fs_resolve_child(parent, name, &c);
	fs_node_release(&c);
	if (ret != -ENOENT) {
		fs_reply_err(req, ret ? -ret : EEXIST);
		return;
	}
	ret = fs_dir_of(parent, &n);
	if (!ret && n.kind != FS_DIR && parent != FS_ROOT)
		ret = -EPERM;
	if (!ret && parent == FS_ROOT && root_special(name))
		ret = -EEXIST;
	if (!ret)
		ret = fs_child_dir(n.dir, name, path, sizeof(path));
	if (!ret)
		ret = fs_may_change();
	fs_node_release(&n);
	if (ret) {
		fs_reply_err(req, ret == -ENOENT ? EINVAL : -ret);
		return;
	}
	sfs_err_init(&e);
	st = sfs_dir_make(g_fs.store, &g_fs.actor, path, &e);
	if (!st)
		st = sfs_dir_stat(g_fs.store, &g_fs.actor, path, &di, &e);
	fs_names_changed();
	if (st) {
		fs_reply_err(req, fs_errno(st, &e));
		return;
	}
	fs_reply_entry_node(req, parent, name, FS_NODE(FS_DIR, di.ino));
}

void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	sfs_err_init(&e);
	ret = fs_resolve_child(parent, name, &n);
	/*
	 * A virtual directory vanishes with its last file, so rm -r finds
	 * the directory it emptied already gone: that is a success (the
	 * kernel asks only for a directory it has just seen).
	 */
	if (ret == -ENOENT) {
		fs_node_release(&n);
		fs_reply_err(req, 0);
		return;
	}
	if (!ret && n.kind != FS_DIR)
		ret = fs_is_file_kind(n.kind) ? -ENOTDIR : -EPERM;
	if (!ret) /* a directory's removal needs write, not delete */
		ret = fs_may_change();
	if (!ret) {
		st = sfs_dir_remove(g_fs.store, &g_fs.actor, n.dir, &e);
		ret = -fs_errno(st, &e);
		fs_names_changed();
	}
	fs_node_release(&n);
	fs_reply_err(req, -ret);
}

void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct sfs_space sp;
	struct statvfs st;
	struct sfs_err e;
	enum sfs_status s;

	(void)ino;
	sfs_err_init(&e);
	s = sfs_store_space_of(g_fs.store, &g_fs.actor, &sp, &e);
	if (s) {
		fs_reply_err(req, fs_errno(s, &e));
		return;
	}
	memset(&st, 0, sizeof(st));
	st.f_bsize = 4096;
	st.f_frsize = 4096;
	st.f_blocks = sp.total_bytes / 4096;
	st.f_bfree = sp.free_bytes / 4096;
	st.f_bavail = sp.avail_bytes / 4096;
	st.f_files = sp.total_files;
	st.f_ffree = sp.free_files;
	st.f_favail = sp.free_files;
	st.f_namemax = SFS_SEGMENT_MAX;
	fuse_reply_statfs(req, &st);
}
