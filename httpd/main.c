/*
 * speechfsd: options and configuration, the libmicrohttpd daemon (epoll,
 * thread pool, connection limits), workers, and a graceful shutdown on
 * SIGTERM / SIGINT. `speechfsd <command>` runs the admin CLI (admin.c).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "conn.h"
#include "httpd.h"
#include "respcache.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

struct httpd g_httpd;

static void opts_init(struct httpd_opts *o)
{
	o->max_upload_bytes = (int64_t)2 << 30;
	o->max_json_bytes = 1 << 20;
	o->default_download_bps = 0;
	o->rate_rps = 50;
	o->rate_burst = 100;
	o->upload_rps = 5;
	o->upload_burst = 20;
	o->threads = 4;
	o->conn_timeout_s = 30;
	o->conn_limit = 512;
	o->per_ip_limit = 64;
	o->shutdown_timeout_s = 10;
	o->max_url_len = 8192;
	o->max_header_bytes = 16384;
	o->auth_fail_rps = 1;
	o->auth_fail_burst = 30;
	o->redirect_to_object_store = 0;
	o->redirect_ttl_s = 300;
	o->head_timeout_s = 10;
	o->min_body_rate = 1024;
	o->response_cache = 1024;
}

/*
 * The daemon's configuration keys (defaults in opts_init):
 *   http.max_upload_bytes        largest `file` part (413 beyond)
 *   http.max_json_bytes          largest JSON body (413 beyond)
 *   http.download_bps            bandwidth of users created with -1
 *                                (0: unlimited)
 *   http.rate_per_second, http.rate_burst
 *                                every authenticated request, per user
 *   http.upload_rate_per_second, http.upload_rate_burst
 *                                uploads and imports, per user (429)
 *   http.threads                 libmicrohttpd thread pool size
 *   http.connection_timeout      seconds an idle connection is kept
 *   http.connection_limit, http.per_ip_connection_limit
 *   http.shutdown_timeout        seconds in-flight requests get at exit
 *   http.max_url_length, http.max_header_bytes   (414, 431 beyond)
 *   http.cors_origins            origins (or *) browsers may call from
 *   http.request_head_timeout    seconds a request head may take (from
 *                                its first byte; a new connection's
 *                                from the accept)
 *   http.min_body_rate           bytes per second a body must average
 *                                after its first request_head_timeout
 *   http.auth_failures_per_second, http.auth_failures_burst
 *                                failed authentications per client
 *                                address (429 beyond)
 *   http.redirect_to_object_store  content kept in an object store is
 *                                a 302 to a presigned URL (false)
 *   http.redirect_ttl             that URL's lifetime in seconds (300)
 *   http.response_cache          answers of GET /files and /files/{id}
 *                                kept until the store changes (0: off)
 * Any other key goes to sfs_config_set() (the core's keys).
 */
enum otype { O_I64, O_INT, O_DBL, O_SIZE, O_BOOL, O_STR };

static const struct {
	const char *key;
	enum otype type;
	size_t off;
} opt_keys[] = {
#define K(k, t, f)                                                             \
	{                                                                      \
		k, t, offsetof(struct httpd_opts, f)                           \
	}
	K("http.max_upload_bytes", O_I64, max_upload_bytes),
	K("http.max_json_bytes", O_I64, max_json_bytes),
	K("http.download_bps", O_I64, default_download_bps),
	K("http.rate_per_second", O_DBL, rate_rps),
	K("http.rate_burst", O_DBL, rate_burst),
	K("http.upload_rate_per_second", O_DBL, upload_rps),
	K("http.upload_rate_burst", O_DBL, upload_burst),
	K("http.threads", O_INT, threads),
	K("http.connection_timeout", O_INT, conn_timeout_s),
	K("http.connection_limit", O_INT, conn_limit),
	K("http.per_ip_connection_limit", O_INT, per_ip_limit),
	K("http.shutdown_timeout", O_INT, shutdown_timeout_s),
	K("http.max_url_length", O_SIZE, max_url_len),
	K("http.max_header_bytes", O_SIZE, max_header_bytes),
	K("http.auth_failures_per_second", O_DBL, auth_fail_rps),
	K("http.auth_failures_burst", O_DBL, auth_fail_burst),
	K("http.redirect_to_object_store", O_BOOL, redirect_to_object_store),
	K("http.redirect_ttl", O_INT, redirect_ttl_s),
	K("http.request_head_timeout", O_INT, head_timeout_s),
	K("http.cors_origins", O_STR, cors_origins),
	K("http.min_body_rate", O_I64, min_body_rate),
	K("http.response_cache", O_INT, response_cache),
#undef K
};

/* 0 set, 1 not a daemon key, -1 bad value. */
static int opt_set(struct httpd_opts *o, const char *key, const char *val)
{
	char *p = (char *)o, *end;
	int64_t v;
	double d;
	size_t i;

	for (i = 0; i < sizeof(opt_keys) / sizeof(opt_keys[0]); i++) {
		if (strcmp(opt_keys[i].key, key) != 0)
			continue;
		if (opt_keys[i].type == O_BOOL)
			return sfs_parse_bool(val, (int *)(p + opt_keys[i].off))
				       ? -1
				       : 0;
		if (opt_keys[i].type == O_STR) {
			if (strlen(val) >= sizeof(o->cors_origins))
				return -1;
			memcpy(p + opt_keys[i].off, val, strlen(val) + 1);
			return 0;
		}
		if (opt_keys[i].type == O_DBL) {
			errno = 0;
			d = strtod(val, &end);
			if (errno || *end || d < 0)
				return -1;
			*(double *)(p + opt_keys[i].off) = d;
			return 0;
		}
		if (sfs_parse_i64(val, &v) || v < 0)
			return -1;
		if (opt_keys[i].type == O_I64)
			*(int64_t *)(p + opt_keys[i].off) = v;
		else if (opt_keys[i].type == O_INT)
			*(int *)(p + opt_keys[i].off) = (int)v;
		else
			*(size_t *)(p + opt_keys[i].off) = (size_t)v;
		return 0;
	}
	return 1;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* `store` and `listen` may come from the file; the command line wins. */
static char cfg_store[4096], cfg_listen[128];

static int path_key(const char *k, const char *v)
{
	char *dst = strcmp(k, "store") == 0    ? cfg_store
		    : strcmp(k, "listen") == 0 ? cfg_listen
					       : NULL;
	size_t size = dst == cfg_store ? sizeof(cfg_store) : sizeof(cfg_listen);

	if (!dst)
		return 1;
	if (!*v || strlen(v) >= size)
		return -1;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int read_config(const char *path, struct sfs_config *cfg)
{
	char line[1024], *k, *v, *eq;
	struct sfs_err e;
	int lineno = 0, rc = 0, r;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "speechfsd: cannot open '%s': %s\n", path,
			strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		k = trim(line);
		if (!*k || *k == '#' || *k == ';')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			fprintf(stderr,
				"speechfsd: %s:%d: expected "
				"'key = value'\n",
				path, lineno);
			rc = -1;
			break;
		}
		*eq = 0;
		v = trim(eq + 1);
		k = trim(k);
		r = path_key(k, v);
		if (r > 0)
			r = opt_set(&g_httpd.opts, k, v);
		switch (r) {
		case 0:
			continue;
		case -1:
			fprintf(stderr,
				"speechfsd: %s:%d: bad value for "
				"'%s'\n",
				path, lineno, k);
			rc = -1;
			goto out;
		}
		sfs_err_init(&e);
		if (sfs_config_set(cfg, k, v, &e)) {
			fprintf(stderr, "speechfsd: %s:%d: %s\n", path, lineno,
				e.status == SFS_NOT_FOUND ? "unknown key"
							  : e.message);
			rc = -1;
			break;
		}
	}
out:
	fclose(f);
	return rc;
}

static int parse_listen(const char *s, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	int64_t port;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	if (!colon || (size_t)(colon - s) >= sizeof(host) ||
	    sfs_parse_i64(colon + 1, &port) || port < 0 || port > 65535)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	if (!*host)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	sin->sin_port = htons((uint16_t)port);
	return 0;
}

static int parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	int i;

	for (i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: speechfsd --store DIR [--listen 127.0.0.1:8080] "
		   "[--config FILE]\n"
		   "                 [--no-workers] [--log-level LEVEL] [--www "
		   "DIR]\n"
		   "       speechfsd init|tenant|user|key|jwt|fsck ... "
		   "(--help for each)\n"
		   "       speechfsd --version\n");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = 0;
	sfs_warn("mhd", "%s", msg);
}

static void drain(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int waited_ms = 0, limit = g_httpd.opts.shutdown_timeout_s * 1000;

	while (__atomic_load_n(&g_httpd.inflight, __ATOMIC_SEQ_CST) > 0 &&
	       waited_ms < limit) {
		nanosleep(&ts, NULL);
		waited_ms += 20;
	}
	if (waited_ms >= limit)
		sfs_warn("httpd", "shutdown: %d requests still in flight",
			 g_httpd.inflight);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, 'c' },
		{ "no-workers", no_argument, NULL, 'n' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "www", required_argument, NULL, 'w' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *store = NULL, *listen = NULL, *config = NULL, *www = NULL;
	struct sfs_config cfg;
	struct sockaddr_in sin;
	struct sfs_err e;
	sigset_t sigs;
	int c, workers = 1, sig = 0, rc = 1, lvl, started = 0;

	if (argc > 1 && admin_is_command(argv[1]))
		return admin_main(argc - 1, argv + 1);
	opts_init(&g_httpd.opts);
	sfs_config_init(&cfg);
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			store = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'n':
			workers = 0;
			break;
		case 'w':
			www = optarg;
			break;
		case 'L':
			lvl = parse_level(optarg);
			if (lvl < 0) {
				fprintf(stderr,
					"speechfsd: bad log level "
					"'%s'\n",
					optarg);
				return 2;
			}
			sfs_log_set_level((enum sfs_log_level)lvl);
			break;
		case 'V':
			printf("speechfsd %s\n", SFS_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (config && read_config(config, &cfg))
		return 2;
	if (!store)
		store = cfg_store[0] ? cfg_store : NULL;
	if (!listen)
		listen = cfg_listen[0] ? cfg_listen : "127.0.0.1:8080";
	if (!store) {
		fprintf(stderr, "speechfsd: no store: give --store DIR or "
				"'store = DIR' in the --config file\n");
		usage(stderr);
		return 2;
	}
	if (parse_listen(listen, &sin)) {
		fprintf(stderr, "speechfsd: bad --listen '%s'\n", listen);
		return 2;
	}
	/* every thread made from here on inherits the blocked signals */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	sfs_err_init(&e);
	if (sfs_store_open(store, &cfg, &g_httpd.store, &e)) {
		fprintf(stderr, "speechfsd: cannot open store '%s': %s\n",
			store, e.message);
		return 1;
	}
	if (www_init(www)) {
		fprintf(stderr, "speechfsd: cannot read the web page\n");
		goto out;
	}
	if (limits_init() || conn_init() ||
	    respcache_init(g_httpd.opts.response_cache)) {
		fprintf(stderr, "speechfsd: cannot start the timers\n");
		goto out;
	}
	g_httpd.mhd = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG,
		ntohs(sin.sin_port), conn_accept_policy, NULL, httpd_access,
		NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
		MHD_OPTION_THREAD_POOL_SIZE,
		(unsigned)(g_httpd.opts.threads > 0 ? g_httpd.opts.threads : 1),
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)g_httpd.opts.conn_timeout_s,
		/* the limits are the guard's (conn.c): it evicts, not refuses
		 */
		MHD_OPTION_CONNECTION_LIMIT, conn_mhd_limit(),
		MHD_OPTION_NOTIFY_CONNECTION, conn_notify, NULL,
		/*
		 * libmicrohttpd zeroes the whole pool between the requests of
		 * a connection: 256 KiB more for bodies cut upload syscalls
		 * but cost GETs a quarter more CPU (43 -> 53 us), so 64 KiB.
		 */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)(g_httpd.opts.max_url_len +
			 g_httpd.opts.max_header_bytes + 16 * 1024),
		MHD_OPTION_NOTIFY_COMPLETED, httpd_completed, NULL,
		MHD_OPTION_URI_LOG_CALLBACK, httpd_uri_log, NULL,
		MHD_OPTION_END);
	if (!g_httpd.mhd) {
		fprintf(stderr, "speechfsd: cannot listen on %s\n", listen);
		goto out;
	}
	if (workers && sfs_workers_start(g_httpd.store, cfg.workers, &e)) {
		fprintf(stderr, "speechfsd: cannot start workers: %s\n",
			e.message);
		goto out;
	}
	started = workers;
	sfs_info("httpd", "listening on %s, store '%s'", listen, store);

	while (sigwait(&sigs, &sig) != 0)
		;
	sfs_info("httpd", "signal %d: shutting down", sig);
	/*
	 * From now on new connections are closed at accept (the accept
	 * policy) and requests on open ones answer 503, while the requests
	 * in flight finish. Not MHD_quiesce_daemon(): with epoll and a
	 * thread pool it sets each worker's was_quiesced and takes the
	 * listening socket out of that worker's epoll set, while the worker,
	 * seeing was_quiesced, may take it out too; the loser's EPOLL_CTL_DEL
	 * fails with ENOENT, which libmicrohttpd 0.9.75 turns into
	 * MHD_PANIC, an abort at SIGTERM, in either thread.
	 */
	__atomic_store_n(&g_httpd.stopping, 1, __ATOMIC_SEQ_CST);
	drain();
	sfs_debug("httpd", "drained");
	rc = 0;
out:
	conn_stop();
	limits_stop();
	if (g_httpd.mhd)
		MHD_stop_daemon(g_httpd.mhd);
	sfs_debug("httpd", "daemon stopped");
	if (started)
		sfs_workers_stop(g_httpd.store);
	respcache_close();
	sfs_store_close(g_httpd.store);
	sfs_debug("httpd", "store closed");
	www_free();
	return rc;
}
