/* projects: the /api/v1/projects resource (docs/api.md "Projects") and the
 * quota side of admission. A project groups VMs under quotas on VMs,
 * vCPUs, memory and disk; the project "default" always exists (created by
 * the store migration, recreated at load if missing) and cannot be
 * deleted, and a project with VMs cannot be deleted either. Projects live
 * in memory under d->vms_lock, next to the VMs their quotas count. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/store.h"
#include "lib/util.h"

static ssize_t project_index_locked(struct daemon *d, const char *name, size_t *insert_at)
{
	return util_name_index((void *const *)d->projects, d->nr_projects,
			       offsetof(struct project_record, name), name, insert_at);
}

const struct project_record *project_find_locked(struct daemon *d, const char *name)
{
	ssize_t i = project_index_locked(d, name, NULL);
	return i >= 0 ? d->projects[i] : NULL;
}

static int project_insert_locked(struct daemon *d, const struct project_record *p)
{
	size_t at = 0;
	if (project_index_locked(d, p->name, &at) >= 0)
		return -EEXIST;
	if (d->nr_projects == d->cap_projects) {
		size_t ncap = d->cap_projects ? d->cap_projects * 2 : 16;
		struct project_record **nv = realloc(d->projects, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		d->projects = nv;
		d->cap_projects = ncap;
	}
	struct project_record *copy = malloc(sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	*copy = *p;
	memmove(d->projects + at + 1, d->projects + at, (d->nr_projects - at) * sizeof(*d->projects));
	d->projects[at] = copy;
	d->nr_projects++;
	return 0;
}

static void project_default(struct project_record *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), MODEL_PROJECT_DEFAULT);
	snprintf(p->description, sizeof(p->description), "VMs created without a project");
	p->max_vms = p->max_vcpus = p->max_memory_mib = p->max_disk_gib = MODEL_QUOTA_UNLIMITED;
	model_now(p->created_at);
	memcpy(p->updated_at, p->created_at, sizeof(p->updated_at));
}

int project_registry_load(struct daemon *d)
{
	struct project_record *v = NULL;
	size_t n = 0;
	int r = store_project_list(d->store, &v, &n);
	if (r < 0)
		return r;
	pthread_mutex_lock(&d->vms_lock);
	for (size_t i = 0; i < n && r == 0; i++)
		r = project_insert_locked(d, &v[i]);
	if (r == 0 && !project_find_locked(d, MODEL_PROJECT_DEFAULT)) {
		/* Someone removed the row by hand: every VM must have a home. */
		struct project_record p;
		project_default(&p);
		r = project_insert_locked(d, &p);
		if (r == 0)
			store_project_put(d->store, &p);
	}
	pthread_mutex_unlock(&d->vms_lock);
	free(v);
	return r;
}

void project_registry_free(struct daemon *d)
{
	for (size_t i = 0; i < d->nr_projects; i++)
		free(d->projects[i]);
	free(d->projects);
	d->projects = NULL;
	d->nr_projects = d->cap_projects = 0;
}

/* ---- API ----------------------------------------------------------------- */

static json_t *project_quota_json(int64_t v)
{
	return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static json_t *project_to_json_locked(struct daemon *d, const struct project_record *p)
{
	struct admission_amount used;
	vm_usage_project_locked(d, p->name, NULL, &used);
	json_t *quotas = json_pack("{s:o,s:o,s:o,s:o}", "vms", project_quota_json(p->max_vms),
				   "vcpus", project_quota_json(p->max_vcpus), "memory_mib",
				   project_quota_json(p->max_memory_mib), "disk_gib",
				   project_quota_json(p->max_disk_gib));
	json_t *usage = json_pack("{s:I,s:I,s:I,s:I}", "vms", (json_int_t)used.v[ADMISSION_DIM_VMS],
				  "vcpus", (json_int_t)used.v[ADMISSION_DIM_VCPUS], "memory_mib",
				  (json_int_t)used.v[ADMISSION_DIM_MEMORY], "disk_gib",
				  (json_int_t)used.v[ADMISSION_DIM_DISK]);
	return json_pack("{s:s,s:s,s:o,s:o,s:s,s:s}", "name", p->name, "description",
			 p->description, "quotas", quotas, "usage", usage, "created_at",
			 p->created_at, "updated_at", p->updated_at);
}

static const char *const project_fields[] = {"name", "description", "quotas", NULL};
static const char *const project_quota_keys[] = {"vms", "vcpus", "memory_mib", "disk_gib"};

/* Apply a body (create or PATCH) to *p. 0 or -EINVAL with err. */
static int project_apply(const json_t *body, bool create, struct project_record *p, char *err,
			 size_t cap)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)body, key, v) {
		bool known = false;
		for (const char *const *f = project_fields; *f; f++)
			if (strcmp(*f, key) == 0)
				known = true;
		if (!known) {
			snprintf(err, cap, "unknown field '%s' in the project; allowed fields are: "
					   "name, description, quotas", key);
			return -EINVAL;
		}
	}
	json_t *name = json_object_get(body, "name");
	if (create) {
		if (!json_is_string(name) || !util_is_dns_label(json_string_value(name)) ||
		    strlen(json_string_value(name)) != json_string_length(name)) {
			snprintf(err, cap, "field 'name' is required and must be a DNS label: 1 to 63 "
					   "lowercase letters, digits or '-', not starting or ending "
					   "with '-'");
			return -EINVAL;
		}
		snprintf(p->name, sizeof(p->name), "%s", json_string_value(name));
	} else if (name) {
		snprintf(err, cap, "field 'name' cannot be changed with PATCH; create a new project "
				   "and move the VMs");
		return -EINVAL;
	}
	json_t *desc = json_object_get(body, "description");
	if (desc) {
		if (!json_is_string(desc) || json_string_length(desc) >= sizeof(p->description) ||
		    strlen(json_string_value(desc)) != json_string_length(desc)) {
			snprintf(err, cap, "field 'description' must be a string of at most %zu bytes",
				 sizeof(p->description) - 1);
			return -EINVAL;
		}
		snprintf(p->description, sizeof(p->description), "%s", json_string_value(desc));
	}
	json_t *quotas = json_object_get(body, "quotas");
	if (!quotas)
		return 0;
	if (!json_is_object(quotas)) {
		snprintf(err, cap, "field 'quotas' must be an object such as {\"vcpus\": 8, "
				   "\"memory_mib\": 16384}; null in a field means unlimited");
		return -EINVAL;
	}
	int64_t *slots[] = {&p->max_vms, &p->max_vcpus, &p->max_memory_mib, &p->max_disk_gib};
	json_object_foreach(quotas, key, v) {
		size_t k;
		for (k = 0; k < ARRAY_SIZE(project_quota_keys); k++)
			if (strcmp(project_quota_keys[k], key) == 0)
				break;
		if (k == ARRAY_SIZE(project_quota_keys)) {
			snprintf(err, cap, "unknown quota '%s'; quotas are vms, vcpus, memory_mib and "
					   "disk_gib", key);
			return -EINVAL;
		}
		if (json_is_null(v)) {
			*slots[k] = MODEL_QUOTA_UNLIMITED;
			continue;
		}
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > (json_int_t)1 << 40) {
			snprintf(err, cap, "quota '%s' must be an integer from 0 to %lld, or null for "
					   "unlimited", key, (long long)1 << 40);
			return -EINVAL;
		}
		*slots[k] = (int64_t)json_integer_value(v);
	}
	return 0;
}

void projects_list(struct http_req *req)
{
	struct daemon *d = req->d;
	json_t *arr = json_array();
	pthread_mutex_lock(&d->vms_lock);
	for (size_t i = 0; i < d->nr_projects; i++)
		json_array_append_new(arr, project_to_json_locked(d, d->projects[i]));
	pthread_mutex_unlock(&d->vms_lock);
	http_reply_json(req, 200, json_pack("{s:o}", "projects", arr));
}

static void project_not_found(struct http_req *req)
{
	http_reply_errorf(req, 404, "not_found",
			  "there is no project named '%s'; list projects with GET /api/v1/projects",
			  req->params[0]);
}

void projects_get(struct http_req *req)
{
	struct daemon *d = req->d;
	pthread_mutex_lock(&d->vms_lock);
	const struct project_record *p = project_find_locked(d, req->params[0]);
	json_t *j = p ? project_to_json_locked(d, p) : NULL;
	pthread_mutex_unlock(&d->vms_lock);
	if (!j)
		return project_not_found(req);
	http_reply_json(req, 200, json_pack("{s:o}", "project", j));
}

void projects_create(struct http_req *req)
{
	struct daemon *d = req->d;
	json_t *body = NULL;
	char err[512];
	struct project_record p;
	project_default(&p);
	p.description[0] = '\0';
	if (http_body_json(req, false, &body) < 0)
		return;
	if (project_apply(body, true, &p, err, sizeof(err)) < 0) {
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
		goto out;
	}
	pthread_mutex_lock(&d->vms_lock);
	int r = 0;
	if (project_find_locked(d, p.name))
		r = -EEXIST;
	else if (store_project_put(d->store, &p) < 0)
		r = -EIO;
	else if ((r = project_insert_locked(d, &p)) < 0)
		store_project_delete(d->store, p.name);
	json_t *j = r == 0 ? project_to_json_locked(d, project_find_locked(d, p.name)) : NULL;
	pthread_mutex_unlock(&d->vms_lock);
	if (r == -EEXIST)
		http_reply_errorf(req, 409, "conflict",
				  "a project named '%s' already exists; choose another name", p.name);
	else if (r < 0)
		http_reply_errorf(req, 500, "internal", "cannot save project '%s'; check the data "
							"directory's disk space", p.name);
	else {
		log_info("project '%s' created", p.name);
		http_reply_json(req, 201, json_pack("{s:o}", "project", j));
	}
out:
	json_decref(body);
}

void projects_patch(struct http_req *req)
{
	struct daemon *d = req->d;
	json_t *body = NULL, *j = NULL;
	char err[512];
	if (http_body_json(req, false, &body) < 0)
		return;
	pthread_mutex_lock(&d->vms_lock);
	ssize_t i = project_index_locked(d, req->params[0], NULL);
	if (i < 0) {
		pthread_mutex_unlock(&d->vms_lock);
		project_not_found(req);
		goto out;
	}
	/* Quotas may be set below what the project already uses: existing
	 * VMs stay, new ones and growth are refused until usage fits (the
	 * same rule as Kubernetes ResourceQuota). */
	struct project_record p = *d->projects[i];
	int r = project_apply(body, false, &p, err, sizeof(err));
	if (r == 0) {
		model_now(p.updated_at);
		if (store_project_put(d->store, &p) < 0) {
			snprintf(err, sizeof(err), "cannot save project '%s'; check the data "
						   "directory's disk space", p.name);
			r = -EIO;
		} else {
			*d->projects[i] = p;
			j = project_to_json_locked(d, d->projects[i]);
		}
	}
	pthread_mutex_unlock(&d->vms_lock);
	if (r == -EINVAL)
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
	else if (r < 0)
		http_reply_errorf(req, 500, "internal", "%s", err);
	else
		http_reply_json(req, 200, json_pack("{s:o}", "project", j));
out:
	json_decref(body);
}

void projects_delete(struct http_req *req)
{
	struct daemon *d = req->d;
	const char *name = req->params[0];
	if (strcmp(name, MODEL_PROJECT_DEFAULT) == 0) {
		http_reply_errorf(req, 409, "conflict",
				  "the project 'default' cannot be deleted: VMs created without a "
				  "project belong to it");
		return;
	}
	pthread_mutex_lock(&d->vms_lock);
	ssize_t i = project_index_locked(d, name, NULL);
	size_t vms = i >= 0 ? vm_count_project_locked(d, name) : 0;
	int r = 0;
	if (i >= 0 && vms == 0) {
		r = store_project_delete(d->store, name);
		if (r == 0) {
			free(d->projects[i]);
			memmove(d->projects + i, d->projects + i + 1,
				(d->nr_projects - (size_t)i - 1) * sizeof(*d->projects));
			d->nr_projects--;
		}
	}
	pthread_mutex_unlock(&d->vms_lock);
	if (i < 0)
		project_not_found(req);
	else if (vms)
		http_reply_errorf(req, 409, "conflict",
				  "project '%s' still has %zu VM%s; delete them or move them to another "
				  "project first", name, vms, vms == 1 ? "" : "s");
	else if (r < 0)
		http_reply_errorf(req, 500, "internal", "cannot delete project '%s' from the database",
				  name);
	else
		http_reply_json(req, 200, json_pack("{s:s}", "deleted", name));
}
