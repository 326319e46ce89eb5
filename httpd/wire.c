/*
 * The bytes on libmicrohttpd's sockets. libmicrohttpd 0.9.75 answers a
 * request it cannot parse (a bad or huge Content-Length, a header block
 * beyond its buffer, control characters, broken chunked framing, an HTTP
 * version it does not speak) by itself: an HTML page, without our
 * X-Request-Id, and -- when the error is found in its header checks or
 * while it grows its read buffer -- with the status line and headers
 * built twice, the second copy inside the body's Content-Length (after
 * transmit_error_response() its state machine goes on and builds the
 * header again; fixed upstream in 1.0.0, commit f1bfbe71 of 2022-10-23).
 * No option of 0.9.75 (nor of 1.0) replaces those replies.
 *
 * libmicrohttpd reads and writes a plain socket with recv(), send() and
 * sendmsg() (file bodies with sendfile()). This file defines those three:
 * the library's calls come here first (an executable's definitions come
 * before libc's in the lookup), and everything passes through to libc
 * but two things, on libmicrohttpd's connections only:
 * - while no response of ours is queued on a connection, a reply other
 *   than an interim "100 Continue" is the library's own: it is swallowed
 *   and ours goes out instead -- the documented error body with the same
 *   status, X-Request-Id, one framing, Connection: close (the library
 *   closes the connection after its own replies);
 * - bytes read are noted for the slow-client guard (conn.c).
 * Other sockets (libcurl's, in imports) are not looked at.
 *
 * And sendfile64(), which the library calls for a local blob's body: on
 * its connections a short count means "the socket is full" (see there).
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include "conn.h"
#include "httpd.h"
#include "speechfs/log.h"
#include "speechfs/banned.h"

typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef ssize_t (*sendfile_fn)(int, int, off64_t *, size_t);

static recv_fn real_recv;
static send_fn real_send;
static sendmsg_fn real_sendmsg;
static sendfile_fn real_sendfile;

/*
 * The next definitions in the lookup order (libc's, or a sanitizer's
 * that calls libc's). Resolved on first use too: another library may
 * send before main() calls conn_wire_init().
 */
static void resolve(void)
{
	void *p;

	if (!__atomic_load_n(&real_recv, __ATOMIC_ACQUIRE)) {
		p = dlsym(RTLD_NEXT, "recv");
		__atomic_store_n(&real_recv, (recv_fn)p, __ATOMIC_RELEASE);
	}
	if (!__atomic_load_n(&real_send, __ATOMIC_ACQUIRE)) {
		p = dlsym(RTLD_NEXT, "send");
		__atomic_store_n(&real_send, (send_fn)p, __ATOMIC_RELEASE);
	}
	if (!__atomic_load_n(&real_sendmsg, __ATOMIC_ACQUIRE)) {
		p = dlsym(RTLD_NEXT, "sendmsg");
		__atomic_store_n(&real_sendmsg, (sendmsg_fn)p,
				 __ATOMIC_RELEASE);
	}
	if (!__atomic_load_n(&real_sendfile, __ATOMIC_ACQUIRE)) {
		p = dlsym(RTLD_NEXT, "sendfile64");
		__atomic_store_n(&real_sendfile, (sendfile_fn)p,
				 __ATOMIC_RELEASE);
	}
}

int conn_wire_init(void)
{
	resolve();
	if (!real_recv || !real_send || !real_sendmsg || !real_sendfile) {
		sfs_error("wire", "cannot find libc's recv, send, sendmsg, "
				  "sendfile64");
		return -1;
	}
	return 0;
}

static const struct {
	unsigned status;
	const char *reason, *type, *msg;
} own_types[] = {
	{ 400, "Bad Request", "bad_request", "the request is malformed" },
	{ 413, "Content Too Large", "payload_too_large",
	  "the request's Content-Length is too large" },
	{ 414, "URI Too Long", "uri_too_long", "the request URI is too long" },
	{ 431, "Request Header Fields Too Large", "headers_too_large",
	  "the request headers are too large" },
	{ 500, "Internal Server Error", "internal_error",
	  "the request could not be handled" },
	{ 505, "HTTP Version Not Supported", "http_version_not_supported",
	  "the HTTP version is not supported (use HTTP/1.1 or 1.0)" },
};

/*
 * The library's explanation: the text of its page's <body>, tags dropped
 * ("Your HTTP request has wrong value for Content-Length header."), made
 * safe for a JSON string. "" when the page is not in these bytes.
 */
static void own_detail(const char *data, size_t n, char *out, size_t outsz)
{
	const char *b = memmem(data, n, "<body>", 6), *e;
	char text[256];
	size_t o = 0;
	int in_tag = 0;

	out[0] = '\0';
	if (!b)
		return;
	b += 6;
	e = memmem(b, n - (size_t)(b - data), "</body>", 7);
	if (!e)
		return;
	for (; b < e && o + 1 < sizeof(text); b++) {
		if (*b == '<')
			in_tag = 1;
		else if (*b == '>')
			in_tag = 0;
		else if (!in_tag && *b != '"' && *b != '\\')
			text[o++] = *b;
	}
	text[o] = '\0';
	httpd_echo(text, o, outsz - 1, out, outsz);
}

/* Write all of buf on a non-blocking socket, waiting a little if full. */
static int write_all(int fd, const char *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int waits = 0;
	ssize_t n;

	while (len) {
		n = real_send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    waits++ < 10 && poll(&pfd, 1, 100) >= 0)
			continue;
		return -1;
	}
	return 0;
}

/* Our reply in place of the library's, whose bytes (one call's) are `d`. */
static void own_reply(struct conn *c, int fd, const char *d, size_t n)
{
	char detail[200], rid[SFS_ID_SIZE], date[64], body[600], head[400];
	unsigned status = 0;
	size_t i, blen, hlen;
	time_t now = time(NULL);
	struct tm tm;

	if (n >= 12 && memcmp(d, "HTTP/1.", 7) == 0)
		status = (unsigned)(d[9] - '0') * 100 +
			 (unsigned)(d[10] - '0') * 10 + (unsigned)(d[11] - '0');
	for (i = 0; i < ARRAY_SIZE(own_types); i++)
		if (own_types[i].status == status)
			break;
	if (i == ARRAY_SIZE(own_types))
		i = 0; /* anything else the library refuses: a bad request */
	own_detail(d, n, detail, sizeof(detail));
	if (c->rid[0])
		memcpy(rid, c->rid, sizeof(rid));
	else
		httpd_request_id(rid);
	blen = (size_t)snprintf(body, sizeof(body),
				"{\"status_code\":%u,\"error_type\":\"%s\","
				"\"message\":\"%s\",\"validation_errors\":[],"
				"\"request_id\":\"%s\"}",
				own_types[i].status, own_types[i].type,
				detail[0] ? detail : own_types[i].msg, rid);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	hlen = (size_t)snprintf(
		head, sizeof(head),
		"HTTP/1.1 %u %s\r\nDate: %s\r\n"
		"Connection: close\r\n"
		"Content-Type: application/json\r\n"
		"X-Request-Id: %s\r\nContent-Length: %zu\r\n\r\n",
		own_types[i].status, own_types[i].reason, date, rid, blen);
	c->replaced = 1;
	c->own_status = own_types[i].status;
	if (write_all(fd, head, hlen) ||
	    (!c->head_only && write_all(fd, body, blen)))
		sfs_debug("wire", "fd %d: could not send a %u", fd,
			  own_types[i].status);
	if (!c->rid[0])
		sfs_info("access", "- - %u %zu 0.0ms %s refused",
			 own_types[i].status, c->head_only ? 0 : blen, rid);
}

static int is_continue(const char *d, size_t n)
{
	return n >= 13 && memcmp(d, "HTTP/1.", 7) == 0 &&
	       memcmp(d + 8, " 100 ", 5) == 0;
}

/*
 * A send on a connection without a response of ours: the interim 100
 * passes, anything else is the library's own reply (replaced once, then
 * swallowed until it closes the connection). 1 if handled here.
 */
static int intercept(struct conn *c, int fd, const char *d, size_t n)
{
	if (!c->replaced && is_continue(d, n))
		return 0;
	if (!c->replaced)
		own_reply(c, fd, d, n);
	return 1;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct conn *c;
	ssize_t n;

	if (!real_recv)
		resolve();
	n = real_recv(fd, buf, len, flags);
	if (n > 0 && (c = conn_of_fd(fd))) {
		enum conn_phase ph =
			__atomic_load_n(&c->phase, __ATOMIC_RELAXED);

		if (ph == CONN_IDLE)
			conn_set_phase(c, CONN_HEAD);
		else if (ph == CONN_BODY)
			__atomic_add_fetch(&c->body_bytes, n, __ATOMIC_RELAXED);
	}
	return n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct conn *c;

	if (!real_send)
		resolve();
	c = conn_of_fd(fd);
	if (c && !c->ours && intercept(c, fd, buf, len))
		return (ssize_t)len;
	return real_send(fd, buf, len, flags);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	char first[4096];
	size_t i, n = 0, total = 0, k;
	struct conn *c;

	if (!real_sendmsg)
		resolve();
	c = conn_of_fd(fd);
	if (!c || c->ours)
		return real_sendmsg(fd, msg, flags);
	for (i = 0; i < msg->msg_iovlen; i++) {
		total += msg->msg_iov[i].iov_len;
		k = msg->msg_iov[i].iov_len;
		if (k > sizeof(first) - n)
			k = sizeof(first) - n;
		memcpy(first + n, msg->msg_iov[i].iov_base, k);
		n += k;
	}
	if (intercept(c, fd, first, n))
		return (ssize_t)total;
	return real_sendmsg(fd, msg, flags);
}

/*
 * libmicrohttpd 0.9.75 (and its later versions) takes a sendfile() that
 * sends less than asked for a full socket: it clears the connection's
 * "write ready" and waits for epoll's next edge (EPOLLET) before it sends
 * again. A socket that filled up gives that edge when the peer makes
 * room. But sendfile() also stops short when a signal comes in its
 * middle (most often while it waits for the file's pages) -- a stop:
 * SIGSTOP, a cgroup freezer, a debugger attaching. Then the socket has
 * room, no edge ever comes, and
 * the download hangs for good with every thread idle (the rest of its
 * bytes unsent, no access line). So on the library's connections a short
 * sendfile() goes on until the count is sent, the file ends or the socket
 * is really full (EAGAIN, after which the kernel owes the edge), and
 * returns what it sent. send() and sendmsg() need no such care: a
 * non-blocking TCP send is short only when the socket is full.
 */
ssize_t sendfile64(int out_fd, int in_fd, off64_t *offset, size_t count)
{
	size_t done = 0;
	ssize_t n;

	if (!real_sendfile)
		resolve();
	if (!conn_of_fd(out_fd))
		return real_sendfile(out_fd, in_fd, offset, count);
	while (done < count) {
		n = real_sendfile(out_fd, in_fd, offset, count - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && !done)
			return -1;
		/* the file ended, or full (or failing: the next call says) */
		break;
	}
	return (ssize_t)done;
}
