/* The status enum's names and the helpers that fill a struct sfs_err. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "speechfs/err.h"
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
};

const char *sfs_status_type(enum sfs_status st)
{
	if ((unsigned)st >= SFS_STATUS_MAX)
		return "internal_error";
	return status_tab[st].type;
}

const char *sfs_status_str(enum sfs_status st)
{
	if ((unsigned)st >= SFS_STATUS_MAX)
		return "unknown status";
	return status_tab[st].str;
}

void sfs_err_init(struct sfs_err *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

enum sfs_status sfs_errf(struct sfs_err *e, enum sfs_status st,
			 const char *type, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return st;
	if (e->status != SFS_OK && e->message[0] && e->status == st)
		return st; /* keep the deepest cause */
	e->status = st;
	sfs_strlcpy(e->type, type ? type : sfs_status_type(st),
		    sizeof(e->type));
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
		sfs_strlcpy(e->type, "invalid_request", sizeof(e->type));
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
