/* addr: parsing and range checks for IPv4, CIDRs, ports, VLANs, MTUs and
 * MAC addresses (see addr.h). Written by hand because inet_pton accepts
 * nothing about prefixes or ranges, and the API must say exactly which part
 * of a value is wrong. */
#include "net/addr.h"

#include <ctype.h>
#include <errno.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int net_ip_parse(const char *s, uint32_t *out)
{
	uint32_t ip = 0;
	const char *p = s;

	for (int i = 0; i < 4; i++) {
		unsigned v = 0, digits = 0;

		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		if (*p == '0' && isdigit((unsigned char)p[1]))
			return -EINVAL; /* "010" reads as octal in inet_aton: refuse */
		while (isdigit((unsigned char)*p) && digits < 4) {
			v = v * 10 + (unsigned)(*p++ - '0');
			digits++;
		}
		if (v > 255 || digits > 3)
			return -EINVAL;
		ip = ip << 8 | v;
		if (i < 3 && *p++ != '.')
			return -EINVAL;
	}
	if (*p != '\0')
		return -EINVAL;
	*out = ip;
	return 0;
}

void net_ip_format(uint32_t ip, char out[NET_IP_STR])
{
	snprintf(out, NET_IP_STR, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
		 ip & 255);
}

uint32_t net_cidr_mask(unsigned prefix)
{
	return prefix == 0 ? 0 : ~0u << (32 - prefix);
}

int net_cidr_parse(const char *s, bool strict, bool allow_bare, struct net_cidr *out,
		   const char *what, char err[NET_ERR_MAX])
{
	char buf[32];
	char *slash, *end;
	uint32_t ip;
	long prefix = 32;

	if (!s || strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		if (!isdigit((unsigned char)slash[1]))
			goto bad;
		errno = 0;
		prefix = strtol(slash + 1, &end, 10);
		if (*end != '\0' || prefix < 0 || prefix > 32)
			goto bad;
	} else if (!allow_bare) {
		goto bad;
	}
	if (net_ip_parse(buf, &ip) < 0)
		goto bad;
	if (strict && (ip & ~net_cidr_mask((unsigned)prefix)) != 0) {
		char net[NET_IP_STR];

		net_ip_format(ip & net_cidr_mask((unsigned)prefix), net);
		snprintf(err, NET_ERR_MAX, "%s '%s' has host bits set; did you mean '%s/%ld'?",
			 what, s, net, prefix);
		return -EINVAL;
	}
	out->addr = ip;
	out->prefix = (unsigned)prefix;
	return 0;
bad:
	snprintf(err, NET_ERR_MAX, "%s '%s' is not an IPv4 CIDR; write it as a.b.c.d/n with n "
		 "from 0 to 32, for example 10.0.0.0/24", what, s ? s : "");
	return -EINVAL;
}

void net_cidr_format(const struct net_cidr *c, char out[NET_CIDR_STR])
{
	char ip[NET_IP_STR];

	net_ip_format(c->addr, ip);
	snprintf(out, NET_CIDR_STR, "%s/%u", ip, c->prefix);
}

bool net_cidr_contains(const struct net_cidr *c, uint32_t ip)
{
	uint32_t m = net_cidr_mask(c->prefix);

	return (ip & m) == (c->addr & m);
}

bool net_cidr_overlap(const struct net_cidr *a, const struct net_cidr *b)
{
	/* Two prefixes overlap exactly when the shorter one contains the
	 * other's network address. */
	unsigned p = a->prefix < b->prefix ? a->prefix : b->prefix;
	uint32_t m = net_cidr_mask(p);

	return (a->addr & m) == (b->addr & m);
}

int net_nat_check(const struct net_cidr *subnet, uint32_t gateway, uint32_t dhcp_start,
		  uint32_t dhcp_end, char err[NET_ERR_MAX])
{
	char sn[NET_CIDR_STR], a[NET_IP_STR], b[NET_IP_STR];
	uint32_t m = net_cidr_mask(subnet->prefix);
	uint32_t netaddr = subnet->addr & m, bcast = netaddr | ~m;

	net_cidr_format(subnet, sn);
	/* /31 and /32 leave no room for a gateway and a client; a prefix
	 * shorter than /8 is almost surely a typo. */
	if (subnet->prefix < 8 || subnet->prefix > 30) {
		snprintf(err, NET_ERR_MAX, "subnet '%s' must have a prefix from /8 to /30", sn);
		return -EINVAL;
	}
	net_ip_format(gateway, a);
	if (!net_cidr_contains(subnet, gateway) || gateway == netaddr || gateway == bcast) {
		snprintf(err, NET_ERR_MAX, "gateway %s is not a host address inside subnet %s; "
			 "use an address such as the first one in the subnet", a, sn);
		return -EINVAL;
	}
	net_ip_format(dhcp_start, a);
	net_ip_format(dhcp_end, b);
	if (!net_cidr_contains(subnet, dhcp_start) || !net_cidr_contains(subnet, dhcp_end) ||
	    dhcp_start == netaddr || dhcp_end == bcast) {
		snprintf(err, NET_ERR_MAX, "DHCP range %s-%s is outside subnet %s; both ends must be "
			 "host addresses inside the subnet", a, b, sn);
		return -EINVAL;
	}
	if (dhcp_start > dhcp_end) {
		snprintf(err, NET_ERR_MAX, "DHCP range %s-%s starts after it ends; swap the ends",
			 a, b);
		return -EINVAL;
	}
	if (gateway >= dhcp_start && gateway <= dhcp_end) {
		net_ip_format(gateway, a);
		snprintf(err, NET_ERR_MAX, "gateway %s lies inside the DHCP range; move the range "
			 "so clients are never given the gateway's address", a);
		return -EINVAL;
	}
	return 0;
}

int net_vlan_check(long long vlan, char err[NET_ERR_MAX])
{
	if (vlan < NET_VLAN_MIN || vlan > NET_VLAN_MAX) {
		snprintf(err, NET_ERR_MAX, "VLAN id %lld is out of range; use %d to %d (IEEE "
			 "802.1Q), or leave vlan out for an untagged port", vlan, NET_VLAN_MIN,
			 NET_VLAN_MAX);
		return -EINVAL;
	}
	return 0;
}

int net_mtu_check(long long mtu, char err[NET_ERR_MAX])
{
	if (mtu < NET_MTU_MIN || mtu > NET_MTU_MAX) {
		snprintf(err, NET_ERR_MAX, "mtu %lld is out of range; use %d to %d (1500 is the "
			 "Ethernet default)", mtu, NET_MTU_MIN, NET_MTU_MAX);
		return -EINVAL;
	}
	return 0;
}

int net_port_check(long long port, const char *what, char err[NET_ERR_MAX])
{
	if (port < 1 || port > 65535) {
		snprintf(err, NET_ERR_MAX, "%s %lld is not a port; use 1 to 65535", what, port);
		return -EINVAL;
	}
	return 0;
}

int net_port_range_parse(const char *s, unsigned *lo, unsigned *hi, char err[NET_ERR_MAX])
{
	char *end;
	long a, b;

	if (!s || !isdigit((unsigned char)*s))
		goto bad;
	a = strtol(s, &end, 10);
	b = a;
	if (*end == '-') {
		if (!isdigit((unsigned char)end[1]))
			goto bad;
		b = strtol(end + 1, &end, 10);
	}
	if (*end != '\0' || a < 1 || a > 65535 || b < 1 || b > 65535 || a > b)
		goto bad;
	*lo = (unsigned)a;
	*hi = (unsigned)b;
	return 0;
bad:
	snprintf(err, NET_ERR_MAX, "ports '%s' is not a port or port range; use a number from 1 "
		 "to 65535 or LOW-HIGH with LOW <= HIGH, for example \"80\" or \"8000-8080\"",
		 s ? s : "");
	return -EINVAL;
}

int net_ifname_check(const char *s, const char *what, char err[NET_ERR_MAX])
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 ||
	    strpbrk(s, "/: \t\n") != NULL) {
		snprintf(err, NET_ERR_MAX, "%s '%s' is not a Linux interface name; use 1 to 15 "
			 "characters without '/', ':' or spaces", what, s ? s : "");
		return -EINVAL;
	}
	return 0;
}

static void net_hash(const char *uuid, unsigned index, unsigned attempt,
		     uint8_t digest[SHA256_DIGEST_SIZE])
{
	struct sha256_ctx c;
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "%s/%u/%u", uuid, index, attempt);

	sha256_init(&c);
	sha256_update(&c, (size_t)n, (const uint8_t *)buf);
	sha256_digest(&c, SHA256_DIGEST_SIZE, digest);
}

int net_mac_derive(const char *uuid, unsigned index, unsigned attempt, char out[NET_MAC_STR])
{
	uint8_t d[SHA256_DIGEST_SIZE];

	if (!uuid || strlen(uuid) != 36)
		return -EINVAL;
	net_hash(uuid, index, attempt, d);
	snprintf(out, NET_MAC_STR, "52:54:00:%02x:%02x:%02x", d[0], d[1], d[2]);
	return 0;
}

int net_mac_parse(const char *s, char out[NET_MAC_STR], char err[NET_ERR_MAX])
{
	unsigned b[6];
	char tail;

	if (!s || strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		goto bad;
	for (int i = 0; i < 17; i++)
		if ((i % 3 == 2) != (s[i] == ':') || (i % 3 != 2 && !isxdigit((unsigned char)s[i])))
			goto bad;
	if (b[0] & 1) {
		snprintf(err, NET_ERR_MAX, "mac '%s' is a multicast address (lowest bit of the first "
			 "octet set); a NIC needs a unicast address such as 52:54:00:12:34:56", s);
		return -EINVAL;
	}
	snprintf(out, NET_MAC_STR, "%02x:%02x:%02x:%02x:%02x:%02x", b[0] & 255, b[1] & 255,
		 b[2] & 255, b[3] & 255, b[4] & 255, b[5] & 255);
	return 0;
bad:
	snprintf(err, NET_ERR_MAX, "mac '%s' is not a MAC address; write six hex octets separated "
		 "by ':', for example 52:54:00:12:34:56", s ? s : "");
	return -EINVAL;
}

static void net_hex_name(const char prefix[2], const uint8_t *d, char out[16])
{
	static const char hex[] = "0123456789abcdef";

	out[0] = prefix[0];
	out[1] = prefix[1];
	for (int i = 0; i < 6; i++) {
		out[2 + 2 * i] = hex[d[i] >> 4];
		out[3 + 2 * i] = hex[d[i] & 15];
	}
	out[14] = '\0';
}

void net_tap_name(const char *uuid, unsigned index, char out[16])
{
	uint8_t d[SHA256_DIGEST_SIZE];

	net_hash(uuid, index, 0xffffffffu, d);
	net_hex_name("vt", d, out);
}

void net_vlan_bridge_name(const char *network, unsigned vid, char out[16])
{
	uint8_t d[SHA256_DIGEST_SIZE];

	net_hash(network, vid, 0xfffffffeu, d);
	net_hex_name("vv", d, out);
}

void net_vlan_link_name(const char *network, unsigned vid, char out[16])
{
	uint8_t d[SHA256_DIGEST_SIZE];

	net_hash(network, vid, 0xfffffffeu, d);
	net_hex_name("vu", d, out);
}
