/*
 * Unit tests of core/query*.c: the API's list parameters and their
 * validation, every filter of GET /files, sort orders, pages, paths and
 * directories, tags, substring search on both paths, shared-with-me and
 * tenant isolation. Each test opens a fresh temporary store.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include "speechfs/auth.h"
#include "speechfs/dir.h"
#include "speechfs/file.h"
#include "speechfs/fsck.h"
#include "speechfs/log.h"
#include "speechfs/query.h"
#include "speechfs/share.h"
#include "speechfs/store.h"
#include "db_i.h"
#include "file_i.h"
#include "fixture.h"
#include "testhelp.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct fx {
	char *dir;
	struct sfs_store *s;
	char tenant[SFS_ID_SIZE], tenant2[SFS_ID_SIZE];
	struct sfs_actor ann, bob, cat, zed; /* zed: the other tenant */
};

static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, NULL))
		return -1;
	if (tfx_tenant(f->s, "acme", 0, 0, f->tenant) ||
	    tfx_tenant(f->s, "other", 0, 0, f->tenant2) ||
	    tfx_user(f->s, f->tenant, "ann", NULL, &f->ann) ||
	    tfx_user(f->s, f->tenant, "bob", NULL, &f->bob) ||
	    tfx_user(f->s, f->tenant, "cat", NULL, &f->cat) ||
	    tfx_user(f->s, f->tenant2, "zed", NULL, &f->zed)) {
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

/* Make a content-less file; its uuid into id (may be NULL). 0 on success. */
static int mk(struct fx *f, const struct sfs_actor *a, const char *name,
	      const char *filename, const char *path, const char *tags_csv,
	      char id[SFS_ID_SIZE])
{
	struct sfs_file_spec sp;
	struct sfs_file out;
	struct sfs_err e;
	const char *tags[SFS_TAGS_MAX];
	char buf[1024], *p, *save = NULL;
	size_t n = 0;
	int rc;

	memset(&sp, 0, sizeof(sp));
	sfs_err_init(&e);
	if (tags_csv) {
		snprintf(buf, sizeof(buf), "%s", tags_csv);
		for (p = strtok_r(buf, ",", &save); p && n < SFS_TAGS_MAX;
		     p = strtok_r(NULL, ",", &save))
			tags[n++] = p;
	}
	sp.name = name;
	sp.filename = filename;
	sp.path = path;
	sp.tags = tags;
	sp.ntags = n;
	rc = sfs_file_create(f->s, a, &sp, NULL, &out, &e);
	if (rc) {
		fprintf(stderr, "mk %s: %s\n", name, e.message);
		return -1;
	}
	if (id)
		snprintf(id, SFS_ID_SIZE, "%s", out.id);
	sfs_file_release(&out);
	return 0;
}

/* Run SQL against the store (to set states the API cannot reach fast). */
/*
 * Query with key/value pairs (NULL-terminated); the names of the files
 * found, comma-joined, into names.
 */
static int vquery(struct fx *f, const struct sfs_actor *a, int shared,
		  struct sfs_file_list *l, struct sfs_err *e, va_list ap)
{
	struct sfs_query q;
	const char *k, *v;
	int rc = 0;

	sfs_query_init(&q);
	while (!rc && (k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		rc = sfs_query_param(&q, k, v, e);
	}
	if (!rc)
		rc = shared ? sfs_query_shared(f->s, a, &q, l, e)
			    : sfs_query_files(f->s, a, &q, l, e);
	sfs_query_release(&q);
	return rc;
}

static int query(struct fx *f, const struct sfs_actor *a,
		 struct sfs_file_list *l, ...)
{
	struct sfs_err e;
	va_list ap;
	int rc;

	sfs_err_init(&e);
	va_start(ap, l);
	rc = vquery(f, a, 0, l, &e, ap);
	va_end(ap);
	if (rc)
		fprintf(stderr, "query: %d %s\n", rc, e.message);
	return rc;
}

static int squery(struct fx *f, const struct sfs_actor *a,
		  struct sfs_file_list *l, ...)
{
	struct sfs_err e;
	va_list ap;
	int rc;

	sfs_err_init(&e);
	va_start(ap, l);
	rc = vquery(f, a, 1, l, &e, ap);
	va_end(ap);
	if (rc)
		fprintf(stderr, "squery: %d %s\n", rc, e.message);
	return rc;
}

static const char *names(const struct sfs_file_list *l)
{
	static char buf[4096];
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < l->n && o < sizeof(buf) - 1; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s",
				      i ? "," : "", l->files[i].name);
	return buf;
}

static const char *dirs(const struct sfs_file_list *l)
{
	static char buf[1024];
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < l->ndirs && o < sizeof(buf) - 1; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s",
				      i ? "," : "", l->dirs[i]);
	return buf;
}

/* Names of a query, or "ERR" when it fails. */
#define Q(fx, a, ...)                                                          \
	({                                                                     \
		struct sfs_file_list l_;                                       \
		static char r_[4096];                                          \
		if (query(fx, a, &l_, ##__VA_ARGS__, NULL)) {                  \
			snprintf(r_, sizeof(r_), "ERR");                       \
		} else {                                                       \
			snprintf(r_, sizeof(r_), "%s", names(&l_));            \
			sfs_file_list_release(&l_);                            \
		}                                                              \
		r_;                                                            \
	})

#define SQ(fx, a, ...)                                                         \
	({                                                                     \
		struct sfs_file_list l_;                                       \
		static char r_[4096];                                          \
		if (squery(fx, a, &l_, ##__VA_ARGS__, NULL)) {                 \
			snprintf(r_, sizeof(r_), "ERR");                       \
		} else {                                                       \
			snprintf(r_, sizeof(r_), "%s", names(&l_));            \
			sfs_file_list_release(&l_);                            \
		}                                                              \
		r_;                                                            \
	})

#define CHECK_STR(got, want)                                                   \
	do {                                                                   \
		const char *g_ = (got), *w_ = (want);                          \
		if (strcmp(g_, w_)) {                                          \
			fprintf(stderr,                                        \
				"%s:%d: %s: %s = \"%s\", want "                \
				"\"%s\"\n",                                    \
				__FILE__, __LINE__, th_name, #got, g_, w_);    \
			th_cur_failed = 1;                                     \
		}                                                              \
	} while (0)

/* ---- parameters -------------------------------------------------------- */

static void test_init_defaults(void)
{
	struct sfs_query q;

	sfs_query_init(&q);
	CHECK(q.page == 0);
	CHECK(q.size == 20);
	CHECK(q.deleted == 0);
	CHECK(q.discarded == -1);
	CHECK(q.ingestion == 0);
	CHECK(q.name == NULL && q.filename == NULL);
	CHECK(q.sha256[0] == '\0');
	CHECK(q.created_after == INT64_MIN);
	CHECK(q.created_before == INT64_MAX);
	CHECK(q.la_status == 0 && q.la_deleted == -1 && q.la_discarded == -1);
	CHECK(q.path && !strcmp(q.path, "/"));
	CHECK(q.recursive == 0);
	CHECK(q.sort == SFS_SORT_CREATED && q.desc == 1);
	CHECK(q.tags == NULL && q.ntags == 0 && q.tags_any == 0);
	CHECK(q.publish == -1 && q.access == -1);
	sfs_query_release(&q);
	CHECK(q.path == NULL);
	sfs_query_release(&q); /* twice is harmless */
}

static void test_param_values(void)
{
	struct sfs_query q;
	struct sfs_err e;

	sfs_err_init(&e);
	sfs_query_init(&q);
	CHECK_ST(sfs_query_param(&q, "page", "3", &e), SFS_OK);
	CHECK(q.page == 3);
	CHECK_ST(sfs_query_param(&q, "size", "100", &e), SFS_OK);
	CHECK(q.size == 100);
	CHECK_ST(sfs_query_param(&q, "size", "1", &e), SFS_OK);
	CHECK(q.size == 1);
	CHECK_ST(sfs_query_param(&q, "isDeleted", "true", &e), SFS_OK);
	CHECK(q.deleted == 1);
	CHECK_ST(sfs_query_param(&q, "isContentDiscarded", "false", &e),
		 SFS_OK);
	CHECK(q.discarded == 0);
	CHECK_ST(sfs_query_param(&q, "ingestionStatus", "PENDING,FAILED", &e),
		 SFS_OK);
	CHECK(q.ingestion == (1u << SFS_JS_PENDING | 1u << SFS_JS_FAILED));
	CHECK_ST(sfs_query_param(&q, "listeningAudio.status", "COMPLETED", &e),
		 SFS_OK);
	CHECK(q.la_status == 1u << SFS_JS_COMPLETED);
	CHECK_ST(sfs_query_param(&q, "listeningAudio.deleted", "true", &e),
		 SFS_OK);
	CHECK(q.la_deleted == 1);
	CHECK_ST(sfs_query_param(&q, "listeningAudio.contentDiscarded", "false",
				 &e),
		 SFS_OK);
	CHECK(q.la_discarded == 0);
	CHECK_ST(sfs_query_param(&q, "sha256",
				 "E3B0C44298FC1C149AFBF4C8996FB9"
				 "2427AE41E4649B934CA495991B7852B855",
				 &e),
		 SFS_OK);
	CHECK(!strcmp(q.sha256, "e3b0c44298fc1c149afbf4c8996fb924"
				"27ae41e4649b934ca495991b7852b855"));
	CHECK_ST(
		sfs_query_param(&q, "createdAfter", "2026-02-25T14:30:00Z", &e),
		SFS_OK);
	CHECK(q.created_after == 1772029800000LL);
	CHECK_ST(sfs_query_param(&q, "createdBefore", "2026-02-26", &e),
		 SFS_OK);
	CHECK(q.created_before == 1772064000000LL);
	CHECK_ST(sfs_query_param(&q, "path", "/a/b/", &e), SFS_OK);
	CHECK(!strcmp(q.path, "/a/b/"));
	CHECK_ST(sfs_query_param(&q, "recursive", "true", &e), SFS_OK);
	CHECK(q.recursive == 1);
	CHECK_ST(sfs_query_param(&q, "sort", "name", &e), SFS_OK);
	CHECK(q.sort == SFS_SORT_NAME && q.desc == 0);
	CHECK_ST(sfs_query_param(&q, "sort", "size,desc", &e), SFS_OK);
	CHECK(q.sort == SFS_SORT_SIZE && q.desc == 1);
	CHECK_ST(sfs_query_param(&q, "sort", "creationDate,asc", &e), SFS_OK);
	CHECK(q.sort == SFS_SORT_CREATED && q.desc == 0);
	CHECK_ST(sfs_query_param(&q, "tags", "Red, blue,red", &e), SFS_OK);
	CHECK(q.ntags == 2);
	CHECK_ST(sfs_query_param(&q, "tags", "x", &e), SFS_OK);
	CHECK(q.ntags == 1 && !strcmp(q.tags[0], "x"));
	CHECK_ST(sfs_query_param(&q, "tagsMatch", "any", &e), SFS_OK);
	CHECK(q.tags_any == 1);
	CHECK_ST(sfs_query_param(&q, "tagsMatch", "all", &e), SFS_OK);
	CHECK(q.tags_any == 0);
	CHECK_ST(sfs_query_param(&q, "publishMode", "INTERNAL", &e), SFS_OK);
	CHECK(q.publish == SFS_PUBLISH_INTERNAL);
	CHECK_ST(sfs_query_param(&q, "accessType", "DIRECT_SHARE", &e), SFS_OK);
	CHECK(q.access == SFS_ACCESS_DIRECT_SHARE);
	CHECK_ST(sfs_query_param(&q, "name", "abc", &e), SFS_OK);
	CHECK(q.name && !strcmp(q.name, "abc"));
	CHECK_ST(sfs_query_param(&q, "filename", "x.wav", &e), SFS_OK);
	CHECK(q.filename && !strcmp(q.filename, "x.wav"));
	CHECK(e.status == SFS_OK);
	sfs_query_release(&q);
}

static void test_param_invalid(void)
{
	static const struct {
		const char *key, *value;
	} cases[] = {
		{ "page", "-1" },
		{ "page", "x" },
		{ "page", "" },
		{ "page", "1.5" },
		{ "page", "99999999999999999999" },
		{ "size", "0" },
		{ "size", "101" },
		{ "size", "1000" },
		{ "size", "-5" },
		{ "size", "ten" },
		{ "isDeleted", "yes" },
		{ "isDeleted", "" },
		{ "isContentDiscarded", "1" },
		{ "recursive", "maybe" },
		{ "listeningAudio.deleted", "TRUEISH" },
		{ "listeningAudio.contentDiscarded", "no" },
		{ "ingestionStatus", "DONE" },
		{ "ingestionStatus", "PENDING," },
		{ "ingestionStatus", "pending" },
		{ "ingestionStatus", "" },
		{ "listeningAudio.status", "COMPLETED,NOPE" },
		{ "createdAfter", "yesterday" },
		{ "createdBefore", "2026-13-01" },
		{ "sha256", "abc" },
		{ "sha256", "g3b0c44298fc1c149afbf4c8996fb924"
			    "27ae41e4649b934ca495991b7852b855" },
		{ "path", "a/b/" },
		{ "path", "/a/b" },
		{ "path", "/a/../b/" },
		{ "path", "//" },
		{ "sort", "owner" },
		{ "sort", "name,up" },
		{ "sort", "" },
		{ "sort", "name,asc,desc" },
		{ "tags", "a,b\x01" },
		{ "tagsMatch", "some" },
		{ "publishMode", "PUBLIC" },
		{ "publishMode", "internal" },
		{ "accessType", "OWNER" },
		{ "accessType", "SHARED" },
	};
	struct sfs_query q;
	struct sfs_err e;
	size_t i;

	sfs_query_init(&q);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		sfs_err_init(&e);
		if (sfs_query_param(&q, cases[i].key, cases[i].value, &e) !=
			    SFS_INVALID ||
		    e.status != SFS_INVALID || e.nfields != 1 ||
		    strcmp(e.fields[0].field, cases[i].key)) {
			fprintf(stderr, "  %s=%s: status %d field '%s'\n",
				cases[i].key, cases[i].value, e.status,
				e.nfields ? e.fields[0].field : "");
			th_cur_failed = 1;
		}
	}
	/* nothing was changed by the rejected values */
	CHECK(q.page == 0 && q.size == 20 && q.deleted == 0);
	CHECK(!strcmp(q.path, "/") && q.sort == SFS_SORT_CREATED && q.desc);
	/* too many tags */
	{
		char many[512];
		size_t o = 0;

		for (i = 0; i < SFS_QUERY_TAGS_MAX + 1; i++)
			o += (size_t)snprintf(many + o, sizeof(many) - o,
					      "%st%zu", i ? "," : "", i);
		sfs_err_init(&e);
		CHECK_ST(sfs_query_param(&q, "tags", many, &e), SFS_INVALID);
		CHECK(e.nfields == 1 && !strcmp(e.fields[0].field, "tags"));
	}
	sfs_err_init(&e);
	CHECK_ST(sfs_query_param(&q, "owner", "me", &e), SFS_NOT_FOUND);
	sfs_err_init(&e);
	CHECK_ST(sfs_query_param(&q, "Page", "1", &e), SFS_NOT_FOUND);
	sfs_query_release(&q);
}

/* ---- GET /files -------------------------------------------------------- */

static void test_filters(void)
{
	struct fx f;
	char id[6][SFS_ID_SIZE];
	struct sfs_err e;
	int i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 6; i++) {
		char name[8];

		snprintf(name, sizeof(name), "f%d", i);
		REQUIRE(mk(&f, &f.ann, name, NULL, "/", NULL, id[i]) == 0);
	}
	/* created 1000, 2000, ... 6000 ms; one more in the far future */
	REQUIRE(tfx_sql(f.s, "UPDATE file SET created_at = id * 1000") == 0);
	CHECK_STR(Q(&f, &f.ann, "sort", "creationDate,asc"),
		  "f0,f1,f2,f3,f4,f5");
	/* inclusive bounds: 2000 .. 4000 */
	CHECK_STR(Q(&f, &f.ann, "createdAfter", "1970-01-01T00:00:02Z",
		    "createdBefore", "1970-01-01T00:00:04.000Z", "sort",
		    "creationDate,asc"),
		  "f1,f2,f3");
	CHECK_STR(Q(&f, &f.ann, "createdAfter", "1970-01-01T00:00:05.001Z"),
		  "f5");
	CHECK_STR(Q(&f, &f.ann, "createdBefore", "1970-01-01T00:00:00.999Z"),
		  "");

	sfs_err_init(&e);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id[0], 0, &e), SFS_OK);
	REQUIRE_ST(sfs_file_discard(f.s, &f.ann, id[1], &e), SFS_OK);
	CHECK_STR(Q(&f, &f.ann, "isDeleted", "true"), "f0");
	CHECK_STR(Q(&f, &f.ann, "sort", "creationDate,asc"), "f1,f2,f3,f4,f5");
	CHECK_STR(Q(&f, &f.ann, "isContentDiscarded", "true"), "f1");
	CHECK_STR(Q(&f, &f.ann, "isContentDiscarded", "false", "sort",
		    "creationDate,asc"),
		  "f2,f3,f4,f5");

	/* states set straight in the rows */
	REQUIRE(tfx_sql(f.s,
			"UPDATE file SET ingestion = 1 WHERE name = 'f2';"
			"UPDATE file SET ingestion = 4 WHERE name = 'f3';"
			"UPDATE file SET ingestion = 3, sha256 = '%s'"
			" WHERE name = 'f4';"
			"UPDATE file SET la_status = 3 WHERE name IN "
			"('f2', 'f5');"
			"UPDATE file SET la_status = 2 WHERE name = 'f3';"
			"UPDATE file SET la_deleted = 1 WHERE name = 'f5';"
			"UPDATE file SET la_purged = 1, la_deleted = 1"
			" WHERE name = 'f2';"
			"UPDATE file SET publish = 1 WHERE name = 'f4'",
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			"aaaa"
			"aaaaaa") == 0);
	CHECK_STR(Q(&f, &f.ann, "ingestionStatus", "PENDING"), "f2");
	CHECK_STR(Q(&f, &f.ann, "ingestionStatus", "FAILED,COMPLETED", "sort",
		    "name"),
		  "f3,f4");
	CHECK_STR(Q(&f, &f.ann, "ingestionStatus", "PROCESSING"), "");
	CHECK_STR(Q(&f, &f.ann, "sha256",
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		    "AAAAAA"),
		  "f4");
	CHECK_STR(Q(&f, &f.ann, "sha256",
		    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b78"
		    "52b855",
		    "sort", "name"),
		  "f1,f2,f3,f5");
	CHECK_STR(Q(&f, &f.ann, "listeningAudio.status", "COMPLETED", "sort",
		    "name"),
		  "f2,f5");
	CHECK_STR(Q(&f, &f.ann, "listeningAudio.status", "PROCESSING,PENDING"),
		  "f3");
	CHECK_STR(
		Q(&f, &f.ann, "listeningAudio.deleted", "true", "sort", "name"),
		"f2,f5");
	CHECK_STR(Q(&f, &f.ann, "listeningAudio.deleted", "false", "sort",
		    "name"),
		  "f1,f3,f4");
	CHECK_STR(Q(&f, &f.ann, "listeningAudio.contentDiscarded", "true"),
		  "f2");
	CHECK_STR(Q(&f, &f.ann, "publishMode", "INTERNAL"), "f4");
	CHECK_STR(Q(&f, &f.ann, "publishMode", "PRIVATE", "sort", "name"),
		  "f1,f2,f3,f5");
	/* combined */
	CHECK_STR(Q(&f, &f.ann, "listeningAudio.status", "COMPLETED",
		    "listeningAudio.contentDiscarded", "false"),
		  "f5");
	fx_close(&f);
}

static void test_sort_and_pages(void)
{
	static const char *const nm[] = { "delta", "Alpha", "charlie",
					  "bravo", "Echo",  "alpha" };
	struct sfs_file_list l;
	struct fx f;
	char seen[64];
	int i, page;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 6; i++)
		REQUIRE(mk(&f, &f.ann, nm[i], NULL, "/", NULL, NULL) == 0);
	/* equal creation times and sizes for ties: order by id */
	REQUIRE(tfx_sql(f.s, "UPDATE file SET created_at = 5000,"
			     " size = CASE name WHEN 'delta' THEN 30"
			     " WHEN 'charlie' THEN 10 WHEN 'Echo' THEN 30"
			     " ELSE 20 END") == 0);
	CHECK_STR(Q(&f, &f.ann, "sort", "creationDate,asc"),
		  "delta,Alpha,charlie,bravo,Echo,alpha");
	CHECK_STR(Q(&f, &f.ann, "sort", "creationDate,desc"),
		  "alpha,Echo,bravo,charlie,Alpha,delta");
	CHECK_STR(Q(&f, &f.ann), "alpha,Echo,bravo,charlie,Alpha,delta");
	CHECK_STR(Q(&f, &f.ann, "sort", "name"),
		  "Alpha,alpha,bravo,charlie,delta,Echo");
	CHECK_STR(Q(&f, &f.ann, "sort", "name,desc"),
		  "Echo,delta,charlie,bravo,alpha,Alpha");
	CHECK_STR(Q(&f, &f.ann, "sort", "size,asc"),
		  "charlie,Alpha,bravo,alpha,delta,Echo");
	CHECK_STR(Q(&f, &f.ann, "sort", "size,DESC"),
		  "Echo,delta,alpha,bravo,Alpha,charlie");
	/* distinct times */
	REQUIRE(tfx_sql(f.s, "UPDATE file SET created_at = 1000 + id") == 0);
	CHECK_STR(Q(&f, &f.ann, "sort", "creationDate,desc"),
		  "alpha,Echo,bravo,charlie,Alpha,delta");

	/* pages of 4: total on every page, no row lost or repeated */
	for (i = 6; i < 45; i++) {
		char name[16];

		snprintf(name, sizeof(name), "n%02d", i);
		REQUIRE(mk(&f, &f.ann, name, NULL, "/", NULL, NULL) == 0);
	}
	REQUIRE(tfx_sql(f.s,
			"UPDATE file SET created_at = 7 WHERE id %% 3 = 0") ==
		0);
	memset(seen, 0, sizeof(seen));
	for (page = 0; page < 13; page++) {
		char p[8];

		snprintf(p, sizeof(p), "%d", page);
		REQUIRE(query(&f, &f.ann, &l, "page", p, "size", "4", NULL) ==
			0);
		CHECK(l.total == 45);
		CHECK(l.n == (page < 11 ? 4u : page == 11 ? 1u : 0u));
		for (i = 0; i < (int)l.n; i++) {
			int64_t ino = l.files[i].ino;

			REQUIRE(ino > 0 && ino < 64);
			CHECK(!seen[ino]);
			seen[ino] = 1;
			CHECK(l.files[i].access == SFS_ACCESS_OWNER);
			CHECK(l.files[i].perm == SFS_PERM_OWNER);
		}
		sfs_file_list_release(&l);
	}
	for (i = 1, page = 0; i < 64; i++)
		page += seen[i];
	CHECK(page == 45);
	REQUIRE(query(&f, &f.ann, &l, "size", "100", NULL) == 0);
	CHECK(l.n == 45 && l.total == 45);
	sfs_file_list_release(&l);
	/* pages that end exactly at the last row, and past it */
	REQUIRE(query(&f, &f.ann, &l, "size", "45", NULL) == 0);
	CHECK(l.n == 45 && l.total == 45);
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.ann, &l, "size", "9", "page", "4", NULL) == 0);
	CHECK(l.n == 9 && l.total == 45);
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.ann, &l, "size", "9", "page", "5", NULL) == 0);
	CHECK(l.n == 0 && l.total == 45);
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.ann, &l, "size", "44", "page", "1", NULL) == 0);
	CHECK(l.n == 1 && l.total == 45);
	sfs_file_list_release(&l);
	/* a filter that leaves nothing: 0 on the first page and beyond */
	REQUIRE(query(&f, &f.ann, &l, "name", "zzzz", NULL) == 0);
	CHECK(l.n == 0 && l.total == 0);
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.ann, &l, "name", "zzzz", "page", "3", NULL) == 0);
	CHECK(l.n == 0 && l.total == 0);
	sfs_file_list_release(&l);
	fx_close(&f);
}

static void test_paths_and_dirs(void)
{
	struct sfs_file_list l;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "root", NULL, "/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "a1", NULL, "/a/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "ab1", NULL, "/a/b/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "abc1", NULL, "/a/b/c/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "sib", NULL, "/ab/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "dash", NULL, "/a-x/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.bob, "bobs", NULL, "/a/", NULL, NULL) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_dir_make(f.s, &f.ann, "/empty/", &e), SFS_OK);
	REQUIRE_ST(sfs_dir_make(f.s, &f.ann, "/a/new/", &e), SFS_OK);

	REQUIRE(query(&f, &f.ann, &l, "sort", "name", NULL) == 0);
	CHECK_STR(names(&l), "root");
	CHECK(l.has_dirs == 1);
	CHECK_STR(dirs(&l), "a,a-x,ab,empty");
	sfs_file_list_release(&l);

	REQUIRE(query(&f, &f.ann, &l, "path", "/a/", NULL) == 0);
	CHECK_STR(names(&l), "a1");
	CHECK(l.total == 1 && l.has_dirs == 1);
	CHECK_STR(dirs(&l), "b,new");
	sfs_file_list_release(&l);

	REQUIRE(query(&f, &f.ann, &l, "path", "/a/", "recursive", "true",
		      "sort", "name", NULL) == 0);
	CHECK_STR(names(&l), "a1,ab1,abc1");
	CHECK(l.total == 3 && l.has_dirs == 0 && l.ndirs == 0);
	sfs_file_list_release(&l);

	CHECK_STR(Q(&f, &f.ann, "recursive", "true", "sort", "name"),
		  "a1,ab1,abc1,dash,root,sib");
	CHECK_STR(Q(&f, &f.ann, "path", "/a/b/c/"), "abc1");
	CHECK_STR(Q(&f, &f.ann, "path", "/empty/"), "");
	CHECK_STR(Q(&f, &f.ann, "path", "/nothing/", "recursive", "true"), "");
	REQUIRE(query(&f, &f.ann, &l, "path", "/empty/", NULL) == 0);
	CHECK(l.total == 0 && l.has_dirs == 1 && l.ndirs == 0);
	sfs_file_list_release(&l);
	/* another user's files stay theirs */
	CHECK_STR(Q(&f, &f.bob, "path", "/a/"), "bobs");
	fx_close(&f);
}

static void test_tags(void)
{
	struct sfs_file_list l;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "rb", NULL, "/", "Red,Blue", NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "r", NULL, "/x/", "red", NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "bg", NULL, "/", "blue,Green", NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "none", NULL, "/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.bob, "bobred", NULL, "/", "RED", NULL) == 0);

	CHECK_STR(Q(&f, &f.ann, "tags", "RED", "recursive", "true", "sort",
		    "name"),
		  "r,rb");
	CHECK_STR(Q(&f, &f.ann, "tags", "red,BLUE", "recursive", "true"), "rb");
	CHECK_STR(Q(&f, &f.ann, "tags", "red,blue", "tagsMatch", "all",
		    "recursive", "true"),
		  "rb");
	CHECK_STR(Q(&f, &f.ann, "tags", "red,green", "tagsMatch", "any",
		    "recursive", "true", "sort", "name"),
		  "bg,r,rb");
	CHECK_STR(Q(&f, &f.ann, "tags", "red,green", "tagsMatch", "ANY", "sort",
		    "name"),
		  "bg,rb");
	CHECK_STR(Q(&f, &f.ann, "tags", "purple", "recursive", "true"), "");
	CHECK_STR(Q(&f, &f.ann, "tags", "purple,red", "recursive", "true"), "");
	CHECK_STR(Q(&f, &f.ann, "tags", "purple,red", "tagsMatch", "any",
		    "recursive", "true", "sort", "name"),
		  "r,rb");
	/* an empty tag list filters nothing */
	CHECK_STR(Q(&f, &f.ann, "tags", "", "sort", "name"), "bg,none,rb");
	/* each file comes with its tags, sorted case-insensitively */
	REQUIRE(query(&f, &f.ann, &l, "tags", "blue", "sort", "name", NULL) ==
		0);
	REQUIRE(l.n == 2);
	CHECK(l.total == 2);
	/* the tenant keeps the first spelling of a tag ("Blue") */
	CHECK(l.files[0].ntags == 2 && !strcmp(l.files[0].tags[0], "Blue") &&
	      !strcmp(l.files[0].tags[1], "Green"));
	CHECK(l.files[1].ntags == 2 && !strcmp(l.files[1].tags[0], "Blue") &&
	      !strcmp(l.files[1].tags[1], "Red"));
	sfs_file_list_release(&l);

	/*
	 * A common tag: small pages walk the files newest first and probe
	 * the tag, large ones start from the tagged files; the two must
	 * agree row for row and on the total.
	 */
	{
		char all[4096], paged[4096], p[8];
		int i;

		for (i = 0; i < 30; i++) {
			char name[8];

			snprintf(name, sizeof(name), "b%02d", i);
			REQUIRE(mk(&f, &f.ann, name, NULL, i % 2 ? "/y/" : "/",
				   i % 3 ? "bulk,Red" : "bulk", NULL) == 0);
		}
		REQUIRE(tfx_sql(f.s,
				"UPDATE file SET created_at = 100 + id %% 4") ==
			0);
		REQUIRE(query(&f, &f.ann, &l, "tags", "BULK,red", "recursive",
			      "true", "size", "100", NULL) == 0);
		CHECK(l.n == 20 && l.total == 20);
		snprintf(all, sizeof(all), "%s", names(&l));
		sfs_file_list_release(&l);
		paged[0] = '\0';
		for (i = 0; i < 21; i++) {
			snprintf(p, sizeof(p), "%d", i);
			REQUIRE(query(&f, &f.ann, &l, "tags", "BULK,red",
				      "recursive", "true", "size", "1", "page",
				      p, NULL) == 0);
			CHECK(l.total == 20);
			CHECK(l.n == (i < 20 ? 1u : 0u));
			if (l.n)
				snprintf(paged + strlen(paged),
					 sizeof(paged) - strlen(paged), "%s%s",
					 i ? "," : "", l.files[0].name);
			sfs_file_list_release(&l);
		}
		CHECK_STR(paged, all);
		CHECK_STR(Q(&f, &f.ann, "tags", "bulk", "recursive", "true",
			    "size", "2", "page", "14"),
			  "b06,b02");
	}
	fx_close(&f);
}

/*
 * The most values a listing binds: a directory's page (which counts with
 * its rows, so its conditions come twice) with the most tags a query takes,
 * all to match, and every other filter. Too small a table of values once
 * failed such a well-formed query with SFS_IO (found by fuzz_query).
 */
static void test_most_binds(void)
{
	char all[SFS_QUERY_TAGS_MAX * 8], one[8];
	struct sfs_file_list l;
	struct fx f;
	size_t n = 0;
	int i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < SFS_QUERY_TAGS_MAX; i++)
		n += (size_t)snprintf(all + n, sizeof(all) - n, "%st%02d",
				      i ? "," : "", i);
	REQUIRE(mk(&f, &f.ann, "every", "every.wav", "/d/", all, NULL) == 0);
	snprintf(one, sizeof(one), "t%02d", SFS_QUERY_TAGS_MAX - 1);
	REQUIRE(mk(&f, &f.ann, "last", NULL, "/d/", one, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "elsewhere", NULL, "/e/", all, NULL) == 0);

	CHECK_STR(
		Q(&f, &f.ann, "recursive", "true", "tags", all, "sort", "name"),
		"elsewhere,every");
	/* a directory's page, every tag to match, every filter */
	CHECK_STR(Q(&f, &f.ann, "path", "/d/", "tags", all, "isDeleted",
		    "false", "isContentDiscarded", "false", "isPurged", "false",
		    "publishMode", "PRIVATE", "createdAfter",
		    "2000-01-01T00:00:00Z", "createdBefore",
		    "2999-01-01T00:00:00Z", "listeningAudio.deleted", "false",
		    "listeningAudio.contentDiscarded", "false"),
		  "every");
	/* the same, any tag matching */
	CHECK_STR(Q(&f, &f.ann, "path", "/d/", "tags", all, "tagsMatch", "any",
		    "isDeleted", "false", "isPurged", "false", "sort", "name"),
		  "every,last");
	/* a later page: its offset is bound too */
	REQUIRE(query(&f, &f.ann, &l, "path", "/d/", "tags", all, "tagsMatch",
		      "any", "sort", "name", "size", "1", "page", "1",
		      NULL) == 0);
	CHECK(l.n == 1 && l.total == 2 && !strcmp(l.files[0].name, "last"));
	sfs_file_list_release(&l);
	/* recursive, with a name search */
	CHECK_STR(Q(&f, &f.ann, "recursive", "true", "path", "/", "tags", all,
		    "name", "ever", "filename", "ever", "sort", "name"),
		  "every");
	CHECK_STR(Q(&f, &f.ann, "recursive", "true", "tags", all, "name", "e",
		    "sort", "name"),
		  "elsewhere,every");
	fx_close(&f);
}

/* The total of a listing with one tag and no other filter. */
static int64_t tag_total(struct fx *f, const struct sfs_actor *a,
			 const char *deleted, int other_filter)
{
	struct sfs_file_list l;
	int64_t total;

	/* a page of one: the total takes the count */
	if (other_filter ? query(f, a, &l, "tags", "HOT", "recursive", "true",
				 "size", "1", "isDeleted", deleted,
				 "isContentDiscarded", "false", NULL)
			 : query(f, a, &l, "tags", "HOT", "recursive", "true",
				 "size", "1", "isDeleted", deleted, NULL))
		return -1;
	total = l.total;
	sfs_file_list_release(&l);
	return total;
}

/*
 * A listing driven by one tag counts from the tags' rows (they carry the
 * owner, schema v7) and takes off the deleted files; with another filter
 * it counts the files themselves. Both agree, per owner and tenant, with
 * deleted files of the owner tagged and not.
 */
static void test_tag_count(void)
{
	char id[SFS_ID_SIZE], name[16];
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "h%02d", i);
		REQUIRE(mk(&f, &f.ann, name, NULL, i % 2 ? "/x/" : "/",
			   i % 3 ? "hot,cold" : "hot", id) == 0);
		if (i % 3 == 1)
			REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id, 0, NULL),
				   SFS_OK);
	}
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "c%02d", i);
		REQUIRE(mk(&f, &f.ann, name, NULL, "/", "cold", id) == 0);
		if (!i)
			REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id, 0, NULL),
				   SFS_OK);
	}
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "b%02d", i);
		REQUIRE(mk(&f, &f.bob, name, NULL, "/", "Hot", NULL) == 0);
	}
	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "z%02d", i);
		REQUIRE(mk(&f, &f.zed, name, NULL, "/", "hot", NULL) == 0);
	}
	CHECK(tag_total(&f, &f.ann, "false", 0) == 8);
	CHECK(tag_total(&f, &f.ann, "false", 1) == 8);
	CHECK(tag_total(&f, &f.ann, "true", 0) == 4);
	CHECK(tag_total(&f, &f.ann, "true", 1) == 4);
	CHECK(tag_total(&f, &f.bob, "false", 0) == 5);
	CHECK(tag_total(&f, &f.bob, "true", 0) == 0);
	CHECK(tag_total(&f, &f.cat, "false", 0) == 0);
	CHECK(tag_total(&f, &f.zed, "false", 0) == 2);
	/* a restored file counts again, its tags changed count as they are */
	REQUIRE(tfx_sql(f.s, "UPDATE file SET is_deleted = 0 WHERE name ="
			     " 'h01'") == 0);
	CHECK(tag_total(&f, &f.ann, "false", 0) == 9);
	CHECK(tag_total(&f, &f.ann, "false", 1) == 9);
	/* the rows carry their file's owner */
	CHECK(tfx_sql_int(f.s, "SELECT COUNT(*) FROM file_tag ft JOIN file fl"
			       " ON fl.id = ft.file_id"
			       " WHERE ft.owner_id <> fl.owner_id") == 0);
	CHECK(tfx_sql_int(f.s, "SELECT COUNT(*) FROM file_tag") ==
	      12 + 8 + 3 + 5 + 2);
	fx_close(&f);
}

/* Counters of tag_count that differ from file_tag's rows (-1: error). */
static int64_t counters_off(struct sfs_store *s)
{
	return tfx_sql_int(
		s, "SELECT COUNT(*) FROM (SELECT c.owner_id FROM tag_count c"
		   " WHERE c.n <> (SELECT COUNT(*) FROM file_tag ft"
		   " WHERE ft.owner_id = c.owner_id AND ft.tag_id = c.tag_id)"
		   " UNION ALL SELECT ft.owner_id FROM file_tag ft"
		   " WHERE NOT EXISTS (SELECT 1 FROM tag_count c"
		   " WHERE c.owner_id = ft.owner_id"
		   " AND c.tag_id = ft.tag_id)) AS x");
}

/* An owner's counter of a tag (-1: no row). */
static int64_t counter(struct sfs_store *s, const struct sfs_actor *a,
		       const char *tag)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT c.n FROM tag_count c JOIN tag t ON t.id = c.tag_id"
		 " WHERE c.owner_id = %lld AND t.name = '%s'",
		 (long long)a->user, tag);
	return tfx_sql_int(s, sql);
}

/* An owner's files with tag 'hot', deleted or not, counted from rows. */
static int64_t hot_files(struct sfs_store *s, const struct sfs_actor *a,
			 int deleted)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*) FROM file f JOIN file_tag ft"
		 " ON ft.file_id = f.id JOIN tag t ON t.id = ft.tag_id"
		 " WHERE f.owner_id = %lld AND t.name = 'hot'"
		 " AND f.is_deleted = %d",
		 (long long)a->user, deleted);
	return tfx_sql_int(s, sql);
}

static enum sfs_status set_tags(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, const char *tag)
{
	struct sfs_file_update u;

	memset(&u, 0, sizeof(u));
	u.set = SFS_UPD_TAGS;
	u.tags = &tag;
	u.ntags = tag ? 1 : 0;
	return sfs_file_update(s, a, id, &u, NULL, NULL);
}

/*
 * The counters of schema v9 (each owner's files per tag) follow every
 * change of tags: new files, tags replaced and cleared, files deleted,
 * purged and restored; a one-tag listing's total is read from them (a
 * counter changed by hand shows in it), and fsck finds a wrong or
 * missing counter and makes it again.
 */
static void test_tag_counters(void)
{
	char id[8][SFS_ID_SIZE], name[16];
	struct sfs_fsck_report r;
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "t%02d", i);
		REQUIRE(mk(&f, &f.ann, name, NULL, i % 2 ? "/x/" : "/",
			   i < 5 ? "hot" : "hot,cold", id[i]) == 0);
	}
	REQUIRE(mk(&f, &f.bob, "b", NULL, "/", "hot", NULL) == 0);
	CHECK(counter(f.s, &f.ann, "hot") == 8);
	CHECK(counter(f.s, &f.ann, "cold") == 3);
	CHECK(counter(f.s, &f.bob, "hot") == 1);
	REQUIRE_ST(set_tags(f.s, &f.ann, id[0], "cold"), SFS_OK);
	REQUIRE_ST(set_tags(f.s, &f.ann, id[1], NULL), SFS_OK);
	REQUIRE_ST(set_tags(f.s, &f.ann, id[5], "hot"), SFS_OK);
	CHECK(counter(f.s, &f.ann, "hot") == 6);
	CHECK(counter(f.s, &f.ann, "cold") == 3);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id[2], 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id[3], 1, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id[4], 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_restore(f.s, &f.ann, id[4], NULL, NULL), SFS_OK);
	CHECK(counters_off(f.s) == 0);
	CHECK(hot_files(f.s, &f.ann, 0) == 4 && hot_files(f.s, &f.ann, 1) == 2);
	CHECK(tag_total(&f, &f.ann, "false", 0) == 4);
	CHECK(tag_total(&f, &f.ann, "true", 0) == 2);
	CHECK(tag_total(&f, &f.bob, "false", 0) == 1);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0 && r.bad_counters == 0);
	/* the total is the counter's */
	REQUIRE(tfx_sql(f.s,
			"UPDATE tag_count SET n = n + 100"
			" WHERE owner_id = %lld AND tag_id ="
			" (SELECT id FROM tag WHERE name = 'hot')",
			(long long)f.ann.user) == 0);
	CHECK(tag_total(&f, &f.ann, "false", 0) == 104);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 1 && r.bad_counters == 1);
	REQUIRE(tfx_sql(f.s,
			"DELETE FROM tag_count WHERE owner_id = %lld"
			" AND tag_id = (SELECT id FROM tag"
			" WHERE name = 'cold')",
			(long long)f.ann.user) == 0);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 2 && r.bad_counters == 2 &&
	      r.repaired == 0);
	CHECK(tfx_fsck_lines(f.s, 1, &r) == 3 && r.bad_counters == 2 &&
	      r.repaired == 1);
	CHECK(counters_off(f.s) == 0);
	CHECK(counter(f.s, &f.ann, "cold") == 3);
	CHECK(tag_total(&f, &f.ann, "false", 0) == 4);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0 && r.bad_counters == 0);
	fx_close(&f);
}

struct tagger {
	struct sfs_store *s;
	const struct sfs_actor *a;
	int k, ops, fails;
};

/* One writer: new tagged files, tags replaced, files deleted. */
static void *tagger_main(void *arg)
{
	struct tagger *t = arg;
	static const char *const both[] = { "hot", "cold" };
	struct sfs_file_spec sp;
	struct sfs_file out;
	char name[32];
	int i;

	for (i = 0; i < 24; i++) {
		memset(&sp, 0, sizeof(sp));
		snprintf(name, sizeof(name), "w%d-%02d", t->k, i);
		sp.name = name;
		sp.path = i % 2 ? "/a/" : "/";
		sp.tags = both;
		sp.ntags = i % 4 ? 2 : 1;
		if (sfs_file_create(t->s, t->a, &sp, NULL, &out, NULL)) {
			t->fails++;
			continue;
		}
		t->ops++;
		if (i % 3 == 0 && set_tags(t->s, t->a, out.id, "cold"))
			t->fails++;
		if (i % 5 == 0 &&
		    sfs_file_delete(t->s, t->a, out.id, i % 2, NULL))
			t->fails++;
		sfs_file_release(&out);
	}
	return NULL;
}

/*
 * Two store handles (two daemons) change one owner's tags at once: the
 * counters stay exact, as the listings' totals show.
 */
static void test_tag_counters_writers(void)
{
	struct sfs_store *s2 = NULL;
	struct tagger t[2];
	pthread_t th[2];
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &s2, NULL), SFS_OK);
	for (i = 0; i < 2; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].s = i ? s2 : f.s;
		t[i].a = &f.ann;
		t[i].k = i;
		REQUIRE(pthread_create(&th[i], NULL, tagger_main, &t[i]) == 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		CHECK(t[i].fails == 0 && t[i].ops == 24);
	}
	sfs_store_close(s2);
	CHECK(counters_off(f.s) == 0);
	/* per writer: 24 files with hot, 8 of them replaced by cold */
	CHECK(counter(f.s, &f.ann, "hot") == 2 * 16);
	CHECK(hot_files(f.s, &f.ann, 0) + hot_files(f.s, &f.ann, 1) == 32);
	CHECK(tag_total(&f, &f.ann, "false", 0) == hot_files(f.s, &f.ann, 0));
	CHECK(tag_total(&f, &f.ann, "true", 0) == hot_files(f.s, &f.ann, 1));
	fx_close(&f);
}

/*
 * Every name of a listing by pages of 3 (cursor: by cursor pages), with
 * the total of its first page; "ERR" on failure. other: a second filter
 * that changes nothing but takes the listing off the one-tag path.
 */
static const char *walk(struct fx *f, const char *deleted, const char *sort,
			int other, int cursor, int64_t *total)
{
	static char buf[4096];
	char pg[16], cur[SFS_CURSOR_SIZE] = "";
	struct sfs_file_list l;
	size_t o = 0;
	int page = 0, rc;

	buf[0] = '\0';
	*total = -1;
	for (;;) {
		struct sfs_query q;
		struct sfs_err e;

		sfs_query_init(&q);
		sfs_err_init(&e);
		snprintf(pg, sizeof(pg), "%d", page);
		rc = sfs_query_param(&q, "tags", "hot", &e) ||
		     sfs_query_param(&q, "recursive", "true", &e) ||
		     sfs_query_param(&q, "size", "3", &e) ||
		     sfs_query_param(&q, "sort", sort, &e) ||
		     sfs_query_param(&q, "isDeleted", deleted, &e) ||
		     (other &&
		      sfs_query_param(&q, "isContentDiscarded", "false", &e)) ||
		     (cursor && cur[0] &&
		      sfs_query_param(&q, "cursor", cur, &e)) ||
		     (!cursor && sfs_query_param(&q, "page", pg, &e)) ||
		     sfs_query_files(f->s, &f->ann, &q, &l, &e);
		if (rc) {
			fprintf(stderr, "walk: %s\n", e.message);
			sfs_query_release(&q);
			return "ERR";
		}
		if (*total < 0)
			*total = l.total;
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s",
				      o && l.n ? "," : "", names(&l));
		if (!l.more || o >= sizeof(buf) - 1 ||
		    (cursor && !sfs_query_cursor(&q, &l, cur, sizeof(cur)))) {
			sfs_file_list_release(&l);
			sfs_query_release(&q);
			break;
		}
		sfs_file_list_release(&l);
		sfs_query_release(&q);
		page++;
	}
	return buf;
}

/*
 * A one-tag listing's pages come from the tags' rows (schema v10: they
 * carry their file's creationDate and deletion mark): in both orders, by
 * page and by cursor, live and deleted, they list what the files' own
 * walk lists, ties in creationDate included, and follow deletions and
 * restores. A row whose copy is changed by hand shows in the page (the
 * page is read from them), and fsck finds it and makes it again.
 */
static void test_tag_pages(void)
{
	char id[14][SFS_ID_SIZE], name[16], want[4096];
	struct sfs_fsck_report r;
	int64_t t1, t2;
	const char *sorts[] = { "creationDate,desc", "creationDate,asc" };
	struct fx f;
	int i, k, cur;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 14; i++) {
		snprintf(name, sizeof(name), "p%02d", i);
		REQUIRE(mk(&f, &f.ann, name, NULL, i % 2 ? "/x/y/" : "/",
			   i % 3 ? "hot" : "cold,hot", id[i]) == 0);
	}
	REQUIRE(mk(&f, &f.ann, "not", NULL, "/", "cold", NULL) == 0);
	REQUIRE(mk(&f, &f.bob, "bobs", NULL, "/", "hot", NULL) == 0);
	/* some of the same millisecond, some not */
	REQUIRE(tfx_sql(f.s, "UPDATE file SET created_at = created_at + 5000"
			     " WHERE name IN ('p03', 'p04', 'p09')") == 0);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id[2], 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id[7], 1, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id[11], 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_restore(f.s, &f.ann, id[11], NULL, NULL), SFS_OK);
	for (k = 0; k < 2; k++) {
		for (cur = 0; cur < 2; cur++) {
			snprintf(want, sizeof(want), "%s",
				 walk(&f, "false", sorts[k], 1, cur, &t1));
			CHECK_STR(walk(&f, "false", sorts[k], 0, cur, &t2),
				  want);
			CHECK(t1 == 12 && t2 == 12);
			snprintf(want, sizeof(want), "%s",
				 walk(&f, "true", sorts[k], 1, cur, &t1));
			CHECK_STR(walk(&f, "true", sorts[k], 0, cur, &t2),
				  want);
			CHECK(t1 == 2 && t2 == 2);
		}
	}
	CHECK_STR(walk(&f, "false", sorts[0], 0, 0, &t1),
		  "p09,p04,p03,p13,p12,p11,p10,p08,p06,p05,p01,p00");
	CHECK_STR(walk(&f, "true", sorts[1], 0, 0, &t1), "p02,p07");
	/* page beyond the end: no rows, the total all the same */
	CHECK(tag_total(&f, &f.ann, "false", 0) == 12);
	CHECK_STR(Q(&f, &f.ann, "tags", "hot", "recursive", "true", "size", "5",
		    "page", "7"),
		  "");
	/* the page is the tags' rows': a copy changed by hand shows */
	REQUIRE(tfx_sql(f.s, "UPDATE file_tag SET created_at = created_at"
			     " - 100000 WHERE file_id = (SELECT id FROM file"
			     " WHERE name = 'p09')") == 0);
	CHECK_STR(
		Q(&f, &f.ann, "tags", "hot", "recursive", "true", "size", "2"),
		"p04,p03");
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 1 && r.bad_tag_rows == 2);
	CHECK(tfx_fsck_lines(f.s, 1, &r) == 2 && r.bad_tag_rows == 2 &&
	      r.repaired == 1);
	CHECK_STR(
		Q(&f, &f.ann, "tags", "hot", "recursive", "true", "size", "2"),
		"p09,p04");
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0 && r.bad_tag_rows == 0);
	fx_close(&f);
}

static void test_substring(void)
{
	struct sfs_file_list l;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "Meeting Notes", "meeting-2026.WAV", "/", NULL,
		   NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "100% done", "a_b.wav", "/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "100 percent", "ab.wav", "/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "say \"hi\"", NULL, "/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "it's", "back\\slash", "/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "Überblick", NULL, "/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.bob, "meeting of bob", NULL, "/", NULL, NULL) == 0);

	/* >= 3 characters: the trigram index, case-insensitive */
	CHECK_STR(Q(&f, &f.ann, "name", "MEET"), "Meeting Notes");
	CHECK_STR(Q(&f, &f.ann, "name", "ting no"), "Meeting Notes");
	CHECK_STR(Q(&f, &f.ann, "name", "eting"), "Meeting Notes");
	CHECK_STR(Q(&f, &f.ann, "name", "notes!"), "");
	CHECK_STR(Q(&f, &f.ann, "name", "100", "sort", "name"),
		  "100 percent,100% done");
	CHECK_STR(Q(&f, &f.ann, "name", "0% d"), "100% done");
	CHECK_STR(Q(&f, &f.ann, "name", "\"hi\""), "say \"hi\"");
	CHECK_STR(Q(&f, &f.ann, "name", "y \"h"), "say \"hi\"");
	CHECK_STR(Q(&f, &f.ann, "name", "t's"), "it's");
	CHECK_STR(Q(&f, &f.ann, "name", "blick"), "Überblick");
	CHECK_STR(Q(&f, &f.ann, "name", "Übe"), "Überblick");
	CHECK_STR(Q(&f, &f.ann, "name", "AND"), "");
	CHECK_STR(Q(&f, &f.ann, "name", "a OR b"), "");
	CHECK_STR(Q(&f, &f.ann, "name", "NEAR(x y)"), "");
	CHECK_STR(Q(&f, &f.ann, "name", "*"), "");
	CHECK_STR(Q(&f, &f.ann, "filename", ".wav", "sort", "name"),
		  "100 percent,100% done,Meeting Notes");
	CHECK_STR(Q(&f, &f.ann, "filename", "a_b"), "100% done");
	CHECK_STR(Q(&f, &f.ann, "filename", "k\\s"), "it's");
	/* name and filename together, each on its own column */
	CHECK_STR(Q(&f, &f.ann, "name", "100", "filename", "ab."),
		  "100 percent");
	CHECK_STR(Q(&f, &f.ann, "name", "wav"), "");

	/* 1-2 characters: LIKE, with % _ \ taken literally */
	CHECK_STR(Q(&f, &f.ann, "name", "%", "sort", "name"), "100% done");
	CHECK_STR(Q(&f, &f.ann, "name", "0%"), "100% done");
	CHECK_STR(Q(&f, &f.ann, "filename", "_"), "100% done");
	CHECK_STR(Q(&f, &f.ann, "filename", "\\"), "it's");
	CHECK_STR(Q(&f, &f.ann, "name", "\"", "sort", "name"), "say \"hi\"");
	CHECK_STR(Q(&f, &f.ann, "name", "'"), "it's");
	CHECK_STR(Q(&f, &f.ann, "name", "mE"), "Meeting Notes");
	CHECK_STR(Q(&f, &f.ann, "name", "10", "sort", "name"),
		  "100 percent,100% done");
	CHECK_STR(Q(&f, &f.ann, "filename", "Av", "sort", "name"),
		  "100 percent,100% done,Meeting Notes");
	CHECK_STR(Q(&f, &f.ann, "filename", "-2"), "Meeting Notes");
	CHECK_STR(Q(&f, &f.ann, "name", "zz"), "");
	/* an empty needle filters nothing */
	REQUIRE(query(&f, &f.ann, &l, "name", "", NULL) == 0);
	CHECK(l.total == 6);
	sfs_file_list_release(&l);

	/* the index follows renames */
	REQUIRE(tfx_sql(f.s, "UPDATE file SET name = 'Renamed' WHERE name ="
			     " 'Meeting Notes'") == 0);
	CHECK_STR(Q(&f, &f.ann, "name", "meet"), "");
	CHECK_STR(Q(&f, &f.ann, "name", "name"), "Renamed");
	fx_close(&f);
}

/*
 * A new file's name waits in fts_pending for the index (schema v8, on
 * SQLite): a search finds it there (LIKE) without writing, so it finds a
 * file made just before and never waits for the write lock; renames and
 * deletes of a waiting row leave the index alone; the janitor indexes
 * what waits in transactions of 1,000 names, and the index stays the
 * table's (FTS5's own check).
 */
static int pending(struct fx *f)
{
	return th_is_pg()
		       ? 0
		       : tfx_sql_int(f->s, "SELECT count(*) FROM fts_pending");
}

static void test_names_index_deferred(void)
{
	int lite = !th_is_pg();
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "Quarterly Review", "q.wav", "/", NULL, NULL) ==
		0);
	CHECK(pending(&f) == lite);
	CHECK_STR(Q(&f, &f.ann, "name", "quarter"), "Quarterly Review");
	CHECK_STR(Q(&f, &f.ann, "filename", "q.w"), "Quarterly Review");
	CHECK_STR(Q(&f, &f.ann, "name", "q.w"), "");
	CHECK(pending(&f) == lite); /* a search writes nothing */
	/* renamed while it waits: found by its new name only */
	REQUIRE(mk(&f, &f.ann, "alpha draft", NULL, "/", NULL, NULL) == 0);
	REQUIRE(tfx_sql(f.s, "UPDATE file SET name = 'omega final' WHERE name"
			     " = 'alpha draft'") == 0);
	CHECK_STR(Q(&f, &f.ann, "name", "alpha"), "");
	CHECK_STR(Q(&f, &f.ann, "name", "omega"), "omega final");
	/* its row removed while it waits */
	REQUIRE(mk(&f, &f.ann, "doomed take", NULL, "/", NULL, NULL) == 0);
	REQUIRE(tfx_sql(f.s, "DELETE FROM file WHERE name = 'doomed take'") ==
		0);
	CHECK_STR(Q(&f, &f.ann, "name", "doomed"), "");
	/* the janitor's pass indexes them: found the same way */
	CHECK_ST(sfsi_fts_catch_up(f.s, NULL), SFS_OK);
	CHECK(pending(&f) == 0);
	CHECK_STR(Q(&f, &f.ann, "name", "quarter"), "Quarterly Review");
	CHECK_STR(Q(&f, &f.ann, "name", "omega"), "omega final");
	/* renamed once indexed: the index follows, as before */
	REQUIRE(tfx_sql(f.s, "UPDATE file SET name = 'Yearly Review' WHERE"
			     " name = 'Quarterly Review'") == 0);
	CHECK_STR(Q(&f, &f.ann, "name", "quarter"), "");
	CHECK_STR(Q(&f, &f.ann, "name", "early rev"), "Yearly Review");
	/* shared-with-me searches find waiting names too */
	REQUIRE(mk(&f, &f.ann, "Team Sync", NULL, "/", NULL, NULL) == 0);
	REQUIRE(tfx_sql(f.s, "UPDATE file SET publish = 1 WHERE name ="
			     " 'Team Sync'") == 0);
	CHECK_STR(SQ(&f, &f.bob, "name", "team"), "Team Sync");
	CHECK(pending(&f) == lite);
	if (lite) {
		/* more than one transaction's worth: 1,500 ids of rows gone
		 * wait before the new file's, and all are taken */
		REQUIRE(tfx_sql(f.s,
				"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
				" SELECT i + 1 FROM n WHERE i < 1500)"
				" INSERT INTO fts_pending(id) SELECT -i FROM "
				"n") == 0);
		CHECK_ST(sfsi_fts_catch_up(f.s, NULL), SFS_OK);
		CHECK(pending(&f) == 0);
		CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file_fts WHERE"
				       " file_fts MATCH '\"team\"'") == 1);
		CHECK(tfx_sql(f.s, "INSERT INTO file_fts(file_fts)"
				   " VALUES ('integrity-check')") == 0);
	}
	CHECK_STR(SQ(&f, &f.bob, "name", "team"), "Team Sync");
	if (lite) {
		/* another process holds the write lock (a batch, db migrate,
		 * fsck --repair): a search of waiting names answers at once */
		char path[4096];
		sqlite3 *h = NULL;

		REQUIRE(mk(&f, &f.ann, "Lock Held", NULL, "/", NULL, NULL) ==
			0);
		snprintf(path, sizeof(path), "%s/speechfs.db", f.dir);
		REQUIRE(sqlite3_open(path, &h) == SQLITE_OK);
		REQUIRE(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
			SQLITE_OK);
		CHECK_STR(Q(&f, &f.ann, "name", "lock he"), "Lock Held");
		CHECK(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL) ==
		      SQLITE_OK);
		sqlite3_close(h);
	}
	fx_close(&f);
}

/*
 * fsck checks the names' index (derived data of the files' names): on
 * SQLite a name waiting for a file that is gone, and a file missing from
 * FTS5's index (a search of three or more characters then misses it),
 * while names still waiting are no finding; a stale entry is found by
 * --repair's integrity check; on PostgreSQL a pg_trgm index gone.
 * --repair makes the index again from the files.
 */
static void test_fsck_names_index(void)
{
	int lite = !th_is_pg();
	struct sfs_fsck_report r;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "Alpha Take", NULL, "/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "Beta Take", NULL, "/", NULL, NULL) == 0);
	CHECK_ST(sfsi_fts_catch_up(f.s, NULL), SFS_OK);
	REQUIRE(mk(&f, &f.ann, "Delta Take", NULL, "/", NULL, NULL) == 0);
	CHECK(pending(&f) == lite);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0 && r.bad_name_index == 0);
	if (lite) {
		REQUIRE(tfx_sql(f.s,
				"INSERT INTO file_fts(file_fts, rowid, name,"
				" filename) SELECT 'delete', id, name, filename"
				" FROM file WHERE name = 'Beta Take';"
				" INSERT INTO fts_pending(id) VALUES (-7)") ==
			0);
		CHECK_STR(Q(&f, &f.ann, "name", "beta"), "");
		CHECK(tfx_fsck_lines(f.s, 0, &r) == 2 && r.bad_name_index == 2);
		/* the check changed nothing */
		CHECK(pending(&f) == 2);
		CHECK_STR(Q(&f, &f.ann, "name", "beta"), "");
		CHECK(tfx_fsck_lines(f.s, 0, &r) == 2 && r.bad_name_index == 2);
		CHECK(tfx_fsck_lines(f.s, 1, &r) == 3 &&
		      r.bad_name_index == 2 && r.repaired == 1);
		CHECK(pending(&f) == 0);
		CHECK(tfx_sql(f.s, "INSERT INTO file_fts(file_fts, rank)"
				   " VALUES ('integrity-check', 1)") == 0);
		/* a stale entry (the index holds another name for the file):
		 * not seen by the readers' probes, found by --repair's
		 * integrity check */
		REQUIRE(tfx_sql(f.s,
				"INSERT INTO file_fts(file_fts, rowid, name,"
				" filename) SELECT 'delete', id, name, filename"
				" FROM file WHERE name = 'Alpha Take';"
				" INSERT INTO file_fts(rowid, name, filename)"
				" SELECT id, 'Zeta Take', filename FROM file"
				" WHERE name = 'Alpha Take'") == 0);
		CHECK_STR(Q(&f, &f.ann, "name", "alpha"), "");
		CHECK(tfx_fsck_lines(f.s, 0, &r) == 0 && r.bad_name_index == 0);
		CHECK(tfx_fsck_lines(f.s, 1, &r) == 2 &&
		      r.bad_name_index == 1 && r.repaired == 1);
	} else {
		REQUIRE(tfx_sql(f.s, "DROP INDEX file_name_trgm") == 0);
		CHECK(tfx_fsck_lines(f.s, 0, &r) == 1 && r.bad_name_index == 1);
		CHECK(tfx_fsck_lines(f.s, 1, &r) == 2 &&
		      r.bad_name_index == 1 && r.repaired == 1);
		CHECK(tfx_sql_int(f.s, "SELECT COUNT(*) FROM pg_indexes WHERE"
				       " schemaname = current_schema() AND"
				       " indexname = 'file_name_trgm'") == 1);
	}
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0 && r.bad_name_index == 0);
	CHECK_STR(Q(&f, &f.ann, "name", "beta"), "Beta Take");
	CHECK_STR(Q(&f, &f.ann, "name", "delta"), "Delta Take");
	CHECK_STR(Q(&f, &f.ann, "name", "alpha"), "Alpha Take");
	fx_close(&f);
}

/* A store of schema 7 (every name indexed at its commit) moves to 8. */
static void test_names_index_from_v7(void)
{
	struct fx f;

	if (th_is_pg())
		return; /* SQLite's index */
	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "Alpha Take", NULL, "/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "Beta Take", NULL, "/", NULL, NULL) == 0);
	REQUIRE(tfx_sql(f.s,
			"INSERT INTO file_fts(rowid, name, filename)"
			" SELECT id, name, filename FROM file;"
			" DROP TRIGGER file_fts_ai; DROP TRIGGER file_fts_ad;"
			" DROP TRIGGER file_fts_au; DROP TABLE fts_pending;"
			" CREATE TRIGGER file_fts_ai AFTER INSERT ON file BEGIN"
			" INSERT INTO file_fts(rowid, name, filename)"
			" VALUES (new.id, new.name, new.filename); END;"
			" CREATE TRIGGER file_fts_ad AFTER DELETE ON file BEGIN"
			" INSERT INTO file_fts(file_fts, rowid, name, filename)"
			" VALUES ('delete', old.id, old.name, old.filename);"
			" END;"
			" CREATE TRIGGER file_fts_au AFTER UPDATE OF name,"
			" filename ON file BEGIN"
			" INSERT INTO file_fts(file_fts, rowid, name, filename)"
			" VALUES ('delete', old.id, old.name, old.filename);"
			" INSERT INTO file_fts(rowid, name, filename)"
			" VALUES (new.id, new.name, new.filename); END;"
			/* and without what schemas 9 and 10 add */
			" " DROP_V9_SQLITE " PRAGMA user_version = 7") == 0);
	sfs_store_close(f.s);
	f.s = NULL;
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &f.s, NULL), SFS_OK);
	CHECK(tfx_sql_int(f.s, "PRAGMA user_version") == DB_SCHEMA_VERSION);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM fts_pending") == 0);
	REQUIRE(mk(&f, &f.ann, "Gamma Take", NULL, "/", NULL, NULL) == 0);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM fts_pending") == 1);
	REQUIRE(tfx_sql(f.s, "UPDATE file SET name = 'Alpha Shot' WHERE name ="
			     " 'Alpha Take'") == 0);
	CHECK_STR(Q(&f, &f.ann, "name", "take", "sort", "name"),
		  "Beta Take,Gamma Take");
	CHECK_STR(Q(&f, &f.ann, "name", "shot"), "Alpha Shot");
	CHECK(tfx_sql(f.s, "INSERT INTO file_fts(file_fts)"
			   " VALUES ('integrity-check')") == 0);
	fx_close(&f);
}

static void test_isolation_and_scope(void)
{
	struct sfs_file_list l;
	struct sfs_actor ro;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "mine", "mine.wav", "/", "t", NULL) == 0);
	REQUIRE(mk(&f, &f.zed, "theirs", "mine.wav", "/", "t", NULL) == 0);
	REQUIRE(tfx_sql(f.s, "UPDATE file SET publish = 1") == 0);
	CHECK_STR(Q(&f, &f.ann, "recursive", "true"), "mine");
	CHECK_STR(Q(&f, &f.zed, "recursive", "true"), "theirs");
	CHECK_STR(Q(&f, &f.ann, "filename", "mine"), "mine");
	CHECK_STR(Q(&f, &f.ann, "tags", "t"), "mine");
	CHECK_STR(Q(&f, &f.bob), "");
	/* INTERNAL reaches the same tenant only */
	CHECK_STR(SQ(&f, &f.bob), "mine");
	CHECK_STR(SQ(&f, &f.zed), "");
	CHECK_STR(SQ(&f, &f.ann), "");

	ro = f.ann;
	ro.scopes = SFS_SCOPE_WRITE;
	sfs_err_init(&e);
	{
		struct sfs_query q;

		sfs_query_init(&q);
		CHECK_ST(sfs_query_files(f.s, &ro, &q, &l, &e), SFS_FORBIDDEN);
		CHECK(l.n == 0 && l.files == NULL);
		sfs_err_init(&e);
		CHECK_ST(sfs_query_shared(f.s, &ro, &q, &l, &e), SFS_FORBIDDEN);
		sfs_err_init(&e);
		CHECK_ST(sfs_query_dir_files(f.s, &ro, "/", NULL, NULL, &e),
			 SFS_FORBIDDEN);
		ro.scopes = SFS_SCOPE_READ;
		sfs_err_init(&e);
		CHECK_ST(sfs_query_files(f.s, &ro, &q, &l, &e), SFS_OK);
		CHECK(l.n == 1);
		sfs_file_list_release(&l);
		sfs_query_release(&q);
	}
	fx_close(&f);
}

static void test_shared(void)
{
	char a1[SFS_ID_SIZE], a2[SFS_ID_SIZE], a3[SFS_ID_SIZE];
	char a4[SFS_ID_SIZE], a5[SFS_ID_SIZE], c1[SFS_ID_SIZE];
	char b1[SFS_ID_SIZE];
	struct sfs_file_update u;
	struct sfs_file_list l;
	struct sfs_share sh;
	struct sfs_err e;
	struct fx f;
	size_t i;
	int created;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(mk(&f, &f.ann, "shared view", "v.wav", "/", "x", a1) == 0);
	REQUIRE(mk(&f, &f.ann, "internal only", "i.wav", "/d/", NULL, a2) == 0);
	REQUIRE(mk(&f, &f.ann, "both", "b.wav", "/", NULL, a3) == 0);
	REQUIRE(mk(&f, &f.ann, "private", "p.wav", "/", NULL, a4) == 0);
	REQUIRE(mk(&f, &f.ann, "shared deleted", NULL, "/", NULL, a5) == 0);
	REQUIRE(mk(&f, &f.cat, "cats edit", "c.wav", "/", NULL, c1) == 0);
	REQUIRE(mk(&f, &f.bob, "bobs own", "o.wav", "/", NULL, b1) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_share_put(f.s, &f.ann, a1, f.bob.user_id, SFS_PERM_VIEW,
				 &sh, &created, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_share_put(f.s, &f.ann, a3, f.bob.user_id, SFS_PERM_EDIT,
				 NULL, &created, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_share_put(f.s, &f.ann, a5, f.bob.user_id, SFS_PERM_VIEW,
				 NULL, &created, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_share_put(f.s, &f.cat, c1, f.bob.user_id, SFS_PERM_EDIT,
				 NULL, &created, &e),
		   SFS_OK);
	REQUIRE_ST(sfs_share_put(f.s, &f.ann, a4, f.cat.user_id, SFS_PERM_VIEW,
				 NULL, &created, &e),
		   SFS_OK);
	memset(&u, 0, sizeof(u));
	u.set = SFS_UPD_PUBLISH;
	u.publish = SFS_PUBLISH_INTERNAL;
	REQUIRE_ST(sfs_file_update(f.s, &f.ann, a2, &u, NULL, &e), SFS_OK);
	REQUIRE_ST(sfs_file_update(f.s, &f.ann, a3, &u, NULL, &e), SFS_OK);
	REQUIRE_ST(sfs_file_update(f.s, &f.bob, b1, &u, NULL, &e), SFS_OK);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, a5, 0, &e), SFS_OK);
	REQUIRE(tfx_sql(f.s, "UPDATE file SET created_at = id * 1000") == 0);

	REQUIRE(squery(&f, &f.bob, &l, "sort", "name", NULL) == 0);
	CHECK_STR(names(&l), "both,cats edit,internal only,shared view");
	CHECK(l.total == 4 && l.has_dirs == 0);
	for (i = 0; i < l.n; i++) {
		const struct sfs_file *x = &l.files[i];

		if (!strcmp(x->name, "both")) {
			CHECK(x->access == SFS_ACCESS_DIRECT_SHARE);
			CHECK(x->perm == SFS_PERM_EDIT);
			CHECK(!strcmp(x->shared_by, f.ann.user_id));
			CHECK(x->shared_at > 0);
		} else if (!strcmp(x->name, "cats edit")) {
			CHECK(x->access == SFS_ACCESS_DIRECT_SHARE);
			CHECK(x->perm == SFS_PERM_EDIT);
			CHECK(!strcmp(x->shared_by, f.cat.user_id));
			CHECK(!strcmp(x->owner_id, f.cat.user_id));
		} else if (!strcmp(x->name, "internal only")) {
			CHECK(x->access == SFS_ACCESS_INTERNAL);
			CHECK(x->perm == SFS_PERM_VIEW);
			CHECK(x->shared_by[0] == '\0' && x->shared_at == 0);
		} else {
			CHECK(x->access == SFS_ACCESS_DIRECT_SHARE);
			CHECK(x->perm == SFS_PERM_VIEW);
			CHECK(x->shared_at == sh.created_at);
			CHECK(x->ntags == 1 && !strcmp(x->tags[0], "x"));
		}
	}
	sfs_file_list_release(&l);

	CHECK_STR(SQ(&f, &f.bob, "accessType", "DIRECT_SHARE", "sort", "name"),
		  "both,cats edit,shared view");
	CHECK_STR(SQ(&f, &f.bob, "accessType", "INTERNAL"), "internal only");
	CHECK_STR(SQ(&f, &f.bob, "sort", "creationDate,asc"),
		  "shared view,internal only,both,cats edit");
	CHECK_STR(SQ(&f, &f.bob), "cats edit,both,internal only,shared view");
	CHECK_STR(SQ(&f, &f.bob, "sort", "name,desc"),
		  "shared view,internal only,cats edit,both");
	CHECK_STR(SQ(&f, &f.bob, "name", "SHARED"), "shared view");
	CHECK_STR(SQ(&f, &f.bob, "name", "o", "sort", "name"),
		  "both,internal only");
	CHECK_STR(SQ(&f, &f.bob, "filename", "i.w"), "internal only");
	CHECK_STR(SQ(&f, &f.bob, "filename", "c.", "accessType", "INTERNAL"),
		  "");
	/* pages and totals */
	REQUIRE(squery(&f, &f.bob, &l, "size", "3", "page", "1", "sort", "name",
		       NULL) == 0);
	CHECK_STR(names(&l), "shared view");
	CHECK(l.total == 4);
	sfs_file_list_release(&l);
	REQUIRE(squery(&f, &f.bob, &l, "accessType", "INTERNAL", NULL) == 0);
	CHECK(l.total == 1);
	sfs_file_list_release(&l);
	for (i = 0; i < 4; i++) {
		static const char *const pg[] = { "0", "1", "2", "7" };
		static const size_t want[] = { 2, 2, 0, 0 };

		REQUIRE(squery(&f, &f.bob, &l, "size", "2", "page", pg[i],
			       NULL) == 0);
		CHECK(l.n == want[i] && l.total == 4);
		sfs_file_list_release(&l);
	}
	REQUIRE(squery(&f, &f.bob, &l, "size", "4", NULL) == 0);
	CHECK(l.n == 4 && l.total == 4);
	sfs_file_list_release(&l);
	/* cat sees ann's direct share and the internals, and bob's */
	CHECK_STR(SQ(&f, &f.cat, "sort", "name"),
		  "bobs own,both,internal only,private");
	/* ann sees bob's internal file only: never her own */
	CHECK_STR(SQ(&f, &f.ann), "bobs own");
	/* a deleted internal file disappears */
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, a2, 0, &e), SFS_OK);
	CHECK_STR(SQ(&f, &f.bob, "accessType", "INTERNAL"), "");
	fx_close(&f);
}

struct collect {
	char names[512];
	int n, stop_after;
};

static int collect_fn(void *arg, const struct sfs_file *f)
{
	struct collect *c = arg;
	size_t o = strlen(c->names);

	snprintf(c->names + o, sizeof(c->names) - o, "%s%s", o ? "," : "",
		 f->name);
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static void test_dir_files(void)
{
	struct collect c;
	struct sfs_err e;
	char gone[SFS_ID_SIZE];
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 5; i++) {
		char name[8];

		snprintf(name, sizeof(name), "z%d", 4 - i);
		REQUIRE(mk(&f, &f.ann, name, NULL, "/m/", NULL,
			   i == 2 ? gone : NULL) == 0);
	}
	REQUIRE(mk(&f, &f.ann, "deeper", NULL, "/m/n/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.bob, "other", NULL, "/m/", NULL, NULL) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, gone, 0, &e), SFS_OK);
	memset(&c, 0, sizeof(c));
	CHECK_ST(sfs_query_dir_files(f.s, &f.ann, "/m/", collect_fn, &c, &e),
		 SFS_OK);
	CHECK_STR(c.names, "z4,z3,z1,z0");
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	CHECK_ST(sfs_query_dir_files(f.s, &f.ann, "/m/", collect_fn, &c, &e),
		 SFS_OK);
	CHECK_STR(c.names, "z4,z3");
	memset(&c, 0, sizeof(c));
	CHECK_ST(sfs_query_dir_files(f.s, &f.ann, "/none/", collect_fn, &c, &e),
		 SFS_OK);
	CHECK(c.n == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_query_dir_files(f.s, &f.ann, "m/", collect_fn, &c, &e),
		 SFS_INVALID);
	fx_close(&f);
}

/* One row of a directory listing, as the mount makes an entry of it. */
struct rowset {
	char rows[1024];
	int n, bare_ok;
};

static int row_fn(void *arg, const struct sfs_file *f)
{
	struct rowset *c = arg;
	size_t o = strlen(c->rows);

	snprintf(c->rows + o, sizeof(c->rows) - o, "%s%lld:%.8s:%s:%s:%d",
		 o ? "," : "", (long long)f->ino, f->id, f->name,
		 f->filename ? f->filename : "-", f->suffixed);
	/* a bare row has nothing but the entry's makings */
	if (f->size != -1 || f->mtime_ns || f->ctime_ns || f->atime_ns ||
	    f->la.size != -1 || f->sha256[0] || f->perm != SFS_PERM_OWNER ||
	    !f->path || strcmp(f->path, "/m/"))
		c->bare_ok = 0;
	c->n++;
	return 0;
}

/* Every row of b ("r1,r2,...") is one of a's, and as many: any order. */
static int same_rows(const char *a, const char *b)
{
	char row[256], pad[1100];
	const char *p = b, *q;
	size_t n;

	if (strlen(a) != strlen(b))
		return 0;
	snprintf(pad, sizeof(pad), ",%s,", a);
	while (*p) {
		q = strchr(p, ',');
		n = q ? (size_t)(q - p) : strlen(p);
		if (n + 3 > sizeof(row))
			return 0;
		row[0] = ',';
		memcpy(row + 1, p, n);
		row[n + 1] = ',';
		row[n + 2] = '\0';
		if (!strstr(pad, row))
			return 0;
		p += n + (q != NULL);
	}
	return 1;
}

/*
 * sfs_query_dir_entries: the rows of sfs_query_dir_files (in any order),
 * with only what an entry's name is made of (the mount's `find`).
 */
static void test_dir_entries(void)
{
	struct sfs_file_update u = { 0 };
	struct rowset whole, bare;
	struct sfs_actor ro;
	struct sfs_err e;
	char ids[5][SFS_ID_SIZE];
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 5; i++) {
		char name[8];

		snprintf(name, sizeof(name), "y%d", 4 - i);
		REQUIRE(mk(&f, &f.ann, name, i == 1 ? "take.wav" : NULL, "/m/",
			   NULL, ids[i]) == 0);
	}
	REQUIRE(mk(&f, &f.ann, "deeper", NULL, "/m/n/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.bob, "other", NULL, "/m/", NULL, NULL) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, ids[3], 0, &e), SFS_OK);
	u.set = SFS_UPD_SUFFIX;
	REQUIRE_ST(sfs_file_update(f.s, &f.ann, ids[2], &u, NULL, &e), SFS_OK);
	memset(&whole, 0, sizeof(whole));
	memset(&bare, 0, sizeof(bare));
	bare.bare_ok = 1;
	CHECK_ST(sfs_query_dir_files(f.s, &f.ann, "/m/", row_fn, &whole, &e),
		 SFS_OK);
	CHECK_ST(sfs_query_dir_entries(f.s, &f.ann, "/m/", row_fn, &bare, &e),
		 SFS_OK);
	CHECK(whole.n == 4 && bare.n == 4);
	CHECK(same_rows(bare.rows, whole.rows));
	CHECK(bare.bare_ok);
	/* the suffix kept and the filename are the entry's makings */
	CHECK(strstr(bare.rows, ":y2:-:1") != NULL);
	CHECK(strstr(bare.rows, ":y3:take.wav:0") != NULL);
	CHECK(strstr(bare.rows, ":y1:") == NULL);
	memset(&bare, 0, sizeof(bare));
	CHECK_ST(
		sfs_query_dir_entries(f.s, &f.ann, "/none/", row_fn, &bare, &e),
		SFS_OK);
	CHECK(bare.n == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_query_dir_entries(f.s, &f.ann, "m/", row_fn, &bare, &e),
		 SFS_INVALID);
	ro = f.ann;
	ro.scopes = SFS_SCOPE_WRITE;
	sfs_err_init(&e);
	CHECK_ST(sfs_query_dir_entries(f.s, &ro, "/m/", row_fn, &bare, &e),
		 SFS_FORBIDDEN);
	fx_close(&f);
}

static void test_bad_path_in_query(void)
{
	struct sfs_file_list l;
	struct sfs_query q;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	sfs_query_init(&q);
	free(q.path);
	q.path = strdup("no-slash");
	sfs_err_init(&e);
	CHECK_ST(sfs_query_files(f.s, &f.ann, &q, &l, &e), SFS_INVALID);
	CHECK(e.nfields == 1 && !strcmp(e.fields[0].field, "path"));
	sfs_query_release(&q);
	/* page and size set directly are checked too */
	sfs_query_init(&q);
	q.size = 101;
	sfs_err_init(&e);
	CHECK_ST(sfs_query_files(f.s, &f.ann, &q, &l, &e), SFS_INVALID);
	CHECK(e.nfields == 1 && !strcmp(e.fields[0].field, "size"));
	sfs_err_init(&e);
	CHECK_ST(sfs_query_shared(f.s, &f.ann, &q, &l, &e), SFS_INVALID);
	q.size = 0;
	sfs_err_init(&e);
	CHECK_ST(sfs_query_files(f.s, &f.ann, &q, &l, &e), SFS_INVALID);
	q.size = 5;
	q.page = -1;
	sfs_err_init(&e);
	CHECK_ST(sfs_query_shared(f.s, &f.ann, &q, &l, &e), SFS_INVALID);
	CHECK(e.nfields == 1 && !strcmp(e.fields[0].field, "page"));
	q.page = 0;
	q.access = SFS_ACCESS_OWNER;
	sfs_err_init(&e);
	CHECK_ST(sfs_query_shared(f.s, &f.ann, &q, &l, &e), SFS_INVALID);
	CHECK(e.nfields == 1 && !strcmp(e.fields[0].field, "accessType"));
	sfs_query_release(&q);
	fx_close(&f);
}

/* The tags of each listed file, as "name:t1|t2;..." in page order. */
static const char *tag_lists(const struct sfs_file_list *l)
{
	static char buf[4096];
	size_t i, k, o = 0;

	buf[0] = '\0';
	for (i = 0; i < l->n && o < sizeof(buf) - 1; i++) {
		o += (size_t)snprintf(buf + o, sizeof(buf) - o,
				      "%s%s:", i ? ";" : "", l->files[i].name);
		for (k = 0; k < l->files[i].ntags && o < sizeof(buf) - 1; k++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s",
					      k ? "|" : "",
					      l->files[i].tags[k]);
		if (l->files[i].ntags &&
		    (!l->files[i].tags ||
		     l->files[i].tags[l->files[i].ntags] != NULL))
			return "UNTERMINATED";
	}
	return buf;
}

/*
 * A page loads the tags of all its files at once: each file must still
 * get exactly its own tags (as sfs_file_get gives them), whatever the
 * page order, with untagged files in between, on every page, and in
 * shared-with-me.
 */
static void test_page_tags(void)
{
	char id[SFS_ID_SIZE], b1[SFS_ID_SIZE];
	struct sfs_file_list l;
	struct sfs_file one;
	struct sfs_share sh;
	struct sfs_err e;
	struct fx f;
	size_t i;
	int created;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	REQUIRE(mk(&f, &f.ann, "d", NULL, "/p/", "zz,Aa,mm", id) == 0);
	REQUIRE(mk(&f, &f.ann, "b", NULL, "/p/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "a", NULL, "/p/", "solo", NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "c", NULL, "/p/", "Aa,bb", NULL) == 0);
	REQUIRE(mk(&f, &f.ann, "e", NULL, "/p/", NULL, NULL) == 0);
	REQUIRE(mk(&f, &f.bob, "bobs", NULL, "/p/", "aa,q", b1) == 0);
	REQUIRE(mk(&f, &f.bob, "bobs2", NULL, "/", NULL, NULL) == 0);

	/* newest first: e c a b d; by name: a b c d e */
	REQUIRE(query(&f, &f.ann, &l, "path", "/p/", NULL) == 0);
	CHECK_STR(tag_lists(&l), "e:;c:Aa|bb;a:solo;b:;d:Aa|mm|zz");
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.ann, &l, "path", "/p/", "sort", "name,asc",
		      NULL) == 0);
	CHECK_STR(tag_lists(&l), "a:solo;b:;c:Aa|bb;d:Aa|mm|zz;e:");
	/* the same tags as one file's own read */
	for (i = 0; i < l.n; i++) {
		size_t k;

		sfs_file_init(&one);
		REQUIRE_ST(sfs_file_get(f.s, &f.ann, l.files[i].id, &one, &e),
			   SFS_OK);
		CHECK(one.ntags == l.files[i].ntags);
		for (k = 0; k < one.ntags && k < l.files[i].ntags; k++)
			CHECK(!strcmp(one.tags[k], l.files[i].tags[k]));
		sfs_file_release(&one);
	}
	sfs_file_list_release(&l);
	/* pages of two */
	REQUIRE(query(&f, &f.ann, &l, "path", "/p/", "sort", "name,desc",
		      "size", "2", "page", "1", NULL) == 0);
	CHECK_STR(tag_lists(&l), "c:Aa|bb;b:");
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.ann, &l, "path", "/p/", "sort", "name,desc",
		      "size", "2", "page", "2", NULL) == 0);
	CHECK_STR(tag_lists(&l), "a:solo");
	sfs_file_list_release(&l);
	/* beyond the last page: nothing, and no error */
	REQUIRE(query(&f, &f.ann, &l, "path", "/p/", "page", "9", NULL) == 0);
	CHECK(l.n == 0);
	sfs_file_list_release(&l);
	/* recursive, tag-filtered: the files keep all their tags */
	REQUIRE(query(&f, &f.ann, &l, "recursive", "true", "tags", "aa", "sort",
		      "name,asc", NULL) == 0);
	CHECK_STR(tag_lists(&l), "c:Aa|bb;d:Aa|mm|zz");
	sfs_file_list_release(&l);
	/*
	 * one tag in creationDate order: the page from the tag's rows, its
	 * tags from one grouped pass on PostgreSQL; each file keeps all its
	 * tags, the same as its own read; pages of one; the trash's
	 */
	REQUIRE(query(&f, &f.ann, &l, "recursive", "true", "tags", "AA",
		      NULL) == 0);
	CHECK_STR(tag_lists(&l), "c:Aa|bb;d:Aa|mm|zz");
	CHECK(l.total == 2);
	for (i = 0; i < l.n; i++) {
		size_t k;

		sfs_file_init(&one);
		REQUIRE_ST(sfs_file_get(f.s, &f.ann, l.files[i].id, &one, &e),
			   SFS_OK);
		CHECK(one.ntags == l.files[i].ntags);
		for (k = 0; k < one.ntags && k < l.files[i].ntags; k++)
			CHECK(!strcmp(one.tags[k], l.files[i].tags[k]));
		sfs_file_release(&one);
	}
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.ann, &l, "recursive", "true", "tags", "aa", "sort",
		      "creationDate,asc", "size", "1", "page", "1", NULL) == 0);
	CHECK_STR(tag_lists(&l), "c:Aa|bb");
	CHECK(l.total == 2);
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.ann, &l, "recursive", "true", "tags", "solo",
		      "size", "1", NULL) == 0);
	CHECK_STR(tag_lists(&l), "a:solo");
	CHECK(l.total == 1);
	sfs_file_list_release(&l);
	/* a tag nobody has, and one whose files are not in the trash */
	REQUIRE(query(&f, &f.ann, &l, "recursive", "true", "tags", "none",
		      NULL) == 0);
	CHECK(l.n == 0 && l.total == 0);
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.ann, &l, "recursive", "true", "tags", "mm",
		      "isDeleted", "true", NULL) == 0);
	CHECK(l.n == 0 && l.total == 0);
	sfs_file_list_release(&l);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id, 0, &e), SFS_OK);
	REQUIRE(query(&f, &f.ann, &l, "recursive", "true", "tags", "mm",
		      "isDeleted", "true", NULL) == 0);
	CHECK_STR(tag_lists(&l), "d:Aa|mm|zz");
	CHECK(l.total == 1);
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.ann, &l, "recursive", "true", "tags", "aa",
		      NULL) == 0);
	CHECK_STR(tag_lists(&l), "c:Aa|bb");
	CHECK(l.total == 1);
	sfs_file_list_release(&l);
	REQUIRE_ST(sfs_file_restore(f.s, &f.ann, id, NULL, &e), SFS_OK);
	/* another user's tags never leak in, nor ann's into bob's list */
	REQUIRE(query(&f, &f.bob, &l, "recursive", "true", "sort", "name,asc",
		      NULL) == 0);
	/* a tag is one per tenant, named as first written: Aa */
	CHECK_STR(tag_lists(&l), "bobs:Aa|q;bobs2:");
	sfs_file_list_release(&l);
	/* shared-with-me */
	REQUIRE_ST(sfs_share_put(f.s, &f.ann, id, f.bob.user_id, SFS_PERM_VIEW,
				 &sh, &created, &e),
		   SFS_OK);
	REQUIRE(squery(&f, &f.bob, &l, NULL) == 0);
	CHECK_STR(tag_lists(&l), "d:Aa|mm|zz");
	sfs_file_list_release(&l);
	(void)b1;
	fx_close(&f);
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The first field in which a listed file differs from x; NULL: none. */
static const char *file_diff(const struct sfs_file *a, const struct sfs_file *x)
{
	size_t k;

#define DIFF(cond, name)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			return name;                                           \
	} while (0)
	DIFF(a->ino == x->ino && !strcmp(a->id, x->id), "id");
	DIFF(a->owner == x->owner && !strcmp(a->owner_id, x->owner_id),
	     "owner");
	DIFF(a->tenant == x->tenant && !strcmp(a->tenant_id, x->tenant_id),
	     "tenant");
	DIFF(same_str(a->name, x->name), "name");
	DIFF(same_str(a->filename, x->filename), "filename");
	DIFF(same_str(a->description, x->description), "description");
	DIFF(same_str(a->path, x->path), "path");
	DIFF(same_str(a->metadata, x->metadata), "metadata");
	DIFF(same_str(a->mime, x->mime), "mime");
	DIFF(same_str(a->source_uri, x->source_uri), "source_uri");
	DIFF(same_str(a->ingest_error, x->ingest_error), "ingest_error");
	DIFF(a->size == x->size && a->duration == x->duration, "size");
	DIFF(!strcmp(a->sha256, x->sha256), "sha256");
	DIFF(a->ingestion == x->ingestion, "ingestion");
	DIFF(a->deleted == x->deleted && a->purged == x->purged &&
		     a->discarded == x->discarded,
	     "marks");
	DIFF(a->created_at == x->created_at && a->deleted_at == x->deleted_at &&
		     a->purged_at == x->purged_at &&
		     a->purge_at == x->purge_at &&
		     a->discarded_at == x->discarded_at,
	     "times");
	DIFF(a->publish == x->publish && a->published_at == x->published_at,
	     "publish");
	DIFF(a->ntags == x->ntags, "ntags");
	for (k = 0; k < a->ntags; k++)
		DIFF(!strcmp(a->tags[k], x->tags[k]), "tags");
	DIFF(a->la.status == x->la.status && a->la.size == x->la.size &&
		     !strcmp(a->la.sha256, x->la.sha256) &&
		     a->la.created_at == x->la.created_at,
	     "la");
	DIFF(a->la.deleted == x->la.deleted && a->la.purged == x->la.purged &&
		     a->la.deleted_at == x->la.deleted_at &&
		     a->la.purged_at == x->la.purged_at &&
		     a->la.purge_at == x->la.purge_at,
	     "la marks");
	DIFF(same_str(a->la.error, x->la.error), "la.error");
	DIFF(a->mtime_ns == x->mtime_ns && a->atime_ns == x->atime_ns &&
		     a->ctime_ns == x->ctime_ns,
	     "ns times");
	DIFF(a->suffixed == x->suffixed, "suffixed");
	DIFF(a->access == x->access && a->perm == x->perm &&
		     !strcmp(a->shared_by, x->shared_by) &&
		     a->shared_at == x->shared_at,
	     "access");
#undef DIFF
	return NULL;
}

/* Every file of a listing is the file's own read, field by field. */
static int listed_as_read(struct fx *f, const struct sfs_actor *a,
			  const struct sfs_file_list *l)
{
	struct sfs_file one;
	struct sfs_err e;
	const char *d;
	size_t i;
	int bad = 0;

	sfs_err_init(&e);
	for (i = 0; i < l->n; i++) {
		sfs_file_init(&one);
		if (sfs_file_get(f->s, a, l->files[i].id, &one, &e)) {
			fprintf(stderr, "get %s: %s\n", l->files[i].id,
				e.message);
			bad = 1;
			continue;
		}
		d = file_diff(&l->files[i], &one);
		if (d) {
			fprintf(stderr, "%s (%s): %s differs from its read\n",
				l->files[i].id, l->files[i].name, d);
			bad = 1;
		}
		sfs_file_release(&one);
	}
	return bad;
}

/* listed_as_read on the listing of query params (NULL-ended). */
static int list_check(struct fx *f, const struct sfs_actor *a, size_t n,
		      int deleted, ...)
{
	struct sfs_file_list l;
	struct sfs_query q;
	struct sfs_err e;
	const char *k, *v;
	va_list ap;
	int rc = 0;

	sfs_query_init(&q);
	sfs_err_init(&e);
	va_start(ap, deleted);
	while (!rc && (k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		rc = sfs_query_param(&q, k, v, &e);
	}
	va_end(ap);
	q.deleted = deleted;
	if (!rc)
		rc = sfs_query_files(f->s, a, &q, &l, &e);
	sfs_query_release(&q);
	if (rc) {
		fprintf(stderr, "query: %d %s\n", rc, e.message);
		return -1;
	}
	if (l.n != n) {
		fprintf(stderr, "%zu files listed, not %zu\n", l.n, n);
		rc = -1;
	}
	if (listed_as_read(f, a, &l))
		rc = -1;
	sfs_file_list_release(&l);
	return rc;
}

/*
 * A listing's rows are filled exactly as a file's own read, whatever the
 * row holds: on PostgreSQL they are the listing row (FILE_LIST_COLS: the
 * owner and tenant from the actor, created_at and ctime_ns NULL when they
 * follow mtime_ns, the marks, the trash/publish times and the listening
 * audio one column each), read back into the same fields: a group with
 * one value set, NULLs and 0s and empty strings inside a group, commas in
 * the texts; one-tag pages (live, trash, pages of one), directory pages,
 * recursive ones in each order, a name search, both marks at once, and
 * another owner's; and another tenant's one-tag page whose tag has the
 * same bytes as ann's (looked up by its bytes, or in another case).
 */
static void test_list_rows(void)
{
	char id[8][SFS_ID_SIZE];
	struct sfs_file_list l;
	struct sfs_err e;
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	sfs_err_init(&e);
	for (i = 0; i < 8; i++)
		REQUIRE(mk(&f, &f.ann, i % 2 ? "x, y" : "plain", "a.wav",
			   i < 7 ? "/r/" : "/r/s/", "row,Other", id[i]) == 0);
	REQUIRE(mk(&f, &f.bob, "bobs", NULL, "/r/", "row", NULL) == 0);
	/* the other tenant's tag of the same bytes (its own tag row) */
	REQUIRE(mk(&f, &f.zed, "zeds", NULL, "/r/", "row", NULL) == 0);
	/* 0: every group set, texts with commas */
	REQUIRE(tfx_sql(f.s,
			"UPDATE file SET description = 'd, e', metadata ="
			" '{\"a\":\"b,c\"}', mime = 'audio/wav', source_uri ="
			" 'https://h/a,b', ingest_error = 'bad, worse', size ="
			" 1234, duration = 2.5, sha256 = '%064d', ingestion ="
			" 4, is_purged = 1, is_discarded = 1, deleted_at = 5,"
			" purged_at = 6, purge_at = 7, discarded_at = 8,"
			" publish = 1, published_at = 9, la_status = 3,"
			" la_size = 0, la_sha256 = '%064d', la_created_at ="
			" 10, la_deleted = 1, la_purged = 1, la_deleted_at ="
			" 11, la_purged_at = 12, la_purge_at = 13, la_error ="
			" 'x,y', ctime_ns = mtime_ns + 5, entry_suffix = 1,"
			" atime_ns = 14, created_at = created_at - 3"
			" WHERE uuid = '%s'",
			1, 2, id[0]) == 0);
	/* 1: one time only; the listening audio asked for, nothing else */
	REQUIRE(tfx_sql(f.s,
			"UPDATE file SET published_at = 21, la_status = 1"
			" WHERE uuid = '%s'",
			id[1]) == 0);
	/* 2: an empty MP3 hash alone; a size of 0; ctime before mtime */
	REQUIRE(tfx_sql(f.s,
			"UPDATE file SET la_sha256 = '', size = 0,"
			" ctime_ns = mtime_ns - 1 WHERE uuid = '%s'",
			id[2]) == 0);
	/* 3: a listening size alone; a purge time alone; one mark alone */
	REQUIRE(tfx_sql(f.s,
			"UPDATE file SET la_size = 77, purge_at = 31,"
			" duration = 0, entry_suffix = 1 WHERE uuid = '%s'",
			id[3]) == 0);
	/* 6: created long after its content's time; ingestion alone */
	REQUIRE(tfx_sql(f.s,
			"UPDATE file SET created_at = mtime_ns / 1000000 +"
			" 86400000, ingestion = 2 WHERE uuid = '%s'",
			id[6]) == 0);
	/* 4, 5: in the trash, one of them with its listening audio */
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id[4], 0, &e), SFS_OK);
	REQUIRE_ST(sfs_file_delete(f.s, &f.ann, id[5], 0, &e), SFS_OK);
	REQUIRE(tfx_sql(f.s,
			"UPDATE file SET la_status = 2, la_deleted = 1,"
			" la_deleted_at = 41, la_purge_at = 42 WHERE uuid ="
			" '%s'",
			id[5]) == 0);

	/* one tag: live, newest first (6 3 2 1 0 and 7 in /r/s/) */
	REQUIRE(query(&f, &f.ann, &l, "recursive", "true", "tags", "ROW",
		      NULL) == 0);
	CHECK(l.n == 6 && l.total == 6);
	CHECK(listed_as_read(&f, &f.ann, &l) == 0);
	CHECK(l.n == 6 && l.files[5].description &&
	      !strcmp(l.files[5].description, "d, e") &&
	      l.files[5].la.size == 0 && l.files[5].la.status == 3 &&
	      l.files[5].ctime_ns == l.files[5].mtime_ns + 5 &&
	      l.files[5].suffixed && l.files[5].publish == 1);
	CHECK(l.n == 6 && l.files[0].ingestion == 2 &&
	      l.files[0].created_at != l.files[0].mtime_ns / 1000000);
	sfs_file_list_release(&l);
	CHECK(list_check(&f, &f.ann, 1, 0, "recursive", "true", "tags", "row",
			 "sort", "creationDate,asc", "size", "1", "page", "2",
			 NULL) == 0);
	/* one tag, in the trash */
	REQUIRE(query(&f, &f.ann, &l, "recursive", "true", "tags", "row",
		      "isDeleted", "true", NULL) == 0);
	CHECK(l.n == 2 && l.total == 2);
	CHECK(l.n == 2 && l.files[0].deleted && l.files[0].la.deleted_at == 41);
	CHECK(listed_as_read(&f, &f.ann, &l) == 0);
	sfs_file_list_release(&l);
	/* directory pages, recursive pages in each order, a search */
	CHECK(list_check(&f, &f.ann, 5, 0, "path", "/r/", NULL) == 0);
	CHECK(list_check(&f, &f.ann, 2, 1, "path", "/r/", NULL) == 0);
	CHECK(list_check(&f, &f.ann, 7, -1, "path", "/r/", NULL) == 0);
	CHECK(list_check(&f, &f.ann, 8, -1, "recursive", "true", "sort",
			 "name,asc", NULL) == 0);
	CHECK(list_check(&f, &f.ann, 6, 0, "recursive", "true", "sort",
			 "size,desc", NULL) == 0);
	CHECK(list_check(&f, &f.ann, 3, 0, "recursive", "true", "name", "x, ",
			 NULL) == 0);
	CHECK(list_check(&f, &f.ann, 2, 0, "recursive", "true", "tags",
			 "row,other", "size", "2", NULL) == 0);
	/* bob's pages: his file only, his ids */
	REQUIRE(query(&f, &f.bob, &l, "recursive", "true", "tags", "row",
		      NULL) == 0);
	CHECK(l.n == 1 && !strcmp(l.files[0].owner_id, f.bob.user_id));
	CHECK(listed_as_read(&f, &f.bob, &l) == 0);
	sfs_file_list_release(&l);
	CHECK(list_check(&f, &f.bob, 1, 0, "path", "/r/", NULL) == 0);
	/* the other tenant's: by its bytes and in another case */
	REQUIRE(query(&f, &f.zed, &l, "recursive", "true", "tags", "row",
		      NULL) == 0);
	CHECK(l.n == 1 && l.total == 1 && !strcmp(l.files[0].name, "zeds"));
	CHECK(listed_as_read(&f, &f.zed, &l) == 0);
	sfs_file_list_release(&l);
	REQUIRE(query(&f, &f.zed, &l, "recursive", "true", "tags", "Row",
		      NULL) == 0);
	CHECK(l.n == 1 && l.total == 1 && !strcmp(l.files[0].name, "zeds"));
	sfs_file_list_release(&l);
	fx_close(&f);
}

/*
 * The session a list runs in on PostgreSQL (the answers are the same on
 * both backends): JIT off; the first page of a listing, its size written
 * into the statement, run with a generic plan after five runs instead of
 * being planned at each; the read transaction's BEGIN sent with its
 * first statement (a pipeline), a connection lost before it found there
 * and made again for the next list, and so for a first page of one tag,
 * which runs outside any transaction; the ROLLBACK not waited for, and
 * read before the connection's next statement (a write here).
 */
static void test_read_session(void)
{
	struct sfs_store *s2 = NULL;
	struct sfs_file_list l;
	char name[16], sql[128];
	struct fx f;
	int64_t pid;
	time_t t0;
	int i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "s%02d", i);
		REQUIRE(mk(&f, &f.ann, name, NULL, i % 2 ? "/x/" : "/",
			   i % 3 ? "warm" : "warm,cool", NULL) == 0);
	}
	for (i = 0; i < 8; i++) {
		REQUIRE(query(&f, &f.ann, &l, "tags", "warm", "recursive",
			      "true", "size", "4", NULL) == 0);
		CHECK(l.total == 30 + i && l.n == 4);
		sfs_file_list_release(&l);
		/* a later page: a read transaction, its ROLLBACK unwaited */
		REQUIRE(query(&f, &f.ann, &l, "tags", "warm", "recursive",
			      "true", "size", "4", "page", "1", NULL) == 0);
		CHECK(l.total == 30 + i && l.n == 4);
		sfs_file_list_release(&l);
		snprintf(name, sizeof(name), "n%02d", i);
		REQUIRE(mk(&f, &f.ann, name, NULL, "/", "warm", NULL) == 0);
	}
	if (!th_is_pg()) {
		fx_close(&f);
		return;
	}
	CHECK(tfx_sql_int(f.s, "SELECT CASE WHEN current_setting('jit')"
			       " = 'off' THEN 1 ELSE 0 END") == 1);
	CHECK(tfx_sql_int(f.s, "SELECT coalesce(max(generic_plans), 0)"
			       " FROM pg_prepared_statements WHERE"
			       " statement LIKE '%LIMIT 5 OFFSET 0%'"
			       " AND statement NOT LIKE '%pg_prep%'") >= 1);
	/* the list's session killed from another one, unknown to it */
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &s2, NULL), SFS_OK);
	/*
	 * The list finds its session gone before it read anything: it
	 * runs again on a new one, and its request does not fail. Twice:
	 * a later page (a read transaction: its BEGIN pipelined with the
	 * first statement), then a first page of one tag (one statement
	 * outside any transaction).
	 */
	for (i = 0; i < 2; i++) {
		pid = tfx_sql_int(f.s, "SELECT pg_backend_pid()");
		REQUIRE(pid > 0);
		REQUIRE(tfx_sql(s2, "SELECT pg_terminate_backend(%lld)",
				(long long)pid) == 0);
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_stat_activity"
			 " WHERE pid = %lld",
			 (long long)pid);
		t0 = time(NULL);
		while (tfx_sql_int(s2, sql) != 0 && time(NULL) - t0 < 30)
			usleep(10000);
		CHECK(tfx_sql_int(s2, sql) == 0);
		REQUIRE(query(&f, &f.ann, &l, "tags", "warm", "recursive",
			      "true", "size", "4", "page", i ? "0" : "1",
			      NULL) == 0);
		CHECK(l.total == 38 && l.n == 4);
		sfs_file_list_release(&l);
		CHECK(tfx_sql_int(f.s, "SELECT pg_backend_pid()") != pid);
	}
	sfs_store_close(s2);
	fx_close(&f);
}

/*
 * A search by a name's or filename's substring: the right rows on both
 * backends. On PostgreSQL its statements (page and count) are planned
 * with their pattern at each run, never as named prepared statements: a
 * prepared one may be run, after five runs, with PostgreSQL's generic
 * plan, which costs every pattern alike and walks all of the owner's
 * files filtering each (1,000,000 files: 0.7-1.2 s a page instead of
 * 0.1-0.4 ms through the trigram index). The listings beside it stay
 * prepared (the check reads the session the queries ran in).
 */
static void test_search_planned_each_run(void)
{
	struct sfs_file_list l;
	char name[32];
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "%s%02d", i % 2 ? "rain" : "snow",
			 i);
		REQUIRE(mk(&f, &f.ann, name, i % 3 ? NULL : "rainy.wav", "/",
			   NULL, NULL) == 0);
	}
	for (i = 0; i < 8; i++) {
		REQUIRE(query(&f, &f.ann, &l, "name", "rain", "size", "2",
			      NULL) == 0);
		CHECK(l.n == 2 && l.total == 6);
		sfs_file_list_release(&l);
		REQUIRE(query(&f, &f.ann, &l, "name", "ow", NULL) == 0);
		CHECK(l.n == 6 && l.total == 6);
		sfs_file_list_release(&l);
		REQUIRE(query(&f, &f.ann, &l, "filename", "RAINY", "size", "1",
			      NULL) == 0);
		CHECK(l.n == 1 && l.total == 4);
		sfs_file_list_release(&l);
		REQUIRE(query(&f, &f.ann, &l, "size", "5", NULL) == 0);
		CHECK(l.n == 5 && l.total == 12);
		sfs_file_list_release(&l);
	}
	if (th_is_pg()) {
		CHECK(tfx_sql_int(f.s,
				  "SELECT count(*) FROM"
				  " pg_prepared_statements WHERE"
				  " statement LIKE '%ILIKE $%'"
				  " AND statement NOT LIKE '%pg_prep%'") == 0);
		CHECK(tfx_sql_int(f.s,
				  "SELECT count(*) FROM"
				  " pg_prepared_statements WHERE"
				  " statement LIKE '%LIMIT 6 OFFSET 0%'"
				  " AND statement NOT LIKE '%pg_prep%'") == 1);
	}
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_WARN);
	RUN(test_init_defaults);
	RUN(test_param_values);
	RUN(test_param_invalid);
	RUN(test_filters);
	RUN(test_sort_and_pages);
	RUN(test_paths_and_dirs);
	RUN(test_tags);
	RUN(test_most_binds);
	RUN(test_tag_count);
	RUN(test_tag_counters);
	RUN(test_tag_counters_writers);
	RUN(test_tag_pages);
	RUN(test_substring);
	RUN(test_names_index_deferred);
	RUN(test_names_index_from_v7);
	RUN(test_fsck_names_index);
	RUN(test_isolation_and_scope);
	RUN(test_shared);
	RUN(test_dir_files);
	RUN(test_dir_entries);
	RUN(test_bad_path_in_query);
	RUN(test_page_tags);
	RUN(test_list_rows);
	RUN(test_read_session);
	RUN(test_search_planned_each_run);
	return th_report();
}
