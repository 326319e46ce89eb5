/*
 * The local blob backend: blobs are files blobs/<tenant>/<aa>/<sha256> of
 * the store directory, made durable in the order fsync(stage) -> link
 * into blobs/ -> fsync(directory) before their row is written, and read
 * straight from their file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blob_i.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"

void sfsi_blob_path(struct sfs_store *s, int64_t tenant, const char *sha256,
		    char *out, size_t size)
{
	snprintf(out, size, "%s/%lld/%.2s/%s", s->blob_dir, (long long)tenant,
		 sha256, sha256);
}

static enum sfs_status local_open(struct sfs_store *s, struct sfs_err *e)
{
	(void)s;
	(void)e;
	return SFS_OK;
}

static void local_close(struct sfs_store *s)
{
	(void)s;
}

static enum sfs_status local_prepare(struct sfs_store *s, int64_t tenant,
				     struct sfs_stage *st, int known,
				     struct sfs_err *e)
{
	(void)s;
	(void)tenant;
	/* known bytes are on disk already: the stage will be dropped */
	return known ? SFS_OK : sfs_stage_finish(st, e);
}

static enum sfs_status shard_dir(struct sfs_store *s, int64_t tenant,
				 const char *sha256, char *out, size_t size,
				 struct sfs_err *e)
{
	char tdir[4096];

	snprintf(tdir, sizeof(tdir), "%s/%lld", s->blob_dir, (long long)tenant);
	snprintf(out, size, "%s/%.2s", tdir, sha256);
	if (access(out, F_OK) == 0)
		return SFS_OK;
	if (mkdir(tdir, 0755) == 0)
		sfsi_fsync_dir(s->blob_dir);
	else if (errno != EEXIST)
		return sfsi_errno_status(e, errno, "making a blob directory");
	if (mkdir(out, 0755) == 0)
		sfsi_fsync_dir(tdir);
	else if (errno != EEXIST)
		return sfsi_errno_status(e, errno, "making a blob directory");
	return SFS_OK;
}

static enum sfs_status local_store(struct sfs_store *s, int64_t tenant,
				   struct sfs_stage *st, struct sfs_err *e)
{
	char dir[4096], path[4096];
	enum sfs_status ret;

	ret = sfs_stage_finish(st, e);
	if (!ret)
		ret = shard_dir(s, tenant, st->sha, dir, sizeof(dir), e);
	if (ret)
		return ret;
	sfsi_blob_path(s, tenant, st->sha, path, sizeof(path));
	if (link(st->path, path) < 0) {
		if (errno != EEXIST)
			return sfsi_errno_status(e, errno, "linking a blob");
		/* no row, so the file is an orphan of a crashed commit */
		if (unlink(path) < 0 || link(st->path, path) < 0)
			return sfsi_errno_status(e, errno, "linking a blob");
	}
	if (sfsi_fsync_dir(dir) < 0) {
		ret = sfsi_errno_status(e, errno, "syncing a blob directory");
		unlink(path);
		return ret;
	}
	return SFS_OK;
}

static enum sfs_status local_stat(struct sfs_store *s, int64_t tenant,
				  const char *sha, int *present, int64_t *size,
				  struct sfs_err *e)
{
	char path[4096];
	struct stat sb;

	(void)e;
	sfsi_blob_path(s, tenant, sha, path, sizeof(path));
	*size = -1;
	if (stat(path, &sb) == 0) {
		*present = 1;
		*size = sb.st_size;
	} else {
		/* only "no such file" says absent; else assume it is there */
		*present = errno != ENOENT;
	}
	return SFS_OK;
}

static enum sfs_status local_remove(struct sfs_store *s, int64_t tenant,
				    const char *sha, struct sfs_err *e)
{
	char path[4096];

	sfsi_blob_path(s, tenant, sha, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		return sfsi_errno_status(e, errno, "removing a blob");
	return SFS_OK;
}

/* ---- reading: the blob's own file ---- */

static enum sfs_status fd_pread(struct sfs_blob *b, void *buf, size_t len,
				int64_t off, size_t *got, struct sfs_err *e)
{
	ssize_t n = pread(b->fd, buf, len, off);

	if (n < 0)
		return sfsi_errno_status(e, errno, "reading a blob");
	*got = (size_t)n;
	return SFS_OK;
}

static void fd_close(struct sfs_blob *b)
{
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

static const struct sfsi_blob_ops fd_ops = {
	.pread = fd_pread,
	.url = sfsi_blob_no_url,
	.close = fd_close,
};

enum sfs_status sfsi_blob_open_fd(int fd, int64_t tenant, const char *sha,
				  struct sfs_blob **out, struct sfs_err *e)
{
	struct sfs_blob *b;
	struct stat sb;

	*out = NULL;
	if (fstat(fd, &sb) < 0) {
		enum sfs_status ret =
			sfsi_errno_status(e, errno, "stat of a blob");

		close(fd);
		return ret;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	b->ops = &fd_ops;
	b->tenant = tenant;
	sfs_strlcpy(b->sha, sha, sizeof(b->sha));
	b->fd = fd;
	/* the file is the truth: it is what a reader gets */
	b->size = sb.st_size;
	*out = b;
	return SFS_OK;
}

static enum sfs_status local_open_blob(struct sfs_store *s, int64_t tenant,
				       const char *sha, int64_t size,
				       unsigned flags, struct sfs_blob **out,
				       struct sfs_err *e)
{
	char path[4096];
	int fd;

	(void)size;
	(void)flags;
	*out = NULL;
	sfsi_blob_path(s, tenant, sha, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		sfs_error("blob", "cannot open blob '%s': %s", sha,
			  strerror(err));
		return sfs_errf(e, err == ENOENT ? SFS_GONE : SFS_IO,
				SFS_R_NONE, "the content is not available");
	}
	return sfsi_blob_open_fd(fd, tenant, sha, out, e);
}

/* ---- the walk over blobs/ (fsck) ---- */

struct walk {
	struct sfs_store *s;
	sfsi_blob_each each;
	void *arg;
};

static int regular_entry(const char *dir, const struct dirent *de)
{
	char path[4096];
	struct stat sb;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_REG;
	snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
	return lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static enum sfs_status walk_shard(struct walk *w, int64_t tenant,
				  const char *dir, const char *shard,
				  struct sfs_err *e)
{
	char odd[256];
	struct dirent *de;
	DIR *dh;
	int rc = 0;

	dh = opendir(dir);
	if (!dh)
		return sfsi_errno_status(e, errno, "opening a blob directory");
	while (!rc && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		if (!regular_entry(dir, de) ||
		    !sfsi_is_sha256_hex(de->d_name) ||
		    strncmp(de->d_name, shard, 2)) {
			snprintf(odd, sizeof(odd), "blobs/%lld/%s/%s",
				 (long long)tenant, shard, de->d_name);
			rc = w->each(w->arg, tenant, NULL, 0, odd);
		} else {
			rc = w->each(w->arg, tenant, de->d_name, -1, NULL);
		}
	}
	closedir(dh);
	return (enum sfs_status)rc;
}

static enum sfs_status walk_tenant(struct walk *w, int64_t tenant,
				   const char *dir, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;
	char path[4096], odd[256];
	struct dirent *de;
	struct stat sb;
	DIR *dh;

	dh = opendir(dir);
	if (!dh)
		return sfsi_errno_status(e, errno, "opening a blob directory");
	while (!ret && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (strlen(de->d_name) != 2 || stat(path, &sb) < 0 ||
		    !S_ISDIR(sb.st_mode)) {
			snprintf(odd, sizeof(odd), "blobs/%lld/%s",
				 (long long)tenant, de->d_name);
			ret = (enum sfs_status)w->each(w->arg, tenant, NULL, 0,
						       odd);
			continue;
		}
		ret = walk_shard(w, tenant, path, de->d_name, e);
	}
	closedir(dh);
	return ret;
}

static enum sfs_status local_walk(struct sfs_store *s, sfsi_blob_each each,
				  void *arg, struct sfs_err *e)
{
	struct walk w = { s, each, arg };
	enum sfs_status ret = SFS_OK;
	char path[4096], odd[256];
	struct dirent *de;
	struct stat sb;
	int64_t tenant;
	DIR *dh;

	dh = opendir(s->blob_dir);
	if (!dh)
		return sfsi_errno_status(e, errno, "opening blobs/");
	while (!ret && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", s->blob_dir, de->d_name);
		if (sfs_parse_i64(de->d_name, &tenant) || stat(path, &sb) < 0 ||
		    !S_ISDIR(sb.st_mode)) {
			snprintf(odd, sizeof(odd), "blobs/%s", de->d_name);
			ret = (enum sfs_status)each(arg, 0, NULL, 0, odd);
			continue;
		}
		ret = walk_tenant(&w, tenant, path, e);
	}
	closedir(dh);
	return ret;
}

const struct sfsi_blob_backend sfsi_blob_local = {
	.name = "local",
	.open = local_open,
	.close = local_close,
	.prepare = local_prepare,
	.store = local_store,
	.stat = local_stat,
	.remove = local_remove,
	.open_blob = local_open_blob,
	.walk = local_walk,
	.sweep = NULL,
};
