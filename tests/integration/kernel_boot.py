#!/usr/bin/env python3
"""kernel_boot: direct kernel boot through vesseld (boot.firmware=kernel).

The guest kernel and initramfs are copied into the daemon's allowed dir and a
VM without disks is created with boot {"firmware": "kernel", "kernel",
"initrd", "cmdline"}; it must print VESSEL-GUEST-READY and answer a command on
the console. The same paths must be refused once they lie outside the allowed
dirs (docs/api.md, POST /vms), and the kernel's own boot messages must show the
command line we gave. A poweroff from inside the guest must leave the VM
stopped (not crashed, and not restarted by restart_policy on-crash).
"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

VM = "kboot-1"


def main(t):
    vt.need_vesseld()
    kernel_src, initrd_src = vt.need_guest("vmlinuz", "initramfs.img")
    d = t.daemon("kboot").start()
    kernel = os.path.join(d.import_dir, "vmlinuz")
    initrd = os.path.join(d.import_dir, "initramfs.img")
    shutil.copyfile(kernel_src, kernel)
    shutil.copyfile(initrd_src, initrd)
    cmdline = "console=ttyS0 panic=-1 vessel.itest=kboot"

    # outside the allowed dir: refused, nothing created
    r = d.api("POST", "vms", {"name": VM, "memory_mib": 256,
                              "boot": {"firmware": "kernel", "kernel": kernel_src, "initrd": initrd}})
    t.expect_error(r, 400, "invalid_argument", mentions=("kernel",), what="kernel outside allowed dirs")
    t.check(d.vms() == [], "a refused VM was created")

    r = d.api("POST", "vms", {"name": VM, "memory_mib": 256,
                              "boot": {"firmware": "kernel", "kernel": kernel, "initrd": initrd,
                                       "cmdline": cmdline}}, expect=201)
    vm = r.json["vm"]
    t.check(vm["boot"].get("firmware") == "kernel" and vm["boot"].get("kernel") == kernel
            and vm["boot"].get("initrd") == initrd and vm["boot"].get("cmdline") == cmdline,
            f"boot as stored: {vm['boot']}")
    t.check(vm["disks"] == [], f"a VM created without disks has disks {vm['disks']}")

    r = d.api("POST", f"vms/{VM}/start", expect=200)
    pid = r.json["vm"]["pid"]
    argv = vt.proc_cmdline(pid) or []
    t.check("-kernel" in argv and "-initrd" in argv, f"QEMU command line has no -kernel/-initrd: {argv}")
    d.console_wait(VM, b"VESSEL-GUEST-READY", timeout=120)
    log("VESSEL-GUEST-READY seen")
    full, _, _ = d.console_read(VM, 0)
    t.check(b"vessel.itest=kboot" in full, "the kernel command line we gave is not in the boot log")
    d.console_run(VM, "echo kb-$((20+22))", b"kb-42", timeout=60)
    d.console_run(VM, "cat /proc/cmdline", b"vessel.itest=kboot", timeout=30)

    r = d.api("POST", f"vms/{VM}/force-stop", expect=200)
    t.check(r.json["vm"]["state"] == "stopped", f"force-stop: {r.json['vm']}")
    t.check(vt.wait_gone([pid], 10), f"QEMU {pid} alive after force-stop")

    # the guest powers itself off: stopped, not crashed, and restart_policy
    # on-crash must not bring it back
    d.api("PATCH", f"vms/{VM}", {"restart_policy": "on-crash"}, expect=200)
    since = d.console_next(VM)
    r = d.api("POST", f"vms/{VM}/start", expect=200)
    pid = r.json["vm"]["pid"]
    d.console_wait(VM, b"VESSEL-GUEST-READY", since=since, timeout=120)
    d.console_run(VM, "echo off-$((4*4))", b"off-16", timeout=60)
    d.console_write(VM, "poweroff -f\n")
    vm = d.wait_vm(VM, lambda v: v["state"] != "running", 30, "leaving running after the guest's poweroff")
    t.check(vm["state"] == "stopped" and vm["pid"] is None and not vm.get("crash_reason"),
            f"after the guest powered off: state {vm['state']}, pid {vm['pid']}, "
            f"crash_reason {vm.get('crash_reason')!r}")
    t.check(vt.wait_gone([pid], 10), f"QEMU {pid} alive after the guest powered off")
    time.sleep(3)
    vm = d.vm(VM)
    t.check(vm["state"] == "stopped", f"a guest poweroff was restarted by on-crash: {vm['state']}")
    log("guest poweroff: stopped, not restarted")
    # the console of a stopped VM still shows the last run (docs/api.md, Console)
    body, _, _ = d.console_read(VM, 0)
    t.check(b"VESSEL-GUEST-READY" in body, "console of the stopped VM lost the last run's output")

    d.api("DELETE", f"vms/{VM}", expect=200)
    t.check(os.path.exists(kernel) and os.path.exists(initrd),
            "deleting a kernel-boot VM removed the user's kernel/initrd files")
    t.check(not d.qemu_pids(), f"QEMU left: {d.qemu_pids()}")


if __name__ == "__main__":
    vt.Test("kernel_boot", limit=240).run(main)
