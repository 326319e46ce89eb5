/*
 * speechfsd blob: where a store keeps its blobs (`blob show`) and moving
 * them from the store's directory into an object store (`blob migrate
 * --to s3`): every blob copied and verified, then the store switched; an
 * interrupted run resumes where it stopped.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "httpd.h"
#include "speechfs/blob.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

static const char usage[] =
	"usage: speechfsd blob show --store DIR [--json]\n"
	"       speechfsd blob migrate --to s3 --store DIR [--config FILE]\n"
	"              [--endpoint URL] [--bucket B] [--prefix P]\n"
	"              [--region R] [--path-style true|false] [--json]\n"
	"The target's keys (blob.s3.*) come from the configuration file, the\n"
	"options override them; credentials from blob.s3.access_key and\n"
	"blob.s3.secret_key, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or\n"
	"a credentials file. Stop the daemon and the mounts of the store for\n"
	"the switch at the end; a run stopped before it resumes.\n";

static void progress(void *arg, const struct sfs_blob_migrate_report *r)
{
	int *quiet = arg;

	if (!*quiet && r->blobs % 100 == 0)
		fprintf(stderr,
			"blob migrate: %" PRId64 " blobs (%" PRId64
			" sent, %" PRId64 " there already)\n",
			r->blobs, r->copied, r->present);
}

/* What `blob migrate` was asked: its options, before they are checked. */
struct migrate_args {
	const char *store, *to, *config;
	int json;
	const char *set[128]; /* the target's keys, by option letter */
};

/* The target's keys that options override, by option letter. */
static const char *const migrate_keys[] = {
	['e'] = "blob.s3.endpoint",   ['b'] = "blob.s3.bucket",
	['p'] = "blob.s3.prefix",     ['r'] = "blob.s3.region",
	['P'] = "blob.s3.path_style",
};

/* The options into `a`: -1 to go on, else the exit status. */
static int migrate_options(int argc, char **argv, struct migrate_args *a)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "to", required_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'c' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "bucket", required_argument, NULL, 'b' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "region", required_argument, NULL, 'r' },
		{ "path-style", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			a->store = optarg;
			break;
		case 't':
			a->to = optarg;
			break;
		case 'c':
			a->config = optarg;
			break;
		case 'j':
			a->json = 1;
			break;
		case 'v':
			sfs_log_set_level(SFS_LOG_INFO);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'e':
		case 'b':
		case 'p':
		case 'r':
		case 'P':
			a->set[c] = optarg;
			break;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc || !a->store || !a->to || strcmp(a->to, "s3")) {
		fprintf(stderr, "speechfsd: %s\n%s",
			optind < argc ? "unexpected argument"
			: !a->store   ? "--store is required"
			: !a->to      ? "--to is required"
				      : "--to takes s3 only",
			usage);
		return 2;
	}
	return -1;
}

/* The target's keys: the configuration file's, then the options'. */
static int migrate_config(const struct migrate_args *a, struct sfs_config *cfg)
{
	struct sfs_err e;
	size_t i;

	sfs_config_init(cfg);
	if (a->config && httpd_config_load_core(a->config, cfg))
		return -1;
	for (i = 0; i < ARRAY_SIZE(migrate_keys); i++) {
		sfs_err_init(&e);
		if (migrate_keys[i] && a->set[i] &&
		    sfs_config_set(cfg, migrate_keys[i], a->set[i], &e)) {
			fprintf(stderr, "speechfsd: %s\n", e.message);
			return -1;
		}
	}
	return 0;
}

/* The run's outcome, as JSON or a sentence; failed: e says why. */
static void migrate_report(const struct migrate_args *a,
			   const struct sfs_config *cfg,
			   const struct sfs_blob_migrate_report *r, int failed,
			   const struct sfs_err *e)
{
	if (a->json) {
		json_t *j = json_pack(
			"{s:I, s:I, s:I, s:I, s:b, s:s?}", "blobs",
			(json_int_t)r->blobs, "copied", (json_int_t)r->copied,
			"present", (json_int_t)r->present, "bytes",
			(json_int_t)r->bytes, "switched", r->switched, "error",
			failed ? e->message : NULL);
		char *s = json_dumps(j, JSON_COMPACT);

		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(j);
	} else if (!failed) {
		printf("%" PRId64 " blobs: %" PRId64 " copied (%" PRId64
		       " bytes), %" PRId64 " there already; the store now "
		       "keeps its blobs in s3://%s/%s\n",
		       r->blobs, r->copied, r->bytes, r->present,
		       cfg->blob_s3_bucket, cfg->blob_s3_prefix);
	}
	if (failed)
		fprintf(stderr, "speechfsd: blob migrate: %s\n", e->message);
}

static int migrate(int argc, char **argv)
{
	struct migrate_args a = { 0 };
	struct sfs_blob_migrate_report r;
	struct sfs_config cfg;
	struct sfs_err e;
	int rc;

	rc = migrate_options(argc, argv, &a);
	if (rc >= 0)
		return rc;
	if (migrate_config(&a, &cfg))
		return 2;
	sfs_err_init(&e);
	memset(&r, 0, sizeof(r));
	rc = sfs_blob_migrate(a.store, &cfg, &r, progress, &a.json, &e) ? 1 : 0;
	migrate_report(&a, &cfg, &r, rc, &e);
	/* a busy store: copied, not switched; run it again */
	return rc ? (e.status == SFS_BUSY ? 75 : 1) : 0;
}

static int show(int argc, char **argv)
{
	struct sfs_store *s = NULL;
	struct sfs_config cfg;
	struct sfs_err e;
	const struct sfs_config *c;
	const char *store = NULL, *config = NULL;
	int i, json = 0;

	sfs_config_init(&cfg);
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			store = argv[++i];
		else if ((!strcmp(argv[i], "--config") ||
			  !strcmp(argv[i], "-c")) &&
			 i + 1 < argc)
			config = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--verbose") ||
			 !strcmp(argv[i], "-v"))
			sfs_log_set_level(SFS_LOG_INFO);
		else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!store) {
		fputs(usage, stderr);
		return 2;
	}
	if (config && httpd_config_load_core(config, &cfg))
		return 2;
	sfs_err_init(&e);
	if (sfs_store_open(store, &cfg, &s, &e)) {
		fprintf(stderr, "speechfsd: %s\n", e.message);
		return 1;
	}
	c = sfs_store_config(s);
	if (json) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "backend",
				      sfs_blob_backend_name(s), "endpoint",
				      c->blob_s3_endpoint, "bucket",
				      c->blob_s3_bucket, "prefix",
				      c->blob_s3_prefix, "region",
				      c->blob_s3_region);
		char *t = json_dumps(j, JSON_COMPACT);

		printf("%s\n", t ? t : "{}");
		free(t);
		json_decref(j);
	} else if (!strcmp(sfs_blob_backend_name(s), "s3")) {
		printf("s3 s3://%s/%s at %s\n", c->blob_s3_bucket,
		       c->blob_s3_prefix,
		       c->blob_s3_endpoint[0] ? c->blob_s3_endpoint : "AWS");
	} else {
		printf("local %s/blobs\n", sfs_store_dir(s));
	}
	sfs_store_close(s);
	return 0;
}

static const char show_help[] =
	"usage: speechfsd blob show --store DIR [--config FILE] [--json] [-v]\n"
	"\n"
	"Where the store keeps its blobs: local (its blobs/ directory) or\n"
	"s3 with the bucket, prefix and endpoint.\n"
	"\n"
	"options:\n"
	"      --store DIR        the store directory\n"
	"  -c, --config FILE      the core's settings (the daemon's file)\n"
	"      --json             print the result as JSON\n"
	"  -v, --verbose          log what is done\n"
	"  -h, --help             print this help\n"
	"\n"
	"example:\n"
	"  speechfsd blob show --store /srv/speechfs\n";

static const char migrate_help[] =
	"usage: speechfsd blob migrate --to s3 --store DIR [--config FILE]\n"
	"              [--endpoint URL] [--bucket B] [--prefix P]\n"
	"              [--region R] [--path-style true|false] [--json]\n"
	"\n"
	"Move the store's blobs into an S3 object store, then switch the\n"
	"store to it (a run stopped before the switch resumes).\n"
	"\n"
	"options:\n"
	"      --to s3            the kind of store to move to (required)\n"
	"      --endpoint URL     the object store (blob.s3.endpoint)\n"
	"      --bucket B         the bucket (blob.s3.bucket)\n"
	"      --prefix P         the key prefix (blob.s3.prefix)\n"
	"      --region R         the region (blob.s3.region)\n"
	"      --path-style true|false\n"
	"                         path-style URLs (blob.s3.path_style)\n"
	"      --store DIR        the store directory\n"
	"  -c, --config FILE      the blob.s3.* keys (the daemon's file)\n"
	"      --json             print the result as JSON\n"
	"  -v, --verbose          log what is done\n"
	"  -h, --help             print this help\n"
	"\n"
	"example:\n"
	"  speechfsd blob migrate --to s3 --store /srv/speechfs "
	"--config /etc/speechfs/speechfsd.conf\n";

static int asks_help(int argc, char **argv)
{
	int i;

	for (i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

int admin_blob_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "show") && asks_help(argc, argv)) {
		fputs(show_help, stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "migrate") && asks_help(argc, argv)) {
		fputs(migrate_help, stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "migrate"))
		return migrate(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "show"))
		return show(argc - 2, argv + 2);
	fputs(usage, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
	return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
