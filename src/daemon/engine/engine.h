/* engine: how vesseld reaches a VM, the way libvirt has drivers
 * (DESIGN.md, "Engines"). The daemon core (API, store, lifecycle rules)
 * calls only these functions; the qemu driver (engine/qemu*.c, qmp.c)
 * implements them by building a QEMU command line and talking QMP; the micro
 * driver (vessel-vmm) will implement the same table later.
 *
 * Threading: every function may be called from any API thread; a driver
 * serialises access to one VM itself. Events come back through the
 * engine_events callbacks, called from the driver's own monitor thread.
 *
 * qemu driver, what the daemon must know:
 * - run_dir holds qmp.sock, serial.sock, qemu.pid, qemu.log (QEMU's
 *   stderr, truncated at each start), console.log(.1) (serial output, kept
 *   for attach), sercon-port.bin (BIOS) or OVMF_VARS.fd (UEFI, per-VM
 *   variable store, kept across starts). Paths of the sockets must fit 107
 *   bytes, so run_dir must be short (start refuses otherwise).
 * - QEMU is spawned as a child of vesseld in its own session (setsid), so
 *   it survives a vesseld restart, provided the service manager does not
 *   kill the whole cgroup (systemd: KillMode=process). vesseld must not
 *   reap children it did not spawn (no waitpid(-1), no SIG_IGN for
 *   SIGCHLD), or crash reasons lose QEMU's exit status.
 * - A guest poweroff makes QEMU exit (no -no-shutdown): STOPPED with reason
 *   "guest powered off". */
#ifndef VESSEL_DAEMON_ENGINE_H
#define VESSEL_DAEMON_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ENGINE_MAX_DISKS 8
#define ENGINE_MAX_NICS 4
#define ENGINE_MAX_CGROUPS 2
#define ENGINE_CONSOLE_RING (1024 * 1024) /* last 1 MiB of serial output */

enum engine_firmware {
	ENGINE_FW_BIOS = 0, /* SeaBIOS, boot from the first disk */
	ENGINE_FW_UEFI,     /* OVMF */
	ENGINE_FW_KERNEL,   /* direct kernel boot: kernel + initrd + cmdline */
};

struct engine_disk {
	char path[4096];  /* qcow2 file owned by the VM (overlay or full copy) */
	char format[16];  /* "qcow2" or "raw" */
	bool readonly;
};

/* A virtio-net NIC backed by a tap the daemon opened (src/net/link.c). The
 * driver passes the fd to the monitor (QEMU: inherited as fd 3 + index,
 * "-netdev tap,fd=N") and never closes it; the daemon closes its copy
 * after start returns, so the tap disappears when the monitor exits. */
struct engine_nic {
	char mac[18];
	int fd;
	unsigned mtu; /* 0 = default; told to the guest as host_mtu */
};

/* Everything a driver needs to run a VM; built by the daemon from the stored
 * definition. run_dir is a private directory (0700) for the VM's sockets,
 * pid file and monitor log; it exists when start() is called. */
struct engine_vm_spec {
	char name[64];
	char uuid[37];
	unsigned vcpus;
	uint64_t memory_mib;
	enum engine_firmware firmware;
	char kernel[4096], initrd[4096], cmdline[2048];
	struct engine_disk disks[ENGINE_MAX_DISKS];
	unsigned nr_disks;
	struct engine_nic nics[ENGINE_MAX_NICS];
	unsigned nr_nics;
	char run_dir[4096];
	/* The driver writes the monitor's pid to each non-empty entry (the
	 * cgroup.procs of the VM's group in each hierarchy: one for cgroup v2,
	 * cpu and blkio for v1) right after spawning it and before any guest
	 * code runs (QEMU: between spawn and "cont"), so the whole process
	 * and all its threads run under the VM's priority from the start. A
	 * failed write is logged; the VM still starts. */
	char cgroup_procs[ENGINE_MAX_CGROUPS][4096];
	/* A saved machine state (engine_ops.state_save) to load before the
	 * guest runs, so it resumes where the state was saved (reverting a
	 * full snapshot); empty = boot normally. */
	char incoming[4096];
};

/* Called with 0..100 while a long block job runs. */
typedef void engine_progress_fn(void *opaque, int percent);

enum engine_state {
	ENGINE_STATE_STOPPED = 0,
	ENGINE_STATE_RUNNING,
	ENGINE_STATE_PAUSED,
	ENGINE_STATE_CRASHED, /* the monitor process died without being asked */
};

struct engine_vm; /* a running (or attached) monitor */

#define ENGINE_MAX_VCPUS 64

/* What the monitor reports about a running VM, for /metrics. */
struct engine_vm_stats {
	unsigned nr_vcpus;
	struct {
		unsigned index;
		pid_t tid; /* host thread running this vCPU */
	} vcpus[ENGINE_MAX_VCPUS];
	bool have_balloon;
	uint64_t balloon_bytes; /* memory the guest holds now (after ballooning) */
	unsigned nr_disks;
	struct {
		char name[32]; /* "disk0": the format node of the VM's disk */
		uint64_t rd_bytes, wr_bytes, rd_ops, wr_ops;
	} disks[ENGINE_MAX_DISKS];
};

/* Called by the driver from its monitor thread; may be NULL. The callbacks
 * run without any driver lock held, so they may call the ops of the same VM
 * (query, console_read...) except release. qemu driver: state_changed
 * reports PAUSED (QMP STOP), RUNNING (QMP RESUME) and, once per VM, STOPPED
 * or CRASHED when the QEMU process is gone: STOPPED when the guest powered
 * off or force_stop asked for it, CRASHED for any other exit. */
struct engine_events {
	void *opaque;
	/* the guest or the monitor changed state (QMP STOP/RESUME/SHUTDOWN/
	 * RESET, or process exit). reason is a sentence such as
	 * "guest powered off", "QEMU exited with signal 9 (Killed)". */
	void (*state_changed)(void *opaque, const char *vm_name, enum engine_state st,
			      const char *reason);
	/* the guest asked for a reset (QMP RESET) */
	void (*reset)(void *opaque, const char *vm_name);
};

struct engine_host_info {
	bool kvm;              /* hardware virtualization usable (kvm_intel/kvm_amd) */
	char accel[8];         /* "kvm" or "tcg" */
	char warning[256];     /* e.g. why TCG is used; empty when none */
	char qemu_version[64]; /* "7.2.22"; empty when QEMU is missing (then
				* host_info returns -ENOENT, the rest filled) */
};

struct engine {
	const char *name; /* "qemu" */
	const struct engine_ops *ops;
	void *priv;
};

struct engine_ops {
	int (*host_info)(struct engine *e, struct engine_host_info *out);
	/* Start the monitor for spec, wait until it is running (QEMU: started
	 * with -S, QMP negotiated, then cont). On failure returns a negative
	 * errno and sets *err (malloc'd) to a sentence that includes the
	 * monitor's own error text; nothing is left behind (no process, no
	 * socket). */
	int (*start)(struct engine *e, const struct engine_vm_spec *spec,
		     const struct engine_events *ev, struct engine_vm **out, char **err);
	/* Re-attach to a monitor that survived a daemon restart (its sockets in
	 * spec->run_dir). Returns -ESRCH when it is gone (the caller marks the
	 * VM stopped or crashed). */
	int (*attach)(struct engine *e, const struct engine_vm_spec *spec,
		      const struct engine_events *ev, struct engine_vm **out, char **err);
	/* ACPI power button; returns at once, completion comes as an event. */
	int (*powerdown)(struct engine_vm *vm, char **err);
	/* Kill the monitor now (QMP quit, then SIGKILL if needed) and reap it.
	 * Returns when the process is gone; the STOPPED event has been sent
	 * by then. */
	int (*force_stop)(struct engine_vm *vm, char **err);
	int (*pause)(struct engine_vm *vm, char **err);
	int (*resume)(struct engine_vm *vm, char **err);
	int (*reset)(struct engine_vm *vm, char **err);
	/* NIC hot-plug on a running VM; may be NULL (not supported). nic_add
	 * plugs NIC index with nic->fd (the driver dups what it needs; the
	 * caller closes its fd afterwards). nic_del asks the guest to release
	 * NIC index and waits up to timeout_ms for it. */
	int (*nic_add)(struct engine_vm *vm, unsigned index, const struct engine_nic *nic,
		       char **err);
	int (*nic_del)(struct engine_vm *vm, unsigned index, int timeout_ms, char **err);
	/* Current state as the monitor reports it (QMP query-status). */
	int (*query)(struct engine_vm *vm, enum engine_state *st, char **err);
	pid_t (*pid)(struct engine_vm *vm);
	/* vCPU threads, balloon and block statistics (QEMU: query-cpus-fast,
	 * query-balloon, query-blockstats). Parts the monitor cannot report
	 * are left empty. May be NULL in a driver. */
	int (*stats)(struct engine_vm *vm, struct engine_vm_stats *out, char **err);
	/* Serial console. read copies output from absolute byte offset `since`
	 * (0 = oldest kept); *start is the offset of the first byte returned
	 * (> since when older bytes were dropped), *next the offset to ask for
	 * next time. write sends input bytes to the guest's serial port. */
	int (*console_read)(struct engine_vm *vm, uint64_t since, void *buf, size_t cap,
			    size_t *len, uint64_t *start, uint64_t *next);
	int (*console_write)(struct engine_vm *vm, const void *buf, size_t len);
	/* Block until new console output exists past `since` or timeout_ms
	 * passes; returns 0 (data or timeout) or -ESRCH when the VM is gone. */
	int (*console_wait)(struct engine_vm *vm, uint64_t since, int timeout_ms);
	/* Free the handle after the monitor is gone (force_stop done, or a
	 * STOPPED/CRASHED event seen). Removes the sockets in run_dir.
	 * qemu driver: when the monitor is still running, release detaches
	 * instead: QEMU keeps running and its sockets stay, so attach() can
	 * pick it up again (what vesseld does on a clean shutdown). Never call
	 * release from inside an engine_events callback (it joins the thread
	 * that runs the callback). */
	void (*release)(struct engine_vm *vm);
	/* Snapshots and backups (docs/backups.md). A driver without them leaves
	 * these NULL and the daemon answers 501 for a running VM.
	 * disk_snapshot: freeze disk `disk` where it is and continue on a new
	 * qcow2 overlay file `overlay` (created here, backing = the old top).
	 * state_save: write RAM and device state to `path`; the VM must be
	 * paused and stays paused. disk_merge: copy into the open image file
	 * `top` everything it reads from its backing chain above `base` (NULL:
	 * the whole chain) and drop those files from its chain, live.
	 * disk_backup: a point-in-time copy of disk `disk` into the existing
	 * qcow2 file `target`: everything (incremental false, then dirty
	 * tracking restarts in persistent bitmap `bitmap`), or only what
	 * changed since (incremental true; the bitmap is cleared on success
	 * and kept on failure). -ENOENT when the bitmap is missing. */
	int (*disk_snapshot)(struct engine_vm *vm, unsigned disk, const char *overlay,
			     char **err);
	int (*state_save)(struct engine_vm *vm, const char *path, char **err);
	int (*disk_merge)(struct engine_vm *vm, const char *top, const char *base, char **err);
	int (*disk_backup)(struct engine_vm *vm, unsigned disk, const char *target,
			   bool incremental, const char *bitmap, engine_progress_fn *progress,
			   void *opaque, char **err);
	/* Free the driver itself (called by engine_free); may be NULL. */
	void (*destroy)(struct engine *e);
};

/* The qemu driver. qemu_binary NULL means qemu-system-x86_64 from PATH. */
int engine_qemu_new(const char *qemu_binary, struct engine **out);
void engine_free(struct engine *e);

#endif
