/*
 * The admin commands of speechfsd and their table: init, tenants, users,
 * API keys (made, changed, listed, found), JWTs and fsck. Each runs after
 * admin.c has checked every option, and prints only its result.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "admin.h"
#include "speechfs/fsck.h"
#include "speechfs/people.h"
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

/* "2026-12-03T10:16:00Z", or `none` for 0. */
static const char *iso(int64_t ms, const char *none, char buf[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!ms)
		return none;
	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static json_t *json_time(int64_t ms)
{
	char buf[32];

	return ms ? json_string(iso(ms, "", buf)) : json_null();
}

/*
 * --tenant: an id, or the name of exactly one tenant (ignoring case), as
 * an operator remembers it. 0, or the exit status after the message.
 */
struct tenant_match {
	const char *name;
	char id[SFS_ID_SIZE];
	int n;
};

static int match_tenant(void *arg, const struct sfs_tenant_info *t)
{
	struct tenant_match *m = arg;

	if (strcasecmp(t->name, m->name) == 0 && m->n++ == 0)
		memcpy(m->id, t->id, sizeof(m->id));
	return 0;
}

static int tenant_arg(struct admin_ctx *x, char id[SFS_ID_SIZE])
{
	struct tenant_match m = { x->val[O_TENANT], "", 0 };
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_uuid_valid(m.name)) {
		snprintf(id, SFS_ID_SIZE, "%s", m.name);
		return 0;
	}
	if (sfs_tenant_list(x->s, match_tenant, &m, &e))
		return admin_fail(x, &e);
	if (m.n == 1) {
		memcpy(id, m.id, SFS_ID_SIZE);
		return 0;
	}
	if (m.n)
		sfs_errf(&e, SFS_CONFLICT, SFS_R_NONE,
			 "%d tenants are named '%s': give the id", m.n, m.name);
	else
		sfs_errf(&e, SFS_NOT_FOUND, SFS_R_TENANT_NOT_FOUND,
			 "no tenant '%s'", m.name);
	return admin_fail(x, &e);
}

static int cmd_init(struct admin_ctx *x)
{
	struct sfs_err e;

	sfs_err_init(&e);
	/* db.url of --config: the metadata in PostgreSQL */
	if (sfs_store_init_cfg(x->store, &x->core, &e))
		return admin_fail(x, &e);
	return admin_out(x, json_pack("{s:s}", "store", x->store), "");
}

/* ---- tenants ------------------------------------------------------------ */

static json_t *tenant_json(const struct sfs_tenant_info *t)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id", t->id,
			 "name", t->name, "maxBytes", (json_int_t)t->max_bytes,
			 "maxFiles", (json_int_t)t->max_files, "usedBytes",
			 (json_int_t)t->used_bytes, "usedFiles",
			 (json_int_t)t->used_files, "users",
			 (json_int_t)t->users);
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
	char id[SFS_ID_SIZE], tenant[SFS_ID_SIZE];
	struct sfs_err e;
	int rc;

	sfs_err_init(&e);
	rc = tenant_arg(x, tenant);
	if (rc)
		return rc;
	if (sfs_user_create(x->s, tenant, x->val[O_NAME],
			    x->set[O_DOWNLOAD_BPS] ? x->num[O_DOWNLOAD_BPS]
						   : -1,
			    id, &e))
		return admin_fail(x, &e);
	return admin_out(x,
			 json_pack("{s:s, s:s, s:s}", "id", id, "tenantId",
				   tenant, "name", x->val[O_NAME]),
			 id);
}

/* ---- finding people ------------------------------------------------------ */

/* A listing: JSON objects into an array, or text lines into a buffer. */
struct listing {
	const struct admin_ctx *x;
	json_t *arr;
	struct sfs_buf text;
	int fail;
};

static void listing_init(struct listing *l, const struct admin_ctx *x,
			 const char *header)
{
	l->x = x;
	l->arr = json_array();
	sfs_buf_init(&l->text, 64 << 20);
	l->fail = !l->arr || sfs_buf_adds(&l->text, header);
}

static void listing_add(struct listing *l, json_t *j, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void listing_add(struct listing *l, json_t *j, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!j || json_array_append_new(l->arr, j) ||
	    sfs_buf_adds(&l->text, line))
		l->fail = 1;
}

/* Print it (the array under key with --json) and release it. */
static int listing_done(struct listing *l, const char *key)
{
	struct sfs_err e;
	int rc;

	sfs_err_init(&e);
	if (l->fail) {
		json_decref(l->arr);
		sfs_buf_release(&l->text);
		sfs_errf(&e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		return admin_fail(l->x, &e);
	}
	/* the text without its last newline: admin_out adds one */
	if (l->text.len && l->text.buf[l->text.len - 1] == '\n')
		l->text.buf[--l->text.len] = '\0';
	rc = admin_out(l->x, json_pack("{s:o}", key, l->arr), l->text.buf);
	sfs_buf_release(&l->text);
	return rc;
}

static int tenant_line(void *arg, const struct sfs_tenant_info *t)
{
	listing_add(arg, tenant_json(t),
		    "%-36s  %-20s  %5" PRId64 "  %9" PRId64 "  %13" PRId64
		    "  %9" PRId64 "  %13" PRId64 "\n",
		    t->id, t->name, t->users, t->used_files, t->used_bytes,
		    t->max_files, t->max_bytes);
	return 0;
}

static int cmd_tenant_list(struct admin_ctx *x)
{
	struct listing l;
	struct sfs_err e;

	sfs_err_init(&e);
	listing_init(&l, x,
		     "ID                                    NAME             "
		     "     USERS      FILES          BYTES  MAX FILES      MAX "
		     "BYTES\n");
	if (sfs_tenant_list(x->s, tenant_line, &l, &e)) {
		json_decref(l.arr);
		sfs_buf_release(&l.text);
		return admin_fail(x, &e);
	}
	return listing_done(&l, "tenants");
}

static const char *rate_text(int64_t bps, char buf[64])
{
	if (bps < 0)
		return "the daemon's default (http.download_bps)";
	if (bps == 0)
		return "unlimited";
	snprintf(buf, 64, "%" PRId64 " bytes/s", bps);
	return buf;
}

static json_t *user_json(const struct sfs_user_info *u)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:I}", "id", u->id,
			 "name", u->name, "tenantId", u->tenant_id,
			 "tenantName", u->tenant_name, "downloadBytesPerSecond",
			 (json_int_t)u->download_bps, "createdAt",
			 json_time(u->created_ms), "keys", (json_int_t)u->keys);
}

static int user_line(void *arg, const struct sfs_user_info *u)
{
	char when[32];

	listing_add(arg, user_json(u),
		    "%-36s  %-20s  %-20s  %4" PRId64 "  %s\n", u->id,
		    u->tenant_name, u->name, u->keys,
		    iso(u->created_ms, "-", when));
	return 0;
}

static int cmd_user_list(struct admin_ctx *x)
{
	char tenant[SFS_ID_SIZE];
	struct listing l;
	struct sfs_err e;
	int rc;

	sfs_err_init(&e);
	if (x->set[O_TENANT] && (rc = tenant_arg(x, tenant)))
		return rc;
	listing_init(&l, x,
		     "ID                                    TENANT           "
		     "     NAME                  KEYS  CREATED\n");
	if (sfs_user_list(x->s, x->set[O_TENANT] ? tenant : NULL, user_line, &l,
			  &e)) {
		json_decref(l.arr);
		sfs_buf_release(&l.text);
		return admin_fail(x, &e);
	}
	return listing_done(&l, "users");
}

static int cmd_user_show(struct admin_ctx *x)
{
	char tenant[SFS_ID_SIZE], when[32], rate[64], text[1024];
	struct sfs_user_info u;
	struct sfs_err e;
	int rc;

	sfs_err_init(&e);
	if (!x->pos == !x->set[O_NAME] || x->set[O_NAME] != x->set[O_TENANT]) {
		fprintf(stderr,
			"speechfsd user show: give a USER_ID, or --tenant "
			"and --name; see 'speechfsd user show --help'\n");
		return 2;
	}
	if (x->pos) {
		rc = sfs_user_get(x->s, x->pos, &u, &e) ? admin_fail(x, &e) : 0;
	} else {
		rc = tenant_arg(x, tenant);
		if (!rc && sfs_user_find(x->s, tenant, x->val[O_NAME], &u, &e))
			rc = admin_fail(x, &e);
	}
	if (rc)
		return rc;
	snprintf(text, sizeof(text),
		 "id:        %s\nname:      %s\ntenant:    %s (%s)\n"
		 "created:   %s\nbandwidth: %s\napi keys:  %" PRId64,
		 u.id, u.name, u.tenant_name, u.tenant_id,
		 iso(u.created_ms, "-", when), rate_text(u.download_bps, rate),
		 u.keys);
	return admin_out(x, user_json(&u), text);
}

static void scope_words(unsigned scopes, char *buf, size_t size)
{
	static const char *const names[] = { "read", "write", "delete",
					     "share" };
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (scopes & (1u << i))
			n += (size_t)snprintf(buf + n, size - n, "%s%s",
					      n ? "," : "", names[i]);
}

static int key_line(void *arg, const struct sfs_key_info *k)
{
	char scopes[64], c[32], u[32], r[32];

	scope_words(k->scopes, scopes, sizeof(scopes));
	listing_add(arg,
		    json_pack("{s:s, s:s?, s:o, s:o, s:o, s:o}", "id", k->id,
			      "label", k->label[0] ? k->label : NULL, "scopes",
			      scope_names(k->scopes), "createdAt",
			      json_time(k->created_ms), "lastUsedAt",
			      json_time(k->last_used_ms), "revokedAt",
			      json_time(k->revoked_ms)),
		    "%-36s  %-16s  %-22s  %-20s  %-20s  %s\n", k->id,
		    k->label[0] ? k->label : "-", scopes,
		    iso(k->created_ms, "-", c),
		    iso(k->last_used_ms, "never", u),
		    iso(k->revoked_ms, "-", r));
	return 0;
}

static int cmd_key_list(struct admin_ctx *x)
{
	struct listing l;
	struct sfs_err e;

	sfs_err_init(&e);
	listing_init(&l, x,
		     "ID                                    LABEL             "
		     "SCOPES                  CREATED               LAST USED "
		     "            REVOKED\n");
	if (sfs_key_list(x->s, x->val[O_USER], key_line, &l, &e)) {
		json_decref(l.arr);
		sfs_buf_release(&l.text);
		return admin_fail(x, &e);
	}
	return listing_done(&l, "keys");
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
		 ", bad refcounts %" PRId64 ", bad tag rows %" PRId64
		 ", bad counters %" PRId64 ", bad tag names %" PRId64
		 ", bad name index %" PRId64 ", repaired %" PRId64,
		 r.blobs_checked, r.orphan_files, r.missing_files,
		 r.bad_refcounts, r.bad_tag_rows, r.bad_counters,
		 r.bad_tag_names, r.bad_name_index, r.repaired);
	rc = admin_out(x,
		       json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
				 " s:I}",
				 "blobsChecked", (json_int_t)r.blobs_checked,
				 "orphanFiles", (json_int_t)r.orphan_files,
				 "missingFiles", (json_int_t)r.missing_files,
				 "badRefcounts", (json_int_t)r.bad_refcounts,
				 "badTagRows", (json_int_t)r.bad_tag_rows,
				 "badCounters", (json_int_t)r.bad_counters,
				 "badTagNames", (json_int_t)r.bad_tag_names,
				 "badNameIndex", (json_int_t)r.bad_name_index,
				 "repaired", (json_int_t)r.repaired),
		       text);
	if (!x->set[O_REPAIR] &&
	    (r.orphan_files || r.missing_files || r.bad_refcounts ||
	     r.bad_tag_rows || r.bad_counters || r.bad_tag_names ||
	     r.bad_name_index))
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
			       "store is already there. With db.url in the\n"
			       "--config file, its metadata go to that "
			       "PostgreSQL database (schema db.schema),\n"
			       "recorded in DIR/db.url.",
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
		.name = "tenant list",
		.fn = cmd_tenant_list,
		.summary = "list the tenants",
		.description = "List every tenant with its users, its use and "
			       "its quota (0: no limit),\noldest first.",
		.example = "speechfsd tenant list --store " S " --json",
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
		.opts = { { O_TENANT, REQ,
			    "the tenant (an id, or the name of one tenant)" },
			  { O_NAME, REQ, "the user's name" },
			  { O_DOWNLOAD_BPS, 0,
			    "download and stream bandwidth in bytes per "
			    "second (default -1: the daemon's "
			    "http.download_bps; 0: unlimited)" } },
		.example = "speechfsd user create --store " S
			   " --tenant $T --name alice",
	},
	{
		.name = "user list",
		.fn = cmd_user_list,
		.summary = "list the users",
		.description =
			"List the users of a tenant, or of every tenant, "
			"by tenant and name,\nwith their active API "
			"keys.",
		.opts = { { O_TENANT, 0,
			    "only this tenant's (an id, or the name of one "
			    "tenant)" } },
		.example = "speechfsd user list --store " S " --tenant acme",
	},
	{
		.name = "user show",
		.fn = cmd_user_show,
		.summary = "show one user, by id or by name",
		.description = "Show one user: by id, or by name (ignoring "
			       "case) in a tenant. The id\nis what sharing a "
			       "file with the user takes.",
		.positional = "[USER_ID]",
		.opts = { { O_TENANT, 0,
			    "the user's tenant (an id, or the name of one "
			    "tenant), with --name" },
			  { O_NAME, 0, "the user's name, with --tenant" } },
		.example = "speechfsd user show --store " S
			   " --tenant acme --name bob",
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
		.name = "key list",
		.fn = cmd_key_list,
		.summary = "list a user's API keys",
		.description = "List a user's API keys, oldest first: id, "
			       "label, scopes, when made,\nlast used (to the "
			       "minute) and revoked. The keys themselves are\n"
			       "never stored, so never shown.",
		.opts = { { O_USER, REQ, "the user's id" } },
		.example = "speechfsd key list --store " S " --user $U",
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
