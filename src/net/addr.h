/* addr: IPv4 addresses and CIDRs, MAC addresses and the range checks the
 * networks and firewall API apply before anything is created on the host
 * (VLAN ids, MTUs, ports). Pure functions, no I/O, so the unit tests can
 * cover every bad-input case. Each validator fills err with a sentence that
 * names the bad value and says what to use instead. */
#ifndef VESSEL_NET_ADDR_H
#define VESSEL_NET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_ERR_MAX 256
#define NET_MAC_STR 18     /* "52:54:00:xx:xx:xx" + NUL */
#define NET_IP_STR 16      /* "255.255.255.255" + NUL */
#define NET_CIDR_STR 19    /* "255.255.255.255/32" + NUL */
#define NET_VLAN_MIN 1     /* IEEE 802.1Q: 0 = no tag, 4095 reserved */
#define NET_VLAN_MAX 4094
#define NET_MTU_MIN 68     /* RFC 791: every IPv4 host must take 68-byte datagrams */
#define NET_MTU_MAX 9000   /* the usual jumbo frame size */

/* An IPv4 prefix in host byte order; addr has the host bits cleared unless
 * the caller asked to keep them (net_cidr_parse's keep_host). */
struct net_cidr {
	uint32_t addr;
	unsigned prefix; /* 0..32 */
};

/* "a.b.c.d" only (no shorthand, no leading zeros beyond "0"). */
int net_ip_parse(const char *s, uint32_t *out);
void net_ip_format(uint32_t ip, char out[NET_IP_STR]);
/* "a.b.c.d/n"; with strict, host bits must be zero ("10.0.0.0/24", not
 * "10.0.0.1/24"). A bare address is taken as /32 when allow_bare. */
int net_cidr_parse(const char *s, bool strict, bool allow_bare, struct net_cidr *out,
		   const char *what, char err[NET_ERR_MAX]);
void net_cidr_format(const struct net_cidr *c, char out[NET_CIDR_STR]);
uint32_t net_cidr_mask(unsigned prefix);
bool net_cidr_contains(const struct net_cidr *c, uint32_t ip);
bool net_cidr_overlap(const struct net_cidr *a, const struct net_cidr *b);

/* A NAT network's addressing: subnet (a /8../30 prefix), gateway inside it
 * and not its network or broadcast address, DHCP range inside it, start <=
 * end, gateway outside the range. */
int net_nat_check(const struct net_cidr *subnet, uint32_t gateway, uint32_t dhcp_start,
		  uint32_t dhcp_end, char err[NET_ERR_MAX]);

int net_vlan_check(long long vlan, char err[NET_ERR_MAX]);
int net_mtu_check(long long mtu, char err[NET_ERR_MAX]);
/* "80" or "8000-8080", 1..65535, low <= high. */
int net_port_range_parse(const char *s, unsigned *lo, unsigned *hi, char err[NET_ERR_MAX]);
int net_port_check(long long port, const char *what, char err[NET_ERR_MAX]);
/* Linux interface names: 1..15 bytes (IFNAMSIZ - 1), no '/', ':' or space. */
int net_ifname_check(const char *s, const char *what, char err[NET_ERR_MAX]);

/* A stable MAC for NIC `index` of the VM with uuid: QEMU/KVM's locally
 * administered OUI 52:54:00 followed by 24 bits of SHA-256(uuid, index,
 * attempt). Bump attempt when the result collides with a MAC in use. */
int net_mac_derive(const char *uuid, unsigned index, unsigned attempt, char out[NET_MAC_STR]);
/* "xx:xx:xx:xx:xx:xx", unicast (bit 0 of the first octet clear). Lower-cases
 * into out. */
int net_mac_parse(const char *s, char out[NET_MAC_STR], char err[NET_ERR_MAX]);
/* Tap name for a NIC: "vt" + 12 hex of SHA-256(uuid, index): 14 bytes,
 * under IFNAMSIZ, unique across VMs with overwhelming probability, and the
 * "vt" prefix marks it as vessel's in `ip link`. */
void net_tap_name(const char *uuid, unsigned index, char out[16]);
/* Names of the per-VLAN bridge of a network ("vv" + 12 hex of SHA-256 of
 * network and vid) and of its 802.1Q uplink link ("vu" + the same). */
void net_vlan_bridge_name(const char *network, unsigned vid, char out[16]);
void net_vlan_link_name(const char *network, unsigned vid, char out[16]);

#endif
