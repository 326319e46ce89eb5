/*
 * The daemon's configuration: its keys and their defaults, the file read
 * together with the core's keys (sfs_config_read), the --listen address
 * forms, and the reload on SIGHUP, which applies the keys that can change
 * at run time and logs every change.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "httpd.h"
#include "speechfs/config.h"
#include "speechfs/log.h"
#include "speechfs/banned.h"

static void opts_init(struct httpd_opts *o)
{
	o->max_upload_bytes = (int64_t)2 << 30;
	o->max_json_bytes = 1 << 20;
	o->default_download_bps = 0;
	o->rate_rps = 50;
	o->rate_burst = 100;
	o->upload_rps = 5;
	o->upload_burst = 20;
	o->threads = 4;
	o->conn_timeout_s = 30;
	o->conn_limit = 512;
	o->per_ip_limit = 64;
	o->shutdown_timeout_s = 10;
	o->max_url_len = 8192;
	o->max_header_bytes = 16384;
	o->auth_fail_rps = 1;
	o->auth_fail_burst = 30;
	o->head_timeout_s = 10;
	o->redirect_to_object_store = 0;
	o->extensions = 1;
	o->redirect_ttl_s = 300;
	o->min_body_rate = 1024;
	o->response_cache = -1; /* 1024, or 0 on a shared store (main.c) */
	o->changes_max_waiters = 256;
}

void httpd_config_init(struct httpd_config *c)
{
	memset(c, 0, sizeof(*c));
	opts_init(&c->opts);
	sfs_config_init(&c->core);
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8080");
	c->log_level = SFS_LOG_INFO;
	c->workers = 1;
}

/*
 * The daemon's configuration keys (defaults in opts_init):
 *   http.max_upload_bytes        largest `file` part (413 beyond)
 *   http.max_json_bytes          largest JSON body (413 beyond)
 *   http.download_bps            bandwidth of users created with -1
 *                                (0: unlimited)
 *   http.rate_per_second, http.rate_burst
 *                                every authenticated request, per user
 *   http.upload_rate_per_second, http.upload_rate_burst
 *                                uploads and imports, per user (429)
 *   http.threads                 libmicrohttpd thread pool size
 *   http.connection_timeout      seconds an idle connection is kept
 *   http.connection_limit, http.per_ip_connection_limit
 *   http.shutdown_timeout        seconds in-flight requests get at exit
 *   http.max_url_length, http.max_header_bytes   (414, 431 beyond)
 *   http.cors_origins            origins (or *) browsers may call from
 *   http.extensions              false: only the routes of the seed API
 *                                contract answer (no extensions)
 *   http.redirect_to_object_store  content kept in an object store is
 *                                a 302 to a presigned URL (false)
 *   http.redirect_ttl             that URL's lifetime in seconds (300)
 *   http.response_cache          answers of GET /files and /files/{id}
 *                                kept until the store changes (0: off;
 *                                default 1024, 0 on PostgreSQL)
 *   http.request_head_timeout    seconds a request head may take (from
 *                                its first byte; a new connection's
 *                                from the accept)
 *   http.min_body_rate           bytes per second a body must average
 *                                after its first request_head_timeout
 *   http.changes_max_waiters     long polls of the change feed waiting
 *                                at once, and apart those of upload
 *                                sessions (503 beyond)
 *   http.auth_failures_per_second, http.auth_failures_burst
 *                                failed authentications per client
 *                                address (429 beyond)
 * RUN marks the keys a reload (SIGHUP) applies; the others, like the
 * core's keys, store, listen and jobs.enabled, take effect at a restart.
 */
enum otype { O_I64, O_INT, O_DBL, O_SIZE, O_BOOL, O_STR };

static const struct {
	const char *key;
	enum otype type;
	size_t off;
	int runtime;
} opt_keys[] = {
#define K(k, t, f, run)                                                        \
	{                                                                      \
		k, t, offsetof(struct httpd_opts, f), run                      \
	}
#define RUN 1
	K("http.max_upload_bytes", O_I64, max_upload_bytes, RUN),
	K("http.max_json_bytes", O_I64, max_json_bytes, RUN),
	K("http.download_bps", O_I64, default_download_bps, RUN),
	K("http.rate_per_second", O_DBL, rate_rps, RUN),
	K("http.rate_burst", O_DBL, rate_burst, RUN),
	K("http.upload_rate_per_second", O_DBL, upload_rps, RUN),
	K("http.upload_rate_burst", O_DBL, upload_burst, RUN),
	K("http.threads", O_INT, threads, 0),
	K("http.connection_timeout", O_INT, conn_timeout_s, 0),
	K("http.connection_limit", O_INT, conn_limit, 0),
	K("http.per_ip_connection_limit", O_INT, per_ip_limit, 0),
	K("http.shutdown_timeout", O_INT, shutdown_timeout_s, 0),
	K("http.max_url_length", O_SIZE, max_url_len, 0),
	K("http.max_header_bytes", O_SIZE, max_header_bytes, 0),
	K("http.request_head_timeout", O_INT, head_timeout_s, 0),
	K("http.min_body_rate", O_I64, min_body_rate, 0),
	K("http.auth_failures_per_second", O_DBL, auth_fail_rps, 0),
	K("http.auth_failures_burst", O_DBL, auth_fail_burst, 0),
	K("http.cors_origins", O_STR, cors_origins, 0),
	K("http.redirect_to_object_store", O_BOOL, redirect_to_object_store, 0),
	K("http.extensions", O_BOOL, extensions, 0),
	K("http.redirect_ttl", O_INT, redirect_ttl_s, 0),
	K("http.response_cache", O_INT, response_cache, 0),
	K("http.changes_max_waiters", O_INT, changes_max_waiters, 0),
#undef RUN
#undef K
};

/* 0 set, 1 not an http.* key, -1 bad value (why in msg). */
static int opt_set(struct httpd_opts *o, const char *key, const char *val,
		   char *msg, size_t msgsz)
{
	char *p = (char *)o, *end;
	int64_t v;
	double d;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(opt_keys); i++) {
		if (strcmp(opt_keys[i].key, key) != 0)
			continue;
		if (opt_keys[i].type == O_BOOL) {
			if (sfs_parse_bool(val, (int *)(p + opt_keys[i].off))) {
				snprintf(msg, msgsz, "expected true or false");
				return -1;
			}
			return 0;
		}
		if (opt_keys[i].type == O_STR) {
			if (strlen(val) >= sizeof(o->cors_origins)) {
				snprintf(msg, msgsz, "too long");
				return -1;
			}
			memcpy(p + opt_keys[i].off, val, strlen(val) + 1);
			return 0;
		}
		if (opt_keys[i].type == O_DBL) {
			errno = 0;
			d = strtod(val, &end);
			if (errno || end == val || *end || d < 0 || d > 1e9) {
				snprintf(msg, msgsz, "expected a number >= 0");
				return -1;
			}
			*(double *)(p + opt_keys[i].off) = d;
			return 0;
		}
		if (sfs_parse_i64(val, &v) || v < 0 ||
		    (opt_keys[i].type == O_INT && v > 1000000000)) {
			snprintf(msg, msgsz, "expected a whole number >= 0");
			return -1;
		}
		if (opt_keys[i].type == O_I64)
			*(int64_t *)(p + opt_keys[i].off) = v;
		else if (opt_keys[i].type == O_INT)
			*(int *)(p + opt_keys[i].off) = (int)v;
		else
			*(size_t *)(p + opt_keys[i].off) = (size_t)v;
		return 0;
	}
	return 1;
}

static int copy_value(char *dst, size_t size, const char *v, char *msg,
		      size_t msgsz)
{
	if (!*v || strlen(v) >= size) {
		snprintf(msg, msgsz, "%s", *v ? "too long" : "empty");
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* Remember what the file said, for a reload's list of changes. */
static void note(struct httpd_config *c, const char *key, const char *value)
{
	struct httpd_kv *kv;

	if (c->nseen >= (int)ARRAY_SIZE(c->seen))
		return;
	kv = &c->seen[c->nseen++];
	snprintf(kv->key, sizeof(kv->key), "%s", key);
	snprintf(kv->value, sizeof(kv->value), "%s", value);
}

static int own_key(void *arg, const char *key, const char *value, int core_key,
		   char *msg, size_t msgsz)
{
	struct httpd_config *c = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	int r, v6;

	note(c, key, value);
	if (core_key)
		return 0;
	if (strcmp(key, "store") == 0)
		return copy_value(c->store, sizeof(c->store), value, msg,
				  msgsz);
	if (strcmp(key, "listen") == 0) {
		if (httpd_listen_parse(value, &ss, &len, &v6, msg, msgsz))
			return -1;
		return copy_value(c->listen, sizeof(c->listen), value, msg,
				  msgsz);
	}
	if (strcmp(key, "log.level") == 0) {
		r = sfs_log_level_parse(value);
		if (r < 0)
			snprintf(msg, msgsz,
				 "expected error, warn, info or debug");
		else
			c->log_level = r;
		return r < 0 ? -1 : 0;
	}
	if (strcmp(key, "jobs.enabled") == 0) {
		if (!strcmp(value, "true") || !strcmp(value, "1"))
			c->workers = 1;
		else if (!strcmp(value, "false") || !strcmp(value, "0"))
			c->workers = 0;
		else
			snprintf(msg, msgsz, "expected true or false");
		return msg[0] ? -1 : 0;
	}
	return opt_set(&c->opts, key, value, msg, msgsz);
}

int httpd_config_load(struct httpd_config *c, const char *path,
		      struct sfs_err *e)
{
	return sfs_config_read(path, &c->core, own_key, c, e) ? -1 : 0;
}

int httpd_config_load_core(const char *path, struct sfs_config *core)
{
	struct httpd_config *hc = calloc(1, sizeof(*hc));
	struct sfs_err e;
	int rc = -1;

	if (!hc) {
		fputs("speechfsd: out of memory\n", stderr);
		return -1;
	}
	httpd_config_init(hc);
	sfs_err_init(&e);
	if (httpd_config_load(hc, path, &e))
		fprintf(stderr, "speechfsd: %s\n", e.message);
	else {
		*core = hc->core;
		rc = 0;
	}
	free(hc);
	return rc;
}

/* ---- listen addresses --------------------------------------------------- */

static int bad_listen(const char *s, const char *why, char *msg, size_t msgsz)
{
	snprintf(msg, msgsz,
		 "%s%s'%s': give PORT (on 127.0.0.1), HOST:PORT (HOST an "
		 "IPv4 address or localhost) or [IPV6]:PORT",
		 why, *why ? " in " : "", s);
	return -1;
}

int httpd_listen_parse(const char *s, struct sockaddr_storage *ss,
		       socklen_t *len, int *v6, char *msg, size_t msgsz)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	const char *port = s, *colon;
	char host[INET6_ADDRSTRLEN + 1] = "";
	int64_t p;

	memset(ss, 0, sizeof(*ss));
	*v6 = 0;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':' ||
		    (size_t)(close - s - 1) >= sizeof(host))
			return bad_listen(s, "", msg, msgsz);
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		port = close + 2;
		*v6 = 1;
	} else if ((colon = strrchr(s, ':'))) {
		if (strchr(s, ':') != colon)
			return bad_listen(s, "an IPv6 address needs []", msg,
					  msgsz);
		if ((size_t)(colon - s) >= sizeof(host))
			return bad_listen(s, "", msg, msgsz);
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		port = colon + 1;
	}
	if (sfs_parse_i64(port, &p) || *port == '-' || p < 1 || p > 65535)
		return bad_listen(s, "a port is 1-65535", msg, msgsz);
	if (*v6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return bad_listen(s, "not an IPv6 address", msg, msgsz);
		*len = sizeof(*sin6);
		return 0;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)p);
	if (!*host || strcasecmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return bad_listen(s, "not an IPv4 address", msg, msgsz);
	*len = sizeof(*sin);
	return 0;
}

/* ---- reload ---------------------------------------------------------------
 */

static const char *seen_value(const struct httpd_config *c, const char *key)
{
	int i;

	for (i = 0; i < c->nseen; i++)
		if (strcmp(c->seen[i].key, key) == 0)
			return c->seen[i].value;
	return NULL;
}

static int is_runtime(const char *key)
{
	size_t i;

	if (strcmp(key, "log.level") == 0)
		return 1;
	for (i = 0; i < ARRAY_SIZE(opt_keys); i++)
		if (strcmp(opt_keys[i].key, key) == 0)
			return opt_keys[i].runtime;
	return 0;
}

static int is_secret(const char *key)
{
	return strstr(key, "secret") != NULL;
}

/* Log one key whose text changed between old and new (NULL: default). */
static void log_change(const char *key, const char *was, const char *now,
		       const char *not_now)
{
	const char *a = was ? was : "(default)", *b = now ? now : "(default)";

	if (is_secret(key))
		a = b = "(hidden)";
	if (not_now)
		sfs_warn("config", "reload: '%s' changed ('%s' -> '%s'): %s",
			 key, a, b, not_now);
	else
		sfs_info("config", "reload: '%s' is now '%s' (was '%s')", key,
			 b, a);
}

/* Why a changed key is not applied now, or NULL. */
static const char *not_now(const char *key, int level_fixed)
{
	if (!is_runtime(key))
		return "takes effect at the next start";
	if (level_fixed && strcmp(key, "log.level") == 0)
		return "--log-level on the command line stays";
	return NULL;
}

/* Apply the run-time keys of n to the running daemon. */
static void apply(const struct httpd_config *n, int level_fixed)
{
	const struct httpd_opts *o = &n->opts;

	__atomic_store_n(&g_httpd.opts.max_upload_bytes, o->max_upload_bytes,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&g_httpd.opts.max_json_bytes, o->max_json_bytes,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&g_httpd.opts.default_download_bps,
			 o->default_download_bps, __ATOMIC_RELAXED);
	limits_set_rates(o->rate_rps, o->rate_burst, o->upload_rps,
			 o->upload_burst);
	if (!level_fixed)
		sfs_log_set_level((enum sfs_log_level)n->log_level);
}

int httpd_config_reload(struct httpd_config *cur, const char *path,
			int level_fixed)
{
	struct httpd_config *n = malloc(sizeof(*n));
	struct sfs_err e;
	const char *was, *now;
	int i, changes = 0, ret = -1;

	sfs_err_init(&e);
	if (!n) {
		sfs_error("config", "reload: out of memory");
		return -1;
	}
	httpd_config_init(n);
	if (httpd_config_load(n, path, &e)) {
		sfs_error("config", "reload refused, nothing changed: %s",
			  e.message);
		goto out;
	}
	/* keys that changed or appeared, then keys that went */
	for (i = 0; i < n->nseen; i++) {
		was = seen_value(cur, n->seen[i].key);
		now = n->seen[i].value;
		if (was && strcmp(was, now) == 0)
			continue;
		changes++;
		log_change(n->seen[i].key, was, now,
			   not_now(n->seen[i].key, level_fixed));
	}
	for (i = 0; i < cur->nseen; i++) {
		if (seen_value(n, cur->seen[i].key))
			continue;
		changes++;
		log_change(cur->seen[i].key, cur->seen[i].value, NULL,
			   not_now(cur->seen[i].key, level_fixed));
	}
	sfs_info("config", "reloaded '%s': %d change%s", path, changes,
		 changes == 1 ? "" : "s");
	apply(n, level_fixed);
	ret = changes;
	/* the fixed keys keep their values; the file's text is the new base */
	memcpy(cur->seen, n->seen, sizeof(cur->seen));
	cur->nseen = n->nseen;
	cur->opts.max_upload_bytes = n->opts.max_upload_bytes;
	cur->opts.max_json_bytes = n->opts.max_json_bytes;
	cur->opts.default_download_bps = n->opts.default_download_bps;
	cur->opts.rate_rps = n->opts.rate_rps;
	cur->opts.rate_burst = n->opts.rate_burst;
	cur->opts.upload_rps = n->opts.upload_rps;
	cur->opts.upload_burst = n->opts.upload_burst;
out:
	free(n);
	return ret;
}
