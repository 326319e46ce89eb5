/*
 * The admin CLI of speechfsd: one table of commands (git's commands[] is
 * the model), each with its options, help and example, parsed with
 * getopt_long. Every argument is checked before the store is touched, so
 * a wrong one creates nothing (exit 2); the output is the result (an id,
 * a table, or JSON with --json) and logs appear only with -v.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admin.h"
#include "speechfs/config.h"
#include "speechfs/log.h"
#include "speechfs/banned.h"

const struct admin_optdef admin_opts[O_MAX] = {
	[O_STORE] = { "store", 0, "DIR", K_STR, 0 },
	[O_CONFIG] = { "config", 'c', "FILE", K_STR, 0 },
	[O_JSON] = { "json", 0, NULL, K_FLAG, 0 },
	[O_VERBOSE] = { "verbose", 'v', NULL, K_FLAG, 0 },
	[O_HELP] = { "help", 'h', NULL, K_FLAG, 0 },
	[O_NAME] = { "name", 0, "NAME", K_STR, 0 },
	[O_ID] = { "id", 0, "ID", K_STR, 0 },
	[O_TENANT] = { "tenant", 0, "TENANT", K_STR, 0 },
	[O_USER] = { "user", 0, "USER_ID", K_STR, 0 },
	[O_MAX_BYTES] = { "max-bytes", 0, "BYTES", K_NUM, 0 },
	[O_MAX_FILES] = { "max-files", 0, "N", K_NUM, 0 },
	[O_DOWNLOAD_BPS] = { "download-bps", 0, "BPS", K_NUM, -1 },
	[O_SCOPES] = { "scopes", 0, "SCOPES", K_SCOPES, 0 },
	[O_LABEL] = { "label", 0, "TEXT", K_STR, 0 },
	[O_TTL] = { "ttl", 0, "SECONDS", K_NUM, 1 },
	[O_REPAIR] = { "repair", 0, NULL, K_FLAG, 0 },
};

/* Every command takes these after its own. */
static const struct admin_cmd_opt common_opts[] = {
	{ O_STORE, 0, "the store directory" },
	{ O_CONFIG, 0,
	  "take the store and the core's settings from a configuration file "
	  "(the daemon's)" },
	{ O_JSON, 0, "print the result as JSON" },
	{ O_VERBOSE, 0, "log what is done (twice: debug)" },
	{ O_HELP, 0, "print this help" },
};

static int is_verb_group(const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < admin_ncmds; i++)
		if (strncmp(admin_cmds[i].name, name, n) == 0 &&
		    admin_cmds[i].name[n] == ' ')
			return 1;
	return 0;
}

static const struct admin_cmd *find_cmd(const char *name, const char *verb)
{
	char full[64];
	size_t i;

	snprintf(full, sizeof(full), "%s%s%s", name, verb ? " " : "",
		 verb ? verb : "");
	for (i = 0; i < admin_ncmds; i++)
		if (strcmp(admin_cmds[i].name, full) == 0)
			return &admin_cmds[i];
	return NULL;
}

int admin_is_command(const char *a)
{
	return strcmp(a, "help") == 0 || strcmp(a, "blob") == 0 ||
	       strcmp(a, "db") == 0 || find_cmd(a, NULL) || is_verb_group(a);
}

void admin_list_commands(FILE *f)
{
	size_t i;

	for (i = 0; i < admin_ncmds; i++)
		fprintf(f, "  %-15s %s\n", admin_cmds[i].name,
			admin_cmds[i].summary);
	fprintf(f, "  %-15s %s\n", "blob show",
		"where the store keeps its blobs");
	fprintf(f, "  %-15s %s\n", "blob migrate",
		"move the blobs into an S3 object store");
	fprintf(f, "  %-15s %s\n", "db migrate",
		"move the metadata into PostgreSQL");
}

/* ---- help ------------------------------------------------------------- */

static void wrap(FILE *f, size_t *col, size_t indent, const char *word)
{
	size_t n = strlen(word);

	if (*col + 1 + n > 79) {
		fprintf(f, "\n%*s", (int)indent, "");
		*col = indent;
	} else {
		fputc(' ', f);
		(*col)++;
	}
	fputs(word, f);
	*col += n;
}

static void opt_words(const struct admin_cmd_opt *o, char *buf, size_t size)
{
	const struct admin_optdef *d = &admin_opts[o->id];

	if (d->meta)
		snprintf(buf, size, "%s--%s %s%s", o->req ? "" : "[", d->name,
			 d->meta, o->req ? "" : "]");
	else
		snprintf(buf, size, "[--%s]", d->name);
}

static void synopsis(FILE *f, const struct admin_cmd *c)
{
	char w[128];
	size_t col, indent, i;

	col = (size_t)fprintf(f, "usage: speechfsd %s", c->name);
	indent = col + 1;
	wrap(f, &col, indent, "--store DIR");
	if (c->positional)
		wrap(f, &col, indent, c->positional);
	for (i = 0; i < ARRAY_SIZE(c->opts) && c->opts[i].help; i++) {
		opt_words(&c->opts[i], w, sizeof(w));
		wrap(f, &col, indent, w);
	}
	wrap(f, &col, indent, "[--json]");
	wrap(f, &col, indent, "[-v]");
	fputc('\n', f);
}

static void opt_line(FILE *f, const struct admin_cmd_opt *o)
{
	const struct admin_optdef *d = &admin_opts[o->id];
	char left[64];

	if (d->shortc)
		snprintf(left, sizeof(left), "-%c, --%s%s%s", d->shortc,
			 d->name, d->meta ? " " : "", d->meta ? d->meta : "");
	else
		snprintf(left, sizeof(left), "    --%s%s%s", d->name,
			 d->meta ? " " : "", d->meta ? d->meta : "");
	char text[256], *w, *save = NULL;
	size_t col;

	snprintf(text, sizeof(text), "%s%s", o->help,
		 o->req ? " (required)" : "");
	if (strlen(left) > 22)
		col = (size_t)fprintf(f, "  %s\n  %-22s", left, "") -
		      strlen(left) - 3;
	else
		col = (size_t)fprintf(f, "  %-22s", left);
	for (w = strtok_r(text, " ", &save); w; w = strtok_r(NULL, " ", &save))
		wrap(f, &col, 25, w);
	fputc('\n', f);
}

static void cmd_help(FILE *f, const struct admin_cmd *c)
{
	size_t i;

	synopsis(f, c);
	fprintf(f, "\n%s\n\noptions:\n", c->description);
	for (i = 0; i < ARRAY_SIZE(c->opts) && c->opts[i].help; i++)
		opt_line(f, &c->opts[i]);
	for (i = 0; i < ARRAY_SIZE(common_opts); i++)
		opt_line(f, &common_opts[i]);
	fprintf(f, "\nexample:\n  %s\n", c->example);
}

/* `speechfsd tenant --help`: the verbs of a group. */
static void group_help(FILE *f, const char *group)
{
	size_t i, n = strlen(group);

	fprintf(f, "usage: speechfsd %s VERB --store DIR [options]\n\nverbs:\n",
		group);
	for (i = 0; i < admin_ncmds; i++)
		if (strncmp(admin_cmds[i].name, group, n) == 0 &&
		    admin_cmds[i].name[n] == ' ')
			fprintf(f, "  %-8s %s\n", admin_cmds[i].name + n + 1,
				admin_cmds[i].summary);
	fprintf(f, "\n'speechfsd %s VERB --help' tells more.\n", group);
}

/* ---- parsing ------------------------------------------------------------ */

static int usage_error(const struct admin_cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage_error(const struct admin_cmd *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "speechfsd %s: ", c->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see 'speechfsd %s --help'\n", c->name);
	return 2;
}

/* The getopt table of a command: its options, then the common ones. */
static size_t build_longopts(const struct admin_cmd *c, struct option *lo,
			     size_t max, char *shortopts, size_t shortmax)
{
	const struct admin_cmd_opt *o;
	size_t n = 0, ns = 1, i, j;

	shortopts[0] = ':';
	for (j = 0; j < 2; j++) {
		size_t count =
			j ? ARRAY_SIZE(common_opts) : ARRAY_SIZE(c->opts);

		for (i = 0; i < count && n + 1 < max; i++) {
			o = j ? &common_opts[i] : &c->opts[i];
			if (!o->help)
				break;
			lo[n].name = admin_opts[o->id].name;
			lo[n].has_arg = admin_opts[o->id].kind == K_FLAG
						? no_argument
						: required_argument;
			lo[n].flag = NULL;
			lo[n].val = 256 + (int)o->id;
			n++;
			if (admin_opts[o->id].shortc && ns + 3 < shortmax) {
				shortopts[ns++] = admin_opts[o->id].shortc;
				if (lo[n - 1].has_arg)
					shortopts[ns++] = ':';
			}
		}
	}
	memset(&lo[n], 0, sizeof(lo[n]));
	shortopts[ns] = '\0';
	return n;
}

static enum admin_opt_id short_id(int c)
{
	size_t i;

	for (i = 0; i < O_MAX; i++)
		if (admin_opts[i].shortc == c)
			return (enum admin_opt_id)i;
	return O_MAX;
}

/* Check and keep one option's value; 0 or an exit status. */
static int take(struct admin_ctx *x, enum admin_opt_id id, const char *val)
{
	const struct admin_optdef *d = &admin_opts[id];
	struct sfs_err e;

	sfs_err_init(&e);
	switch (d->kind) {
	case K_FLAG:
		x->set[id]++;
		return 0;
	case K_NUM:
		if (sfs_parse_i64(val, &x->num[id]) || x->num[id] < d->min)
			return usage_error(x->cmd,
					   "--%s: '%s' is not a whole number "
					   ">= %" PRId64,
					   d->name, val, d->min);
		break;
	case K_SCOPES:
		if (sfs_scopes_parse(val, &x->scopes, &e) || !x->scopes)
			return usage_error(
				x->cmd, "--scopes: %s",
				e.nfields ? e.fields[0].message
					  : "give some of read, write, delete, "
					    "share");
		break;
	case K_STR:
		if (!*val)
			return usage_error(x->cmd, "--%s: the value is empty",
					   d->name);
		break;
	}
	x->val[id] = val;
	x->set[id] = 1;
	return 0;
}

static int parse(struct admin_ctx *x, int argc, char **argv)
{
	struct option
		lo[ARRAY_SIZE(x->cmd->opts) + ARRAY_SIZE(common_opts) + 1];
	char shortopts[16], prog[64];
	const struct admin_cmd_opt *o;
	int c, rc;
	size_t i;

	snprintf(prog, sizeof(prog), "speechfsd %s", x->cmd->name);
	build_longopts(x->cmd, lo, ARRAY_SIZE(lo), shortopts,
		       sizeof(shortopts));
	if (cli_check_args(prog, argc, argv, shortopts, lo))
		return 2;
	optind = 1;
	while ((c = cli_getopt(prog, argc, argv, shortopts, lo)) != -1) {
		if (c == '?')
			return 2;
		rc = take(x,
			  c >= 256 ? (enum admin_opt_id)(c - 256) : short_id(c),
			  optarg);
		if (rc)
			return rc;
	}
	if (x->set[O_HELP])
		return 0;
	if (optind < argc && x->cmd->positional && !x->pos)
		x->pos = argv[optind++];
	if (optind < argc)
		return usage_error(x->cmd, "unexpected argument '%s'",
				   argv[optind]);
	for (i = 0; i < ARRAY_SIZE(x->cmd->opts); i++) {
		o = &x->cmd->opts[i];
		if (o->help && o->req && !x->set[o->id])
			return usage_error(x->cmd, "--%s is required",
					   admin_opts[o->id].name);
	}
	if (!x->set[O_STORE] && !x->set[O_CONFIG])
		return usage_error(x->cmd, "--store DIR is required");
	return 0;
}

/* The store and the core's settings: --store, or the --config file's. */
static int open_store(struct admin_ctx *x)
{
	struct httpd_config *cfg = calloc(1, sizeof(*cfg));
	struct sfs_err e;
	const char *dir;
	int rc = 1;

	sfs_err_init(&e);
	if (!cfg)
		return 1;
	httpd_config_init(cfg);
	if (x->set[O_CONFIG] && httpd_config_load(cfg, x->val[O_CONFIG], &e)) {
		fprintf(stderr, "speechfsd %s: %s\n", x->cmd->name, e.message);
		rc = 2;
		goto out;
	}
	dir = x->set[O_STORE] ? x->val[O_STORE] : cfg->store;
	if (!*dir) {
		rc = usage_error(x->cmd, "no store: '%s' has no 'store' key",
				 x->val[O_CONFIG]);
		goto out;
	}
	snprintf(x->store, sizeof(x->store), "%s", dir);
	x->core = cfg->core;
	if (x->cmd->flags & CMD_NO_OPEN) {
		rc = 0;
		goto out;
	}
	if (sfs_store_open(x->store, &cfg->core, &x->s, &e)) {
		fprintf(stderr, "speechfsd %s: cannot open store '%s': %s\n",
			x->cmd->name, x->store, e.message);
		admin_json_error(x, &e);
		goto out;
	}
	rc = 0;
out:
	free(cfg);
	return rc;
}

/* ---- output ------------------------------------------------------------- */

void admin_json_error(const struct admin_ctx *x, const struct sfs_err *e)
{
	json_t *j;
	char *s;

	if (!x->set[O_JSON])
		return;
	j = json_pack("{s:s, s:s}", "error", sfs_err_type(e), "message",
		      e->message[0] ? e->message : sfs_status_str(e->status));
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	printf("%s\n", s ? s : "{}");
	free(s);
	json_decref(j);
}

int admin_fail(const struct admin_ctx *x, const struct sfs_err *e)
{
	fprintf(stderr, "speechfsd %s: %s\n", x->cmd->name,
		e->message[0] ? e->message : sfs_status_str(e->status));
	admin_json_error(x, e);
	return 1;
}

int admin_out(const struct admin_ctx *x, json_t *j, const char *text)
{
	char *s;

	if (x->set[O_JSON]) {
		s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		printf("%s\n", s ? s : "{}");
		free(s);
	} else if (text && *text) {
		printf("%s\n", text);
	}
	json_decref(j);
	return 0;
}

/* ---- main -----------------------------------------------------------------
 */

static int run(const struct admin_cmd *c, int argc, char **argv)
{
	struct admin_ctx *x = calloc(1, sizeof(*x));
	int rc;

	if (!x)
		return 1;
	x->cmd = c;
	x->scopes = SFS_SCOPE_ALL;
	rc = parse(x, argc, argv);
	if (rc || x->set[O_HELP]) {
		if (!rc)
			cmd_help(stdout, c);
		goto out;
	}
	/* quiet on success: the core's info lines only with -v */
	sfs_log_set_level(x->set[O_VERBOSE] >= 2   ? SFS_LOG_DEBUG
			  : x->set[O_VERBOSE] == 1 ? SFS_LOG_INFO
						   : SFS_LOG_WARN);
	rc = open_store(x);
	if (!rc)
		rc = c->fn(x);
	sfs_store_close(x->s);
out:
	free(x);
	return rc;
}

int admin_main(int argc, char **argv)
{
	const struct admin_cmd *c;
	int help = 0;

	/* blob show|migrate parse their own options (admin_blob.c) */
	if (strcmp(argv[0], "blob") == 0)
		return admin_blob_main(argc, argv);
	/* db migrate too (admin_db.c) */
	if (strcmp(argv[0], "db") == 0)
		return admin_db_main(argc, argv);
	if (strcmp(argv[0], "help") == 0) {
		/* `speechfsd help [COMMAND [VERB]]` */
		if (argc == 1) {
			printf("commands (each with --help):\n");
			admin_list_commands(stdout);
			return 0;
		}
		argc--;
		argv++;
		help = 1;
	}
	c = find_cmd(argv[0], NULL);
	if (!c) {
		/* a group: tenant, user, key */
		if (argc < 2 || argv[1][0] == '-') {
			int asked = argc >= 2 && (!strcmp(argv[1], "--help") ||
						  !strcmp(argv[1], "-h"));

			group_help(asked || help ? stdout : stderr, argv[0]);
			return asked || help ? 0 : 2;
		}
		c = find_cmd(argv[0], argv[1]);
		if (!c) {
			fprintf(stderr,
				"speechfsd %s: unknown verb '%s'; see "
				"'speechfsd %s --help'\n",
				argv[0], argv[1], argv[0]);
			return 2;
		}
		argc--;
		argv++;
	}
	if (help) {
		cmd_help(stdout, c);
		return 0;
	}
	return run(c, argc, argv);
}
