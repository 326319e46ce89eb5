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
 * Timed waits of core run on CLOCK_MONOTONIC: the wall clock can jump
 * (virtual machines step it), which would end a wait early or stretch it
 * by the jump. sfsi_cond_init makes such a condition variable (0 or an
 * errno); sfsi_mono_ns is that clock's time in nanoseconds, sfsi_mono_ts
 * turns such a time into a timespec (for pthread_cond_timedwait and
 * clock_nanosleep), and sfsi_deadline sets *ts to `ms` milliseconds from
 * now on it.
 */
int sfsi_cond_init(pthread_cond_t *cv);
int64_t sfsi_mono_ns(void);
void sfsi_mono_ts(struct timespec *ts, int64_t ns);
void sfsi_deadline(struct timespec *ts, int64_t ms);

#include "speechfs/banned.h"

#endif
