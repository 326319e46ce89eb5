/*
 * The kernel's read-ahead on a remote mount (fs_i.h). FUSE gives every
 * mount a window of 128 KiB (its backing device's read_ahead_kb) and the
 * INIT answer may only lower it: a reader in order then costs a READ of
 * 128 KiB each, 8,192 round trips through the mount per GiB, each with
 * its reply's copy and wake-ups. Where the mount may (root: the sysfs
 * file is root's), it raises the window before it answers INIT, and
 * fs_init asks for as much: READs of 1 MiB (libfuse's largest), a few
 * in flight. A mount that may not keeps 128 KiB and says so once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/banned.h"

/* mountinfo's \ooo escapes (space, tab, newline, backslash) undone */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
					(s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/*
 * The device ("0:53") of this process's newest mount of type
 * fuse.speechfs at mountpoint, from /proc/self/mountinfo: 0, or -1.
 * Newest: the last line (one mounted over an older one at that path).
 */
static int mount_dev(const char *mountpoint, char *dev, size_t size)
{
	char *line = NULL, *f[5], *sep, *save, *type;
	size_t cap = 0;
	int i, found = -1;
	FILE *fp = fopen("/proc/self/mountinfo", "re");

	while (fp && getline(&line, &cap, fp) > 0) {
		/* id parent dev root point ... - type source options */
		f[0] = strtok_r(line, " ", &save);
		for (i = 1; i < 5 && f[i - 1]; i++)
			f[i] = strtok_r(NULL, " ", &save);
		if (!f[4] || !(sep = strtok_r(NULL, "\n", &save)) ||
		    !(sep = strstr(sep, " - ")))
			continue;
		type = sep + 3;
		unescape(f[4]);
		if (strcmp(f[4], mountpoint) ||
		    strncmp(type, "fuse.speechfs ", 14))
			continue;
		if (strlen(f[2]) < size) {
			memcpy(dev, f[2], strlen(f[2]) + 1);
			found = 0;
		}
	}
	free(line);
	if (fp)
		fclose(fp);
	return found;
}

static long read_kib(const char *path)
{
	FILE *fp = fopen(path, "re");
	long kib = -1;

	if (fp && fscanf(fp, "%ld", &kib) != 1)
		kib = -1;
	if (fp)
		fclose(fp);
	return kib;
}

static int write_kib(const char *path, long kib)
{
	FILE *fp = fopen(path, "we");
	int ok;

	if (!fp)
		return -1;
	ok = fprintf(fp, "%ld\n", kib) > 0;
	if (fclose(fp) || !ok)
		return -1;
	return 0;
}

unsigned fs_read_ahead_raise(const char *mountpoint)
{
	char dev[64], path[128];
	long kib;

	if (mount_dev(mountpoint, dev, sizeof(dev)))
		return 0;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	kib = read_kib(path);
	if (kib < 0)
		return 0;
	if (kib >= FS_READ_AHEAD_KIB)
		return (unsigned)kib;
	if (write_kib(path, FS_READ_AHEAD_KIB)) {
		sfs_info("fs",
			 "read-ahead stays at %ld KiB: cannot write '%s': %s",
			 kib, path, strerror(errno));
		return 0;
	}
	return FS_READ_AHEAD_KIB;
}
