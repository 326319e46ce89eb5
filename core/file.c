/*
 * Files and their lifecycle: create (upload or pending import), read,
 * update, soft delete, purge, discard, restore, new content versions, and
 * listening audio state. Every rule of the file model is decided here once;
 * the front ends only translate.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "auth_i.h"
#include "blob_i.h"
#include "db_i.h"
#include "dir_i.h"
#include "file_i.h"
#include "media_i.h"
#include "speechfs/blob.h"
#include "speechfs/fetch.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/tag.h"
#include "speechfs/vpath.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"

#define NOT_FOUND_MSG "no file with this id exists"

enum sfs_status sfsi_need_scope(const struct sfs_actor *a, unsigned scope,
				struct sfs_err *e)
{
	if ((a->scopes & scope) == scope)
		return SFS_OK;
	return sfs_errf(e, SFS_FORBIDDEN, "insufficient_scope",
			"the credentials lack the scope '%s'",
			sfs_scope_name(scope));
}

static int64_t ms_or_zero(struct db_stmt *st, int i)
{
	return sfsi_db_col_null(st, i) ? 0 : sfsi_db_col_int(st, i);
}

enum sfs_status sfsi_file_from_row(struct db_stmt *st, struct sfs_file *f,
				   struct sfs_err *e)
{
	const char *t;

	f->ino = sfsi_db_col_int(st, 0);
	sfs_strlcpy(f->id, sfsi_db_col_text(st, 1), sizeof(f->id));
	f->owner = sfsi_db_col_int(st, 2);
	sfs_strlcpy(f->owner_id, sfsi_db_col_text(st, 3), sizeof(f->owner_id));
	f->tenant = sfsi_db_col_int(st, 4);
	sfs_strlcpy(f->tenant_id, sfsi_db_col_text(st, 5),
		    sizeof(f->tenant_id));
	f->name = sfsi_db_col_dup(st, 6);
	f->filename = sfsi_db_col_dup(st, 7);
	f->description = sfsi_db_col_dup(st, 8);
	f->path = sfsi_db_col_dup(st, 9);
	f->metadata = sfsi_db_col_dup(st, 10);
	f->mime = sfsi_db_col_dup(st, 11);
	f->source_uri = sfsi_db_col_dup(st, 12);
	f->ingest_error = sfsi_db_col_dup(st, 13);
	f->size = sfsi_db_col_null(st, 14) ? -1 : sfsi_db_col_int(st, 14);
	f->duration =
		sfsi_db_col_null(st, 15) ? -1 : sfsi_db_col_double(st, 15);
	t = sfsi_db_col_text(st, 16);
	sfs_strlcpy(f->sha256, t ? t : "", sizeof(f->sha256));
	f->ingestion = (enum sfs_jstate)sfsi_db_col_int(st, 17);
	f->deleted = (int)sfsi_db_col_int(st, 18);
	f->purged = (int)sfsi_db_col_int(st, 19);
	f->discarded = (int)sfsi_db_col_int(st, 20);
	f->created_at = sfsi_db_col_int(st, 21);
	f->deleted_at = ms_or_zero(st, 22);
	f->purged_at = ms_or_zero(st, 23);
	f->purge_at = ms_or_zero(st, 24);
	f->discarded_at = ms_or_zero(st, 25);
	f->publish = (enum sfs_publish)sfsi_db_col_int(st, 26);
	f->published_at = ms_or_zero(st, 27);
	f->la.status = (enum sfs_jstate)sfsi_db_col_int(st, 28);
	f->la.size = sfsi_db_col_null(st, 29) ? -1 : sfsi_db_col_int(st, 29);
	t = sfsi_db_col_text(st, 30);
	sfs_strlcpy(f->la.sha256, t ? t : "", sizeof(f->la.sha256));
	f->la.created_at = ms_or_zero(st, 31);
	f->la.deleted = (int)sfsi_db_col_int(st, 32);
	f->la.purged = (int)sfsi_db_col_int(st, 33);
	f->la.deleted_at = ms_or_zero(st, 34);
	f->la.purged_at = ms_or_zero(st, 35);
	f->la.purge_at = ms_or_zero(st, 36);
	f->la.error = sfsi_db_col_dup(st, 37);
	f->mtime_ns = sfsi_db_col_int(st, 38);
	f->ctime_ns = sfsi_db_col_int(st, 39);
	f->suffixed = (int)sfsi_db_col_int(st, 40);
	if (!f->name || !f->path)
		return sfs_errf(e, SFS_NOMEM, NULL, "out of memory");
	return SFS_OK;
}

enum sfs_status sfsi_file_load_tags(struct db *d, struct sfs_file *f,
				    struct sfs_err *e)
{
	struct db_stmt *st;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	st = sfsi_db_prep(
		d,
		"SELECT t.name FROM file_tag ft"
		" JOIN tag t ON t.id = ft.tag_id WHERE ft.file_id = ?1"
		" ORDER BY t.name COLLATE NOCASE, t.name",
		e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, f->ino);
	while ((rc = sfsi_db_step(st, e)) == 1) {
		if (n + 2 > cap) {
			char **nv;

			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = -1;
				sfs_errf(e, SFS_NOMEM, NULL, "out of memory");
				break;
			}
			v = nv;
		}
		v[n] = sfsi_db_col_dup(st, 0);
		v[++n] = NULL;
	}
	sfsi_db_reset(st);
	if (rc < 0) {
		if (v) {
			v[n] = NULL;
			sfs_strv_free(v);
		}
		return e && e->status ? e->status : SFS_IO;
	}
	f->tags = v;
	f->ntags = n;
	return SFS_OK;
}

static enum sfs_status load(struct db *d, const char *uuid, int64_t ino,
			    struct sfs_file *f, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;
	int rc;

	if (uuid) {
		st = sfsi_db_prep(
			d, "SELECT " FILE_COLS FILE_FROM " WHERE f.uuid = ?1",
			e);
		if (!st)
			return SFS_IO;
		sfsi_db_bind_text(st, 1, uuid);
	} else {
		st = sfsi_db_prep(
			d, "SELECT " FILE_COLS FILE_FROM " WHERE f.id = ?1", e);
		if (!st)
			return SFS_IO;
		sfsi_db_bind_int(st, 1, ino);
	}
	rc = sfsi_db_step(st, e);
	if (rc == 1)
		ret = sfsi_file_from_row(st, f, e);
	else if (rc == 0)
		ret = sfs_errf(e, SFS_NOT_FOUND, "file_not_found",
			       NOT_FOUND_MSG);
	else
		ret = e && e->status ? e->status : SFS_IO;
	sfsi_db_reset(st);
	if (!ret)
		ret = sfsi_file_load_tags(d, f, e);
	return ret;
}

enum sfs_status sfsi_file_load_ino(struct db *d, int64_t ino,
				   struct sfs_file *out, struct sfs_err *e)
{
	sfs_file_init(out);
	return load(d, NULL, ino, out, e);
}

enum sfs_status sfsi_file_resolve(struct db *d, const struct sfs_actor *a,
				  const char *uuid, int64_t ino,
				  struct sfs_file *f, struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;
	char lower[SFS_ID_SIZE];
	int rc;

	sfs_file_init(f);
	if (uuid) {
		if (sfsi_uuid_norm(uuid, lower))
			return sfs_errf(e, SFS_NOT_FOUND, "file_not_found",
					NOT_FOUND_MSG);
		uuid = lower;
	}
	ret = load(d, uuid, ino, f, e);
	if (ret)
		goto fail;
	if (f->tenant != a->tenant)
		goto not_found;
	if (f->owner == a->user) {
		f->access = SFS_ACCESS_OWNER;
		f->perm = SFS_PERM_OWNER;
		return SFS_OK;
	}
	if (f->deleted)
		goto not_found;
	st = sfsi_db_prep(d,
			  "SELECT s.perm, u.uuid, s.created_at FROM share s"
			  " JOIN user u ON u.id = s.created_by"
			  " WHERE s.file_id = ?1 AND s.user_id = ?2",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto fail;
	}
	sfsi_db_bind_int(st, 1, f->ino);
	sfsi_db_bind_int(st, 2, a->user);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		f->access = SFS_ACCESS_DIRECT_SHARE;
		f->perm = (enum sfs_perm)sfsi_db_col_int(st, 0);
		sfs_strlcpy(f->shared_by, sfsi_db_col_text(st, 1),
			    sizeof(f->shared_by));
		f->shared_at = sfsi_db_col_int(st, 2);
	}
	sfsi_db_reset(st);
	if (rc < 0) {
		ret = SFS_IO;
		goto fail;
	}
	if (rc == 1)
		return SFS_OK;
	if (f->publish == SFS_PUBLISH_INTERNAL) {
		f->access = SFS_ACCESS_INTERNAL;
		f->perm = SFS_PERM_VIEW;
		return SFS_OK;
	}
	ret = sfs_errf(e, SFS_FORBIDDEN, "forbidden",
		       "not authorized to access this file");
	goto fail;
not_found:
	ret = sfs_errf(e, SFS_NOT_FOUND, "file_not_found", NOT_FOUND_MSG);
fail:
	/* callers do not release a file they did not get */
	sfs_file_release(f);
	return ret;
}

static enum sfs_status need_perm(const struct sfs_file *f, enum sfs_perm p,
				 const char *what, struct sfs_err *e)
{
	if (f->perm >= p)
		return SFS_OK;
	return sfs_errf(e, SFS_FORBIDDEN, "forbidden",
			"not authorized to %s this file", what);
}

/* ---- validation ------------------------------------------------------ */

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

static enum sfs_status description_check(const char *s, struct sfs_err *e)
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

static enum sfs_status tags_check(const char *const *tags, size_t n,
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

static enum sfs_status set_tags(struct db *d, int64_t tenant, int64_t ino,
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
			"INSERT OR IGNORE INTO file_tag(file_id, tag_id)"
			" SELECT ?1, id FROM tag"
			" WHERE tenant_id = ?2 AND name = ?3",
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
	if (description_check(sp->description, e))
		ret = SFS_INVALID;
	if (sfs_vpath_norm(sp->path ? sp->path : "/", "path", path, e))
		ret = SFS_INVALID;
	if (sfs_metadata_check(sp->metadata, "metadata", e))
		ret = SFS_INVALID;
	if (tags_check(sp->tags, sp->ntags, e))
		ret = SFS_INVALID;
	/* the scheme and form now; addresses at connect time */
	if (sp->uri && sfs_fetch_check_uri(sp->uri, e))
		ret = SFS_INVALID;
	return ret;
}

/* ---- create ---------------------------------------------------------- */

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

static enum sfs_status count_file(struct db *d, int64_t tenant, int delta,
				  struct sfs_err *e)
{
	struct db_stmt *st;
	int rc;

	if (delta > 0) {
		st = sfsi_db_prep(d,
				  "SELECT max_files, used_files FROM tenant"
				  " WHERE id = ?1",
				  e);
		if (!st)
			return SFS_IO;
		sfsi_db_bind_int(st, 1, tenant);
		rc = sfsi_db_step(st, e);
		if (rc == 1 && sfsi_db_col_int(st, 0) > 0 &&
		    sfsi_db_col_int(st, 1) + delta > sfsi_db_col_int(st, 0)) {
			long long max = sfsi_db_col_int(st, 0);

			sfsi_db_reset(st);
			return sfs_errf(e, SFS_QUOTA, "quota_exceeded",
					"the tenant's file count quota of %lld "
					"files would be exceeded",
					max);
		}
		sfsi_db_reset(st);
		if (rc < 0)
			return SFS_IO;
	}
	st = sfsi_db_prep(d,
			  "UPDATE tenant SET used_files = used_files + ?2"
			  " WHERE id = ?1",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, tenant);
	sfsi_db_bind_int(st, 2, delta);
	return sfsi_db_run(st, e);
}

enum sfs_status sfsi_job_enqueue_txn(struct db *d, int kind, int64_t ino,
				     const char *payload, int64_t *id,
				     struct sfs_err *e);

/*
 * A file arrived in its directory under its display name: it is suffixed
 * when another live file of the directory has that name (or never, with
 * no_suffix). Names compare exactly; the NOCASE term uses the index.
 */
static enum sfs_status arrive(struct db *d, int64_t ino, int no_suffix,
			      struct sfs_err *e)
{
	struct db_stmt *st;

	st = sfsi_db_prep(d,
			  "UPDATE file SET entry_suffix = 1 - entry_suffix"
			  " WHERE id = ?1 AND entry_suffix <> CASE WHEN ?2"
			  " THEN 0 ELSE EXISTS(SELECT 1 FROM file o"
			  " WHERE o.owner_id = file.owner_id"
			  " AND o.is_deleted = 0 AND o.dir = file.dir"
			  " AND o.name = file.name COLLATE NOCASE"
			  " AND o.name = file.name AND o.id <> file.id) END",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, no_suffix ? 1 : 0);
	return sfsi_db_run(st, e);
}

static enum sfs_status insert_file(struct db *d, const struct sfs_actor *a,
				   const struct sfs_file_spec *sp,
				   const char *path, struct sfs_stage *content,
				   double duration, const char *mime,
				   int64_t now, char uuid[SFS_ID_SIZE],
				   struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t added = 0, ino, ns = now * 1000000;
	char from_uri[256];
	const char *filename = sp->filename;

	if (!filename && sp->uri) {
		uri_filename(sp->uri, from_uri, sizeof(from_uri));
		filename = from_uri[0] ? from_uri : NULL;
	}
	ret = count_file(d, a->tenant, 1, e);
	if (ret)
		return ret;
	if (content) {
		ret = sfsi_blob_ref_stage(d, a->tenant, content, &added, e);
		if (ret)
			return ret;
	}
	sfs_uuid_new(uuid);
	st = sfsi_db_prep(
		d,
		"INSERT INTO file(uuid, tenant_id, owner_id, name, filename,"
		" description, dir, metadata, source_uri, size, sha256,"
		" blob_ref, ingestion, created_at, want_la, la_status,"
		" mtime_ns, ctime_ns, duration, mime)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
		" ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
		e);
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
	ret = set_tags(d, a->tenant, ino, sp->tags, sp->ntags, e);
	if (!ret && !sp->no_suffix)
		ret = arrive(d, ino, 0, e);
	if (!ret)
		ret = sfsi_dir_count(d, a->user, path, 1, ns, e);
	if (!ret && sp->uri)
		ret = sfsi_job_enqueue_txn(d, SFS_JOB_IMPORT, ino, sp->uri,
					   NULL, e);
	else if (!ret && sp->listening && content)
		ret = sfsi_job_enqueue_txn(d, SFS_JOB_LISTENING, ino, NULL,
					   NULL, e);
	return ret;
}

/*
 * A lazy commit: synchronous=NORMAL leaves a WAL commit unsynced until
 * the next commit at FULL (or a checkpoint, which syncs at NORMAL too),
 * and WAL recovery keeps a prefix of commits, so the next durable commit
 * makes this one durable as well. The setting cannot change inside a
 * transaction: set it before BEGIN, and back before the connection
 * returns to the pool.
 */
static enum sfs_status set_lazy(struct db *d, struct sfs_store *s, int on,
				struct sfs_err *e)
{
	if (!s->cfg.sync_full)
		return SFS_OK; /* NORMAL already */
	return on ? sfsi_db_exec(d, "PRAGMA synchronous=NORMAL", e)
		  : sfsi_db_exec(d, "PRAGMA synchronous=FULL", e);
}

enum sfs_status sfs_file_create(struct sfs_store *s, const struct sfs_actor *a,
				const struct sfs_file_spec *sp,
				struct sfs_stage *content, struct sfs_file *out,
				struct sfs_err *e)
{
	struct sfs_buf path = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	char uuid[SFS_ID_SIZE], mime[96] = "";
	struct db *d = NULL;
	enum sfs_status ret;
	double duration = -1;
	int lazy = 0;

	if (out)
		sfs_file_init(out);
	ret = sfsi_need_scope(a, SFS_SCOPE_WRITE, e);
	if (ret)
		goto out;
	ret = spec_check(sp, &path, e);
	if (ret)
		goto out;
	if (content && sp->uri) {
		ret = sfs_errf(e, SFS_INVALID, NULL,
			       "a file has either content or a URI");
		goto out;
	}
	if (content) {
		ret = sfsi_blob_stage_prepare(s, a->tenant, content, e);
		if (ret)
			goto out;
		sfsi_media_probe(content, &duration, mime, sizeof(mime));
	}
	if (sp->lazy && (content || sp->uri)) {
		ret = sfs_errf(e, SFS_INVALID, NULL,
			       "only a content-less create can be lazy");
		goto out;
	}
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	if (sp->lazy) {
		ret = set_lazy(d, s, 1, e);
		if (ret)
			goto out;
		lazy = 1;
	}
	ret = sfsi_db_begin(d, e);
	if (ret)
		goto out;
	ret = insert_file(d, a, sp, path.buf, content, duration,
			  mime[0] ? mime : NULL, sfs_now_ms(), uuid, e);
	if (ret) {
		sfsi_db_rollback(d);
		goto out;
	}
	sfsi_crash_point("file-before-commit");
	ret = sfsi_db_commit(d, e);
	if (ret)
		goto out;
	if (content)
		sfsi_stage_done(content);
	if (sp->uri || (sp->listening && content))
		sfs_workers_kick(s);
	if (out)
		ret = sfsi_file_resolve(d, a, uuid, 0, out, e);
out:
	if (lazy) {
		if (sfsi_db_in_txn(d))
			sfsi_db_rollback(d);
		if (set_lazy(d, s, 0, NULL))
			sfs_error("file", "cannot restore full sync on a "
					  "connection");
	}
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
	int64_t now = sfs_now_ms();
	size_t i;

	ret = sfsi_need_scope(a, SFS_SCOPE_WRITE, e);
	if (ret)
		goto out;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	ret = sfsi_db_begin(d, e);
	if (ret)
		goto out;
	for (i = 0; i < n && !ret; i++) {
		ret = spec_check(&specs[i], &path, e);
		if (!ret)
			ret = insert_file(d, a, &specs[i], path.buf, NULL, -1,
					  NULL, now, uuid, e);
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

/* ---- read ------------------------------------------------------------ */

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
	/* one snapshot for the row, its share and its tags */
	ret = sfsi_db_begin_read(d, e);
	if (!ret)
		ret = sfsi_file_resolve(d, a, id, ino, out, e);
	sfsi_db_rollback(d);
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_file_get(struct sfs_store *s, const struct sfs_actor *a,
			     const char *id, struct sfs_file *out,
			     struct sfs_err *e)
{
	if (!id)
		return sfs_errf(e, SFS_NOT_FOUND, "file_not_found",
				NOT_FOUND_MSG);
	return get_common(s, a, id, 0, out, e);
}

enum sfs_status sfs_file_get_ino(struct sfs_store *s, const struct sfs_actor *a,
				 int64_t ino, struct sfs_file *out,
				 struct sfs_err *e)
{
	return get_common(s, a, NULL, ino, out, e);
}

/* ---- transactions on one resolved file -------------------------------- */

/*
 * Open a write transaction and resolve the file in it, so that the checks
 * and the change see one state even with other processes writing.
 */
static enum sfs_status begin_file(struct sfs_store *s,
				  const struct sfs_actor *a, const char *id,
				  unsigned scope, struct db **dp,
				  struct sfs_file *f, struct sfs_err *e)
{
	enum sfs_status ret;

	*dp = NULL;
	sfs_file_init(f);
	ret = sfsi_need_scope(a, scope, e);
	if (ret)
		return ret;
	if (!id)
		return sfs_errf(e, SFS_NOT_FOUND, "file_not_found",
				NOT_FOUND_MSG);
	ret = sfsi_db_get(s, dp, e);
	if (ret)
		return ret;
	ret = sfsi_db_begin(*dp, e);
	if (!ret)
		ret = sfsi_file_resolve(*dp, a, id, 0, f, e);
	if (ret) {
		sfsi_db_put(*dp);
		*dp = NULL;
	}
	return ret;
}

static enum sfs_status end_file(struct sfs_store *s, struct db *d,
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

static enum sfs_status exec_ino(struct db *d, const char *sql, int64_t ino,
				int64_t v, struct sfs_err *e)
{
	struct db_stmt *st = sfsi_db_prep(d, sql, e);

	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, v);
	return sfsi_db_run(st, e);
}

/* ---- update ---------------------------------------------------------- */

static enum sfs_status apply_update(struct db *d, const struct sfs_actor *a,
				    struct sfs_file *f,
				    const struct sfs_file_update *u,
				    struct sfs_err *e)
{
	struct sfs_buf path = SFS_BUF_INIT(SFS_VPATH_MAX + 1);
	enum sfs_status ret = SFS_OK;
	int64_t now = sfs_now_ms(), ns = sfs_now_ns();
	struct db_stmt *st;

	if (f->deleted)
		return sfs_errf(e, SFS_CONFLICT, "file_deleted",
				"the file is deleted");
	if ((u->set & SFS_UPD_NAME) && sfs_name_check(u->name, "name", e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_FILENAME) && u->filename &&
	    sfs_name_check(u->filename, "filename", e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_DESCRIPTION) &&
	    description_check(u->description, e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_PATH) &&
	    sfs_vpath_norm(u->path ? u->path : "", "path", &path, e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_METADATA) &&
	    sfs_metadata_check(u->metadata, "metadata", e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_TAGS) && tags_check(u->tags, u->ntags, e))
		ret = SFS_INVALID;
	if ((u->set & SFS_UPD_PUBLISH) && u->publish != SFS_PUBLISH_PRIVATE &&
	    u->publish != SFS_PUBLISH_INTERNAL)
		ret = sfs_err_field(e, "publishMode", "invalid",
				    "must be PRIVATE or INTERNAL");
	if (ret)
		goto out;
	if ((u->set & SFS_UPD_PUBLISH) && f->perm != SFS_PERM_OWNER &&
	    u->publish != f->publish) {
		ret = sfs_errf(e, SFS_FORBIDDEN, "forbidden",
			       "only the owner may change the publish mode");
		goto out;
	}
	if (u->set & SFS_UPD_NAME) {
		st = sfsi_db_prep(d, "UPDATE file SET name = ?2 WHERE id = ?1",
				  e);
		if (!st)
			goto io;
		sfsi_db_bind_int(st, 1, f->ino);
		sfsi_db_bind_text(st, 2, u->name);
		if (sfsi_db_run(st, e))
			goto io;
	}
	if (u->set & SFS_UPD_FILENAME) {
		st = sfsi_db_prep(
			d, "UPDATE file SET filename = ?2 WHERE id = ?1", e);
		if (!st)
			goto io;
		sfsi_db_bind_int(st, 1, f->ino);
		sfsi_db_bind_text(st, 2, u->filename);
		if (sfsi_db_run(st, e))
			goto io;
	}
	if (u->set & SFS_UPD_DESCRIPTION) {
		st = sfsi_db_prep(d,
				  "UPDATE file SET description = ?2"
				  " WHERE id = ?1",
				  e);
		if (!st)
			goto io;
		sfsi_db_bind_int(st, 1, f->ino);
		sfsi_db_bind_text(st, 2, u->description);
		if (sfsi_db_run(st, e))
			goto io;
	}
	if (u->set & SFS_UPD_METADATA) {
		st = sfsi_db_prep(
			d, "UPDATE file SET metadata = ?2 WHERE id = ?1", e);
		if (!st)
			goto io;
		sfsi_db_bind_int(st, 1, f->ino);
		sfsi_db_bind_text(st, 2, u->metadata);
		if (sfsi_db_run(st, e))
			goto io;
	}
	if ((u->set & SFS_UPD_PATH) && strcmp(path.buf, f->path)) {
		/* arrival first: a shared ancestor must not vanish */
		ret = sfsi_dir_count(d, f->owner, path.buf, 1, ns, e);
		if (!ret)
			ret = sfsi_dir_count(d, f->owner, f->path, -1, ns, e);
		if (ret)
			goto out;
		st = sfsi_db_prep(d, "UPDATE file SET dir = ?2 WHERE id = ?1",
				  e);
		if (!st)
			goto io;
		sfsi_db_bind_int(st, 1, f->ino);
		sfsi_db_bind_text(st, 2, path.buf);
		if (sfsi_db_run(st, e))
			goto io;
	}
	if ((u->set & SFS_UPD_NO_SUFFIX) ||
	    ((u->set & SFS_UPD_NAME) && strcmp(u->name, f->name)) ||
	    ((u->set & SFS_UPD_PATH) && strcmp(path.buf, f->path))) {
		ret = arrive(d, f->ino, u->set & SFS_UPD_NO_SUFFIX, e);
		if (ret)
			goto out;
	}
	if (u->set & SFS_UPD_SUFFIX) {
		ret = exec_ino(d,
			       "UPDATE file SET entry_suffix = ?2"
			       " WHERE id = ?1",
			       f->ino, 1, e);
		/* not a change of the file's metadata: ctime stays */
		if (ret || u->set == SFS_UPD_SUFFIX)
			goto out;
	}
	if (u->set & SFS_UPD_TAGS) {
		ret = set_tags(d, f->tenant, f->ino, u->tags, u->ntags, e);
		if (ret)
			goto out;
	}
	if (u->set & SFS_UPD_PUBLISH) {
		st = sfsi_db_prep(d,
				  "UPDATE file SET publish = ?2,"
				  " published_at = CASE WHEN ?2 = 1 AND"
				  " published_at IS NULL THEN ?3"
				  " ELSE published_at END WHERE id = ?1",
				  e);
		if (!st)
			goto io;
		sfsi_db_bind_int(st, 1, f->ino);
		sfsi_db_bind_int(st, 2, u->publish);
		sfsi_db_bind_int(st, 3, now);
		if (sfsi_db_run(st, e))
			goto io;
	}
	if (u->set & SFS_UPD_MTIME) {
		ret = exec_ino(d, "UPDATE file SET mtime_ns = ?2 WHERE id = ?1",
			       f->ino, u->mtime_ns, e);
		if (ret)
			goto out;
	}
	ret = exec_ino(d, "UPDATE file SET ctime_ns = ?2 WHERE id = ?1", f->ino,
		       ns, e);
	(void)a;
	goto out;
io:
	ret = e && e->status ? e->status : SFS_IO;
out:
	sfs_buf_release(&path);
	return ret;
}

enum sfs_status sfs_file_update(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, const struct sfs_file_update *u,
				struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;

	if (out)
		sfs_file_init(out);
	ret = begin_file(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = need_perm(&f, SFS_PERM_EDIT, "modify", e);
	if (!ret)
		ret = apply_update(d, a, &f, u, e);
	return end_file(s, d, ret, a, &f, out, e);
}

/* ---- lifecycle -------------------------------------------------------- */

/*
 * Drop a file row's reference on one of its blobs: `get` selects
 * (tenant_id, sha) where the reference is held, `clear` marks it dropped.
 * Both are string literals (statements are cached by address).
 */
static enum sfs_status release_ref(struct db *d, int64_t ino, const char *get,
				   const char *clear, struct sfs_err *e)
{
	struct db_stmt *st;
	char sha[65] = "";
	int64_t tenant = 0;
	int rc;

	st = sfsi_db_prep(d, get, e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, ino);
	rc = sfsi_db_step(st, e);
	if (rc == 1) {
		tenant = sfsi_db_col_int(st, 0);
		sfs_strlcpy(sha, sfsi_db_col_text(st, 1), sizeof(sha));
	}
	sfsi_db_reset(st);
	if (rc < 0)
		return SFS_IO;
	if (rc == 0)
		return SFS_OK;
	if (exec_ino(d, clear, ino, 0, e))
		return SFS_IO;
	return sfsi_blob_unref(d, tenant, sha, e);
}

enum sfs_status sfsi_file_release_content(struct db *d, int64_t ino,
					  struct sfs_err *e)
{
	return release_ref(d, ino,
			   "SELECT tenant_id, sha256 FROM file"
			   " WHERE id = ?1 AND blob_ref = 1",
			   "UPDATE file SET blob_ref = ?2 WHERE id = ?1", e);
}

enum sfs_status sfsi_file_release_listening(struct db *d, int64_t ino,
					    struct sfs_err *e)
{
	return release_ref(d, ino,
			   "SELECT tenant_id, la_sha256 FROM file"
			   " WHERE id = ?1 AND la_blob_ref = 1",
			   "UPDATE file SET la_blob_ref = ?2 WHERE id = ?1", e);
}

/* Purge a (deleted) file: content and listening audio released for good. */
static enum sfs_status purge_file(struct db *d, const struct sfs_file *f,
				  int64_t now, struct sfs_err *e)
{
	enum sfs_status ret;

	if (f->purged)
		return SFS_OK;
	ret = sfsi_job_cancel_file(d, f->ino, 0, e);
	if (!ret)
		ret = sfsi_file_release_content(d, f->ino, e);
	if (!ret)
		ret = sfsi_file_release_listening(d, f->ino, e);
	if (!ret)
		ret = exec_ino(d,
			       "UPDATE file SET is_purged = 1,"
			       " purged_at = ?2, purge_at = NULL,"
			       " la_purged = CASE WHEN la_status = 0 THEN 0"
			       " ELSE 1 END,"
			       " la_purged_at = CASE WHEN la_status = 0"
			       " THEN NULL ELSE coalesce(la_purged_at, ?2)"
			       " END, la_purge_at = NULL WHERE id = ?1",
			       f->ino, now, e);
	if (!ret)
		ret = count_file(d, f->tenant, -1, e);
	return ret;
}

static enum sfs_status soft_delete(struct db *d, struct sfs_store *s,
				   const struct sfs_file *f, int64_t now,
				   struct sfs_err *e)
{
	struct db_stmt *st;
	enum sfs_status ret;

	ret = sfsi_job_cancel_file(d, f->ino, 0, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d,
			  "UPDATE file SET is_deleted = 1, deleted_at = ?2,"
			  " purge_at = ?3, ctime_ns = ?4,"
			  " ingestion = CASE WHEN ingestion IN (1, 2) THEN 4"
			  " ELSE ingestion END,"
			  " ingest_error = CASE WHEN ingestion IN (1, 2)"
			  " THEN 'cancelled: the file was deleted'"
			  " ELSE ingest_error END,"
			  " la_status = CASE WHEN la_status IN (1, 2) THEN 4"
			  " ELSE la_status END,"
			  " la_error = CASE WHEN la_status IN (1, 2)"
			  " THEN 'cancelled: the file was deleted'"
			  " ELSE la_error END"
			  " WHERE id = ?1",
			  e);
	if (!st)
		return SFS_IO;
	sfsi_db_bind_int(st, 1, f->ino);
	sfsi_db_bind_int(st, 2, now);
	sfsi_db_bind_int(st, 3, now + s->cfg.retention_seconds * 1000);
	sfsi_db_bind_int(st, 4, now * 1000000);
	ret = sfsi_db_run(st, e);
	if (!ret)
		ret = sfsi_dir_count(d, f->owner, f->path, -1, now * 1000000,
				     e);
	return ret;
}

enum sfs_status sfs_file_delete(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, int purge, struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;
	int64_t now = sfs_now_ms();

	ret = begin_file(s, a, id, SFS_SCOPE_DELETE, &d, &f, e);
	if (ret)
		return ret;
	ret = need_perm(&f, SFS_PERM_OWNER, "delete", e);
	if (ret)
		goto out;
	if (f.deleted && !purge) {
		ret = sfs_errf(e, SFS_CONFLICT, "file_deleted",
			       "the file is already deleted");
		goto out;
	}
	if (!f.deleted)
		ret = soft_delete(d, s, &f, now, e);
	if (!ret && purge)
		ret = purge_file(d, &f, now, e);
out:
	return end_file(s, d, ret, a, &f, NULL, e);
}

enum sfs_status sfs_file_restore(struct sfs_store *s, const struct sfs_actor *a,
				 const char *id, struct sfs_file *out,
				 struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;
	int64_t ns = sfs_now_ns();

	if (out)
		sfs_file_init(out);
	ret = begin_file(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = need_perm(&f, SFS_PERM_OWNER, "restore", e);
	if (!ret && !f.deleted)
		ret = sfs_errf(e, SFS_CONFLICT, "file_not_deleted",
			       "the file is not deleted");
	if (!ret && f.purged)
		ret = sfs_errf(e, SFS_GONE, "file_purged",
			       "the file was purged and cannot be restored");
	if (!ret)
		ret = exec_ino(d,
			       "UPDATE file SET is_deleted = 0,"
			       " deleted_at = NULL, purge_at = NULL,"
			       " ctime_ns = ?2 WHERE id = ?1",
			       f.ino, ns, e);
	if (!ret)
		ret = sfsi_dir_count(d, f.owner, f.path, 1, ns, e);
	if (!ret)
		ret = arrive(d, f.ino, 0, e);
	return end_file(s, d, ret, a, &f, out, e);
}

enum sfs_status sfs_file_discard(struct sfs_store *s, const struct sfs_actor *a,
				 const char *id, struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;
	int64_t now = sfs_now_ms();

	ret = begin_file(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = need_perm(&f, SFS_PERM_OWNER, "discard the content of", e);
	if (!ret && f.deleted)
		ret = sfs_errf(e, SFS_CONFLICT, "file_deleted",
			       "the file is deleted");
	if (!ret && f.discarded)
		ret = sfs_errf(e, SFS_CONFLICT, "content_discarded",
			       "the content is already discarded");
	if (!ret)
		ret = sfsi_job_cancel_file(d, f.ino, 0, e);
	if (!ret)
		ret = sfsi_file_release_content(d, f.ino, e);
	if (!ret)
		ret = exec_ino(d,
			       "UPDATE file SET is_discarded = 1,"
			       " discarded_at = ?2,"
			       " ingestion = CASE WHEN ingestion IN (1, 2)"
			       " THEN 4 ELSE ingestion END,"
			       " ingest_error = CASE WHEN ingestion IN (1, 2)"
			       " THEN 'cancelled: the content was discarded'"
			       " ELSE ingest_error END,"
			       " la_status = CASE WHEN la_status IN (1, 2)"
			       " THEN 4 ELSE la_status END,"
			       " la_error = CASE WHEN la_status IN (1, 2)"
			       " THEN 'cancelled: the content was discarded'"
			       " ELSE la_error END WHERE id = ?1",
			       f.ino, now, e);
	if (!ret)
		ret = exec_ino(d, "UPDATE file SET ctime_ns = ?2 WHERE id = ?1",
			       f.ino, now * 1000000, e);
	return end_file(s, d, ret, a, &f, NULL, e);
}

enum sfs_status sfs_file_sync(struct sfs_store *s, const struct sfs_actor *a,
			      const char *id, struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;

	ret = begin_file(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = need_perm(&f, SFS_PERM_EDIT, "modify", e);
	if (!ret && f.deleted)
		ret = sfs_errf(e, SFS_CONFLICT, "file_deleted",
			       "the file is deleted");
	/* an unchanged row still writes its page: the commit syncs it all */
	if (!ret)
		ret = exec_ino(d, "UPDATE file SET ctime_ns = ?2 WHERE id = ?1",
			       f.ino, f.ctime_ns, e);
	return end_file(s, d, ret, a, &f, NULL, e);
}

/* Start (or restart) listening-audio generation of a file. */
enum sfs_status sfsi_file_queue_listening(struct db *d, int64_t ino,
					  struct sfs_err *e)
{
	enum sfs_status ret;

	ret = sfsi_job_cancel_file(d, ino, SFS_JOB_LISTENING, e);
	if (!ret)
		ret = sfsi_file_release_listening(d, ino, e);
	if (!ret)
		ret = exec_ino(d,
			       "UPDATE file SET la_status = 1, la_size = NULL,"
			       " la_sha256 = NULL, la_created_at = NULL,"
			       " la_deleted = 0, la_purged = 0,"
			       " la_deleted_at = NULL, la_purged_at = NULL,"
			       " la_purge_at = NULL, la_error = NULL,"
			       " want_la = ?2 WHERE id = ?1",
			       ino, 1, e);
	if (!ret)
		ret = sfsi_job_enqueue_txn(d, SFS_JOB_LISTENING, ino, NULL,
					   NULL, e);
	return ret;
}

/* Does the file hold a reference on exactly this content? */
static int same_content(struct db *d, int64_t ino, const char *sha)
{
	struct db_stmt *st;
	int same = 0;

	st = sfsi_db_prep(d,
			  "SELECT 1 FROM file WHERE id = ?1 AND blob_ref = 1"
			  " AND sha256 = ?2",
			  NULL);
	if (!st)
		return 0;
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_text(st, 2, sha);
	same = sfsi_db_step(st, NULL) == 1;
	sfsi_db_reset(st);
	return same;
}

enum sfs_status sfs_file_set_content(struct sfs_store *s,
				     const struct sfs_actor *a, const char *id,
				     struct sfs_stage *content, int listening,
				     struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_file f;
	struct db_stmt *st;
	struct db *d;
	enum sfs_status ret;
	int64_t added = 0, ns = sfs_now_ns();
	double duration = -1;
	char mime[96];
	int regen;

	if (out)
		sfs_file_init(out);
	ret = sfsi_blob_stage_prepare(s, a->tenant, content, e);
	if (ret)
		return ret;
	sfsi_media_probe(content, &duration, mime, sizeof(mime));
	ret = begin_file(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = need_perm(&f, SFS_PERM_EDIT, "modify", e);
	if (!ret && f.deleted)
		ret = sfs_errf(e, SFS_CONFLICT, "file_deleted",
			       "the file is deleted");
	if (!ret &&
	    (f.ingestion == SFS_JS_PENDING || f.ingestion == SFS_JS_PROCESSING))
		ret = sfs_errf(e, SFS_NOT_READY, "ingestion_pending",
			       "the file's import has not completed");
	if (ret)
		goto out;
	/*
	 * The same bytes again keep their reference (no relinking under
	 * readers); else release first: the quota counts the new version,
	 * not both.
	 */
	if (!same_content(d, f.ino, sfs_stage_sha256(content))) {
		ret = sfsi_file_release_content(d, f.ino, e);
		if (!ret)
			ret = sfsi_blob_ref_stage(d, f.tenant, content, &added,
						  e);
	}
	if (ret)
		goto out;
	st = sfsi_db_prep(
		d,
		"UPDATE file SET size = ?2, sha256 = ?3, blob_ref = 1,"
		" is_discarded = 0, discarded_at = NULL, duration = ?5,"
		" mime = ?6, ingestion = CASE WHEN ingestion = 0"
		" THEN 0 ELSE 3 END, ingest_error = NULL,"
		" mtime_ns = ?4, ctime_ns = ?4 WHERE id = ?1",
		e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, f.ino);
	sfsi_db_bind_int(st, 2, sfs_stage_size(content));
	sfsi_db_bind_text(st, 3, sfs_stage_sha256(content));
	sfsi_db_bind_int(st, 4, ns);
	if (duration >= 0)
		sfsi_db_bind_double(st, 5, duration);
	else
		sfsi_db_bind_null(st, 5);
	sfsi_db_bind_text(st, 6, mime);
	ret = sfsi_db_run(st, e);
	if (ret)
		goto out;
	ret = sfsi_dir_touch(d, f.owner, f.path, ns, e);
	regen = listening ||
		(f.la.status != SFS_JS_NONE && !f.la.deleted && !f.la.purged);
	if (!ret && regen)
		ret = sfsi_file_queue_listening(d, f.ino, e);
out:
	ret = end_file(s, d, ret, a, &f, out, e);
	if (!ret) {
		sfsi_stage_done(content);
		sfs_workers_kick(s);
	}
	return ret;
}

enum sfs_status sfs_file_open(struct sfs_store *s, const struct sfs_actor *a,
			      const char *id, enum sfs_content which, int *fd,
			      struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d = NULL;
	enum sfs_status ret;

	*fd = -1;
	sfs_file_init(&f);
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (ret)
		goto out;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	ret = sfsi_file_resolve(d, a, id, 0, &f, e);
	sfsi_db_put(d);
	if (ret)
		goto out;
	if (f.deleted || f.purged) {
		ret = sfs_errf(e, SFS_GONE, "file_deleted",
			       "the file has been deleted");
		goto out;
	}
	if (which == SFS_CONTENT_ORIGINAL) {
		if (f.discarded) {
			ret = sfs_errf(e, SFS_GONE, "content_discarded",
				       "the file's content has been "
				       "discarded");
		} else if (f.ingestion != SFS_JS_NONE &&
			   f.ingestion != SFS_JS_COMPLETED) {
			ret = sfs_errf(
				e, SFS_NOT_READY, "ingestion_not_completed",
				"the file's ingestion is %s",
				f.ingestion == SFS_JS_FAILED ? "failed"
							     : "not completed");
		} else if (f.size == 0) {
			/* an empty file made without content has no blob */
			*fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (*fd < 0)
				ret = sfsi_errno_status(e, errno,
							"opening /dev/null");
		} else {
			ret = sfs_blob_open(s, f.tenant, f.sha256, fd, NULL, e);
		}
	} else {
		if (f.la.deleted || f.la.purged) {
			ret = sfs_errf(e, SFS_GONE, "listening_audio_deleted",
				       "the listening audio has been %s",
				       f.la.purged ? "purged" : "deleted");
		} else if (f.la.status != SFS_JS_COMPLETED) {
			ret = sfs_errf(
				e, SFS_NOT_READY, "listening_audio_not_ready",
				f.la.status == SFS_JS_NONE
					? "the file has no listening audio"
					: "the listening audio is not ready");
		} else {
			ret = sfs_blob_open(s, f.tenant, f.la.sha256, fd, NULL,
					    e);
		}
	}
out:
	if (!ret && out) {
		*out = f;
		return SFS_OK;
	}
	sfs_file_release(&f);
	return ret;
}

/* ---- listening audio -------------------------------------------------- */

enum sfs_status sfs_listening_generate(struct sfs_store *s,
				       const struct sfs_actor *a,
				       const char *id, struct sfs_file *out,
				       struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;

	if (out)
		sfs_file_init(out);
	ret = begin_file(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = need_perm(&f, SFS_PERM_EDIT, "modify", e);
	if (!ret && (f.deleted || f.purged))
		ret = sfs_errf(e, SFS_NOT_FOUND, "file_not_found",
			       "the file has been deleted");
	else if (!ret && f.discarded)
		ret = sfs_errf(e, SFS_GONE, "content_discarded",
			       "the file's content has been discarded");
	else if (!ret && f.ingestion != SFS_JS_NONE &&
		 f.ingestion != SFS_JS_COMPLETED)
		ret = sfs_errf(e, SFS_NOT_READY, "ingestion_not_completed",
			       "the file's ingestion is not completed");
	else if (!ret && (f.la.deleted || f.la.purged))
		ret = sfs_errf(e, SFS_CONFLICT, "listening_audio_deleted",
			       "the listening audio has been deleted");
	else if (!ret && f.la.status != SFS_JS_NONE &&
		 f.la.status != SFS_JS_FAILED)
		ret = sfs_errf(e, SFS_CONFLICT, "listening_audio_exists",
			       "listening audio already exists or is in "
			       "progress");
	if (!ret)
		ret = sfsi_file_queue_listening(d, f.ino, e);
	ret = end_file(s, d, ret, a, &f, out, e);
	if (!ret)
		sfs_workers_kick(s);
	return ret;
}

enum sfs_status sfs_listening_delete(struct sfs_store *s,
				     const struct sfs_actor *a, const char *id,
				     int purge, struct sfs_err *e)
{
	struct sfs_file f;
	struct db_stmt *st;
	struct db *d;
	enum sfs_status ret;
	int64_t now = sfs_now_ms();

	ret = begin_file(s, a, id, SFS_SCOPE_DELETE, &d, &f, e);
	if (ret)
		return ret;
	ret = need_perm(&f, SFS_PERM_OWNER, "delete", e);
	if (!ret && f.la.status == SFS_JS_NONE)
		ret = sfs_errf(e, SFS_NOT_FOUND, "listening_audio_not_found",
			       "the file has no listening audio");
	else if (!ret && f.la.deleted && !purge)
		ret = sfs_errf(e, SFS_CONFLICT, "listening_audio_deleted",
			       "the listening audio is already deleted");
	if (ret)
		goto out;
	ret = sfsi_job_cancel_file(d, f.ino, SFS_JOB_LISTENING, e);
	if (ret)
		goto out;
	if (!f.la.deleted) {
		st = sfsi_db_prep(d,
				  "UPDATE file SET la_deleted = 1,"
				  " la_deleted_at = ?2, la_purge_at = ?3,"
				  " la_status = CASE WHEN la_status IN (1, 2)"
				  " THEN 4 ELSE la_status END,"
				  " la_error = CASE WHEN la_status IN (1, 2)"
				  " THEN 'cancelled: deleted' ELSE la_error END"
				  " WHERE id = ?1",
				  e);
		if (!st) {
			ret = SFS_IO;
			goto out;
		}
		sfsi_db_bind_int(st, 1, f.ino);
		sfsi_db_bind_int(st, 2, now);
		sfsi_db_bind_int(st, 3, now + s->cfg.retention_seconds * 1000);
		ret = sfsi_db_run(st, e);
	}
	if (!ret && purge && !f.la.purged) {
		ret = sfsi_file_release_listening(d, f.ino, e);
		if (!ret)
			ret = exec_ino(d,
				       "UPDATE file SET la_purged = 1,"
				       " la_purged_at = ?2, la_purge_at = NULL"
				       " WHERE id = ?1",
				       f.ino, now, e);
	}
out:
	return end_file(s, d, ret, a, &f, NULL, e);
}

enum sfs_status sfs_listening_purge(struct sfs_store *s,
				    const struct sfs_actor *a, const char *id,
				    struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d;
	enum sfs_status ret;

	ret = begin_file(s, a, id, SFS_SCOPE_WRITE, &d, &f, e);
	if (ret)
		return ret;
	ret = need_perm(&f, SFS_PERM_OWNER, "purge", e);
	if (!ret && f.la.status == SFS_JS_NONE)
		ret = sfs_errf(e, SFS_NOT_FOUND, "listening_audio_not_found",
			       "the file has no listening audio");
	else if (!ret && (f.la.status != SFS_JS_COMPLETED || f.la.deleted ||
			  f.la.purged))
		ret = sfs_errf(e, SFS_CONFLICT, "listening_audio_conflict",
			       "the listening audio is %s",
			       f.la.purged    ? "already purged"
			       : f.la.deleted ? "deleted"
					      : "not completed");
	if (!ret)
		ret = sfsi_file_release_listening(d, f.ino, e);
	if (!ret)
		ret = exec_ino(d,
			       "UPDATE file SET la_purged = 1,"
			       " la_purged_at = ?2, la_purge_at = NULL"
			       " WHERE id = ?1",
			       f.ino, sfs_now_ms(), e);
	return end_file(s, d, ret, a, &f, NULL, e);
}

/* ---- job outcomes ----------------------------------------------------- */

enum sfs_status sfsi_file_job_state(struct sfs_store *s,
				    const struct sfs_job *j, enum sfs_jstate js,
				    const char *reason, struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t ino = j->file_ino;

	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	ret = sfsi_db_begin(d, e);
	if (!ret)
		ret = sfsi_job_holds(d, j, e);
	if (ret)
		goto out;
	if (j->kind == SFS_JOB_IMPORT)
		st = sfsi_db_prep(d,
				  "UPDATE file SET ingestion = ?2,"
				  " ingest_error = ?3 WHERE id = ?1"
				  " AND ingestion IN (1, 2) AND is_deleted = 0",
				  e);
	else
		st = sfsi_db_prep(
			d,
			"UPDATE file SET la_status = ?2, la_error = ?3"
			" WHERE id = ?1 AND la_status IN (1, 2)"
			" AND la_deleted = 0 AND is_deleted = 0",
			e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, js);
	sfsi_db_bind_text(st, 3, reason);
	ret = sfsi_db_run(st, e);
	if (!ret)
		ret = sfsi_db_commit(d, e);
out:
	if (ret)
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	return ret;
}

/*
 * The start of a job outcome: finish the stage, open a write transaction,
 * insist the job still holds its claim, load the file. On failure *d is
 * released and NULL (f stays initialised).
 */
static enum sfs_status begin_outcome(struct sfs_store *s,
				     const struct sfs_job *j,
				     struct sfs_stage *stage, struct db **d,
				     struct sfs_file *f, struct sfs_err *e)
{
	enum sfs_status ret;

	*d = NULL;
	sfs_file_init(f);
	ret = sfs_stage_finish(stage, e);
	if (!ret)
		ret = sfsi_db_get(s, d, e);
	if (ret)
		return ret;
	ret = sfsi_db_begin(*d, e);
	if (!ret)
		ret = sfsi_job_holds(*d, j, e);
	if (!ret)
		ret = sfsi_file_load_ino(*d, j->file_ino, f, e);
	if (ret) {
		sfsi_db_put(*d); /* rolls back */
		*d = NULL;
	}
	return ret;
}

enum sfs_status sfsi_file_import_done(struct sfs_store *s,
				      const struct sfs_job *j,
				      struct sfs_stage *stage, const char *mime,
				      double duration, struct sfs_err *e)
{
	struct sfs_file f;
	struct db_stmt *st;
	struct db *d = NULL;
	enum sfs_status ret;
	int64_t added = 0, ino = j->file_ino;

	ret = begin_outcome(s, j, stage, &d, &f, e);
	if (ret)
		goto out;
	if (f.deleted || f.discarded || f.ingestion != SFS_JS_PROCESSING) {
		ret = sfs_errf(e, SFS_CONFLICT, NULL,
			       "the import was cancelled");
		goto out;
	}
	ret = sfsi_blob_ref_stage(d, f.tenant, stage, &added, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(
		d,
		"UPDATE file SET size = ?2, sha256 = ?3, blob_ref = 1,"
		" ingestion = 3, ingest_error = NULL, mime = ?4,"
		" duration = ?5, mtime_ns = ?6, ctime_ns = ?6"
		" WHERE id = ?1",
		e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, sfs_stage_size(stage));
	sfsi_db_bind_text(st, 3, sfs_stage_sha256(stage));
	sfsi_db_bind_text(st, 4, mime);
	if (duration >= 0)
		sfsi_db_bind_double(st, 5, duration);
	else
		sfsi_db_bind_null(st, 5);
	sfsi_db_bind_int(st, 6, sfs_now_ns());
	ret = sfsi_db_run(st, e);
	if (!ret && f.source_uri && f.la.status == SFS_JS_NONE) {
		struct db_stmt *w = sfsi_db_prep(d,
						 "SELECT want_la FROM file"
						 " WHERE id = ?1",
						 e);
		int want = 0;

		if (!w) {
			ret = SFS_IO;
			goto out;
		}
		sfsi_db_bind_int(w, 1, ino);
		if (sfsi_db_step(w, e) == 1)
			want = (int)sfsi_db_col_int(w, 0);
		sfsi_db_reset(w);
		if (want)
			ret = sfsi_file_queue_listening(d, ino, e);
	}
	if (!ret)
		ret = sfsi_db_commit(d, e);
	if (!ret)
		sfsi_stage_done(stage);
out:
	if (ret && d)
		sfsi_db_rollback(d);
	sfs_file_release(&f);
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfsi_file_listening_done(struct sfs_store *s,
					 const struct sfs_job *j,
					 struct sfs_stage *stage,
					 struct sfs_err *e)
{
	struct sfs_file f;
	struct db_stmt *st;
	struct db *d = NULL;
	enum sfs_status ret;
	int64_t added = 0, ino = j->file_ino;

	ret = begin_outcome(s, j, stage, &d, &f, e);
	if (ret)
		goto out;
	if (f.deleted || f.la.deleted || f.la.status != SFS_JS_PROCESSING) {
		ret = sfs_errf(e, SFS_CONFLICT, NULL,
			       "the generation was cancelled");
		goto out;
	}
	ret = sfsi_blob_ref_stage(d, f.tenant, stage, &added, e);
	if (ret)
		goto out;
	st = sfsi_db_prep(
		d,
		"UPDATE file SET la_status = 3, la_size = ?2,"
		" la_sha256 = ?3, la_blob_ref = 1, la_created_at = ?4,"
		" la_error = NULL WHERE id = ?1",
		e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, ino);
	sfsi_db_bind_int(st, 2, sfs_stage_size(stage));
	sfsi_db_bind_text(st, 3, sfs_stage_sha256(stage));
	sfsi_db_bind_int(st, 4, sfs_now_ms());
	ret = sfsi_db_run(st, e);
	if (!ret)
		ret = exec_ino(d, "UPDATE file SET ctime_ns = ?2 WHERE id = ?1",
			       ino, sfs_now_ns(), e);
	if (!ret)
		ret = sfsi_db_commit(d, e);
	if (!ret)
		sfsi_stage_done(stage);
out:
	if (ret && d)
		sfsi_db_rollback(d);
	sfs_file_release(&f);
	sfsi_db_put(d);
	return ret;
}

/* ---- janitor ---------------------------------------------------------- */

enum sfs_status sfs_store_janitor_run(struct sfs_store *s, int *n,
				      struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int64_t now = sfs_now_ms(), inos[64];
	int k = 0, m = 0, i, rc, total = 0;

	if (n)
		*n = 0;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	do {
		ret = sfsi_db_begin(d, e);
		if (ret)
			break;
		st = sfsi_db_prep(
			d,
			"SELECT id FROM file WHERE is_deleted = 1"
			" AND is_purged = 0 AND purge_at <= ?1 LIMIT 64",
			e);
		if (!st) {
			ret = SFS_IO;
			break;
		}
		sfsi_db_bind_int(st, 1, now);
		for (k = 0; k < 64 && (rc = sfsi_db_step(st, e)) == 1; k++)
			inos[k] = sfsi_db_col_int(st, 0);
		sfsi_db_reset(st);
		if (k < 64 && rc < 0)
			ret = e && e->status ? e->status : SFS_IO;
		for (i = 0; i < k && !ret; i++) {
			struct sfs_file f;

			ret = sfsi_file_load_ino(d, inos[i], &f, e);
			if (!ret)
				ret = purge_file(d, &f, now, e);
			sfs_file_release(&f);
		}
		/* listening audio whose own retention ran out */
		st = sfsi_db_prep(d,
				  "SELECT id FROM file WHERE la_deleted = 1"
				  " AND la_purged = 0 AND la_purge_at <= ?1"
				  " LIMIT 64",
				  e);
		if (!ret && !st)
			ret = SFS_IO;
		m = 0;
		if (!ret) {
			sfsi_db_bind_int(st, 1, now);
			while (m < 64 && sfsi_db_step(st, e) == 1)
				inos[m++] = sfsi_db_col_int(st, 0);
			sfsi_db_reset(st);
			for (i = 0; i < m && !ret; i++) {
				ret = sfsi_file_release_listening(d, inos[i],
								  e);
				if (!ret)
					ret = exec_ino(
						d,
						"UPDATE file SET la_purged = 1,"
						" la_purged_at = ?2,"
						" la_purge_at = NULL WHERE id "
						"= ?1",
						inos[i], now, e);
			}
		}
		if (ret) {
			sfsi_db_rollback(d);
			break;
		}
		ret = sfsi_db_commit(d, e);
		total += k + m;
	} while (!ret && (k == 64 || m == 64));
	sfsi_db_put(d);
	if (n)
		*n = total;
	if (total)
		sfs_info("janitor", "purged %d expired item(s)", total);
	return ret;
}
