/* Unit tests for the embedded OpenAPI document: it parses, is OpenAPI 3,
 * and lists exactly the routes the router serves (each path and method),
 * so docs/openapi.json cannot drift from src/daemon/http.c. Also checks
 * the router's path matching. */
#include <jansson.h>
#include <strings.h>

#include "daemon/http.h"
#include "harness.h"

TEST(parses)
{
	json_error_t e;
	json_t *doc = json_loadb(embed_openapi_json, embed_openapi_json_len, 0, &e);
	CHECK(doc != NULL);
	if (!doc) {
		fprintf(stderr, "  line %d: %s\n", e.line, e.text);
		return;
	}
	const char *v = json_string_value(json_object_get(doc, "openapi"));
	CHECK(v && strncmp(v, "3.", 2) == 0);
	CHECK(json_is_object(json_object_get(doc, "paths")));
	CHECK(json_is_object(json_object_get(json_object_get(doc, "components"), "schemas")));
	json_decref(doc);
}

TEST(every_route_documented)
{
	json_t *doc = json_loadb(embed_openapi_json, embed_openapi_json_len, 0, NULL);
	json_t *paths = json_object_get(doc, "paths");
	for (size_t i = 0; i < http_nr_routes; i++) {
		json_t *p = json_object_get(paths, http_routes[i].pattern);
		char method[16];
		size_t k;
		for (k = 0; http_routes[i].method[k] && k < sizeof(method) - 1; k++)
			method[k] = (char)(http_routes[i].method[k] | 0x20); /* lowercase */
		method[k] = '\0';
		if (!p || !json_object_get(p, method)) {
			fprintf(stderr, "  not in openapi.json: %s %s\n", http_routes[i].method,
				http_routes[i].pattern);
			harness_case_failed = 1;
		}
	}
	json_decref(doc);
}

TEST(every_documented_route_served)
{
	json_t *doc = json_loadb(embed_openapi_json, embed_openapi_json_len, 0, NULL);
	json_t *paths = json_object_get(doc, "paths");
	const char *path;
	json_t *ops;
	json_object_foreach(paths, path, ops) {
		const char *method;
		json_t *op;
		json_object_foreach(ops, method, op) {
			bool found = false;
			for (size_t i = 0; i < http_nr_routes; i++)
				if (strcmp(http_routes[i].pattern, path) == 0 &&
				    strcasecmp(http_routes[i].method, method) == 0)
					found = true;
			if (!found) {
				fprintf(stderr, "  documented but not routed: %s %s\n", method, path);
				harness_case_failed = 1;
			}
		}
	}
	json_decref(doc);
}

/* An operation's x-vessel-role (the least role that may call it) must be
 * the role the router enforces; routes without it are left to the
 * authorization matrix test (tests/integration/auth_matrix.py). */
TEST(documented_roles_enforced)
{
	json_t *doc = json_loadb(embed_openapi_json, embed_openapi_json_len, 0, NULL);
	json_t *paths = json_object_get(doc, "paths");
	size_t checked = 0;
	for (size_t i = 0; i < http_nr_routes; i++) {
		const struct http_route *rt = &http_routes[i];
		char method[16];
		size_t k;
		for (k = 0; rt->method[k] && k < sizeof(method) - 1; k++)
			method[k] = (char)(rt->method[k] | 0x20);
		method[k] = '\0';
		json_t *op = json_object_get(json_object_get(paths, rt->pattern), method);
		const char *doc_role = json_string_value(json_object_get(op, "x-vessel-role"));
		if (!doc_role)
			continue;
		checked++;
		const char *want = auth_role_name(auth_route_role(rt->method, rt->role));
		if (strcmp(doc_role, want) != 0) {
			fprintf(stderr, "  %s %s: openapi.json says role %s, the router enforces %s\n",
				rt->method, rt->pattern, doc_role, want);
			harness_case_failed = 1;
		}
	}
	CHECK(checked >= 25);
	json_decref(doc);
}

TEST(route_match)
{
	char buf[256];
	const char *p[HTTP_MAX_PARAMS] = {0};
	CHECK(http_route_match("/api/v1/vms", "/api/v1/vms", buf, p));
	CHECK(http_route_match("/api/v1/vms", "/api/v1/vms/", buf, p));
	CHECK(!http_route_match("/api/v1/vms", "/api/v1/vmsx", buf, p));
	CHECK(http_route_match("/api/v1/vms/{name}", "/api/v1/vms/web-1", buf, p));
	CHECK_STR(p[0], "web-1");
	CHECK(!http_route_match("/api/v1/vms/{name}", "/api/v1/vms/", buf, p));
	CHECK(!http_route_match("/api/v1/vms/{name}", "/api/v1/vms/a/start", buf, p));
	CHECK(http_route_match("/api/v1/vms/{name}/console/ws", "/api/v1/vms/db/console/ws", buf, p));
	CHECK_STR(p[0], "db");
	CHECK(!http_route_match("/api/v1/vms/{name}/console", "/api/v1/vms/db/console/ws", buf, p));
	CHECK(http_route_match("/", "/", buf, p));
	CHECK(!http_route_match("/", "/x", buf, p));
}

HARNESS_MAIN
