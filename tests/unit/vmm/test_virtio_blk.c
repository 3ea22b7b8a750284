/* Unit tests for src/vmm/virtio/blk.c: virtio-blk requests built in a fake
 * guest (virtq_test.h) against a raw disk in a memfd: data round trips,
 * framing, out-of-range sectors, read-only disks, FLUSH reaching fdatasync,
 * GET_ID, discard / write zeroes, and malformed requests. */
#include "vmm/virtio/blk.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "lib/log.h"
#include "lib/util.h"
#include "virtq_test.h"

#define HDR_GPA (TQ_DATA_GPA)
#define STATUS_GPA (TQ_DATA_GPA + 0x100)
#define DATA_GPA (TQ_DATA_GPA + 0x1000)
#define DISK_SIZE (1 * MiB)

/* Size of the next fixture's disk (sparse memfd). */
static uint64_t fx_disk_size = DISK_SIZE;

/* The raw driver with its flush counted: proves FLUSH reaches the
 * driver's fdatasync, not just the block layer's bookkeeping. */
static unsigned counted_flushes;

static int counting_flush(struct block_dev *bd)
{
	counted_flushes++;
	return block_driver_raw.flush(bd);
}

static struct block_driver counting_raw;

struct fixture {
	struct tq t;
	int fd;
	struct block_dev *bd;
	struct virtio_dev *dev;
	struct virtq *vq;
	unsigned notifies, resets;
	uint16_t next_desc;
};

static void fx_notify(struct virtio_dev *dev, unsigned q)
{
	((struct fixture *)dev->transport)->notifies++;
}

static void fx_needs_reset(struct virtio_dev *dev)
{
	((struct fixture *)dev->transport)->resets++;
}

static int fx_init(struct fixture *f, bool readonly, uint64_t features)
{
	memset(f, 0, sizeof(*f));
	log_set_level(LOG_LEVEL_ERROR);
	if (tq_init(&f->t, 64) < 0)
		return -1;
	f->fd = memfd_create("disk", MFD_CLOEXEC);
	if (f->fd < 0 || ftruncate(f->fd, (off_t)fx_disk_size) < 0)
		return -1;
	int fd = dup(f->fd);
	counting_raw = block_driver_raw;
	counting_raw.flush = counting_flush;
	counted_flushes = 0;
	if (block_open_driver(&counting_raw, fd, 0, "/images/test-disk.raw", &f->bd) < 0)
		return -1;
	if (virtio_blk_new(f->bd, readonly, &f->dev) < 0)
		return -1;
	f->dev->mem = &f->t.mem;
	f->dev->transport = f;
	f->dev->notify_queue = fx_notify;
	f->dev->set_needs_reset = fx_needs_reset;
	f->dev->driver_features = features | (1ull << VIRTIO_F_VERSION_1);
	f->vq = &f->dev->queues[0];
	uint16_t max = f->vq->max_size;
	*f->vq = f->t.vq;
	f->vq->max_size = max;
	f->t.vq = *f->vq;
	return f->dev->ops->activate(f->dev);
}

static void fx_fini(struct fixture *f)
{
	virtio_blk_free(f->dev);
	block_free(f->bd);
	close(f->fd);
	tq_fini(&f->t);
}

static uint16_t fx_desc(struct fixture *f, uint64_t addr, uint32_t len, uint16_t flags)
{
	uint16_t i = f->next_desc++ % f->vq->size;
	tq_desc(&f->t, i, addr, len, flags, (uint16_t)((i + 1) % f->vq->size));
	return i;
}

static void fx_hdr(struct fixture *f, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = {htole32(type), 0, htole64(sector)};
	memcpy(tq_ptr(&f->t, HDR_GPA), &h, sizeof(h));
	*(uint8_t *)tq_ptr(&f->t, STATUS_GPA) = 0xee; /* untouched marker */
}

/* The common three-part request: header, data, status. data_write says
 * whether the data descriptor is device-writable. Returns the used length
 * (or -1 when nothing was used) and the status byte through *status. */
static int64_t fx_req(struct fixture *f, uint32_t type, uint64_t sector, uint32_t data_len,
		      bool data_write, uint8_t *status)
{
	uint16_t used_before = tq_used_idx(&f->t);
	uint16_t head;

	fx_hdr(f, type, sector);
	head = fx_desc(f, HDR_GPA, 16, VIRTQ_DESC_F_NEXT);
	if (data_len)
		fx_desc(f, DATA_GPA, data_len,
			VIRTQ_DESC_F_NEXT | (data_write ? VIRTQ_DESC_F_WRITE : 0));
	fx_desc(f, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE);
	tq_avail(&f->t, head);
	f->dev->ops->queue_notify(f->dev, 0);
	*status = *(uint8_t *)tq_ptr(&f->t, STATUS_GPA);
	if (tq_used_idx(&f->t) == used_before)
		return -1;
	uint32_t id, len;
	tq_used_elem(&f->t, used_before, &id, &len);
	if (id != head)
		return -2;
	return len;
}

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

TEST(config_and_features)
{
	struct fixture f;
	struct virtio_blk_config c;

	CHECK_EQ_INT(fx_init(&f, false, 0), 0);
	CHECK_EQ_INT(f.dev->device_id, VIRTIO_ID_BLOCK);
	CHECK_EQ_INT(f.dev->config_len, sizeof(c));
	f.dev->ops->config_read(f.dev, 0, &c, sizeof(c));
	CHECK_EQ_INT(le64toh(c.capacity), DISK_SIZE / 512);
	CHECK_EQ_INT(le32toh(c.seg_max), VIRTIO_BLK_QUEUE_SIZE - 2);
	CHECK_EQ_INT(le32toh(c.blk_size), 512);
	uint64_t feat = f.dev->ops->get_features(f.dev);
	CHECK(feat & (1ull << VIRTIO_BLK_F_FLUSH));
	CHECK(!(feat & (1ull << VIRTIO_BLK_F_RO)));
	CHECK(feat & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	/* a read that runs past the config returns zeroes there */
	uint8_t tail[8];
	f.dev->ops->config_read(f.dev, sizeof(c) - 4, tail, sizeof(tail));
	CHECK_EQ_INT(tail[7], 0);
	fx_fini(&f);
}

TEST(data_round_trip)
{
	struct fixture f;
	uint8_t st;
	uint8_t *buf = malloc(8192), *check = malloc(8192);

	CHECK_EQ_INT(fx_init(&f, false, 1ull << VIRTIO_BLK_F_FLUSH), 0);
	fill_random(buf, 8192, 1);
	memcpy(tq_ptr(&f.t, DATA_GPA), buf, 8192);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_OUT, 10, 8192, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
	/* It is on the disk at byte 10 * 512. */
	CHECK_EQ_INT(pread(f.fd, check, 8192, 5120), 8192);
	CHECK(memcmp(buf, check, 8192) == 0);
	memset(tq_ptr(&f.t, DATA_GPA), 0, 8192);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_IN, 10, 8192, true, &st), 8193);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
	CHECK(memcmp(tq_ptr(&f.t, DATA_GPA), buf, 8192) == 0);
	/* The last sector of the disk is reachable. */
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, 512, true, &st), 513);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
	CHECK(f.notifies >= 1);
	CHECK_EQ_INT(f.resets, 0);
	fx_fini(&f);
	free(buf);
	free(check);
}

TEST(any_framing)
{
	struct fixture f;
	uint8_t disk[1024];

	/* §2.6.4: header split 5 + 11 bytes, data and status sharing one
	 * writable buffer. */
	CHECK_EQ_INT(fx_init(&f, false, 1ull << VIRTIO_BLK_F_FLUSH), 0);
	fill_random(disk, sizeof(disk), 9);
	CHECK_EQ_INT(pwrite(f.fd, disk, sizeof(disk), 512 * 3), (ssize_t)sizeof(disk));
	fx_hdr(&f, VIRTIO_BLK_T_IN, 3);
	uint16_t head = fx_desc(&f, HDR_GPA, 5, VIRTQ_DESC_F_NEXT);
	fx_desc(&f, HDR_GPA + 5, 11, VIRTQ_DESC_F_NEXT);
	fx_desc(&f, DATA_GPA, 1025, VIRTQ_DESC_F_WRITE);
	tq_avail(&f.t, head);
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(tq_used_idx(&f.t), 1);
	CHECK(memcmp(tq_ptr(&f.t, DATA_GPA), disk, sizeof(disk)) == 0);
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.t, DATA_GPA + 1024), VIRTIO_BLK_S_OK);
	fx_fini(&f);
}

TEST(out_of_range_sectors)
{
	struct fixture f;
	uint8_t st;

	CHECK_EQ_INT(fx_init(&f, false, 1ull << VIRTIO_BLK_F_FLUSH), 0);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, 1024, true, &st), 1025);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_OUT, DISK_SIZE / 512, 512, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_OUT, UINT64_MAX, 512, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_IN, (UINT64_MAX >> 9) + 1, 512, true, &st), 513);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	/* a failed read still writes (zeroes) what it reports as used */
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.t, DATA_GPA), 0);
	/* not a whole number of sectors */
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_IN, 0, 100, true, &st), 101);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	CHECK_EQ_INT(f.bd->stats.rd_ops + f.bd->stats.wr_ops, 0);
	CHECK_EQ_INT(f.resets, 0);
	fx_fini(&f);
}

TEST(read_only_disk)
{
	struct fixture f;
	uint8_t st, check[512];

	CHECK_EQ_INT(fx_init(&f, true, 1ull << VIRTIO_BLK_F_FLUSH), 0);
	uint64_t feat = f.dev->ops->get_features(f.dev);
	CHECK(feat & (1ull << VIRTIO_BLK_F_RO));
	CHECK(!(feat & (1ull << VIRTIO_BLK_F_DISCARD)));
	memset(tq_ptr(&f.t, DATA_GPA), 0x77, 512);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_OUT, 0, 512, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	CHECK_EQ_INT(pread(f.fd, check, 512, 0), 512);
	CHECK_EQ_INT(check[0], 0);
	CHECK_EQ_INT(f.bd->stats.wr_ops, 0);
	/* write zeroes was not offered, so not negotiable */
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_IN, 0, 512, true, &st), 513);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
	fx_fini(&f);
}

TEST(flush_honoured)
{
	struct fixture f;
	uint8_t st;

	/* FLUSH negotiated: writes are cached, FLUSH reaches fdatasync. */
	CHECK_EQ_INT(fx_init(&f, false, 1ull << VIRTIO_BLK_F_FLUSH), 0);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_OUT, 0, 4096, false, &st), 1);
	CHECK_EQ_INT(f.bd->stats.flush_ops, 0);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_FLUSH, 0, 0, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
	CHECK_EQ_INT(f.bd->stats.flush_ops, 1);
	CHECK_EQ_INT(counted_flushes, 1);
	fx_fini(&f);

	/* Not negotiated: every write is written through. */
	CHECK_EQ_INT(fx_init(&f, false, 0), 0);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_OUT, 0, 4096, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_OUT, 8, 512, false, &st), 1);
	CHECK_EQ_INT(f.bd->stats.flush_ops, 2);
	CHECK_EQ_INT(counted_flushes, 2);
	fx_fini(&f);
}

TEST(get_id)
{
	struct fixture f;
	uint8_t st;
	char id[21] = {0};

	CHECK_EQ_INT(fx_init(&f, false, 0), 0);
	memset(tq_ptr(&f.t, DATA_GPA), 'x', 64);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_GET_ID, 0, 20, true, &st), 21);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
	memcpy(id, tq_ptr(&f.t, DATA_GPA), 20);
	CHECK_STR(id, "test-disk.raw");
	virtio_blk_set_id(f.dev, "serial-0123456789abcdefXYZ");
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_GET_ID, 0, 64, true, &st), 65);
	memcpy(id, tq_ptr(&f.t, DATA_GPA), 20);
	CHECK_STR(id, "serial-0123456789abc");
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.t, DATA_GPA + 20), 0);
	fx_fini(&f);
}

TEST(wrong_direction_and_unknown_type)
{
	struct fixture f;
	uint8_t st;

	CHECK_EQ_INT(fx_init(&f, false, 1ull << VIRTIO_BLK_F_FLUSH), 0);
	/* a read whose data buffer is device-readable */
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_IN, 0, 512, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	/* a write whose data buffer is device-writable */
	memset(tq_ptr(&f.t, DATA_GPA), 0x33, 512);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_OUT, 0, 512, true, &st), 513);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	CHECK_EQ_INT(f.bd->stats.wr_ops, 0);
	CHECK_EQ_INT(fx_req(&f, 0x1234, 0, 0, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ_INT(f.resets, 0);
	fx_fini(&f);
}

TEST(malformed_requests_need_reset)
{
	struct fixture f;

	/* header shorter than 16 bytes */
	CHECK_EQ_INT(fx_init(&f, false, 0), 0);
	fx_hdr(&f, VIRTIO_BLK_T_IN, 0);
	uint16_t head = fx_desc(&f, HDR_GPA, 8, VIRTQ_DESC_F_NEXT);
	fx_desc(&f, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE);
	tq_avail(&f.t, head);
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(f.resets, 1);
	CHECK_EQ_INT(tq_used_idx(&f.t), 0);
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.t, STATUS_GPA), 0xee);
	/* broken until reset: more kicks do nothing */
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(f.resets, 1);
	fx_fini(&f);

	/* status byte not writable */
	CHECK_EQ_INT(fx_init(&f, false, 0), 0);
	fx_hdr(&f, VIRTIO_BLK_T_FLUSH, 0);
	head = fx_desc(&f, HDR_GPA, 16, VIRTQ_DESC_F_NEXT);
	fx_desc(&f, STATUS_GPA, 1, 0);
	tq_avail(&f.t, head);
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(f.resets, 1);
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.t, STATUS_GPA), 0xee);
	fx_fini(&f);

	/* a descriptor loop in the chain */
	CHECK_EQ_INT(fx_init(&f, false, 0), 0);
	tq_desc(&f.t, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	tq_avail(&f.t, 0);
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(f.resets, 1);
	/* reset makes the device usable again */
	f.dev->ops->reset(f.dev);
	CHECK(!f.vq->broken);
	CHECK_EQ_INT(f.vq->size, VIRTIO_BLK_QUEUE_SIZE);
	fx_fini(&f);
}

TEST(discard_and_write_zeroes)
{
	struct fixture f;
	uint8_t st, buf[2048];
	struct {
		uint64_t sector;
		uint32_t num, flags;
	} seg;

	CHECK_EQ_INT(fx_init(&f, false, (1ull << VIRTIO_BLK_F_FLUSH) |
				 (1ull << VIRTIO_BLK_F_WRITE_ZEROES) | (1ull << VIRTIO_BLK_F_DISCARD)), 0);
	memset(buf, 0x44, sizeof(buf));
	CHECK_EQ_INT(pwrite(f.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	seg = (typeof(seg)){htole64(1), htole32(2), 0};
	memcpy(tq_ptr(&f.t, DATA_GPA), &seg, 16);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
	CHECK_EQ_INT(pread(f.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	CHECK_EQ_INT(buf[511], 0x44);
	CHECK_EQ_INT(buf[512], 0);
	CHECK_EQ_INT(buf[1535], 0);
	CHECK_EQ_INT(buf[1536], 0x44);
	/* unknown flag bits, and unmap on a discard, are unsupported */
	seg.flags = htole32(2);
	memcpy(tq_ptr(&f.t, DATA_GPA), &seg, 16);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_UNSUPP);
	seg.flags = htole32(VIRTIO_BLK_DWZ_F_UNMAP);
	memcpy(tq_ptr(&f.t, DATA_GPA), &seg, 16);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_DISCARD, 0, 16, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_UNSUPP);
	seg = (typeof(seg)){htole64(DISK_SIZE / 512 - 1), htole32(2), 0};
	memcpy(tq_ptr(&f.t, DATA_GPA), &seg, 16);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_DISCARD, 0, 16, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	/* a segment list that is not whole segments */
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_DISCARD, 0, 12, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	fx_fini(&f);
}

TEST(discard_larger_than_advertised)
{
	struct fixture f;
	uint8_t st;
	struct {
		uint64_t sector;
		uint32_t num, flags;
	} seg = {0, htole32(0x400000), 0}; /* 2 GiB: one sector over max_write_zeroes_sectors */

	fx_disk_size = 4 * GiB;
	CHECK_EQ_INT(fx_init(&f, false, 1ull << VIRTIO_BLK_F_WRITE_ZEROES), 0);
	fx_disk_size = DISK_SIZE;
	memcpy(tq_ptr(&f.t, DATA_GPA), &seg, 16);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
	seg.num = htole32(8);
	memcpy(tq_ptr(&f.t, DATA_GPA), &seg, 16);
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false, &st), 1);
	CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
	fx_fini(&f);
}

TEST(idle_before_driver_ok_and_after_reset)
{
	struct fixture f;
	uint8_t st;

	CHECK_EQ_INT(fx_init(&f, false, 0), 0);
	f.dev->ops->reset(f.dev);
	/* re-program the queue as a driver would after reset, but do not
	 * set DRIVER_OK: the device must not touch it */
	uint16_t max = f.vq->max_size;
	*f.vq = f.t.vq;
	f.vq->max_size = max;
	CHECK_EQ_INT(fx_req(&f, VIRTIO_BLK_T_IN, 0, 512, true, &st), -1);
	CHECK_EQ_INT(st, 0xee);
	CHECK_EQ_INT(f.dev->ops->activate(f.dev), 0);
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(tq_used_idx(&f.t), 1);
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.t, STATUS_GPA), VIRTIO_BLK_S_OK);
	fx_fini(&f);
}

TEST(batch_gets_one_interrupt)
{
	struct fixture f;

	CHECK_EQ_INT(fx_init(&f, false, 0), 0);
	for (int i = 0; i < 5; i++) {
		fx_hdr(&f, VIRTIO_BLK_T_FLUSH, 0);
		uint16_t head = fx_desc(&f, HDR_GPA, 16, VIRTQ_DESC_F_NEXT);
		fx_desc(&f, STATUS_GPA + 1 + (unsigned)i, 1, VIRTQ_DESC_F_WRITE);
		tq_avail(&f.t, head);
	}
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(tq_used_idx(&f.t), 5);
	CHECK_EQ_INT(f.notifies, 1);
	/* the driver suppressed interrupts: a kick with nothing new is silent */
	f.dev->ops->queue_notify(f.dev, 0);
	CHECK_EQ_INT(f.notifies, 1);
	fx_fini(&f);
}

HARNESS_MAIN
