/*
 * Fixtures the unit tests share: a fresh store in a temporary directory,
 * its tenants and users with their actors, a shell runner for the tests
 * that drive command-line tools, and one SQL reading for the tests that
 * check, on purpose, what a call left in the database.
 */
#ifndef SPEECHFS_TEST_FIXTURE_H
#define SPEECHFS_TEST_FIXTURE_H

#include <stdint.h>
#include "speechfs/auth.h"
#include "speechfs/store.h"

/*
 * Make and open a store in a new temporary directory (cfg may be NULL).
 * 0 on success; otherwise the reason is printed, nothing is left behind
 * and *dir and *s are NULL.
 */
int tfx_store(char **dir, struct sfs_store **s, const struct sfs_config *cfg);

/* Close the store and remove its directory; both become NULL. */
void tfx_store_close(char **dir, struct sfs_store **s);

/* A tenant with quotas (0: none); 0 on success (the reason printed). */
int tfx_tenant(struct sfs_store *s, const char *name, int64_t max_bytes,
	       int64_t max_files, char id[SFS_ID_SIZE]);

/*
 * A user of `tenant` and, when a is not NULL, its actor with every scope;
 * id may be NULL. 0 on success (the reason printed).
 */
int tfx_user(struct sfs_store *s, const char *tenant, const char *name,
	     char *id, struct sfs_actor *a);

/*
 * The first column of the first row of `sql` as an integer (-1 when there
 * is none): for tests that look into the database on purpose.
 */
int64_t tfx_sql_int(struct sfs_store *s, const char *sql);

/* Run a shell command; its exit status (128 when killed, -1 on error). */
int tfx_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
