/* Unit tests for src/vmm/virtio/queue.c: the split virtqueue against valid
 * and hostile rings built in malloc'd guest RAM (virtq_test.h), plus a replay
 * of the malformed-descriptor corpus in tests/data/virtq-corpus/. */
#include "vmm/virtio/queue.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>

#include "../../fuzz/virtq_replay.h"
#include "lib/util.h"
#include "harness.h"
#include "virtq_test.h"

#define D_NEXT VIRTQ_DESC_F_NEXT
#define D_WRITE VIRTQ_DESC_F_WRITE
#define D_IND VIRTQ_DESC_F_INDIRECT

static struct virtq_elem elem;

TEST(valid_chain)
{
	struct tq t;
	uint32_t id, len;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	CHECK_EQ_INT(virtq_check(&t.vq, &t.mem), 0);
	tq_desc(&t, 3, TQ_DATA_GPA, 16, D_NEXT, 5);
	tq_desc(&t, 5, TQ_DATA_GPA + 0x1000, 512, D_NEXT | D_WRITE, 1);
	tq_desc(&t, 1, TQ_DATA_GPA + 0x2000, 1, D_WRITE, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -ENOENT);
	tq_avail(&t, 3);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(elem.head, 3);
	CHECK_EQ_INT(elem.out_num, 1);
	CHECK_EQ_INT(elem.in_num, 2);
	CHECK_EQ_INT(elem.out_len, 16);
	CHECK_EQ_INT(elem.in_len, 513);
	CHECK(elem.iov[0].iov_base == tq_ptr(&t, TQ_DATA_GPA));
	CHECK(virtq_elem_in(&elem)[1].iov_base == tq_ptr(&t, TQ_DATA_GPA + 0x2000));
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -ENOENT);
	CHECK_EQ_INT(virtq_push(&t.vq, &t.mem, 3, 513), 0);
	CHECK_EQ_INT(tq_used_idx(&t), 1);
	tq_used_elem(&t, 0, &id, &len);
	CHECK_EQ_INT(id, 3);
	CHECK_EQ_INT(len, 513);
	CHECK(!t.vq.broken);
	tq_fini(&t);
}

TEST(indices_wrap_at_64k)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 4), 0);
	t.vq.last_avail_idx = 65535;
	t.vq.used_idx = 65535;
	tq_set_avail_idx(&t, 65535);
	tq_desc(&t, 0, TQ_DATA_GPA, 8, 0, 0);
	tq_avail(&t, 0); /* ring slot 65535 % 4, idx wraps to 0 */
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -ENOENT);
	CHECK_EQ_INT(t.vq.last_avail_idx, 1);
	CHECK_EQ_INT(virtq_push(&t.vq, &t.mem, 0, 0), 0);
	CHECK_EQ_INT(tq_used_idx(&t), 0);
	tq_fini(&t);
}

TEST(descriptor_loop)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	tq_desc(&t, 0, TQ_DATA_GPA, 8, D_NEXT, 1);
	tq_desc(&t, 1, TQ_DATA_GPA, 8, D_NEXT, 2);
	tq_desc(&t, 2, TQ_DATA_GPA, 8, D_NEXT, 0);
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -ELOOP);
	CHECK(t.vq.broken);
	/* A broken queue stays broken until reset. */
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EIO);
	CHECK_EQ_INT(virtq_push(&t.vq, &t.mem, 0, 0), -EIO);
	virtq_reset(&t.vq);
	CHECK(!t.vq.broken);
	CHECK_EQ_INT(t.vq.size, VIRTQ_MAX_SIZE);
	tq_fini(&t);
}

TEST(self_loop_and_chain_longer_than_queue)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 4), 0);
	tq_desc(&t, 2, TQ_DATA_GPA, 0, D_NEXT, 2);
	tq_avail(&t, 2);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -ELOOP);
	tq_fini(&t);

	/* Exactly size descriptors is fine; the walk stops at the last one. */
	CHECK_EQ_INT(tq_init(&t, 4), 0);
	for (uint16_t i = 0; i < 4; i++)
		tq_desc(&t, i, TQ_DATA_GPA + 64u * i, 64, i < 3 ? D_NEXT : 0, (uint16_t)(i + 1));
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(elem.out_num, 4);
	tq_fini(&t);
}

TEST(next_and_head_out_of_range)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	tq_desc(&t, 0, TQ_DATA_GPA, 8, D_NEXT, 8);
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EINVAL);
	tq_fini(&t);

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	tq_avail(&t, 8);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EINVAL);
	tq_fini(&t);

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	tq_avail(&t, 0xffff);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EINVAL);
	tq_fini(&t);
}

TEST(addresses_outside_ram)
{
	struct tq t;
	const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
		{0, 16},                                  /* below RAM */
		{TQ_RAM_GPA - 8, 16},                     /* starts below, ends inside */
		{TQ_RAM_GPA + TQ_RAM_SIZE - 8, 16},       /* runs off the end */
		{TQ_RAM_GPA + TQ_RAM_SIZE, 1},            /* just past the end */
		{UINT64_MAX - 7, 16},                     /* wraps around 2^64 */
		{UINT64_MAX, 0xffffffffu},                /* wraps, huge */
		{TQ_RAM_GPA, 0xffffffffu},                /* longer than RAM */
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK_EQ_INT(tq_init(&t, 8), 0);
		tq_desc(&t, 0, TQ_DATA_GPA, 16, D_NEXT, 1);
		tq_desc(&t, 1, bad[i].addr, bad[i].len, D_WRITE, 0);
		tq_avail(&t, 0);
		int r = virtq_pop(&t.vq, &t.mem, &elem);
		if (r != -EFAULT)
			fprintf(stderr, "  case %zu: %d\n", i, r);
		CHECK_EQ_INT(r, -EFAULT);
		tq_fini(&t);
	}
}

TEST(rings_outside_ram_or_misaligned)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	t.vq.used_gpa = TQ_RAM_GPA + TQ_RAM_SIZE - 8;
	CHECK_EQ_INT(virtq_check(&t.vq, &t.mem), -EFAULT);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EFAULT);
	tq_fini(&t);

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	t.vq.desc_gpa += 8;
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EINVAL);
	tq_fini(&t);

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	t.vq.size = 6; /* not a power of 2 */
	CHECK_EQ_INT(virtq_check(&t.vq, &t.mem), -EINVAL);
	t.vq.size = 0;
	CHECK_EQ_INT(virtq_check(&t.vq, &t.mem), -EINVAL);
	t.vq.size = 2048; /* above VIRTQ_MAX_SIZE */
	CHECK_EQ_INT(virtq_check(&t.vq, &t.mem), -EINVAL);
	tq_fini(&t);
}

TEST(disabled_queue_is_idle)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	tq_desc(&t, 0, TQ_DATA_GPA, 8, 0, 0);
	tq_avail(&t, 0);
	t.vq.enabled = false;
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -ENOENT);
	CHECK(!t.vq.broken);
	tq_fini(&t);
}

TEST(zero_length_buffers)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	/* A zero-length buffer with an address outside RAM is never touched,
	 * so it is accepted and left out of the iovec. */
	tq_desc(&t, 0, TQ_DATA_GPA, 16, D_NEXT, 1);
	tq_desc(&t, 1, 0xdead0000, 0, D_NEXT, 2);
	tq_desc(&t, 2, TQ_DATA_GPA + 64, 0, D_WRITE | D_NEXT, 3);
	tq_desc(&t, 3, TQ_DATA_GPA + 128, 1, D_WRITE, 0);
	tq_avail(&t, 0);
	tq_desc(&t, 4, TQ_DATA_GPA, 0, 0, 0);
	tq_avail(&t, 4);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(elem.out_num, 1);
	CHECK_EQ_INT(elem.in_num, 1);
	CHECK_EQ_INT(elem.in_len, 1);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(elem.out_num + elem.in_num, 0);
	CHECK_EQ_INT(elem.head, 4);
	tq_fini(&t);

	/* ...but it still obeys readable-before-writable. */
	CHECK_EQ_INT(tq_init(&t, 8), 0);
	tq_desc(&t, 0, TQ_DATA_GPA, 4, D_WRITE | D_NEXT, 1);
	tq_desc(&t, 1, TQ_DATA_GPA, 0, 0, 0);
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EINVAL);
	tq_fini(&t);
}

TEST(readable_after_writable)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	tq_desc(&t, 0, TQ_DATA_GPA, 16, D_NEXT, 1);
	tq_desc(&t, 1, TQ_DATA_GPA + 64, 16, D_WRITE | D_NEXT, 2);
	tq_desc(&t, 2, TQ_DATA_GPA + 128, 16, 0, 0);
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EINVAL);
	tq_fini(&t);
}

TEST(avail_idx_jumps_too_far)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	tq_desc(&t, 0, TQ_DATA_GPA, 16, 0, 0);
	tq_set_avail_idx(&t, 8); /* exactly size outstanding: fine */
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	tq_fini(&t);

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	tq_desc(&t, 0, TQ_DATA_GPA, 16, 0, 0);
	tq_set_avail_idx(&t, 9);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EINVAL);
	CHECK(t.vq.broken);
	tq_fini(&t);

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	t.vq.last_avail_idx = 100;
	tq_set_avail_idx(&t, 99); /* went backwards: 65535 outstanding */
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EINVAL);
	tq_fini(&t);
}

TEST(indirect_valid)
{
	struct tq t;
	uint64_t tbl = TQ_DATA_GPA + 0x8000;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	t.vq.indirect = true;
	uint8_t *it = tq_ptr(&t, tbl);
	tq_desc_at(it, 0, TQ_DATA_GPA, 16, D_NEXT, 2);
	tq_desc_at(it, 2, TQ_DATA_GPA + 0x100, 4096, D_NEXT | D_WRITE, 1);
	tq_desc_at(it, 1, TQ_DATA_GPA + 0x2000, 1, D_WRITE, 0);
	/* A direct descriptor, then the indirect one (§2.7.5.3.2); the WRITE
	 * flag on the indirect descriptor itself is ignored. */
	tq_desc(&t, 6, TQ_DATA_GPA + 0x3000, 8, D_NEXT, 7);
	tq_desc(&t, 7, tbl, 3 * 16, D_IND | D_WRITE, 0);
	tq_avail(&t, 6);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(elem.head, 6);
	CHECK_EQ_INT(elem.out_num, 2);
	CHECK_EQ_INT(elem.in_num, 2);
	CHECK_EQ_INT(elem.out_len, 24);
	CHECK_EQ_INT(elem.in_len, 4097);
	tq_fini(&t);
}

/* Build an indirect descriptor at desc 0 with `flags`/`len` and an indirect
 * table whose entry 0 is `inner_flags`, then return virtq_pop()'s result. */
static int indirect_case(bool negotiated, uint16_t flags, uint32_t len, uint16_t inner_flags,
			 uint16_t inner_next)
{
	struct tq t;
	uint64_t tbl = TQ_DATA_GPA + 0x8000;
	int r;

	if (tq_init(&t, 8) < 0)
		return -ENOMEM;
	t.vq.indirect = negotiated;
	tq_desc_at(tq_ptr(&t, tbl), 0, TQ_DATA_GPA, 16, inner_flags, inner_next);
	tq_desc_at(tq_ptr(&t, tbl), 1, TQ_DATA_GPA, 16, 0, 0);
	tq_desc(&t, 0, tbl, len, flags, 1);
	tq_desc(&t, 1, TQ_DATA_GPA, 16, 0, 0);
	tq_avail(&t, 0);
	r = virtq_pop(&t.vq, &t.mem, &elem);
	tq_fini(&t);
	return r;
}

TEST(indirect_misuse)
{
	CHECK_EQ_INT(indirect_case(true, D_IND, 32, D_NEXT, 1), 0);
	/* not negotiated */
	CHECK_EQ_INT(indirect_case(false, D_IND, 32, 0, 0), -EINVAL);
	/* NEXT together with INDIRECT */
	CHECK_EQ_INT(indirect_case(true, D_IND | D_NEXT, 32, 0, 0), -EINVAL);
	/* length not a multiple of 16, or zero */
	CHECK_EQ_INT(indirect_case(true, D_IND, 24, 0, 0), -EINVAL);
	CHECK_EQ_INT(indirect_case(true, D_IND, 0, 0, 0), -EINVAL);
	/* more entries than allowed */
	CHECK_EQ_INT(indirect_case(true, D_IND, 16 * (VIRTQ_INDIRECT_MAX + 1), 0, 0), -EINVAL);
	/* nested indirect */
	CHECK_EQ_INT(indirect_case(true, D_IND, 32, D_IND, 0), -EINVAL);
	/* next inside the table beyond its end */
	CHECK_EQ_INT(indirect_case(true, D_IND, 32, D_NEXT, 2), -EINVAL);
	/* loop inside the table */
	CHECK_EQ_INT(indirect_case(true, D_IND, 32, D_NEXT, 0), -ELOOP);
}

TEST(indirect_table_outside_ram)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	t.vq.indirect = true;
	tq_desc(&t, 0, TQ_RAM_GPA + TQ_RAM_SIZE - 16, 32, D_IND, 0);
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -EFAULT);
	tq_fini(&t);
}

TEST(total_length_over_4g)
{
	struct tq t;
	/* A second RAM region of 3 GiB that is only reserved, never touched:
	 * the queue must refuse the chain from the lengths alone. */
	size_t big = 3ull << 30;
	void *res = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		SKIP("cannot reserve 3 GiB of address space");
	CHECK_EQ_INT(tq_init(&t, 8), 0);
	CHECK_EQ_INT(guest_mem_add_region(&t.mem, 1ull << 32, big, res), 0);
	tq_desc(&t, 0, 1ull << 32, 0xc0000000u, D_WRITE | D_NEXT, 1);
	tq_desc(&t, 1, 1ull << 32, 0xc0000000u, D_WRITE, 0);
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -E2BIG);
	tq_fini(&t);

	/* A loop of 256 MiB buffers in a queue of 8 is stopped by the chain
	 * length (at most 8), long before its bytes add up to 4 GiB. */
	CHECK_EQ_INT(tq_init(&t, 8), 0);
	CHECK_EQ_INT(guest_mem_add_region(&t.mem, 1ull << 32, big, res), 0);
	tq_desc(&t, 0, 1ull << 32, 0x10000000u, D_NEXT, 0);
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -ELOOP);
	tq_fini(&t);
	munmap(res, big);
}

TEST(too_many_segments)
{
	struct tq t;
	uint64_t tbl = TQ_DATA_GPA + 0x10000;

	/* A full direct chain of 1024 plus an indirect table would exceed
	 * VIRTQ_ELEM_MAX_SEGS. */
	CHECK_EQ_INT(tq_init(&t, 1024), 0);
	t.vq.indirect = true;
	for (uint16_t i = 0; i < 1023; i++)
		tq_desc(&t, i, TQ_DATA_GPA, 1, D_NEXT, (uint16_t)(i + 1));
	tq_desc(&t, 1023, tbl, 16 * 4, D_IND, 0);
	for (uint16_t i = 0; i < 4; i++)
		tq_desc_at(tq_ptr(&t, tbl), i, TQ_DATA_GPA, 1, i < 3 ? D_NEXT : 0, (uint16_t)(i + 1));
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -ELOOP);
	tq_fini(&t);
}

TEST(no_interrupt_flag)
{
	struct tq t;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	tq_desc(&t, 0, TQ_DATA_GPA, 8, 0, 0);
	tq_avail(&t, 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(virtq_push(&t.vq, &t.mem, 0, 0), 0);
	CHECK(virtq_should_notify(&t.vq, &t.mem));
	tq_set16(&t, t.vq.avail_gpa, VIRTQ_AVAIL_F_NO_INTERRUPT);
	CHECK(!virtq_should_notify(&t.vq, &t.mem));
	tq_fini(&t);
}

TEST(event_idx)
{
	struct tq t;
	uint64_t used_event = 0, avail_event = 0;

	CHECK_EQ_INT(tq_init(&t, 8), 0);
	t.vq.event_idx = true;
	used_event = t.vq.avail_gpa + 4 + 2 * 8;
	avail_event = t.vq.used_gpa + 4 + 8 * 8;
	for (uint16_t i = 0; i < 8; i++)
		tq_desc(&t, i, TQ_DATA_GPA, 8, 0, 0);

	/* Empty ring: the device asks to be notified at avail idx 0. */
	tq_set16(&t, avail_event, 0xffff);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), -ENOENT);
	CHECK_EQ_INT(tq_get16(&t, avail_event), 0);

	for (uint16_t i = 0; i < 4; i++)
		tq_avail(&t, i);
	/* The driver wants an interrupt only once used idx passes 2. */
	tq_set16(&t, used_event, 2);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(tq_get16(&t, avail_event), 1);
	CHECK_EQ_INT(virtq_push(&t.vq, &t.mem, elem.head, 0), 0);
	/* first call always interrupts (no previous signal to compare with) */
	CHECK(virtq_should_notify(&t.vq, &t.mem));
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(virtq_push(&t.vq, &t.mem, elem.head, 0), 0);
	CHECK(!virtq_should_notify(&t.vq, &t.mem)); /* used idx 2: not past 2 */
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(virtq_push(&t.vq, &t.mem, elem.head, 0), 0);
	CHECK(virtq_should_notify(&t.vq, &t.mem));  /* used idx 3 crossed 2 */
	CHECK(!virtq_should_notify(&t.vq, &t.mem)); /* nothing new pushed */
	/* Batch: two pushes, used_event = 3 lies inside them. */
	tq_set16(&t, used_event, 3);
	tq_avail(&t, 4);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(virtq_push(&t.vq, &t.mem, elem.head, 0), 0);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(virtq_push(&t.vq, &t.mem, elem.head, 0), 0);
	CHECK(virtq_should_notify(&t.vq, &t.mem)); /* 3 -> 5 wrote entry 3: one interrupt */
	tq_set16(&t, used_event, 6);
	tq_avail(&t, 5);
	CHECK_EQ_INT(virtq_pop(&t.vq, &t.mem, &elem), 0);
	CHECK_EQ_INT(virtq_push(&t.vq, &t.mem, elem.head, 0), 0);
	CHECK(!virtq_should_notify(&t.vq, &t.mem)); /* 5 -> 6: event 6 not passed */
	tq_fini(&t);
}

/* Corpus files are named <what>.<EXPECTED>.bin, EXPECTED one of OK, EINVAL,
 * EFAULT, ELOOP, E2BIG: the first error virtq_pop() must report. */
static int expected_from_name(const char *name, int *out)
{
	static const struct {
		const char *tag;
		int err;
	} tags[] = {{".OK.", 0}, {".EINVAL.", -EINVAL}, {".EFAULT.", -EFAULT},
		    {".ELOOP.", -ELOOP}, {".E2BIG.", -E2BIG}};
	for (size_t i = 0; i < ARRAY_SIZE(tags); i++)
		if (strstr(name, tags[i].tag)) {
			*out = tags[i].err;
			return 0;
		}
	return -1;
}

TEST(corpus_replay)
{
	char path[4096];
	const char *dir = getenv("VIRTQ_CORPUS");
	unsigned files = 0, rejected = 0;
	DIR *d;
	struct dirent *de;

	if (!dir)
		dir = VIRTQ_CORPUS_DIR;
	d = opendir(dir);
	CHECK(d != NULL);
	if (!d)
		return;
	while ((de = readdir(d))) {
		int want;
		if (de->d_name[0] == '.' || expected_from_name(de->d_name, &want) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		FILE *f = fopen(path, "rb");
		CHECK(f != NULL);
		if (!f)
			continue;
		static uint8_t buf[REPLAY_HDR_SIZE + REPLAY_RAM_SIZE];
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		struct virtq_replay_result res;
		CHECK_EQ_INT(virtq_replay_run(buf, n, &res), 0);
		if (res.first_error != want)
			fprintf(stderr, "  %s: got %d, want %d\n", de->d_name, res.first_error, want);
		CHECK_EQ_INT(res.first_error, want);
		files++;
		if (want)
			rejected++;
	}
	closedir(d);
	printf("  replayed %u corpus files, %u malformed ones rejected\n", files, rejected);
	CHECK(files >= 10);
}

HARNESS_MAIN
