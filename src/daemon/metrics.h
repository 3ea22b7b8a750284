/* metrics: GET /metrics, vesseld's state in the Prometheus text exposition
 * format 0.0.4 (docs/api.md "Metrics"): host capacity and load, one set of
 * series per VM (state, size, and the monitor process's CPU time, RSS and
 * disk I/O read from /proc), API request counts, tasks and images.
 *
 * The work is split so each part can be tested without a daemon: pure
 * parsers of the /proc files, a pure renderer from a snapshot struct to the
 * exposition text, and the handler that collects the snapshot under the
 * daemon's locks and replies. */
#ifndef VESSEL_DAEMON_METRICS_H
#define VESSEL_DAEMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "daemon/engine/engine.h"
#include "daemon/model.h"

struct http_req;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4"

/* Methods counted by vessel_api_requests_total; anything else is "other",
 * so a client cannot grow the label set without bound. */
enum metrics_method {
	METRICS_METHOD_GET = 0,
	METRICS_METHOD_POST,
	METRICS_METHOD_PUT,
	METRICS_METHOD_PATCH,
	METRICS_METHOD_DELETE,
	METRICS_METHOD_HEAD,
	METRICS_METHOD_OPTIONS,
	METRICS_METHOD_OTHER,
	METRICS_METHOD_COUNT,
};
/* HTTP status codes counted, 100..599 (RFC 9110 §15). */
#define METRICS_CODE_MIN 100
#define METRICS_NR_CODES 500

/* Parsers of /proc text. Each returns 0 or -EINVAL when a field it needs is
 * missing or malformed (the file format changed, or it was truncated). */

/* /proc/meminfo (proc(5)): MemTotal and MemAvailable, converted from kB. */
int metrics_parse_meminfo(const char *text, uint64_t *total_bytes, uint64_t *available_bytes);
/* /proc/loadavg: the 1-minute load average (first field). */
int metrics_parse_loadavg(const char *text, double *load1);
/* /proc/PID/stat: utime and stime (fields 14 and 15, in clock ticks). The
 * command name (field 2) may hold spaces and ')', so fields are counted
 * from the last ')'. */
int metrics_parse_stat(const char *text, uint64_t *utime, uint64_t *stime);
/* /proc/PID/statm: resident set size in pages (second field). */
int metrics_parse_statm(const char *text, uint64_t *resident_pages);
/* /proc/PID/io: read_bytes and write_bytes (bytes the process made the
 * storage layer fetch or send, page cache hits excluded). */
int metrics_parse_io(const char *text, uint64_t *read_bytes, uint64_t *write_bytes);

/* What /proc tells about one monitor process. A field whose file could not
 * be read (process gone, /proc/PID/io not readable) is marked absent and
 * its series is left out rather than reported as 0. */
struct metrics_proc {
	bool have_cpu, have_rss, have_io;
	double cpu_seconds;
	uint64_t rss_bytes;
	uint64_t read_bytes, write_bytes;
};

/* /proc/stat "cpu" line (proc(5)): time the host's CPUs spent in each
 * mode, in clock ticks. steal exists since Linux 2.6.11; older fields
 * missing is an error, newer extra ones (guest) are ignored. */
struct metrics_host_cpu {
	uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
};
int metrics_parse_proc_stat(const char *text, struct metrics_host_cpu *out);
/* /proc/PID/task/TID/schedstat (Documentation/scheduler/sched-stats.rst):
 * time on a CPU and time waiting on a run queue, in nanoseconds. */
int metrics_parse_schedstat(const char *text, uint64_t *run_ns, uint64_t *wait_ns);

/* Counters of one network interface (a VM's tap), from
 * SYSFS/NAME/statistics/ (Documentation/ABI/testing/sysfs-class-net-statistics). */
struct metrics_net {
	char name[32];
	uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets, rx_dropped, tx_dropped;
};
/* sysfs_net is "/sys/class/net" (tests give a fixture tree). -ENOENT when
 * the interface does not exist, -EINVAL for a name that is not one. */
int metrics_net_read(const char *sysfs_net, const char *ifname, struct metrics_net *out);

/* One vCPU thread of a VM: its CPU time and run-queue wait. */
struct metrics_vcpu {
	unsigned index;
	bool have_cpu, have_wait;
	double cpu_seconds, wait_seconds;
};
/* Read /proc/PID/task/TID/{stat,schedstat}; -ESRCH when the thread is gone. */
int metrics_vcpu_read(pid_t pid, pid_t tid, struct metrics_vcpu *out);

/* Read /proc/PID/{stat,statm,io}. Returns 0 when at least the stat file was
 * read, -ESRCH when the process does not exist. */
int metrics_proc_read(pid_t pid, struct metrics_proc *out);

struct metrics_vm {
	char name[MODEL_NAME_MAX];
	enum vm_state state;
	unsigned vcpus;
	uint64_t memory_bytes;
	pid_t pid;
	struct metrics_proc proc; /* meaningful when pid > 0 */
	char project[MODEL_NAME_MAX];
	unsigned priority;
	/* From the engine (QMP) when the VM runs; have_stats false otherwise. */
	bool have_stats;
	struct engine_vm_stats stats;
	struct metrics_vcpu vcpu[ENGINE_MAX_VCPUS]; /* stats.nr_vcpus of them */
	/* The VM's NIC taps that exist now (a stopped VM has none). */
	struct metrics_net nets[MODEL_MAX_NICS];
	size_t nr_nets;
};

/* Per-route request counts and latency (the router's route table index;
 * index nr_routes counts requests that matched no route). */
#define METRICS_MAX_ROUTES 128
#define METRICS_NR_BUCKETS 11
extern const double metrics_latency_buckets[METRICS_NR_BUCKETS];
struct metrics_routes {
	size_t nr_routes; /* at most METRICS_MAX_ROUTES - 1 */
	const char *const *methods; /* nr_routes entries */
	const char *const *patterns;
	const uint64_t *codes; /* [route * METRICS_NR_CODES + code - 100] */
	const uint64_t *buckets; /* [route * (METRICS_NR_BUCKETS + 1) + b], last = +Inf (count) */
	const uint64_t *sum_ns;  /* [route] */
};

/* Everything one scrape reports, gathered before rendering. */
struct metrics_snapshot {
	const char *version;
	const char *accel;
	long cpus;
	bool have_meminfo, have_load;
	uint64_t memory_bytes, memory_available_bytes;
	double load1;
	struct metrics_vm *vms;
	size_t nr_vms;
	uint64_t tasks[3]; /* by enum task_state */
	bool have_host_cpu, have_disk, have_capacity;
	struct metrics_host_cpu host_cpu; /* ticks */
	long clk_tck;
	uint64_t disk_total_bytes, disk_free_bytes; /* the data directory's file system */
	uint64_t vcpus_allocatable, vcpus_used, memory_allocatable_bytes, memory_used_bytes;
	const struct metrics_routes *routes; /* NULL = none counted */
	uint64_t images;
	/* vessel_api_requests_total, METRICS_METHOD_COUNT rows of
	 * METRICS_NR_CODES: [method * METRICS_NR_CODES + code - 100];
	 * NULL = no requests counted */
	const uint64_t *requests;
};

/* Write s as a label value inside double quotes: \ " and newline escaped
 * as \\ \" \n (exposition format 0.0.4, "Text format details"). */
void metrics_label_value_write(FILE *f, const char *s);
/* Render the snapshot as exposition text; *out is malloc'd. */
int metrics_render(const struct metrics_snapshot *s, char **out, size_t *len);

/* Count one answered API request (the router calls this for every reply). */
void metrics_request_count(const char *method, unsigned status);
/* Count it by route too, with its latency: route is the index in the
 * router's table, or -1 when it matched none. */
void metrics_route_count(int route, unsigned status, uint64_t duration_ns);
enum metrics_method metrics_method_of(const char *method);
const char *metrics_method_name(enum metrics_method m);

/* GET /metrics */
void metrics_get(struct http_req *req);

#endif
