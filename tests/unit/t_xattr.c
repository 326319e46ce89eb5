/*
 * Tests of core/xattr.c: extra attributes stored as given, their flags,
 * limits and the permission rules of the file model.
 */
#include "speechfs/auth.h"
#include "speechfs/blob.h"
#include "speechfs/file.h"
#include "speechfs/share.h"
#include "speechfs/store.h"
#include "speechfs/xattr.h"
#include "fixture.h"
#include "testhelp.h"

struct fx {
	char *dir;
	struct sfs_store *s;
	struct sfs_actor owner, viewer, editor, stranger;
	char id[SFS_ID_SIZE];
};

static int fx_open(struct fx *f)
{
	struct sfs_file_spec sp = { .name = "f" };
	char t1[SFS_ID_SIZE], t2[SFS_ID_SIZE];
	struct sfs_file out;
	struct sfs_share sh;
	int created;

	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, NULL))
		return -1;
	if (tfx_tenant(f->s, "t1", 0, 0, t1) ||
	    tfx_tenant(f->s, "t2", 0, 0, t2) ||
	    tfx_user(f->s, t1, "owner", NULL, &f->owner) ||
	    tfx_user(f->s, t1, "viewer", NULL, &f->viewer) ||
	    tfx_user(f->s, t1, "editor", NULL, &f->editor) ||
	    tfx_user(f->s, t2, "stranger", NULL, &f->stranger))
		return -1;
	if (sfs_file_create(f->s, &f->owner, &sp, NULL, &out, NULL))
		return -1;
	snprintf(f->id, sizeof(f->id), "%s", out.id);
	sfs_file_release(&out);
	if (sfs_share_put(f->s, &f->owner, f->id, f->viewer.user_id,
			  SFS_PERM_VIEW, &sh, &created, NULL) ||
	    sfs_share_put(f->s, &f->owner, f->id, f->editor.user_id,
			  SFS_PERM_EDIT, &sh, &created, NULL))
		return -1;
	return 0;
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
}

static void test_set_get_list_remove(void)
{
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	const char bin[] = { 'a', 0, 'b', (char)0xff };
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	CHECK_ST(sfs_xattr_get(f.s, &f.owner, f.id, "user.x", &b, NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.x", bin, sizeof(bin),
			       0, NULL),
		 SFS_OK);
	CHECK_ST(sfs_xattr_get(f.s, &f.owner, f.id, "user.x", &b, NULL),
		 SFS_OK);
	CHECK(b.len == sizeof(bin) && !memcmp(b.buf, bin, sizeof(bin)));
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.empty", "", 0, 0,
			       NULL),
		 SFS_OK);
	CHECK_ST(sfs_xattr_get(f.s, &f.owner, f.id, "user.empty", &b, NULL),
		 SFS_OK);
	CHECK(b.len == 0);
	sfs_buf_reset(&b);
	CHECK_ST(sfs_xattr_list(f.s, &f.owner, f.id, &b, NULL), SFS_OK);
	CHECK(b.len == sizeof("user.empty") + sizeof("user.x") &&
	      !memcmp(b.buf, "user.empty\0user.x\0", b.len));
	/* flags */
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.x", "1", 1,
			       SFS_XATTR_CREATE, NULL),
		 SFS_CONFLICT);
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.y", "1", 1,
			       SFS_XATTR_REPLACE, NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.x", "2", 1,
			       SFS_XATTR_REPLACE, NULL),
		 SFS_OK);
	CHECK_ST(sfs_xattr_get(f.s, &f.owner, f.id, "user.x", &b, NULL),
		 SFS_OK);
	CHECK(b.len == 1 && b.buf[0] == '2');
	CHECK_ST(sfs_xattr_remove(f.s, &f.owner, f.id, "user.x", NULL), SFS_OK);
	CHECK_ST(sfs_xattr_remove(f.s, &f.owner, f.id, "user.x", NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_xattr_get(f.s, &f.owner, f.id, "user.x", &b, NULL),
		 SFS_NOT_FOUND);
	sfs_buf_release(&b);
	fx_close(&f);
}

static void test_limits(void)
{
	static char big[SFS_XATTR_VALUE_MAX + 1];
	char name[SFS_XATTR_NAME_MAX + 2];
	struct sfs_err e;
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.big", big,
			       sizeof(big), 0, &e),
		 SFS_TOO_LARGE);
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.big", big,
			       sizeof(big) - 1, 0, NULL),
		 SFS_OK);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, name, "v", 1, 0, NULL),
		 SFS_INVALID);
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "", "v", 1, 0, NULL),
		 SFS_INVALID);
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.\xff", "v", 1, 0,
			       NULL),
		 SFS_INVALID);
	for (i = 1; i < SFS_XATTR_PER_FILE; i++) {
		snprintf(name, sizeof(name), "user.n%d", i);
		REQUIRE_ST(sfs_xattr_set(f.s, &f.owner, f.id, name, "v", 1, 0,
					 NULL),
			   SFS_OK);
	}
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.one-more", "v", 1, 0,
			       NULL),
		 SFS_TOO_LARGE);
	/* replacing an existing one is still allowed at the cap */
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.n1", "w", 1, 0, NULL),
		 SFS_OK);
	fx_close(&f);
}

static void test_permissions(void)
{
	struct sfs_buf b = SFS_BUF_INIT(1024);
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(
		sfs_xattr_set(f.s, &f.owner, f.id, "user.k", "v", 1, 0, NULL),
		SFS_OK);
	/* VIEW reads, cannot write */
	CHECK_ST(sfs_xattr_get(f.s, &f.viewer, f.id, "user.k", &b, NULL),
		 SFS_OK);
	CHECK_ST(sfs_xattr_set(f.s, &f.viewer, f.id, "user.k", "w", 1, 0, NULL),
		 SFS_FORBIDDEN);
	CHECK_ST(sfs_xattr_remove(f.s, &f.viewer, f.id, "user.k", NULL),
		 SFS_FORBIDDEN);
	/* EDIT writes */
	CHECK_ST(sfs_xattr_set(f.s, &f.editor, f.id, "user.k", "e", 1, 0, NULL),
		 SFS_OK);
	/* another tenant sees nothing */
	CHECK_ST(sfs_xattr_get(f.s, &f.stranger, f.id, "user.k", &b, NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_xattr_list(f.s, &f.stranger, f.id, &b, NULL),
		 SFS_NOT_FOUND);
	/* a deleted file takes no new attributes */
	REQUIRE_ST(sfs_file_delete(f.s, &f.owner, f.id, 0, NULL), SFS_OK);
	CHECK_ST(sfs_xattr_set(f.s, &f.owner, f.id, "user.k", "d", 1, 0, NULL),
		 SFS_CONFLICT);
	sfs_buf_release(&b);
	fx_close(&f);
}

int main(void)
{
	RUN(test_set_get_list_remove);
	RUN(test_limits);
	RUN(test_permissions);
	return th_report();
}
