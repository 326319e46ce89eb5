/*
 * Extended attributes of the mount's files: user.speechfs.* names for the
 * file model's fields (tags, description, publishMode, metadata writable;
 * the rest and the whole JSON read-only, except that writing "generate"
 * to listeningAudio.status requests the listening MP3, as the API's
 * POST .../listening-audio does), the owner's direct shares (read-only
 * JSON in user.speechfs.shares, one read-write user.speechfs.share.<userId>
 * per share) and the freedesktop aliases user.xdg.tags / user.xdg.comment.
 * Other namespaces (security.*, system.*, trusted.*) are not supported:
 * ENOTSUP at once, without the database. That is the answer of a
 * filesystem without security labels or POSIX ACLs, and ls caches it per
 * filesystem: `ls -l` then stops asking two attributes of every entry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "fs_i.h"
#include "speechfs/json.h"
#include "speechfs/people.h"
#include "speechfs/share.h"
#include "speechfs/tag.h"
#include "speechfs/xattr.h"
#include <sys/xattr.h>
#include "speechfs/banned.h"

#define PFX "user.speechfs."

enum xa {
	XA_TAGS,
	XA_DESCRIPTION,
	XA_PUBLISH,
	XA_METADATA,
	XA_ID,
	XA_SHA256,
	XA_DURATION,
	XA_FILENAME,
	XA_INGESTION,
	XA_LA_STATUS,
	XA_JSON,
	XA_SHARES,
	XA_MIME,
	XA_ORIGIN,
	XA_INGEST_ERROR,
	XA_LA_ERROR,
	XA_CONTENT
};

static const struct {
	const char *name;
	enum xa which;
	int writable;
	int listed;
} xattrs[] = {
	{ PFX "tags", XA_TAGS, 1, 1 },
	{ PFX "description", XA_DESCRIPTION, 1, 1 },
	{ PFX "publishMode", XA_PUBLISH, 1, 1 },
	{ PFX "metadata", XA_METADATA, 1, 1 },
	{ PFX "id", XA_ID, 0, 1 },
	{ PFX "sha256", XA_SHA256, 0, 1 },
	{ PFX "durationSeconds", XA_DURATION, 0, 1 },
	{ PFX "filename", XA_FILENAME, 0, 1 },
	{ PFX "ingestionStatus", XA_INGESTION, 0, 1 },
	{ PFX "contentStatus", XA_CONTENT, 0, 1 },
	{ PFX "listeningAudio.status", XA_LA_STATUS, 2, 1 },
	{ PFX "json", XA_JSON, 0, 1 },
	{ PFX "shares", XA_SHARES, 0, 1 },
	{ PFX "ingestionError", XA_INGEST_ERROR, 0, 1 },
	{ PFX "listeningAudio.error", XA_LA_ERROR, 0, 1 },
	{ "user.mime_type", XA_MIME, 0, 1 },
	{ "user.xdg.origin.url", XA_ORIGIN, 0, 1 },
	{ "user.xdg.tags", XA_TAGS, 1, 0 },
	{ "user.xdg.comment", XA_DESCRIPTION, 1, 0 },
};

#define NXATTRS (sizeof(xattrs) / sizeof(*xattrs))

static int lookup(const char *name)
{
	size_t i;

	for (i = 0; i < NXATTRS; i++)
		if (!strcmp(xattrs[i].name, name))
			return (int)i;
	return -1;
}

static int is_file(const struct fs_node *n)
{
	return n->kind == FS_FILE || n->kind == FS_SHARED_FILE ||
	       n->kind == FS_TRASH_FILE || n->kind == FS_LA_FILE;
}

/*
 * The direct shares of a file (owner only; others get ENODATA, as for a
 * field they cannot see). Ownership: free(*v).
 */
static int owner_shares(const struct sfs_file *f, struct sfs_share **v,
			size_t *n)
{
	struct sfs_err e;

	*v = NULL;
	*n = 0;
	if (sfs_file_allows(f, SFS_ACT_SHARE, NULL))
		return -ENODATA;
	sfs_err_init(&e);
	if (sfs_share_list(g_fs.store, &g_fs.actor, f->id, v, n, &e))
		return -ENODATA;
	return 0;
}

/* The shares as the API's JSON array (the objects of GET .../shares). */
static int shares_value(const struct sfs_file *f, struct sfs_buf *b)
{
	struct sfs_share *v = NULL;
	json_t *arr = NULL, *o;
	char *txt = NULL;
	size_t n = 0, i;
	int ret;

	ret = owner_shares(f, &v, &n);
	if (ret)
		goto out;
	arr = json_array();
	for (i = 0; arr && i < n; i++) {
		o = sfs_json_share(&v[i]);
		if (!o || json_array_append_new(arr, o)) {
			ret = -ENOMEM;
			goto out;
		}
	}
	txt = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	if (!txt)
		ret = -ENOMEM;
	else if (sfs_buf_adds(b, txt))
		ret = -E2BIG;
out:
	free(txt);
	json_decref(arr);
	free(v);
	return ret;
}

/*
 * user.speechfs.contentStatus: core's state of the content by the names
 * fs/README.md documents (why open() fails: ENODATA for DISCARDED,
 * DELETED, PURGED and IMPORT_FAILED, EAGAIN for the other IMPORT_ ones).
 */
static const char *const content_names[] = {
	[SFS_CS_READY] = "AVAILABLE",
	[SFS_CS_NONE] = "AVAILABLE",
	[SFS_CS_PENDING] = "IMPORT_PENDING",
	[SFS_CS_PROCESSING] = "IMPORT_PROCESSING",
	[SFS_CS_FAILED] = "IMPORT_FAILED",
	[SFS_CS_DISCARDED] = "DISCARDED",
	[SFS_CS_DELETED] = "DELETED",
	[SFS_CS_PURGED] = "PURGED",
};

/* The value of one attribute into b; -ENODATA when it is null. */
static int value(const struct sfs_file *f, enum xa which, struct sfs_buf *b)
{
	const char *s = NULL;
	char num[64];
	json_t *j;
	char *txt;
	int ret = 0;

	switch (which) {
	case XA_TAGS:
		return sfs_tags_join(f->tags, f->ntags, b) ? -ENOMEM : 0;
	case XA_DESCRIPTION:
		s = f->description;
		break;
	case XA_PUBLISH:
		s = sfs_publish_name(f->publish);
		break;
	case XA_METADATA:
		s = f->metadata;
		break;
	case XA_ID:
		s = f->id;
		break;
	case XA_SHA256:
		s = f->sha256[0] ? f->sha256 : NULL;
		break;
	case XA_DURATION:
		if (f->duration >= 0) {
			snprintf(num, sizeof(num), "%.3f", f->duration);
			s = num;
		}
		break;
	case XA_FILENAME:
		s = f->filename;
		break;
	case XA_INGESTION:
		s = sfs_jstate_name(f->ingestion);
		break;
	case XA_LA_STATUS:
		s = sfs_jstate_name(f->la.status);
		break;
	case XA_SHARES:
		return shares_value(f, b);
	case XA_MIME:
		s = f->mime;
		break;
	case XA_ORIGIN:
		s = f->source_uri;
		break;
	case XA_INGEST_ERROR:
		s = f->ingest_error;
		break;
	case XA_LA_ERROR:
		s = f->la.error;
		break;
	case XA_CONTENT:
		s = content_names[sfs_file_content_state(f,
							 SFS_CONTENT_ORIGINAL)];
		break;
	case XA_JSON:
		j = sfs_json_file(f);
		txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!txt)
			return -ENOMEM;
		ret = sfs_buf_adds(b, txt) ? -E2BIG : 0;
		free(txt);
		return ret;
	}
	if (!s)
		return -ENODATA;
	return sfs_buf_adds(b, s) ? -E2BIG : 0;
}

/* Names outside user.* never reach the database. */
static int foreign(const char *name)
{
	return strncmp(name, "user.", 5) != 0;
}

/* Unknown names under user.speechfs. are ours to define later. */
static int reserved(const char *name)
{
	return !strncmp(name, "user.speechfs.", 14);
}

static int copy_out(const struct sfs_buf *b, char *val, size_t size)
{
	if (size && b->len > size)
		return -ERANGE;
	if (b->len > (size_t)0x7fffffff)
		return -E2BIG;
	if (b->len && size)
		memcpy(val, b->buf, b->len);
	return (int)b->len;
}

static int extra_get(const char *path, const char *name, char *val, size_t size)
{
	struct sfs_buf b = SFS_BUF_INIT(SFS_XATTR_VALUE_MAX + 1);
	struct fs_node n;
	struct sfs_err e;
	int ret;

	sfs_err_init(&e);
	ret = fs_resolve(path, &n);
	if (!ret && !is_file(&n))
		ret = -ENODATA;
	if (!ret)
		ret = -fs_errno(sfs_xattr_get(g_fs.store, &g_fs.actor, n.f.id,
					      name, &b, &e),
				&e);
	if (!ret)
		ret = copy_out(&b, val, size);
	sfs_buf_release(&b);
	fs_node_release(&n);
	return ret;
}

static int extra_change(const char *path, const char *name, const char *val,
			size_t size, int flags, int remove)
{
	struct fs_node n;
	struct sfs_err e;
	unsigned f = 0;
	int ret;

	if (flags & XATTR_CREATE)
		f |= SFS_XATTR_CREATE;
	if (flags & XATTR_REPLACE)
		f |= SFS_XATTR_REPLACE;
	sfs_err_init(&e);
	ret = fs_resolve(path, &n);
	if (!ret && !is_file(&n))
		ret = -ENOTSUP;
	if (!ret && remove)
		ret = -fs_errno(sfs_xattr_remove(g_fs.store, &g_fs.actor,
						 n.f.id, name, &e),
				&e);
	else if (!ret)
		ret = -fs_errno(sfs_xattr_set(g_fs.store, &g_fs.actor, n.f.id,
					      name, val, size, f, &e),
				&e);
	fs_node_release(&n);
	return ret;
}

/*
 * user.speechfs.share.<user>: the permission of the direct share with
 * that user, named by id or by name (core resolves it in the mount user's
 * tenant). Core's share rules decide (owner only: EACCES; unknown user,
 * a user of another tenant or oneself: EINVAL).
 */
#define SHARE_PFX PFX "share."

/* The id of the user a share attribute names; -1 when there is none. */
static int share_target(const char *who, char id[SFS_ID_SIZE])
{
	struct sfs_err e;

	sfs_err_init(&e);
	return sfs_user_resolve(g_fs.store, &g_fs.actor, who, id, &e) ? -1 : 0;
}

/* The user id of a share attribute's name, or NULL. */
static const char *share_user(const char *name)
{
	if (strncmp(name, SHARE_PFX, sizeof(SHARE_PFX) - 1))
		return NULL;
	return name + sizeof(SHARE_PFX) - 1;
}

/* Resolve a file whose shares may be changed from this path. */
static int share_node(const char *path, struct fs_node *n)
{
	int ret = fs_resolve(path, n);

	if (!ret && n->kind != FS_FILE && n->kind != FS_SHARED_FILE)
		ret = is_file(n) ? -EACCES : -ENOTSUP;
	return ret;
}

/* The permission of f's share with user, or -ENODATA. */
static int share_perm(const struct sfs_file *f, const char *user)
{
	struct sfs_share *v = NULL;
	size_t n = 0, i;
	int ret;

	ret = owner_shares(f, &v, &n);
	for (i = 0; !ret && i < n; i++)
		if (!strcasecmp(v[i].user_id, user))
			break;
	if (!ret)
		ret = i < n ? (int)v[i].perm : -ENODATA;
	free(v);
	return ret;
}

static int share_get(const char *path, const char *who, char *val, size_t size)
{
	struct sfs_buf b = SFS_BUF_INIT(64);
	char user[SFS_ID_SIZE];
	struct fs_node n;
	int ret;

	if (share_target(who, user))
		return -ENODATA;
	ret = fs_resolve(path, &n);
	if (!ret && !is_file(&n))
		ret = -ENODATA;
	if (!ret)
		ret = share_perm(&n.f, user);
	if (ret >= 0)
		ret = sfs_buf_adds(&b, sfs_perm_name((enum sfs_perm)ret))
			      ? -ENOMEM
			      : 0;
	if (!ret)
		ret = copy_out(&b, val, size);
	sfs_buf_release(&b);
	fs_node_release(&n);
	return ret;
}

static int share_set(const char *path, const char *who, const char *val,
		     size_t size, int flags)
{
	char perm[8], user[SFS_ID_SIZE];
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int p, ret, created, had;

	/* trailing newlines come from `echo`: not part of the value */
	while (size && val[size - 1] == '\n')
		size--;
	if (size == 0 || size >= sizeof(perm) || memchr(val, '\0', size))
		return -EINVAL;
	memcpy(perm, val, size);
	perm[size] = '\0';
	p = sfs_perm_parse(perm);
	if (sfs_share_perm_check(p, NULL))
		return -EINVAL;
	if (share_target(who, user))
		return -EINVAL;
	sfs_err_init(&e);
	ret = share_node(path, &n);
	if (!ret && (flags & (XATTR_CREATE | XATTR_REPLACE)) &&
	    !sfs_file_allows(&n.f, SFS_ACT_SHARE, NULL)) {
		had = share_perm(&n.f, user) >= 0;
		if ((flags & XATTR_CREATE) && had)
			ret = -EEXIST;
		else if ((flags & XATTR_REPLACE) && !had)
			ret = -ENODATA;
	}
	if (!ret) {
		st = sfs_share_put(g_fs.store, &g_fs.actor, n.f.id, user,
				   (enum sfs_perm)p, NULL, &created, &e);
		ret = -fs_errno(st, &e);
	}
	fs_node_release(&n);
	return ret;
}

static int share_remove(const char *path, const char *who)
{
	char user[SFS_ID_SIZE];
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	if (share_target(who, user))
		return -ENODATA;
	sfs_err_init(&e);
	ret = share_node(path, &n);
	if (!ret) {
		st = sfs_share_revoke_user(g_fs.store, &g_fs.actor, n.f.id,
					   user, &e);
		ret = -fs_errno(st, &e);
	}
	fs_node_release(&n);
	return ret;
}

int fs_getxattr(const char *path, const char *name, char *val, size_t size)
{
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	struct fs_node n;
	int i, ret;

	if (foreign(name))
		return -ENOTSUP;
	if (share_user(name))
		return share_get(path, share_user(name), val, size);
	if ((i = lookup(name)) < 0)
		return reserved(name) ? -ENODATA
				      : extra_get(path, name, val, size);
	ret = fs_resolve(path, &n);
	if (!ret && !is_file(&n))
		ret = -ENODATA;
	if (!ret)
		ret = value(&n.f, xattrs[i].which, &b);
	if (!ret) {
		if (size && b.len > size)
			ret = -ERANGE;
		else if (b.len > (size_t)0x7fffffff)
			ret = -E2BIG;
		else
			ret = (int)b.len;
		if (ret > 0 && size)
			memcpy(val, b.buf, b.len);
	}
	sfs_buf_release(&b);
	fs_node_release(&n);
	return ret;
}

/* Parse the written value into the update u (strings point into copy). */
static int parse(enum xa which, char *copy, struct sfs_file_update *u,
		 char ***tags)
{
	struct sfs_err e;
	int p;

	sfs_err_init(&e);
	switch (which) {
	case XA_TAGS:
		if (sfs_tags_split(copy, tags, &u->ntags, &e))
			return -EINVAL;
		u->set = SFS_UPD_TAGS;
		u->tags = (const char *const *)*tags;
		return 0;
	case XA_DESCRIPTION:
		u->set = SFS_UPD_DESCRIPTION;
		u->description = copy;
		return 0;
	case XA_PUBLISH:
		p = sfs_publish_parse(copy);
		if (p < 0)
			return -EINVAL;
		u->set = SFS_UPD_PUBLISH;
		u->publish = (enum sfs_publish)p;
		return 0;
	case XA_METADATA:
		u->set = SFS_UPD_METADATA;
		u->metadata = copy;
		return 0;
	default:
		return -EPERM;
	}
}

static int update(const char *path, const struct sfs_file_update *u)
{
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	sfs_err_init(&e);
	ret = fs_resolve(path, &n);
	if (!ret && n.kind != FS_FILE && n.kind != FS_SHARED_FILE)
		ret = is_file(&n) ? -EACCES : -ENOTSUP;
	if (!ret) {
		st = sfs_file_update(g_fs.store, &g_fs.actor, n.f.id, u, NULL,
				     &e);
		ret = -fs_errno(st, &e);
	}
	fs_node_release(&n);
	return ret;
}

/* "generate" written to listeningAudio.status: make the listening MP3. */
static int generate(const char *path, const char *val, size_t size)
{
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	while (size && val[size - 1] == '\n')
		size--;
	if (size != 8 || memcmp(val, "generate", 8))
		return -EINVAL;
	sfs_err_init(&e);
	ret = fs_resolve(path, &n);
	if (!ret && n.kind != FS_FILE && n.kind != FS_SHARED_FILE)
		ret = is_file(&n) ? -EACCES : -ENOTSUP;
	if (!ret) {
		st = sfs_listening_generate(g_fs.store, &g_fs.actor, n.f.id,
					    NULL, &e);
		ret = -fs_errno(st, &e);
	}
	fs_node_release(&n);
	return ret;
}

int fs_setxattr(const char *path, const char *name, const char *val,
		size_t size, int flags)
{
	struct sfs_file_update u = { 0 };
	char **tags = NULL;
	char *copy = NULL;
	int i, ret;

	if (foreign(name))
		return -ENOTSUP;
	if (!name[5])
		return -EINVAL; /* "user." alone names nothing */
	if (share_user(name))
		return share_set(path, share_user(name), val, size, flags);
	i = lookup(name);
	if (i < 0)
		return reserved(name)
			       ? -ENOTSUP
			       : extra_change(path, name, val, size, flags, 0);
	if (!xattrs[i].writable)
		return -EPERM;
	if (xattrs[i].which == XA_LA_STATUS)
		return generate(path, val, size);
	if (memchr(val, '\0', size))
		return -EINVAL;
	copy = malloc(size + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, val, size);
	copy[size] = '\0';
	/* trailing newlines come from `echo`: not part of the value */
	while (size && copy[size - 1] == '\n')
		copy[--size] = '\0';
	ret = parse(xattrs[i].which, copy, &u, &tags);
	if (!ret)
		ret = update(path, &u);
	sfs_strv_free(tags);
	free(copy);
	return ret;
}

int fs_removexattr(const char *path, const char *name)
{
	struct sfs_file_update u = { 0 };
	int i;

	if (foreign(name))
		return -ENODATA;
	if (share_user(name))
		return share_remove(path, share_user(name));
	if ((i = lookup(name)) < 0)
		return reserved(name) ? -ENODATA
				      : extra_change(path, name, NULL, 0, 0, 1);
	switch (xattrs[i].which) {
	case XA_TAGS:
		u.set = SFS_UPD_TAGS;
		break;
	case XA_DESCRIPTION:
		u.set = SFS_UPD_DESCRIPTION;
		break;
	case XA_METADATA:
		u.set = SFS_UPD_METADATA;
		break;
	default:
		/*
		 * Derived facts (id, sha256, json ...) and publishMode cannot
		 * be absent; removing one changes nothing. Succeeding keeps
		 * tools that mirror attributes (rsync -X, cp -a) working.
		 */
		return 0;
	}
	return update(path, &u);
}

/* The owner sees user.speechfs.shares and a share.<userId> per share. */
static int list_shares(const struct sfs_file *f, struct sfs_buf *b)
{
	struct sfs_share *v = NULL;
	size_t n = 0, i;
	int ret = 0;

	if (owner_shares(f, &v, &n))
		return 0;
	if (sfs_buf_add(b, PFX "shares", sizeof(PFX "shares")))
		ret = -ENOMEM;
	for (i = 0; i < n && !ret; i++)
		if (sfs_buf_addf(b, "%s%s", SHARE_PFX, v[i].user_id) ||
		    sfs_buf_add(b, "", 1))
			ret = -ENOMEM;
	free(v);
	return ret;
}

int fs_listxattr(const char *path, char *list, size_t size)
{
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	struct sfs_buf v = SFS_BUF_INIT(1 << 20);
	struct fs_node n;
	size_t i;
	int ret;

	ret = fs_resolve(path, &n);
	if (ret || !is_file(&n))
		goto out;
	for (i = 0; i < NXATTRS && !ret; i++) {
		if (!xattrs[i].listed)
			continue;
		sfs_buf_reset(&v);
		if (xattrs[i].which == XA_SHARES)
			ret = list_shares(&n.f, &b);
		else if (value(&n.f, xattrs[i].which, &v))
			continue;
		else if (sfs_buf_add(&b, xattrs[i].name,
				     strlen(xattrs[i].name) + 1))
			ret = -ENOMEM;
	}
	if (!ret) {
		struct sfs_err e;

		sfs_err_init(&e);
		ret = -fs_errno(
			sfs_xattr_list(g_fs.store, &g_fs.actor, n.f.id, &b, &e),
			&e);
	}
out:
	if (!ret) {
		if (size && b.len > size)
			ret = -ERANGE;
		else
			ret = (int)b.len;
		if (ret > 0 && size)
			memcpy(list, b.buf, b.len);
	}
	sfs_buf_release(&b);
	sfs_buf_release(&v);
	fs_node_release(&n);
	return ret;
}
