/* qmp: the QEMU Machine Protocol, client side (docs/interop/qmp-spec.rst in
 * QEMU). Messages are JSON objects, one per line (QEMU ends each with
 * "\r\n"): a greeting {"QMP": ...} on connect, then for each command
 * {"execute": ..., "id": N} either {"return": ..., "id": N} or
 * {"error": {"class", "desc"}, "id": N}, and asynchronous
 * {"event": ..., "data": ..., "timestamp": ...} at any time.
 *
 * The parser is a pure function over a byte buffer so it can be tested
 * without QEMU: bytes come in arbitrary pieces (partial lines, several
 * messages per read), and a line longer than the limit is an error, because
 * a monitor that never ends its line must not make us allocate without
 * bound. The socket helpers below are used by the qemu driver. */
#ifndef VESSEL_DAEMON_ENGINE_QMP_H
#define VESSEL_DAEMON_ENGINE_QMP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The largest QMP line we accept; query results for a small VM are a few
 * KiB, so this is generous. */
#define QMP_MAX_LINE (4 * 1024 * 1024)

struct qmp_parser {
	char *buf;
	size_t len, cap, max;
	size_t scan; /* bytes of buf already searched for '\n' */
};

/* max: longest line accepted (0 means QMP_MAX_LINE). */
int qmp_parser_new(size_t max, struct qmp_parser **out);
void qmp_parser_free(struct qmp_parser *p);
/* Add bytes read from the socket. Returns 0, -ENOMEM, or -EMSGSIZE when
 * the unfinished line would exceed the limit (the stream cannot be resynced
 * then; the caller must drop the connection). */
int qmp_parser_feed(struct qmp_parser *p, const void *data, size_t len);
/* Take the next complete message. Returns 1 with *msg (a JSON object, the
 * caller owns the reference), 0 when no complete line is buffered, or
 * -EBADMSG when a line is not a JSON object, or -EMSGSIZE when a complete
 * line is longer than the limit (either way that line is dropped, so the
 * caller may go on). Empty lines are skipped. */
int qmp_parser_next(struct qmp_parser *p, json_t **msg);

enum qmp_msg_type {
	QMP_MSG_GREETING = 0,
	QMP_MSG_RETURN,
	QMP_MSG_ERROR,
	QMP_MSG_EVENT,
};

/* A decoded message. Pointers borrow from the json_t it was decoded from. */
struct qmp_msg {
	enum qmp_msg_type type;
	int64_t id;              /* -1 when absent or not an integer */
	json_t *value;           /* "return" value, event "data", or the greeting's "QMP" */
	const char *event;       /* QMP_MSG_EVENT */
	const char *error_class; /* QMP_MSG_ERROR */
	const char *error_desc;  /* QMP_MSG_ERROR */
};

/* Classify a message. Returns 0 or -EBADMSG when it is none of the four. */
int qmp_msg_decode(json_t *msg, struct qmp_msg *out);

/* Format {"execute": cmd, "arguments": args, "id": id} plus "\r\n" into a
 * malloc'd string. args may be NULL (not consumed). Returns 0 or -ENOMEM. */
int qmp_command_format(const char *cmd, json_t *args, int64_t id, char **out, size_t *len);

/* Connect to a QMP Unix socket. Returns 0 with a non-blocking, close-on-exec
 * fd, -ENAMETOOLONG, or the connect errno (-ENOENT, -ECONNREFUSED...). */
int qmp_socket_connect(const char *path, int *fd);

/* Write all of buf to a non-blocking fd, waiting up to timeout_ms in total.
 * Returns 0, -ETIMEDOUT or the write errno. */
int qmp_socket_write(int fd, const void *buf, size_t len, int timeout_ms);

/* On a freshly connected socket: read the greeting, send qmp_capabilities,
 * read its return (QMP spec "Capabilities Negotiation"), all within
 * timeout_ms. Events that arrive meanwhile are dropped. Returns 0, or a
 * negative errno with *err set (malloc'd sentence). */
int qmp_handshake(int fd, struct qmp_parser *p, int timeout_ms, char **err);

#endif
