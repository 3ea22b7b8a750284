/* tasks: long operations (image import, full disk copy) tracked in memory
 * for the API and persisted in the tasks table, plus the /api/v1/tasks
 * resource (docs/api.md "Tasks"). The work itself runs on a thread started
 * by the caller; this file only records progress and the outcome. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/store.h"
#include "lib/util.h"

/* Tasks that ended and are older than this many are forgotten in memory
 * (they stay in the database). */
#define TASKS_KEEP 1000

static json_t *task_record_json(const struct task_record *t)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:o,s:s,s:o}", "id", t->id, "kind",
			 model_task_kind_name(t->kind), "target", t->target, "state",
			 model_task_state_name(t->state), "progress", t->progress, "message",
			 t->message, "error", t->error[0] ? json_string(t->error) : json_null(),
			 "created_at", t->created_at, "finished_at",
			 t->finished_at[0] ? json_string(t->finished_at) : json_null());
}

int task_registry_load(struct daemon *d)
{
	struct task_record *v = NULL;
	size_t n = 0;
	int r = store_task_list(d->store, &v, &n);
	if (r < 0)
		return r;
	/* store order is newest first; memory keeps newest last */
	size_t keep = MIN(n, (size_t)TASKS_KEEP);
	d->tasks = calloc(keep ? keep : 1, sizeof(*d->tasks));
	d->cap_tasks = keep ? keep : 1;
	for (size_t i = 0; i < keep; i++) {
		struct task_record *t = malloc(sizeof(*t));
		if (!t)
			break;
		*t = v[keep - 1 - i];
		/* A task that was running when vesseld stopped did not finish. */
		if (t->state == TASK_STATE_RUNNING) {
			t->state = TASK_STATE_FAILED;
			snprintf(t->error, sizeof(t->error),
				 "vesseld stopped while the task ran; start the operation again");
			model_now(t->finished_at);
			store_task_put(d->store, t);
		}
		d->tasks[d->nr_tasks++] = t;
	}
	free(v);
	return 0;
}

void task_registry_free(struct daemon *d)
{
	for (size_t i = 0; i < d->nr_tasks; i++)
		free(d->tasks[i]);
	free(d->tasks);
	d->tasks = NULL;
	d->nr_tasks = d->cap_tasks = 0;
}

static struct task_record *task_find_locked(struct daemon *d, const char *id)
{
	for (size_t i = d->nr_tasks; i-- > 0;)
		if (strcmp(d->tasks[i]->id, id) == 0)
			return d->tasks[i];
	return NULL;
}

int task_create(struct daemon *d, enum task_kind kind, const char *target,
		char id[MODEL_TASK_ID_MAX])
{
	uint8_t rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	struct task_record *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	snprintf(t->id, sizeof(t->id), "t-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	t->kind = kind;
	model_copy(t->target, sizeof(t->target), target);
	t->state = TASK_STATE_RUNNING;
	model_now(t->created_at);
	int r = store_task_put(d->store, t);
	if (r < 0) {
		free(t);
		return r;
	}
	pthread_mutex_lock(&d->tasks_lock);
	if (d->nr_tasks == d->cap_tasks) {
		/* Forget the oldest finished task rather than grow forever. */
		if (d->nr_tasks >= TASKS_KEEP && d->tasks[0]->state != TASK_STATE_RUNNING) {
			free(d->tasks[0]);
			memmove(d->tasks, d->tasks + 1, (d->nr_tasks - 1) * sizeof(*d->tasks));
			d->nr_tasks--;
		} else {
			size_t ncap = d->cap_tasks ? d->cap_tasks * 2 : 16;
			struct task_record **nt = realloc(d->tasks, ncap * sizeof(*nt));
			if (!nt) {
				pthread_mutex_unlock(&d->tasks_lock);
				free(t);
				return -ENOMEM;
			}
			d->tasks = nt;
			d->cap_tasks = ncap;
		}
	}
	d->tasks[d->nr_tasks++] = t;
	memcpy(id, t->id, MODEL_TASK_ID_MAX);
	pthread_mutex_unlock(&d->tasks_lock);
	return 0;
}

void task_progress(struct daemon *d, const char *id, int progress, const char *message)
{
	struct task_record copy;
	bool found = false;
	pthread_mutex_lock(&d->tasks_lock);
	struct task_record *t = task_find_locked(d, id);
	if (t) {
		t->progress = progress < 0 ? 0 : progress > 100 ? 100 : progress;
		if (message)
			model_copy(t->message, sizeof(t->message), message);
		copy = *t;
		found = true;
	}
	pthread_mutex_unlock(&d->tasks_lock);
	/* Only the 10% steps go to disk: progress is for people watching the
	 * API, and a restart fails running tasks anyway. */
	if (found && (copy.progress % 10 == 0 || message))
		store_task_put(d->store, &copy);
}

void task_finish(struct daemon *d, const char *id, const char *error)
{
	struct task_record copy;
	bool found = false;
	pthread_mutex_lock(&d->tasks_lock);
	struct task_record *t = task_find_locked(d, id);
	if (t) {
		if (error) {
			t->state = TASK_STATE_FAILED;
			model_copy(t->error, sizeof(t->error), error);
		} else {
			t->state = TASK_STATE_SUCCEEDED;
			t->progress = 100;
			model_copy(t->message, sizeof(t->message), "done");
		}
		model_now(t->finished_at);
		copy = *t;
		found = true;
	}
	pthread_mutex_unlock(&d->tasks_lock);
	if (found)
		store_task_put(d->store, &copy);
}

json_t *task_json(struct daemon *d, const char *id)
{
	json_t *j = NULL;
	pthread_mutex_lock(&d->tasks_lock);
	struct task_record *t = task_find_locked(d, id);
	if (t)
		j = task_record_json(t);
	pthread_mutex_unlock(&d->tasks_lock);
	return j;
}

/* May this caller see task t (its JSON)? Image imports concern images,
 * which every project shares; every other kind targets a VM, which a
 * project-scoped token sees only in its own project (a VM that no longer
 * exists cannot be placed, so its tasks stay hidden from scoped callers).
 * Called without tasks_lock: the check takes vms_lock. */
static bool tasks_visible(struct http_req *req, const json_t *t)
{
	if (!req->who.project[0] ||
	    strcmp(json_string_value(json_object_get(t, "kind")),
		   model_task_kind_name(TASK_KIND_IMAGE_IMPORT)) == 0)
		return true;
	return vm_name_scope_allows(req->d, json_string_value(json_object_get(t, "target")),
				    &req->who);
}

void tasks_list(struct http_req *req)
{
	struct daemon *d = req->d;
	json_t *all = json_array(), *arr = json_array();
	pthread_mutex_lock(&d->tasks_lock);
	for (size_t i = d->nr_tasks; i-- > 0;)
		json_array_append_new(all, task_record_json(d->tasks[i]));
	pthread_mutex_unlock(&d->tasks_lock);
	size_t i;
	json_t *t;
	json_array_foreach(all, i, t) {
		if (tasks_visible(req, t))
			json_array_append(arr, t);
	}
	json_decref(all);
	http_reply_json(req, 200, json_pack("{s:o}", "tasks", arr));
}

void tasks_get(struct http_req *req)
{
	json_t *t = task_json(req->d, req->params[0]);
	if (t && !tasks_visible(req, t)) {
		json_decref(t);
		t = NULL;
	}
	if (!t) {
		http_reply_errorf(req, 404, "not_found",
				  "there is no task '%s'; list tasks with GET /api/v1/tasks",
				  req->params[0]);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o}", "task", t));
}
