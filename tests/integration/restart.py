#!/usr/bin/env python3
"""restart: a running VM outlives vesseld.

A VM is started, then vesseld is restarted twice under it: once cleanly
(SIGTERM) and once by SIGKILL (a daemon crash). Each time the new vesseld must
find the VM still running with the same QEMU pid (engine attach, docs/api.md
"VMs": pid is the monitor's), and must still control it: console output and
input, pause/resume, and in the end a stop that really ends QEMU. A paused VM is found paused; a
VM whose QEMU died while vesseld was down is not reported running; a VM with
autostart is started by the next vesseld.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

VM = "keep-1"


def after_restart(t, d, pid, how, n):
    vm = d.vm(VM)
    t.check(vm["state"] == "running", f"after {how}: state {vm['state']!r}, expected running")
    t.check(vm["pid"] == pid, f"after {how}: pid {vm['pid']} != {pid}")
    t.check(vt.proc_alive(pid), f"after {how}: QEMU {pid} is gone")
    t.check(d.qemu_pids() == [pid], f"after {how}: QEMU processes {d.qemu_pids()}, expected only {pid}")
    # console still wired both ways
    d.console_run(VM, f"echo again-$(({n}*11))", f"again-{n * 11}".encode(), timeout=40)
    r = d.api("POST", f"vms/{VM}/pause", expect=200)
    t.check(r.json["vm"]["state"] == "paused", f"pause after {how}: {r.json['vm']['state']}")
    r = d.api("POST", f"vms/{VM}/resume", expect=200)
    t.check(r.json["vm"]["state"] == "running", f"resume after {how}: {r.json['vm']['state']}")
    d.console_run(VM, f"echo alive-$(({n}+100))", f"alive-{n + 100}".encode(), timeout=40)
    log(f"VM controllable after {how}")


def main(t):
    vt.need_vesseld()
    (disk,) = vt.need_guest("disk.qcow2")
    d = t.daemon("restart").start()
    d.import_image("base", disk)
    d.api("POST", "vms", {"name": VM, "memory_mib": 256, "disks": [{"image": "base"}]}, expect=201)
    r = d.api("POST", f"vms/{VM}/start", expect=200)
    pid = r.json["vm"]["pid"]
    t.require(isinstance(pid, int) and vt.is_qemu(pid), f"start: {r.short()}")
    d.console_wait(VM, b"VESSEL-DISK-BOOT-OK", timeout=120)
    d.console_run(VM, "echo first-$((3*3))", b"first-9", timeout=60)

    # 1: clean restart
    old = d.pid
    rc = d.stop(signal.SIGTERM)
    t.check(rc == 0, f"vesseld exited with {rc} on SIGTERM")
    time.sleep(0.5)
    t.require(vt.proc_alive(pid), f"QEMU {pid} died with vesseld (SIGTERM)")
    d.start()
    log(f"vesseld restarted ({old} -> {d.pid})")
    after_restart(t, d, pid, "SIGTERM restart", 1)

    # 2: vesseld crashes
    old = d.pid
    d.stop(signal.SIGKILL)
    time.sleep(0.5)
    t.require(vt.proc_alive(pid), f"QEMU {pid} died with vesseld (SIGKILL)")
    d.start()
    log(f"vesseld restarted after SIGKILL ({old} -> {d.pid})")
    after_restart(t, d, pid, "SIGKILL restart", 2)

    # 3: a paused VM is found paused, and can be resumed
    d.api("POST", f"vms/{VM}/pause", expect=200)
    d.stop(signal.SIGTERM)
    d.start()
    vm = d.vm(VM)
    t.check(vm["state"] == "paused" and vm["pid"] == pid, f"paused VM after a restart: {vm['state']} {vm['pid']}")
    r = d.api("POST", f"vms/{VM}/resume", expect=200)
    t.check(r.json["vm"]["state"] == "running", f"resume after restart: {r.json['vm']['state']}")
    d.console_run(VM, "echo paused-$((8*8))", b"paused-64", timeout=40)
    log("paused VM survived the restart and resumed")

    # the VM that survived can still be stopped for real
    # (stop, not force-stop: ACPI power-down over the re-attached QMP, then
    # the forced end after the timeout when the guest ignores the button)
    r = d.api("POST", f"vms/{VM}/stop", {"timeout": 3}, expect=200, timeout=40)
    t.check(r.json["vm"]["state"] == "stopped" and r.json["vm"]["pid"] is None,
            f"stop: {r.json['vm']}")
    t.check(isinstance(r.json.get("forced"), bool), f"stop reports no forced flag: {r.short()}")
    t.check(vt.wait_gone([pid], 10), f"QEMU {pid} alive after stop")

    # a VM stopped while vesseld was down is seen as no longer running
    r = d.api("POST", f"vms/{VM}/start", expect=200)
    pid = r.json["vm"]["pid"]
    d.stop(signal.SIGTERM)
    os.kill(pid, signal.SIGKILL)
    t.check(vt.wait_gone([pid], 5), "QEMU did not die")
    d.start()
    vm = d.vm(VM)
    t.check(vm["state"] in ("crashed", "stopped") and vm["pid"] is None,
            f"VM whose QEMU died while vesseld was down: {vm['state']} pid {vm['pid']}")

    # autostart: started by the next vesseld; a VM without it stays down
    d.api("POST", "vms", {"name": "auto-1", "memory_mib": 128, "autostart": True,
                          "disks": [{"image": "base"}]}, expect=201)
    d.stop(signal.SIGTERM)
    d.start()
    vm = d.wait_vm("auto-1", lambda v: v["state"] == "running" and v["pid"], 60, "autostart")
    t.check(vt.is_qemu(vm["pid"]), f"autostarted VM pid {vm['pid']} is not QEMU")
    t.check(d.vm(VM)["state"] in ("crashed", "stopped"), f"{VM} (autostart false) is {d.vm(VM)['state']}")
    log("autostart VM started with vesseld")
    d.api("DELETE", "vms/auto-1?force=true", expect=200)
    d.api("DELETE", f"vms/{VM}", expect=200)
    t.check(not d.qemu_pids(), f"QEMU left: {d.qemu_pids()}")


if __name__ == "__main__":
    vt.Test("restart", limit=300).run(main)
