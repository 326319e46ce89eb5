/*
 * Core benchmark: fill one user with many files across many directories,
 * time the three list queries that matter (a directory page, a recursive
 * tag filter, a name substring search), and ingest a large file into the
 * blob store side by side with `openssl dgst -sha256` of the same bytes,
 * with the ingest's peak RSS. SFS_BENCH_FILES and SFS_BENCH_INGEST_MB
 * scale it down for a quick run; SFS_BENCH_KEEP=1 keeps the store and
 * SFS_BENCH_STORE=<kept store> times the queries on it again without a
 * fill; SFS_BENCH_NO_INGEST=1 skips the ingest. SFS_BENCH_DB_URL (a
 * libpq URL) puts the new store's metadata in PostgreSQL (schema
 * SFS_BENCH_DB_SCHEMA, default "bench"), to set its figures beside
 * SQLite's from a run without it.
 *
 * On SQLite a new file's name enters the names' index later, in bulk (the
 * janitor's chore; schema v8): right after a fill every name waits and
 * a search finds them with LIKE. The name search is timed twice: just
 * filled, and after the names were indexed (sfsi_fts_catch_up, what the
 * janitor's chore runs; its time is printed: with the janitor's interval
 * before it, the window during which a daemon's searches are the slow
 * ones). On PostgreSQL (pg_trgm) both are the indexed search.
 * SFS_BENCH_JANITOR=1 fills with the job workers and the janitor running,
 * as in a daemon: its chore indexes the names while the fill goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "speechfs/auth.h"
#include "speechfs/blob.h"
#include "speechfs/file.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/query.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "file_i.h"

#define BATCH 1000
#define NTAGS 50
#define TAGS_PER_FILE 3
#define NQUERIES 1000
#define CHUNK (1 << 20)

static const char *const words[] = {
	"meeting", "interview", "lecture", "call",	"memo",
	"podcast", "standup",	"review",  "dictation", "voicemail",
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return def;
	n = strtol(v, &end, 10);
	return *end || n <= 0 ? def : n;
}

static void die(const char *what, const struct sfs_err *e)
{
	fprintf(stderr, "bench_core: %s: %s\n", what, e ? e->message : "");
	exit(1);
}

/* The 8 hex digits every file's name carries; a search needle. */
static void token(long i, char out[9])
{
	snprintf(out, 9, "%08llx",
		 (unsigned long long)(mix((uint64_t)i) & 0xffffffffULL));
}

static void dir_of(long i, long ndirs, char *out, size_t size)
{
	long k = i % ndirs;

	snprintf(out, size, "/d%03ld/s%03ld/", k / 100, k % 100);
}

static void tag_name(int t, char out[16])
{
	snprintf(out, 16, "topic-%02d", t);
}

/* ---- fill ------------------------------------------------------------- */

static double fill(struct sfs_store *s, const struct sfs_actor *a, long n,
		   long ndirs)
{
	static struct sfs_file_spec specs[BATCH];
	static char names[BATCH][64], fnames[BATCH][32], paths[BATCH][32];
	static char tagv[NTAGS][16];
	static const char *tags[BATCH][TAGS_PER_FILE];
	struct sfs_err e;
	double t0 = now_s();
	long i = 0, k;
	int t;

	for (t = 0; t < NTAGS; t++)
		tag_name(t, tagv[t]);
	while (i < n) {
		long m = n - i < BATCH ? n - i : BATCH;

		for (k = 0; k < m; k++, i++) {
			char tok[9];
			uint64_t h = mix((uint64_t)i + 0x9e3779b9ULL);

			token(i, tok);
			snprintf(names[k], sizeof(names[k]), "%s %s part %ld",
				 words[h % 10], tok, i % 7);
			snprintf(fnames[k], sizeof(fnames[k]), "rec_%ld.wav",
				 i);
			dir_of(i, ndirs, paths[k], sizeof(paths[k]));
			for (t = 0; t < TAGS_PER_FILE; t++)
				tags[k][t] = tagv[(h >> (8 * t + 8)) % NTAGS];
			if (tags[k][1] == tags[k][0])
				tags[k][1] = tagv[(h + 1) % NTAGS];
			memset(&specs[k], 0, sizeof(specs[k]));
			specs[k].name = names[k];
			specs[k].filename = fnames[k];
			specs[k].path = paths[k];
			specs[k].tags = tags[k];
			specs[k].ntags =
				tags[k][2] == tags[k][0] ||
						tags[k][2] == tags[k][1]
					? 2
					: TAGS_PER_FILE;
		}
		sfs_err_init(&e);
		if (sfs_file_create_many(s, a, specs, (size_t)m, &e))
			die("create_many", &e);
		if (isatty(2) && (i % 100000 == 0 || i == n))
			fprintf(stderr, "\r  filled %ld / %ld", i, n);
	}
	if (isatty(2))
		fprintf(stderr, "\n");
	return (double)n / (now_s() - t0);
}

/* ---- queries ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct lat {
	double p50, p99, max;
	long rows; /* files returned over all runs (sanity) */
};

enum qkind { Q_DIR, Q_TAG, Q_NAME };

static void time_queries(struct sfs_store *s, const struct sfs_actor *a,
			 enum qkind kind, long n, long ndirs, struct lat *out)
{
	static double ms[NQUERIES];
	struct sfs_file_list l;
	struct sfs_query q;
	struct sfs_err e;
	char buf[64];
	int i;

	out->rows = 0;
	for (i = 0; i < NQUERIES; i++) {
		uint64_t r = mix((uint64_t)i * 7919 + (uint64_t)kind);
		double t0;
		int bad = 0;

		sfs_query_init(&q);
		sfs_err_init(&e);
		switch (kind) {
		case Q_DIR:
			dir_of((long)(r % (uint64_t)ndirs), ndirs, buf,
			       sizeof(buf));
			bad = sfs_query_param(&q, "path", buf, &e);
			break;
		case Q_TAG:
			tag_name((int)(r % NTAGS), buf);
			bad = sfs_query_param(&q, "tags", buf, &e) ||
			      sfs_query_param(&q, "recursive", "true", &e);
			break;
		case Q_NAME:
			token((long)(r % (uint64_t)n), buf);
			buf[6] = '\0'; /* a prefix of one file's token */
			bad = sfs_query_param(&q, "name", buf, &e) ||
			      sfs_query_param(&q, "recursive", "true", &e);
			break;
		}
		if (bad)
			die("query parameters", &e);
		t0 = now_s();
		if (sfs_query_files(s, a, &q, &l, &e))
			die("query", &e);
		ms[i] = (now_s() - t0) * 1000.0;
		out->rows += (long)l.n;
		if (kind == Q_NAME && l.n == 0)
			die("substring query found nothing", NULL);
		sfs_file_list_release(&l);
		sfs_query_release(&q);
	}
	qsort(ms, NQUERIES, sizeof(ms[0]), cmp_double);
	out->p50 = ms[NQUERIES / 2];
	out->p99 = ms[NQUERIES * 99 / 100];
	out->max = ms[NQUERIES - 1];
}

/*
 * ---- ingest -----------------------------------------------------------
 * Three runs of the same bytes, best of two each: openssl dgst -sha256
 * (read + hash: the target's baseline), dd conv=fsync (read + durable
 * write: what the disk allows), and an upload through a stage into a
 * fresh store in a child process (read + write + hash + fsync + link +
 * commit), whose peak RSS wait4 reports.
 */

static int make_input(const char *path, long mb)
{
	uint64_t *buf = malloc(CHUNK), x = 0x243f6a8885a308d3ULL;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	long i;
	size_t k;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (i = 0; i < mb; i++) {
		for (k = 0; k < CHUNK / sizeof(*buf); k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[k] = x;
		}
		if (write(fd, buf, CHUNK) != CHUNK) {
			free(buf);
			close(fd);
			return -1;
		}
	}
	free(buf);
	return close(fd);
}

/* The child: a fresh store, one upload of `input` in 1 MiB chunks. */
static int ingest_child(const char *dir, const char *input)
{
	struct sfs_store *s = NULL;
	struct sfs_stage *st = NULL;
	struct sfs_file_spec sp;
	struct sfs_actor a;
	struct sfs_err e;
	char tenant[SFS_ID_SIZE], user[SFS_ID_SIZE];
	char *buf = malloc(CHUNK);
	ssize_t n;
	int fd;

	sfs_log_set_level(SFS_LOG_WARN);
	sfs_err_init(&e);
	if (!buf || sfs_store_init(dir, &e) ||
	    sfs_store_open(dir, NULL, &s, &e) ||
	    sfs_tenant_create(s, "bench", 0, 0, tenant, &e) ||
	    sfs_user_create(s, tenant, "ingest", -1, user, &e) ||
	    sfs_auth_user(s, user, SFS_SCOPE_ALL, &a, &e))
		die("ingest setup", &e);
	fd = open(input, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open input", NULL);
	printf("%.6f\n", now_s()); /* the clock starts after setup */
	fflush(stdout);
	if (sfs_stage_new(s, &st, &e))
		die("stage", &e);
	while ((n = read(fd, buf, CHUNK)) > 0)
		if (sfs_stage_write(st, buf, (size_t)n, &e))
			die("stage write", &e);
	if (n < 0)
		die("read input", NULL);
	printf("%.6f\n", now_s()); /* written and hashed, not yet durable */
	fflush(stdout);
	memset(&sp, 0, sizeof(sp));
	sp.name = "big";
	sp.filename = "big.bin";
	if (sfs_file_create(s, &a, &sp, st, NULL, &e))
		die("file create", &e);
	printf("%.6f\n", now_s());
	fflush(stdout);
	sfs_stage_free(st);
	close(fd);
	sfs_store_close(s);
	free(buf);
	return 0;
}

struct run {
	double secs;
	long maxrss_kb;
};

/*
 * Run argv in a child, stdout to `out` (or /dev/null); wall time and the
 * child's peak RSS from wait4.
 */
static int run_child(char *const argv[], const char *out, struct run *r)
{
	struct rusage ru;
	double t0 = now_s();
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(out ? out : "/dev/null",
			      O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0)
			dup2(fd, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		return -1;
	r->secs = now_s() - t0;
	r->maxrss_kb = ru.ru_maxrss;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

struct ingest {
	double mbs;	   /* whole upload: stage, hash, fsync, commit */
	double stream_mbs; /* stage writes + hashing only */
	double ssl_mbs;	   /* openssl dgst -sha256 of the same file */
	double dd_mbs;	   /* dd conv=fsync: the disk's durable write */
	long rss_kb;	   /* peak RSS of the ingesting process */
};

static int ingest_bench(const char *work, long mb, struct ingest *out)
{
	char input[512], store[512], times[512], ddarg[600], ddin[600];
	char *ssl_argv[] = { "openssl", "dgst", "-sha256", input, NULL };
	char *ing_argv[] = { "/proc/self/exe", "--ingest", store, input, NULL };
	char *dd_argv[] = { "dd",	  ddin,		 ddarg, "bs=1M",
			    "conv=fsync", "status=none", NULL };
	double best_ing = 1e30, best_ssl = 1e30, best_stream = 1e30;
	double best_dd = 1e30;
	struct run r;
	int round;

	snprintf(input, sizeof(input), "%s/input.bin", work);
	snprintf(times, sizeof(times), "%s/ingest.times", work);
	snprintf(ddin, sizeof(ddin), "if=%s", input);
	snprintf(ddarg, sizeof(ddarg), "of=%s/dd.out", work);
	if (make_input(input, mb)) {
		fprintf(stderr, "bench_core: cannot write %s\n", input);
		return -1;
	}
	out->rss_kb = 0;
	/* alternate the two, twice each; keep the best of each */
	for (round = 0; round < 2; round++) {
		FILE *fp;
		double a = 0, b = 0, c = 0;

		if (run_child(ssl_argv, NULL, &r))
			return -1;
		if (r.secs < best_ssl)
			best_ssl = r.secs;
		if (run_child(dd_argv, NULL, &r))
			return -1;
		if (r.secs < best_dd)
			best_dd = r.secs;
		unlink(ddarg + 3);
		snprintf(store, sizeof(store), "%s/ingest-%d", work, round);
		if (run_child(ing_argv, times, &r))
			return -1;
		if (r.maxrss_kb > out->rss_kb)
			out->rss_kb = r.maxrss_kb;
		fp = fopen(times, "r");
		if (!fp || fscanf(fp, "%lf %lf %lf", &a, &b, &c) != 3) {
			if (fp)
				fclose(fp);
			return -1;
		}
		fclose(fp);
		if (c - a < best_ing)
			best_ing = c - a;
		if (b - a < best_stream)
			best_stream = b - a;
		snprintf(times, sizeof(times), "rm -rf '%s'", store);
		if (system(times) != 0)
			return -1;
		snprintf(times, sizeof(times), "%s/ingest.times", work);
	}
	out->mbs = (double)mb * 1.048576 / best_ing;
	out->stream_mbs = (double)mb * 1.048576 / best_stream;
	out->ssl_mbs = (double)mb * 1.048576 / best_ssl;
	out->dd_mbs = (double)mb * 1.048576 / best_dd;
	unlink(input);
	unlink(times);
	return 0;
}

/* ---- main ------------------------------------------------------------- */

static const char *mark(int ok)
{
	return ok ? "ok" : "MISSED";
}

int main(int argc, char **argv)
{
	long n = env_long("SFS_BENCH_FILES", 1000000);
	long mb = env_long("SFS_BENCH_INGEST_MB", 1024);
	long ndirs = n / 100 < 10000 ? (n / 100 ? n / 100 : 1) : 10000;
	char work[] = "/tmp/sfs-bench-XXXXXX", store[600], cmd[700];
	struct sfs_store *s = NULL;
	struct sfs_actor a;
	struct sfs_err e;
	char tenant[SFS_ID_SIZE], user[SFS_ID_SIZE];
	struct lat dirq, tagq, nameq, fillq;
	double fill_rate, t0, fill_s, analyze_s = 0, index_s;
	struct ingest ing;
	const char *reuse;
	int on_pg, ing_ok = 0,
		   skip_ingest = getenv("SFS_BENCH_NO_INGEST") != NULL;

	if (argc == 4 && !strcmp(argv[1], "--ingest"))
		return ingest_child(argv[2], argv[3]);
	sfs_log_set_level(SFS_LOG_WARN);
	if (!mkdtemp(work)) {
		perror("mkdtemp");
		return 1;
	}
	sfs_err_init(&e);
	reuse = getenv("SFS_BENCH_STORE");
	if (reuse && *reuse) {
		/* a store kept by an earlier run: queries only */
		FILE *fp;

		snprintf(store, sizeof(store), "%s/bench-user", reuse);
		fp = fopen(store, "r");
		if (!fp || fscanf(fp, "%36s %ld", user, &n) != 2)
			die("SFS_BENCH_STORE has no bench-user file", NULL);
		fclose(fp);
		ndirs = n / 100 < 10000 ? (n / 100 ? n / 100 : 1) : 10000;
		snprintf(store, sizeof(store), "%s", reuse);
		if (sfs_store_open(store, NULL, &s, &e) ||
		    sfs_auth_user(s, user, SFS_SCOPE_ALL, &a, &e))
			die("reopen", &e);
		fill_rate = 0;
		fill_s = 0;
	} else {
		FILE *fp;

		struct sfs_config cfg;
		const char *url = getenv("SFS_BENCH_DB_URL");
		const char *schema = getenv("SFS_BENCH_DB_SCHEMA");

		snprintf(store, sizeof(store), "%s/store", work);
		sfs_config_init(&cfg);
		if (url && *url &&
		    (sfs_config_set(&cfg, "db.url", url, &e) ||
		     sfs_config_set(&cfg, "db.schema",
				    schema && *schema ? schema : "bench", &e)))
			die("SFS_BENCH_DB_URL", &e);
		if (sfs_store_init_cfg(store, &cfg, &e) ||
		    sfs_store_open(store, NULL, &s, &e) ||
		    sfs_tenant_create(s, "bench", 0, 0, tenant, &e) ||
		    sfs_user_create(s, tenant, "filler", -1, user, &e) ||
		    sfs_auth_user(s, user, SFS_SCOPE_ALL, &a, &e))
			die("setup", &e);
		/* SFS_BENCH_JANITOR=1: the fill with the janitor running, as
		 * in a daemon (it indexes the names as they come) */
		if (getenv("SFS_BENCH_JANITOR") && sfs_workers_start(s, 1, &e))
			die("workers", &e);
		t0 = now_s();
		fill_rate = fill(s, &a, n, ndirs);
		fill_s = now_s() - t0;
		sfs_workers_stop(s);
		/* statistics after the bulk load, as a deployment's
		 * autovacuum would have them (SFS_BENCH_NO_ANALYZE=1: the
		 * queries right after the fill, without) */
		t0 = now_s();
		if (!getenv("SFS_BENCH_NO_ANALYZE") && sfs_store_analyze(s, &e))
			die("analyze", &e);
		analyze_s = now_s() - t0;
		snprintf(cmd, sizeof(cmd), "%s/bench-user", store);
		fp = fopen(cmd, "w");
		if (fp) {
			fprintf(fp, "%s %ld\n", user, n);
			fclose(fp);
		}
	}
	on_pg = sfs_store_is_shared(s); /* a kept store says where it is */
	time_queries(s, &a, Q_DIR, n, ndirs, &dirq);
	time_queries(s, &a, Q_TAG, n, ndirs, &tagq);
	time_queries(s, &a, Q_NAME, n, ndirs, &fillq);
	t0 = now_s();
	if (sfsi_fts_catch_up(s, &e))
		die("index the names", &e);
	index_s = now_s() - t0;
	time_queries(s, &a, Q_NAME, n, ndirs, &nameq);
	sfs_store_close(s);

	memset(&ing, 0, sizeof(ing));
	if (!skip_ingest)
		ing_ok = ingest_bench(work, mb, &ing) == 0;

	printf("bench_core: %ld files in %ld directories, %d queries each, "
	       "%ld MiB ingest, metadata in %s\n",
	       n, ndirs, NQUERIES, mb, on_pg ? "PostgreSQL" : "SQLite");
	printf("  %-30s %12s %12s %10s  %s\n", "measure", "value", "baseline",
	       "ratio", "target");
	printf("  %-30s %10.0f/s %12s %10s  (%.1f s)\n", "fill (create_many)",
	       fill_rate, "-", "-", fill_s);
	printf("  %-30s %9.2f s %12s %10s  %s\n", "analyze after the fill",
	       analyze_s, "-", "-",
	       getenv("SFS_BENCH_NO_ANALYZE") ? "(skipped)" : "");
	printf("  %-30s %9.3f ms %9.2f ms %10s  p99 < 5 ms: %s\n",
	       "dir page p50 / p99", dirq.p50, dirq.p99, "-",
	       mark(dirq.p99 < 5));
	printf("  %-30s %9.3f ms %9.2f ms %10s  -\n",
	       "tag filter (/, rec.) p50 / p99", tagq.p50, tagq.p99, "-");
	printf("  %-30s %9.3f ms %9.2f ms %10s  (names not indexed yet)\n",
	       "name, just filled p50 / p99", fillq.p50, fillq.p99, "-");
	if (on_pg || fill_s == 0 || index_s < 0.01)
		printf("  %-30s %9.2f s %12s %10s  (%s)\n", "names indexed in",
		       index_s, "-", "-",
		       on_pg ? "pg_trgm: with the commits" : "none waited");
	else
		printf("  %-30s %9.2f s %12s %10s  (%.0f names/s)\n",
		       "names indexed in", index_s, "-", "-",
		       (double)n / index_s);
	printf("  %-30s %9.3f ms %9.2f ms %10s  p99 < 25 ms: %s\n",
	       "name substring p50 / p99", nameq.p50, nameq.p99, "-",
	       mark(nameq.p99 < 25));
	if (ing_ok) {
		printf("  %-30s %7.0f MB/s %7.0f MB/s %10.3f  >= 0.8: %s\n",
		       "ingest vs openssl sha256", ing.mbs, ing.ssl_mbs,
		       ing.mbs / ing.ssl_mbs,
		       mark(ing.mbs / ing.ssl_mbs >= 0.8));
		printf("  %-30s %7.0f MB/s %7.0f MB/s %10.2f  (before fsync "
		       "and commit)\n",
		       "  of it: stage write + hash", ing.stream_mbs,
		       ing.ssl_mbs, ing.stream_mbs / ing.ssl_mbs);
		printf("  %-30s %7.0f MB/s %7.0f MB/s %10.2f  (the disk's "
		       "ceiling)\n",
		       "ingest vs dd conv=fsync", ing.mbs, ing.dd_mbs,
		       ing.mbs / ing.dd_mbs);
		printf("  %-30s %9.1f MiB %12s %10s  < 32 MiB: %s\n",
		       "ingest peak RSS", (double)ing.rss_kb / 1024.0, "-", "-",
		       mark(ing.rss_kb < 32 * 1024));
	} else {
		printf("  %-30s %12s\n", "ingest",
		       skip_ingest ? "skipped" : "FAILED");
	}
	if (reuse && *reuse) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", work);
	} else if (getenv("SFS_BENCH_KEEP")) {
		printf("  store kept in %s\n", store);
	} else {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", work);
	}
	return ing_ok || skip_ingest ? 0 : 1;
}
