/*
 * Unit tests of core/people.c and the rules it reads: user names unique
 * in a tenant ignoring case (and the migration that makes older stores
 * so), lists of tenants, users and keys (never a key's secret, the last
 * use to the minute), the tenant-scoped directory and the resolution of a
 * user by name or id. The migration test reaches into the database on
 * purpose, to build a store as an older version left it.
 */
#include <ctype.h>
#include <inttypes.h>
#include "db_i.h"
#include "fixture.h"
#include "speechfs/auth.h"
#include "speechfs/log.h"
#include "speechfs/people.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "testhelp.h"

struct fx {
	char *dir;
	struct sfs_store *s;
	char t1[SFS_ID_SIZE], t2[SFS_ID_SIZE];
	char ann[SFS_ID_SIZE], bob[SFS_ID_SIZE], cid[SFS_ID_SIZE];
};

/* Tenants acme (ann, Bob) and other (cid). */
static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, NULL))
		return -1;
	if (tfx_tenant(f->s, "acme", 0, 0, f->t1) ||
	    tfx_tenant(f->s, "other", 10, 0, f->t2) ||
	    tfx_user(f->s, f->t1, "ann", f->ann, NULL) ||
	    tfx_user(f->s, f->t1, "Bob", f->bob, NULL) ||
	    tfx_user(f->s, f->t2, "cid", f->cid, NULL)) {
		tfx_store_close(&f->dir, &f->s);
		return -1;
	}
	/* Bob downloads unlimited */
	return sfs_user_set_rate(f->s, f->bob, 0, NULL) ? -1 : 0;
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
}

/* Collect what a listing gives, as "a,b,c". */
struct names {
	char text[1024];
	int n;
};

static void add_name(struct names *ns, const char *name)
{
	size_t len = strlen(ns->text);

	snprintf(ns->text + len, sizeof(ns->text) - len, "%s%s",
		 ns->n++ ? "," : "", name);
}

static int tenant_cb(void *arg, const struct sfs_tenant_info *t)
{
	char buf[160];

	snprintf(buf, sizeof(buf), "%s:%" PRId64 ":%" PRId64, t->name, t->users,
		 t->max_bytes);
	add_name(arg, buf);
	return 0;
}

static int user_cb(void *arg, const struct sfs_user_info *u)
{
	add_name(arg, u->name);
	return 0;
}

static int stop_after_one(void *arg, const struct sfs_user_info *u)
{
	add_name(arg, u->name);
	return 1;
}

static void test_names_unique_in_a_tenant(void)
{
	char id[SFS_ID_SIZE];
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_user_create(f.s, f.t1, "ANN", -1, id, &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_USER_EXISTS);
	CHECK(strstr(e.message, "'ANN'") != NULL);
	sfs_err_init(&e);
	CHECK_ST(sfs_user_create(f.s, f.t1, "bob", -1, id, &e), SFS_CONFLICT);
	/* the same name in another tenant is another person */
	CHECK_ST(sfs_user_create(f.s, f.t2, "Ann", -1, id, NULL), SFS_OK);
	/* an unknown tenant stays "not found", not a conflict */
	sfs_err_init(&e);
	CHECK_ST(sfs_user_create(f.s, "00000000-0000-4000-8000-000000000000",
				 "ann", -1, id, &e),
		 SFS_NOT_FOUND);
	CHECK(e.reason == SFS_R_TENANT_NOT_FOUND);
	fx_close(&f);
}

static void test_lists(void)
{
	struct sfs_tenant_info ti;
	struct names ns;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	memset(&ns, 0, sizeof(ns));
	REQUIRE_ST(sfs_tenant_list(f.s, tenant_cb, &ns, NULL), SFS_OK);
	CHECK(!strcmp(ns.text, "acme:2:0,other:1:10"));
	REQUIRE_ST(sfs_tenant_get(f.s, f.t1, &ti, NULL), SFS_OK);
	CHECK(ti.users == 2);

	memset(&ns, 0, sizeof(ns));
	REQUIRE_ST(sfs_user_list(f.s, NULL, user_cb, &ns, NULL), SFS_OK);
	CHECK(!strcmp(ns.text, "ann,Bob,cid"));
	memset(&ns, 0, sizeof(ns));
	REQUIRE_ST(sfs_user_list(f.s, f.t2, user_cb, &ns, NULL), SFS_OK);
	CHECK(!strcmp(ns.text, "cid"));
	memset(&ns, 0, sizeof(ns));
	REQUIRE_ST(sfs_user_list(f.s, f.t1, stop_after_one, &ns, NULL), SFS_OK);
	CHECK(ns.n == 1);
	sfs_err_init(&e);
	CHECK_ST(sfs_user_list(f.s, "00000000-0000-4000-8000-000000000000",
			       user_cb, &ns, &e),
		 SFS_NOT_FOUND);
	CHECK(e.reason == SFS_R_TENANT_NOT_FOUND);
	CHECK_ST(sfs_user_list(f.s, "nonsense", user_cb, &ns, NULL),
		 SFS_NOT_FOUND);
	fx_close(&f);
}

static void test_get_and_find(void)
{
	struct sfs_user_info u;
	struct sfs_err e;
	struct fx f;
	char up[SFS_ID_SIZE];
	size_t i;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_user_get(f.s, f.bob, &u, NULL), SFS_OK);
	CHECK(!strcmp(u.name, "Bob") && !strcmp(u.tenant_id, f.t1));
	CHECK(!strcmp(u.tenant_name, "acme") && u.download_bps == 0);
	CHECK(u.created_ms > 0 && u.keys == 0);
	/* an id in upper case is the same id */
	for (i = 0; i < sizeof(up); i++)
		up[i] = (char)toupper((unsigned char)f.bob[i]);
	REQUIRE_ST(sfs_user_get(f.s, up, &u, NULL), SFS_OK);
	CHECK(!strcmp(u.id, f.bob));
	sfs_err_init(&e);
	CHECK_ST(sfs_user_get(f.s, f.t1, &u, &e), SFS_NOT_FOUND);
	CHECK(e.reason == SFS_R_USER_NOT_FOUND);
	CHECK_ST(sfs_user_get(f.s, "bob", &u, NULL), SFS_NOT_FOUND);

	REQUIRE_ST(sfs_user_find(f.s, f.t1, "BOB", &u, NULL), SFS_OK);
	CHECK(!strcmp(u.id, f.bob));
	CHECK_ST(sfs_user_find(f.s, f.t2, "bob", &u, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_user_find(f.s, f.t1, "", &u, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_user_find(f.s, "acme", "bob", &u, NULL), SFS_NOT_FOUND);
	fx_close(&f);
}

struct keys {
	int n;
	struct sfs_key_info k[4];
};

static int key_cb(void *arg, const struct sfs_key_info *k)
{
	struct keys *ks = arg;

	if (ks->n < 4)
		ks->k[ks->n++] = *k;
	return 0;
}

static void test_keys_listed_without_secrets(void)
{
	char key[SFS_API_KEY_SIZE], k1[SFS_ID_SIZE], k2[SFS_ID_SIZE];
	struct sfs_user_info u;
	struct sfs_actor a;
	struct keys ks;
	int64_t first;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_key_create(f.s, f.ann, SFS_SCOPE_READ, "laptop", key, k1,
				  NULL),
		   SFS_OK);
	REQUIRE_ST(
		sfs_key_create(f.s, f.ann, SFS_SCOPE_ALL, NULL, key, k2, NULL),
		SFS_OK);
	REQUIRE_ST(sfs_key_revoke(f.s, k1, NULL), SFS_OK);
	memset(&ks, 0, sizeof(ks));
	REQUIRE_ST(sfs_key_list(f.s, f.ann, key_cb, &ks, NULL), SFS_OK);
	REQUIRE(ks.n == 2);
	CHECK(!strcmp(ks.k[0].id, k1) && !strcmp(ks.k[0].label, "laptop"));
	CHECK(ks.k[0].scopes == SFS_SCOPE_READ && ks.k[0].revoked_ms > 0);
	CHECK(!strcmp(ks.k[1].id, k2) && ks.k[1].label[0] == '\0');
	CHECK(ks.k[1].scopes == SFS_SCOPE_ALL && ks.k[1].revoked_ms == 0);
	CHECK(ks.k[1].last_used_ms == 0 && ks.k[1].created_ms > 0);
	REQUIRE_ST(sfs_user_get(f.s, f.ann, &u, NULL), SFS_OK);
	CHECK(u.keys == 1);

	/* a use is noted, to the minute: another within it writes nothing */
	REQUIRE_ST(sfs_auth_api_key(f.s, key, &a, NULL), SFS_OK);
	memset(&ks, 0, sizeof(ks));
	REQUIRE_ST(sfs_key_list(f.s, f.ann, key_cb, &ks, NULL), SFS_OK);
	first = ks.k[1].last_used_ms;
	CHECK(first > 0);
	sfs_set_clock_offset_ms(30 * 1000);
	REQUIRE_ST(sfs_auth_api_key(f.s, key, &a, NULL), SFS_OK);
	memset(&ks, 0, sizeof(ks));
	REQUIRE_ST(sfs_key_list(f.s, f.ann, key_cb, &ks, NULL), SFS_OK);
	CHECK(ks.k[1].last_used_ms == first);
	sfs_set_clock_offset_ms(90 * 1000);
	REQUIRE_ST(sfs_auth_api_key(f.s, key, &a, NULL), SFS_OK);
	memset(&ks, 0, sizeof(ks));
	REQUIRE_ST(sfs_key_list(f.s, f.ann, key_cb, &ks, NULL), SFS_OK);
	CHECK(ks.k[1].last_used_ms >= first + 90 * 1000);
	sfs_set_clock_offset_ms(0);
	CHECK_ST(sfs_key_list(f.s, f.t1, key_cb, &ks, NULL), SFS_NOT_FOUND);
	fx_close(&f);
}

static int info_cb(void *arg, const struct sfs_user_info *u)
{
	struct names *ns = arg;

	/* the directory shows id and name, nothing more of another user */
	if (u->tenant_id[0] || u->created_ms || u->download_bps || u->keys ||
	    !u->id[0])
		add_name(ns, "LEAK");
	add_name(ns, u->name);
	return 0;
}

static void test_directory_is_the_tenant(void)
{
	char id[SFS_ID_SIZE];
	struct sfs_actor ann;
	struct names ns;
	int64_t total = -1;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_user_create(f.s, f.t1, "Annika", -1, id, NULL), SFS_OK);
	REQUIRE_ST(sfs_user_create(f.s, f.t1, "an_x%", -1, id, NULL), SFS_OK);
	REQUIRE_ST(sfs_user_create(f.s, f.t2, "anton", -1, id, NULL), SFS_OK);
	REQUIRE_ST(sfs_auth_user(f.s, f.ann, SFS_SCOPE_READ, &ann, NULL),
		   SFS_OK);
	memset(&ns, 0, sizeof(ns));
	REQUIRE_ST(sfs_user_directory(f.s, &ann, "AN", 0, 20, info_cb, &ns,
				      &total, NULL),
		   SFS_OK);
	CHECK(!strcmp(ns.text, "an_x%,ann,Annika"));
	CHECK(total == 3);
	/* LIKE's own characters are plain text in a prefix */
	memset(&ns, 0, sizeof(ns));
	REQUIRE_ST(sfs_user_directory(f.s, &ann, "an_", 0, 20, info_cb, &ns,
				      &total, NULL),
		   SFS_OK);
	CHECK(!strcmp(ns.text, "an_x%") && total == 1);
	memset(&ns, 0, sizeof(ns));
	REQUIRE_ST(sfs_user_directory(f.s, &ann, "a%", 0, 20, info_cb, &ns,
				      &total, NULL),
		   SFS_OK);
	CHECK(ns.n == 0 && total == 0);
	/* all, by pages */
	memset(&ns, 0, sizeof(ns));
	REQUIRE_ST(sfs_user_directory(f.s, &ann, NULL, 2, 2, info_cb, &ns,
				      &total, NULL),
		   SFS_OK);
	CHECK(!strcmp(ns.text, "Annika,Bob") && total == 4);
	CHECK_ST(sfs_user_directory(f.s, &ann, "", 0, 0, info_cb, &ns, NULL,
				    NULL),
		 SFS_INVALID);
	CHECK_ST(sfs_user_directory(f.s, &ann, "", -1, 5, info_cb, &ns, NULL,
				    NULL),
		 SFS_INVALID);
	fx_close(&f);
}

static void test_resolve_in_own_tenant(void)
{
	char id[SFS_ID_SIZE];
	struct sfs_actor ann;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_auth_user(f.s, f.ann, SFS_SCOPE_ALL, &ann, NULL),
		   SFS_OK);
	REQUIRE_ST(sfs_user_resolve(f.s, &ann, "bob", id, NULL), SFS_OK);
	CHECK(!strcmp(id, f.bob));
	REQUIRE_ST(sfs_user_resolve(f.s, &ann, f.bob, id, NULL), SFS_OK);
	CHECK(!strcmp(id, f.bob));
	/* another tenant's user, by id or by name, is not there */
	sfs_err_init(&e);
	CHECK_ST(sfs_user_resolve(f.s, &ann, f.cid, id, &e), SFS_NOT_FOUND);
	CHECK(e.reason == SFS_R_USER_NOT_FOUND);
	CHECK_ST(sfs_user_resolve(f.s, &ann, "cid", id, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_user_resolve(f.s, &ann, "", id, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_user_resolve(f.s, &ann, NULL, id, NULL), SFS_NOT_FOUND);
	fx_close(&f);
}

/*
 * A store as schema 5 left it: same names in a tenant are allowed there.
 * Opening it makes them unique; the first made keeps its name. (SQLite:
 * PostgreSQL stores begin at schema 6, where the rule is the database's.)
 */
static void test_migration_renames_duplicates(void)
{
	struct sfs_user_info u;
	struct fx f;
	char want[160];

	REQUIRE(fx_open(&f) == 0);
	if (th_is_pg()) {
		/*
		 * A PostgreSQL store is born at schema 6 (it has no schema 5
		 * to come from; later ones migrate it on): the rule holds in
		 * its database from the start, below the core's own check
		 */
		CHECK(tfx_sql_int(f.s, "SELECT version FROM schema_version") ==
		      DB_SCHEMA_VERSION);
		CHECK(tfx_sql(f.s,
			      "INSERT INTO user(uuid, tenant_id, name,"
			      " created_at) SELECT"
			      " 'aaaaaaaa-0000-4000-8000-000000000001', id,"
			      " 'ANN', 1 FROM tenant WHERE name = 'acme'") !=
		      0);
		CHECK(tfx_sql(f.s,
			      "INSERT INTO user(uuid, tenant_id, name,"
			      " created_at) SELECT"
			      " 'cccccccc-0000-4000-8000-000000000003', id,"
			      " 'ANN', 3 FROM tenant WHERE name = 'other'") ==
		      0);
		CHECK_ST(sfs_user_get(f.s,
				      "cccccccc-0000-4000-8000-000000000003",
				      &u, NULL),
			 SFS_OK);
		CHECK(!strcmp(u.name, "ANN"));
		fx_close(&f);
		return;
	}
	CHECK(tfx_sql(f.s,
		      "DROP INDEX user_tenant_name;"
		      " ALTER TABLE api_key DROP COLUMN last_used_at;"
		      /* what schemas 9 and 10 built on file_tag.owner_id */
		      " " DROP_V9_SQLITE " DROP INDEX file_tag_owner;"
		      " ALTER TABLE file_tag DROP COLUMN owner_id;"
		      " INSERT INTO user(uuid, tenant_id, name, created_at)"
		      " SELECT 'aaaaaaaa-0000-4000-8000-000000000001', id,"
		      " 'ANN', 1 FROM tenant WHERE name = 'acme';"
		      " INSERT INTO user(uuid, tenant_id, name, created_at)"
		      " SELECT 'bbbbbbbb-0000-4000-8000-000000000002', id,"
		      " 'Ann', 2 FROM tenant WHERE name = 'acme';"
		      " INSERT INTO user(uuid, tenant_id, name, created_at)"
		      " SELECT 'cccccccc-0000-4000-8000-000000000003', id,"
		      " 'ANN', 3 FROM tenant WHERE name = 'other';"
		      " PRAGMA user_version = 5") == 0);
	sfs_store_close(f.s);
	f.s = NULL;
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &f.s, NULL), SFS_OK);
	REQUIRE_ST(sfs_user_get(f.s, f.ann, &u, NULL), SFS_OK);
	CHECK(!strcmp(u.name, "ann")); /* the first made keeps its name */
	REQUIRE_ST(sfs_user_get(f.s, "aaaaaaaa-0000-4000-8000-000000000001", &u,
				NULL),
		   SFS_OK);
	CHECK(!strcmp(u.name, "ANN (aaaaaaaa)"));
	REQUIRE_ST(sfs_user_get(f.s, "bbbbbbbb-0000-4000-8000-000000000002", &u,
				NULL),
		   SFS_OK);
	CHECK(!strcmp(u.name, "Ann (bbbbbbbb)"));
	/* alone in its tenant: unchanged */
	REQUIRE_ST(sfs_user_get(f.s, "cccccccc-0000-4000-8000-000000000003", &u,
				NULL),
		   SFS_OK);
	snprintf(want, sizeof(want), "%s", "ANN");
	CHECK(!strcmp(u.name, want));
	/* and from now on the rule holds */
	CHECK_ST(sfs_user_create(f.s, f.t1, "ann (AAAAAAAA)", -1, want, NULL),
		 SFS_CONFLICT);
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_names_unique_in_a_tenant);
	RUN(test_lists);
	RUN(test_get_and_find);
	RUN(test_keys_listed_without_secrets);
	RUN(test_directory_is_the_tenant);
	RUN(test_resolve_in_own_tenant);
	RUN(test_migration_renames_duplicates);
	return th_report();
}
