/*
 * The remote store's writes (remote_i.h): each public call that changes
 * something is one request to the server, which holds every rule and
 * answers only once the change is durable there; its error comes back as
 * the core's status and reason (remote.c), so the mount's one errno
 * table says EDQUOT, ENOSPC, EACCES, ENOENT, ENOTEMPTY ... as locally.
 * New content goes up from the stage's file (staged under the block
 * cache's directory) with PUT …/files/{id}/content; a new file is made
 * empty by a multipart POST, then filled the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "remote_i.h"
#include "stage_i.h"
#include "util_i.h"
#include "speechfs/json.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define API "/api/v1/speech-services"
#define ANSWER_MAX (64 << 20)

/*
 * method path with the JSON body j (stolen; NULL: none): the answer's
 * file into out (may be NULL).
 */
static enum sfs_status send_json(struct sfs_store *s, const char *method,
				 const char *path, json_t *j,
				 struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	struct sfsi_remote_req q = { .method = method, .path = path, .fd = -1 };
	enum sfs_status st = SFS_OK;
	char *text = NULL;

	if (out)
		sfs_file_init(out);
	if (j && !(text = json_dumps(j, JSON_COMPACT)))
		st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	json_decref(j);
	q.body = text;
	if (!st)
		st = sfsi_remote_request(sfsi_remote_of(s), &q, &b, e);
	if (!st && out)
		st = sfsi_remote_file_json(s, b.buf, b.len, out, e);
	free(text);
	sfs_buf_release(&b);
	return st;
}

static enum sfs_status file_path(const char *id, const char *tail, char *out,
				 size_t size, struct sfs_err *e)
{
	if (!sfs_uuid_valid(id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this id exists");
	snprintf(out, size, API "/files/%s%s", id, tail);
	return SFS_OK;
}

/*
 * The query argument that asks the server to keep the directories a call
 * empties ("?keepDirs=true", or "&…" after another: first), when this
 * store keeps them (sfs_store_keep_dirs) and the server can; else "".
 */
static const char *keep_arg(struct sfs_store *s, int first)
{
	if (!sfsi_keep_dirs(s) || !(sfsi_remote_has(s) & SFS_REMOTE_KEEP_DIRS))
		return "";
	return first ? "?keepDirs=true" : "&keepDirs=true";
}

/* ---- files ------------------------------------------------------------- */

/* Before the body of a whole upload: the stage settled, fd at 0. */
static enum sfs_status whole(struct sfs_stage *content, int64_t *size,
			     struct sfs_err *e);
static enum sfs_status check_sent(struct sfs_stage *content,
				  const struct sfs_file *f, int64_t crc32c,
				  struct sfs_err *e);
static enum sfs_status refused_sent(enum sfs_status st, const char *id,
				    struct sfs_err *e);
static const uint32_t *send_crc(struct sfs_store *s,
				const struct sfs_stage *content, uint32_t *crc);

enum sfs_status sfsi_remote_file_create(struct sfs_store *s,
					const struct sfs_file_spec *spec,
					struct sfs_stage *content,
					enum sfsi_at_stop at_stop,
					struct sfs_file *out, char *dir_state,
					struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	const char *form[] = { "name",
			       spec->name,
			       "path",
			       spec->path ? spec->path : "/",
			       "generateListeningAudio",
			       spec->listening ? "true" : "false",
			       NULL };
	struct sfsi_remote_req q = {
		.method = "POST", .path = API "/files", .fd = -1, .form = form
	};
	struct sfs_file full;
	char path[160];
	enum sfs_status st = SFS_OK;
	int64_t crc32c = -1;
	uint32_t sent_crc;
	/* an id known beforehand: the file made with its content, in one
	 * request */
	int one = spec->id_key && content, lazy;

	sfs_file_init(out);
	if (spec->uri || spec->ntags || spec->metadata || spec->description)
		return sfsi_remote_refuse("create files with these fields", e);
	/* not durable before its content's commit or sfs_file_sync: one
	 * WAL sync on the server per new file, not two */
	lazy = spec->lazy && !content && (sfsi_remote_has(s) & SFS_REMOTE_LAZY);
	if (lazy)
		q.path = API "/files?lazy=true";
	if (spec->id_key) {
		if (!sfs_uuid_valid(spec->id_key))
			return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
					"'%s' is no id key", spec->id_key);
		snprintf(path, sizeof(path), API "/files?idKey=%s%s",
			 spec->id_key, lazy ? "&lazy=true" : "");
		q.path = path;
	}
	if (one) {
		st = whole(content, &q.size, e);
		q.fd = content->fd;
		if (!st)
			q.content_crc32c = send_crc(s, content, &sent_crc);
	}
	q.form_file = spec->filename ? spec->filename : spec->name;
	q.at_stop = content ? SFSI_STOP_ENDS : at_stop;
	q.dir_state = dir_state;
	q.dir_state_size = dir_state ? SFSI_DIR_STATE_MAX : 0;
	q.crc32c = &crc32c;
	if (!st)
		st = refused_sent(
			sfsi_remote_request(sfsi_remote_of(s), &q, &b, e),
			spec->id_key, e);
	if (!st)
		st = sfsi_remote_file_json(s, b.buf, b.len, out, e);
	if (!st && one)
		st = check_sent(content, out, crc32c, e);
	sfs_buf_release(&b);
	/* the file answered is the one with the content: on a seed-only
	 * server a new one, the empty one purged */
	if (!st && content && !one)
		st = sfsi_remote_set_content(s, out->id, content, 0, &full,
					     dir_state, e);
	if (st)
		sfs_file_release(out); /* the caller gets no file */
	else if (content && !one) {
		sfs_file_release(out);
		*out = full;
	}
	return st;
}

enum sfs_status sfsi_remote_file_sync(struct sfs_store *s, const char *id,
				      struct sfs_err *e)
{
	char path[160];
	enum sfs_status st;

	/* without the extension every create was durable when answered */
	if (!(sfsi_remote_has(s) & SFS_REMOTE_LAZY))
		return SFS_OK;
	st = file_path(id, "/sync", path, sizeof(path), e);
	if (!st)
		st = send_json(s, "POST", path, NULL, NULL, e);
	return st;
}

/*
 * The stage's file holds all its bytes, and no thread of the stage's
 * writes to it any more: a stage written in order past a few MiB is
 * written by a pipeline (stage.c) whose writer thread appends at the
 * file's offset, and keeps its last partial chunk in memory until the
 * stage is hashed. Uploading straight from the file raced with that
 * thread: the upload's length came from the file's end while chunks were
 * still on their way, the rewind to 0 moved the offset the writer
 * appends at, and the tail never reached the file (the server got fewer
 * bytes than the upload announced and waited for the rest until its
 * idle timeout; or it got a short file).
 */
static enum sfs_status settle(struct sfs_stage *content, struct sfs_err *e)
{
	return sfsi_stage_hash(content, e);
}

/*
 * A streamed stage is hashed with its pipe held (sfsi_stage_pipe_hold):
 * the part of the stream's window the server had not freed yet (32-128
 * MiB by default) stays in the ring's memory instead of going to the
 * stage's file while close() waits for the answer; a whole PUT, as a
 * resume (remote_stream.c), ends the pipe first (settle's race above).
 * An answer the commit takes leaves nothing to send again: the bytes
 * never go to the file.
 */
static enum sfs_status settle_held(struct sfs_stage *content, struct sfs_err *e)
{
	return sfsi_stage_hash_held(content, e);
}

/*
 * The server holds the bytes sent: its answer's size and CRC32C (crc32c,
 * -1 when it gave none) are the stage's when the stage has only that,
 * else its sha256. A stage of a mount whose server answers with the
 * CRC32C hashes no SHA-256 (sfs_stage_new): one answer without it fails
 * as one with another.
 */
static enum sfs_status check_sent(struct sfs_stage *content,
				  const struct sfs_file *f, int64_t crc32c,
				  struct sfs_err *e)
{
	const char *sha = sfs_stage_sha256(content);
	uint32_t crc = sfs_stage_crc32c(content);
	enum sfs_status st = SFS_OK;

	if (content->crc_only &&
	    (crc32c != (int64_t)crc || f->size != sfs_stage_size(content))) {
		if (crc32c < 0)
			st = sfs_errf(e, SFS_IO, SFS_R_NONE,
				      "the server's answer for '%s' has no "
				      "crc32c of the bytes it got (%lld "
				      "bytes; sent %lld)",
				      f->id, (long long)f->size,
				      (long long)sfs_stage_size(content));
		else
			st = sfs_errf(e, SFS_IO, SFS_R_NONE,
				      "the server holds other bytes than were "
				      "sent for '%s' (crc32c %08llx, %lld "
				      "bytes; sent %08x, %lld bytes)",
				      f->id, (long long)crc32c,
				      (long long)f->size, crc,
				      (long long)sfs_stage_size(content));
		return st; /* the mount says it: "cannot commit" */
	}
	if (sha && f->sha256[0] &&
	    (strcmp(sha, f->sha256) || f->size != sfs_stage_size(content)))
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"the server holds other bytes than were sent "
				"for '%s' (sha256 %s, %lld bytes; sent %s, "
				"%lld bytes)",
				f->id, f->sha256, (long long)f->size, sha,
				(long long)sfs_stage_size(content));
	return SFS_OK;
}

/*
 * The stage's CRC32C into *crc, to send with its bytes (crc), when the
 * server's document names the extension (a server that does not check
 * it ignores it: the answer's is checked all the same); else NULL. The
 * stage is settled.
 */
static const uint32_t *send_crc(struct sfs_store *s,
				const struct sfs_stage *content, uint32_t *crc)
{
	if (!(sfsi_remote_has(s) & SFS_REMOTE_CRC32C))
		return NULL;
	*crc = sfs_stage_crc32c(content);
	return crc;
}

/*
 * The server refused the bytes it got, not those whose CRC32C went with
 * them (400 checksum_mismatch), and stored nothing: the file keeps its
 * content there. An I/O error for the writer, as check_sent's (the
 * mount says it: "cannot commit"), not a bad argument; not sent again.
 * Its reason kept: a new file's create refused so made nothing
 * (remote_pending.c).
 */
static enum sfs_status refused_sent(enum sfs_status st, const char *id,
				    struct sfs_err *e)
{
	char msg[sizeof(e->message)];

	if (st != SFS_INVALID || !e || e->reason != SFS_R_CHECKSUM_MISMATCH)
		return st;
	sfs_strlcpy(msg, e->message, sizeof(msg));
	sfs_err_init(e);
	return sfs_errf(e, SFS_IO, SFS_R_CHECKSUM_MISMATCH,
			"the server got other bytes than were sent for '%s' "
			"(another crc32c) and stored none of them: %s",
			id ? id : "a new file", msg);
}

static enum sfs_status whole(struct sfs_stage *content, int64_t *size,
			     struct sfs_err *e)
{
	enum sfs_status st = settle(content, e);
	off_t end;

	if (st)
		return st;
	end = lseek(content->fd, 0, SEEK_END);
	if (end < 0 || lseek(content->fd, 0, SEEK_SET) < 0)
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot seek a stage");
	*size = end;
	return SFS_OK;
}

/*
 * Content without PUT …/content (a server of the seed's API only): a
 * file still empty (as this mount makes them) is replaced by a new
 * upload of the bytes under its name and path, then the empty one is
 * purged, and the file's number follows the new id. Other content
 * cannot be replaced there (SFS_UNSUPPORTED: ENOTSUP); a deleted file is
 * SFS_CONFLICT (SFS_R_FILE_DELETED), as a new version of it is locally:
 * an upload would bring it back to life.
 */
static enum sfs_status seed_replace(struct sfs_store *s, const char *id,
				    struct sfs_stage *content, unsigned flags,
				    struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	struct sfs_file old, f;
	struct sfs_err pe;
	const char *form[] = { "name",
			       NULL,
			       "path",
			       NULL,
			       "generateListeningAudio",
			       flags & SFS_SET_LISTENING ? "true" : "false",
			       NULL };
	struct sfsi_remote_req q = { .method = "POST",
				     .path = API "/files",
				     .form = form,
				     .fd = content->fd,
				     .at_stop = SFSI_STOP_ENDS };
	char path[160];
	enum sfs_status st;
	int64_t crc32c = -1;
	uint32_t sent_crc;
	off_t size;

	sfs_file_init(&f);
	st = settle(content, e);
	if (st)
		return st;
	st = sfs_remote_file_get(sfsi_remote_of(s), id, &old, e);
	if (st)
		return st;
	size = lseek(content->fd, 0, SEEK_END);
	if (old.deleted)
		st = sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_DELETED,
			      "the file is deleted");
	else if (old.size != 0)
		st = sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
			      "the server has no content versions extension "
			      "(PUT /files/{id}/content): only a new, empty "
			      "file gets content");
	else if (size < 0 || lseek(content->fd, 0, SEEK_SET) < 0)
		st = sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot seek a stage");
	form[1] = old.name;
	form[3] = old.path;
	q.form_file = old.filename ? old.filename : old.name;
	q.size = size;
	q.crc32c = &crc32c;
	q.content_crc32c = send_crc(s, content, &sent_crc);
	if (!st)
		st = refused_sent(
			sfsi_remote_request(sfsi_remote_of(s), &q, &b, e), id,
			e);
	/* decoded, not numbered: the new id takes the old one's number */
	if (!st)
		st = sfs_remote_file_decode(b.buf, b.len, &f, e);
	if (!st)
		st = check_sent(content, &f, crc32c, e);
	if (!st) {
		sfsi_remote_renumber(s, id, f.id);
		st = sfsi_remote_file_number(s, &f, e);
	}
	/* the new file is in place: the old one's purge failing is a
	 * leftover to say, not the call's error */
	sfs_err_init(&pe);
	if (!st && (file_path(id, "?purge=true", path, sizeof(path), &pe) ||
		    send_json(s, "DELETE", path, NULL, NULL, &pe)))
		sfs_warn("remote",
			 "cannot purge the empty '%s' replaced by '%s': %s", id,
			 f.id, pe.message);
	sfs_file_release(&old);
	sfs_buf_release(&b);
	if (!st && out)
		*out = f;
	else
		sfs_file_release(&f);
	return st;
}

enum sfs_status sfsi_remote_set_content(struct sfs_store *s, const char *id,
					struct sfs_stage *content,
					unsigned flags, struct sfs_file *out,
					char *dir_state, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	struct sfs_file f;
	enum sfs_status st;
	int64_t crc32c = -1;
	uint32_t sent_crc;

	if (dir_state)
		dir_state[0] = '\0'; /* told by a whole PUT's answer only */

	if (!(sfsi_remote_has(s) & SFS_REMOTE_CONTENT))
		return sfsi_remote_cut_said(
			sfsi_remote_of(s),
			seed_replace(s, id, content, flags, out, e), id, 0, e);
	st = settle_held(content, e);
	if (st)
		return st;
	/* sent while it was written, or now, whole */
	sfs_file_init(&f);
	if (sfsi_remote_stream_take(s, content, id, flags, &b, &crc32c, &st,
				    e)) {
		if (!st)
			st = sfs_remote_file_decode(b.buf, b.len, &f, e);
	} else if ((st = sfsi_stage_pipe_end(content, e))) {
		/* its file lacks bytes: not sent */
	} else if (content->freed) {
		/* its start freed (the server held it in a session now gone) */
		st = sfs_errf(e, SFS_IO, SFS_R_NONE,
			      "the upload of '%s' lost bytes the server held "
			      "in its session: the file keeps its old content",
			      id);
	} else {
		st = sfsi_remote_put_content(
			sfsi_remote_of(s), id, content->fd, NULL, flags, &f,
			dir_state, dir_state ? SFSI_DIR_STATE_MAX : 0, &crc32c,
			send_crc(s, content, &sent_crc), SFSI_STOP_ENDS, e);
		st = sfsi_remote_cut_said(sfsi_remote_of(s), st, id, 0, e);
	}
	sfs_buf_release(&b);
	st = refused_sent(st, id, e);
	if (!st)
		st = check_sent(content, &f, crc32c, e);
	/*
	 * The held pipe's slots never go to the file: the server holds
	 * them (an answer taken), or the commit failed and the stage goes
	 * unsent (commit_to frees a failed version at once; writing them
	 * was review s25 W4: up to four rings of disk writes after a
	 * SIGTERM's cut). Were the stage sent again, its whole PUT's
	 * answer would not match its hash: EIO, not other bytes.
	 */
	sfsi_stage_pipe_discard(content);
	if (!st)
		st = sfsi_remote_file_number(s, &f, e);
	if (!st && out)
		*out = f;
	else
		sfs_file_release(&f);
	return st;
}

/*
 * A text field as JSON: NULL is null where nullable; text that is not
 * UTF-8 cannot go as JSON and is the field's error (as the server's).
 */
static json_t *jtext(const char *v, const char *field, struct sfs_err *e,
		     int *bad)
{
	json_t *j = v ? json_string(v) : json_null();

	if (!j) {
		*bad = 1;
		sfs_err_field(e, field, "invalid",
			      "'%s' must be UTF-8 text without NUL", field);
	}
	return j;
}

/* The JSON of u's fields for PATCH (with the extensions for mounts). */
static enum sfs_status update_json(const struct sfs_file_update *u, int ext,
				   json_t **out, struct sfs_err *e)
{
	json_t *j = json_object(), *t;
	int bad = 0;
	size_t i;

	*out = NULL;
	if (!j)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	/* the text goes as JSON: it must be JSON (the server checks the
	 * rest) */
	if ((u->set & SFS_UPD_METADATA) &&
	    sfs_metadata_check(u->metadata, "metadata", e))
		bad = 1;
	if (u->set & SFS_UPD_NAME)
		json_object_set_new(j, "name", jtext(u->name, "name", e, &bad));
	if (u->set & SFS_UPD_DESCRIPTION)
		json_object_set_new(
			j, "description",
			jtext(u->description, "description", e, &bad));
	if (u->set & SFS_UPD_PATH)
		json_object_set_new(j, "path", jtext(u->path, "path", e, &bad));
	if (!bad && (u->set & SFS_UPD_METADATA))
		json_object_set_new(j, "metadata",
				    u->metadata
					    ? json_loads(u->metadata, 0, NULL)
					    : json_null());
	if (u->set & SFS_UPD_TAGS) {
		t = json_array();
		for (i = 0; t && i < u->ntags; i++)
			if (json_array_append_new(
				    t, jtext(u->tags[i], "tags", e, &bad)))
				break;
		json_object_set_new(j, "tags", t);
	}
	if (u->set & SFS_UPD_PUBLISH)
		json_object_set_new(j, "publishMode",
				    json_string(sfs_publish_name(u->publish)));
	/* the extensions for mounts; a seed-only server has none (times
	 * and the original filename are refused there, the suffix flags
	 * are the mount's own business) */
	if (!ext &&
	    (u->set & (SFS_UPD_MTIME | SFS_UPD_ATIME | SFS_UPD_FILENAME))) {
		json_decref(j);
		return sfsi_remote_refuse(
			"set a file's times or its original filename", e);
	}
	if (ext && (u->set & SFS_UPD_MTIME))
		json_object_set_new(j, "modifiedAtNs",
				    json_integer((json_int_t)u->mtime_ns));
	if (ext && (u->set & SFS_UPD_ATIME))
		json_object_set_new(j, "accessedAtNs",
				    json_integer((json_int_t)u->atime_ns));
	if (ext && (u->set & SFS_UPD_FILENAME))
		json_object_set_new(j, "filename",
				    jtext(u->filename, "filename", e, &bad));
	if (ext && (u->set & (SFS_UPD_SUFFIX | SFS_UPD_NO_SUFFIX)))
		json_object_set_new(j, "entrySuffix",
				    json_boolean(u->set & SFS_UPD_SUFFIX));
	if (bad) {
		json_decref(j);
		if (e && e->status == SFS_NOMEM)
			return SFS_NOMEM;
		return sfs_errf(e, SFS_INVALID, SFS_R_VALIDATION_ERROR,
				"the update request is invalid");
	}
	*out = j;
	return SFS_OK;
}

enum sfs_status sfsi_remote_file_update(struct sfs_store *s, const char *id,
					const struct sfs_file_update *u,
					struct sfs_file *out, struct sfs_err *e)
{
	char path[128];
	enum sfs_status st;
	json_t *j;

	if (out)
		sfs_file_init(out);
	/* a new path may empty the old directory */
	st = file_path(id, keep_arg(s, 1), path, sizeof(path), e);
	if (!st)
		st = update_json(u, !!(sfsi_remote_has(s) & SFS_REMOTE_CONTENT),
				 &j, e);
	if (!st)
		st = send_json(s, "PATCH", path, j, out, e);
	return st;
}

enum sfs_status sfsi_remote_file_delete(struct sfs_store *s, const char *id,
					int purge, struct sfs_err *e)
{
	char path[160], tail[48];
	enum sfs_status st;

	snprintf(tail, sizeof(tail), "%s%s", purge ? "?purge=true" : "",
		 keep_arg(s, !purge));
	st = file_path(id, tail, path, sizeof(path), e);
	if (!st)
		st = send_json(s, "DELETE", path, NULL, NULL, e);
	return st;
}

enum sfs_status sfsi_remote_listening_generate(struct sfs_store *s,
					       const char *id,
					       struct sfs_file *out,
					       struct sfs_err *e)
{
	char path[160];
	enum sfs_status st;

	if (out)
		sfs_file_init(out);
	st = file_path(id, "/listening-audio/generate", path, sizeof(path), e);
	if (!st)
		st = send_json(s, "POST", path, NULL, out, e);
	return st;
}

/*
 * rename(2) of a file: one PATCH with the extension's replaceFileId and
 * restore, one transaction on the server (sfs_file_rename there). A
 * seed-only server has neither: the replaced file's delete and the move
 * are two requests there, and the PATCH's body is made (and refused
 * when it needs an extension) before any of them, so a refused rename
 * deletes nothing. Restoring from the trash is no seed route
 * (SFS_UNSUPPORTED).
 */
enum sfs_status sfsi_remote_file_rename(struct sfs_store *s, const char *id,
					const struct sfs_file_update *u,
					const char *replace_id, unsigned flags,
					struct sfs_file *out, struct sfs_err *e)
{
	int ext = !!(sfsi_remote_has(s) & SFS_REMOTE_CONTENT);
	char path[160];
	enum sfs_status st;
	json_t *j = NULL;

	if (out)
		sfs_file_init(out);
	if (!ext && (flags & SFS_RENAME_RESTORE))
		return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				"the server has no restore extension (POST "
				"/files/{id}/restore): a file in the trash "
				"cannot be moved out");
	st = file_path(id, keep_arg(s, 1), path, sizeof(path), e);
	if (!st)
		st = update_json(u, ext, &j, e);
	if (!st && ext && replace_id)
		json_object_set_new(j, "replaceFileId",
				    json_string(replace_id));
	if (!st && (flags & SFS_RENAME_RESTORE))
		json_object_set_new(j, "restore", json_true());
	if (!st && !ext && replace_id)
		st = sfsi_remote_file_delete(s, replace_id, 0, e);
	if (!st) {
		st = send_json(s, "PATCH", path, j, out, e);
		j = NULL; /* stolen */
	}
	json_decref(j);
	return st;
}

/* ---- directories ------------------------------------------------------ */

#define NEED(s, f, what, e)                                                    \
	do {                                                                   \
		if (!(sfsi_remote_has(s) & (f)))                               \
			return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,        \
					"the server has no %s extension",      \
					what);                                 \
	} while (0)

enum sfs_status sfsi_remote_dir_make(struct sfs_store *s, const char *path,
				     struct sfs_err *e)
{
	NEED(s, SFS_REMOTE_DIRS, "directories", e);
	return send_json(s, "POST", API "/directories",
			 json_pack("{s:s}", "path", path), NULL, e);
}

enum sfs_status sfsi_remote_dir_remove(struct sfs_store *s, const char *path,
				       struct sfs_err *e)
{
	char url[SFSI_REMOTE_DIR_URL_MAX];
	enum sfs_status st;

	NEED(s, SFS_REMOTE_DIRS, "directories", e);
	st = sfsi_remote_dir_url(path, url, sizeof(url), e);
	if (st)
		return st;
	/* its parent may be left empty (SFSI_REMOTE_DIR_URL_MAX has room) */
	sfs_strlcpy(url + strlen(url), keep_arg(s, 0),
		    sizeof(url) - strlen(url));
	return send_json(s, "DELETE", url, NULL, NULL, e);
}

enum sfs_status sfsi_remote_dir_rename(struct sfs_store *s, const char *from,
				       const char *to, struct sfs_err *e)
{
	char url[64];
	enum sfs_status st;

	NEED(s, SFS_REMOTE_DIRS, "directories", e);
	snprintf(url, sizeof(url), API "/directories/rename%s", keep_arg(s, 1));
	st = send_json(s, "POST", url,
		       json_pack("{s:s, s:s}", "from", from, "to", to), NULL,
		       e);
	if (!st)
		sfsi_remote_dir_moved(s, from, to);
	return st;
}

enum sfs_status sfsi_remote_dir_set_mtime(struct sfs_store *s, const char *path,
					  int64_t mtime_ns, struct sfs_err *e)
{
	NEED(s, SFS_REMOTE_DIRS, "directories", e);
	return send_json(s, "PATCH", API "/directories",
			 json_pack("{s:s, s:I}", "path", path, "modifiedAtNs",
				   (json_int_t)mtime_ns),
			 NULL, e);
}

/* ---- extended attributes ---------------------------------------------- */

enum sfs_status sfsi_remote_xattr_set(struct sfs_store *s, const char *id,
				      const char *name, const void *value,
				      size_t len, unsigned flags,
				      struct sfs_err *e)
{
	struct sfs_buf v = SFS_BUF_INIT(0);
	char path[160];
	enum sfs_status st;

	NEED(s, SFS_REMOTE_XATTRS, "attributes (xattrs)", e);
	st = file_path(id, "/xattrs", path, sizeof(path), e);
	if (!st && sfs_base64_encode(value, len, &v))
		st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (!st)
		st = send_json(s, "PUT", path,
			       json_pack("{s:s, s:s, s:b, s:b}", "name", name,
					 "value", v.len ? v.buf : "", "create",
					 !!(flags & SFS_XATTR_CREATE),
					 "replace",
					 !!(flags & SFS_XATTR_REPLACE)),
			       NULL, e);
	sfs_buf_release(&v);
	return st;
}

enum sfs_status sfsi_remote_xattr_remove(struct sfs_store *s, const char *id,
					 const char *name, struct sfs_err *e)
{
	char esc[3 * 256], path[sizeof(esc) + 160];
	enum sfs_status st;

	NEED(s, SFS_REMOTE_XATTRS, "attributes (xattrs)", e);
	if (strlen(name) >= 256)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_ATTRIBUTE_NOT_FOUND,
				"no such attribute");
	sfsi_remote_escape(name, esc, sizeof(esc));
	st = file_path(id, "/xattrs?name=", path, sizeof(path), e);
	if (!st) {
		sfs_strlcpy(path + strlen(path), esc,
			    sizeof(path) - strlen(path));
		st = send_json(s, "DELETE", path, NULL, NULL, e);
	}
	return st;
}
