/*
 * The consistency check (fsck.c) of the blob rows and of what the
 * backend holds: each row against its bytes and its references, each
 * stored blob against its row, and a backend that lists a tenant in sha
 * order merged with that tenant's rows.
 */
#include <stdlib.h>
#include <string.h>
#include "blob_i.h"
#include "db_i.h"
#include "fsck_run_i.h"
#include "stage_i.h"
#include "speechfs/store.h"
#include "store_i.h"
#include "util_i.h"

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
		return sfsi_fsck_fail(c);
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_text(q, 2, b->sha);
	sfsi_db_bind_int(q, 3, now);
	sfsi_db_bind_int(q, 4, ns);
	if (sfsi_db_run(q, c->e))
		return sfsi_fsck_fail(c);
	q = sfsi_db_prep(c->d,
			 "UPDATE file SET la_purged = 1, la_purged_at = ?3,"
			 " la_purge_at = NULL, la_blob_ref = 0,"
			 " ctime_ns = ?4 WHERE tenant_id = ?1"
			 " AND la_sha256 = ?2 AND la_blob_ref = 1",
			 c->e);
	if (!q)
		return sfsi_fsck_fail(c);
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_text(q, 2, b->sha);
	sfsi_db_bind_int(q, 3, now);
	sfsi_db_bind_int(q, 4, ns);
	if (sfsi_db_run(q, c->e))
		return sfsi_fsck_fail(c);
	sfsi_fsck_say(
		c,
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
		return sfsi_fsck_fail(c);
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_text(q, 2, b->sha);
	if (sfsi_db_run(q, c->e))
		return sfsi_fsck_fail(c);
	q = sfsi_db_prep(c->d,
			 "UPDATE tenant SET used_bytes = used_bytes - ?2"
			 " WHERE id = ?1",
			 c->e);
	if (!q)
		return sfsi_fsck_fail(c);
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_int(q, 2, b->size);
	return sfsi_db_run(q, c->e) ? sfsi_fsck_fail(c) : SFS_OK;
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
		return sfsi_fsck_fail(c);
	sfsi_db_bind_int(q, 1, b->tenant);
	sfsi_db_bind_text(q, 2, b->sha);
	sfsi_db_bind_int(q, 3, refs);
	return sfsi_db_run(q, c->e) ? sfsi_fsck_fail(c) : SFS_OK;
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

	/* of its own: the backend's stat under the lock (sfsi_blob_begin) */
	ret = sfsi_db_begin_alone(c->d, c->e);
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
	rc = sfsi_fsck_file_present(c, b->tenant, b->sha, &size);
	if (rc < 0)
		goto fail;
	if (!rc) {
		c->r->missing_files++;
		sfsi_fsck_say(c, "blob %lld/%s has a row but no file",
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
		sfsi_fsck_say(c,
			      "blob %lld/%s is %lld bytes, its row says %lld",
			      (long long)b->tenant, b->sha, (long long)size,
			      (long long)b->size);
	if (sfsi_fsck_count_refs(c, b->tenant, b->sha, &refs) < 0)
		goto fail;
	if (refs != b->refs) {
		c->r->bad_refcounts++;
		sfsi_fsck_say(c,
			      "blob %lld/%s counts %lld references, %lld found",
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
		ret = sfsi_fsck_remove_unreferenced(c, b->tenant, b->sha,
						    &removed);
	if (changed == 1)
		sfsi_fsck_say(
			c, "repaired: blob %lld/%s now has %lld references%s",
			(long long)b->tenant, b->sha, (long long)refs,
			removed ? " (row and file removed)" : "");
	return ret;
fail:
	sfsi_db_rollback(c->d);
	return sfsi_fsck_fail(c);
}

static enum sfs_status check_row(struct fsck *c, struct blob_row *b)
{
	int64_t refs = 0, size = 0;

	c->r->blobs_checked++;
	if (sfsi_fsck_file_present(c, b->tenant, b->sha, &size) == 1 &&
	    size == b->size) {
		if (sfsi_fsck_count_refs(c, b->tenant, b->sha, &refs) < 0)
			return sfsi_fsck_fail(c);
		if (refs == b->refs)
			return SFS_OK;
	}
	return confirm_row(c, b);
}

enum sfs_status sfsi_fsck_check_rows(struct fsck *c)
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
			return sfsi_fsck_fail(c);
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
			return sfsi_fsck_fail(c);
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

	rc = sfsi_fsck_row_exists(c, tenant, sha, NULL);
	if (rc < 0)
		return sfsi_fsck_fail(c);
	if (rc == 1)
		return SFS_OK;
	/*
	 * confirm under the write lock: a commit may be storing it now (a
	 * turn of its own: the backend's stat under the lock)
	 */
	ret = sfsi_db_begin_alone(c->d, c->e);
	if (ret)
		return ret;
	rc = sfsi_fsck_row_exists(c, tenant, sha, NULL);
	/* sent before its commit by a live process: not an orphan yet */
	if (rc == 0 && sfsi_staging_in_flight(c->s, tenant, sha))
		rc = 1;
	/* removed meanwhile (the walk's view is older than the lock) */
	if (rc == 0)
		rc = sfsi_fsck_file_present(c, tenant, sha, NULL) == 0 ? 1 : rc;
	sfsi_db_rollback(c->d);
	if (rc < 0)
		return sfsi_fsck_fail(c);
	if (rc == 1)
		return SFS_OK;
	c->r->orphan_files++;
	sfsi_fsck_say(c, "orphan blob %lld/%s has no row", (long long)tenant,
		      sha);
	if (!c->repair)
		return SFS_OK;
	ret = sfsi_fsck_remove_unreferenced(c, tenant, sha, &removed);
	if (!ret && removed) {
		c->r->repaired++;
		sfsi_fsck_say(c, "repaired: removed orphan blob %lld/%s",
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
		sfsi_fsck_say(c, "unexpected entry %s (left alone)", odd);
		return SFS_OK;
	}
	return (int)check_file(c, tenant, sha);
}

enum sfs_status sfsi_fsck_walk_blobs(struct fsck *c)
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
enum sfs_status sfsi_fsck_probe_backend(struct fsck *c)
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
		return sfsi_fsck_fail(c);
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
		return sfsi_fsck_fail(c);
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
		if (sfsi_fsck_count_refs(c, b->tenant, b->sha, &refs) < 0)
			return sfsi_fsck_fail(c);
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
		sfsi_fsck_say(m->c, "unexpected entry %s (left alone)",
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
		sfsi_fsck_say(m->c, "unexpected entry %s (left alone)", odd);
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

enum sfs_status sfsi_fsck_merge_backend(struct fsck *c)
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
			ret = sfsi_fsck_fail(c);
			break;
		}
		sfsi_db_bind_int(q, 1, tenant);
		rc = sfsi_db_step(q, c->e);
		if (rc == 1)
			tenant = sfsi_db_col_int(q, 0);
		sfsi_db_reset(q);
		if (rc < 0)
			ret = sfsi_fsck_fail(c);
		if (rc != 1)
			break;
		if (!was_seen(m, tenant))
			ret = merge_tenant(m, tenant);
	}
	free(m->seen);
	free(m);
	return ret;
}
