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
#include <stdlib.h>
#include <string.h>
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
	metrics_family(f, "vessel_vm_rss_bytes", "gauge", "Resident memory of the VM's monitor process.");
	for (size_t i = 0; i < s->nr_vms; i++) {
		if (s->vms[i].pid <= 0 || !s->vms[i].proc.have_rss)
			continue;
		metrics_vm_label(f, "vessel_vm_rss_bytes", &s->vms[i]);
		fprintf(f, "%" PRIu64 "\n", s->vms[i].proc.rss_bytes);
	}
	metrics_family(f, "vessel_vm_disk_read_bytes_total", "counter",
		       "Bytes the VM's monitor process read from storage (page cache hits excluded).");
	for (size_t i = 0; i < s->nr_vms; i++) {
		if (s->vms[i].pid <= 0 || !s->vms[i].proc.have_io)
			continue;
		metrics_vm_label(f, "vessel_vm_disk_read_bytes_total", &s->vms[i]);
		fprintf(f, "%" PRIu64 "\n", s->vms[i].proc.read_bytes);
	}
	metrics_family(f, "vessel_vm_disk_write_bytes_total", "counter",
		       "Bytes the VM's monitor process caused to be written to storage.");
	for (size_t i = 0; i < s->nr_vms; i++) {
		if (s->vms[i].pid <= 0 || !s->vms[i].proc.have_io)
			continue;
		metrics_vm_label(f, "vessel_vm_disk_write_bytes_total", &s->vms[i]);
		fprintf(f, "%" PRIu64 "\n", s->vms[i].proc.write_bytes);
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
	free(buf);
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
	}
	s->nr_vms = n;
out:
	pthread_mutex_unlock(&d->vms_lock);
	for (size_t i = 0; i < s->nr_vms; i++)
		if (s->vms[i].pid > 0 && metrics_proc_read(s->vms[i].pid, &s->vms[i].proc) < 0)
			s->vms[i].pid = 0; /* gone between the copy and the read */
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
	char *body = NULL;
	size_t len = 0;
	int r = requests ? metrics_collect_vms(d, &s) : -ENOMEM;
	if (r < 0)
		goto out;
	metrics_collect_host(&s);
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
}
