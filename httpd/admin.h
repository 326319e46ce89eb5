/*
 * The admin CLI's command table: admin.c parses and prints help from it,
 * admin_cmds.c holds the commands. One entry per command: its name, its
 * options with their help, its example.
 */
#ifndef SPEECHFSD_ADMIN_H
#define SPEECHFSD_ADMIN_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "httpd.h"

/* Every option any command takes. */
enum admin_opt_id {
	O_STORE,
	O_CONFIG,
	O_JSON,
	O_VERBOSE,
	O_HELP,
	O_NAME,
	O_ID,
	O_TENANT,
	O_USER,
	O_MAX_BYTES,
	O_MAX_FILES,
	O_DOWNLOAD_BPS,
	O_SCOPES,
	O_LABEL,
	O_TTL,
	O_REPAIR,
	O_MAX
};

enum admin_opt_kind { K_FLAG, K_STR, K_NUM, K_SCOPES };

struct admin_optdef {
	const char *name; /* --name */
	char shortc;	  /* -v, or 0 */
	const char *meta; /* "DIR"; NULL for a flag */
	enum admin_opt_kind kind;
	int64_t min; /* K_NUM: the least value */
};

extern const struct admin_optdef admin_opts[O_MAX];

/* One option of one command, with what it means there. */
struct admin_cmd_opt {
	enum admin_opt_id id;
	int req;
	const char *help;
};

struct admin_ctx;

enum admin_cmd_flags {
	CMD_NO_OPEN = 1 << 0, /* the command makes the store (init) */
};

struct admin_cmd {
	const char *name; /* "tenant create" */
	int (*fn)(struct admin_ctx *x);
	const char *summary;	 /* one line, for the lists */
	const char *description; /* the help's paragraph */
	const char *positional;	 /* "[USER_ID]", or NULL */
	struct admin_cmd_opt opts[6];
	const char *example;
	unsigned flags;
};

extern const struct admin_cmd admin_cmds[];
extern const size_t admin_ncmds;

/* A command at work: its options as given and checked, and the store. */
struct admin_ctx {
	const struct admin_cmd *cmd;
	const char *val[O_MAX];
	int set[O_MAX];
	int64_t num[O_MAX];
	unsigned scopes; /* --scopes, all by default */
	const char *pos; /* the positional argument */
	char store[4096];
	struct sfs_store *s;
	struct sfs_config core; /* the configuration's core keys (init) */
};

/* Print the result: JSON with --json (j taken), else text (may be ""). */
int admin_out(const struct admin_ctx *x, json_t *j, const char *text);
/* An error of the core: on stderr, and as JSON with --json; returns 1. */
int admin_fail(const struct admin_ctx *x, const struct sfs_err *e);
void admin_json_error(const struct admin_ctx *x, const struct sfs_err *e);

#endif
