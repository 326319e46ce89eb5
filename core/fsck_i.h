/*
 * Parts of the consistency check (fsck.c) that live beside it: derived
 * data of the metadata, checked against what it is derived from.
 */
#ifndef SFS_FSCK_I_H
#define SFS_FSCK_I_H

#include <stdint.h>
#include "speechfs/err.h"

struct db;

/*
 * file_tag's copies of their file's owner, creationDate and deletion mark
 * (schemas v7, v10) against the file: one line to say(arg, line) if any
 * differ (*found: how many rows); with repair, those rows are made again
 * in one write transaction and *repaired counts it once.
 */
enum sfs_status sfsi_fsck_tag_rows(struct db *d, int repair,
				   void (*say)(void *arg, const char *line),
				   void *arg, int64_t *found, int64_t *repaired,
				   struct sfs_err *e) SFS_MUST_CHECK;

/*
 * tag_count (schema v9) against file_tag: one line to say(arg, line) per
 * (owner, tag) whose counter differs, at most `max_lines` of them, then
 * how many more. With repair, every counter is made again from file_tag
 * in one write transaction and *repaired counts it once. *found: the
 * counters that differed.
 */
enum sfs_status sfsi_fsck_tag_counts(struct db *d, int repair, int max_lines,
				     void (*say)(void *arg, const char *line),
				     void *arg, int64_t *found,
				     int64_t *repaired,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Each file row's copy of its tag names (file.tagnames, schema v12)
 * against its tags' rows: one line to say(arg, line) per file whose copy
 * holds other names, at most `max_lines` of them, then how many more
 * (*found: the files). With repair, those copies are made again in one
 * write transaction and *repaired counts it once.
 */
enum sfs_status sfsi_fsck_tag_names(struct db *d, int repair, int max_lines,
				    void (*say)(void *arg, const char *line),
				    void *arg, int64_t *found,
				    int64_t *repaired,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The names' index against the files' names. SQLite, read-only: names
 * waiting in fts_pending for a file that is gone, files neither indexed
 * nor waiting, index entries without a file, names both waiting and
 * indexed; with repair, when those find nothing, FTS5's integrity check
 * against the files too (under the write lock). PostgreSQL: pg_trgm's two
 * indexes there and valid. A line to say(arg, line) per finding, *found:
 * how many. With repair, the index is made again from the files in one
 * write transaction (SQLite: FTS5's rebuild and fts_pending emptied) and
 * *repaired counts it once.
 */
enum sfs_status sfsi_fsck_names(struct db *d, int repair,
				void (*say)(void *arg, const char *line),
				void *arg, int64_t *found, int64_t *repaired,
				struct sfs_err *e) SFS_MUST_CHECK;

#endif
