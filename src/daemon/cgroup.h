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
 * All paths go through struct cgroup_tree so tests point it at a plain
 * directory that imitates the cgroup files. */
#ifndef VESSEL_DAEMON_CGROUP_H
#define VESSEL_DAEMON_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CGROUP_REASON_MAX 512

struct cgroup_tree {
	char root[PATH_MAX];
	bool usable;    /* VM groups can be made and processes moved in */
	bool cpu;       /* cpu.weight is available in VM groups */
	bool io;        /* io.weight is available in VM groups */
	char reason[CGROUP_REASON_MAX]; /* why priorities are not (fully) enforced; "" = they are */
	/* Tests: root is a plain directory imitating cgroupfs, so files are
	 * created on write and removed before rmdir. */
	bool plain_dir;
};

/* cpu.weight / io.weight for priority 0..4 (clamped). */
unsigned cgroup_priority_weight(unsigned priority);

/* Find the cgroup2 mount point in a mountinfo text (proc(5)
 * /proc/PID/mountinfo: field 5 is the mount point, the file system type
 * follows the " - " separator). 0, or -ENOENT when there is none. */
int cgroup_find_mount(const char *mountinfo, char *out, size_t cap);

/* Set the tree up at root (NULL: <cgroup2 mount>/vessel.slice). With
 * check_fs, root must be on a cgroup2 file system (tests pass false to use
 * a plain directory). Never fails: t->usable/cpu/io and t->reason say what
 * works. */
void cgroup_tree_init(struct cgroup_tree *t, const char *root, bool check_fs);

/* ROOT/vm-NAME into out. -ENAMETOOLONG when it does not fit. */
int cgroup_vm_dir(const struct cgroup_tree *t, const char *vm, char *out, size_t cap);
/* ROOT/vm-NAME/cgroup.procs into out (what the engine writes the pid to). */
int cgroup_vm_procs_path(const struct cgroup_tree *t, const char *vm, char *out, size_t cap);
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
/* Read the VM group's cpu.weight; -ENOENT when there is no group. */
int cgroup_vm_cpu_weight(const struct cgroup_tree *t, const char *vm, unsigned *out);

#endif
