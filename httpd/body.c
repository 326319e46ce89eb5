/*
 * JSON request bodies into the core's structs: the members' types are
 * checked here (the API's field errors), their values by the core.
 */
#include <stdlib.h>
#include <string.h>
#include "body.h"
#include "speechfs/banned.h"

void body_init(struct body *b)
{
	memset(b, 0, sizeof(*b));
}

void body_release(struct body *b)
{
	free(b->tags);
	free(b->metadata);
	body_init(b);
}

int body_string_array(json_t *arr, const char ***out, size_t *n)
{
	const char **v;
	size_t i;

	*out = NULL;
	*n = 0;
	if (!json_is_array(arr))
		return -1;
	v = calloc(json_array_size(arr) + 1, sizeof(*v));
	if (!v)
		return -1;
	for (i = 0; i < json_array_size(arr); i++) {
		if (!json_is_string(json_array_get(arr, i))) {
			free(v);
			return -1;
		}
		v[i] = json_string_value(json_array_get(arr, i));
	}
	*out = v;
	*n = i;
	return 0;
}

/* Field type checks shared by import and PATCH. */
static int want_string(json_t *j, const char *key, int nullable,
		       struct sfs_err *e)
{
	json_t *v = json_object_get(j, key);

	if (!v || json_is_string(v) || (nullable && json_is_null(v)))
		return 0;
	sfs_err_field(e, key, "invalid_type", "'%s' must be a string%s", key,
		      nullable ? " or null" : "");
	return -1;
}

static void required_string(json_t *j, const char *key, struct sfs_err *e)
{
	if (!json_is_string(json_object_get(j, key)))
		sfs_err_field(e, key,
			      json_object_get(j, key) ? "invalid_type"
						      : "missing",
			      "'%s' is required and must be a string", key);
}

enum sfs_status body_import(json_t *j, struct body *b, struct sfs_err *e)
{
	struct sfs_file_spec *sp = &b->spec;
	json_t *v;

	required_string(j, "uri", e);
	required_string(j, "name", e);
	want_string(j, "description", 1, e);
	want_string(j, "path", 0, e);
	v = json_object_get(j, "metadata");
	if (v && !json_is_object(v) && !json_is_null(v))
		sfs_err_field(e, "metadata", "invalid_type",
			      "'metadata' must be an object");
	v = json_object_get(j, "generateListeningAudio");
	if (v && !json_is_boolean(v))
		sfs_err_field(e, "generateListeningAudio", "invalid_type",
			      "'generateListeningAudio' must be a boolean");
	v = json_object_get(j, "tags");
	if (v && body_string_array(v, &b->tags, &sp->ntags))
		sfs_err_field(e, "tags", "invalid_type",
			      "'tags' must be an array of strings");
	if (e->nfields)
		return sfs_errf(e, SFS_INVALID, SFS_R_VALIDATION_ERROR,
				"the import request is invalid");
	sp->uri = json_string_value(json_object_get(j, "uri"));
	sp->name = json_string_value(json_object_get(j, "name"));
	sp->description = json_string_value(json_object_get(j, "description"));
	sp->path = json_string_value(json_object_get(j, "path"));
	v = json_object_get(j, "metadata");
	if (json_is_object(v)) {
		b->metadata = json_dumps(v, JSON_COMPACT);
		if (!b->metadata)
			return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
					"out of memory");
		sp->metadata = b->metadata;
	}
	sp->tags = b->tags;
	v = json_object_get(j, "generateListeningAudio");
	sp->listening = v ? json_is_true(v) : 1;
	return SFS_OK;
}

/* "metadata": an object, or null to clear it. */
static void update_metadata(json_t *v, struct body *b, struct sfs_err *e)
{
	if (json_is_object(v)) {
		b->metadata = json_dumps(v, JSON_COMPACT);
		b->upd.set |= SFS_UPD_METADATA;
		b->upd.metadata = b->metadata;
		if (!b->metadata)
			sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	} else if (json_is_null(v)) {
		b->upd.set |= SFS_UPD_METADATA;
	} else {
		sfs_err_field(e, "metadata", "invalid_type",
			      "'metadata' must be an object or null");
	}
}

/* "tags": an array of strings, or null to clear them. */
static void update_tags(json_t *v, struct body *b, struct sfs_err *e)
{
	if (json_is_null(v)) {
		b->upd.set |= SFS_UPD_TAGS;
	} else if (body_string_array(v, &b->tags, &b->upd.ntags)) {
		sfs_err_field(e, "tags", "invalid_type",
			      "'tags' must be an array of strings");
	} else {
		b->upd.set |= SFS_UPD_TAGS;
		b->upd.tags = b->tags;
	}
}

/* An extension's time in ns since the epoch (a JSON integer). */
static int want_ns(json_t *j, const char *key, int64_t *out, struct sfs_err *e)
{
	json_t *v = json_object_get(j, key);

	if (!v)
		return 0;
	if (!json_is_integer(v)) {
		sfs_err_field(e, key, "invalid_type",
			      "'%s' must be an integer (ns since 1970)", key);
		return 0;
	}
	*out = (int64_t)json_integer_value(v);
	return 1;
}

/* The extensions of remote mounts: times, filename, the entry suffix. */
static void update_mount_fields(json_t *j, struct sfs_file_update *u,
				struct sfs_err *e)
{
	json_t *v;

	if (want_ns(j, "modifiedAtNs", &u->mtime_ns, e))
		u->set |= SFS_UPD_MTIME;
	if (want_ns(j, "accessedAtNs", &u->atime_ns, e))
		u->set |= SFS_UPD_ATIME;
	if (!want_string(j, "filename", 1, e) &&
	    json_object_get(j, "filename")) {
		u->set |= SFS_UPD_FILENAME;
		u->filename = json_string_value(json_object_get(j, "filename"));
	}
	v = json_object_get(j, "entrySuffix");
	if (v && !json_is_boolean(v))
		sfs_err_field(e, "entrySuffix", "invalid_type",
			      "'entrySuffix' must be true or false");
	else if (v)
		u->set |= json_is_true(v) ? SFS_UPD_SUFFIX : SFS_UPD_NO_SUFFIX;
}

/* A PATCH that is rename(2): "replaceFileId" and "restore". */
static void update_rename_fields(json_t *j, struct body *b, struct sfs_err *e)
{
	json_t *v;

	if (!want_string(j, "replaceFileId", 0, e) &&
	    json_object_get(j, "replaceFileId")) {
		b->rename = 1;
		b->replace_id =
			json_string_value(json_object_get(j, "replaceFileId"));
	}
	v = json_object_get(j, "restore");
	if (v && !json_is_boolean(v)) {
		sfs_err_field(e, "restore", "invalid_type",
			      "'restore' must be true or false");
	} else if (json_is_true(v)) {
		b->rename = 1;
		b->rename_flags |= SFS_RENAME_RESTORE;
	}
}

enum sfs_status body_update(json_t *j, struct body *b, struct sfs_err *e)
{
	struct sfs_file_update *u = &b->upd;
	json_t *v;
	int p;

	if (!want_string(j, "name", 0, e) && json_object_get(j, "name")) {
		u->set |= SFS_UPD_NAME;
		u->name = json_string_value(json_object_get(j, "name"));
	}
	if (!want_string(j, "description", 1, e) &&
	    json_object_get(j, "description")) {
		u->set |= SFS_UPD_DESCRIPTION;
		u->description =
			json_string_value(json_object_get(j, "description"));
	}
	if (!want_string(j, "path", 0, e) && json_object_get(j, "path")) {
		u->set |= SFS_UPD_PATH;
		u->path = json_string_value(json_object_get(j, "path"));
	}
	v = json_object_get(j, "metadata");
	if (v)
		update_metadata(v, b, e);
	v = json_object_get(j, "tags");
	if (v)
		update_tags(v, b, e);
	v = json_object_get(j, "publishMode");
	if (v) {
		p = json_is_string(v) ? sfs_publish_parse(json_string_value(v))
				      : -1;
		if (p < 0) {
			sfs_err_field(e, "publishMode", "invalid",
				      "'publishMode' must be PRIVATE or "
				      "INTERNAL");
		} else {
			u->set |= SFS_UPD_PUBLISH;
			u->publish = (enum sfs_publish)p;
		}
	}
	update_mount_fields(j, u, e);
	update_rename_fields(j, b, e);
	if (e->status == SFS_NOMEM)
		return SFS_NOMEM;
	if (e->nfields)
		return sfs_errf(e, SFS_INVALID, SFS_R_VALIDATION_ERROR,
				"the update request is invalid");
	return SFS_OK;
}
