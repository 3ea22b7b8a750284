/* images: base images VMs clone their disks from (docs/api.md "Images").
 * An import converts the client's file (raw, qcow2, vmdk, vhd) to qcow2
 * under DATA_DIR/images/ with `qemu-img convert -p` on a task thread; the
 * stored file's SHA-256 lets people check what a VM was built from. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/qemu_img.h"
#include "daemon/store.h"

int image_registry_load(struct daemon *d)
{
	struct image_record *v = NULL;
	size_t n = 0;
	int r = store_image_list(d->store, &v, &n);
	if (r < 0)
		return r;
	d->images = calloc(n + 1, sizeof(*d->images));
	d->cap_images = n + 1;
	for (size_t i = 0; i < n && d->images; i++) {
		/* An import cut short by a restart left no usable file. */
		if (v[i].state != IMAGE_STATE_READY) {
			log_warn("image '%s' was being imported when vesseld stopped; removing it",
				 v[i].name);
			char tmp[PATH_MAX + 8];
			snprintf(tmp, sizeof(tmp), "%s.tmp", v[i].path);
			unlink(tmp);
			unlink(v[i].path);
			store_image_delete(d->store, v[i].name);
			continue;
		}
		struct image_record *img = malloc(sizeof(*img));
		if (!img)
			break;
		*img = v[i];
		d->images[d->nr_images++] = img;
	}
	free(v);
	return d->images ? 0 : -ENOMEM;
}

void image_registry_free(struct daemon *d)
{
	for (size_t i = 0; i < d->nr_images; i++)
		free(d->images[i]);
	free(d->images);
	d->images = NULL;
	d->nr_images = d->cap_images = 0;
}

static ssize_t image_index_locked(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->nr_images; i++)
		if (strcmp(d->images[i]->name, name) == 0)
			return (ssize_t)i;
	return -1;
}

size_t image_count(struct daemon *d)
{
	pthread_mutex_lock(&d->images_lock);
	size_t n = d->nr_images;
	pthread_mutex_unlock(&d->images_lock);
	return n;
}

int image_lookup_ready(struct daemon *d, const char *name, struct image_record *out)
{
	int r = -ENOENT;
	pthread_mutex_lock(&d->images_lock);
	ssize_t i = image_index_locked(d, name);
	if (i >= 0) {
		*out = *d->images[i];
		r = out->state == IMAGE_STATE_READY ? 0 : -EBUSY;
	}
	pthread_mutex_unlock(&d->images_lock);
	return r;
}

static json_t *image_json(struct daemon *d, const struct image_record *img)
{
	json_t *users = json_array();
	vm_image_in_use(d, img->name, users);
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:o,s:s,s:o}", "name", img->name,
			 "format", img->format, "source_format", img->source_format, "size_bytes",
			 (json_int_t)img->size_bytes, "virtual_size_bytes",
			 (json_int_t)img->virtual_size_bytes, "sha256", img->sha256, "source_path",
			 img->source_path, "state", model_image_state_name(img->state), "task",
			 img->task[0] ? json_string(img->task) : json_null(), "created_at",
			 img->created_at, "used_by", users);
}

/* Replace the in-memory record of an image (by name) and persist it. */
static void image_update(struct daemon *d, const struct image_record *img)
{
	pthread_mutex_lock(&d->images_lock);
	ssize_t i = image_index_locked(d, img->name);
	if (i >= 0)
		*d->images[i] = *img;
	pthread_mutex_unlock(&d->images_lock);
	store_image_put(d->store, img);
}

static void image_remove(struct daemon *d, const char *name)
{
	pthread_mutex_lock(&d->images_lock);
	ssize_t i = image_index_locked(d, name);
	if (i >= 0) {
		free(d->images[i]);
		memmove(d->images + i, d->images + i + 1,
			(d->nr_images - (size_t)i - 1) * sizeof(*d->images));
		d->nr_images--;
	}
	pthread_mutex_unlock(&d->images_lock);
	store_image_delete(d->store, name);
}

struct image_import {
	struct daemon *d;
	struct image_record img;
};

static void image_import_progress(void *opaque, int pct)
{
	struct image_import *im = opaque;
	task_progress(im->d, im->img.task, pct, NULL);
}

static void *image_import_thread(void *arg)
{
	struct image_import *im = arg;
	struct daemon *d = im->d;
	struct image_record *img = &im->img;
	char *err = NULL;
	char tmp[PATH_MAX + 8];
	struct qemu_img_info info;
	int r;

	snprintf(tmp, sizeof(tmp), "%s.tmp", img->path);
	/* vhd is what people call it; qemu-img calls the driver vpc. */
	const char *fmt = strcmp(img->source_format, "auto") == 0 ? NULL :
			  strcmp(img->source_format, "vhd") == 0  ? "vpc" :
								    img->source_format;
	task_progress(d, img->task, 0, "inspecting the source file");
	if ((r = qemu_img_info(d->cfg.qemu_img, img->source_path, fmt, &info, &err)) < 0)
		goto out;
	if (strcmp(info.format, "raw") != 0 && strcmp(info.format, "qcow2") != 0 &&
	    strcmp(info.format, "vmdk") != 0 && strcmp(info.format, "vpc") != 0) {
		asprintf(&err, "the file is in format '%s', which vessel does not import; convert it "
			       "to raw, qcow2, vmdk or vhd first", info.format);
		r = -EINVAL;
		goto out;
	}
	/* A backing file would let an import read any file the daemon can
	 * (the path is inside the image); require a standalone image. */
	if (info.backing[0]) {
		asprintf(&err, "the image has a backing file (%s); flatten it with 'qemu-img convert' "
			       "and import the result", info.backing);
		r = -EINVAL;
		goto out;
	}
	model_copy(img->source_format, sizeof(img->source_format),
		   strcmp(info.format, "vpc") == 0 ? "vhd" : info.format);
	task_progress(d, img->task, 0, "converting to qcow2");
	const char *args[] = {"convert", "-p", "-f", info.format, "-O", "qcow2",
			      img->source_path, tmp, NULL};
	if ((r = qemu_img_run(d->cfg.qemu_img, args, image_import_progress, im, NULL, &err)) < 0)
		goto out;
	struct qemu_img_info out_info;
	if ((r = qemu_img_info(d->cfg.qemu_img, tmp, "qcow2", &out_info, &err)) < 0)
		goto out;
	task_progress(d, img->task, 100, "computing SHA-256");
	if ((r = qemu_img_sha256(tmp, img->sha256)) < 0) {
		asprintf(&err, "cannot read the converted image %s: %s", tmp, strerror(-r));
		goto out;
	}
	struct stat st;
	if (stat(tmp, &st) == 0)
		img->size_bytes = (uint64_t)st.st_size;
	img->virtual_size_bytes = out_info.virtual_size;
	if (rename(tmp, img->path) < 0) {
		r = -errno;
		asprintf(&err, "cannot move the converted image into place: %s", strerror(-r));
		goto out;
	}
	img->state = IMAGE_STATE_READY;
	image_update(d, img);
	task_finish(d, img->task, NULL);
	log_info("image '%s' imported from %s (%s, %llu bytes virtual)", img->name,
		 img->source_path, img->source_format, (unsigned long long)img->virtual_size_bytes);
out:
	if (r < 0) {
		/* docs/api.md: a failed import leaves no image row and no file. */
		unlink(tmp);
		unlink(img->path);
		image_remove(d, img->name);
		log_warn("image '%s': import failed: %s", img->name, err ? err : "unknown error");
		task_finish(d, img->task, err ? err : "the import failed");
	}
	free(err);
	free(im);
	return NULL;
}

void images_create(struct http_req *req)
{
	struct daemon *d = req->d;
	json_t *body = NULL;
	char err[VALIDATE_ERR_MAX];
	struct image_import *im = calloc(1, sizeof(*im));
	if (!im) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	im->d = d;
	if (http_body_json(req, false, &body) < 0)
		goto out;
	if (validate_image_import(body, &d->vctx, &im->img, err) < 0) {
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
		goto out;
	}
	struct image_record *img = &im->img;
	daemon_path(d, img->path, sizeof(img->path), "images/%s.qcow2", img->name);
	model_now(img->created_at);

	pthread_mutex_lock(&d->images_lock);
	if (image_index_locked(d, img->name) >= 0) {
		pthread_mutex_unlock(&d->images_lock);
		http_reply_errorf(req, 409, "conflict",
				  "an image named '%s' already exists; choose another name or delete "
				  "it first", img->name);
		goto out;
	}
	if (d->nr_images + 1 >= d->cap_images) {
		size_t ncap = d->cap_images ? d->cap_images * 2 : 16;
		struct image_record **ni = realloc(d->images, ncap * sizeof(*ni));
		if (!ni) {
			pthread_mutex_unlock(&d->images_lock);
			http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
			goto out;
		}
		d->images = ni;
		d->cap_images = ncap;
	}
	struct image_record *entry = malloc(sizeof(*entry));
	if (!entry) {
		pthread_mutex_unlock(&d->images_lock);
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		goto out;
	}
	*entry = *img;
	d->images[d->nr_images++] = entry;
	pthread_mutex_unlock(&d->images_lock);

	int r = task_create(d, TASK_KIND_IMAGE_IMPORT, img->name, img->task);
	if (r == 0)
		r = store_image_put(d->store, img);
	if (r < 0) {
		/* image first, task last: a client that sees the task ended
		 * must not find the image any more */
		image_remove(d, img->name);
		if (img->task[0]) /* the task row was made: do not leave it running */
			task_finish(d, img->task, "the import could not be recorded in the database");
		http_reply_errorf(req, 500, "internal",
				  "cannot record the import in the database (%s); check the data "
				  "directory's disk space",
				  strerror(-r));
		goto out;
	}
	image_update(d, img);
	json_t *reply = json_pack("{s:o,s:o}", "image", image_json(d, img), "task",
				  task_json(d, img->task));
	if (daemon_spawn(d, image_import_thread, im) < 0) {
		image_remove(d, img->name);
		task_finish(d, img->task, "vesseld could not start a thread for the import");
		json_decref(reply);
		http_reply_errorf(req, 500, "internal", "cannot start the import thread; retry");
		goto out;
	}
	im = NULL;
	http_reply_json(req, 202, reply);
out:
	free(im);
	json_decref(body);
}

void images_list(struct http_req *req)
{
	struct daemon *d = req->d;
	pthread_mutex_lock(&d->images_lock);
	size_t n = d->nr_images;
	struct image_record *copy = malloc((n ? n : 1) * sizeof(*copy));
	for (size_t i = 0; copy && i < n; i++)
		copy[i] = *d->images[i];
	pthread_mutex_unlock(&d->images_lock);
	if (!copy) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, image_json(d, &copy[i]));
	free(copy);
	http_reply_json(req, 200, json_pack("{s:o}", "images", arr));
}

static int image_get_copy(struct http_req *req, struct image_record *out)
{
	struct daemon *d = req->d;
	int r = -ENOENT;
	pthread_mutex_lock(&d->images_lock);
	ssize_t i = image_index_locked(d, req->params[0]);
	if (i >= 0) {
		*out = *d->images[i];
		r = 0;
	}
	pthread_mutex_unlock(&d->images_lock);
	if (r < 0)
		http_reply_errorf(req, 404, "not_found",
				  "there is no image '%s'; list images with GET /api/v1/images",
				  req->params[0]);
	return r;
}

void images_get(struct http_req *req)
{
	struct image_record *img = malloc(sizeof(*img));
	if (!img) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	if (image_get_copy(req, img) == 0)
		http_reply_json(req, 200, json_pack("{s:o}", "image", image_json(req->d, img)));
	free(img);
}

void images_delete(struct http_req *req)
{
	struct daemon *d = req->d;
	struct image_record *img = malloc(sizeof(*img));
	if (!img) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	if (image_get_copy(req, img) < 0)
		goto out;
	if (img->state == IMAGE_STATE_IMPORTING) {
		http_reply_errorf(req, 409, "conflict",
				  "image '%s' is still being imported (task %s); wait for the task "
				  "to finish",
				  img->name, img->task);
		goto out;
	}
	json_t *users = json_array();
	/* The VM lock is held across the check and the removal so no VM can
	 * be created on the image in between (vm_create takes the same lock
	 * when it looks the image up). */
	pthread_mutex_lock(&d->vms_lock);
	bool used = vm_image_in_use_locked(d, img->name, users);
	if (used) {
		pthread_mutex_unlock(&d->vms_lock);
		char list[512] = "";
		size_t i;
		json_t *u;
		json_array_foreach(users, i, u) {
			if (i)
				strncat(list, ", ", sizeof(list) - strlen(list) - 1);
			strncat(list, json_string_value(u), sizeof(list) - strlen(list) - 1);
		}
		http_reply_errorf(req, 409, "conflict",
				  "image '%s' is used by the disks of VM %s; delete %s first",
				  img->name, list, json_array_size(users) > 1 ? "those VMs" : "that VM");
		json_decref(users);
		goto out;
	}
	/* The file goes while the name is still taken, so it cannot be the
	 * file of a new import of the same name. */
	unlink(img->path);
	image_remove(d, img->name);
	pthread_mutex_unlock(&d->vms_lock);
	json_decref(users);
	log_info("image '%s' deleted", img->name);
	http_reply_json(req, 200, json_pack("{s:s}", "deleted", img->name));
out:
	free(img);
}
