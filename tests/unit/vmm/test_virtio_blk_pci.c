/* Cross-part test: virtio-blk behind the virtio-pci transport, driven the
 * way a guest driver drives it (virtio 1.2 §3.1.1 initialisation through
 * BAR 0 register writes, requests kicked through the notify region, the
 * device config read through the device-config window). It checks the
 * contract in virtio.h from both sides: feature negotiation reaches the
 * device, DRIVER_OK activates it, a hostile chain ends in NEEDS_RESET and a
 * reset makes the device usable again. */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"
#include "harness.h"
#include "lib/log.h"
#include "lib/util.h"
#include "virtq_test.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/pci.h"

#define HDR_GPA (TQ_DATA_GPA)
#define STATUS_GPA (TQ_DATA_GPA + 0x100)
#define DATA_GPA (TQ_DATA_GPA + 0x1000)

struct fixture {
	struct tq t;
	int fd;
	struct block_dev *bd;
	struct virtio_dev *dev;
	struct virtio_pci *vp;
};

static void bar_w(struct fixture *f, uint64_t off, uint64_t v, unsigned len)
{
	f->vp->pci.ops->bar_write(&f->vp->pci, 0, off, &v, len);
}

static uint64_t bar_r(struct fixture *f, uint64_t off, unsigned len)
{
	uint64_t v = 0;
	f->vp->pci.ops->bar_read(&f->vp->pci, 0, off, &v, len);
	return v;
}

static uint8_t status(struct fixture *f)
{
	return (uint8_t)bar_r(f, VIRTIO_PCI_COMMON_STATUS, 1);
}

static int fx_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	log_set_level(LOG_LEVEL_ERROR);
	if (tq_init(&f->t, 16) < 0)
		return -1;
	f->fd = memfd_create("disk", MFD_CLOEXEC);
	if (f->fd < 0 || ftruncate(f->fd, 1 * MiB) < 0)
		return -1;
	if (block_open_fd(dup(f->fd), "raw", 0, "pci-disk", &f->bd) < 0)
		return -1;
	if (virtio_blk_new(f->bd, false, &f->dev) < 0)
		return -1;
	f->dev->mem = &f->t.mem;
	return virtio_pci_new(f->dev, NULL, &f->vp);
}

static void fx_fini(struct fixture *f)
{
	virtio_pci_free(f->vp);
	virtio_blk_free(f->dev);
	block_free(f->bd);
	close(f->fd);
	tq_fini(&f->t);
}

/* §3.1.1 steps 1-8 for one queue; returns the final status byte. */
static uint8_t driver_init(struct fixture *f, uint64_t want)
{
	bar_w(f, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	bar_w(f, VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	bar_w(f, VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	bar_w(f, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	uint64_t offered = bar_r(f, VIRTIO_PCI_COMMON_DF, 4);
	bar_w(f, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	offered |= bar_r(f, VIRTIO_PCI_COMMON_DF, 4) << 32;
	want &= offered;
	bar_w(f, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	bar_w(f, VIRTIO_PCI_COMMON_GF, (uint32_t)want, 4);
	bar_w(f, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	bar_w(f, VIRTIO_PCI_COMMON_GF, want >> 32, 4);
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	bar_w(f, VIRTIO_PCI_COMMON_STATUS, s, 1);
	if (!(status(f) & VIRTIO_STATUS_FEATURES_OK))
		return status(f);
	bar_w(f, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	bar_w(f, VIRTIO_PCI_COMMON_Q_SIZE, f->t.vq.size, 2);
	bar_w(f, VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)f->t.vq.desc_gpa, 4);
	bar_w(f, VIRTIO_PCI_COMMON_Q_DESCHI, f->t.vq.desc_gpa >> 32, 4);
	bar_w(f, VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)f->t.vq.avail_gpa, 4);
	bar_w(f, VIRTIO_PCI_COMMON_Q_AVAILHI, f->t.vq.avail_gpa >> 32, 4);
	bar_w(f, VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)f->t.vq.used_gpa, 4);
	bar_w(f, VIRTIO_PCI_COMMON_Q_USEDHI, f->t.vq.used_gpa >> 32, 4);
	bar_w(f, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	bar_w(f, VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_STATUS_DRIVER_OK, 1);
	return status(f);
}

static void submit(struct fixture *f, uint16_t base, uint32_t type, uint64_t sector, uint32_t len,
		   bool write_data)
{
	struct virtio_blk_outhdr h = {htole32(type), 0, htole64(sector)};
	memcpy(tq_ptr(&f->t, HDR_GPA), &h, sizeof(h));
	*(uint8_t *)tq_ptr(&f->t, STATUS_GPA) = 0xee;
	tq_desc(&f->t, base, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(base + 1));
	tq_desc(&f->t, (uint16_t)(base + 1), DATA_GPA, len,
		VIRTQ_DESC_F_NEXT | (write_data ? VIRTQ_DESC_F_WRITE : 0), (uint16_t)(base + 2));
	tq_desc(&f->t, (uint16_t)(base + 2), STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	tq_avail(&f->t, base);
	bar_w(f, VIRTIO_PCI_NOTIFY_OFF, 0, 2); /* the driver's notify write */
}

TEST(guest_driver_round_trip)
{
	struct fixture f;
	uint64_t feat = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_FLUSH) |
			(1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_F_INDIRECT_DESC);

	CHECK_EQ_INT(fx_init(&f), 0);
	/* device config through the device window: capacity in sectors */
	uint64_t cap = bar_r(&f, VIRTIO_PCI_DEVICE_OFF, 4) | bar_r(&f, VIRTIO_PCI_DEVICE_OFF + 4, 4) << 32;
	CHECK_EQ_INT(cap, 2048);
	CHECK(driver_init(&f, feat) & VIRTIO_STATUS_DRIVER_OK);
	CHECK(f.dev->queues[0].event_idx);
	CHECK(virtio_has_feature(f.dev, VIRTIO_BLK_F_FLUSH));

	memset(tq_ptr(&f.t, DATA_GPA), 0x3c, 4096);
	submit(&f, 0, VIRTIO_BLK_T_OUT, 8, 4096, false);
	CHECK_EQ_INT(tq_used_idx(&f.t), 1);
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.t, STATUS_GPA), VIRTIO_BLK_S_OK);
	uint8_t disk[4096];
	CHECK_EQ_INT(pread(f.fd, disk, sizeof(disk), 8 * 512), 4096);
	CHECK_EQ_INT(disk[4095], 0x3c);
	memset(tq_ptr(&f.t, DATA_GPA), 0, 4096);
	submit(&f, 3, VIRTIO_BLK_T_IN, 8, 4096, true);
	CHECK_EQ_INT(tq_used_idx(&f.t), 2);
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.t, DATA_GPA + 4095), 0x3c);
	/* an interrupt was recorded in the ISR (no MSI-X enabled) */
	CHECK(bar_r(&f, VIRTIO_PCI_ISR_OFF, 1) & 1);
	CHECK(!(status(&f) & VIRTIO_STATUS_NEEDS_RESET));
	fx_fini(&f);
}

TEST(hostile_chain_then_reset)
{
	struct fixture f;
	uint64_t feat = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_FLUSH);

	CHECK_EQ_INT(fx_init(&f), 0);
	CHECK(driver_init(&f, feat) & VIRTIO_STATUS_DRIVER_OK);
	tq_desc(&f.t, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	tq_desc(&f.t, 1, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 0); /* loop */
	tq_avail(&f.t, 0);
	bar_w(&f, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	CHECK(status(&f) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ_INT(tq_used_idx(&f.t), 0);
	/* the driver resets and starts over with fresh rings */
	tq_fini(&f.t);
	CHECK_EQ_INT(tq_init(&f.t, 16), 0);
	f.dev->mem = &f.t.mem;
	CHECK_EQ_INT(driver_init(&f, feat) & VIRTIO_STATUS_NEEDS_RESET, 0);
	submit(&f, 0, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	CHECK_EQ_INT(tq_used_idx(&f.t), 1);
	CHECK_EQ_INT(f.bd->stats.flush_ops, 1);
	fx_fini(&f);
}

TEST(features_not_offered_are_refused)
{
	struct fixture f;

	CHECK_EQ_INT(fx_init(&f), 0);
	/* bypass the masking in driver_init: ask for RO on a writable disk */
	bar_w(&f, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	bar_w(&f, VIRTIO_PCI_COMMON_STATUS, 3, 1);
	bar_w(&f, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	bar_w(&f, VIRTIO_PCI_COMMON_GF, 1u << VIRTIO_BLK_F_RO, 4);
	bar_w(&f, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	bar_w(&f, VIRTIO_PCI_COMMON_GF, 1, 4);
	bar_w(&f, VIRTIO_PCI_COMMON_STATUS, 3 | VIRTIO_STATUS_FEATURES_OK, 1);
	CHECK(!(status(&f) & VIRTIO_STATUS_FEATURES_OK));
	fx_fini(&f);
}

HARNESS_MAIN
