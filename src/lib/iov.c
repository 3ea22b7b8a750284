/* iov: copy into, out of and slice scatter-gather lists. */
#include "lib/iov.h"

#include <errno.h>
#include <string.h>

size_t iov_size(const struct iovec *iov, unsigned cnt)
{
	size_t total = 0;

	for (unsigned i = 0; i < cnt; i++) {
		if (iov[i].iov_len > SIZE_MAX - total)
			return SIZE_MAX;
		total += iov[i].iov_len;
	}
	return total;
}

/* Walk the list and call op for each piece of [off, off + len). op is a
 * memcpy-like step; keeping one walker keeps the offset arithmetic in one
 * place. */
enum iov_op { IOV_OP_TO_BUF, IOV_OP_FROM_BUF, IOV_OP_MEMSET };

static size_t iov_walk(const struct iovec *iov, unsigned cnt, size_t off, void *buf,
		       size_t len, enum iov_op op, int c)
{
	size_t done = 0;

	for (unsigned i = 0; i < cnt && done < len; i++) {
		size_t seg = iov[i].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		size_t n = seg - off;
		if (n > len - done)
			n = len - done;
		uint8_t *p = (uint8_t *)iov[i].iov_base + off;
		switch (op) {
		case IOV_OP_TO_BUF:
			memcpy((uint8_t *)buf + done, p, n);
			break;
		case IOV_OP_FROM_BUF:
			memcpy(p, (const uint8_t *)buf + done, n);
			break;
		case IOV_OP_MEMSET:
			memset(p, c, n);
			break;
		}
		done += n;
		off = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned cnt, size_t off, void *buf, size_t len)
{
	return iov_walk(iov, cnt, off, buf, len, IOV_OP_TO_BUF, 0);
}

size_t iov_from_buf(const struct iovec *iov, unsigned cnt, size_t off, const void *buf, size_t len)
{
	return iov_walk(iov, cnt, off, (void *)buf, len, IOV_OP_FROM_BUF, 0);
}

size_t iov_memset(const struct iovec *iov, unsigned cnt, size_t off, int c, size_t len)
{
	return iov_walk(iov, cnt, off, NULL, len, IOV_OP_MEMSET, c);
}

int iov_slice(const struct iovec *src, unsigned src_cnt, size_t off, size_t len,
	      struct iovec *dst, unsigned dst_max, unsigned *dst_cnt)
{
	unsigned n = 0;
	size_t left = len;

	for (unsigned i = 0; i < src_cnt && left > 0; i++) {
		size_t seg = src[i].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		size_t take = seg - off;
		if (take > left)
			take = left;
		if (n >= dst_max)
			return -E2BIG;
		dst[n].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[n].iov_len = take;
		n++;
		left -= take;
		off = 0;
	}
	if (left > 0)
		return -ERANGE;
	*dst_cnt = n;
	return 0;
}
