#!/usr/bin/env python3
"""snapshots: live snapshots, revert and delete against real QEMU (docs/backups.md).

The kernel+initramfs guest gets a blank qcow2 data disk (/dev/vda). Through
the serial console it writes a known pattern to the disk; a disk snapshot is
taken while it runs; the guest overwrites the pattern; reverting without
asking to stop is refused (409, nothing changes); reverting with stop=true
boots it again on the snapshot and the pattern reads back. Then a counter
loop prints on the console, a full snapshot is taken, the counter runs on,
and reverting the full snapshot must resume the guest where it was: the
first counter value after the revert continues from the snapshot's value
(no reboot: no new VESSEL-GUEST-READY). Deleting the first snapshot, which
the full one depends on, is refused without merge and, with merge, keeps
the data (the pattern still reads back after dropping the guest's page
cache). Every image left is checked with `qemu-img check`, and deleting the
VM asks about its snapshots first.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

VM = "snap-1"
READY = b"VESSEL-GUEST-READY"
BOOT_TIMEOUT = 120


def read_pattern(d, name):
    """The 16 bytes at 400 KiB into /dev/vda, read from the disk (caches dropped)."""
    _, out = d.console_run(name, "echo 3 > /proc/sys/vm/drop_caches; "
                           "echo AT-$(dd if=/dev/vda bs=4096 skip=100 count=1 2>/dev/null | head -c 16)-END",
                           re.compile(rb"AT-([A-Za-z0-9-]*)-END\r?\n"), timeout=60)
    m = re.findall(rb"AT-([A-Za-z0-9-]*)-END\r?\n", out)
    return m[-1].decode() if m else None


def write_pattern(d, name, pat):
    d.console_run(name, f"printf {pat} | dd of=/dev/vda bs=4096 seek=100 conv=fsync 2>/dev/null; "
                        f"echo WROTE-$?-{pat}", f"WROTE-0-{pat}", timeout=60)


def check_images(t, paths):
    for p in paths:
        r = subprocess.run(["qemu-img", "check", "-U", p], capture_output=True, text=True, timeout=60)
        t.check(r.returncode == 0, f"qemu-img check {p}: {r.stdout.strip()} {r.stderr.strip()}")


def main(t):
    vt.need_vesseld()
    kernel, initrd = vt.need_guest("vmlinuz", "initramfs.img")
    d = t.daemon("snap").start()
    d.kernel_vm(VM, kernel, initrd, disks=[{"size_gib": 1}])
    d.api("POST", f"vms/{VM}/start", expect=200)
    d.console_wait(VM, READY, timeout=BOOT_TIMEOUT)

    # -- disk snapshot, overwrite, revert
    write_pattern(d, VM, "PATTERN-AAAA")
    t.require(read_pattern(d, VM) == "PATTERN-AAAA", "the guest cannot read back what it wrote")
    t0 = time.monotonic()
    r = d.api("POST", f"vms/{VM}/snapshots", {"name": "s1", "type": "disk"})
    log(f"disk snapshot of the running VM took {time.monotonic() - t0:.2f} s")
    t.require(r.status == 201, f"disk snapshot of a running VM: {r.short()}")
    s1 = r.json["snapshot"]
    t.check(s1["type"] == "disk" and s1["parent"] is None and s1["current"], f"s1: {s1}")
    write_pattern(d, VM, "PATTERN-BBBB")
    t.check(read_pattern(d, VM) == "PATTERN-BBBB", "overwrite did not take")

    before = d.vm(VM)
    r = d.api("POST", f"vms/{VM}/snapshots/s1/revert", {})
    t.expect_error(r, 409, "conflict", ["running", "stop"], "revert a running VM without stop")
    after = d.vm(VM)
    t.check(after["state"] == "running" and after["pid"] == before["pid"]
            and after["disks"] == before["disks"], "a refused revert changed the VM")

    r = d.api("POST", f"vms/{VM}/snapshots/s1/revert", {"stop": True}, timeout=120)
    t.require(r.status == 200, f"revert with stop: {r.short()}")
    t.check(r.json["state"] == "running" and r.json["resumed"] is False, f"revert reply: {r.json}")
    d.console_wait(VM, READY, timeout=BOOT_TIMEOUT)
    got = read_pattern(d, VM)
    t.check(got == "PATTERN-AAAA", f"after revert to s1 the disk reads {got!r}, not PATTERN-AAAA")
    log(f"disk snapshot revert: pattern {got}")

    # -- full snapshot of a guest running a counter
    since = d.console_next(VM)
    d.console_write(VM, "i=0; while true; do i=$((i+1)); echo CNT-$i-X; sleep 1; done &\n")
    d.console_wait(VM, b"CNT-4-X", since=since, timeout=60)
    t0 = time.monotonic()
    r = d.api("POST", f"vms/{VM}/snapshots", {"name": "f1", "type": "full",
                                              "description": "counter running"}, timeout=180)
    log(f"full snapshot (256 MiB guest) took {time.monotonic() - t0:.2f} s")
    t.require(r.status == 201, f"full snapshot: {r.short()}")
    body, _, _ = d.console_read(VM, since)
    at_snap = max(int(x) for x in re.findall(rb"CNT-(\d+)-X", body))
    f1 = r.json["snapshot"]
    t.check(f1["type"] == "full" and f1["parent"] == "s1" and f1["used_bytes"] > 0, f"f1: {f1}")
    d.console_wait(VM, f"CNT-{at_snap + 6}-X", since=since, timeout=60)
    t0 = time.monotonic()
    r = d.api("POST", f"vms/{VM}/snapshots/f1/revert", {"stop": True}, timeout=180)
    log(f"revert to the full snapshot (stop, new overlay, load state) took {time.monotonic() - t0:.2f} s")
    t.require(r.status == 200, f"revert to the full snapshot: {r.short()}")
    t.check(r.json["state"] == "running" and r.json["resumed"] is True, f"revert reply: {r.json}")
    pos, buf = d.console_wait(VM, re.compile(rb"CNT-(\d+)-X\r?\n"), since=0, timeout=60)
    first = int(re.findall(rb"CNT-(\d+)-X", buf)[0])
    log(f"full snapshot: counter {at_snap} at snapshot, {at_snap + 6}+ at revert, "
        f"first value after revert {first}")
    t.check(at_snap - 1 <= first <= at_snap + 2,
            f"after reverting the full snapshot the counter printed {first}; it should continue "
            f"from {at_snap} (the value at the snapshot)")
    t.check(READY not in buf, "the guest rebooted instead of resuming from the saved state")
    d.console_wait(VM, f"CNT-{first + 2}-X", since=0, timeout=30)

    # -- tree, delete with and without merge
    lst = d.api("GET", f"vms/{VM}/snapshots", expect=200).json
    t.check(lst["current"] == "f1", f"current snapshot: {lst['current']}")
    t.check([n["name"] for n in lst["tree"]] == ["s1"] and
            [c["name"] for c in lst["tree"][0]["children"]] == ["f1"], f"tree: {lst['tree']}")
    r = d.api("DELETE", f"vms/{VM}/snapshots/s1")
    t.expect_error(r, 409, "conflict", ["f1", "merge"], "delete a snapshot another depends on")
    t.check(len(d.api("GET", f"vms/{VM}/snapshots", expect=200).json["snapshots"]) == 2,
            "a refused delete removed a snapshot")
    t0 = time.monotonic()
    r = d.api("DELETE", f"vms/{VM}/snapshots/s1?merge=true", timeout=180)
    log(f"live merge of s1 (block-stream) took {time.monotonic() - t0:.2f} s")
    t.require(r.status == 200, f"delete with merge: {r.short()}")
    lst = d.api("GET", f"vms/{VM}/snapshots", expect=200).json
    t.check([s["name"] for s in lst["snapshots"]] == ["f1"] and lst["snapshots"][0]["parent"] is None,
            f"after merging s1: {lst['snapshots']}")
    got = read_pattern(d, VM)
    t.check(got == "PATTERN-AAAA", f"after merging s1 away the disk reads {got!r}")

    # -- images are sound; deleting the VM asks about snapshots
    d.api("POST", f"vms/{VM}/force-stop", expect=200)
    vmdir = os.path.join(d.data_dir, "vms", VM)
    imgs = [os.path.join(vmdir, f) for f in os.listdir(vmdir) if f.endswith(".qcow2")]
    t.check(len(imgs) == 2, f"files after merge: {sorted(os.listdir(vmdir))}")
    check_images(t, imgs)
    r = d.api("DELETE", f"vms/{VM}")
    t.expect_error(r, 409, "conflict", ["snapshot", "snapshots=delete"], "delete a VM with snapshots")
    t.check(os.path.isdir(vmdir), "a refused VM delete removed files")
    d.api("DELETE", f"vms/{VM}?snapshots=delete", expect=200)
    t.check(not os.path.exists(vmdir), "VM directory left after delete")


if __name__ == "__main__":
    vt.Test("snapshots", limit=900).run(main)
