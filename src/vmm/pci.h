/* pci: a conventional PCI bus 0 with configuration mechanism #1 (ports
 * 0xcf8/0xcfc, PCI Local Bus 3.0 §3.2.2.3.2), a host bridge at 00:00.0 and
 * 32-bit memory BARs allocated in the PCI hole. Devices (the virtio-pci
 * transport) plug in with a 256-byte config space, a mask of writable bits
 * and callbacks for their BARs. All of this is reachable from the guest, so
 * every access is bounds-checked; unknown devices read as all ones. */
#ifndef VESSEL_VMM_PCI_H
#define VESSEL_VMM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PCI_MAX_SLOTS 32
#define PCI_NUM_BARS 6

/* config space offsets (PCI 3.0 §6.1) */
#define PCI_CFG_VENDOR_ID 0x00
#define PCI_CFG_DEVICE_ID 0x02
#define PCI_CFG_COMMAND 0x04
#define PCI_CFG_STATUS 0x06
#define PCI_CFG_REVISION 0x08
#define PCI_CFG_CLASS_PROG 0x09
#define PCI_CFG_HEADER_TYPE 0x0e
#define PCI_CFG_BAR0 0x10
#define PCI_CFG_SUBSYS_VENDOR 0x2c
#define PCI_CFG_SUBSYS_ID 0x2e
#define PCI_CFG_CAP_PTR 0x34
#define PCI_CFG_INT_LINE 0x3c
#define PCI_CFG_INT_PIN 0x3d

#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10

struct pci_dev;

struct pci_dev_ops {
	/* Access to a memory BAR at offset off; len is 1, 2, 4 or 8 and
	 * off + len <= the BAR size. */
	void (*bar_read)(struct pci_dev *dev, unsigned bar, uint64_t off, void *data, unsigned len);
	void (*bar_write)(struct pci_dev *dev, unsigned bar, uint64_t off, const void *data, unsigned len);
	/* Optional: called after the generic config read (may patch data)
	 * and after the generic config write (to act on it). */
	void (*config_read)(struct pci_dev *dev, unsigned off, void *data, unsigned len);
	void (*config_write)(struct pci_dev *dev, unsigned off, const void *data, unsigned len);
};

struct pci_dev {
	uint8_t config[256];
	uint8_t wmask[256];       /* bits the guest may change */
	uint32_t bar_size[PCI_NUM_BARS]; /* power of 2 >= 16, 0 = no BAR */
	const struct pci_dev_ops *ops;
	void *opaque;
	unsigned slot;
};

struct pci_bus {
	pthread_mutex_t lock;     /* config_addr and config accesses */
	uint32_t config_addr;
	struct pci_dev *slots[PCI_MAX_SLOTS];
	struct pci_dev host_bridge;
	uint64_t mmio_next;
	uint64_t mmio_end;
};

int pci_bus_init(struct pci_bus *bus, uint64_t mmio_start, uint64_t mmio_end);
void pci_bus_destroy(struct pci_bus *bus);

/* Give dev the next free slot and place its BARs. Returns 0, -ENOSPC (no
 * slot or MMIO space left) or -EINVAL (bad BAR size). */
int pci_bus_add(struct pci_bus *bus, struct pci_dev *dev);

/* Prepare a device's config space: ids, class, header type 0, and BARs
 * writable per their size. */
void pci_dev_init(struct pci_dev *dev, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id);
int pci_dev_set_bar(struct pci_dev *dev, unsigned bar, uint32_t size);

/* Guest accesses. Port I/O at 0xcf8..0xcff; returns false when the port is
 * not ours. MMIO: returns false when no BAR decodes gpa. */
bool pci_bus_pio(struct pci_bus *bus, uint16_t port, void *data, unsigned len, bool is_write);
bool pci_bus_mmio(struct pci_bus *bus, uint64_t gpa, void *data, unsigned len, bool is_write);

/* Config space of one device (off + len within 256, len 1, 2 or 4). */
void pci_config_read(struct pci_dev *dev, unsigned off, void *data, unsigned len);
void pci_config_write(struct pci_dev *dev, unsigned off, const void *data, unsigned len);

/* Guest physical address of a memory BAR, or 0 when memory decoding is off
 * or the BAR is unassigned. */
uint64_t pci_dev_bar_addr(const struct pci_dev *dev, unsigned bar);

#endif
