/* link: host network interfaces for vessel's networks, over rtnetlink with
 * libmnl, and tap devices over /dev/net/tun.
 *
 * Why libmnl: it is the small netlink helper nftables itself is built on
 * (so it is installed with libnftables anyway), and vessel needs only a
 * handful of messages (RTM_NEWLINK for a bridge, RTM_SETLINK for master,
 * MTU and up, RTM_DELLINK, AF_BRIDGE VLAN entries); libnl-route's object
 * cache model is much more than that. Shelling out to iproute2 would mean
 * parsing its text output for errors.
 *
 * VLANs: one bridge per (network, VLAN id), as Proxmox's classic
 * non-VLAN-aware setup does: NICs tagged V sit on their own bridge, so
 * frames of different VLANs never share a layer-2 domain, and the guest
 * sees plain untagged frames. With an uplink, the VLAN bridge also gets
 * the 802.1Q link UPLINK.V, so tagged frames reach the physical network.
 * Chosen over one VLAN-aware bridge (vlan_filtering + per-port PVID)
 * because that needs CONFIG_BRIDGE_VLAN_FILTERING, which not every host
 * kernel has (the development host's does not), while per-VLAN bridges
 * work with any kernel that has bridges. */
#ifndef VESSEL_NET_LINK_H
#define VESSEL_NET_LINK_H

#include <stdbool.h>

#define LINK_ERR_MAX 256

/* 0 when absent. */
unsigned link_index(const char *name);
bool link_is_bridge(const char *name);
/* A new bridge (fails with -EEXIST when the name is taken), up, with mtu
 * (0 = default). */
int link_bridge_create(const char *name, unsigned mtu);
/* The 802.1Q link name on uplink with VLAN id vid, up; -EOPNOTSUPP when the
 * kernel has no 802.1Q support. */
int link_vlan_create(const char *name, const char *uplink, unsigned vid, unsigned mtu);
int link_delete(const char *name);
/* Enslave name to master (NULL = release it from its bridge). */
int link_set_master(const char *name, const char *master);
int link_set_mtu(const char *name, unsigned mtu);
int link_set_up(const char *name, bool up);
/* Create a tap (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, non-persistent: it
 * goes away when the last fd closes, i.e. when QEMU exits) named name,
 * set its MTU, bring it up and attach it to bridge. *fd is O_CLOEXEC; the
 * caller hands it to QEMU. */
int link_tap_create(const char *name, const char *bridge, unsigned mtu, int *fd);
/* Enable IPv4 forwarding in this network namespace (NAT networks need it). */
int link_ip_forward_enable(void);
/* Add addr/prefix to the interface (a NAT network's gateway). */
int link_addr_add(const char *name, unsigned addr_host_order, unsigned prefix);

#endif
