/*
 * Virtual directory paths: the single validator every path of the API and
 * the mount goes through, a strict UTF-8 check, and the parent / base /
 * prefix helpers that work on already valid paths.
 */
#include <string.h>
#include "speechfs/vpath.h"
#include "util_i.h"

int sfs_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned c = p[i];
		unsigned cp, min;
		size_t n, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff)
			return 0;
		if (cp >= 0xd800 && cp <= 0xdfff)
			return 0;
		i += n + 1;
	}
	return 1;
}

static int has_control(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return 1;
	}
	return 0;
}

enum sfs_status sfs_segment_check(const char *seg, size_t len,
				  const char *field, struct sfs_err *e)
{
	if (!seg || !len)
		return sfs_err_field(e, field, "invalid", "empty path segment");
	if (len > SFS_SEGMENT_MAX)
		return sfs_err_field(e, field, "too_long",
				     "a path segment is longer than %d bytes",
				     SFS_SEGMENT_MAX);
	if ((len == 1 && seg[0] == '.') ||
	    (len == 2 && seg[0] == '.' && seg[1] == '.'))
		return sfs_err_field(e, field, "invalid",
				     "'.' and '..' are not allowed");
	if (memchr(seg, '/', len))
		return sfs_err_field(e, field, "invalid",
				     "a name may not contain '/'");
	if (has_control(seg, len))
		return sfs_err_field(e, field, "invalid",
				     "control characters are not allowed");
	if (!sfs_utf8_valid(seg, len))
		return sfs_err_field(e, field, "invalid", "not valid UTF-8");
	return SFS_OK;
}

enum sfs_status sfs_vpath_check(const char *in, const char *field,
				struct sfs_err *e)
{
	size_t len, i, start, depth = 0;
	enum sfs_status st;

	if (!in)
		return sfs_err_field(e, field, "missing", "a path is required");
	len = strlen(in);
	if (!len)
		return sfs_err_field(e, field, "invalid",
				     "must start and end with '/'");
	if (len > SFS_VPATH_MAX)
		return sfs_err_field(e, field, "too_long",
				     "longer than %d bytes", SFS_VPATH_MAX);
	if (in[0] != '/')
		return sfs_err_field(e, field, "invalid",
				     "must start with '/'");
	if (in[len - 1] != '/')
		return sfs_err_field(e, field, "invalid", "must end with '/'");
	if (has_control(in, len))
		return sfs_err_field(e, field, "invalid",
				     "control characters are not allowed");
	if (!sfs_utf8_valid(in, len))
		return sfs_err_field(e, field, "invalid", "not valid UTF-8");
	if (len == 1)
		return SFS_OK;
	start = 1;
	for (i = 1; i < len; i++) {
		if (in[i] != '/')
			continue;
		if (++depth > SFS_VPATH_DEPTH)
			return sfs_err_field(e, field, "too_long",
					     "deeper than %d directories",
					     SFS_VPATH_DEPTH);
		st = sfs_segment_check(in + start, i - start, field, e);
		if (st)
			return st;
		start = i + 1;
	}
	return SFS_OK;
}

enum sfs_status sfs_vpath_norm(const char *in, const char *field,
			       struct sfs_buf *out, struct sfs_err *e)
{
	enum sfs_status st;

	sfs_buf_reset(out);
	st = sfs_vpath_check(in, field, e);
	if (st)
		return st;
	st = sfs_buf_adds(out, in);
	if (st)
		return sfs_errf(e, st, SFS_R_NONE, "cannot copy path");
	return SFS_OK;
}

enum sfs_status sfs_vpath_parent(const char *path, struct sfs_buf *out)
{
	size_t len;

	sfs_buf_reset(out);
	if (!path || path[0] != '/')
		return SFS_INVALID;
	len = strlen(path);
	if (path[len - 1] == '/')
		len--;
	while (len > 0 && path[len - 1] != '/')
		len--;
	if (!len)
		len = 1;
	return sfs_buf_add(out, path, len);
}

const char *sfs_vpath_base(const char *path, size_t *len)
{
	size_t end, start;

	end = strlen(path);
	if (end && path[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	if (len)
		*len = end - start;
	return path + start;
}

int sfs_vpath_under(const char *path, const char *dir)
{
	size_t dl;

	if (!path || !dir)
		return 0;
	dl = strlen(dir);
	if (strncmp(path, dir, dl) != 0)
		return 0;
	if (dl && dir[dl - 1] == '/')
		return 1;
	return path[dl] == '/' || path[dl] == '\0';
}
