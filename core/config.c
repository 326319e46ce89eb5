/*
 * Reading a configuration file of "key = value" lines: the core's keys go
 * to sfs_config_set(), a front end's to its callback, and the first error
 * names the file, the line and the key.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "speechfs/config.h"
#include "speechfs/banned.h"

#define LINE_MAX_LEN 4096

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* One "key = value" line; 0 or an error in e. */
static enum sfs_status one_line(const char *where, char *line,
				struct sfs_config *cfg, sfs_config_key_fn own,
				void *arg, struct sfs_err *e)
{
	char msg[160], *key, *value, *eq = strchr(line, '=');
	struct sfs_err ce;
	enum sfs_status st;
	int r = 1;

	if (!eq)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"%s: expected 'key = value'", where);
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (!*key)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"%s: a line without a key", where);
	sfs_err_init(&ce);
	msg[0] = '\0';
	st = sfs_config_set(cfg, key, value, &ce);
	if (st == SFS_OK) {
		if (own)
			own(arg, key, value, 1, msg, sizeof(msg));
		return SFS_OK;
	}
	if (st != SFS_NOT_FOUND)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"%s: %s: %s (got '%s')", where, key,
				ce.nfields ? ce.fields[0].message : ce.message,
				value);
	if (own)
		r = own(arg, key, value, 0, msg, sizeof(msg));
	if (r > 0)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"%s: %s: unknown key", where, key);
	if (r < 0)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"%s: %s: %s (got '%s')", where, key,
				msg[0] ? msg : "bad value", value);
	return SFS_OK;
}

enum sfs_status sfs_config_read(const char *path, struct sfs_config *cfg,
				sfs_config_key_fn own, void *arg,
				struct sfs_err *e)
{
	char line[LINE_MAX_LEN], where[64 + 4096], *s;
	enum sfs_status ret = SFS_OK;
	FILE *f = fopen(path, "r");
	size_t n;
	int lineno = 0;

	if (!f)
		return sfs_errf(e, errno == ENOENT ? SFS_NOT_FOUND : SFS_IO,
				SFS_R_NONE, "cannot read '%s': %s", path,
				strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n' && !feof(f)) {
			ret = sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				       "%s: line longer than %d bytes", where,
				       LINE_MAX_LEN - 2);
			goto out;
		}
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		ret = one_line(where, s, cfg, own, arg, e);
		if (ret)
			goto out;
	}
	if (ferror(f))
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE, "cannot read '%s': %s",
			       path, strerror(errno));
out:
	fclose(f);
	return ret;
}
