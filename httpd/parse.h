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

#endif
