/*
 * The mount's reads of one directory (sfs_query_dir_files,
 * sfs_query_dir_entries, sfs_query_dir_names: no joins, no copies) and
 * which listing shows a file (sfs_file_listed).
 */
#include <stdlib.h>
#include <string.h>
#include "auth_i.h"
#include "db_i.h"
#include "file_i.h"
#include "query_i.h"
#include "remote_i.h"
#include "speechfs/query.h"
#include "speechfs/vpath.h"
#include "store_i.h"
#include "util_i.h"

struct names_ctx {
	const char *const *names;
	size_t n;
	const char *prefix;
	int (*fn)(void *arg, const struct sfs_file *f);
	void *arg;
};

/* Only the rows whose name is exactly one of the names, or id prefixed. */
static int name_filter(void *arg, const struct sfs_file *f)
{
	const struct names_ctx *c = arg;
	size_t i;

	if (c->prefix && !strncmp(f->id, c->prefix, strlen(c->prefix)))
		return c->fn(c->arg, f);
	for (i = 0; i < c->n; i++)
		if (c->names[i] && !strcmp(c->names[i], f->name))
			return c->fn(c->arg, f);
	return 0;
}

/*
 * The mount's rows of one directory: read only what an entry shows, with
 * no joins (the owner is the actor) and no copies: the strings point into
 * the row while fn runs. Filled: ino, id, owner and tenant (the actor's),
 * name, filename, path, size, la.status, la.size, la.deleted, la.purged,
 * mtime_ns, atime_ns, ctime_ns, suffixed, access, perm.
 */
#define DIR_SEL                                                                \
	"id, uuid, name, filename, size, la_status, la_size, la_deleted,"      \
	" la_purged, mtime_ns, ctime_ns, entry_suffix, atime_ns"
#define DIR_WHERE                                                              \
	" FROM file WHERE owner_id = ?1 AND is_deleted = 0 AND dir = ?2"
#define DIR_COLS "SELECT " DIR_SEL DIR_WHERE
/*
 * What an entry's name is made of (sfs_query_dir_entries): decoding the
 * 13 columns above was most of a listing's cost, and `find` uses none of
 * the attributes (100,000 rows in 1,000 directories: 110 ms against 60).
 * In the index's order, unsorted: an ORDER BY id was a quarter of what
 * is left (callgrind: 6.2k instructions a row, 4.6k without).
 */
#define DIR_NAMES                                                              \
	"SELECT id, uuid, name, filename, entry_suffix, la_status, "           \
	"la_deleted,"                                                          \
	" la_purged" DIR_WHERE

/* The columns of DIR_NAMES only (bare), else of DIR_SEL. */
static void dir_row(struct db_stmt *st, int bare, struct sfs_file *f)
{
	if (bare) {
		f->suffixed = (int)sfsi_db_col_int(st, 4);
		/* whether the /.listening/ mirror shows it */
		f->la.status = (enum sfs_jstate)sfsi_db_col_int(st, 5);
		f->la.deleted = (int)sfsi_db_col_int(st, 6);
		f->la.purged = (int)sfsi_db_col_int(st, 7);
		return;
	}
	f->size = sfsi_db_col_null(st, 4) ? -1 : sfsi_db_col_int(st, 4);
	f->la.status = (enum sfs_jstate)sfsi_db_col_int(st, 5);
	f->la.size = sfsi_db_col_null(st, 6) ? -1 : sfsi_db_col_int(st, 6);
	f->la.deleted = (int)sfsi_db_col_int(st, 7);
	f->la.purged = (int)sfsi_db_col_int(st, 8);
	f->mtime_ns = sfsi_db_col_int(st, 9);
	f->ctime_ns = sfsi_db_col_int(st, 10);
	f->suffixed = (int)sfsi_db_col_int(st, 11);
	f->atime_ns = sfsi_db_col_null(st, 12) ? f->mtime_ns
					       : sfsi_db_col_int(st, 12);
}

static enum sfs_status dir_rows(struct db_stmt *st, const struct sfs_actor *a,
				const char *path, int bare,
				int (*fn)(void *arg, const struct sfs_file *f),
				void *arg, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;
	struct sfs_file f;
	int rc, stop = 0;

	/* what every row shares, once; each row sets its own columns */
	sfs_file_init(&f);
	f.owner = a->user;
	sfs_strlcpy(f.owner_id, a->user_id, sizeof(f.owner_id));
	f.tenant = a->tenant;
	sfs_strlcpy(f.tenant_id, a->tenant_id, sizeof(f.tenant_id));
	f.path = (char *)path;
	f.access = SFS_ACCESS_OWNER;
	f.perm = SFS_PERM_OWNER;
	while ((rc = sfsi_db_step(st, e)) == 1) {
		f.ino = sfsi_db_col_int(st, 0);
		sfs_strlcpy(f.id, sfsi_db_col_text(st, 1), sizeof(f.id));
		f.name = (char *)sfsi_db_col_text(st, 2);
		f.filename = (char *)sfsi_db_col_text(st, 3);
		dir_row(st, bare, &f);
		if (!f.name)
			ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
				       "a file without name");
		else
			stop = fn(arg, &f);
		if (ret || stop)
			break;
	}
	f.name = f.filename = f.path = NULL;
	sfs_file_release(&f);
	if (rc < 0 && !ret)
		ret = status_of(e);
	sfsi_db_reset(st);
	return ret;
}

static enum sfs_status dir_files(struct sfs_store *s, const struct sfs_actor *a,
				 const char *path, int bare,
				 int (*fn)(void *arg, const struct sfs_file *f),
				 void *arg, struct sfs_err *e)
{
	/* a remote store has the whole rows at hand: bare or not */
	if (s->ops)
		return s->ops->dir_files(s, path, NULL, 0, NULL, 1, fn, arg, e);
	struct db_stmt *st;
	struct db *d = NULL;
	enum sfs_status ret;

	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = sfs_vpath_check(path, "path", e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d, bare ? DIR_NAMES : DIR_COLS " ORDER BY id", e);
	if (st) {
		sfsi_db_bind_int(st, 1, a->user);
		sfsi_db_bind_text(st, 2, path);
		ret = dir_rows(st, a, path, bare, fn, arg, e);
	} else {
		ret = status_of(e);
	}
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_query_dir_files(struct sfs_store *s,
				    const struct sfs_actor *a, const char *path,
				    int (*fn)(void *arg,
					      const struct sfs_file *f),
				    void *arg, struct sfs_err *e)
{
	return dir_files(s, a, path, 0, fn, arg, e);
}

enum sfs_status
sfs_query_dir_entries(struct sfs_store *s, const struct sfs_actor *a,
		      const char *path,
		      int (*fn)(void *arg, const struct sfs_file *f), void *arg,
		      struct sfs_err *e)
{
	return dir_files(s, a, path, 1, fn, arg, e);
}

enum sfs_status
sfs_query_dir_names(struct sfs_store *s, const struct sfs_actor *a,
		    const char *path, const char *const *names, size_t n,
		    const char *id_prefix,
		    int (*fn)(void *arg, const struct sfs_file *f), void *arg,
		    struct sfs_err *e)
{
	if (s->ops)
		return s->ops->dir_files(s, path, names, n, id_prefix, 0, fn,
					 arg, e);
	struct names_ctx c = { names, n, id_prefix, fn, arg };
	char upper[SFS_ID_SIZE];
	struct db_stmt *st;
	struct db *d = NULL;
	enum sfs_status ret;
	size_t i;

	if (n > 4)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"at most four names at once");
	ret = sfsi_need_scope(a, SFS_SCOPE_READ, e);
	if (!ret)
		ret = sfs_vpath_check(path, "path", e);
	if (!ret)
		ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	/*
	 * Two searches of one index each: the names by (owner, is_deleted,
	 * dir, name NOCASE), the id's range by the ids' (the + keeps the
	 * directory's index out of the second)
	 */
	st = sfsi_db_prep(d,
			  DIR_COLS
			  " AND name COLLATE NOCASE IN (?3, ?4, ?5, ?6)"
			  " UNION SELECT " DIR_SEL
			  " FROM file WHERE uuid >= ?7 AND uuid < ?8"
			  " AND +owner_id = ?1 AND +is_deleted = 0"
			  " AND +dir = ?2 ORDER BY 1",
			  e);
	if (st) {
		sfsi_db_bind_int(st, 1, a->user);
		sfsi_db_bind_text(st, 2, path);
		/* a name that is not UTF-8 is no file's (and PostgreSQL
		 * refuses it as text) */
		for (i = 0; i < 4; i++)
			if (i < n && names[i] &&
			    sfs_utf8_valid(names[i], strlen(names[i])))
				sfsi_db_bind_text(st, (int)i + 3, names[i]);
			else
				sfsi_db_bind_null(st, (int)i + 3);
		/* ids are lower case hex: "0123" .. "0124" */
		if (id_prefix && *id_prefix &&
		    strlen(id_prefix) < sizeof(upper)) {
			sfs_strlcpy(upper, id_prefix, sizeof(upper));
			upper[strlen(upper) - 1]++;
			sfsi_db_bind_text(st, 7, id_prefix);
			sfsi_db_bind_text(st, 8, upper);
		} else {
			sfsi_db_bind_null(st, 7);
			sfsi_db_bind_null(st, 8);
		}
		ret = dir_rows(st, a, path, 0, name_filter, &c, e);
	} else {
		ret = status_of(e);
	}
	sfsi_db_put(d);
	return ret;
}

int sfs_file_listed(const struct sfs_file *f, enum sfs_listing listing,
		    const char *dir)
{
	int own = f->perm == SFS_PERM_OWNER;

	switch (listing) {
	case SFS_LIST_DIR:
		return own && !f->deleted && f->path && dir &&
		       !strcmp(f->path, dir);
	case SFS_LIST_LISTENING:
		return sfs_file_listed(f, SFS_LIST_DIR, dir) &&
		       sfs_file_content_state(f, SFS_CONTENT_LISTENING) ==
			       SFS_CS_READY;
	case SFS_LIST_TRASH:
		return own && f->deleted && !f->purged;
	case SFS_LIST_SHARED:
		return !own && !f->deleted && f->perm >= SFS_PERM_VIEW;
	}
	return 0;
}
