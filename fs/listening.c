/*
 * /.listening/: a read-only mirror of the tree in which each recording
 * whose listening audio is COMPLETED (and neither deleted nor purged)
 * appears as "<entry without extension>.mp3", opened from its MP3 blob.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "fs_i.h"
#include "speechfs/banned.h"

int fs_listening_resolve(const char *rest, struct fs_node *n)
{
	const char *last;
	char dir[SFS_VPATH_MAX + 2];
	int ret;

	if (!*rest || !strcmp(rest, "/")) {
		snprintf(n->dir, sizeof(n->dir), "/");
		n->kind = FS_LA_DIR;
		return fs_stat_vdir("/", n);
	}
	ret = fs_split(rest, dir, sizeof(dir), &last);
	if (ret)
		return ret;
	if (fs_dirpath(dir, n->dir, sizeof(n->dir)))
		return -ENOENT;
	ret = fs_find_file(n->dir, last, FS_LIST_LISTENING, n);
	if (!ret) {
		n->kind = FS_LA_FILE;
		return 0;
	}
	if (ret != -ENOENT)
		return ret;
	if (fs_dirpath(rest, n->dir, sizeof(n->dir)))
		return -ENOENT;
	ret = fs_stat_vdir(n->dir, n);
	if (!ret)
		n->kind = FS_LA_DIR;
	return ret;
}
