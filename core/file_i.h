/*
 * File internals shared by the core's modules: the file module's own
 * files (file.c, file_update.c, content.c, lifecycle.c, listening.c) and
 * the others that load or change file rows (media, query, shares,
 * directories, xattrs).
 */
#ifndef SPEECHFS_FILE_I_H
#define SPEECHFS_FILE_I_H

#include <stdint.h>
#include "speechfs/file.h"

struct db;
struct sfs_store;

/* Load a file by row id without permission checks (workers). */
enum sfs_status sfsi_file_load_ino(struct db *d, int64_t ino,
				   struct sfs_file *out,
				   struct sfs_err *e) SFS_MUST_CHECK;

/* Release the content blob / listening blob references of a file row. */
enum sfs_status sfsi_file_release_content(struct db *d, int64_t ino,
					  struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfsi_file_release_listening(struct db *d, int64_t ino,
					    struct sfs_err *e) SFS_MUST_CHECK;

/* Queue listening-audio generation for a file (in a write transaction). */
enum sfs_status sfsi_file_queue_listening(struct db *d, int64_t ino,
					  struct sfs_err *e) SFS_MUST_CHECK;
/* The file has no listening audio any more (null), nor a job for it. */
enum sfs_status sfsi_file_clear_listening(struct db *d, int64_t ino,
					  struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The columns every file query selects, in the order sfsi_file_from_row reads
 * them; FROM clause aliases: f = file, u = owner user, t = tenant.
 */
#define FILE_COLS                                                              \
	"f.id, f.uuid, f.owner_id, u.uuid, f.tenant_id, t.uuid,"               \
	" f.name, f.filename, f.description, f.dir, f.metadata, f.mime,"       \
	" f.source_uri, f.ingest_error, f.size, f.duration, f.sha256,"         \
	" f.ingestion, f.is_deleted, f.is_purged, f.is_discarded,"             \
	" f.created_at, f.deleted_at, f.purged_at, f.purge_at,"                \
	" f.discarded_at, f.publish, f.published_at, f.la_status,"             \
	" f.la_size, f.la_sha256, f.la_created_at, f.la_deleted,"              \
	" f.la_purged, f.la_deleted_at, f.la_purged_at, f.la_purge_at,"        \
	" f.la_error, f.mtime_ns, f.ctime_ns, f.entry_suffix, f.atime_ns"
#define FILE_NCOLS 42
#define FILE_FROM                                                              \
	" FROM file f JOIN user u ON u.id = f.owner_id"                        \
	" JOIN tenant t ON t.id = f.tenant_id"

/*
 * The listing row (PostgreSQL only: its expressions are PostgreSQL's), for
 * a page of the actor's own files (the statement fixes f.owner_id to the
 * actor's user); read by sfsi_file_from_list_row into the same struct
 * sfs_file as FILE_COLS. The owner's and tenant's ids and uuids are not
 * sent (the actor's); what is mostly 0 or NULL is sent as NULL: created_at
 * when it is mtime_ns in ms, ctime_ns when it is mtime_ns, and three groups
 * as one text column each, NULL when the whole group is at its default,
 * else its values joined by commas (concat_ws skips NULLs: each is given
 * as FILE_COLS' reader reads it): "marks" (ingestion, is_deleted,
 * is_purged, is_discarded, publish, entry_suffix; all 0 by default),
 * "times" (deleted_at, purged_at, purge_at, discarded_at, published_at;
 * NULL as 0) and "la" (la_status, la_size ('' for NULL, read -1),
 * la_created_at, la_deleted, la_purged, la_deleted_at, la_purged_at,
 * la_purge_at (NULL as 0), then la_sha256 last, whatever it holds). A
 * page of 21 rows is then 40% fewer bytes: within the server's 8 KiB send
 * buffer (one flush, one wake-up of the client instead of two) with 21
 * columns to output and read instead of 44.
 */
#define FILE_LIST_COLS                                                         \
	"f.id, f.uuid, f.name, f.filename, f.description, f.dir, f.metadata,"  \
	" f.mime, f.source_uri, f.ingest_error, f.size, f.duration, f.sha256," \
	" CASE WHEN f.ingestion = 0 AND f.is_deleted = 0"                      \
	" AND f.is_purged = 0 AND f.is_discarded = 0 AND f.publish = 0"        \
	" AND f.entry_suffix = 0 THEN NULL ELSE concat_ws(',', f.ingestion,"   \
	" f.is_deleted, f.is_purged, f.is_discarded, f.publish,"               \
	" f.entry_suffix) END, nullif(f.created_at, f.mtime_ns / 1000000),"    \
	" CASE WHEN f.deleted_at IS NULL AND f.purged_at IS NULL"              \
	" AND f.purge_at IS NULL AND f.discarded_at IS NULL"                   \
	" AND f.published_at IS NULL THEN NULL ELSE concat_ws(',',"            \
	" coalesce(f.deleted_at, 0), coalesce(f.purged_at, 0),"                \
	" coalesce(f.purge_at, 0), coalesce(f.discarded_at, 0),"               \
	" coalesce(f.published_at, 0)) END,"                                   \
	" CASE WHEN f.la_status = 0 AND f.la_size IS NULL"                     \
	" AND f.la_created_at IS NULL AND f.la_deleted = 0"                    \
	" AND f.la_purged = 0 AND f.la_deleted_at IS NULL"                     \
	" AND f.la_purged_at IS NULL AND f.la_purge_at IS NULL"                \
	" AND f.la_sha256 IS NULL THEN NULL ELSE concat_ws(',', f.la_status,"  \
	" coalesce(CAST(f.la_size AS text), ''),"                              \
	" coalesce(f.la_created_at, 0), f.la_deleted, f.la_purged,"            \
	" coalesce(f.la_deleted_at, 0), coalesce(f.la_purged_at, 0),"          \
	" coalesce(f.la_purge_at, 0), coalesce(f.la_sha256, '')) END,"         \
	" f.la_error, f.mtime_ns, nullif(f.ctime_ns, f.mtime_ns), f.atime_ns"
#define FILE_LIST_NCOLS 21

struct db_stmt;

/* Fill f (initialised) from the FILE_COLS of the current row. */
enum sfs_status sfsi_file_from_row(struct db_stmt *st, struct sfs_file *f,
				   struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The same from the FILE_LIST_COLS of the current row of a page of a's
 * own files: f ends as sfsi_file_from_row would fill it from FILE_COLS.
 */
enum sfs_status sfsi_file_from_list_row(struct db_stmt *st,
					const struct sfs_actor *a,
					struct sfs_file *f,
					struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A file's tags as one column of its row: the row's copy of its tag names
 * (schema v12, db_i.h's TAG_NAMES_OF, kept by the database in the
 * transaction that changes the tags), so that a row comes with its tags
 * without a subquery per row (on PostgreSQL half of a one-tag page's
 * time). Tag names cannot hold control characters: char(31) separates
 * them.
 */
#define FILE_TAGS_COL "f.tagnames"

/* f->tags from a FILE_TAGS_COL value (NULL: none), sorted case-insensitively.
 */
enum sfs_status sfsi_file_split_tags(const char *s, struct sfs_file *f,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Resolve a file for an actor by uuid (or by ino when uuid is NULL):
 * SFS_NOT_FOUND for another tenant's file, a bad id, or a deleted file of
 * someone else; SFS_FORBIDDEN when the actor has no access at all. Fills
 * out->access/perm/shared_by/shared_at.
 */
enum sfs_status sfsi_file_resolve(struct db *d, const struct sfs_actor *a,
				  const char *uuid, int64_t ino,
				  struct sfs_file *out,
				  struct sfs_err *e) SFS_MUST_CHECK;

#define SFSI_FILE_NOT_FOUND_MSG "no file with this id exists"

/* SFS_FORBIDDEN unless the actor's permission on f is at least p. */
enum sfs_status sfsi_file_need_perm(const struct sfs_file *f, enum sfs_perm p,
				    const char *what,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Open a write transaction and resolve the file in it with the scope
 * checked, so that the checks and the change see one state even with
 * other processes writing. On failure *dp is NULL and f released.
 */
enum sfs_status sfsi_file_begin(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, unsigned scope, struct db **dp,
				struct sfs_file *f,
				struct sfs_err *e) SFS_MUST_CHECK;
/*
 * The same for a new content of the file (sfsi_blob_begin: of its own
 * when its bytes are not kept in the row), the commit made durable later
 * by sfsi_db_sync.
 */
enum sfs_status sfsi_file_begin_content(struct sfs_store *s,
					const struct sfs_actor *a,
					const char *id, unsigned scope,
					const struct sfs_stage *content,
					struct db **dp, struct sfs_file *f,
					struct sfs_err *e) SFS_MUST_CHECK;
/*
 * End what sfsi_file_begin started: roll back on ret, else commit; on
 * success with out, resolve the file again into out. Releases f and d.
 */
enum sfs_status sfsi_file_end(struct sfs_store *s, struct db *d,
			      enum sfs_status ret, const struct sfs_actor *a,
			      struct sfs_file *f, struct sfs_file *out,
			      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * f's row and f->path put in directory `to` (normalised), its counts
 * left to the caller (sfsi_dir_count): a restore that moves the file
 * counts it at `to` alone.
 */
enum sfs_status sfsi_file_set_dir(struct db *d, struct sfs_file *f,
				  const char *to,
				  struct sfs_err *e) SFS_MUST_CHECK;

/* Run sql with ?1 = ino and ?2 = v (a string literal: cached by address). */
enum sfs_status sfsi_exec_ino(struct db *d, const char *sql, int64_t ino,
			      int64_t v, struct sfs_err *e) SFS_MUST_CHECK;

/* The tenant's file count moves by delta; SFS_QUOTA past its limit. */
enum sfs_status sfsi_file_count(struct db *d, int64_t tenant, int delta,
				struct sfs_err *e) SFS_MUST_CHECK;

/*
 * A file arrived in its directory under its display name: it is suffixed
 * when another live file of the directory has that name (never with
 * no_suffix).
 */
enum sfs_status sfsi_file_arrive(struct db *d, int64_t ino, int no_suffix,
				 struct sfs_err *e) SFS_MUST_CHECK;

/* A description: at most SFS_DESCRIPTION_MAX bytes of UTF-8 (field errors). */
enum sfs_status sfsi_file_description_check(const char *s,
					    struct sfs_err *e) SFS_MUST_CHECK;
/* At most SFS_TAGS_MAX tags, each a tag name (sfs_tag_check). */
enum sfs_status sfsi_file_tags_check(const char *const *tags, size_t n,
				     struct sfs_err *e) SFS_MUST_CHECK;
/* File ino's tags become tags[0, n), each made in the tenant if new. */
enum sfs_status sfsi_file_set_tags(struct db *d, int64_t tenant, int64_t ino,
				   const char *const *tags, size_t n,
				   struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Apply an update to f (resolved in the transaction of d, write allowed):
 * checks every field, then changes the row. Used by sfs_file_update and
 * sfs_file_rename.
 */
enum sfs_status sfsi_file_apply_update(struct db *d, struct sfs_file *f,
				       const struct sfs_file_update *u,
				       struct sfs_err *e) SFS_MUST_CHECK;

/* Give the janitor the purge pass of the retention (at open). */
void sfsi_lifecycle_install(struct sfs_store *s);

/*
 * Index the names of the files that wait in fts_pending (schema v8):
 * all of them, 1,000 a transaction (writers wait for one at most), each
 * not waiting for the disk (the index and what waits go back together
 * after a crash). Run by the janitor; searches find waiting names with
 * LIKE and never write. Nothing on PostgreSQL, whose trigram indexes
 * are kept by its own commits.
 */
enum sfs_status sfsi_fts_catch_up(struct sfs_store *s,
				  struct sfs_err *e) SFS_MUST_CHECK;

/* Give the janitor the catching up of the names' index (at open). */
void sfsi_fts_install(struct sfs_store *s);

#endif
