/* The unit tests' shared fixtures (fixture.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "db_i.h"
#include "fixture.h"
#include "testhelp.h"

int tfx_store(char **dir, struct sfs_store **s, const struct sfs_config *cfg)
{
	struct sfs_err e;

	sfs_err_init(&e);
	*s = NULL;
	*dir = th_tmpdir();
	if (sfs_store_init(*dir, &e) || sfs_store_open(*dir, cfg, s, &e)) {
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
