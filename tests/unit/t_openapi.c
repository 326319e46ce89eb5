/*
 * The daemon's OpenAPI document without the operations that do not
 * answer (httpd/openapi.c, what http.extensions = false serves): the
 * operations kept are exactly those asked for, a path left with no
 * operation goes, the rest of the document stays; a document that cannot
 * be made is an error with its reason, never a document of nothing.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "../../httpd/openapi.h"
#include "speechfs/err.h"
#include "speechfs/log.h"
#include "testhelp.h"

static int keep_get_b(const char *method, const char *path)
{
	return !strcmp(method, "get") && !strcmp(path, "/b/{id}");
}

static int keep_all(const char *method, const char *path)
{
	(void)method;
	(void)path;
	return 1;
}

static int keep_none(const char *method, const char *path)
{
	(void)method;
	(void)path;
	return 0;
}

static void test_operations_kept(void)
{
	static const char doc[] =
		"{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"t\"},"
		"\"paths\":{\"/a\":{\"parameters\":[],\"get\":{}},"
		"\"/b/{id}\":{\"parameters\":[{\"name\":\"id\"}],"
		"\"get\":{\"x\":1},\"put\":{}}},"
		"\"components\":{\"schemas\":{\"S\":{}}}}";
	struct sfs_err e;
	json_t *j, *b;
	char *s;

	sfs_err_init(&e);
	s = httpd_openapi_filter(doc, keep_get_b, &e);
	REQUIRE(s);
	j = json_loads(s, 0, NULL);
	REQUIRE(j);
	CHECK(json_object_size(json_object_get(j, "paths")) == 1);
	b = json_object_get(json_object_get(j, "paths"), "/b/{id}");
	CHECK(json_object_size(b) == 2 && json_object_get(b, "parameters") &&
	      json_integer_value(
		      json_object_get(json_object_get(b, "get"), "x")) == 1);
	CHECK(json_object_get(
		json_object_get(json_object_get(j, "components"), "schemas"),
		"S"));
	CHECK(!strcmp(json_string_value(json_object_get(
			      json_object_get(j, "info"), "title")),
		      "t"));
	json_decref(j);
	free(s);
}

/*
 * whole's parameters and answers' headers marked "x-extension", removed;
 * how many.
 */
static int drop_marked(json_t *whole)
{
	json_t *ops, *op, *ps, *a, *hs, *h;
	const char *k1, *k2, *k3, *k4;
	void *t;
	int n = 0;
	size_t i;

	json_object_foreach(json_object_get(whole, "paths"), k1, ops)
	{
		json_object_foreach(ops, k2, op)
		{
			ps = json_object_get(op, "parameters");
			for (i = json_array_size(ps); i-- > 0;)
				if (json_is_true(json_object_get(
					    json_array_get(ps, i),
					    "x-extension"))) {
					json_array_remove(ps, i);
					n++;
				}
			json_object_foreach(json_object_get(op, "responses"),
					    k3, a)
			{
				hs = json_object_get(a, "headers");
				json_object_foreach_safe(hs, t, k4, h)
				{
					if (!json_is_true(json_object_get(
						    h, "x-extension")))
						continue;
					json_object_del(hs, k4);
					n++;
				}
			}
		}
	}
	return n;
}

/*
 * The embedded document: all of it kept is all of it but the parameters
 * and answers' headers marked as extensions (an upload's lazy, its
 * X-Speechfs-Content-Crc32c); none kept, no path.
 */
static void test_embedded_document(void)
{
	struct sfs_err e;
	json_t *whole, *want, *j, *hs;
	char *s;

	sfs_err_init(&e);
	whole = json_loads(httpd_openapi_json, 0, NULL);
	REQUIRE(whole && json_object_size(json_object_get(whole, "paths")) > 0);
	want = json_deep_copy(whole);
	CHECK(drop_marked(want) >= 1);
	s = httpd_openapi_filter(httpd_openapi_json, keep_all, &e);
	REQUIRE(s);
	j = json_loads(s, 0, NULL);
	CHECK(json_equal(j, want));
	hs = json_object_get(
		json_object_get(
			json_object_get(
				json_object_get(
					json_object_get(
						json_object_get(j, "paths"),
						"/api/v1/speech-services/"
						"files"),
					"post"),
				"responses"),
			"201"),
		"headers");
	CHECK(json_object_get(hs, "X-Speechfs-Directory") &&
	      !json_object_get(hs, "X-Speechfs-Content-Crc32c"));
	json_decref(want);
	json_decref(j);
	free(s);
	s = httpd_openapi_filter(httpd_openapi_json, keep_none, &e);
	REQUIRE(s);
	j = json_loads(s, 0, NULL);
	CHECK(j && json_object_size(json_object_get(j, "paths")) == 0 &&
	      json_equal(json_object_get(j, "components"),
			 json_object_get(whole, "components")));
	json_decref(j);
	free(s);
	json_decref(whole);
}

static void test_no_document(void)
{
	static const char *const bad[] = { "", "<html>x</html>",
					   "{\"openapi\":\"3.1.0\"}",
					   "{\"paths\":[]}" };
	struct sfs_err e;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sfs_err_init(&e);
		CHECK(httpd_openapi_filter(bad[i], keep_all, &e) == NULL);
		CHECK(e.status == SFS_INVALID && e.message[0]);
	}
	sfs_err_init(&e);
	CHECK(httpd_openapi_filter("{\"openapi\":", keep_all, &e) == NULL &&
	      strstr(e.message, "no JSON"));
	sfs_err_init(&e);
	CHECK(httpd_openapi_filter("{\"openapi\":\"3.1.0\"}", keep_all, &e) ==
		      NULL &&
	      strstr(e.message, "\"paths\""));
}

int main(void)
{
	sfs_log_set_level(SFS_LOG_ERROR);
	RUN(test_operations_kept);
	RUN(test_embedded_document);
	RUN(test_no_document);
	return th_report();
}
