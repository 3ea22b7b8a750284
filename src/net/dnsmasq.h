/* dnsmasq: the DHCP server of a NAT network. One dnsmasq per network, run
 * by vesseld with its own files under DATA_DIR/networks/NAME/ (dnsmasq.conf,
 * leases, dnsmasq.pid) and nothing shared with a system dnsmasq: it binds
 * only the network's bridge, serves DHCP only (port=0 turns DNS off, so it
 * never fights a host resolver for port 53) and reads no /etc files.
 * vesseld supervises it (daemon/networks.c): a dead dnsmasq is restarted
 * and logged. */
#ifndef VESSEL_NET_DNSMASQ_H
#define VESSEL_NET_DNSMASQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/addr.h"

struct dnsmasq_conf {
	char bridge[16];
	struct net_cidr subnet;
	uint32_t gateway, dhcp_start, dhcp_end;
	unsigned mtu;           /* advertised as DHCP option 26 */
	unsigned lease_secs;    /* 0 = 1 hour */
	char lease_file[4096];
	char pid_file[4096];
};

/* The config file text for c (malloc'd). */
int dnsmasq_conf_render(const struct dnsmasq_conf *c, char **out);

/* Start dnsmasq in the foreground (-k) as a child in its own session, with
 * conf_path. binary NULL = "dnsmasq" from PATH. */
int dnsmasq_spawn(const char *binary, const char *conf_path, const char *log_path, pid_t *pid);
/* Is pid a live dnsmasq started with conf_path? (Reaps it first when it is
 * our exited child.) A pid file that outlived its dnsmasq never makes us
 * signal an unrelated process. */
bool dnsmasq_alive(pid_t pid, const char *conf_path);
/* Stop it (SIGTERM, then SIGKILL after 2 s) if dnsmasq_alive says it is ours. */
void dnsmasq_stop(pid_t pid, const char *conf_path);

struct dnsmasq_lease {
	char mac[NET_MAC_STR];
	char ip[NET_IP_STR];
	int64_t expiry;
};

/* Parse a dnsmasq lease file ("EXPIRY MAC IP HOSTNAME CLIENT-ID" per line,
 * dnsmasq's lease.c). *out is malloc'd; a missing file gives 0 leases. */
int dnsmasq_leases_parse(const char *text, struct dnsmasq_lease **out, size_t *n);
int dnsmasq_leases_read(const char *path, struct dnsmasq_lease **out, size_t *n);

#endif
