/* networks: vesseld's virtual networks and firewall rule sets (the
 * /api/v1/networks and /api/v1/firewalls resources, docs/networking.md),
 * what they create on the host (src/net/: bridges, taps, nftables,
 * dnsmasq), and the NICs of VMs on them.
 *
 * Locking: net->lock guards the network and rule-set lists; it may be taken
 * with a VM's op_lock held but never with d->vms_lock held (VM NICs are
 * copied out under vms_lock first, then net->lock is taken). The lease table
 * has its own leaf lock because vm_to_json reads it under vms_lock. */
#ifndef VESSEL_DAEMON_NETWORKS_H
#define VESSEL_DAEMON_NETWORKS_H

#include <jansson.h>
#include <sys/types.h>

#include "daemon/daemon.h"
#include "net/addr.h"
#include "net/nft.h"

enum net_type { NET_TYPE_BRIDGE = 0, NET_TYPE_ISOLATED, NET_TYPE_NAT };

#define NET_MAX_FORWARDS 32
#define NET_MAX_VLANS 64

struct net_forward_def {
	enum nft_l4 proto;
	char host_address[NET_IP_STR]; /* empty = any address of the host */
	unsigned host_port;
	char vm[MODEL_NAME_MAX];
	unsigned nic; /* index of the VM's NIC on this network */
	unsigned vm_port;
};

struct net_record {
	char name[MODEL_NAME_MAX];
	enum net_type type;
	char bridge[16];
	char uplink[16];  /* bridge type with a created bridge */
	unsigned mtu;     /* 0 = leave the bridge's */
	struct net_cidr subnet; /* nat */
	uint32_t gateway, dhcp_start, dhcp_end;
	struct net_forward_def forwards[NET_MAX_FORWARDS];
	unsigned nr_forwards;
	/* VLAN ids that have their own bridge (created at the first VM start
	 * with a NIC on that VLAN; removed with the network) */
	unsigned vlans[NET_MAX_VLANS];
	unsigned nr_vlans;
	/* what vessel did on the host (stored, so a restart finds it) */
	bool bridge_created;
	pid_t dnsmasq_pid;
	unsigned dnsmasq_restarts;
	char created_at[MODEL_TIME_MAX];
};

/* Load networks and rule sets, recreate what a host reboot lost, adopt or
 * restart dnsmasqs, re-apply nftables and start the supervisor thread. */
int networks_load(struct daemon *d);
/* Stop the supervisor; leaves bridges, dnsmasq and rules for running VMs. */
void networks_stop(struct daemon *d);
void networks_free(struct daemon *d);

/* VM NICs. resolve: check networks and rule sets exist, assign MACs (unique
 * across VMs) and tap names; prev = the VM's current record on PATCH (its
 * NICs keep their MACs), NULL on create. */
int networks_nics_resolve(struct daemon *d, struct vm_record *rec, const struct vm_record *prev,
			  struct daemon_err *e);
/* Create the taps for a VM start and fill spec->nics (fds to close with
 * networks_nics_close after the engine's start returned). */
int networks_nics_open(struct daemon *d, const struct vm_record *rec, struct engine_vm_spec *spec,
		       struct daemon_err *e);
void networks_nics_close(struct engine_vm_spec *spec);
/* The same for NIC i alone (hot-plug); close en->fd after the engine took it. */
int networks_nic_open(struct daemon *d, const struct vm_record *rec, unsigned i,
		      struct engine_nic *en, struct daemon_err *e);
/* Re-apply nftables after VM NICs changed (created, patched, deleted). */
void networks_changed(struct daemon *d);
/* The address dnsmasq leased to mac ("" when none); safe under vms_lock. */
void networks_lease_ip(const char *mac, char out[NET_IP_STR]);

/* handlers */
struct http_req;
void networks_list(struct http_req *req);
void networks_create(struct http_req *req);
void networks_get(struct http_req *req);
void networks_patch(struct http_req *req);
void networks_delete(struct http_req *req);
void firewalls_list(struct http_req *req);
void firewalls_create(struct http_req *req);
void firewalls_get(struct http_req *req);
void firewalls_put(struct http_req *req);
void firewalls_delete(struct http_req *req);

/* JSON <-> records, shared by the API and the store (pure; unit-tested). */
int networks_parse(const json_t *body, bool stored, struct net_record *out, char err[NET_ERR_MAX]);
json_t *networks_to_json(const struct net_record *n, bool stored);
int networks_forwards_parse(const json_t *arr, struct net_record *out, char err[NET_ERR_MAX]);
int firewalls_parse(const json_t *body, struct fw_set *out, char err[NET_ERR_MAX]);
json_t *firewalls_to_json(const struct fw_set *s);
/* A NIC entry of a VM definition (syntax only; networks_nics_resolve
 * checks the names). */
int networks_nic_parse(const json_t *j, unsigned index, struct vm_nic *out,
		       char err[NET_ERR_MAX]);
json_t *networks_nic_to_json(const struct vm_nic *n);

#endif
