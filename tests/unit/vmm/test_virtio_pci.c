/* Unit tests for src/vmm/pci.c and src/vmm/virtio/pci.c: configuration
 * mechanism #1, BAR sizing, the virtio capabilities, the status state
 * machine (FEATURES_OK only for a subset, queue registers frozen after
 * DRIVER_OK, reset on 0), queue notifications, ISR, MSI-X masking and the
 * PBA, the PCI_CFG window, and a random-access storm that must not crash.
 * The device is a fake; guest memory is a calloc'd buffer. */
#include "vmm/pci.h"
#include "vmm/virtio/pci.h"

#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vmm/layout.h"

#define RAM_SIZE (1 * MiB)

struct fake {
	struct virtio_dev dev;
	int activated, resets, activate_ret;
	unsigned notified[VIRTIO_MAX_QUEUES];
	uint8_t config[8];
	/* platform side */
	int fired[VIRTIO_MAX_QUEUES + 1];
	int routes;
	uint64_t route_addr[VIRTIO_MAX_QUEUES + 1];
	uint32_t route_data[VIRTIO_MAX_QUEUES + 1];
	int attached, detached;
	uint64_t attach_gpa[VIRTIO_MAX_QUEUES];
};

static uint8_t *ram;
static struct guest_mem mem;
static struct pci_bus bus;
static struct fake fk;
static struct virtio_pci *vp;

static uint64_t fake_get_features(struct virtio_dev *d)
{
	return (1ull << 5) | (1ull << 9); /* two device feature bits */
}

static void fake_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	memcpy(data, fk.config + off, len);
}

static void fake_config_write(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	memcpy(fk.config + off, data, len);
}

static int fake_activate(struct virtio_dev *d)
{
	fk.activated++;
	return fk.activate_ret;
}

static void fake_queue_notify(struct virtio_dev *d, unsigned q)
{
	fk.notified[q]++;
	d->notify_queue(d, q);
}

static void fake_reset(struct virtio_dev *d)
{
	fk.resets++;
}

static const struct virtio_dev_ops fake_ops = {
	.get_features = fake_get_features,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.activate = fake_activate,
	.queue_notify = fake_queue_notify,
	.reset = fake_reset,
};

static int plat_route(void *o, struct virtio_pci *p, unsigned v, uint64_t addr, uint32_t data)
{
	fk.routes++;
	fk.route_addr[v] = addr;
	fk.route_data[v] = data;
	return 0;
}

static void plat_fire(void *o, struct virtio_pci *p, unsigned v)
{
	fk.fired[v]++;
}

static int plat_attach(void *o, struct virtio_pci *p, unsigned q, uint64_t gpa)
{
	fk.attached++;
	fk.attach_gpa[q] = gpa;
	return 0;
}

static void plat_detach(void *o, struct virtio_pci *p, unsigned q)
{
	fk.detached++;
}

/* config mechanism #1 helpers */
static uint32_t cfg_read(unsigned slot, unsigned reg, unsigned len)
{
	uint32_t addr = 0x80000000u | (slot << 11) | (reg & 0xfc), v = 0;
	CHECK(pci_bus_pio(&bus, 0xcf8, &addr, 4, true));
	CHECK(pci_bus_pio(&bus, (uint16_t)(0xcfc + (reg & 3)), &v, len, false));
	return len == 4 ? v : v & ((1u << (8 * len)) - 1);
}

static void cfg_write(unsigned slot, unsigned reg, uint32_t v, unsigned len)
{
	uint32_t addr = 0x80000000u | (slot << 11) | (reg & 0xfc);
	CHECK(pci_bus_pio(&bus, 0xcf8, &addr, 4, true));
	CHECK(pci_bus_pio(&bus, (uint16_t)(0xcfc + (reg & 3)), &v, len, true));
}

static uint64_t bar(void)
{
	return virtio_pci_bar_addr(vp);
}

static uint64_t rd(uint64_t off, unsigned len)
{
	uint64_t v = 0;
	CHECK(pci_bus_mmio(&bus, bar() + off, &v, len, false));
	return v;
}

static void wr(uint64_t off, uint64_t v, unsigned len)
{
	CHECK(pci_bus_mmio(&bus, bar() + off, &v, len, true));
}

static void setup(unsigned nq)
{
	if (vp)
		virtio_pci_free(vp);
	log_set_level(LOG_LEVEL_ERROR);
	free(ram);
	ram = calloc(1, RAM_SIZE);
	memset(&mem, 0, sizeof(mem));
	guest_mem_add_region(&mem, 0, RAM_SIZE, ram);
	memset(&fk, 0, sizeof(fk));
	memcpy(fk.config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	fk.dev.ops = &fake_ops;
	fk.dev.device_id = VIRTIO_ID_BLOCK;
	fk.dev.config_len = 8;
	fk.dev.num_queues = nq;
	fk.dev.mem = &mem;
	for (unsigned q = 0; q < nq; q++)
		fk.dev.queues[q].max_size = 256;
	CHECK_EQ_INT(pci_bus_init(&bus, LAYOUT_PCI_MMIO_START, LAYOUT_PCI_MMIO_END), 0);
	struct virtio_pci_platform plat = {NULL, plat_route, plat_fire, plat_attach, plat_detach};
	CHECK_EQ_INT(virtio_pci_new(&fk.dev, &plat, &vp), 0);
	CHECK_EQ_INT(pci_bus_add(&bus, &vp->pci), 0);
	CHECK_EQ_INT(vp->pci.slot, 1);
	/* the guest turns on memory decoding, as Linux does when enabling */
	cfg_write(1, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
}

/* Take the device to FEATURES_OK with queue 0 configured at valid rings. */
static void negotiate(uint64_t features)
{
	wr(VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	wr(VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)features, 4);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)(features >> 32), 4);
	wr(VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
}

static void setup_queue0(uint16_t size)
{
	wr(VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	wr(VIRTIO_PCI_COMMON_Q_SIZE, size, 2);
	/* 64-bit addresses written as two halves (§4.1.3.1) */
	wr(VIRTIO_PCI_COMMON_Q_DESCLO, 0x10000, 4);
	wr(VIRTIO_PCI_COMMON_Q_DESCHI, 0, 4);
	wr(VIRTIO_PCI_COMMON_Q_AVAILLO, 0x20000, 4);
	wr(VIRTIO_PCI_COMMON_Q_AVAILHI, 0, 4);
	wr(VIRTIO_PCI_COMMON_Q_USEDLO, 0x30000, 4);
	wr(VIRTIO_PCI_COMMON_Q_USEDHI, 0, 4);
	wr(VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
	wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
}

static const uint8_t ok_status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;

TEST(config_mechanism_1)
{
	setup(1);
	CHECK_EQ_INT(cfg_read(0, 0, 4) & 0xffff, 0x8086);        /* host bridge */
	CHECK_EQ_INT(cfg_read(0, 0x0a, 2), 0x0600);              /* class: host bridge */
	CHECK_EQ_INT(cfg_read(1, 0, 2), VIRTIO_PCI_VENDOR);
	CHECK_EQ_INT(cfg_read(1, 2, 2), 0x1040 + VIRTIO_ID_BLOCK);
	CHECK_EQ_INT(cfg_read(1, PCI_CFG_REVISION, 1), 1);
	CHECK(cfg_read(1, PCI_CFG_SUBSYS_ID, 2) >= 0x40);
	CHECK_EQ_INT(cfg_read(7, 0, 4), 0xffffffffu);            /* empty slot */
	/* function 1 and bus 1 do not exist */
	uint32_t addr = 0x80000000u | (1 << 11) | (1 << 8), v = 0;
	pci_bus_pio(&bus, 0xcf8, &addr, 4, true);
	pci_bus_pio(&bus, 0xcfc, &v, 4, false);
	CHECK_EQ_INT(v, 0xffffffffu);
	addr = 0x80010000u | (1 << 11);
	pci_bus_pio(&bus, 0xcf8, &addr, 4, true);
	pci_bus_pio(&bus, 0xcfc, &v, 4, false);
	CHECK_EQ_INT(v, 0xffffffffu);
	/* CONFIG_ADDRESS reads back (Linux's pci_check_type1) */
	addr = 0x80000000u;
	pci_bus_pio(&bus, 0xcf8, &addr, 4, true);
	v = 0;
	pci_bus_pio(&bus, 0xcf8, &v, 4, false);
	CHECK_EQ_INT(v, 0x80000000u);
	/* 0xcf9 (reset control) is not the bus's */
	uint8_t b = 6;
	CHECK(!pci_bus_pio(&bus, 0xcf9, &b, 1, true));
	/* read-only fields stay */
	cfg_write(1, 0, 0xdeadbeef, 4);
	CHECK_EQ_INT(cfg_read(1, 0, 2), VIRTIO_PCI_VENDOR);
}

TEST(bar_sizing)
{
	setup(1);
	uint32_t orig = cfg_read(1, PCI_CFG_BAR0, 4);
	CHECK(orig >= LAYOUT_PCI_MMIO_START && orig < LAYOUT_PCI_MMIO_END);
	CHECK_EQ_INT(orig % VIRTIO_PCI_BAR_SIZE, 0);
	cfg_write(1, PCI_CFG_BAR0, 0xffffffff, 4);
	CHECK_EQ_INT(cfg_read(1, PCI_CFG_BAR0, 4), (uint32_t)~(VIRTIO_PCI_BAR_SIZE - 1));
	CHECK_EQ_INT(cfg_read(1, PCI_CFG_BAR0 + 4, 4), 0);        /* no BAR 1 */
	cfg_write(1, PCI_CFG_BAR0, orig, 4);
	CHECK_EQ_INT(cfg_read(1, PCI_CFG_BAR0, 4), orig);
	/* memory decoding off: the BAR does not answer */
	cfg_write(1, PCI_CFG_COMMAND, 0, 2);
	uint32_t v;
	CHECK(!pci_bus_mmio(&bus, orig, &v, 4, false));
	cfg_write(1, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY, 2);
	CHECK(pci_bus_mmio(&bus, orig, &v, 4, false));
	/* the guest moves the BAR */
	cfg_write(1, PCI_CFG_BAR0, 0xd0000000, 4);
	CHECK_EQ_INT(bar(), 0xd0000000);
	CHECK(!pci_bus_mmio(&bus, orig, &v, 4, false));
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_NUMQ, 2), 1);
}

TEST(capabilities)
{
	setup(2);
	CHECK(cfg_read(1, PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST);
	unsigned ptr = cfg_read(1, PCI_CFG_CAP_PTR, 1), seen = 0, types = 0, msix = 0, hops = 0;
	while (ptr && hops++ < 48) {
		unsigned id = cfg_read(1, ptr, 1);
		if (id == 0x09) {
			unsigned type = cfg_read(1, ptr + 3, 1);
			types |= 1u << type;
			CHECK_EQ_INT(cfg_read(1, ptr + 4, 1), 0);   /* BAR 0 */
			uint32_t off = cfg_read(1, ptr + 8, 4), len = cfg_read(1, ptr + 12, 4);
			if (type != 5)
				CHECK(off + len <= VIRTIO_PCI_BAR_SIZE && len > 0);
			if (type == 2)
				CHECK_EQ_INT(cfg_read(1, ptr + 16, 4), VIRTIO_PCI_NOTIFY_MULT);
			seen++;
		} else if (id == 0x11) {
			msix++;
			CHECK_EQ_INT(cfg_read(1, ptr + 2, 2) & 0x7ff, 2);   /* 3 vectors - 1 */
		}
		ptr = cfg_read(1, ptr + 1, 1);
	}
	CHECK_EQ_INT(seen, 5);
	CHECK_EQ_INT(types, 0x3e);   /* common, notify, isr, device, pci cfg */
	CHECK_EQ_INT(msix, 1);
}

TEST(feature_negotiation)
{
	setup(1);
	uint64_t offered = rd(VIRTIO_PCI_COMMON_DF, 4);
	wr(VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	offered |= rd(VIRTIO_PCI_COMMON_DF, 4) << 32;
	CHECK(offered & (1ull << VIRTIO_F_VERSION_1));
	CHECK(offered & (1ull << 5));
	CHECK(!(offered & (1ull << VIRTIO_F_ACCESS_PLATFORM)));
	wr(VIRTIO_PCI_COMMON_DFSELECT, 7, 4);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_DF, 4), 0);

	/* a feature we did not offer: FEATURES_OK does not stick */
	negotiate((1ull << VIRTIO_F_VERSION_1) | (1ull << 6));
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK, 0);
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1), 0);
	/* a legacy driver (no VERSION_1) is refused too */
	negotiate(1ull << 5);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK, 0);
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	/* a subset is accepted and reaches the device */
	negotiate((1ull << VIRTIO_F_VERSION_1) | (1ull << 5) | (1ull << VIRTIO_F_EVENT_IDX));
	CHECK(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK);
	CHECK(virtio_has_feature(&fk.dev, 5));
	CHECK(fk.dev.queues[0].event_idx);
	CHECK(!fk.dev.queues[0].indirect);
	/* driver features are frozen after FEATURES_OK */
	wr(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(VIRTIO_PCI_COMMON_GF, 0, 4);
	CHECK(virtio_has_feature(&fk.dev, 5));
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_GF, 4), (1u << 5) | (1u << VIRTIO_F_EVENT_IDX));
}

TEST(driver_ok_and_frozen_queue_registers)
{
	setup(2);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
	negotiate(1ull << VIRTIO_F_VERSION_1);
	setup_queue0(128);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 128);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0x10000);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_Q_NOFF, 2), 0);
	CHECK_EQ_INT(fk.activated, 0);
	wr(VIRTIO_PCI_COMMON_STATUS, ok_status, 1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1), ok_status);
	CHECK_EQ_INT(fk.activated, 1);
	CHECK_EQ_INT(fk.attached, 1);   /* only queue 0 is enabled */
	CHECK_EQ_INT(fk.attach_gpa[0], bar() + VIRTIO_PCI_NOTIFY_OFF);
	struct virtq *vq = &fk.dev.queues[0];
	CHECK_EQ_INT(vq->size, 128);
	CHECK_EQ_INT(vq->desc_gpa, 0x10000);
	CHECK_EQ_INT(vq->avail_gpa, 0x20000);
	CHECK_EQ_INT(vq->used_gpa, 0x30000);
	CHECK(vq->enabled);

	/* after DRIVER_OK every queue register write is ignored */
	wr(VIRTIO_PCI_COMMON_Q_SIZE, 16, 2);
	wr(VIRTIO_PCI_COMMON_Q_DESCLO, 0x40000, 4);
	wr(VIRTIO_PCI_COMMON_Q_AVAILHI, 0x1, 4);
	wr(VIRTIO_PCI_COMMON_Q_MSIX, 0, 2);
	wr(VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	CHECK_EQ_INT(vq->size, 128);
	CHECK_EQ_INT(vq->desc_gpa, 0x10000);
	CHECK_EQ_INT(vq->avail_gpa, 0x20000);
	CHECK_EQ_INT(vp->queue_vector[0], 1);
	CHECK(!fk.dev.queues[1].enabled);
	/* writing DRIVER_OK again does not re-activate; bits cannot be cleared */
	wr(VIRTIO_PCI_COMMON_STATUS, ok_status, 1);
	wr(VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	CHECK_EQ_INT(fk.activated, 1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1), ok_status);

	/* notifications reach the device; out of range or disabled do not */
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	CHECK_EQ_INT(fk.notified[0], 1);
	virtio_pci_queue_notify(vp, 1);
	virtio_pci_queue_notify(vp, 7);
	virtio_pci_queue_notify(vp, 1000);
	CHECK_EQ_INT(fk.notified[1], 0);

	/* reset: device told, registers back to power-on values */
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK_EQ_INT(fk.resets, 1);
	CHECK_EQ_INT(fk.detached, 1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1), 0);
	wr(VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_PCI_NO_VECTOR);
	CHECK_EQ_INT(fk.dev.driver_features, 0);
	/* notifications after reset are ignored */
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	CHECK_EQ_INT(fk.notified[0], 1);
	/* queue registers work again */
	setup_queue0(64);
	CHECK_EQ_INT(fk.dev.queues[0].size, 64);
}

TEST(driver_ok_rules)
{
	setup(1);
	/* DRIVER_OK without FEATURES_OK */
	wr(VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK, 1);
	CHECK_EQ_INT(fk.activated, 0);
	CHECK(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_DRIVER_OK, 0);
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1), 0);

	/* a queue size that is not a power of 2 */
	negotiate(1ull << VIRTIO_F_VERSION_1);
	setup_queue0(100);
	wr(VIRTIO_PCI_COMMON_STATUS, ok_status, 1);
	CHECK_EQ_INT(fk.activated, 0);
	CHECK(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	CHECK_EQ_INT(fk.notified[0], 0);
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);

	/* rings outside guest RAM */
	negotiate(1ull << VIRTIO_F_VERSION_1);
	setup_queue0(128);
	wr(VIRTIO_PCI_COMMON_Q_USEDLO, RAM_SIZE - 16, 4);
	wr(VIRTIO_PCI_COMMON_STATUS, ok_status, 1);
	CHECK_EQ_INT(fk.activated, 0);
	CHECK(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);

	/* the device refuses to start */
	fk.activate_ret = -EIO;
	negotiate(1ull << VIRTIO_F_VERSION_1);
	setup_queue0(128);
	wr(VIRTIO_PCI_COMMON_STATUS, ok_status, 1);
	CHECK_EQ_INT(fk.activated, 1);
	CHECK(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* the driver cannot set NEEDS_RESET itself */
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_NEEDS_RESET, 1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1), VIRTIO_STATUS_ACKNOWLEDGE);
}

TEST(device_config_and_isr)
{
	setup(1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_DEVICE_OFF, 4), 0x44332211);
	CHECK_EQ_INT(rd(VIRTIO_PCI_DEVICE_OFF + 4, 2), 0x6655);
	CHECK_EQ_INT(rd(VIRTIO_PCI_DEVICE_OFF + 6, 4), 0);      /* straddles config_len */
	CHECK_EQ_INT(rd(VIRTIO_PCI_DEVICE_OFF + 100, 4), 0);    /* beyond */
	wr(VIRTIO_PCI_DEVICE_OFF + 1, 0xaa, 1);
	CHECK_EQ_INT(fk.config[1], 0xaa);
	wr(VIRTIO_PCI_DEVICE_OFF + 7, 0xbbbb, 2);               /* ignored */
	CHECK_EQ_INT(fk.config[7], 0x88);

	fk.dev.notify_config(&fk.dev);
	uint8_t gen = (uint8_t)rd(VIRTIO_PCI_COMMON_CFGGENERATION, 1);
	CHECK_EQ_INT(gen, 1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_ISR_OFF, 1), 2);
	CHECK_EQ_INT(rd(VIRTIO_PCI_ISR_OFF, 1), 0);             /* read clears */
	fk.dev.notify_queue(&fk.dev, 0);
	CHECK_EQ_INT(rd(VIRTIO_PCI_ISR_OFF, 1), 1);
	/* common config: unknown offsets and straddling accesses */
	CHECK_EQ_INT(rd(0x3e, 2), 0);
	CHECK_EQ_INT(rd(0x13, 2), 0);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_NUMQ, 2), 1);
	wr(VIRTIO_PCI_COMMON_NUMQ, 9, 2);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_NUMQ, 2), 1);
	/* queue select beyond num_queues: size reads 0 */
	wr(VIRTIO_PCI_COMMON_Q_SELECT, 5, 2);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	wr(VIRTIO_PCI_COMMON_Q_SIZE, 8, 2);
	wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
}

TEST(msix)
{
	setup(1);
	const unsigned cap = VIRTIO_PCI_CAP_MSIX;
	/* config vector beyond the table reads back NO_VECTOR (§4.1.5.1.2) */
	wr(VIRTIO_PCI_COMMON_MSIX, 5, 2);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_PCI_NO_VECTOR);
	wr(VIRTIO_PCI_COMMON_MSIX, 0, 2);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_MSIX, 2), 0);
	negotiate(1ull << VIRTIO_F_VERSION_1);
	setup_queue0(128);   /* queue 0 -> vector 1 */
	wr(VIRTIO_PCI_COMMON_STATUS, ok_status, 1);

	/* MSI-X still disabled: nothing is sent */
	fk.dev.notify_queue(&fk.dev, 0);
	CHECK_EQ_INT(fk.fired[1], 0);
	cfg_write(1, cap + 2, 0x8000, 2);   /* enable */
	CHECK_EQ_INT(cfg_read(1, cap + 2, 2), 0x8001);   /* 2 vectors */
	/* vector 1 is masked after reset: the event goes to the PBA */
	fk.dev.notify_queue(&fk.dev, 0);
	CHECK_EQ_INT(fk.fired[1], 0);
	CHECK_EQ_INT(rd(VIRTIO_PCI_MSIX_PBA_OFF, 8), 2);
	/* program vector 1 and unmask it: the pending message goes out */
	wr(VIRTIO_PCI_MSIX_TABLE_OFF + 16, 0xfee01000, 4);
	wr(VIRTIO_PCI_MSIX_TABLE_OFF + 20, 0, 4);
	wr(VIRTIO_PCI_MSIX_TABLE_OFF + 24, 0x4041, 4);
	CHECK_EQ_INT(fk.route_addr[1], 0xfee01000);
	CHECK_EQ_INT(fk.route_data[1], 0x4041);
	CHECK_EQ_INT(rd(VIRTIO_PCI_MSIX_TABLE_OFF + 24, 4), 0x4041);
	CHECK_EQ_INT(rd(VIRTIO_PCI_MSIX_TABLE_OFF + 28, 4), 1);
	wr(VIRTIO_PCI_MSIX_TABLE_OFF + 28, 0, 4);
	CHECK_EQ_INT(fk.fired[1], 1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_MSIX_PBA_OFF, 8), 0);
	/* unmasked: delivered at once, via the device's queue notify */
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	CHECK_EQ_INT(fk.fired[1], 2);
	/* function mask holds everything back until cleared */
	cfg_write(1, cap + 2, 0xc000, 2);
	fk.dev.notify_queue(&fk.dev, 0);
	CHECK_EQ_INT(fk.fired[1], 2);
	cfg_write(1, cap + 2, 0x8000, 2);
	CHECK_EQ_INT(fk.fired[1], 3);
	/* table accesses outside the table, odd sizes, PBA writes */
	wr(VIRTIO_PCI_MSIX_TABLE_OFF + 16 * 3, 0x1234, 4);
	wr(VIRTIO_PCI_MSIX_TABLE_OFF + 2, 0x1234, 2);
	wr(VIRTIO_PCI_MSIX_PBA_OFF, ~0ull, 8);
	CHECK_EQ_INT(rd(VIRTIO_PCI_MSIX_PBA_OFF, 8), 0);
	CHECK_EQ_INT(rd(VIRTIO_PCI_MSIX_TABLE_OFF + 16 * 3, 4), 0);
	CHECK_EQ_INT(vp->stat_interrupts, 3);
}

TEST(pci_cfg_window)
{
	setup(3);
	const unsigned c = VIRTIO_PCI_CAP_PCICFG;
	cfg_write(1, c + 4, 0, 1);                            /* bar 0 */
	cfg_write(1, c + 8, VIRTIO_PCI_COMMON_NUMQ, 4);        /* offset */
	cfg_write(1, c + 12, 2, 4);                           /* length */
	CHECK_EQ_INT(cfg_read(1, c + 16, 2), 3);
	cfg_write(1, c + 8, VIRTIO_PCI_COMMON_STATUS, 4);
	cfg_write(1, c + 12, 1, 4);
	cfg_write(1, c + 16, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1), VIRTIO_STATUS_ACKNOWLEDGE);
	/* misaligned or oversize windows do nothing */
	cfg_write(1, c + 8, 0x13, 4);
	cfg_write(1, c + 12, 2, 4);
	cfg_write(1, c + 16, 0xffff, 2);
	cfg_write(1, c + 8, VIRTIO_PCI_BAR_SIZE - 1, 4);
	cfg_write(1, c + 12, 4, 4);
	cfg_write(1, c + 16, 0xffffffff, 4);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1), VIRTIO_STATUS_ACKNOWLEDGE);
}

TEST(random_access_storm)
{
	setup(2);
	negotiate(1ull << VIRTIO_F_VERSION_1);
	setup_queue0(128);
	srand(12345);
	static const unsigned lens[] = {1, 2, 4, 8, 3, 0};
	for (int i = 0; i < 200000; i++) {
		uint64_t v = ((uint64_t)rand() << 32) | (unsigned)rand();
		unsigned len = lens[rand() % 6];
		if (len == 0)
			len = 1;
		if (rand() % 4 == 0) {
			unsigned reg = (unsigned)rand() % 260;
			uint32_t w = (uint32_t)v;
			if (reg == PCI_CFG_BAR0 || reg == PCI_CFG_COMMAND)
				continue; /* keep the BAR where we can reach it */
			pci_config_write(&vp->pci, reg, &w, len > 4 ? 4 : len);
			pci_config_read(&vp->pci, reg, &w, len > 4 ? 4 : len);
		} else {
			uint64_t off = (uint64_t)rand() % (VIRTIO_PCI_BAR_SIZE + 64);
			if (rand() % 2)
				pci_bus_mmio(&bus, bar() + off, &v, len, true);
			else
				pci_bus_mmio(&bus, bar() + off, &v, len, false);
		}
	}
	/* whatever happened, a reset brings the device back */
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK_EQ_INT(rd(VIRTIO_PCI_COMMON_STATUS, 1), 0);
	CHECK_EQ_INT(fk.dev.status, 0);
}

TEST(bad_new)
{
	struct virtio_dev d;
	memset(&d, 0, sizeof(d));
	struct virtio_pci *p;
	CHECK_EQ_INT(virtio_pci_new(NULL, NULL, &p), -EINVAL);
	d.ops = &fake_ops;
	CHECK_EQ_INT(virtio_pci_new(&d, NULL, &p), -EINVAL);      /* no queues */
	d.num_queues = VIRTIO_MAX_QUEUES + 1;
	CHECK_EQ_INT(virtio_pci_new(&d, NULL, &p), -EINVAL);
	/* the bus runs out of slots */
	struct pci_bus b;
	pci_bus_init(&b, LAYOUT_PCI_MMIO_START, LAYOUT_PCI_MMIO_END);
	static struct pci_dev devs[40];
	int ok = 0;
	for (int i = 0; i < 40; i++) {
		pci_dev_init(&devs[i], 1, 2, 0, 0, 0, 0);
		pci_dev_set_bar(&devs[i], 0, 4096);
		if (pci_bus_add(&b, &devs[i]) == 0)
			ok++;
	}
	CHECK_EQ_INT(ok, PCI_MAX_SLOTS - 1);
	CHECK_EQ_INT(pci_dev_set_bar(&devs[0], 0, 1000), -EINVAL);
	pci_bus_destroy(&b);
}

HARNESS_MAIN
