/*
 * One line per event to stderr: time, level, subsystem, message (to
 * syslog instead once sfs_log_to_syslog was called). When
 * stderr is systemd's journal (JOURNAL_STREAM names it), a line starts
 * with its syslog priority instead of the time ("<4>warn httpd: ..."),
 * which the journal stamps itself, so `journalctl -p warning` filters.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include "speechfs/log.h"
#include "util_i.h"

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static enum sfs_log_level log_level = SFS_LOG_INFO;
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static int to_journal;
static int to_syslog;

void sfs_log_set_level(enum sfs_log_level lvl)
{
	__atomic_store_n(&log_level, lvl, __ATOMIC_RELAXED);
}

enum sfs_log_level sfs_log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int sfs_log_level_parse(const char *s)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(level_names); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	return strcasecmp(s, "warning") == 0 ? SFS_LOG_WARN : -1;
}

const char *sfs_log_level_name(enum sfs_log_level lvl)
{
	return (size_t)lvl < ARRAY_SIZE(level_names) ? level_names[lvl] : "?";
}

/* systemd sets JOURNAL_STREAM=DEV:INODE of the stream it connected. */
static void journal_check(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(2, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino)
		to_journal = 1;
}

int sfs_log_to_journal(void)
{
	pthread_once(&journal_once, journal_check);
	return to_journal;
}

void sfs_log_to_syslog(const char *ident)
{
	/* connected at the first line, and again after syslog restarts */
	openlog(ident, LOG_PID, LOG_DAEMON);
	__atomic_store_n(&to_syslog, 1, __ATOMIC_RELEASE);
}

void sfs_log(enum sfs_log_level lvl, const char *subsys, const char *fmt, ...)
{
	/* syslog priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
	static const int prio[] = { 3, 4, 6, 7 };
	char line[1024], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	if (lvl > sfs_log_get_level())
		return;
	if (__atomic_load_n(&to_syslog, __ATOMIC_ACQUIRE)) {
		n = snprintf(line, sizeof(line), "%s %s: ", level_names[lvl],
			     subsys);
	} else if (sfs_log_to_journal()) {
		n = snprintf(line, sizeof(line), "<%d>%s %s: ", prio[lvl],
			     level_names[lvl], subsys);
	} else {
		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s: ", ts,
			     now.tv_nsec / 1000000, level_names[lvl], subsys);
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (__atomic_load_n(&to_syslog, __ATOMIC_ACQUIRE))
		syslog(prio[lvl], "%s", line);
	else /* one write per line so concurrent threads do not interleave */
		fprintf(stderr, "%s\n", line);
}
