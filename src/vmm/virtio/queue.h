/* queue: the device side of a split virtqueue (virtio 1.2 §2.7).
 *
 * Everything in the rings is written by the guest and is untrusted: indices,
 * descriptor addresses, lengths, flags and chain links are each read once into
 * host memory, checked, and translated through guest_mem_ptr() only. A ring
 * the driver broke makes virtq_pop() return a negative errno other than
 * -ENOENT and marks the queue broken; the device model then calls
 * dev->set_needs_reset() (§2.1.2). Nothing here aborts or allocates.
 *
 * Locking: a virtq has no lock of its own. Each device model serialises all
 * calls for one queue (pop, push, should_notify) under its own mutex. */
#ifndef VESSEL_VMM_VIRTIO_QUEUE_H
#define VESSEL_VMM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/mem.h"
#include "vmm/virtio/virtio.h"

/* Largest queue size any vessel device offers. Also the most buffers one
 * chain may describe, counting the descriptors of an indirect table. */
#define VIRTQ_MAX_SIZE 1024u
#define VIRTQ_ELEM_MAX_SEGS VIRTQ_MAX_SIZE
/* An indirect table may hold at most this many descriptors (16 bytes each). */
#define VIRTQ_INDIRECT_MAX VIRTQ_MAX_SIZE

/* §2.7.5 descriptor flags */
#define VIRTQ_DESC_F_NEXT 1u
#define VIRTQ_DESC_F_WRITE 2u
#define VIRTQ_DESC_F_INDIRECT 4u
/* §2.7.6 / §2.7.8 ring flags */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY 1u

/* §2.7.5 struct virtq_desc as laid out in guest memory (little-endian). */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc is 16 bytes (§2.7.5)");

/* One popped descriptor chain: the device-readable buffers first
 * (iov[0..out_num)), then the device-writable ones
 * (iov[out_num..out_num + in_num)). Zero-length buffers are left out. The
 * iov entries point into guest memory, so their content can still change
 * under the device: copy a header before checking it. */
struct virtq_elem {
	uint16_t head;       /* descriptor index to hand back in virtq_push() */
	unsigned out_num;
	unsigned in_num;
	uint32_t out_len;    /* bytes readable by the device */
	uint32_t in_len;     /* bytes writable by the device */
	struct iovec iov[VIRTQ_ELEM_MAX_SEGS];
};

static inline struct iovec *virtq_elem_out(struct virtq_elem *e)
{
	return e->iov;
}

static inline struct iovec *virtq_elem_in(struct virtq_elem *e)
{
	return e->iov + e->out_num;
}

/* Bytes of guest memory each part of a queue of `size` entries takes
 * (§2.7: descriptor table, available ring, used ring incl. event fields). */
uint64_t virtq_desc_bytes(uint16_t size);
uint64_t virtq_avail_bytes(uint16_t size);
uint64_t virtq_used_bytes(uint16_t size);

/* Check that the queue's size and ring addresses are usable: size a power of
 * 2 within max_size and VIRTQ_MAX_SIZE, rings aligned (§2.7, table "Virtqueue
 * Part Alignment") and inside guest RAM. Returns 0 or -EINVAL/-EFAULT. */
int virtq_check(const struct virtq *vq, const struct guest_mem *mem);

/* At DRIVER_OK: apply the negotiated ring features (EVENT_IDX, INDIRECT_DESC)
 * to each of dev's queues and virtq_check() the enabled ones. Returns 0 or
 * the first queue's error (the device then needs reset). */
int virtq_activate_all(struct virtio_dev *dev);

/* Forget runtime state (indices, event-idx bookkeeping, broken) after a
 * device or queue reset; keeps max_size. */
void virtq_reset(struct virtq *vq);

/* Take the next available chain. Returns 0 and fills *elem; -ENOENT when the
 * driver made nothing new available (not an error); any other negative errno
 * when the driver broke the ring, after which the queue is broken:
 *   -EINVAL  avail idx moved more than size, head/next index >= size,
 *            readable after writable buffer, indirect misuse
 *   -EFAULT  ring or buffer outside guest RAM (or wrapping)
 *   -ELOOP   chain longer than the queue size / the indirect table /
 *            VIRTQ_ELEM_MAX_SEGS (this is how loops are caught)
 *   -E2BIG   more than UINT32_MAX bytes in either direction
 *   -EIO     the queue was already broken
 * With EVENT_IDX it also publishes avail_event (§2.7.10) so the driver
 * notifies for the next buffer. */
int virtq_pop(struct virtq *vq, const struct guest_mem *mem, struct virtq_elem *elem);

/* Return chain `head` to the driver with `len` bytes written into its
 * writable buffers, and publish the new used idx (§2.7.8). Returns 0, or
 * -EFAULT / -EIO when the used ring is unusable. */
int virtq_push(struct virtq *vq, const struct guest_mem *mem, uint16_t head, uint32_t len);

/* After one or more virtq_push(): should the device interrupt the driver?
 * Honours VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX
 * (§2.7.7, §2.7.10). Updates the event-idx bookkeeping, so call it once per
 * batch and send the interrupt when it returns true. */
bool virtq_should_notify(struct virtq *vq, const struct guest_mem *mem);

#endif
