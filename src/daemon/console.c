/* console: the serial console of a VM over HTTP (docs/api.md "Console"):
 * GET returns the kept output from an absolute offset, POST writes input,
 * and /console/ws is a WebSocket (RFC 6455) that streams output and takes
 * keyboard input, upgraded through libmicrohttpd's upgrade API. All go
 * through the engine's console_read/console_write/console_wait. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "lib/util.h"
#include "lib/ws.h"

#define CONSOLE_WS_BACKLOG (16 * 1024) /* docs/api.md: start with the last 16 KiB */
#define CONSOLE_WS_CHUNK (64 * 1024)
#define CONSOLE_WAIT_MS 500

static struct vm *console_lookup(struct http_req *req)
{
	return http_vm_get(req);
}

/* Append up to cap - *len bytes of a file to buf. */
static void console_slurp(const char *path, char *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while (*len < cap) {
		ssize_t n = read(fd, buf + *len, cap - *len);
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	close(fd);
}

/* The last ENGINE_CONSOLE_RING bytes of console.log.1 + console.log, with
 * offsets counted from the start of console.log.1. */
static void console_read_logs(struct daemon *d, const char *name, uint64_t since, char *buf,
			      size_t cap, size_t *len, uint64_t *start, uint64_t *next)
{
	char path[PATH_MAX];
	size_t total = 0;
	char *all = malloc(2 * (size_t)ENGINE_CONSOLE_RING);
	*len = 0;
	*start = *next = 0;
	if (!all)
		return;
	daemon_path(d, path, sizeof(path), "run/%s/console.log.1", name);
	console_slurp(path, all, (size_t)ENGINE_CONSOLE_RING, &total);
	daemon_path(d, path, sizeof(path), "run/%s/console.log", name);
	console_slurp(path, all, 2 * (size_t)ENGINE_CONSOLE_RING, &total);
	uint64_t oldest = total > ENGINE_CONSOLE_RING ? total - ENGINE_CONSOLE_RING : 0;
	uint64_t from = since < oldest ? oldest : since > total ? total : since;
	size_t n = MIN((size_t)(total - from), cap);
	memcpy(buf, all + from, n);
	*len = n;
	*start = from;
	*next = from + n;
	free(all);
}

void console_get(struct http_req *req)
{
	uint64_t since = 0;
	const char *s = http_query(req, "since");
	if (s && util_parse_u64(s, 0, UINT64_MAX, &since) < 0) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "query parameter since must be a byte offset (a non-negative "
				  "integer); got '%s'", s);
		return;
	}
	struct vm *vm = console_lookup(req);
	if (!vm)
		return;
	char *buf = malloc(ENGINE_CONSOLE_RING);
	size_t len = 0;
	uint64_t start = since, next = since;
	if (!buf) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		goto out;
	}
	pthread_rwlock_rdlock(&vm->handle_lock);
	if (vm->handle) {
		int r = req->d->engine->ops->console_read(vm->handle, since, buf, ENGINE_CONSOLE_RING,
							  &len, &start, &next);
		if (r < 0) {
			len = 0;
			start = next = since;
		}
	} else {
		/* not run since vesseld started: the engine's console logs in
		 * the run directory hold the last run's output */
		console_read_logs(req->d, req->params[0], since, buf, ENGINE_CONSOLE_RING, &len,
				  &start, &next);
	}
	pthread_rwlock_unlock(&vm->handle_lock);
	char v[32];
	snprintf(v, sizeof(v), "%" PRIu64, start);
	http_add_header(req, "X-Console-Start", v);
	snprintf(v, sizeof(v), "%" PRIu64, next);
	http_add_header(req, "X-Console-Next", v);
	http_reply_raw(req, 200, "application/octet-stream", buf, len);
	buf = NULL;
out:
	free(buf);
	vm_unref(req->d, vm);
}

/* Write input to a running VM's serial port; -ENOTCONN when not running. */
static int console_input(struct daemon *d, struct vm *vm, const void *data, size_t len)
{
	int r = -ENOTCONN;
	pthread_rwlock_rdlock(&vm->handle_lock);
	pthread_mutex_lock(&d->vms_lock);
	bool up = vm->handle && !vm->monitor_gone &&
		  (vm->rec.state == VM_STATE_RUNNING || vm->rec.state == VM_STATE_PAUSED);
	pthread_mutex_unlock(&d->vms_lock);
	if (up)
		r = d->engine->ops->console_write(vm->handle, data, len);
	pthread_rwlock_unlock(&vm->handle_lock);
	return r;
}

void console_post(struct http_req *req)
{
	struct vm *vm = console_lookup(req);
	if (!vm)
		return;
	int r = console_input(req->d, vm, req->body, req->body_len);
	if (r == -ENOTCONN) {
		struct vm_record *rec = malloc(sizeof(*rec));
		if (rec)
			vm_snapshot(req->d, vm, rec);
		http_reply_errorf(req, 409, "conflict",
				  "vm '%s' is %s; console input needs a running VM, start it first",
				  req->params[0], rec ? model_vm_state_name(rec->state) : "not running");
		free(rec);
	} else if (r < 0) {
		http_reply_errorf(req, 500, "engine_failed",
				  "writing to the serial console of vm '%s' failed: %s", req->params[0],
				  strerror(-r));
	} else {
		http_reply_json(req, 200, json_pack("{s:I}", "written", (json_int_t)req->body_len));
	}
	vm_unref(req->d, vm);
}

struct console_session {
	struct daemon *d;
	struct vm *vm;
	int fd;
	struct MHD_UpgradeResponseHandle *urh;
	char *extra;
	size_t extra_len;
	struct ws_conn *ws;
	bool done; /* set by either thread, read by the other: __atomic only */
};

static bool console_done(struct console_session *s)
{
	return __atomic_load_n(&s->done, __ATOMIC_ACQUIRE) ||
	       __atomic_load_n(&s->d->shutting_down, __ATOMIC_ACQUIRE);
}

static void console_set_done(struct console_session *s)
{
	__atomic_store_n(&s->done, true, __ATOMIC_RELEASE);
}

/* vm->removed is written under vms_lock by the thread that deletes it. */
static bool console_vm_removed(struct console_session *s)
{
	pthread_mutex_lock(&s->d->vms_lock);
	bool removed = s->vm->removed;
	pthread_mutex_unlock(&s->d->vms_lock);
	return removed;
}

/* Keyboard input from the client. */
static void *console_reader(void *arg)
{
	struct console_session *s = arg;
	struct ws_message m;
	while (!console_done(s)) {
		int r = ws_conn_recv(s->ws, &m);
		if (r == -EAGAIN || r == -EWOULDBLOCK || r == -EINTR)
			continue; /* receive timeout: look at the flags again */
		if (r < 0)
			break;
		if (m.len)
			console_input(s->d, s->vm, m.data, m.len);
	}
	console_set_done(s);
	return NULL;
}

/* Output to the client: the last 16 KiB first, then whatever comes. */
static void console_writer(void *arg)
{
	struct console_session *s = arg;
	const struct engine_ops *ops = s->d->engine->ops;
	char *buf = malloc(CONSOLE_WS_CHUNK);
	struct engine_vm *seen = NULL;
	uint64_t since = 0;
	if (!buf)
		return;
	while (!console_done(s) && !console_vm_removed(s)) {
		size_t len = 0;
		uint64_t start = 0, next = 0;
		int r = -ESRCH;
		pthread_rwlock_rdlock(&s->vm->handle_lock);
		struct engine_vm *h = s->vm->handle;
		if (h && h != seen) {
			/* a new run (or the first look): offsets start afresh */
			seen = h;
			since = 0;
			/* asking from past the end returns nothing and puts
			 * next at the end of the output kept so far */
			if (ops->console_read(h, UINT64_MAX, buf, 0, &len, &start, &next) == 0)
				since = next > CONSOLE_WS_BACKLOG ? next - CONSOLE_WS_BACKLOG : 0;
		}
		if (h) {
			r = ops->console_read(h, since, buf, CONSOLE_WS_CHUNK, &len, &start, &next);
			if (r == 0 && len == 0)
				r = ops->console_wait(h, since, CONSOLE_WAIT_MS);
			else if (r == 0)
				since = next;
		}
		pthread_rwlock_unlock(&s->vm->handle_lock);
		if (len && ws_conn_send(s->ws, WS_OP_BINARY, buf, len) < 0)
			break;
		if (!h || r < 0)
			usleep(CONSOLE_WAIT_MS * 1000); /* stopped: wait for the next run */
	}
	bool removed = console_vm_removed(s);
	ws_conn_close(s->ws, removed ? WS_CLOSE_GOING_AWAY : WS_CLOSE_NORMAL,
		      removed ? "the VM was deleted" : "");
	free(buf);
}

int console_ws_open(int fd, size_t max_message, char **extra, size_t extra_len,
		    struct ws_conn **out)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	/* A receive timeout lets the reading side notice shutdown and closure. */
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int r = ws_conn_new(fd, true, max_message, out);
	if (r < 0)
		return r;
	if (extra_len) {
		/* bytes the client sent right after the handshake */
		(*out)->rbuf = (uint8_t *)*extra;
		(*out)->rlen = (*out)->rcap = extra_len;
		*extra = NULL;
	}
	return 0;
}

void console_ws_pump(int fd, void *(*reader)(void *), void (*writer)(void *), bool *done,
		     void *arg)
{
	pthread_t t;
	bool have_reader = pthread_create(&t, NULL, reader, arg) == 0;
	if (!have_reader)
		__atomic_store_n(done, true, __ATOMIC_RELEASE);
	writer(arg);
	__atomic_store_n(done, true, __ATOMIC_RELEASE);
	/* wakes the reader out of its blocking receive */
	shutdown(fd, SHUT_RD);
	if (have_reader)
		pthread_join(t, NULL);
}

int console_ws_keep_extra(const char *in, size_t n, char **extra, size_t *extra_len)
{
	if (!n)
		return 0;
	*extra = malloc(n);
	if (!*extra)
		return -ENOMEM;
	memcpy(*extra, in, n);
	*extra_len = n;
	return 0;
}

void console_ws_reply_upgrade(struct http_req *req, MHD_UpgradeHandler upgraded,
			      const char *accept, const char *protocol)
{
	struct MHD_Response *resp = MHD_create_response_for_upgrade(upgraded, NULL);
	if (!resp) {
		http_reply_errorf(req, 500, "internal", "cannot create the WebSocket upgrade");
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
	if (protocol)
		MHD_add_response_header(resp, "Sec-WebSocket-Protocol", protocol);
	req->status = MHD_HTTP_SWITCHING_PROTOCOLS;
	req->custom = resp;
}

static void *console_session_thread(void *arg)
{
	struct console_session *s = arg;
	if (console_ws_open(s->fd, 64 * 1024, &s->extra, s->extra_len, &s->ws) < 0)
		goto out;
	console_ws_pump(s->fd, console_reader, console_writer, &s->done, s);
out:
	ws_conn_free(s->ws);
	MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
	vm_unref(s->d, s->vm);
	free(s->extra);
	free(s);
	return NULL;
}

/* Called by MHD once the 101 reply is sent. con_cls is our http_req (still
 * alive here), so the session is only allocated when the upgrade really
 * happens and nothing leaks when the client goes away before. */
static void console_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls,
			     const char *extra_in, size_t extra_in_size, MHD_socket sock,
			     struct MHD_UpgradeResponseHandle *urh)
{
	struct http_req *req = con_cls;
	struct console_session *s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	s->d = req->d;
	s->fd = sock;
	s->urh = urh;
	s->vm = vm_get(req->d, req->params[0]);
	if (!s->vm)
		goto fail; /* deleted between the handshake and now */
	if (console_ws_keep_extra(extra_in, extra_in_size, &s->extra, &s->extra_len) < 0)
		goto fail;
	if (daemon_spawn(s->d, console_session_thread, s) == 0)
		return;
fail:
	MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
	if (s) {
		vm_unref(req->d, s->vm);
		free(s->extra);
		free(s);
	}
}

static bool console_header_has(struct http_req *req, const char *name, const char *token)
{
	const char *v = http_header(req, name);
	if (!v)
		return false;
	/* comma-separated, case-insensitive tokens (RFC 6455 §4.2.1) */
	size_t n = strlen(token);
	for (const char *p = v; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return true;
		p = strchrnul(p, ',');
	}
	return false;
}

int console_ws_handshake(struct http_req *req, const char *plain_hint,
			 char accept[WS_ACCEPT_LEN + 1])
{
	const char *key = http_header(req, "Sec-WebSocket-Key");
	const char *version = http_header(req, "Sec-WebSocket-Version");
	if (!console_header_has(req, "Upgrade", "websocket") ||
	    !console_header_has(req, "Connection", "Upgrade")) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "this path is a WebSocket: send 'Upgrade: websocket' and "
				  "'Connection: Upgrade'%s%s", plain_hint ? "; " : "",
				  plain_hint ? plain_hint : "");
		return -EINVAL;
	}
	if (!version || strcmp(version, "13") != 0) {
		http_add_header(req, "Sec-WebSocket-Version", "13");
		http_reply_errorf(req, 400, "invalid_argument",
				  "only WebSocket version 13 (RFC 6455) is supported");
		return -EINVAL;
	}
	if (ws_accept_key(key, accept) < 0) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "Sec-WebSocket-Key must be 16 random bytes in base64 (RFC 6455 §4.1)");
		return -EINVAL;
	}
	return 0;
}

bool console_ws_offers(struct http_req *req, const char *protocol)
{
	return console_header_has(req, "Sec-WebSocket-Protocol", protocol);
}

void console_ws(struct http_req *req)
{
	char accept[WS_ACCEPT_LEN + 1];
	char hint[160];
	snprintf(hint, sizeof(hint), "use GET /api/v1/vms/%s/console for plain HTTP", req->params[0]);
	if (console_ws_handshake(req, hint, accept) < 0)
		return;
	struct vm *vm = console_lookup(req);
	if (!vm)
		return;
	vm_unref(req->d, vm);
	console_ws_reply_upgrade(req, console_upgraded, accept, NULL);
}
