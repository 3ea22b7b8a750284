/* snapshots: VM snapshots as a tree of external qcow2 overlays, their
 * revert and delete, per-VM schedules and the thread that runs them and
 * prunes by the retention policy (docs/backups.md "Snapshots").
 *
 * Model. Taking snapshot S freezes each disk's current file (S.files[i])
 * and moves the VM onto a new overlay backed by it; so a snapshot's files
 * are backed by its parent's files, and the VM's current files by the
 * files of the "head" snapshot. Running VMs get the overlay from QEMU
 * (blockdev-snapshot-sync), stopped ones from qemu-img create -b. A full
 * snapshot is the same plus the RAM and device state saved to a file
 * while the guest is paused, so disk and memory are from the same instant.
 * We chose this over QEMU's internal snapshots (snapshot-save) so that
 * disk-only and full snapshots share one tree of files and one delete
 * path; reverting a full snapshot starts QEMU with "-incoming" on that
 * state, so the guest resumes exactly where it was (as libvirt does for
 * external memory snapshots).
 *
 * Revert discards the VM's current overlay and puts a new one on the
 * snapshot's files. Delete merges a snapshot's data into the files that
 * depend on it (child snapshots, the current disk): block-stream while the
 * file is open in a running QEMU, qemu-img rebase (safe mode, which copies
 * what differs) otherwise; then the files go. One lock serialises all
 * snapshot work in vesseld; VM lifecycle operations are kept out by the
 * VM's op_lock while files move. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/qemu_img.h"
#include "daemon/retention.h"
#include "daemon/store.h"
#include "lib/util.h"

#define SNAP_KIND "snapshot"
#define HEAD_KIND "snapshot_head"
#define SCHED_KIND "schedule"

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- records ------------------------------------------------------------ */

static void snap_key(char *out, size_t cap, const char *vm, const char *name)
{
	snprintf(out, cap, "%s/%s", vm, name);
}

static int snap_cmp(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t tx = json_integer_value(json_object_get(x, "created_epoch"));
	json_int_t ty = json_integer_value(json_object_get(y, "created_epoch"));
	if (tx != ty)
		return tx < ty ? -1 : 1;
	return strcmp(json_string_value(json_object_get(x, "name")),
		      json_string_value(json_object_get(y, "name")));
}

/* A VM's snapshots, oldest first (rows are rewritten when a parent
 * changes, so the database order is not the creation order). */
static json_t *snap_list(struct daemon *d, const char *vm)
{
	json_t *arr = NULL, *out;
	if (store_protection_list(d->store, SNAP_KIND, vm, &arr) < 0)
		return json_array();
	size_t n = json_array_size(arr);
	json_t **v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return arr;
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), snap_cmp);
	out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(arr);
	return out;
}

static json_t *snap_find(json_t *list, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s) {
		const char *n = json_string_value(json_object_get(s, "name"));
		if (n && strcmp(n, name) == 0)
			return s;
	}
	return NULL;
}

static int snap_save(struct daemon *d, const char *vm, json_t *s)
{
	char key[160];
	snap_key(key, sizeof(key), vm, json_string_value(json_object_get(s, "name")));
	return store_protection_put(d->store, SNAP_KIND, key, vm, s);
}

/* The snapshot the VM's current disks are based on; empty when none. */
static void snap_head_get(struct daemon *d, const char *vm, char out[MODEL_NAME_MAX])
{
	json_t *arr = NULL;
	out[0] = '\0';
	if (store_protection_list(d->store, HEAD_KIND, vm, &arr) < 0)
		return;
	const char *h = json_string_value(json_object_get(json_array_get(arr, 0), "head"));
	if (h)
		snprintf(out, MODEL_NAME_MAX, "%s", h);
	json_decref(arr);
}

static void snap_head_set(struct daemon *d, const char *vm, const char *head)
{
	json_t *doc = json_pack("{s:s,s:o}", "vm", vm, "head",
				head && *head ? json_string(head) : json_null());
	store_protection_put(d->store, HEAD_KIND, vm, vm, doc);
	json_decref(doc);
}

void snapshots_head_clear(struct daemon *d, const char *vm)
{
	snap_head_set(d, vm, NULL);
}

json_t *snapshots_of_vm(struct daemon *d, const char *vm)
{
	json_t *list = snap_list(d, vm), *names = json_array(), *s;
	size_t i;
	json_array_foreach(list, i, s)
		json_array_append(names, json_object_get(s, "name"));
	json_decref(list);
	return names;
}

void snapshots_forget_vm(struct daemon *d, const char *vm)
{
	/* backup_chain (backups.c) names the live dirty bitmap's chain: a
	 * new VM of the same name must not inherit it. */
	static const char *const kinds[] = {SNAP_KIND, SCHED_KIND, "drill", "backup_chain"};
	pthread_mutex_lock(&snap_lock);
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		json_t *list = NULL, *s;
		size_t i;
		if (store_protection_list(d->store, kinds[k], vm, &list) < 0)
			continue;
		json_array_foreach(list, i, s) {
			char key[160];
			const char *n = json_string_value(json_object_get(s, "name"));
			const char *id = json_string_value(json_object_get(s, "id"));
			if (k == 0 && n)
				snap_key(key, sizeof(key), vm, n);
			else
				snprintf(key, sizeof(key), "%s", id ? id : "");
			store_protection_delete(d->store, kinds[k], key);
		}
		json_decref(list);
	}
	store_protection_delete(d->store, HEAD_KIND, vm);
	pthread_mutex_unlock(&snap_lock);
}

/* Bytes a file takes on the host (allocated blocks, not its virtual size). */
static uint64_t snap_file_bytes(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

static json_t *snap_to_json(const json_t *s, const char *head)
{
	json_t *j = json_deep_copy(s);
	uint64_t used = 0;
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(s, "files"), i, f)
		used += snap_file_bytes(json_string_value(f));
	used += snap_file_bytes(json_string_value(json_object_get(s, "state_file")));
	json_object_set_new(j, "used_bytes", json_integer((json_int_t)used));
	json_object_set_new(j, "current",
			    json_boolean(head && strcmp(head, json_string_value(json_object_get(
								    s, "name"))) == 0));
	json_object_del(j, "created_epoch");
	return j;
}

/* ---- helpers ----------------------------------------------------------- */

static int snap_err_engine(struct daemon_err *e, const char *vm, const char *what, int r,
			   char *err)
{
	daemon_err_set(e, 500, "engine_failed", "vm '%s': %s failed: %s", vm, what,
		       err ? err : strerror(-r));
	free(err);
	return r < 0 ? r : -EIO;
}

static bool snap_has_qemu(const struct vm_record *r)
{
	return r->state == VM_STATE_RUNNING || r->state == VM_STATE_PAUSED;
}

static bool snap_is_stopped(const struct vm_record *r)
{
	return r->state == VM_STATE_STOPPED || r->state == VM_STATE_CRASHED;
}

static void snap_new_path(struct daemon *d, const char *vm, const char *what, unsigned i,
			  char *out, size_t cap)
{
	char dir[PATH_MAX];
	daemon_path(d, dir, sizeof(dir), "vms/%s", vm);
	snprintf(out, cap, "%.4000s/%s%u-%llx.qcow2", dir, what, i,
		 (unsigned long long)(util_now_ns() & 0xffffffffffffull));
}

static int snap_qemu_img(struct daemon *d, const char *const *args, struct daemon_err *e,
			 const char *what)
{
	char *err = NULL;
	int r = qemu_img_run(d->cfg.qemu_img, args, NULL, NULL, NULL, &err);
	if (r < 0) {
		daemon_err_set(e, 500, "internal", "%s failed: %s", what, err ? err : strerror(-r));
		free(err);
	}
	return r;
}

/* ---- create ------------------------------------------------------------- */

/* Take snapshot `name` of vm (snap_lock held). created: epoch seconds. */
static int snap_take(struct daemon *d, struct vm *vm, const char *name, bool full,
		     const char *description, const char *schedule, int64_t created,
		     struct daemon_err *e, json_t **out)
{
	struct vm_record *r = malloc(sizeof(*r));
	json_t *list = NULL, *files = json_array(), *snap = NULL;
	char head[MODEL_NAME_MAX], state_file[PATH_MAX] = "";
	char newp[MODEL_MAX_DISKS][PATH_MAX];
	bool paused = false;
	int ret = 0;
	char *err = NULL;

	if (!r)
		return daemon_err_set(e, 500, "internal", "vesseld ran out of memory; retry");
	pthread_mutex_lock(&vm->op_lock);
	vm_snapshot(d, vm, r);
	list = snap_list(d, r->name);
	if (vm->removed) {
		ret = daemon_err_set(e, 404, "not_found", "vm '%s' was just deleted", r->name);
		goto out;
	}
	if (snap_find(list, name)) {
		ret = daemon_err_set(e, 409, "conflict", "vm '%s' already has a snapshot '%s'; choose "
							 "another name", r->name, name);
		goto out;
	}
	if (!snap_has_qemu(r) && !snap_is_stopped(r)) {
		ret = daemon_err_set(e, 409, "conflict", "vm '%s' is %s; take the snapshot when it is "
							 "running, paused or stopped", r->name,
				     model_vm_state_name(r->state));
		goto out;
	}
	if (full && !snap_has_qemu(r)) {
		ret = daemon_err_set(e, 409, "conflict",
				     "vm '%s' is %s, so it has no memory to save; a full snapshot "
				     "needs a running VM (take a disk snapshot instead)",
				     r->name, model_vm_state_name(r->state));
		goto out;
	}
	if (snap_has_qemu(r) && !d->engine->ops->disk_snapshot) {
		ret = daemon_err_set(e, 501, "not_implemented", "the %s engine cannot snapshot a "
								"running VM; stop it first",
				     d->engine->name);
		goto out;
	}
	snap_head_get(d, r->name, head);
	for (unsigned i = 0; i < r->nr_disks; i++)
		snap_new_path(d, r->name, "disk", i, newp[i], sizeof(newp[i]));

	if (snap_has_qemu(r)) {
		/* All disks (and the memory) from one instant: pause around
		 * them unless there is one disk and no memory to save. */
		if ((full || r->nr_disks > 1) && r->state == VM_STATE_RUNNING) {
			if ((ret = d->engine->ops->pause(vm->handle, &err)) < 0) {
				snap_err_engine(e, r->name, "pausing for the snapshot", ret, err);
				goto out;
			}
			paused = true;
		}
		for (unsigned i = 0; i < r->nr_disks; i++) {
			ret = d->engine->ops->disk_snapshot(vm->handle, i, newp[i], &err);
			if (ret < 0) {
				snap_err_engine(e, r->name, "the disk snapshot", ret, err);
				err = NULL;
				/* Disks already moved stay on their overlays (their
				 * data is intact, one layer deeper). */
				for (unsigned k = 0; k < i; k++)
					vm_disk_set(d, vm, k, newp[k], 0);
				unlink(newp[i]);
				goto out;
			}
		}
		if (full) {
			char dir[PATH_MAX];
			daemon_path(d, dir, sizeof(dir), "vms/%s", r->name);
			snprintf(state_file, sizeof(state_file), "%.4000s/state-%s.bin", dir, name);
			ret = d->engine->ops->state_save(vm->handle, state_file, &err);
			if (ret < 0) {
				state_file[0] = '\0';
				snap_err_engine(e, r->name, "saving the memory", ret, err);
				err = NULL;
				for (unsigned k = 0; k < r->nr_disks; k++)
					vm_disk_set(d, vm, k, newp[k], 0);
				goto out;
			}
		}
	} else {
		for (unsigned i = 0; i < r->nr_disks; i++) {
			const char *args[] = {"create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
					      r->disks[i].path, newp[i], NULL};
			if ((ret = snap_qemu_img(d, args, e, "creating the snapshot overlay")) < 0) {
				for (unsigned k = 0; k <= i; k++)
					unlink(newp[k]);
				goto out;
			}
		}
	}
	for (unsigned i = 0; i < r->nr_disks; i++) {
		json_array_append_new(files, json_string(r->disks[i].path));
		vm_disk_set(d, vm, i, newp[i], 0);
	}
	char at[32];
	retention_time_format(created, at);
	snap = json_pack("{s:s,s:s,s:o,s:s,s:s,s:I,s:s,s:O,s:o,s:o,s:s}", "vm", r->name, "name",
			 name, "parent", head[0] ? json_string(head) : json_null(), "type",
			 full ? "full" : "disk", "created_at", at, "created_epoch",
			 (json_int_t)created, "vm_state", model_vm_state_name(r->state), "files",
			 files, "state_file", state_file[0] ? json_string(state_file) : json_null(),
			 "schedule", schedule ? json_string(schedule) : json_null(), "description",
			 description ? description : "");
	if ((ret = snap_save(d, r->name, snap)) < 0) {
		daemon_err_set(e, 500, "internal", "the snapshot was taken but could not be saved "
						   "in the database; check the data directory");
		goto out;
	}
	snap_head_set(d, r->name, name);
	log_info("vm '%s': %s snapshot '%s' taken", r->name, full ? "full" : "disk", name);
	if (out)
		*out = snap_to_json(snap, name);
out:
	if (paused) {
		if (d->engine->ops->resume(vm->handle, &err) < 0) {
			log_error("vm '%s': could not resume after the snapshot: %s", r->name,
				  err ? err : "no reason");
			free(err);
			err = NULL;
		}
	}
	pthread_mutex_unlock(&vm->op_lock);
	free(err);
	json_decref(snap);
	json_decref(files);
	json_decref(list);
	free(r);
	return ret;
}

/* ---- delete ------------------------------------------------------------- */

/* The files of the running chain of disk i: the current file and its
 * ancestors through the head snapshot and its parents. */
static bool snap_in_running_chain(json_t *list, const char *head, unsigned i, const char *file)
{
	const char *cur = head;
	for (int guard = 0; cur && *cur && guard < 10000; guard++) {
		json_t *s = snap_find(list, cur);
		if (!s)
			break;
		const char *f = json_string_value(json_array_get(json_object_get(s, "files"), i));
		if (f && strcmp(f, file) == 0)
			return true;
		cur = json_string_value(json_object_get(s, "parent"));
	}
	return false;
}

/* Remove snapshot s (snap_lock and op_lock held): merge its data into
 * every file that depends on it, then delete its files. */
static int snap_remove_locked(struct daemon *d, struct vm *vm, json_t *list, json_t *s,
			      bool merge, struct daemon_err *e)
{
	struct vm_record *r = malloc(sizeof(*r));
	const char *name = json_string_value(json_object_get(s, "name"));
	const char *parent = json_string_value(json_object_get(s, "parent"));
	json_t *children = json_array(), *c;
	char head[MODEL_NAME_MAX];
	size_t ci;
	int ret = 0;
	if (!r || !children) {
		ret = daemon_err_set(e, 500, "internal", "vesseld ran out of memory; retry");
		goto out;
	}
	vm_snapshot(d, vm, r);
	snap_head_get(d, r->name, head);
	json_array_foreach(list, ci, c) {
		const char *p = json_string_value(json_object_get(c, "parent"));
		if (p && strcmp(p, name) == 0)
			json_array_append(children, c);
	}
	if (json_array_size(children) && !merge) {
		char names[512] = "";
		json_array_foreach(children, ci, c) {
			size_t l = strlen(names);
			snprintf(names + l, sizeof(names) - l, "%s'%s'", l ? ", " : "",
				 json_string_value(json_object_get(c, "name")));
		}
		ret = daemon_err_set(e, 409, "conflict",
				     "snapshot '%s' of vm '%s' has child snapshots %s that depend on "
				     "its data; delete with ?merge=true to merge it into them",
				     name, r->name, names);
		goto out;
	}
	if (!snap_has_qemu(r) && !snap_is_stopped(r)) {
		ret = daemon_err_set(e, 409, "conflict", "vm '%s' is %s; delete snapshots when it is "
							 "running, paused or stopped", r->name,
				     model_vm_state_name(r->state));
		goto out;
	}
	bool is_head = strcmp(head, name) == 0;
	for (unsigned i = 0; i < r->nr_disks; i++) {
		const char *file = json_string_value(json_array_get(json_object_get(s, "files"), i));
		struct qemu_img_info info;
		char *err = NULL;
		if (!file)
			continue;
		if ((ret = qemu_img_info(d->cfg.qemu_img, file, "qcow2", &info, &err)) < 0) {
			daemon_err_set(e, 500, "internal", "cannot read snapshot file %s: %s", file,
				       err ? err : strerror(-ret));
			free(err);
			goto out;
		}
		/* Dependents of this file: the child snapshots' files, and the
		 * VM's current file when this is the head snapshot. */
		const char *deps[64];
		size_t nd = 0;
		json_array_foreach(children, ci, c) {
			const char *f = json_string_value(
				json_array_get(json_object_get(c, "files"), i));
			if (f && nd < ARRAY_SIZE(deps))
				deps[nd++] = f;
		}
		if (is_head)
			deps[nd++] = r->disks[i].path;
		for (size_t k = 0; k < nd; k++) {
			bool live = snap_has_qemu(r) &&
				    (strcmp(deps[k], r->disks[i].path) == 0 ||
				     snap_in_running_chain(list, head, i, deps[k]));
			if (live) {
				if (!d->engine->ops->disk_merge) {
					ret = daemon_err_set(e, 501, "not_implemented",
							     "the %s engine cannot merge snapshots "
							     "of a running VM; stop it first",
							     d->engine->name);
					goto out;
				}
				ret = d->engine->ops->disk_merge(vm->handle, deps[k],
								 info.backing[0] ? info.backing :
										   NULL,
								 &err);
				if (ret < 0) {
					snap_err_engine(e, r->name, "merging the snapshot", ret, err);
					goto out;
				}
			} else {
				/* Safe-mode rebase copies into deps[k] whatever
				 * differs between the old and the new backing. */
				const char *args[] = {"rebase", "-q", "-f", "qcow2", "-F", "qcow2",
						      "-b", info.backing, deps[k], NULL};
				const char *args_nob[] = {"rebase", "-q", "-f", "qcow2", "-b", "",
							  deps[k], NULL};
				ret = snap_qemu_img(d, info.backing[0] ? args : args_nob, e,
						    "merging the snapshot (qemu-img rebase)");
				if (ret < 0)
					goto out;
			}
		}
	}
	/* Every dependent now stands on the parent: drop the files. */
	json_t *f;
	json_array_foreach(json_object_get(s, "files"), ci, f)
		unlink(json_string_value(f));
	const char *sf = json_string_value(json_object_get(s, "state_file"));
	if (sf)
		unlink(sf);
	json_array_foreach(children, ci, c) {
		json_t *cc = snap_find(list, json_string_value(json_object_get(c, "name")));
		json_object_set_new(cc, "parent", parent ? json_string(parent) : json_null());
		snap_save(d, r->name, cc);
	}
	if (is_head)
		snap_head_set(d, r->name, parent);
	char key[160];
	snap_key(key, sizeof(key), r->name, name);
	store_protection_delete(d->store, SNAP_KIND, key);
	log_info("vm '%s': snapshot '%s' deleted%s", r->name, name,
		 json_array_size(children) || is_head ? ", its data merged into its dependents" : "");
out:
	json_decref(children);
	free(r);
	return ret;
}

static int snap_delete(struct daemon *d, struct vm *vm, const char *name, bool merge,
		       struct daemon_err *e)
{
	pthread_mutex_lock(&vm->op_lock);
	json_t *list = snap_list(d, vm->rec.name);
	json_t *s = snap_find(list, name);
	int r;
	if (!s)
		r = daemon_err_set(e, 404, "not_found", "vm '%s' has no snapshot '%s'", vm->rec.name,
				   name);
	else
		r = snap_remove_locked(d, vm, list, s, merge, e);
	json_decref(list);
	pthread_mutex_unlock(&vm->op_lock);
	return r;
}

/* ---- revert ------------------------------------------------------------- */

static int snap_revert(struct daemon *d, struct vm *vm, const char *name, bool stop,
		       struct daemon_err *e, json_t **result)
{
	struct vm_record *r = malloc(sizeof(*r));
	json_t *list = snap_list(d, vm->rec.name);
	json_t *s = snap_find(list, name);
	bool was_running = false, start_after = false;
	char newp[MODEL_MAX_DISKS][PATH_MAX];
	int ret = 0;
	if (!r) {
		ret = daemon_err_set(e, 500, "internal", "vesseld ran out of memory; retry");
		goto out;
	}
	vm_snapshot(d, vm, r);
	if (!s) {
		ret = daemon_err_set(e, 404, "not_found", "vm '%s' has no snapshot '%s'", r->name,
				     name);
		goto out;
	}
	bool full = strcmp(json_string_value(json_object_get(s, "type")), "full") == 0;
	if (!snap_is_stopped(r)) {
		if (!snap_has_qemu(r) || !stop) {
			ret = daemon_err_set(e, 409, "conflict",
					     "vm '%s' is %s; reverting throws away its current state, "
					     "so stop it first or ask for it with {\"stop\": true}",
					     r->name, model_vm_state_name(r->state));
			goto out;
		}
		/* Its current state is being discarded, so no graceful
		 * shutdown: that would only write to disks we drop. */
		if ((ret = vm_force_stop(d, vm, e)) < 0)
			goto out;
		was_running = true;
		log_info("vm '%s': stopped to revert to snapshot '%s'", r->name, name);
	}
	pthread_mutex_lock(&vm->op_lock);
	vm_snapshot(d, vm, r);
	if (!snap_is_stopped(r)) {
		pthread_mutex_unlock(&vm->op_lock);
		ret = daemon_err_set(e, 409, "conflict", "vm '%s' was started meanwhile; retry",
				     r->name);
		goto out;
	}
	for (unsigned i = 0; i < r->nr_disks; i++) {
		const char *f = json_string_value(json_array_get(json_object_get(s, "files"), i));
		snap_new_path(d, r->name, "disk", i, newp[i], sizeof(newp[i]));
		const char *args[] = {"create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", f ? f : "",
				      newp[i], NULL};
		if (!f || (ret = snap_qemu_img(d, args, e, "creating the revert overlay")) < 0) {
			if (!f)
				ret = daemon_err_set(e, 500, "internal", "snapshot '%s' has no file for "
									 "disk %u", name, i);
			for (unsigned k = 0; k <= i; k++)
				unlink(newp[k]);
			pthread_mutex_unlock(&vm->op_lock);
			goto out;
		}
	}
	/* The old current files are not any snapshot's: drop them. */
	for (unsigned i = 0; i < r->nr_disks; i++) {
		bool owned = false;
		size_t k;
		json_t *o;
		json_array_foreach(list, k, o) {
			const char *f = json_string_value(json_array_get(json_object_get(o, "files"), i));
			owned |= f && strcmp(f, r->disks[i].path) == 0;
		}
		vm_disk_set(d, vm, i, newp[i], 0);
		if (!owned)
			unlink(r->disks[i].path);
	}
	snap_head_set(d, r->name, name);
	const char *sf = json_string_value(json_object_get(s, "state_file"));
	if (full && sf)
		snprintf(vm->incoming, sizeof(vm->incoming), "%s", sf);
	start_after = full || was_running;
	pthread_mutex_unlock(&vm->op_lock);
	log_info("vm '%s': reverted to %s snapshot '%s'", r->name, full ? "full" : "disk", name);
	if (start_after && (ret = vm_start(d, vm, e)) < 0)
		goto out;
	vm_snapshot(d, vm, r);
	*result = json_pack("{s:s,s:s,s:s,s:b}", "vm", r->name, "reverted_to", name, "state",
			    model_vm_state_name(r->state), "resumed", full);
out:
	json_decref(list);
	free(r);
	return ret;
}

/* ---- schedules and pruning --------------------------------------------- */

static void sched_save(struct daemon *d, const struct schedule *s)
{
	json_t *j = retention_schedule_json(s);
	store_protection_put(d->store, SCHED_KIND, s->id, s->vm, j);
	json_decref(j);
}

/* Apply schedule s's retention to its snapshots (snap_lock held). */
static void sched_prune(struct daemon *d, struct vm *vm, const struct schedule *s, int64_t now)
{
	json_t *list = snap_list(d, s->vm), *o;
	size_t n = 0, i;
	int64_t times[1024];
	const char *names[1024];
	bool keep[1024];
	json_array_foreach(list, i, o) {
		const char *sch = json_string_value(json_object_get(o, "schedule"));
		if (sch && strcmp(sch, s->id) == 0 && n < ARRAY_SIZE(times)) {
			times[n] = json_integer_value(json_object_get(o, "created_epoch"));
			names[n++] = json_string_value(json_object_get(o, "name"));
		}
	}
	retention_select(times, n, now, s->keep_count, s->keep_age_s, keep);
	for (i = 0; i < n; i++) {
		if (keep[i])
			continue;
		struct daemon_err e = {0};
		pthread_mutex_lock(&vm->op_lock);
		json_t *fresh = snap_list(d, s->vm);
		json_t *snap = snap_find(fresh, names[i]);
		int r = snap ? snap_remove_locked(d, vm, fresh, snap, true, &e) : 0;
		pthread_mutex_unlock(&vm->op_lock);
		json_decref(fresh);
		if (r < 0)
			log_warn("schedule %s of vm '%s': cannot prune snapshot '%s': %s", s->id,
				 s->vm, names[i], e.message);
		else
			log_info("schedule %s of vm '%s': pruned snapshot '%s' (age %llds; policy "
				 "keep_count %u, keep_age %llds)", s->id, s->vm, names[i],
				 (long long)(now - times[i]), s->keep_count,
				 (long long)s->keep_age_s);
	}
	json_decref(list);
}

static void sched_tick(struct daemon *d)
{
	json_t *list = NULL, *j;
	size_t i;
	int64_t now = retention_now();
	if (store_protection_list(d->store, SCHED_KIND, NULL, &list) < 0)
		return;
	json_array_foreach(list, i, j) {
		struct schedule s;
		if (retention_schedule_from_json(j, &s) < 0)
			continue;
		struct vm *vm = vm_get(d, s.vm);
		if (!vm)
			continue;
		pthread_mutex_lock(&snap_lock);
		if (s.next_run <= now) {
			char name[MODEL_NAME_MAX], ts[32];
			struct daemon_err e = {0};
			struct vm_record st;
			vm_snapshot(d, vm, &st);
			retention_time_format(now, ts);
			/* auto-<schedule>-YYYYMMDDTHHMMSS: a DNS label */
			snprintf(name, sizeof(name), "auto-%.12s-%.4s%.2s%.2st%.2s%.2s%.2s", s.id, ts,
				 ts + 5, ts + 8, ts + 11, ts + 14, ts + 17);
			bool full = s.full && snap_has_qemu(&st);
			if (snap_take(d, vm, name, full, "taken by a schedule", s.id, now, &e, NULL) < 0)
				log_warn("schedule %s of vm '%s': snapshot failed: %s", s.id, s.vm,
					 e.message);
			s.last_run = now;
			s.next_run = retention_next_run(&s, now);
			sched_save(d, &s);
		}
		sched_prune(d, vm, &s, now);
		pthread_mutex_unlock(&snap_lock);
		vm_unref(d, vm);
	}
	json_decref(list);
}

static void *sched_thread(void *arg)
{
	struct daemon *d = arg;
	while (!__atomic_load_n(&d->shutting_down, __ATOMIC_ACQUIRE)) {
		sched_tick(d);
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 500000000L};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

void snapshots_scheduler_start(struct daemon *d)
{
	backups_startup_cleanup(d);
	if (daemon_spawn(d, sched_thread, d) < 0)
		log_error("cannot start the snapshot scheduler thread; schedules will not run");
}

/* ---- HTTP handlers ------------------------------------------------------ */

/* The VM of the path, within the caller's project scope (404 otherwise). */
static struct vm *snap_vm(struct http_req *req)
{
	return http_vm_get(req);
}

static void snap_tree_add(json_t *list, const char *parent, json_t *into, const char *head)
{
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s) {
		const char *p = json_string_value(json_object_get(s, "parent"));
		if ((!parent && !p) || (parent && p && strcmp(parent, p) == 0)) {
			const char *n = json_string_value(json_object_get(s, "name"));
			json_t *node = json_pack("{s:s,s:s,s:b,s:[]}", "name", n, "type",
						 json_string_value(json_object_get(s, "type")),
						 "current", strcmp(n, head) == 0, "children");
			snap_tree_add(list, n, json_object_get(node, "children"), head);
			json_array_append_new(into, node);
		}
	}
}

void snapshots_list(struct http_req *req)
{
	struct vm *vm = snap_vm(req);
	if (!vm)
		return;
	char head[MODEL_NAME_MAX];
	json_t *list = snap_list(req->d, vm->rec.name), *out = json_array(), *tree = json_array(),
	       *s;
	size_t i;
	snap_head_get(req->d, vm->rec.name, head);
	json_array_foreach(list, i, s)
		json_array_append_new(out, snap_to_json(s, head));
	snap_tree_add(list, NULL, tree, head);
	http_reply_json(req, 200, json_pack("{s:o,s:o,s:o}", "snapshots", out, "tree", tree,
					    "current", head[0] ? json_string(head) : json_null()));
	json_decref(list);
	vm_unref(req->d, vm);
}

void snapshots_get(struct http_req *req)
{
	struct vm *vm = snap_vm(req);
	if (!vm)
		return;
	char head[MODEL_NAME_MAX];
	json_t *list = snap_list(req->d, vm->rec.name);
	json_t *s = snap_find(list, req->params[1]);
	snap_head_get(req->d, vm->rec.name, head);
	if (!s)
		http_reply_errorf(req, 404, "not_found", "vm '%s' has no snapshot '%s'",
				  vm->rec.name, req->params[1]);
	else
		http_reply_json(req, 200, json_pack("{s:o}", "snapshot", snap_to_json(s, head)));
	json_decref(list);
	vm_unref(req->d, vm);
}

void snapshots_create(struct http_req *req)
{
	json_t *body = NULL, *snap = NULL;
	struct daemon_err e = {0};
	if (http_body_json(req, false, &body) < 0)
		return;
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		if (strcmp(key, "name") && strcmp(key, "type") && strcmp(key, "description")) {
			http_reply_errorf(req, 400, "invalid_argument",
					  "unknown field '%s'; a snapshot takes name, type and "
					  "description", key);
			goto out;
		}
	}
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *type = json_string_value(json_object_get(body, "type"));
	const char *desc = json_string_value(json_object_get(body, "description"));
	if (!name || !util_is_dns_label(name)) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "name must be 1-63 characters of a-z, 0-9 and '-', not starting "
				  "or ending with '-'");
		goto out;
	}
	if (json_object_get(body, "type") &&
	    (!type || (strcmp(type, "disk") != 0 && strcmp(type, "full") != 0))) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "type must be \"disk\" (disks only, crash-consistent) or \"full\" "
				  "(disks, memory and device state)");
		goto out;
	}
	if (json_object_get(body, "description") && (!desc || strlen(desc) > 1024)) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "description must be a string of at most 1024 characters");
		goto out;
	}
	struct vm *vm = snap_vm(req);
	if (!vm)
		goto out;
	pthread_mutex_lock(&snap_lock);
	int r = snap_take(req->d, vm, name, type && strcmp(type, "full") == 0, desc, NULL,
			  retention_now(), &e, &snap);
	pthread_mutex_unlock(&snap_lock);
	if (r < 0)
		http_reply_err(req, &e);
	else
		http_reply_json(req, 201, json_pack("{s:o}", "snapshot", snap));
	vm_unref(req->d, vm);
out:
	json_decref(body);
}

void snapshots_delete(struct http_req *req)
{
	struct daemon_err e = {0};
	const char *merge = http_query(req, "merge");
	if (merge && strcmp(merge, "true") && strcmp(merge, "false")) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "query parameter merge must be true or false; got '%s'", merge);
		return;
	}
	struct vm *vm = snap_vm(req);
	if (!vm)
		return;
	pthread_mutex_lock(&snap_lock);
	int r = snap_delete(req->d, vm, req->params[1], merge && strcmp(merge, "true") == 0, &e);
	pthread_mutex_unlock(&snap_lock);
	if (r < 0)
		http_reply_err(req, &e);
	else
		http_reply_json(req, 200, json_pack("{s:s}", "deleted", req->params[1]));
	vm_unref(req->d, vm);
}

void snapshots_revert(struct http_req *req)
{
	json_t *body = NULL, *result = NULL;
	struct daemon_err e = {0};
	if (http_body_json(req, true, &body) < 0)
		return;
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		if (strcmp(key, "stop") != 0 || !json_is_boolean(v)) {
			http_reply_errorf(req, 400, "invalid_argument",
					  "revert takes only {\"stop\": true|false}; got field '%s'",
					  key);
			json_decref(body);
			return;
		}
	}
	bool stop = json_is_true(json_object_get(body, "stop"));
	json_decref(body);
	struct vm *vm = snap_vm(req);
	if (!vm)
		return;
	pthread_mutex_lock(&snap_lock);
	int r = snap_revert(req->d, vm, req->params[1], stop, &e, &result);
	pthread_mutex_unlock(&snap_lock);
	if (r < 0)
		http_reply_err(req, &e);
	else
		http_reply_json(req, 200, result);
	vm_unref(req->d, vm);
}

void schedules_list(struct http_req *req)
{
	struct vm *vm = snap_vm(req);
	json_t *list = NULL;
	if (!vm)
		return;
	if (store_protection_list(req->d->store, SCHED_KIND, vm->rec.name, &list) < 0)
		list = json_array();
	http_reply_json(req, 200, json_pack("{s:o}", "schedules", list));
	vm_unref(req->d, vm);
}

void schedules_create(struct http_req *req)
{
	json_t *body = NULL;
	struct schedule s;
	char err[RETENTION_ERR_MAX];
	if (http_body_json(req, false, &body) < 0)
		return;
	int r = retention_schedule_parse(body, retention_now(), &s, err);
	json_decref(body);
	if (r < 0) {
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
		return;
	}
	struct vm *vm = snap_vm(req);
	if (!vm)
		return;
	snprintf(s.vm, sizeof(s.vm), "%s", vm->rec.name);
	snprintf(s.id, sizeof(s.id), "s%llx", (unsigned long long)(util_now_ns() & 0xffffffffull));
	pthread_mutex_lock(&snap_lock);
	sched_save(req->d, &s);
	pthread_mutex_unlock(&snap_lock);
	log_info("vm '%s': snapshot schedule %s created", s.vm, s.id);
	http_reply_json(req, 201, json_pack("{s:o}", "schedule", retention_schedule_json(&s)));
	vm_unref(req->d, vm);
}

void schedules_delete(struct http_req *req)
{
	struct vm *vm = snap_vm(req);
	json_t *list = NULL, *j;
	size_t i;
	bool found = false;
	if (!vm)
		return;
	pthread_mutex_lock(&snap_lock);
	if (store_protection_list(req->d->store, SCHED_KIND, vm->rec.name, &list) == 0) {
		json_array_foreach(list, i, j) {
			const char *id = json_string_value(json_object_get(j, "id"));
			if (id && strcmp(id, req->params[1]) == 0)
				found = true;
		}
	}
	if (found)
		store_protection_delete(req->d->store, SCHED_KIND, req->params[1]);
	pthread_mutex_unlock(&snap_lock);
	json_decref(list);
	if (!found)
		http_reply_errorf(req, 404, "not_found", "vm '%s' has no schedule '%s'",
				  vm->rec.name, req->params[1]);
	else
		http_reply_json(req, 200, json_pack("{s:s}", "deleted", req->params[1]));
	vm_unref(req->d, vm);
}
