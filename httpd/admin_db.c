/*
 * speechfsd db migrate --to postgresql://…: a store's metadata moved from
 * its speechfs.db into a PostgreSQL database (core's sfs_db_migrate):
 * copied, verified by counts and checksums, then switched; a run that
 * stops resumes.
 */
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
	"              [--schema S] [--max-rows N] [--json] [-v]\n";

static const char migrate_help[] =
	"usage: speechfsd db migrate --to postgresql://... --store DIR\n"
	"              [--schema S] [--max-rows N] [--json] [-v]\n"
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
	"      --to URL           the database (a libpq postgresql:// URL)\n"
	"      --schema S         its schema for the store (default public)\n"
	"      --store DIR        the store directory\n"
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
	struct sfs_db_migrate_report r;
	struct sfs_err e;
	const char *store = NULL, *to = NULL, *schema = NULL;
	int64_t max_rows = 0;
	char *end;
	int i, json = 0, rc;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			store = argv[++i];
		else if (!strcmp(argv[i], "--to") && i + 1 < argc)
			to = argv[++i];
		else if (!strcmp(argv[i], "--schema") && i + 1 < argc)
			schema = argv[++i];
		else if (!strcmp(argv[i], "--max-rows") && i + 1 < argc) {
			max_rows = strtoll(argv[++i], &end, 10);
			if (*end || max_rows <= 0) {
				fprintf(stderr, "speechfsd: --max-rows takes a "
						"positive number\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--verbose") ||
			 !strcmp(argv[i], "-v"))
			sfs_log_set_level(SFS_LOG_INFO);
		else {
			fprintf(stderr,
				"speechfsd: unexpected argument '%s'\n%s",
				argv[i], usage);
			return 2;
		}
	}
	if (!store || !to) {
		fprintf(stderr, "speechfsd: %s is required\n%s",
			!store ? "--store" : "--to", usage);
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
		return migrate(argc - 2, argv + 2);
	}
	fputs(usage, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
	return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
