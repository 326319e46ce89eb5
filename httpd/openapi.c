/*
 * The OpenAPI document of the API, served at /api/v1/openapi.json: the
 * file httpd/openapi.json, the one source, embedded byte for byte by the
 * assembler (.incbin, with a NUL after it), so nothing generates code from
 * it and editing the document is all a change of the API's description
 * takes. The Makefile makes this object depend on the file.
 */
#include "httpd.h"

__asm__(".section .rodata\n"
	".global httpd_openapi_json\n"
	".type httpd_openapi_json, @object\n"
	".balign 16\n"
	"httpd_openapi_json:\n"
	".incbin \"httpd/openapi.json\"\n"
	".byte 0\n"
	".size httpd_openapi_json, . - httpd_openapi_json\n"
	".previous\n");
