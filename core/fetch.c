/*
 * URI import over libcurl: http, https and S3 (Signature Version 4)
 * downloads streamed into a stage, with size, time and redirect limits and
 * an SSRF check on every address actually connected to.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include "speechfs/blob.h"
#include "speechfs/buf.h"
#include "speechfs/fetch.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "s3_i.h"
#include "util_i.h"

#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ERRBODY_MAX 4096

struct fetch {
	CURL *curl;
	const struct sfs_config *cfg;
	struct sfs_stage *stage;
	struct sfs_err *e;
	int64_t limit;
	int64_t got;
	int s3;

	/* the response being received (reset by every status line) */
	long code;
	char reason[64];
	int64_t content_length;
	int chunked;		/* a chunked body's Content-Length is moot */
	struct sfs_buf errbody; /* start of an error body (S3's XML) */

	char blocked[160]; /* why the last address was refused */
	enum sfs_status stage_st;
	int too_large, cancelled, http_failed;

	int (*progress)(void *arg);
	void *arg;
	int64_t next_progress_ns;
};

/* ---- URI validation ---- */

static int lower_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Length of a URI's scheme (before ':'), 0 if it has none. */
static size_t scheme_len(const char *uri)
{
	size_t i = 0;

	if (!((uri[0] >= 'a' && uri[0] <= 'z') ||
	      (uri[0] >= 'A' && uri[0] <= 'Z')))
		return 0;
	for (; uri[i] && uri[i] != ':'; i++) {
		char c = (char)(uri[i] | 0x20); /* ASCII lower case */

		if (!lower_alnum(c) && !strchr("+-.", uri[i]))
			return 0;
	}
	return uri[i] == ':' ? i : 0;
}

static int is_scheme(const char *uri, size_t n, const char *name)
{
	return n == strlen(name) && !strncasecmp(uri, name, n);
}

/* s3://bucket/key into bucket[64] and the key; 0 on success. */
static int s3_split(const char *uri, char bucket[64], const char **key)
{
	const char *b = uri + 5, *slash;
	size_t n, i;

	if (strncasecmp(uri, "s3://", 5))
		return -1;
	slash = strchr(b, '/');
	if (!slash)
		return -1;
	n = (size_t)(slash - b);
	if (n < 3 || n > 63 || !lower_alnum(b[0]) || !lower_alnum(b[n - 1]))
		return -1;
	for (i = 0; i < n; i++)
		if (!lower_alnum(b[i]) && b[i] != '.' && b[i] != '-')
			return -1;
	if (!slash[1] || strlen(slash + 1) > 1024)
		return -1;
	memcpy(bucket, b, n);
	bucket[n] = '\0';
	*key = slash + 1;
	return 0;
}

static enum sfs_status check_http(const char *uri, struct sfs_err *e)
{
	CURLU *u = curl_url();
	char *host = NULL;
	CURLUcode uc;
	enum sfs_status ret = SFS_OK;

	if (!u)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	uc = curl_url_set(u, CURLUPART_URL, uri, 0);
	if (uc) {
		ret = sfs_err_field(e, "uri", "invalid", "not a valid URL: %s",
				    curl_url_strerror(uc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) || !host || !*host)
		ret = sfs_err_field(e, "uri", "invalid", "the URL has no host");
out:
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

enum sfs_status sfs_fetch_check_uri(const char *uri, struct sfs_err *e)
{
	char bucket[64];
	const char *key;
	size_t n;

	if (!uri || !*uri)
		return sfs_err_field(e, "uri", "missing", "a URI is required");
	if (strlen(uri) > SFS_FETCH_URI_MAX)
		return sfs_err_field(e, "uri", "too_long",
				     "longer than %d bytes", SFS_FETCH_URI_MAX);
	if (has_ctl(uri))
		return sfs_err_field(e, "uri", "invalid",
				     "contains spaces or control characters");
	n = scheme_len(uri);
	if (!n)
		return sfs_err_field(e, "uri", "invalid",
				     "not an absolute URI (http, https or s3)");
	if (is_scheme(uri, n, "s3")) {
		if (s3_split(uri, bucket, &key))
			return sfs_err_field(e, "uri", "invalid",
					     "expected s3://bucket/key");
		return SFS_OK;
	}
	if (is_scheme(uri, n, "http") || is_scheme(uri, n, "https")) {
		/* curl would read "http:///x" as host x: say no */
		if (strncmp(uri + n, "://", 3) || uri[n + 3] == '/')
			return sfs_err_field(e, "uri", "invalid",
					     "expected %.*s://host/...", (int)n,
					     uri);
		return check_http(uri, e);
	}
	return sfs_err_field(e, "uri", "unsupported_scheme",
			     "unsupported scheme '%.*s' (use http, https or "
			     "s3)",
			     (int)(n > 16 ? 16 : n), uri);
}

/* ---- addresses: what may be connected to ---- */

struct ipaddr {
	int v6;
	unsigned char a[16];
};

static int ip_parse(const char *s, struct ipaddr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, s, ip->a) == 1)
		return 0;
	ip->v6 = 1;
	return inet_pton(AF_INET6, s, ip->a) == 1 ? 0 : -1;
}

static void ip_text(const struct ipaddr *ip, char *out, size_t size)
{
	if (!inet_ntop(ip->v6 ? AF_INET6 : AF_INET, ip->a, out,
		       (socklen_t)size))
		sfs_strlcpy(out, "?", size);
}

static int prefix_match(const struct ipaddr *ip, const struct ipaddr *net,
			int bits)
{
	int full = bits / 8, rem = bits % 8;
	unsigned char m;

	if (ip->v6 != net->v6 || memcmp(ip->a, net->a, (size_t)full))
		return 0;
	if (!rem)
		return 1;
	m = (unsigned char)(0xff << (8 - rem));
	return (ip->a[full] & m) == (net->a[full] & m);
}

static const struct {
	const char *net;
	int bits;
	const char *what;
} blocked_nets[] = {
	{ "0.0.0.0", 32, "unspecified" },
	{ "255.255.255.255", 32, "broadcast" },
	{ "0.0.0.0", 8, "this network" },
	{ "10.0.0.0", 8, "private network" },
	{ "100.64.0.0", 10, "carrier-grade NAT" },
	{ "127.0.0.0", 8, "loopback" },
	{ "169.254.0.0", 16, "link-local" },
	{ "172.16.0.0", 12, "private network" },
	{ "192.0.0.0", 24, "IETF protocol assignments" },
	{ "192.0.2.0", 24, "documentation" },
	{ "192.168.0.0", 16, "private network" },
	{ "198.18.0.0", 15, "benchmarking" },
	{ "198.51.100.0", 24, "documentation" },
	{ "203.0.113.0", 24, "documentation" },
	{ "224.0.0.0", 4, "multicast" },
	{ "240.0.0.0", 4, "reserved" },
	{ "::", 128, "unspecified" },
	{ "::1", 128, "loopback" },
	{ "64:ff9b:1::", 48, "local NAT64" },
	{ "100::", 64, "discard" },
	{ "2001::", 23, "IETF protocol assignments" },
	{ "2001:db8::", 32, "documentation" },
	{ "fc00::", 7, "unique local" },
	{ "fe80::", 10, "link-local" },
	{ "fec0::", 10, "site-local" },
	{ "ff00::", 8, "multicast" },
};

/* IPv6 forms that carry an IPv4 address, and where it sits. */
static const struct {
	const char *net;
	int bits;
	int at;
	const char *what;
} embedding_nets[] = {
	{ "::ffff:0:0", 96, 12, "IPv4-mapped" },
	{ "::", 96, 12, "IPv4-compatible" },
	{ "64:ff9b::", 96, 12, "NAT64" },
	{ "2002::", 16, 2, "6to4" },
};

/* Why an address may not be connected to, or NULL. */
static const char *blocked_why(const struct ipaddr *ip, char *buf, size_t size)
{
	struct ipaddr net, v4;
	size_t i;
	const char *why;

	for (i = 0; i < ARRAY_SIZE(blocked_nets); i++) {
		if (ip_parse(blocked_nets[i].net, &net))
			continue;
		if (prefix_match(ip, &net, blocked_nets[i].bits))
			return blocked_nets[i].what;
	}
	for (i = 0; ip->v6 && i < ARRAY_SIZE(embedding_nets); i++) {
		if (ip_parse(embedding_nets[i].net, &net) ||
		    !prefix_match(ip, &net, embedding_nets[i].bits))
			continue;
		memset(&v4, 0, sizeof(v4));
		memcpy(v4.a, ip->a + embedding_nets[i].at, 4);
		why = blocked_why(&v4, buf, size);
		if (!why)
			return NULL;
		snprintf(buf, size, "%s %s", embedding_nets[i].what, why);
		return buf;
	}
	return NULL;
}

/* An IPv4-mapped IPv6 address is the IPv4 address, for the allow-list. */
static void ip_unmap(struct ipaddr *ip)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0,    0,
						  0, 0, 0, 0, 0xff, 0xff };

	if (ip->v6 && !memcmp(ip->a, mapped, 12)) {
		memmove(ip->a, ip->a + 12, 4);
		memset(ip->a + 4, 0, 12);
		ip->v6 = 0;
	}
}

/* Does one allow-list entry match the host name or the address? */
static int allow_entry(const char *ent, const char *host,
		       const struct ipaddr *ip)
{
	char addr[64];
	const char *slash = strchr(ent, '/');
	struct ipaddr net;
	int64_t bits;
	size_t n, hn;

	if (slash) {
		n = (size_t)(slash - ent);
		if (n >= sizeof(addr) || sfs_parse_i64(slash + 1, &bits))
			return 0;
		memcpy(addr, ent, n);
		addr[n] = '\0';
		if (ip_parse(addr, &net) || bits < 0 ||
		    bits > (net.v6 ? 128 : 32))
			return 0;
		return prefix_match(ip, &net, (int)bits);
	}
	if (!ip_parse(ent, &net))
		return prefix_match(ip, &net, net.v6 ? 128 : 32);
	if (!strcasecmp(ent, host))
		return 1;
	/* ".example.com" and "*.example.com" open the subdomains */
	if (ent[0] == '*')
		ent++;
	n = strlen(ent);
	hn = strlen(host);
	return ent[0] == '.' && hn > n && !strcasecmp(host + hn - n, ent);
}

static int allowed(const char *list, const char *host, const struct ipaddr *ip)
{
	char ent[256];
	const char *p = list, *end;
	size_t n;

	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		end = p;
		while (*end && *end != ',' && *end != ' ' && *end != '\t')
			end++;
		n = (size_t)(end - p);
		if (n && n < sizeof(ent)) {
			memcpy(ent, p, n);
			ent[n] = '\0';
			if (allow_entry(ent, host, ip))
				return 1;
		}
		p = end;
	}
	return 0;
}

/* Host name of a URL without brackets or a trailing dot ("" if none). */
static void url_host(const char *url, char *out, size_t size)
{
	CURLU *u = curl_url();
	char *h = NULL;
	size_t n;

	out[0] = '\0';
	if (u && url && !curl_url_set(u, CURLUPART_URL, url, 0) &&
	    !curl_url_get(u, CURLUPART_HOST, &h, 0) && h) {
		if (h[0] == '[') {
			sfs_strlcpy(out, h + 1, size);
			n = strlen(out);
			if (n && out[n - 1] == ']')
				out[n - 1] = '\0';
		} else {
			sfs_strlcpy(out, h, size);
		}
		n = strlen(out);
		if (n && out[n - 1] == '.')
			out[n - 1] = '\0';
	}
	curl_free(h);
	curl_url_cleanup(u);
}

/* The host of the hop being transferred (redirects update it). */
static void hop_host(struct fetch *f, char *out, size_t size)
{
	char *url = NULL;

	if (curl_easy_getinfo(f->curl, CURLINFO_EFFECTIVE_URL, &url))
		url = NULL;
	url_host(url, out, size);
}

/*
 * Called for every connection curl opens, with the address it resolved:
 * the check happens on what is actually connected to, so DNS answers that
 * change between a check and the connect cannot slip past it.
 */
static curl_socket_t on_opensocket(void *p, curlsocktype purpose,
				   struct curl_sockaddr *sa)
{
	struct fetch *f = p;
	struct ipaddr ip;
	char host[256], text[INET6_ADDRSTRLEN], buf[96];
	const char *why;

	memset(&ip, 0, sizeof(ip));
	if (purpose != CURLSOCKTYPE_IPCXN ||
	    (sa->family != AF_INET && sa->family != AF_INET6)) {
		snprintf(f->blocked, sizeof(f->blocked),
			 "blocked address of family %d", sa->family);
		return CURL_SOCKET_BAD;
	}
	if (sa->family == AF_INET) {
		memcpy(ip.a, &((struct sockaddr_in *)&sa->addr)->sin_addr, 4);
	} else {
		ip.v6 = 1;
		memcpy(ip.a, &((struct sockaddr_in6 *)&sa->addr)->sin6_addr,
		       16);
	}
	ip_text(&ip, text, sizeof(text));
	hop_host(f, host, sizeof(host));
	ip_unmap(&ip);
	if (!allowed(f->cfg->import_allow, host, &ip) &&
	    (why = blocked_why(&ip, buf, sizeof(buf)))) {
		snprintf(f->blocked, sizeof(f->blocked),
			 "blocked address %s (%s)", text, why);
		sfs_warn("fetch", "refused to connect to %s for '%s': %s", text,
			 host, why);
		return CURL_SOCKET_BAD;
	}
	f->blocked[0] = '\0'; /* an earlier refusal is not the story now */
	return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
}

/* ---- the transfer's callbacks ---- */

static size_t on_header(char *buf, size_t size, size_t nitems, void *p)
{
	struct fetch *f = p;
	size_t len = size * nitems, i;
	char line[256];
	int64_t v;

	if (len >= sizeof(line))
		len = sizeof(line) - 1; /* long lines: their start will do */
	memcpy(line, buf, len);
	line[len] = '\0';
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		line[--len] = '\0';
	if (!strncmp(line, "HTTP/", 5)) {
		const char *sp = strchr(line, ' ');

		f->code = sp ? strtol(sp + 1, NULL, 10) : 0;
		f->reason[0] = '\0';
		f->content_length = -1;
		f->chunked = 0;
		if (sp && strlen(sp) > 5)
			sfs_strlcpy(f->reason, sp + 5, sizeof(f->reason));
	} else if (!strncasecmp(line, "content-length:", 15)) {
		for (i = 15; line[i] == ' ' || line[i] == '\t'; i++)
			;
		if (!sfs_parse_i64(line + i, &v) && v >= 0 && !f->chunked)
			f->content_length = v;
	} else if (!strncasecmp(line, "transfer-encoding:", 18) &&
		   strcasestr(line, "chunked")) {
		f->chunked = 1;
		f->content_length = -1;
	} else if (!len && f->code >= 200 && f->code < 300 &&
		   f->content_length > f->limit) {
		/* the end of the headers: refuse a declared size at once */
		f->too_large = 1;
		return 0;
	}
	return size * nitems;
}

static size_t on_body(char *buf, size_t size, size_t nitems, void *p)
{
	struct fetch *f = p;
	size_t len = size * nitems, room;

	if (f->code < 200 || f->code >= 300) {
		f->http_failed = 1;
		if (!f->s3)
			return 0;
		room = f->errbody.max - f->errbody.len;
		if (sfs_buf_add(&f->errbody, buf, len < room ? len : room))
			return 0;
		return len;
	}
	if ((int64_t)len > f->limit - f->got) {
		f->too_large = 1;
		return 0;
	}
	f->stage_st = sfs_stage_write(f->stage, buf, len, f->e);
	if (f->stage_st)
		return 0;
	f->got += (int64_t)len;
	return len;
}

static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct fetch *f = p;
	int64_t now;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (!f->progress)
		return 0;
	now = sfs_mono_ns();
	if (now < f->next_progress_ns)
		return 0;
	f->next_progress_ns = now + 1000000000;
	if (f->progress(f->arg)) {
		f->cancelled = 1;
		return 1;
	}
	return 0;
}

/* ---- S3 ---- */

static enum sfs_status add_header(struct curl_slist **list, const char *h)
{
	struct curl_slist *n = curl_slist_append(*list, h);

	if (!n)
		return SFS_NOMEM;
	*list = n;
	return SFS_OK;
}

/*
 * The URL and headers of a GET of s3://bucket/key from the endpoint;
 * libcurl signs it (setup) when there are credentials.
 */
static enum sfs_status s3_request(const struct sfs_config *cfg, const char *uri,
				  char **url, struct curl_slist **hdrs,
				  struct sfs_err *e)
{
	struct sfs_buf u = SFS_BUF_INIT(16384);
	struct sfs_err tmp;
	char bucket[64];
	const char *key;
	enum sfs_status ret;

	if (s3_split(uri, bucket, &key))
		return sfs_err_field(e, "uri", "invalid",
				     "expected s3://bucket/key");
	sfs_err_init(&tmp);
	ret = sfsi_s3_object_url(cfg->s3_endpoint, cfg->s3_region,
				 cfg->s3_path_style, bucket, key, &u, &tmp);
	if (ret) {
		ret = sfs_errf(e, ret == SFS_INVALID ? SFS_UNSUPPORTED : ret,
			       SFS_R_IMPORT_FAILED, "%s", tmp.message);
		goto out;
	}
	/* curl 7.88 signs a payload hash but does not send it */
	if (cfg->s3_access_key[0] &&
	    add_header(hdrs, "x-amz-content-sha256: " EMPTY_SHA256)) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	*url = sfs_buf_detach(&u, NULL);
	if (!*url)
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
out:
	sfs_buf_release(&u);
	return ret;
}

/* ---- the outcome ---- */

/* Reason phrases for responses without one (HTTP/2). */
static const struct {
	long code;
	const char *reason;
} reasons[] = {
	{ 301, "Moved Permanently" }, { 302, "Found" },
	{ 304, "Not Modified" },      { 400, "Bad Request" },
	{ 401, "Unauthorized" },      { 403, "Forbidden" },
	{ 404, "Not Found" },	      { 410, "Gone" },
	{ 429, "Too Many Requests" }, { 500, "Internal Server Error" },
	{ 502, "Bad Gateway" },	      { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
};

/* <Code>...</Code> of an S3 error body, into out ("" if none). */
static void s3_error_code(const char *xml, char *out, size_t size)
{
	const char *a = strstr(xml, "<Code>"), *b;
	size_t n;

	out[0] = '\0';
	if (!a)
		return;
	a += 6;
	b = strstr(a, "</Code>");
	if (!b)
		return;
	n = (size_t)(b - a);
	if (n >= size)
		n = size - 1;
	memcpy(out, a, n);
	out[n] = '\0';
}

static enum sfs_status http_error(struct fetch *f, struct sfs_err *e)
{
	const char *reason = f->reason;
	char code[64];
	size_t i;

	for (i = 0; !reason[0] && i < ARRAY_SIZE(reasons); i++)
		if (reasons[i].code == f->code)
			reason = reasons[i].reason;
	s3_error_code(f->errbody.buf, code, sizeof(code));
	return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED, "HTTP %ld%s%s%s%s%s",
			f->code, reason[0] ? " " : "", reason,
			code[0] ? " (" : "", code, code[0] ? ")" : "");
}

static enum sfs_status timed_out(struct fetch *f, const char *errbuf,
				 const char *host, struct sfs_err *e)
{
	if (!strncmp(errbuf, "Resolving", 9))
		return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
				"could not resolve host '%s' (timed out)",
				host);
	if (!strncmp(errbuf, "Connection", 10) ||
	    !strncmp(errbuf, "Failed to connect", 17))
		return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
				"connection timed out ('%s')", host);
	if (!strncmp(errbuf, "Operation too slow", 18))
		return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
				"transfer stalled: no data from '%s' for a "
				"while",
				host);
	return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
			"timed out after %d s (got %lld bytes)",
			f->cfg->import_timeout_s, (long long)f->got);
}

static enum sfs_status cut_short(struct fetch *f, struct sfs_err *e)
{
	if (f->content_length >= 0)
		return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
				"transfer cut short: got %lld of %lld bytes",
				(long long)f->got,
				(long long)f->content_length);
	return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
			"transfer cut short after %lld bytes",
			(long long)f->got);
}

/* Turn what curl and the callbacks saw into a status and a message. */
static enum sfs_status outcome(struct fetch *f, CURLcode rc, const char *errbuf,
			       struct sfs_err *e)
{
	char host[256];

	if (f->stage_st)
		return f->stage_st;
	if (f->cancelled)
		return sfs_errf(e, SFS_CONFLICT, SFS_R_CANCELLED, "cancelled");
	if (f->too_large || rc == CURLE_FILESIZE_EXCEEDED)
		return sfs_errf(e, SFS_TOO_LARGE, SFS_R_NONE,
				"too large: more than %lld bytes",
				(long long)f->limit);
	if (f->http_failed ||
	    (rc == CURLE_OK && (f->code < 200 || f->code >= 300)))
		return http_error(f, e);
	hop_host(f, host, sizeof(host));
	switch (rc) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
				"could not resolve host '%s'", host);
	case CURLE_COULDNT_CONNECT:
		if (f->blocked[0])
			return sfs_errf(e, SFS_FORBIDDEN, SFS_R_IMPORT_BLOCKED,
					"%s", f->blocked);
		return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
				"could not connect to '%s'", host);
	case CURLE_OPERATION_TIMEDOUT:
		return timed_out(f, errbuf, host, e);
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return cut_short(f, e);
	case CURLE_TOO_MANY_REDIRECTS:
		return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
				"too many redirects (more than %d)",
				f->cfg->import_max_redirects);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
				"redirected to an unsupported scheme (only "
				"http and https)");
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED,
				"TLS failure with '%s': %s", host, errbuf);
	default:
		return sfs_errf(e, SFS_IO, SFS_R_IMPORT_FAILED, "%s",
				errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	/* curl is content when a body ends early on a closed connection */
	if (f->content_length >= 0 && f->got != f->content_length)
		return cut_short(f, e);
	return SFS_OK;
}

static enum sfs_status setup(struct fetch *f, const char *url,
			     struct curl_slist *hdrs, char *errbuf,
			     struct sfs_err *e)
{
	const struct sfs_config *c = f->cfg;
	CURL *h = f->curl;
	long low = c->import_timeout_s > 0 && c->import_timeout_s < 60
			   ? c->import_timeout_s
			   : 60;

	if (curl_easy_setopt(h, CURLOPT_URL, url) ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") ||
	    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, f->s3 ? 0L : 1L) ||
	    curl_easy_setopt(h, CURLOPT_MAXREDIRS,
			     (long)c->import_max_redirects) ||
	    curl_easy_setopt(h, CURLOPT_PROXY, "") ||
	    curl_easy_setopt(h, CURLOPT_NOPROXY, "*") ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
			     (long)c->import_connect_timeout_s) ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->import_timeout_s) ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, low) ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) ||
	    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_opensocket) ||
	    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, f) ||
	    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) ||
	    curl_easy_setopt(h, CURLOPT_HEADERDATA, f) ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, f) ||
	    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress) ||
	    curl_easy_setopt(h, CURLOPT_XFERINFODATA, f) ||
	    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT, "speechfs/" SFS_VERSION) ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) ||
	    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, f->s3 ? 1L : 0L) ||
	    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
			     (curl_off_t)f->limit))
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"libcurl refused an option");
	if (f->s3 && c->s3_access_key[0]) {
		char sigv4[96];

		snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", c->s3_region);
		if (curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4) ||
		    curl_easy_setopt(h, CURLOPT_USERNAME, c->s3_access_key) ||
		    curl_easy_setopt(h, CURLOPT_PASSWORD, c->s3_secret_key))
			return sfs_errf(e, SFS_IO, SFS_R_NONE,
					"libcurl refused an option");
	}
	return SFS_OK;
}

enum sfs_status sfs_fetch(const struct sfs_config *cfg, const char *uri,
			  struct sfs_stage *out, int64_t max_bytes,
			  int (*progress)(void *arg), void *arg,
			  struct sfs_err *e)
{
	struct sfs_config defaults;
	struct fetch f;
	struct curl_slist *hdrs = NULL;
	char *url = NULL, errbuf[CURL_ERROR_SIZE];
	enum sfs_status ret;
	CURLcode rc;

	memset(&f, 0, sizeof(f));
	sfs_buf_init(&f.errbody, ERRBODY_MAX);
	ret = sfs_fetch_check_uri(uri, e);
	if (ret)
		goto out;
	if (!cfg) {
		sfs_config_init(&defaults);
		cfg = &defaults;
	}
	if (sfsi_curl_global_init()) {
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "cannot initialise libcurl");
		goto out;
	}
	f.cfg = cfg;
	f.stage = out;
	f.e = e;
	f.limit = cfg->import_max_bytes;
	if (max_bytes > 0 && max_bytes < f.limit)
		f.limit = max_bytes;
	f.content_length = -1;
	f.progress = progress;
	f.arg = arg;
	f.next_progress_ns = sfs_mono_ns() + 1000000000;
	f.s3 = !strncasecmp(uri, "s3:", 3);
	errbuf[0] = '\0';
	f.curl = curl_easy_init();
	if (!f.curl) {
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
		goto out;
	}
	if (f.s3)
		ret = s3_request(cfg, uri, &url, &hdrs, e);
	else if (!(url = strdup(uri)))
		ret = sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (ret)
		goto out;
	ret = setup(&f, url, hdrs, errbuf, e);
	if (ret)
		goto out;
	rc = curl_easy_perform(f.curl);
	ret = outcome(&f, rc, errbuf, e);
	if (ret)
		sfs_debug("fetch", "%s import failed after %lld bytes: %s",
			  f.s3 ? "s3" : "http", (long long)f.got,
			  e ? e->message : sfs_status_str(ret));
out:
	if (f.curl)
		curl_easy_cleanup(f.curl);
	curl_slist_free_all(hdrs);
	free(url);
	sfs_buf_release(&f.errbody);
	return ret;
}
