/*
 * Opening and closing a store directory, the core's configuration keys,
 * the change feed that front ends poll, and the janitor's purge pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "auth_i.h"
#include "blob_i.h"
#include "db_i.h"
#include "file_i.h"
#include "media_i.h"
#include "speechfs/config.h"
#include "speechfs/log.h"
#include "stage_i.h"
#include "auth_i.h"
#include "job_i.h"
#include "store_i.h"
#include "util_i.h"
#include "remote_i.h"

void sfs_config_init(struct sfs_config *c)
{
	memset(c, 0, sizeof(*c));
	c->retention_seconds = 30 * 24 * 3600;
	c->job_lease_seconds = 30;
	c->workers = 0;
	c->janitor_interval_ms = 60000;
	c->upload_expire_s = 24 * 3600;
	c->sync_full = 1;
	c->blob_inline_max = 64 * 1024;
	c->busy_timeout_ms = 10000;
	c->la_bitrate_kbps = 48;
	c->la_sample_rate = 22050;
	c->la_channels = 1;
	c->la_vbr = 0;
	c->import_max_bytes = (int64_t)4 << 30;
	c->import_connect_timeout_s = 10;
	c->import_timeout_s = 3600;
	c->import_max_redirects = 5;
	sfs_strlcpy(c->s3_region, "us-east-1", sizeof(c->s3_region));
	c->s3_path_style = 1;
	c->jwt_max_ttl_s = 24 * 3600;
	c->blob_s3_path_style = -1;
	c->blob_s3_part_size_mb = 16;
	c->blob_s3_parallel = 4;
	c->blob_s3_block_size_mb = 4;
	c->blob_s3_readahead = 8;
	c->blob_s3_connect_timeout_s = 5;
	c->blob_s3_timeout_s = 30;
	c->blob_s3_retries = 3;
	c->blob_cache_bytes = (int64_t)1 << 30;
	c->session_idle_s = 30 * 60;
	c->session_max_s = 12 * 3600;
}

enum kind { K_I64, K_INT, K_BOOL, K_STR };

static const struct {
	const char *key;
	enum kind kind;
	size_t off;
	size_t size;
	int64_t min, max;
} config_keys[] = {
#define I64(k, f, lo, hi)                                                      \
	{                                                                      \
		k, K_I64, offsetof(struct sfs_config, f), 0, lo, hi            \
	}
#define INT(k, f, lo, hi)                                                      \
	{                                                                      \
		k, K_INT, offsetof(struct sfs_config, f), 0, lo, hi            \
	}
#define BOOL(k, f)                                                             \
	{                                                                      \
		k, K_BOOL, offsetof(struct sfs_config, f), 0, 0, 1             \
	}
#define STR(k, f)                                                              \
	{                                                                      \
		k, K_STR, offsetof(struct sfs_config, f),                      \
			sizeof(((struct sfs_config *)0)->f), 0, 0              \
	}
	I64("retention_seconds", retention_seconds, 0, INT64_MAX / 1000),
	INT("jobs.lease_seconds", job_lease_seconds, 1, 86400),
	INT("jobs.workers", workers, 0, 64),
	INT("janitor.interval_ms", janitor_interval_ms, 10, 86400000),
	I64("uploads.expire_seconds", upload_expire_s, 1, 30 * 24 * 3600),
	BOOL("db.sync_full", sync_full),
	I64("blobs.inline_max", blob_inline_max, 0, 1024 * 1024),
	INT("db.busy_timeout_ms", busy_timeout_ms, 0, 600000),
	STR("db.url", db_url),
	STR("db.schema", db_schema),
	INT("listening.bitrate_kbps", la_bitrate_kbps, 8, 320),
	INT("listening.sample_rate", la_sample_rate, 8000, 48000),
	INT("listening.channels", la_channels, 1, 2),
	BOOL("listening.vbr", la_vbr),
	I64("import.max_bytes", import_max_bytes, 1, INT64_MAX),
	INT("import.connect_timeout_s", import_connect_timeout_s, 1, 600),
	INT("import.timeout_s", import_timeout_s, 1, 86400),
	INT("import.max_redirects", import_max_redirects, 0, 20),
	STR("import.allow", import_allow),
	STR("s3.endpoint", s3_endpoint),
	STR("s3.region", s3_region),
	STR("s3.access_key", s3_access_key),
	STR("s3.secret_key", s3_secret_key),
	BOOL("s3.path_style", s3_path_style),
	I64("jwt.max_ttl", jwt_max_ttl_s, 60, (int64_t)10 * 366 * 24 * 3600),
	STR("blob.backend", blob_backend),
	STR("blob.s3.endpoint", blob_s3_endpoint),
	STR("blob.s3.bucket", blob_s3_bucket),
	STR("blob.s3.prefix", blob_s3_prefix),
	STR("blob.s3.region", blob_s3_region),
	STR("blob.s3.access_key", blob_s3_access_key),
	STR("blob.s3.secret_key", blob_s3_secret_key),
	STR("blob.s3.credentials_file", blob_s3_credentials_file),
	STR("blob.s3.profile", blob_s3_profile),
	STR("blob.s3.ca_file", blob_s3_ca_file),
	BOOL("blob.s3.path_style", blob_s3_path_style),
	INT("blob.s3.part_size_mb", blob_s3_part_size_mb, 5, 5120),
	INT("blob.s3.parallel", blob_s3_parallel, 1, 64),
	INT("blob.s3.block_size_mb", blob_s3_block_size_mb, 1, 64),
	INT("blob.s3.readahead", blob_s3_readahead, 0, 16),
	INT("blob.s3.connect_timeout_s", blob_s3_connect_timeout_s, 1, 600),
	INT("blob.s3.timeout_s", blob_s3_timeout_s, 1, 3600),
	INT("blob.s3.retries", blob_s3_retries, 0, 10),
	INT("blob.s3.list_max_keys", blob_s3_list_max_keys, 0, 1000),
	STR("blob.cache_dir", blob_cache_dir),
	I64("blob.cache_bytes", blob_cache_bytes, 0, INT64_MAX),
	I64("session.idle_seconds", session_idle_s, 60, 7 * 24 * 3600),
	I64("session.max_seconds", session_max_s, 60, 30 * 24 * 3600),
#undef I64
#undef INT
#undef BOOL
#undef STR
};

enum sfs_status sfs_config_set(struct sfs_config *c, const char *key,
			       const char *value, struct sfs_err *e)
{
	size_t i;

	/* "" leaves it to the store's record */
	if (!strcmp(key, "db.url") && value[0] &&
	    strncmp(value, "postgresql://", 13) &&
	    strncmp(value, "postgres://", 11))
		return sfs_err_field(e, key, "invalid",
				     "expected a postgresql:// URL");
	if (!strcmp(key, "db.schema") &&
	    (strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
		     strlen(value) ||
	     (value[0] >= '0' && value[0] <= '9')))
		return sfs_err_field(e, key, "invalid",
				     "expected lower-case letters, digits and"
				     " '_', not first a digit");
	if (!strcmp(key, "blob.backend") && value[0] &&
	    strcmp(value, "local") && strcmp(value, "s3"))
		return sfs_err_field(e, key, "invalid",
				     "expected local or s3 (got '%s')", value);
	for (i = 0; i < ARRAY_SIZE(config_keys); i++) {
		char *p = (char *)c + config_keys[i].off;
		int64_t v;
		int b;

		if (strcmp(config_keys[i].key, key))
			continue;
		switch (config_keys[i].kind) {
		case K_STR:
			if (strlen(value) >= config_keys[i].size)
				return sfs_err_field(e, key, "too_long",
						     "value too long");
			sfs_strlcpy(p, value, config_keys[i].size);
			return SFS_OK;
		case K_BOOL:
			if (sfs_parse_bool(value, &b))
				return sfs_err_field(e, key, "invalid",
						     "expected true or false");
			*(int *)p = b;
			return SFS_OK;
		case K_I64:
		case K_INT:
			if (sfs_parse_i64(value, &v) ||
			    v < config_keys[i].min || v > config_keys[i].max)
				return sfs_err_field(
					e, key, "invalid",
					"expected an integer in %lld..%lld",
					(long long)config_keys[i].min,
					(long long)config_keys[i].max);
			if (config_keys[i].kind == K_INT)
				*(int *)p = (int)v;
			else
				*(int64_t *)p = v;
			return SFS_OK;
		}
	}
	return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE, "unknown option '%s'",
			key);
}

static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

#define CHANGE_KEEP 100000

/* The change feed keeps its last CHANGE_KEEP rows (a janitor chore). */
static void prune_changes(struct sfs_store *s)
{
	struct db *d = NULL;
	struct db_stmt *st;
	struct sfs_err e;

	enum sfs_status ret;

	sfs_err_init(&e);
	ret = sfsi_db_get(s, &d, &e);
	if (ret)
		goto out;
	st = sfsi_db_prep(d,
			  "DELETE FROM change WHERE seq <"
			  " (SELECT max(seq) FROM change) - ?1",
			  &e);
	if (!st) {
		ret = e.status ? e.status : SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, CHANGE_KEEP);
	ret = sfsi_db_run(st, &e);
out:
	if (ret)
		sfs_warn("janitor", "cannot prune the change feed: %s",
			 e.message);
	sfsi_db_put(d);
}

static enum sfs_status store_open(const char *dir, const struct sfs_config *cfg,
				  int need_secret, struct sfs_store **out,
				  struct sfs_err *e);

/*
 * STORE/db.url: where a store's metadata live when not in speechfs.db,
 * as configuration lines (db.url, db.schema), so that a handle opened
 * without a configuration finds them. Mode 0600: a URL may hold a
 * password.
 */
enum sfs_status sfsi_store_record_db(const char *dir,
				     const struct sfs_config *cfg,
				     struct sfs_err *e)
{
	char path[4096], text[1200];
	int fd, n, err = 0;

	snprintf(path, sizeof(path), "%s/db.url", dir);
	n = snprintf(text, sizeof(text), "db.url = %s\ndb.schema = %s\n",
		     cfg->db_url, cfg->db_schema);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return sfsi_errno_status(e, errno, "recording the database");
	if (write(fd, text, (size_t)n) != n || fsync(fd) < 0)
		err = errno ? errno : EIO;
	if (close(fd) < 0 && !err)
		err = errno;
	if (err) {
		unlink(path);
		return sfsi_errno_status(e, err, "recording the database");
	}
	sfsi_fsync_dir(dir);
	return SFS_OK;
}

/*
 * The configuration's database, or the store's record of it when the
 * configuration names none; another database than the record's is
 * refused (two stores would share blobs/ then).
 */
static enum sfs_status db_record_read(const char *dir, struct sfs_config *cfg,
				      int *had, struct sfs_err *e)
{
	struct sfs_config rec;
	char path[4096];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/db.url", dir);
	*had = stat(path, &sb) == 0;
	if (!*had)
		return SFS_OK;
	sfs_config_init(&rec);
	if (sfs_config_read(path, &rec, NULL, NULL, e))
		return SFS_IO;
	if (!cfg->db_url[0]) {
		sfs_strlcpy(cfg->db_url, rec.db_url, sizeof(cfg->db_url));
		sfs_strlcpy(cfg->db_schema, rec.db_schema,
			    sizeof(cfg->db_schema));
	} else if (strcmp(cfg->db_url, rec.db_url) ||
		   strcmp(cfg->db_schema, rec.db_schema)) {
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"the store's metadata are in another database"
				" (%s)",
				path);
	}
	return SFS_OK;
}

enum sfs_status sfs_store_init(const char *dir, struct sfs_err *e)
{
	return sfs_store_init_cfg(dir, NULL, e);
}

enum sfs_status sfs_store_init_cfg(const char *dir,
				   const struct sfs_config *cfg,
				   struct sfs_err *e)
{
	unsigned char secret[32];
	char path[4096], hex[65];
	struct stat sb;
	struct sfs_store *s = NULL;
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int pg = cfg && cfg->db_url[0];

	if (sfsi_mkdirs(dir) < 0)
		return sfsi_errno_status(e, errno, "cannot create the store");
	snprintf(path, sizeof(path), "%s/speechfs.db", dir);
	if (stat(path, &sb) == 0)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"a store already exists in '%s'", dir);
	snprintf(path, sizeof(path), "%s/db.url", dir);
	if (stat(path, &sb) == 0)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"a store already exists in '%s'", dir);
	snprintf(path, sizeof(path), "%s/blobs", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return sfsi_errno_status(e, errno, "cannot create blobs/");
	snprintf(path, sizeof(path), "%s/staging", dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return sfsi_errno_status(e, errno, "cannot create staging/");
	if (!pg) {
		snprintf(path, sizeof(path), "%s/speechfs.db", dir);
		ret = sfsi_db_create(path, e);
		if (ret)
			return ret;
		/* the database holds the signing secret: the owner's alone */
		if (chmod(path, 0600) < 0)
			return sfsi_errno_status(e, errno,
						 "securing the store");
	}
	if (chmod(dir, 0700) < 0)
		return sfsi_errno_status(e, errno, "securing the store");

	/* the secret is written below: the first open must not demand it */
	ret = store_open(dir, pg ? cfg : NULL, 0, &s, e);
	if (ret)
		return ret;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		goto out;
	if (pg) {
		st = sfsi_db_prep(
			d, "SELECT 1 FROM setting WHERE key = 'secret'", e);
		if (!st) {
			ret = e ? e->status : SFS_IO;
			goto out;
		}
		if (sfsi_db_step(st, e) != 0) {
			sfsi_db_reset(st);
			ret = sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				       "the database holds a store already");
			goto out;
		}
		sfsi_db_reset(st);
	}
	if (sfsi_random(secret, sizeof(secret))) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "no randomness");
		goto out;
	}
	sfsi_hex(secret, sizeof(secret), hex);
	st = sfsi_db_prep(d,
			  "INSERT OR IGNORE INTO setting(key, value)"
			  " VALUES ('secret', ?1)",
			  e);
	if (!st) {
		ret = e ? e->status : SFS_IO;
		goto out;
	}
	sfsi_db_bind_text(st, 1, hex);
	ret = sfsi_db_run(st, e);
	if (!ret && pg)
		ret = sfsi_store_record_db(dir, cfg, e);
	sfsi_fsync_dir(dir);
out:
	sfsi_db_put(d);
	sfs_store_close(s);
	return ret;
}

static enum sfs_status load_secret(struct sfs_store *s, struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	const char *hex;

	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d, "SELECT value FROM setting WHERE key = 'secret'",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	if (sfsi_db_step(st, e) != 1 || !(hex = sfsi_db_col_text(st, 0)) ||
	    strlen(hex) != 64 || sfsi_unhex(hex, 32, s->secret)) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "the store has no secret");
		goto out;
	}
out:
	if (st)
		sfsi_db_reset(st);
	sfsi_db_put(d);
	return ret;
}

static enum sfs_status store_open(const char *dir, const struct sfs_config *cfg,
				  int need_secret, struct sfs_store **out,
				  struct sfs_err *e)
{
	struct sfs_store *s;
	struct sfs_config c;
	char path[4096];
	struct stat sb;
	enum sfs_status ret;
	int had;

	*out = NULL;
	if (cfg)
		c = *cfg;
	else
		sfs_config_init(&c);
	ret = db_record_read(dir, &c, &had, e);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/speechfs.db", dir);
	if (!c.db_url[0] && stat(path, &sb) < 0)
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
				"no store in '%s' (run init first)", dir);
	if (c.db_url[0] && !had && stat(path, &sb) == 0)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"the store's metadata are in its speechfs.db,"
				" not in db.url");
	/* (init opens before it records) */
	if (c.db_url[0] && (stat(dir, &sb) < 0 || (need_secret && !had)))
		return sfs_errf(e, SFS_NOT_FOUND, SFS_R_NONE,
				"no store in '%s' (run init first)", dir);
	s = calloc(1, sizeof(*s));
	if (!s)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	s->staging_lock_fd = -1;
	s->wal_fd = -1;
	pthread_mutex_init(&s->sync_mu, NULL);
	sfs_cond_init_mono(&s->sync_cv);
	pthread_mutex_init(&s->write_mu, NULL);
	sfs_cond_init_mono(&s->write_cv);
	sfs_cond_init_mono(&s->grp_cv);
	pthread_cond_init(&s->grp_done_cv, NULL);
	sfsi_batch_init(s);
	s->cfg = c;
	pthread_mutex_init(&s->pool_mu, NULL);
	sfs_cond_init_mono(&s->pool_cv);
	pthread_mutex_init(&s->work_mu, NULL);
	sfs_cond_init_mono(&s->work_cv);
	pthread_mutex_init(&s->note_mu, NULL);
	sfs_cond_init_mono(&s->note_cv);
	s->note_pipe[0] = s->note_pipe[1] = -1;
	s->note_efd = -1;
	s->dir = realpath(dir, NULL);
	if (!s->dir) {
		ret = sfsi_errno_status(e, errno, "store directory");
		goto fail;
	}
	if (sfsi_random(&s->origin, sizeof(s->origin)))
		s->origin = (int64_t)getpid() << 20 ^ sfs_now_ns();
	s->origin &= INT64_MAX;
	s->blob_dir = join(s->dir, "blobs");
	if (!s->blob_dir) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto fail;
	}
	ret = sfsi_db_pool_open(s, path, e);
	if (ret)
		goto fail;
	ret = need_secret ? load_secret(s, e) : SFS_OK;
	if (ret)
		goto fail;
	ret = sfsi_blob_backend_open(s, e);
	if (ret)
		goto fail;
	sfsi_keycache_open(s);
	ret = sfsi_staging_recover(s, e);
	if (ret)
		goto fail;
	snprintf(path, sizeof(path), "%s/staging", s->dir);
	ret = sfsi_staging_open(s, path, e);
	if (ret)
		goto fail;
	sfsi_media_install(s);
	sfsi_lifecycle_install(s);
	sfsi_janitor_add(s, prune_changes);
	sfsi_fts_install(s);
	sfsi_session_install(s);
	*out = s;
	return SFS_OK;
fail:
	sfs_store_close(s);
	return ret;
}

enum sfs_status sfs_store_open(const char *dir, const struct sfs_config *cfg,
			       struct sfs_store **out, struct sfs_err *e)
{
	return store_open(dir, cfg, 1, out, e);
}

void sfs_store_close(struct sfs_store *s)
{
	if (!s)
		return;
	if (s->ops) {
		s->ops->close(s);
		return;
	}
	sfs_workers_stop(s);
	if (sfs_store_batch(s, 0, NULL)) /* commits and syncs an open one */
		sfs_error("store", "the last batch of commits may be lost");
	sfsi_db_listen_stop(s);
	if (s->note_efd >= 0)
		close(s->note_efd);
	sfsi_staging_close(s);
	sfsi_blob_backend_close(s);
	sfsi_db_pool_close(s);
	sfsi_keycache_close(s);
	pthread_mutex_destroy(&s->pool_mu);
	pthread_cond_destroy(&s->pool_cv);
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	pthread_mutex_destroy(&s->sync_mu);
	pthread_cond_destroy(&s->sync_cv);
	pthread_mutex_destroy(&s->write_mu);
	pthread_cond_destroy(&s->write_cv);
	pthread_cond_destroy(&s->grp_cv);
	pthread_cond_destroy(&s->grp_done_cv);
	pthread_mutex_destroy(&s->batch_mu);
	pthread_cond_destroy(&s->batch_cv);
	pthread_cond_destroy(&s->batch_tick);
	pthread_mutex_destroy(&s->work_mu);
	pthread_cond_destroy(&s->work_cv);
	pthread_mutex_destroy(&s->note_mu);
	pthread_cond_destroy(&s->note_cv);
	free(s->dir);
	free(s->blob_dir);
	free(s->upload_dir);
	free(s->staging_dir);
	free(s);
}

const struct sfs_config *sfs_store_config(const struct sfs_store *s)
{
	return &s->cfg;
}

int sfs_store_change_fd(struct sfs_store *s)
{
	return s->ops ? s->ops->change_fd(s) : sfsi_db_change_fd(s);
}

void sfs_store_keep_dirs(struct sfs_store *s, int on)
{
	s->keep_dirs = !!on;
}

const char *sfs_store_dir(const struct sfs_store *s)
{
	return s->dir;
}

int sfs_store_is_shared(const struct sfs_store *s)
{
	return !sfs_store_is_remote(s) && sfsi_db_store_is_pg(s);
}

void sfs_store_stopping(struct sfs_store *s, enum sfs_store_stop how)
{
	if (s->ops && s->ops->stopping)
		s->ops->stopping(s, how);
}

int sfs_store_interrupt(struct sfs_store *s)
{
	if (!sfs_store_is_shared(s))
		return 0;
	/* a job cut short is left for a later claim, not failed */
	if (s->workers)
		sfsi_workers_stopping(s);
	return sfsi_db_interrupt(s);
}

enum sfs_status sfs_store_analyze(struct sfs_store *s, struct sfs_err *e)
{
	struct db *d = NULL;
	enum sfs_status ret;

	if (!sfsi_db_store_is_pg(s))
		return SFS_OK;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	ret = sfsi_db_vacuum(d, e);
	sfsi_db_put(d);
	return ret;
}

enum sfs_status sfs_store_change_seq(struct sfs_store *s, int64_t *seq,
				     struct sfs_err *e)
{
	if (s->ops)
		return s->ops->change_seq(s, seq, e);
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;

	*seq = 0;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d, "SELECT coalesce(max(seq), 0) FROM change", e);
	if (!st)
		ret = SFS_IO;
	else if (sfsi_db_step(st, e) == 1)
		*seq = sfsi_db_col_int(st, 0);
	else
		ret = SFS_IO;
	sfsi_db_reset(st);
	sfsi_db_put(d);
	return ret;
}

static enum sfs_status changes(struct sfs_store *s, int64_t since, int others,
			       sfs_change_fn fn, void *arg, int64_t *last,
			       struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *st;
	enum sfs_status ret;
	int rc;

	*last = since;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	st = sfsi_db_prep(d,
			  "SELECT seq, file_id, owner_id, dir,"
			  " CASE WHEN origin = ?2 THEN 1 ELSE 0 END FROM change"
			  " WHERE seq > ?1 ORDER BY seq LIMIT 10000",
			  e);
	if (!st) {
		ret = SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(st, 1, since);
	sfsi_db_bind_int(st, 2, s->origin);
	while ((rc = sfsi_db_step(st, e)) == 1) {
		*last = sfsi_db_col_int(st, 0);
		if (others && sfsi_db_col_int(st, 4))
			continue;
		fn(arg, *last, sfsi_db_col_int(st, 1), sfsi_db_col_int(st, 2),
		   sfsi_db_col_text(st, 3));
	}
	if (rc < 0)
		ret = e ? e->status : SFS_IO;
	sfsi_db_reset(st);
out:
	sfsi_db_put(d);
	return ret;
}

/* A client's origin for this thread's changes (sfs_store_origin_set). */
static __thread int64_t thread_origin;

void sfs_store_origin_set(int64_t origin)
{
	thread_origin = origin > 0 ? origin : 0;
}

int64_t sfsi_origin_now(int64_t own)
{
	return thread_origin ? thread_origin : own;
}

/* A request's keepDirs for this thread's calls (sfs_store_keep_dirs_here). */
static __thread int thread_keep_dirs;

void sfs_store_keep_dirs_here(int on)
{
	thread_keep_dirs = !!on;
}

int sfsi_keep_dirs(const struct sfs_store *s)
{
	return s->keep_dirs || thread_keep_dirs;
}

enum sfs_status sfs_store_changes(struct sfs_store *s, int64_t since,
				  sfs_change_fn fn, void *arg, int64_t *last,
				  struct sfs_err *e)
{
	if (s->ops)
		return s->ops->changes(s, since, 0, fn, arg, last, e);
	return changes(s, since, 0, fn, arg, last, e);
}

enum sfs_status sfs_store_changes_by_others(struct sfs_store *s, int64_t since,
					    sfs_change_fn fn, void *arg,
					    int64_t *last, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->changes(s, since, 1, fn, arg, last, e);
	return changes(s, since, 1, fn, arg, last, e);
}

enum sfs_status sfs_store_space(struct sfs_store *s, uint64_t *total,
				uint64_t *avail, struct sfs_err *e)
{
	struct statvfs v;

	if (statvfs(s->dir, &v) < 0)
		return sfsi_errno_status(e, errno, "statvfs");
	*total = (uint64_t)v.f_blocks * v.f_frsize;
	*avail = (uint64_t)v.f_bavail * v.f_frsize;
	return SFS_OK;
}

/* Files a tenant without a file quota can still make, for statfs. */
#define FILES_UNLIMITED ((uint64_t)1 << 32)

enum sfs_status sfs_store_space_of(struct sfs_store *s,
				   const struct sfs_actor *a,
				   struct sfs_space *out, struct sfs_err *e)
{
	if (s->ops)
		return s->ops->space_of(s, out, e);
	struct sfs_tenant_info t;
	uint64_t total = 0, avail = 0, used, left;
	enum sfs_status ret;

	memset(out, 0, sizeof(*out));
	ret = sfs_store_space(s, &total, &avail, e);
	if (!ret)
		ret = sfs_tenant_get(s, a->tenant_id, &t, e);
	if (ret)
		return ret;
	used = t.used_bytes > 0 ? (uint64_t)t.used_bytes : 0;
	if (t.max_bytes > 0 && (uint64_t)t.max_bytes < total)
		total = (uint64_t)t.max_bytes;
	if (used > total)
		total = used;
	left = total - used;
	out->total_bytes = total;
	out->used_bytes = used;
	out->free_bytes = left;
	out->avail_bytes = left < avail ? left : avail;
	if (t.max_files > 0) {
		out->total_files = (uint64_t)t.max_files;
		out->free_files =
			t.used_files < t.max_files
				? (uint64_t)(t.max_files - t.used_files)
				: 0;
	} else {
		out->free_files = FILES_UNLIMITED;
		out->total_files = FILES_UNLIMITED + (uint64_t)t.used_files;
	}
	return SFS_OK;
}

enum sfs_status sfs_store_sync(struct sfs_store *s, struct sfs_err *e)
{
	enum sfs_status st;

	if (s->ops)
		return SFS_OK; /* the server answered only once durable */
	st = sfsi_batch_commit(s, e); /* batched commits: the open batch */
	return st ? st : sfsi_db_sync(s, e);
}
