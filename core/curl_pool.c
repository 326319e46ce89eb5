/*
 * A pool of idle libcurl handles (curl_pool_i.h), shared by the remote
 * store's connection and the S3 client.
 */
#include <curl/curl.h>
#include "curl_pool_i.h"
#include "speechfs/banned.h"

void sfsi_curl_pool_init(struct sfsi_curl_pool *p)
{
	pthread_mutex_init(&p->mu, NULL);
	p->n = 0;
}

void sfsi_curl_pool_release(struct sfsi_curl_pool *p)
{
	int i;

	for (i = 0; i < p->n; i++)
		curl_easy_cleanup(p->idle[i]);
	p->n = 0;
	pthread_mutex_destroy(&p->mu);
}

void *sfsi_curl_pool_take(struct sfsi_curl_pool *p)
{
	CURL *c = NULL;

	pthread_mutex_lock(&p->mu);
	if (p->n)
		c = p->idle[--p->n];
	pthread_mutex_unlock(&p->mu);
	return c ? c : curl_easy_init();
}

void sfsi_curl_pool_give(struct sfsi_curl_pool *p, void *curl)
{
	CURL *c = curl;

	pthread_mutex_lock(&p->mu);
	if (c && p->n < SFSI_CURL_POOL_MAX) {
		p->idle[p->n++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	if (c)
		curl_easy_cleanup(c);
}
