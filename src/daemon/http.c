/* http: libmicrohttpd listeners, request bodies, authentication, routing and
 * JSON replies for vesseld (docs/api.md "Transport and auth", "Errors").
 *
 * Both listeners run MHD's epoll loop on a small thread pool. Handlers that
 * answer from memory (GET of VMs, images, tasks, console) run on the MHD
 * thread; handlers that can block (starting QEMU, waiting for a guest to
 * power off, qemu-img) are marked slow and run on a worker thread while
 * the connection is suspended, so one slow request never stalls the other
 * connections that share its MHD thread. */
#include "daemon/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/audit.h"
#include "daemon/history.h"
#include "daemon/metrics.h"
#include "daemon/networks.h"
#include "daemon/static.h"
#include "daemon/store.h"
#include "lib/util.h"

/* Oversize bodies up to this size are read and dropped before the 413. */
#define HTTP_DISCARD_MAX (1024 * 1024)

enum http_phase {
	HTTP_PHASE_BODY = 0, /* receiving the body */
	HTTP_PHASE_RUNNING,  /* a worker thread runs the handler */
	HTTP_PHASE_DONE,     /* the reply is ready to queue */
};

struct http_server {
	struct daemon *d;
	struct MHD_Daemon *mhd;
	bool unix_socket;
	int fd;
	char sock_path[PATH_MAX];
};

/* Entries may leave out the trailing role field (it then follows from the
 * method), so the table is exempt from the missing-initializer warning. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const struct http_route http_routes[] = {
	{"GET", "/", static_get, false},
	{"GET", "/api/v1/host", host_get, false},
	{"GET", "/api/v1/openapi.json", host_openapi, false},
	{"GET", "/api/v1/vms", vms_list, false},
	{"POST", "/api/v1/vms", vms_create, true},
	{"GET", "/api/v1/vms/{name}", vms_get, false},
	{"PATCH", "/api/v1/vms/{name}", vms_patch, true},
	{"DELETE", "/api/v1/vms/{name}", vms_delete, true},
	{"POST", "/api/v1/vms/{name}/start", vms_start, true},
	{"POST", "/api/v1/vms/{name}/stop", vms_stop, true},
	{"POST", "/api/v1/vms/{name}/force-stop", vms_force_stop, true},
	{"POST", "/api/v1/vms/{name}/reboot", vms_reboot, true},
	{"POST", "/api/v1/vms/{name}/pause", vms_pause, true},
	{"POST", "/api/v1/vms/{name}/resume", vms_resume, true},
	{"GET", "/api/v1/vms/{name}/console", console_get, false},
	{"POST", "/api/v1/vms/{name}/console", console_post, false},
	/* a GET, but the socket also carries keyboard input */
	{"GET", "/api/v1/vms/{name}/console/ws", console_ws, false, AUTH_ROLE_OPERATOR},
	{"GET", "/api/v1/images", images_list, false},
	/* images are shared by every project and read from host directories */
	{"POST", "/api/v1/images", images_create, true, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/images/{name}", images_get, false},
	{"DELETE", "/api/v1/images/{name}", images_delete, true, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/tasks", tasks_list, false},
	{"GET", "/api/v1/tasks/{id}", tasks_get, false},
	/* networks and rule sets change the host's interfaces and nftables */
	{"GET", "/api/v1/networks", networks_list, false},
	{"POST", "/api/v1/networks", networks_create, true, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/networks/{name}", networks_get, false},
	{"PATCH", "/api/v1/networks/{name}", networks_patch, true, AUTH_ROLE_ADMIN},
	{"DELETE", "/api/v1/networks/{name}", networks_delete, true, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/firewalls", firewalls_list, false},
	{"POST", "/api/v1/firewalls", firewalls_create, true, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/firewalls/{name}", firewalls_get, false},
	{"PUT", "/api/v1/firewalls/{name}", firewalls_put, true, AUTH_ROLE_ADMIN},
	{"DELETE", "/api/v1/firewalls/{name}", firewalls_delete, true, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/host/history", history_host_get, false},
	{"GET", "/api/v1/vms/{name}/history", history_vm_get, false},
	/* like the serial console: the socket carries keyboard and mouse input */
	{"GET", "/api/v1/vms/{name}/vnc/ws", vnc_ws, false, AUTH_ROLE_OPERATOR},
	{"GET", "/api/v1/whoami", whoami_get, false},
	{"GET", "/api/v1/tokens", tokens_list, false, AUTH_ROLE_ADMIN},
	{"POST", "/api/v1/tokens", tokens_create, false, AUTH_ROLE_ADMIN},
	{"DELETE", "/api/v1/tokens/{id}", tokens_revoke, false, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/audit", audit_get, true, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/audit/verify", audit_verify_get, true, AUTH_ROLE_ADMIN},
	{"GET", "/metrics", metrics_get, true}, /* asks each QEMU over QMP */
	{"GET", "/api/v1/projects", projects_list, false},
	/* projects, quotas and capacity are host-wide settings */
	{"POST", "/api/v1/projects", projects_create, false, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/projects/{name}", projects_get, false},
	{"PATCH", "/api/v1/projects/{name}", projects_patch, false, AUTH_ROLE_ADMIN},
	{"DELETE", "/api/v1/projects/{name}", projects_delete, false, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/host/capacity", host_capacity_get, false},
	{"PATCH", "/api/v1/host/capacity", host_capacity_patch, false, AUTH_ROLE_ADMIN},
	{"GET", "/api/v1/vms/{name}/snapshots", snapshots_list, true},
	{"POST", "/api/v1/vms/{name}/snapshots", snapshots_create, true},
	{"GET", "/api/v1/vms/{name}/snapshots/{snap}", snapshots_get, true},
	{"DELETE", "/api/v1/vms/{name}/snapshots/{snap}", snapshots_delete, true},
	{"POST", "/api/v1/vms/{name}/snapshots/{snap}/revert", snapshots_revert, true},
	{"GET", "/api/v1/vms/{name}/schedules", schedules_list, true},
	{"POST", "/api/v1/vms/{name}/schedules", schedules_create, true},
	{"DELETE", "/api/v1/vms/{name}/schedules/{id}", schedules_delete, true},
	{"GET", "/api/v1/vms/{name}/drills", backups_drills, true},
	{"GET", "/api/v1/backups", backups_list, true},
	{"POST", "/api/v1/backups", backups_create, true},
	{"GET", "/api/v1/backups/{id}", backups_get, true},
	{"DELETE", "/api/v1/backups/{id}", backups_delete, true},
	{"POST", "/api/v1/backups/{id}/verify", backups_verify, true},
	{"POST", "/api/v1/backups/{id}/restore", backups_restore, true},
	{"POST", "/api/v1/backups/{id}/drill", backups_drill, true},
};
#pragma GCC diagnostic pop
const size_t http_nr_routes = ARRAY_SIZE(http_routes);

bool http_route_match(const char *pattern, const char *path, char *buf,
		      const char *params[HTTP_MAX_PARAMS])
{
	unsigned np = 0;
	const char *p = pattern, *u = path;
	char *b = buf;
	while (*p && *u) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			if (!pe || np >= HTTP_MAX_PARAMS)
				return false;
			const char *ue = strchrnul(u, '/');
			if (ue == u)
				return false;
			memcpy(b, u, (size_t)(ue - u));
			b[ue - u] = '\0';
			params[np++] = b;
			b += (ue - u) + 1;
			p = pe + 1;
			u = ue;
			continue;
		}
		if (*p != *u)
			return false;
		p++;
		u++;
	}
	/* Tolerate one trailing '/' on the request path. */
	if (*u == '/' && u[1] == '\0' && u != path + 1)
		u++;
	return *p == '\0' && *u == '\0';
}

void http_reply_raw(struct http_req *req, unsigned status, const char *content_type, char *body,
		    size_t len)
{
	free(req->resp_body);
	req->status = status;
	req->content_type = content_type;
	req->resp_body = body;
	req->resp_len = len;
}

void http_reply_json(struct http_req *req, unsigned status, json_t *body)
{
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!s) {
		static const char oom[] =
			"{\"error\":{\"code\":\"internal\",\"message\":\"vesseld ran out of memory "
			"building the reply; retry\"}}";
		http_reply_raw(req, 500, "application/json", strdup(oom), sizeof(oom) - 1);
		return;
	}
	http_reply_raw(req, status, "application/json", s, strlen(s));
}

void http_reply_err(struct http_req *req, const struct daemon_err *e)
{
	json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", e->code ? e->code : "internal",
			      "message", e->message);
	if (j && e->has_refusal) {
		/* docs/api.md "Admission errors": the numbers behind a 409. */
		const struct admission_refusal *w = &e->refusal;
		json_t *o = json_object_get(j, "error");
		json_object_set_new(o, "dimension", json_string(admission_dim_name(w->dim)));
		json_object_set_new(o, "asked", json_integer((json_int_t)w->asked));
		json_object_set_new(o, "used", json_integer((json_int_t)w->used));
		if (e->refusal_host) {
			json_object_set_new(o, "capacity", json_integer((json_int_t)w->capacity));
			json_object_set_new(o, "ratio", json_real(w->ratio));
			json_object_set_new(o, "allocatable", json_integer((json_int_t)w->limit));
		} else {
			json_object_set_new(o, "project", json_string(e->refusal_project));
			json_object_set_new(o, "quota", json_integer((json_int_t)w->limit));
		}
	}
	http_reply_json(req, e->status ? e->status : 500, j);
}

void http_reply_errorf(struct http_req *req, unsigned status, const char *code, const char *fmt,
		       ...)
{
	struct daemon_err e = {.status = status, .code = code};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	http_reply_err(req, &e);
}

void http_add_header(struct http_req *req, const char *name, const char *value)
{
	if (req->nr_hdrs >= HTTP_MAX_HEADERS)
		return;
	snprintf(req->hdr_name[req->nr_hdrs], sizeof(req->hdr_name[0]), "%s", name);
	snprintf(req->hdr_value[req->nr_hdrs], sizeof(req->hdr_value[0]), "%s", value);
	req->nr_hdrs++;
}

const char *http_query(struct http_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(struct http_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, key);
}

int http_body_json(struct http_req *req, bool allow_empty, json_t **out)
{
	char err[VALIDATE_ERR_MAX];
	int r = validate_body_parse(req->body ? req->body : "", req->body_len, allow_empty, out, err);
	if (r < 0)
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
	return r;
}

static void http_audit(struct http_req *req);

static enum MHD_Result http_queue(struct http_req *req)
{
	struct MHD_Response *resp = req->custom;
	if (!resp) {
		if (!req->resp_body) {
			http_reply_errorf(req, 500, "internal",
					  "the handler produced no reply; this is a bug in vesseld");
		}
		resp = MHD_create_response_from_buffer(req->resp_len, req->resp_body,
						       MHD_RESPMEM_MUST_FREE);
		if (!resp)
			return MHD_NO;
		req->resp_body = NULL;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					req->content_type ? req->content_type : "application/json");
	}
	for (unsigned i = 0; i < req->nr_hdrs; i++)
		MHD_add_response_header(resp, req->hdr_name[i], req->hdr_value[i]);
	metrics_request_count(req->method, req->status);
	http_audit(req);
	metrics_route_count(req->route ? (int)(req->route - http_routes) : -1, req->status,
			    util_now_ns() - req->t0_ns);
	enum MHD_Result r = MHD_queue_response(req->conn, req->status, resp);
	MHD_destroy_response(resp);
	req->custom = NULL;
	return r;
}

static bool http_is_read(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* Every change, and every refused authentication or authorization, goes
 * to the audit log with who asked and the answer. A read that needs an
 * operator is a change too: the console WebSocket carries keyboard input. */
static void http_audit(struct http_req *req)
{
	bool refused = req->status == 401 || req->status == 403 || req->status == 429;
	bool changes = !http_is_read(req->method) ||
		       (req->route && auth_route_role(req->route->method, req->route->role) ==
					      AUTH_ROLE_OPERATOR);
	if (!req->d->audit || (!changes && !refused))
		return;
	const char *object = req->route ? req->params[0] : NULL;
	json_t *body = NULL;
	if (!object && req->body && req->body_len) {
		body = json_loadb(req->body, req->body_len, 0, NULL);
		object = json_string_value(json_object_get(body, "name"));
	}
	/* A refused body may carry a 64 KiB "name": keep lines short. */
	char obj[257];
	if (object) {
		snprintf(obj, sizeof(obj), "%s", object);
		object = obj;
	}
	bool authed = req->who.role != AUTH_ROLE_DEFAULT;
	struct audit_entry e = {
		.token = authed ? req->who.token_id : req->audit_token[0] ? req->audit_token :
									  AUTH_ID_NONE,
		.role = authed ? auth_role_name(req->who.role) : "-",
		.client = req->client,
		.method = req->method,
		.path = req->path,
		.object = object,
		.result = req->status,
		.detail = req->audit_detail,
	};
	audit_append(req->d->audit, &e);
	json_decref(body);
}

static void http_client_addr(struct http_req *req)
{
	if (req->via_unix) {
		snprintf(req->client, sizeof(req->client), "unix");
		return;
	}
	snprintf(req->client, sizeof(req->client), "unknown");
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, req->client,
			  sizeof(req->client));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, req->client,
			  sizeof(req->client));
}

/* Who sent the request: fills req->who, or replies 401/429 and returns
 * false (docs/api.md "Auth"). */
static bool http_authenticate(struct http_req *req)
{
	struct daemon *d = req->d;
	struct auth_identity *who = &req->who;
	if (req->via_unix) {
		snprintf(who->token_id, sizeof(who->token_id), "%s", AUTH_ID_LOCAL);
		who->role = AUTH_ROLE_ADMIN;
		return true;
	}
	unsigned retry;
	if (d->limiter && auth_limiter_check(d->limiter, req->client, &retry) < 0) {
		char v[16];
		snprintf(v, sizeof(v), "%u", retry);
		http_add_header(req, "Retry-After", v);
		req->audit_detail = "locked out after repeated failed authentications";
		http_reply_errorf(req, 429, "too_many_requests",
				  "too many failed authentications from %s; try again in %u second%s "
				  "with a valid token",
				  req->client, retry, retry == 1 ? "" : "s");
		return false;
	}
	const char *given = NULL;
	const char *auth = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		given = auth + 7;
	} else {
		/* Browsers cannot set headers on a WebSocket, so WebSocket
		 * paths (.../ws: the console and VNC sockets) also take the
		 * token as a query parameter. */
		size_t n = strlen(req->path);
		if (n > 3 && strcmp(req->path + n - 3, "/ws") == 0)
			given = http_query(req, "token");
	}
	enum auth_verdict v = AUTH_MISSING;
	struct token_record t;
	char id[AUTH_ID_LEN + 1], secret[AUTH_SECRET_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	if (given && *given) {
		v = AUTH_INVALID;
		if (daemon_token_equal(d, given)) {
			snprintf(who->token_id, sizeof(who->token_id), "%s", AUTH_ID_BOOTSTRAP);
			who->role = AUTH_ROLE_ADMIN;
			v = AUTH_OK;
		} else if (auth_token_parse(given, id, secret) == 0) {
			snprintf(req->audit_token, sizeof(req->audit_token), "%s", id);
			if (auth_tokens_get(d->tokens, id, &t) == 0)
				v = auth_token_check(&t, secret, now);
			explicit_bzero(secret, sizeof(secret));
			if (v == AUTH_OK) {
				snprintf(who->token_id, sizeof(who->token_id), "%s", t.id);
				who->role = t.role;
				snprintf(who->project, sizeof(who->project), "%s", t.project);
				if (auth_tokens_touch(d->tokens, t.id, now))
					store_token_touch(d->store, t.id, now);
			}
		}
	}
	if (v == AUTH_OK) {
		if (d->limiter)
			auth_limiter_success(d->limiter, req->client);
		return true;
	}
	memset(who, 0, sizeof(*who));
	req->audit_detail = auth_verdict_name(v);
	/* No token at all is a client that was not set up, not a guess:
	 * only presented tokens count towards a lockout. */
	if (v != AUTH_MISSING && d->limiter) {
		unsigned fails;
		bool locked;
		auth_limiter_fail(d->limiter, req->client, &fails, &locked);
		if (locked)
			log_warn("auth: %s is locked out after %u failed authentications", req->client,
				 fails);
		else
			log_ratelimited(LOG_LEVEL_WARN, "auth: failed authentication from %s (%s "
					"token, %u in a row)", req->client, auth_verdict_name(v), fails);
	}
	char when[32];
	switch (v) {
	case AUTH_MISSING:
		http_reply_errorf(req, 401, "unauthorized",
				  "no bearer token was sent: send 'Authorization: Bearer TOKEN' with a "
				  "token from 'vessel token create' or DATA_DIR/admin.token");
		break;
	case AUTH_EXPIRED:
		auth_time_format(t.expires, when);
		http_reply_errorf(req, 401, "unauthorized",
				  "the bearer token expired at %s; ask an admin for a new one", when);
		break;
	case AUTH_REVOKED:
		auth_time_format(t.revoked, when);
		http_reply_errorf(req, 401, "unauthorized",
				  "the bearer token was revoked at %s; ask an admin for a new one", when);
		break;
	default:
		http_reply_errorf(req, 401, "unauthorized",
				  "the bearer token is not valid: check that it was copied whole (vst_ID_SECRET, "
				  "or the contents of DATA_DIR/admin.token)");
		break;
	}
	return false;
}

struct vm *http_vm_get(struct http_req *req)
{
	struct vm *vm = vm_get(req->d, req->params[0]);
	if (!vm) {
		http_reply_errorf(req, 404, "not_found",
				  "there is no VM named '%s'; list VMs with GET /api/v1/vms",
				  req->params[0]);
		return NULL;
	}
	/* Out of scope looks exactly like absent, so a scoped token cannot
	 * learn which names other projects use. */
	if (!vm_scope_allows(req->d, vm, &req->who)) {
		vm_unref(req->d, vm);
		vm = NULL;
		http_reply_errorf(req, 404, "not_found",
				  "there is no VM named '%s'; list VMs with GET /api/v1/vms",
				  req->params[0]);
	}
	return vm;
}

static void *http_worker(void *arg)
{
	struct http_req *req = arg;
	req->route->fn(req);
	req->phase = HTTP_PHASE_DONE;
	MHD_resume_connection(req->conn);
	return NULL;
}

/* Route the request; returns true when the reply is ready now, false when
 * a worker thread took it over. */
static bool http_dispatch(struct http_req *req)
{
	http_client_addr(req);
	if (req->body_too_big) {
		http_reply_errorf(req, 413, "payload_too_large",
				  "the request body is larger than %d KiB; send a smaller body",
				  VALIDATE_BODY_MAX / 1024);
		return true;
	}
	/* The web UI's files are public; the API calls the page makes are not. */
	if (static_handles(req->method, req->path)) {
		static_get(req);
		return true;
	}
	if (!http_authenticate(req))
		return true;
	req->param_buf = malloc(strlen(req->path) + 1);
	if (!req->param_buf) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return true;
	}
	bool path_known = false;
	for (size_t i = 0; i < http_nr_routes; i++) {
		const struct http_route *rt = &http_routes[i];
		const char *params[HTTP_MAX_PARAMS] = {0};
		if (!http_route_match(rt->pattern, req->path, req->param_buf, params))
			continue;
		path_known = true;
		if (strcmp(rt->method, req->method) != 0)
			continue;
		memcpy(req->params, params, sizeof(params));
		req->route = rt;
		break;
	}
	if (!req->route) {
		if (path_known)
			http_reply_errorf(req, 405, "method_not_allowed",
					  "%s is not allowed on %s; see GET /api/v1/openapi.json for "
					  "the methods each path takes",
					  req->method, req->path);
		else
			http_reply_errorf(req, 404, "not_found",
					  "there is no API route %s; see GET /api/v1/openapi.json",
					  req->path);
		return true;
	}
	enum auth_role need = auth_route_role(req->route->method, req->route->role);
	if (strcmp(req->route->pattern, "/") != 0 && !auth_role_allows(req->who.role, need)) {
		/* Refused before the handler runs: nothing is changed. */
		req->audit_detail = "forbidden";
		http_reply_errorf(req, 403, "forbidden",
				  "token '%s' has role %s, but %s %s needs role %s or higher; use a token "
				  "with that role",
				  req->who.token_id, auth_role_name(req->who.role), req->method,
				  req->route->pattern, auth_role_name(need));
		return true;
	}
	if (req->route->slow && !req->d->shutting_down) {
		req->phase = HTTP_PHASE_RUNNING;
		MHD_suspend_connection(req->conn);
		if (daemon_spawn(req->d, http_worker, req) == 0)
			return false;
		MHD_resume_connection(req->conn);
		req->phase = HTTP_PHASE_BODY;
	}
	req->route->fn(req);
	return true;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version,
				   const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_req *req = *con_cls;

	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		req->d = s->d;
		req->conn = conn;
		req->method = method;
		req->via_unix = s->unix_socket;
		req->t0_ns = util_now_ns();
		req->path = strdup(url);
		*con_cls = req;
		if (!req->path)
			return MHD_NO;
		/* A body somewhat over the limit is read and dropped, so the
		 * client (still sending) gets its 413 cleanly; a huge one is
		 * refused before reading, at the cost of a reset connection. */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > HTTP_DISCARD_MAX) {
			req->body_too_big = true;
			http_dispatch(req);
			req->phase = HTTP_PHASE_DONE;
			return http_queue(req);
		}
		return MHD_YES;
	}
	if (req->phase == HTTP_PHASE_DONE)
		return http_queue(req);
	if (req->phase == HTTP_PHASE_RUNNING)
		return MHD_YES;
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		if (!req->body_too_big && req->body_len + n <= VALIDATE_BODY_MAX) {
			char *nb = realloc(req->body, req->body_len + n + 1);
			if (!nb)
				return MHD_NO;
			req->body = nb;
			memcpy(req->body + req->body_len, upload_data, n);
			req->body_len += n;
			req->body[req->body_len] = '\0';
		} else {
			req->body_too_big = true;
		}
		req->body_seen += n;
		*upload_data_size = 0;
		if (req->body_seen > HTTP_DISCARD_MAX) {
			http_dispatch(req);
			req->phase = HTTP_PHASE_DONE;
			return http_queue(req);
		}
		return MHD_YES;
	}
	if (!http_dispatch(req))
		return MHD_YES;
	req->phase = HTTP_PHASE_DONE;
	return http_queue(req);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			   enum MHD_RequestTerminationCode toe)
{
	struct http_req *req = *con_cls;
	if (!req)
		return;
	if (req->custom)
		MHD_destroy_response(req->custom);
	free(req->path);
	free(req->body);
	free(req->param_buf);
	free(req->resp_body);
	free(req);
	*con_cls = NULL;
}

/* MHD's own decoding turns "%00" into a NUL that silently cuts the path
 * ("/index.html%00.png" would become "/index.html"). A URL holding an
 * encoded NUL is left undecoded instead, so its '%' makes the router and the
 * static server refuse it. */
static size_t http_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	for (const char *p = s; (p = strchr(p, '%')) != NULL; p++)
		if (p[1] == '0' && p[2] == '0')
			return strlen(s);
	return MHD_http_unescape(s);
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_ratelimited(LOG_LEVEL_WARN, "http: %s", buf);
}

static int http_listen_unix(struct http_server *s, char **err)
{
	const char *path = s->d->cfg.socket_path;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		asprintf(err, "socket path %s is too long (at most %zu bytes); choose a shorter --socket",
			 path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	snprintf(s->sock_path, sizeof(s->sock_path), "%s", path);
	/* The parent (/run/vessel) may not exist yet after a reboot. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0755);
	}
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* left behind by an earlier vesseld */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Create it 0600 from the start: no window where others may connect. */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 256) < 0) {
		r = -errno;
		asprintf(err, "cannot listen on %s: %s; check the directory exists and no other "
			      "vesseld runs", path, strerror(-r));
		close(fd);
		return r;
	}
	chmod(path, 0600);
	s->fd = fd;
	return 0;
}

static int http_listen_tcp(struct http_server *s, char **err)
{
	const char *listen_addr = s->d->cfg.listen;
	char host[128];
	snprintf(host, sizeof(host), "%s", listen_addr);
	char *colon = strrchr(host, ':');
	uint64_t port;
	if (!colon || util_parse_u64(colon + 1, 1, 65535, &port) < 0) {
		asprintf(err, "--listen '%s' is not ADDR:PORT (for example 127.0.0.1:8006)", listen_addr);
		return -EINVAL;
	}
	*colon = '\0';
	char *h = host;
	if (h[0] == '[') {
		h++;
		h[strlen(h) - 1] = '\0';
	}
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, h, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sl = sizeof(*sin);
	} else if (inet_pton(AF_INET6, h, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*sin6);
	} else {
		asprintf(err, "--listen address '%s' is not an IPv4 or IPv6 address", h);
		return -EINVAL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
		int r = -errno;
		asprintf(err, "cannot listen on %s: %s; is another vesseld running, or choose another "
			      "--listen", listen_addr, strerror(-r));
		close(fd);
		return r;
	}
	s->fd = fd;
	return 0;
}

int http_server_start(struct daemon *d, bool unix_socket, struct http_server **out, char **err)
{
	struct http_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->d = d;
	s->unix_socket = unix_socket;
	s->fd = -1;
	int r = unix_socket ? http_listen_unix(s, err) : http_listen_tcp(s, err);
	if (r < 0)
		goto out;
	unsigned threads = d->cfg.http_threads;
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 2;
	}
	s->mhd = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
					  MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG | MHD_USE_TURBO,
				  0, NULL, NULL, http_access, s,
				  MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, s,
				  MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, s,
				  MHD_OPTION_LISTEN_SOCKET, s->fd,
				  MHD_OPTION_THREAD_POOL_SIZE, threads,
				  MHD_OPTION_NOTIFY_COMPLETED, http_completed, s,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
				  MHD_OPTION_END);
	if (!s->mhd) {
		asprintf(err, "libmicrohttpd could not start on %s", unix_socket ? d->cfg.socket_path :
										   d->cfg.listen);
		r = -EIO;
		goto out;
	}
	*out = s;
	return 0;
out:
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return r;
}

void http_server_quiesce(struct http_server *s)
{
	if (s && s->mhd)
		MHD_quiesce_daemon(s->mhd);
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	if (s->fd >= 0)
		close(s->fd);
	if (s->unix_socket && s->sock_path[0])
		unlink(s->sock_path);
	free(s);
}
