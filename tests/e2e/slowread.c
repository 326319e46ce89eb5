/*
 * LD_PRELOAD for test_fs_signals.py: every read of /dev/fuse waits
 * SLOWREAD_MS (default 300) milliseconds before it reads, which widens
 * the moment between the mount's look at its session and its read of
 * the device to where a test can put a signal.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

ssize_t read(int fd, void *buf, size_t n)
{
	static ssize_t (*real)(int, void *, size_t);
	char link[64], target[16];
	struct timespec ts = { 0, 300 * 1000000L };
	const char *ms = getenv("SLOWREAD_MS");
	ssize_t k;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "read");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	k = readlink(link, target, sizeof(target));
	if (k == 9 && !memcmp(target, "/dev/fuse", 9)) {
		if (ms)
			ts.tv_nsec = atol(ms) * 1000000L;
		nanosleep(&ts, NULL);
	}
	return real(fd, buf, n);
}
