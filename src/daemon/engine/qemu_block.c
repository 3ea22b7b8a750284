/* qemu_block: snapshots, saved machine state and backups for the qemu driver.
 *
 * - disk_snapshot: blockdev-snapshot-sync on the disk's top node makes QEMU
 *   create a qcow2 overlay and switch the guest's writes to it atomically;
 *   the old top becomes a read-only backing file (external snapshot, as
 *   libvirt does for disk-only snapshots).
 * - state_save / incoming: RAM and device state travel as a migration
 *   stream to or from a file. -sandbox spawn=deny forbids "exec:" URIs and
 *   QEMU 7.2 has no "file:" URI, so the file is opened here and handed to
 *   QEMU with "getfd" (SCM_RIGHTS), then used as "fd:NAME".
 * - disk_merge: block-stream into the image that depends on a snapshot
 *   file, which copies the data down and drops the file from the chain
 *   without pausing the guest.
 * - disk_backup: drive-backup (a job with copy-before-write, so the copy is
 *   the disk as it was when the job started, while the guest keeps writing)
 *   with a persistent dirty bitmap for incremental runs (QEMU
 *   docs/interop/bitmaps.rst "Incremental Backups").
 * Jobs are polled with query-jobs; they are created with auto-dismiss off so
 * their error can be read before job-dismiss. */
#include "daemon/engine/qemu_block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define QB_CMD_TIMEOUT_MS 30000
#define QB_JOB_TIMEOUT_S (6 * 3600)
#define QB_POLL_MS 100
/* One dirty bit per backup chunk (docs/backups.md): a changed byte makes
 * QEMU copy its whole 4 MiB chunk, so every changed chunk is complete in
 * the incremental copy. */
#define QB_BITMAP_GRANULARITY (4 * 1024 * 1024)

static void qb_set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void qb_set_err(char **err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	free(*err);
	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
}

static void qb_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Run cmd; args (may be NULL) are consumed. */
static int qb_cmd(struct engine_vm *vm, const char *cmd, json_t *args, json_t **ret, char **err)
{
	int r = qemu_vm_command_fd(vm, cmd, args, -1, QB_CMD_TIMEOUT_MS, ret, err);

	json_decref(args);
	return r;
}

/* Pass fd along with the command (SCM_RIGHTS); args are consumed. */
static int qb_cmd_fd(struct engine_vm *vm, const char *cmd, json_t *args, int fd, char **err)
{
	int r = qemu_vm_command_fd(vm, cmd, args, fd, QB_CMD_TIMEOUT_MS, NULL, err);

	json_decref(args);
	return r;
}

/* The node the guest's disk `disk` writes to: the device vd<N> that
 * qemu_args.c creates, as query-block reports it. */
static int qb_top_node(struct engine_vm *vm, unsigned disk, char node[64], char **err)
{
	json_t *ret = NULL, *b;
	char want[32];
	size_t i;
	int r;

	snprintf(want, sizeof(want), "/vd%u/", disk);
	if ((r = qb_cmd(vm, "query-block", NULL, &ret, err)) < 0)
		return r;
	r = -ENOENT;
	json_array_foreach(ret, i, b) {
		const char *qdev = json_string_value(json_object_get(b, "qdev"));
		const char *nn = json_string_value(
			json_object_get(json_object_get(b, "inserted"), "node-name"));

		if (qdev && nn && strstr(qdev, want)) {
			snprintf(node, 64, "%s", nn);
			r = 0;
			break;
		}
	}
	json_decref(ret);
	if (r < 0)
		qb_set_err(err, "the VM has no disk %u", disk);
	return r;
}

static bool qb_same_file(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	if (strcmp(a, b) == 0)
		return true;
	return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

/* The qcow2 format node that has `path` open. */
static int qb_node_of_file(struct engine_vm *vm, const char *path, char node[64], char **err)
{
	json_t *ret = NULL, *n;
	size_t i;
	int r;

	if ((r = qb_cmd(vm, "query-named-block-nodes", json_pack("{s:b}", "flat", 1), &ret,
			err)) < 0)
		return r;
	r = -ENOENT;
	json_array_foreach(ret, i, n) {
		const char *drv = json_string_value(json_object_get(n, "drv"));
		const char *file = json_string_value(json_object_get(n, "file"));
		const char *nn = json_string_value(json_object_get(n, "node-name"));

		if (drv && file && nn && strcmp(drv, "qcow2") == 0 && qb_same_file(file, path)) {
			snprintf(node, 64, "%s", nn);
			r = 0;
			break;
		}
	}
	json_decref(ret);
	if (r < 0)
		qb_set_err(err, "QEMU has no image %s open", path);
	return r;
}

/* Wait for job `id` to conclude, report its progress, dismiss it. */
static int qb_job_wait(struct engine_vm *vm, const char *id, engine_progress_fn *progress,
		       void *opaque, char **err)
{
	uint64_t deadline = util_now_ns() + (uint64_t)QB_JOB_TIMEOUT_S * 1000000000ull;
	int r;

	for (;;) {
		json_t *ret = NULL, *j, *found = NULL;
		size_t i;

		if ((r = qb_cmd(vm, "query-jobs", NULL, &ret, err)) < 0)
			return r;
		json_array_foreach(ret, i, j) {
			const char *jid = json_string_value(json_object_get(j, "id"));

			if (jid && strcmp(jid, id) == 0)
				found = j;
		}
		if (!found) {
			json_decref(ret);
			qb_set_err(err, "QEMU job %s disappeared before it finished", id);
			return -EIO;
		}
		const char *st = json_string_value(json_object_get(found, "status"));
		const char *jerr = json_string_value(json_object_get(found, "error"));
		json_int_t cur = json_integer_value(json_object_get(found, "current-progress"));
		json_int_t tot = json_integer_value(json_object_get(found, "total-progress"));

		if (progress && tot > 0)
			progress(opaque, (int)(cur * 100 / tot));
		if (st && (strcmp(st, "concluded") == 0 || strcmp(st, "null") == 0)) {
			if (jerr)
				qb_set_err(err, "QEMU job %s failed: %s", id, jerr);
			r = jerr ? -EIO : 0;
			json_decref(ret);
			char *ignored = NULL;
			qb_cmd(vm, "job-dismiss", json_pack("{s:s}", "id", id), NULL, &ignored);
			free(ignored);
			return r;
		}
		json_decref(ret);
		if (util_now_ns() > deadline) {
			char *ignored = NULL;
			qb_cmd(vm, "job-cancel", json_pack("{s:s}", "id", id), NULL, &ignored);
			free(ignored);
			qb_set_err(err, "QEMU job %s did not finish within %d s; cancelled it", id,
				   QB_JOB_TIMEOUT_S);
			return -ETIMEDOUT;
		}
		qb_sleep_ms(QB_POLL_MS);
	}
}

int qemu_block_disk_snapshot(struct engine_vm *vm, unsigned disk, const char *overlay,
			     char **err)
{
	char top[64], name[32];
	int r;

	*err = NULL;
	if ((r = qb_top_node(vm, disk, top, err)) < 0)
		return r;
	/* Node names: at most 31 characters, starting with a letter. */
	snprintf(name, sizeof(name), "ov%u-%llx", disk,
		 (unsigned long long)(util_now_ns() & 0xffffffffffull));
	return qb_cmd(vm, "blockdev-snapshot-sync",
		      json_pack("{s:s,s:s,s:s,s:s,s:s}", "node-name", top, "snapshot-file", overlay,
				"snapshot-node-name", name, "format", "qcow2", "mode",
				"absolute-paths"),
		      NULL, err);
}

/* Poll query-migrate until the stream is complete. */
static int qb_migrate_wait(struct engine_vm *vm, char **err)
{
	uint64_t deadline = util_now_ns() + 600ull * 1000000000ull;

	for (;;) {
		json_t *ret = NULL;
		int r = qb_cmd(vm, "query-migrate", NULL, &ret, err);

		if (r < 0)
			return r;
		const char *st = json_string_value(json_object_get(ret, "status"));
		if (st && strcmp(st, "completed") == 0) {
			json_decref(ret);
			return 0;
		}
		if (st && (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0)) {
			const char *why = json_string_value(json_object_get(ret, "error-desc"));
			qb_set_err(err, "the machine state transfer %s: %s", st,
				   why ? why : "QEMU gave no reason");
			json_decref(ret);
			return -EIO;
		}
		json_decref(ret);
		if (util_now_ns() > deadline) {
			qb_set_err(err, "the machine state transfer did not finish within 600 s");
			return -ETIMEDOUT;
		}
		qb_sleep_ms(QB_POLL_MS);
	}
}

int qemu_block_state_save(struct engine_vm *vm, const char *path, char **err)
{
	int fd, r;

	*err = NULL;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		qb_set_err(err, "cannot create %s: %s", path, strerror(errno));
		return r;
	}
	r = qb_cmd_fd(vm, "getfd", json_pack("{s:s}", "fdname", "vessel-state"), fd, err);
	if (r < 0)
		goto out;
	/* The default bandwidth cap (128 MiB/s) is for live migration over a
	 * network; to a local file of a paused VM there is nothing to spare. */
	char *ignored = NULL;
	qb_cmd(vm, "migrate-set-parameters",
	       json_pack("{s:I}", "max-bandwidth", (json_int_t)(1ll << 40)), NULL, &ignored);
	free(ignored);
	r = qb_cmd(vm, "migrate", json_pack("{s:s}", "uri", "fd:vessel-state"), NULL, err);
	if (r == 0)
		r = qb_migrate_wait(vm, err);
	if (r == 0 && fsync(fd) < 0) {
		r = -errno;
		qb_set_err(err, "cannot flush %s: %s", path, strerror(errno));
	}
out:
	close(fd);
	if (r < 0)
		unlink(path);
	return r;
}

int qemu_block_incoming(struct engine_vm *vm, const char *path, char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0) {
		r = -errno;
		qb_set_err(err, "cannot open the saved state %s: %s", path, strerror(errno));
		return r;
	}
	r = qb_cmd_fd(vm, "getfd", json_pack("{s:s}", "fdname", "vessel-in"), fd, err);
	close(fd);
	if (r == 0)
		r = qb_cmd(vm, "migrate-incoming", json_pack("{s:s}", "uri", "fd:vessel-in"), NULL,
			   err);
	if (r == 0)
		r = qb_migrate_wait(vm, err);
	return r;
}

int qemu_block_disk_merge(struct engine_vm *vm, const char *top, const char *base, char **err)
{
	char top_node[64], base_node[64];
	json_t *args;
	int r;

	*err = NULL;
	if ((r = qb_node_of_file(vm, top, top_node, err)) < 0)
		return r;
	if (base && (r = qb_node_of_file(vm, base, base_node, err)) < 0)
		return r;
	args = json_pack("{s:s,s:s,s:b}", "job-id", "vessel-merge", "device", top_node,
			 "auto-dismiss", 0);
	if (base)
		json_object_set_new(args, "base-node", json_string(base_node));
	if ((r = qb_cmd(vm, "block-stream", args, NULL, err)) < 0)
		return r;
	return qb_job_wait(vm, "vessel-merge", NULL, NULL, err);
}

int qemu_block_disk_backup(struct engine_vm *vm, unsigned disk, const char *target,
			   bool incremental, const char *bitmap, engine_progress_fn *progress,
			   void *opaque, char **err)
{
	char top[64], job[32];
	json_t *backup;
	int r;

	*err = NULL;
	if ((r = qb_top_node(vm, disk, top, err)) < 0)
		return r;
	snprintf(job, sizeof(job), "vessel-backup%u", disk);
	backup = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b}", "job-id", job, "device", top, "target",
			   target, "format", "qcow2", "mode", "existing", "sync",
			   incremental ? "incremental" : "full", "auto-dismiss", 0);
	if (incremental) {
		json_object_set_new(backup, "bitmap", json_string(bitmap));
		r = qb_cmd(vm, "drive-backup", backup, NULL, err);
		if (r == -EIO) {
			/* The bitmap is missing or inconsistent (QEMU was killed,
			 * or a snapshot moved the top): only a full copy is safe. */
			return -ENOENT;
		}
	} else {
		char *ignored = NULL;

		qb_cmd(vm, "block-dirty-bitmap-remove",
		       json_pack("{s:s,s:s}", "node", top, "name", bitmap), NULL, &ignored);
		free(ignored);
		/* One transaction: tracking starts exactly where the copy's
		 * point in time is, so the next incremental misses nothing. */
		json_t *actions = json_pack(
			"[{s:s,s:{s:s,s:s,s:b,s:i}},{s:s,s:o}]", "type", "block-dirty-bitmap-add",
			"data", "node", top, "name", bitmap, "persistent", 1, "granularity",
			QB_BITMAP_GRANULARITY, "type", "drive-backup", "data", backup);
		r = qb_cmd(vm, "transaction", json_pack("{s:o}", "actions", actions), NULL, err);
	}
	if (r < 0)
		return r;
	return qb_job_wait(vm, job, progress, opaque, err);
}
