/*
 * Tests of sfs_fsck, the consistency check of the blob store against the
 * rows that reference it: a clean store says nothing; orphan files, lost
 * blob files, wrong reference counts, dangling references and wrong usage
 * figures are each found, and repaired only when asked; many rows are
 * walked exactly once; a repair beside a live writer breaks nothing.
 *
 * About internals on purpose: every damage fsck must find is one no
 * public call can make, so the tests make it by hand — a file dropped
 * into STORE/blobs/, a blob file unlinked, a count changed in SQL — and
 * read reference counts from the blob rows (the fixture's second half).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include "blob_i.h"
#include "db_i.h"
#include "fixture.h"
#include "store_i.h"
#include "speechfs/auth.h"
#include "speechfs/file.h"
#include "speechfs/fsck.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "testhelp.h"

/* Two tenants with one user each: alice (a) and xavier (x). */
struct fx {
	char *dir;
	struct sfs_store *s;
	char t1[SFS_ID_SIZE], t2[SFS_ID_SIZE];
	char u1[SFS_ID_SIZE], u2[SFS_ID_SIZE];
	struct sfs_actor a;
	struct sfs_actor x;
};

/*
 * These tests are of the blob files and their rows: every blob is a file,
 * in every process that opens the store (small blobs kept in their row:
 * t_inline.c), as tfx_files_only() configures it.
 */
static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, tfx_files_only()))
		return -1;
	return tfx_tenant(f->s, "one", 0, 0, f->t1) ||
	       tfx_tenant(f->s, "two", 0, 0, f->t2) ||
	       tfx_user(f->s, f->t1, "alice", f->u1, &f->a) ||
	       tfx_user(f->s, f->t2, "xavier", f->u2, &f->x);
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
}

/* Ask for listening audio of `id` and complete it with these bytes. */
static enum sfs_status give_listening(struct fx *f, const char *id,
				      const void *mp3, size_t n)
{
	enum sfs_status ret;

	ret = sfs_listening_generate(f->s, &f->a, id, NULL, NULL);
	if (!ret)
		ret = tfx_listening_done(f->s, &f->a, id, mp3, n);
	return ret;
}

/* These bytes as blob (tenant, sha) in the backend, without a row. */
static int plant_blob(struct fx *f, int64_t tenant, const char *sha,
		      const void *data, size_t n)
{
	return tfx_blob_plant(f->s, tenant, sha, data, n);
}

static void test_fsck_clean_and_counts(void)
{
	unsigned char buf[2000];
	char id[SFS_ID_SIZE], sha[65];
	struct sfs_fsck_report r;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 20);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);
	CHECK(r.blobs_checked == 0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", buf, sizeof(buf), id, sha),
		   SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "b", buf, sizeof(buf), NULL, NULL),
		   SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.x, "c", buf, 100, NULL, NULL), SFS_OK);
	/* listening audio with the same bytes as the originals: 3 refs */
	REQUIRE_ST(give_listening(&f, id, buf, sizeof(buf)), SFS_OK);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == 3);
	REQUIRE_ST(give_listening(&f, id, buf, 10), SFS_CONFLICT);
	CHECK(tfx_fsck_lines(f.s, 1, &r) == 0);
	CHECK(r.blobs_checked == 2);
	CHECK(r.repaired == 0);
	fx_close(&f);
}

static void test_fsck_orphan(void)
{
	char sha[65], p[4096], odd[200];
	struct sfs_fsck_report r;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", "abc", 3, NULL, NULL), SFS_OK);
	REQUIRE(tfx_openssl_sha("orphan", 6, sha) == 0);
	REQUIRE(plant_blob(&f, f.a.tenant, sha, "orphan", 6) == 0);
	/* a stray entry that is not a blob name is reported, never removed */
	snprintf(odd, sizeof(odd), "%lld/%.2s/notes.txt", (long long)f.a.tenant,
		 sha);
	REQUIRE(tfx_backend_put(f.s, odd, "", 0) == 0);

	CHECK(tfx_fsck_lines(f.s, 0, &r) == 2);
	CHECK(r.orphan_files == 1 && r.repaired == 0);
	CHECK(tfx_blob_exists(f.s, f.a.tenant, sha) == 1);
	CHECK(tfx_fsck_lines(f.s, 1, &r) == 3);
	CHECK(r.orphan_files == 1 && r.repaired == 1);
	CHECK(0 == tfx_blob_exists(f.s, f.a.tenant, sha));
	CHECK(tfx_backend_remove(f.s, odd) == 0); /* it was kept */
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);
	CHECK(tfx_blob_files(f.s) == 1);
	if (!th_s3) {
		/* a directory with a blob's name is not a blob: reported,
		 * kept, and the check goes on */
		sfsi_blob_path(f.s, f.a.tenant, sha, p, sizeof(p));
		REQUIRE(mkdir(p, 0755) == 0);
		CHECK(tfx_fsck_lines(f.s, 1, &r) == 1);
		CHECK(r.orphan_files == 0 && r.repaired == 0);
		CHECK(access(p, F_OK) == 0);
	}
	fx_close(&f);
}

static void test_fsck_missing_file(void)
{
	unsigned char buf[1000];
	char id1[SFS_ID_SIZE], id2[SFS_ID_SIZE], id3[SFS_ID_SIZE], sha[65];
	char lsha[65];
	struct sfs_fsck_report r;
	struct sfs_tenant_info ti;
	struct sfs_file fi;
	struct sfs_blob *b = NULL;
	struct sfs_err e;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 21);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", buf, sizeof(buf), id1, sha),
		   SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "b", buf, sizeof(buf), id2, NULL),
		   SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "c", "other", 5, id3, NULL), SFS_OK);
	/* file 3's listening audio is the lost blob too */
	REQUIRE_ST(give_listening(&f, id3, buf, sizeof(buf)), SFS_OK);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == 3);
	REQUIRE(tfx_blob_drop(f.s, f.a.tenant, sha) == 0);

	CHECK(tfx_fsck_lines(f.s, 0, &r) == 1);
	CHECK(r.missing_files == 1 && r.repaired == 0);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == 3);
	CHECK(tfx_fsck_lines(f.s, 1, &r) == 2);
	CHECK(r.missing_files == 1 && r.repaired == 1);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == -1);
	/* the files are still there, visibly without content */
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id1, &fi, NULL), SFS_OK);
	CHECK(fi.discarded && fi.discarded_at > 0 && !fi.deleted);
	sfs_file_release(&fi);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id2, &fi, NULL), SFS_OK);
	CHECK(fi.discarded);
	sfs_file_release(&fi);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id3, &fi, NULL), SFS_OK);
	CHECK(!fi.discarded);
	CHECK(fi.la.purged && fi.la.purged_at > 0);
	sfs_strlcpy(lsha, fi.la.sha256, sizeof(lsha));
	sfs_file_release(&fi);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_open(f.s, &f.a, id1, SFS_CONTENT_ORIGINAL, 0, &b,
			       NULL, &e),
		 SFS_GONE);
	CHECK_ST(sfs_file_open(f.s, &f.a, id3, SFS_CONTENT_LISTENING, 0, &b,
			       NULL, NULL),
		 SFS_GONE);
	CHECK_ST(sfs_file_open(f.s, &f.a, id3, SFS_CONTENT_ORIGINAL, 0, &b,
			       NULL, NULL),
		 SFS_OK);
	sfs_blob_close(b);
	REQUIRE_ST(sfs_tenant_get(f.s, f.t1, &ti, NULL), SFS_OK);
	CHECK(ti.used_bytes == 5);
	CHECK(ti.used_files == 3);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);
	/* the discarded files can be deleted and purged normally */
	CHECK_ST(sfs_file_delete(f.s, &f.a, id1, 1, NULL), SFS_OK);
	CHECK_ST(sfs_file_delete(f.s, &f.a, id3, 1, NULL), SFS_OK);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);
	fx_close(&f);
}

static void test_fsck_refcounts(void)
{
	char sha[65], gone[65];
	struct sfs_fsck_report r;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", "same", 4, NULL, sha), SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "b", "same", 4, NULL, NULL), SFS_OK);
	REQUIRE(tfx_sql(f.s, "UPDATE blob SET refs = 7 WHERE sha256 = '%s'",
			sha) == 0);
	/* a row nobody references, with its file */
	REQUIRE(tfx_openssl_sha("nobody", 6, gone) == 0);
	REQUIRE(tfx_sql(f.s,
			"INSERT INTO blob(tenant_id, sha256, size, refs,"
			" created_at) VALUES (%lld, '%s', 6, 1, 0);"
			" UPDATE tenant SET used_bytes = used_bytes + 6"
			" WHERE id = %lld",
			(long long)f.a.tenant, gone,
			(long long)f.a.tenant) == 0);
	REQUIRE(plant_blob(&f, f.a.tenant, gone, "nobody", 6) == 0);

	CHECK(tfx_fsck_lines(f.s, 0, &r) == 2);
	CHECK(r.bad_refcounts == 2 && r.repaired == 0);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == 7);
	CHECK(tfx_fsck_lines(f.s, 1, &r) == 4);
	CHECK(r.bad_refcounts == 2 && r.repaired == 2);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == 2);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, gone) == -1);
	CHECK(0 == tfx_blob_exists(f.s, f.a.tenant, gone));
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);
	fx_close(&f);
}

static void test_fsck_dangling_reference(void)
{
	char id1[SFS_ID_SIZE], id2[SFS_ID_SIZE], s1[65], s2[65];
	struct sfs_fsck_report r;
	struct sfs_file fi;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", "first", 5, id1, s1), SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "b", "second", 6, id2, s2), SFS_OK);
	/* both rows lost; blob 1's file is still there, blob 2's is not */
	REQUIRE(tfx_sql(f.s, "DELETE FROM blob WHERE sha256 IN ('%s', '%s')",
			s1, s2) == 0);
	REQUIRE(tfx_blob_drop(f.s, f.a.tenant, s2) == 0);
	/* file 1's reference, file 2's reference, blob 1's file without a
	 * row, and the tenant's usage */
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 4);
	CHECK(r.bad_refcounts == 2 && r.orphan_files == 1);
	CHECK(tfx_fsck_lines(f.s, 1, &r) >= 4);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, s1) == 1);
	CHECK(tfx_blob_exists(f.s, f.a.tenant, s1) == 1);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id1, &fi, NULL), SFS_OK);
	CHECK(!fi.discarded);
	sfs_file_release(&fi);
	REQUIRE_ST(sfs_file_get(f.s, &f.a, id2, &fi, NULL), SFS_OK);
	CHECK(fi.discarded);
	sfs_file_release(&fi);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);
	fx_close(&f);
}

static void test_fsck_usage(void)
{
	struct sfs_fsck_report r;
	struct sfs_tenant_info ti;
	struct fx f;
	char id[SFS_ID_SIZE];

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", "12345", 5, NULL, NULL), SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "b", "123", 3, id, NULL), SFS_OK);
	/* a purged file does not count */
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, id, 1, NULL), SFS_OK);
	REQUIRE(tfx_sql(f.s, "UPDATE tenant SET used_bytes = 12345,"
			     " used_files = 99") == 0);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 2);
	CHECK(tfx_fsck_lines(f.s, 1, &r) == 4);
	CHECK(r.repaired == 2);
	REQUIRE_ST(sfs_tenant_get(f.s, f.t1, &ti, NULL), SFS_OK);
	CHECK(ti.used_bytes == 5 && ti.used_files == 1);
	REQUIRE_ST(sfs_tenant_get(f.s, f.t2, &ti, NULL), SFS_OK);
	CHECK(ti.used_bytes == 0 && ti.used_files == 0);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);
	fx_close(&f);
}

/*
 * Many rows: the batched walks must see each exactly once (an object
 * store's listing too, a page at a time beside the rows: orphans between
 * them are found, blobs lost between them too).
 */
static void test_fsck_many(void)
{
	struct sfs_file_spec specs[700];
	struct sfs_fsck_report r;
	struct db *d = NULL;
	struct db_stmt *q;
	struct fx f;
	int i, made = 0, removed = 0, orphans = 0;

	REQUIRE(fx_open(&f) == 0);
	memset(specs, 0, sizeof(specs));
	for (i = 0; i < 700; i++)
		specs[i].name = "many";
	REQUIRE_ST(sfs_file_create_many(f.s, &f.a, specs, 700, NULL), SFS_OK);
	/* give each its own one-byte blob, by hand (room between them) */
	REQUIRE(tfx_sql(f.s,
			"UPDATE file SET sha256 = %s, size = 1, blob_ref = 1;"
			" INSERT INTO blob(tenant_id, sha256, size, refs,"
			" created_at) SELECT tenant_id, sha256, 1, 1, 0"
			" FROM file;"
			" UPDATE tenant SET used_bytes = 700 WHERE id = "
			" (SELECT tenant_id FROM file LIMIT 1)",
			th_is_pg() ? "lpad(to_hex(id * 16), 64, '0')"
				   : "printf('%064x', id * 16)") == 0);
	REQUIRE_ST(sfsi_db_get(f.s, &d, NULL), SFS_OK);
	q = sfsi_db_prep(d, "SELECT tenant_id, sha256 FROM blob", NULL);
	while (q && sfsi_db_step(q, NULL) == 1)
		if (plant_blob(&f, sfsi_db_col_int(q, 0),
			       sfsi_db_col_text(q, 1), "x", 1) == 0)
			made++;
	sfsi_db_reset(q);
	sfsi_db_put(d);
	REQUIRE(made == 700);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);
	CHECK(r.blobs_checked == 700);

	/* objects without rows between the rows */
	for (i = 1; i <= 700; i += 17) {
		char sha[65];

		snprintf(sha, sizeof(sha), "%064x", i * 16 + 8);
		if (plant_blob(&f, f.a.tenant, sha, "y", 1) == 0)
			orphans++;
	}
	REQUIRE(orphans == 42);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == orphans);
	CHECK(r.orphan_files == orphans && r.blobs_checked == 700);
	CHECK(tfx_fsck_lines(f.s, 1, &r) == 2 * orphans);
	CHECK(r.repaired == orphans);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);

	/* lose every third blob file */
	for (i = 1; i <= 700; i += 3) {
		char sha[65];

		snprintf(sha, sizeof(sha), "%064x", i * 16);
		if (tfx_blob_drop(f.s, f.a.tenant, sha) == 0)
			removed++;
	}
	CHECK(removed == 234);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == removed);
	CHECK(r.missing_files == removed && r.blobs_checked == 700);
	CHECK(tfx_fsck_lines(f.s, 1, &r) == 2 * removed);
	CHECK(r.repaired == removed);
	CHECK(tfx_sql_int(f.s,
			  "SELECT count(*) FROM file WHERE is_discarded = 1") ==
	      removed);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM file") == 700);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);
	CHECK(r.blobs_checked == 700 - removed);
	fx_close(&f);
}

struct churn {
	const char *dir;
	const char *uid;
	int stop;
	int ops;
	int fails;
};

/* Upload, dedupe and purge on its own handle until told to stop. */
static void *churn_main(void *arg)
{
	struct churn *c = arg;
	struct sfs_store *s = NULL;
	struct sfs_actor a;
	unsigned char buf[3000];
	char ids[8][SFS_ID_SIZE];
	int i = 0;

	if (sfs_store_open(c->dir, tfx_files_only(), &s, NULL) ||
	    sfs_auth_user(s, c->uid, SFS_SCOPE_ALL, &a, NULL)) {
		c->fails++;
		sfs_store_close(s);
		return NULL;
	}
	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED) || i < 16) {
		int k = i % 8;

		if (i >= 8 && sfs_file_delete(s, &a, ids[k], 1, NULL))
			c->fails++;
		tfx_fill(buf, sizeof(buf), (unsigned)(i % 5));
		if (tfx_upload(s, &a, "churn", buf,
			       sizeof(buf) - (size_t)(i % 7), ids[k], NULL))
			c->fails++;
		i++;
	}
	c->ops = i;
	sfs_store_close(s);
	return NULL;
}

/*
 * fsck with repair while another handle commits and removes blobs: it
 * must find nothing and break nothing.
 */
static void test_fsck_concurrent(void)
{
	struct churn c;
	pthread_t th;
	struct fx f;
	int round, lines = 0;

	REQUIRE(fx_open(&f) == 0);
	memset(&c, 0, sizeof(c));
	c.dir = f.dir;
	c.uid = f.u1;
	REQUIRE(pthread_create(&th, NULL, churn_main, &c) == 0);
	for (round = 0; round < 15; round++) {
		int n = tfx_fsck_lines(f.s, 1, NULL);

		lines += n < 0 ? 100 : n;
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	CHECK(c.fails == 0);
	CHECK(c.ops >= 16);
	CHECK(lines == 0);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	CHECK(tfx_rows_without_blob(f.s) == 0);
	fx_close(&f);
}

struct fsck_run {
	struct sfs_store *s;
	struct sfs_fsck_report r;
	int lines;
};

static void *fsck_main(void *p)
{
	struct fsck_run *x = p;

	x->lines = tfx_fsck_lines(x->s, 1, &x->r);
	return NULL;
}

/*
 * A transaction holds the write turn with a row (k); fsck's repair run
 * queues behind it: its first wait must be for a turn of its own (the
 * holder's group then ends with 1 member). The fsck found and repaired
 * what it was given.
 */
static void fsck_behind(struct fx *f, int k)
{
	int64_t c0, j0, c1, j1;
	struct fsck_run x;
	struct db *d = NULL;
	int member, plain;
	pthread_t th;
	char sql[64];

	memset(&x, 0, sizeof(x));
	x.s = f->s;
	REQUIRE_ST(sfsi_db_get(f->s, &d, NULL), SFS_OK);
	REQUIRE_ST(sfsi_db_begin(d, NULL), SFS_OK);
	snprintf(sql, sizeof(sql), "INSERT INTO t_one VALUES (%d)", k);
	REQUIRE_ST(sfsi_db_exec(d, sql, NULL), SFS_OK);
	REQUIRE(pthread_create(&th, NULL, fsck_main, &x) == 0);
	CHECK(tfx_wait_for(tfx_one_waits, f->s, 30000));
	tfx_turn_waits(f->s, &member, &plain);
	CHECK(member == 0 && plain == 1);
	tfx_grp_counts(f->s, &c0, &j0);
	CHECK_ST(sfsi_db_commit(d, NULL), SFS_OK);
	sfsi_db_put(d);
	pthread_join(th, NULL);
	tfx_grp_counts(f->s, &c1, &j1);
	CHECK(c1 - c0 >= 1 && j1 - j0 >= 1);
	CHECK(x.lines >= 2 && x.r.repaired >= 1);
	CHECK(tfx_sql_int(f->s, "SELECT count(*) FROM t_one") == k + 1);
}

/*
 * fsck's confirmations under the write lock ask the backend whether a
 * blob's bytes are there (its stat: an S3 HEAD): a wrong reference count
 * (confirm_row), an object without a row (check_file), a file row whose
 * blob row is gone (confirm_dangling). Each takes a turn of its own and
 * never joins a group of commits, whose members done before it would
 * wait for the backend too (review s13 finding 3's question).
 */
static void test_fsck_confirms_not_in_a_group(void)
{
	char sha[65], orphan[65];
	struct fx f;

	if (th_is_pg())
		return; /* no groups there */
	REQUIRE(fx_open(&f) == 0);
	f.s->grp_hold_ms = 3600000; /* the group is not ended by its age */
	REQUIRE(tfx_sql(f.s, "CREATE TABLE t_one (k INTEGER PRIMARY KEY)") ==
		0);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", "counted", 7, NULL, sha), SFS_OK);
	REQUIRE(tfx_sql(f.s, "UPDATE blob SET refs = 7 WHERE sha256 = '%s'",
			sha) == 0);
	fsck_behind(&f, 0);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == 1);
	REQUIRE(tfx_openssl_sha("orphan", 6, orphan) == 0);
	REQUIRE(plant_blob(&f, f.a.tenant, orphan, "orphan", 6) == 0);
	fsck_behind(&f, 1);
	CHECK(0 == tfx_blob_exists(f.s, f.a.tenant, orphan));
	REQUIRE(tfx_sql(f.s, "DELETE FROM blob WHERE sha256 = '%s'", sha) == 0);
	fsck_behind(&f, 2);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == 1);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	if (th_blob_setup()) /* SFS_BLOB_BACKEND */
		return 1;
	RUN(test_fsck_clean_and_counts);
	RUN(test_fsck_orphan);
	RUN(test_fsck_missing_file);
	RUN(test_fsck_refcounts);
	RUN(test_fsck_dangling_reference);
	RUN(test_fsck_usage);
	RUN(test_fsck_many);
	RUN(test_fsck_concurrent);
	RUN(test_fsck_confirms_not_in_a_group);
	return th_report();
}
