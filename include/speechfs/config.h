/*
 * Configuration files: "key = value" lines read once for the core and a
 * front end together, so the daemon and the mounts share one file and
 * every error names the file, the line and the key.
 */
#ifndef SPEECHFS_CONFIG_H
#define SPEECHFS_CONFIG_H

#include <stddef.h>
#include "err.h"
#include "store.h"

/*
 * Called for every key of the file, after the core saw it: core_key is 1
 * when sfs_config_set() took it (the front end may only note it), 0 when
 * the key is not the core's. Returns 0 when the key is taken, 1 when it
 * is unknown, -1 for a bad value (with why in msg, e.g. "expected a
 * number").
 */
typedef int (*sfs_config_key_fn)(void *arg, const char *key, const char *value,
				 int core_key, char *msg, size_t msgsz);

/*
 * Read a configuration file: blank lines and lines starting with '#' or
 * ';' are skipped, every other line is "key = value" (spaces around both
 * trimmed). The core's keys go to sfs_config_set(cfg); every key goes to
 * own(arg, ...) when it is given. Stops at the first error: SFS_INVALID
 * with e->message "FILE:LINE: KEY: what is wrong" (an unknown key, a bad
 * value) or "FILE:LINE: expected 'key = value'", SFS_NOT_FOUND or SFS_IO
 * when the file cannot be read. cfg may be changed in part on error: read
 * into a scratch copy where that matters (a reload).
 */
enum sfs_status sfs_config_read(const char *path, struct sfs_config *cfg,
				sfs_config_key_fn own, void *arg,
				struct sfs_err *e) SFS_MUST_CHECK;

#endif
