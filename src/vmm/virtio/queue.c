/* queue: the device side of the split virtqueue (virtio 1.2 §2.7): pop
 * available descriptor chains into host iovecs, push used elements, decide
 * when to interrupt (EVENT_IDX). See queue.h for the trust model. */
#include "vmm/virtio/queue.h"

#include "lib/util.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

/* Offsets inside the rings (§2.7.6, §2.7.8). */
#define AVAIL_FLAGS_OFF 0
#define AVAIL_IDX_OFF 2
#define AVAIL_RING_OFF 4
#define USED_FLAGS_OFF 0
#define USED_IDX_OFF 2
#define USED_RING_OFF 4
#define USED_ELEM_BYTES 8

/* The rings live in guest memory, which the guest's vCPUs change while we
 * read it. Every 16-bit field is read or written with one atomic access so a
 * value is never torn; ordering comes from the explicit fences and
 * acquire/release operations at the points §2.7.13 names. */
static inline uint16_t virtq_load16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static inline void virtq_store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELAXED);
}

uint64_t virtq_desc_bytes(uint16_t size)
{
	return 16ull * size;
}

uint64_t virtq_avail_bytes(uint16_t size)
{
	/* flags, idx, ring[size], used_event */
	return 6ull + 2ull * size;
}

uint64_t virtq_used_bytes(uint16_t size)
{
	/* flags, idx, ring[size] of {id, len}, avail_event */
	return 6ull + 8ull * size;
}

struct virtq_rings {
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
};

static int virtq_map(const struct virtq *vq, const struct guest_mem *mem, struct virtq_rings *r)
{
	uint16_t size = vq->size;

	if (size == 0 || !IS_POWER_OF_2(size) || size > VIRTQ_MAX_SIZE ||
	    (vq->max_size && size > vq->max_size))
		return -EINVAL;
	/* §2.7 "Virtqueue Part Alignment": 16, 2 and 4 bytes. Also what makes
	 * the atomic 16-bit accesses above naturally aligned. */
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
		return -EINVAL;
	r->desc = guest_mem_ptr(mem, vq->desc_gpa, virtq_desc_bytes(size));
	r->avail = guest_mem_ptr(mem, vq->avail_gpa, virtq_avail_bytes(size));
	r->used = guest_mem_ptr(mem, vq->used_gpa, virtq_used_bytes(size));
	if (!r->desc || !r->avail || !r->used)
		return -EFAULT;
	return 0;
}

int virtq_check(const struct virtq *vq, const struct guest_mem *mem)
{
	struct virtq_rings r;

	return virtq_map(vq, mem, &r);
}

void virtq_reset(struct virtq *vq)
{
	vq->enabled = false;
	vq->size = vq->max_size;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->last_avail_idx = 0;
	vq->used_idx = 0;
	vq->event_idx = false;
	vq->indirect = false;
	vq->signalled_used = 0;
	vq->signalled_used_valid = false;
	vq->broken = false;
}

static void virtq_desc_read(const uint8_t *table, uint32_t i, struct virtq_desc *d)
{
	/* One copy, then only the copy is looked at: the guest cannot change a
	 * field between our check and our use of it. */
	memcpy(d, table + (size_t)i * sizeof(*d), sizeof(*d));
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

/* Append one buffer to elem, enforcing the readable-then-writable order
 * (§2.7.4.2: a driver places device-writable buffers after device-readable
 * ones) and the 32-bit length bound (§2.7.5: a chain is at most 2^32 bytes
 * and used.len is 32 bits). */
static int virtq_elem_add(struct virtq_elem *elem, const struct guest_mem *mem,
			  const struct virtq_desc *d, bool *seen_write)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;

	if (!write && *seen_write)
		return -EINVAL;
	if (write)
		*seen_write = true;
	/* Zero-length buffers carry nothing; they still count against the
	 * chain length and the ordering rule above, but take no iov slot and
	 * their address is never dereferenced. */
	if (d->len == 0)
		return 0;
	uint32_t *total = write ? &elem->in_len : &elem->out_len;
	if (d->len > UINT32_MAX - *total)
		return -E2BIG;
	void *p = guest_mem_ptr(mem, d->addr, d->len);
	if (!p)
		return -EFAULT;
	unsigned n = elem->out_num + elem->in_num;
	if (n >= VIRTQ_ELEM_MAX_SEGS)
		return -ELOOP;
	elem->iov[n].iov_base = p;
	elem->iov[n].iov_len = d->len;
	if (write)
		elem->in_num++;
	else
		elem->out_num++;
	*total += d->len;
	return 0;
}

static int virtq_walk(const struct virtq *vq, const struct guest_mem *mem,
		      const uint8_t *desc, uint16_t head, struct virtq_elem *elem)
{
	const uint8_t *table = desc;
	uint32_t table_n = vq->size;
	uint32_t idx = head;
	unsigned walked = 0;       /* every descriptor looked at, both tables */
	unsigned walked_table = 0; /* descriptors in the current table */
	bool indirect = false, seen_write = false;
	struct virtq_desc d;
	int r;

	elem->head = head;
	elem->out_num = elem->in_num = 0;
	elem->out_len = elem->in_len = 0;
	for (;;) {
		/* A chain can visit each descriptor of its table at most once,
		 * so more steps than entries means a loop (§2.7.5.2: the
		 * table size bounds the chain length). */
		if (++walked > VIRTQ_ELEM_MAX_SEGS || ++walked_table > table_n)
			return -ELOOP;
		virtq_desc_read(table, idx, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* §2.7.5.3.1: only with the feature, never inside an
			 * indirect table, never together with NEXT (so it ends
			 * the direct chain); the table is a whole number of
			 * descriptors. The WRITE flag on it is ignored
			 * (§2.7.5.3.2). */
			if (!vq->indirect || indirect || (d.flags & VIRTQ_DESC_F_NEXT))
				return -EINVAL;
			if (d.len == 0 || d.len % sizeof(struct virtq_desc) ||
			    d.len / sizeof(struct virtq_desc) > VIRTQ_INDIRECT_MAX)
				return -EINVAL;
			table = guest_mem_ptr(mem, d.addr, d.len);
			if (!table)
				return -EFAULT;
			table_n = d.len / sizeof(struct virtq_desc);
			idx = 0;
			walked_table = 0;
			indirect = true;
			continue;
		}
		r = virtq_elem_add(elem, mem, &d, &seen_write);
		if (r < 0)
			return r;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= table_n)
			return -EINVAL;
		idx = d.next;
	}
}

int virtq_pop(struct virtq *vq, const struct guest_mem *mem, struct virtq_elem *elem)
{
	struct virtq_rings rings;
	uint16_t avail_idx, head;
	int r;

	if (vq->broken)
		return -EIO;
	if (!vq->enabled)
		return -ENOENT;
	r = virtq_map(vq, mem, &rings);
	if (r < 0)
		goto out;

	/* Acquire: the ring entries and descriptors the driver wrote before
	 * bumping idx are visible once we see the new idx (§2.7.13.3). */
	avail_idx = le16toh(__atomic_load_n((uint16_t *)(rings.avail + AVAIL_IDX_OFF),
					    __ATOMIC_ACQUIRE));
	if (avail_idx == vq->last_avail_idx && vq->event_idx) {
		/* Ask for a notification at the next buffer, then look again
		 * in case one arrived before the driver could see our
		 * avail_event (§2.7.10); the full fence orders the store
		 * before the second load. */
		virtq_store16(rings.used + USED_RING_OFF + USED_ELEM_BYTES * vq->size,
			      vq->last_avail_idx);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = le16toh(__atomic_load_n((uint16_t *)(rings.avail + AVAIL_IDX_OFF),
						    __ATOMIC_ACQUIRE));
	}
	if (avail_idx == vq->last_avail_idx) {
		r = -ENOENT;
		goto out;
	}
	/* The driver can have at most `size` chains outstanding; a larger
	 * step means a corrupted or hostile idx (§2.7.6). */
	if ((uint16_t)(avail_idx - vq->last_avail_idx) > vq->size) {
		r = -EINVAL;
		goto out;
	}
	head = virtq_load16(rings.avail + AVAIL_RING_OFF + 2u * (vq->last_avail_idx % vq->size));
	if (head >= vq->size) {
		r = -EINVAL;
		goto out;
	}
	r = virtq_walk(vq, mem, rings.desc, head, elem);
	if (r < 0)
		goto out;
	vq->last_avail_idx++;
	if (vq->event_idx)
		virtq_store16(rings.used + USED_RING_OFF + USED_ELEM_BYTES * vq->size,
			      vq->last_avail_idx);
out:
	if (r < 0 && r != -ENOENT)
		vq->broken = true;
	return r;
}

int virtq_push(struct virtq *vq, const struct guest_mem *mem, uint16_t head, uint32_t len)
{
	struct virtq_rings rings;
	int r;

	if (vq->broken)
		return -EIO;
	r = virtq_map(vq, mem, &rings);
	if (r < 0) {
		vq->broken = true;
		return r;
	}
	uint8_t *e = rings.used + USED_RING_OFF + USED_ELEM_BYTES * (vq->used_idx % vq->size);
	uint32_t id_le = htole32(head), len_le = htole32(len);
	memcpy(e, &id_le, 4);
	memcpy(e + 4, &len_le, 4);
	vq->used_idx++;
	/* Release: the buffer contents and the used element are visible
	 * before the driver can see the new idx (§2.7.13.3 / §2.7.8). */
	__atomic_store_n((uint16_t *)(rings.used + USED_IDX_OFF), htole16(vq->used_idx),
			 __ATOMIC_RELEASE);
	return 0;
}

bool virtq_should_notify(struct virtq *vq, const struct guest_mem *mem)
{
	struct virtq_rings rings;

	/* When in doubt, interrupt: a spurious interrupt is harmless, a lost
	 * one hangs the driver. */
	if (virtq_map(vq, mem, &rings) < 0)
		return true;
	/* The used idx store must be visible before we read the driver's
	 * suppression fields, or both sides can decide not to act
	 * (§2.7.10). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(virtq_load16(rings.avail + AVAIL_FLAGS_OFF) & VIRTQ_AVAIL_F_NO_INTERRUPT);

	uint16_t old = vq->signalled_used, new_idx = vq->used_idx;
	bool valid = vq->signalled_used_valid;
	vq->signalled_used = new_idx;
	vq->signalled_used_valid = true;
	if (!valid)
		return true;
	uint16_t used_event = virtq_load16(rings.avail + AVAIL_RING_OFF + 2u * vq->size);
	/* §2.7.10: interrupt when used idx moved past used_event since the
	 * last interrupt, computed modulo 2^16. */
	return (uint16_t)(new_idx - used_event - 1) < (uint16_t)(new_idx - old);
}

int virtq_activate_all(struct virtio_dev *dev)
{
	for (unsigned q = 0; q < dev->num_queues; q++) {
		struct virtq *vq = &dev->queues[q];
		vq->event_idx = virtio_has_feature(dev, VIRTIO_F_EVENT_IDX);
		vq->indirect = virtio_has_feature(dev, VIRTIO_F_INDIRECT_DESC);
		if (vq->enabled) {
			int r = virtq_check(vq, dev->mem);
			if (r < 0)
				return r;
		}
	}
	return 0;
}
