/* control: the protocol of vessel-vmm's control socket. Newline-delimited
 * JSON, one request per line, each line at most CONTROL_LINE_MAX bytes:
 *   {"cmd":"hello"}            -> {"ok":true,"version":1}
 *   {"cmd":"status"}           -> {"ok":true,"state":"running",...}
 *   {"cmd":"pause"|"resume"|"poweroff"|"quit"|"stats"}
 * A request may carry "version":1; any other version is refused. Every
 * failure is an {"ok":false,"error":"<sentence>"} reply; nothing a client
 * sends ends the monitor except "quit". This file has the framing, parsing
 * and dispatch (unit tested); the socket itself lives in vmm.c. */
#ifndef VESSEL_VMM_CONTROL_H
#define VESSEL_VMM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define CONTROL_VERSION 1
#define CONTROL_LINE_MAX (64 * 1024)

enum control_cmd {
	CONTROL_CMD_HELLO,
	CONTROL_CMD_STATUS,
	CONTROL_CMD_PAUSE,
	CONTROL_CMD_RESUME,
	CONTROL_CMD_POWEROFF,
	CONTROL_CMD_QUIT,
	CONTROL_CMD_STATS,
};

/* What the monitor does for each command. Each returns 0 (and may add
 * fields to reply) or a negative errno with a sentence in err. */
struct control_ops {
	int (*status)(void *opaque, json_t *reply, char *err, size_t errlen);
	int (*pause)(void *opaque, json_t *reply, char *err, size_t errlen);
	int (*resume)(void *opaque, json_t *reply, char *err, size_t errlen);
	int (*poweroff)(void *opaque, json_t *reply, char *err, size_t errlen);
	int (*quit)(void *opaque, json_t *reply, char *err, size_t errlen);
	int (*stats)(void *opaque, json_t *reply, char *err, size_t errlen);
};

/* Parse one request line (without the newline). Returns 0 and *cmd, or
 * -EINVAL with a sentence for the client in err. */
int control_parse(const char *line, size_t len, enum control_cmd *cmd, char *err, size_t errlen);

/* Parse, run and answer one line. Returns the reply as a malloc'd string
 * ending in '\n' (NULL only when out of memory). */
char *control_handle_line(const char *line, size_t len, const struct control_ops *ops, void *opaque);

/* The error reply for a line that exceeded CONTROL_LINE_MAX. */
char *control_reply_error(const char *msg);

/* Splits a byte stream into lines. A line longer than CONTROL_LINE_MAX is
 * reported once through on_oversize and skipped up to its newline. */
struct control_framer {
	char buf[CONTROL_LINE_MAX + 1];
	size_t len;
	bool discarding;
};

void control_framer_init(struct control_framer *f);
void control_framer_feed(struct control_framer *f, const char *data, size_t n,
			 void (*on_line)(void *opaque, const char *line, size_t len),
			 void (*on_oversize)(void *opaque), void *opaque);

#endif
