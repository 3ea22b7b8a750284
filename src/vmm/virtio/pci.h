/* virtio pci: the virtio-pci modern transport (virtio 1.2 §4.1). One PCI
 * function per virtio device, with the common, notify, ISR, device and PCI
 * configuration capabilities (§4.1.4) in BAR 0, plus MSI-X (table and PBA
 * also in BAR 0). The transport enforces the status state machine (§2.1,
 * §3.1.1): FEATURES_OK only for a subset of the offered features, queue
 * registers frozen after DRIVER_OK, full reset when 0 is written.
 *
 * The transport does not talk to KVM: interrupts and queue notifications go
 * through struct virtio_pci_platform, which the monitor implements with
 * KVM_SET_GSI_ROUTING + KVM_IRQFD and KVM_IOEVENTFD, and the unit tests with
 * a fake. */
#ifndef VESSEL_VMM_VIRTIO_PCI_H
#define VESSEL_VMM_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/pci.h"
#include "vmm/virtio/virtio.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040    /* §4.1.2.1: 0x1040 + device id */
#define VIRTIO_PCI_NO_VECTOR 0xffff

/* BAR 0 layout */
#define VIRTIO_PCI_BAR_SIZE 0x8000
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_COMMON_LEN 0x003c
#define VIRTIO_PCI_ISR_OFF 0x1000
#define VIRTIO_PCI_DEVICE_OFF 0x2000
#define VIRTIO_PCI_DEVICE_LEN 0x1000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x4000
#define VIRTIO_PCI_MSIX_PBA_OFF 0x5000

/* config space layout: capability offsets */
#define VIRTIO_PCI_CAP_COMMON 0x40
#define VIRTIO_PCI_CAP_ISR 0x50
#define VIRTIO_PCI_CAP_DEVICE 0x60
#define VIRTIO_PCI_CAP_NOTIFY 0x70
#define VIRTIO_PCI_CAP_PCICFG 0x84
#define VIRTIO_PCI_CAP_MSIX 0x98

/* §4.1.4.3 common configuration structure offsets */
#define VIRTIO_PCI_COMMON_DFSELECT 0x00
#define VIRTIO_PCI_COMMON_DF 0x04
#define VIRTIO_PCI_COMMON_GFSELECT 0x08
#define VIRTIO_PCI_COMMON_GF 0x0c
#define VIRTIO_PCI_COMMON_MSIX 0x10
#define VIRTIO_PCI_COMMON_NUMQ 0x12
#define VIRTIO_PCI_COMMON_STATUS 0x14
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15
#define VIRTIO_PCI_COMMON_Q_SELECT 0x16
#define VIRTIO_PCI_COMMON_Q_SIZE 0x18
#define VIRTIO_PCI_COMMON_Q_MSIX 0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE 0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF 0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO 0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI 0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO 0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI 0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO 0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI 0x34
#define VIRTIO_PCI_COMMON_Q_NDATA 0x38
#define VIRTIO_PCI_COMMON_Q_RESET 0x3a

struct virtio_pci;

struct virtio_pci_platform {
	void *opaque;
	/* MSI-X vector `vector` now targets (addr, data); called when the
	 * guest changes a table entry. Return 0 or a negative errno. */
	int (*msi_route)(void *opaque, struct virtio_pci *vp, unsigned vector, uint64_t addr, uint32_t data);
	/* Send MSI-X vector `vector` (already routed, not masked). */
	void (*msi_fire)(void *opaque, struct virtio_pci *vp, unsigned vector);
	/* Queue q's notify address is gpa (at DRIVER_OK): arrange that a
	 * guest write there ends in virtio_pci_queue_notify(). Optional; when
	 * absent or failing, the MMIO write itself notifies. */
	int (*notify_attach)(void *opaque, struct virtio_pci *vp, unsigned q, uint64_t gpa);
	void (*notify_detach)(void *opaque, struct virtio_pci *vp, unsigned q);
};

struct virtio_pci_msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev *dev;
	struct virtio_pci_platform platform;
	/* lock serialises guest register accesses, queue notifications and
	 * reset against each other (it is held while the device model runs);
	 * irq_lock guards the MSI-X state, which notify_queue() reads from
	 * any thread. Order: lock, then irq_lock. */
	pthread_mutex_t lock;
	pthread_mutex_t irq_lock;

	uint32_t dfselect, gfselect;
	uint32_t driver_features[2]; /* written before FEATURES_OK */
	uint16_t queue_select;
	uint16_t config_vector;
	uint16_t queue_vector[VIRTIO_MAX_QUEUES];
	uint8_t config_generation;
	uint8_t isr;
	bool notify_attached[VIRTIO_MAX_QUEUES];

	unsigned msix_nr;             /* vectors: one per queue + config */
	struct virtio_pci_msix_entry msix[VIRTIO_MAX_QUEUES + 1];
	uint64_t msix_pending;        /* PBA bits */

	/* counters for the control socket's stats */
	uint64_t stat_notifies, stat_interrupts;
};

/* Wrap dev in a PCI function. dev->num_queues and each queue's max_size
 * must be set; the transport installs dev->notify_queue and friends. */
int virtio_pci_new(struct virtio_dev *dev, const struct virtio_pci_platform *platform,
		   struct virtio_pci **out);
void virtio_pci_free(struct virtio_pci *vp);

/* The features the transport offers: the device's plus VERSION_1 (and
 * the ring features the queue implements). */
uint64_t virtio_pci_offered_features(const struct virtio_pci *vp);

/* A queue notification arrived (ioeventfd thread or MMIO write). */
void virtio_pci_queue_notify(struct virtio_pci *vp, unsigned q);

/* Address of BAR 0 as the guest programmed it (0 = not decoded). */
uint64_t virtio_pci_bar_addr(const struct virtio_pci *vp);

#endif
