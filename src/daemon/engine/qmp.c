/* qmp: QMP message parsing and formatting, and the socket helpers the qemu
 * driver uses to connect and negotiate (see qmp.h and QEMU's
 * docs/interop/qmp-spec.rst). */
#include "daemon/engine/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util.h"

int qmp_parser_new(size_t max, struct qmp_parser **out)
{
	struct qmp_parser *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->max = max ? max : QMP_MAX_LINE;
	*out = p;
	return 0;
}

void qmp_parser_free(struct qmp_parser *p)
{
	if (!p)
		return;
	free(p->buf);
	free(p);
}

/* Length of the unfinished tail: bytes after the last '\n' in buf. */
static size_t qmp_parser_tail_len(const struct qmp_parser *p)
{
	const char *nl = memrchr(p->buf, '\n', p->len);

	return nl ? p->len - (size_t)(nl + 1 - p->buf) : p->len;
}

int qmp_parser_feed(struct qmp_parser *p, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (p->len + len > p->cap) {
		size_t ncap = p->cap ? p->cap : 4096;
		char *nbuf;

		while (ncap < p->len + len)
			ncap *= 2;
		nbuf = realloc(p->buf, ncap);
		if (!nbuf)
			return -ENOMEM;
		p->buf = nbuf;
		p->cap = ncap;
	}
	memcpy(p->buf + p->len, data, len);
	p->len += len;
	/* Complete lines are bounded when they are taken by qmp_parser_next();
	 * here only the line still being received can grow without bound. */
	if (qmp_parser_tail_len(p) > p->max)
		return -EMSGSIZE;
	return 0;
}

int qmp_parser_next(struct qmp_parser *p, json_t **msg)
{
	for (;;) {
		char *nl;
		size_t line_len, consumed;
		json_t *j;

		nl = p->len > p->scan ? memchr(p->buf + p->scan, '\n', p->len - p->scan) : NULL;
		if (!nl) {
			p->scan = p->len;
			return 0;
		}
		consumed = (size_t)(nl - p->buf) + 1;
		line_len = consumed - 1;
		if (line_len > 0 && p->buf[line_len - 1] == '\r')
			line_len--;

		j = NULL;
		if (line_len > 0 && line_len <= p->max)
			j = json_loadb(p->buf, line_len, JSON_REJECT_DUPLICATES, NULL);
		memmove(p->buf, p->buf + consumed, p->len - consumed);
		p->len -= consumed;
		p->scan = 0;
		if (line_len == 0)
			continue;
		if (line_len > p->max)
			return -EMSGSIZE;
		if (!j || !json_is_object(j)) {
			json_decref(j);
			return -EBADMSG;
		}
		*msg = j;
		return 1;
	}
}

int qmp_msg_decode(json_t *msg, struct qmp_msg *out)
{
	json_t *id, *v;

	memset(out, 0, sizeof(*out));
	out->id = -1;
	if (!json_is_object(msg))
		return -EBADMSG;
	id = json_object_get(msg, "id");
	if (json_is_integer(id))
		out->id = json_integer_value(id);

	if ((v = json_object_get(msg, "QMP")) != NULL) {
		out->type = QMP_MSG_GREETING;
		out->value = v;
		return 0;
	}
	if ((v = json_object_get(msg, "return")) != NULL) {
		out->type = QMP_MSG_RETURN;
		out->value = v;
		return 0;
	}
	if ((v = json_object_get(msg, "error")) != NULL) {
		if (!json_is_object(v))
			return -EBADMSG;
		out->type = QMP_MSG_ERROR;
		out->error_class = json_string_value(json_object_get(v, "class"));
		out->error_desc = json_string_value(json_object_get(v, "desc"));
		if (!out->error_class)
			out->error_class = "GenericError";
		if (!out->error_desc)
			out->error_desc = "(no description)";
		return 0;
	}
	if ((v = json_object_get(msg, "event")) != NULL) {
		if (!json_is_string(v))
			return -EBADMSG;
		out->type = QMP_MSG_EVENT;
		out->event = json_string_value(v);
		out->value = json_object_get(msg, "data");
		return 0;
	}
	return -EBADMSG;
}

int qmp_command_format(const char *cmd, json_t *args, int64_t id, char **out, size_t *len)
{
	json_t *o = json_object();
	char *s = NULL, *line = NULL;
	int r = -ENOMEM;

	if (!o)
		goto out;
	if (json_object_set_new(o, "execute", json_string(cmd)) < 0 ||
	    json_object_set_new(o, "id", json_integer(id)) < 0)
		goto out;
	if (args && json_object_set(o, "arguments", args) < 0)
		goto out;
	s = json_dumps(o, JSON_COMPACT);
	if (!s)
		goto out;
	if (asprintf(&line, "%s\r\n", s) < 0) {
		line = NULL;
		goto out;
	}
	*len = strlen(line);
	*out = line;
	r = 0;
out:
	free(s);
	json_decref(o);
	return r;
}

int qmp_socket_connect(const char *path, int *fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s, r, fl;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	/* Connect blocking (a Unix connect to a listening socket completes at
	 * once), then switch to non-blocking for the poll() loop. */
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	fl = fcntl(s, F_GETFL);
	if (fl < 0 || fcntl(s, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	*fd = s;
	return 0;
fail:
	r = -errno;
	close(s);
	return r;
}

int qmp_socket_write(int fd, const void *buf, size_t len, int timeout_ms)
{
	const char *p = buf;
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			uint64_t now = util_now_ns();
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			if (now >= deadline)
				return -ETIMEDOUT;
			if (poll(&pfd, 1, (int)((deadline - now) / 1000000ull) + 1) < 0 &&
			    errno != EINTR)
				return -errno;
			continue;
		}
		return n < 0 ? -errno : -EPIPE;
	}
	return 0;
}

/* Wait for the next message that is not an event, within deadline. */
static int qmp_read_reply(int fd, struct qmp_parser *p, uint64_t deadline, json_t **msg)
{
	for (;;) {
		char buf[4096];
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now;
		ssize_t n;
		json_t *j = NULL;
		struct qmp_msg m;
		int r = qmp_parser_next(p, &j);

		if (r < 0)
			return r;
		if (r == 1) {
			if (qmp_msg_decode(j, &m) == 0 && m.type != QMP_MSG_EVENT) {
				*msg = j;
				return 0;
			}
			json_decref(j);
			continue;
		}
		now = util_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)((deadline - now) / 1000000ull) + 1);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		r = qmp_parser_feed(p, buf, (size_t)n);
		if (r < 0)
			return r;
	}
}

int qmp_handshake(int fd, struct qmp_parser *p, int timeout_ms, char **err)
{
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	json_t *msg = NULL;
	struct qmp_msg m;
	char *line = NULL;
	size_t len;
	int r;

	r = qmp_read_reply(fd, p, deadline, &msg);
	if (r < 0) {
		if (asprintf(err, "QEMU's monitor socket sent no QMP greeting (%s); "
			     "see qemu.log in the VM's run directory", strerror(-r)) < 0)
			*err = NULL;
		goto out;
	}
	if (qmp_msg_decode(msg, &m) < 0 || m.type != QMP_MSG_GREETING) {
		r = -EPROTO;
		if (asprintf(err, "QEMU's monitor socket did not start with a QMP greeting; "
			     "is something else listening on it?") < 0)
			*err = NULL;
		goto out;
	}
	json_decref(msg);
	msg = NULL;

	r = qmp_command_format("qmp_capabilities", NULL, 0, &line, &len);
	if (r < 0)
		goto out;
	r = qmp_socket_write(fd, line, len, timeout_ms);
	if (r == 0)
		r = qmp_read_reply(fd, p, deadline, &msg);
	if (r < 0) {
		if (asprintf(err, "QMP capabilities negotiation with QEMU failed (%s)",
			     strerror(-r)) < 0)
			*err = NULL;
		goto out;
	}
	if (qmp_msg_decode(msg, &m) < 0 || m.type != QMP_MSG_RETURN) {
		r = -EPROTO;
		if (asprintf(err, "QEMU refused QMP capabilities negotiation: %s",
			     m.type == QMP_MSG_ERROR ? m.error_desc : "unexpected reply") < 0)
			*err = NULL;
		goto out;
	}
	r = 0;
out:
	free(line);
	json_decref(msg);
	return r;
}
