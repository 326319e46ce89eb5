/*
 * Unit tests of core/auth.c: scopes, UUIDs, tenants, users, API keys, JWTs
 * (minted by the core and hand-made with OpenSSL to reach every rejection),
 * the HMAC of signed URLs and the grants they carry (core/token.c). Each test
 * opens a fresh temporary store.
 *
 * About internals on purpose: that an API key is stored only as the
 * SHA-256 of its string is a promise about the database, so that test
 * reads the key's row; a tenant's usage is set in SQL to show it is read
 * from the row's counters; and the HMAC of signed URLs is recomputed with
 * OpenSSL from the store's secret (store_i.h, auth_i.h), since what makes
 * it right is being exactly HMAC-SHA256 of the canonical request.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "auth_i.h"
#include "db_i.h"
#include "speechfs/auth.h"
#include "speechfs/buf.h"
#include "speechfs/file.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/token.h"
#include "speechfs/util.h"
#include "store_i.h"
#include "util_i.h"
#include "fixture.h"
#include "testhelp.h"

/* the shared fixture: a store, one tenant, one user (fixture.h) */
#define fx tfx_one

static int fx_open(struct fx *f)
{
	return tfx_one_open(f, NULL);
}

static void fx_close(struct fx *f)
{
	tfx_one_close(f);
}

/* ---- hand-made tokens ------------------------------------------------ */

static void b64url(const void *data, size_t n, char *out)
{
	static const char c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				"abcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	size_t i, o = 0;

	for (i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		size_t k = n - i >= 3 ? 3 : n - i;

		if (k > 1)
			v |= (unsigned)p[i + 1] << 8;
		if (k > 2)
			v |= p[i + 2];
		out[o++] = c[v >> 18 & 63];
		out[o++] = c[v >> 12 & 63];
		if (k > 1)
			out[o++] = c[v >> 6 & 63];
		if (k > 2)
			out[o++] = c[v & 63];
	}
	out[o] = '\0';
}

/*
 * header.payload.signature with an HMAC of `md` under `key` (NULL key:
 * an empty signature). out must hold 4096 bytes.
 */
static void make_token(const char *header, const char *payload,
		       const EVP_MD *md, const unsigned char *key,
		       size_t keylen, char *out)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t n;

	b64url(header, strlen(header), out);
	n = strlen(out);
	out[n++] = '.';
	b64url(payload, strlen(payload), out + n);
	n = strlen(out);
	if (key)
		HMAC(md, key, (int)keylen, (unsigned char *)out, n, mac,
		     &maclen);
	out[n++] = '.';
	b64url(mac, maclen, out + n);
}

static const char hs256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* A token for the fixture's user with extra claims, signed as the store. */
/* A token of the store: extra claims as given, nothing added. */
static void store_token_raw(struct fx *f, const char *header, const char *extra,
			    char *out)
{
	char payload[1024];

	snprintf(payload, sizeof(payload), "{\"sub\":\"%s\"%s%s}", f->user,
		 *extra ? "," : "", extra);
	make_token(header, payload, EVP_sha256(), f->s->secret,
		   sizeof(f->s->secret), out);
}

static long now_s(void);

/* The same with an exp ten minutes ahead unless extra has one. */
static void store_token(struct fx *f, const char *header, const char *extra,
			char *out)
{
	char more[1024];

	if (strstr(extra, "\"exp\"")) {
		store_token_raw(f, header, extra, out);
		return;
	}
	snprintf(more, sizeof(more), "\"exp\":%ld%s%s", now_s() + 600,
		 *extra ? "," : "", extra);
	store_token_raw(f, header, more, out);
}

static long now_s(void)
{
	return (long)(sfs_now_ms() / 1000);
}

/* ---- scopes and UUIDs ------------------------------------------------ */

static void test_scope_parse(void)
{
	struct sfs_err e;
	unsigned sc;

	CHECK(sfs_scope_parse("speech:files:read") == SFS_SCOPE_READ);
	CHECK(sfs_scope_parse("speech:files:write") == SFS_SCOPE_WRITE);
	CHECK(sfs_scope_parse("speech:files:delete") == SFS_SCOPE_DELETE);
	CHECK(sfs_scope_parse("speech:files:share") == SFS_SCOPE_SHARE);
	CHECK(sfs_scope_parse("share") == SFS_SCOPE_SHARE);
	CHECK(sfs_scope_parse("speech:files:admin") == 0);
	CHECK(sfs_scope_parse("Speech:files:read") == 0);
	CHECK(sfs_scope_parse("") == 0);
	CHECK(sfs_scope_parse(NULL) == 0);

	CHECK(!strcmp(sfs_scope_name(SFS_SCOPE_READ), "speech:files:read"));
	CHECK(!strcmp(sfs_scope_name(SFS_SCOPE_SHARE), "speech:files:share"));
	CHECK(sfs_scope_name(0) == NULL);
	CHECK(sfs_scope_name(SFS_SCOPE_READ | SFS_SCOPE_WRITE) == NULL);

	sfs_err_init(&e);
	CHECK_ST(sfs_scopes_parse("read,write", &sc, &e), SFS_OK);
	CHECK(sc == (SFS_SCOPE_READ | SFS_SCOPE_WRITE));
	CHECK_ST(sfs_scopes_parse("speech:files:read speech:files:write", &sc,
				  &e),
		 SFS_OK);
	CHECK(sc == (SFS_SCOPE_READ | SFS_SCOPE_WRITE));
	CHECK_ST(sfs_scopes_parse(" delete ,, share\t", &sc, &e), SFS_OK);
	CHECK(sc == (SFS_SCOPE_DELETE | SFS_SCOPE_SHARE));
	CHECK_ST(sfs_scopes_parse("all", &sc, &e), SFS_OK);
	CHECK(sc == SFS_SCOPE_ALL);
	CHECK_ST(sfs_scopes_parse("", &sc, &e), SFS_OK);
	CHECK(sc == 0);

	sc = 99;
	CHECK_ST(sfs_scopes_parse("read,bogus", &sc, &e), SFS_INVALID);
	CHECK(sc == 0);
	CHECK(e.status == SFS_INVALID && tfx_has_field(&e, "scopes", NULL));
	CHECK(strstr(e.message, "bogus") != NULL);
	sfs_err_init(&e);
	CHECK_ST(sfs_scopes_parse("read;write", &sc, &e), SFS_INVALID);
	CHECK_ST(sfs_scopes_parse("x", &sc, NULL), SFS_INVALID);
}

static void test_uuid(void)
{
	char a[SFS_ID_SIZE], b[SFS_ID_SIZE];
	int i, n;

	CHECK(sfs_uuid_valid("123e4567-e89b-42d3-a456-426614174000"));
	CHECK(sfs_uuid_valid("123E4567-E89B-42D3-A456-426614174000"));
	CHECK(!sfs_uuid_valid("123e4567-e89b-42d3-a456-42661417400"));
	CHECK(!sfs_uuid_valid("123e4567-e89b-42d3-a456-4266141740000"));
	CHECK(!sfs_uuid_valid("123e4567e89b-42d3-a456-4266141740000"));
	CHECK(!sfs_uuid_valid("123e4567-e89b-42d3-a456_426614174000"));
	CHECK(!sfs_uuid_valid("g23e4567-e89b-42d3-a456-426614174000"));
	CHECK(!sfs_uuid_valid(""));
	CHECK(!sfs_uuid_valid(NULL));

	/* many, so that random bits cannot pass for the fixed ones */
	sfs_uuid_new(b);
	for (n = 0; n < 32; n++) {
		sfs_uuid_new(a);
		CHECK(sfs_uuid_valid(a));
		CHECK(strcmp(a, b) != 0);
		CHECK(a[14] == '4');
		CHECK(strchr("89ab", a[19]) != NULL);
		for (i = 0; a[i]; i++)
			CHECK(!isupper((unsigned char)a[i]));
	}
}

/*
 * sfsi_random: the kernel's bytes (getrandom) up to 256 at a time,
 * OpenSSL's beyond: every byte asked for is drawn (none left as it was,
 * none written past the end), and two draws differ.
 */
static void test_random(void)
{
	static const size_t sizes[] = { 1, 16, 255, 256, 257, 300 };
	unsigned char a[320], b[320];
	size_t i, k, n, diff, zero;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		n = sizes[k];
		memset(a, 0, sizeof(a));
		memset(b, 0, sizeof(b));
		CHECK(sfsi_random(a, n) == 0);
		CHECK(sfsi_random(b, n) == 0);
		for (i = n; i < sizeof(a); i++)
			CHECK(a[i] == 0 && b[i] == 0);
		for (i = 0, diff = 0, zero = 0; i < n; i++) {
			diff += a[i] != b[i];
			zero += a[i] == 0;
		}
		/* a byte repeats or stays 0 with p = 1/256 */
		if (n >= 16) {
			CHECK(diff > n / 2);
			CHECK(zero < n / 2);
		}
	}
}

/* ---- tenants and users ----------------------------------------------- */

static void test_tenant(void)
{
	struct sfs_tenant_info ti;
	char id[SFS_ID_SIZE], upper[SFS_ID_SIZE], name[200];
	struct sfs_err e;
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_tenant_create(f.s, "globex", 1000, 10, id, &e), SFS_OK);
	CHECK_ST(sfs_tenant_get(f.s, id, &ti, &e), SFS_OK);
	CHECK(!strcmp(ti.id, id) && !strcmp(ti.name, "globex"));
	CHECK(ti.max_bytes == 1000 && ti.max_files == 10);
	CHECK(ti.used_bytes == 0 && ti.used_files == 0);

	/* the ids are case-insensitive on the way in */
	for (i = 0; id[i]; i++)
		upper[i] = (char)toupper((unsigned char)id[i]);
	upper[i] = '\0';
	CHECK_ST(sfs_tenant_get(f.s, upper, &ti, &e), SFS_OK);
	CHECK(!strcmp(ti.id, id));

	CHECK_ST(sfs_tenant_set_quota(f.s, id, 0, 5, &e), SFS_OK);
	CHECK_ST(sfs_tenant_get(f.s, id, &ti, &e), SFS_OK);
	CHECK(ti.max_bytes == 0 && ti.max_files == 5);

	/* usage comes from the row's counters */
	CHECK(tfx_sql(f.s,
		      "UPDATE tenant SET used_bytes = 77, used_files = 3"
		      " WHERE uuid = '%s'",
		      id) == 0);
	CHECK_ST(sfs_tenant_get(f.s, id, &ti, &e), SFS_OK);
	CHECK(ti.used_bytes == 77 && ti.used_files == 3);

	/* names: 1..127 bytes of text */
	memset(name, 'n', 127);
	name[127] = '\0';
	CHECK_ST(sfs_tenant_create(f.s, name, 0, 0, id, &e), SFS_OK);
	name[127] = 'n';
	name[128] = '\0';
	sfs_err_init(&e);
	CHECK_ST(sfs_tenant_create(f.s, name, 0, 0, id, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "name", NULL));
	sfs_err_init(&e);
	CHECK_ST(sfs_tenant_create(f.s, "", 0, 0, id, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "name", NULL));
	CHECK_ST(sfs_tenant_create(f.s, NULL, 0, 0, id, NULL), SFS_INVALID);
	CHECK_ST(sfs_tenant_create(f.s, "a\nb", 0, 0, id, NULL), SFS_INVALID);
	CHECK_ST(sfs_tenant_create(f.s, "bad \xff utf8", 0, 0, id, NULL),
		 SFS_INVALID);
	CHECK_ST(sfs_tenant_create(f.s, "Zürich", 0, 0, id, NULL), SFS_OK);

	/* quotas */
	sfs_err_init(&e);
	CHECK_ST(sfs_tenant_create(f.s, "neg", -1, -2, id, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "max_bytes", NULL) &&
	      tfx_has_field(&e, "max_files", NULL));
	sfs_err_init(&e);
	CHECK_ST(sfs_tenant_set_quota(f.s, f.tenant, 0, -1, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "max_files", NULL));

	/* unknown and malformed ids */
	sfs_err_init(&e);
	CHECK_ST(sfs_tenant_get(f.s, "123e4567-e89b-42d3-a456-426614174000",
				&ti, &e),
		 SFS_NOT_FOUND);
	CHECK(e.status == SFS_NOT_FOUND && e.message[0]);
	CHECK_ST(sfs_tenant_get(f.s, "nope", &ti, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_tenant_set_quota(f.s,
				      "123e4567-e89b-42d3-a456-426614174000", 1,
				      1, NULL),
		 SFS_NOT_FOUND);
	fx_close(&f);
}

static void test_user(void)
{
	struct sfs_actor a, b;
	char id[SFS_ID_SIZE], t2[SFS_ID_SIZE];
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_user(f.s, f.user, SFS_SCOPE_READ | 0x30, &a, &e),
		 SFS_OK);
	CHECK(!strcmp(a.user_id, f.user) && !strcmp(a.tenant_id, f.tenant));
	CHECK(a.user > 0 && a.tenant > 0);
	CHECK(a.scopes == SFS_SCOPE_READ);
	CHECK(a.download_bps == -1);

	CHECK_ST(sfs_user_set_rate(f.s, f.user, 0, &e), SFS_OK);
	CHECK_ST(sfs_auth_user(f.s, f.user, SFS_SCOPE_ALL, &a, &e), SFS_OK);
	CHECK(a.download_bps == 0 && a.scopes == SFS_SCOPE_ALL);
	CHECK_ST(sfs_user_set_rate(f.s, f.user, 65536, &e), SFS_OK);
	CHECK_ST(sfs_auth_user(f.s, f.user, 0, &a, &e), SFS_OK);
	CHECK(a.download_bps == 65536 && a.scopes == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_user_set_rate(f.s, f.user, -2, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "download_bps", NULL));
	CHECK_ST(sfs_user_set_rate(f.s, "123e4567-e89b-42d3-a456-426614174000",
				   0, NULL),
		 SFS_NOT_FOUND);

	/* a second user in another tenant is a different actor */
	CHECK_ST(sfs_tenant_create(f.s, "other", 0, 0, t2, &e), SFS_OK);
	CHECK_ST(sfs_user_create(f.s, t2, "bob", 1000, id, &e), SFS_OK);
	CHECK_ST(sfs_auth_user(f.s, id, 0, &b, &e), SFS_OK);
	CHECK(b.tenant != a.tenant && b.user != a.user);
	CHECK(!strcmp(b.tenant_id, t2) && b.download_bps == 1000);

	/* failures */
	sfs_err_init(&e);
	CHECK_ST(sfs_user_create(f.s, "123e4567-e89b-42d3-a456-426614174000",
				 "x", -1, id, &e),
		 SFS_NOT_FOUND);
	CHECK(strstr(e.message, "tenant") != NULL);
	CHECK_ST(sfs_user_create(f.s, "garbage", "x", -1, id, NULL),
		 SFS_NOT_FOUND);
	sfs_err_init(&e);
	CHECK_ST(sfs_user_create(f.s, f.tenant, "", -1, id, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "name", NULL));
	sfs_err_init(&e);
	CHECK_ST(sfs_user_create(f.s, f.tenant, "x", -5, id, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "download_bps", NULL));
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_user(f.s, "123e4567-e89b-42d3-a456-426614174000", 0,
			       &a, &e),
		 SFS_NOT_FOUND);
	CHECK(e.message[0] != '\0');
	CHECK_ST(sfs_auth_user(f.s, "", 0, &a, NULL), SFS_NOT_FOUND);
	fx_close(&f);
}

/* ---- API keys -------------------------------------------------------- */

static void test_key_roundtrip(void)
{
	char key[SFS_API_KEY_SIZE], kid[SFS_ID_SIZE];
	char key2[SFS_API_KEY_SIZE], kid2[SFS_ID_SIZE];
	unsigned char want[32];
	const unsigned char *hash;
	unsigned int hlen = 0;
	struct sfs_actor a;
	struct sfs_err e;
	struct db *d = NULL;
	struct db_stmt *st;
	size_t n = 0;
	struct fx f;
	int i, rows = 0;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_key_create(f.s, f.user, SFS_SCOPE_READ | SFS_SCOPE_WRITE,
				  "laptop", key, kid, &e),
		   SFS_OK);
	CHECK(strlen(key) == 68 && !strncmp(key, "sfs_", 4));
	for (i = 4; key[i]; i++)
		CHECK(isxdigit((unsigned char)key[i]) &&
		      !isupper((unsigned char)key[i]));
	CHECK(sfs_uuid_valid(kid));

	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_OK);
	CHECK(!strcmp(a.user_id, f.user) && !strcmp(a.tenant_id, f.tenant));
	CHECK(a.scopes == (SFS_SCOPE_READ | SFS_SCOPE_WRITE));
	CHECK(a.user > 0 && a.download_bps == -1);

	/* only the SHA-256 of the key string is stored */
	EVP_Digest(key, strlen(key), want, &hlen, EVP_sha256(), NULL);
	REQUIRE_ST(sfsi_db_get(f.s, &d, &e), SFS_OK);
	st = sfsi_db_prep(d,
			  "SELECT hash, label, scopes FROM api_key"
			  " WHERE uuid = ?1",
			  &e);
	if (st) {
		sfsi_db_bind_text(st, 1, kid);
		while (sfsi_db_step(st, &e) == 1) {
			rows++;
			hash = sfsi_db_col_blob(st, 0, &n);
			CHECK(n == 32 && !memcmp(hash, want, 32));
			CHECK(!strcmp(sfsi_db_col_text(st, 1), "laptop"));
			CHECK(sfsi_db_col_int(st, 2) == 3);
		}
		sfsi_db_reset(st);
	}
	sfsi_db_put(d);
	CHECK(rows == 1);

	/* a second key is different, and shown with its own id */
	CHECK_ST(sfs_key_create(f.s, f.user, SFS_SCOPE_ALL, NULL, key2, kid2,
				&e),
		 SFS_OK);
	CHECK(strcmp(key, key2) != 0 && strcmp(kid, kid2) != 0);
	CHECK_ST(sfs_auth_api_key(f.s, key2, &a, &e), SFS_OK);
	CHECK(a.scopes == SFS_SCOPE_ALL);
	fx_close(&f);
}

static void test_key_rejects(void)
{
	char key[SFS_API_KEY_SIZE], kid[SFS_ID_SIZE], bad[SFS_API_KEY_SIZE];
	char long_label[200];
	struct sfs_actor a;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(
		sfs_key_create(f.s, f.user, SFS_SCOPE_READ, NULL, key, kid, &e),
		SFS_OK);

	/* one changed character */
	memcpy(bad, key, sizeof(bad));
	bad[20] = bad[20] == 'a' ? 'b' : 'a';
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_api_key(f.s, bad, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(!strcmp(sfs_err_type(&e), "unauthenticated") && e.message[0]);
	CHECK(a.user == 0 && a.scopes == 0);
	/* shapes that are not keys at all */
	CHECK_ST(sfs_auth_api_key(f.s, "", &a, NULL), SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_auth_api_key(f.s, NULL, &a, NULL), SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_auth_api_key(f.s, "sfs_", &a, NULL), SFS_UNAUTHENTICATED);
	memcpy(bad, key, sizeof(bad));
	bad[67] = '\0';
	CHECK_ST(sfs_auth_api_key(f.s, bad, &a, NULL), SFS_UNAUTHENTICATED);
	memcpy(bad, key, sizeof(bad));
	bad[10] = (char)toupper((unsigned char)bad[10]) == bad[10]
			  ? 'G'
			  : (char)toupper((unsigned char)bad[10]);
	CHECK_ST(sfs_auth_api_key(f.s, bad, &a, NULL), SFS_UNAUTHENTICATED);

	/* revoke: then the key is refused, and a second revoke conflicts */
	CHECK_ST(sfs_key_revoke(f.s, kid, &e), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_api_key(f.s, key, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(!strcmp(sfs_err_type(&e), "unauthenticated"));
	CHECK(strstr(e.message, "revoked") != NULL);
	sfs_err_init(&e);
	CHECK_ST(sfs_key_revoke(f.s, kid, &e), SFS_CONFLICT);
	CHECK(strstr(e.message, "revoked") != NULL);
	CHECK_ST(sfs_key_revoke(f.s, "123e4567-e89b-42d3-a456-426614174000",
				NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_key_revoke(f.s, "garbage", NULL), SFS_NOT_FOUND);

	/* creation failures */
	CHECK_ST(sfs_key_create(f.s, "123e4567-e89b-42d3-a456-426614174000",
				SFS_SCOPE_READ, NULL, key, kid, NULL),
		 SFS_NOT_FOUND);
	sfs_err_init(&e);
	CHECK_ST(sfs_key_create(f.s, f.user, 0, NULL, key, kid, &e),
		 SFS_INVALID);
	CHECK(tfx_has_field(&e, "scopes", NULL));
	CHECK_ST(sfs_key_create(f.s, f.user, 0x10, NULL, key, kid, NULL),
		 SFS_INVALID);
	memset(long_label, 'l', 150);
	long_label[150] = '\0';
	sfs_err_init(&e);
	CHECK_ST(sfs_key_create(f.s, f.user, SFS_SCOPE_READ, long_label, key,
				kid, &e),
		 SFS_INVALID);
	CHECK(tfx_has_field(&e, "label", NULL));
	fx_close(&f);
}

/* ---- JWT ------------------------------------------------------------- */

static void test_jwt_mint_verify(void)
{
	struct sfs_buf b = SFS_BUF_INIT(16384);
	struct sfs_actor a;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_buf_adds(&b, "Bearer "), SFS_OK);
	CHECK_ST(sfs_jwt_mint(f.s, f.user, SFS_SCOPE_READ | SFS_SCOPE_SHARE,
			      3600, &b, &e),
		 SFS_OK);
	CHECK(!strncmp(b.buf, "Bearer ey", 9));
	CHECK_ST(sfs_auth_jwt(f.s, b.buf + 7, &a, &e), SFS_OK);
	CHECK(!strcmp(a.user_id, f.user) && !strcmp(a.tenant_id, f.tenant));
	CHECK(a.scopes == (SFS_SCOPE_READ | SFS_SCOPE_SHARE));
	CHECK(a.user > 0 && a.tenant > 0);

	/* no scopes: authenticated, but allowed nothing */
	sfs_buf_reset(&b);
	CHECK_ST(sfs_jwt_mint(f.s, f.user, 0, 60, &b, &e), SFS_OK);
	CHECK_ST(sfs_auth_jwt(f.s, b.buf, &a, &e), SFS_OK);
	CHECK(a.scopes == 0 && !strcmp(a.user_id, f.user));

	/* mint failures */
	sfs_err_init(&e);
	CHECK_ST(sfs_jwt_mint(f.s, f.user, SFS_SCOPE_READ, 0, &b, &e),
		 SFS_INVALID);
	CHECK(tfx_has_field(&e, "ttl", NULL));
	CHECK_ST(sfs_jwt_mint(f.s, f.user, 0x40, 60, &b, NULL), SFS_INVALID);
	CHECK_ST(sfs_jwt_mint(f.s, "123e4567-e89b-42d3-a456-426614174000",
			      SFS_SCOPE_READ, 60, &b, NULL),
		 SFS_NOT_FOUND);
	sfs_buf_release(&b);
	fx_close(&f);
}

static void test_jwt_expiry(void)
{
	struct sfs_buf b = SFS_BUF_INIT(16384);
	struct sfs_actor a;
	struct sfs_err e;
	char tok[4096], extra[128];
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_jwt_mint(f.s, f.user, SFS_SCOPE_READ, 60, &b, &e),
		   SFS_OK);
	/* within the leeway of 30 s after exp: still good */
	sfs_set_clock_offset_ms(80 * 1000);
	CHECK_ST(sfs_auth_jwt(f.s, b.buf, &a, &e), SFS_OK);
	sfs_set_clock_offset_ms(95 * 1000);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, b.buf, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "expired") != NULL);
	CHECK(!strcmp(sfs_err_type(&e), "unauthenticated"));
	CHECK(a.user == 0 && a.scopes == 0);
	sfs_set_clock_offset_ms(0);

	/* hand-made: exp long past, exp not a number, exp fractional */
	snprintf(extra, sizeof(extra), "\"exp\":%ld", now_s() - 3600);
	store_token(&f, hs256, extra, tok);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "expired") != NULL);
	store_token(&f, hs256, "\"exp\":\"tomorrow\"", tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);
	snprintf(extra, sizeof(extra), "\"exp\":%ld.5", now_s() + 600);
	store_token(&f, hs256, extra, tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_OK);
	/* no exp at all is refused: a token must expire */
	store_token_raw(&f, hs256, "\"scope\":\"speech:files:read\"", tok);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "no expiry") != NULL);
	/* nor a lifetime beyond jwt.max_ttl (24 h): from now, or from iat */
	snprintf(extra, sizeof(extra), "\"exp\":%ld", now_s() + 2 * 86400);
	store_token(&f, hs256, extra, tok);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "jwt.max_ttl") != NULL);
	snprintf(extra, sizeof(extra), "\"iat\":%ld,\"exp\":%ld",
		 now_s() - 2 * 86400, now_s() + 600);
	store_token(&f, hs256, extra, tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);
	snprintf(extra, sizeof(extra), "\"iat\":%ld,\"exp\":%ld", now_s() - 600,
		 now_s() + 85000);
	store_token(&f, hs256, extra, tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_OK);
	snprintf(extra, sizeof(extra), "\"iat\":\"x\",\"exp\":%ld",
		 now_s() + 600);
	store_token(&f, hs256, extra, tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);
	/* and minting one longer is refused */
	sfs_err_init(&e);
	sfs_buf_reset(&b);
	CHECK_ST(sfs_jwt_mint(f.s, f.user, SFS_SCOPE_READ, 86401, &b, &e),
		 SFS_INVALID);
	CHECK(tfx_has_field(&e, "ttl", NULL));

	/* nbf in the future, beyond and within the leeway */
	snprintf(extra, sizeof(extra), "\"nbf\":%ld", now_s() + 120);
	store_token(&f, hs256, extra, tok);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "not yet valid") != NULL);
	sfs_set_clock_offset_ms(125 * 1000);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_OK);
	sfs_set_clock_offset_ms(0);
	snprintf(extra, sizeof(extra), "\"nbf\":%ld", now_s() + 10);
	store_token(&f, hs256, extra, tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_OK);
	store_token(&f, hs256, "\"nbf\":null", tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);
	sfs_buf_release(&b);
	fx_close(&f);
}

static void test_jwt_algorithms(void)
{
	static const char *const bad_headers[] = {
		"{\"alg\":\"none\",\"typ\":\"JWT\"}",
		"{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
		"{\"alg\":\"hs256\"}",
		"{\"alg\":\"RS256\"}",
		"{\"typ\":\"JWT\"}",
		"{\"alg\":null}",
		"{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}",
		"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
		"{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
		"[\"HS256\"]",
	};
	struct sfs_actor a;
	struct sfs_err e;
	char tok[4096], payload[256];
	struct fx f;
	size_t i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
		store_token(&f, bad_headers[i], "", tok);
		sfs_err_init(&e);
		CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
		CHECK(e.message[0] != '\0');
		if (i < 2)
			CHECK(strstr(e.message, "algorithm") != NULL);
	}

	snprintf(payload, sizeof(payload), "{\"sub\":\"%s\"}", f.user);
	/* alg none, with an empty signature */
	make_token("{\"alg\":\"none\"}", payload, NULL, NULL, 0, tok);
	CHECK(tok[strlen(tok) - 1] == '.');
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "algorithm") != NULL);
	/* HS512 really signed with the store's secret */
	make_token("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", payload, EVP_sha512(),
		   f.s->secret, sizeof(f.s->secret), tok);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "algorithm") != NULL);
	/* HS256 header with an HS512 signature */
	make_token(hs256, payload, EVP_sha512(), f.s->secret,
		   sizeof(f.s->secret), tok);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "signature") != NULL);

	/* typ may be absent or JWT */
	store_token(&f, "{\"alg\":\"HS256\"}", "", tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_OK);
	store_token(&f, hs256, "", tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_OK);
	fx_close(&f);
}

static void test_jwt_tampering(void)
{
	struct sfs_buf b = SFS_BUF_INIT(16384);
	struct sfs_actor a;
	struct sfs_err e;
	char tok[4096], other[4096], *dot, *odot;
	unsigned char key[32];
	size_t n;
	struct fx f, g;

	REQUIRE(fx_open(&f) == 0);
	if (fx_open(&g)) {
		fx_close(&f);
		REQUIRE(0);
	}
	sfs_err_init(&e);

	/* payload of one token with the signature of another */
	store_token(&f, hs256, "\"scope\":\"speech:files:read\"", tok);
	store_token(&f, hs256, "\"scope\":\"speech:files:delete\"", other);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_OK);
	CHECK(a.scopes == SFS_SCOPE_READ);
	dot = strrchr(tok, '.');
	odot = strrchr(other, '.');
	memcpy(odot, dot, strlen(dot) + 1);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, other, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "signature") != NULL);
	CHECK(a.scopes == 0);

	/* every change of the signature, including its unused low bits */
	n = strlen(tok);
	tok[n - 1] = tok[n - 1] == 'A' ? 'B' : 'A';
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "signature") != NULL);
	store_token(&f, hs256, "", tok);
	dot = strrchr(tok, '.');
	dot[1] = dot[1] == 'x' ? 'y' : 'x';
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);
	store_token(&f, hs256, "", tok);
	tok[strlen(tok) - 1] = '\0'; /* 42 characters: 31 bytes */
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);
	store_token(&f, hs256, "", tok);
	n = strlen(tok);
	memcpy(tok + n, "AAAA", 5); /* 35 bytes */
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);

	/* another store's secret */
	REQUIRE_ST(sfs_jwt_mint(g.s, g.user, SFS_SCOPE_ALL, 600, &b, &e),
		   SFS_OK);
	CHECK_ST(sfs_auth_jwt(g.s, b.buf, &a, &e), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, b.buf, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "signature") != NULL);
	/* a valid subject of this store, signed with the other secret */
	snprintf(other, sizeof(other), "{\"sub\":\"%s\"}", f.user);
	make_token(hs256, other, EVP_sha256(), g.s->secret, sizeof(g.s->secret),
		   tok);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "signature") != NULL);
	memset(key, 0, sizeof(key));
	make_token(hs256, other, EVP_sha256(), key, sizeof(key), tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);
	sfs_buf_release(&b);
	fx_close(&g);
	fx_close(&f);
}

/* A token with the given claims (no "sub" added) and an exp. */
static void subject_token(struct fx *f, const char *claims, char *out)
{
	char payload[512];

	snprintf(payload, sizeof(payload), "{%s,\"exp\":%ld}", claims,
		 now_s() + 600);
	make_token(hs256, payload, EVP_sha256(), f->s->secret,
		   sizeof(f->s->secret), out);
}

static void test_jwt_subject(void)
{
	struct sfs_actor a;
	struct sfs_err e;
	char tok[4096], upper[SFS_ID_SIZE], payload[256];
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	subject_token(&f, "\"scope\":\"speech:files:read\"", tok);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "subject") != NULL);

	subject_token(&f, "\"sub\":\"123e4567-e89b-42d3-a456-426614174000\"",
		      tok);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "unknown subject") != NULL);

	subject_token(&f, "\"sub\":42", tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);
	subject_token(&f, "\"sub\":\"ann\"", tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);
	/* the tenant id is not a user */
	snprintf(payload, sizeof(payload), "\"sub\":\"%s\"", f.tenant);
	subject_token(&f, payload, tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);

	/* an upper-case subject is the same user */
	for (i = 0; f.user[i]; i++)
		upper[i] = (char)toupper((unsigned char)f.user[i]);
	upper[i] = '\0';
	snprintf(payload, sizeof(payload), "\"sub\":\"%s\"", upper);
	subject_token(&f, payload, tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_OK);
	CHECK(!strcmp(a.user_id, f.user));
	fx_close(&f);
}

static void test_jwt_scope_claims(void)
{
	static const struct {
		const char *claims;
		int ok;
		unsigned want;
	} cases[] = {
		{ "", 1, 0 },
		{ "\"scope\":\"speech:files:read speech:files:share\"", 1,
		  SFS_SCOPE_READ | SFS_SCOPE_SHARE },
		{ "\"scope\":\"openid speech:files:write profile\"", 1,
		  SFS_SCOPE_WRITE },
		{ "\"scope\":\"\"", 1, 0 },
		{ "\"scopes\":[\"speech:files:write\",\"speech:files:delete\"]",
		  1, SFS_SCOPE_WRITE | SFS_SCOPE_DELETE },
		{ "\"scopes\":\"speech:files:read\"", 1, SFS_SCOPE_READ },
		{ "\"scopes\":[]", 1, 0 },
		{ "\"scope\":\"speech:files:read\","
		  "\"scopes\":[\"speech:files:share\"]",
		  1, SFS_SCOPE_READ | SFS_SCOPE_SHARE },
		{ "\"scope\":\"all\"", 1, 0 },
		{ "\"scope\":5", 0, 0 },
		{ "\"scope\":[\"speech:files:read\"]", 0, 0 },
		{ "\"scopes\":[1]", 0, 0 },
		{ "\"scopes\":{}", 0, 0 },
	};
	struct sfs_actor a;
	char tok[4096];
	struct fx f;
	size_t i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st;

		store_token(&f, hs256, cases[i].claims, tok);
		st = sfs_auth_jwt(f.s, tok, &a, NULL);
		if (st != (cases[i].ok ? SFS_OK : SFS_UNAUTHENTICATED) ||
		    (cases[i].ok && a.scopes != cases[i].want)) {
			fprintf(stderr, "scope case %zu (%s): st %d, %u\n", i,
				cases[i].claims, st, a.scopes);
			th_cur_failed = 1;
		}
	}
	fx_close(&f);
}

static void test_jwt_garbage(void)
{
	static const char *const junk[] = {
		"",
		"abc",
		"a.b",
		"a.b.c.d",
		"..",
		"@@@@.eyJzdWIiOiJ4In0.AAAA",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0=.AAAA",
		"eyJhbGciOiJIUzI1NiJ9=.eyJzdWIiOiJ4In0.AAAA",
		"eyJhbGciOiJIUzI1NiJ9.e.AAAA",
		"eyJhbGciOiJIUzI1NiJ9 .eyJzdWIiOiJ4In0.AAAA",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.",
		"bm90IGpzb24.eyJzdWIiOiJ4In0.AAAA",
	};
	struct sfs_actor a;
	struct sfs_err e;
	char tok[4096], *huge;
	struct fx f;
	size_t i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		sfs_err_init(&e);
		CHECK_ST(sfs_auth_jwt(f.s, junk[i], &a, &e),
			 SFS_UNAUTHENTICATED);
		CHECK(!strcmp(sfs_err_type(&e), "unauthenticated") &&
		      e.message[0]);
	}
	CHECK_ST(sfs_auth_jwt(f.s, NULL, &a, NULL), SFS_UNAUTHENTICATED);

	/* a correctly signed token whose payload is not JSON, or not an
	 * object */
	make_token(hs256, "not json", EVP_sha256(), f.s->secret,
		   sizeof(f.s->secret), tok);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "payload") != NULL);
	make_token(hs256, "[1,2]", EVP_sha256(), f.s->secret,
		   sizeof(f.s->secret), tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_UNAUTHENTICATED);

	/* padded base64 in an otherwise valid token */
	store_token(&f, "{\"alg\":\"HS256\"}", "", tok);
	CHECK_ST(sfs_auth_jwt(f.s, tok, &a, NULL), SFS_OK);
	{
		char padded[4200];
		char *dot = strchr(tok, '.');

		snprintf(padded, sizeof(padded), "%.*s=%s", (int)(dot - tok),
			 tok, dot);
		CHECK_ST(sfs_auth_jwt(f.s, padded, &a, NULL),
			 SFS_UNAUTHENTICATED);
		/* 20 characters + 1: a length base64 cannot have, even
		 * when the extra character carries only zero bits */
		CHECK(dot - tok == 20);
		snprintf(padded, sizeof(padded), "%.*sA%s", (int)(dot - tok),
			 tok, dot);
		sfs_err_init(&e);
		CHECK_ST(sfs_auth_jwt(f.s, padded, &a, &e),
			 SFS_UNAUTHENTICATED);
		CHECK(strstr(e.message, "header") != NULL);
	}

	/* over 8 KiB is refused before any work */
	huge = malloc(9001);
	REQUIRE(huge);
	memset(huge, 'A', 9000);
	huge[9000] = '\0';
	huge[100] = '.';
	huge[200] = '.';
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_jwt(f.s, huge, &a, &e), SFS_UNAUTHENTICATED);
	CHECK(strstr(e.message, "too long") != NULL);
	free(huge);
	fx_close(&f);
}

/* ---- HMAC ------------------------------------------------------------ */

static void test_hmac(void)
{
	char sig[65], sig2[65], upper[65];
	unsigned char want[32];
	unsigned int len = 0;
	struct sfs_err e;
	struct fx f, g;
	int i;

	REQUIRE(fx_open(&f) == 0);
	if (fx_open(&g)) {
		fx_close(&f);
		REQUIRE(0);
	}
	sfs_err_init(&e);
	CHECK_ST(sfsi_hmac_sign(f.s, "GET /files/x?exp=100", sig, &e), SFS_OK);
	CHECK(strlen(sig) == 64);
	HMAC(EVP_sha256(), f.s->secret, 32,
	     (const unsigned char *)"GET /files/x?exp=100", 20, want, &len);
	{
		char hex[65];

		for (i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", want[i]);
		CHECK(!strcmp(hex, sig));
	}
	CHECK_ST(sfsi_hmac_sign(f.s, "GET /files/x?exp=100", sig2, &e), SFS_OK);
	CHECK(!strcmp(sig, sig2));
	CHECK(sfsi_hmac_verify(f.s, "GET /files/x?exp=100", sig));
	for (i = 0; i < 65; i++)
		upper[i] = (char)toupper((unsigned char)sig[i]);
	CHECK(sfsi_hmac_verify(f.s, "GET /files/x?exp=100", upper));

	CHECK(!sfsi_hmac_verify(f.s, "GET /files/x?exp=101", sig));
	CHECK(!sfsi_hmac_verify(g.s, "GET /files/x?exp=100", sig));
	sig2[5] = sig2[5] == '0' ? '1' : '0';
	CHECK(!sfsi_hmac_verify(f.s, "GET /files/x?exp=100", sig2));
	memcpy(sig2, sig, sizeof(sig2));
	sig2[63] = '\0';
	CHECK(!sfsi_hmac_verify(f.s, "GET /files/x?exp=100", sig2));
	memcpy(sig2, sig, sizeof(sig2));
	sig2[10] = 'z';
	CHECK(!sfsi_hmac_verify(f.s, "GET /files/x?exp=100", sig2));
	CHECK(!sfsi_hmac_verify(f.s, "GET /files/x?exp=100", ""));
	CHECK(!sfsi_hmac_verify(f.s, "GET /files/x?exp=100", NULL));
	CHECK(!sfsi_hmac_verify(f.s, NULL, sig));
	CHECK_ST(sfsi_hmac_sign(f.s, NULL, sig, NULL), SFS_INVALID);
	fx_close(&g);
	fx_close(&f);
}

/* ---- signed URLs ----------------------------------------------------- */

static void test_signed_url(void)
{
	struct sfs_file_spec sp = { .name = "talk" };
	struct sfs_signed_url u, v;
	struct sfs_actor a, b, got;
	char other[SFS_ID_SIZE], exp[24], sig[65];
	struct sfs_file file;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_auth_user(f.s, f.user, SFS_SCOPE_ALL, &a, &e), SFS_OK);
	REQUIRE_ST(sfs_user_create(f.s, f.tenant, "bob", -1, other, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_auth_user(f.s, other, SFS_SCOPE_ALL, &b, &e), SFS_OK);
	REQUIRE_ST(sfs_file_create(f.s, &a, &sp, NULL, &file, &e), SFS_OK);

	/* the grant is checked against the caller's access and the ttl */
	CHECK_ST(sfs_signed_url_make(f.s, &a, file.id, SFS_CONTENT_ORIGINAL, 0,
				     &u, &e),
		 SFS_INVALID);
	CHECK(tfx_has_field(&e, "expiresInSeconds", NULL));
	sfs_err_init(&e);
	CHECK_ST(sfs_signed_url_make(f.s, &a, file.id, SFS_CONTENT_ORIGINAL,
				     SFS_SIGNED_TTL_MAX + 1, &u, &e),
		 SFS_INVALID);
	CHECK_ST(sfs_signed_url_make(f.s, &b, file.id, SFS_CONTENT_ORIGINAL, 60,
				     &u, NULL),
		 SFS_FORBIDDEN);
	CHECK_ST(sfs_signed_url_make(f.s, &a, other, SFS_CONTENT_ORIGINAL, 60,
				     &u, NULL),
		 SFS_NOT_FOUND);
	REQUIRE_ST(sfs_signed_url_make(f.s, &a, file.id, SFS_CONTENT_ORIGINAL,
				       60, &u, &e),
		   SFS_OK);
	CHECK(!strcmp(u.file_id, file.id) && !strcmp(u.user_id, f.user));
	CHECK(u.exp >= sfs_now_ms() / 1000 + 59);
	snprintf(exp, sizeof(exp), "%lld", (long long)u.exp);

	/* the grant: the granting user, reading only */
	CHECK_ST(sfs_signed_url_verify(f.s, file.id, SFS_CONTENT_ORIGINAL, exp,
				       u.user_id, u.sig, &got, &e),
		 SFS_OK);
	CHECK(!strcmp(got.user_id, f.user) && got.scopes == SFS_SCOPE_READ);

	/* nothing else: another target, file, user, expiry or signature */
	sfs_err_init(&e);
	CHECK_ST(sfs_signed_url_verify(f.s, file.id, SFS_CONTENT_LISTENING, exp,
				       u.user_id, u.sig, &got, &e),
		 SFS_UNAUTHENTICATED);
	CHECK(e.reason == SFS_R_INVALID_SIGNATURE);
	CHECK_ST(sfs_signed_url_verify(f.s, other, SFS_CONTENT_ORIGINAL, exp,
				       u.user_id, u.sig, &got, NULL),
		 SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_signed_url_verify(f.s, file.id, SFS_CONTENT_ORIGINAL, exp,
				       other, u.sig, &got, NULL),
		 SFS_UNAUTHENTICATED);
	snprintf(exp, sizeof(exp), "%lld", (long long)u.exp + 3600);
	CHECK_ST(sfs_signed_url_verify(f.s, file.id, SFS_CONTENT_ORIGINAL, exp,
				       u.user_id, u.sig, &got, NULL),
		 SFS_UNAUTHENTICATED);
	snprintf(exp, sizeof(exp), "%lld", (long long)u.exp);
	memcpy(sig, u.sig, sizeof(sig));
	sig[0] = sig[0] == 'a' ? 'b' : 'a';
	CHECK_ST(sfs_signed_url_verify(f.s, file.id, SFS_CONTENT_ORIGINAL, exp,
				       u.user_id, sig, &got, NULL),
		 SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_signed_url_verify(f.s, file.id, SFS_CONTENT_ORIGINAL, exp,
				       u.user_id, NULL, &got, NULL),
		 SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_signed_url_verify(f.s, file.id, SFS_CONTENT_ORIGINAL,
				       "12x", u.user_id, u.sig, &got, NULL),
		 SFS_UNAUTHENTICATED);

	/* a listening grant is its own, with its own expiry (made a second
	 * later here: the clock stepped, as it may pass a second anyway) */
	sfs_set_clock_offset_ms(1000);
	REQUIRE_ST(sfs_signed_url_make(f.s, &a, file.id, SFS_CONTENT_LISTENING,
				       60, &v, &e),
		   SFS_OK);
	CHECK(strcmp(v.sig, u.sig));
	CHECK(v.exp > u.exp);
	snprintf(exp, sizeof(exp), "%lld", (long long)v.exp);
	CHECK_ST(sfs_signed_url_verify(f.s, file.id, SFS_CONTENT_LISTENING, exp,
				       v.user_id, v.sig, &got, NULL),
		 SFS_OK);
	sfs_set_clock_offset_ms(0);
	snprintf(exp, sizeof(exp), "%lld", (long long)u.exp);

	/* past its expiry (the store's clock stepped, not waited for) */
	sfs_set_clock_offset_ms(61 * 1000);
	sfs_err_init(&e);
	CHECK_ST(sfs_signed_url_verify(f.s, file.id, SFS_CONTENT_ORIGINAL, exp,
				       u.user_id, u.sig, &got, &e),
		 SFS_UNAUTHENTICATED);
	CHECK(e.reason == SFS_R_SIGNED_URL_EXPIRED);
	sfs_set_clock_offset_ms(0);
	sfs_file_release(&file);
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_WARN);
	RUN(test_scope_parse);
	RUN(test_uuid);
	RUN(test_random);
	RUN(test_tenant);
	RUN(test_user);
	RUN(test_key_roundtrip);
	RUN(test_key_rejects);
	RUN(test_jwt_mint_verify);
	RUN(test_jwt_expiry);
	RUN(test_jwt_algorithms);
	RUN(test_jwt_tampering);
	RUN(test_jwt_subject);
	RUN(test_jwt_scope_claims);
	RUN(test_jwt_garbage);
	RUN(test_signed_url);
	RUN(test_hmac);
	return th_report();
}
