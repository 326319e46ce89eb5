/* Small helpers shared by the core's modules (not part of the public API). */
#ifndef SPEECHFS_UTIL_I_H
#define SPEECHFS_UTIL_I_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "speechfs/err.h"
#include "speechfs/util.h"

void sfsi_hex(const unsigned char *in, size_t n, char *out);
int sfsi_unhex(const char *in, size_t n, unsigned char *out);
int sfsi_random(void *buf, size_t n);
/* Constant-time comparison of two equal-length byte strings. */
int sfsi_ct_equal(const void *a, const void *b, size_t n);
int sfsi_is_sha256_hex(const char *s);
/* fsync a directory by path. */
int sfsi_fsync_dir(const char *path);
/* mkdir -p (mode 0755 each). */
int sfsi_mkdirs(const char *path);
/* Map errno of a failed I/O call to a status, with a message. */
enum sfs_status sfsi_errno_status(struct sfs_err *e, int err, const char *what);
/* Tests of crash safety: _exit(77) here when SFS_CRASH_AT names `point`. */
void sfsi_crash_point(const char *point);
/*
 * sfs_thread_nowait: 1 when this thread may not wait for a server (its
 * requests, or another thread's fetch it would wait for); then also
 * *e is SFS_WOULD_WAIT about `what`, and sfs_thread_nowait(0) says so.
 */
int sfsi_would_wait(struct sfs_err *e, const char *what);
/* Whether this thread may not wait (sfs_thread_nowait), refusing nothing. */
int sfsi_nowait(void);

#include "speechfs/banned.h"

#endif
