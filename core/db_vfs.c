/*
 * The store's SQLite VFS: the default one ("unix") but for the WAL's
 * writes. SQLite appends a frame to the WAL as two writes, its 24-byte
 * header and then its page, so a create's commit of 16 frames was 32
 * pwrite calls, a third of the daemon's work before its fdatasync. Here
 * a WAL file gathers contiguous appends of frames in a buffer of its own
 * (reused) and writes them with one call:
 *   - when the frame that ends a commit is written (its header names the
 *     database's size), within that write, before SQLite publishes the
 *     commit in the wal-index: a reader of another connection or process
 *     that sees the commit finds its frames in the file, and a failed
 *     write fails the commit as it did;
 *   - before any other call on the WAL file (a read, a sync, its size, a
 *     truncation, its close) and before any write that does not append
 *     a frame to the gathered ones, so the file's writes keep their order;
 *   - before its database's wal-index locks change (xShmLock): a
 *     transaction that spilled frames and was rolled back ends with its
 *     write lock given up, and another writer then overwrites those
 *     frames; nothing of ours may land after it;
 *   - when the buffer is full.
 * What reaches the file, and in which order, is what SQLite wrote; only
 * the number of calls differs. Nothing is synced here (the store syncs the
 * WAL itself, sfsi_db_sync, after the commit returned), so a crash
 * mid-write leaves what a crash between SQLite's own writes did: WAL
 * recovery keeps the commits whose frames' checksums hold.
 * Every other file (the database itself but for that lock hook, journals,
 * temporary files) is the default VFS's own.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "db_conn_i.h"

#define GATHER_MAX (128 * 1024) /* bytes: a create's commit is ~66 KB */
#define WAL_HDR 32		/* the WAL file's header */
#define FRAME_HDR 24		/* a frame's header */

struct vfile {
	sqlite3_file base;
	sqlite3_file *real; /* the default VFS's file, after this struct */
	struct vfile *wal;  /* a database's: its connection's WAL, open */
	struct vfile *db;   /* a WAL's: its database */
	char *buf;	    /* a WAL's gathered appends (GATHER_MAX) */
	size_t len;
	sqlite3_int64 at; /* the file offset of buf[0] */
	int want_page;	  /* buf ends with a frame's header */
	int commit;	  /* ... of the frame that ends a commit */
};

static sqlite3_vfs *base_vfs;
static sqlite3_vfs vfs;

static size_t real_offset(void)
{
	return (sizeof(struct vfile) + 15) & ~(size_t)15;
}

static uint32_t be32(const void *p)
{
	const unsigned char *b = p;

	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

/* Write what f gathered: SQLite's write's status. */
static int flush(struct vfile *f)
{
	int rc;

	if (!f || !f->len)
		return SQLITE_OK;
	rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->at);
	f->len = 0;
	f->want_page = 0;
	return rc;
}

static void gather(struct vfile *f, const void *p, int n)
{
	memcpy(f->buf + f->len, p, (size_t)n);
	f->len += (size_t)n;
}

/*
 * Whether a write of n bytes at off starts a new run: the WAL's header,
 * or the header of a frame that does not end a commit (a commit's last
 * frame alone, or a header whose checksum SQLite rewrites, is written
 * as it comes).
 */
static int starts_run(const void *p, int n, sqlite3_int64 off)
{
	return (n == WAL_HDR && off == 0) ||
	       (n == FRAME_HDR && off >= WAL_HDR &&
		be32((const char *)p + 4) == 0);
}

static int wal_write(struct vfile *f, const void *p, int n, sqlite3_int64 off)
{
	int rc;

	if (f->len && off == f->at + (sqlite3_int64)f->len &&
	    f->len + (size_t)n <= GATHER_MAX &&
	    (f->want_page || n == FRAME_HDR)) {
		gather(f, p, n);
		if (!f->want_page) {
			f->want_page = 1;
			f->commit = be32((const char *)p + 4) != 0;
			return SQLITE_OK;
		}
		f->want_page = 0;
		return f->commit ? flush(f) : SQLITE_OK;
	}
	rc = flush(f);
	if (rc != SQLITE_OK)
		return rc;
	if (!starts_run(p, n, off) ||
	    (!f->buf && !(f->buf = malloc(GATHER_MAX))))
		return f->real->pMethods->xWrite(f->real, p, n, off);
	f->at = off;
	f->commit = 0;
	f->want_page = n == FRAME_HDR;
	gather(f, p, n);
	return SQLITE_OK;
}

/* ---- the file methods: the default VFS's, after a flush ---------------- */

#define REAL(f) (((struct vfile *)(f))->real)

static int x_close(sqlite3_file *file)
{
	struct vfile *f = (struct vfile *)file;
	int rc = flush(f), rc2;

	if (f->db)
		f->db->wal = NULL;
	if (f->wal)
		f->wal->db = NULL;
	free(f->buf);
	f->buf = NULL;
	rc2 = f->real->pMethods->xClose(f->real);
	return rc != SQLITE_OK ? rc : rc2;
}

static int x_read(sqlite3_file *file, void *p, int n, sqlite3_int64 off)
{
	int rc = flush((struct vfile *)file);

	return rc ? rc : REAL(file)->pMethods->xRead(REAL(file), p, n, off);
}

static int x_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 off)
{
	struct vfile *f = (struct vfile *)file;

	if (f->db)
		return wal_write(f, p, n, off);
	return f->real->pMethods->xWrite(f->real, p, n, off);
}

static int x_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	int rc = flush((struct vfile *)file);

	return rc ? rc : REAL(file)->pMethods->xTruncate(REAL(file), size);
}

static int x_sync(sqlite3_file *file, int flags)
{
	int rc = flush((struct vfile *)file);

	return rc ? rc : REAL(file)->pMethods->xSync(REAL(file), flags);
}

static int x_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	int rc = flush((struct vfile *)file);

	return rc ? rc : REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int x_lock(sqlite3_file *file, int lock)
{
	int rc = flush((struct vfile *)file);

	return rc ? rc : REAL(file)->pMethods->xLock(REAL(file), lock);
}

static int x_unlock(sqlite3_file *file, int lock)
{
	int rc = flush((struct vfile *)file);

	return rc ? rc : REAL(file)->pMethods->xUnlock(REAL(file), lock);
}

static int x_reserved(sqlite3_file *file, int *out)
{
	return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int x_control(sqlite3_file *file, int op, void *arg)
{
	int rc = flush((struct vfile *)file);

	return rc ? rc
		  : REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int x_sector(sqlite3_file *file)
{
	return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int x_device(sqlite3_file *file)
{
	return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int x_shm_map(sqlite3_file *file, int pg, int pgsz, int extend,
		     void volatile **p)
{
	return REAL(file)->pMethods->xShmMap(REAL(file), pg, pgsz, extend, p);
}

static int x_shm_lock(sqlite3_file *file, int ofst, int n, int flags)
{
	int rc = flush(((struct vfile *)file)->wal), rc2;

	/* a lock given up is given up even when the flush failed */
	if (rc != SQLITE_OK && !(flags & SQLITE_SHM_UNLOCK))
		return rc;
	rc2 = REAL(file)->pMethods->xShmLock(REAL(file), ofst, n, flags);
	return rc != SQLITE_OK ? rc : rc2;
}

static void x_shm_barrier(sqlite3_file *file)
{
	REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int x_shm_unmap(sqlite3_file *file, int del)
{
	return REAL(file)->pMethods->xShmUnmap(REAL(file), del);
}

static int x_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **p)
{
	return REAL(file)->pMethods->xFetch(REAL(file), off, n, p);
}

static int x_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
	return REAL(file)->pMethods->xUnfetch(REAL(file), off, p);
}

#define METHODS(VERSION)                                                       \
	{                                                                      \
		.iVersion = VERSION, .xClose = x_close, .xRead = x_read,       \
		.xWrite = x_write, .xTruncate = x_truncate, .xSync = x_sync,   \
		.xFileSize = x_file_size, .xLock = x_lock,                     \
		.xUnlock = x_unlock, .xCheckReservedLock = x_reserved,         \
		.xFileControl = x_control, .xSectorSize = x_sector,            \
		.xDeviceCharacteristics = x_device, .xShmMap = x_shm_map,      \
		.xShmLock = x_shm_lock, .xShmBarrier = x_shm_barrier,          \
		.xShmUnmap = x_shm_unmap, .xFetch = x_fetch,                   \
		.xUnfetch = x_unfetch,                                         \
	}
/* as many methods as the default VFS's file has (version 3: all) */
static const sqlite3_io_methods methods = METHODS(3);
static const sqlite3_io_methods methods_v1 = METHODS(1);
static const sqlite3_io_methods methods_v2 = METHODS(2);

/*
 * Open a file: a main database or a WAL in a wrapper (the default VFS's
 * file after it), everything else as the default VFS opens it.
 */
static int x_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *file,
		  int flags, int *out_flags)
{
	struct vfile *f = (struct vfile *)file, *db;
	int rc;

	(void)v;
	if (!(flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)))
		return base_vfs->xOpen(base_vfs, name, file, flags, out_flags);
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)((char *)file + real_offset());
	rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
	if (!f->real->pMethods)
		return rc; /* nothing to close */
	switch (f->real->pMethods->iVersion) {
	case 1:
		f->base.pMethods = &methods_v1;
		break;
	case 2:
		f->base.pMethods = &methods_v2;
		break;
	default:
		f->base.pMethods = &methods;
	}
	if (rc != SQLITE_OK || !(flags & SQLITE_OPEN_WAL))
		return rc;
	db = (struct vfile *)sqlite3_database_file_object(name);
	/* its wal-index locks are ours (x_shm_lock): appends may gather */
	if (db && (db->base.pMethods == &methods ||
		   db->base.pMethods == &methods_v2)) {
		f->db = db;
		db->wal = f;
	}
	return rc;
}

static void vfs_register(void)
{
	base_vfs = sqlite3_vfs_find(NULL);
	if (!base_vfs || base_vfs->iVersion < 1)
		return;
	/* the default's functions, its data and limits: only files differ */
	vfs = *base_vfs;
	vfs.zName = SFSI_DB_VFS;
	vfs.pNext = NULL;
	vfs.szOsFile = (int)real_offset() + base_vfs->szOsFile;
	vfs.xOpen = x_open;
	if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK)
		base_vfs = NULL;
}

const char *sfsi_db_vfs(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, vfs_register);
	return base_vfs ? SFSI_DB_VFS : NULL;
}
