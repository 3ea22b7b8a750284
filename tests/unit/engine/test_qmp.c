/* Unit tests for src/daemon/engine/qmp.c: the line parser (partial reads,
 * several messages per read, CRLF, oversize lines, garbage), message
 * decoding and command formatting. No QEMU needed. */
#include "daemon/engine/qmp.h"

#include <errno.h>

#include "harness.h"

TEST(greeting_and_partial_lines)
{
	static const char greeting[] =
		"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, "
		"\"major\": 7}, \"package\": \"Debian\"}, \"capabilities\": [\"oob\"]}}\r\n";
	struct qmp_parser *p = NULL;
	json_t *msg = NULL;
	struct qmp_msg m;

	CHECK_EQ_INT(qmp_parser_new(0, &p), 0);
	/* Byte by byte: nothing comes out until the newline. */
	for (size_t i = 0; i + 1 < sizeof(greeting) - 1; i++) {
		CHECK_EQ_INT(qmp_parser_feed(p, greeting + i, 1), 0);
		CHECK_EQ_INT(qmp_parser_next(p, &msg), 0);
	}
	CHECK_EQ_INT(qmp_parser_feed(p, "\n", 1), 0);
	CHECK_EQ_INT(qmp_parser_next(p, &msg), 1);
	CHECK_EQ_INT(qmp_msg_decode(msg, &m), 0);
	CHECK_EQ_INT(m.type, QMP_MSG_GREETING);
	CHECK_EQ_INT(m.id, -1);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(json_object_get(
			     m.value, "version"), "qemu"), "major")), 7);
	json_decref(msg);
	CHECK_EQ_INT(qmp_parser_next(p, &msg), 0);
	qmp_parser_free(p);
}

TEST(several_messages_in_one_read)
{
	static const char data[] =
		"{\"return\": {}, \"id\": 1}\r\n"
		"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n"
		"\r\n"
		"{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}, \"id\": 2}\r\n"
		"{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-shut";
	struct qmp_parser *p = NULL;
	json_t *msg = NULL;
	struct qmp_msg m;

	CHECK_EQ_INT(qmp_parser_new(0, &p), 0);
	CHECK_EQ_INT(qmp_parser_feed(p, data, sizeof(data) - 1), 0);

	CHECK_EQ_INT(qmp_parser_next(p, &msg), 1);
	CHECK_EQ_INT(qmp_msg_decode(msg, &m), 0);
	CHECK_EQ_INT(m.type, QMP_MSG_RETURN);
	CHECK_EQ_INT(m.id, 1);
	CHECK(json_is_object(m.value));
	json_decref(msg);

	CHECK_EQ_INT(qmp_parser_next(p, &msg), 1);
	CHECK_EQ_INT(qmp_msg_decode(msg, &m), 0);
	CHECK_EQ_INT(m.type, QMP_MSG_EVENT);
	CHECK_STR(m.event, "STOP");
	CHECK(m.value == NULL);
	json_decref(msg);

	/* The empty line is skipped. */
	CHECK_EQ_INT(qmp_parser_next(p, &msg), 1);
	CHECK_EQ_INT(qmp_msg_decode(msg, &m), 0);
	CHECK_EQ_INT(m.type, QMP_MSG_ERROR);
	CHECK_EQ_INT(m.id, 2);
	CHECK_STR(m.error_class, "GenericError");
	CHECK_STR(m.error_desc, "nope");
	json_decref(msg);

	/* The SHUTDOWN event is incomplete until the rest arrives. */
	CHECK_EQ_INT(qmp_parser_next(p, &msg), 0);
	CHECK_EQ_INT(qmp_parser_feed(p, "down\"}}\n", 8), 0);
	CHECK_EQ_INT(qmp_parser_next(p, &msg), 1);
	CHECK_EQ_INT(qmp_msg_decode(msg, &m), 0);
	CHECK_EQ_INT(m.type, QMP_MSG_EVENT);
	CHECK_STR(m.event, "SHUTDOWN");
	CHECK_STR(json_string_value(json_object_get(m.value, "reason")), "guest-shutdown");
	json_decref(msg);
	qmp_parser_free(p);
}

TEST(oversize_line_is_an_error)
{
	struct qmp_parser *p = NULL;
	char big[100];
	json_t *msg = NULL;

	memset(big, 'x', sizeof(big));
	CHECK_EQ_INT(qmp_parser_new(64, &p), 0);
	/* An unterminated line past the limit: refuse to buffer more. */
	CHECK_EQ_INT(qmp_parser_feed(p, "{\"return\": \"", 12), 0);
	CHECK_EQ_INT(qmp_parser_feed(p, big, sizeof(big)), -EMSGSIZE);
	qmp_parser_free(p);

	/* A complete line past the limit arriving in one read is dropped with
	 * -EMSGSIZE, and the next line still parses. */
	CHECK_EQ_INT(qmp_parser_new(64, &p), 0);
	{
		char line[200];
		int n = snprintf(line, sizeof(line), "{\"return\": \"%.*s\"}\n{\"return\": 1}\n",
				 80, big);

		CHECK_EQ_INT(qmp_parser_feed(p, line, (size_t)n), 0);
	}
	CHECK_EQ_INT(qmp_parser_next(p, &msg), -EMSGSIZE);
	CHECK_EQ_INT(qmp_parser_next(p, &msg), 1);
	CHECK_EQ_INT(json_integer_value(json_object_get(msg, "return")), 1);
	json_decref(msg);
	qmp_parser_free(p);
}

TEST(garbage_lines_are_skipped)
{
	struct qmp_parser *p = NULL;
	json_t *msg = NULL;
	struct qmp_msg m;
	static const char data[] = "not json\n[1,2]\n{\"a\":1,\"a\":2}\n{\"return\": 5, \"id\": 9}\n";

	CHECK_EQ_INT(qmp_parser_new(0, &p), 0);
	CHECK_EQ_INT(qmp_parser_feed(p, data, sizeof(data) - 1), 0);
	CHECK_EQ_INT(qmp_parser_next(p, &msg), -EBADMSG); /* not JSON */
	CHECK_EQ_INT(qmp_parser_next(p, &msg), -EBADMSG); /* not an object */
	CHECK_EQ_INT(qmp_parser_next(p, &msg), -EBADMSG); /* duplicate key */
	CHECK_EQ_INT(qmp_parser_next(p, &msg), 1);
	CHECK_EQ_INT(qmp_msg_decode(msg, &m), 0);
	CHECK_EQ_INT(m.type, QMP_MSG_RETURN);
	CHECK_EQ_INT(m.id, 9);
	json_decref(msg);
	qmp_parser_free(p);
}

TEST(decode_rejects_unknown_shapes)
{
	struct qmp_msg m;
	json_t *j;

	j = json_loads("{\"something\": 1}", 0, NULL);
	CHECK_EQ_INT(qmp_msg_decode(j, &m), -EBADMSG);
	json_decref(j);
	j = json_loads("{\"event\": 3}", 0, NULL);
	CHECK_EQ_INT(qmp_msg_decode(j, &m), -EBADMSG);
	json_decref(j);
	j = json_loads("{\"error\": \"x\"}", 0, NULL);
	CHECK_EQ_INT(qmp_msg_decode(j, &m), -EBADMSG);
	json_decref(j);
	/* An error without class/desc still decodes, with placeholders. */
	j = json_loads("{\"error\": {}, \"id\": \"str\"}", 0, NULL);
	CHECK_EQ_INT(qmp_msg_decode(j, &m), 0);
	CHECK_EQ_INT(m.type, QMP_MSG_ERROR);
	CHECK_EQ_INT(m.id, -1);
	CHECK_STR(m.error_class, "GenericError");
	json_decref(j);
}

TEST(command_format)
{
	char *line = NULL;
	size_t len = 0;
	json_t *args = json_pack("{s:s}", "device", "vd0");
	json_t *back;

	CHECK_EQ_INT(qmp_command_format("query-status", NULL, 7, &line, &len), 0);
	CHECK_STR(line, "{\"execute\":\"query-status\",\"id\":7}\r\n");
	CHECK_EQ_INT(len, strlen(line));
	free(line);

	CHECK_EQ_INT(qmp_command_format("eject", args, 8, &line, &len), 0);
	back = json_loadb(line, len, 0, NULL);
	CHECK(back != NULL);
	CHECK_STR(json_string_value(json_object_get(json_object_get(back, "arguments"), "device")),
		  "vd0");
	CHECK(line[len - 2] == '\r' && line[len - 1] == '\n');
	json_decref(back);
	json_decref(args);
	free(line);
}

HARNESS_MAIN
