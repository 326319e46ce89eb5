/*
 * The media jobs through the core, end to end: uploads get listening MP3s
 * that real decoders accept, bad input fails with a reason, URI imports
 * from a local HTTP server complete (or fail as they should), cancelled
 * jobs leave nothing behind, and a job whose process died is resumed.
 * Through the public API, but for one look into STORE/blobs/ to see that
 * a cancelled job left no file behind, and into the peaks table (to make
 * a store whose listening audio predates peaks, and to see them go).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <math.h>
#include <time.h>
#include "speechfs/audio.h"
#include "speechfs/auth.h"
#include "speechfs/blob.h"
#include "speechfs/file.h"
#include "speechfs/job.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "fixture.h"
#include "testhelp.h"

static char *srcdir; /* audio made once for all tests */
static pid_t http_pid = -1;
static int http_port;

struct env {
	char *tmp;
	struct sfs_store *s;
	struct sfs_actor a;
	struct sfs_config cfg;
};

static double probe_duration(const char *path)
{
	char cmd[1024], out[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "ffprobe -v error -show_entries format=duration"
		 " -of default=nw=1:nk=1 '%s'",
		 path);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	pclose(p);
	return out[0] ? strtod(out, NULL) : -1;
}

static int env_open(struct env *v, int workers)
{
	char tid[SFS_ID_SIZE], uid[SFS_ID_SIZE];
	struct sfs_err e;

	sfs_err_init(&e);
	if (!v->tmp) {
		v->tmp = th_tmpdir();
		if (sfs_store_init(v->tmp, &e))
			return -1;
		if (sfs_store_open(v->tmp, &v->cfg, &v->s, &e))
			return -1;
		if (sfs_tenant_create(v->s, "t", 0, 0, tid, &e) ||
		    sfs_user_create(v->s, tid, "u", -1, uid, &e) ||
		    sfs_auth_user(v->s, uid, SFS_SCOPE_ALL, &v->a, &e))
			return -1;
	} else if (sfs_store_open(v->tmp, &v->cfg, &v->s, &e)) {
		return -1;
	}
	if (workers && sfs_workers_start(v->s, workers, &e))
		return -1;
	return 0;
}

static void env_init(struct env *v)
{
	memset(v, 0, sizeof(*v));
	sfs_config_init(&v->cfg);
	if (th_blob_config(&v->cfg)) /* SFS_BLOB_BACKEND */
		fprintf(stderr, "cannot configure the blob backend\n");
}

static void env_close(struct env *v)
{
	sfs_store_close(v->s);
	v->s = NULL;
	th_rmrf(v->tmp);
	v->tmp = NULL;
}

static int upload(struct env *v, const char *path, const char *name,
		  int listening, struct sfs_file *out)
{
	struct sfs_file_spec sp = { .name = name,
				    .filename = name,
				    .listening = listening };
	struct sfs_stage *st = NULL;
	struct sfs_err e;
	int fd, rc;

	sfs_err_init(&e);
	fd = open(path, O_RDONLY);
	if (fd < 0 || sfs_stage_new(v->s, &st, &e) ||
	    sfs_stage_copy_fd(st, fd, &e)) {
		if (fd >= 0)
			close(fd);
		sfs_stage_free(st);
		return -1;
	}
	close(fd);
	rc = sfs_file_create(v->s, &v->a, &sp, st, out, &e) ? -1 : 0;
	if (rc)
		fprintf(stderr, "upload: %s\n", e.message);
	sfs_stage_free(st);
	return rc;
}

/*
 * Poll file id until done(f) says its job settled (not tfx_wait_for:
 * each look reads the file again); the file is left in *f. The deadline
 * only catches a hang: a 20-minute encode under valgrind on a loaded
 * machine takes minutes.
 */
static int wait_settled(struct env *v, const char *id, struct sfs_file *f,
			int (*done)(const struct sfs_file *))
{
	char own[SFS_ID_SIZE];
	struct sfs_err e;
	int i;

	snprintf(own, sizeof(own), "%s", id); /* id may point into *f */
	for (i = 0; i < 6000; i++) {
		sfs_err_init(&e);
		sfs_file_release(f);
		if (sfs_file_get(v->s, &v->a, own, f, &e))
			return -1;
		if (done(f))
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

static int la_settled(const struct sfs_file *f)
{
	return f->la.status == SFS_JS_COMPLETED ||
	       f->la.status == SFS_JS_FAILED;
}

static int ingest_settled(const struct sfs_file *f)
{
	return (f->ingestion == SFS_JS_COMPLETED && la_settled(f)) ||
	       f->ingestion == SFS_JS_FAILED;
}

/* Copy the listening MP3 out and check it with real decoders. */
static void check_mp3(struct env *v, const char *id, double want)
{
	char path[512], buf[65536];
	struct sfs_err e;
	struct sfs_blob *b = NULL;
	int64_t off;
	size_t n;
	int out;
	double got;

	sfs_err_init(&e);
	REQUIRE_ST(sfs_file_open(v->s, &v->a, id, SFS_CONTENT_LISTENING, 0, &b,
				 NULL, &e),
		   SFS_OK);
	snprintf(path, sizeof(path), "%s/out.mp3", v->tmp);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	REQUIRE(out >= 0);
	for (off = 0; !sfs_blob_pread(b, buf, sizeof(buf), off, &n, NULL) && n;
	     off += (int64_t)n)
		CHECK(write(out, buf, n) == (ssize_t)n);
	close(out);
	sfs_blob_close(b);
	got = probe_duration(path);
	CHECK(got > 0 && fabs(got - want) < 0.1);
	if (!(got > 0 && fabs(got - want) < 0.1))
		fprintf(stderr, "  mp3 duration %.3f, source %.3f\n", got,
			want);
	CHECK(tfx_run("mpg123 -q -t '%s' 2>/dev/null", path) == 0);
}

static void t_upload_gets_listening_audio(void)
{
	struct sfs_file f;
	struct env v;
	char path[512];

	env_init(&v);
	sfs_file_init(&f);
	REQUIRE(env_open(&v, 1) == 0);
	snprintf(path, sizeof(path), "%s/speech.wav", srcdir);
	REQUIRE(upload(&v, path, "speech.wav", 1, &f) == 0);
	CHECK(f.la.status == SFS_JS_PENDING ||
	      f.la.status == SFS_JS_PROCESSING ||
	      f.la.status == SFS_JS_COMPLETED);
	CHECK(f.mime && !strcmp(f.mime, "audio/wav"));
	CHECK(f.duration > 0.5);
	REQUIRE(wait_settled(&v, f.id, &f, la_settled) == 0);
	CHECK(f.la.status == SFS_JS_COMPLETED);
	CHECK(f.la.size > 0 && f.la.created_at > 0);
	if (f.la.status == SFS_JS_COMPLETED)
		check_mp3(&v, f.id, f.duration);
	sfs_file_release(&f);
	env_close(&v);
}

/* A stage of a file's bytes, NULL on failure. */
static struct sfs_stage *stage_of(struct env *v, const char *path)
{
	struct sfs_stage *st = NULL;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || sfs_stage_new(v->s, &st, NULL) ||
	    sfs_stage_copy_fd(st, fd, NULL)) {
		sfs_stage_free(st);
		st = NULL;
	}
	if (fd >= 0)
		close(fd);
	return st;
}

static void t_peaks_beside_listening_audio(void)
{
	struct sfs_peaks *p = malloc(sizeof(*p));
	struct sfs_stage *st = NULL;
	char sha[65], path[512], tid[SFS_ID_SIZE];
	struct sfs_actor other;
	struct sfs_file f;
	struct sfs_err e;
	struct env v;
	size_t i, loud = 0;

	env_init(&v);
	sfs_file_init(&f);
	REQUIRE(p);
	REQUIRE(env_open(&v, 1) == 0);
	snprintf(path, sizeof(path), "%s/speech.wav", srcdir);
	REQUIRE(upload(&v, path, "speech.wav", 1, &f) == 0);
	REQUIRE(wait_settled(&v, f.id, &f, la_settled) == 0);
	REQUIRE(f.la.status == SFS_JS_COMPLETED);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_listening_peaks(v.s, &v.a, f.id, p, sha, &e), SFS_OK);
	CHECK(strcmp(sha, f.la.sha256) == 0);
	CHECK(p->frames_per_peak == p->sample_rate / 100); /* 10 ms */
	CHECK(fabs((double)p->frames / p->sample_rate - f.duration) < 0.05);
	CHECK(p->n == (size_t)((p->frames + p->frames_per_peak - 1) /
			       p->frames_per_peak));
	for (i = 0; i < p->n; i++)
		loud += p->v[i] > 50;
	CHECK(loud > p->n / 4); /* speech, not silence */

	/* nobody else sees them: another tenant's user finds no file */
	REQUIRE(tfx_tenant(v.s, "other", 0, 0, tid) == 0);
	REQUIRE(tfx_user(v.s, tid, "eve", NULL, &other) == 0);
	CHECK_ST(sfs_listening_peaks(v.s, &other, f.id, p, NULL, &e),
		 SFS_NOT_FOUND);

	/* listening audio made before peaks were kept: none, and why */
	REQUIRE(tfx_sql(v.s, "DELETE FROM peaks") == 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_listening_peaks(v.s, &v.a, f.id, p, NULL, &e),
		 SFS_NOT_FOUND);
	CHECK(strcmp(sfs_err_type(&e), "peaks_not_found") == 0);
	/* made again (a new content version): peaks come with it */
	st = stage_of(&v, path);
	REQUIRE(st);
	REQUIRE_ST(sfs_file_set_content(v.s, &v.a, f.id, st, 0, NULL, &e),
		   SFS_OK);
	REQUIRE(wait_settled(&v, f.id, &f, la_settled) == 0);
	CHECK_ST(sfs_listening_peaks(v.s, &v.a, f.id, p, sha, &e), SFS_OK);
	CHECK(strcmp(sha, f.la.sha256) == 0 && p->n > 0);

	/* the listening audio purged: gone, and its peaks with it */
	REQUIRE_ST(sfs_listening_delete(v.s, &v.a, f.id, 1, &e), SFS_OK);
	sfs_err_init(&e);
	CHECK_ST(sfs_listening_peaks(v.s, &v.a, f.id, p, NULL, &e), SFS_GONE);
	CHECK(tfx_sql_int(v.s, "SELECT count(*) FROM peaks") == 0);
	sfs_stage_free(st);
	sfs_file_release(&f);
	free(p);
	env_close(&v);
}

static void t_not_audio_fails_with_reason(void)
{
	struct sfs_file f;
	struct env v;
	char path[512];

	env_init(&v);
	sfs_file_init(&f);
	REQUIRE(env_open(&v, 1) == 0);
	snprintf(path, sizeof(path), "%s/notes.txt", srcdir);
	REQUIRE(upload(&v, path, "notes.txt", 1, &f) == 0);
	CHECK(f.duration < 0);
	REQUIRE(wait_settled(&v, f.id, &f, la_settled) == 0);
	CHECK(f.la.status == SFS_JS_FAILED);
	CHECK(f.la.error && strstr(f.la.error, "unsupported"));
	sfs_file_release(&f);
	env_close(&v);
}

static int64_t listening_jobs[SFS_JOB_CANCELLED + 1];

static void count_listening(void *arg, enum sfs_job_kind kind,
			    enum sfs_job_state st, int64_t n)
{
	(void)arg;
	if (kind == SFS_JOB_LISTENING && st >= 0 && st <= SFS_JOB_CANCELLED)
		listening_jobs[st] = n;
}

/*
 * Wait (60 s at most) until n listening jobs are in state st: a job's row
 * reaches its end in the worker's commit after the file's status does.
 */
static int wait_jobs(struct env *v, enum sfs_job_state st, int64_t n)
{
	int i;

	for (i = 0; i < 600; i++) {
		memset(listening_jobs, 0, sizeof(listening_jobs));
		if (sfs_job_stats(v->s, count_listening, NULL, NULL))
			return -1;
		if (listening_jobs[st] == n)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

/*
 * A purge cancels the file's pending generation: no worker started after
 * it makes an MP3, and no blob is left. "Nothing happened" is shown by a
 * later job run by the same single worker (jobs are claimed in the order
 * they were queued), not by waiting a while.
 */
static void t_delete_cancels_and_leaves_nothing(void)
{
	struct sfs_file f, later;
	struct sfs_err e;
	struct env v;
	char path[512], id[SFS_ID_SIZE];

	env_init(&v);
	sfs_file_init(&f);
	sfs_file_init(&later);
	sfs_err_init(&e);
	REQUIRE(env_open(&v, 0) == 0); /* no workers: the job waits */
	snprintf(path, sizeof(path), "%s/speech.wav", srcdir);
	REQUIRE(upload(&v, path, "speech.wav", 1, &f) == 0);
	CHECK(f.la.status == SFS_JS_PENDING);
	snprintf(id, sizeof(id), "%s", f.id);
	REQUIRE_ST(sfs_file_delete(v.s, &v.a, id, 1, &e), SFS_OK);
	memset(listening_jobs, 0, sizeof(listening_jobs));
	REQUIRE_ST(sfs_job_stats(v.s, count_listening, NULL, &e), SFS_OK);
	CHECK(listening_jobs[SFS_JOB_PENDING] == 0);
	CHECK(listening_jobs[SFS_JOB_CANCELLED] == 1);

	/* a later job, then the worker: when it is done, so is the first */
	snprintf(path, sizeof(path), "%s/notes.txt", srcdir);
	REQUIRE(upload(&v, path, "notes.txt", 1, &later) == 0);
	REQUIRE_ST(sfs_workers_start(v.s, 1, &e), SFS_OK);
	REQUIRE(wait_settled(&v, later.id, &later, la_settled) == 0);
	sfs_file_release(&f);
	REQUIRE_ST(sfs_file_get(v.s, &v.a, id, &f, &e), SFS_OK);
	CHECK(f.purged && f.la.status != SFS_JS_COMPLETED);
	CHECK(wait_jobs(&v, SFS_JOB_FAILED, 1) == 0); /* the text's */
	CHECK(listening_jobs[SFS_JOB_CANCELLED] == 1);
	CHECK(listening_jobs[SFS_JOB_DONE] == 0);
	/* the only blob left is the later file's text: nothing of speech */
	CHECK(tfx_sql_int(v.s, "SELECT count(*) FROM blob") == 1);
	/* and the backend keeps no bytes without a row */
	CHECK(tfx_blob_files(v.s) ==
	      tfx_sql_int(v.s, "SELECT count(*) FROM blob WHERE data IS NULL"));
	sfs_file_release(&later);
	sfs_file_release(&f);
	env_close(&v);
}

static void t_resume_after_crash_mid_job(void)
{
	struct sfs_file f;
	struct sfs_err e;
	struct env v;
	char path[512], id[SFS_ID_SIZE];
	pid_t pid;
	int status = 0;

	env_init(&v);
	v.cfg.job_lease_seconds = 1;
	sfs_file_init(&f);
	sfs_err_init(&e);
	REQUIRE(env_open(&v, 0) == 0);
	snprintf(path, sizeof(path), "%s/speech.wav", srcdir);
	REQUIRE(upload(&v, path, "speech.wav", 1, &f) == 0);
	snprintf(id, sizeof(id), "%s", f.id);
	sfs_store_close(v.s);
	v.s = NULL;

	pid = fork();
	if (pid == 0) {
		struct sfs_store *s;

		setenv("SFS_CRASH_AT", "listening-encoded", 1);
		if (sfs_store_open(v.tmp, &v.cfg, &s, &e) ||
		    sfs_workers_start(s, 1, &e))
			_exit(2);
		sleep(60);
		_exit(3); /* the crash point was never reached */
	}
	REQUIRE(pid > 0);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 77);

	REQUIRE(env_open(&v, 1) == 0);
	REQUIRE(wait_settled(&v, id, &f, la_settled) == 0);
	CHECK(f.la.status == SFS_JS_COMPLETED);
	sfs_file_release(&f);
	env_close(&v);
}

/* A 20-minute recording: flat memory, and a duration players can trust. */
static void t_twenty_minutes(void)
{
	struct sfs_file f;
	struct env v;
	char path[512];

	env_init(&v);
	sfs_file_init(&f);
	REQUIRE(env_open(&v, 1) == 0);
	snprintf(path, sizeof(path), "%s/long.wav", srcdir);
	REQUIRE(tfx_run("sox '%s/speech.wav' -r 16000 '%s' repeat - trim 0 "
			"1200",
			srcdir, path) == 0);
	REQUIRE(upload(&v, path, "long.wav", 1, &f) == 0);
	CHECK(fabs(f.duration - 1200.0) < 0.01);
	REQUIRE(wait_settled(&v, f.id, &f, la_settled) == 0);
	CHECK(f.la.status == SFS_JS_COMPLETED);
	if (f.la.status == SFS_JS_COMPLETED)
		check_mp3(&v, f.id, f.duration);
	unlink(path);
	sfs_file_release(&f);
	env_close(&v);
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int start_http(void)
{
	char port[16];
	int i;

	http_port = free_port();
	snprintf(port, sizeof(port), "%d", http_port);
	http_pid = fork();
	if (http_pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execlp("python3", "python3", "-m", "http.server", port,
		       "--bind", "127.0.0.1", "--directory", srcdir,
		       (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100; i++) {
		if (tfx_run("curl -s -o /dev/null http://127.0.0.1:%d/",
			    http_port) == 0)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

static int import(struct env *v, const char *uri, struct sfs_file *out)
{
	struct sfs_file_spec sp = { .name = "imported",
				    .uri = uri,
				    .listening = 1 };
	struct sfs_err e;

	sfs_err_init(&e);
	return sfs_file_create(v->s, &v->a, &sp, NULL, out, &e) ? -1 : 0;
}

static void t_import_from_http(void)
{
	struct sfs_file f;
	struct env v;
	char uri[256], sha[65], cmd[700];
	FILE *p;

	env_init(&v);
	sfs_file_init(&f);
	snprintf(v.cfg.import_allow, sizeof(v.cfg.import_allow),
		 "127.0.0.1/32");
	REQUIRE(env_open(&v, 1) == 0);
	snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/speech.wav", http_port);
	REQUIRE(import(&v, uri, &f) == 0);
	CHECK(f.ingestion == SFS_JS_PENDING ||
	      f.ingestion == SFS_JS_PROCESSING ||
	      f.ingestion == SFS_JS_COMPLETED);
	REQUIRE(wait_settled(&v, f.id, &f, ingest_settled) == 0);
	CHECK(f.ingestion == SFS_JS_COMPLETED);
	CHECK(f.la.status == SFS_JS_COMPLETED);
	CHECK(f.duration > 0.5 && f.mime && !strcmp(f.mime, "audio/wav"));
	snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -r '%s/speech.wav'",
		 srcdir);
	p = popen(cmd, "r");
	REQUIRE(p != NULL);
	CHECK(fscanf(p, "%64s", sha) == 1);
	pclose(p);
	CHECK(!strcmp(sha, f.sha256));
	sfs_file_release(&f);
	env_close(&v);
}

static void t_import_failures(void)
{
	struct sfs_file f;
	struct env v;
	char uri[256];

	env_init(&v);
	sfs_file_init(&f);
	REQUIRE(env_open(&v, 1) == 0);
	/* without the allow-list, loopback is blocked */
	snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/speech.wav", http_port);
	REQUIRE(import(&v, uri, &f) == 0);
	REQUIRE(wait_settled(&v, f.id, &f, ingest_settled) == 0);
	CHECK(f.ingestion == SFS_JS_FAILED);
	CHECK(f.ingest_error && strstr(f.ingest_error, "blocked"));
	CHECK(f.la.status != SFS_JS_COMPLETED);
	sfs_file_release(&f);
	sfs_store_close(v.s);
	v.s = NULL;

	snprintf(v.cfg.import_allow, sizeof(v.cfg.import_allow),
		 "127.0.0.1/32");
	REQUIRE(env_open(&v, 1) == 0);
	snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/missing.wav",
		 http_port);
	REQUIRE(import(&v, uri, &f) == 0);
	REQUIRE(wait_settled(&v, f.id, &f, ingest_settled) == 0);
	CHECK(f.ingestion == SFS_JS_FAILED);
	CHECK(f.ingest_error && strstr(f.ingest_error, "404"));
	sfs_file_release(&f);
	env_close(&v);
}

int main(void)
{
	if (th_blob_setup())
		return 1;
	srcdir = th_tmpdir();
	if (tfx_run("espeak-ng -s 160 -w '%s/speech.wav' 'This is a test of the"
		    " listening audio of speech f s. It has a few sentences so"
		    " that the recording lasts for a few seconds.'",
		    srcdir) ||
	    tfx_run("echo 'plain text, not audio' > '%s/notes.txt'", srcdir)) {
		fprintf(stderr, "cannot make test audio\n");
		return 2;
	}
	RUN(t_upload_gets_listening_audio);
	RUN(t_peaks_beside_listening_audio);
	RUN(t_not_audio_fails_with_reason);
	RUN(t_delete_cancels_and_leaves_nothing);
	RUN(t_resume_after_crash_mid_job);
	RUN(t_twenty_minutes);
	if (start_http() == 0) {
		RUN(t_import_from_http);
		RUN(t_import_failures);
	} else {
		fprintf(stderr, "cannot start the local HTTP server\n");
		th_failed++;
	}
	if (http_pid > 0) {
		kill(http_pid, SIGTERM);
		waitpid(http_pid, NULL, 0);
	}
	th_rmrf(srcdir);
	return th_report();
}
