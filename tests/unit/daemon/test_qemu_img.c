/* Unit tests for src/daemon/qemu_img.c: progress parsing of `qemu-img -p`
 * output, `qemu-img info` JSON, SHA-256 of a file, and (when qemu-img is
 * installed) a real convert with progress and a failing run's error text. */
#include "daemon/qemu_img.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

TEST(progress)
{
	double p = -1;
	const char out[] = "    (0.00/100%)\r    (12.50/100%)\r    (37.01/100%)\r";
	CHECK(qemu_img_parse_progress(out, sizeof(out) - 1, &p));
	CHECK(p > 37.0 && p < 37.02);
	CHECK(qemu_img_parse_progress("(100.00/100%)\r\n", 15, &p));
	CHECK(p == 100.0);
	/* incomplete or foreign text is not progress */
	CHECK(!qemu_img_parse_progress("    (45.00/10", 13, &p));
	CHECK(!qemu_img_parse_progress("(abc/100%)", 10, &p));
	CHECK(!qemu_img_parse_progress("(150.00/100%)", 13, &p));
	CHECK(!qemu_img_parse_progress("", 0, &p));
}

TEST(info_parse)
{
	struct qemu_img_info i;
	CHECK_EQ_INT(qemu_img_info_parse("{\"virtual-size\": 2147483648, \"filename\": \"a\","
					 " \"format\": \"qcow2\", \"actual-size\": 200704,"
					 " \"backing-filename\": \"/b.qcow2\"}", &i), 0);
	CHECK_STR(i.format, "qcow2");
	CHECK_EQ_INT(i.virtual_size, 2147483648ull);
	CHECK_EQ_INT(i.actual_size, 200704);
	CHECK_STR(i.backing, "/b.qcow2");
	CHECK_EQ_INT(qemu_img_info_parse("{\"format\": \"raw\"}", &i), -EINVAL);
	CHECK_EQ_INT(qemu_img_info_parse("not json", &i), -EINVAL);
	CHECK_EQ_INT(qemu_img_info_parse("{\"format\":\"raw\",\"virtual-size\":-1}", &i), -EINVAL);
}

TEST(sha256)
{
	char path[] = "/tmp/vessel-test-sha-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK_EQ_INT(write(fd, "abc", 3), 3);
	close(fd);
	char hex[65];
	CHECK_EQ_INT(qemu_img_sha256(path, hex), 0);
	/* FIPS 180-2 example "abc" */
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	unlink(path);
	CHECK_EQ_INT(qemu_img_sha256("/nonexistent/file", hex), -ENOENT);
}

static int last_pct = -1;
static void on_progress(void *opaque, int pct)
{
	last_pct = pct;
}

TEST(real_qemu_img)
{
	if (system("qemu-img --version >/dev/null 2>&1") != 0)
		SKIP("qemu-img not installed");
	char dir[] = "/tmp/vessel-test-qimg-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char src[64], dst[64], cmd[160];
	snprintf(src, sizeof(src), "%s/a.raw", dir);
	snprintf(dst, sizeof(dst), "%s/b.qcow2", dir);
	snprintf(cmd, sizeof(cmd), "truncate -s 16M %s", src);
	CHECK_EQ_INT(system(cmd), 0);
	char *err = NULL;
	const char *args[] = {"convert", "-p", "-f", "raw", "-O", "qcow2", src, dst, NULL};
	CHECK_EQ_INT(qemu_img_run("qemu-img", args, on_progress, NULL, NULL, &err), 0);
	CHECK_EQ_INT(last_pct, 100);
	struct qemu_img_info i;
	CHECK_EQ_INT(qemu_img_info("qemu-img", dst, "qcow2", &i, &err), 0);
	CHECK_STR(i.format, "qcow2");
	CHECK_EQ_INT(i.virtual_size, 16 * 1024 * 1024);
	/* a failure carries qemu-img's own message */
	const char *bad[] = {"info", "/nonexistent/x.qcow2", NULL};
	CHECK_EQ_INT(qemu_img_run("qemu-img", bad, NULL, NULL, NULL, &err), -EIO);
	CHECK(err && strstr(err, "/nonexistent/x.qcow2") != NULL);
	free(err);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

HARNESS_MAIN
