/*
 * Fixtures the unit tests share: a fresh store in a temporary directory,
 * its tenants and users with their actors, files made from bytes, a shell
 * runner for the tests that drive command-line tools; and, in the second
 * half, the few readings of the database and the blob directory for the
 * tests that check, on purpose, what a call left behind.
 */
#ifndef SPEECHFS_TEST_FIXTURE_H
#define SPEECHFS_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include "speechfs/auth.h"
#include "speechfs/file.h"
#include "speechfs/fsck.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"

/* ---- through the public API --------------------------------------------- */

/*
 * Make and open a store in a new temporary directory (cfg may be NULL).
 * 0 on success; otherwise the reason is printed, nothing is left behind
 * and *dir and *s are NULL.
 */
int tfx_store(char **dir, struct sfs_store **s, const struct sfs_config *cfg);

/* Close the store and remove its directory; both become NULL. */
void tfx_store_close(char **dir, struct sfs_store **s);

/*
 * The configuration of tests about blob files: every blob a file, none
 * kept in its row, and bucket listings of several pages whatever the
 * test's size. Built once and shared, so threads may ask at once (one
 * filled afresh while another thread copied it once gave that thread a
 * busy timeout of 0).
 */
const struct sfs_config *tfx_files_only(void);

/* A tenant with quotas (0: none); 0 on success (the reason printed). */
int tfx_tenant(struct sfs_store *s, const char *name, int64_t max_bytes,
	       int64_t max_files, char id[SFS_ID_SIZE]);

/*
 * A user of `tenant` and, when a is not NULL, its actor with every scope;
 * id may be NULL. 0 on success (the reason printed).
 */
int tfx_user(struct sfs_store *s, const char *tenant, const char *name,
	     char *id, struct sfs_actor *a);

/* A store with one tenant ("acme") and one user ("ann") of it. */
struct tfx_one {
	char *dir;
	struct sfs_store *s;
	char tenant[SFS_ID_SIZE];
	char user[SFS_ID_SIZE];
};

/* Make it (cfg may be NULL); 0 on success, else nothing is left. */
int tfx_one_open(struct tfx_one *f, const struct sfs_config *cfg);
void tfx_one_close(struct tfx_one *f);

/* n bytes of a fixed pseudo-random sequence: one seed, the same bytes. */
void tfx_fill(void *p, size_t n, unsigned seed);

/* A stage holding these bytes, NULL on failure. Ownership: sfs_stage_free. */
struct sfs_stage *tfx_stage(struct sfs_store *s, const void *data, size_t n);

/*
 * Create a file named `name` at "/" with these bytes; its id into id and
 * its SHA-256 into sha (each may be NULL). The core's status.
 */
enum sfs_status tfx_upload(struct sfs_store *s, const struct sfs_actor *a,
			   const char *name, const void *data, size_t n,
			   char *id, char *sha);

/*
 * Read up to cap bytes of a file's original or listening content as `a`
 * (sfs_file_open); the count into *got. The core's status, or SFS_IO when
 * the read itself failed.
 */
enum sfs_status tfx_read(struct sfs_store *s, const struct sfs_actor *a,
			 const char *id, enum sfs_content which, void *buf,
			 size_t cap, size_t *got);

/*
 * Complete the pending listening-audio job of file `id` with these MP3
 * bytes, as a worker would (the job is claimed, started and finished).
 */
enum sfs_status tfx_listening_done(struct sfs_store *s,
				   const struct sfs_actor *a, const char *id,
				   const void *mp3, size_t n);

/* SHA-256 of bytes as openssl(1) computes it; 0 on success. */
int tfx_openssl_sha(const void *data, size_t n, char out[65]);

/* Whether e has a validation error on `field` (of `type` unless NULL). */
int tfx_has_field(const struct sfs_err *e, const char *field, const char *type);

/*
 * The lines a check reported (fsck's report callback): tfx_collect
 * counts them into a struct tfx_lines (arg) and keeps the last;
 * SFS_TEST_VERBOSE=1 prints them.
 */
struct tfx_lines {
	int n;
	char last[512];
};
void tfx_collect(void *arg, const char *line);

/*
 * Run sfs_fsck (r may be NULL): the number of lines it reported, -1 when
 * it failed. SFS_TEST_VERBOSE=1 prints the lines.
 */
int tfx_fsck_lines(struct sfs_store *s, int repair, struct sfs_fsck_report *r);

/*
 * Wait until cond(arg) holds, at most ms (a deadline, not a measure),
 * looking every millisecond: 1 when it held, 0 at the deadline.
 */
int tfx_wait_for(int (*cond)(void *), void *arg, int ms);

/* Run a shell command; its exit status (128 when killed, -1 on error). */
int tfx_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- inside the store, on purpose --------------------------------------- */

/*
 * Execute SQL (printf-formatted) on the store's database: for tests that
 * set up a state no public call makes (a lost row, a wrong count, an old
 * timestamp). 0 on success (the reason printed).
 */
int tfx_sql(struct sfs_store *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The first column of the first row of `sql` as an integer (-1 when there
 * is none): for tests that look into the database on purpose.
 */
int64_t tfx_sql_int(struct sfs_store *s, const char *sql);

/*
 * How many rows of `sql` (one column, text or bytes) hold `needle`
 * anywhere in their bytes (-1 on error): a look for a secret stored in
 * plain that works on both backends (the bytes are compared here, not in
 * a dialect's SQL).
 */
int64_t tfx_sql_rows_holding(struct sfs_store *s, const char *sql,
			     const char *needle);

/* The reference count of a blob row; -1 when there is no row. */
int64_t tfx_blob_refs(struct sfs_store *s, int64_t tenant, const char *sha);

/*
 * The blob backend under test (testhelp.h: SFS_BLOB_BACKEND; local files
 * under STORE/blobs/, or objects of the test gateway's bucket), asked
 * through its table: whether blob (tenant, sha) is there, in its row (a
 * small blob) or in the backend (1, 0, -1 when it cannot say); how many
 * blobs the backend holds, rows or not.
 */
int tfx_blob_exists(struct sfs_store *s, int64_t tenant, const char *sha);
int tfx_blob_files(struct sfs_store *s);

/* Lose a blob's bytes behind the store's back; 0 if they were there. */
int tfx_blob_drop(struct sfs_store *s, int64_t tenant, const char *sha);

/*
 * Bytes stored in the backend behind the store's back: under a name of
 * its own ("<tenant>/<aa>/<name>"), or as blob (tenant, sha) without a
 * row; 0 on success. tfx_backend_remove takes such a name away again.
 */
int tfx_backend_put(struct sfs_store *s, const char *name, const void *data,
		    size_t n);
int tfx_backend_remove(struct sfs_store *s, const char *name);
int tfx_blob_plant(struct sfs_store *s, int64_t tenant, const char *sha,
		   const void *data, size_t n);

/* SHA-256 of an open blob, read through it; 0 on success. */
struct sfs_blob;
int tfx_blob_sha(struct sfs_blob *b, char out[65]);

/*
 * SQL that takes a store's schema back: what schemas 14, 12, 11, 10 and 9
 * added goes, as a store of schema 8 lacks it (tests of migrations, on
 * purpose; 13 changed no column). DROP_V14: before schema 14 alone. v12's
 * change_file_au gives way to v1's (a change row for every UPDATE of a file);
 * v11's tag_count_ai to v10's, which counts and fills nothing.
 */
#define DROP_V14 "DROP TABLE upload; "
#define DROP_V12_SQLITE                                                        \
	DROP_V14                                                               \
	"DROP TRIGGER file_tagnames_ai; DROP TRIGGER "                         \
	"file_tagnames_ad;"                                                    \
	" DROP TRIGGER file_tagnames_au; DROP TRIGGER change_file_au;"         \
	" CREATE TRIGGER change_file_au AFTER UPDATE ON file BEGIN"            \
	" INSERT INTO change(owner_id, file_id, dir, at)"                      \
	" VALUES (new.owner_id, new.id, new.dir, new.ctime_ns);"               \
	" INSERT INTO change(owner_id, file_id, dir, at)"                      \
	" SELECT old.owner_id, old.id, old.dir, new.ctime_ns"                  \
	" WHERE old.dir <> new.dir; END;"                                      \
	" ALTER TABLE file DROP COLUMN tagnames;"
#define DROP_V12_PG                                                            \
	DROP_V14 "DROP TRIGGER file_tagnames ON file_tag;"                     \
		 " DROP FUNCTION file_tagnames(); DROP TRIGGER "               \
		 "change_file_au ON file;"                                     \
		 " DROP TRIGGER change_file ON file;"                          \
		 " CREATE TRIGGER change_file AFTER INSERT OR UPDATE ON file"  \
		 " FOR EACH ROW EXECUTE FUNCTION change_file();"               \
		 " ALTER TABLE file DROP COLUMN tagnames;"
#define DROP_V11_SQLITE                                                        \
	DROP_V12_SQLITE                                                        \
	" DROP TRIGGER tag_count_ai;"                                          \
	" CREATE TRIGGER tag_count_ai AFTER INSERT ON file_tag BEGIN"          \
	" INSERT INTO tag_count(owner_id, tag_id, n)"                          \
	" VALUES (new.owner_id, new.tag_id, 1)"                                \
	" ON CONFLICT(owner_id, tag_id) DO UPDATE SET n = n + 1; END;"
#define DROP_V11_PG                                                            \
	DROP_V12_PG                                                            \
	" DROP TRIGGER file_tag_fill ON file_tag;"                             \
	" DROP FUNCTION file_tag_fill();"
#define DROP_V10_SQLITE                                                        \
	DROP_V11_SQLITE                                                        \
	" DROP TRIGGER file_tag_file_au; DROP INDEX file_tag_page;"            \
	" ALTER TABLE file_tag DROP COLUMN created_at;"                        \
	" ALTER TABLE file_tag DROP COLUMN is_deleted;"
#define DROP_V10_PG                                                            \
	DROP_V11_PG                                                            \
	" DROP TRIGGER file_tag_file ON file; DROP FUNCTION file_tag_file();"  \
	" DROP INDEX file_tag_page; ALTER TABLE file_tag DROP COLUMN"          \
	" created_at, DROP COLUMN is_deleted;"
#define DROP_V9_SQLITE                                                         \
	DROP_V10_SQLITE                                                        \
	" DROP TRIGGER tag_count_ai; DROP TRIGGER tag_count_ad;"               \
	" DROP TRIGGER tag_count_au; DROP TABLE tag_count;"
#define DROP_V9_PG                                                             \
	DROP_V10_PG " DROP TRIGGER tag_count ON file_tag;"                     \
		    " DROP FUNCTION tag_count(); DROP TABLE tag_count;"

/*
 * The store's write turn (db_txn.c), read under its lock: threads waiting
 * for it to join a group (*member) or for a turn of their own (*plain);
 * groups committed so far and the members they had. tfx_one_waits(s)
 * (for tfx_wait_for): at least one thread waits, either way.
 */
void tfx_turn_waits(struct sfs_store *s, int *member, int *plain);
void tfx_grp_counts(struct sfs_store *s, int64_t *commits, int64_t *joined);
int tfx_one_waits(void *s);

/* Regular files below STORE/staging/ (lock files aside). */
int tfx_staging_files(const char *store_dir);

/* File and blob rows whose blob file is missing (-1 on error). */
int tfx_rows_without_blob(struct sfs_store *s);

#endif
