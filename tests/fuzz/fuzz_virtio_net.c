/* fuzz_virtio_net: libFuzzer target for the virtio-net transmit path. The
 * input is a transmit chain in the same layout as fuzz_virtio_blk's
 *   byte 0   bit 0 EVENT_IDX, bit 1 INDIRECT_DESC negotiated
 *   byte 1   number of descriptors (1..16 used)
 *   then per descriptor 4 bytes: u16 length, u8 flags (bit 0 WRITE,
 *            bit 1 INDIRECT), u8 gap placed before the buffer
 *   then the initial content of the data area (header and frame).
 * The device sits on a SOCK_SEQPACKET socketpair; whatever it sends is
 * read back and checked to start with a zeroed 12-byte header (no offload
 * field may pass from the guest to the host kernel). */
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/queue.h"

#define FZ_RAM_GPA 0x100000ull
#define FZ_RING_BYTES 0x4000u
#define FZ_DATA_BYTES 0x10000u
#define FZ_RAM_SIZE (FZ_RING_BYTES + FZ_DATA_BYTES)
#define FZ_QSIZE 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *ram;
static struct guest_mem mem;
static struct virtio_dev *dev;
static int peer;

static void fz_setup(void)
{
	static const uint8_t mac[6] = {0x52, 0x54, 0, 0, 0, 1};
	int sv[2];

	log_set_level(LOG_LEVEL_ERROR);
	ram = calloc(1, FZ_RAM_SIZE);
	if (!ram || guest_mem_add_region(&mem, FZ_RAM_GPA, FZ_RAM_SIZE, ram) < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	/* room for a few maximum-size frames */
	int sz = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	peer = sv[1];
	if (virtio_net_new(sv[0], mac, VIRTIO_NET_BACKEND_SOCKET, &dev) < 0)
		abort();
	dev->mem = &mem;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME + 16];
	unsigned n, cursor = 0;
	uint8_t feat;

	if (!dev)
		fz_setup();
	if (size < 2)
		return 0;
	feat = data[0];
	n = data[1] % FZ_QSIZE + 1;
	data += 2;
	size -= 2;
	if (size < 4 * n)
		return 0;

	dev->ops->reset(dev);
	dev->driver_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC) |
			       ((feat & 1) ? 1ull << VIRTIO_F_EVENT_IDX : 0) |
			       ((feat & 2) ? 1ull << VIRTIO_F_INDIRECT_DESC : 0);
	struct virtq *vq = &dev->queues[VIRTIO_NET_TXQ];
	vq->size = FZ_QSIZE;
	vq->desc_gpa = FZ_RAM_GPA;
	vq->avail_gpa = FZ_RAM_GPA + 0x1000;
	vq->used_gpa = FZ_RAM_GPA + 0x2000;
	vq->enabled = true;

	memset(ram, 0, FZ_RAM_SIZE);
	for (unsigned i = 0; i < n; i++) {
		uint16_t len = (uint16_t)(data[4 * i] | data[4 * i + 1] << 8);
		uint8_t fl = data[4 * i + 2], gap = data[4 * i + 3];
		uint16_t flags = (fl & 1 ? VIRTQ_DESC_F_WRITE : 0) | (fl & 2 ? VIRTQ_DESC_F_INDIRECT : 0) |
				 (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		cursor += gap;
		struct virtq_desc d = {htole64(FZ_RAM_GPA + FZ_RING_BYTES + cursor), htole32(len),
				       htole16(flags), htole16((uint16_t)(i + 1))};
		memcpy(ram + 16 * i, &d, sizeof(d));
		cursor += len;
	}
	data += 4 * n;
	size -= 4 * n;
	memcpy(ram + FZ_RING_BYTES, data, size < FZ_DATA_BYTES ? size : FZ_DATA_BYTES);
	ram[0x1000 + 2] = 1; /* avail idx 1, head 0 */

	if (dev->ops->activate(dev) == 0)
		dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	ssize_t got;
	while ((got = recv(peer, frame, sizeof(frame), MSG_DONTWAIT)) > 0) {
		if (got <= VIRTIO_NET_HDR_LEN)
			abort(); /* never a frame without payload */
		for (int i = 0; i < VIRTIO_NET_HDR_LEN; i++)
			if (frame[i])
				abort(); /* guest header bytes leaked to the host */
	}
	return 0;
}
