/* Unit tests for src/vmm/virtio/console.c over pipes: guest output reaches
 * the host fd, host input reaches the guest once it has a buffer, EOF and
 * malformed chains are handled. */
#include "vmm/virtio/console.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "lib/log.h"
#include "virtq_test.h"

#define RXQ_GPA (TQ_RAM_GPA + 0x8000)

struct fixture {
	struct tq tx, rx;
	int in[2], out[2];   /* host -> guest pipe, guest -> host pipe */
	struct virtio_dev *dev;
	unsigned resets;
};

static void fx_needs_reset(struct virtio_dev *dev)
{
	__atomic_add_fetch(&((struct fixture *)dev->transport)->resets, 1, __ATOMIC_SEQ_CST);
}

static int fx_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	log_set_level(LOG_LEVEL_ERROR);
	if (tq_init(&f->tx, 16) < 0)
		return -1;
	f->rx = f->tx;
	f->rx.vq.desc_gpa = RXQ_GPA;
	f->rx.vq.avail_gpa = RXQ_GPA + 16 * 16;
	f->rx.vq.used_gpa = RXQ_GPA + 0x1000;
	if (pipe2(f->in, O_CLOEXEC) < 0 || pipe2(f->out, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	if (virtio_console_new(f->in[0], f->out[1], &f->dev) < 0)
		return -1;
	f->dev->mem = &f->tx.mem;
	f->dev->transport = f;
	f->dev->set_needs_reset = fx_needs_reset;
	f->dev->queues[VIRTIO_CONSOLE_RXQ] = f->rx.vq;
	f->dev->queues[VIRTIO_CONSOLE_TXQ] = f->tx.vq;
	return f->dev->ops->activate(f->dev);
}

static void fx_fini(struct fixture *f)
{
	virtio_console_free(f->dev);
	for (int i = 0; i < 2; i++) {
		close(f->in[i]);
		close(f->out[i]);
	}
	tq_fini(&f->tx);
}

static bool wait_used(struct tq *t, uint16_t want)
{
	for (int i = 0; i < 2000; i++) {
		if (__atomic_load_n((uint16_t *)tq_ptr(t, t->vq.used_gpa + 2), __ATOMIC_ACQUIRE) == want)
			return true;
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

TEST(guest_output)
{
	struct fixture f;
	char got[64] = {0};

	CHECK_EQ_INT(fx_init(&f), 0);
	CHECK_EQ_INT(f.dev->device_id, VIRTIO_ID_CONSOLE);
	memcpy(tq_ptr(&f.tx, TQ_DATA_GPA), "hello, ", 7);
	memcpy(tq_ptr(&f.tx, TQ_DATA_GPA + 0x100), "world\n", 6);
	tq_desc(&f.tx, 0, TQ_DATA_GPA, 7, VIRTQ_DESC_F_NEXT, 1);
	tq_desc(&f.tx, 1, TQ_DATA_GPA + 0x100, 6, 0, 0);
	tq_avail(&f.tx, 0);
	f.dev->ops->queue_notify(f.dev, VIRTIO_CONSOLE_TXQ);
	CHECK_EQ_INT(tq_used_idx(&f.tx), 1);
	CHECK_EQ_INT(read(f.out[0], got, sizeof(got)), 13);
	CHECK_STR(got, "hello, world\n");
	fx_fini(&f);
}

TEST(guest_input)
{
	struct fixture f;
	uint32_t id, len;

	CHECK_EQ_INT(fx_init(&f), 0);
	/* input before any buffer waits for one */
	CHECK_EQ_INT(write(f.in[1], "ls -l\n", 6), 6);
	struct timespec ts = {0, 30 * 1000 * 1000};
	nanosleep(&ts, NULL);
	CHECK_EQ_INT(tq_used_idx(&f.rx), 0);
	tq_desc(&f.rx, 2, TQ_DATA_GPA + 0x2000, 4, VIRTQ_DESC_F_WRITE, 0);
	tq_avail(&f.rx, 2);
	f.dev->ops->queue_notify(f.dev, VIRTIO_CONSOLE_RXQ);
	CHECK(wait_used(&f.rx, 1));
	tq_used_elem(&f.rx, 0, &id, &len);
	CHECK_EQ_INT(id, 2);
	CHECK_EQ_INT(len, 4); /* only what fits */
	CHECK(memcmp(tq_ptr(&f.rx, TQ_DATA_GPA + 0x2000), "ls -", 4) == 0);
	tq_desc(&f.rx, 3, TQ_DATA_GPA + 0x3000, 64, VIRTQ_DESC_F_WRITE, 0);
	tq_avail(&f.rx, 3);
	f.dev->ops->queue_notify(f.dev, VIRTIO_CONSOLE_RXQ);
	CHECK(wait_used(&f.rx, 2));
	tq_used_elem(&f.rx, 1, &id, &len);
	CHECK_EQ_INT(len, 2);
	CHECK(memcmp(tq_ptr(&f.rx, TQ_DATA_GPA + 0x3000), "l\n", 2) == 0);
	/* host side closed: no buffer is consumed for it */
	close(f.in[1]);
	f.in[1] = -1;
	tq_desc(&f.rx, 4, TQ_DATA_GPA + 0x4000, 64, VIRTQ_DESC_F_WRITE, 0);
	tq_avail(&f.rx, 4);
	f.dev->ops->queue_notify(f.dev, VIRTIO_CONSOLE_RXQ);
	nanosleep(&ts, NULL);
	CHECK_EQ_INT(tq_used_idx(&f.rx), 2);
	fx_fini(&f);
}

TEST(host_hangup_does_not_spin)
{
	struct fixture f;
	struct timespec t0, t1, ts = {0, 200 * 1000 * 1000};

	CHECK_EQ_INT(fx_init(&f), 0);
	tq_desc(&f.rx, 0, TQ_DATA_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
	tq_avail(&f.rx, 0);
	f.dev->ops->queue_notify(f.dev, VIRTIO_CONSOLE_RXQ);
	close(f.in[1]);
	f.in[1] = -1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	nanosleep(&ts, NULL);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	double cpu = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	CHECK(cpu < 0.05);
	CHECK_EQ_INT(tq_used_idx(&f.rx), 0);
	fx_fini(&f);
}

TEST(malformed_transmit_needs_reset)
{
	struct fixture f;

	CHECK_EQ_INT(fx_init(&f), 0);
	tq_desc(&f.tx, 0, TQ_DATA_GPA, 7, VIRTQ_DESC_F_NEXT, 0);
	tq_avail(&f.tx, 0);
	f.dev->ops->queue_notify(f.dev, VIRTIO_CONSOLE_TXQ);
	CHECK_EQ_INT(f.resets, 1);
	CHECK_EQ_INT(tq_used_idx(&f.tx), 0);
	fx_fini(&f);
}

HARNESS_MAIN
