/*
 * Small blobs kept in the database: a blob of at most blobs.inline_max
 * bytes (64 KiB) is stored in its row (blob.data) instead of a file of blobs/,
 * so that one WAL commit, synced once, makes a small file's bytes and its
 * metadata durable together (a file under blobs/ costs an fsync of the
 * file and one of its directory). Rows are deduplicated and counted as
 * other blobs are; opening one gives a memfd of its bytes, so every
 * reader (the API's downloads, the mount, the encoder) reads a file
 * descriptor as for any blob.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "blob_i.h"
#include "db_i.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"

int sfsi_blob_inline_size(const struct sfs_store *s, int64_t size)
{
	return size >= 0 && size <= s->cfg.blob_inline_max;
}

int sfsi_blob_row_inline(struct db *d, int64_t tenant, const char *sha256)
{
	struct db_stmt *q;
	int rc;

	q = sfsi_db_prep(d,
			 "SELECT 1 FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2 AND data IS NOT NULL",
			 NULL);
	if (!q)
		return 0;
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, sha256);
	rc = sfsi_db_step(q, NULL);
	sfsi_db_reset(q);
	return rc == 1;
}

/* All of the stage's bytes (it is small) into a new buffer. */
static enum sfs_status stage_bytes(struct sfs_stage *st, char **out,
				   struct sfs_err *e)
{
	size_t n = (size_t)st->size, got = 0;
	char *buf = malloc(n ? n : 1);
	ssize_t r;

	if (!buf)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	while (got < n) {
		r = pread(st->fd, buf + got, n - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			return r < 0 ? sfsi_errno_status(e, errno,
							 "reading the stage")
				     : sfs_errf(e, SFS_IO, SFS_R_NONE,
						"the stage is shorter than "
						"it was");
		}
		got += (size_t)r;
	}
	*out = buf;
	return SFS_OK;
}

enum sfs_status sfsi_blob_put_inline(struct db *d, int64_t tenant,
				     struct sfs_stage *st, int64_t *added_bytes,
				     struct sfs_err *e)
{
	struct db_stmt *q;
	enum sfs_status ret;
	char *buf = NULL;

	ret = stage_bytes(st, &buf, e);
	if (ret)
		return ret;
	q = sfsi_db_prep(d,
			 "INSERT INTO blob(tenant_id, sha256, size, refs,"
			 " created_at, data) VALUES (?1, ?2, ?3, 1, ?4, ?5)",
			 e);
	if (!q) {
		ret = e && e->status ? e->status : SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, st->sha);
	sfsi_db_bind_int(q, 3, st->size);
	sfsi_db_bind_int(q, 4, sfs_now_ms());
	sfsi_db_bind_blob(q, 5, buf, (size_t)st->size);
	ret = sfsi_db_run(q, e);
	if (ret)
		goto out;
	q = sfsi_db_prep(d,
			 "UPDATE tenant SET used_bytes = used_bytes + ?2"
			 " WHERE id = ?1",
			 e);
	if (!q) {
		ret = e && e->status ? e->status : SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_int(q, 2, st->size);
	ret = sfsi_db_run(q, e);
	if (!ret) {
		*added_bytes = st->size;
		st->inlined = 1; /* its file may serve again (stage.c) */
	}
out:
	free(buf);
	return ret;
}

/* An fd of exactly these bytes (memfd, at offset 0). */
static enum sfs_status memfd_of(const void *data, size_t n, int *fd,
				struct sfs_err *e)
{
	const char *p = data;
	size_t done = 0;
	ssize_t r;

	*fd = memfd_create("speechfs-blob", MFD_CLOEXEC);
	if (*fd < 0)
		return sfsi_errno_status(e, errno, "memfd_create");
	while (done < n) {
		r = write(*fd, p + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			enum sfs_status ret =
				sfsi_errno_status(e, errno, "memfd");

			close(*fd);
			*fd = -1;
			return ret;
		}
		done += (size_t)r;
	}
	if (lseek(*fd, 0, SEEK_SET) < 0) {
		close(*fd);
		*fd = -1;
		return sfsi_errno_status(e, errno, "memfd");
	}
	return SFS_OK;
}

enum sfs_status sfsi_blob_open_inline(struct sfs_store *s, int64_t tenant,
				      const char *sha256, int *fd,
				      int64_t *size, struct sfs_err *e)
{
	struct db *d = NULL;
	struct db_stmt *q;
	enum sfs_status ret;
	int rc;

	*fd = -1;
	ret = sfsi_db_get(s, &d, e);
	if (ret)
		return ret;
	q = sfsi_db_prep(d,
			 "SELECT data FROM blob WHERE tenant_id = ?1"
			 " AND sha256 = ?2 AND data IS NOT NULL",
			 e);
	if (!q) {
		ret = e && e->status ? e->status : SFS_IO;
		goto out;
	}
	sfsi_db_bind_int(q, 1, tenant);
	sfsi_db_bind_text(q, 2, sha256);
	rc = sfsi_db_step(q, e);
	if (rc == 1) {
		size_t n = 0;
		const void *data = sfsi_db_col_blob(q, 0, &n);

		ret = memfd_of(data, n, fd, e);
		if (!ret && size)
			*size = (int64_t)n;
	} else if (rc == 0) {
		ret = sfs_errf(e, SFS_GONE, SFS_R_NONE,
			       "the content is not available");
	} else {
		ret = e && e->status ? e->status : SFS_IO;
	}
	sfsi_db_reset(q);
out:
	sfsi_db_put(d);
	return ret;
}
