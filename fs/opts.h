/*
 * The mount's command line: its own options (fuse_opt), their checks
 * (one line saying why, before the store or the server is touched) and
 * the options main.c adds for libfuse. main.c opens the store and
 * serves with what is parsed here.
 */
#ifndef SPEECHFS_FS_OPTS_H
#define SPEECHFS_FS_OPTS_H

#include <stdint.h>
#include "fs_i.h"

struct fs_opts {
	char *store;
	char *user;
	char *config;
	char *cfg_store; /* the config file's 'store' */
	char *umask_arg;
	char *commit_arg;
	/* a remote mount (--url) */
	char *url;
	char *key_file;
	char *token_file;
	char *cache_dir;
	char *cache_size;
	char *timeout;
	char *cafile;
	char *proxy;
	char *write_window;
	unsigned uid, gid, umask;
	unsigned max_threads; /* the most workers (0: LOOP_MAX) */
	unsigned commit_ms;   /* -o commit=MS (0: close() waits) */
	int timeout_s;	      /* -o timeout=S (0: the core's) */
	int64_t cache_bytes;  /* -o cache_size=N (<0: the core's) */
	int64_t window_bytes; /* -o write_window=N (0: the core's, <0: none) */
	int set_uid, set_gid;
	int ro;
	int allow_other;
	int nonempty;
	int no_workers;
	int listening;
	int generate;
	int version;
	int help;
	int bad; /* an option was refused (said why) */
};

/*
 * The defaults, then the mount's own options out of args (libfuse's stay
 * in it). -1 when fuse_opt_parse fails; a refused value sets o->bad.
 */
int fs_opts_parse(struct fuse_args *args, struct fs_opts *o);

/* The --help text, on stdout. */
void fs_opts_usage(const char *prog);

/*
 * The values of the mount's options and its mount point (an existing
 * directory, empty unless -o nonempty); a one-line reason on stderr and
 * -1 when one is wrong.
 */
int fs_opts_check(struct fs_opts *o, const struct fuse_cmdline_opts *co);

/* -o fsname=: a remote mount's public URL, else "speechfs". */
int fs_opts_add_fsname(struct fuse_args *args, const char *url);
/*
 * The URL as every user may see it (the mount table, log lines): without
 * its user:password@ (basic auth at a reverse proxy), query and fragment.
 * A new string (free), or NULL without memory.
 */
char *fs_opts_public_url(const char *url);

/* Free the strings. */
void fs_opts_release(struct fs_opts *o);

#endif
