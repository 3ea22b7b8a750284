/* validate: request body checks for the REST API (docs/api.md). Every check
 * happens here, before vesseld touches the store, the disks or QEMU. */
#include "daemon/validate.h"
#include "daemon/networks.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"

__attribute__((format(printf, 2, 3))) static int validate_fail(char err[VALIDATE_ERR_MAX],
							       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, VALIDATE_ERR_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int validate_body_parse(const char *body, size_t len, bool allow_empty, json_t **out,
			char err[VALIDATE_ERR_MAX])
{
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
		i++;
	if (i == len) {
		if (!allow_empty)
			return validate_fail(err, "the request needs a JSON object body; "
						  "send Content-Type: application/json with {...}");
		*out = json_object();
		return *out ? 0 : -ENOMEM;
	}
	json_error_t je;
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!j)
		return validate_fail(err, "the request body is not valid JSON (line %d, column %d: %s); "
					  "fix the JSON and retry", je.line, je.column, je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return validate_fail(err, "the request body must be a JSON object ({...})");
	}
	*out = j;
	return 0;
}

/* Refuse any key not in allowed (NULL-terminated): a typo must not be
 * silently ignored. */
static int validate_known_fields(const json_t *obj, const char *what, const char *const *allowed,
				 char err[VALIDATE_ERR_MAX])
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				ok = true;
		if (!ok) {
			char list[256] = "";
			for (const char *const *a = allowed; *a; a++) {
				if (a != allowed)
					strncat(list, ", ", sizeof(list) - strlen(list) - 1);
				strncat(list, *a, sizeof(list) - strlen(list) - 1);
			}
			return validate_fail(err, "unknown field '%s' in %s; allowed fields are: %s",
					     key, what, list);
		}
	}
	return 0;
}

static int validate_int(const json_t *obj, const char *key, uint64_t min, uint64_t max,
			bool *present, uint64_t *out, char err[VALIDATE_ERR_MAX])
{
	json_t *v = json_object_get(obj, key);
	*present = v != NULL;
	if (!v)
		return 0;
	if (!json_is_integer(v))
		return validate_fail(err, "field '%s' must be an integer from %llu to %llu", key,
				     (unsigned long long)min, (unsigned long long)max);
	json_int_t i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return validate_fail(err, "field '%s' must be from %llu to %llu; got %lld", key,
				     (unsigned long long)min, (unsigned long long)max,
				     (long long)i);
	*out = (uint64_t)i;
	return 0;
}

static int validate_bool(const json_t *obj, const char *key, bool *present, bool *out,
			 char err[VALIDATE_ERR_MAX])
{
	json_t *v = json_object_get(obj, key);
	*present = v != NULL;
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return validate_fail(err, "field '%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

/* A string field; max_chars counts Unicode code points (jansson has
 * already checked the UTF-8). */
static int validate_str(const json_t *obj, const char *key, size_t max_chars, const char **out,
			char err[VALIDATE_ERR_MAX])
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return validate_fail(err, "field '%s' must be a string", key);
	const char *s = json_string_value(v);
	size_t chars = 0, bytes = json_string_length(v);
	if (strlen(s) != bytes)
		return validate_fail(err, "field '%s' must not contain NUL characters", key);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xc0) != 0x80)
			chars++;
	if (chars > max_chars)
		return validate_fail(err, "field '%s' is %zu characters long; at most %zu are allowed",
				     key, chars, max_chars);
	*out = s;
	return 0;
}

static int validate_name(const json_t *obj, const char *key, bool required, const char **out,
			 char err[VALIDATE_ERR_MAX])
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v) {
		if (required)
			return validate_fail(err, "field '%s' is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return validate_fail(err, "field '%s' must be a string", key);
	const char *s = json_string_value(v);
	if (!util_is_dns_label(s) || strlen(s) != json_string_length(v))
		return validate_fail(err,
				     "'%s' is not a valid %s: use 1 to 63 lowercase letters, digits "
				     "or '-', not starting or ending with '-'",
				     s, key);
	*out = s;
	return 0;
}

int validate_path(const char *path, const char *what, const struct validate_ctx *vc,
		  char resolved[MODEL_PATH_MAX], char err[VALIDATE_ERR_MAX])
{
	char buf[PATH_MAX];
	if (!path || path[0] != '/')
		return validate_fail(err, "%s '%s' must be an absolute path", what, path ? path : "");
	if (!realpath(path, buf))
		return validate_fail(err, "%s '%s' cannot be used: %s", what, path, strerror(errno));
	struct stat st;
	if (stat(buf, &st) < 0 || !S_ISREG(st.st_mode))
		return validate_fail(err, "%s '%s' is not a regular file", what, path);
	for (size_t i = 0; i < vc->nr_allow_dirs; i++) {
		const char *dir = vc->allow_dirs[i];
		size_t n = strlen(dir);
		while (n > 1 && dir[n - 1] == '/')
			n--;
		if (strncmp(buf, dir, n) == 0 && (buf[n] == '/' || (n == 1 && dir[0] == '/'))) {
			if (model_copy(resolved, MODEL_PATH_MAX, buf) < 0)
				return validate_fail(err, "%s '%s' is too long", what, path);
			return 0;
		}
	}
	return validate_fail(err,
			     "%s '%s' is not under an allowed directory; put the file under %s "
			     "or start vesseld with --allow-dir",
			     what, path, vc->nr_allow_dirs ? vc->allow_dirs[0] : "the import directory");
}

static const char *const boot_fields[] = {"firmware", "kernel", "initrd", "cmdline", NULL};

static int validate_boot(const json_t *boot, const struct validate_ctx *vc, struct vm_record *vm,
			 char err[VALIDATE_ERR_MAX])
{
	if (!json_is_object(boot))
		return validate_fail(err, "field 'boot' must be an object such as {\"firmware\": \"bios\"}");
	int r = validate_known_fields(boot, "'boot'", boot_fields, err);
	if (r < 0)
		return r;
	const char *fw = NULL, *kernel, *initrd, *cmdline;
	if ((r = validate_str(boot, "firmware", 16, &fw, err)) < 0 ||
	    (r = validate_str(boot, "kernel", MODEL_PATH_MAX - 1, &kernel, err)) < 0 ||
	    (r = validate_str(boot, "initrd", MODEL_PATH_MAX - 1, &initrd, err)) < 0 ||
	    (r = validate_str(boot, "cmdline", sizeof(vm->cmdline) - 1, &cmdline, err)) < 0)
		return r;
	enum engine_firmware f = ENGINE_FW_BIOS;
	if (fw && model_firmware_parse(fw, &f) < 0)
		return validate_fail(err, "boot firmware '%s' is unknown; use bios, uefi or kernel", fw);
	if (!fw && kernel)
		f = ENGINE_FW_KERNEL;
	vm->kernel[0] = vm->initrd[0] = vm->cmdline[0] = '\0';
	vm->firmware = f;
	if (f != ENGINE_FW_KERNEL) {
		if (kernel || initrd || cmdline)
			return validate_fail(err, "boot kernel, initrd and cmdline are only allowed with "
						  "firmware 'kernel'");
		return 0;
	}
	if (!kernel)
		return validate_fail(err, "boot firmware 'kernel' needs a 'kernel' path");
	if ((r = validate_path(kernel, "kernel", vc, vm->kernel, err)) < 0)
		return r;
	if (initrd && (r = validate_path(initrd, "initrd", vc, vm->initrd, err)) < 0)
		return r;
	if (cmdline)
		model_copy(vm->cmdline, sizeof(vm->cmdline), cmdline);
	return 0;
}

/* Fields shared by create and patch. */
static int validate_vm_fields(const json_t *body, const struct validate_ctx *vc,
			      struct vm_record *vm, char err[VALIDATE_ERR_MAX])
{
	bool present;
	uint64_t u = 0;
	int r;
	if ((r = validate_int(body, "vcpus", 1, 64, &present, &u, err)) < 0)
		return r;
	if (present)
		vm->vcpus = (unsigned)u;
	if ((r = validate_int(body, "memory_mib", 16, 1048576, &present, &u, err)) < 0)
		return r;
	if (present)
		vm->memory_mib = u;
	const char *s;
	if ((r = validate_str(body, "description", 1024, &s, err)) < 0)
		return r;
	if (s)
		model_copy(vm->description, sizeof(vm->description), s);
	bool b = false;
	if ((r = validate_bool(body, "autostart", &present, &b, err)) < 0)
		return r;
	if (present)
		vm->autostart = b;
	if ((r = validate_str(body, "restart_policy", 16, &s, err)) < 0)
		return r;
	if (s && model_restart_policy_parse(s, &vm->restart_policy) < 0)
		return validate_fail(err, "restart_policy '%s' is unknown; use never or on-crash", s);
	json_t *boot = json_object_get(body, "boot");
	if (boot && (r = validate_boot(boot, vc, vm, err)) < 0)
		return r;
	/* The project must also exist; the daemon checks that with the
	 * quotas, under its lock. */
	if ((r = validate_name(body, "project", false, &s, err)) < 0)
		return r;
	if (s)
		model_copy(vm->project, sizeof(vm->project), s);
	if ((r = validate_str(body, "priority", 4, &s, err)) < 0)
		return r;
	if (s && model_priority_parse(s, &vm->priority) < 0)
		return validate_fail(err, "priority '%s' is unknown; use P0 (most important), P1, P2 "
					  "(the default), P3 or P4", s);
	return 0;
}

static const char *const disk_fields[] = {"image", "clone", "size_gib", NULL};

static int validate_disk(const json_t *d, unsigned index, struct vm_disk *out,
			 char err[VALIDATE_ERR_MAX])
{
	char what[32];
	snprintf(what, sizeof(what), "disks[%u]", index);
	if (!json_is_object(d))
		return validate_fail(err, "%s must be an object such as {\"image\": \"debian\"} or "
					  "{\"size_gib\": 4}", what);
	int r = validate_known_fields(d, what, disk_fields, err);
	if (r < 0)
		return r;
	const char *image, *clone;
	if ((r = validate_name(d, "image", false, &image, err)) < 0 ||
	    (r = validate_str(d, "clone", 16, &clone, err)) < 0)
		return r;
	bool present;
	uint64_t size = 0;
	if ((r = validate_int(d, "size_gib", 1, 16384, &present, &size, err)) < 0)
		return r;
	memset(out, 0, sizeof(*out));
	out->index = index;
	out->size_gib = size;
	model_copy(out->format, sizeof(out->format), "qcow2");
	if (!image) {
		if (clone)
			return validate_fail(err, "%s has 'clone' but no 'image'; name the image to clone",
					     what);
		if (!present)
			return validate_fail(err, "%s needs an 'image' or a 'size_gib' for a blank disk",
					     what);
		out->clone = DISK_CLONE_NONE;
		return 0;
	}
	model_copy(out->image, sizeof(out->image), image);
	out->clone = DISK_CLONE_LINKED;
	if (clone && (model_clone_parse(clone, &out->clone) < 0 || out->clone == DISK_CLONE_NONE))
		return validate_fail(err, "%s clone '%s' is unknown; use linked or full", what, clone);
	return 0;
}

/* "nics": [{network, vlan, mac, firewall, bandwidth_mbit}] (syntax; the
 * daemon checks the names exist, networks.c). Absent = keep. */
static int validate_nics(const json_t *body, struct vm_record *vm, char err[VALIDATE_ERR_MAX])
{
	json_t *nics = json_object_get(body, "nics"), *n;
	size_t i;
	char nerr[NET_ERR_MAX];

	if (!nics)
		return 0;
	if (!json_is_array(nics))
		return validate_fail(err, "field 'nics' must be an array of NIC objects");
	if (json_array_size(nics) > MODEL_MAX_NICS)
		return validate_fail(err, "a VM can have at most %d NICs; %zu were given",
				     MODEL_MAX_NICS, json_array_size(nics));
	json_array_foreach(nics, i, n) {
		if (networks_nic_parse(n, (unsigned)i, &vm->nics[i], nerr) < 0)
			return validate_fail(err, "%s", nerr);
	}
	vm->nr_nics = (unsigned)json_array_size(nics);
	return 0;
}

static const char *const vm_create_fields[] = {"name", "vcpus", "memory_mib", "description",
					       "autostart", "restart_policy", "boot", "disks",
					       "project", "priority", "nics", NULL};

int validate_vm_create(const json_t *body, const struct validate_ctx *vc, struct vm_record *out,
		       char err[VALIDATE_ERR_MAX])
{
	int r = validate_known_fields(body, "the VM definition", vm_create_fields, err);
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	out->vcpus = 1;
	out->memory_mib = 512;
	out->firmware = ENGINE_FW_BIOS;
	out->restart_policy = VM_RESTART_NEVER;
	out->state = VM_STATE_STOPPED;
	out->priority = MODEL_PRIORITY_DEFAULT;
	model_copy(out->project, sizeof(out->project), MODEL_PROJECT_DEFAULT);
	const char *name;
	if ((r = validate_name(body, "name", true, &name, err)) < 0)
		return r;
	model_copy(out->name, sizeof(out->name), name);
	if ((r = validate_vm_fields(body, vc, out, err)) < 0)
		return r;
	if ((r = validate_nics(body, out, err)) < 0)
		return r;
	json_t *disks = json_object_get(body, "disks");
	if (!disks)
		return 0;
	if (!json_is_array(disks))
		return validate_fail(err, "field 'disks' must be an array of disk objects");
	if (json_array_size(disks) > MODEL_MAX_DISKS)
		return validate_fail(err, "a VM can have at most %d disks; %zu were given",
				     MODEL_MAX_DISKS, json_array_size(disks));
	size_t i;
	json_t *d;
	json_array_foreach(disks, i, d) {
		if ((r = validate_disk(d, (unsigned)i, &out->disks[i], err)) < 0)
			return r;
	}
	out->nr_disks = (unsigned)json_array_size(disks);
	return 0;
}

static const char *const vm_patch_fields[] = {"vcpus", "memory_mib", "description", "autostart",
					      "restart_policy", "boot", "project", "priority", "nics", NULL};

int validate_vm_patch(const json_t *body, const struct validate_ctx *vc, struct vm_record *vm,
		      char err[VALIDATE_ERR_MAX])
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)body, key, v) {
		if (strcmp(key, "name") == 0 || strcmp(key, "disks") == 0)
			return validate_fail(err, "field '%s' cannot be changed with PATCH; create a new "
						  "VM instead", key);
	}
	int r = validate_known_fields(body, "the VM update", vm_patch_fields, err);
	if (r < 0)
		return r;
	if ((r = validate_vm_fields(body, vc, vm, err)) < 0)
		return r;
	return validate_nics(body, vm, err);
}

static const char *const stop_fields[] = {"timeout", NULL};

int validate_vm_stop(const json_t *body, unsigned *timeout_s, char err[VALIDATE_ERR_MAX])
{
	*timeout_s = 60;
	if (!body)
		return 0;
	int r = validate_known_fields(body, "the stop request", stop_fields, err);
	if (r < 0)
		return r;
	bool present;
	uint64_t t;
	if ((r = validate_int(body, "timeout", 0, 3600, &present, &t, err)) < 0)
		return r;
	if (present)
		*timeout_s = (unsigned)t;
	return 0;
}

static const char *const image_fields[] = {"name", "path", "format", NULL};

int validate_image_import(const json_t *body, const struct validate_ctx *vc,
			  struct image_record *out, char err[VALIDATE_ERR_MAX])
{
	int r = validate_known_fields(body, "the image import", image_fields, err);
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	const char *name, *path, *format;
	if ((r = validate_name(body, "name", true, &name, err)) < 0)
		return r;
	if ((r = validate_str(body, "path", MODEL_PATH_MAX - 1, &path, err)) < 0)
		return r;
	if (!path)
		return validate_fail(err, "field 'path' is required: the file to import");
	if ((r = validate_str(body, "format", 8, &format, err)) < 0)
		return r;
	if (!format)
		format = "auto";
	static const char *const formats[] = {"auto", "raw", "qcow2", "vmdk", "vhd"};
	bool ok = false;
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
		if (strcmp(formats[i], format) == 0)
			ok = true;
	if (!ok)
		return validate_fail(err, "image format '%s' is unknown; use auto, raw, qcow2, vmdk or vhd",
				     format);
	if ((r = validate_path(path, "image path", vc, out->source_path, err)) < 0)
		return r;
	model_copy(out->name, sizeof(out->name), name);
	model_copy(out->source_format, sizeof(out->source_format), format);
	model_copy(out->format, sizeof(out->format), "qcow2");
	out->state = IMAGE_STATE_IMPORTING;
	return 0;
}

bool validate_flag(const char *s)
{
	return s && (strcmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcmp(s, "yes") == 0);
}
