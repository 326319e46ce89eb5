/*
 * The consistency check of a store: blob files without rows, blob rows
 * without files, file rows referencing no blob row, reference counts
 * against the files and listening audio using them, tenant usage and
 * what the tags' rows derive (fsck_tags.c); the blob rows and what the
 * backend holds are checked in fsck_blobs.c. It runs in constant memory
 * (batches of rows, a streamed directory walk); every repair is made in
 * a write transaction that re-checks its finding.
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
#include "fsck_run_i.h"
#include "speechfs/fsck.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "store_i.h"
#include "util_i.h"

void sfsi_fsck_say(struct fsck *c, const char *fmt, ...)
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

/* Is there a blob row (tenant, sha)? 1 yes, 0 no, -1 error. */
int sfsi_fsck_row_exists(struct fsck *c, int64_t tenant, const char *sha,
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
int sfsi_fsck_count_refs(struct fsck *c, int64_t tenant, const char *sha,
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
int sfsi_fsck_file_present(struct fsck *c, int64_t tenant, const char *sha,
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
enum sfs_status sfsi_fsck_remove_unreferenced(struct fsck *c, int64_t tenant,
					      const char *sha, int *removed)
{
	enum sfs_status ret;

	ret = sfsi_blob_remove_unreferenced(c->d, tenant, sha, removed, c->e);
	if (ret)
		sfsi_fsck_say(c, "cannot remove blob %lld/%s: %s",
			      (long long)tenant, sha, c->e->message);
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
	rc = sfsi_fsck_row_exists(c, tenant, sha, NULL);
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

	rc = sfsi_fsck_file_present(c, tenant, sha, &size);
	if (rc < 0)
		return sfsi_fsck_fail(c);
	if (rc) {
		if (sfsi_fsck_count_refs(c, tenant, sha, &refs) < 0)
			return sfsi_fsck_fail(c);
		q = sfsi_db_prep(c->d,
				 "INSERT INTO blob(tenant_id, sha256, size,"
				 " refs, created_at)"
				 " VALUES (?1, ?2, ?3, ?4, ?5)",
				 c->e);
		if (!q)
			return sfsi_fsck_fail(c);
		sfsi_db_bind_int(q, 1, tenant);
		sfsi_db_bind_text(q, 2, sha);
		sfsi_db_bind_int(q, 3, size);
		sfsi_db_bind_int(q, 4, refs);
		sfsi_db_bind_int(q, 5, now);
		if (sfsi_db_run(q, c->e))
			return sfsi_fsck_fail(c);
		q = sfsi_db_prep(c->d,
				 "UPDATE tenant SET used_bytes ="
				 " used_bytes + ?2 WHERE id = ?1",
				 c->e);
		if (!q)
			return sfsi_fsck_fail(c);
		sfsi_db_bind_int(q, 1, tenant);
		sfsi_db_bind_int(q, 2, size);
		if (sfsi_db_run(q, c->e))
			return sfsi_fsck_fail(c);
		sfsi_fsck_say(c,
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
		return sfsi_fsck_fail(c);
	sfsi_db_bind_int(q, 1, ino);
	sfsi_db_bind_int(q, 2, now);
	sfsi_db_bind_int(q, 3, ns);
	if (sfsi_db_run(q, c->e))
		return sfsi_fsck_fail(c);
	sfsi_fsck_say(c, "repaired: file row %lld marked %s", (long long)ino,
		      la ? "listening audio purged" : "content discarded");
	return SFS_OK;
}

static enum sfs_status confirm_dangling(struct fsck *c, int64_t ino, int la,
					int64_t tenant, const char *sha)
{
	enum sfs_status ret;
	int rc;

	/* of its own: fix_dangling asks the backend under the lock */
	ret = sfsi_db_begin_alone(c->d, c->e);
	if (ret)
		return ret;
	rc = still_dangling(c, ino, la, tenant, sha);
	if (rc <= 0) {
		sfsi_db_rollback(c->d);
		return rc < 0 ? sfsi_fsck_fail(c) : SFS_OK;
	}
	c->r->bad_refcounts++;
	sfsi_fsck_say(
		c, "file row %lld references %s blob %lld/%s, which has no row",
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
			return sfsi_fsck_fail(c);
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
			return sfsi_fsck_fail(c);
		for (i = 0; i < n && !ret; i++) {
			after = batch[i].ino;
			rc = sfsi_fsck_row_exists(c, batch[i].tenant,
						  batch[i].sha, NULL);
			if (rc < 0)
				return sfsi_fsck_fail(c);
			if (rc == 0)
				ret = confirm_dangling(c, batch[i].ino, la,
						       batch[i].tenant,
						       batch[i].sha);
		}
	} while (!ret && n == BATCH);
	return ret;
}

static void say_line(void *arg, const char *line)
{
	sfsi_fsck_say(arg, "%s", line);
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
		return sfsi_fsck_fail(c);
	}
	sfsi_db_bind_int(q, 1, tenant);
	ret = sfsi_db_run(q, c->e);
	if (!ret)
		ret = sfsi_db_commit(c->d, c->e);
	else
		sfsi_db_rollback(c->d);
	if (!ret) {
		c->r->repaired++;
		sfsi_fsck_say(c, "repaired: usage of tenant %lld recounted",
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
			return sfsi_fsck_fail(c);
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
			return sfsi_fsck_fail(c);
		if (rc == 0)
			return SFS_OK;
		if (used_bytes == bytes && used_files == files)
			continue;
		sfsi_fsck_say(c,
			      "tenant %lld records %lld bytes in %lld files;"
			      " found %lld bytes in %lld files",
			      (long long)tenant, (long long)used_bytes,
			      (long long)used_files, (long long)bytes,
			      (long long)files);
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
	ret = sfsi_fsck_probe_backend(&c);
	/* dangling references first: their blob files may still be there */
	if (!ret)
		ret = check_dangling(&c, 0);
	if (!ret)
		ret = check_dangling(&c, 1);
	if (!ret && s->blob_be->walk_tenant && s->blob_be->tenants)
		ret = sfsi_fsck_merge_backend(&c);
	else if (!ret)
		ret = sfsi_fsck_check_rows(&c);
	if (!ret && !(s->blob_be->walk_tenant && s->blob_be->tenants))
		ret = sfsi_fsck_walk_blobs(&c);
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
		ret = sfsi_fsck_tag_names(c.d, repair, 20, say_line, &c,
					  &r->bad_tag_names, &r->repaired, c.e);
	if (!ret)
		ret = sfsi_fsck_names(c.d, repair, say_line, &c,
				      &r->bad_name_index, &r->repaired, c.e);
	sfsi_db_put(c.d);
out:
	if (ret && e && !e->status)
		*e = le;
	return ret;
}
