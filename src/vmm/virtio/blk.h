/* blk: the virtio block device (virtio 1.2 §5.2) on top of a block_dev.
 *
 * One request queue of VIRTIO_BLK_QUEUE_SIZE entries. Requests run
 * synchronously on the thread that calls queue_notify (the transport's
 * ioeventfd thread). A per-device mutex serialises queue processing,
 * activate and reset, so the transport may call those from different
 * threads; config reads take no lock because the config never changes
 * after virtio_blk_new(). The transport's notify_queue and set_needs_reset
 * callbacks are called with that mutex held and must not call back into
 * this device. */
#ifndef VESSEL_VMM_VIRTIO_BLK_H
#define VESSEL_VMM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"

/* §5.2.3 feature bits */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* §5.2.6 request types and status values */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_DWZ_F_UNMAP 1u

/* §5.2.4 device configuration layout, up to the write-zeroes fields. */
struct virtio_blk_config {
	uint64_t capacity; /* in 512-byte sectors, whatever blk_size says */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_blk_config) == 60, "virtio_blk_config layout (§5.2.4)");

/* The request header the driver puts first (§5.2.6). */
struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "virtio_blk_req header is 16 bytes");

/* Create a virtio-blk device for bd. readonly (or a read-only bd) offers
 * VIRTIO_BLK_F_RO and fails every write. The device does not own bd: free
 * the device first, then bd. The transport fills dev->mem and the
 * callbacks before it activates the device. */
int virtio_blk_new(struct block_dev *bd, bool readonly, struct virtio_dev **out);
void virtio_blk_free(struct virtio_dev *dev);

/* Set the GET_ID string (at most 20 bytes are used; §5.2.6). The default is
 * the last path component of the disk's name. */
void virtio_blk_set_id(struct virtio_dev *dev, const char *id);

/* Run one popped request: do the I/O, write the status byte, and return 0
 * with *used_len = bytes written into the chain's writable buffers (the
 * whole writable area: data, padding and status). A request that is not
 * one at all (no 16-byte header, no writable status byte) returns -EINVAL
 * and writes nothing; the caller then marks the device NEEDS_RESET. Used by
 * queue_notify and directly by tests and fuzzers. */
int virtio_blk_handle_request(struct virtio_dev *dev, struct virtq_elem *elem, uint32_t *used_len);

#endif
