/*
 * Tokens: HS256 JWTs and signed URLs, both made with the store's secret
 * (HMAC-SHA256), verified in constant time, and turned into an actor.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "speechfs/file.h"
#include "speechfs/log.h"
#include "speechfs/token.h"
#include "store_i.h"
#include "util_i.h"

#define JWT_MAX 8192
#define JWT_LEEWAY_S 30
#define JWT_TTL_MAX ((int64_t)10 * 366 * 24 * 3600)
#define HMAC_LEN 32

static enum sfs_status unauth(struct sfs_err *e, const char *msg)
{
	sfs_debug("auth", "rejected credentials: %s", msg);
	return sfs_errf(e, SFS_UNAUTHENTICATED, SFS_R_NONE, "%s", msg);
}

/* ---- HMAC and base64url ---------------------------------------------- */

static int hmac256(struct sfs_store *s, const void *msg, size_t n,
		   unsigned char out[HMAC_LEN])
{
	unsigned int len = 0;

	if (!HMAC(EVP_sha256(), s->secret, (int)sizeof(s->secret), msg, n, out,
		  &len) ||
	    len != HMAC_LEN)
		return -1;
	return 0;
}

static const char b64url_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static enum sfs_status b64url_add(struct sfs_buf *b, const void *data, size_t n)
{
	const unsigned char *p = data;
	enum sfs_status ret = SFS_OK;
	char q[4];
	size_t i;

	for (i = 0; i < n && !ret; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		size_t k = n - i >= 3 ? 3 : n - i;

		if (k > 1)
			v |= (unsigned)p[i + 1] << 8;
		if (k > 2)
			v |= p[i + 2];
		q[0] = b64url_chars[v >> 18 & 63];
		q[1] = b64url_chars[v >> 12 & 63];
		q[2] = b64url_chars[v >> 6 & 63];
		q[3] = b64url_chars[v & 63];
		ret = sfs_buf_add(b, q, k + 1);
	}
	return ret;
}

static int b64url_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Decode unpadded base64url strictly: no padding, no other characters,
 * and unused low bits zero, so each byte string has one encoding only
 * (a token cannot be altered and still verify). out holds n * 3 / 4.
 * Returns the decoded length, or -1.
 */
static long b64url_decode(const char *in, size_t n, unsigned char *out)
{
	unsigned acc = 0;
	int bits = 0;
	size_t i, o = 0;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		int v = b64url_val((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits && (acc & ((1u << bits) - 1)))
		return -1;
	return (long)o;
}

/* ---- JWT ------------------------------------------------------------- */

/* Decode one base64url JSON object of a token, or NULL. */
static json_t *jwt_part(const char *in, size_t n)
{
	unsigned char *raw;
	json_t *j = NULL;
	long len;

	if (!n)
		return NULL;
	raw = malloc(n * 3 / 4 + 1);
	if (!raw)
		return NULL;
	len = b64url_decode(in, n, raw);
	if (len > 0)
		j = json_loadb((const char *)raw, (size_t)len,
			       JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static const char *jwt_check_header(const json_t *h)
{
	const json_t *alg = json_object_get(h, "alg");
	const json_t *typ = json_object_get(h, "typ");

	if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256"))
		return "unsupported algorithm (only HS256 is accepted)";
	if (typ &&
	    (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT")))
		return "unsupported token type";
	/* RFC 7515 4.1.11: extensions we do not understand must fail */
	if (json_object_get(h, "crit"))
		return "unsupported critical header";
	return NULL;
}

/*
 * exp and nbf, in seconds, each with some leeway for clock skew. A token
 * must expire, and within the store's jwt.max_ttl: of when it was issued
 * (iat), or of now when it does not say.
 */
static const char *jwt_check_times(const json_t *p, int64_t max_ttl)
{
	const json_t *exp = json_object_get(p, "exp");
	const json_t *nbf = json_object_get(p, "nbf");
	const json_t *iat = json_object_get(p, "iat");
	double now = (double)sfs_now_ms() / 1000.0, from = now;

	if (!exp)
		return "token has no expiry (exp)";
	if (!json_is_number(exp))
		return "invalid exp claim";
	if (now >= json_number_value(exp) + JWT_LEEWAY_S)
		return "token expired";
	if (iat) {
		if (!json_is_number(iat))
			return "invalid iat claim";
		if (json_number_value(iat) > now + JWT_LEEWAY_S)
			return "token issued in the future";
		from = json_number_value(iat);
	}
	if (json_number_value(exp) - from > (double)max_ttl + JWT_LEEWAY_S)
		return "token lifetime exceeds the server's limit "
		       "(jwt.max_ttl)";
	if (nbf) {
		if (!json_is_number(nbf))
			return "invalid nbf claim";
		if (json_number_value(nbf) > now + JWT_LEEWAY_S)
			return "token not yet valid";
	}
	return NULL;
}

static const char *jwt_scopes(const json_t *p, unsigned *out)
{
	const json_t *scope = json_object_get(p, "scope");
	const json_t *scopes = json_object_get(p, "scopes");
	unsigned bits = 0;
	const json_t *v;
	size_t i;

	if (scope) {
		if (!json_is_string(scope))
			return "invalid scope claim";
		bits |= sfsi_scopes_lenient(json_string_value(scope));
	}
	if (json_is_string(scopes)) {
		bits |= sfsi_scopes_lenient(json_string_value(scopes));
	} else if (json_is_array(scopes)) {
		json_array_foreach(scopes, i, v)
		{
			if (!json_is_string(v))
				return "invalid scopes claim";
			bits |= sfsi_scopes_lenient(json_string_value(v));
		}
	} else if (scopes) {
		return "invalid scopes claim";
	}
	*out = bits;
	return NULL;
}

enum sfs_status sfs_auth_jwt(struct sfs_store *s, const char *token,
			     struct sfs_actor *out, struct sfs_err *e)
{
	unsigned char sig[HMAC_LEN * 2], want[HMAC_LEN];
	char uuid[SFS_ID_SIZE];
	json_t *hdr = NULL, *pay = NULL;
	const char *dot1, *dot2, *why = NULL;
	const json_t *sub;
	struct db *d = NULL;
	unsigned scopes = 0;
	enum sfs_status ret = SFS_OK;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (!token || !*token)
		return unauth(e, "missing token");
	len = strnlen(token, JWT_MAX + 1);
	if (len > JWT_MAX)
		return unauth(e, "token too long");
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))
		    : NULL;
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return unauth(e, "malformed token");

	hdr = jwt_part(token, (size_t)(dot1 - token));
	if (!hdr) {
		ret = unauth(e, "malformed token header");
		goto out;
	}
	why = jwt_check_header(hdr);
	if (why) {
		ret = unauth(e, why);
		goto out;
	}
	/* signature before anything in the payload is believed */
	if (len - (size_t)(dot2 + 1 - token) > sizeof(sig) ||
	    b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig) !=
		    HMAC_LEN) {
		ret = unauth(e, "invalid signature");
		goto out;
	}
	if (hmac256(s, token, (size_t)(dot2 - token), want)) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot compute an hmac");
		goto out;
	}
	if (!sfsi_ct_equal(sig, want, HMAC_LEN)) {
		ret = unauth(e, "invalid signature");
		goto out;
	}
	pay = jwt_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (!pay) {
		ret = unauth(e, "malformed token payload");
		goto out;
	}
	why = jwt_check_times(pay, s->cfg.jwt_max_ttl_s);
	if (!why)
		why = jwt_scopes(pay, &scopes);
	if (why) {
		ret = unauth(e, why);
		goto out;
	}
	sub = json_object_get(pay, "sub");
	if (!sub) {
		ret = unauth(e, "token has no subject");
		goto out;
	}
	if (!json_is_string(sub) ||
	    sfsi_uuid_norm(json_string_value(sub), uuid)) {
		ret = unauth(e, "unknown subject");
		goto out;
	}
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	ret = sfsi_auth_load_actor(d, uuid, out, e);
	if (ret == SFS_NOT_FOUND) {
		ret = unauth(e, "unknown subject");
		goto out;
	}
	if (ret)
		goto out;
	out->scopes = scopes;
out:
	if (ret)
		memset(out, 0, sizeof(*out));
	sfsi_db_put(d);
	json_decref(hdr);
	json_decref(pay);
	return ret;
}

static enum sfs_status scope_string(unsigned scopes, struct sfs_buf *b)
{
	enum sfs_status ret = SFS_OK;
	unsigned bit;

	for (bit = 1; bit <= SFS_SCOPE_ALL && !ret; bit <<= 1) {
		if (!(scopes & bit) || !sfs_scope_name(bit))
			continue;
		if (b->len)
			ret = sfs_buf_addch(b, ' ');
		if (!ret)
			ret = sfs_buf_adds(b, sfs_scope_name(bit));
	}
	return ret;
}

enum sfs_status sfs_jwt_mint(struct sfs_store *s, const char *user_id,
			     unsigned scopes, int64_t ttl_seconds,
			     struct sfs_buf *out, struct sfs_err *e)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	struct sfs_buf tok = SFS_BUF_INIT(JWT_MAX);
	struct sfs_buf sc = SFS_BUF_INIT(256);
	unsigned char mac[HMAC_LEN];
	struct sfs_actor a;
	json_t *pay = NULL;
	char *json = NULL;
	enum sfs_status ret = SFS_OK;
	int64_t now;

	if (ttl_seconds <= 0 || ttl_seconds > JWT_TTL_MAX ||
	    ttl_seconds > s->cfg.jwt_max_ttl_s)
		ret = sfs_err_field(
			e, "ttl", "invalid",
			"must be 1..%lld seconds (jwt.max_ttl)",
			(long long)(s->cfg.jwt_max_ttl_s < JWT_TTL_MAX
					    ? s->cfg.jwt_max_ttl_s
					    : JWT_TTL_MAX));
	if (scopes & ~(unsigned)SFS_SCOPE_ALL)
		ret = sfs_err_field(e, "scopes", "invalid", "unknown scope");
	if (ret)
		return ret;
	ret = sfs_auth_user(s, user_id, 0, &a, e);
	if (ret)
		goto out;
	now = sfs_now_ms() / 1000;
	pay = json_pack("{s:s, s:I, s:I}", "sub", a.user_id, "iat",
			(json_int_t)now, "exp",
			(json_int_t)(now + ttl_seconds));
	ret = pay ? scope_string(scopes, &sc) : SFS_NOMEM;
	if (!ret && sc.len &&
	    json_object_set_new(pay, "scope", json_string(sc.buf)))
		ret = SFS_NOMEM;
	if (!ret && !(json = json_dumps(pay, JSON_COMPACT)))
		ret = SFS_NOMEM;
	if (!ret)
		ret = b64url_add(&tok, header, sizeof(header) - 1);
	if (!ret)
		ret = sfs_buf_addch(&tok, '.');
	if (!ret)
		ret = b64url_add(&tok, json, strlen(json));
	if (ret) {
		ret = sfs_errf(e, ret, SFS_R_NONE, "cannot build a token");
		goto out;
	}
	if (hmac256(s, tok.buf, tok.len, mac)) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot compute an hmac");
		goto out;
	}
	ret = sfs_buf_addch(&tok, '.');
	if (!ret)
		ret = b64url_add(&tok, mac, sizeof(mac));
	if (!ret)
		ret = sfs_buf_add(out, tok.buf, tok.len);
	if (ret)
		ret = sfs_errf(e, ret, SFS_R_NONE, "cannot build a token");
out:
	free(json);
	json_decref(pay);
	sfs_buf_release(&sc);
	sfs_buf_release(&tok);
	return ret;
}

/* ---- signed URLs ----------------------------------------------------- */

static const char *const target_name[] = {
	[SFS_CONTENT_ORIGINAL] = "content",
	[SFS_CONTENT_LISTENING] = "listening-audio",
};

/* What a signed URL's signature covers. */
static void signed_msg(char *out, size_t n, const char *file_id,
		       enum sfs_content which, const char *uid, int64_t exp)
{
	snprintf(out, n, "%s|%s|%s|%lld", file_id, target_name[which], uid,
		 (long long)exp);
}

enum sfs_status sfsi_hmac_sign(struct sfs_store *s, const char *msg,
			       char out[65], struct sfs_err *e)
{
	unsigned char mac[HMAC_LEN];

	if (!msg)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "nothing to sign");
	if (hmac256(s, msg, strlen(msg), mac))
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"cannot compute an hmac");
	sfsi_hex(mac, sizeof(mac), out);
	return SFS_OK;
}

int sfsi_hmac_verify(struct sfs_store *s, const char *msg, const char *hex)
{
	unsigned char mac[HMAC_LEN], got[HMAC_LEN];

	if (!msg || !hex || strnlen(hex, 2 * HMAC_LEN + 1) != 2 * HMAC_LEN)
		return 0;
	if (sfsi_unhex(hex, HMAC_LEN, got))
		return 0;
	if (hmac256(s, msg, strlen(msg), mac))
		return 0;
	return sfsi_ct_equal(mac, got, HMAC_LEN);
}

enum sfs_status sfs_signed_url_make(struct sfs_store *s,
				    const struct sfs_actor *a,
				    const char *file_id, enum sfs_content which,
				    int64_t ttl_seconds,
				    struct sfs_signed_url *out,
				    struct sfs_err *e)
{
	struct sfs_file f;
	enum sfs_status ret;
	char msg[256];

	memset(out, 0, sizeof(*out));
	if ((unsigned)which >= ARRAY_SIZE(target_name))
		return sfs_err_field(e, "target", "invalid",
				     "'target' must be \"content\" or "
				     "\"listening-audio\"");
	if (ttl_seconds < 1 || ttl_seconds > SFS_SIGNED_TTL_MAX)
		return sfs_err_field(e, "expiresInSeconds", "invalid",
				     "'expiresInSeconds' must be an integer "
				     "from 1 to %d",
				     SFS_SIGNED_TTL_MAX);
	/* the grant is the caller's own read access, checked now */
	ret = sfs_file_get(s, a, file_id, &f, e);
	if (ret)
		return ret;
	sfs_strlcpy(out->file_id, f.id, sizeof(out->file_id));
	sfs_file_release(&f);
	sfs_strlcpy(out->user_id, a->user_id, sizeof(out->user_id));
	out->which = which;
	out->exp = sfs_now_ms() / 1000 + ttl_seconds;
	signed_msg(msg, sizeof(msg), out->file_id, which, out->user_id,
		   out->exp);
	return sfsi_hmac_sign(s, msg, out->sig, e);
}

enum sfs_status sfs_signed_url_verify(struct sfs_store *s, const char *file_id,
				      enum sfs_content which, const char *exp,
				      const char *uid, const char *sig,
				      struct sfs_actor *out, struct sfs_err *e)
{
	char msg[256];
	int64_t t;

	if (!file_id || !exp || !uid || !sig || sfs_parse_i64(exp, &t) ||
	    !sfs_uuid_valid(uid) || !sfs_uuid_valid(file_id) ||
	    (unsigned)which >= ARRAY_SIZE(target_name))
		return sfs_errf(e, SFS_UNAUTHENTICATED, SFS_R_INVALID_SIGNATURE,
				"the signed URL is incomplete");
	signed_msg(msg, sizeof(msg), file_id, which, uid, t);
	if (!sfsi_hmac_verify(s, msg, sig))
		return sfs_errf(e, SFS_UNAUTHENTICATED, SFS_R_INVALID_SIGNATURE,
				"the signed URL's signature is invalid");
	if (sfs_now_ms() / 1000 > t)
		return sfs_errf(e, SFS_UNAUTHENTICATED,
				SFS_R_SIGNED_URL_EXPIRED,
				"the signed URL has expired");
	/* a grant of reading one file: the read scope and nothing else */
	if (sfs_auth_user(s, uid, SFS_SCOPE_READ, out, NULL))
		return sfs_errf(e, SFS_UNAUTHENTICATED, SFS_R_INVALID_SIGNATURE,
				"the signed URL's user no longer exists");
	return SFS_OK;
}
