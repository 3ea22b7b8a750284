#!/bin/bash
# tests/integration/guest_images.sh: build the test guests (guest/build.sh,
# cached) and boot each once under QEMU TCG:
#  1. direct kernel boot with vessel.run and vessel.poweroff: the marker, the
#     command's output, a virtio disk seen as /dev/vda, virtio-rng as
#     /dev/hwrng, and QEMU exiting on its own;
#  2. direct kernel boot, interactive: a command typed at the `~ # ` prompt
#     prints its output;
#  3. direct kernel boot: an ACPI power-button press powers the guest off;
#  4. disk.qcow2 through SeaBIOS and SYSLINUX: VESSEL-DISK-BOOT-OK, a typed
#     command's output and the root on ext4.
# Prints the boot times. Exit 0 = pass, 1 = fail, 77 = skipped.
# VESSEL_GUEST_DIR selects the image directory (default build/guest).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${VESSEL_GUEST_DIR:-$top/build/guest}
con=$top/guest/console.py

if ! command -v qemu-system-x86_64 >/dev/null || ! command -v python3 >/dev/null; then
	echo "SKIP qemu-system-x86_64 or python3 missing (scripts/install-deps)"
	exit 77
fi
if ! "$top/guest/build.sh" "$dir"; then
	echo "FAIL guest/build.sh $dir failed"
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
qemu=(qemu-system-x86_64 -accel tcg -m 256 -nodefaults -display none -serial stdio -no-reboot)

# check NAME CONSOLE-ARGS...: run one console.py session and report it.
check() {
	local name=$1
	shift
	if "$con" --log "$tmp/$name.log" "$@" >"$tmp/$name.out"; then
		echo "PASS $name: $(grep '^TIME' "$tmp/$name.out" | sed 's/^TIME \([^ ]*\) \(.*\)/\2 at \1s;/' | tr '\n' ' ')"
	else
		echo "FAIL $name: $(tail -n 1 "$tmp/$name.out")"
		fails=$((fails + 1))
	fi
}

secret="vessel-disk-$RANDOM$RANDOM"
printf '%s' "$secret" >"$tmp/data.raw"
truncate -s 1M "$tmp/data.raw"
check direct_run --timeout 90 expect:VESSEL-GUEST-READY "expect:DATA=$secret" expect:HWRNG=/dev/hwrng \
	"expect:VESSEL-RUN-EXIT 0" exit:0 -- \
	"${qemu[@]}" -kernel "$dir/vmlinuz" -initrd "$dir/initramfs.img" \
	-drive "file=$tmp/data.raw,if=virtio,format=raw" -device virtio-rng-pci \
	-append "console=ttyS0 vessel.run=\"echo DATA=\$(head -c ${#secret} /dev/vda); echo HWRNG=\$(ls /dev/hwrng)\" vessel.poweroff"

check direct_shell --timeout 90 expect:VESSEL-GUEST-READY "expect:~ # " 'send:echo typed-$((6*7))' \
	expect:typed-42 "send:poweroff -f" exit:0 -- \
	"${qemu[@]}" -kernel "$dir/vmlinuz" -initrd "$dir/initramfs.img" -append "console=ttyS0"

# The ACPI power button (what QEMU's system_powerdown and vessel-vmm's
# control "poweroff" press) must power the guest off: Ctrl-A c switches the
# multiplexed stdio to the QEMU monitor.
check power_button --timeout 90 expect:VESSEL-GUEST-READY "expect:~ # " $'send:\x01c' "send:system_powerdown" \
	"expect:reboot: Power down" exit:0 -- \
	qemu-system-x86_64 -accel tcg -m 256 -nodefaults -display none -no-reboot \
	-chardev stdio,mux=on,id=con,signal=off -serial chardev:con -mon chardev=con \
	-kernel "$dir/vmlinuz" -initrd "$dir/initramfs.img" -append "console=ttyS0"

check disk_boot --timeout 150 expect:VESSEL-DISK-BOOT-OK "expect:~ # " 'send:echo typed-$((6*7)) $(cat /proc/mounts | grep -c " / ext4")' \
	"expect:typed-42 1" "send:poweroff -f" exit:0 -- \
	"${qemu[@]}" -snapshot -drive "file=$dir/disk.qcow2,if=virtio,format=qcow2"

if [ $fails -ne 0 ]; then
	exit 1
fi
exit 0
