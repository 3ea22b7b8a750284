/* fake_engine: a test double of the engine interface (engine.h) for the
 * daemon's API tests: no QEMU, state in memory, a console that echoes
 * input, and hooks to make the guest crash, ignore the power button or
 * fail to start. Used only by tests, never by the shipped vesseld. */
#include "fake_engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct engine_vm {
	char name[64];
	const struct engine_events *ev;
	enum engine_state state;
	pid_t pid;
	pthread_mutex_t lock;
	char console[8192];
	size_t clen;
	bool gone;
	uint64_t memory_mib;
};

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static struct engine_vm *fake_vms[64];
bool fake_honour_powerdown = true;
unsigned fake_starts;
bool fake_pid_self;
char fake_start_log[FAKE_START_LOG][64];

static void fake_console_add(struct engine_vm *vm, const void *data, size_t len)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->clen + len <= sizeof(vm->console)) {
		memcpy(vm->console + vm->clen, data, len);
		vm->clen += len;
	}
	pthread_mutex_unlock(&vm->lock);
}

static int fake_host_info(struct engine *e, struct engine_host_info *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->accel, sizeof(out->accel), "tcg");
	snprintf(out->warning, sizeof(out->warning), "fake engine: no hardware virtualization");
	snprintf(out->qemu_version, sizeof(out->qemu_version), "0.0.0-fake");
	return 0;
}

static int fake_start(struct engine *e, const struct engine_vm_spec *spec,
		      const struct engine_events *ev, struct engine_vm **out, char **err)
{
	if (strncmp(spec->name, "fail", 4) == 0) {
		*err = strdup("qemu-system-x86_64: -drive file=x: Could not open 'x': fake failure");
		return -EIO;
	}
	struct engine_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	snprintf(vm->name, sizeof(vm->name), "%s", spec->name);
	vm->ev = ev;
	vm->state = ENGINE_STATE_RUNNING;
	unsigned nth = __atomic_add_fetch(&fake_starts, 1, __ATOMIC_RELAXED);
	vm->pid = fake_pid_self ? getpid() : 40000 + (pid_t)nth;
	vm->memory_mib = spec->memory_mib;
	if (nth <= FAKE_START_LOG)
		snprintf(fake_start_log[nth - 1], sizeof(fake_start_log[0]), "%s", spec->name);
	pthread_mutex_init(&vm->lock, NULL);
	fake_console_add(vm, "boot ok\n", 8);
	pthread_mutex_lock(&fake_lock);
	for (size_t i = 0; i < 64; i++)
		if (!fake_vms[i]) {
			fake_vms[i] = vm;
			break;
		}
	pthread_mutex_unlock(&fake_lock);
	*out = vm;
	return 0;
}

static int fake_attach(struct engine *e, const struct engine_vm_spec *spec,
		       const struct engine_events *ev, struct engine_vm **out, char **err)
{
	return -ESRCH; /* nothing survives a fake restart */
}

static void fake_emit(struct engine_vm *vm, enum engine_state st, const char *reason)
{
	pthread_mutex_lock(&vm->lock);
	bool was_gone = vm->gone;
	vm->state = st;
	if (st == ENGINE_STATE_STOPPED || st == ENGINE_STATE_CRASHED)
		vm->gone = true;
	pthread_mutex_unlock(&vm->lock);
	if (!was_gone && vm->ev && vm->ev->state_changed)
		vm->ev->state_changed(vm->ev->opaque, vm->name, st, reason);
}

static void *fake_powerdown_thread(void *arg)
{
	usleep(50 * 1000);
	fake_emit(arg, ENGINE_STATE_STOPPED, "guest powered off");
	return NULL;
}

static int fake_powerdown(struct engine_vm *vm, char **err)
{
	if (!fake_honour_powerdown)
		return 0;
	pthread_t t;
	if (pthread_create(&t, NULL, fake_powerdown_thread, vm) != 0)
		return -EAGAIN;
	pthread_detach(t);
	return 0;
}

static int fake_force_stop(struct engine_vm *vm, char **err)
{
	fake_emit(vm, ENGINE_STATE_STOPPED, "stopped by request");
	return 0;
}

static int fake_pause(struct engine_vm *vm, char **err)
{
	fake_emit(vm, ENGINE_STATE_PAUSED, NULL);
	return 0;
}

static int fake_resume(struct engine_vm *vm, char **err)
{
	fake_emit(vm, ENGINE_STATE_RUNNING, NULL);
	return 0;
}

static int fake_reset(struct engine_vm *vm, char **err)
{
	fake_console_add(vm, "reset\n", 6);
	return 0;
}

static int fake_query(struct engine_vm *vm, enum engine_state *st, char **err)
{
	*st = vm->state;
	return 0;
}

static pid_t fake_pid(struct engine_vm *vm)
{
	return vm->gone ? 0 : vm->pid;
}

/* What QMP would say: one vCPU run by the test's main thread (so /proc has
 * it), the balloon at the configured size, fixed block counters. */
static int fake_stats(struct engine_vm *vm, struct engine_vm_stats *out, char **err)
{
	memset(out, 0, sizeof(*out));
	if (vm->gone)
		return -ESRCH;
	out->nr_vcpus = 1;
	out->vcpus[0].index = 0;
	out->vcpus[0].tid = vm->pid;
	out->have_balloon = true;
	out->balloon_bytes = vm->memory_mib << 20;
	out->nr_disks = 1;
	snprintf(out->disks[0].name, sizeof(out->disks[0].name), "disk0");
	out->disks[0].rd_bytes = 4096;
	out->disks[0].wr_bytes = 8192;
	out->disks[0].rd_ops = 1;
	out->disks[0].wr_ops = 2;
	return 0;
}

static int fake_console_read(struct engine_vm *vm, uint64_t since, void *buf, size_t cap,
			     size_t *len, uint64_t *start, uint64_t *next)
{
	pthread_mutex_lock(&vm->lock);
	uint64_t from = since > vm->clen ? vm->clen : since;
	size_t n = vm->clen - (size_t)from;
	if (n > cap)
		n = cap;
	memcpy(buf, vm->console + from, n);
	*len = n;
	*start = from;
	*next = from + n;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

static int fake_console_write(struct engine_vm *vm, const void *buf, size_t len)
{
	fake_console_add(vm, "echo:", 5);
	fake_console_add(vm, buf, len);
	return 0;
}

static int fake_console_wait(struct engine_vm *vm, uint64_t since, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		pthread_mutex_lock(&vm->lock);
		bool ready = vm->clen > since;
		pthread_mutex_unlock(&vm->lock);
		if (ready)
			return 0;
		usleep(10 * 1000);
	}
	return vm->gone ? -ESRCH : 0;
}

static void fake_release(struct engine_vm *vm)
{
	pthread_mutex_lock(&fake_lock);
	for (size_t i = 0; i < 64; i++)
		if (fake_vms[i] == vm)
			fake_vms[i] = NULL;
	pthread_mutex_unlock(&fake_lock);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

static const struct engine_ops fake_ops = {
	.host_info = fake_host_info,
	.start = fake_start,
	.attach = fake_attach,
	.powerdown = fake_powerdown,
	.force_stop = fake_force_stop,
	.pause = fake_pause,
	.resume = fake_resume,
	.reset = fake_reset,
	.query = fake_query,
	.pid = fake_pid,
	.stats = fake_stats,
	.console_read = fake_console_read,
	.console_write = fake_console_write,
	.console_wait = fake_console_wait,
	.release = fake_release,
};

static struct engine fake_engine_obj = {.name = "fake", .ops = &fake_ops};

struct engine *fake_engine(void)
{
	return &fake_engine_obj;
}

int fake_engine_crash(const char *name)
{
	struct engine_vm *vm = NULL;
	pthread_mutex_lock(&fake_lock);
	for (size_t i = 0; i < 64; i++)
		if (fake_vms[i] && strcmp(fake_vms[i]->name, name) == 0 && !fake_vms[i]->gone)
			vm = fake_vms[i];
	pthread_mutex_unlock(&fake_lock);
	if (!vm)
		return -ENOENT;
	fake_emit(vm, ENGINE_STATE_CRASHED, "QEMU exited with signal 9 (Killed)");
	return 0;
}
