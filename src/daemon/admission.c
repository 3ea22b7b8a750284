/* admission: the capacity and quota arithmetic described in admission.h,
 * then the daemon side: capacity detection at start, the stored ratios,
 * the 409 errors with their numbers and the define-time check. The
 * arithmetic takes no locks and does no I/O; the daemon side is called
 * under d->vms_lock by vm.c, which acts on the answer under the same lock. */
#include "daemon/admission.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>

#include "daemon/daemon.h"
#include "daemon/store.h"
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

/* ---- the daemon side ------------------------------------------------------ */

static const char *const admission_dim_units[] = {"VMs", "vCPUs", "MiB of memory", "GiB of disk"};

int admission_err_host(struct daemon_err *e, const char *vm, const char *action,
		       const struct admission_refusal *w)
{
	daemon_err_set(e, 409, "insufficient_capacity",
		       "vm '%s' cannot be %s: it asks for %llu %s, %llu are in use by running "
		       "VMs, and the host allows %llu (capacity %llu x overcommit ratio %g); "
		       "stop another VM, make this one smaller, or raise the ratio",
		       vm, action, (unsigned long long)w->asked, admission_dim_units[w->dim],
		       (unsigned long long)w->used, (unsigned long long)w->limit,
		       (unsigned long long)w->capacity, w->ratio);
	e->has_refusal = true;
	e->refusal_host = true;
	e->refusal = *w;
	return -EBUSY;
}

int admission_err_quota(struct daemon_err *e, const char *vm, const char *project, bool growth,
			const struct admission_refusal *w)
{
	daemon_err_set(e, 409, "quota_exceeded",
		       "vm '%s' does not fit the quota of project '%s': it asks for %llu %s%s, "
		       "the project uses %llu and its quota is %llu; delete or shrink VMs of the "
		       "project, or raise its quota with PATCH /api/v1/projects/%s",
		       vm, project, (unsigned long long)w->asked, growth ? "more " : "",
		       admission_dim_units[w->dim], (unsigned long long)w->used,
		       (unsigned long long)w->limit, project);
	e->has_refusal = true;
	e->refusal_host = false;
	e->refusal = *w;
	snprintf(e->refusal_project, sizeof(e->refusal_project), "%s", project);
	return -EBUSY;
}

int admission_check_define_locked(struct daemon *d, const struct vm_record *rec,
				  const struct vm *self, struct daemon_err *e)
{
	struct admission_amount ask, used, none = {0};
	struct admission_refusal why;
	const struct project_record *p = project_find_locked(d, rec->project);
	if (!p)
		return daemon_err_set(e, 400, "invalid_argument",
				      "there is no project '%s'; create it with POST /api/v1/projects "
				      "or leave 'project' out for \"default\"",
				      rec->project);
	admission_vm_amount(rec, &ask);
	/* A VM that could not run even on an empty host is refused now
	 * rather than at its first start. */
	if (admission_host_check(&d->capacity, &none, &ask, &why) < 0)
		return admission_err_host(e, rec->name, "defined", &why);
	bool growth = self && strcmp(self->rec.project, rec->project) == 0;
	if (growth) {
		/* A change within the project asks only for its growth, on
		 * top of what the project holds with this VM as it is now. */
		struct admission_amount cur;
		admission_vm_amount(&self->rec, &cur);
		for (int k = 0; k < ADMISSION_DIM_COUNT; k++)
			ask.v[k] = ask.v[k] > cur.v[k] ? ask.v[k] - cur.v[k] : 0;
		vm_usage_project_locked(d, rec->project, NULL, &used);
	} else {
		vm_usage_project_locked(d, rec->project, self, &used);
	}
	if (admission_quota_check(p, &used, &ask, &why) < 0)
		return admission_err_quota(e, rec->name, rec->project, growth, &why);
	return 0;
}

/* Capacity found on the machine: online CPUs, MemTotal, and the size of
 * the file system holding the data directory (where VM disks live). */
static void admission_detect(struct daemon *d, uint64_t out[ADMISSION_DIM_COUNT])
{
	struct sysinfo si;
	struct statvfs sv;
	memset(out, 0, sizeof(uint64_t) * ADMISSION_DIM_COUNT);
	out[ADMISSION_DIM_VCPUS] = d->cpus > 0 ? (uint64_t)d->cpus : 1;
	if (sysinfo(&si) == 0)
		out[ADMISSION_DIM_MEMORY] = (uint64_t)si.totalram * si.mem_unit / MiB;
	if (statvfs(d->cfg.data_dir, &sv) == 0)
		out[ADMISSION_DIM_DISK] = (uint64_t)sv.f_blocks * sv.f_frsize / GiB;
}

static double admission_ratio_setting(struct daemon *d, const char *key, double configured,
				 double fallback)
{
	char *v = NULL;
	if (configured > 0) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%.17g", configured);
		store_setting_put(d->store, key, buf);
		return configured;
	}
	if (store_setting_get(d->store, key, &v) == 0) {
		char *end;
		double r = strtod(v, &end);
		free(v);
		if (end != v && isfinite(r) && r > 0)
			return r;
	}
	return fallback;
}

int admission_init(struct daemon *d, char **err)
{
	char msg[ADMISSION_ERR_MAX];
	const struct daemon_config *c = &d->cfg;
	if ((c->cpu_ratio != 0 && admission_ratio_validate(c->cpu_ratio, false, msg) < 0) ||
	    (c->memory_ratio != 0 && admission_ratio_validate(c->memory_ratio, true, msg) < 0)) {
		*err = strdup(msg);
		return -EINVAL;
	}
	admission_detect(d, d->detected);
	struct admission_host *h = &d->capacity;
	memcpy(h->capacity, d->detected, sizeof(h->capacity));
	if (c->capacity_cpus)
		h->capacity[ADMISSION_DIM_VCPUS] = c->capacity_cpus;
	if (c->capacity_memory_mib)
		h->capacity[ADMISSION_DIM_MEMORY] = c->capacity_memory_mib;
	if (c->capacity_disk_gib)
		h->capacity[ADMISSION_DIM_DISK] = c->capacity_disk_gib;
	h->cpu_ratio = admission_ratio_setting(d, ADMISSION_SETTING_CPU_RATIO, c->cpu_ratio,
					  ADMISSION_CPU_RATIO_DEFAULT);
	h->memory_ratio = admission_ratio_setting(d, ADMISSION_SETTING_MEMORY_RATIO, c->memory_ratio,
						  ADMISSION_MEMORY_RATIO_DEFAULT);
	/* A stored ratio from an older, laxer vesseld is clamped, not trusted. */
	if (admission_ratio_validate(h->cpu_ratio, false, msg) < 0)
		h->cpu_ratio = ADMISSION_CPU_RATIO_DEFAULT;
	if (admission_ratio_validate(h->memory_ratio, true, msg) < 0)
		h->memory_ratio = ADMISSION_MEMORY_RATIO_DEFAULT;
	log_info("admission: %llu CPUs x %g, %llu MiB x %g, %llu GiB disk%s",
		 (unsigned long long)h->capacity[ADMISSION_DIM_VCPUS], h->cpu_ratio,
		 (unsigned long long)h->capacity[ADMISSION_DIM_MEMORY], h->memory_ratio,
		 (unsigned long long)h->capacity[ADMISSION_DIM_DISK],
		 c->capacity_cpus || c->capacity_memory_mib || c->capacity_disk_gib ?
			 " (capacity overridden on the command line)" :
			 "");
	return 0;
}
