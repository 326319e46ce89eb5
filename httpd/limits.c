/*
 * Per-user limits: token buckets for the request rate (a stricter one for
 * uploads and imports) and a bandwidth bucket for downloads and streams.
 * A throttled body never blocks a pool thread: when the bucket is empty the
 * content reader suspends the connection and a timer thread resumes it.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include "httpd.h"
#include "speechfs/blob.h"
#include "speechfs/log.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define NSLOTS 256
#define CHUNK_MIN 4096

enum bucket_kind { BK_REQ, BK_UPLOAD, BK_BW, BK_MAX };

struct bucket {
	struct bucket *next;
	int64_t user;
	enum bucket_kind kind;
	double tokens;
	int64_t last_ns;
};

struct wake {
	struct wake *next;
	int64_t at_ns;
	struct MHD_Connection *conn;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bucket *slots[NSLOTS];

static pthread_mutex_t tlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tcond;
static struct wake *wakes;
static pthread_t timer;
static int timer_running, timer_stop;

/* Called with `lock` held; a full bucket on first use. */
static struct bucket *bucket_get(int64_t user, enum bucket_kind kind,
				 double burst)
{
	unsigned h = (unsigned)((uint64_t)user * 2654435761u + kind) % NSLOTS;
	struct bucket *b;

	for (b = slots[h]; b; b = b->next)
		if (b->user == user && b->kind == kind)
			return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->user = user;
	b->kind = kind;
	b->tokens = burst;
	b->last_ns = sfs_mono_ns();
	b->next = slots[h];
	slots[h] = b;
	return b;
}

static void refill(struct bucket *b, double rate, double burst)
{
	int64_t now = sfs_mono_ns();

	b->tokens += rate * (double)(now - b->last_ns) / 1e9;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_ns = now;
}

/* Take one token; 0 or the whole seconds until one is there. */
static int take(struct bucket *b, double rate, double burst)
{
	refill(b, rate, burst);
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 0;
	}
	return (int)ceil((1.0 - b->tokens) / rate);
}

int limits_take(const struct sfs_actor *a, int upload)
{
	const struct httpd_opts *o = &g_httpd.opts;
	struct bucket *b;
	int wait = 0;

	pthread_mutex_lock(&lock);
	if (upload && o->upload_rps > 0) {
		b = bucket_get(a->user, BK_UPLOAD, o->upload_burst);
		if (b)
			wait = take(b, o->upload_rps, o->upload_burst);
	}
	if (!wait && o->rate_rps > 0) {
		b = bucket_get(a->user, BK_REQ, o->rate_burst);
		if (b)
			wait = take(b, o->rate_rps, o->rate_burst);
	}
	pthread_mutex_unlock(&lock);
	return wait > 0 ? wait : 0;
}

void limits_set_rates(double rps, double burst, double upload_rps,
		      double upload_burst)
{
	pthread_mutex_lock(&lock);
	g_httpd.opts.rate_rps = rps;
	g_httpd.opts.rate_burst = burst;
	g_httpd.opts.upload_rps = upload_rps;
	g_httpd.opts.upload_burst = upload_burst;
	pthread_mutex_unlock(&lock);
}

/*
 * Failed authentications, per client address: a small table of buckets
 * probed from a keyed hash (an attacker cannot aim at another address's
 * slot), where a bucket that has refilled is as good as absent and is
 * reused first, so memory stays fixed whatever the number of addresses.
 */
#define AUTH_SLOTS 4096
#define AUTH_PROBE 8

struct auth_bucket {
	unsigned char key[16]; /* IPv4 address, or an IPv6 /64 */
	int used;
	double tokens;
	int64_t last_ns;
};

static struct auth_bucket auth_tab[AUTH_SLOTS];
static uint64_t auth_seed;

static int peer_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const unsigned char *a =
			((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const unsigned char v4map[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
		};

		if (memcmp(a, v4map, 12) == 0)
			memcpy(key, a + 12, 4);
		else
			memcpy(key + 4, a, 8);
		return 0;
	}
	return -1;
}

static uint64_t key_hash(const unsigned char key[16])
{
	uint64_t h = auth_seed ^ 0x9e3779b97f4a7c15ull;
	int i;

	for (i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h;
}

/* Called with `lock` held: the address's bucket, refilled; NULL if none. */
static struct auth_bucket *auth_find(const struct sockaddr *sa, int make)
{
	const struct httpd_opts *o = &g_httpd.opts;
	struct auth_bucket *b, *spare = NULL;
	unsigned char key[16];
	int64_t now = sfs_mono_ns();
	uint64_t h;
	int i;

	if (peer_key(sa, key))
		return NULL;
	if (!auth_seed && getrandom(&auth_seed, sizeof(auth_seed), 0) < 0)
		auth_seed = (uint64_t)now;
	h = key_hash(key);
	for (i = 0; i < AUTH_PROBE; i++) {
		b = &auth_tab[(h + (uint64_t)i) % AUTH_SLOTS];
		if (b->used) {
			b->tokens += o->auth_fail_rps *
				     (double)(now - b->last_ns) / 1e9;
			if (b->tokens >= o->auth_fail_burst) {
				b->tokens = o->auth_fail_burst;
				b->used = memcmp(b->key, key, 16) == 0;
			}
			b->last_ns = now;
		}
		if (b->used && memcmp(b->key, key, 16) == 0)
			return b;
		/* a free slot, else the one nearest to full */
		if (!b->used) {
			if (!spare || spare->used)
				spare = b;
		} else if (!spare ||
			   (spare->used && b->tokens > spare->tokens)) {
			spare = b;
		}
	}
	if (!make || !spare)
		return NULL;
	memcpy(spare->key, key, 16);
	spare->used = 1;
	spare->tokens = o->auth_fail_burst;
	spare->last_ns = now;
	return spare;
}

int limits_auth_wait(const struct sockaddr *peer)
{
	const struct httpd_opts *o = &g_httpd.opts;
	struct auth_bucket *b;
	int wait = 0;

	if (o->auth_fail_rps <= 0)
		return 0;
	pthread_mutex_lock(&lock);
	b = auth_find(peer, 0);
	if (b && b->tokens < 1.0)
		wait = (int)ceil((1.0 - b->tokens) / o->auth_fail_rps);
	pthread_mutex_unlock(&lock);
	return wait;
}

void limits_auth_failed(const struct sockaddr *peer)
{
	struct auth_bucket *b;

	if (g_httpd.opts.auth_fail_rps <= 0)
		return;
	pthread_mutex_lock(&lock);
	b = auth_find(peer, 1);
	if (b)
		b->tokens -= 1.0;
	pthread_mutex_unlock(&lock);
}

int64_t limits_bps(const struct sfs_actor *a)
{
	if (a->download_bps < 0)
		return __atomic_load_n(&g_httpd.opts.default_download_bps,
				       __ATOMIC_RELAXED);
	return a->download_bps;
}

static void *timer_main(void *arg)
{
	struct timespec ts;
	struct wake *w, **pp;
	int64_t now, next;

	(void)arg;
	pthread_mutex_lock(&tlock);
	for (;;) {
		now = sfs_mono_ns();
		next = now + 1000000000;
		for (pp = &wakes; (w = *pp);) {
			if (w->at_ns <= now || timer_stop) {
				*pp = w->next;
				MHD_resume_connection(w->conn);
				free(w);
				continue;
			}
			if (w->at_ns < next)
				next = w->at_ns;
			pp = &w->next;
		}
		if (timer_stop)
			break;
		sfs_mono_ts(&ts, next);
		pthread_cond_timedwait(&tcond, &tlock, &ts);
	}
	pthread_mutex_unlock(&tlock);
	return NULL;
}

int limits_init(void)
{
	sfs_cond_init_mono(&tcond);
	if (pthread_create(&timer, NULL, timer_main, NULL))
		return -1;
	timer_running = 1;
	return 0;
}

/* Resume every suspended download: required before MHD_stop_daemon. */
void limits_stop(void)
{
	struct bucket *b;
	int i;

	if (timer_running) {
		pthread_mutex_lock(&tlock);
		timer_stop = 1;
		pthread_cond_signal(&tcond);
		pthread_mutex_unlock(&tlock);
		pthread_join(timer, NULL);
		timer_running = 0;
	}
	for (i = 0; i < NSLOTS; i++)
		while ((b = slots[i])) {
			slots[i] = b->next;
			free(b);
		}
}

static void wake_at(struct MHD_Connection *conn, int64_t at_ns)
{
	struct wake *w = calloc(1, sizeof(*w));

	pthread_mutex_lock(&tlock);
	if (!w || timer_stop) {
		/* no timer to wait for: carry on at once */
		pthread_mutex_unlock(&tlock);
		free(w);
		MHD_resume_connection(conn);
		return;
	}
	w->at_ns = at_ns;
	w->conn = conn;
	w->next = wakes;
	wakes = w;
	pthread_cond_signal(&tcond);
	pthread_mutex_unlock(&tlock);
}

struct throttle {
	struct sfs_blob *b;
	int64_t off, len;
	int64_t user;
	double bps, burst;
	struct MHD_Connection *conn;
};

static ssize_t throttle_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct throttle *t = cls;
	struct bucket *b;
	int64_t left = t->len - (int64_t)pos, want, allowed = 0;
	double need = 0;
	size_t got = 0;

	if (left <= 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	want = left < (int64_t)max ? left : (int64_t)max;
	if (!httpd_stopping()) {
		pthread_mutex_lock(&lock);
		b = bucket_get(t->user, BK_BW, t->burst);
		if (b) {
			refill(b, t->bps, t->burst);
			allowed = (int64_t)b->tokens;
			if (allowed >= want ||
			    allowed >= (want < CHUNK_MIN ? want : CHUNK_MIN)) {
				if (allowed > want)
					allowed = want;
				b->tokens -= (double)allowed;
			} else {
				need = (double)(want < CHUNK_MIN ? want
								 : CHUNK_MIN) -
				       b->tokens;
				allowed = 0;
			}
		} else {
			allowed = want;
		}
		pthread_mutex_unlock(&lock);
		if (!allowed) {
			int64_t wait = (int64_t)(need / t->bps * 1e9);

			if (wait < 2000000)
				wait = 2000000;
			MHD_suspend_connection(t->conn);
			wake_at(t->conn, sfs_mono_ns() + wait);
			return 0;
		}
		want = allowed;
	}
	if (sfs_blob_pread(t->b, buf, (size_t)want, t->off + (int64_t)pos, &got,
			   NULL) ||
	    !got)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return (ssize_t)got;
}

static void throttle_free(void *cls)
{
	struct throttle *t = cls;

	sfs_blob_close(t->b);
	free(t);
}

struct MHD_Response *limits_throttled_response(struct req *r,
					       struct sfs_blob *b, int64_t off,
					       int64_t len, int64_t bps)
{
	struct MHD_Response *resp;
	struct throttle *t = calloc(1, sizeof(*t));

	if (!t) {
		sfs_blob_close(b);
		return NULL;
	}
	t->b = b;
	t->off = off;
	t->len = len;
	t->user = r->actor.user;
	t->bps = (double)bps;
	/* a quarter second of burst, never below one chunk */
	t->burst = t->bps / 4 > CHUNK_MIN ? t->bps / 4 : CHUNK_MIN;
	t->conn = r->conn;
	resp = MHD_create_response_from_callback(
		(uint64_t)len, 16 * 1024, throttle_read, t, throttle_free);
	if (!resp) {
		sfs_blob_close(b);
		free(t);
	}
	return resp;
}
