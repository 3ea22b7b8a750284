/* qemu_host: what the host offers QEMU — hardware KVM or TCG, and the QEMU
 * version (DESIGN.md "Engines": acceleration is detected, never assumed). */
#ifndef VESSEL_DAEMON_ENGINE_QEMU_HOST_H
#define VESSEL_DAEMON_ENGINE_QEMU_HOST_H

#include <stddef.h>

#include "daemon/engine/engine.h"

/* Decide the accelerator. Hardware KVM needs both dev_kvm (normally
 * "/dev/kvm") openable read-write and a hardware module loaded:
 * sys_module ("/sys/module") holding kvm_intel or kvm_amd — the bare "kvm"
 * module alone can be a paravirtual or stub backend. Otherwise accel is
 * "tcg" and warning says why. Fills kvm, accel, warning; never fails. */
void qemu_host_detect_accel(const char *dev_kvm, const char *sys_module,
			    struct engine_host_info *out);

/* Parse "QEMU emulator version 7.2.22 (Debian ...)" into "7.2.22".
 * Returns 0 or -EINVAL when text is not QEMU's --version output. */
int qemu_host_version_parse(const char *text, char *out, size_t cap);

/* Run "binary --version" and parse it. Returns 0, -ENOENT when the binary
 * is missing, or -EINVAL. */
int qemu_host_version_query(const char *binary, char *out, size_t cap);

#endif
