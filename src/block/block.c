/* block: driver lookup, open/close and the bounds-checked entry points that
 * every driver sits behind. */
#include "block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/iov.h"
#include "lib/log.h"
#include "lib/util.h"

static const struct block_driver *const block_drivers[] = {
	&block_driver_raw,
	&block_driver_qcow2,
};

const struct block_driver *block_driver_find(const char *format)
{
	for (size_t i = 0; i < ARRAY_SIZE(block_drivers); i++)
		if (format && strcmp(block_drivers[i]->name, format) == 0)
			return block_drivers[i];
	return NULL;
}

int block_open_fd(int fd, const char *format, unsigned flags, const char *name,
		  struct block_dev **out)
{
	const struct block_driver *drv = block_driver_find(format);

	if (!drv) {
		log_error("disk '%s': unknown format '%s'; use 'raw' or 'qcow2'", name ? name : "?",
			  format ? format : "(none)");
		return -EINVAL;
	}
	return block_open_driver(drv, fd, flags, name, out);
}

int block_open_driver(const struct block_driver *drv, int fd, unsigned flags, const char *name,
		      struct block_dev **out)
{
	struct block_dev *bd = NULL;
	int r, fl;

	fl = fcntl(fd, F_GETFL);
	if (fl < 0) {
		r = -errno;
		log_error("disk '%s': file descriptor %d is not open", name ? name : "?", fd);
		goto out;
	}
	if (!(flags & BLOCK_OPEN_READ_ONLY) && (fl & O_ACCMODE) == O_RDONLY) {
		log_error("disk '%s': opened read-only but attached writable; "
			  "attach it read-only or pass a writable descriptor", name ? name : "?");
		r = -EBADF;
		goto out;
	}
	bd = calloc(1, sizeof(*bd));
	if (!bd) {
		r = -ENOMEM;
		goto out;
	}
	bd->name = strdup(name ? name : "disk");
	if (!bd->name) {
		r = -ENOMEM;
		goto out;
	}
	bd->drv = drv;
	bd->read_only = flags & BLOCK_OPEN_READ_ONLY;
	r = drv->open(bd, fd, flags);
	if (r < 0)
		goto out;
	*out = bd;
	bd = NULL;
out:
	if (bd) {
		free(bd->name);
		free(bd);
	}
	return r;
}

int block_open_path(const char *path, const char *format, unsigned flags, struct block_dev **out)
{
	int oflags = O_CLOEXEC | ((flags & BLOCK_OPEN_READ_ONLY) ? O_RDONLY : O_RDWR);
	int fd, r;

	if (flags & BLOCK_OPEN_DIRECT)
		oflags |= O_DIRECT;
	fd = open(path, oflags);
	if (fd < 0) {
		r = -errno;
		log_error("disk '%s': cannot open: %s", path, strerror(-r));
		goto out;
	}
	r = block_open_fd(fd, format, flags, path, out);
	if (r < 0)
		close(fd);
out:
	return r;
}

void block_free(struct block_dev *bd)
{
	if (!bd)
		return;
	bd->drv->close(bd);
	free(bd->name);
	free(bd);
}

uint64_t block_sectors(const struct block_dev *bd)
{
	return bd->size >> BLOCK_SECTOR_SHIFT;
}

int block_sector_range(const struct block_dev *bd, uint64_t sector, uint64_t bytes,
		       uint64_t *offset)
{
	uint64_t nsect = bytes >> BLOCK_SECTOR_SHIFT;
	uint64_t total = block_sectors(bd);

	if (bytes & (BLOCK_SECTOR_SIZE - 1))
		return -EINVAL;
	/* Written so nothing can overflow: sector alone may be any 64-bit
	 * value a guest chose. */
	if (sector > total || nsect > total - sector)
		return -ERANGE;
	*offset = sector << BLOCK_SECTOR_SHIFT;
	return 0;
}

static int block_check_range(const struct block_dev *bd, uint64_t offset, uint64_t len)
{
	if (offset > bd->size || len > bd->size - offset)
		return -ERANGE;
	return 0;
}

static void block_count(uint64_t *ctr, uint64_t v)
{
	__atomic_add_fetch(ctr, v, __ATOMIC_RELAXED);
}

int block_preadv(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset)
{
	size_t len = iov_size(iov, cnt);
	int r = block_check_range(bd, offset, len);

	if (r == 0)
		r = bd->drv->preadv(bd, iov, cnt, offset);
	if (r == 0) {
		block_count(&bd->stats.rd_ops, 1);
		block_count(&bd->stats.rd_bytes, len);
	} else {
		block_count(&bd->stats.errors, 1);
	}
	return r;
}

int block_pwritev(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset)
{
	size_t len = iov_size(iov, cnt);
	int r = bd->read_only ? -EROFS : block_check_range(bd, offset, len);

	if (r == 0)
		r = bd->drv->pwritev(bd, iov, cnt, offset);
	if (r == 0) {
		block_count(&bd->stats.wr_ops, 1);
		block_count(&bd->stats.wr_bytes, len);
	} else {
		block_count(&bd->stats.errors, 1);
	}
	return r;
}

int block_flush(struct block_dev *bd)
{
	int r;

	/* Nothing to make durable on a disk that is never written. */
	if (bd->read_only)
		return 0;
	r = bd->drv->flush(bd);
	if (r == 0)
		block_count(&bd->stats.flush_ops, 1);
	else
		block_count(&bd->stats.errors, 1);
	return r;
}

int block_discard(struct block_dev *bd, uint64_t offset, uint64_t len)
{
	int r = bd->read_only ? -EROFS : block_check_range(bd, offset, len);

	if (r == 0)
		r = bd->drv->discard ? bd->drv->discard(bd, offset, len) : -EOPNOTSUPP;
	if (r == 0)
		block_count(&bd->stats.discard_ops, 1);
	return r;
}

int block_write_zeroes(struct block_dev *bd, uint64_t offset, uint64_t len)
{
	/* 64 KiB of zeroes, shared and never written (pwritev only reads it). */
	static const uint8_t zeroes[64 * 1024];
	int r = bd->read_only ? -EROFS : block_check_range(bd, offset, len);

	if (r < 0)
		return r;
	if (bd->drv->write_zeroes) {
		r = bd->drv->write_zeroes(bd, offset, len);
		if (r != -EOPNOTSUPP)
			return r;
	}
	while (len > 0) {
		struct iovec v = {(void *)zeroes, MIN(len, sizeof(zeroes))};
		r = bd->drv->pwritev(bd, &v, 1, offset);
		if (r < 0)
			return r;
		offset += v.iov_len;
		len -= v.iov_len;
	}
	return 0;
}
