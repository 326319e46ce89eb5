/*
 * libFuzzer target: JSON request bodies. The input (after one byte that
 * picks the endpoint) goes through jansson as the daemon reads it, then
 * httpd/body.c turns it into an import's spec or a PATCH's update, which
 * the core then validates and applies to a small store. Checked: a body
 * is taken or refused with a 400-class status and a message; a taken
 * update has no more tags than it wrote.
 */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "speechfs/file.h"
#include "../../httpd/body.h"

static void refused_well(enum sfs_status st, const struct sfs_err *e)
{
	if (st != SFS_INVALID && st != SFS_TOO_LARGE && st != SFS_QUOTA &&
	    st != SFS_CONFLICT && st != SFS_UNSUPPORTED)
		abort();
	if (!e->message[0])
		abort();
}

static void import(struct fz *z, json_t *j)
{
	struct sfs_file f;
	struct sfs_err e;
	struct body b;
	enum sfs_status st;

	sfs_err_init(&e);
	sfs_file_init(&f);
	body_init(&b);
	st = body_import(j, &b, &e);
	if (!st)
		st = sfs_file_create(z->s, &z->owner, &b.spec, NULL, &f, &e);
	if (st)
		refused_well(st, &e);
	else if (sfs_file_delete(z->s, &z->owner, f.id, 1, &e))
		abort();
	sfs_file_release(&f);
	body_release(&b);
}

static void update(struct fz *z, json_t *j)
{
	struct sfs_file f;
	struct sfs_err e;
	struct body b;
	enum sfs_status st;

	sfs_err_init(&e);
	sfs_file_init(&f);
	body_init(&b);
	st = body_update(j, &b, &e);
	if (!st)
		st = sfs_file_update(z->s, &z->owner, z->file, &b.upd, &f, &e);
	if (st) {
		refused_well(st, &e);
	} else if ((b.upd.set & SFS_UPD_TAGS) && f.ntags > b.upd.ntags) {
		abort(); /* more tags than were written */
	}
	sfs_file_release(&f);
	body_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *z = fz_get();
	json_error_t je;
	json_t *j;

	if (size < 1)
		return 0;
	j = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES,
		       &je);
	if (!json_is_object(j)) {
		json_decref(j);
		return 0; /* the daemon answers 400 invalid_json first */
	}
	if (data[0] & 1)
		import(z, j);
	else
		update(z, j);
	json_decref(j);
	return 0;
}
