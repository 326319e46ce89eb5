/*
 * A remote store's new files not sent yet (remote_i.h). The mount's
 * create (spec->lazy, no content) against a server that derives a new
 * file's id from the user's id and a key of the client's (POST
 * /files?idKey=, SFS_REMOTE_ID_KEY) makes no request: the file gets a new
 * key, the id the server will give it (sfs_uuid_derive of the user's id
 * and the key) and its number here, and this store shows it (its
 * listings, stats, opens: an empty file) while the server has nothing.
 * Its first content commit (close, fsync) creates it on the server with
 * its bytes in one request, durable when answered; a close with nothing
 * written (touch) creates it empty, durable too; one whose content the
 * server refuses is still made, empty (keep_name): a failed close loses
 * the data, not the name. So others see a new file
 * once it is closed, whole. The file has its final id and number from
 * the start: nothing is renumbered, and no handle ever holds another id.
 *
 * Until then the store's calls act on this state: an unlink drops it (the
 * server never hears of the file: no trash entry either), a rename with
 * no file to replace and a change of times are kept and sent with the
 * create (times of a file closed empty: right after it; a content commit
 * has the writes' times). Every other call
 * naming the file (xattrs, shares, listening audio, a rename onto another
 * file, a directory renamed or removed around it, a stream of its
 * content) first creates it on the server as the mount did before (empty,
 * lazily: the content's commit makes it durable), then goes on as for
 * any file.
 *
 * A send whose outcome is unknown (no answer, a cut one, a 5xx: the
 * server may have made the file, or may still make it: a request late on
 * its way) marks the entry "maybe". A server's 404 for the id then proves
 * nothing, so a call that changes the file (unlink, rename, times, any
 * send) makes the outcome certain first by sending the create again: the
 * server answers 201 (made now: a late try then meets the id taken) or
 * 409 file_id_exists (an earlier try made it: adopted, an ordinary file
 * from then on, its content the server's, a rename or times kept before
 * replayed). A call that only looks (stat, open) asks the server (GET of
 * the id): held there, the file is adopted; 404: still shown as pending
 * and still maybe. No answer: the call fails (never acts on a guess).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "audio_i.h"
#include "remote_i.h"
#include "remote_pending_i.h"
#include "stage_i.h"
#include "util_i.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define API "/api/v1/speech-services"

/*
 * Files unlinked before they were sent are kept (so that their handles'
 * commits say SFS_R_FILE_DELETED, not "no such file"), the newest so
 * many of them; an older one's number keeps saying so
 * (sfsi_remote_unsent_gone). Nothing can make such a file on the server
 * after its entry went: its key went with it.
 */
#define GONE_KEPT 4096

/* ---- the create, kept ---------------------------------------------------- */

enum sfs_status sfsi_rpend_file_create(struct sfs_store *s,
				       const struct sfs_file_spec *spec,
				       struct sfs_stage *content,
				       struct sfs_file *out, struct sfs_err *e)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	struct sfs_file mine, *f = out ? out : &mine;
	enum sfs_status st;
	struct pend *x;

	if (!spec->lazy || content || spec->id_key || spec->uri ||
	    spec->ntags || spec->metadata || spec->description ||
	    spec->listening || !(sfsi_remote_has(s) & SFS_REMOTE_ID_KEY))
		return sfsi_rkept_file_create(s, spec, content, SFSI_STOP_ENDS,
					      out, e);
	/* the server's checks of the fields that cost no request */
	if (sfs_name_check(spec->name, "name", e) ||
	    (spec->filename && sfs_name_check(spec->filename, "filename", e)))
		return SFS_INVALID;
	x = calloc(1, sizeof(*x));
	if (!x)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	sfs_uuid_new(x->key);
	if (sfs_uuid_derive(sfs_remote_user_id(sfsi_remote_of(s)), x->key,
			    x->id)) {
		free(x);
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"no user id to derive a new file's id from");
	}
	x->name = strdup(spec->name);
	x->path = strdup(spec->path ? spec->path : "/");
	x->filename = spec->filename ? strdup(spec->filename) : NULL;
	x->ctime_ns = sfs_now_ns();
	x->mtime_ns = x->atime_ns =
		spec->mtime_ns ? spec->mtime_ns : x->ctime_ns;
	st = sfsi_rpend_fill(x, f, e);
	if (!st)
		st = sfsi_remote_file_number(s, f, e); /* frees f on failure */
	if (st) {
		sfsi_rpend_pend_free(x);
		return st;
	}
	x->ino = f->ino;
	pthread_mutex_lock(&p->mu);
	x->next = p->list;
	p->list = x;
	pthread_mutex_unlock(&p->mu);
	if (f == &mine)
		sfs_file_release(&mine);
	return SFS_OK;
}

/* Listening audio for content under flags, as the server's PUT decides. */
static int listening_of(struct sfs_stage *content, unsigned flags)
{
	char mime[96] = "";
	double duration;

	if (!(flags & SFS_SET_LISTENING) || !content ||
	    !sfs_stage_size(content))
		return 0;
	if (!(flags & SFS_SET_IF_AUDIO))
		return 1;
	sfsi_audio_probe_stage(content, &duration, mime, sizeof(mime));
	return !strncmp(mime, "audio/", 6);
}

/* A refusal of the idKey parameter itself (400, field idKey). */
static int refused_key(const struct sfs_err *e)
{
	int i;

	for (i = 0; e && i < e->nfields; i++)
		if (!strcmp(e->fields[i].field, "idKey"))
			return 1;
	return 0;
}

/*
 * The server refused the bytes it got, not those whose CRC32C went with
 * them, and stored none of them (remote_write.c refused_sent: an I/O
 * error for the writer, its reason kept).
 */
static int refused_bytes(enum sfs_status st, const struct sfs_err *e)
{
	return st == SFS_IO && e && e->reason == SFS_R_CHECKSUM_MISMATCH;
}

/* A failed send whose request may have reached the server. */
static int unknown_outcome(enum sfs_status st, const struct sfs_err *e)
{
	return (st == SFS_UNAVAILABLE || st == SFS_IO || st == SFS_BUSY) &&
	       !refused_bytes(st, e);
}

/*
 * What a send or a resolve carries of entry x (mu held): copies of its
 * kept name, path and filename, whether utimens set its times, and the
 * times (in u). SFS_NOMEM when a copy failed (the caller frees what it
 * got either way).
 */
static enum sfs_status take_kept(const struct pend *x, char **name, char **path,
				 char **filename, int *times,
				 struct sfs_file_update *u, struct sfs_err *e)
{
	*name = strdup(x->name);
	*path = strdup(x->path);
	*filename = x->filename ? strdup(x->filename) : NULL;
	*times = x->times_set;
	u->mtime_ns = x->mtime_ns;
	u->atime_ns = x->atime_ns;
	if (!*name || !*path || (x->filename && !*filename))
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	return SFS_OK;
}

/*
 * Pending id, marked maybe and held busy by the caller, asked of the
 * server (GET of its id): held there = adopted (*adopted = 1; what was
 * kept since the lost send replayed: name, path, filename, times); 404
 * = not there now (*adopted = 0; the entry stays maybe: a late try may
 * still make it). The failure when the server cannot be asked.
 */
static enum sfs_status adopt(struct sfs_store *s, struct pend *x, int *adopted,
			     struct sfs_err *e)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	struct sfs_file_update u = { 0 };
	char *name = NULL, *filename = NULL, *path = NULL;
	char url[128];
	struct sfs_file f;
	enum sfs_status st = SFS_OK;
	json_t *j = NULL;
	int times;

	*adopted = 0;
	pthread_mutex_lock(&p->mu);
	st = take_kept(x, &name, &path, &filename, &times, &u, e);
	pthread_mutex_unlock(&p->mu);
	sfs_file_init(&f);
	snprintf(url, sizeof(url), API "/files/%s", x->id);
	if (!st)
		st = sfsi_remote_get_json(s, url, &j, e);
	if (st == SFS_NOT_FOUND) {
		sfs_err_init(e);
		st = SFS_OK;
	} else if (!st) {
		st = sfsi_remote_file_decode_obj(j, &f, e);
		if (!st) {
			sfs_info("remote",
				 "'%s%s' is on the server already (an "
				 "answer was lost): adopted",
				 path, name);
			u.set = SFS_UPD_NAME | SFS_UPD_PATH | SFS_UPD_NO_SUFFIX;
			u.name = name;
			u.path = path;
			if (filename) {
				u.set |= SFS_UPD_FILENAME;
				u.filename = filename;
			}
			if (times)
				u.set |= SFS_UPD_MTIME | SFS_UPD_ATIME;
			if (strcmp(f.name ? f.name : "", name) ||
			    strcmp(f.path ? f.path : "", path) ||
			    (filename &&
			     strcmp(f.filename ? f.filename : "", filename)) ||
			    times)
				st = sfsi_rkept_file_rename(s, x->id, &u, NULL,
							    0, NULL, e);
			*adopted = !st;
		}
	}
	json_decref(j);
	sfs_file_release(&f);
	free(name);
	free(filename);
	free(path);
	return st;
}

/*
 * Pending id marked maybe, asked of the server (a call that only looks:
 * stat, open): adopted when the server holds it; still pending and maybe
 * on a 404; the failure (the server unreachable) otherwise.
 */
enum sfs_status sfsi_rpend_resolve(struct sfs_store *s, const char *id,
				   struct sfs_err *e)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	enum sfs_status st = SFS_OK;
	struct pend *x;
	int adopted = 0;

	if (!p)
		return SFS_OK;
	pthread_mutex_lock(&p->mu);
	x = sfsi_rpend_by_id(p, id);
	/* only an unsure entry waits for a send under way (a stat
	 * meanwhile sees the pending file); a thread that may not wait
	 * for a server does not wait for another's request either */
	if (x && x->maybe && !x->gone && x->busy &&
	    sfsi_would_wait(e, "a send under way")) {
		pthread_mutex_unlock(&p->mu);
		return SFS_WOULD_WAIT;
	}
	if (x && x->maybe && !x->gone)
		x = sfsi_rpend_settled(p, id);
	if (!x || !x->maybe || x->gone) {
		pthread_mutex_unlock(&p->mu);
		return SFS_OK;
	}
	x->busy = 1;
	pthread_mutex_unlock(&p->mu);
	st = adopt(s, x, &adopted, e);
	pthread_mutex_lock(&p->mu);
	if (adopted) {
		sfsi_rpend_unlink_pend(p, x);
		sfsi_rpend_pend_free(x);
	} else {
		x->busy = 0;
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return st;
}

static enum sfs_status sent(struct sfs_store *s, const char *id,
			    struct sfs_err *e);

/*
 * A create refused for a reason that proves nothing was made: the
 * tenant's quota (413) or the server's space (507). The server looks at
 * the id before either (core/file.c insert_file): an earlier try that
 * made the file would get 409 file_id_exists instead.
 */
static int refused_unmade(enum sfs_status st)
{
	return st == SFS_QUOTA || st == SFS_NO_SPACE;
}

/*
 * A create with content refused for what it carries, which proves
 * nothing was made: the tenant's quota (413 quota_exceeded: of bytes,
 * or of files, which an empty create meets as well), the server's space
 * (507), the upload's size (413), bytes changed on the way (400
 * checksum_mismatch). The name may still be made (keep_name).
 */
static int refused_content(enum sfs_status st, const struct sfs_err *e)
{
	return refused_unmade(st) || st == SFS_TOO_LARGE ||
	       refused_bytes(st, e);
}

/*
 * The entry of id, settled (*xp NULL: not pending, or on the server
 * now), for a call that changes the file: one whose outcome is unknown
 * is made certain by sending its create again (201: made now, so a late
 * try meets its id taken; 409 file_id_exists: adopted). A refusal that
 * proves the file is not on the server (refused_unmade) settles it too:
 * the call acts on the entry here (an unlink drops it, a rename or times
 * are kept), and the refusal is not the call's error (the close that
 * lost the answer failed already). mu held on entry and on return, also
 * on failure.
 */
static enum sfs_status sure(struct sfs_store *s, const char *id,
			    struct pend **xp, struct sfs_err *e)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	enum sfs_status st;
	struct pend *x;

	*xp = NULL;
	x = sfsi_rpend_settled(p, id);
	if (x && x->maybe && !x->gone) {
		pthread_mutex_unlock(&p->mu);
		st = sent(s, id, e);
		if (refused_unmade(st)) {
			sfs_info("remote",
				 "'%s': sent again, its create was refused "
				 "(%s): not on the server",
				 id, e ? e->message : "");
			sfs_err_init(e);
			st = SFS_OK;
		}
		pthread_mutex_lock(&p->mu);
		if (st)
			return st;
		x = sfsi_rpend_settled(p, id);
	}
	*xp = x;
	return SFS_OK;
}

/*
 * What a send carries of its entry: the entry (busy while it is sent;
 * NULL once dropped) and copies of what it kept (the entry may change
 * meanwhile, under mu).
 */
struct taken {
	struct pend *x;
	char *name, *filename, *path;
	char key[SFS_ID_SIZE];
	struct sfs_file_update u; /* the kept times */
	int times;		  /* set by utimens: PATCHed after */
};

static void taken_release(struct taken *t)
{
	free(t->name);
	free(t->filename);
	free(t->path);
}

/*
 * The entry of id taken for a send: marked busy, what it kept copied
 * into *t (*stp SFS_NOMEM when a copy failed). 1: taken; 0: not pending
 * (any more); -1: unlinked before it was sent, *stp says so (nothing
 * taken).
 */
static int take_entry(struct sfsi_rpend *p, const char *id, struct taken *t,
		      enum sfs_status *stp, struct sfs_err *e)
{
	struct pend *x;

	memset(t, 0, sizeof(*t));
	pthread_mutex_lock(&p->mu);
	x = sfsi_rpend_settled(p, id);
	if (x && x->gone) {
		pthread_mutex_unlock(&p->mu);
		*stp = sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_DELETED,
				"the file was removed before it was sent");
		return -1;
	}
	if (x) {
		x->busy = 1;
		*stp = take_kept(x, &t->name, &t->path, &t->filename, &t->times,
				 &t->u, e);
		sfs_strlcpy(t->key, x->key, sizeof(t->key));
	}
	pthread_mutex_unlock(&p->mu);
	t->x = x;
	return x ? 1 : 0;
}

/*
 * The create's answer (st, the file made in o) checked: a server that
 * takes an idKey gives the id derived from it, any other breaks its own
 * contract (never followed: no renumbering); a server that stopped
 * taking idKey (its extensions turned off since the mount began)
 * refuses it: said, not retried otherwise. *known = 1 when either made
 * the send fail with an outcome that is not in doubt.
 */
static enum sfs_status check_answer(const struct taken *t, const char *id,
				    const struct sfs_file *o,
				    enum sfs_status st, int *known,
				    struct sfs_err *e)
{
	if (!st && strcasecmp(o->id, id)) {
		sfs_error("remote",
			  "'%s%s': the server made it as '%s', not as '%s' "
			  "(the id its idKey gives)",
			  t->path, t->name, o->id, id);
		*known = 1;
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"the server gave the new file another id than "
				"its idKey's");
	}
	if (st == SFS_INVALID && refused_key(e)) {
		sfs_error("remote",
			  "'%s%s' cannot be sent: the server no longer takes "
			  "idKey (%s); remount",
			  t->path, t->name, e->message);
		sfs_err_init(e);
		*known = 1; /* refused: nothing made */
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"the server no longer takes idKey");
	}
	return st;
}

/*
 * A file just made (o, the server's answer; answer: the caller takes
 * it) whose times utimens set before: PATCHed now. The entry goes
 * whatever the PATCH says (the file is the server's); a failed PATCH is
 * the caller's error (the times it set are not there).
 */
static enum sfs_status patch_times(struct sfs_store *s, struct taken *t,
				   struct sfs_file *o, int answer,
				   struct sfs_err *e)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	enum sfs_status st;

	t->u.set = SFS_UPD_MTIME | SFS_UPD_ATIME;
	st = sfsi_rkept_file_update(s, o->id, &t->u, NULL, e);
	if (st) {
		sfs_warn("remote", "'%s%s' was made, its times not set: %s",
			 t->path, t->name, e ? e->message : "");
	} else if (answer) {
		/* the answer with the times */
		o->mtime_ns = t->u.mtime_ns;
		o->atime_ns = t->u.atime_ns;
	}
	t->times = 0;
	pthread_mutex_lock(&p->mu);
	sfsi_rpend_unlink_pend(p, t->x);
	sfsi_rpend_pend_free(t->x);
	t->x = NULL;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return st;
}

/*
 * The entry after its send (st): dropped when the file was made, else
 * kept, no longer busy (maybe: the outcome unknown or the id found
 * taken; failed: the create was tried and failed).
 */
static void settle(struct sfsi_rpend *p, struct taken *t, enum sfs_status st,
		   int maybe, int tried)
{
	if (!t->x)
		return;
	pthread_mutex_lock(&p->mu);
	if (!st) {
		sfsi_rpend_unlink_pend(p, t->x);
		sfsi_rpend_pend_free(t->x);
	} else {
		t->x->maybe = maybe;
		t->x->failed = tried;
		t->x->busy = 0;
	}
	t->x = NULL;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/*
 * The caller's own file has the id: an earlier try's answer was lost.
 * Resolved (adopted, the kept rename and times replayed): SFS_OK when it
 * is an ordinary file now.
 */
static enum sfs_status id_taken(struct sfs_store *s, const char *id,
				struct sfs_err *e)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	enum sfs_status st;

	sfs_debug("remote", "'%s' is on the server already: %s", id,
		  e->message);
	sfs_err_init(e);
	st = sfsi_rpend_resolve(s, id, e);
	if (!st && sfsi_rpend_has(p, id) > 0)
		st = sfs_errf(e, SFS_IO, SFS_R_NONE,
			      "'%s': the server has this id and does not "
			      "show it",
			      id);
	return st;
}

/*
 * Send the create of pending file id (with content, or empty: lazily
 * with lazy; at the front end's stop as at_stop says, with content as
 * SFSI_STOP_ENDS). 1 when it was pending: *stp its status (SFS_CONFLICT,
 * SFS_R_FILE_DELETED when it was unlinked); 0 when it is not (any more):
 * the caller goes on as for any file. An entry whose outcome was unknown
 * is sent as any: the answer settles it (409 file_id_exists: adopted).
 */
static int send_create(struct sfs_store *s, const char *id,
		       struct sfs_stage *content, unsigned flags, int lazy,
		       enum sfsi_at_stop at_stop, struct sfs_file *out,
		       enum sfs_status *stp, struct sfs_err *e)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	struct sfs_file_spec spec = { 0 };
	struct sfs_file mine, *o = out ? out : &mine;
	enum sfs_status st = SFS_OK;
	struct taken t;
	int taken, tried = 0, maybe = 0, id_exists = 0, known = 0;

	if (!p)
		return 0;
	taken = take_entry(p, id, &t, &st, e);
	if (!taken && sfsi_remote_unsent_gone(s, id)) {
		/* its entry went (sfsi_rpend_drop_oldest_gone): as when it was
		 * kept */
		*stp = sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_DELETED,
				"the file was removed before it was sent");
		return 1;
	}
	if (taken <= 0) {
		if (taken < 0)
			*stp = st;
		return taken < 0;
	}
	sfs_file_init(o);
	if (!st && content)
		st = sfsi_stage_hash(content, e); /* the probe reads it all */
	spec.name = t.name;
	spec.filename = t.filename;
	spec.path = t.path;
	spec.id_key = t.key;
	spec.no_suffix = 1;
	spec.lazy = lazy && !content;
	spec.listening = listening_of(content, flags);
	/*
	 * Times set before: a file closed empty's are set after its create.
	 * A content commit's are the writes' time, or the fs's own, which
	 * it sets again after the commit (a utimens while written).
	 */
	if (content)
		t.times = 0;
	if (!st) {
		tried = 1;
		st = sfsi_rkept_file_create(s, &spec, content, at_stop, o, e);
	}
	st = check_answer(&t, id, o, st, &known, e);
	if (content)
		st = sfsi_remote_cut_said(sfsi_remote_of(s), st, id, 1, e);
	if (!st && t.times) {
		st = patch_times(s, &t, o, out != NULL, e);
		tried = 0; /* not the create's outcome */
	}
	if (st == SFS_CONFLICT && e && e->reason == SFS_R_FILE_ID_EXISTS)
		id_exists = 1;
	else if (tried && st && !known && unknown_outcome(st, e))
		maybe = 1;
	settle(p, &t, st, maybe || id_exists, tried);
	taken_release(&t);
	if (st || o == &mine)
		sfs_file_release(o);
	if (id_exists) {
		st = id_taken(s, id, e);
		if (!st)
			return 0; /* an ordinary file now */
	}
	*stp = st;
	return 1;
}

/* A pending id made an ordinary file on the server (empty, lazily). */
static enum sfs_status sent(struct sfs_store *s, const char *id,
			    struct sfs_err *e)
{
	enum sfs_status st = SFS_OK;

	if (send_create(s, id, NULL, 0, 1, SFSI_STOP_ENDS, NULL, &st, e))
		return st;
	return SFS_OK;
}

/*
 * The store closes (unmount, SIGTERM): a new file whose send failed (its
 * close's or fsync's, and its release's) gets one last try, empty and
 * durable, as its release would have made it; a file never closed is
 * not sent. The first try the server does not answer at all ends them
 * (each would wait as long); any answer, even an error, lets the next
 * one be tried. Once the front end stops, a try is also ended by
 * SFSI_STOPPING_STALL_S seconds without a byte, not by the mount's
 * timeout: the stop must not wait for a server that holds the request
 * (a close cut off by the stop left its file here).
 */
void sfsi_rpend_last_sends(struct sfs_store *s)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	char id[SFS_ID_SIZE];
	enum sfs_status st;
	struct sfs_err e;
	struct pend *x;

	sfsi_remote_last_tries(1);
	for (; p;) {
		id[0] = '\0';
		pthread_mutex_lock(&p->mu);
		for (x = p->list; x; x = x->next)
			if (x->failed && !x->gone && !x->busy && !x->last) {
				x->last = 1;
				sfs_strlcpy(id, x->id, sizeof(id));
				break;
			}
		pthread_mutex_unlock(&p->mu);
		if (!id[0])
			break;
		sfs_err_init(&e);
		st = SFS_OK;
		send_create(s, id, NULL, 0, 0, SFSI_STOP_STALLS, NULL, &st, &e);
		if (st) {
			sfs_warn("remote", "'%s': its last try failed: %s", id,
				 e.message);
			if (st == SFS_UNAVAILABLE)
				break;
		}
	}
	sfsi_remote_last_tries(0);
}

enum sfs_status sfsi_rpend_send(struct sfs_store *s, const char *id,
				struct sfs_err *e)
{
	enum sfs_status st = SFS_OK;

	/* the create that starts a stream: its close waits for it */
	if (send_create(s, id, NULL, 0, 1, SFSI_STOP_ENDS, NULL, &st, e))
		return st;
	return SFS_OK;
}

/* Every pending file in directory path and below sent (a rename of it). */
static enum sfs_status sent_below(struct sfs_store *s, const char *path,
				  struct sfs_err *e)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	size_t len = strlen(path);
	char id[SFS_ID_SIZE];
	enum sfs_status st = SFS_OK;
	struct pend *x;

	while (!st) {
		id[0] = '\0';
		pthread_mutex_lock(&p->mu);
		for (x = p->list; x; x = x->next)
			if (!x->gone && !strncmp(x->path, path, len)) {
				sfs_strlcpy(id, x->id, sizeof(id));
				break;
			}
		pthread_mutex_unlock(&p->mu);
		if (!id[0])
			break;
		st = sent(s, id, e);
	}
	return st;
}

/* ---- the table's calls ----------------------------------------------------
 */

/*
 * A new file's content refused (refused_content, why): its name is
 * made at once, empty and durable, with the times kept, as the local
 * mount keeps a file whose content a close could not commit (its
 * creat() made it): when the close() or fsync() returns the refusal, the
 * server and the mount show the file, empty, and nothing waits for the
 * release or the unmount. The refusal stays the call's error. A name
 * refused too (the tenant's file quota full) leaves the file the
 * mount's own, as any create refused: shown, tried again by the calls
 * that send it, its release and the unmount (sfsi_rpend_last_sends).
 * An answer lost leaves it "maybe", as any.
 */
static void keep_name(struct sfs_store *s, const char *id,
		      const struct sfs_err *why)
{
	enum sfs_status st = SFS_OK;
	struct sfs_err e;

	sfs_err_init(&e);
	if (!send_create(s, id, NULL, 0, 0, SFSI_STOP_ENDS, NULL, &st, &e))
		return; /* sent meanwhile, by another call */
	if (!st)
		sfs_info("remote",
			 "'%s': its content refused (%s), the file made "
			 "empty",
			 id, why ? why->message : "");
	else if (!(st == SFS_CONFLICT && e.reason == SFS_R_FILE_DELETED))
		sfs_warn("remote",
			 "'%s': its content refused, its name too: %s", id,
			 e.message);
}

enum sfs_status sfsi_rpend_set_content(struct sfs_store *s, const char *id,
				       struct sfs_stage *content,
				       unsigned flags, struct sfs_file *out,
				       struct sfs_err *e)
{
	enum sfs_status st;

	if (send_create(s, id, content, flags, 0, SFSI_STOP_ENDS, out, &st,
			e)) {
		if (refused_content(st, e))
			keep_name(s, id, e);
		return st;
	}
	return sfsi_rkept_set_content(s, id, content, flags, out, e);
}

/*
 * A new file made durable: by an fsync, or by the release of one whose
 * content commit failed (its name kept, as the last sends keep it): once
 * the front end stops, bounded as they are (a release a worker runs
 * while the mount ends would otherwise hold the end for the timeout).
 */
enum sfs_status sfsi_rpend_file_sync(struct sfs_store *s, const char *id,
				     struct sfs_err *e)
{
	enum sfs_status st = SFS_OK;

	sfsi_remote_last_tries(1); /* its times and sync too */
	if (!send_create(s, id, NULL, 0, 0, SFSI_STOP_STALLS, NULL, &st, e))
		st = sfsi_remote_file_sync(s, id, e);
	sfsi_remote_last_tries(0);
	return st;
}

enum sfs_status sfsi_rpend_file_delete(struct sfs_store *s, const char *id,
				       int purge, struct sfs_err *e)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	enum sfs_status st = SFS_OK;
	struct pend *x;
	int dropped = 0;

	/*
	 * One whose send's outcome was unknown is made certain first (on
	 * the server now, adopted or made): a try still on its way (the
	 * server said 404 while it waited somewhere) would make it again
	 * after an unlink that was only ours; it now meets its id taken.
	 */
	pthread_mutex_lock(&p->mu);
	st = sure(s, id, &x, e);
	if (st) {
		pthread_mutex_unlock(&p->mu);
		return st;
	}
	if (x && x->gone) {
		st = sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_DELETED,
			      "the file is deleted");
	} else if (x) {
		x->gone = 1; /* the server never hears of it */
		dropped = 1;
		if (++p->gone > GONE_KEPT)
			sfsi_rpend_drop_oldest_gone(p);
	}
	pthread_mutex_unlock(&p->mu);
	if (dropped)
		sfsi_remote_set_unsent_gone(s, id);
	if (x)
		return st;
	return sfsi_rkept_file_delete(s, id, purge, e);
}

/* Of u's fields, only those kept here (no others, or 0). */
static int only(const struct sfs_file_update *u, unsigned kept)
{
	return !(u->set & ~kept);
}

/* Apply u's kept fields to pending x (mu held); out: x after it. */
static enum sfs_status keep(struct pend *x, const struct sfs_file_update *u,
			    struct sfs_file *out, struct sfs_err *e)
{
	char *v;

#define SET(bit, field, val)                                                   \
	do {                                                                   \
		if ((u->set & (bit)) && (val)) {                               \
			if (!(v = strdup(val)))                                \
				return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,      \
						"out of memory");              \
			free(x->field);                                        \
			x->field = v;                                          \
		}                                                              \
	} while (0)
	SET(SFS_UPD_NAME, name, u->name);
	SET(SFS_UPD_PATH, path, u->path);
	SET(SFS_UPD_FILENAME, filename, u->filename);
#undef SET
	if ((u->set & SFS_UPD_FILENAME) && !u->filename) {
		free(x->filename);
		x->filename = NULL;
	}
	if (u->set & SFS_UPD_MTIME) {
		x->mtime_ns = u->mtime_ns;
		x->times_set = 1;
	}
	if (u->set & SFS_UPD_ATIME) {
		x->atime_ns = u->atime_ns;
		x->times_set = 1;
	}
	x->ctime_ns = sfs_now_ns();
	return out ? sfsi_rpend_fill(x, out, e) : SFS_OK;
}

/*
 * u applied to pending id when it holds only fields in kept: 1 (*stp
 * its status); else 0 (not pending, or sent now: *stp the send's).
 */
static int kept_update(struct sfs_store *s, const char *id,
		       const struct sfs_file_update *u, unsigned kept,
		       struct sfs_file *out, enum sfs_status *stp,
		       struct sfs_err *e)
{
	struct sfsi_rpend *p = sfsi_remote_pend(s);
	struct pend *x;
	int done = 0;

	*stp = SFS_OK;
	pthread_mutex_lock(&p->mu);
	*stp = sure(s, id, &x, e);
	if (*stp) {
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	if (x && !x->gone && only(u, kept)) {
		if (out)
			sfs_file_init(out);
		*stp = keep(x, u, out, e);
		done = 1;
	}
	pthread_mutex_unlock(&p->mu);
	if (!done && x)
		*stp = sent(s, id, e);
	return done;
}

enum sfs_status sfsi_rpend_file_update(struct sfs_store *s, const char *id,
				       const struct sfs_file_update *u,
				       struct sfs_file *out, struct sfs_err *e)
{
	enum sfs_status st;

	if (kept_update(s, id, u, SFS_UPD_MTIME | SFS_UPD_ATIME, out, &st, e) ||
	    st)
		return st;
	return sfsi_rkept_file_update(s, id, u, out, e);
}

enum sfs_status sfsi_rpend_file_rename(struct sfs_store *s, const char *id,
				       const struct sfs_file_update *u,
				       const char *replace_id, unsigned flags,
				       struct sfs_file *out, struct sfs_err *e)
{
	unsigned kept = SFS_UPD_NAME | SFS_UPD_PATH | SFS_UPD_FILENAME |
			SFS_UPD_NO_SUFFIX | SFS_UPD_MTIME | SFS_UPD_ATIME;
	enum sfs_status st;

	/* onto another file: the server's one transaction does it */
	if (replace_id || flags)
		kept = 0;
	if (replace_id && (st = sent(s, replace_id, e)))
		return st;
	if (kept_update(s, id, u, kept, out, &st, e) || st)
		return st;
	return sfsi_rkept_file_rename(s, id, u, replace_id, flags, out, e);
}

enum sfs_status sfsi_rpend_listening_generate(struct sfs_store *s,
					      const char *id,
					      struct sfs_file *out,
					      struct sfs_err *e)
{
	enum sfs_status st = sent(s, id, e);

	return st ? st : sfsi_rkept_listening_generate(s, id, out, e);
}

enum sfs_status sfsi_rpend_xattr_set(struct sfs_store *s, const char *id,
				     const char *name, const void *value,
				     size_t len, unsigned flags,
				     struct sfs_err *e)
{
	enum sfs_status st = sent(s, id, e);

	return st ? st
		  : sfsi_rkept_xattr_set(s, id, name, value, len, flags, e);
}

enum sfs_status sfsi_rpend_xattr_remove(struct sfs_store *s, const char *id,
					const char *name, struct sfs_err *e)
{
	if (sfsi_rpend_has(sfsi_remote_pend(s), id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_ATTRIBUTE_NOT_FOUND,
				"no attribute '%s'", name);
	return sfsi_rkept_xattr_remove(s, id, name, e);
}

enum sfs_status sfsi_rpend_share_put(struct sfs_store *s, const char *file_id,
				     const char *user_id, enum sfs_perm perm,
				     struct sfs_share *out, int *created,
				     struct sfs_err *e)
{
	enum sfs_status st = sent(s, file_id, e);

	return st ? st
		  : sfsi_rkept_share_put(s, file_id, user_id, perm, out,
					 created, e);
}

enum sfs_status sfsi_rpend_share_revoke_user(struct sfs_store *s,
					     const char *file_id,
					     const char *user_id,
					     struct sfs_err *e)
{
	if (sfsi_rpend_has(sfsi_remote_pend(s), file_id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_SHARE_NOT_FOUND,
				"the file is not shared with this user");
	return sfsi_rkept_share_revoke_user(s, file_id, user_id, e);
}

enum sfs_status sfsi_rpend_share_list(struct sfs_store *s, const char *file_id,
				      struct sfs_share **out, size_t *n,
				      struct sfs_err *e)
{
	if (sfsi_rpend_has(sfsi_remote_pend(s), file_id)) {
		*out = NULL;
		*n = 0;
		return SFS_OK;
	}
	return sfsi_remote_share_list(s, file_id, out, n, e);
}

/* A live pending file in directory path or below? */
static int held_below(struct sfsi_rpend *p, const char *path)
{
	size_t len = strlen(path);
	struct pend *x;
	int held = 0;

	pthread_mutex_lock(&p->mu);
	for (x = p->list; x && !held; x = x->next)
		held = !x->gone && !strncmp(x->path, path, len) &&
		       (len && (path[len - 1] == '/' || x->path[len] == '/' ||
				!x->path[len]));
	pthread_mutex_unlock(&p->mu);
	return held;
}

enum sfs_status sfsi_rpend_dir_rename(struct sfs_store *s, const char *from,
				      const char *to, struct sfs_err *e)
{
	enum sfs_status st;

	/* onto a directory that holds a new file: not empty, as locally */
	if (strcmp(from, to) && held_below(sfsi_remote_pend(s), to))
		return sfs_errf(e, SFS_CONFLICT, SFS_R_DIRECTORY_NOT_EMPTY,
				"the directory '%s' is not empty", to);
	st = sent_below(s, from, e);

	return st ? st : sfsi_rkept_dir_rename(s, from, to, e);
}

enum sfs_status sfsi_rpend_dir_remove(struct sfs_store *s, const char *path,
				      struct sfs_err *e)
{
	enum sfs_status st = sent_below(s, path, e);

	return st ? st : sfsi_rkept_dir_remove(s, path, e);
}
