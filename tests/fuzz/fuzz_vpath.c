/*
 * libFuzzer target: virtual paths (core/vpath.c), the one validator every
 * path of the API and the mount passes. Checked on every path taken: it
 * normalises to itself, starts and ends with '/', has no empty, "." or
 * ".." segment and no control character, is UTF-8, stays within the
 * length and depth bounds; its parent is a valid path that it is under,
 * and its base is a valid segment.
 */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "speechfs/vpath.h"

static void valid_shape(const char *p)
{
	size_t n = strlen(p), depth = 0, i;

	if (n < 1 || n > SFS_VPATH_MAX || p[0] != '/' || p[n - 1] != '/')
		abort();
	if (!sfs_utf8_valid(p, n) || strstr(p, "//") || strstr(p, "/./") ||
	    strstr(p, "/../"))
		abort();
	for (i = 0; i < n; i++) {
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			abort();
		depth += p[i] == '/';
	}
	if (depth - 1 > SFS_VPATH_DEPTH)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sfs_buf a = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	struct sfs_buf b = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	struct sfs_buf parent = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	char *s = fz_string(data, size);
	const char *base;
	struct sfs_err e;
	size_t blen;

	sfs_err_init(&e);
	if (sfs_vpath_norm(s, "path", &a, &e) == SFS_OK) {
		valid_shape(a.buf);
		if (sfs_vpath_check(a.buf, "path", NULL) ||
		    sfs_vpath_norm(a.buf, "path", &b, NULL) ||
		    strcmp(a.buf, b.buf))
			abort(); /* normal form is stable */
		if (sfs_vpath_parent(a.buf, &parent) ||
		    sfs_vpath_check(parent.buf, "path", NULL) ||
		    !sfs_vpath_under(a.buf, parent.buf))
			abort();
		base = sfs_vpath_base(a.buf, &blen);
		if (strcmp(a.buf, "/") &&
		    sfs_segment_check(base, blen, "name", NULL))
			abort();
	} else if (e.status != SFS_INVALID || !e.message[0]) {
		abort();
	}
	/* checking in place agrees with normalising */
	if ((sfs_vpath_check(s, "path", NULL) == SFS_OK) &&
	    sfs_vpath_norm(s, "path", &b, NULL) != SFS_OK)
		abort();
	sfs_buf_release(&a);
	sfs_buf_release(&b);
	sfs_buf_release(&parent);
	free(s);
	return 0;
}
