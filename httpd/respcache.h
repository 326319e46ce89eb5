/*
 * Answers of the read routes kept under the store's data generation
 * (respcache.c). Only routes marked `cached` in the route table, and only
 * for an authenticated user.
 */
#ifndef SPEECHFSD_RESPCACHE_H
#define SPEECHFSD_RESPCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

struct req;

/* A table of about `entries` answers; 0 turns the cache off. */
int respcache_init(int entries);
void respcache_close(void);
/*
 * Before the handler: 1 when the answer (200 or 304) was queued from the
 * cache (*ret set), else 0, having noted the generation that a 200 of the
 * handler may be kept under.
 */
int respcache_lookup(struct req *r, enum MHD_Result *ret);
/*
 * A 200 with its ETag about to be sent: keep it. 1 when the cache took
 * `body` (it is no longer the caller's) and *resp sends it (NULL if no
 * memory); 0 when not kept.
 */
int respcache_keep(struct req *r, char *body, size_t len, const char *etag,
		   struct MHD_Response **resp);
void respcache_counts(uint64_t *hits, uint64_t *misses);

#endif
