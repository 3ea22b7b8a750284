/* ring: byte ring buffer with absolute offsets for the serial console (see
 * ring.h for the read semantics). */
#include "daemon/engine/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

int ring_new(size_t cap, struct ring **out)
{
	struct ring *r;

	if (cap == 0)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->buf = malloc(cap);
	if (!r->buf) {
		free(r);
		return -ENOMEM;
	}
	r->cap = cap;
	*out = r;
	return 0;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

void ring_append(struct ring *r, const void *data, size_t len)
{
	const uint8_t *p = data;

	/* Only the last cap bytes of a large append can survive it. */
	if (len > r->cap) {
		r->end += len - r->cap;
		p += len - r->cap;
		len = r->cap;
	}
	while (len > 0) {
		size_t pos = (size_t)(r->end % r->cap);
		size_t n = MIN(len, r->cap - pos);

		memcpy(r->buf + pos, p, n);
		r->end += n;
		p += n;
		len -= n;
	}
}

uint64_t ring_begin(const struct ring *r)
{
	return r->end > r->cap ? r->end - r->cap : 0;
}

uint64_t ring_end(const struct ring *r)
{
	return r->end;
}

void ring_read(const struct ring *r, uint64_t since, void *buf, size_t cap, size_t *len,
	       uint64_t *start, uint64_t *next)
{
	uint64_t from = since, avail;
	uint8_t *p = buf;
	size_t done = 0;

	if (from < ring_begin(r))
		from = ring_begin(r);
	if (from > r->end)
		from = r->end;
	avail = r->end - from;
	if (avail > cap)
		avail = cap;
	while (done < avail) {
		size_t pos = (size_t)((from + done) % r->cap);
		size_t n = MIN((size_t)avail - done, r->cap - pos);

		memcpy(p + done, r->buf + pos, n);
		done += n;
	}
	*start = from;
	*len = done;
	*next = from + done;
}
