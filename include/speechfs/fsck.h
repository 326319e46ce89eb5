/*
 * The consistency check of a store (speechfsd fsck): the blob store
 * against the rows that reference it.
 */
#ifndef SPEECHFS_FSCK_H
#define SPEECHFS_FSCK_H

#include <stdint.h>
#include "err.h"

struct sfs_store;

struct sfs_fsck_report {
	int64_t blobs_checked;
	int64_t orphan_files;	/* files under blobs/ with no row */
	int64_t missing_files;	/* rows whose file is missing */
	int64_t bad_refcounts;	/* refs disagreeing with references */
	int64_t bad_tag_rows;	/* tags' copies of their file's fields */
	int64_t bad_counters;	/* tag counters disagreeing with the tags */
	int64_t bad_tag_names;	/* files' copies of their tag names */
	int64_t bad_name_index; /* the names' index against the names */
	int64_t repaired;
};

/*
 * The consistency check: blobs without rows and rows without blobs,
 * reference counts against the files and listening audio that use them,
 * and the metadata's derived data (tenant usage, the tags' copies of their
 * file's fields, each owner's files per tag, the files' copies of their tag
 * names, the names' index) against
 * what they derive from. With repair, orphan files are
 * removed, counts corrected, and files whose blob is missing are marked
 * content-discarded (never silently deleted).
 * `report(arg, line)` gets one line per finding (may be NULL).
 */
enum sfs_status sfs_fsck(struct sfs_store *s, int repair,
			 struct sfs_fsck_report *r,
			 void (*report)(void *arg, const char *line), void *arg,
			 struct sfs_err *e) SFS_MUST_CHECK;

#endif
