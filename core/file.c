/*
 * Files: loading and resolving a file for an actor (permissions), the
 * validation of their fields, create (upload or pending import) and
 * read; a row read into struct sfs_file is in file_row.c, update in
 * file_update.c, the lifecycle in lifecycle.c, content versions and
 * opening in content.c, listening audio in listening.c. Every rule of
 * the file model is decided in core once; the front ends only translate.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "auth_i.h"
#include "audio_i.h"
#include "blob_i.h"
#include "db_i.h"
#include "dir_i.h"
#include "file_i.h"
#include "job_i.h"
#include "media_i.h"
#include "speechfs/blob.h"
#include "speechfs/dir.h"
#include "speechfs/fetch.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/tag.h"
#include "speechfs/vpath.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"
#include "remote_i.h"

/*
 * One statement loads a file: its row, its tags and the share of it to
 * the user `user` (0: none), so that a read needs no transaction for one
 * view of the three and costs one round trip on PostgreSQL.
 */
#define LOAD_SQL(key)                                                          \
	"SELECT " FILE_COLS ", " FILE_TAGS_COL ", s.perm, su.uuid,"            \
	" s.created_at" FILE_FROM                                              \
	" LEFT JOIN share s ON s.file_id = f.id AND s.user_id = ?2"            \
	" LEFT JOIN user su ON su.id = s.created_by WHERE " key " = ?1"
#define LOAD_TAGS FILE_NCOLS
#define LOAD_SHARE (FILE_NCOLS + 1)

/* 1: the user has a share of the file (f->access/perm/shared_* set). */
static enum sfs_status load(struct db *d, const char *uuid, int64_t ino,
			    int64_t user, struct sfs_file *f, int *shared,
			    struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;
	int rc;

	st = sfsi_db_prep(d, uuid ? LOAD_SQL("f.uuid") : LOAD_SQL("f.id"), e);
	if (!st)
		return SFS_IO;
	if (uuid)
		sfsi_db_bind_text(st, 1, uuid);
	else
		sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, user);
	*shared = 0;
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		ret = sfsi_file_from_row(st, f, e);
		if (!ret)
			ret = sfsi_file_split_tags(
				sfsi_db_col_text(st, LOAD_TAGS), f, e);
		if (!ret && !sfsi_db_col_null(st, LOAD_SHARE)) {
			*shared = 1;
			f->access = SFS_ACCESS_DIRECT_SHARE;
			f->perm =
				(enum sfs_perm)sfsi_db_col_int(st, LOAD_SHARE);
			sfs_strlcpy(f->shared_by,
				    sfsi_db_col_text(st, LOAD_SHARE + 1),
				    sizeof(f->shared_by));
			f->shared_at = sfsi_db_col_int(st, LOAD_SHARE + 2);
		}
	} else if (rc == 0) {
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
			       SFSI_FILE_NOT_FOUND_MSG);
	} else {
		ret = e && e->status ? e->status : SFS_IO;
	}
	sfsi_db_reset(st);
	return ret;
}

enum sfs_status sfsi_file_load_ino(struct db *d, int64_t ino,
				   struct sfs_file *out, struct sfs_err *e)
{
	int shared;

	sfs_file_init(out);
	return load(d, NULL, ino, 0, out, &shared, e);
}

enum sfs_status sfsi_file_resolve(struct db *d, const struct sfs_actor *a,
				  const char *uuid, int64_t ino,
				  struct sfs_file *f, struct sfs_err *e)
{
	enum sfs_status ret;
	char lower[SFS_ID_SIZE];
	int shared;

	sfs_file_init(f);
	if (uuid) {
		if (sfsi_uuid_norm(uuid, lower))
			return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
					SFSI_FILE_NOT_FOUND_MSG);
		uuid = lower;
	}
	ret = load(d, uuid, ino, a->user, f, &shared, e);
	if (ret)
		goto fail;
	if (f->tenant != a->tenant)
		goto not_found;
	if (f->owner == a->user) {
		/* (no share of one's own file; a row would not count) */
		f->access = SFS_ACCESS_OWNER;
		f->perm = SFS_PERM_OWNER;
		f->shared_by[0] = '\0';
		f->shared_at = 0;
		return SFS_OK;
	}
	if (f->deleted)
		goto not_found;
	if (shared)
		return SFS_OK;
	if (f->publish == SFS_PUBLISH_INTERNAL) {
		f->access = SFS_ACCESS_INTERNAL;
		f->perm = SFS_PERM_VIEW;
		return SFS_OK;
	}
	ret = sfs_errf(e, SFS_FORBIDDEN, SFS_R_FORBIDDEN,
		       "not authorized to access this file");
	goto fail;
not_found:
	ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
		       SFSI_FILE_NOT_FOUND_MSG);
fail:
	/* callers do not release a file they did not get */
	sfs_file_release(f);
	return ret;
}

enum sfs_status sfsi_file_need_perm(const struct sfs_file *f, enum sfs_perm p,
				    const char *what, struct sfs_err *e)
{
	if (f->perm >= p)
		return SFS_OK;
	return sfs_errf(e, SFS_FORBIDDEN, SFS_R_FORBIDDEN,
			"not authorized to %s this file", what);
}

enum sfs_status sfs_file_allows(const struct sfs_file *f, enum sfs_action act,
				struct sfs_err *e)
{
	enum sfs_status ret;

	switch (act) {
	case SFS_ACT_READ:
		return sfsi_file_need_perm(f, SFS_PERM_VIEW, "read", e);
	case SFS_ACT_WRITE:
		ret = sfsi_file_need_perm(f, SFS_PERM_EDIT, "modify", e);
		if (!ret && f->deleted)
			ret = sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_DELETED,
				       "the file is deleted");
		return ret;
	case SFS_ACT_DELETE:
		return sfsi_file_need_perm(f, SFS_PERM_OWNER, "delete", e);
	case SFS_ACT_SHARE:
		if (f->perm == SFS_PERM_OWNER)
			return SFS_OK;
		return sfs_errf(e, SFS_FORBIDDEN, SFS_R_FORBIDDEN,
				"only the file's owner may manage its shares");
	}
	return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "unknown action");
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

enum sfs_status sfs_name_check(const char *name, const char *field,
			       struct sfs_err *e)
{
	size_t n;

	if (!name)
		return sfs_err_field(e, field, "missing", "field required");
	n = strlen(name);
	if (n == 0)
		return sfs_err_field(e, field, "invalid", "must not be empty");
	if (n > SFS_NAME_MAX)
		return sfs_err_field(e, field, "too_long", "at most %d bytes",
				     SFS_NAME_MAX);
	if (!sfs_utf8_valid(name, n))
		return sfs_err_field(e, field, "invalid", "not valid UTF-8");
	if (has_control(name))
		return sfs_err_field(e, field, "invalid",
				     "control characters are not allowed");
	return SFS_OK;
}

enum sfs_status sfsi_file_description_check(const char *s, struct sfs_err *e)
{
	size_t n;

	if (!s)
		return SFS_OK;
	n = strlen(s);
	if (n > SFS_DESCRIPTION_MAX)
		return sfs_err_field(e, "description", "too_long",
				     "at most %d bytes", SFS_DESCRIPTION_MAX);
	if (!sfs_utf8_valid(s, n))
		return sfs_err_field(e, "description", "invalid",
				     "not valid UTF-8");
	return SFS_OK;
}

enum sfs_status sfs_metadata_check(const char *json, const char *field,
				   struct sfs_err *e)
{
	json_error_t jerr;
	json_t *v;
	int ok;

	if (!json)
		return SFS_OK;
	if (strlen(json) > SFS_METADATA_MAX)
		return sfs_err_field(e, field, "too_long",
				     "at most %d bytes of JSON",
				     SFS_METADATA_MAX);
	v = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (!v)
		return sfs_err_field(e, field, "invalid", "invalid JSON: %s",
				     jerr.text);
	ok = json_is_object(v);
	json_decref(v);
	if (!ok)
		return sfs_err_field(e, field, "invalid",
				     "must be a JSON object");
	return SFS_OK;
}

enum sfs_status sfsi_file_tags_check(const char *const *tags, size_t n,
				     struct sfs_err *e)
{
	char field[32];
	size_t i;

	if (n > SFS_TAGS_MAX)
		return sfs_err_field(e, "tags", "too_long", "at most %d tags",
				     SFS_TAGS_MAX);
	for (i = 0; i < n; i++) {
		snprintf(field, sizeof(field), "tags[%zu]", i);
		if (sfs_tag_check(tags[i], field, e))
			return SFS_INVALID;
	}
	return SFS_OK;
}

enum sfs_status sfsi_file_set_tags(struct db *d, int64_t tenant, int64_t ino,
				   const char *const *tags, size_t n,
				   struct sfs_err *e)
{
	struct db_stmt *st;
	size_t i;

	st = sfsi_db_prep(d, "DELETE FROM file_tag WHERE file_id = ?1", e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	if (sfsi_db_run(st, e))
		return SFS_IO;
	for (i = 0; i < n; i++) {
		st = sfsi_db_prep(
			d,
			"INSERT INTO tag(tenant_id, name) VALUES (?1, ?2)"
			" ON CONFLICT(tenant_id, name) DO NOTHING",
			e);
		if (!st)
			return SFS_IO;
		sfsi_db_bind_int(st, 1, tenant);
		sfsi_db_bind_text(st, 2, tags[i]);
		if (sfsi_db_run(st, e))
			return SFS_IO;
		st = sfsi_db_prep(
			d,
			"INSERT OR IGNORE INTO file_tag(file_id, tag_id,"
			" owner_id, created_at, is_deleted)"
			" SELECT ?1, t.id, f.owner_id, f.created_at,"
			" f.is_deleted FROM tag t JOIN file f ON f.id = ?1"
			" WHERE t.tenant_id = ?2 AND t.name = ?3",
			e);
		if (!st)
			return SFS_IO;
		sfsi_db_bind_int(st, 1, ino);
		sfsi_db_bind_int(st, 2, tenant);
		sfsi_db_bind_text(st, 3, tags[i]);
		if (sfsi_db_run(st, e))
			return SFS_IO;
	}
	return SFS_OK;
}

static enum sfs_status spec_check(const struct sfs_file_spec *sp,
				  struct sfs_buf *path, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;

	if (sfs_name_check(sp->name, "name", e))
		ret = SFS_INVALID;
	if (sp->filename && sfs_name_check(sp->filename, "filename", e))
		ret = SFS_INVALID;
	if (sfsi_file_description_check(sp->description, e))
		ret = SFS_INVALID;
	if (sfs_vpath_norm(sp->path ? sp->path : "/", "path", path, e))
		ret = SFS_INVALID;
	if (sfs_metadata_check(sp->metadata, "metadata", e))
		ret = SFS_INVALID;
	if (sfsi_file_tags_check(sp->tags, sp->ntags, e))
		ret = SFS_INVALID;
	/* the scheme and form now; addresses at connect time */
	if (sp->uri && sfs_fetch_check_uri(sp->uri, e))
		ret = SFS_INVALID;
	if (sp->id_key && !sfs_uuid_valid(sp->id_key)) {
		sfs_err_field(e, "idKey", "invalid", "idKey must be a UUID");
		ret = SFS_INVALID;
	}
	return ret;
}

/*
 * SFS_OK when no file has id uuid (one derived from the caller's key);
 * SFS_CONFLICT (SFS_R_FILE_ID_EXISTS) when the caller's own file has it
 * (any state, purged too: a try whose answer was lost). Another owner's
 * file can have it only by a SHA-256 collision of the derivation (it
 * puts the owner in): an error, no answer about that file.
 */
static enum sfs_status id_free(struct db *d, const struct sfs_actor *a,
			       const char *uuid, struct sfs_err *e)
{
	struct db_stmt *st;
	int64_t owner;
	int rc;

	st = sfsi_db_prep(d, "SELECT owner_id FROM file WHERE uuid = ?1", e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_text(st, 1, uuid);
	rc = sfsi_db_step(st, e);
	owner = rc > 0 ? sfsi_db_col_int(st, 0) : 0;
	sfsi_db_reset(st);
	if (rc < 0)
		return e && e->status ? e->status : SFS_IO;
	if (rc && owner == a->user)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_ID_EXISTS,
				"your file with id '%s' exists", uuid);
	if (rc) {
		sfs_error("file",
			  "the id '%s' derived for a new file is "
			  "another owner's",
			  uuid);
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"the new file's id cannot be used");
	}
	return SFS_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * An import's original filename: the last segment of the URI's path
 * (before any query or fragment), percent-decoded; "" when there is none
 * or it is not a valid name ("https://host/a/meeting%201.wav" gives
 * "meeting 1.wav", "s3://bucket/dir/x.flac" gives "x.flac").
 */
static void uri_filename(const char *uri, char *out, size_t size)
{
	const char *p = strstr(uri, "://"), *seg = NULL, *end;
	size_t n = 0;
	int c;
	struct sfs_err e;

	out[0] = 0;
	if (!p)
		return;
	p += 3;
	end = p + strcspn(p, "?#");
	for (; p < end; p++)
		if (*p == '/')
			seg = p + 1;
	if (!seg)
		return; /* only a host */
	for (p = seg; p < end && n + 1 < size; p++) {
		c = (unsigned char)*p;
		if (c == '%' && end - p > 2 && hexval(p[1]) >= 0 &&
		    hexval(p[2]) >= 0) {
			c = hexval(p[1]) * 16 + hexval(p[2]);
			p += 2;
		}
		if (c == 0) {
			out[0] = 0;
			return;
		}
		out[n++] = (char)c;
	}
	out[n] = 0;
	sfs_err_init(&e);
	if (!n || sfs_name_check(out, "filename", &e))
		out[0] = 0;
}

/*
 * Why a count of tenant's files that grows by delta changed no row: its
 * quota (max_files > 0) would be exceeded, or there is no such tenant
 * (nothing to count, as before the quota).
 */
static enum sfs_status count_refused(struct db *d, int64_t tenant,
				     struct sfs_err *e)
{
	struct db_stmt *st;
	long long max = 0;
	int rc;

	st = sfsi_db_prep(d, "SELECT max_files FROM tenant WHERE id = ?1", e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, tenant);
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		max = sfsi_db_col_int(st, 0);
	sfsi_db_reset(st);
	if (rc < 0)
		return SFS_IO;
	if (max <= 0)
		return SFS_OK;
	return sfs_errf(e, SFS_QUOTA, SFS_R_QUOTA_EXCEEDED,
			"the tenant's file count quota of %lld files would be "
			"exceeded",
			max);
}

/*
 * A count that grows is checked against the quota by its UPDATE (one
 * statement per new file, not a SELECT and an UPDATE).
 */
enum sfs_status sfsi_file_count(struct db *d, int64_t tenant, int delta,
				struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;

	st = sfsi_db_prep(d,
			  delta > 0 ? "UPDATE tenant SET used_files ="
				      " used_files + ?2 WHERE id = ?1"
				      " AND (max_files <= 0"
				      " OR used_files + ?2 <= max_files)"
				    : "UPDATE tenant SET used_files ="
				      " used_files + ?2 WHERE id = ?1",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, tenant);
	sfsi_db_bind_int(st, 2, delta);
	ret = sfsi_db_run(st, e);
	if (ret || delta <= 0 || sfsi_db_changes(d) > 0)
		return ret;
	return count_refused(d, tenant, e);
}

/*
 * A file arrived in its directory under its display name: it is suffixed
 * when another live file of the directory has that name (or never, with
 * no_suffix). Names compare exactly; the NOCASE term uses the index.
 */
enum sfs_status sfsi_file_arrive(struct db *d, int64_t ino, int no_suffix,
				 struct sfs_err *e)
{
	struct db_stmt *st;

	st = sfsi_db_prep(d,
			  "UPDATE file SET entry_suffix = 1 - entry_suffix"
			  " WHERE id = ?1 AND entry_suffix <> CASE WHEN ?2 <> 0"
			  " THEN 0 WHEN EXISTS(SELECT 1 FROM file o"
			  " WHERE o.owner_id = file.owner_id"
			  " AND o.is_deleted = 0 AND o.dir = file.dir"
			  " AND o.name = file.name COLLATE NOCASE"
			  " AND o.name = file.name AND o.id <> file.id)"
			  " THEN 1 ELSE 0 END",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, no_suffix ? 1 : 0);
	return sfsi_db_run(st, e);
}

/* A new file's id: derived from the caller's key, or random. */
static enum sfs_status new_id(struct db *d, const struct sfs_actor *a,
			      const struct sfs_file_spec *sp,
			      char uuid[SFS_ID_SIZE], struct sfs_err *e)
{
	if (!sp->id_key) {
		sfs_uuid_new(uuid);
		return SFS_OK;
	}
	if (sfs_uuid_derive(a->user_id, sp->id_key, uuid))
		return sfs_err_field(e, "idKey", "invalid",
				     "idKey must be a UUID");
	return id_free(d, a, uuid, e);
}

/*
 * What a new file's row brings along in its transaction: its tags, its
 * name's suffix, its directory's count, and its job (an import from its
 * uri, or listening audio of its content).
 */
static enum sfs_status file_added(struct db *d, const struct sfs_actor *a,
				  const struct sfs_file_spec *sp,
				  const char *path, int has_content,
				  int64_t ino, int64_t ns, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;

	/* a new row has no tags to replace (a statement less per upload) */
	if (sp->ntags)
		ret = sfsi_file_set_tags(d, a->tenant, ino, sp->tags, sp->ntags,
					 e);
	if (!ret && !sp->no_suffix)
		ret = sfsi_file_arrive(d, ino, 0, e);
	if (!ret)
		ret = sfsi_dir_count(d, a->user, path, 1, ns, e);
	if (!ret && sp->uri)
		ret = sfsi_job_enqueue_txn(d, SFS_JOB_IMPORT, ino, sp->uri,
					   NULL, e);
	else if (!ret && sp->listening && has_content)
		ret = sfsi_job_enqueue_txn(d, SFS_JOB_LISTENING, ino, NULL,
					   NULL, e);
	return ret;
}

static enum sfs_status insert_file(struct db *d, const struct sfs_actor *a,
				   const struct sfs_file_spec *sp,
				   const char *path, struct sfs_stage *content,
				   double duration, const char *mime,
				   int64_t ns, char uuid[SFS_ID_SIZE],
				   struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t added = 0, ino, now = ns / 1000000;
	char from_uri[256];
	const char *filename = sp->filename;

	if (!filename && sp->uri) {
		uri_filename(sp->uri, from_uri, sizeof(from_uri));
		filename = from_uri[0] ? from_uri : NULL;
	}
	/*
	 * The id first: a try whose answer was lost, sent again, hears
	 * "your file has it" even when that file filled a quota (a refusal
	 * then proves the file is not made: the remote mount relies on it).
	 */
	ret = new_id(d, a, sp, uuid, e);
	if (!ret)
		ret = sfsi_file_count(d, a->tenant, 1, e);
	if (!ret && content)
		ret = sfsi_blob_ref_stage(d, a->tenant, content, &added, e);
	if (ret)
		return ret;
		/* PostgreSQL has no last row id: the row says it */
#define INSERT_FILE                                                            \
	"INSERT INTO file(uuid, tenant_id, owner_id, name, filename,"          \
	" description, dir, metadata, source_uri, size, sha256,"               \
	" blob_ref, ingestion, created_at, want_la, la_status,"                \
	" mtime_ns, ctime_ns, duration, mime)"                                 \
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"          \
	" ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
	st = sfsi_db_prep(
		d, sfsi_db_sql(d, INSERT_FILE, INSERT_FILE " RETURNING id"), e);
#undef INSERT_FILE
	if (!st)
		return SFS_IO;
	sfsi_db_bind_text(st, 1, uuid);
	sfsi_db_bind_int(st, 2, a->tenant);
	sfsi_db_bind_int(st, 3, a->user);
	sfsi_db_bind_text(st, 4, sp->name);
	sfsi_db_bind_text(st, 5, filename);
	sfsi_db_bind_text(st, 6, sp->description);
	sfsi_db_bind_text(st, 7, path);
	sfsi_db_bind_text(st, 8, sp->metadata);
	sfsi_db_bind_text(st, 9, sp->uri);
	if (content) {
		sfsi_db_bind_int(st, 10, sfs_stage_size(content));
		sfsi_db_bind_text(st, 11, sfs_stage_sha256(content));
		sfsi_db_bind_int(st, 12, 1);
		sfsi_db_bind_int(st, 13, SFS_JS_NONE);
	} else if (sp->uri) {
		sfsi_db_bind_null(st, 10);
		sfsi_db_bind_null(st, 11);
		sfsi_db_bind_int(st, 12, 0);
		sfsi_db_bind_int(st, 13, SFS_JS_PENDING);
	} else {
		/* an empty file made without content (mount create) */
		sfsi_db_bind_int(st, 10, 0);
		sfsi_db_bind_text(st, 11,
				  "e3b0c44298fc1c149afbf4c8996fb924"
				  "27ae41e4649b934ca495991b7852b855");
		sfsi_db_bind_int(st, 12, 0);
		sfsi_db_bind_int(st, 13, SFS_JS_NONE);
	}
	sfsi_db_bind_int(st, 14, now);
	sfsi_db_bind_int(st, 15, sp->listening ? 1 : 0);
	sfsi_db_bind_int(st, 16,
			 sp->listening && !sp->uri && content ? SFS_JS_PENDING
							      : SFS_JS_NONE);
	sfsi_db_bind_int(st, 17, sp->mtime_ns ? sp->mtime_ns : ns);
	sfsi_db_bind_int(st, 18, ns);
	if (duration >= 0)
		sfsi_db_bind_double(st, 19, duration);
	else
		sfsi_db_bind_null(st, 19);
	sfsi_db_bind_text(st, 20, mime);
	ret = sfsi_db_run(st, e);
	if (ret)
		return ret;
	ino = sfsi_db_last_rowid(d);
	return file_added(d, a, sp, path, content != NULL, ino, ns, e);
}

enum sfs_status sfs_file_create(struct sfs_store *s, const struct sfs_actor *a,
				const struct sfs_file_spec *sp,
				struct sfs_stage *content, struct sfs_file *out,
				struct sfs_err *e)
{
	if (sp->dir_out)
		memset(sp->dir_out, 0, sizeof(*sp->dir_out));
	if (s->ops)
		return s->ops->file_create(s, sp, content, out, e);
	struct sfs_buf path = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	char uuid[SFS_ID_SIZE], mime[96] = "";
	struct db *d = NULL;
	enum sfs_status ret;
	double duration = -1;

	if (out)
		sfs_file_init(out);
	ret = sfsi_need_scope(a, SFS_SCOPE_WRITE, e);
	if (ret)
		goto out;
	ret = spec_check(sp, &path, e);
	if (ret)
		goto out;
	if (content && sp->uri) {
		ret = sfs_errf(e, SFS_INVALID, SFS_R_NONE,
			       "a file has either content or a URI");
		goto out;
	}
	if (content) {
		ret = sfsi_blob_stage_prepare(s, a->tenant, content, e);
		if (ret)
			goto out;
		sfsi_audio_probe_stage(content, &duration, mime, sizeof(mime));
	}
	if (sp->lazy && (sp->uri || (content && sfs_stage_size(content)))) {
		ret = sfs_err_field(e, "lazy", "invalid",
				    "only a file without content, or with "
				    "empty content, can be created lazily");
		goto out;
	}
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	/* lazy: durable with the file's content, or sfs_file_sync */
	ret = sfsi_blob_begin(d, content, sp->lazy, e);
	if (ret)
		goto out;
	ret = insert_file(d, a, sp, path.buf, content, duration,
			  mime[0] ? mime : NULL, sfs_now_ns(), uuid, e);
	/*
	 * The answer shows the file as created (an import PENDING): read
	 * it in the transaction, before a worker of any process may claim
	 * its job.
	 */
	if (!ret && out)
		ret = sfsi_file_resolve(d, a, uuid, 0, out, e);
	/* read by the connection that wrote it: no read after the commit */
	if (!ret && sp->dir_out)
		ret = sfsi_dir_info(d, a->user, path.buf, sp->dir_out, e);
	if (ret) {
		sfsi_db_rollback(d);
		goto out;
	}
	sfsi_crash_point("file-before-commit");
	ret = sfsi_db_commit(d, e);
	if (ret) {
		if (out)
			sfs_file_release(out);
		goto out;
	}
	if (content)
		sfsi_stage_done(content);
	if (sp->uri || (sp->listening && content))
		sfs_workers_kick(s);
out:
	if (ret && sp->dir_out)
		memset(sp->dir_out, 0, sizeof(*sp->dir_out));
	sfsi_db_put(d);
	sfs_buf_release(&path);
	return ret;
}

enum sfs_status sfs_file_create_many(struct sfs_store *s,
				     const struct sfs_actor *a,
				     const struct sfs_file_spec *specs,
				     size_t n, struct sfs_err *e)
{
	struct sfs_buf path = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	char uuid[SFS_ID_SIZE];
	struct db *d = NULL;
	enum sfs_status ret;
	int64_t ns = sfs_now_ns();
	size_t i;

	ret = sfsi_need_scope(a, SFS_SCOPE_WRITE, e);
	if (ret)
		goto out;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	/* a bulk load: a long transaction, not in a group */
	ret = sfsi_db_begin_alone(d, e);
	if (ret)
		goto out;
	for (i = 0; i < n && !ret; i++) {
		ret = spec_check(&specs[i], &path, e);
		if (!ret)
			ret = insert_file(d, a, &specs[i], path.buf, NULL, -1,
					  NULL, ns, uuid, e);
	}
	if (ret)
		sfsi_db_rollback(d);
	else
		ret = sfsi_db_commit(d, e);
	if (!ret)
		sfs_workers_kick(s);
out:
	sfsi_db_put(d);
	sfs_buf_release(&path);
	return ret;
}

static enum sfs_status get_common(struct sfs_store *s,
				  const struct sfs_actor *a, const char *id,
				  int64_t ino, struct sfs_file *out,
				  struct sfs_err *e)
{
	struct db *d = NULL;
	enum sfs_status ret;

	sfs_file_init(out);
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (ret)
		return ret;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	/* one statement: the row, its share and its tags (load) */
	ret = sfsi_file_resolve(d, a, id, ino, out, e);
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_file_get(struct sfs_store *s, const struct sfs_actor *a,
			     const char *id, struct sfs_file *out,
			     struct sfs_err *e)
{
	if (!id)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				SFSI_FILE_NOT_FOUND_MSG);
	return get_common(s, a, id, 0, out, e);
}

enum sfs_status sfs_file_get_ino(struct sfs_store *s, const struct sfs_actor *a,
				 int64_t ino, struct sfs_file *out,
				 struct sfs_err *e)
{
	if (s->ops)
		return s->ops->file_get_ino(s, ino, out, e);
	return get_common(s, a, NULL, ino, out, e);
}

/*
 * Open a write transaction and resolve the file in it, so that the checks
 * and the change see one state even with other processes writing.
 * content: the new content it will reference (sfsi_blob_begin), or NULL.
 */
static enum sfs_status
file_begin(struct sfs_store *s, const struct sfs_actor *a, const char *id,
	   unsigned scope, int nosync, const struct sfs_stage *content,
	   struct db **dp, struct sfs_file *f, struct sfs_err *e)
{
	enum sfs_status ret;

	*dp = NULL;
	sfs_file_init(f);
	ret = sfsi_need_scope(a, scope, e);
	if (ret)
		return ret;
	if (!id)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				SFSI_FILE_NOT_FOUND_MSG);
	ret = sfsi_db_get(s, dp, e);
	if (ret)
		return ret;
	ret = sfsi_blob_begin(*dp, content, nosync, e);
	if (!ret)
		ret = sfsi_file_resolve(*dp, a, id, 0, f, e);
	if (ret) {
		sfsi_db_put(*dp);
		*dp = NULL;
	}
	return ret;
}

enum sfs_status sfsi_file_begin(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, unsigned scope, struct db **dp,
				struct sfs_file *f, struct sfs_err *e)
{
	return file_begin(s, a, id, scope, 0, NULL, dp, f, e);
}

enum sfs_status sfsi_file_begin_content(struct sfs_store *s,
					const struct sfs_actor *a,
					const char *id, unsigned scope,
					const struct sfs_stage *content,
					struct db **dp, struct sfs_file *f,
					struct sfs_err *e)
{
	return file_begin(s, a, id, scope, 1, content, dp, f, e);
}

enum sfs_status sfsi_file_end(struct sfs_store *s, struct db *d,
			      enum sfs_status ret, const struct sfs_actor *a,
			      struct sfs_file *f, struct sfs_file *out,
			      struct sfs_err *e)
{
	char id[SFS_ID_SIZE];

	sfs_strlcpy(id, f->id, sizeof(id));
	sfs_file_release(f);
	if (ret)
		sfsi_db_rollback(d);
	else
		ret = sfsi_db_commit(d, e);
	if (!ret && out)
		ret = sfsi_file_resolve(d, a, id, 0, out, e);
	sfsi_db_put(d);
	(void)s;
	return ret;
}

enum sfs_status sfsi_exec_ino(struct db *d, const char *sql, int64_t ino,
			      int64_t v, struct sfs_err *e)
{
	struct db_stmt *st = sfsi_db_prep(d, sql, e);

	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, v);
	return sfsi_db_run(st, e);
}
