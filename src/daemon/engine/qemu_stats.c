/* qemu_stats: parsers of the QMP statistics answers (see qemu_stats.h). */
#include "daemon/engine/qemu_stats.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int qemu_stats_parse_cpus(const json_t *ret, struct engine_vm_stats *out)
{
	/* [{"cpu-index": 0, "thread-id": 1234, "qom-path": ..., "target": ...}] */
	size_t i;
	json_t *c;
	if (!json_is_array(ret))
		return -EBADMSG;
	out->nr_vcpus = 0;
	json_array_foreach((json_t *)ret, i, c) {
		json_t *idx = json_object_get(c, "cpu-index");
		json_t *tid = json_object_get(c, "thread-id");
		if (!json_is_integer(idx) || !json_is_integer(tid) || json_integer_value(tid) <= 0 ||
		    json_integer_value(idx) < 0)
			return -EBADMSG;
		if (out->nr_vcpus >= ENGINE_MAX_VCPUS)
			break;
		out->vcpus[out->nr_vcpus].index = (unsigned)json_integer_value(idx);
		out->vcpus[out->nr_vcpus].tid = (pid_t)json_integer_value(tid);
		out->nr_vcpus++;
	}
	return 0;
}

int qemu_stats_parse_balloon(const json_t *ret, struct engine_vm_stats *out)
{
	/* {"actual": bytes} */
	json_t *a = json_object_get(ret, "actual");
	if (!json_is_integer(a) || json_integer_value(a) < 0)
		return -EBADMSG;
	out->have_balloon = true;
	out->balloon_bytes = (uint64_t)json_integer_value(a);
	return 0;
}

static uint64_t qemu_stats_u64(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

int qemu_stats_parse_blockstats(const json_t *ret, struct engine_vm_stats *out)
{
	/* [{"device": "", "node-name": "disk0", "qdev": ".../vd0/virtio-backend",
	 *   "stats": {"rd_bytes", "wr_bytes", "rd_operations", "wr_operations", ...}}]
	 * With -blockdev the BlockBackend has no name ("device" is empty), so
	 * the format node's name identifies the disk. */
	size_t i;
	json_t *e;
	if (!json_is_array(ret))
		return -EBADMSG;
	out->nr_disks = 0;
	json_array_foreach((json_t *)ret, i, e) {
		const char *node = json_string_value(json_object_get(e, "node-name"));
		json_t *st = json_object_get(e, "stats");
		if (!json_is_object(st))
			return -EBADMSG;
		if (!node || strncmp(node, "disk", 4) != 0 || out->nr_disks >= ENGINE_MAX_DISKS)
			continue;
		snprintf(out->disks[out->nr_disks].name, sizeof(out->disks[0].name), "%s", node);
		out->disks[out->nr_disks].rd_bytes = qemu_stats_u64(st, "rd_bytes");
		out->disks[out->nr_disks].wr_bytes = qemu_stats_u64(st, "wr_bytes");
		out->disks[out->nr_disks].rd_ops = qemu_stats_u64(st, "rd_operations");
		out->disks[out->nr_disks].wr_ops = qemu_stats_u64(st, "wr_operations");
		out->nr_disks++;
	}
	return 0;
}
