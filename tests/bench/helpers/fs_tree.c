/*
 * A helper of bench_fs.py, not a benchmark: fill a store user's tree with
 * NFILES empty files spread over NDIRS directories (/tree/dNNNN/), through
 * core's bulk create, so the `find` benchmark needs no slow creation
 * through the mount. Built by bench_fs.py (outside make's bench list).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "speechfs/auth.h"
#include "speechfs/file.h"
#include "speechfs/store.h"

#define BATCH 2000

static long arg_long(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);

	return *end || n <= 0 ? -1 : n;
}

int main(int argc, char **argv)
{
	static struct sfs_file_spec specs[BATCH];
	static char names[BATCH][32], fnames[BATCH][32], paths[BATCH][32];
	struct sfs_store *s = NULL;
	struct sfs_actor a;
	struct sfs_err e;
	long ndirs, nfiles, per, i = 0, k, m;
	int rc = 1;

	if (argc != 5 || (ndirs = arg_long(argv[3])) < 0 ||
	    (nfiles = arg_long(argv[4])) < 0) {
		fprintf(stderr, "usage: fs_tree STORE USER_ID NDIRS NFILES\n");
		return 2;
	}
	per = (nfiles + ndirs - 1) / ndirs;
	sfs_err_init(&e);
	if (sfs_store_open(argv[1], NULL, &s, &e) ||
	    sfs_auth_user(s, argv[2], SFS_SCOPE_ALL, &a, &e))
		goto out;
	while (i < nfiles) {
		m = nfiles - i < BATCH ? nfiles - i : BATCH;
		for (k = 0; k < m; k++, i++) {
			snprintf(names[k], sizeof(names[k]), "f%07ld", i);
			snprintf(fnames[k], sizeof(fnames[k]), "f%07ld.txt", i);
			snprintf(paths[k], sizeof(paths[k]), "/tree/d%04ld/",
				 i / per);
			memset(&specs[k], 0, sizeof(specs[k]));
			specs[k].name = names[k];
			specs[k].filename = fnames[k];
			specs[k].path = paths[k];
		}
		sfs_err_init(&e);
		if (sfs_file_create_many(s, &a, specs, (size_t)m, &e))
			goto out;
	}
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "fs_tree: %s\n", e.message);
	sfs_store_close(s);
	return rc;
}
