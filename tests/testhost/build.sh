#!/bin/bash
# tests/testhost/build.sh OUTDIR BUILD_DIR: build the initramfs of the nested
# test host (L1), OUTDIR/testhost-initramfs.img. L1 is the Debian cloud
# kernel under QEMU TCG with an emulated AMD-V CPU; it loads kvm/kvm-amd and
# runs vessel-vmm (from BUILD_DIR/src/vmm, if built) and, for reference,
# QEMU microvm on /dev/kvm against the same L2 kernel and initramfs.
#
# Contents besides busybox: kvm modules, tun, QEMU with its libraries and
# firmware, socat, vessel-vmm with its libraries, the L2 kernel and an L2
# initramfs (the guest initramfs with the tests/testhost/evil programs
# appended as a second cpio archive), and the in-L1 scripts. The archive is
# left uncompressed: under TCG, gunzip of ~60 MB in the guest costs more
# than reading it. Rebuilt only when an input changes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/guest/lib.sh"

[ $# -eq 2 ] || guest_die "usage: tests/testhost/build.sh OUTDIR BUILD_DIR"
mkdir -p "$1"
out=$(cd "$1" && pwd)
build=$(cd "$2" 2>/dev/null && pwd) || build=$2
guestdir=${VESSEL_GUEST_DIR:-$out/../guest}

"$top/guest/build.sh" "$guestdir"
guestdir=$(cd "$guestdir" && pwd)
ver=$(cat "$guestdir/kernel-version")
moddir=$guestdir/kroot/lib/modules/$ver

vmm=$build/src/vmm/vessel-vmm
[ -x "$vmm" ] || vmm=

# Programs copied into L1 together with every library they link.
l1_bins="/usr/bin/qemu-system-x86_64 /usr/bin/socat $(command -v ip)"
# Firmware QEMU needs for -M microvm (qboot) and for the pc machine's
# direct kernel boot option ROMs.
qemu_data="bios-microvm.bin qboot.rom linuxboot_dma.bin linuxboot.bin kvmvapic.bin pvh.bin"
l1_modules="irqbypass kvm kvm_amd tun"

evil_src=$(ls "$here"/evil/*.c 2>/dev/null || true)
probe_src=$top/bench/vmm/probe.c
# The helper programs are static so they run in L1 and L2 without libraries.
helper_cflags="-static -O2 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes"

stamp_inputs() {
	cat "$here/build.sh" "$here/l1-tests.sh" "$here/l1-lib.sh" "$top/bench/vmm/l1-bench.sh" \
		"$top/guest/lib.sh" "$top/guest/init.sh" $evil_src "$probe_src"
	echo "$ver $l1_bins $qemu_data $l1_modules"
	sha256sum "$guestdir/vmlinuz" "$guestdir/initramfs.img" $l1_bins ${vmm:+"$vmm"}
	# ldd prints load addresses, which ASLR changes on every call.
	for f in $l1_bins ${vmm:+"$vmm"}; do ldd "$f" | sed 's/ (0x[0-9a-f]*)//'; done
}
stamp=$(stamp_inputs | sha256sum | cut -d' ' -f1)
img=$out/testhost-initramfs.img
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] && [ -f "$img" ]; then
	exit 0
fi
rm -f "$out/.stamp"

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# copy_with_libs FILE: FILE and the shared libraries and dynamic loader it
# uses, at the same paths inside L1.
copy_with_libs() {
	local f=$1 lib
	mkdir -p "$root$(dirname "$f")"
	# Remove a busybox applet link of the same name first: cp would follow
	# its absolute target out of the tree.
	rm -f "$root$f"
	cp -L "$f" "$root$f"
	for lib in $(ldd "$f" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}'); do
		if [ ! -e "$root$lib" ]; then
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib"
		fi
	done
}

guest_busybox_install "$root"
# L1 itself needs no virtio device: results come back on the serial console.
guest_modules_install "$moddir" "$root" ""
mkdir -p "$root/testhost/modules"
for p in $(guest_modules_order "$moddir" $l1_modules); do
	cp "$moddir/$p" "$root/testhost/modules/"
	echo "${p##*/}" >>"$root/testhost/modules/order"
done
install -m 0755 "$top/guest/init.sh" "$root/init"
# nobody: the unprivileged user vessel-vmm drops to in the --user test.
printf '%s\n' "root:x:0:0:root:/root:/bin/sh" "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" >"$root/etc/passwd"
printf '%s\n' "root:x:0:" "nogroup:x:65534:" >"$root/etc/group"

for f in $l1_bins; do
	copy_with_libs "$f"
done
# iproute2's ip (for `ip tuntap`), under a name busybox's applet cannot shadow.
mkdir -p "$root/testhost/bin"
ln -s "$(command -v ip)" "$root/testhost/bin/ip"
mkdir -p "$root/usr/share/qemu"
for f in $qemu_data; do
	cp -L "/usr/share/qemu/$f" "$root/usr/share/qemu/$f"
done
if [ -n "$vmm" ]; then
	copy_with_libs "$vmm"
	# At a fixed path: the build tree may lie under /tmp, which L1 mounts
	# a tmpfs over.
	mkdir -p "$root/usr/local/bin"
	mv "$root$vmm" "$root/usr/local/bin/vessel-vmm"
	ln -s /usr/local/bin/vessel-vmm "$root/testhost/bin/vessel-vmm"
fi

# L2: the guest kernel and initramfs, with the evil programs appended as a
# second (uncompressed) cpio archive under /opt/evil; the kernel unpacks
# concatenated archives in order.
mkdir -p "$root/testhost/l2" "$work/l2extra/opt/evil"
cp "$guestdir/vmlinuz" "$root/testhost/l2/vmlinuz"
for c in $evil_src; do
	name=$(basename "$c" .c)
	# shellcheck disable=SC2086
	gcc $helper_cflags -o "$work/l2extra/opt/evil/$name" "$c" ||
		guest_die "cannot build $c as a static program; is libc6-dev installed?"
done
guest_cpio "$work/l2extra" "$work/l2extra.cpio" none
# The kernel only looks for a following archive at a 4-byte aligned offset
# and skips zero padding, so the gzip stream is padded first.
cp "$guestdir/initramfs.img" "$root/testhost/l2/initramfs.img"
truncate -s %512 "$root/testhost/l2/initramfs.img"
cat "$work/l2extra.cpio" >>"$root/testhost/l2/initramfs.img"

# shellcheck disable=SC2086
gcc $helper_cflags -o "$root/testhost/bin/probe" "$probe_src" ||
	guest_die "cannot build $probe_src as a static program; is libc6-dev installed?"
install -m 0755 "$here/l1-tests.sh" "$root/testhost/tests.sh"
install -m 0644 "$here/l1-lib.sh" "$root/testhost/lib.sh"
install -m 0755 "$top/bench/vmm/l1-bench.sh" "$root/testhost/bench.sh"

guest_cpio "$root" "$img" none
echo "$stamp" >"$out/.stamp"
guest_log "built $img ($(du -h "$img" | cut -f1)); vessel-vmm: ${vmm:-not built}"
