/*
 * libFuzzer target: JWT verification (core/token.c). Half of the inputs
 * are tokens as they come; the other half are a header and claims (split
 * at the first NUL) that the target signs with the store's own secret, so
 * the fuzzer reaches the checks behind the signature. Checked: only a
 * token signed with the store's key, HS256, with a known subject, an
 * expiry within jwt.max_ttl and a valid nbf is accepted, and it then acts
 * as that subject with no scope it did not claim.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "speechfs/token.h"
#include "store_i.h"

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
	static const char c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
				"tuvwxyz0123456789-_";
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i < n; i += 3) {
		v = (unsigned)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = c[v >> 18 & 63];
		out[o++] = c[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = c[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = c[v & 63];
	}
	out[o] = '\0';
	return o;
}

/*
 * The claims with "@owner" replaced by the owner's id (a subject the
 * fuzzer could not guess), into a new buffer of *n bytes.
 */
static uint8_t *subject(struct fz *z, const uint8_t *p, size_t pn, size_t *n)
{
	uint8_t *out = malloc(pn * (SFS_UUID_LEN / 6 + 1) + 1);
	size_t i, o = 0;

	if (!out)
		abort();
	for (i = 0; i < pn; i++) {
		if (pn - i >= 6 && memcmp(p + i, "@owner", 6) == 0) {
			memcpy(out + o, z->owner.user_id, SFS_UUID_LEN);
			o += SFS_UUID_LEN;
			i += 5;
		} else {
			out[o++] = p[i];
		}
	}
	*n = o;
	return out;
}

/* header "." claims "." HMAC with the store's secret */
static char *sign(struct fz *z, const uint8_t *h, size_t hn, const uint8_t *p0,
		  size_t pn0)
{
	size_t pn;
	uint8_t *p = subject(z, p0, pn0, &pn);
	char *tok = malloc(2 * (hn + pn) + 100);
	unsigned char mac[32];
	unsigned int len = 0;
	size_t o;

	if (!tok)
		abort();
	o = b64url(h, hn, tok);
	tok[o++] = '.';
	o += b64url(p, pn, tok + o);
	free(p);
	HMAC(EVP_sha256(), z->s->secret, sizeof(z->s->secret),
	     (unsigned char *)tok, o, mac, &len);
	tok[o++] = '.';
	b64url(mac, len, tok + o);
	return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *z = fz_get();
	const uint8_t *nul;
	struct sfs_actor a;
	struct sfs_err e;
	char *tok;

	if (size < 1 || size > 8192)
		return 0;
	if (data[0] & 1) {
		nul = memchr(data + 1, '\0', size - 1);
		if (!nul)
			return 0;
		tok = sign(z, data + 1, (size_t)(nul - data - 1), nul + 1,
			   size - (size_t)(nul - data) - 1);
	} else {
		tok = fz_string(data + 1, size - 1);
	}
	sfs_err_init(&e);
	switch (sfs_auth_jwt(z->s, tok, &a, &e)) {
	case SFS_OK:
		/* accepted: a real user of the store, known scopes only */
		if (!(data[0] & 1) ||
		    (a.user != z->owner.user && a.user != z->peer.user &&
		     a.user != z->other.user) ||
		    (a.scopes & ~(unsigned)SFS_SCOPE_ALL))
			abort();
		break;
	case SFS_UNAUTHENTICATED:
		if (!e.message[0])
			abort();
		break;
	default:
		abort();
	}
	free(tok);
	return 0;
}
