/*
 * The one error convention of speechfs: every core call returns an
 * enum sfs_status (0 = OK) and fills an optional struct sfs_err with a
 * reason (what exactly went wrong, when the status alone does not say),
 * a message and field-level validation errors. Front ends translate the
 * status and reason in one table each (HTTP status and error type; errno)
 * and never look at the message.
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
	SFS_PRECONDITION,    /* a condition of the caller's (If-Match) failed */
	SFS_WOULD_WAIT, /* it would wait for a server (sfs_thread_nowait) */
	SFS_STATUS_MAX
};

/*
 * Reasons: the API's error types where they are more precise than the
 * status's (sfs_err_type gives the name: SFS_R_FILE_DELETED is
 * "file_deleted").
 */
enum sfs_reason {
	SFS_R_NONE = 0, /* the status says it all */
	SFS_R_AMBIGUOUS_CREDENTIALS,
	SFS_R_ATTRIBUTE_EXISTS,
	SFS_R_ATTRIBUTE_NOT_FOUND,
	SFS_R_ATTRIBUTE_TOO_LARGE,
	SFS_R_CANCELLED,
	SFS_R_CERTIFICATE_NOT_TRUSTED, /* a server's TLS certificate (remote) */
	SFS_R_CHECKSUM_MISMATCH,
	SFS_R_CONTENT_CHANGED,
	SFS_R_CONTENT_DISCARDED,
	SFS_R_CSRF_FAILED,
	SFS_R_CURSOR_EXPIRED,
	SFS_R_DIRECTORY_EXISTS,
	SFS_R_DIRECTORY_NOT_EMPTY,
	SFS_R_DIRECTORY_NOT_FOUND,
	SFS_R_FILE_DELETED,
	SFS_R_FILE_ID_EXISTS,
	SFS_R_FILE_NOT_DELETED,
	SFS_R_FILE_NOT_FOUND,
	SFS_R_FILE_PURGED,
	SFS_R_FORBIDDEN,
	SFS_R_IMPORT_BLOCKED,
	SFS_R_IMPORT_FAILED,
	SFS_R_INGESTION_NOT_COMPLETED,
	SFS_R_INGESTION_PENDING,
	SFS_R_INSUFFICIENT_SCOPE,
	SFS_R_INVALID_JSON,
	SFS_R_INVALID_MULTIPART,
	SFS_R_INVALID_PARAMETER,
	SFS_R_INVALID_REQUEST,
	SFS_R_INVALID_SESSION,
	SFS_R_INVALID_SIGNATURE,
	SFS_R_INVALID_UUID,
	SFS_R_KEY_NOT_FOUND,
	SFS_R_LISTENING_AUDIO_CONFLICT,
	SFS_R_LISTENING_AUDIO_DELETED,
	SFS_R_LISTENING_AUDIO_EXISTS,
	SFS_R_LISTENING_AUDIO_NOT_FOUND,
	SFS_R_LISTENING_AUDIO_NOT_READY,
	SFS_R_PAYLOAD_TOO_LARGE,
	SFS_R_PEAKS_NOT_FOUND,
	SFS_R_QUOTA_EXCEEDED,
	SFS_R_RANGE_NOT_SATISFIABLE,
	SFS_R_RATE_LIMITED,
	SFS_R_SESSION_EXPIRED,
	SFS_R_SHARE_NOT_FOUND,
	SFS_R_SIGNED_URL_EXPIRED,
	SFS_R_TENANT_NOT_FOUND,
	SFS_R_TOO_MANY_FAILURES,
	SFS_R_TOO_MANY_UPLOADS,
	SFS_R_UNAUTHENTICATED,
	SFS_R_UPLOAD_BUSY,
	SFS_R_UPLOAD_NOT_FOUND,
	SFS_R_UPLOAD_OFFSET_MISMATCH,
	SFS_R_USER_EXISTS,
	SFS_R_USER_NOT_FOUND,
	SFS_R_VALIDATION_ERROR,
	SFS_R_MAX
};

#define SFS_ERR_MAX_FIELDS 8

struct sfs_field_err {
	char field[64]; /* "name", "tags[2]", "file" ... */
	char type[32];	/* "missing", "invalid", "too_long" ... */
	char message[160];
};

struct sfs_err {
	enum sfs_status status;
	enum sfs_reason reason;
	char message[256];
	int nfields;
	struct sfs_field_err fields[SFS_ERR_MAX_FIELDS];
};

/* Reset to OK with no message. */
void sfs_err_init(struct sfs_err *e);

/*
 * Record an error and return its status, so callers can write
 * `return sfs_errf(e, SFS_CONFLICT, SFS_R_FILE_DELETED, "bad %s", x);`.
 * `e` may be NULL; `why` may be SFS_R_NONE. An error of the same status
 * already recorded is kept (the first, deepest cause wins).
 */
enum sfs_status sfs_errf(struct sfs_err *e, enum sfs_status st,
			 enum sfs_reason why, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Add a field-level validation error (st becomes SFS_INVALID). */
enum sfs_status sfs_err_field(struct sfs_err *e, const char *field,
			      const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "not_found", "forbidden" ...: the default error type of a status. */
const char *sfs_status_type(enum sfs_status st);

/* "file_deleted" ...: the name of a reason; NULL for SFS_R_NONE. */
const char *sfs_reason_name(enum sfs_reason r);

/* The error type the API shows for e: its reason's, else its status's. */
const char *sfs_err_type(const struct sfs_err *e);

/* A short English text for a status. */
const char *sfs_status_str(enum sfs_status st);

#endif
