/* console: the virtio console device (virtio 1.2 §5.3), one port and no
 * optional features: queue 0 (receiveq0) carries bytes from a host fd to
 * the guest, queue 1 (transmitq0) bytes from the guest to a host fd. It is
 * the guest's hvc0, for a serial console that does not trap per byte.
 *
 * Threads and locking as in net.h: transmit on the queue_notify thread,
 * receive on the device's own thread, one mutex for both, activate and
 * reset; the transport's callbacks run with it held. */
#ifndef VESSEL_VMM_VIRTIO_CONSOLE_H
#define VESSEL_VMM_VIRTIO_CONSOLE_H

#include <stdint.h>

#include "vmm/virtio/virtio.h"

#define VIRTIO_CONSOLE_QUEUE_SIZE 64
#define VIRTIO_CONSOLE_RXQ 0
#define VIRTIO_CONSOLE_TXQ 1

/* §5.3.4 configuration layout; its fields are only meaningful with
 * features we do not offer, so it reads as zeroes. */
struct virtio_console_config {
	uint16_t cols;
	uint16_t rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_console_config) == 12, "virtio_console_config (§5.3.4)");

/* Create the device reading guest input from in_fd and writing guest output
 * to out_fd (may be the same fd, e.g. a pty or a socket). The device does
 * not own or close them; in_fd is switched to non-blocking. Starts the
 * receive thread. */
int virtio_console_new(int in_fd, int out_fd, struct virtio_dev **out);
void virtio_console_free(struct virtio_dev *dev);

#endif
