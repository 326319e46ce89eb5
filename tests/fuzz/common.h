/*
 * What the fuzz targets share (common.c): one store per process, made on
 * first use in a temporary directory and removed at exit, with two users
 * of one tenant and one of another, and a few files with paths and tags.
 */
#ifndef SPEECHFS_FUZZ_COMMON_H
#define SPEECHFS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include "speechfs/auth.h"
#include "speechfs/store.h"

struct fz {
	char *dir;
	struct sfs_store *s;
	struct sfs_actor owner, peer, other; /* peer: same tenant */
	char file[SFS_ID_SIZE];		     /* one of owner's files */
};

/* The store (aborts when it cannot be made: the target cannot run). */
struct fz *fz_get(void);

/* The input as a NUL-terminated string (owned by the caller: free). */
char *fz_string(const uint8_t *data, size_t size);

#endif
