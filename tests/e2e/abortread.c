/*
 * LD_PRELOAD for test_fs_unmount.py: the mount sees its connection end
 * the way a kernel reports an aborted one, and in the worst moment. The
 * loop's wait (ppoll) on /dev/fuse that reports the end (POLLERR)
 * reports a request instead, as if the end came between the wait and
 * the read; the read that then fails with ENODEV fails with
 * ECONNABORTED, as a read after an abort does on a connection that asked
 * FUSE_ABORT_ERROR. poll() is left alone: libfuse's unmount asks it
 * whether the connection is gone.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int is_fuse(int fd)
{
	char link[64], target[16];
	ssize_t k;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	k = readlink(link, target, sizeof(target));
	return k == 9 && !memcmp(target, "/dev/fuse", 9);
}

static void hide_end(struct pollfd *p, nfds_t n)
{
	nfds_t i;

	for (i = 0; i < n; i++)
		if ((p[i].revents & POLLERR) && is_fuse(p[i].fd))
			p[i].revents = POLLIN;
}

ssize_t read(int fd, void *buf, size_t n)
{
	static ssize_t (*real)(int, void *, size_t);
	ssize_t k;
	int err;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "read");
	k = real(fd, buf, n);
	err = errno;
	if (k < 0 && err == ENODEV && is_fuse(fd))
		err = ECONNABORTED;
	errno = err;
	return k;
}

int ppoll(struct pollfd *p, nfds_t n, const struct timespec *t,
	  const sigset_t *sigs)
{
	static int (*real)(struct pollfd *, nfds_t, const struct timespec *,
			   const sigset_t *);
	int k, err;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "ppoll");
	k = real(p, n, t, sigs);
	err = errno;
	if (k > 0)
		hide_end(p, n);
	errno = err;
	return k;
}
