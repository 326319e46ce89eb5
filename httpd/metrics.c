/*
 * Prometheus metrics of the daemon: requests by route and status, a
 * latency histogram, bytes in and out, the change feed's long polls, and
 * the jobs by kind and state (read from the store, so they include other
 * processes' workers).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "httpd.h"
#include "respcache.h"
#include "speechfs/job.h"
#include "speechfs/banned.h"

#define NSTATUS 600

static const double buckets_s[] = {
	0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10
};
#define NBUCKETS ((int)(sizeof(buckets_s) / sizeof(buckets_s[0])))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* [route + 1][status]: index 0 is "no route" */
static uint32_t requests[HTTPD_MAX_ROUTES + 1][NSTATUS];
static uint64_t hist[NBUCKETS + 1];
static double lat_sum;
static uint64_t lat_count;
static uint64_t bytes_in, bytes_out;

void metrics_record(int route_idx, unsigned status, int64_t ns, int64_t in,
		    int64_t out)
{
	double s = (double)ns / 1e9;
	int i;

	if (route_idx >= HTTPD_MAX_ROUTES)
		route_idx = -1;
	if (status >= NSTATUS)
		status = 0;
	pthread_mutex_lock(&lock);
	requests[route_idx + 1][status]++;
	for (i = 0; i < NBUCKETS && s > buckets_s[i]; i++)
		;
	hist[i]++;
	lat_sum += s;
	lat_count++;
	bytes_in += (uint64_t)(in > 0 ? in : 0);
	bytes_out += (uint64_t)(out > 0 ? out : 0);
	pthread_mutex_unlock(&lock);
}

static void job_line(void *arg, enum sfs_job_kind kind, enum sfs_job_state st,
		     int64_t n)
{
	struct sfs_buf *b = arg;

	if (sfs_buf_addf(
		    b, "speechfs_jobs{kind=\"%s\",state=\"%s\"} %" PRId64 "\n",
		    sfs_job_kind_name(kind), sfs_job_state_name(st), n))
		return;
}

/* The change feed's long polls: waiting now, and what the watcher did. */
static int changes_lines(struct sfs_buf *b)
{
	struct changes_counts c;

	changes_counts(&c);
	return sfs_buf_addf(
		b,
		"# HELP speechfs_http_changes_waiting Long polls of the change "
		"feed waiting for a change.\n"
		"# TYPE speechfs_http_changes_waiting gauge\n"
		"speechfs_http_changes_waiting %d\n"
		"# HELP speechfs_http_changes_looks_total Reads of the change "
		"sequence by the watcher of the waiting polls.\n"
		"# TYPE speechfs_http_changes_looks_total counter\n"
		"speechfs_http_changes_looks_total %" PRIu64 "\n"
		"# HELP speechfs_http_changes_resumed_total Waiting polls the "
		"watcher resumed (a change they had not seen, their time up, "
		"or the stop).\n"
		"# TYPE speechfs_http_changes_resumed_total counter\n"
		"speechfs_http_changes_resumed_total %" PRIu64 "\n"
		"# HELP speechfs_http_changes_skipped_own_total Times the "
		"watcher moved a waiting skipOwn poll's cursor past its own "
		"client's changes instead of resuming it.\n"
		"# TYPE speechfs_http_changes_skipped_own_total counter\n"
		"speechfs_http_changes_skipped_own_total %" PRIu64 "\n"
		"# HELP speechfs_http_changes_answered_total Change feed "
		"requests with a cursor answered, with changes or with none "
		"(a long poll's time up).\n"
		"# TYPE speechfs_http_changes_answered_total counter\n"
		"speechfs_http_changes_answered_total{result=\"changes\"} "
		"%" PRIu64 "\n"
		"speechfs_http_changes_answered_total{result=\"empty\"} "
		"%" PRIu64 "\n",
		changes_waiting(), c.looks, c.resumed, c.skipped_own,
		c.answered, c.answered_empty);
}

enum MHD_Result api_metrics(struct req *r)
{
	struct sfs_buf b = SFS_BUF_INIT(4 * 1024 * 1024);
	struct sfs_err e;
	uint64_t cum = 0, hits, misses;
	int i, st, fail = 0;

	sfs_err_init(&e);
	pthread_mutex_lock(&lock);
	fail |= sfs_buf_adds(
		&b,
		"# HELP speechfs_http_requests_total Requests answered, by "
		"route "
		"and status.\n# TYPE speechfs_http_requests_total counter\n");
	for (i = 0; i <= HTTPD_MAX_ROUTES; i++)
		for (st = 0; st < NSTATUS; st++)
			if (requests[i][st])
				fail |= sfs_buf_addf(
					&b,
					"speechfs_http_requests_total{"
					"route=\"%s\",status=\"%d\"} %u\n",
					httpd_route_name(i - 1), st,
					requests[i][st]);
	fail |= sfs_buf_adds(
		&b,
		"# HELP speechfs_http_request_duration_seconds Time from a "
		"request's first byte to its response's last.\n"
		"# TYPE speechfs_http_request_duration_seconds histogram\n");
	for (i = 0; i <= NBUCKETS; i++) {
		cum += hist[i];
		if (i < NBUCKETS)
			fail |= sfs_buf_addf(
				&b,
				"speechfs_http_request_duration_seconds_"
				"bucket{le=\"%g\"} %" PRIu64 "\n",
				buckets_s[i], cum);
		else
			fail |= sfs_buf_addf(
				&b,
				"speechfs_http_request_duration_seconds_"
				"bucket{le=\"+Inf\"} %" PRIu64 "\n",
				cum);
	}
	fail |= sfs_buf_addf(
		&b,
		"speechfs_http_request_duration_seconds_sum %f\n"
		"speechfs_http_request_duration_seconds_count %" PRIu64 "\n"
		"# HELP speechfs_http_bytes_in_total Bytes of request bodies "
		"received.\n"
		"# TYPE speechfs_http_bytes_in_total counter\n"
		"speechfs_http_bytes_in_total %" PRIu64 "\n"
		"# HELP speechfs_http_bytes_out_total Bytes of response bodies "
		"sent.\n"
		"# TYPE speechfs_http_bytes_out_total counter\n"
		"speechfs_http_bytes_out_total %" PRIu64 "\n",
		lat_sum, lat_count, bytes_in, bytes_out);
	pthread_mutex_unlock(&lock);
	respcache_counts(&hits, &misses);
	fail |= sfs_buf_addf(
		&b,
		"# HELP speechfs_http_response_cache_total Answers of the "
		"cached routes served from the cache (hit) or made (miss).\n"
		"# TYPE speechfs_http_response_cache_total counter\n"
		"speechfs_http_response_cache_total{result=\"hit\"} %" PRIu64
		"\n"
		"speechfs_http_response_cache_total{result=\"miss\"} %" PRIu64
		"\n",
		hits, misses);
	fail |= changes_lines(&b);
	fail |= sfs_buf_adds(
		&b,
		"# HELP speechfs_jobs Jobs in the store (all "
		"processes), by kind and state.\n# TYPE speechfs_jobs gauge\n");
	if (sfs_job_stats(g_httpd.store, job_line, &b, &e))
		fail |= sfs_buf_adds(&b, "# jobs unavailable\n");
	if (fail) {
		sfs_buf_release(&b);
		return respond_status(r, 500, "internal_error",
				      "metrics too large");
	}
	{
		size_t len;
		char *s = sfs_buf_detach(&b, &len);

		return respond_text(r, 200,
				    "text/plain; version=0.0.4; charset=utf-8",
				    s, len);
	}
}
