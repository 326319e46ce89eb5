/*
 * Unit tests of tag names (validation, splitting, joining), the tenant's
 * tags for suggestions, and of the enumeration names of file.h with
 * struct sfs_file's init/release.
 */
#include <string.h>
#include "speechfs/file.h"
#include "speechfs/log.h"
#include "speechfs/tag.h"
#include "fixture.h"
#include "testhelp.h"

/* The field error type of a rejected tag, "" when it was accepted. */
static const char *tag_err(const char *t, struct sfs_err *e)
{
	sfs_err_init(e);
	if (sfs_tag_check(t, "tag", e) == SFS_OK)
		return "";
	return e->nfields ? e->fields[0].type : "?";
}

static void test_check_valid(void)
{
	struct sfs_err e;
	char t[SFS_TAG_MAX + 2];

	CHECK(!strcmp(tag_err("a", &e), ""));
	CHECK(!strcmp(tag_err("Meeting", &e), ""));
	CHECK(!strcmp(tag_err("two words", &e), ""));
	CHECK(!strcmp(tag_err("a/b;c:d", &e), ""));
	CHECK(!strcmp(tag_err("r\xc3\xa9union", &e), ""));
	memset(t, 'x', SFS_TAG_MAX);
	t[SFS_TAG_MAX] = '\0';
	CHECK(!strcmp(tag_err(t, &e), ""));
}

static void test_check_invalid(void)
{
	struct sfs_err e;
	char t[SFS_TAG_MAX + 2];

	CHECK(!strcmp(tag_err("", &e), "invalid"));
	CHECK_ST(e.status, SFS_INVALID);
	CHECK(!strcmp(e.fields[0].field, "tag"));
	CHECK(!strcmp(tag_err(NULL, &e), "missing"));
	CHECK(!strcmp(tag_err(" a", &e), "invalid"));
	CHECK(!strcmp(tag_err("a ", &e), "invalid"));
	CHECK(!strcmp(tag_err(" ", &e), "invalid"));
	CHECK(!strcmp(tag_err("a,b", &e), "invalid"));
	CHECK(!strcmp(tag_err(",", &e), "invalid"));
	CHECK(!strcmp(tag_err("a\tb", &e), "invalid"));
	CHECK(!strcmp(tag_err("a\nb", &e), "invalid"));
	CHECK(!strcmp(tag_err("a\x7f", &e), "invalid"));
	CHECK(!strcmp(tag_err("\xc3", &e), "invalid"));
	CHECK(!strcmp(tag_err("\xc0\xaf", &e), "invalid"));
	CHECK(!strcmp(tag_err("\xed\xa0\x80", &e), "invalid"));
	memset(t, 'x', SFS_TAG_MAX + 1);
	t[SFS_TAG_MAX + 1] = '\0';
	CHECK(!strcmp(tag_err(t, &e), "too_long"));
	/* the limit is bytes, not characters: 33 two-byte chars = 66 */
	{
		char u[2 * 33 + 1];
		int i;

		for (i = 0; i < 33; i++) {
			u[2 * i] = (char)0xc3;
			u[2 * i + 1] = (char)0xa9;
		}
		u[66] = '\0';
		CHECK(!strcmp(tag_err(u, &e), "too_long"));
		u[64] = '\0';
		CHECK(!strcmp(tag_err(u, &e), ""));
	}
}

static void test_split(void)
{
	struct sfs_err e;
	char **v = NULL;
	size_t n = 99;

	sfs_err_init(&e);
	REQUIRE_ST(sfs_tags_split("a, b,c", &v, &n, &e), SFS_OK);
	REQUIRE(n == 3);
	CHECK(!strcmp(v[0], "a") && !strcmp(v[1], "b") && !strcmp(v[2], "c"));
	CHECK(v[3] == NULL);
	sfs_strv_free(v);

	REQUIRE_ST(sfs_tags_split("  x  ,\ty y ,", &v, &n, &e), SFS_OK);
	REQUIRE(n == 2);
	CHECK(!strcmp(v[0], "x") && !strcmp(v[1], "y y"));
	sfs_strv_free(v);

	REQUIRE_ST(sfs_tags_split("a,,b", &v, &n, &e), SFS_OK);
	CHECK(n == 2);
	sfs_strv_free(v);

	REQUIRE_ST(sfs_tags_split(",, ,", &v, &n, &e), SFS_OK);
	CHECK(n == 0 && v && v[0] == NULL);
	sfs_strv_free(v);

	REQUIRE_ST(sfs_tags_split("", &v, &n, &e), SFS_OK);
	CHECK(n == 0 && v && v[0] == NULL);
	sfs_strv_free(v);

	REQUIRE_ST(sfs_tags_split(NULL, &v, &n, &e), SFS_OK);
	CHECK(n == 0);
	sfs_strv_free(v);
}

static void test_split_dedup(void)
{
	struct sfs_err e;
	char **v = NULL;
	size_t n = 0;

	sfs_err_init(&e);
	REQUIRE_ST(sfs_tags_split("Work,home,WORK,work , Home,x", &v, &n, &e),
		   SFS_OK);
	REQUIRE(n == 3);
	CHECK(!strcmp(v[0], "Work"));
	CHECK(!strcmp(v[1], "home"));
	CHECK(!strcmp(v[2], "x"));
	sfs_strv_free(v);

	/* non-ASCII letters are not folded: distinct tags */
	REQUIRE_ST(sfs_tags_split("\xc3\xa9,\xc3\x89", &v, &n, &e), SFS_OK);
	CHECK(n == 2);
	sfs_strv_free(v);
}

static void test_split_invalid(void)
{
	struct sfs_err e;
	char *dummy[1] = { NULL };
	char **v = dummy; /* must be reset to NULL on failure */
	size_t n = 7;
	char big[SFS_TAG_MAX + 8];

	sfs_err_init(&e);
	CHECK_ST(sfs_tags_split("ok,bad\x01tag", &v, &n, &e), SFS_INVALID);
	CHECK(v == NULL && n == 0);
	CHECK(e.nfields == 1 && !strcmp(e.fields[0].field, "tags[1]"));

	memset(big, 'q', SFS_TAG_MAX + 1);
	big[SFS_TAG_MAX + 1] = '\0';
	sfs_err_init(&e);
	CHECK_ST(sfs_tags_split(big, &v, &n, &e), SFS_INVALID);
	CHECK(v == NULL);
	CHECK(!strcmp(e.fields[0].type, "too_long"));

	sfs_err_init(&e);
	CHECK_ST(sfs_tags_split("a,\xff", &v, &n, &e), SFS_INVALID);
	CHECK(v == NULL);
}

static void test_join(void)
{
	struct sfs_buf b = SFS_BUF_INIT(4096);
	char *tags[] = { "a", "b c", "D" };
	struct sfs_buf small = SFS_BUF_INIT(3);

	CHECK_ST(sfs_tags_join(tags, 3, &b), SFS_OK);
	CHECK(!strcmp(b.buf, "a,b c,D"));
	CHECK_ST(sfs_tags_join(tags, 1, &b), SFS_OK);
	CHECK(!strcmp(b.buf, "a"));
	CHECK_ST(sfs_tags_join(tags, 0, &b), SFS_OK);
	CHECK(!strcmp(b.buf, "") && b.len == 0);
	CHECK_ST(sfs_tags_join(tags, 3, &small), SFS_TOO_LARGE);
	sfs_buf_release(&b);
	sfs_buf_release(&small);
	sfs_strv_free(NULL);
}

static void test_roundtrip(void)
{
	struct sfs_buf b = SFS_BUF_INIT(4096);
	struct sfs_err e;
	char **v = NULL, **w = NULL;
	size_t n = 0, m = 0, i;

	sfs_err_init(&e);
	REQUIRE_ST(sfs_tags_split("one, two ,three four", &v, &n, &e), SFS_OK);
	REQUIRE_ST(sfs_tags_join(v, n, &b), SFS_OK);
	CHECK(!strcmp(b.buf, "one,two,three four"));
	REQUIRE_ST(sfs_tags_split(b.buf, &w, &m, &e), SFS_OK);
	CHECK(m == n);
	for (i = 0; i < n && i < m; i++)
		CHECK(!strcmp(v[i], w[i]));
	sfs_strv_free(v);
	sfs_strv_free(w);
	sfs_buf_release(&b);
}

static void test_enum_names(void)
{
	CHECK(sfs_jstate_name(SFS_JS_NONE) == NULL);
	CHECK(!strcmp(sfs_jstate_name(SFS_JS_PENDING), "PENDING"));
	CHECK(!strcmp(sfs_jstate_name(SFS_JS_PROCESSING), "PROCESSING"));
	CHECK(!strcmp(sfs_jstate_name(SFS_JS_COMPLETED), "COMPLETED"));
	CHECK(!strcmp(sfs_jstate_name(SFS_JS_FAILED), "FAILED"));
	CHECK(sfs_jstate_name((enum sfs_jstate)42) == NULL);
	CHECK(sfs_jstate_parse("PENDING") == SFS_JS_PENDING);
	CHECK(sfs_jstate_parse("FAILED") == SFS_JS_FAILED);
	CHECK(sfs_jstate_parse("COMPLETED") == SFS_JS_COMPLETED);
	CHECK(sfs_jstate_parse("PROCESSING") == SFS_JS_PROCESSING);
	CHECK(sfs_jstate_parse("pending") == -1);
	CHECK(sfs_jstate_parse("") == -1);
	CHECK(sfs_jstate_parse(NULL) == -1);
	CHECK(sfs_jstate_parse("PENDING ") == -1);

	CHECK(!strcmp(sfs_publish_name(SFS_PUBLISH_PRIVATE), "PRIVATE"));
	CHECK(!strcmp(sfs_publish_name(SFS_PUBLISH_INTERNAL), "INTERNAL"));
	CHECK(sfs_publish_parse("PRIVATE") == SFS_PUBLISH_PRIVATE);
	CHECK(sfs_publish_parse("INTERNAL") == SFS_PUBLISH_INTERNAL);
	CHECK(sfs_publish_parse("internal") == -1);
	CHECK(sfs_publish_parse("PUBLIC") == -1);

	CHECK(sfs_perm_name(SFS_PERM_NONE) == NULL);
	CHECK(!strcmp(sfs_perm_name(SFS_PERM_VIEW), "VIEW"));
	CHECK(!strcmp(sfs_perm_name(SFS_PERM_EDIT), "EDIT"));
	CHECK(!strcmp(sfs_perm_name(SFS_PERM_OWNER), "OWNER"));
	CHECK(sfs_perm_parse("VIEW") == SFS_PERM_VIEW);
	CHECK(sfs_perm_parse("EDIT") == SFS_PERM_EDIT);
	CHECK(sfs_perm_parse("OWNER") == -1);
	CHECK(sfs_perm_parse("view") == -1);

	CHECK(!strcmp(sfs_access_name(SFS_ACCESS_OWNER), "OWNER"));
	CHECK(!strcmp(sfs_access_name(SFS_ACCESS_DIRECT_SHARE),
		      "DIRECT_SHARE"));
	CHECK(!strcmp(sfs_access_name(SFS_ACCESS_INTERNAL), "INTERNAL"));
	CHECK(sfs_access_parse("DIRECT_SHARE") == SFS_ACCESS_DIRECT_SHARE);
	CHECK(sfs_access_parse("INTERNAL") == SFS_ACCESS_INTERNAL);
	CHECK(sfs_access_parse("OWNER") == -1);
	CHECK(sfs_access_parse("direct_share") == -1);
}

static void test_file_init_release(void)
{
	struct sfs_file f;

	sfs_file_init(&f);
	CHECK(f.size == -1 && f.duration < 0 && f.la.size == -1);
	CHECK(f.name == NULL && f.tags == NULL && f.ntags == 0);
	CHECK(f.ingestion == SFS_JS_NONE && f.la.status == SFS_JS_NONE);
	CHECK(f.sha256[0] == '\0' && f.created_at == 0);

	/* every owned member: a leak shows under ASan */
	f.name = strdup("n");
	f.filename = strdup("f.wav");
	f.description = strdup("d");
	f.path = strdup("/a/");
	f.metadata = strdup("{}");
	f.mime = strdup("audio/wav");
	f.source_uri = strdup("https://example.invalid/x");
	f.ingest_error = strdup("boom");
	f.tags = calloc(3, sizeof(*f.tags));
	REQUIRE(f.tags);
	f.tags[0] = strdup("a");
	f.tags[1] = strdup("b");
	f.ntags = 2;
	f.la.error = strdup("no");
	f.size = 5;
	sfs_file_release(&f);
	CHECK(f.name == NULL && f.tags == NULL && f.ntags == 0);
	CHECK(f.la.error == NULL && f.size == -1);
	sfs_file_release(&f); /* a second release is harmless */
}

/* A file of `a` tagged with the comma-separated tags; its id into id. */
static int tagged(struct sfs_store *s, const struct sfs_actor *a,
		  const char *csv, char id[SFS_ID_SIZE])
{
	struct sfs_file_update u = { .set = SFS_UPD_TAGS };
	char **tags = NULL;
	int rc = -1;

	if (tfx_upload(s, a, "rec", "x", 1, id, NULL) ||
	    sfs_tags_split(csv, &tags, &u.ntags, NULL))
		goto out;
	u.tags = (const char *const *)tags;
	rc = sfs_file_update(s, a, id, &u, NULL, NULL) ? -1 : 0;
out:
	sfs_strv_free(tags);
	return rc;
}

/* The list as one comma-separated string, "!" on failure. */
static const char *list(struct sfs_store *s, const struct sfs_actor *a,
			const char *prefix, size_t limit)
{
	static char out[512];
	char **v = NULL;
	size_t i, n = 0;

	out[0] = '\0';
	if (sfs_tag_list(s, a, prefix, limit, &v, &n, NULL))
		return "!";
	for (i = 0; i < n; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
			 i ? "," : "", v[i]);
	if (v[n] != NULL)
		snprintf(out, sizeof(out), "unterminated");
	sfs_strv_free(v);
	return out;
}

static void test_tenant_tags(void)
{
	char ta[SFS_ID_SIZE], tb[SFS_ID_SIZE], id[SFS_ID_SIZE];
	struct sfs_actor alice, bob, carol, ro;
	struct sfs_store *s = NULL;
	struct sfs_err e;
	char *dir = NULL;
	char **v = NULL;
	size_t n;

	REQUIRE(tfx_store(&dir, &s, NULL) == 0);
	REQUIRE(tfx_tenant(s, "a", 0, 0, ta) == 0 &&
		tfx_tenant(s, "b", 0, 0, tb) == 0);
	REQUIRE(tfx_user(s, ta, "alice", NULL, &alice) == 0 &&
		tfx_user(s, ta, "bob", NULL, &bob) == 0 &&
		tfx_user(s, tb, "carol", NULL, &carol) == 0);
	REQUIRE(tagged(s, &alice, "Engineering, Meeting, 50%", id) == 0);
	REQUIRE(tagged(s, &bob, "engage, Zeta, 5_0", id) == 0);
	REQUIRE(tagged(s, &carol, "Engine-B", id) == 0);
	REQUIRE(tagged(s, &alice, "Deleted", id) == 0);
	REQUIRE_ST(sfs_file_delete(s, &alice, id, 0, NULL), SFS_OK);
	REQUIRE(tagged(s, &alice, "Gone", id) == 0);
	REQUIRE_ST(sfs_file_delete(s, &alice, id, 1, NULL), SFS_OK);

	/* the tenant's, whoever tagged; a purged file's tags are not */
	CHECK(!strcmp(list(s, &alice, NULL, 100),
		      "50%,5_0,Deleted,engage,Engineering,Meeting,Zeta"));
	CHECK(!strcmp(list(s, &bob, "", 100),
		      "50%,5_0,Deleted,engage,Engineering,Meeting,Zeta"));
	CHECK(!strcmp(list(s, &carol, "", 100), "Engine-B"));
	/* a prefix, any case; LIKE's wildcards are plain characters */
	CHECK(!strcmp(list(s, &alice, "ENG", 100), "engage,Engineering"));
	CHECK(!strcmp(list(s, &alice, "5_", 100), "5_0"));
	CHECK(!strcmp(list(s, &alice, "50%", 100), "50%"));
	CHECK(!strcmp(list(s, &alice, "%", 100), ""));
	CHECK(!strcmp(list(s, &alice, "x", 100), ""));
	CHECK(!strcmp(list(s, &alice, "", 2), "50%,5_0"));

	sfs_err_init(&e);
	CHECK_ST(sfs_tag_list(s, &alice, NULL, 0, &v, &n, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "size", NULL));
	CHECK_ST(sfs_tag_list(s, &alice, NULL, SFS_TAG_LIST_MAX + 1, &v, &n,
			      NULL),
		 SFS_INVALID);
	CHECK(v == NULL && n == 0);
	ro = alice;
	ro.scopes = SFS_SCOPE_WRITE;
	CHECK_ST(sfs_tag_list(s, &ro, NULL, 10, &v, &n, NULL), SFS_FORBIDDEN);
	tfx_store_close(&dir, &s);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_check_valid);
	RUN(test_check_invalid);
	RUN(test_split);
	RUN(test_split_dedup);
	RUN(test_split_invalid);
	RUN(test_join);
	RUN(test_roundtrip);
	RUN(test_enum_names);
	RUN(test_file_init_release);
	RUN(test_tenant_tags);
	return th_report();
}
