/* rng: the virtio entropy device (virtio 1.2 §5.4), fed from the host's
 * getrandom(). One request queue; no features, no config space. Requests
 * run on the thread that calls queue_notify, under a per-device mutex that
 * also covers activate and reset. */
#ifndef VESSEL_VMM_VIRTIO_RNG_H
#define VESSEL_VMM_VIRTIO_RNG_H

#include "vmm/virtio/virtio.h"

#define VIRTIO_RNG_QUEUE_SIZE 64
/* Most bytes handed out per request; the device may use less than the
 * whole buffer (§5.4.6.2), which bounds the work one request causes. */
#define VIRTIO_RNG_MAX_PER_REQUEST (64 * 1024)

int virtio_rng_new(struct virtio_dev **out);
void virtio_rng_free(struct virtio_dev *dev);

#endif
