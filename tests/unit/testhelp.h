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
#include <unistd.h>

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

#define RUN(fn)                                                                \
	do {                                                                   \
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

static inline int th_report(void)
{
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

#endif
