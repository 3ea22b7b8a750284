#!/bin/sh
# /sbin/init of the root filesystem on guest/disk.qcow2, started by the
# initramfs after switch_root. It announces VESSEL-DISK-BOOT-OK and keeps an
# interactive root shell on the console (ttyS0); `poweroff -f` or `reboot -f`
# in that shell, or the ACPI power button, end the guest.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
export PS1='~ # '

mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -o remount,rw /
ip link set lo up 2>/dev/null
hostname vessel-disk
# The initramfs loaded the modules (button, evdev); acpid runs
# /etc/acpi/PWRF/00000080 on the ACPI power button, which powers off.
acpid -c /etc/acpi -l /run/acpid.log 2>/dev/null

echo VESSEL-DISK-BOOT-OK
while :; do
	setsid cttyhack sh
done
