/*
 * libFuzzer target: values written to the mount's extended attributes,
 * through the core calls fs/xattr.c makes: user.speechfs.tags (a list),
 * publishMode, metadata (JSON), description, a share's permission, and
 * any other user.* attribute (stored as given). The first byte picks the
 * attribute; for a foreign one the name ends at the first NUL. Checked: a
 * value is taken or refused with a message; a foreign attribute reads
 * back byte for byte and can be removed.
 */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "speechfs/file.h"
#include "speechfs/share.h"
#include "speechfs/tag.h"
#include "speechfs/xattr.h"

static void apply(struct fz *z, struct sfs_file_update *u)
{
	struct sfs_err e;

	sfs_err_init(&e);
	if (sfs_file_update(z->s, &z->owner, z->file, u, NULL, &e) &&
	    (e.status != SFS_INVALID || !e.message[0]))
		abort();
}

static void foreign(struct fz *z, const uint8_t *d, size_t n)
{
	struct sfs_buf got = SFS_BUF_INIT(SFS_XATTR_VALUE_MAX + 1);
	const uint8_t *nul = memchr(d, '\0', n);
	struct sfs_err e;
	char *name;

	if (!nul)
		return;
	name = fz_string(d, (size_t)(nul - d));
	sfs_err_init(&e);
	if (sfs_xattr_set(z->s, &z->owner, z->file, name, nul + 1,
			  n - (size_t)(nul - d) - 1, 0, &e) == SFS_OK) {
		if (sfs_xattr_get(z->s, &z->owner, z->file, name, &got, NULL) ||
		    got.len != n - (size_t)(nul - d) - 1 ||
		    memcmp(got.buf, nul + 1, got.len))
			abort(); /* not what was written */
		if (sfs_xattr_remove(z->s, &z->owner, z->file, name, NULL))
			abort();
	} else if (!e.message[0]) {
		abort();
	}
	sfs_buf_release(&got);
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *z = fz_get();
	struct sfs_file_update u;
	struct sfs_share sh;
	struct sfs_err e;
	char *v, **tags = NULL;
	int p, created;

	if (size < 1)
		return 0;
	memset(&u, 0, sizeof(u));
	sfs_err_init(&e);
	v = fz_string(data + 1, size - 1);
	switch (data[0] % 6) {
	case 0:
		if (sfs_tags_split(v, &tags, &u.ntags, &e) == SFS_OK) {
			u.set = SFS_UPD_TAGS;
			u.tags = (const char *const *)tags;
			apply(z, &u);
		} else if (!e.message[0]) {
			abort();
		}
		sfs_strv_free(tags);
		break;
	case 1:
		p = sfs_publish_parse(v);
		if (p >= 0) {
			u.set = SFS_UPD_PUBLISH;
			u.publish = (enum sfs_publish)p;
			apply(z, &u);
		}
		break;
	case 2:
		u.set = SFS_UPD_METADATA;
		u.metadata = v;
		apply(z, &u);
		break;
	case 3:
		u.set = SFS_UPD_DESCRIPTION;
		u.description = v;
		apply(z, &u);
		break;
	case 4:
		p = sfs_perm_parse(v);
		if (p >= 0 &&
		    sfs_share_put(z->s, &z->owner, z->file, z->peer.user_id,
				  (enum sfs_perm)p, &sh, &created, &e) &&
		    !e.message[0])
			abort();
		break;
	default:
		foreign(z, data + 1, size - 1);
	}
	free(v);
	return 0;
}
