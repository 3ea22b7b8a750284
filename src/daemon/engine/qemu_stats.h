/* qemu_stats: turn the QMP answers of query-cpus-fast, query-balloon and
 * query-blockstats (QEMU's qapi/machine.json and qapi/block-core.json) into
 * struct engine_vm_stats. Pure functions over the "return" values, so they
 * are tested on recorded answers without QEMU. Each returns 0, or -EBADMSG
 * when the value does not have the documented shape. */
#ifndef VESSEL_DAEMON_ENGINE_QEMU_STATS_H
#define VESSEL_DAEMON_ENGINE_QEMU_STATS_H

#include <jansson.h>

#include "daemon/engine/engine.h"

int qemu_stats_parse_cpus(const json_t *ret, struct engine_vm_stats *out);
int qemu_stats_parse_balloon(const json_t *ret, struct engine_vm_stats *out);
/* Only the VM's own disks (format nodes "diskN") are kept. */
int qemu_stats_parse_blockstats(const json_t *ret, struct engine_vm_stats *out);

#endif
