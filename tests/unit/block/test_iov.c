/* Unit tests for src/lib/iov.c, the scatter-gather helpers the block layer
 * and the virtio devices parse guest requests with. */
#include "lib/iov.h"

#include <errno.h>

#include "harness.h"

static uint8_t sa[10], sb[5], sc[20];

static void setup(struct iovec v[3])
{
	for (unsigned i = 0; i < sizeof(sa); i++)
		sa[i] = (uint8_t)i;
	for (unsigned i = 0; i < sizeof(sb); i++)
		sb[i] = (uint8_t)(10 + i);
	for (unsigned i = 0; i < sizeof(sc); i++)
		sc[i] = (uint8_t)(15 + i);
	v[0] = (struct iovec){sa, sizeof(sa)};
	v[1] = (struct iovec){sb, sizeof(sb)};
	v[2] = (struct iovec){sc, sizeof(sc)};
}

TEST(size_and_copy_out)
{
	struct iovec v[3];
	uint8_t buf[40];

	setup(v);
	CHECK_EQ_INT(iov_size(v, 3), 35);
	CHECK_EQ_INT(iov_to_buf(v, 3, 8, buf, 10), 10);
	for (int i = 0; i < 10; i++)
		CHECK_EQ_INT(buf[i], 8 + i);
	/* short list: copies what there is */
	CHECK_EQ_INT(iov_to_buf(v, 3, 30, buf, 10), 5);
	CHECK_EQ_INT(buf[0], 30);
	CHECK_EQ_INT(iov_to_buf(v, 3, 35, buf, 10), 0);
	CHECK_EQ_INT(iov_to_buf(v, 3, SIZE_MAX, buf, 10), 0);
	struct iovec big[2] = {{sa, SIZE_MAX - 1}, {sb, 5}};
	CHECK(iov_size(big, 2) == SIZE_MAX);
}

TEST(copy_in_and_memset)
{
	struct iovec v[3];
	uint8_t src[6] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5};

	setup(v);
	CHECK_EQ_INT(iov_from_buf(v, 3, 12, src, 6), 6);
	CHECK_EQ_INT(sb[2], 0xa0);
	CHECK_EQ_INT(sb[4], 0xa2);
	CHECK_EQ_INT(sc[0], 0xa3);
	CHECK_EQ_INT(sc[2], 0xa5);
	CHECK_EQ_INT(sc[3], 18);
	CHECK_EQ_INT(iov_memset(v, 3, 9, 0, 3), 3);
	CHECK_EQ_INT(sa[8], 8);
	CHECK_EQ_INT(sa[9], 0);
	CHECK_EQ_INT(sb[1], 0);
	CHECK_EQ_INT(sb[2], 0xa0);
	CHECK_EQ_INT(iov_memset(v, 3, 30, 0, 100), 5);
}

TEST(slice)
{
	struct iovec v[3], d[3];
	unsigned n = 99;

	setup(v);
	CHECK_EQ_INT(iov_slice(v, 3, 8, 10, d, 3, &n), 0);
	CHECK_EQ_INT(n, 3);
	CHECK(d[0].iov_base == sa + 8 && d[0].iov_len == 2);
	CHECK(d[1].iov_base == sb && d[1].iov_len == 5);
	CHECK(d[2].iov_base == sc && d[2].iov_len == 3);
	CHECK_EQ_INT(iov_slice(v, 3, 8, 10, d, 2, &n), -E2BIG);
	CHECK_EQ_INT(iov_slice(v, 3, 30, 6, d, 3, &n), -ERANGE);
	CHECK_EQ_INT(iov_slice(v, 3, 35, 0, d, 3, &n), 0);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(iov_slice(v, 3, 10, 5, d, 1, &n), 0);
	CHECK_EQ_INT(n, 1);
	CHECK(d[0].iov_base == sb);
}

HARNESS_MAIN
