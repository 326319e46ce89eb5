/*
 * JSON request bodies into the core's structs (body.c): an import's spec
 * and a PATCH's update, with a field error for every member of the wrong
 * type. No libmicrohttpd in here: the fuzzer links it alone.
 */
#ifndef SPEECHFSD_BODY_H
#define SPEECHFSD_BODY_H

#include <jansson.h>
#include "speechfs/err.h"
#include "speechfs/file.h"

/*
 * What a body became. The strings point into the JSON document, which
 * must outlive it; body_release frees the rest.
 */
struct body {
	struct sfs_file_spec spec;  /* an import */
	struct sfs_file_update upd; /* a PATCH */
	/* a PATCH that is a rename (extension): the file whose entry it
	 * takes (NULL: none) and enum sfs_rename_flags */
	const char *replace_id;
	unsigned rename_flags;
	int rename;
	const char **tags; /* the tags array, owned */
	char *metadata;	   /* compact JSON, owned */
};

void body_init(struct body *b);
void body_release(struct body *b);
/* POST /files as JSON: SFS_INVALID with field errors, else SFS_OK. */
enum sfs_status body_import(json_t *j, struct body *b, struct sfs_err *e);
/* PATCH /files/{id}: SFS_INVALID with field errors, else SFS_OK. */
enum sfs_status body_update(json_t *j, struct body *b, struct sfs_err *e);
/*
 * A JSON array of strings into a NULL-terminated array of borrowed
 * pointers. Ownership: free() *out (the strings belong to `arr`).
 */
int body_string_array(json_t *arr, const char ***out, size_t *n);

#endif
