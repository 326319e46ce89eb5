/* The names of statuses and reasons, and the helpers that fill a struct
 * sfs_err. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "speechfs/err.h"
#include "speechfs/store.h"
#include "util_i.h"

static const struct {
	const char *type;
	const char *str;
} status_tab[SFS_STATUS_MAX] = {
	[SFS_OK] = { "ok", "success" },
	[SFS_NOT_FOUND] = { "not_found", "not found" },
	[SFS_FORBIDDEN] = { "forbidden", "forbidden" },
	[SFS_UNAUTHENTICATED] = { "unauthenticated", "not authenticated" },
	[SFS_CONFLICT] = { "conflict", "conflict" },
	[SFS_GONE] = { "gone", "gone" },
	[SFS_NOT_READY] = { "not_ready", "not ready" },
	[SFS_INVALID] = { "invalid_request", "invalid request" },
	[SFS_RANGE] = { "range_not_satisfiable", "range not satisfiable" },
	[SFS_RATE_LIMITED] = { "limit_exceeded", "rate limit exceeded" },
	[SFS_QUOTA] = { "quota_exceeded", "quota exceeded" },
	[SFS_TOO_LARGE] = { "too_large", "too large" },
	[SFS_NO_SPACE] = { "no_space", "no space left on device" },
	[SFS_BUSY] = { "busy", "store busy" },
	[SFS_IO] = { "internal_error", "internal error" },
	[SFS_NOMEM] = { "internal_error", "out of memory" },
	[SFS_UNSUPPORTED] = { "unsupported", "not supported" },
	[SFS_UNAVAILABLE] = { "storage_unavailable", "storage unavailable" },
	[SFS_PRECONDITION] = { "precondition_failed", "precondition failed" },
	[SFS_WOULD_WAIT] = { "storage_unavailable", "would wait for a server" },
};

/* sfs_thread_nowait: this thread may not wait for a server; refused */
static __thread int nowait, refused;

int sfs_thread_nowait(int on)
{
	int was = refused;

	nowait = on;
	refused = 0;
	return was;
}

int sfsi_nowait(void)
{
	return nowait;
}

int sfsi_would_wait(struct sfs_err *e, const char *what)
{
	if (!nowait)
		return 0;
	refused = 1;
	sfs_errf(e, SFS_WOULD_WAIT, SFS_R_NONE, "'%s': would wait", what);
	return 1;
}

const char *sfs_status_type(enum sfs_status st)
{
	if ((unsigned)st >= SFS_STATUS_MAX)
		return "internal_error";
	return status_tab[st].type;
}

static const char *const reason_tab[SFS_R_MAX] = {
	[SFS_R_AMBIGUOUS_CREDENTIALS] = "ambiguous_credentials",
	[SFS_R_ATTRIBUTE_EXISTS] = "attribute_exists",
	[SFS_R_ATTRIBUTE_NOT_FOUND] = "attribute_not_found",
	[SFS_R_ATTRIBUTE_TOO_LARGE] = "attribute_too_large",
	[SFS_R_CANCELLED] = "cancelled",
	[SFS_R_CERTIFICATE_NOT_TRUSTED] = "certificate_not_trusted",
	[SFS_R_CHECKSUM_MISMATCH] = "checksum_mismatch",
	[SFS_R_CONTENT_CHANGED] = "content_changed",
	[SFS_R_CONTENT_DISCARDED] = "content_discarded",
	[SFS_R_CSRF_FAILED] = "csrf_failed",
	[SFS_R_CURSOR_EXPIRED] = "cursor_expired",
	[SFS_R_DIRECTORY_EXISTS] = "directory_exists",
	[SFS_R_DIRECTORY_NOT_EMPTY] = "directory_not_empty",
	[SFS_R_DIRECTORY_NOT_FOUND] = "directory_not_found",
	[SFS_R_FILE_DELETED] = "file_deleted",
	[SFS_R_FILE_ID_EXISTS] = "file_id_exists",
	[SFS_R_FILE_NOT_DELETED] = "file_not_deleted",
	[SFS_R_FILE_NOT_FOUND] = "file_not_found",
	[SFS_R_FILE_PURGED] = "file_purged",
	[SFS_R_FORBIDDEN] = "forbidden",
	[SFS_R_IMPORT_BLOCKED] = "import_blocked",
	[SFS_R_IMPORT_FAILED] = "import_failed",
	[SFS_R_INGESTION_NOT_COMPLETED] = "ingestion_not_completed",
	[SFS_R_INGESTION_PENDING] = "ingestion_pending",
	[SFS_R_INSUFFICIENT_SCOPE] = "insufficient_scope",
	[SFS_R_INVALID_JSON] = "invalid_json",
	[SFS_R_INVALID_MULTIPART] = "invalid_multipart",
	[SFS_R_INVALID_PARAMETER] = "invalid_parameter",
	[SFS_R_INVALID_REQUEST] = "invalid_request",
	[SFS_R_INVALID_SESSION] = "invalid_session",
	[SFS_R_INVALID_SIGNATURE] = "invalid_signature",
	[SFS_R_INVALID_UUID] = "invalid_uuid",
	[SFS_R_KEY_NOT_FOUND] = "key_not_found",
	[SFS_R_LISTENING_AUDIO_CONFLICT] = "listening_audio_conflict",
	[SFS_R_LISTENING_AUDIO_DELETED] = "listening_audio_deleted",
	[SFS_R_LISTENING_AUDIO_EXISTS] = "listening_audio_exists",
	[SFS_R_LISTENING_AUDIO_NOT_FOUND] = "listening_audio_not_found",
	[SFS_R_LISTENING_AUDIO_NOT_READY] = "listening_audio_not_ready",
	[SFS_R_PAYLOAD_TOO_LARGE] = "payload_too_large",
	[SFS_R_PEAKS_NOT_FOUND] = "peaks_not_found",
	[SFS_R_QUOTA_EXCEEDED] = "quota_exceeded",
	[SFS_R_RANGE_NOT_SATISFIABLE] = "range_not_satisfiable",
	[SFS_R_RATE_LIMITED] = "rate_limited",
	[SFS_R_SESSION_EXPIRED] = "session_expired",
	[SFS_R_SHARE_NOT_FOUND] = "share_not_found",
	[SFS_R_SIGNED_URL_EXPIRED] = "signed_url_expired",
	[SFS_R_TENANT_NOT_FOUND] = "tenant_not_found",
	[SFS_R_TOO_MANY_FAILURES] = "too_many_failures",
	[SFS_R_TOO_MANY_UPLOADS] = "too_many_uploads",
	[SFS_R_UNAUTHENTICATED] = "unauthenticated",
	[SFS_R_UPLOAD_BUSY] = "upload_busy",
	[SFS_R_UPLOAD_NOT_FOUND] = "upload_not_found",
	[SFS_R_UPLOAD_OFFSET_MISMATCH] = "upload_offset_mismatch",
	[SFS_R_USER_EXISTS] = "user_exists",
	[SFS_R_USER_NOT_FOUND] = "user_not_found",
	[SFS_R_VALIDATION_ERROR] = "validation_error",
};

const char *sfs_reason_name(enum sfs_reason r)
{
	if ((unsigned)r >= SFS_R_MAX)
		return NULL;
	return reason_tab[r];
}

const char *sfs_err_type(const struct sfs_err *e)
{
	const char *n = sfs_reason_name(e->reason);

	return n ? n : sfs_status_type(e->status);
}

const char *sfs_status_str(enum sfs_status st)
{
	if ((unsigned)st >= SFS_STATUS_MAX)
		return "unknown status";
	return status_tab[st].str;
}

void sfs_err_init(struct sfs_err *e)
{
	/* only what is read before written: the fields are 2 KiB */
	if (!e)
		return;
	e->status = SFS_OK;
	e->reason = SFS_R_NONE;
	e->message[0] = '\0';
	e->nfields = 0;
}

enum sfs_status sfs_errf(struct sfs_err *e, enum sfs_status st,
			 enum sfs_reason why, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return st;
	if (e->status != SFS_OK && e->message[0] && e->status == st)
		return st; /* keep the deepest cause */
	e->status = st;
	e->reason = why;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return st;
}

enum sfs_status sfs_err_field(struct sfs_err *e, const char *field,
			      const char *type, const char *fmt, ...)
{
	struct sfs_field_err *fe;
	va_list ap;

	if (!e)
		return SFS_INVALID;
	if (e->status != SFS_INVALID) {
		e->status = SFS_INVALID;
		e->reason = SFS_R_INVALID_REQUEST;
		e->message[0] = '\0';
	}
	if (e->nfields >= SFS_ERR_MAX_FIELDS)
		return SFS_INVALID;
	fe = &e->fields[e->nfields++];
	sfs_strlcpy(fe->field, field ? field : "", sizeof(fe->field));
	sfs_strlcpy(fe->type, type ? type : "invalid", sizeof(fe->type));
	va_start(ap, fmt);
	vsnprintf(fe->message, sizeof(fe->message), fmt, ap);
	va_end(ap);
	if (!e->message[0])
		snprintf(e->message, sizeof(e->message),
			 "invalid value for '%s': %s", fe->field, fe->message);
	return SFS_INVALID;
}
