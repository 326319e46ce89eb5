/*
 * Small helpers the core and both front ends use: array sizes, bounded
 * string copies, strict number parsing, the clock. Include
 * "speechfs/banned.h" last in every source file.
 */
#ifndef SPEECHFS_UTIL_H
#define SPEECHFS_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Copy with truncation, always NUL-terminated; returns strlen(src). */
size_t sfs_strlcpy(char *dst, const char *src, size_t size);

/* strdup that returns NULL for NULL. Ownership: free() the result. */
char *sfs_strdup0(const char *s);

/*
 * Parse a whole decimal integer: an optional '-', digits, nothing else (no
 * blanks, no '+', no trailing junk), within int64_t. 0 on success, -1
 * otherwise (*out untouched).
 */
int sfs_parse_i64(const char *s, int64_t *out);

/*
 * Base64 (RFC 4648, with padding). encode appends to out; decode takes
 * exactly the canonical form (no blanks) and appends the bytes. 0 on
 * success, -1 on bad input or when out cannot grow.
 */
struct sfs_buf;
int sfs_base64_encode(const void *data, size_t len, struct sfs_buf *out);
int sfs_base64_decode(const char *s, size_t len, struct sfs_buf *out);

/* "true"/"1" or "false"/"0" (case-insensitive words); 0 on success. */
int sfs_parse_bool(const char *s, int *out);

/*
 * The store's one clock: nanoseconds since the epoch (CLOCK_REALTIME plus
 * an offset that tests step with sfs_set_clock_offset_ms). A change takes
 * one reading and stamps everything it writes with it.
 */
int64_t sfs_now_ns(void);
/* The same clock in milliseconds (what the API shows). */
int64_t sfs_now_ms(void);
/* Move the clock by `offset` ms from the real time (tests only). */
void sfs_set_clock_offset_ms(int64_t offset);

/*
 * Durations and timed waits run on CLOCK_MONOTONIC, the one set of
 * helpers of core, the daemon and the mount: the wall clock can jump
 * (virtual machines step it), which would end a wait early or stretch it
 * by the jump. sfs_cond_init_mono makes a condition variable whose timed
 * waits use it (it cannot fail on the systems we build for, glibc on
 * Linux: a failure is a broken invariant, logged, and the process
 * aborts); sfs_mono_ns is its time in nanoseconds,
 * sfs_mono_ts turns such a time into a timespec (pthread_cond_timedwait,
 * clock_nanosleep), and sfs_deadline sets *ts to `ms` milliseconds from
 * now on it.
 */
void sfs_cond_init_mono(pthread_cond_t *cv);
int64_t sfs_mono_ns(void);
void sfs_mono_ts(struct timespec *ts, int64_t ns);
void sfs_deadline(struct timespec *ts, int64_t ms);

#endif
