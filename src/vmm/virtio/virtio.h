/* virtio: the contract between a virtio device model (blk, net, rng, ...)
 * and the transport that exposes it to the guest (virtio-pci modern,
 * virtio 1.2 §4.1). The transport owns feature negotiation, the status state
 * machine (§2.1, §3.1.1), queue registers and interrupts; a device model owns
 * its config space and what happens when a queue is notified.
 *
 * Device models live in src/vmm/virtio/<dev>.c; the split virtqueue
 * (§2.7) in src/vmm/virtio/queue.{c,h}; the PCI transport in
 * src/vmm/virtio/pci.c. */
#ifndef VESSEL_VMM_VIRTIO_H
#define VESSEL_VMM_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/mem.h"

#define VIRTIO_MAX_QUEUES 8

/* §2.1 device status bits */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED 128u

/* §6 reserved feature bits the transport handles */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* §5 device ids */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19

/* One split virtqueue as configured by the driver through the transport.
 * The transport fills size/desc/avail/used/enabled; queue.c owns the rest. */
struct virtq {
	uint16_t size;          /* negotiated queue size, power of 2, <= max_size */
	uint16_t max_size;      /* what the device offers */
	bool enabled;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t last_avail_idx; /* next avail ring slot the device will read */
	uint16_t used_idx;       /* next used ring slot the device will write */
	bool event_idx;          /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;           /* VIRTIO_F_INDIRECT_DESC negotiated */
	uint16_t signalled_used; /* used_idx at the last interrupt (event idx) */
	bool signalled_used_valid;
	/* Set by queue.c when the driver broke the ring (§2.1.2): the queue
	 * is not touched again until the device is reset (virtq_reset()). */
	bool broken;
};

struct virtio_dev;

struct virtio_dev_ops {
	/* Device-specific feature bits (the transport adds VERSION_1 and the
	 * ring features it supports). */
	uint64_t (*get_features)(struct virtio_dev *dev);
	/* Device config space (§4.1.4.6 "device-specific configuration"). Reads
	 * and writes outside config_len are handled by the transport (reads
	 * return 0, writes ignored). */
	void (*config_read)(struct virtio_dev *dev, uint32_t off, void *data, uint32_t len);
	void (*config_write)(struct virtio_dev *dev, uint32_t off, const void *data, uint32_t len);
	/* The driver set DRIVER_OK: queues are configured, start processing.
	 * Return 0, or a negative errno to set NEEDS_RESET. */
	int (*activate)(struct virtio_dev *dev);
	/* The driver notified queue q (from the ioeventfd thread). */
	void (*queue_notify)(struct virtio_dev *dev, unsigned q);
	/* Device reset (status written 0): stop using the queues, forget state. */
	void (*reset)(struct virtio_dev *dev);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *priv;              /* the device model's state */
	uint16_t device_id;      /* VIRTIO_ID_* */
	uint32_t config_len;
	unsigned num_queues;
	struct virtq queues[VIRTIO_MAX_QUEUES];
	struct guest_mem *mem;
	uint64_t driver_features; /* accepted at FEATURES_OK */
	uint8_t status;

	/* Set by the transport: raise the used-buffer interrupt of queue q
	 * (honouring EVENT_IDX through virtq_should_notify()), a config change
	 * interrupt, or mark the device broken (sets NEEDS_RESET, §2.1.2, and
	 * sends a config interrupt). The device model never exits the process
	 * because of what a guest wrote. */
	void (*notify_queue)(struct virtio_dev *dev, unsigned q);
	void (*notify_config)(struct virtio_dev *dev);
	void (*set_needs_reset)(struct virtio_dev *dev);
	void *transport;
};

static inline bool virtio_has_feature(const struct virtio_dev *dev, unsigned bit)
{
	return (dev->driver_features >> bit) & 1;
}

#endif
