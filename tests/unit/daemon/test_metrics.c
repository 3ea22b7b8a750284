/* Unit tests for GET /metrics (src/daemon/metrics.c): the /proc parsers on
 * fixture text (including malformed and truncated files), reading this
 * process's own /proc entries, label-value escaping, the renderer against a
 * golden exposition text, and the handler end to end on a real daemon with
 * the engine test double (Unix socket, TCP with and without the token,
 * a VM created and started, request counters). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/metrics.h"
#include "fake_daemon.h"
#include "fake_engine.h"
#include "harness.h"

static const char meminfo_fixture[] =
	"MemTotal:       24683620 kB\n"
	"MemFree:        20112028 kB\n"
	"MemAvailable:   22275960 kB\n"
	"Buffers:          123456 kB\n"
	"HugePages_Total:       0\n"
	"Hugepagesize:       2048 kB\n";

TEST(parse_meminfo)
{
	uint64_t t = 0, a = 0;
	CHECK_EQ_INT(metrics_parse_meminfo(meminfo_fixture, &t, &a), 0);
	CHECK(t == 24683620ull * 1024);
	CHECK(a == 22275960ull * 1024);
	/* MemAvailable missing (kernels before 3.14): refused, not guessed */
	CHECK_EQ_INT(metrics_parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n", &t, &a), -EINVAL);
	/* a key that only starts like the one asked for does not match */
	CHECK_EQ_INT(metrics_parse_meminfo("MemTotalX: 5 kB\nMemAvailable: 1 kB\n", &t, &a), -EINVAL);
	CHECK_EQ_INT(metrics_parse_meminfo("MemTotal: abc kB\nMemAvailable: 1 kB\n", &t, &a), -EINVAL);
	CHECK_EQ_INT(metrics_parse_meminfo("", &t, &a), -EINVAL);
	/* available larger than total is a corrupt read */
	CHECK_EQ_INT(metrics_parse_meminfo("MemTotal: 1 kB\nMemAvailable: 2 kB\n", &t, &a), -EINVAL);
	CHECK_EQ_INT(metrics_parse_meminfo("MemTotal: 99999999999999999999 kB\nMemAvailable: 2 kB\n",
					   &t, &a), -EINVAL);
}

TEST(parse_loadavg)
{
	double l = -1;
	CHECK_EQ_INT(metrics_parse_loadavg("0.52 0.58 0.59 1/467 12345\n", &l), 0);
	CHECK(l > 0.519 && l < 0.521);
	CHECK_EQ_INT(metrics_parse_loadavg("11.00 1 1 1/1 1", &l), 0);
	CHECK(l == 11.0);
	CHECK_EQ_INT(metrics_parse_loadavg("", &l), -EINVAL);
	CHECK_EQ_INT(metrics_parse_loadavg("x 1 1", &l), -EINVAL);
	CHECK_EQ_INT(metrics_parse_loadavg("-1.0 1 1", &l), -EINVAL);
	CHECK_EQ_INT(metrics_parse_loadavg("1.0x 1 1", &l), -EINVAL);
}

TEST(parse_stat)
{
	uint64_t u = 0, s = 0;
	/* fields: pid (comm) state ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime stime ... */
	const char *plain = "4242 (qemu-system-x86) S 1 4242 4242 0 -1 4194560 3000 0 12 0 "
			    "1234 567 0 0 20 0 3 0 100 2000000000 30000 18446744073709551615\n";
	CHECK_EQ_INT(metrics_parse_stat(plain, &u, &s), 0);
	CHECK_EQ_INT(u, 1234);
	CHECK_EQ_INT(s, 567);
	/* a command name with spaces and ") " inside must not shift fields */
	const char *evil = "7 (a) b ) c 9 9) R 1 7 7 0 -1 0 0 0 0 0 77 88 0 0 20 0 1 0 5 0 0\n";
	CHECK_EQ_INT(metrics_parse_stat(evil, &u, &s), 0);
	CHECK_EQ_INT(u, 77);
	CHECK_EQ_INT(s, 88);
	/* truncated before stime */
	CHECK_EQ_INT(metrics_parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 5", &u, &s), -EINVAL);
	CHECK_EQ_INT(metrics_parse_stat("1 x S 1 1 1 0 -1 0 0 0 0 0 5 6 0", &u, &s), -EINVAL);
	CHECK_EQ_INT(metrics_parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 -5 6 0", &u, &s), -EINVAL);
	CHECK_EQ_INT(metrics_parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 5z 6 0", &u, &s), -EINVAL);
	CHECK_EQ_INT(metrics_parse_stat("", &u, &s), -EINVAL);
}

TEST(parse_statm)
{
	uint64_t r = 0;
	CHECK_EQ_INT(metrics_parse_statm("1013412 80123 4567 1234 0 90000 0\n", &r), 0);
	CHECK_EQ_INT(r, 80123);
	CHECK_EQ_INT(metrics_parse_statm("5 6", &r), 0);
	CHECK_EQ_INT(r, 6);
	CHECK_EQ_INT(metrics_parse_statm("1013412\n", &r), -EINVAL);
	CHECK_EQ_INT(metrics_parse_statm("1013412 x 1\n", &r), -EINVAL);
	CHECK_EQ_INT(metrics_parse_statm("", &r), -EINVAL);
}

TEST(parse_io)
{
	uint64_t r = 0, w = 0;
	const char *io = "rchar: 323934931\nwchar: 323929600\nsyscr: 632687\nsyscw: 632675\n"
			 "read_bytes: 1081344\nwrite_bytes: 4096\ncancelled_write_bytes: 12288\n";
	CHECK_EQ_INT(metrics_parse_io(io, &r, &w), 0);
	CHECK_EQ_INT(r, 1081344);
	CHECK_EQ_INT(w, 4096);
	/* cancelled_write_bytes must not be taken for write_bytes */
	CHECK_EQ_INT(metrics_parse_io("read_bytes: 1\ncancelled_write_bytes: 9\n", &r, &w), -EINVAL);
	CHECK_EQ_INT(metrics_parse_io("rchar: 1\n", &r, &w), -EINVAL);
}

/* stime of this process in ticks; with utime_plus set, returns utime +
 * stime instead. Parsed here independently of metrics_parse_stat(). */
static uint64_t self_ticks(volatile uint64_t *utime_plus)
{
	char buf[4096] = "";
	FILE *f = fopen("/proc/self/stat", "r");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	char *p = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &ut, &st) != 2)
		return 0;
	return utime_plus ? ut + st : st;
}

TEST(proc_read_self)
{
	/* burn CPU until the kernel has charged us a few ticks (100 Hz), so
	 * utime+stime is above zero */
	volatile uint64_t x = 0;
	while (clock() < CLOCKS_PER_SEC / 20)
		for (uint64_t i = 0; i < 100000; i++)
			x += i;
	/* and some system time too (a few ticks), so a reading that dropped
	 * stime would fall below what /proc said just before */
	while (self_ticks(NULL) < 3)
		for (int i = 0; i < 1000; i++)
			close(open("/proc/self/stat", O_RDONLY));
	double tck = (double)sysconf(_SC_CLK_TCK);
	double before = (double)self_ticks(&x) / tck;
	struct metrics_proc p;
	CHECK_EQ_INT(metrics_proc_read(getpid(), &p), 0);
	double after = (double)self_ticks(&x) / tck;
	CHECK(p.have_cpu && p.cpu_seconds > 0);
	CHECK(p.cpu_seconds >= before - 1e-9 && p.cpu_seconds <= after + 1e-9);
	CHECK(p.have_rss && p.rss_bytes > 1024 * 1024);
	CHECK(p.have_io); /* our own /proc/self/io is always readable */
	/* above the kernel's PID_MAX_LIMIT (4194304): never a process */
	CHECK_EQ_INT(metrics_proc_read(99999999, &p), -ESRCH);
	CHECK(!p.have_cpu && !p.have_rss && !p.have_io);
	CHECK_EQ_INT(metrics_proc_read(0, &p), -ESRCH);
}

static char *label(const char *s)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	metrics_label_value_write(f, s);
	fclose(f);
	return buf;
}

TEST(label_escaping)
{
	char *l = label("a\\b\"c\nd");
	CHECK_STR(l, "\"a\\\\b\\\"c\\nd\"");
	free(l);
	l = label("");
	CHECK_STR(l, "\"\"");
	free(l);
	l = label("web-1");
	CHECK_STR(l, "\"web-1\"");
	free(l);
}

TEST(methods)
{
	CHECK_EQ_INT(metrics_method_of("GET"), METRICS_METHOD_GET);
	CHECK_EQ_INT(metrics_method_of("DELETE"), METRICS_METHOD_DELETE);
	CHECK_EQ_INT(metrics_method_of("get"), METRICS_METHOD_OTHER);
	CHECK_EQ_INT(metrics_method_of("BREW"), METRICS_METHOD_OTHER);
	CHECK_EQ_INT(metrics_method_of(NULL), METRICS_METHOD_OTHER);
	CHECK_STR(metrics_method_name(METRICS_METHOD_OTHER), "other");
	CHECK_STR(metrics_method_name(METRICS_METHOD_PATCH), "PATCH");
}

/* Every sample line belongs to the family of the last # TYPE line (after
 * a # HELP of the same name), and each family is declared once. Returns
 * the number of problems, printed. */
static int exposition_check(const char *text)
{
	int bad = 0;
	char family[128] = "", help[128] = "";
	char seen[64][128];
	size_t nr_seen = 0;
	const char *p = text;
	while (*p) {
		const char *e = strchr(p, '\n');
		if (!e) {
			fprintf(stderr, "  last line has no newline\n");
			return bad + 1;
		}
		char line[1024];
		snprintf(line, sizeof(line), "%.*s", (int)(e - p), p);
		p = e + 1;
		char name[128], type[32];
		if (sscanf(line, "# HELP %127s", name) == 1) {
			snprintf(help, sizeof(help), "%s", name);
		} else if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
			if (strcmp(name, help) != 0 ||
			    (strcmp(type, "gauge") != 0 && strcmp(type, "counter") != 0 &&
			     strcmp(type, "histogram") != 0)) {
				fprintf(stderr, "  bad TYPE line: %s\n", line);
				bad++;
			}
			for (size_t i = 0; i < nr_seen; i++)
				if (strcmp(seen[i], name) == 0) {
					fprintf(stderr, "  family declared twice: %s\n", name);
					bad++;
				}
			if (nr_seen < 64)
				snprintf(seen[nr_seen++], sizeof(seen[0]), "%s", name);
			snprintf(family, sizeof(family), "%s", name);
		} else {
			size_t n = strcspn(line, "{ ");
			size_t fl = strlen(family);
			/* a histogram's samples are FAMILY_bucket, _sum and _count */
			bool hist = n > fl && strncmp(line, family, fl) == 0 &&
				    (strncmp(line + fl, "_bucket", n - fl) == 0 ||
				     strncmp(line + fl, "_sum", n - fl) == 0 ||
				     strncmp(line + fl, "_count", n - fl) == 0);
			if (!hist && (fl != n || strncmp(line, family, n) != 0)) {
				fprintf(stderr, "  sample outside its family (%s): %s\n", family, line);
				bad++;
			}
		}
	}
	return bad;
}

static const char golden[] =
	"# HELP vessel_info vesseld version and the acceleration VMs run with; always 1.\n"
	"# TYPE vessel_info gauge\n"
	"vessel_info{version=\"0.1.0\",accel=\"tcg\"} 1\n"
	"# HELP vessel_host_cpus Online CPUs of the host.\n"
	"# TYPE vessel_host_cpus gauge\n"
	"vessel_host_cpus 2\n"
	"# HELP vessel_host_memory_bytes Host memory (MemTotal).\n"
	"# TYPE vessel_host_memory_bytes gauge\n"
	"vessel_host_memory_bytes 25276026880\n"
	"# HELP vessel_host_memory_available_bytes Host memory available for new work without swapping (MemAvailable).\n"
	"# TYPE vessel_host_memory_available_bytes gauge\n"
	"vessel_host_memory_available_bytes 1048576\n"
	"# HELP vessel_host_load1 Host load average over 1 minute.\n"
	"# TYPE vessel_host_load1 gauge\n"
	"vessel_host_load1 1.23\n"
	"# HELP vessel_vm_state Current state of each VM (one series per VM, value 1).\n"
	"# TYPE vessel_vm_state gauge\n"
	"vessel_vm_state{name=\"db\",state=\"running\"} 1\n"
	"vessel_vm_state{name=\"q\\\"\\\\\\n\",state=\"stopped\"} 1\n"
	"# HELP vessel_vm_vcpus Virtual CPUs of each VM.\n"
	"# TYPE vessel_vm_vcpus gauge\n"
	"vessel_vm_vcpus{name=\"db\"} 4\n"
	"vessel_vm_vcpus{name=\"q\\\"\\\\\\n\"} 1\n"
	"# HELP vessel_vm_memory_bytes Memory size of each VM.\n"
	"# TYPE vessel_vm_memory_bytes gauge\n"
	"vessel_vm_memory_bytes{name=\"db\"} 2147483648\n"
	"vessel_vm_memory_bytes{name=\"q\\\"\\\\\\n\"} 536870912\n"
	"# HELP vessel_vm_cpu_seconds_total CPU time (user + system) of the VM's monitor process since it started.\n"
	"# TYPE vessel_vm_cpu_seconds_total counter\n"
	"vessel_vm_cpu_seconds_total{name=\"db\"} 12.5\n"
	"# HELP vessel_vm_rss_bytes Resident memory of the VM's monitor process.\n"
	"# TYPE vessel_vm_rss_bytes gauge\n"
	"vessel_vm_rss_bytes{name=\"db\"} 409600\n"
	"# HELP vessel_vm_disk_read_bytes_total Bytes the VM's monitor process read from storage (page cache hits excluded).\n"
	"# TYPE vessel_vm_disk_read_bytes_total counter\n"
	"# HELP vessel_vm_disk_write_bytes_total Bytes the VM's monitor process caused to be written to storage.\n"
	"# TYPE vessel_vm_disk_write_bytes_total counter\n"
	"# HELP vessel_api_requests_total API requests answered, by method and HTTP status code.\n"
	"# TYPE vessel_api_requests_total counter\n"
	"vessel_api_requests_total{method=\"GET\",code=\"200\"} 7\n"
	"vessel_api_requests_total{method=\"GET\",code=\"404\"} 1\n"
	"vessel_api_requests_total{method=\"other\",code=\"405\"} 2\n"
	"# HELP vessel_tasks Tasks vesseld remembers, by state.\n"
	"# TYPE vessel_tasks gauge\n"
	"vessel_tasks{state=\"running\"} 1\n"
	"vessel_tasks{state=\"succeeded\"} 3\n"
	"vessel_tasks{state=\"failed\"} 0\n"
	"# HELP vessel_images Images in the image store (any state).\n"
	"# TYPE vessel_images gauge\n"
	"vessel_images 5\n"
	"# HELP vessel_host_cpu_seconds_total Time the host's CPUs spent in each mode (/proc/stat), summed over CPUs.\n"
	"# TYPE vessel_host_cpu_seconds_total counter\n"
	"vessel_host_cpu_seconds_total{mode=\"user\"} 10\n"
	"vessel_host_cpu_seconds_total{mode=\"nice\"} 0.01\n"
	"vessel_host_cpu_seconds_total{mode=\"system\"} 2.5\n"
	"vessel_host_cpu_seconds_total{mode=\"idle\"} 900\n"
	"vessel_host_cpu_seconds_total{mode=\"iowait\"} 0.07\n"
	"vessel_host_cpu_seconds_total{mode=\"irq\"} 0\n"
	"vessel_host_cpu_seconds_total{mode=\"softirq\"} 0.03\n"
	"vessel_host_cpu_seconds_total{mode=\"steal\"} 0.12\n"
	"# HELP vessel_host_disk_bytes Size of the file system holding the data directory (VM disks, images).\n"
	"# TYPE vessel_host_disk_bytes gauge\n"
	"vessel_host_disk_bytes 1099511627776\n"
	"# HELP vessel_host_disk_free_bytes Free space on the file system holding the data directory.\n"
	"# TYPE vessel_host_disk_free_bytes gauge\n"
	"vessel_host_disk_free_bytes 549755813888\n"
	"# HELP vessel_host_vcpus_allocatable vCPUs admission hands out: capacity x CPU overcommit ratio.\n"
	"# TYPE vessel_host_vcpus_allocatable gauge\n"
	"vessel_host_vcpus_allocatable 8\n"
	"# HELP vessel_host_vcpus_used vCPUs of VMs that are starting, running, paused or stopping.\n"
	"# TYPE vessel_host_vcpus_used gauge\n"
	"vessel_host_vcpus_used 4\n"
	"# HELP vessel_host_memory_allocatable_bytes Memory admission hands out: capacity x memory overcommit ratio.\n"
	"# TYPE vessel_host_memory_allocatable_bytes gauge\n"
	"vessel_host_memory_allocatable_bytes 4294967296\n"
	"# HELP vessel_host_memory_used_bytes Memory of VMs that are starting, running, paused or stopping.\n"
	"# TYPE vessel_host_memory_used_bytes gauge\n"
	"vessel_host_memory_used_bytes 2147483648\n"
	"# HELP vessel_vm_info Project and priority of each VM; always 1.\n"
	"# TYPE vessel_vm_info gauge\n"
	"vessel_vm_info{name=\"db\",project=\"team\",priority=\"P1\"} 1\n"
	"vessel_vm_info{name=\"q\\\"\\\\\\n\",project=\"default\",priority=\"P0\"} 1\n"
	"# HELP vessel_vm_vcpu_seconds_total CPU time of each vCPU thread of a running VM (user + system).\n"
	"# TYPE vessel_vm_vcpu_seconds_total counter\n"
	"vessel_vm_vcpu_seconds_total{name=\"db\",vcpu=\"0\"} 3.25\n"
	"vessel_vm_vcpu_seconds_total{name=\"db\",vcpu=\"1\"} 1\n"
	"# HELP vessel_vm_vcpu_wait_seconds_total Time each vCPU thread was runnable but waiting for a host CPU (schedstat run delay): the host-side view of steal time.\n"
	"# TYPE vessel_vm_vcpu_wait_seconds_total counter\n"
	"vessel_vm_vcpu_wait_seconds_total{name=\"db\",vcpu=\"0\"} 0.5\n"
	"# HELP vessel_vm_balloon_bytes Memory the guest holds now, as the virtio balloon reports it.\n"
	"# TYPE vessel_vm_balloon_bytes gauge\n"
	"vessel_vm_balloon_bytes{name=\"db\"} 1073741824\n"
	"# HELP vessel_vm_block_read_bytes_total Bytes the guest read from each disk (QMP query-blockstats).\n"
	"# TYPE vessel_vm_block_read_bytes_total counter\n"
	"vessel_vm_block_read_bytes_total{name=\"db\",disk=\"disk0\"} 4096\n"
	"# HELP vessel_vm_block_write_bytes_total Bytes the guest wrote to each disk.\n"
	"# TYPE vessel_vm_block_write_bytes_total counter\n"
	"vessel_vm_block_write_bytes_total{name=\"db\",disk=\"disk0\"} 1048576\n"
	"# HELP vessel_vm_block_read_ops_total Read requests the guest made on each disk.\n"
	"# TYPE vessel_vm_block_read_ops_total counter\n"
	"vessel_vm_block_read_ops_total{name=\"db\",disk=\"disk0\"} 1\n"
	"# HELP vessel_vm_block_write_ops_total Write requests the guest made on each disk.\n"
	"# TYPE vessel_vm_block_write_ops_total counter\n"
	"vessel_vm_block_write_ops_total{name=\"db\",disk=\"disk0\"} 256\n"
	"# HELP vessel_vm_network_receive_bytes_total Bytes received by the VM on each NIC (counted at its tap).\n"
	"# TYPE vessel_vm_network_receive_bytes_total counter\n"
	"vessel_vm_network_receive_bytes_total{name=\"db\",interface=\"vt-db-0\"} 200\n"
	"# HELP vessel_vm_network_transmit_bytes_total Bytes sent by the VM on each NIC.\n"
	"# TYPE vessel_vm_network_transmit_bytes_total counter\n"
	"vessel_vm_network_transmit_bytes_total{name=\"db\",interface=\"vt-db-0\"} 100\n"
	"# HELP vessel_vm_network_receive_packets_total Packets received by the VM on each NIC.\n"
	"# TYPE vessel_vm_network_receive_packets_total counter\n"
	"vessel_vm_network_receive_packets_total{name=\"db\",interface=\"vt-db-0\"} 4\n"
	"# HELP vessel_vm_network_transmit_packets_total Packets sent by the VM on each NIC.\n"
	"# TYPE vessel_vm_network_transmit_packets_total counter\n"
	"vessel_vm_network_transmit_packets_total{name=\"db\",interface=\"vt-db-0\"} 3\n"
	"# HELP vessel_vm_network_receive_drops_total Packets for the VM dropped at its tap.\n"
	"# TYPE vessel_vm_network_receive_drops_total counter\n"
	"vessel_vm_network_receive_drops_total{name=\"db\",interface=\"vt-db-0\"} 6\n"
	"# HELP vessel_vm_network_transmit_drops_total Packets from the VM dropped at its tap.\n"
	"# TYPE vessel_vm_network_transmit_drops_total counter\n"
	"vessel_vm_network_transmit_drops_total{name=\"db\",interface=\"vt-db-0\"} 5\n"
	"# HELP vessel_api_route_requests_total API requests answered, by route pattern (not raw path) and HTTP status.\n"
	"# TYPE vessel_api_route_requests_total counter\n"
	"vessel_api_route_requests_total{method=\"GET\",route=\"/api/v1/vms/{name}\",code=\"200\"} 3\n"
	"vessel_api_route_requests_total{method=\"GET\",route=\"/api/v1/vms/{name}\",code=\"404\"} 1\n"
	"vessel_api_route_requests_total{method=\"any\",route=\"unmatched\",code=\"404\"} 2\n"
	"# HELP vessel_api_request_duration_seconds Time from a request's arrival to its reply being queued, by route.\n"
	"# TYPE vessel_api_request_duration_seconds histogram\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"0.0005\"} 0\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"0.001\"} 3\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"0.0025\"} 3\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"0.005\"} 3\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"0.01\"} 3\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"0.025\"} 3\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"0.1\"} 4\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"0.5\"} 4\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"2.5\"} 4\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"10\"} 4\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"60\"} 4\n"
	"vessel_api_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/vms/{name}\",le=\"+Inf\"} 4\n"
	"vessel_api_request_duration_seconds_sum{method=\"GET\",route=\"/api/v1/vms/{name}\"} 0.052\n"
	"vessel_api_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/vms/{name}\"} 4\n";

TEST(parse_proc_stat)
{
	struct metrics_host_cpu c;
	CHECK_EQ_INT(metrics_parse_proc_stat("cpu  4705 150 1120 16250 520 30 45 7 0 0\n"
					     "cpu0 2000 75 500 8000 260 15 20 3 0 0\n",
					     &c), 0);
	CHECK_EQ_INT(c.user, 4705);
	CHECK_EQ_INT(c.nice, 150);
	CHECK_EQ_INT(c.system, 1120);
	CHECK_EQ_INT(c.idle, 16250);
	CHECK_EQ_INT(c.iowait, 520);
	CHECK_EQ_INT(c.softirq, 45);
	CHECK_EQ_INT(c.steal, 7);
	/* a kernel older than steal time, a per-CPU line first, garbage */
	CHECK(metrics_parse_proc_stat("cpu  1 2 3 4 5 6 7\n", &c) < 0);
	CHECK(metrics_parse_proc_stat("cpu0 1 2 3 4 5 6 7 8\n", &c) < 0);
	CHECK(metrics_parse_proc_stat("cpu  1 2 x 4 5 6 7 8\n", &c) < 0);
	CHECK(metrics_parse_proc_stat("", &c) < 0);
}

TEST(parse_schedstat)
{
	uint64_t run, wait;
	CHECK_EQ_INT(metrics_parse_schedstat("1234567890 9876543 421\n", &run, &wait), 0);
	CHECK_EQ_INT(run, 1234567890);
	CHECK_EQ_INT(wait, 9876543);
	CHECK(metrics_parse_schedstat("12 34\n", &run, &wait) < 0);
	CHECK(metrics_parse_schedstat("-1 2 3\n", &run, &wait) < 0);
	CHECK(metrics_parse_schedstat("", &run, &wait) < 0);
}

static void fixture_put(const char *dir, const char *name, const char *value)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%.4000s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(value, f);
		fclose(f);
	}
}

TEST(net_read_fixture)
{
	/* /sys/class/net/IF/statistics/ as a fixture tree */
	char root[] = "/tmp/vessel-net-XXXXXX";
	CHECK(mkdtemp(root) != NULL);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/vt-web-0", root);
	mkdir(dir, 0755);
	snprintf(dir, sizeof(dir), "%s/vt-web-0/statistics", root);
	mkdir(dir, 0755);
	fixture_put(dir, "rx_bytes", "1000\n");
	fixture_put(dir, "tx_bytes", "2000\n");
	fixture_put(dir, "rx_packets", "10\n");
	fixture_put(dir, "tx_packets", "20\n");
	fixture_put(dir, "rx_dropped", "1\n");
	fixture_put(dir, "tx_dropped", "0\n");
	struct metrics_net n;
	CHECK_EQ_INT(metrics_net_read(root, "vt-web-0", &n), 0);
	CHECK_STR(n.name, "vt-web-0");
	CHECK_EQ_INT(n.rx_bytes, 1000);
	CHECK_EQ_INT(n.tx_bytes, 2000);
	CHECK_EQ_INT(n.rx_packets, 10);
	CHECK_EQ_INT(n.tx_packets, 20);
	CHECK_EQ_INT(n.rx_dropped, 1);
	CHECK_EQ_INT(n.tx_dropped, 0);
	CHECK_EQ_INT(metrics_net_read(root, "vt-gone", &n), -ENOENT);
	CHECK_EQ_INT(metrics_net_read(root, "../etc", &n), -EINVAL);
	CHECK_EQ_INT(metrics_net_read(root, "a-name-longer-than-ifnamsiz", &n), -EINVAL);
	fixture_put(dir, "tx_dropped", "lots\n");
	CHECK_EQ_INT(metrics_net_read(root, "vt-web-0", &n), -EINVAL);
	/* the real tree has lo on any Linux host */
	if (access("/sys/class/net/lo/statistics/rx_bytes", R_OK) == 0)
		CHECK_EQ_INT(metrics_net_read("/sys/class/net", "lo", &n), 0);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	CHECK_EQ_INT(system(cmd), 0);
}

TEST(vcpu_read_self)
{
	struct metrics_vcpu v = {0};
	CHECK_EQ_INT(metrics_vcpu_read(getpid(), (pid_t)syscall(SYS_gettid), &v), 0);
	CHECK(v.have_cpu);
	CHECK(v.cpu_seconds >= 0);
	CHECK_EQ_INT(metrics_vcpu_read(getpid(), 999999999, &v), -ESRCH);
}

TEST(render_golden)
{
	static uint64_t codes[METRICS_MAX_ROUTES * METRICS_NR_CODES];
	static uint64_t buckets[METRICS_MAX_ROUTES * (METRICS_NR_BUCKETS + 1)];
	static uint64_t sums[METRICS_MAX_ROUTES];
	static const char *const methods[] = {"GET", "POST"};
	static const char *const patterns[] = {"/api/v1/vms/{name}", "/api/v1/vms"};
	codes[0 * METRICS_NR_CODES + 100] = 3;       /* GET /vms/{name} 200 */
	codes[0 * METRICS_NR_CODES + 304] = 1;       /* GET /vms/{name} 404 */
	codes[2 * METRICS_NR_CODES + 304] = 2;       /* unmatched 404 */
	buckets[0 * (METRICS_NR_BUCKETS + 1) + 1] = 3; /* <= 1 ms */
	buckets[0 * (METRICS_NR_BUCKETS + 1) + 6] = 1; /* <= 100 ms */
	sums[0] = 52000000;
	struct metrics_routes routes = {.nr_routes = 2, .methods = methods, .patterns = patterns,
					.codes = codes, .buckets = buckets, .sum_ns = sums};
	struct metrics_vm vms[2] = {
		{.name = "db", .state = VM_STATE_RUNNING, .vcpus = 4, .memory_bytes = 2ull << 30,
		 .pid = 1234,
		 /* io unreadable: those series are left out, not reported as 0 */
		 .proc = {.have_cpu = true, .have_rss = true, .cpu_seconds = 12.5,
			  .rss_bytes = 409600},
		 .project = "team", .priority = 1, .have_stats = true,
		 .stats = {.nr_vcpus = 2, .have_balloon = true, .balloon_bytes = 1ull << 30,
			   .nr_disks = 1,
			   .disks = {{.name = "disk0", .rd_bytes = 4096, .wr_bytes = 1048576,
				      .rd_ops = 1, .wr_ops = 256}}},
		 .vcpu = {{.index = 0, .have_cpu = true, .have_wait = true, .cpu_seconds = 3.25,
			   .wait_seconds = 0.5},
			  {.index = 1, .have_cpu = true, .cpu_seconds = 1}},
		 .nets = {{.name = "vt-db-0", .rx_bytes = 100, .tx_bytes = 200, .rx_packets = 3,
			   .tx_packets = 4, .rx_dropped = 5, .tx_dropped = 6}},
		 .nr_nets = 1},
		{.name = "q\"\\\n", .state = VM_STATE_STOPPED, .vcpus = 1,
		 .memory_bytes = 512ull << 20,
		 /* a stopped VM never shows process figures, whatever is left */
		 .proc = {.have_cpu = true, .cpu_seconds = 99}},
	};
	uint64_t *req = calloc(METRICS_METHOD_COUNT * METRICS_NR_CODES, sizeof(*req));
	req[METRICS_METHOD_GET * METRICS_NR_CODES + 100] = 7;
	req[METRICS_METHOD_GET * METRICS_NR_CODES + 304] = 1;
	req[METRICS_METHOD_OTHER * METRICS_NR_CODES + 305] = 2;
	struct metrics_snapshot s = {
		.version = "0.1.0", .accel = "tcg", .cpus = 2, .have_meminfo = true,
		.have_load = true, .memory_bytes = 25276026880ull,
		.memory_available_bytes = 1048576, .load1 = 1.23, .vms = vms, .nr_vms = 2,
		.tasks = {1, 3, 0}, .images = 5, .requests = req,
		.have_host_cpu = true, .clk_tck = 100,
		.host_cpu = {.user = 1000, .nice = 1, .system = 250, .idle = 90000, .iowait = 7,
			     .irq = 0, .softirq = 3, .steal = 12},
		.have_disk = true, .disk_total_bytes = 1ull << 40, .disk_free_bytes = 1ull << 39,
		.have_capacity = true, .vcpus_allocatable = 8, .vcpus_used = 4,
		.memory_allocatable_bytes = 4ull << 30, .memory_used_bytes = 2ull << 30,
		.routes = &routes,
	};
	char *out = NULL;
	size_t len = 0;
	CHECK_EQ_INT(metrics_render(&s, &out, &len), 0);
	CHECK_STR(out, golden);
	CHECK_EQ_INT(len, strlen(golden));
	CHECK_EQ_INT(exposition_check(out), 0);
	free(out);
	/* without /proc figures and counters: families still declared */
	s.have_meminfo = s.have_load = false;
	s.nr_vms = 0;
	s.requests = NULL;
	s.routes = NULL;
	s.have_host_cpu = s.have_disk = s.have_capacity = false;
	CHECK_EQ_INT(metrics_render(&s, &out, &len), 0);
	CHECK(out && strstr(out, "# TYPE vessel_host_load1 gauge\n") != NULL);
	CHECK(out && strstr(out, "\nvessel_host_load1 ") == NULL);
	CHECK(out && strstr(out, "vessel_api_requests_total{") == NULL);
	CHECK_EQ_INT(exposition_check(out), 0);
	free(out);
	free(req);
}

/* ------------------------------------------------------------ end to end */

static struct daemon *d;
static struct daemon_config cfg;
static char dir[PATH_MAX];
static char sock[PATH_MAX + 16];
static int tcp_port;

struct resp {
	long status;
	char *body;
	size_t len;
	char content_type[128];
};

static size_t on_body(char *p, size_t sz, size_t n, void *cls)
{
	struct resp *r = cls;
	char *nb = realloc(r->body, r->len + sz * n + 1);
	if (!nb)
		return 0;
	memcpy(nb + r->len, p, sz * n);
	r->body = nb;
	r->len += sz * n;
	r->body[r->len] = '\0';
	return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *cls)
{
	struct resp *r = cls;
	if (strncasecmp(p, "Content-Type: ", 14) == 0) {
		snprintf(r->content_type, sizeof(r->content_type), "%s", p + 14);
		r->content_type[strcspn(r->content_type, "\r\n")] = '\0';
	}
	return sz * n;
}

static struct resp request(const char *method, const char *path, const char *body, bool via_tcp,
			   const char *token)
{
	struct resp r = {0};
	CURL *c = curl_easy_init();
	char url[512];
	struct curl_slist *h = NULL;
	if (via_tcp) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", tcp_port, path);
	} else {
		snprintf(url, sizeof(url), "http://localhost%s", path);
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	}
	if (token) {
		char a[256];
		snprintf(a, sizeof(a), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, a);
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return r;
}

/* The value of the sample line that starts with `series ` (name and
 * labels exactly as rendered); -1 when absent. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static struct resp scrape(void)
{
	struct resp r = request("GET", "/metrics", NULL, false, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.content_type, METRICS_CONTENT_TYPE);
	CHECK(r.body != NULL);
	if (!r.body)
		r.body = strdup("");
	CHECK_EQ_INT(exposition_check(r.body), 0);
	return r;
}

TEST(daemon_setup)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	snprintf(dir, sizeof(dir), "/tmp/vessel-test-metrics-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	CHECK_EQ_INT(fake_daemon_start(&cfg, dir, &d, &tcp_port), 0);
}

TEST(daemon_scrape_auth)
{
	if (!d)
		SKIP("no daemon");
	struct resp r = request("GET", "/metrics", NULL, true, NULL);
	CHECK_EQ_INT(r.status, 401);
	CHECK(r.body && strstr(r.body, "\"unauthorized\"") != NULL);
	free(r.body);
	r = request("GET", "/metrics", NULL, true, "wrong-token");
	CHECK_EQ_INT(r.status, 401);
	free(r.body);
	r = request("GET", "/metrics", NULL, true, d->token);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.content_type, METRICS_CONTENT_TYPE);
	CHECK(r.body && strstr(r.body, "vessel_info{version=\"0.1.0\",accel=\"tcg\"} 1\n") != NULL);
	CHECK(r.body && sample(r.body, "vessel_host_cpus") >= 1);
	CHECK(r.body && sample(r.body, "vessel_host_memory_bytes") > 0);
	CHECK(r.body && sample(r.body, "vessel_host_load1") >= 0);
	free(r.body);
	r = request("POST", "/metrics", "{}", false, NULL);
	CHECK_EQ_INT(r.status, 405);
	free(r.body);
	/* the counters saw what came before, by method and code */
	r = scrape();
	CHECK(sample(r.body, "vessel_api_requests_total{method=\"GET\",code=\"401\"}") >= 2);
	CHECK(sample(r.body, "vessel_api_requests_total{method=\"GET\",code=\"200\"}") >= 1);
	CHECK(sample(r.body, "vessel_api_requests_total{method=\"POST\",code=\"405\"}") >= 1);
	CHECK(sample(r.body, "vessel_tasks{state=\"running\"}") == 0);
	CHECK(sample(r.body, "vessel_images") == 0);
	free(r.body);
}

TEST(daemon_vm_series)
{
	if (!d)
		SKIP("no daemon");
	struct resp r = request("POST", "/api/v1/vms", "{\"name\":\"mx-1\",\"vcpus\":3,\"memory_mib\":256}",
				false, NULL);
	CHECK_EQ_INT(r.status, 201);
	free(r.body);
	r = scrape();
	CHECK(sample(r.body, "vessel_vm_state{name=\"mx-1\",state=\"stopped\"}") == 1);
	CHECK(sample(r.body, "vessel_vm_state{name=\"mx-1\",state=\"running\"}") == -1);
	CHECK(sample(r.body, "vessel_vm_vcpus{name=\"mx-1\"}") == 3);
	CHECK(sample(r.body, "vessel_vm_memory_bytes{name=\"mx-1\"}") == 256.0 * 1024 * 1024);
	CHECK(sample(r.body, "vessel_vm_cpu_seconds_total{name=\"mx-1\"}") == -1);
	CHECK(sample(r.body, "vessel_api_requests_total{method=\"POST\",code=\"201\"}") >= 1);
	free(r.body);
	r = request("POST", "/api/v1/vms/mx-1/start", NULL, false, NULL);
	CHECK_EQ_INT(r.status, 200);
	free(r.body);
	r = scrape();
	CHECK(sample(r.body, "vessel_vm_state{name=\"mx-1\",state=\"running\"}") == 1);
	CHECK(sample(r.body, "vessel_vm_state{name=\"mx-1\",state=\"stopped\"}") == -1);
	free(r.body);
	r = request("POST", "/api/v1/vms/mx-1/force-stop", NULL, false, NULL);
	CHECK_EQ_INT(r.status, 200);
	free(r.body);
	r = request("DELETE", "/api/v1/vms/mx-1", NULL, false, NULL);
	CHECK_EQ_INT(r.status, 200);
	free(r.body);
	r = scrape();
	CHECK(strstr(r.body, "name=\"mx-1\"") == NULL);
	free(r.body);

	/* With a monitor pid /proc knows (this process), the engine's
	 * statistics reach the scrape: per-vCPU time, balloon, block I/O. */
	fake_pid_self = true;
	r = request("POST", "/api/v1/vms",
		    "{\"name\":\"mx-2\",\"memory_mib\":128,\"priority\":\"P3\"}", false, NULL);
	CHECK_EQ_INT(r.status, 201);
	free(r.body);
	r = request("POST", "/api/v1/vms/mx-2/start", NULL, false, NULL);
	CHECK_EQ_INT(r.status, 200);
	free(r.body);
	r = scrape();
	CHECK(sample(r.body, "vessel_vm_info{name=\"mx-2\",project=\"default\",priority=\"P3\"}") == 1);
	CHECK(sample(r.body, "vessel_vm_vcpu_seconds_total{name=\"mx-2\",vcpu=\"0\"}") >= 0);
	CHECK(sample(r.body, "vessel_vm_balloon_bytes{name=\"mx-2\"}") == 128.0 * 1024 * 1024);
	CHECK(sample(r.body, "vessel_vm_block_write_bytes_total{name=\"mx-2\",disk=\"disk0\"}") == 8192);
	CHECK(sample(r.body, "vessel_vm_block_read_ops_total{name=\"mx-2\",disk=\"disk0\"}") == 1);
	CHECK(sample(r.body, "vessel_host_vcpus_used") == 1);
	CHECK(sample(r.body, "vessel_host_memory_used_bytes") == 128.0 * 1024 * 1024);
	CHECK(sample(r.body, "vessel_api_route_requests_total{method=\"POST\",route=\"/api/v1/vms/{name}/start\",code=\"200\"}") >= 2);
	CHECK(sample(r.body, "vessel_api_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/vms/{name}/start\"}") >= 2);
	CHECK(sample(r.body, "vessel_api_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/vms/{name}/start\",le=\"+Inf\"}") >= 2);
	CHECK(strstr(r.body, "route=\"/api/v1/vms/mx-2") == NULL); /* patterns, never raw paths */
	CHECK(sample(r.body, "vessel_host_cpu_seconds_total{mode=\"idle\"}") > 0);
	CHECK(exposition_check(r.body) == 0);
	free(r.body);
	r = request("DELETE", "/api/v1/vms/mx-2?force=true", NULL, false, NULL);
	CHECK_EQ_INT(r.status, 200);
	free(r.body);
	fake_pid_self = false;
}

TEST(daemon_teardown)
{
	if (!d)
		SKIP("no daemon");
	daemon_stop(d);
	daemon_free(d);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_EQ_INT(system(cmd), 0);
	curl_global_cleanup();
}

HARNESS_MAIN
