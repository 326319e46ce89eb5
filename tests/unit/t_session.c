/*
 * Tests of core/session.c: sign-in sessions made from API keys, their
 * tokens stored hashed, idle and absolute expiry on a stepped clock,
 * sign-out, a revoked key ending its sessions, CSRF tokens, and the
 * janitor forgetting ended sessions. Looks into the session table on
 * purpose (that tokens are stored hashed, that rows are pruned).
 */
#include "speechfs/auth.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/session.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "fixture.h"
#include "testhelp.h"

struct fx {
	char *dir;
	struct sfs_store *s;
	char tenant[SFS_ID_SIZE], user[SFS_ID_SIZE];
	char key[SFS_API_KEY_SIZE], key_id[SFS_ID_SIZE];
	struct sfs_config cfg;
};

static int fx_open(struct fx *f, unsigned scopes)
{
	struct sfs_actor a;

	memset(f, 0, sizeof(*f));
	sfs_config_init(&f->cfg);
	f->cfg.session_idle_s = 600;
	f->cfg.session_max_s = 3600;
	f->cfg.janitor_interval_ms = 20;
	sfs_set_clock_offset_ms(0);
	if (tfx_store(&f->dir, &f->s, &f->cfg) ||
	    tfx_tenant(f->s, "acme", 0, 0, f->tenant) ||
	    tfx_user(f->s, f->tenant, "alice", f->user, &a))
		return -1;
	return sfs_key_create(f->s, f->user, scopes, NULL, f->key, f->key_id,
			      NULL) == SFS_OK
		       ? 0
		       : -1;
}

static void fx_close(struct fx *f)
{
	sfs_set_clock_offset_ms(0);
	tfx_store_close(&f->dir, &f->s);
}

static void test_sign_in(void)
{
	char token[SFS_SESSION_TOKEN_SIZE];
	struct sfs_session ses, seen;
	struct sfs_actor a, b;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f, SFS_SCOPE_READ | SFS_SCOPE_WRITE) == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_session_create(f.s, f.key, token, &ses, &a, &e), SFS_OK);
	CHECK(strncmp(token, "sfss_", 5) == 0 && strlen(token) == 69);
	CHECK(strcmp(a.user_id, f.user) == 0);
	CHECK(a.scopes == (SFS_SCOPE_READ | SFS_SCOPE_WRITE));
	CHECK(ses.expires_ms - ses.created_ms == 3600 * 1000);
	CHECK(ses.idle_until_ms - ses.created_ms == 600 * 1000);
	CHECK(sfs_uuid_valid(ses.id));

	CHECK_ST(sfs_auth_session(f.s, token, &b, &seen, &e), SFS_OK);
	CHECK(strcmp(b.user_id, f.user) == 0 && b.user == a.user);
	CHECK(strcmp(b.tenant_id, f.tenant) == 0);
	CHECK(b.scopes == a.scopes);
	CHECK(strcmp(seen.id, ses.id) == 0);

	/* only the hash is stored: the token is nowhere in the table */
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM session") == 1);
	CHECK(tfx_sql_int(f.s, "SELECT length(hash) FROM session") == 32);
	CHECK(tfx_sql_rows_holding(f.s, "SELECT hash FROM session", "sfss_") ==
	      0);
	CHECK(tfx_sql_rows_holding(f.s, "SELECT hash FROM session",
				   token + 5) == 0);
	CHECK(tfx_sql_rows_holding(f.s, "SELECT uuid FROM session", ses.id) ==
	      1); /* (the look itself finds what is there) */
	fx_close(&f);
}

static void test_bad_keys_and_tokens(void)
{
	char token[SFS_SESSION_TOKEN_SIZE], other[SFS_SESSION_TOKEN_SIZE];
	static const char *const junk[] = {
		"",
		"sfss_",
		"sfss_0123",
		"sfss_"
		"0000000000000000000000000000000000000000000000000000000000"
		"000000",
		"SFSS_"
		"0000000000000000000000000000000000000000000000000000000000"
		"000000",
		"sfss_"
		"000000000000000000000000000000000000000000000000000000000Z"
		"000000",
	};
	struct sfs_actor a;
	struct sfs_err e;
	struct fx f;
	size_t i;

	REQUIRE(fx_open(&f, SFS_SCOPE_ALL) == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_session_create(f.s, "sfs_nope", token, NULL, NULL, &e),
		 SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_session_create(f.s, NULL, token, NULL, NULL, &e),
		 SFS_UNAUTHENTICATED);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM session") == 0);
	for (i = 0; i < ARRAY_SIZE(junk); i++) {
		sfs_err_init(&e);
		CHECK_ST(sfs_auth_session(f.s, junk[i], &a, NULL, &e),
			 SFS_UNAUTHENTICATED);
		CHECK(strcmp(sfs_err_type(&e), "invalid_session") == 0);
		CHECK(a.user == 0 && a.scopes == 0);
	}
	CHECK_ST(sfs_auth_session(f.s, NULL, &a, NULL, &e),
		 SFS_UNAUTHENTICATED);
	/* a well-formed token of no session; one token never opens another */
	REQUIRE_ST(sfs_session_create(f.s, f.key, token, NULL, NULL, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_session_create(f.s, f.key, other, NULL, NULL, &e),
		   SFS_OK);
	CHECK(strcmp(token, other) != 0);
	token[10] = token[10] == 'a' ? 'b' : 'a';
	CHECK_ST(sfs_auth_session(f.s, token, &a, NULL, &e),
		 SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_auth_session(f.s, other, &a, NULL, &e), SFS_OK);
	fx_close(&f);
}

static void test_idle_and_absolute_expiry(void)
{
	char token[SFS_SESSION_TOKEN_SIZE];
	struct sfs_session ses, seen;
	struct sfs_actor a;
	struct sfs_err e;
	struct fx f;
	int64_t t;

	REQUIRE(fx_open(&f, SFS_SCOPE_ALL) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_session_create(f.s, f.key, token, &ses, NULL, &e),
		   SFS_OK);
	/* used every 9 minutes, it lives on past its first idle deadline */
	for (t = 9; t <= 54; t += 9) {
		sfs_set_clock_offset_ms(t * 60 * 1000);
		CHECK_ST(sfs_auth_session(f.s, token, &a, &seen, &e), SFS_OK);
		CHECK(seen.idle_until_ms > ses.idle_until_ms);
		CHECK(seen.idle_until_ms <= ses.expires_ms);
	}
	/* never past the absolute deadline, used or not */
	sfs_set_clock_offset_ms(3600 * 1000 + 1000);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_session(f.s, token, &a, NULL, &e),
		 SFS_UNAUTHENTICATED);
	CHECK(strcmp(sfs_err_type(&e), "session_expired") == 0);

	/* left alone past the idle deadline: expired */
	sfs_set_clock_offset_ms(0);
	REQUIRE_ST(sfs_session_create(f.s, f.key, token, &ses, NULL, &e),
		   SFS_OK);
	sfs_set_clock_offset_ms(599 * 1000);
	CHECK_ST(sfs_auth_session(f.s, token, &a, NULL, &e), SFS_OK);
	/* that use moved the deadline to 599 + 600 s */
	sfs_set_clock_offset_ms(1198 * 1000);
	CHECK_ST(sfs_auth_session(f.s, token, &a, NULL, &e), SFS_OK);
	sfs_set_clock_offset_ms((1198 + 601) * 1000);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_session(f.s, token, &a, NULL, &e),
		 SFS_UNAUTHENTICATED);
	CHECK(strcmp(sfs_err_type(&e), "session_expired") == 0);
	fx_close(&f);
}

static void test_sign_out(void)
{
	char token[SFS_SESSION_TOKEN_SIZE], other[SFS_SESSION_TOKEN_SIZE];
	struct sfs_actor a;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f, SFS_SCOPE_ALL) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_session_create(f.s, f.key, token, NULL, NULL, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_session_create(f.s, f.key, other, NULL, NULL, &e),
		   SFS_OK);
	CHECK_ST(sfs_session_revoke(f.s, token, &e), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_auth_session(f.s, token, &a, NULL, &e),
		 SFS_UNAUTHENTICATED);
	CHECK(strcmp(sfs_err_type(&e), "invalid_session") == 0);
	/* twice is no session; the other session of the key lives on */
	CHECK_ST(sfs_session_revoke(f.s, token, &e), SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_session_revoke(f.s, "sfs_junk", &e), SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_auth_session(f.s, other, &a, NULL, &e), SFS_OK);
	fx_close(&f);
}

static void test_key_revoked(void)
{
	char token[SFS_SESSION_TOKEN_SIZE];
	struct sfs_actor a;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f, SFS_SCOPE_ALL) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_session_create(f.s, f.key, token, NULL, NULL, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_key_revoke(f.s, f.key_id, &e), SFS_OK);
	CHECK_ST(sfs_auth_session(f.s, token, &a, NULL, &e),
		 SFS_UNAUTHENTICATED);
	CHECK_ST(sfs_session_create(f.s, f.key, token, NULL, NULL, &e),
		 SFS_UNAUTHENTICATED);
	fx_close(&f);
}

static void test_csrf(void)
{
	char token[SFS_SESSION_TOKEN_SIZE], other[SFS_SESSION_TOKEN_SIZE];
	char c1[SFS_CSRF_SIZE], c2[SFS_CSRF_SIZE], c3[SFS_CSRF_SIZE];
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f, SFS_SCOPE_ALL) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_session_create(f.s, f.key, token, NULL, NULL, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_session_create(f.s, f.key, other, NULL, NULL, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_session_csrf(f.s, token, c1, &e), SFS_OK);
	REQUIRE_ST(sfs_session_csrf(f.s, token, c2, &e), SFS_OK);
	REQUIRE_ST(sfs_session_csrf(f.s, other, c3, &e), SFS_OK);
	CHECK(strlen(c1) == 64 && strcmp(c1, c2) == 0);
	CHECK(strcmp(c1, c3) != 0);
	CHECK(sfs_session_csrf_ok(f.s, token, c1));
	CHECK(!sfs_session_csrf_ok(f.s, token, c3));
	CHECK(!sfs_session_csrf_ok(f.s, other, c1));
	CHECK(!sfs_session_csrf_ok(f.s, token, NULL));
	CHECK(!sfs_session_csrf_ok(f.s, token, ""));
	c2[63] = c2[63] == '0' ? '1' : '0';
	CHECK(!sfs_session_csrf_ok(f.s, token, c2));
	CHECK_ST(sfs_session_csrf(f.s, "nope", c1, &e), SFS_UNAUTHENTICATED);
	fx_close(&f);
}

static void test_janitor_forgets(void)
{
	char t1[SFS_SESSION_TOKEN_SIZE], t2[SFS_SESSION_TOKEN_SIZE];
	char t3[SFS_SESSION_TOKEN_SIZE];
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f, SFS_SCOPE_ALL) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_session_create(f.s, f.key, t1, NULL, NULL, &e), SFS_OK);
	REQUIRE_ST(sfs_session_create(f.s, f.key, t2, NULL, NULL, &e), SFS_OK);
	REQUIRE_ST(sfs_session_revoke(f.s, t2, &e), SFS_OK);
	/* a day and a half on: both have ended a day ago; a new one lives */
	sfs_set_clock_offset_ms((int64_t)36 * 3600 * 1000);
	REQUIRE_ST(sfs_session_create(f.s, f.key, t3, NULL, NULL, &e), SFS_OK);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM session") == 3);
	REQUIRE_ST(sfs_workers_start(f.s, 1, &e), SFS_OK);
	/* the janitor looks every 20 ms: wait for it, 60 s at most */
	for (int i = 0; i < 6000 && tfx_sql_int(f.s, "SELECT count(*) FROM"
						     " session") != 1;
	     i++)
		usleep(10 * 1000);
	sfs_workers_stop(f.s);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM session") == 1);
	CHECK_ST(sfs_auth_session(f.s, t3, &(struct sfs_actor){ 0 }, NULL, &e),
		 SFS_OK);
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_sign_in);
	RUN(test_bad_keys_and_tokens);
	RUN(test_idle_and_absolute_expiry);
	RUN(test_sign_out);
	RUN(test_key_revoked);
	RUN(test_csrf);
	RUN(test_janitor_forgets);
	return th_report();
}
