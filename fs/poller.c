/*
 * The change poller: keeps the kernel's caches coherent with changes made
 * by other processes on the same store (the REST daemon, other mounts).
 * It reads the store's change feed and invalidates the entries of the
 * directories and files that changed.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

#define MAX_DIRS 16
#define MAX_INOS 64

/* What one poll saw of this user's changes. */
struct change_ctx {
	int64_t owner;
	char dirs[MAX_DIRS][SFS_VPATH_MAX + 2];
	int ndirs;
	int64_t inos[MAX_INOS];
	int ino_dir[MAX_INOS];
	int ninos;
	int any;
	int shared; /* a share with the user changed */
	int overflow;
};

static void on_change(void *arg, int64_t seq, int64_t file_ino, int64_t owner,
		      const char *dir)
{
	struct change_ctx *c = arg;
	int i;

	(void)seq;
	if (owner != c->owner)
		return;
	c->any = 1;
	if (!dir) {
		c->shared = 1;
		return;
	}
	for (i = 0; i < c->ndirs; i++)
		if (!strcmp(c->dirs[i], dir))
			break;
	if (i == c->ndirs) {
		if (c->ndirs == MAX_DIRS) {
			c->overflow = 1;
			return;
		}
		snprintf(c->dirs[c->ndirs++], sizeof(c->dirs[0]), "%s", dir);
	}
	if (file_ino > 0 && c->ninos < MAX_INOS) {
		c->inos[c->ninos] = file_ino;
		c->ino_dir[c->ninos++] = i;
	}
}

/*
 * Forget the kernel's view of one changed directory: its own entry (and
 * its /.listening/ mirror) and the entries of the files that changed in
 * it. Data caches need nothing: a new content is a new blob, and opens
 * keep the page cache only while the blob is the same.
 */
static void invalidate_dir(const struct change_ctx *c, int d)
{
	char path[SFS_VPATH_MAX + 2 + 300];
	const char *vdir = c->dirs[d];
	struct fs_listing l;
	size_t n = strlen(vdir), i;
	int k, want = 0;

	snprintf(path, sizeof(path), "%.*s", (int)(n > 1 ? n - 1 : 1), vdir);
	fuse_invalidate_path(g_fs.fuse, path);
	snprintf(path, sizeof(path), "/" FS_LISTENING "%.*s",
		 (int)(n > 1 ? n - 1 : 0), vdir);
	fuse_invalidate_path(g_fs.fuse, path);
	for (k = 0; k < c->ninos; k++)
		want |= c->ino_dir[k] == d;
	if (!want || fs_list(vdir, FS_LIST_FILES, &l))
		return;
	for (i = 0; i < l.n; i++)
		for (k = 0; k < c->ninos; k++)
			if (c->ino_dir[k] == d && c->inos[k] == l.v[i].ino) {
				snprintf(path, sizeof(path), "%s%s", vdir,
					 l.v[i].name);
				fuse_invalidate_path(g_fs.fuse, path);
				break;
			}
	fs_listing_release(&l);
}

static void *poller(void *arg)
{
	int64_t since = 0, last;
	struct change_ctx c;
	struct sfs_err e;
	int i;

	(void)arg;
	sfs_err_init(&e);
	if (sfs_store_change_seq(g_fs.store, &since, &e))
		sfs_warn("fs", "cannot read the change sequence: %s",
			 e.message);
	while (!g_fs.stop) {
		usleep(500 * 1000);
		memset(&c, 0, sizeof(c));
		c.owner = g_fs.actor.user;
		sfs_err_init(&e);
		last = since;
		if (sfs_store_changes(g_fs.store, since, on_change, &c, &last,
				      &e))
			continue;
		since = last;
		if (!c.any)
			continue;
		fs_names_changed();
		if (!g_fs.fuse)
			continue;
		for (i = 0; i < c.ndirs && !g_fs.stop; i++)
			invalidate_dir(&c, i);
		if (c.shared)
			fuse_invalidate_path(g_fs.fuse, "/" FS_SHARED);
		if (c.overflow)
			fuse_invalidate_path(g_fs.fuse, "/");
	}
	return NULL;
}

void fs_poller_start(void)
{
	sigset_t old;

	if (g_fs.poller_running)
		return;
	g_fs.stop = 0;
	fs_signals_off(&old);
	if (pthread_create(&g_fs.poller, NULL, poller, NULL) == 0)
		g_fs.poller_running = 1;
	else
		sfs_warn("fs", "cannot start the change poller");
	fs_signals_on(&old);
}

void fs_poller_stop(void)
{
	if (!g_fs.poller_running)
		return;
	g_fs.stop = 1;
	pthread_join(g_fs.poller, NULL);
	g_fs.poller_running = 0;
}
