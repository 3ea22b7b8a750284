/* Unit tests for src/block: the raw driver behind the block_dev interface
 * (round trips through temp files, bounds and sector math, read-only disks,
 * flush reaching fdatasync, O_DIRECT with misaligned buffers, discard and
 * write-zeroes). */
#include "block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "lib/log.h"
#include "lib/util.h"

/* A temp file of `size` bytes in dir; returns its fd (path in buf). */
static int tmp_disk(const char *dir, char *buf, size_t buflen, uint64_t size)
{
	snprintf(buf, buflen, "%s/vessel-test-raw-XXXXXX", dir);
	int fd = mkstemp(buf);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		unlink(buf);
		return -1;
	}
	return fd;
}

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

TEST(round_trip_path)
{
	char path[256];
	struct block_dev *bd = NULL;
	uint8_t *a = malloc(64 * 1024), *b = calloc(1, 64 * 1024);
	int fd = tmp_disk("/tmp", path, sizeof(path), 1 * MiB);

	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_INT(block_open_path(path, "raw", 0, &bd), 0);
	CHECK(bd != NULL);
	if (!bd)
		goto out;
	CHECK_EQ_INT(bd->size, 1 * MiB);
	CHECK_EQ_INT(block_sectors(bd), 2048);
	CHECK(!bd->read_only);
	fill_random(a, 64 * 1024, 42);
	/* Scatter the write over uneven pieces, gather it back differently. */
	struct iovec w[3] = {{a, 1000}, {a + 1000, 30000}, {a + 31000, 64 * 1024 - 31000}};
	struct iovec r[2] = {{b, 512}, {b + 512, 64 * 1024 - 512}};
	CHECK_EQ_INT(block_pwritev(bd, w, 3, 4096), 0);
	CHECK_EQ_INT(block_preadv(bd, r, 2, 4096), 0);
	CHECK(memcmp(a, b, 64 * 1024) == 0);
	CHECK_EQ_INT(bd->stats.wr_ops, 1);
	CHECK_EQ_INT(bd->stats.rd_bytes, 64 * 1024);
	/* The bytes are in the file where they belong. */
	block_free(bd);
	bd = NULL;
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	memset(b, 0, 64 * 1024);
	CHECK_EQ_INT(pread(fd, b, 64 * 1024, 4096), 64 * 1024);
	CHECK(memcmp(a, b, 64 * 1024) == 0);
	close(fd);
out:
	block_free(bd);
	unlink(path);
	free(a);
	free(b);
}

TEST(bounds)
{
	struct block_dev *bd = NULL;
	uint8_t buf[1024] = {0};
	struct iovec v = {buf, sizeof(buf)};
	uint64_t off = 0;
	int fd = memfd_create("disk", MFD_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ_INT(ftruncate(fd, 8192 + 100), 0);
	CHECK_EQ_INT(block_open_fd(fd, "raw", 0, "mem", &bd), 0);
	if (!bd)
		return;
	/* 8292 bytes: 16 whole sectors; the tail is not addressable. */
	CHECK_EQ_INT(block_sectors(bd), 16);
	CHECK_EQ_INT(block_preadv(bd, &v, 1, 8192 + 100 - 1024), 0);
	CHECK_EQ_INT(block_preadv(bd, &v, 1, 8192 + 100 - 1023), -ERANGE);
	CHECK_EQ_INT(block_pwritev(bd, &v, 1, UINT64_MAX - 100), -ERANGE);
	CHECK_EQ_INT(block_sector_range(bd, 0, 8192, &off), 0);
	CHECK_EQ_INT(off, 0);
	CHECK_EQ_INT(block_sector_range(bd, 14, 1024, &off), 0);
	CHECK_EQ_INT(off, 14 * 512);
	CHECK_EQ_INT(block_sector_range(bd, 15, 1024, &off), -ERANGE);
	CHECK_EQ_INT(block_sector_range(bd, 16, 0, &off), 0);
	CHECK_EQ_INT(block_sector_range(bd, 17, 0, &off), -ERANGE);
	CHECK_EQ_INT(block_sector_range(bd, UINT64_MAX, 512, &off), -ERANGE);
	CHECK_EQ_INT(block_sector_range(bd, UINT64_MAX >> 9, 512, &off), -ERANGE);
	CHECK_EQ_INT(block_sector_range(bd, 1, UINT64_MAX & ~511ull, &off), -ERANGE);
	CHECK_EQ_INT(block_sector_range(bd, 0, 100, &off), -EINVAL);
	CHECK(bd->stats.errors >= 2);
	block_free(bd);
	/* block_free() closed the fd it owned. */
	CHECK(fcntl(fd, F_GETFD) < 0);
}

TEST(read_only)
{
	char path[256];
	struct block_dev *bd = NULL;
	uint8_t buf[512];
	struct iovec v = {buf, sizeof(buf)};
	int fd = tmp_disk("/tmp", path, sizeof(path), 4096);

	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_INT(block_open_path(path, "raw", BLOCK_OPEN_READ_ONLY, &bd), 0);
	if (bd) {
		CHECK(bd->read_only);
		CHECK_EQ_INT(block_pwritev(bd, &v, 1, 0), -EROFS);
		CHECK_EQ_INT(block_write_zeroes(bd, 0, 512), -EROFS);
		CHECK_EQ_INT(block_discard(bd, 0, 512), -EROFS);
		CHECK_EQ_INT(block_preadv(bd, &v, 1, 0), 0);
		CHECK_EQ_INT(bd->stats.wr_ops, 0);
	}
	block_free(bd);
	bd = NULL;
	/* A read-only descriptor cannot back a writable disk. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK_EQ_INT(block_open_fd(fd, "raw", 0, path, &bd), -EBADF);
	CHECK(fcntl(fd, F_GETFD) >= 0); /* still the caller's */
	close(fd);
	unlink(path);
}

TEST(bad_inputs)
{
	struct block_dev *bd = NULL;
	int p[2];

	CHECK_EQ_INT(block_open_path("/nonexistent/disk.img", "raw", 0, &bd), -ENOENT);
	int fd = memfd_create("disk", MFD_CLOEXEC);
	CHECK_EQ_INT(block_open_fd(fd, "qcow3", 0, "x", &bd), -EINVAL);
	close(fd);
	CHECK_EQ_INT(pipe(p), 0);
	CHECK_EQ_INT(block_open_fd(p[0], "raw", BLOCK_OPEN_READ_ONLY, "pipe", &bd), -EINVAL);
	close(p[0]);
	close(p[1]);
	CHECK(bd == NULL);
	block_free(NULL);
}

TEST(flush_reaches_fdatasync)
{
	char path[256];
	struct block_dev *bd = NULL;
	int fd = tmp_disk("/tmp", path, sizeof(path), 4096);

	CHECK(fd >= 0);
	CHECK_EQ_INT(block_open_fd(fd, "raw", 0, path, &bd), 0);
	if (bd) {
		CHECK_EQ_INT(bd->stats.flush_ops, 0);
		CHECK_EQ_INT(block_flush(bd), 0);
		CHECK_EQ_INT(block_flush(bd), 0);
		CHECK_EQ_INT(bd->stats.flush_ops, 2);
	}
	block_free(bd);
	unlink(path);
}

TEST(write_zeroes_and_discard)
{
	struct block_dev *bd = NULL;
	uint8_t buf[8192];
	struct iovec v = {buf, sizeof(buf)};
	int fd = memfd_create("disk", MFD_CLOEXEC);

	CHECK_EQ_INT(ftruncate(fd, 1 * MiB), 0);
	CHECK_EQ_INT(block_open_fd(fd, "raw", 0, "mem", &bd), 0);
	if (!bd)
		return;
	memset(buf, 0x5a, sizeof(buf));
	CHECK_EQ_INT(block_pwritev(bd, &v, 1, 0), 0);
	CHECK_EQ_INT(block_write_zeroes(bd, 1024, 2048), 0);
	CHECK_EQ_INT(block_preadv(bd, &v, 1, 0), 0);
	CHECK_EQ_INT(buf[1023], 0x5a);
	CHECK_EQ_INT(buf[1024], 0);
	CHECK_EQ_INT(buf[3071], 0);
	CHECK_EQ_INT(buf[3072], 0x5a);
	CHECK_EQ_INT(block_discard(bd, 4096, 4096), 0);
	CHECK_EQ_INT(block_preadv(bd, &v, 1, 0), 0);
	CHECK_EQ_INT(buf[4096], 0);
	CHECK_EQ_INT(block_write_zeroes(bd, 1 * MiB - 512, 1024), -ERANGE);
	CHECK_EQ_INT(bd->size, 1 * MiB);
	block_free(bd);
}

TEST(direct_io_misaligned_buffers)
{
	char path[256];
	struct block_dev *bd = NULL;
	int fd = tmp_disk("/var/tmp", path, sizeof(path), 4 * MiB);
	uint8_t *a = NULL, *b = NULL;

	if (fd < 0)
		SKIP("cannot create a file in /var/tmp");
	close(fd);
	/* Hide the error message for file systems without O_DIRECT. */
	log_set_level(LOG_LEVEL_ERROR);
	if (block_open_path(path, "raw", BLOCK_OPEN_DIRECT, &bd) < 0) {
		unlink(path);
		SKIP("file system of /var/tmp has no O_DIRECT");
	}
	a = malloc(3 * MiB + 1);
	b = malloc(3 * MiB + 1);
	fill_random(a, 3 * MiB + 1, 7);
	/* Odd addresses and lengths force the bounce path; the whole request
	 * is still whole sectors, and larger than one bounce buffer. */
	struct iovec w[2] = {{a + 1, 1000}, {a + 1001, 3 * MiB - 1000}};
	struct iovec r[2] = {{b + 1, 3 * MiB - 24}, {b + 1 + 3 * MiB - 24, 24}};
	CHECK_EQ_INT(block_pwritev(bd, w, 2, 512 * 3), 0);
	CHECK_EQ_INT(block_preadv(bd, r, 2, 512 * 3), 0);
	CHECK(memcmp(a + 1, b + 1, 3 * MiB) == 0);
	/* An offset that is not a sector multiple cannot be done directly. */
	CHECK_EQ_INT(block_preadv(bd, r, 1, 100), -EINVAL);
	block_free(bd);
	unlink(path);
	free(a);
	free(b);
}

HARNESS_MAIN
