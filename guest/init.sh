#!/bin/sh
# /init of the vessel test initramfs (guest/build.sh). Mounts the kernel
# filesystems, loads the modules listed in /etc/vessel-modules, then either
# switches to a root filesystem on a disk (vessel.root=LABEL, used by
# disk.qcow2) or starts acpid (power button -> power off), announces
# VESSEL-GUEST-READY and runs vessel.run=<cmd> or an interactive shell on the
# console. vessel.poweroff powers off afterwards.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
export PS1='~ # '

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

# Module load failures are reported but not fatal: a device that is missing
# shows up as a failed test, not as a guest that never reaches its marker.
for m in $(cat /etc/vessel-modules); do
	insmod "/lib/modules/$m" || echo "vessel-init: insmod $m failed" >&2
done

ip link set lo up 2>/dev/null
hostname vessel-guest

cmdline=$(cat /proc/cmdline)

# cmdline_get NAME: value of NAME=value or NAME="value with spaces".
cmdline_get() {
	case " $cmdline " in
	*" $1=\""*)
		v=${cmdline#*"$1=\""}
		echo "${v%%\"*}"
		;;
	*" $1="*)
		v=${cmdline#*"$1="}
		echo "${v%% *}"
		;;
	esac
}

case " $cmdline " in
*" vessel.poweroff "*) poweroff=1 ;;
*) poweroff= ;;
esac

root=$(cmdline_get vessel.root)
if [ -n "$root" ]; then
	# Disk boot: the root filesystem is on a partition labelled $root. The
	# block device appears asynchronously after virtio_blk probes it.
	dev=
	i=0
	while [ $i -lt 200 ]; do
		dev=$(findfs "LABEL=$root" 2>/dev/null) && break
		i=$((i + 1))
		sleep 0.1
	done
	if [ -z "$dev" ]; then
		echo "vessel-init: no partition labelled $root; is the disk attached as virtio?"
		exec setsid cttyhack sh
	fi
	mkdir -p /newroot
	mount -t ext4 "$dev" /newroot || exec setsid cttyhack sh
	umount /tmp /run /dev/pts
	mount --move /dev /newroot/dev
	mount --move /sys /newroot/sys
	mount --move /proc /newroot/proc
	exec switch_root /newroot /sbin/init
fi

# Power button -> acpid -> /etc/acpi/PWRF/00000080 -> poweroff -f. Started
# only here, not before switch_root: an acpid left from the initramfs would
# keep its files (and /run) busy and race the root filesystem's own acpid.
# It needs the button and evdev modules loaded above; a guest without
# /etc/acpi (tests/testhost reuses this script) simply runs without it.
[ -d /etc/acpi ] && acpid -c /etc/acpi -l /run/acpid.log 2>/dev/null

echo VESSEL-GUEST-READY

run=$(cmdline_get vessel.run)
while :; do
	if [ -n "$run" ]; then
		setsid cttyhack sh -c "$run"
		echo "VESSEL-RUN-EXIT $?"
		run=
	else
		setsid cttyhack sh
	fi
	[ -n "$poweroff" ] && poweroff -f
	# /init must never exit (the kernel would panic): start a new shell.
done
