/*
 * The blob store: immutable blobs under blobs/<tenant>/<aa>/<sha256>,
 * deduplicated within a tenant by reference-counted rows, made from
 * finished stages (stage.c). A blob becomes durable in the order
 * fsync(stage) -> link into blobs/ -> fsync(dir) -> database commit, and
 * all links and unlinks of blob files happen under the write lock, so two
 * processes on one store never lose each other's blobs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blob_i.h"
#include "db_i.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"

enum sfs_status sfsi_blob_stage_prepare(struct sfs_store *s, int64_t tenant,
					struct sfs_stage *st, struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *q;
	enum sfs_status ret;
	int rc = 0;

	ret = sfsi_stage_hash(st, e);
	/* small bytes go into the database's row: no file to sync */
	if (ret || st->finished || sfsi_blob_inline_size(s, st->size))
		return ret;
	/* a failed look only costs the sync it might have saved */
	if (!sfsi_db_get(s, &d, NULL)) {
		q = sfsi_db_prep(d,
				 "SELECT 1 FROM blob WHERE tenant_id = ?1"
				 " AND sha256 = ?2",
				 NULL);
		if (q) {
			sfsi_db_bind_int(q, 1, tenant);
			sfsi_db_bind_text(q, 2, st->sha);
			rc = sfsi_db_step(q, NULL);
			sfsi_db_reset(q);
		}
		sfsi_db_put(d);
	}
	return rc == 1 ? SFS_OK : sfs_stage_finish(st, e);
}

/*
 * The stage was linked into blobs/ by a transaction that did not commit
 * (rolled back or failed): remove the blob file unless a row names it,
 * under the write lock so that no commit links it in between.
 */
void sfsi_blob_unlink_uncommitted(struct sfs_stage *st)
{
	char path[4096];
	struct db *d = NULL;
	struct db_stmt *q;
	int rc = -1;

	if (sfsi_db_get(st->s, &d, NULL))
		return; /* left for fsck */
	if (sfsi_db_begin(d, NULL))
		goto out;
	q = sfsi_db_prep(d,
			 "SELECT 1 FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2",
			 NULL);
	if (q) {
		sfsi_db_bind_int(q, 1, st->linked_tenant);
		sfsi_db_bind_text(q, 2, st->sha);
		rc = sfsi_db_step(q, NULL);
		sfsi_db_reset(q);
	}
	if (rc == 0) {
		sfsi_blob_path(st->s, st->linked_tenant, st->sha, path,
			       sizeof(path));
		if (unlink(path) == 0)
			sfs_info("blob",
				 "removed blob '%s' of a commit that "
				 "did not happen",
				 st->sha);
	}
	sfsi_db_rollback(d);
out:
	sfsi_db_put(d);
}

/* ---- blobs ----------------------------------------------------------- */

void sfsi_blob_path(struct sfs_store *s, int64_t tenant, const char *sha256,
		    char *out, size_t size)
{
	snprintf(out, size, "%s/%lld/%.2s/%s", s->blob_dir, (long long)tenant,
		 sha256, sha256);
}

static enum sfs_status shard_dir(struct sfs_store *s, int64_t tenant,
				 const char *sha256, char *out, size_t size,
				 struct sfs_err *e)
{
	char tdir[4096];

	snprintf(tdir, sizeof(tdir), "%s/%lld", s->blob_dir, (long long)tenant);
	snprintf(out, size, "%s/%.2s", tdir, sha256);
	if (access(out, F_OK) == 0)
		return SFS_OK;
	if (mkdir(tdir, 0755) == 0)
		sfsi_fsync_dir(s->blob_dir);
	else if (errno != EEXIST)
		return sfsi_errno_status(e, errno, "making a blob directory");
	if (mkdir(out, 0755) == 0)
		sfsi_fsync_dir(tdir);
	else if (errno != EEXIST)
		return sfsi_errno_status(e, errno, "making a blob directory");
	return SFS_OK;
}

enum sfs_status sfsi_blob_ref_stage(struct db *d, int64_t tenant,
				    struct sfs_stage *st, int64_t *added_bytes,
				    struct sfs_err *e)
{
	struct sfs_store *s = sfsi_db_store(d);
	char dir[4096], path[4096], named[4096];
	struct db_stmt *q;
	enum sfs_status ret;
	int64_t max_bytes = 0, used = 0;
	int rc;

	*added_bytes = 0;
	/*
	 * Only bytes that become a new blob file need to reach the disk
	 * here: a deduplicated stage is dropped, and the blob it names was
	 * synced before its first row was written.
	 */
	ret = sfsi_stage_hash(st, e);
	if (ret)
		return ret;
	q = sfsi_db_prep(d,
			 "UPDATE blob SET refs = refs + 1"
			 " WHERE tenant_id = ?1 AND sha256 = ?2",
			 e);
	if (!q)
		return SFS_IO;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, st->sha);
	ret = sfsi_db_run(q, e);
	if (ret)
		return ret;
	if (sfsi_db_changes(d) == 1) {
		/* deduplicated: the stage is dropped later */
		sfsi_blob_path(s, tenant, st->sha, path, sizeof(path));
		if (access(path, F_OK) == 0 || errno != ENOENT)
			return SFS_OK;
		if (sfsi_blob_row_inline(d, tenant, st->sha))
			return SFS_OK; /* kept in its row */
		/* the row's file was lost: these bytes bring it back */
		ret = sfs_stage_finish(st, e);
		if (!ret)
			ret = shard_dir(s, tenant, st->sha, dir, sizeof(dir),
					e);
		if (ret)
			return ret;
		if (link(st->path, path) < 0 && errno != EEXIST)
			return sfsi_errno_status(e, errno, "linking a blob");
		if (sfsi_fsync_dir(dir) < 0)
			return sfsi_errno_status(e, errno,
						 "syncing a blob directory");
		sfs_warn("blob", "restored lost blob '%s'", st->sha);
		return SFS_OK;
	}

	q = sfsi_db_prep(
		d, "SELECT max_bytes, used_bytes FROM tenant WHERE id = ?1", e);
	if (!q)
		return SFS_IO;
	sfsi_db_bind_int(q, 1, tenant);
	rc = sfsi_db_step(q, e);
	if (rc == 1) {
		max_bytes = sfsi_db_col_int(q, 0);
		used = sfsi_db_col_int(q, 1);
	}
	sfsi_db_reset(q);
	if (rc != 1)
		return rc < 0 ? SFS_IO
			      : sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
					 "no tenant");
	if (max_bytes > 0 && used + st->size > max_bytes)
		return sfs_errf(e, SFS_QUOTA, SFS_R_QUOTA_EXCEEDED,
				"the tenant's storage quota of %lld bytes "
				"would be exceeded (%lld used, %lld more)",
				(long long)max_bytes, (long long)used,
				(long long)st->size);
	if (sfsi_blob_inline_size(s, st->size))
		return sfsi_blob_put_inline(d, tenant, st, added_bytes, e);

	ret = sfs_stage_finish(st, e);
	if (!ret)
		ret = shard_dir(s, tenant, st->sha, dir, sizeof(dir), e);
	if (ret)
		return ret;
	sfsi_blob_path(s, tenant, st->sha, path, sizeof(path));
	/* name the stage after its target so a crash can be undone */
	snprintf(named, sizeof(named), "%s/%lld-%s.stage", s->staging_dir,
		 (long long)tenant, st->sha);
	if (rename(st->path, named) < 0)
		return sfsi_errno_status(e, errno, "naming the stage");
	sfs_strlcpy(st->path, named, sizeof(st->path));
	if (link(st->path, path) < 0) {
		if (errno != EEXIST)
			return sfsi_errno_status(e, errno, "linking a blob");
		/* no row, so the file is an orphan of a crashed commit */
		if (unlink(path) < 0 || link(st->path, path) < 0)
			return sfsi_errno_status(e, errno, "linking a blob");
	}
	if (sfsi_fsync_dir(dir) < 0) {
		ret = sfsi_errno_status(e, errno, "syncing a blob directory");
		unlink(path);
		return ret;
	}
	st->linked = 1;
	st->linked_tenant = tenant;
	sfsi_crash_point("blob-linked");
	q = sfsi_db_prep(d,
			 "INSERT INTO blob(tenant_id, sha256, size, refs,"
			 " created_at) VALUES (?1, ?2, ?3, 1, ?4)",
			 e);
	if (!q)
		goto undo;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, st->sha);
	sfsi_db_bind_int(q, 3, st->size);
	sfsi_db_bind_int(q, 4, sfs_now_ms());
	if (sfsi_db_run(q, e))
		goto undo;
	q = sfsi_db_prep(d,
			 "UPDATE tenant SET used_bytes = used_bytes + ?2"
			 " WHERE id = ?1",
			 e);
	if (!q)
		goto undo;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_int(q, 2, st->size);
	if (sfsi_db_run(q, e))
		goto undo;
	*added_bytes = st->size;
	return SFS_OK;
undo:
	unlink(path);
	st->linked = 0;
	return e && e->status ? e->status : SFS_IO;
}

enum sfs_status sfsi_blob_ref(struct db *d, int64_t tenant, const char *sha256,
			      struct sfs_err *e)
{
	struct db_stmt *q;
	enum sfs_status ret;

	q = sfsi_db_prep(d,
			 "UPDATE blob SET refs = refs + 1"
			 " WHERE tenant_id = ?1 AND sha256 = ?2",
			 e);
	if (!q)
		return SFS_IO;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, sha256);
	ret = sfsi_db_run(q, e);
	if (!ret && sfsi_db_changes(d) != 1)
		ret = sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE, "no such blob");
	return ret;
}

struct gc_arg {
	int64_t tenant;
	char sha[65];
};

/* After the commit that dropped a blob's row: remove its file, unless a
 * commit in between (any process) made the blob again. */
static void gc_blob(struct db *d, void *varg)
{
	struct gc_arg *a = varg;
	char path[4096];
	struct db_stmt *q;
	int rc;

	if (sfsi_db_begin(d, NULL))
		return; /* left for fsck */
	q = sfsi_db_prep(d,
			 "SELECT 1 FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2",
			 NULL);
	if (!q) {
		sfsi_db_rollback(d);
		return;
	}
	sfsi_db_bind_int(q, 1, a->tenant);
	sfsi_db_bind_text(q, 2, a->sha);
	rc = sfsi_db_step(q, NULL);
	sfsi_db_reset(q);
	if (rc == 0) {
		sfsi_blob_path(sfsi_db_store(d), a->tenant, a->sha, path,
			       sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT)
			sfs_warn("blob", "cannot remove '%s': %s", path,
				 strerror(errno));
	}
	sfsi_db_rollback(d);
}

enum sfs_status sfsi_blob_unref(struct db *d, int64_t tenant,
				const char *sha256, struct sfs_err *e)
{
	struct db_stmt *q;
	struct gc_arg *a;
	enum sfs_status ret;
	int64_t refs = 0, size = 0;
	int rc;

	q = sfsi_db_prep(d,
			 "SELECT refs, size FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2",
			 e);
	if (!q)
		return SFS_IO;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, sha256);
	rc = sfsi_db_step(q, e);
	if (rc == 1) {
		refs = sfsi_db_col_int(q, 0);
		size = sfsi_db_col_int(q, 1);
	}
	sfsi_db_reset(q);
	if (rc < 0)
		return SFS_IO;
	if (rc == 0) {
		sfs_warn("blob", "dropping a reference to missing blob '%s'",
			 sha256);
		return SFS_OK;
	}
	if (refs > 1) {
		q = sfsi_db_prep(d,
				 "UPDATE blob SET refs = refs - 1"
				 " WHERE tenant_id = ?1 AND sha256 = ?2",
				 e);
		if (!q)
			return SFS_IO;
		sfsi_db_bind_int(q, 1, tenant);
		sfsi_db_bind_text(q, 2, sha256);
		return sfsi_db_run(q, e);
	}
	q = sfsi_db_prep(
		d, "DELETE FROM blob WHERE tenant_id = ?1 AND sha256 = ?2", e);
	if (!q)
		return SFS_IO;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, sha256);
	ret = sfsi_db_run(q, e);
	if (ret)
		return ret;
	q = sfsi_db_prep(d,
			 "UPDATE tenant SET used_bytes = used_bytes - ?2"
			 " WHERE id = ?1",
			 e);
	if (!q)
		return SFS_IO;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_int(q, 2, size);
	ret = sfsi_db_run(q, e);
	if (ret)
		return ret;
	a = malloc(sizeof(*a));
	if (!a)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	a->tenant = tenant;
	sfs_strlcpy(a->sha, sha256, sizeof(a->sha));
	return sfsi_db_on_commit(d, gc_blob, a, e);
}

enum sfs_status sfs_blob_open(struct sfs_store *s, int64_t tenant,
			      const char *sha256, int *fd, int64_t *size,
			      struct sfs_err *e)
{
	char path[4096];
	struct stat sb;

	*fd = -1;
	if (!sfsi_is_sha256_hex(sha256))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "bad sha256");
	sfsi_blob_path(s, tenant, sha256, path, sizeof(path));
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0 && errno == ENOENT &&
	    !sfsi_blob_open_inline(s, tenant, sha256, fd, size, NULL))
		return SFS_OK; /* a small blob, kept in its row */
	if (*fd < 0) {
		sfs_error("blob", "cannot open blob '%s': %s", sha256,
			  strerror(errno));
		return sfs_errf(e, errno == ENOENT ? SFS_GONE : SFS_IO,
				SFS_R_NONE, "the content is not available");
	}
	if (size) {
		if (fstat(*fd, &sb) < 0) {
			close(*fd);
			*fd = -1;
			return sfsi_errno_status(e, errno, "stat of a blob");
		}
		*size = sb.st_size;
	}
	return SFS_OK;
}
