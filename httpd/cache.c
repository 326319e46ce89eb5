/*
 * HTTP caching of the daemon's answers: ETags (a file's bytes by their
 * sha256, a JSON answer by a hash of its bytes), If-None-Match and
 * If-Modified-Since answered with 304, and the Cache-Control of each kind
 * of answer (RFC 9110 section 13, RFC 9111).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "httpd.h"
#include "speechfs/banned.h"

static uint64_t mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0xff51afd7ed558ccdull;
	return h ^ (h >> 32);
}

/*
 * A strong validator of a JSON body: a 64-bit hash of its bytes in four
 * independent lanes of eight bytes (a listing of 20 is about 12 KiB: well
 * under a microsecond). Not a security measure: a client that forges a
 * match only misses its own update.
 */
void cache_etag_of(const void *body, size_t len, char out[CACHE_ETAG_SIZE])
{
	const unsigned char *p = body;
	uint64_t h[4] = { 0x9e3779b97f4a7c15ull ^ len, 0xc2b2ae3d27d4eb4full,
			  0x165667b19e3779f9ull, 0x27d4eb2f165667c5ull };
	uint64_t w[4];
	size_t i = 0, k;

	for (; i + 32 <= len; i += 32) {
		memcpy(w, p + i, 32);
		for (k = 0; k < 4; k++)
			h[k] = mix(h[k], w[k]);
	}
	for (k = 0; i < len; i++, k = (k + 1) & 3)
		h[k] = mix(h[k], p[i]);
	h[0] = mix(mix(mix(h[0], h[1]), h[2]), h[3]);
	h[0] = mix(h[0], len);
	snprintf(out, CACHE_ETAG_SIZE, "\"j%016llx\"",
		 (unsigned long long)h[0]);
}

/*
 * Is the client's copy current? If-None-Match decides when present;
 * otherwise If-Modified-Since against mtime_ms, exactly (parse.h: a date
 * in the second of the last change is weak). Only for GET and HEAD.
 */
int cache_fresh(struct req *r, const char *etag, int64_t mtime_ms)
{
	const char *inm, *ims;

	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
		return 0;
	inm = req_header(r, "If-None-Match");
	if (inm)
		return etag && cache_inm_match(inm, etag);
	ims = req_header(r, "If-Modified-Since");
	if (!ims || mtime_ms <= 0)
		return 0;
	return httpd_date_current(ims, mtime_ms, sfs_now_ms(), 0);
}

enum MHD_Result cache_not_modified(struct req *r, const char *etag,
				   const char *cache_control,
				   const char *last_modified)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	if (etag)
		MHD_add_response_header(resp, "ETag", etag);
	if (cache_control)
		MHD_add_response_header(resp, "Cache-Control", cache_control);
	if (last_modified)
		MHD_add_response_header(resp, "Last-Modified", last_modified);
	return respond_queue(r, 304, resp);
}
