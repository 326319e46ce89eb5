/* The unit tests' shared fixtures (fixture.h). */
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "blob_i.h"
#include "blob_s3_i.h"
#include "db_i.h"
#include "fixture.h"
#include "media_i.h"
#include "store_i.h"
#include "util_i.h"
#include "speechfs/util.h"
#include "testhelp.h"
#include "testjob.h"

static struct sfs_config files_only_cfg;

static void files_only_init(void)
{
	sfs_config_init(&files_only_cfg);
	files_only_cfg.blob_inline_max = 0;
	files_only_cfg.blob_s3_list_max_keys = 97;
}

const struct sfs_config *tfx_files_only(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, files_only_init);
	return &files_only_cfg;
}

int tfx_store(char **dir, struct sfs_store **s, const struct sfs_config *cfg)
{
	struct sfs_config c;
	struct sfs_err e;

	sfs_err_init(&e);
	*s = NULL;
	*dir = th_tmpdir();
	/* the blob backend under test (testhelp.h: SFS_BLOB_BACKEND) */
	if (cfg)
		c = *cfg;
	else
		sfs_config_init(&c);
	if (th_blob_config(&c) || th_db_config(&c)) {
		fprintf(stderr, "fixture: cannot configure the backend\n");
		tfx_store_close(dir, s);
		return -1;
	}
	if (sfs_store_init_cfg(*dir, &c, &e) ||
	    sfs_store_open(*dir, &c, s, &e)) {
		fprintf(stderr, "fixture: store: %s\n", e.message);
		tfx_store_close(dir, s);
		return -1;
	}
	return 0;
}

void tfx_store_close(char **dir, struct sfs_store **s)
{
	sfs_store_close(*s);
	th_rmrf(*dir);
	*s = NULL;
	*dir = NULL;
}

int tfx_tenant(struct sfs_store *s, const char *name, int64_t max_bytes,
	       int64_t max_files, char id[SFS_ID_SIZE])
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_tenant_create(s, name, max_bytes, max_files, id, &e)) {
		fprintf(stderr, "fixture: tenant '%s': %s\n", name, e.message);
		return -1;
	}
	return 0;
}

int tfx_user(struct sfs_store *s, const char *tenant, const char *name,
	     char *id, struct sfs_actor *a)
{
	char uid[SFS_ID_SIZE];
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_user_create(s, tenant, name, -1, uid, &e) ||
	    (a && sfs_auth_user(s, uid, SFS_SCOPE_ALL, a, &e))) {
		fprintf(stderr, "fixture: user '%s': %s\n", name, e.message);
		return -1;
	}
	if (id)
		memcpy(id, uid, SFS_ID_SIZE);
	return 0;
}

int tfx_one_open(struct tfx_one *f, const struct sfs_config *cfg)
{
	memset(f, 0, sizeof(*f));
	if (tfx_store(&f->dir, &f->s, cfg))
		return -1;
	if (tfx_tenant(f->s, "acme", 0, 0, f->tenant) ||
	    tfx_user(f->s, f->tenant, "ann", f->user, NULL)) {
		tfx_store_close(&f->dir, &f->s);
		return -1;
	}
	return 0;
}

void tfx_one_close(struct tfx_one *f)
{
	tfx_store_close(&f->dir, &f->s);
}

void tfx_fill(void *p, size_t n, unsigned seed)
{
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (unsigned char)(seed >> 16);
	}
}

struct sfs_stage *tfx_stage(struct sfs_store *s, const void *data, size_t n)
{
	struct sfs_stage *st = NULL;

	if (sfs_stage_new(s, &st, NULL))
		return NULL;
	if (n && sfs_stage_write(st, data, n, NULL)) {
		sfs_stage_free(st);
		return NULL;
	}
	return st;
}

enum sfs_status tfx_upload(struct sfs_store *s, const struct sfs_actor *a,
			   const char *name, const void *data, size_t n,
			   char *id, char *sha)
{
	struct sfs_file_spec sp = { .name = name };
	struct sfs_stage *st = tfx_stage(s, data, n);
	struct sfs_file f;
	enum sfs_status ret;

	if (!st)
		return SFS_IO;
	ret = sfs_file_create(s, a, &sp, st, &f, NULL);
	sfs_stage_free(st);
	if (!ret) {
		if (id)
			sfs_strlcpy(id, f.id, SFS_ID_SIZE);
		if (sha)
			sfs_strlcpy(sha, f.sha256, 65);
		sfs_file_release(&f);
	}
	return ret;
}

enum sfs_status tfx_read(struct sfs_store *s, const struct sfs_actor *a,
			 const char *id, enum sfs_content which, void *buf,
			 size_t cap, size_t *got)
{
	struct sfs_blob *b = NULL;
	enum sfs_status ret;
	size_t n;

	*got = 0;
	ret = sfs_file_open(s, a, id, which, 0, &b, NULL, NULL);
	if (ret)
		return ret;
	while (*got < cap &&
	       !(ret = sfs_blob_pread(b, (char *)buf + *got, cap - *got,
				      (int64_t)*got, &n, NULL)) &&
	       n)
		*got += n;
	sfs_blob_close(b);
	return ret ? SFS_IO : SFS_OK;
}

enum sfs_status tfx_listening_done(struct sfs_store *s,
				   const struct sfs_actor *a, const char *id,
				   const void *mp3, size_t n)
{
	struct sfs_stage *st = NULL;
	struct sfs_file fi;
	struct sfs_job j;
	enum sfs_status ret;

	memset(&j, 0, sizeof(j));
	ret = sfs_file_get(s, a, id, &fi, NULL);
	if (ret)
		return ret;
	ret = claim_for(s, SFS_JOB_LISTENING, fi.ino, &j);
	if (!ret)
		ret = sfsi_file_job_state(s, &j, SFS_JS_PROCESSING, NULL, NULL);
	if (!ret) {
		st = tfx_stage(s, mp3, n);
		ret = st ? sfsi_file_listening_done(s, &j, st, NULL, NULL)
			 : SFS_IO;
	}
	sfs_job_release(&j);
	sfs_stage_free(st);
	sfs_file_release(&fi);
	return ret;
}

int tfx_openssl_sha(const void *data, size_t n, char out[65])
{
	char path[] = "/tmp/sfs-sha-XXXXXX", cmd[256], line[256];
	int fd = mkstemp(path), ok = -1;
	FILE *p;

	if (fd < 0)
		return -1;
	if (write(fd, data, n) != (ssize_t)n) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -r '%s'", path);
	p = popen(cmd, "r");
	if (p && fgets(line, sizeof(line), p) && strlen(line) >= 64) {
		memcpy(out, line, 64);
		out[64] = '\0';
		ok = 0;
	}
	if (p)
		pclose(p);
	unlink(path);
	return ok;
}

int tfx_has_field(const struct sfs_err *e, const char *field, const char *type)
{
	int i;

	for (i = 0; i < e->nfields; i++)
		if (!strcmp(e->fields[i].field, field) &&
		    (!type || !strcmp(e->fields[i].type, type)))
			return 1;
	return 0;
}

void tfx_collect(void *arg, const char *line)
{
	struct tfx_lines *l = arg;

	l->n++;
	sfs_strlcpy(l->last, line, sizeof(l->last));
	if (getenv("SFS_TEST_VERBOSE"))
		fprintf(stderr, "  fsck: %s\n", line);
}

int tfx_fsck_lines(struct sfs_store *s, int repair, struct sfs_fsck_report *r)
{
	struct tfx_lines l = { 0, "" };
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_fsck(s, repair, r, tfx_collect, &l, &e)) {
		fprintf(stderr, "fsck failed: %s\n", e.message);
		return -1;
	}
	return l.n;
}

int tfx_wait_for(int (*cond)(void *), void *arg, int ms)
{
	int64_t until = sfs_mono_ns() + (int64_t)ms * 1000000;

	while (!cond(arg)) {
		if (sfs_mono_ns() >= until)
			return cond(arg);
		usleep(1000);
	}
	return 1;
}

int tfx_run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

int tfx_sql(struct sfs_store *s, const char *fmt, ...)
{
	char text[4096];
	struct sfs_err e;
	struct db *d = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	sfs_err_init(&e);
	if (sfsi_db_get(s, &d, &e)) {
		fprintf(stderr, "fixture: sql: %s\n", e.message);
		return -1;
	}
	rc = sfsi_db_exec(d, text, &e) ? -1 : 0;
	if (rc)
		fprintf(stderr, "fixture: sql '%s': %s\n", text, e.message);
	sfsi_db_put(d);
	return rc;
}

int64_t tfx_sql_int(struct sfs_store *s, const char *sql)
{
	struct db *d = NULL;
	struct db_stmt *q;
	int64_t v = -1;

	if (sfsi_db_get(s, &d, NULL))
		return -1;
	q = sfsi_db_prep_dyn(d, sql, NULL);
	if (q && sfsi_db_step(q, NULL) == 1)
		v = sfsi_db_col_int(q, 0);
	sfsi_db_finalize(q);
	sfsi_db_put(d);
	return v;
}

int64_t tfx_sql_rows_holding(struct sfs_store *s, const char *sql,
			     const char *needle)
{
	struct db *d = NULL;
	struct db_stmt *q;
	const void *v;
	int64_t n = 0;
	size_t len;
	int rc;

	if (sfsi_db_get(s, &d, NULL))
		return -1;
	q = sfsi_db_prep_dyn(d, sql, NULL);
	if (!q) {
		sfsi_db_put(d);
		return -1;
	}
	while ((rc = sfsi_db_step(q, NULL)) == 1) {
		v = sfsi_db_col_blob(q, 0, &len);
		if (v && memmem(v, len, needle, strlen(needle)))
			n++;
	}
	sfsi_db_finalize(q);
	sfsi_db_put(d);
	return rc < 0 ? -1 : n;
}

int64_t tfx_blob_refs(struct sfs_store *s, int64_t tenant, const char *sha)
{
	struct db *d = NULL;
	struct db_stmt *q;
	int64_t refs = -1;

	if (sfsi_db_get(s, &d, NULL))
		return -2;
	q = sfsi_db_prep(d,
			 "SELECT refs FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2",
			 NULL);
	if (q) {
		sfsi_db_bind_int(q, 1, tenant);
		sfsi_db_bind_text(q, 2, sha);
		if (sfsi_db_step(q, NULL) == 1)
			refs = sfsi_db_col_int(q, 0);
		sfsi_db_reset(q);
	}
	sfsi_db_put(d);
	return refs;
}

int tfx_blob_exists(struct sfs_store *s, int64_t tenant, const char *sha)
{
	struct db *d = NULL;
	struct db_stmt *q;
	int64_t size;
	int present = 0;

	/* a small blob keeps its bytes in its row */
	if (sfsi_db_get(s, &d, NULL))
		return -1;
	q = sfsi_db_prep(d,
			 "SELECT 1 FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2 AND data IS NOT NULL",
			 NULL);
	if (q) {
		sfsi_db_bind_int(q, 1, tenant);
		sfsi_db_bind_text(q, 2, sha);
		present = sfsi_db_step(q, NULL) == 1;
		sfsi_db_reset(q);
	}
	sfsi_db_put(d);
	if (present)
		return 1;
	if (s->blob_be->stat(s, tenant, sha, &present, &size, NULL))
		return -1;
	return present;
}

/* Regular files below `dir` (recursively), skipping names equal to skip. */
static int count_files(const char *dir, const char *skip)
{
	char p[4096];
	struct dirent *de;
	struct stat sb;
	DIR *dh = opendir(dir);
	int n = 0;

	if (!dh)
		return 0;
	while ((de = readdir(dh))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &sb) < 0)
			continue;
		if (S_ISDIR(sb.st_mode))
			n += count_files(p, skip);
		else if (!skip || strcmp(de->d_name, skip))
			n++;
	}
	closedir(dh);
	return n;
}

static int count_blob(void *arg, int64_t tenant, const char *sha, int64_t size,
		      const char *odd)
{
	(void)tenant;
	(void)size;
	if (sha && !odd)
		++*(int *)arg;
	return 0;
}

int tfx_blob_files(struct sfs_store *s)
{
	int n = 0;

	if (s->blob_be->walk(s, count_blob, &n, NULL))
		return -1;
	return n;
}

int tfx_blob_drop(struct sfs_store *s, int64_t tenant, const char *sha)
{
	if (tfx_blob_exists(s, tenant, sha) != 1)
		return -1;
	return s->blob_be->remove(s, tenant, sha, NULL) ? -1 : 0;
}

int tfx_backend_put(struct sfs_store *s, const char *name, const void *data,
		    size_t n)
{
	char p[4096], *slash;
	int fd, ok;

	if (th_s3)
		return sfsi_s3_put_mem(
			       ((struct sfsi_s3_backend *)s->blob_state)->c,
			       name, data, n, NULL)
			       ? -1
			       : 0;
	snprintf(p, sizeof(p), "%s/blobs/%s", sfs_store_dir(s), name);
	slash = strrchr(p, '/');
	*slash = '\0';
	sfsi_mkdirs(p);
	*slash = '/';
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	ok = fd >= 0 && write(fd, data, n) == (ssize_t)n;
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

int tfx_backend_remove(struct sfs_store *s, const char *name)
{
	char p[4096];

	if (th_s3)
		return sfsi_s3_delete(
			       ((struct sfsi_s3_backend *)s->blob_state)->c,
			       name, NULL)
			       ? -1
			       : 0;
	snprintf(p, sizeof(p), "%s/blobs/%s", sfs_store_dir(s), name);
	return unlink(p);
}

int tfx_blob_plant(struct sfs_store *s, int64_t tenant, const char *sha,
		   const void *data, size_t n)
{
	char name[128];

	snprintf(name, sizeof(name), "%lld/%.2s/%s", (long long)tenant, sha,
		 sha);
	return tfx_backend_put(s, name, data, n);
}

int tfx_blob_sha(struct sfs_blob *b, char out[65])
{
	unsigned char buf[65536], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int64_t off = 0;
	size_t got;
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);

	while (ok && off < sfs_blob_size(b)) {
		ok = !sfs_blob_pread(b, buf, sizeof(buf), off, &got, NULL) &&
		     got && EVP_DigestUpdate(ctx, buf, got);
		off += (int64_t)got;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (ok)
		sfsi_hex(md, 32, out);
	return ok ? 0 : -1;
}

void tfx_turn_waits(struct sfs_store *s, int *member, int *plain)
{
	pthread_mutex_lock(&s->write_mu);
	*member = s->grp_wait;
	*plain = s->plain_wait;
	pthread_mutex_unlock(&s->write_mu);
}

void tfx_grp_counts(struct sfs_store *s, int64_t *commits, int64_t *joined)
{
	pthread_mutex_lock(&s->write_mu);
	*commits = s->grp_commits;
	*joined = s->grp_joined;
	pthread_mutex_unlock(&s->write_mu);
}

int tfx_one_waits(void *s)
{
	int member, plain;

	tfx_turn_waits(s, &member, &plain);
	return member + plain >= 1;
}

int tfx_staging_files(const char *store_dir)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/staging", store_dir);
	return count_files(p, "lock");
}

int tfx_rows_without_blob(struct sfs_store *s)
{
	struct db *d = NULL;
	struct db_stmt *q;
	int bad = 0;

	if (sfsi_db_get(s, &d, NULL))
		return -1;
	q = sfsi_db_prep(d,
			 "SELECT tenant_id, sha256 FROM file WHERE blob_ref = 1"
			 " UNION ALL SELECT tenant_id, sha256 FROM blob",
			 NULL);
	while (q && sfsi_db_step(q, NULL) == 1)
		if (tfx_blob_exists(s, sfsi_db_col_int(q, 0),
				    sfsi_db_col_text(q, 1)) != 1)
			bad++;
	sfsi_db_reset(q);
	sfsi_db_put(d);
	return bad;
}
