/*
 * A block's Range GET with its body received straight into the block
 * (remote_i.h's sfsi_remote_range_into): libcurl makes the connection
 * (CURLOPT_CONNECT_ONLY: resolving, connecting, its timeout, as every
 * request), we write the GET and read the answer ourselves, so each recv
 * lands in the block's buffer; libcurl's transfer received into its own
 * buffer and a callback copied from there (11 % of the mount's CPU on a
 * cold read). Only a plain 206 of exactly the range asked is read here;
 * anything else goes to the normal request, which knows every answer.
 */
#include <curl/curl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "curl_pool_i.h"
#include "remote_i.h"
#include "util_i.h"
#include "speechfs/banned.h"

#define HEAD_MAX (8 << 10) /* an answer's status line and headers */
#define RECV_MAX (4 << 20) /* one recv (libcurl caps it at its buffer) */
#define SLICE_MS 200	   /* how often a wait looks at the abort flag */

/* One range's exchange on one connection. */
struct rx {
	struct sfs_remote *r;
	CURL *c;
	curl_socket_t fd;
	int64_t stall_ms;  /* no byte for this long ends it */
	int64_t last_ms;   /* when a byte last moved */
	const int *cancel; /* the request's cancel flag, or NULL */
	int stop_ends;	   /* the request's: it ends at the cut too */
	CURLcode rc;	   /* why the exchange failed (FAILED) */
	int put_st;	   /* what put said (PUT_STOPPED) */
};

/* How an exchange ended, besides 0 (the range received whole). */
enum {
	FAILED = -1,	  /* no answer, or cut: x->rc */
	OTHER = 1,	  /* an answer this reader does not take */
	STALE = 2,	  /* a kept connection had ended: ask on a new one */
	PUT_STOPPED = 3,  /* put refused the bytes: x->put_st */
	HEAD_UNREAD = -2, /* read_head: no head this reader reads */
};

/* A monotonic clock in milliseconds. */
static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Wait until the socket is ready for events: 0, or -1 with x->rc (the
 * codes libcurl's own transfer ends with: a stall is a timeout, an
 * abort the callback's).
 */
static int wait_sock(struct rx *x, short events)
{
	struct pollfd p = { .fd = x->fd, .events = events };
	int64_t now, left;

	for (;;) {
		if (sfsi_remote_aborting(x->r) ||
		    (x->cancel &&
		     __atomic_load_n(x->cancel, __ATOMIC_RELAXED)) ||
		    (x->stop_ends && sfsi_remote_is_stopping(x->r))) {
			x->rc = CURLE_ABORTED_BY_CALLBACK;
			return -1;
		}
		now = now_ms();
		left = x->last_ms + x->stall_ms - now;
		if (left <= 0) {
			x->rc = CURLE_OPERATION_TIMEDOUT;
			return -1;
		}
		if (poll(&p, 1, (int)(left < SLICE_MS ? left : SLICE_MS)) > 0)
			return 0;
	}
}

/* All of buf sent: 0, or -1 with x->rc. */
static int send_all(struct rx *x, const char *buf, size_t len)
{
	size_t n;

	while (len) {
		n = 0;
		x->rc = curl_easy_send(x->c, buf, len, &n);
		if (x->rc == CURLE_AGAIN) {
			if (wait_sock(x, POLLOUT) < 0)
				return -1;
			continue;
		}
		if (x->rc != CURLE_OK)
			return -1;
		x->last_ms = now_ms();
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * Up to len bytes into buf: how many (0 at the end of the connection), or
 * -1 with x->rc.
 */
static ssize_t recv_some(struct rx *x, void *buf, size_t len)
{
	size_t n;

	for (;;) {
		n = 0;
		x->rc = curl_easy_recv(x->c, buf, len, &n);
		if (x->rc == CURLE_AGAIN) {
			if (wait_sock(x, POLLIN) < 0)
				return -1;
			continue;
		}
		if (x->rc != CURLE_OK)
			return -1;
		x->last_ms = now_ms();
		return (ssize_t)n;
	}
}

/* A decimal number of the whole of [p, end): 0, or -1. */
static int number(const char *p, const char *end, int64_t *out)
{
	int64_t v = 0;

	if (p == end || end - p > 18)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	*out = v;
	return 0;
}

/* What the answer's head says, as far as this reader cares. */
struct head {
	int64_t length;	     /* Content-Length, -1 none */
	int64_t first, last; /* Content-Range's, -1 none */
	int other;	     /* something this reader does not take */
	int close;	     /* Connection: close */
};

/* "bytes FIRST-LAST/TOTAL" (TOTAL or '*') into h, else other. */
static void content_range(struct head *h, const char *v, const char *end)
{
	const char *dash, *slash;

	if (h->first >= 0 || end - v < 6 || strncasecmp(v, "bytes ", 6)) {
		h->other = 1;
		return;
	}
	v += 6;
	dash = memchr(v, '-', (size_t)(end - v));
	slash = dash ? memchr(dash, '/', (size_t)(end - dash)) : NULL;
	if (!slash || number(v, dash, &h->first) ||
	    number(dash + 1, slash, &h->last))
		h->other = 1;
}

/* One header line [p, end) (no CRLF) into h. */
static void header_line(struct head *h, const char *p, const char *end)
{
	const char *colon = memchr(p, ':', (size_t)(end - p));
	const char *v;
	size_t name;

	if (!colon || p == colon || *p == ' ' || *p == '\t') {
		h->other = 1; /* no name, or a folded line */
		return;
	}
	name = (size_t)(colon - p);
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
#define IS(s) (name == sizeof(s) - 1 && !strncasecmp(p, s, name))
	if (IS("Content-Length")) {
		if (h->length >= 0 || number(v, end, &h->length))
			h->other = 1;
	} else if (IS("Content-Range")) {
		content_range(h, v, end);
	} else if (IS("Transfer-Encoding") || IS("Content-Encoding")) {
		h->other = 1;
	} else if (IS("Connection")) {
		/* "close" among its tokens; keep-alive is HTTP/1.1's own */
		h->close = h->close ||
			   memmem(v, (size_t)(end - v), "close", 5) != NULL;
	}
#undef IS
}

/*
 * The head [buf, buf+n) read (it ends with CRLF CRLF): 1 when it is a
 * 206 of exactly [off, off+len) this reader can take, else 0.
 */
static int head_ok(const char *buf, size_t n, int64_t off, int64_t len,
		   int *close)
{
	struct head h = { .length = -1, .first = -1, .last = -1 };
	const char *p = buf, *end = buf + n - 2, *eol;

	if (n < 15 || strncmp(buf, "HTTP/1.1 206 ", 13))
		return 0;
	p = memchr(buf, '\n', n) + 1; /* the status line's end */
	while (p < end && !h.other) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol || eol == p || eol[-1] != '\r')
			return 0;
		header_line(&h, p, eol - 1);
		p = eol + 1;
	}
	*close = h.close;
	return !h.other && h.length == len && h.first == off &&
	       h.last == off + len - 1;
}

/*
 * The answer's head into head[HEAD_MAX]: its length (through the empty
 * line), *n the bytes read (some of the body may follow it); 0 when the
 * connection ended before any byte, FAILED, or HEAD_UNREAD (too long).
 */
static ssize_t read_head(struct rx *x, char *head, size_t *n)
{
	const char *end;
	ssize_t got;

	*n = 0;
	for (;;) {
		got = recv_some(x, head + *n, HEAD_MAX - 1 - *n);
		if (got < 0)
			return FAILED;
		if (got == 0) {
			x->rc = *n ? CURLE_PARTIAL_FILE : CURLE_GOT_NOTHING;
			return *n ? FAILED : 0;
		}
		*n += (size_t)got;
		head[*n] = '\0';
		end = strstr(head, "\r\n\r\n");
		if (end)
			return end + 4 - head;
		if (*n == HEAD_MAX - 1)
			return HEAD_UNREAD;
	}
}

/*
 * The body's len bytes where room says: the first `have` of them from
 * from (read with the head), the rest received in place. 0, FAILED or
 * PUT_STOPPED.
 */
static int read_body(struct rx *x, const char *from, size_t have,
		     const struct sfsi_remote_range *q)
{
	size_t fit, n;
	ssize_t got;
	void *to;
	int st;

	int64_t len = q->req->len;

	while (len > 0) {
		to = q->room(q->arg, &fit);
		if (!fit) {
			x->put_st = SFS_IO; /* the range wants fewer bytes */
			return PUT_STOPPED;
		}
		if ((int64_t)fit > len)
			fit = (size_t)len;
		if (have) {
			n = have < fit ? have : fit;
			memcpy(to, from, n);
			from += n;
			have -= n;
		} else {
			got = recv_some(x, to, fit < RECV_MAX ? fit : RECV_MAX);
			if (got <= 0) {
				if (!got)
					x->rc = CURLE_PARTIAL_FILE;
				return FAILED;
			}
			n = (size_t)got;
		}
		st = q->put(q->arg, n);
		if (st) {
			x->put_st = st;
			return PUT_STOPPED;
		}
		len -= (int64_t)n;
	}
	return 0;
}

/*
 * A connection for x: an idle one of the pool (*reused) unless fresh,
 * else a new one. 0, or FAILED.
 */
static int connection(struct rx *x, struct sfsi_curl_pool *pool,
		      const char *url, int fresh, int *reused)
{
	CURLcode rc;

	x->c = fresh ? curl_easy_init() : sfsi_curl_pool_take(pool);
	if (!x->c) {
		x->rc = CURLE_OUT_OF_MEMORY;
		return FAILED;
	}
	x->fd = CURL_SOCKET_BAD;
	if (curl_easy_getinfo(x->c, CURLINFO_ACTIVESOCKET, &x->fd) ==
		    CURLE_OK &&
	    x->fd != CURL_SOCKET_BAD) {
		*reused = 1;
		return 0;
	}
	*reused = 0;
	/* each recv as large as the room it is given (libcurl's cap) */
	rc = (CURLcode)sfsi_remote_connect_only(x->r, x->c, url, (long)RECV_MAX,
						x->cancel, x->stop_ends);
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(x->c, CURLINFO_ACTIVESOCKET, &x->fd);
	if (rc == CURLE_OK && x->fd == CURL_SOCKET_BAD)
		rc = CURLE_COULDNT_CONNECT;
	x->rc = rc;
	x->last_ms = now_ms();
	if (rc == CURLE_OK)
		return 0;
	curl_easy_cleanup(x->c);
	x->c = NULL;
	return FAILED;
}

/*
 * One exchange (a connection taken, unless fresh from the pool, the GET
 * sent, the answer read): 0, OTHER, FAILED, STALE (a kept connection had
 * ended before the answer's first byte) or PUT_STOPPED.
 */
static int exchange(struct rx *x, struct sfsi_curl_pool *pool, const char *url,
		    const char *req, size_t req_len, int fresh,
		    const struct sfsi_remote_range *q)
{
	char head[HEAD_MAX];
	ssize_t hl;
	size_t n;
	int reused = 0, close = 1, ret;

	x->last_ms = now_ms();
	if (connection(x, pool, url, fresh, &reused) < 0)
		return FAILED;
	if (send_all(x, req, req_len) < 0) {
		ret = reused && x->rc != CURLE_ABORTED_BY_CALLBACK &&
				      x->rc != CURLE_OPERATION_TIMEDOUT
			      ? STALE
			      : FAILED;
		goto out;
	}
	hl = read_head(x, head, &n);
	if (hl == 0 || hl == FAILED) {
		ret = reused && !n && x->rc != CURLE_ABORTED_BY_CALLBACK &&
				      x->rc != CURLE_OPERATION_TIMEDOUT
			      ? STALE
			      : FAILED;
		goto out;
	}
	if (hl == HEAD_UNREAD ||
	    !head_ok(head, (size_t)hl, q->req->off, q->req->len, &close) ||
	    (int64_t)(n - (size_t)hl) > q->req->len) {
		ret = OTHER;
		goto out;
	}
	ret = read_body(x, head + hl, n - (size_t)hl, q);
out:
	if (ret || close)
		curl_easy_cleanup(x->c); /* its connection ends with it */
	else
		sfsi_curl_pool_give(pool, x->c);
	x->c = NULL;
	return ret;
}

/*
 * The GET of q into req[size] (the request target: the base's path, if
 * any, and q->req->path): its length, or -1 when this reader cannot ask it.
 */
static int request_of(struct sfs_remote *r, const struct sfsi_remote_range *q,
		      const char *url, char *req, size_t size)
{
	const char *host = url + 7, *target = strchr(host, '/');
	int n, h;

	if (q->req->len <= 0 || !sfsi_remote_plain_http(r) || !target ||
	    strpbrk(url, " \t\r\n"))
		return -1;
	n = snprintf(req, size,
		     "GET %s HTTP/1.1\r\nHost: %.*s\r\n"
		     "Range: bytes=%lld-%lld\r\nAccept: */*\r\n",
		     target, (int)(target - host), host, (long long)q->req->off,
		     (long long)(q->req->off + q->req->len - 1));
	if (n < 0 || (size_t)n + 3 > size)
		return -1;
	/* room left for the empty line's CRLF and the NUL */
	h = sfsi_remote_head_lines(r, req + n, size - 2 - (size_t)n);
	if (h < 0)
		return -1;
	memcpy(req + n + h, "\r\n", 3);
	return n + h + 2;
}

enum sfs_status sfsi_remote_range_into(struct sfs_remote *r,
				       struct sfsi_curl_pool *pool,
				       const struct sfsi_remote_range *q,
				       int *other, struct sfs_err *e)
{
	char url[2048], req[4096];
	struct rx x = { .r = r,
			.cancel = q->req->cancel,
			.stop_ends =
				sfsi_remote_at_stop(q->req) == SFSI_STOP_ENDS };
	int n, tries, ret = STALE;

	*other = 0;
	snprintf(url, sizeof(url), "%s%s", sfs_remote_url(r), q->req->path);
	if (sfsi_would_wait(e, url))
		return SFS_WOULD_WAIT;
	/* not begun once the cut came, as a normal request */
	if (x.stop_ends && sfsi_remote_is_stopping(r))
		return sfs_errf(e, SFS_UNAVAILABLE, SFS_R_NONE,
				"'%s': not sent, the mount is ending", url);
	n = request_of(r, q, url, req, sizeof(req));
	if (n < 0) {
		*other = 1;
		return SFS_OK;
	}
	/*
	 * Bounded as the normal request's block GET (remote.c set_transfer):
	 * connecting by the timeout, then only a stall (no byte for the
	 * timeout); no bound on the whole, a 16 MiB range on a slow but
	 * steady link takes as long as it takes.
	 */
	x.stall_ms = 1000 * (int64_t)sfsi_remote_timeout(r);
	/* a kept connection the server had closed: once more on a new one */
	for (tries = 0; ret == STALE && tries < 2; tries++)
		ret = exchange(&x, pool, url, req, (size_t)n, tries > 0, q);
	if (ret == OTHER) {
		*other = 1;
		return SFS_OK;
	}
	if (ret == 0) {
		sfsi_remote_answered(r, NULL);
		return SFS_OK;
	}
	if (ret == PUT_STOPPED)
		return sfs_errf(e, (enum sfs_status)x.put_st, SFS_R_NONE,
				"'%s': more bytes than asked for", url);
	if (x.rc != CURLE_ABORTED_BY_CALLBACK)
		sfsi_remote_answered(r, curl_easy_strerror(x.rc));
	return sfs_errf(e, SFS_UNAVAILABLE, SFS_R_NONE, "'%s': %s", url,
			curl_easy_strerror(x.rc));
}
