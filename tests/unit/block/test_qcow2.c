/* Unit tests for src/block/qcow2.c against images made by qemu-img and
 * qemu-io (skipped when they are not installed): the same random data read
 * through raw and through qcow2 must match, including zero clusters,
 * unallocated clusters and a backing chain; the same random writes through
 * raw and qcow2 must leave the same content, with qemu-img compare and
 * qemu-img check agreeing; damaged headers and tables, compressed clusters
 * and images we cannot write are refused with an error. */
#include "block/block.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "lib/log.h"
#include "lib/util.h"

#define DISK (4 * MiB)

static char dir[64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = system(cmd);
	if (r != 0)
		fprintf(stderr, "  command failed (%d): %s\n", r, cmd);
	return r;
}

static bool have_qemu_tools(void)
{
	return system("qemu-img --version >/dev/null 2>&1 && qemu-io --version >/dev/null 2>&1") == 0;
}

static int setup(void)
{
	log_set_level(LOG_LEVEL_ERROR + (getenv("VERBOSE") ? 3 : 0));
	snprintf(dir, sizeof(dir), "/tmp/vessel-qcow2-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static void teardown(void)
{
	sh("rm -rf %s", dir);
}

/* A raw file of DISK bytes: random data with holes of zeroes. */
static int make_raw(const char *path)
{
	uint8_t *buf = malloc(DISK);
	unsigned seed = 12345;
	for (size_t i = 0; i < DISK; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
	memset(buf + 256 * KiB, 0, 512 * KiB);   /* becomes unallocated */
	memset(buf + 3 * MiB + 100, 0, 5000);   /* zeroes inside a cluster */
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	int r = fd >= 0 && write(fd, buf, DISK) == DISK ? 0 : -1;
	close(fd);
	free(buf);
	return r;
}

/* Read all of a and b in uneven pieces and compare. */
static bool same_content(struct block_dev *a, const char *raw_path)
{
	struct block_dev *b = NULL;
	bool same = true;
	if (block_open_path(raw_path, "raw", BLOCK_OPEN_READ_ONLY, &b) < 0)
		return false;
	uint8_t *x = malloc(200 * 1024), *y = malloc(200 * 1024);
	uint64_t off = 0;
	size_t step = 7 * 1024 + 512;
	if (a->size != b->size) {
		fprintf(stderr, "  sizes differ: %llu vs %llu\n", (unsigned long long)a->size,
			(unsigned long long)b->size);
		same = false;
	}
	while (same && off < a->size) {
		size_t n = (size_t)MIN((uint64_t)step, a->size - off);
		/* two pieces for the qcow2 side, to exercise scatter */
		struct iovec va[2] = {{x, n / 3}, {x + n / 3, n - n / 3}};
		struct iovec vb = {y, n};
		if (block_preadv(a, va, 2, off) < 0 || block_preadv(b, &vb, 1, off) < 0 ||
		    memcmp(x, y, n) != 0) {
			fprintf(stderr, "  mismatch or error at %llu\n", (unsigned long long)off);
			same = false;
		}
		off += n;
		step = step * 3 % (150 * 1024) + 512;
	}
	free(x);
	free(y);
	block_free(b);
	return same;
}

TEST(raw_and_qcow2_agree)
{
	char raw[128], q[128];
	struct block_dev *bd = NULL;

	if (!have_qemu_tools())
		SKIP("qemu-img/qemu-io not installed");
	CHECK_EQ_INT(setup(), 0);
	snprintf(raw, sizeof(raw), "%s/data.raw", dir);
	CHECK_EQ_INT(make_raw(raw), 0);
	/* default 64 KiB clusters, and small 4 KiB ones (more L2 tables) */
	const char *variants[] = {"", "-o cluster_size=4096", "-o compat=0.10"};
	for (size_t i = 0; i < ARRAY_SIZE(variants); i++) {
		snprintf(q, sizeof(q), "%s/data%zu.qcow2", dir, i);
		CHECK_EQ_INT(sh("qemu-img convert -f raw -O qcow2 %s %s %s", variants[i], raw, q), 0);
		CHECK_EQ_INT(block_open_path(q, "qcow2", BLOCK_OPEN_READ_ONLY, &bd), 0);
		if (!bd)
			continue;
		CHECK(bd->read_only);
		CHECK(same_content(bd, raw));
		block_free(bd);
		bd = NULL;
	}
	teardown();
}

TEST(backing_chain_and_zero_clusters)
{
	char raw[128], base[128], mid[128], top[128], expect[128];
	struct block_dev *bd = NULL;

	if (!have_qemu_tools())
		SKIP("qemu-img/qemu-io not installed");
	CHECK_EQ_INT(setup(), 0);
	snprintf(raw, sizeof(raw), "%s/base.raw", dir);
	snprintf(base, sizeof(base), "%s/base.qcow2", dir);
	snprintf(mid, sizeof(mid), "%s/mid.qcow2", dir);
	snprintf(top, sizeof(top), "%s/top.qcow2", dir);
	snprintf(expect, sizeof(expect), "%s/expect.raw", dir);
	CHECK_EQ_INT(make_raw(raw), 0);
	CHECK_EQ_INT(sh("qemu-img convert -f raw -O qcow2 %s %s", raw, base), 0);
	/* mid: relative backing name, a write and a zeroed range */
	CHECK_EQ_INT(sh("cd %s && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2", dir), 0);
	CHECK_EQ_INT(sh("qemu-io -c 'write -P 0x5a 100k 200k' -c 'write -z 1M 128k' %s >/dev/null", mid), 0);
	/* top: larger than its backing file, raw-backed chain below via mid */
	CHECK_EQ_INT(sh("qemu-img create -q -f qcow2 -b %s -F qcow2 %s 6M", mid, top), 0);
	CHECK_EQ_INT(sh("qemu-io -c 'write -P 0xc3 3M 70k' -c 'write -P 0x11 5M 4k' %s >/dev/null", top), 0);
	CHECK_EQ_INT(sh("qemu-img convert -O raw %s %s", top, expect), 0);
	CHECK_EQ_INT(block_open_path(top, "qcow2", BLOCK_OPEN_READ_ONLY, &bd), 0);
	if (bd) {
		CHECK_EQ_INT(bd->size, 6 * MiB);
		CHECK(same_content(bd, expect));
	}
	block_free(bd);
	bd = NULL;
	/* a raw backing file */
	CHECK_EQ_INT(sh("qemu-img create -q -f qcow2 -b %s -F raw %s/onraw.qcow2", raw, dir), 0);
	CHECK_EQ_INT(sh("qemu-io -c 'write -P 0x77 0 1k' %s/onraw.qcow2 >/dev/null", dir), 0);
	CHECK_EQ_INT(sh("qemu-img convert -O raw %s/onraw.qcow2 %s", dir, expect), 0);
	snprintf(top, sizeof(top), "%s/onraw.qcow2", dir);
	CHECK_EQ_INT(block_open_path(top, "qcow2", BLOCK_OPEN_READ_ONLY, &bd), 0);
	if (bd)
		CHECK(same_content(bd, expect));
	block_free(bd);
	bd = NULL;
	/* a backing file that ends inside one of the overlay's clusters */
	CHECK_EQ_INT(sh("truncate -s %llu %s", (unsigned long long)DISK + 512, raw), 0);
	CHECK_EQ_INT(sh("qemu-img create -q -f qcow2 -b %s -F raw %s/odd.qcow2 5M", raw, dir), 0);
	CHECK_EQ_INT(sh("qemu-img convert -O raw %s/odd.qcow2 %s", dir, expect), 0);
	snprintf(top, sizeof(top), "%s/odd.qcow2", dir);
	CHECK_EQ_INT(block_open_path(top, "qcow2", BLOCK_OPEN_READ_ONLY, &bd), 0);
	if (bd)
		CHECK(same_content(bd, expect));
	block_free(bd);
	teardown();
}

TEST(refusals)
{
	char raw[128], q[128];
	struct block_dev *bd = NULL;
	uint8_t buf[4096];
	struct iovec v = {buf, sizeof(buf)};

	if (!have_qemu_tools())
		SKIP("qemu-img/qemu-io not installed");
	CHECK_EQ_INT(setup(), 0);
	snprintf(raw, sizeof(raw), "%s/data.raw", dir);
	snprintf(q, sizeof(q), "%s/c.qcow2", dir);
	CHECK_EQ_INT(make_raw(raw), 0);
	/* writable open of an image with an internal snapshot */
	CHECK_EQ_INT(sh("qemu-img convert -f raw -O qcow2 %s %s", raw, q), 0);
	CHECK_EQ_INT(sh("qemu-img snapshot -c snap1 %s", q), 0);
	CHECK_EQ_INT(block_open_path(q, "qcow2", 0, &bd), -ENOTSUP);
	/* direct I/O */
	int dr = block_open_path(q, "qcow2", BLOCK_OPEN_READ_ONLY | BLOCK_OPEN_DIRECT, &bd);
	CHECK(dr == -ENOTSUP || dr == -EINVAL); /* -EINVAL: /tmp without O_DIRECT */
	CHECK_EQ_INT(block_open_path(q, "qcow2", BLOCK_OPEN_READ_ONLY, &bd), 0);
	if (bd) {
		CHECK_EQ_INT(block_pwritev(bd, &v, 1, 0), -EROFS);
		block_free(bd);
		bd = NULL;
	}
	/* compressed clusters: open works, reading one fails */
	CHECK_EQ_INT(sh("qemu-img create -q -f qcow2 %s 1M && "
			"qemu-io -c 'write -c -P 0x41 0 64k' %s >/dev/null", q, q), 0);
	CHECK_EQ_INT(block_open_path(q, "qcow2", BLOCK_OPEN_READ_ONLY, &bd), 0);
	if (bd) {
		CHECK_EQ_INT(block_preadv(bd, &v, 1, 0), -ENOTSUP);
		block_free(bd);
		bd = NULL;
	}
	/* unrecorded backing format: hide the backing-format header
	 * extension by renaming its type (readers skip unknown ones) */
	snprintf(q, sizeof(q), "%s/nofmt.qcow2", dir);
	CHECK_EQ_INT(sh("qemu-img create -q -f qcow2 -b %s -F raw %s", raw, q), 0);
	int fd = open(q, O_RDWR | O_CLOEXEC);
	uint32_t hdrlen, ext[2];
	CHECK_EQ_INT(pread(fd, &hdrlen, 4, 100), 4);
	bool hidden = false;
	for (uint64_t off = be32toh(hdrlen); off < 4096;) {
		CHECK_EQ_INT(pread(fd, ext, 8, (off_t)off), 8);
		if (be32toh(ext[0]) == 0)
			break;
		if (be32toh(ext[0]) == 0xe2792acau) {
			uint32_t other = htobe32(0x1234abcdu);
			CHECK_EQ_INT(pwrite(fd, &other, 4, (off_t)off), 4);
			hidden = true;
		}
		off += 8 + ALIGN_UP((uint64_t)be32toh(ext[1]), 8);
	}
	close(fd);
	CHECK(hidden);
	CHECK_EQ_INT(block_open_path(q, "qcow2", BLOCK_OPEN_READ_ONLY, &bd), -EINVAL);
	block_free(bd);
	bd = NULL;
	/* a backing file that is missing */
	CHECK_EQ_INT(sh("qemu-img create -q -f qcow2 -b %s/gone.raw -F raw -u %s/orphan.qcow2 1M", dir, dir), 0);
	snprintf(q, sizeof(q), "%s/orphan.qcow2", dir);
	CHECK_EQ_INT(block_open_path(q, "qcow2", BLOCK_OPEN_READ_ONLY, &bd), -ENOENT);
	teardown();
}

/* Patch bytes of a fresh qcow2 image and expect open (or the first read)
 * to fail with want. */
static void damaged(const char *what, uint64_t off, const void *bytes, size_t n, int want_open,
		    int want_read)
{
	char raw[128], q[128];
	struct block_dev *bd = NULL;
	uint8_t buf[4096];
	struct iovec v = {buf, sizeof(buf)};

	snprintf(raw, sizeof(raw), "%s/data.raw", dir);
	snprintf(q, sizeof(q), "%s/bad.qcow2", dir);
	if (sh("qemu-img convert -f raw -O qcow2 -o cluster_size=4096 %s %s", raw, q) != 0)
		return;
	int fd = open(q, O_WRONLY | O_CLOEXEC);
	CHECK_EQ_INT(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
	close(fd);
	int r = block_open_path(q, "qcow2", BLOCK_OPEN_READ_ONLY, &bd);
	if (r != want_open)
		fprintf(stderr, "  %s: open gave %d, want %d\n", what, r, want_open);
	CHECK_EQ_INT(r, want_open);
	if (bd) {
		r = block_preadv(bd, &v, 1, 0);
		if (r != want_read)
			fprintf(stderr, "  %s: read gave %d, want %d\n", what, r, want_read);
		CHECK_EQ_INT(r, want_read);
	}
	block_free(bd);
}

TEST(damaged_images)
{
	char raw[128];
	uint32_t be32;
	uint64_t be64;

	if (!have_qemu_tools())
		SKIP("qemu-img/qemu-io not installed");
	CHECK_EQ_INT(setup(), 0);
	snprintf(raw, sizeof(raw), "%s/data.raw", dir);
	CHECK_EQ_INT(make_raw(raw), 0);
	damaged("magic", 0, "XFI\xfb", 4, -EINVAL, 0);
	be32 = htobe32(4);
	damaged("version", 4, &be32, 4, -EINVAL, 0);
	be32 = htobe32(31);
	damaged("cluster bits", 20, &be32, 4, -EINVAL, 0);
	be32 = htobe32(8);
	damaged("cluster bits too small", 20, &be32, 4, -EINVAL, 0);
	be32 = htobe32(1);
	damaged("encrypted", 32, &be32, 4, -ENOTSUP, 0);
	be32 = htobe32(0);
	damaged("L1 too small for size", 36, &be32, 4, -EINVAL, 0);
	be32 = htobe32(0x10000000);
	damaged("L1 huge", 36, &be32, 4, -EINVAL, 0);
	be64 = htobe64(1ull << 40);
	damaged("L1 outside file", 40, &be64, 8, -EINVAL, 0);
	be64 = htobe64(0x30001);
	damaged("L1 misaligned", 40, &be64, 8, -EINVAL, 0);
	be64 = htobe64(1ull << 5);
	damaged("unknown incompatible feature", 72, &be64, 8, -ENOTSUP, 0);
	be64 = htobe64(1ull << 4);
	damaged("extended L2", 72, &be64, 8, -ENOTSUP, 0);
	be64 = htobe64(1ull << 63);
	damaged("virtual size huge", 24, &be64, 8, -EINVAL, 0);
	/* L1[0] (at the L1 table offset, cluster 3 in a fresh 4 KiB-cluster
	 * image) pointing past the end of the file: open works, the read
	 * that needs it fails. */
	char q[128];
	snprintf(q, sizeof(q), "%s/probe.qcow2", dir);
	CHECK_EQ_INT(sh("qemu-img convert -f raw -O qcow2 -o cluster_size=4096 %s %s", raw, q), 0);
	int fd = open(q, O_RDONLY | O_CLOEXEC);
	CHECK_EQ_INT(pread(fd, &be64, 8, 40), 8);
	close(fd);
	uint64_t l1_off = be64toh(be64);
	be64 = htobe64((1ull << 63) | (1ull << 40));
	damaged("L1 entry outside file", l1_off, &be64, 8, 0, -EIO);
	be64 = htobe64((1ull << 63) | 0x1200);
	damaged("L1 entry misaligned", l1_off, &be64, 8, 0, -EIO);
	/* L2[0] (where L1[0] points) naming a data cluster past the end */
	fd = open(q, O_RDONLY | O_CLOEXEC);
	CHECK_EQ_INT(pread(fd, &be64, 8, (off_t)l1_off), 8);
	close(fd);
	uint64_t l2_off = be64toh(be64) & 0x00fffffffffffe00ull;
	CHECK(l2_off != 0);
	be64 = htobe64((1ull << 63) | (1ull << 40));
	damaged("L2 entry outside file", l2_off, &be64, 8, 0, -EIO);
	teardown();
}

/* Two structures in one cluster: a writable open is refused (read-only
 * still works); an L2 entry that points data at a table fails the write
 * and leaves the table as it was. */
TEST(metadata_overlap_refused)
{
	char raw[128], q[128];
	uint64_t be64, l1_off, rt_off, l2_off, before, after;
	struct block_dev *bd = NULL;
	uint8_t buf[512];
	struct iovec v = {buf, sizeof(buf)};
	int fd;

	if (!have_qemu_tools())
		SKIP("qemu-img/qemu-io not installed");
	CHECK_EQ_INT(setup(), 0);
	snprintf(raw, sizeof(raw), "%s/data.raw", dir);
	snprintf(q, sizeof(q), "%s/overlap.qcow2", dir);
	CHECK_EQ_INT(make_raw(raw), 0);
	CHECK_EQ_INT(sh("qemu-img convert -f raw -O qcow2 -o cluster_size=4096 %s %s", raw, q), 0);
	fd = open(q, O_RDWR | O_CLOEXEC);
	CHECK_EQ_INT(pread(fd, &be64, 8, 40), 8);
	l1_off = be64toh(be64);
	CHECK_EQ_INT(pread(fd, &be64, 8, 48), 8);
	rt_off = be64toh(be64);
	CHECK_EQ_INT(pread(fd, &be64, 8, (off_t)l1_off), 8);
	l2_off = be64toh(be64) & 0x00fffffffffffe00ull;
	CHECK(l2_off != 0);

	/* L1[0] names the refcount table as its L2 table */
	uint64_t saved = be64;
	be64 = htobe64((1ull << 63) | rt_off);
	CHECK_EQ_INT(pwrite(fd, &be64, 8, (off_t)l1_off), 8);
	CHECK_EQ_INT(block_open_path(q, "qcow2", 0, &bd), -EINVAL);
	CHECK(bd == NULL);
	CHECK_EQ_INT(block_open_path(q, "qcow2", BLOCK_OPEN_READ_ONLY, &bd), 0);
	block_free(bd);
	bd = NULL;
	CHECK_EQ_INT(pwrite(fd, &saved, 8, (off_t)l1_off), 8);

	/* L2[0] points data at the L2 table itself */
	be64 = htobe64((1ull << 63) | l2_off);
	CHECK_EQ_INT(pwrite(fd, &be64, 8, (off_t)l2_off), 8);
	CHECK_EQ_INT(pread(fd, &before, 8, (off_t)l2_off), 8);
	CHECK_EQ_INT(block_open_path(q, "qcow2", 0, &bd), 0);
	if (bd) {
		memset(buf, 0xa5, sizeof(buf));
		CHECK_EQ_INT(block_pwritev(bd, &v, 1, 0), -EIO);
		block_free(bd);
	}
	CHECK_EQ_INT(pread(fd, &after, 8, (off_t)l2_off), 8);
	CHECK_EQ_INT(after, before);
	close(fd);
	teardown();
}

/* Apply the same pseudo-random writes to two disks. */
static void same_writes(struct block_dev *a, struct block_dev *b, unsigned seed, unsigned count)
{
	uint8_t *buf = malloc(300 * 512);
	for (unsigned i = 0; i < count; i++) {
		seed = seed * 1103515245u + 12345u;
		uint64_t nsect = 1 + (seed >> 8) % 300;
		seed = seed * 1103515245u + 12345u;
		uint64_t sector = (seed >> 4) % (a->size / 512 - nsect);
		for (size_t j = 0; j < nsect * 512; j++) {
			seed = seed * 1103515245u + 12345u;
			buf[j] = (uint8_t)(seed >> 16);
		}
		/* uneven scatter on the qcow2 side */
		struct iovec va[2] = {{buf, 100}, {buf + 100, nsect * 512 - 100}};
		struct iovec vb = {buf, nsect * 512};
		int ra = block_pwritev(a, va, 2, sector * 512);
		int rb = block_pwritev(b, &vb, 1, sector * 512);
		if (ra || rb)
			fprintf(stderr, "  write %u at sector %llu: %d %d\n", i,
				(unsigned long long)sector, ra, rb);
		CHECK_EQ_INT(ra, 0);
		CHECK_EQ_INT(rb, 0);
	}
	free(buf);
}

TEST(writes_match_raw_and_pass_qemu_img_check)
{
	char raw[128], copy[128], q[128];
	struct block_dev *a = NULL, *b = NULL;
	const char *make[] = {
		"qemu-img convert -f raw -O qcow2 %s %s",
		"qemu-img convert -f raw -O qcow2 -o cluster_size=512 %s %s",
		"qemu-img convert -f raw -O qcow2 -o compat=0.10 %s %s",
		/* an empty overlay on a qcow2 copy: every partial write is a
		 * copy on write from the backing file */
		"qemu-img convert -f raw -O qcow2 %s %s.base && "
		"qemu-img create -q -f qcow2 -b $(basename %s).base -F qcow2 %s",
		/* zero clusters written by qemu-io, then overwritten by us */
		"qemu-img convert -f raw -O qcow2 %s %s && "
		"qemu-io -c 'write -z 0 1M' -c 'write -z -u 2M 512k' %s >/dev/null",
	};

	if (!have_qemu_tools())
		SKIP("qemu-img/qemu-io not installed");
	CHECK_EQ_INT(setup(), 0);
	snprintf(raw, sizeof(raw), "%s/data.raw", dir);
	snprintf(copy, sizeof(copy), "%s/copy.raw", dir);
	CHECK_EQ_INT(make_raw(raw), 0);
	for (size_t i = 0; i < ARRAY_SIZE(make); i++) {
		snprintf(q, sizeof(q), "%s/w%zu.qcow2", dir, i);
		if (i == 3)
			CHECK_EQ_INT(sh(make[i], raw, q, q, q), 0);
		else if (i == 4)
			CHECK_EQ_INT(sh(make[i], raw, q, q), 0);
		else
			CHECK_EQ_INT(sh(make[i], raw, q), 0);
		/* the raw side sees what the qcow2 side starts with */
		CHECK_EQ_INT(sh("qemu-img convert -O raw %s %s", q, copy), 0);
		CHECK_EQ_INT(block_open_path(q, "qcow2", 0, &a), 0);
		CHECK_EQ_INT(block_open_path(copy, "raw", 0, &b), 0);
		if (!a || !b)
			break;
		same_writes(a, b, (unsigned)i + 1, 200);
		CHECK_EQ_INT(block_flush(a), 0);
		CHECK(same_content(a, copy));
		block_free(a);
		block_free(b);
		a = b = NULL;
		CHECK_EQ_INT(sh("qemu-img check -q %s", q), 0);
		CHECK_EQ_INT(sh("qemu-img compare -q -f raw -F qcow2 %s %s", copy, q), 0);
	}
	block_free(a);
	block_free(b);
	teardown();
}

/* Write number i of the crash test: where, how long, and its bytes. */
#define CRASH_DISK (8 * MiB)
static void crash_write(unsigned i, uint64_t *off, size_t *len, uint8_t *buf)
{
	unsigned seed = i * 2654435761u + 1;
	seed = seed * 1103515245u + 12345u;
	*len = 512 * (1 + (seed >> 8) % 24);
	seed = seed * 1103515245u + 12345u;
	*off = 512 * ((seed >> 4) % (CRASH_DISK / 512 - 24));
	for (size_t j = 0; j < *len; j++)
		buf[j] = (uint8_t)(i + j / 512);
}

TEST(killed_mid_write_keeps_flushed_data)
{
	char q[128];
	int p[2];

	if (!have_qemu_tools())
		SKIP("qemu-img/qemu-io not installed");
	CHECK_EQ_INT(setup(), 0);
	snprintf(q, sizeof(q), "%s/crash.qcow2", dir);
	/* small clusters and an empty image: nearly every write allocates
	 * data clusters, L2 tables and refcount blocks */
	CHECK_EQ_INT(sh("qemu-img create -q -f qcow2 -o cluster_size=4096 %s %llu", q,
			(unsigned long long)CRASH_DISK), 0);
	CHECK_EQ_INT(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		/* The "monitor": write, flush, then report the write durable. */
		struct block_dev *bd = NULL;
		static uint8_t buf[24 * 512];
		close(p[0]);
		if (block_open_path(q, "qcow2", 0, &bd) < 0)
			_exit(2);
		for (unsigned i = 0; i < 100000; i++) {
			uint64_t off;
			size_t len;
			crash_write(i, &off, &len, buf);
			struct iovec v = {buf, len};
			if (block_pwritev(bd, &v, 1, off) < 0 || block_flush(bd) < 0)
				_exit(3);
			if (write(p[1], &i, sizeof(i)) != sizeof(i))
				_exit(4);
		}
		_exit(0);
	}
	close(p[1]);
	unsigned acked = 0, got = 0, v;
	/* let it run a while, then kill it at an arbitrary moment */
	while (got < 40 && read(p[0], &v, sizeof(v)) == sizeof(v)) {
		acked = v;
		got++;
	}
	struct timespec ts = {0, (long)(getpid() % 7) * 1000 * 1000};
	nanosleep(&ts, NULL);
	kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	while (read(p[0], &v, sizeof(v)) == sizeof(v)) {
		acked = v;
		got++;
	}
	close(p[0]);
	CHECK(WIFSIGNALED(status));
	CHECK(got >= 40);

	/* Expected content: every acknowledged write applied in order; the
	 * one in flight may or may not have landed, so its bytes are not
	 * compared. */
	uint8_t *want = calloc(1, CRASH_DISK), *care = malloc(CRASH_DISK), *have = malloc(CRASH_DISK);
	static uint8_t buf[24 * 512];
	memset(care, 1, CRASH_DISK);
	for (unsigned i = 0; i <= acked + 1; i++) {
		uint64_t off;
		size_t len;
		crash_write(i, &off, &len, buf);
		if (i <= acked)
			memcpy(want + off, buf, len);
		else
			memset(care + off, 0, len);
	}
	/* qemu-img check: leaks (exit 3) are allowed after a kill,
	 * corruption (exit 2) is not */
	int rc = sh("qemu-img check -q %s >/dev/null 2>&1; test $? -eq 0 -o $? -eq 3", q);
	CHECK_EQ_INT(rc, 0);
	struct block_dev *bd = NULL;
	CHECK_EQ_INT(block_open_path(q, "qcow2", BLOCK_OPEN_READ_ONLY, &bd), 0);
	if (bd) {
		struct iovec iv = {have, CRASH_DISK};
		CHECK_EQ_INT(block_preadv(bd, &iv, 1, 0), 0);
		size_t bad = 0;
		for (size_t i = 0; i < CRASH_DISK; i++)
			if (care[i] && have[i] != want[i])
				bad++;
		if (bad)
			fprintf(stderr, "  %zu bytes differ after %u acknowledged writes\n", bad, acked + 1);
		CHECK_EQ_INT(bad, 0);
		block_free(bd);
	}
	printf("  killed after %u flushed writes\n", acked + 1);
	free(want);
	free(care);
	free(have);
	teardown();
}

HARNESS_MAIN
