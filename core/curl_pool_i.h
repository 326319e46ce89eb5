/*
 * A pool of idle libcurl handles, one per client (the remote store's
 * connection, the S3 client): a handle given back keeps its live
 * connection for the client's next request. curl_pool.c.
 */
#ifndef SPEECHFS_CURL_POOL_I_H
#define SPEECHFS_CURL_POOL_I_H

#include <pthread.h>

#define SFSI_CURL_POOL_MAX 32

struct sfsi_curl_pool {
	pthread_mutex_t mu;
	void *idle[SFSI_CURL_POOL_MAX]; /* CURL * */
	int n;
};

void sfsi_curl_pool_init(struct sfsi_curl_pool *p);
/* Clean up every idle handle (none may be taken any more). */
void sfsi_curl_pool_release(struct sfsi_curl_pool *p);
/* An idle handle (a CURL *), or a new one; NULL when out of memory. */
void *sfsi_curl_pool_take(struct sfsi_curl_pool *p);
/*
 * Keep handle curl (a CURL *, as it is: not reset) for a later take;
 * cleaned up instead when the pool is full.
 */
void sfsi_curl_pool_give(struct sfsi_curl_pool *p, void *curl);

#endif
