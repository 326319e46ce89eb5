/*
 * Tests of virtual directories: implicit ones that follow live files,
 * explicit ones made by mkdir, rmdir, rename of whole subtrees, and the
 * directory counts, checked after every step against a recount from the
 * file table.
 *
 * About internals on purpose: a directory's counts are a cache the core
 * keeps of the file table, and only a recount from that table, in SQL
 * (dirs_consistent), shows they never drift.
 */
#include <pthread.h>
#include <stdint.h>
#include "db_i.h"
#include "speechfs/auth.h"
#include "speechfs/blob.h"
#include "speechfs/dir.h"
#include "speechfs/file.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "fixture.h"
#include "testhelp.h"

struct fx {
	char *dir;
	struct sfs_store *s;
	char t1[SFS_ID_SIZE], ua[SFS_ID_SIZE], ub[SFS_ID_SIZE];
	struct sfs_actor a, b;
};

static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, NULL))
		return -1;
	return tfx_tenant(f->s, "one", 0, 0, f->t1) ||
			       tfx_user(f->s, f->t1, "alice", f->ua, &f->a) ||
			       tfx_user(f->s, f->t1, "bob", f->ub, &f->b)
		       ? -1
		       : 0;
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
}

static enum sfs_status mk(struct fx *f, const char *path, char *id)
{
	struct sfs_file_spec sp = { .name = "f", .path = path };
	struct sfs_file out;
	enum sfs_status ret;

	ret = sfs_file_create(f->s, &f->a, &sp, NULL, &out, NULL);
	if (!ret && id)
		sfs_strlcpy(id, out.id, SFS_ID_SIZE);
	if (!ret)
		sfs_file_release(&out);
	return ret;
}

static enum sfs_status move(struct fx *f, const char *id, const char *path)
{
	struct sfs_file_update u = { .set = SFS_UPD_PATH, .path = path };

	return sfs_file_update(f->s, &f->a, id, &u, NULL, NULL);
}

/* nfiles of a directory, -1 when it does not exist. */
static int64_t nfiles(struct fx *f, const char *path)
{
	struct sfs_dir_info di;

	if (sfs_dir_stat(f->s, &f->a, path, &di, NULL))
		return -1;
	return di.nfiles;
}

static int is_explicit(struct fx *f, const char *path)
{
	struct sfs_dir_info di;

	if (sfs_dir_stat(f->s, &f->a, path, &di, NULL))
		return -1;
	return di.explicit_;
}

static char *file_path(struct fx *f, const char *id)
{
	struct sfs_file g;
	char *p = NULL;

	if (!sfs_file_get(f->s, &f->a, id, &g, NULL)) {
		p = strdup(g.path);
		sfs_file_release(&g);
	}
	return p;
}

static int path_is(struct fx *f, const char *id, const char *want)
{
	char *p = file_path(f, id);
	int ok = p && !strcmp(p, want);

	if (!ok)
		fprintf(stderr, "  file is in '%s', want '%s'\n", p ? p : "?",
			want);
	free(p);
	return ok;
}

struct names {
	int n;
	char buf[512];
};

static void add_name(void *arg, const char *name, const struct sfs_dir_info *d)
{
	struct names *nm = arg;
	size_t len = strlen(nm->buf);

	(void)d;
	snprintf(nm->buf + len, sizeof(nm->buf) - len, "%s%s",
		 nm->n++ ? "," : "", name);
}

/* "a,b,c": the subdirectories of `path`. */
static const char *subdirs(struct fx *f, const char *path, struct names *nm)
{
	nm->n = 0;
	nm->buf[0] = '\0';
	if (sfs_dir_subdirs(f->s, &f->a, path, add_name, nm, NULL))
		return "<error>";
	return nm->buf;
}

/*
 * Recount every directory of every owner from the file table: a row
 * exists exactly for "/" (optional), explicit directories and ancestors
 * of live files and explicit directories, and its nfiles is the number
 * of live files at any depth plus explicit directories strictly below.
 * Returns the number of disagreements.
 */
static int dirs_consistent(struct fx *f)
{
	struct db *d = NULL;
	struct db_stmt *q;
	int bad = 0, rc;

	if (sfsi_db_get(f->s, &d, NULL))
		return 1;
	/* rows against recounts */
	q = sfsi_db_prep_dyn(
		d,
		"SELECT dd.owner_id, dd.path, dd.nfiles, dd.explicit,"
		" (SELECT count(*) FROM file x WHERE x.owner_id = dd.owner_id"
		"  AND x.is_deleted = 0 AND substr(x.dir, 1, length(dd.path))"
		"  = dd.path)"
		" + (SELECT count(*) FROM dir y WHERE y.owner_id = dd.owner_id"
		"  AND y.explicit = 1 AND y.path <> dd.path"
		"  AND substr(y.path, 1, length(dd.path)) = dd.path),"
		" dd.parent FROM dir dd",
		NULL);
	while (q && (rc = sfsi_db_step(q, NULL)) == 1) {
		const char *path = sfsi_db_col_text(q, 1);
		int64_t have = sfsi_db_col_int(q, 2),
			want = sfsi_db_col_int(q, 4);
		const char *parent = sfsi_db_col_text(q, 5);

		if (have != want || (want == 0 && !sfsi_db_col_int(q, 3) &&
				     strcmp(path, "/"))) {
			fprintf(stderr,
				"  dir %lld:%s counts %lld, has %lld%s\n",
				(long long)sfsi_db_col_int(q, 0), path,
				(long long)have, (long long)want,
				sfsi_db_col_int(q, 3) ? " (explicit)" : "");
			bad++;
		}
		/* parent is the path minus its last segment */
		if (strcmp(path, "/")) {
			size_t n = strlen(path) - 1;

			while (n > 0 && path[n - 1] != '/')
				n--;
			if (strlen(parent) != n || strncmp(parent, path, n)) {
				fprintf(stderr, "  dir %s has parent %s\n",
					path, parent);
				bad++;
			}
		}
	}
	sfsi_db_finalize(q);
	/* every live file's directory and its ancestors have rows */
	q = sfsi_db_prep_dyn(
		d,
		"SELECT x.owner_id, x.dir FROM file x WHERE x.is_deleted = 0"
		" UNION SELECT y.owner_id, y.parent FROM dir y"
		" WHERE y.path <> '/'",
		NULL);
	while (q && sfsi_db_step(q, NULL) == 1) {
		struct db_stmt *c;
		const char *p = sfsi_db_col_text(q, 1);

		if (!strcmp(p, "/"))
			continue;
		c = sfsi_db_prep(d,
				 "SELECT 1 FROM dir WHERE owner_id = ?1"
				 " AND path = ?2",
				 NULL);
		sfsi_db_bind_int(c, 1, sfsi_db_col_int(q, 0));
		sfsi_db_bind_text(c, 2, p);
		if (sfsi_db_step(c, NULL) != 1) {
			fprintf(stderr, "  no row for directory %s\n", p);
			bad++;
		}
		sfsi_db_reset(c);
	}
	sfsi_db_finalize(q);
	sfsi_db_put(d);
	return bad;
}

static void test_implicit(void)
{
	char id[SFS_ID_SIZE], id2[SFS_ID_SIZE];
	struct sfs_dir_info di, before;
	struct names nm;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	/* the root always exists */
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/", &di, NULL), SFS_OK);
	CHECK(di.nfiles == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_dir_stat(f.s, &f.a, "/a/", &di, &e), SFS_NOT_FOUND);
	CHECK_ST(sfs_dir_stat(f.s, &f.a, "/a", &di, NULL), SFS_INVALID);

	REQUIRE_ST(mk(&f, "/a/b/c/", id), SFS_OK);
	CHECK(nfiles(&f, "/a/") == 1 && nfiles(&f, "/a/b/") == 1 &&
	      nfiles(&f, "/a/b/c/") == 1 && nfiles(&f, "/") == 1);
	CHECK(is_explicit(&f, "/a/b/") == 0);
	CHECK(!strcmp(subdirs(&f, "/", &nm), "a"));
	CHECK(!strcmp(subdirs(&f, "/a/", &nm), "b"));
	CHECK(!strcmp(subdirs(&f, "/a/b/c/", &nm), ""));
	REQUIRE_ST(mk(&f, "/a/", id2), SFS_OK);
	CHECK(nfiles(&f, "/a/") == 2 && nfiles(&f, "/a/b/") == 1);
	CHECK(dirs_consistent(&f) == 0);

	/* another user has a tree of their own */
	CHECK_ST(sfs_dir_stat(f.s, &f.b, "/a/", &di, NULL), SFS_NOT_FOUND);

	/* deleting the deep file makes its directories vanish */
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/a/", &before, NULL), SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	CHECK(nfiles(&f, "/a/b/c/") == -1 && nfiles(&f, "/a/b/") == -1);
	CHECK(nfiles(&f, "/a/") == 1);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/a/", &di, NULL), SFS_OK);
	CHECK(di.ino == before.ino);
	CHECK(di.mtime_ns > before.mtime_ns);
	CHECK(!strcmp(subdirs(&f, "/a/", &nm), ""));
	CHECK(dirs_consistent(&f) == 0);
	/* restoring brings them back; purging a deleted file changes none */
	CHECK_ST(sfs_file_restore(f.s, &f.a, id, NULL, NULL), SFS_OK);
	CHECK(nfiles(&f, "/a/b/c/") == 1 && nfiles(&f, "/a/") == 2);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 1, NULL), SFS_OK);
	CHECK(nfiles(&f, "/a/b/") == -1 && nfiles(&f, "/a/") == 1);
	CHECK(dirs_consistent(&f) == 0);

	/* moving a file moves its directory entries */
	CHECK_ST(move(&f, id2, "/p/q/"), SFS_OK);
	CHECK(nfiles(&f, "/a/") == -1 && nfiles(&f, "/p/q/") == 1);
	CHECK(nfiles(&f, "/") == 1);
	CHECK(!strcmp(subdirs(&f, "/", &nm), "p"));
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/later/", NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/p/", &before, NULL), SFS_OK);
	CHECK_ST(move(&f, id2, "/p/"), SFS_OK);
	CHECK(nfiles(&f, "/p/q/") == -1 && nfiles(&f, "/p/") == 1);
	/* /p/ held the file all along: it keeps its inode */
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/p/", &di, NULL), SFS_OK);
	CHECK(di.ino == before.ino);
	CHECK_ST(move(&f, id2, "/p/r/"), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/p/", &di, NULL), SFS_OK);
	CHECK(di.ino == before.ino);
	CHECK_ST(move(&f, id2, "/p/"), SFS_OK);
	/* a discarded file is still a live file of its directory */
	CHECK_ST(sfs_file_discard(f.s, &f.a, id2, NULL), SFS_OK);
	CHECK(nfiles(&f, "/p/") == 1 && nfiles(&f, "/") == 2);
	CHECK(dirs_consistent(&f) == 0);
	fx_close(&f);
}

static void test_explicit(void)
{
	char id[SFS_ID_SIZE];
	struct names nm;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	CHECK_ST(sfs_dir_make(f.s, &f.a, "/x/y/", NULL), SFS_OK);
	CHECK(is_explicit(&f, "/x/y/") == 1 && nfiles(&f, "/x/y/") == 0);
	/* parents are made too, and count the explicit child */
	CHECK(is_explicit(&f, "/x/") == 0 && nfiles(&f, "/x/") == 1);
	CHECK(!strcmp(subdirs(&f, "/x/", &nm), "y"));
	CHECK(dirs_consistent(&f) == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_dir_make(f.s, &f.a, "/x/y/", &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_DIRECTORY_EXISTS);
	CHECK_ST(sfs_dir_make(f.s, &f.a, "/x/", NULL), SFS_CONFLICT);
	CHECK_ST(sfs_dir_make(f.s, &f.a, "/", NULL), SFS_CONFLICT);
	CHECK_ST(sfs_dir_make(f.s, &f.a, "/bad", NULL), SFS_INVALID);
	CHECK_ST(sfs_dir_make(f.s, &f.a, "/a//b/", NULL), SFS_INVALID);
	/* the same path for another user is theirs to make */
	CHECK_ST(sfs_dir_make(f.s, &f.b, "/x/y/", NULL), SFS_OK);

	/* an explicit directory outlives the files put in it */
	REQUIRE_ST(mk(&f, "/x/y/", id), SFS_OK);
	CHECK(nfiles(&f, "/x/y/") == 1 && nfiles(&f, "/x/") == 2);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	CHECK(is_explicit(&f, "/x/y/") == 1 && nfiles(&f, "/x/y/") == 0);
	CHECK(nfiles(&f, "/x/") == 1);
	CHECK(dirs_consistent(&f) == 0);
	/* and a file made below an explicit one keeps it explicit */
	CHECK_ST(sfs_dir_make(f.s, &f.a, "/x/y/z/", NULL), SFS_OK);
	CHECK(nfiles(&f, "/x/y/") == 1 && nfiles(&f, "/x/") == 2);
	CHECK(dirs_consistent(&f) == 0);

	/* scopes */
	f.a.scopes = SFS_SCOPE_READ;
	CHECK_ST(sfs_dir_make(f.s, &f.a, "/r/", NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/x/y/z/", NULL), SFS_FORBIDDEN);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/x/", "/w/", NULL), SFS_FORBIDDEN);
	f.a.scopes = SFS_SCOPE_WRITE;
	CHECK_ST(sfs_dir_subdirs(f.s, &f.a, "/", add_name, &nm, NULL),
		 SFS_FORBIDDEN);
	fx_close(&f);
}

/*
 * sfs_store_keep_dirs: a directory the API made (implicit) that loses its
 * last entry through such a handle stays, made explicit in the same
 * transaction, with its row (its node id): by a delete, a move out, a
 * directory moved out, the removal of its last subdirectory. Without it
 * the directory vanishes (the REST API's rule: test_remove and the rest).
 */
static void test_keep(void)
{
	char id[SFS_ID_SIZE], id2[SFS_ID_SIZE];
	struct sfs_dir_info before, di;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	sfs_store_keep_dirs(f.s, 1);
	REQUIRE_ST(mk(&f, "/k/l/", id), SFS_OK);
	REQUIRE_ST(mk(&f, "/k/l/", id2), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/k/l/", &before, NULL), SFS_OK);
	CHECK(is_explicit(&f, "/k/l/") == 0 && nfiles(&f, "/k/") == 2);
	/* not its last: nothing is kept */
	CHECK_ST(sfs_file_delete(f.s, &f.a, id2, 0, NULL), SFS_OK);
	CHECK(is_explicit(&f, "/k/l/") == 0 && nfiles(&f, "/k/l/") == 1);
	/* its last file goes: it stays, the same row, counted as a mkdir's */
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/k/l/", &di, NULL), SFS_OK);
	CHECK(di.ino == before.ino && di.nfiles == 0 && di.explicit_);
	CHECK(di.mtime_ns >= before.mtime_ns);
	CHECK(nfiles(&f, "/k/") == 1 && is_explicit(&f, "/k/") == 0);
	CHECK(nfiles(&f, "/") == 1);
	CHECK(dirs_consistent(&f) == 0);
	/* its removal empties its implicit parent, which stays too */
	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/k/l/", NULL), SFS_OK);
	CHECK(nfiles(&f, "/k/l/") == -1);
	CHECK(is_explicit(&f, "/k/") == 1 && nfiles(&f, "/k/") == 0);
	CHECK(dirs_consistent(&f) == 0);
	/* a file moved out */
	REQUIRE_ST(mk(&f, "/m/", id), SFS_OK);
	CHECK_ST(move(&f, id, "/k/"), SFS_OK);
	CHECK(is_explicit(&f, "/m/") == 1 && nfiles(&f, "/m/") == 0);
	CHECK(nfiles(&f, "/k/") == 1 && dirs_consistent(&f) == 0);
	/* a directory moved out of its implicit parent */
	REQUIRE_ST(mk(&f, "/p/q/", id2), SFS_OK);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/p/q/", "/k/q/", NULL), SFS_OK);
	CHECK(is_explicit(&f, "/p/") == 1 && nfiles(&f, "/p/") == 0);
	CHECK(nfiles(&f, "/k/") == 2 && dirs_consistent(&f) == 0);
	/* moved within its directory: nothing leaves, nothing is kept */
	REQUIRE_ST(mk(&f, "/r/", id2), SFS_OK);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/r/", "/s/", NULL), SFS_OK);
	CHECK(nfiles(&f, "/r/") == -1 && is_explicit(&f, "/s/") == 0);
	CHECK(dirs_consistent(&f) == 0);
	/* and without the handle's mode, as before: it vanishes */
	sfs_store_keep_dirs(f.s, 0);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id2, 0, NULL), SFS_OK);
	CHECK(nfiles(&f, "/s/") == -1 && dirs_consistent(&f) == 0);
	fx_close(&f);
}

struct elsewhere {
	struct fx *f;
	char id[SFS_ID_SIZE];
	enum sfs_status st;
};

static void *delete_elsewhere(void *arg)
{
	struct elsewhere *o = arg;

	o->st = sfs_file_delete(o->f->s, &o->f->a, o->id, 0, NULL);
	return NULL;
}

/*
 * sfs_store_keep_dirs_here (a daemon's request with keepDirs=true): the
 * calling thread's calls keep the directories they empty, whatever the
 * handle's mode; another thread's keep the handle's rule meanwhile; off
 * again, they vanish. A rename onto the last file of a directory
 * (rename(2) replacing it) leaves that directory as it was: the file
 * arrives before the replaced one leaves (it was made explicit); one out
 * of the trash elsewhere is counted where it goes only.
 */
static void test_keep_here(void)
{
	struct sfs_file_update u = { .set = SFS_UPD_PATH, .path = "/dst/" };
	char id[SFS_ID_SIZE], id2[SFS_ID_SIZE], id3[SFS_ID_SIZE];
	struct elsewhere o = { 0 };
	pthread_t t;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	o.f = &f;
	REQUIRE_ST(mk(&f, "/h/", id), SFS_OK);
	REQUIRE_ST(mk(&f, "/o/", o.id), SFS_OK);
	sfs_store_keep_dirs_here(1);
	REQUIRE(pthread_create(&t, NULL, delete_elsewhere, &o) == 0);
	pthread_join(t, NULL);
	CHECK_ST(o.st, SFS_OK);
	CHECK(nfiles(&f, "/o/") == -1);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	CHECK(is_explicit(&f, "/h/") == 1 && nfiles(&f, "/h/") == 0);
	CHECK(dirs_consistent(&f) == 0);
	REQUIRE_ST(mk(&f, "/src/", id2), SFS_OK);
	REQUIRE_ST(mk(&f, "/dst/", id3), SFS_OK);
	CHECK_ST(sfs_file_rename(f.s, &f.a, id2, &u, id3, 0, NULL, NULL),
		 SFS_OK);
	CHECK(is_explicit(&f, "/dst/") == 0 && nfiles(&f, "/dst/") == 1);
	CHECK(is_explicit(&f, "/src/") == 1 && nfiles(&f, "/src/") == 0);
	CHECK(dirs_consistent(&f) == 0);
	sfs_store_keep_dirs_here(0);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id2, 0, NULL), SFS_OK);
	CHECK(nfiles(&f, "/dst/") == -1 && dirs_consistent(&f) == 0);
	/* out of the trash into another directory: the one it left (gone
	 * since) is not made again, nor kept */
	REQUIRE_ST(mk(&f, "/was/", id), SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	CHECK(nfiles(&f, "/was/") == -1);
	sfs_store_keep_dirs_here(1);
	u.path = "/back/";
	CHECK_ST(sfs_file_rename(f.s, &f.a, id, &u, NULL, SFS_RENAME_RESTORE,
				 NULL, NULL),
		 SFS_OK);
	sfs_store_keep_dirs_here(0);
	CHECK(nfiles(&f, "/was/") == -1 && nfiles(&f, "/back/") == 1);
	CHECK(is_explicit(&f, "/back/") == 0 && path_is(&f, id, "/back/"));
	CHECK(dirs_consistent(&f) == 0);
	fx_close(&f);
}

static void test_remove(void)
{
	char id[SFS_ID_SIZE];
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/e/", NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/n/sub/", NULL), SFS_OK);
	REQUIRE_ST(mk(&f, "/i/", id), SFS_OK);

	sfs_err_init(&e);
	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/n/", &e), SFS_CONFLICT);
	CHECK(e.reason == SFS_R_DIRECTORY_NOT_EMPTY);
	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/i/", NULL), SFS_CONFLICT);
	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/", NULL), SFS_CONFLICT);
	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/nothing/", NULL), SFS_NOT_FOUND);
	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/e", NULL), SFS_INVALID);
	CHECK_ST(sfs_dir_remove(f.s, &f.b, "/e/", NULL), SFS_NOT_FOUND);

	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/e/", NULL), SFS_OK);
	CHECK(nfiles(&f, "/e/") == -1);
	/* removing the only child lets its implicit parent vanish */
	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/n/sub/", NULL), SFS_OK);
	CHECK(nfiles(&f, "/n/") == -1);
	CHECK(nfiles(&f, "/") == 1);
	CHECK(dirs_consistent(&f) == 0);

	/* an explicit directory holding only a deleted file is empty */
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/k/", NULL), SFS_OK);
	CHECK_ST(move(&f, id, "/k/"), SFS_OK);
	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/k/", NULL), SFS_CONFLICT);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	CHECK_ST(sfs_dir_remove(f.s, &f.a, "/k/", NULL), SFS_OK);
	CHECK(nfiles(&f, "/k/") == -1);
	/* restoring the file brings its directory back */
	CHECK_ST(sfs_file_restore(f.s, &f.a, id, NULL, NULL), SFS_OK);
	CHECK(nfiles(&f, "/k/") == 1 && is_explicit(&f, "/k/") == 0);
	CHECK(dirs_consistent(&f) == 0);
	fx_close(&f);
}

/*
 * A directory's id (the mount's node id) is never given to another one:
 * not after rmdir of the newest directory, nor after an implicit one
 * vanished with its last file, nor across a reopen of the store.
 */
static void test_ids_not_reused(void)
{
	struct sfs_dir_info a, b, c;
	char id[SFS_ID_SIZE];
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/e/", NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/e/", &a, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_remove(f.s, &f.a, "/e/", NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/f/", NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/f/", &b, NULL), SFS_OK);
	CHECK(b.ino != a.ino);
	/* an implicit directory goes with its last file */
	REQUIRE_ST(mk(&f, "/g/", id), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/g/", &a, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, id, 0, NULL), SFS_OK);
	CHECK(nfiles(&f, "/g/") == -1);
	sfs_store_close(f.s);
	REQUIRE_ST(sfs_store_open(f.dir, NULL, &f.s, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/h/", NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/h/", &c, NULL), SFS_OK);
	CHECK(c.ino != a.ino && c.ino != b.ino);
	CHECK(dirs_consistent(&f) == 0);
	fx_close(&f);
}

static void test_rename(void)
{
	char i1[SFS_ID_SIZE], i2[SFS_ID_SIZE], i3[SFS_ID_SIZE];
	char o1[SFS_ID_SIZE];
	struct sfs_dir_info di;
	struct names nm;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(mk(&f, "/a/", i1), SFS_OK);
	REQUIRE_ST(mk(&f, "/a/b/", i2), SFS_OK);
	REQUIRE_ST(mk(&f, "/a/c/", i3), SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, i3, 0, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/a/e/", NULL), SFS_OK);
	/* a sibling whose name starts the same must not move */
	REQUIRE_ST(mk(&f, "/ab/", o1), SFS_OK);
	CHECK(nfiles(&f, "/a/") == 3);
	CHECK(dirs_consistent(&f) == 0);

	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/a/", "/z/", NULL), SFS_OK);
	CHECK(nfiles(&f, "/a/") == -1);
	CHECK(nfiles(&f, "/z/") == 3 && nfiles(&f, "/z/b/") == 1);
	CHECK(is_explicit(&f, "/z/e/") == 1);
	CHECK(path_is(&f, i1, "/z/") && path_is(&f, i2, "/z/b/"));
	/* deleted files move too, so a restore lands in the new place */
	CHECK(path_is(&f, i3, "/z/c/"));
	CHECK(path_is(&f, o1, "/ab/"));
	CHECK(!strcmp(subdirs(&f, "/", &nm), "ab,z"));
	CHECK(!strcmp(subdirs(&f, "/z/", &nm), "b,e"));
	CHECK(nfiles(&f, "/") == 4);
	CHECK(dirs_consistent(&f) == 0);
	CHECK_ST(sfs_file_restore(f.s, &f.a, i3, NULL, NULL), SFS_OK);
	CHECK(nfiles(&f, "/z/c/") == 1 && nfiles(&f, "/z/") == 4);
	CHECK(dirs_consistent(&f) == 0);

	/* not into its own subtree, not from or onto the root */
	sfs_err_init(&e);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/z/", "/z/q/", &e), SFS_INVALID);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/", "/q/", NULL), SFS_INVALID);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/z/", "/", NULL), SFS_INVALID);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/none/", "/q/", NULL),
		 SFS_NOT_FOUND);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/z/", "bad", NULL), SFS_INVALID);
	/* onto a directory that is not empty */
	sfs_err_init(&e);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/z/b/", "/ab/", &e), SFS_CONFLICT);
	CHECK(path_is(&f, i2, "/z/b/"));
	/* onto an empty explicit directory: it is replaced */
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/t/u/", NULL), SFS_OK);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/z/b/", "/t/u/", NULL), SFS_OK);
	CHECK(path_is(&f, i2, "/t/u/"));
	CHECK(nfiles(&f, "/t/u/") == 1 && is_explicit(&f, "/t/u/") == 0);
	CHECK(nfiles(&f, "/t/") == 1 && nfiles(&f, "/z/b/") == -1);
	CHECK(dirs_consistent(&f) == 0);
	/* to itself: nothing happens */
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/t/", "/t/", NULL), SFS_OK);

	/* an explicit empty directory renames as itself */
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/m/n/", NULL), SFS_OK);
	/* (a later row, so that a remade /m/ could not get its old id) */
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/later/", NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/m/", &di, NULL), SFS_OK);
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/m/n/", "/m/o/", NULL), SFS_OK);
	CHECK(is_explicit(&f, "/m/o/") == 1 && nfiles(&f, "/m/n/") == -1);
	CHECK(nfiles(&f, "/m/") == 1);
	CHECK(dirs_consistent(&f) == 0);
	{
		struct sfs_dir_info after;

		/* the unchanged parent keeps its inode */
		REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/m/", &after, NULL),
			   SFS_OK);
		CHECK(after.ino == di.ino);
	}
	/* deeper: into another branch */
	CHECK_ST(sfs_dir_rename(f.s, &f.a, "/z/", "/deep/er/", NULL), SFS_OK);
	CHECK(path_is(&f, i1, "/deep/er/") && path_is(&f, i3, "/deep/er/c/"));
	CHECK(nfiles(&f, "/deep/") == 3);
	CHECK(dirs_consistent(&f) == 0);
	/* the other user's tree is untouched by all this */
	CHECK_ST(sfs_dir_stat(f.s, &f.b, "/deep/", &di, NULL), SFS_NOT_FOUND);
	fx_close(&f);
}

static void test_mtime(void)
{
	struct sfs_dir_info di, d2;
	char id[SFS_ID_SIZE];
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/d/", NULL), SFS_OK);
	CHECK_ST(sfs_dir_set_mtime(f.s, &f.a, "/d/", 1000000000, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/d/", &di, NULL), SFS_OK);
	CHECK(di.mtime_ns == 1000000000);
	/* a new entry bumps it */
	REQUIRE_ST(mk(&f, "/d/", id), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(f.s, &f.a, "/d/", &d2, NULL), SFS_OK);
	CHECK(d2.mtime_ns > di.mtime_ns);
	CHECK(d2.ino == di.ino);
	CHECK_ST(sfs_dir_set_mtime(f.s, &f.a, "/nope/", 1, NULL),
		 SFS_NOT_FOUND);
	fx_close(&f);
}

/* Many random moves, deletes and restores keep every count right. */
static void test_counts_random(void)
{
	static const char *paths[] = { "/",   "/a/",   "/a/b/", "/a/b/c/",
				       "/b/", "/b/a/", "/ab/",	"/a/bc/" };
	char ids[24][SFS_ID_SIZE];
	int deleted[24] = { 0 };
	unsigned seed = 12345;
	struct fx f;
	int i, step;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 24; i++)
		REQUIRE_ST(mk(&f, paths[i % 8], ids[i]), SFS_OK);
	REQUIRE_ST(sfs_dir_make(f.s, &f.a, "/a/x/", NULL), SFS_OK);
	for (step = 0; step < 150; step++) {
		int k, op;

		seed = seed * 1103515245u + 12345u;
		k = (int)((seed >> 8) % 24);
		op = (int)((seed >> 20) % 4);
		if (op == 0 && !deleted[k]) {
			CHECK_ST(sfs_file_delete(f.s, &f.a, ids[k], 0, NULL),
				 SFS_OK);
			deleted[k] = 1;
		} else if (op == 1 && deleted[k]) {
			CHECK_ST(
				sfs_file_restore(f.s, &f.a, ids[k], NULL, NULL),
				SFS_OK);
			deleted[k] = 0;
		} else if (!deleted[k]) {
			CHECK_ST(move(&f, ids[k], paths[(seed >> 12) % 8]),
				 SFS_OK);
		}
		if (step % 25 == 0 && dirs_consistent(&f))
			break;
	}
	CHECK(dirs_consistent(&f) == 0);
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_implicit);
	RUN(test_explicit);
	RUN(test_keep);
	RUN(test_keep_here);
	RUN(test_remove);
	RUN(test_ids_not_reused);
	RUN(test_rename);
	RUN(test_mtime);
	RUN(test_counts_random);
	return th_report();
}
