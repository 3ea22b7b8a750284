/* model: enum names shared by the API and the database, timestamps, UUIDs. */
#include "daemon/model.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lib/util.h"

static const char *const vm_state_names[] = {
	[VM_STATE_PROVISIONING] = "provisioning",
	[VM_STATE_STOPPED] = "stopped",
	[VM_STATE_STARTING] = "starting",
	[VM_STATE_RUNNING] = "running",
	[VM_STATE_PAUSED] = "paused",
	[VM_STATE_STOPPING] = "stopping",
	[VM_STATE_CRASHED] = "crashed",
};
static const char *const restart_names[] = {
	[VM_RESTART_NEVER] = "never",
	[VM_RESTART_ON_CRASH] = "on-crash",
};
static const char *const firmware_names[] = {
	[ENGINE_FW_BIOS] = "bios",
	[ENGINE_FW_UEFI] = "uefi",
	[ENGINE_FW_KERNEL] = "kernel",
};
static const char *const clone_names[] = {
	[DISK_CLONE_NONE] = "none",
	[DISK_CLONE_LINKED] = "linked",
	[DISK_CLONE_FULL] = "full",
};
static const char *const image_state_names[] = {
	[IMAGE_STATE_IMPORTING] = "importing",
	[IMAGE_STATE_READY] = "ready",
	[IMAGE_STATE_FAILED] = "failed",
};
static const char *const task_kind_names[] = {
	[TASK_KIND_IMAGE_IMPORT] = "image_import",
	[TASK_KIND_DISK_COPY] = "disk_copy",
	[TASK_KIND_BACKUP] = "backup",
	[TASK_KIND_RESTORE] = "restore",
	[TASK_KIND_DRILL] = "restore_drill",
};
static const char *const task_state_names[] = {
	[TASK_STATE_RUNNING] = "running",
	[TASK_STATE_SUCCEEDED] = "succeeded",
	[TASK_STATE_FAILED] = "failed",
};

static int model_lookup(const char *const *names, size_t n, const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return (int)i;
	return -EINVAL;
}

#define MODEL_ENUM(fn, type, names)                                          \
	const char *model_##fn##_name(type v)                                \
	{                                                                    \
		return (size_t)v < ARRAY_SIZE(names) ? names[v] : "unknown"; \
	}                                                                    \
	int model_##fn##_parse(const char *s, type *out)                     \
	{                                                                    \
		int i = model_lookup(names, ARRAY_SIZE(names), s);           \
		if (i < 0)                                                   \
			return i;                                            \
		*out = (type)i;                                              \
		return 0;                                                    \
	}

MODEL_ENUM(vm_state, enum vm_state, vm_state_names)
MODEL_ENUM(restart_policy, enum vm_restart_policy, restart_names)
MODEL_ENUM(firmware, enum engine_firmware, firmware_names)
MODEL_ENUM(clone, enum disk_clone, clone_names)
MODEL_ENUM(image_state, enum image_state, image_state_names)
MODEL_ENUM(task_kind, enum task_kind, task_kind_names)
MODEL_ENUM(task_state, enum task_state, task_state_names)

static const char *const priority_names[] = {"P0", "P1", "P2", "P3", "P4"};

const char *model_priority_name(unsigned p)
{
	return p < ARRAY_SIZE(priority_names) ? priority_names[p] : "unknown";
}

int model_priority_parse(const char *s, unsigned *out)
{
	int i = model_lookup(priority_names, ARRAY_SIZE(priority_names), s);
	if (i < 0)
		return i;
	*out = (unsigned)i;
	return 0;
}

uint64_t model_vm_disk_gib(const struct vm_record *r)
{
	uint64_t bytes = 0;
	for (unsigned i = 0; i < r->nr_disks; i++)
		bytes += r->disks[i].size_bytes;
	return (bytes + (1ull << 30) - 1) >> 30;
}

void model_now(char out[MODEL_TIME_MAX])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, MODEL_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int model_uuid(char out[37])
{
	uint8_t b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -EIO;
	/* RFC 4122 §4.4: version 4 in the high nibble of byte 6, variant
	 * 10xx in byte 8. */
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		 b[12], b[13], b[14], b[15]);
	return 0;
}

int model_copy(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= cap)
		return -ENAMETOOLONG;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}
