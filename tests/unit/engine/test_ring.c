/* Unit tests for src/daemon/engine/ring.c: absolute offsets, wraparound,
 * and the since/start/next read semantics the console API relies on. */
#include "daemon/engine/ring.h"

#include <errno.h>

#include "harness.h"

TEST(empty)
{
	struct ring *r = NULL;
	char buf[8];
	size_t len = 99;
	uint64_t start = 99, next = 99;

	CHECK_EQ_INT(ring_new(0, &r), -EINVAL);
	CHECK_EQ_INT(ring_new(8, &r), 0);
	ring_read(r, 0, buf, sizeof(buf), &len, &start, &next);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(start, 0);
	CHECK_EQ_INT(next, 0);
	CHECK_EQ_INT(ring_begin(r), 0);
	CHECK_EQ_INT(ring_end(r), 0);
	ring_free(r);
	ring_free(NULL);
}

TEST(append_and_read_from_offsets)
{
	struct ring *r = NULL;
	char buf[16] = {0};
	size_t len;
	uint64_t start, next;

	CHECK_EQ_INT(ring_new(8, &r), 0);
	ring_append(r, "hello", 5);
	ring_read(r, 0, buf, sizeof(buf), &len, &start, &next);
	CHECK_EQ_INT(len, 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ_INT(start, 0);
	CHECK_EQ_INT(next, 5);

	/* Reading from next gives nothing until more arrives. */
	ring_read(r, next, buf, sizeof(buf), &len, &start, &next);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(start, 5);
	CHECK_EQ_INT(next, 5);

	/* A partial read: cap smaller than what is there. */
	ring_read(r, 1, buf, 3, &len, &start, &next);
	CHECK_EQ_INT(len, 3);
	CHECK(memcmp(buf, "ell", 3) == 0);
	CHECK_EQ_INT(start, 1);
	CHECK_EQ_INT(next, 4);
	ring_free(r);
}

TEST(wraparound_drops_oldest)
{
	struct ring *r = NULL;
	char buf[16] = {0};
	size_t len;
	uint64_t start, next;

	CHECK_EQ_INT(ring_new(8, &r), 0);
	ring_append(r, "abcdef", 6);
	ring_append(r, "ghijk", 5); /* 11 bytes total, "defghijk" kept */
	CHECK_EQ_INT(ring_begin(r), 3);
	CHECK_EQ_INT(ring_end(r), 11);

	/* since older than what is kept: start tells the reader it missed
	 * bytes 0..2. */
	ring_read(r, 0, buf, sizeof(buf), &len, &start, &next);
	CHECK_EQ_INT(start, 3);
	CHECK_EQ_INT(len, 8);
	CHECK(memcmp(buf, "defghijk", 8) == 0);
	CHECK_EQ_INT(next, 11);

	/* A read that itself crosses the physical end of the buffer. */
	ring_read(r, 6, buf, sizeof(buf), &len, &start, &next);
	CHECK_EQ_INT(start, 6);
	CHECK_EQ_INT(len, 5);
	CHECK(memcmp(buf, "ghijk", 5) == 0);
	ring_free(r);
}

TEST(append_larger_than_ring)
{
	struct ring *r = NULL;
	char buf[16] = {0};
	size_t len;
	uint64_t start, next;

	CHECK_EQ_INT(ring_new(4, &r), 0);
	ring_append(r, "x", 1);
	ring_append(r, "0123456789", 10);
	CHECK_EQ_INT(ring_end(r), 11);
	CHECK_EQ_INT(ring_begin(r), 7);
	ring_read(r, 0, buf, sizeof(buf), &len, &start, &next);
	CHECK_EQ_INT(start, 7);
	CHECK_EQ_INT(len, 4);
	CHECK(memcmp(buf, "6789", 4) == 0);
	ring_free(r);
}

TEST(since_past_end)
{
	struct ring *r = NULL;
	char buf[4];
	size_t len;
	uint64_t start, next;

	CHECK_EQ_INT(ring_new(4, &r), 0);
	ring_append(r, "ab", 2);
	/* A reader from a previous run of the VM asks for offset 100. */
	ring_read(r, 100, buf, sizeof(buf), &len, &start, &next);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(start, 2);
	CHECK_EQ_INT(next, 2);
	ring_free(r);
}

TEST(many_wraps_keep_stream_order)
{
	struct ring *r = NULL;
	unsigned char out[7];
	size_t len;
	uint64_t start, next, total = 0;

	CHECK_EQ_INT(ring_new(7, &r), 0);
	for (int i = 0; i < 1000; i++) {
		unsigned char chunk[5];
		size_t n = (size_t)(i % 5) + 1;

		for (size_t k = 0; k < n; k++)
			chunk[k] = (unsigned char)(total + k);
		ring_append(r, chunk, n);
		total += n;
	}
	ring_read(r, 0, out, sizeof(out), &len, &start, &next);
	CHECK_EQ_INT(len, 7);
	CHECK_EQ_INT(start, total - 7);
	for (size_t k = 0; k < len; k++)
		CHECK_EQ_INT(out[k], (unsigned char)(start + k));
	ring_free(r);
}

HARNESS_MAIN
