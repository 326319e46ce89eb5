/*
 * Tests of a block's Range GET received in place (core/remote_range.c)
 * against a stand-in server that answers each range as the test says: a
 * plain 206 of the range is read, its connection kept for the next; an
 * answer of another shape (chunked, another range, another length, no
 * length, 200, 404, a head too long) is left to the normal request
 * (other) with nothing put; a body cut off or stalled fails as libcurl's
 * transfer does (SFS_UNAVAILABLE, the server noted down, within the
 * timeout); a body that trickles in slowly but steadily is received
 * however long it takes, here and on the normal request; a kept
 * connection the server closed is asked on a new one; a connect the
 * server does not answer ends at the front end's stop.
 */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "curl_pool_i.h"
#include "remote_i.h"
#include "speechfs/log.h"
#include "speechfs/remote.h"
#include "testhelp.h"

#define LEN 100000 /* bytes a range asks for */
#define PATH "/api/v1/speech-services/files/x/content?sha256=y"

/* A slow answer's body: in PIECES pieces, one every PIECE_MS. */
#define PIECES 20
#define PIECE_MS 200

/* How the stand-in answers a range. */
enum mode {
	PLAIN,	    /* 206, the range, Content-Length */
	CHUNKED,    /* 206 sent chunked */
	SHIFTED,    /* Content-Range one byte later */
	LONGER,	    /* Content-Length one more */
	NO_LENGTH,  /* no Content-Length, closed at the end */
	WHOLE,	    /* 200 with the bytes */
	NOT_FOUND,  /* 404 with an error body */
	HUGE_HEAD,  /* a head of 16 KiB */
	CUT,	    /* closed after half the body */
	STALL,	    /* silent after half the body */
	DROP_AFTER, /* 206, then the connection closed without a word */
	SAY_CLOSE,  /* 206 with Connection: close */
	SLOW,	    /* the body in PIECES pieces, PIECE_MS apart */
	SLOW_CHUNK, /* the same, sent chunked */
	NMODES
};

struct fake {
	int fd;
	enum mode mode;
	int conns;  /* connections accepted */
	int ranges; /* range requests read */
	int stop;
};

/* The byte at offset off of the content. */
static unsigned char byte_at(int64_t off)
{
	return (unsigned char)(off * 7 + off / 251);
}

static int put_all(int c, const void *p, size_t n)
{
	return write(c, p, n) == (ssize_t)n ? 0 : -1;
}

/* A request's head into req (NUL-ended): 0, or -1 when none came. */
static int read_req(int c, char *req, size_t size)
{
	struct pollfd p = { .fd = c, .events = POLLIN };
	size_t have = 0;
	ssize_t got;

	req[0] = '\0';
	while (!strstr(req, "\r\n\r\n")) {
		if (have + 1 >= size || poll(&p, 1, 5000) != 1)
			return -1;
		got = read(c, req + have, size - 1 - have);
		if (got <= 0)
			return -1;
		have += (size_t)got;
		req[have] = '\0';
	}
	return 0;
}

/* Bytes [off, off+n) of the content sent: 0, or -1. */
static int send_bytes(int c, int64_t off, int64_t n)
{
	unsigned char buf[4096];
	int64_t i, k;

	for (i = 0; i < n; i += k) {
		k = n - i < (int64_t)sizeof(buf) ? n - i : (int64_t)sizeof(buf);
		for (int64_t j = 0; j < k; j++)
			buf[j] = byte_at(off + i + j);
		if (put_all(c, buf, (size_t)k))
			return -1;
	}
	return 0;
}

/*
 * n bytes at off in PIECES pieces, one every PIECE_MS: a slow but
 * steady link (never silent for as long as a timeout of 1 s).
 */
static int trickle(struct fake *f, int c, int64_t off, int64_t n)
{
	int64_t i, k, step = (n + PIECES - 1) / PIECES;

	for (i = 0; i < n; i += k) {
		if (__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST))
			return -1;
		if (i)
			usleep(PIECE_MS * 1000);
		k = n - i < step ? n - i : step;
		if (send_bytes(c, off + i, k))
			return -1;
	}
	return 0;
}

/*
 * The answer to the range [a, b] in the stand-in's mode: 1 when the
 * connection goes on, 0 when it is to be closed.
 */
static int answer_range(struct fake *f, int c, int64_t a, int64_t b)
{
	char head[20000];
	int64_t n = b - a + 1;
	int len;

	switch (f->mode) {
	case PLAIN:
	case DROP_AFTER:
	case SAY_CLOSE:
	case CUT:
	case STALL:
	case SLOW:
	case SHIFTED:
	case LONGER:
		len = snprintf(head, sizeof(head),
			       "HTTP/1.1 206 Partial Content\r\n"
			       "Content-Type: audio/wav\r\n"
			       "Content-Range: bytes %lld-%lld/9999999\r\n"
			       "Content-Length: %lld\r\n%s\r\n",
			       (long long)(a + (f->mode == SHIFTED)),
			       (long long)(b + (f->mode == SHIFTED)),
			       (long long)(n + (f->mode == LONGER)),
			       f->mode == SAY_CLOSE ? "Connection: close\r\n"
						    : "");
		break;
	case CHUNKED:
	case SLOW_CHUNK:
		len = snprintf(head, sizeof(head),
			       "HTTP/1.1 206 Partial Content\r\n"
			       "Content-Range: bytes %lld-%lld/9999999\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n%llx\r\n",
			       (long long)a, (long long)b, (long long)n);
		break;
	case NO_LENGTH:
		len = snprintf(head, sizeof(head),
			       "HTTP/1.1 206 Partial Content\r\n"
			       "Content-Range: bytes %lld-%lld/9999999\r\n"
			       "Connection: close\r\n\r\n",
			       (long long)a, (long long)b);
		break;
	case WHOLE:
		len = snprintf(
			head, sizeof(head),
			"HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n\r\n",
			(long long)n);
		break;
	case NOT_FOUND:
		len = snprintf(head, sizeof(head),
			       "HTTP/1.1 404 Not Found\r\nContent-Length: 2"
			       "\r\n\r\n{}");
		return put_all(c, head, (size_t)len) ? 0 : 1;
	case HUGE_HEAD:
	default:
		len = snprintf(head, sizeof(head),
			       "HTTP/1.1 206 Partial Content\r\n"
			       "Content-Range: bytes %lld-%lld/9999999\r\n"
			       "Content-Length: %lld\r\nX-Pad: %16000d\r\n\r\n",
			       (long long)a, (long long)b, (long long)n, 0);
		break;
	}
	if (put_all(c, head, (size_t)len))
		return 0;
	if (f->mode == CUT || f->mode == STALL) {
		send_bytes(c, a, n / 2);
		if (f->mode == STALL)
			while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST))
				usleep(10000);
		return 0;
	}
	if (f->mode == SLOW || f->mode == SLOW_CHUNK) {
		if (trickle(f, c, a, n))
			return 0;
	} else if (send_bytes(c, a, n)) {
		return 0;
	}
	if ((f->mode == CHUNKED || f->mode == SLOW_CHUNK) &&
	    put_all(c, "\r\n0\r\n\r\n", 7))
		return 0;
	return f->mode != NO_LENGTH && f->mode != DROP_AFTER &&
	       f->mode != SAY_CLOSE;
}

/* One connection's requests, in turn, while it goes on. */
static void serve_conn(struct fake *f, int c)
{
	static const char doc[] = "{\"paths\":{}}";
	char req[8192], head[256];
	long long a, b;
	const char *rg;
	int n, on = 1;

	while (on && !read_req(c, req, sizeof(req))) {
		rg = strstr(req, "\r\nRange: bytes=");
		if (rg &&
		    sscanf(rg, "\r\nRange: bytes=%lld-%lld", &a, &b) == 2) {
			__atomic_add_fetch(&f->ranges, 1, __ATOMIC_SEQ_CST);
			on = answer_range(f, c, a, b);
			continue;
		}
		/* the open's questions: a document of no features, on a
		 * connection of its own (one is served at a time) */
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 200 OK\r\nContent-Type: application/json"
			     "\r\nContent-Length: %zu\r\nConnection: close"
			     "\r\n\r\n%s",
			     strlen(doc), doc);
		put_all(c, head, (size_t)n);
		on = 0;
	}
}

static void *fake_serve(void *arg)
{
	struct fake *f = arg;
	struct pollfd p = { .fd = f->fd, .events = POLLIN };
	int c;

	while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
		if (poll(&p, 1, 100) != 1 ||
		    (c = accept(f->fd, NULL, NULL)) < 0)
			continue;
		__atomic_add_fetch(&f->conns, 1, __ATOMIC_SEQ_CST);
		serve_conn(f, c);
		close(c);
	}
	return NULL;
}

static void fake_start(struct fake *f, pthread_t *t, char *url, size_t size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(f->fd >= 0 &&
		!bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)) &&
		!listen(f->fd, 8) &&
		!getsockname(f->fd, (struct sockaddr *)&sa, &len));
	snprintf(url, size, "http://127.0.0.1:%d", ntohs(sa.sin_port));
	REQUIRE(pthread_create(t, NULL, fake_serve, f) == 0);
}

static void fake_stop(struct fake *f, pthread_t t)
{
	__atomic_store_n(&f->stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(t, NULL);
	close(f->fd);
}

/* Where the range goes: rooms of at most `chunk` bytes. */
struct dest {
	unsigned char buf[LEN];
	size_t len, chunk;
};

static void *room(void *arg, size_t *fit)
{
	struct dest *d = arg;

	*fit = LEN - d->len < d->chunk ? LEN - d->len : d->chunk;
	return d->buf + d->len;
}

static int put(void *arg, size_t n)
{
	((struct dest *)arg)->len += n;
	return 0;
}

/* The range of LEN bytes at off asked of r into d (cancel: its flag). */
static enum sfs_status ask_cancel(struct sfs_remote *r,
				  struct sfsi_curl_pool *pool, int64_t off,
				  struct dest *d, int *other, const int *cancel)
{
	const struct sfsi_remote_req req = {
		.method = "GET",
		.path = PATH,
		.fd = -1,
		.off = off,
		.len = LEN,
		.cancel = cancel,
	};
	const struct sfsi_remote_range q = {
		.req = &req,
		.room = room,
		.put = put,
		.arg = d,
	};
	struct sfs_err e;

	d->len = 0;
	sfs_err_init(&e);
	return sfsi_remote_range_into(r, pool, &q, other, &e);
}

static enum sfs_status ask(struct sfs_remote *r, struct sfsi_curl_pool *pool,
			   int64_t off, struct dest *d, int *other)
{
	return ask_cancel(r, pool, off, d, other, NULL);
}

/* d holds the LEN bytes of the content at off: 1, else 0. */
static int right(const struct dest *d, int64_t off)
{
	size_t i;

	if (d->len != LEN)
		return 0;
	for (i = 0; i < LEN; i++)
		if (d->buf[i] != byte_at(off + (int64_t)i))
			return 0;
	return 1;
}

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A stand-in in mode m, a remote of timeout_s opened on it, a pool. */
struct setup {
	struct fake f;
	pthread_t t;
	struct sfs_remote *r;
	struct sfsi_curl_pool pool;
	struct dest *d;
};

static void set_up(struct setup *s, enum mode m, int timeout_s)
{
	char url[64];

	memset(s, 0, sizeof(*s));
	s->f.mode = m;
	fake_start(&s->f, &s->t, url, sizeof(url));
	REQUIRE_ST(sfs_remote_open(url, "sfs_key", timeout_s, &s->r, NULL),
		   SFS_OK);
	sfsi_curl_pool_init(&s->pool);
	s->d = calloc(1, sizeof(*s->d));
	REQUIRE(s->d != NULL);
	s->d->chunk = 1000; /* rooms smaller than what comes */
}

static void tear_down(struct setup *s)
{
	sfsi_curl_pool_release(&s->pool);
	sfs_remote_close(s->r);
	fake_stop(&s->f, s->t);
	free(s->d);
}

/* Two plain ranges: both received whole, on one kept connection. */
static void test_plain_ranges_on_one_connection(void)
{
	struct setup s;
	int other = 1, conns;

	set_up(&s, PLAIN, 5);
	conns = __atomic_load_n(&s.f.conns, __ATOMIC_SEQ_CST);
	CHECK_ST(ask(s.r, &s.pool, 12345, s.d, &other), SFS_OK);
	CHECK(!other && right(s.d, 12345));
	s.d->chunk = LEN; /* rooms as large as the range */
	CHECK_ST(ask(s.r, &s.pool, 4 << 20, s.d, &other), SFS_OK);
	CHECK(!other && right(s.d, 4 << 20));
	CHECK(__atomic_load_n(&s.f.conns, __ATOMIC_SEQ_CST) == conns + 1);
	CHECK(s.f.ranges == 2);
	tear_down(&s);
}

/* Every answer of another shape: other, nothing put, nothing noted. */
static void test_other_answers_left_to_the_normal_request(void)
{
	static const enum mode modes[] = { CHUNKED,   SHIFTED, LONGER,
					   NO_LENGTH, WHOLE,   NOT_FOUND,
					   HUGE_HEAD };
	struct setup s;
	size_t i;
	int other;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		set_up(&s, modes[i], 5);
		other = 0;
		CHECK_ST(ask(s.r, &s.pool, 777, s.d, &other), SFS_OK);
		CHECK(other && s.d->len == 0);
		CHECK(!sfsi_remote_down(s.r));
		if (!other || s.d->len)
			fprintf(stderr, "mode %d read\n", (int)modes[i]);
		tear_down(&s);
	}
}

/* A body cut off: SFS_UNAVAILABLE and the server noted as not answering. */
static void test_cut_body_fails(void)
{
	struct setup s;
	int other = 1;

	set_up(&s, CUT, 5);
	CHECK_ST(ask(s.r, &s.pool, 0, s.d, &other), SFS_UNAVAILABLE);
	CHECK(!other && s.d->len == LEN / 2);
	CHECK(sfsi_remote_down(s.r));
	tear_down(&s);
}

/* A body that stalls ends at the timeout (1 s): no hang. */
static void test_stalled_body_ends_at_the_timeout(void)
{
	struct setup s;
	int64_t t0, ms;
	int other = 1;

	set_up(&s, STALL, 1);
	t0 = now_ms();
	CHECK_ST(ask(s.r, &s.pool, 0, s.d, &other), SFS_UNAVAILABLE);
	ms = now_ms() - t0;
	CHECK(!other && ms < 60000); /* no hang */
	CHECK(sfsi_remote_down(s.r));
	tear_down(&s);
}

/*
 * A body that trickles in over ~4 s, never silent for the timeout
 * (1 s): received whole, the connection kept. No bound on the whole
 * of a block's fetch (it was twice the timeout: a slow link's 16 MiB
 * read-ahead run failed with EIO while bytes came).
 */
static void test_trickled_body_is_received(void)
{
	struct setup s;
	int64_t t0;
	int other = 1;

	set_up(&s, SLOW, 1);
	t0 = now_ms();
	CHECK_ST(ask(s.r, &s.pool, 4321, s.d, &other), SFS_OK);
	CHECK(!other && right(s.d, 4321));
	CHECK(now_ms() - t0 < 120000); /* no hang */
	CHECK(!sfsi_remote_down(s.r));
	tear_down(&s);
}

static int sink_into(void *arg, const void *data, size_t len)
{
	struct dest *d = arg;

	if (len > LEN - d->len)
		return SFS_IO;
	memcpy(d->buf + d->len, data, len);
	d->len += len;
	return 0;
}

/*
 * The same through the normal request (libcurl's transfer with a sink),
 * which a block's fetch falls back to for an answer of another shape:
 * the same rule, no bound on a sink's whole. Asked straight, not after
 * an answer left to it (the stand-in would first trickle that one into
 * a closed connection: no byte meanwhile, near the timeout).
 */
static void test_trickled_body_is_received_by_the_normal_request(void)
{
	struct setup s;
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	struct sfsi_remote_req q = {
		.method = "GET", .path = PATH, .fd = -1, .off = 4321, .len = LEN
	};
	struct sfs_err e;
	int64_t t0;

	set_up(&s, SLOW_CHUNK, 1);
	q.sink = sink_into;
	q.arg = s.d;
	sfs_err_init(&e);
	t0 = now_ms();
	CHECK_ST(sfsi_remote_request(s.r, &q, &b, &e), SFS_OK);
	CHECK(right(s.d, 4321));
	CHECK(now_ms() - t0 < 120000); /* no hang */
	CHECK(!sfsi_remote_down(s.r));
	sfs_buf_release(&b);
	tear_down(&s);
}

/*
 * A cancelled range (the flag set) ends at its first wait, long before
 * the timeout (600 s); the server is not noted down for it.
 */
static void test_cancel_ends_a_stall(void)
{
	static const int cancel = 1;
	struct setup s;
	int64_t t0;
	int other = 1;

	set_up(&s, STALL, 600);
	t0 = now_ms();
	CHECK_ST(ask_cancel(s.r, &s.pool, 0, s.d, &other, &cancel),
		 SFS_UNAVAILABLE);
	CHECK(!other && now_ms() - t0 < 60000); /* not at the timeout */
	CHECK(!sfsi_remote_down(s.r));
	tear_down(&s);
}

/* A connection to port (host order) waits for the server's SYN-ACK. */
static int syn_sent_to(int port)
{
	char line[512], rem[32];
	unsigned st;
	FILE *f = fopen("/proc/net/tcp", "r");
	int found = 0;

	if (!f)
		return 0;
	snprintf(rem, sizeof(rem), "0100007F:%04X", (unsigned)port);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, rem) &&
			sscanf(strstr(line, rem) + strlen(rem), " %x", &st) ==
				1 &&
			st == 2; /* TCP_SYN_SENT */
	fclose(f);
	return found;
}

/* A range asked on a thread: its status once done is set. */
struct asking {
	struct sfs_remote *r;
	struct sfsi_curl_pool *pool;
	struct dest *d;
	enum sfs_status st;
	int done;
};

static void *asking_run(void *arg)
{
	struct asking *a = arg;
	int other;

	a->st = ask(a->r, a->pool, 0, a->d, &other);
	__atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * A server whose listen backlog is full drops a new connection's SYNs:
 * the connect waits (CONNECTTIMEOUT, the timeout of 600 s) until the
 * front end's stop cuts it, as a request's transfer: SFS_UNAVAILABLE
 * soon after the cut, the server not noted down.
 */
static void test_stop_ends_a_connect(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct asking a = { 0 };
	struct setup s;
	pthread_t t;
	int filler, port, i;
	int64_t t0;

	/* opened while the stand-in answers (the open asks it) */
	set_up(&s, PLAIN, 600);
	__atomic_store_n(&s.f.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(s.t, NULL);
	/* then a backlog of 0, filled by one connection never accepted */
	REQUIRE(!listen(s.f.fd, 0) &&
		!getsockname(s.f.fd, (struct sockaddr *)&sa, &len));
	port = ntohs(sa.sin_port);
	filler = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(filler >= 0 &&
		!connect(filler, (struct sockaddr *)&sa, sizeof(sa)));
	a.r = s.r;
	a.pool = &s.pool;
	a.d = s.d;
	REQUIRE(pthread_create(&t, NULL, asking_run, &a) == 0);
	/* the cut only once the connect waits (before, it is not sent) */
	for (i = 0; i < 2000 && !syn_sent_to(port); i++)
		poll(NULL, 0, 10);
	CHECK(i < 2000);
	sfsi_remote_stopping(s.r, 1);
	t0 = now_ms();
	while (!__atomic_load_n(&a.done, __ATOMIC_SEQ_CST) &&
	       now_ms() - t0 < 20000)
		poll(NULL, 0, 10);
	CHECK(__atomic_load_n(&a.done, __ATOMIC_SEQ_CST));
	/* if not cut: the listener closed answers the next SYN's resend
	 * with a reset, so the thread ends anyway */
	close(s.f.fd);
	pthread_join(t, NULL);
	CHECK_ST(a.st, SFS_UNAVAILABLE);
	CHECK(s.d->len == 0);
	CHECK(!sfsi_remote_down(s.r));
	close(filler);
	sfsi_curl_pool_release(&s.pool);
	sfs_remote_close(s.r);
	free(s.d);
}

/*
 * A kept connection the server closed (after its answer, without a
 * word; or saying Connection: close): the next range goes on a new one.
 */
static void test_closed_connection_not_reused(void)
{
	static const enum mode modes[] = { DROP_AFTER, SAY_CLOSE };
	struct setup s;
	size_t i;
	int other, conns;

	for (i = 0; i < 2; i++) {
		set_up(&s, modes[i], 5);
		conns = __atomic_load_n(&s.f.conns, __ATOMIC_SEQ_CST);
		other = 1;
		CHECK_ST(ask(s.r, &s.pool, 1, s.d, &other), SFS_OK);
		CHECK(!other && right(s.d, 1));
		CHECK_ST(ask(s.r, &s.pool, 2, s.d, &other), SFS_OK);
		CHECK(!other && right(s.d, 2));
		CHECK(__atomic_load_n(&s.f.conns, __ATOMIC_SEQ_CST) ==
		      conns + 2);
		CHECK(!sfsi_remote_down(s.r));
		tear_down(&s);
	}
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	signal(SIGPIPE, SIG_IGN); /* the stand-in writes to a dropped one */
	RUN(test_plain_ranges_on_one_connection);
	RUN(test_other_answers_left_to_the_normal_request);
	RUN(test_cut_body_fails);
	RUN(test_stalled_body_ends_at_the_timeout);
	RUN(test_trickled_body_is_received);
	RUN(test_trickled_body_is_received_by_the_normal_request);
	RUN(test_cancel_ends_a_stall);
	RUN(test_closed_connection_not_reused);
	RUN(test_stop_ends_a_connect);
	return th_report();
}
