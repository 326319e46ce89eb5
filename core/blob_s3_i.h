/*
 * The S3 blob backend's insides, shared by core/blob_s3.c (the backend:
 * configuration, storing, removing, the walk) and core/blob_read.c (open
 * blobs read by Range GETs through a window of blocks with read-ahead,
 * and the local block cache on disk).
 */
#ifndef SPEECHFS_BLOB_S3_I_H
#define SPEECHFS_BLOB_S3_I_H

#include <pthread.h>
#include <stdint.h>
#include "blob_i.h"
#include "s3_i.h"

struct s3_blob;
struct sfs_stage;
struct sfs_store;

/* A block to fetch for an open blob: its slot. */
struct fetch_job {
	struct s3_blob *b;
	int slot;
	struct fetch_job *next;
};

struct sfsi_s3_backend {
	struct sfsi_s3 *c;

	/* reading */
	int64_t block; /* bytes per block (a Range GET) */
	int readahead; /* blocks fetched ahead of a sequential reader */
	int nthreads;  /* fetchers */
	int parallel;  /* senders of a streamed stage */
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct fetch_job *head, *tail;
	int stop;

	/* the local block cache (the mount's) */
	char cache_dir[4096];
	int64_t cache_bytes; /* the bound */
	int64_t cache_used;  /* what this process knows of */
	pthread_mutex_t cache_mu;
};

struct sfs_config;

/*
 * A client of the bucket a configuration names (blob.s3.*), with its
 * credentials: the keys given, else AWS_*, else the credentials file.
 */
enum sfs_status sfsi_s3_backend_client(const struct sfs_config *cfg,
				       struct sfsi_s3 **out,
				       struct sfs_err *e) SFS_MUST_CHECK;

/* The key of blob (tenant, sha): "<tenant>/<sha[0:2]>/<sha>". */
void sfsi_s3_blob_key(int64_t tenant, const char *sha, char *out, size_t size);

/* Start and stop the fetchers; measure the cache (backend open/close). */
enum sfs_status sfsi_s3_reader_start(struct sfsi_s3_backend *be,
				     struct sfs_err *e) SFS_MUST_CHECK;
void sfsi_s3_reader_stop(struct sfsi_s3_backend *be);

/*
 * Streaming of big sequential stages (blob_stream.c): start, and stop
 * and undo (blob_i.h's stream, stream_free). sfsi_s3_stream_finish, at
 * prepare: the stage's object is complete at its key when *done; else
 * nothing was kept and the stage goes the usual way.
 */
void sfsi_s3_stream_start(struct sfs_store *s, struct sfs_stage *st);
void sfsi_s3_stream_free(struct sfs_store *s, struct sfs_stage *st);
enum sfs_status sfsi_s3_stream_finish(struct sfs_store *s, int64_t tenant,
				      struct sfs_stage *st, int known,
				      int *done,
				      struct sfs_err *e) SFS_MUST_CHECK;

/* An open blob of the S3 backend (blob_i.h's open_blob). */
enum sfs_status sfsi_s3_blob_open(struct sfsi_s3_backend *be, int64_t tenant,
				  const char *sha, int64_t size, unsigned flags,
				  struct sfs_blob **out,
				  struct sfs_err *e) SFS_MUST_CHECK;

#endif
