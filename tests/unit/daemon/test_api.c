/* API tests for vesseld's core: a real daemon (HTTP on a Unix socket and
 * TCP, SQLite store, qemu-img for disks) on a temporary data directory,
 * with the fake engine instead of QEMU. Checks the REST contract of
 * docs/api.md end to end: auth, errors, VM lifecycle and state rules,
 * stop with and without a cooperative guest, crash and restart policy,
 * console over HTTP and WebSocket, body limit, and that a failed request
 * leaves nothing behind. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/qemu_img.h"
#include "fake_daemon.h"
#include "fake_engine.h"
#include "harness.h"
#include "lib/util.h"
#include "lib/ws.h"

static struct daemon *d;
static struct daemon_config cfg;
static char dir[PATH_MAX];
static char sock[PATH_MAX + 16];
static int tcp_port;
static bool have_qemu_img;

struct resp {
	long status;
	char *body;
	size_t len;
	char start[32], next[32];
	json_t *json;
};

static size_t on_body(char *p, size_t sz, size_t n, void *cls)
{
	struct resp *r = cls;
	char *nb = realloc(r->body, r->len + sz * n + 1);
	if (!nb)
		return 0;
	memcpy(nb + r->len, p, sz * n);
	r->body = nb;
	r->len += sz * n;
	r->body[r->len] = '\0';
	return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *cls)
{
	struct resp *r = cls;
	if (strncasecmp(p, "X-Console-Start: ", 17) == 0)
		sscanf(p + 17, "%31s", r->start);
	if (strncasecmp(p, "X-Console-Next: ", 16) == 0)
		sscanf(p + 16, "%31s", r->next);
	return sz * n;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

/* One request; via_tcp with token (NULL = none). */
static struct resp req_full(const char *method, const char *path, const char *body, size_t blen,
			    bool via_tcp, const char *token)
{
	struct resp r = {0};
	CURL *c = curl_easy_init();
	char url[512];
	struct curl_slist *h = NULL;
	if (via_tcp) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", tcp_port, path);
	} else {
		snprintf(url, sizeof(url), "http://localhost%s", path);
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	}
	if (token) {
		char a[256];
		snprintf(a, sizeof(a), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, a);
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (r.body)
		r.json = json_loads(r.body, 0, NULL);
	return r;
}

static struct resp req(const char *method, const char *path, const char *body)
{
	return req_full(method, path, body, body ? strlen(body) : 0, false, NULL);
}

static const char *jstr(json_t *j, const char *a, const char *b)
{
	json_t *o = json_object_get(j, a);
	return json_string_value(b ? json_object_get(o, b) : o);
}

static const char *vm_state(const char *name)
{
	static char st[32];
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/vms/%s", name);
	struct resp r = req("GET", path, NULL);
	snprintf(st, sizeof(st), "%s", r.json ? jstr(r.json, "vm", "state") : "(none)");
	resp_free(&r);
	return st;
}

static bool wait_state(const char *name, const char *want, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (strcmp(vm_state(name), want) == 0)
			return true;
		usleep(20 * 1000);
	}
	return false;
}

#define CHECK_ERR(r, st, code)                                                   \
	do {                                                                     \
		CHECK_EQ_INT((r).status, st);                                    \
		CHECK_STR(jstr((r).json, "error", "code"), code);                \
		const char *m_ = jstr((r).json, "error", "message");             \
		CHECK(m_ && strlen(m_) > 15);                                    \
	} while (0)

TEST(setup)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	have_qemu_img = system("qemu-img --version >/dev/null 2>&1") == 0;
	snprintf(dir, sizeof(dir), "/tmp/vessel-test-api-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	CHECK_EQ_INT(fake_daemon_start(&cfg, dir, &d, &tcp_port), 0);
	struct stat st;
	CHECK_EQ_INT(stat(sock, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	char tok[PATH_MAX + 32];
	snprintf(tok, sizeof(tok), "%s/data/admin.token", dir);
	CHECK_EQ_INT(stat(tok, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
}

TEST(auth)
{
	struct resp r = req_full("GET", "/api/v1/vms", NULL, 0, true, NULL);
	CHECK_ERR(r, 401, "unauthorized");
	resp_free(&r);
	r = req_full("GET", "/api/v1/vms", NULL, 0, true, "wrong");
	CHECK_ERR(r, 401, "unauthorized");
	resp_free(&r);
	/* a token that is a prefix of the real one is still wrong */
	char prefix[17];
	memcpy(prefix, d->token, 16);
	prefix[16] = '\0';
	r = req_full("GET", "/api/v1/vms", NULL, 0, true, prefix);
	CHECK_EQ_INT(r.status, 401);
	resp_free(&r);
	r = req_full("GET", "/api/v1/vms", NULL, 0, true, d->token);
	CHECK_EQ_INT(r.status, 200);
	CHECK(json_is_array(json_object_get(r.json, "vms")));
	resp_free(&r);
	r = req("GET", "/api/v1/host", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(jstr(r.json, "accel", NULL), "tcg");
	CHECK_EQ_INT(json_array_size(json_object_get(r.json, "warnings")), 1);
	/* No cgroup root configured: neither layout is in use. */
	json_t *prio = json_object_get(r.json, "priorities");
	CHECK(json_is_false(json_object_get(prio, "enforced")));
	CHECK(json_is_null(json_object_get(prio, "mode")));
	CHECK(json_is_null(json_object_get(prio, "io_cgroup_root")));
	resp_free(&r);
	r = req("GET", "/api/v1/openapi.json", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK(json_object_get(r.json, "paths") != NULL);
	resp_free(&r);
}

TEST(routing_and_body_errors)
{
	struct resp r = req("GET", "/api/v1/nope", NULL);
	CHECK_ERR(r, 404, "not_found");
	resp_free(&r);
	r = req("PUT", "/api/v1/vms", "{}");
	CHECK_ERR(r, 405, "method_not_allowed");
	resp_free(&r);
	r = req("POST", "/api/v1/vms", "{\"name\":");
	CHECK_ERR(r, 400, "invalid_argument");
	resp_free(&r);
	r = req("POST", "/api/v1/vms", "{\"name\":\"x\",\"cpus\":2}");
	CHECK_ERR(r, 400, "invalid_argument");
	resp_free(&r);
	size_t big = 65 * 1024;
	char *b = malloc(big);
	memset(b, ' ', big);
	b[0] = '{';
	b[big - 1] = '}';
	r = req_full("POST", "/api/v1/vms", b, big, false, NULL);
	CHECK_ERR(r, 413, "payload_too_large");
	resp_free(&r);
	free(b);
	r = req("GET", "/api/v1/vms/ghost", NULL);
	CHECK_ERR(r, 404, "not_found");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/ghost/start", NULL);
	CHECK_ERR(r, 404, "not_found");
	resp_free(&r);
}

TEST(lifecycle)
{
	struct resp r = req("POST", "/api/v1/vms", "{\"name\":\"web-1\",\"vcpus\":2}");
	CHECK_EQ_INT(r.status, 201);
	CHECK_STR(jstr(r.json, "vm", "state"), "stopped");
	CHECK_STR(jstr(r.json, "vm", "restart_policy"), "never");
	CHECK(json_is_null(json_object_get(json_object_get(r.json, "vm"), "pid")));
	resp_free(&r);
	r = req("POST", "/api/v1/vms", "{\"name\":\"web-1\"}");
	CHECK_ERR(r, 409, "conflict");
	resp_free(&r);

	r = req("POST", "/api/v1/vms/web-1/stop", NULL);
	CHECK_ERR(r, 409, "conflict");
	CHECK(strstr(jstr(r.json, "error", "message"), "stopped") != NULL);
	resp_free(&r);

	r = req("POST", "/api/v1/vms/web-1/start", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(jstr(r.json, "vm", "state"), "running");
	CHECK(json_integer_value(json_object_get(json_object_get(r.json, "vm"), "pid")) > 40000);
	resp_free(&r);
	r = req("POST", "/api/v1/vms/web-1/start", NULL);
	CHECK_ERR(r, 409, "conflict");
	CHECK(strstr(jstr(r.json, "error", "message"), "running") != NULL);
	resp_free(&r);
	r = req("PATCH", "/api/v1/vms/web-1", "{\"vcpus\":4}");
	CHECK_ERR(r, 409, "conflict");
	resp_free(&r);
	r = req("DELETE", "/api/v1/vms/web-1", NULL);
	CHECK_ERR(r, 409, "conflict");
	resp_free(&r);

	r = req("POST", "/api/v1/vms/web-1/pause", NULL);
	CHECK_STR(jstr(r.json, "vm", "state"), "paused");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/web-1/reboot", NULL);
	CHECK_ERR(r, 409, "conflict");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/web-1/resume", NULL);
	CHECK_STR(jstr(r.json, "vm", "state"), "running");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/web-1/reboot", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);

	/* a cooperative guest powers off: not forced */
	fake_honour_powerdown = true;
	r = req("POST", "/api/v1/vms/web-1/stop", "{\"timeout\":10}");
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(jstr(r.json, "vm", "state"), "stopped");
	CHECK(json_is_false(json_object_get(r.json, "forced")));
	resp_free(&r);

	/* a guest that ignores the button is forced after the timeout */
	r = req("POST", "/api/v1/vms/web-1/start", NULL);
	resp_free(&r);
	fake_honour_powerdown = false;
	uint64_t t0 = util_now_ns();
	r = req("POST", "/api/v1/vms/web-1/stop", "{\"timeout\":1}");
	uint64_t took = util_now_ns() - t0;
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(jstr(r.json, "vm", "state"), "stopped");
	CHECK(json_is_true(json_object_get(r.json, "forced")));
	CHECK(took >= 900000000ull);
	resp_free(&r);
	fake_honour_powerdown = true;

	r = req("PATCH", "/api/v1/vms/web-1", "{\"vcpus\":4,\"description\":\"db\"}");
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(r.json, "vm"), "vcpus")), 4);
	resp_free(&r);
	r = req("PATCH", "/api/v1/vms/web-1", "{\"vcpus\":400}");
	CHECK_ERR(r, 400, "invalid_argument");
	resp_free(&r);
	r = req("GET", "/api/v1/vms/web-1", NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(r.json, "vm"), "vcpus")), 4);
	resp_free(&r);
}

TEST(engine_failure_changes_nothing)
{
	struct resp r = req("POST", "/api/v1/vms", "{\"name\":\"fail-1\"}");
	CHECK_EQ_INT(r.status, 201);
	resp_free(&r);
	r = req("POST", "/api/v1/vms/fail-1/start", NULL);
	CHECK_ERR(r, 500, "engine_failed");
	CHECK(strstr(jstr(r.json, "error", "message"), "Could not open") != NULL);
	resp_free(&r);
	CHECK_STR(vm_state("fail-1"), "stopped");
}

TEST(crash_and_restart_policy)
{
	struct resp r = req("POST", "/api/v1/vms", "{\"name\":\"c1\"}");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/c1/start", NULL);
	resp_free(&r);
	CHECK_EQ_INT(fake_engine_crash("c1"), 0);
	CHECK(wait_state("c1", "crashed", 2000));
	r = req("GET", "/api/v1/vms/c1", NULL);
	CHECK_STR(jstr(json_object_get(r.json, "vm"), "crash_reason", NULL),
		  "QEMU exited with signal 9 (Killed)");
	resp_free(&r);
	/* crashed VMs can be started again by hand */
	r = req("POST", "/api/v1/vms/c1/start", NULL);
	CHECK_STR(jstr(r.json, "vm", "state"), "running");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/c1/force-stop", NULL);
	CHECK_STR(jstr(r.json, "vm", "state"), "stopped");
	resp_free(&r);

	/* on-crash: restarted, at most 3 times within 60 s */
	r = req("PATCH", "/api/v1/vms/c1", "{\"restart_policy\":\"on-crash\"}");
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	r = req("POST", "/api/v1/vms/c1/start", NULL);
	resp_free(&r);
	for (int i = 0; i < 3; i++) {
		/* fake_starts is bumped atomically by the restart thread */
		unsigned before = __atomic_load_n(&fake_starts, __ATOMIC_ACQUIRE);
		CHECK_EQ_INT(fake_engine_crash("c1"), 0);
		for (int k = 0; k < 200 && __atomic_load_n(&fake_starts, __ATOMIC_ACQUIRE) == before;
		     k++)
			usleep(20 * 1000);
		CHECK(__atomic_load_n(&fake_starts, __ATOMIC_ACQUIRE) == before + 1);
		CHECK(wait_state("c1", "running", 2000));
	}
	CHECK_EQ_INT(fake_engine_crash("c1"), 0);
	usleep(1500 * 1000);
	CHECK_STR(vm_state("c1"), "crashed");
}

TEST(console_http)
{
	struct resp r = req("POST", "/api/v1/vms", "{\"name\":\"con\"}");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/con/console", "x");
	CHECK_ERR(r, 409, "conflict");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/con/start", NULL);
	resp_free(&r);
	r = req("GET", "/api/v1/vms/con/console", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.len, 8);
	CHECK(r.body && memcmp(r.body, "boot ok\n", 8) == 0);
	CHECK_STR(r.start, "0");
	CHECK_STR(r.next, "8");
	resp_free(&r);
	r = req_full("POST", "/api/v1/vms/con/console", "ls\n", 3, false, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(json_integer_value(json_object_get(r.json, "written")), 3);
	resp_free(&r);
	r = req("GET", "/api/v1/vms/con/console?since=8", NULL);
	CHECK_EQ_INT(r.len, 8);
	CHECK(r.body && memcmp(r.body, "echo:ls\n", 8) == 0);
	CHECK_STR(r.start, "8");
	CHECK_STR(r.next, "16");
	resp_free(&r);
	r = req("GET", "/api/v1/vms/con/console?since=-1", NULL);
	CHECK_ERR(r, 400, "invalid_argument");
	resp_free(&r);
	/* the last run's output stays readable after a stop */
	r = req("POST", "/api/v1/vms/con/stop", NULL);
	resp_free(&r);
	r = req("GET", "/api/v1/vms/con/console", NULL);
	CHECK_EQ_INT(r.len, 16);
	resp_free(&r);
}

TEST(console_from_logs_after_restart)
{
	/* a VM not run since vesseld started: output comes from the engine's
	 * console logs in its run directory */
	struct resp r = req("POST", "/api/v1/vms", "{\"name\":\"logs\"}");
	resp_free(&r);
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/data/run/logs", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/data/run/logs/console.log.1", dir);
	FILE *f = fopen(p, "w");
	fputs("old\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/data/run/logs/console.log", dir);
	f = fopen(p, "w");
	fputs("new\n", f);
	fclose(f);
	r = req("GET", "/api/v1/vms/logs/console", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK(r.len == 8 && memcmp(r.body, "old\nnew\n", 8) == 0);
	CHECK_STR(r.next, "8");
	resp_free(&r);
	r = req("GET", "/api/v1/vms/logs/console?since=4", NULL);
	CHECK(r.len == 4 && memcmp(r.body, "new\n", 4) == 0);
	CHECK_STR(r.start, "4");
	resp_free(&r);
	r = req("DELETE", "/api/v1/vms/logs", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	snprintf(p, sizeof(p), "%s/data/run/logs", dir);
	CHECK(access(p, F_OK) != 0);
}

static int ws_connect(const char *name, const char *token, char *status_line, size_t cap)
{
	int fd = fake_daemon_connect(tcp_port);
	if (fd < 0)
		return -1;
	char key[WS_KEY_LEN + 1], want[WS_ACCEPT_LEN + 1], req_buf[1024];
	ws_client_key(key);
	ws_accept_key(key, want);
	int n = snprintf(req_buf, sizeof(req_buf),
			 "GET /api/v1/vms/%s/console/ws?token=%s HTTP/1.1\r\nHost: x\r\n"
			 "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 name, token, key);
	if (util_write_all(fd, req_buf, (size_t)n) < 0)
		return -1;
	/* read the response head byte by byte so no frame bytes are consumed */
	char head[2048];
	size_t hl = 0;
	while (hl < sizeof(head) - 1) {
		if (read(fd, head + hl, 1) != 1)
			break;
		hl++;
		if (hl >= 4 && memcmp(head + hl - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	head[hl] = '\0';
	snprintf(status_line, cap, "%.*s", (int)strcspn(head, "\r"), head);
	if (strstr(head, " 101 ") && !strstr(head, want)) {
		close(fd);
		return -2;
	}
	return fd;
}

TEST(console_websocket)
{
	char line[128];
	int fd = ws_connect("con", "bad-token", line, sizeof(line));
	CHECK(fd >= 0);
	CHECK(strstr(line, "401") != NULL);
	if (fd >= 0)
		close(fd);

	struct resp r = req("POST", "/api/v1/vms/con/start", NULL);
	resp_free(&r);
	fd = ws_connect("con", d->token, line, sizeof(line));
	CHECK(fd >= 0);
	CHECK(strstr(line, "101") != NULL);
	if (fd < 0)
		return;
	struct ws_conn *c = NULL;
	CHECK_EQ_INT(ws_conn_new(fd, false, 0, &c), 0);
	struct ws_message m;
	CHECK_EQ_INT(ws_conn_recv(c, &m), 0);
	CHECK_EQ_INT(m.opcode, WS_OP_BINARY);
	CHECK(m.len >= 8 && memcmp(m.data, "boot ok\n", 8) == 0);
	/* keyboard input goes to the serial port and comes back as output */
	CHECK_EQ_INT(ws_conn_send(c, WS_OP_TEXT, "uptime\n", 7), 0);
	CHECK_EQ_INT(ws_conn_recv(c, &m), 0);
	CHECK(m.len == 12 && memcmp(m.data, "echo:uptime\n", 12) == 0);
	CHECK_EQ_INT(ws_conn_close(c, WS_CLOSE_NORMAL, "bye"), 0);
	CHECK_EQ_INT(ws_conn_recv(c, &m), -EPIPE);
	ws_conn_free(c);
	close(fd);

	/* a plain GET on the WebSocket path is refused with a hint */
	r = req("GET", "/api/v1/vms/con/console/ws", NULL);
	CHECK_ERR(r, 400, "invalid_argument");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/con/force-stop", NULL);
	resp_free(&r);
}

TEST(disks_and_images)
{
	if (!have_qemu_img)
		SKIP("qemu-img not installed");
	char path[PATH_MAX + 64], body[PATH_MAX + 128];
	/* blank disks are created at once, under DATA_DIR/vms/NAME */
	struct resp r = req("POST", "/api/v1/vms", "{\"name\":\"d1\",\"disks\":[{\"size_gib\":2}]}");
	CHECK_EQ_INT(r.status, 201);
	json_t *disk = json_array_get(json_object_get(json_object_get(r.json, "vm"), "disks"), 0);
	CHECK_EQ_INT(json_integer_value(json_object_get(disk, "size_bytes")), 2ll << 30);
	resp_free(&r);
	snprintf(path, sizeof(path), "%s/data/vms/d1/disk0.qcow2", dir);
	CHECK_EQ_INT(access(path, F_OK), 0);

	/* a create that fails on its second disk leaves nothing behind */
	r = req("POST", "/api/v1/vms",
		"{\"name\":\"d2\",\"disks\":[{\"size_gib\":1},{\"image\":\"missing\"}]}");
	CHECK_ERR(r, 400, "invalid_argument");
	resp_free(&r);
	snprintf(path, sizeof(path), "%s/data/vms/d2", dir);
	CHECK(access(path, F_OK) != 0);
	r = req("GET", "/api/v1/vms/d2", NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_free(&r);

	/* import an image, then linked and full clones */
	snprintf(path, sizeof(path), "%s/data/import/base.raw", dir);
	snprintf(body, sizeof(body), "truncate -s 64M %s", path);
	CHECK_EQ_INT(system(body), 0);
	snprintf(body, sizeof(body), "{\"name\":\"base\",\"path\":\"%s\"}", path);
	r = req("POST", "/api/v1/images", body);
	CHECK_EQ_INT(r.status, 202);
	char task[64];
	snprintf(task, sizeof(task), "%s", jstr(json_object_get(r.json, "task"), "id", NULL));
	resp_free(&r);
	char tpath[128];
	snprintf(tpath, sizeof(tpath), "/api/v1/tasks/%s", task);
	const char *tstate = "running";
	for (int i = 0; i < 250; i++) {
		r = req("GET", tpath, NULL);
		static char s[32];
		snprintf(s, sizeof(s), "%s", jstr(r.json, "task", "state"));
		tstate = s;
		resp_free(&r);
		if (strcmp(tstate, "running") != 0)
			break;
		usleep(20 * 1000);
	}
	CHECK_STR(tstate, "succeeded");
	r = req("GET", "/api/v1/images/base", NULL);
	CHECK_STR(jstr(r.json, "image", "state"), "ready");
	CHECK_STR(jstr(r.json, "image", "source_format"), "raw");
	CHECK_EQ_INT(strlen(jstr(r.json, "image", "sha256")), 64);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(r.json, "image"),
							 "virtual_size_bytes")), 64 << 20);
	resp_free(&r);
	r = req("POST", "/api/v1/images", body);
	CHECK_ERR(r, 409, "conflict");
	resp_free(&r);

	r = req("POST", "/api/v1/vms", "{\"name\":\"lc\",\"disks\":[{\"image\":\"base\",\"size_gib\":1}]}");
	CHECK_EQ_INT(r.status, 201);
	resp_free(&r);
	r = req("POST", "/api/v1/vms", "{\"name\":\"fc\",\"disks\":[{\"image\":\"base\",\"clone\":\"full\"}]}");
	CHECK_EQ_INT(r.status, 201);
	CHECK_STR(jstr(r.json, "vm", "state"), "provisioning");
	CHECK(jstr(r.json, "vm", "task") != NULL);
	resp_free(&r);
	CHECK(wait_state("fc", "stopped", 5000));

	/* the image is in use: delete refused, names the users */
	r = req("DELETE", "/api/v1/images/base", NULL);
	CHECK_ERR(r, 409, "conflict");
	CHECK(strstr(jstr(r.json, "error", "message"), "lc") != NULL);
	resp_free(&r);
	r = req("GET", "/api/v1/images/base", NULL);
	CHECK_EQ_INT(json_array_size(json_object_get(json_object_get(r.json, "image"), "used_by")), 2);
	resp_free(&r);

	/* delete with force removes disks and the run directory */
	r = req("POST", "/api/v1/vms/lc/start", NULL);
	resp_free(&r);
	r = req("DELETE", "/api/v1/vms/lc?force=true", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(jstr(r.json, "deleted", NULL), "lc");
	resp_free(&r);
	snprintf(path, sizeof(path), "%s/data/vms/lc", dir);
	CHECK(access(path, F_OK) != 0);
	snprintf(path, sizeof(path), "%s/data/run/lc", dir);
	CHECK(access(path, F_OK) != 0);
	r = req("DELETE", "/api/v1/vms/fc", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	r = req("DELETE", "/api/v1/images/base", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	snprintf(path, sizeof(path), "%s/data/images/base.qcow2", dir);
	CHECK(access(path, F_OK) != 0);

	/* a failing import leaves no image */
	snprintf(path, sizeof(path), "%s/data/import/bad.vmdk", dir);
	FILE *f = fopen(path, "w");
	fputs("not a vmdk", f);
	fclose(f);
	snprintf(body, sizeof(body), "{\"name\":\"bad\",\"path\":\"%s\",\"format\":\"vmdk\"}", path);
	r = req("POST", "/api/v1/images", body);
	CHECK_EQ_INT(r.status, 202);
	resp_free(&r);
	/* the image is cleaned up before its task is marked failed, so once
	 * the task has ended the image must be gone */
	for (int i = 0; i < 250; i++) {
		r = req("GET", "/api/v1/tasks", NULL);
		json_t *t = json_array_get(json_object_get(r.json, "tasks"), 0);
		bool running = !jstr(t, "state", NULL) || strcmp(jstr(t, "state", NULL), "running") == 0;
		resp_free(&r);
		if (!running)
			break;
		usleep(20 * 1000);
	}
	r = req("GET", "/api/v1/tasks", NULL);
	json_t *t0 = json_array_get(json_object_get(r.json, "tasks"), 0);
	CHECK_STR(jstr(t0, "state", NULL), "failed");
	CHECK(jstr(t0, "error", NULL) != NULL);
	resp_free(&r);
	r = req("GET", "/api/v1/images/bad", NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_free(&r);
}

TEST(list_sorted_and_cached)
{
	struct resp r = req("POST", "/api/v1/vms", "{\"name\":\"aaa\"}");
	resp_free(&r);
	r = req("GET", "/api/v1/vms", NULL);
	json_t *vms = json_object_get(r.json, "vms");
	CHECK(json_array_size(vms) >= 2);
	const char *prev = "";
	for (size_t i = 0; i < json_array_size(vms); i++) {
		const char *n = jstr(json_array_get(vms, i), "name", NULL);
		CHECK(strcmp(prev, n) < 0);
		prev = n;
	}
	resp_free(&r);
	/* the cache follows changes */
	r = req("DELETE", "/api/v1/vms/aaa", NULL);
	resp_free(&r);
	r = req("GET", "/api/v1/vms", NULL);
	CHECK(strstr(r.body, "\"aaa\"") == NULL);
	resp_free(&r);
}

/* Networks and firewalls through the API, without root: every bad request
 * is refused before anything reaches the host, and rule sets (which touch
 * nftables only once a NIC uses them) work end to end. The host side is
 * covered by tests/integration/networks.py. */
TEST(networks_and_firewalls)
{
	static const struct {
		const char *body, *word;
	} bad[] = {
		{"{\"name\":\"n\",\"type\":\"nat\",\"subnet\":\"10.0.0.0/33\"}", "10.0.0.0/33"},
		{"{\"name\":\"n\",\"type\":\"nat\",\"subnet\":\"10.0.0.0/24\",\"dhcp_start\":"
		 "\"10.0.1.5\"}", "outside"},
		{"{\"name\":\"n\",\"type\":\"isolated\",\"mtu\":9001}", "9001"},
		{"{\"name\":\"n\",\"type\":\"bridge\"}", "uplink"},
		{"{\"name\":\"n\",\"type\":\"bridge\",\"uplink\":\"nosuchif7\"}", "nosuchif7"},
		{"{\"name\":\"n\",\"type\":\"bridge\",\"bridge\":\"nosuchbr7\"}", "nosuchbr7"},
		{"{\"name\":\"n\",\"type\":\"wan\"}", "wan"},
	};
	struct resp r;

	r = req("GET", "/api/v1/networks", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(json_array_size(json_object_get(r.json, "networks")), 0);
	resp_free(&r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = req("POST", "/api/v1/networks", bad[i].body);
		CHECK_ERR(r, 400, "invalid_argument");
		if (!r.body || !strstr(r.body, bad[i].word)) {
			fprintf(stderr, "  %s: message does not name '%s': %s\n", bad[i].body, bad[i].word,
				r.body ? r.body : "");
			harness_case_failed = 1;
		}
		resp_free(&r);
	}
	r = req("GET", "/api/v1/networks/n", NULL);
	CHECK_ERR(r, 404, "not_found");
	resp_free(&r);
	r = req("POST", "/api/v1/vms", "{\"name\":\"nicless\",\"nics\":[{\"network\":\"nope\"}]}");
	CHECK_ERR(r, 400, "invalid_argument");
	CHECK(r.body && strstr(r.body, "no network 'nope'"));
	resp_free(&r);
	r = req("GET", "/api/v1/vms/nicless", NULL);
	CHECK_ERR(r, 404, "not_found");
	resp_free(&r);

	r = req("POST", "/api/v1/firewalls", "{\"name\":\"web\",\"rules\":[{\"protocol\":\"tcp\","
		"\"ports\":\"80\",\"cidr\":\"192.0.2.7\",\"action\":\"allow\"}]}");
	CHECK_EQ_INT(r.status, 201);
	CHECK_STR(jstr(json_object_get(r.json, "firewall"), "default_inbound", NULL), "deny");
	resp_free(&r);
	r = req("POST", "/api/v1/firewalls", "{\"name\":\"web\"}");
	CHECK_ERR(r, 409, "conflict");
	resp_free(&r);
	r = req("POST", "/api/v1/firewalls", "{\"name\":\"bad\",\"rules\":[{\"protocol\":\"tcp\","
		"\"ports\":\"0-80\",\"action\":\"allow\"}]}");
	CHECK_ERR(r, 400, "invalid_argument");
	CHECK(r.body && strstr(r.body, "rules[0]"));
	resp_free(&r);
	r = req("PUT", "/api/v1/firewalls/web", "{\"default_inbound\":\"allow\"}");
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	r = req("GET", "/api/v1/firewalls/web", NULL);
	CHECK_STR(jstr(json_object_get(r.json, "firewall"), "default_inbound", NULL), "allow");
	CHECK_EQ_INT(json_array_size(json_object_get(json_object_get(r.json, "firewall"), "rules")), 0);
	resp_free(&r);
	r = req("PUT", "/api/v1/firewalls/ghost", "{}");
	CHECK_ERR(r, 404, "not_found");
	resp_free(&r);
	r = req("DELETE", "/api/v1/firewalls/web", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	r = req("GET", "/api/v1/firewalls", NULL);
	CHECK_EQ_INT(json_array_size(json_object_get(r.json, "firewalls")), 0);
	resp_free(&r);
}

TEST(daemon_restart)
{
	/* autostart, and a running VM whose monitor is gone at restart */
	struct resp r = req("POST", "/api/v1/vms", "{\"name\":\"auto\",\"autostart\":true}");
	CHECK_EQ_INT(r.status, 201);
	resp_free(&r);
	r = req("POST", "/api/v1/vms", "{\"name\":\"live\"}");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/live/start", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	char token[65];
	snprintf(token, sizeof(token), "%s", d->token);
	daemon_stop(d);
	daemon_free(d);
	d = NULL;

	char *err = NULL;
	CHECK_EQ_INT(daemon_new(&cfg, fake_engine(), &d, &err), 0);
	CHECK_EQ_INT(daemon_start(d, &err), 0);
	free(err);
	CHECK_STR(d->token, token); /* the token survives */
	CHECK(wait_state("auto", "running", 3000));
	CHECK_STR(vm_state("live"), "crashed");
	r = req("GET", "/api/v1/vms/live", NULL);
	CHECK_STR(jstr(json_object_get(r.json, "vm"), "crash_reason", NULL),
		  "QEMU was not running when vesseld started");
	resp_free(&r);
	/* the rest of the state came back from the database */
	r = req("GET", "/api/v1/vms/web-1", NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(r.json, "vm"), "vcpus")), 4);
	CHECK_STR(jstr(json_object_get(r.json, "vm"), "description", NULL), "db");
	resp_free(&r);
	r = req("GET", "/api/v1/tasks", NULL);
	CHECK(json_array_size(json_object_get(r.json, "tasks")) >= 3);
	resp_free(&r);
	r = req("POST", "/api/v1/vms/auto/force-stop", NULL);
	resp_free(&r);
}

/* Clients that create and delete one name over and over: a create that
 * comes while a delete of that name runs must get 409 (the name is still
 * taken) or 201, never a 500 about the old VM's directory. */
#define RACE_THREADS 4
#define RACE_ROUNDS 40

static void *race_create_delete(void *arg)
{
	unsigned *bad = arg;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		struct resp r = req("POST", "/api/v1/vms", "{\"name\":\"race\",\"memory_mib\":64}");
		if (r.status != 201 && r.status != 409) {
			fprintf(stderr, "  create: %ld %s\n", r.status, r.body ? r.body : "");
			__atomic_add_fetch(bad, 1, __ATOMIC_RELAXED);
		}
		resp_free(&r);
		r = req("DELETE", "/api/v1/vms/race", NULL);
		if (r.status != 200 && r.status != 404) {
			fprintf(stderr, "  delete: %ld %s\n", r.status, r.body ? r.body : "");
			__atomic_add_fetch(bad, 1, __ATOMIC_RELAXED);
		}
		resp_free(&r);
	}
	return NULL;
}

TEST(create_delete_same_name_race)
{
	pthread_t th[RACE_THREADS];
	unsigned bad = 0;
	for (int i = 0; i < RACE_THREADS; i++)
		CHECK_EQ_INT(pthread_create(&th[i], NULL, race_create_delete, &bad), 0);
	for (int i = 0; i < RACE_THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(bad, 0);
	struct resp r = req("GET", "/api/v1/vms/race", NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_free(&r);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/data/vms/race", dir);
	CHECK(access(path, F_OK) != 0);
}

/* While a full clone is copied the VM is provisioning: start, update and
 * delete answer 409 at once instead of waiting for the copy to end. A
 * qemu-img wrapper that sleeps 3 s before each convert makes the copy slow. */
TEST(requests_during_disk_copy_answer_409)
{
	if (!have_qemu_img)
		SKIP("qemu-img not installed");
	char path[PATH_MAX + 64], body[PATH_MAX + 128];
	snprintf(path, sizeof(path), "%s/data/import/copysrc.raw", dir);
	snprintf(body, sizeof(body), "truncate -s 16M %s", path);
	CHECK_EQ_INT(system(body), 0);
	snprintf(body, sizeof(body), "{\"name\":\"copysrc\",\"path\":\"%s\"}", path);
	struct resp r = req("POST", "/api/v1/images", body);
	CHECK_EQ_INT(r.status, 202);
	resp_free(&r);
	for (int i = 0; i < 250; i++) {
		r = req("GET", "/api/v1/images/copysrc", NULL);
		bool ready = r.json && strcmp(jstr(r.json, "image", "state"), "ready") == 0;
		resp_free(&r);
		if (ready)
			break;
		usleep(20 * 1000);
	}

	char wrapper[256];
	snprintf(wrapper, sizeof(wrapper), "%.200s/slow-qemu-img", dir);
	FILE *f = fopen(wrapper, "w");
	CHECK(f != NULL);
	fputs("#!/bin/sh\n[ \"$1\" = convert ] && sleep 3\nexec qemu-img \"$@\"\n", f);
	fclose(f);
	CHECK_EQ_INT(chmod(wrapper, 0755), 0);
	snprintf(d->cfg.qemu_img, sizeof(d->cfg.qemu_img), "%s", wrapper);

	r = req("POST", "/api/v1/vms",
		"{\"name\":\"copying\",\"disks\":[{\"image\":\"copysrc\",\"clone\":\"full\"}]}");
	CHECK_EQ_INT(r.status, 201);
	CHECK_STR(jstr(r.json, "vm", "state"), "provisioning");
	resp_free(&r);
	uint64_t t0 = util_now_ns();
	r = req("POST", "/api/v1/vms/copying/start", NULL);
	CHECK_ERR(r, 409, "conflict");
	resp_free(&r);
	r = req("PATCH", "/api/v1/vms/copying", "{\"vcpus\":2}");
	CHECK_ERR(r, 409, "conflict");
	resp_free(&r);
	r = req("DELETE", "/api/v1/vms/copying", NULL);
	CHECK_ERR(r, 409, "conflict");
	CHECK(r.json && strstr(jstr(r.json, "error", "message"), "disk copy") != NULL);
	resp_free(&r);
	CHECK(util_now_ns() - t0 < 2000000000ull); /* not queued behind the 3 s copy */

	CHECK(wait_state("copying", "stopped", 10000));
	snprintf(d->cfg.qemu_img, sizeof(d->cfg.qemu_img), "qemu-img");
	r = req("DELETE", "/api/v1/vms/copying", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	r = req("DELETE", "/api/v1/images/copysrc", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
}

/* vesseld blocks SIGTERM/SIGINT in all its threads (main.c); a qemu-img it
 * runs must not inherit that, or nobody can stop a long convert. */
TEST(qemu_img_child_signals_unblocked)
{
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	/* grep itself, not a shell: dash clears the mask when it starts */
	const char *args[] = {"^SigBlk", "/proc/self/status", NULL};
	char *out = NULL, *err = NULL;
	CHECK_EQ_INT(qemu_img_run("grep", args, NULL, NULL, &out, &err), 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	CHECK(out && strstr(out, "SigBlk:\t0000000000000000") != NULL);
	if (out && !strstr(out, "SigBlk:\t0000000000000000"))
		fprintf(stderr, "  child: %s", out);
	free(out);
	free(err);
}

/* Role tokens end to end over TCP (the full matrix is
 * tests/integration/auth_matrix.py): created over the socket, a viewer
 * reads but is refused a change with nothing changed, an operator
 * changes, a revoked token fails, and the audit log has it all. */
TEST(role_tokens)
{
	struct resp r = req("POST", "/api/v1/tokens", "{\"name\":\"v\",\"role\":\"viewer\"}");
	CHECK_EQ_INT(r.status, 201);
	char viewer[128], vid[32], op[128];
	snprintf(viewer, sizeof(viewer), "%s", jstr(r.json, "secret", NULL));
	snprintf(vid, sizeof(vid), "%s", jstr(r.json, "token", "id"));
	CHECK(strncmp(viewer, "vst_", 4) == 0);
	resp_free(&r);
	r = req("POST", "/api/v1/tokens", "{\"name\":\"o\",\"role\":\"operator\"}");
	snprintf(op, sizeof(op), "%s", jstr(r.json, "secret", NULL));
	resp_free(&r);

	r = req_full("GET", "/api/v1/vms", NULL, 0, true, viewer);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	const char *body = "{\"name\":\"tok-vm\"}";
	r = req_full("POST", "/api/v1/vms", body, strlen(body), true, viewer);
	CHECK_ERR(r, 403, "forbidden");
	resp_free(&r);
	r = req("GET", "/api/v1/vms/tok-vm", NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_free(&r);
	r = req_full("POST", "/api/v1/vms", body, strlen(body), true, op);
	CHECK_EQ_INT(r.status, 201);
	resp_free(&r);
	r = req_full("GET", "/api/v1/tokens", NULL, 0, true, op);
	CHECK_ERR(r, 403, "forbidden");
	resp_free(&r);
	r = req_full("DELETE", "/api/v1/vms/tok-vm", NULL, 0, true, op);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);

	char path[64];
	snprintf(path, sizeof(path), "/api/v1/tokens/%s", vid);
	r = req("DELETE", path, NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	r = req_full("GET", "/api/v1/vms", NULL, 0, true, viewer);
	CHECK_ERR(r, 401, "unauthorized");
	CHECK(strstr(jstr(r.json, "error", "message"), "revoked") != NULL);
	resp_free(&r);

	r = req("GET", "/api/v1/audit?path=/api/v1/vms&method=POST", NULL);
	json_t *e = json_object_get(r.json, "entries");
	size_t n = json_array_size(e);
	CHECK(n >= 2);
	if (n >= 2) {
		CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(e, n - 2), "result")), 403);
		CHECK_STR(jstr(json_array_get(e, n - 2), "token", NULL), vid);
		CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(e, n - 1), "result")), 201);
		CHECK_STR(jstr(json_array_get(e, n - 1), "role", NULL), "operator");
	}
	resp_free(&r);
	r = req("GET", "/api/v1/audit/verify", NULL);
	CHECK(json_is_true(json_object_get(r.json, "ok")));
	resp_free(&r);
}

/* Snapshots, schedules and backups through the API with the engine test
 * double: bad input answers 4xx and changes nothing; a driver without
 * snapshot support answers 501 for a running VM; deleting a VM asks about
 * its snapshots. (The real work is tested against QEMU in
 * tests/integration/snapshots.py and backups.py.) */
TEST(snapshots_and_backups_api)
{
	struct resp r = req("POST", "/api/v1/vms", "{\"name\":\"snap-u\"}");
	CHECK_EQ_INT(r.status, 201);
	resp_free(&r);
	static const struct {
		const char *method, *path, *body;
		unsigned status;
		const char *code, *mention;
	} bad[] = {
		{"POST", "/api/v1/vms/snap-u/snapshots", "{\"name\":\"Bad_Name\"}", 400, "invalid_argument", "name"},
		{"POST", "/api/v1/vms/snap-u/snapshots", "{\"name\":\"a\",\"type\":\"ram\"}", 400, "invalid_argument", "type"},
		{"POST", "/api/v1/vms/snap-u/snapshots", "{\"name\":\"a\",\"colour\":1}", 400, "invalid_argument", "colour"},
		{"POST", "/api/v1/vms/snap-u/snapshots", "{\"name\":\"a\",\"type\":\"full\"}", 409, "conflict", "running"},
		{"POST", "/api/v1/vms/nope/snapshots", "{\"name\":\"a\"}", 404, "not_found", "nope"},
		{"POST", "/api/v1/vms/snap-u/snapshots/none/revert", "{}", 404, "not_found", "none"},
		{"POST", "/api/v1/vms/snap-u/snapshots/none/revert", "{\"stop\":1}", 400, "invalid_argument", "stop"},
		{"DELETE", "/api/v1/vms/snap-u/snapshots/none?merge=maybe", NULL, 400, "invalid_argument", "merge"},
		{"POST", "/api/v1/vms/snap-u/schedules", "{\"every\":\"0m\"}", 400, "invalid_argument", "zero"},
		{"POST", "/api/v1/vms/snap-u/schedules", "{\"every\":\"1h\",\"start_at\":\"2001-01-01T00:00:00Z\"}", 400, "invalid_argument", "past"},
		{"DELETE", "/api/v1/vms/snap-u/schedules/s0", NULL, 404, "not_found", "s0"},
		{"POST", "/api/v1/backups", "{}", 400, "invalid_argument", "vm"},
		{"POST", "/api/v1/backups", "{\"vm\":\"snap-u\",\"mode\":\"fast\"}", 400, "invalid_argument", "mode"},
		{"POST", "/api/v1/backups", "{\"vm\":\"nope\"}", 404, "not_found", "nope"},
		{"GET", "/api/v1/backups/b-none", NULL, 404, "not_found", "b-none"},
		{"POST", "/api/v1/backups/b-none/verify", NULL, 404, "not_found", "b-none"},
		{"POST", "/api/v1/backups/b-none/restore", "{\"vm\":\"x\"}", 404, "not_found", "b-none"},
		{"POST", "/api/v1/backups/b-none/drill", "{\"boot_line\":\"x\",\"timeout_s\":0}", 404, "not_found", "b-none"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = req(bad[i].method, bad[i].path, bad[i].body);
		if (r.status != (long)bad[i].status)
			fprintf(stderr, "  case %zu: %s %s -> %ld %s\n", i, bad[i].method, bad[i].path,
				r.status, r.body ? r.body : "");
		CHECK_ERR(r, bad[i].status, bad[i].code);
		const char *m = jstr(r.json, "error", "message");
		CHECK(m && strstr(m, bad[i].mention) != NULL);
		resp_free(&r);
	}
	r = req("GET", "/api/v1/vms/snap-u/snapshots", NULL);
	CHECK_EQ_INT(json_array_size(json_object_get(r.json, "snapshots")), 0);
	resp_free(&r);
	r = req("GET", "/api/v1/vms/snap-u/schedules", NULL);
	CHECK_EQ_INT(json_array_size(json_object_get(r.json, "schedules")), 0);
	resp_free(&r);

	/* a running VM on an engine without snapshots: 501, nothing made */
	r = req("POST", "/api/v1/vms/snap-u/start", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	r = req("POST", "/api/v1/vms/snap-u/snapshots", "{\"name\":\"live\"}");
	CHECK_ERR(r, 501, "not_implemented");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/snap-u/force-stop", NULL);
	resp_free(&r);

	/* a stopped VM (no disks here): snapshot, then delete asks */
	r = req("POST", "/api/v1/vms/snap-u/snapshots", "{\"name\":\"s1\",\"description\":\"d\"}");
	CHECK_EQ_INT(r.status, 201);
	CHECK(json_is_true(json_object_get(json_object_get(r.json, "snapshot"), "current")));
	resp_free(&r);
	r = req("POST", "/api/v1/vms/snap-u/snapshots", "{\"name\":\"s1\"}");
	CHECK_ERR(r, 409, "conflict");
	resp_free(&r);
	r = req("POST", "/api/v1/vms/snap-u/schedules", "{\"daily_at\":\"04:00\",\"keep_count\":2}");
	CHECK_EQ_INT(r.status, 201);
	CHECK_STR(jstr(r.json, "schedule", "daily_at"), "04:00");
	resp_free(&r);
	r = req("DELETE", "/api/v1/vms/snap-u", NULL);
	CHECK_ERR(r, 409, "conflict");
	CHECK(strstr(jstr(r.json, "error", "message"), "snapshots=delete") != NULL);
	resp_free(&r);
	r = req("DELETE", "/api/v1/vms/snap-u?snapshots=keep", NULL);
	CHECK_ERR(r, 400, "invalid_argument");
	resp_free(&r);
	r = req("DELETE", "/api/v1/vms/snap-u?snapshots=delete", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	/* a new VM of the same name starts with nothing */
	r = req("POST", "/api/v1/vms", "{\"name\":\"snap-u\"}");
	resp_free(&r);
	r = req("GET", "/api/v1/vms/snap-u/snapshots", NULL);
	CHECK_EQ_INT(json_array_size(json_object_get(r.json, "snapshots")), 0);
	resp_free(&r);
	r = req("GET", "/api/v1/vms/snap-u/schedules", NULL);
	CHECK_EQ_INT(json_array_size(json_object_get(r.json, "schedules")), 0);
	resp_free(&r);
	r = req("DELETE", "/api/v1/vms/snap-u", NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
}

TEST(teardown)
{
	daemon_stop(d);
	daemon_free(d);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_EQ_INT(system(cmd), 0);
	curl_global_cleanup();
}

HARNESS_MAIN
