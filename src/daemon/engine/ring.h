/* ring: a byte ring buffer addressed by absolute stream offsets, used for the
 * serial console of a VM (the last ENGINE_CONSOLE_RING bytes are kept).
 * Offsets count every byte ever appended, so a reader can say "give me what
 * came after byte N" and learn when bytes it never saw were dropped. Not
 * thread-safe by itself: the owner (one engine_vm) holds its lock around it. */
#ifndef VESSEL_DAEMON_ENGINE_RING_H
#define VESSEL_DAEMON_ENGINE_RING_H

#include <stddef.h>
#include <stdint.h>

struct ring {
	uint8_t *buf;
	size_t cap;
	uint64_t end; /* absolute offset one past the newest byte */
};

/* cap must be > 0. Returns 0 or -EINVAL / -ENOMEM. */
int ring_new(size_t cap, struct ring **out);
void ring_free(struct ring *r);

/* Append len bytes; when more than cap bytes are held the oldest go. */
void ring_append(struct ring *r, const void *data, size_t len);

/* Offset of the oldest byte still held (0 until the ring has wrapped). */
uint64_t ring_begin(const struct ring *r);
/* Offset one past the newest byte (= bytes ever appended). */
uint64_t ring_end(const struct ring *r);

/* Copy up to cap bytes starting at absolute offset since. When since is older
 * than ring_begin() the copy starts at ring_begin(); when it is past
 * ring_end() nothing is copied and the copy "starts" at ring_end(). *start is
 * the offset of the first byte copied, *len the number copied and *next
 * (= *start + *len) the offset to pass next time. */
void ring_read(const struct ring *r, uint64_t since, void *buf, size_t cap, size_t *len,
	       uint64_t *start, uint64_t *next);

#endif
