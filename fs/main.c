/*
 * speechfs: mount one user's files of a speechfs store with FUSE 3.
 * Takes the options (opts.c: parsed and checked there), opens the store,
 * acts as the user, runs the job workers and serves the mount (loop.c,
 * with the change poller of poller.c) until it is unmounted or signalled.
 */
#include "fs_i.h"
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include "speechfs/config.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/remote.h"
#include "speechfs/store.h"
#include "opts.h"
#include "speechfs/banned.h"

struct fs g_fs = { .wake_fd = -1 };

/*
 * The first line of a key or token file, trimmed, into out[size]; a
 * one-line reason on error.
 */
static int read_secret(const char *what, const char *path, char *out,
		       size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "speechfs: %s '%s': %s\n", what, path,
			strerror(errno));
		return -1;
	}
	n = read(fd, out, size - 1);
	close(fd);
	if (n < 0) {
		fprintf(stderr, "speechfs: %s '%s': %s\n", what, path,
			strerror(errno));
		return -1;
	}
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	while (*out &&
	       (out[strlen(out) - 1] == ' ' || out[strlen(out) - 1] == '\t'))
		out[strlen(out) - 1] = '\0';
	if (!out[0] || (size_t)n == size - 1) {
		fprintf(stderr,
			"speechfs: %s '%s': expected one line (the first "
			"line is empty or too long)\n",
			what, path);
		return -1;
	}
	return 0;
}

/*
 * The mount reads the daemon's file for the core's keys (retention,
 * listening audio, import ...), so both agree; the daemon's own keys are
 * skipped, 'store' is the default store and 'jobs.enabled = false'
 * means no_workers.
 */
static int mount_key(void *arg, const char *key, const char *value,
		     int core_key, char *msg, size_t msgsz)
{
	struct fs_opts *o = arg;
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

/*
 * A key any local user may read is anyone's (s3fs refuses such a file,
 * ssh such a private key): said once the mount works, which it still
 * does.
 */
static void warn_if_shown(const char *what, const char *path)
{
	struct stat sb;

	if (stat(path, &sb) == 0 && (sb.st_mode & S_IROTH))
		sfs_warn("fs",
			 "%s '%s' is readable by every local user: chmod o-r "
			 "it",
			 what, path);
}

/*
 * A key that may not write: its changes fail at once, not with EACCES at
 * close after the file was written. Nearly every change needs write (a
 * file made or written, mkdir, rmdir, rename, an attribute, a share's
 * xattr too); one that may delete still deletes files (unlink), as a
 * user expects of a key made for that, the rest EACCES; one that may
 * not is mounted read-only (EROFS). A share alone is no reason to mount
 * read-write.
 */
static void no_write(const char *url, const char *what)
{
	if (g_fs.actor.scopes & SFS_SCOPE_DELETE) {
		g_fs.delete_only = 1;
		sfs_warn("fs",
			 "'%s' says the %s lacks the scope '%s': files may "
			 "be deleted, every other change fails (EACCES)",
			 url, what, sfs_scope_name(SFS_SCOPE_WRITE));
		return;
	}
	g_fs.ro = 1;
	sfs_warn("fs",
		 "'%s' says the %s lacks the scope '%s': mounted read-only",
		 url, what, sfs_scope_name(SFS_SCOPE_WRITE));
}

/* A store on a server, as its key's user. */
static int open_remote(struct fs_opts *o)
{
	struct sfs_remote_opts ro = { .url = o->url,
				      .cafile = o->cafile,
				      .proxy = o->proxy,
				      .cache_dir = o->cache_dir,
				      .timeout_s = o->timeout_s,
				      .cache_bytes = o->cache_bytes,
				      .write_window = o->window_bytes };
	char secret[4200], *cred_file = NULL, *pub;
	const char *url;
	enum sfs_status st;
	struct sfs_err e;
	sigset_t old;
	int ret = -1;

	sfs_err_init(&e);
	/* a config file's mount keys (log.level) count here too; its core
	 * keys are the server's business */
	if (o->config) {
		struct sfs_config cfg;

		sfs_config_init(&cfg);
		if (sfs_config_read(o->config, &cfg, mount_key, o, &e)) {
			fprintf(stderr, "speechfs: %s\n", e.message);
			return -1;
		}
	}
	if (read_secret(o->key_file ? "key file" : "token file",
			o->key_file ? o->key_file : o->token_file, secret,
			sizeof(secret)))
		return -1;
	if (o->key_file)
		ro.api_key = secret;
	else
		ro.token = secret;
	/* read again when the server refuses it; the mount runs in '/' */
	cred_file = realpath(o->key_file ? o->key_file : o->token_file, NULL);
	ro.cred_file = cred_file;
	pub = fs_opts_public_url(o->url); /* its user:password not told */
	url = pub ? pub : "the server";
	/* the block cache's fetchers must not take the loop's signals */
	fs_signals_off(&old);
	st = sfs_store_open_url(&ro, &g_fs.store, &e);
	fs_signals_on(&old);
	if (st)
		fprintf(stderr, "speechfs: cannot mount '%s': %s%s\n", url,
			e.message,
			!o->cafile && e.reason == SFS_R_CERTIFICATE_NOT_TRUSTED
				? " (a server whose CA is not the system's: "
				  "-o cafile=FILE)"
				: "");
	else if (sfs_auth_user(g_fs.store, NULL, SFS_SCOPE_ALL, &g_fs.actor,
			       &e))
		fprintf(stderr, "speechfs: '%s': %s\n", url, e.message);
	else
		ret = 0;
	explicit_bzero(secret, sizeof(secret));
	free(cred_file);
	if (!ret)
		warn_if_shown(o->key_file ? "key file" : "token file",
			      o->key_file ? o->key_file : o->token_file);
	if (!ret && !g_fs.ro && !(g_fs.actor.scopes & SFS_SCOPE_WRITE))
		no_write(url, o->key_file ? "key" : "token");
	free(pub);
	return ret;
}

static int open_store(struct fs_opts *o)
{
	struct sfs_config cfg;
	enum sfs_status st;
	struct sfs_err e;
	sigset_t old;

	if (o->url)
		return open_remote(o);
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
	/* threads the store starts (an object store's fetchers) must not
	 * take the signals meant for the loop (fs_signals_off) */
	fs_signals_off(&old);
	st = sfs_store_open(o->store, &cfg, &g_fs.store, &e);
	fs_signals_on(&old);
	if (st) {
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

/*
 * Without -f the mount goes to the background the way mature daemons do:
 * fork before anything starts a thread (the store's fetchers, the
 * workers: threads do not survive a fork, so fuse_daemonize after the
 * store was opened left an object store without its fetchers), and keep
 * the parent until the child reports readiness through a pipe. A child
 * that cannot open its store or mount says why on the terminal it still
 * holds and exits; the parent then exits with the child's status.
 * Returns the write end of the pipe in the child (-1 with -f).
 */
static int detach(void)
{
	int fds[2], status = 0;
	ssize_t n;
	pid_t pid;
	char c;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		fprintf(stderr, "speechfs: cannot detach: %s\n",
			strerror(errno));
		return -2;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "speechfs: cannot detach: %s\n",
			strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -2;
	}
	if (pid == 0) {
		close(fds[0]);
		if (setsid() < 0)
			sfs_warn("fs", "setsid: %s", strerror(errno));
		return fds[1];
	}
	close(fds[1]);
	do
		n = read(fds[0], &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		_exit(0);
	/* the child ended before it was ready (and said why) */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	_exit(WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status)
						       : 1);
}

/* Mounted and serving: release the parent, leave the terminal. */
static void detached(int *ready_fd)
{
	char c = 1;
	int fd;

	if (*ready_fd < 0)
		return;
	/* what the mount says from now on (a server gone and back, a file
	 * it could not send) would go to /dev/null */
	sfs_log_to_syslog("speechfs");
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	while (write(*ready_fd, &c, 1) < 0 && errno == EINTR)
		;
	close(*ready_fd);
	*ready_fd = -1;
}

/* After detach: threads do not survive its fork. */
static int start_workers(const struct fs_opts *o)
{
	struct sfs_err e;
	sigset_t old;
	int ret = 0;

	sfs_err_init(&e);
	fs_signals_off(&old);
	fs_commits_start();
	if (!o->no_workers && sfs_workers_start(g_fs.store, 0, &e)) {
		sfs_error("fs", "cannot start workers: %s", e.message);
		ret = -1;
	}
	fs_signals_on(&old);
	return ret;
}

static int serve(struct fuse_session *se, const struct fuse_cmdline_opts *co,
		 const struct fs_opts *o, int *ready_fd)
{
	int ret = -1;

	if (fuse_set_signal_handlers(se))
		return -1;
	if (fuse_session_mount(se, co->mountpoint))
		goto out_signals;
	/* before the loop answers INIT: see fs_init */
	if (o->url)
		g_fs.read_ahead = fs_read_ahead_raise(co->mountpoint) << 10;
	/* fuse_daemonize(1) only changes to '/': detach() forked already */
	if (fuse_daemonize(1) || start_workers(o))
		goto out_unmount;
	detached(ready_fd);
	/* systemd's Type=notify: the kernel queues requests until the loop */
	sd_notifyf(0, "READY=1\nSTATUS=mounted %s as user %s", co->mountpoint,
		   g_fs.actor.user_id);
	if (co->singlethread)
		ret = fuse_session_loop(se);
	else
		ret = fs_loop_run(se, LOOP_KEPT,
				  o->max_threads ? (int)o->max_threads
						 : LOOP_MAX);
	sd_notify(0, "STOPPING=1\nSTATUS=unmounting");
	/* a signal ends the loop with its number: a clean unmount */
	if (ret > 0)
		ret = 0;
	else if (ret < 0)
		sfs_error("fs", "the FUSE loop failed: %s", strerror(-ret));
out_unmount:
	/* writes closed with -o commit are made durable before leaving */
	fs_commits_drain();
	fs_poller_stop();
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
	return ret;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co;
	struct fs_opts o;
	int ready_fd = -1;
	int rc = 1;

	/*
	 * libfuse copies each read reply (128 KiB) into a malloc'd buffer:
	 * above glibc's mmap threshold that is an mmap, page faults and a
	 * munmap per request, which cut cold reads to a quarter. Keep such
	 * buffers on the heap, and do not trim the heap after each one.
	 */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	memset(&co, 0, sizeof(co));
	if (fs_opts_parse(&args, &o) == -1)
		goto out;
	if (o.version) {
		printf("speechfs %s (libfuse %s)\n", SFS_VERSION,
		       fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (o.help) {
		fs_opts_usage(argv[0]);
		rc = 0;
		goto out;
	}
	/* a bad mount point or option is said (one line) and exits 2 before
	 * the store or the server is touched */
	rc = 2;
	if (fuse_parse_cmdline(&args, &co) != 0)
		goto out;
	if (fs_opts_check(&o, &co))
		goto out;
	rc = 1;
	if (o.allow_other && fuse_opt_add_arg(&args, "-odefault_permissions"))
		goto out;
	if (fs_opts_add_fsname(&args, o.url) ||
	    fuse_opt_add_arg(&args, "-osubtype=speechfs"))
		goto out;
	/* libfuse's own options: it names one it does not know */
	g_fs.se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), NULL);
	if (!g_fs.se) {
		rc = 2;
		goto out;
	}
	g_fs.uid = o.set_uid ? o.uid : getuid();
	g_fs.gid = o.set_gid ? o.gid : getgid();
	g_fs.umask = o.umask;
	g_fs.commit_ms = (int)o.commit_ms;
	if (o.url) /* remote: the server makes the listening audio */
		o.no_workers = 1;
	g_fs.ro = o.ro;
	g_fs.start_ns = sfs_now_ns();
	g_fs.listening = o.listening;
	g_fs.generate = o.generate;
	g_fs.timeout = 1.0;
	if (!co.foreground) {
		ready_fd = detach();
		if (ready_fd == -2)
			goto out;
	}
	if (open_store(&o))
		goto out;
	/* an emptied directory stays until rmdir, as in a file system (an
	 * implicit one vanished: rm -r of it failed once the kernel's entry
	 * of it was older than 1 s and it asked again); a remote store asks
	 * its server for it */
	sfs_store_keep_dirs(g_fs.store, 1);
	rc = serve(g_fs.se, &co, &o, &ready_fd) ? 1 : 0;
out:
	if (g_fs.se)
		fuse_session_destroy(g_fs.se);
	g_fs.se = NULL;
	if (g_fs.store) {
		if (!o.no_workers)
			sfs_workers_stop(g_fs.store);
		sfs_store_close(g_fs.store);
	}
	free(co.mountpoint);
	fs_opts_release(&o);
	fuse_opt_free_args(&args);
	if (ready_fd >= 0)
		close(ready_fd);
	return rc;
}
