/*
 * libFuzzer target: the streaming multipart/form-data parser
 * (httpd/multipart.c). The input is a body for a fixed boundary, fed once
 * whole and once in chunks whose sizes come from the input itself: both
 * must reach the same verdict, and on success hand over the same parts
 * with the same bytes, each part's offsets counting up from 0. Whatever
 * the bytes, no crash, no sanitizer report, no leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../httpd/multipart.h"

#define CT "multipart/form-data; boundary=XyZ"
#define LOG_MAX (1 << 20)

struct log {
	char *buf;
	size_t len;
	uint64_t next_off; /* what the current part's next offset must be */
	int bad;	   /* an offset out of order */
};

static void put(struct log *l, const void *p, size_t n)
{
	if (l->len + n > LOG_MAX) {
		l->bad = 1;
		return;
	}
	memcpy(l->buf + l->len, p, n);
	l->len += n;
}

static int part(void *arg, const char *name, const char *filename,
		const char *data, size_t n, uint64_t off)
{
	struct log *l = arg;

	if (off == 0) {
		/* a new part: its header in the log, then its bytes */
		put(l, "\n#", 2);
		put(l, name, strlen(name) + 1);
		put(l, filename ? filename : "-",
		    strlen(filename ? filename : "-") + 1);
		l->next_off = 0;
	}
	if (off != l->next_off)
		l->bad = 1;
	l->next_off = off + n;
	put(l, data, n);
	return strcmp(name, "stop") == 0 ? -1 : 0;
}

/* Parse body in chunks (sizes from sizes[], cycled; 0: all at once). */
static int run(const uint8_t *body, size_t n, const uint8_t *sizes,
	       size_t nsizes, struct log *l)
{
	struct multipart *m = mp_new(CT, part, l);
	size_t pos = 0, k = 0, c;
	int rc = 0;

	if (!m)
		abort();
	while (pos < n && rc == 0) {
		c = nsizes ? (size_t)sizes[k++ % nsizes] % 97 + 1 : n;
		if (c > n - pos)
			c = n - pos;
		rc = mp_feed(m, (const char *)body + pos, c);
		pos += c;
	}
	rc = rc ? -1 : mp_complete(m);
	mp_free(m);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct log a, b;
	size_t nsizes;
	int ra, rb;

	if (!a.buf) {
		a.buf = malloc(LOG_MAX);
		b.buf = malloc(LOG_MAX);
		if (!a.buf || !b.buf)
			abort();
	}
	/* the first byte says how many chunk sizes follow it */
	nsizes = size ? data[0] % 16 : 0;
	if (size < 1 + nsizes)
		return 0;
	a.len = b.len = 0;
	a.bad = b.bad = 0;
	ra = run(data + 1 + nsizes, size - 1 - nsizes, NULL, 0, &a);
	rb = run(data + 1 + nsizes, size - 1 - nsizes, data + 1, nsizes, &b);
	if (ra != rb || a.bad || b.bad)
		abort();
	if (ra == 1 && (a.len != b.len || memcmp(a.buf, b.buf, a.len)))
		abort();
	return 0;
}
