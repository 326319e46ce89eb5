/*
 * Tests of the blob store: stages (sequential and random writes, limits,
 * hashes checked against openssl(1)), dedupe with reference counts, tenant
 * isolation, recovery of dead processes' staging, and crash safety of the
 * commit order (simulated crashes and random kills). sfs_fsck has its own
 * tests (t_fsck.c).
 *
 * About internals on purpose: what these tests promise is a state of the
 * store on disk — one file per blob under STORE/blobs/, a reference count
 * per blob row, nothing left in STORE/staging/ — so they read the blob
 * directory, the blob rows and the blob paths (sfsi_blob_path), plant a
 * dead process's staging by hand, and hold a transaction open around
 * sfsi_blob_ref_stage to roll it back.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include "blob_i.h"
#include "db_i.h"
#include "fixture.h"
#include "speechfs/auth.h"
#include "speechfs/blob.h"
#include "speechfs/file.h"
#include "speechfs/fsck.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "store_i.h"
#include "testhelp.h"

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	char *dir;
	struct sfs_store *s;
	char t1[SFS_ID_SIZE], t2[SFS_ID_SIZE];
	char u1[SFS_ID_SIZE], u2[SFS_ID_SIZE];
	struct sfs_actor a; /* tenant 1 */
	struct sfs_actor x; /* tenant 2 */
};

static int fx_actors(struct fx *f)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_auth_user(f->s, f->u1, SFS_SCOPE_ALL, &f->a, &e) ||
	    sfs_auth_user(f->s, f->u2, SFS_SCOPE_ALL, &f->x, &e)) {
		fprintf(stderr, "actors: %s\n", e.message);
		return -1;
	}
	return 0;
}

/*
 * These tests are of the blob files: every blob is one, in every process
 * that opens the store (small blobs kept in their row: t_inline.c), as
 * tfx_files_only() configures it.
 */
static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, tfx_files_only()))
		return -1;
	if (tfx_tenant(f->s, "one", 0, 0, f->t1) ||
	    tfx_tenant(f->s, "two", 0, 0, f->t2) ||
	    tfx_user(f->s, f->t1, "alice", f->u1, NULL) ||
	    tfx_user(f->s, f->t2, "xavier", f->u2, NULL))
		return -1;
	return fx_actors(f);
}

static int fx_reopen(struct fx *f)
{
	struct sfs_err e;

	sfs_err_init(&e);
	sfs_store_close(f->s);
	f->s = NULL;
	if (sfs_store_open(f->dir, tfx_files_only(), &f->s, &e)) {
		fprintf(stderr, "reopen: %s\n", e.message);
		return -1;
	}
	return fx_actors(f);
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
}

/* ---- stages ------------------------------------------------------------- */

static void test_stage_write_hash(void)
{
	static unsigned char buf[300 * 1024 + 7];
	struct sfs_stage *st = NULL;
	char want[65];
	struct fx f;
	size_t off;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 1);
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	CHECK(tfx_staging_files(f.dir) == 1);
	CHECK(sfs_stage_sha256(st) == NULL);
	/* uneven chunks across the 128 KiB read buffer */
	for (off = 0; off < sizeof(buf); off += 4099) {
		size_t n = sizeof(buf) - off < 4099 ? sizeof(buf) - off : 4099;

		CHECK_ST(sfs_stage_write(st, buf + off, n, NULL), SFS_OK);
	}
	CHECK(sfs_stage_size(st) == (int64_t)sizeof(buf));
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	REQUIRE(tfx_openssl_sha(buf, sizeof(buf), want) == 0);
	REQUIRE(sfs_stage_sha256(st) != NULL);
	CHECK(!strcmp(sfs_stage_sha256(st), want));
	CHECK_ST(sfs_stage_write(st, "x", 1, NULL), SFS_CONFLICT);
	CHECK_ST(sfs_stage_pwrite(st, "x", 1, 0, NULL), SFS_CONFLICT);
	CHECK_ST(sfs_stage_truncate(st, 0, NULL), SFS_CONFLICT);
	sfs_stage_free(st);
	CHECK(tfx_staging_files(f.dir) == 0);

	/* the empty stage hashes as the empty string */
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	CHECK(!strcmp(sfs_stage_sha256(st),
		      "e3b0c44298fc1c149afbf4c8996fb924"
		      "27ae41e4649b934ca495991b7852b855"));
	sfs_stage_free(st);
	fx_close(&f);
}

static void test_stage_pwrite_truncate(void)
{
	unsigned char want[10000], got[10000];
	struct sfs_stage *st = NULL;
	struct sfs_err e;
	char sha[65];
	size_t n = 0;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(want, sizeof(want), 2);
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	/* out of order: the tail first, then the head, then the middle */
	CHECK_ST(sfs_stage_pwrite(st, want + 6000, 4000, 6000, NULL), SFS_OK);
	CHECK(sfs_stage_size(st) == 10000);
	CHECK_ST(sfs_stage_pwrite(st, want, 3000, 0, NULL), SFS_OK);
	CHECK_ST(sfs_stage_pwrite(st, want + 3000, 3000, 3000, NULL), SFS_OK);
	CHECK_ST(sfs_stage_pread(st, got, sizeof(got), 0, &n, NULL), SFS_OK);
	CHECK(n == sizeof(got) && !memcmp(got, want, sizeof(got)));
	CHECK_ST(sfs_stage_pread(st, got, 100, 9950, &n, NULL), SFS_OK);
	CHECK(n == 50);
	sfs_err_init(&e);
	CHECK_ST(sfs_stage_pwrite(st, want, 1, -1, &e), SFS_INVALID);
	CHECK_ST(sfs_stage_truncate(st, -5, NULL), SFS_INVALID);
	/* shrink, then grow again: the grown part reads as zeros */
	CHECK_ST(sfs_stage_truncate(st, 8000, NULL), SFS_OK);
	CHECK_ST(sfs_stage_truncate(st, 9000, NULL), SFS_OK);
	memset(want + 8000, 0, 2000);
	CHECK(sfs_stage_size(st) == 9000);
	/* a sequential write after random ones appends at the end */
	CHECK_ST(sfs_stage_write(st, "tail", 4, NULL), SFS_OK);
	memcpy(want + 9000, "tail", 4);
	CHECK(sfs_stage_size(st) == 9004);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	REQUIRE(tfx_openssl_sha(want, 9004, sha) == 0);
	REQUIRE(sfs_stage_sha256(st) != NULL);
	CHECK(!strcmp(sfs_stage_sha256(st), sha));
	sfs_stage_free(st);

	/* a pwrite exactly at the end stays sequential and hashes right */
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	CHECK_ST(sfs_stage_pwrite(st, want, 100, 0, NULL), SFS_OK);
	CHECK_ST(sfs_stage_pwrite(st, want + 100, 100, 100, NULL), SFS_OK);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	REQUIRE(tfx_openssl_sha(want, 200, sha) == 0);
	CHECK(!strcmp(sfs_stage_sha256(st), sha));
	sfs_stage_free(st);
	fx_close(&f);
}

static void test_stage_copy_fd(void)
{
	static unsigned char buf[200 * 1024];
	char path[] = "/tmp/sfs-src-XXXXXX", sha[65];
	struct sfs_stage *st = NULL;
	struct fx f;
	int fd;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 3);
	fd = mkstemp(path);
	REQUIRE(fd >= 0);
	unlink(path);
	REQUIRE(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	CHECK_ST(sfs_stage_copy_fd(st, fd, NULL), SFS_OK);
	CHECK(sfs_stage_size(st) == (int64_t)sizeof(buf));
	/* and then modify in place, as the mount does */
	CHECK_ST(sfs_stage_pwrite(st, "ZZ", 2, 1000, NULL), SFS_OK);
	buf[1000] = 'Z';
	buf[1001] = 'Z';
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	REQUIRE(tfx_openssl_sha(buf, sizeof(buf), sha) == 0);
	CHECK(!strcmp(sfs_stage_sha256(st), sha));
	sfs_stage_free(st);

	/* a limit applies to copies too */
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	sfs_stage_set_limit(st, 1000);
	CHECK_ST(sfs_stage_copy_fd(st, fd, NULL), SFS_TOO_LARGE);
	sfs_stage_free(st);
	close(fd);
	fx_close(&f);
}

static void test_stage_limit(void)
{
	unsigned char buf[200];
	struct sfs_stage *st = NULL;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 4);
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	sfs_stage_set_limit(st, 100);
	CHECK_ST(sfs_stage_write(st, buf, 60, NULL), SFS_OK);
	CHECK_ST(sfs_stage_write(st, buf, 41, NULL), SFS_TOO_LARGE);
	CHECK(sfs_stage_size(st) == 60);
	CHECK_ST(sfs_stage_write(st, buf, 40, NULL), SFS_OK);
	CHECK_ST(sfs_stage_write(st, buf, 1, NULL), SFS_TOO_LARGE);
	CHECK_ST(sfs_stage_pwrite(st, buf, 1, 100, NULL), SFS_TOO_LARGE);
	CHECK_ST(sfs_stage_pwrite(st, buf, 10, 95, NULL), SFS_TOO_LARGE);
	CHECK_ST(sfs_stage_pwrite(st, buf, 5, 95, NULL), SFS_OK);
	CHECK_ST(sfs_stage_truncate(st, 101, NULL), SFS_TOO_LARGE);
	CHECK_ST(sfs_stage_truncate(st, 100, NULL), SFS_OK);
	CHECK(sfs_stage_size(st) == 100);
	sfs_stage_free(st);
	fx_close(&f);
}

/*
 * Stages past a few MiB write and hash in worker threads (the pipeline):
 * the same bytes and hash as inline, reads in the middle see every byte
 * written so far, and a switch to random writes or a truncate mid-way
 * still ends with the right hash. Sizes are odd so chunk edges fall
 * inside writes.
 */
#define BIG_STAGE (13 * 1024 * 1024 + 4321)

static int write_pieces(struct sfs_stage *st, const unsigned char *buf,
			size_t from, size_t to, size_t piece)
{
	size_t off, n;

	for (off = from; off < to; off += n) {
		n = to - off < piece ? to - off : piece;
		if (sfs_stage_write(st, buf + off, n, NULL))
			return -1;
	}
	return 0;
}

static int file_is(int fd, const unsigned char *want, size_t n)
{
	static unsigned char got[BIG_STAGE];

	return n <= sizeof(got) && pread(fd, got, n, 0) == (ssize_t)n &&
	       !memcmp(got, want, n);
}

static void test_stage_pipeline(void)
{
	static unsigned char buf[BIG_STAGE], got[70000];
	struct sfs_stage *st = NULL;
	char want[65], sha[65];
	struct fx f;
	size_t n = 0;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 9);
	REQUIRE(tfx_openssl_sha(buf, sizeof(buf), want) == 0);

	/* straight through, in pieces like a multipart parser's */
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	CHECK(write_pieces(st, buf, 0, sizeof(buf), 65519) == 0);
	CHECK(sfs_stage_size(st) == (int64_t)sizeof(buf));
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	REQUIRE(sfs_stage_sha256(st) != NULL);
	CHECK(!strcmp(sfs_stage_sha256(st), want));
	CHECK(file_is(sfs_stage_fd(st), buf, sizeof(buf)));
	sfs_stage_free(st);
	CHECK(tfx_staging_files(f.dir) == 0);

	/* reads in the middle, then more writes: nothing lost or doubled */
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	CHECK(write_pieces(st, buf, 0, 9 << 20, 131072 + 3) == 0);
	CHECK_ST(sfs_stage_pread(st, got, sizeof(got), (9 << 20) - 50000, &n,
				 NULL),
		 SFS_OK);
	CHECK(n == 50000 && !memcmp(got, buf + (9 << 20) - 50000, n));
	CHECK(write_pieces(st, buf, 9 << 20, 11 << 20, 4096) == 0);
	CHECK_ST(sfs_stage_pread(st, got, 10, 0, &n, NULL), SFS_OK);
	CHECK(n == 10 && !memcmp(got, buf, 10));
	CHECK(write_pieces(st, buf, 11 << 20, sizeof(buf), 1 << 20) == 0);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	CHECK(!strcmp(sfs_stage_sha256(st), want));
	CHECK(file_is(sfs_stage_fd(st), buf, sizeof(buf)));
	sfs_stage_free(st);

	/* a random write in the middle of a pipelined stage */
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	CHECK(write_pieces(st, buf, 0, 7 << 20, 50000) == 0);
	CHECK_ST(sfs_stage_pwrite(st, "XY", 2, 12345, NULL), SFS_OK);
	CHECK(write_pieces(st, buf, 7 << 20, sizeof(buf), 50000) == 0);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	memcpy(buf + 12345, "XY", 2);
	REQUIRE(tfx_openssl_sha(buf, sizeof(buf), sha) == 0);
	CHECK(!strcmp(sfs_stage_sha256(st), sha));
	CHECK(file_is(sfs_stage_fd(st), buf, sizeof(buf)));
	sfs_stage_free(st);
	tfx_fill(buf, sizeof(buf), 9);

	/* truncated mid-way, then grown by appends */
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	CHECK(write_pieces(st, buf, 0, 6 << 20, 65536) == 0);
	CHECK_ST(sfs_stage_truncate(st, 5 << 20, NULL), SFS_OK);
	CHECK(write_pieces(st, buf, 5 << 20, sizeof(buf), 65536) == 0);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	CHECK(!strcmp(sfs_stage_sha256(st), want));
	sfs_stage_free(st);

	/* freed mid-pipeline: the workers stop and the file goes */
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	CHECK(write_pieces(st, buf, 0, 10 << 20, 65536) == 0);
	sfs_stage_free(st);
	CHECK(tfx_staging_files(f.dir) == 0);

	/* the limit holds in the pipeline too */
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	sfs_stage_set_limit(st, 6 << 20);
	CHECK(write_pieces(st, buf, 0, 6 << 20, 65536) == 0);
	CHECK_ST(sfs_stage_write(st, buf, 1, NULL), SFS_TOO_LARGE);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	REQUIRE(tfx_openssl_sha(buf, 6 << 20, sha) == 0);
	CHECK(!strcmp(sfs_stage_sha256(st), sha));
	sfs_stage_free(st);
	fx_close(&f);
}

/*
 * A write that fails in the writer thread (here: past RLIMIT_FSIZE, so
 * EFBIG) is reported by a later write or by finish, never a stage that
 * finishes as if complete.
 */
static void test_stage_pipeline_write_error(void)
{
	static unsigned char buf[BIG_STAGE];
	struct sfs_stage *st = NULL;
	struct rlimit old, lim;
	struct sfs_err e;
	struct fx f;
	int failed = 0;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 5);
	REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, SIG_IGN);
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	lim = old;
	lim.rlim_cur = 8 << 20;
	REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	sfs_err_init(&e);
	failed = write_pieces(st, buf, 0, sizeof(buf), 65536) != 0;
	if (!failed)
		failed = sfs_stage_finish(st, &e) != SFS_OK;
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, SIG_DFL);
	CHECK(failed);
	CHECK(sfs_stage_sha256(st) == NULL);
	sfs_stage_free(st);
	CHECK(tfx_staging_files(f.dir) == 0);
	fx_close(&f);
}

/* ---- dedupe and references ---------------------------------------------- */

static void test_dedupe(void)
{
	unsigned char buf[5000], back[6000];
	char id1[SFS_ID_SIZE], id2[SFS_ID_SIZE], id3[SFS_ID_SIZE];
	char sha1[65], sha2[65], sha3[65];
	struct sfs_tenant_info ti;
	size_t got = 0;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 5);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "one", buf, sizeof(buf), id1, sha1),
		   SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "two", buf, sizeof(buf), id2, sha2),
		   SFS_OK);
	CHECK(strcmp(id1, id2) != 0);
	CHECK(!strcmp(sha1, sha2));
	CHECK(tfx_blob_files(f.s) == 1);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha1) == 2);
	CHECK(tfx_staging_files(f.dir) == 0);
	REQUIRE_ST(sfs_tenant_get(f.s, f.t1, &ti, NULL), SFS_OK);
	CHECK(ti.used_bytes == (int64_t)sizeof(buf));
	CHECK(ti.used_files == 2);
	/* a third file with other bytes is another blob */
	buf[0] ^= 1;
	REQUIRE_ST(tfx_upload(f.s, &f.a, "three", buf, sizeof(buf), id3, sha3),
		   SFS_OK);
	buf[0] ^= 1;
	CHECK(strcmp(sha3, sha1) != 0);
	CHECK(tfx_blob_files(f.s) == 2);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha3) == 1);

	/* releasing one of the two keeps the blob */
	CHECK_ST(sfs_file_delete(f.s, &f.a, id1, 1, NULL), SFS_OK);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha1) == 1);
	CHECK(tfx_blob_exists(f.s, f.a.tenant, sha1) == 1);
	CHECK_ST(tfx_read(f.s, &f.a, id2, SFS_CONTENT_ORIGINAL, back,
			  sizeof(back), &got),
		 SFS_OK);
	CHECK(got == sizeof(buf) && !memcmp(back, buf, got));
	REQUIRE_ST(sfs_tenant_get(f.s, f.t1, &ti, NULL), SFS_OK);
	CHECK(ti.used_bytes == 2 * (int64_t)sizeof(buf));
	CHECK(ti.used_files == 2);
	/* releasing both removes the row and, after the commit, the file */
	CHECK_ST(sfs_file_discard(f.s, &f.a, id2, NULL), SFS_OK);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha1) == -1);
	CHECK(0 == tfx_blob_exists(f.s, f.a.tenant, sha1));
	CHECK(tfx_blob_exists(f.s, f.a.tenant, sha3) == 1);
	CHECK(tfx_blob_files(f.s) == 1);
	REQUIRE_ST(sfs_tenant_get(f.s, f.t1, &ti, NULL), SFS_OK);
	CHECK(ti.used_bytes == (int64_t)sizeof(buf));
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);

	/* the same bytes again make the blob anew */
	REQUIRE_ST(tfx_upload(f.s, &f.a, "four", buf, sizeof(buf), NULL, sha2),
		   SFS_OK);
	CHECK(!strcmp(sha2, sha1));
	CHECK(tfx_blob_exists(f.s, f.a.tenant, sha1) == 1);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha1) == 1);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

/* Uploading the bytes of a blob whose file was lost brings it back. */
static void test_dedupe_heals(void)
{
	unsigned char buf[700];
	char id1[SFS_ID_SIZE], id2[SFS_ID_SIZE], sha[65];
	unsigned char back[800];
	struct sfs_blob *b = NULL;
	size_t got = 0;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 31);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", buf, sizeof(buf), id1, sha),
		   SFS_OK);
	REQUIRE(tfx_blob_drop(f.s, f.a.tenant, sha) == 0);
	/* the row says there is content; the backend has none */
	if (sfs_file_open(f.s, &f.a, id1, SFS_CONTENT_ORIGINAL, 0, &b, NULL,
			  NULL) == SFS_OK) {
		/* kept elsewhere: the bytes are looked for when read */
		CHECK(th_s3);
		CHECK(sfs_blob_pread(b, back, sizeof(back), 0, &got, NULL) !=
		      SFS_OK);
		sfs_blob_close(b);
	}
	REQUIRE_ST(tfx_upload(f.s, &f.a, "b", buf, sizeof(buf), id2, NULL),
		   SFS_OK);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == 2);
	CHECK_ST(tfx_read(f.s, &f.a, id1, SFS_CONTENT_ORIGINAL, back,
			  sizeof(back), &got),
		 SFS_OK);
	CHECK(got == sizeof(buf) && !memcmp(back, buf, got));
	CHECK_ST(tfx_read(f.s, &f.a, id2, SFS_CONTENT_ORIGINAL, back,
			  sizeof(back), &got),
		 SFS_OK);
	CHECK(got == sizeof(buf));
	CHECK(tfx_staging_files(f.dir) == 0);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

static void test_tenants_do_not_share(void)
{
	unsigned char buf[3000];
	char sa[65], sx[65], ida[SFS_ID_SIZE];
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 6);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", buf, sizeof(buf), ida, sa),
		   SFS_OK);
	REQUIRE_ST(tfx_upload(f.s, &f.x, "x", buf, sizeof(buf), NULL, sx),
		   SFS_OK);
	CHECK(!strcmp(sa, sx));
	CHECK(f.a.tenant != f.x.tenant);
	CHECK(tfx_blob_files(f.s) == 2);
	CHECK(tfx_blob_exists(f.s, f.a.tenant, sa) == 1);
	CHECK(tfx_blob_exists(f.s, f.x.tenant, sx) == 1);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sa) == 1);
	CHECK(tfx_blob_refs(f.s, f.x.tenant, sx) == 1);
	/* purging one tenant's file leaves the other's blob alone */
	CHECK_ST(sfs_file_delete(f.s, &f.a, ida, 1, NULL), SFS_OK);
	CHECK(0 == tfx_blob_exists(f.s, f.a.tenant, sa));
	CHECK(tfx_blob_exists(f.s, f.x.tenant, sx) == 1);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

static void count_lent(void *arg, const void *data, size_t len)
{
	(void)data;
	*(size_t *)arg += len;
}

static void test_blob_open(void)
{
	size_t lent;
	unsigned char buf[4096], back[5000];
	char sha[65], *url = NULL;
	struct sfs_blob *b = NULL;
	struct sfs_err e;
	size_t got = 0;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 7);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", buf, sizeof(buf), NULL, sha),
		   SFS_OK);
	REQUIRE_ST(sfs_blob_open(f.s, f.a.tenant, sha, 0, &b, NULL), SFS_OK);
	CHECK(sfs_blob_size(b) == (int64_t)sizeof(buf));
	/*
	 * a local file's reads wait for nothing far away; an object's
	 * (S3) wait for its block until it is fetched
	 */
	CHECK(sfs_blob_ready(b, 0, sizeof(buf)) == (sfs_blob_fd(b) >= 0));
	CHECK(sfs_blob_ready(b, sizeof(buf), 10)); /* past the end */
	CHECK(!sfs_blob_ready(NULL, 0, 1));
	CHECK_ST(sfs_blob_pread(b, back, sizeof(back), 0, &got, NULL), SFS_OK);
	CHECK(sfs_blob_ready(b, 0, sizeof(buf)));
	CHECK(sfs_blob_ready(b, 100, 1 << 20));
	CHECK(got == sizeof(buf) && !memcmp(back, buf, sizeof(buf)));
	CHECK_ST(sfs_blob_pread(b, back, 10, 4090, &got, NULL), SFS_OK);
	CHECK(got == 6 && !memcmp(back, buf + 4090, 6));
	CHECK_ST(sfs_blob_pread(b, back, 10, 4096, &got, NULL), SFS_OK);
	CHECK(got == 0);
	/* an object's block is lent where it lies; a local file has none */
	lent = 0;
	CHECK_ST(sfs_blob_lend(b, 4000, 200, count_lent, &lent, NULL),
		 th_s3 ? SFS_OK : SFS_UNSUPPORTED);
	CHECK(lent == (th_s3 ? 96 : 0));
	if (th_s3) {
		/* an object: no descriptor, a presigned URL of its key */
		CHECK(sfs_blob_fd(b) == -1);
		CHECK_ST(sfs_blob_url(b, 60, NULL, NULL, &url, NULL), SFS_OK);
		CHECK(url && strstr(url, sha) &&
		      strstr(url, "X-Amz-Signature="));
		free(url);
	} else {
		/* a local file: its descriptor is read-only, and no URL */
		REQUIRE(sfs_blob_fd(b) >= 0);
		CHECK(write(sfs_blob_fd(b), "x", 1) < 0);
		CHECK_ST(sfs_blob_url(b, 60, NULL, NULL, &url, NULL),
			 SFS_UNSUPPORTED);
		CHECK(url == NULL);
	}
	sfs_blob_close(b);
	b = NULL;
	/* another tenant's view of the same sha has no blob */
	sfs_err_init(&e);
	CHECK_ST(sfs_blob_open(f.s, f.x.tenant, sha, 0, &b, &e), SFS_GONE);
	CHECK(b == NULL);
	CHECK_ST(sfs_blob_open(f.s, f.a.tenant, "../../speechfs.db", 0, &b,
			       NULL),
		 SFS_INVALID);
	CHECK_ST(sfs_blob_open(f.s, f.a.tenant, "ABCD", 0, &b, NULL),
		 SFS_INVALID);
	fx_close(&f);
}

/* Every byte of (tenant, sha) through the block cache into back. */
static int read_cached(struct sfs_store *s, int64_t tenant, const char *sha,
		       unsigned char *back, size_t len)
{
	struct sfs_blob *b = NULL;
	size_t got = 1, off = 0;

	if (sfs_blob_open(s, tenant, sha, SFS_BLOB_CACHED, &b, NULL))
		return -1;
	while (off < len && got > 0) {
		if (sfs_blob_pread(b, back + off, len - off, off, &got, NULL))
			break;
		off += got;
	}
	sfs_blob_close(b);
	return off == len ? 0 : -1;
}

/*
 * An object's blocks cached at one size are not taken for blocks of
 * another (blob.s3.block_size_mb changed over a kept cache): with 1 MiB
 * and then 2 MiB blocks, the new block 1 (bytes 2-3 MiB) has the length
 * of the old block 1 (bytes 1-2 MiB).
 */
static void test_cache_of_another_block_size(void)
{
	enum { LEN = 3 << 20 };
	unsigned char *buf = malloc(LEN), *back = malloc(LEN);
	struct sfs_config c = *tfx_files_only();
	char sha[65];
	struct fx f;

	REQUIRE(buf && back);
	memset(&f, 0, sizeof(f));
	c.blob_s3_block_size_mb = 1;
	REQUIRE(tfx_store(&f.dir, &f.s, &c) == 0);
	REQUIRE(tfx_tenant(f.s, "one", 0, 0, f.t1) == 0);
	REQUIRE(tfx_user(f.s, f.t1, "alice", f.u1, &f.a) == 0);
	tfx_fill(buf, LEN, 41);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "a", buf, LEN, NULL, sha), SFS_OK);
	CHECK(read_cached(f.s, f.a.tenant, sha, back, LEN) == 0);
	CHECK(!memcmp(back, buf, LEN));
	/* the same store and cache, blocks of 2 MiB */
	c = *sfs_store_config(f.s);
	c.blob_s3_block_size_mb = 2;
	sfs_store_close(f.s);
	f.s = NULL;
	REQUIRE_ST(sfs_store_open(f.dir, &c, &f.s, NULL), SFS_OK);
	memset(back, 0, LEN);
	CHECK(read_cached(f.s, f.a.tenant, sha, back, LEN) == 0);
	CHECK(!memcmp(back, buf, LEN));
	fx_close(&f);
	free(buf);
	free(back);
}

/*
 * A transaction that linked a new blob and then rolled back leaves no
 * file once the stage is freed; unless a commit made the blob meanwhile.
 */
static void test_rollback_unlinks(void)
{
	unsigned char buf[500];
	struct sfs_stage *st;
	struct db *d = NULL;
	int64_t added = -1;
	char sha[65];
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 30);
	st = tfx_stage(f.s, buf, sizeof(buf));
	REQUIRE(st);
	REQUIRE_ST(sfsi_db_get(f.s, &d, NULL), SFS_OK);
	REQUIRE_ST(sfsi_db_begin(d, NULL), SFS_OK);
	CHECK_ST(sfsi_blob_ref_stage(d, f.a.tenant, st, &added, NULL), SFS_OK);
	CHECK(added == (int64_t)sizeof(buf));
	sfs_strlcpy(sha, sfs_stage_sha256(st), sizeof(sha));
	CHECK(tfx_blob_exists(f.s, f.a.tenant, sha) == 1);
	sfsi_db_rollback(d);
	sfsi_db_put(d);
	sfs_stage_free(st);
	CHECK(0 == tfx_blob_exists(f.s, f.a.tenant, sha));
	CHECK(tfx_blob_files(f.s) == 0);
	CHECK(tfx_staging_files(f.dir) == 0);

	/* rolled back, but the same bytes were committed since */
	st = tfx_stage(f.s, buf, sizeof(buf));
	REQUIRE(st);
	d = NULL;
	REQUIRE_ST(sfsi_db_get(f.s, &d, NULL), SFS_OK);
	REQUIRE_ST(sfsi_db_begin(d, NULL), SFS_OK);
	CHECK_ST(sfsi_blob_ref_stage(d, f.a.tenant, st, &added, NULL), SFS_OK);
	sfsi_db_rollback(d);
	sfsi_db_put(d);
	CHECK_ST(tfx_upload(f.s, &f.a, "same", buf, sizeof(buf), NULL, NULL),
		 SFS_OK);
	sfs_stage_free(st);
	CHECK(tfx_blob_exists(f.s, f.a.tenant, sha) == 1);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, sha) == 1);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

/* ---- staging recovery ---------------------------------------------------- */

static void test_stale_staging(void)
{
	char dead[4096], p[4096], orphan_sha[65];
	struct sfs_store *s2 = NULL;
	struct sfs_stage *live = NULL;
	unsigned char buf[100];
	struct fx f;
	int fd;

	REQUIRE(fx_open(&f) == 0);
	/* a second handle (a live process) with a stage in progress */
	REQUIRE_ST(sfs_store_open(f.dir, tfx_files_only(), &s2, NULL), SFS_OK);
	REQUIRE_ST(sfs_stage_new(s2, &live, NULL), SFS_OK);
	REQUIRE_ST(sfs_stage_write(live, "live", 4, NULL), SFS_OK);

	/* a dead process's staging: an upload part and a named stage whose
	 * blob was linked but whose commit never happened */
	snprintf(dead, sizeof(dead), "%s/staging/999999-deadbeef0000", f.dir);
	REQUIRE(mkdir(dead, 0700) == 0);
	snprintf(p, sizeof(p), "%s/lock", dead);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	REQUIRE(fd >= 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/0123456789abcdef.part", dead);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, "partial", 7) == 7);
	close(fd);
	tfx_fill(buf, sizeof(buf), 8);
	REQUIRE(tfx_openssl_sha(buf, sizeof(buf), orphan_sha) == 0);
	snprintf(p, sizeof(p), "%s/%lld-%s.stage", dead, (long long)f.a.tenant,
		 orphan_sha);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	close(fd);
	REQUIRE(tfx_blob_plant(f.s, f.a.tenant, orphan_sha, buf, sizeof(buf)) ==
		0);
	CHECK(tfx_staging_files(f.dir) == 3);
	CHECK(tfx_blob_files(f.s) == 1);

	REQUIRE(fx_reopen(&f) == 0);
	CHECK(access(dead, F_OK) < 0 && errno == ENOENT);
	CHECK(tfx_blob_files(f.s) == 0);
	/* the live handle's stage is untouched and still commits */
	CHECK(tfx_staging_files(f.dir) == 1);
	{
		struct sfs_file_spec sp = { .name = "live" };
		struct sfs_file out;

		CHECK_ST(sfs_file_create(s2, &f.a, &sp, live, &out, NULL),
			 SFS_OK);
		CHECK(out.size == 4);
		sfs_file_release(&out);
	}
	sfs_stage_free(live);
	sfs_store_close(s2);
	CHECK(tfx_staging_files(f.dir) == 0);
	CHECK(tfx_blob_files(f.s) == 1);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

struct opener {
	const char *dir;
	int fails;
};

static void *opener_main(void *arg)
{
	struct opener *o = arg;
	int i;

	for (i = 0; i < 60; i++) {
		struct sfs_store *s = NULL;
		struct sfs_stage *st = NULL;
		struct sfs_err e;

		sfs_err_init(&e);
		if (sfs_store_open(o->dir, tfx_files_only(), &s, &e)) {
			fprintf(stderr, "open %d: %s\n", i, e.message);
			o->fails++;
			continue;
		}
		if (sfs_stage_new(s, &st, &e) ||
		    sfs_stage_write(st, "x", 1, &e) ||
		    sfs_stage_finish(st, &e)) {
			fprintf(stderr, "stage %d: %s\n", i, e.message);
			o->fails++;
		}
		sfs_stage_free(st);
		sfs_store_close(s);
	}
	return NULL;
}

/*
 * Handles opening at the same moment: one's recovery must never take the
 * other's staging directory, just made, for a dead process's.
 */
static void test_concurrent_opens(void)
{
	struct opener o[4];
	pthread_t th[4];
	char fresh[4096], stale[4096], p[4096];
	struct timeval old[2] = { { 1000, 0 }, { 1000, 0 } };
	struct fx f;
	int i, fails = 0;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 4; i++) {
		o[i].dir = f.dir;
		o[i].fails = 0;
		REQUIRE(pthread_create(&th[i], NULL, opener_main, &o[i]) == 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		fails += o[i].fails;
	}
	CHECK(fails == 0);
	CHECK(tfx_staging_files(f.dir) == 0);

	/* hidden directories of processes caught opening: old ones go */
	snprintf(fresh, sizeof(fresh), "%s/staging/.new-1-aaaa", f.dir);
	snprintf(stale, sizeof(stale), "%s/staging/.new-2-bbbb", f.dir);
	REQUIRE(mkdir(fresh, 0700) == 0 && mkdir(stale, 0700) == 0);
	snprintf(p, sizeof(p), "%s/x.part", stale);
	i = open(p, O_CREAT | O_WRONLY, 0600);
	REQUIRE(i >= 0);
	close(i);
	REQUIRE(utimes(stale, old) == 0);
	REQUIRE(fx_reopen(&f) == 0);
	CHECK(access(stale, F_OK) < 0);
	CHECK(access(fresh, F_OK) == 0);
	fx_close(&f);
}

/* A dead process whose commit did happen: its named stage is cleaned,
 * the committed blob is kept. */
static void test_stale_committed_stage(void)
{
	char dead[4096], p[4096], id[SFS_ID_SIZE], sha[65];
	unsigned char buf[300], back[400];
	size_t got = 0;
	struct fx f;
	int fd;

	REQUIRE(fx_open(&f) == 0);
	tfx_fill(buf, sizeof(buf), 40);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "kept", buf, sizeof(buf), id, sha),
		   SFS_OK);
	snprintf(dead, sizeof(dead), "%s/staging/999998-c0ffee000000", f.dir);
	REQUIRE(mkdir(dead, 0700) == 0);
	snprintf(p, sizeof(p), "%s/%lld-%s.stage", dead, (long long)f.a.tenant,
		 sha);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	close(fd);
	/* (no lock file at all: a process that died long ago) */
	REQUIRE(fx_reopen(&f) == 0);
	CHECK(access(dead, F_OK) < 0);
	CHECK(tfx_blob_exists(f.s, f.a.tenant, sha) == 1);
	CHECK_ST(tfx_read(f.s, &f.a, id, SFS_CONTENT_ORIGINAL, back,
			  sizeof(back), &got),
		 SFS_OK);
	CHECK(got == sizeof(buf) && !memcmp(back, buf, got));
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

/* ---- crash safety -------------------------------------------------------- */

struct kept {
	char id[SFS_ID_SIZE];
	char sha[65];
	unsigned seed;
	size_t n;
};

/* Every committed file reads back with its bytes and hash. */
static int kept_intact(struct fx *f, const struct kept *k, int nk)
{
	static unsigned char want[70000], got[70000];
	char sha[65];
	size_t n = 0;
	int i, bad = 0;

	for (i = 0; i < nk; i++) {
		struct sfs_file fi;

		tfx_fill(want, k[i].n, k[i].seed);
		if (tfx_read(f->s, &f->a, k[i].id, SFS_CONTENT_ORIGINAL, got,
			     sizeof(got), &n) ||
		    n != k[i].n || memcmp(got, want, n)) {
			fprintf(stderr, "  file %s lost its bytes\n", k[i].id);
			bad++;
			continue;
		}
		if (tfx_openssl_sha(got, n, sha) || strcmp(sha, k[i].sha) ||
		    sfs_file_get(f->s, &f->a, k[i].id, &fi, NULL)) {
			bad++;
			continue;
		}
		if (strcmp(fi.sha256, sha) || fi.size != (int64_t)n)
			bad++;
		sfs_file_release(&fi);
	}
	return bad;
}

static int64_t file_rows(struct fx *f)
{
	return tfx_sql_int(f->s, "SELECT count(*) FROM file");
}

/* In a child: open the store, upload (seed, n) with SFS_CRASH_AT set. */
static void child_upload(const char *dir, const char *uid, const char *at,
			 unsigned seed, size_t n, int dedupe)
{
	static unsigned char buf[70000];
	struct sfs_store *s = NULL;
	struct sfs_actor a;

	sfs_log_set_level(SFS_LOG_WARN);
	if (at)
		setenv("SFS_CRASH_AT", at, 1);
	if (sfs_store_open(dir, tfx_files_only(), &s, NULL) ||
	    sfs_auth_user(s, uid, SFS_SCOPE_ALL, &a, NULL))
		_exit(2);
	tfx_fill(buf, n, seed);
	(void)dedupe;
	if (tfx_upload(s, &a, "crash", buf, n, NULL, NULL))
		_exit(3);
	sfs_store_close(s);
	_exit(0);
}

static void crash_at(const char *point, int dedupe)
{
	static unsigned char buf[70000];
	struct kept k[2] = { { "", "", 11, 1000 }, { "", "", 12, 65000 } };
	struct sfs_fsck_report r;
	int i, status = 0;
	struct fx f;
	pid_t pid;

	REQUIRE(fx_open(&f) == 0);
	for (i = 0; i < 2; i++) {
		tfx_fill(buf, k[i].n, k[i].seed);
		REQUIRE_ST(tfx_upload(f.s, &f.a, "kept", buf, k[i].n, k[i].id,
				      k[i].sha),
			   SFS_OK);
	}
	sfs_store_close(f.s);
	f.s = NULL;
	fflush(NULL);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0)
		child_upload(f.dir, f.u1, point, dedupe ? 12 : 13,
			     dedupe ? 65000 : 30000, dedupe);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	/* the crash point was reached: otherwise this tests nothing */
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 77);

	/* before recovery, the dead process's stage is still there */
	CHECK(tfx_staging_files(f.dir) >= 1);
	REQUIRE(fx_reopen(&f) == 0);
	CHECK(kept_intact(&f, k, 2) == 0);
	CHECK(file_rows(&f) == 2);
	CHECK(tfx_blob_files(f.s) == 2);
	CHECK(tfx_staging_files(f.dir) == 0);
	CHECK(tfx_rows_without_blob(f.s) == 0);
	CHECK(tfx_blob_refs(f.s, f.a.tenant, k[1].sha) == 1);
	CHECK(tfx_fsck_lines(f.s, 0, &r) == 0);
	CHECK(r.orphan_files == 0 && r.missing_files == 0 &&
	      r.bad_refcounts == 0);
	CHECK(r.blobs_checked == 2);
	/* and the store works on: the same upload now succeeds */
	tfx_fill(buf, 30000, 13);
	CHECK_ST(tfx_upload(f.s, &f.a, "again", buf, 30000, NULL, NULL),
		 SFS_OK);
	CHECK(tfx_blob_files(f.s) == 3);
	CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
	fx_close(&f);
}

static void test_crash_blob_linked(void)
{
	crash_at("blob-linked", 0);
}

static void test_crash_before_commit(void)
{
	crash_at("file-before-commit", 0);
}

static void test_crash_before_commit_dedupe(void)
{
	crash_at("file-before-commit", 1);
}

/* In a child: upload until killed; a byte on `ready` after the first. */
static void child_uploads(const char *dir, const char *uid, int round,
			  int ready)
{
	static unsigned char buf[70000];
	struct sfs_store *s = NULL;
	struct sfs_actor a;
	unsigned i, sd;
	size_t n;

	sfs_log_set_level(SFS_LOG_WARN);
	if (sfs_store_open(dir, tfx_files_only(), &s, NULL) ||
	    sfs_auth_user(s, uid, SFS_SCOPE_ALL, &a, NULL))
		_exit(2);
	for (i = 0;; i++) {
		/* every fourth upload repeats a blob */
		sd = (unsigned)round * 1000 + (i % 4 == 3 ? 1 : i + 1);
		n = 20000 + sd % 40000;
		tfx_fill(buf, n, sd);
		if (tfx_upload(s, &a, "k", buf, n, NULL, NULL))
			_exit(3);
		if (i == 0 && write(ready, "r", 1) != 1)
			_exit(4);
	}
}

/*
 * Kill an uploading process at random moments: whatever the moment, every
 * row that was committed has its blob, and nothing is left over. A build
 * that commits the row before the blob is durable fails this.
 */
static void test_crash_random_kills(void)
{
	struct fx f;
	int round, status;
	unsigned seed = (unsigned)time(NULL);

	REQUIRE(fx_open(&f) == 0);
	sfs_store_close(f.s);
	f.s = NULL;
	srand(seed);
	for (round = 0; round < 12; round++) {
		struct timespec ts = { 0, (long)(rand() % 80) * 1000000 };
		int fds[2];
		char c;
		pid_t pid;

		REQUIRE(pipe(fds) == 0);
		fflush(NULL);
		pid = fork();
		REQUIRE(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child_uploads(f.dir, f.u1, round, fds[1]);
		}
		close(fds[1]);
		/* wait for a first commit, then kill at a random moment */
		CHECK(read(fds[0], &c, 1) == 1);
		close(fds[0]);
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		REQUIRE(waitpid(pid, &status, 0) == pid);
		CHECK(WIFSIGNALED(status));
	}
	REQUIRE_ST(sfs_store_open(f.dir, tfx_files_only(), &f.s, NULL), SFS_OK);
	REQUIRE(fx_actors(&f) == 0);
	CHECK(tfx_staging_files(f.dir) == 0);
	/* the kills came late enough for commits to happen */
	CHECK(file_rows(&f) >= 12);
	if (getenv("SFS_TEST_VERBOSE"))
		fprintf(stderr, "  %lld files committed\n",
			(long long)file_rows(&f));
	CHECK(tfx_rows_without_blob(f.s) == 0);
	{
		struct sfs_fsck_report r;
		int n = tfx_fsck_lines(f.s, 0, &r);

		/*
		 * A local blob file is unlinked by the next open for good.
		 * An object store may still carry out the PUT a process sent
		 * just before it was killed after the next open removed the
		 * object: then an object without a row is left, at most one
		 * per kill, which fsck finds and --repair removes.
		 */
		CHECK(th_s3 ? n >= 0 && n <= 12 : n == 0);
		CHECK(r.orphan_files == n && r.missing_files == 0 &&
		      r.bad_refcounts == 0);
		if (th_s3 && n > 0) {
			/* (a line found, a line repaired) */
			CHECK(tfx_fsck_lines(f.s, 1, NULL) == 2 * n);
			CHECK(tfx_fsck_lines(f.s, 0, NULL) == 0);
		}
	}
	/* every blob's bytes hash to its name */
	{
		struct db *d = NULL;
		struct db_stmt *q;
		int bad = 0, n = 0;

		REQUIRE_ST(sfsi_db_get(f.s, &d, NULL), SFS_OK);
		q = sfsi_db_prep(d, "SELECT sha256 FROM blob", NULL);
		while (q && sfsi_db_step(q, NULL) == 1) {
			char sha[65];
			struct sfs_blob *b = NULL;

			n++;
			if (sfs_blob_open(f.s, f.a.tenant,
					  sfsi_db_col_text(q, 0), 0, &b,
					  NULL) ||
			    tfx_blob_sha(b, sha) ||
			    strcmp(sha, sfsi_db_col_text(q, 0)))
				bad++;
			sfs_blob_close(b);
		}
		sfsi_db_reset(q);
		sfsi_db_put(d);
		CHECK(bad == 0);
		if (bad)
			fprintf(stderr, "  seed %u\n", seed);
	}
	fx_close(&f);
}

/* ---- group commit and the backend's round trips ------------------------ */

struct writer {
	struct fx *f;
	const unsigned char *buf;
	size_t len;
	char id[SFS_ID_SIZE]; /* set: a new version of it; else a new file */
	int set;
	enum sfs_status st;
};

/* A file with these bytes: a new one, or a new version of w->id. */
static void *writer_run(void *p)
{
	struct writer *w = p;
	struct sfs_stage *st;

	if (!w->set) {
		w->st = tfx_upload(w->f->s, &w->f->a, "big", w->buf, w->len,
				   w->id, NULL);
		return NULL;
	}
	st = tfx_stage(w->f->s, w->buf, w->len);
	w->st = st ? sfs_file_set_content(w->f->s, &w->f->a, w->id, st, 0, NULL,
					  NULL)
		   : SFS_IO;
	sfs_stage_free(st);
	return NULL;
}

/*
 * How a write queued behind a group's transaction takes part: a turn of
 * its own (PLAIN), in the group (MEMBER), or queued to join it and, once
 * its begin has looked, leaving it for a turn of its own (LEAVES: a
 * small content that dedupes against bytes outside a row).
 */
enum part { PLAIN, MEMBER, LEAVES };

/*
 * One round: a transaction holds the turn with a row (k); w's write of a
 * file queues behind it, to join the group or for a turn of its own
 * (how); the transaction's commit ends a group of 2 or of 1. The time
 * that commit took is printed (a measure, not a test: no threshold).
 */
static void queue_behind(struct fx *f, struct writer *w, int k, enum part how)
{
	int member = how == MEMBER;
	int64_t c0, j0, c1, j1, t0;
	static unsigned char back[100001];
	int grp, plain;
	struct db *d = NULL;
	size_t got = 0;
	pthread_t th;
	char sql[64];

	REQUIRE_ST(sfsi_db_get(f->s, &d, NULL), SFS_OK);
	REQUIRE_ST(sfsi_db_begin(d, NULL), SFS_OK);
	snprintf(sql, sizeof(sql), "INSERT INTO t_one VALUES (%d)", k);
	REQUIRE_ST(sfsi_db_exec(d, sql, NULL), SFS_OK);
	REQUIRE(pthread_create(&th, NULL, writer_run, w) == 0);
	CHECK(tfx_wait_for(tfx_one_waits, f->s, 30000));
	tfx_turn_waits(f->s, &grp, &plain);
	CHECK(grp == (how != PLAIN) && plain == (how == PLAIN));
	tfx_grp_counts(f->s, &c0, &j0);
	t0 = sfs_mono_ns();
	CHECK_ST(sfsi_db_commit(d, NULL), SFS_OK);
	printf("# %s: a one-row commit with a %s of %zu bytes queued: %.2f "
	       "ms\n",
	       th_s3 ? "s3" : "local", w->set ? "new version" : "create",
	       w->len, (double)(sfs_mono_ns() - t0) / 1e6);
	sfsi_db_put(d);
	pthread_join(th, NULL);
	CHECK_ST(w->st, SFS_OK);
	tfx_grp_counts(f->s, &c1, &j1);
	CHECK(c1 - c0 == 1 && j1 - j0 == 1 + member);
	CHECK(tfx_sql_int(f->s, "SELECT count(*) FROM t_one") == k + 1);
	CHECK_ST(tfx_read(f->s, &f->a, w->id, SFS_CONTENT_ORIGINAL, back,
			  sizeof(back), &got),
		 SFS_OK);
	CHECK(got == w->len && !memcmp(back, w->buf, got));
}

/*
 * A transaction that references a new content whose bytes are not kept
 * in its row waits for a device or the network under the write lock
 * (local: a link and its directory's fsync; s3: the HEAD that checks the
 * object): it takes a turn of its own and does not join a group, whose
 * members done before it would all wait for it (review s12 finding 2).
 * Small bytes, kept in the row (a store with blobs inline), join.
 */
static void test_blob_io_not_in_a_group(void)
{
	static unsigned char buf[100000];
	struct tfx_one one;
	struct writer w;
	struct fx f;
	int k;

	if (th_is_pg())
		return; /* no groups there */
	REQUIRE(fx_open(&f) == 0);
	f.s->grp_hold_ms = 3600000; /* the group is not ended by its age */
	REQUIRE(tfx_sql(f.s, "CREATE TABLE t_one (k INTEGER PRIMARY KEY)") ==
		0);
	memset(&w, 0, sizeof(w));
	w.f = &f;
	w.buf = buf;
	w.len = sizeof(buf);
	for (k = 0; k < 2; k++) { /* a file, a new version of it */
		tfx_fill(buf, sizeof(buf), 40 + (unsigned)k);
		w.set = k;
		queue_behind(&f, &w, k, PLAIN);
	}
	fx_close(&f);

	REQUIRE(tfx_one_open(&one, NULL) == 0);
	memset(&f, 0, sizeof(f));
	f.s = one.s;
	REQUIRE_ST(sfs_auth_user(one.s, one.user, SFS_SCOPE_ALL, &f.a, NULL),
		   SFS_OK);
	f.s->grp_hold_ms = 3600000;
	REQUIRE(tfx_sql(f.s, "CREATE TABLE t_one (k INTEGER PRIMARY KEY)") ==
		0);
	memset(&w, 0, sizeof(w));
	w.f = &f;
	w.buf = buf;
	w.len = 1000;
	for (k = 0; k < 2; k++) {
		tfx_fill(buf, w.len, 50 + (unsigned)k);
		w.set = k;
		queue_behind(&f, &w, k, MEMBER);
	}
	tfx_one_close(&one);
}

/*
 * A small content that dedupes against a row keeping its bytes outside
 * the database (a store older than inline blobs, one that ran with a
 * lower blobs.inline_max, blob_migrate) makes the backend's stat under
 * the write lock (check_dedupe; the upload again if the bytes went): its
 * transaction takes a turn of its own too (review s13 finding 3). Its
 * begin looks at the row in the group and leaves it, so the group
 * commits without it (the group holds only the one-row transaction). A
 * small content that dedupes against a row holding its bytes joins.
 */
static void test_dedupe_outside_row_not_in_a_group(void)
{
	static unsigned char buf[1000];
	struct sfs_config c;
	struct writer w;
	char sha[2][65];
	struct fx f;
	int k;

	if (th_is_pg())
		return; /* no groups there */
	/* the rows of two small contents made with every blob a file */
	REQUIRE(fx_open(&f) == 0);
	for (k = 0; k < 2; k++) {
		tfx_fill(buf, sizeof(buf), 60 + (unsigned)k);
		REQUIRE_ST(tfx_upload(f.s, &f.a, k ? "old1" : "old0", buf,
				      sizeof(buf), NULL, sha[k]),
			   SFS_OK);
	}
	/* the store opened again, blobs this small now kept in rows */
	c = *sfs_store_config(f.s);
	c.blob_inline_max = 64 * 1024;
	sfs_store_close(f.s);
	f.s = NULL;
	REQUIRE_ST(sfs_store_open(f.dir, &c, &f.s, NULL), SFS_OK);
	REQUIRE(fx_actors(&f) == 0);
	f.s->grp_hold_ms = 3600000; /* the group is not ended by its age */
	REQUIRE(tfx_sql(f.s, "CREATE TABLE t_one (k INTEGER PRIMARY KEY)") ==
		0);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob WHERE data IS NULL"
			       " AND size = 1000") == 2);
	memset(&w, 0, sizeof(w));
	w.f = &f;
	w.buf = buf;
	w.len = sizeof(buf);
	/* a create, then a new version: each dedupes against such a row */
	for (k = 0; k < 2; k++) {
		tfx_fill(buf, sizeof(buf), 60 + (unsigned)k);
		w.set = k;
		queue_behind(&f, &w, k, LEAVES);
		CHECK(tfx_blob_refs(f.s, f.a.tenant, sha[k]) == 2);
	}
	/* a small content whose row holds its bytes: a member again */
	tfx_fill(buf, sizeof(buf), 62);
	REQUIRE_ST(tfx_upload(f.s, &f.a, "new", buf, sizeof(buf), NULL, NULL),
		   SFS_OK);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob WHERE data IS NOT"
			       " NULL AND size = 1000") == 1);
	w.set = 1;
	queue_behind(&f, &w, 2, MEMBER);
	/* the dedupes kept the bytes where they were */
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob WHERE data IS NULL"
			       " AND size = 1000") == 2);
	fx_close(&f);
}

/*
 * In the child of test_batch_remover_keeps_committed_bytes: a store of
 * its own batches, drops the blob's last reference in the open window and
 * runs the remover, as a batch's hook or a failed commit runs it; then it
 * dies within the window. The exit status says how far it came.
 */
static void child_remove_in_window(const char *dir, int64_t tenant,
				   const char *sha)
{
	struct sfs_store *s = NULL;
	struct db *d = NULL;
	int removed = 0;

	sfs_log_set_level(SFS_LOG_WARN);
	if (sfs_store_open(dir, tfx_files_only(), &s, NULL) ||
	    sfs_store_batch(s, 1000, NULL))
		_exit(2);
	if (sfsi_db_get(s, &d, NULL) || sfsi_db_begin(d, NULL) ||
	    sfsi_blob_unref(d, tenant, sha, NULL) || sfsi_db_commit(d, NULL))
		_exit(3);
	sfsi_db_put(d);
	d = NULL;
	if (sfsi_db_get(s, &d, NULL) ||
	    sfsi_blob_remove_unreferenced(d, tenant, sha, &removed, NULL))
		_exit(4);
	_exit(removed ? 5 : 0);
}

/*
 * While the store batches (-o commit=MS), a last reference dropped in the
 * open window and the remover run then (a committed batch's hooks run in
 * the next window): the bytes must stay, because a crash within the
 * window brings the row back (review s13 finding 2). The child is the
 * process that dies within the window. No store crosses the fork: the
 * parent closes its own first (its S3 client's threads with it, which a
 * forked child cannot inherit) and reopens it after.
 */
static void test_batch_remover_keeps_committed_bytes(void)
{
	static char content[100000];
	char *dir = NULL, t[SFS_ID_SIZE], id[SFS_ID_SIZE], sha[65], sql[128];
	struct sfs_store *s = NULL;
	struct sfs_actor a;
	int status = -1;
	pid_t pid;

	if (th_is_pg())
		return; /* no batches there: each commit is PostgreSQL's */
	memset(content, 'x', sizeof(content));
	REQUIRE(tfx_store(&dir, &s, tfx_files_only()) == 0);
	REQUIRE(tfx_tenant(s, "t", 0, 0, t) == 0);
	REQUIRE(tfx_user(s, t, "alice", NULL, &a) == 0);
	REQUIRE(tfx_upload(s, &a, "f", content, sizeof(content), id, sha) == 0);
	REQUIRE(tfx_blob_exists(s, a.tenant, sha) == 1);
	sfs_store_close(s);
	s = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		child_remove_in_window(dir, a.tenant, sha);
	REQUIRE(pid > 0);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the window was lost whole: the row is back, with its bytes */
	REQUIRE_ST(sfs_store_open(dir, tfx_files_only(), &s, NULL), SFS_OK);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM blob WHERE sha256 = '%s'", sha);
	CHECK(tfx_sql_int(s, sql) == 1);
	CHECK(tfx_blob_exists(s, a.tenant, sha) == 1);
	tfx_store_close(&dir, &s);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_WARN);
	if (th_blob_setup()) /* SFS_BLOB_BACKEND */
		return 1;
	RUN(test_stage_write_hash);
	RUN(test_stage_pwrite_truncate);
	RUN(test_stage_copy_fd);
	RUN(test_stage_limit);
	RUN(test_stage_pipeline);
	RUN(test_stage_pipeline_write_error);
	RUN(test_dedupe);
	RUN(test_dedupe_heals);
	RUN(test_tenants_do_not_share);
	RUN(test_blob_open);
	RUN(test_cache_of_another_block_size);
	RUN(test_rollback_unlinks);
	RUN(test_stale_staging);
	RUN(test_stale_committed_stage);
	RUN(test_concurrent_opens);
	RUN(test_crash_blob_linked);
	RUN(test_crash_before_commit);
	RUN(test_crash_before_commit_dedupe);
	RUN(test_crash_random_kills);
	RUN(test_blob_io_not_in_a_group);
	RUN(test_dedupe_outside_row_not_in_a_group);
	RUN(test_batch_remover_keeps_committed_bytes);
	return th_report();
}
