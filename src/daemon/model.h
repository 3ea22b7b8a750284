/* model: the records vesseld keeps for VMs, disks, images and tasks, as they
 * are validated from API requests, held in memory and stored in SQLite
 * (store.c). Plain fixed-size structs so they can be copied under a lock
 * and handed between threads without ownership questions. */
#ifndef VESSEL_DAEMON_MODEL_H
#define VESSEL_DAEMON_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/engine/engine.h"

#define MODEL_NAME_MAX 64      /* DNS label (63) + NUL */
#define MODEL_DESC_MAX 1025    /* description up to 1024 chars + NUL */
#define MODEL_PATH_MAX 4096
#define MODEL_TIME_MAX 32      /* "2026-11-26T07:00:00Z" */
#define MODEL_TASK_ID_MAX 32   /* "t-" + 16 hex */
#define MODEL_REASON_MAX 512
#define MODEL_MAX_DISKS ENGINE_MAX_DISKS
#define MODEL_MAX_NICS ENGINE_MAX_NICS

enum vm_state {
	VM_STATE_PROVISIONING = 0,
	VM_STATE_STOPPED,
	VM_STATE_STARTING,
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,
	VM_STATE_STOPPING,
	VM_STATE_CRASHED,
};

enum vm_restart_policy {
	VM_RESTART_NEVER = 0,
	VM_RESTART_ON_CRASH,
};

enum disk_clone {
	DISK_CLONE_NONE = 0, /* blank disk */
	DISK_CLONE_LINKED,   /* qcow2 overlay with the image as backing file */
	DISK_CLONE_FULL,     /* independent copy made by a task */
};

struct vm_disk {
	unsigned index;
	char image[MODEL_NAME_MAX]; /* empty for a blank disk */
	enum disk_clone clone;
	uint64_t size_gib;   /* requested growth, 0 = image size */
	uint64_t size_bytes; /* virtual size of the disk file */
	char format[8];      /* "qcow2" */
	char path[MODEL_PATH_MAX];
};

/* A virtio-net NIC on one of vessel's networks (docs/networking.md). */
struct vm_nic {
	unsigned index;
	char network[MODEL_NAME_MAX];
	char mac[18];                /* stable: derived from uuid + index */
	unsigned vlan;               /* 0 = untagged port */
	char firewall[MODEL_NAME_MAX]; /* rule set; empty = none */
	unsigned rate_mbit;          /* 0 = unlimited */
	char tap[16];                /* host tap name, "vt" + 12 hex */
};

struct vm_record {
	char name[MODEL_NAME_MAX];
	char uuid[37];
	enum vm_state state;
	unsigned vcpus;
	uint64_t memory_mib;
	char description[MODEL_DESC_MAX];
	bool autostart;
	enum vm_restart_policy restart_policy;
	enum engine_firmware firmware;
	char kernel[MODEL_PATH_MAX];
	char initrd[MODEL_PATH_MAX];
	char cmdline[2048];
	struct vm_disk disks[MODEL_MAX_DISKS];
	unsigned nr_disks;
	struct vm_nic nics[MODEL_MAX_NICS];
	unsigned nr_nics;
	pid_t pid; /* 0 = none */
	char crash_reason[MODEL_REASON_MAX];
	char task[MODEL_TASK_ID_MAX];
	char created_at[MODEL_TIME_MAX];
	char updated_at[MODEL_TIME_MAX];
	char project[MODEL_NAME_MAX]; /* "default" unless given */
	unsigned priority;            /* 0 (P0, most important) .. 4 (P4); default 2 */
};

#define MODEL_PRIORITY_DEFAULT 2
#define MODEL_PRIORITY_MAX 4
#define MODEL_PROJECT_DEFAULT "default"
#define MODEL_QUOTA_UNLIMITED (-1)

/* A project: a named group of VMs with quotas. Quotas count every VM of the
 * project, running or not (docs/operations.md "Projects and quotas"). */
struct project_record {
	char name[MODEL_NAME_MAX];
	char description[MODEL_DESC_MAX];
	/* MODEL_QUOTA_UNLIMITED (-1) = no limit */
	int64_t max_vms, max_vcpus, max_memory_mib, max_disk_gib;
	char created_at[MODEL_TIME_MAX];
	char updated_at[MODEL_TIME_MAX];
};

enum image_state {
	IMAGE_STATE_IMPORTING = 0,
	IMAGE_STATE_READY,
	IMAGE_STATE_FAILED,
};

struct image_record {
	char name[MODEL_NAME_MAX];
	char format[8];        /* stored format: always "qcow2" */
	char source_format[8]; /* raw | qcow2 | vmdk | vhd */
	uint64_t size_bytes;
	uint64_t virtual_size_bytes;
	char sha256[65];
	char source_path[MODEL_PATH_MAX];
	char path[MODEL_PATH_MAX]; /* the stored qcow2 file */
	enum image_state state;
	char task[MODEL_TASK_ID_MAX];
	char created_at[MODEL_TIME_MAX];
};

enum task_kind {
	TASK_KIND_IMAGE_IMPORT = 0,
	TASK_KIND_DISK_COPY,
	TASK_KIND_BACKUP,
	TASK_KIND_RESTORE,
	TASK_KIND_DRILL,
};

enum task_state {
	TASK_STATE_RUNNING = 0,
	TASK_STATE_SUCCEEDED,
	TASK_STATE_FAILED,
};

struct task_record {
	char id[MODEL_TASK_ID_MAX];
	enum task_kind kind;
	char target[MODEL_NAME_MAX];
	enum task_state state;
	int progress; /* 0..100 */
	char message[256];
	char error[1024]; /* empty = null */
	char created_at[MODEL_TIME_MAX];
	char finished_at[MODEL_TIME_MAX]; /* empty = null */
};

/* Names used in the API and the database for the enums above. */
const char *model_vm_state_name(enum vm_state s);
int model_vm_state_parse(const char *s, enum vm_state *out);
const char *model_restart_policy_name(enum vm_restart_policy p);
int model_restart_policy_parse(const char *s, enum vm_restart_policy *out);
const char *model_firmware_name(enum engine_firmware f);
int model_firmware_parse(const char *s, enum engine_firmware *out);
const char *model_clone_name(enum disk_clone c);
int model_clone_parse(const char *s, enum disk_clone *out);
const char *model_image_state_name(enum image_state s);
int model_image_state_parse(const char *s, enum image_state *out);
const char *model_task_kind_name(enum task_kind k);
int model_task_kind_parse(const char *s, enum task_kind *out);
const char *model_task_state_name(enum task_state s);
int model_task_state_parse(const char *s, enum task_state *out);

/* "P0".."P4" for 0..4; parse accepts exactly those (upper case). */
const char *model_priority_name(unsigned p);
int model_priority_parse(const char *s, unsigned *out);
/* The disk space a VM's disks may grow to, in whole GiB rounded up: what
 * project disk quotas count. */
uint64_t model_vm_disk_gib(const struct vm_record *r);

/* Current UTC time as RFC 3339 "YYYY-MM-DDTHH:MM:SSZ". */
void model_now(char out[MODEL_TIME_MAX]);
/* A random version-4 UUID (RFC 4122 §4.4). */
int model_uuid(char out[37]);
/* Copy src into a fixed-size field; returns -ENAMETOOLONG when it does not fit. */
int model_copy(char *dst, size_t cap, const char *src);

#endif
