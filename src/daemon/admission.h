/* admission: whether a VM may be created, started or changed, given what
 * the host can carry and what its project may use (docs/operations.md
 * "Capacity, overcommit and quotas").
 *
 * Two budgets, counted differently on purpose (the same split OpenStack
 * Nova draws between its placement allocation ratios and Keystone project
 * quotas):
 * - the host: vCPUs and memory of VMs that are running (starting, running,
 *   paused or stopping) against capacity x overcommit ratio. A stopped VM
 *   holds no CPU time or RAM, so it does not count here.
 * - a project: VMs, vCPUs, memory and disk of every VM in it, running or
 *   not, against its quotas. Quotas bound what a team has claimed, and a
 *   stopped VM still owns its disks and may be started at any moment.
 *
 * The functions here are pure arithmetic over plain structs so the
 * boundaries (exactly at capacity, one over) are unit-tested without a
 * daemon; vm.c calls them under d->vms_lock together with the state change
 * they guard, which is what makes two concurrent starts unable to both take
 * the last slot. The daemon-side functions (errors, define check, start-up)
 * are declared in daemon.h. */
#ifndef VESSEL_DAEMON_ADMISSION_H
#define VESSEL_DAEMON_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/model.h"

#define ADMISSION_ERR_MAX 256

/* Keys in the settings table for ratios set through the API. */
#define ADMISSION_SETTING_CPU_RATIO "cpu_overcommit_ratio"
#define ADMISSION_SETTING_MEMORY_RATIO "memory_overcommit_ratio"

/* Defaults and bounds of the overcommit ratios. CPU 4:1 is the usual
 * starting point for general-purpose VMs (vCPUs idle most of the time);
 * memory is not overcommitted by default because a guest touching all of
 * its RAM on an overcommitted host gets the OOM killer, and more than 4:1
 * is refused even when asked for: ballooning and swap cannot make up more. */
#define ADMISSION_CPU_RATIO_DEFAULT 4.0
#define ADMISSION_CPU_RATIO_MAX 64.0
#define ADMISSION_MEMORY_RATIO_DEFAULT 1.0
#define ADMISSION_MEMORY_RATIO_MAX 4.0

enum admission_dim {
	ADMISSION_DIM_VMS = 0,
	ADMISSION_DIM_VCPUS,
	ADMISSION_DIM_MEMORY, /* MiB */
	ADMISSION_DIM_DISK,   /* GiB */
	ADMISSION_DIM_COUNT,
};

/* An amount in each dimension: what a VM asks for, or what is in use. */
struct admission_amount {
	uint64_t v[ADMISSION_DIM_COUNT];
};

/* What the host has. capacity[VCPUS] is online CPUs, [MEMORY] MemTotal in
 * MiB, [DISK] the data directory's file system in GiB; [VMS] is unused. */
struct admission_host {
	uint64_t capacity[ADMISSION_DIM_COUNT];
	double cpu_ratio, memory_ratio;
};

/* Why a request was refused: the numbers the API returns with the 409. */
struct admission_refusal {
	enum admission_dim dim;
	uint64_t asked, used, limit; /* limit = allocatable (host) or quota */
	uint64_t capacity;           /* host only */
	double ratio;                /* host only */
};

/* Field names used in the API for each dimension ("vms", "vcpus",
 * "memory_mib", "disk_gib"). */
const char *admission_dim_name(enum admission_dim dim);

/* floor(capacity x ratio): how much may be handed out. */
uint64_t admission_allocatable(uint64_t capacity, double ratio);
/* The ratio of a dimension (1 for disk and VMs). */
double admission_ratio(const struct admission_host *h, enum admission_dim dim);

/* Check a ratio: 0 or -EINVAL with a sentence. memory selects the memory
 * bound (at most 4:1), else the CPU bound. */
int admission_ratio_validate(double ratio, bool memory, char err[ADMISSION_ERR_MAX]);

/* May `ask` (vCPUs and memory) run on top of `used`? 0, or -ENOSPC with
 * *why filled for the first dimension over its allocatable amount. Being
 * exactly at the allocatable amount is allowed. */
int admission_host_check(const struct admission_host *h, const struct admission_amount *used,
			 const struct admission_amount *ask, struct admission_refusal *why);

/* May a project holding `used` take `ask` more? 0, or -EDQUOT with *why
 * for the first dimension over its quota (MODEL_QUOTA_UNLIMITED never is). */
int admission_quota_check(const struct project_record *p, const struct admission_amount *used,
			  const struct admission_amount *ask, struct admission_refusal *why);

/* The quota of a project in one dimension (-1 = unlimited). */
int64_t admission_quota(const struct project_record *p, enum admission_dim dim);

/* What one VM counts: 1 VM, its vCPUs, memory and disk GiB. */
void admission_vm_amount(const struct vm_record *r, struct admission_amount *out);

/* true when a VM in this state holds host CPU and memory. */
bool admission_state_uses_host(enum vm_state st);

#endif
