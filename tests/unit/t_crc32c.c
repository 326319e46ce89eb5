/*
 * CRC32C (core/crc32c.c) against RFC 3720's vectors (B.4), and a stage's
 * CRC32C (what the daemon answers an upload with, what a remote mount
 * checks it against) on each of its ways: written in order inline
 * (small), in order through the pipe's hasher thread (past 4 MiB), out
 * of order (read back at finish), and without SHA-256 (crc_only, a
 * remote mount's stage whose server answers the CRC32C).
 */
#include <stdint.h>
#include <string.h>
#include "crc32c_i.h"
#include "fixture.h"
#include "stage_i.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "testhelp.h"

#define MIB (1 << 20)
#define SIZE (13 * MIB + 4321) /* past stage.c's PIPE_START (4 MiB) */

static unsigned char data[SIZE];

static void test_rfc3720_vectors(void)
{
	unsigned char b[32];
	int i;

	memset(b, 0, sizeof(b));
	CHECK(sfsi_crc32c(0, b, 32) == 0x8A9136AAu);
	memset(b, 0xff, sizeof(b));
	CHECK(sfsi_crc32c(0, b, 32) == 0x62A8AB43u);
	for (i = 0; i < 32; i++)
		b[i] = (unsigned char)i;
	CHECK(sfsi_crc32c(0, b, 32) == 0x46DD794Eu);
	for (i = 0; i < 32; i++)
		b[i] = (unsigned char)(31 - i);
	CHECK(sfsi_crc32c(0, b, 32) == 0x113FDB5Cu);
	CHECK(sfsi_crc32c(0, "123456789", 9) == 0xE3069283u);
	CHECK(sfsi_crc32c(0, "", 0) == 0);
}

/* In pieces of any size (odd ones, unaligned): the CRC32C of the whole. */
static void test_pieces_continue(void)
{
	uint32_t whole, c = 0;
	size_t at = 0, n = 1;

	tfx_fill(data, SIZE, 3);
	whole = sfsi_crc32c(0, data, SIZE);
	while (at < SIZE) {
		if (n > SIZE - at)
			n = SIZE - at;
		c = sfsi_crc32c(c, data + at, n);
		at += n;
		n = n * 3 + 1;
	}
	CHECK(c == whole);
	CHECK(sfsi_crc32c(sfsi_crc32c(0, "1234", 4), "56789", 5) ==
	      0xE3069283u);
}

enum way { IN_ORDER, OUT_OF_ORDER };

/* A stage of len bytes of data written that way; its sums checked. */
static void stage_sums(struct sfs_store *s, size_t len, enum way way,
		       int crc_only)
{
	struct sfs_stage *st = NULL;
	struct sfs_err e;
	char want[65];
	size_t at, n;

	REQUIRE_ST(sfs_stage_new(s, &st, NULL), SFS_OK);
	st->crc_only = crc_only;
	if (way == OUT_OF_ORDER && len > 1) {
		/* the second half first, then the first */
		CHECK_ST(sfs_stage_pwrite(st, data + len / 2, len - len / 2,
					  (int64_t)(len / 2), NULL),
			 SFS_OK);
		CHECK_ST(sfs_stage_pwrite(st, data, len / 2, 0, NULL), SFS_OK);
	} else {
		for (at = 0; at < len; at += n) {
			n = len - at < 100000 ? len - at : 100000;
			CHECK_ST(sfs_stage_write(st, data + at, n, NULL),
				 SFS_OK);
		}
	}
	/* what a client sent with the bytes, checked before the commit's
	 * finish (the daemon's order): another CRC32C is refused */
	sfs_err_init(&e);
	CHECK_ST(sfs_stage_check_crc32c(st, sfsi_crc32c(0, data, len) ^ 1, &e),
		 SFS_INVALID);
	CHECK(e.reason == SFS_R_CHECKSUM_MISMATCH);
	CHECK(!strcmp(sfs_reason_name(e.reason), "checksum_mismatch"));
	CHECK_ST(sfs_stage_check_crc32c(st, sfsi_crc32c(0, data, len), NULL),
		 SFS_OK);
	CHECK_ST(sfs_stage_finish(st, NULL), SFS_OK);
	CHECK(sfs_stage_size(st) == (int64_t)len);
	CHECK(sfs_stage_crc32c(st) == sfsi_crc32c(0, data, len));
	if (crc_only) {
		CHECK(sfs_stage_sha256(st) == NULL);
	} else {
		REQUIRE(tfx_openssl_sha(data, len, want) == 0);
		CHECK(sfs_stage_sha256(st) &&
		      !strcmp(sfs_stage_sha256(st), want));
	}
	sfs_stage_free(st);
}

static void test_stage_crc32c_every_way(void)
{
	static const size_t lens[] = { 0, 1, 9, 70000, SIZE };
	struct sfs_store *s = NULL;
	char *dir = NULL;
	unsigned i, way, only;

	REQUIRE(tfx_store(&dir, &s, tfx_files_only()) == 0);
	tfx_fill(data, SIZE, 7);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (way = IN_ORDER; way <= OUT_OF_ORDER; way++)
			for (only = 0; only < 2; only++)
				stage_sums(s, lens[i], (enum way)way,
					   (int)only);
	tfx_store_close(&dir, &s);
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_WARN);
	RUN(test_rfc3720_vectors);
	RUN(test_pieces_continue);
	RUN(test_stage_crc32c_every_way);
	return th_report();
}
