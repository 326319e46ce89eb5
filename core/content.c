/*
 * A file's content: new content versions (the same id, a new blob; the
 * listening audio made again), durable syncs of a file's row, and opening
 * the original or its listening MP3 for reading after the file model's
 * checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "blob_i.h"
#include "stage_i.h"
#include "auth_i.h"
#include "db_i.h"
#include "dir_i.h"
#include "file_i.h"
#include "job_i.h"
#include "speechfs/blob.h"
#include "speechfs/job.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "store_i.h"
#include "util_i.h"
#include "audio_i.h"
#include "remote_i.h"

enum sfs_status sfs_file_sync(struct sfs_store *s, const struct sfs_actor *a,
			      const char *id, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->file_sync(s, id, e);
	struct sfs_file f;
	enum sfs_status ret;

	ret = sfs_file_get(s, a, id, &f, e);
	if (ret)
		return ret;
	ret = sfs_file_allows(&f, SFS_ACT_WRITE, e);
	sfs_file_release(&f);
	/*
	 * The file's commits are in the WAL: syncing it makes them durable,
	 * whichever process made them (this one may have made none).
	 */
	if (!ret)
		ret = sfsi_db_sync_all(s, e);
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

int sfs_file_content_matches(const struct sfs_file *f, const char *if_match)
{
	if (!if_match)
		return 1;
	if (!strcmp(if_match, "*"))
		return f->sha256[0] != '\0';
	return !strcasecmp(if_match, f->sha256);
}

/* Is the file's content the one the caller saw (sfs_file_set_content_if)? */
static enum sfs_status check_if_match(const struct sfs_file *f,
				      const char *if_match, struct sfs_err *e)
{
	if (sfs_file_content_matches(f, if_match))
		return SFS_OK;
	return sfs_errf(e, SFS_PRECONDITION, SFS_R_NONE,
			"the file's content is no longer the one expected "
			"(its sha256 is %s)",
			f->sha256[0] ? f->sha256 : "null: it has none");
}

enum sfs_status sfs_file_set_content(struct sfs_store *s,
				     const struct sfs_actor *a, const char *id,
				     struct sfs_stage *content, unsigned flags,
				     struct sfs_file *out, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->set_content(s, id, content, flags, out, e);
	return sfs_file_set_content_if(s, a, id, content, flags, NULL, out, e);
}

enum sfs_status sfs_file_set_content_if(struct sfs_store *s,
					const struct sfs_actor *a,
					const char *id,
					struct sfs_stage *content,
					unsigned flags, const char *if_match,
					struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_file f;
	struct db_stmt *st;
	struct db *d;
	enum sfs_status ret;
	int64_t added = 0, ns = sfs_now_ns();
	double duration = -1;
	char mime[96];
	int had, audio;

	if (out)
		sfs_file_init(out);
	ret = sfsi_blob_stage_prepare(s, a->tenant, content, e);
	if (ret)
		return ret;
	sfsi_audio_probe_stage(content, &duration, mime, sizeof(mime));
	/* made durable below, with concurrent commits (group commit) */
	ret = sfsi_file_begin_content(s, a, id, SFS_SCOPE_WRITE, content, &d,
				      &f, e);
	if (ret)
		return ret;
	ret = sfs_file_allows(&f, SFS_ACT_WRITE, e);
	if (!ret &&
	    (f.ingestion == SFS_JS_PENDING || f.ingestion == SFS_JS_PROCESSING))
		ret = sfs_errf(e, SFS_NOT_READY, SFS_R_INGESTION_PENDING,
			       "the file's import has not completed");
	if (!ret)
		ret = check_if_match(&f, if_match, e);
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
	had = f.la.status != SFS_JS_NONE && !f.la.deleted && !f.la.purged;
	audio = !(flags & SFS_SET_IF_AUDIO) || !strncmp(mime, "audio/", 6);
	if (!ret && audio && (had || (flags & SFS_SET_LISTENING)))
		ret = sfsi_file_queue_listening(d, f.ino, e);
	else if (!ret && !audio && had)
		ret = sfsi_file_clear_listening(d, f.ino, e);
out:
	ret = sfsi_file_end(s, d, ret, a, &f, out, e);
	if (!ret)
		sfsi_stage_done(content);
	if (!ret && !(flags & SFS_SET_NOSYNC))
		ret = sfsi_db_sync(s, e);
	/* tests: the new version durable, its caller not told (answer lost) */
	if (!ret)
		sfsi_crash_point("content-committed");
	if (!ret)
		sfs_workers_kick(s);
	return ret;
}

enum sfs_content_state sfs_file_content_state(const struct sfs_file *f,
					      enum sfs_content which)
{
	enum sfs_jstate js;

	if (f->purged)
		return SFS_CS_PURGED;
	if (f->deleted)
		return SFS_CS_DELETED;
	if (which == SFS_CONTENT_ORIGINAL) {
		if (f->discarded)
			return SFS_CS_DISCARDED;
		js = f->ingestion == SFS_JS_NONE ? SFS_JS_COMPLETED
						 : f->ingestion;
	} else {
		if (f->la.purged)
			return SFS_CS_PURGED;
		if (f->la.deleted)
			return SFS_CS_DELETED;
		js = f->la.status;
	}
	switch (js) {
	case SFS_JS_COMPLETED:
		return SFS_CS_READY;
	case SFS_JS_PENDING:
		return SFS_CS_PENDING;
	case SFS_JS_PROCESSING:
		return SFS_CS_PROCESSING;
	case SFS_JS_FAILED:
		return SFS_CS_FAILED;
	default:
		return SFS_CS_NONE;
	}
}

enum sfs_status sfs_content_state_check(enum sfs_content_state cs,
					enum sfs_content which,
					struct sfs_err *e)
{
	int la = which == SFS_CONTENT_LISTENING;

	switch (cs) {
	case SFS_CS_READY:
		return SFS_OK;
	case SFS_CS_DISCARDED:
		return sfs_errf(e, SFS_GONE, SFS_R_CONTENT_DISCARDED,
				"the file's content has been discarded");
	case SFS_CS_DELETED:
	case SFS_CS_PURGED:
		if (la)
			return sfs_errf(
				e, SFS_GONE, SFS_R_LISTENING_AUDIO_DELETED,
				"the listening audio has been %s",
				cs == SFS_CS_PURGED ? "purged" : "deleted");
		return sfs_errf(e, SFS_GONE, SFS_R_FILE_DELETED,
				"the file has been deleted");
	case SFS_CS_FAILED:
		if (!la)
			return sfs_errf(e, SFS_NOT_READY, SFS_R_IMPORT_FAILED,
					"the file's import failed");
		/* fall through */
	default:
		if (la)
			return sfs_errf(e, SFS_NOT_READY,
					SFS_R_LISTENING_AUDIO_NOT_READY,
					cs == SFS_CS_NONE
						? "the file has no listening "
						  "audio"
						: "the listening audio is not "
						  "ready");
		return sfs_errf(e, SFS_NOT_READY, SFS_R_INGESTION_NOT_COMPLETED,
				"the file's ingestion is not completed");
	}
}

static enum sfs_status open_common(struct sfs_store *s,
				   const struct sfs_actor *a, const char *id,
				   int64_t ino, enum sfs_content which,
				   unsigned flags, struct sfs_blob **blob,
				   struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_file f;
	struct db *d = NULL;
	enum sfs_status ret;

	*blob = NULL;
	sfs_file_init(&f);
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (ret)
		goto out;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	ret = sfsi_file_resolve(d, a, id, ino, &f, e);
	sfsi_db_put(d);
	if (!ret &&
	    !(which == SFS_CONTENT_ORIGINAL && (flags & SFS_BLOB_IF_DELETED) &&
	      f.deleted && !f.purged && !f.discarded))
		ret = sfs_content_state_check(sfs_file_content_state(&f, which),
					      which, e);
	if (ret)
		goto out;
	flags &= ~(unsigned)SFS_BLOB_IF_DELETED;
	if (which == SFS_CONTENT_LISTENING)
		ret = sfs_blob_open(s, f.tenant, f.la.sha256, flags, blob, e);
	else if (f.size == 0)
		/* an empty file made without content has no blob */
		ret = sfs_blob_open_empty(blob, e);
	else
		ret = sfs_blob_open(s, f.tenant, f.sha256, flags, blob, e);
out:
	if (!ret && out) {
		*out = f;
		return SFS_OK;
	}
	sfs_file_release(&f);
	return ret;
}

enum sfs_status sfs_file_open(struct sfs_store *s, const struct sfs_actor *a,
			      const char *id, enum sfs_content which,
			      unsigned flags, struct sfs_blob **blob,
			      struct sfs_file *out, struct sfs_err *e)
{
	if (!id) {
		*blob = NULL;
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				SFSI_FILE_NOT_FOUND_MSG);
	}
	return open_common(s, a, id, 0, which, flags, blob, out, e);
}

enum sfs_status sfs_file_open_ino(struct sfs_store *s,
				  const struct sfs_actor *a, int64_t ino,
				  enum sfs_content which, unsigned flags,
				  struct sfs_blob **blob, struct sfs_file *out,
				  struct sfs_err *e)
{
	if (s->ops)
		return s->ops->file_open_ino(s, ino, which, flags, blob, out,
					     e);
	return open_common(s, a, NULL, ino, which, flags, blob, out, e);
}
