/*
 * ISO 8601 timestamps of the API (speechfs/json.h): formatted by
 * arithmetic, parsed strictly.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "json_i.h"
#include "speechfs/json.h"

/* Days since 1970-01-01 to a civil date (proleptic Gregorian). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

static char *put_digits(char *p, unsigned v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + n;
}

/*
 * By arithmetic rather than gmtime_r + snprintf: a list formats five
 * timestamps per file, and glibc's gmtime_r takes a process-wide lock.
 */
void sfsi_json_format_ms(int64_t ms, char out[32])
{
	int64_t secs = ms / 1000, frac = ms % 1000, days, sod, y;
	unsigned mo, d;
	char *p = out;

	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	days = secs / 86400;
	sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	civil_from_days(days, &y, &mo, &d);
	if (y < 0 || y > 9999) {
		snprintf(out, 32, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ",
			 (long long)y, mo, d, (int)(sod / 3600),
			 (int)(sod / 60 % 60), (int)(sod % 60), (int)frac);
		return;
	}
	p = put_digits(p, (unsigned)y, 4);
	*p++ = '-';
	p = put_digits(p, mo, 2);
	*p++ = '-';
	p = put_digits(p, d, 2);
	*p++ = 'T';
	p = put_digits(p, (unsigned)(sod / 3600), 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)(sod / 60 % 60), 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)(sod % 60), 2);
	*p++ = '.';
	p = put_digits(p, (unsigned)frac, 3);
	*p++ = 'Z';
	*p = '\0';
}

void sfs_iso8601(int64_t ms, char out[32])
{
	if (!ms) {
		out[0] = '\0';
		return;
	}
	sfsi_json_format_ms(ms, out);
}

static int digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int d[] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : d[m - 1];
}

int sfs_iso8601_parse(const char *s, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0, oh, om, n;
	struct tm tm;
	time_t t;

	if (!s || !ms)
		return -1;
	if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -1;
	s += 10;
	if (*s) {
		if (*s != 'T' || digits(s + 1, 2, &h) || s[3] != ':' ||
		    digits(s + 4, 2, &mi) || s[6] != ':' ||
		    digits(s + 7, 2, &sec))
			return -1;
		if (h > 23 || mi > 59 || sec > 59)
			return -1;
		s += 9;
		if (*s == '.') {
			s++;
			for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
				if (n < 3)
					frac = frac * 10 + (s[n] - '0');
			if (!n)
				return -1;
			for (; n < 3; n++)
				frac *= 10;
			while (*s >= '0' && *s <= '9')
				s++;
		}
		if (*s == 'Z') {
			s++;
		} else if (*s == '+' || *s == '-') {
			if (digits(s + 1, 2, &oh) || s[3] != ':' ||
			    digits(s + 4, 2, &om) || oh > 23 || om > 59)
				return -1;
			off = (oh * 60 + om) * 60;
			if (*s == '-')
				off = -off;
			s += 6;
		} else {
			return -1;
		}
		if (*s)
			return -1;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*ms = ((int64_t)t - off) * 1000 + frac;
	return 0;
}
