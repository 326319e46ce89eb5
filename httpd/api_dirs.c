/*
 * Directories (an extension for remote mounts): the caller's virtual
 * directories as the mount has them - listed, made empty (explicit),
 * removed when empty, renamed with everything below in one transaction.
 * The rules are core's (dir.h); these only translate.
 */
#include <stdio.h>
#include <string.h>
#include "httpd.h"
#include "speechfs/dir.h"
#include "speechfs/json.h"
#include "speechfs/vpath.h"
#include "speechfs/banned.h"

static json_t *dir_json(const char *path, const char *name,
			const struct sfs_dir_info *d)
{
	char iso[32];

	sfs_iso8601(d->mtime_ns / 1000000, iso);
	return json_pack("{s:s, s:s, s:b, s:I, s:I, s:s, s:I}", "path", path,
			 "name", name, "explicit", d->explicit_,
			 "descendantCount", (json_int_t)d->nfiles,
			 "subdirectoryCount", (json_int_t)d->nsub, "modifiedAt",
			 iso, "modifiedAtNs", (json_int_t)d->mtime_ns);
}

/*
 * For a client that names its origin (a remote mount) on a server of the
 * extensions: a read of the directory more per write is not for every
 * client.
 */
int api_dirs_header_wanted(struct req *r)
{
	return g_httpd.opts.extensions && req_origin(r);
}

/*
 * keepDirs=true (extension): this request's calls keep the directories
 * they empty, made explicit in their own transaction, as a mount's do
 * (sfs_store_keep_dirs_here; the router turns it off after each
 * request). A daemon whose extensions are off refuses it rather than
 * ignore it.
 */
enum sfs_status api_dirs_keep_arg(struct req *r, struct sfs_err *e)
{
	int on = 0;

	if (!req_arg(r, "keepDirs"))
		return SFS_OK;
	if (!g_httpd.opts.extensions) {
		sfs_err_field(e, "keepDirs", "unsupported",
			      "this server takes no keepDirs (its extensions "
			      "are off)");
		return sfs_errf(e, SFS_INVALID, SFS_R_INVALID_PARAMETER,
				"query parameter 'keepDirs' is not supported "
				"here");
	}
	if (req_bool_arg(r, "keepDirs", &on, e))
		return SFS_INVALID;
	sfs_store_keep_dirs_here(on);
	return SFS_OK;
}

/* X-Speechfs-Directory: the directory's state d. */
void api_dirs_header_set(struct req *r, const struct sfs_dir_info *d)
{
	char v[256], iso[32];

	sfs_iso8601(d->mtime_ns / 1000000, iso);
	snprintf(v, sizeof(v),
		 "{\"explicit\":%s,\"descendantCount\":%lld,"
		 "\"subdirectoryCount\":%lld,\"modifiedAt\":\"%s\","
		 "\"modifiedAtNs\":%lld}",
		 d->explicit_ ? "true" : "false", (long long)d->nfiles,
		 (long long)d->nsub, iso, (long long)d->mtime_ns);
	req_set_header(r, "X-Speechfs-Directory", v);
}

void api_dirs_header(struct req *r, const struct sfs_file *f)
{
	struct sfs_dir_info d;

	/* the caller's own directory only (a shared file's is its owner's) */
	if (!api_dirs_header_wanted(r) || !f->path || f->deleted ||
	    f->owner != r->actor.user ||
	    sfs_dir_stat(g_httpd.store, &r->actor, f->path, &d, NULL))
		return;
	api_dirs_header_set(r, &d);
}

/* The directory at path as JSON: stat it (after a change, the new one). */
static enum MHD_Result respond_dir(struct req *r, unsigned status,
				   const char *path)
{
	struct sfs_dir_info d;
	struct sfs_err e;
	const char *base;
	char name[SFS_SEGMENT_MAX + 1] = "";
	size_t n = 0;

	sfs_err_init(&e);
	if (sfs_dir_stat(g_httpd.store, &r->actor, path, &d, &e))
		return respond_err(r, &e);
	base = sfs_vpath_base(path, &n);
	if (base && n < sizeof(name))
		snprintf(name, sizeof(name), "%.*s", (int)n, base);
	return respond_json(r, status, dir_json(path, name, &d));
}

struct listing {
	const char *parent;
	json_t *arr;
	int failed;
};

static void add_sub(void *arg, const char *name, const struct sfs_dir_info *d)
{
	struct listing *l = arg;
	char path[SFS_VPATH_MAX + SFS_SEGMENT_MAX + 4];
	json_t *j;

	snprintf(path, sizeof(path), "%s%s/", l->parent, name);
	j = dir_json(path, name, d);
	if (!j || json_array_append_new(l->arr, j))
		l->failed = 1;
}

enum MHD_Result api_dirs_list(struct req *r)
{
	const char *path = req_arg(r, "path");
	struct sfs_dir_info d;
	struct listing l = { 0 };
	struct sfs_err e;
	char iso[32];
	json_t *j;

	sfs_err_init(&e);
	if (!path)
		path = "/";
	if (sfs_dir_stat(g_httpd.store, &r->actor, path, &d, &e))
		return respond_err(r, &e);
	l.parent = path;
	l.arr = json_array();
	if (!l.arr)
		return respond_errf(r, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (sfs_dir_subdirs(g_httpd.store, &r->actor, path, add_sub, &l, &e)) {
		json_decref(l.arr);
		return respond_err(r, &e);
	}
	if (l.failed) {
		json_decref(l.arr);
		return respond_errf(r, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	sfs_iso8601(d.mtime_ns / 1000000, iso);
	j = json_pack("{s:s, s:b, s:I, s:I, s:s, s:I, s:o}", "path", path,
		      "explicit", d.explicit_, "descendantCount",
		      (json_int_t)d.nfiles, "subdirectoryCount",
		      (json_int_t)d.nsub, "modifiedAt", iso, "modifiedAtNs",
		      (json_int_t)d.mtime_ns, "directories", l.arr);
	return respond_json(r, 200, j);
}

/* A required string member of the JSON body, or a field error. */
static const char *member(json_t *j, const char *key, struct sfs_err *e)
{
	const char *v = json_string_value(json_object_get(j, key));

	if (!v)
		sfs_err_field(e, key, "missing", "'%s' (a string) is required",
			      key);
	return v;
}

enum MHD_Result api_dirs_create(struct req *r)
{
	struct sfs_err e;
	const char *path;
	enum MHD_Result ret;
	json_t *j = NULL;

	sfs_err_init(&e);
	if (req_json(r, &j, &e) || !(path = member(j, "path", &e)) ||
	    sfs_dir_make(g_httpd.store, &r->actor, path, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	ret = respond_dir(r, 201, path);
out:
	json_decref(j);
	return ret;
}

enum MHD_Result api_dirs_delete(struct req *r)
{
	const char *path = req_arg(r, "path");
	struct sfs_err e;

	sfs_err_init(&e);
	if (!path) {
		sfs_err_field(&e, "path", "missing",
			      "the query parameter 'path' is required");
		return respond_err(r, &e);
	}
	if (api_dirs_keep_arg(r, &e) ||
	    sfs_dir_remove(g_httpd.store, &r->actor, path, &e))
		return respond_err(r, &e);
	return respond_empty(r, 204);
}

enum MHD_Result api_dirs_rename(struct req *r)
{
	const char *from = NULL, *to = NULL;
	struct sfs_err e;
	enum MHD_Result ret;
	json_t *j = NULL;

	sfs_err_init(&e);
	if (!req_json(r, &j, &e)) {
		from = member(j, "from", &e);
		to = member(j, "to", &e);
	}
	if (e.status || api_dirs_keep_arg(r, &e) ||
	    sfs_dir_rename(g_httpd.store, &r->actor, from, to, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	ret = respond_dir(r, 200, to);
out:
	json_decref(j);
	return ret;
}

/*
 * {"path", "modifiedAt"} or {"path", "modifiedAtNs"} (ns since 1970, a
 * mount's touch to the ns): set a directory's modification time.
 */
enum MHD_Result api_dirs_patch(struct req *r)
{
	const char *path = NULL, *at = NULL;
	struct sfs_err e;
	enum MHD_Result ret;
	json_t *j = NULL, *ns;
	int64_t ms = 0, t = 0;

	sfs_err_init(&e);
	if (!req_json(r, &j, &e)) {
		path = member(j, "path", &e);
		ns = json_object_get(j, "modifiedAtNs");
		if (ns && !json_is_integer(ns))
			sfs_err_field(&e, "modifiedAtNs", "invalid_type",
				      "'modifiedAtNs' must be an integer "
				      "(ns since 1970)");
		else if (ns)
			t = (int64_t)json_integer_value(ns);
		else if ((at = member(j, "modifiedAt", &e)) &&
			 sfs_iso8601_parse(at, &ms))
			sfs_err_field(&e, "modifiedAt", "invalid",
				      "'modifiedAt' must be an ISO 8601 "
				      "date-time");
		else
			t = ms * 1000000;
	}
	if (e.status ||
	    sfs_dir_set_mtime(g_httpd.store, &r->actor, path, t, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	ret = respond_dir(r, 200, path);
out:
	json_decref(j);
	return ret;
}
