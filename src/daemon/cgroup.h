/* cgroup: the vessel cgroup v2 tree that carries VM priorities
 * (docs/operations.md "Priorities and cgroups").
 *
 * Layout: ROOT (default <cgroup2 mount>/vessel.slice, vesseld --cgroup-root)
 * holds one group per running VM, ROOT/vm-NAME, with the VM's QEMU process
 * in it. The priority P0..P4 of the VM sets the group's cpu.weight and,
 * when the io controller is available, io.weight (Documentation/admin-guide/
 * cgroup-v2.rst, "Weights": 1..10000, default 100; siblings share the
 * resource in proportion to their weights when it is contended).
 *
 * vesseld enables the controllers it needs in the parent's and ROOT's
 * cgroup.subtree_control ("Top-down constraint": a controller can only be
 * enabled in a child when the parent has it in subtree_control). When the
 * tree cannot be made (no cgroup2 mount, not root, controllers bound to a
 * cgroup v1 hierarchy), VMs still run; the reason is kept for GET
 * /api/v1/host and the log.
 *
 * Hybrid hosts (cgroup v1 controllers, an empty cgroup2 at .../unified):
 * when the v2 cpu controller is not available but a writable v1 "cpu"
 * hierarchy is mounted, the same life cycle runs there instead (mode v1):
 * <v1 cpu mount>/NAME/vm-VM with cpu.shares and, when a v1 "blkio"
 * hierarchy is mounted, <v1 blkio mount>/NAME/vm-VM with blkio.weight
 * (Documentation/admin-guide/cgroup-v1/). NAME is the last component of
 * --cgroup-root, "vessel" by default. This is what libvirt and Proxmox do
 * on such hosts.
 *
 * All paths go through struct cgroup_tree so tests point it at a plain
 * directory that imitates the cgroup files. */
#ifndef VESSEL_DAEMON_CGROUP_H
#define VESSEL_DAEMON_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CGROUP_REASON_MAX 512
/* Hierarchies a VM's process is placed in: v2 has one, v1 cpu + blkio. */
#define CGROUP_HIER_MAX 2

enum cgroup_mode {
	CGROUP_MODE_NONE,
	CGROUP_MODE_V2,
	CGROUP_MODE_V1,
};

struct cgroup_tree {
	enum cgroup_mode mode;
	/* v2: the vessel root; v1: the vessel group in the cpu hierarchy. */
	char root[PATH_MAX];
	/* v1 only: the vessel group in the blkio hierarchy ("" = none) and
	 * the weight file its VM groups have ("" = no io weighting). */
	char io_root[PATH_MAX];
	char io_file[32];
	bool usable;    /* VM groups can be made and processes moved in */
	bool cpu;       /* cpu.weight (v1: cpu.shares) is available in VM groups */
	bool io;        /* io.weight (v1: blkio.weight) is available in VM groups */
	char reason[CGROUP_REASON_MAX]; /* why priorities are not (fully) enforced; "" = they are */
	/* Tests: root is a plain directory imitating cgroupfs, so files are
	 * created on write and removed before rmdir. */
	bool plain_dir;
};

/* cpu.weight / io.weight for priority 0..4 (clamped). */
unsigned cgroup_priority_weight(unsigned priority);

/* v1 equivalents of a v2 weight, as systemd converts them
 * (src/basic/cgroup-util.h): cpu.shares = weight * 1024 / 100 clamped to
 * 2..262144 (100 <-> 1024 are the two defaults), blkio.weight = io weight
 * * 500 / 100 clamped to 10..1000 (100 <-> 500 are the defaults). */
unsigned cgroup_weight_to_shares(unsigned weight);
unsigned cgroup_weight_to_blkio(unsigned weight);

/* "v2", "v1" or NULL (priorities not applied). */
const char *cgroup_mode_name(enum cgroup_mode mode);

/* Find the cgroup2 mount point in a mountinfo text (proc(5)
 * /proc/PID/mountinfo: field 5 is the mount point, the file system type
 * follows the " - " separator). 0, or -ENOENT when there is none. */
int cgroup_find_mount(const char *mountinfo, char *out, size_t cap);

/* Find the mount point of the cgroup v1 hierarchy that has controller
 * (e.g. "cpu", also when co-mounted as "cpu,cpuacct") in its super
 * options. 0, or -ENOENT when there is none. */
int cgroup_find_v1_mount(const char *mountinfo, const char *controller, char *out, size_t cap);

/* Set the tree up at root (NULL: <cgroup2 mount>/vessel.slice). With
 * check_fs, root must be on a cgroup2 file system (tests pass false to use
 * a plain directory). Never fails: t->usable/cpu/io and t->reason say what
 * works. With check_fs, falls back to cgroup_tree_init_v1() when the v2
 * cpu controller is not available. */
void cgroup_tree_init(struct cgroup_tree *t, const char *root, bool check_fs);
/* The v1 group name for a v2 root (--cgroup-root): its last component,
 * "vessel" for NULL/"" (auto) or a root ending in '/'. */
void cgroup_v1_name(const char *root, char *out, size_t cap);
/* Set the tree up in the v1 cpu (and blkio) hierarchies found in
 * mountinfo, group name name. With check_fs they must be cgroup v1 file
 * systems. 0 (t->mode is CGROUP_MODE_V1), or -errno with t->reason set. */
int cgroup_tree_init_v1(struct cgroup_tree *t, const char *mountinfo, const char *name,
			bool check_fs);

/* ROOT/vm-NAME into out. -ENAMETOOLONG when it does not fit. */
int cgroup_vm_dir(const struct cgroup_tree *t, const char *vm, char *out, size_t cap);
/* The cgroup.procs of the VM's group in hierarchy hier (0 .. CGROUP_HIER_MAX-1)
 * into out (what the engine writes the pid to). -ENOENT when the tree has
 * no such hierarchy. */
int cgroup_vm_procs_path(const struct cgroup_tree *t, unsigned hier, const char *vm, char *out,
			 size_t cap);
/* Create the VM's group (existing is fine) and apply the priority. */
int cgroup_vm_prepare(const struct cgroup_tree *t, const char *vm, unsigned priority);
/* Write the weights of a priority to the VM's group (live change). */
int cgroup_vm_set_priority(const struct cgroup_tree *t, const char *vm, unsigned priority);
/* Move a process (all its threads) into the VM's group. */
int cgroup_vm_attach(const struct cgroup_tree *t, const char *vm, pid_t pid);
/* Remove the VM's group; retries briefly because the kernel frees a group
 * only once its last (exited) process is fully gone. 0 also when it did
 * not exist. */
int cgroup_vm_remove(const struct cgroup_tree *t, const char *vm);
/* Remove the VM's group if it is there and empty, without waiting: for
 * groups left behind when vesseld was down while the VM stopped. */
void cgroup_vm_remove_stale(const struct cgroup_tree *t, const char *vm);
/* Read the VM group's cpu.weight (v1: cpu.shares); -ENOENT when there is
 * no group. */
int cgroup_vm_cpu_weight(const struct cgroup_tree *t, const char *vm, unsigned *out);

#endif
