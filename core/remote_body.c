/*
 * What the remote store's requests send (remote_i.h): a stream from a
 * source, a file's bytes, a multipart form (a small one built whole, a
 * larger one through libcurl's mime) or JSON, set on a libcurl handle
 * for one transfer.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "speechfs/buf.h"
#include "remote_i.h"
#include "speechfs/banned.h"

#define SOURCE_BUFFER (1 << 20)

/* libcurl rewinds an upload to send it again on a fresh connection. */
static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct sfsi_remote_body *u = arg;

	return lseek(u->fd, (off_t)off, origin) < 0 ? CURL_SEEKFUNC_CANTSEEK
						    : CURL_SEEKFUNC_OK;
}

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
	struct sfsi_remote_body *u = arg;
	ssize_t got;

	do
		got = read(u->fd, p, size * n);
	while (got < 0 && errno == EINTR);
	return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

static size_t on_source(char *p, size_t size, size_t n, void *arg)
{
	struct sfsi_remote_body *src = arg;
	ssize_t got = src->source(src->source_arg, p, size * n);

	return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

/*
 * A small form (a new file's create with its bytes: FORM_INLINE_MAX and
 * less) is built here, in one buffer that libcurl sends with the head in
 * one write; through libcurl's mime the head and the body went in two,
 * and the form's parts were made and read through callbacks per request
 * (a tenth of the mount's CPU per small create, with the second send).
 * The same bytes as libcurl's form: the filename escaped as it escapes
 * it (" CR LF as %22 %0D %0A), the file part typed
 * application/octet-stream. The boundary is one no part holds (looked
 * for, not left to chance).
 */
#define FORM_INLINE_MAX (16 << 10)

static int form_has(const struct sfsi_remote_req *q, const char *file,
		    size_t flen, const char *bound)
{
	size_t i;

	if (memmem(file, flen, bound, strlen(bound)))
		return 1;
	for (i = 0; q->form[i]; i += 2)
		if (strstr(q->form[i + 1], bound))
			return 1;
	return 0;
}

static int add_escaped(struct sfs_buf *b, const char *v)
{
	int bad = 0;

	for (; *v && !bad; v++)
		bad = *v == '"'	   ? sfs_buf_adds(b, "%22")
		      : *v == '\r' ? sfs_buf_adds(b, "%0D")
		      : *v == '\n' ? sfs_buf_adds(b, "%0A")
				   : sfs_buf_addch(b, *v);
	return bad;
}

/* The form of q into f->form (the file's bytes read from q->fd); -1: not so. */
static int form_inline(const struct sfsi_remote_req *q,
		       struct sfsi_remote_body *f)
{
	static unsigned long long seq;
	char file[FORM_INLINE_MAX], bound[64];
	size_t flen = 0, i;
	ssize_t got;
	off_t at = 0;
	int bad = 0;

	if (!q->form || q->source || q->size > FORM_INLINE_MAX ||
	    (q->fd >= 0 &&
	     (q->size < 0 || (at = lseek(q->fd, 0, SEEK_CUR)) < 0)))
		return -1;
	/* read where libcurl would, leaving the offset to it if not so */
	while (q->fd >= 0 && flen < (size_t)q->size) {
		got = pread(q->fd, file + flen, (size_t)q->size - flen,
			    at + (off_t)flen);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1; /* libcurl's way then: it says what failed */
		flen += (size_t)got;
	}
	do
		snprintf(bound, sizeof(bound),
			 "------------------------sfs%llx",
			 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
	while (form_has(q, file, flen, bound));
	snprintf(f->ctype, sizeof(f->ctype),
		 "Content-Type: multipart/form-data; boundary=%s", bound);
	sfs_buf_init(&f->form, FORM_INLINE_MAX + 8192);
	for (i = 0; q->form[i] && !bad; i += 2)
		bad = sfs_buf_addf(&f->form,
				   "--%s\r\nContent-Disposition: form-data; "
				   "name=\"%s\"\r\n\r\n",
				   bound, q->form[i]) ||
		      sfs_buf_adds(&f->form, q->form[i + 1]) ||
		      sfs_buf_adds(&f->form, "\r\n");
	bad = bad ||
	      sfs_buf_addf(&f->form,
			   "--%s\r\nContent-Disposition: form-data; "
			   "name=\"file\"; filename=\"",
			   bound) ||
	      add_escaped(&f->form, q->form_file ? q->form_file : "") ||
	      sfs_buf_adds(&f->form, "\"\r\nContent-Type: "
				     "application/octet-stream\r\n\r\n") ||
	      sfs_buf_add(&f->form, file, flen) ||
	      sfs_buf_addf(&f->form, "\r\n--%s--\r\n", bound);
	if (bad) {
		sfs_buf_release(&f->form);
		return -1;
	}
	return 0;
}

#define CRC_HEADER "X-Speechfs-Content-Crc32c"

/* "X-Speechfs-Content-Crc32c: <base64 of the 4 bytes, big-endian>" */
static int crc_line(uint32_t crc, char *out, size_t size)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				  "qrstuvwxyz0123456789+/";
	unsigned char v[4] = { (unsigned char)(crc >> 24),
			       (unsigned char)(crc >> 16),
			       (unsigned char)(crc >> 8), (unsigned char)crc };

	return snprintf(out, size,
			CRC_HEADER ": %c%c%c%c%c%c==", b64[v[0] >> 2],
			b64[(v[0] & 3) << 4 | v[1] >> 4],
			b64[(v[1] & 15) << 2 | v[2] >> 6], b64[v[2] & 63],
			b64[v[3] >> 2], b64[(v[3] & 3) << 4]) >= (int)size;
}

/* A stream's trailer: the CRC32C of what it sent, known at its end. */
static int on_trailer(struct curl_slist **list, void *arg)
{
	struct sfsi_remote_body *u = arg;
	struct curl_slist *l;
	char line[64];

	if (crc_line(*u->crc32c, line, sizeof(line)))
		return CURL_TRAILERFUNC_ABORT;
	l = curl_slist_append(*list, line);
	if (!l)
		return CURL_TRAILERFUNC_ABORT;
	*list = l;
	return CURL_TRAILERFUNC_OK;
}

/*
 * The request's body: a stream from q->source, a file's bytes (u), a
 * multipart form, or JSON. The form's mime (the caller frees it), else
 * NULL. u outlives the transfer.
 */
static curl_mime *set_body(CURL *c, const struct sfsi_remote_req *q,
			   struct sfsi_remote_body *u)
{
	curl_mime *mime = NULL;
	curl_mimepart *part;
	size_t i;

	if (q->source) {
		/* no size: chunked; no seek: libcurl cannot send it again */
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_source);
		curl_easy_setopt(c, CURLOPT_READDATA, u);
		curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE,
				 (long)SOURCE_BUFFER);
	} else if (q->fd >= 0 && !q->form) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, u);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, u);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)q->size);
	} else if (q->form) {
		mime = curl_mime_init(c);
		for (i = 0; mime && q->form[i]; i += 2) {
			part = curl_mime_addpart(mime);
			curl_mime_name(part, q->form[i]);
			curl_mime_data(part, q->form[i + 1],
				       CURL_ZERO_TERMINATED);
		}
		part = mime ? curl_mime_addpart(mime) : NULL;
		curl_mime_name(part, "file");
		curl_mime_filename(part, q->form_file);
		if (q->fd >= 0) {
			curl_mime_data_cb(part, (curl_off_t)q->size, on_read,
					  on_seek, NULL, u);
		} else {
			curl_mime_data(part, "", 0);
		}
		curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
	} else if (q->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)strlen(q->body));
	}
	return mime;
}

struct curl_slist *sfsi_remote_body_set(struct sfsi_remote_body *body,
					void *curl,
					const struct sfsi_remote_req *q,
					struct curl_slist *h)
{
	CURL *c = curl;
	char line[64];

	memset(body, 0, sizeof(*body));
	body->fd = q->fd;
	body->source = q->source;
	body->source_arg = q->source_arg;
	/*
	 * The CRC32C of what is sent goes with it: the server refuses other
	 * bytes before it stores them (a stream's is known at its end only:
	 * its trailer)
	 */
	body->crc32c = q->content_crc32c;
	if (q->content_crc32c && q->source) {
		h = curl_slist_append(h, "Trailer: " CRC_HEADER);
		curl_easy_setopt(c, CURLOPT_TRAILERFUNCTION, on_trailer);
		curl_easy_setopt(c, CURLOPT_TRAILERDATA, body);
	} else if (q->content_crc32c &&
		   !crc_line(*q->content_crc32c, line, sizeof(line))) {
		h = curl_slist_append(h, line);
	}
	body->whole = form_inline(q, body) == 0;
	if (body->whole) {
		h = curl_slist_append(h, body->ctype);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->form.buf);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)body->form.len);
	} else {
		body->mime = set_body(c, q, body);
	}
	return h;
}

void sfsi_remote_body_release(struct sfsi_remote_body *body)
{
	curl_mime_free(body->mime);
	body->mime = NULL;
	if (body->whole)
		sfs_buf_release(&body->form);
	body->whole = 0;
}
