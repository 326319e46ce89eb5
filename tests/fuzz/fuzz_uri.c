/*
 * libFuzzer target: import URIs. sfs_fetch_check_uri decides at request
 * time (no network): only http, https with a host, and s3://bucket/key
 * pass; then the import is created on a small store, which derives the
 * file's name from the URI's last segment. Checked: every URI taken has
 * one of those schemes and no control character or space; a refusal is a
 * field error on "uri"; a created import's filename is a valid name.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common.h"
#include "speechfs/fetch.h"
#include "speechfs/file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *z = fz_get();
	struct sfs_file_spec sp;
	struct sfs_file f;
	struct sfs_err e;
	char *uri = fz_string(data, size);
	size_t i;

	(void)size;
	sfs_err_init(&e);
	if (sfs_fetch_check_uri(uri, &e) == SFS_OK) {
		if (strncasecmp(uri, "http://", 7) &&
		    strncasecmp(uri, "https://", 8) &&
		    strncasecmp(uri, "s3://", 5))
			abort();
		for (i = 0; uri[i]; i++)
			if ((unsigned char)uri[i] <= ' ' || uri[i] == 0x7f)
				abort();
		memset(&sp, 0, sizeof(sp));
		sp.uri = uri;
		sp.name = "imported";
		sfs_file_init(&f);
		if (sfs_file_create(z->s, &z->owner, &sp, NULL, &f, &e) ==
		    SFS_OK) {
			if (f.filename &&
			    sfs_name_check(f.filename, "filename", NULL))
				abort();
			if (sfs_file_delete(z->s, &z->owner, f.id, 1, NULL))
				abort();
		}
		sfs_file_release(&f);
	} else if (e.nfields < 1 || strcmp(e.fields[0].field, "uri")) {
		abort();
	}
	free(uri);
	return 0;
}
