/*
 * The daemon's parsers of request text that need no connection: Range,
 * If-None-Match, Content-Disposition's filename, and client text made safe
 * to echo. No libmicrohttpd in here: the fuzzer links it alone
 * (tests/fuzz/fuzz_headers.c).
 */
#include <stdio.h>
#include <string.h>
#include "parse.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

/* The length of the UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0], cp;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

void httpd_echo(const char *s, size_t n, size_t max, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, len, room;

	if (!outsz)
		return;
	room = outsz - 1 < max ? outsz - 1 : max;
	while (i < n) {
		len = utf8_len(p + i, n - i);
		if (len == 1 && (p[i] < 0x20 || p[i] == 0x7f))
			len = 0;
		if (len) {
			if (o + len > room)
				break;
			memcpy(out + o, p + i, len);
			o += len;
			i += len;
			continue;
		}
		if (o + 4 > room)
			break;
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[p[i] >> 4];
		out[o++] = hex[p[i] & 15];
		i++;
	}
	out[o] = '\0';
}

int httpd_parse_range(const char *h, int64_t size, int64_t *from, int64_t *to)
{
	const char *p, *dash;
	int64_t a = -1, b = -1;
	char num[32];
	size_t n;

	if (strncmp(h, "bytes=", 6) != 0)
		return -1;
	p = h + 6;
	while (*p == ' ')
		p++;
	if (strchr(p, ','))
		return -1; /* several ranges: serve the whole body */
	dash = strchr(p, '-');
	if (!dash)
		return -1;
	n = (size_t)(dash - p);
	if (n) {
		if (n >= sizeof(num))
			return -1;
		memcpy(num, p, n);
		num[n] = 0;
		if (sfs_parse_i64(num, &a) || a < 0)
			return -1;
	}
	if (dash[1]) {
		if (sfs_parse_i64(dash + 1, &b) || b < 0)
			return -1;
	}
	if (a < 0 && b < 0)
		return -1;
	if (a < 0) {
		/* suffix: the last b bytes */
		if (b == 0 || size == 0)
			return 1;
		*from = b >= size ? 0 : size - b;
		*to = size - 1;
		return 0;
	}
	if (b >= 0 && b < a)
		return -1;
	if (a >= size)
		return 1;
	*from = a;
	*to = (b < 0 || b >= size) ? size - 1 : b;
	return 0;
}

void httpd_content_disposition(const char *filename, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	char ascii[256], enc[800];
	size_t i, ai = 0, ei = 0;
	int plain = 1;

	if (!filename || !*filename)
		filename = "download";
	for (i = 0; filename[i] && ai < sizeof(ascii) - 1; i++) {
		unsigned char c = (unsigned char)filename[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
			plain = 0;
			/* one '_' per UTF-8 sequence, not per byte */
			if (c < 0x80 || c >= 0xc0)
				ascii[ai++] = '_';
		} else {
			ascii[ai++] = (char)c;
		}
	}
	ascii[ai] = 0;
	if (plain) {
		snprintf(out, outsz, "attachment; filename=\"%s\"", ascii);
		return;
	}
	for (i = 0; filename[i] && ei + 4 < sizeof(enc); i++) {
		unsigned char c = (unsigned char)filename[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c)) {
			enc[ei++] = (char)c;
		} else {
			enc[ei++] = '%';
			enc[ei++] = hex[c >> 4];
			enc[ei++] = hex[c & 15];
		}
	}
	enc[ei] = 0;
	snprintf(out, outsz, "attachment; filename=\"%s\"; filename*=UTF-8''%s",
		 ascii, enc);
}

/*
 * Does an If-None-Match list name etag? "*" names any; the comparison is
 * weak (W/ ignored), as RFC 9110 13.1.2 asks of If-None-Match.
 */
int cache_inm_match(const char *inm, const char *etag)
{
	const char *p = inm, *q;
	size_t n, elen = strlen(etag);

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p != '"')
			return 0; /* malformed: no match */
		q = strchr(p + 1, '"');
		if (!q || (q[1] && q[1] != ',' && q[1] != ' ' && q[1] != '\t'))
			return 0; /* malformed: no match */
		n = (size_t)(q - p) + 1;
		if (n == elen && memcmp(p, etag, n) == 0)
			return 1;
		p = q + 1;
	}
	return 0;
}
