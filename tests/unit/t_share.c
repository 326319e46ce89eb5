/*
 * Tests of direct shares (core/share.c) through the public API: a share is
 * made, updated and revoked by the file's owner alone; VIEW and EDIT give
 * what they say and a new permission replaces the old; the target must be
 * another user of the owner's tenant; another tenant's file is not found;
 * a deleted file takes no new shares but keeps its old ones; every call
 * needs its scope.
 */
#include <stdint.h>
#include <stdlib.h>
#include "fixture.h"
#include "speechfs/auth.h"
#include "speechfs/file.h"
#include "speechfs/log.h"
#include "speechfs/share.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "testhelp.h"

#define NO_SUCH_ID "0b8e6a62-5a7d-4d8e-9f1c-000000000000"

/*
 * Tenant one: alice owns the files, bob and carol are her colleagues;
 * tenant two: xavier.
 */
struct fx {
	char *dir;
	struct sfs_store *s;
	char t1[SFS_ID_SIZE], t2[SFS_ID_SIZE];
	char ua[SFS_ID_SIZE], ub[SFS_ID_SIZE], uc[SFS_ID_SIZE];
	char ux[SFS_ID_SIZE];
	struct sfs_actor a, b, c, x;
	char id[SFS_ID_SIZE];  /* alice's file */
	char id2[SFS_ID_SIZE]; /* another of alice's files */
};

static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, NULL))
		return -1;
	if (tfx_tenant(f->s, "one", 0, 0, f->t1) ||
	    tfx_tenant(f->s, "two", 0, 0, f->t2) ||
	    tfx_user(f->s, f->t1, "alice", f->ua, &f->a) ||
	    tfx_user(f->s, f->t1, "bob", f->ub, &f->b) ||
	    tfx_user(f->s, f->t1, "carol", f->uc, &f->c) ||
	    tfx_user(f->s, f->t2, "xavier", f->ux, &f->x))
		return -1;
	if (tfx_upload(f->s, &f->a, "talk", "words", 5, f->id, NULL) ||
	    tfx_upload(f->s, &f->a, "other", "more", 4, f->id2, NULL))
		return -1;
	return 0;
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
}

static enum sfs_status put(struct fx *f, const struct sfs_actor *a,
			   const char *id, const char *user, enum sfs_perm p,
			   struct sfs_share *out, int *created)
{
	int dummy;

	return sfs_share_put(f->s, a, id, user, p, out,
			     created ? created : &dummy, NULL);
}

/* How `a` may use file `id`: its perm, -status when it may not. */
static int perm_of(struct fx *f, const struct sfs_actor *a, const char *id)
{
	struct sfs_file g;
	enum sfs_status st;
	int p;

	st = sfs_file_get(f->s, a, id, &g, NULL);
	if (st)
		return -(int)st;
	p = (int)g.perm;
	sfs_file_release(&g);
	return p;
}

/* The number of shares of `id` as its owner lists them, -1 on error. */
static int nshares(struct fx *f, const char *id)
{
	struct sfs_share *v = NULL;
	size_t n = 0;

	if (sfs_share_list(f->s, &f->a, id, &v, &n, NULL))
		return -1;
	free(v);
	return (int)n;
}

static void upper(char *dst, const char *src)
{
	size_t i;

	for (i = 0; src[i]; i++)
		dst[i] = (char)(src[i] >= 'a' && src[i] <= 'z'
					? src[i] - 'a' + 'A'
					: src[i]);
	dst[i] = '\0';
}

static void test_put_and_update(void)
{
	struct sfs_share sh, again;
	struct sfs_file g;
	int created = -1;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	/* before: bob may not see the file */
	CHECK(perm_of(&f, &f.b, f.id) == -SFS_FORBIDDEN);

	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_VIEW, &sh, &created),
		   SFS_OK);
	CHECK(created == 1);
	CHECK(sfs_uuid_valid(sh.id));
	CHECK(!strcmp(sh.file_id, f.id) && !strcmp(sh.user_id, f.ub));
	CHECK(!strcmp(sh.created_by, f.ua));
	CHECK(sh.perm == SFS_PERM_VIEW);
	CHECK(sh.created_at > 0);
	REQUIRE_ST(sfs_file_get(f.s, &f.b, f.id, &g, NULL), SFS_OK);
	CHECK(g.access == SFS_ACCESS_DIRECT_SHARE && g.perm == SFS_PERM_VIEW);
	CHECK(!strcmp(g.shared_by, f.ua) && g.shared_at == sh.created_at);
	sfs_file_release(&g);

	/* the same user again: the permission changes, the share stays */
	created = -1;
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_EDIT, &again, &created),
		   SFS_OK);
	CHECK(created == 0);
	CHECK(!strcmp(again.id, sh.id));
	CHECK(again.perm == SFS_PERM_EDIT);
	CHECK(again.created_at == sh.created_at);
	CHECK(perm_of(&f, &f.b, f.id) == SFS_PERM_EDIT);
	CHECK(nshares(&f, f.id) == 1);
	/* and back, and the same permission twice: never a second share */
	CHECK_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_VIEW, NULL, &created),
		 SFS_OK);
	CHECK(created == 0);
	CHECK_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_VIEW, NULL, &created),
		 SFS_OK);
	CHECK(created == 0);
	CHECK(perm_of(&f, &f.b, f.id) == SFS_PERM_VIEW);
	CHECK(nshares(&f, f.id) == 1);

	/* the share is of this file only, and of bob only */
	CHECK(perm_of(&f, &f.b, f.id2) == -SFS_FORBIDDEN);
	CHECK(perm_of(&f, &f.c, f.id) == -SFS_FORBIDDEN);
	fx_close(&f);
}

/* VIEW reads; EDIT reads and changes metadata; neither does more. */
static void test_view_and_edit(void)
{
	struct sfs_file_update u = { .set = SFS_UPD_NAME, .name = "renamed" };
	char buf[16];
	size_t got = 0;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_VIEW, NULL, NULL),
		   SFS_OK);
	REQUIRE_ST(put(&f, &f.a, f.id, f.uc, SFS_PERM_EDIT, NULL, NULL),
		   SFS_OK);
	CHECK_ST(tfx_read(f.s, &f.b, f.id, SFS_CONTENT_ORIGINAL, buf,
			  sizeof(buf), &got),
		 SFS_OK);
	CHECK(got == 5 && !memcmp(buf, "words", 5));
	CHECK_ST(sfs_file_update(f.s, &f.b, f.id, &u, NULL, NULL),
		 SFS_FORBIDDEN);
	CHECK_ST(sfs_file_update(f.s, &f.c, f.id, &u, NULL, NULL), SFS_OK);
	CHECK_ST(tfx_read(f.s, &f.c, f.id, SFS_CONTENT_ORIGINAL, buf,
			  sizeof(buf), &got),
		 SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.b, f.id, 0, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_file_delete(f.s, &f.c, f.id, 0, NULL), SFS_FORBIDDEN);
	/* raising bob to EDIT lets him rename too */
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_EDIT, NULL, NULL),
		   SFS_OK);
	u.name = "again";
	CHECK_ST(sfs_file_update(f.s, &f.b, f.id, &u, NULL, NULL), SFS_OK);
	/* and lowering carol to VIEW stops her */
	REQUIRE_ST(put(&f, &f.a, f.id, f.uc, SFS_PERM_VIEW, NULL, NULL),
		   SFS_OK);
	CHECK_ST(sfs_file_update(f.s, &f.c, f.id, &u, NULL, NULL),
		 SFS_FORBIDDEN);
	fx_close(&f);
}

/* Only the owner manages shares, whatever share the others hold. */
static void test_owner_only(void)
{
	struct sfs_file_update pub = { .set = SFS_UPD_PUBLISH,
				       .publish = SFS_PUBLISH_INTERNAL };
	struct sfs_share *v = NULL, sh;
	size_t n = 9;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_EDIT, &sh, NULL), SFS_OK);
	/* bob holds EDIT: still not his to share, list or revoke */
	sfs_err_init(&e);
	CHECK_ST(sfs_share_put(f.s, &f.b, f.id, f.uc, SFS_PERM_VIEW, NULL,
			       &(int){ 0 }, &e),
		 SFS_FORBIDDEN);
	CHECK(e.reason == SFS_R_FORBIDDEN);
	CHECK_ST(sfs_share_list(f.s, &f.b, f.id, &v, &n, NULL), SFS_FORBIDDEN);
	CHECK(v == NULL && n == 0);
	CHECK_ST(sfs_share_revoke(f.s, &f.b, f.id, sh.id, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_share_revoke_user(f.s, &f.b, f.id, f.ub, NULL),
		 SFS_FORBIDDEN);
	/* carol, with no access, and then with INTERNAL's VIEW */
	CHECK_ST(put(&f, &f.c, f.id, f.ub, SFS_PERM_VIEW, NULL, NULL),
		 SFS_FORBIDDEN);
	REQUIRE_ST(sfs_file_update(f.s, &f.a, f.id, &pub, NULL, NULL), SFS_OK);
	CHECK(perm_of(&f, &f.c, f.id) == SFS_PERM_VIEW);
	CHECK_ST(put(&f, &f.c, f.id, f.ua, SFS_PERM_EDIT, NULL, NULL),
		 SFS_FORBIDDEN);
	CHECK_ST(sfs_share_list(f.s, &f.c, f.id, &v, &n, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_share_revoke(f.s, &f.c, f.id, sh.id, NULL), SFS_FORBIDDEN);
	/* nothing changed */
	CHECK(nshares(&f, f.id) == 1);
	CHECK(perm_of(&f, &f.b, f.id) == SFS_PERM_EDIT);
	fx_close(&f);
}

/* Another tenant's file does not exist for the actor: 404, never 403. */
static void test_other_tenant(void)
{
	char xid[SFS_ID_SIZE];
	struct sfs_share *v = NULL, sh;
	size_t n = 0;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_VIEW, &sh, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_share_put(f.s, &f.x, f.id, f.ux, SFS_PERM_VIEW, NULL,
			       &(int){ 0 }, &e),
		 SFS_NOT_FOUND);
	CHECK(e.reason == SFS_R_FILE_NOT_FOUND);
	CHECK_ST(sfs_share_list(f.s, &f.x, f.id, &v, &n, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_share_revoke(f.s, &f.x, f.id, sh.id, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_share_revoke_user(f.s, &f.x, f.id, f.ub, NULL),
		 SFS_NOT_FOUND);
	CHECK(nshares(&f, f.id) == 1);
	/* and alice cannot reach xavier's file, nor share hers with him */
	REQUIRE_ST(tfx_upload(f.s, &f.x, "x", "x", 1, xid, NULL), SFS_OK);
	CHECK_ST(put(&f, &f.a, xid, f.ub, SFS_PERM_VIEW, NULL, NULL),
		 SFS_NOT_FOUND);
	sfs_err_init(&e);
	CHECK_ST(sfs_share_put(f.s, &f.a, f.id, f.ux, SFS_PERM_VIEW, NULL,
			       &(int){ 0 }, &e),
		 SFS_INVALID);
	CHECK(tfx_has_field(&e, "userId", "not_found"));
	CHECK(perm_of(&f, &f.x, f.id) == -SFS_NOT_FOUND);
	/* files that do not exist at all */
	CHECK_ST(put(&f, &f.a, NO_SUCH_ID, f.ub, SFS_PERM_VIEW, NULL, NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(put(&f, &f.a, "not-a-uuid", f.ub, SFS_PERM_VIEW, NULL, NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_share_list(f.s, &f.a, NO_SUCH_ID, &v, &n, NULL),
		 SFS_NOT_FOUND);
	fx_close(&f);
}

/* A bad target or permission is a validation error, and changes nothing. */
static void test_bad_target(void)
{
	static const struct {
		const char *user;
		enum sfs_perm perm;
		const char *field, *type;
	} bad[] = {
		{ NULL, SFS_PERM_VIEW, "userId", "missing" },
		{ "", SFS_PERM_VIEW, "userId", "invalid" },
		{ "bob", SFS_PERM_VIEW, "userId", "invalid" },
		{ NO_SUCH_ID, SFS_PERM_VIEW, "userId", "not_found" },
		{ "ME", SFS_PERM_VIEW, "userId", "invalid" },
		{ "BOB", SFS_PERM_OWNER, "permission", "invalid" },
		{ "BOB", (enum sfs_perm)0, "permission", "invalid" },
		{ "BOB", (enum sfs_perm)99, "permission", "invalid" },
	};
	char up[SFS_ID_SIZE];
	struct sfs_share sh;
	struct sfs_err e;
	struct fx f;
	size_t i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *user = bad[i].user;

		if (user && !strcmp(user, "ME"))
			user = f.ua;
		else if (user && !strcmp(user, "BOB"))
			user = f.ub;
		sfs_err_init(&e);
		CHECK_ST(sfs_share_put(f.s, &f.a, f.id, user, bad[i].perm, NULL,
				       &(int){ 0 }, &e),
			 SFS_INVALID);
		if (!tfx_has_field(&e, bad[i].field, bad[i].type))
			fprintf(stderr, "  case %zu: %s\n", i, e.message);
		CHECK(tfx_has_field(&e, bad[i].field, bad[i].type));
	}
	CHECK(nshares(&f, f.id) == 0);
	CHECK(perm_of(&f, &f.b, f.id) == -SFS_FORBIDDEN);
	/* ids are case-insensitive on the way in */
	upper(up, f.ub);
	CHECK_ST(put(&f, &f.a, f.id, up, SFS_PERM_VIEW, &sh, NULL), SFS_OK);
	CHECK(!strcmp(sh.user_id, f.ub));
	fx_close(&f);
}

static void test_list(void)
{
	struct sfs_share *v = NULL;
	size_t n = 0;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_share_list(f.s, &f.a, f.id, &v, &n, NULL), SFS_OK);
	CHECK(n == 0);
	free(v);
	REQUIRE_ST(put(&f, &f.a, f.id, f.uc, SFS_PERM_EDIT, NULL, NULL),
		   SFS_OK);
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_VIEW, NULL, NULL),
		   SFS_OK);
	REQUIRE_ST(put(&f, &f.a, f.id2, f.ub, SFS_PERM_EDIT, NULL, NULL),
		   SFS_OK);
	/* in the order they were made; an update does not reorder */
	REQUIRE_ST(put(&f, &f.a, f.id, f.uc, SFS_PERM_VIEW, NULL, NULL),
		   SFS_OK);
	REQUIRE_ST(sfs_share_list(f.s, &f.a, f.id, &v, &n, NULL), SFS_OK);
	REQUIRE(n == 2);
	CHECK(!strcmp(v[0].user_id, f.uc) && v[0].perm == SFS_PERM_VIEW);
	CHECK(!strcmp(v[1].user_id, f.ub) && v[1].perm == SFS_PERM_VIEW);
	CHECK(!strcmp(v[0].file_id, f.id) && !strcmp(v[1].file_id, f.id));
	CHECK(!strcmp(v[0].created_by, f.ua));
	CHECK(strcmp(v[0].id, v[1].id) != 0);
	CHECK(v[0].created_at <= v[1].created_at);
	free(v);
	/* another file's shares are its own */
	REQUIRE_ST(sfs_share_list(f.s, &f.a, f.id2, &v, &n, NULL), SFS_OK);
	REQUIRE(n == 1);
	CHECK(!strcmp(v[0].user_id, f.ub) && v[0].perm == SFS_PERM_EDIT);
	free(v);
	fx_close(&f);
}

static void test_revoke(void)
{
	struct sfs_share sb, sc, other;
	char up[SFS_ID_SIZE];
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_EDIT, &sb, NULL), SFS_OK);
	REQUIRE_ST(put(&f, &f.a, f.id, f.uc, SFS_PERM_VIEW, &sc, NULL), SFS_OK);
	REQUIRE_ST(put(&f, &f.a, f.id2, f.ub, SFS_PERM_VIEW, &other, NULL),
		   SFS_OK);

	/* a share of another file is not this file's */
	sfs_err_init(&e);
	CHECK_ST(sfs_share_revoke(f.s, &f.a, f.id, other.id, &e),
		 SFS_NOT_FOUND);
	CHECK(e.reason == SFS_R_SHARE_NOT_FOUND);
	CHECK_ST(sfs_share_revoke(f.s, &f.a, f.id, NO_SUCH_ID, NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_share_revoke(f.s, &f.a, f.id, "nope", NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_share_revoke(f.s, &f.a, f.id, NULL, NULL), SFS_NOT_FOUND);
	CHECK(nshares(&f, f.id) == 2);

	/* by share id (in upper case too): bob loses the file at once */
	upper(up, sb.id);
	CHECK_ST(sfs_share_revoke(f.s, &f.a, f.id, up, NULL), SFS_OK);
	CHECK(perm_of(&f, &f.b, f.id) == -SFS_FORBIDDEN);
	CHECK(perm_of(&f, &f.b, f.id2) == SFS_PERM_VIEW);
	CHECK(perm_of(&f, &f.c, f.id) == SFS_PERM_VIEW);
	sfs_err_init(&e);
	CHECK_ST(sfs_share_revoke(f.s, &f.a, f.id, sb.id, &e), SFS_NOT_FOUND);
	CHECK(e.reason == SFS_R_SHARE_NOT_FOUND);

	/* by user id */
	sfs_err_init(&e);
	CHECK_ST(sfs_share_revoke_user(f.s, &f.a, f.id, f.ub, &e),
		 SFS_NOT_FOUND);
	CHECK(e.reason == SFS_R_SHARE_NOT_FOUND);
	CHECK_ST(sfs_share_revoke_user(f.s, &f.a, f.id, "nope", NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_share_revoke_user(f.s, &f.a, f.id, NULL, NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_share_revoke_user(f.s, &f.a, f.id, f.ua, NULL),
		 SFS_NOT_FOUND);
	upper(up, f.uc);
	CHECK_ST(sfs_share_revoke_user(f.s, &f.a, f.id, up, NULL), SFS_OK);
	CHECK(perm_of(&f, &f.c, f.id) == -SFS_FORBIDDEN);
	CHECK(nshares(&f, f.id) == 0);
	CHECK(nshares(&f, f.id2) == 1);

	/* a revoked user can be given a share anew */
	CHECK_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_VIEW, &sb, NULL), SFS_OK);
	CHECK(perm_of(&f, &f.b, f.id) == SFS_PERM_VIEW);
	fx_close(&f);
}

/*
 * A deleted file takes no new share and is gone for those it was shared
 * with; its owner still sees and revokes its shares, and a restore gives
 * the remaining ones back.
 */
static void test_deleted_file(void)
{
	struct sfs_share sh;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_EDIT, &sh, NULL), SFS_OK);
	REQUIRE_ST(put(&f, &f.a, f.id, f.uc, SFS_PERM_VIEW, NULL, NULL),
		   SFS_OK);
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, f.id, 0, NULL), SFS_OK);
	CHECK(perm_of(&f, &f.b, f.id) == -SFS_NOT_FOUND);
	sfs_err_init(&e);
	CHECK_ST(sfs_share_put(f.s, &f.a, f.id, f.ub, SFS_PERM_VIEW, NULL,
			       &(int){ 0 }, &e),
		 SFS_CONFLICT);
	CHECK(e.reason == SFS_R_FILE_DELETED);
	CHECK(nshares(&f, f.id) == 2);
	/* the share holders cannot reach it to act on its shares */
	CHECK_ST(sfs_share_list(f.s, &f.b, f.id, &(struct sfs_share *){ NULL },
				&(size_t){ 0 }, NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_share_revoke_user(f.s, &f.a, f.id, f.uc, NULL), SFS_OK);
	CHECK(nshares(&f, f.id) == 1);
	REQUIRE_ST(sfs_file_restore(f.s, &f.a, f.id, NULL, NULL), SFS_OK);
	CHECK(perm_of(&f, &f.b, f.id) == SFS_PERM_EDIT);
	CHECK(perm_of(&f, &f.c, f.id) == -SFS_FORBIDDEN);
	/* purged: no share either */
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, f.id, 1, NULL), SFS_OK);
	CHECK_ST(put(&f, &f.a, f.id, f.uc, SFS_PERM_VIEW, NULL, NULL),
		 SFS_CONFLICT);
	CHECK(perm_of(&f, &f.b, f.id) == -SFS_NOT_FOUND);
	fx_close(&f);
}

/* put and revoke need the share scope; list the read scope. */
static void test_scopes(void)
{
	struct sfs_share *v = NULL, sh;
	size_t n = 0;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_VIEW, &sh, NULL), SFS_OK);
	f.a.scopes = SFS_SCOPE_ALL & ~SFS_SCOPE_SHARE;
	sfs_err_init(&e);
	CHECK_ST(sfs_share_put(f.s, &f.a, f.id, f.uc, SFS_PERM_VIEW, NULL,
			       &(int){ 0 }, &e),
		 SFS_FORBIDDEN);
	CHECK(e.reason == SFS_R_INSUFFICIENT_SCOPE);
	sfs_err_init(&e);
	CHECK_ST(sfs_share_revoke(f.s, &f.a, f.id, sh.id, &e), SFS_FORBIDDEN);
	CHECK(e.reason == SFS_R_INSUFFICIENT_SCOPE);
	CHECK_ST(sfs_share_revoke_user(f.s, &f.a, f.id, f.ub, NULL),
		 SFS_FORBIDDEN);
	CHECK_ST(sfs_share_list(f.s, &f.a, f.id, &v, &n, NULL), SFS_OK);
	CHECK(n == 1);
	free(v);
	f.a.scopes = SFS_SCOPE_SHARE;
	sfs_err_init(&e);
	CHECK_ST(sfs_share_list(f.s, &f.a, f.id, &v, &n, &e), SFS_FORBIDDEN);
	CHECK(e.reason == SFS_R_INSUFFICIENT_SCOPE);
	CHECK_ST(put(&f, &f.a, f.id, f.uc, SFS_PERM_EDIT, NULL, NULL), SFS_OK);
	CHECK_ST(sfs_share_revoke(f.s, &f.a, f.id, sh.id, NULL), SFS_OK);
	f.a.scopes = SFS_SCOPE_ALL;
	CHECK(nshares(&f, f.id) == 1);
	CHECK(perm_of(&f, &f.b, f.id) == -SFS_FORBIDDEN);
	CHECK(perm_of(&f, &f.c, f.id) == SFS_PERM_EDIT);
	fx_close(&f);
}

struct seen {
	int64_t owner, ino;
	int n;
};

static void on_change(void *arg, int64_t seq, int64_t file_ino, int64_t owner,
		      const char *dir)
{
	struct seen *w = arg;

	(void)seq;
	(void)dir;
	if (owner == w->owner && file_ino == w->ino)
		w->n++;
}

/* The changes since `since` that concern user `owner` and file `ino`. */
static int changes_for(struct fx *f, int64_t since, int64_t owner, int64_t ino)
{
	struct seen w = { owner, ino, 0 };
	int64_t last = 0;

	if (sfs_store_changes(f->s, since, on_change, &w, &last, NULL))
		return -1;
	return w.n;
}

/*
 * Every grant, new permission and revocation is a change of the file for
 * the user it concerns: the mounts of that user learn of it by the change
 * feed alone (a new permission changes the mode bits they show).
 */
static void test_changes_seen(void)
{
	int64_t seq = 0, ino;
	struct sfs_file g;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, f.id, &g, NULL), SFS_OK);
	ino = g.ino;
	sfs_file_release(&g);
	REQUIRE_ST(sfs_store_change_seq(f.s, &seq, NULL), SFS_OK);
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_VIEW, NULL, NULL),
		   SFS_OK);
	CHECK(changes_for(&f, seq, f.b.user, ino) == 1);
	REQUIRE_ST(sfs_store_change_seq(f.s, &seq, NULL), SFS_OK);
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_EDIT, NULL, NULL),
		   SFS_OK);
	CHECK(changes_for(&f, seq, f.b.user, ino) == 1);
	/* the same permission again changes nothing */
	REQUIRE_ST(sfs_store_change_seq(f.s, &seq, NULL), SFS_OK);
	REQUIRE_ST(put(&f, &f.a, f.id, f.ub, SFS_PERM_EDIT, NULL, NULL),
		   SFS_OK);
	CHECK(changes_for(&f, seq, f.b.user, ino) == 0);
	REQUIRE_ST(sfs_store_change_seq(f.s, &seq, NULL), SFS_OK);
	REQUIRE_ST(sfs_share_revoke_user(f.s, &f.a, f.id, f.ub, NULL), SFS_OK);
	CHECK(changes_for(&f, seq, f.b.user, ino) == 1);
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_put_and_update);
	RUN(test_view_and_edit);
	RUN(test_owner_only);
	RUN(test_other_tenant);
	RUN(test_bad_target);
	RUN(test_list);
	RUN(test_revoke);
	RUN(test_deleted_file);
	RUN(test_scopes);
	RUN(test_changes_seen);
	return th_report();
}
