/* Integration test of the qemu engine: boots real QEMU (TCG is enough, no
 * KVM or root needed) through the engine interface with a disk-less SeaBIOS
 * VM, whose serial console shows "SeaBIOS ... No bootable device". Checks
 * start, console, pause/resume/query, reset, force_stop, a kill -9 turning
 * into a CRASHED event, start failure cleanup with QEMU's own error text,
 * detach + attach, and commas in paths. Skips (77) without
 * qemu-system-x86_64. */
#include "daemon/engine/engine.h"

#include <errno.h>
#include <stdlib.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MIN_LEN(n) ((n) > 2000 ? 2000 : (n))

static const char UUID[] = "0e5a1c9d-7b3f-4c2a-9d8e-1f2a3b4c5d6e";

/* Events recorded by the callbacks. */
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cond = PTHREAD_COND_INITIALIZER;
static enum engine_state ev_states[64];
static char ev_reasons[64][512];
static int ev_count, ev_resets;

static void on_state(void *opaque, const char *vm_name, enum engine_state st, const char *reason)
{
	pthread_mutex_lock(&ev_lock);
	if (ev_count < 64) {
		ev_states[ev_count] = st;
		snprintf(ev_reasons[ev_count], sizeof(ev_reasons[0]), "%s", reason);
		ev_count++;
	}
	pthread_cond_broadcast(&ev_cond);
	pthread_mutex_unlock(&ev_lock);
}

static void on_reset(void *opaque, const char *vm_name)
{
	pthread_mutex_lock(&ev_lock);
	ev_resets++;
	pthread_cond_broadcast(&ev_cond);
	pthread_mutex_unlock(&ev_lock);
}

static const struct engine_events events = {
	.state_changed = on_state,
	.reset = on_reset,
};

static void events_clear(void)
{
	pthread_mutex_lock(&ev_lock);
	ev_count = 0;
	ev_resets = 0;
	pthread_mutex_unlock(&ev_lock);
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wait for an event with state st; copy its reason. */
static bool wait_state(enum engine_state st, int ms, char *reason, size_t cap)
{
	struct timespec ts;
	bool found = false;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&ev_lock);
	for (;;) {
		for (int i = 0; i < ev_count && !found; i++) {
			if (ev_states[i] == st) {
				found = true;
				if (reason)
					snprintf(reason, cap, "%s", ev_reasons[i]);
			}
		}
		if (found || pthread_cond_timedwait(&ev_cond, &ev_lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&ev_lock);
	return found;
}

static bool wait_reset(int ms)
{
	struct timespec ts;
	bool found;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&ev_lock);
	while (ev_resets == 0 && pthread_cond_timedwait(&ev_cond, &ev_lock, &ts) != ETIMEDOUT)
		;
	found = ev_resets > 0;
	pthread_mutex_unlock(&ev_lock);
	return found;
}

static char seen[1 << 20];
static size_t seen_len;

/* Forget what console_expect() has seen (it also forgets when *pos is 0). */
static void console_forget(void)
{
	seen_len = 0;
}

/* Collect console output from offset *pos until needle shows up in what was
 * collected since the last console_forget(). */
static bool console_expect(struct engine *e, struct engine_vm *vm, uint64_t *pos,
			   const char *needle, int ms)
{
	struct timespec t0, t;

	if (*pos == 0)
		seen_len = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		char buf[4096];
		size_t len;
		uint64_t start, next;

		CHECK_EQ_INT(e->ops->console_read(vm, *pos, buf, sizeof(buf), &len, &start, &next), 0);
		if (len > 0 && seen_len + len < sizeof(seen) - 1) {
			memcpy(seen + seen_len, buf, len);
			seen_len += len;
			seen[seen_len] = '\0';
		}
		*pos = next;
		if (memmem(seen, seen_len, needle, strlen(needle)))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms) {
			fprintf(stderr, "  console has no '%s' after %d ms; got: %.*s\n", needle, ms,
				(int)MIN_LEN(seen_len), seen);
			return false;
		}
		if (len == 0)
			e->ops->console_wait(vm, *pos, 500);
	}
}

static char run_root[] = "/tmp/vessel-eng-XXXXXX";
static bool run_root_made;

static void spec_init(struct engine_vm_spec *s, const char *sub)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "itest-%s", sub);
	snprintf(s->uuid, sizeof(s->uuid), "%s", UUID);
	s->vcpus = 1;
	s->memory_mib = 128;
	s->firmware = ENGINE_FW_BIOS;
	snprintf(s->run_dir, sizeof(s->run_dir), "%s/%s", run_root, sub);
	mkdir(s->run_dir, 0700);
}

static bool path_exists(const char *dir, const char *file)
{
	char p[4200];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	return stat(p, &st) == 0;
}

static bool pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

static struct engine *engine_or_skip(void)
{
	struct engine *e = NULL;
	struct engine_host_info h;

	if (engine_qemu_new(NULL, &e) < 0)
		return NULL;
	if (e->ops->host_info(e, &h) < 0) {
		printf("     host_info: %s\n", h.warning);
		engine_free(e);
		return NULL;
	}
	if (!run_root_made) {
		if (!mkdtemp(run_root)) {
			printf("     mkdtemp %s: %s\n", run_root, strerror(errno));
			engine_free(e);
			return NULL;
		}
		run_root_made = true;
	}
	return e;
}



TEST(host_info)
{
	struct engine *e = engine_or_skip();
	struct engine_host_info h;

	if (!e)
		SKIP("qemu-system-x86_64 is not installed");
	CHECK_EQ_INT(e->ops->host_info(e, &h), 0);
	CHECK(h.qemu_version[0] >= '1' && h.qemu_version[0] <= '9');
	CHECK(strcmp(h.accel, "kvm") == 0 || strcmp(h.accel, "tcg") == 0);
	if (!h.kvm)
		CHECK(h.warning[0] != '\0');
	printf("     host: accel %s, QEMU %s%s%s\n", h.accel, h.qemu_version,
	       h.warning[0] ? "; " : "", h.warning);
	engine_free(e);
}

TEST(lifecycle)
{
	struct engine *e = engine_or_skip();
	struct engine_vm_spec s;
	struct engine_vm *vm = NULL;
	enum engine_state st;
	char *err = NULL, reason[512];
	uint64_t pos = 0;
	pid_t pid;

	if (!e)
		SKIP("qemu-system-x86_64 is not installed");
	spec_init(&s, "life");
	events_clear();
	CHECK_EQ_INT(e->ops->start(e, &s, &events, &vm, &err), 0);
	if (!vm) {
		fprintf(stderr, "  start: %s\n", err ? err : "?");
		free(err);
		engine_free(e);
		return;
	}
	pid = e->ops->pid(vm);
	CHECK(pid > 0 && pid_alive(pid));
	CHECK(getsid(pid) == pid); /* its own session */
	CHECK_EQ_INT(e->ops->query(vm, &st, &err), 0);
	CHECK_EQ_INT(st, ENGINE_STATE_RUNNING);

	/* SeaBIOS prints its banner and, with no disk, gives up booting. */
	CHECK(console_expect(e, vm, &pos, "SeaBIOS", 30000));
	CHECK(console_expect(e, vm, &pos, "No bootable device", 60000));
	CHECK_EQ_INT(e->ops->console_write(vm, "\r", 1), 0);

	CHECK_EQ_INT(e->ops->pause(vm, &err), 0);
	CHECK_EQ_INT(e->ops->query(vm, &st, &err), 0);
	CHECK_EQ_INT(st, ENGINE_STATE_PAUSED);
	CHECK(wait_state(ENGINE_STATE_PAUSED, 5000, NULL, 0));
	CHECK_EQ_INT(e->ops->resume(vm, &err), 0);
	CHECK_EQ_INT(e->ops->query(vm, &st, &err), 0);
	CHECK_EQ_INT(st, ENGINE_STATE_RUNNING);
	CHECK(wait_state(ENGINE_STATE_RUNNING, 5000, NULL, 0));

	/* A reset runs the firmware again: event plus a second banner. */
	console_forget();
	CHECK_EQ_INT(e->ops->reset(vm, &err), 0);
	CHECK(wait_reset(5000));
	CHECK(console_expect(e, vm, &pos, "SeaBIOS", 30000));

	/* ACPI power button: accepted (SeaBIOS ignores it). */
	CHECK_EQ_INT(e->ops->powerdown(vm, &err), 0);

	CHECK_EQ_INT(e->ops->force_stop(vm, &err), 0);
	CHECK(wait_state(ENGINE_STATE_STOPPED, 0, reason, sizeof(reason)));
	CHECK_STR(reason, "stopped by request");
	CHECK(!pid_alive(pid));
	CHECK_EQ_INT(e->ops->query(vm, &st, &err), 0);
	CHECK_EQ_INT(st, ENGINE_STATE_STOPPED);
	CHECK_EQ_INT(e->ops->pause(vm, &err), -ESRCH);
	CHECK(err && strstr(err, "not running"));
	free(err);
	err = NULL;
	CHECK_EQ_INT(e->ops->console_wait(vm, pos + 1000000, 100), -ESRCH);
	/* The console stays readable after the VM stopped. */
	{
		char buf[16];
		size_t len;
		uint64_t start, next;

		CHECK_EQ_INT(e->ops->console_read(vm, 0, buf, sizeof(buf), &len, &start, &next), 0);
		CHECK(len > 0);
	}
	e->ops->release(vm);
	CHECK(!path_exists(s.run_dir, "qmp.sock"));
	CHECK(!path_exists(s.run_dir, "serial.sock"));
	CHECK(path_exists(s.run_dir, "qemu.log"));
	CHECK(path_exists(s.run_dir, "console.log"));
	engine_free(e);
}

TEST(kill9_is_crash)
{
	struct engine *e = engine_or_skip();
	struct engine_vm_spec s;
	struct engine_vm *vm = NULL;
	enum engine_state st;
	char *err = NULL, reason[512] = "";
	pid_t pid;

	if (!e)
		SKIP("qemu-system-x86_64 is not installed");
	spec_init(&s, "kill");
	events_clear();
	CHECK_EQ_INT(e->ops->start(e, &s, &events, &vm, &err), 0);
	if (!vm) {
		fprintf(stderr, "  start: %s\n", err ? err : "?");
		free(err);
		engine_free(e);
		return;
	}
	pid = e->ops->pid(vm);
	CHECK_EQ_INT(kill(pid, SIGKILL), 0);
	CHECK(wait_state(ENGINE_STATE_CRASHED, 10000, reason, sizeof(reason)));
	CHECK_STR(reason, "QEMU exited with signal 9 (Killed)");
	CHECK_EQ_INT(e->ops->query(vm, &st, &err), 0);
	CHECK_EQ_INT(st, ENGINE_STATE_CRASHED);
	/* Reaped by the engine: no zombie left. */
	CHECK(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD);
	CHECK_EQ_INT(e->ops->force_stop(vm, &err), 0);
	e->ops->release(vm);
	CHECK(!path_exists(s.run_dir, "qmp.sock"));

	/* SIGTERM from someone else: QEMU shuts down cleanly (QMP SHUTDOWN
	 * "host-signal", exit 0), but nobody asked vessel to stop the VM. */
	vm = NULL;
	events_clear();
	CHECK_EQ_INT(e->ops->start(e, &s, &events, &vm, &err), 0);
	if (!vm) {
		free(err);
		engine_free(e);
		return;
	}
	CHECK_EQ_INT(kill(e->ops->pid(vm), SIGTERM), 0);
	CHECK(wait_state(ENGINE_STATE_CRASHED, 10000, reason, sizeof(reason)));
	CHECK_STR(reason, "QEMU was terminated by a signal from outside vessel");
	e->ops->release(vm);
	engine_free(e);
}

TEST(start_failure_reports_qemu_error)
{
	struct engine *e = engine_or_skip();
	struct engine_vm_spec s;
	struct engine_vm *vm = NULL;
	char *err = NULL;

	if (!e)
		SKIP("qemu-system-x86_64 is not installed");
	spec_init(&s, "fail");
	s.nr_disks = 1;
	snprintf(s.disks[0].path, sizeof(s.disks[0].path), "%.4000s/missing.qcow2", s.run_dir);
	snprintf(s.disks[0].format, sizeof(s.disks[0].format), "qcow2");
	events_clear();
	CHECK(e->ops->start(e, &s, &events, &vm, &err) < 0);
	CHECK(vm == NULL);
	CHECK(err != NULL);
	if (err) {
		printf("     error: %s\n", err);
		/* QEMU's own words, not just an errno. */
		CHECK(strstr(err, "missing.qcow2") != NULL);
		CHECK(strstr(err, "No such file or directory") != NULL);
		CHECK(strstr(err, "warning") == NULL);
	}
	free(err);
	CHECK(!path_exists(s.run_dir, "qmp.sock"));
	CHECK(!path_exists(s.run_dir, "serial.sock"));
	CHECK(!path_exists(s.run_dir, "qemu.pid"));
	CHECK_EQ_INT(ev_count, 0);

	/* A missing kernel for direct boot: also QEMU's text. */
	spec_init(&s, "fail2");
	s.firmware = ENGINE_FW_KERNEL;
	snprintf(s.kernel, sizeof(s.kernel), "/nonexistent/vmlinuz");
	err = NULL;
	CHECK(e->ops->start(e, &s, &events, &vm, &err) < 0);
	CHECK(err && strstr(err, "vmlinuz"));
	if (err)
		printf("     error: %s\n", err);
	free(err);
	engine_free(e);
}

TEST(detach_and_attach)
{
	struct engine *e = engine_or_skip();
	struct engine_vm_spec s;
	struct engine_vm *vm = NULL;
	enum engine_state st;
	char *err = NULL, reason[512];
	uint64_t pos = 0;
	pid_t pid;

	if (!e)
		SKIP("qemu-system-x86_64 is not installed");
	spec_init(&s, "att");
	events_clear();
	CHECK_EQ_INT(e->ops->start(e, &s, &events, &vm, &err), 0);
	if (!vm) {
		fprintf(stderr, "  start: %s\n", err ? err : "?");
		free(err);
		engine_free(e);
		return;
	}
	pid = e->ops->pid(vm);
	CHECK(console_expect(e, vm, &pos, "SeaBIOS", 30000));
	pos = 0;
	/* What vesseld does when it shuts down: release a running VM. (A VM
	 * paused at detach time is not used here: QEMU 7.2 then sometimes
	 * sends no more serial output to the new connection, see the
	 * engine report.) */
	e->ops->release(vm);
	vm = NULL;
	CHECK(pid_alive(pid));
	CHECK(path_exists(s.run_dir, "qmp.sock"));

	/* A second start while the first QEMU lives would share its disks
	 * and sockets: refused, and the running one is left alone. */
	CHECK_EQ_INT(e->ops->start(e, &s, &events, &vm, &err), -EBUSY);
	CHECK(vm == NULL);
	CHECK(err && strstr(err, "already running"));
	free(err);
	err = NULL;
	CHECK(path_exists(s.run_dir, "qmp.sock"));
	CHECK(pid_alive(pid));

	/* The wrong uuid must not attach to someone else's QEMU. */
	{
		struct engine_vm_spec other = s;

		other.uuid[0] = other.uuid[0] == 'a' ? 'b' : 'a';
		CHECK_EQ_INT(e->ops->attach(e, &other, &events, &vm, &err), -ESRCH);
		CHECK(vm == NULL);
		free(err);
		err = NULL;
	}

	CHECK_EQ_INT(e->ops->attach(e, &s, &events, &vm, &err), 0);
	if (!vm) {
		fprintf(stderr, "  attach: %s\n", err ? err : "?");
		free(err);
		kill(pid, SIGKILL);
		engine_free(e);
		return;
	}
	CHECK_EQ_INT(e->ops->pid(vm), pid);
	/* The console history before the detach came back from console.log. */
	CHECK(console_expect(e, vm, &pos, "SeaBIOS", 1000));
	console_forget();
	CHECK_EQ_INT(e->ops->query(vm, &st, &err), 0);
	CHECK_EQ_INT(st, ENGINE_STATE_RUNNING);
	CHECK_EQ_INT(e->ops->pause(vm, &err), 0);
	CHECK(wait_state(ENGINE_STATE_PAUSED, 5000, NULL, 0));
	CHECK_EQ_INT(e->ops->resume(vm, &err), 0);
	CHECK_EQ_INT(e->ops->reset(vm, &err), 0);
	CHECK(console_expect(e, vm, &pos, "SeaBIOS", 30000));
	events_clear();
	CHECK_EQ_INT(e->ops->force_stop(vm, &err), 0);
	CHECK(wait_state(ENGINE_STATE_STOPPED, 1000, reason, sizeof(reason)));
	CHECK(!pid_alive(pid));
	e->ops->release(vm);
	vm = NULL;

	/* Gone now: attach says so. */
	CHECK_EQ_INT(e->ops->attach(e, &s, &events, &vm, &err), -ESRCH);
	CHECK(err != NULL);
	free(err);
	engine_free(e);
}

/* Commas in the VM name, run directory and disk path reach QEMU intact. */
TEST(commas_in_paths)
{
	struct engine *e = engine_or_skip();
	struct engine_vm_spec s;
	struct engine_vm *vm = NULL;
	char *err = NULL, cmd[8400];
	uint64_t pos = 0;

	if (!e)
		SKIP("qemu-system-x86_64 is not installed");
	spec_init(&s, "c,d");
	snprintf(s.name, sizeof(s.name), "it,commas");
	s.nr_disks = 1;
	snprintf(s.disks[0].path, sizeof(s.disks[0].path), "%.4000s/disk,file=x.qcow2", s.run_dir);
	snprintf(s.disks[0].format, sizeof(s.disks[0].format), "qcow2");
	snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 '%s' 16M", s.disks[0].path);
	if (system(cmd) != 0)
		SKIP("qemu-img is not installed");
	CHECK_EQ_INT(e->ops->start(e, &s, &events, &vm, &err), 0);
	if (!vm) {
		fprintf(stderr, "  start: %s\n", err ? err : "?");
		free(err);
		engine_free(e);
		return;
	}
	/* SeaBIOS finds the (empty) virtio disk and tries it. */
	CHECK(console_expect(e, vm, &pos, "SeaBIOS", 30000));
	CHECK_EQ_INT(e->ops->force_stop(vm, &err), 0);
	e->ops->release(vm);
	engine_free(e);
}

/* Write a 1 MiB raw disk whose boot sector is code (SeaBIOS boots it). */
static bool boot_disk_write(const char *path, const unsigned char *code, size_t len)
{
	unsigned char sector[512] = {0};
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return false;
	memcpy(sector, code, len);
	sector[510] = 0x55;
	sector[511] = 0xaa;
	ok = fwrite(sector, 1, sizeof(sector), f) == sizeof(sector) &&
	     ftruncate(fileno(f), 1024 * 1024) == 0;
	return fclose(f) == 0 && ok;
}

/* Boot a VM from a boot sector and wait for its final state. */
static void boot_sector_run(const char *sub, const unsigned char *code, size_t len,
			    enum engine_state want, const char *want_reason)
{
	struct engine *e = engine_or_skip();
	struct engine_vm_spec s;
	struct engine_vm *vm = NULL;
	char *err = NULL, reason[512] = "";

	if (!e)
		SKIP("qemu-system-x86_64 is not installed");
	spec_init(&s, sub);
	s.nr_disks = 1;
	snprintf(s.disks[0].path, sizeof(s.disks[0].path), "%.4000s/boot.img", s.run_dir);
	snprintf(s.disks[0].format, sizeof(s.disks[0].format), "raw");
	CHECK(boot_disk_write(s.disks[0].path, code, len));
	events_clear();
	CHECK_EQ_INT(e->ops->start(e, &s, &events, &vm, &err), 0);
	if (!vm) {
		fprintf(stderr, "  start: %s\n", err ? err : "?");
		free(err);
		engine_free(e);
		return;
	}
	CHECK(wait_state(want, 60000, reason, sizeof(reason)));
	CHECK_STR(reason, want_reason);
	/* Exactly one final state. */
	CHECK(!wait_state(want == ENGINE_STATE_STOPPED ? ENGINE_STATE_CRASHED : ENGINE_STATE_STOPPED,
			  10, NULL, 0));
	e->ops->release(vm);
	engine_free(e);
}

/* A guest that powers itself off must end as STOPPED, not CRASHED. The
 * "guest" is a boot sector that writes SLP_EN|SLP_TYP=0 (soft off) to the
 * ICH9 PM1a control register, at 0x604 because SeaBIOS puts the q35 PM
 * base at 0x600 (ACPI 6.4 section 4.8.3.2.1, PM1 control). */
TEST(guest_poweroff_is_stopped)
{
	static const unsigned char code[] = {
		0xba, 0x04, 0x06, /* mov dx, 0x604 */
		0xb8, 0x00, 0x20, /* mov ax, 0x2000 (SLP_EN, type 0) */
		0xef,             /* out dx, ax */
		0xf4,             /* hlt */
		0xeb, 0xfd,       /* jmp hlt */
	};

	boot_sector_run("off", code, sizeof(code), ENGINE_STATE_STOPPED, "guest powered off");
}

/* A guest kernel panic reported through pvpanic (write bit 0, "guest
 * panicked", to port 0x505) is a crash, although QEMU then exits 0. */
TEST(guest_panic_is_crash)
{
	static const unsigned char code[] = {
		0xba, 0x05, 0x05, /* mov dx, 0x505 */
		0xb0, 0x01,       /* mov al, 1 (PVPANIC_PANICKED) */
		0xee,             /* out dx, al */
		0xf4,             /* hlt */
		0xeb, 0xfd,       /* jmp hlt */
	};

	boot_sector_run("panic", code, sizeof(code), ENGINE_STATE_CRASHED, "guest kernel panicked");
}

struct stress_arg {
	struct engine *e;
	struct engine_vm *vm;
	int failures;
};

static void *stress_thread(void *p)
{
	struct stress_arg *a = p;

	for (int i = 0; i < 100; i++) {
		enum engine_state st;
		char *err = NULL, buf[256];
		size_t len;
		uint64_t start, next;

		if (a->e->ops->query(a->vm, &st, &err) < 0)
			a->failures++;
		free(err);
		a->e->ops->console_read(a->vm, 0, buf, sizeof(buf), &len, &start, &next);
	}
	return NULL;
}

/* Ops from several API threads at once: every command gets its own reply
 * (ids), nothing deadlocks, pause/resume interleave with queries. */
TEST(concurrent_ops)
{
	struct engine *e = engine_or_skip();
	struct engine_vm_spec s;
	struct engine_vm *vm = NULL;
	struct stress_arg args[3];
	pthread_t th[3];
	char *err = NULL;

	if (!e)
		SKIP("qemu-system-x86_64 is not installed");
	spec_init(&s, "conc");
	events_clear();
	CHECK_EQ_INT(e->ops->start(e, &s, &events, &vm, &err), 0);
	if (!vm) {
		free(err);
		engine_free(e);
		return;
	}
	for (int i = 0; i < 3; i++) {
		args[i] = (struct stress_arg){.e = e, .vm = vm};
		CHECK_EQ_INT(pthread_create(&th[i], NULL, stress_thread, &args[i]), 0);
	}
	for (int i = 0; i < 20; i++) {
		CHECK_EQ_INT(e->ops->pause(vm, &err), 0);
		CHECK_EQ_INT(e->ops->resume(vm, &err), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(args[i].failures, 0);
	}
	CHECK_EQ_INT(e->ops->force_stop(vm, &err), 0);
	e->ops->release(vm);
	engine_free(e);
}

/* UEFI: OVMF code read-only, a per-VM variable store copied on first
 * start; OVMF's boot manager writes to the serial console. */
TEST(uefi_boots)
{
	struct engine *e = engine_or_skip();
	struct engine_vm_spec s;
	struct engine_vm *vm = NULL;
	char *err = NULL;
	uint64_t pos = 0;

	if (!e)
		SKIP("qemu-system-x86_64 is not installed");
	if (access("/usr/share/OVMF/OVMF_CODE_4M.fd", R_OK) < 0)
		SKIP("OVMF is not installed (package ovmf)");
	spec_init(&s, "uefi");
	s.firmware = ENGINE_FW_UEFI;
	s.memory_mib = 256;
	CHECK_EQ_INT(e->ops->start(e, &s, &events, &vm, &err), 0);
	if (!vm) {
		fprintf(stderr, "  start: %s\n", err ? err : "?");
		free(err);
		engine_free(e);
		return;
	}
	CHECK(path_exists(s.run_dir, "OVMF_VARS.fd"));
	CHECK(console_expect(e, vm, &pos, "BdsDxe", 120000));
	CHECK_EQ_INT(e->ops->force_stop(vm, &err), 0);
	e->ops->release(vm);
	engine_free(e);
}

/* A monitor that exits with a status: the reason carries the status and
 * the last line it wrote to stderr. The "monitor" is a shell wrapper that
 * runs QEMU and then fails, so killing the real QEMU (its pid is in the pid
 * file) makes the wrapper print an error and exit 1. */
TEST(exit_status_is_crash)
{
	struct engine *e = engine_or_skip(), *w = NULL;
	struct engine_vm_spec s;
	struct engine_vm *vm = NULL;
	char *err = NULL, reason[512] = "", wrapper[4200], pidpath[4200], buf[32] = "";
	FILE *f;
	pid_t qpid = 0;

	if (!e)
		SKIP("qemu-system-x86_64 is not installed");
	engine_free(e);
	spec_init(&s, "status");
	snprintf(wrapper, sizeof(wrapper), "%.4000s/fake-qemu", s.run_dir);
	f = fopen(wrapper, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fprintf(f, "#!/bin/sh\nqemu-system-x86_64 \"$@\"\necho 'fake-qemu: the device fell over' >&2\nexit 1\n");
	fclose(f);
	CHECK_EQ_INT(chmod(wrapper, 0700), 0);
	CHECK_EQ_INT(engine_qemu_new(wrapper, &w), 0);
	events_clear();
	CHECK_EQ_INT(w->ops->start(w, &s, &events, &vm, &err), 0);
	if (!vm) {
		fprintf(stderr, "  start: %s\n", err ? err : "?");
		free(err);
		engine_free(w);
		return;
	}
	snprintf(pidpath, sizeof(pidpath), "%.4000s/qemu.pid", s.run_dir);
	f = fopen(pidpath, "r");
	CHECK(f != NULL);
	if (f) {
		CHECK(fgets(buf, sizeof(buf), f) != NULL);
		fclose(f);
		qpid = (pid_t)atoi(buf);
	}
	CHECK(qpid > 0 && qpid != w->ops->pid(vm));
	if (qpid > 0)
		kill(qpid, SIGKILL);
	CHECK(wait_state(ENGINE_STATE_CRASHED, 10000, reason, sizeof(reason)));
	CHECK_STR(reason, "QEMU exited with status 1: fake-qemu: the device fell over");
	w->ops->release(vm);
	engine_free(w);
}

static int cleanup_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Last: remove the run directories. */
TEST(cleanup)
{
	if (!run_root_made)
		SKIP("no run directory was made");
	CHECK_EQ_INT(nftw(run_root, cleanup_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

HARNESS_MAIN
