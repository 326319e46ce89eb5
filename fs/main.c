/*
 * speechfs: mount one user's files of a speechfs store with FUSE 3.
 * Parses the options (fuse_opt) and refuses bad ones with a one-line
 * reason, opens the store, acts as the user, runs the job workers and
 * serves the mount (loop.c, with the change poller of poller.c) until it
 * is unmounted or signalled.
 */
#include "fs_i.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stddef.h>
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
#include "speechfs/banned.h"

struct fs g_fs = { .wake_fd = -1 };

struct opts {
	char *store;
	char *user;
	char *config;
	char *cfg_store; /* the config file's 'store' */
	char *umask_arg;
	char *commit_arg;
	/* a remote mount (--url) */
	char *url;
	char *key_file;
	char *token_file;
	char *cache_dir;
	char *cache_size;
	char *timeout;
	char *cafile;
	char *proxy;
	unsigned uid, gid, umask;
	unsigned max_threads; /* the most workers (0: LOOP_MAX) */
	int set_uid, set_gid;
	int ro;
	int allow_other;
	int nonempty;
	int no_workers;
	int listening;
	int generate;
	int version;
	int help;
	int bad; /* an option was refused (said why) */
};

enum {
	KEY_RO,
	KEY_ALLOW_OTHER,
	KEY_NONEMPTY,
	KEY_VERSION,
	KEY_HELP,
	KEY_UID,
	KEY_GID,
	KEY_MAX_THREADS
};

#define OPT(t, p)                                                              \
	{                                                                      \
		t, offsetof(struct opts, p), 1                                 \
	}
#define OPTV(t, p, v)                                                          \
	{                                                                      \
		t, offsetof(struct opts, p), v                                 \
	}

static const struct fuse_opt specs[] = {
	OPT("--store %s", store),
	OPT("--store=%s", store),
	OPT("store=%s", store),
	OPT("--config %s", config),
	OPT("--config=%s", config),
	OPT("config=%s", config),
	OPT("--user %s", user),
	OPT("--user=%s", user),
	OPT("user=%s", user),
	OPT("--url %s", url),
	OPT("--url=%s", url),
	OPT("url=%s", url),
	OPT("--key-file %s", key_file),
	OPT("--key-file=%s", key_file),
	OPT("key_file=%s", key_file),
	OPT("--token-file %s", token_file),
	OPT("--token-file=%s", token_file),
	OPT("token_file=%s", token_file),
	OPT("cache_dir=%s", cache_dir),
	OPT("cache_size=%s", cache_size),
	OPT("timeout=%s", timeout),
	OPT("cafile=%s", cafile),
	OPT("proxy=%s", proxy),
	OPT("umask=%s", umask_arg),
	OPT("commit=%s", commit_arg),
	OPT("no_workers", no_workers),
	OPTV("listening=0", listening, 0),
	OPTV("listening=1", listening, 1),
	OPTV("generate=0", generate, 0),
	OPTV("generate=1", generate, 1),
	FUSE_OPT_KEY("uid=", KEY_UID),
	FUSE_OPT_KEY("gid=", KEY_GID),
	FUSE_OPT_KEY("max_threads=", KEY_MAX_THREADS),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("nonempty", KEY_NONEMPTY),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_END
};

/* A number after '=' in base `base`, at most max; -1 when it is not. */
static int parse_num(const char *arg, int base, unsigned long max,
		     unsigned *out)
{
	const char *v = strchr(arg, '=');
	unsigned long n;
	char *end;

	v = v ? v + 1 : arg;
	if (!*v || *v == '-' || *v == '+')
		return -1;
	errno = 0;
	n = strtoul(v, &end, base);
	if (errno || *end || n > max)
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
	case KEY_NONEMPTY:
		o->nonempty = 1;
		return 0; /* ours: libfuse 3 has no such option */
	case KEY_VERSION:
		o->version = 1;
		return 0;
	case KEY_HELP:
		o->help = 1;
		return 0;
	case KEY_UID:
		o->set_uid = 1;
		if (parse_num(arg, 10, 0xfffffffeUL, &o->uid) == 0)
			return 0;
		fprintf(stderr, "speechfs: -o %s: expected a user id\n", arg);
		o->bad = 1;
		return 0;
	case KEY_GID:
		o->set_gid = 1;
		if (parse_num(arg, 10, 0xfffffffeUL, &o->gid) == 0)
			return 0;
		fprintf(stderr, "speechfs: -o %s: expected a group id\n", arg);
		o->bad = 1;
		return 0;
	case KEY_MAX_THREADS:
		if (parse_num(arg, 10, 100000, &o->max_threads) == 0 &&
		    o->max_threads > 0)
			return 0;
		fprintf(stderr,
			"speechfs: -o %s: expected a number of threads "
			"(1 to 100000)\n",
			arg);
		o->bad = 1;
		return 0;
	default:
		return 1;
	}
}

static void usage(const char *prog)
{
	printf("usage: %s --store DIR --user USER_ID MOUNTPOINT [options]\n"
	       "       %s --url URL --key-file FILE MOUNTPOINT [options]\n"
	       "\n"
	       "Mount one user's recordings of a speechfs store as files.\n"
	       "\n"
	       "    --store DIR, -o store=DIR   the speechfs store\n"
	       "    --user ID, -o user=ID       act as this user (uuid)\n"
	       "    --config FILE, -o config=FILE\n"
	       "                                the core's settings (the "
	       "daemon's file)\n"
	       "    --url URL, -o url=URL       a store on a speechfsd "
	       "(http(s)://HOST:PORT)\n"
	       "    --key-file FILE, -o key_file=FILE\n"
	       "                                its API key (first line)\n"
	       "    --token-file FILE, -o token_file=FILE\n"
	       "                                or a JWT (first line)\n"
	       "    -o cache_dir=DIR            block cache "
	       "($XDG_CACHE_HOME/speechfs/HOST_PORT)\n"
	       "    -o cache_size=N[KMG]        its bound (1G; 0: none)\n"
	       "    -o timeout=S                connect/stall bound, "
	       "seconds (10)\n"
	       "    -o cafile=FILE              CA certificates for https\n"
	       "    -o proxy=URL                a proxy to reach it by (none)\n"
	       "    -f                          stay in the foreground (else "
	       "logs go to\n"
	       "                                syslog once mounted)\n"
	       "    -d                          debug output (implies -f)\n"
	       "    -s                          serve in a single thread\n"
	       "    -o ro                       read-only mount\n"
	       "    -o allow_other              let other users in\n"
	       "                                (with default_permissions)\n"
	       "    -o nonempty                 mount over a non-empty "
	       "directory\n"
	       "    -o uid=N,gid=N,umask=NNN    owner and modes shown\n"
	       "    -o commit=MS                changes grouped, committed "
	       "and durable\n"
	       "                                within MS ms (fsync "
	       "waits)\n"
	       "    -o max_threads=N            most threads answering "
	       "requests (256)\n"
	       "    -o no_workers               run no job workers\n"
	       "    -o listening=0|1            show /.listening/ (1)\n"
	       "    -o generate=0|1             make listening audio of audio\n"
	       "                                written here (1)\n"
	       "    -V, --version               print the version\n"
	       "    -h, --help                  print this help\n"
	       "\n"
	       "example:\n"
	       "    %s --store /srv/speechfs --user $U ~/speech\n",
	       prog, prog, prog);
}

/* A size with an optional K, M or G (powers of 1024); -1 when not. */
static int parse_size(const char *v, int64_t *out)
{
	unsigned long long n;
	char *end;

	if (!*v || *v == '-' || *v == '+')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || n > (1ULL << 50))
		return -1;
	if (*end == 'K' || *end == 'k')
		n <<= 10;
	else if (*end == 'M' || *end == 'm')
		n <<= 20;
	else if (*end == 'G' || *end == 'g')
		n <<= 30;
	else if (*end)
		return -1;
	if (*end && end[1])
		return -1;
	*out = (int64_t)n;
	return 0;
}

/* A remote mount's options (--url …): a one-line reason on error. */
static int check_remote(struct opts *o)
{
	const char *alone[] = { o->cache_dir, o->cache_size, o->timeout,
				o->cafile,    o->token_file, o->proxy };
	const char *names[] = { "cache_dir", "cache_size", "timeout",
				"cafile",    "token_file", "proxy" };
	unsigned t = 0;
	int64_t sz;
	size_t i;

	if (!o->url) {
		for (i = 0; i < sizeof(alone) / sizeof(*alone); i++)
			if (alone[i]) {
				fprintf(stderr,
					"speechfs: -o %s= is for a remote "
					"mount: give --url URL too\n",
					names[i]);
				return -1;
			}
		if (o->key_file) {
			fprintf(stderr, "speechfs: --key-file is for a "
					"remote mount: give --url URL too\n");
			return -1;
		}
		return 0;
	}
	if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)) {
		fprintf(stderr,
			"speechfs: --url %s: expected http://HOST[:PORT] or "
			"https://HOST[:PORT]\n",
			o->url);
		return -1;
	}
	if (strstr(o->url, "/api/v1/")) {
		/*
		 * make run's SPEECHFS_URL, say: the files route itself. A
		 * base path of a reverse proxy (https://gw/api/speech) is
		 * a server's URL: the mount puts /api/v1/... after it.
		 */
		fprintf(stderr,
			"speechfs: --url %s: expected the server's URL without "
			"its API path (http://HOST[:PORT], not …/api/…)\n",
			o->url);
		return -1;
	}
	if (o->store || o->user) {
		fprintf(stderr, "speechfs: --url mounts a server's store as "
				"its key's user: leave out --store and "
				"--user\n");
		return -1;
	}
	if (!o->key_file == !o->token_file) {
		fprintf(stderr, "speechfs: --url needs one of --key-file FILE "
				"(an API key) or --token-file FILE (a JWT)\n");
		return -1;
	}
	if (o->timeout && (parse_num(o->timeout, 10, 3600, &t) || t == 0)) {
		fprintf(stderr,
			"speechfs: -o timeout=%s: expected seconds from 1 to "
			"3600\n",
			o->timeout);
		return -1;
	}
	if (o->cache_size && parse_size(o->cache_size, &sz)) {
		fprintf(stderr,
			"speechfs: -o cache_size=%s: expected bytes, or a "
			"number with K, M or G (e.g. 2G; 0: no cache)\n",
			o->cache_size);
		return -1;
	}
	if (o->cafile && access(o->cafile, R_OK)) {
		fprintf(stderr, "speechfs: -o cafile=%s: %s\n", o->cafile,
			strerror(errno));
		return -1;
	}
	if (o->proxy && !strstr(o->proxy, "://")) {
		fprintf(stderr,
			"speechfs: -o proxy=%s: expected a URL "
			"(http://HOST:PORT, https://… or socks5h://…)\n",
			o->proxy);
		return -1;
	}
	if (o->cache_dir && o->cache_dir[0] != '/') {
		fprintf(stderr,
			"speechfs: -o cache_dir=%s: expected an absolute "
			"path\n",
			o->cache_dir);
		return -1;
	}
	return 0;
}

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

/* The values of the mount's own options; a one-line reason on error. */
static int check_opts(struct opts *o, const struct fuse_cmdline_opts *co)
{
	unsigned ms = 0;

	if (o->bad || check_remote(o))
		return -1;
	if (o->url && !co->mountpoint) {
		fprintf(stderr, "speechfs: missing the mount point\n");
		return -1;
	}
	if (o->url)
		goto common;
	if (!o->store && !o->config) {
		fprintf(stderr, "speechfs: missing --store DIR (or -o "
				"store=DIR, or a --config FILE that names "
				"it): the store to mount\n");
		return -1;
	}
	if (!o->user) {
		fprintf(stderr, "speechfs: missing --user USER_ID (or -o "
				"user=USER_ID): the user to act as\n");
		return -1;
	}
	if (!co->mountpoint) {
		fprintf(stderr, "speechfs: missing the mount point\n");
		return -1;
	}
common:
	o->umask = 022;
	if (o->umask_arg && parse_num(o->umask_arg, 8, 0777, &o->umask)) {
		fprintf(stderr,
			"speechfs: -o umask=%s: expected an octal mode "
			"of at most 777 (e.g. 022)\n",
			o->umask_arg);
		return -1;
	}
	if (o->commit_arg &&
	    (parse_num(o->commit_arg, 10, 60000, &ms) || ms == 0)) {
		fprintf(stderr,
			"speechfs: -o commit=%s: expected milliseconds "
			"from 1 to 60000\n",
			o->commit_arg);
		return -1;
	}
	g_fs.commit_ms = (int)ms;
	return 0;
}

/*
 * The URL as every user may see it in the mount table: without its
 * user:password@ (basic auth at a reverse proxy), query and fragment.
 * A new string, or NULL without memory.
 */
static char *public_url(const char *url)
{
	const char *host = strstr(url, "://"), *at;
	char *out;

	if (!host)
		return strdup(url);
	host += 3;
	at = memrchr(host, '@', strcspn(host, "/?#"));
	if (asprintf(&out, "%.*s%.*s", (int)(host - url), url,
		     (int)strcspn(at ? at + 1 : host, "?#"),
		     at ? at + 1 : host) < 0)
		return NULL;
	return out;
}

/*
 * What mount(8), df and findmnt show as the mount's source: a remote
 * mount's server (as sshfs shows user@host:), else "speechfs".
 */
static int add_fsname(struct fuse_args *args, const char *url)
{
	char *name = url ? public_url(url) : strdup("speechfs");
	char *esc = NULL, *arg = NULL;
	int ret = -1;

	/* libfuse splits -o at commas: a URL's own are escaped */
	if (name && !fuse_opt_add_opt_escaped(&esc, name) &&
	    asprintf(&arg, "-ofsname=%s", esc) >= 0)
		ret = fuse_opt_add_arg(args, arg);
	free(name);
	free(esc);
	free(arg);
	return ret;
}

/* The mount point must be an existing directory, empty unless nonempty. */
static int check_mountpoint(const char *mp, int nonempty)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int n = 0;

	if (stat(mp, &sb) < 0) {
		fprintf(stderr, "speechfs: mount point '%s': %s\n", mp,
			strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		fprintf(stderr,
			"speechfs: mount point '%s' is not a directory\n", mp);
		return -1;
	}
	if (nonempty)
		return 0;
	d = opendir(mp);
	if (!d) {
		fprintf(stderr, "speechfs: mount point '%s': %s\n", mp,
			strerror(errno));
		return -1;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	if (n) {
		fprintf(stderr,
			"speechfs: mount point '%s' is not empty (-o nonempty "
			"mounts over it)\n",
			mp);
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

/* A store on a server, as its key's user. */
static int open_remote(struct opts *o)
{
	struct sfs_remote_opts ro = { .url = o->url,
				      .cafile = o->cafile,
				      .proxy = o->proxy,
				      .cache_dir = o->cache_dir,
				      .cache_bytes = -1 };
	char secret[4200], *cred_file = NULL;
	enum sfs_status st;
	struct sfs_err e;
	unsigned t = 0;
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
	if (o->timeout && !parse_num(o->timeout, 10, 3600, &t))
		ro.timeout_s = (int)t;
	if (o->cache_size && parse_size(o->cache_size, &ro.cache_bytes))
		ro.cache_bytes = -1;
	/* the block cache's fetchers must not take the loop's signals */
	fs_signals_off(&old);
	st = sfs_store_open_url(&ro, &g_fs.store, &e);
	fs_signals_on(&old);
	if (st)
		fprintf(stderr, "speechfs: cannot mount '%s': %s%s\n", o->url,
			e.message,
			!o->cafile && strstr(e.message, "certificate")
				? " (a server whose CA is not the system's: "
				  "-o cafile=FILE)"
				: "");
	else if (sfs_auth_user(g_fs.store, NULL, SFS_SCOPE_ALL, &g_fs.actor,
			       &e))
		fprintf(stderr, "speechfs: '%s': %s\n", o->url, e.message);
	else
		ret = 0;
	explicit_bzero(secret, sizeof(secret));
	free(cred_file);
	if (!ret)
		warn_if_shown(o->key_file ? "key file" : "token file",
			      o->key_file ? o->key_file : o->token_file);
	return ret;
}

static int open_store(struct opts *o)
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
static int start_workers(const struct opts *o)
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
		 const struct opts *o, int *ready_fd)
{
	int ret = -1;

	if (fuse_set_signal_handlers(se))
		return -1;
	if (fuse_session_mount(se, co->mountpoint))
		goto out_signals;
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
	struct opts o;
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
	/* a bad mount point or option is said (one line) and exits 2 before
	 * the store or the server is touched */
	rc = 2;
	if (fuse_parse_cmdline(&args, &co) != 0)
		goto out;
	if (check_opts(&o, &co) || check_mountpoint(co.mountpoint, o.nonempty))
		goto out;
	rc = 1;
	if (o.allow_other && fuse_opt_add_arg(&args, "-odefault_permissions"))
		goto out;
	if (add_fsname(&args, o.url) ||
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
	free(o.store);
	free(o.user);
	free(o.config);
	free(o.cfg_store);
	free(o.umask_arg);
	free(o.commit_arg);
	free(o.url);
	free(o.key_file);
	free(o.token_file);
	free(o.cache_dir);
	free(o.cache_size);
	free(o.timeout);
	free(o.cafile);
	free(o.proxy);
	fuse_opt_free_args(&args);
	if (ready_fd >= 0)
		close(ready_fd);
	return rc;
}
