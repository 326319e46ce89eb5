/*
 * libFuzzer target: a listing's query parameters, as GET /files and
 * /files/shared-with-me take them (sfs_query_param), then the query run on
 * a small store (sfs_query_files, sfs_query_shared). The input is a query
 * string "k=v&k=v..." after a byte that picks the caller and the listing.
 * Checked: a parameter is accepted or refused with a field error naming
 * it; a listing holds at most a page of files, all the caller's (or, for
 * the shared one, never the caller's), and no deleted one unless asked.
 */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "speechfs/query.h"

static void check(const struct fz *z, const struct sfs_actor *a, int shared,
		  const struct sfs_query *q, const struct sfs_file_list *l)
{
	size_t i;

	if (l->n > (size_t)q->size)
		abort();
	for (i = 0; i < l->n; i++) {
		if (l->files[i].tenant != a->tenant)
			abort();
		if (!shared && l->files[i].owner != a->user)
			abort();
		if (shared && l->files[i].owner == a->user)
			abort();
	}
	(void)z;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *z = fz_get();
	const struct sfs_actor *a;
	struct sfs_file_list l;
	struct sfs_query q;
	struct sfs_err e;
	char *s, *p, *kv, *save = NULL, *v;
	int shared, bad = 0;
	enum sfs_status st;

	if (!size)
		return 0;
	a = data[0] % 3 == 0   ? &z->owner
	    : data[0] % 3 == 1 ? &z->peer
			       : &z->other;
	shared = data[0] & 4;
	s = fz_string(data + 1, size - 1);
	sfs_query_init(&q);
	for (p = s; (kv = strtok_r(p, "&", &save)); p = NULL) {
		v = strchr(kv, '=');
		if (v)
			*v++ = '\0';
		sfs_err_init(&e);
		st = sfs_query_param(&q, kv, v ? v : "", &e);
		if (st == SFS_INVALID && (e.nfields < 1 || !e.message[0]))
			abort(); /* a refusal must say what was wrong */
		if (st != SFS_OK && st != SFS_NOT_FOUND && st != SFS_INVALID)
			abort();
		bad |= st == SFS_INVALID;
	}
	if (!bad) {
		memset(&l, 0, sizeof(l));
		sfs_err_init(&e);
		st = shared ? sfs_query_shared(z->s, a, &q, &l, &e)
			    : sfs_query_files(z->s, a, &q, &l, &e);
		if (st == SFS_OK)
			check(z, a, shared, &q, &l);
		else if (st != SFS_INVALID)
			abort(); /* a well-formed query never fails otherwise */
		sfs_file_list_release(&l);
	}
	sfs_query_release(&q);
	free(s);
	return 0;
}
