/* virtq_test: a fake guest for virtqueue tests and fuzzers. It owns a
 * malloc'd "guest RAM" mapped at TQ_RAM_GPA, lays a split virtqueue out in it
 * the way a driver would (virtio 1.2 §2.7) and offers helpers to write
 * descriptors, make chains available and read the used ring back. Only for
 * tests: nothing here is defensive about its own arguments. */
#ifndef VESSEL_TESTS_VIRTQ_TEST_H
#define VESSEL_TESTS_VIRTQ_TEST_H

#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/mem.h"
#include "vmm/virtio/queue.h"

#define TQ_RAM_GPA 0x100000ull     /* RAM starts at 1 MiB: lower addresses are outside */
#define TQ_RAM_SIZE (1024 * 1024)  /* 1 MiB of guest RAM */
#define TQ_DATA_GPA (TQ_RAM_GPA + 0x40000) /* data buffers live from here on */

struct tq {
	uint8_t *ram;
	struct guest_mem mem;
	struct virtq vq;
	uint16_t avail_idx;   /* driver's next avail idx */
};

static inline void *tq_ptr(struct tq *t, uint64_t gpa)
{
	return t->ram + (gpa - TQ_RAM_GPA);
}

/* Lay out a queue of `size` entries: desc table at the start of RAM, then
 * the avail ring, then the used ring (4-byte aligned). */
static inline int tq_init(struct tq *t, uint16_t size)
{
	memset(t, 0, sizeof(*t));
	t->ram = calloc(1, TQ_RAM_SIZE);
	if (!t->ram)
		return -1;
	if (guest_mem_add_region(&t->mem, TQ_RAM_GPA, TQ_RAM_SIZE, t->ram) < 0)
		return -1;
	t->vq.max_size = VIRTQ_MAX_SIZE;
	t->vq.size = size;
	t->vq.enabled = true;
	t->vq.desc_gpa = TQ_RAM_GPA;
	t->vq.avail_gpa = t->vq.desc_gpa + 16ull * size;
	t->vq.used_gpa = (t->vq.avail_gpa + 6 + 2ull * size + 3) & ~3ull;
	return 0;
}

static inline void tq_fini(struct tq *t)
{
	free(t->ram);
	t->ram = NULL;
}

static inline void tq_desc_at(uint8_t *table, uint16_t i, uint64_t addr, uint32_t len,
			      uint16_t flags, uint16_t next)
{
	struct virtq_desc d = {htole64(addr), htole32(len), htole16(flags), htole16(next)};
	memcpy(table + 16u * i, &d, sizeof(d));
}

static inline void tq_desc(struct tq *t, uint16_t i, uint64_t addr, uint32_t len,
			   uint16_t flags, uint16_t next)
{
	tq_desc_at(tq_ptr(t, t->vq.desc_gpa), i, addr, len, flags, next);
}

static inline void tq_set16(struct tq *t, uint64_t gpa, uint16_t v)
{
	uint16_t le = htole16(v);
	memcpy(tq_ptr(t, gpa), &le, 2);
}

static inline uint16_t tq_get16(struct tq *t, uint64_t gpa)
{
	uint16_t le;
	memcpy(&le, tq_ptr(t, gpa), 2);
	return le16toh(le);
}

static inline uint32_t tq_get32(struct tq *t, uint64_t gpa)
{
	uint32_t le;
	memcpy(&le, tq_ptr(t, gpa), 4);
	return le32toh(le);
}

/* Make the chain starting at head available (§2.7.13): ring entry first,
 * then idx with release ordering, as a driver's write barrier does (device
 * threads in the tests read it with acquire). */
static inline void tq_avail(struct tq *t, uint16_t head)
{
	tq_set16(t, t->vq.avail_gpa + 4 + 2u * (t->avail_idx % t->vq.size), head);
	t->avail_idx++;
	__atomic_store_n((uint16_t *)tq_ptr(t, t->vq.avail_gpa + 2), htole16(t->avail_idx),
			 __ATOMIC_RELEASE);
}

static inline void tq_set_avail_idx(struct tq *t, uint16_t idx)
{
	t->avail_idx = idx;
	tq_set16(t, t->vq.avail_gpa + 2, idx);
}

static inline uint16_t tq_used_idx(struct tq *t)
{
	return tq_get16(t, t->vq.used_gpa + 2);
}

static inline void tq_used_elem(struct tq *t, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint64_t e = t->vq.used_gpa + 4 + 8u * (i % t->vq.size);
	*id = tq_get32(t, e);
	*len = tq_get32(t, e + 4);
}

#endif
