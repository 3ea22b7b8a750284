/* pci: bus 0 with configuration mechanism #1 and 32-bit memory BARs.
 * BAR sizing works the standard way (PCI 3.0 §6.2.5.1): the size bits are not
 * writable, so writing all ones reads back the size mask. */
#include "vmm/pci.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"

#define PCI_CONFIG_ENABLE 0x80000000u
#define PCI_BAR_MEM_MASK 0xfffffff0u

static void pci_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void pci_put32(uint8_t *p, uint32_t v)
{
	pci_put16(p, (uint16_t)v);
	pci_put16(p + 2, (uint16_t)(v >> 16));
}

static uint32_t pci_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void pci_dev_init(struct pci_dev *dev, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(dev->config, 0, sizeof(dev->config));
	memset(dev->wmask, 0, sizeof(dev->wmask));
	memset(dev->bar_size, 0, sizeof(dev->bar_size));
	pci_put16(dev->config + PCI_CFG_VENDOR_ID, vendor);
	pci_put16(dev->config + PCI_CFG_DEVICE_ID, device);
	dev->config[PCI_CFG_REVISION] = revision;
	dev->config[PCI_CFG_CLASS_PROG] = (uint8_t)class_code;
	pci_put16(dev->config + PCI_CFG_CLASS_PROG + 1, (uint16_t)(class_code >> 8));
	pci_put16(dev->config + PCI_CFG_SUBSYS_VENDOR, subsys_vendor);
	pci_put16(dev->config + PCI_CFG_SUBSYS_ID, subsys_id);
	/* Command: memory space, bus master and INTx disable are ours to
	 * honour; I/O space is kept writable though no device has I/O BARs. */
	pci_put16(dev->wmask + PCI_CFG_COMMAND,
		  PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	dev->wmask[PCI_CFG_INT_LINE] = 0xff;
}

int pci_dev_set_bar(struct pci_dev *dev, unsigned bar, uint32_t size)
{
	if (bar >= PCI_NUM_BARS || size < 16 || !IS_POWER_OF_2(size))
		return -EINVAL;
	dev->bar_size[bar] = size;
	pci_put32(dev->wmask + PCI_CFG_BAR0 + 4 * bar, ~(size - 1) & PCI_BAR_MEM_MASK);
	return 0;
}

int pci_bus_init(struct pci_bus *bus, uint64_t mmio_start, uint64_t mmio_end)
{
	memset(bus, 0, sizeof(*bus));
	int ret = -pthread_mutex_init(&bus->lock, NULL);
	if (ret < 0)
		return ret;
	bus->mmio_next = mmio_start;
	bus->mmio_end = mmio_end;
	/* A host bridge at 00:00.0: Linux's pci_sanity_check() looks for one
	 * before it trusts configuration mechanism #1. */
	pci_dev_init(&bus->host_bridge, 0x8086, 0x0d57, 0x060000, 0, 0, 0);
	bus->host_bridge.slot = 0;
	bus->slots[0] = &bus->host_bridge;
	return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	pthread_mutex_destroy(&bus->lock);
}

int pci_bus_add(struct pci_bus *bus, struct pci_dev *dev)
{
	unsigned slot;
	for (slot = 1; slot < PCI_MAX_SLOTS; slot++)
		if (!bus->slots[slot])
			break;
	if (slot == PCI_MAX_SLOTS)
		return -ENOSPC;
	uint64_t next = bus->mmio_next;
	for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
		uint32_t size = dev->bar_size[b];
		if (!size)
			continue;
		uint64_t addr = ALIGN_UP(next, (uint64_t)size);
		if (addr + size > bus->mmio_end)
			return -ENOSPC;
		pci_put32(dev->config + PCI_CFG_BAR0 + 4 * b, (uint32_t)addr);
		next = addr + size;
	}
	bus->mmio_next = next;
	dev->slot = slot;
	bus->slots[slot] = dev;
	return 0;
}

void pci_config_read(struct pci_dev *dev, unsigned off, void *data, unsigned len)
{
	if (off >= sizeof(dev->config) || len > sizeof(dev->config) - off) {
		memset(data, 0xff, len);
		return;
	}
	memcpy(data, dev->config + off, len);
	if (dev->ops && dev->ops->config_read)
		dev->ops->config_read(dev, off, data, len);
}

void pci_config_write(struct pci_dev *dev, unsigned off, const void *data, unsigned len)
{
	if (off >= sizeof(dev->config) || len > sizeof(dev->config) - off)
		return;
	const uint8_t *src = data;
	for (unsigned i = 0; i < len; i++) {
		uint8_t m = dev->wmask[off + i];
		dev->config[off + i] = (uint8_t)((dev->config[off + i] & ~m) | (src[i] & m));
	}
	if (dev->ops && dev->ops->config_write)
		dev->ops->config_write(dev, off, data, len);
}

uint64_t pci_dev_bar_addr(const struct pci_dev *dev, unsigned bar)
{
	if (bar >= PCI_NUM_BARS || !dev->bar_size[bar])
		return 0;
	if (!(dev->config[PCI_CFG_COMMAND] & PCI_COMMAND_MEMORY))
		return 0;
	return pci_get32(dev->config + PCI_CFG_BAR0 + 4 * bar) & PCI_BAR_MEM_MASK;
}

/* The device addressed by CONFIG_ADDRESS (bus 0, function 0 only), or NULL. */
static struct pci_dev *pci_bus_addressed(struct pci_bus *bus, unsigned *reg)
{
	uint32_t a = bus->config_addr;
	if (!(a & PCI_CONFIG_ENABLE))
		return NULL;
	unsigned busno = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f, fn = (a >> 8) & 0x7;
	if (busno != 0 || fn != 0)
		return NULL;
	*reg = a & 0xfc;
	return bus->slots[slot];
}

bool pci_bus_pio(struct pci_bus *bus, uint16_t port, void *data, unsigned len, bool is_write)
{
	if (port < 0xcf8 || port + len > 0xd00 || (len != 1 && len != 2 && len != 4))
		return false;
	pthread_mutex_lock(&bus->lock);
	if (port < 0xcfc) {
		/* CONFIG_ADDRESS is a 32-bit register; 0xcf9 (reset) and
		 * byte accesses belong to someone else. */
		if (port != 0xcf8 || len != 4) {
			pthread_mutex_unlock(&bus->lock);
			return false;
		}
		if (is_write)
			memcpy(&bus->config_addr, data, 4);
		else
			memcpy(data, &bus->config_addr, 4);
		pthread_mutex_unlock(&bus->lock);
		return true;
	}
	unsigned reg = 0;
	unsigned byte = port - 0xcfc;
	struct pci_dev *dev = pci_bus_addressed(bus, &reg);
	if (byte + len > 4)
		dev = NULL;
	if (is_write) {
		if (dev)
			pci_config_write(dev, reg + byte, data, len);
	} else if (dev) {
		pci_config_read(dev, reg + byte, data, len);
	} else {
		memset(data, 0xff, len);
	}
	pthread_mutex_unlock(&bus->lock);
	return true;
}

bool pci_bus_mmio(struct pci_bus *bus, uint64_t gpa, void *data, unsigned len, bool is_write)
{
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *dev = bus->slots[s];
		if (!dev)
			continue;
		for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
			uint64_t base = pci_dev_bar_addr(dev, b);
			if (!base || gpa < base || gpa - base >= dev->bar_size[b])
				continue;
			uint64_t off = gpa - base;
			if (len > dev->bar_size[b] - off) {
				if (!is_write)
					memset(data, 0xff, len);
				return true;
			}
			if (is_write) {
				if (dev->ops && dev->ops->bar_write)
					dev->ops->bar_write(dev, b, off, data, len);
			} else if (dev->ops && dev->ops->bar_read) {
				dev->ops->bar_read(dev, b, off, data, len);
			} else {
				memset(data, 0xff, len);
			}
			return true;
		}
	}
	return false;
}
