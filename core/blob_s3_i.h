/*
 * The S3 blob backend's insides, shared by core/blob_s3.c (the backend:
 * configuration, storing, removing, the walk, open blobs read by Range
 * GETs through the block cache of blockcache.c) and blob_stream.c.
 */
#ifndef SPEECHFS_BLOB_S3_I_H
#define SPEECHFS_BLOB_S3_I_H

#include <pthread.h>
#include <stdint.h>
#include "blob_i.h"
#include "blockcache_i.h"
#include "s3_i.h"

struct sfs_stage;
struct sfs_store;

struct sfsi_s3_backend {
	struct sfsi_s3 *c;

	/* reading: Range GETs through the block cache */
	struct sfsi_bcache bc;
	int parallel; /* senders of a streamed stage */
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

#endif
