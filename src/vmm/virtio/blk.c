/* blk: virtio-blk (virtio 1.2 §5.2): config space, feature offer and the
 * request handler (IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES) over the
 * block layer. Every request field comes from guest memory and is copied
 * once, then checked: sizes, direction of each part, sector range. See
 * blk.h for threading. */
#include "vmm/virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/iov.h"
#include "lib/log.h"
#include "lib/util.h"

/* Limits we advertise (§5.2.4) and hold the driver to. */
#define BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2) /* a chain also needs header and status */
#define BLK_MAX_DWZ_SECTORS 0x3fffffu           /* 2 GiB per discard / write-zeroes */
#define BLK_MAX_DWZ_SEG 1u

struct virtio_blk {
	struct virtio_dev dev;
	struct block_dev *bd;
	bool readonly;
	bool active;               /* between activate and reset */
	pthread_mutex_t lock;      /* queue processing, activate, reset */
	struct virtio_blk_config config; /* little-endian, as the guest reads it */
	char id[VIRTIO_BLK_ID_BYTES];
	struct virtq_elem elem;    /* the request being processed */
	struct iovec data[VIRTQ_ELEM_MAX_SEGS]; /* its data part */
};

/* §5.2.6.1: a discard / write-zeroes segment. */
struct virtio_blk_dwz {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};
_Static_assert(sizeof(struct virtio_blk_dwz) == 16, "discard segment is 16 bytes");

static struct virtio_blk *to_blk(struct virtio_dev *dev)
{
	return dev->priv;
}

static uint64_t blk_get_features(struct virtio_dev *dev)
{
	struct virtio_blk *b = to_blk(dev);
	uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << VIRTIO_BLK_F_FLUSH);

	if (b->readonly)
		f |= 1ull << VIRTIO_BLK_F_RO;
	else
		f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	return f;
}

static void blk_config_read(struct virtio_dev *dev, uint32_t off, void *data, uint32_t len)
{
	struct virtio_blk *b = to_blk(dev);

	memset(data, 0, len);
	if (off < sizeof(b->config))
		memcpy(data, (const uint8_t *)&b->config + off, MIN(len, sizeof(b->config) - off));
}

static void blk_config_write(struct virtio_dev *dev, uint32_t off, const void *data, uint32_t len)
{
	/* Only `writeback` is writable, and only with CONFIG_WCE, which we do
	 * not offer (§5.2.5): every field is read-only for this device. */
}

static int blk_activate(struct virtio_dev *dev)
{
	struct virtio_blk *b = to_blk(dev);
	int r = 0;

	pthread_mutex_lock(&b->lock);
	r = virtq_activate_all(dev);
	if (r < 0) {
		log_ratelimited(LOG_LEVEL_WARN, "virtio-blk '%s': the driver placed the "
				"request queue outside guest RAM or misaligned; device "
				"needs reset", b->bd->name);
		goto out;
	}
	b->active = true;
out:
	pthread_mutex_unlock(&b->lock);
	return r;
}

static void blk_reset(struct virtio_dev *dev)
{
	struct virtio_blk *b = to_blk(dev);

	pthread_mutex_lock(&b->lock);
	b->active = false;
	for (unsigned i = 0; i < dev->num_queues; i++)
		virtq_reset(&dev->queues[i]);
	pthread_mutex_unlock(&b->lock);
}

/* The byte offset of a request's sectors when they lie inside the disk;
 * false when the request must fail with IOERR (§5.2.6.1). */
static bool blk_range_ok(struct virtio_blk *b, uint64_t sector, uint64_t bytes, uint64_t *off)
{
	return block_sector_range(b->bd, sector, bytes, off) == 0;
}

static uint8_t blk_do_rw(struct virtio_blk *b, struct virtq_elem *e, uint32_t type,
			 uint64_t sector, uint32_t data_out, uint32_t data_in)
{
	bool write = type == VIRTIO_BLK_T_OUT;
	uint32_t len = write ? data_out : data_in;
	uint64_t off;
	unsigned n;
	int r;

	/* The data direction must match the request: a read puts nothing
	 * but the header in readable buffers, a write nothing but the status
	 * in writable ones (§5.2.6). */
	if ((write && data_in) || (!write && data_out))
		return VIRTIO_BLK_S_IOERR;
	/* §5.2.6.1: the device MUST fail a write to a read-only device and
	 * MUST NOT write any data. */
	if (write && b->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (!blk_range_ok(b, sector, len, &off))
		return VIRTIO_BLK_S_IOERR;
	if (write)
		r = iov_slice(virtq_elem_out(e), e->out_num, sizeof(struct virtio_blk_outhdr), len,
			      b->data, ARRAY_SIZE(b->data), &n);
	else
		r = iov_slice(virtq_elem_in(e), e->in_num, 0, len, b->data, ARRAY_SIZE(b->data), &n);
	if (r < 0)
		return VIRTIO_BLK_S_IOERR;
	r = write ? block_pwritev(b->bd, b->data, n, off) : block_preadv(b->bd, b->data, n, off);
	/* Without FLUSH negotiated the driver cannot ask for durability, so
	 * every write is written through (§5.2.6.3 "writethrough"). */
	if (r == 0 && write && !virtio_has_feature(&b->dev, VIRTIO_BLK_F_FLUSH))
		r = block_flush(b->bd);
	if (r < 0) {
		log_ratelimited(LOG_LEVEL_WARN, "virtio-blk '%s': %s of %u bytes at sector %llu "
				"failed: %s", b->bd->name, write ? "write" : "read", len,
				(unsigned long long)sector, strerror(-r));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_do_dwz(struct virtio_blk *b, struct virtq_elem *e, uint32_t type,
			  uint32_t data_out, uint32_t data_in)
{
	bool discard = type == VIRTIO_BLK_T_DISCARD;
	struct virtio_blk_dwz seg;
	uint64_t off;
	int r;

	if (!virtio_has_feature(&b->dev, discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES))
		return VIRTIO_BLK_S_UNSUPP;
	if (b->readonly || data_in || data_out == 0 || data_out % sizeof(seg) ||
	    data_out / sizeof(seg) > BLK_MAX_DWZ_SEG)
		return VIRTIO_BLK_S_IOERR;
	for (uint32_t i = 0; i < data_out / sizeof(seg); i++) {
		iov_to_buf(virtq_elem_out(e), e->out_num,
			   sizeof(struct virtio_blk_outhdr) + i * sizeof(seg), &seg, sizeof(seg));
		uint64_t sector = le64toh(seg.sector);
		uint32_t num = le32toh(seg.num_sectors), flags = le32toh(seg.flags);
		/* §5.2.6.2: unknown flags, or unmap on a discard, are
		 * unsupported. */
		if ((flags & ~VIRTIO_BLK_DWZ_F_UNMAP) || (discard && (flags & VIRTIO_BLK_DWZ_F_UNMAP)))
			return VIRTIO_BLK_S_UNSUPP;
		if (num > BLK_MAX_DWZ_SECTORS ||
		    !blk_range_ok(b, sector, (uint64_t)num << BLOCK_SECTOR_SHIFT, &off))
			return VIRTIO_BLK_S_IOERR;
		uint64_t len = (uint64_t)num << BLOCK_SECTOR_SHIFT;
		r = discard ? block_discard(b->bd, off, len) : block_write_zeroes(b->bd, off, len);
		/* Discard is only a hint (§5.2.6.2): a disk that cannot punch
		 * holes just keeps the data. */
		if (r == -EOPNOTSUPP && discard)
			r = 0;
		if (r < 0)
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static int blk_handle_locked(struct virtio_blk *b, struct virtq_elem *e, uint32_t *used_len)
{
	struct virtio_blk_outhdr hdr;
	uint32_t data_out, data_in, type;
	uint8_t status;

	/* Framing is free (§2.6.4): the header may be split over buffers and
	 * the status byte share one with data. What is fixed is that the
	 * header is the first 16 readable bytes and the status the last
	 * writable byte. Without those this is not a request at all. */
	if (e->out_len < sizeof(hdr) || e->in_len < 1)
		return -EINVAL;
	iov_to_buf(virtq_elem_out(e), e->out_num, 0, &hdr, sizeof(hdr));
	type = le32toh(hdr.type);
	data_out = e->out_len - (uint32_t)sizeof(hdr);
	data_in = e->in_len - 1;

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		status = blk_do_rw(b, e, type, le64toh(hdr.sector), data_out, data_in);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = block_flush(b->bd) == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		/* §5.2.6: up to 20 bytes, NUL-padded. The rest of a larger
		 * buffer is zeroed below. */
		size_t n = MIN((size_t)data_in, sizeof(b->id));
		iov_from_buf(virtq_elem_in(e), e->in_num, 0, b->id, n);
		iov_memset(virtq_elem_in(e), e->in_num, n, 0, data_in - n);
		status = VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = blk_do_dwz(b, e, type, data_out, data_in);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	/* The used length promises that many bytes from the start of the
	 * writable buffers were written (§2.7.8.1). Only a successful read
	 * and GET_ID fill the data part, so any other request zeroes it:
	 * then the whole writable area is always written. */
	if (status != VIRTIO_BLK_S_OK || (type != VIRTIO_BLK_T_IN && type != VIRTIO_BLK_T_GET_ID))
		iov_memset(virtq_elem_in(e), e->in_num, 0, 0, data_in);
	iov_from_buf(virtq_elem_in(e), e->in_num, data_in, &status, 1);
	*used_len = e->in_len;
	return 0;
}

int virtio_blk_handle_request(struct virtio_dev *dev, struct virtq_elem *elem, uint32_t *used_len)
{
	struct virtio_blk *b = to_blk(dev);
	int r;

	pthread_mutex_lock(&b->lock);
	r = blk_handle_locked(b, elem, used_len);
	pthread_mutex_unlock(&b->lock);
	return r;
}

static void blk_broken(struct virtio_blk *b, const char *what, int err)
{
	log_ratelimited(LOG_LEVEL_WARN, "virtio-blk '%s': the driver sent %s (%s); device "
			"needs reset", b->bd->name, what, strerror(-err));
	if (b->dev.set_needs_reset)
		b->dev.set_needs_reset(&b->dev);
}

static void blk_queue_notify(struct virtio_dev *dev, unsigned q)
{
	struct virtio_blk *b = to_blk(dev);
	struct virtq *vq = &dev->queues[0];
	bool pushed = false;
	uint32_t used_len;
	int r;

	pthread_mutex_lock(&b->lock);
	/* §3.1.1: no buffers are used before DRIVER_OK. */
	if (q != 0 || !b->active)
		goto out;
	for (;;) {
		r = virtq_pop(vq, dev->mem, &b->elem);
		if (r == -ENOENT)
			break;
		if (r < 0) {
			if (r != -EIO)
				blk_broken(b, "a malformed descriptor chain", r);
			break;
		}
		r = blk_handle_locked(b, &b->elem, &used_len);
		if (r < 0) {
			vq->broken = true;
			blk_broken(b, "a request without header or status byte", r);
			break;
		}
		r = virtq_push(vq, dev->mem, b->elem.head, used_len);
		if (r < 0) {
			blk_broken(b, "a used ring outside guest RAM", r);
			break;
		}
		pushed = true;
	}
	if (pushed && virtq_should_notify(vq, dev->mem) && dev->notify_queue)
		dev->notify_queue(dev, 0);
out:
	pthread_mutex_unlock(&b->lock);
}

static const struct virtio_dev_ops blk_ops = {
	.get_features = blk_get_features,
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
};

void virtio_blk_set_id(struct virtio_dev *dev, const char *id)
{
	struct virtio_blk *b = to_blk(dev);

	memset(b->id, 0, sizeof(b->id));
	memcpy(b->id, id, MIN(strlen(id), sizeof(b->id)));
}

int virtio_blk_new(struct block_dev *bd, bool readonly, struct virtio_dev **out)
{
	struct virtio_blk *b;
	struct virtio_blk_config *c;
	const char *base;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->lock, NULL);
	b->bd = bd;
	b->readonly = readonly || bd->read_only;
	b->dev.ops = &blk_ops;
	b->dev.priv = b;
	b->dev.device_id = VIRTIO_ID_BLOCK;
	b->dev.config_len = sizeof(b->config);
	b->dev.num_queues = 1;
	b->dev.queues[0].max_size = VIRTIO_BLK_QUEUE_SIZE;
	b->dev.queues[0].size = VIRTIO_BLK_QUEUE_SIZE;

	c = &b->config;
	c->capacity = htole64(block_sectors(bd));
	c->seg_max = htole32(BLK_SEG_MAX);
	c->blk_size = htole32(BLOCK_SECTOR_SIZE);
	c->num_queues = htole16(1);
	c->max_discard_sectors = htole32(BLK_MAX_DWZ_SECTORS);
	c->max_discard_seg = htole32(BLK_MAX_DWZ_SEG);
	c->discard_sector_alignment = htole32(4096 / BLOCK_SECTOR_SIZE);
	c->max_write_zeroes_sectors = htole32(BLK_MAX_DWZ_SECTORS);
	c->max_write_zeroes_seg = htole32(BLK_MAX_DWZ_SEG);

	base = strrchr(bd->name, '/');
	virtio_blk_set_id(&b->dev, base ? base + 1 : bd->name);
	*out = &b->dev;
	return 0;
}

void virtio_blk_free(struct virtio_dev *dev)
{
	struct virtio_blk *b;

	if (!dev)
		return;
	b = to_blk(dev);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
