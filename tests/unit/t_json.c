/*
 * Unit tests of the JSON of the API's objects: every field name, type and
 * nullability of files, listening audio, shares and lists, built from
 * hand-made structs; and ISO 8601 formatting and parsing.
 */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "speechfs/json.h"
#include "testhelp.h"

#define T_2026 1772029800000LL /* 2026-02-25T14:30:00Z */

static const char *const file_keys[] = {
	"id", "name", "filename", "description", "path", "size",
	"durationSeconds", "sha256", "ingestionStatus", "listeningAudio",
	"isDeleted", "isPurged", "isContentDiscarded", "creationDate",
	"deletedAt", "purgedAt", "purgeAt", "contentDiscardedAt", "metadata",
	"tags", "publishMode", "publishedAt",
	/* extensions */
	"mimeType", "ingestionError", "modifiedAtNs", "accessedAtNs",
	"changedAtNs", "entrySuffix", "sourceUri", NULL
};

static const char *const la_keys[] = { "status",   "size",     "createdAt",
				       "deleted",  "isPurged", "deletedAt",
				       "purgedAt", "purgeAt",  "error",
				       "sha256",   NULL };

static const char *const share_keys[] = {
	"id", "fileId", "userId", "permission", "createdBy", "createdAt", NULL
};

/* Does obj have exactly the keys of `keys` plus those of `extra`? */
static int has_exact_keys(json_t *obj, const char *const *keys,
			  const char *const *extra)
{
	size_t n = 0, i;

	if (!json_is_object(obj))
		return 0;
	for (i = 0; keys[i]; i++, n++)
		if (!json_object_get(obj, keys[i])) {
			fprintf(stderr, "missing key %s\n", keys[i]);
			return 0;
		}
	for (i = 0; extra && extra[i]; i++, n++)
		if (!json_object_get(obj, extra[i])) {
			fprintf(stderr, "missing key %s\n", extra[i]);
			return 0;
		}
	if (json_object_size(obj) != n) {
		fprintf(stderr, "%zu keys, want %zu\n", json_object_size(obj),
			n);
		return 0;
	}
	return 1;
}

static int is_null(json_t *o, const char *k)
{
	return json_is_null(json_object_get(o, k));
}

static int str_is(json_t *o, const char *k, const char *want)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) && !strcmp(json_string_value(v), want);
}

static int bool_is(json_t *o, const char *k, int want)
{
	json_t *v = json_object_get(o, k);

	return json_is_boolean(v) && json_is_true(v) == !!want;
}

static int int_is(json_t *o, const char *k, json_int_t want)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) == want;
}

static void minimal_file(struct sfs_file *f)
{
	sfs_file_init(f);
	snprintf(f->id, sizeof(f->id), "%s",
		 "a1b2c3d4-e5f6-7890-abcd-ef1234567890");
	f->name = strdup("meeting-recording");
	f->path = strdup("/");
	f->created_at = T_2026;
}

static void test_file_minimal(void)
{
	struct sfs_file f;
	json_t *j;

	minimal_file(&f);
	j = sfs_json_file(&f);
	REQUIRE(j);
	CHECK(has_exact_keys(j, file_keys, NULL));
	CHECK(str_is(j, "id", "a1b2c3d4-e5f6-7890-abcd-ef1234567890"));
	CHECK(str_is(j, "name", "meeting-recording"));
	CHECK(str_is(j, "path", "/"));
	CHECK(str_is(j, "creationDate", "2026-02-25T14:30:00.000Z"));
	CHECK(is_null(j, "filename"));
	CHECK(is_null(j, "description"));
	CHECK(is_null(j, "size"));
	CHECK(is_null(j, "durationSeconds"));
	CHECK(is_null(j, "sha256"));
	CHECK(is_null(j, "mimeType"));
	CHECK(is_null(j, "ingestionStatus"));
	CHECK(is_null(j, "ingestionError"));
	CHECK(is_null(j, "listeningAudio"));
	CHECK(bool_is(j, "isDeleted", 0));
	CHECK(bool_is(j, "isPurged", 0));
	CHECK(bool_is(j, "isContentDiscarded", 0));
	CHECK(is_null(j, "deletedAt"));
	CHECK(is_null(j, "purgedAt"));
	CHECK(is_null(j, "purgeAt"));
	CHECK(is_null(j, "contentDiscardedAt"));
	CHECK(is_null(j, "metadata"));
	CHECK(json_is_array(json_object_get(j, "tags")));
	CHECK(json_array_size(json_object_get(j, "tags")) == 0);
	CHECK(str_is(j, "publishMode", "PRIVATE"));
	CHECK(is_null(j, "publishedAt"));
	json_decref(j);
	sfs_file_release(&f);
}

static void test_file_full(void)
{
	struct sfs_file f;
	json_t *j, *la, *md, *tags;

	minimal_file(&f);
	f.filename = strdup("meeting-2026-02-25.wav");
	f.description = strdup("weekly sync");
	free(f.path);
	f.path = strdup("/archived/2026/");
	f.mime = strdup("audio/wav");
	f.size = 1234567;
	f.duration = 61.5;
	memset(f.sha256, 'a', 64);
	f.sha256[64] = '\0';
	f.ingestion = SFS_JS_FAILED;
	f.ingest_error = strdup("HTTP 404");
	f.deleted = 1;
	f.purged = 1;
	f.discarded = 1;
	f.deleted_at = T_2026 + 1000;
	f.purged_at = T_2026 + 2000;
	f.purge_at = T_2026 + 3000;
	f.discarded_at = T_2026 + 4000;
	f.metadata = strdup("{\"speaker\":\"Ann\",\"n\":3,\"x\":{\"y\":[1]}}");
	f.tags = calloc(4, sizeof(*f.tags));
	REQUIRE(f.tags);
	f.tags[0] = strdup("gamma");
	f.tags[1] = strdup("alpha");
	f.tags[2] = strdup("Beta");
	f.ntags = 3;
	f.publish = SFS_PUBLISH_INTERNAL;
	f.published_at = T_2026 + 5;
	f.la.status = SFS_JS_COMPLETED;
	f.la.size = 4096;
	f.la.created_at = T_2026 + 6;

	j = sfs_json_file(&f);
	REQUIRE(j);
	CHECK(has_exact_keys(j, file_keys, NULL));
	CHECK(str_is(j, "filename", "meeting-2026-02-25.wav"));
	CHECK(str_is(j, "description", "weekly sync"));
	CHECK(str_is(j, "path", "/archived/2026/"));
	CHECK(str_is(j, "mimeType", "audio/wav"));
	CHECK(int_is(j, "size", 1234567));
	CHECK(json_is_real(json_object_get(j, "durationSeconds")));
	CHECK(json_real_value(json_object_get(j, "durationSeconds")) == 61.5);
	CHECK(str_is(j, "sha256", f.sha256));
	CHECK(str_is(j, "ingestionStatus", "FAILED"));
	CHECK(str_is(j, "ingestionError", "HTTP 404"));
	CHECK(bool_is(j, "isDeleted", 1));
	CHECK(bool_is(j, "isPurged", 1));
	CHECK(bool_is(j, "isContentDiscarded", 1));
	CHECK(str_is(j, "deletedAt", "2026-02-25T14:30:01.000Z"));
	CHECK(str_is(j, "purgedAt", "2026-02-25T14:30:02.000Z"));
	CHECK(str_is(j, "purgeAt", "2026-02-25T14:30:03.000Z"));
	CHECK(str_is(j, "contentDiscardedAt", "2026-02-25T14:30:04.000Z"));
	CHECK(str_is(j, "publishMode", "INTERNAL"));
	CHECK(str_is(j, "publishedAt", "2026-02-25T14:30:00.005Z"));

	md = json_object_get(j, "metadata");
	CHECK(json_is_object(md));
	CHECK(str_is(md, "speaker", "Ann"));
	CHECK(int_is(md, "n", 3));
	CHECK(json_is_array(json_object_get(json_object_get(md, "x"), "y")));

	tags = json_object_get(j, "tags");
	REQUIRE(json_is_array(tags) && json_array_size(tags) == 3);
	CHECK(!strcmp(json_string_value(json_array_get(tags, 0)), "alpha"));
	CHECK(!strcmp(json_string_value(json_array_get(tags, 1)), "Beta"));
	CHECK(!strcmp(json_string_value(json_array_get(tags, 2)), "gamma"));
	/* the struct's order is left alone */
	CHECK(!strcmp(f.tags[0], "gamma"));

	la = json_object_get(j, "listeningAudio");
	CHECK(has_exact_keys(la, la_keys, NULL));
	CHECK(str_is(la, "status", "COMPLETED"));
	CHECK(int_is(la, "size", 4096));
	CHECK(str_is(la, "createdAt", "2026-02-25T14:30:00.006Z"));
	CHECK(bool_is(la, "deleted", 0));
	CHECK(bool_is(la, "isPurged", 0));
	CHECK(is_null(la, "deletedAt"));
	CHECK(is_null(la, "purgedAt"));
	CHECK(is_null(la, "purgeAt"));
	CHECK(is_null(la, "error"));
	json_decref(j);
	sfs_file_release(&f);
}

static void test_file_zero_values(void)
{
	struct sfs_file f;
	json_t *j;

	/* 0 bytes and 0 seconds are values, not null */
	minimal_file(&f);
	f.size = 0;
	f.duration = 0.0;
	f.ingestion = SFS_JS_PENDING;
	j = sfs_json_file(&f);
	REQUIRE(j);
	CHECK(int_is(j, "size", 0));
	CHECK(json_is_real(json_object_get(j, "durationSeconds")));
	CHECK(str_is(j, "ingestionStatus", "PENDING"));
	json_decref(j);

	/* a negative duration is null */
	f.duration = -0.5;
	j = sfs_json_file(&f);
	REQUIRE(j);
	CHECK(is_null(j, "durationSeconds"));
	json_decref(j);
	sfs_file_release(&f);
}

static void test_metadata_bad(void)
{
	static const char *const bad[] = { "[1,2]", "\"s\"",	   "42", "null",
					   "{",	    "{\"a\":1} x", "",	 NULL };
	struct sfs_file f;
	json_t *j;
	int i;

	minimal_file(&f);
	for (i = 0; bad[i]; i++) {
		free(f.metadata);
		f.metadata = strdup(bad[i]);
		j = sfs_json_file(&f);
		REQUIRE(j);
		CHECK(is_null(j, "metadata"));
		json_decref(j);
	}
	free(f.metadata);
	f.metadata = strdup("{}");
	j = sfs_json_file(&f);
	REQUIRE(j);
	CHECK(json_is_object(json_object_get(j, "metadata")));
	CHECK(json_object_size(json_object_get(j, "metadata")) == 0);
	json_decref(j);
	sfs_file_release(&f);
}

static void test_invalid_utf8_name(void)
{
	struct sfs_file f;
	json_t *j;
	const char *s;

	minimal_file(&f);
	free(f.name);
	f.name = strdup("ab\xff"
			"c\xc3\xa9");
	j = sfs_json_file(&f);
	REQUIRE(j);
	s = json_string_value(json_object_get(j, "name"));
	REQUIRE(s);
	CHECK(!strcmp(s, "ab\xef\xbf\xbd"
			 "c\xc3\xa9"));
	json_decref(j);

	/* a cut sequence at the end, and a surrogate */
	f.description = strdup("x\xe2\x82");
	f.filename = strdup("\xed\xa0\x80.wav");
	j = sfs_json_file(&f);
	REQUIRE(j);
	CHECK(str_is(j, "description", "x\xef\xbf\xbd\xef\xbf\xbd"));
	CHECK(str_is(j, "filename",
		     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd.wav"));
	json_decref(j);
	sfs_file_release(&f);
}

static void test_listening(void)
{
	struct sfs_listening la;
	json_t *j;

	memset(&la, 0, sizeof(la));
	la.size = -1;
	j = sfs_json_listening(&la);
	CHECK(json_is_null(j));
	json_decref(j);

	la.status = SFS_JS_FAILED;
	la.error = "decoder error";
	la.deleted = 1;
	la.purged = 1;
	la.deleted_at = 1000;
	la.purged_at = 2000;
	la.purge_at = 3000;
	j = sfs_json_listening(&la);
	REQUIRE(j);
	CHECK(has_exact_keys(j, la_keys, NULL));
	CHECK(str_is(j, "status", "FAILED"));
	CHECK(is_null(j, "size"));
	CHECK(is_null(j, "createdAt"));
	CHECK(bool_is(j, "deleted", 1));
	CHECK(bool_is(j, "isPurged", 1));
	CHECK(str_is(j, "deletedAt", "1970-01-01T00:00:01.000Z"));
	CHECK(str_is(j, "purgedAt", "1970-01-01T00:00:02.000Z"));
	CHECK(str_is(j, "purgeAt", "1970-01-01T00:00:03.000Z"));
	CHECK(str_is(j, "error", "decoder error"));
	json_decref(j);

	la.status = SFS_JS_PROCESSING;
	la.error = NULL;
	j = sfs_json_listening(&la);
	REQUIRE(j);
	CHECK(str_is(j, "status", "PROCESSING"));
	CHECK(is_null(j, "error"));
	json_decref(j);
}

static const char *const shared_extra[] = { "accessType", "permission",
					    "sharedBy",	  "sharedAt",
					    "ownerId",	  "ownerOrder",
					    NULL };

static void test_shared_file(void)
{
	struct sfs_file f;
	json_t *j;

	minimal_file(&f);
	f.access = SFS_ACCESS_DIRECT_SHARE;
	f.perm = SFS_PERM_EDIT;
	snprintf(f.shared_by, sizeof(f.shared_by), "%s",
		 "11111111-2222-3333-4444-555555555555");
	f.shared_at = T_2026;
	j = sfs_json_shared_file(&f);
	REQUIRE(j);
	CHECK(has_exact_keys(j, file_keys, shared_extra));
	CHECK(str_is(j, "accessType", "DIRECT_SHARE"));
	CHECK(str_is(j, "permission", "EDIT"));
	CHECK(str_is(j, "sharedBy", "11111111-2222-3333-4444-555555555555"));
	CHECK(str_is(j, "sharedAt", "2026-02-25T14:30:00.000Z"));
	CHECK(str_is(j, "name", "meeting-recording"));
	json_decref(j);

	f.access = SFS_ACCESS_INTERNAL;
	f.perm = SFS_PERM_VIEW;
	j = sfs_json_shared_file(&f);
	REQUIRE(j);
	CHECK(has_exact_keys(j, file_keys, shared_extra));
	CHECK(str_is(j, "accessType", "INTERNAL"));
	CHECK(is_null(j, "permission"));
	CHECK(is_null(j, "sharedBy"));
	CHECK(is_null(j, "sharedAt"));
	json_decref(j);

	/* the plain file JSON has none of the sharing fields */
	j = sfs_json_file(&f);
	REQUIRE(j);
	CHECK(!json_object_get(j, "accessType"));
	json_decref(j);
	sfs_file_release(&f);
}

static void test_share(void)
{
	struct sfs_share sh;
	json_t *j;

	memset(&sh, 0, sizeof(sh));
	snprintf(sh.id, sizeof(sh.id), "s-1");
	snprintf(sh.file_id, sizeof(sh.file_id), "f-1");
	snprintf(sh.user_id, sizeof(sh.user_id), "u-2");
	snprintf(sh.created_by, sizeof(sh.created_by), "u-1");
	sh.perm = SFS_PERM_VIEW;
	sh.created_at = T_2026;
	j = sfs_json_share(&sh);
	REQUIRE(j);
	CHECK(has_exact_keys(j, share_keys, NULL));
	CHECK(str_is(j, "id", "s-1"));
	CHECK(str_is(j, "fileId", "f-1"));
	CHECK(str_is(j, "userId", "u-2"));
	CHECK(str_is(j, "createdBy", "u-1"));
	CHECK(str_is(j, "permission", "VIEW"));
	CHECK(str_is(j, "createdAt", "2026-02-25T14:30:00.000Z"));
	json_decref(j);
}

/* The defaults of the API's list parameters, as query.h documents them. */
static void query_defaults(struct sfs_query *q)
{
	memset(q, 0, sizeof(*q));
	q->size = SFS_PAGE_SIZE_DEFAULT;
	q->deleted = 0;
	q->discarded = -1;
	q->purged = -1;
	q->created_after = INT64_MIN;
	q->created_before = INT64_MAX;
	q->la_deleted = -1;
	q->la_discarded = -1;
	q->path = "/";
	q->sort = SFS_SORT_CREATED;
	q->desc = 1;
	q->publish = -1;
	q->access = -1;
}

static void make_list(struct sfs_file_list *l, struct sfs_file *files,
		      char **dirs)
{
	memset(l, 0, sizeof(*l));
	minimal_file(&files[0]);
	minimal_file(&files[1]);
	free(files[1].name);
	files[1].name = strdup("second");
	files[1].access = SFS_ACCESS_INTERNAL;
	l->files = files;
	l->n = 2;
	l->total = 57;
	dirs[0] = "archived";
	dirs[1] = "b";
	l->dirs = dirs;
	l->ndirs = 2;
	l->has_dirs = 1;
}

static void test_list(void)
{
	struct sfs_file files[2];
	struct sfs_file_list l;
	struct sfs_query q;
	char *dirs[2];
	json_t *j, *a, *flt, *srt;

	make_list(&l, files, dirs);
	query_defaults(&q);
	j = sfs_json_file_list(&l, &q, 0);
	REQUIRE(j);
	/* the seed's six and nextCursor (an extension: no rows follow) */
	CHECK(json_object_size(j) == 7);
	CHECK(json_is_null(json_object_get(j, "nextCursor")));
	a = json_object_get(j, "files");
	REQUIRE(json_is_array(a) && json_array_size(a) == 2);
	CHECK(has_exact_keys(json_array_get(a, 0), file_keys, NULL));
	CHECK(str_is(json_array_get(a, 1), "name", "second"));
	a = json_object_get(j, "directories");
	REQUIRE(json_is_array(a) && json_array_size(a) == 2);
	CHECK(!strcmp(json_string_value(json_array_get(a, 0)), "archived"));
	CHECK(int_is(j, "size", 2));
	CHECK(int_is(j, "total", 57));
	flt = json_object_get(j, "filters");
	REQUIRE(json_is_object(flt));
	CHECK(str_is(flt, "path", "/"));
	CHECK(bool_is(flt, "recursive", 0));
	CHECK(bool_is(flt, "isDeleted", 0));
	CHECK(json_object_size(flt) == 3);
	srt = json_object_get(j, "sort");
	CHECK(str_is(srt, "field", "creationDate"));
	CHECK(str_is(srt, "direction", "desc"));
	CHECK(json_object_size(srt) == 2);
	json_decref(j);

	/* recursive: no directories */
	q.recursive = 1;
	j = sfs_json_file_list(&l, &q, 0);
	REQUIRE(j);
	CHECK(!json_object_get(j, "directories"));
	CHECK(bool_is(json_object_get(j, "filters"), "recursive", 1));
	json_decref(j);

	/* no directory listing made: no directories */
	q.recursive = 0;
	l.has_dirs = 0;
	j = sfs_json_file_list(&l, &q, 0);
	REQUIRE(j);
	CHECK(!json_object_get(j, "directories"));
	json_decref(j);

	/* an empty directory list is [] when it was made */
	l.has_dirs = 1;
	l.ndirs = 0;
	j = sfs_json_file_list(&l, &q, 0);
	REQUIRE(j);
	a = json_object_get(j, "directories");
	CHECK(json_is_array(a) && json_array_size(a) == 0);
	json_decref(j);

	sfs_file_release(&files[0]);
	sfs_file_release(&files[1]);
}

static void test_list_filters(void)
{
	struct sfs_file files[2];
	struct sfs_file_list l;
	struct sfs_query q;
	char *dirs[2];
	char *tags[] = { "b", "A" };
	json_t *j, *flt, *a, *srt;

	make_list(&l, files, dirs);
	query_defaults(&q);
	q.path = "/x/";
	q.deleted = 1;
	q.discarded = 0;
	q.purged = 0;
	q.ingestion = 1u << SFS_JS_PENDING | 1u << SFS_JS_FAILED;
	q.name = "meet";
	q.filename = "wav";
	memset(q.sha256, 'f', 64);
	q.created_after = T_2026;
	q.created_before = T_2026 + 1;
	q.la_status = 1u << SFS_JS_COMPLETED;
	q.la_deleted = 0;
	q.la_discarded = 1;
	q.tags = tags;
	q.ntags = 2;
	q.tags_any = 1;
	q.publish = SFS_PUBLISH_INTERNAL;
	q.sort = SFS_SORT_NAME;
	q.desc = 0;
	j = sfs_json_file_list(&l, &q, 0);
	REQUIRE(j);
	flt = json_object_get(j, "filters");
	REQUIRE(json_is_object(flt));
	CHECK(str_is(flt, "path", "/x/"));
	CHECK(bool_is(flt, "isDeleted", 1));
	CHECK(bool_is(flt, "isContentDiscarded", 0));
	CHECK(bool_is(flt, "isPurged", 0));
	a = json_object_get(flt, "ingestionStatus");
	REQUIRE(json_is_array(a) && json_array_size(a) == 2);
	CHECK(!strcmp(json_string_value(json_array_get(a, 0)), "PENDING"));
	CHECK(!strcmp(json_string_value(json_array_get(a, 1)), "FAILED"));
	CHECK(str_is(flt, "name", "meet"));
	CHECK(str_is(flt, "filename", "wav"));
	CHECK(str_is(flt, "sha256", q.sha256));
	CHECK(str_is(flt, "createdAfter", "2026-02-25T14:30:00.000Z"));
	CHECK(str_is(flt, "createdBefore", "2026-02-25T14:30:00.001Z"));
	a = json_object_get(flt, "listeningAudio.status");
	REQUIRE(json_is_array(a) && json_array_size(a) == 1);
	CHECK(!strcmp(json_string_value(json_array_get(a, 0)), "COMPLETED"));
	CHECK(bool_is(flt, "listeningAudio.deleted", 0));
	CHECK(bool_is(flt, "listeningAudio.contentDiscarded", 1));
	a = json_object_get(flt, "tags");
	REQUIRE(json_is_array(a) && json_array_size(a) == 2);
	CHECK(!strcmp(json_string_value(json_array_get(a, 0)), "A"));
	CHECK(str_is(flt, "tagsMatch", "any"));
	CHECK(str_is(flt, "publishMode", "INTERNAL"));
	CHECK(json_object_size(flt) == 17);
	srt = json_object_get(j, "sort");
	CHECK(str_is(srt, "field", "name"));
	CHECK(str_is(srt, "direction", "asc"));
	json_decref(j);

	q.deleted = -1;
	q.tags_any = 0;
	q.sort = SFS_SORT_SIZE;
	j = sfs_json_file_list(&l, &q, 0);
	REQUIRE(j);
	flt = json_object_get(j, "filters");
	CHECK(!json_object_get(flt, "isDeleted"));
	CHECK(str_is(flt, "tagsMatch", "all"));
	CHECK(str_is(json_object_get(j, "sort"), "field", "size"));
	json_decref(j);

	sfs_file_release(&files[0]);
	sfs_file_release(&files[1]);
}

static void test_list_shared(void)
{
	struct sfs_file files[2];
	struct sfs_file_list l;
	struct sfs_query q;
	char *dirs[2];
	json_t *j, *a, *flt;

	make_list(&l, files, dirs);
	files[0].access = SFS_ACCESS_DIRECT_SHARE;
	files[0].perm = SFS_PERM_VIEW;
	files[0].shared_at = T_2026;
	query_defaults(&q);
	j = sfs_json_file_list(&l, &q, 1);
	REQUIRE(j);
	CHECK(!json_object_get(j, "directories"));
	CHECK(json_object_size(j) == 5);
	a = json_object_get(j, "files");
	REQUIRE(json_array_size(a) == 2);
	CHECK(has_exact_keys(json_array_get(a, 0), file_keys, shared_extra));
	CHECK(str_is(json_array_get(a, 0), "permission", "VIEW"));
	CHECK(str_is(json_array_get(a, 1), "accessType", "INTERNAL"));
	CHECK(is_null(json_array_get(a, 1), "permission"));
	flt = json_object_get(j, "filters");
	CHECK(json_is_object(flt) && json_object_size(flt) == 0);
	json_decref(j);

	q.access = SFS_ACCESS_DIRECT_SHARE;
	q.name = "rec";
	q.filename = "int";
	q.tags = NULL;
	q.path = "/ignored/";
	j = sfs_json_file_list(&l, &q, 1);
	REQUIRE(j);
	flt = json_object_get(j, "filters");
	CHECK(json_object_size(flt) == 3);
	CHECK(str_is(flt, "accessType", "DIRECT_SHARE"));
	CHECK(str_is(flt, "name", "rec"));
	CHECK(str_is(flt, "filename", "int"));
	json_decref(j);

	sfs_file_release(&files[0]);
	sfs_file_release(&files[1]);
}

static void test_iso8601_format(void)
{
	char b[32];

	sfs_iso8601(0, b);
	CHECK(!strcmp(b, ""));
	sfs_iso8601(1, b);
	CHECK(!strcmp(b, "1970-01-01T00:00:00.001Z"));
	sfs_iso8601(T_2026, b);
	CHECK(!strcmp(b, "2026-02-25T14:30:00.000Z"));
	sfs_iso8601(T_2026 + 123, b);
	CHECK(!strcmp(b, "2026-02-25T14:30:00.123Z"));
	sfs_iso8601(1709251199999LL, b);
	CHECK(!strcmp(b, "2024-02-29T23:59:59.999Z"));
	sfs_iso8601(-1, b);
	CHECK(!strcmp(b, "1969-12-31T23:59:59.999Z"));
	sfs_iso8601(946684800000LL, b);
	CHECK(!strcmp(b, "2000-01-01T00:00:00.000Z"));
}

static int parses_to(const char *s, int64_t want)
{
	int64_t ms = -12345;

	if (sfs_iso8601_parse(s, &ms) != 0) {
		fprintf(stderr, "'%s' rejected\n", s);
		return 0;
	}
	if (ms != want)
		fprintf(stderr, "'%s' -> %lld, want %lld\n", s, (long long)ms,
			(long long)want);
	return ms == want;
}

static int rejected(const char *s)
{
	int64_t ms = 0;

	return sfs_iso8601_parse(s, &ms) != 0;
}

static void test_iso8601_parse(void)
{
	CHECK(parses_to("2026-02-25T14:30:00Z", T_2026));
	CHECK(parses_to("2026-02-25T14:30:00.000Z", T_2026));
	CHECK(parses_to("2026-02-25T14:30:00.5Z", T_2026 + 500));
	CHECK(parses_to("2026-02-25T14:30:00.12Z", T_2026 + 120));
	CHECK(parses_to("2026-02-25T14:30:00.123456789Z", T_2026 + 123));
	CHECK(parses_to("2026-02-25T16:30:00+02:00", T_2026));
	CHECK(parses_to("2026-02-25T09:00:00-05:30", T_2026));
	CHECK(parses_to("2026-02-25T14:30:00.250+00:00", T_2026 + 250));
	CHECK(parses_to("2026-02-25", T_2026 - (14 * 3600 + 30 * 60) * 1000LL));
	CHECK(parses_to("2024-02-29T23:59:59Z", 1709251199000LL));
	CHECK(parses_to("2000-01-01", 946684800000LL));
	CHECK(parses_to("1970-01-01T00:00:00Z", 0));

	CHECK(rejected(""));
	CHECK(rejected("2026"));
	CHECK(rejected("2026-02"));
	CHECK(rejected("2026-2-25"));
	CHECK(rejected("2026-02-25T14:30:00")); /* no zone */
	CHECK(rejected("2026-02-25T14:30Z"));
	CHECK(rejected("2026-02-25T14:30:00ZZ"));
	CHECK(rejected("2026-02-25T14:30:00Z "));
	CHECK(rejected(" 2026-02-25T14:30:00Z"));
	CHECK(rejected("2026-02-25x"));
	CHECK(rejected("2026-02-25 14:30:00Z"));
	CHECK(rejected("2026-13-01"));
	CHECK(rejected("2026-00-01"));
	CHECK(rejected("2026-02-30"));
	CHECK(rejected("2026-02-29")); /* not a leap year */
	CHECK(rejected("2026-04-31"));
	CHECK(rejected("2026-02-00"));
	CHECK(rejected("2026-02-25T24:00:00Z"));
	CHECK(rejected("2026-02-25T14:60:00Z"));
	CHECK(rejected("2026-02-25T14:30:60Z"));
	CHECK(rejected("2026-02-25T14:30:00.Z"));
	CHECK(rejected("2026-02-25T14:30:00+0200"));
	CHECK(rejected("2026-02-25T14:30:00+02"));
	CHECK(rejected("2026-02-25T14:30:00+24:00"));
	CHECK(rejected("2026-02-25T14:30:00+02:60"));
	CHECK(rejected("yesterday"));
	CHECK(rejected("1772029800000"));
	CHECK(sfs_iso8601_parse(NULL, NULL) != 0);
}

static void test_iso8601_roundtrip(void)
{
	static const int64_t vals[] = {
		1,
		999,
		1000,
		86399999,
		T_2026,
		T_2026 + 1,
		1709251199999LL,
		4102444800000LL,
		253402300799999LL /* 9999-12-31 */
	};
	char b[32];
	int64_t ms;
	size_t i;
	uint64_t x = 88172645463325252ULL;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		sfs_iso8601(vals[i], b);
		CHECK(parses_to(b, vals[i]));
	}
	for (i = 0; i < 500; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		ms = (int64_t)(x % 4102444800000ULL) + 1;
		sfs_iso8601(ms, b);
		CHECK(strlen(b) == 24 && b[23] == 'Z');
		if (!parses_to(b, ms)) {
			CHECK(0);
			break;
		}
	}
}

/* Does the text encoder give json_dumps(j, JSON_COMPACT) byte for byte? */
static int text_is_dump(json_t *j, const struct sfs_buf *text)
{
	char *want = json_dumps(j, JSON_COMPACT);
	int same = want && !strcmp(want, text->buf);

	if (!same)
		fprintf(stderr, "text: %s\nwant: %s\n", text->buf,
			want ? want : "(null)");
	free(want);
	json_decref(j);
	return same;
}

static int file_text_ok(const struct sfs_file *f)
{
	struct sfs_buf b = SFS_BUF_INIT(0);
	int ok;

	ok = sfs_json_file_text(f, &b) == SFS_OK &&
	     text_is_dump(sfs_json_file(f), &b);
	sfs_buf_release(&b);
	return ok;
}

static void test_text_file(void)
{
	struct sfs_file f;
	int i, j;

	minimal_file(&f);
	CHECK(file_text_ok(&f));
	/* the plain scan reads four bytes a step: a special byte or the
	 * end at each place of the step */
	for (i = 0; i < 10; i++) {
		for (j = 0; j <= i; j++) {
			char s[16] = "abcdefghij";

			s[i] = '\0';
			if (j < i)
				s[j] = "\"\\\x01\xc3"[j % 4];
			free(f.name);
			f.name = strdup(s);
			CHECK(file_text_ok(&f));
		}
	}
	/* every escape jansson makes, and the ones it does not (/ DEL) */
	free(f.name);
	f.name = strdup("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f end");
	f.filename = strdup("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa4.wav");
	f.description = strdup("bad \xff utf-8 \xed\xa0\x80 and \"q\"");
	f.mime = strdup("");
	f.size = 0;
	f.duration = 61.5;
	CHECK(file_text_ok(&f));
	f.duration = 1e21;
	f.size = INT64_MAX;
	CHECK(file_text_ok(&f));
	f.duration = 0.1;
	CHECK(file_text_ok(&f));
	f.duration = 3.0;
	f.metadata = strdup("{ \"speaker\" : \"Ann\\u00e9\", \"n\": [1, 2.5,"
			    " null, {\"k\": \"</x>\"}] }");
	f.tags = calloc(4, sizeof(*f.tags));
	REQUIRE(f.tags);
	f.tags[0] = strdup("zeta");
	f.tags[1] = strdup("Alpha\t1");
	f.tags[2] = strdup("\xc3\xa9t\xc3\xa9");
	f.ntags = 3;
	f.ingestion = SFS_JS_COMPLETED;
	f.ingest_error = strdup("none\n");
	f.publish = SFS_PUBLISH_INTERNAL;
	f.published_at = T_2026 + 5;
	f.deleted = f.purged = f.discarded = 1;
	f.deleted_at = 1;
	f.purged_at = -1;
	f.purge_at = T_2026 * 2;
	f.discarded_at = 253402300799999LL; /* 9999-12-31T23:59:59.999Z */
	f.la.status = SFS_JS_FAILED;
	f.la.size = 77;
	f.la.created_at = T_2026;
	f.la.deleted = 1;
	f.la.error = strdup("lame said \"no\"");
	CHECK(file_text_ok(&f));
	/* metadata that is not an object is null in both */
	free(f.metadata);
	f.metadata = strdup("[1]");
	CHECK(file_text_ok(&f));
	free(f.metadata);
	f.metadata = strdup("{broken");
	CHECK(file_text_ok(&f));
	sfs_file_release(&f);
}

static void test_text_list(void)
{
	struct sfs_file files[2];
	struct sfs_file_list l;
	struct sfs_query q;
	struct sfs_buf b = SFS_BUF_INIT(0);
	char *dirs[2];
	char *tags[] = { "b", "A\"" };
	int shared;

	make_list(&l, files, dirs);
	dirs[1] = "d\xc3\xa9j\xc3\xa0 \"vu\"";
	files[1].access = SFS_ACCESS_DIRECT_SHARE;
	files[1].perm = SFS_PERM_EDIT;
	snprintf(files[1].shared_by, sizeof(files[1].shared_by), "%s",
		 "b1b2c3d4-e5f6-7890-abcd-ef1234567890");
	files[1].shared_at = T_2026 + 9;
	query_defaults(&q);
	for (shared = 0; shared < 2; shared++) {
		sfs_buf_reset(&b);
		CHECK_ST(sfs_json_file_list_text(&l, &q, shared, &b), SFS_OK);
		CHECK(text_is_dump(sfs_json_file_list(&l, &q, shared), &b));
	}
	/* every filter, and no query at all */
	q.path = "/x/";
	q.recursive = 1;
	q.deleted = 1;
	q.discarded = 0;
	q.ingestion = 1u << SFS_JS_PENDING | 1u << SFS_JS_FAILED;
	q.name = "me\"et";
	q.filename = "w\xc3\xa9v";
	memset(q.sha256, 'f', 64);
	q.created_after = T_2026;
	q.created_before = T_2026 + 1;
	q.la_status = 1u << SFS_JS_COMPLETED;
	q.la_deleted = 0;
	q.la_discarded = 1;
	q.tags = tags;
	q.ntags = 2;
	q.tags_any = 1;
	q.publish = SFS_PUBLISH_INTERNAL;
	q.access = SFS_ACCESS_INTERNAL;
	q.sort = SFS_SORT_SIZE;
	q.desc = 0;
	for (shared = 0; shared < 2; shared++) {
		sfs_buf_reset(&b);
		CHECK_ST(sfs_json_file_list_text(&l, &q, shared, &b), SFS_OK);
		CHECK(text_is_dump(sfs_json_file_list(&l, &q, shared), &b));
		sfs_buf_reset(&b);
		CHECK_ST(sfs_json_file_list_text(&l, NULL, shared, &b), SFS_OK);
		CHECK(text_is_dump(sfs_json_file_list(&l, NULL, shared), &b));
	}
	/* an empty page */
	l.n = 0;
	l.ndirs = 0;
	sfs_buf_reset(&b);
	CHECK_ST(sfs_json_file_list_text(&l, NULL, 0, &b), SFS_OK);
	CHECK(text_is_dump(sfs_json_file_list(&l, NULL, 0), &b));
	sfs_buf_release(&b);
	sfs_file_release(&files[0]);
	sfs_file_release(&files[1]);
}

/* A buffer that may not grow enough: SFS_NOMEM, never a cut text as OK. */
static void test_text_limit(void)
{
	struct sfs_file f;
	struct sfs_buf b;
	size_t max;
	int fails = 0, oks = 0;

	minimal_file(&f);
	f.metadata = strdup("{\"a\":\"\xc3\xa9\"}");
	f.duration = 2.5;
	for (max = 1; max < 1200; max += 7) {
		sfs_buf_init(&b, max);
		if (sfs_json_file_text(&f, &b) == SFS_OK) {
			oks++;
			CHECK(file_text_ok(&f));
			CHECK(b.len <= max);
		} else {
			fails++;
		}
		sfs_buf_release(&b);
	}
	CHECK(fails > 0);
	CHECK(oks > 0);
	sfs_file_release(&f);
}

/* The arithmetic formatter against gmtime_r, over 1900..2200 and more. */
static void test_iso8601_vs_gmtime(void)
{
	int64_t ms, step = 86400000LL * 37 + 3723456;
	char got[32], want[64];
	struct tm tm;
	time_t t;
	int bad = 0;

	for (ms = -2208988800000LL; ms < 7258118400000LL; ms += step) {
		int64_t secs = ms / 1000, frac = ms % 1000;

		if (frac < 0) {
			frac += 1000;
			secs--;
		}
		t = (time_t)secs;
		REQUIRE(gmtime_r(&t, &tm));
		snprintf(want, sizeof(want),
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
		sfs_iso8601(ms, got);
		if (strcmp(got, want) && bad++ < 5)
			fprintf(stderr, "%lld: %s, want %s\n", (long long)ms,
				got, want);
	}
	CHECK(bad == 0);
	sfs_iso8601(-62135596800000LL, got); /* year 1 */
	CHECK(!strcmp(got, "0001-01-01T00:00:00.000Z"));
	sfs_iso8601(951782400000LL, got); /* leap day of a century */
	CHECK(!strcmp(got, "2000-02-29T00:00:00.000Z"));
	sfs_iso8601(4107542400000LL, got); /* 2100 is no leap year */
	CHECK(!strcmp(got, "2100-03-01T00:00:00.000Z"));
}

int main(void)
{
	RUN(test_file_minimal);
	RUN(test_file_full);
	RUN(test_file_zero_values);
	RUN(test_metadata_bad);
	RUN(test_invalid_utf8_name);
	RUN(test_listening);
	RUN(test_shared_file);
	RUN(test_share);
	RUN(test_list);
	RUN(test_list_filters);
	RUN(test_list_shared);
	RUN(test_iso8601_format);
	RUN(test_iso8601_parse);
	RUN(test_iso8601_roundtrip);
	RUN(test_text_file);
	RUN(test_text_list);
	RUN(test_text_limit);
	RUN(test_iso8601_vs_gmtime);
	return th_report();
}
