/*
 * speechfs: mount one user's files of a speechfs store with FUSE 3.
 * Parses the options (fuse_opt), opens the store, acts as the user, runs
 * the job workers, serves the mount until it is unmounted or signalled,
 * and polls the store's changes to keep the kernel's caches coherent.
 */
#include "fs_i.h"
#include <errno.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include "speechfs/config.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

struct fs g_fs;

struct opts {
	char *store;
	char *user;
	char *config;
	char *cfg_store; /* the config file's 'store' */
	unsigned uid, gid, umask;
	int set_uid, set_gid, set_umask;
	int ro;
	int allow_other;
	int no_workers;
	int listening;
	int generate;
	int version;
	int help;
};

enum {
	KEY_RO,
	KEY_ALLOW_OTHER,
	KEY_VERSION,
	KEY_HELP,
	KEY_UID,
	KEY_GID,
	KEY_UMASK
};

#define OPT(t, p)                                                              \
	{                                                                      \
		t, offsetof(struct opts, p), 1                                 \
	}
#define OPTV(t, p, v)                                                          \
	{                                                                      \
		t, offsetof(struct opts, p), v                                 \
	}

static const struct fuse_opt specs[] = { OPT("--store %s", store),
					 OPT("--store=%s", store),
					 OPT("store=%s", store),
					 OPT("--config %s", config),
					 OPT("--config=%s", config),
					 OPT("config=%s", config),
					 OPT("--user %s", user),
					 OPT("--user=%s", user),
					 OPT("user=%s", user),
					 OPT("no_workers", no_workers),
					 OPTV("listening=0", listening, 0),
					 OPTV("listening=1", listening, 1),
					 OPTV("generate=0", generate, 0),
					 OPTV("generate=1", generate, 1),
					 FUSE_OPT_KEY("uid=", KEY_UID),
					 FUSE_OPT_KEY("gid=", KEY_GID),
					 FUSE_OPT_KEY("umask=", KEY_UMASK),
					 FUSE_OPT_KEY("ro", KEY_RO),
					 FUSE_OPT_KEY("allow_other",
						      KEY_ALLOW_OTHER),
					 FUSE_OPT_KEY("--version", KEY_VERSION),
					 FUSE_OPT_KEY("-V", KEY_VERSION),
					 FUSE_OPT_KEY("-h", KEY_HELP),
					 FUSE_OPT_KEY("--help", KEY_HELP),
					 FUSE_OPT_END };

static int parse_num(const char *arg, int base, unsigned *out)
{
	const char *v = strchr(arg, '=');
	unsigned long n;
	char *end;

	if (!v || !v[1])
		return -1;
	errno = 0;
	n = strtoul(v + 1, &end, base);
	if (errno || *end || n > 0xffffffffUL)
		return -1;
	*out = (unsigned)n;
	return 0;
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct opts *o = data;

	(void)outargs;
	switch (key) {
	case KEY_RO:
		o->ro = 1;
		return 1; /* the kernel enforces it too */
	case KEY_ALLOW_OTHER:
		o->allow_other = 1;
		return 1;
	case KEY_VERSION:
		o->version = 1;
		return 0;
	case KEY_HELP:
		o->help = 1;
		return 0;
	case KEY_UID:
		o->set_uid = 1;
		return parse_num(arg, 10, &o->uid) ? -1 : 0;
	case KEY_GID:
		o->set_gid = 1;
		return parse_num(arg, 10, &o->gid) ? -1 : 0;
	case KEY_UMASK:
		o->set_umask = 1;
		return parse_num(arg, 8, &o->umask) || o->umask > 0777 ? -1 : 0;
	default:
		return 1;
	}
}

static void usage(const char *prog)
{
	printf("usage: %s --store DIR --user USER_ID MOUNTPOINT [options]\n"
	       "\n"
	       "Mount one user's recordings of a speechfs store as files.\n"
	       "\n"
	       "    --store DIR, -o store=DIR   the speechfs store\n"
	       "    --user ID, -o user=ID       act as this user (uuid)\n"
	       "    --config FILE, -o config=FILE\n"
	       "                                the core's settings (the "
	       "daemon's file)\n"
	       "    -f                          stay in the foreground\n"
	       "    -d                          debug output (implies -f)\n"
	       "    -s                          serve in a single thread\n"
	       "    -o ro                       read-only mount\n"
	       "    -o allow_other              let other users in\n"
	       "                                (with default_permissions)\n"
	       "    -o uid=N,gid=N,umask=NNN    owner and modes shown\n"
	       "    -o no_workers               run no job workers\n"
	       "    -o listening=0|1            show /.listening/ (1)\n"
	       "    -o generate=0|1             make listening audio of files\n"
	       "                                written here (1)\n"
	       "    -V, --version               print the version\n"
	       "    -h, --help                  print this help\n"
	       "\n"
	       "example:\n"
	       "    %s --store /srv/speechfs --user $U ~/speech\n",
	       prog, prog);
}

/* ---- coherence -------------------------------------------------------- */

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

/*
 * Threads of the mount do not take SIGTERM/SIGINT/SIGHUP: libfuse's
 * handler must run on the thread that reads the device (main), so that
 * its read is interrupted and the loop sees the session end.
 */
static void signals_off(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

static void signals_on(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

void fs_poller_start(void)
{
	sigset_t old;

	if (g_fs.poller_running)
		return;
	g_fs.stop = 0;
	signals_off(&old);
	if (pthread_create(&g_fs.poller, NULL, poller, NULL) == 0)
		g_fs.poller_running = 1;
	else
		sfs_warn("fs", "cannot start the change poller");
	signals_on(&old);
}

void fs_poller_stop(void)
{
	if (!g_fs.poller_running)
		return;
	g_fs.stop = 1;
	pthread_join(g_fs.poller, NULL);
	g_fs.poller_running = 0;
}

/* ---- the request loop ------------------------------------------------- */

/*
 * libfuse's own loop lets every thread read the device, and the kernel
 * hands each request to the thread that has waited longest: on a
 * sequential walk two threads take turns, each with cold caches and a
 * contended lock (find over 100,000 files: 0.33 s against 0.25 s for one
 * thread). Here one thread reads and answers what only looks (lookup,
 * getattr, xattrs, readdir, open ...) itself, and hands what may wait
 * for the disk or for a database write (read, write, flush, fsync,
 * release, changes of names and attributes) to a few workers, so those
 * run in parallel and never hold up a lookup. Request buffers circulate
 * between the reader and the workers and are never freed on the way.
 */
#define LOOP_SLOTS 64

struct loop {
	struct fuse_session *se;
	pthread_mutex_t mu;
	pthread_cond_t work_cv;
	struct fuse_buf spare[LOOP_SLOTS]; /* free buffers */
	int nspare;
	struct fuse_buf queue[LOOP_SLOTS]; /* requests for the workers */
	int head, nqueued;
	int stop;
	pthread_t *threads;
	int nthreads;
};

static int slow_request(const struct fuse_buf *b)
{
	const struct fuse_in_header *in = b->mem;

	if ((b->flags & FUSE_BUF_IS_FD) || b->size < sizeof(*in))
		return 0;
	switch (in->opcode) {
	case FUSE_READ:
	case FUSE_WRITE:
	case FUSE_FLUSH:
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
	case FUSE_RELEASE:
	case FUSE_CREATE:
	case FUSE_MKNOD:
	case FUSE_MKDIR:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_RENAME:
	case FUSE_RENAME2:
	case FUSE_SETATTR:
	case FUSE_SETXATTR:
	case FUSE_REMOVEXATTR:
	case FUSE_FALLOCATE:
	case FUSE_COPY_FILE_RANGE:
	case FUSE_LSEEK:
		return 1;
	default:
		return 0;
	}
}

static void *loop_worker(void *arg)
{
	struct loop *l = arg;
	struct fuse_buf b;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->nqueued && !l->stop)
			pthread_cond_wait(&l->work_cv, &l->mu);
		if (!l->nqueued)
			break;
		b = l->queue[l->head];
		l->head = (l->head + 1) % LOOP_SLOTS;
		l->nqueued--;
		pthread_mutex_unlock(&l->mu);
		fuse_session_process_buf(l->se, &b);
		pthread_mutex_lock(&l->mu);
		l->spare[l->nspare++] = b;
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Hand *b to a worker and put a spare buffer in its place; 0 if none. */
static int hand_off(struct loop *l, struct fuse_buf *b)
{
	int ok = 0;

	pthread_mutex_lock(&l->mu);
	if (l->nspare && l->nqueued < LOOP_SLOTS) {
		l->queue[(l->head + l->nqueued) % LOOP_SLOTS] = *b;
		l->nqueued++;
		*b = l->spare[--l->nspare];
		pthread_cond_signal(&l->work_cv);
		ok = 1;
	}
	pthread_mutex_unlock(&l->mu);
	return ok;
}

/*
 * A read or write is handed over only while more requests wait
 * (readahead sends several reads at once: they are served in parallel);
 * a lone one (a sequential reader or writer waiting for it) is answered
 * at once, without the hand-over's extra wakeup (cold sequential reads
 * of 1 GiB: ~1,700 -> ~2,800 MB/s, libfuse's loop ~1,700-2,200).
 */
static int lone_io(struct fuse_session *se, const struct fuse_buf *b)
{
	const struct fuse_in_header *in = b->mem;
	struct pollfd p = { .fd = fuse_session_fd(se), .events = POLLIN };

	return (in->opcode == FUSE_READ || in->opcode == FUSE_WRITE) &&
	       poll(&p, 1, 0) == 0;
}

static int run_loop(struct fuse_session *se, int nworkers)
{
	struct fuse_buf b;
	struct loop l;
	sigset_t old;
	int i, res, ret = 0;

	memset(&l, 0, sizeof(l));
	memset(&b, 0, sizeof(b));
	l.se = se;
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.work_cv, NULL);
	/* buffers are allocated by libfuse on their first use, then kept */
	l.nspare = nworkers * 2 < LOOP_SLOTS ? nworkers * 2 : LOOP_SLOTS;
	l.threads = calloc((size_t)nworkers, sizeof(*l.threads));
	if (!l.threads)
		nworkers = 0;
	signals_off(&old);
	for (i = 0; i < nworkers; i++)
		if (pthread_create(&l.threads[l.nthreads], NULL, loop_worker,
				   &l) == 0)
			l.nthreads++;
	signals_on(&old);
	if (!l.nthreads)
		l.nspare = 0; /* everything inline then */
	while (!fuse_session_exited(se)) {
		res = fuse_session_receive_buf(se, &b);
		if (res == -EINTR)
			continue;
		if (res <= 0) {
			if (res < 0 && !fuse_session_exited(se))
				ret = -1;
			break;
		}
		if (!slow_request(&b) || lone_io(se, &b) || !hand_off(&l, &b))
			fuse_session_process_buf(se, &b);
	}
	pthread_mutex_lock(&l.mu);
	l.stop = 1;
	pthread_cond_broadcast(&l.work_cv);
	pthread_mutex_unlock(&l.mu);
	for (i = 0; i < l.nthreads; i++)
		pthread_join(l.threads[i], NULL);
	free(b.mem);
	for (i = 0; i < l.nspare; i++)
		free(l.spare[i].mem);
	free(l.threads);
	pthread_cond_destroy(&l.work_cv);
	pthread_mutex_destroy(&l.mu);
	fuse_session_reset(se);
	return ret;
}

/* ---- main ------------------------------------------------------------- */

/*
 * The mount reads the daemon's file for the core's keys (retention,
 * listening audio, import ...), so both agree; the daemon's own keys are
 * skipped, 'store' is the default store and 'jobs.enabled = false'
 * means no_workers.
 */
static int mount_key(void *arg, const char *key, const char *value,
		     int core_key, char *msg, size_t msgsz)
{
	struct opts *o = arg;
	int lvl;

	if (core_key || !strcmp(key, "listen") || !strncmp(key, "http.", 5))
		return 0;
	if (!strcmp(key, "store")) {
		free(o->cfg_store);
		o->cfg_store = strdup(value);
		return o->cfg_store ? 0 : -1;
	}
	if (!strcmp(key, "jobs.enabled")) {
		if (!strcmp(value, "false") || !strcmp(value, "0"))
			o->no_workers = 1;
		else if (strcmp(value, "true") && strcmp(value, "1"))
			snprintf(msg, msgsz, "expected true or false");
		return msg[0] ? -1 : 0;
	}
	if (!strcmp(key, "log.level")) {
		lvl = sfs_log_level_parse(value);
		if (lvl < 0)
			snprintf(msg, msgsz,
				 "expected error, warn, info or debug");
		else
			sfs_log_set_level((enum sfs_log_level)lvl);
		return lvl < 0 ? -1 : 0;
	}
	return 1;
}

static int open_store(struct opts *o)
{
	struct sfs_config cfg;
	struct sfs_err e;

	sfs_err_init(&e);
	sfs_config_init(&cfg);
	if (o->config && sfs_config_read(o->config, &cfg, mount_key, o, &e)) {
		fprintf(stderr, "speechfs: %s\n", e.message);
		return -1;
	}
	if (!o->store && o->cfg_store)
		o->store = strdup(o->cfg_store);
	if (!o->store) {
		fprintf(stderr, "speechfs: no store: give --store DIR\n");
		return -1;
	}
	if (sfs_store_open(o->store, &cfg, &g_fs.store, &e)) {
		fprintf(stderr, "speechfs: cannot open store '%s': %s\n",
			o->store, e.message);
		return -1;
	}
	if (sfs_auth_user(g_fs.store, o->user, SFS_SCOPE_ALL, &g_fs.actor,
			  &e)) {
		fprintf(stderr, "speechfs: unknown user '%s': %s\n", o->user,
			e.message);
		return -1;
	}
	return 0;
}

/* After fuse_daemonize: threads do not survive its fork. */
static int start_workers(const struct opts *o)
{
	struct sfs_err e;
	sigset_t old;
	int ret = 0;

	sfs_err_init(&e);
	if (o->no_workers)
		return 0;
	signals_off(&old);
	if (sfs_workers_start(g_fs.store, 0, &e)) {
		sfs_error("fs", "cannot start workers: %s", e.message);
		ret = -1;
	}
	signals_on(&old);
	return ret;
}

static int serve(struct fuse_args *args, const struct fuse_cmdline_opts *co,
		 const struct opts *o)
{
	struct fuse_loop_config *lc = NULL;
	struct fuse_session *se;
	struct fuse *f;
	int ret = -1;

	f = fuse_new(args, &fs_ops, sizeof(fs_ops), NULL);
	if (!f)
		return -1;
	g_fs.fuse = f;
	if (fuse_mount(f, co->mountpoint))
		goto out_new;
	se = fuse_get_session(f);
	if (fuse_set_signal_handlers(se))
		goto out_mount;
	if (fuse_daemonize(co->foreground) || start_workers(o))
		goto out_signals;
	/* systemd's Type=notify: the kernel queues requests until the loop */
	sd_notifyf(0, "READY=1\nSTATUS=mounted %s as user %s", co->mountpoint,
		   g_fs.actor.user_id);
	if (co->singlethread) {
		ret = fuse_loop(f);
	} else if (!co->clone_fd) {
		ret = run_loop(se, co->max_threads ? (int)co->max_threads : 10);
	} else {
		lc = fuse_loop_cfg_create();
		if (!lc)
			goto out_signals;
		fuse_loop_cfg_set_clone_fd(lc, co->clone_fd);
		/* UINT_MAX means "not given"; 3.14 warns when it is set */
		if (co->max_idle_threads != (unsigned)-1)
			fuse_loop_cfg_set_idle_threads(lc,
						       co->max_idle_threads);
		fuse_loop_cfg_set_max_threads(
			lc, co->max_threads ? co->max_threads : 10);
		ret = fuse_loop_mt(f, lc);
		fuse_loop_cfg_destroy(lc);
	}
	/*
	 * The poller calls into f: stop it before fuse_destroy frees the
	 * node tables (the fs's destroy callback runs only after that).
	 */
	sd_notify(0, "STOPPING=1\nSTATUS=unmounting");
	fs_poller_stop();
	/* a signal ends the loop with its number: a clean unmount */
	if (ret > 0)
		ret = 0;
	else if (ret < 0)
		sfs_error("fs", "the FUSE loop failed: %s", strerror(-ret));
out_signals:
	fuse_remove_signal_handlers(se);
out_mount:
	fuse_unmount(f);
out_new:
	fuse_destroy(f);
	return ret;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co;
	struct opts o;
	int rc = 1;

	/*
	 * libfuse copies each read reply (128 KiB) into a malloc'd buffer:
	 * above glibc's mmap threshold that is an mmap, page faults and a
	 * munmap per request, which cut cold reads to a quarter. Keep such
	 * buffers on the heap, and do not trim the heap after each one.
	 */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	memset(&o, 0, sizeof(o));
	memset(&co, 0, sizeof(co));
	o.listening = 1;
	o.generate = 1;
	if (fuse_opt_parse(&args, &o, specs, opt_proc) == -1)
		goto out;
	if (o.version) {
		printf("speechfs %s (libfuse %s)\n", SFS_VERSION,
		       fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (o.help) {
		usage(argv[0]);
		rc = 0;
		goto out;
	}
	if (fuse_parse_cmdline(&args, &co) != 0)
		goto out;
	if ((!o.store && !o.config) || !o.user || !co.mountpoint) {
		usage(argv[0]);
		rc = 2;
		goto out;
	}
	if (o.allow_other && fuse_opt_add_arg(&args, "-odefault_permissions"))
		goto out;
	if (fuse_opt_add_arg(&args, "-ofsname=speechfs") ||
	    fuse_opt_add_arg(&args, "-osubtype=speechfs"))
		goto out;
	g_fs.uid = o.set_uid ? o.uid : getuid();
	g_fs.gid = o.set_gid ? o.gid : getgid();
	g_fs.umask = o.set_umask ? o.umask : 022;
	g_fs.ro = o.ro;
	g_fs.start_ns = sfs_now_ms() * 1000000;
	g_fs.listening = o.listening;
	g_fs.generate = o.generate;
	if (open_store(&o))
		goto out;
	rc = serve(&args, &co, &o) ? 1 : 0;
out:
	if (g_fs.store) {
		if (!o.no_workers)
			sfs_workers_stop(g_fs.store);
		sfs_store_close(g_fs.store);
	}
	free(co.mountpoint);
	free(o.store);
	free(o.user);
	free(o.config);
	free(o.cfg_store);
	fuse_opt_free_args(&args);
	return rc;
}
