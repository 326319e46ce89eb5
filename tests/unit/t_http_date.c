/*
 * The daemon's HTTP dates as validators (httpd/parse.c): Last-Modified,
 * If-Modified-Since and If-Range stay exact when a file changes twice
 * within one second. Time is the project's test clock (an offset on
 * sfs_now_ms), never a sleep.
 */
#include <stdint.h>
#include <string.h>
#include "../../httpd/parse.h"
#include "speechfs/log.h"
#include "speechfs/util.h"
#include "testhelp.h"

/* A second boundary well ahead of the real clock, in ms. */
static int64_t S;

/* Set the test clock to ms (to within the few ms a test takes). */
static int64_t at(int64_t ms)
{
	sfs_set_clock_offset_ms(0);
	sfs_set_clock_offset_ms(ms - sfs_now_ms());
	return sfs_now_ms();
}

/* The Last-Modified the daemon sends now for mtime, "" for none. */
static const char *lm(int64_t mtime, char out[64])
{
	httpd_last_modified(mtime, sfs_now_ms(), out, 64);
	return out;
}

/* A date naming the second of t (what a client may make of Date:). */
static const char *date_of(int64_t t_ms, char out[64])
{
	/* the stamp of t - 1000 is t's own second */
	httpd_last_modified(t_ms - 1000, INT64_MAX, out, 64);
	return out;
}

static int ims(const char *d, int64_t mtime)
{
	return httpd_date_current(d, mtime, sfs_now_ms(), 0);
}

static int if_range(const char *d, int64_t mtime)
{
	return httpd_date_current(d, mtime, sfs_now_ms(), 1);
}

static void test_format_and_parse(void)
{
	char b[64];
	int64_t secs;

	/* RFC 9110's example, from a change half a second before it */
	httpd_last_modified(784111776500LL, INT64_MAX, b, sizeof(b));
	CHECK(strcmp(b, "Sun, 06 Nov 1994 08:49:37 GMT") == 0);
	CHECK(httpd_parse_date(b, &secs) == 0 && secs == 784111777);
	CHECK(httpd_parse_date("Thu, 01 Jan 1970 00:00:00 GMT", &secs) == 0 &&
	      secs == 0);
	CHECK(httpd_parse_date("Tue, 29 Feb 2028 23:59:59 GMT", &secs) == 0 &&
	      secs == 1835481599);
	/* other forms, wrong weekdays and days are not dates */
	CHECK(httpd_parse_date("Mon, 06 Nov 1994 08:49:37 GMT", &secs));
	CHECK(httpd_parse_date("Sun, 06 Nov 1994 08:49:37 UTC", &secs));
	CHECK(httpd_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", &secs));
	CHECK(httpd_parse_date("Sun Nov  6 08:49:37 1994", &secs));
	CHECK(httpd_parse_date("Sat, 30 Feb 2030 00:00:00 GMT", &secs));
	CHECK(httpd_parse_date("Sun, 06 Nov 1994 24:00:00 GMT", &secs));
	CHECK(httpd_parse_date("Sun, 06 Nox 1994 08:49:37 GMT", &secs));
	CHECK(httpd_parse_date("Sun, 06 Nov 1994 08:49:37 GMT ", &secs));
	CHECK(httpd_parse_date("", &secs));
	CHECK(httpd_parse_date(NULL, &secs));
	/* every day of four years round-trips */
	for (secs = 1767225600; secs < 1767225600 + 4 * 366 * 86400;
	     secs += 86400 + 3601) {
		int64_t back;

		httpd_last_modified((secs - 1) * 1000, INT64_MAX, b, sizeof(b));
		CHECK(httpd_parse_date(b, &back) == 0 && back == secs);
	}
}

/*
 * A file written at S + 0.1 s and again at S + 0.2 s: a client that
 * took a copy in between and dates it S (the Date: of that answer) must
 * not be told its copy is current.
 */
static void test_two_changes_in_a_second(void)
{
	char d[64], b[64];
	int64_t m1 = S + 100, m2 = S + 200;

	/* the checks within a second come early in it: a loaded machine
	 * may stall a test for a while between setting and reading */
	at(S + 150);
	/* no Last-Modified while the second of the change lasts */
	CHECK(lm(m1, b)[0] == '\0');
	date_of(sfs_now_ms(), d);
	CHECK(!ims(d, m1)); /* weak: the second is not over */
	at(S + 250);
	CHECK(!ims(d, m2));
	CHECK(!if_range(d, m2));
	at(S + 5000);
	CHECK(!ims(d, m2));
	CHECK(!if_range(d, m2));
	/* the stamp of the second change is its own */
	lm(m2, b);
	CHECK(strcmp(b, date_of(S + 1000, d)) == 0);
	CHECK(ims(b, m2));
	CHECK(if_range(b, m2));
}

/*
 * The Last-Modified a client holds, then a change in the very second
 * that date names: neither a 304 nor a range of the new bytes.
 */
static void test_change_in_the_stamps_second(void)
{
	char held[64], b[64];
	int64_t m1 = S + 100, m2;

	at(S + 1050);
	REQUIRE(lm(m1, held)[0]); /* "S + 1 s" */
	CHECK(ims(held, m1));
	CHECK(if_range(held, m1));
	m2 = at(S + 1100); /* overwritten within the second of the stamp */
	at(S + 1150);
	CHECK(!ims(held, m2));
	CHECK(!if_range(held, m2));
	CHECK(lm(m2, b)[0] == '\0');
	at(S + 2100);
	CHECK(!ims(held, m2));
	CHECK(!if_range(held, m2));
	lm(m2, b);
	CHECK(b[0] && strcmp(b, held) != 0);
	CHECK(ims(b, m2) && if_range(b, m2));
	/* unchanged: any later date is current for If-Modified-Since, only
	 * the Last-Modified itself for If-Range; never a future date */
	at(S + 9500);
	CHECK(ims(date_of(S + 5000, b), m2));
	CHECK(!if_range(b, m2));
	CHECK(!ims(date_of(S + 10500, b), m2));
	CHECK(!ims(date_of(S - 5000, b), m2));
	CHECK(!ims("yesterday", m2));
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	S = (sfs_now_ms() / 1000 + 100) * 1000;
	RUN(test_format_and_parse);
	RUN(test_two_changes_in_a_second);
	RUN(test_change_in_the_stamps_second);
	sfs_set_clock_offset_ms(0);
	return th_report();
}
