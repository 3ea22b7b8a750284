/* control: framing, parsing and dispatch of control-socket requests. The
 * client is a local process (vesseld) but is still treated as untrusted
 * input: sizes are checked before parsing and every error is a reply. */
#include "vmm/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static const char *const control_cmd_names[] = {
	[CONTROL_CMD_HELLO] = "hello",
	[CONTROL_CMD_STATUS] = "status",
	[CONTROL_CMD_PAUSE] = "pause",
	[CONTROL_CMD_RESUME] = "resume",
	[CONTROL_CMD_POWEROFF] = "poweroff",
	[CONTROL_CMD_QUIT] = "quit",
	[CONTROL_CMD_STATS] = "stats",
};

int control_parse(const char *line, size_t len, enum control_cmd *cmd, char *err, size_t errlen)
{
	int ret = -EINVAL;
	json_error_t jerr;
	json_t *root = NULL;

	if (len > CONTROL_LINE_MAX) {
		snprintf(err, errlen, "request is longer than %d bytes; send one command per line",
			 CONTROL_LINE_MAX);
		goto out;
	}
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "request is not valid JSON (%s at column %d); send one JSON object per line",
			 jerr.text, jerr.column);
		goto out;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "request must be a JSON object such as {\"cmd\":\"status\"}");
		goto out;
	}
	json_t *ver = json_object_get(root, "version");
	if (ver && (!json_is_integer(ver) || json_integer_value(ver) != CONTROL_VERSION)) {
		snprintf(err, errlen, "protocol version not supported; this monitor speaks version %d",
			 CONTROL_VERSION);
		goto out;
	}
	const char *name = json_string_value(json_object_get(root, "cmd"));
	if (!name) {
		snprintf(err, errlen, "request has no \"cmd\" string; send e.g. {\"cmd\":\"hello\"}");
		goto out;
	}
	for (unsigned i = 0; i < ARRAY_SIZE(control_cmd_names); i++) {
		if (strcmp(name, control_cmd_names[i]) == 0) {
			*cmd = (enum control_cmd)i;
			ret = 0;
			goto out;
		}
	}
	snprintf(err, errlen,
		 "unknown command '%.64s'; known commands: hello, status, pause, resume, poweroff, quit, stats",
		 name);
out:
	json_decref(root);
	return ret;
}

static char *control_dump(json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}

char *control_reply_error(const char *msg)
{
	json_t *o = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	return o ? control_dump(o) : NULL;
}

char *control_handle_line(const char *line, size_t len, const struct control_ops *ops, void *opaque)
{
	char err[256] = "";
	enum control_cmd cmd;
	if (control_parse(line, len, &cmd, err, sizeof(err)) < 0)
		return control_reply_error(err);

	json_t *reply = json_object();
	if (!reply)
		return NULL;
	int (*fn)(void *, json_t *, char *, size_t) = NULL;
	switch (cmd) {
	case CONTROL_CMD_HELLO:
		json_object_set_new(reply, "version", json_integer(CONTROL_VERSION));
		break;
	case CONTROL_CMD_STATUS: fn = ops->status; break;
	case CONTROL_CMD_PAUSE: fn = ops->pause; break;
	case CONTROL_CMD_RESUME: fn = ops->resume; break;
	case CONTROL_CMD_POWEROFF: fn = ops->poweroff; break;
	case CONTROL_CMD_QUIT: fn = ops->quit; break;
	case CONTROL_CMD_STATS: fn = ops->stats; break;
	}
	if (cmd != CONTROL_CMD_HELLO) {
		int ret = fn ? fn(opaque, reply, err, sizeof(err)) : -ENOTSUP;
		if (ret < 0) {
			json_decref(reply);
			if (!err[0])
				snprintf(err, sizeof(err), "command '%s' failed: %s", control_cmd_names[cmd],
					 strerror(-ret));
			return control_reply_error(err);
		}
	}
	json_object_set_new(reply, "ok", json_true());
	return control_dump(reply);
}

void control_framer_init(struct control_framer *f)
{
	f->len = 0;
	f->discarding = false;
}

void control_framer_feed(struct control_framer *f, const char *data, size_t n,
			 void (*on_line)(void *opaque, const char *line, size_t len),
			 void (*on_oversize)(void *opaque), void *opaque)
{
	while (n) {
		const char *nl = memchr(data, '\n', n);
		size_t chunk = nl ? (size_t)(nl - data) : n;
		if (!f->discarding) {
			if (f->len + chunk > CONTROL_LINE_MAX) {
				f->discarding = true;
				f->len = 0;
				on_oversize(opaque);
			} else {
				memcpy(f->buf + f->len, data, chunk);
				f->len += chunk;
			}
		}
		if (!nl)
			return;
		if (!f->discarding) {
			size_t len = f->len;
			/* Tolerate CRLF from interactive clients such as socat. */
			if (len && f->buf[len - 1] == '\r')
				len--;
			f->buf[len] = '\0';
			if (len)
				on_line(opaque, f->buf, len);
		}
		f->len = 0;
		f->discarding = false;
		data = nl + 1;
		n -= chunk + 1;
	}
}
