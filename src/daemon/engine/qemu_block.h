/* qemu_block: the qemu driver's snapshot, saved-state and backup operations
 * (engine.h "Snapshots and backups"), built on QMP block commands and jobs
 * (QEMU 7.2 qapi/block-core.json, qapi/migration.json, qapi/job.json). */
#ifndef VESSEL_DAEMON_ENGINE_QEMU_BLOCK_H
#define VESSEL_DAEMON_ENGINE_QEMU_BLOCK_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon/engine/engine.h"

/* qemu.c: run one QMP command, passing fd (>= 0) with it as SCM_RIGHTS
 * (for "getfd"). *ret (may be NULL) gets the "return" value. */
int qemu_vm_command_fd(struct engine_vm *vm, const char *cmd, json_t *args, int fd,
		       int timeout_ms, json_t **ret, char **err);

int qemu_block_disk_snapshot(struct engine_vm *vm, unsigned disk, const char *overlay,
			     char **err);
int qemu_block_state_save(struct engine_vm *vm, const char *path, char **err);
int qemu_block_disk_merge(struct engine_vm *vm, const char *top, const char *base, char **err);
int qemu_block_disk_backup(struct engine_vm *vm, unsigned disk, const char *target,
			   bool incremental, const char *bitmap, engine_progress_fn *progress,
			   void *opaque, char **err);
/* Load the state in path into a QEMU started with "-incoming defer" and
 * wait until it is loaded (start() calls it before "cont"). */
int qemu_block_incoming(struct engine_vm *vm, const char *path, char **err);

#endif
