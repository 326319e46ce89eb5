/*
 * Tests of struct sfs_buf (speechfs/buf.h), the one growable buffer: it is
 * never NULL and always NUL-terminated; it grows as appends need and keeps
 * what it grew to across a reset; its hard maximum refuses an append whole
 * (SFS_TOO_LARGE, the buffer untouched) and cannot be got round by sizes
 * that overflow; detach hands over the bytes and leaves an empty buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include "speechfs/buf.h"
#include "speechfs/log.h"
#include "testhelp.h"

/* The invariant every state of a buffer keeps. */
static int sane(const struct sfs_buf *b)
{
	return b->buf != NULL && b->buf[b->len] == '\0' &&
	       (b->alloc == 0 ? b->buf == sfs_buf_empty && b->len == 0
			      : b->len < b->alloc) &&
	       b->len <= b->max;
}

static void test_empty(void)
{
	struct sfs_buf a = SFS_BUF_INIT(0), b = SFS_BUF_INIT(100), c;
	size_t len = 7;
	char *s;

	CHECK(sane(&a) && !strcmp(a.buf, "") && a.len == 0);
	CHECK(a.max == (size_t)1 << 30); /* 0: the default maximum */
	CHECK(sane(&b) && b.max == 100);
	sfs_buf_init(&c, 0);
	CHECK(sane(&c) && c.max == (size_t)1 << 30);
	/* nothing allocated: release, reset and detach all work */
	sfs_buf_reset(&c);
	CHECK(sane(&c));
	sfs_buf_release(&c);
	sfs_buf_release(&c);
	CHECK(sane(&c) && c.max == (size_t)1 << 30);
	s = sfs_buf_detach(&c, &len);
	REQUIRE(s != NULL);
	CHECK(len == 0 && !strcmp(s, ""));
	CHECK(s != sfs_buf_empty); /* the caller's to free */
	free(s);
	CHECK(sane(&c));
	/* empty appends allocate nothing wrong */
	CHECK_ST(sfs_buf_add(&b, NULL, 0), SFS_OK);
	CHECK_ST(sfs_buf_adds(&b, ""), SFS_OK);
	CHECK_ST(sfs_buf_addf(&b, "%s", ""), SFS_OK);
	CHECK(sane(&b) && b.len == 0);
	sfs_buf_release(&b);
	sfs_buf_release(&a);
}

static void test_appends(void)
{
	struct sfs_buf b = SFS_BUF_INIT(0);
	char big[5000];

	CHECK_ST(sfs_buf_adds(&b, "speech"), SFS_OK);
	CHECK_ST(sfs_buf_addch(&b, '/'), SFS_OK);
	CHECK_ST(sfs_buf_add(&b, "fs and more", 2), SFS_OK);
	CHECK_ST(sfs_buf_addf(&b, " %d-%s-%c", 42, "x", 'y'), SFS_OK);
	CHECK(sane(&b) && b.len == 16 && !strcmp(b.buf, "speech/fs 42-x-y"));
	/* bytes, NULs among them, are kept as they are */
	CHECK_ST(sfs_buf_add(&b, "a\0b", 3), SFS_OK);
	CHECK(b.len == 19 && !memcmp(b.buf + 16, "a\0b", 4));
	/* a format longer than anything allocated so far */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sfs_buf_reset(&b);
	CHECK_ST(sfs_buf_addf(&b, "<%s>", big), SFS_OK);
	CHECK(sane(&b) && b.len == sizeof(big) + 1);
	CHECK(b.buf[0] == '<' && b.buf[b.len - 1] == '>');
	CHECK(!memcmp(b.buf + 1, big, sizeof(big) - 1));
	sfs_buf_release(&b);
}

/* Growth keeps every byte, amortised: few reallocations, no waste. */
static void test_growth(void)
{
	struct sfs_buf b = SFS_BUF_INIT(0);
	size_t i, moves = 0;
	const char *was;
	char *p;

	for (i = 0; i < 100000; i++) {
		was = b.buf;
		if (sfs_buf_addch(&b, (char)('a' + i % 26)))
			break;
		moves += b.buf != was;
	}
	CHECK(i == 100000 && sane(&b) && b.len == 100000);
	for (i = 0; i < b.len && b.buf[i] == (char)('a' + i % 26); i++)
		;
	CHECK(i == 100000);
	CHECK(moves < 40);
	CHECK(b.alloc < 2 * b.len + 64);
	/* grow makes room ahead: the appends that follow do not move it */
	sfs_buf_release(&b);
	REQUIRE_ST(sfs_buf_grow(&b, 3000), SFS_OK);
	CHECK(sane(&b) && b.len == 0 && b.alloc > 3000);
	p = b.buf;
	for (i = 0; i < 30; i++)
		CHECK_ST(sfs_buf_add(&b,
				     "0123456789"
				     "0123456789"
				     "0123456789"
				     "0123456789"
				     "0123456789"
				     "0123456789"
				     "0123456789"
				     "0123456789"
				     "0123456789"
				     "0123456789",
				     100),
			 SFS_OK);
	CHECK(b.buf == p && b.len == 3000 && sane(&b));
	sfs_buf_release(&b);
}

/* The maximum: appends up to it succeed, past it fail whole. */
static void test_maximum(void)
{
	struct sfs_buf b = SFS_BUF_INIT(10);
	char *s;

	CHECK_ST(sfs_buf_adds(&b, "0123456"), SFS_OK);
	CHECK_ST(sfs_buf_adds(&b, "7890"), SFS_TOO_LARGE);
	CHECK(sane(&b) && b.len == 7 && !strcmp(b.buf, "0123456"));
	CHECK_ST(sfs_buf_addf(&b, "%d", 1234), SFS_TOO_LARGE);
	CHECK(sane(&b) && b.len == 7 && !strcmp(b.buf, "0123456"));
	CHECK_ST(sfs_buf_adds(&b, "789"), SFS_OK);
	CHECK(sane(&b) && b.len == 10 && !strcmp(b.buf, "0123456789"));
	CHECK_ST(sfs_buf_addch(&b, 'x'), SFS_TOO_LARGE);
	CHECK_ST(sfs_buf_grow(&b, 1), SFS_TOO_LARGE);
	CHECK_ST(sfs_buf_add(&b, "", 0), SFS_OK);
	CHECK(sane(&b) && b.len == 10);
	/* a reset frees room under the same maximum */
	sfs_buf_reset(&b);
	CHECK_ST(sfs_buf_grow(&b, 10), SFS_OK);
	CHECK_ST(sfs_buf_grow(&b, 11), SFS_TOO_LARGE);
	CHECK_ST(sfs_buf_addf(&b, "%010d", 7), SFS_OK);
	CHECK(!strcmp(b.buf, "0000000007"));
	/* detach and release keep the maximum for what comes next */
	s = sfs_buf_detach(&b, NULL);
	free(s);
	CHECK(b.max == 10);
	CHECK_ST(sfs_buf_adds(&b, "01234567890"), SFS_TOO_LARGE);
	CHECK(sane(&b) && b.len == 0);
	sfs_buf_release(&b);
	CHECK(b.max == 10);
}

/*
 * Sizes near SIZE_MAX: a length plus its NUL must not wrap round to a
 * small number and pass as room that is there.
 */
static void test_overflow(void)
{
	struct sfs_buf b;

	sfs_buf_init(&b, SIZE_MAX);
	CHECK_ST(sfs_buf_grow(&b, SIZE_MAX), SFS_TOO_LARGE);
	CHECK(sane(&b));
	REQUIRE_ST(sfs_buf_adds(&b, "abc"), SFS_OK);
	CHECK_ST(sfs_buf_grow(&b, SIZE_MAX - 3), SFS_TOO_LARGE);
	CHECK_ST(sfs_buf_grow(&b, SIZE_MAX - 1), SFS_TOO_LARGE);
	CHECK_ST(sfs_buf_grow(&b, SIZE_MAX), SFS_TOO_LARGE);
	CHECK(sane(&b) && !strcmp(b.buf, "abc"));
	sfs_buf_release(&b);
	sfs_buf_init(&b, 100);
	CHECK_ST(sfs_buf_grow(&b, SIZE_MAX), SFS_TOO_LARGE);
	REQUIRE_ST(sfs_buf_adds(&b, "abc"), SFS_OK);
	CHECK_ST(sfs_buf_grow(&b, SIZE_MAX - 1), SFS_TOO_LARGE);
	CHECK(sane(&b) && b.len == 3);
	sfs_buf_release(&b);
}

static void test_detach(void)
{
	struct sfs_buf b = SFS_BUF_INIT(0);
	size_t len = 0;
	char *s, *t;

	REQUIRE_ST(sfs_buf_adds(&b, "keep me"), SFS_OK);
	s = sfs_buf_detach(&b, &len);
	REQUIRE(s != NULL);
	CHECK(len == 7 && !strcmp(s, "keep me"));
	/* the buffer is empty and usable again, and owns nothing of s */
	CHECK(sane(&b) && b.len == 0 && b.alloc == 0);
	REQUIRE_ST(sfs_buf_adds(&b, "next"), SFS_OK);
	CHECK(b.buf != s && !strcmp(s, "keep me"));
	t = sfs_buf_detach(&b, NULL);
	CHECK(t && !strcmp(t, "next"));
	free(s);
	free(t);
	sfs_buf_release(&b);
}

/* A reset empties the buffer and keeps its memory; release frees it. */
static void test_reset_release(void)
{
	struct sfs_buf b = SFS_BUF_INIT(0);
	size_t alloc;
	char *p;

	REQUIRE_ST(sfs_buf_addf(&b, "%0500d", 1), SFS_OK);
	alloc = b.alloc;
	p = b.buf;
	sfs_buf_reset(&b);
	CHECK(sane(&b) && b.len == 0 && !strcmp(b.buf, ""));
	CHECK(b.alloc == alloc && b.buf == p);
	REQUIRE_ST(sfs_buf_adds(&b, "again"), SFS_OK);
	CHECK(b.buf == p && !strcmp(b.buf, "again"));
	sfs_buf_release(&b);
	CHECK(sane(&b) && b.alloc == 0 && b.buf == sfs_buf_empty);
	CHECK(b.max == (size_t)1 << 30);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_empty);
	RUN(test_appends);
	RUN(test_growth);
	RUN(test_maximum);
	RUN(test_overflow);
	RUN(test_detach);
	RUN(test_reset_release);
	return th_report();
}
