/*
 * GET /api/v1/speech-services/changes (an extension): the caller's change
 * feed (core's changes.h) after a cursor, and a long poll on it.
 *
 * A poll that finds nothing waits without a thread: its connection is
 * suspended (MHD_suspend_connection) and listed here. One watcher thread
 * sleeps on the store's data generation, a counter in shared memory that
 * every commit of any process moves, through a futex
 * (sfs_store_data_gen_wait): when it moves, the watcher reads the change
 * sequence once and resumes the polls that have not seen that far; it
 * also resumes each poll at its deadline. A resumed poll runs its handler
 * again (libmicrohttpd calls it once more), reads its changes and answers,
 * or waits again when none of the new rows were for its caller.
 *
 * A poll that asks for others' changes only (skipOwn) is not resumed for
 * its own client's: when every change since the watcher's last look
 * carries the poll's origin, its cursor moves past them where it waits.
 * After a look that resumed nothing for that reason the watcher looks
 * again OWN_GAP_MS later at the soonest: a client's burst of uploads
 * costs a look per gap, not one per upload, and others' changes meanwhile
 * come that much later.
 *
 * /metrics counts the watcher's looks, the polls it resumed and the
 * cursors it moved past own changes, and the answers by whether they
 * held changes: what a client's burst cost is seen there, not guessed.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "httpd.h"
#include "speechfs/changes.h"
#include "speechfs/json.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define TIMEOUT_MAX_S 120
#define LIMIT_DEFAULT 1000
/* the watcher looks at the sequence at least this often without a futex */
#define NO_GEN_POLL_MS 1000
#define OWN_GAP_MS 50

struct changes_wait {
	struct changes_wait *prev, *next; /* in the waiting room (lock) */
	struct req *r;
	int listed;
	int64_t cursor;	     /* what the poll has looked at so far */
	int64_t deadline_ms; /* monotonic */
	int64_t skip;	     /* the origin whose changes it does not want */
	int limit;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int started, stopping;
	struct changes_wait head; /* a ring */
	int n;
	int64_t seq; /* the change sequence the watcher last read */
	int fresh;   /* seq was read since the room was last empty */
	/* the one origin of the changes after `from` up to seq, or 0 */
	int64_t from, origin;
	int skipped; /* the last look passed polls over for their own */
} W = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* /metrics' counters (relaxed atomics: read without W.mu) */
static struct changes_counts counts;

static void count(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

void changes_counts(struct changes_counts *out)
{
	out->looks = __atomic_load_n(&counts.looks, __ATOMIC_RELAXED);
	out->resumed = __atomic_load_n(&counts.resumed, __ATOMIC_RELAXED);
	out->skipped_own =
		__atomic_load_n(&counts.skipped_own, __ATOMIC_RELAXED);
	out->answered = __atomic_load_n(&counts.answered, __ATOMIC_RELAXED);
	out->answered_empty =
		__atomic_load_n(&counts.answered_empty, __ATOMIC_RELAXED);
}

/* Take a poll out of the room and let libmicrohttpd run it again (lock). */
static void fire(struct changes_wait *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->listed = 0;
	W.n--;
	count(&counts.resumed);
	MHD_resume_connection(w->r->conn);
}

/*
 * Whether the changes a poll has not seen are all its own client's and
 * it wants others' only (lock): they are after W.from, made by W.origin.
 */
static int only_own(const struct changes_wait *w)
{
	return w->skip && w->skip == W.origin && w->cursor >= W.from;
}

/* Resume the polls behind seq and those whose time is up (lock). */
static int64_t fire_due(int64_t t)
{
	struct changes_wait *w, *nx;
	int64_t nearest = INT64_MAX;
	int fired = 0, skipped = 0;

	for (w = W.head.next; w != &W.head; w = nx) {
		nx = w->next;
		if (W.fresh && w->cursor < W.seq && !W.stopping &&
		    w->deadline_ms > t && only_own(w)) {
			w->cursor = W.seq;
			skipped++;
			count(&counts.skipped_own);
		}
		if ((W.fresh && w->cursor < W.seq) || w->deadline_ms <= t ||
		    W.stopping) {
			fire(w);
			fired++;
		} else if (w->deadline_ms < nearest) {
			nearest = w->deadline_ms;
		}
	}
	W.skipped = skipped && !fired;
	return nearest;
}

/*
 * Read the change sequence (no lock). While it follows (fresh), only the
 * changes after the last one read are looked at, with their origin; else
 * *from is -1 (not 0: a store without changes yet has the sequence 0).
 */
static int read_seq_now(int64_t *seq, int64_t *from, int64_t *origin)
{
	struct sfs_err e;
	enum sfs_status st;

	sfs_err_init(&e);
	*origin = 0;
	pthread_mutex_lock(&W.mu);
	*from = W.fresh ? W.seq : -1;
	pthread_mutex_unlock(&W.mu);
	if (*from >= 0)
		st = sfs_changes_origin_after(g_httpd.store, *from, seq, origin,
					      &e);
	else
		st = sfs_store_change_seq(g_httpd.store, seq, &e);
	count(&counts.looks);
	if (st)
		sfs_warn("changes", "cannot read the change sequence: %s",
			 e.message);
	return st ? -1 : 0;
}

static void *watcher(void *arg)
{
	uint64_t gen, g;
	int64_t nearest, seq, t, from, origin;
	int wait_ms, read_seq, gap;

	(void)arg;
	gen = sfs_store_data_gen(g_httpd.store);
	pthread_mutex_lock(&W.mu);
	while (!W.stopping) {
		if (!W.n) {
			W.fresh = 0; /* no one waits: no need to follow */
			pthread_cond_wait(&W.cv, &W.mu);
			continue;
		}
		read_seq = !W.fresh;
		t = sfs_mono_ns() / 1000000;
		nearest = fire_due(t);
		gap = W.skipped;
		pthread_mutex_unlock(&W.mu);
		if (gap && !read_seq) {
			struct timespec ts = { 0, OWN_GAP_MS * 1000000L };

			nanosleep(&ts, NULL);
			t = sfs_mono_ns() / 1000000;
		}
		if (!read_seq) {
			wait_ms = nearest == INT64_MAX	? 60000
				  : nearest - t > 60000 ? 60000
							: (int)(nearest - t);
			if (!gen && wait_ms > NO_GEN_POLL_MS)
				wait_ms = NO_GEN_POLL_MS;
			g = sfs_store_data_gen_wait(g_httpd.store, gen,
						    wait_ms);
			read_seq = g != gen || !g;
			gen = g;
		}
		seq = -1;
		if (read_seq && read_seq_now(&seq, &from, &origin))
			seq = -1;
		pthread_mutex_lock(&W.mu);
		if (seq >= 0) {
			W.from = from;
			W.origin = from >= 0 ? origin : 0;
			if (seq > W.seq)
				W.seq = seq;
			W.fresh = 1;
		}
	}
	fire_due(INT64_MAX);
	pthread_mutex_unlock(&W.mu);
	return NULL;
}

int changes_init(void)
{
	W.head.next = W.head.prev = &W.head;
	W.stopping = 0;
	if (pthread_create(&W.th, NULL, watcher, NULL))
		return -1;
	W.started = 1;
	return 0;
}

void changes_stop(void)
{
	if (!W.started)
		return;
	pthread_mutex_lock(&W.mu);
	W.stopping = 1;
	pthread_cond_signal(&W.cv);
	pthread_mutex_unlock(&W.mu);
	sfs_store_data_gen_wake(g_httpd.store);
	pthread_join(W.th, NULL);
	W.started = 0;
}

int changes_waiting(void)
{
	int n;

	pthread_mutex_lock(&W.mu);
	n = W.n;
	pthread_mutex_unlock(&W.mu);
	return n;
}

void changes_req_free(struct req *r)
{
	pthread_mutex_lock(&W.mu);
	if (r->wait->listed) {
		r->wait->prev->next = r->wait->next;
		r->wait->next->prev = r->wait->prev;
		W.n--;
	}
	pthread_mutex_unlock(&W.mu);
	free(r->wait);
	r->wait = NULL;
}

/*
 * Wait for changes after w->cursor: 1 when the connection is suspended,
 * 0 when the poll must look again at once (the watcher has seen further
 * already), -1 when the room is full or closing.
 */
static int wait_in_room(struct changes_wait *w)
{
	int ret;

	pthread_mutex_lock(&W.mu);
	if (W.stopping || W.n >= g_httpd.opts.changes_max_waiters) {
		ret = -1;
	} else if (W.fresh && W.seq > w->cursor) {
		ret = 0;
	} else {
		w->next = &W.head;
		w->prev = W.head.prev;
		W.head.prev->next = w;
		W.head.prev = w;
		w->listed = 1;
		W.n++;
		/* under the lock: the watcher cannot resume it before */
		MHD_suspend_connection(w->r->conn);
		pthread_cond_signal(&W.cv);
		ret = 1;
	}
	pthread_mutex_unlock(&W.mu);
	/* the watcher may sleep past this poll's deadline: let it look */
	if (ret == 1)
		sfs_store_data_gen_wake(g_httpd.store);
	return ret;
}

/* The answer being built: {"changes":[...],"cursor":"N","hasMore":b}. */
struct feed {
	struct sfs_buf b;
	int64_t origin; /* the asking client's (req_origin), 0: none */
	int n;
	int failed;
};

static int add_string(struct sfs_buf *b, const char *s)
{
	json_t *j = json_string(s);
	char *t = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	int rc = !t || sfs_buf_adds(b, t);

	free(t);
	json_decref(j);
	return rc;
}

static int add_change(void *arg, const struct sfs_change *c)
{
	struct feed *f = arg;
	struct sfs_buf *b = &f->b;
	/*
	 * The asker's own change: made with the origin it sends. Another
	 * client's origin is never shown (whoever knew it could send it and
	 * make that client take others' changes for its own).
	 */
	int own = f->origin && c->origin == f->origin;
	int bad;

	bad = f->n++ && sfs_buf_addch(b, ',');
	if (c->kind == SFS_CHANGE_DIR) {
		bad = bad || sfs_buf_adds(b, "{\"type\":\"directory\",") ||
		      (own && sfs_buf_adds(b, "\"own\":true,")) ||
		      sfs_buf_adds(b, "\"path\":") || add_string(b, c->dir) ||
		      sfs_buf_addch(b, '}');
	} else {
		bad = bad ||
		      sfs_buf_addf(b,
				   "{\"type\":\"file\",\"fileId\":\"%s\","
				   "\"removed\":%s,",
				   c->file_id, c->visible ? "false" : "true") ||
		      (own && sfs_buf_adds(b, "\"own\":true,")) ||
		      sfs_buf_adds(b, "\"file\":") ||
		      (c->visible ? sfs_json_file_text(&c->file, b) != SFS_OK
				  : sfs_buf_adds(b, "null")) ||
		      sfs_buf_addch(b, '}');
	}
	f->failed |= bad;
	return bad;
}

static enum MHD_Result answer(struct req *r, struct feed *f, int64_t next,
			      int more)
{
	enum MHD_Result ret;

	if (f->failed ||
	    sfs_buf_addf(&f->b, "],\"cursor\":\"%" PRId64 "\",\"hasMore\":%s}",
			 next, more ? "true" : "false")) {
		sfs_buf_release(&f->b);
		return respond_errf(r, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	if (r->wait) /* not the cursor of now */
		count(f->n ? &counts.answered : &counts.answered_empty);
	ret = respond_buf(r, 200, &f->b);
	sfs_buf_release(&f->b);
	return ret;
}

/* The first call: read the arguments into a new wait state. */
static enum MHD_Result start(struct req *r, int *answered)
{
	int64_t cursor = -1, timeout = 0, limit = LIMIT_DEFAULT;
	struct feed f = { 0 };
	struct sfs_err e;
	int skip_own = 0;

	sfs_err_init(&e);
	*answered = 1;
	if (req_arg(r, "cursor") &&
	    req_int_arg(r, "cursor", 0, INT64_MAX, &cursor, &e))
		return respond_errf(r, SFS_INVALID, SFS_R_INVALID_PARAMETER,
				    "'cursor' must be a cursor this "
				    "endpoint gave");
	if (req_int_arg(r, "timeout", 0, TIMEOUT_MAX_S, &timeout, &e) ||
	    req_int_arg(r, "limit", 1, SFS_CHANGES_LIMIT_MAX, &limit, &e) ||
	    req_bool_arg(r, "skipOwn", &skip_own, &e))
		return respond_err(r, &e);
	if (cursor < 0) {
		/* no cursor: the cursor of now, to list the tree after */
		if (sfs_changes_cursor(g_httpd.store, &r->actor, &cursor, &e))
			return respond_err(r, &e);
		sfs_buf_init(&f.b, RESP_BUF_MAX);
		f.origin = req_origin(r);
		if (sfs_buf_adds(&f.b, "{\"changes\":["))
			f.failed = 1;
		return answer(r, &f, cursor, 0);
	}
	r->wait = calloc(1, sizeof(*r->wait));
	if (!r->wait)
		return respond_errf(r, SFS_NOMEM, SFS_R_NONE, "out of memory");
	r->wait->r = r;
	r->wait->cursor = cursor;
	r->wait->limit = (int)limit;
	/* without an origin, no change is the caller's own */
	r->wait->skip = skip_own ? req_origin(r) : 0;
	r->wait->deadline_ms = sfs_mono_ns() / 1000000 + timeout * 1000;
	*answered = 0;
	return MHD_YES;
}

enum MHD_Result api_changes_get(struct req *r)
{
	struct changes_wait *w;
	struct feed f;
	struct sfs_err e;
	enum MHD_Result ret;
	int64_t next;
	int more, answered, room;

	if (!r->wait) {
		ret = start(r, &answered);
		if (answered)
			return ret;
	}
	w = r->wait;
	for (;;) {
		sfs_err_init(&e);
		sfs_buf_init(&f.b, RESP_BUF_MAX);
		f.origin = req_origin(r);
		f.n = 0;
		f.failed = sfs_buf_grow(&f.b, 4096) ||
			   sfs_buf_adds(&f.b, "{\"changes\":[");
		if (sfs_changes_since(g_httpd.store, &r->actor, w->cursor,
				      w->limit, w->skip, add_change, &f, &next,
				      &more, &e)) {
			sfs_buf_release(&f.b);
			return respond_err(r, &e);
		}
		w->cursor = next;
		if (f.n || more || httpd_stopping() ||
		    sfs_mono_ns() / 1000000 >= w->deadline_ms)
			return answer(r, &f, next, more);
		sfs_buf_release(&f.b);
		room = wait_in_room(w);
		if (room == 1)
			return MHD_YES;
		if (room < 0) {
			req_set_header(r, "Retry-After", "1");
			return respond_status(r, 503, "too_many_waiters",
					      "too many long polls wait "
					      "already; poll again later");
		}
	}
}
