/*
 * Parsers of request text that need no connection (parse.c).
 */
#ifndef SPEECHFSD_PARSE_H
#define SPEECHFSD_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Parse "bytes=a-b"; 0 ok, 1 unsatisfiable, -1 ignore (serve all). */
int httpd_parse_range(const char *h, int64_t size, int64_t *from, int64_t *to);
/* Content-Disposition: attachment with filename and filename* (RFC 6266). */
void httpd_content_disposition(const char *filename, char *out, size_t outsz);
/*
 * Client text fit for a message or a log line: at most `max` bytes of `s`
 * (n bytes), cut on a character boundary, with control characters and
 * bytes that are not UTF-8 written as \xHH. Always NUL-terminated.
 */
void httpd_echo(const char *s, size_t n, size_t max, char *out, size_t outsz);
/* Does an If-None-Match value name etag (weakly; "*" names any)? */
int cache_inm_match(const char *inm, const char *etag);

/*
 * HTTP dates (one-second resolution) as validators, exact although a
 * file may change twice within a second. Last-Modified names the end of
 * the second of the last change (mtime_ms rounded up to the next whole
 * second), sent only once that moment has passed: never a date in the
 * future, and every copy dated D was taken after the change it shows.
 *
 * httpd_last_modified: the header's value into out (0 and "" while the
 * second of mtime_ms lasts: the ETag alone validates then).
 * httpd_date_current: is a copy dated `date` the current bytes? A date
 * that falls in the second of the last change counts as weak (a copy
 * from before that change may carry it): no. exact (If-Range): the date
 * must be the Last-Modified; else (If-Modified-Since) it or later. A date
 * after now_ms, or not an IMF-fixdate, is never current.
 * httpd_parse_date: an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT",
 * 1970 or later) into seconds since the epoch; -1 if it is not one.
 */
int httpd_last_modified(int64_t mtime_ms, int64_t now_ms, char *out,
			size_t outsz);
int httpd_date_current(const char *date, int64_t mtime_ms, int64_t now_ms,
		       int exact);
int httpd_parse_date(const char *s, int64_t *secs);

#endif
