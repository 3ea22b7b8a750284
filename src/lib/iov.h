/* iov: helpers for scatter-gather lists (struct iovec) as the virtio device
 * models see them: a request's bytes spread over guest buffers in any layout
 * (virtio 1.2 §2.6.4 "Message Framing": a device must not assume where one
 * field ends and the next buffer begins). Nothing here allocates. */
#ifndef VESSEL_LIB_IOV_H
#define VESSEL_LIB_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Total bytes in iov[0..cnt). Saturates at SIZE_MAX. */
size_t iov_size(const struct iovec *iov, unsigned cnt);

/* Copy up to len bytes starting at byte offset off of the list into buf.
 * Returns the number of bytes copied (less than len when the list is short). */
size_t iov_to_buf(const struct iovec *iov, unsigned cnt, size_t off, void *buf, size_t len);

/* Copy up to len bytes from buf into the list at byte offset off. Returns the
 * number of bytes copied. */
size_t iov_from_buf(const struct iovec *iov, unsigned cnt, size_t off, const void *buf, size_t len);

/* Fill len bytes at byte offset off with zeroes; returns bytes written. */
size_t iov_memset(const struct iovec *iov, unsigned cnt, size_t off, int c, size_t len);

/* Describe bytes [off, off + len) of src as a new list in dst (at most
 * dst_max entries, pointing into the same memory). Returns 0 and the entry
 * count in *dst_cnt, -ERANGE when src holds fewer than off + len bytes, or
 * -E2BIG when dst_max entries are not enough. */
int iov_slice(const struct iovec *src, unsigned src_cnt, size_t off, size_t len,
	      struct iovec *dst, unsigned dst_max, unsigned *dst_cnt);

#endif
