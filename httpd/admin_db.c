/*
 * speechfsd db migrate --to postgresql://…: a store's metadata moved from
 * its speechfs.db into a PostgreSQL database (core's sfs_db_migrate):
 * copied, verified by counts and checksums, then switched; a run that
 * stops resumes.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "httpd.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

static const char usage[] =
	"usage: speechfsd db migrate --to postgresql://... --store DIR\n"
	"              [--config FILE] [--schema S] [--max-rows N] [--json]\n"
	"              [-v]\n";

static const char migrate_help[] =
	"usage: speechfsd db migrate --to postgresql://... --store DIR\n"
	"              [--config FILE] [--schema S] [--max-rows N] [--json]\n"
	"              [-v]\n"
	"\n"
	"Move the store's metadata from its speechfs.db into PostgreSQL:\n"
	"every table copied in chunks that commit one by one, counts and\n"
	"checksums compared table by table, then the store switched\n"
	"(STORE/db.url written, speechfs.db renamed\n"
	"speechfs.db.moved-to-postgresql). A run that stops, fails or\n"
	"reaches --max-rows resumes where it stopped. Stop the daemon and\n"
	"the mounts of the store first. Blobs stay where they are.\n"
	"\n"
	"options:\n"
	"      --to URL           the database (a libpq postgresql:// URL;\n"
	"                         default: db.url of --config)\n"
	"      --schema S         its schema for the store (default: "
	"db.schema\n"
	"                         of --config, else public)\n"
	"      --store DIR        the store directory\n"
	"  -c, --config FILE      the daemon's settings, for db.url and\n"
	"                         db.schema\n"
	"      --max-rows N       copy at most N rows in this run (exit 75)\n"
	"      --json             print the result as JSON\n"
	"  -v, --verbose          log what is done\n"
	"  -h, --help             print this help\n"
	"\n"
	"exit status: 0 moved; 1 failed (nothing switched); 2 usage;\n"
	"75 stopped at --max-rows (run again).\n"
	"\n"
	"example:\n"
	"  speechfsd db migrate --store /srv/speechfs --to "
	"postgresql://speechfs@db/speechfs\n";

static void report(int json, const struct sfs_db_migrate_report *r, int failed,
		   const struct sfs_err *e)
{
	if (json) {
		json_t *j = json_pack(
			"{s:I, s:I, s:I, s:I, s:b, s:b, s:b, s:s?, s:s?}",
			"tables", (json_int_t)r->tables, "copied",
			(json_int_t)r->copied, "rows", (json_int_t)r->rows,
			"verified", (json_int_t)r->verified, "resumed",
			r->resumed, "complete", r->complete, "switched",
			r->switched, "differs", r->table[0] ? r->table : NULL,
			"error", failed ? e->message : NULL);
		char *s = json_dumps(j, JSON_COMPACT);

		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(j);
	} else if (!failed) {
		printf("%" PRId64 " rows in %" PRId64
		       " tables verified (%" PRId64
		       " copied by this run); the store's metadata are now in "
		       "PostgreSQL\n",
		       r->verified, r->tables, r->copied);
	}
	if (failed)
		fprintf(stderr, "speechfsd: db migrate: %s\n", e->message);
}

static int migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "to", required_argument, NULL, 't' },
		{ "schema", required_argument, NULL, 'S' },
		{ "max-rows", required_argument, NULL, 'm' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct sfs_db_migrate_report r;
	struct sfs_config cfg;
	struct sfs_err e;
	const char *store = NULL, *to = NULL, *schema = NULL, *config = NULL;
	int64_t max_rows = 0;
	char *end;
	int c, json = 0, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:v", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			store = optarg;
			break;
		case 't':
			to = optarg;
			break;
		case 'S':
			schema = optarg;
			break;
		case 'm':
			max_rows = strtoll(optarg, &end, 10);
			if (*end || max_rows <= 0) {
				fprintf(stderr, "speechfsd: --max-rows takes a "
						"positive number\n");
				return 2;
			}
			break;
		case 'c':
			config = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'v':
			sfs_log_set_level(SFS_LOG_INFO);
			break;
		case ':':
			fprintf(stderr, "speechfsd: %s needs a value\n%s",
				argv[optind - 1], usage);
			return 2;
		default:
			fprintf(stderr,
				"speechfsd: unexpected argument '%s'\n%s",
				argv[optind - 1], usage);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "speechfsd: unexpected argument '%s'\n%s",
			argv[optind], usage);
		return 2;
	}
	sfs_config_init(&cfg);
	if (config && httpd_config_load_core(config, &cfg))
		return 2;
	if (!to && cfg.db_url[0])
		to = cfg.db_url;
	if (!schema && cfg.db_schema[0])
		schema = cfg.db_schema;
	if (!store || !to) {
		fprintf(stderr, "speechfsd: %s is required\n%s",
			!store ? "--store" : "--to (or db.url in --config)",
			usage);
		return 2;
	}
	sfs_err_init(&e);
	rc = sfs_db_migrate(store, to, schema, max_rows, &r, &e) ? 1 : 0;
	report(json, &r, rc, &e);
	return rc ? (e.status == SFS_BUSY ? 75 : 1) : 0;
}

int admin_db_main(int argc, char **argv)
{
	int i;

	if (argc >= 2 && !strcmp(argv[1], "migrate")) {
		for (i = 2; i < argc; i++)
			if (!strcmp(argv[i], "--help") ||
			    !strcmp(argv[i], "-h")) {
				fputs(migrate_help, stdout);
				return 0;
			}
		return migrate(argc - 1, argv + 1); /* argv[0]: "migrate" */
	}
	fputs(usage, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
	return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
