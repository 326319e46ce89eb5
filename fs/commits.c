/*
 * -o commit=MS, for bulk loads: the mount's changes (creates, closes,
 * renames, deletes, attributes) are savepoints of one transaction that
 * core commits and syncs at most min(MS, 1000) ms after it began
 * (sfs_store_batch): a batch of new files writes the pages they share
 * (indexes, the change feed, the tenant's row) once. close() returns at
 * once; fsync() commits the batch and syncs before it returns, and so
 * does unmounting. Other processes see a batch when it is committed, and
 * their writes wait for that commit. A crash of the machine or of
 * speechfs within the window loses that window's changes whole: a file
 * keeps its previous content, a new file is not there (speechfs(1)).
 */
#include "fs_i.h"
#include "speechfs/log.h"
#include "speechfs/store.h"
#include "speechfs/banned.h"

int fs_commits_sync(void)
{
	struct sfs_err e;
	enum sfs_status st;

	if (!g_fs.commit_ms)
		return 0;
	sfs_err_init(&e);
	st = sfs_store_sync(g_fs.store, &e);
	if (st)
		sfs_error("fs",
			  "commits of closed files may not be durable: %s",
			  e.message);
	return -fs_errno(st, &e);
}

void fs_commits_start(void)
{
	struct sfs_err e;

	if (!g_fs.commit_ms)
		return;
	sfs_err_init(&e);
	if (sfs_store_batch(g_fs.store, g_fs.commit_ms, &e)) {
		/* every close waits for the disk, as without the option */
		sfs_warn("fs", "cannot batch commits (%s): closes are durable",
			 e.message);
		g_fs.commit_ms = 0;
	}
}

void fs_commits_drain(void)
{
	struct sfs_err e;

	if (!g_fs.commit_ms)
		return;
	sfs_err_init(&e);
	if (sfs_store_batch(g_fs.store, 0, &e))
		sfs_error("fs", "the last commits may not be durable: %s",
			  e.message);
}
