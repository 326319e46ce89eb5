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

/* ---- HTTP dates as validators ------------------------------------------- */

static const char wdays[7][4] = { "Thu", "Fri", "Sat", "Sun",
				  "Mon", "Tue", "Wed" }; /* from 1970-01-01 */
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* The IMF-fixdate of a time in seconds: "Sun, 06 Nov 1994 08:49:37 GMT". */
static void fixdate(int64_t secs, char *out, size_t outsz)
{
	int64_t days = secs / 86400, sod = secs % 86400, y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	snprintf(out, outsz, "%s, %02u %s %04lld %02d:%02d:%02d GMT",
		 wdays[days % 7], d, months[m - 1], (long long)y,
		 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
}

static int two(const char *s, unsigned *out)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	*out = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
	return 0;
}

int httpd_parse_date(const char *s, int64_t *secs)
{
	unsigned d, mo, y1, y2, h, mi, sec, m, dd;
	int64_t days, y;

	/* "Sun, 06 Nov 1994 08:49:37 GMT": 29 bytes, fixed places */
	if (!s || strlen(s) != 29 || s[3] != ',' || s[4] != ' ' ||
	    s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
	    s[22] != ':' || strcmp(s + 25, " GMT") != 0)
		return -1;
	if (two(s + 5, &d) || two(s + 12, &y1) || two(s + 14, &y2) ||
	    two(s + 17, &h) || two(s + 20, &mi) || two(s + 23, &sec))
		return -1;
	for (mo = 0; mo < 12 && strncmp(s + 8, months[mo], 3); mo++)
		;
	if (mo == 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	days = days_from_civil(y1 * 100 + y2, mo + 1, d);
	if (days < 0 || strncmp(s, wdays[days % 7], 3) != 0)
		return -1; /* before 1970, or not that day of the week */
	civil_from_days(days, &y, &m, &dd);
	if (m != mo + 1 || dd != d)
		return -1; /* a day the month lacks (30 Feb is 2 Mar) */
	*secs = days * 86400 + h * 3600 + mi * 60 + (sec > 59 ? 59 : sec);
	return 0;
}

/*
 * A Last-Modified names the end of the second in which the bytes last
 * changed (the first whole second after mtime): a date on or after it
 * comes from a copy taken after that change, and a change later within
 * the same second as a copy moves the stamp past the copy's date.
 */
static int64_t stamp_of(int64_t mtime_ms)
{
	return mtime_ms / 1000 + 1;
}

int httpd_last_modified(int64_t mtime_ms, int64_t now_ms, char *out,
			size_t outsz)
{
	out[0] = '\0';
	if (mtime_ms <= 0 || now_ms / 1000 < stamp_of(mtime_ms))
		return 0;
	fixdate(stamp_of(mtime_ms), out, outsz);
	return 1;
}

int httpd_date_current(const char *date, int64_t mtime_ms, int64_t now_ms,
		       int exact)
{
	int64_t d;

	if (mtime_ms <= 0 || httpd_parse_date(date, &d))
		return 0;
	if (exact)
		return d == stamp_of(mtime_ms) && d <= now_ms / 1000;
	return d >= stamp_of(mtime_ms) && d <= now_ms / 1000;
}
