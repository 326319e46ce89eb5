/*
 * The change feed as one user sees it: what changed after a cursor among
 * the files the user may see (own files, files shared with the user, the
 * tenant's INTERNAL files) and the user's directories. The store keeps a
 * row per committed change (written by the same transaction); the feed
 * reports each changed file once, in its state now, and each changed
 * directory once. A cursor is the sequence number of the last change
 * seen; the store keeps the last rows only, so an old cursor expires.
 */
#ifndef SPEECHFS_CHANGES_H
#define SPEECHFS_CHANGES_H

#include <stdint.h>
#include "auth.h"
#include "err.h"
#include "file.h"

struct sfs_store;

enum sfs_change_kind {
	SFS_CHANGE_FILE = 0, /* a file was made, changed, moved, (un)shared */
	SFS_CHANGE_DIR	     /* the user's directory's entries changed */
};

struct sfs_change {
	int64_t seq; /* of the change's last row in the batch */
	enum sfs_change_kind kind;
	/*
	 * Who made it (sfs_store_origin_set): the origin every row of it
	 * in the batch carries, or 0 when they differ or carry none.
	 */
	int64_t origin;
	/* SFS_CHANGE_FILE */
	char file_id[SFS_ID_SIZE];
	/*
	 * 1: file holds the file as the user sees it now (deleted and
	 * purged files too, with their flags). 0: the user may no longer
	 * see it (unshared, made PRIVATE, gone): forget it.
	 */
	int visible;
	struct sfs_file file;
	/* SFS_CHANGE_DIR: "/a/b/", a directory whose entries changed */
	const char *dir;
};

/* Called for each change in order; non-zero: no memory (the call fails). */
typedef int (*sfs_change_visit)(void *arg, const struct sfs_change *c);

#define SFS_CHANGES_LIMIT_MAX 10000

/*
 * The changes after `cursor` the actor may see, at most `limit` rows of
 * the store's feed (1..SFS_CHANGES_LIMIT_MAX) looked at; *next is the
 * cursor to ask with next time (past the rows looked at, seen or not)
 * and *more 1 when rows beyond those wait. A change whose origin is
 * `skip` (not 0) is passed over, its file not even loaded: a client's
 * own changes, when it asks for others' only. Read scope. SFS_GONE
 * (SFS_R_CURSOR_EXPIRED) when the cursor is older than the rows kept or
 * newer than the store's last change (another store's): start again from
 * sfs_changes_cursor and list the tree.
 */
enum sfs_status sfs_changes_since(struct sfs_store *s,
				  const struct sfs_actor *a, int64_t cursor,
				  int limit, int64_t skip, sfs_change_visit fn,
				  void *arg, int64_t *next, int *more,
				  struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The store's last change after `after` (*seq; `after` when there is
 * none) and the origin every change in between carries (*origin; 0 when
 * there is none, or more than one, or one without). For a long poll's
 * watcher: changes all made by the poll's own client need not wake it.
 */
enum sfs_status sfs_changes_origin_after(struct sfs_store *s, int64_t after,
					 int64_t *seq, int64_t *origin,
					 struct sfs_err *e) SFS_MUST_CHECK;

/* The cursor of now: every change so far is before it. Read scope. */
enum sfs_status sfs_changes_cursor(struct sfs_store *s,
				   const struct sfs_actor *a, int64_t *cursor,
				   struct sfs_err *e) SFS_MUST_CHECK;

#endif
