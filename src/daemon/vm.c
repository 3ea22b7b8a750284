/* vm: the VM registry (in-memory records, persisted in the store) and the
 * lifecycle state machine of docs/api.md: create (disks with qemu-img),
 * start/stop/force-stop/reboot/pause/resume through the engine, crash
 * handling with the on-crash restart policy, re-attach and autostart when
 * vesseld starts, delete. Locking rules are in daemon.h. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/networks.h"
#include "daemon/qemu_img.h"
#include "daemon/store.h"
#include "lib/util.h"

#define VM_RESTART_MAX 3
#define VM_RESTART_WINDOW_NS (60ull * 1000000000ull)

/* ---- registry ---------------------------------------------------------- */

static ssize_t vm_index_locked(struct daemon *d, const char *name, size_t *insert_at)
{
	return util_name_index((void *const *)d->vms, d->nr_vms, offsetof(struct vm, rec.name),
			       name, insert_at);
}

static struct vm *vm_alloc(const struct vm_record *rec)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return NULL;
	pthread_mutex_init(&vm->op_lock, NULL);
	/* Writers (start, delete) must not starve behind console readers
	 * that take the lock in a loop. */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&vm->handle_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	vm->rec = *rec;
	vm->refs = 1; /* the registry's reference */
	return vm;
}

static void vm_destroy(struct vm *vm)
{
	pthread_mutex_destroy(&vm->op_lock);
	pthread_rwlock_destroy(&vm->handle_lock);
	free(vm);
}

/* Something about the VMs changed: drop the cached list, wake waiters. */
static void vm_changed_locked(struct daemon *d)
{
	vm_list_cache_put(d->vms_cache);
	d->vms_cache = NULL;
	pthread_cond_broadcast(&d->vms_cond);
}

static int vm_insert_locked(struct daemon *d, struct vm *vm)
{
	size_t at = 0;
	if (vm_index_locked(d, vm->rec.name, &at) >= 0)
		return -EEXIST;
	if (d->nr_vms == d->cap_vms) {
		size_t ncap = d->cap_vms ? d->cap_vms * 2 : 64;
		struct vm **nv = realloc(d->vms, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		d->vms = nv;
		d->cap_vms = ncap;
	}
	memmove(d->vms + at + 1, d->vms + at, (d->nr_vms - at) * sizeof(*d->vms));
	d->vms[at] = vm;
	d->nr_vms++;
	vm_changed_locked(d);
	return 0;
}

static void vm_remove_locked(struct daemon *d, struct vm *vm)
{
	ssize_t i = vm_index_locked(d, vm->rec.name, NULL);
	if (i < 0 || d->vms[i] != vm)
		return;
	memmove(d->vms + i, d->vms + i + 1, (d->nr_vms - (size_t)i - 1) * sizeof(*d->vms));
	d->nr_vms--;
	vm->removed = true;
	vm->refs--; /* the registry's reference; the caller still holds one */
	vm_changed_locked(d);
}

struct vm *vm_get(struct daemon *d, const char *name)
{
	pthread_mutex_lock(&d->vms_lock);
	ssize_t i = vm_index_locked(d, name, NULL);
	struct vm *vm = i >= 0 ? d->vms[i] : NULL;
	if (vm)
		vm->refs++;
	pthread_mutex_unlock(&d->vms_lock);
	return vm;
}

bool vm_scope_allows(struct daemon *d, struct vm *vm, const struct auth_identity *who)
{
	if (!who->project[0])
		return true;
	pthread_mutex_lock(&d->vms_lock);
	bool ok = auth_scope_allows(who, auth_vm_project(&vm->rec));
	pthread_mutex_unlock(&d->vms_lock);
	return ok;
}

bool vm_name_scope_allows(struct daemon *d, const char *name, const struct auth_identity *who)
{
	if (!who->project[0])
		return true;
	struct vm *vm = name ? vm_get(d, name) : NULL;
	bool ok = vm && vm_scope_allows(d, vm, who);
	vm_unref(d, vm);
	return ok;
}

void vm_unref(struct daemon *d, struct vm *vm)
{
	if (!vm)
		return;
	pthread_mutex_lock(&d->vms_lock);
	bool last = --vm->refs == 0;
	pthread_mutex_unlock(&d->vms_lock);
	if (last)
		vm_destroy(vm);
}

void vm_snapshot(struct daemon *d, struct vm *vm, struct vm_record *out)
{
	pthread_mutex_lock(&d->vms_lock);
	*out = vm->rec;
	pthread_mutex_unlock(&d->vms_lock);
}

size_t vm_count(struct daemon *d)
{
	pthread_mutex_lock(&d->vms_lock);
	size_t n = d->nr_vms;
	pthread_mutex_unlock(&d->vms_lock);
	return n;
}

bool vm_image_in_use_locked(struct daemon *d, const char *name, json_t *users)
{
	bool used = false;
	for (size_t i = 0; i < d->nr_vms; i++) {
		const struct vm_record *r = &d->vms[i]->rec;
		for (unsigned k = 0; k < r->nr_disks; k++) {
			if (strcmp(r->disks[k].image, name) == 0) {
				used = true;
				if (users)
					json_array_append_new(users, json_string(r->name));
				break;
			}
		}
	}
	return used;
}

void vm_usage_host_locked(struct daemon *d, const struct vm *exclude, struct admission_amount *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < d->nr_vms; i++) {
		const struct vm_record *r = &d->vms[i]->rec;
		if (d->vms[i] == exclude || !admission_state_uses_host(r->state))
			continue;
		out->v[ADMISSION_DIM_VMS]++;
		out->v[ADMISSION_DIM_VCPUS] += r->vcpus;
		out->v[ADMISSION_DIM_MEMORY] += r->memory_mib;
	}
}

void vm_usage_project_locked(struct daemon *d, const char *project, const struct vm *exclude,
			     struct admission_amount *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < d->nr_vms; i++) {
		struct admission_amount a;
		if (d->vms[i] == exclude || strcmp(d->vms[i]->rec.project, project) != 0)
			continue;
		admission_vm_amount(&d->vms[i]->rec, &a);
		for (int k = 0; k < ADMISSION_DIM_COUNT; k++)
			out->v[k] += a.v[k];
	}
}

size_t vm_count_project_locked(struct daemon *d, const char *project)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nr_vms; i++)
		if (strcmp(d->vms[i]->rec.project, project) == 0)
			n++;
	return n;
}

/* The VM's cgroup is no longer needed once its monitor is gone. */
static void vm_cgroup_remove(struct daemon *d, const char *name)
{
	int r = cgroup_vm_remove(&d->cgroups, name);
	if (r < 0)
		log_warn("vm '%s': cannot remove its cgroup: %s", name, strerror(-r));
}

bool vm_image_in_use(struct daemon *d, const char *name, json_t *users)
{
	pthread_mutex_lock(&d->vms_lock);
	bool used = vm_image_in_use_locked(d, name, users);
	pthread_mutex_unlock(&d->vms_lock);
	return used;
}

json_t *vm_to_json(const struct vm_record *r)
{
	json_t *boot = json_pack("{s:s}", "firmware", model_firmware_name(r->firmware));
	if (r->firmware == ENGINE_FW_KERNEL) {
		json_object_set_new(boot, "kernel", json_string(r->kernel));
		if (r->initrd[0])
			json_object_set_new(boot, "initrd", json_string(r->initrd));
		if (r->cmdline[0])
			json_object_set_new(boot, "cmdline", json_string(r->cmdline));
	}
	json_t *disks = json_array();
	for (unsigned i = 0; i < r->nr_disks; i++) {
		const struct vm_disk *k = &r->disks[i];
		json_array_append_new(
			disks,
			json_pack("{s:i,s:o,s:o,s:I,s:s}", "index", (int)k->index, "image",
				  k->image[0] ? json_string(k->image) : json_null(), "clone",
				  k->clone == DISK_CLONE_NONE ? json_null() :
								json_string(model_clone_name(k->clone)),
				  "size_bytes", (json_int_t)k->size_bytes, "format", k->format));
	}
	json_t *nics = json_array();
	for (unsigned i = 0; i < r->nr_nics; i++)
		json_array_append_new(nics, networks_nic_to_json(&r->nics[i]));
	return json_pack("{s:s,s:s,s:s,s:i,s:I,s:s,s:b,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:s,s:s,s:s,s:s}",
			 "name", r->name, "uuid", r->uuid, "state", model_vm_state_name(r->state),
			 "vcpus",
			 (int)r->vcpus, "memory_mib", (json_int_t)r->memory_mib, "description",
			 r->description, "autostart", r->autostart, "restart_policy",
			 model_restart_policy_name(r->restart_policy), "boot", boot, "disks", disks,
			 "nics", nics, "pid", r->pid > 0 ? json_integer(r->pid) : json_null(), "crash_reason",
			 r->crash_reason[0] ? json_string(r->crash_reason) : json_null(), "task",
			 r->task[0] ? json_string(r->task) : json_null(), "created_at", r->created_at,
			 "updated_at", r->updated_at, "project",
			 r->project[0] ? r->project : MODEL_PROJECT_DEFAULT, "priority",
			 model_priority_name(r->priority));
}

struct vm_list_cache *vm_list_cache_get(struct daemon *d)
{
	pthread_mutex_lock(&d->vms_lock);
	if (!d->vms_cache) {
		json_t *arr = json_array();
		for (size_t i = 0; i < d->nr_vms; i++)
			json_array_append_new(arr, vm_to_json(&d->vms[i]->rec));
		json_t *body = json_pack("{s:o}", "vms", arr);
		char *s = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		if (s) {
			size_t n = strlen(s);
			struct vm_list_cache *c = malloc(sizeof(*c) + n + 1);
			if (c) {
				c->refs = 1;
				c->len = n;
				memcpy(c->data, s, n + 1);
				d->vms_cache = c;
			}
			free(s);
		}
	}
	struct vm_list_cache *c = d->vms_cache;
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&d->vms_lock);
	return c;
}

void vm_list_cache_invalidate_locked(struct daemon *d)
{
	vm_list_cache_put(d->vms_cache);
	d->vms_cache = NULL;
}

void vm_list_cache_put(struct vm_list_cache *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(c);
}

/* Update the record under the lock with fn, then persist a copy. */
static void vm_persist(struct daemon *d, struct vm *vm)
{
	struct vm_record *copy = malloc(sizeof(*copy));
	if (!copy)
		return;
	pthread_mutex_lock(&d->vms_lock);
	model_now(vm->rec.updated_at);
	vm_changed_locked(d);
	*copy = vm->rec;
	bool removed = vm->removed;
	pthread_mutex_unlock(&d->vms_lock);
	if (!removed && store_vm_put(d->store, copy) < 0)
		log_error("vm '%s': cannot save its state in the database", copy->name);
	free(copy);
}

static void vm_set_state(struct daemon *d, struct vm *vm, enum vm_state st, const char *reason)
{
	pthread_mutex_lock(&d->vms_lock);
	vm->rec.state = st;
	if (st == VM_STATE_STOPPED || st == VM_STATE_CRASHED)
		vm->rec.pid = 0;
	if (reason)
		model_copy(vm->rec.crash_reason, sizeof(vm->rec.crash_reason), reason);
	pthread_mutex_unlock(&d->vms_lock);
	vm_persist(d, vm);
}

static enum vm_state vm_state_of(struct daemon *d, struct vm *vm)
{
	pthread_mutex_lock(&d->vms_lock);
	enum vm_state st = vm->rec.state;
	pthread_mutex_unlock(&d->vms_lock);
	return st;
}

/* ---- files -------------------------------------------------------------- */

/* Remove a directory and the files directly in it (VM and run dirs hold
 * no subdirectories). */
static void vm_rmdir(const char *path)
{
	DIR *dir = opendir(path);
	if (dir) {
		struct dirent *de;
		while ((de = readdir(dir))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			char p[PATH_MAX];
			snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
			unlink(p);
		}
		closedir(dir);
	}
	rmdir(path);
}

static void vm_remove_files(struct daemon *d, const struct vm_record *r)
{
	char p[PATH_MAX];
	for (unsigned i = 0; i < r->nr_disks; i++)
		if (r->disks[i].path[0])
			unlink(r->disks[i].path);
	daemon_path(d, p, sizeof(p), "run/%s", r->name);
	vm_rmdir(p);
	daemon_path(d, p, sizeof(p), "vms/%s", r->name);
	vm_rmdir(p);
}

static int vm_build_spec(struct daemon *d, const struct vm_record *r, struct engine_vm_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	model_copy(spec->name, sizeof(spec->name), r->name);
	model_copy(spec->uuid, sizeof(spec->uuid), r->uuid);
	spec->vcpus = r->vcpus;
	spec->memory_mib = r->memory_mib;
	spec->firmware = r->firmware;
	model_copy(spec->kernel, sizeof(spec->kernel), r->kernel);
	model_copy(spec->initrd, sizeof(spec->initrd), r->initrd);
	model_copy(spec->cmdline, sizeof(spec->cmdline), r->cmdline);
	for (unsigned i = 0; i < r->nr_disks && i < ENGINE_MAX_DISKS; i++) {
		model_copy(spec->disks[i].path, sizeof(spec->disks[i].path), r->disks[i].path);
		model_copy(spec->disks[i].format, sizeof(spec->disks[i].format), r->disks[i].format);
	}
	spec->nr_disks = r->nr_disks;
	char run[PATH_MAX];
	daemon_path(d, run, sizeof(run), "run");
	mkdir(run, 0700);
	daemon_path(d, spec->run_dir, sizeof(spec->run_dir), "run/%s", r->name);
	if (mkdir(spec->run_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	chmod(spec->run_dir, 0700);
	return 0;
}

/* ---- engine events ------------------------------------------------------ */

static void *vm_restart_thread(void *arg);

struct vm_restart {
	struct daemon *d;
	struct vm *vm;
};

static bool vm_restart_allowed_locked(struct vm *vm)
{
	uint64_t now = util_now_ns();
	unsigned recent = 0;
	for (unsigned i = 0; i < VM_RESTART_MAX; i++)
		if (vm->restarts_ns[i] && now - vm->restarts_ns[i] < VM_RESTART_WINDOW_NS)
			recent++;
	if (recent >= VM_RESTART_MAX)
		return false;
	/* replace the oldest entry */
	unsigned oldest = 0;
	for (unsigned i = 1; i < VM_RESTART_MAX; i++)
		if (vm->restarts_ns[i] < vm->restarts_ns[oldest])
			oldest = i;
	vm->restarts_ns[oldest] = now;
	return true;
}

static void vm_on_state(void *opaque, const char *name, enum engine_state st, const char *reason)
{
	struct daemon *d = opaque;
	bool restart = false;
	pthread_mutex_lock(&d->vms_lock);
	ssize_t i = vm_index_locked(d, name, NULL);
	struct vm *vm = i >= 0 ? d->vms[i] : NULL;
	if (!vm || !vm->active) {
		pthread_mutex_unlock(&d->vms_lock);
		return;
	}
	enum vm_state cur = vm->rec.state;
	vm->refs++; /* keep it while we persist below, even if deleted meanwhile */
	switch (st) {
	case ENGINE_STATE_RUNNING:
		if (cur == VM_STATE_PAUSED)
			vm->rec.state = VM_STATE_RUNNING;
		break;
	case ENGINE_STATE_PAUSED:
		if (cur == VM_STATE_RUNNING)
			vm->rec.state = VM_STATE_PAUSED;
		break;
	case ENGINE_STATE_STOPPED:
		vm->monitor_gone = true;
		vm->rec.pid = 0;
		vm->rec.state = VM_STATE_STOPPED;
		vm->rec.crash_reason[0] = '\0';
		break;
	case ENGINE_STATE_CRASHED:
		vm->monitor_gone = true;
		vm->rec.pid = 0;
		if (vm->forcing || cur == VM_STATE_STOPPING) {
			/* we killed it ourselves: that is a stop, not a crash */
			vm->rec.state = VM_STATE_STOPPED;
			break;
		}
		vm->rec.state = VM_STATE_CRASHED;
		model_copy(vm->rec.crash_reason, sizeof(vm->rec.crash_reason),
			   reason ? reason : "the monitor process exited unexpectedly");
		if (vm->rec.restart_policy == VM_RESTART_ON_CRASH && !d->shutting_down) {
			restart = vm_restart_allowed_locked(vm);
			if (!restart)
				log_warn("vm '%s' crashed %d times within 60 s; not restarting it "
					 "again until started by hand", name, VM_RESTART_MAX);
		}
		break;
	}
	pthread_mutex_unlock(&d->vms_lock);
	if (st == ENGINE_STATE_STOPPED || st == ENGINE_STATE_CRASHED)
		vm_cgroup_remove(d, name);
	if (st == ENGINE_STATE_CRASHED)
		log_warn("vm '%s' crashed: %s", name, reason ? reason : "(no reason)");
	else
		log_info("vm '%s': monitor reports %s%s%s", name,
			 st == ENGINE_STATE_RUNNING ? "running" :
			 st == ENGINE_STATE_PAUSED  ? "paused" :
						      "stopped",
			 reason ? ": " : "", reason ? reason : "");
	vm_persist(d, vm);
	if (!restart)
		vm_unref(d, vm);
	if (restart) {
		/* the reference taken above passes to the restart thread */
		struct vm_restart *rs = malloc(sizeof(*rs));
		if (rs) {
			rs->d = d;
			rs->vm = vm;
		}
		if (!rs || daemon_spawn(d, vm_restart_thread, rs) < 0) {
			free(rs);
			vm_unref(d, vm);
		}
	}
}

static void vm_on_reset(void *opaque, const char *name)
{
	log_info("vm '%s': guest reset", name);
}

static void vm_events_init(struct daemon *d)
{
	d->events.opaque = d;
	d->events.state_changed = vm_on_state;
	d->events.reset = vm_on_reset;
}

/* ---- lifecycle (op_lock held) ------------------------------------------ */

static void vm_release_handle(struct daemon *d, struct vm *vm)
{
	pthread_rwlock_wrlock(&vm->handle_lock);
	struct engine_vm *h = vm->handle;
	vm->handle = NULL;
	pthread_rwlock_unlock(&vm->handle_lock);
	if (h)
		d->engine->ops->release(h);
}

static int vm_engine_err(struct daemon_err *e, const char *name, const char *what, int r,
			 char *err)
{
	daemon_err_set(e, 500, "engine_failed", "vm '%s': %s failed: %s", name, what,
		       err ? err : strerror(-r));
	free(err);
	return r < 0 ? r : -EIO;
}

static int vm_wrong_state(struct daemon_err *e, const char *name, enum vm_state st,
			  const char *action, const char *hint)
{
	daemon_err_set(e, 409, "conflict", "vm '%s' is %s, so it cannot be %s%s%s", name,
		       model_vm_state_name(st), action, hint ? "; " : "", hint ? hint : "");
	return -EBUSY;
}

static int vm_start_locked(struct daemon *d, struct vm *vm, struct daemon_err *e)
{
	struct vm_record *r = malloc(sizeof(*r));
	struct engine_vm_spec *spec = malloc(sizeof(*spec));
	char *err = NULL;
	int ret = 0;
	if (!r || !spec) {
		ret = -ENOMEM;
		daemon_err_set(e, 500, "internal", "vesseld ran out of memory; retry");
		goto out;
	}
	vm_snapshot(d, vm, r);
	if (vm->removed) {
		ret = daemon_err_set(e, 404, "not_found", "vm '%s' was just deleted", r->name);
		goto out;
	}
	if (r->state != VM_STATE_STOPPED && r->state != VM_STATE_CRASHED) {
		ret = vm_wrong_state(e, r->name, r->state, "started",
				     r->state == VM_STATE_PAUSED ? "resume it instead" : NULL);
		goto out;
	}
	if ((ret = vm_build_spec(d, r, spec)) < 0) {
		daemon_err_set(e, 500, "internal", "cannot create the run directory %s: %s",
			       spec->run_dir, strerror(-ret));
		goto out;
	}
	memcpy(spec->incoming, vm->incoming, sizeof(spec->incoming));
	vm->incoming[0] = '\0'; /* one start only, whatever its outcome */
	/* Taps before QEMU: it gets them as open fds (networks.h). */
	if ((ret = networks_nics_open(d, r, spec, e)) < 0)
		goto out;
	vm_release_handle(d, vm); /* the previous run's, kept for its console */
	pthread_mutex_lock(&d->vms_lock);
	/* The check and the move to STARTING (which counts as used) happen
	 * in one critical section, so two starts racing for the last slot
	 * cannot both pass. */
	{
		struct admission_amount used, ask;
		struct admission_refusal why;
		vm_usage_host_locked(d, vm, &used);
		admission_vm_amount(r, &ask);
		if (admission_host_check(&d->capacity, &used, &ask, &why) < 0) {
			pthread_mutex_unlock(&d->vms_lock);
			ret = admission_err_host(e, r->name, "started", &why);
			goto out;
		}
	}
	vm->rec.state = VM_STATE_STARTING;
	vm->active = true;
	vm->monitor_gone = false;
	vm->forcing = false;
	vm_changed_locked(d);
	pthread_mutex_unlock(&d->vms_lock);

	/* The engine moves QEMU into this group right after spawning it,
	 * while its vCPUs are still held by -S. */
	if (d->cgroups.usable) {
		int cr = cgroup_vm_prepare(&d->cgroups, r->name, r->priority);
		_Static_assert(ENGINE_MAX_CGROUPS >= CGROUP_HIER_MAX,
			       "the engine spec must hold every hierarchy's cgroup.procs");
		if (cr == 0) {
			for (unsigned h = 0; h < CGROUP_HIER_MAX; h++)
				if (cgroup_vm_procs_path(&d->cgroups, h, r->name,
							 spec->cgroup_procs[h],
							 sizeof(spec->cgroup_procs[h])) < 0)
					spec->cgroup_procs[h][0] = '\0';
		} else
			log_warn("vm '%s': cannot create its cgroup (%s); it runs without its "
				 "priority applied", r->name, strerror(-cr));
	}

	struct engine_vm *h = NULL;
	ret = d->engine->ops->start(d->engine, spec, &d->events, &h, &err);
	/* QEMU holds the taps now (or failed and they go with our copies). */
	networks_nics_close(spec);
	if (ret < 0) {
		vm_cgroup_remove(d, r->name);
		pthread_mutex_lock(&d->vms_lock);
		vm->active = false;
		vm->rec.state = r->state; /* a failed request changes nothing */
		vm_changed_locked(d);
		pthread_mutex_unlock(&d->vms_lock);
		log_warn("vm '%s': start failed: %s", r->name, err ? err : strerror(-ret));
		vm_engine_err(e, r->name, "starting QEMU", ret, err);
		goto out;
	}
	pthread_rwlock_wrlock(&vm->handle_lock);
	vm->handle = h;
	pthread_rwlock_unlock(&vm->handle_lock);
	pid_t pid = d->engine->ops->pid(h);
	pthread_mutex_lock(&d->vms_lock);
	if (!vm->monitor_gone) {
		vm->rec.state = VM_STATE_RUNNING;
		vm->rec.pid = pid;
		vm->rec.crash_reason[0] = '\0';
	}
	pthread_mutex_unlock(&d->vms_lock);
	vm_persist(d, vm);
	log_info("vm '%s' started (pid %d)", r->name, (int)pid);
out:
	free(r);
	free(spec);
	return ret;
}

static void *vm_restart_thread(void *arg)
{
	struct vm_restart *rs = arg;
	struct daemon_err e = {0};
	/* A short pause so a guest that dies at once does not spin. */
	sleep(1);
	pthread_mutex_lock(&rs->vm->op_lock);
	if (!rs->vm->removed && vm_state_of(rs->d, rs->vm) == VM_STATE_CRASHED) {
		log_info("vm '%s': restarting after a crash (restart_policy on-crash)",
			 rs->vm->rec.name);
		if (vm_start_locked(rs->d, rs->vm, &e) < 0)
			log_error("vm '%s': restart failed: %s", rs->vm->rec.name, e.message);
	}
	pthread_mutex_unlock(&rs->vm->op_lock);
	vm_unref(rs->d, rs->vm);
	free(rs);
	return NULL;
}

int vm_start(struct daemon *d, struct vm *vm, struct daemon_err *e)
{
	pthread_mutex_lock(&vm->op_lock);
	int r = vm_start_locked(d, vm, e);
	pthread_mutex_unlock(&vm->op_lock);
	return r;
}

/* Kill the monitor (op_lock held) and mark the VM stopped. */
static int vm_force_locked(struct daemon *d, struct vm *vm, struct daemon_err *e)
{
	char *err = NULL;
	pthread_mutex_lock(&d->vms_lock);
	vm->forcing = true;
	bool gone = vm->monitor_gone;
	pthread_mutex_unlock(&d->vms_lock);
	if (!gone && vm->handle) {
		int r = d->engine->ops->force_stop(vm->handle, &err);
		if (r < 0) {
			pthread_mutex_lock(&d->vms_lock);
			vm->forcing = false;
			pthread_mutex_unlock(&d->vms_lock);
			return vm_engine_err(e, vm->rec.name, "force-stop", r, err);
		}
	}
	pthread_mutex_lock(&d->vms_lock);
	vm->active = false;
	/* A monitor that crashed on its own before we killed it keeps its
	 * "crashed" state and reason: that is what happened to the guest. */
	if (!(gone && vm->rec.state == VM_STATE_CRASHED)) {
		vm->monitor_gone = true;
		vm->rec.state = VM_STATE_STOPPED;
		vm->rec.pid = 0;
		vm->rec.crash_reason[0] = '\0';
	}
	pthread_mutex_unlock(&d->vms_lock);
	vm_persist(d, vm);
	vm_cgroup_remove(d, vm->rec.name);
	return 0;
}

int vm_stop(struct daemon *d, struct vm *vm, unsigned timeout_s, bool *forced,
	    struct daemon_err *e)
{
	int r = 0;
	char *err = NULL;
	*forced = false;
	pthread_mutex_lock(&vm->op_lock);
	/* Check and mark in one critical section: a monitor that dies in
	 * between must stay "crashed" with its reason, not become "stopping". */
	pthread_mutex_lock(&d->vms_lock);
	enum vm_state st = vm->rec.state;
	bool can = st == VM_STATE_RUNNING || st == VM_STATE_PAUSED;
	if (can)
		vm->rec.state = VM_STATE_STOPPING;
	pthread_mutex_unlock(&d->vms_lock);
	if (!can) {
		r = vm_wrong_state(e, vm->rec.name, st, "stopped",
				   st == VM_STATE_STOPPED || st == VM_STATE_CRASHED ?
					   "it is not running" :
					   NULL);
		goto out;
	}
	vm_persist(d, vm);
	bool asked = false;
	if (timeout_s > 0) {
		/* ACPI power-down reaches only a running guest. */
		if (st == VM_STATE_PAUSED && d->engine->ops->resume(vm->handle, &err) < 0) {
			free(err);
			err = NULL;
		}
		if (d->engine->ops->powerdown(vm->handle, &err) == 0)
			asked = true;
		else
			log_warn("vm '%s': ACPI power-down failed (%s); forcing it off",
				 vm->rec.name, err ? err : "no reason");
		free(err);
		err = NULL;
	}
	if (asked) {
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += timeout_s;
		pthread_mutex_lock(&d->vms_lock);
		while (!vm->monitor_gone)
			if (pthread_cond_timedwait(&d->vms_cond, &d->vms_lock, &deadline) == ETIMEDOUT)
				break;
		bool gone = vm->monitor_gone;
		pthread_mutex_unlock(&d->vms_lock);
		if (gone) {
			pthread_mutex_lock(&d->vms_lock);
			vm->active = false;
			vm->rec.state = VM_STATE_STOPPED;
			vm->rec.pid = 0;
			pthread_mutex_unlock(&d->vms_lock);
			vm_persist(d, vm);
			vm_cgroup_remove(d, vm->rec.name);
			log_info("vm '%s' powered off", vm->rec.name);
			goto out;
		}
		log_info("vm '%s' did not power off within %u s; forcing it off", vm->rec.name,
			 timeout_s);
	}
	*forced = true;
	r = vm_force_locked(d, vm, e);
	if (r < 0)
		vm_set_state(d, vm, st, NULL);
out:
	pthread_mutex_unlock(&vm->op_lock);
	return r;
}

int vm_force_stop(struct daemon *d, struct vm *vm, struct daemon_err *e)
{
	int r;
	pthread_mutex_lock(&vm->op_lock);
	enum vm_state st = vm_state_of(d, vm);
	if (st != VM_STATE_RUNNING && st != VM_STATE_PAUSED) {
		r = vm_wrong_state(e, vm->rec.name, st, "force-stopped", NULL);
		goto out;
	}
	r = vm_force_locked(d, vm, e);
	if (r == 0)
		log_info("vm '%s' force-stopped", vm->rec.name);
out:
	pthread_mutex_unlock(&vm->op_lock);
	return r;
}

/* pause/resume/reboot share one shape: a state check and one engine call. */
static int vm_simple_op(struct daemon *d, struct vm *vm, enum vm_state need,
			enum vm_state after, const char *verb,
			int (*op)(struct engine_vm *, char **), struct daemon_err *e)
{
	int r;
	char *err = NULL;
	pthread_mutex_lock(&vm->op_lock);
	enum vm_state st = vm_state_of(d, vm);
	if (st != need) {
		r = vm_wrong_state(e, vm->rec.name, st, verb, NULL);
		goto out;
	}
	if ((r = op(vm->handle, &err)) < 0) {
		vm_engine_err(e, vm->rec.name, verb, r, err);
		goto out;
	}
	pthread_mutex_lock(&d->vms_lock);
	if (!vm->monitor_gone)
		vm->rec.state = after;
	pthread_mutex_unlock(&d->vms_lock);
	vm_persist(d, vm);
out:
	pthread_mutex_unlock(&vm->op_lock);
	return r;
}

int vm_reboot(struct daemon *d, struct vm *vm, struct daemon_err *e)
{
	return vm_simple_op(d, vm, VM_STATE_RUNNING, VM_STATE_RUNNING, "rebooted",
			    d->engine->ops->reset, e);
}

int vm_pause(struct daemon *d, struct vm *vm, struct daemon_err *e)
{
	return vm_simple_op(d, vm, VM_STATE_RUNNING, VM_STATE_PAUSED, "paused",
			    d->engine->ops->pause, e);
}

int vm_resume(struct daemon *d, struct vm *vm, struct daemon_err *e)
{
	return vm_simple_op(d, vm, VM_STATE_PAUSED, VM_STATE_RUNNING, "resumed",
			    d->engine->ops->resume, e);
}

/* Hot-plug: unplug NICs past the new list's end (last first), plug the new
 * ones at its end. op_lock held. A NIC the guest will not release, or one
 * QEMU refuses, ends the request with what was done so far undone where
 * possible (an unplugged NIC is not plugged back). */
static int vm_nics_hotplug(struct daemon *d, struct vm *vm, const struct vm_record *rec,
			   const struct vm_nic *before, unsigned nr_before, struct daemon_err *e)
{
	char *err = NULL;
	unsigned added = nr_before;
	int r = 0;

	pthread_rwlock_rdlock(&vm->handle_lock);
	struct engine_vm *h = vm->handle;
	if (!h || !d->engine->ops->nic_add || !d->engine->ops->nic_del) {
		r = daemon_err_set(e, 409, "conflict", "vm '%s': this engine cannot add or remove "
				   "NICs while the VM runs; stop it first", rec->name);
		goto out;
	}
	for (unsigned i = nr_before; i-- > rec->nr_nics;) {
		if ((r = d->engine->ops->nic_del(h, i, 30000, &err)) < 0) {
			daemon_err_set(e, r == -ETIMEDOUT ? 409 : 500,
				       r == -ETIMEDOUT ? "conflict" : "engine_failed",
				       "vm '%s': removing NIC %u (tap %s): %s", rec->name, i,
				       before[i].tap, err ? err : strerror(-r));
			goto out;
		}
		log_info("vm '%s': NIC %u (%s) unplugged", rec->name, i, before[i].mac);
	}
	for (unsigned i = nr_before; i < rec->nr_nics; i++) {
		struct engine_nic en;
		if ((r = networks_nic_open(d, rec, i, &en, e)) < 0)
			goto undo;
		r = d->engine->ops->nic_add(h, i, &en, &err);
		close(en.fd); /* QEMU has its own copy now, or failed */
		if (r < 0) {
			daemon_err_set(e, 500, "engine_failed", "vm '%s': adding NIC %u: %s", rec->name,
				       i, err ? err : strerror(-r));
			goto undo;
		}
		added = i + 1;
		log_info("vm '%s': NIC %u (%s on %s) plugged in", rec->name, i, rec->nics[i].mac,
			 rec->nics[i].network);
	}
	goto out;
undo:
	for (unsigned k = nr_before; k < added; k++) {
		char *ignored = NULL;
		if (d->engine->ops->nic_del(h, k, 30000, &ignored) < 0)
			log_warn("vm '%s': NIC %u could not be unplugged again: %s", rec->name, k,
				 ignored ? ignored : "?");
		free(ignored);
	}
out:
	pthread_rwlock_unlock(&vm->handle_lock);
	free(err);
	return r;
}

/* May this PATCH apply to a running VM? Only a priority (a cgroup
 * weight) and the NICs' firewall rule sets (nftables, checked once the
 * NICs are resolved) change without QEMU. */
static bool vm_patch_is_live(const json_t *patch)
{
	const char *key;
	json_t *v;
	if (json_object_size(patch) == 0)
		return false;
	json_object_foreach((json_t *)patch, key, v) {
		if (strcmp(key, "priority") != 0 && strcmp(key, "nics") != 0)
			return false;
	}
	return true;
}

int vm_disk_set(struct daemon *d, struct vm *vm, unsigned idx, const char *path,
		uint64_t size_bytes)
{
	pthread_mutex_lock(&d->vms_lock);
	if (idx >= vm->rec.nr_disks) {
		pthread_mutex_unlock(&d->vms_lock);
		return -EINVAL;
	}
	model_copy(vm->rec.disks[idx].path, sizeof(vm->rec.disks[idx].path), path);
	if (size_bytes)
		vm->rec.disks[idx].size_bytes = size_bytes;
	pthread_mutex_unlock(&d->vms_lock);
	vm_persist(d, vm);
	return 0;
}

int vm_update(struct daemon *d, struct vm *vm, const json_t *patch, struct daemon_err *e)
{
	int r = 0;
	char err[VALIDATE_ERR_MAX];
	struct vm_record *copy = malloc(sizeof(*copy));
	struct vm_record *old = malloc(sizeof(*old));
	if (!copy || !old) {
		free(copy);
		free(old);
		return daemon_err_set(e, 500, "internal", "vesseld ran out of memory; retry");
	}
	pthread_mutex_lock(&vm->op_lock);
	vm_snapshot(d, vm, copy);
	if (vm->removed) {
		r = daemon_err_set(e, 404, "not_found", "vm '%s' was just deleted", copy->name);
		goto out;
	}
	bool live = vm_patch_is_live(patch);
	bool stopped = copy->state == VM_STATE_STOPPED || copy->state == VM_STATE_CRASHED;
	if (!live && !stopped) {
		r = vm_wrong_state(e, copy->name, copy->state, "changed",
				   "stop it first; only 'priority' and 'nics' (each NIC's 'firewall', "
				   "NICs added or removed at the end) can change while it runs");
		goto out;
	}
	struct vm_nic before[MODEL_MAX_NICS];
	unsigned nr_before = copy->nr_nics;
	memcpy(before, copy->nics, sizeof(before));
	if ((r = validate_vm_patch(patch, &d->vctx, copy, err)) < 0) {
		daemon_err_set(e, 400, "invalid_argument", "%s", err);
		goto out;
	}
	if (json_object_get(patch, "nics")) {
		vm_snapshot(d, vm, old);
		if ((r = networks_nics_resolve(d, copy, old, e)) < 0)
			goto out;
		/* While it runs: NICs it keeps may change only their firewall;
		 * NICs may be added or removed at the end (hot-plug). */
		unsigned common = copy->nr_nics < nr_before ? copy->nr_nics : nr_before;
		bool same = true;
		for (unsigned i = 0; same && i < common; i++)
			same = strcmp(before[i].network, copy->nics[i].network) == 0 &&
			       strcmp(before[i].mac, copy->nics[i].mac) == 0 &&
			       before[i].vlan == copy->nics[i].vlan &&
			       before[i].rate_mbit == copy->nics[i].rate_mbit;
		if (!stopped && !same) {
			r = vm_wrong_state(e, copy->name, copy->state, "given other NICs",
					   "while it runs, NICs can be added or removed at the end "
					   "of the list and each NIC's firewall changed; stop it "
					   "first for anything else");
			goto out;
		}
		if (!stopped && copy->nr_nics != nr_before &&
		    (r = vm_nics_hotplug(d, vm, copy, before, nr_before, e)) < 0)
			goto out;
	}
	model_now(copy->updated_at);
	/* Quota and host checks and the change itself under one lock, so a
	 * concurrent create cannot take what this change was admitted to. */
	pthread_mutex_lock(&d->vms_lock);
	*old = vm->rec;
	/* Only a move or growth is checked: a description change must not be
	 * refused because a quota was lowered below what the project holds. */
	if (!live && (strcmp(copy->project, old->project) != 0 || copy->vcpus > old->vcpus ||
		      copy->memory_mib > old->memory_mib))
		r = admission_check_define_locked(d, copy, vm, e);
	if (r == 0) {
		if (live) {
			/* only what may change while it runs; state and pid
			 * belong to the monitor's events */
			vm->rec.priority = copy->priority;
			memcpy(vm->rec.nics, copy->nics, sizeof(copy->nics));
			vm->rec.nr_nics = copy->nr_nics;
			memcpy(vm->rec.updated_at, copy->updated_at, sizeof(copy->updated_at));
		} else {
			copy->state = vm->rec.state;
			copy->pid = vm->rec.pid;
			vm->rec = *copy;
		}
		*copy = vm->rec;
		vm_changed_locked(d);
	}
	pthread_mutex_unlock(&d->vms_lock);
	if (r < 0)
		goto out;
	if ((r = store_vm_put(d->store, copy)) < 0) {
		pthread_mutex_lock(&d->vms_lock);
		old->state = vm->rec.state;
		old->pid = vm->rec.pid;
		vm->rec = *old;
		vm_changed_locked(d);
		pthread_mutex_unlock(&d->vms_lock);
		daemon_err_set(e, 500, "internal", "cannot save vm '%s' in the database; check the "
						   "data directory", copy->name);
		goto out;
	}
	if (copy->priority != old->priority && !stopped && d->cgroups.usable) {
		int cr = cgroup_vm_set_priority(&d->cgroups, copy->name, copy->priority);
		if (cr < 0)
			log_warn("vm '%s': cannot apply priority %s to its cgroup: %s", copy->name,
				 model_priority_name(copy->priority), strerror(-cr));
		else
			log_info("vm '%s': priority %s applied (cgroup %s, weight %u)", copy->name,
				 model_priority_name(copy->priority),
				 cgroup_mode_name(d->cgroups.mode),
				 cgroup_priority_weight(copy->priority));
	}
	if (json_object_get(patch, "nics"))
		networks_changed(d);
out:
	pthread_mutex_unlock(&vm->op_lock);
	free(copy);
	free(old);
	return r;
}

/* Remove a VM that is not running: files, row, registry entry. op_lock held. */
static void vm_destroy_locked(struct daemon *d, struct vm *vm)
{
	struct vm_record *r = malloc(sizeof(*r));
	vm_release_handle(d, vm);
	pthread_mutex_lock(&d->vms_lock);
	vm->active = false; /* no late engine event may save the row again */
	if (r)
		*r = vm->rec;
	pthread_mutex_unlock(&d->vms_lock);
	/* Row and files go before the name is released: a create of the same
	 * name meanwhile must get 409, not find the old directory (500) or
	 * have its new row deleted by ours. */
	if (r) {
		store_vm_delete(d->store, r->name);
		vm_remove_files(d, r);
		vm_cgroup_remove(d, r->name);
	}
	pthread_mutex_lock(&d->vms_lock);
	vm_remove_locked(d, vm);
	pthread_mutex_unlock(&d->vms_lock);
	if (r && r->nr_nics)
		networks_changed(d); /* drop its NICs' firewall chains */
	free(r);
}

int vm_delete(struct daemon *d, struct vm *vm, bool force, struct daemon_err *e)
{
	int r = 0;
	pthread_mutex_lock(&vm->op_lock);
	if (vm->removed) {
		r = daemon_err_set(e, 404, "not_found", "vm '%s' was just deleted", vm->rec.name);
		goto out;
	}
	enum vm_state st = vm_state_of(d, vm);
	if (st == VM_STATE_PROVISIONING) {
		r = vm_wrong_state(e, vm->rec.name, st, "deleted",
				   "wait for its disk copy task to finish");
		goto out;
	}
	if (st == VM_STATE_RUNNING || st == VM_STATE_PAUSED || st == VM_STATE_STARTING ||
	    st == VM_STATE_STOPPING) {
		if (!force) {
			r = vm_wrong_state(e, vm->rec.name, st, "deleted",
					   "stop it first or pass ?force=true");
			goto out;
		}
		if ((r = vm_force_locked(d, vm, e)) < 0)
			goto out;
	}
	vm_destroy_locked(d, vm);
	log_info("vm '%s' deleted", vm->rec.name);
out:
	pthread_mutex_unlock(&vm->op_lock);
	return r;
}

/* ---- create ------------------------------------------------------------- */

struct vm_copy_job {
	struct daemon *d;
	struct vm *vm;
	struct image_record images[MODEL_MAX_DISKS];
};

struct vm_copy_progress {
	struct daemon *d;
	const char *task;
	unsigned done, total;
};

static void vm_copy_progress_cb(void *opaque, int pct)
{
	struct vm_copy_progress *p = opaque;
	task_progress(p->d, p->task, (int)((p->done * 100 + (unsigned)pct) / p->total), NULL);
}

static int vm_resize(struct daemon *d, const struct vm_disk *k, char **err)
{
	char size[32];
	snprintf(size, sizeof(size), "%llu", (unsigned long long)(k->size_gib * GiB));
	const char *args[] = {"resize", "-f", "qcow2", k->path, size, NULL};
	return qemu_img_run(d->cfg.qemu_img, args, NULL, NULL, NULL, err);
}

static void *vm_copy_thread(void *arg)
{
	struct vm_copy_job *job = arg;
	struct daemon *d = job->d;
	struct vm *vm = job->vm;
	struct vm_record *r = malloc(sizeof(*r));
	char *err = NULL;
	int ret = 0;

	/* op_lock is taken only to end the copy. While it runs the VM is
	 * provisioning, which every operation refuses (they check the state
	 * under op_lock), so they answer 409 at once instead of queueing
	 * behind a copy that may take minutes. */
	if (!r) {
		ret = -ENOMEM;
		goto out;
	}
	vm_snapshot(d, vm, r);
	struct vm_copy_progress prog = {.d = d, .task = r->task};
	for (unsigned i = 0; i < r->nr_disks; i++)
		if (r->disks[i].clone == DISK_CLONE_FULL)
			prog.total++;
	for (unsigned i = 0; i < r->nr_disks && ret == 0; i++) {
		struct vm_disk *k = &r->disks[i];
		if (k->clone != DISK_CLONE_FULL)
			continue;
		const char *args[] = {"convert", "-p", "-f", "qcow2", "-O", "qcow2",
				      job->images[i].path, k->path, NULL};
		ret = qemu_img_run(d->cfg.qemu_img, args, vm_copy_progress_cb, &prog, NULL, &err);
		if (ret == 0 && k->size_gib)
			ret = vm_resize(d, k, &err);
		prog.done++;
	}
out:
	pthread_mutex_lock(&vm->op_lock);
	if (ret == 0) {
		pthread_mutex_lock(&d->vms_lock);
		vm->rec.state = VM_STATE_STOPPED;
		vm->rec.task[0] = '\0';
		pthread_mutex_unlock(&d->vms_lock);
		vm_persist(d, vm);
		task_finish(d, r->task, NULL);
		log_info("vm '%s': disk copy finished", r->name);
	} else {
		/* docs/api.md: the VM is removed entirely if the copy fails. */
		log_warn("vm '%s': disk copy failed, removing the VM: %s", vm->rec.name,
			 err ? err : "out of memory");
		char task[MODEL_TASK_ID_MAX];
		snprintf(task, sizeof(task), "%s", vm->rec.task);
		vm_destroy_locked(d, vm);
		task_finish(d, task, err ? err : "vesseld ran out of memory");
	}
	pthread_mutex_unlock(&vm->op_lock);
	vm_unref(d, vm);
	free(err);
	free(r);
	free(job);
	return NULL;
}

/* Create the disk files that are made at once (linked clones and blank
 * disks). Full copies are left to the task. */
static int vm_create_disks(struct daemon *d, struct vm_record *rec,
			   const struct image_record *images, struct daemon_err *e)
{
	char *err = NULL;
	int r = 0;
	for (unsigned i = 0; i < rec->nr_disks; i++) {
		struct vm_disk *k = &rec->disks[i];
		char size[32];
		snprintf(size, sizeof(size), "%llu", (unsigned long long)k->size_bytes);
		if (k->clone == DISK_CLONE_FULL)
			continue;
		if (k->clone == DISK_CLONE_LINKED) {
			const char *args[] = {"create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
					      images[i].path, k->path, size, NULL};
			r = qemu_img_run(d->cfg.qemu_img, args, NULL, NULL, NULL, &err);
		} else {
			const char *args[] = {"create", "-q", "-f", "qcow2", k->path, size, NULL};
			r = qemu_img_run(d->cfg.qemu_img, args, NULL, NULL, NULL, &err);
		}
		if (r < 0) {
			daemon_err_set(e, 500, "internal", "cannot create disk %u of vm '%s': %s", i,
				       rec->name, err ? err : strerror(-r));
			free(err);
			return r;
		}
	}
	return 0;
}

int vm_create(struct daemon *d, struct vm_record *rec, struct daemon_err *e)
{
	struct vm_copy_job *job = calloc(1, sizeof(*job));
	struct vm *vm = NULL;
	bool has_full = false, inserted = false, made_dir = false;
	int r = 0;
	char dir[PATH_MAX];

	if (!job)
		return daemon_err_set(e, 500, "internal", "vesseld ran out of memory; retry");
	if ((r = model_uuid(rec->uuid)) < 0) {
		daemon_err_set(e, 500, "internal", "cannot read random bytes for the VM's UUID");
		goto out;
	}
	/* NICs: networks and rule sets must exist; MACs and tap names are
	 * assigned here, before anything is created. */
	if ((r = networks_nics_resolve(d, rec, NULL, e)) < 0)
		goto out;
	model_now(rec->created_at);
	memcpy(rec->updated_at, rec->created_at, sizeof(rec->updated_at));
	/* Internal callers (backup restore) may leave the project unset. */
	if (!rec->project[0])
		model_copy(rec->project, sizeof(rec->project), MODEL_PROJECT_DEFAULT);
	daemon_path(d, dir, sizeof(dir), "vms/%s", rec->name);
	rec->state = VM_STATE_PROVISIONING;

	vm = vm_alloc(rec);
	if (!vm) {
		r = daemon_err_set(e, 500, "internal", "vesseld ran out of memory; retry");
		goto out;
	}
	/* Hold the new VM's op_lock until it is complete, so nothing can
	 * start or delete it half-made. */
	pthread_mutex_lock(&vm->op_lock);

	/* Image checks and the name reservation under vms_lock: an image
	 * delete holds the same lock while it checks whether disks use it. */
	pthread_mutex_lock(&d->vms_lock);
	for (unsigned i = 0; i < rec->nr_disks; i++) {
		struct vm_disk *k = &vm->rec.disks[i];
		if (snprintf(k->path, sizeof(k->path), "%.4000s/disk%u.qcow2", dir, i) >=
		    (int)sizeof(k->path)) {
			r = daemon_err_set(e, 400, "invalid_argument",
					   "the data directory path is too long for disk files");
			break;
		}
		if (k->clone == DISK_CLONE_NONE) {
			k->size_bytes = k->size_gib * GiB;
			continue;
		}
		r = image_lookup_ready(d, k->image, &job->images[i]);
		if (r == -ENOENT) {
			daemon_err_set(e, 400, "invalid_argument",
				       "disks[%u]: there is no image '%s'; import it first with POST "
				       "/api/v1/images", i, k->image);
			break;
		}
		if (r < 0) {
			daemon_err_set(e, 409, "conflict",
				       "disks[%u]: image '%s' is still being imported; wait for its "
				       "task to finish", i, k->image);
			break;
		}
		uint64_t vsize = job->images[i].virtual_size_bytes;
		if (k->size_gib && k->size_gib * GiB < vsize) {
			r = daemon_err_set(e, 400, "invalid_argument",
					   "disks[%u]: size_gib %llu is smaller than image '%s' "
					   "(%llu bytes); give at least %llu",
					   i, (unsigned long long)k->size_gib, k->image,
					   (unsigned long long)vsize,
					   (unsigned long long)((vsize + GiB - 1) / GiB));
			break;
		}
		k->size_bytes = k->size_gib ? k->size_gib * GiB : vsize;
		if (k->clone == DISK_CLONE_FULL)
			has_full = true;
	}
	if (r == 0)
		r = admission_check_define_locked(d, &vm->rec, NULL, e);
	if (r == 0) {
		r = vm_insert_locked(d, vm);
		if (r == -EEXIST)
			daemon_err_set(e, 409, "conflict",
				       "a VM named '%s' already exists; choose another name",
				       rec->name);
		else if (r < 0)
			daemon_err_set(e, 500, "internal", "vesseld ran out of memory; retry");
		else
			inserted = true;
	}
	pthread_mutex_unlock(&d->vms_lock);
	if (r < 0)
		goto out;

	char parent[PATH_MAX];
	daemon_path(d, parent, sizeof(parent), "vms");
	mkdir(parent, 0700);
	if (mkdir(dir, 0700) < 0) {
		r = -errno;
		daemon_err_set(e, 500, "internal", "cannot create %s: %s; remove it if it is left "
						   "over from an old VM", dir, strerror(-r));
		goto out;
	}
	made_dir = true;
	if ((r = vm_create_disks(d, &vm->rec, job->images, e)) < 0)
		goto out;
	if (has_full) {
		if ((r = task_create(d, TASK_KIND_DISK_COPY, rec->name, vm->rec.task)) < 0) {
			daemon_err_set(e, 500, "internal", "cannot record the disk copy task");
			goto out;
		}
	} else {
		pthread_mutex_lock(&d->vms_lock);
		vm->rec.state = VM_STATE_STOPPED;
		pthread_mutex_unlock(&d->vms_lock);
	}
	if ((r = store_vm_put(d->store, &vm->rec)) < 0) {
		daemon_err_set(e, 500, "internal", "cannot save vm '%s' in the database; check the "
						   "data directory's disk space", rec->name);
		if (has_full)
			task_finish(d, vm->rec.task, "the VM could not be saved");
		goto out;
	}
	vm_persist(d, vm);
	vm_snapshot(d, vm, rec);
	if (has_full) {
		if (rec->nr_nics)
			networks_changed(d);
		job->d = d;
		job->vm = vm;
		pthread_mutex_lock(&d->vms_lock);
		vm->refs++;
		pthread_mutex_unlock(&d->vms_lock);
		pthread_mutex_unlock(&vm->op_lock);
		if (daemon_spawn(d, vm_copy_thread, job) < 0) {
			/* run it here instead: slower reply, same result; our
			 * own reference, as a failed copy drops the VM */
			pthread_mutex_lock(&d->vms_lock);
			vm->refs++;
			pthread_mutex_unlock(&d->vms_lock);
			vm_copy_thread(job);
			vm_snapshot(d, vm, rec);
			vm_unref(d, vm);
		}
		log_info("vm '%s' created; copying its disks in task %s", rec->name, rec->task);
		return 0;
	}
	log_info("vm '%s' created", rec->name);
	pthread_mutex_unlock(&vm->op_lock);
	free(job);
	if (rec->nr_nics)
		networks_changed(d); /* its NICs' firewall chains */
	return 0;
out:
	/* A failed create leaves nothing behind (docs/api.md "Errors"). */
	if (vm) {
		if (made_dir) {
			for (unsigned i = 0; i < vm->rec.nr_disks; i++)
				unlink(vm->rec.disks[i].path);
			rmdir(dir);
		}
		if (inserted) {
			/* The row first, while the name is still ours: once it is
			 * released another create of it may save its own row. */
			store_vm_delete(d->store, rec->name);
			pthread_mutex_lock(&d->vms_lock);
			vm->refs++; /* keep it alive past vm_remove_locked */
			vm_remove_locked(d, vm);
			pthread_mutex_unlock(&d->vms_lock);
		}
		pthread_mutex_unlock(&vm->op_lock);
		vm_unref(d, vm);
	}
	free(job);
	return r < 0 ? r : -EIO;
}

/* ---- daemon start-up ---------------------------------------------------- */

int vm_registry_load(struct daemon *d)
{
	struct vm_record *v = NULL;
	size_t n = 0;
	int r = store_vm_list(d->store, &v, &n);
	if (r < 0)
		return r;
	vm_events_init(d);
	pthread_mutex_lock(&d->vms_lock);
	for (size_t i = 0; i < n; i++) {
		if (v[i].state == VM_STATE_PROVISIONING) {
			/* Its disk copy died with the previous vesseld. */
			log_warn("vm '%s' was still copying its disks when vesseld stopped; "
				 "removing it", v[i].name);
			store_vm_delete(d->store, v[i].name);
			vm_remove_files(d, &v[i]);
			continue;
		}
		struct vm *vm = vm_alloc(&v[i]);
		if (!vm || vm_insert_locked(d, vm) < 0) {
			free(vm);
			r = -ENOMEM;
			break;
		}
	}
	pthread_mutex_unlock(&d->vms_lock);
	free(v);
	return r;
}

void vm_registry_free(struct daemon *d)
{
	/* Running VMs keep running: for a live monitor the engine's release
	 * detaches (QEMU and its sockets stay for the next attach). */
	for (size_t i = 0; i < d->nr_vms; i++) {
		d->vms[i]->active = false;
		if (d->engine)
			vm_release_handle(d, d->vms[i]);
		vm_destroy(d->vms[i]);
	}
	free(d->vms);
	d->vms = NULL;
	d->nr_vms = d->cap_vms = 0;
	vm_list_cache_put(d->vms_cache);
	d->vms_cache = NULL;
}

static void vm_attach(struct daemon *d, struct vm *vm)
{
	struct engine_vm_spec *spec = malloc(sizeof(*spec));
	struct vm_record *r = malloc(sizeof(*r));
	char *err = NULL;
	if (!spec || !r)
		goto out;
	vm_snapshot(d, vm, r);
	vm_build_spec(d, r, spec);
	pthread_mutex_lock(&d->vms_lock);
	vm->active = true;
	vm->monitor_gone = false;
	pthread_mutex_unlock(&d->vms_lock);
	struct engine_vm *h = NULL;
	int ret = d->engine->ops->attach(d->engine, spec, &d->events, &h, &err);
	if (ret < 0) {
		pthread_mutex_lock(&d->vms_lock);
		vm->active = false;
		pthread_mutex_unlock(&d->vms_lock);
		const char *why = ret == -ESRCH ? "QEMU was not running when vesseld started" : err;
		char reason[MODEL_REASON_MAX];
		if (ret == -ESRCH || !err)
			snprintf(reason, sizeof(reason), "QEMU was not running when vesseld started");
		else
			snprintf(reason, sizeof(reason), "vesseld could not re-attach to QEMU: %s", why);
		log_warn("vm '%s': %s", r->name, reason);
		vm_set_state(d, vm, VM_STATE_CRASHED, reason);
		goto out;
	}
	pthread_rwlock_wrlock(&vm->handle_lock);
	vm->handle = h;
	pthread_rwlock_unlock(&vm->handle_lock);
	enum engine_state est = ENGINE_STATE_RUNNING;
	if (d->engine->ops->query(h, &est, &err) < 0) {
		free(err);
		err = NULL;
	}
	pthread_mutex_lock(&d->vms_lock);
	pid_t pid = 0;
	if (!vm->monitor_gone) {
		vm->rec.state = est == ENGINE_STATE_PAUSED ? VM_STATE_PAUSED : VM_STATE_RUNNING;
		vm->rec.pid = d->engine->ops->pid(h);
		pid = vm->rec.pid;
	}
	pthread_mutex_unlock(&d->vms_lock);
	vm_persist(d, vm);
	/* Find the VM's group again (same path), or make it when the tree
	 * is new; writing the pid again is harmless when it is already in. */
	if (pid > 0 && d->cgroups.usable) {
		int cr = cgroup_vm_prepare(&d->cgroups, r->name, r->priority);
		if (cr == 0)
			cr = cgroup_vm_attach(&d->cgroups, r->name, pid);
		if (cr < 0)
			log_warn("vm '%s': cannot put QEMU pid %d in its cgroup: %s", r->name,
				 (int)pid, strerror(-cr));
	}
	log_info("vm '%s' re-attached (pid %d)", r->name, (int)vm->rec.pid);
out:
	free(err);
	free(spec);
	free(r);
}

struct vm_autostart {
	struct daemon *d;
	struct vm **vms; /* in start order, one reference each */
	size_t n;
};

/* Autostart runs the VMs one after the other in priority order (P0 first,
 * then by name), so the most important VMs get the host first when
 * capacity is short. */
static void *vm_autostart_thread(void *arg)
{
	struct vm_autostart *as = arg;
	for (size_t i = 0; i < as->n; i++) {
		struct daemon_err e = {0};
		struct vm *vm = as->vms[i];
		if (!as->d->shutting_down) {
			log_info("vm '%s': autostart (priority %s)", vm->rec.name,
				 model_priority_name(vm->rec.priority));
			if (vm_start(as->d, vm, &e) < 0)
				log_error("vm '%s': autostart failed: %s", vm->rec.name, e.message);
		}
		vm_unref(as->d, vm);
	}
	free(as->vms);
	free(as);
	return NULL;
}

static int vm_autostart_cmp(const void *a, const void *b)
{
	const struct vm *x = *(struct vm *const *)a, *y = *(struct vm *const *)b;
	if (x->rec.priority != y->rec.priority)
		return x->rec.priority < y->rec.priority ? -1 : 1;
	return strcmp(x->rec.name, y->rec.name);
}

void vm_registry_resume(struct daemon *d)
{
	pthread_mutex_lock(&d->vms_lock);
	size_t n = d->nr_vms;
	struct vm **list = malloc((n ? n : 1) * sizeof(*list));
	for (size_t i = 0; list && i < n; i++) {
		list[i] = d->vms[i];
		list[i]->refs++;
	}
	pthread_mutex_unlock(&d->vms_lock);
	if (!list)
		return;
	struct vm_autostart *as = calloc(1, sizeof(*as));
	if (as) {
		as->d = d;
		as->vms = malloc((n ? n : 1) * sizeof(*as->vms));
	}
	for (size_t i = 0; i < n; i++) {
		struct vm *vm = list[i];
		enum vm_state st = vm_state_of(d, vm);
		pthread_mutex_lock(&vm->op_lock);
		if (st == VM_STATE_RUNNING || st == VM_STATE_PAUSED || st == VM_STATE_STARTING ||
		    st == VM_STATE_STOPPING)
			vm_attach(d, vm);
		st = vm_state_of(d, vm);
		if (!admission_state_uses_host(st))
			cgroup_vm_remove_stale(&d->cgroups, vm->rec.name);
		pthread_mutex_unlock(&vm->op_lock);
		bool autostart;
		pthread_mutex_lock(&d->vms_lock);
		autostart = vm->rec.autostart;
		pthread_mutex_unlock(&d->vms_lock);
		if (autostart && (st == VM_STATE_STOPPED || st == VM_STATE_CRASHED) && as &&
		    as->vms) {
			as->vms[as->n++] = vm; /* the autostart thread drops the reference */
			continue;
		}
		vm_unref(d, vm);
	}
	free(list);
	if (as && as->n) {
		pthread_mutex_lock(&d->vms_lock);
		qsort(as->vms, as->n, sizeof(*as->vms), vm_autostart_cmp);
		pthread_mutex_unlock(&d->vms_lock);
		if (daemon_spawn(d, vm_autostart_thread, as) == 0)
			return;
		vm_autostart_thread(as);
		return;
	}
	if (as)
		free(as->vms);
	free(as);
}
