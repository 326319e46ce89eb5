/*
 * The change poller: keeps the kernel's caches coherent with changes made
 * by other processes on the same store (the REST daemon, other mounts).
 * On SQLite every commit writes the database's WAL, so the poller sleeps
 * on inotify of the store's directory and wakes when any process commits;
 * on PostgreSQL (and a remote store) the store's change fd wakes it (a
 * NOTIFY of any process's commit, heard by the store's LISTEN). It then
 * reads the store's change feed and invalidates the kernel's
 * entries and attributes of what changed. An idle mount stays asleep.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

/*
 * At most one look every MIN_GAP_MS (a burst of commits costs one query
 * per gap, not one each), and one every IDLE_MS even without a wake-up
 * (a store on a filesystem without inotify, or a lost event).
 */
#define MIN_GAP_MS 10
#define IDLE_MS 5000
#define MAX_DIRS 64

/*
 * A test's stretch of IDLE_MS (SPEECHFS_TEST_POLL_IDLE_MS, milliseconds):
 * set long, the mount looks only when woken, which shows that the
 * wake-up (inotify, NOTIFY, a remote feed) alone keeps it coherent.
 */
/* Whether the poller is asked to end (fs_poller_ask_stop, any thread). */
static int stop_asked(void)
{
	return __atomic_load_n(&g_fs.stop, __ATOMIC_ACQUIRE);
}

static int idle_ms(void)
{
	const char *v = getenv("SPEECHFS_TEST_POLL_IDLE_MS");
	long ms = v ? strtol(v, NULL, 10) : 0;

	return ms > 0 && ms <= 3600000 ? (int)ms : IDLE_MS;
}

/* What one look saw: directories of the user that changed. */
struct change_ctx {
	int64_t user;
	char dirs[MAX_DIRS][SFS_VPATH_MAX + 2];
	int dir_only[MAX_DIRS]; /* a directory itself changed there */
	int ndirs;
	int seen; /* changes by others */
	int any;
	int shared;   /* a share with the user changed */
	int overflow; /* too many directories: the root goes */
};

static void note_dir(struct change_ctx *c, const char *dir, int dir_only)
{
	int i;

	for (i = 0; i < c->ndirs; i++)
		if (!strcmp(c->dirs[i], dir)) {
			c->dir_only[i] |= dir_only;
			return;
		}
	if (c->ndirs == MAX_DIRS) {
		c->overflow = 1;
		return;
	}
	snprintf(c->dirs[c->ndirs], sizeof(c->dirs[0]), "%s", dir);
	c->dir_only[c->ndirs++] = dir_only;
}

static void on_change(void *arg, int64_t seq, int64_t file_ino, int64_t owner,
		      const char *dir)
{
	struct change_ctx *c = arg;

	(void)seq;
	c->seen++;
	/* a file the kernel knows, whoever owns it (shared files too) */
	if (file_ino > 0)
		fs_node_inval_file(file_ino);
	if (owner != c->user)
		return;
	c->any = 1;
	if (!dir)
		c->shared = 1;
	else
		note_dir(c, dir, file_ino == 0);
}

/* The node of one of the user's directories, or 0 (gone, or bad). */
static uint64_t dir_node(const char *vdir)
{
	struct sfs_dir_info di;
	struct sfs_err e;

	if (!strcmp(vdir, "/"))
		return FS_ROOT;
	sfs_err_init(&e);
	if (sfs_dir_stat(g_fs.store, &g_fs.actor, vdir, &di, &e))
		return 0;
	return FS_NODE(FS_DIR, di.ino);
}

/*
 * Forget the kernel's view of one changed directory: its attributes and
 * listing, those of its /.listening/ mirror, and, when a directory below
 * it changed (made, renamed, removed), the names of its entries.
 */
static void invalidate_dir(const char *vdir, int dir_only)
{
	uint64_t node = dir_node(vdir);

	if (!node)
		return;
	fuse_lowlevel_notify_inval_inode(g_fs.se, node, 0, 0);
	fuse_lowlevel_notify_inval_inode(
		g_fs.se,
		node == FS_ROOT ? FS_LA_ROOT : FS_NODE(FS_LA_DIR, FS_ID(node)),
		0, 0);
	if (dir_only)
		fs_node_inval_children(node);
}

static int64_t look(int64_t since)
{
	struct change_ctx c;
	struct sfs_err e;
	int64_t last = since;
	int i;

	memset(&c, 0, sizeof(c));
	c.user = g_fs.actor.user;
	sfs_err_init(&e);
	if (sfs_store_changes_by_others(g_fs.store, since, on_change, &c, &last,
					&e))
		return since;
	if (c.seen)
		sfs_debug("fs", "%d change(s) by others, up to %lld", c.seen,
			  (long long)last);
	if (!c.any)
		return last;
	fs_names_changed();
	for (i = 0; i < c.ndirs && !stop_asked(); i++)
		invalidate_dir(c.dirs[i], c.dir_only[i]);
	if (c.shared || c.overflow) {
		fuse_lowlevel_notify_inval_inode(g_fs.se, FS_SHARED_ROOT, 0, 0);
		fs_node_inval_children(FS_SHARED_ROOT);
	}
	if (c.overflow) {
		fuse_lowlevel_notify_inval_inode(g_fs.se, FS_ROOT, 0, 0);
		fs_node_inval_children(FS_ROOT);
	}
	/* more than one batch waiting: look again at once */
	return last;
}

/* Empty the inotify queue; 1 when something happened. */
static int drain(int fd)
{
	char buf[4096] __attribute__((aligned(8)));
	int any = 0;

	while (read(fd, buf, sizeof(buf)) > 0)
		any = 1;
	return any;
}

/*
 * What wakes the poller and where its feed starts, set up by
 * fs_poller_start before the mount answers its first request: first the
 * watch, then the change sequence, so that a commit made after the mount
 * is up is either in the sequence read or wakes the poller (read first,
 * a commit between the two was neither: unseen until the idle look).
 */
static int g_in = -1, g_own;
static int64_t g_since;

static void watch_changes(void)
{
	struct sfs_err e;

	/* a remote store's feed or PostgreSQL's LISTEN says when, through
	 * an eventfd; on SQLite, each commit writes the store's WAL */
	g_in = sfs_store_change_fd(g_fs.store);
	g_own = g_in < 0;
	if (g_own)
		g_in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (g_own && g_in >= 0 &&
	    inotify_add_watch(g_in, sfs_store_dir(g_fs.store),
			      IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
		sfs_warn("fs", "cannot watch the store: %s", strerror(errno));
		close(g_in);
		g_in = -1;
	}
	sfs_err_init(&e);
	g_since = 0;
	if (sfs_store_change_seq(g_fs.store, &g_since, &e))
		sfs_warn("fs", "cannot read the change sequence: %s",
			 e.message);
}

static void *poller(void *arg)
{
	struct pollfd p[2];
	int64_t since = g_since, next, t;
	int in = g_in, n, own = g_own, idle = idle_ms();

	(void)arg;
	p[0].fd = g_fs.wake_fd;
	p[0].events = POLLIN;
	p[1].fd = in;
	p[1].events = POLLIN;
	next = 0;
	while (!stop_asked()) {
		n = poll(p, in >= 0 ? 2 : 1, in >= 0 ? idle : 500);
		if (stop_asked())
			break;
		if (n > 0 && (p[0].revents & POLLIN)) {
			uint64_t v;

			if (read(g_fs.wake_fd, &v, sizeof(v)) < 0)
				v = 0;
		}
		if (in >= 0 && n > 0 && (p[1].revents & POLLIN))
			drain(in);
		fs_node_inval_stale();
		t = sfs_now_ms();
		if (t < next)
			usleep((useconds_t)(next - t) * 1000);
		next = sfs_now_ms() + MIN_GAP_MS;
		since = look(since);
	}
	if (in >= 0 && own)
		close(in);
	__atomic_store_n(&g_fs.poller_ended, 1, __ATOMIC_RELEASE);
	return NULL;
}

void fs_poller_start(void)
{
	sigset_t old;

	if (g_fs.poller_running)
		return;
	/* a remote store without a change feed: the kernel's entries and
	 * attributes expire after the mount's timeout instead */
	if (sfs_store_is_remote(g_fs.store) &&
	    sfs_store_change_fd(g_fs.store) < 0)
		return;
	g_fs.stop = 0;
	g_fs.poller_ended = 0;
	g_fs.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g_fs.wake_fd < 0) {
		sfs_warn("fs", "cannot start the change poller: %s",
			 strerror(errno));
		return;
	}
	watch_changes();
	fs_signals_off(&old);
	if (pthread_create(&g_fs.poller, NULL, poller, NULL) == 0) {
		g_fs.poller_running = 1;
	} else {
		sfs_warn("fs", "cannot start the change poller");
		if (g_in >= 0 && g_own)
			close(g_in);
		g_in = -1;
	}
	fs_signals_on(&old);
}

void fs_poller_wake(void)
{
	uint64_t one = 1;

	if (g_fs.wake_fd >= 0 && write(g_fs.wake_fd, &one, sizeof(one)) < 0)
		sfs_debug("fs", "cannot wake the change poller");
}

void fs_poller_ask_stop(void)
{
	uint64_t one = 1;

	if (!g_fs.poller_running || stop_asked())
		return;
	__atomic_store_n(&g_fs.stop, 1, __ATOMIC_RELEASE);
	if (write(g_fs.wake_fd, &one, sizeof(one)) < 0)
		sfs_warn("fs", "cannot wake the change poller");
}

int fs_poller_ended(void)
{
	return !g_fs.poller_running ||
	       __atomic_load_n(&g_fs.poller_ended, __ATOMIC_ACQUIRE);
}

void fs_poller_stop(void)
{
	if (!g_fs.poller_running)
		return;
	fs_poller_ask_stop();
	pthread_join(g_fs.poller, NULL);
	close(g_fs.wake_fd);
	g_fs.wake_fd = -1;
	g_fs.poller_running = 0;
}
