/*
 * The one error convention of speechfs: every core call returns an
 * enum sfs_status (0 = OK) and fills an optional struct sfs_err with a
 * message, a machine-readable error type and field-level validation errors.
 * Front ends translate the status in one table each (HTTP status, errno).
 */
#ifndef SPEECHFS_ERR_H
#define SPEECHFS_ERR_H

#include <stddef.h>

#define SFS_MUST_CHECK __attribute__((warn_unused_result))

enum sfs_status {
	SFS_OK = 0,
	SFS_NOT_FOUND,	     /* no such object, or of another tenant */
	SFS_FORBIDDEN,	     /* exists, but the actor may not do this */
	SFS_UNAUTHENTICATED, /* no or bad credentials */
	SFS_CONFLICT,	     /* state forbids it (already deleted, ...) */
	SFS_GONE,	     /* content deleted, purged or discarded */
	SFS_NOT_READY,	     /* ingestion or generation not completed */
	SFS_INVALID,	     /* bad input; see the field errors */
	SFS_RANGE,	     /* unsatisfiable byte range */
	SFS_RATE_LIMITED,    /* too many requests */
	SFS_QUOTA,	     /* tenant quota would be exceeded */
	SFS_TOO_LARGE,	     /* a size limit would be exceeded */
	SFS_NO_SPACE,	     /* the disk is full */
	SFS_BUSY,	     /* the database stayed locked */
	SFS_IO,		     /* an I/O or internal failure */
	SFS_NOMEM,	     /* out of memory */
	SFS_UNSUPPORTED,     /* not supported (format, scheme, ...) */
	SFS_UNAVAILABLE,     /* a service the store needs is unreachable */
	SFS_STATUS_MAX
};

#define SFS_ERR_MAX_FIELDS 8

struct sfs_field_err {
	char field[64]; /* "name", "tags[2]", "file" ... */
	char type[32];	/* "missing", "invalid", "too_long" ... */
	char message[160];
};

struct sfs_err {
	enum sfs_status status;
	char type[40]; /* "file_not_found", "quota_exceeded" ... */
	char message[256];
	int nfields;
	struct sfs_field_err fields[SFS_ERR_MAX_FIELDS];
};

/* Reset to OK with no message. */
void sfs_err_init(struct sfs_err *e);

/*
 * Record an error and return its status, so callers can write
 * `return sfs_errf(e, SFS_INVALID, "invalid_request", "bad %s", x);`.
 * `e` may be NULL; `type` may be NULL for the status's default type.
 * A message already set is not overwritten (the first, deepest cause wins).
 */
enum sfs_status sfs_errf(struct sfs_err *e, enum sfs_status st,
			 const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Add a field-level validation error (st becomes SFS_INVALID). */
enum sfs_status sfs_err_field(struct sfs_err *e, const char *field,
			      const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "not_found", "forbidden" ...: the default error type of a status. */
const char *sfs_status_type(enum sfs_status st);

/* A short English text for a status. */
const char *sfs_status_str(enum sfs_status st);

#endif
