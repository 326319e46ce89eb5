/*
 * The consistency check of a store: blob files without rows, blob rows
 * without files, file rows referencing no blob row, reference counts
 * against the files and listening audio using them, tenant usage and
 * what the tags' rows derive (fsck_tags.c). It runs in constant memory (batches
 * of rows, a streamed directory walk); every repair is made in a write
 * transaction that re-checks its finding.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blob_i.h"
#include "db_i.h"
#include "fsck_i.h"
#include "stage_i.h"
#include "speechfs/fsck.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "store_i.h"
#include "util_i.h"

#define BATCH 256

struct fsck {
	struct sfs_store *s;
	struct db *d;
	int repair;
	struct sfs_fsck_report *r;
	void (*report)(void *arg, const char *line);
	void *arg;
	struct sfs_err *e;
};

struct blob_row {
	int64_t tenant;
	char sha[65];
	int64_t size;
	int64_t refs;
	int inl; /* its bytes are in the row (merge_backend's rows only) */
};

static void say(struct fsck *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct fsck *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sfs_info("fsck", "%s", line);
	if (c->report)
		c->report(c->arg, line);
}

static enum sfs_status fail(struct fsck *c)
{
	return c->e->status ? c->e->status : SFS_IO;
}

/* Is there a blob row (tenant, sha)? 1 yes, 0 no, -1 error. */
static int row_exists(struct fsck *c, int64_t tenant, const char *sha,
		      int64_t *size)
{
	struct db_stmt *q;
	int rc;

	q = sfsi_db_prep(c->d,
			 "SELECT size FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2",
			 c->e);
	if (!q)
		return -1;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, sha);
	rc = sfsi_db_step(q, c->e);
	if (rc == 1 && size)
		*size = sfsi_db_col_int(q, 0);
	sfsi_db_reset(q);
	return rc;
}

/* How many file rows reference the blob (content and listening). */
static int count_refs(struct fsck *c, int64_t tenant, const char *sha,
		      int64_t *n)
{
	struct db_stmt *q;
	int rc;

	q = sfsi_db_prep(c->d,
			 "SELECT (SELECT count(*) FROM file"
			 " WHERE tenant_id = ?1 AND sha256 = ?2"
			 " AND blob_ref = 1) + (SELECT count(*) FROM file"
			 " WHERE tenant_id = ?1 AND la_sha256 = ?2"
			 " AND la_blob_ref = 1)",
			 c->e);
	if (!q)
		return -1;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, sha);
	rc = sfsi_db_step(q, c->e);
	if (rc == 1)
		*n = sfsi_db_col_int(q, 0);
	sfsi_db_reset(q);
	return rc == 1 ? 0 : -1;
}

/*
 * Are the blob's bytes there: its row's data (a small blob kept inline),
 * else in the backend? 1 yes (*size), 0 no, -1 the backend could not say
 * (unreachable): never taken for "missing".
 */
static int file_present(struct fsck *c, int64_t tenant, const char *sha,
			int64_t *size)
{
	struct db_stmt *q;
	int present = 0, rc;
	int64_t sz = -1;

	q = sfsi_db_prep(c->d,
			 "SELECT length(data) FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2 AND data IS NOT NULL",
			 c->e);
	if (!q)
		return -1;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, sha);
	rc = sfsi_db_step(q, c->e);
	if (rc == 1 && size)
		*size = sfsi_db_col_int(q, 0);
	sfsi_db_reset(q);
	if (rc)
		return rc;
	if (c->s->blob_be->stat(c->s, tenant, sha, &present, &sz, c->e))
		return -1;
	if (present && sz < 0) {
		sfs_errf(c->e, SFS_IO, SFS_R_NONE, "cannot tell the size of %s",
			 sha);
		return -1;
	}
	if (size)
		*size = sz;
	return present;
}

/* Remove the blob's bytes when no row names them (under the write lock). */
static enum sfs_status remove_unreferenced(struct fsck *c, int64_t tenant,
					   const char *sha, int *removed)
{
	enum sfs_status ret;

	ret = sfsi_blob_remove_unreferenced(c->d, tenant, sha, removed, c->e);
	if (ret)
		say(c, "cannot remove blob %lld/%s: %s", (long long)tenant, sha,
		    c->e->message);
	return ret;
}

/* ---- file rows whose blob row is missing ------------------------------ */

/*
 * Under the write lock, re-read the file's reference. 1: it still points
 * at (tenant, sha) and no blob row exists; 0: no longer; -1: error.
 */
static int still_dangling(struct fsck *c, int64_t ino, int la, int64_t tenant,
			  const char *sha)
{
	struct db_stmt *q;
	int rc, same = 0;

	if (la)
		q = sfsi_db_prep(c->d,
				 "SELECT tenant_id, la_sha256 FROM file"
				 " WHERE id = ?1 AND la_blob_ref = 1",
				 c->e);
	else
		q = sfsi_db_prep(c->d,
				 "SELECT tenant_id, sha256 FROM file"
				 " WHERE id = ?1 AND blob_ref = 1",
				 c->e);
	if (!q)
		return -1;
	sfsi_db_bind_int(q, 1, ino);
	rc = sfsi_db_step(q, c->e);
	if (rc == 1)
		same = sfsi_db_col_int(q, 0) == tenant &&
		       sfsi_db_col_text(q, 1) &&
		       !strcmp(sfsi_db_col_text(q, 1), sha);
	sfsi_db_reset(q);
	if (rc < 0)
		return -1;
	if (!same)
		return 0;
	rc = row_exists(c, tenant, sha, NULL);
	return rc < 0 ? -1 : !rc;
}

/*
 * A file row points at (tenant, sha) with no blob row. If the blob file is
 * there, the row is made again; otherwise the content is marked discarded.
 * Runs in the write transaction that confirmed the finding.
 */
static enum sfs_status fix_dangling(struct fsck *c, int64_t ino, int la,
				    int64_t tenant, const char *sha)
{
	struct db_stmt *q;
	int64_t size = 0, refs = 0, ns = sfs_now_ns(), now = ns / 1000000;
	int rc;

	rc = file_present(c, tenant, sha, &size);
	if (rc < 0)
		return fail(c);
	if (rc) {
		if (count_refs(c, tenant, sha, &refs) < 0)
			return fail(c);
		q = sfsi_db_prep(c->d,
				 "INSERT INTO blob(tenant_id, sha256, size,"
				 " refs, created_at)"
				 " VALUES (?1, ?2, ?3, ?4, ?5)",
				 c->e);
		if (!q)
			return fail(c);
		sfsi_db_bind_int(q, 1, tenant);
		sfsi_db_bind_text(q, 2, sha);
		sfsi_db_bind_int(q, 3, size);
		sfsi_db_bind_int(q, 4, refs);
		sfsi_db_bind_int(q, 5, now);
		if (sfsi_db_run(q, c->e))
			return fail(c);
		q = sfsi_db_prep(c->d,
				 "UPDATE tenant SET used_bytes ="
				 " used_bytes + ?2 WHERE id = ?1",
				 c->e);
		if (!q)
			return fail(c);
		sfsi_db_bind_int(q, 1, tenant);
		sfsi_db_bind_int(q, 2, size);
		if (sfsi_db_run(q, c->e))
			return fail(c);
		say(c,
		    "repaired: made the row of blob %lld/%s again"
		    " (%lld references)",
		    (long long)tenant, sha, (long long)refs);
		return SFS_OK;
	}
	if (la)
		q = sfsi_db_prep(c->d,
				 "UPDATE file SET la_purged = 1,"
				 " la_purged_at = ?2, la_purge_at = NULL,"
				 " la_blob_ref = 0, ctime_ns = ?3"
				 " WHERE id = ?1",
				 c->e);
	else
		q = sfsi_db_prep(c->d,
				 "UPDATE file SET is_discarded = 1,"
				 " discarded_at = ?2, blob_ref = 0,"
				 " ctime_ns = ?3 WHERE id = ?1",
				 c->e);
	if (!q)
		return fail(c);
	sfsi_db_bind_int(q, 1, ino);
	sfsi_db_bind_int(q, 2, now);
	sfsi_db_bind_int(q, 3, ns);
	if (sfsi_db_run(q, c->e))
		return fail(c);
	say(c, "repaired: file row %lld marked %s", (long long)ino,
	    la ? "listening audio purged" : "content discarded");
	return SFS_OK;
}

static enum sfs_status confirm_dangling(struct fsck *c, int64_t ino, int la,
					int64_t tenant, const char *sha)
{
	enum sfs_status ret;
	int rc;

	ret = sfsi_db_begin(c->d, c->e);
	if (ret)
		return ret;
	rc = still_dangling(c, ino, la, tenant, sha);
	if (rc <= 0) {
		sfsi_db_rollback(c->d);
		return rc < 0 ? fail(c) : SFS_OK;
	}
	c->r->bad_refcounts++;
	say(c, "file row %lld references %s blob %lld/%s, which has no row",
	    (long long)ino, la ? "listening" : "content", (long long)tenant,
	    sha);
	if (c->repair) {
		ret = fix_dangling(c, ino, la, tenant, sha);
		if (!ret)
			ret = sfsi_db_commit(c->d, c->e);
		if (!ret)
			c->r->repaired++;
	}
	sfsi_db_rollback(c->d);
	return ret;
}

static enum sfs_status check_dangling(struct fsck *c, int la)
{
	struct {
		int64_t ino, tenant;
		char sha[65];
	} batch[BATCH];
	struct db_stmt *q;
	enum sfs_status ret = SFS_OK;
	int64_t after = 0;
	int n, i, rc;

	do {
		if (la)
			q = sfsi_db_prep(c->d,
					 "SELECT id, tenant_id, la_sha256"
					 " FROM file WHERE id > ?1"
					 " AND la_blob_ref = 1"
					 " ORDER BY id LIMIT 256",
					 c->e);
		else
			q = sfsi_db_prep(c->d,
					 "SELECT id, tenant_id, sha256"
					 " FROM file WHERE id > ?1"
					 " AND blob_ref = 1"
					 " ORDER BY id LIMIT 256",
					 c->e);
		if (!q)
			return fail(c);
		sfsi_db_bind_int(q, 1, after);
		for (n = 0; n < BATCH && (rc = sfsi_db_step(q, c->e)) == 1;
		     n++) {
			const char *t = sfsi_db_col_text(q, 2);

			batch[n].ino = sfsi_db_col_int(q, 0);
			batch[n].tenant = sfsi_db_col_int(q, 1);
			sfs_strlcpy(batch[n].sha, t ? t : "",
				    sizeof(batch[n].sha));
		}
		sfsi_db_reset(q);
		if (n < BATCH && rc < 0)
			return fail(c);
		for (i = 0; i < n && !ret; i++) {
			after = batch[i].ino;
			rc = row_exists(c, batch[i].tenant, batch[i].sha, NULL);
			if (rc < 0)
				return fail(c);
			if (rc == 0)
				ret = confirm_dangling(c, batch[i].ino, la,
						       batch[i].tenant,
						       batch[i].sha);
		}
	} while (!ret && n == BATCH);
	return ret;
}

/* ---- blob rows -------------------------------------------------------- */

/* The blob's file is gone: its users lose the content, visibly. */
static enum sfs_status fix_missing(struct fsck *c, const struct blob_row *b)
{
	struct db_stmt *q;
	int64_t ns = sfs_now_ns(), now = ns / 1000000;

	q = sfsi_db_prep(c->d,
			 "UPDATE file SET is_discarded = 1,"
			 " discarded_at = ?3, blob_ref = 0, ctime_ns = ?4"
			 " WHERE tenant_id = ?1 AND sha256 = ?2"
			 " AND blob_ref = 1",
			 c->e);
	if (!q)
		return fail(c);
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_text(q, 2, b->sha);
	sfsi_db_bind_int(q, 3, now);
	sfsi_db_bind_int(q, 4, ns);
	if (sfsi_db_run(q, c->e))
		return fail(c);
	q = sfsi_db_prep(c->d,
			 "UPDATE file SET la_purged = 1, la_purged_at = ?3,"
			 " la_purge_at = NULL, la_blob_ref = 0,"
			 " ctime_ns = ?4 WHERE tenant_id = ?1"
			 " AND la_sha256 = ?2 AND la_blob_ref = 1",
			 c->e);
	if (!q)
		return fail(c);
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_text(q, 2, b->sha);
	sfsi_db_bind_int(q, 3, now);
	sfsi_db_bind_int(q, 4, ns);
	if (sfsi_db_run(q, c->e))
		return fail(c);
	say(c,
	    "repaired: users of blob %lld/%s marked content discarded,"
	    " row removed",
	    (long long)b->tenant, b->sha);
	return SFS_OK;
}

/* Drop a blob row and its bytes from the tenant's usage. */
static enum sfs_status drop_row(struct fsck *c, const struct blob_row *b)
{
	struct db_stmt *q;

	q = sfsi_db_prep(c->d,
			 "DELETE FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2",
			 c->e);
	if (!q)
		return fail(c);
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_text(q, 2, b->sha);
	if (sfsi_db_run(q, c->e))
		return fail(c);
	q = sfsi_db_prep(c->d,
			 "UPDATE tenant SET used_bytes = used_bytes - ?2"
			 " WHERE id = ?1",
			 c->e);
	if (!q)
		return fail(c);
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_int(q, 2, b->size);
	return sfsi_db_run(q, c->e) ? fail(c) : SFS_OK;
}

static enum sfs_status set_refs(struct fsck *c, const struct blob_row *b,
				int64_t refs)
{
	struct db_stmt *q;

	if (refs == 0)
		return drop_row(c, b);
	q = sfsi_db_prep(c->d,
			 "UPDATE blob SET refs = ?3 WHERE tenant_id = ?1"
			 " AND sha256 = ?2",
			 c->e);
	if (!q)
		return fail(c);
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_text(q, 2, b->sha);
	sfsi_db_bind_int(q, 3, refs);
	return sfsi_db_run(q, c->e) ? fail(c) : SFS_OK;
}

/*
 * Something looked wrong with a blob row: look again under the write
 * lock, where no commit or blob removal of any process can interleave,
 * and report (and repair) only what is really there.
 */
static enum sfs_status confirm_row(struct fsck *c, struct blob_row *b)
{
	struct db_stmt *q;
	enum sfs_status ret;
	int64_t refs = 0, size = 0;
	int rc, changed = 0, removed = 0;

	ret = sfsi_db_begin(c->d, c->e);
	if (ret)
		return ret;
	q = sfsi_db_prep(c->d,
			 "SELECT size, refs FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2",
			 c->e);
	if (!q)
		goto fail;
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_text(q, 2, b->sha);
	rc = sfsi_db_step(q, c->e);
	if (rc == 1) {
		b->size = sfsi_db_col_int(q, 0);
		b->refs = sfsi_db_col_int(q, 1);
	}
	sfsi_db_reset(q);
	if (rc < 0)
		goto fail;
	if (rc == 0)
		goto out; /* removed meanwhile */
	rc = file_present(c, b->tenant, b->sha, &size);
	if (rc < 0)
		goto fail;
	if (!rc) {
		c->r->missing_files++;
		say(c, "blob %lld/%s has a row but no file",
		    (long long)b->tenant, b->sha);
		if (c->repair) {
			ret = fix_missing(c, b);
			if (!ret)
				ret = drop_row(c, b);
			changed = 2; /* fix_missing said so */
		}
		goto out;
	}
	if (size != b->size)
		say(c, "blob %lld/%s is %lld bytes, its row says %lld",
		    (long long)b->tenant, b->sha, (long long)size,
		    (long long)b->size);
	if (count_refs(c, b->tenant, b->sha, &refs) < 0)
		goto fail;
	if (refs != b->refs) {
		c->r->bad_refcounts++;
		say(c, "blob %lld/%s counts %lld references, %lld found",
		    (long long)b->tenant, b->sha, (long long)b->refs,
		    (long long)refs);
		if (c->repair) {
			ret = set_refs(c, b, refs);
			changed = 1;
		}
	}
out:
	if (!ret && changed)
		ret = sfsi_db_commit(c->d, c->e);
	sfsi_db_rollback(c->d);
	if (ret || !changed)
		return ret;
	c->r->repaired++;
	if (changed == 1 && refs == 0)
		ret = remove_unreferenced(c, b->tenant, b->sha, &removed);
	if (changed == 1)
		say(c, "repaired: blob %lld/%s now has %lld references%s",
		    (long long)b->tenant, b->sha, (long long)refs,
		    removed ? " (row and file removed)" : "");
	return ret;
fail:
	sfsi_db_rollback(c->d);
	return fail(c);
}

static enum sfs_status check_row(struct fsck *c, struct blob_row *b)
{
	int64_t refs = 0, size = 0;

	c->r->blobs_checked++;
	if (file_present(c, b->tenant, b->sha, &size) == 1 && size == b->size) {
		if (count_refs(c, b->tenant, b->sha, &refs) < 0)
			return fail(c);
		if (refs == b->refs)
			return SFS_OK;
	}
	return confirm_row(c, b);
}

static enum sfs_status check_rows(struct fsck *c)
{
	struct blob_row batch[BATCH], last = { 0, "", 0, 0, 0 };
	struct db_stmt *q;
	enum sfs_status ret = SFS_OK;
	int n, i, rc;

	do {
		q = sfsi_db_prep(c->d,
				 "SELECT tenant_id, sha256, size, refs"
				 " FROM blob WHERE (tenant_id, sha256) >"
				 " (?1, ?2) ORDER BY tenant_id, sha256"
				 " LIMIT 256",
				 c->e);
		if (!q)
			return fail(c);
		sfsi_db_bind_int(q, 1, last.tenant);
		sfsi_db_bind_text(q, 2, last.sha);
		for (n = 0; n < BATCH && (rc = sfsi_db_step(q, c->e)) == 1;
		     n++) {
			batch[n].tenant = sfsi_db_col_int(q, 0);
			sfs_strlcpy(batch[n].sha, sfsi_db_col_text(q, 1),
				    sizeof(batch[n].sha));
			batch[n].size = sfsi_db_col_int(q, 2);
			batch[n].refs = sfsi_db_col_int(q, 3);
		}
		sfsi_db_reset(q);
		if (n < BATCH && rc < 0)
			return fail(c);
		for (i = 0; i < n && !ret; i++) {
			last = batch[i];
			ret = check_row(c, &batch[i]);
		}
	} while (!ret && n == BATCH);
	return ret;
}

/* ---- what the backend holds ------------------------------------------ */

static enum sfs_status check_file(struct fsck *c, int64_t tenant,
				  const char *sha)
{
	enum sfs_status ret;
	int rc, removed = 0;

	rc = row_exists(c, tenant, sha, NULL);
	if (rc < 0)
		return fail(c);
	if (rc == 1)
		return SFS_OK;
	/* confirm under the write lock: a commit may be storing it now */
	ret = sfsi_db_begin(c->d, c->e);
	if (ret)
		return ret;
	rc = row_exists(c, tenant, sha, NULL);
	/* sent before its commit by a live process: not an orphan yet */
	if (rc == 0 && sfsi_staging_in_flight(c->s, tenant, sha))
		rc = 1;
	/* removed meanwhile (the walk's view is older than the lock) */
	if (rc == 0)
		rc = file_present(c, tenant, sha, NULL) == 0 ? 1 : rc;
	sfsi_db_rollback(c->d);
	if (rc < 0)
		return fail(c);
	if (rc == 1)
		return SFS_OK;
	c->r->orphan_files++;
	say(c, "orphan blob %lld/%s has no row", (long long)tenant, sha);
	if (!c->repair)
		return SFS_OK;
	ret = remove_unreferenced(c, tenant, sha, &removed);
	if (!ret && removed) {
		c->r->repaired++;
		say(c, "repaired: removed orphan blob %lld/%s",
		    (long long)tenant, sha);
	}
	return ret;
}

static int each_stored(void *arg, int64_t tenant, const char *sha, int64_t size,
		       const char *odd)
{
	struct fsck *c = arg;

	(void)size;
	if (odd) {
		say(c, "unexpected entry %s (left alone)", odd);
		return SFS_OK;
	}
	return (int)check_file(c, tenant, sha);
}

static enum sfs_status walk_blobs(struct fsck *c)
{
	return c->s->blob_be->walk(c->s, each_stored, c, c->e);
}

static int first_only(void *arg, int64_t tenant, const char *sha, int64_t size,
		      const char *odd)
{
	(void)arg;
	(void)tenant;
	(void)sha;
	(void)size;
	(void)odd;
	return SFS_CONFLICT; /* seen one: the backend answers */
}

/*
 * Before judging rows by what the backend holds: can it be listed at all?
 * (A bucket that is missing or unreachable must not make every blob look
 * missing.)
 */
static enum sfs_status probe_backend(struct fsck *c)
{
	enum sfs_status ret = c->s->blob_be->walk(c->s, first_only, c, c->e);

	if (ret == SFS_CONFLICT) {
		sfs_err_init(c->e);
		ret = SFS_OK;
	}
	return ret;
}

/* ---- a large backend merged with the rows, tenant by tenant --------- */

/*
 * A backend that lists a tenant's blobs in sha order is read a page at a
 * time beside that tenant's rows, BATCH at a time, in the same order: an
 * object without a row is checked as walk_blobs would (under the write
 * lock, a blob in flight left alone), a row without an object as
 * check_rows would (confirmed by stat under the lock); neither side is
 * ever held whole, and a row that is there costs no request of its own.
 */
struct merge {
	struct fsck *c;
	int64_t tenant;
	struct blob_row rows[BATCH];
	int n, i, end; /* rows in the batch, the next one, no more after */
	int64_t *seen; /* the tenants merged */
	size_t nseen, aseen;
};

static enum sfs_status next_rows(struct merge *m)
{
	struct fsck *c = m->c;
	struct db_stmt *q;
	char after[65] = "";
	int rc = 0;

	if (m->n)
		sfs_strlcpy(after, m->rows[m->n - 1].sha, sizeof(after));
	q = sfsi_db_prep(c->d,
			 "SELECT sha256, size, refs, data IS NOT NULL"
			 " FROM blob WHERE tenant_id = ?1 AND sha256 > ?2"
			 " ORDER BY sha256 LIMIT 256",
			 c->e);
	if (!q)
		return fail(c);
	sfsi_db_bind_int(q, 1, m->tenant);
	sfsi_db_bind_text(q, 2, after);
	for (m->n = 0, m->i = 0;
	     m->n < BATCH && (rc = sfsi_db_step(q, c->e)) == 1; m->n++) {
		struct blob_row *b = &m->rows[m->n];

		b->tenant = m->tenant;
		sfs_strlcpy(b->sha, sfsi_db_col_text(q, 0), sizeof(b->sha));
		b->size = sfsi_db_col_int(q, 1);
		b->refs = sfsi_db_col_int(q, 2);
		b->inl = (int)sfsi_db_col_int(q, 3);
	}
	sfsi_db_reset(q);
	if (rc < 0)
		return fail(c);
	m->end = m->n < BATCH;
	return SFS_OK;
}

/* The next row of the tenant (NULL: none left, or *ret says why). */
static struct blob_row *peek_row(struct merge *m, enum sfs_status *ret)
{
	*ret = SFS_OK;
	if (m->i == m->n && !m->end)
		*ret = next_rows(m);
	return !*ret && m->i < m->n ? &m->rows[m->i] : NULL;
}

/* A row, its object listed (present, size) or not. */
static enum sfs_status check_listed(struct fsck *c, struct blob_row *b,
				    int present, int64_t size)
{
	int64_t refs = 0;

	if (b->inl)
		return check_row(c, b);
	c->r->blobs_checked++;
	if (present && size == b->size) {
		if (count_refs(c, b->tenant, b->sha, &refs) < 0)
			return fail(c);
		if (refs == b->refs)
			return SFS_OK;
	}
	return confirm_row(c, b);
}

static int each_listed(void *arg, int64_t tenant, const char *sha, int64_t size,
		       const char *odd)
{
	struct merge *m = arg;
	struct blob_row *b;
	enum sfs_status ret;

	if (odd || tenant != m->tenant) {
		say(m->c, "unexpected entry %s (left alone)",
		    odd ? odd : "of another tenant");
		return SFS_OK;
	}
	while ((b = peek_row(m, &ret)) && strcmp(b->sha, sha) < 0) {
		m->i++;
		ret = check_listed(m->c, b, 0, -1);
		if (ret)
			return (int)ret;
	}
	if (ret)
		return (int)ret;
	if (b && !strcmp(b->sha, sha)) {
		m->i++;
		return (int)check_listed(m->c, b, 1, size);
	}
	return (int)check_file(m->c, tenant, sha);
}

static enum sfs_status merge_tenant(struct merge *m, int64_t tenant)
{
	struct blob_row *b;
	enum sfs_status ret;
	int64_t *n;

	if (m->nseen == m->aseen) {
		n = realloc(m->seen, (m->aseen * 2 + 16) * sizeof(*n));
		if (!n)
			return sfs_errf(m->c->e, SFS_NOMEM, SFS_R_NONE,
					"out of memory");
		m->seen = n;
		m->aseen = m->aseen * 2 + 16;
	}
	m->seen[m->nseen++] = tenant;
	m->tenant = tenant;
	m->n = m->i = m->end = 0;
	ret = m->c->s->blob_be->walk_tenant(m->c->s, tenant, each_listed, m,
					    m->c->e);
	/* rows past the last object */
	while (!ret && (b = peek_row(m, &ret))) {
		m->i++;
		ret = check_listed(m->c, b, 0, -1);
	}
	return ret;
}

static int each_tenant(void *arg, int64_t tenant, const char *odd)
{
	struct merge *m = arg;

	if (odd) {
		say(m->c, "unexpected entry %s (left alone)", odd);
		return SFS_OK;
	}
	return (int)merge_tenant(m, tenant);
}

static int was_seen(const struct merge *m, int64_t tenant)
{
	size_t i;

	for (i = 0; i < m->nseen; i++)
		if (m->seen[i] == tenant)
			return 1;
	return 0;
}

static enum sfs_status merge_backend(struct fsck *c)
{
	struct merge *m = calloc(1, sizeof(*m));
	struct db_stmt *q;
	enum sfs_status ret;
	int64_t tenant = 0;
	int rc;

	if (!m)
		return sfs_errf(c->e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	m->c = c;
	ret = c->s->blob_be->tenants(c->s, each_tenant, m, c->e);
	/* tenants with rows and no object at all */
	while (!ret) {
		q = sfsi_db_prep(c->d,
				 "SELECT tenant_id FROM blob"
				 " WHERE tenant_id > ?1"
				 " ORDER BY tenant_id LIMIT 1",
				 c->e);
		if (!q) {
			ret = fail(c);
			break;
		}
		sfsi_db_bind_int(q, 1, tenant);
		rc = sfsi_db_step(q, c->e);
		if (rc == 1)
			tenant = sfsi_db_col_int(q, 0);
		sfsi_db_reset(q);
		if (rc < 0)
			ret = fail(c);
		if (rc != 1)
			break;
		if (!was_seen(m, tenant))
			ret = merge_tenant(m, tenant);
	}
	free(m->seen);
	free(m);
	return ret;
}

static void say_line(void *arg, const char *line)
{
	say(arg, "%s", line);
}

static enum sfs_status sweep_backend(struct fsck *c)
{
	int64_t found = 0, fixed = 0;
	enum sfs_status ret;

	if (!c->s->blob_be->sweep)
		return SFS_OK;
	ret = c->s->blob_be->sweep(c->s, c->repair, &found, &fixed, say_line, c,
				   c->e);
	c->r->orphan_files += found;
	c->r->repaired += fixed;
	return ret;
}

/* ---- tenant usage ----------------------------------------------------- */

static enum sfs_status fix_usage(struct fsck *c, int64_t tenant)
{
	struct db_stmt *q;
	enum sfs_status ret;

	ret = sfsi_db_begin(c->d, c->e);
	if (ret)
		return ret;
	q = sfsi_db_prep(c->d,
			 "UPDATE tenant SET used_bytes = (SELECT"
			 " coalesce(sum(size), 0) FROM blob"
			 " WHERE tenant_id = ?1), used_files = (SELECT"
			 " count(*) FROM file WHERE tenant_id = ?1"
			 " AND is_purged = 0) WHERE id = ?1",
			 c->e);
	if (!q) {
		sfsi_db_rollback(c->d);
		return fail(c);
	}
	sfsi_db_bind_int(q, 1, tenant);
	ret = sfsi_db_run(q, c->e);
	if (!ret)
		ret = sfsi_db_commit(c->d, c->e);
	else
		sfsi_db_rollback(c->d);
	if (!ret) {
		c->r->repaired++;
		say(c, "repaired: usage of tenant %lld recounted",
		    (long long)tenant);
	}
	return ret;
}

static enum sfs_status check_usage(struct fsck *c)
{
	struct db_stmt *q;
	enum sfs_status ret = SFS_OK;
	int64_t tenant = 0, used_bytes = 0, used_files = 0, bytes = 0;
	int64_t files = 0;
	int rc;

	for (;;) {
		q = sfsi_db_prep(c->d,
				 "SELECT t.id, t.used_bytes, t.used_files,"
				 " (SELECT coalesce(sum(size), 0) FROM blob b"
				 " WHERE b.tenant_id = t.id),"
				 " (SELECT count(*) FROM user u"
				 " JOIN file f ON f.owner_id = u.id"
				 " WHERE u.tenant_id = t.id"
				 " AND f.is_purged = 0)"
				 " FROM tenant t WHERE t.id > ?1"
				 " ORDER BY t.id LIMIT 1",
				 c->e);
		if (!q)
			return fail(c);
		sfsi_db_bind_int(q, 1, tenant);
		rc = sfsi_db_step(q, c->e);
		if (rc == 1) {
			tenant = sfsi_db_col_int(q, 0);
			used_bytes = sfsi_db_col_int(q, 1);
			used_files = sfsi_db_col_int(q, 2);
			bytes = sfsi_db_col_int(q, 3);
			files = sfsi_db_col_int(q, 4);
		}
		sfsi_db_reset(q);
		if (rc < 0)
			return fail(c);
		if (rc == 0)
			return SFS_OK;
		if (used_bytes == bytes && used_files == files)
			continue;
		say(c,
		    "tenant %lld records %lld bytes in %lld files;"
		    " found %lld bytes in %lld files",
		    (long long)tenant, (long long)used_bytes,
		    (long long)used_files, (long long)bytes, (long long)files);
		if (c->repair) {
			ret = fix_usage(c, tenant);
			if (ret)
				return ret;
		}
	}
}

enum sfs_status sfs_fsck(struct sfs_store *s, int repair,
			 struct sfs_fsck_report *r,
			 void (*report)(void *arg, const char *line), void *arg,
			 struct sfs_err *e)
{
	struct sfs_fsck_report dummy;
	struct sfs_err le;
	struct fsck c;
	enum sfs_status ret;

	if (!r)
		r = &dummy;
	memset(r, 0, sizeof(*r));
	c.s = s;
	c.d = NULL;
	c.repair = repair;
	c.r = r;
	c.report = report;
	c.arg = arg;
	/* our own error record, so every failure keeps its status */
	sfs_err_init(&le);
	c.e = &le;
	ret = sfsi_db_get(s, &c.d, c.e);
	if (ret)
		goto out;
	ret = probe_backend(&c);
	/* dangling references first: their blob files may still be there */
	if (!ret)
		ret = check_dangling(&c, 0);
	if (!ret)
		ret = check_dangling(&c, 1);
	if (!ret && s->blob_be->walk_tenant && s->blob_be->tenants)
		ret = merge_backend(&c);
	else if (!ret)
		ret = check_rows(&c);
	if (!ret && !(s->blob_be->walk_tenant && s->blob_be->tenants))
		ret = walk_blobs(&c);
	if (!ret)
		ret = sweep_backend(&c);
	if (!ret)
		ret = check_usage(&c);
	if (!ret)
		ret = sfsi_fsck_tag_rows(c.d, repair, say_line, &c,
					 &r->bad_tag_rows, &r->repaired, c.e);
	if (!ret)
		ret = sfsi_fsck_tag_counts(c.d, repair, 20, say_line, &c,
					   &r->bad_counters, &r->repaired, c.e);
	if (!ret)
		ret = sfsi_fsck_names(c.d, repair, say_line, &c,
				      &r->bad_name_index, &r->repaired, c.e);
	sfsi_db_put(c.d);
out:
	if (ret && e && !e->status)
		*e = le;
	return ret;
}
