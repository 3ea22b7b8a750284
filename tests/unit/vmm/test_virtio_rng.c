/* Unit tests for src/vmm/virtio/rng.c: random bytes land in the writable
 * buffers only, the per-request bound holds, a broken chain needs reset. */
#include "vmm/virtio/rng.h"

#include <errno.h>

#include "harness.h"
#include "lib/log.h"
#include "virtq_test.h"

struct fixture {
	struct tq t;
	struct virtio_dev *dev;
	unsigned notifies, resets;
};

static void fx_notify(struct virtio_dev *dev, unsigned q)
{
	((struct fixture *)dev->transport)->notifies++;
}

static void fx_needs_reset(struct virtio_dev *dev)
{
	((struct fixture *)dev->transport)->resets++;
}

static int fx_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	log_set_level(LOG_LEVEL_ERROR);
	if (tq_init(&f->t, 16) < 0 || virtio_rng_new(&f->dev) < 0)
		return -1;
	f->dev->mem = &f->t.mem;
	f->dev->transport = f;
	f->dev->notify_queue = fx_notify;
	f->dev->set_needs_reset = fx_needs_reset;
	uint16_t max = f->dev->queues[0].max_size;
	f->dev->queues[0] = f->t.vq;
	f->dev->queues[0].max_size = max;
	return f->dev->ops->activate(f->dev);
}

static void fx_fini(struct fixture *f)
{
	virtio_rng_free(f->dev);
	tq_fini(&f->t);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

TEST(fills_writable_buffers)
{
	struct fixture f;
	uint32_t id, len;

	CHECK_EQ_INT(fx_init(&f), 0);
	CHECK_EQ_INT(f.dev->device_id, VIRTIO_ID_RNG);
	tq_desc(&f.t, 0, TQ_DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	tq_desc(&f.t, 1, TQ_DATA_GPA + 0x100, 64, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	tq_desc(&f.t, 2, TQ_DATA_GPA + 0x200, 32, VIRTQ_DESC_F_WRITE, 0);
	tq_avail(&f.t, 0);
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(tq_used_idx(&f.t), 1);
	tq_used_elem(&f.t, 0, &id, &len);
	CHECK_EQ_INT(id, 0);
	CHECK_EQ_INT(len, 96);
	CHECK(all_zero(tq_ptr(&f.t, TQ_DATA_GPA), 8));
	CHECK(!all_zero(tq_ptr(&f.t, TQ_DATA_GPA + 0x100), 64));
	CHECK(!all_zero(tq_ptr(&f.t, TQ_DATA_GPA + 0x200), 32));
	CHECK(all_zero(tq_ptr(&f.t, TQ_DATA_GPA + 0x220), 32));
	CHECK_EQ_INT(f.notifies, 1);
	fx_fini(&f);
}

TEST(bounded_per_request)
{
	struct fixture f;
	uint32_t id, len;

	CHECK_EQ_INT(fx_init(&f), 0);
	tq_desc(&f.t, 0, TQ_DATA_GPA, 200 * 1024, VIRTQ_DESC_F_WRITE, 0);
	tq_avail(&f.t, 0);
	f.dev->ops->queue_notify(f.dev, 0);
	tq_used_elem(&f.t, 0, &id, &len);
	CHECK_EQ_INT(len, VIRTIO_RNG_MAX_PER_REQUEST);
	CHECK(all_zero(tq_ptr(&f.t, TQ_DATA_GPA + VIRTIO_RNG_MAX_PER_REQUEST), 1024));
	fx_fini(&f);
}

TEST(malformed_chain_needs_reset)
{
	struct fixture f;

	CHECK_EQ_INT(fx_init(&f), 0);
	tq_desc(&f.t, 0, TQ_RAM_GPA + TQ_RAM_SIZE - 4, 64, VIRTQ_DESC_F_WRITE, 0);
	tq_avail(&f.t, 0);
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(f.resets, 1);
	CHECK_EQ_INT(tq_used_idx(&f.t), 0);
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(f.resets, 1);
	fx_fini(&f);
}

TEST(idle_until_activated)
{
	struct fixture f;

	CHECK_EQ_INT(fx_init(&f), 0);
	f.dev->ops->reset(f.dev);
	uint16_t max = f.dev->queues[0].max_size;
	f.dev->queues[0] = f.t.vq;
	f.dev->queues[0].max_size = max;
	tq_desc(&f.t, 0, TQ_DATA_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	tq_avail(&f.t, 0);
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(tq_used_idx(&f.t), 0);
	CHECK_EQ_INT(f.dev->ops->activate(f.dev), 0);
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(tq_used_idx(&f.t), 1);
	fx_fini(&f);
}

HARNESS_MAIN
