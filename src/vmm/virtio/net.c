/* net: virtio-net (virtio 1.2 §5.1) over a tap fd. Receive copies each
 * frame the tap gives into the next receive chain; transmit copies each
 * chain into one frame for the tap. Copying through a bounded host buffer
 * keeps the guest from changing a frame while the kernel reads it and keeps
 * chain layouts (up to 1024 pieces) away from writev limits. See net.h for
 * threads and locking. */
#include "vmm/virtio/net.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/iov.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vmm/virtio/queue.h"

#define NET_BUF_LEN (VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME)
/* Frames handled per receive round before other work gets the lock. */
#define NET_RX_BATCH 64

struct virtio_net {
	struct virtio_dev dev;
	int fd;
	int kick_fd;               /* eventfd: wake the receive thread */
	pthread_t rx_thread;
	bool rx_thread_started;
	pthread_mutex_t lock;      /* both queues, active, rx state */
	bool active;
	bool stop;
	bool rx_no_buffers;        /* last receive found the ring empty */
	bool rx_dead;              /* the tap failed: stop polling it */
	size_t rx_pending;         /* bytes of a frame read but not delivered */
	bool rx_have_elem;         /* rx_elem popped but not used yet */
	struct virtio_net_config config;
	struct virtq_elem rx_elem, tx_elem;
	uint8_t rx_buf[NET_BUF_LEN];
	uint8_t tx_buf[NET_BUF_LEN];
	uint64_t rx_dropped, tx_dropped;
};

static struct virtio_net *to_net(struct virtio_dev *dev)
{
	return dev->priv;
}

static void net_kick(struct virtio_net *n)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow, i.e. a kick is
	 * already pending. */
	if (write(n->kick_fd, &one, sizeof(one)) < 0)
		return;
}

static uint64_t net_get_features(struct virtio_dev *dev)
{
	return (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS);
}

static void net_config_read(struct virtio_dev *dev, uint32_t off, void *data, uint32_t len)
{
	struct virtio_net *n = to_net(dev);

	memset(data, 0, len);
	if (off < sizeof(n->config))
		memcpy(data, (const uint8_t *)&n->config + off, MIN(len, sizeof(n->config) - off));
}

static void net_config_write(struct virtio_dev *dev, uint32_t off, const void *data, uint32_t len)
{
	/* §5.1.4: the MAC is only writable by a legacy driver; everything
	 * here is read-only. */
}

static void net_broken(struct virtio_net *n, const char *what, int err)
{
	log_ratelimited(LOG_LEVEL_WARN, "virtio-net: the driver sent %s (%s); device needs reset",
			what, strerror(-err));
	if (n->dev.set_needs_reset)
		n->dev.set_needs_reset(&n->dev);
}

static int net_activate(struct virtio_dev *dev)
{
	struct virtio_net *n = to_net(dev);
	int r = 0;

	pthread_mutex_lock(&n->lock);
	r = virtq_activate_all(dev);
	if (r < 0)
		goto out;
	n->active = true;
	n->rx_no_buffers = false;
out:
	pthread_mutex_unlock(&n->lock);
	if (r == 0)
		net_kick(n);
	return r;
}

static void net_reset(struct virtio_dev *dev)
{
	struct virtio_net *n = to_net(dev);

	pthread_mutex_lock(&n->lock);
	n->active = false;
	n->rx_pending = 0;
	n->rx_have_elem = false;
	n->rx_dead = false;
	for (unsigned q = 0; q < dev->num_queues; q++)
		virtq_reset(&dev->queues[q]);
	pthread_mutex_unlock(&n->lock);
	net_kick(n);
}

/* Deliver frames from the tap while there are frames and buffers. Called
 * with the lock held. */
static void net_rx_locked(struct virtio_net *n)
{
	struct virtq *vq = &n->dev.queues[VIRTIO_NET_RXQ];
	bool pushed = false;
	int r;

	for (unsigned i = 0; i < NET_RX_BATCH && n->active && !vq->broken; i++) {
		if (!n->rx_pending) {
			ssize_t len = read(n->fd, n->rx_buf, sizeof(n->rx_buf));
			if (len < 0 && errno == EINTR)
				continue;
			if (len == 0 || (len < 0 && errno != EAGAIN)) {
				/* End of file or a broken tap: polling it again
				 * would spin. */
				log_error("virtio-net: reading the tap failed (%s); receive stops "
					  "until the device is reset",
					  len == 0 ? "end of file" : strerror(errno));
				n->rx_dead = true;
			}
			if (len <= 0)
				break; /* EAGAIN: nothing more for now */
			if ((size_t)len <= VIRTIO_NET_HDR_LEN) {
				n->rx_dropped++;
				continue;
			}
			n->rx_pending = (size_t)len;
		}
		if (!n->rx_have_elem) {
			r = virtq_pop(vq, n->dev.mem, &n->rx_elem);
			if (r == -ENOENT) {
				/* Keep the frame until the guest adds buffers
				 * and kicks queue 0. */
				n->rx_no_buffers = true;
				break;
			}
			if (r < 0) {
				if (r != -EIO)
					net_broken(n, "a malformed receive chain", r);
				break;
			}
			n->rx_have_elem = true;
		}
		if (n->rx_elem.in_len < n->rx_pending) {
			/* Without MRG_RXBUF one chain holds a whole frame
			 * (§5.1.6.3.1); a frame that does not fit is dropped
			 * and the chain kept for the next one. */
			n->rx_dropped++;
			n->rx_pending = 0;
			continue;
		}
		/* No offloads negotiated: flags and GSO fields must be zero
		 * (§5.1.6.3.1); num_buffers is 1 (§5.1.6.4). */
		memset(n->rx_buf, 0, VIRTIO_NET_HDR_LEN);
		uint16_t nb = htole16(1);
		memcpy(n->rx_buf + 10, &nb, sizeof(nb));
		iov_from_buf(virtq_elem_in(&n->rx_elem), n->rx_elem.in_num, 0, n->rx_buf,
			     n->rx_pending);
		r = virtq_push(vq, n->dev.mem, n->rx_elem.head, (uint32_t)n->rx_pending);
		n->rx_have_elem = false;
		n->rx_pending = 0;
		if (r < 0) {
			net_broken(n, "a used ring outside guest RAM", r);
			break;
		}
		pushed = true;
	}
	if (pushed && virtq_should_notify(vq, n->dev.mem) && n->dev.notify_queue)
		n->dev.notify_queue(&n->dev, VIRTIO_NET_RXQ);
}

static void *net_rx_main(void *arg)
{
	struct virtio_net *n = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = n->kick_fd, .events = POLLIN},
				      {.fd = -1, .events = POLLIN}};
		pthread_mutex_lock(&n->lock);
		if (n->stop) {
			pthread_mutex_unlock(&n->lock);
			break;
		}
		/* Watch the tap only while there is somewhere to put a
		 * frame: otherwise a busy tap would spin this thread. */
		if (n->active && !n->rx_no_buffers && !n->rx_dead &&
		    !n->dev.queues[VIRTIO_NET_RXQ].broken)
			p[1].fd = n->fd;
		pthread_mutex_unlock(&n->lock);

		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			log_error("virtio-net: poll failed: %s; receive stops", strerror(errno));
			break;
		}
		if (p[0].revents & POLLIN) {
			uint64_t v;
			if (read(n->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
			pthread_mutex_lock(&n->lock);
			n->rx_no_buffers = false;
			pthread_mutex_unlock(&n->lock);
		}
		pthread_mutex_lock(&n->lock);
		/* A hung-up or failed fd with nothing to read would report
		 * itself forever. */
		if ((p[1].revents & (POLLHUP | POLLERR | POLLNVAL)) && !(p[1].revents & POLLIN)) {
			log_error("virtio-net: the tap hung up; receive stops until the device is reset");
			n->rx_dead = true;
		}
		net_rx_locked(n);
		pthread_mutex_unlock(&n->lock);
	}
	return NULL;
}

static void net_tx_locked(struct virtio_net *n)
{
	struct virtq *vq = &n->dev.queues[VIRTIO_NET_TXQ];
	struct virtq_elem *e = &n->tx_elem;
	bool pushed = false;
	int r;

	for (;;) {
		r = virtq_pop(vq, n->dev.mem, e);
		if (r == -ENOENT)
			break;
		if (r < 0) {
			if (r != -EIO)
				net_broken(n, "a malformed transmit chain", r);
			break;
		}
		/* §5.1.6.2: header then frame, all device-readable. A chain
		 * without a full header or with a frame larger than any tap
		 * takes is dropped, not sent. */
		if (e->out_len <= VIRTIO_NET_HDR_LEN || e->out_len > NET_BUF_LEN) {
			n->tx_dropped++;
			log_ratelimited(LOG_LEVEL_WARN, "virtio-net: dropped a transmit chain of %u "
					"bytes (needs a %u-byte header and at most %u frame bytes)",
					e->out_len, VIRTIO_NET_HDR_LEN, VIRTIO_NET_MAX_FRAME);
		} else {
			iov_to_buf(virtq_elem_out(e), e->out_num, 0, n->tx_buf, e->out_len);
			/* No offloads negotiated: whatever the guest put in
			 * flags/GSO fields is not passed to the host kernel. */
			memset(n->tx_buf, 0, VIRTIO_NET_HDR_LEN);
			ssize_t w;
			do
				w = write(n->fd, n->tx_buf, e->out_len);
			while (w < 0 && errno == EINTR);
			/* A full tap queue drops the frame, as a NIC would. */
			if (w != (ssize_t)e->out_len)
				n->tx_dropped++;
		}
		r = virtq_push(vq, n->dev.mem, e->head, 0);
		if (r < 0) {
			net_broken(n, "a used ring outside guest RAM", r);
			break;
		}
		pushed = true;
	}
	if (pushed && virtq_should_notify(vq, n->dev.mem) && n->dev.notify_queue)
		n->dev.notify_queue(&n->dev, VIRTIO_NET_TXQ);
}

static void net_queue_notify(struct virtio_dev *dev, unsigned q)
{
	struct virtio_net *n = to_net(dev);

	if (q == VIRTIO_NET_RXQ) {
		/* New receive buffers: let the receive thread retry. */
		net_kick(n);
		return;
	}
	if (q != VIRTIO_NET_TXQ)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->active)
		net_tx_locked(n);
	pthread_mutex_unlock(&n->lock);
}

static const struct virtio_dev_ops net_ops = {
	.get_features = net_get_features,
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
};

int virtio_net_tap_open(const char *ifname, int *fd_out)
{
	struct ifreq ifr;
	int fd, r;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

static int net_tap_setup(int fd)
{
	struct ifreq ifr;
	int hdr = VIRTIO_NET_HDR_LEN;

	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		log_error("virtio-net: the network fd is not a tap device; pass a tap opened "
			  "from /dev/net/tun");
		return -EINVAL;
	}
	if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_NO_PI) ||
	    !(ifr.ifr_flags & IFF_VNET_HDR)) {
		log_error("virtio-net: tap '%s' was opened without IFF_TAP|IFF_NO_PI|IFF_VNET_HDR; "
			  "reopen it with those flags", ifr.ifr_name);
		return -EINVAL;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(fd, TUNSETOFFLOAD, 0) < 0)
		return -errno;
	return 0;
}

int virtio_net_new(int fd, const uint8_t mac[6], unsigned backend, struct virtio_dev **out)
{
	struct virtio_net *n = NULL;
	int r, fl;

	if (backend == VIRTIO_NET_BACKEND_TAP) {
		r = net_tap_setup(fd);
		if (r < 0)
			goto out;
	} else if (backend != VIRTIO_NET_BACKEND_SOCKET) {
		r = -EINVAL;
		goto out;
	}
	/* The receive thread reads until EAGAIN. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		r = -errno;
		goto out;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		r = -ENOMEM;
		goto out;
	}
	n->fd = fd;
	n->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->kick_fd < 0) {
		r = -errno;
		goto out;
	}
	pthread_mutex_init(&n->lock, NULL);
	n->dev.ops = &net_ops;
	n->dev.priv = n;
	n->dev.device_id = VIRTIO_ID_NET;
	n->dev.config_len = sizeof(n->config);
	n->dev.num_queues = 2;
	for (unsigned q = 0; q < 2; q++)
		n->dev.queues[q].max_size = n->dev.queues[q].size = VIRTIO_NET_QUEUE_SIZE;
	memcpy(n->config.mac, mac, 6);
	n->config.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->config.max_virtqueue_pairs = htole16(1);
	n->config.mtu = htole16(1500);
	r = -pthread_create(&n->rx_thread, NULL, net_rx_main, n);
	if (r < 0)
		goto out;
	n->rx_thread_started = true;
	*out = &n->dev;
	n = NULL;
out:
	if (r < 0) {
		if (n) {
			virtio_net_free(&n->dev);
		} else {
			close(fd);
		}
	}
	return r;
}

void virtio_net_free(struct virtio_dev *dev)
{
	struct virtio_net *n;

	if (!dev)
		return;
	n = to_net(dev);
	if (n->rx_thread_started) {
		pthread_mutex_lock(&n->lock);
		n->stop = true;
		pthread_mutex_unlock(&n->lock);
		net_kick(n);
		pthread_join(n->rx_thread, NULL);
		pthread_mutex_destroy(&n->lock);
	}
	if (n->kick_fd >= 0)
		close(n->kick_fd);
	close(n->fd);
	free(n);
}
