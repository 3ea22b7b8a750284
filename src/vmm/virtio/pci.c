/* virtio pci: the modern virtio-pci transport (virtio 1.2 §4.1). Register
 * semantics follow §4.1.4.3 (common configuration), §4.1.4.4 (notification),
 * §4.1.4.5 (ISR), §4.1.4.9 (PCI configuration access) and §4.1.5.1.2 (MSI-X
 * vector configuration); the MSI-X table and PBA follow PCI 3.0 §6.8.2. */
#include "vmm/virtio/pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vmm/virtio/queue.h"

#define VIRTIO_PCI_CAP_VNDR 0x09
#define VIRTIO_PCI_CAP_MSIX_ID 0x11
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FUNC_MASK 0x4000
#define MSIX_ENTRY_MASKED 0x1

#define VIRTIO_PCI_ISR_QUEUE 0x1
#define VIRTIO_PCI_ISR_CONFIG 0x2

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le_load(const void *data, unsigned len)
{
	const uint8_t *p = data;
	uint64_t v = 0;
	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void le_store(void *data, uint64_t v, unsigned len)
{
	uint8_t *p = data;
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t virtio_pci_offered_features(const struct virtio_pci *vp)
{
	uint64_t f = vp->dev->ops->get_features ? vp->dev->ops->get_features(vp->dev) : 0;
	/* queue.c implements indirect descriptors and event idx (§2.7.5.3,
	 * §2.7.10); no other transport feature (packed ring, ring reset,
	 * access platform) is offered. */
	f &= ~(1ull << VIRTIO_F_ACCESS_PLATFORM);
	return f | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
	       (1ull << VIRTIO_F_EVENT_IDX);
}

uint64_t virtio_pci_bar_addr(const struct virtio_pci *vp)
{
	return pci_dev_bar_addr(&vp->pci, 0);
}

/* ---- interrupts ---- */

static bool msix_enabled(const struct virtio_pci *vp, bool *func_masked)
{
	uint16_t ctrl = (uint16_t)(vp->pci.config[VIRTIO_PCI_CAP_MSIX + 2] |
				   vp->pci.config[VIRTIO_PCI_CAP_MSIX + 3] << 8);
	*func_masked = ctrl & MSIX_CTRL_FUNC_MASK;
	return ctrl & MSIX_CTRL_ENABLE;
}

/* Deliver vector or remember it in the PBA while masked. irq_lock held. */
static void msix_signal_locked(struct virtio_pci *vp, uint16_t vector)
{
	bool func_masked;
	if (vector == VIRTIO_PCI_NO_VECTOR || vector >= vp->msix_nr || !msix_enabled(vp, &func_masked))
		return;
	if (func_masked || (vp->msix[vector].ctrl & MSIX_ENTRY_MASKED)) {
		vp->msix_pending |= 1ull << vector;
		return;
	}
	vp->stat_interrupts++;
	if (vp->platform.msi_fire)
		vp->platform.msi_fire(vp->platform.opaque, vp, vector);
}

/* After an unmask: send what became deliverable. irq_lock held. */
static void msix_flush_pending_locked(struct virtio_pci *vp)
{
	bool func_masked;
	if (!msix_enabled(vp, &func_masked) || func_masked)
		return;
	for (unsigned v = 0; v < vp->msix_nr; v++) {
		if (!(vp->msix_pending & (1ull << v)) || (vp->msix[v].ctrl & MSIX_ENTRY_MASKED))
			continue;
		vp->msix_pending &= ~(1ull << v);
		msix_signal_locked(vp, (uint16_t)v);
	}
}

static void virtio_pci_notify_queue_cb(struct virtio_dev *dev, unsigned q)
{
	struct virtio_pci *vp = dev->transport;
	if (q >= dev->num_queues)
		return;
	pthread_mutex_lock(&vp->irq_lock);
	/* Without MSI-X there is no interrupt line (we wire no INTx); the ISR
	 * bit still records the event (§4.1.4.5). */
	vp->isr |= VIRTIO_PCI_ISR_QUEUE;
	msix_signal_locked(vp, vp->queue_vector[q]);
	pthread_mutex_unlock(&vp->irq_lock);
}

static void virtio_pci_notify_config_cb(struct virtio_dev *dev)
{
	struct virtio_pci *vp = dev->transport;
	pthread_mutex_lock(&vp->irq_lock);
	/* §4.1.4.3.1: the generation changes with every config change. */
	vp->config_generation++;
	vp->isr |= VIRTIO_PCI_ISR_CONFIG;
	msix_signal_locked(vp, vp->config_vector);
	pthread_mutex_unlock(&vp->irq_lock);
}

static void virtio_pci_set_needs_reset_cb(struct virtio_dev *dev)
{
	/* §2.1.2: set NEEDS_RESET and, when DRIVER_OK is set, send a config
	 * change notification. Status is a byte; a racing driver write is
	 * serialised by the transport lock only on the guest side, which is
	 * fine for a sticky bit that the next reset clears. */
	__atomic_or_fetch(&dev->status, VIRTIO_STATUS_NEEDS_RESET, __ATOMIC_SEQ_CST);
	if (dev->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_pci_notify_config_cb(dev);
}

/* ---- state machine ---- */

static void virtio_pci_detach_notifies(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < vp->dev->num_queues; q++) {
		if (vp->notify_attached[q] && vp->platform.notify_detach)
			vp->platform.notify_detach(vp->platform.opaque, vp, q);
		vp->notify_attached[q] = false;
	}
}

/* §2.4 device reset: back to the state after power-on. lock held. */
static void virtio_pci_reset(struct virtio_pci *vp)
{
	struct virtio_dev *dev = vp->dev;
	virtio_pci_detach_notifies(vp);
	if (dev->status && dev->ops->reset)
		dev->ops->reset(dev);
	dev->status = 0;
	dev->driver_features = 0;
	vp->driver_features[0] = vp->driver_features[1] = 0;
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	for (unsigned q = 0; q < dev->num_queues; q++) {
		struct virtq *vq = &dev->queues[q];
		uint16_t max = vq->max_size;
		memset(vq, 0, sizeof(*vq));
		vq->max_size = max;
		vq->size = max;
	}
	pthread_mutex_lock(&vp->irq_lock);
	vp->isr = 0;
	vp->config_vector = VIRTIO_PCI_NO_VECTOR;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vp->queue_vector[q] = VIRTIO_PCI_NO_VECTOR;
	pthread_mutex_unlock(&vp->irq_lock);
}

static void virtio_pci_attach_notifies(struct virtio_pci *vp)
{
	uint64_t bar = virtio_pci_bar_addr(vp);
	if (!bar || !vp->platform.notify_attach)
		return;
	for (unsigned q = 0; q < vp->dev->num_queues; q++) {
		if (!vp->dev->queues[q].enabled)
			continue;
		uint64_t gpa = bar + VIRTIO_PCI_NOTIFY_OFF + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT;
		vp->notify_attached[q] =
			vp->platform.notify_attach(vp->platform.opaque, vp, q, gpa) == 0;
	}
}

static void virtio_pci_mark_broken(struct virtio_pci *vp, const char *why)
{
	log_ratelimited(LOG_LEVEL_WARN, "virtio-pci %02x:00.0: %s; device needs reset", vp->pci.slot, why);
	vp->dev->status |= VIRTIO_STATUS_NEEDS_RESET;
	pthread_mutex_lock(&vp->irq_lock);
	vp->config_generation++;
	vp->isr |= VIRTIO_PCI_ISR_CONFIG;
	msix_signal_locked(vp, vp->config_vector);
	pthread_mutex_unlock(&vp->irq_lock);
}

static void virtio_pci_write_status(struct virtio_pci *vp, uint8_t val)
{
	struct virtio_dev *dev = vp->dev;
	uint8_t old = dev->status;

	if (val == 0) {
		virtio_pci_reset(vp);
		return;
	}
	/* The driver only ever adds bits (§3.1.1); NEEDS_RESET is the
	 * device's to set. Bits cannot be cleared except by reset. */
	uint8_t status = (uint8_t)(old | (val & ~VIRTIO_STATUS_NEEDS_RESET));

	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t want = (uint64_t)vp->driver_features[1] << 32 | vp->driver_features[0];
		uint64_t offered = virtio_pci_offered_features(vp);
		/* §3.1.1 step 5-6: accept only a subset of what we offered,
		 * and only modern drivers (§7.2.1: VERSION_1). Otherwise
		 * FEATURES_OK stays clear, which the driver reads back. */
		if ((want & ~offered) || !(want & (1ull << VIRTIO_F_VERSION_1))) {
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		} else {
			dev->driver_features = want;
			for (unsigned q = 0; q < dev->num_queues; q++) {
				dev->queues[q].event_idx = want & (1ull << VIRTIO_F_EVENT_IDX);
				dev->queues[q].indirect = want & (1ull << VIRTIO_F_INDIRECT_DESC);
			}
		}
	}
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
			/* DRIVER_OK without FEATURES_OK breaks §3.1.1. */
			dev->status = status & (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
			virtio_pci_mark_broken(vp, "driver set DRIVER_OK before FEATURES_OK");
			return;
		}
		for (unsigned q = 0; q < dev->num_queues; q++) {
			if (dev->queues[q].enabled && virtq_check(&dev->queues[q], dev->mem) < 0) {
				dev->status = status;
				virtio_pci_mark_broken(vp, "driver enabled a queue with a bad size or address");
				return;
			}
		}
		dev->status = status;
		int ret = dev->ops->activate ? dev->ops->activate(dev) : 0;
		if (ret < 0) {
			virtio_pci_mark_broken(vp, "device failed to start");
			return;
		}
		virtio_pci_attach_notifies(vp);
		return;
	}
	dev->status = status;
}

/* ---- common configuration ---- */

static uint64_t virtio_pci_common_get(struct virtio_pci *vp, unsigned field)
{
	struct virtio_dev *dev = vp->dev;
	struct virtq *vq = vp->queue_select < dev->num_queues ? &dev->queues[vp->queue_select] : NULL;
	switch (field) {
	case VIRTIO_PCI_COMMON_DFSELECT: return vp->dfselect;
	case VIRTIO_PCI_COMMON_DF:
		return vp->dfselect < 2 ? (uint32_t)(virtio_pci_offered_features(vp) >> (32 * vp->dfselect)) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT: return vp->gfselect;
	case VIRTIO_PCI_COMMON_GF: return vp->gfselect < 2 ? vp->driver_features[vp->gfselect] : 0;
	case VIRTIO_PCI_COMMON_MSIX: return vp->config_vector;
	case VIRTIO_PCI_COMMON_NUMQ: return dev->num_queues;
	case VIRTIO_PCI_COMMON_STATUS: return dev->status;
	case VIRTIO_PCI_COMMON_CFGGENERATION: return vp->config_generation;
	case VIRTIO_PCI_COMMON_Q_SELECT: return vp->queue_select;
	/* §4.1.4.3.2: an unavailable queue reads size 0. */
	case VIRTIO_PCI_COMMON_Q_SIZE: return vq ? vq->size : 0;
	case VIRTIO_PCI_COMMON_Q_MSIX: return vq ? vp->queue_vector[vp->queue_select] : VIRTIO_PCI_NO_VECTOR;
	case VIRTIO_PCI_COMMON_Q_ENABLE: return vq ? vq->enabled : 0;
	case VIRTIO_PCI_COMMON_Q_NOFF: return vq ? vp->queue_select : 0;
	case VIRTIO_PCI_COMMON_Q_DESCLO: return vq ? vq->desc_gpa : 0;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: return vq ? vq->avail_gpa : 0;
	case VIRTIO_PCI_COMMON_Q_USEDLO: return vq ? vq->used_gpa : 0;
	case VIRTIO_PCI_COMMON_Q_NDATA: return vq ? vp->queue_select : 0;
	default: return 0;
	}
}

static void virtio_pci_common_set(struct virtio_pci *vp, unsigned field, uint64_t v)
{
	struct virtio_dev *dev = vp->dev;
	uint16_t qs = vp->queue_select;
	struct virtq *vq = qs < dev->num_queues ? &dev->queues[qs] : NULL;
	/* §4.1.4.3.2: the driver must not change queue registers once
	 * DRIVER_OK is set (or the device needs a reset); we ignore it. */
	bool frozen = dev->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET);

	switch (field) {
	case VIRTIO_PCI_COMMON_DFSELECT: vp->dfselect = (uint32_t)v; break;
	case VIRTIO_PCI_COMMON_GFSELECT: vp->gfselect = (uint32_t)v; break;
	case VIRTIO_PCI_COMMON_GF:
		if (vp->gfselect < 2 && !(dev->status & VIRTIO_STATUS_FEATURES_OK))
			vp->driver_features[vp->gfselect] = (uint32_t)v;
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		pthread_mutex_lock(&vp->irq_lock);
		/* §4.1.5.1.2: a vector we cannot map reads back NO_VECTOR. */
		vp->config_vector = v < vp->msix_nr ? (uint16_t)v : VIRTIO_PCI_NO_VECTOR;
		pthread_mutex_unlock(&vp->irq_lock);
		break;
	case VIRTIO_PCI_COMMON_STATUS: virtio_pci_write_status(vp, (uint8_t)v); break;
	case VIRTIO_PCI_COMMON_Q_SELECT: vp->queue_select = (uint16_t)v; break;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		if (vq && !frozen)
			vq->size = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (vq && !frozen) {
			pthread_mutex_lock(&vp->irq_lock);
			vp->queue_vector[qs] = v < vp->msix_nr ? (uint16_t)v : VIRTIO_PCI_NO_VECTOR;
			pthread_mutex_unlock(&vp->irq_lock);
		}
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		/* Only 1 is meaningful; disabling needs VIRTIO_F_RING_RESET,
		 * which we do not offer. */
		if (vq && !frozen && v == 1)
			vq->enabled = true;
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO: if (vq && !frozen) vq->desc_gpa = v; break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: if (vq && !frozen) vq->avail_gpa = v; break;
	case VIRTIO_PCI_COMMON_Q_USEDLO: if (vq && !frozen) vq->used_gpa = v; break;
	default: break; /* read-only fields, queue_reset */
	}
}

struct virtio_pci_field {
	uint8_t off, size;
};

static const struct virtio_pci_field virtio_pci_fields[] = {
	{VIRTIO_PCI_COMMON_DFSELECT, 4}, {VIRTIO_PCI_COMMON_DF, 4},
	{VIRTIO_PCI_COMMON_GFSELECT, 4}, {VIRTIO_PCI_COMMON_GF, 4},
	{VIRTIO_PCI_COMMON_MSIX, 2}, {VIRTIO_PCI_COMMON_NUMQ, 2},
	{VIRTIO_PCI_COMMON_STATUS, 1}, {VIRTIO_PCI_COMMON_CFGGENERATION, 1},
	{VIRTIO_PCI_COMMON_Q_SELECT, 2}, {VIRTIO_PCI_COMMON_Q_SIZE, 2},
	{VIRTIO_PCI_COMMON_Q_MSIX, 2}, {VIRTIO_PCI_COMMON_Q_ENABLE, 2},
	{VIRTIO_PCI_COMMON_Q_NOFF, 2}, {VIRTIO_PCI_COMMON_Q_DESCLO, 8},
	{VIRTIO_PCI_COMMON_Q_AVAILLO, 8}, {VIRTIO_PCI_COMMON_Q_USEDLO, 8},
	{VIRTIO_PCI_COMMON_Q_NDATA, 2}, {VIRTIO_PCI_COMMON_Q_RESET, 2},
};

/* The field an access falls in; accesses that straddle fields are refused
 * (reads return 0, writes are dropped): no driver does that. */
static const struct virtio_pci_field *virtio_pci_field_find(uint64_t off, unsigned len)
{
	for (unsigned i = 0; i < ARRAY_SIZE(virtio_pci_fields); i++) {
		const struct virtio_pci_field *f = &virtio_pci_fields[i];
		if (off >= f->off && off + len <= (uint64_t)f->off + f->size)
			return f;
	}
	return NULL;
}

static void virtio_pci_common_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned len)
{
	const struct virtio_pci_field *f = virtio_pci_field_find(off, len);
	if (!f) {
		memset(data, 0, len);
		return;
	}
	uint64_t v = virtio_pci_common_get(vp, f->off);
	le_store(data, v >> (8 * (off - f->off)), len);
}

static void virtio_pci_common_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len)
{
	const struct virtio_pci_field *f = virtio_pci_field_find(off, len);
	if (!f)
		return;
	/* Partial writes (the 64-bit ring addresses come as two 32-bit
	 * halves, §4.1.3.1) merge into the current value. */
	uint64_t v = virtio_pci_common_get(vp, f->off);
	unsigned shift = 8 * (unsigned)(off - f->off);
	uint64_t mask = (len == 8 ? ~0ull : ((1ull << (8 * len)) - 1)) << shift;
	v = (v & ~mask) | ((le_load(data, len) << shift) & mask);
	virtio_pci_common_set(vp, f->off, v);
}

/* ---- BAR 0 ---- */

static void virtio_pci_msix_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned len)
{
	pthread_mutex_lock(&vp->irq_lock);
	if (off >= VIRTIO_PCI_MSIX_PBA_OFF) {
		uint64_t pba = vp->msix_pending;
		uint64_t o = off - VIRTIO_PCI_MSIX_PBA_OFF;
		le_store(data, o < 8 ? pba >> (8 * o) : 0, len);
	} else {
		uint64_t o = off - VIRTIO_PCI_MSIX_TABLE_OFF;
		uint8_t table[sizeof(vp->msix)];
		for (unsigned i = 0; i < ARRAY_SIZE(vp->msix); i++) {
			put32(table + 16 * i, vp->msix[i].addr_lo);
			put32(table + 16 * i + 4, vp->msix[i].addr_hi);
			put32(table + 16 * i + 8, vp->msix[i].data);
			put32(table + 16 * i + 12, vp->msix[i].ctrl);
		}
		if (o < 16ull * vp->msix_nr && o + len <= 16ull * vp->msix_nr)
			memcpy(data, table + o, len);
		else
			memset(data, 0, len);
	}
	pthread_mutex_unlock(&vp->irq_lock);
}

static void virtio_pci_msix_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len)
{
	if (off >= VIRTIO_PCI_MSIX_PBA_OFF)
		return; /* the PBA is read-only */
	uint64_t o = off - VIRTIO_PCI_MSIX_TABLE_OFF;
	if (o >= 16ull * vp->msix_nr || o + len > 16ull * vp->msix_nr || (o & 3) || (len != 4 && len != 8))
		return;
	pthread_mutex_lock(&vp->irq_lock);
	unsigned v = (unsigned)(o / 16);
	struct virtio_pci_msix_entry *e = &vp->msix[v];
	uint32_t *words[4] = {&e->addr_lo, &e->addr_hi, &e->data, &e->ctrl};
	for (unsigned i = 0; i < len / 4; i++) {
		unsigned w = (unsigned)((o & 15) / 4) + i;
		uint32_t val = get32((const uint8_t *)data + 4 * i);
		*words[w] = w == 3 ? (val & MSIX_ENTRY_MASKED) : val;
	}
	if (vp->platform.msi_route &&
	    vp->platform.msi_route(vp->platform.opaque, vp, v, (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data) < 0)
		log_ratelimited(LOG_LEVEL_WARN, "virtio-pci %02x:00.0: cannot route MSI-X vector %u", vp->pci.slot, v);
	msix_flush_pending_locked(vp);
	pthread_mutex_unlock(&vp->irq_lock);
}

static void virtio_pci_bar_access(struct virtio_pci *vp, uint64_t off, void *data, unsigned len, bool is_write)
{
	struct virtio_dev *dev = vp->dev;
	if (off < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_LEN) {
		if (is_write)
			virtio_pci_common_write(vp, off, data, len);
		else
			virtio_pci_common_read(vp, off, data, len);
	} else if (off >= VIRTIO_PCI_ISR_OFF && off < VIRTIO_PCI_ISR_OFF + 4) {
		if (!is_write) {
			/* §4.1.4.5.1: reading the ISR clears it. */
			pthread_mutex_lock(&vp->irq_lock);
			memset(data, 0, len);
			if (off == VIRTIO_PCI_ISR_OFF) {
				((uint8_t *)data)[0] = vp->isr;
				vp->isr = 0;
			}
			pthread_mutex_unlock(&vp->irq_lock);
		}
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_DEVICE_OFF + VIRTIO_PCI_DEVICE_LEN) {
		uint32_t o = (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF);
		bool inside = o < dev->config_len && len <= dev->config_len - o;
		if (is_write) {
			if (inside && dev->ops->config_write)
				dev->ops->config_write(dev, o, data, len);
		} else {
			memset(data, 0, len);
			if (inside && dev->ops->config_read)
				dev->ops->config_read(dev, o, data, len);
		}
	} else if (off >= VIRTIO_PCI_NOTIFY_OFF &&
		   off < VIRTIO_PCI_NOTIFY_OFF + (uint64_t)VIRTIO_PCI_NOTIFY_MULT * dev->num_queues) {
		if (is_write) {
			unsigned q = (unsigned)((off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT);
			pthread_mutex_unlock(&vp->lock);
			virtio_pci_queue_notify(vp, q);
			pthread_mutex_lock(&vp->lock);
		} else {
			memset(data, 0, len);
		}
	} else if (off >= VIRTIO_PCI_MSIX_TABLE_OFF && off < VIRTIO_PCI_MSIX_PBA_OFF + 8) {
		if (is_write)
			virtio_pci_msix_write(vp, off, data, len);
		else
			virtio_pci_msix_read(vp, off, data, len);
	} else if (!is_write) {
		memset(data, 0, len);
	}
}

static void virtio_pci_bar_read(struct pci_dev *pdev, unsigned bar, uint64_t off, void *data, unsigned len)
{
	struct virtio_pci *vp = pdev->opaque;
	pthread_mutex_lock(&vp->lock);
	virtio_pci_bar_access(vp, off, data, len, false);
	pthread_mutex_unlock(&vp->lock);
}

static void virtio_pci_bar_write(struct pci_dev *pdev, unsigned bar, uint64_t off, const void *data, unsigned len)
{
	struct virtio_pci *vp = pdev->opaque;
	uint8_t buf[8];
	memcpy(buf, data, MIN(len, sizeof(buf)));
	pthread_mutex_lock(&vp->lock);
	virtio_pci_bar_access(vp, off, buf, MIN(len, (unsigned)sizeof(buf)), true);
	pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_queue_notify(struct virtio_pci *vp, unsigned q)
{
	pthread_mutex_lock(&vp->lock);
	struct virtio_dev *dev = vp->dev;
	/* Notifications before DRIVER_OK, for disabled queues or a broken
	 * device are ignored (§3.1.1: the device may not use queues before). */
	if (q < dev->num_queues && dev->queues[q].enabled && (dev->status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(dev->status & VIRTIO_STATUS_NEEDS_RESET) && dev->ops->queue_notify) {
		vp->stat_notifies++;
		dev->ops->queue_notify(dev, q);
	}
	pthread_mutex_unlock(&vp->lock);
}

/* ---- PCI config space: the VIRTIO_PCI_CAP_PCI_CFG window and MSI-X ---- */

static bool virtio_pci_cfgwin(struct virtio_pci *vp, uint32_t *off, uint32_t *len)
{
	const uint8_t *cap = vp->pci.config + VIRTIO_PCI_CAP_PCICFG;
	*off = get32(cap + 8);
	*len = get32(cap + 12);
	/* §4.1.4.9: bar 0 only, length 1, 2 or 4, naturally aligned. */
	return cap[4] == 0 && (*len == 1 || *len == 2 || *len == 4) && (*off % *len) == 0 &&
	       *off + *len <= VIRTIO_PCI_BAR_SIZE;
}

static void virtio_pci_config_read(struct pci_dev *pdev, unsigned off, void *data, unsigned len)
{
	struct virtio_pci *vp = pdev->opaque;
	const unsigned dat = VIRTIO_PCI_CAP_PCICFG + 16;
	uint32_t boff, blen;
	if (off == dat && len >= 1 && virtio_pci_cfgwin(vp, &boff, &blen) && len <= blen) {
		uint8_t buf[4] = {0};
		pthread_mutex_lock(&vp->lock);
		virtio_pci_bar_access(vp, boff, buf, blen, false);
		pthread_mutex_unlock(&vp->lock);
		memcpy(data, buf, len);
	}
}

static void virtio_pci_config_write(struct pci_dev *pdev, unsigned off, const void *data, unsigned len)
{
	struct virtio_pci *vp = pdev->opaque;
	const unsigned dat = VIRTIO_PCI_CAP_PCICFG + 16;
	uint32_t boff, blen;
	if (off == dat && virtio_pci_cfgwin(vp, &boff, &blen) && len == blen) {
		uint8_t buf[4];
		memcpy(buf, data, len);
		pthread_mutex_lock(&vp->lock);
		virtio_pci_bar_access(vp, boff, buf, blen, true);
		pthread_mutex_unlock(&vp->lock);
	}
	if (off <= VIRTIO_PCI_CAP_MSIX + 3 && off + len > VIRTIO_PCI_CAP_MSIX + 2) {
		/* MSI-X enable or function mask changed: deliver what was
		 * held back (PCI 3.0 §6.8.2.3). */
		pthread_mutex_lock(&vp->irq_lock);
		msix_flush_pending_locked(vp);
		pthread_mutex_unlock(&vp->irq_lock);
	}
}

static const struct pci_dev_ops virtio_pci_ops = {
	.bar_read = virtio_pci_bar_read,
	.bar_write = virtio_pci_bar_write,
	.config_read = virtio_pci_config_read,
	.config_write = virtio_pci_config_write,
};

static void virtio_pci_cap(uint8_t *c, uint8_t next, uint8_t len, uint8_t type, uint32_t off, uint32_t size)
{
	c[0] = VIRTIO_PCI_CAP_VNDR;
	c[1] = next;
	c[2] = len;
	c[3] = type;
	c[4] = 0;    /* bar */
	c[5] = 0;    /* id */
	put32(c + 8, off);
	put32(c + 12, size);
}

/* PCI class per device type, as other virtio-pci implementations report. */
static uint32_t virtio_pci_class(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET: return 0x020000;     /* Ethernet controller */
	case VIRTIO_ID_BLOCK: return 0x018000;   /* other mass storage */
	case VIRTIO_ID_CONSOLE: return 0x078000; /* other communication */
	default: return 0x00ff00;                /* unclassified */
	}
}

int virtio_pci_new(struct virtio_dev *dev, const struct virtio_pci_platform *platform,
		   struct virtio_pci **out)
{
	if (!dev || !dev->ops || dev->num_queues == 0 || dev->num_queues > VIRTIO_MAX_QUEUES ||
	    dev->config_len > VIRTIO_PCI_DEVICE_LEN)
		return -EINVAL;
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!vp)
		return -ENOMEM;
	pthread_mutex_init(&vp->lock, NULL);
	pthread_mutex_init(&vp->irq_lock, NULL);
	vp->dev = dev;
	if (platform)
		vp->platform = *platform;
	vp->msix_nr = dev->num_queues + 1;
	for (unsigned v = 0; v < ARRAY_SIZE(vp->msix); v++)
		vp->msix[v].ctrl = MSIX_ENTRY_MASKED;

	struct pci_dev *p = &vp->pci;
	/* §4.1.2.1: modern device id 0x1040 + type, revision 1, subsystem id
	 * 0x40 or higher for non-transitional devices. */
	pci_dev_init(p, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + dev->device_id),
		     virtio_pci_class(dev->device_id), 1, VIRTIO_PCI_VENDOR, 0x40);
	pci_dev_set_bar(p, 0, VIRTIO_PCI_BAR_SIZE);
	p->ops = &virtio_pci_ops;
	p->opaque = vp;
	put16(p->config + PCI_CFG_STATUS, PCI_STATUS_CAP_LIST);
	p->config[PCI_CFG_CAP_PTR] = VIRTIO_PCI_CAP_COMMON;

	uint8_t *c = p->config;
	virtio_pci_cap(c + VIRTIO_PCI_CAP_COMMON, VIRTIO_PCI_CAP_ISR, 16, VIRTIO_PCI_CAP_COMMON_CFG,
		       VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN);
	virtio_pci_cap(c + VIRTIO_PCI_CAP_ISR, VIRTIO_PCI_CAP_DEVICE, 16, VIRTIO_PCI_CAP_ISR_CFG,
		       VIRTIO_PCI_ISR_OFF, 4);
	virtio_pci_cap(c + VIRTIO_PCI_CAP_DEVICE, VIRTIO_PCI_CAP_NOTIFY, 16, VIRTIO_PCI_CAP_DEVICE_CFG,
		       VIRTIO_PCI_DEVICE_OFF, MAX(dev->config_len, 4u));
	virtio_pci_cap(c + VIRTIO_PCI_CAP_NOTIFY, VIRTIO_PCI_CAP_PCICFG, 20, VIRTIO_PCI_CAP_NOTIFY_CFG,
		       VIRTIO_PCI_NOTIFY_OFF, VIRTIO_PCI_NOTIFY_MULT * dev->num_queues);
	put32(c + VIRTIO_PCI_CAP_NOTIFY + 16, VIRTIO_PCI_NOTIFY_MULT);
	virtio_pci_cap(c + VIRTIO_PCI_CAP_PCICFG, VIRTIO_PCI_CAP_MSIX, 20, VIRTIO_PCI_CAP_PCI_CFG, 0, 0);
	/* The PCI_CFG window: bar, offset, length and data are writable. */
	p->wmask[VIRTIO_PCI_CAP_PCICFG + 4] = 0xff;
	memset(p->wmask + VIRTIO_PCI_CAP_PCICFG + 8, 0xff, 12);

	uint8_t *m = c + VIRTIO_PCI_CAP_MSIX;
	m[0] = VIRTIO_PCI_CAP_MSIX_ID;
	m[1] = 0;
	put16(m + 2, (uint16_t)(vp->msix_nr - 1));
	put32(m + 4, VIRTIO_PCI_MSIX_TABLE_OFF);  /* BIR 0 */
	put32(m + 8, VIRTIO_PCI_MSIX_PBA_OFF);
	p->wmask[VIRTIO_PCI_CAP_MSIX + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FUNC_MASK) >> 8;

	dev->transport = vp;
	dev->notify_queue = virtio_pci_notify_queue_cb;
	dev->notify_config = virtio_pci_notify_config_cb;
	dev->set_needs_reset = virtio_pci_set_needs_reset_cb;
	dev->status = 0;
	pthread_mutex_lock(&vp->lock);
	virtio_pci_reset(vp);
	pthread_mutex_unlock(&vp->lock);
	*out = vp;
	return 0;
}

void virtio_pci_free(struct virtio_pci *vp)
{
	if (!vp)
		return;
	pthread_mutex_lock(&vp->lock);
	virtio_pci_detach_notifies(vp);
	pthread_mutex_unlock(&vp->lock);
	pthread_mutex_destroy(&vp->lock);
	pthread_mutex_destroy(&vp->irq_lock);
	free(vp);
}
