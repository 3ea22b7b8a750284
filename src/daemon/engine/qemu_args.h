/* qemu_args: the QEMU command line of a VM, built as a pure function of the
 * VM spec and the host (no I/O), so it can be checked against golden files
 * (tests/data/engine/NAME.args, one argument per line). */
#ifndef VESSEL_DAEMON_ENGINE_QEMU_ARGS_H
#define VESSEL_DAEMON_ENGINE_QEMU_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/engine/engine.h"

/* Files QEMU and the driver keep in spec->run_dir. */
#define QEMU_RUN_QMP "qmp.sock"
#define QEMU_RUN_SERIAL "serial.sock"
/* QEMU's VNC server for the graphical console; only vesseld connects to it
 * (src/daemon/vnc.c proxies it to the browser). */
#define QEMU_RUN_VNC "vnc.sock"
#define QEMU_RUN_PID "qemu.pid"
#define QEMU_RUN_LOG "qemu.log"
/* Serial output is also kept on disk so a restarted vesseld can show the
 * console history of a VM it reattaches to: console.log grows to
 * ENGINE_CONSOLE_RING bytes, then becomes console.log.1 (one generation
 * kept, so at most twice that on disk). */
#define QEMU_RUN_CONSOLE "console.log"
#define QEMU_RUN_CONSOLE_OLD "console.log.1"
/* SeaBIOS reads its serial-console port from this fw_cfg file (see
 * qemu_args.c); the driver writes it before start. */
#define QEMU_RUN_SERCON "sercon-port.bin"
/* The per-VM copy of the UEFI variable store; the driver copies it from
 * QEMU_OVMF_VARS on the first start. */
#define QEMU_RUN_OVMF_VARS "OVMF_VARS.fd"

/* Debian's ovmf package (4 MiB flash layout, as QEMU 7.2 uses for q35). */
#define QEMU_OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define QEMU_OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"

/* NIC i's tap is fd QEMU_NIC_FD_BASE + i in QEMU (stdin/out/err come first). */
#define QEMU_NIC_FD_BASE 3

/* Unix socket paths must fit sockaddr_un.sun_path (108 bytes with NUL). */
#define QEMU_SOCKET_PATH_MAX 107

struct qemu_args {
	char **argv; /* NULL-terminated */
	size_t argc, cap;
};

int qemu_args_new(struct qemu_args **out);
void qemu_args_free(struct qemu_args *a);
int qemu_args_add(struct qemu_args *a, const char *arg);
int qemu_args_addf(struct qemu_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* QEMU's option syntax (QemuOpts and keyval, "-blockdev driver=file,
 * filename=...") separates keys with commas, and a literal comma inside a
 * value is written twice. Returns a malloc'd copy of s with every ','
 * doubled, or NULL when out of memory. */
char *qemu_args_escape(const char *s);

/* Build argv for spec on host. binary is argv[0]. Checks the spec (name,
 * uuid, vcpus, memory, firmware files named, disk formats, socket path
 * length) and on a bad spec returns -EINVAL or -ENAMETOOLONG with *err set
 * to a sentence (malloc'd). */
int qemu_args_build(const char *binary, const struct engine_vm_spec *spec,
		    const struct engine_host_info *host, struct qemu_args **out, char **err);

/* Is the NUL-separated argv in buf (as read from /proc/PID/cmdline, len
 * bytes) the QEMU of spec? True when argv[0] is a qemu-system binary and it
 * has this VM's "-name guest=NAME,debug-threads=on" and "-uuid UUID" as
 * built by qemu_args_build(). attach() uses it so a pid file left behind
 * never makes us drive an unrelated process that reused the pid. */
bool qemu_args_cmdline_matches(const struct engine_vm_spec *spec, const char *buf, size_t len);

#endif
