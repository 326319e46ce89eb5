/*
 * Tests of the URI import transport against local servers the test starts
 * (tests/unit/fetch_helpers: a misbehaving HTTP server and a minimal S3
 * server checking Signature V4), all on loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include "speechfs/blob.h"
#include "speechfs/fetch.h"
#include "speechfs/job.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "testhelp.h"

#define S3_ACCESS "AKIDTESTSPEECHFS"
#define S3_SECRET "test/secret+key/0123456789abcdefghijklm"

struct server {
	pid_t pid;
	int port;
};

static struct server web, s3, tls;

/* tests/unit/fetch_helpers, found from the binary (B/tests/t_fetch). */
static void helper_path(const char *name, char *out, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	int up;

	if (n > 0) {
		exe[n] = '\0';
		for (up = 0; up < 3; up++) {
			slash = strrchr(exe, '/');
			if (slash)
				*slash = '\0';
		}
		snprintf(out, size, "%s/tests/unit/fetch_helpers/%s", exe,
			 name);
		if (access(out, R_OK) == 0)
			return;
	}
	snprintf(out, size, "tests/unit/fetch_helpers/%s", name);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Start a helper server and read the "PORT n" line it prints. */
static int server_start(struct server *sv, const char *name, const char *arg)
{
	char script[PATH_MAX + 64], line[64];
	struct pollfd pfd;
	int fds[2], left;
	ssize_t n, got = 0;
	double deadline;

	helper_path(name, script, sizeof(script));
	if (pipe(fds) < 0)
		return -1;
	sv->pid = fork();
	if (sv->pid < 0)
		return -1;
	if (sv->pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/usr/bin/python3", "python3", script, arg, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	/*
	 * The deadline only stops a hang: Python's start and the TLS
	 * helper's key generation took more than 15 s on a loaded machine.
	 */
	deadline = now_s() + 120;
	while (got < (ssize_t)sizeof(line) - 1 && !memchr(line, '\n', got)) {
		left = (int)((deadline - now_s()) * 1000);
		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			break;
		n = read(fds[0], line + got, sizeof(line) - 1 - got);
		if (n <= 0)
			break;
		got += n;
	}
	close(fds[0]);
	line[got] = '\0';
	if (sscanf(line, "PORT %d", &sv->port) != 1) {
		fprintf(stderr, "helper %s did not start\n", script);
		return -1;
	}
	return 0;
}

static void server_stop(struct server *sv)
{
	if (sv->pid > 0) {
		kill(sv->pid, SIGTERM);
		waitpid(sv->pid, NULL, 0);
	}
	sv->pid = 0;
}

/* One test's world: a fresh store, a stage and a configuration. */
struct ctx {
	char *dir;
	struct sfs_store *s;
	struct sfs_stage *st;
	struct sfs_config cfg;
	struct sfs_err e;
	char url[512];
};

static int ctx_open(struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->dir = th_tmpdir();
	if (sfs_store_init(c->dir, &c->e) ||
	    sfs_store_open(c->dir, NULL, &c->s, &c->e) ||
	    sfs_stage_new(c->s, &c->st, &c->e)) {
		fprintf(stderr, "store: %s\n", c->e.message);
		return -1;
	}
	sfs_config_init(&c->cfg);
	/*
	 * Deadlines that only stop a hang: on a loaded machine (or under a
	 * sanitizer or valgrind) a TLS handshake with the helper server, or
	 * a resolver that does not answer, took more than the 10 s these
	 * were, and the test saw "timed out" instead of the failure it
	 * checks. The time-limit tests set their own, small ones.
	 */
	c->cfg.import_connect_timeout_s = 30;
	c->cfg.import_timeout_s = 120;
	snprintf(c->cfg.import_allow, sizeof(c->cfg.import_allow),
		 "127.0.0.1/32");
	return 0;
}

static void ctx_close(struct ctx *c)
{
	if (c->st)
		sfs_stage_free(c->st);
	if (c->s)
		sfs_store_close(c->s);
	th_rmrf(c->dir);
}

/* A new stage, for a second fetch in the same test. */
static void ctx_restage(struct ctx *c)
{
	sfs_stage_free(c->st);
	c->st = NULL;
	if (sfs_stage_new(c->s, &c->st, &c->e))
		abort();
	sfs_err_init(&c->e);
}

/* Fetch http://127.0.0.1:PORT<path> into a fresh stage. */
static enum sfs_status get(struct ctx *c, const char *path, int64_t max)
{
	ctx_restage(c);
	snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d%s", web.port,
		 path);
	return sfs_fetch(&c->cfg, c->url, c->st, max, NULL, NULL, &c->e);
}

static enum sfs_status get_url(struct ctx *c, const char *url)
{
	ctx_restage(c);
	return sfs_fetch(&c->cfg, url, c->st, 0, NULL, NULL, &c->e);
}

static int has(const struct sfs_err *e, const char *needle)
{
	if (strstr(e->message, needle))
		return 1;
	fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", e->message, needle);
	return 0;
}

static void hex(const unsigned char *d, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The stage holds exactly `want` (read back and by its SHA-256). */
static int stage_is(struct ctx *c, const unsigned char *want, size_t n)
{
	unsigned char *got = malloc(n + 1), md[32];
	char shahex[65];
	size_t len = 0;
	int ok;

	if (sfs_stage_finish(c->st, &c->e) ||
	    sfs_stage_size(c->st) != (int64_t)n ||
	    sfs_stage_pread(c->st, got, n + 1, 0, &len, &c->e)) {
		free(got);
		return 0;
	}
	SHA256(want, n, md);
	hex(md, 32, shahex);
	ok = len == n && !memcmp(got, want, n) &&
	     !strcmp(sfs_stage_sha256(c->st), shahex);
	free(got);
	return ok;
}

/* ---- URI validation ---- */

static void t_check_uri_accepts(void)
{
	static const char *good[] = {
		"http://example.com/a.wav",
		"https://storage.example.com/recordings/meeting.wav?sig=1",
		"HTTPS://EXAMPLE.COM/",
		"http://127.0.0.1:8080/x",
		"http://[::1]:8080/x",
		"s3://my-bucket/dir/key.wav",
		"s3://a.b-c/k",
		"S3://bucket/dir/%20/k?#",
	};
	struct sfs_err e;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		sfs_err_init(&e);
		CHECK_ST(sfs_fetch_check_uri(good[i], &e), SFS_OK);
	}
}

static void t_check_uri_refuses(void)
{
	static const char *bad[] = {
		"ftp://example.com/a.wav",
		"file:///etc/passwd",
		"gopher://example.com/",
		"dict://127.0.0.1:11211/stat",
		"javascript:alert(1)",
		"data:text/plain,hello",
		"",
		"example.com/a.wav",
		"/etc/passwd",
		"http://",
		"http:///nohost",
		"http://exa mple.com/",
		"http://example.com/\r\nX-Injected: 1",
		"s3://bucket",
		"s3://bucket/",
		"s3://Bucket/key",
		"s3://ab/key",
		"s3://-bucket/key",
		"s3:///key",
		"s3://bucket/with space",
	};
	char longuri[SFS_FETCH_URI_MAX + 64];
	struct sfs_err e;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sfs_err_init(&e);
		CHECK_ST(sfs_fetch_check_uri(bad[i], &e), SFS_INVALID);
		CHECK(e.nfields == 1 && !strcmp(e.fields[0].field, "uri"));
		if (e.status != SFS_INVALID)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
	}
	sfs_err_init(&e);
	CHECK_ST(sfs_fetch_check_uri(NULL, &e), SFS_INVALID);
	sfs_err_init(&e);
	CHECK_ST(sfs_fetch_check_uri("ftp://x/y", &e), SFS_INVALID);
	CHECK(has(&e, "unsupported scheme 'ftp'"));

	memcpy(longuri, "http://example.com/", 19);
	memset(longuri + 19, 'a', sizeof(longuri) - 20);
	longuri[sizeof(longuri) - 1] = '\0';
	sfs_err_init(&e);
	CHECK_ST(sfs_fetch_check_uri(longuri, &e), SFS_INVALID);
	CHECK(!strcmp(e.fields[0].type, "too_long"));
	longuri[SFS_FETCH_URI_MAX] = '\0';
	sfs_err_init(&e);
	CHECK_ST(sfs_fetch_check_uri(longuri, &e), SFS_OK);
}

/* sfs_fetch validates too: a bad scheme never reaches the network. */
static void t_fetch_refuses_bad_scheme(void)
{
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	CHECK_ST(get_url(&c, "file:///etc/passwd"), SFS_INVALID);
	CHECK_ST(get_url(&c, "gopher://127.0.0.1:70/"), SFS_INVALID);
	CHECK(sfs_stage_size(c.st) == 0);
	ctx_close(&c);
}

/* ---- plain downloads ---- */

static void t_ok(void)
{
	static const size_t sizes[] = { 0, 1, 100000, 3 << 20 };
	unsigned char *want = malloc(3 << 20);
	struct ctx c;
	size_t i, k;

	REQUIRE(want && ctx_open(&c) == 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char path[64];

		for (k = 0; k < sizes[i]; k++)
			want[k] = (unsigned char)((k * 7 + 3) & 255);
		snprintf(path, sizeof(path), "/ok/%zu", sizes[i]);
		CHECK_ST(get(&c, path, 0), SFS_OK);
		CHECK(stage_is(&c, want, sizes[i]));
	}
	/* exactly at the limit is fine */
	CHECK_ST(get(&c, "/ok/5000", 5000), SFS_OK);
	free(want);
	ctx_close(&c);
}

/* Proxy variables cannot route an import around the address check. */
static void t_proxy_env_ignored(void)
{
	static const char *vars[] = { "http_proxy", "HTTPS_PROXY",
				      "https_proxy", "ALL_PROXY", "all_proxy" };
	struct ctx c;
	size_t i;

	REQUIRE(ctx_open(&c) == 0);
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		setenv(vars[i], "http://10.255.255.1:3128", 1);
	setenv("no_proxy", "", 1);
	setenv("NO_PROXY", "", 1);
	CHECK_ST(get(&c, "/ok/10", 0), SFS_OK);
	CHECK(sfs_stage_size(c.st) == 10);
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	ctx_close(&c);
}

static void t_http_errors(void)
{
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	CHECK_ST(get(&c, "/status/404", 0), SFS_IO);
	CHECK(has(&c.e, "HTTP 404 Not Found"));
	CHECK(c.e.reason == SFS_R_IMPORT_FAILED);
	CHECK(sfs_stage_size(c.st) == 0); /* the error page is not kept */
	CHECK_ST(get(&c, "/status/500", 0), SFS_IO);
	CHECK(has(&c.e, "HTTP 500"));
	CHECK_ST(get(&c, "/status/403", 0), SFS_IO);
	CHECK(has(&c.e, "HTTP 403 Forbidden"));
	/* a redirect without a Location is not a body either */
	CHECK_ST(get(&c, "/status/304", 0), SFS_IO);
	CHECK(has(&c.e, "HTTP 304"));
	ctx_close(&c);
}

static void t_connect_refused(void)
{
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	CHECK_ST(get_url(&c, "http://127.0.0.1:1/x"), SFS_IO);
	CHECK(has(&c.e, "could not connect to '127.0.0.1'"));
	ctx_close(&c);
}

static void t_unresolvable(void)
{
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	c.cfg.import_connect_timeout_s = 2;
	CHECK_ST(get_url(&c, "http://no-such-host.invalid/x"), SFS_IO);
	CHECK(has(&c.e, "could not resolve host 'no-such-host.invalid'"));
	ctx_close(&c);
}

/* An untrusted certificate fails: verification is on. */
static void t_tls_verified(void)
{
	struct ctx c;
	char url[128];

	REQUIRE(ctx_open(&c) == 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok/10", tls.port);
	CHECK_ST(get_url(&c, url), SFS_IO);
	CHECK(has(&c.e, "TLS failure with '127.0.0.1'"));
	CHECK(sfs_stage_size(c.st) == 0);
	/* the server does speak TLS: plain http to it gets no valid reply */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok/10", tls.port);
	CHECK(get_url(&c, url) != SFS_OK);
	ctx_close(&c);
}

/* ---- time limits ---- */

/*
 * A listener whose accept queue is full (backlog 0, a connection waiting,
 * never accepted) drops further SYNs: the connect hangs. The queue is
 * full once the first connect has completed.
 */
static void t_connect_timeout(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int lfd, cfd[3] = { -1, -1, -1 }, i;
	char url[128];
	struct ctx c;
	double t0;

	REQUIRE(ctx_open(&c) == 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(lfd >= 0 && !bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) &&
		!listen(lfd, 0) &&
		!getsockname(lfd, (struct sockaddr *)&sa, &len));
	for (i = 0; i < 3; i++) {
		cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(cfd[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
		    errno != EINPROGRESS)
			break;
	}
	{
		struct pollfd pf = { .fd = cfd[0], .events = POLLOUT };

		REQUIRE(cfd[0] >= 0 && poll(&pf, 1, 10000) == 1);
	}
	c.cfg.import_connect_timeout_s = 1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
	t0 = now_s();
	CHECK_ST(get_url(&c, url), SFS_IO);
	CHECK(has(&c.e, "connection timed out"));
	/* ended by the connect timeout, not by the 120 s of the whole */
	CHECK(now_s() - t0 < 60);
	for (i = 0; i < 3; i++)
		if (cfd[i] >= 0)
			close(cfd[i]);
	close(lfd);
	ctx_close(&c);
}

static void t_slow_server(void)
{
	struct ctx c;
	double t0;

	REQUIRE(ctx_open(&c) == 0);
	c.cfg.import_timeout_s = 2;
	t0 = now_s();
	CHECK_ST(get(&c, "/slow-headers/60", 0), SFS_IO);
	CHECK(has(&c.e, "timed out"));
	/* the server answers after 60 s: the 2 s timeout ended it before */
	CHECK(now_s() - t0 < 45);

	/* headers, a few bytes, then nothing: the stall is noticed */
	t0 = now_s();
	CHECK_ST(get(&c, "/stall/60", 0), SFS_IO);
	CHECK(strstr(c.e.message, "timed out") ||
	      strstr(c.e.message, "stalled"));
	CHECK(now_s() - t0 < 45);
	ctx_close(&c);
}

/* ---- redirects ---- */

static void t_redirects(void)
{
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	c.cfg.import_max_redirects = 3;
	CHECK_ST(get(&c, "/redir/3", 0), SFS_OK);
	CHECK(stage_is(&c, (const unsigned char *)"landed\n", 7));
	CHECK_ST(get(&c, "/redir/4", 0), SFS_IO);
	CHECK(has(&c.e, "too many redirects"));
	c.cfg.import_max_redirects = 0;
	CHECK_ST(get(&c, "/redir/1", 0), SFS_IO);
	CHECK(has(&c.e, "too many redirects"));
	CHECK_ST(get(&c, "/redir/0", 0), SFS_OK);
	ctx_close(&c);
}

static void t_redirect_to_blocked(void)
{
	char path[256];
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	CHECK_ST(get(&c, "/goto?http://10.255.255.1/x", 0), SFS_FORBIDDEN);
	CHECK(has(&c.e, "blocked address 10.255.255.1 (private network)"));
	CHECK(c.e.reason == SFS_R_IMPORT_BLOCKED);
	CHECK_ST(get(&c, "/goto?http://169.254.169.254/latest/meta-data/", 0),
		 SFS_FORBIDDEN);
	CHECK(has(&c.e, "blocked address 169.254.169.254 (link-local)"));
	/* only 127.0.0.1/32 is allowed, not the rest of 127/8 */
	snprintf(path, sizeof(path), "/goto?http://127.0.0.2:%d/ok/10",
		 web.port);
	CHECK_ST(get(&c, path, 0), SFS_FORBIDDEN);
	CHECK(has(&c.e, "blocked address 127.0.0.2 (loopback)"));
	/* a redirect may not leave http and https */
	CHECK_ST(get(&c, "/goto?ftp://127.0.0.1/x", 0), SFS_IO);
	CHECK(has(&c.e, "unsupported scheme"));
	CHECK_ST(get(&c, "/goto?file:///etc/passwd", 0), SFS_IO);
	CHECK(has(&c.e, "unsupported scheme"));
	CHECK(sfs_stage_size(c.st) == 0);
	ctx_close(&c);
}

/*
 * A host-name entry opens that name only: each hop is judged by its own
 * host, so a redirect from "localhost" to 127.0.0.1 is refused.
 */
static void t_allow_by_host_name(void)
{
	char url[256];
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	snprintf(c.cfg.import_allow, sizeof(c.cfg.import_allow),
		 "example.org, localhost");
	snprintf(url, sizeof(url), "http://localhost:%d/ok/10", web.port);
	CHECK_ST(get_url(&c, url), SFS_OK);
	CHECK(sfs_stage_size(c.st) == 10);
	snprintf(url, sizeof(url),
		 "http://localhost:%d/goto?http://127.0.0.1:%d/ok/10", web.port,
		 web.port);
	CHECK_ST(get_url(&c, url), SFS_FORBIDDEN);
	CHECK(has(&c.e, "blocked address 127.0.0.1 (loopback)"));
	/* names are not suffixes unless they say so */
	snprintf(c.cfg.import_allow, sizeof(c.cfg.import_allow), "calhost");
	snprintf(url, sizeof(url), "http://localhost:%d/ok/10", web.port);
	CHECK_ST(get_url(&c, url), SFS_FORBIDDEN);
	ctx_close(&c);
}

/* ---- size limits ---- */

static void t_too_large(void)
{
	struct ctx c;
	double t0;

	REQUIRE(ctx_open(&c) == 0);
	CHECK_ST(get(&c, "/ok/5001", 5000), SFS_TOO_LARGE);
	CHECK(has(&c.e, "too large: more than 5000 bytes"));
	CHECK(sfs_stage_size(c.st) <= 5000);

	/* the configuration's limit applies when it is the smaller one */
	c.cfg.import_max_bytes = 4096;
	CHECK_ST(get(&c, "/ok/5000", 1 << 20), SFS_TOO_LARGE);
	CHECK(has(&c.e, "more than 4096 bytes"));

	/* declared too large: refused before the body */
	c.cfg.import_max_bytes = 1 << 20;
	CHECK_ST(get(&c, "/declared-big", 0), SFS_TOO_LARGE);
	CHECK(sfs_stage_size(c.st) == 0);

	/* an endless chunked body is stopped at the limit */
	t0 = now_s();
	CHECK_ST(get(&c, "/endless", 0), SFS_TOO_LARGE);
	CHECK(has(&c.e, "too large: more than 1048576 bytes"));
	CHECK(sfs_stage_size(c.st) <= 1 << 20);
	/* stopped by the limit, not by the 120 s timeout */
	CHECK(now_s() - t0 < 60);
	ctx_close(&c);
}

static void t_cut_short(void)
{
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	CHECK_ST(get(&c, "/cut", 0), SFS_IO);
	CHECK(has(&c.e, "transfer cut short"));
	CHECK(has(&c.e, "of 1000 bytes"));
	CHECK_ST(get(&c, "/chunk-cut", 0), SFS_IO);
	CHECK(has(&c.e, "transfer cut short"));
	/* a complete chunked body is whole, whatever Content-Length says */
	CHECK_ST(get(&c, "/chunked-with-length", 0), SFS_OK);
	CHECK(sfs_stage_size(c.st) == 100);
	ctx_close(&c);
}

/* ---- the address check ---- */

static void t_blocked_by_default(void)
{
	static const struct {
		const char *url, *msg;
	} cases[] = {
		{ "http://127.0.0.1:%d/ok/10", "127.0.0.1 (loopback)" },
		{ "http://localhost:%d/ok/10", "(loopback)" },
		{ "http://2130706433:%d/", "127.0.0.1 (loopback)" },
		{ "http://0x7f.1:%d/", "127.0.0.1 (loopback)" },
		{ "http://0.0.0.0:%d/", "0.0.0.0 (unspecified)" },
		{ "http://10.1.2.3:%d/", "10.1.2.3 (private network)" },
		{ "http://172.16.9.9:%d/", "172.16.9.9 (private network)" },
		{ "http://172.31.255.255:%d/", "(private network)" },
		{ "http://192.168.1.1:%d/", "192.168.1.1 (private network)" },
		{ "http://169.254.169.254:%d/", "(link-local)" },
		{ "http://100.64.0.1:%d/", "100.64.0.1 (carrier-grade NAT)" },
		{ "http://224.0.0.1:%d/", "(multicast)" },
		{ "http://255.255.255.255:%d/", "(broadcast)" },
		{ "http://[::1]:%d/", "::1 (loopback)" },
		{ "http://[::]:%d/", ":: (unspecified)" },
		{ "http://[fe80::1]:%d/", "fe80::1 (link-local)" },
		{ "http://[fd12:3456::1]:%d/", "(unique local)" },
		{ "http://[ff02::1]:%d/", "(multicast)" },
		{ "http://[::ffff:127.0.0.1]:%d/", "(loopback)" },
		{ "http://[::ffff:10.0.0.1]:%d/", "(private network)" },
		{ "http://[64:ff9b::a00:1]:%d/", "(NAT64 private network)" },
		{ "http://[2002:a9fe:a9fe::1]:%d/", "(6to4 link-local)" },
	};
	char url[128];
	struct ctx c;
	size_t i;

	REQUIRE(ctx_open(&c) == 0);
	c.cfg.import_allow[0] = '\0';
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(url, sizeof(url), cases[i].url, web.port);
		CHECK_ST(get_url(&c, url), SFS_FORBIDDEN);
		CHECK(has(&c.e, "blocked address"));
		CHECK(has(&c.e, cases[i].msg));
	}
	/* an allow-list entry for other addresses opens nothing else */
	snprintf(c.cfg.import_allow, sizeof(c.cfg.import_allow),
		 "10.0.0.0/8,  192.168.0.0/16 ,bogus/77, 127.0.0.1/40");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok/10", web.port);
	CHECK_ST(get_url(&c, url), SFS_FORBIDDEN);
	/* a plain address entry works like /32 */
	snprintf(c.cfg.import_allow, sizeof(c.cfg.import_allow), "127.0.0.1");
	CHECK_ST(get_url(&c, url), SFS_OK);
	/* and a wider CIDR too */
	snprintf(c.cfg.import_allow, sizeof(c.cfg.import_allow), "127.0.0.0/8");
	CHECK_ST(get_url(&c, url), SFS_OK);
	ctx_close(&c);
}

/* An IPv6 allow-list entry lets the connection be attempted. */
static void t_allow_v6(void)
{
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	snprintf(c.cfg.import_allow, sizeof(c.cfg.import_allow), "::1/128");
	/* nothing listens on [::1]:1: refused (or no IPv6), not blocked */
	CHECK(get_url(&c, "http://[::1]:1/") != SFS_OK);
	CHECK(!strstr(c.e.message, "blocked"));
	CHECK(c.e.status == SFS_IO);
	/* the mapped form of an allowed IPv4 address is that address */
	snprintf(c.cfg.import_allow, sizeof(c.cfg.import_allow), "10.9.9.9/32");
	CHECK(get_url(&c, "http://[::ffff:10.9.9.8]:1/") == SFS_FORBIDDEN);
	ctx_close(&c);
}

/* ---- progress and cancellation ---- */

static int count_calls(void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int cancel_now(void *arg)
{
	(*(int *)arg)++;
	return 1;
}

static void t_progress(void)
{
	struct ctx c;
	int calls = 0;
	double t0;

	REQUIRE(ctx_open(&c) == 0);
	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:%d/drip/25", web.port);
	t0 = now_s();
	CHECK_ST(sfs_fetch(&c.cfg, c.url, c.st, 0, count_calls, &calls, &c.e),
		 SFS_OK);
	CHECK(sfs_stage_size(c.st) == 25);
	/* about 2.5 s: one call a second, not one per byte */
	CHECK(calls >= 1 && calls <= (int)(now_s() - t0) + 1);

	/* cancelled at the first call: 10 s of drip never all arrive */
	ctx_restage(&c);
	calls = 0;
	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:%d/drip/100",
		 web.port);
	CHECK_ST(sfs_fetch(&c.cfg, c.url, c.st, 0, cancel_now, &calls, &c.e),
		 SFS_CONFLICT);
	CHECK(has(&c.e, "cancelled"));
	CHECK(calls == 1);
	CHECK(sfs_stage_size(c.st) < 100);
	ctx_close(&c);
}

/* ---- threads ---- */

struct par {
	struct ctx *c;
	struct sfs_stage *st;
	struct sfs_err e;
	enum sfs_status ret;
};

static void *par_fetch(void *arg)
{
	struct par *p = arg;

	p->ret = sfs_fetch(&p->c->cfg, p->c->url, p->st, 0, NULL, NULL, &p->e);
	return NULL;
}

/* Fetches may run at once in several threads (the job workers). */
static void t_parallel(void)
{
	struct par p[4];
	pthread_t th[4];
	struct ctx c;
	int i, n = 0;

	REQUIRE(ctx_open(&c) == 0);
	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:%d/ok/300000",
		 web.port);
	memset(p, 0, sizeof(p));
	for (i = 0; i < 4; i++) {
		p[i].c = &c;
		if (sfs_stage_new(c.s, &p[i].st, &p[i].e) ||
		    pthread_create(&th[i], NULL, par_fetch, &p[i]))
			break;
	}
	n = i;
	CHECK(n == 4);
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		CHECK_ST(p[i].ret, SFS_OK);
		CHECK_ST(sfs_stage_finish(p[i].st, &p[i].e), SFS_OK);
		CHECK(sfs_stage_size(p[i].st) == 300000);
		if (i)
			CHECK(!strcmp(sfs_stage_sha256(p[i].st),
				      sfs_stage_sha256(p[0].st)));
	}
	for (i = 0; i < 4; i++)
		if (p[i].st)
			sfs_stage_free(p[i].st);
	ctx_close(&c);
}

/* ---- S3 ---- */

static void s3_config(struct ctx *c)
{
	snprintf(c->cfg.s3_endpoint, sizeof(c->cfg.s3_endpoint),
		 "http://127.0.0.1:%d", s3.port);
	snprintf(c->cfg.s3_access_key, sizeof(c->cfg.s3_access_key), "%s",
		 S3_ACCESS);
	snprintf(c->cfg.s3_secret_key, sizeof(c->cfg.s3_secret_key), "%s",
		 S3_SECRET);
	c->cfg.s3_path_style = 1;
}

static void t_s3_get(void)
{
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	s3_config(&c);
	CHECK_ST(get_url(&c, "s3://bkt/hello.txt"), SFS_OK);
	CHECK(stage_is(&c, (const unsigned char *)"hello from s3\n", 14));
	ctx_close(&c);
}

/*
 * A key with the characters AWS percent-encodes ('+', '(', '&', '=', '%',
 * '?', '#', UTF-8 ...) is signed as the server recomputes it; dot
 * segments are sent as they are, never resolved to another key.
 */
static void t_s3_encoded_key(void)
{
	unsigned char want[256 * 40];
	struct ctx c;
	size_t i;

	REQUIRE(ctx_open(&c) == 0);
	s3_config(&c);
	for (i = 0; i < sizeof(want); i++)
		want[i] = (unsigned char)(i & 255);
	CHECK_ST(get_url(&c, "s3://bkt/dir/a+b(1)&=~!$'*,;@?#%20\xc3\xa9.wav"),
		 SFS_OK);
	CHECK(stage_is(&c, want, sizeof(want)));
	CHECK_ST(get_url(&c, "s3://bkt/dir/../hello.txt"), SFS_IO);
	CHECK(has(&c.e, "HTTP 404 Not Found (NoSuchKey)"));
	ctx_close(&c);
}

static void t_s3_errors(void)
{
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	s3_config(&c);
	CHECK_ST(get_url(&c, "s3://bkt/missing.wav"), SFS_IO);
	CHECK(has(&c.e, "HTTP 404 Not Found (NoSuchKey)"));
	CHECK(sfs_stage_size(c.st) == 0);

	snprintf(c.cfg.s3_secret_key, sizeof(c.cfg.s3_secret_key), "wrong");
	CHECK_ST(get_url(&c, "s3://bkt/hello.txt"), SFS_IO);
	CHECK(has(&c.e, "HTTP 403 Forbidden (SignatureDoesNotMatch)"));
	CHECK(sfs_stage_size(c.st) == 0);

	snprintf(c.cfg.s3_access_key, sizeof(c.cfg.s3_access_key), "NOBODY");
	CHECK_ST(get_url(&c, "s3://bkt/hello.txt"), SFS_IO);
	CHECK(has(&c.e, "HTTP 403 Forbidden (InvalidAccessKeyId)"));

	/* no credentials: an anonymous request, refused by this server */
	c.cfg.s3_access_key[0] = '\0';
	CHECK_ST(get_url(&c, "s3://bkt/hello.txt"), SFS_IO);
	CHECK(has(&c.e, "HTTP 403 Forbidden (AccessDenied)"));

	/* the endpoint goes through the address check */
	s3_config(&c);
	c.cfg.import_allow[0] = '\0';
	CHECK_ST(get_url(&c, "s3://bkt/hello.txt"), SFS_FORBIDDEN);
	CHECK(has(&c.e, "blocked address 127.0.0.1 (loopback)"));

	/* an endpoint that is not http(s) */
	s3_config(&c);
	snprintf(c.cfg.s3_endpoint, sizeof(c.cfg.s3_endpoint),
		 "ftp://127.0.0.1:%d", s3.port);
	CHECK_ST(get_url(&c, "s3://bkt/hello.txt"), SFS_UNSUPPORTED);
	ctx_close(&c);
}

/* Virtual-hosted style: bkt.localhost, which curl resolves to loopback. */
static void t_s3_virtual_hosted(void)
{
	struct ctx c;

	REQUIRE(ctx_open(&c) == 0);
	s3_config(&c);
	snprintf(c.cfg.s3_endpoint, sizeof(c.cfg.s3_endpoint),
		 "http://localhost:%d", s3.port);
	c.cfg.s3_path_style = 0;
	CHECK_ST(get_url(&c, "s3://bkt/hello.txt"), SFS_OK);
	CHECK(stage_is(&c, (const unsigned char *)"hello from s3\n", 14));
	ctx_close(&c);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (server_start(&web, "httpd.py", NULL) ||
	    server_start(&s3, "s3d.py", NULL) ||
	    server_start(&tls, "httpd.py", "tls")) {
		server_stop(&web);
		server_stop(&s3);
		server_stop(&tls);
		return 2;
	}
	RUN(t_check_uri_accepts);
	RUN(t_check_uri_refuses);
	RUN(t_fetch_refuses_bad_scheme);
	RUN(t_ok);
	RUN(t_proxy_env_ignored);
	RUN(t_http_errors);
	RUN(t_connect_refused);
	RUN(t_unresolvable);
	RUN(t_connect_timeout);
	RUN(t_tls_verified);
	RUN(t_slow_server);
	RUN(t_redirects);
	RUN(t_redirect_to_blocked);
	RUN(t_allow_by_host_name);
	RUN(t_too_large);
	RUN(t_cut_short);
	RUN(t_blocked_by_default);
	RUN(t_allow_v6);
	RUN(t_progress);
	RUN(t_parallel);
	RUN(t_s3_get);
	RUN(t_s3_encoded_key);
	RUN(t_s3_errors);
	RUN(t_s3_virtual_hosted);
	server_stop(&web);
	server_stop(&s3);
	server_stop(&tls);
	return th_report();
}
