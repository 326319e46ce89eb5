/* Small helpers shared by the core's modules (not part of the public API). */
#ifndef SPEECHFS_UTIL_I_H
#define SPEECHFS_UTIL_I_H

#include <stddef.h>
#include <stdint.h>
#include "speechfs/err.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Copy with truncation, always NUL-terminated; returns strlen(src). */
size_t sfs_strlcpy(char *dst, const char *src, size_t size);
/* strdup that returns NULL for NULL. */
char *sfs_strdup0(const char *s);
void sfs_hex(const unsigned char *in, size_t n, char *out);
int sfs_unhex(const char *in, size_t n, unsigned char *out);
int sfs_random(void *buf, size_t n);
/* Constant-time comparison of two equal-length byte strings. */
int sfs_ct_equal(const void *a, const void *b, size_t n);
int sfs_is_sha256_hex(const char *s);
/* Parse a whole decimal integer (no trailing junk); 0 on success. */
int sfs_parse_i64(const char *s, int64_t *out);
int sfs_parse_bool(const char *s, int *out);
/* fsync a directory by path. */
int sfs_fsync_dir(const char *path);
/* mkdir -p (mode 0755 each). */
int sfs_mkdirs(const char *path);
int64_t sfs_now_ns(void);
/* Map errno of a failed I/O call to a status, with a message. */
enum sfs_status sfs_errno_status(struct sfs_err *e, int err, const char *what);

#include "banned.h"

#endif
