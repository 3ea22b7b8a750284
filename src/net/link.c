/* link: rtnetlink requests with libmnl and tap creation (see link.h). Each
 * request is sent with NLM_F_ACK and its answer read on the same socket,
 * so the error a caller sees is the kernel's own for that request. */
#include "net/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

unsigned link_index(const char *name)
{
	return if_nametoindex(name);
}

bool link_is_bridge(const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", name);
	return stat(path, &st) == 0;
}

/* Send one request and wait for its ACK; returns 0 or the kernel's -errno. */
static int link_talk(struct nlmsghdr *nlh)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	unsigned portid, seq = (unsigned)time(NULL);
	int r;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0) {
		r = -errno;
		goto out;
	}
	r = mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL);
	r = r < 0 ? -errno : 0;
out:
	mnl_socket_close(nl);
	return r;
}

static struct nlmsghdr *link_msg(char *buf, uint16_t type, uint16_t flags, unsigned char family,
				 int index, struct ifinfomsg **ifm_out)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = family;
	ifm->ifi_index = index;
	if (ifm_out)
		*ifm_out = ifm;
	return nlh;
}

int link_bridge_create(const char *name, unsigned mtu)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0,
					&ifm);
	struct nlattr *li;

	ifm->ifi_flags = IFF_UP;
	ifm->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, li);
	return link_talk(nlh);
}

int link_vlan_create(const char *name, const char *uplink, unsigned vid, unsigned mtu)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifm;
	unsigned up = link_index(uplink);
	struct nlmsghdr *nlh;
	struct nlattr *li, *data;

	if (!up)
		return -ENODEV;
	nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, &ifm);
	ifm->ifi_flags = IFF_UP;
	ifm->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put_u32(nlh, IFLA_LINK, up);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "vlan");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	mnl_attr_put_u16(nlh, IFLA_VLAN_ID, (uint16_t)vid);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, li);
	return link_talk(nlh);
}

int link_delete(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned idx = link_index(name);

	if (!idx)
		return -ENODEV;
	return link_talk(link_msg(buf, RTM_DELLINK, 0, AF_UNSPEC, (int)idx, NULL));
}

int link_set_master(const char *name, const char *master)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned idx = link_index(name), midx = master ? link_index(master) : 0;
	struct nlmsghdr *nlh;

	if (!idx || (master && !midx))
		return -ENODEV;
	nlh = link_msg(buf, RTM_SETLINK, 0, AF_UNSPEC, (int)idx, NULL);
	mnl_attr_put_u32(nlh, IFLA_MASTER, midx);
	return link_talk(nlh);
}

int link_set_mtu(const char *name, unsigned mtu)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned idx = link_index(name);
	struct nlmsghdr *nlh;

	if (!idx)
		return -ENODEV;
	nlh = link_msg(buf, RTM_SETLINK, 0, AF_UNSPEC, (int)idx, NULL);
	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	return link_talk(nlh);
}

int link_set_up(const char *name, bool up)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned idx = link_index(name);
	struct ifinfomsg *ifm;

	if (!idx)
		return -ENODEV;
	struct nlmsghdr *nlh = link_msg(buf, RTM_SETLINK, 0, AF_UNSPEC, (int)idx, &ifm);
	ifm->ifi_flags = up ? IFF_UP : 0;
	ifm->ifi_change = IFF_UP;
	return link_talk(nlh);
}

int link_tap_create(const char *name, const char *bridge, unsigned mtu, int *fd_out)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		goto fail;
	}
	if (mtu && (r = link_set_mtu(name, mtu)) < 0)
		goto fail;
	if ((r = link_set_master(name, bridge)) < 0)
		goto fail;
	if ((r = link_set_up(name, true)) < 0)
		goto fail;
	*fd_out = fd;
	return 0;
fail:
	close(fd); /* non-persistent: the tap goes with its last fd */
	return r;
}

int link_ip_forward_enable(void)
{
	int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "1\n", 2) != 2)
		r = -errno;
	close(fd);
	return r;
}

int link_addr_add(const char *name, unsigned addr, unsigned prefix)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned idx = link_index(name);
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	uint32_t a = htonl(addr);

	if (!idx)
		return -ENODEV;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_index = idx;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(a), &a);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(a), &a);
	return link_talk(nlh);
}
