/*
 * Tests of the file model's rules that front ends ask core for: what an
 * actor may do to a file (sfs_file_allows), whether content can be read
 * (sfs_file_content_state, sfs_content_state_check, and sfs_file_open
 * giving the same answer), which listing a file belongs in
 * (sfs_file_listed) and what a share may grant (sfs_share_perm_check).
 * Through the public API only.
 */
#include <stdint.h>
#include "speechfs/auth.h"
#include "speechfs/blob.h"
#include "speechfs/file.h"
#include "speechfs/query.h"
#include "speechfs/share.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "fixture.h"
#include "testhelp.h"

struct fx {
	char *dir;
	struct sfs_store *s;
	char t[SFS_ID_SIZE], ua[SFS_ID_SIZE], ub[SFS_ID_SIZE];
	char uc[SFS_ID_SIZE], ud[SFS_ID_SIZE];
	struct sfs_actor a, b, c, d; /* owner, EDIT, VIEW, nothing */
	char id[SFS_ID_SIZE];	     /* a's file "/m/f", shared with b, c */
};

static int fx_open(struct fx *f)
{
	struct sfs_file_spec sp = { .name = "f", .path = "/m/" };
	struct sfs_stage *st = NULL;
	struct sfs_file out;
	struct sfs_err e;
	int created;

	memset(f, 0, sizeof(*f));
	sfs_err_init(&e);
	if (tfx_store(&f->dir, &f->s, NULL) ||
	    tfx_tenant(f->s, "t", 0, 0, f->t) ||
	    tfx_user(f->s, f->t, "alice", f->ua, &f->a) ||
	    tfx_user(f->s, f->t, "bob", f->ub, &f->b) ||
	    tfx_user(f->s, f->t, "carol", f->uc, &f->c) ||
	    tfx_user(f->s, f->t, "dave", f->ud, &f->d))
		return -1;
	if (sfs_stage_new(f->s, &st, &e) ||
	    sfs_stage_write(st, "data", 4, &e) ||
	    sfs_file_create(f->s, &f->a, &sp, st, &out, &e)) {
		fprintf(stderr, "fixture: %s\n", e.message);
		sfs_stage_free(st);
		return -1;
	}
	sfs_stage_free(st);
	memcpy(f->id, out.id, sizeof(f->id));
	sfs_file_release(&out);
	if (sfs_share_put(f->s, &f->a, f->id, f->ub, SFS_PERM_EDIT, NULL,
			  &created, &e) ||
	    sfs_share_put(f->s, &f->a, f->id, f->uc, SFS_PERM_VIEW, NULL,
			  &created, &e)) {
		fprintf(stderr, "fixture: %s\n", e.message);
		return -1;
	}
	return 0;
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
}

/* sfs_file_allows of act for actor a on the fixture's file. */
static int allows(struct fx *f, const struct sfs_actor *a, enum sfs_action act,
		  struct sfs_err *e)
{
	struct sfs_file g;
	enum sfs_status st;

	st = sfs_file_get(f->s, a, f->id, &g, NULL);
	if (st)
		return -(int)st;
	st = sfs_file_allows(&g, act, e);
	sfs_file_release(&g);
	return (int)st;
}

static void test_allows(void)
{
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	CHECK_ST(allows(&f, &f.a, SFS_ACT_READ, NULL), SFS_OK);
	CHECK_ST(allows(&f, &f.a, SFS_ACT_WRITE, NULL), SFS_OK);
	CHECK_ST(allows(&f, &f.a, SFS_ACT_DELETE, NULL), SFS_OK);
	CHECK_ST(allows(&f, &f.a, SFS_ACT_SHARE, NULL), SFS_OK);
	CHECK_ST(allows(&f, &f.b, SFS_ACT_READ, NULL), SFS_OK);
	CHECK_ST(allows(&f, &f.b, SFS_ACT_WRITE, NULL), SFS_OK);
	CHECK_ST(allows(&f, &f.b, SFS_ACT_DELETE, NULL), SFS_FORBIDDEN);
	CHECK_ST(allows(&f, &f.b, SFS_ACT_SHARE, NULL), SFS_FORBIDDEN);
	CHECK_ST(allows(&f, &f.c, SFS_ACT_READ, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(allows(&f, &f.c, SFS_ACT_WRITE, &e), SFS_FORBIDDEN);
	CHECK(e.reason == SFS_R_FORBIDDEN);
	/* no share and not published: not even loaded */
	CHECK_ST(allows(&f, &f.d, SFS_ACT_READ, NULL), -SFS_FORBIDDEN);

	/* the same answer the changes themselves give */
	CHECK_ST(sfs_file_sync(f.s, &f.c, f.id, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_file_sync(f.s, &f.b, f.id, NULL), SFS_OK);

	/* a deleted file: the owner may no longer write it */
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, f.id, 0, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(allows(&f, &f.a, SFS_ACT_WRITE, &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_FILE_DELETED);
	CHECK_ST(allows(&f, &f.a, SFS_ACT_READ, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_sync(f.s, &f.a, f.id, &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_FILE_DELETED);
	fx_close(&f);
}

static void test_content_state(void)
{
	struct sfs_file g;
	struct sfs_err e;

	sfs_file_init(&g);
	/* an upload (no ingestion) is readable */
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_ORIGINAL) == SFS_CS_READY);
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_LISTENING) == SFS_CS_NONE);
	g.ingestion = SFS_JS_PENDING;
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_ORIGINAL) ==
	      SFS_CS_PENDING);
	g.ingestion = SFS_JS_PROCESSING;
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_ORIGINAL) ==
	      SFS_CS_PROCESSING);
	g.ingestion = SFS_JS_FAILED;
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_ORIGINAL) ==
	      SFS_CS_FAILED);
	g.ingestion = SFS_JS_COMPLETED;
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_ORIGINAL) == SFS_CS_READY);
	g.la.status = SFS_JS_COMPLETED;
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_LISTENING) ==
	      SFS_CS_READY);
	g.la.deleted = 1;
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_LISTENING) ==
	      SFS_CS_DELETED);
	g.la.purged = 1;
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_LISTENING) ==
	      SFS_CS_PURGED);
	g.discarded = 1;
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_ORIGINAL) ==
	      SFS_CS_DISCARDED);
	/* the file's own deletion outranks the rest */
	g.deleted = 1;
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_ORIGINAL) ==
	      SFS_CS_DELETED);
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_LISTENING) ==
	      SFS_CS_DELETED);
	g.purged = 1;
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_ORIGINAL) ==
	      SFS_CS_PURGED);

	/* statuses and reasons */
	CHECK_ST(sfs_content_state_check(SFS_CS_READY, SFS_CONTENT_ORIGINAL,
					 NULL),
		 SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_content_state_check(SFS_CS_FAILED, SFS_CONTENT_ORIGINAL,
					 &e),
		 SFS_NOT_READY);
	CHECK(e.reason == SFS_R_IMPORT_FAILED);
	sfs_err_init(&e);
	CHECK_ST(sfs_content_state_check(SFS_CS_PENDING, SFS_CONTENT_ORIGINAL,
					 &e),
		 SFS_NOT_READY);
	CHECK(e.reason == SFS_R_INGESTION_NOT_COMPLETED);
	sfs_err_init(&e);
	CHECK_ST(sfs_content_state_check(SFS_CS_FAILED, SFS_CONTENT_LISTENING,
					 &e),
		 SFS_NOT_READY);
	CHECK(e.reason == SFS_R_LISTENING_AUDIO_NOT_READY);
	sfs_err_init(&e);
	CHECK_ST(
		sfs_content_state_check(SFS_CS_NONE, SFS_CONTENT_LISTENING, &e),
		SFS_NOT_READY);
	CHECK(e.reason == SFS_R_LISTENING_AUDIO_NOT_READY);
	sfs_err_init(&e);
	CHECK_ST(sfs_content_state_check(SFS_CS_DISCARDED, SFS_CONTENT_ORIGINAL,
					 &e),
		 SFS_GONE);
	CHECK(e.reason == SFS_R_CONTENT_DISCARDED);
	sfs_err_init(&e);
	CHECK_ST(sfs_content_state_check(SFS_CS_PURGED, SFS_CONTENT_ORIGINAL,
					 &e),
		 SFS_GONE);
	CHECK(e.reason == SFS_R_FILE_DELETED);
	sfs_err_init(&e);
	CHECK_ST(sfs_content_state_check(SFS_CS_DELETED, SFS_CONTENT_LISTENING,
					 &e),
		 SFS_GONE);
	CHECK(e.reason == SFS_R_LISTENING_AUDIO_DELETED);
	g.purged = g.deleted = 0; /* nothing of g was allocated */
}

/* sfs_file_open's status and reason for actor a. */
static int open_reason(struct fx *f, enum sfs_content which,
		       enum sfs_reason *why)
{
	struct sfs_err e;
	struct sfs_blob *b = NULL;
	enum sfs_status st;

	sfs_err_init(&e);
	st = sfs_file_open(f->s, &f->a, f->id, which, 0, &b, NULL, &e);
	sfs_blob_close(b);
	*why = e.reason;
	return (int)st;
}

static void test_open_agrees(void)
{
	enum sfs_reason why;
	struct sfs_file g;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	CHECK_ST(open_reason(&f, SFS_CONTENT_ORIGINAL, &why), SFS_OK);
	CHECK_ST(open_reason(&f, SFS_CONTENT_LISTENING, &why), SFS_NOT_READY);
	CHECK(why == SFS_R_LISTENING_AUDIO_NOT_READY);
	REQUIRE_ST(sfs_file_discard(f.s, &f.a, f.id, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, f.id, &g, NULL), SFS_OK);
	CHECK(sfs_file_content_state(&g, SFS_CONTENT_ORIGINAL) ==
	      SFS_CS_DISCARDED);
	sfs_file_release(&g);
	CHECK_ST(open_reason(&f, SFS_CONTENT_ORIGINAL, &why), SFS_GONE);
	CHECK(why == SFS_R_CONTENT_DISCARDED);
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, f.id, 1, NULL), SFS_OK);
	CHECK_ST(open_reason(&f, SFS_CONTENT_ORIGINAL, &why), SFS_GONE);
	CHECK(why == SFS_R_FILE_DELETED);
	fx_close(&f);
}

/* sfs_file_listed of the fixture's file as seen by actor a. */
static int listed(struct fx *f, const struct sfs_actor *a, enum sfs_listing l,
		  const char *dir)
{
	struct sfs_file g;
	int ret;

	if (sfs_file_get(f->s, a, f->id, &g, NULL))
		return -1;
	ret = sfs_file_listed(&g, l, dir);
	sfs_file_release(&g);
	return ret;
}

static void test_listed(void)
{
	struct sfs_file_update pub = { .set = SFS_UPD_PUBLISH,
				       .publish = SFS_PUBLISH_INTERNAL };
	struct sfs_file g;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	CHECK(listed(&f, &f.a, SFS_LIST_DIR, "/m/") == 1);
	CHECK(listed(&f, &f.a, SFS_LIST_DIR, "/") == 0);
	CHECK(listed(&f, &f.a, SFS_LIST_DIR, NULL) == 0);
	CHECK(listed(&f, &f.a, SFS_LIST_LISTENING, "/m/") == 0);
	CHECK(listed(&f, &f.a, SFS_LIST_TRASH, NULL) == 0);
	CHECK(listed(&f, &f.a, SFS_LIST_SHARED, NULL) == 0);
	/* others see it in their shared listing only */
	CHECK(listed(&f, &f.b, SFS_LIST_SHARED, NULL) == 1);
	CHECK(listed(&f, &f.c, SFS_LIST_SHARED, NULL) == 1);
	CHECK(listed(&f, &f.b, SFS_LIST_DIR, "/m/") == 0);
	CHECK(listed(&f, &f.d, SFS_LIST_SHARED, NULL) == -1);
	REQUIRE_ST(sfs_file_update(f.s, &f.a, f.id, &pub, NULL, NULL), SFS_OK);
	CHECK(listed(&f, &f.d, SFS_LIST_SHARED, NULL) == 1);

	/* the listening mirror: only while the MP3 can be read */
	REQUIRE_ST(sfs_file_get(f.s, &f.a, f.id, &g, NULL), SFS_OK);
	g.la.status = SFS_JS_COMPLETED;
	CHECK(sfs_file_listed(&g, SFS_LIST_LISTENING, "/m/"));
	CHECK(!sfs_file_listed(&g, SFS_LIST_LISTENING, "/"));
	g.la.deleted = 1;
	CHECK(!sfs_file_listed(&g, SFS_LIST_LISTENING, "/m/"));
	sfs_file_release(&g);

	/* deleted: in the trash, nowhere else; purged: gone */
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, f.id, 0, NULL), SFS_OK);
	CHECK(listed(&f, &f.a, SFS_LIST_DIR, "/m/") == 0);
	CHECK(listed(&f, &f.a, SFS_LIST_TRASH, NULL) == 1);
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, f.id, 1, NULL), SFS_OK);
	CHECK(listed(&f, &f.a, SFS_LIST_TRASH, NULL) == 0);
	fx_close(&f);
}

static void test_share_perm(void)
{
	struct sfs_err e;
	struct fx f;
	int created;

	CHECK_ST(sfs_share_perm_check(SFS_PERM_VIEW, NULL), SFS_OK);
	CHECK_ST(sfs_share_perm_check(SFS_PERM_EDIT, NULL), SFS_OK);
	CHECK_ST(sfs_share_perm_check(SFS_PERM_OWNER, NULL), SFS_INVALID);
	CHECK_ST(sfs_share_perm_check(SFS_PERM_NONE, NULL), SFS_INVALID);
	sfs_err_init(&e);
	CHECK_ST(sfs_share_perm_check(sfs_perm_parse("OWNER"), &e),
		 SFS_INVALID);
	CHECK(e.nfields == 1 && !strcmp(e.fields[0].field, "permission"));
	CHECK_ST(sfs_share_perm_check(sfs_perm_parse("view"), NULL),
		 SFS_INVALID);
	/* sharing applies the same rule */
	REQUIRE(fx_open(&f) == 0);
	CHECK_ST(sfs_share_put(f.s, &f.a, f.id, f.ud, SFS_PERM_OWNER, NULL,
			       &created, NULL),
		 SFS_INVALID);
	CHECK_ST(allows(&f, &f.d, SFS_ACT_READ, NULL), -SFS_FORBIDDEN);
	fx_close(&f);
}

int main(void)
{
	RUN(test_allows);
	RUN(test_content_state);
	RUN(test_open_agrees);
	RUN(test_listed);
	RUN(test_share_perm);
	return th_report();
}
