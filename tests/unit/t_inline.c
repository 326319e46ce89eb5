/*
 * Tests of small blobs kept in their row (blobs.inline_max): no file under
 * blobs/, the bytes read back through a file descriptor, deduplicated and
 * counted like other blobs, released with their last reference, checked
 * by fsck, decoded by the listening-audio worker, and a new version that
 * crosses the limit either way. The row's data is looked at on purpose
 * (tfx_sql_int), as is what the backend holds (tfx_blob_files): it runs
 * once per blob backend, as a small blob never reaches either.
 */
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fixture.h"
#include "speechfs/blob.h"
#include "speechfs/file.h"
#include "speechfs/fsck.h"
#include "speechfs/job.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "testhelp.h"

struct fx {
	char *dir;
	struct sfs_store *s;
	char t[SFS_ID_SIZE];
	struct sfs_actor a;
};

static int fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, NULL) ||
	    tfx_tenant(f->s, "t", 0, 0, f->t) ||
	    tfx_user(f->s, f->t, "alice", NULL, &f->a))
		return -1;
	return 0;
}

static void fx_close(struct fx *f)
{
	tfx_store_close(&f->dir, &f->s);
}

static enum sfs_status upload(struct fx *f, const void *data, size_t n,
			      int listening, struct sfs_file *out)
{
	struct sfs_file_spec sp = { .name = "f", .listening = listening };
	struct sfs_stage *st = tfx_stage(f->s, data, n);
	enum sfs_status ret;

	if (!st)
		return SFS_IO;
	ret = sfs_file_create(f->s, &f->a, &sp, st, out, NULL);
	sfs_stage_free(st);
	return ret;
}

/* Blobs the backend holds (files under blobs/, objects of the bucket). */
static int blob_files(struct fx *f)
{
	return tfx_blob_files(f->s);
}

/* The bytes sfs_file_open gives, or -1 (-2: not the blob's size). */
static ssize_t read_back(struct fx *f, const char *id, enum sfs_content which,
			 char *buf, size_t cap)
{
	struct sfs_blob *b = NULL;
	size_t got = 1, n = 0;
	int bad = 0;

	if (sfs_file_open(f->s, &f->a, id, which, 0, &b, NULL, NULL))
		return -1;
	while (n < cap && got && !bad) {
		bad = sfs_blob_pread(b, buf + n, cap - n, (int64_t)n, &got,
				     NULL) != SFS_OK;
		n += got;
	}
	bad = bad || sfs_blob_size(b) != (int64_t)n;
	sfs_blob_close(b);
	return bad ? -2 : (ssize_t)n;
}

static int fsck_clean(struct fx *f, struct sfs_fsck_report *r)
{
	struct sfs_fsck_report mine;

	if (!r)
		r = &mine;
	memset(r, 0, sizeof(*r));
	if (sfs_fsck(f->s, 0, r, NULL, NULL, NULL))
		return 0;
	return !r->orphan_files && !r->missing_files && !r->bad_refcounts;
}

static void test_small_blob_in_its_row(void)
{
	struct sfs_file g;
	char buf[256];
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(upload(&f, "a small recording", 17, 0, &g), SFS_OK);
	CHECK(blob_files(&f) == 0);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob"
			       " WHERE length(data) = 17 AND size = 17") == 1);
	CHECK(read_back(&f, g.id, SFS_CONTENT_ORIGINAL, buf, sizeof(buf)) ==
	      17);
	CHECK(!memcmp(buf, "a small recording", 17));
	CHECK(tfx_sql_int(f.s, "SELECT used_bytes FROM tenant") == 17);
	CHECK(fsck_clean(&f, NULL));
	sfs_file_release(&g);
	fx_close(&f);
}

static void test_dedupe_and_release(void)
{
	struct sfs_file g1, g2;
	char buf[64];
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(upload(&f, "same bytes", 10, 0, &g1), SFS_OK);
	REQUIRE_ST(upload(&f, "same bytes", 10, 0, &g2), SFS_OK);
	CHECK(tfx_sql_int(f.s, "SELECT refs FROM blob") == 2);
	CHECK(tfx_sql_int(f.s, "SELECT used_bytes FROM tenant") == 10);
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, g1.id, 1, NULL), SFS_OK);
	CHECK(tfx_sql_int(f.s, "SELECT refs FROM blob") == 1);
	CHECK(read_back(&f, g2.id, SFS_CONTENT_ORIGINAL, buf, sizeof(buf)) ==
	      10);
	REQUIRE_ST(sfs_file_delete(f.s, &f.a, g2.id, 1, NULL), SFS_OK);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob") == 0);
	CHECK(tfx_sql_int(f.s, "SELECT used_bytes FROM tenant") == 0);
	CHECK(fsck_clean(&f, NULL));
	sfs_file_release(&g1);
	sfs_file_release(&g2);
	fx_close(&f);
}

static void test_versions_across_the_limit(void)
{
	static char big[64 * 1024 + 1];
	struct sfs_stage *st;
	struct sfs_file g;
	char buf[64];
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	memset(big, 'b', sizeof(big));
	/* past the limit: a file under blobs/ */
	REQUIRE_ST(upload(&f, big, sizeof(big), 0, &g), SFS_OK);
	CHECK(blob_files(&f) == 1);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob"
			       " WHERE data IS NULL") == 1);
	/* a small new version: into the row, the file goes */
	st = tfx_stage(f.s, "short now", 9);
	REQUIRE(st);
	CHECK_ST(sfs_file_set_content(f.s, &f.a, g.id, st, 0, NULL, NULL),
		 SFS_OK);
	sfs_stage_free(st);
	CHECK(blob_files(&f) == 0);
	CHECK(read_back(&f, g.id, SFS_CONTENT_ORIGINAL, buf, sizeof(buf)) == 9);
	CHECK(fsck_clean(&f, NULL));
	/* and back past it, without waiting for the disk, then synced */
	st = tfx_stage(f.s, big, sizeof(big));
	REQUIRE(st);
	CHECK_ST(sfs_file_set_content(f.s, &f.a, g.id, st, SFS_SET_NOSYNC, NULL,
				      NULL),
		 SFS_OK);
	sfs_stage_free(st);
	CHECK_ST(sfs_store_sync(f.s, NULL), SFS_OK);
	CHECK(blob_files(&f) == 1);
	CHECK(tfx_sql_int(f.s, "SELECT count(*) FROM blob") == 1);
	CHECK(tfx_sql_int(f.s, "SELECT used_bytes FROM tenant") ==
	      (int64_t)sizeof(big));
	CHECK(fsck_clean(&f, NULL));
	sfs_file_release(&g);
	fx_close(&f);
}

static void test_fsck_sees_a_damaged_row(void)
{
	struct sfs_fsck_report r;
	struct sfs_file g;
	struct fx f;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(upload(&f, "twelve bytes", 12, 0, &g), SFS_OK);
	CHECK(fsck_clean(&f, &r) && r.blobs_checked == 1);
	/* the bytes lost (on purpose): fsck finds a row without its blob */
	CHECK(tfx_sql_int(f.s, "UPDATE blob SET data = NULL RETURNING 1") == 1);
	CHECK(!fsck_clean(&f, &r) && r.missing_files == 1);
	sfs_file_release(&g);
	fx_close(&f);
}

/* The inode of a stage's file under staging/. */
static ino_t stage_ino(struct sfs_stage *st)
{
	struct stat sb;

	return fstat(sfs_stage_fd(st), &sb) == 0 ? sb.st_ino : 0;
}

/*
 * A stage whose bytes went into a row leaves its file, emptied, to the
 * next stage (a new file per stage cost ext4 an inode each, and without
 * a journal a search past every inode freed in the last minutes); a
 * stage that becomes a blob of the backend takes its file along.
 */
static void test_small_stages_reuse_their_file(void)
{
	static char big[64 * 1024 + 1], back[sizeof(big) + 1];
	struct sfs_stage *st;
	struct sfs_file g;
	char buf[64], name[16];
	ino_t first;
	struct fx f;
	int i;

	REQUIRE(fx_open(&f) == 0);
	memset(big, 'b', sizeof(big));
	st = tfx_stage(f.s, "first bytes", 11);
	REQUIRE(st);
	first = stage_ino(st);
	REQUIRE_ST(sfs_file_create(f.s, &f.a,
				   &(struct sfs_file_spec){ .name = "f" }, st,
				   &g, NULL),
		   SFS_OK);
	sfs_stage_free(st);
	CHECK(tfx_staging_files(f.dir) == 1);
	/* the next stage has that file, empty, and writes it from its
	 * start, in order and at an offset */
	REQUIRE_ST(sfs_stage_new(f.s, &st, NULL), SFS_OK);
	CHECK(stage_ino(st) == first);
	CHECK(lseek(sfs_stage_fd(st), 0, SEEK_END) == 0);
	CHECK(sfs_stage_size(st) == 0);
	CHECK_ST(sfs_stage_write(st, "second", 6, NULL), SFS_OK);
	CHECK_ST(sfs_stage_pwrite(st, "S", 1, 0, NULL), SFS_OK);
	CHECK_ST(sfs_file_set_content(f.s, &f.a, g.id, st, 0, NULL, NULL),
		 SFS_OK);
	sfs_stage_free(st);
	CHECK(read_back(&f, g.id, SFS_CONTENT_ORIGINAL, buf, sizeof(buf)) == 6);
	CHECK(!memcmp(buf, "Second", 6));
	/* many small contents one after another: still one file */
	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		CHECK_ST(upload(&f, name, strlen(name), 0, NULL), SFS_OK);
	}
	CHECK(tfx_staging_files(f.dir) == 1);
	/* a big content takes the file into the backend: none is left,
	 * and the next stage (uncommitted) does not touch the blob */
	st = tfx_stage(f.s, big, sizeof(big));
	REQUIRE(st);
	CHECK(stage_ino(st) == first);
	CHECK_ST(sfs_file_set_content(f.s, &f.a, g.id, st, 0, NULL, NULL),
		 SFS_OK);
	sfs_stage_free(st);
	CHECK(tfx_staging_files(f.dir) == 0);
	CHECK(blob_files(&f) == 1);
	st = tfx_stage(f.s, "not kept", 8);
	REQUIRE(st);
	sfs_stage_free(st);
	CHECK(tfx_staging_files(f.dir) == 0);
	CHECK(read_back(&f, g.id, SFS_CONTENT_ORIGINAL, back, sizeof(back)) ==
	      (ssize_t)sizeof(big));
	CHECK(!memcmp(back, big, sizeof(big)));
	CHECK(fsck_clean(&f, NULL));
	/* a spare goes with the store's close */
	CHECK_ST(upload(&f, "spare again", 11, 0, NULL), SFS_OK);
	CHECK(tfx_staging_files(f.dir) == 1);
	sfs_store_close(f.s);
	f.s = NULL;
	CHECK(tfx_staging_files(f.dir) == 0);
	sfs_file_release(&g);
	th_rmrf(f.dir);
}

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v & 0xff);
	p[1] = (unsigned char)(v >> 8 & 0xff);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

/* A mono 16-bit WAV of a tone, small enough to be kept in its row. */
static size_t make_wav(unsigned char *b, size_t frames)
{
	uint32_t rate = 8000, data = (uint32_t)frames * 2;
	size_t i;

	memcpy(b, "RIFF", 4);
	put32(b + 4, 36 + data);
	memcpy(b + 8, "WAVEfmt ", 8);
	put32(b + 16, 16);
	put16(b + 20, 1);
	put16(b + 22, 1);
	put32(b + 24, rate);
	put32(b + 28, rate * 2);
	put16(b + 32, 2);
	put16(b + 34, 16);
	memcpy(b + 36, "data", 4);
	put32(b + 40, data);
	for (i = 0; i < frames; i++)
		put16(b + 44 + 2 * i,
		      (uint16_t)(int16_t)(8000 * sin(2 * M_PI * 440 *
						     (double)i / rate)));
	return 44 + data;
}

static void test_listening_audio_of_a_small_recording(void)
{
	static unsigned char wav[44 + 2 * 16000];
	static char mp3[256 * 1024];
	char id[SFS_ID_SIZE];
	struct sfs_file g;
	struct sfs_err e;
	struct fx f;
	ssize_t n;
	int i;

	REQUIRE(fx_open(&f) == 0);
	REQUIRE_ST(upload(&f, wav, make_wav(wav, 16000), 1, &g), SFS_OK);
	CHECK(blob_files(&f) == 0);
	CHECK(g.duration > 1.9 && g.duration < 2.1);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_workers_start(f.s, 1, &e), SFS_OK);
	for (i = 0; i < 600 && g.la.status != SFS_JS_COMPLETED &&
		    g.la.status != SFS_JS_FAILED;
	     i++) {
		usleep(50 * 1000);
		memcpy(id, g.id, sizeof(id));
		sfs_file_release(&g);
		REQUIRE_ST(sfs_file_get(f.s, &f.a, id, &g, NULL), SFS_OK);
	}
	sfs_workers_stop(f.s);
	CHECK(g.la.status == SFS_JS_COMPLETED);
	n = read_back(&f, g.id, SFS_CONTENT_LISTENING, mp3, sizeof(mp3));
	CHECK(n > 0 && n == g.la.size);
	CHECK(n > 3 && !memcmp(mp3, "ID3", 3));
	CHECK(fsck_clean(&f, NULL));
	sfs_file_release(&g);
	fx_close(&f);
}

int main(void)
{
	if (th_blob_setup()) /* SFS_BLOB_BACKEND */
		return 1;
	RUN(test_small_blob_in_its_row);
	RUN(test_dedupe_and_release);
	RUN(test_versions_across_the_limit);
	RUN(test_fsck_sees_a_damaged_row);
	RUN(test_listening_audio_of_a_small_recording);
	RUN(test_small_stages_reuse_their_file);
	return th_report();
}
