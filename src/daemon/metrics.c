/* metrics: GET /metrics in the Prometheus text exposition format 0.0.4
 * (docs/api.md "Metrics"). Host figures come from /proc/meminfo and
 * /proc/loadavg, per-VM resource use from the monitor's /proc/PID/stat,
 * statm and io (proc(5)), the rest from the daemon's own registries.
 *
 * Nothing here is cached: a scrape reads a handful of small /proc files per
 * running VM, cheap enough to run on the MHD thread. The request counters
 * are process-wide atomics, like a Prometheus client library's default
 * registry: one vesseld per process, and the router counts without a lock. */
#include "daemon/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "lib/util.h"

/* The same version GET /api/v1/host reports. */
#define METRICS_VERSION "0.1.0"
#define METRICS_FILE_MAX 16384

static uint64_t metrics_requests[METRICS_METHOD_COUNT * METRICS_NR_CODES];

static const char *const metrics_method_names[METRICS_METHOD_COUNT] = {
	[METRICS_METHOD_GET] = "GET",       [METRICS_METHOD_POST] = "POST",
	[METRICS_METHOD_PUT] = "PUT",       [METRICS_METHOD_PATCH] = "PATCH",
	[METRICS_METHOD_DELETE] = "DELETE", [METRICS_METHOD_HEAD] = "HEAD",
	[METRICS_METHOD_OPTIONS] = "OPTIONS", [METRICS_METHOD_OTHER] = "other",
};

enum metrics_method metrics_method_of(const char *method)
{
	for (int m = 0; m < METRICS_METHOD_OTHER; m++)
		if (method && strcmp(method, metrics_method_names[m]) == 0)
			return (enum metrics_method)m;
	return METRICS_METHOD_OTHER;
}

const char *metrics_method_name(enum metrics_method m)
{
	return (unsigned)m < METRICS_METHOD_COUNT ? metrics_method_names[m] : "other";
}

void metrics_request_count(const char *method, unsigned status)
{
	if (status < METRICS_CODE_MIN || status >= METRICS_CODE_MIN + METRICS_NR_CODES)
		return; /* not an HTTP status; nothing sensible to label it with */
	size_t i = (size_t)metrics_method_of(method) * METRICS_NR_CODES + (status - METRICS_CODE_MIN);
	__atomic_fetch_add(&metrics_requests[i], 1, __ATOMIC_RELAXED);
}

/* Seconds; spans cheap reads (GET of a VM, well under 1 ms) up to slow
 * lifecycle calls (a TCG start, a stop that waits for the guest). */
const double metrics_latency_buckets[METRICS_NR_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
							     0.025, 0.1, 0.5, 2.5, 10, 60};
static uint64_t metrics_route_codes[METRICS_MAX_ROUTES * METRICS_NR_CODES];
static uint64_t metrics_route_buckets[METRICS_MAX_ROUTES * (METRICS_NR_BUCKETS + 1)];
static uint64_t metrics_route_sum_ns[METRICS_MAX_ROUTES];

void metrics_route_count(int route, unsigned status, uint64_t duration_ns)
{
	size_t r = route >= 0 && (size_t)route < http_nr_routes && route < METRICS_MAX_ROUTES - 1 ?
			   (size_t)route :
			   (http_nr_routes < METRICS_MAX_ROUTES - 1 ? http_nr_routes :
								      METRICS_MAX_ROUTES - 1);
	if (status >= METRICS_CODE_MIN && status < METRICS_CODE_MIN + METRICS_NR_CODES)
		__atomic_fetch_add(&metrics_route_codes[r * METRICS_NR_CODES + status -
							METRICS_CODE_MIN],
				   1, __ATOMIC_RELAXED);
	double secs = (double)duration_ns / 1e9;
	/* Buckets are stored non-cumulative and summed when rendered. */
	size_t b = 0;
	while (b < METRICS_NR_BUCKETS && secs > metrics_latency_buckets[b])
		b++;
	__atomic_fetch_add(&metrics_route_buckets[r * (METRICS_NR_BUCKETS + 1) + b], 1,
			   __ATOMIC_RELAXED);
	__atomic_fetch_add(&metrics_route_sum_ns[r], duration_ns, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ /proc parsers */

/* Find "Key:" at the start of a line and parse the number after it. */
static int metrics_field_u64(const char *text, const char *key, uint64_t *out)
{
	size_t kl = strlen(key);
	for (const char *p = text; *p;) {
		if (strncmp(p, key, kl) != 0 || p[kl] != ':') {
			const char *nl = strchr(p, '\n');
			if (!nl)
				break;
			p = nl + 1;
			continue;
		}
		const char *v = p + kl + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v < '0' || *v > '9')
			return -EINVAL;
		errno = 0;
		char *end;
		unsigned long long n = strtoull(v, &end, 10);
		if (errno || (*end != '\0' && *end != ' ' && *end != '\n'))
			return -EINVAL;
		*out = n;
		return 0;
	}
	return -EINVAL;
}

int metrics_parse_meminfo(const char *text, uint64_t *total_bytes, uint64_t *available_bytes)
{
	uint64_t total, avail;
	/* proc(5): the values are in kibibytes although the file says "kB". */
	if (metrics_field_u64(text, "MemTotal", &total) < 0 ||
	    metrics_field_u64(text, "MemAvailable", &avail) < 0)
		return -EINVAL;
	if (total > UINT64_MAX / 1024 || avail > total)
		return -EINVAL;
	*total_bytes = total * 1024;
	*available_bytes = avail * 1024;
	return 0;
}

int metrics_parse_loadavg(const char *text, double *load1)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end == text || (*end != ' ' && *end != '\n' && *end != '\0') || !(v >= 0))
		return -EINVAL;
	*load1 = v;
	return 0;
}

int metrics_parse_stat(const char *text, uint64_t *utime, uint64_t *stime)
{
	const char *p = strrchr(text, ')');
	if (!p || !strchr(text, '('))
		return -EINVAL;
	p++;
	/* After the command name come field 3 (state) onwards; utime is 14,
	 * stime 15. */
	uint64_t v[2];
	for (int field = 3; field <= 15; field++) {
		while (*p == ' ')
			p++;
		if (!*p || *p == '\n')
			return -EINVAL;
		const char *tok = p;
		while (*p && *p != ' ' && *p != '\n')
			p++;
		if (field < 14)
			continue;
		if (*tok < '0' || *tok > '9')
			return -EINVAL;
		char *end;
		errno = 0;
		unsigned long long n = strtoull(tok, &end, 10);
		if (errno || end != p)
			return -EINVAL;
		v[field - 14] = n;
	}
	*utime = v[0];
	*stime = v[1];
	return 0;
}

int metrics_parse_statm(const char *text, uint64_t *resident_pages)
{
	char *end;
	errno = 0;
	strtoull(text, &end, 10); /* size, unused */
	if (errno || end == text || *end != ' ')
		return -EINVAL;
	const char *p = end + 1;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	unsigned long long n = strtoull(p, &end, 10);
	if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
		return -EINVAL;
	*resident_pages = n;
	return 0;
}

int metrics_parse_io(const char *text, uint64_t *read_bytes, uint64_t *write_bytes)
{
	uint64_t r, w;
	if (metrics_field_u64(text, "read_bytes", &r) < 0 ||
	    metrics_field_u64(text, "write_bytes", &w) < 0)
		return -EINVAL;
	*read_bytes = r;
	*write_bytes = w;
	return 0;
}

int metrics_parse_proc_stat(const char *text, struct metrics_host_cpu *out)
{
	/* "cpu  user nice system idle iowait irq softirq steal guest guest_nice" */
	if (strncmp(text, "cpu ", 4) != 0)
		return -EINVAL;
	uint64_t v[8];
	const char *p = text + 4;
	for (int i = 0; i < 8; i++) {
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		char *end;
		errno = 0;
		unsigned long long n = strtoull(p, &end, 10);
		if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
			return -EINVAL;
		v[i] = n;
		p = end;
	}
	*out = (struct metrics_host_cpu){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
	return 0;
}

int metrics_parse_schedstat(const char *text, uint64_t *run_ns, uint64_t *wait_ns)
{
	unsigned long long run, wait, slices;
	char tail;
	if (sscanf(text, "%llu %llu %llu%c", &run, &wait, &slices, &tail) < 3)
		return -EINVAL;
	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	*run_ns = run;
	*wait_ns = wait;
	return 0;
}

/* Read a whole small file into buf (NUL-terminated). */
static int metrics_read_file(const char *path, char *buf, size_t cap)
{
	int r = 0;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < cap - 1) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
out:
	buf[len] = '\0';
	close(fd);
	return r;
}

int metrics_proc_read(pid_t pid, struct metrics_proc *out)
{
	char path[64];
	char buf[4096];
	uint64_t a, b;
	memset(out, 0, sizeof(*out));
	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int r = metrics_read_file(path, buf, sizeof(buf));
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	long tck = sysconf(_SC_CLK_TCK);
	if (metrics_parse_stat(buf, &a, &b) == 0 && tck > 0) {
		out->have_cpu = true;
		out->cpu_seconds = (double)(a + b) / (double)tck;
	}
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	long page = sysconf(_SC_PAGESIZE);
	if (metrics_read_file(path, buf, sizeof(buf)) == 0 && metrics_parse_statm(buf, &a) == 0 &&
	    page > 0) {
		out->have_rss = true;
		out->rss_bytes = a * (uint64_t)page;
	}
	/* Readable only with ptrace access to the process (proc(5)): vesseld
	 * spawned the monitor as the same user, so this works unless the
	 * monitor dropped to another user. */
	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	if (metrics_read_file(path, buf, sizeof(buf)) == 0 &&
	    metrics_parse_io(buf, &out->read_bytes, &out->write_bytes) == 0)
		out->have_io = true;
	return 0;
}

static int metrics_read_u64(const char *path, uint64_t *out)
{
	char buf[64], *end;
	int r = metrics_read_file(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || end == buf || (*end != '\n' && *end != '\0'))
		return -EINVAL;
	*out = v;
	return 0;
}

int metrics_net_read(const char *sysfs_net, const char *ifname, struct metrics_net *out)
{
	static const char *const files[] = {"rx_bytes",   "tx_bytes",   "rx_packets",
					    "tx_packets", "rx_dropped", "tx_dropped"};
	uint64_t *slots[] = {&out->rx_bytes,   &out->tx_bytes,   &out->rx_packets,
			     &out->tx_packets, &out->rx_dropped, &out->tx_dropped};
	/* IFNAMSIZ is 16; a name with '/' or a leading '.' would leave the
	 * directory. */
	if (!ifname[0] || strlen(ifname) >= 16 || strchr(ifname, '/') || ifname[0] == '.')
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", ifname);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s/statistics/%s", sysfs_net, ifname, files[i]);
		int r = metrics_read_u64(path, slots[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

int metrics_vcpu_read(pid_t pid, pid_t tid, struct metrics_vcpu *out)
{
	char path[96], buf[4096];
	uint64_t a, b;
	out->have_cpu = out->have_wait = false;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	int r = metrics_read_file(path, buf, sizeof(buf));
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	long tck = sysconf(_SC_CLK_TCK);
	if (metrics_parse_stat(buf, &a, &b) == 0 && tck > 0) {
		out->have_cpu = true;
		out->cpu_seconds = (double)(a + b) / (double)tck;
	}
	/* Present when the kernel has CONFIG_SCHEDSTATS (Debian does). */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
	if (metrics_read_file(path, buf, sizeof(buf)) == 0 &&
	    metrics_parse_schedstat(buf, &a, &b) == 0) {
		out->have_wait = true;
		out->wait_seconds = (double)b / 1e9;
	}
	return 0;
}

/* ------------------------------------------------------------ rendering */

void metrics_label_value_write(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		switch (*s) {
		case '\\':
			fputs("\\\\", f);
			break;
		case '"':
			fputs("\\\"", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		default:
			fputc(*s, f);
		}
	}
	fputc('"', f);
}

static void metrics_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Floats as Go's strconv.ParseFloat reads them; 15 significant digits keep
 * 1.23 from printing as 1.2299999999999999. */
static void metrics_double(FILE *f, double v)
{
	fprintf(f, "%.15g\n", v);
}

static void metrics_vm_label(FILE *f, const char *family, const struct metrics_vm *vm)
{
	fprintf(f, "%s{name=", family);
	metrics_label_value_write(f, vm->name);
	fputs("} ", f);
}

/* A per-VM series with one more label. */
static void metrics_vm_label2(FILE *f, const char *family, const struct metrics_vm *vm,
			      const char *label, const char *value)
{
	fprintf(f, "%s{name=", family);
	metrics_label_value_write(f, vm->name);
	fprintf(f, ",%s=", label);
	metrics_label_value_write(f, value);
	fputs("} ", f);
}

static void metrics_render_host(FILE *f, const struct metrics_snapshot *s)
{
	static const char *const modes[] = {"user", "nice",    "system",  "idle",
					    "iowait", "irq", "softirq", "steal"};
	metrics_family(f, "vessel_host_cpu_seconds_total", "counter",
		       "Time the host's CPUs spent in each mode (/proc/stat), summed over CPUs.");
	if (s->have_host_cpu && s->clk_tck > 0) {
		const uint64_t *v = &s->host_cpu.user;
		for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
			fprintf(f, "vessel_host_cpu_seconds_total{mode=\"%s\"} ", modes[m]);
			metrics_double(f, (double)v[m] / (double)s->clk_tck);
		}
	}
	metrics_family(f, "vessel_host_disk_bytes", "gauge",
		       "Size of the file system holding the data directory (VM disks, images).");
	if (s->have_disk)
		fprintf(f, "vessel_host_disk_bytes %" PRIu64 "\n", s->disk_total_bytes);
	metrics_family(f, "vessel_host_disk_free_bytes", "gauge",
		       "Free space on the file system holding the data directory.");
	if (s->have_disk)
		fprintf(f, "vessel_host_disk_free_bytes %" PRIu64 "\n", s->disk_free_bytes);
	metrics_family(f, "vessel_host_vcpus_allocatable", "gauge",
		       "vCPUs admission hands out: capacity x CPU overcommit ratio.");
	if (s->have_capacity)
		fprintf(f, "vessel_host_vcpus_allocatable %" PRIu64 "\n", s->vcpus_allocatable);
	metrics_family(f, "vessel_host_vcpus_used", "gauge",
		       "vCPUs of VMs that are starting, running, paused or stopping.");
	if (s->have_capacity)
		fprintf(f, "vessel_host_vcpus_used %" PRIu64 "\n", s->vcpus_used);
	metrics_family(f, "vessel_host_memory_allocatable_bytes", "gauge",
		       "Memory admission hands out: capacity x memory overcommit ratio.");
	if (s->have_capacity)
		fprintf(f, "vessel_host_memory_allocatable_bytes %" PRIu64 "\n",
			s->memory_allocatable_bytes);
	metrics_family(f, "vessel_host_memory_used_bytes", "gauge",
		       "Memory of VMs that are starting, running, paused or stopping.");
	if (s->have_capacity)
		fprintf(f, "vessel_host_memory_used_bytes %" PRIu64 "\n", s->memory_used_bytes);
}

/* One per-vCPU counter family: CPU time, or (wait) time spent runnable. */
static void metrics_render_vcpus(FILE *f, const struct metrics_snapshot *s, const char *family,
				 const char *help, bool wait)
{
	char idx[16];
	metrics_family(f, family, "counter", help);
	for (size_t i = 0; i < s->nr_vms; i++) {
		const struct metrics_vm *vm = &s->vms[i];
		for (unsigned c = 0; vm->have_stats && c < vm->stats.nr_vcpus; c++) {
			if (!(wait ? vm->vcpu[c].have_wait : vm->vcpu[c].have_cpu))
				continue;
			snprintf(idx, sizeof(idx), "%u", vm->vcpu[c].index);
			metrics_vm_label2(f, family, vm, "vcpu", idx);
			metrics_double(f, wait ? vm->vcpu[c].wait_seconds : vm->vcpu[c].cpu_seconds);
		}
	}
}

static void metrics_render_vms(FILE *f, const struct metrics_snapshot *s)
{
	metrics_family(f, "vessel_vm_info", "gauge",
		       "Project and priority of each VM; always 1.");
	for (size_t i = 0; i < s->nr_vms; i++) {
		const struct metrics_vm *vm = &s->vms[i];
		fputs("vessel_vm_info{name=", f);
		metrics_label_value_write(f, vm->name);
		fputs(",project=", f);
		metrics_label_value_write(f, vm->project[0] ? vm->project : MODEL_PROJECT_DEFAULT);
		fprintf(f, ",priority=\"%s\"} 1\n", model_priority_name(vm->priority));
	}
	metrics_render_vcpus(f, s, "vessel_vm_vcpu_seconds_total",
			     "CPU time of each vCPU thread of a running VM (user + system).", false);
	metrics_render_vcpus(f, s, "vessel_vm_vcpu_wait_seconds_total",
			     "Time each vCPU thread was runnable but waiting for a host CPU "
			     "(schedstat run delay): the host-side view of steal time.", true);
	metrics_family(f, "vessel_vm_balloon_bytes", "gauge",
		       "Memory the guest holds now, as the virtio balloon reports it.");
	for (size_t i = 0; i < s->nr_vms; i++) {
		const struct metrics_vm *vm = &s->vms[i];
		if (!vm->have_stats || !vm->stats.have_balloon)
			continue;
		metrics_vm_label(f, "vessel_vm_balloon_bytes", vm);
		fprintf(f, "%" PRIu64 "\n", vm->stats.balloon_bytes);
	}
	static const struct {
		const char *name, *help;
		size_t off;
	} blk[] = {
		{"vessel_vm_block_read_bytes_total", "Bytes the guest read from each disk (QMP "
		 "query-blockstats).", offsetof(struct engine_vm_stats, disks[0].rd_bytes)},
		{"vessel_vm_block_write_bytes_total", "Bytes the guest wrote to each disk.",
		 offsetof(struct engine_vm_stats, disks[0].wr_bytes)},
		{"vessel_vm_block_read_ops_total", "Read requests the guest made on each disk.",
		 offsetof(struct engine_vm_stats, disks[0].rd_ops)},
		{"vessel_vm_block_write_ops_total", "Write requests the guest made on each disk.",
		 offsetof(struct engine_vm_stats, disks[0].wr_ops)},
	};
	size_t stride = sizeof(((struct engine_vm_stats *)0)->disks[0]);
	for (size_t k = 0; k < ARRAY_SIZE(blk); k++) {
		metrics_family(f, blk[k].name, "counter", blk[k].help);
		for (size_t i = 0; i < s->nr_vms; i++) {
			const struct metrics_vm *vm = &s->vms[i];
			for (unsigned d = 0; vm->have_stats && d < vm->stats.nr_disks; d++) {
				const char *base = (const char *)&vm->stats + blk[k].off + d * stride;
				uint64_t v;
				memcpy(&v, base, sizeof(v));
				metrics_vm_label2(f, blk[k].name, vm, "disk", vm->stats.disks[d].name);
				fprintf(f, "%" PRIu64 "\n", v);
			}
		}
	}
	static const struct {
		const char *name, *help;
		size_t off;
	} net[] = {
		{"vessel_vm_network_receive_bytes_total", "Bytes received by the VM on each NIC "
		 "(counted at its tap).", offsetof(struct metrics_net, tx_bytes)},
		{"vessel_vm_network_transmit_bytes_total", "Bytes sent by the VM on each NIC.",
		 offsetof(struct metrics_net, rx_bytes)},
		{"vessel_vm_network_receive_packets_total", "Packets received by the VM on each NIC.",
		 offsetof(struct metrics_net, tx_packets)},
		{"vessel_vm_network_transmit_packets_total", "Packets sent by the VM on each NIC.",
		 offsetof(struct metrics_net, rx_packets)},
		{"vessel_vm_network_receive_drops_total", "Packets for the VM dropped at its tap.",
		 offsetof(struct metrics_net, tx_dropped)},
		{"vessel_vm_network_transmit_drops_total", "Packets from the VM dropped at its tap.",
		 offsetof(struct metrics_net, rx_dropped)},
	};
	for (size_t k = 0; k < ARRAY_SIZE(net); k++) {
		metrics_family(f, net[k].name, "counter", net[k].help);
		for (size_t i = 0; i < s->nr_vms; i++) {
			const struct metrics_vm *vm = &s->vms[i];
			for (size_t n = 0; n < vm->nr_nets; n++) {
				uint64_t v;
				memcpy(&v, (const char *)&vm->nets[n] + net[k].off, sizeof(v));
				metrics_vm_label2(f, net[k].name, vm, "interface", vm->nets[n].name);
				fprintf(f, "%" PRIu64 "\n", v);
			}
		}
	}
}

static void metrics_route_labels(FILE *f, const struct metrics_routes *rt, size_t r)
{
	fputs("method=", f);
	metrics_label_value_write(f, r < rt->nr_routes ? rt->methods[r] : "any");
	fputs(",route=", f);
	metrics_label_value_write(f, r < rt->nr_routes ? rt->patterns[r] : "unmatched");
}

static void metrics_render_routes(FILE *f, const struct metrics_snapshot *s)
{
	const struct metrics_routes *rt = s->routes;
	metrics_family(f, "vessel_api_route_requests_total", "counter",
		       "API requests answered, by route pattern (not raw path) and HTTP status.");
	for (size_t r = 0; rt && r <= rt->nr_routes; r++) {
		for (size_t c = 0; c < METRICS_NR_CODES; c++) {
			uint64_t v = rt->codes[r * METRICS_NR_CODES + c];
			if (!v)
				continue;
			fputs("vessel_api_route_requests_total{", f);
			metrics_route_labels(f, rt, r);
			fprintf(f, ",code=\"%zu\"} %" PRIu64 "\n", c + METRICS_CODE_MIN, v);
		}
	}
	metrics_family(f, "vessel_api_request_duration_seconds", "histogram",
		       "Time from a request's arrival to its reply being queued, by route.");
	for (size_t r = 0; rt && r <= rt->nr_routes; r++) {
		const uint64_t *b = &rt->buckets[r * (METRICS_NR_BUCKETS + 1)];
		uint64_t total = 0;
		for (size_t k = 0; k <= METRICS_NR_BUCKETS; k++)
			total += b[k];
		if (!total)
			continue;
		uint64_t cum = 0;
		for (size_t k = 0; k <= METRICS_NR_BUCKETS; k++) {
			cum += b[k];
			fputs("vessel_api_request_duration_seconds_bucket{", f);
			metrics_route_labels(f, rt, r);
			if (k < METRICS_NR_BUCKETS)
				fprintf(f, ",le=\"%g\"} %" PRIu64 "\n", metrics_latency_buckets[k], cum);
			else
				fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
		}
		fputs("vessel_api_request_duration_seconds_sum{", f);
		metrics_route_labels(f, rt, r);
		fputs("} ", f);
		metrics_double(f, (double)rt->sum_ns[r] / 1e9);
		fputs("vessel_api_request_duration_seconds_count{", f);
		metrics_route_labels(f, rt, r);
		fprintf(f, "} %" PRIu64 "\n", total);
	}
}

static void metrics_render_more(FILE *f, const struct metrics_snapshot *s)
{
	metrics_render_host(f, s);
	metrics_render_vms(f, s);
	metrics_render_routes(f, s);
}

int metrics_render(const struct metrics_snapshot *s, char **out, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f)
		return -ENOMEM;

	metrics_family(f, "vessel_info", "gauge",
		       "vesseld version and the acceleration VMs run with; always 1.");
	fputs("vessel_info{version=", f);
	metrics_label_value_write(f, s->version ? s->version : "");
	fputs(",accel=", f);
	metrics_label_value_write(f, s->accel ? s->accel : "");
	fputs("} 1\n", f);

	metrics_family(f, "vessel_host_cpus", "gauge", "Online CPUs of the host.");
	fprintf(f, "vessel_host_cpus %ld\n", s->cpus);
	metrics_family(f, "vessel_host_memory_bytes", "gauge", "Host memory (MemTotal).");
	if (s->have_meminfo)
		fprintf(f, "vessel_host_memory_bytes %" PRIu64 "\n", s->memory_bytes);
	metrics_family(f, "vessel_host_memory_available_bytes", "gauge",
		       "Host memory available for new work without swapping (MemAvailable).");
	if (s->have_meminfo)
		fprintf(f, "vessel_host_memory_available_bytes %" PRIu64 "\n",
			s->memory_available_bytes);
	metrics_family(f, "vessel_host_load1", "gauge", "Host load average over 1 minute.");
	if (s->have_load) {
		fputs("vessel_host_load1 ", f);
		metrics_double(f, s->load1);
	}

	metrics_family(f, "vessel_vm_state", "gauge",
		       "Current state of each VM (one series per VM, value 1).");
	for (size_t i = 0; i < s->nr_vms; i++) {
		fputs("vessel_vm_state{name=", f);
		metrics_label_value_write(f, s->vms[i].name);
		fputs(",state=", f);
		metrics_label_value_write(f, model_vm_state_name(s->vms[i].state));
		fputs("} 1\n", f);
	}
	metrics_family(f, "vessel_vm_vcpus", "gauge", "Virtual CPUs of each VM.");
	for (size_t i = 0; i < s->nr_vms; i++) {
		metrics_vm_label(f, "vessel_vm_vcpus", &s->vms[i]);
		fprintf(f, "%u\n", s->vms[i].vcpus);
	}
	metrics_family(f, "vessel_vm_memory_bytes", "gauge", "Memory size of each VM.");
	for (size_t i = 0; i < s->nr_vms; i++) {
		metrics_vm_label(f, "vessel_vm_memory_bytes", &s->vms[i]);
		fprintf(f, "%" PRIu64 "\n", s->vms[i].memory_bytes);
	}
	metrics_family(f, "vessel_vm_cpu_seconds_total", "counter",
		       "CPU time (user + system) of the VM's monitor process since it started.");
	for (size_t i = 0; i < s->nr_vms; i++) {
		if (s->vms[i].pid <= 0 || !s->vms[i].proc.have_cpu)
			continue;
		metrics_vm_label(f, "vessel_vm_cpu_seconds_total", &s->vms[i]);
		metrics_double(f, s->vms[i].proc.cpu_seconds);
	}
	/* The monitor process's figures from /proc: each family is left out
	 * for a VM whose process is gone or whose file was unreadable. */
	static const struct {
		const char *name, *type, *help;
		size_t have, off; /* offsets of the bool and the uint64_t */
	} proc[] = {
		{"vessel_vm_rss_bytes", "gauge", "Resident memory of the VM's monitor process.",
		 offsetof(struct metrics_proc, have_rss), offsetof(struct metrics_proc, rss_bytes)},
		{"vessel_vm_disk_read_bytes_total", "counter",
		 "Bytes the VM's monitor process read from storage (page cache hits excluded).",
		 offsetof(struct metrics_proc, have_io), offsetof(struct metrics_proc, read_bytes)},
		{"vessel_vm_disk_write_bytes_total", "counter",
		 "Bytes the VM's monitor process caused to be written to storage.",
		 offsetof(struct metrics_proc, have_io), offsetof(struct metrics_proc, write_bytes)},
	};
	for (size_t k = 0; k < ARRAY_SIZE(proc); k++) {
		metrics_family(f, proc[k].name, proc[k].type, proc[k].help);
		for (size_t i = 0; i < s->nr_vms; i++) {
			const char *p = (const char *)&s->vms[i].proc;
			bool have;
			uint64_t v;
			memcpy(&have, p + proc[k].have, sizeof(have));
			if (s->vms[i].pid <= 0 || !have)
				continue;
			memcpy(&v, p + proc[k].off, sizeof(v));
			metrics_vm_label(f, proc[k].name, &s->vms[i]);
			fprintf(f, "%" PRIu64 "\n", v);
		}
	}

	metrics_family(f, "vessel_api_requests_total", "counter",
		       "API requests answered, by method and HTTP status code.");
	for (size_t m = 0; s->requests && m < METRICS_METHOD_COUNT; m++) {
		for (size_t c = 0; c < METRICS_NR_CODES; c++) {
			uint64_t v = s->requests[m * METRICS_NR_CODES + c];
			if (!v)
				continue;
			fprintf(f, "vessel_api_requests_total{method=\"%s\",code=\"%zu\"} %" PRIu64 "\n",
				metrics_method_name((enum metrics_method)m), c + METRICS_CODE_MIN, v);
		}
	}
	metrics_family(f, "vessel_tasks", "gauge", "Tasks vesseld remembers, by state.");
	for (int t = TASK_STATE_RUNNING; t <= TASK_STATE_FAILED; t++)
		fprintf(f, "vessel_tasks{state=\"%s\"} %" PRIu64 "\n",
			model_task_state_name((enum task_state)t), s->tasks[t]);
	metrics_family(f, "vessel_images", "gauge", "Images in the image store (any state).");
	fprintf(f, "vessel_images %" PRIu64 "\n", s->images);
	metrics_render_more(f, s);

	bool failed = ferror(f);
	if (fclose(f) != 0 || failed || !buf) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* ------------------------------------------------------------ handler */

static void metrics_collect_host(struct metrics_snapshot *s)
{
	char *buf = malloc(METRICS_FILE_MAX);
	if (!buf)
		return;
	if (metrics_read_file("/proc/meminfo", buf, METRICS_FILE_MAX) == 0 &&
	    metrics_parse_meminfo(buf, &s->memory_bytes, &s->memory_available_bytes) == 0)
		s->have_meminfo = true;
	if (metrics_read_file("/proc/loadavg", buf, METRICS_FILE_MAX) == 0 &&
	    metrics_parse_loadavg(buf, &s->load1) == 0)
		s->have_load = true;
	if (metrics_read_file("/proc/stat", buf, METRICS_FILE_MAX) == 0 &&
	    metrics_parse_proc_stat(buf, &s->host_cpu) == 0)
		s->have_host_cpu = true;
	s->clk_tck = sysconf(_SC_CLK_TCK);
	free(buf);
}

/* Ask the engine (QMP) for the VM's vCPU threads, balloon and block
 * counters, then read each vCPU thread's time from /proc. */
static void metrics_collect_engine(struct daemon *d, struct metrics_vm *m)
{
	struct vm *vm = vm_get(d, m->name);
	if (!vm)
		return;
	char *err = NULL;
	pthread_rwlock_rdlock(&vm->handle_lock);
	if (vm->handle && d->engine && d->engine->ops->stats &&
	    d->engine->ops->stats(vm->handle, &m->stats, &err) == 0)
		m->have_stats = true;
	else if (vm->handle && d->engine && d->engine->ops->stats)
		log_ratelimited(LOG_LEVEL_DEBUG, "metrics: vm '%s': %s", m->name,
				err ? err : "no statistics");
	pthread_rwlock_unlock(&vm->handle_lock);
	free(err);
	vm_unref(d, vm);
	for (unsigned c = 0; m->have_stats && c < m->stats.nr_vcpus; c++) {
		m->vcpu[c].index = m->stats.vcpus[c].index;
		metrics_vcpu_read(m->pid, m->stats.vcpus[c].tid, &m->vcpu[c]);
	}
}

/* Copy what the scrape needs of each VM under vms_lock; /proc is read after
 * the lock is dropped so a slow read never holds up lifecycle operations. */
static int metrics_collect_vms(struct daemon *d, struct metrics_snapshot *s)
{
	int r = 0;
	pthread_mutex_lock(&d->vms_lock);
	size_t n = d->nr_vms;
	s->vms = calloc(n ? n : 1, sizeof(*s->vms));
	if (!s->vms) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct vm_record *rec = &d->vms[i]->rec;
		struct metrics_vm *m = &s->vms[i];
		snprintf(m->name, sizeof(m->name), "%s", rec->name);
		m->state = rec->state;
		m->vcpus = rec->vcpus;
		m->memory_bytes = rec->memory_mib * MiB;
		m->pid = rec->pid;
		snprintf(m->project, sizeof(m->project), "%s", rec->project);
		m->priority = rec->priority;
		for (unsigned k = 0; k < rec->nr_nics && m->nr_nets < MODEL_MAX_NICS; k++)
			if (rec->nics[k].tap[0])
				snprintf(m->nets[m->nr_nets++].name, sizeof(m->nets[0].name), "%s",
					 rec->nics[k].tap);
	}
	s->nr_vms = n;
	if (d->capacity.capacity[ADMISSION_DIM_VCPUS]) {
		struct admission_amount used;
		vm_usage_host_locked(d, NULL, &used);
		s->have_capacity = true;
		s->vcpus_allocatable = admission_allocatable(d->capacity.capacity[ADMISSION_DIM_VCPUS],
							     d->capacity.cpu_ratio);
		s->memory_allocatable_bytes =
			admission_allocatable(d->capacity.capacity[ADMISSION_DIM_MEMORY],
					      d->capacity.memory_ratio) * MiB;
		s->vcpus_used = used.v[ADMISSION_DIM_VCPUS];
		s->memory_used_bytes = used.v[ADMISSION_DIM_MEMORY] * MiB;
	}
out:
	pthread_mutex_unlock(&d->vms_lock);
	for (size_t i = 0; i < s->nr_vms; i++) {
		struct metrics_vm *m = &s->vms[i];
		if (m->pid > 0 && metrics_proc_read(m->pid, &m->proc) < 0)
			m->pid = 0; /* gone between the copy and the read */
		if (m->pid > 0)
			metrics_collect_engine(d, m);
		/* NIC counters of the taps that exist (they are created at
		 * start and removed at stop). */
		size_t kept = 0;
		for (size_t k = 0; k < m->nr_nets; k++) {
			char name[sizeof(m->nets[k].name)];
			snprintf(name, sizeof(name), "%s", m->nets[k].name);
			if (metrics_net_read("/sys/class/net", name, &m->nets[kept]) == 0)
				kept++;
		}
		m->nr_nets = kept;
	}
	return r;
}

void metrics_get(struct http_req *req)
{
	struct daemon *d = req->d;
	struct metrics_snapshot s = {
		.version = METRICS_VERSION,
		.accel = d->host.accel[0] ? d->host.accel : "tcg",
		.cpus = d->cpus > 0 ? d->cpus : 1,
	};
	uint64_t *requests = malloc(sizeof(metrics_requests));
	uint64_t *route_codes = malloc(sizeof(metrics_route_codes));
	uint64_t *route_buckets = malloc(sizeof(metrics_route_buckets));
	uint64_t route_sum[METRICS_MAX_ROUTES];
	char *body = NULL;
	size_t len = 0;
	int r = requests && route_codes && route_buckets ? metrics_collect_vms(d, &s) : -ENOMEM;
	if (r < 0)
		goto out;
	metrics_collect_host(&s);
	struct statvfs sv;
	if (statvfs(d->cfg.data_dir, &sv) == 0) {
		s.have_disk = true;
		s.disk_total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
		s.disk_free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	}
	/* The route table gives the labels; the counters are copied so one
	 * scrape is consistent with itself. */
	size_t nr = http_nr_routes < METRICS_MAX_ROUTES - 1 ? http_nr_routes : METRICS_MAX_ROUTES - 1;
	const char *methods[METRICS_MAX_ROUTES], *patterns[METRICS_MAX_ROUTES];
	for (size_t i = 0; i < nr; i++) {
		methods[i] = http_routes[i].method;
		patterns[i] = http_routes[i].pattern;
	}
	for (size_t i = 0; i < ARRAY_SIZE(metrics_route_codes); i++)
		route_codes[i] = __atomic_load_n(&metrics_route_codes[i], __ATOMIC_RELAXED);
	for (size_t i = 0; i < ARRAY_SIZE(metrics_route_buckets); i++)
		route_buckets[i] = __atomic_load_n(&metrics_route_buckets[i], __ATOMIC_RELAXED);
	for (size_t i = 0; i < ARRAY_SIZE(metrics_route_sum_ns); i++)
		route_sum[i] = __atomic_load_n(&metrics_route_sum_ns[i], __ATOMIC_RELAXED);
	struct metrics_routes routes = {.nr_routes = nr, .methods = methods, .patterns = patterns,
					.codes = route_codes, .buckets = route_buckets,
					.sum_ns = route_sum};
	s.routes = &routes;
	pthread_mutex_lock(&d->tasks_lock);
	for (size_t i = 0; i < d->nr_tasks; i++)
		if ((unsigned)d->tasks[i]->state < ARRAY_SIZE(s.tasks))
			s.tasks[d->tasks[i]->state]++;
	pthread_mutex_unlock(&d->tasks_lock);
	s.images = image_count(d);
	for (size_t i = 0; i < ARRAY_SIZE(metrics_requests); i++)
		requests[i] = __atomic_load_n(&metrics_requests[i], __ATOMIC_RELAXED);
	s.requests = requests;
	r = metrics_render(&s, &body, &len);
out:
	if (r < 0)
		http_reply_errorf(req, 500, "internal",
				  "vesseld ran out of memory building the metrics; retry");
	else
		http_reply_raw(req, 200, METRICS_CONTENT_TYPE, body, len);
	free(s.vms);
	free(requests);
	free(route_codes);
	free(route_buckets);
}
