/* raw: the raw image driver. The disk is the file (or block device) byte for
 * byte; I/O is preadv/pwritev on the fd, flush is fdatasync. With O_DIRECT
 * on the fd, requests whose buffers are not aligned go through a bounded,
 * aligned bounce buffer, since guest buffers can sit anywhere. */
#include "block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/iov.h"
#include "lib/log.h"
#include "lib/util.h"

/* The largest bounce buffer one O_DIRECT request uses; bigger requests are
 * split into pieces of this size. */
#define RAW_BOUNCE_MAX (1024 * 1024)

struct raw_state {
	int fd;
	bool direct;
	bool regular;      /* regular file (fallocate works), not a block device */
	unsigned align;    /* O_DIRECT alignment of offset, length and memory */
};

static int raw_open(struct block_dev *bd, int fd, unsigned flags)
{
	struct raw_state *s = NULL;
	struct stat st;
	int r, fl;

	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		r = -ENOMEM;
		goto out;
	}
	s->fd = fd;
	s->align = BLOCK_SECTOR_SIZE;
	if (S_ISREG(st.st_mode)) {
		s->regular = true;
		bd->size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		uint64_t sz;
		int ssz;
		if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
			r = -errno;
			goto out;
		}
		bd->size = sz;
		if (ioctl(fd, BLKSSZGET, &ssz) == 0 && ssz > 0 && IS_POWER_OF_2((unsigned)ssz))
			s->align = (unsigned)ssz;
	} else {
		log_error("disk '%s': not a regular file or block device; "
			  "raw disks must be one of those", bd->name);
		r = -EINVAL;
		goto out;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0) {
		r = -errno;
		goto out;
	}
	if ((flags & BLOCK_OPEN_DIRECT) && !(fl & O_DIRECT)) {
		if (fcntl(fd, F_SETFL, fl | O_DIRECT) < 0) {
			r = -errno;
			log_error("disk '%s': the file system does not support O_DIRECT; "
				  "attach it without direct I/O", bd->name);
			goto out;
		}
		fl |= O_DIRECT;
	}
	s->direct = fl & O_DIRECT;
	bd->opaque = s;
	s = NULL;
	r = 0;
out:
	free(s);
	return r;
}

static void raw_close(struct block_dev *bd)
{
	struct raw_state *s = bd->opaque;

	if (!s)
		return;
	close(s->fd);
	free(s);
	bd->opaque = NULL;
}

/* One transfer of a whole list, retrying short counts and EINTR. A short
 * read at end of file (the file shrank under us) reads as zeroes. */
static int raw_rw_plain(int fd, const struct iovec *iov, unsigned cnt, uint64_t offset, bool write)
{
	unsigned i = 0;
	size_t skip = 0; /* bytes of iov[i] already done */

	while (i < cnt) {
		if (iov[i].iov_len == skip) {
			i++;
			skip = 0;
			continue;
		}
		ssize_t n;
		if (skip == 0 && cnt - i <= IOV_MAX) {
			n = write ? pwritev(fd, iov + i, (int)(cnt - i), (off_t)offset)
				  : preadv(fd, iov + i, (int)(cnt - i), (off_t)offset);
		} else {
			uint8_t *p = (uint8_t *)iov[i].iov_base + skip;
			size_t len = iov[i].iov_len - skip;
			n = write ? pwrite(fd, p, len, (off_t)offset) : pread(fd, p, len, (off_t)offset);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			if (write)
				return -EIO;
			iov_memset(iov + i, cnt - i, skip, 0, SIZE_MAX);
			return 0;
		}
		offset += (uint64_t)n;
		size_t left = (size_t)n;
		while (left > 0 && i < cnt) {
			size_t room = iov[i].iov_len - skip;
			if (left < room) {
				skip += left;
				left = 0;
			} else {
				left -= room;
				i++;
				skip = 0;
			}
		}
	}
	return 0;
}

static bool raw_aligned(const struct raw_state *s, const struct iovec *iov, unsigned cnt,
			uint64_t offset)
{
	if (offset % s->align)
		return false;
	for (unsigned i = 0; i < cnt; i++)
		if ((uintptr_t)iov[i].iov_base % s->align || iov[i].iov_len % s->align)
			return false;
	return true;
}

/* O_DIRECT with misaligned guest buffers: copy through an aligned buffer of
 * at most RAW_BOUNCE_MAX bytes. Offset and total length must still be
 * aligned, which virtio-blk guarantees (whole 512-byte sectors) when align
 * is 512. */
static int raw_rw_bounce(struct raw_state *s, const struct iovec *iov, unsigned cnt,
			 uint64_t offset, bool write)
{
	size_t total = iov_size(iov, cnt), done = 0;
	size_t bsize = MIN(ALIGN_UP(total, (size_t)s->align), (size_t)RAW_BOUNCE_MAX);
	void *buf = NULL;
	int r = 0;

	if (offset % s->align || total % s->align)
		return -EINVAL;
	if (posix_memalign(&buf, MAX(s->align, 4096u), bsize) != 0)
		return -ENOMEM;
	while (done < total) {
		size_t n = MIN(bsize, total - done);
		struct iovec b = {buf, n};
		if (write)
			iov_to_buf(iov, cnt, done, buf, n);
		r = raw_rw_plain(s->fd, &b, 1, offset + done, write);
		if (r < 0)
			goto out;
		if (!write)
			iov_from_buf(iov, cnt, done, buf, n);
		done += n;
	}
out:
	free(buf);
	return r;
}

static int raw_rw(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset,
		  bool write)
{
	struct raw_state *s = bd->opaque;

	if (s->direct && !raw_aligned(s, iov, cnt, offset))
		return raw_rw_bounce(s, iov, cnt, offset, write);
	return raw_rw_plain(s->fd, iov, cnt, offset, write);
}

static int raw_preadv(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset)
{
	return raw_rw(bd, iov, cnt, offset, false);
}

static int raw_pwritev(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset)
{
	return raw_rw(bd, iov, cnt, offset, true);
}

static int raw_flush(struct block_dev *bd)
{
	struct raw_state *s = bd->opaque;

	while (fdatasync(s->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int raw_fallocate(struct raw_state *s, int mode, uint64_t offset, uint64_t len)
{
	if (!s->regular)
		return -EOPNOTSUPP;
	if (fallocate(s->fd, mode | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len) < 0)
		return errno == ENOSYS ? -EOPNOTSUPP : -errno;
	return 0;
}

static int raw_discard(struct block_dev *bd, uint64_t offset, uint64_t len)
{
	return raw_fallocate(bd->opaque, FALLOC_FL_PUNCH_HOLE, offset, len);
}

static int raw_write_zeroes(struct block_dev *bd, uint64_t offset, uint64_t len)
{
	int r = raw_fallocate(bd->opaque, FALLOC_FL_ZERO_RANGE, offset, len);

	/* tmpfs and some others only know how to punch holes, which read
	 * back as zeroes just the same. */
	if (r == -EOPNOTSUPP)
		r = raw_fallocate(bd->opaque, FALLOC_FL_PUNCH_HOLE, offset, len);
	return r;
}

const struct block_driver block_driver_raw = {
	.name = "raw",
	.open = raw_open,
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.close = raw_close,
};
