/*
 * The nodes of the mount: what a node id stands for (a row of the store
 * and its kind), the references the kernel holds on them with the names
 * it knows them by (so a change made elsewhere can be invalidated by
 * name), and their attributes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

/*
 * The kernel's references: node id -> lookup count, and the parent and
 * name of its last entry. Open addressing with tombstones; a node whose
 * count falls to zero is removed. /.shared/ directories are kept for the
 * mount's life (there are few), as is the number they were given.
 */
struct ref {
	uint64_t id; /* 0: empty, 1: deleted (the root is never stored) */
	uint64_t nlookup;
	uint64_t parent;
	char *name;
};

struct shared_dir {
	uint64_t id;
	char owner[SFS_ID_SIZE];
	char *path;
};

static pthread_mutex_t refs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ref *refs;
static size_t refs_cap, refs_used, refs_n;
static struct shared_dir *sdirs;
static size_t nsdirs, sdirs_alloc;

#define TOMB 1

static size_t hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

static struct ref *ref_find(uint64_t id)
{
	size_t k;

	if (!refs_cap)
		return NULL;
	for (k = hash64(id) & (refs_cap - 1); refs[k].id;
	     k = (k + 1) & (refs_cap - 1))
		if (refs[k].id == id)
			return &refs[k];
	return NULL;
}

/* Grow (or clean the tombstones of) the table; refs_lock held. */
static int refs_grow(void)
{
	size_t cap = refs_cap ? refs_cap : 1024, i, k;
	struct ref *nr;

	while (4 * (refs_n + 1) > 3 * cap / 2)
		cap *= 2;
	nr = calloc(cap, sizeof(*nr));
	if (!nr)
		return -1;
	for (i = 0; i < refs_cap; i++) {
		if (refs[i].id <= TOMB)
			continue;
		for (k = hash64(refs[i].id) & (cap - 1); nr[k].id;
		     k = (k + 1) & (cap - 1))
			;
		nr[k] = refs[i];
	}
	free(refs);
	refs = nr;
	refs_cap = cap;
	refs_used = refs_n;
	return 0;
}

/*
 * Names the kernel may still hold for a node that a lookup found under
 * another name: renamed elsewhere, and looked up by its new name before
 * the change poller saw the change (it would then invalidate the new
 * name, which it remembers, and the old one would live on in the
 * kernel's cache). The poller invalidates them: a lookup cannot, as the
 * kernel holds the directory meanwhile. Past STALE_MAX waiting, the
 * entry's timeout does it.
 */
#define STALE_MAX 64
struct stale_name {
	uint64_t parent;
	char name[SFS_SEGMENT_MAX * 3 + 16];
};
static struct stale_name stale[STALE_MAX];
static int nstale;

/* refs_lock held. */
static void stale_add(uint64_t parent, const char *name)
{
	if (!parent || nstale == STALE_MAX)
		return;
	stale[nstale].parent = parent;
	snprintf(stale[nstale].name, sizeof(stale[0].name), "%s", name);
	nstale++;
}

void fs_node_ref(uint64_t id, uint64_t parent, const char *name,
		 const char *owner, const char *path)
{
	struct ref *r;
	size_t k;
	int woke = 0;

	(void)owner;
	(void)path;
	if (id == FS_ROOT)
		return;
	pthread_mutex_lock(&refs_lock);
	r = ref_find(id);
	if (!r) {
		if (2 * (refs_used + 1) > refs_cap && refs_grow()) {
			pthread_mutex_unlock(&refs_lock);
			return; /* not remembered: invalidated less precisely */
		}
		for (k = hash64(id) & (refs_cap - 1); refs[k].id > TOMB;
		     k = (k + 1) & (refs_cap - 1))
			;
		if (!refs[k].id)
			refs_used++;
		r = &refs[k];
		memset(r, 0, sizeof(*r));
		r->id = id;
		refs_n++;
	}
	r->nlookup++;
	if (name &&
	    (!r->name || r->parent != parent || strcmp(r->name, name))) {
		/* a name the kernel had before is stale: the poller goes */
		if (r->name && r->parent) {
			stale_add(r->parent, r->name);
			woke = 1;
		}
		free(r->name);
		r->name = strdup(name);
		r->parent = parent;
	}
	pthread_mutex_unlock(&refs_lock);
	if (woke)
		fs_poller_wake();
}

void fs_node_inval_stale(void)
{
	struct stale_name v[STALE_MAX];
	int i, n;

	if (!g_fs.se)
		return;
	pthread_mutex_lock(&refs_lock);
	n = nstale;
	memcpy(v, stale, (size_t)n * sizeof(v[0]));
	nstale = 0;
	pthread_mutex_unlock(&refs_lock);
	for (i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_entry(g_fs.se, v[i].parent,
						 v[i].name, strlen(v[i].name));
}

void fs_node_forget(uint64_t id, uint64_t nlookup)
{
	struct ref *r;

	pthread_mutex_lock(&refs_lock);
	r = ref_find(id);
	if (r && (r->nlookup <= nlookup)) {
		free(r->name);
		memset(r, 0, sizeof(*r));
		r->id = TOMB;
		refs_n--;
	} else if (r) {
		r->nlookup -= nlookup;
	}
	pthread_mutex_unlock(&refs_lock);
}

void fs_node_renamed(uint64_t id, uint64_t parent, const char *name)
{
	struct ref *r;
	char *nn;

	pthread_mutex_lock(&refs_lock);
	r = ref_find(id);
	if (r && (nn = strdup(name))) {
		free(r->name);
		r->name = nn;
		r->parent = parent;
	}
	pthread_mutex_unlock(&refs_lock);
}

/* Invalidate the kernel's entry of node id (by its remembered name). */
static void inval_entry_of(uint64_t id)
{
	char name[SFS_SEGMENT_MAX * 3 + 16];
	uint64_t parent = 0;
	struct ref *r;

	pthread_mutex_lock(&refs_lock);
	r = ref_find(id);
	if (r && r->name) {
		parent = r->parent;
		snprintf(name, sizeof(name), "%s", r->name);
	}
	pthread_mutex_unlock(&refs_lock);
	if (!r)
		return;
	if (parent)
		fuse_lowlevel_notify_inval_entry(g_fs.se, parent, name,
						 strlen(name));
	fuse_lowlevel_notify_inval_inode(g_fs.se, id, -1, 0);
}

void fs_node_inval_file(int64_t ino)
{
	if (!g_fs.se)
		return;
	inval_entry_of(FS_NODE(FS_FILE, ino));
	inval_entry_of(FS_NODE(FS_LA_FILE, ino));
	inval_entry_of(FS_NODE(FS_TRASH_FILE, ino));
}

void fs_node_inval_children(uint64_t parent)
{
	char(*names)[SFS_SEGMENT_MAX * 3 + 16] = NULL;
	size_t i, n = 0, cap = 0;
	void *nv;

	if (!g_fs.se)
		return;
	pthread_mutex_lock(&refs_lock);
	for (i = 0; i < refs_cap; i++) {
		if (refs[i].id <= TOMB || refs[i].parent != parent ||
		    !refs[i].name)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			nv = realloc(names, cap * sizeof(*names));
			if (!nv)
				break;
			names = nv;
		}
		snprintf(names[n++], sizeof(*names), "%s", refs[i].name);
	}
	pthread_mutex_unlock(&refs_lock);
	for (i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_entry(g_fs.se, parent, names[i],
						 strlen(names[i]));
	free(names);
}

void fs_node_inval_dir(uint64_t dir_node)
{
	if (!g_fs.se)
		return;
	/* its attributes and its listing (the kernel's readdir cache) */
	fuse_lowlevel_notify_inval_inode(g_fs.se, dir_node, 0, 0);
	if (dir_node != FS_ROOT)
		inval_entry_of(dir_node);
}

uint64_t fs_shared_dir_node(const char *owner, const char *path)
{
	struct shared_dir *nv;
	uint64_t id = 0;
	size_t i;

	pthread_mutex_lock(&refs_lock);
	for (i = 0; i < nsdirs; i++)
		if (!strcmp(sdirs[i].owner, owner) &&
		    !strcmp(sdirs[i].path, path)) {
			id = sdirs[i].id;
			goto out;
		}
	if (nsdirs == sdirs_alloc) {
		size_t na = sdirs_alloc ? 2 * sdirs_alloc : 16;

		nv = realloc(sdirs, na * sizeof(*nv));
		if (!nv)
			goto out;
		sdirs = nv;
		sdirs_alloc = na;
	}
	sdirs[nsdirs].path = strdup(path);
	if (!sdirs[nsdirs].path)
		goto out;
	snprintf(sdirs[nsdirs].owner, SFS_ID_SIZE, "%s", owner);
	id = sdirs[nsdirs].id = FS_NODE(FS_SHARED_DIR, nsdirs + 1);
	nsdirs++;
out:
	pthread_mutex_unlock(&refs_lock);
	return id;
}

int fs_shared_node_info(uint64_t id, char owner[SFS_ID_SIZE], char *path,
			size_t size)
{
	int64_t i = FS_ID(id) - 1;
	int ret = -ENOENT;

	pthread_mutex_lock(&refs_lock);
	if (FS_KIND(id) == FS_SHARED_DIR && i >= 0 && (size_t)i < nsdirs) {
		snprintf(owner, SFS_ID_SIZE, "%s", sdirs[i].owner);
		snprintf(path, size, "%s", sdirs[i].path);
		ret = 0;
	}
	pthread_mutex_unlock(&refs_lock);
	return ret;
}

int fs_is_file_kind(enum fs_kind k)
{
	return k == FS_FILE || k == FS_LA_FILE || k == FS_TRASH_FILE;
}

void fs_node_release(struct fs_node *n)
{
	sfs_file_release(&n->f);
}

/* A directory of the user (or its mirror) by its row id. */
static int dir_by_row(int64_t row, struct fs_node *n)
{
	struct sfs_err e;
	enum sfs_status st;

	sfs_err_init(&e);
	st = sfs_dir_stat_ino(g_fs.store, &g_fs.actor, row, n->dir,
			      sizeof(n->dir), &n->di, &e);
	return st ? -fs_errno(st, &e) : 0;
}

static int file_by_ino(int64_t ino, struct fs_node *n)
{
	struct sfs_err e;
	enum sfs_status st;

	sfs_err_init(&e);
	st = sfs_file_get_ino(g_fs.store, &g_fs.actor, ino, &n->f, &e);
	if (st == SFS_FORBIDDEN)
		return -ENOENT; /* no longer shared with the user */
	return st ? -fs_errno(st, &e) : 0;
}

static int root_dir(struct fs_node *n)
{
	struct sfs_err e;
	enum sfs_status st;

	snprintf(n->dir, sizeof(n->dir), "/");
	sfs_err_init(&e);
	st = sfs_dir_stat(g_fs.store, &g_fs.actor, "/", &n->di, &e);
	return st ? -fs_errno(st, &e) : 0;
}

int fs_node_get(uint64_t id, struct fs_node *n)
{
	int ret;

	memset(n, 0, sizeof(*n));
	sfs_file_init(&n->f);
	n->id = id;
	n->kind = FS_KIND(id);
	switch (n->kind) {
	case FS_SPECIAL:
		if (id == FS_ROOT || id == FS_LA_ROOT)
			return root_dir(n);
		if (id == FS_TRASH_ROOT || id == FS_SHARED_ROOT)
			return 0;
		return -ENOENT;
	case FS_DIR:
	case FS_LA_DIR:
		return dir_by_row(FS_ID(id), n);
	case FS_FILE:
		ret = file_by_ino(FS_ID(id), n);
		if (!ret && n->f.deleted)
			ret = -ENOENT;
		return ret;
	case FS_LA_FILE:
		ret = file_by_ino(FS_ID(id), n);
		if (!ret &&
		    !sfs_file_listed(&n->f, SFS_LIST_LISTENING, n->f.path))
			ret = -ENOENT;
		return ret;
	case FS_TRASH_FILE:
		ret = file_by_ino(FS_ID(id), n);
		/* restored (by a rename of the mount or elsewhere) */
		if (!ret && !n->f.deleted)
			n->kind = FS_FILE;
		return ret;
	case FS_SHARED_OWNER:
		return fs_shared_node_info(id, n->owner, n->dir,
					   sizeof(n->dir));
	case FS_SHARED_DIR:
		return fs_shared_node_info(id, n->owner, n->dir,
					   sizeof(n->dir));
	default:
		return -ENOENT;
	}
}

/* ---- attributes ------------------------------------------------------ */

static void set_ts(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

void fs_stat_dir(struct stat *st, uint64_t node, int64_t mtime_ns, int64_t nsub,
		 int writable)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = node;
	st->st_mode = S_IFDIR | ((writable ? 0755 : 0555) & ~g_fs.umask);
	st->st_nlink = (nlink_t)(2 + (nsub > 0 ? nsub : 0));
	st->st_uid = g_fs.uid;
	st->st_gid = g_fs.gid;
	st->st_size = 4096;
	st->st_blocks = 8;
	st->st_blksize = 4096;
	if (mtime_ns <= 0)
		mtime_ns = g_fs.start_ns;
	set_ts(&st->st_mtim, mtime_ns);
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

void fs_stat_file(struct stat *st, uint64_t node, int64_t ino, int64_t size,
		  int64_t mtime_ns, int64_t atime_ns, int64_t ctime_ns,
		  int writable)
{
	memset(st, 0, sizeof(*st));
	/* a file's inode is its row id, whichever tree shows it */
	st->st_ino = FS_KIND(node) == FS_LA_FILE ? node : (ino_t)ino;
	st->st_mode = S_IFREG | ((writable ? 0644 : 0444) & ~g_fs.umask);
	st->st_nlink = 1;
	st->st_uid = g_fs.uid;
	st->st_gid = g_fs.gid;
	st->st_size = size < 0 ? 0 : size;
	st->st_blocks = (st->st_size + 511) / 512;
	/*
	 * The size tools copy in (cp, rsync: max(128 KiB, st_blksize)): a
	 * remote mount's bytes go to the network, as NFS's rsize/wsize of
	 * 1 MiB; fewer and larger FUSE requests.
	 */
	st->st_blksize = sfs_store_is_remote(g_fs.store) ? 1 << 20 : 65536;
	set_ts(&st->st_mtim, mtime_ns);
	set_ts(&st->st_atim, atime_ns > 0 ? atime_ns : mtime_ns);
	set_ts(&st->st_ctim, ctime_ns);
}

int fs_stat_node(const struct fs_node *n, struct stat *st)
{
	const struct sfs_file *f = &n->f;

	switch (n->kind) {
	case FS_SPECIAL:
		if (n->id == FS_ROOT || n->id == FS_LA_ROOT)
			fs_stat_dir(st, n->id, n->di.mtime_ns, n->di.nsub,
				    n->id == FS_ROOT && !g_fs.ro);
		else
			fs_stat_dir(st, n->id, 0, 0, 0);
		return 0;
	case FS_DIR:
		fs_stat_dir(st, n->id, n->di.mtime_ns, n->di.nsub, !g_fs.ro);
		return 0;
	case FS_LA_DIR:
		fs_stat_dir(st, n->id, n->di.mtime_ns, n->di.nsub, 0);
		return 0;
	case FS_SHARED_OWNER:
	case FS_SHARED_DIR:
		fs_stat_dir(st, n->id, 0, 0, 0);
		return 0;
	case FS_LA_FILE:
		fs_stat_file(st, n->id, f->ino, f->la.size, f->mtime_ns,
			     f->atime_ns, f->ctime_ns, 0);
		return 0;
	case FS_FILE:
	case FS_TRASH_FILE:
		fs_stat_file(st, n->id, f->ino, f->size, f->mtime_ns,
			     f->atime_ns, f->ctime_ns,
			     n->kind == FS_FILE && !fs_may_change() &&
				     !sfs_file_allows(f, SFS_ACT_WRITE, NULL));
		return fs_open_attr(f->ino, st) < 0 ? -FS_EWAIT : 0;
	default:
		return -ENOENT;
	}
}

int fs_entry_of(const struct fs_node *n, uint64_t parent, const char *name,
		struct fuse_entry_param *e)
{
	int ret;

	memset(e, 0, sizeof(*e));
	ret = fs_stat_node(n, &e->attr);
	if (ret)
		return ret;
	e->ino = n->id;
	e->attr_timeout = g_fs.timeout;
	e->entry_timeout = g_fs.timeout;
	fs_node_ref(n->id, parent, name, n->owner, n->dir);
	return 0;
}

void fs_reply_entry_node(fuse_req_t req, uint64_t parent, const char *name,
			 uint64_t id)
{
	struct fuse_entry_param e;
	struct fs_node n;
	int ret;

	ret = fs_node_get(id, &n);
	if (!ret)
		ret = fs_entry_of(&n, parent, name, &e);
	fs_node_release(&n);
	if (ret)
		fs_reply_err(req, -ret);
	else
		fuse_reply_entry(req, &e);
}
