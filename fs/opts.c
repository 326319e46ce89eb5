/*
 * The mount's own options (fuse_opt) and their checks: a value refused
 * is said in one line and the mount exits 2 before the store or the
 * server is touched. Also the fsname libfuse is given (what mount(8)
 * and df show).
 */
#include "opts.h"
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "speechfs/remote.h"
#include "speechfs/banned.h"

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
		t, offsetof(struct fs_opts, p), 1                              \
	}
#define OPTV(t, p, v)                                                          \
	{                                                                      \
		t, offsetof(struct fs_opts, p), v                              \
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
	OPT("write_window=%s", write_window),
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
	struct fs_opts *o = data;

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

void fs_opts_usage(const char *prog)
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
	       "    -o write_window=N[KMG]      how far a file written in "
	       "order runs\n"
	       "                                ahead of the server (128M, "
	       "at least 64M;\n"
	       "                                0: no bound)\n"
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

/*
 * A size with an optional K, M or G (powers of 1024), at most 2^50
 * bytes; -1 when not. The bound is checked before the shift, on the
 * number it may take (17179869184G would wrap to 0: no bound).
 */
static int parse_size(const char *v, int64_t *out)
{
	unsigned long long n;
	unsigned shift = 0;
	char *end;

	if (!*v || *v == '-' || *v == '+')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno)
		return -1;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	else if (*end)
		return -1;
	if ((*end && end[1]) || n > (1ULL << 50) >> shift)
		return -1;
	*out = (int64_t)(n << shift);
	return 0;
}

/*
 * Option opt's URL refused: one line that names it without its
 * user:password (an fstab mount's line stays in the journal); -1.
 */
static int refuse_url(const char *opt, const char *url, const char *why)
{
	char *pub = fs_opts_public_url(url);

	fprintf(stderr, "speechfs: %s%s%s: %s\n", opt,
		opt[strlen(opt) - 1] == '=' ? "" : " ",
		pub ? pub : "(out of memory)", why);
	free(pub);
	return -1;
}

/* -o write_window=N: bytes, at least the core's least, or 0 (none). */
static int check_window(struct fs_opts *o)
{
	int64_t n;

	if (parse_size(o->write_window, &n) ||
	    (n && n < SFS_REMOTE_WINDOW_MIN)) {
		fprintf(stderr,
			"speechfs: -o write_window=%s: expected bytes, or a "
			"number with K, M or G, of at least %lldM (e.g. "
			"256M; 0: no bound)\n",
			o->write_window,
			(long long)(SFS_REMOTE_WINDOW_MIN >> 20));
		return -1;
	}
	o->window_bytes = n ? n : -1;
	return 0;
}

/* A remote mount's options (--url …): a one-line reason on error. */
static int check_remote(struct fs_opts *o)
{
	const char *alone[] = { o->cache_dir,	o->cache_size, o->timeout,
				o->cafile,	o->token_file, o->proxy,
				o->write_window };
	const char *names[] = { "cache_dir",   "cache_size", "timeout",
				"cafile",      "token_file", "proxy",
				"write_window" };
	unsigned t = 0;
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
	if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8))
		return refuse_url("--url", o->url,
				  "expected http://HOST[:PORT] or "
				  "https://HOST[:PORT]");
	/*
	 * make run's SPEECHFS_URL, say: the files route itself. A base path
	 * of a reverse proxy (https://gw/api/speech) is a server's URL: the
	 * mount puts /api/v1/... after it.
	 */
	if (strstr(o->url, "/api/v1/"))
		return refuse_url("--url", o->url,
				  "expected the server's URL without its API "
				  "path (http://HOST[:PORT], not …/api/…)");
	if (o->store || o->user) {
		fprintf(stderr, "speechfs: --url mounts a server's store as "
				"its key's user: leave out --store and "
				"--user\n");
		return -1;
	}
	if (o->commit_arg) { /* it would batch nothing and say nothing */
		fprintf(stderr, "speechfs: -o commit= is for a local store: a "
				"remote mount's changes are each durable when "
				"the server answers\n");
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
	o->timeout_s = (int)t;
	if (o->cache_size && parse_size(o->cache_size, &o->cache_bytes)) {
		fprintf(stderr,
			"speechfs: -o cache_size=%s: expected bytes, or a "
			"number with K, M or G (e.g. 2G; 0: no cache)\n",
			o->cache_size);
		return -1;
	}
	if (o->write_window && check_window(o))
		return -1;
	if (o->cafile && access(o->cafile, R_OK)) {
		fprintf(stderr, "speechfs: -o cafile=%s: %s\n", o->cafile,
			strerror(errno));
		return -1;
	}
	if (o->proxy && !strstr(o->proxy, "://"))
		return refuse_url("-o proxy=", o->proxy,
				  "expected a URL (http://HOST:PORT, https://… "
				  "or socks5h://…)");
	if (o->cache_dir && o->cache_dir[0] != '/') {
		fprintf(stderr,
			"speechfs: -o cache_dir=%s: expected an absolute "
			"path\n",
			o->cache_dir);
		return -1;
	}
	return 0;
}

/* The values of the mount's own options; a one-line reason on error. */
static int check_opts(struct fs_opts *o, const struct fuse_cmdline_opts *co)
{
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
	    (parse_num(o->commit_arg, 10, 60000, &o->commit_ms) ||
	     o->commit_ms == 0)) {
		fprintf(stderr,
			"speechfs: -o commit=%s: expected milliseconds "
			"from 1 to 60000\n",
			o->commit_arg);
		return -1;
	}
	return 0;
}

char *fs_opts_public_url(const char *url)
{
	const char *host = strstr(url, "://"), *at;
	char *out;

	/*
	 * With no scheme (a URL refused for that) the host comes first. A
	 * host never holds an '@', a password typed unencoded may hold '/',
	 * '?' or '#': all up to the last '@' goes (a path's '@' too: less
	 * is told, never a password).
	 */
	host = host ? host + 3 : url;
	at = strrchr(host, '@');
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
int fs_opts_add_fsname(struct fuse_args *args, const char *url)
{
	char *name = url ? fs_opts_public_url(url) : strdup("speechfs");
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

int fs_opts_check(struct fs_opts *o, const struct fuse_cmdline_opts *co)
{
	if (check_opts(o, co) || check_mountpoint(co->mountpoint, o->nonempty))
		return -1;
	return 0;
}

int fs_opts_parse(struct fuse_args *args, struct fs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->listening = 1;
	o->generate = 1;
	o->cache_bytes = -1;
	return fuse_opt_parse(args, o, specs, opt_proc);
}

void fs_opts_release(struct fs_opts *o)
{
	char **s[] = { &o->store,     &o->user,	      &o->config,
		       &o->cfg_store, &o->umask_arg,  &o->commit_arg,
		       &o->url,	      &o->key_file,   &o->token_file,
		       &o->cache_dir, &o->cache_size, &o->timeout,
		       &o->cafile,    &o->proxy,      &o->write_window };
	size_t i;

	for (i = 0; i < sizeof(s) / sizeof(*s); i++) {
		free(*s[i]);
		*s[i] = NULL;
	}
}
