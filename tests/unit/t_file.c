/*
 * Tests of the file model: create/get/update/delete/purge/discard/restore,
 * new content versions, open, listening-audio state rules, the janitor,
 * quotas, validation errors and the permission rules (owner, EDIT and VIEW
 * shares, INTERNAL, other tenants, scopes), and two store handles at once.
 * The share calls themselves are t_share.c's.
 *
 * About internals on purpose: a job's outcome is reported by the worker
 * that claimed it, so the tests play that worker (testjob.h, then
 * sfsi_file_job_state, sfsi_file_import_done, sfsi_file_listening_done)
 * to reach a finished import, a stale result or a failed generation at
 * the moment they choose; they prepare a stage's blob as an upload does
 * before its transaction (sfsi_blob_stage_prepare); and where a promise is
 * about what is stored (one job per import, rows purged, the blob's file
 * kept, synchronous=FULL) they read the database, or set a state no
 * public call makes (timestamps long past) in SQL.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include "blob_i.h"
#include "media_i.h"
#include "speechfs/auth.h"
#include "speechfs/blob.h"
#include "speechfs/dir.h"
#include "speechfs/file.h"
#include "speechfs/fsck.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/share.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "store_i.h"
#include "speechfs/util.h"
#include "fixture.h"
#include "testhelp.h"
#include "testjob.h"

#define EMPTY_SHA                                                              \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define RETENTION 3600

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	char *dir;
	struct sfs_store *s;
	char t1[SFS_ID_SIZE], t2[SFS_ID_SIZE];
	char ua[SFS_ID_SIZE], ub[SFS_ID_SIZE], uc[SFS_ID_SIZE];
	char ud[SFS_ID_SIZE], ux[SFS_ID_SIZE];
	struct sfs_actor a; /* owner of the test files */
	struct sfs_actor b; /* gets EDIT shares */
	struct sfs_actor c; /* gets VIEW shares */
	struct sfs_actor d; /* same tenant, no share */
	struct sfs_actor x; /* another tenant */
};

static int fx_open_q(struct fx *f, int64_t max_bytes, int64_t max_files)
{
	struct sfs_config cfg;

	memset(f, 0, sizeof(*f));
	sfs_config_init(&cfg);
	cfg.retention_seconds = RETENTION;
	if (tfx_store(&f->dir, &f->s, &cfg))
		return -1;
	if (tfx_tenant(f->s, "one", max_bytes, max_files, f->t1) ||
	    tfx_tenant(f->s, "two", 0, 0, f->t2) ||
	    tfx_user(f->s, f->t1, "alice", f->ua, &f->a) ||
	    tfx_user(f->s, f->t1, "bob", f->ub, &f->b) ||
	    tfx_user(f->s, f->t1, "carol", f->uc, &f->c) ||
	    tfx_user(f->s, f->t1, "dave", f->ud, &f->d) ||
	    tfx_user(f->s, f->t2, "xavier", f->ux, &f->x))
		return -1;
	return 0;
}

static int fx_open(struct fx *f)
{
	return fx_open_q(f, 0, 0);
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
	sfs_set_clock_offset_ms(0);
}

/* Create a file with content `text` at `path`; id into id. */
static enum sfs_status mk(struct fx *f, const struct sfs_actor *a,
			  const char *name, const char *path, const char *text,
			  char *id, struct sfs_err *e)
{
	struct sfs_file_spec sp = { .name = name, .path = path };
	struct sfs_stage *st = tfx_stage(f->s, text, strlen(text));
	struct sfs_file out;
	enum sfs_status ret;

	if (!st)
		return SFS_IO;
	ret = sfs_file_create(f->s, a, &sp, st, &out, e);
	sfs_stage_free(st);
	if (!ret) {
		if (id)
			sfs_strlcpy(id, out.id, SFS_ID_SIZE);
		sfs_file_release(&out);
	}
	return ret;
}

/* The bytes of a file's original or listening content. */
static int slurp(struct fx *f, const struct sfs_actor *a, const char *id,
		 enum sfs_content which, char *buf, size_t cap,
		 enum sfs_status *st)
{
	size_t n = 0;

	*st = tfx_read(f->s, a, id, which, buf, cap - 1, &n);
	if (*st)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

static enum sfs_status open_st(struct fx *f, const struct sfs_actor *a,
			       const char *id, enum sfs_content which,
			       struct sfs_err *e)
{
	struct sfs_blob *b = NULL;
	enum sfs_status ret;

	ret = sfs_file_open(f->s, a, id, which, 0, &b, NULL, e);
	sfs_blob_close(b);
	return ret;
}

static enum sfs_status share(struct fx *f, const char *id, const char *user,
			     enum sfs_perm p)
{
	int created = 0;

	return sfs_share_put(f->s, &f->a, id, user, p, NULL, &created, NULL);
}

static struct sfs_tenant_info tenant(struct fx *f)
{
	struct sfs_tenant_info ti;

	memset(&ti, 0, sizeof(ti));
	if (sfs_tenant_get(f->s, f->t1, &ti, NULL))
		ti.used_files = -1;
	return ti;
}

static int64_t ino_of(struct fx *f, const char *id)
{
	struct sfs_file fi;
	int64_t ino = -1;

	if (!sfs_file_get(f->s, &f->a, id, &fi, NULL))
		ino = fi.ino;
	sfs_file_release(&fi);
	return ino;
}

/* The field of the first validation error, "" when none. */
static const char *field0(const struct sfs_err *e)
{
	return e->nfields ? e->fields[0].field : "";
}

/* ---- create and get ------------------------------------------------------ */

static void test_create_get(void)
{
	const char *tags[] = { "b", "A", "c d" };
	struct sfs_file_spec sp = {
		.name = "Interview 1",
		.filename = "int1.wav",
		.description = "first",
		.path = "/talks/2024/",
		.metadata = "{\"speaker\":\"x\",\"n\":1}",
		.tags = tags,
		.ntags = 3,
	};
	struct sfs_file out, g;
	struct sfs_stage *st;
	char upper[SFS_ID_SIZE], buf[64];
	enum sfs_status rs;
	struct fx f;
	size_t i;

	REQUIRE(fx_open(&f) == 0);
	st = tfx_stage(f.s, "hello", 5);
	REQUIRE(st);
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, st, &out, NULL), SFS_OK);
	sfs_stage_free(st);
	CHECK(sfs_uuid_valid(out.id));
	CHECK(!strcmp(out.name, "Interview 1"));
	CHECK(out.filename && !strcmp(out.filename, "int1.wav"));
	CHECK(out.description && !strcmp(out.description, "first"));
	CHECK(!strcmp(out.path, "/talks/2024/"));
	CHECK(out.metadata && strstr(out.metadata, "speaker"));
	CHECK(out.size == 5);
	CHECK(!strcmp(out.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e"
				  "1b161e5c1fa7425e73043362938b9824"));
	CHECK(!strcmp(out.owner_id, f.ua) && !strcmp(out.tenant_id, f.t1));
	CHECK(out.created_at > 0 && !out.deleted && !out.purged &&
	      !out.discarded);
	CHECK(out.deleted_at == 0 && out.purge_at == 0);
	CHECK(out.publish == SFS_PUBLISH_PRIVATE && out.published_at == 0);
	CHECK(out.la.status == SFS_JS_NONE);
	CHECK(out.ingestion == SFS_JS_NONE);
	CHECK(out.access == SFS_ACCESS_OWNER && out.perm == SFS_PERM_OWNER);
	REQUIRE(out.ntags == 3);
	CHECK(!strcmp(out.tags[0], "A") && !strcmp(out.tags[1], "b") &&
	      !strcmp(out.tags[2], "c d"));

	REQUIRE_ST(sfs_file_get(f.s, &f.a, out.id, &g, NULL), SFS_OK);
	CHECK(g.ino == out.ino && !strcmp(g.name, out.name) && g.ntags == 3 &&
	      g.created_at == out.created_at);
	sfs_file_release(&g);
	REQUIRE_ST(sfs_file_get_ino(f.s, &f.a, out.ino, &g, NULL), SFS_OK);
	CHECK(!strcmp(g.id, out.id));
	sfs_file_release(&g);
	/* ids are case-insensitive */
	for (i = 0; i < sizeof(upper); i++)
		upper[i] = (char)(out.id[i] >= 'a' && out.id[i] <= 'f'
					  ? out.id[i] - 32
					  : out.id[i]);
	CHECK_ST(sfs_file_get(f.s, &f.a, upper, &g, NULL), SFS_OK);
	sfs_file_release(&g);
	CHECK(slurp(&f, &f.a, out.id, SFS_CONTENT_ORIGINAL, buf, sizeof(buf),
		    &rs) == 5 &&
	      !strcmp(buf, "hello"));
	sfs_file_release(&out);

	/* unknown and malformed ids */
	CHECK_ST(sfs_file_get(f.s, &f.a, "00000000-0000-0000-0000-000000000000",
			      &g, NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_file_get(f.s, &f.a, "nope", &g, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_file_get(f.s, &f.a, NULL, &g, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_file_get_ino(f.s, &f.a, 99999, &g, NULL), SFS_NOT_FOUND);

	/* no content and no URI: an empty file */
	{
		struct sfs_file_spec e0 = { .name = "empty" };

		REQUIRE_ST(sfs_file_create(f.s, &f.a, &e0, NULL, &out, NULL),
			   SFS_OK);
		CHECK(out.size == 0 && !strcmp(out.sha256, EMPTY_SHA));
		CHECK(!strcmp(out.path, "/"));
		CHECK(out.filename == NULL && out.description == NULL &&
		      out.metadata == NULL && out.ntags == 0);
		/* it reads as empty, though no blob was made for it */
		CHECK(slurp(&f, &f.a, out.id, SFS_CONTENT_ORIGINAL, buf,
			    sizeof(buf), &rs) == 0);
		CHECK_ST(rs, SFS_OK);
		sfs_file_release(&out);
	}
	/* listening audio requested at upload */
	{
		struct sfs_file_spec l = { .name = "l", .listening = 1 };

		st = tfx_stage(f.s, "audio", 5);
		REQUIRE_ST(sfs_file_create(f.s, &f.a, &l, st, &out, NULL),
			   SFS_OK);
		sfs_stage_free(st);
		CHECK(out.la.status == SFS_JS_PENDING);
		CHECK_ST(open_st(&f, &f.a, out.id, SFS_CONTENT_LISTENING, NULL),
			 SFS_NOT_READY);
		sfs_file_release(&out);
	}
	/* out may be NULL */
	st = tfx_stage(f.s, "x", 1);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, st, NULL, NULL), SFS_OK);
	sfs_stage_free(st);
	CHECK(tenant(&f).used_files == 4);
	fx_close(&f);
}

static void test_create_import(void)
{
	struct sfs_job job;
	struct sfs_file_spec sp = { .name = "remote",
				    .uri = "https://example.com/a.wav",
				    .listening = 1 };
	char id[SFS_ID_SIZE];
	struct sfs_file out;
	struct sfs_stage *st;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, NULL, &out, NULL), SFS_OK);
	CHECK(out.ingestion == SFS_JS_PENDING);
	CHECK(out.size == -1 && out.sha256[0] == '\0');
	CHECK(out.source_uri && !strcmp(out.source_uri, sp.uri));
	CHECK(out.filename && !strcmp(out.filename, "a.wav"));
	/* listening audio waits for the import */
	CHECK(out.la.status == SFS_JS_NONE);
	sfs_err_init(&e);
	CHECK_ST(open_st(&f, &f.a, out.id, SFS_CONTENT_ORIGINAL, &e),
		 SFS_NOT_READY);
	CHECK_ST(sfs_listening_generate(f.s, &f.a, out.id, NULL, NULL),
		 SFS_NOT_READY);
	st = tfx_stage(f.s, "new", 3);
	CHECK_ST(sfs_file_set_content(f.s, &f.a, out.id, st, 0, NULL, NULL),
		 SFS_NOT_READY);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM job WHERE kind = 2") == 1);

	/* the import completes: content, and the listening job queued */
	REQUIRE_ST(claim_for(f.s, SFS_JOB_IMPORT, out.ino, &job), SFS_OK);
	CHECK_ST(sfsi_file_job_state(f.s, &job, SFS_JS_PROCESSING, NULL, NULL),
		 SFS_OK);
	CHECK_ST(sfsi_file_import_done(f.s, &job, st, "audio/wav", 1.5, NULL),
		 SFS_OK);
	sfs_job_release(&job);
	sfs_stage_free(st);
	sfs_strlcpy(id, out.id, sizeof(id));
	sfs_file_release(&out);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &out, NULL), SFS_OK);
	CHECK(out.ingestion == SFS_JS_COMPLETED);
	CHECK(out.size == 3 && out.duration == 1.5);
	CHECK(out.la.status == SFS_JS_PENDING);
	CHECK_ST(open_st(&f, &f.a, out.id, SFS_CONTENT_ORIGINAL, NULL), SFS_OK);
	sfs_file_release(&out);

	/* a failed import stays unreadable */
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, NULL, &out, NULL), SFS_OK);
	REQUIRE_ST(claim_for(f.s, SFS_JOB_IMPORT, out.ino, &job), SFS_OK);
	CHECK_ST(
		sfsi_file_job_state(f.s, &job, SFS_JS_FAILED, "no route", NULL),
		SFS_OK);
	sfs_job_release(&job);
	CHECK_ST(open_st(&f, &f.a, out.id, SFS_CONTENT_ORIGINAL, NULL),
		 SFS_NOT_READY);
	sfs_strlcpy(id, out.id, sizeof(id));
	sfs_file_release(&out);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &out, NULL), SFS_OK);
	CHECK(out.ingestion == SFS_JS_FAILED);
	CHECK(out.ingest_error && !strcmp(out.ingest_error, "no route"));
	/* deleting it cancels nothing more; a late outcome is refused */
	sfs_file_release(&out);

	/* content and a URI at once */
	st = tfx_stage(f.s, "x", 1);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, st, NULL, &e), SFS_INVALID);
	sfs_stage_free(st);
	fx_close(&f);
}

/* An import's filename is its URI's last path segment, decoded. */
static void test_import_filename_from_uri(void)
{
	static const struct {
		const char *uri, *filename;
	} cases[] = {
		{ "https://h.example/rec/meeting%201.wav?sig=x#t",
		  "meeting 1.wav" },
		{ "s3://bucket/dir/take.flac", "take.flac" },
		{ "http://h.example/a%2Fb.wav",
		  "a/b.wav" }, /* names may hold / */
		{ "http://h.example/a%00b.wav", NULL },
		{ "http://h.example/", NULL },
		{ "http://h.example", NULL },
		{ "http://h.example/%e2%82%ac.mp3", "\xe2\x82\xac.mp3" },
		{ "http://h.example/x%4", "x%4" },
	};
	struct sfs_file_spec sp = { .name = "n" };
	struct sfs_file out;
	struct fx f;
	size_t i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sp.uri = cases[i].uri;
		REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, NULL, &out, NULL),
			   SFS_OK);
		if (cases[i].filename)
			CHECK(out.filename &&
			      !strcmp(out.filename, cases[i].filename));
		else
			CHECK(out.filename == NULL);
		sfs_file_release(&out);
	}
	/* a filename given wins */
	sp.uri = "https://h.example/a.wav";
	sp.filename = "given.wav";
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, NULL, &out, NULL), SFS_OK);
	CHECK(!strcmp(out.filename, "given.wav"));
	sfs_file_release(&out);
	fx_close(&f);
}

static void test_import_cancelled_by_delete(void)
{
	struct sfs_job job;
	struct sfs_file_spec sp = { .name = "remote",
				    .uri = "https://example.com/a.wav" };
	char id[SFS_ID_SIZE];
	struct sfs_file out;
	struct sfs_stage *st;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, NULL, &out, NULL), SFS_OK);
	REQUIRE_ST(claim_for(f.s, SFS_JOB_IMPORT, out.ino, &job), SFS_OK);
	CHECK_ST(sfsi_file_job_state(f.s, &job, SFS_JS_PROCESSING, NULL, NULL),
		 SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, out.id, 0, NULL), SFS_OK);
	st = tfx_stage(f.s, "late", 4);
	CHECK_ST(sfsi_file_import_done(f.s, &job, st, NULL, -1, NULL),
		 SFS_CONFLICT);
	sfs_job_release(&job);
	sfs_stage_free(st);
	sfs_strlcpy(id, out.id, sizeof(id));
	sfs_file_release(&out);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &out, NULL), SFS_OK);
	CHECK(out.ingestion == SFS_JS_FAILED);
	CHECK(out.size == -1);
	sfs_file_release(&out);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob") == 0);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

/* ---- validation ------------------------------------------------------------
 */

static void test_validation(void)
{
	char long_name[SFS_NAME_MAX + 2], long_desc[SFS_DESCRIPTION_MAX + 2];
	const char *many[SFS_TAGS_MAX + 1], *bad_tags[] = { "ok", "a,b" };
	const char *bad_paths[] = { "a/b/", "/a", "/a//b/", "/../",
				    "/./",  "",	  "/a\n/" };
	struct sfs_file_spec sp;
	struct sfs_err e;
	struct fx f;
	size_t i;

	REQUIRE(fx_open(&f) == 0);
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	memset(long_desc, 'd', sizeof(long_desc) - 1);
	long_desc[sizeof(long_desc) - 1] = '\0';
	for (i = 0; i < SFS_TAGS_MAX + 1; i++)
		many[i] = "t";

#define BAD(field_, type_, ...)                                                \
	do {                                                                   \
		struct sfs_file_spec s_ = { __VA_ARGS__ };                     \
		if (!s_.name && strcmp(field_, "name"))                        \
			s_.name = "ok";                                        \
		sfs_err_init(&e);                                              \
		CHECK_ST(sfs_file_create(f.s, &f.a, &s_, NULL, NULL, &e),      \
			 SFS_INVALID);                                         \
		CHECK(e.status == SFS_INVALID);                                \
		if (!tfx_has_field(&e, field_, type_))                         \
			fprintf(stderr, "  want %s/%s, got %s/%s\n", field_,   \
				type_ ? type_ : "*", field0(&e),               \
				e.nfields ? e.fields[0].type : "");            \
		CHECK(tfx_has_field(&e, field_, type_));                       \
	} while (0)

	BAD("name", "missing", .name = NULL);
	BAD("name", "invalid", .name = "");
	BAD("name", "too_long", .name = long_name);
	BAD("name", "invalid", .name = "a\nb");
	BAD("name", "invalid", .name = "tab\there");
	BAD("name", "invalid", .name = "del\x7f");
	BAD("name", "invalid", .name = "\xc3\x28");
	BAD("filename", NULL, .filename = "a\001b");
	BAD("filename", "too_long", .filename = long_name);
	BAD("description", "too_long", .description = long_desc);
	for (i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++)
		BAD("path", NULL, .path = bad_paths[i]);
	BAD("metadata", "invalid", .metadata = "[1,2]");
	BAD("metadata", "invalid", .metadata = "\"text\"");
	BAD("metadata", "invalid", .metadata = "{bad json");
	BAD("metadata", "invalid", .metadata = "{\"a\":1,\"a\":2}");
	BAD("tags", "too_long", .tags = many, .ntags = SFS_TAGS_MAX + 1);
	BAD("tags[1]", NULL, .tags = bad_tags, .ntags = 2);
#undef BAD
	/* several fields are reported at once */
	memset(&sp, 0, sizeof(sp));
	sp.path = "nope";
	sp.metadata = "[]";
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "name", "missing"));
	CHECK(tfx_has_field(&e, "path", NULL));
	CHECK(tfx_has_field(&e, "metadata", NULL));
	/* the limits themselves are fine */
	memset(&sp, 0, sizeof(sp));
	long_name[SFS_NAME_MAX] = '\0';
	sp.name = long_name;
	sp.tags = many;
	sp.ntags = SFS_TAGS_MAX;
	sp.metadata = "{}";
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, NULL), SFS_OK);
	/* nothing was made by the failures */
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 1);
	CHECK(tenant(&f).used_files == 1);

	/* the checkers on their own */
	sfs_err_init(&e);
	CHECK_ST(sfs_name_check("", "title", &e), SFS_INVALID);
	CHECK(!strcmp(field0(&e), "title"));
	CHECK_ST(sfs_metadata_check(NULL, "metadata", NULL), SFS_OK);
	CHECK_ST(sfs_metadata_check("{\"a\":{\"b\":[1]}}", "m", NULL), SFS_OK);
	fx_close(&f);
}

/* Commits of the store not yet synced (internals, on purpose). */
static int64_t unsynced(struct fx *f)
{
	return (int64_t)(f->s->sync_committed - f->s->sync_done);
}

/* On PostgreSQL every commit is durable when it returns: none waits. */
#define LAZY (th_is_pg() ? 0 : 1)

/*
 * The mount's create: committed without waiting for the disk, visible to
 * other handles at once, and made durable by the content commit or
 * sfs_file_sync (its commit waits for the next sync of the store).
 */
/* A new file's id derived from a caller's key (POST /files?idKey=). */
static void test_client_id(void)
{
	static const char key[] = "0F6E3A52-1C2B-4D3E-8F90-A1B2C3D4E5F6";
	struct sfs_file_spec sp = { .name = "mine",
				    .path = "/",
				    .id_key = key };
	char mine[SFS_ID_SIZE], theirs[SFS_ID_SIZE], d[SFS_ID_SIZE];
	struct sfs_tenant_info ti;
	struct sfs_stage *st;
	struct sfs_file out;
	struct sfs_err e;
	struct fx f;

	/* the derivation, pinned (clients compute it too): RFC 9562 v8 */
	REQUIRE(sfs_uuid_derive("11111111-2222-4333-8444-555555555555", key,
				d) == 0);
	CHECK(!strcmp(d, "594a11d3-ec6b-8066-a40a-bec5a5a07df1"));
	CHECK(sfs_uuid_derive("11111111-2222-4333-8444-555555555555",
			      "0f6e3a52-1c2b-4d3e-8f90-a1b2c3d4e5f6", d) == 0 &&
	      !strcmp(d, "594a11d3-ec6b-8066-a40a-bec5a5a07df1"));
	CHECK(sfs_uuid_derive("11111111-2222-4333-8444-555555555555", "x", d) ==
	      -1);

	REQUIRE(fx_open(&f) == 0);
	REQUIRE(sfs_uuid_derive(f.a.user_id, key, mine) == 0);
	REQUIRE(sfs_uuid_derive(f.x.user_id, key, theirs) == 0);
	CHECK(strcmp(mine, theirs));
	st = tfx_stage(f.s, "bytes", 5);
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, st, &out, NULL), SFS_OK);
	sfs_stage_free(st);
	/* the id derived from the owner and the key, not the key */
	CHECK(!strcmp(out.id, mine));
	CHECK(out.size == 5);
	sfs_file_release(&out);
	/* a second use by its owner, in any case, in any state: the id's
	 * own conflict (an earlier try's answer lost) */
	sp.name = "again";
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_FILE_ID_EXISTS);
	sp.id_key = "0f6e3a52-1c2b-4d3e-8f90-a1b2c3d4e5f6";
	/* another user's same key: their own id, nothing said of mine */
	REQUIRE_ST(sfs_file_create(f.s, &f.x, &sp, NULL, &out, NULL), SFS_OK);
	CHECK(!strcmp(out.id, theirs));
	sfs_file_release(&out);
	/* and a tenant-mate's */
	REQUIRE_ST(sfs_file_create(f.s, &f.d, &sp, NULL, &out, NULL), SFS_OK);
	CHECK(strcmp(out.id, mine) && strcmp(out.id, theirs));
	sfs_file_release(&out);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, mine, &out, NULL), SFS_OK);
	CHECK(out.size == 5 && !strcmp(out.name, "mine"));
	sfs_file_release(&out);
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, mine, 1, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_FILE_ID_EXISTS);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 3);
	/*
	 * The id before the quotas: at a full file quota a repeat is still
	 * its own 409 (a try whose answer was lost may have filled it), so
	 * the quota's refusal proves nothing was made.
	 */
	REQUIRE_ST(sfs_tenant_get(f.s, f.t1, &ti, NULL), SFS_OK);
	REQUIRE(ti.used_files > 0);
	REQUIRE_ST(sfs_tenant_set_quota(f.s, f.t1, 0, ti.used_files, NULL),
		   SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_FILE_ID_EXISTS);
	sp.id_key = "5d0c8b1e-7a3f-4e62-9b15-c4d7e8f90a12";
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, &e), SFS_QUOTA);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 3);
	REQUIRE_ST(sfs_tenant_set_quota(f.s, f.t1, 0, 0, NULL), SFS_OK);
	/* no UUID: the field's error, nothing made */
	sp.id_key = "0f6e3a52-1c2b-4d3e-8f90";
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, &e), SFS_INVALID);
	CHECK(!strcmp(field0(&e), "idKey"));
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 3);
	fx_close(&f);
}

/*
 * sfs_file_spec.dir_out: the new file's directory as its create's commit
 * left it, read in the create's transaction - what sfs_dir_stat says
 * after the commit; all zero after a failed create.
 */
static void test_create_tells_its_directory(void)
{
	struct sfs_dir_info in, after;
	struct sfs_file_spec sp = { .name = "one", .path = "/d/e/" };
	struct sfs_stage *st;
	struct sfs_err e;
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	sp.dir_out = &in;
	for (i = 0; i < 3; i++) {
		memset(&in, 0x5a, sizeof(in));
		st = tfx_stage(f.s, "bytes", 5);
		REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, st, NULL, NULL),
			   SFS_OK);
		sfs_stage_free(st);
		REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/d/e/", &after, NULL),
			   SFS_OK);
		CHECK(in.ino > 0 && in.ino == after.ino);
		CHECK(in.nfiles == i + 1 && in.nfiles == after.nfiles);
		CHECK(in.mtime_ns > 0 && in.mtime_ns == after.mtime_ns);
		CHECK(in.nsub == 0 && after.nsub == 0);
		CHECK(!in.explicit_ && !after.explicit_);
	}
	/* a parent's state is not the file's directory's */
	sp.path = "/d/";
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/d/", &after, NULL), SFS_OK);
	CHECK(in.ino == after.ino && in.nfiles == 4 && in.nsub == 1);
	CHECK(in.mtime_ns == after.mtime_ns);
	/* refused: nothing read, nothing left from before */
	memset(&in, 0x5a, sizeof(in));
	sp.name = "";
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, &e), SFS_INVALID);
	CHECK(!in.ino && !in.nfiles && !in.mtime_ns && !in.explicit_);
	fx_close(&f);
}

static void test_lazy_create(void)
{
	struct sfs_file_spec sp = { .name = "new", .path = "/l/", .lazy = 1 };
	struct sfs_store *s2 = NULL;
	struct sfs_file out, g;
	struct sfs_stage *st;
	struct sfs_err e;
	char other[SFS_ID_SIZE];
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, NULL, &out, NULL), SFS_OK);
	CHECK(out.size == 0 && !strcmp(out.sha256, EMPTY_SHA));
	/* its commit waits for a sync (the store's internals, on purpose) */
	CHECK(unsynced(&f) == LAZY);
	/* another handle (another process) sees it at once */
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &s2, NULL), SFS_OK);
	CHECK_ST(sfs_file_get(s2, &f.a, out.id, &g, NULL), SFS_OK);
	CHECK(g.size == 0 && !strcmp(g.path, "/l/"));
	sfs_file_release(&g);
	sfs_store_close(s2);

	/* only a create without content (or with none in it) can be lazy */
	st = tfx_stage(f.s, "bytes", 5);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, st, NULL, &e), SFS_INVALID);
	CHECK(!strcmp(field0(&e), "lazy"));
	sfs_stage_free(st);
	sp.uri = "https://example.com/a.wav";
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, NULL),
		 SFS_INVALID);
	sp.uri = NULL;
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 1);
	CHECK(unsynced(&f) == LAZY);
	/* an empty stage (the API's empty upload) is no content either */
	REQUIRE_ST(sfs_file_sync(f.s, &f.a, out.id, NULL), SFS_OK);
	REQUIRE(unsynced(&f) == 0);
	st = tfx_stage(f.s, "", 0);
	sp.name = "empty";
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, st, &g, NULL), SFS_OK);
	sfs_stage_free(st);
	CHECK(g.size == 0 && !strcmp(g.sha256, EMPTY_SHA));
	sfs_file_release(&g);
	CHECK(unsynced(&f) == LAZY);
	sp.name = "new";
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 2);

	/* sync: owner and EDIT; VIEW may not; another tenant sees nothing */
	CHECK_ST(sfs_file_sync(f.s, &f.a, out.id, NULL), SFS_OK);
	CHECK(unsynced(&f) == 0);
	REQUIRE_ST(share(&f, out.id, f.ub, SFS_PERM_EDIT), SFS_OK);
	REQUIRE_ST(share(&f, out.id, f.uc, SFS_PERM_VIEW), SFS_OK);
	CHECK_ST(sfs_file_sync(f.s, &f.b, out.id, NULL), SFS_OK);
	CHECK_ST(sfs_file_sync(f.s, &f.c, out.id, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_file_sync(f.s, &f.x, out.id, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_file_get(f.s, &f.a, out.id, &g, NULL), SFS_OK);
	CHECK(g.ctime_ns == out.ctime_ns && g.mtime_ns == out.mtime_ns);
	sfs_file_release(&g);

	/* content: the same bytes as another file's share its blob */
	REQUIRE_ST(mk(&f, &f.a, "other", "/", "same bytes", other, NULL),
		   SFS_OK);
	st = tfx_stage(f.s, "same bytes", 10);
	CHECK_ST(sfs_file_set_content(f.s, &f.a, out.id, st, 0, &g, NULL),
		 SFS_OK);
	sfs_stage_free(st);
	CHECK(g.size == 10 && tfx_blob_refs(f.s, f.a.tenant, g.sha256) == 2);
	CHECK(tenant(&f).used_bytes == 10);
	sfs_file_release(&g);
	/* new bytes: a blob of their own, synced and linked */
	st = tfx_stage(f.s, "fresh", 5);
	CHECK_ST(sfs_file_set_content(f.s, &f.a, out.id, st, 0, &g, NULL),
		 SFS_OK);
	sfs_stage_free(st);
	CHECK(g.size == 5 && tfx_blob_refs(f.s, f.a.tenant, g.sha256) == 1);
	CHECK(tenant(&f).used_bytes == 15);
	sfs_file_release(&g);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);

	/* a deleted file cannot be synced */
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, out.id, 0, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_sync(f.s, &f.a, out.id, &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_FILE_DELETED);
	sfs_file_release(&out);
	fx_close(&f);

	/* a lazy create that fails in its transaction (quota) leaves no row
	 * and nothing more to sync */
	REQUIRE(fx_open_q(&f, 0, 1) == 0);
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, &e), SFS_QUOTA);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 1);
	CHECK(unsynced(&f) == LAZY);
	fx_close(&f);
}

/*
 * A stage is hashed and frozen before the transaction, and synced only
 * when the tenant lacks its bytes: if they vanish before the commit
 * (the last file holding them purged meanwhile), the commit still makes
 * them a blob of their own.
 */
static void test_stage_prepare(void)
{
	struct sfs_file_spec sp = { .name = "again", .path = "/" };
	struct sfs_file out;
	struct sfs_stage *st;
	struct sfs_err e;
	char id[SFS_ID_SIZE], buf[32];
	enum sfs_status rs;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "first", "/", "shared bytes", id, NULL),
		   SFS_OK);
	st = tfx_stage(f.s, "shared bytes", 12);
	REQUIRE(st != NULL);
	CHECK_ST(sfsi_blob_stage_prepare(f.s, f.a.tenant, st, NULL), SFS_OK);
	CHECK(sfs_stage_sha256(st) != NULL);
	/* frozen: the hash stays the bytes' */
	sfs_err_init(&e);
	CHECK_ST(sfs_stage_write(st, "x", 1, &e), SFS_CONFLICT);
	CHECK_ST(sfs_stage_truncate(st, 1, NULL), SFS_CONFLICT);
	/* the only holder of these bytes goes, and with it the blob file */
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, id, 1, NULL), SFS_OK);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sfs_stage_sha256(st)) == -1);
	CHECK_ST(sfs_file_create(f.s, &f.a, &sp, st, &out, NULL), SFS_OK);
	sfs_stage_free(st);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, out.sha256) == 1);
	CHECK(slurp(&f, &f.a, out.id, SFS_CONTENT_ORIGINAL, buf, sizeof(buf),
		    &rs) == 12 &&
	      !strcmp(buf, "shared bytes"));
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	sfs_file_release(&out);
	/* a stage of new bytes prepares (and syncs) the same way */
	st = tfx_stage(f.s, "new", 3);
	REQUIRE(st != NULL);
	CHECK_ST(sfsi_blob_stage_prepare(f.s, f.a.tenant, st, NULL), SFS_OK);
	CHECK_ST(sfsi_blob_stage_prepare(f.s, f.a.tenant, st, NULL), SFS_OK);
	CHECK_ST(sfs_file_set_content(f.s, &f.a, id, st, 0, NULL, &e),
		 SFS_CONFLICT); /* the purged file takes nothing */
	sfs_stage_free(st);
	fx_close(&f);
}

static void test_create_many(void)
{
	struct sfs_file_spec specs[3] = {
		{ .name = "a", .path = "/m/" },
		{ .name = "b", .path = "/m/" },
		{ .name = "c", .path = "/m/n/" },
	};
	struct sfs_dir_info di;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	CHECK_ST(sfs_file_create_many(f.s, &f.a, specs, 3, NULL), SFS_OK);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 3);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/m/", &di, NULL), SFS_OK);
	CHECK(di.nfiles == 3);
	CHECK(tenant(&f).used_files == 3);
	/* one bad spec: none of the batch is made */
	specs[1].path = "bad";
	sfs_err_init(&e);
	CHECK_ST(sfs_file_create_many(f.s, &f.a, specs, 3, &e), SFS_INVALID);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 3);
	CHECK(tenant(&f).used_files == 3);
	f.a.scopes = SFS_SCOPE_READ;
	specs[1].path = "/m/";
	CHECK_ST(sfs_file_create_many(f.s, &f.a, specs, 3, NULL),
		 SFS_FORBIDDEN);
	fx_close(&f);
}

/* ---- permissions -----------------------------------------------------------
 */

static void test_permissions(void)
{
	struct sfs_file_update u = { .set = SFS_UPD_NAME, .name = "renamed" };
	struct sfs_file_update pub = { .set = SFS_UPD_PUBLISH,
				       .publish = SFS_PUBLISH_INTERNAL };
	char id[SFS_ID_SIZE];
	struct sfs_file g;
	struct sfs_stage *st;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "f", "/", "data", id, NULL), SFS_OK);
	REQUIRE_ST(share(&f, id, f.ub, SFS_PERM_EDIT), SFS_OK);
	REQUIRE_ST(share(&f, id, f.uc, SFS_PERM_VIEW), SFS_OK);

	/* EDIT share: read and update metadata, nothing of the owner's */
	REQUIRE_ST(sfs_file_get(f.s, &f.b, id, &g, NULL), SFS_OK);
	CHECK(g.access == SFS_ACCESS_DIRECT_SHARE && g.perm == SFS_PERM_EDIT);
	CHECK(!strcmp(g.shared_by, f.ua) && g.shared_at > 0);
	sfs_file_release(&g);
	CHECK_ST(sfs_file_update(f.s, &f.b, id, &u, NULL, NULL), SFS_OK);
	CHECK_ST(open_st(&f, &f.b, id, SFS_CONTENT_ORIGINAL, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_delete(f.s, &f.b, id, 0, &e), SFS_FORBIDDEN);
	CHECK(e.reason == SFS_R_FORBIDDEN);
	CHECK_ST(sfs_file_delete(f.s, &f.b, id, 1, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_file_discard(f.s, &f.b, id, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_file_update(f.s, &f.b, id, &pub, NULL, NULL),
		 SFS_FORBIDDEN);
	/* naming the current publish mode is no change */
	pub.publish = SFS_PUBLISH_PRIVATE;
	CHECK_ST(sfs_file_update(f.s, &f.b, id, &pub, NULL, NULL), SFS_OK);
	CHECK_ST(sfs_listening_generate(f.s, &f.b, id, NULL, NULL), SFS_OK);
	CHECK_ST(sfs_listening_delete(f.s, &f.b, id, 0, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_listening_purge(f.s, &f.b, id, NULL), SFS_FORBIDDEN);
	st = tfx_stage(f.s, "edited", 6);
	CHECK_ST(sfs_file_set_content(f.s, &f.b, id, st, 0, NULL, NULL),
		 SFS_OK);
	sfs_stage_free(st);

	/* VIEW share: read only */
	REQUIRE_ST(sfs_file_get(f.s, &f.c, id, &g, NULL), SFS_OK);
	CHECK(g.access == SFS_ACCESS_DIRECT_SHARE && g.perm == SFS_PERM_VIEW);
	CHECK(!strcmp(g.name, "renamed"));
	sfs_file_release(&g);
	CHECK_ST(open_st(&f, &f.c, id, SFS_CONTENT_ORIGINAL, NULL), SFS_OK);
	CHECK_ST(sfs_file_update(f.s, &f.c, id, &u, NULL, NULL), SFS_FORBIDDEN);
	st = tfx_stage(f.s, "viewer", 6);
	CHECK_ST(sfs_file_set_content(f.s, &f.c, id, st, 0, NULL, NULL),
		 SFS_FORBIDDEN);
	sfs_stage_free(st);
	CHECK_ST(sfs_file_delete(f.s, &f.c, id, 0, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_listening_generate(f.s, &f.c, id, NULL, NULL),
		 SFS_FORBIDDEN);

	/* same tenant, no share: forbidden until the file is INTERNAL */
	sfs_err_init(&e);
	CHECK_ST(sfs_file_get(f.s, &f.d, id, &g, &e), SFS_FORBIDDEN);
	CHECK_ST(open_st(&f, &f.d, id, SFS_CONTENT_ORIGINAL, NULL),
		 SFS_FORBIDDEN);
	pub.publish = SFS_PUBLISH_INTERNAL;
	CHECK_ST(sfs_file_update(f.s, &f.a, id, &pub, NULL, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.d, id, &g, NULL), SFS_OK);
	CHECK(g.access == SFS_ACCESS_INTERNAL && g.perm == SFS_PERM_VIEW);
	sfs_file_release(&g);
	CHECK_ST(open_st(&f, &f.d, id, SFS_CONTENT_ORIGINAL, NULL), SFS_OK);
	CHECK_ST(sfs_file_update(f.s, &f.d, id, &u, NULL, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_file_delete(f.s, &f.d, id, 0, NULL), SFS_FORBIDDEN);
	/* a direct share wins over INTERNAL */
	REQUIRE_ST(sfs_file_get(f.s, &f.b, id, &g, NULL), SFS_OK);
	CHECK(g.perm == SFS_PERM_EDIT);
	sfs_file_release(&g);

	/* another tenant never sees it, INTERNAL or not */
	sfs_err_init(&e);
	CHECK_ST(sfs_file_get(f.s, &f.x, id, &g, &e), SFS_NOT_FOUND);
	CHECK(e.reason == SFS_R_FILE_NOT_FOUND);
	CHECK_ST(sfs_file_update(f.s, &f.x, id, &u, NULL, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_file_delete(f.s, &f.x, id, 1, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_file_discard(f.s, &f.x, id, NULL), SFS_NOT_FOUND);
	CHECK_ST(open_st(&f, &f.x, id, SFS_CONTENT_ORIGINAL, NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_listening_generate(f.s, &f.x, id, NULL, NULL),
		 SFS_NOT_FOUND);

	/* scopes */
	f.b.scopes = SFS_SCOPE_READ;
	sfs_err_init(&e);
	CHECK_ST(sfs_file_update(f.s, &f.b, id, &u, NULL, &e), SFS_FORBIDDEN);
	CHECK(e.reason == SFS_R_INSUFFICIENT_SCOPE);
	f.a.scopes = SFS_SCOPE_READ | SFS_SCOPE_WRITE;
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_FORBIDDEN);
	CHECK_ST(mk(&f, &f.b, "x", "/", "x", NULL, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_listening_delete(f.s, &f.a, id, 0, NULL), SFS_FORBIDDEN);
	f.a.scopes = SFS_SCOPE_READ | SFS_SCOPE_DELETE;
	CHECK_ST(sfs_file_discard(f.s, &f.a, id, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_listening_purge(f.s, &f.a, id, NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_file_restore(f.s, &f.a, id, NULL, NULL), SFS_FORBIDDEN);
	f.a.scopes = SFS_SCOPE_WRITE;
	CHECK_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_FORBIDDEN);
	CHECK_ST(open_st(&f, &f.a, id, SFS_CONTENT_ORIGINAL, NULL),
		 SFS_FORBIDDEN);
	f.a.scopes = SFS_SCOPE_ALL;

	/* once deleted, the file is gone for everyone but its owner */
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	f.b.scopes = SFS_SCOPE_ALL;
	CHECK_ST(sfs_file_get(f.s, &f.b, id, &g, NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_file_get(f.s, &f.d, id, &g, NULL), SFS_NOT_FOUND);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.deleted);
	sfs_file_release(&g);
	CHECK_ST(sfs_file_restore(f.s, &f.b, id, NULL, NULL), SFS_NOT_FOUND);
	fx_close(&f);
}

/* ---- update ----------------------------------------------------------------
 */

static void test_update(void)
{
	const char *tags[] = { "new", "Other" };
	struct sfs_file_update u;
	char id[SFS_ID_SIZE];
	struct sfs_file g;
	struct sfs_err e;
	int64_t first;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "f", "/a/", "data", id, NULL), SFS_OK);
	memset(&u, 0, sizeof(u));
	u.set = SFS_UPD_NAME | SFS_UPD_DESCRIPTION | SFS_UPD_PATH |
		SFS_UPD_METADATA | SFS_UPD_TAGS | SFS_UPD_FILENAME |
		SFS_UPD_MTIME;
	u.name = "g";
	u.description = "desc";
	u.path = "/b/c/";
	u.metadata = "{\"x\":true}";
	u.tags = tags;
	u.ntags = 2;
	u.filename = "g.wav";
	u.mtime_ns = 123456789;
	REQUIRE_ST(sfs_file_update(f.s, &f.a, id, &u, &g, NULL), SFS_OK);
	CHECK(!strcmp(g.name, "g") && !strcmp(g.description, "desc"));
	CHECK(!strcmp(g.path, "/b/c/") && strstr(g.metadata, "true"));
	CHECK(g.ntags == 2 && !strcmp(g.tags[0], "new") &&
	      !strcmp(g.tags[1], "Other"));
	CHECK(!strcmp(g.filename, "g.wav") && g.mtime_ns == 123456789);
	CHECK(g.size == 4);
	sfs_file_release(&g);

	/* only the named fields change; NULL makes a field null */
	memset(&u, 0, sizeof(u));
	u.set = SFS_UPD_DESCRIPTION | SFS_UPD_METADATA | SFS_UPD_TAGS;
	REQUIRE_ST(sfs_file_update(f.s, &f.a, id, &u, &g, NULL), SFS_OK);
	CHECK(g.description == NULL && g.metadata == NULL && g.ntags == 0);
	CHECK(!strcmp(g.name, "g") && !strcmp(g.path, "/b/c/"));
	sfs_file_release(&g);

	/* invalid input changes nothing, and names the fields */
	memset(&u, 0, sizeof(u));
	u.set = SFS_UPD_NAME | SFS_UPD_PATH | SFS_UPD_METADATA;
	u.name = "fine";
	u.path = "no-slash";
	u.metadata = "[]";
	sfs_err_init(&e);
	CHECK_ST(sfs_file_update(f.s, &f.a, id, &u, NULL, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "path", NULL) &&
	      tfx_has_field(&e, "metadata", NULL));
	u.set = SFS_UPD_NAME;
	u.name = "";
	CHECK_ST(sfs_file_update(f.s, &f.a, id, &u, NULL, NULL), SFS_INVALID);
	u.set = SFS_UPD_PATH;
	u.path = NULL;
	CHECK_ST(sfs_file_update(f.s, &f.a, id, &u, NULL, NULL), SFS_INVALID);
	u.set = SFS_UPD_PUBLISH;
	u.publish = (enum sfs_publish)7;
	sfs_err_init(&e);
	CHECK_ST(sfs_file_update(f.s, &f.a, id, &u, NULL, &e), SFS_INVALID);
	CHECK(tfx_has_field(&e, "publishMode", NULL));
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(!strcmp(g.name, "g") && g.publish == SFS_PUBLISH_PRIVATE);
	sfs_file_release(&g);

	/* publishedAt: set the first time the file becomes INTERNAL only */
	memset(&u, 0, sizeof(u));
	u.set = SFS_UPD_PUBLISH;
	u.publish = SFS_PUBLISH_INTERNAL;
	REQUIRE_ST(sfs_file_update(f.s, &f.a, id, &u, &g, NULL), SFS_OK);
	CHECK(g.publish == SFS_PUBLISH_INTERNAL && g.published_at > 0);
	first = g.published_at;
	sfs_file_release(&g);
	u.publish = SFS_PUBLISH_PRIVATE;
	REQUIRE_ST(sfs_file_update(f.s, &f.a, id, &u, &g, NULL), SFS_OK);
	CHECK(g.publish == SFS_PUBLISH_PRIVATE);
	sfs_file_release(&g);
	sfs_set_clock_offset_ms(50000);
	u.publish = SFS_PUBLISH_INTERNAL;
	REQUIRE_ST(sfs_file_update(f.s, &f.a, id, &u, &g, NULL), SFS_OK);
	CHECK(g.published_at == first);
	sfs_file_release(&g);
	sfs_set_clock_offset_ms(0);

	/* a deleted file is not updated */
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	u.set = SFS_UPD_NAME;
	u.name = "zombie";
	sfs_err_init(&e);
	CHECK_ST(sfs_file_update(f.s, &f.a, id, &u, NULL, &e), SFS_CONFLICT);
	CHECK_ST(sfs_file_update(f.s, &f.a, NULL, &u, NULL, NULL),
		 SFS_NOT_FOUND);
	fx_close(&f);
}

/* ---- lifecycle -------------------------------------------------------------
 */

static void test_delete_purge_restore(void)
{
	char id[SFS_ID_SIZE], id2[SFS_ID_SIZE], sha[65];
	struct sfs_file g;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "f", "/d/", "content", id, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	sfs_strlcpy(sha, g.sha256, sizeof(sha));
	sfs_file_release(&g);

	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.deleted && !g.purged && g.deleted_at > 0);
	CHECK(g.purge_at == g.deleted_at + RETENTION * 1000);
	sfs_file_release(&g);
	/* content is kept until the purge */
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == 1);
	CHECK(tenant(&f).used_files == 1);
	sfs_err_init(&e);
	CHECK_ST(open_st(&f, &f.a, id, SFS_CONTENT_ORIGINAL, &e), SFS_GONE);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_FILE_DELETED);
	CHECK_ST(sfs_file_discard(f.s, &f.a, id, NULL), SFS_CONFLICT);

	/* restore */
	REQUIRE_ST(sfs_file_restore(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(!g.deleted && g.deleted_at == 0 && g.purge_at == 0);
	sfs_file_release(&g);
	CHECK_ST(open_st(&f, &f.a, id, SFS_CONTENT_ORIGINAL, NULL), SFS_OK);
	CHECK_ST(sfs_file_restore(f.s, &f.a, id, NULL, NULL), SFS_CONFLICT);

	/* purge of a deleted file */
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 1, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.deleted && g.purged && g.purged_at > 0 && g.purge_at == 0);
	sfs_file_release(&g);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == -1);
	CHECK(tenant(&f).used_files == 0 && tenant(&f).used_bytes == 0);
	/* purging a purged file is a no-op; restoring it is gone */
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 1, NULL), SFS_OK);
	CHECK(tenant(&f).used_files == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_restore(f.s, &f.a, id, NULL, &e), SFS_GONE);
	CHECK_ST(open_st(&f, &f.a, id, SFS_CONTENT_ORIGINAL, NULL), SFS_GONE);

	/* delete with purge at once */
	REQUIRE_ST(mk(&f, &f.a, "f2", "/", "content", id2, NULL), SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id2, 1, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id2, &g, NULL), SFS_OK);
	CHECK(g.deleted && g.purged && g.deleted_at > 0);
	sfs_file_release(&g);
	CHECK_ST(sfs_file_delete(f.s, &f.a,
				 "00000000-0000-4000-8000-"
				 "000000000000",
				 0, NULL),
		 SFS_NOT_FOUND);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

/* The suffixed flag of a file (0/1), or -1. */
static int suffixed(struct fx *f, const char *id)
{
	struct sfs_file g;
	int v;

	if (sfs_file_get(f->s, &f->a, id, &g, NULL))
		return -1;
	v = g.suffixed;
	sfs_file_release(&g);
	return v;
}

static void test_suffix_on_arrival(void)
{
	char a[SFS_ID_SIZE], b[SFS_ID_SIZE], c[SFS_ID_SIZE], m[SFS_ID_SIZE];
	char o[SFS_ID_SIZE];
	struct sfs_file_spec sp = { .name = "Report",
				    .path = "/d/",
				    .no_suffix = 1 };
	struct sfs_file_update u = { 0 };
	struct sfs_file g;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "Report", "/d/", "1", a, NULL), SFS_OK);
	REQUIRE_ST(mk(&f, &f.a, "Report", "/d/", "2", b, NULL), SFS_OK);
	REQUIRE_ST(mk(&f, &f.a, "report", "/d/", "3", c, NULL), SFS_OK);
	REQUIRE_ST(mk(&f, &f.a, "Report", "/e/", "4", o, NULL), SFS_OK);
	/* the second arrival under one name, in one directory, exactly */
	CHECK(suffixed(&f, a) == 0);
	CHECK(suffixed(&f, b) == 1);
	CHECK(suffixed(&f, c) == 0);
	CHECK(suffixed(&f, o) == 0);
	/* the first one going away changes nothing */
	CHECK_ST(sfs_file_delete(f.s, &f.a, a, 0, NULL), SFS_OK);
	CHECK(suffixed(&f, b) == 1);
	/* restored onto a taken name: it arrives second now */
	REQUIRE_ST(sfs_file_restore(f.s, &f.a, a, NULL, NULL), SFS_OK);
	CHECK(suffixed(&f, a) == 1);
	/* a rename decides anew; a no-op rename does not */
	u.set = SFS_UPD_NAME;
	u.name = "Report";
	CHECK_ST(sfs_file_update(f.s, &f.a, b, &u, NULL, NULL), SFS_OK);
	CHECK(suffixed(&f, b) == 1);
	u.name = "Unique";
	CHECK_ST(sfs_file_update(f.s, &f.a, b, &u, NULL, NULL), SFS_OK);
	CHECK(suffixed(&f, b) == 0);
	u.set = SFS_UPD_PATH;
	u.path = "/e/";
	CHECK_ST(sfs_file_update(f.s, &f.a, a, &u, NULL, NULL), SFS_OK);
	CHECK(suffixed(&f, a) == 1); /* o is "Report" in /e/ */
	/* a front end that made sure of its entry */
	u.set = SFS_UPD_NO_SUFFIX;
	CHECK_ST(sfs_file_update(f.s, &f.a, a, &u, NULL, NULL), SFS_OK);
	CHECK(suffixed(&f, a) == 0);
	sp.path = "/e/";
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, NULL, &g, NULL), SFS_OK);
	sfs_strlcpy(m, g.id, sizeof(m));
	CHECK(g.suffixed == 0);
	sfs_file_release(&g);
	CHECK(suffixed(&f, m) == 0);
	/* a front end that showed a suffix keeps it; ctime stays */
	REQUIRE_ST(sfs_file_get(f.s, &f.a, m, &g, NULL), SFS_OK);
	{
		int64_t ctime = g.ctime_ns;

		sfs_file_release(&g);
		u.set = SFS_UPD_SUFFIX;
		CHECK_ST(sfs_file_update(f.s, &f.a, m, &u, NULL, NULL), SFS_OK);
		REQUIRE_ST(sfs_file_get(f.s, &f.a, m, &g, NULL), SFS_OK);
		CHECK(g.suffixed == 1 && g.ctime_ns == ctime);
		sfs_file_release(&g);
	}
	/* a failed update leaves the flag alone */
	u.set = SFS_UPD_NAME;
	u.name = "";
	CHECK_ST(sfs_file_update(f.s, &f.a, o, &u, NULL, NULL), SFS_INVALID);
	CHECK(suffixed(&f, o) == 0);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

/* The display name and deleted flag of a file ("" / -1 when unreadable). */
static int name_of(struct fx *f, const char *id, char *name, size_t size)
{
	struct sfs_file g;
	int deleted;

	name[0] = 0;
	if (sfs_file_get(f->s, &f->a, id, &g, NULL))
		return -1;
	sfs_strlcpy(name, g.name, size);
	deleted = g.deleted;
	sfs_file_release(&g);
	return deleted;
}

/*
 * rename(2) over an existing entry: the target's delete and the rename
 * are one commit (the data generation moves once), and a rename that
 * fails leaves the target in place.
 */
static void test_rename_replace(void)
{
	char a[SFS_ID_SIZE], b[SFS_ID_SIZE], c[SFS_ID_SIZE], n[64];
	struct sfs_file_update u = { 0 };
	struct sfs_file g;
	struct sfs_err e;
	uint64_t gen, one;
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "final", "/d/", "old", a, NULL), SFS_OK);
	REQUIRE_ST(mk(&f, &f.a, ".final.X1y2", "/tmp/", "new", b, NULL),
		   SFS_OK);
	REQUIRE_ST(mk(&f, &f.a, "other", "/d/", "3", c, NULL), SFS_OK);
	u.set = SFS_UPD_NAME | SFS_UPD_PATH | SFS_UPD_NO_SUFFIX;
	u.name = "final";
	u.path = "/d/";
	/* what one commit moves the data generation by (PostgreSQL: known
	 * once the store's listener hears, keycache.c) */
	u.name = "other";
	for (i = 0; i < 30000 && !sfs_store_data_gen(f.s); i += 10)
		(void)sfs_store_data_gen_wait(f.s, 0, 10);
	gen = sfs_store_data_gen(f.s);
	REQUIRE(gen != 0);
	REQUIRE_ST(sfs_file_update(f.s, &f.a, c, &u, NULL, NULL), SFS_OK);
	one = sfs_store_data_gen(f.s) - gen;
	CHECK(one > 0);
	u.name = "final";
	gen = sfs_store_data_gen(f.s);
	REQUIRE_ST(sfs_file_rename(f.s, &f.a, b, &u, a, 0, &g, NULL), SFS_OK);
	CHECK(sfs_store_data_gen(f.s) - gen == one); /* one commit */
	CHECK(!g.deleted && !g.suffixed && !strcmp(g.name, "final") &&
	      !strcmp(g.path, "/d/"));
	sfs_file_release(&g);
	CHECK(name_of(&f, a, n, sizeof(n)) == 1);

	/* a bad field: nothing happens, the target stays */
	u.name = "bad\001name";
	sfs_err_init(&e);
	CHECK_ST(sfs_file_rename(f.s, &f.a, c, &u, b, 0, NULL, &e),
		 SFS_INVALID);
	CHECK(name_of(&f, b, n, sizeof(n)) == 0 && !strcmp(n, "final"));
	CHECK(name_of(&f, c, n, sizeof(n)) == 0 && !strcmp(n, "other"));
	/* an editor who may not delete the target: nothing happens */
	REQUIRE_ST(share(&f, c, f.ub, SFS_PERM_EDIT), SFS_OK);
	REQUIRE_ST(share(&f, b, f.ub, SFS_PERM_EDIT), SFS_OK);
	u.name = "final";
	CHECK_ST(sfs_file_rename(f.s, &f.b, c, &u, b, 0, NULL, NULL),
		 SFS_FORBIDDEN);
	CHECK(name_of(&f, b, n, sizeof(n)) == 0);
	CHECK(name_of(&f, c, n, sizeof(n)) == 0 && !strcmp(n, "other"));
	/* an unknown target: nothing happens */
	CHECK_ST(sfs_file_rename(f.s, &f.a, c, &u,
				 "00000000-0000-4000-8000-000000000000", 0,
				 NULL, NULL),
		 SFS_NOT_FOUND);
	CHECK(name_of(&f, c, n, sizeof(n)) == 0 && !strcmp(n, "other"));

	/* out of the trash onto a taken entry, in one commit */
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, c, 0, NULL), SFS_OK);
	CHECK_ST(sfs_file_rename(f.s, &f.a, c, &u, b, 0, NULL, NULL),
		 SFS_CONFLICT); /* deleted, without the flag */
	gen = sfs_store_data_gen(f.s);
	REQUIRE_ST(sfs_file_rename(f.s, &f.a, c, &u, b, SFS_RENAME_RESTORE,
				   NULL, NULL),
		   SFS_OK);
	CHECK(sfs_store_data_gen(f.s) - gen == one);
	CHECK(name_of(&f, c, n, sizeof(n)) == 0 && !strcmp(n, "final"));
	CHECK(name_of(&f, b, n, sizeof(n)) == 1);
	CHECK(suffixed(&f, c) == 0);
	/* a target deleted meanwhile: the rename goes on */
	u.name = "again";
	CHECK_ST(sfs_file_rename(f.s, &f.a, c, &u, a, 0, NULL, NULL), SFS_OK);
	CHECK(name_of(&f, c, n, sizeof(n)) == 0 && !strcmp(n, "again"));
	CHECK(tenant(&f).used_files == 3);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

static void test_discard(void)
{
	char id[SFS_ID_SIZE], id2[SFS_ID_SIZE], buf[32];
	struct sfs_file_update u = { .set = SFS_UPD_NAME, .name = "kept" };
	enum sfs_status rs;
	struct sfs_stage *st;
	struct sfs_file g;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "f", "/", "content", id, NULL), SFS_OK);
	CHECK_ST(sfs_file_discard(f.s, &f.a, id, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.discarded && g.discarded_at > 0 && !g.deleted);
	CHECK(!strcmp(g.name, "f"));
	sfs_file_release(&g);
	CHECK(tenant(&f).used_bytes == 0 && tenant(&f).used_files == 1);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_discard(f.s, &f.a, id, &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_CONTENT_DISCARDED);
	sfs_err_init(&e);
	CHECK_ST(open_st(&f, &f.a, id, SFS_CONTENT_ORIGINAL, &e), SFS_GONE);
	CHECK(e.reason == SFS_R_CONTENT_DISCARDED);
	/* metadata is still editable */
	CHECK_ST(sfs_file_update(f.s, &f.a, id, &u, NULL, NULL), SFS_OK);
	CHECK_ST(sfs_listening_generate(f.s, &f.a, id, NULL, NULL), SFS_GONE);
	/* a new content version brings it back */
	st = tfx_stage(f.s, "again", 5);
	REQUIRE_ST(sfs_file_set_content(f.s, &f.a, id, st, 0, &g, NULL),
		   SFS_OK);
	sfs_stage_free(st);
	CHECK(!g.discarded && g.size == 5);
	sfs_file_release(&g);
	CHECK(slurp(&f, &f.a, id, SFS_CONTENT_ORIGINAL, buf, sizeof(buf),
		    &rs) == 5 &&
	      !strcmp(buf, "again"));
	/* discard of a deleted file */
	REQUIRE_ST(mk(&f, &f.a, "f2", "/", "other", id2, NULL), SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id2, 0, NULL), SFS_OK);
	CHECK_ST(sfs_file_discard(f.s, &f.a, id2, NULL), SFS_CONFLICT);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

/* A worker whose job was replaced (new content) cannot store its result. */
static void test_stale_job_result(void)
{
	struct sfs_file_spec sp = { .name = "s", .listening = 1 };
	struct sfs_file v;
	struct sfs_stage *st, *mp3;
	struct sfs_job old, cur;
	int64_t ino;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	st = tfx_stage(f.s, "first", 5);
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, st, &v, NULL), SFS_OK);
	sfs_stage_free(st);
	REQUIRE_ST(claim_for(f.s, SFS_JOB_LISTENING, v.ino, &old), SFS_OK);
	CHECK_ST(sfsi_file_job_state(f.s, &old, SFS_JS_PROCESSING, NULL, NULL),
		 SFS_OK);
	/* a new version cancels the running job and queues another */
	st = tfx_stage(f.s, "second", 6);
	REQUIRE_ST(sfs_file_set_content(f.s, &f.a, v.id, st, 0, NULL, NULL),
		   SFS_OK);
	sfs_stage_free(st);
	mp3 = tfx_stage(f.s, "mp3 of the first", 16);
	CHECK_ST(sfsi_file_listening_done(f.s, &old, mp3, NULL, NULL),
		 SFS_CONFLICT);
	CHECK_ST(sfsi_file_job_state(f.s, &old, SFS_JS_FAILED, "late", NULL),
		 SFS_CONFLICT);
	sfs_stage_free(mp3);
	REQUIRE_ST(claim_for(f.s, SFS_JOB_LISTENING, v.ino, &cur), SFS_OK);
	CHECK_ST(sfsi_file_job_state(f.s, &cur, SFS_JS_PROCESSING, NULL, NULL),
		 SFS_OK);
	mp3 = tfx_stage(f.s, "mp3 of the second", 17);
	CHECK_ST(sfsi_file_listening_done(f.s, &cur, mp3, NULL, NULL), SFS_OK);
	sfs_stage_free(mp3);
	sfs_job_release(&old);
	sfs_job_release(&cur);
	ino = v.ino;
	sfs_file_release(&v);
	REQUIRE_ST(sfs_file_get_ino(f.s, &f.a, ino, &v, NULL), SFS_OK);
	CHECK(v.la.status == SFS_JS_COMPLETED && v.la.size == 17);
	sfs_file_release(&v);
	fx_close(&f);
}

static void test_set_content(void)
{
	const char *tags[] = { "keep" };
	struct sfs_file_spec sp = {
		.name = "v", .path = "/v/", .tags = tags, .ntags = 1
	};
	struct sfs_file v1, v2, g;
	struct sfs_stage *st;
	char buf[32];
	enum sfs_status rs;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	st = tfx_stage(f.s, "version one", 11);
	REQUIRE_ST(sfs_file_create(f.s, &f.a, &sp, st, &v1, NULL), SFS_OK);
	sfs_stage_free(st);
	REQUIRE_ST(share(&f, v1.id, f.ub, SFS_PERM_EDIT), SFS_OK);
	st = tfx_stage(f.s, "version 2", 9);
	REQUIRE_ST(sfs_file_set_content(f.s, &f.a, v1.id, st, 0, &v2, NULL),
		   SFS_OK);
	sfs_stage_free(st);
	CHECK(!strcmp(v1.id, v2.id) && v1.ino == v2.ino);
	CHECK(v2.size == 9 && strcmp(v1.sha256, v2.sha256) != 0);
	CHECK(v2.ntags == 1 && !strcmp(v2.tags[0], "keep"));
	CHECK(v2.created_at == v1.created_at);
	CHECK(v2.la.status == SFS_JS_NONE);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, v1.sha256) == -1);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, v2.sha256) == 1);
	CHECK(tenant(&f).used_bytes == 9 && tenant(&f).used_files == 1);
	CHECK(slurp(&f, &f.b, v1.id, SFS_CONTENT_ORIGINAL, buf, sizeof(buf),
		    &rs) == 9 &&
	      !strcmp(buf, "version 2"));
	REQUIRE_ST(sfs_file_get(f.s, &f.b, v1.id, &g, NULL), SFS_OK);
	CHECK(g.perm == SFS_PERM_EDIT);
	sfs_file_release(&g);

	/* with listening audio: it is made again from the new content */
	REQUIRE_ST(sfs_listening_generate(f.s, &f.a, v1.id, NULL, NULL),
		   SFS_OK);
	REQUIRE_ST(tfx_listening_done(f.s, &f.a, v1.id, "mp3 one", 7), SFS_OK);
	st = tfx_stage(f.s, "version 3", 9);
	sfs_file_release(&v2);
	REQUIRE_ST(sfs_file_set_content(f.s, &f.a, v1.id, st, 0, &v2, NULL),
		   SFS_OK);
	sfs_stage_free(st);
	CHECK(v2.la.status == SFS_JS_PENDING && v2.la.sha256[0] == '\0');
	CHECK(tenant(&f).used_bytes == 9);
	sfs_file_release(&v2);
	/* the same bytes as another file share its blob */
	REQUIRE_ST(mk(&f, &f.a, "other", "/", "shared", NULL, NULL), SFS_OK);
	st = tfx_stage(f.s, "shared", 6);
	REQUIRE_ST(sfs_file_set_content(f.s, &f.a, v1.id, st, 0, &v2, NULL),
		   SFS_OK);
	sfs_stage_free(st);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, v2.sha256) == 2);
	/*
	 * the same bytes once more: the blob is kept as it is, not relinked
	 * (bytes past blobs.inline_max, so that they are a file)
	 */
	{
		static char mine[70001];
		char p[4096];
		struct stat b1, b2;

		struct sfs_file solo;
		char sid[SFS_ID_SIZE];

		memset(mine, 'm', sizeof(mine) - 1);
		REQUIRE_ST(mk(&f, &f.a, "solo", "/", mine, sid, NULL), SFS_OK);
		REQUIRE_ST(sfs_file_get(f.s, &f.a, sid, &solo, NULL), SFS_OK);
		sfsi_blob_path(f.s, f.a.tenant, solo.sha256, p, sizeof(p));
		/* (the local backend's file; an object has no inode) */
		REQUIRE(th_s3 || stat(p, &b1) == 0);
		st = tfx_stage(f.s, mine, sizeof(mine) - 1);
		CHECK_ST(
			sfs_file_set_content(f.s, &f.a, sid, st, 0, NULL, NULL),
			SFS_OK);
		sfs_stage_free(st);
		REQUIRE(th_s3 || stat(p, &b2) == 0);
		CHECK(th_s3 || b1.st_ino == b2.st_ino);
		{
			static char back[sizeof(mine)];
			enum sfs_status rst;

			CHECK(slurp(&f, &f.a, sid, SFS_CONTENT_ORIGINAL, back,
				    sizeof(back), &rst) == sizeof(mine) - 1 &&
			      !memcmp(back, mine, sizeof(mine) - 1));
		}
		CHECK(tfx_blob_refs(f.s, f.a.tenant, solo.sha256) == 1);
		CHECK(tenant(&f).used_files == 3);
		CHECK_ST(sfs_file_delete(f.s, &f.a, sid, 1, NULL), SFS_OK);
		sfs_file_release(&solo);
	}
	sfs_file_release(&v2);

	/* not on a deleted file */
	CHECK_ST(sfs_file_delete(f.s, &f.a, v1.id, 0, NULL), SFS_OK);
	st = tfx_stage(f.s, "late", 4);
	CHECK_ST(sfs_file_set_content(f.s, &f.a, v1.id, st, 0, NULL, NULL),
		 SFS_CONFLICT);
	sfs_stage_free(st);
	sfs_file_release(&v1);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob") == 1);
	fx_close(&f);
}

/* ---- listening audio --------------------------------------------------------
 */

static void test_listening_rules(void)
{
	struct sfs_job job;
	char id[SFS_ID_SIZE], buf[32];
	enum sfs_status rs;
	struct sfs_file g;
	struct sfs_err e;
	int64_t ino;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "f", "/", "original", id, NULL), SFS_OK);
	ino = ino_of(&f, id);
	/* nothing to delete or purge yet */
	sfs_err_init(&e);
	CHECK_ST(sfs_listening_delete(f.s, &f.a, id, 0, &e), SFS_NOT_FOUND);
	CHECK_ST(sfs_listening_purge(f.s, &f.a, id, NULL), SFS_NOT_FOUND);
	CHECK_ST(open_st(&f, &f.a, id, SFS_CONTENT_LISTENING, NULL),
		 SFS_NOT_READY);

	REQUIRE_ST(sfs_listening_generate(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.la.status == SFS_JS_PENDING);
	sfs_file_release(&g);
	CHECK_ST(sfs_listening_generate(f.s, &f.a, id, NULL, NULL),
		 SFS_CONFLICT);
	CHECK_ST(sfs_listening_purge(f.s, &f.a, id, NULL), SFS_CONFLICT);
	CHECK_ST(open_st(&f, &f.a, id, SFS_CONTENT_LISTENING, NULL),
		 SFS_NOT_READY);
	/* a failed generation may be retried */
	REQUIRE_ST(claim_for(f.s, SFS_JOB_LISTENING, ino, &job), SFS_OK);
	CHECK_ST(sfsi_file_job_state(f.s, &job, SFS_JS_FAILED, "encoder broke",
				     NULL),
		 SFS_OK);
	sfs_job_release(&job);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.la.status == SFS_JS_FAILED && g.la.error &&
	      !strcmp(g.la.error, "encoder broke"));
	sfs_file_release(&g);
	REQUIRE_ST(sfs_listening_generate(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.la.status == SFS_JS_PENDING && g.la.error == NULL);
	sfs_file_release(&g);
	REQUIRE_ST(tfx_listening_done(f.s, &f.a, id, "mp3 bytes", 9), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.la.status == SFS_JS_COMPLETED && g.la.size == 9 &&
	      g.la.created_at > 0 && g.la.sha256[0]);
	sfs_file_release(&g);
	CHECK(slurp(&f, &f.a, id, SFS_CONTENT_LISTENING, buf, sizeof(buf),
		    &rs) == 9 &&
	      !strcmp(buf, "mp3 bytes"));
	CHECK(tenant(&f).used_bytes == 8 + 9);
	sfs_err_init(&e);
	CHECK_ST(sfs_listening_generate(f.s, &f.a, id, NULL, &e), SFS_CONFLICT);

	/* delete, then purge the deleted one */
	CHECK_ST(sfs_listening_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.la.deleted && g.la.deleted_at > 0 && !g.la.purged);
	CHECK(g.la.purge_at == g.la.deleted_at + RETENTION * 1000);
	sfs_file_release(&g);
	CHECK_ST(open_st(&f, &f.a, id, SFS_CONTENT_LISTENING, NULL), SFS_GONE);
	CHECK_ST(open_st(&f, &f.a, id, SFS_CONTENT_ORIGINAL, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_listening_delete(f.s, &f.a, id, 0, &e), SFS_CONFLICT);
	CHECK_ST(sfs_listening_purge(f.s, &f.a, id, NULL), SFS_CONFLICT);
	CHECK_ST(sfs_listening_generate(f.s, &f.a, id, NULL, NULL),
		 SFS_CONFLICT);
	CHECK_ST(sfs_listening_delete(f.s, &f.a, id, 1, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.la.deleted && g.la.purged && g.la.purged_at > 0);
	sfs_file_release(&g);
	CHECK(tenant(&f).used_bytes == 8);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

static void test_listening_purge(void)
{
	char id[SFS_ID_SIZE], id2[SFS_ID_SIZE];
	struct sfs_file g;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "f", "/", "original", id, NULL), SFS_OK);
	REQUIRE_ST(sfs_listening_generate(f.s, &f.a, id, NULL, NULL), SFS_OK);
	REQUIRE_ST(tfx_listening_done(f.s, &f.a, id, "mp3", 3), SFS_OK);
	/* purge keeps the metadata, drops the bytes */
	CHECK_ST(sfs_listening_purge(f.s, &f.a, id, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.la.status == SFS_JS_COMPLETED && g.la.purged && !g.la.deleted &&
	      g.la.purged_at > 0 && g.la.size == 3);
	sfs_file_release(&g);
	CHECK_ST(open_st(&f, &f.a, id, SFS_CONTENT_LISTENING, NULL), SFS_GONE);
	CHECK_ST(sfs_listening_purge(f.s, &f.a, id, NULL), SFS_CONFLICT);
	CHECK_ST(sfs_listening_generate(f.s, &f.a, id, NULL, NULL),
		 SFS_CONFLICT);
	CHECK(tenant(&f).used_bytes == 8);

	/* purging the file releases its listening audio too */
	REQUIRE_ST(mk(&f, &f.a, "f2", "/", "second", id2, NULL), SFS_OK);
	REQUIRE_ST(sfs_listening_generate(f.s, &f.a, id2, NULL, NULL), SFS_OK);
	REQUIRE_ST(tfx_listening_done(f.s, &f.a, id2, "mp3 of two", 10),
		   SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id2, 1, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id2, &g, NULL), SFS_OK);
	CHECK(g.purged && g.la.purged);
	sfs_file_release(&g);
	CHECK(tenant(&f).used_bytes == 8);
	/* a deleted file's pending generation is cancelled */
	REQUIRE_ST(mk(&f, &f.a, "f3", "/", "third", id2, NULL), SFS_OK);
	REQUIRE_ST(sfs_listening_generate(f.s, &f.a, id2, NULL, NULL), SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id2, 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id2, &g, NULL), SFS_OK);
	CHECK(g.la.status == SFS_JS_FAILED);
	{
		char q[128];

		snprintf(q, sizeof(q),
			 "SELECT count(*) FROM job WHERE"
			 " file_id = %lld AND state IN (1, 2)",
			 (long long)g.ino);
		CHECK(tfx_sql_int(f.s, q) == 0);
	}
	sfs_file_release(&g);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

/* ---- janitor ----------------------------------------------------------------
 */

static void test_janitor(void)
{
	char id[SFS_ID_SIZE], id2[SFS_ID_SIZE], keep[SFS_ID_SIZE];
	struct sfs_file g;
	struct fx f;
	int n = -1;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "gone", "/", "one", id, NULL), SFS_OK);
	REQUIRE_ST(mk(&f, &f.a, "la", "/", "two", id2, NULL), SFS_OK);
	REQUIRE_ST(mk(&f, &f.a, "kept", "/", "three", keep, NULL), SFS_OK);
	REQUIRE_ST(sfs_listening_generate(f.s, &f.a, id2, NULL, NULL), SFS_OK);
	REQUIRE_ST(tfx_listening_done(f.s, &f.a, id2, "mp3", 3), SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	CHECK_ST(sfs_listening_delete(f.s, &f.a, id2, 0, NULL), SFS_OK);
	CHECK_ST(sfs_store_janitor_run(f.s, &n, NULL), SFS_OK);
	CHECK(n == 0);
	/* just before purgeAt: still nothing */
	sfs_set_clock_offset_ms(RETENTION * 1000 - 5000);
	CHECK_ST(sfs_store_janitor_run(f.s, &n, NULL), SFS_OK);
	CHECK(n == 0);
	sfs_set_clock_offset_ms(RETENTION * 1000 + 1000);
	CHECK_ST(sfs_store_janitor_run(f.s, &n, NULL), SFS_OK);
	CHECK(n == 2);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(g.purged && g.purged_at > 0);
	sfs_file_release(&g);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id2, &g, NULL), SFS_OK);
	CHECK(!g.purged && g.la.purged && !g.deleted);
	sfs_file_release(&g);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, keep, &g, NULL), SFS_OK);
	CHECK(!g.deleted && !g.purged);
	sfs_file_release(&g);
	CHECK(tenant(&f).used_files == 2);
	CHECK(tenant(&f).used_bytes == 3 + 5);
	CHECK_ST(sfs_store_janitor_run(f.s, &n, NULL), SFS_OK);
	CHECK(n == 0);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

static void test_janitor_many(void)
{
	struct sfs_file_spec specs[150];
	struct fx f;
	int n = -1, i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 150; i++) {
		memset(&specs[i], 0, sizeof(specs[i]));
		specs[i].name = "bulk";
	}
	REQUIRE_ST(sfs_file_create_many(f.s, &f.a, specs, 150, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_create_many(f.s, &f.a, specs, 1, NULL), SFS_OK);
	/* 150 deleted files and 70 expired listening audios */
	CHECK(tfx_sql(f.s, "UPDATE file SET is_deleted = 1,"
			   " deleted_at = 1, purge_at = 2"
			   " WHERE id <= 150;"
			   " UPDATE file SET la_status = 3,"
			   " la_deleted = 1, la_deleted_at = 1,"
			   " la_purge_at = 2 WHERE id > 80") == 0);
	CHECK_ST(sfs_store_janitor_run(f.s, &n, NULL), SFS_OK);
	CHECK(tfx_sql_int(f.s,
			  "SELECT count(*) FROM file WHERE is_purged = 1") ==
	      150);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file WHERE la_purged = 0"
			       " AND la_deleted = 1") == 0);
	CHECK(tenant(&f).used_files == 1);
	fx_close(&f);
}

/* ---- quotas
 * -------------------------------------------------------------------- */

static void test_quota(void)
{
	char big[61], id[SFS_ID_SIZE];
	struct sfs_stage *st;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open_q(&f, 100, 3) == 0);
	memset(big, 'b', 60);
	big[60] = '\0';
	REQUIRE_ST(mk(&f, &f.a, "one", "/", big, id, NULL), SFS_OK);
	big[0] = 'c';
	sfs_err_init(&e);
	CHECK_ST(mk(&f, &f.a, "two", "/", big, NULL, &e), SFS_QUOTA);
	CHECK(e.reason == SFS_R_QUOTA_EXCEEDED);
	CHECK(tenant(&f).used_bytes == 60 && tenant(&f).used_files == 1);
	/* the same bytes again take no space */
	big[0] = 'b';
	CHECK_ST(mk(&f, &f.a, "dup", "/", big, NULL, NULL), SFS_OK);
	CHECK(tenant(&f).used_bytes == 60);
	/* a new version that does not fit */
	st = tfx_stage(f.s, "x", 1);
	{
		char more[50];

		memset(more, 'm', sizeof(more));
		REQUIRE_ST(sfs_stage_write(st, more, sizeof(more), NULL),
			   SFS_OK);
	}
	sfs_err_init(&e);
	CHECK_ST(sfs_file_set_content(f.s, &f.a, id, st, 0, NULL, &e),
		 SFS_QUOTA);
	CHECK(e.reason == SFS_R_QUOTA_EXCEEDED);
	sfs_stage_free(st);
	/* a new version is counted instead of the old one, not on top */
	{
		char own[SFS_ID_SIZE], more[71];
		struct sfs_file g;

		CHECK_ST(sfs_file_delete(f.s, &f.a, id, 1, NULL), SFS_OK);
		CHECK(tenant(&f).used_bytes == 60);
		memset(more, 'o', 40);
		more[40] = '\0';
		REQUIRE_ST(mk(&f, &f.a, "own", "/", more, own, NULL), SFS_OK);
		CHECK(tenant(&f).used_bytes == 100);
		memset(more, 'p', 40);
		st = tfx_stage(f.s, more, 40);
		CHECK_ST(sfs_file_set_content(f.s, &f.a, own, st, 0, &g, NULL),
			 SFS_OK);
		sfs_stage_free(st);
		sfs_file_release(&g);
		CHECK(tenant(&f).used_bytes == 100);
		/* and the same bytes again are no change at all */
		st = tfx_stage(f.s, more, 40);
		CHECK_ST(
			sfs_file_set_content(f.s, &f.a, own, st, 0, NULL, NULL),
			SFS_OK);
		sfs_stage_free(st);
		CHECK(tenant(&f).used_bytes == 100);
		CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
		CHECK_ST(sfs_file_delete(f.s, &f.a, own, 1, NULL), SFS_OK);
		REQUIRE_ST(mk(&f, &f.a, "one", "/", big, id, NULL), SFS_OK);
	}
	/* the file count */
	CHECK_ST(mk(&f, &f.a, "small", "/", "s", NULL, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(mk(&f, &f.a, "fourth", "/", "t", NULL, &e), SFS_QUOTA);
	CHECK(e.reason == SFS_R_QUOTA_EXCEEDED);
	{
		struct sfs_file_spec sp = { .name = "empty" };

		CHECK_ST(sfs_file_create(f.s, &f.a, &sp, NULL, NULL, NULL),
			 SFS_QUOTA);
	}
	CHECK(tenant(&f).used_files == 3);
	/* a soft-deleted file still counts; a purged one does not */
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	CHECK_ST(mk(&f, &f.a, "fourth", "/", "t", NULL, NULL), SFS_QUOTA);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 1, NULL), SFS_OK);
	CHECK_ST(mk(&f, &f.a, "fourth", "/", "t", NULL, NULL), SFS_OK);
	/* another tenant has its own quota */
	CHECK_ST(mk(&f, &f.x, "x", "/", big, NULL, NULL), SFS_OK);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	{
		char p[4096];
		struct stat sb;

		snprintf(p, sizeof(p), "%s/staging", f.dir);
		CHECK(stat(p, &sb) == 0);
	}
	fx_close(&f);
}

/* ---- two store handles at once
 * ----------------------------------------------- */

struct worker {
	const char *dir;
	const char *uid;
	int n;
	char path[32];
	int failed;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct sfs_store *s = NULL;
	struct sfs_actor a;
	char text[64];
	int i;

	if (sfs_store_open(w->dir, NULL, &s, NULL) ||
	    sfs_auth_user(s, w->uid, SFS_SCOPE_ALL, &a, NULL)) {
		w->failed = w->n;
		sfs_store_close(s);
		return NULL;
	}
	for (i = 0; i < w->n; i++) {
		struct sfs_file_spec sp = { .name = "c", .path = w->path };
		struct sfs_stage *st = NULL;

		/* half of the contents are the same in both threads */
		snprintf(text, sizeof(text), "%s %d",
			 i % 2 ? w->path : "common", i);
		if (sfs_stage_new(s, &st, NULL) ||
		    sfs_stage_write(st, text, strlen(text), NULL) ||
		    sfs_file_create(s, &a, &sp, st, NULL, NULL))
			w->failed++;
		sfs_stage_free(st);
	}
	sfs_store_close(s);
	return NULL;
}

static void test_two_handles(void)
{
	struct worker w[2];
	pthread_t th[2];
	struct sfs_dir_info di;
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 2; i++) {
		w[i].dir = f.dir;
		w[i].uid = f.ua;
		w[i].n = 40;
		w[i].failed = 0;
		snprintf(w[i].path, sizeof(w[i].path), "/t%d/", i);
		REQUIRE(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(w[0].failed == 0 && w[1].failed == 0);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 80);
	CHECK(tenant(&f).used_files == 80);
	/* 20 common contents shared by both, 20 + 20 of their own */
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob") == 60);
	CHECK(tfx_sql_int(f.s, "SELECT sum(refs) FROM blob") == 80);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/", &di, NULL), SFS_OK);
	CHECK(di.nfiles == 80);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/t0/", &di, NULL), SFS_OK);
	CHECK(di.nfiles == 40);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/t1/", &di, NULL), SFS_OK);
	CHECK(di.nfiles == 40);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

struct contender {
	const char *dir;
	const char *uid;
	const char *id;
	int role;
	int unexpected;
};

/* Role 0 writes new versions; role 1 deletes and restores. */
static void *contender_main(void *arg)
{
	struct contender *c = arg;
	struct sfs_store *s = NULL;
	struct sfs_actor a;
	char text[32];
	int i;

	if (sfs_store_open(c->dir, NULL, &s, NULL) ||
	    sfs_auth_user(s, c->uid, SFS_SCOPE_ALL, &a, NULL)) {
		c->unexpected++;
		sfs_store_close(s);
		return NULL;
	}
	for (i = 0; i < 40; i++) {
		enum sfs_status r1, r2;

		if (c->role == 0) {
			struct sfs_stage *st = NULL;

			snprintf(text, sizeof(text), "version %d", i % 3);
			if (sfs_stage_new(s, &st, NULL) ||
			    sfs_stage_write(st, text, strlen(text), NULL)) {
				c->unexpected++;
				sfs_stage_free(st);
				continue;
			}
			r1 = sfs_file_set_content(s, &a, c->id, st, i % 4 == 0,
						  NULL, NULL);
			sfs_stage_free(st);
			if (r1 != SFS_OK && r1 != SFS_CONFLICT)
				c->unexpected++;
		} else {
			r1 = sfs_file_delete(s, &a, c->id, 0, NULL);
			r2 = sfs_file_restore(s, &a, c->id, NULL, NULL);
			if (r1 != SFS_OK || r2 != SFS_OK)
				c->unexpected++;
		}
	}
	sfs_store_close(s);
	return NULL;
}

/* New versions against deletes and restores from another handle. */
static void test_contention(void)
{
	struct contender c[2];
	pthread_t th[2];
	char id[SFS_ID_SIZE];
	struct sfs_file g;
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, &f.a, "contended", "/c/", "start", id, NULL), SFS_OK);
	REQUIRE_ST(mk(&f, &f.a, "bystander", "/", "version 1", NULL, NULL),
		   SFS_OK);
	for (i = 0; i < 2; i++) {
		c[i].dir = f.dir;
		c[i].uid = f.ua;
		c[i].id = id;
		c[i].role = i;
		c[i].unexpected = 0;
		REQUIRE(pthread_create(&th[i], NULL, contender_main, &c[i]) ==
			0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(c[0].unexpected == 0 && c[1].unexpected == 0);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	CHECK(!g.deleted);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, g.sha256) >= 1);
	sfs_file_release(&g);
	CHECK(tenant(&f).used_files == 2);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob") <= 3);
	CHECK(tenant(&f).used_bytes ==
	      tfx_sql_int(f.s, "SELECT sum(size) FROM blob"));
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	{
		struct sfs_dir_info di;

		REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/c/", &di, NULL), SFS_OK);
		CHECK(di.nfiles == 1);
		REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/", &di, NULL), SFS_OK);
		CHECK(di.nfiles == 2);
	}
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	if (th_blob_setup()) /* SFS_BLOB_BACKEND */
		return 1;
	RUN(test_create_get);
	RUN(test_create_import);
	RUN(test_import_filename_from_uri);
	RUN(test_import_cancelled_by_delete);
	RUN(test_validation);
	RUN(test_create_many);
	RUN(test_lazy_create);
	RUN(test_client_id);
	RUN(test_create_tells_its_directory);
	RUN(test_stage_prepare);
	RUN(test_permissions);
	RUN(test_update);
	RUN(test_delete_purge_restore);
	RUN(test_suffix_on_arrival);
	RUN(test_rename_replace);
	RUN(test_discard);
	RUN(test_set_content);
	RUN(test_stale_job_result);
	RUN(test_listening_rules);
	RUN(test_listening_purge);
	RUN(test_janitor);
	RUN(test_janitor_many);
	RUN(test_quota);
	RUN(test_two_handles);
	RUN(test_contention);
	return th_report();
}
