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
enum metrics_method metrics_method_of(const char *method);
const char *metrics_method_name(enum metrics_method m);

/* GET /metrics */
void metrics_get(struct http_req *req);

#endif
