/*
 * Tests of the remote store's first pieces (core/remote.c) against a real
 * speechfsd (the build's, beside this binary) on 127.0.0.1 serving a
 * fresh store: the server's features are read from its OpenAPI document;
 * error bodies come back as the core's own statuses and reasons; a file's
 * JSON decodes to what the core holds; a new content version goes up
 * streamed from a file, on its If-Match condition; the change feed gives
 * a cursor and then, waiting, the change a commit of another process
 * made; a daemon that is gone is SFS_UNAVAILABLE, not a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "fixture.h"
#include "remote_i.h"
#include "speechfs/auth.h"
#include "speechfs/blob.h"
#include "speechfs/buf.h"
#include "speechfs/dir.h"
#include "speechfs/file.h"
#include "speechfs/log.h"
#include "speechfs/query.h"
#include "speechfs/remote.h"
#include "speechfs/store.h"
#include "speechfs/util.h"
#include "speechfs/xattr.h"
#include "testhelp.h"

struct fx {
	char *dir;
	struct sfs_store *s;
	char t1[SFS_ID_SIZE], t2[SFS_ID_SIZE];
	char ua[SFS_ID_SIZE], ux[SFS_ID_SIZE];
	struct sfs_actor a, x;
	char key_a[SFS_API_KEY_SIZE], key_x[SFS_API_KEY_SIZE];
	char url[64];
	const char *conf; /* settings of the daemon's config file, or NULL */
	pid_t pid;
};

/*
 * A file system that takes an O_DIRECT open but refuses its writes
 * (EINVAL: some FUSE and overlay setups, ZFS versions), while set: this
 * process's write(2) on an O_DIRECT file fails so.
 */
static int refuse_direct_writes;

ssize_t write(int fd, const void *buf, size_t n)
{
	int fl;

	if (__atomic_load_n(&refuse_direct_writes, __ATOMIC_SEQ_CST) &&
	    (fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_DIRECT)) {
		errno = EINVAL;
		return -1;
	}
	return syscall(SYS_write, fd, buf, n);
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* The daemon of this build: ../speechfsd from this binary's directory. */
static int daemon_path(char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return -1;
	self[n] = '\0';
	snprintf(out, size, "%s/../speechfsd", dirname(self));
	return access(out, X_OK);
}

static int start_daemon(struct fx *f)
{
	char bin[PATH_MAX], listen[32], log[PATH_MAX], conf[PATH_MAX];
	struct sfs_remote *r = NULL;
	int port = free_port(), fd, i;
	FILE *c;

	if (port < 0 || daemon_path(bin, sizeof(bin)))
		return -1;
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(f->url, sizeof(f->url), "http://%s", listen);
	snprintf(log, sizeof(log), "%s/daemon.log", f->dir);
	snprintf(conf, sizeof(conf), "%s/speechfsd.conf", f->dir);
	c = fopen(conf, "w");
	if (!c)
		return -1;
	fprintf(c, "store = %s\nlisten = %s\n%s", f->dir, listen,
		f->conf ? f->conf : "");
	if (fclose(c))
		return -1;
	f->pid = fork();
	if (f->pid < 0)
		return -1;
	if (f->pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(bin, bin, "--config", conf, (char *)NULL);
		_exit(127);
	}
	/* up when it answers: at most 15 s */
	for (i = 0; i < 300; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		if (sfs_remote_open(f->url, f->key_a, 2, &r, NULL) == SFS_OK) {
			sfs_remote_close(r);
			return 0;
		}
		if (waitpid(f->pid, NULL, WNOHANG) == f->pid) {
			f->pid = 0;
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* SIGTERM and its exit status (0 expected), -1 if it would not stop. */
static int stop_daemon(struct fx *f)
{
	int status = 0, i;

	if (f->pid <= 0)
		return 0;
	kill(f->pid, SIGTERM);
	for (i = 0; i < 400; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			f->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		nanosleep(&ts, NULL);
	}
	kill(f->pid, SIGKILL);
	waitpid(f->pid, NULL, 0);
	f->pid = 0;
	return -1;
}

/* A store and a daemon of it with these settings (conf: NULL, none). */
static int fx_open_conf(struct fx *f, const char *conf)
{
	char kid[SFS_ID_SIZE];

	memset(f, 0, sizeof(*f));
	f->conf = conf;
	if (tfx_store(&f->dir, &f->s, NULL))
		return -1;
	if (tfx_tenant(f->s, "one", 0, 0, f->t1) ||
	    tfx_tenant(f->s, "two", 0, 0, f->t2) ||
	    tfx_user(f->s, f->t1, "alice", f->ua, &f->a) ||
	    tfx_user(f->s, f->t2, "xavier", f->ux, &f->x) ||
	    sfs_key_create(f->s, f->ua, SFS_SCOPE_ALL, "t", f->key_a, kid,
			   NULL) ||
	    sfs_key_create(f->s, f->ux, SFS_SCOPE_ALL, "t", f->key_x, kid,
			   NULL))
		return -1;
	return start_daemon(f);
}

static int fx_open(struct fx *f)
{
	return fx_open_conf(f, NULL);
}

/* A daemon of the seed's API only, whose rate limit no test meets. */
#define SEED_CONF                                                              \
	"http.extensions = false\n"                                            \
	"http.rate_per_second = 1000\nhttp.rate_burst = 1000\n"                \
	"http.upload_rate_per_second = 1000\n"                                 \
	"http.upload_rate_burst = 1000\n"

static void fx_close(struct fx *f)
{
	CHECK(stop_daemon(f) == 0);
	tfx_store_close(&f->dir, &f->s);
}

static void test_status_of_answers(void)
{
	struct sfs_err e;
	static const char quota[] =
		"{\"status_code\":413,\"error_type\":\"quota_exceeded\","
		"\"message\":\"the tenant's byte quota\"}";
	static const char notempty[] =
		"{\"status_code\":409,\"error_type\":\"directory_not_empty\","
		"\"message\":\"the directory is not empty\"}";

	sfs_err_init(&e);
	CHECK_ST(sfs_remote_status(200, NULL, 0, &e), SFS_OK);
	CHECK_ST(sfs_remote_status(413, quota, strlen(quota), &e), SFS_QUOTA);
	CHECK(!strcmp(e.message, "the tenant's byte quota"));
	sfs_err_init(&e);
	CHECK_ST(sfs_remote_status(413, "{}", 2, &e), SFS_TOO_LARGE);
	sfs_err_init(&e);
	CHECK_ST(sfs_remote_status(409, notempty, strlen(notempty), &e),
		 SFS_CONFLICT);
	CHECK(e.reason == SFS_R_DIRECTORY_NOT_EMPTY);
	sfs_err_init(&e);
	CHECK_ST(sfs_remote_status(412, NULL, 0, &e), SFS_PRECONDITION);
	CHECK_ST(sfs_remote_status(507, "x", 1, NULL), SFS_NO_SPACE);
	CHECK_ST(sfs_remote_status(502, NULL, 0, NULL), SFS_IO);
}

/* Base64 as RFC 4648's test vectors have it; only the canonical form in. */
static void test_base64(void)
{
	static const char *const plain[] = { "",     "f",     "fo",    "foo",
					     "foob", "fooba", "foobar" };
	static const char *const coded[] = {
		"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"
	};
	static const char *const bad[] = { "Zg=",  "Z===",     "Zh==", "Zm9=",
					   "Zm 9", "Zg==Zg==", "Zm8" };
	struct sfs_buf b = SFS_BUF_INIT(0);
	unsigned char all[256];
	size_t i;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		sfs_buf_reset(&b);
		CHECK(sfs_base64_encode(plain[i], strlen(plain[i]), &b) == 0);
		CHECK(b.len == strlen(coded[i]) &&
		      !memcmp(b.buf, coded[i], b.len));
		sfs_buf_reset(&b);
		CHECK(sfs_base64_decode(coded[i], strlen(coded[i]), &b) == 0);
		CHECK(b.len == strlen(plain[i]) &&
		      !memcmp(b.buf, plain[i], b.len));
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sfs_buf_reset(&b);
		CHECK(sfs_base64_decode(bad[i], strlen(bad[i]), &b) == -1);
	}
	for (i = 0; i < sizeof(all); i++)
		all[i] = (unsigned char)i;
	sfs_buf_reset(&b);
	REQUIRE(sfs_base64_encode(all, sizeof(all), &b) == 0);
	{
		struct sfs_buf d = SFS_BUF_INIT(0);

		CHECK(sfs_base64_decode(b.buf, b.len, &d) == 0);
		CHECK(d.len == sizeof(all) && !memcmp(d.buf, all, d.len));
		sfs_buf_release(&d);
	}
	sfs_buf_release(&b);
}

struct got {
	int n;
	int named; /* a change named the file looked for */
	const char *id;
};

static void on_change(void *arg, const char *json, size_t len)
{
	struct got *g = arg;

	g->n++;
	if (len && strstr(json, g->id))
		g->named = 1;
}

static void test_against_a_daemon(void)
{
	struct sfs_remote *r = NULL, *rx = NULL;
	struct sfs_file f;
	struct sfs_err e;
	struct fx fx;
	char id[SFS_ID_SIZE], id2[SFS_ID_SIZE], sha[65], cur[32], next[32];
	char tmp[PATH_MAX];
	struct got g = { 0 };
	int fd, more;

	REQUIRE(fx_open(&fx) == 0);
	REQUIRE_ST(tfx_upload(fx.s, &fx.a, "talk", "words", 5, id, sha),
		   SFS_OK);
	REQUIRE_ST(sfs_remote_open(fx.url, fx.key_a, 5, &r, NULL), SFS_OK);
	CHECK(sfs_remote_features(r) ==
	      (SFS_REMOTE_CONTENT | SFS_REMOTE_DIRS | SFS_REMOTE_CHANGES |
	       SFS_REMOTE_XATTRS | SFS_REMOTE_SPACE | SFS_REMOTE_LAZY |
	       SFS_REMOTE_ID_KEY | SFS_REMOTE_CRC32C | SFS_REMOTE_KEEP_DIRS |
	       SFS_REMOTE_UPLOADS));
	/* the user's id, for the ids derived from idKey */
	CHECK(!strcmp(sfs_remote_user_id(r), fx.a.user_id));
	/* a file as the core has it */
	sfs_err_init(&e);
	REQUIRE_ST(sfs_remote_file_get(r, id, &f, &e), SFS_OK);
	CHECK(!strcmp(f.name, "talk") && !strcmp(f.path, "/"));
	CHECK(f.size == 5 && !strcmp(f.sha256, sha));
	sfs_file_release(&f);
	/* another tenant's file does not exist, as the core says */
	REQUIRE_ST(sfs_remote_open(fx.url, fx.key_x, 5, &rx, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_remote_file_get(rx, id, &f, &e), SFS_NOT_FOUND);
	CHECK(e.reason == SFS_R_FILE_NOT_FOUND);
	sfs_remote_close(rx);
	/* the change feed: the cursor of now */
	REQUIRE_ST(sfs_remote_changes(r, NULL, 0, on_change, &g, cur,
				      sizeof(cur), &more, NULL),
		   SFS_OK);
	CHECK(g.n == 0);
	/* a new version from a file, on its condition */
	snprintf(tmp, sizeof(tmp), "%s/upload.bin", fx.dir);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0);
	CHECK(write(fd, "new words", 9) == 9);
	sfs_err_init(&e);
	CHECK_ST(sfs_remote_set_content(r, id, fd, sha, 0, &f, &e), SFS_OK);
	CHECK(f.size == 9 && strcmp(f.sha256, sha) != 0);
	sfs_file_release(&f);
	sfs_err_init(&e);
	CHECK_ST(sfs_remote_set_content(r, id, fd, sha, 0, NULL, &e),
		 SFS_PRECONDITION);
	close(fd);
	/* the feed tells of it */
	g.id = id;
	REQUIRE_ST(sfs_remote_changes(r, cur, 30, on_change, &g, next,
				      sizeof(next), &more, NULL),
		   SFS_OK);
	CHECK(g.named);
	/* a commit of another process (this one) wakes a waiting poll */
	REQUIRE_ST(tfx_upload(fx.s, &fx.a, "later", "later", 5, id2, NULL),
		   SFS_OK);
	memset(&g, 0, sizeof(g));
	g.id = id2;
	CHECK_ST(sfs_remote_changes(r, next, 30, on_change, &g, cur,
				    sizeof(cur), &more, NULL),
		 SFS_OK);
	CHECK(g.named);
	sfs_err_init(&e);
	CHECK_ST(sfs_remote_changes(r, "999999999", 0, on_change, &g, cur,
				    sizeof(cur), &more, &e),
		 SFS_GONE);
	CHECK(e.reason == SFS_R_CURSOR_EXPIRED);
	/* the daemon gone: a clear failure, at once */
	CHECK(stop_daemon(&fx) == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_remote_file_get(r, id, &f, &e), SFS_UNAVAILABLE);
	sfs_remote_close(r);
	fx_close(&fx);
}

struct seen {
	int n;
	int64_t ino;
	char id[SFS_ID_SIZE];
	char names[256];
};

static int on_file(void *arg, const struct sfs_file *f)
{
	struct seen *s = arg;

	s->n++;
	s->ino = f->ino;
	sfs_strlcpy(s->id, f->id, sizeof(s->id));
	return 0;
}

static void on_dir(void *arg, const char *name, const struct sfs_dir_info *d)
{
	struct seen *s = arg;

	(void)d;
	s->n++;
	strncat(s->names, name, sizeof(s->names) - strlen(s->names) - 2);
	strcat(s->names, ",");
}

struct fchanges {
	int64_t want; /* a file's number */
	int got;      /* a change of it, in "/" */
};

static void on_fchange(void *arg, int64_t seq, int64_t file_ino, int64_t owner,
		       const char *dir)
{
	struct fchanges *c = arg;

	(void)seq;
	(void)owner;
	if (c->want && file_ino == c->want && dir && !strcmp(dir, "/"))
		c->got = 1;
}

/* How many files of directory path the store finds by display name. */
static int count_named(struct sfs_store *s, const struct sfs_actor *a,
		       const char *path, const char *name)
{
	const char *const names[] = { name };
	struct seen seen;

	memset(&seen, 0, sizeof(seen));
	if (sfs_query_dir_names(s, a, path, names, 1, NULL, on_file, &seen,
				NULL))
		return -1;
	return seen.n;
}

/* Count the block cache's files below dir (not its staging/: a lock). */
static int count_files(const char *dir)
{
	char cmd[PATH_MAX + 96], line[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "find '%s' -type f -not -path '*/staging/*' | wc -l", dir);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (!fgets(line, sizeof(line), p))
		line[0] = '\0';
	pclose(p);
	return atoi(line);
}

/* What sfs_blob_lend handed over (copied: it is valid during the call). */
struct lent {
	int calls;
	size_t len;
	char data[64];
};

static void keep_lent(void *arg, const void *data, size_t len)
{
	struct lent *l = arg;

	l->calls++;
	l->len = len;
	memcpy(l->data, data, len < sizeof(l->data) ? len : sizeof(l->data));
}

/*
 * The store of a server through the public API (sfs_store_open_url):
 * directories, files, lookups by name and id, content through the block
 * cache, xattrs; writes refused with SFS_UNSUPPORTED; a bad key refused
 * at open; the daemon gone is SFS_UNAVAILABLE for what was never seen.
 */
static void test_store_open_url(void)
{
	static const char *const upper[] = { "TALK" }, *const none[] = { "x" };
	struct sfs_remote_opts o = { 0 };
	struct sfs_file_update u = { 0 };
	struct sfs_buf b = SFS_BUF_INIT(0);
	struct sfs_store *rs = NULL;
	struct sfs_blob *blob = NULL;
	struct sfs_dir_info di;
	struct sfs_actor ra;
	struct sfs_file f;
	struct sfs_err e;
	struct seen seen;
	struct fx fx;
	char id[SFS_ID_SIZE], sha[65], cache[PATH_MAX], prefix[9], buf[64];
	char bad[80];
	struct lent lent = { 0 };
	size_t got = 0;
	int64_t seq, talk = 0;
	int n_root;

	REQUIRE(fx_open(&fx) == 0);
	REQUIRE_ST(tfx_upload(fx.s, &fx.a, "talk", "some words", 10, id, sha),
		   SFS_OK);
	REQUIRE_ST(sfs_dir_make(fx.s, &fx.a, "/empty/", NULL), SFS_OK);
	REQUIRE_ST(
		sfs_xattr_set(fx.s, &fx.a, id, "user.note", "hi", 2, 0, NULL),
		SFS_OK);
	snprintf(cache, sizeof(cache), "%s/cache", fx.dir);
	o.url = fx.url;
	o.api_key = fx.key_a;
	o.timeout_s = 5;
	o.cache_dir = cache;
	o.cache_bytes = -1;
	sfs_err_init(&e);
	REQUIRE_ST(sfs_store_open_url(&o, &rs, &e), SFS_OK);
	CHECK(sfs_store_is_remote(rs) && !sfs_store_is_remote(fx.s));
	/* a new file waits for nothing until its first commit (idKey) */
	CHECK(sfs_store_create_quick(rs) && !sfs_store_create_quick(fx.s));
	REQUIRE_ST(sfs_auth_user(rs, NULL, SFS_SCOPE_ALL, &ra, NULL), SFS_OK);
	/* directories */
	REQUIRE_ST(sfs_dir_stat(rs, &ra, "/", &di, NULL), SFS_OK);
	{
		struct sfs_dir_info local;

		/* as the store has it (but the number: the client's own) */
		REQUIRE_ST(sfs_dir_stat(fx.s, &fx.a, "/", &local, NULL),
			   SFS_OK);
		CHECK(di.nsub == 1 && local.nsub == 1);
		CHECK(di.nfiles == local.nfiles && di.ino > 0);
		CHECK(di.mtime_ns / 1000000 == local.mtime_ns / 1000000);
	}
	sfs_err_init(&e);
	CHECK_ST(sfs_dir_stat(rs, &ra, "/nope/", &di, &e), SFS_NOT_FOUND);
	memset(&seen, 0, sizeof(seen));
	CHECK_ST(sfs_dir_subdirs(rs, &ra, "/", on_dir, &seen, NULL), SFS_OK);
	CHECK(seen.n == 1 && !strcmp(seen.names, "empty,"));
	REQUIRE_ST(sfs_dir_stat(rs, &ra, "/empty/", &di, NULL), SFS_OK);
	CHECK(di.explicit_ && di.nfiles == 0);
	{
		struct sfs_dir_info d2;
		char path[64];

		CHECK_ST(sfs_dir_stat_ino(rs, &ra, di.ino, path, sizeof(path),
					  &d2, NULL),
			 SFS_OK);
		CHECK(!strcmp(path, "/empty/") && d2.ino == di.ino);
	}
	/* files, numbered once */
	memset(&seen, 0, sizeof(seen));
	CHECK_ST(sfs_query_dir_files(rs, &ra, "/", on_file, &seen, NULL),
		 SFS_OK);
	CHECK(seen.n == 1 && !strcmp(seen.id, id) && seen.ino > 0);
	memset(&seen, 0, sizeof(seen));
	CHECK_ST(sfs_query_dir_names(rs, &ra, "/", upper, 1, NULL, on_file,
				     &seen, NULL),
		 SFS_OK);
	CHECK(seen.n == 1 && !strcmp(seen.id, id));
	memset(&seen, 0, sizeof(seen));
	CHECK_ST(sfs_query_dir_names(rs, &ra, "/", none, 1, NULL, on_file,
				     &seen, NULL),
		 SFS_OK);
	CHECK(seen.n == 0);
	snprintf(prefix, sizeof(prefix), "%.8s", id);
	CHECK_ST(sfs_query_dir_names(rs, &ra, "/", none, 1, prefix, on_file,
				     &seen, NULL),
		 SFS_OK);
	CHECK(seen.n == 1 && !strcmp(seen.id, id));
	REQUIRE_ST(sfs_file_get_ino(rs, &ra, seen.ino, &f, NULL), SFS_OK);
	CHECK(!strcmp(f.id, id) && f.ino == seen.ino && f.size == 10);
	talk = seen.ino;
	CHECK(f.perm == SFS_PERM_OWNER);
	sfs_file_release(&f);
	sfs_err_init(&e);
	CHECK_ST(sfs_file_get_ino(rs, &ra, 999999, &f, &e), SFS_NOT_FOUND);
	/* content: Range GETs into the block cache, cached even where the
	 * file system refuses O_DIRECT writes (plain ones then) */
	CHECK(count_files(cache) == 0);
	__atomic_store_n(&refuse_direct_writes, 1, __ATOMIC_SEQ_CST);
	REQUIRE_ST(sfs_file_open_ino(rs, &ra, seen.ino, SFS_CONTENT_ORIGINAL,
				     SFS_BLOB_CACHED, &blob, NULL, NULL),
		   SFS_OK);
	CHECK(sfs_blob_size(blob) == 10);
	/* not fetched yet: a read would wait for the server */
	CHECK(!sfs_blob_ready(blob, 5, 5));
	CHECK(sfs_blob_ready(blob, 10, 5)); /* past the end: nothing to fetch */
	CHECK_ST(sfs_blob_pread(blob, buf, sizeof(buf), 5, &got, NULL), SFS_OK);
	CHECK(got == 5 && !memcmp(buf, "words", 5));
	/* its block in memory now: from anywhere in it */
	CHECK(sfs_blob_ready(blob, 0, 10));
	CHECK(sfs_blob_ready(blob, 3, 100));
	/* and lent where it lies, up to the end and no further */
	CHECK_ST(sfs_blob_lend(blob, 2, 100, keep_lent, &lent, NULL), SFS_OK);
	CHECK(lent.calls == 1 && lent.len == 8 &&
	      !memcmp(lent.data, "me words", 8));
	CHECK_ST(sfs_blob_lend(blob, 10, 5, keep_lent, &lent, NULL), SFS_OK);
	CHECK(lent.calls == 2 && lent.len == 0);
	sfs_blob_close(blob);
	__atomic_store_n(&refuse_direct_writes, 0, __ATOMIC_SEQ_CST);
	CHECK(count_files(cache) == 1);
	/* xattrs */
	CHECK_ST(sfs_xattr_get(rs, &ra, id, "user.note", &b, NULL), SFS_OK);
	CHECK(b.len == 2 && !memcmp(b.buf, "hi", 2));
	sfs_buf_reset(&b);
	CHECK_ST(sfs_xattr_list(rs, &ra, id, &b, NULL), SFS_OK);
	CHECK(b.len == 10 && !memcmp(b.buf, "user.note", 10));
	sfs_err_init(&e);
	CHECK_ST(sfs_xattr_get(rs, &ra, id, "user.none", &b, &e),
		 SFS_NOT_FOUND);
	/* writes reach the server, its refusals come back as statuses */
	u.set = SFS_UPD_NAME;
	u.name = "other";
	CHECK_ST(sfs_file_update(rs, &ra, id, &u, &f, NULL), SFS_OK);
	CHECK(!strcmp(f.name, "other") && f.ino == seen.ino);
	sfs_file_release(&f);
	REQUIRE_ST(sfs_file_get(fx.s, &fx.a, id, &f, NULL), SFS_OK);
	CHECK(!strcmp(f.name, "other"));
	sfs_file_release(&f);
	CHECK_ST(sfs_dir_make(rs, &ra, "/new/", NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_dir_make(rs, &ra, "/new/", &e), SFS_CONFLICT);
	CHECK_ST(sfs_dir_stat(fx.s, &fx.a, "/new/", &di, NULL), SFS_OK);
	REQUIRE_ST(sfs_dir_stat(rs, &ra, "/new/", &di, NULL), SFS_OK);
	CHECK_ST(sfs_dir_rename(rs, &ra, "/new/", "/newer/", NULL), SFS_OK);
	{
		struct sfs_dir_info d2;
		char path[64];

		/* its number follows it, as a local directory's row does */
		CHECK_ST(sfs_dir_stat_ino(rs, &ra, di.ino, path, sizeof(path),
					  &d2, NULL),
			 SFS_OK);
		CHECK(!strcmp(path, "/newer/"));
	}
	CHECK_ST(sfs_dir_remove(rs, &ra, "/newer/", NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_dir_remove(rs, &ra, "/newer/", &e), SFS_NOT_FOUND);
	CHECK_ST(sfs_xattr_set(rs, &ra, id, "user.x", "1", 1, 0, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_xattr_set(rs, &ra, id, "user.x", "2", 1, SFS_XATTR_CREATE,
			       &e),
		 SFS_CONFLICT);
	CHECK_ST(sfs_xattr_remove(rs, &ra, id, "user.x", NULL), SFS_OK);
	sfs_buf_reset(&b);
	sfs_err_init(&e);
	CHECK_ST(sfs_xattr_get(fx.s, &fx.a, id, "user.x", &b, &e),
		 SFS_NOT_FOUND);
	/* a lazy create (the mount's): not on the server before its first
	 * content commit or sync, which sends it in one request; this store
	 * shows it meanwhile (by number, in its directory's listing) */
	{
		struct sfs_file_spec sp = {
			.name = "lazy", .path = "/", .lazy = 1, .no_suffix = 1
		};
		struct sfs_file_update lu = { .set = SFS_UPD_NAME,
					      .name = "lazier" };
		struct sfs_file lf;
		struct sfs_stage *st;

		REQUIRE_ST(sfs_file_create(rs, &ra, &sp, NULL, &f, NULL),
			   SFS_OK);
		CHECK(f.size == 0 && f.ino > 0);
		sfs_err_init(&e);
		CHECK_ST(sfs_file_get(fx.s, &fx.a, f.id, &lf, &e),
			 SFS_NOT_FOUND);
		REQUIRE_ST(sfs_file_get_ino(rs, &ra, f.ino, &lf, NULL), SFS_OK);
		CHECK(!strcmp(lf.id, f.id) && lf.size == 0);
		sfs_file_release(&lf);
		CHECK(count_named(rs, &ra, "/", "lazy") == 1);
		/* a rename is kept until then */
		CHECK_ST(sfs_file_rename(rs, &ra, f.id, &lu, NULL, 0, NULL,
					 NULL),
			 SFS_OK);
		CHECK(count_named(rs, &ra, "/", "lazier") == 1);
		CHECK(count_named(rs, &ra, "/", "lazy") == 0);
		/* its content: created with it, under its id and new name */
		st = tfx_stage(rs, "lazy bytes", 10);
		REQUIRE_ST(
			sfs_file_set_content(rs, &ra, f.id, st, 0, &lf, NULL),
			SFS_OK);
		sfs_stage_free(st);
		CHECK(lf.ino == f.ino && lf.size == 10);
		sfs_file_release(&lf);
		REQUIRE_ST(sfs_file_get(fx.s, &fx.a, f.id, &lf, NULL), SFS_OK);
		CHECK(lf.size == 10 && !strcmp(lf.name, "lazier"));
		sfs_file_release(&lf);
		/* once sent, a sync asks the server (its 404 and 409) */
		CHECK_ST(sfs_file_sync(rs, &ra, f.id, NULL), SFS_OK);
		sfs_err_init(&e);
		CHECK_ST(sfs_file_sync(rs, &ra,
				       "00000000-0000-4000-8000-000000000000",
				       &e),
			 SFS_NOT_FOUND);
		REQUIRE_ST(sfs_file_delete(rs, &ra, f.id, 1, NULL), SFS_OK);
		sfs_err_init(&e);
		CHECK_ST(sfs_file_sync(rs, &ra, f.id, &e), SFS_CONFLICT);
		CHECK(e.reason == SFS_R_FILE_DELETED);
		sfs_file_release(&f);
		/* closed empty (touch): its sync creates it */
		sp.name = "touched";
		REQUIRE_ST(sfs_file_create(rs, &ra, &sp, NULL, &f, NULL),
			   SFS_OK);
		CHECK_ST(sfs_file_sync(rs, &ra, f.id, NULL), SFS_OK);
		REQUIRE_ST(sfs_file_get(fx.s, &fx.a, f.id, &lf, NULL), SFS_OK);
		CHECK(lf.size == 0 && !strcmp(lf.name, "touched"));
		sfs_file_release(&lf);
		sfs_file_release(&f);
		/* removed before it was sent: the server never hears of it */
		sp.name = "never";
		REQUIRE_ST(sfs_file_create(rs, &ra, &sp, NULL, &f, NULL),
			   SFS_OK);
		CHECK_ST(sfs_file_delete(rs, &ra, f.id, 0, NULL), SFS_OK);
		sfs_err_init(&e);
		CHECK_ST(sfs_file_get_ino(rs, &ra, f.ino, &lf, &e),
			 SFS_NOT_FOUND);
		CHECK(count_named(rs, &ra, "/", "never") == 0);
		st = tfx_stage(rs, "late", 4);
		sfs_err_init(&e);
		CHECK_ST(sfs_file_set_content(rs, &ra, f.id, st, 0, NULL, &e),
			 SFS_CONFLICT);
		CHECK(e.reason == SFS_R_FILE_DELETED);
		sfs_stage_free(st);
		sfs_err_init(&e);
		CHECK_ST(sfs_file_get(fx.s, &fx.a, f.id, &lf, &e),
			 SFS_NOT_FOUND);
		sfs_file_release(&f);
		/* an xattr sends the create first */
		sp.name = "attr";
		REQUIRE_ST(sfs_file_create(rs, &ra, &sp, NULL, &f, NULL),
			   SFS_OK);
		CHECK_ST(
			sfs_xattr_set(rs, &ra, f.id, "user.k", "v", 1, 0, NULL),
			SFS_OK);
		REQUIRE_ST(sfs_file_get(fx.s, &fx.a, f.id, &lf, NULL), SFS_OK);
		sfs_file_release(&lf);
		sfs_buf_reset(&b);
		CHECK_ST(sfs_xattr_get(fx.s, &fx.a, f.id, "user.k", &b, NULL),
			 SFS_OK);
		CHECK_ST(sfs_file_sync(rs, &ra, f.id, NULL), SFS_OK);
		sfs_file_release(&f);
	}
	/* the change feed: another process's commit wakes the change fd */
	{
		struct pollfd p = { .fd = sfs_store_change_fd(rs),
				    .events = POLLIN };
		static const char *const fresh[] = { "fresh" };
		struct fchanges fc = { 0 };
		char id2[SFS_ID_SIZE];
		int64_t last = 0, deadline = sfs_now_ms() + 30000;

		CHECK(sfs_store_change_fd(fx.s) == -1 && p.fd >= 0);
		CHECK_ST(sfs_store_change_seq(rs, &seq, NULL), SFS_OK);
		/* the feed leaves the store's own out: no whole list here */
		CHECK_ST(sfs_store_changes(rs, seq, on_fchange, &fc, &last,
					   NULL),
			 SFS_UNSUPPORTED);
		/* what came before (this test's own writes) goes first */
		CHECK_ST(sfs_store_changes_by_others(rs, seq, on_fchange, &fc,
						     &last, NULL),
			 SFS_OK);
		REQUIRE_ST(
			tfx_upload(fx.s, &fx.a, "fresh", "new", 3, id2, NULL),
			SFS_OK);
		memset(&seen, 0, sizeof(seen));
		CHECK_ST(sfs_query_dir_names(rs, &ra, "/", fresh, 1, NULL,
					     on_file, &seen, NULL),
			 SFS_OK);
		REQUIRE(seen.n == 1);
		fc.want = seen.ino;
		while (!fc.got && sfs_now_ms() < deadline) {
			if (poll(&p, 1, 30000) != 1)
				break;
			CHECK_ST(sfs_store_changes_by_others(rs, last,
							     on_fchange, &fc,
							     &last, NULL),
				 SFS_OK);
		}
		CHECK(fc.got && last > seq);
	}
	/* a file's times and original filename (extensions of PATCH),
	 * read back through the local store to the ns */
	u.set = SFS_UPD_MTIME | SFS_UPD_ATIME | SFS_UPD_FILENAME;
	u.mtime_ns = 1234567890123456789LL;
	u.atime_ns = -1000000001LL;
	u.filename = "orig.flac";
	CHECK_ST(sfs_file_update(rs, &ra, id, &u, NULL, NULL), SFS_OK);
	{
		struct sfs_file lf, rf;

		REQUIRE_ST(sfs_file_get(fx.s, &fx.a, id, &lf, NULL), SFS_OK);
		REQUIRE_ST(sfs_file_get_ino(rs, &ra, talk, &rf, NULL), SFS_OK);
		CHECK(lf.mtime_ns == u.mtime_ns && rf.mtime_ns == u.mtime_ns);
		CHECK(lf.atime_ns == u.atime_ns && rf.atime_ns == u.atime_ns);
		CHECK(rf.ctime_ns == lf.ctime_ns);
		CHECK(lf.filename && !strcmp(lf.filename, "orig.flac"));
		CHECK(rf.filename && !strcmp(rf.filename, "orig.flac"));
		sfs_file_release(&lf);
		sfs_file_release(&rf);
	}
	/* a key the server does not know: refused at open */
	snprintf(bad, sizeof(bad), "sfs_%064d", 0);
	o.api_key = bad;
	{
		struct sfs_store *no = NULL;

		sfs_err_init(&e);
		CHECK_ST(sfs_store_open_url(&o, &no, &e), SFS_UNAUTHENTICATED);
		CHECK(no == NULL);
	}
	/*
	 * the daemon gone: what was never listed fails clearly; what was
	 * seen last is still told (a listing of "/", before and after the
	 * change feed sees the server go, and a directory's stat)
	 */
	memset(&seen, 0, sizeof(seen));
	REQUIRE_ST(sfs_query_dir_files(rs, &ra, "/", on_file, &seen, NULL),
		   SFS_OK);
	n_root = seen.n;
	CHECK(stop_daemon(&fx) == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_query_dir_files(rs, &ra, "/never/", on_file, &seen, &e),
		 SFS_UNAVAILABLE);
	sfs_err_init(&e);
	memset(&seen, 0, sizeof(seen));
	CHECK_ST(sfs_query_dir_files(rs, &ra, "/", on_file, &seen, &e), SFS_OK);
	CHECK(seen.n == n_root && n_root > 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_dir_stat(rs, &ra, "/", &di, &e), SFS_OK);
	sfs_buf_release(&b);
	sfs_store_close(rs);
	fx_close(&fx);
}

/* A pipe's writer: 16 chunks of 64 bytes, 200 ms apart (3.2 s). */
static void *slow_writer(void *arg)
{
	int fd = *(int *)arg, i;
	char chunk[64];

	memset(chunk, 'a', sizeof(chunk));
	for (i = 0; i < 16; i++) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };

		if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
			break;
		nanosleep(&ts, NULL);
	}
	close(fd);
	return NULL;
}

/*
 * A form's file part (the seed-only upload) is a file's bytes sent, as
 * a PUT of content is: a slow upload that never stalls is not cut at
 * twice the timeout (1 s here; the upload takes 3.2 s).
 */
static void test_slow_form_upload(void)
{
	static const char *const form[] = { "name", "slow", "path", "/", NULL };
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	struct sfsi_remote_req q = { .method = "POST",
				     .path = "/api/v1/speech-services/files",
				     .form = form,
				     .form_file = "slow.bin",
				     .size = 16 * 64 };
	struct sfs_remote *r = NULL;
	struct sfs_file f;
	enum sfs_status st;
	struct sfs_err e;
	struct fx fx;
	pthread_t t;
	int p[2];

	REQUIRE(fx_open(&fx) == 0);
	REQUIRE_ST(sfs_remote_open(fx.url, fx.key_a, 1, &r, NULL), SFS_OK);
	REQUIRE(pipe(p) == 0);
	REQUIRE(pthread_create(&t, NULL, slow_writer, &p[1]) == 0);
	q.fd = p[0];
	sfs_err_init(&e);
	st = sfsi_remote_request(r, &q, &b, &e);
	CHECK_ST(st, SFS_OK);
	pthread_join(t, NULL);
	close(p[0]);
	if (!st) {
		CHECK_ST(sfs_remote_file_decode(b.buf, b.len, &f, NULL),
			 SFS_OK);
		CHECK(f.size == 16 * 64);
		sfs_file_release(&f);
	} else {
		fprintf(stderr, "  the upload: %s\n", e.message);
	}
	sfs_buf_release(&b);
	sfs_remote_close(r);
	fx_close(&fx);
}

/* A remote store of fx's daemon as alice, its actor in *ra. */
static struct sfs_store *open_url(struct fx *fx, struct sfs_actor *ra)
{
	struct sfs_remote_opts o = { 0 };
	struct sfs_store *rs = NULL;
	char cache[PATH_MAX];

	snprintf(cache, sizeof(cache), "%s/cache", fx->dir);
	o.url = fx->url;
	o.api_key = fx->key_a;
	o.timeout_s = 5;
	o.cache_dir = cache;
	o.cache_bytes = -1;
	if (sfs_store_open_url(&o, &rs, NULL) ||
	    sfs_auth_user(rs, NULL, SFS_SCOPE_ALL, ra, NULL)) {
		sfs_store_close(rs);
		return NULL;
	}
	return rs;
}

/* An empty file `name` at "/" made through rs; its id into id. */
static enum sfs_status make_empty(struct sfs_store *rs,
				  const struct sfs_actor *ra, const char *name,
				  char *id, int64_t *ino)
{
	struct sfs_file_spec spec = { .name = name, .path = "/" };
	struct sfs_file f;
	enum sfs_status st = sfs_file_create(rs, ra, &spec, NULL, &f, NULL);

	if (!st) {
		sfs_strlcpy(id, f.id, SFS_ID_SIZE);
		if (ino)
			*ino = f.ino;
		sfs_file_release(&f);
	}
	return st;
}

/* Content through rs (the seed-only upload, its new id into id). */
static enum sfs_status put_bytes(struct sfs_store *rs,
				 const struct sfs_actor *ra, char *id,
				 const char *bytes, unsigned flags,
				 struct sfs_file *out, struct sfs_err *e)
{
	struct sfs_stage *st = tfx_stage(rs, bytes, strlen(bytes));
	enum sfs_status ret;

	if (!st)
		return SFS_IO;
	ret = sfs_file_set_content(rs, ra, id, st, flags, out, e);
	if (!ret && out)
		sfs_strlcpy(id, out->id, SFS_ID_SIZE);
	sfs_stage_free(st);
	return ret;
}

/*
 * New content on a server of the seed's API only (an upload replacing
 * the empty file): a deleted file is a conflict, not brought back; a
 * refusal keeps its message; listening audio is asked for as flags say.
 */
static void test_seed_content(void)
{
	struct sfs_store *rs;
	struct sfs_actor ra;
	struct sfs_file f, lf;
	struct sfs_err e;
	struct fx fx;
	char gone[SFS_ID_SIZE], full[SFS_ID_SIZE], la[SFS_ID_SIZE];

	REQUIRE(fx_open_conf(&fx, SEED_CONF) == 0);
	REQUIRE((rs = open_url(&fx, &ra)) != NULL);
	CHECK(sfs_store_is_remote(rs));
	/* no idKey: a new file is made by a request at its create */
	CHECK(!sfs_store_create_quick(rs));
	/* an upload after an unlink: the trashed file stays as it is */
	REQUIRE_ST(make_empty(rs, &ra, "gone", gone, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_delete(rs, &ra, gone, 0, NULL), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(put_bytes(rs, &ra, gone, "RIFF late", 0, NULL, &e),
		 SFS_CONFLICT);
	CHECK(e.reason == SFS_R_FILE_DELETED);
	REQUIRE_ST(sfs_file_get(fx.s, &fx.a, gone, &lf, NULL), SFS_OK);
	CHECK(lf.deleted && !lf.purged);
	sfs_file_release(&lf);
	CHECK(tfx_sql_int(fx.s, "SELECT count(*) FROM file "
				"WHERE name = 'gone'") == 1);
	/* a purged one: the local core's own answer, nothing made */
	{
		struct sfs_stage *stage = tfx_stage(fx.s, "RIFF x", 6);
		struct sfs_err le;
		enum sfs_status want;

		REQUIRE(stage != NULL);
		REQUIRE_ST(make_empty(rs, &ra, "purged", gone, NULL), SFS_OK);
		REQUIRE_ST(sfs_file_delete(fx.s, &fx.a, gone, 1, NULL), SFS_OK);
		sfs_err_init(&le);
		want = sfs_file_set_content(fx.s, &fx.a, gone, stage, 0, NULL,
					    &le);
		sfs_stage_free(stage);
		CHECK(want != SFS_OK);
		sfs_err_init(&e);
		CHECK_ST(put_bytes(rs, &ra, gone, "RIFF x", 0, NULL, &e), want);
		CHECK(e.reason == le.reason);
		CHECK(tfx_sql_int(fx.s, "SELECT count(*) FROM file "
					"WHERE name = 'purged'") == 1);
	}
	/* a file with content: refused, and the refusal says why */
	REQUIRE_ST(make_empty(rs, &ra, "full", full, NULL), SFS_OK);
	REQUIRE_ST(put_bytes(rs, &ra, full, "RIFF some", 0, &f, NULL), SFS_OK);
	CHECK(f.size == 9 && f.la.status == SFS_JS_NONE);
	sfs_file_release(&f);
	sfs_err_init(&e);
	CHECK_ST(put_bytes(rs, &ra, full, "RIFF more", 0, NULL, &e),
		 SFS_UNSUPPORTED);
	CHECK(e.status == SFS_UNSUPPORTED &&
	      strstr(e.message, "content versions"));
	/* a file made with its content: the one answered is the live one */
	{
		struct sfs_file_spec spec = { .name = "made", .path = "/" };
		struct sfs_stage *stage = tfx_stage(rs, "RIFF made", 9);

		REQUIRE(stage != NULL);
		REQUIRE_ST(sfs_file_create(rs, &ra, &spec, stage, &f, NULL),
			   SFS_OK);
		sfs_stage_free(stage);
		CHECK(f.size == 9);
		REQUIRE_ST(sfs_file_get(fx.s, &fx.a, f.id, &lf, NULL), SFS_OK);
		CHECK(!lf.deleted && !lf.purged && lf.size == 9);
		sfs_file_release(&lf);
		sfs_file_release(&f);
	}
	/* the new id keeps the empty file's number; none is spent on it */
	{
		char a[SFS_ID_SIZE], b[SFS_ID_SIZE];
		int64_t ia = 0, ib = 0;

		REQUIRE_ST(make_empty(rs, &ra, "a", a, &ia), SFS_OK);
		REQUIRE_ST(put_bytes(rs, &ra, a, "RIFF a", 0, &f, NULL),
			   SFS_OK);
		CHECK(f.ino == ia && strcmp(f.id, a) == 0);
		sfs_file_release(&f);
		REQUIRE_ST(make_empty(rs, &ra, "b", b, &ib), SFS_OK);
		CHECK(ib == ia + 1);
		REQUIRE_ST(sfs_file_get_ino(rs, &ra, ia, &f, NULL), SFS_OK);
		CHECK(!strcmp(f.id, a) && f.size == 6);
		sfs_file_release(&f);
	}
	/* listening audio when asked */
	REQUIRE_ST(make_empty(rs, &ra, "la", la, NULL), SFS_OK);
	REQUIRE_ST(put_bytes(rs, &ra, la, "RIFF talk", SFS_SET_LISTENING, &f,
			     NULL),
		   SFS_OK);
	CHECK(f.la.status != SFS_JS_NONE);
	sfs_file_release(&f);
	REQUIRE_ST(sfs_file_get(fx.s, &fx.a, la, &lf, NULL), SFS_OK);
	CHECK(lf.la.status != SFS_JS_NONE);
	sfs_file_release(&lf);
	sfs_store_close(rs);
	fx_close(&fx);
}

/*
 * rename(2) on a server of the seed's API only: one that needs an
 * extension (the original filename, restore from the trash) is refused
 * before any request, so the file it would replace is not deleted.
 */
static void test_seed_rename(void)
{
	struct sfs_file_update u = { 0 };
	struct sfs_store *rs;
	struct sfs_actor ra;
	struct sfs_file lf;
	struct sfs_err e;
	struct fx fx;
	char x[SFS_ID_SIZE], tmp[SFS_ID_SIZE];

	REQUIRE(fx_open_conf(&fx, SEED_CONF) == 0);
	REQUIRE((rs = open_url(&fx, &ra)) != NULL);
	REQUIRE_ST(make_empty(rs, &ra, "x", x, NULL), SFS_OK);
	REQUIRE_ST(make_empty(rs, &ra, ".x", tmp, NULL), SFS_OK);
	/* the editor's .x.wav.tmp -> x.wav: the extension changes */
	u.set = SFS_UPD_NAME | SFS_UPD_FILENAME;
	u.name = "x";
	u.filename = "x.wav";
	sfs_err_init(&e);
	CHECK_ST(sfs_file_rename(rs, &ra, tmp, &u, x, 0, NULL, &e),
		 SFS_UNSUPPORTED);
	REQUIRE_ST(sfs_file_get(fx.s, &fx.a, x, &lf, NULL), SFS_OK);
	CHECK(!lf.deleted);
	sfs_file_release(&lf);
	/* a plain rename onto it still goes: the target trashed, moved */
	u.set = SFS_UPD_NAME;
	CHECK_ST(sfs_file_rename(rs, &ra, tmp, &u, x, 0, NULL, NULL), SFS_OK);
	REQUIRE_ST(sfs_file_get(fx.s, &fx.a, x, &lf, NULL), SFS_OK);
	CHECK(lf.deleted);
	sfs_file_release(&lf);
	/* out of the trash: no seed route, refused as such */
	sfs_err_init(&e);
	u.name = "back";
	CHECK_ST(sfs_file_rename(rs, &ra, x, &u, NULL, SFS_RENAME_RESTORE, NULL,
				 &e),
		 SFS_UNSUPPORTED);
	REQUIRE_ST(sfs_file_get(fx.s, &fx.a, x, &lf, NULL), SFS_OK);
	CHECK(lf.deleted && !strcmp(lf.name, "x"));
	sfs_file_release(&lf);
	sfs_store_close(rs);
	fx_close(&fx);
}

/* A file of alice's at path, made in the store itself (its id into id). */
static enum sfs_status local_file(struct fx *fx, const char *path, char *id)
{
	struct sfs_file_spec sp = { .name = "k", .path = path };
	struct sfs_file f;
	enum sfs_status st;

	st = sfs_file_create(fx->s, &fx->a, &sp, NULL, &f, NULL);
	if (!st) {
		sfs_strlcpy(id, f.id, SFS_ID_SIZE);
		sfs_file_release(&f);
	}
	return st;
}

/* Alice's directory path in the store: explicit 1, implicit 0, none -1. */
static int dir_kind(struct fx *fx, const char *path)
{
	struct sfs_dir_info di;

	if (sfs_dir_stat(fx->s, &fx->a, path, &di, NULL))
		return -1;
	return di.explicit_;
}

/*
 * A remote store that keeps directories (sfs_store_keep_dirs) asks its
 * server to (keepDirs=true) with each call that can empty one: a file's
 * delete and move, a directory's rename and removal; not set, the API's
 * rule holds (it vanishes); a seed-only server is not asked (it would
 * refuse it: the delete goes as before).
 */
static void test_keep_dirs(void)
{
	struct sfs_file_update u = { .set = SFS_UPD_PATH, .path = "/to/" };
	char a[SFS_ID_SIZE], b[SFS_ID_SIZE], c[SFS_ID_SIZE], d[SFS_ID_SIZE];
	struct sfs_store *rs;
	struct sfs_actor ra;
	struct fx fx;

	REQUIRE(fx_open(&fx) == 0);
	REQUIRE((rs = open_url(&fx, &ra)) != NULL);
	CHECK(sfs_remote_features(sfsi_remote_of(rs)) & SFS_REMOTE_KEEP_DIRS);
	REQUIRE_ST(local_file(&fx, "/gone/", a), SFS_OK);
	REQUIRE_ST(local_file(&fx, "/del/", b), SFS_OK);
	REQUIRE_ST(local_file(&fx, "/mv/", c), SFS_OK);
	REQUIRE_ST(local_file(&fx, "/ren/sub/", d), SFS_OK);
	REQUIRE_ST(sfs_dir_make(fx.s, &fx.a, "/rm/sub/", NULL), SFS_OK);
	CHECK_ST(sfs_file_delete(rs, &ra, a, 0, NULL), SFS_OK);
	CHECK(dir_kind(&fx, "/gone/") == -1);
	sfs_store_keep_dirs(rs, 1);
	CHECK_ST(sfs_file_delete(rs, &ra, b, 0, NULL), SFS_OK);
	CHECK(dir_kind(&fx, "/del/") == 1);
	CHECK_ST(sfs_file_rename(rs, &ra, c, &u, NULL, 0, NULL, NULL), SFS_OK);
	CHECK(dir_kind(&fx, "/mv/") == 1 && dir_kind(&fx, "/to/") == 0);
	CHECK_ST(sfs_dir_rename(rs, &ra, "/ren/sub/", "/to/sub/", NULL),
		 SFS_OK);
	CHECK(dir_kind(&fx, "/ren/") == 1 && dir_kind(&fx, "/to/sub/") == 0);
	CHECK_ST(sfs_dir_remove(rs, &ra, "/rm/sub/", NULL), SFS_OK);
	CHECK(dir_kind(&fx, "/rm/") == 1 && dir_kind(&fx, "/rm/sub/") == -1);
	sfs_store_close(rs);
	fx_close(&fx);
	REQUIRE(fx_open_conf(&fx, SEED_CONF) == 0);
	REQUIRE((rs = open_url(&fx, &ra)) != NULL);
	CHECK(!(sfs_remote_features(sfsi_remote_of(rs)) &
		SFS_REMOTE_KEEP_DIRS));
	sfs_store_keep_dirs(rs, 1);
	REQUIRE_ST(local_file(&fx, "/seed/", a), SFS_OK);
	CHECK_ST(sfs_file_delete(rs, &ra, a, 0, NULL), SFS_OK);
	CHECK(dir_kind(&fx, "/seed/") == -1);
	sfs_store_close(rs);
	fx_close(&fx);
}

/* A stand-in server: its answer to the OpenAPI document, the rest fixed. */
struct fake {
	int fd;
	int doc_status; /* of GET /api/v1/openapi.json */
	const char *doc;
	int no_files;	   /* the seed's GET /files answers 404 too */
	const char *page0; /* if set: GET /files's answer at page=0 */
	const char *next;  /* if set: its answer to cursor=c1 */
	int me_status;	   /* of GET /users/me (0: 404) */
	const char *me;
	char asked[4096]; /* the request lines, one a line */
	int expect;	  /* requests whose head said "Expect:" */
	int stop;
};

static void fake_answer(int c, int status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, strlen(body));

	if (write(c, head, (size_t)n) != n ||
	    write(c, body, strlen(body)) != (ssize_t)strlen(body))
		return;
}

/* The request's head (up to its blank line), NUL-ended; 0 when it came. */
static int fake_read_head(int c, char *req, size_t size)
{
	struct pollfd p = { .fd = c, .events = POLLIN };
	size_t have = 0;
	ssize_t got;

	req[0] = '\0';
	while (!strstr(req, "\r\n\r\n")) {
		if (have + 1 >= size || poll(&p, 1, 5000) != 1)
			return -1;
		got = read(c, req + have, size - 1 - have);
		if (got <= 0)
			return -1;
		have += (size_t)got;
		req[have] = '\0';
	}
	return 0;
}

#define DOC "GET /api/v1/openapi.json "
#define FILES_PAGE "GET /api/v1/speech-services/files?"
#define ME "GET /api/v1/speech-services/users/me "

static void *fake_serve(void *arg)
{
	static const char nf[] = "{\"status_code\":404,\"error_type\":"
				 "\"not_found\",\"message\":\"no such "
				 "endpoint\"}";
	struct fake *f = arg;
	struct pollfd p = { .fd = f->fd, .events = POLLIN };
	char req[4096];
	size_t used;
	int c;

	while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
		if (poll(&p, 1, 100) != 1 ||
		    (c = accept(f->fd, NULL, NULL)) < 0)
			continue;
		if (fake_read_head(c, req, sizeof(req))) {
			close(c);
			continue;
		}
		if (strstr(req, "\r\nExpect:"))
			__atomic_add_fetch(&f->expect, 1, __ATOMIC_SEQ_CST);
		req[strcspn(req, "\r")] = '\0';
		used = strlen(f->asked);
		snprintf(f->asked + used, sizeof(f->asked) - used, "%.200s\n",
			 req);
		if (!strncmp(req, DOC, strlen(DOC)))
			fake_answer(c, f->doc_status, f->doc);
		else if (f->me_status && !strncmp(req, ME, strlen(ME)))
			fake_answer(c, f->me_status, f->me);
		else if (f->page0 &&
			 !strncmp(req, FILES_PAGE, strlen(FILES_PAGE)) &&
			 strstr(req, "&page=0 "))
			fake_answer(c, 200, f->page0);
		else if (f->next &&
			 !strncmp(req, FILES_PAGE, strlen(FILES_PAGE)) &&
			 strstr(req, "&cursor=c1 "))
			fake_answer(c, 200, f->next);
		else if (!f->no_files &&
			 !strncmp(req, FILES_PAGE, strlen(FILES_PAGE)))
			fake_answer(c, 200,
				    "{\"files\":[],\"page\":0,\"size\":1,"
				    "\"totalElements\":0,\"totalPages\":0}");
		else
			fake_answer(c, 404, nf);
		close(c);
	}
	return NULL;
}

/*
 * The server's features at open: no OpenAPI document (404) is a server
 * of the seed's API only, checked without /healthz (no seed route); a
 * document that cannot be read or is none fails the open.
 */
static void test_features_of_the_document(void)
{
#define UPLOAD_PARAM(name)                                                     \
	"\"/api/v1/speech-services/files\":{\"post\":"                         \
	"{\"parameters\":[{\"name\":\"lazy\"},{\"name\":\"" name "\"}]}}"
#define ME_PATH ",\"/api/v1/speech-services/users/me\":{\"get\":{}}"
#define CONTENT_PUT(headers)                                                   \
	"\"/api/v1/speech-services/files/{id}/content\":{\"put\":"             \
	"{\"responses\":{\"200\":{\"headers\":" headers "}}}}"
#define ME_ANSWER "{\"id\":\"0F6E3A52-1C2B-4D3E-8F90-A1B2C3D4E5F6\"}"
	static const struct {
		int status;
		const char *doc;
		enum sfs_status want;
		int no_files;
		unsigned features;
		int me_status;
		const char *me;
		const char *msg; /* in the open's error */
	} cases[] = {
		{ 404, "{\"status_code\":404,\"error_type\":\"not_found\"}",
		  SFS_OK, 0, 0, 0, NULL, NULL },
		{ 200, "<html>not json</html>", SFS_IO, 0, 0, 0, NULL,
		  "OpenAPI" },
		{ 200, "{\"openapi\":\"3.1.0\"}", SFS_IO, 0, 0, 0, NULL,
		  "OpenAPI" },
		{ 500, "{\"status_code\":500,\"error_type\":\"internal\"}",
		  SFS_IO, 0, 0, 0, NULL, "OpenAPI" },
		{ 503, "{\"status_code\":503,\"error_type\":\"x\"}",
		  SFS_UNAVAILABLE, 0, 0, 0, NULL, "OpenAPI" },
		/* no seed API there at all: not taken for a seed-only one */
		{ 404, "{\"status_code\":404}", SFS_NOT_FOUND, 1, 0, 0, NULL,
		  NULL },
		/* ids derived from a key: the upload's idKey and the user's
		 * id, which the open asks for (kept lowercase) */
		{ 200, "{\"paths\":{" UPLOAD_PARAM("idKey") ME_PATH "}}",
		  SFS_OK, 0, SFS_REMOTE_ID_KEY, 200, ME_ANSWER, NULL },
		/* the earlier form (?id=, the file's own id): not used */
		{ 200, "{\"paths\":{" UPLOAD_PARAM("id") ME_PATH "}}", SFS_OK,
		  0, 0, 200, ME_ANSWER, NULL },
		/* no way to learn the user's id: not used */
		{ 200, "{\"paths\":{" UPLOAD_PARAM("idKey") "}}", SFS_OK, 0, 0,
		  200, ME_ANSWER, NULL },
		/* the user's id not told: the open fails, as for the doc */
		{ 200, "{\"paths\":{" UPLOAD_PARAM("idKey") ME_PATH "}}",
		  SFS_UNAVAILABLE, 0, 0, 503, "{\"status_code\":503}",
		  "users/me" },
		{ 200, "{\"paths\":{" UPLOAD_PARAM("idKey") ME_PATH "}}",
		  SFS_IO, 0, 0, 200, "{\"id\":\"nope\"}", "users/me" },
		{ 200,
		  "{\"paths\":{\"/api/v1/speech-services/files\":{\"post\":"
		  "{\"parameters\":[{\"name\":\"lazy\"}]},"
		  "\"get\":{\"parameters\":[{\"name\":\"idKey\"}]}}" ME_PATH
		  "}}",
		  SFS_OK, 0, 0, 200, ME_ANSWER, NULL },
		/* the CRC32C of what an upload got, said where PUT …/content
		 * answers */
		{ 200,
		  "{\"paths\":{" CONTENT_PUT(
			  "{\"X-Speechfs-Content-Crc32c\":{}}") "}}",
		  SFS_OK, 0, SFS_REMOTE_CONTENT | SFS_REMOTE_CRC32C, 0, NULL,
		  NULL },
		{ 200, "{\"paths\":{" CONTENT_PUT("{\"ETag\":{}}") "}}", SFS_OK,
		  0, SFS_REMOTE_CONTENT, 0, NULL, NULL },
		/* keepDirs, said on DELETE /files/{id} (not elsewhere) */
		{ 200,
		  "{\"paths\":{\"/api/v1/speech-services/files/{id}\":"
		  "{\"delete\":{\"parameters\":[{\"name\":\"purge\"},"
		  "{\"name\":\"keepDirs\"}]}}}}",
		  SFS_OK, 0, SFS_REMOTE_KEEP_DIRS, 0, NULL, NULL },
		{ 200,
		  "{\"paths\":{\"/api/v1/speech-services/files/{id}\":"
		  "{\"patch\":{\"parameters\":[{\"name\":\"keepDirs\"}]}}}}",
		  SFS_OK, 0, 0, 0, NULL, NULL },
	};
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct sfs_remote *r;
	struct sfs_err e;
	char url[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f = { .doc_status = cases[i].status,
				  .doc = cases[i].doc,
				  .no_files = cases[i].no_files,
				  .me_status = cases[i].me_status,
				  .me = cases[i].me };
		pthread_t t;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = 0;
		f.fd = socket(AF_INET, SOCK_STREAM, 0);
		REQUIRE(f.fd >= 0 &&
			!bind(f.fd, (struct sockaddr *)&sa, sizeof(sa)) &&
			!listen(f.fd, 8) &&
			!getsockname(f.fd, (struct sockaddr *)&sa, &len));
		snprintf(url, sizeof(url), "http://127.0.0.1:%d",
			 ntohs(sa.sin_port));
		REQUIRE(pthread_create(&t, NULL, fake_serve, &f) == 0);
		r = NULL;
		sfs_err_init(&e);
		CHECK_ST(sfs_remote_open(url, "sfs_key", 5, &r, &e),
			 cases[i].want);
		if (cases[i].want == SFS_OK) {
			CHECK(r && sfs_remote_features(r) == cases[i].features);
			CHECK(r && !strcmp(sfs_remote_user_id(r),
					   cases[i].features & SFS_REMOTE_ID_KEY
						   ? "0f6e3a52-1c2b-4d3e-8f90-"
						     "a1b2c3d4e5f6"
						   : ""));
		} else if (cases[i].no_files) {
			CHECK(r == NULL && e.message[0]);
		} else {
			CHECK(r == NULL && strstr(e.message, cases[i].msg));
		}
		sfs_remote_close(r);
		__atomic_store_n(&f.stop, 1, __ATOMIC_SEQ_CST);
		pthread_join(t, NULL);
		close(f.fd);
		CHECK(strstr(f.asked, "GET /api/v1/speech-services/files?") &&
		      !strstr(f.asked, "/healthz"));
		/* the document is asked only of a server that has the seed's */
		CHECK((strstr(f.asked, "openapi") == NULL) ==
		      cases[i].no_files);
	}
}

/* A stand-in server of f on a port of 127.0.0.1; its URL into url. */
static void fake_start(struct fake *f, pthread_t *t, char *url, size_t size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(f->fd >= 0 &&
		!bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)) &&
		!listen(f->fd, 8) &&
		!getsockname(f->fd, (struct sockaddr *)&sa, &len));
	snprintf(url, size, "http://127.0.0.1:%d", ntohs(sa.sin_port));
	REQUIRE(pthread_create(t, NULL, fake_serve, f) == 0);
}

static void fake_stop(struct fake *f, pthread_t t)
{
	__atomic_store_n(&f->stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(t, NULL);
	close(f->fd);
}

/*
 * Open the store of the fake at url (its block cache in dir/cache): the
 * open's status, e filled.
 */
static enum sfs_status fake_open(const char *url, const char *dir,
				 struct sfs_store **rs, struct sfs_err *e)
{
	struct sfs_remote_opts o = { 0 };
	char cache[PATH_MAX];

	snprintf(cache, sizeof(cache), "%s/cache", dir);
	o.url = url;
	o.api_key = "sfs_key";
	o.timeout_s = 5;
	o.cache_dir = cache;
	o.cache_bytes = -1;
	sfs_err_init(e);
	return sfs_store_open_url(&o, rs, e);
}

/*
 * A small body goes with its head: no "Expect: 100-continue", whose
 * "100 Continue" would cost a round trip more per close of a small
 * file; a large one (1 MiB and more) still waits for the server's word.
 */
static void test_small_bodies_go_with_their_head(void)
{
	static const int64_t sizes[] = { 1,	   1024,
					 64 << 10, (1 << 20) - 1,
					 1 << 20,  3 << 20 };
	struct fake f = { .doc_status = 200,
			  .doc = "{\"paths\":{\"/api/v1/speech-services/"
				 "files/{id}/content\":{\"put\":{}}}}" };
	struct sfs_remote *r = NULL;
	char url[64], path[PATH_MAX], *dir = th_tmpdir();
	struct sfs_file out;
	enum sfs_status st;
	pthread_t t;
	size_t i;
	int fd;

	fake_start(&f, &t, url, sizeof(url));
	REQUIRE_ST(sfs_remote_open(url, "sfs_key", 5, &r, NULL), SFS_OK);
	CHECK(sfs_remote_features(r) == SFS_REMOTE_CONTENT);
	snprintf(path, sizeof(path), "%s/body", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		REQUIRE(ftruncate(fd, (off_t)sizes[i]) == 0);
		__atomic_store_n(&f.expect, 0, __ATOMIC_SEQ_CST);
		/* the stand-in answers 404 (or cuts the body off) */
		st = sfs_remote_set_content(
			r, "00000000-0000-4000-8000-000000000001", fd, NULL, 0,
			&out, NULL);
		CHECK(st == SFS_NOT_FOUND || st == SFS_UNAVAILABLE);
		sfs_file_release(&out);
		CHECK(__atomic_load_n(&f.expect, __ATOMIC_SEQ_CST) ==
		      (sizes[i] >= (1 << 20)));
	}
	close(fd);
	sfs_remote_close(r);
	fake_stop(&f, t);
	CHECK(strstr(f.asked, "PUT /api/v1/speech-services/files/") != NULL);
	th_rmrf(dir);
}

/* An endless body of zeros; how many bytes it gave. */
struct endless {
	int64_t given;
};

static ssize_t endless_source(void *arg, char *buf, size_t len)
{
	struct endless *x = arg;

	memset(buf, 0, len);
	__atomic_add_fetch(&x->given, (int64_t)len, __ATOMIC_SEQ_CST);
	return (ssize_t)len;
}

struct cut {
	struct sfs_remote *r;
	struct endless body;
	int cancel;
	int done;
	enum sfs_status st;
};

static void *cut_request(void *arg)
{
	struct cut *c = arg;
	struct sfs_buf b = SFS_BUF_INIT(1 << 20);
	struct sfsi_remote_req q = {
		.method = "PUT",
		.path = "/api/v1/speech-services/files/"
			"00000000-0000-4000-8000-000000000001/content",
		.fd = -1,
		.source = endless_source,
		.source_arg = &c->body,
		.cancel = &c->cancel,
	};

	c->st = sfsi_remote_request(c->r, &q, &b, NULL);
	sfs_buf_release(&b);
	__atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * A request cancelled while libcurl waits for its socket (a server that
 * reads nothing: its buffers full), not in the body's source, ends then,
 * not when the stall reaches the connection's timeout (600 s here): the
 * progress callback reads the cancel (review s14 finding 2).
 */
static void test_cancel_reaches_a_stalled_transfer(void)
{
	struct fake f = { .doc_status = 404,
			  .doc = "{\"status_code\":404,"
				 "\"error_type\":\"not_found\"}" };
	struct cut c = { 0 };
	int64_t t0, seen[11];
	char url[64];
	pthread_t t, th;
	int i, started;

	fake_start(&f, &t, url, sizeof(url));
	REQUIRE_ST(sfs_remote_open(url, "sfs_key", 600, &c.r, NULL), SFS_OK);
	/* the stand-in stops accepting; its socket still takes connections */
	__atomic_store_n(&f.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(t, NULL);
	started = !pthread_create(&th, NULL, cut_request, &c);
	REQUIRE(started);
	/* the body stopped: the source is not called for 10 looks running */
	t0 = sfs_mono_ns();
	for (i = 0;; i++) {
		seen[i % 11] = __atomic_load_n(&c.body.given, __ATOMIC_SEQ_CST);
		if ((i >= 10 && seen[i % 11] > 0 &&
		     seen[i % 11] == seen[(i + 1) % 11]) ||
		    sfs_mono_ns() - t0 > 60000000000LL)
			break;
		usleep(20000);
	}
	CHECK(seen[i % 11] > 0 && seen[i % 11] == seen[(i + 1) % 11]);
	CHECK(!__atomic_load_n(&c.done, __ATOMIC_SEQ_CST));
	__atomic_store_n(&c.cancel, 1, __ATOMIC_RELAXED);
	t0 = sfs_mono_ns();
	while (!__atomic_load_n(&c.done, __ATOMIC_SEQ_CST) &&
	       sfs_mono_ns() - t0 < 60000000000LL)
		usleep(10000);
	CHECK(__atomic_load_n(&c.done, __ATOMIC_SEQ_CST));
	/* ended in any case, so that the thread can be joined */
	sfsi_remote_abort(c.r);
	pthread_join(th, NULL);
	CHECK_ST(c.st, SFS_UNAVAILABLE);
	sfs_remote_close(c.r);
	close(f.fd);
}

/*
 * A listing's "total" is the server's word only: one that would wrap the
 * list's size (a buggy or hostile server) must not overrun it, and an
 * honest but huge one must not fail the listing by one huge allocation.
 * Either way the files the pages hold are listed. (The store's open
 * lists "/" of a seed-only server, whose directories are its files'.)
 */
static void test_listing_total_is_a_hint(void)
{
	/* its size in bytes wraps to less than two files' */
	int64_t wraps = (int64_t)(SIZE_MAX / sizeof(struct sfs_file)) + 2;
	int64_t totals[] = { wraps, (int64_t)1 << 58, 1000000000000LL, 3 };
	size_t i;

	for (i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		struct fake f = { .doc_status = 404,
				  .doc = "{\"status_code\":404}" };
		struct sfs_store *rs = NULL;
		struct sfs_dir_info di;
		char url[64], body[1024], *dir = th_tmpdir();
		struct sfs_err e;
		pthread_t t;

		snprintf(body, sizeof(body),
			 "{\"files\":["
			 "{\"id\":\"f1\",\"name\":\"a\",\"path\":\"/\"},"
			 "{\"id\":\"f2\",\"name\":\"b\",\"path\":\"/d/\"},"
			 "{\"id\":\"f3\",\"name\":\"c\",\"path\":\"/\"}"
			 "],\"size\":3,\"total\":%lld}",
			 (long long)totals[i]);
		f.page0 = body;
		fake_start(&f, &t, url, sizeof(url));
		CHECK_ST(fake_open(url, dir, &rs, &e), SFS_OK);
		if (rs) {
			CHECK_ST(sfs_dir_stat(rs, NULL, "/", &di, &e), SFS_OK);
			CHECK(di.nfiles == 3 && di.nsub == 1);
		}
		sfs_store_close(rs);
		fake_stop(&f, t);
		th_rmrf(dir);
		/* a short page asks for the next; an empty one ends it */
		CHECK(strstr(f.asked, "&page=0 ") &&
		      (totals[i] == 3) == !strstr(f.asked, "&page=1 "));
	}
}

static int count_of(const char *s, const char *what)
{
	int n = 0;

	while ((s = strstr(s, what))) {
		n++;
		s += strlen(what);
	}
	return n;
}

/*
 * A server that answers a nextCursor is followed by it to the page whose
 * nextCursor is null, whatever its total says (a cursor's total is the
 * one its walk began with; files made since come after it); a cursor
 * given again, or one that cannot go into a URL, fails the listing
 * instead of looping or being sent.
 */
static void test_listing_follows_the_cursor(void)
{
	static const char page0[] =
		"{\"files\":["
		"{\"id\":\"f1\",\"name\":\"a\",\"path\":\"/\"},"
		"{\"id\":\"f2\",\"name\":\"b\",\"path\":\"/\"}"
		"],\"size\":2,\"total\":2,\"nextCursor\":\"c1\"}";
	static const struct {
		const char *next;
		enum sfs_status st;
		int64_t nfiles;
	} cases[] = {
		{ "{\"files\":[{\"id\":\"f3\",\"name\":\"c\","
		  "\"path\":\"/\"}],\"size\":1,\"total\":2,"
		  "\"nextCursor\":null}",
		  SFS_OK, 3 },
		{ "{\"files\":[{\"id\":\"f3\",\"name\":\"c\","
		  "\"path\":\"/\"}],\"size\":1,\"total\":2,"
		  "\"nextCursor\":\"c1\"}",
		  SFS_IO, 0 },
		{ "{\"files\":[{\"id\":\"f3\",\"name\":\"c\","
		  "\"path\":\"/\"}],\"size\":1,\"total\":2,"
		  "\"nextCursor\":\"c2 HTTP/1.1\\r\\nX: y\"}",
		  SFS_IO, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f = { .doc_status = 404,
				  .doc = "{\"status_code\":404}",
				  .page0 = page0,
				  .next = cases[i].next };
		struct sfs_store *rs = NULL;
		struct sfs_dir_info di;
		char url[64], *dir = th_tmpdir();
		struct sfs_err e;
		pthread_t t;

		fake_start(&f, &t, url, sizeof(url));
		/* the open lists the root (a server of the seed's API only) */
		CHECK_ST(fake_open(url, dir, &rs, &e), cases[i].st);
		if (rs) {
			sfs_err_init(&e);
			CHECK_ST(sfs_dir_stat(rs, NULL, "/", &di, &e), SFS_OK);
			CHECK(di.nfiles == cases[i].nfiles);
		}
		sfs_store_close(rs);
		fake_stop(&f, t);
		th_rmrf(dir);
		/* each listing: page 0, then by the cursor, never by page 1 */
		CHECK(count_of(f.asked, "&page=0 ") >= 1 &&
		      count_of(f.asked, "&page=0 ") ==
			      count_of(f.asked, "&cursor=c1 ") &&
		      !strstr(f.asked, "&page=1 ") &&
		      !strstr(f.asked, "cursor=c2"));
	}
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_status_of_answers);
	RUN(test_base64);
	RUN(test_features_of_the_document);
	RUN(test_listing_total_is_a_hint);
	RUN(test_listing_follows_the_cursor);
	RUN(test_small_bodies_go_with_their_head);
	RUN(test_cancel_reaches_a_stalled_transfer);
	RUN(test_against_a_daemon);
	RUN(test_store_open_url);
	RUN(test_slow_form_upload);
	RUN(test_seed_content);
	RUN(test_seed_rename);
	RUN(test_keep_dirs);
	return th_report();
}
