/*
 * Benchmark: URI import of a 1 GiB file from a local nginx through the
 * core's fetch into a stage (hashing as bytes pass, then fsync), against
 * the baseline `curl -o FILE URL && openssl dgst -sha256 FILE` of the same
 * URL in the same run. Prints MB/s of both and their ratio (target >= 0.8).
 * SFS_BENCH_IMPORT_MB sets the size (default 1024).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "speechfs/blob.h"
#include "speechfs/fetch.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int main(void)
{
	const char *mbs = getenv("SFS_BENCH_IMPORT_MB");
	long mb = mbs ? strtol(mbs, NULL, 10) : 1024;
	char tmpl[] = "/tmp/sfs-bench-import-XXXXXX", url[256], conf[4096];
	struct sfs_config cfg;
	struct sfs_store *s = NULL;
	struct sfs_stage *st = NULL;
	struct sfs_err e;
	double t0, t_core, t_base, best_core = 1e9, best_base = 1e9;
	char *dir = mkdtemp(tmpl), store[600];
	int port = free_port(), rc = 1, i;
	FILE *f;

	if (!dir || port < 0 || mb <= 0)
		return 2;
	printf("import benchmark: %ld MiB from a local nginx\n", mb);
	if (sh("chmod 755 %s && head -c %ldM /dev/urandom > %s/www.bin && "
	       "chmod 644 %s/www.bin",
	       dir, mb, dir, dir)) {
		fprintf(stderr, "cannot make the test file\n");
		goto out;
	}
	snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
	f = fopen(conf, "w");
	if (!f)
		goto out;
	fprintf(f,
		"daemon on; pid %s/nginx.pid; error_log %s/error.log;\n"
		"events { worker_connections 64; }\n"
		"http { access_log off; sendfile on; server {\n"
		" listen 127.0.0.1:%d; root %s; } }\n",
		dir, dir, port, dir);
	fclose(f);
	if (sh("nginx -c %s -p %s >/dev/null 2>&1", conf, dir)) {
		fprintf(stderr, "cannot start nginx\n");
		goto out;
	}
	usleep(300 * 1000);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/www.bin", port);

	snprintf(store, sizeof(store), "%s/store", dir);
	sfs_err_init(&e);
	sfs_config_init(&cfg);
	snprintf(cfg.import_allow, sizeof(cfg.import_allow), "127.0.0.1/32");
	cfg.import_max_bytes = (int64_t)(mb + 1) << 20;
	if (sfs_store_init(store, &e) || sfs_store_open(store, &cfg, &s, &e)) {
		fprintf(stderr, "store: %s\n", e.message);
		goto out;
	}
	/* warm the server's page cache once, then alternate, best of 3 */
	sh("curl -s -o /dev/null %s", url);
	for (i = 0; i < 3; i++) {
		t0 = now_s();
		if (sh("curl -s -o %s/dl.bin %s && openssl dgst -sha256 "
		       "%s/dl.bin >/dev/null && sync %s/dl.bin",
		       dir, url, dir, dir)) {
			fprintf(stderr, "baseline failed\n");
			goto out;
		}
		t_base = now_s() - t0;
		sh("rm -f %s/dl.bin", dir);

		t0 = now_s();
		if (sfs_stage_new(s, &st, &e) ||
		    sfs_fetch(&cfg, url, st, 0, NULL, NULL, &e) ||
		    sfs_stage_finish(st, &e)) {
			fprintf(stderr, "core import failed: %s\n", e.message);
			goto out;
		}
		t_core = now_s() - t0;
		sfs_stage_free(st);
		st = NULL;
		if (t_core < best_core)
			best_core = t_core;
		if (t_base < best_base)
			best_base = t_base;
	}
	printf("%-34s %10s %10s\n", "", "MB/s", "ratio");
	printf("%-34s %10.1f %10s\n", "curl -o + openssl dgst (baseline)",
	       (double)mb * 1.048576 / best_base, "1.00");
	printf("%-34s %10.1f %10.2f   (target >= 0.8)\n", "speechfs import",
	       (double)mb * 1.048576 / best_core, best_base / best_core);
	rc = 0;
out:
	sfs_stage_free(st);
	sfs_store_close(s);
	sh("[ -f %s/nginx.pid ] && kill $(cat %s/nginx.pid) 2>/dev/null", dir,
	   dir);
	sh("rm -rf %s", dir);
	return rc;
}
