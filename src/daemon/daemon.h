/* daemon: vesseld's shared state and the functions the API resources
 * (vms.c, images.c, tasks.c, host.c, console.c) call on each other.
 *
 * Locking: d->vms_lock guards the VM list and every vm->rec; a VM's
 * op_lock serialises lifecycle operations on that VM (start/stop/delete...)
 * and is taken before vms_lock, never after. Engine calls are made with
 * op_lock held and vms_lock released, because the engine's event callbacks
 * take vms_lock from the driver's thread. */
#ifndef VESSEL_DAEMON_DAEMON_H
#define VESSEL_DAEMON_DAEMON_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/auth.h"
#include "daemon/admission.h"
#include "daemon/cgroup.h"
#include "daemon/engine/engine.h"
#include "daemon/model.h"
#include "daemon/validate.h"
#include "lib/log.h"

#define DAEMON_MAX_ALLOW_DIRS 16
#define DAEMON_ERR_MAX 2048

struct daemon_config {
	char data_dir[PATH_MAX];
	char listen[128];     /* ADDR:PORT, empty = no TCP listener */
	char socket_path[PATH_MAX]; /* empty = no Unix socket */
	char *allow_dirs[DAEMON_MAX_ALLOW_DIRS];
	size_t nr_allow_dirs;
	char qemu_img[PATH_MAX]; /* "qemu-img" from PATH unless set */
	char backup_store[PATH_MAX]; /* empty = DATA_DIR/backups */
	unsigned http_threads;   /* 0 = number of CPUs */
	char web_dir[PATH_MAX];  /* web UI files; empty = none served */
	unsigned history_interval_s; /* history sampling period; 0 = default (5 s) */
	struct auth_limits auth_limits; /* all zero = AUTH_LIMITS_DEFAULT */
	/* Admission (docs/operations.md "Capacity, overcommit and quotas"):
	 * capacity overrides (0 = detect from the machine) and overcommit
	 * ratios (0 = the stored setting, else the default). */
	uint64_t capacity_cpus, capacity_memory_mib, capacity_disk_gib;
	double cpu_ratio, memory_ratio;
	/* cgroup v2 root for VM groups: "" = none (priorities not enforced),
	 * "auto" = <cgroup2 mount>/vessel.slice, else that directory. */
	char cgroup_root[PATH_MAX];
};

/* An API error: HTTP status, code from docs/api.md and a sentence. */
struct daemon_err {
	unsigned status;
	const char *code;
	char message[DAEMON_ERR_MAX];
	/* Admission refusals carry their numbers into the error body. */
	bool has_refusal;
	bool refusal_host; /* host capacity, else a project quota */
	struct admission_refusal refusal;
	char refusal_project[MODEL_NAME_MAX];
};

__attribute__((format(printf, 4, 5))) int daemon_err_set(struct daemon_err *e, unsigned status,
							 const char *code, const char *fmt, ...);

struct vm {
	pthread_mutex_t op_lock;
	struct vm_record rec;        /* under d->vms_lock */
	/* The engine handle: changed only with op_lock and handle_lock (write)
	 * held; console readers take handle_lock (read) so a long stop does
	 * not block them. Kept after the monitor exits so the last run's
	 * console output stays readable; released at the next start/delete. */
	struct engine_vm *handle;
	pthread_rwlock_t handle_lock;
	bool active;                 /* events from the engine are expected */
	bool monitor_gone;           /* the monitor exited (event seen) */
	bool forcing;                /* a stop/force-stop is killing it: exit is not a crash */
	uint64_t restarts_ns[3];     /* restart_policy bound: 3 per 60 s */
	int refs;                    /* under d->vms_lock */
	bool removed;                /* deleted: no longer in d->vms */
	/* Saved machine state the next start loads (revert of a full
	 * snapshot, snapshots.c); cleared by that start. op_lock held. */
	char incoming[PATH_MAX];
};

struct image_entry; /* images.c */
struct net_state;   /* networks.c */
struct task;        /* tasks.c */
struct http_server; /* http.c */
struct history;     /* history.c */
struct audit_log;   /* audit.c */

struct daemon {
	struct daemon_config cfg;
	const char *allow_resolved[DAEMON_MAX_ALLOW_DIRS];
	struct validate_ctx vctx;
	struct engine *engine;
	struct store *store;
	struct engine_host_info host;
	char token[65];
	char hostname[256];
	long cpus; /* online CPUs at start */
	struct engine_events events;

	pthread_mutex_t vms_lock;
	pthread_cond_t vms_cond; /* broadcast on every VM state change */
	struct vm **vms;         /* sorted by name */
	size_t nr_vms, cap_vms;
	struct vm_list_cache *vms_cache; /* NULL = rebuild */
	/* Projects and host capacity are under vms_lock too: an admission
	 * decision reads them with the VM list and changes a VM's state or
	 * inserts it in the same critical section (admission.h). */
	struct project_record **projects; /* sorted by name */
	size_t nr_projects, cap_projects;
	struct admission_host capacity;
	uint64_t detected[ADMISSION_DIM_COUNT]; /* capacity found on the machine */
	struct cgroup_tree cgroups;             /* set at start, then read-only */

	pthread_mutex_t images_lock;
	struct image_record **images;
	size_t nr_images, cap_images;

	pthread_mutex_t tasks_lock;
	struct task_record **tasks; /* newest last */
	size_t nr_tasks, cap_tasks;

	pthread_mutex_t threads_lock;
	pthread_cond_t threads_cond;
	unsigned nr_threads; /* detached worker threads still running */

	struct net_state *net; /* networks.c: networks, firewalls, dnsmasq supervisor */

	struct http_server *tcp, *unix_srv;
	struct history *history; /* resource history for the web UI's graphs */
	volatile bool shutting_down;

	struct auth_limiter *limiter; /* failed authentications per client address */
	struct auth_tokens *tokens;   /* the tokens table, in memory (auth.h) */
	struct audit_log *audit;      /* DATA_DIR/audit.log */
};

/* daemon.c */
int daemon_new(const struct daemon_config *cfg, struct engine *engine, struct daemon **out,
	       char **err);
/* Load state, re-attach VMs, autostart, start the HTTP listeners. */
int daemon_start(struct daemon *d, char **err);
/* Stop the listeners and wait for worker threads; running VMs keep running. */
void daemon_stop(struct daemon *d);
void daemon_free(struct daemon *d);
/* Run fn(arg) on a detached thread counted so daemon_stop can wait for it. */
int daemon_spawn(struct daemon *d, void *(*fn)(void *), void *arg);
/* Paths under the data directory. */
void daemon_path(const struct daemon *d, char *out, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
bool daemon_token_equal(const struct daemon *d, const char *given);

/* vm.c: registry and lifecycle */
int vm_registry_load(struct daemon *d);
void vm_registry_free(struct daemon *d);
/* Re-attach running VMs and start autostart ones (daemon start). */
void vm_registry_resume(struct daemon *d);
/* Look up by name and take a reference (vm_unref to drop); NULL if absent. */
struct vm *vm_get(struct daemon *d, const char *name);
void vm_unref(struct daemon *d, struct vm *vm);
json_t *vm_to_json(const struct vm_record *rec);
/* The cached body of GET /api/v1/vms, shared by reference so the hot path
 * copies nothing; rebuilt after any VM change. */
struct vm_list_cache {
	int refs; /* atomic */
	size_t len;
	char data[];
};
struct vm_list_cache *vm_list_cache_get(struct daemon *d);
void vm_list_cache_put(struct vm_list_cache *c);
/* Drop the cached list (something shown in it changed); needs vms_lock. */
void vm_list_cache_invalidate_locked(struct daemon *d);
/* Copy a VM's record under the lock. */
void vm_snapshot(struct daemon *d, struct vm *vm, struct vm_record *out);
/* May who see and act on vm (auth_scope_allows on its project)? Read under
 * vms_lock, without copying the record. Unscoped callers always may. */
bool vm_scope_allows(struct daemon *d, struct vm *vm, const struct auth_identity *who);
/* The same for a VM named name; one that does not exist is outside every
 * scope (a scoped caller cannot tell which project it was in). */
bool vm_name_scope_allows(struct daemon *d, const char *name, const struct auth_identity *who);
/* true when any VM disk is based on image `name`; appends the VM names to
 * users (a JSON array, may be NULL). The _locked form needs vms_lock. */
bool vm_image_in_use(struct daemon *d, const char *name, json_t *users);
bool vm_image_in_use_locked(struct daemon *d, const char *name, json_t *users);
size_t vm_count(struct daemon *d);

int vm_create(struct daemon *d, struct vm_record *rec, struct daemon_err *e);
int vm_update(struct daemon *d, struct vm *vm, const json_t *patch, struct daemon_err *e);
int vm_delete(struct daemon *d, struct vm *vm, bool force, struct daemon_err *e);
int vm_start(struct daemon *d, struct vm *vm, struct daemon_err *e);
int vm_stop(struct daemon *d, struct vm *vm, unsigned timeout_s, bool *forced,
	    struct daemon_err *e);
int vm_force_stop(struct daemon *d, struct vm *vm, struct daemon_err *e);
int vm_reboot(struct daemon *d, struct vm *vm, struct daemon_err *e);
int vm_pause(struct daemon *d, struct vm *vm, struct daemon_err *e);
int vm_resume(struct daemon *d, struct vm *vm, struct daemon_err *e);
/* Point disk idx at another file (a snapshot overlay, a restored disk) and
 * save; size_bytes 0 keeps the recorded size. op_lock held by the caller. */
int vm_disk_set(struct daemon *d, struct vm *vm, unsigned idx, const char *path,
		uint64_t size_bytes);

/* snapshots.c: snapshots, schedules and their pruning thread (started
 * after backups_startup_cleanup) */
void snapshots_scheduler_start(struct daemon *d);
/* Names of vm's snapshots (a JSON array, never NULL). */
json_t *snapshots_of_vm(struct daemon *d, const char *vm);
/* Forget vm's snapshots, schedules, drill results and backup chain (its
 * files go with the VM directory; backups stay in the store). */
void snapshots_forget_vm(struct daemon *d, const char *vm);
/* The VM's disks no longer stand on any snapshot (restored over). */
void snapshots_head_clear(struct daemon *d, const char *vm);

/* backups.c */
/* At start, before any backup runs: drop work files a previous vesseld
 * left in STORE/tmp and DATA_DIR/restore. */
void backups_startup_cleanup(struct daemon *d);
/* Ids of the complete backups of vm in the backup store. */
json_t *backups_of_vm(struct daemon *d, const char *vm);
int backups_delete_of_vm(struct daemon *d, const char *vm, struct daemon_err *e);

/* vm.c: the amounts in use, under vms_lock. host: VMs holding CPU and
 * memory (admission_state_uses_host); project: every VM of the project.
 * exclude (may be NULL) is left out, for a VM whose own numbers change. */
void vm_usage_host_locked(struct daemon *d, const struct vm *exclude, struct admission_amount *out);
void vm_usage_project_locked(struct daemon *d, const char *project, const struct vm *exclude,
			     struct admission_amount *out);
size_t vm_count_project_locked(struct daemon *d, const char *project);

/* projects.c */
int project_registry_load(struct daemon *d);
void project_registry_free(struct daemon *d);
const struct project_record *project_find_locked(struct daemon *d, const char *name);

/* admission.c, the daemon side (the arithmetic is in admission.h) */
/* Fill e with a 409 carrying the refusal's numbers; returns -EBUSY. */
int admission_err_host(struct daemon_err *e, const char *vm, const char *action,
		       const struct admission_refusal *why);
/* growth: the VM exists in the project and asks for that much more. */
int admission_err_quota(struct daemon_err *e, const char *vm, const char *project, bool growth,
			const struct admission_refusal *why);
/* Under vms_lock: may rec (a new VM, or a changed one when self is set)
 * exist in its project and fit the host at all? A VM changed within its
 * project is asked only for its growth; one moved counts in full in the
 * target project. 0 or an error in e. */
int admission_check_define_locked(struct daemon *d, const struct vm_record *rec,
				  const struct vm *self, struct daemon_err *e);
/* Detect capacity, apply overrides and stored/configured ratios. */
int admission_init(struct daemon *d, char **err);

/* images.c */
int image_registry_load(struct daemon *d);
void image_registry_free(struct daemon *d);
/* Copy of a ready image's record; -ENOENT / -EBUSY (not ready). */
int image_lookup_ready(struct daemon *d, const char *name, struct image_record *out);
size_t image_count(struct daemon *d);

/* tasks.c */
int task_registry_load(struct daemon *d);
void task_registry_free(struct daemon *d);
int task_create(struct daemon *d, enum task_kind kind, const char *target,
		char id[MODEL_TASK_ID_MAX]);
void task_progress(struct daemon *d, const char *id, int progress, const char *message);
void task_finish(struct daemon *d, const char *id, const char *error);
json_t *task_json(struct daemon *d, const char *id);

#endif
