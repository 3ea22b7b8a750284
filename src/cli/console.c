/* console: `vessel vm console NAME`, an interactive serial console over the
 * WebSocket GET /api/v1/vms/NAME/console/ws (docs/api.md "Console",
 * RFC 6455). The opening handshake is written here because libcurl in
 * Debian 12 has no WebSocket support; framing comes from lib/ws.
 *
 * On a terminal, stdin is put in raw mode so every key (Ctrl-C included)
 * goes to the guest, Ctrl-] detaches, and the terminal is restored on
 * every way out (detach, close by vesseld, error, SIGTERM/SIGHUP). When
 * stdin is not a terminal its bytes are piped to the guest until EOF, then
 * guest output is drained until it has been quiet for a short while; tests
 * use that mode. */
#include "cli/cli.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/ws.h"

/* Ctrl-] as in telnet and virsh console. */
#define CONSOLE_DETACH_KEY 0x1d
/* After stdin's EOF, stop once the guest has said nothing for this long,
 * and in any case after CONSOLE_DRAIN_MAX_MS. */
#define CONSOLE_DRAIN_IDLE_MS 1000
#define CONSOLE_DRAIN_MAX_MS 10000
#define CONSOLE_HANDSHAKE_TIMEOUT_MS 10000
#define CONSOLE_MAX_RESPONSE_HEAD 16384

static struct termios console_saved_tio;
static volatile sig_atomic_t console_raw;

static void console_tty_restore(void)
{
	if (console_raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &console_saved_tio);
		console_raw = 0;
	}
}

static void console_signal(int sig)
{
	console_tty_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int console_tty_raw(void)
{
	struct termios tio;

	if (tcgetattr(STDIN_FILENO, &console_saved_tio) < 0)
		return -errno;
	tio = console_saved_tio;
	cfmakeraw(&tio);
	/* Restore even when we die from a signal or exit() elsewhere. */
	atexit(console_tty_restore);
	signal(SIGTERM, console_signal);
	signal(SIGHUP, console_signal);
	signal(SIGQUIT, console_signal);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio) < 0)
		return -errno;
	console_raw = 1;
	return 0;
}

int cli_url_split(const char *url, char **host, char **port, char **prefix)
{
	const char *h, *hend, *p;
	int ret = 0;

	*host = *port = *prefix = NULL;
	if (strncmp(url, "http://", 7) != 0)
		return -EPROTONOSUPPORT;
	h = url + 7;
	p = strchr(h, '/');
	if (!p)
		p = h + strlen(h);
	if (*h == '[') {
		hend = memchr(h, ']', (size_t)(p - h));
		if (!hend)
			return -EINVAL;
		*host = strndup(h + 1, (size_t)(hend - h - 1));
		hend++;
		if (*hend != ':' && hend != p) {
			ret = -EINVAL;
			goto out;
		}
	} else {
		hend = memchr(h, ':', (size_t)(p - h));
		if (!hend)
			hend = p;
		*host = strndup(h, (size_t)(hend - h));
	}
	if (*hend == ':')
		*port = strndup(hend + 1, (size_t)(p - hend - 1));
	else
		*port = strdup("80");
	*prefix = strdup(p);
	if (!*host || !*port || !*prefix) {
		ret = -ENOMEM;
		goto out;
	}
	if (!**host || !**port || strspn(*port, "0123456789") != strlen(*port))
		ret = -EINVAL;
out:
	if (ret < 0) {
		free(*host);
		free(*port);
		free(*prefix);
		*host = *port = *prefix = NULL;
	}
	return ret;
}

static int console_connect(struct cli *cli, char **host_hdr, char **prefix, int *out_fd)
{
	char *host = NULL, *port = NULL;
	struct addrinfo hints = {0}, *res = NULL;
	char ep[512];
	int fd = -1, ret = 0;

	if (cli->socket_path) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(cli->socket_path) >= sizeof(sa.sun_path)) {
			ret = cli_fail(cli, -ENAMETOOLONG, "socket path %s is too long (at most %zu bytes)",
				       cli->socket_path, sizeof(sa.sun_path) - 1);
			goto out;
		}
		strcpy(sa.sun_path, cli->socket_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			ret = cli_fail(cli, -errno, "cannot reach vesseld at %s: %s; is it running?",
				       cli_endpoint_name(cli, ep, sizeof(ep)), strerror(errno));
			goto out;
		}
		*host_hdr = strdup("localhost");
		*prefix = strdup("");
		if (!*host_hdr || !*prefix)
			ret = -ENOMEM;
		goto out;
	}

	ret = cli_url_split(cli->base_url, &host, &port, prefix);
	if (ret == -EPROTONOSUPPORT) {
		ret = cli_fail(cli, ret, "the console needs an http:// URL or the Unix socket; '%s' is not supported",
			       cli->base_url);
		goto out;
	}
	if (ret < 0) {
		ret = cli_fail(cli, ret, "URL '%s' is not http://HOST[:PORT][/PREFIX]", cli->base_url);
		goto out;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		ret = cli_fail(cli, -EHOSTUNREACH, "cannot reach vesseld at %s: %s; is it running?",
			       cli_endpoint_name(cli, ep, sizeof(ep)), gai_strerror(gai));
		goto out;
	}
	int err = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		ret = cli_fail(cli, -err, "cannot reach vesseld at %s: %s; is it running?",
			       cli_endpoint_name(cli, ep, sizeof(ep)), strerror(err));
		goto out;
	}
	if (asprintf(host_hdr, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port) < 0) {
		*host_hdr = NULL;
		ret = -ENOMEM;
	}
out:
	if (ret < 0 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	*out_fd = fd;
	if (res)
		freeaddrinfo(res);
	free(host);
	free(port);
	return ret;
}

/* Read with a deadline; returns bytes read, 0 on EOF, or -errno
 * (-ETIMEDOUT when the deadline passed). */
static ssize_t console_read_timeout(int fd, void *buf, size_t len, uint64_t deadline_ns)
{
	for (;;) {
		uint64_t now = util_now_ns();
		if (now >= deadline_ns)
			return -ETIMEDOUT;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)((deadline_ns - now) / 1000000) + 1);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		ssize_t n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : n;
	}
}

bool cli_http_header_find(const char *head, const char *name, char *val, size_t len)
{
	size_t nl = strlen(name);
	/* Only the head: a body that follows is not headers. */
	const char *end = strstr(head, "\r\n\r\n");

	for (const char *l = strstr(head, "\r\n"); l && l != end; l = strstr(l, "\r\n")) {
		l += 2;
		if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
			const char *v = l + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t n = strcspn(v, "\r\n");
			while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			snprintf(val, len, "%.*s", (int)n, v);
			return true;
		}
	}
	return false;
}

/* RFC 6455 §4.1: send the opening handshake and check the server's answer
 * (101, Upgrade: websocket, the right Sec-WebSocket-Accept). Bytes that
 * follow the response head are frames; they are left in buf/len. */
static int console_handshake(struct cli *cli, int fd, const char *host_hdr, const char *prefix,
			     const char *name, uint8_t *buf, size_t cap, size_t *len)
{
	char key[WS_KEY_LEN + 1], accept[WS_ACCEPT_LEN + 1], got[128];
	char *path = NULL, *req = NULL, *head = NULL;
	size_t have = 0;
	uint64_t deadline = util_now_ns() + CONSOLE_HANDSHAKE_TIMEOUT_MS * 1000000ull;
	int ret;

	*len = 0;
	ret = ws_client_key(key);
	if (ret < 0)
		goto out;
	ret = ws_accept_key(key, accept);
	if (ret < 0)
		goto out;
	ret = cli_path(&path, "/vms/%s/console/ws", name);
	if (ret < 0)
		goto out;
	if (asprintf(&req,
		     "GET %s%s%s HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "User-Agent: vessel-cli/0.1\r\n"
		     "%s%s%s"
		     "\r\n",
		     prefix, CLI_API_PREFIX, path, host_hdr, key,
		     cli->token ? "Authorization: Bearer " : "", cli->token ? cli->token : "",
		     cli->token ? "\r\n" : "") < 0) {
		req = NULL;
		ret = -ENOMEM;
		goto out;
	}
	ret = util_write_all(fd, req, strlen(req));
	if (ret < 0) {
		ret = cli_fail(cli, ret, "cannot send the console request to vesseld: %s", strerror(-ret));
		goto out;
	}

	head = malloc(CONSOLE_MAX_RESPONSE_HEAD + 1);
	if (!head) {
		ret = -ENOMEM;
		goto out;
	}
	char *end = NULL;
	while (!end) {
		if (have == CONSOLE_MAX_RESPONSE_HEAD) {
			ret = cli_fail(cli, -EPROTO, "vesseld's answer to the console request has an over-long header");
			goto out;
		}
		ssize_t n = console_read_timeout(fd, head + have, CONSOLE_MAX_RESPONSE_HEAD - have, deadline);
		if (n <= 0) {
			ret = cli_fail(cli, n == 0 ? -EPIPE : (int)n,
				       "vesseld closed the console connection before answering (%s); see its log",
				       n == 0 ? "end of stream" : strerror((int)-n));
			goto out;
		}
		have += (size_t)n;
		head[have] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	size_t head_len = (size_t)(end - head) + 4;
	int status = 0;
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) {
		ret = cli_fail(cli, -EPROTO, "vesseld's answer to the console request is not HTTP");
		goto out;
	}
	if (status != 101) {
		/* An API error: its JSON body follows the head. Read it
		 * (Content-Length bytes, or until close) for the message. */
		char cl[32];
		size_t want = cli_http_header_find(head, "Content-Length", cl, sizeof(cl)) ? strtoul(cl, NULL, 10)
										   : CONSOLE_MAX_RESPONSE_HEAD;
		want = MIN(want, (size_t)CONSOLE_MAX_RESPONSE_HEAD - head_len);
		while (have - head_len < want && have < CONSOLE_MAX_RESPONSE_HEAD) {
			ssize_t n = console_read_timeout(fd, head + have, CONSOLE_MAX_RESPONSE_HEAD - have, deadline);
			if (n <= 0)
				break;
			have += (size_t)n;
		}
		head[have] = '\0';
		cli_error_from_body(status, head + head_len, cli->err, sizeof(cli->err));
		ret = status == 404 ? -ENOENT : status == 401 ? -EACCES : -EIO;
		goto out;
	}
	if (!cli_http_header_find(head, "Upgrade", got, sizeof(got)) || strcasecmp(got, "websocket") != 0) {
		ret = cli_fail(cli, -EPROTO, "vesseld answered 101 without 'Upgrade: websocket'");
		goto out;
	}
	if (!cli_http_header_find(head, "Sec-WebSocket-Accept", got, sizeof(got)) || strcmp(got, accept) != 0) {
		/* §4.1 item 4: the client must fail the connection. */
		ret = cli_fail(cli, -EPROTO, "vesseld's Sec-WebSocket-Accept does not match our key; "
			       "is something between us and vesseld rewriting the connection?");
		goto out;
	}
	if (have - head_len > cap) {
		ret = cli_fail(cli, -EPROTO, "vesseld sent more console data than expected after the handshake");
		goto out;
	}
	memcpy(buf, head + head_len, have - head_len);
	*len = have - head_len;
out:
	free(head);
	free(req);
	free(path);
	return ret;
}

/* Send keyboard bytes as one binary frame each read. */
static int console_send(struct cli *cli, struct ws_conn *c, const uint8_t *data, size_t len)
{
	int r;

	if (!len)
		return 0;
	r = ws_conn_send(c, WS_OP_BINARY, data, len);
	if (r < 0)
		return cli_fail(cli, r, "cannot send to the console: %s", strerror(-r));
	return 0;
}

/* Decode every complete frame in buf; guest output goes to stdout.
 * Returns 1 when the server closed the WebSocket, 0 to go on, -errno. */
static int console_frames(struct cli *cli, struct ws_conn *c, struct ws_decoder *d, uint8_t *buf,
			  size_t *len)
{
	for (;;) {
		struct ws_message msg;
		size_t used = 0;
		int r = ws_decoder_feed(d, buf, *len, &used, &msg);
		if (used) {
			memmove(buf, buf + used, *len - used);
			*len -= used;
		}
		if (r < 0) {
			ws_conn_close(c, r == -EMSGSIZE ? WS_CLOSE_TOO_BIG : WS_CLOSE_PROTOCOL_ERROR, NULL);
			return cli_fail(cli, r, "vesseld sent a malformed console frame (%s)", strerror(-r));
		}
		if (r == 0) {
			if (used)
				continue;
			return 0;
		}
		switch (msg.opcode) {
		case WS_OP_TEXT:
		case WS_OP_BINARY:
			if (util_write_all(STDOUT_FILENO, msg.data, msg.len) < 0)
				return 1;
			break;
		case WS_OP_PING:
			/* §5.5.3: a pong carries the ping's data. */
			ws_conn_send(c, WS_OP_PONG, msg.data, msg.len);
			break;
		case WS_OP_CLOSE:
			/* §5.5.1: answer the close, then we are done. */
			ws_conn_close(c, WS_CLOSE_NORMAL, NULL);
			return 1;
		default:
			break;
		}
	}
}

int cli_vm_console(struct cli *cli, const struct cli_args *a)
{
	enum { RBUF = 65536 };
	const char *name = a->pos[0];
	char *host_hdr = NULL, *prefix = NULL;
	uint8_t *rbuf = NULL;
	size_t rlen = 0;
	struct ws_conn *conn = NULL;
	struct ws_decoder dec;
	bool dec_init = false;
	bool tty = isatty(STDIN_FILENO);
	bool stdin_eof = false, detached = false, closed = false;
	uint64_t eof_ns = 0, last_rx_ns = 0;
	int fd = -1, ret;

	rbuf = malloc(RBUF);
	if (!rbuf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = console_connect(cli, &host_hdr, &prefix, &fd);
	if (ret < 0)
		goto out;
	ret = console_handshake(cli, fd, host_hdr, prefix, name, rbuf, RBUF, &rlen);
	if (ret < 0)
		goto out;
	ret = ws_conn_new(fd, false, WS_DEFAULT_MAX_MESSAGE, &conn);
	if (ret < 0)
		goto out;
	ws_decoder_init(&dec, false, WS_DEFAULT_MAX_MESSAGE);
	dec_init = true;

	fprintf(stderr, "Connected to %s; detach with Ctrl-]\n", name);
	if (tty) {
		ret = console_tty_raw();
		if (ret < 0) {
			ret = cli_fail(cli, ret, "cannot put the terminal in raw mode: %s", strerror(-ret));
			goto out;
		}
	}
	last_rx_ns = util_now_ns();
	ret = console_frames(cli, conn, &dec, rbuf, &rlen);
	if (ret < 0)
		goto out;
	closed = ret == 1;
	ret = 0;

	while (!closed && !detached) {
		struct pollfd pfd[2] = {
			{.fd = fd, .events = POLLIN},
			{.fd = stdin_eof ? -1 : STDIN_FILENO, .events = POLLIN},
		};
		int timeout = -1;
		if (stdin_eof) {
			uint64_t now = util_now_ns();
			uint64_t idle_end = last_rx_ns + CONSOLE_DRAIN_IDLE_MS * 1000000ull;
			uint64_t max_end = eof_ns + CONSOLE_DRAIN_MAX_MS * 1000000ull;
			uint64_t end = MIN(MAX(idle_end, eof_ns + CONSOLE_DRAIN_IDLE_MS * 1000000ull), max_end);
			if (now >= end)
				break;
			timeout = (int)((end - now) / 1000000) + 1;
		}
		int n = poll(pfd, 2, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = cli_fail(cli, -errno, "poll failed on the console: %s", strerror(errno));
			goto out;
		}
		if (pfd[0].revents) {
			if (rlen == RBUF) {
				ret = cli_fail(cli, -EMSGSIZE, "vesseld sent a console frame larger than %d bytes", RBUF);
				goto out;
			}
			ssize_t r = read(fd, rbuf + rlen, RBUF - rlen);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				/* vesseld went away without a close frame: the
				 * VM was deleted or the daemon stopped. */
				closed = true;
				break;
			}
			rlen += (size_t)r;
			last_rx_ns = util_now_ns();
			ret = console_frames(cli, conn, &dec, rbuf, &rlen);
			if (ret < 0)
				goto out;
			closed = ret == 1;
			ret = 0;
		}
		if (pfd[1].revents) {
			uint8_t in[4096];
			ssize_t r = read(STDIN_FILENO, in, sizeof(in));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				stdin_eof = true;
				eof_ns = util_now_ns();
				continue;
			}
			size_t len = (size_t)r;
			if (tty) {
				uint8_t *k = memchr(in, CONSOLE_DETACH_KEY, len);
				if (k) {
					len = (size_t)(k - in);
					detached = true;
				}
			}
			ret = console_send(cli, conn, in, len);
			if (ret < 0)
				goto out;
		}
	}
	if (!closed)
		ws_conn_close(conn, WS_CLOSE_NORMAL, "client detached");
	console_tty_restore();
	if (tty)
		fprintf(stderr, "\n%s from %s\n", closed ? "Console closed by vesseld; disconnected" : "Detached",
			name);
out:
	console_tty_restore();
	if (dec_init)
		ws_decoder_destroy(&dec);
	ws_conn_free(conn);
	if (fd >= 0)
		close(fd);
	free(rbuf);
	free(host_hdr);
	free(prefix);
	return ret;
}
