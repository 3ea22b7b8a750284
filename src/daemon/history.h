/* history: the last hour of resource use, per VM and for the host, kept in
 * memory for the web UI's graphs (docs/api.md "History"). A sampler thread
 * wakes every --history-interval seconds (default 5), reads the figures the
 * kernel keeps (/proc/PID/stat, statm and io of each VM's monitor, the VM's
 * tap devices under /sys/class/net, /proc/stat, /proc/meminfo and statvfs of
 * the data directory for the host) and appends one sample to a bounded ring.
 * Counters (CPU time, bytes read/written/received/sent) become rates between
 * two samples; a counter that goes backwards (a new monitor process) starts
 * afresh instead of producing a negative rate.
 *
 * Nothing is stored on disk: the history starts empty at each vesseld start,
 * which is fine for graphs of the last hour. */
#ifndef VESSEL_DAEMON_HISTORY_H
#define VESSEL_DAEMON_HISTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct daemon;
struct http_req;

#define HISTORY_DEFAULT_INTERVAL_S 5
#define HISTORY_WINDOW_S 3600 /* one hour */
#define HISTORY_MAX_COLS 8

/* Columns of a VM's history; names as in the JSON reply. */
enum history_vm_col {
	HISTORY_VM_CPU_PERCENT = 0,   /* 100 = one host CPU busy */
	HISTORY_VM_MEMORY_BYTES,      /* RSS of the monitor process */
	HISTORY_VM_DISK_READ_BPS,     /* /proc/PID/io read_bytes per second */
	HISTORY_VM_DISK_WRITE_BPS,    /* /proc/PID/io write_bytes per second */
	HISTORY_VM_NET_RX_BPS,        /* sum over the VM's tap devices */
	HISTORY_VM_NET_TX_BPS,
	HISTORY_VM_NR_COLS,
};

enum history_host_col {
	HISTORY_HOST_CPU_PERCENT = 0, /* 100 = every host CPU busy */
	HISTORY_HOST_MEMORY_USED_BYTES,
	HISTORY_HOST_MEMORY_TOTAL_BYTES,
	HISTORY_HOST_DISK_USED_BYTES,  /* file system of the data directory */
	HISTORY_HOST_DISK_TOTAL_BYTES,
	HISTORY_HOST_LOAD1,
	HISTORY_HOST_NR_COLS,
};

extern const char *const history_vm_cols[HISTORY_VM_NR_COLS];
extern const char *const history_host_cols[HISTORY_HOST_NR_COLS];

/* A fixed-size ring of samples: a timestamp (Unix seconds) and ncols
 * values; NAN marks a value that was not available. */
struct history_ring {
	size_t cap, head, len; /* head: where the next sample goes */
	unsigned ncols;
	double *t;
	double *v; /* cap rows of ncols */
};

int history_ring_new(size_t cap, unsigned ncols, struct history_ring **out);
void history_ring_free(struct history_ring *r);
/* Append a sample, dropping the oldest when full. vals has ncols values. */
void history_ring_push(struct history_ring *r, double t, const double *vals);
/* The i-th oldest sample kept (i < len): its time and row of values. */
void history_ring_at(const struct history_ring *r, size_t i, double *t, const double **vals);
/* {"t": [...], COL: [...], ...} for samples newer than since (Unix
 * seconds; 0 = all), NAN as null. */
json_t *history_ring_json(const struct history_ring *r, const char *const *cols, double since);

/* A monotonically growing counter turned into a rate per second. */
struct history_counter {
	bool have;
	double t;     /* monotonic seconds of the last value */
	double value;
};

/* Rate since the previous call, or NAN on the first call, when time did
 * not advance, or when the counter went backwards (the process was
 * replaced); the new value is remembered in every case. */
double history_rate(struct history_counter *c, double t, double value);
void history_counter_reset(struct history_counter *c);

/* Busy share of all CPUs between two readings of the first line of
 * /proc/stat ("cpu  user nice system idle iowait irq softirq steal"):
 * 100 * (1 - Δ(idle + iowait) / Δtotal); NAN when nothing was counted. */
int history_parse_proc_stat(const char *text, uint64_t *total, uint64_t *idle);
double history_cpu_busy_percent(uint64_t total0, uint64_t idle0, uint64_t total1,
				uint64_t idle1);

/* Field 22 of /proc/PID/stat (starttime: clock ticks after boot); fields
 * are counted from the last ')' because the command name may hold one. */
int history_parse_starttime(const char *stat_text, uint64_t *ticks);
/* "btime N" of /proc/stat: the boot time in Unix seconds. */
int history_parse_btime(const char *proc_stat, uint64_t *btime);

/* Sum of rx_bytes and tx_bytes of the named interfaces, read from
 * SYSFS_NET/NAME/statistics/ (sysfs_net is normally "/sys/class/net").
 * Returns 0, or -ENOENT when an interface is missing (the sums then cover
 * the ones found), or -EINVAL for a name that is not a plain file name. */
int history_net_read(const char *sysfs_net, const char *const *ifaces, size_t n, uint64_t *rx,
		     uint64_t *tx);

struct history;

int history_new(unsigned interval_s, struct history **out);
void history_free(struct history *h);
/* Start and stop the sampler thread (stop joins it). */
int history_start(struct history *h, struct daemon *d);
void history_stop(struct history *h);
/* Take one sample of every VM and the host now (the thread's work; tests
 * call it directly). */
void history_sample(struct history *h, struct daemon *d);
unsigned history_interval(const struct history *h);

/* GET /api/v1/vms/{name}/history and /api/v1/host/history; the host reply
 * also carries "vm_started_at": {NAME: Unix seconds} for running VMs (the
 * start of their monitor process), so the VM list can show uptimes. */
void history_vm_get(struct http_req *req);
void history_host_get(struct http_req *req);

#endif
