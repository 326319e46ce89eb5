/*
 * The API's names of the file enumerations (job states, publish modes,
 * permissions, access types) in both directions, and the init/release of
 * struct sfs_file. Parsing is exact: the API spells these in upper case.
 */
#include <stdlib.h>
#include <string.h>
#include "speechfs/file.h"
#include "util_i.h"

static const char *const jstate_names[] = {
	[SFS_JS_NONE] = NULL,
	[SFS_JS_PENDING] = "PENDING",
	[SFS_JS_PROCESSING] = "PROCESSING",
	[SFS_JS_COMPLETED] = "COMPLETED",
	[SFS_JS_FAILED] = "FAILED",
};

static const char *const publish_names[] = {
	[SFS_PUBLISH_PRIVATE] = "PRIVATE",
	[SFS_PUBLISH_INTERNAL] = "INTERNAL",
};

static const char *const perm_names[] = {
	[SFS_PERM_NONE] = NULL,
	[SFS_PERM_VIEW] = "VIEW",
	[SFS_PERM_EDIT] = "EDIT",
	[SFS_PERM_OWNER] = "OWNER",
};

static const char *const access_names[] = {
	[SFS_ACCESS_OWNER] = "OWNER",
	[SFS_ACCESS_DIRECT_SHARE] = "DIRECT_SHARE",
	[SFS_ACCESS_INTERNAL] = "INTERNAL",
};

static const char *name_of(const char *const *tab, size_t n, int v)
{
	if (v < 0 || (size_t)v >= n)
		return NULL;
	return tab[v];
}

/* first: the lowest value a client may send (OWNER/NONE are not names). */
static int parse_in(const char *const *tab, size_t n, size_t first,
		    const char *s)
{
	size_t i;

	if (!s)
		return -1;
	for (i = first; i < n; i++)
		if (tab[i] && !strcmp(tab[i], s))
			return (int)i;
	return -1;
}

const char *sfs_jstate_name(enum sfs_jstate st)
{
	return name_of(jstate_names, ARRAY_SIZE(jstate_names), (int)st);
}

int sfs_jstate_parse(const char *s)
{
	return parse_in(jstate_names, ARRAY_SIZE(jstate_names), SFS_JS_PENDING,
			s);
}

const char *sfs_publish_name(enum sfs_publish p)
{
	return name_of(publish_names, ARRAY_SIZE(publish_names), (int)p);
}

int sfs_publish_parse(const char *s)
{
	return parse_in(publish_names, ARRAY_SIZE(publish_names), 0, s);
}

const char *sfs_perm_name(enum sfs_perm p)
{
	return name_of(perm_names, ARRAY_SIZE(perm_names), (int)p);
}

int sfs_perm_parse(const char *s)
{
	/* Only VIEW and EDIT can be granted. */
	return parse_in(perm_names, SFS_PERM_EDIT + 1, SFS_PERM_VIEW, s);
}

const char *sfs_access_name(enum sfs_access a)
{
	return name_of(access_names, ARRAY_SIZE(access_names), (int)a);
}

int sfs_access_parse(const char *s)
{
	return parse_in(access_names, ARRAY_SIZE(access_names),
			SFS_ACCESS_DIRECT_SHARE, s);
}

void sfs_file_init(struct sfs_file *f)
{
	memset(f, 0, sizeof(*f));
	f->size = -1;
	f->duration = -1;
	f->la.size = -1;
}

void sfs_file_release(struct sfs_file *f)
{
	size_t i;

	if (!f)
		return;
	free(f->name);
	free(f->filename);
	free(f->description);
	free(f->path);
	free(f->metadata);
	free(f->mime);
	free(f->source_uri);
	free(f->ingest_error);
	if (f->tags) {
		for (i = 0; i < f->ntags; i++)
			free(f->tags[i]);
		free(f->tags);
	}
	free(f->la.error);
	sfs_file_init(f);
}
