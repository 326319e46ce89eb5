/*
 * Unit tests of each file row's copy of its tag names (schema v12,
 * file.tagnames), on both backends: the database keeps it whoever changes
 * the tags (the core, or an older process writing the tags' rows as it
 * knew them), it is not a change of its own in the change feed, listings
 * and reads show it as the tags always were (sorted case-insensitively,
 * in the tenant's first spelling), fsck finds a copy that differs and
 * --repair makes it again, and the migration from v11 fills it.
 */
#include <stdio.h>
#include <string.h>
#include "speechfs/file.h"
#include "speechfs/fsck.h"
#include "speechfs/log.h"
#include "speechfs/query.h"
#include "speechfs/store.h"
#include "db_i.h"
#include "fixture.h"
#include "fsck_i.h"
#include "testhelp.h"

struct fx {
	char *dir;
	struct sfs_store *s;
	char tenant[SFS_ID_SIZE];
	struct sfs_actor ann, bob;
};

static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, NULL))
		return -1;
	if (tfx_tenant(f->s, "acme", 0, 0, f->tenant) ||
	    tfx_user(f->s, f->tenant, "ann", NULL, &f->ann) ||
	    tfx_user(f->s, f->tenant, "bob", NULL, &f->bob)) {
		tfx_store_close(&f->dir, &f->s);
		return -1;
	}
	return 0;
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
	memset(f, 0, sizeof(*f));
}

/* Split "a,b,c" into tags (at most 8; in buf). */
static size_t split(const char *csv, char *buf, size_t n, const char **tags)
{
	char *p, *save = NULL;
	size_t k = 0;

	if (!csv)
		return 0;
	snprintf(buf, n, "%s", csv);
	for (p = strtok_r(buf, ",", &save); p && k < 8;
	     p = strtok_r(NULL, ",", &save))
		tags[k++] = p;
	return k;
}

/* A content-less file in / with tags "a,b" (NULL: none); its id. */
static int mk(struct fx *f, const struct sfs_actor *a, const char *name,
	      const char *csv, char id[SFS_ID_SIZE])
{
	struct sfs_file_spec sp;
	struct sfs_file out;
	const char *tags[8];
	char buf[256];

	memset(&sp, 0, sizeof(sp));
	sp.name = name;
	sp.path = "/";
	sp.tags = tags;
	sp.ntags = split(csv, buf, sizeof(buf), tags);
	if (sfs_file_create(f->s, a, &sp, NULL, &out, NULL))
		return -1;
	snprintf(id, SFS_ID_SIZE, "%s", out.id);
	sfs_file_release(&out);
	return 0;
}

static enum sfs_status set_tags(struct fx *f, const struct sfs_actor *a,
				const char *id, const char *csv)
{
	struct sfs_file_update u;
	const char *tags[8];
	char buf[256];

	memset(&u, 0, sizeof(u));
	u.set = SFS_UPD_TAGS;
	u.tags = tags;
	u.ntags = split(csv, buf, sizeof(buf), tags);
	return sfs_file_update(f->s, a, id, &u, NULL, NULL);
}

/* "a|b" of a file's tags (as the caller gets them). */
static const char *joined(const struct sfs_file *x, char *buf, size_t n)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < x->ntags && o < n - 1; i++)
		o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? "|" : "",
				      x->tags[i]);
	return buf;
}

/* The tags of one file by its read. */
static const char *got(struct fx *f, const struct sfs_actor *a, const char *id)
{
	static char buf[512];
	struct sfs_file x;

	sfs_file_init(&x);
	if (sfs_file_get(f->s, a, id, &x, NULL))
		return "ERR";
	joined(&x, buf, sizeof(buf));
	sfs_file_release(&x);
	return buf;
}

/*
 * "name:a|b;..." of a listing (newest first): with tag, the recursive
 * one-tag listing of it (its own page statement), else all of /.
 */
static const char *listed(struct fx *f, const struct sfs_actor *a,
			  const char *tag)
{
	static char out[2048];
	char buf[512];
	struct sfs_query q;
	struct sfs_file_list l;
	size_t i, o = 0;
	int rc;

	sfs_query_init(&q);
	rc = sfs_query_param(&q, "path", "/", NULL);
	if (!rc && tag)
		rc = sfs_query_param(&q, "tags", tag, NULL) ||
		     sfs_query_param(&q, "recursive", "true", NULL);
	if (!rc)
		rc = sfs_query_files(f->s, a, &q, &l, NULL);
	sfs_query_release(&q);
	if (rc)
		return "ERR";
	out[0] = '\0';
	for (i = 0; i < l.n && o < sizeof(out) - 1; i++)
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s:%s",
				      i ? ";" : "", l.files[i].name,
				      joined(&l.files[i], buf, sizeof(buf)));
	sfs_file_list_release(&l);
	return out;
}

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *a_ = (a), *b_ = (b);                               \
		if (strcmp(a_, b_)) {                                          \
			fprintf(stderr, "  got '%s', want '%s'\n", a_, b_);    \
			CHECK(0);                                              \
		}                                                              \
	} while (0)

/* fsck's count of files whose copy differs (-1: fsck failed). */
static int64_t bad_names(struct fx *f)
{
	struct sfs_fsck_report r;

	memset(&r, 0, sizeof(r));
	if (tfx_fsck_lines(f->s, 0, &r) < 0)
		return -1;
	return r.bad_tag_names;
}

/* A process of an older version: the tags' rows alone. */
#define OLD_WRITER_ADD(NAME, TAG)                                              \
	"INSERT INTO file_tag(file_id, tag_id) SELECT f.id, t.id"              \
	" FROM file f, tag t WHERE f.name = '" NAME "' AND t.name = '" TAG "'"
#define OLD_WRITER_DEL(NAME, TAG)                                              \
	"DELETE FROM file_tag WHERE file_id = (SELECT id FROM file"            \
	" WHERE name = '" NAME "') AND tag_id = (SELECT id FROM tag"           \
	" WHERE name = '" TAG "')"

static void test_copy_follows_tags(void)
{
	char a[SFS_ID_SIZE], b[SFS_ID_SIZE], c[SFS_ID_SIZE], d[SFS_ID_SIZE];
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "a", "Hot,cold", a) == 0);
	REQUIRE(mk(&f, &f.ann, "c", NULL, c) == 0);
	REQUIRE(mk(&f, &f.bob, "b", "hot,HOT", b) == 0);
	REQUIRE(mk(&f, &f.ann, "d", "x,y,z", d) == 0);
	/* the tenant's first spelling, sorted case-insensitively */
	CHECK_STR(got(&f, &f.ann, a), "cold|Hot");
	CHECK_STR(got(&f, &f.bob, b), "Hot");
	CHECK(tfx_sql_int(f.s, "SELECT COUNT(*) FROM file WHERE name = 'b'"
			       " AND tagnames = 'Hot'") == 1);
	CHECK(tfx_sql_int(f.s, "SELECT COUNT(*) FROM file WHERE name = 'c'"
			       " AND tagnames IS NULL") == 1);
	CHECK_STR(listed(&f, &f.ann, NULL), "d:x|y|z;c:;a:cold|Hot");
	CHECK_STR(listed(&f, &f.ann, "hot"), "a:cold|Hot");
	/* replaced, cleared, given */
	REQUIRE_ST(set_tags(&f, &f.ann, a, "new,COLD,Zed"), SFS_OK);
	CHECK_STR(got(&f, &f.ann, a), "cold|new|Zed");
	REQUIRE_ST(set_tags(&f, &f.ann, d, NULL), SFS_OK);
	CHECK_STR(got(&f, &f.ann, d), "");
	CHECK(tfx_sql_int(f.s, "SELECT COUNT(*) FROM file WHERE name = 'd'"
			       " AND tagnames IS NULL") == 1);
	REQUIRE_ST(set_tags(&f, &f.ann, c, "hot"), SFS_OK);
	CHECK_STR(listed(&f, &f.ann, NULL), "d:;c:Hot;a:cold|new|Zed");
	CHECK_STR(listed(&f, &f.ann, "HOT"), "c:Hot");
	/* deleted, restored, purged: the copy stays the tags' */
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, a, 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_restore(f.s, &f.ann, a, NULL, NULL), SFS_OK);
	CHECK_STR(got(&f, &f.ann, a), "cold|new|Zed");
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, c, 1, NULL), SFS_OK);
	/* an older process writes the tags' rows alone */
	CHECK(tfx_sql(f.s, OLD_WRITER_ADD("b", "cold")) == 0);
	CHECK(tfx_sql(f.s, OLD_WRITER_DEL("a", "new")) == 0);
	CHECK_STR(got(&f, &f.bob, b), "cold|Hot");
	CHECK_STR(got(&f, &f.ann, a), "cold|Zed");
	CHECK_STR(listed(&f, &f.ann, "zed"), "a:cold|Zed");
	CHECK(bad_names(&f) == 0);
	/* a file row gone takes its tags' rows with it */
	CHECK(tfx_sql(f.s, "DELETE FROM file WHERE name = 'c'") == 0);
	CHECK(tfx_sql_int(f.s, "SELECT COUNT(*) FROM file_tag ft"
			       " WHERE NOT EXISTS (SELECT 1 FROM file x"
			       " WHERE x.id = ft.file_id)") == 0);
	CHECK(bad_names(&f) == 0);
	fx_close(&f);
}

static int64_t changes(struct fx *f)
{
	return tfx_sql_int(f->s, "SELECT COUNT(*) FROM change");
}

/*
 * The copy changing is not a change of the file of its own: a file made
 * with tags writes as many change rows as one without, a PATCH of the tags
 * one (its ctime's), an older process's tag rows none.
 */
static void test_copy_not_a_change(void)
{
	char a[SFS_ID_SIZE], b[SFS_ID_SIZE];
	struct sfs_file_update u;
	int64_t n0, n1, n2, n3;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "first", NULL, a) == 0);
	n0 = changes(&f);
	REQUIRE(mk(&f, &f.ann, "plain", NULL, a) == 0);
	n1 = changes(&f);
	REQUIRE(mk(&f, &f.ann, "tagged", "p,q,r", b) == 0);
	n2 = changes(&f);
	CHECK(n1 > n0 && n2 - n1 == n1 - n0);
	/* a PATCH of the tags: its UPDATE of the file's ctime, as one of
	 * the mtime (its own UPDATE and the ctime's) */
	memset(&u, 0, sizeof(u));
	u.set = SFS_UPD_MTIME;
	u.mtime_ns = 1000000000;
	REQUIRE_ST(sfs_file_update(f.s, &f.ann, b, &u, NULL, NULL), SFS_OK);
	n3 = changes(&f);
	CHECK(n3 - n2 == 2);
	REQUIRE_ST(set_tags(&f, &f.ann, b, "s,t"), SFS_OK);
	CHECK(changes(&f) - n3 == 1);
	n3 = changes(&f);
	CHECK(tfx_sql(f.s, OLD_WRITER_ADD("plain", "p")) == 0);
	CHECK(tfx_sql(f.s, OLD_WRITER_DEL("tagged", "s")) == 0);
	CHECK(changes(&f) == n3);
	CHECK_STR(got(&f, &f.ann, a), "p");
	CHECK_STR(got(&f, &f.ann, b), "t");
	fx_close(&f);
}

/*
 * fsck: a copy with other names or none is found (one line each) and made
 * again by --repair; the same names in another order are the same tags.
 */
static void test_fsck_tag_names(void)
{
	char x[SFS_ID_SIZE], y[SFS_ID_SIZE], z[SFS_ID_SIZE];
	struct sfs_fsck_report r;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "x", "a,b,c", x) == 0);
	REQUIRE(mk(&f, &f.ann, "y", "d", y) == 0);
	REQUIRE(mk(&f, &f.ann, "z", NULL, z) == 0);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0 && r.bad_tag_names == 0);
	/* the order only: not a finding */
	CHECK(tfx_sql(f.s, "UPDATE file SET tagnames = 'c' || char(31) ||"
			   " 'a' || char(31) || 'b' WHERE name = 'x'") == 0);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0 && r.bad_tag_names == 0);
	CHECK_STR(got(&f, &f.ann, x), "a|b|c");
	CHECK(tfx_sql(f.s, "UPDATE file SET tagnames = 'a' || char(31) ||"
			   " 'b' WHERE name = 'x'") == 0);
	CHECK(tfx_sql(f.s, "UPDATE file SET tagnames = 'D' WHERE name = 'y'") ==
	      0);
	CHECK(tfx_sql(f.s, "UPDATE file SET tagnames = 'd' WHERE name = 'z'") ==
	      0);
	CHECK_STR(listed(&f, &f.ann, NULL), "z:d;y:D;x:a|b");
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 3 && r.bad_tag_names == 3 &&
	      r.repaired == 0);
	CHECK(tfx_fsck_lines(f.s, 1, &r) == 4 && r.bad_tag_names == 3 &&
	      r.repaired == 1);
	CHECK_STR(listed(&f, &f.ann, NULL), "z:;y:d;x:a|b|c");
	CHECK_STR(listed(&f, &f.ann, "a"), "x:a|b|c");
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0 && r.bad_tag_names == 0);
	/* kept by the triggers after the repair too */
	REQUIRE_ST(set_tags(&f, &f.ann, z, "e"), SFS_OK);
	CHECK_STR(got(&f, &f.ann, z), "e");
	CHECK(bad_names(&f) == 0);
	fx_close(&f);
}

/*
 * fsck's tag checks tell at most max_lines findings and then, in one
 * line, how many more: the files' tag names and the tag counters alike.
 */
static void test_fsck_tells_how_many_more(void)
{
	char x[SFS_ID_SIZE], y[SFS_ID_SIZE], z[SFS_ID_SIZE];
	int64_t found = -1, repaired = 0;
	struct db *d = NULL;
	struct tfx_lines s;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "x", "a", x) == 0);
	REQUIRE(mk(&f, &f.ann, "y", "b", y) == 0);
	REQUIRE(mk(&f, &f.ann, "z", "c", z) == 0);
	REQUIRE(tfx_sql(f.s, "UPDATE file SET tagnames = 'q'") == 0);
	REQUIRE(tfx_sql(f.s, "UPDATE tag_count SET n = n + 5") == 0);
	REQUIRE_ST(sfsi_db_get(f.s, &d, NULL), SFS_OK);
	memset(&s, 0, sizeof(s));
	CHECK_ST(sfsi_fsck_tag_names(d, 0, 1, tfx_collect, &s, &found,
				     &repaired, NULL),
		 SFS_OK);
	CHECK(found == 3 && s.n == 2);
	CHECK_STR(s.last, "and 2 more files' tag names differ");
	memset(&s, 0, sizeof(s));
	CHECK_ST(sfsi_fsck_tag_counts(d, 0, 1, tfx_collect, &s, &found,
				      &repaired, NULL),
		 SFS_OK);
	CHECK(found == 3 && s.n == 2);
	CHECK_STR(s.last, "and 2 more tag counters differ");
	/* as many as may be told: no such line */
	memset(&s, 0, sizeof(s));
	CHECK_ST(sfsi_fsck_tag_names(d, 0, 3, tfx_collect, &s, &found,
				     &repaired, NULL),
		 SFS_OK);
	CHECK(found == 3 && s.n == 3 && !strstr(s.last, "more"));
	memset(&s, 0, sizeof(s));
	CHECK_ST(sfsi_fsck_tag_counts(d, 0, 3, tfx_collect, &s, &found,
				      &repaired, NULL),
		 SFS_OK);
	CHECK(found == 3 && s.n == 3 && !strstr(s.last, "more"));
	/* nobody to tell: counted all the same */
	CHECK_ST(sfsi_fsck_tag_names(d, 0, 1, NULL, NULL, &found, &repaired,
				     NULL),
		 SFS_OK);
	CHECK(found == 3);
	CHECK_ST(sfsi_fsck_tag_counts(d, 0, 1, NULL, NULL, &found, &repaired,
				      NULL),
		 SFS_OK);
	CHECK(found == 3 && repaired == 0);
	sfsi_db_put(d);
	fx_close(&f);
}

/*
 * v11 to v12: the copies are filled from the tags' rows without a change
 * row each, and kept from then on.
 */
static void test_migrate_v11_tag_names(void)
{
	char a[SFS_ID_SIZE], b[SFS_ID_SIZE], c[SFS_ID_SIZE];
	int64_t n;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "a", "Hot,cold", a) == 0);
	REQUIRE(mk(&f, &f.bob, "b", "hot", b) == 0);
	REQUIRE(mk(&f, &f.ann, "c", NULL, c) == 0);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, a, 0, NULL), SFS_OK);
	CHECK(tfx_sql(f.s, th_is_pg() ? DROP_V12_PG
				   " UPDATE schema_version SET version = 11"
				      : DROP_V12_SQLITE
				   " PRAGMA user_version = 11") == 0);
	n = changes(&f);
	sfs_store_close(f.s);
	f.s = NULL;
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &f.s, NULL), SFS_OK);
	CHECK(tfx_sql_int(f.s, th_is_pg() ? "SELECT version FROM schema_version"
					  : "PRAGMA user_version") ==
	      DB_SCHEMA_VERSION);
	CHECK(changes(&f) == n);
	CHECK(tfx_sql_int(f.s, "SELECT COUNT(*) FROM file WHERE name = 'b'"
			       " AND tagnames = 'Hot'") == 1);
	CHECK(tfx_sql_int(f.s, "SELECT COUNT(*) FROM file"
			       " WHERE tagnames IS NULL") == 1);
	CHECK(bad_names(&f) == 0);
	REQUIRE_ST(sfs_file_restore(f.s, &f.ann, a, NULL, NULL), SFS_OK);
	CHECK_STR(got(&f, &f.ann, a), "cold|Hot");
	REQUIRE_ST(set_tags(&f, &f.ann, c, "cold,new"), SFS_OK);
	CHECK_STR(listed(&f, &f.ann, "cold"), "c:cold|new;a:cold|Hot");
	CHECK(bad_names(&f) == 0);
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_WARN);
	RUN(test_copy_follows_tags);
	RUN(test_copy_not_a_change);
	RUN(test_fsck_tag_names);
	RUN(test_fsck_tells_how_many_more);
	RUN(test_migrate_v11_tag_names);
	return th_report();
}
