/*
 * PUT /files/{id}/content (an extension): a new content version of a file
 * under the same id, its bytes streamed into a stage as an upload's are
 * (hashed as they pass, the upload's size limit, the tenant's quota and
 * dedupe at commit), committed in one transaction with the listening
 * audio made again. If-Match makes it conditional on the content the
 * client last saw (412 otherwise), checked before the body streams in and
 * again in the committing transaction.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "httpd.h"
#include "speechfs/file.h"
#include "speechfs/json.h"
#include "speechfs/stage.h"
#include "speechfs/upload.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

/*
 * Read If-Match against the file's content now: a list of strong entity
 * tags (our ETags are the quoted sha256) or "*". 1 when one matches (its
 * value kept in r->if_match for the commit), 0 when none does, -1 when
 * the header is not one.
 */
static int if_match(struct req *r, const struct sfs_file *f)
{
	const char *h = req_header(r, "If-Match"), *p, *q;
	char tag[68];
	int any = 0;

	if (!h)
		return 1;
	r->if_match_set = 1;
	for (p = h;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		if (*p == '*') {
			snprintf(tag, sizeof(tag), "*");
			p++;
		} else {
			int weak = !strncmp(p, "W/", 2);

			if (weak)
				p += 2;
			if (*p != '"')
				return -1;
			q = strchr(p + 1, '"');
			if (!q)
				return -1;
			/* a weak tag never matches (RFC 9110 13.1.1) */
			if (weak || (size_t)(q - p - 1) >= sizeof(tag))
				tag[0] = '\x01';
			else
				snprintf(tag, sizeof(tag), "%.*s",
					 (int)(q - p - 1), p + 1);
			p = q + 1;
		}
		any = 1;
		if (tag[0] != '\x01' && sfs_file_content_matches(f, tag)) {
			snprintf(r->if_match, sizeof(r->if_match), "%s", tag);
			return 1;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != ',')
			return -1;
	}
	return any ? 0 : -1;
}

static enum MHD_Result precondition_failed(struct req *r,
					   const struct sfs_file *f)
{
	return respond_errf(r, SFS_PRECONDITION, SFS_R_NONE,
			    "If-Match: the file's content is no longer the "
			    "one expected (its sha256 is %s)",
			    f->sha256[0] ? f->sha256 : "null: it has none");
}

enum MHD_Result api_content_start(struct req *r, int64_t len)
{
	struct sfs_file f;
	struct sfs_err e;
	enum MHD_Result ret;
	int gla = 1, m;

	sfs_err_init(&e);
	sfs_file_init(&f);
	if (len > g_httpd.opts.max_upload_bytes) {
		ret = respond_errf(r, SFS_TOO_LARGE, SFS_R_PAYLOAD_TOO_LARGE,
				   "the content is larger than %lld bytes",
				   (long long)g_httpd.opts.max_upload_bytes);
		goto out;
	}
	/* refused before the bytes come: the same checks as the commit's */
	if (req_bool_arg(r, "generateListeningAudio", &gla, &e) ||
	    sfs_file_get(g_httpd.store, &r->actor, r->params[0], &f, &e) ||
	    sfs_file_allows(&f, SFS_ACT_WRITE, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	m = if_match(r, &f);
	if (m < 0) {
		ret = respond_errf(r, SFS_INVALID, SFS_R_INVALID_PARAMETER,
				   "If-Match must be \"*\" or a list of "
				   "entity tags (\"<sha256>\")");
		goto out;
	}
	if (m == 0) {
		ret = precondition_failed(r, &f);
		goto out;
	}
	if (req_arg(r, "upload") || req_header(r, "Upload-Offset")) {
		ret = api_uploads_put_start(r, len, &m);
		if (!m)
			goto out;
	} else if (sfs_stage_new(g_httpd.store, &r->stage, &e)) {
		ret = respond_err(r, &e);
		goto out;
	}
	sfs_stage_set_limit(r->stage, g_httpd.opts.max_upload_bytes);
	r->body = BODY_STAGE;
	ret = MHD_YES;
out:
	sfs_file_release(&f);
	return ret;
}

void api_content_crc_header(struct req *r, const struct sfs_stage *st)
{
	struct sfs_buf b = SFS_BUF_INIT(16);
	uint32_t crc;
	unsigned char be[4];

	if (!g_httpd.opts.extensions || !st)
		return;
	crc = sfs_stage_crc32c(st);
	be[0] = (unsigned char)(crc >> 24);
	be[1] = (unsigned char)(crc >> 16);
	be[2] = (unsigned char)(crc >> 8);
	be[3] = (unsigned char)crc;
	if (!sfs_base64_encode(be, sizeof(be), &b))
		req_set_header(r, "X-Speechfs-Content-Crc32c", b.buf);
	sfs_buf_release(&b);
}

#define CRC_HEADER "X-Speechfs-Content-Crc32c"

/* One value of the header: the CRC32C in *crc, or SFS_INVALID. */
static enum sfs_status crc_of(const char *v, const char *where, uint32_t *crc,
			      struct sfs_err *e)
{
	struct sfs_buf b = SFS_BUF_INIT(64);
	const unsigned char *p;
	enum sfs_status st = SFS_OK;

	if (sfs_base64_decode(v, strlen(v), &b) || b.len != 4)
		st = sfs_errf(e, SFS_INVALID, SFS_R_INVALID_PARAMETER,
			      CRC_HEADER " (%s) must be the base64 of the "
					 "content's CRC32C, 4 bytes big-endian "
					 "(\"AAAAAA==\")",
			      where);
	if (!st) {
		p = (const unsigned char *)b.buf;
		*crc = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		       (uint32_t)p[2] << 8 | p[3];
	}
	sfs_buf_release(&b);
	return st;
}

enum sfs_status api_content_check_crc(struct req *r, struct sfs_err *e)
{
	const char *h, *t;
	uint32_t hc = 0, tc = 0;
	enum sfs_status st = SFS_OK;

	if (!g_httpd.opts.extensions || !r->stage)
		return SFS_OK;
	h = req_header(r, CRC_HEADER);
	t = MHD_lookup_connection_value(r->conn, MHD_FOOTER_KIND, CRC_HEADER);
	if (h)
		st = crc_of(h, "header", &hc, e);
	if (!st && t)
		st = crc_of(t, "trailer", &tc, e);
	if (!st && h)
		st = sfs_stage_check_crc32c(r->stage, hc, e);
	if (!st && t)
		st = sfs_stage_check_crc32c(r->stage, tc, e);
	return st;
}

enum MHD_Result api_files_put_content(struct req *r)
{
	struct sfs_file f;
	struct sfs_err e;
	struct sfs_buf b;
	enum MHD_Result ret;
	enum sfs_status st;
	char etag[80];
	int gla = 1;

	sfs_err_init(&e);
	sfs_file_init(&f);
	if (!r->stage)
		return respond_errf(r, SFS_IO, SFS_R_NONE, "no content staged");
	if ((r->upload && sfs_upload_stage_alive(r->stage, &e)) ||
	    req_bool_arg(r, "generateListeningAudio", &gla, &e) ||
	    api_content_check_crc(r, &e) ||
	    sfs_file_set_content_if(
		    g_httpd.store, &r->actor, r->params[0], r->stage,
		    SFS_SET_IF_AUDIO | (gla ? SFS_SET_LISTENING : 0),
		    r->if_match_set ? r->if_match : NULL, &f, &e))
		return respond_err(r, &e);
	if (f.sha256[0]) {
		snprintf(etag, sizeof(etag), "\"%s\"", f.sha256);
		req_set_header(r, "ETag", etag);
	}
	api_dirs_header(r, &f);
	api_content_crc_header(r, r->stage);
	sfs_buf_init(&b, RESP_BUF_MAX);
	st = sfs_buf_grow(&b, 2048);
	if (!st)
		st = sfs_json_file_text(&f, &b);
	ret = st ? respond_errf(r, SFS_NOMEM, SFS_R_NONE, "out of memory")
		 : respond_buf(r, 200, &b);
	sfs_buf_release(&b);
	sfs_file_release(&f);
	return ret;
}
