/* struct sfs_buf: a bounded, growable, always NUL-terminated buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "speechfs/buf.h"
#include "util_i.h"

const char sfs_buf_empty[1];

void sfs_buf_init(struct sfs_buf *b, size_t max)
{
	b->buf = (char *)sfs_buf_empty;
	b->len = 0;
	b->alloc = 0;
	b->max = max ? max : (size_t)1 << 30;
}

void sfs_buf_release(struct sfs_buf *b)
{
	if (b->alloc)
		free(b->buf);
	sfs_buf_init(b, b->max);
}

void sfs_buf_reset(struct sfs_buf *b)
{
	b->len = 0;
	if (b->alloc)
		b->buf[0] = '\0';
}

char *sfs_buf_detach(struct sfs_buf *b, size_t *len)
{
	char *r;

	if (len)
		*len = b->len;
	if (!b->alloc) {
		r = calloc(1, 1);
	} else {
		r = b->buf;
	}
	b->buf = (char *)sfs_buf_empty;
	b->len = 0;
	b->alloc = 0;
	return r;
}

enum sfs_status sfs_buf_grow(struct sfs_buf *b, size_t extra)
{
	size_t want, n;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return SFS_TOO_LARGE;
	/*
	 * No object is larger than PTRDIFF_MAX, and below it neither the
	 * NUL's byte nor the growth step below can wrap round.
	 */
	want = b->len + extra;
	if (want >= PTRDIFF_MAX)
		return SFS_TOO_LARGE;
	want++;
	if (want <= b->alloc)
		return SFS_OK;
	n = b->alloc ? b->alloc : 64;
	while (n < want)
		n = n / 2 * 3 + 16;
	p = realloc(b->alloc ? b->buf : NULL, n);
	if (!p)
		return SFS_NOMEM;
	if (!b->alloc)
		p[0] = '\0';
	b->buf = p;
	b->alloc = n;
	return SFS_OK;
}

enum sfs_status sfs_buf_add(struct sfs_buf *b, const void *data, size_t len)
{
	enum sfs_status st = sfs_buf_grow(b, len);

	if (st)
		return st;
	if (len)
		memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
	return SFS_OK;
}

enum sfs_status sfs_buf_adds(struct sfs_buf *b, const char *s)
{
	return sfs_buf_add(b, s, strlen(s));
}

enum sfs_status sfs_buf_addch(struct sfs_buf *b, char c)
{
	return sfs_buf_add(b, &c, 1);
}

enum sfs_status sfs_buf_vaddf(struct sfs_buf *b, const char *fmt, va_list ap)
{
	enum sfs_status st;
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return SFS_INVALID;
	st = sfs_buf_grow(b, (size_t)n);
	if (st)
		return st;
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return SFS_OK;
}

enum sfs_status sfs_buf_addf(struct sfs_buf *b, const char *fmt, ...)
{
	enum sfs_status st;
	va_list ap;

	va_start(ap, fmt);
	st = sfs_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return st;
}
