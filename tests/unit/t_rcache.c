/*
 * Tests of the remote store's cache of directories (core/remote_cache.c):
 * a listing put in is looked up by name (through its index when large,
 * case folded as strcasecmp compares) and by file number; a fill whose
 * directory changed after its ticket does not go in; this store's own
 * changes move files between listings; a listing no longer good is kept
 * as the last one got; the least recently used directories go first when
 * the bounds are passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "remote_i.h"
#include "speechfs/file.h"
#include "testhelp.h"

/* A file numbered ino named name in directory path. */
static void mkfile(struct sfs_file *f, int64_t ino, const char *name,
		   const char *path)
{
	sfs_file_init(f);
	f->ino = ino;
	snprintf(f->id, sizeof(f->id), "00000000-0000-4000-8000-%012lld",
		 (long long)ino);
	f->name = strdup(name);
	f->path = strdup(path);
	f->size = ino;
}

/* A listing of n files of path numbered from ino, named prefix%03d. */
static void mklist(struct sfs_file_list *l, size_t n, int64_t ino,
		   const char *prefix, const char *path)
{
	char name[64];
	size_t i;

	memset(l, 0, sizeof(*l));
	l->files = calloc(n ? n : 1, sizeof(*l->files));
	for (i = 0; l->files && i < n; i++) {
		snprintf(name, sizeof(name), "%s%03zu", prefix, i);
		mkfile(&l->files[i], ino + (int64_t)i, name, path);
	}
	l->n = n;
}

static void put(struct sfsi_rcache *c, const char *path, size_t n, int64_t ino,
		const char *prefix)
{
	struct sfs_file_list l;
	uint64_t t = sfsi_rcache_ticket(c, path);

	mklist(&l, n, ino, prefix, path);
	sfsi_rcache_put_files(c, path, t, &l);
	sfs_file_list_release(&l);
}

/*
 * How many files named name (all with NULL) in the listing of path as
 * kept and good (last: as last got; -1: none such is kept).
 */
static int count_of(struct sfsi_rcache *c, const char *path, const char *name,
		    int last)
{
	const char *names[1] = { name };
	struct sfs_file_list l;
	int n;

	if (!sfsi_rcache_files(c, path, names, 1, NULL, !name, last, &l))
		return -1;
	n = (int)l.n;
	sfs_file_list_release(&l);
	return n;
}

static int count(struct sfsi_rcache *c, const char *path, const char *name)
{
	return count_of(c, path, name, 0);
}

static int count_last(struct sfsi_rcache *c, const char *path, const char *name)
{
	return count_of(c, path, name, 1);
}

static struct sfsi_rcache *fresh_cache(void)
{
	struct sfsi_rcache *c = NULL;

	if (sfsi_rcache_new(&c, NULL))
		return NULL;
	sfsi_rcache_live(c, 1); /* a feed follows: no time bound */
	return c;
}

static void test_put_and_look_up(void)
{
	struct sfsi_rcache *c = fresh_cache();
	struct sfs_file f;

	REQUIRE(c);
	CHECK(count(c, "/d/", NULL) == -1);
	put(c, "/d/", 3, 1, "f");
	CHECK(count(c, "/d/", NULL) == 3);
	CHECK(count(c, "/d/", "f001") == 1);
	CHECK(count(c, "/d/", "F001") == 1); /* case folded */
	CHECK(count(c, "/d/", "nope") == 0);
	REQUIRE(sfsi_rcache_file(c, 2, 0, &f));
	CHECK(!strcmp(f.name, "f001") && f.size == 2);
	sfs_file_release(&f);
	CHECK(!sfsi_rcache_file(c, 9, 0, &f));
	sfsi_rcache_free(c);
}

static void test_fill_raced_by_a_change(void)
{
	struct sfsi_rcache *c = fresh_cache();
	struct sfs_file_list l;
	uint64_t t;

	REQUIRE(c);
	/* changed after the ticket: not kept */
	t = sfsi_rcache_ticket(c, "/d/");
	sfsi_rcache_forget_dir(c, "/d/", 0);
	mklist(&l, 2, 1, "f", "/d/");
	sfsi_rcache_put_files(c, "/d/", t, &l);
	sfs_file_list_release(&l);
	CHECK(count(c, "/d/", NULL) == -1);
	/* a file of it changed by others (it moved in): the same */
	t = sfsi_rcache_ticket(c, "/d/");
	sfsi_rcache_forget_file(c, 7, "/d/");
	mklist(&l, 2, 1, "f", "/d/");
	sfsi_rcache_put_files(c, "/d/", t, &l);
	sfs_file_list_release(&l);
	CHECK(count(c, "/d/", NULL) == -1);
	/* everything forgotten meanwhile: the same */
	t = sfsi_rcache_ticket(c, "/d/");
	sfsi_rcache_forget_all(c);
	mklist(&l, 2, 1, "f", "/d/");
	sfsi_rcache_put_files(c, "/d/", t, &l);
	sfs_file_list_release(&l);
	CHECK(count(c, "/d/", NULL) == -1);
	/* another directory changed: kept */
	t = sfsi_rcache_ticket(c, "/d/");
	sfsi_rcache_forget_dir(c, "/e/", 0);
	mklist(&l, 2, 1, "f", "/d/");
	sfsi_rcache_put_files(c, "/d/", t, &l);
	sfs_file_list_release(&l);
	CHECK(count(c, "/d/", NULL) == 2);
	/* a change below an ancestor's forgetting: /d/ goes too */
	sfsi_rcache_forget_dir(c, "/", 1);
	CHECK(count(c, "/d/", NULL) == -1);
	sfsi_rcache_free(c);
}

static void test_own_changes_move_files(void)
{
	struct sfsi_rcache *c = fresh_cache();
	struct sfs_file f;

	REQUIRE(c);
	put(c, "/a/", 2, 1, "a");
	put(c, "/b/", 2, 11, "b");
	/* file 1 renamed and moved to /b/ */
	mkfile(&f, 1, "moved", "/b/");
	sfsi_rcache_apply(c, &f);
	sfs_file_release(&f);
	CHECK(count(c, "/a/", NULL) == 1 && count(c, "/a/", "a000") == 0);
	CHECK(count(c, "/b/", NULL) == 3 && count(c, "/b/", "moved") == 1);
	/* a new file; a file deleted (to the trash); a file removed */
	mkfile(&f, 20, "new", "/a/");
	sfsi_rcache_apply(c, &f);
	sfs_file_release(&f);
	mkfile(&f, 11, "b000", "/b/");
	f.deleted = 1;
	sfsi_rcache_apply(c, &f);
	sfs_file_release(&f);
	sfsi_rcache_remove(c, 12);
	CHECK(count(c, "/a/", "new") == 1 && count(c, "/a/", NULL) == 2);
	CHECK(count(c, "/b/", NULL) == 1 && count(c, "/b/", "moved") == 1);
	CHECK(!sfsi_rcache_file(c, 12, 0, &f));
	sfsi_rcache_free(c);
}

/* The kept answer about path: its descendantCount (-1: none kept). */
static long long dir_count(struct sfsi_rcache *c, const char *path)
{
	json_t *j = sfsi_rcache_dir(c, path, SFSI_RCACHE_ANSWER);
	long long n = -1;

	if (j)
		n = (long long)json_integer_value(
			json_object_get(j, "descendantCount"));
	json_decref(j);
	return n;
}

/*
 * A write's answer with its directory's state after it: the answer about
 * the directory is made anew of it and the list of subdirectories kept,
 * unless the directory changed since the write's ticket, the state does
 * not fit (another number of subdirectories, not JSON), or the file is
 * another owner's.
 */
static void test_own_write_with_the_directory_state(void)
{
	static const char st[] =
		"{\"explicit\":false,\"descendantCount\":3,"
		"\"subdirectoryCount\":1,\"modifiedAt\":"
		"\"2026-12-04T19:00:00.000Z\",\"modifiedAtNs\":42}";
	struct sfsi_rcache *c = fresh_cache();
	struct sfs_file f;
	json_t *j;
	uint64_t t;

	REQUIRE(c);
#define PUT_DIR()                                                              \
	do {                                                                   \
		j = json_loads(                                                \
			"{\"path\":\"/d/\",\"explicit\":false,"                \
			"\"descendantCount\":2,\"subdirectoryCount\":1,"       \
			"\"modifiedAt\":\"x\",\"modifiedAtNs\":1,"             \
			"\"directories\":[{\"path\":\"/d/s/\"}]}",             \
			0, NULL);                                              \
		sfsi_rcache_put_dir(c, "/d/", sfsi_rcache_ticket(c, "/d/"),    \
				    j);                                        \
		json_decref(j);                                                \
	} while (0)
	PUT_DIR();
	put(c, "/d/", 2, 1, "f");
	CHECK(dir_count(c, "/d/") == 2);
	/* a new file, its answer with the state: kept, subdirectories too */
	t = sfsi_rcache_clock(c);
	mkfile(&f, 9, "new", "/d/");
	f.perm = SFS_PERM_OWNER;
	sfsi_rcache_apply_state(c, &f, t, st);
	CHECK(dir_count(c, "/d/") == 3);
	j = sfsi_rcache_dir(c, "/d/", SFSI_RCACHE_ANSWER);
	CHECK(json_integer_value(json_object_get(j, "modifiedAtNs")) == 42);
	CHECK(json_array_size(json_object_get(j, "directories")) == 1);
	json_decref(j);
	CHECK(count(c, "/d/", "new") == 1);
	/* without a state: the answer goes (asked again) */
	sfsi_rcache_apply(c, &f);
	CHECK(dir_count(c, "/d/") == -1);
	/* the directory changed after the ticket: not kept */
	PUT_DIR();
	t = sfsi_rcache_clock(c);
	sfsi_rcache_forget_dir(c, "/d/", 0);
	sfsi_rcache_apply_state(c, &f, t, st);
	CHECK(dir_count(c, "/d/") == -1);
	/* everything forgotten meanwhile; no ticket: the same */
	PUT_DIR();
	t = sfsi_rcache_clock(c);
	sfsi_rcache_forget_all(c);
	PUT_DIR();
	sfsi_rcache_apply_state(c, &f, t, st);
	CHECK(dir_count(c, "/d/") == -1);
	PUT_DIR();
	sfsi_rcache_apply_state(c, &f, 0, st);
	CHECK(dir_count(c, "/d/") == -1);
	/* a state of another shape, or none that parses: not kept */
	PUT_DIR();
	t = sfsi_rcache_clock(c);
	sfsi_rcache_apply_state(c, &f, t,
				"{\"explicit\":false,\"descendantCount\":3,"
				"\"subdirectoryCount\":2,\"modifiedAt\":\"x\","
				"\"modifiedAtNs\":42}");
	CHECK(dir_count(c, "/d/") == -1);
	PUT_DIR();
	t = sfsi_rcache_clock(c);
	sfsi_rcache_apply_state(c, &f, t, "{\"explicit\":");
	CHECK(dir_count(c, "/d/") == -1);
	/* another owner's file (shared with us): not kept */
	PUT_DIR();
	t = sfsi_rcache_clock(c);
	f.perm = SFS_PERM_EDIT;
	sfsi_rcache_apply_state(c, &f, t, st);
	CHECK(dir_count(c, "/d/") == -1);
#undef PUT_DIR
	sfs_file_release(&f);
	sfsi_rcache_free(c);
}

/*
 * A file moved by others is found by a fill of its new directory before
 * the feed's event: its old directory's listing does not keep it (the
 * event then finds it only in the new one).
 */
static void test_moved_by_a_fill(void)
{
	struct sfsi_rcache *c = fresh_cache();
	struct sfs_file_list l;
	struct sfs_file f;
	uint64_t t, ta;

	REQUIRE(c);
	put(c, "/a/", 2, 1, "x");
	CHECK(count(c, "/a/", "x000") == 1);
	/* a fill of /a/ under way, from before the move */
	ta = sfsi_rcache_ticket(c, "/a/");
	/* /b/ listed: x000 (file 1) is there now */
	t = sfsi_rcache_ticket(c, "/b/");
	mklist(&l, 1, 1, "x", "/b/");
	sfsi_rcache_put_files(c, "/b/", t, &l);
	sfs_file_list_release(&l);
	CHECK(count(c, "/b/", "x000") == 1);
	CHECK(count(c, "/a/", "x000") <= 0); /* a miss, or absent */
	REQUIRE(sfsi_rcache_file(c, 1, 0, &f));
	CHECK(!strcmp(f.path, "/b/"));
	sfs_file_release(&f);
	/* the fill of /a/ from before: not kept */
	mklist(&l, 2, 1, "x", "/a/");
	sfsi_rcache_put_files(c, "/a/", ta, &l);
	sfs_file_list_release(&l);
	CHECK(count(c, "/a/", "x000") == -1);
	/* the feed's event: the new place forgotten; /a/ asked again */
	sfsi_rcache_forget_file(c, 1, "/b/");
	CHECK(count(c, "/b/", NULL) == -1);
	CHECK(count(c, "/a/", "x000") == -1);
	sfsi_rcache_free(c);
}

/*
 * A listing no longer good (changed, forgotten, the feed stopped) is kept
 * as the last one got, for when the server does not answer: with this
 * store's own changes since, without a file a later fill found elsewhere;
 * a new fill replaces it.
 */
static void test_last_listing_kept(void)
{
	struct sfsi_rcache *c = fresh_cache();
	struct sfs_file_list l;
	struct sfs_file f;
	uint64_t t;

	REQUIRE(c);
	put(c, "/d/", 3, 1, "f");
	CHECK(count_last(c, "/e/", NULL) == -1); /* never listed */
	sfsi_rcache_forget_dir(c, "/d/", 0);
	CHECK(count(c, "/d/", NULL) == -1);
	CHECK(count_last(c, "/d/", NULL) == 3);
	CHECK(count_last(c, "/d/", "f001") == 1);
	CHECK(!sfsi_rcache_file(c, 2, 0, &f));
	REQUIRE(sfsi_rcache_file(c, 2, 1, &f));
	CHECK(!strcmp(f.name, "f001"));
	sfs_file_release(&f);
	/* the feed stops (everything forgotten), the store writes there */
	sfsi_rcache_live(c, 0);
	mkfile(&f, 9, "new", "/d/");
	sfsi_rcache_apply(c, &f);
	sfs_file_release(&f);
	sfsi_rcache_remove(c, 1);
	CHECK(count(c, "/d/", NULL) == -1);
	CHECK(count_last(c, "/d/", NULL) == 3);
	CHECK(count_last(c, "/d/", "new") == 1);
	CHECK(count_last(c, "/d/", "f000") == 0);
	/* file 2 found in /b/ by a fill: not in /d/ as last seen either */
	t = sfsi_rcache_ticket(c, "/b/");
	mklist(&l, 1, 2, "moved", "/b/");
	sfsi_rcache_put_files(c, "/b/", t, &l);
	sfs_file_list_release(&l);
	CHECK(count_last(c, "/d/", "f001") == 0);
	CHECK(count_last(c, "/d/", NULL) == 2);
	/* a new fill replaces it, good again */
	sfsi_rcache_live(c, 1);
	put(c, "/d/", 1, 30, "g");
	CHECK(count(c, "/d/", NULL) == 1 && count_last(c, "/d/", NULL) == 1);
	sfsi_rcache_free(c);
}

/* The subdirectories' names in the last answer about path, "a,b," */
static void last_subdirs(struct sfsi_rcache *c, const char *path, char *out,
			 size_t size)
{
	json_t *j = sfsi_rcache_dir(c, path, SFSI_RCACHE_LAST), *a;
	size_t i, len = 0;

	out[0] = '\0';
	a = json_object_get(j, "directories");
	for (i = 0; i < json_array_size(a) && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s,",
					json_string_value(json_object_get(
						json_array_get(a, i), "name")));
	if (!j)
		snprintf(out, size, "none");
	sfsi_rcache_unref(c, j);
}

static void put_answer(struct sfsi_rcache *c, const char *path, uint64_t t,
		       const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	sfsi_rcache_put_dir(c, path, t, j);
	json_decref(j);
}

#define SUB(p, n)                                                              \
	"{\"path\": \"" p "\", \"name\": \"" n "\", \"explicit\": true}"

/*
 * This store's own directory changes show in the last answers (what
 * lists while the server does not answer), and an answer asked before
 * such a change does not become the last one.
 */
static void test_own_directory_changes(void)
{
	struct sfsi_rcache *c = fresh_cache();
	char got[256];
	uint64_t t;

	REQUIRE(c);
	put_answer(c, "/", sfsi_rcache_ticket(c, "/"),
		   "{\"path\": \"/\", \"directories\": [" SUB(
			   "/a/", "a") ", " SUB("/b/", "b") "]}");
	put_answer(c, "/a/", sfsi_rcache_ticket(c, "/a/"),
		   "{\"path\": \"/a/\", \"directories\": [" SUB("/a/x/",
								"x") "]}");
	put(c, "/a/x/", 2, 1, "f");
	/* a fill of "/" under way meanwhile, with the old answer */
	t = sfsi_rcache_ticket(c, "/");
	sfsi_rcache_own_dirs(c, "/b/", NULL);
	last_subdirs(c, "/", got, sizeof(got));
	CHECK(!strcmp(got, "a,"));
	sfsi_rcache_own_dirs(c, "/a/x/", "/y/");
	last_subdirs(c, "/", got, sizeof(got));
	CHECK(!strcmp(got, "a,y,"));
	last_subdirs(c, "/a/", got, sizeof(got));
	CHECK(!strcmp(got, ""));
	CHECK(count_last(c, "/a/x/", NULL) == -1); /* its paths are no more */
	sfsi_rcache_own_dirs(c, NULL, "/a/new/");
	last_subdirs(c, "/a/", got, sizeof(got));
	CHECK(!strcmp(got, "new,"));
	CHECK(count_last(c, "/a/new/", NULL) == 0); /* empty, as last seen */
	CHECK(count(c, "/a/new/", NULL) == -1);	    /* online: asked */
	last_subdirs(c, "/a/new/", got, sizeof(got));
	CHECK(!strcmp(got, ""));
	/* the fill begun before: not the last answer */
	put_answer(c, "/", t,
		   "{\"path\": \"/\", \"directories\": [" SUB(
			   "/a/", "a") ", " SUB("/b/", "b") "]}");
	last_subdirs(c, "/", got, sizeof(got));
	CHECK(!strcmp(got, "a,y,"));
	/* one begun after is */
	put_answer(c, "/", sfsi_rcache_ticket(c, "/"),
		   "{\"path\": \"/\", \"directories\": [" SUB("/z/", "z") "]}");
	last_subdirs(c, "/", got, sizeof(got));
	CHECK(!strcmp(got, "z,"));
	/* a parent never answered stays so */
	sfsi_rcache_own_dirs(c, NULL, "/q/r/");
	last_subdirs(c, "/q/", got, sizeof(got));
	CHECK(!strcmp(got, "none"));
	sfsi_rcache_free(c);
}

/* A large listing: lookups through the index, kept as files come and go. */
static void test_index_kept(void)
{
	struct sfsi_rcache *c = fresh_cache();
	struct sfs_file f;
	char name[16];
	int i, bad = 0;

	REQUIRE(c);
	put(c, "/big/", 200, 1, "f");
	CHECK(count(c, "/big/", "f150") == 1); /* builds the index */
	sfsi_rcache_remove(c, 1);	       /* the first: the last moves */
	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "n%03d", i);
		mkfile(&f, 1000 + i, name, "/big/");
		sfsi_rcache_apply(c, &f); /* grows past the index's room */
		sfs_file_release(&f);
	}
	mkfile(&f, 100, "renamed", "/big/"); /* f099 renamed in place */
	sfsi_rcache_apply(c, &f);
	sfs_file_release(&f);
	for (i = 1; i < 200; i++) {
		snprintf(name, sizeof(name), "F%03d", i);
		bad += count(c, "/big/", name) != (i == 99 ? 0 : 1);
	}
	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "n%03d", i);
		bad += count(c, "/big/", name) != 1;
	}
	CHECK(bad == 0);
	CHECK(count(c, "/big/", "f000") == 0);
	CHECK(count(c, "/big/", "renamed") == 1);
	CHECK(count(c, "/big/", NULL) == 249);
	sfsi_rcache_free(c);
}

/* Past the bounds, the least recently used directories go first. */
static void test_bounds(void)
{
	struct sfsi_rcache *c = fresh_cache();
	char path[32];
	int i, kept = 0;

	REQUIRE(c);
	for (i = 0; i < SFSI_RCACHE_DIRS + 10; i++) {
		snprintf(path, sizeof(path), "/d%05d/", i);
		put(c, path, 1, 1 + i, "f");
		if (i == 100)
			CHECK(count(c, "/d00000/", NULL) == 1); /* used */
	}
	for (i = 0; i < SFSI_RCACHE_DIRS + 10; i++) {
		snprintf(path, sizeof(path), "/d%05d/", i);
		kept += count(c, path, NULL) == 1;
	}
	CHECK(kept == SFSI_RCACHE_DIRS);
	CHECK(count(c, "/d00000/", NULL) == 1);
	CHECK(count(c, "/d00001/", NULL) == -1);
	CHECK(count(c, "/d00011/", NULL) == 1);
	sfsi_rcache_free(c);
	/* files: a listing that passes the bound pushes the older out */
	c = fresh_cache();
	REQUIRE(c);
	put(c, "/one/", SFSI_RCACHE_FILES / 2 + 10, 1, "f");
	put(c, "/two/", SFSI_RCACHE_FILES / 2 + 10, SFSI_RCACHE_FILES, "f");
	CHECK(count(c, "/one/", NULL) == -1);
	CHECK(count(c, "/two/", NULL) == SFSI_RCACHE_FILES / 2 + 10);
	sfsi_rcache_free(c);
}

int main(void)
{
	RUN(test_put_and_look_up);
	RUN(test_fill_raced_by_a_change);
	RUN(test_own_changes_move_files);
	RUN(test_moved_by_a_fill);
	RUN(test_own_write_with_the_directory_state);
	RUN(test_last_listing_kept);
	RUN(test_own_directory_changes);
	RUN(test_index_kept);
	RUN(test_bounds);
	return th_report();
}
