/*
 * Logging: one line per event to stderr (or syslog), tagged with a
 * subsystem, in git's message style: lower case, no full stop; with a
 * syslog priority prefix when stderr is systemd's journal.
 */
#ifndef SPEECHFS_LOG_H
#define SPEECHFS_LOG_H

enum sfs_log_level { SFS_LOG_ERROR, SFS_LOG_WARN, SFS_LOG_INFO, SFS_LOG_DEBUG };

/* "error", "warn" (or "warning"), "info", "debug"; -1 when unknown. */
int sfs_log_level_parse(const char *s);
const char *sfs_log_level_name(enum sfs_log_level lvl);
/* Safe to call while other threads log (a reload sets it). */
void sfs_log_set_level(enum sfs_log_level lvl);
enum sfs_log_level sfs_log_get_level(void);
/*
 * 1 when stderr is systemd's journal (JOURNAL_STREAM): lines then start
 * with a syslog priority, "<3>" ... "<7>", and carry no time stamp.
 */
int sfs_log_to_journal(void);
/*
 * From now on, lines go to syslog(3) as `ident` (facility daemon, with the
 * pid) instead of stderr: for a process that leaves its terminal (a mount
 * in the background), whose stderr becomes /dev/null.
 */
void sfs_log_to_syslog(const char *ident);
void sfs_log(enum sfs_log_level lvl, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define sfs_error(sub, ...) sfs_log(SFS_LOG_ERROR, sub, __VA_ARGS__)
#define sfs_warn(sub, ...) sfs_log(SFS_LOG_WARN, sub, __VA_ARGS__)
#define sfs_info(sub, ...) sfs_log(SFS_LOG_INFO, sub, __VA_ARGS__)
#define sfs_debug(sub, ...) sfs_log(SFS_LOG_DEBUG, sub, __VA_ARGS__)

#endif
