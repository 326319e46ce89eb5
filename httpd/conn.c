/*
 * The connection guard: what libmicrohttpd 0.9.75 leaves to us about slow
 * clients. Every connection is tracked from accept to close with its
 * phase (waiting for a request head, reading a body, busy); a reaper
 * closes heads that take longer than http.request_head_timeout and bodies
 * slower than http.min_body_rate; and the connection limits are ours, not
 * the library's: at a limit a new connection evicts the oldest one that is
 * only waiting (from the same address first), so slow clients cannot lock
 * out others behind their address or the whole server.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <netinet/in.h>
#include "conn.h"
#include "httpd.h"
#include "speechfs/log.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

/* How often the reaper looks, in ms. */
#define REAP_MS 250
/* A pass this much later than due: the daemon did not run meanwhile. */
#define PAUSED_MS 1000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reap_cond;
static struct conn **by_fd; /* fd -> conn, read without the lock */
static int nfd;
static struct conn all; /* list head of every conn, under the lock */
static int nconns;
static pthread_t reaper;
static int reaper_running, reaper_stop;

int conn_addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	static const unsigned char v4map[12] = { 0, 0, 0, 0, 0,	   0,
						 0, 0, 0, 0, 0xff, 0xff };

	memset(key, 0, 16);
	if (sa && sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa && sa->sa_family == AF_INET6) {
		const unsigned char *a =
			((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, v4map, 12) == 0)
			memcpy(key, a + 12, 4);
		else
			memcpy(key + 4, a, 8); /* the /64 */
		return 0;
	}
	return -1;
}

struct conn *conn_of_fd(int fd)
{
	if (fd < 0 || fd >= nfd || !by_fd)
		return NULL;
	return __atomic_load_n(&by_fd[fd], __ATOMIC_ACQUIRE);
}

struct conn *conn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

void conn_set_phase(struct conn *c, enum conn_phase ph)
{
	if (!c)
		return;
	__atomic_store_n(&c->phase_ns, sfs_mono_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&c->body_bytes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->phase, ph, __ATOMIC_RELEASE);
}

/* Only waiting (no request of ours in it): may be closed to make room. */
static int evictable(const struct conn *c)
{
	enum conn_phase ph = __atomic_load_n(&c->phase, __ATOMIC_ACQUIRE);

	return !c->closing && (ph == CONN_IDLE || ph == CONN_HEAD);
}

/* Called with the lock held: stop a connection (it closes in its thread). */
static void stop_conn(struct conn *c, const char *why)
{
	c->closing = 1;
	sfs_debug("conn", "closing fd %d: %s", c->fd, why);
	shutdown(c->fd, SHUT_RDWR);
}

/* Called with the lock held: the oldest waiting connection (of `key`). */
static struct conn *oldest_waiting(const unsigned char *key)
{
	struct conn *c, *best = NULL;
	int64_t t, best_t = 0;

	for (c = all.next; c != &all; c = c->next) {
		if (!evictable(c) || (key && memcmp(c->key, key, 16)))
			continue;
		/* (its thread moves it on meanwhile: one reading each) */
		t = __atomic_load_n(&c->phase_ns, __ATOMIC_RELAXED);
		if (!best || t < best_t) {
			best = c;
			best_t = t;
		}
	}
	return best;
}

/* Called with the lock held. */
static int count_of(const unsigned char *key)
{
	struct conn *c;
	int n = 0;

	for (c = all.next; c != &all; c = c->next)
		n += !c->closing && memcmp(c->key, key, 16) == 0;
	return n;
}

enum MHD_Result conn_accept_policy(void *cls, const struct sockaddr *addr,
				   socklen_t addrlen)
{
	const struct httpd_opts *o = &g_httpd.opts;
	enum MHD_Result ret = MHD_YES;
	unsigned char key[16];
	struct conn *victim;

	(void)cls;
	(void)addrlen;
	/* shutting down: no new connections (main.c) */
	if (httpd_stopping())
		return MHD_NO;
	if (conn_addr_key(addr, key))
		return MHD_YES;
	pthread_mutex_lock(&lock);
	if (o->per_ip_limit > 0 && count_of(key) >= o->per_ip_limit) {
		victim = oldest_waiting(key);
		if (victim)
			stop_conn(victim, "the address is at its limit");
		else
			ret = MHD_NO;
	}
	if (ret == MHD_YES && o->conn_limit > 0 && nconns >= o->conn_limit) {
		victim = oldest_waiting(NULL);
		if (victim)
			stop_conn(victim, "the server is at its limit");
		else
			ret = MHD_NO;
	}
	pthread_mutex_unlock(&lock);
	if (ret == MHD_NO)
		sfs_debug("conn", "refused a connection: at the limit, none "
				  "waiting");
	return ret;
}

static void conn_started(struct MHD_Connection *mc, void **ctx)
{
	const union MHD_ConnectionInfo *fi, *ai;
	struct conn *c = calloc(1, sizeof(*c));

	*ctx = c;
	if (!c)
		return;
	fi = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	ai = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	c->fd = fi ? fi->connect_fd : -1;
	c->mhd = mc;
	if (conn_addr_key(ai ? ai->client_addr : NULL, c->key))
		memset(c->key, 0xff, sizeof(c->key));
	/* a new connection's first head is due from the accept */
	conn_set_phase(c, CONN_HEAD);
	pthread_mutex_lock(&lock);
	c->next = &all;
	c->prev = all.prev;
	all.prev->next = c;
	all.prev = c;
	nconns++;
	if (c->fd >= 0 && c->fd < nfd)
		__atomic_store_n(&by_fd[c->fd], c, __ATOMIC_RELEASE);
	else
		sfs_warn("conn", "fd %d beyond the guard's table", c->fd);
	pthread_mutex_unlock(&lock);
}

static void conn_closed(void **ctx)
{
	struct conn *c = *ctx;

	if (!c)
		return;
	/* before libmicrohttpd closes the fd: nobody shuts a reused one */
	pthread_mutex_lock(&lock);
	if (c->fd >= 0 && c->fd < nfd)
		__atomic_store_n(&by_fd[c->fd], NULL, __ATOMIC_RELEASE);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	nconns--;
	pthread_mutex_unlock(&lock);
	free(c);
	*ctx = NULL;
}

void conn_notify(void *cls, struct MHD_Connection *mc, void **socket_context,
		 enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		conn_started(mc, socket_context);
	else
		conn_closed(socket_context);
}

/* Called with the lock held: close what overstays. */
static void reap(int64_t now)
{
	const struct httpd_opts *o = &g_httpd.opts;
	int64_t head_ns = (int64_t)o->head_timeout_s * 1000000000;
	int64_t t, bytes, need;
	struct conn *c;

	for (c = all.next; c != &all; c = c->next) {
		if (c->closing)
			continue;
		t = now - __atomic_load_n(&c->phase_ns, __ATOMIC_RELAXED);
		switch (__atomic_load_n(&c->phase, __ATOMIC_ACQUIRE)) {
		case CONN_HEAD:
			if (head_ns > 0 && t > head_ns)
				stop_conn(c, "request head too slow");
			break;
		case CONN_BODY:
			if (o->min_body_rate <= 0 || head_ns <= 0 ||
			    t <= head_ns)
				break;
			bytes = __atomic_load_n(&c->body_bytes,
						__ATOMIC_RELAXED);
			need = (int64_t)((double)o->min_body_rate *
					 (double)(t - head_ns) / 1e9);
			if (bytes < need)
				stop_conn(c, "request body too slow");
			break;
		default:
			break;
		}
	}
}

/*
 * Called with the lock held: the daemon did not run for `gap` ns (stopped
 * and continued -- SIGSTOP, a cgroup freezer, a debugger -- or starved):
 * that time is not the clients'. Without this, every request head and
 * body in progress across a pause longer than request_head_timeout was
 * closed as too slow the moment the daemon ran again, bytes sent during
 * the pause still unread.
 */
static void forgive(int64_t gap)
{
	struct conn *c;

	for (c = all.next; c != &all; c = c->next)
		__atomic_add_fetch(&c->phase_ns, gap, __ATOMIC_RELAXED);
	sfs_info("conn",
		 "the daemon did not run for %.1f s: its "
		 "connections' deadlines move on as much",
		 (double)gap / 1e9);
}

static void *reaper_main(void *arg)
{
	struct timespec ts;
	int64_t next = 0, now;

	(void)arg;
	pthread_mutex_lock(&lock);
	while (!reaper_stop) {
		now = sfs_mono_ns();
		if (next && now - next > (int64_t)PAUSED_MS * 1000000)
			forgive(now - next);
		reap(now);
		next = sfs_mono_ns() + (int64_t)REAP_MS * 1000000;
		sfs_mono_ts(&ts, next);
		pthread_cond_timedwait(&reap_cond, &lock, &ts);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int conn_init(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > (1u << 20))
		rl.rlim_cur = 1u << 16;
	nfd = (int)rl.rlim_cur;
	by_fd = calloc((size_t)nfd, sizeof(*by_fd));
	if (!by_fd)
		return -1;
	all.next = all.prev = &all;
	if (conn_wire_init())
		return -1;
	sfs_cond_init_mono(&reap_cond);
	if (pthread_create(&reaper, NULL, reaper_main, NULL))
		return -1;
	reaper_running = 1;
	return 0;
}

void conn_stop(void)
{
	if (!reaper_running)
		return;
	pthread_mutex_lock(&lock);
	reaper_stop = 1;
	pthread_cond_signal(&reap_cond);
	pthread_mutex_unlock(&lock);
	pthread_join(reaper, NULL);
	reaper_running = 0;
}

unsigned conn_mhd_limit(void)
{
	int want = g_httpd.opts.conn_limit;

	/* ours is the limit: the library's only has room for evictions */
	if (want <= 0 || want > nfd / 2)
		want = nfd / 2;
	want = want * 2 > want + 64 ? want * 2 : want + 64;
	return (unsigned)(want < nfd - 256 ? want : nfd - 256);
}
