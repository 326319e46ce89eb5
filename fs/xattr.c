/*
 * Extended attributes of the mount's files: user.speechfs.* names for the
 * file model's fields (tags, description, publishMode, metadata writable;
 * the rest and the whole JSON read-only, except that writing "generate"
 * to listeningAudio.status requests the listening MP3, as the API's
 * POST .../listening-audio does), the owner's direct shares (read-only
 * JSON in user.speechfs.shares, one read-write user.speechfs.share.<userId>
 * per share) and the freedesktop aliases user.xdg.tags / user.xdg.comment.
 * A listening MP3 in /.listening/ has its own facts: its sha256 and MIME
 * type are the MP3's.
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
	return fs_is_file_kind(n->kind);
}

/* A file node of any tree; directories have no attributes (errno `dir`). */
static int file_node(uint64_t node, struct fs_node *n, int dir)
{
	int ret = fs_node_get(node, n);

	if (!ret && !is_file(n))
		ret = -dir;
	return ret;
}

/*
 * The direct shares of a file (owner only; others get ENODATA, as for a
 * field they cannot see). Ownership: free(*v).
 */
static int owner_shares(const struct sfs_file *f, struct sfs_share **v,
			size_t *n)
{
	struct sfs_err e;
	enum sfs_status st;

	*v = NULL;
	*n = 0;
	if (sfs_file_allows(f, SFS_ACT_SHARE, NULL))
		return -ENODATA;
	sfs_err_init(&e);
	st = sfs_share_list(g_fs.store, &g_fs.actor, f->id, v, n, &e);
	if (st)
		return st == SFS_WOULD_WAIT ? -FS_EWAIT : -ENODATA;
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
static int value(const struct fs_node *n, enum xa which, struct sfs_buf *b)
{
	const struct sfs_file *f = &n->f;
	int mp3 = n->kind == FS_LA_FILE;
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
		s = mp3 ? f->la.sha256 : f->sha256;
		s = s[0] ? s : NULL;
		break;
	case XA_DURATION:
		if (f->duration >= 0) {
			snprintf(num, sizeof(num), "%.3f", f->duration);
			s = num;
		}
		break;
	case XA_FILENAME:
		s = mp3 ? NULL : f->filename;
		break;
	case XA_INGESTION:
		s = mp3 ? NULL : sfs_jstate_name(f->ingestion);
		break;
	case XA_LA_STATUS:
		s = sfs_jstate_name(f->la.status);
		break;
	case XA_SHARES:
		return shares_value(f, b);
	case XA_MIME:
		s = mp3 ? "audio/mpeg" : f->mime;
		break;
	case XA_ORIGIN:
		s = mp3 ? NULL : f->source_uri;
		break;
	case XA_INGEST_ERROR:
		s = mp3 ? NULL : f->ingest_error;
		break;
	case XA_LA_ERROR:
		s = f->la.error;
		break;
	case XA_CONTENT:
		s = content_names[sfs_file_content_state(
			f, mp3 ? SFS_CONTENT_LISTENING : SFS_CONTENT_ORIGINAL)];
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

static int extra_get(uint64_t node, const char *name, struct sfs_buf *b)
{
	struct fs_node n;
	struct sfs_err e;
	int ret;

	sfs_err_init(&e);
	ret = file_node(node, &n, ENODATA);
	if (!ret)
		ret = -fs_errno(sfs_xattr_get(g_fs.store, &g_fs.actor, n.f.id,
					      name, b, &e),
				&e);
	fs_node_release(&n);
	return ret;
}

static int extra_change(uint64_t node, const char *name, const char *val,
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
	ret = file_node(node, &n, ENOTSUP);
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
	enum sfs_status st;

	sfs_err_init(&e);
	st = sfs_user_resolve(g_fs.store, &g_fs.actor, who, id, &e);
	return st == SFS_WOULD_WAIT ? -FS_EWAIT : st ? -1 : 0;
}

/* The user id of a share attribute's name, or NULL. */
static const char *share_user(const char *name)
{
	if (strncmp(name, SHARE_PFX, sizeof(SHARE_PFX) - 1))
		return NULL;
	return name + sizeof(SHARE_PFX) - 1;
}

/* A file whose shares may be changed (not in /.trash/, /.listening/). */
static int share_node(uint64_t node, struct fs_node *n)
{
	int ret = file_node(node, n, ENOTSUP);

	if (!ret && n->kind != FS_FILE)
		ret = -EACCES;
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

static int share_get(uint64_t node, const char *who, struct sfs_buf *b)
{
	char user[SFS_ID_SIZE];
	struct fs_node n;
	int ret;

	ret = share_target(who, user);
	if (ret)
		return ret == -FS_EWAIT ? ret : -ENODATA;
	ret = file_node(node, &n, ENODATA);
	if (!ret)
		ret = share_perm(&n.f, user);
	if (ret >= 0)
		ret = sfs_buf_adds(b, sfs_perm_name((enum sfs_perm)ret))
			      ? -ENOMEM
			      : 0;
	fs_node_release(&n);
	return ret;
}

static int share_set(uint64_t node, const char *who, const char *val,
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
	ret = share_node(node, &n);
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

static int share_remove(uint64_t node, const char *who)
{
	char user[SFS_ID_SIZE];
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	if (share_target(who, user))
		return -ENODATA;
	sfs_err_init(&e);
	ret = share_node(node, &n);
	if (!ret) {
		st = sfs_share_revoke_user(g_fs.store, &g_fs.actor, n.f.id,
					   user, &e);
		ret = -fs_errno(st, &e);
	}
	fs_node_release(&n);
	return ret;
}

/* Answer a get or list: the length for a size-0 probe, ERANGE, or it. */
static void reply_value(fuse_req_t req, int ret, const struct sfs_buf *b,
			size_t size)
{
	if (!ret && b->len > (size_t)0x7fffffff)
		ret = -E2BIG;
	if (!ret && size && b->len > size)
		ret = -ERANGE;
	if (ret)
		fs_reply_err(req, -ret);
	else if (!size)
		fuse_reply_xattr(req, b->len);
	else
		fuse_reply_buf(req, b->buf, b->len);
}

static int get_value(uint64_t node, const char *name, struct sfs_buf *b)
{
	struct fs_node n;
	int i, ret;

	if (share_user(name))
		return share_get(node, share_user(name), b);
	if ((i = lookup(name)) < 0)
		return reserved(name) ? -ENODATA : extra_get(node, name, b);
	ret = file_node(node, &n, ENODATA);
	if (!ret)
		ret = value(&n, xattrs[i].which, b);
	fs_node_release(&n);
	return ret;
}

void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);

	/* names outside user.* never reach the database */
	if (foreign(name)) {
		fs_reply_err(req, ENOTSUP);
		return;
	}
	reply_value(req, get_value(ino, name, &b), &b, size);
	sfs_buf_release(&b);
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

/* A change of the file's fields (not in /.trash/ or /.listening/). */
static int update(uint64_t node, const struct sfs_file_update *u)
{
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	sfs_err_init(&e);
	ret = share_node(node, &n);
	if (!ret) {
		st = sfs_file_update(g_fs.store, &g_fs.actor, n.f.id, u, NULL,
				     &e);
		ret = -fs_errno(st, &e);
	}
	fs_node_release(&n);
	return ret;
}

/*
 * listeningAudio.status is read-only but for one value: "generate" asks
 * for the listening MP3 (as POST .../listening-audio does).
 */
static int generate(uint64_t node, const char *val, size_t size)
{
	struct fs_node n;
	struct sfs_err e;
	enum sfs_status st;
	int ret;

	while (size && val[size - 1] == '\n')
		size--;
	if (size != 8 || memcmp(val, "generate", 8))
		return -EPERM;
	sfs_err_init(&e);
	ret = share_node(node, &n);
	if (!ret) {
		st = sfs_listening_generate(g_fs.store, &g_fs.actor, n.f.id,
					    NULL, &e);
		ret = -fs_errno(st, &e);
	}
	fs_node_release(&n);
	return ret;
}

static int set_value(uint64_t node, const char *name, const char *val,
		     size_t size, int flags)
{
	struct sfs_file_update u = { 0 };
	char **tags = NULL;
	char *copy = NULL;
	int i, ret;

	if (!name[5])
		return -EINVAL; /* "user." alone names nothing */
	if (share_user(name))
		return share_set(node, share_user(name), val, size, flags);
	i = lookup(name);
	if (i < 0)
		return reserved(name)
			       ? -ENOTSUP
			       : extra_change(node, name, val, size, flags, 0);
	if (xattrs[i].which == XA_LA_STATUS)
		return generate(node, val, size);
	if (!xattrs[i].writable)
		return -EPERM;
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
		ret = update(node, &u);
	sfs_strv_free(tags);
	free(copy);
	return ret;
}

void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags)
{
	int ret = foreign(name) ? -ENOTSUP : fs_may_change();

	if (!ret)
		ret = set_value(ino, name, value, size, flags);
	fs_reply_err(req, -ret);
}

static int remove_value(uint64_t node, const char *name)
{
	struct sfs_file_update u = { 0 };
	int i;

	if (share_user(name))
		return share_remove(node, share_user(name));
	if ((i = lookup(name)) < 0)
		return reserved(name) ? -ENODATA
				      : extra_change(node, name, NULL, 0, 0, 1);
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
	case XA_PUBLISH:
		/* a mode cannot be absent: removing it changes nothing */
		return 0;
	default:
		/* derived facts (id, sha256, json ...) are read-only */
		return -EPERM;
	}
	return update(node, &u);
}

void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int ret = foreign(name) ? -ENODATA : fs_may_change();

	if (!ret)
		ret = remove_value(ino, name);
	fs_reply_err(req, -ret);
}

/* The owner sees user.speechfs.shares and a share.<userId> per share. */
static int list_shares(const struct sfs_file *f, struct sfs_buf *b)
{
	struct sfs_share *v = NULL;
	size_t n = 0, i;
	int ret;

	ret = owner_shares(f, &v, &n);
	if (ret)
		return ret == -FS_EWAIT ? ret : 0; /* none to list */
	if (sfs_buf_add(b, PFX "shares", sizeof(PFX "shares")))
		ret = -ENOMEM;
	for (i = 0; i < n && !ret; i++)
		if (sfs_buf_addf(b, "%s%s", SHARE_PFX, v[i].user_id) ||
		    sfs_buf_add(b, "", 1))
			ret = -ENOMEM;
	free(v);
	return ret;
}

static int list_names(uint64_t node, struct sfs_buf *b)
{
	struct sfs_buf v = SFS_BUF_INIT(1 << 20);
	struct sfs_err e;
	struct fs_node n;
	size_t i;
	int ret;

	ret = fs_node_get(node, &n);
	if (ret || !is_file(&n))
		goto out;
	for (i = 0; i < NXATTRS && !ret; i++) {
		if (!xattrs[i].listed)
			continue;
		sfs_buf_reset(&v);
		if (xattrs[i].which == XA_SHARES)
			ret = n.kind == FS_FILE ? list_shares(&n.f, b) : 0;
		else if (value(&n, xattrs[i].which, &v))
			continue;
		else if (sfs_buf_add(b, xattrs[i].name,
				     strlen(xattrs[i].name) + 1))
			ret = -ENOMEM;
	}
	sfs_err_init(&e);
	if (!ret && n.kind != FS_LA_FILE)
		ret = -fs_errno(
			sfs_xattr_list(g_fs.store, &g_fs.actor, n.f.id, b, &e),
			&e);
out:
	sfs_buf_release(&v);
	fs_node_release(&n);
	return ret;
}

void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);

	reply_value(req, list_names(ino, &b), &b, size);
	sfs_buf_release(&b);
}
