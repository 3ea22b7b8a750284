/* http: vesseld's HTTP front end on libmicrohttpd: the two listeners (TCP
 * with bearer token, Unix socket without), request bodies (64 KiB limit),
 * the route table and JSON replies in the shape docs/api.md prescribes.
 * Each API resource has its own file with handlers (vms.c, images.c,
 * tasks.c, host.c, console.c); they fill the reply through the helpers
 * below and never talk to MHD except for the console WebSocket upgrade. */
#ifndef VESSEL_DAEMON_HTTP_H
#define VESSEL_DAEMON_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/daemon.h"
#include "lib/ws.h"

#define HTTP_MAX_PARAMS 2
#define HTTP_MAX_HEADERS 4

struct http_req {
	struct daemon *d;
	struct MHD_Connection *conn;
	const char *method;
	char *path; /* URL path, decoded by MHD */
	bool via_unix;
	char *body;
	size_t body_len;
	bool body_too_big;
	size_t body_seen; /* bytes received, kept or not */
	const char *params[HTTP_MAX_PARAMS]; /* {name} / {id} captured from the path */
	char *param_buf;

	/* the reply */
	unsigned status;
	char *resp_body; /* malloc'd */
	size_t resp_len;
	const char *content_type;
	char hdr_name[HTTP_MAX_HEADERS][32];
	char hdr_value[HTTP_MAX_HEADERS][128];
	unsigned nr_hdrs;
	struct MHD_Response *custom; /* a ready response (WebSocket upgrade) */

	int phase; /* http.c: body, running on a worker, done */
	uint64_t t0_ns; /* arrival, for the latency histogram */
	const struct http_route *route;

	/* who is asking (http.c fills it before the handler runs) */
	struct auth_identity who;
	char client[64];          /* client address, "unix" on the socket */
	const char *audit_detail; /* why authentication failed, for the audit log */
	char audit_token[24];     /* token id named by a failed attempt */
};

struct http_route {
	const char *method;
	const char *pattern; /* "/api/v1/vms/{name}" */
	void (*fn)(struct http_req *req);
	bool slow; /* may block (QEMU start/stop, qemu-img): run on a worker thread */
	/* The least role that may call it. Optional: AUTH_ROLE_DEFAULT (left
	 * out) means GET needs viewer and every other method operator
	 * (docs/api.md "Roles"). */
	enum auth_role role;
};

extern const struct http_route http_routes[];
extern const size_t http_nr_routes;

/* Match a path against a pattern; captures {x} segments into params (the
 * strings point into buf, which must hold strlen(path) + 1 bytes). */
bool http_route_match(const char *pattern, const char *path, char *buf,
		      const char *params[HTTP_MAX_PARAMS]);

int http_server_start(struct daemon *d, bool unix_socket, struct http_server **out, char **err);
/* Stop accepting new connections (shutdown, before waiting for workers). */
void http_server_quiesce(struct http_server *s);
void http_server_stop(struct http_server *s);

/* Reply helpers; each replaces any earlier reply. */
void http_reply_json(struct http_req *req, unsigned status, json_t *body /* stolen */);
void http_reply_raw(struct http_req *req, unsigned status, const char *content_type, char *body,
		    size_t len /* body is stolen (malloc'd) */);
void http_reply_err(struct http_req *req, const struct daemon_err *e);
__attribute__((format(printf, 4, 5))) void http_reply_errorf(struct http_req *req, unsigned status,
							     const char *code, const char *fmt, ...);
void http_add_header(struct http_req *req, const char *name, const char *value);
const char *http_query(struct http_req *req, const char *key);
const char *http_header(struct http_req *req, const char *key);
/* Parse the JSON object body; on failure replies 400 and returns -EINVAL. */
int http_body_json(struct http_req *req, bool allow_empty, json_t **out);

/* Handlers, one file per resource. */
void host_get(struct http_req *req);
void host_openapi(struct http_req *req);
void vms_list(struct http_req *req);
void vms_create(struct http_req *req);
void vms_get(struct http_req *req);
void vms_patch(struct http_req *req);
void vms_delete(struct http_req *req);
void vms_start(struct http_req *req);
void vms_stop(struct http_req *req);
void vms_force_stop(struct http_req *req);
void vms_reboot(struct http_req *req);
void vms_pause(struct http_req *req);
void vms_resume(struct http_req *req);
void console_get(struct http_req *req);
void console_post(struct http_req *req);
void console_ws(struct http_req *req);
void images_list(struct http_req *req);
void images_create(struct http_req *req);
void images_get(struct http_req *req);
void images_delete(struct http_req *req);
void tasks_list(struct http_req *req);
void projects_list(struct http_req *req);
void projects_create(struct http_req *req);
void projects_get(struct http_req *req);
void projects_patch(struct http_req *req);
void projects_delete(struct http_req *req);
void host_capacity_get(struct http_req *req);
void host_capacity_patch(struct http_req *req);
void tasks_get(struct http_req *req);
void vnc_ws(struct http_req *req);
void whoami_get(struct http_req *req);
void tokens_list(struct http_req *req);
void tokens_create(struct http_req *req);
void tokens_revoke(struct http_req *req);
void audit_get(struct http_req *req);
void audit_verify_get(struct http_req *req);

/* The VM named by {name} with a reference (vm_unref), if the caller's
 * project scope (auth_scope_allows) covers it; else replies 404 and
 * returns NULL. */
struct vm *http_vm_get(struct http_req *req);
void snapshots_list(struct http_req *req);
void snapshots_create(struct http_req *req);
void snapshots_get(struct http_req *req);
void snapshots_delete(struct http_req *req);
void snapshots_revert(struct http_req *req);
void schedules_list(struct http_req *req);
void schedules_create(struct http_req *req);
void schedules_delete(struct http_req *req);
void backups_list(struct http_req *req);
void backups_create(struct http_req *req);
void backups_get(struct http_req *req);
void backups_delete(struct http_req *req);
void backups_verify(struct http_req *req);
void backups_restore(struct http_req *req);
void backups_drill(struct http_req *req);
void backups_drills(struct http_req *req);

/* console.c: the WebSocket opening handshake shared by the serial console
 * and the VNC proxy (vnc.c): checks Upgrade, Connection, version 13 and the
 * key; replies 400 and returns -EINVAL when the request is not a valid one.
 * plain_hint (may be NULL) ends the message when the client sent plain HTTP. */
int console_ws_handshake(struct http_req *req, const char *plain_hint,
			 char accept[WS_ACCEPT_LEN + 1]);
/* true when the client lists protocol in Sec-WebSocket-Protocol. */
bool console_ws_offers(struct http_req *req, const char *protocol);
/* Reply 101 with the accept key (and protocol, when not NULL); MHD calls
 * upgraded() with the connection once the reply is sent. */
void console_ws_reply_upgrade(struct http_req *req, MHD_UpgradeHandler upgraded,
			      const char *accept, const char *protocol);
/* Copy the n bytes the client sent right after the handshake (MHD's
 * extra_in, only valid during the upgrade callback); none when n is 0. */
int console_ws_keep_extra(const char *in, size_t n, char **extra, size_t *extra_len);
/* Make an upgraded socket blocking with a 1 s receive timeout, wrap it in
 * a server-side ws_conn and hand it the kept bytes (*extra becomes NULL). */
int console_ws_open(int fd, size_t max_message, char **extra, size_t extra_len,
		    struct ws_conn **out);
/* Run reader(arg) on a new thread and writer(arg) on this one until both
 * end; *done (__atomic) is set when either side can no longer run. */
void console_ws_pump(int fd, void *(*reader)(void *), void (*writer)(void *), bool *done,
		     void *arg);
/* vnc.c: connect to a Unix stream socket; 0 and *out, or -errno. */
int vnc_socket_connect(const char *path, int *out);

/* Embedded at build time from docs/openapi.json. */
extern const char embed_openapi_json[];
extern const size_t embed_openapi_json_len;

#endif
