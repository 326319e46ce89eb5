/*
 * Internals of the speechfs mount: the mount's state, the nodes the
 * kernel knows (a node id is a row of the store: a file, a directory, a
 * user), directory listings with their entry names, open files, and the
 * handlers each file of fs/ gives to the operations table in ops.c.
 */
#ifndef SPEECHFS_FS_I_H
#define SPEECHFS_FS_I_H

#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include "speechfs/auth.h"
#include "speechfs/dir.h"
#include "speechfs/err.h"
#include "speechfs/file.h"
#include "speechfs/query.h"
#include "speechfs/util.h"
#include "speechfs/vpath.h"

struct sfs_store;

/* The mount's state: one store, acting as one user. */
struct fs {
	struct sfs_store *store;
	struct sfs_actor actor;
	struct fuse_session *se; /* for cache invalidation */
	uid_t uid;
	gid_t gid;
	mode_t umask;
	int ro;
	/*
	 * Credentials that may delete but not write (a remote mount's key
	 * without speech:files:write, with speech:files:delete): files are
	 * deleted on the server; every other change fails at once (EACCES)
	 * and files show no write bits.
	 */
	int delete_only;
	int64_t start_ns; /* mtime of dirs that have none */
	int listening;	  /* show /.listening/ */
	int generate;	  /* listening audio of written audio files */
	int commit_ms;	  /* -o commit=MS: close() does not wait (0: it does) */
	double timeout;	  /* entry and attribute lifetime in the kernel */
	pthread_t poller;
	int poller_running;
	int stop;	     /* the poller is asked to end (atomic) */
	int poller_ended;    /* its thread has returned (atomic) */
	int wake_fd;	     /* the poller's eventfd: stop or look now */
	unsigned read_ahead; /* bytes INIT asks for (0: as offered) */
};

extern struct fs g_fs;

#define FS_LISTENING ".listening"
#define FS_TRASH ".trash"
#define FS_SHARED ".shared"

/* The one table: a core status (and its reason) as an errno. */
int fs_errno(enum sfs_status st, const struct sfs_err *e);
/*
 * Whether the mount may change something other than delete a file: 0,
 * -EROFS (read-only) or -EACCES (its credentials may only delete).
 */
int fs_may_change(void);

/*
 * The errno of SFS_WOULD_WAIT: the reading thread began a request that
 * would wait for a server (fs_nowait_begin). fs_reply_err answers
 * nothing for it, and the loop hands the request to a worker, which
 * begins it again. Every error an op answers goes through fs_reply_err.
 */
#define FS_EWAIT ERESTART
void fs_reply_err(fuse_req_t req, int err);
/*
 * This thread's requests may not wait for a server, nor for a lock or a
 * commit another thread holds across such a wait, until fs_nowait_end;
 * core: the core's calls neither (sfs_thread_nowait), else they may
 * (a close's commit: core would refuse it midway).
 */
void fs_nowait_begin(int core);
/* Whether this thread may not wait (between the two). */
int fs_nowait(void);
/*
 * 1: the request begun since fs_nowait_begin was left unanswered (for a
 * worker); 0: answered; -1: answered although the core refused it a
 * server's answer (a bug: an op turned SFS_WOULD_WAIT into another
 * answer).
 */
int fs_nowait_end(void);

/*
 * The calling thread's buffer for a reply of size bytes (reads through
 * memory, listings), kept between its requests and freed when the thread
 * ends; NULL when out of memory.
 */
char *fs_reply_buf(size_t size);

/* ---- node.c: node ids, the kernel's references, attributes ---------- */

/*
 * A node id is a kind in its top byte and, below, the row id of what it
 * shows (the file's inode, the directory's row, the owner's user row) or
 * a number the mount gave it (the special directories, the directories
 * of /.shared/<owner>/). A lookup, a create or a readdirplus entry with
 * attributes hands the kernel a reference; forget gives them back.
 */
enum fs_kind {
	FS_SPECIAL = 0,	 /* FS_ROOT, FS_LA_ROOT, FS_TRASH_ROOT, ... */
	FS_DIR,		 /* a directory of the user: dir row */
	FS_FILE,	 /* a live file (own or shared): file row */
	FS_LA_DIR,	 /* the mirror of a directory in /.listening/ */
	FS_LA_FILE,	 /* a listening MP3: file row */
	FS_TRASH_FILE,	 /* a deleted, unpurged file: file row */
	FS_SHARED_OWNER, /* /.shared/<owner>/: the owner's user row */
	FS_SHARED_DIR,	 /* /.shared/<owner>/a/b/: a number of the mount */
	FS_KIND_MAX
};

#define FS_ID_BITS 56
#define FS_NODE(kind, id) (((uint64_t)(kind) << FS_ID_BITS) | (uint64_t)(id))
#define FS_KIND(node) ((enum fs_kind)((uint64_t)(node) >> FS_ID_BITS))
#define FS_ID(node) ((int64_t)((uint64_t)(node) & ((1ULL << FS_ID_BITS) - 1)))

#define FS_ROOT FUSE_ROOT_ID
#define FS_LA_ROOT FS_NODE(FS_SPECIAL, 2)
#define FS_TRASH_ROOT FS_NODE(FS_SPECIAL, 3)
#define FS_SHARED_ROOT FS_NODE(FS_SPECIAL, 4)

/* What a node id stands for, resolved for one request. */
struct fs_node {
	uint64_t id;
	enum fs_kind kind;
	char dir[SFS_VPATH_MAX + 2]; /* directory kinds: the vpath */
	char owner[SFS_ID_SIZE];     /* FS_SHARED_*: the owner's user id */
	struct sfs_dir_info di;	     /* FS_DIR, FS_LA_DIR */
	struct sfs_file f;	     /* file kinds: the full row */
};

/*
 * Resolve a node id: load the file row (with the actor's permission) or
 * find the directory. 0 or -errno (ENOENT when the node no longer is
 * what it was, ESTALE never). Release n in every case.
 */
int fs_node_get(uint64_t id, struct fs_node *n);
void fs_node_release(struct fs_node *n);
int fs_is_file_kind(enum fs_kind k);

/*
 * The kernel got a reference on `id`, named `name` in `parent`: count it
 * and remember the name (for invalidation). For FS_SHARED_* nodes, the
 * owner and path they show are remembered too (path may be NULL).
 */
void fs_node_ref(uint64_t id, uint64_t parent, const char *name,
		 const char *owner, const char *path);
void fs_node_forget(uint64_t id, uint64_t nlookup);
/*
 * Invalidate the names nodes had before a lookup found them under
 * another (renamed elsewhere); from the poller, which fs_node_ref wakes.
 */
void fs_node_inval_stale(void);
/* The node of (owner, path) below /.shared/, made once. */
uint64_t fs_shared_dir_node(const char *owner, const char *path);
/* What an FS_SHARED_* node shows; 0 or -ENOENT. */
int fs_shared_node_info(uint64_t id, char owner[SFS_ID_SIZE], char *path,
			size_t size);
/*
 * Forget the names the kernel holds for file `ino` (in any of its kinds)
 * and its attributes; and a directory node's entries and attributes.
 * From the poller: never while a request on that node is answered.
 */
void fs_node_inval_file(int64_t ino);
void fs_node_inval_dir(uint64_t dir_node);
/* Forget every name the kernel holds below directory node `parent`. */
void fs_node_inval_children(uint64_t parent);
/* The kernel's name of a node was changed by the mount itself. */
void fs_node_renamed(uint64_t id, uint64_t parent, const char *name);

/* Attributes. */
void fs_stat_dir(struct stat *st, uint64_t node, int64_t mtime_ns, int64_t nsub,
		 int writable);
void fs_stat_file(struct stat *st, uint64_t node, int64_t ino, int64_t size,
		  int64_t mtime_ns, int64_t atime_ns, int64_t ctime_ns,
		  int writable);
/* The stat of a resolved node; 0 or -errno. */
int fs_stat_node(const struct fs_node *n, struct stat *st);
/* Fill an entry reply for a resolved node (and take the reference). */
int fs_entry_of(const struct fs_node *n, uint64_t parent, const char *name,
		struct fuse_entry_param *e);
/* Reply to a request with the entry of node `id` in parent. */
void fs_reply_entry_node(fuse_req_t req, uint64_t parent, const char *name,
			 uint64_t id);

/* ---- listing.c: directory listings ----------------------------------- */

enum fs_list_mode {
	FS_LIST_FILES = 0, /* a directory of the user */
	FS_LIST_LISTENING, /* its /.listening/ mirror */
	FS_LIST_TRASH,	   /* /.trash/ */
	FS_LIST_SHARED	   /* /.shared/<owner>/path/ */
};

/* One file entry of a directory listing. */
struct fs_entry {
	char *name; /* the entry name, unique in its dir */
	int64_t ino;
	int64_t size;
	int64_t mtime_ns;
	int64_t atime_ns;
	int64_t ctime_ns;
	int writable;
	int bare; /* a name only: no attributes known (fs_list_names) */
};

/* One subdirectory entry. */
struct fs_subdir {
	char *name;
	uint64_t node;
	int64_t mtime_ns;
	int64_t nsub;
};

struct fs_listing {
	struct fs_entry *v;
	size_t n, alloc;
	struct fs_subdir *sub;
	size_t nsub, sub_alloc;
	size_t *hidx;	 /* v's names hashed, i + 1 */
	size_t hcap, hn; /* slots (2^k), entries indexed */
	int bare;	 /* some entries are bare (fs_list_names) */
};

/*
 * The entries of a directory, named as the mount shows them: display
 * name ('/' as U+2215) plus the original filename's extension; later
 * (higher ino) duplicates get " (xxxxxxxx)". vdir is the directory's
 * vpath ("/a/b/"); for FS_LIST_SHARED owner names whose files. For
 * FS_LIST_TRASH vdir is ignored. 0 or -errno.
 */
int fs_list(const char *vdir, const char *owner, enum fs_list_mode mode,
	    struct fs_listing *l);
/*
 * fs_list with names only for a directory's files (FS_LIST_FILES and
 * FS_LIST_LISTENING; the flat trees list whole): their entries are
 * bare, the names and order are fs_list's. For a walk that uses no
 * attributes (`find`).
 */
int fs_list_names(const char *vdir, const char *owner, enum fs_list_mode mode,
		  struct fs_listing *l);
/*
 * Give the bare entries of a listing of vdir their attributes, by ino, as
 * they are now; an entry whose file left the directory since stays bare.
 * Names and order do not change. 0 or -errno.
 */
int fs_listing_attrs(const char *vdir, const char *owner,
		     enum fs_list_mode mode, struct fs_listing *l);
void fs_listing_release(struct fs_listing *l);
/* Append a subdirectory entry to l (name copied); 0 or -ENOMEM. */
int fs_listing_add_sub(struct fs_listing *l, const char *name, uint64_t node,
		       int64_t mtime_ns, int64_t nsub);
/*
 * Every file of the trash (shared 0) or shared with the user (1): all
 * pages, in ino order. Ownership: sfs_file_release each, free(*out).
 */
int fs_query_all(int shared, struct sfs_file **out, size_t *n);

/*
 * Add file f to l with the entry name it gets after l's entries (as a
 * directory's listing names it; root: in "/"), for a lookup: nothing is
 * pinned. 0 or -ENOMEM.
 */
int fs_listing_add_file(struct fs_listing *l, const struct sfs_file *f,
			int root);
/* The index of l's first entry named `name`, or -1. */
ssize_t fs_listing_find(struct fs_listing *l, const char *name);
/*
 * Look `entry` up in a cached listing of (vdir, owner, mode), listed
 * anew when none is fresh: 0 (a file, *file filled, name NULL), 1 (a
 * subdirectory, *sub filled, name NULL), -ENOENT, or -errno.
 */
int fs_listing_find_cached(const char *vdir, const char *owner,
			   enum fs_list_mode mode, const char *entry,
			   struct fs_entry *file, struct fs_subdir *sub);

/*
 * Keep the listing cache right: a file the mount created in vdir as
 * `entry`, or any other change of names (rename, removal, mkdir ...).
 */
void fs_names_added(const char *vdir, const char *entry,
		    const struct sfs_file *f);
void fs_names_changed(void);

/* ---- names.c: entry names and lookups -------------------------------- */

/*
 * Find `entry` in the (cached) listing of vdir: a file (*ino set) or a
 * subdirectory (*sub filled, its name borrowed only while... copied).
 * 0, -ENOENT, or -errno.
 */
int fs_find(const char *vdir, const char *owner, enum fs_list_mode mode,
	    const char *entry, struct fs_entry *file, struct fs_subdir *sub);

/* The display name an entry name stands for. Ownership: free(). */
int fs_entry_to_name(const char *entry, char **name);
/* A name as an entry ('/' as U+2215), malloc'd; NULL: out of memory. */
char *fs_name_as_entry(const char *name);
/*
 * The display name and filename a file gets from the entry it is created
 * or renamed to: the entry minus its extension, and the entry itself.
 * Renaming with the same extension keeps the original filename (*filename
 * NULL). Free both.
 */
int fs_names_for_entry(const struct sfs_file *f, const char *entry, char **name,
		       char **filename);
/* The extension of a filename (".wav"), or "" when none. */
const char *fs_ext(const char *filename);

/*
 * The entry file f gets before clashes, in a listing of mode: its display
 * name as an entry plus its extension (*ext), or its MP3's name in the
 * mirror. NULL: out of memory. Ownership: free().
 */
char *fs_entry_base(const struct sfs_file *f, enum fs_list_mode mode,
		    const char **ext);
/* base with the start of uuid id before its extension ext; free(). */
char *fs_entry_suffixed(const char *base, const char *ext, const char *id);
/* Is name one of the root's reserved entries (.listening, .trash ...)? */
int fs_name_reserved(const char *name);

/* A directory name in vdir as a vpath ("/a/b/" + "c" -> "/a/b/c/"). */
int fs_child_dir(const char *vdir, const char *name, char *out, size_t size);

/* ---- dir.c ------------------------------------------------------------ */

void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);

void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_statfs(fuse_req_t req, fuse_ino_t ino);
/* The vpath a directory node shows, for a change below it; 0 / -errno. */
int fs_dir_of(uint64_t node, struct fs_node *n);

/* ---- shared.c: /.shared/ ---------------------------------------------- */

/* The owners sharing with the user, as entries of /.shared/. */
int fs_shared_owners(struct fs_listing *l);
/* Look `name` up in /.shared/: the owner's user id; 0 or -ENOENT. */
int fs_shared_owner_find(const char *name, char owner[SFS_ID_SIZE],
			 int64_t *owner_row);

/* ---- file.c, ofile.c: open files -------------------------------------- */

void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	      dev_t rdev);
void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi);
void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi);
void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/*
 * What the open handles of a file know better than its row: the size and
 * times of a version being written. 1 when st was changed, 0 when not,
 * -FS_EWAIT when their lock is another thread's and this one may not
 * wait (fs_nowait: the request goes to a worker).
 */
int fs_open_attr(int64_t ino, struct stat *st);
/* Truncate file ino (an open handle's, or by name); 0 or -errno. */
int fs_truncate(int64_t ino, const char *id, off_t size,
		struct fuse_file_info *fi);
/* Has file ino an open handle? */
int fs_file_is_open(int64_t ino);
/* utimens of a file being written: kept for its commit. */
void fs_open_times(int64_t ino, int64_t mtime_ns);
/*
 * Whether a read (write 0) or write of size bytes at off on handle fh can
 * be answered by the reading thread: nothing to wait for but memory and
 * the local disk. Not when a commit of the file runs, when a worker holds
 * the file, when a writer's first write must copy its base (from a server
 * or an object store), or when the bytes read are not in memory or a
 * local file (sfs_blob_ready): a stalled server must hold only the
 * reader that needs it, not every request of the mount.
 */
int fs_file_quick_io(uint64_t fh, int write, int64_t off, size_t size);
/*
 * Whether a thread holds a file's lock across a wait for something far
 * away (a writer's base copied from a server, a block fetched for a
 * writer's handle): then the reading thread answers nothing itself, as
 * opens, closes, attributes and reads of that file would wait for the
 * lock. Such a thread says so before it takes the lock. A hint: a wait
 * may begin right after the look.
 */
int fs_file_busy(void);
/*
 * Whether closing handle fh (fuse_file_info's fh) can be answered by the
 * reading thread: FS_CLOSE_QUICK for a reader's (it commits nothing), a
 * writer's with nothing left to commit, or a writer's when core says its
 * commit, of the content it has, will not wait (sfs_store_write_quick);
 * FS_CLOSE_FREES for a writer's with nothing to commit and no base
 * content open (the release after a flush that committed a new file:
 * it frees memory only); FS_CLOSE_WAITS (0) while a commit of the file
 * runs or when the commit would wait.
 */
enum fs_close { FS_CLOSE_WAITS = 0, FS_CLOSE_QUICK, FS_CLOSE_FREES };
int fs_file_quick_close(uint64_t fh);

/* ---- commits.c: -o commit=MS ----------------------------------------- */

/* With -o commit=MS: the store's commits batched from now on. */
void fs_commits_start(void);
/* fsync with -o commit=MS: every commit so far durable now. 0 or -errno. */
int fs_commits_sync(void);
/* Stop batching, every commit durable; at unmount. */
void fs_commits_drain(void);

/* ---- entry.c: changes of names and attributes ------------------------- */

void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags);
/*
 * Resolve `name` in directory node `parent` into n (a file or a
 * directory of any kind). 0 or -errno; release n in every case.
 */
int fs_resolve_child(uint64_t parent, const char *name, struct fs_node *n);
/*
 * Whether `name` is free in the user's directory dir (node parent, a
 * directory of the user or the root, already resolved by the caller: a
 * create looks the name up without loading its directory again). 0 when
 * free, -EEXIST when a file or a directory has it, or -errno.
 */
int fs_name_free(uint64_t parent, const struct fs_node *dir, const char *name);

/* ---- xattr.c ---------------------------------------------------------- */

void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags);
void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* ---- readahead.c ------------------------------------------------------ */

/* The read-ahead window a remote mount asks the kernel for. */
#define FS_READ_AHEAD_KIB 4096

/*
 * Raise the kernel's read-ahead of the mount at mountpoint (mounted, its
 * INIT not answered yet) to FS_READ_AHEAD_KIB where this process may:
 * the window now in force in KiB, or 0 when it was left as it was.
 */
unsigned fs_read_ahead_raise(const char *mountpoint);

/* ---- poller.c --------------------------------------------------------- */

/* Start/stop the change poller (coherence with other processes). */
void fs_poller_start(void);
void fs_poller_stop(void);
/*
 * Ask the poller to stop without waiting; fs_poller_ended() says when it
 * has (1 also when it never ran). Its invalidations can wait in the
 * kernel for a directory that a queued request holds, so the loop keeps
 * answering requests until then.
 */
void fs_poller_ask_stop(void);
int fs_poller_ended(void);
/* Have the poller look at once (and invalidate stale names). */
void fs_poller_wake(void);

/* ---- loop.c ----------------------------------------------------------- */

/* Workers kept always, and the default most (-o max_threads). */
#define LOOP_KEPT 10
#define LOOP_MAX 256
/*
 * Serve the session until it ends: the reading thread answers lookups
 * and the like, workers the rest (kept of them always, up to max when
 * more wait). 0, or -1 when reading failed.
 */
int fs_loop_run(struct fuse_session *se, int kept, int max);
/*
 * A flush is about to be answered (fs_flush): the thread that read it
 * and kept it (fs/loop.c's standby armed) reads again from now on, so
 * the release that follows the answer finds it reading. Else nothing.
 */
void fs_loop_answering(void);
/*
 * Block SIGTERM, SIGINT and SIGHUP in the calling thread (and the threads
 * it starts until fs_signals_on): only the thread reading the device
 * takes them, so the loop sees the session end.
 */
void fs_signals_off(sigset_t *old);
void fs_signals_on(const sigset_t *old);

extern const struct fuse_lowlevel_ops fs_ops;

#endif
