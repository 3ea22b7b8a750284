/* rng: virtio-rng (virtio 1.2 §5.4). Each chain's device-writable buffers
 * are filled with bytes from getrandom(), up to VIRTIO_RNG_MAX_PER_REQUEST
 * per chain. */
#include "vmm/virtio/rng.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vmm/virtio/queue.h"

struct virtio_rng {
	struct virtio_dev dev;
	pthread_mutex_t lock;
	bool active;
	struct virtq_elem elem;
};

static struct virtio_rng *to_rng(struct virtio_dev *dev)
{
	return dev->priv;
}

static uint64_t rng_get_features(struct virtio_dev *dev)
{
	return 0;
}

static void rng_config_read(struct virtio_dev *dev, uint32_t off, void *data, uint32_t len)
{
}

static void rng_config_write(struct virtio_dev *dev, uint32_t off, const void *data, uint32_t len)
{
}

static int rng_activate(struct virtio_dev *dev)
{
	struct virtio_rng *g = to_rng(dev);
	int r = 0;

	pthread_mutex_lock(&g->lock);
	r = virtq_activate_all(dev);
	if (r < 0)
		goto out;
	g->active = true;
out:
	pthread_mutex_unlock(&g->lock);
	return r;
}

static void rng_reset(struct virtio_dev *dev)
{
	struct virtio_rng *g = to_rng(dev);

	pthread_mutex_lock(&g->lock);
	g->active = false;
	virtq_reset(&dev->queues[0]);
	pthread_mutex_unlock(&g->lock);
}

/* Fill the writable buffers of e; returns the bytes written. */
static uint32_t rng_fill(struct virtq_elem *e)
{
	uint32_t done = 0;

	for (unsigned i = e->out_num; i < e->out_num + e->in_num; i++) {
		size_t want = MIN(e->iov[i].iov_len, (size_t)(VIRTIO_RNG_MAX_PER_REQUEST - done));
		size_t got = 0;
		while (got < want) {
			ssize_t n = getrandom((uint8_t *)e->iov[i].iov_base + got, want - got, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				/* Hand out what we have: §5.4.6.2 allows fewer
				 * bytes than the buffer holds. */
				return done + (uint32_t)got;
			}
			got += (size_t)n;
		}
		done += (uint32_t)got;
		/* The used length counts bytes from the start of the writable
		 * buffers (§2.7.8.1), so stop at the first partial one. */
		if (got < e->iov[i].iov_len || done >= VIRTIO_RNG_MAX_PER_REQUEST)
			break;
	}
	return done;
}

static void rng_queue_notify(struct virtio_dev *dev, unsigned q)
{
	struct virtio_rng *g = to_rng(dev);
	struct virtq *vq = &dev->queues[0];
	bool pushed = false;
	int r;

	pthread_mutex_lock(&g->lock);
	if (q != 0 || !g->active)
		goto out;
	for (;;) {
		r = virtq_pop(vq, dev->mem, &g->elem);
		if (r == -ENOENT)
			break;
		if (r < 0) {
			if (r != -EIO) {
				log_ratelimited(LOG_LEVEL_WARN, "virtio-rng: the driver sent a "
						"malformed descriptor chain (%s); device needs reset",
						strerror(-r));
				if (dev->set_needs_reset)
					dev->set_needs_reset(dev);
			}
			break;
		}
		/* §5.4.6.1: drivers only queue writable buffers. Readable
		 * ones carry nothing for us and are ignored. */
		if (virtq_push(vq, dev->mem, g->elem.head, rng_fill(&g->elem)) < 0) {
			if (dev->set_needs_reset)
				dev->set_needs_reset(dev);
			break;
		}
		pushed = true;
	}
	if (pushed && virtq_should_notify(vq, dev->mem) && dev->notify_queue)
		dev->notify_queue(dev, 0);
out:
	pthread_mutex_unlock(&g->lock);
}

static const struct virtio_dev_ops rng_ops = {
	.get_features = rng_get_features,
	.config_read = rng_config_read,
	.config_write = rng_config_write,
	.activate = rng_activate,
	.queue_notify = rng_queue_notify,
	.reset = rng_reset,
};

int virtio_rng_new(struct virtio_dev **out)
{
	struct virtio_rng *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	g->dev.ops = &rng_ops;
	g->dev.priv = g;
	g->dev.device_id = VIRTIO_ID_RNG;
	g->dev.config_len = 0;
	g->dev.num_queues = 1;
	g->dev.queues[0].max_size = VIRTIO_RNG_QUEUE_SIZE;
	g->dev.queues[0].size = VIRTIO_RNG_QUEUE_SIZE;
	*out = &g->dev;
	return 0;
}

void virtio_rng_free(struct virtio_dev *dev)
{
	struct virtio_rng *g;

	if (!dev)
		return;
	g = to_rng(dev);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
