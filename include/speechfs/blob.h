/*
 * The blob store: immutable, content-addressed files under blobs/, named
 * by SHA-256 and deduplicated within a tenant with reference counts.
 * Bytes come in through a stage (stage.h); a stage is committed by the
 * file operations that take it (file.h), which make it durable in the
 * order fsync(file) -> link into blobs/ -> fsync(dir) -> database commit.
 */
#ifndef SPEECHFS_BLOB_H
#define SPEECHFS_BLOB_H

#include <stdint.h>
#include <sys/types.h>
#include "err.h"

struct sfs_store;

/* Open a blob for reading (O_RDONLY|O_CLOEXEC). Caller closes the fd. */
enum sfs_status sfs_blob_open(struct sfs_store *s, int64_t tenant,
			      const char *sha256, int *fd, int64_t *size,
			      struct sfs_err *e) SFS_MUST_CHECK;

#endif
