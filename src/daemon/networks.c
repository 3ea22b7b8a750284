/* networks: the registry of networks and firewall rule sets, what they
 * create on the host, the dnsmasq supervisor and the HTTP handlers
 * (see networks.h, docs/networking.md).
 *
 * Order of work on create: validate everything (JSON, overlaps, names,
 * uplink/bridge existence) before touching the host; then create the
 * bridge, address, dnsmasq and nftables rules, undoing what was done when a
 * later step fails; store the record last but one, then apply nftables.
 * Delete runs the same steps backwards and touches only what the record
 * says vessel created (an attached bridge is never deleted). */
#include "daemon/networks.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/http.h"
#include "daemon/store.h"
#include "lib/util.h"
#include "net/dnsmasq.h"
#include "net/link.h"

struct net_lease {
	char mac[NET_MAC_STR];
	char ip[NET_IP_STR];
};

struct net_state {
	pthread_mutex_t lock; /* nets, fws */
	struct net_record *nets;
	size_t nr_nets;
	struct fw_set *fws;
	size_t nr_fws;
	pthread_mutex_t apply_lock; /* one nftables apply at a time */
	bool applied;               /* vessel's tables may exist */
	pthread_t supervisor;
	bool supervisor_running;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stop;
};

/* Leases by MAC for every NAT network, process-wide because vm_to_json
 * (which shows each NIC's address) is called without a daemon pointer. */
static pthread_mutex_t net_leases_lock = PTHREAD_MUTEX_INITIALIZER;
static struct net_lease *net_leases;
static size_t net_nr_leases;

void networks_lease_ip(const char *mac, char out[NET_IP_STR])
{
	out[0] = '\0';
	pthread_mutex_lock(&net_leases_lock);
	for (size_t i = 0; i < net_nr_leases; i++)
		if (strcmp(net_leases[i].mac, mac) == 0)
			memcpy(out, net_leases[i].ip, NET_IP_STR);
	pthread_mutex_unlock(&net_leases_lock);
}

static void networks_dir(struct daemon *d, const char *name, const char *file, char *out,
			 size_t cap)
{
	if (file)
		daemon_path(d, out, cap, "networks/%s/%s", name, file);
	else
		daemon_path(d, out, cap, "networks/%s", name);
}

static struct net_record *networks_find_locked(struct net_state *ns, const char *name)
{
	for (size_t i = 0; i < ns->nr_nets; i++)
		if (strcmp(ns->nets[i].name, name) == 0)
			return &ns->nets[i];
	return NULL;
}

static struct fw_set *firewalls_find_locked(struct net_state *ns, const char *name)
{
	for (size_t i = 0; i < ns->nr_fws; i++)
		if (strcmp(ns->fws[i].name, name) == 0)
			return &ns->fws[i];
	return NULL;
}

static int networks_save(struct daemon *d, const struct net_record *n)
{
	json_t *j = networks_to_json(n, true);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int r = s ? store_doc_put(d->store, "networks", n->name, s) : -ENOMEM;

	json_decref(j);
	free(s);
	return r;
}

static int firewalls_save(struct daemon *d, const struct fw_set *f)
{
	json_t *j = firewalls_to_json(f);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int r = s ? store_doc_put(d->store, "firewalls", f->name, s) : -ENOMEM;

	json_decref(j);
	free(s);
	return r;
}

/* ---- VM NICs as the network code needs them ------------------------------ */

struct net_nic_ref {
	char vm[MODEL_NAME_MAX];
	struct vm_nic nic;
};

/* Copy every VM's NICs out under vms_lock (see the locking note). */
static int networks_collect_nics(struct daemon *d, struct net_nic_ref **out, size_t *n)
{
	struct net_nic_ref *v = NULL;
	size_t cnt = 0, cap = 0;

	pthread_mutex_lock(&d->vms_lock);
	for (size_t i = 0; i < d->nr_vms; i++)
		for (unsigned k = 0; k < d->vms[i]->rec.nr_nics; k++) {
			if (cnt == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct net_nic_ref *nv = realloc(v, nc * sizeof(*v));
				if (!nv) {
					pthread_mutex_unlock(&d->vms_lock);
					free(v);
					return -ENOMEM;
				}
				v = nv;
				cap = nc;
			}
			snprintf(v[cnt].vm, sizeof(v[cnt].vm), "%s", d->vms[i]->rec.name);
			v[cnt].nic = d->vms[i]->rec.nics[k];
			cnt++;
		}
	pthread_mutex_unlock(&d->vms_lock);
	*out = v;
	*n = cnt;
	return 0;
}

/* ---- nftables -------------------------------------------------------------- */

/* Build and apply vessel's ruleset from the networks, rule sets and NICs.
 * With nothing to enforce and nothing applied before, nft is not touched
 * (a vesseld without networks needs no nftables at all). */
static int networks_apply(struct daemon *d, char **err)
{
	struct net_state *ns = d->net;
	struct net_nic_ref *nics = NULL;
	size_t nr_nics = 0;
	struct nft_nat *nats = NULL;
	struct nft_forward *fwds = NULL;
	struct nft_port *ports = NULL;
	char *text = NULL;
	int r;

	*err = NULL;
	pthread_mutex_lock(&ns->apply_lock);
	if ((r = networks_collect_nics(d, &nics, &nr_nics)) < 0)
		goto out_unlocked;
	pthread_mutex_lock(&ns->lock);
	nats = calloc(ns->nr_nets + 1, sizeof(*nats));
	fwds = calloc(ns->nr_nets * NET_MAX_FORWARDS + 1, sizeof(*fwds));
	ports = calloc(nr_nics + 1, sizeof(*ports));
	if (!nats || !fwds || !ports) {
		r = -ENOMEM;
		goto out;
	}
	struct nft_spec spec = {.nats = nats, .ports = ports};
	size_t nf = 0;
	for (size_t i = 0; i < ns->nr_nets; i++) {
		const struct net_record *n = &ns->nets[i];
		struct nft_nat *nat = &nats[spec.nr_nats];

		if (n->type != NET_TYPE_NAT)
			continue;
		snprintf(nat->bridge, sizeof(nat->bridge), "%s", n->bridge);
		nat->subnet = n->subnet;
		nat->forwards = &fwds[nf];
		for (unsigned k = 0; k < n->nr_forwards; k++) {
			const struct net_forward_def *fd = &n->forwards[k];
			struct nft_forward *f = &fwds[nf];
			char ip[NET_IP_STR] = "";

			for (size_t m = 0; m < nr_nics; m++)
				if (strcmp(nics[m].vm, fd->vm) == 0 && nics[m].nic.index == fd->nic &&
				    strcmp(nics[m].nic.network, n->name) == 0)
					networks_lease_ip(nics[m].nic.mac, ip);
			f->proto = fd->proto;
			if (fd->host_address[0])
				net_ip_parse(fd->host_address, &f->host_addr);
			f->host_port = fd->host_port;
			f->to_port = fd->vm_port;
			/* Until the VM has a lease there is nowhere to forward to;
			 * the supervisor re-applies when leases change. */
			if (ip[0])
				net_ip_parse(ip, &f->to_addr);
			nf++;
			nat->nr_forwards++;
		}
		spec.nr_nats++;
	}
	for (size_t m = 0; m < nr_nics; m++) {
		const struct fw_set *fw;

		if (!nics[m].nic.firewall[0] ||
		    !(fw = firewalls_find_locked(ns, nics[m].nic.firewall)))
			continue;
		snprintf(ports[spec.nr_ports].tap, sizeof(ports[0].tap), "%s", nics[m].nic.tap);
		ports[spec.nr_ports].fw = fw;
		spec.nr_ports++;
	}
	if (spec.nr_nats == 0 && spec.nr_ports == 0 && !ns->applied) {
		r = 0;
		goto out;
	}
	if ((r = nft_render(&spec, &text)) < 0)
		goto out;
	r = nft_apply(text, err);
	if (r == 0)
		ns->applied = spec.nr_nats || spec.nr_ports;
out:
	pthread_mutex_unlock(&ns->lock);
out_unlocked:
	pthread_mutex_unlock(&ns->apply_lock);
	if (r < 0 && !*err)
		*err = strdup(strerror(-r));
	free(text);
	free(nats);
	free(fwds);
	free(ports);
	free(nics);
	return r;
}

void networks_changed(struct daemon *d)
{
	char *err = NULL;

	if (networks_apply(d, &err) < 0)
		log_error("networks: cannot apply the nftables rules: %s", err ? err : "?");
	free(err);
}

/* ---- dnsmasq ---------------------------------------------------------------- */

static int networks_dnsmasq_start(struct daemon *d, struct net_record *n, char *err, size_t cap)
{
	struct dnsmasq_conf c = {0};
	char conf[PATH_MAX], logp[PATH_MAX], dir[PATH_MAX], *text = NULL;
	int r, fd;
	pid_t pid;

	networks_dir(d, n->name, NULL, dir, sizeof(dir));
	networks_dir(d, n->name, "dnsmasq.conf", conf, sizeof(conf));
	networks_dir(d, n->name, "dnsmasq.log", logp, sizeof(logp));
	networks_dir(d, n->name, "leases", c.lease_file, sizeof(c.lease_file));
	networks_dir(d, n->name, "dnsmasq.pid", c.pid_file, sizeof(c.pid_file));
	snprintf(c.bridge, sizeof(c.bridge), "%s", n->bridge);
	c.subnet = n->subnet;
	c.gateway = n->gateway;
	c.dhcp_start = n->dhcp_start;
	c.dhcp_end = n->dhcp_end;
	c.mtu = n->mtu;
	if ((r = dnsmasq_conf_render(&c, &text)) < 0)
		goto out;
	fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		snprintf(err, cap, "cannot write %.300s: %s", conf, strerror(-r));
		goto out;
	}
	close(fd);
	if ((r = dnsmasq_spawn(NULL, conf, logp, &pid)) < 0) {
		snprintf(err, cap, "cannot run dnsmasq: %s; install the dnsmasq-base package",
			 strerror(-r));
		goto out;
	}
	/* dnsmasq exits at once on a bad config or a busy port; give it a
	 * moment so that failure is this request's, with its log as reason. */
	for (int i = 0; i < 20; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
		if (!dnsmasq_alive(pid, conf)) {
			r = -EIO;
			snprintf(err, cap, "dnsmasq for network '%s' exited at start; see %.300s", n->name,
				 logp);
			goto out;
		}
	}
	n->dnsmasq_pid = pid;
out:
	free(text);
	return r;
}

static void networks_dnsmasq_stop(struct daemon *d, struct net_record *n)
{
	char conf[PATH_MAX];

	networks_dir(d, n->name, "dnsmasq.conf", conf, sizeof(conf));
	dnsmasq_stop(n->dnsmasq_pid, conf);
	n->dnsmasq_pid = 0;
}

/* Read every NAT network's leases; true when the table changed. */
static bool networks_leases_refresh(struct daemon *d)
{
	struct net_state *ns = d->net;
	struct net_lease *all = NULL;
	size_t cnt = 0;
	bool changed;

	pthread_mutex_lock(&ns->lock);
	for (size_t i = 0; i < ns->nr_nets; i++) {
		struct dnsmasq_lease *l = NULL;
		size_t n = 0;
		char path[PATH_MAX];

		if (ns->nets[i].type != NET_TYPE_NAT)
			continue;
		networks_dir(d, ns->nets[i].name, "leases", path, sizeof(path));
		if (dnsmasq_leases_read(path, &l, &n) < 0 || n == 0) {
			free(l);
			continue;
		}
		struct net_lease *na = realloc(all, (cnt + n) * sizeof(*all));
		if (na) {
			all = na;
			for (size_t k = 0; k < n; k++, cnt++) {
				memcpy(all[cnt].mac, l[k].mac, NET_MAC_STR);
				memcpy(all[cnt].ip, l[k].ip, NET_IP_STR);
			}
		}
		free(l);
	}
	pthread_mutex_unlock(&ns->lock);
	pthread_mutex_lock(&net_leases_lock);
	changed = cnt != net_nr_leases ||
		  (cnt && memcmp(all, net_leases, cnt * sizeof(*all)) != 0);
	if (changed) {
		free(net_leases);
		net_leases = all;
		net_nr_leases = cnt;
		all = NULL;
	}
	pthread_mutex_unlock(&net_leases_lock);
	free(all);
	return changed;
}

/* Every second: restart a dead dnsmasq (logged), pick up new leases (GET
 * of a VM shows them; port forwards follow them). */
static void *networks_supervise(void *arg)
{
	struct daemon *d = arg;
	struct net_state *ns = d->net;

	for (;;) {
		struct timespec ts;

		pthread_mutex_lock(&ns->stop_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		while (!ns->stop &&
		       pthread_cond_timedwait(&ns->stop_cond, &ns->stop_lock, &ts) != ETIMEDOUT)
			;
		bool stop = ns->stop;
		pthread_mutex_unlock(&ns->stop_lock);
		if (stop)
			break;
		pthread_mutex_lock(&ns->lock);
		for (size_t i = 0; i < ns->nr_nets; i++) {
			struct net_record *n = &ns->nets[i];
			char conf[PATH_MAX], err[512];
			pid_t old = n->dnsmasq_pid;

			if (n->type != NET_TYPE_NAT)
				continue;
			networks_dir(d, n->name, "dnsmasq.conf", conf, sizeof(conf));
			if (dnsmasq_alive(n->dnsmasq_pid, conf))
				continue;
			if (networks_dnsmasq_start(d, n, err, sizeof(err)) < 0) {
				log_error("network '%s': dnsmasq (pid %d) is gone and cannot be "
					  "restarted: %s", n->name, (int)old, err);
				continue;
			}
			n->dnsmasq_restarts++;
			log_warn("network '%s': dnsmasq (pid %d) died; restarted it as pid %d",
				 n->name, (int)old, (int)n->dnsmasq_pid);
			networks_save(d, n);
		}
		pthread_mutex_unlock(&ns->lock);
		if (networks_leases_refresh(d)) {
			pthread_mutex_lock(&d->vms_lock);
			vm_list_cache_invalidate_locked(d);
			pthread_mutex_unlock(&d->vms_lock);
			networks_changed(d);
		}
	}
	return NULL;
}

/* ---- host side of a network --------------------------------------------------- */

/* Create what n needs on the host; on failure undo it and fill err. */
static int networks_host_up(struct daemon *d, struct net_record *n, bool restarting, char *err,
			    size_t cap)
{
	char dir[PATH_MAX];
	bool made_bridge = false;
	int r = 0;

	if (n->bridge_created && !link_index(n->bridge)) {
		/* created earlier (now, or before a host reboot) */
		if ((r = link_bridge_create(n->bridge, n->mtu)) < 0) {
			snprintf(err, cap, "cannot create bridge '%s': %s", n->bridge, strerror(-r));
			return r;
		}
		made_bridge = true;
		if (n->uplink[0] && (r = link_set_master(n->uplink, n->bridge)) < 0) {
			snprintf(err, cap, "cannot attach uplink '%s' to bridge '%s': %s", n->uplink,
				 n->bridge, strerror(-r));
			goto fail;
		}
		if (n->mtu)
			link_set_mtu(n->bridge, n->mtu);
	}
	/* An attached bridge keeps its own MTU: vessel changes nothing it did
	 * not create. */
	if (n->type == NET_TYPE_NAT) {
		if ((r = link_addr_add(n->bridge, n->gateway, n->subnet.prefix)) < 0) {
			snprintf(err, cap, "cannot give bridge '%s' the gateway address: %s", n->bridge,
				 strerror(-r));
			goto fail;
		}
		if ((r = link_ip_forward_enable()) < 0) {
			snprintf(err, cap, "cannot enable IPv4 forwarding: %s", strerror(-r));
			goto fail;
		}
		networks_dir(d, n->name, NULL, dir, sizeof(dir));
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			snprintf(err, cap, "cannot create %.300s: %s", dir, strerror(errno));
			goto fail;
		}
		char conf[PATH_MAX];
		networks_dir(d, n->name, "dnsmasq.conf", conf, sizeof(conf));
		if (!restarting || !dnsmasq_alive(n->dnsmasq_pid, conf)) {
			if ((r = networks_dnsmasq_start(d, n, err, cap)) < 0)
				goto fail;
		}
	}
	return 0;
fail:
	if (made_bridge)
		link_delete(n->bridge);
	return r;
}

static void networks_rmdir(struct daemon *d, const char *name)
{
	const char *files[] = {"dnsmasq.conf", "dnsmasq.log", "leases", "dnsmasq.pid"};
	char p[PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		networks_dir(d, name, files[i], p, sizeof(p));
		unlink(p);
	}
	networks_dir(d, name, NULL, p, sizeof(p));
	rmdir(p);
}

static void networks_host_down(struct daemon *d, struct net_record *n)
{
	char name[16];

	if (n->type == NET_TYPE_NAT)
		networks_dnsmasq_stop(d, n);
	for (unsigned i = 0; i < n->nr_vlans; i++) {
		if (n->uplink[0]) {
			net_vlan_link_name(n->name, n->vlans[i], name);
			link_delete(name);
		}
		net_vlan_bridge_name(n->name, n->vlans[i], name);
		link_delete(name);
	}
	n->nr_vlans = 0;
	if (n->bridge_created) {
		if (n->uplink[0])
			link_set_master(n->uplink, NULL);
		link_delete(n->bridge);
	}
	networks_rmdir(d, n->name);
}

/* ---- load / stop ------------------------------------------------------------------ */

int networks_load(struct daemon *d)
{
	struct net_state *ns = calloc(1, sizeof(*ns));
	char **bodies = NULL;
	size_t n = 0;
	int r;

	if (!ns)
		return -ENOMEM;
	pthread_mutex_init(&ns->lock, NULL);
	pthread_mutex_init(&ns->apply_lock, NULL);
	pthread_mutex_init(&ns->stop_lock, NULL);
	pthread_cond_init(&ns->stop_cond, NULL);
	d->net = ns;
	char dir[PATH_MAX];
	daemon_path(d, dir, sizeof(dir), "networks");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((r = store_doc_list(d->store, "firewalls", &bodies, &n)) < 0)
		return r;
	ns->fws = calloc(n + 1, sizeof(*ns->fws));
	for (size_t i = 0; i < n; i++) {
		json_t *j = json_loads(bodies[i], 0, NULL);
		char err[NET_ERR_MAX];
		if (ns->fws && j && firewalls_parse(j, &ns->fws[ns->nr_fws], err) == 0)
			ns->nr_fws++;
		else
			log_error("firewall in the database cannot be read (%s); ignoring it",
				  j ? err : "bad JSON");
		json_decref(j);
		free(bodies[i]);
	}
	free(bodies);
	bodies = NULL;
	if ((r = store_doc_list(d->store, "networks", &bodies, &n)) < 0)
		return r;
	ns->nets = calloc(n + 1, sizeof(*ns->nets));
	for (size_t i = 0; i < n; i++) {
		json_t *j = json_loads(bodies[i], 0, NULL);
		char err[NET_ERR_MAX];
		struct net_record *rec = ns->nets ? &ns->nets[ns->nr_nets] : NULL;
		if (rec && j && networks_parse(j, true, rec, err) == 0) {
			char herr[512];
			pid_t before = rec->dnsmasq_pid;
			if (networks_host_up(d, rec, true, herr, sizeof(herr)) < 0)
				log_error("network '%s': %s", rec->name, herr);
			else if (rec->dnsmasq_pid != before)
				log_info("network '%s': started dnsmasq (pid %d)", rec->name,
					 (int)rec->dnsmasq_pid);
			networks_save(d, rec);
			ns->nr_nets++;
		} else {
			log_error("network in the database cannot be read (%s); ignoring it",
				  j ? err : "bad JSON");
		}
		json_decref(j);
		free(bodies[i]);
	}
	free(bodies);
	/* Rules are re-applied at every start: a host reboot flushed them. */
	ns->applied = ns->nr_nets > 0;
	networks_leases_refresh(d);
	networks_changed(d);
	if (pthread_create(&ns->supervisor, NULL, networks_supervise, d) == 0)
		ns->supervisor_running = true;
	return 0;
}

void networks_stop(struct daemon *d)
{
	struct net_state *ns = d->net;

	if (!ns || !ns->supervisor_running)
		return;
	pthread_mutex_lock(&ns->stop_lock);
	ns->stop = true;
	pthread_cond_broadcast(&ns->stop_cond);
	pthread_mutex_unlock(&ns->stop_lock);
	pthread_join(ns->supervisor, NULL);
	ns->supervisor_running = false;
}

void networks_free(struct daemon *d)
{
	struct net_state *ns = d->net;

	if (!ns)
		return;
	networks_stop(d);
	free(ns->nets);
	free(ns->fws);
	pthread_mutex_destroy(&ns->lock);
	pthread_mutex_destroy(&ns->apply_lock);
	pthread_mutex_destroy(&ns->stop_lock);
	pthread_cond_destroy(&ns->stop_cond);
	free(ns);
	d->net = NULL;
	pthread_mutex_lock(&net_leases_lock);
	free(net_leases);
	net_leases = NULL;
	net_nr_leases = 0;
	pthread_mutex_unlock(&net_leases_lock);
}

/* ---- VM NICs ------------------------------------------------------------------------ */

int networks_nics_resolve(struct daemon *d, struct vm_record *rec, const struct vm_record *prev,
			  struct daemon_err *e)
{
	struct net_state *ns = d->net;
	struct net_nic_ref *others = NULL;
	size_t nr_others = 0;
	int r = 0;

	if (rec->nr_nics == 0)
		return 0;
	if ((r = networks_collect_nics(d, &others, &nr_others)) < 0)
		return daemon_err_set(e, 500, "internal", "vesseld ran out of memory; retry");
	pthread_mutex_lock(&ns->lock);
	for (unsigned i = 0; i < rec->nr_nics && r == 0; i++) {
		struct vm_nic *nic = &rec->nics[i];
		struct net_record *n = networks_find_locked(ns, nic->network);

		if (!n) {
			r = daemon_err_set(e, 400, "invalid_argument",
					   "nics[%u]: there is no network '%s'; create it first with "
					   "POST /api/v1/networks", i, nic->network);
			break;
		}
		if (nic->firewall[0] && !firewalls_find_locked(ns, nic->firewall)) {
			r = daemon_err_set(e, 400, "invalid_argument",
					   "nics[%u]: there is no firewall '%s'; create it first with "
					   "POST /api/v1/firewalls", i, nic->firewall);
			break;
		}
		if (nic->vlan && (n->type == NET_TYPE_NAT || !n->bridge_created)) {
			r = daemon_err_set(e, 400, "invalid_argument",
					   "nics[%u]: VLAN tags are for isolated networks and bridge "
					   "networks vessel created over an uplink; network '%s' is %s",
					   i, n->name, n->type == NET_TYPE_NAT ? "a nat network (one "
					   "subnet, one segment)" : "attached to a bridge vessel did not "
					   "create");
			break;
		}
		net_tap_name(rec->uuid, i, nic->tap);
		if (!nic->mac[0] && prev && i < prev->nr_nics)
			memcpy(nic->mac, prev->nics[i].mac, sizeof(nic->mac));
		bool given = nic->mac[0] != '\0';
		for (unsigned attempt = 0; attempt < 64; attempt++) {
			if (!given)
				net_mac_derive(rec->uuid, i, attempt, nic->mac);
			bool clash = false;
			for (size_t k = 0; k < nr_others && !clash; k++)
				clash = strcmp(others[k].vm, rec->name) != 0 &&
					strcmp(others[k].nic.mac, nic->mac) == 0;
			for (unsigned k = 0; k < i && !clash; k++)
				clash = strcmp(rec->nics[k].mac, nic->mac) == 0;
			if (!clash)
				break;
			if (given) {
				r = daemon_err_set(e, 409, "conflict",
						   "nics[%u]: MAC %s is already used by another NIC; "
						   "leave mac out to get a unique one", i, nic->mac);
				break;
			}
		}
	}
	pthread_mutex_unlock(&ns->lock);
	free(others);
	return r;
}

/* tc(8) for the bandwidth limit: QEMU has no rate limit for -netdev tap
 * (its netdev filters buffer or redirect, none throttle), and a token
 * bucket via rtnetlink needs the kernel's rate tables computed by hand,
 * which is what tc does. The tap's egress, i.e. traffic towards the VM,
 * gets a tbf qdisc. Traffic from the VM is not limited: shaping a tap's
 * ingress needs act_police or an ifb device, which not every kernel has
 * (the development host's has neither). */
static int networks_tc(const char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) {
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		execvp("tc", (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static int networks_rate_limit(const char *tap, unsigned mbit)
{
	char rate[32];
	int r;

	snprintf(rate, sizeof(rate), "%umbit", mbit);
	const char *const tbf[] = {"tc", "qdisc", "replace", "dev", tap, "root", "tbf", "rate", rate,
				   "burst", "256kb", "latency", "50ms", NULL};
	if ((r = networks_tc(tbf)) < 0)
		return r;
	return 0;
}

/* The bridge of VLAN vid on n, created (with its 802.1Q uplink link) when
 * missing and recorded in the network so delete removes it. ns->lock held. */
static int networks_vlan_bridge(struct daemon *d, struct net_record *n, unsigned vid,
				char br[16], struct daemon_err *e)
{
	char vl[16];
	bool known = false;
	int r;

	net_vlan_bridge_name(n->name, vid, br);
	for (unsigned i = 0; i < n->nr_vlans; i++)
		known = known || n->vlans[i] == vid;
	if (link_index(br))
		return 0;
	if (!known && n->nr_vlans >= NET_MAX_VLANS)
		return daemon_err_set(e, 409, "conflict", "network '%s' already has %d VLANs, the "
				      "most vessel supports", n->name, NET_MAX_VLANS);
	if ((r = link_bridge_create(br, n->mtu)) < 0)
		return daemon_err_set(e, 500, "internal", "cannot create bridge '%s' for VLAN %u of "
				      "network '%s': %s", br, vid, n->name, strerror(-r));
	if (n->uplink[0]) {
		net_vlan_link_name(n->name, vid, vl);
		if (!link_index(vl) && (r = link_vlan_create(vl, n->uplink, vid, n->mtu)) < 0) {
			link_delete(br);
			return daemon_err_set(e, 500, "internal", "cannot create 802.1Q link %s.%u for "
					      "VLAN %u: %s%s", n->uplink, vid, vid, strerror(-r),
					      r == -EOPNOTSUPP ? "; this kernel has no 802.1Q "
					      "support (CONFIG_VLAN_8021Q)" : "");
		}
		if ((r = link_set_master(vl, br)) < 0) {
			link_delete(vl);
			link_delete(br);
			return daemon_err_set(e, 500, "internal", "cannot attach %s to bridge %s: %s",
					      vl, br, strerror(-r));
		}
		if (n->mtu)
			link_set_mtu(br, n->mtu); /* after the port joined, see networks_create */
	}
	if (!known) {
		n->vlans[n->nr_vlans++] = vid;
		networks_save(d, n);
	}
	return 0;
}

/* The tap of NIC i of rec, created on its network's bridge (or the VLAN's),
 * with its bandwidth limit; en gets fd, MAC and MTU. ns->lock held. */
static int networks_nic_open_locked(struct daemon *d, const struct vm_record *rec, unsigned i,
				    struct engine_nic *en, struct daemon_err *e)
{
	const struct vm_nic *nic = &rec->nics[i];
	struct net_record *n = networks_find_locked(d->net, nic->network);
	char br[16];
	int r;

	en->fd = -1;
	if (!n)
		return daemon_err_set(e, 409, "conflict", "nics[%u]: network '%s' no longer exists; "
				      "change the VM's NICs", i, nic->network);
	snprintf(br, sizeof(br), "%s", n->bridge);
	if (nic->vlan && (r = networks_vlan_bridge(d, n, nic->vlan, br, e)) < 0)
		return r;
	if ((r = link_tap_create(nic->tap, br, n->mtu, &en->fd)) < 0)
		return daemon_err_set(e, r == -EBUSY ? 409 : 500, r == -EBUSY ? "conflict" : "internal",
				      "nics[%u]: cannot create tap '%s' on bridge '%s': %s%s", i,
				      nic->tap, br, strerror(-r),
				      r == -EBUSY ? "; the VM's previous QEMU is still exiting, retry" :
						    "");
	memcpy(en->mac, nic->mac, sizeof(en->mac));
	en->mtu = n->mtu;
	if (nic->rate_mbit && (r = networks_rate_limit(nic->tap, nic->rate_mbit)) < 0) {
		close(en->fd);
		en->fd = -1;
		return daemon_err_set(e, 500, "internal", "nics[%u]: cannot set the %u Mbit/s limit "
				      "on tap '%s' with tc; is iproute2 installed?", i, nic->rate_mbit,
				      nic->tap);
	}
	return 0;
}

int networks_nic_open(struct daemon *d, const struct vm_record *rec, unsigned i,
		      struct engine_nic *en, struct daemon_err *e)
{
	pthread_mutex_lock(&d->net->lock);
	int r = networks_nic_open_locked(d, rec, i, en, e);
	pthread_mutex_unlock(&d->net->lock);
	return r;
}

int networks_nics_open(struct daemon *d, const struct vm_record *rec, struct engine_vm_spec *spec,
		       struct daemon_err *e)
{
	struct net_state *ns = d->net;
	int r = 0;

	spec->nr_nics = 0;
	if (rec->nr_nics == 0)
		return 0;
	pthread_mutex_lock(&ns->lock);
	for (unsigned i = 0; i < rec->nr_nics; i++) {
		if ((r = networks_nic_open_locked(d, rec, i, &spec->nics[i], e)) < 0)
			break;
		spec->nr_nics++;
	}
	pthread_mutex_unlock(&ns->lock);
	if (r < 0)
		networks_nics_close(spec);
	return r;
}

void networks_nics_close(struct engine_vm_spec *spec)
{
	for (unsigned i = 0; i < spec->nr_nics; i++)
		if (spec->nics[i].fd >= 0)
			close(spec->nics[i].fd);
	spec->nr_nics = 0;
}

/* ---- HTTP: networks ------------------------------------------------------------------ */

static bool networks_in_use(struct daemon *d, const char *name, json_t *users)
{
	struct net_nic_ref *nics = NULL;
	size_t n = 0;
	bool used = false;

	if (networks_collect_nics(d, &nics, &n) < 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (strcmp(nics[i].nic.network, name) == 0) {
			used = true;
			json_array_append_new(users, json_string(nics[i].vm));
		}
	free(nics);
	return used;
}

/* The reply of GET /api/v1/{kind}s/{name}: the document j (a network or a
 * firewall, looked up under ns->lock) or 404 when there was none. */
static void networks_reply_doc(struct http_req *req, const char *kind, json_t *j)
{
	if (!j) {
		http_reply_errorf(req, 404, "not_found", "there is no %s named '%s'; list them "
				  "with GET /api/v1/%ss", kind, req->params[0], kind);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o}", kind, j));
}

/* 409 for a delete refused while VMs still use the object: fmt takes the
 * object's name, then the JSON list of the VMs' names. */
static void networks_reply_in_use(struct http_req *req, json_t *users, const char *fmt)
{
	char *list = json_dumps(users, JSON_COMPACT);
	http_reply_errorf(req, 409, "conflict", fmt, req->params[0], list ? list : "");
	free(list);
}

void networks_list(struct http_req *req)
{
	struct net_state *ns = req->d->net;
	json_t *arr = json_array();

	pthread_mutex_lock(&ns->lock);
	for (size_t i = 0; i < ns->nr_nets; i++)
		json_array_append_new(arr, networks_to_json(&ns->nets[i], false));
	pthread_mutex_unlock(&ns->lock);
	http_reply_json(req, 200, json_pack("{s:o}", "networks", arr));
}

void networks_get(struct http_req *req)
{
	struct net_state *ns = req->d->net;
	json_t *j = NULL;

	pthread_mutex_lock(&ns->lock);
	struct net_record *n = networks_find_locked(ns, req->params[0]);
	if (n)
		j = networks_to_json(n, false);
	pthread_mutex_unlock(&ns->lock);
	networks_reply_doc(req, "network", j);
}

void networks_create(struct http_req *req)
{
	struct daemon *d = req->d;
	struct net_state *ns = d->net;
	struct net_record *rec = calloc(1, sizeof(*rec));
	json_t *body = NULL;
	char err[512];
	int r;

	if (!rec) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	if (http_body_json(req, false, &body) < 0)
		goto out;
	if (networks_parse(body, false, rec, err) < 0) {
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
		goto out;
	}
	if (!rec->bridge[0] || rec->uplink[0] || rec->type != NET_TYPE_BRIDGE) {
		/* vessel creates the bridge: its name is given, or "vb-" + up to
		 * 12 characters of the network name (IFNAMSIZ). */
		if (!rec->bridge[0])
			snprintf(rec->bridge, sizeof(rec->bridge), "vb-%.12s", rec->name);
		rec->bridge_created = true;
	}
	pthread_mutex_lock(&ns->lock);
	if (networks_find_locked(ns, rec->name)) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 409, "conflict", "a network named '%s' already exists; pick "
				  "another name or delete it first", rec->name);
		goto out;
	}
	for (size_t i = 0; i < ns->nr_nets; i++) {
		const struct net_record *o = &ns->nets[i];
		char a[NET_CIDR_STR], b[NET_CIDR_STR];
		if (rec->type == NET_TYPE_NAT && o->type == NET_TYPE_NAT &&
		    net_cidr_overlap(&rec->subnet, &o->subnet)) {
			net_cidr_format(&rec->subnet, a);
			net_cidr_format(&o->subnet, b);
			pthread_mutex_unlock(&ns->lock);
			http_reply_errorf(req, 400, "invalid_argument", "subnet %s overlaps subnet %s "
					  "of network '%s'; choose a subnet that does not", a, b,
					  o->name);
			goto out;
		}
		if (strcmp(o->bridge, rec->bridge) == 0 && (rec->bridge_created || o->bridge_created)) {
			pthread_mutex_unlock(&ns->lock);
			http_reply_errorf(req, 409, "conflict", "bridge '%s' already belongs to network "
					  "'%s'; give this network another 'bridge' name", rec->bridge,
					  o->name);
			goto out;
		}
	}
	/* Host checks before any change: an attached bridge must exist and
	 * be a bridge; a bridge vessel creates must not exist; an uplink must
	 * exist. */
	if (rec->bridge_created && link_index(rec->bridge)) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 409, "conflict", "interface '%s' already exists on the host; "
				  "vessel creates the bridge of a %s network itself, so give it "
				  "another 'bridge' name", rec->bridge,
				  rec->type == NET_TYPE_BRIDGE ? "bridge-with-uplink" :
				  rec->type == NET_TYPE_NAT ? "nat" : "isolated");
		goto out;
	}
	if (!rec->bridge_created && !link_is_bridge(rec->bridge)) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 400, "invalid_argument", "bridge '%s' %s on the host; name an "
				  "existing bridge, or give 'uplink' to have vessel create one",
				  rec->bridge, link_index(rec->bridge) ? "is not a bridge" :
				  "does not exist");
		goto out;
	}
	if (rec->uplink[0] && !link_index(rec->uplink)) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 400, "invalid_argument", "uplink '%s' does not exist on the "
				  "host; name an existing interface (see `ip link`)", rec->uplink);
		goto out;
	}
	if (rec->nr_forwards) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 400, "invalid_argument", "port_forwards name VMs, which need "
				  "the network first; create the network, then set them with PATCH "
				  "/api/v1/networks/%s", rec->name);
		goto out;
	}
	struct net_record *nn = realloc(ns->nets, (ns->nr_nets + 1) * sizeof(*ns->nets));
	if (!nn) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		goto out;
	}
	ns->nets = nn;
	model_now(rec->created_at);
	if (rec->bridge_created && (r = link_bridge_create(rec->bridge, rec->mtu)) < 0) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 500, "internal", "cannot create bridge '%s': %s; vesseld needs "
				  "CAP_NET_ADMIN", rec->bridge, strerror(-r));
		goto out;
	}
	/* bridge_created with the bridge now present: host_up adds the rest. */
	if (rec->uplink[0] && (r = link_set_master(rec->uplink, rec->bridge)) < 0) {
		link_delete(rec->bridge);
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 400, "invalid_argument", "cannot attach uplink '%s' to bridge "
				  "'%s': %s", rec->uplink, rec->bridge, strerror(-r));
		goto out;
	}
	/* Set after the uplink joined: a bridge follows its smallest port's
	 * MTU unless the MTU was set on the bridge itself afterwards. */
	if (rec->bridge_created && rec->mtu && (r = link_set_mtu(rec->bridge, rec->mtu)) < 0) {
		if (rec->uplink[0])
			link_set_master(rec->uplink, NULL);
		link_delete(rec->bridge);
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 400, "invalid_argument", "cannot set MTU %u on bridge '%s': %s",
				  rec->mtu, rec->bridge, strerror(-r));
		goto out;
	}
	if ((r = networks_host_up(d, rec, false, err, sizeof(err))) < 0 ||
	    (r = networks_save(d, rec)) < 0) {
		networks_host_down(d, rec);
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 500, "internal", "network '%s' was not created: %s", rec->name,
				  r == -EIO ? "cannot save it in the database" : err);
		goto out;
	}
	ns->nets[ns->nr_nets++] = *rec;
	pthread_mutex_unlock(&ns->lock);
	if (rec->type == NET_TYPE_NAT) {
		char *nerr = NULL;
		if (networks_apply(d, &nerr) < 0) {
			/* undo: the network is useless without its NAT rules */
			pthread_mutex_lock(&ns->lock);
			struct net_record *cur = networks_find_locked(ns, rec->name);
			if (cur) {
				networks_host_down(d, cur);
				store_doc_delete(d->store, "networks", cur->name);
				*cur = ns->nets[--ns->nr_nets];
			}
			pthread_mutex_unlock(&ns->lock);
			networks_changed(d);
			http_reply_errorf(req, 500, "internal", "network '%s' was not created: nftables "
					  "refused its rules: %s", rec->name, nerr ? nerr : "?");
			free(nerr);
			goto out;
		}
		free(nerr);
	}
	log_info("network '%s' (%s on bridge %s) created", rec->name,
		 rec->type == NET_TYPE_NAT ? "nat" : rec->type == NET_TYPE_ISOLATED ? "isolated" :
		 "bridge", rec->bridge);
	http_reply_json(req, 201, json_pack("{s:o}", "network", networks_to_json(rec, false)));
out:
	json_decref(body);
	free(rec);
}

static const char *const net_patch_fields[] = {"port_forwards", NULL};

void networks_patch(struct http_req *req)
{
	struct daemon *d = req->d;
	struct net_state *ns = d->net;
	json_t *body = NULL, *fw;
	struct net_record *copy = malloc(sizeof(*copy));
	char err[NET_ERR_MAX];
	const char *key;
	json_t *v;

	if (!copy) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	if (http_body_json(req, false, &body) < 0)
		goto out;
	json_object_foreach(body, key, v) {
		bool ok = false;
		for (size_t i = 0; net_patch_fields[i]; i++)
			ok = ok || strcmp(key, net_patch_fields[i]) == 0;
		if (!ok) {
			http_reply_errorf(req, 400, "invalid_argument", "field '%s' cannot be changed; "
					  "PATCH takes port_forwards only (delete and re-create the "
					  "network to change the rest)", key);
			goto out;
		}
	}
	pthread_mutex_lock(&ns->lock);
	struct net_record *n = networks_find_locked(ns, req->params[0]);
	if (!n) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 404, "not_found", "there is no network named '%s'",
				  req->params[0]);
		goto out;
	}
	*copy = *n;
	fw = json_object_get(body, "port_forwards");
	if (fw && networks_forwards_parse(fw, copy, err) < 0) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
		goto out;
	}
	if (networks_save(d, copy) < 0) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 500, "internal", "cannot save network '%s' in the database",
				  copy->name);
		goto out;
	}
	*n = *copy;
	pthread_mutex_unlock(&ns->lock);
	networks_changed(d);
	http_reply_json(req, 200, json_pack("{s:o}", "network", networks_to_json(copy, false)));
out:
	json_decref(body);
	free(copy);
}

void networks_delete(struct http_req *req)
{
	struct daemon *d = req->d;
	struct net_state *ns = d->net;
	json_t *users = json_array();

	/* VM creation checks networks under ns->lock after the NIC copy, so
	 * the in-use check is made again under the lock below. */
	pthread_mutex_lock(&ns->lock);
	struct net_record *n = networks_find_locked(ns, req->params[0]);
	if (!n) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 404, "not_found", "there is no network named '%s'",
				  req->params[0]);
		json_decref(users);
		return;
	}
	pthread_mutex_unlock(&ns->lock);
	if (networks_in_use(d, req->params[0], users)) {
		networks_reply_in_use(req, users, "network '%s' is used by VMs %s; remove their "
				      "NICs on it or delete them first");
		json_decref(users);
		return;
	}
	json_decref(users);
	pthread_mutex_lock(&ns->lock);
	n = networks_find_locked(ns, req->params[0]);
	if (n) {
		networks_host_down(d, n);
		store_doc_delete(d->store, "networks", n->name);
		log_info("network '%s' deleted", n->name);
		*n = ns->nets[--ns->nr_nets];
	}
	pthread_mutex_unlock(&ns->lock);
	networks_leases_refresh(d);
	networks_changed(d);
	http_reply_json(req, 200, json_pack("{s:s}", "deleted", req->params[0]));
}

/* ---- HTTP: firewalls ---------------------------------------------------------------- */

void firewalls_list(struct http_req *req)
{
	struct net_state *ns = req->d->net;
	json_t *arr = json_array();

	pthread_mutex_lock(&ns->lock);
	for (size_t i = 0; i < ns->nr_fws; i++)
		json_array_append_new(arr, firewalls_to_json(&ns->fws[i]));
	pthread_mutex_unlock(&ns->lock);
	http_reply_json(req, 200, json_pack("{s:o}", "firewalls", arr));
}

void firewalls_get(struct http_req *req)
{
	struct net_state *ns = req->d->net;
	json_t *j = NULL;

	pthread_mutex_lock(&ns->lock);
	struct fw_set *f = firewalls_find_locked(ns, req->params[0]);
	if (f)
		j = firewalls_to_json(f);
	pthread_mutex_unlock(&ns->lock);
	networks_reply_doc(req, "firewall", j);
}

/* create (put=false) or replace (put=true) a rule set, then apply. */
static void firewalls_write(struct http_req *req, bool put)
{
	struct daemon *d = req->d;
	struct net_state *ns = d->net;
	struct fw_set *f = malloc(sizeof(*f)), old;
	json_t *body = NULL;
	char err[NET_ERR_MAX], *nerr = NULL;

	if (!f) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	if (http_body_json(req, false, &body) < 0)
		goto out;
	if (put && !json_object_get(body, "name"))
		json_object_set_new(body, "name", json_string(req->params[0]));
	if (firewalls_parse(body, f, err) < 0) {
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
		goto out;
	}
	if (put && strcmp(f->name, req->params[0]) != 0) {
		http_reply_errorf(req, 400, "invalid_argument", "the body names firewall '%s' but "
				  "the path '%s'; a firewall cannot be renamed", f->name,
				  req->params[0]);
		goto out;
	}
	pthread_mutex_lock(&ns->lock);
	struct fw_set *cur = firewalls_find_locked(ns, f->name);
	if (!put && cur) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 409, "conflict", "a firewall named '%s' already exists; "
				  "replace its rules with PUT /api/v1/firewalls/%s", f->name, f->name);
		goto out;
	}
	if (put && !cur) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 404, "not_found", "there is no firewall named '%s'; create it "
				  "with POST /api/v1/firewalls", f->name);
		goto out;
	}
	if (!put) {
		struct fw_set *nf = realloc(ns->fws, (ns->nr_fws + 1) * sizeof(*ns->fws));
		if (!nf) {
			pthread_mutex_unlock(&ns->lock);
			http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
			goto out;
		}
		ns->fws = nf;
		cur = &ns->fws[ns->nr_fws++];
		memset(&old, 0, sizeof(old));
	} else {
		old = *cur;
	}
	*cur = *f;
	pthread_mutex_unlock(&ns->lock);
	if (networks_apply(d, &nerr) < 0 || firewalls_save(d, f) < 0) {
		/* put the old rules back: a refused request changes nothing */
		pthread_mutex_lock(&ns->lock);
		cur = firewalls_find_locked(ns, f->name);
		if (cur && put)
			*cur = old;
		else if (cur)
			*cur = ns->fws[--ns->nr_fws];
		pthread_mutex_unlock(&ns->lock);
		networks_changed(d);
		http_reply_errorf(req, 500, "internal", "firewall '%s' was not %s: %s", f->name,
				  put ? "changed" : "created", nerr ? nerr : "cannot save it");
		goto out;
	}
	log_info("firewall '%s' %s (%u rules)", f->name, put ? "replaced" : "created", f->nr_rules);
	http_reply_json(req, put ? 200 : 201, json_pack("{s:o}", "firewall", firewalls_to_json(f)));
out:
	free(nerr);
	json_decref(body);
	free(f);
}

void firewalls_create(struct http_req *req)
{
	firewalls_write(req, false);
}

void firewalls_put(struct http_req *req)
{
	firewalls_write(req, true);
}

void firewalls_delete(struct http_req *req)
{
	struct daemon *d = req->d;
	struct net_state *ns = d->net;
	struct net_nic_ref *nics = NULL;
	size_t n = 0;
	json_t *users = json_array();

	if (networks_collect_nics(d, &nics, &n) == 0)
		for (size_t i = 0; i < n; i++)
			if (strcmp(nics[i].nic.firewall, req->params[0]) == 0)
				json_array_append_new(users, json_string(nics[i].vm));
	free(nics);
	pthread_mutex_lock(&ns->lock);
	struct fw_set *f = firewalls_find_locked(ns, req->params[0]);
	if (!f) {
		pthread_mutex_unlock(&ns->lock);
		http_reply_errorf(req, 404, "not_found", "there is no firewall named '%s'",
				  req->params[0]);
		json_decref(users);
		return;
	}
	if (json_array_size(users)) {
		pthread_mutex_unlock(&ns->lock);
		networks_reply_in_use(req, users, "firewall '%s' is attached to NICs of VMs %s; "
				      "detach it first (PATCH the VM's nics)");
		json_decref(users);
		return;
	}
	json_decref(users);
	store_doc_delete(d->store, "firewalls", f->name);
	*f = ns->fws[--ns->nr_fws];
	pthread_mutex_unlock(&ns->lock);
	networks_changed(d);
	http_reply_json(req, 200, json_pack("{s:s}", "deleted", req->params[0]));
}
