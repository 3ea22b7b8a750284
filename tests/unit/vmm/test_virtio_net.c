/* Unit tests for src/vmm/virtio/net.c over a SOCK_SEQPACKET socketpair
 * standing in for the tap (same datagrams: 12-byte header + frame):
 * transmit, receive, receive before buffers exist, frames too big for the
 * buffer, malformed chains. With root, one case also opens a real tap. */
#include "vmm/virtio/net.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "lib/log.h"
#include "lib/util.h"
#include "virtq_test.h"

#define RXQ_GPA (TQ_RAM_GPA + 0x8000)  /* the receive queue's rings */
#define RXBUF_GPA (TQ_DATA_GPA + 0x20000)
#define TXBUF_GPA (TQ_DATA_GPA)

static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

struct fixture {
	struct tq tx;          /* guest view of queue 1 */
	struct tq rx;          /* guest view of queue 0 (same RAM) */
	int peer;              /* the "host network" end */
	struct virtio_dev *dev;
	unsigned notifies[2], resets;
};

static void fx_notify(struct virtio_dev *dev, unsigned q)
{
	__atomic_add_fetch(&((struct fixture *)dev->transport)->notifies[q & 1], 1, __ATOMIC_SEQ_CST);
}

static void fx_needs_reset(struct virtio_dev *dev)
{
	__atomic_add_fetch(&((struct fixture *)dev->transport)->resets, 1, __ATOMIC_SEQ_CST);
}

static int fx_init(struct fixture *f)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	log_set_level(LOG_LEVEL_ERROR);
	if (tq_init(&f->tx, 16) < 0)
		return -1;
	/* The receive queue shares the transmit side's RAM, rings elsewhere. */
	f->rx = f->tx;
	f->rx.vq.desc_gpa = RXQ_GPA;
	f->rx.vq.avail_gpa = RXQ_GPA + 16 * 16;
	f->rx.vq.used_gpa = RXQ_GPA + 0x1000;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	f->peer = sv[1];
	if (virtio_net_new(sv[0], mac, VIRTIO_NET_BACKEND_SOCKET, &f->dev) < 0)
		return -1;
	f->dev->mem = &f->tx.mem;
	f->dev->transport = f;
	f->dev->notify_queue = fx_notify;
	f->dev->set_needs_reset = fx_needs_reset;
	f->dev->driver_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC);
	f->dev->queues[VIRTIO_NET_RXQ] = f->rx.vq;
	f->dev->queues[VIRTIO_NET_TXQ] = f->tx.vq;
	return f->dev->ops->activate(f->dev);
}

static void fx_fini(struct fixture *f)
{
	virtio_net_free(f->dev);
	close(f->peer);
	tq_fini(&f->tx);
}

/* Wait up to 2 s for the receive used idx to reach want. */
static bool wait_rx_used(struct fixture *f, uint16_t want)
{
	for (int i = 0; i < 2000; i++) {
		if (__atomic_load_n((uint16_t *)tq_ptr(&f->rx, f->rx.vq.used_gpa + 2),
				    __ATOMIC_ACQUIRE) == want)
			return true;
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

static void post_rx(struct fixture *f, uint16_t i, uint64_t gpa, uint32_t len)
{
	tq_desc(&f->rx, i, gpa, len, VIRTQ_DESC_F_WRITE, 0);
	tq_avail(&f->rx, i);
	f->dev->ops->queue_notify(f->dev, VIRTIO_NET_RXQ);
}

static void send_frame(struct fixture *f, uint8_t fill, size_t frame_len)
{
	uint8_t pkt[VIRTIO_NET_HDR_LEN + 2048];
	memset(pkt, 0xff, VIRTIO_NET_HDR_LEN); /* junk the device must not pass on */
	memset(pkt + VIRTIO_NET_HDR_LEN, fill, frame_len);
	ssize_t w = send(f->peer, pkt, VIRTIO_NET_HDR_LEN + frame_len, 0);
	CHECK_EQ_INT(w, (ssize_t)(VIRTIO_NET_HDR_LEN + frame_len));
}

TEST(config_and_features)
{
	struct fixture f;
	struct virtio_net_config c;

	CHECK_EQ_INT(fx_init(&f), 0);
	CHECK_EQ_INT(f.dev->device_id, VIRTIO_ID_NET);
	CHECK_EQ_INT(f.dev->num_queues, 2);
	f.dev->ops->config_read(f.dev, 0, &c, sizeof(c));
	CHECK(memcmp(c.mac, mac, 6) == 0);
	CHECK_EQ_INT(le16toh(c.status), VIRTIO_NET_S_LINK_UP);
	uint64_t feat = f.dev->ops->get_features(f.dev);
	CHECK(feat & (1ull << VIRTIO_NET_F_MAC));
	CHECK(!(feat & (1ull << VIRTIO_NET_F_MRG_RXBUF)));
	CHECK(!(feat & (1ull << VIRTIO_NET_F_CSUM)));
	fx_fini(&f);
}

TEST(transmit)
{
	struct fixture f;
	uint8_t got[256];
	uint32_t id, len;

	CHECK_EQ_INT(fx_init(&f), 0);
	/* header with junk offload fields, frame split over two buffers */
	uint8_t *p = tq_ptr(&f.tx, TXBUF_GPA);
	memset(p, 0x7f, VIRTIO_NET_HDR_LEN);
	for (int i = 0; i < 60; i++)
		p[VIRTIO_NET_HDR_LEN + i] = (uint8_t)i;
	tq_desc(&f.tx, 0, TXBUF_GPA, VIRTIO_NET_HDR_LEN + 20, VIRTQ_DESC_F_NEXT, 1);
	tq_desc(&f.tx, 1, TXBUF_GPA + VIRTIO_NET_HDR_LEN + 20, 40, 0, 0);
	tq_avail(&f.tx, 0);
	f.dev->ops->queue_notify(f.dev, VIRTIO_NET_TXQ);
	CHECK_EQ_INT(tq_used_idx(&f.tx), 1);
	tq_used_elem(&f.tx, 0, &id, &len);
	CHECK_EQ_INT(id, 0);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(f.notifies[1], 1);
	ssize_t n = recv(f.peer, got, sizeof(got), MSG_DONTWAIT);
	CHECK_EQ_INT(n, VIRTIO_NET_HDR_LEN + 60);
	for (int i = 0; i < VIRTIO_NET_HDR_LEN; i++)
		CHECK_EQ_INT(got[i], 0);
	CHECK(memcmp(got + VIRTIO_NET_HDR_LEN, p + VIRTIO_NET_HDR_LEN, 60) == 0);
	fx_fini(&f);
}

TEST(transmit_short_chain_is_dropped)
{
	struct fixture f;
	uint8_t got[64];

	CHECK_EQ_INT(fx_init(&f), 0);
	tq_desc(&f.tx, 0, TXBUF_GPA, 8, 0, 0);
	tq_avail(&f.tx, 0);
	f.dev->ops->queue_notify(f.dev, VIRTIO_NET_TXQ);
	CHECK_EQ_INT(tq_used_idx(&f.tx), 1);
	CHECK_EQ_INT(recv(f.peer, got, sizeof(got), MSG_DONTWAIT), -1);
	CHECK_EQ_INT(f.resets, 0);
	fx_fini(&f);
}

TEST(receive)
{
	struct fixture f;
	uint32_t id, len;

	CHECK_EQ_INT(fx_init(&f), 0);
	post_rx(&f, 3, RXBUF_GPA, 1526);
	send_frame(&f, 0xab, 100);
	CHECK(wait_rx_used(&f, 1));
	tq_used_elem(&f.rx, 0, &id, &len);
	CHECK_EQ_INT(id, 3);
	CHECK_EQ_INT(len, VIRTIO_NET_HDR_LEN + 100);
	uint8_t *p = tq_ptr(&f.rx, RXBUF_GPA);
	for (int i = 0; i < 10; i++)
		CHECK_EQ_INT(p[i], 0);
	CHECK_EQ_INT(p[10], 1); /* num_buffers */
	CHECK_EQ_INT(p[11], 0);
	CHECK_EQ_INT(p[VIRTIO_NET_HDR_LEN], 0xab);
	CHECK_EQ_INT(p[VIRTIO_NET_HDR_LEN + 99], 0xab);
	CHECK_EQ_INT(p[VIRTIO_NET_HDR_LEN + 100], 0);
	CHECK(__atomic_load_n(&f.notifies[0], __ATOMIC_SEQ_CST) >= 1);
	fx_fini(&f);
}

TEST(receive_waits_for_buffers)
{
	struct fixture f;
	uint32_t id, len;

	CHECK_EQ_INT(fx_init(&f), 0);
	send_frame(&f, 0x11, 64);
	send_frame(&f, 0x22, 70);
	struct timespec ts = {0, 50 * 1000 * 1000};
	nanosleep(&ts, NULL);
	CHECK_EQ_INT(tq_used_idx(&f.rx), 0);
	post_rx(&f, 0, RXBUF_GPA, 1526);
	CHECK(wait_rx_used(&f, 1));
	post_rx(&f, 1, RXBUF_GPA + 0x1000, 1526);
	CHECK(wait_rx_used(&f, 2));
	tq_used_elem(&f.rx, 1, &id, &len);
	CHECK_EQ_INT(id, 1);
	CHECK_EQ_INT(len, VIRTIO_NET_HDR_LEN + 70);
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.rx, RXBUF_GPA + VIRTIO_NET_HDR_LEN), 0x11);
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.rx, RXBUF_GPA + 0x1000 + VIRTIO_NET_HDR_LEN), 0x22);
	fx_fini(&f);
}

TEST(receive_frame_too_big_is_dropped)
{
	struct fixture f;
	uint32_t id, len;

	CHECK_EQ_INT(fx_init(&f), 0);
	send_frame(&f, 0x33, 1500);
	send_frame(&f, 0x44, 200);
	post_rx(&f, 5, RXBUF_GPA, 512);
	CHECK(wait_rx_used(&f, 1));
	tq_used_elem(&f.rx, 0, &id, &len);
	CHECK_EQ_INT(id, 5);
	CHECK_EQ_INT(len, VIRTIO_NET_HDR_LEN + 200);
	CHECK_EQ_INT(*(uint8_t *)tq_ptr(&f.rx, RXBUF_GPA + VIRTIO_NET_HDR_LEN), 0x44);
	fx_fini(&f);
}

TEST(malformed_receive_chain_needs_reset)
{
	struct fixture f;

	CHECK_EQ_INT(fx_init(&f), 0);
	tq_desc(&f.rx, 0, RXBUF_GPA, 1526, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	tq_avail(&f.rx, 0);
	f.dev->ops->queue_notify(f.dev, VIRTIO_NET_RXQ);
	send_frame(&f, 0x55, 64);
	for (int i = 0; i < 2000 && !__atomic_load_n(&f.resets, __ATOMIC_SEQ_CST); i++) {
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	CHECK_EQ_INT(__atomic_load_n(&f.resets, __ATOMIC_SEQ_CST), 1);
	/* reset brings it back */
	f.dev->ops->reset(f.dev);
	CHECK(!f.dev->queues[VIRTIO_NET_RXQ].broken);
	fx_fini(&f);
}

TEST(peer_hangup_does_not_spin)
{
	struct fixture f;
	struct timespec t0, t1;

	CHECK_EQ_INT(fx_init(&f), 0);
	post_rx(&f, 0, RXBUF_GPA, 1526);
	close(f.peer);
	f.peer = -1;
	/* The receive thread must go idle, not poll a dead fd in a loop:
	 * measure this process's CPU time over 200 ms. */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	struct timespec ts = {0, 200 * 1000 * 1000};
	nanosleep(&ts, NULL);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	double cpu = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	CHECK(cpu < 0.05);
	CHECK_EQ_INT(tq_used_idx(&f.rx), 0);
	fx_fini(&f);
}

TEST(real_tap)
{
	struct virtio_dev *dev = NULL;
	int fd, sz = 0;

	if (geteuid() != 0)
		SKIP("needs root (CAP_NET_ADMIN) to create a tap");
	int r = virtio_net_tap_open("vsltest%d", &fd);
	if (r == -ENOENT || r == -EPERM || r == -EACCES)
		SKIP("no usable /dev/net/tun");
	CHECK_EQ_INT(r, 0);
	if (r < 0)
		return;
	CHECK_EQ_INT(virtio_net_new(fd, mac, VIRTIO_NET_BACKEND_TAP, &dev), 0);
	CHECK_EQ_INT(ioctl(fd, TUNGETVNETHDRSZ, &sz), 0);
	CHECK_EQ_INT(sz, VIRTIO_NET_HDR_LEN);
	virtio_net_free(dev);
	/* A socket is not a tap. */
	int sv[2];
	CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	log_set_level(LOG_LEVEL_ERROR);
	CHECK_EQ_INT(virtio_net_new(sv[0], mac, VIRTIO_NET_BACKEND_TAP, &dev), -EINVAL);
	close(sv[1]);
}

HARNESS_MAIN
