/* console: virtio-console (virtio 1.2 §5.3) with a single port. Receive
 * reads what the host side has into the next receive buffer; transmit
 * writes each chain's bytes to the host side. See console.h. */
#include "vmm/virtio/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/iov.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vmm/virtio/queue.h"

#define CONSOLE_BUF 4096

struct virtio_console {
	struct virtio_dev dev;
	int in_fd, out_fd;
	int kick_fd;
	pthread_t rx_thread;
	bool rx_thread_started;
	pthread_mutex_t lock;
	bool active, stop;
	bool rx_no_buffers;      /* the guest has no receive buffer queued */
	bool in_eof;             /* the host side closed: stop reading it */
	struct virtq_elem rx_elem, tx_elem;
	uint8_t buf[CONSOLE_BUF];
};

static struct virtio_console *to_console(struct virtio_dev *dev)
{
	return dev->priv;
}

static void console_kick(struct virtio_console *c)
{
	uint64_t one = 1;

	if (write(c->kick_fd, &one, sizeof(one)) < 0)
		return; /* counter full: a kick is already pending */
}

static uint64_t console_get_features(struct virtio_dev *dev)
{
	return 0;
}

static void console_config_read(struct virtio_dev *dev, uint32_t off, void *data, uint32_t len)
{
	memset(data, 0, len);
}

static void console_config_write(struct virtio_dev *dev, uint32_t off, const void *data, uint32_t len)
{
	/* emerg_wr needs VIRTIO_CONSOLE_F_EMERG_WRITE, not offered. */
}

static void console_broken(struct virtio_console *c, int err)
{
	log_ratelimited(LOG_LEVEL_WARN, "virtio-console: the driver sent a malformed descriptor "
			"chain (%s); device needs reset", strerror(-err));
	if (c->dev.set_needs_reset)
		c->dev.set_needs_reset(&c->dev);
}

static int console_activate(struct virtio_dev *dev)
{
	struct virtio_console *c = to_console(dev);
	int r = 0;

	pthread_mutex_lock(&c->lock);
	r = virtq_activate_all(dev);
	if (r < 0)
		goto out;
	c->active = true;
	c->rx_no_buffers = false;
out:
	pthread_mutex_unlock(&c->lock);
	if (r == 0)
		console_kick(c);
	return r;
}

static void console_reset(struct virtio_dev *dev)
{
	struct virtio_console *c = to_console(dev);

	pthread_mutex_lock(&c->lock);
	c->active = false;
	for (unsigned q = 0; q < dev->num_queues; q++)
		virtq_reset(&dev->queues[q]);
	pthread_mutex_unlock(&c->lock);
	console_kick(c);
}

static void console_rx_locked(struct virtio_console *c)
{
	struct virtq *vq = &c->dev.queues[VIRTIO_CONSOLE_RXQ];
	bool pushed = false;
	int r;

	/* Bounded so the lock is released now and then on a busy input. */
	for (unsigned i = 0; i < 64 && c->active && !vq->broken && !c->in_eof; i++) {
		/* Only take a buffer once there is input for it: a chain
		 * once popped must be used. */
		struct pollfd p = {.fd = c->in_fd, .events = POLLIN};
		if (poll(&p, 1, 0) <= 0)
			break;
		if (!(p.revents & POLLIN)) {
			/* Hung up with nothing left to read. */
			if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
				c->in_eof = true;
			break;
		}
		r = virtq_pop(vq, c->dev.mem, &c->rx_elem);
		if (r == -ENOENT) {
			c->rx_no_buffers = true;
			break;
		}
		if (r < 0) {
			if (r != -EIO)
				console_broken(c, r);
			break;
		}
		ssize_t n = 0;
		/* A chain with no writable byte gets nothing (and must not
		 * turn into a zero-length read, which would look like EOF). */
		while (c->rx_elem.in_len > 0) {
			n = read(c->in_fd, c->buf, MIN((size_t)c->rx_elem.in_len, sizeof(c->buf)));
			if (n >= 0 || errno != EINTR)
				break;
		}
		if ((n == 0 && c->rx_elem.in_len > 0) || (n < 0 && errno != EAGAIN))
			c->in_eof = true;
		if (n < 0)
			n = 0;
		iov_from_buf(virtq_elem_in(&c->rx_elem), c->rx_elem.in_num, 0, c->buf, (size_t)n);
		if (virtq_push(vq, c->dev.mem, c->rx_elem.head, (uint32_t)n) < 0) {
			console_broken(c, -EFAULT);
			break;
		}
		pushed = true;
	}
	if (pushed && virtq_should_notify(vq, c->dev.mem) && c->dev.notify_queue)
		c->dev.notify_queue(&c->dev, VIRTIO_CONSOLE_RXQ);
}

static void *console_rx_main(void *arg)
{
	struct virtio_console *c = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = c->kick_fd, .events = POLLIN},
				      {.fd = -1, .events = POLLIN}};
		pthread_mutex_lock(&c->lock);
		if (c->stop) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		if (c->active && !c->rx_no_buffers && !c->in_eof &&
		    !c->dev.queues[VIRTIO_CONSOLE_RXQ].broken)
			p[1].fd = c->in_fd;
		pthread_mutex_unlock(&c->lock);

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN) {
			uint64_t v;
			if (read(c->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
			pthread_mutex_lock(&c->lock);
			c->rx_no_buffers = false;
			pthread_mutex_unlock(&c->lock);
		}
		if (p[1].revents & (POLLHUP | POLLERR)) {
			pthread_mutex_lock(&c->lock);
			c->in_eof = !(p[1].revents & POLLIN);
			pthread_mutex_unlock(&c->lock);
		}
		pthread_mutex_lock(&c->lock);
		console_rx_locked(c);
		pthread_mutex_unlock(&c->lock);
	}
	return NULL;
}

static void console_tx_locked(struct virtio_console *c)
{
	struct virtq *vq = &c->dev.queues[VIRTIO_CONSOLE_TXQ];
	struct virtq_elem *e = &c->tx_elem;
	bool pushed = false;
	int r;

	for (;;) {
		r = virtq_pop(vq, c->dev.mem, e);
		if (r == -ENOENT)
			break;
		if (r < 0) {
			if (r != -EIO)
				console_broken(c, r);
			break;
		}
		/* Copy out first so the guest cannot change bytes mid-write;
		 * output the host side cannot take is dropped, not queued. */
		for (size_t off = 0; off < e->out_len; off += sizeof(c->buf)) {
			size_t n = iov_to_buf(virtq_elem_out(e), e->out_num, off, c->buf,
					      sizeof(c->buf));
			if (util_write_all(c->out_fd, c->buf, n) < 0)
				break;
		}
		if (virtq_push(vq, c->dev.mem, e->head, 0) < 0) {
			console_broken(c, -EFAULT);
			break;
		}
		pushed = true;
	}
	if (pushed && virtq_should_notify(vq, c->dev.mem) && c->dev.notify_queue)
		c->dev.notify_queue(&c->dev, VIRTIO_CONSOLE_TXQ);
}

static void console_queue_notify(struct virtio_dev *dev, unsigned q)
{
	struct virtio_console *c = to_console(dev);

	if (q == VIRTIO_CONSOLE_RXQ) {
		console_kick(c);
		return;
	}
	if (q != VIRTIO_CONSOLE_TXQ)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->active)
		console_tx_locked(c);
	pthread_mutex_unlock(&c->lock);
}

static const struct virtio_dev_ops console_ops = {
	.get_features = console_get_features,
	.config_read = console_config_read,
	.config_write = console_config_write,
	.activate = console_activate,
	.queue_notify = console_queue_notify,
	.reset = console_reset,
};

int virtio_console_new(int in_fd, int out_fd, struct virtio_dev **out)
{
	struct virtio_console *c = NULL;
	int r, fl;

	fl = fcntl(in_fd, F_GETFL);
	if (fl < 0 || fcntl(in_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		r = -errno;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		r = -ENOMEM;
		goto out;
	}
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->kick_fd = -1;
	c->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->kick_fd < 0) {
		r = -errno;
		goto out;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->dev.ops = &console_ops;
	c->dev.priv = c;
	c->dev.device_id = VIRTIO_ID_CONSOLE;
	c->dev.config_len = sizeof(struct virtio_console_config);
	c->dev.num_queues = 2;
	for (unsigned q = 0; q < 2; q++)
		c->dev.queues[q].max_size = c->dev.queues[q].size = VIRTIO_CONSOLE_QUEUE_SIZE;
	r = -pthread_create(&c->rx_thread, NULL, console_rx_main, c);
	if (r < 0)
		goto out;
	c->rx_thread_started = true;
	*out = &c->dev;
	c = NULL;
out:
	if (c)
		virtio_console_free(&c->dev);
	return r;
}

void virtio_console_free(struct virtio_dev *dev)
{
	struct virtio_console *c;

	if (!dev)
		return;
	c = to_console(dev);
	if (c->rx_thread_started) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_mutex_unlock(&c->lock);
		console_kick(c);
		pthread_join(c->rx_thread, NULL);
		pthread_mutex_destroy(&c->lock);
	}
	if (c->kick_fd >= 0)
		close(c->kick_fd);
	free(c);
}
