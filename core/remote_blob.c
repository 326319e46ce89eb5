/*
 * A remote store's content (remote_i.h): Range GETs of
 * GET …/files/{id}/content?sha256=<sha> (and of the listening MP3's
 * …/listening-audio/stream?sha256=<sha>) through the block cache of
 * blockcache.c. The server answers that URL with these bytes or with 409
 * (content_changed), never with other bytes, so a block cached under its
 * sha256 is good for ever, as for the S3 backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blockcache_i.h"
#include "curl_pool_i.h"
#include "remote_i.h"
#include "util_i.h"
#include "speechfs/banned.h"

#define API "/api/v1/speech-services"
#define BLOCK (4 << 20)
#define READAHEAD 8
/*
 * A sequential reader's read-ahead asks for four blocks (16 MiB) a Range
 * GET; a read at a new place (a seek) still asks for its one 4 MiB
 * block. A/B, 1 GiB cold in order, four runs of 5-7 rounds at load 6-13:
 * the mount's CPU 0.89-1.02 -> 0.81-0.93 s (medians), wall unchanged;
 * 8 MiB blocks (s23) cost seeks 40 %, runs cost them nothing.
 */
#define SPAN 4
/*
 * One fetcher of the eight is kept for reads waiting for their block: with
 * three sequential readers or more, runs held all eight, and a seek in
 * another file waited for one to end.
 */
#define URGENT_FETCHERS 1

struct sfsi_rblob {
	struct sfsi_bcache bc;
	struct sfs_remote *r;
	struct sfsi_curl_pool conns; /* sfsi_remote_range_into's */
};

/*
 * A range's body received straight into its blocks where the server
 * answers it plainly (remote_range.c), else through a normal request.
 */
static enum sfs_status fetch_range(void *ctx, const char *key, int64_t off,
				   int64_t len, const struct sfsi_bc_dest *d,
				   struct sfs_err *e)
{
	struct sfsi_rblob *rb = ctx;
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	struct sfsi_remote_req q = { .method = "GET",
				     .path = key,
				     .fd = -1,
				     .off = off,
				     .len = len,
				     .sink = d->sink,
				     .arg = d->arg };
	const struct sfsi_remote_range rq = {
		.req = &q,
		.room = d->room,
		.put = d->put,
		.arg = d->arg,
	};
	enum sfs_status st;
	int other = 1;

	if (d->room) {
		st = sfsi_remote_range_into(rb->r, &rb->conns, &rq, &other, e);
		if (!other)
			return st;
	}
	st = sfsi_remote_request(rb->r, &q, &b, e);
	sfs_buf_release(&b);
	return st;
}

enum sfs_status sfsi_rblob_start(struct sfs_remote *r, const char *cache_dir,
				 int64_t cache_bytes, struct sfsi_rblob **out,
				 struct sfs_err *e)
{
	struct sfsi_rblob *rb;
	enum sfs_status st;

	*out = NULL;
	rb = calloc(1, sizeof(*rb));
	if (!rb)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (strlen(cache_dir) >= sizeof(rb->bc.cache_dir)) {
		free(rb);
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"the cache directory's name is too long");
	}
	rb->r = r;
	sfsi_curl_pool_init(&rb->conns);
	rb->bc.block = BLOCK;
	rb->bc.readahead = READAHEAD;
	rb->bc.span = SPAN;
	rb->bc.nthreads = READAHEAD;
	rb->bc.urgent_fetchers = URGENT_FETCHERS;
	sfs_strlcpy(rb->bc.cache_dir, cache_dir, sizeof(rb->bc.cache_dir));
	rb->bc.cache_bytes = cache_bytes;
	rb->bc.fetch = fetch_range;
	rb->bc.ctx = rb;
	st = sfsi_bcache_start(&rb->bc, e);
	if (st) {
		sfsi_bcache_stop(&rb->bc);
		sfsi_curl_pool_release(&rb->conns);
		free(rb);
		return st;
	}
	*out = rb;
	return SFS_OK;
}

void sfsi_rblob_stop(struct sfsi_rblob *rb)
{
	if (!rb)
		return;
	sfsi_bcache_stop(&rb->bc);
	sfsi_curl_pool_release(&rb->conns);
	free(rb);
}

enum sfs_status sfsi_rblob_open(struct sfsi_rblob *rb, const char *id,
				enum sfs_content which, const char *sha,
				int64_t size, unsigned flags,
				struct sfs_blob **out, struct sfs_err *e)
{
	char key[256];

	if (!sfs_uuid_valid(id) || strlen(sha) != 64 ||
	    strspn(sha, "0123456789abcdef") != 64)
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"the server named no usable content");
	snprintf(key, sizeof(key), API "/files/%s/%s?sha256=%s", id,
		 which == SFS_CONTENT_LISTENING ? "listening-audio/stream"
						: "content",
		 sha);
	/* tenant 0: the cache directory is the server's and this user's */
	return sfsi_bcache_blob_open(&rb->bc, 0, sha, size, flags, key, out, e);
}
