/* Small helpers: strings, hex, randomness, clocks, directories. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "speechfs/store.h"
#include "speechfs/buf.h"
#include "speechfs/log.h"
#include "util_i.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sfs_base64_encode(const void *data, size_t len, struct sfs_buf *out)
{
	const unsigned char *p = data;
	char q[4];
	size_t i;
	uint32_t v;

	for (i = 0; i < len; i += 3) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		q[0] = b64[v >> 18 & 63];
		q[1] = b64[v >> 12 & 63];
		q[2] = i + 1 < len ? b64[v >> 6 & 63] : '=';
		q[3] = i + 2 < len ? b64[v & 63] : '=';
		if (sfs_buf_add(out, q, 4))
			return -1;
	}
	return 0;
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

int sfs_base64_decode(const char *s, size_t len, struct sfs_buf *out)
{
	unsigned char o[3];
	int v[4], k, pad;
	size_t i;

	if (len % 4)
		return -1;
	for (i = 0; i < len; i += 4) {
		pad = 0;
		for (k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			v[k] = pad ? -1 : b64_val(s[i + k]);
			if (v[k] < 0)
				return -1;
		}
		if (pad == 1 && s[i + 2] == '=')
			return -1;
		/* canonical: the bits padding drops are zero */
		if ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))
			return -1;
		o[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		o[1] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		o[2] = (unsigned char)((v[2] & 3) << 6 | v[3]);
		if (sfs_buf_add(out, o, (size_t)(3 - pad)))
			return -1;
	}
	return 0;
}

size_t sfs_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

char *sfs_strdup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

void sfsi_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sfsi_unhex(const char *in, size_t n, unsigned char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int hi = hexval((unsigned char)in[2 * i]);
		int lo = hexval((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/*
 * The kernel's generator first (getrandom: one system call, fork-safe,
 * cryptographically strong once seeded); OpenSSL's only if it fails. A
 * mount draws a file id per create: OpenSSL's RAND_bytes cost 2.5 % of a
 * durable create's CPU in perf (its per-thread generator found and
 * reseeded, AES-CTR set up per call), getrandom 0.2 us.
 */
int sfsi_random(void *buf, size_t n)
{
	ssize_t got = n <= 256 ? getrandom(buf, n, 0) : -1;

	if (got == (ssize_t)n)
		return 0;
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

int sfsi_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int sfsi_is_sha256_hex(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

int sfs_parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || strlen(s) > 20 ||
	    (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int sfs_parse_bool(const char *s, int *out)
{
	if (!s)
		return -1;
	if (!strcasecmp(s, "true") || !strcmp(s, "1")) {
		*out = 1;
		return 0;
	}
	if (!strcasecmp(s, "false") || !strcmp(s, "0")) {
		*out = 0;
		return 0;
	}
	return -1;
}

int sfsi_fsync_dir(const char *path)
{
	int fd, rc;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int sfsi_mkdirs(const char *path)
{
	char tmp[4096];
	size_t i, n = sfs_strlcpy(tmp, path, sizeof(tmp));

	if (n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		if (i < n)
			tmp[i] = '/';
	}
	return 0;
}

static int64_t clock_offset_ms;

void sfs_set_clock_offset_ms(int64_t offset)
{
	__atomic_store_n(&clock_offset_ms, offset, __ATOMIC_RELAXED);
}

int64_t sfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec +
	       __atomic_load_n(&clock_offset_ms, __ATOMIC_RELAXED) * 1000000;
}

int64_t sfs_now_ms(void)
{
	return sfs_now_ns() / 1000000;
}

enum sfs_status sfsi_errno_status(struct sfs_err *e, int err, const char *what)
{
	if (err == ENOSPC || err == EDQUOT)
		return sfs_errf(e, SFS_NO_SPACE, SFS_R_NONE, "%s: %s", what,
				strerror(err));
	if (err == ENOMEM)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "%s: out of memory",
				what);
	if (err == EFBIG)
		return sfs_errf(e, SFS_TOO_LARGE, SFS_R_NONE, "%s: %s", what,
				strerror(err));
	return sfs_errf(e, SFS_IO, SFS_R_NONE, "%s: %s", what, strerror(err));
}

void sfsi_crash_point(const char *point)
{
	const char *at = getenv("SFS_CRASH_AT");

	if (at && !strcmp(at, point))
		_exit(77);
}

void sfs_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int err;

	/*
	 * glibc's condattr_init and cond_init cannot fail, nor setclock
	 * with CLOCK_MONOTONIC: one rule for every caller instead of
	 * checks in some and none in others (re-read s22 B6)
	 */
	err = pthread_condattr_init(&ca);
	if (!err) {
		err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (!err)
			err = pthread_cond_init(cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (err) {
		sfs_error("util", "no monotonic condition variable: %s",
			  strerror(err));
		abort();
	}
}

int64_t sfs_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void sfs_mono_ts(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
}

void sfs_deadline(struct timespec *ts, int64_t ms)
{
	sfs_mono_ts(ts, sfs_mono_ns() + ms * 1000000);
}
