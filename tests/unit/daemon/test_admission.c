/* test_admission: admission arithmetic (admission.c) at its boundaries,
 * ratio validation, the priority -> weight table and the cgroup tree code
 * (cgroup.c) on a plain directory imitating cgroupfs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/admission.h"
#include "daemon/cgroup.h"
#include "harness.h"

static struct admission_host host(uint64_t cpus, uint64_t mem, double cr, double mr)
{
	struct admission_host h = {.cpu_ratio = cr, .memory_ratio = mr};
	h.capacity[ADMISSION_DIM_VCPUS] = cpus;
	h.capacity[ADMISSION_DIM_MEMORY] = mem;
	h.capacity[ADMISSION_DIM_DISK] = 100;
	return h;
}

static struct admission_amount amt(uint64_t vms, uint64_t vcpus, uint64_t mem, uint64_t disk)
{
	struct admission_amount a = {{vms, vcpus, mem, disk}};
	return a;
}

TEST(allocatable)
{
	CHECK_EQ_INT(admission_allocatable(2, 4.0), 8);
	CHECK_EQ_INT(admission_allocatable(3, 1.1), 3);      /* 3.3 -> 3 */
	CHECK_EQ_INT(admission_allocatable(10, 1.1), 11);    /* 11.000000000000002 or 10.99.. */
	CHECK_EQ_INT(admission_allocatable(1024, 1.5), 1536);
	CHECK_EQ_INT(admission_allocatable(7, 0.5), 3);
	CHECK_EQ_INT(admission_allocatable(0, 4.0), 0);
}

TEST(host_vcpus_boundary)
{
	struct admission_host h = host(2, 1024, 4.0, 1.0); /* 8 vCPUs */
	struct admission_refusal w;
	struct admission_amount used = amt(3, 6, 300, 0);
	struct admission_amount at = amt(1, 2, 64, 0), over = amt(1, 3, 64, 0);
	CHECK_EQ_INT(admission_host_check(&h, &used, &at, &w), 0);
	CHECK_EQ_INT(admission_host_check(&h, &used, &over, &w), -ENOSPC);
	CHECK_EQ_INT(w.dim, ADMISSION_DIM_VCPUS);
	CHECK_EQ_INT(w.asked, 3);
	CHECK_EQ_INT(w.used, 6);
	CHECK_EQ_INT(w.limit, 8);
	CHECK_EQ_INT(w.capacity, 2);
	CHECK(w.ratio == 4.0);
}

TEST(host_memory_boundary)
{
	struct admission_host h = host(64, 1000, 4.0, 1.5); /* 1500 MiB */
	struct admission_refusal w;
	struct admission_amount used = amt(2, 2, 1000, 0);
	struct admission_amount at = amt(1, 1, 500, 0), over = amt(1, 1, 501, 0);
	CHECK_EQ_INT(admission_host_check(&h, &used, &at, &w), 0);
	CHECK_EQ_INT(admission_host_check(&h, &used, &over, &w), -ENOSPC);
	CHECK_EQ_INT(w.dim, ADMISSION_DIM_MEMORY);
	CHECK_EQ_INT(w.asked, 501);
	CHECK_EQ_INT(w.used, 1000);
	CHECK_EQ_INT(w.limit, 1500);
	CHECK(w.ratio == 1.5);
}

TEST(host_already_over)
{
	/* A ratio lowered below what runs: nothing more fits, no wrap-around. */
	struct admission_host h = host(2, 1024, 1.0, 1.0);
	struct admission_refusal w;
	struct admission_amount used = amt(4, 4, 100, 0), one = amt(1, 1, 16, 0);
	CHECK_EQ_INT(admission_host_check(&h, &used, &one, &w), -ENOSPC);
	CHECK_EQ_INT(w.used, 4);
	CHECK_EQ_INT(w.limit, 2);
	struct admission_amount huge = amt(1, UINT64_MAX, 16, 0), none = amt(0, 0, 0, 0);
	CHECK_EQ_INT(admission_host_check(&h, &none, &huge, &w), -ENOSPC);
}

static struct project_record project(int64_t vms, int64_t vcpus, int64_t mem, int64_t disk)
{
	struct project_record p = {.max_vms = vms, .max_vcpus = vcpus, .max_memory_mib = mem,
				   .max_disk_gib = disk};
	snprintf(p.name, sizeof(p.name), "team");
	return p;
}

TEST(quota_each_dimension)
{
	struct admission_refusal w;
	struct admission_amount used = amt(2, 4, 1024, 10);
	/* one dimension limited at a time: exactly at the quota, then one over */
	struct {
		struct project_record p;
		enum admission_dim dim;
		struct admission_amount at, over;
	} cases[] = {
		{project(3, -1, -1, -1), ADMISSION_DIM_VMS, amt(1, 1, 1, 1), amt(2, 1, 1, 1)},
		{project(-1, 6, -1, -1), ADMISSION_DIM_VCPUS, amt(1, 2, 1, 1), amt(1, 3, 1, 1)},
		{project(-1, -1, 2048, -1), ADMISSION_DIM_MEMORY, amt(1, 1, 1024, 1),
		 amt(1, 1, 1025, 1)},
		{project(-1, -1, -1, 12), ADMISSION_DIM_DISK, amt(1, 1, 1, 2), amt(1, 1, 1, 3)},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ_INT(admission_quota_check(&cases[i].p, &used, &cases[i].at, &w), 0);
		CHECK_EQ_INT(admission_quota_check(&cases[i].p, &used, &cases[i].over, &w), -EDQUOT);
		CHECK_EQ_INT(w.dim, cases[i].dim);
		CHECK_EQ_INT(w.used, used.v[cases[i].dim]);
		CHECK_EQ_INT(w.asked, cases[i].over.v[cases[i].dim]);
		CHECK_EQ_INT(w.limit, admission_quota(&cases[i].p, cases[i].dim));
	}
	/* unlimited everywhere takes anything; a zero quota takes nothing */
	struct project_record free_p = project(-1, -1, -1, -1), zero = project(0, -1, -1, -1);
	struct admission_amount big = amt(1000, 1000, 1u << 30, 1u << 20);
	CHECK_EQ_INT(admission_quota_check(&free_p, &used, &big, &w), 0);
	CHECK_EQ_INT(admission_quota_check(&zero, &used, &big, &w), -EDQUOT);
	CHECK_EQ_INT(w.dim, ADMISSION_DIM_VMS);
}

TEST(ratio_validation)
{
	char err[ADMISSION_ERR_MAX];
	CHECK_EQ_INT(admission_ratio_validate(4.0, true, err), 0);  /* memory up to 4:1 */
	CHECK_EQ_INT(admission_ratio_validate(1.0, true, err), 0);
	CHECK_EQ_INT(admission_ratio_validate(4.01, true, err), -EINVAL);
	CHECK(strstr(err, "4:1") != NULL);
	CHECK_EQ_INT(admission_ratio_validate(0, true, err), -EINVAL);
	CHECK_EQ_INT(admission_ratio_validate(-1, false, err), -EINVAL);
	CHECK_EQ_INT(admission_ratio_validate(0.0 / 0.0, false, err), -EINVAL);
	CHECK_EQ_INT(admission_ratio_validate(16.0, false, err), 0); /* CPU may go further */
	CHECK_EQ_INT(admission_ratio_validate(64.5, false, err), -EINVAL);
	CHECK_STR(admission_dim_name(ADMISSION_DIM_MEMORY), "memory_mib");
	CHECK_STR(admission_dim_name(ADMISSION_DIM_DISK), "disk_gib");
}

TEST(vm_amount_and_states)
{
	struct vm_record r = {.vcpus = 3, .memory_mib = 700, .nr_disks = 2};
	r.disks[0].size_bytes = 1ull << 30;
	r.disks[1].size_bytes = (1ull << 29) + 1; /* rounds the total up to 2 GiB */
	struct admission_amount a;
	admission_vm_amount(&r, &a);
	CHECK_EQ_INT(a.v[ADMISSION_DIM_VMS], 1);
	CHECK_EQ_INT(a.v[ADMISSION_DIM_VCPUS], 3);
	CHECK_EQ_INT(a.v[ADMISSION_DIM_MEMORY], 700);
	CHECK_EQ_INT(a.v[ADMISSION_DIM_DISK], 2);
	CHECK(admission_state_uses_host(VM_STATE_RUNNING));
	CHECK(admission_state_uses_host(VM_STATE_STARTING));
	CHECK(admission_state_uses_host(VM_STATE_PAUSED));
	CHECK(!admission_state_uses_host(VM_STATE_STOPPED));
	CHECK(!admission_state_uses_host(VM_STATE_CRASHED));
}

TEST(priority_table)
{
	CHECK_EQ_INT(cgroup_priority_weight(0), 10000);
	CHECK_EQ_INT(cgroup_priority_weight(1), 1000);
	CHECK_EQ_INT(cgroup_priority_weight(2), 100);
	CHECK_EQ_INT(cgroup_priority_weight(3), 50);
	CHECK_EQ_INT(cgroup_priority_weight(4), 25);
	CHECK_EQ_INT(cgroup_priority_weight(99), 25);
	for (unsigned p = 0; p < 4; p++)
		CHECK(cgroup_priority_weight(p) > cgroup_priority_weight(p + 1));
	unsigned v;
	CHECK_EQ_INT(model_priority_parse("P0", &v), 0);
	CHECK_EQ_INT(v, 0);
	CHECK_EQ_INT(model_priority_parse("P4", &v), 0);
	CHECK_EQ_INT(v, 4);
	CHECK(model_priority_parse("p1", &v) < 0);
	CHECK(model_priority_parse("P5", &v) < 0);
	CHECK_STR(model_priority_name(2), "P2");
}

TEST(find_mount)
{
	const char *mi =
		"22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
		"30 22 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
		"35 22 0:31 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw\n";
	char out[256];
	CHECK_EQ_INT(cgroup_find_mount(mi, out, sizeof(out)), 0);
	CHECK_STR(out, "/sys/fs/cgroup/unified");
	CHECK_EQ_INT(cgroup_find_mount("22 1 0:21 / /sys rw - sysfs sysfs rw\n", out, sizeof(out)),
		     -ENOENT);
	CHECK_EQ_INT(cgroup_find_mount(mi, out, 8), -ENAMETOOLONG);
}

static void put(const char *dir, const char *file, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static char *get(const char *dir, const char *file)
{
	static char buf[256];
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	FILE *f = fopen(p, "r");
	buf[0] = '\0';
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

TEST(cgroup_tree_on_fake_fs)
{
	char tmp[] = "/tmp/vessel-cg-XXXXXX";
	CHECK(mkdtemp(tmp) != NULL);
	char root[300];
	snprintf(root, sizeof(root), "%s/vessel.slice", tmp);
	/* The parent offers cpu and io; the root does not exist yet, so
	 * vesseld must create it and its cgroup.controllers is what the
	 * kernel would show once the parent enabled them. */
	put(tmp, "cgroup.controllers", "cpuset cpu io memory pids\n");
	put(tmp, "cgroup.subtree_control", "");
	mkdir(root, 0755);
	put(root, "cgroup.controllers", "cpu io\n");
	put(root, "cgroup.subtree_control", "");

	struct cgroup_tree t;
	cgroup_tree_init(&t, root, false);
	CHECK(t.usable);
	CHECK(t.cpu);
	CHECK(t.io);
	CHECK_STR(t.reason, "");
	CHECK(strstr(get(root, "cgroup.subtree_control"), "+io") != NULL);

	char path[512];
	CHECK_EQ_INT(cgroup_vm_procs_path(&t, 0, "web", path, sizeof(path)), 0);
	CHECK_EQ_INT(cgroup_vm_procs_path(&t, 1, "web", path + 256, 256), -ENOENT); /* v2: one */
	CHECK_EQ_INT(t.mode, CGROUP_MODE_V2);
	char want[512];
	snprintf(want, sizeof(want), "%s/vm-web/cgroup.procs", root);
	CHECK_STR(path, want);
	CHECK_EQ_INT(cgroup_vm_prepare(&t, "web", 0), 0);
	char vmdir[400];
	snprintf(vmdir, sizeof(vmdir), "%s/vm-web", root);
	CHECK_STR(get(vmdir, "cpu.weight"), "10000");
	CHECK_STR(get(vmdir, "io.weight"), "default 10000");
	unsigned w = 0;
	CHECK_EQ_INT(cgroup_vm_cpu_weight(&t, "web", &w), 0);
	CHECK_EQ_INT(w, 10000);
	CHECK_EQ_INT(cgroup_vm_set_priority(&t, "web", 4), 0);
	CHECK_EQ_INT(cgroup_vm_cpu_weight(&t, "web", &w), 0);
	CHECK_EQ_INT(w, 25);
	CHECK_EQ_INT(cgroup_vm_attach(&t, "web", 4242), 0);
	CHECK_STR(get(vmdir, "cgroup.procs"), "4242");
	/* prepare again (vesseld restart): the group is reused, not an error */
	CHECK_EQ_INT(cgroup_vm_prepare(&t, "web", 2), 0);
	CHECK_STR(get(vmdir, "cpu.weight"), "100");
	CHECK_EQ_INT(cgroup_vm_remove(&t, "web"), 0);
	struct stat st;
	CHECK(stat(vmdir, &st) < 0 && errno == ENOENT);
	CHECK_EQ_INT(cgroup_vm_remove(&t, "web"), 0); /* already gone is fine */
	CHECK_EQ_INT(cgroup_vm_cpu_weight(&t, "web", &w), -ENOENT);
	char longname[PATH_MAX];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ_INT(cgroup_vm_dir(&t, longname, path, sizeof(path)), -ENAMETOOLONG);

	/* No cpu controller offered: usable (placement works) but the reason
	 * says cpu.weight is not enforced. */
	put(root, "cgroup.controllers", "memory\n");
	put(root, "cgroup.subtree_control", "");
	put(tmp, "cgroup.subtree_control", "");
	struct cgroup_tree t2;
	cgroup_tree_init(&t2, root, false);
	CHECK(t2.usable);
	CHECK(!t2.cpu);
	CHECK(strstr(t2.reason, "cpu controller") != NULL);
	CHECK_EQ_INT(cgroup_vm_prepare(&t2, "db", 1), 0);
	snprintf(vmdir, sizeof(vmdir), "%s/vm-db", root);
	CHECK_STR(get(vmdir, "cpu.weight"), ""); /* not written */
	CHECK_EQ_INT(cgroup_vm_remove(&t2, "db"), 0);

	/* A root that cannot be created: not usable, with the reason. */
	struct cgroup_tree t3;
	cgroup_tree_init(&t3, "/proc/vessel-no/such", false);
	CHECK(!t3.usable);
	CHECK(strstr(t3.reason, "not enforced") != NULL);
	CHECK_EQ_INT(cgroup_vm_prepare(&t3, "x", 0), -EOPNOTSUPP);
	CHECK_EQ_INT(cgroup_vm_remove(&t3, "x"), 0);

	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	CHECK_EQ_INT(system(cmd), 0);
}

TEST(cgroup_v1_conversions)
{
	/* systemd's conversions: the defaults meet (100 <-> 1024, 100 <-> 500). */
	CHECK_EQ_INT(cgroup_weight_to_shares(100), 1024);
	CHECK_EQ_INT(cgroup_weight_to_shares(10000), 102400);
	CHECK_EQ_INT(cgroup_weight_to_shares(25), 256);
	CHECK_EQ_INT(cgroup_weight_to_shares(1), 10);
	CHECK_EQ_INT(cgroup_weight_to_shares(0), 2);           /* clamped to the v1 minimum */
	CHECK_EQ_INT(cgroup_weight_to_shares(1000000), 262144); /* and maximum */
	CHECK_EQ_INT(cgroup_weight_to_blkio(100), 500);
	CHECK_EQ_INT(cgroup_weight_to_blkio(50), 250);
	CHECK_EQ_INT(cgroup_weight_to_blkio(25), 125);
	CHECK_EQ_INT(cgroup_weight_to_blkio(1), 10);
	CHECK_EQ_INT(cgroup_weight_to_blkio(10000), 1000);
	/* Priority order survives the cpu conversion. */
	for (unsigned p = 0; p < 4; p++)
		CHECK(cgroup_weight_to_shares(cgroup_priority_weight(p)) >
		      cgroup_weight_to_shares(cgroup_priority_weight(p + 1)));
	CHECK_STR(cgroup_mode_name(CGROUP_MODE_V1), "v1");
	CHECK_STR(cgroup_mode_name(CGROUP_MODE_V2), "v2");
	CHECK(cgroup_mode_name(CGROUP_MODE_NONE) == NULL);
}

TEST(cgroup_find_v1_mount)
{
	/* A hybrid host: cpu co-mounted with cpuacct, blkio alone, an
	 * empty cgroup2, and a named hierarchy whose name contains "cpu". */
	const char *mi =
		"22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
		"29 22 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=cpuish\n"
		"30 22 0:26 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n"
		"31 22 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
		"32 22 0:28 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n"
		"35 22 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
	char out[256];
	CHECK_EQ_INT(cgroup_find_v1_mount(mi, "cpu", out, sizeof(out)), 0);
	CHECK_STR(out, "/sys/fs/cgroup/cpu,cpuacct");
	CHECK_EQ_INT(cgroup_find_v1_mount(mi, "blkio", out, sizeof(out)), 0);
	CHECK_STR(out, "/sys/fs/cgroup/blkio");
	CHECK_EQ_INT(cgroup_find_v1_mount(mi, "memory", out, sizeof(out)), -ENOENT);
	/* cgroup2 is not a v1 hierarchy, and v1 mounts are not cgroup2 */
	CHECK_EQ_INT(cgroup_find_mount(mi, out, sizeof(out)), 0);
	CHECK_STR(out, "/sys/fs/cgroup/unified");
	CHECK_EQ_INT(cgroup_find_v1_mount("35 22 0:31 / /u rw - cgroup2 cgroup2 rw\n", "cpu", out,
					  sizeof(out)), -ENOENT);
	CHECK_EQ_INT(cgroup_find_v1_mount(mi, "cpu", out, 8), -ENAMETOOLONG);

	/* the v1 group is named after the v2 root's last component */
	cgroup_v1_name("/sys/fs/cgroup/unified/vessel-it-7", out, sizeof(out));
	CHECK_STR(out, "vessel-it-7");
	cgroup_v1_name(NULL, out, sizeof(out));
	CHECK_STR(out, "vessel");
	cgroup_v1_name("/sys/fs/cgroup/unified/", out, sizeof(out));
	CHECK_STR(out, "vessel");
	cgroup_v1_name("plain", out, sizeof(out));
	CHECK_STR(out, "plain");
}

/* A fake hybrid host in a temp dir: a mountinfo fixture whose cpu and
 * blkio mount points are directories there; the vessel groups already
 * show the files the kernel would give a new v1 group. */
TEST(cgroup_tree_v1_on_fake_fs)
{
	char tmp[] = "/tmp/vessel-cg1-XXXXXX";
	CHECK(mkdtemp(tmp) != NULL);
	char cpu[300], blkio[300], mi[2048], dir[400];
	snprintf(cpu, sizeof(cpu), "%s/cpu,cpuacct", tmp);
	snprintf(blkio, sizeof(blkio), "%s/blkio", tmp);
	mkdir(cpu, 0755);
	mkdir(blkio, 0755);
	snprintf(mi, sizeof(mi),
		 "30 22 0:26 / %s rw - cgroup cgroup rw,cpu,cpuacct\n"
		 "32 22 0:28 / %s rw - cgroup cgroup rw,blkio\n"
		 "35 22 0:31 / %s/unified rw - cgroup2 cgroup2 rw\n", cpu, blkio, tmp);
	snprintf(dir, sizeof(dir), "%s/vessel", cpu);
	mkdir(dir, 0755);
	put(dir, "cpu.shares", "1024\n");
	snprintf(dir, sizeof(dir), "%s/vessel", blkio);
	mkdir(dir, 0755);
	put(dir, "blkio.weight", "500\n");

	struct cgroup_tree t;
	CHECK_EQ_INT(cgroup_tree_init_v1(&t, mi, "vessel", false), 0);
	CHECK_EQ_INT(t.mode, CGROUP_MODE_V1);
	CHECK(t.usable && t.cpu && t.io);
	CHECK_STR(t.reason, "");
	char want[512], path[512];
	snprintf(want, sizeof(want), "%s/vessel", cpu);
	CHECK_STR(t.root, want);
	snprintf(want, sizeof(want), "%s/vessel", blkio);
	CHECK_STR(t.io_root, want);
	CHECK_STR(t.io_file, "blkio.weight");

	/* Both hierarchies' cgroup.procs go to the engine. */
	CHECK_EQ_INT(cgroup_vm_procs_path(&t, 0, "web", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/vessel/vm-web/cgroup.procs", cpu);
	CHECK_STR(path, want);
	CHECK_EQ_INT(cgroup_vm_procs_path(&t, 1, "web", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/vessel/vm-web/cgroup.procs", blkio);
	CHECK_STR(path, want);
	CHECK_EQ_INT(cgroup_vm_procs_path(&t, 2, "web", path, sizeof(path)), -ENOENT);

	char cpuvm[400], iovm[400];
	snprintf(cpuvm, sizeof(cpuvm), "%s/vessel/vm-web", cpu);
	snprintf(iovm, sizeof(iovm), "%s/vessel/vm-web", blkio);
	CHECK_EQ_INT(cgroup_vm_prepare(&t, "web", 0), 0);
	CHECK_STR(get(cpuvm, "cpu.shares"), "102400");
	CHECK_STR(get(iovm, "blkio.weight"), "1000");
	CHECK(get(cpuvm, "cpu.weight")[0] == '\0'); /* no v2 files in v1 groups */
	unsigned w = 0;
	CHECK_EQ_INT(cgroup_vm_cpu_weight(&t, "web", &w), 0);
	CHECK_EQ_INT(w, 102400);
	/* live change (PATCH) */
	CHECK_EQ_INT(cgroup_vm_set_priority(&t, "web", 4), 0);
	CHECK_STR(get(cpuvm, "cpu.shares"), "256");
	CHECK_STR(get(iovm, "blkio.weight"), "125");
	CHECK_EQ_INT(cgroup_vm_set_priority(&t, "web", 2), 0);
	CHECK_STR(get(cpuvm, "cpu.shares"), "1024");
	CHECK_STR(get(iovm, "blkio.weight"), "500");
	/* the pid goes to both hierarchies */
	CHECK_EQ_INT(cgroup_vm_attach(&t, "web", 4242), 0);
	CHECK_STR(get(cpuvm, "cgroup.procs"), "4242");
	CHECK_STR(get(iovm, "cgroup.procs"), "4242");
	/* found again after a restart: same paths, weights rewritten */
	struct cgroup_tree again;
	CHECK_EQ_INT(cgroup_tree_init_v1(&again, mi, "vessel", false), 0);
	CHECK_EQ_INT(cgroup_vm_prepare(&again, "web", 3), 0);
	CHECK_STR(get(cpuvm, "cpu.shares"), "512");
	CHECK_STR(get(iovm, "blkio.weight"), "250");
	/* removal takes both groups */
	CHECK_EQ_INT(cgroup_vm_remove(&t, "web"), 0);
	struct stat st;
	CHECK(stat(cpuvm, &st) < 0 && errno == ENOENT);
	CHECK(stat(iovm, &st) < 0 && errno == ENOENT);
	CHECK_EQ_INT(cgroup_vm_remove(&t, "web"), 0);

	/* BFQ-only kernel: blkio.bfq.weight carries the weight. */
	snprintf(dir, sizeof(dir), "%s/vessel", blkio);
	char f[512];
	snprintf(f, sizeof(f), "%s/blkio.weight", dir);
	unlink(f);
	put(dir, "blkio.bfq.weight", "100\n");
	struct cgroup_tree bfq;
	CHECK_EQ_INT(cgroup_tree_init_v1(&bfq, mi, "vessel", false), 0);
	CHECK_STR(bfq.io_file, "blkio.bfq.weight");
	CHECK_EQ_INT(cgroup_vm_prepare(&bfq, "db", 1), 0);
	snprintf(iovm, sizeof(iovm), "%s/vessel/vm-db", blkio);
	CHECK_STR(get(iovm, "blkio.bfq.weight"), "1000");
	CHECK_EQ_INT(cgroup_vm_remove(&bfq, "db"), 0);

	/* No blkio hierarchy: cpu only, io not weighted, one procs path. */
	char mi_cpu[1024];
	snprintf(mi_cpu, sizeof(mi_cpu), "30 22 0:26 / %s rw - cgroup cgroup rw,cpu,cpuacct\n", cpu);
	struct cgroup_tree cpuonly;
	CHECK_EQ_INT(cgroup_tree_init_v1(&cpuonly, mi_cpu, "vessel", false), 0);
	CHECK(cpuonly.cpu && !cpuonly.io);
	CHECK_STR(cpuonly.io_root, "");
	CHECK_EQ_INT(cgroup_vm_procs_path(&cpuonly, 1, "x", path, sizeof(path)), -ENOENT);

	/* No v1 cpu hierarchy, an unusable name, a group that cannot be
	 * made, a group without cpu.shares: not usable, and the reason says so. */
	struct cgroup_tree bad;
	CHECK_EQ_INT(cgroup_tree_init_v1(&bad, "35 22 0:31 / /u rw - cgroup2 cgroup2 rw\n", "vessel",
					 false), -ENOENT);
	CHECK(!bad.usable && bad.mode == CGROUP_MODE_NONE);
	CHECK(strstr(bad.reason, "v1 cpu controller") != NULL);
	CHECK_EQ_INT(cgroup_tree_init_v1(&bad, mi, "..", false), -EINVAL);
	CHECK(strstr(bad.reason, "--cgroup-root") != NULL);
	CHECK_EQ_INT(cgroup_tree_init_v1(&bad, "30 22 0:26 / /proc/vessel-no rw - cgroup cgroup rw,cpu\n",
					 "vessel", false), -ENOENT);
	CHECK(!bad.usable && strstr(bad.reason, "cannot create") != NULL);
	CHECK_EQ_INT(cgroup_tree_init_v1(&bad, mi, "fresh", false), -ENOENT);
	CHECK(strstr(bad.reason, "cpu.shares") != NULL);
	CHECK_EQ_INT(cgroup_vm_prepare(&bad, "x", 0), -EOPNOTSUPP);

	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	CHECK_EQ_INT(system(cmd), 0);
}

HARNESS_MAIN
