/* vnc: the graphical console of a VM for the browser (docs/api.md
 * "Graphical console"). QEMU serves VNC on a Unix socket in the VM's run
 * directory (qemu_args.c: -vnc unix:RUNDIR/vnc.sock), never on a TCP port,
 * so only vesseld reaches it. GET /api/v1/vms/{name}/vnc/ws upgrades to a
 * WebSocket (RFC 6455, the same handshake and framing code as the serial
 * console) and copies bytes both ways: each binary message from the browser
 * is written to the socket unchanged, and whatever QEMU writes is sent as a
 * binary message. The RFB protocol itself (RFC 6143) is spoken by noVNC in
 * the page and QEMU; vesseld does not look into it.
 *
 * Authentication is the router's: a bearer token, or ?token= because a
 * browser cannot set headers on a WebSocket. noVNC asks for the "binary"
 * subprotocol; it is echoed when offered, as RFC 6455 §4.2.2 requires. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "lib/util.h"
#include "lib/ws.h"

#define VNC_SOCKET "vnc.sock" /* as named in qemu_args.c */
#define VNC_CHUNK (64 * 1024)

struct vnc_session {
	struct daemon *d;
	int ws_fd;  /* the upgraded client connection */
	int vnc_fd; /* QEMU's VNC socket */
	struct MHD_UpgradeResponseHandle *urh;
	char *extra;
	size_t extra_len;
	struct ws_conn *ws;
	bool done; /* __atomic: set by either direction */
};

static bool vnc_done(struct vnc_session *s)
{
	return __atomic_load_n(&s->done, __ATOMIC_ACQUIRE) ||
	       __atomic_load_n(&s->d->shutting_down, __ATOMIC_ACQUIRE);
}

static void vnc_set_done(struct vnc_session *s)
{
	__atomic_store_n(&s->done, true, __ATOMIC_RELEASE);
}

int vnc_socket_connect(const char *path, int *out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

/* Browser -> QEMU. */
static void *vnc_upstream(void *arg)
{
	struct vnc_session *s = arg;
	struct ws_message m;
	while (!vnc_done(s)) {
		int r = ws_conn_recv(s->ws, &m);
		if (r == -EAGAIN || r == -EWOULDBLOCK || r == -EINTR)
			continue; /* receive timeout: look at the flags again */
		if (r < 0)
			break;
		if (m.len && util_write_all(s->vnc_fd, m.data, m.len) < 0)
			break;
	}
	vnc_set_done(s);
	/* wake the other direction, blocked in read() on QEMU's socket */
	shutdown(s->vnc_fd, SHUT_RDWR);
	return NULL;
}

/* QEMU -> browser, on the session thread. */
static void vnc_downstream(void *arg)
{
	struct vnc_session *s = arg;
	uint8_t *buf = malloc(VNC_CHUNK);
	if (!buf)
		return;
	while (!vnc_done(s)) {
		ssize_t n = read(s->vnc_fd, buf, VNC_CHUNK);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		if (ws_conn_send(s->ws, WS_OP_BINARY, buf, (size_t)n) < 0)
			break;
	}
	free(buf);
	ws_conn_close(s->ws, WS_CLOSE_NORMAL,
		      vnc_done(s) ? "" : "the VM's display closed (the VM stopped)");
}

static void *vnc_session_thread(void *arg)
{
	struct vnc_session *s = arg;
	/* RFB messages from the client are small; a whole framebuffer
	 * update goes the other way */
	if (console_ws_open(s->ws_fd, 1024 * 1024, &s->extra, s->extra_len, &s->ws) < 0)
		goto out;
	console_ws_pump(s->ws_fd, vnc_upstream, vnc_downstream, &s->done, s);
out:
	ws_conn_free(s->ws);
	MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
	close(s->vnc_fd);
	free(s->extra);
	free(s);
	return NULL;
}

static void vnc_socket_path(struct daemon *d, const char *name, char *out, size_t cap)
{
	daemon_path(d, out, cap, "run/%s/%s", name, VNC_SOCKET);
}

/* Called by MHD once the 101 reply is sent (see console.c). */
static void vnc_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls,
			 const char *extra_in, size_t extra_in_size, MHD_socket sock,
			 struct MHD_UpgradeResponseHandle *urh)
{
	struct http_req *req = con_cls;
	char path[PATH_MAX];
	struct vnc_session *s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	s->d = req->d;
	s->ws_fd = sock;
	s->urh = urh;
	s->vnc_fd = -1;
	vnc_socket_path(req->d, req->params[0], path, sizeof(path));
	if (vnc_socket_connect(path, &s->vnc_fd) < 0)
		goto fail; /* the VM stopped between the handshake and now */
	if (console_ws_keep_extra(extra_in, extra_in_size, &s->extra, &s->extra_len) < 0)
		goto fail;
	if (daemon_spawn(s->d, vnc_session_thread, s) == 0)
		return;
fail:
	MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
	if (s) {
		if (s->vnc_fd >= 0)
			close(s->vnc_fd);
		free(s->extra);
		free(s);
	}
}

void vnc_ws(struct http_req *req)
{
	struct daemon *d = req->d;
	char accept[WS_ACCEPT_LEN + 1], path[PATH_MAX];
	if (console_ws_handshake(req, "noVNC connects here; there is no plain HTTP form", accept) <
	    0)
		return;
	struct vm *vm = http_vm_get(req); /* 404 also outside the token's project */
	if (!vm)
		return;
	pthread_mutex_lock(&d->vms_lock);
	enum vm_state st = vm->rec.state;
	pthread_mutex_unlock(&d->vms_lock);
	vm_unref(d, vm);
	if (st != VM_STATE_RUNNING && st != VM_STATE_PAUSED) {
		http_reply_errorf(req, 409, "conflict",
				  "vm '%s' is %s; the graphical console needs a running VM, start it "
				  "first", req->params[0], model_vm_state_name(st));
		return;
	}
	/* Check the socket now so a VM started by an older vesseld (without
	 * VNC) gets an answer rather than a WebSocket that closes at once. */
	int fd;
	vnc_socket_path(d, req->params[0], path, sizeof(path));
	int r = vnc_socket_connect(path, &fd);
	if (r < 0) {
		http_reply_errorf(req, 409, "conflict",
				  "vm '%s' has no VNC display (%s); it was started without one, "
				  "restart it to get the graphical console", req->params[0],
				  strerror(-r));
		return;
	}
	close(fd);
	console_ws_reply_upgrade(req, vnc_upgraded, accept,
				 console_ws_offers(req, "binary") ? "binary" : NULL);
}
