/*
 * multipart/form-data (RFC 7578, RFC 2046 section 5.1), streamed: part
 * data goes to the caller's function straight from the buffer it was
 * given. The parser finds each delimiter with memmem and keeps back only
 * the last bytes of a read that could begin one. libmicrohttpd's own post
 * processor copied every byte into a buffer of its own and stopped at
 * every CR in the data; on a 1 GiB upload that was a fifth of the
 * receiving thread's time. No libmicrohttpd in here: the fuzzer links it
 * alone (tests/fuzz/fuzz_multipart.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "multipart.h"
#include "speechfs/banned.h"
#define MP_BOUNDARY_MAX 70 /* RFC 2046 */
#define MP_DELIM_MAX (MP_BOUNDARY_MAX + 4)
#define MP_HEADERS_MAX 8192

enum mp_state {
	MP_PREAMBLE,   /* before the first delimiter: dropped */
	MP_AFTER,      /* after a delimiter: "--" or padding and CRLF */
	MP_AFTER_LF,   /* the CR of that CRLF seen */
	MP_AFTER_DASH, /* the first '-' of "--" seen */
	MP_HEADERS,    /* a part's header lines, to an empty line */
	MP_DATA,       /* a part's body, to the next delimiter */
	MP_END,	       /* after the close delimiter: the epilogue, dropped */
	MP_FAILED
};

struct multipart {
	enum mp_state state;
	char delim[MP_DELIM_MAX + 1]; /* CRLF "--" boundary */
	size_t dlen;
	char carry[MP_DELIM_MAX]; /* a read's tail that may start a delim */
	size_t clen;
	char hdr[MP_HEADERS_MAX]; /* the headers of the part being read */
	size_t hlen;
	char name[128]; /* the part's name and filename */
	char filename[1024];
	int has_filename;
	uint64_t off; /* bytes of the part passed on */
	int called;   /* fn called for this part */
	mp_part_fn fn;
	void *arg;
};

/* The boundary parameter of a multipart Content-Type; NULL if none. */
static int mp_boundary(const char *ct, char *out, size_t size)
{
	const char *p = ct;
	size_t n = 0;

	while ((p = strchr(p, ';'))) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "boundary=", 9))
			continue;
		p += 9;
		if (*p == '"') {
			for (p++; p[n] && p[n] != '"'; n++)
				;
			if (p[n] != '"')
				return -1;
		} else {
			n = strcspn(p, "; \t");
		}
		if (n == 0 || n > MP_BOUNDARY_MAX || n >= size)
			return -1;
		memcpy(out, p, n);
		out[n] = '\0';
		return 0;
	}
	return -1;
}

struct multipart *mp_new(const char *ct, mp_part_fn fn, void *arg)
{
	char b[MP_BOUNDARY_MAX + 1];
	struct multipart *m;

	if (!ct || mp_boundary(ct, b, sizeof(b)))
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->fn = fn;
	m->arg = arg;
	m->dlen = (size_t)snprintf(m->delim, sizeof(m->delim), "\r\n--%s", b);
	/* the first delimiter may open the body: as if a CRLF came first */
	memcpy(m->carry, "\r\n", 2);
	m->clen = 2;
	m->state = MP_PREAMBLE;
	return m;
}

/*
 * The value of parameter `key` in a Content-Disposition header value:
 * quoted (taken as is up to the closing quote, as browsers and curl send
 * it) or a token. 1 found, 0 not, -1 malformed or too long.
 */
static int mp_param(const char *v, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key), n;
	const char *p = v;

	while ((p = strchr(p, ';'))) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, key, klen) || p[klen] != '=')
			continue;
		p += klen + 1;
		if (*p == '"') {
			p++;
			n = strcspn(p, "\"");
			if (p[n] != '"')
				return -1;
		} else {
			n = strcspn(p, "; \t");
		}
		if (n >= size)
			return -1;
		memcpy(out, p, n);
		out[n] = '\0';
		return 1;
	}
	return 0;
}

/* The part's headers are in m->hdr: find its name and filename. */
static int mp_part_headers(struct multipart *m)
{
	char *line = m->hdr, *end, *v;
	int found = 0, rc;

	m->hdr[m->hlen] = '\0';
	for (; *line; line = end + 2) {
		end = strstr(line, "\r\n");
		if (!end)
			return -1;
		*end = '\0';
		if (strncasecmp(line, "Content-Disposition:", 20))
			continue;
		v = line + 20;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, "form-data", 9) ||
		    (v[9] && v[9] != ';' && v[9] != ' '))
			return -1;
		if (mp_param(v, "name", m->name, sizeof(m->name)) != 1)
			return -1;
		rc = mp_param(v, "filename", m->filename, sizeof(m->filename));
		if (rc < 0)
			return -1;
		m->has_filename = rc;
		found = 1;
	}
	return found ? 0 : -1;
}

/* Pass part bytes on (the preamble's are dropped). */
static int mp_emit_as(struct multipart *m, const char *data, size_t n,
		      int final)
{

	/* no bytes: no call, but for an empty part at its end (below) */
	if (m->state != MP_DATA || (!n && (m->called || !final)))
		return 0;
	m->called = 1;
	if (m->fn(m->arg, m->name, m->has_filename ? m->filename : NULL, data,
		  n, m->off))
		return -1;
	m->off += n;
	return 0;
}

static int mp_emit(struct multipart *m, const char *data, size_t n)
{
	return mp_emit_as(m, data, n, 0);
}

/* A delimiter ended the data (or the preamble). */
static int mp_delimited(struct multipart *m)
{
	if (mp_emit_as(m, "", 0, 1)) /* an empty part is still a part */
		return -1;
	m->state = MP_AFTER;
	return 0;
}

/*
 * Data up to the next delimiter; returns the bytes of `data` used. The
 * carry (under dlen bytes) comes logically before data: a delimiter that
 * starts in it ends within the first dlen - 1 bytes of data.
 */
static size_t mp_data(struct multipart *m, const char *data, size_t len,
		      int *err)
{
	char tmp[2 * MP_DELIM_MAX];
	const char *hit;
	size_t k, t, keep;

	if (m->clen) {
		k = len < m->dlen - 1 ? len : m->dlen - 1;
		memcpy(tmp, m->carry, m->clen);
		memcpy(tmp + m->clen, data, k);
		t = m->clen + k;
		hit = memmem(tmp, t, m->delim, m->dlen);
		if (hit) {
			m->clen = 0;
			*err = mp_emit(m, tmp, (size_t)(hit - tmp)) ||
			       mp_delimited(m);
			return (size_t)(hit - tmp) + m->dlen - (t - k);
		}
		if (k == len) {
			/* all of it is in tmp: keep what may start one */
			keep = t < m->dlen - 1 ? t : m->dlen - 1;
			*err = mp_emit(m, tmp, t - keep);
			memmove(m->carry, tmp + t - keep, keep);
			m->clen = keep;
			return len;
		}
		/* no delimiter starts in the carry */
		*err = mp_emit(m, m->carry, m->clen);
		m->clen = 0;
		if (*err)
			return len;
	}
	hit = memmem(data, len, m->delim, m->dlen);
	if (hit) {
		*err = mp_emit(m, data, (size_t)(hit - data)) ||
		       mp_delimited(m);
		return (size_t)(hit - data) + m->dlen;
	}
	keep = len < m->dlen - 1 ? len : m->dlen - 1;
	*err = mp_emit(m, data, len - keep);
	memcpy(m->carry, data + len - keep, keep);
	m->clen = keep;
	return len;
}

/* Feed body bytes; 0 ok, -1 malformed or refused by the part function. */
int mp_feed(struct multipart *m, const char *data, size_t len)
{
	size_t used;
	int err = 0;
	char c;

	while (len && !err) {
		switch (m->state) {
		case MP_PREAMBLE:
		case MP_DATA:
			used = mp_data(m, data, len, &err);
			data += used;
			len -= used;
			continue;
		case MP_END:
			return 0; /* the epilogue */
		case MP_FAILED:
			return -1;
		default:
			break;
		}
		c = *data++;
		len--;
		switch (m->state) {
		case MP_AFTER:
			if (c == '-')
				m->state = MP_AFTER_DASH;
			else if (c == '\r')
				m->state = MP_AFTER_LF;
			else if (c != ' ' && c != '\t')
				err = -1;
			break;
		case MP_AFTER_DASH:
			if (c == '-')
				m->state = MP_END;
			else
				err = -1;
			break;
		case MP_AFTER_LF:
			if (c != '\n') {
				err = -1;
				break;
			}
			m->state = MP_HEADERS;
			m->hlen = 0;
			break;
		case MP_HEADERS:
			if (m->hlen + 1 >= sizeof(m->hdr)) {
				err = -1;
				break;
			}
			m->hdr[m->hlen++] = c;
			if (c != '\n' || m->hlen < 2 ||
			    m->hdr[m->hlen - 2] != '\r')
				break;
			if (m->hlen == 2) {
				m->hlen = 0; /* no headers at all */
				err = -1;
				break;
			}
			if (m->hlen < 4 ||
			    memcmp(m->hdr + m->hlen - 4, "\r\n\r\n", 4))
				break;
			m->hlen -= 2; /* keep the last line's CRLF */
			if (mp_part_headers(m)) {
				err = -1;
				break;
			}
			m->state = MP_DATA;
			m->off = 0;
			m->called = 0;
			break;
		default:
			err = -1;
		}
	}
	if (err)
		m->state = MP_FAILED;
	return err ? -1 : 0;
}

int mp_complete(const struct multipart *m)
{
	return m->state == MP_END;
}

void mp_free(struct multipart *m)
{
	free(m);
}
