/*
 * Reading immutable content from far away (blockcache.c): an open blob
 * keeps a small window of blocks filled by fetcher threads, a reader that
 * goes in order gets `readahead` blocks fetched ahead of it, and a read
 * waits only for the block it needs. With SFS_BLOB_CACHED (the mount)
 * blocks also go to a bounded cache on local disk, whence they are read
 * again: content named by its sha256 never changes, so a cached block
 * never needs checking again; the least recently used blocks leave first.
 * Where the bytes come from is the owner's fetch function: the S3
 * backend's Range GET of an object (blob_s3.c), the remote store's Range
 * GET of a file's content by its sha256 (remote_blob.c).
 */
#ifndef SPEECHFS_BLOCKCACHE_I_H
#define SPEECHFS_BLOCKCACHE_I_H

#include <pthread.h>
#include <stdint.h>
#include "blob_i.h"

struct bc_blob;

/* Where fetched bytes go: 0, or a status that stops the transfer. */
typedef int (*sfsi_bc_sink)(void *arg, const void *data, size_t len);
/*
 * Or received in place: where the range's next bytes go and how many
 * fit there (*room 0: the range is whole); then put says that n of them
 * came (0, or a status that stops the transfer).
 */
typedef void *(*sfsi_bc_room)(void *arg, size_t *room);
typedef int (*sfsi_bc_put)(void *arg, size_t n);

/* A fetch's destination: sink, or room and put, with arg. */
struct sfsi_bc_dest {
	sfsi_bc_sink sink;
	sfsi_bc_room room;
	sfsi_bc_put put;
	void *arg;
};

/* The most blocks one fetch may cover (sfsi_bcache's span). */
#define SFSI_BC_MAX_SPAN 4

/* Blocks to fetch for an open blob, in one range: their slots, in order. */
struct sfsi_bc_job {
	struct bc_blob *b;
	int slot[SFSI_BC_MAX_SPAN];
	int n;
	int urgent; /* a read waits for it (else read-ahead) */
	struct sfsi_bc_job *next;
};

struct sfsi_bcache {
	/* set by the owner before sfsi_bcache_start */
	int64_t block; /* bytes per block (a Range GET) */
	int readahead; /* blocks fetched ahead of a sequential reader */
	/*
	 * Blocks a sequential reader's read-ahead asks for in one fetch
	 * (1 to SFSI_BC_MAX_SPAN; 0 is 1): fewer, larger Range GETs where
	 * the reader goes on anyway; a read elsewhere still fetches its
	 * one block. Blocks stay `block` bytes in memory and on disk.
	 */
	int span;
	int nthreads; /* fetchers */
	/*
	 * Fetchers that read-ahead jobs leave free, for a read waiting for
	 * its block (a seek, another file's first read): several readers
	 * in order each keep up to three 16 MiB runs going, and without it
	 * held every fetcher. Read-ahead still gets at least one.
	 */
	int urgent_fetchers;
	char cache_dir[4096];
	int64_t cache_bytes; /* the disk cache's bound (0: none) */
	/*
	 * Fetch [off, off+len) of the content at `key` (the owner's name
	 * for it, given at sfsi_bcache_blob_open) into d: through d->sink,
	 * or received in place through d->room and d->put (one copy
	 * fewer), whichever the owner's transfer can.
	 */
	enum sfs_status (*fetch)(void *ctx, const char *key, int64_t off,
				 int64_t len, const struct sfsi_bc_dest *d,
				 struct sfs_err *e);
	/* blob.h's sfs_blob_url for these blobs (NULL: SFS_UNSUPPORTED) */
	enum sfs_status (*url)(void *ctx, const char *key, int expires_s,
			       const char *ctype, const char *disposition,
			       char **url, struct sfs_err *e);
	void *ctx;

	/* the fetchers' */
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sfsi_bc_job *head, *tail;
	int ahead_busy; /* fetchers on read-ahead jobs */
	int ahead_max;	/* the most of them */
	int stop;
	int64_t cache_used; /* what this process knows of */
	pthread_mutex_t cache_mu;
	int no_direct; /* the cache's file system refused O_DIRECT (atomic) */
};

/* Start and stop the fetchers; measure the disk cache. */
enum sfs_status sfsi_bcache_start(struct sfsi_bcache *bc,
				  struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_bcache_stop(struct sfsi_bcache *bc);

/*
 * An open blob of `size` bytes read through bc: `key` names it for the
 * fetch function, (tenant, sha) for the disk cache.
 */
enum sfs_status sfsi_bcache_blob_open(struct sfsi_bcache *bc, int64_t tenant,
				      const char *sha, int64_t size,
				      unsigned flags, const char *key,
				      struct sfs_blob **out,
				      struct sfs_err *e) SFS_MUST_CHECK;

#endif
