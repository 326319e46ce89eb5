/*
 * Stages: the files that uploads, mount writes, imports and encodes write
 * into under staging/<process>/, hashed (SHA-256) as the bytes pass, in
 * two threads of their own for big sequential writes (stage_pipe.c). A
 * finished stage is synced and hashed; blob.c turns it into a blob. The
 * staging directory of each process is locked, so recovery never touches
 * a live one (the directories and recovery: staging.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blob_i.h"
#include "crc32c_i.h"
#include "remote_i.h"
#include "speechfs/log.h"
#include "stage_i.h"
#include "store_i.h"
#include "util_i.h"

#define IO_CHUNK (128 * 1024)
#define WRITEBACK_CHUNK (8 << 20) /* start writeback this often */
#define WRITEBACK_KEEP 3	  /* chunks of dirty cache kept (see below) */

/* Stages start inline and turn to the pipeline (stage_pipe.c) past this. */
#define PIPE_START (4 << 20)

static void stage_name(struct sfs_stage *st, char *out, size_t n,
		       const char *suffix)
{
	unsigned char r[8];
	char hex[17];

	if (sfsi_random(r, sizeof(r)))
		memset(r, 0, sizeof(r));
	sfsi_hex(r, sizeof(r), hex);
	snprintf(out, n, "%s/%s%s", st->s->staging_dir, hex, suffix);
}

/*
 * Spare stage files: a stage whose bytes went into the database (a small
 * content, sfsi_blob_put_inline) leaves its file, emptied, for the next
 * stage of the process. A new file under staging/ per stage cost an
 * inode each, and ext4 without a journal (these machines' root file
 * system) passes over every inode freed in the last minute or more when
 * it picks one (recently_deleted): in perf of 1,000 durable creates
 * through the mount, the open() of the stage took 15 % of the mount's
 * CPU, and it grows with the rate of creates (and of any deletes nearby).
 * A remote store's stage is sent (or dropped) before it is freed: each
 * leaves its file too (the open and unlink were 12 % of a remote mount's
 * CPU per small create). The files are closed and removed with the
 * staging directory, or by the remote store's close.
 */
#define STAGE_SPARES 16
#define PART ".part"

static pthread_mutex_t spare_files_mu = PTHREAD_MUTEX_INITIALIZER;
static struct spare_file {
	const struct sfs_store *s;
	int fd;
	char name[24]; /* under the store's staging directory */
} spare_files[STAGE_SPARES];

/* An emptied stage file of the store for st, or 0. */
static int spare_take(struct sfs_stage *st)
{
	size_t i;
	int got = 0;

	pthread_mutex_lock(&spare_files_mu);
	for (i = 0; i < STAGE_SPARES && !got; i++) {
		if (spare_files[i].s != st->s)
			continue;
		st->fd = spare_files[i].fd;
		snprintf(st->path, sizeof(st->path), "%s/%s",
			 st->s->staging_dir, spare_files[i].name);
		spare_files[i].s = NULL;
		got = 1;
	}
	pthread_mutex_unlock(&spare_files_mu);
	return got;
}

/*
 * Keep st's file as a spare: still its anonymous name, linked nowhere
 * else (a blob of blobs/ is a link of a named stage), emptied; 1 if so.
 */
static int spare_give(struct sfs_stage *st)
{
	size_t dirlen, i;
	const char *name;
	struct stat sb;
	int kept = 0;

	/* not after sfsi_staging_close: the table would outlive the store */
	if (st->fd < 0 || !st->s->staging_dir ||
	    (!st->s->ops && st->s->staging_lock_fd < 0))
		return 0;
	dirlen = strlen(st->s->staging_dir);
	name = st->path + dirlen + 1;
	if (strncmp(st->path, st->s->staging_dir, dirlen) ||
	    st->path[dirlen] != '/' ||
	    strlen(name) >= sizeof(spare_files[0].name) ||
	    strlen(name) < sizeof(PART) ||
	    strcmp(name + strlen(name) - (sizeof(PART) - 1), PART))
		return 0;
	if (fstat(st->fd, &sb) < 0 || sb.st_nlink != 1 ||
	    ftruncate(st->fd, 0) < 0 || lseek(st->fd, 0, SEEK_SET) < 0)
		return 0;
	pthread_mutex_lock(&spare_files_mu);
	for (i = 0; i < STAGE_SPARES && !kept; i++) {
		if (spare_files[i].s)
			continue;
		spare_files[i].s = st->s;
		spare_files[i].fd = st->fd;
		sfs_strlcpy(spare_files[i].name, name,
			    sizeof(spare_files[i].name));
		kept = 1;
	}
	pthread_mutex_unlock(&spare_files_mu);
	return kept;
}

/* The store's spare files closed and removed. */
void sfsi_stage_spares_close(const struct sfs_store *s)
{
	char path[4096];
	size_t i;

	pthread_mutex_lock(&spare_files_mu);
	for (i = 0; i < STAGE_SPARES; i++)
		if (spare_files[i].s == s) {
			close(spare_files[i].fd);
			snprintf(path, sizeof(path), "%s/%s", s->staging_dir,
				 spare_files[i].name);
			unlink(path);
			spare_files[i].s = NULL;
		}
	pthread_mutex_unlock(&spare_files_mu);
}

/* A stage with no file yet; NULL without memory. */
static struct sfs_stage *stage_alloc(struct sfs_store *s)
{
	struct sfs_stage *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->s = s;
	st->fd = -1;
	st->limit = INT64_MAX;
	st->fpin = -1;
	pthread_mutex_init(&st->fmu, NULL);
	/* monotonic: the window's timed wait (sfs_stage_window_wait) */
	sfs_cond_init_mono(&st->fcv);
	return st;
}

enum sfs_status sfs_stage_new(struct sfs_store *s, struct sfs_stage **out,
			      struct sfs_err *e)
{
	struct sfs_stage *st;

	*out = NULL;
	st = stage_alloc(s);
	if (!st)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (spare_take(st))
		goto opened;
	stage_name(st, st->path, sizeof(st->path), PART);
	st->fd = open(st->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (st->fd < 0) {
		enum sfs_status ret = sfsi_errno_status(e, errno, "staging");

		sfs_error("blob", "cannot create '%s': %s", st->path,
			  strerror(errno));
		free(st);
		return ret;
	}
opened:
	st->crc_only = s->ops && (sfsi_remote_has(s) & SFS_REMOTE_CRC32C);
	st->md = EVP_MD_CTX_new();
	if (!st->md || !EVP_DigestInit_ex(st->md, EVP_sha256(), NULL)) {
		sfs_stage_free(st);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	*out = st;
	return SFS_OK;
}

/* The first `off` bytes of st's file through its hashes. */
static enum sfs_status hash_prefix(struct sfs_stage *st, int64_t off,
				   struct sfs_err *e)
{
	unsigned char buf[IO_CHUNK];
	int64_t at = 0;
	ssize_t n;

	posix_fadvise(st->fd, 0, off, POSIX_FADV_SEQUENTIAL);
	while (at < off) {
		n = pread(st->fd, buf,
			  off - at < IO_CHUNK ? (size_t)(off - at) : IO_CHUNK,
			  at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sfsi_errno_status(e, errno, "reading a stage");
		if (n == 0)
			return sfs_errf(e, SFS_IO, SFS_R_NONE,
					"the stage's file is shorter than %lld "
					"bytes",
					(long long)off);
		EVP_DigestUpdate(st->md, buf, (size_t)n);
		st->crc = sfsi_crc32c(st->crc, buf, (size_t)n);
		at += n;
	}
	return SFS_OK;
}

enum sfs_status sfsi_stage_open_at(struct sfs_store *s, const char *path,
				   int fd, int64_t off, const EVP_MD_CTX *md,
				   uint32_t crc, struct sfs_stage **out,
				   struct sfs_err *e)
{
	struct sfs_stage *st;
	enum sfs_status ret;

	*out = NULL;
	st = stage_alloc(s);
	if (!st) {
		close(fd);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	st->keep_file = 1;    /* until it is the stage's to drop */
	st->stream_tried = 1; /* not followed: it starts in the middle */
	sfs_strlcpy(st->path, path, sizeof(st->path));
	st->fd = fd;
	st->md = EVP_MD_CTX_new();
	if (!st->md || !EVP_DigestInit_ex(st->md, EVP_sha256(), NULL))
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	else if (ftruncate(st->fd, off) < 0)
		ret = sfsi_errno_status(e, errno, "cutting a stage");
	else if (!md)
		ret = hash_prefix(st, off, e);
	else if (!EVP_MD_CTX_copy_ex(st->md, md))
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	else
		ret = SFS_OK;
	if (md)
		st->crc = crc;
	if (!ret && lseek(st->fd, off, SEEK_SET) < 0)
		ret = sfsi_errno_status(e, errno, "seeking a stage");
	if (ret) {
		sfs_stage_free(st);
		return ret;
	}
	st->size = st->written = st->synced = st->dropped = off;
	st->durable = off;
	*out = st;
	return SFS_OK;
}

void sfs_stage_set_target(struct sfs_stage *st, const char *file_id,
			  unsigned flags)
{
	sfs_strlcpy(st->target, file_id ? file_id : "", sizeof(st->target));
	st->target_flags = flags;
}

/*
 * Big and in order: the blob backend, or a remote store (its table's
 * stream), may send the stage as it comes.
 */
static void stream_start(struct sfs_stage *st)
{
	struct sfs_store *s = st->s;

	if (s->ops && s->ops->stage_stream)
		s->ops->stage_stream(s, st);
	else if (!s->ops && s->blob_be && s->blob_be->stream)
		s->blob_be->stream(s, st);
}

static void stream_free(struct sfs_stage *st)
{
	struct sfs_store *s = st->s;

	if (!st->stream)
		return;
	if (s->ops && s->ops->stage_stream_free)
		s->ops->stage_stream_free(s, st);
	else if (!s->ops && s->blob_be && s->blob_be->stream_free)
		s->blob_be->stream_free(s, st);
}

/*
 * Before the stage's file is written out of order: a remote stream may
 * have freed its start (remote_parts.c), which comes back first
 * (SFS_WOULD_WAIT: nothing changed, ask again where it may wait).
 */
static enum sfs_status stage_whole(struct sfs_stage *st, struct sfs_err *e)
{
	if (!st->s->ops || !st->stream)
		return SFS_OK;
	return sfsi_remote_stream_whole(st, e);
}

/*
 * Before the stage's file is cut to 0: nothing is freed any more, and
 * what was stays freed (st->freed: read from the session) until the cut
 * has made it go; no download of what is thrown away (re-read s24 B2).
 */
static void stage_unfreed(struct sfs_stage *st)
{
	if (!st->s->ops || !st->stream)
		return;
	pthread_mutex_lock(&st->fmu);
	st->whole = 1;
	pthread_mutex_unlock(&st->fmu);
}

void sfs_stage_set_limit(struct sfs_stage *st, int64_t max_bytes)
{
	st->limit = max_bytes > 0 ? max_bytes : INT64_MAX;
}

enum sfs_status sfsi_stage_write_all(int fd, const void *data, size_t len,
				     int64_t off, struct sfs_err *e)
{
	const char *p = data;

	while (len) {
		ssize_t n =
			off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sfsi_errno_status(e, errno, "writing the stage");
		}
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return SFS_OK;
}

/*
 * Start writeback of each WRITEBACK_CHUNK as it fills, so the final fsync
 * is short; and once a chunk WRITEBACK_KEEP chunks back is on the disk,
 * drop it from the page cache. An upload then recycles a few dozen MiB of
 * cache pages instead of claiming fresh ones for every byte (on this kind
 * of virtual machine, first touches of memory are what write() spends
 * its time on). Durability is unchanged: finish still fsyncs everything.
 *
 * Not while a memory follower reads the stage (a remote mount's stream
 * of new content): that stage is never synced (the server holds the
 * bytes when close() returns), its file is only a copy kept for a
 * resend and for reads of the file while it is written, and it is freed
 * (emptied as a spare, or unlinked) once the server has answered, which
 * drops its pages unwritten. Written back, or around the page cache
 * (O_DIRECT, as it was until 2026-12-05), it cost the disk a second
 * GiB per GiB streamed beside the server's own copy, on the one disk of
 * these machines (~700 MB/s): the `cp` of 1 GiB into a remote mount
 * went at half of curl's upload, its pipe's writer waiting for the disk
 * (`D` state in the O_DIRECT write for 0.1-0.7 s at a time while the
 * server sat idle). Its pages stay dirty until then, bounded by the
 * kernel's own dirty limits (past those it writes them as any file's).
 */
void sfsi_stage_writeback(struct sfs_stage *st, int drop)
{
	int64_t old;

	if (st->written - st->synced < WRITEBACK_CHUNK ||
	    sfsi_stage_follower_at(st) != INT64_MAX)
		return;
	sync_file_range(st->fd, st->synced, st->written - st->synced,
			SYNC_FILE_RANGE_WRITE);
	st->synced = st->written;
	if (!drop)
		return;
	old = st->synced - (int64_t)WRITEBACK_KEEP * WRITEBACK_CHUNK;
	if (old <= st->dropped)
		return;
	if (sync_file_range(st->fd, st->dropped, old - st->dropped,
			    SYNC_FILE_RANGE_WAIT_BEFORE |
				    SYNC_FILE_RANGE_WRITE |
				    SYNC_FILE_RANGE_WAIT_AFTER) == 0)
		posix_fadvise(st->fd, st->dropped, old - st->dropped,
			      POSIX_FADV_DONTNEED);
	st->dropped = old;
}

enum sfs_status sfs_stage_write(struct sfs_stage *st, const void *data,
				size_t len, struct sfs_err *e)
{
	enum sfs_status ret;

	if (st->hashed)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"stage already finished");
	if ((int64_t)len > st->limit - st->size)
		return sfs_errf(e, SFS_TOO_LARGE, SFS_R_NONE,
				"more than %lld bytes", (long long)st->limit);
	if (!st->random && !st->stream_tried && st->size >= PIPE_START) {
		st->stream_tried = 1;
		stream_start(st); /* may set follow_mem */
	}
	if (!st->random && !st->pipe && st->size >= PIPE_START)
		sfsi_stage_pipe_start(st, st->stream && st->s->ops
						  ? sfsi_remote_stream_ring(st)
						  : 0);
	if (st->stream)
		sfs_stage_window_wait(st, len);
	if (st->pipe) {
		ret = sfsi_stage_pipe_write(st, data, len, e);
		if (ret)
			return ret;
		st->size += (int64_t)len;
		if (st->upload)
			sfsi_upload_received(st);
		return SFS_OK;
	}
	if (st->random)
		ret = sfsi_stage_write_all(st->fd, data, len, st->size, e);
	else
		ret = sfsi_stage_write_all(st->fd, data, len, -1, e);
	if (ret)
		return ret;
	if (!st->random && !st->crc_only)
		EVP_DigestUpdate(st->md, data, len);
	if (!st->random)
		st->crc = sfsi_crc32c(st->crc, data, len);
	st->size += (int64_t)len;
	st->written = st->size;
	if (st->upload) {
		sfsi_upload_received(st);
		sfsi_upload_written(st);
	}
	if (!st->random)
		sfsi_stage_followers(st, st->written, 0);
	/* a random stage is read back to hash it: keep its cache */
	sfsi_stage_writeback(st, !st->random);
	return SFS_OK;
}

enum sfs_status sfs_stage_pwrite(struct sfs_stage *st, const void *data,
				 size_t len, int64_t off, struct sfs_err *e)
{
	enum sfs_status ret;

	if (st->hashed)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"stage already finished");
	if (off < 0)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "negative offset");
	if (off > st->limit || (int64_t)len > st->limit - off)
		return sfs_errf(e, SFS_TOO_LARGE, SFS_R_NONE,
				"more than %lld bytes", (long long)st->limit);
	if (!st->random && off == st->size)
		return sfs_stage_write(st, data, len, e);
	ret = stage_whole(st, e);
	if (ret)
		return ret;
	sfsi_stage_followers(st, 0, 1); /* first: the pipe waits for none */
	ret = sfsi_stage_pipe_end(st, e);
	if (ret)
		return ret;
	st->random = 1;
	sfsi_stage_followers(st, 0, 1);
	ret = sfsi_stage_write_all(st->fd, data, len, off, e);
	if (ret)
		return ret;
	if (off + (int64_t)len > st->size)
		st->size = off + (int64_t)len;
	st->written = st->size;
	return SFS_OK;
}

/* Up to len bytes of st's file at off (fewer only at its end). */
static enum sfs_status pread_file(struct sfs_stage *st, char *data, size_t len,
				  int64_t off, size_t *got, struct sfs_err *e)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(st->fd, data + done, len - done,
				  off + (int64_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sfsi_errno_status(e, errno, "reading the stage");
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return SFS_OK;
}

/* The stage's freed offset (under fmu: the poller moves it). */
static int64_t freed_now(struct sfs_stage *st)
{
	int64_t freed;

	pthread_mutex_lock(&st->fmu);
	freed = st->freed;
	pthread_mutex_unlock(&st->fmu);
	return freed;
}

/*
 * A read of a stage its remote stream frees (re-read s23 B1): what is at
 * or above freed from the file, what is below it from the stream's
 * session, that range only; the window goes on, nothing is brought back
 * whole. The file is read without fmu, which the sender, the poller and
 * the ring's writer take for every slot (re-read s24 B3: they waited for
 * the read's disk I/O): a punch may run during the read, but only below
 * the freed it sets, so what the read got below the freed seen after it
 * is read again from the session; bytes above that were not touched.
 */
static enum sfs_status pread_freed(struct sfs_stage *st, char *data, size_t len,
				   int64_t off, size_t *got, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;
	size_t done = 0, n, part = 0;
	int64_t freed, at;
	int filed = 0; /* [off + done, off + len) read from the file */

	if (off >= st->size)
		len = 0;
	else if ((int64_t)len > st->size - off)
		len = (size_t)(st->size - off);
	while (!ret && done < len) {
		at = off + (int64_t)done;
		freed = freed_now(st);
		if (at < freed) {
			n = len - done;
			if ((int64_t)n > freed - at)
				n = (size_t)(freed - at);
			ret = sfsi_remote_stream_read(st, data + done, n, at,
						      e);
			if (!ret)
				done += n;
		} else if (filed) {
			done = len; /* at or above every freed since */
		} else {
			ret = pread_file(st, data + done, len - done, at, &part,
					 e);
			len = done + part; /* fewer only at the file's end */
			filed = 1;
		}
	}
	*got = done;
	return ret;
}

/* Whether [off, off + len) of a streamed stage is all below freed. */
static int all_freed(struct sfs_stage *st, int64_t off, size_t len)
{
	int below;

	if (!st->s->ops || !st->stream)
		return 0;
	pthread_mutex_lock(&st->fmu);
	below = off + (int64_t)len <= st->freed;
	pthread_mutex_unlock(&st->fmu);
	return below;
}

int sfs_stage_read_waits(struct sfs_stage *st, int64_t off)
{
	int64_t freed;

	if (!st->s->ops || !st->stream)
		return 0;
	pthread_mutex_lock(&st->fmu);
	freed = st->freed;
	pthread_mutex_unlock(&st->fmu);
	return off < freed || sfsi_stage_pipe_unwritten(st);
}

enum sfs_status sfs_stage_pread(struct sfs_stage *st, void *data, size_t len,
				int64_t off, size_t *got, struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;

	/*
	 * The bytes still buffered go to the file (hashing goes on), unless
	 * all those read come from the server.
	 */
	if (st->pipe && !all_freed(st, off, len))
		ret = sfsi_stage_pipe_sync(st, e);
	if (ret)
		return ret;
	if (st->s->ops && st->stream)
		return pread_freed(st, data, len, off, got, e);
	return pread_file(st, data, len, off, got, e);
}

enum sfs_status sfs_stage_truncate(struct sfs_stage *st, int64_t size,
				   struct sfs_err *e)
{
	enum sfs_status ret = SFS_OK;

	if (st->hashed)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"stage already finished");
	if (size < 0)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE, "negative size");
	if (size > st->limit)
		return sfs_errf(e, SFS_TOO_LARGE, SFS_R_NONE,
				"more than %lld bytes", (long long)st->limit);
	if (size == st->size)
		return SFS_OK;
	/* a truncate to 0 needs nothing of what was freed back */
	if (size)
		ret = stage_whole(st, e);
	else
		stage_unfreed(st);
	if (ret)
		return ret;
	sfsi_stage_followers(st, 0, 1); /* first: the pipe waits for none */
	ret = sfsi_stage_pipe_cut(st, size, e);
	if (ret)
		return ret;
	if (!size) {
		/* the holes are cut: nothing is read from the session */
		pthread_mutex_lock(&st->fmu);
		st->freed = 0;
		pthread_mutex_unlock(&st->fmu);
	}
	st->random = 1;
	sfsi_stage_followers(st, 0, 1);
	st->size = size;
	st->written = size;
	return SFS_OK;
}

enum sfs_status sfs_stage_copy_fd(struct sfs_stage *st, int fd,
				  struct sfs_err *e)
{
	unsigned char buf[IO_CHUNK];
	int64_t off = 0;
	enum sfs_status ret;

	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sfsi_errno_status(e, errno, "reading a blob");
		}
		if (n == 0)
			return SFS_OK;
		ret = sfs_stage_write(st, buf, (size_t)n, e);
		if (ret)
			return ret;
		off += n;
	}
}

enum sfs_status sfs_stage_copy_blob(struct sfs_stage *st, struct sfs_blob *b,
				    struct sfs_err *e)
{
	unsigned char buf[IO_CHUNK];
	int64_t off = 0;
	enum sfs_status ret;
	size_t got;

	if (sfs_blob_fd(b) >= 0)
		return sfs_stage_copy_fd(st, sfs_blob_fd(b), e);
	while (off < sfs_blob_size(b)) {
		ret = sfs_blob_pread(b, buf, sizeof(buf), off, &got, e);
		if (!ret && !got)
			ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
				       "the blob ended early");
		if (!ret)
			ret = sfs_stage_write(st, buf, got, e);
		if (ret)
			return ret;
		off += (int64_t)got;
	}
	return SFS_OK;
}

/*
 * The SHA-256 (out: lowercase hex; NULL: none made) and the CRC32C (crc,
 * or NULL) of a whole fd from offset 0.
 */
static enum sfs_status sums_fd(int fd, char *out, uint32_t *crc, int64_t *size,
			       struct sfs_err *e)
{
	unsigned char buf[IO_CHUNK], md[32];
	EVP_MD_CTX *ctx = out ? EVP_MD_CTX_new() : NULL;
	enum sfs_status ret = SFS_OK;
	int64_t off = 0;
	unsigned int mdlen = 0;

	if (crc)
		*crc = 0;
	if (out && (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = sfsi_errno_status(e, errno, "hashing");
			goto out;
		}
		if (n == 0)
			break;
		if (out)
			EVP_DigestUpdate(ctx, buf, (size_t)n);
		if (crc)
			*crc = sfsi_crc32c(*crc, buf, (size_t)n);
		off += n;
	}
	if (out) {
		EVP_DigestFinal_ex(ctx, md, &mdlen);
		sfsi_hex(md, 32, out);
	}
	if (size)
		*size = off;
out:
	EVP_MD_CTX_free(ctx);
	return ret;
}

enum sfs_status sfs_sha256_fd(int fd, char out[65], int64_t *size,
			      struct sfs_err *e)
{
	return sums_fd(fd, out, NULL, size, e);
}

static enum sfs_status stage_hash(struct sfs_stage *st, int hold,
				  struct sfs_err *e)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	enum sfs_status ret;

	if (st->hashed)
		return SFS_OK;
	ret = hold ? sfsi_stage_pipe_hold(st, e) : sfsi_stage_pipe_end(st, e);
	if (ret)
		return ret;
	if (st->random) {
		int64_t size;

		ret = sums_fd(st->fd, st->crc_only ? NULL : st->sha, &st->crc,
			      &size, e);
		if (ret)
			return ret;
		if (size != st->size)
			return sfs_errf(e, SFS_IO, SFS_R_NONE,
					"stage size changed");
	} else if (!st->crc_only) {
		EVP_DigestFinal_ex(st->md, md, &mdlen);
		sfsi_hex(md, 32, st->sha);
	}
	st->hashed = 1;
	/* complete before the end: whoever sees the end sees it complete */
	if (!st->random) {
		pthread_mutex_lock(&st->fmu);
		st->fcomplete = 1;
		pthread_mutex_unlock(&st->fmu);
	}
	sfsi_stage_followers(st, st->random ? 0 : st->size,
			     1); /* all there is */
	return SFS_OK;
}

enum sfs_status sfsi_stage_hash(struct sfs_stage *st, struct sfs_err *e)
{
	return stage_hash(st, 0, e);
}

enum sfs_status sfsi_stage_hash_held(struct sfs_stage *st, struct sfs_err *e)
{
	return stage_hash(st, 1, e);
}

enum sfs_status sfs_stage_finish(struct sfs_stage *st, struct sfs_err *e)
{
	enum sfs_status ret;

	if (st->finished)
		return SFS_OK;
	ret = sfsi_stage_hash(st, e);
	if (ret)
		return ret;
	if (fsync(st->fd) < 0)
		return sfsi_errno_status(e, errno, "syncing the stage");
	st->finished = 1;
	return SFS_OK;
}

int64_t sfs_stage_size(const struct sfs_stage *st)
{
	return st->size;
}

const char *sfs_stage_sha256(const struct sfs_stage *st)
{
	return st->hashed && !st->crc_only ? st->sha : NULL;
}

uint32_t sfs_stage_crc32c(const struct sfs_stage *st)
{
	return st->crc;
}

enum sfs_status sfs_stage_check_crc32c(struct sfs_stage *st, uint32_t crc,
				       struct sfs_err *e)
{
	enum sfs_status ret = sfsi_stage_hash(st, e);

	if (ret)
		return ret;
	if (st->crc != crc)
		return sfs_errf(e, SFS_INVALID, SFS_R_CHECKSUM_MISMATCH,
				"the content's CRC32C is %08x, not the %08x "
				"sent with it (%lld bytes got): nothing is "
				"stored",
				st->crc, crc, (long long)st->size);
	return SFS_OK;
}

int sfs_stage_fd(const struct sfs_stage *st)
{
	return st->fd;
}

void sfs_stage_free(struct sfs_stage *st)
{
	if (!st)
		return;
	sfsi_stage_followers(st, 0, 1); /* first: the pipe waits for none */
	/* a session's file outlives the stage: all of it there */
	if (st->keep_file || st->upload)
		(void)sfsi_stage_pipe_end(st, NULL);
	else
		sfsi_stage_pipe_discard(st);
	stream_free(st);
	if (st->linked)
		sfsi_blob_unlink_uncommitted(st);
	if ((st->inlined || st->s->ops) && st->path[0] && spare_give(st)) {
		st->fd = -1;
		st->path[0] = '\0';
	}
	if (st->fd >= 0)
		close(st->fd);
	if (st->path[0] && !st->keep_file)
		unlink(st->path);
	EVP_MD_CTX_free(st->md);
	pthread_mutex_destroy(&st->fmu);
	pthread_cond_destroy(&st->fcv);
	free(st);
}

void sfsi_stage_done(struct sfs_stage *st)
{
	size_t n;

	if (st)
		st->linked = 0;
	/* its bytes are in the database: its file may be a spare (free) */
	n = st ? strlen(st->path) : 0;
	if (n > sizeof(PART) && st->inlined &&
	    !strcmp(st->path + n - (sizeof(PART) - 1), PART))
		return;
	if (st && st->path[0]) {
		unlink(st->path);
		st->path[0] = '\0';
	}
}
