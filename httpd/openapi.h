/*
 * The OpenAPI document (openapi.c): the embedded httpd/openapi.json and
 * the one made from it without the operations that do not answer. No
 * connection in it, so a unit test links it alone.
 */
#ifndef SPEECHFSD_OPENAPI_H
#define SPEECHFSD_OPENAPI_H

struct sfs_err;

/* httpd/openapi.json, NUL-terminated */
extern const char httpd_openapi_json[];

/*
 * The document doc (JSON text) without each operation whose method and
 * path (an OpenAPI path: {x} segments) keep() says 0 to, and without a
 * path left with no operation, and without the parameters marked
 * "x-extension": true of the operations kept (those change what a seed
 * route promises: an upload's lazy=true). Malloc'd JSON text, or NULL
 * with e set
 * (doc is no JSON object, or no memory).
 */
char *httpd_openapi_filter(const char *doc,
			   int (*keep)(const char *method, const char *path),
			   struct sfs_err *e);

#endif
