/* fuzz_virtio_blk: libFuzzer target for virtio-blk request handling. The
 * input describes one request chain:
 *   byte 0   bit 0 FLUSH, bit 1 DISCARD, bit 2 WRITE_ZEROES negotiated,
 *            bit 3 use the read-only disk, bit 4 EVENT_IDX
 *   byte 1   number of descriptors (1..16 used)
 *   then per descriptor 4 bytes: u16 length, u8 flags (bit 0 WRITE,
 *            bit 1 INDIRECT), u8 gap placed before the buffer
 *   then the initial content of the data area (header, data, segments).
 * Buffers are laid out one after another in a 64 KiB data area of guest
 * RAM, so long or gapped ones run off the end of RAM on purpose. The chain
 * goes through the full device path: pop, handle, push, notify. The disk
 * is a 64 KiB raw image in a memfd. */
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"
#include "lib/log.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/queue.h"

#define FZ_RAM_GPA 0x100000ull
#define FZ_RING_BYTES 0x4000u
#define FZ_DATA_BYTES 0x10000u
#define FZ_RAM_SIZE (FZ_RING_BYTES + FZ_DATA_BYTES)
#define FZ_QSIZE 16
#define FZ_DISK_BYTES (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	uint8_t *ram;
	struct guest_mem mem;
	struct block_dev *bd[2];
	struct virtio_dev *dev[2];
};

static void fz_notify(struct virtio_dev *dev, unsigned q)
{
}

static void fz_needs_reset(struct virtio_dev *dev)
{
}

static struct block_dev *fz_disk(unsigned flags)
{
	struct block_dev *bd = NULL;
	int fd = memfd_create("fuzz-disk", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, FZ_DISK_BYTES) < 0)
		abort();
	if (block_open_fd(fd, "raw", flags, "fuzz-disk", &bd) < 0)
		abort();
	return bd;
}

static struct fz *fz_get(void)
{
	static struct fz f;

	if (f.ram)
		return &f;
	log_set_level(LOG_LEVEL_ERROR);
	f.ram = calloc(1, FZ_RAM_SIZE);
	if (!f.ram || guest_mem_add_region(&f.mem, FZ_RAM_GPA, FZ_RAM_SIZE, f.ram) < 0)
		abort();
	f.bd[0] = fz_disk(0);
	f.bd[1] = fz_disk(BLOCK_OPEN_READ_ONLY);
	for (int i = 0; i < 2; i++) {
		if (virtio_blk_new(f.bd[i], i == 1, &f.dev[i]) < 0)
			abort();
		f.dev[i]->mem = &f.mem;
		f.dev[i]->notify_queue = fz_notify;
		f.dev[i]->set_needs_reset = fz_needs_reset;
	}
	return &f;
}

static void put_desc(uint8_t *table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct virtq_desc d = {htole64(addr), htole32(len), htole16(flags), htole16(next)};
	memcpy(table + 16 * i, &d, sizeof(d));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *f = fz_get();
	struct virtio_dev *dev;
	struct virtq *vq;
	uint8_t feat, *desc, *avail;
	unsigned n, cursor = 0;

	if (size < 2)
		return 0;
	feat = data[0];
	n = data[1] % FZ_QSIZE + 1;
	data += 2;
	size -= 2;
	if (size < 4 * n)
		return 0;

	dev = f->dev[(feat >> 3) & 1];
	dev->ops->reset(dev);
	dev->driver_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
			       ((feat & 1) ? 1ull << VIRTIO_BLK_F_FLUSH : 0) |
			       ((feat & 2) ? 1ull << VIRTIO_BLK_F_DISCARD : 0) |
			       ((feat & 4) ? 1ull << VIRTIO_BLK_F_WRITE_ZEROES : 0) |
			       ((feat & 16) ? 1ull << VIRTIO_F_EVENT_IDX : 0);
	vq = &dev->queues[0];
	vq->size = FZ_QSIZE;
	vq->desc_gpa = FZ_RAM_GPA;
	vq->avail_gpa = FZ_RAM_GPA + 0x1000;
	vq->used_gpa = FZ_RAM_GPA + 0x2000;
	vq->enabled = true;

	memset(f->ram, 0, FZ_RAM_SIZE);
	desc = f->ram;
	avail = f->ram + 0x1000;
	for (unsigned i = 0; i < n; i++) {
		uint16_t len = (uint16_t)(data[4 * i] | data[4 * i + 1] << 8);
		uint8_t fl = data[4 * i + 2], gap = data[4 * i + 3];
		uint16_t flags = (fl & 1 ? VIRTQ_DESC_F_WRITE : 0) | (fl & 2 ? VIRTQ_DESC_F_INDIRECT : 0) |
				 (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		cursor += gap;
		put_desc(desc, i, FZ_RAM_GPA + FZ_RING_BYTES + cursor, len, flags, (uint16_t)(i + 1));
		cursor += len;
	}
	data += 4 * n;
	size -= 4 * n;
	memcpy(f->ram + FZ_RING_BYTES, data, size < FZ_DATA_BYTES ? size : FZ_DATA_BYTES);
	/* avail ring: one chain at head 0 */
	avail[2] = 1;
	avail[4] = 0;

	if (dev->ops->activate(dev) == 0)
		dev->ops->queue_notify(dev, 0);
	return 0;
}
