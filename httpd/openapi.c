/*
 * The OpenAPI document of the API, served at /api/v1/openapi.json: the
 * file httpd/openapi.json, the one source, embedded byte for byte by the
 * assembler (.incbin, with a NUL after it), so nothing generates code from
 * it and editing the document is all a change of the API's description
 * takes. The Makefile makes this object depend on the file.
 *
 * With http.extensions = false the daemon serves it without the extension
 * operations (httpd_openapi_filter, once at start: api_files.c).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "openapi.h"
#include "speechfs/err.h"

__asm__(".section .rodata\n"
	".global httpd_openapi_json\n"
	".type httpd_openapi_json, @object\n"
	".balign 16\n"
	"httpd_openapi_json:\n"
	".incbin \"httpd/openapi.json\"\n"
	".byte 0\n"
	".size httpd_openapi_json, . - httpd_openapi_json\n"
	".previous\n");

/*
 * An operation's parameters and its answers' headers marked
 * "x-extension": true, removed.
 */
static void drop_extension_params(json_t *op)
{
	json_t *ps = json_object_get(op, "parameters"), *a, *hs, *h;
	size_t i = json_array_size(ps);
	const char *code, *name;
	void *t1, *t2;

	while (i--)
		if (json_is_true(json_object_get(json_array_get(ps, i),
						 "x-extension")))
			json_array_remove(ps, i);
	json_object_foreach_safe(json_object_get(op, "responses"), t1, code, a)
	{
		hs = json_object_get(a, "headers");
		json_object_foreach_safe(hs, t2, name, h)
		{
			if (json_is_true(json_object_get(h, "x-extension")))
				json_object_del(hs, name);
		}
	}
}

char *httpd_openapi_filter(const char *doc,
			   int (*keep)(const char *method, const char *path),
			   struct sfs_err *e)
{
	json_error_t je;
	json_t *j = json_loads(doc, 0, &je), *paths, *ops, *o;
	const char *path, *method;
	char *s = NULL;
	void *t1, *t2;

	paths = json_object_get(j, "paths");
	if (!json_is_object(paths)) {
		if (j)
			sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				 "the OpenAPI document has no \"paths\" "
				 "object");
		else
			sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				 "the OpenAPI document is no JSON (line %d: "
				 "%s)",
				 je.line, je.text);
		json_decref(j);
		return NULL;
	}
	json_object_foreach_safe(paths, t1, path, ops)
	{
		json_object_foreach_safe(ops, t2, method, o)
		{
			if (!strcmp(method, "parameters"))
				continue;
			if (!keep(method, path))
				json_object_del(ops, method);
			else
				drop_extension_params(o);
		}
		if (!json_object_size(ops) ||
		    (json_object_size(ops) == 1 &&
		     json_object_get(ops, "parameters")))
			json_object_del(paths, path);
	}
	s = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	if (!s)
		sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
			 "out of memory for the OpenAPI document");
	return s;
}
