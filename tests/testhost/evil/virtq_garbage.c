/* virtq_garbage: a hostile guest program for the nested test host. Run as
 * root inside an L2 guest, it takes a virtio-pci device away from its Linux
 * driver, drives the device itself through the modern PCI transport
 * (virtio 1.2 §4.1.4) and hands it malformed virtqueues (§2.7): descriptors
 * outside guest RAM or wrapping the address space, chains that loop or name
 * descriptors past the queue size, absurd lengths, indirect tables that were
 * not negotiated, avail indices far ahead of the ring, and garbage written
 * into the common configuration structure. The monitor under test must
 * survive all of it (DESIGN.md: "the guest is hostile").
 *
 * DMA memory is ordinary process memory, locked and translated to guest
 * physical addresses through /proc/self/pagemap; the BAR is mapped through
 * the device's sysfs resource file. Each step prints a line starting with
 * "evil:" and the device status it left behind. Exit 0 when every step could
 * be attempted, 1 when the program could not set up the attack at all.
 *
 * Usage: virtq_garbage [PCI-ADDRESS]   (default: the first virtio device,
 * preferring a block device). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EVIL_VENDOR_VIRTIO 0x1af4
#define EVIL_PCI_CAP_VENDOR 0x09
/* virtio 1.2 §4.1.4: cfg_type values of the vendor capabilities */
#define EVIL_CAP_COMMON 1
#define EVIL_CAP_NOTIFY 2
/* virtio 1.2 §2.1: device status bits */
#define EVIL_S_ACK 1
#define EVIL_S_DRIVER 2
#define EVIL_S_DRIVER_OK 4
#define EVIL_S_FEATURES_OK 8
#define EVIL_S_NEEDS_RESET 0x40
/* virtio 1.2 §2.7.5: descriptor flags */
#define EVIL_D_NEXT 1
#define EVIL_D_WRITE 2
#define EVIL_D_INDIRECT 4
#define EVIL_QSIZE 8

/* struct virtio_pci_common_cfg field offsets, virtio 1.2 §4.1.4.3 */
#define CC_DFSELECT 0
#define CC_DF 4
#define CC_GFSELECT 8
#define CC_GF 12
#define CC_NUM_QUEUES 18
#define CC_STATUS 20
#define CC_Q_SELECT 22
#define CC_Q_SIZE 24
#define CC_Q_ENABLE 28
#define CC_Q_NOFF 30
#define CC_Q_DESC 32
#define CC_Q_DRIVER 40
#define CC_Q_DEVICE 48

struct evil_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct evil_desc) == 16, "virtio 1.2 §2.7.5 descriptor is 16 bytes");

struct evil_dev {
	char bdf[256];
	int cfg_fd;
	volatile uint8_t *common;
	volatile uint8_t *notify;
	uint32_t notify_mult;
	uint32_t notify_len;
	/* one page each for the descriptor table, avail ring, used ring and
	 * data buffers, with their guest physical addresses */
	uint8_t *page[4];
	uint64_t phys[4];
};

static void evil_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int evil_sysfs_read(const char *bdf, const char *file, char *buf, size_t size)
{
	char path[512];
	ssize_t n;
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, file);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	buf[n] = '\0';
out:
	close(fd);
	return ret;
}

/* Pick the device: the one named, else the first virtio device, preferring
 * a block device (modern id 0x1042, transitional 0x1001). */
static int evil_dev_find(const char *want, char *bdf, size_t size)
{
	struct dirent *de;
	char buf[64];
	int best = 0;
	DIR *d;

	if (want) {
		snprintf(bdf, size, "%s", want);
		return 0;
	}
	d = opendir("/sys/bus/pci/devices");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int score;

		if (de->d_name[0] == '.')
			continue;
		if (evil_sysfs_read(de->d_name, "vendor", buf, sizeof(buf)) < 0 ||
		    strtoul(buf, NULL, 16) != EVIL_VENDOR_VIRTIO)
			continue;
		if (evil_sysfs_read(de->d_name, "device", buf, sizeof(buf)) < 0)
			continue;
		score = (strtoul(buf, NULL, 16) == 0x1042 || strtoul(buf, NULL, 16) == 0x1001) ? 2 : 1;
		if (score > best) {
			best = score;
			snprintf(bdf, size, "%s", de->d_name);
		}
	}
	closedir(d);
	return best ? 0 : -ENODEV;
}

/* Guest physical address of a locked page of this process. */
static int evil_virt_to_phys(void *p, uint64_t *phys)
{
	uint64_t entry;
	long psz = sysconf(_SC_PAGESIZE);
	int fd, ret = 0;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -errno;
	if (pread(fd, &entry, 8, ((uintptr_t)p / psz) * 8) != 8) {
		ret = -EIO;
		goto out;
	}
	/* bit 63 present, bits 0-54 the frame number (zero without CAP_SYS_ADMIN) */
	if (!(entry & (1ull << 63)) || !(entry & ((1ull << 55) - 1))) {
		ret = -EPERM;
		goto out;
	}
	*phys = (entry & ((1ull << 55) - 1)) * psz + ((uintptr_t)p % psz);
out:
	close(fd);
	return ret;
}

/* Map the BAR region [off, off + len) a vendor capability points at; the
 * sysfs resource file refuses mappings that reach past the BAR. */
static int evil_cap_map(const char *bdf, unsigned bar, uint32_t off, uint32_t len, volatile uint8_t **out_p)
{
	char file[32], path[512];
	long psz = sysconf(_SC_PAGESIZE);
	uint32_t base = off & ~(uint32_t)(psz - 1);
	void *p;
	int fd;

	snprintf(file, sizeof(file), "resource%u", bar);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, file);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		return -errno;
	p = mmap(NULL, (off - base) + len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, base);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	*out_p = (volatile uint8_t *)p + (off - base);
	return 0;
}

static int evil_dev_open(struct evil_dev *dev)
{
	uint8_t cfg[256], pos;
	char path[512];
	uint16_t cmd;
	int i, ret;
	FILE *f;

	/* Take the device from its driver; a write error means it had none. */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", dev->bdf);
	f = fopen(path, "w");
	if (f) {
		fputs(dev->bdf, f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", dev->bdf);
	dev->cfg_fd = open(path, O_RDWR);
	if (dev->cfg_fd < 0)
		return -errno;
	if (pread(dev->cfg_fd, cfg, sizeof(cfg), 0) != (ssize_t)sizeof(cfg))
		return -EIO;
	/* Memory space and bus mastering back on: the driver's removal turned
	 * bus mastering off. */
	memcpy(&cmd, cfg + 4, 2);
	cmd |= 0x6;
	if (pwrite(dev->cfg_fd, &cmd, 2, 4) != 2)
		return -EIO;
	if (!(cfg[6] & 0x10))
		return -ENOTSUP;
	for (pos = cfg[0x34] & 0xfc, i = 0; pos && i < 48; pos = cfg[pos + 1] & 0xfc, i++) {
		uint8_t type = cfg[pos + 3], bar = cfg[pos + 4];
		uint32_t off, len;

		if (cfg[pos] != EVIL_PCI_CAP_VENDOR || pos > 256 - 20)
			continue;
		memcpy(&off, cfg + pos + 8, 4);
		memcpy(&len, cfg + pos + 12, 4);
		if (type == EVIL_CAP_COMMON && !dev->common) {
			ret = evil_cap_map(dev->bdf, bar, off, len, &dev->common);
			if (ret < 0)
				return ret;
		} else if (type == EVIL_CAP_NOTIFY && !dev->notify) {
			memcpy(&dev->notify_mult, cfg + pos + 16, 4);
			ret = evil_cap_map(dev->bdf, bar, off, len, &dev->notify);
			dev->notify_len = len;
			if (ret < 0)
				return ret;
		}
	}
	if (!dev->common || !dev->notify)
		return -ENOTSUP;
	for (i = 0; i < 4; i++) {
		dev->page[i] = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
				    -1, 0);
		if (dev->page[i] == MAP_FAILED)
			return -errno;
		memset(dev->page[i], 0, 4096);
		ret = evil_virt_to_phys(dev->page[i], &dev->phys[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

#define W8(o, v) (*(volatile uint8_t *)(dev->common + (o)) = (v))
#define W16(o, v) (*(volatile uint16_t *)(dev->common + (o)) = (v))
#define W32(o, v) (*(volatile uint32_t *)(dev->common + (o)) = (v))
#define R8(o) (*(volatile uint8_t *)(dev->common + (o)))
#define R16(o) (*(volatile uint16_t *)(dev->common + (o)))
#define R32(o) (*(volatile uint32_t *)(dev->common + (o)))

static void evil_w64(struct evil_dev *dev, unsigned o, uint64_t v)
{
	W32(o, (uint32_t)v);
	W32(o + 4, (uint32_t)(v >> 32));
}

/* Reset the device and bring queue 0 up on our pages (virtio 1.2 §3.1.1),
 * offering only VIRTIO_F_VERSION_1. Returns the device status. */
static uint8_t evil_dev_setup(struct evil_dev *dev)
{
	int i;

	W8(CC_STATUS, 0);
	for (i = 0; i < 100 && R8(CC_STATUS); i++)
		evil_sleep_ms(10);
	for (i = 0; i < 4; i++)
		memset(dev->page[i], 0, 4096);
	W8(CC_STATUS, EVIL_S_ACK);
	W8(CC_STATUS, EVIL_S_ACK | EVIL_S_DRIVER);
	W32(CC_GFSELECT, 0);
	W32(CC_GF, 0);
	W32(CC_GFSELECT, 1);
	W32(CC_GF, 1); /* bit 32: VIRTIO_F_VERSION_1 */
	W8(CC_STATUS, EVIL_S_ACK | EVIL_S_DRIVER | EVIL_S_FEATURES_OK);
	W16(CC_Q_SELECT, 0);
	W16(CC_Q_SIZE, EVIL_QSIZE);
	evil_w64(dev, CC_Q_DESC, dev->phys[0]);
	evil_w64(dev, CC_Q_DRIVER, dev->phys[1]);
	evil_w64(dev, CC_Q_DEVICE, dev->phys[2]);
	W16(CC_Q_ENABLE, 1);
	W8(CC_STATUS, EVIL_S_ACK | EVIL_S_DRIVER | EVIL_S_FEATURES_OK | EVIL_S_DRIVER_OK);
	return R8(CC_STATUS);
}

static void evil_notify(struct evil_dev *dev)
{
	uint32_t at = (uint32_t)R16(CC_Q_NOFF) * dev->notify_mult;

	/* After garbage in the common configuration the device may report any
	 * notify offset; stay inside the mapping. */
	if (at + 2 > dev->notify_len)
		at = 0;
	*(volatile uint16_t *)(dev->notify + at) = 0;
}

/* Publish heads on the avail ring (virtio 1.2 §2.7.6), set its index to
 * idx (which may lie), notify, and give the monitor time to choke. */
static void evil_kick(struct evil_dev *dev, const uint16_t *heads, int n, uint16_t idx)
{
	volatile uint16_t *avail = (volatile uint16_t *)dev->page[1];
	int i;

	for (i = 0; i < n; i++)
		avail[2 + (i % EVIL_QSIZE)] = heads[i];
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail[1] = idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	evil_notify(dev);
	evil_sleep_ms(300);
}

static void evil_report(struct evil_dev *dev, const char *what)
{
	volatile uint16_t *used = (volatile uint16_t *)dev->page[2];
	uint8_t st = R8(CC_STATUS);

	printf("evil: %s: device status 0x%02x%s, used idx %u\n", what, st,
	       (st & EVIL_S_NEEDS_RESET) ? " (NEEDS_RESET)" : "", used[1]);
	fflush(stdout);
}

static void evil_set(struct evil_dev *dev, int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct evil_desc *d = (struct evil_desc *)dev->page[0];

	d[i].addr = addr;
	d[i].len = len;
	d[i].flags = flags;
	d[i].next = next;
}

/* A virtio-blk request header (virtio 1.2 §5.2.6) in the data page, so a
 * block device gets as far as parsing before it meets the garbage. */
static uint64_t evil_blk_header(struct evil_dev *dev, uint32_t type, uint64_t sector)
{
	memcpy(dev->page[3], &type, 4);
	memset(dev->page[3] + 4, 0, 4);
	memcpy(dev->page[3] + 8, &sector, 8);
	return dev->phys[3];
}

static void evil_attack(struct evil_dev *dev)
{
	uint64_t data = dev->phys[3];
	uint16_t h0 = 0, heads[EVIL_QSIZE * 4];
	int i;

	evil_dev_setup(dev);
	evil_set(dev, 0, 0xfffffffffffff000ull, 4096, EVIL_D_NEXT, 1);
	evil_set(dev, 1, 0x7fff00000000ull, 512, EVIL_D_NEXT | EVIL_D_WRITE, 2);
	evil_set(dev, 2, 0xffffffffffull, 1, EVIL_D_WRITE, 0);
	evil_kick(dev, &h0, 1, 1);
	evil_report(dev, "step 1: descriptors far outside guest RAM");

	evil_dev_setup(dev);
	evil_set(dev, 0, 0xfffffffffffffff0ull, 0x20, EVIL_D_NEXT, 1);
	evil_set(dev, 1, data, 0xffffffffu, EVIL_D_NEXT | EVIL_D_WRITE, 2);
	evil_set(dev, 2, data + 4095, 2, EVIL_D_WRITE, 0);
	evil_kick(dev, &h0, 1, 1);
	evil_report(dev, "step 2: address+length wrapping 2^64, 4 GiB length, buffer across the page end");

	evil_dev_setup(dev);
	evil_blk_header(dev, 0, 0);
	evil_set(dev, 0, data, 16, EVIL_D_NEXT, 1);
	evil_set(dev, 1, data + 512, 512, EVIL_D_NEXT | EVIL_D_WRITE, 0);
	evil_kick(dev, &h0, 1, 1);
	evil_report(dev, "step 3: descriptor chain looping 0 -> 1 -> 0");

	evil_dev_setup(dev);
	for (i = 0; i < EVIL_QSIZE; i++)
		evil_set(dev, i, data, 16, EVIL_D_NEXT, (uint16_t)((i + 1) % EVIL_QSIZE));
	evil_kick(dev, &h0, 1, 1);
	evil_report(dev, "step 4: every descriptor chained, ring-sized loop");

	evil_dev_setup(dev);
	evil_blk_header(dev, 0, 0);
	evil_set(dev, 0, data, 16, EVIL_D_NEXT, 0xfff0);
	heads[0] = 0;
	heads[1] = 0xffff;
	heads[2] = EVIL_QSIZE;
	evil_kick(dev, heads, 3, 3);
	evil_report(dev, "step 5: next index and avail heads past the queue size");

	evil_dev_setup(dev);
	evil_set(dev, 0, data, 16 * 3 + 5, EVIL_D_INDIRECT, 0);
	evil_set(dev, 1, 0xffffffff0000ull, 0xfffffff0u, EVIL_D_INDIRECT | EVIL_D_NEXT, 0);
	heads[0] = 0;
	heads[1] = 1;
	memset(dev->page[3], 0xff, 4096);
	evil_kick(dev, heads, 2, 2);
	evil_report(dev, "step 6: indirect tables not negotiated, misaligned, out of RAM, full of 0xff");

	evil_dev_setup(dev);
	evil_blk_header(dev, 1, 0);
	evil_set(dev, 0, data, 16, EVIL_D_NEXT, 1);
	evil_set(dev, 1, data + 512, 0, EVIL_D_NEXT, 2);
	evil_set(dev, 2, data + 1024, 1, 0, 0);
	evil_kick(dev, &h0, 1, 1);
	evil_report(dev, "step 7: write request with a zero-length buffer and a read-only status byte");

	evil_dev_setup(dev);
	evil_blk_header(dev, 0, 0xffffffffffffff00ull);
	evil_set(dev, 0, data, 16, EVIL_D_NEXT, 1);
	evil_set(dev, 1, data + 512, 512, EVIL_D_NEXT | EVIL_D_WRITE, 2);
	evil_set(dev, 2, data + 1024, 1, EVIL_D_WRITE, 0);
	evil_kick(dev, &h0, 1, 1);
	evil_report(dev, "step 8: read request at sector 2^64 - 256");

	evil_dev_setup(dev);
	evil_blk_header(dev, 0, 0);
	evil_set(dev, 0, data, 16, EVIL_D_NEXT, 1);
	evil_set(dev, 1, data + 512, 512, EVIL_D_NEXT | EVIL_D_WRITE, 2);
	evil_set(dev, 2, data + 1024, 1, EVIL_D_WRITE, 0);
	for (i = 0; i < EVIL_QSIZE * 4; i++)
		heads[i] = 0;
	evil_kick(dev, heads, EVIL_QSIZE * 4, 40000);
	evil_report(dev, "step 9: avail idx 40000 ahead of a ring of 8, the same head many times");

	/* Garbage in the common configuration structure itself. */
	W8(CC_STATUS, 0);
	W16(CC_Q_SELECT, 0xffff);
	W16(CC_Q_SIZE, 0xffff);
	evil_w64(dev, CC_Q_DESC, 0xfffffffffffff000ull);
	W16(CC_Q_ENABLE, 1);
	W16(CC_Q_SELECT, (uint16_t)(R16(CC_NUM_QUEUES) + 1));
	W16(CC_Q_ENABLE, 1);
	W32(CC_DFSELECT, 0xffffffffu);
	(void)R32(CC_DF);
	W8(CC_STATUS, 0xff);
	evil_notify(dev);
	evil_sleep_ms(300);
	evil_report(dev, "step 10: out-of-range queue select, size 0xffff, status 0xff");

	/* Queue size 0xffff with DRIVER_OK. */
	W8(CC_STATUS, 0);
	evil_sleep_ms(50);
	W8(CC_STATUS, EVIL_S_ACK | EVIL_S_DRIVER);
	W32(CC_GFSELECT, 1);
	W32(CC_GF, 1);
	W8(CC_STATUS, EVIL_S_ACK | EVIL_S_DRIVER | EVIL_S_FEATURES_OK);
	W16(CC_Q_SELECT, 0);
	W16(CC_Q_SIZE, 0xffff);
	evil_w64(dev, CC_Q_DESC, dev->phys[0]);
	evil_w64(dev, CC_Q_DRIVER, 0x1ull << 62);
	evil_w64(dev, CC_Q_DEVICE, dev->phys[2] + 4093);
	W16(CC_Q_ENABLE, 1);
	W8(CC_STATUS, EVIL_S_ACK | EVIL_S_DRIVER | EVIL_S_FEATURES_OK | EVIL_S_DRIVER_OK);
	evil_kick(dev, &h0, 1, 0x8000);
	evil_report(dev, "step 11: queue size 0xffff, avail ring out of RAM, misaligned used ring");

	W8(CC_STATUS, 0);
}

int main(int argc, char **argv)
{
	struct evil_dev dev;
	int ret;

	memset(&dev, 0, sizeof(dev));
	dev.cfg_fd = -1;
	ret = evil_dev_find(argc > 1 ? argv[1] : NULL, dev.bdf, sizeof(dev.bdf));
	if (ret < 0) {
		fprintf(stderr, "virtq_garbage: no virtio PCI device found (%s); attach one, e.g. --disk\n",
			strerror(-ret));
		return 1;
	}
	ret = evil_dev_open(&dev);
	if (ret < 0) {
		fprintf(stderr, "virtq_garbage: cannot take over %s: %s; run as root with sysfs mounted\n", dev.bdf,
			strerror(-ret));
		return 1;
	}
	printf("evil: attacking virtio device %s, notify multiplier %" PRIu32 "\n", dev.bdf, dev.notify_mult);
	fflush(stdout);
	evil_attack(&dev);
	printf("evil: done\n");
	return 0;
}
