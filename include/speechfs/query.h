/*
 * Queries of files: everything GET /files and GET /files/shared-with-me
 * accept, with the API's parameter names, defaults and limits. Validation
 * of parameter values lives here so every front end agrees.
 */
#ifndef SPEECHFS_QUERY_H
#define SPEECHFS_QUERY_H

#include <stddef.h>
#include <stdint.h>
#include "auth.h"
#include "err.h"
#include "file.h"

struct sfs_store;

enum sfs_sort { SFS_SORT_CREATED = 0, SFS_SORT_NAME, SFS_SORT_SIZE };

#define SFS_PAGE_SIZE_DEFAULT 20
#define SFS_PAGE_SIZE_MAX 100
#define SFS_QUERY_TAGS_MAX 32

struct sfs_query {
	int64_t page;	    /* 0-based */
	int64_t size;	    /* 1..100 */
	int deleted;	    /* 0, 1; -1: either */
	int discarded;	    /* -1: either */
	int purged;	    /* -1: either (isPurged, an extension) */
	unsigned ingestion; /* 1 << enum sfs_jstate; 0: any */
	char *name;	    /* substring, case-insensitive */
	char *filename;
	char sha256[65];	/* "": any */
	int64_t created_after;	/* ms, INT64_MIN: unset */
	int64_t created_before; /* ms, INT64_MAX: unset */
	unsigned la_status;	/* 1 << enum sfs_jstate; 0: any */
	int la_deleted;		/* -1: either */
	int la_discarded;	/* -1: either */
	char *path;		/* "/" */
	int recursive;
	enum sfs_sort sort;
	int desc;
	char **tags;
	size_t ntags;
	int tags_any; /* 0: all (AND), 1: any (OR) */
	int publish;  /* -1: either */
	int access;   /* shared-with-me: -1 either */
	/*
	 * cursor (an extension of GET /files): continue after the file
	 * cursor_id ("" : no cursor) in the order cursor_desc of
	 * creationDate, with the total its walk began with
	 */
	char cursor_id[SFS_ID_SIZE];
	int cursor_desc;
	int64_t cursor_total;
	uint32_t cursor_filters; /* the mark of the filters it was made for */
};

void sfs_query_init(struct sfs_query *q);
void sfs_query_release(struct sfs_query *q);

/*
 * Set one parameter by its API name ("page", "isDeleted", "tags",
 * "listeningAudio.status", "sort" ...) from its query-string value.
 * SFS_INVALID with a field error naming the parameter for a bad value;
 * SFS_NOT_FOUND for an unknown name (a front end may ignore those).
 */
enum sfs_status sfs_query_param(struct sfs_query *q, const char *key,
				const char *value,
				struct sfs_err *e) SFS_MUST_CHECK;

struct sfs_file_list {
	struct sfs_file *files;
	size_t n;
	int64_t total; /* across all pages */
	int more;      /* rows follow this page (GET /files) */
	char **dirs;   /* direct subdirectories (non-recursive) */
	size_t ndirs;
	int has_dirs;
};

void sfs_file_list_release(struct sfs_file_list *l);

/*
 * Room for a cursor's text: a letter, an id, '.', a total, '.', the mark
 * of the listing's filters (8 hex digits).
 */
#define SFS_CURSOR_SIZE (SFS_ID_SIZE + 34)

/*
 * The mark of q's filters (everything but page, size and sort): a cursor
 * carries the mark of the listing it was made for, and continues only a
 * listing with the same one (its total was counted for those filters).
 */
uint32_t sfs_query_filters_mark(const struct sfs_query *q);

/*
 * The cursor that continues GET /files after page l of query q (the
 * answer's nextCursor): 1 and out filled when rows follow and the order
 * is by creationDate (a cursor is a position in that order: the last
 * file's creationDate and row), 0 otherwise.
 */
int sfs_query_cursor(const struct sfs_query *q, const struct sfs_file_list *l,
		     char *out, size_t size);

/* The actor's own files (GET /files). */
enum sfs_status sfs_query_files(struct sfs_store *s, const struct sfs_actor *a,
				const struct sfs_query *q,
				struct sfs_file_list *out,
				struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Files others made reachable to the actor: direct shares and INTERNAL
 * files of the same tenant, never the actor's own nor deleted ones.
 * Uses page, size, access, name, filename and sort of q.
 */
enum sfs_status sfs_query_shared(struct sfs_store *s, const struct sfs_actor *a,
				 const struct sfs_query *q,
				 struct sfs_file_list *out,
				 struct sfs_err *e) SFS_MUST_CHECK;

/* The listings of a front end in which a file can appear. */
enum sfs_listing {
	SFS_LIST_DIR,	    /* the actor's live files of one directory */
	SFS_LIST_LISTENING, /* ... whose listening MP3 can be read */
	SFS_LIST_TRASH,	    /* the actor's deleted, unpurged files */
	SFS_LIST_SHARED	    /* live files of others reachable to the actor */
};

/*
 * Does f, loaded for the actor, belong in `listing` (of directory `dir`
 * for SFS_LIST_DIR and SFS_LIST_LISTENING; dir is ignored for the
 * others)? The rule the listing queries apply (sfs_query_dir_files,
 * isDeleted=true, sfs_query_shared), for a front end that checks a row it
 * holds, such as a cached lookup.
 */
int sfs_file_listed(const struct sfs_file *f, enum sfs_listing listing,
		    const char *dir);

/*
 * Every live file of one directory of the actor, all pages, cheapest
 * columns only (the mount's readdir): calls fn for each, in ino order.
 */
enum sfs_status
sfs_query_dir_files(struct sfs_store *s, const struct sfs_actor *a,
		    const char *path,
		    int (*fn)(void *arg, const struct sfs_file *f), void *arg,
		    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The same files as sfs_query_dir_files, in no particular order (sort
 * by ino where it matters), with only what an entry's name is made of:
 * ino, id, owner, tenant, name, filename, path, suffixed, access and
 * perm, and whether the listening mirror shows it (la.status,
 * la.deleted, la.purged); the rest as sfs_file_init leaves it (a remote
 * store may fill more). For a listing of names (`find`), about 40 % of the cost
 * of the whole rows.
 */
enum sfs_status
sfs_query_dir_entries(struct sfs_store *s, const struct sfs_actor *a,
		      const char *path,
		      int (*fn)(void *arg, const struct sfs_file *f), void *arg,
		      struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The live files of one directory of the actor whose display name is
 * exactly one of names[0..n) (n <= 4; NULL entries are skipped) or whose
 * id starts with id_prefix (lower case hex; NULL: none), with the columns
 * of sfs_query_dir_files, in ino order: the mount's lookup of an entry
 * name by the names and the id it can stand for.
 */
enum sfs_status
sfs_query_dir_names(struct sfs_store *s, const struct sfs_actor *a,
		    const char *path, const char *const *names, size_t n,
		    const char *id_prefix,
		    int (*fn)(void *arg, const struct sfs_file *f), void *arg,
		    struct sfs_err *e) SFS_MUST_CHECK;

#endif
