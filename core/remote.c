/*
 * The remote store's connection to its server (remote.h, remote_i.h): a
 * pool of libcurl handles kept alive between requests (one per thread in
 * a request, each its own TCP connection, sharing DNS and TLS sessions),
 * the server's features read from its OpenAPI document, new content
 * versions streamed from a file, Range GETs of content into a sink, and
 * the change feed. What a request sends is set on its handle by
 * remote_body.c; what the server answers is read by remote_answer.c
 * (error bodies, a file's JSON, headers).
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <jansson.h>
#include <pthread.h>
#include "speechfs/buf.h"
#include "speechfs/json.h"
#include "speechfs/log.h"
#include "speechfs/remote.h"
#include "speechfs/util.h"
#include "auth_i.h"
#include "curl_pool_i.h"
#include "remote_i.h"
#include "util_i.h"
#include "speechfs/banned.h"

#define API "/api/v1/speech-services"
#define ANSWER_MAX (64 << 20)

#define SINK_BUFFER (512 << 10)
#define EXPECT_FROM (1 << 20) /* bytes of a body sent after "100 Continue" */
#define RETRIES_429 4

struct sfs_remote {
	char base[512];	       /* the URL without a user:password@ (userinfo) */
	char *user, *password; /* the URL's, decoded, or NULL: none */
	char *auth_header;     /* X-API-Key: … or Authorization: Bearer … */
	pthread_mutex_t auth_mu; /* auth_header replaced (cred_renewed) */
	unsigned auth_gen;	 /* how many times, under auth_mu */
	char cred_file[512];	 /* where the key or token is: "" none */
	int is_token;
	int refused; /* the last answer was 401: said once */
	char cafile[512];
	char proxy[512]; /* "": none (libcurl's "" ignores the environment) */
	int timeout_s;
	int64_t window; /* sfs_remote_opts.write_window's bytes (0: none) */
	unsigned features;
	CURLSH *share;
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST]; /* one per kind */
	struct sfsi_curl_pool pool;
	int aborting; /* sfsi_remote_abort: transfers end now */
	int down;     /* the last request got no answer at all */
	int opened;   /* sfs_remote_open_opts is done: say when it is down */
	/* sfsi_remote_stopping's cut (set under stop_mu), what
	 * sfsi_remote_wait waits for on stop_cv (monotonic) */
	int stopping;
	int ending; /* sfsi_remote_stopping came, cut or not */
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	/* this client's origin, sent with every request (the change feed
	 * tells its changes by it) */
	int64_t origin;
	char origin_header[64];
	/* the caller's user id (GET /users/me), with SFS_REMOTE_ID_KEY */
	char user_id[SFS_ID_SIZE];
	unsigned scopes; /* its credentials' (GET /users/me), else all */
};

/* What a transfer's progress callback looks at. */
struct progress {
	struct sfs_remote *r;
	const int *cancel; /* the request's (sfsi_remote_req), or NULL */
	int stop_ends;	   /* the request's: it ends at r->stopping too */
	/* SFSI_STOP_STALLS: once cut, ended by SFSI_STOPPING_STALL_S
	 * seconds without a byte; the bytes moved and since when (ns) */
	int stalls;
	curl_off_t moved;
	int64_t still_since;
	int stalled; /* it was ended so */
};

/*
 * A last try waiting when the cut comes: bounded as one begun after it
 * (SFSI_STOPPING_STALL_S seconds without a byte, counted from the cut
 * at the earliest), not by the mount's timeout, which would hold the
 * mount's end (a new file's close, its create sent to a server that
 * stopped answering).
 */
static int stalled_after_cut(struct progress *p, curl_off_t moved)
{
	int64_t now;

	if (!p->stalls || !__atomic_load_n(&p->r->stopping, __ATOMIC_RELAXED))
		return 0;
	now = sfs_mono_ns();
	if (!p->still_since || moved != p->moved) {
		p->moved = moved;
		p->still_since = now;
		return 0;
	}
	if (now - p->still_since < (int64_t)SFSI_STOPPING_STALL_S * 1000000000)
		return 0;
	p->stalled = 1;
	return 1;
}

/*
 * Transfers in progress give up once the connection is being closed, or
 * their request is cancelled, or it ends at the front end's stop and
 * that came. libcurl calls this about once a second
 * even while the transfer waits for the socket (a server that stopped
 * reading, its buffers full), where nothing else of ours runs.
 */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
		       curl_off_t un)
{
	struct progress *p = arg;

	(void)dt;
	(void)ut;
	return __atomic_load_n(&p->r->aborting, __ATOMIC_SEQ_CST) ||
	       (p->cancel && __atomic_load_n(p->cancel, __ATOMIC_RELAXED)) ||
	       (p->stop_ends &&
		__atomic_load_n(&p->r->stopping, __ATOMIC_RELAXED)) ||
	       stalled_after_cut(p, dn + un);
}

void sfsi_remote_abort(struct sfs_remote *r)
{
	__atomic_store_n(&r->aborting, 1, __ATOMIC_SEQ_CST);
}

/* sfsi_remote_last_tries: the calling thread's requests are last tries */
static __thread int last_tries;

void sfsi_remote_last_tries(int on)
{
	last_tries = on;
}

enum sfsi_at_stop sfsi_remote_at_stop(const struct sfsi_remote_req *q)
{
	return q->at_stop == SFSI_STOP_ENDS && last_tries ? SFSI_STOP_STALLS
							  : q->at_stop;
}

void sfsi_remote_stopping(struct sfs_remote *r, int cut)
{
	pthread_mutex_lock(&r->stop_mu);
	__atomic_store_n(&r->ending, 1, __ATOMIC_RELAXED);
	if (cut)
		__atomic_store_n(&r->stopping, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&r->stop_cv);
	pthread_mutex_unlock(&r->stop_mu);
}

const int *sfsi_remote_stop_flag(struct sfs_remote *r)
{
	return &r->stopping;
}

int sfsi_remote_is_stopping(struct sfs_remote *r)
{
	return __atomic_load_n(&r->stopping, __ATOMIC_RELAXED);
}

enum sfs_status sfsi_remote_cut_said(struct sfs_remote *r, enum sfs_status st,
				     const char *id, int new_file,
				     struct sfs_err *e)
{
	if (st != SFS_UNAVAILABLE || !sfsi_remote_is_stopping(r))
		return st;
	sfs_err_init(e);
	if (new_file)
		return sfs_errf(e, SFS_UNAVAILABLE, SFS_R_NONE,
				"the mount is ending: the new file '%s' is "
				"cut off before the server's answer (the "
				"server does not make it, unless it got all of "
				"its content)",
				id);
	return sfs_errf(e, SFS_UNAVAILABLE, SFS_R_NONE,
			"the mount is ending: the upload of '%s' is cut off "
			"before the server's answer (the server keeps the "
			"file as it was, unless it got all of the new "
			"content)",
			id);
}

int sfsi_remote_wait(struct sfs_remote *r, int64_t ms)
{
	struct timespec t;
	int stop;

	sfs_deadline(&t, ms);
	pthread_mutex_lock(&r->stop_mu);
	while (!r->stopping &&
	       pthread_cond_timedwait(&r->stop_cv, &r->stop_mu, &t) == 0)
		;
	stop = r->stopping;
	pthread_mutex_unlock(&r->stop_mu);
	return stop;
}

/* ---- requests ---------------------------------------------------------- */

/* Where an answer's body goes: a 2xx to the sink, anything else to b. */
struct answer {
	CURL *curl;
	struct sfs_buf *b;
	sfsi_remote_sink sink;
	void *arg;
	int to_sink; /* -1 not known yet */
	int sink_st;
};

static size_t on_answer(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	long code = 0;

	if (a->to_sink < 0) {
		curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &code);
		a->to_sink = a->sink && code >= 200 && code < 300;
	}
	if (!a->to_sink)
		return sfs_buf_add(a->b, p, size * n) ? 0 : size * n;
	a->sink_st = a->sink(a->arg, p, size * n);
	return a->sink_st ? 0 : size * n;
}

/*
 * What the handles share (DNS, TLS sessions, the share itself): a lock
 * per kind of data, as libcurl may take one kind while holding another.
 */
static void share_lock(CURL *c, curl_lock_data data, curl_lock_access acc,
		       void *arg)
{
	struct sfs_remote *r = arg;

	(void)c;
	(void)acc;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&r->share_mu[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *arg)
{
	struct sfs_remote *r = arg;

	(void)c;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&r->share_mu[data]);
}

/*
 * The server stopped answering, or answers again: said once each way
 * (each call meanwhile fails with its own error, after the timeout at
 * most; content already in the block cache is still read).
 */
static void note_down(struct sfs_remote *r, const char *why)
{
	if (!__atomic_exchange_n(&r->down, 1, __ATOMIC_SEQ_CST) && r->opened)
		sfs_warn("remote",
			 "'%s' does not answer (%s): calls fail until it is "
			 "back",
			 r->base, why);
}

/*
 * At an HTTP answer only: a connection made says nothing (a hung or
 * SIGSTOPped server's kernel still completes the handshake), and the
 * offline answers (sfsi_rstore_offline) go by r->down. The change feed
 * asks at once while down, so a server back is noted within its retry.
 */
static void note_up(struct sfs_remote *r)
{
	if (__atomic_exchange_n(&r->down, 0, __ATOMIC_SEQ_CST))
		sfs_info("remote", "'%s' answers again", r->base);
}

/*
 * The handle's options for one request of q (reset first): where it goes,
 * its time bounds, the answer's way into a (a->curl set) and the Range.
 */
/* The handle reset, and where it connects to, how and within how long. */
static void set_connection(struct sfs_remote *r, CURL *c, const char *url,
			   int connect_s)
{
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_SHARE, r->share);
	/* proxies only as configured: no *_proxy nor no_proxy of the env */
	curl_easy_setopt(c, CURLOPT_PROXY, r->proxy);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (r->cafile[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, r->cafile);
	if (r->user) { /* basic auth at a reverse proxy, as in the URL */
		curl_easy_setopt(c, CURLOPT_USERNAME, r->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, r->password);
	}
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)connect_s);
}

static void set_transfer(struct sfs_remote *r, CURL *c,
			 const struct sfsi_remote_req *q, const char *url,
			 struct answer *a)
{
	char range[64];

	set_connection(r, c, url,
		       q->stall_s && q->stall_s < r->timeout_s ? q->stall_s
							       : r->timeout_s);
	/*
	 * A stall ends a transfer after the timeout (no byte for that
	 * long), whatever its size; a request with a small answer must
	 * also be answered within twice the timeout. One that moves a
	 * file's bytes has no bound on its whole: it sends them (q->fd: a
	 * PUT of content, or a form's part) or receives them into a sink
	 * (a block's Range GET, as remote_range.c's), and a large one on a
	 * slow link takes as long as it takes while bytes arrive. A
	 * request given its own bound (the change feed's long poll, silent
	 * while nothing changes) has only that one, and so has one given a
	 * stall bound of its own (stall_s).
	 */
	if (q->stall_s || !q->timeout_s) {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(
			c, CURLOPT_LOW_SPEED_TIME,
			(long)(q->stall_s ? q->stall_s : r->timeout_s));
	}
	curl_easy_setopt(c, CURLOPT_TIMEOUT,
			 q->fd >= 0 || q->source || q->stall_s ||
					 (q->sink && !q->timeout_s)
				 ? 0L
				 : (long)(q->timeout_s ? q->timeout_s
						       : 2 * r->timeout_s));
	/*
	 * Content into a sink (a block's Range GET) in large reads: libcurl's
	 * default 16 KiB buffer made a recv, a poll and a callback per 16 KiB.
	 */
	if (q->sink)
		curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)SINK_BUFFER);
	a->curl = c;
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	/* libcurl keeps a copy of the string */
	if (q->len > 0) {
		snprintf(range, sizeof(range), "%lld-%lld", (long long)q->off,
			 (long long)(q->off + q->len - 1));
		curl_easy_setopt(c, CURLOPT_RANGE, range);
	}
}

/*
 * The server answered 401: the key or token file read again (its first
 * line, as the mount read it); if it holds another one, the requests from
 * now on send that. So a key rotated or a token renewed in place (a JWT
 * expires) goes on without a remount; the request that met the 401 is
 * sent once more with it when it can be (sfsi_remote_request).
 */
static void cred_renewed(struct sfs_remote *r, const char *why)
{
	char cred[4200], *hdr = NULL;
	ssize_t n = -1;
	int fd, first = !__atomic_exchange_n(&r->refused, 1, __ATOMIC_SEQ_CST);

	fd = r->cred_file[0] ? open(r->cred_file, O_RDONLY | O_CLOEXEC) : -1;
	if (fd >= 0) {
		n = read(fd, cred, sizeof(cred) - 1);
		close(fd);
	}
	if (n > 0) {
		cred[n] = '\0';
		n = (ssize_t)strcspn(cred, "\r\n");
		while (n > 0 && (cred[n - 1] == ' ' || cred[n - 1] == '\t'))
			n--;
		cred[n] = '\0';
	}
	if (n > 0 &&
	    asprintf(&hdr, "%s%s",
		     r->is_token ? "Authorization: Bearer " : "X-API-Key: ",
		     cred) < 0)
		hdr = NULL;
	explicit_bzero(cred, sizeof(cred));
	pthread_mutex_lock(&r->auth_mu);
	if (hdr && strcmp(hdr, r->auth_header)) {
		char *old = r->auth_header;

		r->auth_header = hdr;
		r->auth_gen++;
		hdr = old;
		first = 0;
		sfs_info("remote",
			 "'%s' refused the %s (%s): '%s' holds another, "
			 "sent from now on",
			 r->base, r->is_token ? "token" : "key", why,
			 r->cred_file);
	}
	pthread_mutex_unlock(&r->auth_mu);
	if (hdr)
		explicit_bzero(hdr, strlen(hdr));
	free(hdr);
	if (first)
		sfs_warn("remote",
			 "'%s' refuses the %s (%s): calls fail with EACCES "
			 "until %s holds one it takes",
			 r->base, r->is_token ? "token" : "key", why,
			 r->cred_file[0] ? r->cred_file : "a remount");
}

/* Which credentials auth_header holds (cred_renewed counts them). */
static unsigned auth_gen(struct sfs_remote *r)
{
	unsigned gen;

	pthread_mutex_lock(&r->auth_mu);
	gen = r->auth_gen;
	pthread_mutex_unlock(&r->auth_mu);
	return gen;
}

/*
 * The request's header lines (the caller frees the list); *gen: which
 * credentials they carry.
 */
static struct curl_slist *
headers_of(struct sfs_remote *r, const struct sfsi_remote_req *q, unsigned *gen)
{
	struct curl_slist *h = NULL;

	pthread_mutex_lock(&r->auth_mu);
	h = curl_slist_append(h, r->auth_header); /* a copy */
	*gen = r->auth_gen;
	pthread_mutex_unlock(&r->auth_mu);
	h = curl_slist_append(h, r->origin_header);
	if (q->header)
		h = curl_slist_append(h, q->header);
	if (q->body && q->fd < 0)
		h = curl_slist_append(h, "Content-Type: application/json");
	/*
	 * A small body goes with its head: libcurl would wait for the
	 * server's "100 Continue" first (a round trip more per close of a
	 * small file), which spares the sending of a large one only.
	 */
	if (q->fd >= 0 && q->size < EXPECT_FROM)
		h = curl_slist_append(h, "Expect:");
	return h;
}

/* Run the transfer, again after a 429 (*code: the answer's status). */
static CURLcode perform(struct sfs_remote *r, CURL *c,
			const struct sfsi_remote_req *q, struct sfs_buf *b,
			struct answer *a, long *code)
{
	curl_off_t wait;
	CURLcode rc;
	int tries;

	for (tries = 0;; tries++) {
		rc = curl_easy_perform(c);
		*code = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
		/*
		 * Too many requests (the server's rate limit): wait as long
		 * as it says, within the timeout, a few times; an upload
		 * from a file starts again from its beginning.
		 */
		if (rc != CURLE_OK || *code != 429 || tries == RETRIES_429 ||
		    q->source || (q->fd >= 0 && lseek(q->fd, 0, SEEK_SET) < 0))
			break;
		wait = 0;
		curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &wait);
		wait = wait < 1 ? 1 : wait > r->timeout_s ? r->timeout_s : wait;
		sleep((unsigned)wait);
		sfs_buf_reset(b);
		a->to_sink = -1;
	}
	return rc;
}

/*
 * Whether q can be sent again as it was: not a body from a source (a
 * stream, gone once sent); a file's bytes from their start again.
 */
static int resendable(const struct sfsi_remote_req *q)
{
	return !q->source && (q->fd < 0 || lseek(q->fd, 0, SEEK_SET) == 0);
}

/*
 * A gateway's 502, 503 or 504 without our error body (a reverse proxy's
 * own page: the server behind it did not answer or could not be
 * reached) is no answer of the server: a call fails as when the server
 * itself cannot be reached, and the offline answers start. A speechfsd's
 * own 503 (busy, too many waiters) has our body: an answer.
 */
static int gateway_error(long code, const struct sfs_buf *b)
{
	json_t *j;
	int ours;

	if (code != 502 && code != 503 && code != 504)
		return 0;
	j = b->len ? json_loadb(b->buf, b->len, 0, NULL) : NULL;
	ours = json_is_string(json_object_get(j, "error_type"));
	json_decref(j);
	return !ours;
}

/*
 * sfsi_remote_request's one try; *again set when the server refused the
 * credentials it sent (401) and others are there now (cred_renewed, by
 * this request or another meanwhile) that it can be sent with again.
 */
static enum sfs_status request_once(struct sfs_remote *r,
				    const struct sfsi_remote_req *q,
				    struct sfs_buf *b, struct sfs_err *e,
				    int *again)
{
	struct curl_slist *h;
	struct sfsi_remote_body body;
	struct answer a = {
		.b = b, .sink = q->sink, .arg = q->arg, .to_sink = -1
	};
	enum sfsi_at_stop at_stop = sfsi_remote_at_stop(q);
	struct progress pr = { .r = r,
			       .cancel = q->cancel,
			       .stop_ends = at_stop == SFSI_STOP_ENDS,
			       .stalls = at_stop == SFSI_STOP_STALLS };
	struct sfsi_remote_req last;
	char url[2048], why[CURL_ERROR_SIZE] = "";
	enum sfs_status st;
	unsigned gen;
	long code = 0;
	int gateway, answered;
	CURLcode rc;
	CURL *c;

	*again = 0;
	snprintf(url, sizeof(url), "%s%s", r->base, q->path);
	if (sfsi_would_wait(e, url))
		return SFS_WOULD_WAIT;
	/*
	 * Not begun once the cut came: it would be cut off at once, its
	 * bytes perhaps in the server's socket buffers already (the server
	 * may then still act on them).
	 */
	if (pr.stop_ends && sfsi_remote_is_stopping(r)) {
		if (q->http_code)
			*q->http_code = 0;
		if (q->dir_state && q->dir_state_size)
			q->dir_state[0] = '\0';
		if (q->crc32c)
			*q->crc32c = -1;
		return sfs_errf(e, SFS_UNAVAILABLE, SFS_R_NONE,
				"'%s': not sent, the mount is ending", url);
	}
	/* a last try once the front end stopped: a stall ends it */
	if (at_stop == SFSI_STOP_STALLS &&
	    __atomic_load_n(&r->ending, __ATOMIC_RELAXED)) {
		last = *q;
		last.stall_s = SFSI_STOPPING_STALL_S;
		q = &last;
	}
	c = sfsi_curl_pool_take(&r->pool);
	if (!c)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	set_transfer(r, c, q, url, &a);
	h = sfsi_remote_body_set(&body, c, q, headers_of(r, q, &gen));
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &pr);
	/* libcurl's own words say which certificate check failed, where its
	 * code's text says only "SSL peer certificate ... was not OK" */
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, why);
	rc = perform(r, c, q, b, &a, &code);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	gateway = rc == CURLE_OK && gateway_error(code, b);
	answered = rc == CURLE_OK && !gateway;
	if (q->http_code)
		*q->http_code = answered ? code : 0;
	if (q->dir_state && q->dir_state_size)
		sfsi_remote_dir_state_of(c, answered, q->dir_state,
					 q->dir_state_size);
	if (q->crc32c)
		*q->crc32c = sfsi_remote_crc32c_of(c, answered);
	curl_slist_free_all(h);
	sfsi_remote_body_release(&body);
	/*
	 * A body cut off (a stream that turned out of order): its connection
	 * goes with the handle, so the server sees the body end now, not at
	 * its idle timeout, and nothing else is ever sent on it. A handle
	 * that sent a trailer goes too: reused, its next chunked upload wrote
	 * a chunk's size 8 bytes in front of libcurl's upload buffer (ASan,
	 * libcurl 7.88.1: test_fs_remote_check's streamed rewrite; a fresh
	 * handle per such upload ends it). Our guess at the cause, not
	 * checked in libcurl's source: the handle's trailer state stays
	 * "done" past curl_easy_reset, so no room is kept for the size.
	 */
	if (q->source && (rc != CURLE_OK || q->content_crc32c))
		curl_easy_cleanup(c);
	else
		sfsi_curl_pool_give(&r->pool, c);
	if (rc == CURLE_WRITE_ERROR && a.sink_st)
		return sfs_errf(e, (enum sfs_status)a.sink_st, SFS_R_NONE,
				"'%s': more bytes than asked for", url);
	if (rc != CURLE_OK && rc != CURLE_ABORTED_BY_CALLBACK)
		note_down(r, curl_easy_strerror(rc));
	if (gateway) {
		snprintf(why, sizeof(why), "HTTP %ld from a gateway", code);
		note_down(r, why);
		return sfs_errf(e, SFS_UNAVAILABLE, SFS_R_NONE, "'%s': %s", url,
				why);
	}
	if (pr.stalled)
		return sfs_errf(e, SFS_UNAVAILABLE, SFS_R_NONE,
				"'%s': no answer within %d s of the mount's "
				"stop",
				url, SFSI_STOPPING_STALL_S);
	/* a certificate no trusted CA signed, or not for this host: the
	 * mount says which option takes the CA */
	if (rc != CURLE_OK)
		return sfs_errf(e, SFS_UNAVAILABLE,
				rc == CURLE_PEER_FAILED_VERIFICATION
					? SFS_R_CERTIFICATE_NOT_TRUSTED
					: SFS_R_NONE,
				"'%s': %s", url,
				why[0] ? why : curl_easy_strerror(rc));
	note_up(r);
	st = sfs_remote_status(code, b->buf, b->len, e);
	if (code == 401 && r->opened) { /* at mount, refused is the answer */
		cred_renewed(r, e ? e->message : "401");
		*again = auth_gen(r) != gen && resendable(q);
	} else if (code) {
		__atomic_store_n(&r->refused, 0, __ATOMIC_SEQ_CST);
	}
	return st;
}

/*
 * A 401 refused nothing the server did: a request that met one with
 * credentials renewed since goes once more (with those), so a key
 * rotated or a token renewed in place costs no call an error.
 */
enum sfs_status sfsi_remote_request(struct sfs_remote *r,
				    const struct sfsi_remote_req *q,
				    struct sfs_buf *b, struct sfs_err *e)
{
	enum sfs_status st;
	int again;

	st = request_once(r, q, b, e, &again);
	if (again) {
		sfs_buf_reset(b);
		sfs_err_init(e);
		st = request_once(r, q, b, e, &again);
	}
	return st;
}

/* ---- for a connection of our own framing (remote_range.c) ---- */

int sfsi_remote_plain_http(struct sfs_remote *r)
{
	return !strncasecmp(r->base, "http://", 7) && !r->proxy[0] &&
	       !r->user && !__atomic_load_n(&r->aborting, __ATOMIC_SEQ_CST);
}

int sfsi_remote_connect_only(struct sfs_remote *r, void *curl, const char *url,
			     long buffer_size, const int *cancel, int stop_ends)
{
	struct progress pr = { .r = r,
			       .cancel = cancel,
			       .stop_ends = stop_ends };
	CURLcode rc;

	set_connection(r, curl, url, r->timeout_s);
	curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, buffer_size);
	/* a server that drops SYNs holds the connect: ended as a request */
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &pr);
	rc = curl_easy_perform(curl);
	/* pr ends here; the handle, kept in a pool, must not point at it */
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 1L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, NULL);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, NULL);
	return (int)rc;
}

int sfsi_remote_head_lines(struct sfs_remote *r, char *out, size_t size)
{
	int n;

	pthread_mutex_lock(&r->auth_mu);
	n = snprintf(out, size, "%s\r\n%s\r\n", r->auth_header,
		     r->origin_header);
	pthread_mutex_unlock(&r->auth_mu);
	return n >= 0 && (size_t)n < size ? n : -1;
}

int sfsi_remote_aborting(struct sfs_remote *r)
{
	return __atomic_load_n(&r->aborting, __ATOMIC_SEQ_CST);
}

void sfsi_remote_answered(struct sfs_remote *r, const char *why)
{
	if (why) {
		note_down(r, why);
		return;
	}
	note_up(r);
	__atomic_store_n(&r->refused, 0, __ATOMIC_SEQ_CST);
}

int64_t sfsi_remote_origin(const struct sfs_remote *r)
{
	return r->origin;
}

int sfsi_remote_timeout(const struct sfs_remote *r)
{
	return r->timeout_s;
}

int64_t sfsi_remote_window(const struct sfs_remote *r)
{
	return r->window;
}

/* sfs_remote_opts.write_window as bytes: 0 no bound. */
static int64_t window_of(int64_t asked)
{
	if (asked < 0)
		return 0;
	if (!asked)
		return SFS_REMOTE_WINDOW_DEFAULT;
	return asked < SFS_REMOTE_WINDOW_MIN ? SFS_REMOTE_WINDOW_MIN : asked;
}

int sfsi_remote_down(struct sfs_remote *r)
{
	return __atomic_load_n(&r->down, __ATOMIC_SEQ_CST);
}

/*
 * One request: method and path under the base URL, an optional upload
 * (fd, its size) and extra header; the answer's body into b. The core's
 * status of the answer (SFS_UNAVAILABLE when there was none).
 */
static enum sfs_status request(struct sfs_remote *r, const char *method,
			       const char *path, int fd, int64_t size,
			       const char *header, int timeout_s,
			       struct sfs_buf *b, struct sfs_err *e)
{
	struct sfsi_remote_req q = { .method = method,
				     .path = path,
				     .fd = fd,
				     .size = size,
				     .header = header,
				     .timeout_s = timeout_s };

	return sfsi_remote_request(r, &q, b, e);
}

/* Does the operation op (an OpenAPI Operation) take parameter name? */
static int has_param(json_t *op, const char *name)
{
	json_t *v, *p;
	size_t i;

	v = json_object_get(op, "parameters");
	json_array_foreach(v, i, p)
	{
		if (json_is_string(json_object_get(p, "name")) &&
		    !strcmp(json_string_value(json_object_get(p, "name")),
			    name))
			return 1;
	}
	return 0;
}

/*
 * The scopes an answer of /users/me names (a key's or a token's, as the
 * server checks them), or SFS_SCOPE_ALL when it names none (a server
 * that does not say: each call finds out).
 */
static unsigned scopes_of(json_t *a)
{
	unsigned bits = 0;
	json_t *v;
	size_t i;

	if (!json_is_array(a))
		return SFS_SCOPE_ALL;
	json_array_foreach(a, i, v)
	{
		if (json_is_string(v))
			bits |= sfs_scope_parse(json_string_value(v));
	}
	return bits;
}

/*
 * The caller's user id (GET /users/me), from which the ids of the files
 * it makes with an idKey derive: the feature SFS_REMOTE_ID_KEY; and the
 * scopes of its credentials. Its failure fails the open, as the
 * document's does. Asked of a server with idKey only: an older one is
 * asked nothing new (test_fs_remote_lost's older server), and its
 * credentials' scopes are not known (all, as before).
 */
static enum sfs_status read_user(struct sfs_remote *r, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	enum sfs_status st;
	struct sfs_err le;
	json_t *j = NULL;
	const char *id;

	sfs_err_init(&le);
	st = request(r, "GET", API "/users/me", -1, 0, NULL, 0, &b, &le);
	if (!st) {
		j = json_loadb(b.buf, b.len, 0, NULL);
		id = json_string_value(json_object_get(j, "id"));
		r->scopes = scopes_of(json_object_get(j, "scopes"));
		if (id && sfs_uuid_valid(id)) {
			(void)sfsi_uuid_norm(id, r->user_id);
			r->features |= SFS_REMOTE_ID_KEY;
		} else {
			st = sfs_errf(&le, SFS_IO, SFS_R_NONE,
				      "no user id in the answer");
		}
	}
	if (st)
		st = sfs_errf(e, st, le.reason,
			      "cannot read the caller's id '%s%s': %s", r->base,
			      API "/users/me", le.message);
	json_decref(j);
	sfs_buf_release(&b);
	return st;
}

/*
 * The server's extensions, from its OpenAPI document. No document (404)
 * is a server of the seed's API only (the seed names none); any other
 * failure, or an answer that is no OpenAPI document, fails the open: a
 * full server taken for a seed-only one would lose its extensions for
 * the mount's life without a word.
 */
static enum sfs_status read_features(struct sfs_remote *r, struct sfs_err *e)
{
	static const char doc_path[] = "/api/v1/openapi.json";
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	json_t *doc = NULL, *paths, *content, *post, *put;
	struct sfs_err le;
	enum sfs_status st;

	r->features = 0;
	r->scopes = SFS_SCOPE_ALL;
	sfs_err_init(&le);
	st = request(r, "GET", doc_path, -1, 0, NULL, 0, &b, &le);
	if (st == SFS_NOT_FOUND) {
		st = SFS_OK;
		goto out;
	}
	if (st) {
		st = sfs_errf(e, st, le.reason,
			      "cannot read the server's OpenAPI document "
			      "'%s%s' (its extensions): %s",
			      r->base, doc_path, le.message);
		goto out;
	}
	doc = json_loadb(b.buf, b.len, 0, NULL);
	paths = json_object_get(doc, "paths");
	if (!json_is_object(paths)) {
		st = sfs_errf(e, SFS_IO, SFS_R_NONE,
			      "'%s%s' is not an OpenAPI document (no "
			      "\"paths\" object)",
			      r->base, doc_path);
		goto out;
	}
	content = json_object_get(paths, API "/files/{id}/content");
	if (json_object_get(content, "put"))
		r->features |= SFS_REMOTE_CONTENT;
	/* said where the uploads answer (POST /files's comes with it) */
	put = json_object_get(json_object_get(content, "put"), "responses");
	if (json_object_get(
		    json_object_get(json_object_get(put, "200"), "headers"),
		    "X-Speechfs-Content-Crc32c"))
		r->features |= SFS_REMOTE_CRC32C;
	if (json_object_get(paths, API "/directories/rename"))
		r->features |= SFS_REMOTE_DIRS;
	if (json_object_get(paths, API "/changes"))
		r->features |= SFS_REMOTE_CHANGES;
	if (json_object_get(paths, API "/files/{id}/xattrs"))
		r->features |= SFS_REMOTE_XATTRS;
	if (json_object_get(paths, API "/space"))
		r->features |= SFS_REMOTE_SPACE;
	if (json_object_get(paths, API "/files/{id}/sync"))
		r->features |= SFS_REMOTE_LAZY;
	if (json_object_get(paths, API "/files/{id}/uploads"))
		r->features |= SFS_REMOTE_UPLOADS;
	if (has_param(json_object_get(json_object_get(paths, API "/files/{id}"),
				      "delete"),
		      "keepDirs"))
		r->features |= SFS_REMOTE_KEEP_DIRS;
	post = json_object_get(json_object_get(paths, API "/files"), "post");
	if (has_param(post, "idKey") && json_object_get(paths, API "/users/me"))
		st = read_user(r, e);
out:
	json_decref(doc);
	sfs_buf_release(&b);
	return st;
}

/*
 * An '@' after the authority (which ends at the first '/', '?' or '#'):
 * a server's base URL never has one, but a user:password typed
 * unencoded makes one that libcurl parses otherwise:
 * http://alice:2024/Secret@gw is host alice, port 2024, and the
 * password would be in r->base, so in every line.
 */
static bool at_after_authority(const char *url)
{
	const char *p = strstr(url, "://");

	p = p ? p + 3 : url;
	return strchr(p + strcspn(p, "/?#"), '@') != NULL;
}

/*
 * r->base: url without its user:password@ (basic auth at a reverse
 * proxy), which every log line and error message names the server by;
 * the user and password go to libcurl apart (r->user, r->password), as
 * it takes them from a URL: percent-decoded. -1 for a URL libcurl cannot
 * parse or with an '@' after its authority (r->base left empty: its
 * requests would all fail or go elsewhere, and the lines would tell a
 * password typed unencoded, with a '/', '?' or '#').
 */
static int set_base(struct sfs_remote *r, const char *url)
{
	char *user = NULL, *pass = NULL, *rest = NULL;
	CURLU *u = curl_url();
	int ret = 0;

	sfs_strlcpy(r->base, url, sizeof(r->base));
	if (u && (curl_url_set(u, CURLUPART_URL, url, 0) ||
		  at_after_authority(url))) {
		explicit_bzero(r->base, sizeof(r->base));
		ret = -1;
	}
	if (!u || ret)
		goto out;
	(void)curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE);
	(void)curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE);
	if ((!user && !pass) || curl_url_set(u, CURLUPART_USER, NULL, 0) ||
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) ||
	    curl_url_get(u, CURLUPART_URL, &rest, 0))
		goto out;
	r->user = strdup(user ? user : "");
	r->password = strdup(pass ? pass : "");
	sfs_strlcpy(r->base, rest, sizeof(r->base));
out:
	if (pass)
		explicit_bzero(pass, strlen(pass));
	curl_free(user);
	curl_free(pass);
	curl_free(rest);
	curl_url_cleanup(u);
	return ret;
}

const char *sfs_remote_url(const struct sfs_remote *r)
{
	return r->base;
}

enum sfs_status sfs_remote_open_opts(const struct sfs_remote_opts *o,
				     struct sfs_remote **out, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	struct sfs_remote *r;
	enum sfs_status st;
	const char *cred = o->token ? o->token : o->api_key;
	int i;

	*out = NULL;
	if (!o->url || strlen(o->url) >= sizeof(r->base) ||
	    (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"the URL must be http://HOST[:PORT] or "
				"https://HOST[:PORT]");
	if (!cred || !cred[0] || strlen(cred) > 4096 ||
	    strcspn(cred, "\r\n") != strlen(cred))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"the key or token is empty, too long or not "
				"one line");
	if (o->cafile && strlen(o->cafile) >= sizeof(r->cafile))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"the CA file's name is too long");
	if (o->proxy && strlen(o->proxy) >= sizeof(r->proxy))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"the proxy's URL is too long");
	r = calloc(1, sizeof(*r));
	if (!r)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	sfs_cond_init_mono(&r->stop_cv);
	sfsi_curl_pool_init(&r->pool);
	pthread_mutex_init(&r->auth_mu, NULL);
	pthread_mutex_init(&r->stop_mu, NULL);
	r->is_token = o->token != NULL;
	if (o->cred_file && strlen(o->cred_file) < sizeof(r->cred_file))
		sfs_strlcpy(r->cred_file, o->cred_file, sizeof(r->cred_file));
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&r->share_mu[i], NULL);
	if (set_base(r, o->url)) {
		sfs_remote_close(r);
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"the URL cannot be parsed (in a user:password "
				"'/', '?', '#' and '@' are written %%2F, %%3F, "
				"%%23 and %%40)");
	}
	while (strlen(r->base) > 8 && r->base[strlen(r->base) - 1] == '/')
		r->base[strlen(r->base) - 1] = '\0';
	if (o->cafile)
		sfs_strlcpy(r->cafile, o->cafile, sizeof(r->cafile));
	if (o->proxy)
		sfs_strlcpy(r->proxy, o->proxy, sizeof(r->proxy));
	r->auth_header = malloc(strlen(cred) + 32);
	r->share = curl_share_init();
	if (!r->auth_header || !r->share) {
		sfs_remote_close(r);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	snprintf(r->auth_header, strlen(cred) + 32, "%s%s",
		 o->token ? "Authorization: Bearer " : "X-API-Key: ", cred);
	if (sfsi_random(&r->origin, sizeof(r->origin)))
		r->origin = (int64_t)getpid() << 20 ^ sfs_mono_ns();
	r->origin &= INT64_MAX;
	if (!r->origin)
		r->origin = 1;
	snprintf(r->origin_header, sizeof(r->origin_header),
		 "X-Speechfs-Origin: %lld", (long long)r->origin);
	curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(r->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(r->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(r->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(r->share, CURLSHOPT_USERDATA, r);
	r->timeout_s = o->timeout_s > 0 ? o->timeout_s : 10;
	r->window = window_of(o->write_window);
	/*
	 * The server is there and takes the credentials: asked of a seed
	 * route (a page of one file), which every server has; /healthz is
	 * no route of the seed's API.
	 */
	st = request(r, "GET", API "/files?size=1", -1, 0, NULL, 0, &b, e);
	sfs_buf_release(&b);
	if (!st)
		st = read_features(r, e);
	if (st) {
		sfs_remote_close(r);
		return st;
	}
	r->opened = 1;
	*out = r;
	return SFS_OK;
}

enum sfs_status sfs_remote_open(const char *base_url, const char *api_key,
				int timeout_s, struct sfs_remote **out,
				struct sfs_err *e)
{
	struct sfs_remote_opts o = { .url = base_url,
				     .api_key = api_key,
				     .timeout_s = timeout_s };

	return sfs_remote_open_opts(&o, out, e);
}

void sfs_remote_close(struct sfs_remote *r)
{
	int i;

	if (!r)
		return;
	sfsi_curl_pool_release(&r->pool);
	if (r->share)
		curl_share_cleanup(r->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&r->share_mu[i]);
	pthread_mutex_destroy(&r->auth_mu);
	pthread_cond_destroy(&r->stop_cv);
	pthread_mutex_destroy(&r->stop_mu);
	if (r->auth_header)
		explicit_bzero(r->auth_header, strlen(r->auth_header));
	free(r->auth_header);
	if (r->password)
		explicit_bzero(r->password, strlen(r->password));
	free(r->user);
	free(r->password);
	free(r);
}

unsigned sfs_remote_features(const struct sfs_remote *r)
{
	return r->features;
}

unsigned sfs_remote_scopes(const struct sfs_remote *r)
{
	return r->scopes;
}

const char *sfs_remote_user_id(const struct sfs_remote *r)
{
	return r->user_id;
}

enum sfs_status sfs_remote_file_get(struct sfs_remote *r, const char *id,
				    struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	char path[128];
	enum sfs_status st;

	sfs_file_init(out);
	if (!sfs_uuid_valid(id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this id exists");
	snprintf(path, sizeof(path), API "/files/%s", id);
	st = request(r, "GET", path, -1, 0, NULL, 0, &b, e);
	if (!st)
		st = sfs_remote_file_decode(b.buf, b.len, out, e);
	sfs_buf_release(&b);
	return st;
}

enum sfs_status sfs_remote_set_content(struct sfs_remote *r, const char *id,
				       int fd, const char *if_match,
				       unsigned flags, struct sfs_file *out,
				       struct sfs_err *e)
{
	return sfsi_remote_put_content(r, id, fd, if_match, flags, out, NULL, 0,
				       NULL, NULL, SFSI_STOP_WAITS, e);
}

enum sfs_status sfsi_remote_put_content(
	struct sfs_remote *r, const char *id, int fd, const char *if_match,
	unsigned flags, struct sfs_file *out, char *dir_state,
	size_t dir_state_size, int64_t *crc32c, const uint32_t *send_crc32c,
	enum sfsi_at_stop at_stop, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	struct sfsi_remote_req q = { .method = "PUT",
				     .fd = fd,
				     .dir_state = dir_state,
				     .dir_state_size = dir_state_size,
				     .crc32c = crc32c,
				     .content_crc32c = send_crc32c,
				     .at_stop = at_stop };
	char path[128], hdr[96];
	enum sfs_status st;
	off_t size;

	if (dir_state && dir_state_size)
		dir_state[0] = '\0';
	if (crc32c)
		*crc32c = -1;
	if (out)
		sfs_file_init(out);
	if (!(r->features & SFS_REMOTE_CONTENT))
		return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				"the server keeps no content versions (no "
				"PUT /files/{id}/content)");
	if (!sfs_uuid_valid(id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this id exists");
	size = lseek(fd, 0, SEEK_END);
	if (size < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot seek: %s",
				strerror(errno));
	snprintf(path, sizeof(path), API "/files/%s/content%s", id,
		 flags & SFS_SET_LISTENING ? ""
					   : "?generateListeningAudio=false");
	if (if_match)
		snprintf(hdr, sizeof(hdr), "If-Match: %s%s%s",
			 strcmp(if_match, "*") ? "\"" : "", if_match,
			 strcmp(if_match, "*") ? "\"" : "");
	q.path = path;
	q.size = size;
	q.header = if_match ? hdr : NULL;
	st = sfsi_remote_request(r, &q, &b, e);
	if (!st && out)
		st = sfs_remote_file_decode(b.buf, b.len, out, e);
	sfs_buf_release(&b);
	return st;
}

enum sfs_status sfsi_remote_changes_obj(struct sfs_remote *r,
					const char *cursor, int timeout_s,
					int others,
					void (*fn)(void *arg, json_t *change),
					void *arg, char *next, size_t size,
					int *more, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	/* the poll waits on after a cut: the feed's own stop ends it */
	struct sfsi_remote_req q = { .method = "GET",
				     .fd = -1,
				     .at_stop = SFSI_STOP_WAITS };
	json_t *j = NULL, *ch;
	char path[160];
	const char *c;
	enum sfs_status st;
	size_t i;

	*more = 0;
	if (!(r->features & SFS_REMOTE_CHANGES))
		return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				"the server has no change feed");
	if (cursor && strspn(cursor, "0123456789") != strlen(cursor))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "a bad cursor");
	if (cursor)
		snprintf(path, sizeof(path),
			 API "/changes?cursor=%s&timeout=%d%s", cursor,
			 timeout_s, others ? "&skipOwn=true" : "");
	else
		snprintf(path, sizeof(path), API "/changes");
	q.path = path;
	q.timeout_s = timeout_s + r->timeout_s + 5;
	st = sfsi_remote_request(r, &q, &b, e);
	if (!st)
		j = json_loadb(b.buf, b.len, 0, NULL);
	c = json_string_value(json_object_get(j, "cursor"));
	ch = json_object_get(j, "changes");
	if (!st && (!c || !json_is_array(ch)))
		st = sfs_errf(e, SFS_IO, SFS_R_NONE,
			      "the server's answer is not a change list");
	if (!st) {
		sfs_strlcpy(next, c, size);
		*more = json_is_true(json_object_get(j, "hasMore"));
		for (i = 0; i < json_array_size(ch); i++)
			fn(arg, json_array_get(ch, i));
	}
	json_decref(j);
	sfs_buf_release(&b);
	return st;
}

/* sfs_remote_changes's caller's function, given each change's text. */
struct as_text {
	void (*fn)(void *arg, const char *json, size_t len);
	void *arg;
	int failed;
};

static void change_text(void *arg, json_t *change)
{
	struct as_text *t = arg;
	char *s;

	if (t->failed)
		return;
	s = json_dumps(change, JSON_COMPACT);
	if (!s) {
		t->failed = 1;
		return;
	}
	t->fn(t->arg, s, strlen(s));
	free(s);
}

enum sfs_status
sfs_remote_changes(struct sfs_remote *r, const char *cursor, int timeout_s,
		   void (*fn)(void *arg, const char *json, size_t len),
		   void *arg, char *next, size_t size, int *more,
		   struct sfs_err *e)
{
	struct as_text t = { .fn = fn, .arg = arg };
	enum sfs_status st;

	st = sfsi_remote_changes_obj(r, cursor, timeout_s, 0, change_text, &t,
				     next, size, more, e);
	if (!st && t.failed)
		st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	return st;
}
