/*
 * speechfsd: its command line, the libmicrohttpd daemon (epoll, thread
 * pool, connection limits), workers, systemd's readiness protocol, a
 * reload on SIGHUP and a graceful shutdown on SIGTERM / SIGINT.
 * `speechfsd <command>` runs the admin CLI (admin.c), the configuration
 * is read in config.c.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include "conn.h"
#include "httpd.h"
#include "respcache.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

struct httpd g_httpd;

/* how long the requests whose statements were cancelled get to answer */
#define STOP_CANCEL_MS 2000
/* then the rest of the stop on PostgreSQL (handlers, workers, the store) */
#define STOP_REST_MS 5000

static void usage(FILE *f)
{
	fprintf(f,
		"usage: speechfsd --config FILE [--store DIR] [--listen ADDR]\n"
		"                 [--no-workers] [--log-level LEVEL] [--www "
		"DIR]\n"
		"       speechfsd COMMAND [VERB] [options]   (the store's "
		"administration)\n"
		"       speechfsd --version | --help\n"
		"\n"
		"Serve a speechfs store over HTTP (the Files API). Every "
		"setting lives in\n"
		"the configuration file; the options below override it.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE     read the configuration (store, "
		"listen, "
		"http.*, ...)\n"
		"      --store DIR       the store directory (the file's "
		"'store')\n"
		"      --listen ADDR     PORT, HOST:PORT, localhost:PORT or "
		"[IPV6]:PORT\n"
		"                        (the file's 'listen'; default "
		"127.0.0.1:8080)\n"
		"      --no-workers      run no job workers here (the file's "
		"'jobs.enabled')\n"
		"      --log-level LEVEL error, warn, info or debug (the "
		"file's 'log.level')\n"
		"      --www DIR         serve the web page from DIR (default: "
		"the installed\n"
		"                        page, or www/ beside a build)\n"
		"  -V, --version         print the version\n"
		"  -h, --help            print this help\n"
		"\n"
		"commands (each with --help):\n");
	admin_list_commands(f);
	fprintf(f, "\n"
		   "example:\n"
		   "  speechfsd --config /etc/speechfs/speechfsd.conf\n");
}

/*
 * A message that stops the daemon: an error in the journal's priorities
 * (journalctl -p err shows it) when stderr is the journal.
 */
static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fatal(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%sspeechfsd: ", sfs_log_to_journal() ? "<3>" : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = 0;
	sfs_warn("mhd", "%s", msg);
}

/* Wait up to limit_ms for the requests in flight; how many are left. */
static int drain(int limit_ms)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int waited_ms = 0, left;

	while ((left = __atomic_load_n(&g_httpd.inflight, __ATOMIC_SEQ_CST)) >
		       0 &&
	       waited_ms < limit_ms) {
		nanosleep(&ts, NULL);
		waited_ms += 20;
	}
	return left;
}

/*
 * The requests in flight get http.shutdown_timeout. Those still waiting
 * for the database then (a lock held by another process, a long query)
 * have their statements cancelled and answer 503: MHD_stop_daemon waits
 * for every handler to return, so without it the daemon would wait as
 * long as the database holds them. A server that runs no more takes no
 * cancel (the cancels are sent by threads of their own, which it holds):
 * the stop's watch then ends the process (stop_watch_main).
 */
static void drain_all(void)
{
	int left = drain(g_httpd.opts.shutdown_timeout_s * 1000), waited;

	if (!left)
		return;
	sfs_warn("httpd", "shutdown: %d requests still in flight", left);
	if (!sfs_store_is_shared(g_httpd.store))
		return; /* SQLite's waits end at its busy timeout */
	/*
	 * Again and again: a request between two statements is not asked,
	 * and its next statement may wait in turn.
	 */
	for (waited = 0; left && waited < STOP_CANCEL_MS; waited += 100) {
		sfs_store_interrupt(g_httpd.store);
		left = drain(100);
	}
	if (left)
		sfs_warn("httpd",
			 "shutdown: %d requests in flight after cancelling "
			 "their statements",
			 left);
}

/*
 * The stop of a daemon on PostgreSQL ends within http.shutdown_timeout +
 * STOP_CANCEL_MS + STOP_REST_MS, whatever still waits for the database.
 * A server that runs no more (stopped, a dead link whose connections
 * still open) takes no cancel and answers nothing: the handlers waiting
 * for it never return to MHD_stop_daemon, the job workers and the
 * store's listener never return to their joins (review s14 finding 3).
 * At the deadline this thread leaves them: it logs what was left and
 * ends the process. Nothing of the store is half-written by a thread
 * waiting for an answer of the database (its commits are the
 * database's; bytes stored without their row are the orphans a crash
 * leaves, which fsck knows), and the clients of those requests see their
 * connections closed.
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int armed, done;
	int64_t deadline_ns;
} watch = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *stop_watch_main(void *arg)
{
	struct timespec ts;
	int done;

	(void)arg;
	sfs_mono_ts(&ts, watch.deadline_ns);
	pthread_mutex_lock(&watch.mu);
	while (!watch.done && sfs_mono_ns() < watch.deadline_ns)
		pthread_cond_timedwait(&watch.cv, &watch.mu, &ts);
	done = watch.done;
	pthread_mutex_unlock(&watch.mu);
	if (done)
		return NULL;
	sfs_warn("httpd",
		 "shutdown: not done %d s after the signal: exiting anyway, "
		 "%d requests still in flight (a database that does not "
		 "answer holds what is left)",
		 g_httpd.opts.shutdown_timeout_s +
			 (STOP_CANCEL_MS + STOP_REST_MS) / 1000,
		 __atomic_load_n(&g_httpd.inflight, __ATOMIC_SEQ_CST));
	_exit(0);
}

/* Armed as the stop begins; only a store on PostgreSQL waits so. */
static void stop_watch_arm(void)
{
	int64_t ms = (int64_t)g_httpd.opts.shutdown_timeout_s * 1000 +
		     STOP_CANCEL_MS + STOP_REST_MS;

	if (!sfs_store_is_shared(g_httpd.store))
		return;
	sfs_cond_init_mono(&watch.cv);
	watch.deadline_ns = sfs_mono_ns() + ms * 1000000;
	if (pthread_create(&watch.th, NULL, stop_watch_main, NULL)) {
		sfs_warn("httpd", "shutdown: cannot bound the stop");
		pthread_cond_destroy(&watch.cv);
		return;
	}
	watch.armed = 1;
}

static void stop_watch_disarm(void)
{
	if (!watch.armed)
		return;
	pthread_mutex_lock(&watch.mu);
	watch.done = 1;
	pthread_cond_signal(&watch.cv);
	pthread_mutex_unlock(&watch.mu);
	pthread_join(watch.th, NULL);
	pthread_cond_destroy(&watch.cv);
	watch.armed = 0;
}

/* What the command line says; it wins over the file. */
struct cmdline {
	const char *config, *store, *listen, *www;
	int no_workers;
	int log_level; /* -1: not given */
};

/* -1 to go on, else the exit status. */
static int parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	static const struct option lopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "no-workers", no_argument, NULL, 'n' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "www", required_argument, NULL, 'w' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(cl, 0, sizeof(*cl));
	cl->log_level = -1;
	if (cli_check_args("speechfsd", argc, argv, ":c:Vh", lopts))
		return 2;
	while ((c = cli_getopt("speechfsd", argc, argv, ":c:Vh", lopts)) !=
	       -1) {
		switch (c) {
		case 'c':
			cl->config = optarg;
			break;
		case 's':
			cl->store = optarg;
			break;
		case 'l':
			cl->listen = optarg;
			break;
		case 'n':
			cl->no_workers = 1;
			break;
		case 'w':
			cl->www = optarg;
			break;
		case 'L':
			cl->log_level = sfs_log_level_parse(optarg);
			if (cl->log_level < 0) {
				fprintf(stderr,
					"speechfsd: --log-level: '%s' is not "
					"one of error, warn, info, debug\n",
					optarg);
				return 2;
			}
			break;
		case 'V':
			printf("speechfsd %s\n", SFS_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr,
			"speechfsd: unexpected argument '%s' (commands: "
			"speechfsd --help)\n",
			argv[optind]);
		return 2;
	}
	return -1;
}

/* The file, then the command line over it; -1 to go on, else the status. */
static int configure(const struct cmdline *cl, struct httpd_config *cfg,
		     struct sockaddr_storage *ss, socklen_t *sslen, int *v6)
{
	char msg[256];
	struct sfs_err e;

	sfs_err_init(&e);
	httpd_config_init(cfg);
	if (cl->config && httpd_config_load(cfg, cl->config, &e)) {
		fatal("%s\n", e.message);
		return 2;
	}
	if (cl->store)
		snprintf(cfg->store, sizeof(cfg->store), "%s", cl->store);
	if (cl->listen)
		snprintf(cfg->listen, sizeof(cfg->listen), "%s", cl->listen);
	if (cl->no_workers)
		cfg->workers = 0;
	if (cl->log_level >= 0)
		cfg->log_level = cl->log_level;
	if (!cfg->store[0]) {
		fatal("no store: give 'store = DIR' in "
		      "the --config file (or --store DIR)\n");
		return 2;
	}
	if (httpd_listen_parse(cfg->listen, ss, sslen, v6, msg, sizeof(msg))) {
		fatal("--listen: %s\n", msg);
		return 2;
	}
	sfs_log_set_level((enum sfs_log_level)cfg->log_level);
	return -1;
}

static struct MHD_Daemon *start_mhd(const struct sockaddr_storage *ss, int v6)
{
	const struct httpd_opts *o = &g_httpd.opts;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	return MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0),
		ntohs(v6 ? sin6->sin6_port : sin->sin_port), conn_accept_policy,
		NULL, httpd_access, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
		NULL, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss,
		MHD_OPTION_THREAD_POOL_SIZE,
		(unsigned)(o->threads > 0 ? o->threads : 1),
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->conn_timeout_s,
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
		(size_t)(o->max_url_len + o->max_header_bytes + 16 * 1024),
		MHD_OPTION_NOTIFY_COMPLETED, httpd_completed, NULL,
		MHD_OPTION_URI_LOG_CALLBACK, httpd_uri_log, NULL,
		MHD_OPTION_END);
}

/*
 * Serve until SIGTERM or SIGINT (returned); a SIGHUP meanwhile reloads
 * the configuration file.
 */
static int await_stop(struct httpd_config *cfg, const struct cmdline *cl,
		      const sigset_t *sigs)
{
	int sig = 0, failed;

	for (;;) {
		if (sigwait(sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			return sig;
		sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
		failed = 0;
		if (!cl->config)
			sfs_warn("config",
				 "SIGHUP: no --config file to reload");
		else
			failed = httpd_config_reload(cfg, cl->config,
						     cl->log_level >= 0) < 0;
		sd_notifyf(0, "READY=1\nSTATUS=listening on %s, store %s%s",
			   cfg->listen, cfg->store,
			   failed ? "; the last reload failed (see the log)"
				  : "");
	}
}

/*
 * Serve until SIGTERM or SIGINT; SIGHUP reloads the configuration file.
 * systemd (Type=notify) hears READY=1 once the socket listens and the
 * workers run, RELOADING=1 / READY=1 around a reload, STOPPING=1 at a
 * stop, and STATUS= lines; without NOTIFY_SOCKET sd_notify does nothing.
 */
static int serve(struct httpd_config *cfg, const struct cmdline *cl,
		 const struct sockaddr_storage *ss, int v6)
{
	struct sfs_err e;
	sigset_t sigs;
	int sig, rc = 1, started = 0;

	/* every thread made from here on inherits the blocked signals */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	sfs_err_init(&e);
	g_httpd.opts = cfg->opts;
	if (sfs_store_open(cfg->store, &cfg->core, &g_httpd.store, &e)) {
		fatal("cannot open store '%s': %s\n", cfg->store, e.message);
		return 1;
	}
	if (www_init(cl->www)) {
		fatal("cannot read the web page\n");
		goto out;
	}
	/* its failure is logged, and the document's route answers 500 */
	httpd_openapi_init();
	/*
	 * Unless configured, no answer cache on a store other machines
	 * change (PostgreSQL): behind a balancer, a client that writes
	 * through one daemon and reads through another must read its
	 * write, and another daemon's cache learns of it only by notice.
	 */
	if (g_httpd.opts.response_cache < 0)
		g_httpd.opts.response_cache =
			sfs_store_is_shared(g_httpd.store) ? 0 : 1024;
	if (limits_init() || conn_init() ||
	    respcache_init(g_httpd.opts.response_cache) || changes_init() ||
	    uploads_init()) {
		fatal("cannot start the timers\n");
		goto out;
	}
	g_httpd.mhd = start_mhd(ss, v6);
	if (!g_httpd.mhd) {
		fatal("cannot listen on %s\n", cfg->listen);
		goto out;
	}
	if (cfg->workers &&
	    sfs_workers_start(g_httpd.store, cfg->core.workers, &e)) {
		fatal("cannot start workers: %s\n", e.message);
		goto out;
	}
	started = cfg->workers;
	sfs_info("httpd", "listening on %s, store '%s'", cfg->listen,
		 cfg->store);
	sd_notifyf(0, "READY=1\nSTATUS=listening on %s, store %s", cfg->listen,
		   cfg->store);

	sig = await_stop(cfg, cl, &sigs);
	sfs_info("httpd", "signal %d: shutting down", sig);
	sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing the requests "
		     "in flight");
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
	stop_watch_arm();
	changes_stop(); /* the long polls answer now */
	uploads_stop();
	drain_all();
	sfs_debug("httpd", "drained");
	rc = 0;
out:
	changes_stop();
	uploads_stop();
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
	stop_watch_disarm();
	www_free();
	httpd_openapi_free();
	return rc;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	struct httpd_config *cfg;
	struct cmdline cl;
	socklen_t sslen;
	int rc, v6;

	if (argc > 1 && admin_is_command(argv[1]))
		return admin_main(argc - 1, argv + 1);
	rc = parse_cmdline(argc, argv, &cl);
	if (rc >= 0)
		return rc;
	/* large (the file's keys as read): not on the stack */
	cfg = malloc(sizeof(*cfg));
	if (!cfg) {
		fatal("out of memory\n");
		return 1;
	}
	rc = configure(&cl, cfg, &ss, &sslen, &v6);
	if (rc < 0)
		rc = serve(cfg, &cl, &ss, v6);
	free(cfg);
	return rc;
}
