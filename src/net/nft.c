/* nft: render and apply vessel's nftables tables (see nft.h).
 *
 * The firewall is stateless (no conntrack in the bridge family on hosts
 * without nf_conntrack_bridge), so each NIC's chains let replies through by
 * what they look like rather than by connection state:
 * - TCP segments that are not a bare SYN (SYN without ACK opens a
 *   connection; everything after it carries ACK), so "deny inbound" blocks
 *   new connections to the VM but not answers to the VM's own;
 * - ICMP echo-reply, destination-unreachable and time-exceeded;
 * - DHCP (server port 67 <-> client port 68), so a NAT network's lease
 *   still works behind "deny", and everything that is not IPv4 or IPv6
 *   (ARP) plus ICMPv6 (neighbour discovery), without which nothing works.
 * A rule allows with `return` (not `accept`), because accept would end the
 * whole hook: traffic between two firewalled VMs must pass the sender's
 * outbound chain and then the receiver's inbound chain. */
#include "net/nft.h"

#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fw_dir_names[] = {"in", "out"};
static const char *const fw_proto_names[] = {"any", "tcp", "udp", "icmp"};
static const char *const fw_action_names[] = {"allow", "deny"};

static int nft_enum_parse(const char *s, const char *const *names, int n, int *out)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

const char *fw_dir_name(enum fw_dir d)
{
	return (unsigned)d < 2 ? fw_dir_names[d] : "?";
}

int fw_dir_parse(const char *s, enum fw_dir *out)
{
	int v, r = nft_enum_parse(s, fw_dir_names, 2, &v);

	if (r == 0)
		*out = (enum fw_dir)v;
	return r;
}

const char *fw_proto_name(enum fw_proto p)
{
	return (unsigned)p < 4 ? fw_proto_names[p] : "?";
}

int fw_proto_parse(const char *s, enum fw_proto *out)
{
	int v, r = nft_enum_parse(s, fw_proto_names, 4, &v);

	if (r == 0)
		*out = (enum fw_proto)v;
	return r;
}

const char *fw_action_name(enum fw_action a)
{
	return (unsigned)a < 2 ? fw_action_names[a] : "?";
}

int fw_action_parse(const char *s, enum fw_action *out)
{
	int v, r = nft_enum_parse(s, fw_action_names, 2, &v);

	if (r == 0)
		*out = (enum fw_action)v;
	return r;
}

static const char *nft_verdict(enum fw_action a)
{
	return a == FW_ACTION_ALLOW ? "return" : "drop";
}

static void nft_render_rule(FILE *f, const struct fw_rule *r)
{
	char cidr[NET_CIDR_STR];

	fputs("\t\t", f);
	if (r->has_cidr) {
		net_cidr_format(&r->cidr, cidr);
		fprintf(f, "ip %s %s ", r->dir == FW_DIR_IN ? "saddr" : "daddr", cidr);
	}
	switch (r->proto) {
	case FW_PROTO_TCP:
	case FW_PROTO_UDP: {
		const char *p = r->proto == FW_PROTO_TCP ? "tcp" : "udp";

		if (r->port_lo == 0)
			fprintf(f, "meta l4proto %s ", p);
		else if (r->port_lo == r->port_hi)
			fprintf(f, "%s dport %u ", p, r->port_lo);
		else
			fprintf(f, "%s dport %u-%u ", p, r->port_lo, r->port_hi);
		break;
	}
	case FW_PROTO_ICMP:
		fputs("ip protocol icmp ", f);
		break;
	case FW_PROTO_ANY:
		break;
	}
	fprintf(f, "%s\n", nft_verdict(r->action));
}

static void nft_render_port_chain(FILE *f, const struct nft_port *p, enum fw_dir dir)
{
	const struct fw_set *s = p->fw;

	fprintf(f, "\tchain %s_%s {\n", dir == FW_DIR_IN ? "in" : "out", p->tap);
	fprintf(f, "\t\t# rule set %s, %s\n", s->name, dir == FW_DIR_IN ? "to the VM" : "from the VM");
	fputs("\t\tmeta protocol != { ip, ip6 } return\n", f);
	fputs("\t\tmeta l4proto ipv6-icmp return\n", f);
	fputs("\t\ttcp flags & (syn | ack) != syn return\n", f);
	fputs("\t\ticmp type { echo-reply, destination-unreachable, time-exceeded } return\n", f);
	if (dir == FW_DIR_IN)
		fputs("\t\tudp sport 67 udp dport 68 return\n", f);
	else
		fputs("\t\tudp sport 68 udp dport 67 return\n", f);
	for (unsigned i = 0; i < s->nr_rules; i++)
		if (s->rules[i].dir == dir)
			nft_render_rule(f, &s->rules[i]);
	fprintf(f, "\t\t%s\n", nft_verdict(dir == FW_DIR_IN ? s->default_in : s->default_out));
	fputs("\t}\n", f);
}

static void nft_render_fw(FILE *f, const struct nft_spec *spec)
{
	fputs("table bridge " NFT_TABLE_FW " {\n", f);
	for (size_t i = 0; i < spec->nr_ports; i++) {
		nft_render_port_chain(f, &spec->ports[i], FW_DIR_IN);
		nft_render_port_chain(f, &spec->ports[i], FW_DIR_OUT);
	}
	/* forward: VM <-> VM and VM <-> uplink; output: frames the host sends
	 * to a VM (also port-forwarded ones, after routing); input: frames a
	 * VM sends to the host (its gateway). */
	fputs("\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n", f);
	for (size_t i = 0; i < spec->nr_ports; i++) {
		fprintf(f, "\t\tiifname \"%s\" jump out_%s\n", spec->ports[i].tap, spec->ports[i].tap);
		fprintf(f, "\t\toifname \"%s\" jump in_%s\n", spec->ports[i].tap, spec->ports[i].tap);
	}
	fputs("\t}\n", f);
	fputs("\tchain output {\n\t\ttype filter hook output priority 0; policy accept;\n", f);
	for (size_t i = 0; i < spec->nr_ports; i++)
		fprintf(f, "\t\toifname \"%s\" jump in_%s\n", spec->ports[i].tap, spec->ports[i].tap);
	fputs("\t}\n", f);
	fputs("\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n", f);
	for (size_t i = 0; i < spec->nr_ports; i++)
		fprintf(f, "\t\tiifname \"%s\" jump out_%s\n", spec->ports[i].tap, spec->ports[i].tap);
	fputs("\t}\n}\n", f);
}

static void nft_render_forward(FILE *f, const struct nft_forward *fw)
{
	char to[NET_IP_STR], host[NET_IP_STR];
	const char *p = fw->proto == NFT_L4_TCP ? "tcp" : "udp";

	net_ip_format(fw->to_addr, to);
	fputs("\t\t", f);
	/* Only traffic addressed to this host is forwarded, never traffic
	 * passing through it to the same port elsewhere. */
	if (fw->host_addr) {
		net_ip_format(fw->host_addr, host);
		fprintf(f, "ip daddr %s ", host);
	} else {
		fputs("fib daddr type local ", f);
	}
	fprintf(f, "%s dport %u dnat to %s:%u\n", p, fw->host_port, to, fw->to_port);
}

static void nft_render_nat(FILE *f, const struct nft_spec *spec)
{
	char sn[NET_CIDR_STR];

	fputs("table ip " NFT_TABLE_NAT " {\n", f);
	fputs("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
	      f);
	for (size_t i = 0; i < spec->nr_nats; i++)
		for (size_t k = 0; k < spec->nats[i].nr_forwards; k++)
			if (spec->nats[i].forwards[k].to_addr)
				nft_render_forward(f, &spec->nats[i].forwards[k]);
	fputs("\t}\n", f);
	fputs("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n", f);
	for (size_t i = 0; i < spec->nr_nats; i++)
		for (size_t k = 0; k < spec->nats[i].nr_forwards; k++)
			if (spec->nats[i].forwards[k].to_addr)
				nft_render_forward(f, &spec->nats[i].forwards[k]);
	fputs("\t}\n", f);
	fputs("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
	      f);
	for (size_t i = 0; i < spec->nr_nats; i++) {
		net_cidr_format(&spec->nats[i].subnet, sn);
		/* Traffic leaving the subnet goes out with the host's address;
		 * traffic inside it (VM to VM, VM to gateway) keeps its own. */
		fprintf(f, "\t\tip saddr %s ip daddr != %s masquerade\n", sn, sn);
	}
	fputs("\t}\n}\n", f);
}

int nft_render(const struct nft_spec *spec, char **out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	fputs("# vessel: generated by vesseld; applied as one transaction\n", f);
	/* "add" makes the "delete" valid when the table is not there yet. */
	fputs("add table bridge " NFT_TABLE_FW "\ndelete table bridge " NFT_TABLE_FW "\n", f);
	fputs("add table ip " NFT_TABLE_NAT "\ndelete table ip " NFT_TABLE_NAT "\n", f);
	if (spec->nr_ports)
		nft_render_fw(f, spec);
	if (spec->nr_nats)
		nft_render_nat(f, spec);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	return 0;
}

int nft_apply(const char *text, char **err)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int r = -EIO;

	*err = NULL;
	if (!ctx)
		return -ENOMEM;
	/* Keep nft's messages instead of letting it print them to stderr. */
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, text) == 0) {
		r = 0;
	} else {
		const char *e = nft_ctx_get_error_buffer(ctx);

		*err = strdup(e && *e ? e : "nft reported an error without a message");
	}
	nft_ctx_free(ctx);
	return r;
}
