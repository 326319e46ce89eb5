/*
 * Staging directories, one per process under staging/ (a remote store's:
 * under its cache directory), each locked while its process lives
 * (sfsi_staging_open, _close), and recovery at store open: the
 * directories of processes that died are removed, and the blobs their
 * unfinished commits left behind. The stages written inside them are
 * stage.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "blob_i.h"
#include "db_i.h"
#include "speechfs/log.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"
/* ---- staging directories and recovery -------------------------------- */

/*
 * The directory is made and locked under a hidden name and renamed into
 * place, so another process's recovery never sees it unlocked.
 */
enum sfs_status sfsi_staging_open(struct sfs_store *s, const char *root,
				  struct sfs_err *e)
{
	unsigned char r[6];
	char hex[13], path[4096], tmp[4096];

	if (sfsi_random(r, sizeof(r)))
		return sfs_errf(e, SFS_IO, SFS_R_NONE, "no randomness");
	sfsi_hex(r, sizeof(r), hex);
	snprintf(tmp, sizeof(tmp), "%s/.new-%d-%s", root, (int)getpid(), hex);
	snprintf(path, sizeof(path), "%s/%d-%s", root, (int)getpid(), hex);
	if (mkdir(tmp, 0700) < 0)
		return sfsi_errno_status(e, errno,
					 "making a staging directory");
	s->staging_dir = strdup(tmp);
	snprintf(tmp, sizeof(tmp), "%s/lock", s->staging_dir);
	s->staging_lock_fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (!s->staging_dir || s->staging_lock_fd < 0 ||
	    flock(s->staging_lock_fd, LOCK_EX | LOCK_NB) < 0)
		return sfsi_errno_status(e, errno, "locking the staging area");
	if (rename(s->staging_dir, path) < 0)
		return sfsi_errno_status(e, errno, "naming the staging area");
	free(s->staging_dir);
	s->staging_dir = strdup(path);
	if (!s->staging_dir)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	return SFS_OK;
}

/* A hidden staging directory left by a process that died while opening. */
static int stale_new_dir(const char *dir)
{
	struct stat sb;

	return stat(dir, &sb) == 0 && sb.st_mtime + 60 < time(NULL);
}

static int is_dir(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void clean_dir(const char *path)
{
	DIR *dh = opendir(path);
	struct dirent *de;
	char p[4096];

	if (!dh)
		return;
	while ((de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		unlink(p);
	}
	closedir(dh);
	rmdir(path);
}

void sfsi_staging_close(struct sfs_store *s)
{
	sfsi_stage_spares_close(s);
	if (s->staging_dir)
		clean_dir(s->staging_dir);
	if (s->staging_lock_fd >= 0)
		close(s->staging_lock_fd);
	s->staging_lock_fd = -1;
}

/*
 * A named stage "<tenant>-<sha>-<n>.stage" of a dead process: if its
 * commit never happened, the bytes the backend may hold for it are
 * orphans. A backend that cannot be reached now leaves them for fsck.
 */
static void recover_named(void *arg, const char *name)
{
	struct db *d = arg;
	struct sfs_err e;
	char sha[65];
	long long tenant;
	int removed = 0;

	if (sscanf(name, "%lld-%64[0-9a-f].stage", &tenant, sha) != 2 ||
	    !sfsi_is_sha256_hex(sha))
		return;
	sfs_err_init(&e);
	if (sfsi_blob_remove_unreferenced(d, tenant, sha, &removed, &e))
		sfs_warn("blob",
			 "cannot check blob '%s' of an unfinished commit "
			 "(left for fsck): %s",
			 sha, e.message);
	else if (removed)
		sfs_info("blob", "removed blob '%s' of an unfinished commit",
			 sha);
}

/*
 * Is blob (tenant, sha) on its way in a live process: its named stage in
 * a locked staging directory (ours included)? Its bytes may be in the
 * backend already while its commit is still to come.
 */
int sfsi_staging_in_flight(struct sfs_store *s, int64_t tenant, const char *sha)
{
	char root[4096], p[4096], name[128];
	struct dirent *de, *fe;
	int fd, found = 0, has;
	DIR *dh, *fh;

	snprintf(name, sizeof(name), "%lld-%s-", (long long)tenant, sha);
	snprintf(root, sizeof(root), "%s/staging", s->dir);
	dh = opendir(root);
	while (!found && dh && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", root, de->d_name);
		fh = opendir(p);
		has = 0;
		while (fh && !has && (fe = readdir(fh)))
			has = !strncmp(fe->d_name, name, strlen(name));
		if (fh)
			closedir(fh);
		if (!has)
			continue;
		snprintf(p, sizeof(p), "%s/%s/lock", root, de->d_name);
		fd = open(p, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		found = (s->staging_dir &&
			 !strncmp(p, s->staging_dir, strlen(s->staging_dir))) ||
			flock(fd, LOCK_EX | LOCK_NB) < 0;
		close(fd);
	}
	if (dh)
		closedir(dh);
	return found;
}

int sfsi_staging_held(const char *root, const char *mine)
{
	char lock[4096];
	struct dirent *de;
	int fd, n = 0;
	DIR *dh;

	dh = opendir(root);
	while (dh && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(lock, sizeof(lock), "%s/%s/lock", root, de->d_name);
		if (mine && !strncmp(lock, mine, strlen(mine)))
			continue; /* ours */
		fd = open(lock, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0)
			n++;
		close(fd);
	}
	if (dh)
		closedir(dh);
	return n;
}

/* How many other processes have the store open (their staging locked). */
int sfsi_staging_others(struct sfs_store *s)
{
	char root[4096];

	snprintf(root, sizeof(root), "%s/staging", s->dir);
	return sfsi_staging_held(root, s->staging_dir);
}

int sfsi_staging_sweep(const char *root,
		       void (*named)(void *arg, const char *name), void *arg)
{
	char dir[4096], lock[4096];
	struct dirent *de, *fe;
	DIR *dh, *fh;
	int fd;

	dh = opendir(root);
	if (!dh)
		return -1;
	while ((de = readdir(dh))) {
		snprintf(dir, sizeof(dir), "%s/%s", root, de->d_name);
		if (de->d_name[0] == '.' &&
		    (strncmp(de->d_name, ".new-", 5) || !stale_new_dir(dir)))
			continue;
		snprintf(lock, sizeof(lock), "%s/lock", dir);
		fd = open(lock, O_RDWR | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd); /* its process is alive */
			continue;
		}
		fh = named ? opendir(dir) : NULL;
		while (fh && (fe = readdir(fh)))
			if (strstr(fe->d_name, ".stage"))
				named(arg, fe->d_name);
		if (fh)
			closedir(fh);
		if (is_dir(dir)) {
			clean_dir(dir);
			sfs_info("blob", "removed stale staging '%s'",
				 de->d_name);
		}
		if (fd >= 0)
			close(fd);
	}
	closedir(dh);
	return 0;
}

enum sfs_status sfsi_staging_recover(struct sfs_store *s, struct sfs_err *e)
{
	char root[4096];
	struct db *d = NULL;
	enum sfs_status ret;

	snprintf(root, sizeof(root), "%s/staging", s->dir);
	ret = sfsi_db_get(s, &d, e);
	if (!ret && sfsi_staging_sweep(root, recover_named, d) < 0)
		ret = sfsi_errno_status(e, errno, "opening staging/");
	sfsi_db_put(d);
	return ret;
}
