/*
 * libFuzzer target: the daemon's parsers of header text (httpd/parse.c).
 * The input is four NUL-separated fields: a Range header, an
 * If-None-Match value (also read as an HTTP date), a filename and text to
 * echo. Checked: a satisfied range lies inside the body; If-None-Match
 * names its own tag; a date that parses formats back to itself; a
 * Content-Disposition never carries a control character (no header
 * injection through a filename); an echo is UTF-8 without control
 * characters, within its bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../httpd/parse.h"

static const char *field(const char **p, const char *end)
{
	const char *s = *p, *z = memchr(s, '\0', (size_t)(end - s));

	*p = z ? z + 1 : end;
	return s;
}

static int utf8_clean(const unsigned char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), out[1200];
	const char *p, *end, *range, *inm, *name, *text;
	int64_t from = -1, to = -1, sizes[] = { 0, 1, 100, 1 << 20, INT64_MAX };
	size_t i, n;
	int rc;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	p = buf;
	end = buf + size;
	range = field(&p, end);
	inm = field(&p, end);
	name = field(&p, end);
	text = p;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		rc = httpd_parse_range(range, sizes[i], &from, &to);
		if (rc == 0 && !(0 <= from && from <= to && to < sizes[i]))
			abort();
		if (rc < -1 || rc > 1)
			abort();
	}
	(void)cache_inm_match(inm, "\"j0123456789abcdef\"");
	if (!cache_inm_match("\"j0123456789abcdef\"", "\"j0123456789abcdef\""))
		abort();
	if (inm[0] == '"' && strchr(inm + 1, '"') &&
	    strchr(inm + 1, '"')[1] == '\0' && !cache_inm_match(inm, inm))
		abort();
	if (httpd_parse_date(inm, &from) == 0 && from > 0) {
		/* the Last-Modified of a change just before that second */
		if (!httpd_last_modified(from * 1000 - 1, INT64_MAX, out,
					 sizeof(out)) ||
		    httpd_parse_date(out, &to) || to != from ||
		    !httpd_date_current(out, from * 1000 - 1, INT64_MAX, 1) ||
		    httpd_date_current(out, from * 1000, INT64_MAX, 0))
			abort();
	}
	(void)httpd_date_current(inm, 1 << 30, INT64_MAX, 0);
	httpd_content_disposition(name, out, sizeof(out));
	if (!utf8_clean((const unsigned char *)out))
		abort();
	n = (size_t)(end - text);
	httpd_echo(text, n, 60, out, sizeof(out));
	if (strlen(out) > 60 || !utf8_clean((const unsigned char *)out))
		abort();
	free(buf);
	return 0;
}
