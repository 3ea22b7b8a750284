#!/bin/bash
# guest/build.sh OUTDIR: build the test guests from Debian packages only.
#   OUTDIR/vmlinuz         Debian cloud kernel (version in OUTDIR/kernel-version)
#   OUTDIR/kroot/          the extracted kernel package, modules tree included
#   OUTDIR/initramfs.img   busybox initramfs for direct kernel boot (see init.sh)
#   OUTDIR/disk.qcow2      48 MiB MBR disk: SYSLINUX on a FAT boot partition,
#                          busybox root on ext4; boots through SeaBIOS
# Downloads are cached in $VESSEL_CACHE (default OUTDIR/../cache/debs). A
# re-run whose inputs have not changed only compares a stamp and touches
# nothing. No root needed: images are assembled with mtools, mke2fs -d and
# syslinux --offset instead of loop mounts.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || guest_die "usage: guest/build.sh OUTDIR"
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=${VESSEL_CACHE:-$out/../cache/debs}

# Modules the guests load at boot. Whatever the cloud kernel has built in is
# skipped by guest_modules_order (modules.builtin). button and evdev turn an
# ACPI power-button press (QEMU system_powerdown, vessel-vmm's control
# socket "poweroff") into an input event for acpid.
guest_modules="virtio_pci virtio_mmio virtio_blk virtio_net virtio_console virtio_rng virtio_balloon button evdev"

ver=$(guest_kernel_fetch "$cache" "$out/kroot")
moddir=$out/kroot/lib/modules/$ver

# The stamp covers everything the images are made from: these scripts, the
# kernel version, the busybox binary and the SYSLINUX files.
stamp_inputs() {
	cat "$here/build.sh" "$here/lib.sh" "$here/init.sh" "$here/rootfs-init.sh" "$here/power-button.sh"
	echo "$ver $guest_modules"
	stat -L -c '%s %Y' "$(command -v busybox)" /usr/lib/syslinux/mbr/mbr.bin \
		/usr/lib/syslinux/modules/bios/ldlinux.c32 2>/dev/null || true
}
stamp=$(stamp_inputs | sha256sum | cut -d' ' -f1)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] &&
	[ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.img" ] && [ -f "$out/disk.qcow2" ]; then
	exit 0
fi
rm -f "$out/.stamp"

command -v syslinux >/dev/null && command -v mcopy >/dev/null && command -v qemu-img >/dev/null ||
	guest_die "syslinux, mtools or qemu-img missing; run scripts/install-deps"

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

cp "$out/kroot/boot/vmlinuz-$ver" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$ver" >"$out/kernel-version"

# Direct-boot initramfs.
guest_busybox_install "$work/initramfs"
guest_modules_install "$moddir" "$work/initramfs" $guest_modules
install -m 0755 "$here/init.sh" "$work/initramfs/init"
# busybox acpid runs CONFDIR/PWRF/00000080 when the power button is pressed
# (its built-in event table names the button PWRF; PWRB covers a table that
# says PWRB).
for d in PWRF PWRB; do
	install -D -m 0755 "$here/power-button.sh" "$work/initramfs/etc/acpi/$d/00000080"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$work/initramfs/etc/passwd"
echo "root:x:0:" >"$work/initramfs/etc/group"
guest_cpio "$work/initramfs" "$out/initramfs.img"

# Root filesystem of the disk: busybox, the same modules and an init that
# prints VESSEL-DISK-BOOT-OK.
guest_busybox_install "$work/rootfs"
guest_modules_install "$moddir" "$work/rootfs" $guest_modules
install -m 0755 "$here/rootfs-init.sh" "$work/rootfs/sbin/init.vessel"
ln -sf init.vessel "$work/rootfs/sbin/init"
cp "$work/initramfs/etc/passwd" "$work/initramfs/etc/group" "$work/rootfs/etc/"
cp -a "$work/initramfs/etc/acpi" "$work/rootfs/etc/"

# Disk layout (512-byte sectors): MBR, p1 FAT16 boot (active) from 1 MiB to
# 25 MiB, p2 ext4 root up to 48 MiB.
disk=$work/disk.raw
p1_start=2048
p1_size=49152
p2_start=$((p1_start + p1_size))
total=98304
p2_size=$((total - p2_start))
truncate -s $((total * 512)) "$disk"
sfdisk -q "$disk" >/dev/null <<EOF
label: dos
start=$p1_start, size=$p1_size, type=6, bootable
start=$p2_start, size=$p2_size, type=83
EOF
# SYSLINUX's MBR code (mbr.bin) fits in the 440 bytes before the disk
# signature and partition table; it chain-loads the active partition.
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$disk" bs=440 count=1 conv=notrunc status=none

# mkfs.vfat warns that the file is larger than the partition; that is meant.
mkfs.vfat -F 16 -n VESSELBOOT --offset=$p1_start "$disk" $((p1_size / 2)) 2>&1 >/dev/null |
	{ grep -v 'block count mismatch' >&2 || true; }
cat >"$work/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT vessel
PROMPT 0
TIMEOUT 0
LABEL vessel
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND console=ttyS0 vessel.root=vessel-root quiet
EOF
fat="$disk@@$((p1_start * 512))"
MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$out/vmlinuz" ::/vmlinuz
MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$out/initramfs.img" ::/initrd.img
MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$work/syslinux.cfg" ::/syslinux.cfg
# --offset also sets the boot sector's hidden-sectors field, which the
# SYSLINUX boot sector adds to every sector it reads.
syslinux --offset $((p1_start * 512)) --install "$disk"

mkfs.ext4 -q -F -L vessel-root -d "$work/rootfs" -E offset=$((p2_start * 512)) \
	"$disk" $((p2_size / 2))k

qemu-img convert -f raw -O qcow2 "$disk" "$out/disk.qcow2.tmp"
mv "$out/disk.qcow2.tmp" "$out/disk.qcow2"

echo "$stamp" >"$out/.stamp"
guest_log "built kernel $ver, $(du -h "$out/initramfs.img" | cut -f1) initramfs, disk.qcow2 in $out"
