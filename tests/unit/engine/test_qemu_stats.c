/* test_qemu_stats: the QMP statistics parsers on answers recorded from
 * QEMU 7.2 (query-cpus-fast, query-balloon, query-blockstats). */
#include <errno.h>

#include "daemon/engine/qemu_stats.h"
#include "harness.h"

static json_t *parse(const char *s)
{
	json_error_t e;
	return json_loads(s, 0, &e);
}

TEST(cpus)
{
	json_t *j = parse("[{\"thread-id\": 4122, \"props\": {\"core-id\": 0, \"thread-id\": 0,"
			  " \"socket-id\": 0}, \"qom-path\": \"/machine/unattached/device[0]\","
			  " \"cpu-index\": 0, \"target\": \"x86_64\"},"
			  " {\"thread-id\": 4123, \"cpu-index\": 1, \"target\": \"x86_64\"}]");
	struct engine_vm_stats s = {0};
	CHECK_EQ_INT(qemu_stats_parse_cpus(j, &s), 0);
	CHECK_EQ_INT(s.nr_vcpus, 2);
	CHECK_EQ_INT(s.vcpus[0].tid, 4122);
	CHECK_EQ_INT(s.vcpus[1].index, 1);
	CHECK_EQ_INT(s.vcpus[1].tid, 4123);
	json_decref(j);
	j = parse("[{\"cpu-index\": 0}]");
	CHECK_EQ_INT(qemu_stats_parse_cpus(j, &s), -EBADMSG);
	json_decref(j);
	j = parse("{\"return\": 1}");
	CHECK_EQ_INT(qemu_stats_parse_cpus(j, &s), -EBADMSG);
	json_decref(j);
}

TEST(balloon)
{
	json_t *j = parse("{\"actual\": 268435456}");
	struct engine_vm_stats s = {0};
	CHECK_EQ_INT(qemu_stats_parse_balloon(j, &s), 0);
	CHECK(s.have_balloon);
	CHECK_EQ_INT(s.balloon_bytes, 268435456);
	json_decref(j);
	j = parse("{\"actual\": \"lots\"}");
	struct engine_vm_stats t = {0};
	CHECK_EQ_INT(qemu_stats_parse_balloon(j, &t), -EBADMSG);
	CHECK(!t.have_balloon);
	json_decref(j);
}

TEST(blockstats)
{
	json_t *j = parse(
		"[{\"device\": \"\", \"parent\": {\"node-name\": \"file0\", \"stats\": {\"rd_bytes\": 1}},"
		" \"stats\": {\"rd_bytes\": 9216, \"wr_bytes\": 1048576, \"rd_operations\": 18,"
		" \"wr_operations\": 256, \"flush_operations\": 2},"
		" \"node-name\": \"disk0\", \"qdev\": \"/machine/peripheral/vd0/virtio-backend\"},"
		" {\"device\": \"\", \"stats\": {\"rd_bytes\": 5}, \"node-name\": \"disk1\"},"
		" {\"device\": \"\", \"stats\": {\"rd_bytes\": 7}, \"node-name\": \"other\"}]");
	struct engine_vm_stats s = {0};
	CHECK_EQ_INT(qemu_stats_parse_blockstats(j, &s), 0);
	CHECK_EQ_INT(s.nr_disks, 2);
	CHECK_STR(s.disks[0].name, "disk0");
	CHECK_EQ_INT(s.disks[0].rd_bytes, 9216);
	CHECK_EQ_INT(s.disks[0].wr_bytes, 1048576);
	CHECK_EQ_INT(s.disks[0].rd_ops, 18);
	CHECK_EQ_INT(s.disks[0].wr_ops, 256);
	CHECK_STR(s.disks[1].name, "disk1");
	CHECK_EQ_INT(s.disks[1].wr_ops, 0);
	json_decref(j);
	j = parse("[{\"node-name\": \"disk0\"}]");
	CHECK_EQ_INT(qemu_stats_parse_blockstats(j, &s), -EBADMSG);
	json_decref(j);
}

HARNESS_MAIN
