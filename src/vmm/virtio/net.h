/* net: the virtio network device (virtio 1.2 §5.1) on a tap file
 * descriptor. Queue 0 receives (host -> guest), queue 1 transmits.
 * No offloads are offered: frames cross whole and fully checksummed, and
 * the 12-byte virtio_net_hdr_v1 carries nothing but num_buffers = 1.
 *
 * Threads and locking: transmit runs on the thread that calls queue_notify
 * (the transport's ioeventfd thread). Receive runs on a thread of the
 * device's own, which polls the tap while the guest has receive buffers
 * and otherwise waits for a kick (queue 0 notify, activate, reset, free).
 * One mutex per device covers both queues, activate and reset; the
 * transport's notify_queue and set_needs_reset callbacks are called with it
 * held (from either thread) and must not call back into this device. */
#ifndef VESSEL_VMM_VIRTIO_NET_H
#define VESSEL_VMM_VIRTIO_NET_H

#include <stdint.h>

#include "vmm/virtio/virtio.h"

/* §5.1.3 feature bits (only those we use or refer to) */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1

#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
/* §5.1.6: struct virtio_net_hdr_v1, the header in front of every frame
 * once VERSION_1 is negotiated. */
#define VIRTIO_NET_HDR_LEN 12
/* The largest frame a tap hands over or takes (64 KiB IP packet plus
 * Ethernet header). */
#define VIRTIO_NET_MAX_FRAME (65535 + 14)

/* §5.1.4 device configuration layout */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_net_config) == 12, "virtio_net_config layout (§5.1.4)");

/* virtio_net_new() backends */
#define VIRTIO_NET_BACKEND_TAP 0    /* a tap opened with IFF_VNET_HDR (see below) */
#define VIRTIO_NET_BACKEND_SOCKET 1 /* a SOCK_SEQPACKET/SOCK_DGRAM socket carrying the
				     * same datagrams (12-byte header + frame); for tests */

/* Open /dev/net/tun as tap `ifname` (may contain %d) with IFF_TAP |
 * IFF_NO_PI | IFF_VNET_HDR, as the daemon does before it hands the fd to
 * the monitor. Needs CAP_NET_ADMIN. Returns 0 and the fd, or -errno. */
int virtio_net_tap_open(const char *ifname, int *fd_out);

/* Create the device on fd, which it owns from then on (closed by
 * virtio_net_free(), also on failure). For a tap it sets the vnet header
 * size to 12 and turns offloads off. Starts the receive thread. */
int virtio_net_new(int fd, const uint8_t mac[6], unsigned backend, struct virtio_dev **out);
void virtio_net_free(struct virtio_dev *dev);

#endif
