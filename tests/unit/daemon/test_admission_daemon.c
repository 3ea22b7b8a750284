/* test_admission_daemon: admission inside vesseld with the engine test
 * double: many concurrent starts against a small capacity admit exactly
 * what fits (the check and the state change share one critical section),
 * creates racing for a project's last slot likewise, and autostart at
 * daemon start runs VMs in priority order (P0 first, then by name). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/store.h"
#include "fake_engine.h"
#include "harness.h"

static struct daemon *d;
static struct daemon_config cfg;
static char dir[PATH_MAX];

static void start_daemon(void)
{
	char *err = NULL;
	CHECK_EQ_INT(daemon_new(&cfg, fake_engine(), &d, &err), 0);
	if (d)
		CHECK_EQ_INT(daemon_start(d, &err), 0);
	if (err)
		fprintf(stderr, "  %s\n", err);
	free(err);
}

static void stop_daemon(void)
{
	daemon_stop(d);
	daemon_free(d);
	d = NULL;
}

static int create(const char *name, unsigned vcpus, const char *project, unsigned prio,
		  bool autostart, struct daemon_err *e)
{
	struct vm_record rec = {.vcpus = vcpus, .memory_mib = 16, .priority = prio,
				.autostart = autostart, .firmware = ENGINE_FW_BIOS};
	snprintf(rec.name, sizeof(rec.name), "%s", name);
	snprintf(rec.project, sizeof(rec.project), "%s", project);
	return vm_create(d, &rec, e);
}

TEST(setup)
{
	snprintf(dir, sizeof(dir), "/tmp/vessel-test-admit-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%.200s/data", dir);
	cfg.http_threads = 1;
	cfg.capacity_cpus = 2;
	cfg.cpu_ratio = 2; /* 4 vCPUs allocatable */
	cfg.capacity_memory_mib = 4096;
	start_daemon();
	CHECK(d != NULL);
	if (d)
		CHECK_EQ_INT(admission_allocatable(d->capacity.capacity[ADMISSION_DIM_VCPUS],
						   d->capacity.cpu_ratio), 4);
}

#define RACERS 10

struct racer {
	pthread_barrier_t *go;
	char name[16];
	int r;
	char code[32];
};

static void *race_start(void *arg)
{
	struct racer *x = arg;
	struct daemon_err e = {0};
	struct vm *vm = vm_get(d, x->name);
	pthread_barrier_wait(x->go);
	x->r = vm ? vm_start(d, vm, &e) : -ENOENT;
	snprintf(x->code, sizeof(x->code), "%s", e.code ? e.code : "");
	vm_unref(d, vm);
	return NULL;
}

TEST(concurrent_starts_admit_exactly_what_fits)
{
	if (!d)
		SKIP("no daemon");
	struct daemon_err e = {0};
	struct racer x[RACERS];
	for (int i = 0; i < RACERS; i++) {
		snprintf(x[i].name, sizeof(x[i].name), "r%d", i);
		CHECK_EQ_INT(create(x[i].name, 1, "default", 2, false, &e), 0);
	}
	for (int round = 0; round < 20; round++) {
		pthread_barrier_t go;
		pthread_t th[RACERS];
		pthread_barrier_init(&go, NULL, RACERS);
		for (int i = 0; i < RACERS; i++) {
			x[i].go = &go;
			pthread_create(&th[i], NULL, race_start, &x[i]);
		}
		int ok = 0, refused = 0;
		for (int i = 0; i < RACERS; i++) {
			pthread_join(th[i], NULL);
			if (x[i].r == 0)
				ok++;
			else if (strcmp(x[i].code, "insufficient_capacity") == 0)
				refused++;
		}
		pthread_barrier_destroy(&go);
		CHECK_EQ_INT(ok, 4);
		CHECK_EQ_INT(refused, RACERS - 4);
		pthread_mutex_lock(&d->vms_lock);
		struct admission_amount used;
		vm_usage_host_locked(d, NULL, &used);
		pthread_mutex_unlock(&d->vms_lock);
		CHECK_EQ_INT(used.v[ADMISSION_DIM_VCPUS], 4);
		for (int i = 0; i < RACERS; i++) {
			struct vm *vm = vm_get(d, x[i].name);
			if (vm && x[i].r == 0)
				CHECK_EQ_INT(vm_force_stop(d, vm, &e), 0);
			vm_unref(d, vm);
		}
	}
	for (int i = 0; i < RACERS; i++) {
		struct vm *vm = vm_get(d, x[i].name);
		if (vm)
			vm_delete(d, vm, true, &e);
		vm_unref(d, vm);
	}
}

struct creator {
	pthread_barrier_t *go;
	char name[16];
	int r;
};

static void *race_create(void *arg)
{
	struct creator *c = arg;
	struct daemon_err e = {0};
	pthread_barrier_wait(c->go);
	c->r = create(c->name, 1, "team", 2, false, &e);
	return NULL;
}

TEST(concurrent_creates_respect_the_quota)
{
	if (!d)
		SKIP("no daemon");
	struct project_record p = {.max_vms = 3, .max_vcpus = -1, .max_memory_mib = -1,
				   .max_disk_gib = -1};
	snprintf(p.name, sizeof(p.name), "team");
	CHECK_EQ_INT(store_project_put(d->store, &p), 0);
	/* the registry reads projects at start: restart to pick it up */
	stop_daemon();
	start_daemon();
	if (!d)
		return;
	pthread_barrier_t go;
	pthread_t th[RACERS];
	struct creator c[RACERS];
	pthread_barrier_init(&go, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		c[i].go = &go;
		snprintf(c[i].name, sizeof(c[i].name), "t%d", i);
		pthread_create(&th[i], NULL, race_create, &c[i]);
	}
	int ok = 0;
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		ok += c[i].r == 0;
	}
	pthread_barrier_destroy(&go);
	CHECK_EQ_INT(ok, 3);
	pthread_mutex_lock(&d->vms_lock);
	CHECK_EQ_INT(vm_count_project_locked(d, "team"), 3);
	pthread_mutex_unlock(&d->vms_lock);
	struct daemon_err e = {0};
	for (int i = 0; i < RACERS; i++) {
		struct vm *vm = vm_get(d, c[i].name);
		if (vm)
			vm_delete(d, vm, true, &e);
		vm_unref(d, vm);
	}
}

TEST(autostart_in_priority_order)
{
	if (!d)
		SKIP("no daemon");
	struct daemon_err e = {0};
	/* 4 vCPUs allocatable: the P0 and P1 VMs (1 vCPU each) and the P2
	 * VM (2 vCPUs) fit; the P4 one does not, because it comes last. */
	CHECK_EQ_INT(create("zz-p0", 1, "default", 0, true, &e), 0);
	CHECK_EQ_INT(create("aa-p4", 1, "default", 4, true, &e), 0);
	CHECK_EQ_INT(create("bb-p2", 2, "default", 2, true, &e), 0);
	CHECK_EQ_INT(create("ab-p1", 1, "default", 1, true, &e), 0);
	CHECK_EQ_INT(create("ac-p1", 1, "default", 1, false, &e), 0); /* not autostart */
	stop_daemon();
	unsigned before = __atomic_load_n(&fake_starts, __ATOMIC_RELAXED);
	start_daemon();
	if (!d)
		return;
	/* the autostart thread runs them one after the other */
	for (int i = 0; i < 200 && __atomic_load_n(&fake_starts, __ATOMIC_RELAXED) < before + 3; i++)
		usleep(10 * 1000);
	usleep(100 * 1000);
	CHECK_EQ_INT(__atomic_load_n(&fake_starts, __ATOMIC_RELAXED), before + 3);
	if (before + 3 <= FAKE_START_LOG) {
		CHECK_STR(fake_start_log[before], "zz-p0");
		CHECK_STR(fake_start_log[before + 1], "ab-p1");
		CHECK_STR(fake_start_log[before + 2], "bb-p2");
	}
	struct vm *vm = vm_get(d, "aa-p4");
	struct vm_record r;
	if (vm) {
		vm_snapshot(d, vm, &r);
		CHECK_EQ_INT(r.state, VM_STATE_STOPPED); /* refused: no capacity left */
		vm_unref(d, vm);
	}
}

TEST(teardown)
{
	if (d)
		stop_daemon();
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

HARNESS_MAIN
