/* nft: vessel's nftables rules, rendered as one ruleset text from a
 * description of the networks and firewalled NICs, and applied atomically
 * with libnftables (nft_run_cmd_from_buffer runs the whole text as one
 * netlink transaction: it all applies or none of it does).
 *
 * vessel owns exactly two tables and touches nothing else:
 * - `table bridge vessel`: the firewall (security groups). Bridge family
 *   because VM traffic is switched, not routed: the bridge hooks see each
 *   frame with the tap it leaves by (oifname) or enters from (iifname).
 *   This kernel family has no connection tracking unless
 *   nf_conntrack_bridge is loaded, which vessel cannot count on, so the
 *   rules are stateless; see nft.c for how replies get through.
 * - `table ip vessel_nat`: masquerading for NAT networks and port forwards
 *   (DNAT in prerouting for traffic arriving from outside, in output for
 *   connections the host itself opens to one of its own addresses).
 * Each apply first adds then deletes the table and then declares it anew in
 * the same transaction, so the result never depends on what was there. */
#ifndef VESSEL_NET_NFT_H
#define VESSEL_NET_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

#define NFT_TABLE_FW "vessel"
#define NFT_TABLE_NAT "vessel_nat"

enum fw_dir { FW_DIR_IN = 0, FW_DIR_OUT };
enum fw_proto { FW_PROTO_ANY = 0, FW_PROTO_TCP, FW_PROTO_UDP, FW_PROTO_ICMP };
enum fw_action { FW_ACTION_ALLOW = 0, FW_ACTION_DENY };

struct fw_rule {
	enum fw_dir dir;
	enum fw_proto proto;
	unsigned port_lo, port_hi; /* 0 = any port (tcp/udp only) */
	bool has_cidr;
	struct net_cidr cidr; /* source for inbound, destination for outbound */
	enum fw_action action;
};

#define FW_MAX_RULES 64

/* A named rule set (security group). */
struct fw_set {
	char name[64];
	enum fw_action default_in;  /* deny unless asked otherwise */
	enum fw_action default_out; /* allow unless asked otherwise */
	struct fw_rule rules[FW_MAX_RULES];
	unsigned nr_rules;
};

enum nft_l4 { NFT_L4_TCP = 0, NFT_L4_UDP };

struct nft_forward {
	enum nft_l4 proto;
	uint32_t host_addr; /* 0 = any local address */
	unsigned host_port;
	uint32_t to_addr; /* the VM's address; 0 = not known yet (skipped) */
	unsigned to_port;
};

struct nft_nat {
	char bridge[16];
	struct net_cidr subnet;
	const struct nft_forward *forwards;
	size_t nr_forwards;
};

/* A tap whose NIC has a rule set attached. */
struct nft_port {
	char tap[16];
	const struct fw_set *fw;
};

struct nft_spec {
	const struct nft_nat *nats;
	size_t nr_nats;
	const struct nft_port *ports;
	size_t nr_ports;
};

/* The complete ruleset text for spec (malloc'd into *out). With nothing to
 * do it only removes vessel's tables. */
int nft_render(const struct nft_spec *spec, char **out);
/* Run text through libnftables as one transaction. On failure returns
 * -EIO with *err (malloc'd) holding nft's own error text. */
int nft_apply(const char *text, char **err);

const char *fw_dir_name(enum fw_dir d);
int fw_dir_parse(const char *s, enum fw_dir *out);
const char *fw_proto_name(enum fw_proto p);
int fw_proto_parse(const char *s, enum fw_proto *out);
const char *fw_action_name(enum fw_action a);
int fw_action_parse(const char *s, enum fw_action *out);

#endif
