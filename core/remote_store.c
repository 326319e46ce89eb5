/*
 * The remote store (remote_i.h): sfs_store_open_url, and the bodies of
 * the public entry points a mount uses to read, over the REST API. The
 * API names files by UUID and directories by path; the mount names nodes
 * by number, so this store numbers what it sees (an in-memory map, one
 * number per file id and per directory path, given at first sight and
 * never reused while it is open). Files of the caller's own listings are
 * the caller's (SFS_PERM_OWNER): the server lists no one else's there.
 * The numbers are remote_nums.c's, directories and listings
 * remote_dirs.c's (they share remote_store_i.h); here are the store, its
 * requests, files, attributes and the ops table.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include <jansson.h>
#include "blob_i.h"
#include "remote_store_i.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"
#include "speechfs/json.h"
#include "speechfs/log.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

enum sfs_status sfsi_remote_refuse(const char *what, struct sfs_err *e)
{
	return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
			"a remote store does not %s yet", what);
}

/* ---- requests ------------------------------------------------------------ */

/* A path made safe for a query string: all but unreserved bytes and '/'. */
void sfsi_remote_escape(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in && o + 4 < size; in++) {
		unsigned char c = (unsigned char)*in;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~/", c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

enum sfs_status sfsi_remote_dir_url(const char *path, char *url, size_t size,
				    struct sfs_err *e)
{
	char esc[3 * 4096];

	if (strlen(path) >= 4096)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
				"no such directory");
	sfsi_remote_escape(path, esc, sizeof(esc));
	snprintf(url, size, API "/directories?path=%s", esc);
	return SFS_OK;
}

/* GET path: the answer's JSON in *out (json_decref). */
enum sfs_status sfsi_rstore_get_json(struct rstore *rs, const char *path,
				     json_t **out, struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(ANSWER_MAX);
	struct sfsi_remote_req q = { .method = "GET", .path = path, .fd = -1 };
	enum sfs_status st;

	*out = NULL;
	st = sfsi_remote_request(rs->r, &q, &b, e);
	if (!st) {
		*out = json_loadb(b.buf, b.len, 0, NULL);
		if (!*out)
			st = sfs_errf(e, SFS_IO, SFS_R_NONE,
				      "the server's answer to '%s' is not JSON",
				      path);
	}
	sfs_buf_release(&b);
	return st;
}

/*
 * A decoded file numbered (its ino, given at first sight) and with the
 * permission its number records (perm when first seen).
 */
static enum sfs_status number(struct rstore *rs, struct sfs_file *f, int perm,
			      struct sfs_err *e)
{
	char id[SFS_ID_SIZE];
	int known;

	/* without content versions a new file is made twice (empty, then
	 * uploaded whole), so the server's suffix of it is that fallback's
	 * own clash: the mount's names ignore it there */
	if (!(sfs_remote_features(rs->r) & SFS_REMOTE_CONTENT))
		f->suffixed = 0;
	f->ino = sfsi_rstore_ino_of(rs, f->id, perm);
	if (!f->ino) {
		sfs_file_release(f);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	if (sfsi_rstore_key_of(rs, f->ino, id, sizeof(id), &known) == 0)
		f->perm = (enum sfs_perm)known;
	return SFS_OK;
}

enum sfs_status sfsi_remote_get_json(struct sfs_store *s, const char *path,
				     json_t **out, struct sfs_err *e)
{
	return sfsi_rstore_get_json(rs_of(s), path, out, e);
}

/* A file of an answer, numbered, with the caller's permission. */
enum sfs_status sfsi_rstore_file_of(struct rstore *rs, json_t *o, int perm,
				    struct sfs_file *f, struct sfs_err *e)
{
	enum sfs_status st = sfsi_remote_file_decode_obj(o, f, e);

	return st ? st : number(rs, f, perm, e);
}

struct sfs_remote *sfsi_remote_of(struct sfs_store *s)
{
	return rs_of(s)->r;
}

unsigned sfsi_remote_has(struct sfs_store *s)
{
	return sfs_remote_features(rs_of(s)->r);
}

enum sfs_status sfsi_remote_file_number(struct sfs_store *s, struct sfs_file *f,
					struct sfs_err *e)
{
	return number(rs_of(s), f, 0, e);
}

enum sfs_status sfsi_remote_file_json(struct sfs_store *s, const char *json,
				      size_t len, struct sfs_file *out,
				      struct sfs_err *e)
{
	enum sfs_status st = sfs_remote_file_decode(json, len, out, e);

	return st ? st : sfsi_remote_file_number(s, out, e);
}

/* ---- files ------------------------------------------------------------- */

static enum sfs_status r_file_get_ino(struct sfs_store *s, int64_t ino,
				      struct sfs_file *out, struct sfs_err *e)
{
	struct rstore *rs = rs_of(s);
	char id[SFS_ID_SIZE], url[128];
	enum sfs_status st;
	int perm = 0, pending = 0;
	json_t *j;

	sfs_file_init(out);
	if (sfsi_rstore_key_of(rs, ino, id, sizeof(id), &perm) == 0 &&
	    id[0] != '/' && (st = sfsi_rpend_resolve(s, id, e)))
		return st; /* maybe on the server: never shown as a guess */
	if (sfsi_rstore_key_of(rs, ino, id, sizeof(id), &perm) ||
	    id[0] == '/' || (pending = sfsi_rpend_file(rs->pend, ino, out)) < 0)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this number");
	if (pending)
		return SFS_OK; /* not on the server yet */
	if (sfsi_rcache_file(rs->cache, ino, 0, out)) {
		sfsi_rstore_remember_kept(rs, out);
		return SFS_OK;
	}
	snprintf(url, sizeof(url), API "/files/%s", id);
	st = sfsi_rstore_get_json(rs, url, &j, e);
	if (!st)
		st = sfsi_rstore_file_of(rs, j, 0, out, e);
	if (!st)
		sfsi_rstore_remember_file(rs, ino, j);
	/* offline: as last got alone, else as the last listing had it */
	if (st && sfsi_rstore_offline(rs, st) &&
	    (!sfsi_rstore_last_file(rs, ino, out) ||
	     sfsi_rcache_file(rs->cache, ino, 1, out))) {
		sfs_err_init(e); /* its blocks may be in the cache */
		st = SFS_OK;
	}
	json_decref(j);
	return st;
}

/* File number ino as the server has it now, into the cache too. */
static enum sfs_status get_fresh(struct sfs_store *s, int64_t ino,
				 struct sfs_file *out, struct sfs_err *e)
{
	struct rstore *rs = rs_of(s);
	char id[SFS_ID_SIZE], url[128];
	enum sfs_status st;
	int perm = 0;
	json_t *j = NULL;

	sfs_file_init(out);
	if (sfsi_rstore_key_of(rs, ino, id, sizeof(id), &perm) ||
	    !sfs_uuid_valid(id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this number");
	snprintf(url, sizeof(url), API "/files/%s", id);
	st = sfsi_rstore_get_json(rs, url, &j, e);
	if (!st)
		st = sfsi_rstore_file_of(rs, j, 0, out, e);
	if (!st) {
		sfsi_rstore_remember_file(rs, ino, j);
		sfsi_rcache_apply(rs->cache, out);
	}
	json_decref(j);
	return st;
}

/*
 * A writer's base (SFS_BLOB_KEEP): the server answers a version's bytes
 * only while it is the file's, so the first block is read now (the open
 * blob keeps it, and the cache); a version replaced before that is read
 * again from the server, a few times at most.
 */
static enum sfs_status keep_base(struct sfs_blob *b, struct sfs_err *e)
{
	size_t got;
	char c;

	return sfs_blob_pread(b, &c, 1, 0, &got, e);
}

static enum sfs_status r_file_open_ino(struct sfs_store *s, int64_t ino,
				       enum sfs_content which, unsigned flags,
				       struct sfs_blob **blob,
				       struct sfs_file *out, struct sfs_err *e)
{
	int la = which == SFS_CONTENT_LISTENING, tries = 0;
	struct sfs_file f;
	enum sfs_status st;
	int64_t size;

	*blob = NULL;
	st = flags & SFS_BLOB_FRESH ? get_fresh(s, ino, &f, e)
				    : r_file_get_ino(s, ino, &f, e);
again:
	if (!st)
		st = sfs_content_state_check(sfs_file_content_state(&f, which),
					     which, e);
	size = la ? f.la.size : f.size;
	if (!st && size == 0)
		st = sfs_blob_open_empty(blob, e);
	else if (!st)
		st = sfsi_rblob_open(rs_of(s)->rb, f.id, which,
				     la ? f.la.sha256 : f.sha256, size, flags,
				     blob, e);
	if (!st && size > 0 && (flags & SFS_BLOB_KEEP)) {
		st = keep_base(*blob, e);
		if (st == SFS_CONFLICT && e->reason == SFS_R_CONTENT_CHANGED &&
		    ++tries < 4) {
			sfs_blob_close(*blob);
			*blob = NULL;
			sfs_file_release(&f);
			sfs_err_init(e);
			st = get_fresh(s, ino, &f, e);
			goto again;
		}
		if (st) {
			sfs_blob_close(*blob);
			*blob = NULL;
		}
	}
	if (!st && out) {
		*out = f;
		return SFS_OK;
	}
	sfs_file_release(&f);
	return st;
}

/* ---- attributes, shares, space ----------------------------------------- */

static enum sfs_status get_xattrs(struct rstore *rs, const char *id,
				  json_t **out, struct sfs_err *e)
{
	char url[128];

	if (!sfs_uuid_valid(id))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_FILE_NOT_FOUND,
				"no file with this id exists");
	/* the seed's API keeps none, a file not sent yet has none: a
	 * file has no extra attribute */
	if (!(sfs_remote_features(rs->r) & SFS_REMOTE_XATTRS) ||
	    sfsi_rpend_has(rs->pend, id)) {
		*out = json_pack("{s:[]}", "xattrs");
		return *out ? SFS_OK
			    : sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				       "out of memory");
	}
	snprintf(url, sizeof(url), API "/files/%s/xattrs", id);
	return sfsi_rstore_get_json(rs, url, out, e);
}

static enum sfs_status r_xattr_list(struct sfs_store *s, const char *id,
				    struct sfs_buf *out, struct sfs_err *e)
{
	enum sfs_status st;
	const char *name;
	json_t *j, *a;
	size_t i;

	st = get_xattrs(rs_of(s), id, &j, e);
	a = json_object_get(j, "xattrs");
	for (i = 0; !st && i < json_array_size(a); i++) {
		name = json_string_value(
			json_object_get(json_array_get(a, i), "name"));
		if (name && sfs_buf_add(out, name, strlen(name) + 1))
			st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				      "out of memory");
	}
	json_decref(j);
	return st;
}

static enum sfs_status r_xattr_get(struct sfs_store *s, const char *id,
				   const char *name, struct sfs_buf *out,
				   struct sfs_err *e)
{
	enum sfs_status st;
	const char *n, *v = NULL;
	json_t *j, *a, *o;
	size_t i;

	st = get_xattrs(rs_of(s), id, &j, e);
	a = json_object_get(j, "xattrs");
	for (i = 0; !st && i < json_array_size(a); i++) {
		o = json_array_get(a, i);
		n = json_string_value(json_object_get(o, "name"));
		v = json_string_value(json_object_get(o, "value"));
		if (n && v && !strcmp(n, name))
			break;
	}
	if (!st && i == json_array_size(a))
		st = sfs_errf(e, SFS_NOT_FOUND, SFS_R_ATTRIBUTE_NOT_FOUND,
			      "no attribute '%s'", name);
	else if (!st && (!v || sfs_base64_decode(v, strlen(v), out)))
		st = sfs_errf(e, SFS_IO, SFS_R_NONE,
			      "the server's value of '%s' is not base64", name);
	json_decref(j);
	return st;
}

static enum sfs_status r_space_of(struct sfs_store *s, struct sfs_space *out,
				  struct sfs_err *e)
{
	enum sfs_status st;
	json_t *j;

	memset(out, 0, sizeof(*out));
	if (!(sfs_remote_features(rs_of(s)->r) & SFS_REMOTE_SPACE))
		return SFS_OK; /* not told: df shows 0 */
	st = sfsi_rstore_get_json(rs_of(s), API "/space", &j, e);
	if (!st) {
#define U(k) (uint64_t) json_integer_value(json_object_get(j, k))
		out->total_bytes = U("totalBytes");
		out->used_bytes = U("usedBytes");
		out->free_bytes = U("freeBytes");
		out->avail_bytes = U("availableBytes");
		out->total_files = U("totalFiles");
		out->free_files = U("freeFiles");
#undef U
	}
	json_decref(j);
	return st;
}

/*
 * The key's user, with the scopes the server says its credentials have
 * (all when it does not say); what it may do is still the server's to
 * say, call by call.
 */
static enum sfs_status r_auth_user(struct sfs_store *s, struct sfs_actor *out,
				   struct sfs_err *e)
{
	(void)e;
	memset(out, 0, sizeof(*out));
	out->user = rs_of(s)->user;
	out->tenant = 1;
	out->scopes = sfs_remote_scopes(rs_of(s)->r) & SFS_SCOPE_ALL;
	return SFS_OK;
}

/* ---- the store ------------------------------------------------------------
 */

static void r_close(struct sfs_store *s)
{
	struct rstore *rs = rs_of(s);
	size_t i;

	if (rs) {
		sfsi_rpend_last_sends(s); /* before the feed's stop aborts */
		sfsi_rfeed_stop(rs->feed);
		sfsi_rblob_stop(rs->rb);
		sfsi_rcache_free(rs->cache);
		sfsi_rpend_free(rs->pend);
		sfs_remote_close(rs->r);
		sfsi_staging_close(s); /* its spare stages, its directory */
		for (i = 0; i < rs->n; i++) {
			free(rs->v[i].key);
			free(rs->v[i].last);
		}
		free(rs->v);
		free(rs->buckets);
		pthread_mutex_destroy(&rs->mu);
		free(rs);
	}
	free(s->staging_dir);
	free(s->dir);
	free(s);
}

/* ---- the change feed -------------------------------------------------- */

static enum sfs_status r_change_seq(struct sfs_store *s, int64_t *seq,
				    struct sfs_err *e)
{
	struct rstore *rs = rs_of(s);

	*seq = 0;
	if (!rs->feed)
		return sfsi_remote_refuse("follow changes (no change feed)", e);
	*seq = sfsi_rfeed_seq(rs->feed);
	return SFS_OK;
}

static enum sfs_status r_changes(struct sfs_store *s, int64_t since, int others,
				 sfs_change_fn fn, void *arg, int64_t *last,
				 struct sfs_err *e)
{
	struct rstore *rs = rs_of(s);

	(void)since; /* the queue holds only what was not handed out */
	*last = since;
	if (!rs->feed)
		return sfsi_remote_refuse("follow changes (no change feed)", e);
	/* the feed asks the server to leave this store's own out (skipOwn) */
	if (!others)
		return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				"a remote store's change feed lists only "
				"others' changes");
	sfsi_rfeed_drain(rs->feed, rs->user, fn, arg, last);
	return SFS_OK;
}

static int r_change_fd(struct sfs_store *s)
{
	return rs_of(s)->feed ? sfsi_rfeed_fd(rs_of(s)->feed) : -1;
}

/* ---- the cache's numbers ------------------------------------------------ */

struct sfsi_rcache *sfsi_remote_cache(struct sfs_store *s)
{
	return rs_of(s)->cache;
}

int64_t sfsi_remote_number(struct sfs_store *s, const char *id)
{
	return sfsi_rstore_known(rs_of(s), id);
}

struct sfsi_rpend *sfsi_remote_pend(struct sfs_store *s)
{
	return rs_of(s)->pend;
}

/*
 * The front end stops. Cut (SIGTERM): a close waiting to resume an
 * upload gives up, a write waiting at the write window goes on, and
 * requests in flight are cut off (SFSI_STOP_ENDS). Its session ended
 * (an unmount): only the last tries are bounded.
 */
static void r_stopping(struct sfs_store *s, enum sfs_store_stop how)
{
	sfsi_remote_stopping(rs_of(s)->r, how == SFS_STORE_CUT);
}

static const struct sfsi_store_ops remote_ops = {
	.close = r_close,
	.stopping = r_stopping,
	.auth_user = r_auth_user,
	.space_of = r_space_of,
	.dir_stat = sfsi_remote_dir_stat,
	.dir_stat_ino = sfsi_remote_dir_stat_ino,
	.dir_subdirs = sfsi_remote_dir_subdirs,
	.dir_files = sfsi_remote_dir_files,
	.query_files = sfsi_remote_query_files,
	.query_shared = sfsi_remote_query_shared,
	.file_get_ino = r_file_get_ino,
	.file_open_ino = r_file_open_ino,
	.xattr_get = r_xattr_get,
	.xattr_list = r_xattr_list,
	.share_list = sfsi_rpend_share_list,
	.share_put = sfsi_rpend_share_put,
	.share_revoke_user = sfsi_rpend_share_revoke_user,
	.user_resolve = sfsi_remote_user_resolve,
	.user_name = sfsi_remote_user_name,
	.file_create = sfsi_rpend_file_create,
	.set_content = sfsi_rpend_set_content,
	.file_sync = sfsi_rpend_file_sync,
	.file_update = sfsi_rpend_file_update,
	.file_delete = sfsi_rpend_file_delete,
	.listening_generate = sfsi_rpend_listening_generate,
	.file_rename = sfsi_rpend_file_rename,
	.dir_make = sfsi_rkept_dir_make,
	.dir_remove = sfsi_rpend_dir_remove,
	.dir_rename = sfsi_rpend_dir_rename,
	.dir_set_mtime = sfsi_rkept_dir_set_mtime,
	.xattr_set = sfsi_rpend_xattr_set,
	.xattr_remove = sfsi_rpend_xattr_remove,
	.change_seq = r_change_seq,
	.changes = r_changes,
	.change_fd = r_change_fd,
	.stage_stream = sfsi_remote_stream_start,
	.stage_stream_free = sfsi_remote_stream_free,
};

/*
 * $XDG_CACHE_HOME/speechfs/<host_port>, else ~/.cache/speechfs/…: the
 * home of $HOME, else of the user's passwd entry (a mount from fstab at
 * boot has no $HOME; the cache was then /tmp/.cache/…, where any local
 * user could have put blocks first, and blocks are never checked again).
 */
static enum sfs_status default_cache_dir(const char *url, char *out,
					 size_t size, struct sfs_err *e)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	const char *host = strstr(url, "://");
	struct passwd *pw;
	char name[256];
	size_t i, n;

	n = sfs_strlcpy(name, host ? host + 3 : url, sizeof(name));
	while (n > 1 && name[n - 1] == '/') /* http://h:p/ is http://h:p */
		name[--n] = '\0';
	for (i = 0; name[i]; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
		      name[i] == '-'))
			name[i] = '_';
	if (xdg && xdg[0] == '/') {
		snprintf(out, size, "%s/speechfs/%s", xdg, name);
		return SFS_OK;
	}
	if (!home || home[0] != '/') {
		pw = getpwuid(geteuid());
		home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir
								: NULL;
	}
	if (!home)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"no home directory for the block cache: give "
				"-o cache_dir=DIR");
	snprintf(out, size, "%s/.cache/speechfs/%s", home, name);
	return SFS_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
			struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

#define OLD_CACHE "a block cache named with the URL's user:password"

/*
 * Before b4cc7dd the default block cache was named by the URL as given,
 * its user:password too (~/.cache/speechfs/USER_PASS_HOST_PORT), and so
 * left behind since: this URL's (its name is known) becomes the cache
 * when there is none yet (its blocks are content addressed: still good),
 * else it goes. One a mount still uses (its staging held) stays. One
 * line says which, naming the server as url_shown, not the old name.
 */
static void old_cache_dir(const char *url_given, const char *url_shown,
			  const char *cache)
{
	char old[4096], staging[4096 + 16];
	struct stat sb;

	if (default_cache_dir(url_given, old, sizeof(old), NULL) ||
	    !strcmp(old, cache) || lstat(old, &sb) || !S_ISDIR(sb.st_mode) ||
	    sb.st_uid != geteuid())
		return;
	snprintf(staging, sizeof(staging), "%s/staging", old);
	if (sfsi_staging_held(staging, NULL)) {
		sfs_warn("remote",
			 "'%s': " OLD_CACHE " is in use by a mount: "
			 "left as it is",
			 url_shown);
	} else if (lstat(cache, &sb) && errno == ENOENT &&
		   !rename(old, cache)) {
		sfs_info("remote", "'%s': " OLD_CACHE " is now '%s'", url_shown,
			 cache);
	} else if (nftw(old, remove_entry, 16, FTW_DEPTH | FTW_PHYS)) {
		sfs_warn("remote", "'%s': cannot remove " OLD_CACHE ": %s",
			 url_shown, strerror(errno));
	} else {
		sfs_info("remote",
			 "'%s': " OLD_CACHE " removed (the cache is "
			 "'%s')",
			 url_shown, cache);
	}
}

/*
 * The block cache's directory, made private (0700) if new. One that
 * exists must be this user's and not writable by others: cached blocks
 * are served as the file's bytes without a check.
 */
static enum sfs_status own_cache_dir(const char *dir, struct sfs_err *e)
{
	char parent[4096];
	struct stat sb;
	char *slash;

	sfs_strlcpy(parent, dir, sizeof(parent));
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		if (sfsi_mkdirs(parent) < 0)
			goto fail;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	if (stat(dir, &sb) < 0)
		goto fail;
	if (!S_ISDIR(sb.st_mode))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"cache directory '%s' is not a directory", dir);
	if (sb.st_uid != geteuid() || (sb.st_mode & 022))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"cache directory '%s' belongs to another user "
				"or others may write it (its blocks are read "
				"unchecked): use one of your own",
				dir);
	return SFS_OK;
fail:
	return sfs_errf(e, SFS_IO, SFS_R_NONE, "cache directory '%s': %s", dir,
			strerror(errno));
}

/*
 * What each extension the server may lack turns off, said at mount: one
 * line each (a server with the seed's API only lacks them all), so no
 * line nears the log's bound however many there are or the URL's length.
 * The file times, original filenames and restore come with the PATCH
 * fields of the content versions' extension.
 */
static const struct {
	unsigned feature;
	const char *what;
} offs[] = {
	{ SFS_REMOTE_CONTENT, "content versions (a new file is uploaded whole "
			      "at close, rewriting a file is ENOTSUP)" },
	{ SFS_REMOTE_CONTENT,
	  "file times, original filenames and restore (touch, a rename that "
	  "changes a file's extension and moving one out of .trash are "
	  "ENOTSUP)" },
	{ SFS_REMOTE_DIRS, "directories (they are what file paths show: mkdir, "
			   "rmdir and renaming one are ENOTSUP)" },
	{ SFS_REMOTE_KEEP_DIRS,
	  "keeping emptied directories (a directory the API made vanishes "
	  "with its last entry removed or moved out, as through the API: "
	  "rm -r of one may fail when it takes over 1 s)" },
	{ SFS_REMOTE_XATTRS, "attributes (user.* xattrs are ENOTSUP)" },
	{ SFS_REMOTE_SPACE, "space (df shows 0)" },
	{ SFS_REMOTE_CRC32C, "the CRC32C of uploads (what is sent is checked "
			     "by its SHA-256, more of the mount's CPU)" },
	{ SFS_REMOTE_CHANGES, "change feed (others' changes show as the "
			      "kernel's entries expire, in 1 s)" },
};

static void features_off(const char *url, unsigned f)
{
	size_t i;

	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		if (!(f & offs[i].feature))
			sfs_warn("remote", "'%s' lacks an extension, off: %s",
				 url, offs[i].what);
}

int sfs_store_is_remote(const struct sfs_store *s)
{
	return s->ops != NULL;
}

enum sfs_status sfs_store_open_url(const struct sfs_remote_opts *o,
				   struct sfs_store **out, struct sfs_err *e)
{
	struct sfs_store *s = NULL;
	struct rstore *rs = NULL;
	char cache[4096], stage_root[4096 + 16];
	enum sfs_status st;
	unsigned f;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	rs = calloc(1, sizeof(*rs));
	if (!s || !rs || !(rs->buckets = calloc(NBUCKETS, sizeof(int64_t))) ||
	    !(s->dir = strdup(o->url ? o->url : ""))) {
		if (rs)
			free(rs->buckets);
		free(rs);
		if (s)
			free(s->dir);
		free(s);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	pthread_mutex_init(&rs->mu, NULL);
	sfs_config_init(&s->cfg);
	if (sfsi_rcache_new(&rs->cache, e) || sfsi_rpend_new(&rs->pend, e)) {
		sfsi_rcache_free(rs->cache);
		pthread_mutex_destroy(&rs->mu);
		free(rs->buckets);
		free(rs);
		free(s->dir);
		free(s);
		return SFS_NOMEM;
	}
	s->ops = &remote_ops;
	s->remote = rs;
	s->wal_fd = -1;
	s->staging_lock_fd = -1;
	st = sfs_remote_open_opts(o, &rs->r, e);
	f = st ? 0 : sfs_remote_features(rs->r);
	if (!st) {
		/* the credentials, checked now rather than at the first ls */
		struct sfs_dir_info root;

		st = sfsi_remote_dir_stat(s, "/", &root, e);
	}
	if (!st) {
		if (o->cache_dir)
			sfs_strlcpy(cache, o->cache_dir, sizeof(cache));
		else if (!(st = default_cache_dir(sfs_remote_url(rs->r), cache,
						  sizeof(cache), e)))
			old_cache_dir(o->url, sfs_remote_url(rs->r), cache);
	}
	if (!st)
		st = own_cache_dir(cache, e);
	if (!st) {
		/* writes are staged beside the cache, then sent on close: in
		 * a directory of this process's, and those that mounts
		 * killed left go now (a crash left their stages for ever) */
		snprintf(stage_root, sizeof(stage_root), "%s/staging", cache);
		if (sfsi_mkdirs(stage_root) < 0)
			st = sfs_errf(e, SFS_IO, SFS_R_NONE,
				      "cannot make '%s': %s", stage_root,
				      strerror(errno));
		else if (sfsi_staging_sweep(stage_root, NULL, NULL) < 0)
			st = sfs_errf(e, SFS_IO, SFS_R_NONE,
				      "cannot read '%s': %s", stage_root,
				      strerror(errno));
		else
			st = sfsi_staging_open(s, stage_root, e);
	}
	if (!st) {
		st = sfsi_rblob_start(rs->r, cache,
				      o->cache_bytes < 0 ? (int64_t)1 << 30
							 : o->cache_bytes,
				      &rs->rb, e);
	}
	rs->user = 1;
	if (!st)
		st = sfsi_rfeed_start(s, rs->r, &rs->feed, e);
	if (!st && rs->feed)
		sfsi_rcache_live(rs->cache, 1);
	if (st) {
		r_close(s);
		return st;
	}
	sfs_info("remote", "'%s': block cache '%s'", sfs_remote_url(rs->r),
		 cache);
	features_off(sfs_remote_url(rs->r),
		     rs->feed ? f : f & ~SFS_REMOTE_CHANGES);
	*out = s;
	return SFS_OK;
}
