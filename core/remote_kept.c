/*
 * The remote store's writes as its table calls them (remote_i.h): each
 * one's answer put in the cache of directories at once, so the mount
 * sees its own change before the call returns (the feed does not tell a
 * store of its own changes, by its origin); and what the feed tells of
 * others' changes, forgotten there.
 */
#include "remote_i.h"
#include "speechfs/banned.h"

/*
 * A status that surely changed nothing: the call was refused (by the
 * server or before it was asked) for the request or the state it found.
 * Any other failure (no answer, an answer not read, the server's own
 * failure) may come after the server committed.
 */
static int changed_nothing(enum sfs_status st)
{
	switch (st) {
	case SFS_NOT_FOUND:
	case SFS_FORBIDDEN:
	case SFS_UNAUTHENTICATED:
	case SFS_CONFLICT:
	case SFS_GONE:
	case SFS_NOT_READY:
	case SFS_INVALID:
	case SFS_RANGE:
	case SFS_RATE_LIMITED:
	case SFS_QUOTA:
	case SFS_TOO_LARGE:
	case SFS_PRECONDITION:
	case SFS_UNSUPPORTED:
		return 1;
	default:
		return 0;
	}
}

/*
 * This store's writes, each one's answer put in the cache at once (the
 * mount sees its own change before the call returns; the feed does not
 * tell a store of its own changes). A call that may have changed
 * something and whose answer cannot be put in (none, not read, or a file
 * with no id or number) may have changed anything: everything is asked
 * again. With no answer asked (out NULL), only the file's entry changed
 * (not its place): it is asked again.
 */
static void wrote_state(struct sfs_store *s, enum sfs_status st, const char *id,
			const struct sfs_file *out, uint64_t t,
			const char *state)
{
	struct sfsi_rcache *c = sfsi_remote_cache(s);
	int64_t ino = id ? sfsi_remote_number(s, id) : 0;

	if (st && changed_nothing(st))
		return;
	if (!st && out && out->id[0] && out->ino > 0)
		sfsi_rcache_apply_state(c, out, t, state);
	else if (!st && !out && ino)
		sfsi_rcache_forget_file(c, ino, NULL);
	else if (st || out)
		sfsi_rcache_forget_all(c);
}

static void wrote(struct sfs_store *s, enum sfs_status st, const char *id,
		  const struct sfs_file *out)
{
	wrote_state(s, st, id, out, 0, NULL);
}

/* The answer of a write whose caller wants none: the cache does. */
#define ANSWER(out, mine) ((out) ? (out) : (sfs_file_init(&(mine)), &(mine)))

enum sfs_status sfsi_rkept_file_create(struct sfs_store *s,
				       const struct sfs_file_spec *spec,
				       struct sfs_stage *content,
				       enum sfsi_at_stop at_stop,
				       struct sfs_file *out, struct sfs_err *e)
{
	/* the directory's state after the write, under a ticket taken
	 * before its request */
	uint64_t t = sfsi_rcache_clock(sfsi_remote_cache(s));
	char state[SFSI_DIR_STATE_MAX];
	struct sfs_file mine, *o = ANSWER(out, mine);
	enum sfs_status st =
		sfsi_remote_file_create(s, spec, content, at_stop, o, state, e);

	/* made, then its content refused: the new empty file is there */
	if (st && content && changed_nothing(st))
		sfsi_rcache_forget_dir(sfsi_remote_cache(s),
				       spec->path ? spec->path : "/", 0);
	wrote_state(s, st, NULL, o, t, state);
	if (o == &mine)
		sfs_file_release(&mine);
	return st;
}

enum sfs_status sfsi_rkept_set_content(struct sfs_store *s, const char *id,
				       struct sfs_stage *content,
				       unsigned flags, struct sfs_file *out,
				       struct sfs_err *e)
{
	uint64_t t = sfsi_rcache_clock(sfsi_remote_cache(s));
	char state[SFSI_DIR_STATE_MAX];
	struct sfs_file mine, *o = ANSWER(out, mine);
	enum sfs_status st =
		sfsi_remote_set_content(s, id, content, flags, o, state, e);

	wrote_state(s, st, id, o, t, state);
	if (o == &mine)
		sfs_file_release(&mine);
	return st;
}

enum sfs_status sfsi_rkept_file_update(struct sfs_store *s, const char *id,
				       const struct sfs_file_update *u,
				       struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_file mine, *o = ANSWER(out, mine);
	enum sfs_status st = sfsi_remote_file_update(s, id, u, o, e);

	wrote(s, st, id, o);
	if (o == &mine)
		sfs_file_release(&mine);
	return st;
}

enum sfs_status sfsi_rkept_file_delete(struct sfs_store *s, const char *id,
				       int purge, struct sfs_err *e)
{
	enum sfs_status st = sfsi_remote_file_delete(s, id, purge, e);
	int64_t ino = sfsi_remote_number(s, id);

	if (!st && ino)
		sfsi_rcache_remove(sfsi_remote_cache(s), ino);
	wrote(s, st, NULL, NULL);
	return st;
}

enum sfs_status sfsi_rkept_listening_generate(struct sfs_store *s,
					      const char *id,
					      struct sfs_file *out,
					      struct sfs_err *e)
{
	struct sfs_file mine, *o = ANSWER(out, mine);
	enum sfs_status st = sfsi_remote_listening_generate(s, id, o, e);

	wrote(s, st, id, o);
	if (o == &mine)
		sfs_file_release(&mine);
	return st;
}

enum sfs_status sfsi_rkept_file_rename(struct sfs_store *s, const char *id,
				       const struct sfs_file_update *u,
				       const char *replace_id, unsigned flags,
				       struct sfs_file *out, struct sfs_err *e)
{
	int64_t gone = replace_id ? sfsi_remote_number(s, replace_id) : 0;
	struct sfs_file mine, *o = ANSWER(out, mine);
	enum sfs_status st =
		sfsi_remote_file_rename(s, id, u, replace_id, flags, o, e);

	if (!st && gone)
		sfsi_rcache_remove(sfsi_remote_cache(s), gone);
	/* a server with no replaceFileId deleted it before a refused move */
	else if (gone)
		sfsi_rcache_forget_file(sfsi_remote_cache(s), gone, NULL);
	wrote(s, st, id, o);
	if (o == &mine)
		sfs_file_release(&mine);
	return st;
}

/* A directory changed: it and all below, asked again. */
static void dir_wrote(struct sfs_store *s, enum sfs_status st, const char *path)
{
	if (st == SFS_UNAVAILABLE || st == SFS_IO)
		sfsi_rcache_forget_all(sfsi_remote_cache(s));
	else if (!st && path)
		sfsi_rcache_forget_dir(sfsi_remote_cache(s), path, 1);
}

/*
 * A directory made (from NULL), removed (to NULL) or renamed: as any
 * change, and the last answers (what lists while the server does not
 * answer) show it: the feed never tells this store of its own changes.
 * (A change that may have happened without an answer is not in them.)
 */
static void dirs_wrote(struct sfs_store *s, enum sfs_status st,
		       const char *from, const char *to)
{
	if (from)
		dir_wrote(s, st, from);
	if (to)
		dir_wrote(s, st, to);
	if (st)
		return;
	if (from && !to)
		sfsi_remote_dir_gone(s, from);
	sfsi_rcache_own_dirs(sfsi_remote_cache(s), from, to);
}

enum sfs_status sfsi_rkept_dir_make(struct sfs_store *s, const char *path,
				    struct sfs_err *e)
{
	enum sfs_status st = sfsi_remote_dir_make(s, path, e);

	dirs_wrote(s, st, NULL, path);
	return st;
}

enum sfs_status sfsi_rkept_dir_remove(struct sfs_store *s, const char *path,
				      struct sfs_err *e)
{
	enum sfs_status st = sfsi_remote_dir_remove(s, path, e);

	dirs_wrote(s, st, path, NULL);
	return st;
}

enum sfs_status sfsi_rkept_dir_rename(struct sfs_store *s, const char *from,
				      const char *to, struct sfs_err *e)
{
	enum sfs_status st = sfsi_remote_dir_rename(s, from, to, e);

	dirs_wrote(s, st, from, to);
	return st;
}

enum sfs_status sfsi_rkept_dir_set_mtime(struct sfs_store *s, const char *path,
					 int64_t mtime_ns, struct sfs_err *e)
{
	enum sfs_status st = sfsi_remote_dir_set_mtime(s, path, mtime_ns, e);

	dir_wrote(s, st, path);
	return st;
}

/* An attribute or a share: the file's JSON may show it, asked again. */
enum sfs_status sfsi_rkept_xattr_set(struct sfs_store *s, const char *id,
				     const char *name, const void *value,
				     size_t len, unsigned flags,
				     struct sfs_err *e)
{
	enum sfs_status st =
		sfsi_remote_xattr_set(s, id, name, value, len, flags, e);

	wrote(s, st, id, NULL);
	return st;
}

enum sfs_status sfsi_rkept_xattr_remove(struct sfs_store *s, const char *id,
					const char *name, struct sfs_err *e)
{
	enum sfs_status st = sfsi_remote_xattr_remove(s, id, name, e);

	wrote(s, st, id, NULL);
	return st;
}

enum sfs_status sfsi_rkept_share_put(struct sfs_store *s, const char *file_id,
				     const char *user_id, enum sfs_perm perm,
				     struct sfs_share *out, int *created,
				     struct sfs_err *e)
{
	enum sfs_status st = sfsi_remote_share_put(s, file_id, user_id, perm,
						   out, created, e);

	wrote(s, st, file_id, NULL);
	return st;
}

enum sfs_status sfsi_rkept_share_revoke_user(struct sfs_store *s,
					     const char *file_id,
					     const char *user_id,
					     struct sfs_err *e)
{
	enum sfs_status st =
		sfsi_remote_share_revoke_user(s, file_id, user_id, e);

	wrote(s, st, file_id, NULL);
	return st;
}

void sfsi_remote_saw_change(struct sfs_store *s, const char *id, int64_t ino,
			    const char *dir, int is_dir)
{
	if (is_dir) {
		if (dir)
			sfsi_rcache_forget_dir(sfsi_remote_cache(s), dir, 1);
		return;
	}
	if (!ino && id)
		ino = sfsi_remote_number(s, id);
	sfsi_rcache_forget_file(sfsi_remote_cache(s), ino, dir);
}

void sfsi_remote_feed_live(struct sfs_store *s, int live)
{
	sfsi_rcache_live(sfsi_remote_cache(s), live);
}

int sfsi_remote_feed_is_live(struct sfs_store *s)
{
	return sfsi_rcache_is_live(sfsi_remote_cache(s));
}
