/* Unit tests for src/vmm/control.c and src/vmm/args.c: request parsing
 * (malformed JSON, wrong types, unknown commands, versions), dispatch with
 * error replies, line framing with oversize lines and split reads, and the
 * command line's one-line errors. */
#include "vmm/args.h"
#include "vmm/control.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include "harness.h"

static int fake_calls;
static int fake_pause(void *o, json_t *reply, char *err, size_t errlen)
{
	fake_calls++;
	return 0;
}
static int fake_status(void *o, json_t *reply, char *err, size_t errlen)
{
	json_object_set_new(reply, "state", json_string("running"));
	return 0;
}
static int fake_fail(void *o, json_t *reply, char *err, size_t errlen)
{
	snprintf(err, errlen, "the VM is not paused");
	return -EALREADY;
}
static int fake_fail_silent(void *o, json_t *reply, char *err, size_t errlen)
{
	return -EIO;
}

static const struct control_ops ops = {
	.status = fake_status,
	.pause = fake_pause,
	.resume = fake_fail,
	.poweroff = fake_fail_silent,
	/* quit and stats left NULL: "not supported" replies */
};

/* Run one line and parse the reply back. */
static json_t *run(const char *line)
{
	char *r = control_handle_line(line, strlen(line), &ops, NULL);
	CHECK(r != NULL);
	if (!r)
		return NULL;
	size_t n = strlen(r);
	CHECK(n > 0 && r[n - 1] == '\n');
	CHECK(memchr(r, '\n', n - 1) == NULL);   /* exactly one line */
	json_t *j = json_loads(r, 0, NULL);
	CHECK(j != NULL);
	free(r);
	return j;
}

static bool reply_ok(json_t *j)
{
	return json_is_true(json_object_get(j, "ok"));
}

static const char *reply_error(json_t *j)
{
	return json_string_value(json_object_get(j, "error"));
}

TEST(parse)
{
	enum control_cmd c;
	char err[256];
	CHECK_EQ_INT(control_parse("{\"cmd\":\"hello\"}", 15, &c, err, sizeof(err)), 0);
	CHECK_EQ_INT(c, CONTROL_CMD_HELLO);
	const char *s = "{\"cmd\":\"stats\",\"version\":1}";
	CHECK_EQ_INT(control_parse(s, strlen(s), &c, err, sizeof(err)), 0);
	CHECK_EQ_INT(c, CONTROL_CMD_STATS);
	static const char *const bad[] = {
		"", "{", "nope", "[]", "42", "\"cmd\"", "{\"cmd\":1}", "{\"command\":\"status\"}",
		"{\"cmd\":\"reboot\"}", "{\"cmd\":\"status\",\"version\":2}", "{\"cmd\":\"status\",\"version\":\"1\"}",
		"{\"cmd\":\"status\",\"cmd\":\"quit\"}", "{\"cmd\":\"status\"} {\"cmd\":\"quit\"}",
		"{\"cmd\":null}", "{\"cmd\":\"STATUS\"}", "\xff\xfe{}",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CHECK_EQ_INT(control_parse(bad[i], strlen(bad[i]), &c, err, sizeof(err)), -EINVAL);
		CHECK(err[0] != 0);
	}
	/* a NUL inside the line does not cut it short into something valid */
	const char nul[] = "{\"cmd\":\"quit\"}\0garbage";
	CHECK_EQ_INT(control_parse(nul, sizeof(nul) - 1, &c, err, sizeof(err)), -EINVAL);
	/* too long */
	char *big = malloc(CONTROL_LINE_MAX + 2);
	memset(big, ' ', CONTROL_LINE_MAX + 1);
	big[CONTROL_LINE_MAX + 1] = 0;
	CHECK_EQ_INT(control_parse(big, CONTROL_LINE_MAX + 1, &c, err, sizeof(err)), -EINVAL);
	free(big);
}

TEST(dispatch)
{
	json_t *j = run("{\"cmd\":\"hello\"}");
	CHECK(reply_ok(j));
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "version")), 1);
	json_decref(j);

	j = run("{\"cmd\":\"status\"}");
	CHECK(reply_ok(j));
	CHECK_STR(json_string_value(json_object_get(j, "state")), "running");
	json_decref(j);

	fake_calls = 0;
	j = run("{\"cmd\":\"pause\",\"version\":1}");
	CHECK(reply_ok(j));
	CHECK_EQ_INT(fake_calls, 1);
	json_decref(j);

	j = run("{\"cmd\":\"resume\"}");
	CHECK(!reply_ok(j));
	CHECK_STR(reply_error(j), "the VM is not paused");
	json_decref(j);

	j = run("{\"cmd\":\"poweroff\"}");
	CHECK(!reply_ok(j));
	CHECK(reply_error(j) && strstr(reply_error(j), "poweroff"));
	json_decref(j);

	j = run("{\"cmd\":\"quit\"}");
	CHECK(!reply_ok(j));
	json_decref(j);

	j = run("{\"cmd\":\"fly\"}");
	CHECK(!reply_ok(j));
	CHECK(reply_error(j) && strstr(reply_error(j), "unknown command 'fly'"));
	json_decref(j);

	j = run("{\"cmd\":");
	CHECK(!reply_ok(j));
	CHECK(reply_error(j) && strstr(reply_error(j), "not valid JSON"));
	json_decref(j);

	/* quotes and newlines in the command name cannot break the reply */
	j = run("{\"cmd\":\"a\\\"b\\nc\"}");
	CHECK(!reply_ok(j));
	json_decref(j);
}

struct frames {
	int lines, oversize;
	char last[128];
	size_t last_len;
};

static void on_line(void *o, const char *line, size_t len)
{
	struct frames *f = o;
	f->lines++;
	f->last_len = len;
	snprintf(f->last, sizeof(f->last), "%.*s", (int)(len < 100 ? len : 100), line);
}

static void on_oversize(void *o)
{
	((struct frames *)o)->oversize++;
}

TEST(framing)
{
	static struct control_framer fr;
	struct frames f = {0};
	control_framer_init(&fr);
	const char *s = "{\"cmd\":\"hello\"}\n{\"cmd\":\"sta";
	control_framer_feed(&fr, s, strlen(s), on_line, on_oversize, &f);
	CHECK_EQ_INT(f.lines, 1);
	CHECK_STR(f.last, "{\"cmd\":\"hello\"}");
	control_framer_feed(&fr, "tus\"}\r\n\n\n", 9, on_line, on_oversize, &f);
	CHECK_EQ_INT(f.lines, 2);   /* CR stripped, empty lines skipped */
	CHECK_STR(f.last, "{\"cmd\":\"status\"}");

	/* a line of exactly the limit passes; one byte more is refused once */
	char *big = malloc(CONTROL_LINE_MAX + 10);
	memset(big, 'x', CONTROL_LINE_MAX + 10);
	control_framer_feed(&fr, big, CONTROL_LINE_MAX, on_line, on_oversize, &f);
	control_framer_feed(&fr, "\n", 1, on_line, on_oversize, &f);
	CHECK_EQ_INT(f.lines, 3);
	CHECK_EQ_INT(f.last_len, CONTROL_LINE_MAX);
	CHECK_EQ_INT(f.oversize, 0);
	for (int i = 0; i < 5; i++)   /* 5 chunks of one endless line */
		control_framer_feed(&fr, big, CONTROL_LINE_MAX / 2 + 7, on_line, on_oversize, &f);
	CHECK_EQ_INT(f.oversize, 1);
	CHECK_EQ_INT(f.lines, 3);
	/* the stream recovers at the next newline */
	s = "tail of the long line\n{\"cmd\":\"quit\"}\n";
	control_framer_feed(&fr, s, strlen(s), on_line, on_oversize, &f);
	CHECK_EQ_INT(f.lines, 4);
	CHECK_STR(f.last, "{\"cmd\":\"quit\"}");
	free(big);
	/* byte by byte */
	s = "{\"cmd\":\"stats\"}\n";
	for (size_t i = 0; i < strlen(s); i++)
		control_framer_feed(&fr, s + i, 1, on_line, on_oversize, &f);
	CHECK_EQ_INT(f.lines, 5);
	CHECK_STR(f.last, "{\"cmd\":\"stats\"}");
}

/* argv copies live until the next call: struct args points into them. */
static char *argv_pool[32];

static int parse(char *err, size_t errlen, struct args *a, ...)
{
	char *argv[32];
	int argc = 0;
	for (unsigned i = 0; i < 32; i++) {
		free(argv_pool[i]);
		argv_pool[i] = NULL;
	}
	va_list ap;
	va_start(ap, a);
	argv[argc++] = (char *)"vessel-vmm";
	for (char *s; (s = va_arg(ap, char *)) != NULL;) {
		argv_pool[argc] = strdup(s);
		argv[argc] = argv_pool[argc];
		argc++;
	}
	va_end(ap);
	argv[argc] = NULL;
	return args_parse(argc, argv, a, err, errlen);
}

TEST(command_line)
{
	struct args a;
	char err[256];
	CHECK_EQ_INT(parse(err, sizeof(err), &a, "--kernel", "bz", "--cpus", "4", "--memory", "1G", "--disk",
			   "root.img,ro", "--disk", "fd=7", "--net", "tap=tap0,mac=52:54:00:aa:bb:cc", "--rng",
			   "--control", "/run/c.sock", "--console", "socket:/run/con.sock", NULL), 0);
	CHECK_STR(a.kernel, "bz");
	CHECK_EQ_INT(a.cpus, 4);
	CHECK_EQ_INT(a.memory, 1ull << 30);
	CHECK_EQ_INT(a.nr_disks, 2);
	CHECK_STR(a.disks[0].path, "root.img");
	CHECK(a.disks[0].ro);
	CHECK_EQ_INT(a.disks[1].fd, 7);
	CHECK(!a.disks[1].ro);
	CHECK_EQ_INT(a.nr_nets, 1);
	CHECK_STR(a.nets[0].tap, "tap0");
	CHECK_EQ_INT(a.nets[0].mac[3], 0xaa);
	CHECK(a.rng);
	CHECK_EQ_INT(a.console, ARGS_CONSOLE_SOCKET);
	CHECK_STR(a.console_path, "/run/con.sock");

	CHECK_EQ_INT(parse(err, sizeof(err), &a, "--kernel", "bz", NULL), 0);
	CHECK_EQ_INT(a.cpus, 1);
	CHECK_STR(a.cmdline, "console=ttyS0");

	static const char *const bad[][4] = {
		{"--cpus", "2", NULL},                       /* no kernel */
		{"--kernel", "k", "--cpus", "0"},
		{"--kernel", "k", "--cpus", "255"},
		{"--kernel", "k", "--cpus", "two"},
		{"--kernel", "k", "--memory", "1M"},
		{"--kernel", "k", "--memory", "100000T"},
		{"--kernel", "k", "--memory", "65M"},
		{"--kernel", "k", "--disk", ",ro"},
		{"--kernel", "k", "--disk", "a,rw"},
		{"--kernel", "k", "--disk", "fd=1"},
		{"--kernel", "k", "--net", "tap0"},
		{"--kernel", "k", "--net", "tap=a,fd=5"},
		{"--kernel", "k", "--net", "tap=a,mac=zz"},
		{"--kernel", "k", "--console", "tcp:1"},
		{"--kernel", "k", "stray"},
		{"--kernel", "k", "--what"},
		{"--kernel", NULL},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CHECK_EQ_INT(parse(err, sizeof(err), &a, bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL), -EINVAL);
		CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
	}
	CHECK_EQ_INT(parse(err, sizeof(err), &a, "--help", NULL), 0);
	CHECK(a.help);
	uint8_t mac[6];
	CHECK_EQ_INT(args_parse_mac("52:54:00:12:34:56", mac), 0);
	CHECK_EQ_INT(args_parse_mac("52:54:00:12:34:56:", mac), -EINVAL);
	CHECK_EQ_INT(args_parse_mac("52:54:00:12:34", mac), -EINVAL);
	CHECK_EQ_INT(args_parse_mac("ff:ff:ff:ff:ff:ff", mac), -EINVAL);
	for (unsigned i = 0; i < 32; i++)
		free(argv_pool[i]);
}

HARNESS_MAIN
