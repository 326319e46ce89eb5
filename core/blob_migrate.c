/*
 * Where a store's blobs live: the store records it (setting rows blob.*)
 * the first time it uses an object store, every process opening the store
 * follows the record, and a configuration that names another place is
 * refused rather than silently reading an empty bucket. Moving a store's
 * blobs from its directory into a bucket (speechfsd blob migrate) copies
 * and verifies each blob, resumably, and then switches the record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blob_s3_i.h"
#include "db_i.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"

struct record {
	int has;
	char backend[16], endpoint[256], bucket[64], prefix[256], region[64];
	int path_style;
};

static const struct {
	const char *key;
	size_t off, size;
} rec_keys[] = {
#define F(k, f)                                                                \
	{                                                                      \
		k, offsetof(struct record, f), sizeof(((struct record *)0)->f) \
	}
	F("blob.backend", backend),  F("blob.s3.endpoint", endpoint),
	F("blob.s3.bucket", bucket), F("blob.s3.prefix", prefix),
	F("blob.s3.region", region),
#undef F
};

static enum sfs_status record_read(struct db *d, struct record *r,
				   struct sfs_err *e)
{
	struct db_stmt *q;
	const char *k, *v;
	size_t i;
	int rc;

	memset(r, 0, sizeof(*r));
	r->path_style = 1;
	q = sfsi_db_prep(d,
			 "SELECT key, CAST(value AS TEXT) FROM setting"
			 " WHERE key LIKE 'blob.%'",
			 e);
	if (!q)
		return SFS_IO;
	while ((rc = sfsi_db_step(q, e)) == 1) {
		k = sfsi_db_col_text(q, 0);
		v = sfsi_db_col_text(q, 1);
		if (!k || !v)
			continue;
		if (!strcmp(k, "blob.s3.path_style"))
			r->path_style = strcmp(v, "0") != 0;
		for (i = 0; i < ARRAY_SIZE(rec_keys); i++)
			if (!strcmp(k, rec_keys[i].key))
				sfs_strlcpy((char *)r + rec_keys[i].off, v,
					    rec_keys[i].size);
	}
	sfsi_db_reset(q);
	r->has = r->backend[0] != '\0';
	return rc < 0 ? SFS_IO : SFS_OK;
}

/* In the caller's write transaction: record where blobs now live. */
static enum sfs_status record_write(struct db *d, const struct sfs_config *c,
				    struct sfs_err *e)
{
	const char *vals[] = { "s3", c->blob_s3_endpoint, c->blob_s3_bucket,
			       c->blob_s3_prefix, c->blob_s3_region };
	struct db_stmt *q;
	enum sfs_status ret = SFS_OK;
	size_t i;

	for (i = 0; i <= ARRAY_SIZE(rec_keys) && !ret; i++) {
		q = sfsi_db_prep(d,
				 "INSERT INTO setting(key, value)"
				 " VALUES (?1, ?2) ON CONFLICT(key)"
				 " DO UPDATE SET value = excluded.value",
				 e);
		if (!q)
			return SFS_IO;
		if (i < ARRAY_SIZE(rec_keys)) {
			sfsi_db_bind_text(q, 1, rec_keys[i].key);
			sfsi_db_bind_text(q, 2, vals[i]);
		} else {
			sfsi_db_bind_text(q, 1, "blob.s3.path_style");
			sfsi_db_bind_text(q, 2,
					  c->blob_s3_path_style ? "1" : "0");
		}
		ret = sfsi_db_run(q, e);
	}
	return ret;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] ? v : NULL;
}

/* Fill what the configuration leaves open from the record, then AWS_*. */
static void effective(struct sfs_config *c, const struct record *r)
{
	const char *v;

	if (!c->blob_s3_endpoint[0] && r->endpoint[0])
		sfs_strlcpy(c->blob_s3_endpoint, r->endpoint,
			    sizeof(c->blob_s3_endpoint));
	if (!c->blob_s3_endpoint[0] &&
	    ((v = env("AWS_ENDPOINT_URL_S3")) || (v = env("AWS_ENDPOINT_URL"))))
		sfs_strlcpy(c->blob_s3_endpoint, v,
			    sizeof(c->blob_s3_endpoint));
	if (!c->blob_s3_bucket[0])
		sfs_strlcpy(c->blob_s3_bucket, r->bucket,
			    sizeof(c->blob_s3_bucket));
	if (!c->blob_s3_prefix[0])
		sfs_strlcpy(c->blob_s3_prefix, r->prefix,
			    sizeof(c->blob_s3_prefix));
	if (!c->blob_s3_region[0] && r->region[0])
		sfs_strlcpy(c->blob_s3_region, r->region,
			    sizeof(c->blob_s3_region));
	if (!c->blob_s3_region[0] &&
	    ((v = env("AWS_REGION")) || (v = env("AWS_DEFAULT_REGION"))))
		sfs_strlcpy(c->blob_s3_region, v, sizeof(c->blob_s3_region));
	if (c->blob_s3_path_style < 0)
		c->blob_s3_path_style = r->has ? r->path_style : 1;
}

static enum sfs_status refuse(const struct record *r, const char *want,
			      struct sfs_err *e)
{
	if (!strcmp(r->backend, "s3"))
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"this store keeps its blobs in s3://%s/%s, "
				"but the configuration says %s",
				r->bucket, r->prefix, want);
	return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
			"this store keeps its blobs in its directory "
			"(blobs/), but the configuration says %s: move them "
			"with 'speechfsd blob migrate --to s3'",
			want);
}

/* Decide the backend (record vs configuration); record a first s3 use. */
static enum sfs_status choose(struct db *d, struct sfs_config *c,
			      struct sfs_err *e)
{
	struct record r;
	struct db_stmt *q;
	enum sfs_status ret;
	const char *want = c->blob_backend;
	char what[400];
	int rc, blobs = 0;

	ret = sfsi_db_begin(d, e);
	if (!ret)
		ret = record_read(d, &r, e);
	if (ret)
		goto out;
	if (!strcmp(want, "s3"))
		snprintf(what, sizeof(what), "s3 (s3://%s/%s)",
			 c->blob_s3_bucket, c->blob_s3_prefix);
	else
		snprintf(what, sizeof(what), "%s", want[0] ? want : "local");
	if (r.has) {
		if ((want[0] && strcmp(want, r.backend)) ||
		    (c->blob_s3_bucket[0] &&
		     strcmp(c->blob_s3_bucket, r.bucket)) ||
		    (c->blob_s3_prefix[0] &&
		     strcmp(c->blob_s3_prefix, r.prefix))) {
			ret = refuse(&r, what, e);
			goto out;
		}
		sfs_strlcpy(c->blob_backend, r.backend,
			    sizeof(c->blob_backend));
		effective(c, &r);
		goto out;
	}
	if (strcmp(want, "s3")) {
		sfs_strlcpy(c->blob_backend, "local", sizeof(c->blob_backend));
		goto out;
	}
	/*
	 * A store's first use of a bucket: only while it has no blobs
	 * outside their rows (small ones stay in the database either way).
	 */
	q = sfsi_db_prep(d, "SELECT 1 FROM blob WHERE data IS NULL LIMIT 1", e);
	if (!q) {
		ret = SFS_IO;
		goto out;
	}
	rc = sfsi_db_step(q, e);
	sfsi_db_reset(q);
	if (rc < 0) {
		ret = SFS_IO;
		goto out;
	}
	blobs = rc == 1;
	if (blobs) {
		sfs_strlcpy(r.backend, "local", sizeof(r.backend));
		ret = refuse(&r, what, e);
		goto out;
	}
	effective(c, &r);
	if (!c->blob_s3_bucket[0]) {
		ret = sfs_errf(e, SFS_INVALID, SFS_R_NONE,
			       "blob.backend = s3 needs blob.s3.bucket");
		goto out;
	}
	ret = record_write(d, c, e);
	if (!ret)
		ret = sfsi_db_commit(d, e);
	if (!ret)
		sfs_info("blob", "the store keeps its blobs in s3://%s/%s",
			 c->blob_s3_bucket, c->blob_s3_prefix);
out:
	if (sfsi_db_in_txn(d))
		sfsi_db_rollback(d);
	return ret;
}

enum sfs_status sfsi_blob_backend_open(struct sfs_store *s, struct sfs_err *e)
{
	struct db *d = NULL;
	enum sfs_status ret;

	ret = sfsi_db_get(s, &d, e);
	if (!ret)
		ret = choose(d, &s->cfg, e);
	sfsi_db_put(d);
	if (ret)
		return ret;
	s->blob_be = !strcmp(s->cfg.blob_backend, "s3") ? &sfsi_blob_s3
							: &sfsi_blob_local;
	ret = s->blob_be->open(s, e);
	if (ret)
		s->blob_be = NULL;
	return ret;
}

void sfsi_blob_backend_close(struct sfs_store *s)
{
	if (s->blob_be)
		s->blob_be->close(s);
	s->blob_be = NULL;
}

/* ---- moving a store's blobs into a bucket ---- */

struct migration {
	struct sfs_store *s;
	struct sfsi_s3 *c;
	struct sfs_blob_migrate_report *r;
	void (*progress)(void *arg, const struct sfs_blob_migrate_report *r);
	void *arg;
};

/*
 * One blob: kept if the object is there with its size (an object exists
 * only once whole, and its bytes were checked against their hashes as
 * they were sent), else sent and checked.
 */
static enum sfs_status migrate_one(struct migration *m, int64_t tenant,
				   const char *sha, int64_t size,
				   struct sfs_err *e)
{
	struct sfs_blob *b = NULL;
	struct sfs_err tmp;
	char key[128];
	enum sfs_status ret;
	int64_t got = -1;

	sfsi_s3_blob_key(tenant, sha, key, sizeof(key));
	sfs_err_init(&tmp);
	ret = sfsi_s3_head(m->c, key, &got, &tmp);
	if (!ret && got == size) {
		m->r->present++;
		return SFS_OK;
	}
	if (ret && ret != SFS_NOT_FOUND) {
		if (e)
			*e = tmp;
		return ret;
	}
	ret = sfs_blob_open(m->s, tenant, sha, 0, &b, e);
	if (ret)
		return ret;
	if (b->size != size)
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "blob %lld/%s has %lld bytes, its row says %lld",
			       (long long)tenant, sha, (long long)b->size,
			       (long long)size);
	if (!ret)
		ret = sfsi_s3_put_fd(m->c, key, b->fd, 0, size, sha, e);
	if (!ret)
		ret = sfsi_s3_head(m->c, key, &got, e);
	if (!ret && got != size)
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "object store: '%s' has %lld bytes after its "
			       "upload, not %lld",
			       key, (long long)got, (long long)size);
	sfs_blob_close(b);
	if (!ret) {
		m->r->copied++;
		m->r->bytes += size;
		sfsi_crash_point("blob-migrated");
	}
	return ret;
}

/* Every blob row, in (tenant, sha) order, a batch at a time. */
static enum sfs_status migrate_all(struct migration *m, struct sfs_err *e)
{
	struct {
		int64_t tenant, size;
		char sha[65];
	} batch[64];
	int64_t tenant = -1;
	char sha[65] = "";
	struct db *d = NULL;
	struct db_stmt *q;
	enum sfs_status ret;
	int n, i, rc;

	do {
		ret = sfsi_db_get(m->s, &d, e);
		if (ret)
			return ret;
		q = sfsi_db_prep(d,
				 "SELECT tenant_id, sha256, size FROM blob"
				 " WHERE (tenant_id, sha256) > (?1, ?2)"
				 " AND data IS NULL"
				 " ORDER BY tenant_id, sha256 LIMIT 64",
				 e);
		n = 0;
		if (q) {
			sfsi_db_bind_int(q, 1, tenant);
			sfsi_db_bind_text(q, 2, sha);
			while (n < 64 && (rc = sfsi_db_step(q, e)) == 1) {
				batch[n].tenant = sfsi_db_col_int(q, 0);
				sfs_strlcpy(batch[n].sha,
					    sfsi_db_col_text(q, 1),
					    sizeof(batch[n].sha));
				batch[n].size = sfsi_db_col_int(q, 2);
				n++;
			}
			sfsi_db_reset(q);
		}
		sfsi_db_put(d);
		if (!q)
			return SFS_IO;
		for (i = 0; i < n; i++) {
			ret = migrate_one(m, batch[i].tenant, batch[i].sha,
					  batch[i].size, e);
			if (ret)
				return ret;
			m->r->blobs++;
			if (m->progress)
				m->progress(m->arg, m->r);
		}
		if (n) {
			tenant = batch[n - 1].tenant;
			sfs_strlcpy(sha, batch[n - 1].sha, sizeof(sha));
		}
	} while (n == 64);
	return SFS_OK;
}

static enum sfs_status switch_store(struct migration *m,
				    const struct sfs_config *target,
				    struct sfs_err *e)
{
	struct db *d = NULL;
	enum sfs_status ret;
	int others;

	ret = sfsi_db_get(m->s, &d, e);
	if (!ret)
		ret = sfsi_db_begin(d, e);
	if (ret)
		goto out;
	others = sfsi_staging_others(m->s);
	if (others) {
		ret = sfs_errf(e, SFS_BUSY, SFS_R_NONE,
			       "every blob is copied and verified, but %d "
			       "other process%s (the daemon, a mount) %s the "
			       "store open: stop %s and run this again to "
			       "switch",
			       others, others == 1 ? "" : "es",
			       others == 1 ? "has" : "have",
			       others == 1 ? "it" : "them");
		goto out;
	}
	ret = record_write(d, target, e);
	if (!ret)
		ret = sfsi_db_commit(d, e);
out:
	if (d && sfsi_db_in_txn(d))
		sfsi_db_rollback(d);
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_blob_migrate(
	const char *dir, const struct sfs_config *cfg,
	struct sfs_blob_migrate_report *r,
	void (*progress)(void *arg, const struct sfs_blob_migrate_report *r),
	void *arg, struct sfs_err *e)
{
	struct sfs_blob_migrate_report dummy;
	struct sfs_config here = *cfg, target = *cfg;
	struct migration m;
	struct record none;
	enum sfs_status ret;

	if (!r)
		r = &dummy;
	memset(r, 0, sizeof(*r));
	memset(&m, 0, sizeof(m));
	memset(&none, 0, sizeof(none));
	m.r = r;
	m.progress = progress;
	m.arg = arg;
	/* the store as it is, whatever the configuration asks for */
	here.blob_backend[0] = '\0';
	here.blob_s3_bucket[0] = '\0';
	here.blob_s3_prefix[0] = '\0';
	effective(&target, &none);
	if (!target.blob_s3_bucket[0])
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"the target needs blob.s3.bucket");
	ret = sfs_store_open(dir, &here, &m.s, e);
	if (ret)
		return ret;
	if (!strcmp(m.s->cfg.blob_backend, "s3")) {
		if (strcmp(m.s->cfg.blob_s3_bucket, target.blob_s3_bucket) ||
		    strcmp(m.s->cfg.blob_s3_prefix, target.blob_s3_prefix))
			ret = sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				       "the store's blobs are in s3://%s/%s "
				       "already",
				       m.s->cfg.blob_s3_bucket,
				       m.s->cfg.blob_s3_prefix);
		else
			r->switched = 1; /* done before */
		goto out;
	}
	ret = sfsi_s3_backend_client(&target, &m.c, e);
	if (!ret)
		ret = migrate_all(&m, e);
	if (!ret)
		ret = switch_store(&m, &target, e);
	if (!ret) {
		r->switched = 1;
		sfs_info("blob",
			 "the store now keeps its blobs in s3://%s/%s (%lld "
			 "copied, %lld there already)",
			 target.blob_s3_bucket, target.blob_s3_prefix,
			 (long long)r->copied, (long long)r->present);
	}
out:
	sfsi_s3_free(m.c);
	sfs_store_close(m.s);
	return ret;
}
