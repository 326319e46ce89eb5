/*
 * The admin commands of speechfsd and their table: init, tenants, users,
 * API keys, JWTs and fsck. Each runs after admin.c has checked every
 * option, and prints only its result.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admin.h"
#include "speechfs/fsck.h"
#include "speechfs/store.h"
#include "speechfs/token.h"
#include "speechfs/banned.h"

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

static int cmd_init(struct admin_ctx *x)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_store_init(x->store, &e))
		return admin_fail(x, &e);
	return admin_out(x, json_pack("{s:s}", "store", x->store), "");
}

/* ---- tenants ------------------------------------------------------------ */

static json_t *tenant_json(const struct sfs_tenant_info *t)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "id", t->id, "name",
			 t->name, "maxBytes", (json_int_t)t->max_bytes,
			 "maxFiles", (json_int_t)t->max_files, "usedBytes",
			 (json_int_t)t->used_bytes, "usedFiles",
			 (json_int_t)t->used_files);
}

static int cmd_tenant_create(struct admin_ctx *x)
{
	char id[SFS_ID_SIZE];
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_tenant_create(x->s, x->val[O_NAME], x->num[O_MAX_BYTES],
			      x->num[O_MAX_FILES], id, &e))
		return admin_fail(x, &e);
	return admin_out(
		x, json_pack("{s:s, s:s}", "id", id, "name", x->val[O_NAME]),
		id);
}

static int cmd_tenant_quota(struct admin_ctx *x)
{
	struct sfs_tenant_info ti;
	char text[256], id[SFS_ID_SIZE];
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_tenant_get(x->s, x->val[O_ID], &ti, &e))
		return admin_fail(x, &e);
	/* sfs_tenant_get clears its output first: the id is copied */
	memcpy(id, ti.id, sizeof(id));
	/* a limit not given stays as it is; the result is shown */
	if (sfs_tenant_set_quota(
		    x->s, id,
		    x->set[O_MAX_BYTES] ? x->num[O_MAX_BYTES] : ti.max_bytes,
		    x->set[O_MAX_FILES] ? x->num[O_MAX_FILES] : ti.max_files,
		    &e) ||
	    sfs_tenant_get(x->s, id, &ti, &e))
		return admin_fail(x, &e);
	snprintf(text, sizeof(text),
		 "max bytes %" PRId64 ", max files %" PRId64
		 " (0 = unlimited); used %" PRId64 " bytes, %" PRId64 " files",
		 ti.max_bytes, ti.max_files, ti.used_bytes, ti.used_files);
	return admin_out(x, tenant_json(&ti), text);
}

/* ---- users -------------------------------------------------------------- */

static int cmd_user_create(struct admin_ctx *x)
{
	char id[SFS_ID_SIZE];
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_user_create(x->s, x->val[O_TENANT], x->val[O_NAME],
			    x->set[O_DOWNLOAD_BPS] ? x->num[O_DOWNLOAD_BPS]
						   : -1,
			    id, &e))
		return admin_fail(x, &e);
	return admin_out(x,
			 json_pack("{s:s, s:s, s:s}", "id", id, "tenantId",
				   x->val[O_TENANT], "name", x->val[O_NAME]),
			 id);
}

static int cmd_user_rate(struct admin_ctx *x)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_user_set_rate(x->s, x->val[O_ID], x->num[O_DOWNLOAD_BPS], &e))
		return admin_fail(x, &e);
	return admin_out(x,
			 json_pack("{s:s, s:I}", "id", x->val[O_ID],
				   "downloadBytesPerSecond",
				   (json_int_t)x->num[O_DOWNLOAD_BPS]),
			 "");
}

/* ---- keys and tokens ---------------------------------------------------- */

static int cmd_key_create(struct admin_ctx *x)
{
	char kid[SFS_ID_SIZE], key[SFS_API_KEY_SIZE], text[256];
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_key_create(x->s, x->val[O_USER], x->scopes, x->val[O_LABEL],
			   key, kid, &e))
		return admin_fail(x, &e);
	snprintf(text, sizeof(text),
		 "key id: %s\nkey: %s\n(the key is shown only now)", kid, key);
	return admin_out(x,
			 json_pack("{s:s, s:s, s:s, s:o}", "id", kid, "key",
				   key, "userId", x->val[O_USER], "scopes",
				   scope_names(x->scopes)),
			 text);
}

static int cmd_key_revoke(struct admin_ctx *x)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_key_revoke(x->s, x->val[O_ID], &e))
		return admin_fail(x, &e);
	return admin_out(
		x, json_pack("{s:s, s:b}", "id", x->val[O_ID], "revoked", 1),
		"");
}

static int cmd_jwt(struct admin_ctx *x)
{
	struct sfs_buf b = SFS_BUF_INIT(8192);
	struct sfs_err e;
	int rc;

	sfs_err_init(&e);
	if (sfs_jwt_mint(x->s, x->val[O_USER], x->scopes,
			 x->set[O_TTL] ? x->num[O_TTL] : 3600, &b, &e))
		rc = admin_fail(x, &e);
	else
		rc = admin_out(x, json_pack("{s:s}", "token", b.buf), b.buf);
	sfs_buf_release(&b);
	return rc;
}

/* ---- fsck --------------------------------------------------------------- */

static void fsck_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "fsck: %s\n", line);
}

static int cmd_fsck(struct admin_ctx *x)
{
	struct sfs_fsck_report r;
	struct sfs_err e;
	char text[256];
	int rc;

	sfs_err_init(&e);
	memset(&r, 0, sizeof(r));
	if (sfs_fsck(x->s, x->set[O_REPAIR], &r, fsck_line, NULL, &e))
		return admin_fail(x, &e);
	snprintf(text, sizeof(text),
		 "blobs %" PRId64 ", orphans %" PRId64 ", missing %" PRId64
		 ", bad refcounts %" PRId64 ", repaired %" PRId64,
		 r.blobs_checked, r.orphan_files, r.missing_files,
		 r.bad_refcounts, r.repaired);
	rc = admin_out(x,
		       json_pack("{s:I, s:I, s:I, s:I, s:I}", "blobsChecked",
				 (json_int_t)r.blobs_checked, "orphanFiles",
				 (json_int_t)r.orphan_files, "missingFiles",
				 (json_int_t)r.missing_files, "badRefcounts",
				 (json_int_t)r.bad_refcounts, "repaired",
				 (json_int_t)r.repaired),
		       text);
	if (!x->set[O_REPAIR] &&
	    (r.orphan_files || r.missing_files || r.bad_refcounts))
		rc = 3;
	return rc;
}

/* ---- the table ---------------------------------------------------------- */

#define REQ 1
#define S "/srv/speechfs"

const struct admin_cmd admin_cmds[] = {
	{
		.name = "init",
		.fn = cmd_init,
		.summary = "make a new, empty store",
		.description = "Make a new, empty store in DIR (created if "
			       "missing) with its signing\nsecret. Fails if a "
			       "store is already there.",
		.example = "speechfsd init --store " S,
		.flags = CMD_NO_OPEN,
	},
	{
		.name = "tenant create",
		.fn = cmd_tenant_create,
		.summary = "create a tenant",
		.description = "Create a tenant with an optional quota of "
			       "bytes and of files (0: no\nlimit); print its "
			       "id.",
		.opts = { { O_NAME, REQ, "the tenant's name" },
			  { O_MAX_BYTES, 0,
			    "quota of stored bytes (default 0: no limit)" },
			  { O_MAX_FILES, 0,
			    "quota of files (default 0: no limit)" } },
		.example = "speechfsd tenant create --store " S
			   " --name acme --max-files 100000",
	},
	{
		.name = "tenant quota",
		.fn = cmd_tenant_quota,
		.summary = "change a tenant's quota",
		.description = "Change a tenant's quota (a limit not given "
			       "stays) and print it with the\ntenant's use. "
			       "Lowering a quota below the use refuses new "
			       "content only;\nnothing stored is removed.",
		.opts = { { O_ID, REQ, "the tenant's id" },
			  { O_MAX_BYTES, 0,
			    "quota of stored bytes (0: no limit)" },
			  { O_MAX_FILES, 0, "quota of files (0: no limit)" } },
		.example = "speechfsd tenant quota --store " S
			   " --id $T --max-files 5000",
	},
	{
		.name = "user create",
		.fn = cmd_user_create,
		.summary = "create a user in a tenant",
		.description = "Create a user in a tenant; print its id. User "
			       "names are unique in a\ntenant, ignoring case.",
		.opts = { { O_TENANT, REQ, "the tenant's id" },
			  { O_NAME, REQ, "the user's name" },
			  { O_DOWNLOAD_BPS, 0,
			    "download and stream bandwidth in bytes per "
			    "second (default -1: the daemon's "
			    "http.download_bps; 0: unlimited)" } },
		.example = "speechfsd user create --store " S
			   " --tenant $T --name alice",
	},
	{
		.name = "user rate",
		.fn = cmd_user_rate,
		.summary = "change a user's bandwidth",
		.description = "Change a user's download and stream "
			       "bandwidth.",
		.opts = { { O_ID, REQ, "the user's id" },
			  { O_DOWNLOAD_BPS, REQ,
			    "bytes per second (-1: the daemon's default, 0: "
			    "unlimited)" } },
		.example = "speechfsd user rate --store " S
			   " --id $U --download-bps 1000000",
	},
	{
		.name = "key create",
		.fn = cmd_key_create,
		.summary = "create an API key for a user",
		.description = "Create an API key for a user. The key is "
			       "printed once and stored only\nas its SHA-256 "
			       "hash.",
		.opts = { { O_USER, REQ, "the user's id" },
			  { O_SCOPES, 0,
			    "comma-separated: read, write, delete, share "
			    "(default: all)" },
			  { O_LABEL, 0, "a note on what the key is for" } },
		.example = "speechfsd key create --store " S
			   " --user $U --scopes read,write --label laptop",
	},
	{
		.name = "key revoke",
		.fn = cmd_key_revoke,
		.summary = "revoke an API key",
		.description = "Revoke an API key; requests with it are "
			       "refused from then on.",
		.opts = { { O_ID, REQ, "the key's id (not the key)" } },
		.example = "speechfsd key revoke --store " S " --id $KEY_ID",
	},
	{
		.name = "jwt",
		.fn = cmd_jwt,
		.summary = "mint a JWT for a user",
		.description = "Mint an HS256 JWT for a user, signed with the "
			       "store's secret, for\n'Authorization: Bearer'.",
		.opts = { { O_USER, REQ, "the user's id" },
			  { O_SCOPES, 0,
			    "comma-separated: read, write, delete, share "
			    "(default: all)" },
			  { O_TTL, 0,
			    "seconds the token is valid (default 3600)" } },
		.example = "speechfsd jwt --store " S
			   " --user $U --scopes read --ttl 600",
	},
	{
		.name = "fsck",
		.fn = cmd_fsck,
		.summary = "check the store",
		.description = "Check the store: blobs without rows, rows "
			       "without blobs, wrong\nreference counts. Each "
			       "finding is a line on standard error, the\n"
			       "summary goes to standard output; exit status 3 "
			       "when something was\nfound and not repaired.",
		.opts = { { O_REPAIR, 0,
			    "repair what is found (files whose blob is "
			    "missing are marked content-discarded, never "
			    "deleted)" } },
		.example = "speechfsd fsck --store " S " --repair",
	},
};

const size_t admin_ncmds = ARRAY_SIZE(admin_cmds);
