/* engine: how vesseld reaches a VM, the way libvirt has drivers
 * (DESIGN.md, "Engines"). The daemon core (API, store, lifecycle rules)
 * calls only these functions; the qemu driver (engine/qemu*.c, qmp.c)
 * implements them by building a QEMU command line and talking QMP; the micro
 * driver (vessel-vmm) will implement the same table later.
 *
 * Threading: every function may be called from any API thread; a driver
 * serialises access to one VM itself. Events come back through the
 * engine_events callbacks, called from the driver's own monitor thread. */
#ifndef VESSEL_DAEMON_ENGINE_H
#define VESSEL_DAEMON_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ENGINE_MAX_DISKS 8
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
	char run_dir[4096];
};

enum engine_state {
	ENGINE_STATE_STOPPED = 0,
	ENGINE_STATE_RUNNING,
	ENGINE_STATE_PAUSED,
	ENGINE_STATE_CRASHED, /* the monitor process died without being asked */
};

struct engine_vm; /* a running (or attached) monitor */

/* Called by the driver from its monitor thread; may be NULL. */
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
	char qemu_version[64];
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
	/* Kill the monitor now (QMP quit, then SIGKILL if needed) and reap it. */
	int (*force_stop)(struct engine_vm *vm, char **err);
	int (*pause)(struct engine_vm *vm, char **err);
	int (*resume)(struct engine_vm *vm, char **err);
	int (*reset)(struct engine_vm *vm, char **err);
	/* Current state as the monitor reports it (QMP query-status). */
	int (*query)(struct engine_vm *vm, enum engine_state *st, char **err);
	pid_t (*pid)(struct engine_vm *vm);
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
	 * STOPPED/CRASHED event seen). Removes the sockets in run_dir. */
	void (*release)(struct engine_vm *vm);
};

/* The qemu driver. qemu_binary NULL means qemu-system-x86_64 from PATH. */
int engine_qemu_new(const char *qemu_binary, struct engine **out);
void engine_free(struct engine *e);

#endif
