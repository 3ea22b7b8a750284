/* network: `vessel network ...` and `vessel firewall ...` (docs/cli.md,
 * docs/networking.md) and the --nic option of `vm create`/`vm update`.
 * The body builders are pure so tests/unit/cli checks them; vesseld does
 * the real validation and names what is wrong. */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

const struct cli_opt cli_network_create_opts[] = {
	{"type", CLI_OPT_NET_TYPE, true},
	{"subnet", CLI_OPT_SUBNET, true},
	{"gateway", CLI_OPT_GATEWAY, true},
	{"dhcp-range", CLI_OPT_DHCP_RANGE, true},
	{"bridge", CLI_OPT_BRIDGE, true},
	{"uplink", CLI_OPT_UPLINK, true},
	{"mtu", CLI_OPT_MTU, true},
	{NULL, 0, false},
};

const struct cli_opt cli_firewall_opts[] = {
	{"rule", CLI_OPT_RULE, true},
	{"default-inbound", CLI_OPT_DEFAULT_IN, true},
	{"default-outbound", CLI_OPT_DEFAULT_OUT, true},
	{NULL, 0, false},
};

static int net_int(const char *what, const char *s, long lo, long hi, long *out, char *err,
		   size_t errlen)
{
	char *end;
	long v;

	if (!s || !*s)
		goto bad;
	v = strtol(s, &end, 10);
	if (*end || v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	snprintf(err, errlen, "%s '%s' is not a number from %ld to %ld", what, s ? s : "", lo, hi);
	return -EINVAL;
}

int cli_network_create_body(const struct cli_args *a, json_t **out, char *err, size_t errlen)
{
	const char *type = cli_args_get(a, CLI_OPT_NET_TYPE);
	const char *range = cli_args_get(a, CLI_OPT_DHCP_RANGE);
	const char *mtu = cli_args_get(a, CLI_OPT_MTU);
	const struct {
		int id;
		const char *key;
	} str[] = {{CLI_OPT_SUBNET, "subnet"}, {CLI_OPT_GATEWAY, "gateway"},
		   {CLI_OPT_BRIDGE, "bridge"}, {CLI_OPT_UPLINK, "uplink"}};
	json_t *body;

	if (!type) {
		snprintf(err, errlen, "network create needs --type nat, isolated or bridge");
		return -EINVAL;
	}
	body = json_pack("{s:s,s:s}", "name", a->pos[0], "type", type);
	if (!body)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(str); i++) {
		const char *v = cli_args_get(a, str[i].id);
		if (v)
			json_object_set_new(body, str[i].key, json_string(v));
	}
	if (range) {
		const char *dash = strchr(range, '-');
		if (!dash || dash == range || !dash[1]) {
			snprintf(err, errlen, "--dhcp-range '%s' is not FIRST-LAST, for example "
				 "10.0.0.100-10.0.0.200", range);
			json_decref(body);
			return -EINVAL;
		}
		json_object_set_new(body, "dhcp_start", json_stringn(range, (size_t)(dash - range)));
		json_object_set_new(body, "dhcp_end", json_string(dash + 1));
	}
	if (mtu) {
		long v;
		if (net_int("--mtu", mtu, 1, 65535, &v, err, errlen) < 0) {
			json_decref(body);
			return -EINVAL;
		}
		json_object_set_new(body, "mtu", json_integer(v));
	}
	*out = body;
	return 0;
}

/* "tcp:8080:web:80" or "udp:192.168.1.5:53:dns:5353", nic with "@N" after
 * the VM name ("web@1"). */
int cli_forward_parse(const char *spec, json_t **out, char *err, size_t errlen)
{
	char buf[256], *f[5], *save = NULL, *at;
	size_t n = 0;
	long v;
	json_t *o;

	if (strlen(spec) >= sizeof(buf))
		goto bad;
	strcpy(buf, spec);
	for (char *p = strtok_r(buf, ":", &save); p && n < 5; p = strtok_r(NULL, ":", &save))
		f[n++] = p;
	if (n != 4 && n != 5)
		goto bad;
	o = json_pack("{s:s}", "protocol", f[0]);
	if (!o)
		return -ENOMEM;
	if (n == 5)
		json_object_set_new(o, "host_address", json_string(f[1]));
	if (net_int("host port", f[n - 3], 1, 65535, &v, err, errlen) < 0)
		goto fail;
	json_object_set_new(o, "host_port", json_integer(v));
	at = strchr(f[n - 2], '@');
	if (at) {
		*at = '\0';
		if (net_int("NIC index", at + 1, 0, 3, &v, err, errlen) < 0)
			goto fail;
		json_object_set_new(o, "nic", json_integer(v));
	}
	json_object_set_new(o, "vm", json_string(f[n - 2]));
	if (net_int("VM port", f[n - 1], 1, 65535, &v, err, errlen) < 0)
		goto fail;
	json_object_set_new(o, "vm_port", json_integer(v));
	*out = o;
	return 0;
fail:
	json_decref(o);
	return -EINVAL;
bad:
	snprintf(err, errlen, "port forward '%s' is not PROTO:[HOST_ADDR:]HOST_PORT:VM[@NIC]:VM_PORT, "
		 "for example tcp:8080:web:80", spec);
	return -EINVAL;
}

/* "in,tcp,80-443,10.0.0.0/8,allow": direction,protocol,ports,cidr,action;
 * empty fields (or "any" for ports and cidr) are left out. */
int cli_rule_parse(const char *spec, json_t **out, char *err, size_t errlen)
{
	char buf[256], *f[5] = {0};
	size_t n = 0;
	char *p, *q;
	json_t *o;

	if (strlen(spec) >= sizeof(buf))
		goto bad;
	strcpy(buf, spec);
	for (p = buf; n < 5; p = q + 1) {
		q = strchrnul(p, ',');
		f[n++] = p;
		if (!*q)
			break;
		*q = '\0';
	}
	if (n != 5 || !*f[4])
		goto bad;
	o = json_pack("{s:s}", "action", f[4]);
	if (!o)
		return -ENOMEM;
	if (*f[0])
		json_object_set_new(o, "direction", json_string(f[0]));
	if (*f[1])
		json_object_set_new(o, "protocol", json_string(f[1]));
	if (*f[2] && strcmp(f[2], "any") != 0)
		json_object_set_new(o, "ports", json_string(f[2]));
	if (*f[3] && strcmp(f[3], "any") != 0)
		json_object_set_new(o, "cidr", json_string(f[3]));
	*out = o;
	return 0;
bad:
	snprintf(err, errlen, "rule '%s' is not DIRECTION,PROTOCOL,PORTS,CIDR,ACTION, for example "
		 "in,tcp,80,192.168.1.0/24,allow", spec);
	return -EINVAL;
}

int cli_firewall_body(const struct cli_args *a, json_t **out, char *err, size_t errlen)
{
	json_t *body = json_pack("{s:s}", "name", a->pos[0]), *rules = json_array(), *r;
	const char *din = cli_args_get(a, CLI_OPT_DEFAULT_IN);
	const char *dout = cli_args_get(a, CLI_OPT_DEFAULT_OUT);
	int ret;

	if (!body || !rules) {
		json_decref(body);
		json_decref(rules);
		return -ENOMEM;
	}
	if (din)
		json_object_set_new(body, "default_inbound", json_string(din));
	if (dout)
		json_object_set_new(body, "default_outbound", json_string(dout));
	for (size_t i = 0; i < a->n_opts; i++) {
		if (a->opts[i].id != CLI_OPT_RULE)
			continue;
		if ((ret = cli_rule_parse(a->opts[i].value, &r, err, errlen)) < 0) {
			json_decref(body);
			json_decref(rules);
			return ret;
		}
		json_array_append_new(rules, r);
	}
	json_object_set_new(body, "rules", rules);
	*out = body;
	return 0;
}

int cli_nic_parse(const char *spec, json_t **out, char *err, size_t errlen)
{
	char buf[256], *save = NULL, *p;
	json_t *o = NULL;
	long v;

	if (strlen(spec) >= sizeof(buf) || !*spec || *spec == ',')
		goto bad;
	strcpy(buf, spec);
	p = strtok_r(buf, ",", &save);
	o = json_pack("{s:s}", "network", p);
	if (!o)
		return -ENOMEM;
	while ((p = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(p, '=');
		if (!eq)
			goto bad;
		*eq++ = '\0';
		if (strcmp(p, "vlan") == 0) {
			if (net_int("vlan", eq, 0, 1000000, &v, err, errlen) < 0)
				goto fail;
			json_object_set_new(o, "vlan", json_integer(v));
		} else if (strcmp(p, "bandwidth") == 0) {
			if (net_int("bandwidth", eq, 0, 100000000, &v, err, errlen) < 0)
				goto fail;
			json_object_set_new(o, "bandwidth_mbit", json_integer(v));
		} else if (strcmp(p, "mac") == 0 || strcmp(p, "firewall") == 0) {
			json_object_set_new(o, p, json_string(eq));
		} else {
			goto bad;
		}
	}
	*out = o;
	return 0;
bad:
	snprintf(err, errlen, "--nic '%s' is not NETWORK[,vlan=N][,mac=M][,firewall=F]"
		 "[,bandwidth=MBIT]", spec);
fail:
	json_decref(o);
	return -EINVAL;
}

int cli_nics_body(const struct cli_args *a, json_t *body, char *err, size_t errlen)
{
	json_t *nics = json_array(), *n;
	bool any = cli_args_has(a, CLI_OPT_NO_NICS);
	int ret;

	if (!nics)
		return -ENOMEM;
	for (size_t i = 0; i < a->n_opts; i++) {
		if (a->opts[i].id != CLI_OPT_NIC)
			continue;
		if (cli_args_has(a, CLI_OPT_NO_NICS)) {
			snprintf(err, errlen, "--nic and --no-nics contradict each other; give one");
			json_decref(nics);
			return -EINVAL;
		}
		if ((ret = cli_nic_parse(a->opts[i].value, &n, err, errlen)) < 0) {
			json_decref(nics);
			return ret;
		}
		json_array_append_new(nics, n);
		any = true;
	}
	if (any)
		json_object_set_new(body, "nics", nics);
	else
		json_decref(nics);
	return 0;
}

static int net_row(struct cli_table *t, const json_t *n)
{
	char mtu[16] = "", dhcp[48] = "";
	if (cli_json_int(n, "mtu", 0))
		snprintf(mtu, sizeof(mtu), "%lld", cli_json_int(n, "mtu", 0));
	if (cli_json_str(n, "dhcp_start"))
		snprintf(dhcp, sizeof(dhcp), "%s-%s", cli_json_str(n, "dhcp_start"),
			 cli_json_str(n, "dhcp_end"));
	const char *row[] = {cli_json_str(n, "name"), cli_json_str(n, "type"),
			     cli_json_str(n, "bridge"), cli_json_str(n, "subnet"),
			     mtu[0] ? mtu : NULL, dhcp[0] ? dhcp : NULL};
	return cli_table_add_row(t, row);
}

static int net_table(const json_t *nets, struct cli_table **out)
{
	static const char *const hdr[] = {"NAME", "TYPE", "BRIDGE", "SUBNET", "MTU", "DHCP"};
	return cli_table_build(nets, ARRAY_SIZE(hdr), hdr, net_row, out);
}

static void net_print(const json_t *n)
{
	char fw[1024] = "", pid[32] = "";
	size_t i, k = 0;
	json_t *f;
	json_t *dns = json_object_get(n, "dnsmasq");

	json_array_foreach(json_object_get(n, "port_forwards"), i, f) {
		k += (size_t)snprintf(fw + k, sizeof(fw) - k, "%s%s %s:%lld -> %s@%lld:%lld",
				      k ? ", " : "", cli_json_str(f, "protocol"),
				      cli_json_str(f, "host_address") ? cli_json_str(f, "host_address") : "*",
				      cli_json_int(f, "host_port", 0), cli_json_str(f, "vm"),
				      cli_json_int(f, "nic", 0), cli_json_int(f, "vm_port", 0));
		if (k >= sizeof(fw))
			break;
	}
	if (dns && cli_json_int(dns, "pid", 0))
		snprintf(pid, sizeof(pid), "%lld (restarts %lld)", cli_json_int(dns, "pid", 0),
			 cli_json_int(dns, "restarts", 0));
	const char *keys[] = {"name", "type", "bridge", "created by vessel", "uplink", "subnet",
			      "gateway", "dhcp start", "dhcp end", "port forwards", "dnsmasq", "created"};
	const char *vals[] = {cli_json_str(n, "name"), cli_json_str(n, "type"),
			      cli_json_str(n, "bridge"),
			      cli_json_bool(n, "bridge_created_by_vessel") ? "yes" : "no",
			      cli_json_str(n, "uplink"), cli_json_str(n, "subnet"),
			      cli_json_str(n, "gateway"), cli_json_str(n, "dhcp_start"),
			      cli_json_str(n, "dhcp_end"), fw[0] ? fw : NULL, pid[0] ? pid : NULL,
			      cli_json_str(n, "created_at")};
	cli_kv_print(stdout, keys, vals, ARRAY_SIZE(keys));
}


int cli_network_list(struct cli *cli, const struct cli_args *a)
{
	return cli_list_print(cli, "networks", net_table,
			      "no networks; create one with `vessel network create NAME --type nat "
			      "--subnet 10.0.0.0/24`");
}

int cli_network_show(struct cli *cli, const struct cli_args *a)
{
	return cli_show_print(cli, "networks", a->pos[0], "network", net_print);
}

int cli_network_create(struct cli *cli, const struct cli_args *a)
{
	json_t *body = NULL;
	int ret = cli_network_create_body(a, &body, cli->err, sizeof(cli->err));

	if (ret == 0)
		ret = cli_send_done(cli, "POST", "/networks", body, "created network %s\n", a->pos[0]);
	json_decref(body);
	return ret;
}

int cli_network_delete(struct cli *cli, const struct cli_args *a)
{
	return cli_delete_item(cli, "networks", a->pos[0], "deleted network %s\n");
}

int cli_network_forwards(struct cli *cli, const struct cli_args *a)
{
	json_t *arr = json_array(), *f, *body = NULL;
	char *path = NULL;
	int ret = 0;

	for (size_t i = 1; i < a->n_pos && ret == 0; i++) {
		ret = cli_forward_parse(a->pos[i], &f, cli->err, sizeof(cli->err));
		if (ret == 0)
			json_array_append_new(arr, f);
	}
	if (ret == 0) {
		body = json_pack("{s:O}", "port_forwards", arr);
		ret = cli_path(&path, "/networks/%s", a->pos[0]);
	}
	if (ret == 0)
		ret = cli_send_done(cli, "PATCH", path, body, "set the port forwards of network %s\n",
				    a->pos[0]);
	json_decref(arr);
	json_decref(body);
	free(path);
	return ret == -EINVAL && !cli->err[0] ? -EINVAL : ret;
}

static int fw_row(struct cli_table *t, const json_t *f)
{
	char n[16];
	snprintf(n, sizeof(n), "%zu", json_array_size(json_object_get(f, "rules")));
	const char *row[] = {cli_json_str(f, "name"), cli_json_str(f, "default_inbound"),
			     cli_json_str(f, "default_outbound"), n};
	return cli_table_add_row(t, row);
}

static int fw_table(const json_t *fws, struct cli_table **out)
{
	static const char *const hdr[] = {"NAME", "INBOUND", "OUTBOUND", ">RULES"};
	return cli_table_build(fws, ARRAY_SIZE(hdr), hdr, fw_row, out);
}

static void fw_print(const json_t *f)
{
	size_t i;
	json_t *r;

	printf("name: %s\ndefault inbound: %s\ndefault outbound: %s\nrules:\n",
	       cli_json_str(f, "name"), cli_json_str(f, "default_inbound"),
	       cli_json_str(f, "default_outbound"));
	json_array_foreach(json_object_get(f, "rules"), i, r)
		printf("  %zu. %s %s %s ports %s %s %s\n", i + 1, cli_json_str(r, "action"),
		       cli_json_str(r, "direction"), cli_json_str(r, "protocol"),
		       cli_json_str(r, "ports") ? cli_json_str(r, "ports") : "any",
		       strcmp(cli_json_str(r, "direction"), "in") == 0 ? "from" : "to",
		       cli_json_str(r, "cidr") ? cli_json_str(r, "cidr") : "anywhere");
}

int cli_firewall_list(struct cli *cli, const struct cli_args *a)
{
	return cli_list_print(cli, "firewalls", fw_table,
			      "no firewalls; create one with `vessel firewall create NAME --rule "
			      "in,tcp,80,any,allow`");
}

int cli_firewall_show(struct cli *cli, const struct cli_args *a)
{
	return cli_show_print(cli, "firewalls", a->pos[0], "firewall", fw_print);
}

static int fw_write(struct cli *cli, const struct cli_args *a, bool put)
{
	json_t *body = NULL;
	char *path = NULL;
	int ret = cli_firewall_body(a, &body, cli->err, sizeof(cli->err));

	if (ret == 0 && put)
		ret = cli_path(&path, "/firewalls/%s", a->pos[0]);
	if (ret == 0)
		ret = cli_send_done(cli, put ? "PUT" : "POST", put ? path : "/firewalls", body,
				    put ? "replaced the rules of firewall %s\n" : "created firewall %s\n",
				    a->pos[0]);
	json_decref(body);
	free(path);
	return ret;
}

int cli_firewall_create(struct cli *cli, const struct cli_args *a)
{
	return fw_write(cli, a, false);
}

int cli_firewall_set(struct cli *cli, const struct cli_args *a)
{
	return fw_write(cli, a, true);
}

int cli_firewall_delete(struct cli *cli, const struct cli_args *a)
{
	return cli_delete_item(cli, "firewalls", a->pos[0], "deleted firewall %s\n");
}
