/* vms: the /api/v1/vms resource (docs/api.md "VMs"): list, create, get,
 * update, delete and the lifecycle actions. Validation is in validate.c,
 * the state machine in vm.c; this file maps them to HTTP. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/http.h"

static void vms_free_cache(void *cls)
{
	vm_list_cache_put(cls);
}

/* GET /api/v1/vms for a project-scoped caller: only that project's VMs,
 * built per request (the shared cache holds every VM). */
static void vms_list_scoped(struct http_req *req)
{
	struct daemon *d = req->d;
	json_t *arr = json_array();
	pthread_mutex_lock(&d->vms_lock);
	for (size_t i = 0; i < d->nr_vms; i++)
		if (auth_scope_allows(&req->who, auth_vm_project(&d->vms[i]->rec)))
			json_array_append_new(arr, vm_to_json(&d->vms[i]->rec));
	pthread_mutex_unlock(&d->vms_lock);
	http_reply_json(req, 200, json_pack("{s:o}", "vms", arr));
}

void vms_list(struct http_req *req)
{
	if (req->who.project[0]) {
		vms_list_scoped(req);
		return;
	}
	/* The hot path of the API benchmark: hand MHD the shared cached body
	 * by reference, no JSON building and no copy per request. */
	struct vm_list_cache *c = vm_list_cache_get(req->d);
	if (!c) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	struct MHD_Response *resp =
		MHD_create_response_from_buffer_with_free_callback_cls(c->len, c->data,
									vms_free_cache, c);
	if (!resp) {
		vm_list_cache_put(c);
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	req->status = 200;
	req->custom = resp;
}

/* Look up {name}; replies 404 and returns NULL when there is none. */
static struct vm *vms_lookup(struct http_req *req)
{
	return http_vm_get(req);
}

static void vms_reply_vm(struct http_req *req, unsigned status, struct vm *vm, json_t *extra)
{
	struct vm_record *r = malloc(sizeof(*r));
	if (!r) {
		json_decref(extra);
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	vm_snapshot(req->d, vm, r);
	json_t *body = extra ? extra : json_object();
	json_object_set_new(body, "vm", vm_to_json(r));
	free(r);
	http_reply_json(req, status, body);
}

void vms_create(struct http_req *req)
{
	struct daemon *d = req->d;
	json_t *body = NULL;
	char err[VALIDATE_ERR_MAX];
	struct daemon_err e = {0};
	struct vm_record *rec = malloc(sizeof(*rec));
	if (!rec) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	if (http_body_json(req, false, &body) < 0)
		goto out;
	/* A scoped caller creates only in its own project, which is also
	 * where its VMs go when the body names none. */
	if (req->who.project[0] && !json_object_get(body, "project"))
		json_object_set_new(body, "project", json_string(req->who.project));
	const char *project = json_string_value(json_object_get(body, "project"));
	if (req->who.project[0] && !auth_scope_allows(&req->who, project)) {
		http_reply_errorf(req, 403, "forbidden",
				  "token '%s' is scoped to project '%s' and cannot create a VM in "
				  "project '%s'",
				  req->who.token_id, req->who.project, project ? project : "default");
		goto out;
	}
	if (validate_vm_create(body, &d->vctx, rec, err) < 0) {
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
		goto out;
	}
	if (vm_create(d, rec, &e) < 0) {
		http_reply_err(req, &e);
		goto out;
	}
	http_reply_json(req, 201, json_pack("{s:o}", "vm", vm_to_json(rec)));
out:
	json_decref(body);
	free(rec);
}

void vms_get(struct http_req *req)
{
	struct vm *vm = vms_lookup(req);
	if (!vm)
		return;
	vms_reply_vm(req, 200, vm, NULL);
	vm_unref(req->d, vm);
}

void vms_patch(struct http_req *req)
{
	json_t *body = NULL;
	struct daemon_err e = {0};
	struct vm *vm = vms_lookup(req);
	if (!vm)
		return;
	if (http_body_json(req, false, &body) < 0)
		goto out;
	/* Nor may it move a VM out of its project. */
	json_t *np = json_object_get(body, "project");
	if (req->who.project[0] && np && !auth_scope_allows(&req->who, json_string_value(np))) {
		http_reply_errorf(req, 403, "forbidden",
				  "token '%s' is scoped to project '%s' and cannot move VM '%s' to "
				  "project '%s'",
				  req->who.token_id, req->who.project, req->params[0],
				  json_is_string(np) ? json_string_value(np) : "(not a string)");
		goto out;
	}
	if (vm_update(req->d, vm, body, &e) < 0) {
		http_reply_err(req, &e);
		goto out;
	}
	vms_reply_vm(req, 200, vm, NULL);
out:
	json_decref(body);
	vm_unref(req->d, vm);
}

void vms_delete(struct http_req *req)
{
	struct daemon_err e = {0};
	const char *force = http_query(req, "force");
	if (force && strcmp(force, "true") != 0 && strcmp(force, "false") != 0 &&
	    strcmp(force, "1") != 0 && strcmp(force, "0") != 0) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "query parameter force must be true or false; got '%s'", force);
		return;
	}
	/* Snapshots and backups are never removed silently (docs/backups.md
	 * "Deleting a VM"): the request must say what happens to them. */
	const char *snaps_q = http_query(req, "snapshots"), *backs_q = http_query(req, "backups");
	if (snaps_q && strcmp(snaps_q, "delete") != 0) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "query parameter snapshots must be 'delete'; got '%s'", snaps_q);
		return;
	}
	if (backs_q && strcmp(backs_q, "keep") != 0 && strcmp(backs_q, "delete") != 0) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "query parameter backups must be 'keep' or 'delete'; got '%s'",
				  backs_q);
		return;
	}
	struct vm *vm = vms_lookup(req);
	if (!vm)
		return;
	json_t *snaps = snapshots_of_vm(req->d, req->params[0]);
	json_t *backs = backups_of_vm(req->d, req->params[0]);
	if (json_array_size(snaps) && !snaps_q)
		http_reply_errorf(req, 409, "conflict",
				  "vm '%s' has %zu snapshot(s), which are deleted with it; pass "
				  "?snapshots=delete to confirm", req->params[0], json_array_size(snaps));
	else if (json_array_size(backs) && !backs_q)
		http_reply_errorf(req, 409, "conflict",
				  "vm '%s' has %zu backup(s) in the backup store; pass ?backups=keep "
				  "to keep them (they can restore it later) or ?backups=delete",
				  req->params[0], json_array_size(backs));
	else if (vm_delete(req->d, vm, validate_flag(force), &e) < 0)
		http_reply_err(req, &e);
	else {
		snapshots_forget_vm(req->d, req->params[0]);
		if (backs_q && strcmp(backs_q, "delete") == 0 &&
		    backups_delete_of_vm(req->d, req->params[0], &e) < 0)
			http_reply_err(req, &e);
		else
			http_reply_json(req, 200, json_pack("{s:s}", "deleted", req->params[0]));
	}
	json_decref(snaps);
	json_decref(backs);
	vm_unref(req->d, vm);
}

/* Actions take no body (or an empty object); stop takes {"timeout"}. */
static void vms_action(struct http_req *req, int (*fn)(struct daemon *, struct vm *,
						       struct daemon_err *))
{
	json_t *body = NULL;
	struct daemon_err e = {0};
	if (http_body_json(req, true, &body) < 0)
		return;
	if (json_object_size(body) != 0) {
		const char *key = json_object_iter_key(json_object_iter(body));
		http_reply_errorf(req, 400, "invalid_argument",
				  "unknown field '%s': this action takes no fields", key);
		json_decref(body);
		return;
	}
	json_decref(body);
	struct vm *vm = vms_lookup(req);
	if (!vm)
		return;
	if (fn(req->d, vm, &e) < 0)
		http_reply_err(req, &e);
	else
		vms_reply_vm(req, 200, vm, NULL);
	vm_unref(req->d, vm);
}

void vms_start(struct http_req *req)
{
	vms_action(req, vm_start);
}

void vms_force_stop(struct http_req *req)
{
	vms_action(req, vm_force_stop);
}

void vms_reboot(struct http_req *req)
{
	vms_action(req, vm_reboot);
}

void vms_pause(struct http_req *req)
{
	vms_action(req, vm_pause);
}

void vms_resume(struct http_req *req)
{
	vms_action(req, vm_resume);
}

void vms_stop(struct http_req *req)
{
	json_t *body = NULL;
	char err[VALIDATE_ERR_MAX];
	struct daemon_err e = {0};
	unsigned timeout;
	bool forced = false;
	if (http_body_json(req, true, &body) < 0)
		return;
	if (validate_vm_stop(body, &timeout, err) < 0) {
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
		json_decref(body);
		return;
	}
	json_decref(body);
	struct vm *vm = vms_lookup(req);
	if (!vm)
		return;
	if (vm_stop(req->d, vm, timeout, &forced, &e) < 0)
		http_reply_err(req, &e);
	else
		vms_reply_vm(req, 200, vm, json_pack("{s:b}", "forced", forced));
	vm_unref(req->d, vm);
}
