/* Unit tests for src/net (no root, no network): the address, CIDR, port,
 * VLAN and MTU validators, MAC and interface name derivation, the nftables
 * ruleset text and the dnsmasq config against golden files
 * (tests/data/net/, NET_TESTDATA names the directory; NET_GOLDEN_UPDATE=1
 * rewrites them after a deliberate change; review the diff), lease file
 * parsing, and the network/firewall/NIC JSON parsers of the daemon. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/networks.h"
#include "harness.h"
#include "net/addr.h"
#include "net/dnsmasq.h"
#include "net/nft.h"

static char err[NET_ERR_MAX];

TEST(ip_parse)
{
	uint32_t ip;
	char s[NET_IP_STR];

	CHECK_EQ_INT(net_ip_parse("10.1.2.3", &ip), 0);
	CHECK_EQ_INT(ip, 0x0a010203);
	net_ip_format(ip, s);
	CHECK_STR(s, "10.1.2.3");
	CHECK_EQ_INT(net_ip_parse("255.255.255.255", &ip), 0);
	CHECK_EQ_INT(net_ip_parse("256.1.1.1", &ip), -EINVAL);
	CHECK_EQ_INT(net_ip_parse("1.2.3", &ip), -EINVAL);
	CHECK_EQ_INT(net_ip_parse("1.2.3.4.5", &ip), -EINVAL);
	CHECK_EQ_INT(net_ip_parse("01.2.3.4", &ip), -EINVAL);
	CHECK_EQ_INT(net_ip_parse("1.2.3.4 ", &ip), -EINVAL);
	CHECK_EQ_INT(net_ip_parse("", &ip), -EINVAL);
	CHECK_EQ_INT(net_ip_parse("a.b.c.d", &ip), -EINVAL);
	CHECK_EQ_INT(net_ip_parse("1..2.3", &ip), -EINVAL);
}

TEST(cidr)
{
	struct net_cidr a, b;
	char s[NET_CIDR_STR];

	CHECK_EQ_INT(net_cidr_parse("10.0.0.0/24", true, false, &a, "subnet", err), 0);
	CHECK_EQ_INT(a.prefix, 24);
	net_cidr_format(&a, s);
	CHECK_STR(s, "10.0.0.0/24");
	CHECK_EQ_INT(net_cidr_parse("10.0.0.1/24", true, false, &a, "subnet", err), -EINVAL);
	CHECK(strstr(err, "host bits") && strstr(err, "10.0.0.0/24"));
	CHECK_EQ_INT(net_cidr_parse("10.0.0.1/24", false, false, &a, "subnet", err), 0);
	CHECK_EQ_INT(net_cidr_parse("10.0.0.0/33", true, false, &a, "subnet", err), -EINVAL);
	CHECK(strstr(err, "'10.0.0.0/33'") != NULL);
	CHECK_EQ_INT(net_cidr_parse("10.0.0.0/", true, false, &a, "subnet", err), -EINVAL);
	CHECK_EQ_INT(net_cidr_parse("10.0.0.0/-1", true, false, &a, "subnet", err), -EINVAL);
	CHECK_EQ_INT(net_cidr_parse("10.0.0.5", true, false, &a, "subnet", err), -EINVAL);
	CHECK_EQ_INT(net_cidr_parse("10.0.0.5", true, true, &a, "cidr", err), 0);
	CHECK_EQ_INT(a.prefix, 32);
	CHECK_EQ_INT(net_cidr_parse("0.0.0.0/0", true, false, &a, "cidr", err), 0);
	CHECK(net_cidr_contains(&a, 0x01020304));

	net_cidr_parse("10.0.0.0/24", true, false, &a, "s", err);
	net_cidr_parse("10.0.0.128/25", true, false, &b, "s", err);
	CHECK(net_cidr_overlap(&a, &b) && net_cidr_overlap(&b, &a));
	net_cidr_parse("10.0.1.0/24", true, false, &b, "s", err);
	CHECK(!net_cidr_overlap(&a, &b));
	net_cidr_parse("10.0.0.0/16", true, false, &b, "s", err);
	CHECK(net_cidr_overlap(&a, &b) && net_cidr_overlap(&b, &a));
}

TEST(nat_check)
{
	struct net_cidr s;
	uint32_t base = 0x0a000000; /* 10.0.0.0 */

	net_cidr_parse("10.0.0.0/24", true, false, &s, "s", err);
	CHECK_EQ_INT(net_nat_check(&s, base + 1, base + 10, base + 200, err), 0);
	CHECK_EQ_INT(net_nat_check(&s, base + 1, base + 10, base + 300, err), -EINVAL);
	CHECK(strstr(err, "outside subnet 10.0.0.0/24") != NULL);
	CHECK_EQ_INT(net_nat_check(&s, base + 1, base + 0, base + 20, err), -EINVAL);
	CHECK_EQ_INT(net_nat_check(&s, base + 1, base + 20, base + 255, err), -EINVAL);
	CHECK_EQ_INT(net_nat_check(&s, base + 1, base + 50, base + 20, err), -EINVAL);
	CHECK(strstr(err, "starts after it ends") != NULL);
	CHECK_EQ_INT(net_nat_check(&s, base + 0, base + 10, base + 20, err), -EINVAL);
	CHECK(strstr(err, "gateway") != NULL);
	CHECK_EQ_INT(net_nat_check(&s, base + 15, base + 10, base + 20, err), -EINVAL);
	CHECK(strstr(err, "inside the DHCP range") != NULL);
	net_cidr_parse("10.0.0.0/31", true, false, &s, "s", err);
	CHECK_EQ_INT(net_nat_check(&s, base + 1, base + 1, base + 1, err), -EINVAL);
}

TEST(ranges)
{
	unsigned lo, hi;

	CHECK_EQ_INT(net_vlan_check(1, err), 0);
	CHECK_EQ_INT(net_vlan_check(4094, err), 0);
	CHECK_EQ_INT(net_vlan_check(0, err), -EINVAL);
	CHECK_EQ_INT(net_vlan_check(4095, err), -EINVAL);
	CHECK(strstr(err, "4095") && strstr(err, "1 to 4094"));
	CHECK_EQ_INT(net_mtu_check(68, err), 0);
	CHECK_EQ_INT(net_mtu_check(9000, err), 0);
	CHECK_EQ_INT(net_mtu_check(67, err), -EINVAL);
	CHECK_EQ_INT(net_mtu_check(9001, err), -EINVAL);
	CHECK_EQ_INT(net_port_check(0, "host_port", err), -EINVAL);
	CHECK(strstr(err, "host_port 0") != NULL);
	CHECK_EQ_INT(net_port_check(65535, "p", err), 0);
	CHECK_EQ_INT(net_port_range_parse("80", &lo, &hi, err), 0);
	CHECK(lo == 80 && hi == 80);
	CHECK_EQ_INT(net_port_range_parse("8000-8080", &lo, &hi, err), 0);
	CHECK(lo == 8000 && hi == 8080);
	CHECK_EQ_INT(net_port_range_parse("90-80", &lo, &hi, err), -EINVAL);
	CHECK_EQ_INT(net_port_range_parse("0", &lo, &hi, err), -EINVAL);
	CHECK_EQ_INT(net_port_range_parse("65536", &lo, &hi, err), -EINVAL);
	CHECK_EQ_INT(net_port_range_parse("80-", &lo, &hi, err), -EINVAL);
	CHECK_EQ_INT(net_port_range_parse("http", &lo, &hi, err), -EINVAL);
	CHECK_EQ_INT(net_ifname_check("eth0", "uplink", err), 0);
	CHECK_EQ_INT(net_ifname_check("a-very-long-name0", "uplink", err), -EINVAL);
	CHECK_EQ_INT(net_ifname_check("a/b", "uplink", err), -EINVAL);
	CHECK_EQ_INT(net_ifname_check("", "uplink", err), -EINVAL);
}

TEST(mac_and_names)
{
	const char *u1 = "6f1c2a3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b";
	const char *u2 = "7f1c2a3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b";
	char a[NET_MAC_STR], b[NET_MAC_STR], c[NET_MAC_STR], t1[16], t2[16];

	CHECK_EQ_INT(net_mac_derive(u1, 0, 0, a), 0);
	CHECK_EQ_INT(net_mac_derive(u1, 0, 0, b), 0);
	CHECK_STR(a, b); /* stable */
	CHECK(strncmp(a, "52:54:00:", 9) == 0 && strlen(a) == 17);
	net_mac_derive(u1, 1, 0, b);
	net_mac_derive(u2, 0, 0, c);
	CHECK(strcmp(a, b) != 0 && strcmp(a, c) != 0);
	net_mac_derive(u1, 0, 1, b); /* next attempt after a collision */
	CHECK(strcmp(a, b) != 0);
	CHECK_EQ_INT(net_mac_derive("short", 0, 0, a), -EINVAL);
	CHECK_EQ_INT(net_mac_parse("52:54:00:AB:cd:01", a, err), 0);
	CHECK_STR(a, "52:54:00:ab:cd:01");
	CHECK_EQ_INT(net_mac_parse("01:00:5e:00:00:01", a, err), -EINVAL);
	CHECK(strstr(err, "multicast") != NULL);
	CHECK_EQ_INT(net_mac_parse("52:54:00:ab:cd", a, err), -EINVAL);
	CHECK_EQ_INT(net_mac_parse("52-54-00-ab-cd-01", a, err), -EINVAL);
	CHECK_EQ_INT(net_mac_parse("52:54:00:ab:cd:0g", a, err), -EINVAL);
	net_tap_name(u1, 0, t1);
	net_tap_name(u1, 1, t2);
	CHECK(strlen(t1) == 14 && strncmp(t1, "vt", 2) == 0 && strcmp(t1, t2) != 0);
	net_vlan_bridge_name("iso1", 10, t1);
	net_vlan_link_name("iso1", 10, t2);
	CHECK(strlen(t1) == 14 && strncmp(t1, "vv", 2) == 0 && strncmp(t2, "vu", 2) == 0);
	CHECK(strcmp(t1 + 2, t2 + 2) == 0);
}

static void check_golden(const char *name, const char *text)
{
	const char *dir = getenv("NET_TESTDATA");
	char path[4096];
	char *want = NULL;
	size_t n = 0;
	FILE *f;

	CHECK(dir != NULL);
	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (getenv("NET_GOLDEN_UPDATE")) {
		f = fopen(path, "w");
		CHECK(f != NULL);
		if (f) {
			fputs(text, f);
			fclose(f);
		}
	}
	f = fopen(path, "r");
	CHECK(f != NULL);
	if (!f)
		return;
	if (getdelim(&want, &n, '\0', f) < 0) {
		free(want);
		want = strdup("");
	}
	fclose(f);
	if (strcmp(want, text) != 0) {
		fprintf(stderr, "  %s differs from the rendered text:\n%s\n", path, text);
		harness_case_failed = 1;
	}
	free(want);
}

TEST(nft_golden)
{
	struct fw_set web = {.name = "web", .default_in = FW_ACTION_DENY,
			     .default_out = FW_ACTION_ALLOW, .nr_rules = 4};
	struct nft_forward fwd[2] = {
		{.proto = NFT_L4_TCP, .host_port = 8080, .to_addr = 0x0a590085, .to_port = 80},
		{.proto = NFT_L4_UDP, .host_addr = 0xc0a8fa01, .host_port = 5353, .to_addr = 0,
		 .to_port = 53},
	};
	struct nft_nat nat = {.bridge = "vb-nat1", .forwards = fwd, .nr_forwards = 2};
	struct nft_port port = {.tap = "vt0123456789ab", .fw = &web};
	struct nft_spec spec = {.nats = &nat, .nr_nats = 1, .ports = &port, .nr_ports = 1};
	struct nft_spec none = {0};
	char *text = NULL;

	web.rules[0] = (struct fw_rule){.dir = FW_DIR_IN, .proto = FW_PROTO_TCP, .port_lo = 80,
					.port_hi = 80, .action = FW_ACTION_ALLOW};
	net_cidr_parse("192.168.250.2/32", true, true, &web.rules[0].cidr, "c", err);
	web.rules[0].has_cidr = true;
	web.rules[1] = (struct fw_rule){.dir = FW_DIR_IN, .proto = FW_PROTO_UDP, .port_lo = 6000,
					.port_hi = 6010, .action = FW_ACTION_ALLOW};
	web.rules[2] = (struct fw_rule){.dir = FW_DIR_OUT, .proto = FW_PROTO_ANY,
					.action = FW_ACTION_DENY};
	net_cidr_parse("10.0.0.0/8", true, true, &web.rules[2].cidr, "c", err);
	web.rules[2].has_cidr = true;
	web.rules[3] = (struct fw_rule){.dir = FW_DIR_IN, .proto = FW_PROTO_ICMP,
					.action = FW_ACTION_ALLOW};
	net_cidr_parse("10.89.0.0/24", true, false, &nat.subnet, "s", err);
	CHECK_EQ_INT(nft_render(&spec, &text), 0);
	check_golden("ruleset.nft", text);
	/* the forward without a lease yet is left out */
	CHECK(strstr(text, "5353") == NULL);
	CHECK(strstr(text, "dnat to 10.89.0.133:80") != NULL);
	free(text);
	CHECK_EQ_INT(nft_render(&none, &text), 0);
	check_golden("ruleset-empty.nft", text);
	CHECK(strstr(text, "table bridge vessel {") == NULL);
	free(text);
}

TEST(dnsmasq_conf_golden)
{
	struct dnsmasq_conf c = {.bridge = "vb-nat1", .gateway = 0x0a590001,
				 .dhcp_start = 0x0a590064, .dhcp_end = 0x0a590096, .mtu = 1400,
				 .lease_file = "/var/lib/vessel/networks/nat1/leases",
				 .pid_file = "/var/lib/vessel/networks/nat1/dnsmasq.pid"};
	char *text = NULL;

	net_cidr_parse("10.89.0.0/24", true, false, &c.subnet, "s", err);
	CHECK_EQ_INT(dnsmasq_conf_render(&c, &text), 0);
	check_golden("dnsmasq.conf", text);
	free(text);
}

TEST(leases)
{
	struct dnsmasq_lease *l = NULL;
	size_t n = 0;
	const char *text = "1795691164 52:54:00:22:f4:d5 10.77.0.41 * 01:52:54:00:22:f4:d5\n"
			   "garbage line\n"
			   "1795691165 52:54:00:AA:BB:CC 10.77.0.42 host2 *\n"
			   "1795691166 52:54:00:aa:bb:cd 999.1.1.1 x *\n";

	CHECK_EQ_INT(dnsmasq_leases_parse(text, &l, &n), 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_STR(l[0].mac, "52:54:00:22:f4:d5");
		CHECK_STR(l[0].ip, "10.77.0.41");
		CHECK_STR(l[1].mac, "52:54:00:aa:bb:cc");
		CHECK_EQ_INT(l[1].expiry, 1795691165);
	}
	free(l);
	CHECK_EQ_INT(dnsmasq_leases_read("/nonexistent/leases", &l, &n), 0);
	CHECK_EQ_INT(n, 0);
}

static int parse_net(const char *json, struct net_record *out)
{
	json_t *j = json_loads(json, 0, NULL);
	int r = networks_parse(j, false, out, err);

	json_decref(j);
	return r;
}

TEST(network_json)
{
	struct net_record n;

	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"nat\",\"subnet\":\"10.5.0.0/24\"}", &n), 0);
	CHECK_EQ_INT(n.gateway, 0x0a050001);
	CHECK_EQ_INT(n.dhcp_start, 0x0a050002);
	CHECK_EQ_INT(n.dhcp_end, 0x0a0500fe);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"nat\",\"subnet\":\"10.5.0.0/24\","
			       "\"gateway\":\"10.5.0.254\"}", &n), 0);
	CHECK_EQ_INT(n.dhcp_end, 0x0a0500fd);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"nat\"}", &n), -EINVAL);
	CHECK(strstr(err, "subnet") != NULL);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"nat\",\"subnet\":\"10.5.0.0/24\","
			       "\"dhcp_start\":\"10.6.0.1\"}", &n), -EINVAL);
	CHECK(strstr(err, "outside") != NULL);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"isolated\",\"uplink\":\"eth0\"}", &n),
		     -EINVAL);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"bridge\"}", &n), -EINVAL);
	CHECK(strstr(err, "uplink") != NULL);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"bridge\",\"uplink\":\"eth0\","
			       "\"mtu\":9000}", &n), 0);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"isolated\",\"mtu\":9001}", &n), -EINVAL);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"isolated\",\"colour\":1}", &n), -EINVAL);
	CHECK(strstr(err, "colour") != NULL);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"isolated\",\"dnsmasq_pid\":1}", &n),
		     -EINVAL);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"isolated\",\"port_forwards\":"
			       "[{\"host_port\":80,\"vm\":\"a\",\"vm_port\":80}]}", &n), -EINVAL);
	CHECK(strstr(err, "nat") != NULL);
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"nat\",\"subnet\":\"10.5.0.0/24\","
			       "\"port_forwards\":[{\"host_port\":80,\"vm\":\"a\",\"vm_port\":80},"
			       "{\"host_port\":80,\"vm\":\"b\",\"vm_port\":81}]}", &n), -EINVAL);
	CHECK(strstr(err, "once") != NULL);

	/* stored form round trip */
	CHECK_EQ_INT(parse_net("{\"name\":\"n1\",\"type\":\"nat\",\"subnet\":\"10.5.0.0/24\","
			       "\"port_forwards\":[{\"protocol\":\"udp\",\"host_port\":53,"
			       "\"host_address\":\"192.168.1.1\",\"vm\":\"a\",\"nic\":1,"
			       "\"vm_port\":5353}]}", &n), 0);
	snprintf(n.bridge, sizeof(n.bridge), "vb-n1");
	n.bridge_created = true;
	n.dnsmasq_pid = 4242;
	n.vlans[0] = 10;
	n.nr_vlans = 1;
	json_t *j = networks_to_json(&n, true);
	struct net_record back;
	CHECK_EQ_INT(networks_parse(j, true, &back, err), 0);
	CHECK(back.bridge_created && back.dnsmasq_pid == 4242 && back.nr_vlans == 1 &&
	      back.vlans[0] == 10 && back.nr_forwards == 1 && back.forwards[0].nic == 1 &&
	      back.forwards[0].proto == NFT_L4_UDP);
	CHECK_STR(back.forwards[0].host_address, "192.168.1.1");
	json_decref(j);
}

TEST(firewall_and_nic_json)
{
	struct fw_set f;
	struct vm_nic nic;
	json_t *j = json_loads("{\"name\":\"web\",\"rules\":[{\"protocol\":\"tcp\",\"ports\":"
			       "\"80-443\",\"cidr\":\"1.2.3.4\",\"action\":\"allow\"}]}", 0, NULL);

	CHECK_EQ_INT(firewalls_parse(j, &f, err), 0);
	CHECK(f.default_in == FW_ACTION_DENY && f.default_out == FW_ACTION_ALLOW);
	CHECK(f.nr_rules == 1 && f.rules[0].port_lo == 80 && f.rules[0].port_hi == 443 &&
	      f.rules[0].cidr.prefix == 32);
	json_decref(j);
	j = json_loads("{\"name\":\"web\",\"rules\":[{\"action\":\"allow\",\"cidr\":\"1.2.3.4/24\"}]}",
		       0, NULL);
	CHECK_EQ_INT(firewalls_parse(j, &f, err), -EINVAL);
	CHECK(strstr(err, "rules[0]") && strstr(err, "host bits"));
	json_decref(j);
	j = json_loads("{\"network\":\"n1\",\"vlan\":4095}", 0, NULL);
	CHECK_EQ_INT(networks_nic_parse(j, 2, &nic, err), -EINVAL);
	CHECK(strstr(err, "nics[2]") && strstr(err, "4095"));
	json_decref(j);
	j = json_loads("{\"network\":\"n1\",\"vlan\":7,\"bandwidth_mbit\":100,\"firewall\":\"web\"}",
		       0, NULL);
	CHECK_EQ_INT(networks_nic_parse(j, 0, &nic, err), 0);
	CHECK(nic.vlan == 7 && nic.rate_mbit == 100);
	CHECK_STR(nic.firewall, "web");
	json_decref(j);
}

HARNESS_MAIN
