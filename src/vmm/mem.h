/* mem: guest physical memory as seen by the monitor. Every guest address the
 * monitor touches goes through guest_mem_ptr(), the one bounds-checked
 * translation (DESIGN.md, "Processes and trust"). Owned by the vmm core. */
#ifndef VESSEL_VMM_MEM_H
#define VESSEL_VMM_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 4

struct guest_mem_region {
	uint64_t gpa;   /* guest physical start */
	uint64_t size;  /* bytes */
	uint8_t *hva;   /* host mapping */
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned nr_regions;
};

/* Host pointer for guest range [gpa, gpa + len), or NULL when any byte of it
 * is outside guest RAM, the range wraps, or it straddles two regions.
 * len == 0 is valid only for an address inside a region. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Add a region; fails with -EINVAL on overlap or when the table is full. */
int guest_mem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t size, uint8_t *hva);

#endif
