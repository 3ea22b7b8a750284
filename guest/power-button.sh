#!/bin/sh
# ACPI power-button handler of the vessel test guests, installed by
# guest/build.sh as /etc/acpi/PWRF/00000080 (and PWRB/00000080). busybox
# acpid maps the evdev KEY_POWER event of the button driver to "PWRF/00000080"
# and runs that file from its config directory. QEMU's system_powerdown and
# vessel-vmm's control "poweroff" press this button; vesseld's graceful stop
# relies on the guest then powering off by itself.
# The guests run no services, so there is nothing to stop: write back dirty
# pages and make the root read-only (a clean ext4 on the disk guest; on the
# initramfs the remount is refused and that is fine), then power off without
# going through an init (PID 1 is a shell script, not busybox init).
sync
mount -o remount,ro / 2>/dev/null
echo "vessel-guest: power button pressed, powering off" >/dev/console
exec poweroff -f
