/*
 * The blob store's rows: blobs deduplicated within a tenant by
 * reference-counted rows, made from finished stages (stage.c), their bytes
 * kept by the store's backend (blob_local.c, blob_s3.c). A blob's row is
 * inserted only after the backend says its bytes are durable and
 * verified, inside the write transaction; the bytes of a blob whose last
 * row went are removed under the write lock after a check that no commit
 * made it again, so two processes on one store never lose each other's
 * blobs, whichever backend keeps them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "blob_i.h"
#include "db_i.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"

/* Is there a row for (tenant, sha)? 1 yes, 0 no, -1 error. */
static int row_exists(struct db *d, int64_t tenant, const char *sha,
		      struct sfs_err *e)
{
	struct db_stmt *q;
	int rc;

	q = sfsi_db_prep(d,
			 "SELECT 1 FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2",
			 e);
	if (!q)
		return -1;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, sha);
	rc = sfsi_db_step(q, e);
	sfsi_db_reset(q);
	return rc;
}

/*
 * Name the stage after the blob it becomes, "<tenant>-<sha>-<n>.stage"
 * (n: stages of the same bytes may be on their way at once): a process
 * that dies before the commit leaves it for the next open, which removes
 * the bytes the backend may hold unless a row names them.
 */
static enum sfs_status name_stage(struct sfs_stage *st, int64_t tenant,
				  struct sfs_err *e)
{
	static unsigned long serial;
	char named[4096];
	int n;

	n = snprintf(named, sizeof(named), "%s/%lld-%s-", st->s->staging_dir,
		     (long long)tenant, st->sha);
	if (!strncmp(named, st->path, (size_t)n))
		return SFS_OK;
	snprintf(named + n, sizeof(named) - (size_t)n, "%lu.stage",
		 __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
	if (rename(st->path, named) < 0)
		return sfsi_errno_status(e, errno, "naming the stage");
	sfs_strlcpy(st->path, named, sizeof(st->path));
	return SFS_OK;
}

/* Is the stage's content kept in its row (inline_max as prepared)? */
static int stage_inline(const struct sfs_stage *st)
{
	if (!st->prepared)
		return sfsi_blob_inline_size(st->s, st->size);
	return st->size >= 0 && st->size <= st->inline_max;
}

/*
 * Does a row of (tenant, sha) keep its bytes outside the database (made
 * before blobs were kept in rows, under a lower blobs.inline_max, or by
 * blob_migrate)? A dedupe against it asks the backend (check_dedupe).
 * Looked at in d's write transaction (sfsi_blob_begin). A failed look
 * says yes: a turn of its own only costs the group.
 */
static int row_outside(struct db *d, int64_t tenant, const char *sha)
{
	struct db_stmt *q;
	int rc = -1;

	q = sfsi_db_prep(d,
			 "SELECT 1 FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2 AND data IS NULL",
			 NULL);
	if (q) {
		sfsi_db_bind_int(q, 1, tenant);
		sfsi_db_bind_text(q, 2, sha);
		rc = sfsi_db_step(q, NULL);
		sfsi_db_reset(q);
	}
	return rc != 0;
}

enum sfs_status sfsi_blob_stage_prepare(struct sfs_store *s, int64_t tenant,
					struct sfs_stage *st, struct sfs_err *e)
{
	struct db *d = NULL;
	enum sfs_status ret;
	int known = 0;

	ret = sfsi_stage_hash(st, e);
	if (ret)
		return ret;
	st->inline_max = s->cfg.blob_inline_max;
	st->prepared = 1;
	st->alone = 1;
	if (stage_inline(st)) {
		/*
		 * small bytes go into the database's row: nothing to
		 * prepare; the reference waits for the backend only when
		 * it dedupes against bytes outside a row, which the begin
		 * looks at in its transaction (PostgreSQL's commits are
		 * never grouped: nothing to decide there)
		 */
		st->alone = sfsi_db_store_is_pg(s) ? 0 : SFSI_STAGE_LOOK;
		st->prep_tenant = tenant;
		return SFS_OK;
	}
	/* a failed look only costs the work it might have saved */
	if (!sfsi_db_get(s, &d, NULL)) {
		known = row_exists(d, tenant, st->sha, NULL) == 1;
		sfsi_db_put(d);
	}
	if (!known) {
		ret = name_stage(st, tenant, e);
		if (ret)
			return ret;
	}
	return s->blob_be->prepare(s, tenant, st, known, e);
}

/*
 * While the store batches, d's view holds the open window's changes, and
 * a crash undoes them whole: a row the window deleted comes back. So the
 * bytes go only when no row names them in the last commit either (the
 * batch's connection holds the write lock, so none is committed in
 * between).
 */
static int committed_row(struct sfs_store *s, int64_t tenant, const char *sha,
			 struct sfs_err *e)
{
	struct db *p = NULL;
	int rc;

	if (sfsi_db_get_committed(s, &p, e))
		return -1;
	rc = row_exists(p, tenant, sha, e);
	sfsi_db_put(p);
	return rc;
}

enum sfs_status sfsi_blob_remove_unreferenced(struct db *d, int64_t tenant,
					      const char *sha, int *removed,
					      struct sfs_err *e)
{
	struct sfs_store *s = sfsi_db_store(d);
	enum sfs_status ret;
	int rc;

	if (removed)
		*removed = 0;
	/* not in a group: no row must mean no committed row */
	ret = sfsi_db_begin_alone(d, e);
	if (ret)
		return ret;
	rc = row_exists(d, tenant, sha, e);
	if (rc == 0 && sfsi_db_batching(d))
		rc = committed_row(s, tenant, sha, e);
	if (rc == 0) {
		ret = s->blob_be->remove(s, tenant, sha, e);
		if (!ret && removed)
			*removed = 1;
	} else if (rc < 0) {
		ret = e && e->status ? e->status : SFS_IO;
	}
	sfsi_db_rollback(d);
	return ret;
}

/*
 * The stage's bytes went to the backend for a commit that did not happen
 * (rolled back, failed, or never made): remove them unless a row names
 * them, under the write lock so that no commit stores them in between.
 */
void sfsi_blob_unlink_uncommitted(struct sfs_stage *st)
{
	struct sfs_err e;
	struct db *d = NULL;
	int removed = 0;

	sfs_err_init(&e);
	if (sfsi_db_get(st->s, &d, &e) ||
	    sfsi_blob_remove_unreferenced(d, st->linked_tenant, st->sha,
					  &removed, &e))
		sfs_warn("blob",
			 "cannot remove blob '%s' of a commit that did not "
			 "happen (left for fsck): %s",
			 st->sha, e.message);
	else if (removed)
		sfs_info("blob",
			 "removed blob '%s' of a commit that did not "
			 "happen",
			 st->sha);
	st->linked = 0;
	sfsi_db_put(d);
}

/* Dedupe: the row is there; are its bytes? Bring them back if not. */
static enum sfs_status check_dedupe(struct db *d, int64_t tenant,
				    struct sfs_stage *st, struct sfs_err *e)
{
	struct sfs_store *s = sfsi_db_store(d);
	enum sfs_status ret;
	int present = 0;
	int64_t size = 0;

	if (sfsi_blob_row_inline(d, tenant, st->sha))
		return SFS_OK; /* kept in its row */
	ret = s->blob_be->stat(s, tenant, st->sha, &present, &size, e);
	if (ret || (present && (size < 0 || size == st->size)))
		return ret;
	/* the row's bytes were lost: these bring them back */
	ret = name_stage(st, tenant, e);
	if (!ret)
		ret = s->blob_be->store(s, tenant, st, e);
	if (ret)
		return ret;
	sfs_warn("blob", "restored lost blob '%s'", st->sha);
	return SFS_OK;
}

static enum sfs_status check_quota(struct db *d, int64_t tenant, int64_t size,
				   struct sfs_err *e)
{
	struct db_stmt *q;
	int64_t max_bytes = 0, used = 0;
	int rc;

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
	if (max_bytes > 0 && used + size > max_bytes)
		return sfs_errf(e, SFS_QUOTA, SFS_R_QUOTA_EXCEEDED,
				"the tenant's storage quota of %lld bytes "
				"would be exceeded (%lld used, %lld more)",
				(long long)max_bytes, (long long)used,
				(long long)size);
	return SFS_OK;
}

static enum sfs_status insert_row(struct db *d, int64_t tenant,
				  struct sfs_stage *st, struct sfs_err *e)
{
	struct db_stmt *q;
	enum sfs_status ret;

	q = sfsi_db_prep(d,
			 "INSERT INTO blob(tenant_id, sha256, size, refs,"
			 " created_at) VALUES (?1, ?2, ?3, 1, ?4)",
			 e);
	if (!q)
		return SFS_IO;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, st->sha);
	sfsi_db_bind_int(q, 3, st->size);
	sfsi_db_bind_int(q, 4, sfs_now_ms());
	ret = sfsi_db_run(q, e);
	if (ret)
		return ret;
	q = sfsi_db_prep(d,
			 "UPDATE tenant SET used_bytes = used_bytes + ?2"
			 " WHERE id = ?1",
			 e);
	if (!q)
		return SFS_IO;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_int(q, 2, st->size);
	return sfsi_db_run(q, e);
}

static enum sfs_status begin_alone(struct db *d, int nosync, struct sfs_err *e)
{
	return nosync ? sfsi_db_begin_alone_nosync(d, e)
		      : sfsi_db_begin_alone(d, e);
}

enum sfs_status sfsi_blob_begin(struct db *d, const struct sfs_stage *st,
				int nosync, struct sfs_err *e)
{
	/*
	 * as sfsi_blob_stage_prepare found: the reference waits for the
	 * backend unless the bytes go into the row, or dedupe against
	 * bytes kept in one
	 */
	int alone = !st ? 0 : st->prepared ? st->alone : !stage_inline(st);
	enum sfs_status ret;

	if (alone == 1)
		return begin_alone(d, nosync, e);
	ret = nosync ? sfsi_db_begin_nosync(d, e) : sfsi_db_begin(d, e);
	/*
	 * Small bytes: whether they dedupe against a row keeping its bytes
	 * outside is looked at here, where it costs one indexed read of
	 * the pages the reference reads next. Looked at before the begin,
	 * on a connection of its own, it began a read transaction that
	 * found the database changed by the group's last commit and mapped
	 * it again: 0.2 ms of the daemon's CPU per 1 KiB upload, a fifth
	 * of it. In a group, such a dedupe leaves it (nothing done yet:
	 * the members before it commit without waiting for it) and takes a
	 * turn of its own.
	 */
	if (ret || alone != SFSI_STAGE_LOOK || !sfsi_db_in_group(d) ||
	    !row_outside(d, st->prep_tenant, st->sha))
		return ret;
	sfsi_db_rollback(d);
	return begin_alone(d, nosync, e);
}

enum sfs_status sfsi_blob_ref_stage(struct db *d, int64_t tenant,
				    struct sfs_stage *st, int64_t *added_bytes,
				    struct sfs_err *e)
{
	struct sfs_store *s = sfsi_db_store(d);
	struct db_stmt *q;
	enum sfs_status ret;

	*added_bytes = 0;
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
	if (sfsi_db_changes(d) == 1)
		return check_dedupe(d, tenant, st,
				    e); /* the stage is dropped */
	ret = check_quota(d, tenant, st->size, e);
	if (!ret && stage_inline(st))
		return sfsi_blob_put_inline(d, tenant, st, added_bytes, e);
	if (!ret)
		ret = name_stage(st, tenant, e);
	if (!ret)
		ret = s->blob_be->store(s, tenant, st, e);
	if (ret)
		return ret;
	st->linked = 1;
	st->linked_tenant = tenant;
	sfsi_crash_point("blob-linked");
	ret = insert_row(d, tenant, st, e);
	if (ret) {
		/* no row: the bytes go again (the stage is ours alone) */
		if (s->blob_be->remove(s, tenant, st->sha, NULL) == SFS_OK)
			st->linked = 0;
		return e && e->status ? e->status : ret;
	}
	*added_bytes = st->size;
	return SFS_OK;
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
	char mark[4096]; /* our named stage for it while the removal is due */
};

/*
 * Between the commit that dropped a blob's last row and the removal of its
 * bytes, the blob is on its way out in this process: a named stage says so
 * (fsck leaves it alone, sfsi_staging_in_flight) and, should the process
 * die first, the next open removes the bytes (recover_named).
 */
static void mark_leaving(struct sfs_store *s, struct gc_arg *a)
{
	static unsigned long serial;
	int fd;

	a->mark[0] = '\0';
	if (!s->staging_dir)
		return;
	snprintf(a->mark, sizeof(a->mark), "%s/%lld-%s-g%lu.stage",
		 s->staging_dir, (long long)a->tenant, a->sha,
		 __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
	fd = open(a->mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		a->mark[0] = '\0';
		return;
	}
	close(fd);
}

/*
 * After the commit that dropped a blob's row: remove its bytes, unless a
 * commit in between (any process) made the blob again.
 */
static void gc_blob(struct db *d, void *varg)
{
	struct gc_arg *a = varg;
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfsi_blob_remove_unreferenced(d, a->tenant, a->sha, NULL, &e))
		sfs_warn("blob",
			 "cannot remove blob %lld/%s (left for fsck): %s",
			 (long long)a->tenant, a->sha, e.message);
	if (a->mark[0])
		unlink(a->mark);
}

enum sfs_status sfsi_blob_unref(struct db *d, int64_t tenant,
				const char *sha256, struct sfs_err *e)
{
	struct db_stmt *q;
	struct gc_arg *a;
	enum sfs_status ret;
	int64_t refs = 0, size = 0;
	int rc, inl = 0;

	q = sfsi_db_prep(d,
			 "SELECT refs, size, data IS NOT NULL FROM blob"
			 " WHERE tenant_id = ?1 AND sha256 = ?2",
			 e);
	if (!q)
		return SFS_IO;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, sha256);
	rc = sfsi_db_step(q, e);
	if (rc == 1) {
		refs = sfsi_db_col_int(q, 0);
		size = sfsi_db_col_int(q, 1);
		inl = (int)sfsi_db_col_int(q, 2);
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
	if (ret || inl)
		return ret; /* an inline blob's bytes went with its row */
	a = malloc(sizeof(*a));
	if (!a)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	a->tenant = tenant;
	sfs_strlcpy(a->sha, sha256, sizeof(a->sha));
	mark_leaving(sfsi_db_store(d), a);
	return sfsi_db_on_commit(d, gc_blob, a, e);
}

/* ---- reading ---------------------------------------------------------- */

enum sfs_status sfs_blob_open(struct sfs_store *s, int64_t tenant,
			      const char *sha256, unsigned flags,
			      struct sfs_blob **out, struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *q;
	enum sfs_status ret;
	int64_t size = -1;
	int rc = 0, inl = 0, fd = -1;

	*out = NULL;
	if (!sfsi_is_sha256_hex(sha256))
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "bad sha256");
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	q = sfsi_db_prep(d,
			 "SELECT size, data IS NOT NULL FROM blob"
			 " WHERE tenant_id = ?1 AND sha256 = ?2",
			 e);
	if (q) {
		sfsi_db_bind_int(q, 1, tenant);
		sfsi_db_bind_text(q, 2, sha256);
		rc = sfsi_db_step(q, e);
		if (rc == 1) {
			size = sfsi_db_col_int(q, 0);
			inl = (int)sfsi_db_col_int(q, 1);
		}
		sfsi_db_reset(q);
	}
	sfsi_db_put(d);
	if (!q || rc < 0)
		return e && e->status ? e->status : SFS_IO;
	if (rc == 0) {
		sfs_error("blob", "no blob %lld/%s", (long long)tenant, sha256);
		return sfs_errf(e, SFS_GONE, SFS_R_NONE,
				"the content is not available");
	}
	if (!inl)
		return s->blob_be->open_blob(s, tenant, sha256, size, flags,
					     out, e);
	/* a small blob, kept in its row, whichever the backend */
	ret = sfsi_blob_open_inline(s, tenant, sha256, &fd, NULL, e);
	return ret ? ret : sfsi_blob_open_fd(fd, tenant, sha256, out, e);
}

static enum sfs_status empty_pread(struct sfs_blob *b, void *buf, size_t len,
				   int64_t off, size_t *got, struct sfs_err *e)
{
	(void)b;
	(void)buf;
	(void)len;
	(void)off;
	(void)e;
	*got = 0;
	return SFS_OK;
}

enum sfs_status sfsi_blob_no_url(struct sfs_blob *b, int expires_s,
				 const char *ctype, const char *disposition,
				 char **url, struct sfs_err *e)
{
	(void)b;
	(void)expires_s;
	(void)ctype;
	(void)disposition;
	*url = NULL;
	return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
			"the store serves these bytes itself");
}

static void free_close(struct sfs_blob *b)
{
	free(b);
}

static const struct sfsi_blob_ops empty_ops = {
	.pread = empty_pread,
	.url = sfsi_blob_no_url,
	.close = free_close,
};

enum sfs_status sfs_blob_open_empty(struct sfs_blob **out, struct sfs_err *e)
{
	struct sfs_blob *b = calloc(1, sizeof(*b));

	*out = b;
	if (!b)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	b->ops = &empty_ops;
	b->fd = -1;
	return SFS_OK;
}

int64_t sfs_blob_size(const struct sfs_blob *b)
{
	return b->size;
}

int sfs_blob_fd(const struct sfs_blob *b)
{
	return b ? b->fd : -1;
}

enum sfs_status sfs_blob_pread(struct sfs_blob *b, void *buf, size_t len,
			       int64_t off, size_t *got, struct sfs_err *e)
{
	*got = 0;
	if (off < 0)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "negative offset");
	if (off >= b->size || !len)
		return SFS_OK;
	if ((int64_t)len > b->size - off)
		len = (size_t)(b->size - off);
	return b->ops->pread(b, buf, len, off, got, e);
}

enum sfs_status sfs_blob_lend(struct sfs_blob *b, int64_t off, size_t len,
			      sfs_blob_use use, void *arg, struct sfs_err *e)
{
	if (off < 0)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "negative offset");
	if (!b->ops->lend)
		return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
				"the blob has no bytes in memory to lend");
	if (off >= b->size || !len) {
		use(arg, "", 0);
		return SFS_OK;
	}
	if ((int64_t)len > b->size - off)
		len = (size_t)(b->size - off);
	return b->ops->lend(b, off, len, use, arg, e);
}

int sfs_blob_ready(struct sfs_blob *b, int64_t off, size_t len)
{
	if (!b)
		return 0;
	if (off < 0 || off >= b->size || !len || !b->ops->ready)
		return 1; /* no bytes to fetch */
	if ((int64_t)len > b->size - off)
		len = (size_t)(b->size - off);
	return b->ops->ready(b, off, len);
}

enum sfs_status sfs_blob_url(struct sfs_blob *b, int expires_s,
			     const char *content_type, const char *disposition,
			     char **url, struct sfs_err *e)
{
	*url = NULL;
	return b->ops->url(b, expires_s, content_type, disposition, url, e);
}

void sfs_blob_close(struct sfs_blob *b)
{
	if (b)
		b->ops->close(b);
}

const char *sfs_blob_backend_name(const struct sfs_store *s)
{
	return s->blob_be ? s->blob_be->name : "local";
}

enum sfs_status sfsi_blob_local_copy(struct sfs_store *s, struct sfs_blob *b,
				     int *fd, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;
	int64_t off = 0;
	size_t got = 0;
	char *buf = NULL;

	*fd = open(s->staging_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd < 0)
		return sfsi_errno_status(e, errno, "making a temporary file");
	buf = malloc(1 << 20);
	if (!buf) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	while (off < b->size) {
		ret = sfs_blob_pread(b, buf, 1 << 20, off, &got, e);
		if (!ret && !got)
			ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
				       "the blob ended early");
		if (ret)
			goto out;
		if (write(*fd, buf, got) != (ssize_t)got) {
			ret = sfsi_errno_status(e, errno, "writing a copy");
			goto out;
		}
		off += (int64_t)got;
	}
	if (lseek(*fd, 0, SEEK_SET) < 0)
		ret = sfsi_errno_status(e, errno, "rewinding a copy");
out:
	free(buf);
	if (ret) {
		close(*fd);
		*fd = -1;
	}
	return ret;
}
