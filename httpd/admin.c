/*
 * The admin CLI of speechfsd: init a store, create tenants, users and API
 * keys, revoke keys, mint JWTs and check the store (fsck). Every command
 * takes --store DIR and prints text, or JSON with --json.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "httpd.h"
#include "speechfs/blob.h"
#include "speechfs/fsck.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

#define MAX_OPTS 8

struct args {
	const char *keys[MAX_OPTS];
	const char *vals[MAX_OPTS];
	int n;
	int json;
	int repair;
};

static const char *arg(const struct args *a, const char *key)
{
	int i;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->keys[i], key) == 0)
			return a->vals[i];
	return NULL;
}

/* --key value pairs and the flags --json, --repair. */
static int parse(int argc, char **argv, struct args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			a->json = 1;
		} else if (strcmp(argv[i], "--repair") == 0) {
			a->repair = 1;
		} else if (strncmp(argv[i], "--", 2) == 0 && i + 1 < argc &&
			   a->n < MAX_OPTS) {
			a->keys[a->n] = argv[i] + 2;
			a->vals[a->n++] = argv[++i];
		} else {
			fprintf(stderr,
				"speechfsd: unexpected argument "
				"'%s'\n",
				argv[i]);
			return -1;
		}
	}
	return 0;
}

static int fail(const struct args *a, const struct sfs_err *e)
{
	if (a->json) {
		json_t *j = json_pack("{s:s, s:s}", "error", sfs_err_type(e),
				      "message", e->message);
		char *s = json_dumps(j, JSON_COMPACT);

		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(j);
	}
	fprintf(stderr, "speechfsd: %s\n",
		e->message[0] ? e->message : sfs_status_str(e->status));
	return 1;
}

/* Print a JSON object (taken) or its text form. */
static int out(const struct args *a, json_t *j, const char *text)
{
	if (a->json) {
		char *s = json_dumps(j, JSON_COMPACT);

		printf("%s\n", s ? s : "{}");
		free(s);
	} else {
		printf("%s\n", text);
	}
	json_decref(j);
	return 0;
}

static int need(const char *v, const char *name)
{
	if (v)
		return 0;
	fprintf(stderr, "speechfsd: --%s is required\n", name);
	return -1;
}

static int num(const char *v, int64_t dflt, int64_t *out_v)
{
	*out_v = dflt;
	if (!v)
		return 0;
	if (sfs_parse_i64(v, out_v)) {
		fprintf(stderr, "speechfsd: '%s' is not a number\n", v);
		return -1;
	}
	return 0;
}

static json_t *scope_names(unsigned scopes)
{
	json_t *arr = json_array();
	unsigned bit;

	for (bit = 1; bit <= SFS_SCOPE_SHARE; bit <<= 1)
		if (scopes & bit)
			json_array_append_new(arr,
					      json_string(sfs_scope_name(bit)));
	return arr;
}

static void fsck_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "fsck: %s\n", line);
}

static int run(const char *cmd, const char *sub, struct args *a)
{
	struct sfs_store *s = NULL;
	struct sfs_err e;
	char id[SFS_ID_SIZE], kid[SFS_ID_SIZE], key[SFS_API_KEY_SIZE];
	char text[512];
	const char *store = arg(a, "store");
	unsigned scopes = SFS_SCOPE_ALL;
	int64_t n1, n2;
	int rc = 1;

	sfs_err_init(&e);
	if (need(store, "store"))
		return 2;
	if (strcmp(cmd, "init") == 0) {
		if (sfs_store_init(store, &e))
			return fail(a, &e);
		snprintf(text, sizeof(text), "initialized store '%s'", store);
		return out(a, json_pack("{s:s}", "store", store), text);
	}
	if (arg(a, "scopes") && sfs_scopes_parse(arg(a, "scopes"), &scopes, &e))
		return fail(a, &e);
	if (sfs_store_open(store, NULL, &s, &e))
		return fail(a, &e);
	if (strcmp(cmd, "tenant") == 0 && strcmp(sub, "create") == 0) {
		if (need(arg(a, "name"), "name") ||
		    num(arg(a, "max-bytes"), 0, &n1) ||
		    num(arg(a, "max-files"), 0, &n2))
			goto done;
		if (sfs_tenant_create(s, arg(a, "name"), n1, n2, id, &e)) {
			rc = fail(a, &e);
			goto done;
		}
		rc = out(a,
			 json_pack("{s:s, s:s}", "id", id, "name",
				   arg(a, "name")),
			 id);
	} else if (strcmp(cmd, "tenant") == 0 && strcmp(sub, "quota") == 0) {
		struct sfs_tenant_info ti;

		/* a limit not given stays as it is; the result is shown */
		if (need(arg(a, "id"), "id"))
			goto done;
		if (sfs_tenant_get(s, arg(a, "id"), &ti, &e)) {
			rc = fail(a, &e);
			goto done;
		}
		if (num(arg(a, "max-bytes"), ti.max_bytes, &n1) ||
		    num(arg(a, "max-files"), ti.max_files, &n2))
			goto done;
		memcpy(id, ti.id, sizeof(id));
		if (sfs_tenant_set_quota(s, id, n1, n2, &e) ||
		    sfs_tenant_get(s, id, &ti, &e)) {
			rc = fail(a, &e);
			goto done;
		}
		snprintf(text, sizeof(text),
			 "max bytes %" PRId64 ", max files %" PRId64
			 " (0 = unlimited); used %" PRId64 " bytes, %" PRId64
			 " files",
			 ti.max_bytes, ti.max_files, ti.used_bytes,
			 ti.used_files);
		rc = out(a,
			 json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "id",
				   ti.id, "name", ti.name, "maxBytes",
				   (json_int_t)ti.max_bytes, "maxFiles",
				   (json_int_t)ti.max_files, "usedBytes",
				   (json_int_t)ti.used_bytes, "usedFiles",
				   (json_int_t)ti.used_files),
			 text);
	} else if (strcmp(cmd, "user") == 0 && strcmp(sub, "rate") == 0) {
		if (need(arg(a, "id"), "id") ||
		    need(arg(a, "download-bps"), "download-bps") ||
		    num(arg(a, "download-bps"), -1, &n1))
			goto done;
		if (sfs_user_set_rate(s, arg(a, "id"), n1, &e)) {
			rc = fail(a, &e);
			goto done;
		}
		rc = out(a,
			 json_pack("{s:s, s:I}", "id", arg(a, "id"),
				   "downloadBytesPerSecond", (json_int_t)n1),
			 "updated");
	} else if (strcmp(cmd, "user") == 0 && strcmp(sub, "create") == 0) {
		if (need(arg(a, "tenant"), "tenant") ||
		    need(arg(a, "name"), "name") ||
		    num(arg(a, "download-bps"), -1, &n1))
			goto done;
		if (sfs_user_create(s, arg(a, "tenant"), arg(a, "name"), n1, id,
				    &e)) {
			rc = fail(a, &e);
			goto done;
		}
		rc = out(a,
			 json_pack("{s:s, s:s, s:s}", "id", id, "tenantId",
				   arg(a, "tenant"), "name", arg(a, "name")),
			 id);
	} else if (strcmp(cmd, "key") == 0 && strcmp(sub, "create") == 0) {
		if (need(arg(a, "user"), "user"))
			goto done;
		if (sfs_key_create(s, arg(a, "user"), scopes, arg(a, "label"),
				   key, kid, &e)) {
			rc = fail(a, &e);
			goto done;
		}
		snprintf(text, sizeof(text),
			 "key id: %s\nkey: %s\n"
			 "(the key is shown only now)",
			 kid, key);
		rc = out(a,
			 json_pack("{s:s, s:s, s:s, s:o}", "id", kid, "key",
				   key, "userId", arg(a, "user"), "scopes",
				   scope_names(scopes)),
			 text);
	} else if (strcmp(cmd, "key") == 0 && strcmp(sub, "revoke") == 0) {
		if (need(arg(a, "id"), "id"))
			goto done;
		if (sfs_key_revoke(s, arg(a, "id"), &e)) {
			rc = fail(a, &e);
			goto done;
		}
		rc = out(a,
			 json_pack("{s:s, s:b}", "id", arg(a, "id"), "revoked",
				   1),
			 "revoked");
	} else if (strcmp(cmd, "jwt") == 0) {
		struct sfs_buf b = SFS_BUF_INIT(8192);

		if (need(arg(a, "user"), "user") ||
		    num(arg(a, "ttl"), 3600, &n1))
			goto done;
		if (sfs_jwt_mint(s, arg(a, "user"), scopes, n1, &b, &e)) {
			sfs_buf_release(&b);
			rc = fail(a, &e);
			goto done;
		}
		rc = out(a, json_pack("{s:s}", "token", b.buf), b.buf);
		sfs_buf_release(&b);
	} else if (strcmp(cmd, "fsck") == 0) {
		struct sfs_fsck_report r;

		memset(&r, 0, sizeof(r));
		if (sfs_fsck(s, a->repair, &r, fsck_line, NULL, &e)) {
			rc = fail(a, &e);
			goto done;
		}
		snprintf(text, sizeof(text),
			 "blobs %" PRId64 ", orphans %" PRId64
			 ", missing %" PRId64 ", bad refcounts %" PRId64
			 ", repaired %" PRId64,
			 r.blobs_checked, r.orphan_files, r.missing_files,
			 r.bad_refcounts, r.repaired);
		rc = out(a,
			 json_pack("{s:I, s:I, s:I, s:I, s:I}", "blobsChecked",
				   (json_int_t)r.blobs_checked, "orphanFiles",
				   (json_int_t)r.orphan_files, "missingFiles",
				   (json_int_t)r.missing_files, "badRefcounts",
				   (json_int_t)r.bad_refcounts, "repaired",
				   (json_int_t)r.repaired),
			 text);
		if (!a->repair &&
		    (r.orphan_files || r.missing_files || r.bad_refcounts))
			rc = 3;
	} else {
		fprintf(stderr, "speechfsd: unknown command '%s %s'\n", cmd,
			sub);
		rc = 2;
	}
done:
	sfs_store_close(s);
	return rc;
}

int admin_is_command(const char *a)
{
	static const char *const cmds[] = { "init", "tenant", "user", "key",
					    "jwt",  "fsck",   "blob" };
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(a, cmds[i]) == 0)
			return 1;
	return 0;
}

int admin_main(int argc, char **argv)
{
	struct args a;
	const char *cmd = argv[0], *sub = "";
	int first = 1;

	if (strcmp(cmd, "blob") == 0)
		return admin_blob_main(argc, argv);
	/* tenant, user and key take a verb */
	if (strcmp(cmd, "tenant") == 0 || strcmp(cmd, "user") == 0 ||
	    strcmp(cmd, "key") == 0) {
		if (argc < 2 || strncmp(argv[1], "--", 2) == 0) {
			fprintf(stderr,
				"speechfsd: usage: speechfsd %s "
				"create|quota|rate|revoke --store DIR ...\n",
				cmd);
			return 2;
		}
		sub = argv[1];
		first = 2;
	}
	if (parse(argc - first, argv + first, &a))
		return 2;
	return run(cmd, sub, &a);
}
