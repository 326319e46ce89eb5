/* The fuzz targets' store (common.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "speechfs/file.h"
#include "speechfs/share.h"
#include "../unit/fixture.h"

static struct fz fz;

static void gone(void)
{
	tfx_store_close(&fz.dir, &fz.s);
}

static void mk(const char *name, const char *path, const char **tags,
	       size_t ntags, char *id)
{
	struct sfs_file_spec sp;
	struct sfs_file f;
	struct sfs_err e;

	memset(&sp, 0, sizeof(sp));
	sfs_err_init(&e);
	sp.name = name;
	sp.filename = "rec.wav";
	sp.path = path;
	sp.tags = tags;
	sp.ntags = ntags;
	sp.metadata = "{\"department\":\"engineering\"}";
	if (sfs_file_create(fz.s, &fz.owner, &sp, NULL, &f, &e)) {
		fprintf(stderr, "fuzz: cannot make a file: %s\n", e.message);
		abort();
	}
	if (id)
		memcpy(id, f.id, SFS_ID_SIZE);
	sfs_file_release(&f);
}

struct fz *fz_get(void)
{
	static const char *tags[] = { "Engineering", "Meeting", "é" };
	char ta[SFS_ID_SIZE], tb[SFS_ID_SIZE], other[SFS_ID_SIZE];
	struct sfs_config cfg;
	struct sfs_share sh;
	struct sfs_err e;
	int created;

	if (fz.s)
		return &fz;
	/* no fsync per commit: a fuzzer commits thousands a second */
	sfs_config_init(&cfg);
	cfg.sync_full = 0;
	if (tfx_store(&fz.dir, &fz.s, &cfg) ||
	    tfx_tenant(fz.s, "acme", 0, 0, ta) ||
	    tfx_tenant(fz.s, "other", 0, 0, tb) ||
	    tfx_user(fz.s, ta, "owner", NULL, &fz.owner) ||
	    tfx_user(fz.s, ta, "peer", NULL, &fz.peer) ||
	    tfx_user(fz.s, tb, "other", other, &fz.other))
		abort();
	atexit(gone);
	mk("meeting", "/meetings/2026/", tags, 3, fz.file);
	mk("standup", "/meetings/", tags, 1, NULL);
	mk("notes", "/", NULL, 0, NULL);
	sfs_err_init(&e);
	if (sfs_share_put(fz.s, &fz.owner, fz.file, fz.peer.user_id,
			  SFS_PERM_VIEW, &sh, &created, &e))
		abort();
	(void)other;
	return &fz;
}

char *fz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}
