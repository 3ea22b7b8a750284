/* net_json: the JSON forms of networks, firewall rule sets and VM NICs
 * (docs/networking.md), parsed strictly: every field is checked with the
 * validators in src/net/addr.c before anything is created on the host, and
 * the error names the field and the bad value. The same functions read the
 * definitions back from the store (stored=true adds the host-state fields). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "daemon/networks.h"
#include "lib/util.h"

__attribute__((format(printf, 2, 3))) static int nj_fail(char err[NET_ERR_MAX], const char *fmt,
							 ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, NET_ERR_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int nj_known(const json_t *obj, const char *what, const char *const *allowed,
		    char err[NET_ERR_MAX])
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return nj_fail(err, "%s must be a JSON object", what);
	json_object_foreach((json_t *)obj, key, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			ok = ok || strcmp(key, allowed[i]) == 0;
		if (!ok)
			return nj_fail(err, "unknown field '%s' in %s; see docs/networking.md", key,
				       what);
	}
	return 0;
}

/* Optional string field; *out NULL when absent. */
static int nj_str(const json_t *obj, const char *key, const char *what, const char **out,
		  char err[NET_ERR_MAX])
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return nj_fail(err, "%s field '%s' must be a string", what, key);
	*out = json_string_value(v);
	return 0;
}

/* Optional integer; *present false when absent. */
static int nj_int(const json_t *obj, const char *key, const char *what, long long *out,
		  bool *present, char err[NET_ERR_MAX])
{
	json_t *v = json_object_get(obj, key);

	*present = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return nj_fail(err, "%s field '%s' must be an integer", what, key);
	*out = json_integer_value(v);
	*present = true;
	return 0;
}

static int nj_name(const char *s, const char *what, char err[NET_ERR_MAX])
{
	if (!s || !util_is_dns_label(s))
		return nj_fail(err, "%s '%s' is not a valid name: use 1 to 63 lowercase letters, "
			       "digits or '-', not starting or ending with '-'", what, s ? s : "");
	return 0;
}

static const char *const net_type_names[] = {"bridge", "isolated", "nat"};

static const char *const forward_fields[] = {"protocol", "host_address", "host_port", "vm", "nic",
					     "vm_port", NULL};

int networks_forwards_parse(const json_t *arr, struct net_record *out, char err[NET_ERR_MAX])
{
	size_t i;
	json_t *f;

	if (!json_is_array(arr))
		return nj_fail(err, "field 'port_forwards' must be an array of objects");
	if (json_array_size(arr) > NET_MAX_FORWARDS)
		return nj_fail(err, "a network can have at most %d port forwards; %zu were given",
			       NET_MAX_FORWARDS, json_array_size(arr));
	if (json_array_size(arr) && out->type != NET_TYPE_NAT)
		return nj_fail(err, "port forwards need a nat network; network '%s' is %s",
			       out->name, net_type_names[out->type]);
	out->nr_forwards = 0;
	json_array_foreach(arr, i, f) {
		struct net_forward_def *d = &out->forwards[i];
		char what[48];
		const char *proto, *addr, *vm;
		long long hp = 0, vp = 0, nic = 0;
		bool has_hp, has_vp, has_nic;
		uint32_t ip;
		int r;

		snprintf(what, sizeof(what), "port_forwards[%zu]", i);
		memset(d, 0, sizeof(*d));
		if ((r = nj_known(f, what, forward_fields, err)) < 0 ||
		    (r = nj_str(f, "protocol", what, &proto, err)) < 0 ||
		    (r = nj_str(f, "host_address", what, &addr, err)) < 0 ||
		    (r = nj_str(f, "vm", what, &vm, err)) < 0 ||
		    (r = nj_int(f, "host_port", what, &hp, &has_hp, err)) < 0 ||
		    (r = nj_int(f, "vm_port", what, &vp, &has_vp, err)) < 0 ||
		    (r = nj_int(f, "nic", what, &nic, &has_nic, err)) < 0)
			return r;
		if (!proto || strcmp(proto, "tcp") == 0)
			d->proto = NFT_L4_TCP;
		else if (strcmp(proto, "udp") == 0)
			d->proto = NFT_L4_UDP;
		else
			return nj_fail(err, "%s protocol '%s' is unknown; use tcp or udp", what, proto);
		if (!has_hp || !has_vp)
			return nj_fail(err, "%s needs host_port and vm_port", what);
		char sub[NET_ERR_MAX];
		if (net_port_check(hp, "host_port", sub) < 0 || net_port_check(vp, "vm_port", sub) < 0)
			return nj_fail(err, "%s: %s", what, sub);
		d->host_port = (unsigned)hp;
		d->vm_port = (unsigned)vp;
		if (addr) {
			if (net_ip_parse(addr, &ip) < 0)
				return nj_fail(err, "%s host_address '%s' is not an IPv4 address", what,
					       addr);
			net_ip_format(ip, d->host_address);
		}
		if (nj_name(vm, "vm", sub) < 0)
			return nj_fail(err, "%s: %s", what, sub);
		snprintf(d->vm, sizeof(d->vm), "%s", vm);
		if (has_nic && (nic < 0 || nic >= MODEL_MAX_NICS))
			return nj_fail(err, "%s nic %lld is out of range; use 0 to %d", what, nic,
				       MODEL_MAX_NICS - 1);
		d->nic = has_nic ? (unsigned)nic : 0;
		for (size_t k = 0; k < i; k++)
			if (out->forwards[k].proto == d->proto &&
			    out->forwards[k].host_port == d->host_port &&
			    strcmp(out->forwards[k].host_address, d->host_address) == 0)
				return nj_fail(err, "%s forwards host port %u again; each host port "
					       "can be forwarded once", what, d->host_port);
		out->nr_forwards++;
	}
	return 0;
}

static const char *const net_fields[] = {"name", "type", "bridge", "uplink", "mtu", "subnet",
					 "gateway", "dhcp_start", "dhcp_end", "port_forwards",
					 /* stored only */
					 "bridge_created", "dnsmasq_pid", "created_at", "vlan_bridges",
					 NULL};

int networks_parse(const json_t *body, bool stored, struct net_record *out, char err[NET_ERR_MAX])
{
	const char *name, *type, *bridge, *uplink, *subnet, *gw, *ds, *de, *created;
	long long mtu = 0, pid = 0;
	bool has_mtu, has_pid;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = nj_known(body, "the network definition", net_fields, err)) < 0)
		return r;
	if (!stored) {
		const char *const st_only[] = {"bridge_created", "dnsmasq_pid", "created_at",
					       "vlan_bridges"};
		for (size_t i = 0; i < 4; i++)
			if (json_object_get(body, st_only[i]))
				return nj_fail(err, "field '%s' is set by vesseld and cannot be given",
					       st_only[i]);
	}
	if ((r = nj_str(body, "name", "the network", &name, err)) < 0 ||
	    (r = nj_str(body, "type", "the network", &type, err)) < 0 ||
	    (r = nj_str(body, "bridge", "the network", &bridge, err)) < 0 ||
	    (r = nj_str(body, "uplink", "the network", &uplink, err)) < 0 ||
	    (r = nj_str(body, "subnet", "the network", &subnet, err)) < 0 ||
	    (r = nj_str(body, "gateway", "the network", &gw, err)) < 0 ||
	    (r = nj_str(body, "dhcp_start", "the network", &ds, err)) < 0 ||
	    (r = nj_str(body, "dhcp_end", "the network", &de, err)) < 0 ||
	    (r = nj_str(body, "created_at", "the network", &created, err)) < 0 ||
	    (r = nj_int(body, "mtu", "the network", &mtu, &has_mtu, err)) < 0 ||
	    (r = nj_int(body, "dnsmasq_pid", "the network", &pid, &has_pid, err)) < 0)
		return r;
	if (!name)
		return nj_fail(err, "field 'name' is required");
	if ((r = nj_name(name, "network name", err)) < 0)
		return r;
	snprintf(out->name, sizeof(out->name), "%s", name);
	if (!type)
		return nj_fail(err, "field 'type' is required: bridge, isolated or nat");
	if (strcmp(type, "bridge") == 0)
		out->type = NET_TYPE_BRIDGE;
	else if (strcmp(type, "isolated") == 0)
		out->type = NET_TYPE_ISOLATED;
	else if (strcmp(type, "nat") == 0)
		out->type = NET_TYPE_NAT;
	else
		return nj_fail(err, "network type '%s' is unknown; use bridge, isolated or nat", type);
	if (bridge) {
		if ((r = net_ifname_check(bridge, "bridge", err)) < 0)
			return r;
		snprintf(out->bridge, sizeof(out->bridge), "%s", bridge);
	}
	if (uplink) {
		if (out->type != NET_TYPE_BRIDGE)
			return nj_fail(err, "field 'uplink' is only for bridge networks; a %s network "
				       "has no uplink", type);
		if ((r = net_ifname_check(uplink, "uplink", err)) < 0)
			return r;
		snprintf(out->uplink, sizeof(out->uplink), "%s", uplink);
	}
	if (out->type == NET_TYPE_BRIDGE && !bridge && !uplink)
		return nj_fail(err, "a bridge network needs 'bridge' (an existing host bridge to "
			       "attach to) or 'uplink' (a host interface to create a bridge over)");
	if (has_mtu) {
		if ((r = net_mtu_check(mtu, err)) < 0)
			return r;
		out->mtu = (unsigned)mtu;
	}
	if (out->type != NET_TYPE_NAT && (subnet || gw || ds || de))
		return nj_fail(err, "subnet, gateway and DHCP range are only for nat networks; "
			       "remove them or use type nat");
	if (out->type == NET_TYPE_NAT) {
		uint32_t m, netaddr, bcast;

		if (!subnet)
			return nj_fail(err, "a nat network needs 'subnet', for example "
				       "\"10.0.0.0/24\"");
		if ((r = net_cidr_parse(subnet, true, false, &out->subnet, "subnet", err)) < 0)
			return r;
		m = net_cidr_mask(out->subnet.prefix);
		netaddr = out->subnet.addr & m;
		bcast = netaddr | ~m;
		out->gateway = netaddr + 1;
		out->dhcp_start = netaddr + 2;
		out->dhcp_end = bcast - 1;
		if (gw && net_ip_parse(gw, &out->gateway) < 0)
			return nj_fail(err, "gateway '%s' is not an IPv4 address", gw);
		if (ds && net_ip_parse(ds, &out->dhcp_start) < 0)
			return nj_fail(err, "dhcp_start '%s' is not an IPv4 address", ds);
		if (de && net_ip_parse(de, &out->dhcp_end) < 0)
			return nj_fail(err, "dhcp_end '%s' is not an IPv4 address", de);
		/* A default range steps around a gateway given inside it:
		 * before it when it is the last host address, else after it. */
		if (gw && !ds && !de && out->gateway >= out->dhcp_start &&
		    out->gateway <= out->dhcp_end) {
			if (out->gateway == out->dhcp_end)
				out->dhcp_end = out->gateway - 1;
			else
				out->dhcp_start = out->gateway + 1;
		}
		if ((r = net_nat_check(&out->subnet, out->gateway, out->dhcp_start, out->dhcp_end,
				       err)) < 0)
			return r;
	}
	json_t *fw = json_object_get(body, "port_forwards");
	if (fw && (r = networks_forwards_parse(fw, out, err)) < 0)
		return r;
	if (stored) {
		out->bridge_created = json_is_true(json_object_get(body, "bridge_created"));
		out->dnsmasq_pid = has_pid ? (pid_t)pid : 0;
		if (created)
			snprintf(out->created_at, sizeof(out->created_at), "%s", created);
		json_t *vl = json_object_get(body, "vlan_bridges"), *x;
		size_t i;
		json_array_foreach(vl, i, x) {
			if (json_is_integer(x) && out->nr_vlans < NET_MAX_VLANS)
				out->vlans[out->nr_vlans++] = (unsigned)json_integer_value(x);
		}
	}
	return 0;
}

json_t *networks_to_json(const struct net_record *n, bool stored)
{
	json_t *j = json_pack("{s:s,s:s,s:s}", "name", n->name, "type", net_type_names[n->type],
			      "bridge", n->bridge);
	json_t *fw = json_array();
	char ip[NET_IP_STR], cidr[NET_CIDR_STR];

	json_object_set_new(j, "uplink", n->uplink[0] ? json_string(n->uplink) : json_null());
	json_object_set_new(j, "mtu", n->mtu ? json_integer(n->mtu) : json_null());
	if (n->type == NET_TYPE_NAT) {
		net_cidr_format(&n->subnet, cidr);
		json_object_set_new(j, "subnet", json_string(cidr));
		net_ip_format(n->gateway, ip);
		json_object_set_new(j, "gateway", json_string(ip));
		net_ip_format(n->dhcp_start, ip);
		json_object_set_new(j, "dhcp_start", json_string(ip));
		net_ip_format(n->dhcp_end, ip);
		json_object_set_new(j, "dhcp_end", json_string(ip));
	}
	for (unsigned i = 0; i < n->nr_forwards; i++) {
		const struct net_forward_def *f = &n->forwards[i];
		json_t *o = json_pack("{s:s,s:i,s:s,s:i,s:i}", "protocol",
				      f->proto == NFT_L4_TCP ? "tcp" : "udp", "host_port",
				      (int)f->host_port, "vm", f->vm, "nic", (int)f->nic, "vm_port",
				      (int)f->vm_port);
		if (f->host_address[0])
			json_object_set_new(o, "host_address", json_string(f->host_address));
		json_array_append_new(fw, o);
	}
	json_object_set_new(j, "port_forwards", fw);
	json_object_set_new(j, stored ? "bridge_created" : "bridge_created_by_vessel",
			    json_boolean(n->bridge_created));
	json_t *vl = json_array();
	for (unsigned i = 0; i < n->nr_vlans; i++)
		json_array_append_new(vl, json_integer(n->vlans[i]));
	json_object_set_new(j, "vlan_bridges", vl);
	if (stored) {
		if (n->dnsmasq_pid > 0)
			json_object_set_new(j, "dnsmasq_pid", json_integer(n->dnsmasq_pid));
	} else if (n->type == NET_TYPE_NAT) {
		json_object_set_new(j, "dnsmasq", json_pack("{s:o,s:i}", "pid",
						      n->dnsmasq_pid > 0 ?
							      json_integer(n->dnsmasq_pid) :
							      json_null(),
						      "restarts", (int)n->dnsmasq_restarts));
	}
	json_object_set_new(j, "created_at", json_string(n->created_at));
	return j;
}

static const char *const fw_fields[] = {"name", "default_inbound", "default_outbound", "rules",
					NULL};
static const char *const rule_fields[] = {"direction", "protocol", "ports", "cidr", "action",
					  NULL};

int firewalls_parse(const json_t *body, struct fw_set *out, char err[NET_ERR_MAX])
{
	const char *name, *din, *dout;
	json_t *rules, *rj;
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	out->default_in = FW_ACTION_DENY;
	out->default_out = FW_ACTION_ALLOW;
	if ((r = nj_known(body, "the firewall definition", fw_fields, err)) < 0 ||
	    (r = nj_str(body, "name", "the firewall", &name, err)) < 0 ||
	    (r = nj_str(body, "default_inbound", "the firewall", &din, err)) < 0 ||
	    (r = nj_str(body, "default_outbound", "the firewall", &dout, err)) < 0)
		return r;
	if (!name)
		return nj_fail(err, "field 'name' is required");
	if ((r = nj_name(name, "firewall name", err)) < 0)
		return r;
	snprintf(out->name, sizeof(out->name), "%s", name);
	if (din && fw_action_parse(din, &out->default_in) < 0)
		return nj_fail(err, "default_inbound '%s' is unknown; use allow or deny", din);
	if (dout && fw_action_parse(dout, &out->default_out) < 0)
		return nj_fail(err, "default_outbound '%s' is unknown; use allow or deny", dout);
	rules = json_object_get(body, "rules");
	if (!rules)
		return 0;
	if (!json_is_array(rules))
		return nj_fail(err, "field 'rules' must be an array of rule objects");
	if (json_array_size(rules) > FW_MAX_RULES)
		return nj_fail(err, "a firewall can have at most %d rules; %zu were given",
			       FW_MAX_RULES, json_array_size(rules));
	json_array_foreach(rules, i, rj) {
		struct fw_rule *ru = &out->rules[i];
		const char *dir, *proto, *ports, *cidr, *action;
		char what[32], sub[NET_ERR_MAX];

		snprintf(what, sizeof(what), "rules[%zu]", i);
		if ((r = nj_known(rj, what, rule_fields, err)) < 0 ||
		    (r = nj_str(rj, "direction", what, &dir, err)) < 0 ||
		    (r = nj_str(rj, "protocol", what, &proto, err)) < 0 ||
		    (r = nj_str(rj, "ports", what, &ports, err)) < 0 ||
		    (r = nj_str(rj, "cidr", what, &cidr, err)) < 0 ||
		    (r = nj_str(rj, "action", what, &action, err)) < 0)
			return r;
		ru->dir = FW_DIR_IN;
		if (dir && fw_dir_parse(dir, &ru->dir) < 0)
			return nj_fail(err, "%s direction '%s' is unknown; use in or out", what, dir);
		ru->proto = FW_PROTO_ANY;
		if (proto && fw_proto_parse(proto, &ru->proto) < 0)
			return nj_fail(err, "%s protocol '%s' is unknown; use any, tcp, udp or icmp",
				       what, proto);
		if (!action)
			return nj_fail(err, "%s needs 'action': allow or deny", what);
		if (fw_action_parse(action, &ru->action) < 0)
			return nj_fail(err, "%s action '%s' is unknown; use allow or deny", what,
				       action);
		if (ports) {
			if (ru->proto != FW_PROTO_TCP && ru->proto != FW_PROTO_UDP)
				return nj_fail(err, "%s gives ports for protocol %s; ports need tcp "
					       "or udp", what, fw_proto_name(ru->proto));
			if (net_port_range_parse(ports, &ru->port_lo, &ru->port_hi, sub) < 0)
				return nj_fail(err, "%s: %s", what, sub);
		}
		if (cidr) {
			if (net_cidr_parse(cidr, true, true, &ru->cidr, "cidr", sub) < 0)
				return nj_fail(err, "%s: %s", what, sub);
			ru->has_cidr = true;
		}
		out->nr_rules++;
	}
	return 0;
}

json_t *firewalls_to_json(const struct fw_set *s)
{
	json_t *rules = json_array();
	char cidr[NET_CIDR_STR], ports[16];

	for (unsigned i = 0; i < s->nr_rules; i++) {
		const struct fw_rule *r = &s->rules[i];
		json_t *o = json_pack("{s:s,s:s,s:s}", "direction", fw_dir_name(r->dir), "protocol",
				      fw_proto_name(r->proto), "action", fw_action_name(r->action));

		if (r->port_lo) {
			if (r->port_lo == r->port_hi)
				snprintf(ports, sizeof(ports), "%u", r->port_lo);
			else
				snprintf(ports, sizeof(ports), "%u-%u", r->port_lo, r->port_hi);
			json_object_set_new(o, "ports", json_string(ports));
		}
		if (r->has_cidr) {
			net_cidr_format(&r->cidr, cidr);
			json_object_set_new(o, "cidr", json_string(cidr));
		}
		json_array_append_new(rules, o);
	}
	return json_pack("{s:s,s:s,s:s,s:o}", "name", s->name, "default_inbound",
			 fw_action_name(s->default_in), "default_outbound",
			 fw_action_name(s->default_out), "rules", rules);
}

static const char *const nic_fields[] = {"network", "vlan", "mac", "firewall", "bandwidth_mbit",
					 /* read-only fields GET returns, accepted back unchanged */
					 "index", "tap", "ip", NULL};

int networks_nic_parse(const json_t *j, unsigned index, struct vm_nic *out, char err[NET_ERR_MAX])
{
	const char *network, *mac, *fw;
	long long vlan = 0, bw = 0;
	bool has_vlan, has_bw;
	char what[16], sub[NET_ERR_MAX];
	int r;

	snprintf(what, sizeof(what), "nics[%u]", index);
	memset(out, 0, sizeof(*out));
	out->index = index;
	if ((r = nj_known(j, what, nic_fields, err)) < 0 ||
	    (r = nj_str(j, "network", what, &network, err)) < 0 ||
	    (r = nj_str(j, "mac", what, &mac, err)) < 0 ||
	    (r = nj_str(j, "firewall", what, &fw, err)) < 0 ||
	    (r = nj_int(j, "vlan", what, &vlan, &has_vlan, err)) < 0 ||
	    (r = nj_int(j, "bandwidth_mbit", what, &bw, &has_bw, err)) < 0)
		return r;
	if (!network)
		return nj_fail(err, "%s needs 'network', the name of a network", what);
	if (nj_name(network, "network", sub) < 0)
		return nj_fail(err, "%s: %s", what, sub);
	snprintf(out->network, sizeof(out->network), "%s", network);
	if (has_vlan) {
		if (net_vlan_check(vlan, sub) < 0)
			return nj_fail(err, "%s: %s", what, sub);
		out->vlan = (unsigned)vlan;
	}
	if (mac && net_mac_parse(mac, out->mac, sub) < 0)
		return nj_fail(err, "%s: %s", what, sub);
	if (fw) {
		if (nj_name(fw, "firewall", sub) < 0)
			return nj_fail(err, "%s: %s", what, sub);
		snprintf(out->firewall, sizeof(out->firewall), "%s", fw);
	}
	if (has_bw) {
		if (bw < 1 || bw > 100000)
			return nj_fail(err, "%s bandwidth_mbit %lld is out of range; use 1 to 100000 "
				       "(Mbit/s), or leave it out for no limit", what, bw);
		out->rate_mbit = (unsigned)bw;
	}
	return 0;
}

json_t *networks_nic_to_json(const struct vm_nic *n)
{
	char ip[NET_IP_STR];

	networks_lease_ip(n->mac, ip);
	return json_pack("{s:i,s:s,s:s,s:o,s:o,s:o,s:s,s:o}", "index", (int)n->index, "network",
			 n->network, "mac", n->mac, "vlan",
			 n->vlan ? json_integer(n->vlan) : json_null(), "firewall",
			 n->firewall[0] ? json_string(n->firewall) : json_null(), "bandwidth_mbit",
			 n->rate_mbit ? json_integer(n->rate_mbit) : json_null(), "tap", n->tap,
			 "ip", ip[0] ? json_string(ip) : json_null());
}
