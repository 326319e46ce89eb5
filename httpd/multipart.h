/*
 * A streaming multipart/form-data parser (multipart.c): the upload's body
 * in, each part's bytes out as they come, in constant memory.
 */
#ifndef SPEECHFSD_MULTIPART_H
#define SPEECHFSD_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

struct multipart;

/*
 * A part's bytes: `name` and `filename` (NULL when the part has none) of
 * its Content-Disposition, `off` bytes of it passed before these. Called
 * once with n = 0 at the end of an empty part. Non-zero stops the parse.
 */
typedef int (*mp_part_fn)(void *arg, const char *name, const char *filename,
			  const char *data, size_t n, uint64_t off);

/* A parser for a Content-Type with its boundary; NULL if it has none. */
struct multipart *mp_new(const char *content_type, mp_part_fn fn, void *arg);
/* Feed body bytes; 0 ok, -1 malformed or stopped by fn (then always -1). */
int mp_feed(struct multipart *m, const char *data, size_t len);
/* Did the body end with the close delimiter? */
int mp_complete(const struct multipart *m);
void mp_free(struct multipart *m);

#endif
