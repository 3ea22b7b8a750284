/* host: GET /api/v1/host (what this machine offers and how VMs run on it),
 * GET/PATCH /api/v1/host/capacity (admission: capacity, overcommit ratios,
 * what is allocated) and the embedded OpenAPI document. The web UI is
 * served by static.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "daemon/audit.h"
#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/store.h"
#include "lib/util.h"


void host_get(struct http_req *req)
{
	struct daemon *d = req->d;
	struct sysinfo si;
	uint64_t mem_mib = 0;
	if (sysinfo(&si) == 0)
		mem_mib = (uint64_t)si.totalram * si.mem_unit / (1024 * 1024);
	long cpus = d->cpus; /* taken once at start: sysconf reads /sys */
	json_t *warnings = json_array();
	if (d->host.warning[0])
		json_array_append_new(warnings, json_string(d->host.warning));
	if (audit_warning(d->audit))
		json_array_append_new(warnings, json_string(audit_warning(d->audit)));
	const struct cgroup_tree *cg = &d->cgroups;
	json_t *prio = json_pack("{s:b,s:o,s:o}", "enforced", cg->usable && cg->cpu, "cgroup_root",
				 cg->usable ? json_string(cg->root) : json_null(), "reason",
				 cg->reason[0] ? json_string(cg->reason) : json_null());
	json_object_set_new(prio, "io_weight", json_boolean(cg->usable && cg->io));
	const char *mode = cg->usable ? cgroup_mode_name(cg->mode) : NULL;
	json_object_set_new(prio, "mode", mode ? json_string(mode) : json_null());
	/* v1 only: the vessel group in the blkio hierarchy (cgroup_root is the
	 * one in the cpu hierarchy). */
	json_object_set_new(prio, "io_cgroup_root", cg->usable && cg->io_root[0] ?
							   json_string(cg->io_root) : json_null());
	if (cg->reason[0] && d->cfg.cgroup_root[0]) /* "none" was a choice, not a problem */
		json_array_append_new(warnings, json_string(cg->reason));
	json_t *j = json_pack("{s:s,s:s,s:i,s:I,s:s,s:o,s:s,s:s,s:I,s:I,s:o}", "hostname",
			      d->hostname, "version", "0.1.0", "cpus", (int)(cpus > 0 ? cpus : 1),
			      "memory_mib", (json_int_t)mem_mib, "accel",
			      d->host.accel[0] ? d->host.accel : "tcg", "warnings", warnings,
			      "qemu_version", d->host.qemu_version, "data_dir", d->cfg.data_dir, "vms",
			      (json_int_t)vm_count(d), "images", (json_int_t)image_count(d),
			      "priorities", prio);
	http_reply_json(req, 200, j);
}

/* ---- capacity ------------------------------------------------------------ */

static json_t *host_dim_json(struct daemon *d, enum admission_dim dim,
			     const struct admission_amount *used)
{
	uint64_t cap = d->capacity.capacity[dim];
	double ratio = admission_ratio(&d->capacity, dim);
	uint64_t alloc = admission_allocatable(cap, ratio);
	uint64_t u = used->v[dim];
	return json_pack("{s:I,s:I,s:f,s:I,s:I,s:I}", "capacity", (json_int_t)cap, "detected",
			 (json_int_t)d->detected[dim], "ratio", ratio, "allocatable",
			 (json_int_t)alloc, "used", (json_int_t)u, "free",
			 (json_int_t)(u >= alloc ? 0 : alloc - u));
}

static json_t *host_capacity_json_locked(struct daemon *d)
{
	struct admission_amount host_used, all = {0};
	vm_usage_host_locked(d, NULL, &host_used);
	for (size_t i = 0; i < d->nr_vms; i++)
		all.v[ADMISSION_DIM_DISK] += model_vm_disk_gib(&d->vms[i]->rec);
	/* Disk: every VM's provisioned size (disks exist whether or not the
	 * VM runs), reported only; the host is not refused on disk because
	 * qcow2 files grow on write and the file system says when it is full. */
	host_used.v[ADMISSION_DIM_DISK] = all.v[ADMISSION_DIM_DISK];
	return json_pack("{s:o,s:o,s:o,s:I,s:s}", "vcpus",
			 host_dim_json(d, ADMISSION_DIM_VCPUS, &host_used), "memory_mib",
			 host_dim_json(d, ADMISSION_DIM_MEMORY, &host_used), "disk_gib",
			 host_dim_json(d, ADMISSION_DIM_DISK, &host_used), "running_vms",
			 (json_int_t)host_used.v[ADMISSION_DIM_VMS], "counts",
			 "vcpus and memory_mib: VMs that are starting, running, paused or "
			 "stopping; disk_gib: the provisioned size of every VM's disks");
}

void host_capacity_get(struct http_req *req)
{
	struct daemon *d = req->d;
	pthread_mutex_lock(&d->vms_lock);
	json_t *j = host_capacity_json_locked(d);
	pthread_mutex_unlock(&d->vms_lock);
	http_reply_json(req, 200, json_pack("{s:o}", "capacity", j));
}

/* PATCH {"cpu_ratio": x, "memory_ratio": y}: change the overcommit ratios
 * live and keep them for the next start. Lowering a ratio below what is in
 * use stops nothing; it only refuses further starts. */
void host_capacity_patch(struct http_req *req)
{
	struct daemon *d = req->d;
	json_t *body = NULL;
	char msg[ADMISSION_ERR_MAX];
	double ratios[2] = {0, 0};
	static const char *const keys[] = {"cpu_ratio", "memory_ratio"};
	if (http_body_json(req, false, &body) < 0)
		return;
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		if (strcmp(key, keys[0]) != 0 && strcmp(key, keys[1]) != 0) {
			http_reply_errorf(req, 400, "invalid_argument",
					  "unknown field '%s'; allowed fields are: cpu_ratio, "
					  "memory_ratio", key);
			goto out;
		}
	}
	for (int i = 0; i < 2; i++) {
		json_t *r = json_object_get(body, keys[i]);
		if (!r)
			continue;
		if (!json_is_number(r)) {
			http_reply_errorf(req, 400, "invalid_argument",
					  "field '%s' must be a number such as %s", keys[i],
					  i ? "1.5 (for 1.5:1)" : "4 (for 4:1)");
			goto out;
		}
		ratios[i] = json_number_value(r);
		if (admission_ratio_validate(ratios[i], i == 1, msg) < 0) {
			http_reply_errorf(req, 422, "invalid_ratio", "%s", msg);
			goto out;
		}
	}
	for (int i = 0; i < 2; i++) {
		char buf[32];
		if (ratios[i] <= 0)
			continue;
		snprintf(buf, sizeof(buf), "%.17g", ratios[i]);
		if (store_setting_put(d->store, i ? ADMISSION_SETTING_MEMORY_RATIO :
						    ADMISSION_SETTING_CPU_RATIO, buf) < 0) {
			http_reply_errorf(req, 500, "internal", "cannot save the ratio in the "
								"database; check the data directory");
			goto out;
		}
	}
	pthread_mutex_lock(&d->vms_lock);
	if (ratios[0] > 0)
		d->capacity.cpu_ratio = ratios[0];
	if (ratios[1] > 0)
		d->capacity.memory_ratio = ratios[1];
	json_t *j = host_capacity_json_locked(d);
	pthread_mutex_unlock(&d->vms_lock);
	log_info("admission: overcommit ratios now CPU %g, memory %g", d->capacity.cpu_ratio,
		 d->capacity.memory_ratio);
	http_reply_json(req, 200, json_pack("{s:o}", "capacity", j));
out:
	json_decref(body);
}

void host_openapi(struct http_req *req)
{
	char *copy = malloc(embed_openapi_json_len);
	if (!copy) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	memcpy(copy, embed_openapi_json, embed_openapi_json_len);
	http_reply_raw(req, 200, "application/json", copy, embed_openapi_json_len);
}
