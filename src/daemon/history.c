/* history: in-memory resource history for the web UI's graphs (see
 * history.h): the ring, rate computation, the /proc and /sys readers, the
 * sampler thread and the two GET handlers. */
#include "daemon/history.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/metrics.h"
#include "lib/util.h"

const char *const history_vm_cols[HISTORY_VM_NR_COLS] = {
	"cpu_percent", "memory_bytes", "disk_read_bytes_per_second",
	"disk_write_bytes_per_second", "net_rx_bytes_per_second", "net_tx_bytes_per_second",
};

const char *const history_host_cols[HISTORY_HOST_NR_COLS] = {
	"cpu_percent", "memory_used_bytes", "memory_total_bytes",
	"disk_used_bytes", "disk_total_bytes", "load1",
};

int history_ring_new(size_t cap, unsigned ncols, struct history_ring **out)
{
	if (cap == 0 || ncols == 0 || ncols > HISTORY_MAX_COLS)
		return -EINVAL;
	struct history_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cap = cap;
	r->ncols = ncols;
	r->t = calloc(cap, sizeof(double));
	r->v = calloc(cap * ncols, sizeof(double));
	if (!r->t || !r->v) {
		history_ring_free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void history_ring_free(struct history_ring *r)
{
	if (!r)
		return;
	free(r->t);
	free(r->v);
	free(r);
}

void history_ring_push(struct history_ring *r, double t, const double *vals)
{
	r->t[r->head] = t;
	memcpy(&r->v[r->head * r->ncols], vals, r->ncols * sizeof(double));
	r->head = (r->head + 1) % r->cap;
	if (r->len < r->cap)
		r->len++;
}

void history_ring_at(const struct history_ring *r, size_t i, double *t, const double **vals)
{
	size_t idx = (r->head + r->cap - r->len + i) % r->cap;
	*t = r->t[idx];
	*vals = &r->v[idx * r->ncols];
}

json_t *history_ring_json(const struct history_ring *r, const char *const *cols, double since)
{
	json_t *o = json_object();
	json_t *arr[HISTORY_MAX_COLS + 1];
	if (!o)
		return NULL;
	arr[0] = json_array();
	json_object_set_new(o, "t", arr[0]);
	for (unsigned c = 0; c < r->ncols; c++) {
		arr[c + 1] = json_array();
		json_object_set_new(o, cols[c], arr[c + 1]);
	}
	for (size_t i = 0; i < r->len; i++) {
		double t;
		const double *v;
		history_ring_at(r, i, &t, &v);
		if (t <= since)
			continue;
		/* milliseconds are plenty for a graph and keep the reply short */
		json_array_append_new(arr[0], json_real(round(t * 1000) / 1000));
		for (unsigned c = 0; c < r->ncols; c++)
			json_array_append_new(arr[c + 1],
					      isfinite(v[c]) ? json_real(round(v[c] * 100) / 100) :
							       json_null());
	}
	return o;
}

void history_counter_reset(struct history_counter *c)
{
	c->have = false;
}

double history_rate(struct history_counter *c, double t, double value)
{
	double rate = NAN;
	if (c->have && t > c->t && value >= c->value)
		rate = (value - c->value) / (t - c->t);
	c->have = true;
	c->t = t;
	c->value = value;
	return rate;
}

int history_parse_proc_stat(const char *text, uint64_t *total, uint64_t *idle)
{
	/* proc(5): the first line sums all CPUs, in USER_HZ ticks; guest time
	 * is already inside user, so it is not added again. */
	unsigned long long f[8] = {0};
	if (strncmp(text, "cpu ", 4) != 0)
		return -EINVAL;
	int n = sscanf(text + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2],
		       &f[3], &f[4], &f[5], &f[6], &f[7]);
	if (n < 4)
		return -EINVAL;
	uint64_t sum = 0;
	for (int i = 0; i < 8; i++)
		sum += f[i];
	*total = sum;
	*idle = f[3] + f[4];
	return 0;
}

double history_cpu_busy_percent(uint64_t total0, uint64_t idle0, uint64_t total1,
				uint64_t idle1)
{
	if (total1 <= total0 || idle1 < idle0)
		return NAN;
	double dt = (double)(total1 - total0), di = (double)(idle1 - idle0);
	if (di > dt)
		return 0;
	return 100.0 * (1.0 - di / dt);
}

int history_parse_starttime(const char *stat_text, uint64_t *ticks)
{
	const char *p = strrchr(stat_text, ')');
	if (!p)
		return -EINVAL;
	p++;
	/* after ')': field 3 (state) is the first; starttime is field 22 */
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -EINVAL;
		while (*p && *p != ' ')
			p++;
	}
	while (*p == ' ')
		p++;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (errno || end == p)
		return -EINVAL;
	*ticks = v;
	return 0;
}

int history_parse_btime(const char *proc_stat, uint64_t *btime)
{
	const char *p = strstr(proc_stat, "\nbtime ");
	unsigned long long v;
	if (!p || sscanf(p + 7, "%llu", &v) != 1)
		return -EINVAL;
	*btime = v;
	return 0;
}

static int history_read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, cap - 1);
	int r = n < 0 ? -errno : 0;
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return r;
}

static int history_read_u64(const char *path, uint64_t *out)
{
	char buf[64];
	int r = history_read_file(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	*out = v;
	return 0;
}

int history_net_read(const char *sysfs_net, const char *const *ifaces, size_t n, uint64_t *rx,
		     uint64_t *tx)
{
	int ret = 0;
	*rx = *tx = 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = ifaces[i];
		/* a name comes from the VM's configuration: never let it
		 * walk out of the sysfs directory */
		if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 ||
		    strcmp(name, "..") == 0)
			return -EINVAL;
		char path[PATH_MAX];
		uint64_t r = 0, t = 0;
		snprintf(path, sizeof(path), "%s/%s/statistics/rx_bytes", sysfs_net, name);
		int e1 = history_read_u64(path, &r);
		snprintf(path, sizeof(path), "%s/%s/statistics/tx_bytes", sysfs_net, name);
		int e2 = history_read_u64(path, &t);
		if (e1 < 0 || e2 < 0) {
			ret = -ENOENT;
			continue;
		}
		*rx += r;
		*tx += t;
	}
	return ret;
}

/* One VM's history and the counters its rates come from. */
struct history_vm {
	char name[MODEL_NAME_MAX];
	pid_t pid; /* the monitor the counters belong to */
	struct history_ring *ring;
	struct history_counter cpu, rd, wr, rx, tx;
	double started_at; /* Unix seconds the monitor started; 0 = unknown */
	bool seen;       /* still in the VM list at the last sample */
	bool gap_marked; /* a not-running sample (NAN row) was pushed */
};

struct history {
	unsigned interval_s;
	size_t cap;
	pthread_mutex_t lock; /* guards everything below */
	struct history_ring *host;
	bool have_cpu;
	uint64_t cpu_total, cpu_idle;
	uint64_t btime; /* boot time, Unix seconds; 0 = unknown */
	struct history_vm **vms;
	size_t nr_vms, cap_vms;

	struct daemon *d; /* what the thread samples */
	pthread_t thread;
	bool running;
	bool stop;
	pthread_cond_t cond;
};

int history_new(unsigned interval_s, struct history **out)
{
	if (interval_s == 0)
		interval_s = HISTORY_DEFAULT_INTERVAL_S;
	struct history *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->interval_s = interval_s;
	h->cap = HISTORY_WINDOW_S / interval_s + 1;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* /proc/stat is larger than a page on many-CPU hosts: read enough of
	 * it to reach the btime line */
	char *buf = malloc(256 * 1024);
	if (buf && history_read_file("/proc/stat", buf, 256 * 1024) == 0)
		history_parse_btime(buf, &h->btime);
	free(buf);
	int r = history_ring_new(h->cap, HISTORY_HOST_NR_COLS, &h->host);
	if (r < 0) {
		history_free(h);
		return r;
	}
	*out = h;
	return 0;
}

static void history_vm_free(struct history_vm *v)
{
	if (!v)
		return;
	history_ring_free(v->ring);
	free(v);
}

void history_free(struct history *h)
{
	if (!h)
		return;
	history_stop(h);
	for (size_t i = 0; i < h->nr_vms; i++)
		history_vm_free(h->vms[i]);
	free(h->vms);
	history_ring_free(h->host);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}

unsigned history_interval(const struct history *h)
{
	return h->interval_s;
}

static double history_now(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Called with h->lock held. */
static struct history_vm *history_vm_find(struct history *h, const char *name, bool create)
{
	for (size_t i = 0; i < h->nr_vms; i++)
		if (strcmp(h->vms[i]->name, name) == 0)
			return h->vms[i];
	if (!create)
		return NULL;
	if (h->nr_vms == h->cap_vms) {
		size_t ncap = h->cap_vms ? h->cap_vms * 2 : 16;
		struct history_vm **n = realloc(h->vms, ncap * sizeof(*n));
		if (!n)
			return NULL;
		h->vms = n;
		h->cap_vms = ncap;
	}
	struct history_vm *v = calloc(1, sizeof(*v));
	if (!v || history_ring_new(h->cap, HISTORY_VM_NR_COLS, &v->ring) < 0) {
		free(v);
		return NULL;
	}
	snprintf(v->name, sizeof(v->name), "%s", name);
	h->vms[h->nr_vms++] = v;
	return v;
}

/* The tap devices of a VM (copied out of its record), for the network
 * graphs; history_net_read() sums their counters. */
static size_t history_vm_ifaces(struct daemon *d, const char *vm, char (*out)[IFNAMSIZ], size_t cap)
{
	size_t n = 0;
	struct vm *v = vm_get(d, vm);
	if (!v)
		return 0;
	struct vm_record *rec = malloc(sizeof(*rec));
	if (rec) {
		vm_snapshot(d, v, rec);
		for (unsigned k = 0; k < rec->nr_nics && n < cap; k++)
			if (rec->nics[k].tap[0])
				snprintf(out[n++], IFNAMSIZ, "%s", rec->nics[k].tap);
		free(rec);
	}
	vm_unref(d, v);
	return n;
}

struct history_target {
	char name[MODEL_NAME_MAX];
	pid_t pid;
	bool up;
};

static void history_sample_vm(struct history *h, struct daemon *d, const struct history_target *tg,
			      double wall, double mono)
{
	double row[HISTORY_VM_NR_COLS];
	for (unsigned c = 0; c < HISTORY_VM_NR_COLS; c++)
		row[c] = NAN;
	struct metrics_proc p = {0};
	bool have = tg->up && tg->pid > 0 && metrics_proc_read(tg->pid, &p) == 0;
	uint64_t rx = 0, tx = 0;
	bool have_net = false;
	char names[MODEL_MAX_NICS][IFNAMSIZ];
	const char *ifaces[MODEL_MAX_NICS];
	size_t nif = have ? history_vm_ifaces(d, tg->name, names, MODEL_MAX_NICS) : 0;
	for (size_t k = 0; k < nif; k++)
		ifaces[k] = names[k];
	if (nif)
		have_net = history_net_read("/sys/class/net", ifaces, nif, &rx, &tx) == 0;

	pthread_mutex_lock(&h->lock);
	struct history_vm *v = history_vm_find(h, tg->name, true);
	if (!v)
		goto out;
	v->seen = true;
	if (!have) {
		/* one row of nulls so the graph shows a gap, not a line
		 * drawn across the time the VM was off */
		if (v->ring->len && !v->gap_marked)
			history_ring_push(v->ring, wall, row);
		v->gap_marked = true;
		v->pid = 0;
		v->started_at = 0;
		goto out;
	}
	if (v->pid != tg->pid) {
		/* a new monitor process: its counters start from zero */
		history_counter_reset(&v->cpu);
		history_counter_reset(&v->rd);
		history_counter_reset(&v->wr);
		history_counter_reset(&v->rx);
		history_counter_reset(&v->tx);
		v->pid = tg->pid;
		v->started_at = 0;
		char path[64], buf[1024];
		uint64_t ticks;
		long hz = sysconf(_SC_CLK_TCK);
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)tg->pid);
		if (h->btime && hz > 0 && history_read_file(path, buf, sizeof(buf)) == 0 &&
		    history_parse_starttime(buf, &ticks) == 0)
			v->started_at = (double)h->btime + (double)ticks / (double)hz;
	}
	v->gap_marked = false;
	if (p.have_cpu)
		row[HISTORY_VM_CPU_PERCENT] = history_rate(&v->cpu, mono, p.cpu_seconds) * 100.0;
	if (p.have_rss)
		row[HISTORY_VM_MEMORY_BYTES] = (double)p.rss_bytes;
	if (p.have_io) {
		row[HISTORY_VM_DISK_READ_BPS] = history_rate(&v->rd, mono, (double)p.read_bytes);
		row[HISTORY_VM_DISK_WRITE_BPS] = history_rate(&v->wr, mono, (double)p.write_bytes);
	}
	if (have_net) {
		row[HISTORY_VM_NET_RX_BPS] = history_rate(&v->rx, mono, (double)rx);
		row[HISTORY_VM_NET_TX_BPS] = history_rate(&v->tx, mono, (double)tx);
	}
	history_ring_push(v->ring, wall, row);
out:
	pthread_mutex_unlock(&h->lock);
}

static void history_sample_host(struct history *h, struct daemon *d, double wall)
{
	double row[HISTORY_HOST_NR_COLS];
	char buf[4096];
	uint64_t total = 0, idle = 0, mt = 0, ma = 0;
	bool have_stat = false;
	for (unsigned c = 0; c < HISTORY_HOST_NR_COLS; c++)
		row[c] = NAN;
	if (history_read_file("/proc/stat", buf, sizeof(buf)) == 0 &&
	    history_parse_proc_stat(buf, &total, &idle) == 0)
		have_stat = true;
	if (history_read_file("/proc/meminfo", buf, sizeof(buf)) == 0 &&
	    metrics_parse_meminfo(buf, &mt, &ma) == 0) {
		row[HISTORY_HOST_MEMORY_USED_BYTES] = (double)(mt - (ma < mt ? ma : mt));
		row[HISTORY_HOST_MEMORY_TOTAL_BYTES] = (double)mt;
	}
	double load1;
	if (history_read_file("/proc/loadavg", buf, sizeof(buf)) == 0 &&
	    metrics_parse_loadavg(buf, &load1) == 0)
		row[HISTORY_HOST_LOAD1] = load1;
	struct statvfs sv;
	if (d && statvfs(d->cfg.data_dir, &sv) == 0) {
		double fr = (double)sv.f_frsize;
		row[HISTORY_HOST_DISK_TOTAL_BYTES] = (double)sv.f_blocks * fr;
		row[HISTORY_HOST_DISK_USED_BYTES] = (double)(sv.f_blocks - sv.f_bfree) * fr;
	}
	pthread_mutex_lock(&h->lock);
	if (have_stat) {
		if (h->have_cpu)
			row[HISTORY_HOST_CPU_PERCENT] =
				history_cpu_busy_percent(h->cpu_total, h->cpu_idle, total, idle);
		h->cpu_total = total;
		h->cpu_idle = idle;
		h->have_cpu = true;
	}
	history_ring_push(h->host, wall, row);
	pthread_mutex_unlock(&h->lock);
}

void history_sample(struct history *h, struct daemon *d)
{
	double wall = history_now(CLOCK_REALTIME), mono = history_now(CLOCK_MONOTONIC);
	struct history_target *tg = NULL;
	size_t n = 0;

	/* Copy what is needed under vms_lock, read /proc without it. */
	pthread_mutex_lock(&d->vms_lock);
	if (d->nr_vms)
		tg = calloc(d->nr_vms, sizeof(*tg));
	if (tg) {
		for (size_t i = 0; i < d->nr_vms; i++) {
			const struct vm_record *rec = &d->vms[i]->rec;
			snprintf(tg[i].name, sizeof(tg[i].name), "%s", rec->name);
			tg[i].pid = rec->pid;
			tg[i].up = rec->state == VM_STATE_RUNNING || rec->state == VM_STATE_PAUSED;
		}
		n = d->nr_vms;
	}
	pthread_mutex_unlock(&d->vms_lock);

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nr_vms; i++)
		h->vms[i]->seen = false;
	pthread_mutex_unlock(&h->lock);
	for (size_t i = 0; i < n; i++)
		history_sample_vm(h, d, &tg[i], wall, mono);
	free(tg);

	/* A VM that is no longer listed was deleted: drop its history, so a
	 * new VM of the same name starts with an empty one. */
	pthread_mutex_lock(&h->lock);
	size_t w = 0;
	for (size_t i = 0; i < h->nr_vms; i++) {
		if (h->vms[i]->seen)
			h->vms[w++] = h->vms[i];
		else
			history_vm_free(h->vms[i]);
	}
	h->nr_vms = w;
	pthread_mutex_unlock(&h->lock);

	history_sample_host(h, d, wall);
}

static void *history_thread(void *arg)
{
	struct history *h = arg;
	struct daemon *d = h->d;
	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		pthread_mutex_unlock(&h->lock);
		history_sample(h, d);
		pthread_mutex_lock(&h->lock);
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += h->interval_s;
		while (!h->stop &&
		       pthread_cond_timedwait(&h->cond, &h->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int history_start(struct history *h, struct daemon *d)
{
	h->d = d;
	h->stop = false;
	int r = pthread_create(&h->thread, NULL, history_thread, h);
	if (r)
		return -r;
	h->running = true;
	return 0;
}

void history_stop(struct history *h)
{
	if (!h || !h->running)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	h->running = false;
}

/* ?since= in Unix seconds (fractions allowed); replies 400 on a bad one. */
static int history_since(struct http_req *req, double *since)
{
	const char *s = http_query(req, "since");
	*since = 0;
	if (!s)
		return 0;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "query parameter since must be a time in Unix seconds (a "
				  "non-negative number such as 1764140000.5); got '%s'", s);
		return -EINVAL;
	}
	*since = v;
	return 0;
}

static json_t *history_reply(struct history *h, json_t *series)
{
	return json_pack("{s:i,s:i,s:o}", "interval_seconds", (int)h->interval_s,
			 "window_seconds", HISTORY_WINDOW_S, "samples", series);
}

void history_vm_get(struct http_req *req)
{
	struct daemon *d = req->d;
	double since;
	if (history_since(req, &since) < 0)
		return;
	struct vm *vm = http_vm_get(req); /* 404 also outside the token's project */
	if (!vm)
		return;
	vm_unref(d, vm);
	if (!d->history) {
		http_reply_errorf(req, 500, "internal", "the history sampler is not running");
		return;
	}
	struct history *h = d->history;
	pthread_mutex_lock(&h->lock);
	struct history_vm *v = history_vm_find(h, req->params[0], false);
	json_t *series = NULL;
	if (v) {
		series = history_ring_json(v->ring, history_vm_cols, since);
	} else {
		/* not sampled yet (created a moment ago): empty columns */
		struct history_ring empty = {.cap = 1, .ncols = HISTORY_VM_NR_COLS};
		series = history_ring_json(&empty, history_vm_cols, since);
	}
	pthread_mutex_unlock(&h->lock);
	json_t *body = series ? history_reply(h, series) : NULL;
	if (body)
		json_object_set_new(body, "name", json_string(req->params[0]));
	http_reply_json(req, 200, body);
}

void history_host_get(struct http_req *req)
{
	struct daemon *d = req->d;
	double since;
	if (history_since(req, &since) < 0)
		return;
	if (!d->history) {
		http_reply_errorf(req, 500, "internal", "the history sampler is not running");
		return;
	}
	struct history *h = d->history;
	pthread_mutex_lock(&h->lock);
	json_t *series = history_ring_json(h->host, history_host_cols, since);
	json_t *started = json_object();
	for (size_t i = 0; started && i < h->nr_vms; i++)
		if (h->vms[i]->started_at > 0)
			json_object_set_new(started, h->vms[i]->name,
					    json_real(round(h->vms[i]->started_at * 100) / 100));
	pthread_mutex_unlock(&h->lock);
	json_t *body = series ? history_reply(h, series) : NULL;
	if (body && started)
		json_object_set_new(body, "vm_started_at", started);
	else
		json_decref(started);
	http_reply_json(req, 200, body);
}
