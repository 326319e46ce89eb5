/*
 * LD_PRELOAD for test_api_uploads.py: faults and witnesses around the
 * daemon's session files (STORE/staging/.uploads/), each switched on by
 * its variable:
 * - UPLOADFAULT_TRUNC=ID: ftruncate of session file ID fails with EIO (a
 *   disk error while the start's recovery cuts it back).
 * - UPLOADFAULT_UNLINK_LOG=FILE: before a session file is unlinked, a line
 *   "ID locked" or "ID free" goes to FILE: whether some open file
 *   description holds its lock (what a PUT of another process would find)
 *   at that moment.
 * - UPLOADFAULT_LOCK_EMFILE=ID: an open of session file ID for reading and
 *   writing (to lock it) fails with EMFILE (a process out of descriptors).
 * - UPLOADFAULT_NODE_MS=N: each open of .uploads/.node waits N ms first,
 *   which widens the moment between two starting daemons' look for it and
 *   their write of it.
 * - UPLOADFAULT_NODE_EIO=N: the first N opens of .uploads/.node for
 *   reading fail with EIO.
 * - UPLOADFAULT_SYNC_GATE=PATH: while PATH exists, an fdatasync of a
 *   session file waits (at most 60 s) before it syncs: a disk that takes
 *   as long as the test wants.
 * - UPLOADFAULT_SYNC_LOG=FILE: each fdatasync in a session's syncer (the
 *   thread named "sfs-sync": the file's, SQLite's of the row) writes a
 *   line "sync PATH" (the file's path now) to FILE as it begins (before
 *   any SYNC_GATE wait).
 * - UPLOADFAULT_JOIN_MARK=FILE: a join of a session's syncer (a PUT's end
 *   stopping it) makes FILE first.
 * - UPLOADFAULT_LOCK_GATE=DIR: after an open of a session file ID for
 *   reading and writing (to lock it), DIR/ID.opened is made and the open
 *   returns only once DIR/ID.go exists (at most 60 s): the test acts
 *   between a PUT's open of the file and its lock.
 * - UPLOADFAULT_READ_GATE=DIR: while DIR/ID.hold exists, an open of
 *   session file ID for reading only (a GET's look whether another
 *   process holds it) makes DIR/ID.ropened and waits until DIR/ID.hold is
 *   gone (at most 60 s): the test acts while a long poll looks again.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define DIR_PART "/.uploads/"

/* The session id of a path under .uploads/, or NULL. */
static const char *session_of(const char *path)
{
	const char *p = strstr(path, DIR_PART);

	if (!p)
		return NULL;
	p += strlen(DIR_PART);
	return strlen(p) == 32 && strspn(p, "0123456789abcdef") == 32 ? p
								      : NULL;
}

/* The session id of the file open as fd (its path in target), or NULL. */
static const char *session_of_fd(int fd, char *target, size_t size)
{
	char link[64];
	ssize_t k;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	k = readlink(link, target, size - 1);
	if (k <= 0)
		return NULL;
	target[k] = '\0';
	return session_of(target);
}

static int is_session_fd(int fd, const char *id)
{
	char target[4096];
	const char *got = session_of_fd(fd, target, sizeof(target));

	return got && !strcmp(got, id);
}

static int truncate_fails(int fd)
{
	const char *id = getenv("UPLOADFAULT_TRUNC");

	return id && is_session_fd(fd, id);
}

int ftruncate(int fd, off_t len)
{
	static int (*real)(int, off_t);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "ftruncate");
	if (truncate_fails(fd)) {
		errno = EIO;
		return -1;
	}
	return real(fd, len);
}

int ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

static int real_open(const char *path, int flags, mode_t mode)
{
	static int (*real)(const char *, int, ...);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "open");
	return real(path, flags, mode);
}

static int is_node(const char *path)
{
	static const char node[] = "/.uploads/.node";
	size_t n = strlen(path), k = sizeof(node) - 1;

	return n >= k && !strcmp(path + n - k, node);
}

static void node_wait(const char *path)
{
	const char *ms = getenv("UPLOADFAULT_NODE_MS");
	struct timespec ts;

	if (!ms || !is_node(path))
		return;
	ts.tv_sec = atol(ms) / 1000;
	ts.tv_nsec = (atol(ms) % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

static int lock_open_fails(const char *path, int flags)
{
	const char *id = getenv("UPLOADFAULT_LOCK_EMFILE");
	const char *got = session_of(path);

	return id && got && !strcmp(got, id) && (flags & O_ACCMODE) == O_RDWR;
}

static int node_read_fails(const char *path, int flags)
{
	static int failed;
	const char *n = getenv("UPLOADFAULT_NODE_EIO");

	if (!n || !is_node(path) || (flags & O_ACCMODE) != O_RDONLY ||
	    failed >= strtol(n, NULL, 10))
		return 0;
	failed++;
	return 1;
}

/* Make file dir/id+suffix (a sign to the test). */
static void mark(const char *dir, const char *id, const char *suffix)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s%s", dir, id, suffix);
	fd = real_open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

/* Wait (at most 60 s) until dir/id+suffix exists (1) or is gone (0). */
static void await_file(const char *dir, const char *id, const char *suffix,
		       int exists)
{
	struct timespec ts = { 0, 10 * 1000000L };
	char path[4096];
	int i;

	snprintf(path, sizeof(path), "%s/%s%s", dir, id, suffix);
	for (i = 0; i < 6000 && (access(path, F_OK) == 0) != exists; i++)
		nanosleep(&ts, NULL);
}

/* Hold a read-only open of a session file while the test says so. */
static void read_gate(const char *path, int flags)
{
	const char *dir = getenv("UPLOADFAULT_READ_GATE");
	const char *id = session_of(path);
	char hold[4096];

	if (!dir || !id || (flags & O_ACCMODE) != O_RDONLY)
		return;
	snprintf(hold, sizeof(hold), "%s/%s.hold", dir, id);
	if (access(hold, F_OK) < 0)
		return;
	mark(dir, id, ".ropened");
	await_file(dir, id, ".hold", 0);
}

/* Say that session file `path` is open, and wait for the test's word. */
static void lock_gate(const char *path, int flags)
{
	const char *dir = getenv("UPLOADFAULT_LOCK_GATE");
	const char *id = session_of(path);

	if (!dir || !id || (flags & O_ACCMODE) != O_RDWR)
		return;
	mark(dir, id, ".opened");
	await_file(dir, id, ".go", 1);
}

static int faulty_open(const char *path, int flags, mode_t mode)
{
	int fd;

	node_wait(path);
	if (lock_open_fails(path, flags)) {
		errno = EMFILE;
		return -1;
	}
	if (node_read_fails(path, flags)) {
		errno = EIO;
		return -1;
	}
	fd = real_open(path, flags, mode);
	if (fd >= 0) {
		lock_gate(path, flags);
		read_gate(path, flags);
	}
	return fd;
}

/*
 * Whether open's flags pass a mode: O_CREAT, or O_TMPFILE whole (it holds
 * O_DIRECTORY's bit, which alone passes none), as glibc's own test.
 */
static int needs_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if (needs_mode(flags)) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return faulty_open(path, flags, mode);
}

/* The same function under the large-file name glibc's open may be. */
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

static void witness_unlink(const char *path)
{
	const char *log = getenv("UPLOADFAULT_UNLINK_LOG");
	const char *id = session_of(path);
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd, held = 0;
	FILE *f;

	if (!log || !id)
		return;
	fd = real_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (!fcntl(fd, F_OFD_GETLK, &l))
		held = l.l_type != F_UNLCK;
	close(fd);
	f = fopen(log, "a");
	if (f) {
		fprintf(f, "%s %s\n", id, held ? "locked" : "free");
		fclose(f);
	}
}

int unlink(const char *path)
{
	static int (*real)(const char *);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "unlink");
	witness_unlink(path);
	return real(path);
}

/* A line in UPLOADFAULT_SYNC_LOG for a syncer's fdatasync of fd. */
static void witness_sync(int fd)
{
	const char *log = getenv("UPLOADFAULT_SYNC_LOG");
	char name[16] = "", link[64], target[4096];
	ssize_t k;
	FILE *f;

	if (!log || prctl(PR_GET_NAME, name) < 0 || strcmp(name, "sfs-sync"))
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	k = readlink(link, target, sizeof(target) - 1);
	target[k > 0 ? k : 0] = '\0';
	f = fopen(log, "a");
	if (f) {
		fprintf(f, "sync %s\n", target);
		fclose(f);
	}
}

int fdatasync(int fd)
{
	static int (*real)(int);
	const char *gate = getenv("UPLOADFAULT_SYNC_GATE");
	struct timespec tick = { 0, 10 * 1000000L };
	char target[4096];
	int i;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
	witness_sync(fd);
	if (gate && session_of_fd(fd, target, sizeof(target)))
		for (i = 0; i < 6000 && access(gate, F_OK) == 0; i++)
			nanosleep(&tick, NULL);
	return real(fd);
}

int pthread_join(pthread_t th, void **ret)
{
	static int (*real)(pthread_t, void **);
	const char *mark_file = getenv("UPLOADFAULT_JOIN_MARK");
	char name[16] = "";
	int fd;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pthread_join");
	if (mark_file && !pthread_getname_np(th, name, sizeof(name)) &&
	    !strcmp(name, "sfs-sync")) {
		fd = real_open(mark_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	return real(th, ret);
}
