/* Unit tests of virtual paths: validation, UTF-8, parent/base/under. */
#include <string.h>
#include "speechfs/vpath.h"
#include "testhelp.h"

static int path_ok(const char *p)
{
	struct sfs_err e;

	sfs_err_init(&e);
	return sfs_vpath_check(p, "path", &e) == SFS_OK && e.nfields == 0;
}

/* The field error type of a rejected path, "" when it was accepted. */
static const char *path_err(const char *p, struct sfs_err *e)
{
	sfs_err_init(e);
	if (sfs_vpath_check(p, "path", e) == SFS_OK)
		return "";
	return e->nfields ? e->fields[0].type : "?";
}

static void test_valid_paths(void)
{
	CHECK(path_ok("/"));
	CHECK(path_ok("/a/"));
	CHECK(path_ok("/a/b/c/"));
	CHECK(path_ok("/archived/2026/"));
	CHECK(path_ok("/with space/"));
	CHECK(path_ok("/.hidden/"));
	CHECK(path_ok("/.../"));
	CHECK(path_ok("/a.b/"));
	CHECK(path_ok("/caf\xc3\xa9/"));	      /* é */
	CHECK(path_ok("/\xe6\x97\xa5\xe6\x9c\xac/")); /* 日本 */
	CHECK(path_ok("/\xf0\x9f\x8e\xa4/"));	      /* U+1F3A4 */
	CHECK(path_ok("/\xf4\x8f\xbf\xbf/"));	      /* U+10FFFF */
}

static void test_invalid_paths(void)
{
	struct sfs_err e;

	CHECK(!strcmp(path_err("", &e), "invalid"));
	CHECK(!strcmp(path_err("a/", &e), "invalid"));
	CHECK(!strcmp(path_err("/a", &e), "invalid"));
	CHECK(!strcmp(path_err("a", &e), "invalid"));
	CHECK(!strcmp(path_err("//", &e), "invalid"));
	CHECK(!strcmp(path_err("/a//b/", &e), "invalid"));
	CHECK(!strcmp(path_err("/./", &e), "invalid"));
	CHECK(!strcmp(path_err("/../", &e), "invalid"));
	CHECK(!strcmp(path_err("/a/../b/", &e), "invalid"));
	CHECK(!strcmp(path_err("/a/./", &e), "invalid"));
	CHECK(!strcmp(path_err("/a\tb/", &e), "invalid"));
	CHECK(!strcmp(path_err("/a\nb/", &e), "invalid"));
	CHECK(!strcmp(path_err("/a\x7f/", &e), "invalid"));
	CHECK(!strcmp(path_err("/\x01/", &e), "invalid"));
	CHECK(!strcmp(path_err(NULL, &e), "missing"));
	CHECK_ST(e.status, SFS_INVALID);
}

static void test_invalid_utf8(void)
{
	struct sfs_err e;

	CHECK(!strcmp(path_err("/\xff/", &e), "invalid"));
	CHECK(!strcmp(path_err("/\xc3/", &e), "invalid"));     /* truncated */
	CHECK(!strcmp(path_err("/\xc0\xaf/", &e), "invalid")); /* overlong */
	CHECK(!strcmp(path_err("/\xe0\x80\xaf/", &e), "invalid"));
	CHECK(!strcmp(path_err("/\xf0\x80\x80\xaf/", &e), "invalid"));
	CHECK(!strcmp(path_err("/\xed\xa0\x80/", &e), "invalid")); /* D800 */
	CHECK(!strcmp(path_err("/\xed\xbf\xbf/", &e), "invalid")); /* DFFF */
	CHECK(!strcmp(path_err("/\xf4\x90\x80\x80/", &e), "invalid"));
	CHECK(!strcmp(path_err("/\xf8\x88\x80\x80\x80/", &e), "invalid"));
	CHECK(!strcmp(path_err("/\x80/", &e), "invalid")); /* lone cont */

	CHECK(sfs_utf8_valid("", 0));
	CHECK(sfs_utf8_valid("abc", 3));
	CHECK(sfs_utf8_valid("\xed\x9f\xbf", 3)); /* U+D7FF */
	CHECK(sfs_utf8_valid("\xee\x80\x80", 3)); /* U+E000 */
	CHECK(!sfs_utf8_valid("\xe2\x82", 2));
	CHECK(!sfs_utf8_valid("\xe2\x82\xac", 2)); /* cut by len */
	CHECK(sfs_utf8_valid("\xe2\x82\xac", 3));  /* euro */
	CHECK(!sfs_utf8_valid("\xc1\xbf", 2));
}

static void test_limits(void)
{
	char p[SFS_VPATH_MAX + 64];
	struct sfs_err e;
	size_t i, n;

	/* a segment of exactly SFS_SEGMENT_MAX bytes, then one more */
	p[0] = '/';
	memset(p + 1, 'x', SFS_SEGMENT_MAX);
	p[SFS_SEGMENT_MAX + 1] = '/';
	p[SFS_SEGMENT_MAX + 2] = '\0';
	CHECK(path_ok(p));
	memset(p + 1, 'x', SFS_SEGMENT_MAX + 1);
	p[SFS_SEGMENT_MAX + 2] = '/';
	p[SFS_SEGMENT_MAX + 3] = '\0';
	CHECK(!strcmp(path_err(p, &e), "too_long"));
	CHECK(!strcmp(e.fields[0].field, "path"));

	/* depth: SFS_VPATH_DEPTH segments pass, one more fails */
	n = 0;
	p[n++] = '/';
	for (i = 0; i < SFS_VPATH_DEPTH; i++) {
		p[n++] = 'd';
		p[n++] = '/';
	}
	p[n] = '\0';
	CHECK(path_ok(p));
	p[n++] = 'd';
	p[n++] = '/';
	p[n] = '\0';
	CHECK(!strcmp(path_err(p, &e), "too_long"));

	/* total length: exactly SFS_VPATH_MAX passes, +1 fails */
	n = 0;
	p[n++] = '/';
	while (SFS_VPATH_MAX - n > 101) {
		memset(p + n, 'z', 100);
		n += 100;
		p[n++] = '/';
	}
	memset(p + n, 'y', SFS_VPATH_MAX - n - 1);
	n = SFS_VPATH_MAX - 1;
	p[n++] = '/';
	p[n] = '\0';
	CHECK(strlen(p) == SFS_VPATH_MAX);
	CHECK(path_ok(p));
	p[n - 1] = 'z';
	p[n++] = '/';
	p[n] = '\0';
	CHECK(strlen(p) == SFS_VPATH_MAX + 1);
	CHECK(!strcmp(path_err(p, &e), "too_long"));
}

static void test_segment_check(void)
{
	struct sfs_err e;

	sfs_err_init(&e);
	CHECK_ST(sfs_segment_check("abc", 3, "name", &e), SFS_OK);
	CHECK_ST(sfs_segment_check("a/b", 3, "name", &e), SFS_INVALID);
	CHECK(!strcmp(e.fields[0].field, "name"));
	CHECK_ST(sfs_segment_check("", 0, "name", NULL), SFS_INVALID);
	CHECK_ST(sfs_segment_check(".", 1, "name", NULL), SFS_INVALID);
	CHECK_ST(sfs_segment_check("..", 2, "name", NULL), SFS_INVALID);
	CHECK_ST(sfs_segment_check("...", 3, "name", NULL), SFS_OK);
	CHECK_ST(sfs_segment_check("a\0b", 3, "name", NULL), SFS_INVALID);
	CHECK_ST(sfs_segment_check("\xfe", 1, "name", NULL), SFS_INVALID);
	/* only len bytes count */
	CHECK_ST(sfs_segment_check("ab/", 2, "name", NULL), SFS_OK);
}

static void test_norm(void)
{
	struct sfs_buf b = SFS_BUF_INIT(4096);
	struct sfs_err e;

	sfs_err_init(&e);
	CHECK_ST(sfs_vpath_norm("/a/b/", "path", &b, &e), SFS_OK);
	CHECK(!strcmp(b.buf, "/a/b/"));
	sfs_err_init(&e);
	CHECK_ST(sfs_vpath_norm("/a/b", "dest", &b, &e), SFS_INVALID);
	CHECK(b.len == 0);
	CHECK(e.nfields == 1 && !strcmp(e.fields[0].field, "dest"));
	CHECK(e.reason == SFS_R_INVALID_REQUEST);
	sfs_buf_release(&b);
}

static void test_parent_base(void)
{
	struct sfs_buf b = SFS_BUF_INIT(4096);
	const char *p;
	size_t n;

	CHECK_ST(sfs_vpath_parent("/a/b/", &b), SFS_OK);
	CHECK(!strcmp(b.buf, "/a/"));
	CHECK_ST(sfs_vpath_parent("/a/", &b), SFS_OK);
	CHECK(!strcmp(b.buf, "/"));
	CHECK_ST(sfs_vpath_parent("/", &b), SFS_OK);
	CHECK(!strcmp(b.buf, "/"));
	CHECK_ST(sfs_vpath_parent("/x/yy/zzz/", &b), SFS_OK);
	CHECK(!strcmp(b.buf, "/x/yy/"));
	CHECK_ST(sfs_vpath_parent("rel/", &b), SFS_INVALID);
	sfs_buf_release(&b);

	p = sfs_vpath_base("/a/bcd/", &n);
	CHECK(n == 3 && !strncmp(p, "bcd", 3));
	p = sfs_vpath_base("/a/", &n);
	CHECK(n == 1 && p[0] == 'a');
	p = sfs_vpath_base("/", &n);
	CHECK(n == 0);
}

static void test_under(void)
{
	CHECK(sfs_vpath_under("/a/b/", "/a/"));
	CHECK(sfs_vpath_under("/a/", "/a/"));
	CHECK(sfs_vpath_under("/a/", "/"));
	CHECK(sfs_vpath_under("/", "/"));
	CHECK(!sfs_vpath_under("/ab/", "/a/"));
	CHECK(!sfs_vpath_under("/a/", "/a/b/"));
	CHECK(!sfs_vpath_under("/b/a/", "/a/"));
	CHECK(sfs_vpath_under("/a/b/", "/a"));
	CHECK(!sfs_vpath_under("/ab/", "/a"));
}

int main(void)
{
	RUN(test_valid_paths);
	RUN(test_invalid_paths);
	RUN(test_invalid_utf8);
	RUN(test_limits);
	RUN(test_segment_check);
	RUN(test_norm);
	RUN(test_parent_base);
	RUN(test_under);
	return th_report();
}
