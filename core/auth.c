/*
 * Identity: scopes, UUIDs, tenants, users and API keys (stored as SHA-256
 * hashes), which end in a struct sfs_actor that the other core calls
 * take. Tokens (JWTs, signed URLs) are in token.c.
 */
#include <pthread.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "remote_i.h"
#include "speechfs/auth.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "store_i.h"
#include "util_i.h"

#define NAME_MAX_LEN 127
#define LABEL_MAX_LEN 127
#define KEY_PREFIX "sfs_"
#define KEY_PREFIX_LEN 4
#define KEY_RAW 32
#define KEY_LEN (KEY_PREFIX_LEN + 2 * KEY_RAW)
#define JWT_MAX 8192
#define JWT_LEEWAY_S 30
#define JWT_TTL_MAX ((int64_t)10 * 366 * 24 * 3600)
#define HMAC_LEN 32
#define SCOPE_TOKEN_MAX 64

static const struct {
	unsigned bit;
	const char *name;
	const char *short_name;
} scope_tab[] = {
	{ SFS_SCOPE_READ, "speech:files:read", "read" },
	{ SFS_SCOPE_WRITE, "speech:files:write", "write" },
	{ SFS_SCOPE_DELETE, "speech:files:delete", "delete" },
	{ SFS_SCOPE_SHARE, "speech:files:share", "share" },
};

/* The status a failed db_* call left in e (SFS_IO when e is NULL). */
static enum sfs_status db_status(struct sfs_err *e)
{
	return e && e->status ? e->status : SFS_IO;
}

static enum sfs_status unauth(struct sfs_err *e, const char *msg)
{
	sfs_debug("auth", "rejected credentials: %s", msg);
	return sfs_errf(e, SFS_UNAUTHENTICATED, SFS_R_NONE, "%s", msg);
}

/* ---- scopes ---------------------------------------------------------- */

unsigned sfs_scope_parse(const char *name)
{
	size_t i;

	if (!name)
		return 0;
	for (i = 0; i < ARRAY_SIZE(scope_tab); i++)
		if (!strcmp(name, scope_tab[i].name) ||
		    !strcmp(name, scope_tab[i].short_name))
			return scope_tab[i].bit;
	return 0;
}

const char *sfs_scope_name(unsigned one_scope)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(scope_tab); i++)
		if (scope_tab[i].bit == one_scope)
			return scope_tab[i].name;
	return NULL;
}

static int is_scope_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

/*
 * Call fn(arg, token) for each scope name of a comma- or space-separated
 * list; stops at the first non-zero return, which it returns.
 */
static int each_scope(const char *list, int (*fn)(void *, const char *),
		      void *arg)
{
	char tok[SCOPE_TOKEN_MAX + 1];
	const char *p = list;
	size_t n;
	int rc;

	while (*p) {
		while (is_scope_sep(*p))
			p++;
		if (!*p)
			break;
		for (n = 0; p[n] && !is_scope_sep(p[n]); n++)
			;
		/* too long for any scope: keep a marked prefix for messages */
		if (n > SCOPE_TOKEN_MAX) {
			memcpy(tok, p, SCOPE_TOKEN_MAX - 3);
			memcpy(tok + SCOPE_TOKEN_MAX - 3, "...", 4);
		} else {
			memcpy(tok, p, n);
			tok[n] = '\0';
		}
		rc = fn(arg, tok);
		if (rc)
			return rc;
		p += n;
	}
	return 0;
}

struct scope_scan {
	unsigned bits;
	struct sfs_err *e;
};

static int scan_strict(void *arg, const char *tok)
{
	struct scope_scan *sc = arg;
	unsigned bit;

	if (!strcmp(tok, "all")) {
		sc->bits |= SFS_SCOPE_ALL;
		return 0;
	}
	bit = sfs_scope_parse(tok);
	if (!bit) {
		sfs_err_field(sc->e, "scopes", "invalid", "unknown scope '%s'",
			      tok);
		return -1;
	}
	sc->bits |= bit;
	return 0;
}

/* Tokens carry scopes of other services too: unknown ones are ignored. */
static int scan_lenient(void *arg, const char *tok)
{
	struct scope_scan *sc = arg;

	sc->bits |= sfs_scope_parse(tok);
	return 0;
}

unsigned sfsi_scopes_lenient(const char *list)
{
	struct scope_scan sc = { 0, NULL };

	if (list)
		each_scope(list, scan_lenient, &sc);
	return sc.bits;
}

enum sfs_status sfs_scopes_parse(const char *list, unsigned *out,
				 struct sfs_err *e)
{
	struct scope_scan sc = { 0, e };

	*out = 0;
	if (!list)
		return SFS_OK;
	if (each_scope(list, scan_strict, &sc))
		return SFS_INVALID;
	*out = sc.bits;
	return SFS_OK;
}

/* ---- UUIDs ----------------------------------------------------------- */

static int is_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

int sfs_uuid_valid(const char *s)
{
	int i;

	if (!s)
		return 0;
	for (i = 0; i < SFS_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!is_hex((unsigned char)s[i])) {
			return 0;
		}
	}
	return s[SFS_UUID_LEN] == '\0';
}

/* The stored (lowercase) form of a UUID; -1 when it is not one. */
int sfsi_uuid_norm(const char *in, char out[SFS_ID_SIZE])
{
	int i;

	if (!sfs_uuid_valid(in))
		return -1;
	for (i = 0; i <= SFS_UUID_LEN; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'F') ? in[i] + 32 : in[i];
	return 0;
}

void sfs_uuid_new(char out[SFS_ID_SIZE])
{
	unsigned char b[16];
	char hex[33];

	if (sfsi_random(b, sizeof(b))) {
		/* identifiers that might repeat are a broken invariant */
		sfs_error("auth", "no randomness for a uuid");
		abort();
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	sfsi_hex(b, sizeof(b), hex);
	snprintf(out, SFS_ID_SIZE, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8,
		 hex + 12, hex + 16, hex + 20);
}

/* The 16 bytes of a valid UUID. */
static void uuid_bytes(const char *u, unsigned char out[16])
{
	int i, n = 0, hi = -1, c, v;

	for (i = 0; u[i] && n < 16; i++) {
		c = (unsigned char)u[i];
		if (c == '-')
			continue;
		v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
}

/*
 * A new file's id from its owner and the key its creator chose (POST
 * /files?idKey=): a name-based UUID (RFC 9562 version 8) of the first 16
 * bytes of SHA-256(namespace, owner, key), each as its 16 bytes.
 */
int sfs_uuid_derive(const char *owner, const char *key, char out[SFS_ID_SIZE])
{
	/* the namespace of speechfs file ids:
	 * 9f46cd8d-d7d5-4402-99a0-f79b494cceef */
	static const unsigned char ns[16] = { 0x9f, 0x46, 0xcd, 0x8d,
					      0xd7, 0xd5, 0x44, 0x02,
					      0x99, 0xa0, 0xf7, 0x9b,
					      0x49, 0x4c, 0xce, 0xef };
	unsigned char in[48], md[32];
	char hex[33];

	if (!sfs_uuid_valid(owner) || !sfs_uuid_valid(key))
		return -1;
	memcpy(in, ns, 16);
	uuid_bytes(owner, in + 16);
	uuid_bytes(key, in + 32);
	if (sfsi_sha256(in, sizeof(in), md))
		return -1;
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x80); /* version 8 */
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC 9562 variant */
	sfsi_hex(md, 16, hex);
	snprintf(out, SFS_ID_SIZE, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8,
		 hex + 12, hex + 16, hex + 20);
	return 0;
}

/* ---- validation ------------------------------------------------------ */

/* Well-formed UTF-8 without control characters (names end up in JSON). */
static int text_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned c = *p, need, cp, min;

		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c < 0x80) {
			p++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		for (p++; need; need--, p++) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (*p & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
			return 0;
	}
	return 1;
}

static enum sfs_status check_text(const char *v, const char *field,
				  int required, size_t max, struct sfs_err *e)
{
	if (!v || !*v) {
		if (!required)
			return SFS_OK;
		return sfs_err_field(e, field, "missing", "must not be empty");
	}
	if (strlen(v) > max)
		return sfs_err_field(e, field, "too_long", "at most %zu bytes",
				     max);
	if (!text_ok(v))
		return sfs_err_field(e, field, "invalid",
				     "must be UTF-8 text without control "
				     "characters");
	return SFS_OK;
}

/* ---- actors ---------------------------------------------------------- */

/*
 * The actor of a user by its (normalised) UUID, scopes left 0.
 * SFS_NOT_FOUND without a message when there is no such user, so each
 * caller can say what that means for it.
 */
enum sfs_status sfsi_auth_load_actor(struct db *d, const char *uuid,
				     struct sfs_actor *out, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;
	int rc;

	st = sfsi_db_prep(d,
			  "SELECT u.id, u.uuid, t.id, t.uuid, u.download_bps"
			  " FROM user u JOIN tenant t ON t.id = u.tenant_id"
			  " WHERE u.uuid = ?1",
			  e);
	if (!st)
		return db_status(e);
	sfsi_db_bind_text(st, 1, uuid);
	rc = sfsi_db_step(st, e);
	if (rc < 0) {
		ret = db_status(e);
		goto out;
	}
	if (rc == 0) {
		ret = SFS_NOT_FOUND;
		goto out;
	}
	memset(out, 0, sizeof(*out));
	out->user = sfsi_db_col_int(st, 0);
	sfs_strlcpy(out->user_id, sfsi_db_col_text(st, 1),
		    sizeof(out->user_id));
	out->tenant = sfsi_db_col_int(st, 2);
	sfs_strlcpy(out->tenant_id, sfsi_db_col_text(st, 3),
		    sizeof(out->tenant_id));
	out->download_bps = sfsi_db_col_int(st, 4);
out:
	sfsi_db_reset(st);
	return ret;
}

/* ---- tenants --------------------------------------------------------- */

static enum sfs_status check_quota(int64_t max_bytes, int64_t max_files,
				   struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;

	if (max_bytes < 0)
		ret = sfs_err_field(e, "max_bytes", "invalid",
				    "must be 0 (unlimited) or more");
	if (max_files < 0)
		ret = sfs_err_field(e, "max_files", "invalid",
				    "must be 0 (unlimited) or more");
	return ret;
}

enum sfs_status sfs_tenant_create(struct sfs_store *s, const char *name,
				  int64_t max_bytes, int64_t max_files,
				  char id_out[SFS_ID_SIZE], struct sfs_err *e)
{
	char id[SFS_ID_SIZE];
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret, qret;

	ret = check_text(name, "name", 1, NAME_MAX_LEN, e);
	qret = check_quota(max_bytes, max_files, e);
	if (ret || qret)
		return SFS_INVALID;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "INSERT INTO tenant(uuid, name, max_bytes, max_files,"
			  " created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
			  e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfs_uuid_new(id);
	sfsi_db_bind_text(st, 1, id);
	sfsi_db_bind_text(st, 2, name);
	sfsi_db_bind_int(st, 3, max_bytes);
	sfsi_db_bind_int(st, 4, max_files);
	sfsi_db_bind_int(st, 5, sfs_now_ms());
	ret = sfsi_db_run(st, e);
	if (ret)
		goto out;
	sfs_info("auth", "created tenant '%s' (%s)", name, id);
	memcpy(id_out, id, SFS_ID_SIZE);
out:
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_tenant_set_quota(struct sfs_store *s, const char *id,
				     int64_t max_bytes, int64_t max_files,
				     struct sfs_err *e)
{
	char uuid[SFS_ID_SIZE];
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;

	if (check_quota(max_bytes, max_files, e))
		return SFS_INVALID;
	if (sfsi_uuid_norm(id, uuid))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_TENANT_NOT_FOUND,
				"no tenant '%s'", id ? id : "");
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "UPDATE tenant SET max_bytes = ?1, max_files = ?2"
			  " WHERE uuid = ?3",
			  e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfsi_db_bind_int(st, 1, max_bytes);
	sfsi_db_bind_int(st, 2, max_files);
	sfsi_db_bind_text(st, 3, uuid);
	ret = sfsi_db_run(st, e);
	if (!ret && sfsi_db_changes(d) == 0)
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_TENANT_NOT_FOUND,
			       "no tenant '%s'", uuid);
out:
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_tenant_get(struct sfs_store *s, const char *id,
			       struct sfs_tenant_info *out, struct sfs_err *e)
{
	char uuid[SFS_ID_SIZE];
	struct db *d = NULL;
	struct db_stmt *st = NULL;
	enum sfs_status ret;
	int rc;

	memset(out, 0, sizeof(*out));
	if (sfsi_uuid_norm(id, uuid))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_TENANT_NOT_FOUND,
				"no tenant '%s'", id ? id : "");
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "SELECT uuid, name, max_bytes, max_files, used_bytes,"
			  " used_files, (SELECT count(*) FROM user u"
			  " WHERE u.tenant_id = tenant.id)"
			  " FROM tenant WHERE uuid = ?1",
			  e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfsi_db_bind_text(st, 1, uuid);
	rc = sfsi_db_step(st, e);
	if (rc < 0) {
		ret = db_status(e);
		goto out;
	}
	if (rc == 0) {
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_TENANT_NOT_FOUND,
			       "no tenant '%s'", uuid);
		goto out;
	}
	sfs_strlcpy(out->id, sfsi_db_col_text(st, 0), sizeof(out->id));
	sfs_strlcpy(out->name, sfsi_db_col_text(st, 1), sizeof(out->name));
	out->max_bytes = sfsi_db_col_int(st, 2);
	out->max_files = sfsi_db_col_int(st, 3);
	out->used_bytes = sfsi_db_col_int(st, 4);
	out->used_files = sfsi_db_col_int(st, 5);
	out->users = sfsi_db_col_int(st, 6);
out:
	sfsi_db_reset(st);
	sfsi_db_put(d);
	return ret;
}

/* ---- users ----------------------------------------------------------- */

static enum sfs_status check_rate(int64_t bps, struct sfs_err *e)
{
	if (bps < -1)
		return sfs_err_field(e, "download_bps", "invalid",
				     "must be -1 (default), 0 (unlimited) "
				     "or a rate in bytes per second");
	return SFS_OK;
}

static enum sfs_status name_taken(const char *name, struct sfs_err *e)
{
	return sfs_errf(e, SFS_CONFLICT, SFS_R_USER_EXISTS,
			"the tenant has a user named '%s' already (names are "
			"unique in a tenant, ignoring case)",
			name);
}

enum sfs_status sfsi_tenant_exists(struct db *d, const char *uuid,
				   struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	st = sfsi_db_prep(d, "SELECT 1 FROM tenant WHERE uuid = ?1", e);
	if (!st)
		return db_status(e);
	sfsi_db_bind_text(st, 1, uuid);
	rc = sfsi_db_step(st, e);
	sfsi_db_reset(st);
	if (rc < 0)
		return db_status(e);
	if (rc == 0)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_TENANT_NOT_FOUND,
				"no tenant '%s'", uuid);
	return SFS_OK;
}

enum sfs_status sfs_user_create(struct sfs_store *s, const char *tenant_id,
				const char *name, int64_t download_bps,
				char id_out[SFS_ID_SIZE], struct sfs_err *e)
{
	char id[SFS_ID_SIZE], tenant[SFS_ID_SIZE];
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret, rret;

	ret = check_text(name, "name", 1, NAME_MAX_LEN, e);
	rret = check_rate(download_bps, e);
	if (ret || rret)
		return SFS_INVALID;
	if (sfsi_uuid_norm(tenant_id, tenant))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_TENANT_NOT_FOUND,
				"no tenant '%s'", tenant_id ? tenant_id : "");
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	/*
	 * one statement: the tenant cannot vanish, nor the name be taken,
	 * between the check and the insert (the unique index stands behind)
	 */
	st = sfsi_db_prep(
		d,
		"INSERT INTO user(uuid, tenant_id, name, download_bps,"
		" created_at) SELECT ?1, t.id, ?2, ?3, ?4 FROM tenant t"
		" WHERE t.uuid = ?5 AND NOT EXISTS (SELECT 1 FROM user o"
		" WHERE o.tenant_id = t.id AND o.name = ?2 COLLATE NOCASE)",
		e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfs_uuid_new(id);
	sfsi_db_bind_text(st, 1, id);
	sfsi_db_bind_text(st, 2, name);
	sfsi_db_bind_int(st, 3, download_bps);
	sfsi_db_bind_int(st, 4, sfs_now_ms());
	sfsi_db_bind_text(st, 5, tenant);
	ret = sfsi_db_run(st, e);
	if (ret == SFS_CONFLICT) { /* another insert won the race */
		if (e)
			sfs_err_init(e);
		ret = name_taken(name, e);
	}
	if (ret)
		goto out;
	if (sfsi_db_changes(d) == 0) {
		ret = sfsi_tenant_exists(d, tenant, e);
		if (!ret)
			ret = name_taken(name, e);
		goto out;
	}
	sfs_info("auth", "created user '%s' (%s) in tenant %s", name, id,
		 tenant);
	memcpy(id_out, id, SFS_ID_SIZE);
out:
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_user_set_rate(struct sfs_store *s, const char *user_id,
				  int64_t download_bps, struct sfs_err *e)
{
	char uuid[SFS_ID_SIZE];
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;

	if (check_rate(download_bps, e))
		return SFS_INVALID;
	if (sfsi_uuid_norm(user_id, uuid))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
				"no user '%s'", user_id ? user_id : "");
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(
		d, "UPDATE user SET download_bps = ?1 WHERE uuid = ?2", e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfsi_db_bind_int(st, 1, download_bps);
	sfsi_db_bind_text(st, 2, uuid);
	sfsi_db_notify_auth(d); /* other processes' caches, at the commit */
	ret = sfsi_db_run(st, e);
	if (!ret && sfsi_db_changes(d) == 0)
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
			       "no user '%s'", uuid);
	else if (!ret)
		sfsi_auth_gen_bump(s); /* cached actors carry the rate */
out:
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_auth_user(struct sfs_store *s, const char *user_id,
			      unsigned scopes, struct sfs_actor *out,
			      struct sfs_err *e)
{
	if (s->ops)
		return s->ops->auth_user(s, out, e);
	char uuid[SFS_ID_SIZE];
	struct db *d = NULL;
	enum sfs_status ret;

	memset(out, 0, sizeof(*out));
	if (sfsi_uuid_norm(user_id, uuid))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
				"no user '%s'", user_id ? user_id : "");
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	ret = sfsi_auth_load_actor(d, uuid, out, e);
	if (ret == SFS_NOT_FOUND)
		sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND, "no user '%s'",
			 uuid);
	else if (!ret)
		out->scopes = scopes & SFS_SCOPE_ALL;
out:
	sfsi_db_put(d);
	return ret;
}

/* ---- API keys -------------------------------------------------------- */

/*
 * SHA-256 fetched from OpenSSL's provider once: EVP_sha256() looks the
 * implementation up again on every digest (EVP_MD_fetch: 1-2 % of the
 * CPU of a small create on both sides, which hash keys and ids per
 * request). The fetched one lives for the process.
 */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int sfsi_sha256(const void *data, size_t n, unsigned char out[32])
{
	unsigned int len = 0;

	pthread_once(&sha256_once, sha256_fetch);
	if (EVP_Digest(data, n, out, &len, sha256_md ? sha256_md : EVP_sha256(),
		       NULL) != 1 ||
	    len != 32)
		return -1;
	return 0;
}

enum sfs_status sfs_key_create(struct sfs_store *s, const char *user_id,
			       unsigned scopes, const char *label,
			       char key_out[SFS_API_KEY_SIZE],
			       char key_id_out[SFS_ID_SIZE], struct sfs_err *e)
{
	unsigned char raw[KEY_RAW], hash[32];
	char key[SFS_API_KEY_SIZE], id[SFS_ID_SIZE], uuid[SFS_ID_SIZE];
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret = SFS_OK;

	if (!scopes || (scopes & ~(unsigned)SFS_SCOPE_ALL))
		ret = sfs_err_field(e, "scopes", "invalid",
				    "a key needs at least one known scope");
	if (check_text(label, "label", 0, LABEL_MAX_LEN, e))
		ret = SFS_INVALID;
	if (ret)
		return ret;
	if (sfsi_uuid_norm(user_id, uuid))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
				"no user '%s'", user_id ? user_id : "");
	if (sfsi_random(raw, sizeof(raw))) {
		sfs_error("auth", "no randomness for an api key");
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot make a key");
	}
	memcpy(key, KEY_PREFIX, KEY_PREFIX_LEN);
	sfsi_hex(raw, sizeof(raw), key + KEY_PREFIX_LEN);
	if (sfsi_sha256(key, KEY_LEN, hash)) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot hash the key");
		goto out;
	}
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "INSERT INTO api_key(uuid, user_id, hash, scopes,"
			  " label, created_at) SELECT ?1, id, ?2, ?3, ?4, ?5"
			  " FROM user WHERE uuid = ?6",
			  e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfs_uuid_new(id);
	sfsi_db_bind_text(st, 1, id);
	sfsi_db_bind_blob(st, 2, hash, sizeof(hash));
	sfsi_db_bind_int(st, 3, scopes);
	sfsi_db_bind_text(st, 4, label && *label ? label : NULL);
	sfsi_db_bind_int(st, 5, sfs_now_ms());
	sfsi_db_bind_text(st, 6, uuid);
	ret = sfsi_db_run(st, e);
	if (ret)
		goto out;
	if (sfsi_db_changes(d) == 0) {
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_USER_NOT_FOUND,
			       "no user '%s'", uuid);
		goto out;
	}
	sfs_info("auth", "created api key %s for user %s", id, uuid);
	memcpy(key_out, key, KEY_LEN + 1);
	memcpy(key_id_out, id, SFS_ID_SIZE);
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(key, sizeof(key));
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_key_revoke(struct sfs_store *s, const char *key_id,
			       struct sfs_err *e)
{
	char uuid[SFS_ID_SIZE];
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int rc;

	if (sfsi_uuid_norm(key_id, uuid))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_KEY_NOT_FOUND,
				"no api key '%s'", key_id ? key_id : "");
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "UPDATE api_key SET revoked_at = ?1"
			  " WHERE uuid = ?2 AND revoked_at IS NULL",
			  e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfsi_db_bind_int(st, 1, sfs_now_ms());
	sfsi_db_bind_text(st, 2, uuid);
	sfsi_db_notify_auth(d); /* other processes' caches, at the commit */
	ret = sfsi_db_run(st, e);
	if (ret)
		goto out;
	if (sfsi_db_changes(d) == 1) {
		sfs_info("auth", "revoked api key %s", uuid);
		sfsi_auth_gen_bump(s);
		goto out;
	}
	/* nothing changed: unknown, or revoked before (keys are never
	 * deleted, so the answer cannot change in between) */
	st = sfsi_db_prep(d, "SELECT 1 FROM api_key WHERE uuid = ?1", e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfsi_db_bind_text(st, 1, uuid);
	rc = sfsi_db_step(st, e);
	sfsi_db_reset(st);
	if (rc < 0)
		ret = db_status(e);
	else if (rc == 0)
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_KEY_NOT_FOUND,
			       "no api key '%s'", uuid);
	else
		ret = sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
			       "api key '%s' is already revoked", uuid);
out:
	sfsi_db_put(d);
	return ret;
}

static int key_format_ok(const char *key)
{
	size_t i;

	if (strncmp(key, KEY_PREFIX, KEY_PREFIX_LEN))
		return 0;
	for (i = KEY_PREFIX_LEN; i < KEY_LEN; i++)
		if (!((key[i] >= '0' && key[i] <= '9') ||
		      (key[i] >= 'a' && key[i] <= 'f')))
			return 0;
	return key[KEY_LEN] == '\0';
}

/*
 * Record a key's use, to the minute: at most one write a minute per key,
 * outside any transaction, and never a reason to refuse the request.
 */
static void note_use(struct db *d, int64_t key, int64_t last_ms)
{
	int64_t now = sfs_now_ms();
	struct db_stmt *st;

	if (now - last_ms < 60 * 1000)
		return;
	st = sfsi_db_prep(d,
			  "UPDATE api_key SET last_used_at = ?1 WHERE id = ?2"
			  " AND coalesce(last_used_at, 0) < ?1 - 60000",
			  NULL);
	if (!st)
		return;
	sfsi_db_bind_int(st, 1, now);
	sfsi_db_bind_int(st, 2, key);
	if (sfsi_db_run(st, NULL))
		sfs_debug("auth", "could not note the use of a key");
}

enum sfs_status sfs_auth_api_key(struct sfs_store *s, const char *key,
				 struct sfs_actor *out, struct sfs_err *e)
{
	unsigned char hash[32];
	struct db *d = NULL;
	struct db_stmt *st = NULL;
	enum sfs_status ret;
	int64_t key_row, last;
	uint64_t gen;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!key || !*key)
		return unauth(e, "missing API key");
	/* the format is public: checking it first reveals nothing */
	if (!key_format_ok(key))
		return unauth(e, "invalid API key");
	gen = sfsi_auth_gen(s); /* before the lookup: a change after it wins */
	if (sfsi_keycache_get(s, key, KEY_LEN, out))
		return SFS_OK;
	if (sfsi_sha256(key, KEY_LEN, hash))
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot hash the key");
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	/* by hash through the UNIQUE index: the key never meets a compare */
	st = sfsi_db_prep(d,
			  "SELECT u.id, u.uuid, t.id, t.uuid, u.download_bps,"
			  " k.scopes, k.revoked_at, k.id,"
			  " coalesce(k.last_used_at, 0) FROM api_key k"
			  " JOIN user u ON u.id = k.user_id"
			  " JOIN tenant t ON t.id = u.tenant_id"
			  " WHERE k.hash = ?1",
			  e);
	if (!st) {
		ret = db_status(e);
		goto out;
	}
	sfsi_db_bind_blob(st, 1, hash, sizeof(hash));
	rc = sfsi_db_step(st, e);
	if (rc < 0) {
		ret = db_status(e);
		goto out;
	}
	if (rc == 0) {
		ret = unauth(e, "invalid API key");
		goto out;
	}
	if (!sfsi_db_col_null(st, 6)) {
		ret = unauth(e, "API key revoked");
		goto out;
	}
	out->user = sfsi_db_col_int(st, 0);
	sfs_strlcpy(out->user_id, sfsi_db_col_text(st, 1),
		    sizeof(out->user_id));
	out->tenant = sfsi_db_col_int(st, 2);
	sfs_strlcpy(out->tenant_id, sfsi_db_col_text(st, 3),
		    sizeof(out->tenant_id));
	out->download_bps = sfsi_db_col_int(st, 4);
	out->scopes = (unsigned)sfsi_db_col_int(st, 5) & SFS_SCOPE_ALL;
	key_row = sfsi_db_col_int(st, 7);
	last = sfsi_db_col_int(st, 8);
	sfsi_db_reset(st);
	st = NULL;
	/* a cached key comes back here within a minute: its use is noted */
	note_use(d, key_row, last);
	sfsi_keycache_put(s, key, KEY_LEN, gen, out);
out:
	sfsi_db_reset(st);
	sfsi_db_put(d);
	return ret;
}

/* FORBIDDEN unless the credentials carry every bit of `scope`. */
enum sfs_status sfsi_need_scope(const struct sfs_actor *a, unsigned scope,
				struct sfs_err *e)
{
	if ((a->scopes & scope) == scope)
		return SFS_OK;
	return sfs_errf(e, SFS_FORBIDDEN, SFS_R_INSUFFICIENT_SCOPE,
			"the credentials lack the scope '%s'",
			sfs_scope_name(scope));
}
