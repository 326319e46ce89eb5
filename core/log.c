/* One line per event to stderr: time, level, subsystem, message. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include "speechfs/log.h"
#include "util_i.h"

static enum sfs_log_level log_level = SFS_LOG_INFO;

void sfs_log_set_level(enum sfs_log_level lvl)
{
	log_level = lvl;
}

enum sfs_log_level sfs_log_get_level(void)
{
	return log_level;
}

void sfs_log(enum sfs_log_level lvl, const char *subsys, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char line[1024], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	if (lvl > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s: ", ts,
		     now.tv_nsec / 1000000, names[lvl], subsys);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* one write per line so concurrent threads do not interleave */
	fprintf(stderr, "%s\n", line);
}
