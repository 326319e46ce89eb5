/*
 * Logging: one line per event to stderr (or a configured sink), tagged with
 * a subsystem, in git's message style: lower case, no full stop.
 */
#ifndef SPEECHFS_LOG_H
#define SPEECHFS_LOG_H

enum sfs_log_level { SFS_LOG_ERROR, SFS_LOG_WARN, SFS_LOG_INFO, SFS_LOG_DEBUG };

void sfs_log_set_level(enum sfs_log_level lvl);
enum sfs_log_level sfs_log_get_level(void);
void sfs_log(enum sfs_log_level lvl, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define sfs_error(sub, ...) sfs_log(SFS_LOG_ERROR, sub, __VA_ARGS__)
#define sfs_warn(sub, ...) sfs_log(SFS_LOG_WARN, sub, __VA_ARGS__)
#define sfs_info(sub, ...) sfs_log(SFS_LOG_INFO, sub, __VA_ARGS__)
#define sfs_debug(sub, ...) sfs_log(SFS_LOG_DEBUG, sub, __VA_ARGS__)

#endif
