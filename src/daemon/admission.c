/* admission: the capacity and quota arithmetic described in admission.h.
 * No locks and no I/O here: the callers (vm.c, projects.c, host.c) gather
 * the numbers under d->vms_lock and act on the answer under the same lock. */
#include "daemon/admission.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "lib/util.h"

static const char *const admission_dim_names[] = {"vms", "vcpus", "memory_mib", "disk_gib"};

const char *admission_dim_name(enum admission_dim dim)
{
	return (size_t)dim < ARRAY_SIZE(admission_dim_names) ? admission_dim_names[dim] : "unknown";
}

uint64_t admission_allocatable(uint64_t capacity, double ratio)
{
	/* The small epsilon keeps 3 x 1.1 = 3.3000000000000003 and friends
	 * from losing a whole unit to binary rounding. */
	double v = floor((double)capacity * ratio + 1e-9);
	if (v <= 0)
		return 0;
	if (v >= 18446744073709551615.0)
		return UINT64_MAX;
	return (uint64_t)v;
}

double admission_ratio(const struct admission_host *h, enum admission_dim dim)
{
	switch (dim) {
	case ADMISSION_DIM_VCPUS:
		return h->cpu_ratio;
	case ADMISSION_DIM_MEMORY:
		return h->memory_ratio;
	default:
		return 1.0;
	}
}

int admission_ratio_validate(double ratio, bool memory, char err[ADMISSION_ERR_MAX])
{
	double max = memory ? ADMISSION_MEMORY_RATIO_MAX : ADMISSION_CPU_RATIO_MAX;
	const char *what = memory ? "memory" : "CPU";
	if (!isfinite(ratio) || ratio <= 0) {
		snprintf(err, ADMISSION_ERR_MAX,
			 "the %s overcommit ratio must be a number greater than 0 (for example %g "
			 "for %g:1)", what, memory ? 1.0 : 4.0, memory ? 1.0 : 4.0);
		return -EINVAL;
	}
	if (ratio > max) {
		snprintf(err, ADMISSION_ERR_MAX,
			 memory ? "a memory overcommit ratio of %g:1 is refused: at most %g:1 is "
				  "allowed, because guests that touch their memory on a host "
				  "overcommitted further are killed by the OOM killer"
				: "a CPU overcommit ratio of %g:1 is refused: at most %g:1 is allowed",
			 ratio, max);
		return -EINVAL;
	}
	return 0;
}

static bool admission_over(uint64_t used, uint64_t ask, uint64_t limit)
{
	/* used may already exceed limit (a ratio or quota was lowered):
	 * then any further ask is over. Written to avoid overflow. */
	return used > limit || ask > limit - used;
}

int admission_host_check(const struct admission_host *h, const struct admission_amount *used,
			 const struct admission_amount *ask, struct admission_refusal *why)
{
	static const enum admission_dim dims[] = {ADMISSION_DIM_VCPUS, ADMISSION_DIM_MEMORY};
	for (size_t i = 0; i < ARRAY_SIZE(dims); i++) {
		enum admission_dim dim = dims[i];
		double ratio = admission_ratio(h, dim);
		uint64_t limit = admission_allocatable(h->capacity[dim], ratio);
		if (ask->v[dim] == 0 || !admission_over(used->v[dim], ask->v[dim], limit))
			continue;
		*why = (struct admission_refusal){
			.dim = dim,
			.asked = ask->v[dim],
			.used = used->v[dim],
			.limit = limit,
			.capacity = h->capacity[dim],
			.ratio = ratio,
		};
		return -ENOSPC;
	}
	return 0;
}

int64_t admission_quota(const struct project_record *p, enum admission_dim dim)
{
	switch (dim) {
	case ADMISSION_DIM_VMS:
		return p->max_vms;
	case ADMISSION_DIM_VCPUS:
		return p->max_vcpus;
	case ADMISSION_DIM_MEMORY:
		return p->max_memory_mib;
	case ADMISSION_DIM_DISK:
		return p->max_disk_gib;
	default:
		return MODEL_QUOTA_UNLIMITED;
	}
}

int admission_quota_check(const struct project_record *p, const struct admission_amount *used,
			  const struct admission_amount *ask, struct admission_refusal *why)
{
	for (int dim = 0; dim < ADMISSION_DIM_COUNT; dim++) {
		int64_t q = admission_quota(p, (enum admission_dim)dim);
		if (q < 0 || ask->v[dim] == 0)
			continue;
		if (!admission_over(used->v[dim], ask->v[dim], (uint64_t)q))
			continue;
		*why = (struct admission_refusal){
			.dim = (enum admission_dim)dim,
			.asked = ask->v[dim],
			.used = used->v[dim],
			.limit = (uint64_t)q,
			.ratio = 1.0,
		};
		return -EDQUOT;
	}
	return 0;
}

void admission_vm_amount(const struct vm_record *r, struct admission_amount *out)
{
	out->v[ADMISSION_DIM_VMS] = 1;
	out->v[ADMISSION_DIM_VCPUS] = r->vcpus;
	out->v[ADMISSION_DIM_MEMORY] = r->memory_mib;
	out->v[ADMISSION_DIM_DISK] = model_vm_disk_gib(r);
}

bool admission_state_uses_host(enum vm_state st)
{
	return st == VM_STATE_STARTING || st == VM_STATE_RUNNING || st == VM_STATE_PAUSED ||
	       st == VM_STATE_STOPPING;
}
