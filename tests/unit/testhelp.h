/*
 * A tiny test harness: CHECK records a failure and goes on, REQUIRE stops
 * the test function; each binary ends with "N passed, M failed" and exits
 * non-zero on failure. Helpers make a fresh temporary store per test.
 */
#ifndef SPEECHFS_TESTHELP_H
#define SPEECHFS_TESTHELP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "speechfs/store.h"

static int th_passed __attribute__((unused));
static int th_failed __attribute__((unused));
static int th_cur_failed __attribute__((unused));
static const char *th_name __attribute__((unused));

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: %s: check failed: %s\n",       \
				__FILE__, __LINE__, th_name, #cond);           \
			th_cur_failed = 1;                                     \
		}                                                              \
	} while (0)

#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: %s: required: %s\n", __FILE__, \
				__LINE__, th_name, #cond);                     \
			th_cur_failed = 1;                                     \
			return;                                                \
		}                                                              \
	} while (0)

/* CHECK that a status expression equals an expected status. */
#define CHECK_ST(expr, want)                                                   \
	do {                                                                   \
		int th_got_ = (int)(expr);                                     \
		if (th_got_ != (int)(want)) {                                  \
			fprintf(stderr, "%s:%d: %s: %s = %d, want %d\n",       \
				__FILE__, __LINE__, th_name, #expr, th_got_,   \
				(int)(want));                                  \
			th_cur_failed = 1;                                     \
		}                                                              \
	} while (0)

#define REQUIRE_ST(expr, want)                                                 \
	do {                                                                   \
		int th_got_ = (int)(expr);                                     \
		if (th_got_ != (int)(want)) {                                  \
			fprintf(stderr, "%s:%d: %s: %s = %d, want %d\n",       \
				__FILE__, __LINE__, th_name, #expr, th_got_,   \
				(int)(want));                                  \
			th_cur_failed = 1;                                     \
			return;                                                \
		}                                                              \
	} while (0)

/*
 * How many times slower than a quiet machine the binary runs
 * (SFS_UNIT_SLOW, a whole factor; tests/test_unit.py sets it under
 * valgrind): a length of time a test must hold by the wall clock, such as
 * a lease that another thread keeps alive, is scaled by it, so that a
 * thread slowed that much still meets it.
 */
static inline int th_slow(void)
{
	const char *v = getenv("SFS_UNIT_SLOW");
	long n = v ? strtol(v, NULL, 10) : 1;

	return n > 0 && n < 1000 ? (int)n : 1;
}

/* SFS_UNIT_ONLY=NAME runs only the test NAME of a binary (chasing one). */
static inline int th_skipped(const char *fn)
{
	const char *only = getenv("SFS_UNIT_ONLY");

	return only && only[0] && strcmp(only, fn) != 0;
}

#define RUN(fn)                                                                \
	do {                                                                   \
		if (th_skipped(#fn))                                           \
			break;                                                 \
		th_name = #fn;                                                 \
		th_cur_failed = 0;                                             \
		fn();                                                          \
		if (th_cur_failed)                                             \
			th_failed++;                                           \
		else                                                           \
			th_passed++;                                           \
		fprintf(stderr, "%s %s\n", th_cur_failed ? "FAIL" : "ok",      \
			#fn);                                                  \
	} while (0)

/* (SFS_UNIT_ONLY naming no test of the binary fails: it tested nothing) */
static inline int th_report(void)
{
	const char *only = getenv("SFS_UNIT_ONLY");

	if (only && only[0] && !th_passed && !th_failed) {
		fprintf(stderr, "SFS_UNIT_ONLY=%s: no such test here\n", only);
		th_failed = 1;
	}
	printf("%d passed, %d failed\n", th_passed, th_failed);
	return th_failed ? 1 : 0;
}

/* A fresh temporary directory; removed by th_rmrf at the end of a test. */
static inline char *th_tmpdir(void)
{
	char tmpl[] = "/tmp/sfs-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (!d) {
		perror("mkdtemp");
		exit(2);
	}
	return strdup(d);
}

static inline void th_rmrf(char *dir)
{
	char cmd[512];

	if (!dir)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(dir);
}

/*
 * The blob backend under test. tests/test_unit.py runs a binary whose
 * source names SFS_BLOB_BACKEND once per backend: local, and s3 against
 * the run's Ceph RADOS Gateway (SFS_S3_* in the environment, from
 * tests/rgw.py). th_blob_setup() at the start of main; th_blob_config()
 * on the configuration of each new store, which records its bucket and a
 * prefix of its own; stores opened later without a configuration follow
 * that record and find the credentials in AWS_*, as a deployment might.
 */
static inline int th_is_s3(void)
{
	const char *be = getenv("SFS_BLOB_BACKEND");

	return be && !strcmp(be, "s3");
}

/* (read from the environment: every file of a test binary agrees) */
#define th_s3 th_is_s3()

static inline int th_blob_setup(void)
{
	if (!th_s3)
		return 0;
	if (!getenv("SFS_S3_ENDPOINT") || !getenv("SFS_S3_BUCKET") ||
	    !getenv("SFS_S3_ACCESS_KEY") || !getenv("SFS_S3_SECRET_KEY")) {
		fprintf(stderr, "SFS_BLOB_BACKEND=s3 needs SFS_S3_ENDPOINT, "
				"SFS_S3_BUCKET and the keys (tests/rgw.py)\n");
		printf("0 passed, 1 failed\n");
		return -1;
	}
	setenv("AWS_ACCESS_KEY_ID", getenv("SFS_S3_ACCESS_KEY"), 1);
	setenv("AWS_SECRET_ACCESS_KEY", getenv("SFS_S3_SECRET_KEY"), 1);
	setenv("AWS_REGION",
	       getenv("SFS_S3_REGION") ? getenv("SFS_S3_REGION") : "us-east-1",
	       1);
	return 0;
}

static inline int th_blob_config(struct sfs_config *c)
{
	static int serial;
	char prefix[128];

	if (!th_s3)
		return 0;
	snprintf(prefix, sizeof(prefix), "unit/%d-%ld-%d/", (int)getpid(),
		 (long)time(NULL), ++serial);
	return sfs_config_set(c, "blob.backend", "s3", NULL) ||
	       sfs_config_set(c, "blob.s3.endpoint", getenv("SFS_S3_ENDPOINT"),
			      NULL) ||
	       sfs_config_set(c, "blob.s3.bucket", getenv("SFS_S3_BUCKET"),
			      NULL) ||
	       sfs_config_set(c, "blob.s3.prefix", prefix, NULL);
}

/*
 * The metadata backend under test. tests/test_unit.py runs the binaries
 * of its PG_UNIT list a second time with SFS_DB_URL, a fresh database of
 * the run's PostgreSQL server (tests/pg.py): each new store then gets a
 * schema of its own there (db.schema), so the stores of one binary stay
 * apart as their directories do.
 */
static inline int th_db_config(struct sfs_config *c)
{
	static int serial;
	const char *url = getenv("SFS_DB_URL");
	struct timespec now;
	char schema[64];

	if (!url || !url[0])
		return 0;
	/*
	 * With a clock reading: a binary looped (SFS_UNIT_REPEAT) works in
	 * one database, and pids come round again (pid_max is 32768 here)
	 */
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(schema, sizeof(schema), "t_%d_%d_%ld_%ld", (int)getpid(),
		 ++serial, (long)now.tv_sec, now.tv_nsec);
	return sfs_config_set(c, "db.url", url, NULL) ||
	       sfs_config_set(c, "db.schema", schema, NULL);
}

/* Whether the stores of this run keep their metadata in PostgreSQL. */
static inline int th_is_pg(void)
{
	const char *url = getenv("SFS_DB_URL");

	return url && url[0];
}

#endif
