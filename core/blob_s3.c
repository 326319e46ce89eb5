/*
 * The S3 blob backend: blob (tenant, sha) is the object
 * "<prefix><tenant>/<sha[0:2]>/<sha>" of a bucket. A new blob is sent
 * before its commit (multipart, in parallel parts, each part's SHA-256
 * checked by the store) and checked under the write lock by a HEAD before
 * its row is written; reading goes through blockcache.c. Credentials come from
 * the configuration, else the AWS_* environment, else a shared credentials file
 * (~/.aws/credentials and its profiles).
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "blob_s3_i.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"

/* Multipart uploads older than this are a dead process's, for fsck. */
#define STALE_UPLOAD_S (24 * 3600)

struct creds {
	char access[128], secret[128], token[2048];
};

static void trim(char *s)
{
	size_t n = strlen(s);
	char *p = s;

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
		     s[n - 1] == '\r'))
		s[--n] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	memmove(s, p, strlen(p) + 1);
}

/* aws_access_key_id & co. of one [profile] of a credentials file. */
static int read_credentials_file(const char *path, const char *profile,
				 struct creds *c)
{
	char line[2300], section[128] = "", *eq;
	FILE *f = fopen(path, "re");
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		trim(line);
		if (line[0] == '#' || line[0] == ';' || !line[0])
			continue;
		if (line[0] == '[') {
			sfs_strlcpy(section, line + 1, sizeof(section));
			section[strcspn(section, "]")] = '\0';
			trim(section);
			if (!strncmp(section, "profile ", 8))
				memmove(section, section + 8,
					strlen(section + 8) + 1);
			continue;
		}
		eq = strchr(line, '=');
		if (!eq || strcmp(section, profile))
			continue;
		*eq++ = '\0';
		trim(line);
		trim(eq);
		if (!strcmp(line, "aws_access_key_id"))
			found |= sfs_strlcpy(c->access, eq, sizeof(c->access)) >
				 0;
		else if (!strcmp(line, "aws_secret_access_key"))
			sfs_strlcpy(c->secret, eq, sizeof(c->secret));
		else if (!strcmp(line, "aws_session_token"))
			sfs_strlcpy(c->token, eq, sizeof(c->token));
	}
	fclose(f);
	return found ? 0 : -1;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] ? v : NULL;
}

/* The configuration's keys, else AWS_*, else the credentials file. */
static enum sfs_status find_credentials(const struct sfs_config *cfg,
					struct creds *c, struct sfs_err *e)
{
	char path[1024];
	const char *file = cfg->blob_s3_credentials_file, *home;
	const char *profile = cfg->blob_s3_profile;

	memset(c, 0, sizeof(*c));
	if (cfg->blob_s3_access_key[0]) {
		sfs_strlcpy(c->access, cfg->blob_s3_access_key,
			    sizeof(c->access));
		sfs_strlcpy(c->secret, cfg->blob_s3_secret_key,
			    sizeof(c->secret));
		return SFS_OK;
	}
	if (env("AWS_ACCESS_KEY_ID")) {
		sfs_strlcpy(c->access, env("AWS_ACCESS_KEY_ID"),
			    sizeof(c->access));
		sfs_strlcpy(c->secret,
			    env("AWS_SECRET_ACCESS_KEY")
				    ? env("AWS_SECRET_ACCESS_KEY")
				    : "",
			    sizeof(c->secret));
		sfs_strlcpy(c->token,
			    env("AWS_SESSION_TOKEN") ? env("AWS_SESSION_TOKEN")
						     : "",
			    sizeof(c->token));
		return SFS_OK;
	}
	if (!file[0])
		file = env("AWS_SHARED_CREDENTIALS_FILE");
	if ((!file || !file[0]) && (home = env("HOME"))) {
		snprintf(path, sizeof(path), "%s/.aws/credentials", home);
		file = path;
	}
	if (!profile[0])
		profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
	if (file && !read_credentials_file(file, profile, c))
		return SFS_OK;
	return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
			"no credentials for the object store: set "
			"blob.s3.access_key and blob.s3.secret_key, "
			"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a "
			"credentials file (blob.s3.credentials_file, profile "
			"'%s')",
			profile);
}

static struct sfsi_s3_backend *be_of(struct sfs_store *s)
{
	return s->blob_state;
}

enum sfs_status sfsi_s3_backend_client(const struct sfs_config *cfg,
				       struct sfsi_s3 **out, struct sfs_err *e)
{
	struct sfsi_s3_opts o;
	struct creds cr;
	enum sfs_status ret;

	*out = NULL;
	if (!cfg->blob_s3_bucket[0])
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"blob.s3.bucket is not set");
	ret = find_credentials(cfg, &cr, e);
	if (ret)
		goto out;
	sfsi_s3_opts_init(&o);
	o.endpoint = cfg->blob_s3_endpoint;
	o.region = cfg->blob_s3_region;
	o.bucket = cfg->blob_s3_bucket;
	o.prefix = cfg->blob_s3_prefix;
	o.access_key = cr.access;
	o.secret_key = cr.secret;
	o.session_token = cr.token;
	o.ca_file = cfg->blob_s3_ca_file;
	o.path_style = cfg->blob_s3_path_style != 0;
	o.part_size = (int64_t)cfg->blob_s3_part_size_mb << 20;
	o.parallel = cfg->blob_s3_parallel;
	o.connect_timeout_s = cfg->blob_s3_connect_timeout_s;
	o.stall_timeout_s = cfg->blob_s3_timeout_s;
	o.retries = cfg->blob_s3_retries;
	o.list_max_keys = cfg->blob_s3_list_max_keys;
	ret = sfsi_s3_new(&o, out, e);
out:
	OPENSSL_cleanse(&cr, sizeof(cr));
	return ret;
}

void sfsi_s3_blob_key(int64_t tenant, const char *sha, char *out, size_t size)
{
	snprintf(out, size, "%lld/%.2s/%s", (long long)tenant, sha, sha);
}

/* The block cache's fetch and url: a Range GET, a presigned URL. */
static enum sfs_status fetch_range(void *ctx, const char *key, int64_t off,
				   int64_t len, const struct sfsi_bc_dest *d,
				   struct sfs_err *e)
{
	struct sfsi_s3_backend *be = ctx;

	return sfsi_s3_get(be->c, key, off, len, d->sink, d->arg, NULL, e);
}

static enum sfs_status presign(void *ctx, const char *key, int expires_s,
			       const char *ctype, const char *disposition,
			       char **url, struct sfs_err *e)
{
	struct sfsi_s3_backend *be = ctx;

	return sfsi_s3_presign(be->c, key, expires_s, ctype, disposition, url,
			       e);
}

static enum sfs_status s3_open(struct sfs_store *s, struct sfs_err *e)
{
	const struct sfs_config *cfg = &s->cfg;
	struct sfsi_s3_backend *be = NULL;
	struct sfsi_bcache *bc;
	enum sfs_status ret;

	be = calloc(1, sizeof(*be));
	if (!be)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	ret = sfsi_s3_backend_client(cfg, &be->c, e);
	if (ret)
		goto out;
	bc = &be->bc;
	bc->block = (int64_t)cfg->blob_s3_block_size_mb << 20;
	bc->readahead = cfg->blob_s3_readahead;
	be->parallel = cfg->blob_s3_parallel;
	/* a fetcher for each block in flight ahead of a reader */
	bc->nthreads = cfg->blob_s3_readahead > 0 ? cfg->blob_s3_readahead : 1;
	if (cfg->blob_cache_dir[0])
		sfs_strlcpy(bc->cache_dir, cfg->blob_cache_dir,
			    sizeof(bc->cache_dir));
	else
		snprintf(bc->cache_dir, sizeof(bc->cache_dir), "%s/cache",
			 s->dir);
	bc->cache_bytes = cfg->blob_cache_bytes;
	bc->fetch = fetch_range;
	bc->url = presign;
	bc->ctx = be;
	ret = sfsi_bcache_start(bc, e);
	if (ret)
		goto out;
	s->blob_state = be;
	be = NULL;
out:
	if (be) {
		sfsi_bcache_stop(&be->bc);
		sfsi_s3_free(be->c);
		free(be);
	}
	return ret;
}

static void s3_close(struct sfs_store *s)
{
	struct sfsi_s3_backend *be = be_of(s);

	if (!be)
		return;
	sfsi_bcache_stop(&be->bc);
	sfsi_s3_free(be->c);
	free(be);
	s->blob_state = NULL;
}

static enum sfs_status upload(struct sfs_store *s, int64_t tenant,
			      struct sfs_stage *st, struct sfs_err *e)
{
	char key[128];
	enum sfs_status ret;

	sfsi_s3_blob_key(tenant, st->sha, key, sizeof(key));
	ret = sfsi_s3_put_fd(be_of(s)->c, key, st->fd, 0, st->size, st->sha, e);
	if (ret)
		return ret;
	/* the bytes are in the store: a commit that fails removes them */
	st->linked = 1;
	st->linked_tenant = tenant;
	sfsi_crash_point("s3-uploaded");
	return SFS_OK;
}

/* A streamed stage: finish its object; *done when it is in place. */
static enum sfs_status finish_stream(struct sfs_store *s, int64_t tenant,
				     struct sfs_stage *st, int known, int *done,
				     struct sfs_err *e)
{
	struct sfs_err tmp;

	*done = 0;
	if (!st->stream)
		return SFS_OK;
	sfs_err_init(&tmp);
	if (sfsi_s3_stream_finish(s, tenant, st, known, done, &tmp)) {
		/* what streaming could not finish is sent whole */
		sfs_debug("s3", "streamed '%s' not kept: %s", st->sha,
			  tmp.message);
		return SFS_OK;
	}
	if (!*done)
		return SFS_OK;
	st->linked = 1;
	st->linked_tenant = tenant;
	sfsi_crash_point("s3-uploaded");
	(void)e;
	return SFS_OK;
}

static enum sfs_status s3_prepare(struct sfs_store *s, int64_t tenant,
				  struct sfs_stage *st, int known,
				  struct sfs_err *e)
{
	enum sfs_status ret;
	int done = 0;

	ret = finish_stream(s, tenant, st, known, &done, e);
	if (ret || done || known)
		return ret;
	return upload(s, tenant, st, e);
}

static enum sfs_status s3_stat(struct sfs_store *s, int64_t tenant,
			       const char *sha, int *present, int64_t *size,
			       struct sfs_err *e)
{
	struct sfs_err tmp;
	char key[128];
	enum sfs_status ret;

	sfsi_s3_blob_key(tenant, sha, key, sizeof(key));
	*present = 0;
	*size = -1;
	sfs_err_init(&tmp);
	ret = sfsi_s3_head(be_of(s)->c, key, size, &tmp);
	if (ret == SFS_NOT_FOUND)
		return SFS_OK;
	if (ret && e)
		*e = tmp;
	*present = !ret;
	return ret;
}

static enum sfs_status s3_store(struct sfs_store *s, int64_t tenant,
				struct sfs_stage *st, struct sfs_err *e)
{
	enum sfs_status ret;
	int present = 0, done = 0;
	int64_t size = -1;

	ret = finish_stream(s, tenant, st, 0, &done, e);
	if (!ret && (!st->linked || st->linked_tenant != tenant))
		ret = upload(s, tenant, st, e);
	/*
	 * Under the write lock, after any removal of the same blob by
	 * another process: is the object there, whole? (Else a removal came
	 * between the upload and now: send it again.)
	 */
	if (!ret)
		ret = s3_stat(s, tenant, st->sha, &present, &size, e);
	if (!ret && (!present || size != st->size)) {
		ret = upload(s, tenant, st, e);
		if (!ret)
			ret = s3_stat(s, tenant, st->sha, &present, &size, e);
		if (!ret && (!present || size != st->size))
			ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
				       "object store: blob '%s' has %lld "
				       "bytes after its upload, not %lld",
				       st->sha, (long long)size,
				       (long long)st->size);
	}
	return ret;
}

static enum sfs_status s3_remove(struct sfs_store *s, int64_t tenant,
				 const char *sha, struct sfs_err *e)
{
	char key[128];

	sfsi_s3_blob_key(tenant, sha, key, sizeof(key));
	return sfsi_s3_delete(be_of(s)->c, key, e);
}

static enum sfs_status s3_open_blob(struct sfs_store *s, int64_t tenant,
				    const char *sha, int64_t size,
				    unsigned flags, struct sfs_blob **out,
				    struct sfs_err *e)
{
	char key[128];

	sfsi_s3_blob_key(tenant, sha, key, sizeof(key));
	return sfsi_bcache_blob_open(&be_of(s)->bc, tenant, sha, size, flags,
				     key, out, e);
}

struct walk {
	sfsi_blob_each each;
	void *arg;
};

/*
 * "<tenant>/<aa>/<sha>" is a blob; "incoming/..." a streamed upload's
 * temporary object (the sweep's); anything else is odd.
 */
static int walk_key(void *arg, const char *key, int64_t size, int64_t mtime)
{
	struct walk *w = arg;
	char tenant[32], shard[3], sha[65], odd[300];
	int64_t t;
	int n = 0;

	(void)mtime;
	if (!strncmp(key, "incoming/", 9))
		return 0;
	if (sscanf(key, "%31[0-9]/%2[0-9a-f]/%64[0-9a-f]%n", tenant, shard, sha,
		   &n) == 3 &&
	    !key[n] && !sfs_parse_i64(tenant, &t) && sfsi_is_sha256_hex(sha) &&
	    !strncmp(sha, shard, 2))
		return w->each(w->arg, t, sha, size, NULL);
	snprintf(odd, sizeof(odd), "object %s", key);
	return w->each(w->arg, 0, NULL, size, odd);
}

static enum sfs_status s3_walk(struct sfs_store *s, sfsi_blob_each each,
			       void *arg, struct sfs_err *e)
{
	struct walk w = { each, arg };

	return sfsi_s3_list(be_of(s)->c, "", walk_key, &w, e);
}

/* The blobs of one tenant: the keys under "<tenant>/", in sha order. */
static enum sfs_status s3_walk_tenant(struct sfs_store *s, int64_t tenant,
				      sfsi_blob_each each, void *arg,
				      struct sfs_err *e)
{
	struct walk w = { each, arg };
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "%lld/", (long long)tenant);
	return sfsi_s3_list(be_of(s)->c, prefix, walk_key, &w, e);
}

struct tenants {
	int (*fn)(void *arg, int64_t tenant, const char *odd);
	void *arg;
};

/* A key at the top: never a blob's. */
static int top_key(void *arg, const char *key, int64_t size, int64_t mtime)
{
	struct tenants *t = arg;
	char odd[300];

	(void)size;
	(void)mtime;
	snprintf(odd, sizeof(odd), "object %s", key);
	return t->fn(t->arg, 0, odd);
}

/* "<tenant>/" at the top; "incoming/" is the sweep's. */
static int top_level(void *arg, const char *name)
{
	struct tenants *t = arg;
	char odd[300];
	int64_t id;
	int n = 0;

	if (!strcmp(name, "incoming/"))
		return 0;
	/* "7/" is a tenant's; "07/" is not (it would be walked as 7's) */
	if (sscanf(name, "%*[0-9]/%n", &n) == 0 && n && !name[n] && n < 24 &&
	    name[0] != '0') {
		char num[24];

		memcpy(num, name, (size_t)n - 1);
		num[n - 1] = '\0';
		if (!sfs_parse_i64(num, &id) && id > 0)
			return t->fn(t->arg, id, NULL);
	}
	snprintf(odd, sizeof(odd), "objects under %s", name);
	return t->fn(t->arg, 0, odd);
}

static enum sfs_status s3_tenants(struct sfs_store *s,
				  int (*fn)(void *arg, int64_t tenant,
					    const char *odd),
				  void *arg, struct sfs_err *e)
{
	struct tenants t = { fn, arg };

	return sfsi_s3_list_level(be_of(s)->c, "", top_key, top_level, &t, e);
}

struct sweep {
	struct sfsi_s3 *c;
	int repair;
	int64_t found, fixed, now;
	void (*say)(void *arg, const char *line);
	void *arg;
};

static int sweep_upload(void *arg, const char *key, const char *id,
			int64_t initiated)
{
	struct sweep *w = arg;
	char line[512];

	if (initiated > w->now - STALE_UPLOAD_S)
		return 0; /* perhaps in progress */
	w->found++;
	snprintf(line, sizeof(line),
		 "unfinished multipart upload of '%s' since %lld", key,
		 (long long)initiated);
	w->say(w->arg, line);
	if (w->repair && !sfsi_s3_abort(w->c, key, id, NULL)) {
		w->fixed++;
		snprintf(line, sizeof(line),
			 "repaired: aborted the upload of '%s'", key);
		w->say(w->arg, line);
	}
	return 0;
}

/* A streamed upload's temporary object of a day ago: a dead process's. */
static int sweep_incoming(void *arg, const char *key, int64_t size,
			  int64_t mtime)
{
	struct sweep *w = arg;
	char line[512];

	(void)size;
	if (mtime > w->now - STALE_UPLOAD_S)
		return 0;
	w->found++;
	snprintf(line, sizeof(line), "temporary object '%s' since %lld", key,
		 (long long)mtime);
	w->say(w->arg, line);
	if (w->repair && !sfsi_s3_delete(w->c, key, NULL)) {
		w->fixed++;
		snprintf(line, sizeof(line), "repaired: removed '%s'", key);
		w->say(w->arg, line);
	}
	return 0;
}

static enum sfs_status s3_sweep(struct sfs_store *s, int repair, int64_t *found,
				int64_t *fixed,
				void (*say)(void *arg, const char *line),
				void *arg, struct sfs_err *e)
{
	struct sweep w = { be_of(s)->c,		repair, 0,  0,
			   (int64_t)time(NULL), say,	arg };
	enum sfs_status ret;

	ret = sfsi_s3_uploads(w.c, "", sweep_upload, &w, e);
	if (!ret)
		ret = sfsi_s3_list(w.c, "incoming/", sweep_incoming, &w, e);
	*found = w.found;
	*fixed = w.fixed;
	return ret;
}

const struct sfsi_blob_backend sfsi_blob_s3 = {
	.name = "s3",
	.open = s3_open,
	.close = s3_close,
	.prepare = s3_prepare,
	.store = s3_store,
	.stat = s3_stat,
	.remove = s3_remove,
	.open_blob = s3_open_blob,
	.walk = s3_walk,
	.walk_tenant = s3_walk_tenant,
	.tenants = s3_tenants,
	.sweep = s3_sweep,
	.stream = sfsi_s3_stream_start,
	.stream_free = sfsi_s3_stream_free,
};
