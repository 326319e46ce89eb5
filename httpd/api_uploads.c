/*
 * Resumable uploads (an extension; core's upload.h): POST
 * /files/{id}/uploads makes a session, PUT /files/{id}/content?upload=U
 * with Upload-Offset streams into it (api_content.c, from here), GET
 * /files/{id}/uploads/{U} tells its offsets (a long poll with
 * durableAbove), GET …/content serves its durable bytes, DELETE ends it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "httpd.h"
#include "speechfs/json.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/upload.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

/* The session as JSON (201 of POST, 200 of GET). */
static enum MHD_Result answer(struct req *r, unsigned status,
			      const struct sfs_upload *u)
{
	char exp[32];

	sfs_iso8601(u->expires_ms, exp);
	return respond_json(
		r, status,
		json_pack("{s:s, s:s, s:I, s:I, s:s}", "id", u->id, "fileId",
			  u->file_id, "offset", (json_int_t)u->offset,
			  "durable", (json_int_t)u->durable, "expiresAt", exp));
}

enum MHD_Result api_uploads_create(struct req *r)
{
	struct sfs_upload u;
	struct sfs_err e;
	char loc[256];

	sfs_err_init(&e);
	if (sfs_upload_create(g_httpd.store, &r->actor, r->params[0], &u, &e))
		return respond_err(r, &e);
	snprintf(loc, sizeof(loc), API_BASE "/%s/uploads/%s", u.file_id, u.id);
	req_set_header(r, "Location", loc);
	return answer(r, 201, &u);
}

/*
 * The long poll (GET with durableAbove): a poll whose session's durable
 * offset is not above it yet waits without a thread, its connection
 * suspended and listed here, until core says the session moved or ended
 * (uploads_moved, called by the thread that recorded it), or its deadline
 * (the timer thread), or the daemon's stop; resumed, libmicrohttpd runs
 * its handler again, which looks again.
 */
#define POLL_MAX_S 30

struct uploads_wait {
	struct uploads_wait *prev, *next; /* in the room (lock) */
	struct req *r;
	int listed;
	int admitted; /* it was let in once: counted against the bound */
	int64_t above;
	int64_t deadline_ms; /* monotonic */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int started, stopping;
	struct uploads_wait head; /* a ring */
	int n;
	uint64_t moves; /* sessions that moved or ended (lock) */
} U = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int64_t now_ms(void)
{
	return sfs_mono_ns() / 1000000;
}

/* Take a poll out of the room and let it run again (lock). */
static void fire(struct uploads_wait *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->listed = 0;
	U.n--;
	MHD_resume_connection(w->r->conn);
}

/* core's notice: resume the polls on session id (any thread). */
static void uploads_moved(void *arg, const char *id)
{
	struct uploads_wait *w, *nx;

	(void)arg;
	pthread_mutex_lock(&U.mu);
	U.moves++;
	for (w = U.head.next; w && w != &U.head; w = nx) {
		nx = w->next;
		if (!strcmp(w->r->params[1], id))
			fire(w);
	}
	pthread_mutex_unlock(&U.mu);
}

static void *timer(void *arg)
{
	struct uploads_wait *w, *nx;
	struct timespec ts;
	int64_t t, nearest;

	(void)arg;
	pthread_mutex_lock(&U.mu);
	while (!U.stopping) {
		t = now_ms();
		nearest = INT64_MAX;
		for (w = U.head.next; w != &U.head; w = nx) {
			nx = w->next;
			if (w->deadline_ms <= t)
				fire(w);
			else if (w->deadline_ms < nearest)
				nearest = w->deadline_ms;
		}
		if (nearest == INT64_MAX) {
			pthread_cond_wait(&U.cv, &U.mu);
			continue;
		}
		sfs_deadline(&ts, nearest - t);
		pthread_cond_timedwait(&U.cv, &U.mu, &ts);
	}
	for (w = U.head.next; w != &U.head; w = nx) {
		nx = w->next;
		fire(w);
	}
	pthread_mutex_unlock(&U.mu);
	return NULL;
}

int uploads_init(void)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_upload_install(g_httpd.store, &e)) {
		sfs_error("upload", "cannot recover the upload sessions: %s",
			  e.message);
		return -1;
	}
	U.head.next = U.head.prev = &U.head;
	U.stopping = 0;
	sfs_cond_init_mono(&U.cv);
	if (pthread_create(&U.th, NULL, timer, NULL))
		return -1;
	U.started = 1;
	sfs_upload_set_notify(g_httpd.store, uploads_moved, NULL);
	return 0;
}

void uploads_stop(void)
{
	if (!U.started)
		return;
	pthread_mutex_lock(&U.mu);
	U.stopping = 1;
	pthread_cond_signal(&U.cv);
	pthread_mutex_unlock(&U.mu);
	pthread_join(U.th, NULL);
	U.started = 0;
}

void uploads_req_free(struct req *r)
{
	pthread_mutex_lock(&U.mu);
	if (r->uwait->listed) {
		r->uwait->prev->next = r->uwait->next;
		r->uwait->next->prev = r->uwait->prev;
		U.n--;
	}
	pthread_mutex_unlock(&U.mu);
	free(r->uwait);
	r->uwait = NULL;
}

/*
 * Wait unless a session moved since `moves` was read: 1 suspended, 0
 * look again now, -1 the room is full, -2 it closes (answer now). The
 * bound is for polls coming in: one let in before that goes back after a
 * notice (a sync short of its offset, a PUT's end) is not refused halfway
 * through its timeout because new polls took its place meanwhile (re-read
 * s22 A2). The room then holds at most the bound plus the polls that
 * are between two waits, connections counted already.
 */
static int wait_in_room(struct uploads_wait *w, uint64_t moves)
{
	int ret;

	pthread_mutex_lock(&U.mu);
	if (U.stopping) {
		ret = -2;
	} else if (!w->admitted && U.n >= g_httpd.opts.changes_max_waiters) {
		ret = -1;
	} else if (U.moves != moves) {
		ret = 0;
	} else {
		w->next = &U.head;
		w->prev = U.head.prev;
		U.head.prev->next = w;
		U.head.prev = w;
		w->listed = w->admitted = 1;
		U.n++;
		MHD_suspend_connection(w->r->conn);
		pthread_cond_signal(&U.cv);
		ret = 1;
	}
	pthread_mutex_unlock(&U.mu);
	return ret;
}

/* The first call of a poll: its arguments; 1 when it may wait. */
static int poll_start(struct req *r, struct sfs_err *e)
{
	int64_t above = -1, timeout = 0;

	if (req_int_arg(r, "durableAbove", 0, INT64_MAX, &above, e) ||
	    req_int_arg(r, "timeout", 0, POLL_MAX_S, &timeout, e))
		return -1;
	if (above < 0 || timeout == 0)
		return 0;
	r->uwait = calloc(1, sizeof(*r->uwait));
	if (!r->uwait)
		return 0; /* no wait: an answer now is within the contract */
	r->uwait->r = r;
	r->uwait->above = above;
	r->uwait->deadline_ms = now_ms() + timeout * 1000;
	return 1;
}

enum MHD_Result api_uploads_get(struct req *r)
{
	struct uploads_wait *w;
	struct sfs_upload u;
	struct sfs_err e;
	uint64_t moves;
	int room;

	sfs_err_init(&e);
	if (!r->uwait && poll_start(r, &e) < 0)
		return respond_err(r, &e);
	w = r->uwait;
	for (;;) {
		pthread_mutex_lock(&U.mu);
		moves = U.moves;
		pthread_mutex_unlock(&U.mu);
		if (sfs_upload_get(g_httpd.store, &r->actor, r->params[0],
				   r->params[1], &u, &e))
			return respond_err(r, &e);
		if (!w || u.durable > w->above || httpd_stopping() ||
		    now_ms() >= w->deadline_ms)
			return answer(r, 200, &u);
		room = wait_in_room(w, moves);
		if (room == 1)
			return MHD_YES;
		if (room == -1) {
			/* as the change feed's polls past the same bound */
			req_set_header(r, "Retry-After", "1");
			return respond_status(r, 503, "too_many_waiters",
					      "too many long polls wait "
					      "already; poll again later");
		}
		if (room < 0)
			return answer(r, 200, &u);
	}
}

enum MHD_Result api_uploads_delete(struct req *r)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_upload_delete(g_httpd.store, &r->actor, r->params[0],
			      r->params[1], &e))
		return respond_err(r, &e);
	return respond_empty(r, 204);
}

/* Upload-Offset: a decimal offset; -1 when absent or not one. */
static int64_t offset_header(struct req *r)
{
	const char *v = req_header(r, "Upload-Offset");
	int64_t n;

	if (!v || !*v || strspn(v, "0123456789") != strlen(v) ||
	    sfs_parse_i64(v, &n) || n < 0)
		return -1;
	return n;
}

/* 409 with the session's offsets in the body. */
static enum MHD_Result conflict(struct req *r, const struct sfs_err *e,
				int64_t durable)
{
	struct sfs_upload u;
	struct sfs_err ge;
	enum MHD_Result ret;
	json_t *x;

	sfs_err_init(&ge);
	if (sfs_upload_get(g_httpd.store, &r->actor, r->params[0],
			   req_arg(r, "upload"), &u, &ge))
		u.offset = durable;
	else
		durable = u.durable;
	x = json_pack("{s:I, s:I}", "offset", (json_int_t)u.offset, "durable",
		      (json_int_t)durable);
	ret = respond_err_with(r, e, x);
	json_decref(x);
	return ret;
}

enum MHD_Result api_uploads_put_start(struct req *r, int64_t len, int *go)
{
	const char *id = req_arg(r, "upload");
	int64_t off = offset_header(r), durable = 0;
	struct sfs_err e;

	sfs_err_init(&e);
	*go = 0;
	if (!id || off < 0)
		return respond_errf(r, SFS_INVALID, SFS_R_INVALID_PARAMETER,
				    "a PUT into an upload session needs both "
				    "?upload=<session> and the header "
				    "Upload-Offset: <decimal offset>");
	if (len >= 0 && len > g_httpd.opts.max_upload_bytes - off)
		return respond_errf(r, SFS_TOO_LARGE, SFS_R_PAYLOAD_TOO_LARGE,
				    "the content is larger than %lld bytes",
				    (long long)g_httpd.opts.max_upload_bytes);
	if (sfs_upload_stage(g_httpd.store, &r->actor, r->params[0], id, off,
			     &r->stage, &durable, &e))
		return e.status == SFS_CONFLICT ? conflict(r, &e, durable)
						: respond_err(r, &e);
	r->upload = 1;
	*go = 1;
	return MHD_YES;
}

enum MHD_Result api_uploads_content(struct req *r)
{
	struct MHD_Response *resp;
	const char *range = req_header(r, "Range");
	int64_t durable = 0, from = 0, to;
	struct sfs_err e;
	char cr[96];
	int fd = -1, rc;

	sfs_err_init(&e);
	if (sfs_upload_open_durable(g_httpd.store, &r->actor, r->params[0],
				    r->params[1], &fd, &durable, &e))
		return respond_err(r, &e);
	to = durable - 1;
	rc = range ? httpd_parse_range(range, durable, &from, &to) : -1;
	if (rc == 1 || (durable == 0 && range)) {
		close(fd);
		snprintf(cr, sizeof(cr), "bytes */%" PRId64, durable);
		req_set_header(r, "Content-Range", cr);
		return respond_errf(r, SFS_RANGE, SFS_R_RANGE_NOT_SATISFIABLE,
				    "range '%s' is not within the %" PRId64
				    " durable bytes of the session",
				    range, durable);
	}
	if (rc != 0) {
		from = 0;
		to = durable - 1;
	}
	resp = durable ? MHD_create_response_from_fd_at_offset64(
				 (uint64_t)(to - from + 1), fd, (uint64_t)from)
		       : MHD_create_response_from_buffer(
				 0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!durable || !resp)
		close(fd);
	if (!resp)
		return respond_status(r, 500, "internal_error",
				      "cannot make a response");
	r->bytes_out = durable ? to - from + 1 : 0;
	MHD_add_response_header(resp, "Content-Type",
				"application/octet-stream");
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	req_set_header(r, "Cache-Control", "no-store");
	if (rc == 0) {
		snprintf(cr, sizeof(cr),
			 "bytes %" PRId64 "-%" PRId64 "/%" PRId64, from, to,
			 durable);
		MHD_add_response_header(resp, "Content-Range", cr);
	}
	return respond_queue(r, rc == 0 ? 206 : 200, resp);
}
