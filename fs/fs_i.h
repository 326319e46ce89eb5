/*
 * Internals of the speechfs mount: the mount's state, the node a mount
 * path resolves to, directory listings with their entry names, and the
 * adapters each file of fs/ gives to the operations table in ops.c.
 */
#ifndef SPEECHFS_FS_I_H
#define SPEECHFS_FS_I_H

#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include "speechfs/auth.h"
#include "speechfs/dir.h"
#include "speechfs/err.h"
#include "speechfs/file.h"
#include "speechfs/util.h"
#include "speechfs/vpath.h"

struct sfs_store;

/* The mount's state: one store, acting as one user. */
struct fs {
	struct sfs_store *store;
	struct sfs_actor actor;
	uid_t uid;
	gid_t gid;
	mode_t umask;
	int ro;
	int64_t start_ns;  /* mtime of dirs that have none */
	int listening;	   /* show /.listening/ */
	int generate;	   /* listening audio of written files */
	struct fuse *fuse; /* for cache invalidation */
	pthread_t poller;
	int poller_running;
	volatile int stop;
};

extern struct fs g_fs;

#define FS_LISTENING ".listening"
#define FS_TRASH ".trash"
#define FS_SHARED ".shared"

/* The one table: a core status (and its error type) as an errno. */
int fs_errno(enum sfs_status st, const struct sfs_err *e);

/* ---- names.c ---------------------------------------------------------- */

enum fs_kind {
	FS_NONE = 0,
	FS_DIR,		 /* a virtual directory */
	FS_FILE,	 /* a live file */
	FS_LA_DIR,	 /* /.listening/ and its mirror dirs */
	FS_LA_FILE,	 /* a listening MP3 */
	FS_TRASH_DIR,	 /* /.trash/ */
	FS_TRASH_FILE,	 /* a deleted, unpurged file */
	FS_SHARED_DIR,	 /* /.shared/ */
	FS_SHARED_OWNER, /* /.shared/<owner uuid>/ */
	FS_SHARED_FILE	 /* a file shared with the user */
};

/* One entry of a directory listing. */
struct fs_entry {
	char *name; /* the entry name, unique in its dir */
	int64_t ino;
	char id[SFS_ID_SIZE];
	char owner[SFS_ID_SIZE];
	int64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
};

struct fs_listing {
	struct fs_entry *v;
	size_t n, alloc;
	char **subdirs;	   /* directory entry names */
	int64_t *subino;   /* and their core inos */
	int64_t *submtime; /* and their mtimes */
	size_t nsub, subdirs_alloc;
	size_t *hidx;	 /* names.c: v's names hashed, i + 1 */
	size_t hcap, hn; /* slots (2^k), entries indexed */
};

/* What a mount path is. */
struct fs_node {
	enum fs_kind kind;
	char dir[SFS_VPATH_MAX + 2]; /* the dir itself, or a file's dir */
	char owner[SFS_ID_SIZE];     /* FS_SHARED_OWNER / _FILE */
	struct sfs_dir_info di;	     /* FS_DIR, FS_LA_DIR */
	struct sfs_file f;	     /* file kinds (full row) */
};

enum fs_list_mode {
	FS_LIST_FILES = 0,
	FS_LIST_LISTENING,
	FS_LIST_TRASH,
	FS_LIST_SHARED
};

/* 0 or -errno. The node is always initialised; release it. */
int fs_resolve(const char *mpath, struct fs_node *n);
void fs_node_release(struct fs_node *n);

/*
 * The entries of the directory `vdir` ("/a/b/"), named as the mount shows
 * them: display name ('/' as U+2215) plus the original filename's
 * extension; later (higher ino) duplicates get " (xxxxxxxx)". For
 * FS_LIST_SHARED, vdir is the owner's uuid. 0 or -errno.
 */
int fs_list(const char *vdir, enum fs_list_mode mode, struct fs_listing *l);
void fs_listing_release(struct fs_listing *l);

/*
 * Split a mount path into its parent directory (as a vpath "/a/b/") and
 * its last segment. -ENOENT / -ENAMETOOLONG / -EINVAL for bad paths.
 */
int fs_split(const char *mpath, char *dir, size_t dirsize, const char **last);
/* A mount directory path "/a/b" as a vpath "/a/b/" (validated). */
int fs_dirpath(const char *mpath, char *out, size_t size);

/*
 * The display name and filename a new entry name stands for: the name is
 * the entry with U+2215 turned back into '/'. Ownership: free() both.
 */
int fs_entry_to_name(const char *entry, char **name);
/*
 * The new display name (and, when the extension changes, the new
 * filename; else NULL) of file f renamed to `entry`. Free both.
 */
int fs_rename_names(const struct sfs_file *f, const char *entry, char **name,
		    char **filename);
/* The extension of a filename (".wav"), or "" when none. */
const char *fs_ext(const char *filename);

/* Find `entry` among the listing of vdir (mode) and load its full row. */
int fs_find_file(const char *vdir, const char *entry, enum fs_list_mode mode,
		 struct fs_node *n);
/*
 * Keep the lookup cache right: a file the mount created in vdir as
 * `entry`, or any other change of names (rename, removal, mkdir ...).
 */
void fs_names_added(const char *vdir, const char *entry,
		    const struct sfs_file *f);
void fs_names_changed(void);
/* sfs_dir_stat of a vpath into n->di; -ENOENT for bad paths. */
int fs_stat_vdir(const char *vdir, struct fs_node *n);

/* ---- dir.c ------------------------------------------------------------ */

void fs_stat_dir(struct stat *st, int64_t ino, int64_t mtime_ns);
void fs_stat_file(struct stat *st, int64_t ino, int64_t size, int64_t mtime_ns,
		  int64_t ctime_ns, int writable);
/* stat of a directory node (any directory kind); -ENOENT otherwise. */
int fs_stat_node_dir(const struct fs_node *n, struct stat *st);
/*
 * Inodes: files keep their row id; directories, listening MP3s and the
 * synthetic directories get ranges of their own so none collide.
 */
#define FS_INO_DIR ((int64_t)1 << 60)
#define FS_INO_LISTENING ((int64_t)1 << 61)
#define FS_INO_SPECIAL ((int64_t)1 << 62)
int fs_opendir(const char *path, struct fuse_file_info *fi);
int fs_releasedir(const char *path, struct fuse_file_info *fi);
int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
	       struct fuse_file_info *fi, enum fuse_readdir_flags flags);
int fs_mkdir(const char *path, mode_t mode);
int fs_rmdir(const char *path);
int fs_statfs(const char *path, struct statvfs *st);

/* ---- file.c ----------------------------------------------------------- */

int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi);
int fs_open(const char *path, struct fuse_file_info *fi);
int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int fs_read(const char *path, char *buf, size_t size, off_t off,
	    struct fuse_file_info *fi);
int fs_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size,
		off_t off, struct fuse_file_info *fi);
int fs_write(const char *path, const char *buf, size_t size, off_t off,
	     struct fuse_file_info *fi);
int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi);
int fs_flush(const char *path, struct fuse_file_info *fi);
int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int fs_release(const char *path, struct fuse_file_info *fi);
int fs_unlink(const char *path);
int fs_rename(const char *from, const char *to, unsigned int flags);
int fs_utimens(const char *path, const struct timespec tv[2],
	       struct fuse_file_info *fi);
/* The size of an open write stage of this file, or -1. */
int64_t fs_open_size(int64_t ino);

/* ---- xattr.c ---------------------------------------------------------- */

int fs_getxattr(const char *path, const char *name, char *value, size_t size);
int fs_setxattr(const char *path, const char *name, const char *value,
		size_t size, int flags);
int fs_listxattr(const char *path, char *list, size_t size);
int fs_removexattr(const char *path, const char *name);

/* ---- listening.c ------------------------------------------------------ */

/* Mirror lookups below /.listening/: rest is the path after it. */
int fs_listening_resolve(const char *rest, struct fs_node *n);

/* ---- poller.c --------------------------------------------------------- */

/* Start/stop the change poller (coherence with other processes). */
void fs_poller_start(void);
void fs_poller_stop(void);

/* ---- loop.c ----------------------------------------------------------- */

struct fuse_session;
/*
 * Serve the session until it ends: the reading thread answers lookups
 * and the like, nworkers threads the rest. 0, or -1 when reading failed.
 */
int fs_loop_run(struct fuse_session *se, int nworkers);
/*
 * Block SIGTERM, SIGINT and SIGHUP in the calling thread (and the threads
 * it starts until fs_signals_on): only the thread reading the device
 * takes them, so the loop sees the session end.
 */
void fs_signals_off(sigset_t *old);
void fs_signals_on(const sigset_t *old);

extern const struct fuse_operations fs_ops;

#endif
