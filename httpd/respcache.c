/*
 * The answers of the read routes whose JSON depends only on the store's
 * data and the caller -- a file, a listing, shared-with-me -- kept per
 * user, route and raw path with query, under the store's data generation
 * (sfs_store_data_gen: moved by every commit of every process). A request
 * reads the generation before its query runs, so what it keeps is at least
 * as new as the generation it is kept under; a hit is served while the
 * generation has not moved, with no query and no encoding. Credentials,
 * scopes and rates are checked before (router.c), as for any request.
 * An entry also lives at most RC_TTL_NS, which bounds what a change made
 * without the generation (an edit of the database by hand) can outlive.
 *
 * Bodies are shared, not copied: an entry is counted by the table and by
 * each response that sends it, and freed with the last.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "httpd.h"
#include "respcache.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define RC_STRIPES 16
#define RC_MAX_BODY (256 * 1024)
#define RC_BUDGET (32 << 20) /* bytes of bodies kept at most */
#define RC_TTL_NS (10 * 1000000000LL)

struct rc_entry {
	int refs; /* atomic: the table's and each response's */
	uint64_t gen;
	int64_t user;
	int route;
	uint64_t hash;
	int64_t made_ns;
	char *key; /* params[0] '?' query */
	char *body;
	size_t len;
	char etag[CACHE_ETAG_SIZE];
};

static struct {
	pthread_mutex_t lock[RC_STRIPES];
	struct rc_entry **slot;
	size_t nslots; /* a power of two; 0: off */
	size_t bytes;  /* atomic: bodies in the table */
	uint64_t hits, misses;
} rc = { .lock = { [0 ... RC_STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER } };

int respcache_init(int entries)
{
	size_t n = 1;

	if (entries <= 0)
		return 0;
	while (n < (size_t)entries)
		n <<= 1;
	rc.slot = calloc(n, sizeof(*rc.slot));
	if (!rc.slot)
		return -1;
	rc.nslots = n;
	return 0;
}

static void unref(struct rc_entry *e)
{
	if (!e || __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL))
		return;
	free(e->body);
	free(e->key);
	free(e);
}

/* libmicrohttpd's callback when a response that sent an entry is gone. */
static void response_done(void *cls)
{
	unref(cls);
}

void respcache_close(void)
{
	size_t i;

	for (i = 0; i < rc.nslots; i++) {
		if (rc.slot[i])
			__atomic_sub_fetch(&rc.bytes, rc.slot[i]->len,
					   __ATOMIC_RELAXED);
		unref(rc.slot[i]);
	}
	free(rc.slot);
	rc.slot = NULL;
	rc.nslots = 0;
}

void respcache_counts(uint64_t *hits, uint64_t *misses)
{
	*hits = __atomic_load_n(&rc.hits, __ATOMIC_RELAXED);
	*misses = __atomic_load_n(&rc.misses, __ATOMIC_RELAXED);
}

/* FNV-1a over a string, continuing from h. */
static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static uint64_t key_hash(const struct req *r)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = (h ^ (uint64_t)r->actor.user) * 0x100000001b3ull;
	h = (h ^ (uint64_t)r->route_idx) * 0x100000001b3ull;
	h = fnv(h, r->params[0]);
	h = (h ^ '?') * 0x100000001b3ull;
	return fnv(h, r->query ? r->query : "");
}

static int key_is(const struct rc_entry *e, const struct req *r)
{
	size_t n = strlen(r->params[0]);

	return e->user == r->actor.user && e->route == r->route_idx &&
	       strncmp(e->key, r->params[0], n) == 0 && e->key[n] == '?' &&
	       strcmp(e->key + n + 1, r->query ? r->query : "") == 0;
}

/* A response that sends the entry's body (one more reference). */
static struct MHD_Response *response_of(struct rc_entry *e)
{
	struct MHD_Response *resp;

	__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
	resp = MHD_create_response_from_buffer_with_free_callback_cls(
		e->len, e->body, response_done, e);
	if (!resp)
		unref(e);
	return resp;
}

int respcache_lookup(struct req *r, enum MHD_Result *ret)
{
	struct MHD_Response *resp;
	struct rc_entry *e;
	uint64_t gen;
	size_t k;

	r->rc_gen = 0;
	if (!rc.nslots || !r->route->cached || !r->authed || r->actor.user <= 0)
		return 0;
	gen = sfs_store_data_gen(g_httpd.store);
	if (!gen)
		return 0;
	r->rc_gen = gen;
	r->rc_hash = key_hash(r);
	k = r->rc_hash & (rc.nslots - 1);
	pthread_mutex_lock(&rc.lock[k % RC_STRIPES]);
	e = rc.slot[k];
	if (e && (e->hash != r->rc_hash || e->gen != gen || !key_is(e, r) ||
		  sfs_mono_ns() - e->made_ns > RC_TTL_NS))
		e = NULL;
	if (e)
		__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&rc.lock[k % RC_STRIPES]);
	if (!e) {
		__atomic_add_fetch(&rc.misses, 1, __ATOMIC_RELAXED);
		return 0;
	}
	__atomic_add_fetch(&rc.hits, 1, __ATOMIC_RELAXED);
	req_set_header(r, "ETag", e->etag);
	req_set_header(r, "Cache-Control", CACHE_PRIVATE);
	if (cache_fresh(r, e->etag, 0)) {
		unref(e);
		r->bytes_out = 0;
		*ret = respond_empty(r, 304);
		return 1;
	}
	r->bytes_out = (int64_t)e->len;
	resp = response_of(e);
	unref(e);
	if (!resp) {
		*ret = MHD_NO;
		return 1;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	*ret = respond_queue(r, 200, resp);
	return 1;
}

int respcache_keep(struct req *r, char *body, size_t len, const char *etag,
		   struct MHD_Response **resp)
{
	struct rc_entry *e, *old;
	size_t k, plen, qlen = r->query ? strlen(r->query) : 0;

	if (!r->rc_gen || len > RC_MAX_BODY ||
	    __atomic_load_n(&rc.bytes, __ATOMIC_RELAXED) + len > RC_BUDGET)
		return 0;
	e = calloc(1, sizeof(*e));
	plen = strlen(r->params[0]);
	if (e)
		e->key = malloc(plen + qlen + 2);
	if (!e || !e->key) {
		free(e);
		return 0;
	}
	memcpy(e->key, r->params[0], plen);
	e->key[plen] = '?';
	memcpy(e->key + plen + 1, r->query ? r->query : "", qlen + 1);
	e->refs = 1; /* the table's */
	e->gen = r->rc_gen;
	e->user = r->actor.user;
	e->route = r->route_idx;
	e->hash = r->rc_hash;
	e->made_ns = sfs_mono_ns();
	e->body = body;
	e->len = len;
	memcpy(e->etag, etag, CACHE_ETAG_SIZE);
	__atomic_add_fetch(&rc.bytes, len, __ATOMIC_RELAXED);
	k = r->rc_hash & (rc.nslots - 1);
	pthread_mutex_lock(&rc.lock[k % RC_STRIPES]);
	old = rc.slot[k];
	rc.slot[k] = e;
	pthread_mutex_unlock(&rc.lock[k % RC_STRIPES]);
	if (old) {
		__atomic_sub_fetch(&rc.bytes, old->len, __ATOMIC_RELAXED);
		unref(old);
	}
	*resp = response_of(e);
	return 1;
}
