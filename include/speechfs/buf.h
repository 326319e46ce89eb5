/*
 * struct sfs_buf: the one growable byte buffer. It is never NULL (an empty
 * buffer points at a static ""), always NUL-terminated, and has a hard
 * maximum set at init: appends past it fail with SFS_TOO_LARGE instead of
 * growing without bound.
 */
#ifndef SPEECHFS_BUF_H
#define SPEECHFS_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include "err.h"

struct sfs_buf {
	char *buf;
	size_t len;
	size_t alloc;
	size_t max;
};

#define SFS_BUF_INIT(max_)                                                     \
	{                                                                      \
		(char *)sfs_buf_empty, 0, 0,                                   \
			(max_) != 0 ? (size_t)(max_) : (size_t)1 << 30         \
	}
extern const char sfs_buf_empty[1];

void sfs_buf_init(struct sfs_buf *b, size_t max);
/* Free the contents; the buffer is left initialised and empty. */
void sfs_buf_release(struct sfs_buf *b);
/* Empty the buffer but keep its memory for reuse. */
void sfs_buf_reset(struct sfs_buf *b);
/* Ownership: hand the NUL-terminated string to the caller (free()). */
char *sfs_buf_detach(struct sfs_buf *b, size_t *len);

/*
 * Make room for `extra` more bytes (and the NUL), or fail whole with
 * SFS_TOO_LARGE past the maximum, SFS_NOMEM: the buffer is unchanged.
 * The appends below do the same; adding 0 bytes is fine (data may then
 * be NULL).
 */
enum sfs_status sfs_buf_grow(struct sfs_buf *b, size_t extra) SFS_MUST_CHECK;
enum sfs_status sfs_buf_add(struct sfs_buf *b, const void *data,
			    size_t len) SFS_MUST_CHECK;
enum sfs_status sfs_buf_adds(struct sfs_buf *b, const char *s) SFS_MUST_CHECK;
enum sfs_status sfs_buf_addch(struct sfs_buf *b, char c) SFS_MUST_CHECK;
enum sfs_status sfs_buf_addf(struct sfs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3))) SFS_MUST_CHECK;
enum sfs_status sfs_buf_vaddf(struct sfs_buf *b, const char *fmt,
			      va_list ap) SFS_MUST_CHECK;

#endif
