/* Unit tests for what vesseld does for the web UI: the history ring and
 * rate computations (history.c), the /proc/stat and sysfs readers, the
 * static file server (static.c: traversal with "..", "%2e%2e", an encoded
 * NUL, symlinks out of the web directory, dot files, MIME types, ETag/304,
 * the page public while the API still needs a token), the history API, and
 * the VNC proxy (vnc.c) against a fake VNC server on the VM's vnc.sock:
 * the RFB banner must arrive over the WebSocket byte for byte and the
 * client's bytes must reach the server. A real daemon with the engine test
 * double, on a temporary directory. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/history.h"
#include "daemon/static.h"
#include "fake_daemon.h"
#include "fake_engine.h"
#include "harness.h"
#include "lib/util.h"
#include "lib/ws.h"

static char dir[256];
static char web[300];
static struct daemon *d;
static struct daemon_config cfg;
static int tcp_port;

TEST(ring_wraps_and_keeps_order)
{
	struct history_ring *r = NULL;
	CHECK_EQ_INT(history_ring_new(3, 2, &r), 0);
	if (!r)
		return;
	for (int i = 1; i <= 5; i++) {
		double v[2] = {i * 10.0, i == 4 ? NAN : i * 100.0};
		history_ring_push(r, 1000.0 + i, v);
	}
	CHECK_EQ_INT((int)r->len, 3); /* bounded: the two oldest are gone */
	double t;
	const double *v;
	history_ring_at(r, 0, &t, &v);
	CHECK(t == 1003.0 && v[0] == 30.0);
	history_ring_at(r, 2, &t, &v);
	CHECK(t == 1005.0 && v[1] == 500.0);
	static const char *const cols[] = {"a", "b"};
	json_t *j = history_ring_json(r, cols, 1003.5); /* newer than since only */
	CHECK_EQ_INT((int)json_array_size(json_object_get(j, "t")), 2);
	CHECK(json_real_value(json_array_get(json_object_get(j, "t"), 0)) == 1004.0);
	CHECK(json_is_null(json_array_get(json_object_get(j, "b"), 0))); /* NAN -> null */
	CHECK(json_real_value(json_array_get(json_object_get(j, "a"), 1)) == 50.0);
	json_decref(j);
	history_ring_free(r);
	CHECK_EQ_INT(history_ring_new(0, 2, &r), -EINVAL);
	CHECK_EQ_INT(history_ring_new(4, HISTORY_MAX_COLS + 1, &r), -EINVAL);
}

TEST(rates)
{
	struct history_counter c = {0};
	CHECK(isnan(history_rate(&c, 10.0, 1000)));         /* first value: no rate */
	CHECK(history_rate(&c, 15.0, 6000) == 1000.0);      /* 5000 bytes in 5 s */
	CHECK(history_rate(&c, 20.0, 6000) == 0.0);
	CHECK(isnan(history_rate(&c, 25.0, 100)));           /* went back: new process */
	CHECK(history_rate(&c, 27.0, 300) == 100.0);         /* counts from the new base */
	CHECK(isnan(history_rate(&c, 27.0, 400)));           /* no time passed */
	history_counter_reset(&c);
	CHECK(isnan(history_rate(&c, 30.0, 500)));
	/* CPU %: 2.5 s of CPU time in 5 s of wall time is 50 % of one CPU */
	struct history_counter cpu = {0};
	history_rate(&cpu, 100.0, 10.0);
	CHECK(fabs(history_rate(&cpu, 105.0, 12.5) * 100.0 - 50.0) < 1e-9);
}

TEST(proc_stat)
{
	uint64_t t0, i0, t1, i1;
	CHECK_EQ_INT(history_parse_proc_stat("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n",
					     &t0, &i0), 0);
	CHECK(t0 == 1000 && i0 == 800);
	CHECK_EQ_INT(history_parse_proc_stat("cpu  300 0 200 1100 100 0 0 0 0 0\n", &t1, &i1), 0);
	/* 700 more ticks, 400 of them idle (idle + iowait): 3/7 busy */
	CHECK(fabs(history_cpu_busy_percent(t0, i0, t1, i1) - 300.0 / 7) < 1e-9);
	CHECK(isnan(history_cpu_busy_percent(t1, i1, t1, i1)));
	CHECK_EQ_INT(history_parse_proc_stat("intr 1 2 3\n", &t0, &i0), -EINVAL);
	CHECK_EQ_INT(history_parse_proc_stat("cpu  1 2\n", &t0, &i0), -EINVAL);
}

TEST(process_start_time)
{
	uint64_t v = 0;
	/* a command name with spaces and ')' must not shift the fields */
	const char *stat = "4242 (qemu) x (y)) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 "
			   "5 0 987654 123456789 300 18446744073709551615";
	CHECK_EQ_INT(history_parse_starttime(stat, &v), 0);
	CHECK(v == 987654);
	CHECK_EQ_INT(history_parse_starttime("4242 (qemu) S 1 2", &v), -EINVAL);
	CHECK_EQ_INT(history_parse_btime("cpu  1 2 3 4\nintr 5\nbtime 1764140000\nprocesses 9\n", &v),
		     0);
	CHECK(v == 1764140000);
	CHECK_EQ_INT(history_parse_btime("cpu  1 2 3 4\n", &v), -EINVAL);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

TEST(setup)
{
	signal(SIGPIPE, SIG_IGN); /* as vesseld's main() does */
	snprintf(dir, sizeof(dir), "/tmp/vessel-test-web-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	char p[PATH_MAX + 64];
	/* a fake sysfs: two tap devices */
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "mkdir -p %s/net/tap%d/statistics", dir, i);
		CHECK_EQ_INT(system(p), 0);
		snprintf(p, sizeof(p), "%s/net/tap%d/statistics/rx_bytes", dir, i);
		write_file(p, i ? "1000\n" : "24\n");
		snprintf(p, sizeof(p), "%s/net/tap%d/statistics/tx_bytes", dir, i);
		write_file(p, i ? "7\n" : "3\n");
	}
	/* the web directory, a secret next to it and ways to reach it */
	snprintf(web, sizeof(web), "%s/web", dir);
	snprintf(p, sizeof(p), "mkdir -p %s/sub %s/.hidden", web, web);
	CHECK_EQ_INT(system(p), 0);
	snprintf(p, sizeof(p), "%s/index.html", web);
	write_file(p, "<!doctype html><title>vessel</title>");
	snprintf(p, sizeof(p), "%s/app.js", web);
	write_file(p, "export const x = 1;\n");
	snprintf(p, sizeof(p), "%s/sub/index.html", web);
	write_file(p, "sub page");
	snprintf(p, sizeof(p), "%s/.hidden/x.js", web);
	write_file(p, "hidden");
	snprintf(p, sizeof(p), "%s/secret.txt", dir);
	write_file(p, "SECRET-OUTSIDE");
	snprintf(p, sizeof(p), "%s/link.txt", web);
	char target[PATH_MAX + 16];
	snprintf(target, sizeof(target), "%s/secret.txt", dir);
	CHECK_EQ_INT(symlink(target, p), 0);

	snprintf(cfg.web_dir, sizeof(cfg.web_dir), "%s", web);
	cfg.history_interval_s = 60; /* the test samples by hand */
	CHECK_EQ_INT(fake_daemon_start(&cfg, dir, &d, &tcp_port), 0);
}

TEST(net_counters)
{
	char sysfs[PATH_MAX + 8];
	snprintf(sysfs, sizeof(sysfs), "%s/net", dir);
	const char *both[] = {"tap0", "tap1"};
	uint64_t rx, tx;
	CHECK_EQ_INT(history_net_read(sysfs, both, 2, &rx, &tx), 0);
	CHECK(rx == 1024 && tx == 10);
	const char *missing[] = {"tap1", "tap9"};
	CHECK_EQ_INT(history_net_read(sysfs, missing, 2, &rx, &tx), -ENOENT);
	CHECK(rx == 1000 && tx == 7); /* the ones found still count */
	const char *evil[] = {".."};
	CHECK_EQ_INT(history_net_read(sysfs, evil, 1, &rx, &tx), -EINVAL);
	const char *slash[] = {"tap0/../tap1"};
	CHECK_EQ_INT(history_net_read(sysfs, slash, 1, &rx, &tx), -EINVAL);
	CHECK_EQ_INT(history_net_read(sysfs, NULL, 0, &rx, &tx), 0);
	CHECK(rx == 0 && tx == 0);
}

TEST(static_resolve_rules)
{
	char root[PATH_MAX], out[PATH_MAX], want[PATH_MAX + 32];
	CHECK(realpath(web, root) != NULL);
	CHECK_EQ_INT(static_resolve(root, "/", out), 0);
	snprintf(want, sizeof(want), "%s/index.html", root);
	CHECK_STR(out, want);
	CHECK_EQ_INT(static_resolve(root, "/sub/", out), 0);
	CHECK_EQ_INT(static_resolve(root, "/app.js", out), 0);
	CHECK_EQ_INT(static_resolve(root, "/../secret.txt", out), -EINVAL);
	CHECK_EQ_INT(static_resolve(root, "/sub/../../secret.txt", out), -EINVAL);
	CHECK_EQ_INT(static_resolve(root, "/..", out), -EINVAL);
	CHECK_EQ_INT(static_resolve(root, "/.hidden/x.js", out), -EINVAL);
	CHECK_EQ_INT(static_resolve(root, "//etc/passwd", out), -EINVAL);
	CHECK_EQ_INT(static_resolve(root, "/a\\b", out), -EINVAL);
	CHECK_EQ_INT(static_resolve(root, "/%2e%2e/secret.txt", out), -EINVAL);
	CHECK_EQ_INT(static_resolve(root, "relative", out), -EINVAL);
	CHECK_EQ_INT(static_resolve(root, "/link.txt", out), -ENOENT); /* symlink out */
	CHECK_EQ_INT(static_resolve(root, "/sub", out), -ENOENT);      /* a directory */
	CHECK_EQ_INT(static_resolve(root, "/nope.js", out), -ENOENT);
	CHECK_STR(static_mime_type("/x/app.js"), "text/javascript; charset=utf-8");
	CHECK_STR(static_mime_type("/x/rfb.mjs"), "text/javascript; charset=utf-8");
	CHECK_STR(static_mime_type("a.css"), "text/css; charset=utf-8");
	CHECK_STR(static_mime_type("index.html"), "text/html; charset=utf-8");
	CHECK_STR(static_mime_type("a.d/noext"), "application/octet-stream");
	CHECK(static_handles("GET", "/"));
	CHECK(static_handles("HEAD", "/app.js"));
	CHECK(!static_handles("POST", "/"));
	CHECK(!static_handles("GET", "/api/v1/vms"));
	CHECK(!static_handles("GET", "/metrics"));
}

/* Send request rq (n bytes) on fd, read the whole reply into resp and close
 * fd: the reply's HTTP status, or 0 when there was none. */
static int raw_exchange(int fd, const char *rq, int n, char *resp, size_t cap)
{
	util_write_all(fd, rq, (size_t)n);
	size_t len = 0;
	ssize_t k;
	while (len < cap - 1 && (k = read(fd, resp + len, cap - 1 - len)) > 0)
		len += (size_t)k;
	resp[len] = '\0';
	close(fd);
	int status = 0;
	sscanf(resp, "HTTP/1.1 %d", &status);
	return status;
}

/* A raw HTTP/1.1 request on TCP (curl would normalise "..": we must not). */
static int raw_get(const char *target, const char *extra_headers, char *resp, size_t cap)
{
	int fd = fake_daemon_connect(tcp_port);
	if (fd < 0)
		return -1;
	char rq[2048];
	int n = snprintf(rq, sizeof(rq), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n",
			 target, extra_headers ? extra_headers : "");
	return raw_exchange(fd, rq, n, resp, cap);
}

TEST(static_over_http)
{
	char *resp = malloc(65536);
	if (!resp)
		return;
	/* the page is public and has a CSP; files get their MIME type */
	CHECK_EQ_INT(raw_get("/", NULL, resp, 65536), 200);
	CHECK(strstr(resp, "Content-Type: text/html; charset=utf-8") != NULL);
	CHECK(strstr(resp, "Content-Security-Policy: default-src 'self'") != NULL);
	CHECK(strstr(resp, "<title>vessel</title>") != NULL);
	CHECK_EQ_INT(raw_get("/app.js", NULL, resp, 65536), 200);
	CHECK(strstr(resp, "Content-Type: text/javascript") != NULL);
	CHECK(strstr(resp, "X-Content-Type-Options: nosniff") != NULL);
	CHECK(strstr(resp, "Cache-Control: no-cache") != NULL);
	/* revalidation with the ETag: 304, no body */
	const char *et = strstr(resp, "ETag: ");
	CHECK(et != NULL);
	if (et) {
		char hdr[160];
		snprintf(hdr, sizeof(hdr), "If-None-Match: %.*s\r\n", (int)strcspn(et + 6, "\r"),
			 et + 6);
		CHECK_EQ_INT(raw_get("/app.js", hdr, resp, 65536), 304);
		CHECK(strstr(resp, "export const") == NULL);
	}
	/* traversal in every spelling: refused, nothing outside is served */
	static const char *const bad[] = {
		"/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
		"/%2E%2E/%2e%2e/secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt", "/.hidden/x.js",
		"/index.html%00.png", "/%00", "/..%2fsecret.txt", "/link.txt",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int st = raw_get(bad[i], NULL, resp, 65536);
		if (st != 400 && st != 404)
			fprintf(stderr, "  %s -> %d\n", bad[i], st);
		CHECK(st == 400 || st == 404);
		CHECK(strstr(resp, "SECRET-OUTSIDE") == NULL);
		CHECK(strstr(resp, "<title>") == NULL);
		CHECK(strstr(resp, "\"error\"") != NULL); /* a readable JSON error */
	}
	CHECK_EQ_INT(raw_get("/nope.js", NULL, resp, 65536), 404);
	/* the API behind the page still needs the token */
	CHECK_EQ_INT(raw_get("/api/v1/vms", NULL, resp, 65536), 401);
	CHECK_EQ_INT(raw_get("/metrics", NULL, resp, 65536), 401);
	char hdr[160];
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", d->token);
	CHECK_EQ_INT(raw_get("/api/v1/vms", hdr, resp, 65536), 200);
	free(resp);
}

/* GET path with the token, the JSON body parsed. */
static int api_get(const char *path, json_t **out)
{
	char *resp = malloc(1 << 20), hdr[160];
	if (!resp)
		return -1;
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", d->token);
	int st = raw_get(path, hdr, resp, 1 << 20);
	const char *body = strstr(resp, "\r\n\r\n");
	*out = body ? json_loads(body + 4, 0, NULL) : NULL;
	free(resp);
	return st;
}

static int api_post(const char *path, const char *body)
{
	int fd = fake_daemon_connect(tcp_port);
	if (fd < 0)
		return -1;
	char rq[2048], resp[4096];
	int n = snprintf(rq, sizeof(rq),
			 "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
			 "%s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 path, d->token, strlen(body), body);
	return raw_exchange(fd, rq, n, resp, sizeof(resp));
}

TEST(history_api)
{
	json_t *j = NULL;
	CHECK_EQ_INT(api_post("/api/v1/vms", "{\"name\":\"h1\",\"memory_mib\":64}"), 201);
	CHECK_EQ_INT(api_post("/api/v1/vms/h1/start", "{}"), 200);
	/* the sampler thread took one sample at start; add two */
	CHECK_EQ_INT(api_get("/api/v1/host/history", &j), 200);
	size_t n0 = json_array_size(json_object_get(json_object_get(j, "samples"), "t"));
	json_decref(j);
	history_sample(d->history, d);
	usleep(20 * 1000);
	history_sample(d->history, d);
	CHECK_EQ_INT(api_get("/api/v1/host/history", &j), 200);
	json_t *s = json_object_get(j, "samples");
	CHECK_EQ_INT((int)json_array_size(json_object_get(s, "t")), (int)n0 + 2);
	CHECK_EQ_INT((int)json_array_size(json_object_get(s, "cpu_percent")), (int)n0 + 2);
	/* the first host CPU sample has no rate yet; memory is there */
	CHECK(json_is_null(json_array_get(json_object_get(s, "cpu_percent"), 0)));
	CHECK(json_real_value(json_array_get(json_object_get(s, "memory_total_bytes"), 0)) > 0);
	CHECK(json_real_value(json_array_get(json_object_get(s, "disk_total_bytes"), n0)) > 0);
	/* from the second sample on, host CPU use is a percentage */
	double cpu = json_real_value(json_array_get(json_object_get(s, "cpu_percent"), n0 + 1));
	CHECK(cpu >= 0 && cpu <= 100);
	CHECK_EQ_INT((int)json_integer_value(json_object_get(j, "interval_seconds")), 60);
	double t1 = json_real_value(json_array_get(json_object_get(s, "t"), n0 + 1));
	json_decref(j);
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/host/history?since=%.4f", t1 - 0.002);
	CHECK_EQ_INT(api_get(path, &j), 200);
	CHECK_EQ_INT((int)json_array_size(json_object_get(json_object_get(j, "samples"), "t")), 1);
	json_decref(j);
	CHECK_EQ_INT(api_get("/api/v1/host/history?since=yesterday", &j), 400);
	json_decref(j);
	/* the fake engine's pids are not processes: columns exist, values null */
	CHECK_EQ_INT(api_get("/api/v1/vms/h1/history", &j), 200);
	s = json_object_get(j, "samples");
	CHECK(json_is_array(json_object_get(s, "cpu_percent")));
	CHECK(json_is_array(json_object_get(s, "net_rx_bytes_per_second")));
	CHECK_STR(json_string_value(json_object_get(j, "name")), "h1");
	json_decref(j);
	CHECK_EQ_INT(api_get("/api/v1/vms/ghost/history", &j), 404);
	json_decref(j);
}

TEST(whoami)
{
	json_t *j = NULL;
	CHECK_EQ_INT(api_get("/api/v1/whoami", &j), 200);
	CHECK_STR(json_string_value(json_object_get(j, "role")), "admin");
	CHECK_STR(json_string_value(json_object_get(j, "token_id")), "admin.token");
	CHECK(json_is_null(json_object_get(j, "project")));
	json_decref(j);
	char resp[4096];
	CHECK_EQ_INT(raw_get("/api/v1/whoami", NULL, resp, sizeof(resp)), 401);
}

/* A fake VNC server: sends the RFB 3.8 banner (RFC 6143 §7.1.1) and echoes
 * what it reads back prefixed with "ECHO:", for up to 4 connections (the
 * proxy probes the socket once before the upgrade). */
static int vnc_listen_fd = -1;

static void *fake_vnc(void *arg)
{
	for (int i = 0; i < 4; i++) {
		int c = accept(vnc_listen_fd, NULL, NULL);
		if (c < 0)
			break;
		util_write_all(c, "RFB 003.008\n", 12);
		char buf[64];
		ssize_t n = read(c, buf, sizeof(buf));
		if (n > 0) {
			util_write_all(c, "ECHO:", 5);
			util_write_all(c, buf, (size_t)n);
		}
		close(c);
	}
	return NULL;
}

static int ws_open(const char *path, char *head, size_t cap)
{
	int fd = fake_daemon_connect(tcp_port);
	if (fd < 0)
		return -1;
	char key[WS_KEY_LEN + 1], rq[1024];
	ws_client_key(key);
	int n = snprintf(rq, sizeof(rq),
			 "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
			 "Sec-WebSocket-Protocol: binary\r\n\r\n", path, key);
	util_write_all(fd, rq, (size_t)n);
	size_t hl = 0;
	while (hl < cap - 1 && read(fd, head + hl, 1) == 1) {
		hl++;
		if (hl >= 4 && memcmp(head + hl - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	head[hl] = '\0';
	return fd;
}

TEST(vnc_proxy)
{
	char head[2048], path[256];
	/* not running: 409 saying so */
	CHECK_EQ_INT(api_post("/api/v1/vms", "{\"name\":\"v1\",\"memory_mib\":64}"), 201);
	snprintf(path, sizeof(path), "/api/v1/vms/v1/vnc/ws?token=%s", d->token);
	int fd = ws_open(path, head, sizeof(head));
	CHECK(strstr(head, " 409 ") != NULL);
	close(fd);
	CHECK_EQ_INT(api_post("/api/v1/vms/v1/start", "{}"), 200);
	/* running but no display socket (started without VNC): 409 */
	fd = ws_open(path, head, sizeof(head));
	CHECK(strstr(head, " 409 ") != NULL);
	close(fd);
	/* wrong token: 401 */
	fd = ws_open("/api/v1/vms/v1/vnc/ws?token=nope", head, sizeof(head));
	CHECK(strstr(head, " 401 ") != NULL);
	close(fd);

	char sp[PATH_MAX + 64];
	snprintf(sp, sizeof(sp), "mkdir -p %s/data/run/v1", dir);
	CHECK_EQ_INT(system(sp), 0);
	snprintf(sp, sizeof(sp), "%s/data/run/v1/vnc.sock", dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", sp);
	vnc_listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_EQ_INT(bind(vnc_listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_EQ_INT(listen(vnc_listen_fd, 4), 0);
	pthread_t th;
	pthread_create(&th, NULL, fake_vnc, NULL);

	fd = ws_open(path, head, sizeof(head));
	CHECK(strstr(head, " 101 ") != NULL);
	CHECK(strstr(head, "Sec-WebSocket-Protocol: binary") != NULL);
	struct ws_conn *c = NULL;
	CHECK_EQ_INT(ws_conn_new(fd, false, 0, &c), 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char got[128];
	size_t gl = 0;
	struct ws_message m;
	while (gl < 12 && ws_conn_recv(c, &m) == 0) {
		CHECK_EQ_INT(m.opcode, WS_OP_BINARY);
		memcpy(got + gl, m.data, MIN(m.len, sizeof(got) - gl));
		gl += MIN(m.len, sizeof(got) - gl);
	}
	CHECK(gl == 12 && memcmp(got, "RFB 003.008\n", 12) == 0);
	/* the client's version reply reaches the server unchanged */
	CHECK_EQ_INT(ws_conn_send(c, WS_OP_BINARY, "RFB 003.008\n", 12), 0);
	gl = 0;
	while (gl < 17 && ws_conn_recv(c, &m) == 0) {
		memcpy(got + gl, m.data, MIN(m.len, sizeof(got) - gl));
		gl += MIN(m.len, sizeof(got) - gl);
	}
	CHECK(gl == 17 && memcmp(got, "ECHO:RFB 003.008\n", 17) == 0);
	/* the server closed its end: the WebSocket is closed too */
	CHECK(ws_conn_recv(c, &m) == -EPIPE);
	ws_conn_free(c);
	close(fd);
	shutdown(vnc_listen_fd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(vnc_listen_fd);
	api_post("/api/v1/vms/v1/force-stop", "{}");
	api_post("/api/v1/vms/h1/force-stop", "{}");
}

TEST(teardown)
{
	daemon_stop(d);
	daemon_free(d);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

HARNESS_MAIN
