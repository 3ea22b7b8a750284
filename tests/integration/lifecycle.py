#!/usr/bin/env python3
"""lifecycle: one VM through its whole life over the REST API (docs/api.md).

Import the guest disk (a task with progress; the reported sha256 must be that
of the stored qcow2 file), make a full clone and a blank disk (and delete
them), create a VM as a linked clone of the image, start it, read the boot
line over the console API, run a command through the console, use the console
WebSocket (RFC 6455) on both sockets, reboot, pause and resume (the console
must go quiet and come back), stop it gracefully (the ACPI power button: the
guest powers off by itself, so the stop must say forced=false and return long
before its timeout), kill -9 its QEMU (state crashed with a
reason), let restart_policy on-crash bring it back, then delete it and check
that no file, process or socket of it is left.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

BOOT_LINE = b"VESSEL-DISK-BOOT-OK"
BOOT_TIMEOUT = 120  # TCG on a shared 2-core machine
VM = "life-1"


def find_stored_image(d, sha):
    """The file under the data dir whose sha256 is sha (the stored qcow2)."""
    for dirpath, _, files in os.walk(d.data_dir):
        for n in files:
            p = os.path.join(dirpath, n)
            if os.path.islink(p) or not os.path.isfile(p) or p.endswith((".db", ".log", ".token")):
                continue
            if os.path.getsize(p) < 512:
                continue
            if vt.sha256_file(p) == sha:
                return p
    return None


def other_disks(t, d):
    """A full clone (a disk_copy task) and a blank disk; both leave nothing
    behind when their VM is deleted."""
    before = d.files()
    r = d.api("POST", "vms", {"name": "full-1", "memory_mib": 128,
                              "disks": [{"image": "base", "clone": "full", "size_gib": 1}, {"size_gib": 2}]},
              expect=201)
    vm = r.json["vm"]
    if vm["state"] == "provisioning":
        t.check(vm["task"], f"a provisioning VM names no task: {vm}")
        task, _ = d.wait_task(vm["task"], 120)
        t.check(task["kind"] == "disk_copy" and task["state"] == "succeeded", f"full clone task: {task}")
        vm = d.wait_vm("full-1", lambda v: v["state"] == "stopped", 10, "stopped after the copy")
    else:
        t.note(f"full clone finished inside POST /vms (state {vm['state']}, no task)")
    t.check(vm["state"] == "stopped" and vm["task"] is None, f"after the full copy: {vm}")
    kinds = [x["kind"] for x in d.api("GET", "tasks", expect=200).json["tasks"]]
    t.check(kinds[:1] == ["disk_copy"] or vm.get("task") is None and "disk_copy" not in kinds,
            f"GET /tasks must list the newest first: {kinds}")
    t.check(len(vm["disks"]) == 2 and vm["disks"][0]["clone"] == "full", f"disks: {vm['disks']}")
    t.check(vm["disks"][0]["size_bytes"] == 1 << 30 and vm["disks"][1]["size_bytes"] == 2 << 30,
            f"disk sizes: {[x.get('size_bytes') for x in vm['disks']]}")
    new = sorted(os.path.join(d.data_dir, p) for p in d.files() - before
                 if not p.endswith("/") and open(os.path.join(d.data_dir, p), "rb").read(4) == b"QFI\xfb")
    t.require(len(new) == 2, f"expected two new qcow2 files for full-1, found {new}")
    infos = [vt.qemu_img_info(p) for p in new]
    for p, info in zip(new, infos):
        t.check(not info.get("backing-filename"), f"{p} of a full clone/blank disk has a backing file")
    t.check(sorted(i["virtual-size"] for i in infos) == [1 << 30, 2 << 30],
            f"virtual sizes {[i['virtual-size'] for i in infos]}")
    d.api("DELETE", "vms/full-1", expect=200)
    t.check(d.files() == before, f"files left by full-1: {sorted(d.files() ^ before)}")


def main(t):
    vt.need_vesseld()
    (disk,) = vt.need_guest("disk.qcow2")
    d = t.daemon("life").start()

    host = d.api("GET", "host", expect=200).json
    t.check(host.get("accel") in ("kvm", "tcg"), f"host accel is {host.get('accel')!r}")
    if not os.path.exists("/dev/kvm"):
        t.check(host.get("accel") == "tcg", f"no /dev/kvm here but host.accel is {host.get('accel')!r}")
        t.check(any("tcg" in w.lower() for w in host.get("warnings", [])),
                f"TCG host must carry a warning: {host.get('warnings')}")

    # ---- import: a task with progress; sha256 of the stored file
    log("importing the guest disk")
    img, task, progress, created = d.import_image("base", disk, fmt="auto")
    t.check(created.get("image", {}).get("name") == "base", f"202 body has no image: {created}")
    t.check(task["kind"] == "image_import" and task["target"] == "base", f"task: {task}")
    t.check(task["progress"] == 100, f"a finished import task reports progress {task['progress']}")
    t.check(all(isinstance(p, int) and 0 <= p <= 100 for p in progress)
            and progress == sorted(progress), f"progress must rise within 0..100: {progress}")
    t.check(task.get("finished_at"), f"finished task has no finished_at: {task}")
    t.check(img["state"] == "ready" and img["format"] == "qcow2", f"image: {img}")
    t.check(img["source_format"] == "qcow2", f"source_format of a qcow2 import: {img['source_format']!r}")
    src_info = vt.qemu_img_info(disk)
    t.check(img["virtual_size_bytes"] == src_info["virtual-size"],
            f"virtual_size_bytes {img['virtual_size_bytes']} != qemu-img's {src_info['virtual-size']}")
    stored = find_stored_image(d, img["sha256"])
    t.require(stored, f"no file under the data dir has the reported sha256 {img['sha256']}")
    log(f"stored image {stored}; progress seen {progress}; sha256 {img['sha256'][:16]}... matches")
    t.check(os.path.getsize(stored) == img["size_bytes"],
            f"size_bytes {img['size_bytes']} != stored file size {os.path.getsize(stored)}")
    t.check(vt.qemu_img_info(stored)["format"] == "qcow2", "stored image is not qcow2")
    t.check(not stored.startswith(d.import_dir), "the stored image must not be the source file itself")
    tasks = d.api("GET", "tasks", expect=200).json["tasks"]
    t.check(any(x["id"] == task["id"] for x in tasks), "GET /tasks does not list the import task")

    other_disks(t, d)
    host = d.api("GET", "host", expect=200).json
    t.check(host.get("images") == 1 and host.get("vms") == 0, f"host counts: vms {host.get('vms')}, "
                                                               f"images {host.get('images')}")
    files_before_vm = d.files()

    # ---- create a linked clone
    r = d.api("POST", "vms", {"name": VM, "vcpus": 1, "memory_mib": 256,
                              "disks": [{"image": "base", "clone": "linked"}]}, expect=201)
    vm = r.json["vm"]
    t.check(vm["state"] == "stopped" and vm["pid"] is None, f"new VM: {vm}")
    t.check(vm["disks"][0]["image"] == "base" and vm["disks"][0]["clone"] == "linked", f"disk: {vm['disks']}")
    t.check(vm["restart_policy"] == "never", f"default restart_policy: {vm['restart_policy']!r}")
    overlays = []
    for p in d.files() - files_before_vm:
        full = os.path.join(d.data_dir, p)
        if os.path.isfile(full) and not p.endswith("/"):
            try:
                info = vt.qemu_img_info(full)
            except vt.Failure:
                continue
            if info.get("format") == "qcow2":
                overlays.append((full, info))
    t.require(len(overlays) == 1, f"expected one new qcow2 disk for the VM, found {[o[0] for o in overlays]}")
    ov, info = overlays[0]
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    t.check(backing and os.path.realpath(backing) == os.path.realpath(stored),
            f"linked clone {ov} must have the stored image as backing file, has {backing!r}")
    t.check(d.api("GET", "images/base", expect=200).json["image"]["used_by"] == [VM],
            "image.used_by does not name the VM")

    # ---- start, boot line
    log("starting")
    t0 = time.monotonic()
    r = d.api("POST", f"vms/{VM}/start", expect=200)
    vm = r.json["vm"]
    log(f"start answered in {(time.monotonic() - t0) * 1000:.0f} ms")
    t.require(vm["state"] == "running" and isinstance(vm["pid"], int), f"after start: {vm}")
    pid = vm["pid"]
    t.check(vt.is_qemu(pid), f"pid {pid} is not a QEMU process: {vt.proc_cmdline(pid)}")
    off, _ = d.console_wait(VM, BOOT_LINE, timeout=BOOT_TIMEOUT)
    log("boot line seen")
    body, start, nxt = d.console_read(VM, 0)
    t.check(nxt == start + len(body), f"X-Console-Next {nxt} != X-Console-Start {start} + {len(body)} bytes")
    t.check(BOOT_LINE in body, "boot line not in a full console read")
    _, start2, nxt2 = d.console_read(VM, off)
    t.check(start2 == off and nxt2 >= off, f"console?since={off} gave start {start2} next {nxt2}")

    # ---- a command through the console
    log("running a command")
    d.console_run(VM, "echo vessel-$((6*7))", b"vessel-42", timeout=60)

    # ---- the console WebSocket (RFC 6455): history, output and input
    ws, status, _, _ = vt.WebSocket.connect(f"/api/v1/vms/{VM}/console/ws", unix_path=d.sock)
    t.require(ws, f"console/ws over the Unix socket: HTTP {status}, expected 101")
    try:
        seen = ws.read_until(b"vessel-42", timeout=15)  # the kept history comes first
        ws.send("echo ws-$((5*5))\n", opcode=0x1)
        ws.read_until(b"ws-25", timeout=40, seen=seen)
    finally:
        ws.close()
    log("console WebSocket: history, input and output work")
    ws, status, _, _ = vt.WebSocket.connect(f"/api/v1/vms/{VM}/console/ws", port=d.port)
    t.check(ws is None and status == 401, f"console/ws on TCP without a token: HTTP {status}, expected 401")
    ws, status, _, _ = vt.WebSocket.connect(f"/api/v1/vms/{VM}/console/ws?token={d.token}", port=d.port)
    t.check(ws is not None, f"console/ws on TCP with ?token=: HTTP {status}, expected 101")
    if ws:
        ws.send(b"echo tcpws-$((7*7))\n")
        ws.read_until(b"tcpws-49", timeout=40)
        ws.close()

    # ---- reboot: same QEMU, the guest boots again
    since = d.console_next(VM)
    r = d.api("POST", f"vms/{VM}/reboot", expect=200)
    t.check(r.json["vm"]["state"] == "running" and r.json["vm"]["pid"] == pid, f"after reboot: {r.json['vm']}")
    d.console_wait(VM, BOOT_LINE, since=since, timeout=BOOT_TIMEOUT)
    log("rebooted")

    # ---- pause/resume: a ticking loop in the guest must stop and go on
    d.console_run(VM, "while :; do echo tick-tock; sleep 1; done &", b"tick-tock", timeout=40)
    d.console_wait(VM, b"tick-tock", since=d.console_next(VM), timeout=20)
    r = d.api("POST", f"vms/{VM}/pause", expect=200)
    t.check(r.json["vm"]["state"] == "paused", f"after pause: {r.json['vm']['state']}")
    t.check(d.vm(VM)["state"] == "paused", "GET after pause does not say paused")
    time.sleep(1.5)  # output QEMU emitted just before the pause may still be in flight
    n1 = d.console_next(VM)
    time.sleep(3)
    n2 = d.console_next(VM)
    t.check(n1 == n2, f"console grew by {n2 - n1} bytes while the VM was paused")
    t.check(vt.proc_alive(pid), "QEMU died while paused")
    r = d.api("POST", f"vms/{VM}/resume", expect=200)
    t.check(r.json["vm"]["state"] == "running", f"after resume: {r.json['vm']['state']}")
    d.console_wait(VM, b"tick-tock", since=n2, timeout=30)
    log("console continued after resume")
    d.console_write(VM, "kill $!\n")

    # ---- graceful stop
    stop_timeout = 10
    log("graceful stop")
    t0 = time.monotonic()
    r = d.api("POST", f"vms/{VM}/stop", {"timeout": stop_timeout}, expect=200, timeout=stop_timeout + 30)
    took = time.monotonic() - t0
    vm = r.json["vm"]
    forced = r.json.get("forced")
    t.check(isinstance(forced, bool), f"stop must report forced true|false: {r.short()}")
    t.check(vm["state"] == "stopped" and vm["pid"] is None, f"after stop: {vm}")
    t.check(vt.wait_gone([pid], 5), f"QEMU pid {pid} still alive after stop")
    out, _, _ = d.console_read(VM, 0)
    # The disk guest powers off on the ACPI power button (guest/power-button.sh
    # via busybox acpid), which takes well under a second even on TCG: the stop
    # must not be forced and must return long before the timeout.
    t.check(forced is False, f"graceful stop was forced after {took:.1f}s: the guest did not power "
                             f"off on the ACPI power button (check guest/power-button.sh and that "
                             f"guest/build.sh rebuilt the images): {r.short()}")
    if forced:
        t.check(took >= stop_timeout - 1, f"stop says forced but returned after {took:.1f}s "
                                          f"of a {stop_timeout}s timeout")
    else:
        log(f"guest powered off by ACPI in {took:.1f}s")
        t.check(took < stop_timeout / 2, f"stop not forced but took {took:.1f}s of a {stop_timeout}s timeout")
        t.check(b"power button pressed" in out and b"Power down" in out,
                "stop says not forced but the console shows neither the guest's power-button "
                "handler nor the kernel's power-down")
    t.check(d.vm(VM)["state"] == "stopped", "GET after stop")

    # ---- kill -9 -> crashed with a reason
    r = d.api("POST", f"vms/{VM}/start", expect=200)
    pid = r.json["vm"]["pid"]
    time.sleep(1)
    log(f"kill -9 {pid}")
    os.kill(pid, signal.SIGKILL)
    vm = d.wait_vm(VM, lambda v: v["state"] == "crashed", 15, "state crashed")
    reason = vm.get("crash_reason") or ""
    log(f"crashed: {reason!r}")
    t.check(("9" in reason or "kill" in reason.lower()) and len(reason) > 10,
            f"crash_reason must say QEMU was killed by signal 9: {reason!r}")
    t.check(vm["pid"] is None, f"crashed VM still reports pid {vm['pid']}")
    t.check(not d.qemu_pids(), f"QEMU processes left after the crash: {d.qemu_pids()}")

    # ---- restart policy on-crash
    r = d.api("PATCH", f"vms/{VM}", {"restart_policy": "on-crash"}, expect=200)
    t.check(r.json["vm"]["restart_policy"] == "on-crash", f"PATCH restart_policy: {r.json['vm']}")
    since = d.console_next(VM)
    r = d.api("POST", f"vms/{VM}/start", expect=200)
    pid = r.json["vm"]["pid"]
    t.check(r.json["vm"]["crash_reason"] in (None, ""),
            f"crash_reason of the last run still set while running: {r.json['vm']['crash_reason']!r}")
    time.sleep(1)
    since = d.console_next(VM)
    log(f"kill -9 {pid} with restart_policy on-crash")
    os.kill(pid, signal.SIGKILL)
    vm = d.wait_vm(VM, lambda v: v["state"] == "running" and v["pid"] not in (None, pid), 30,
                   "automatic restart after the crash")
    new_pid = vm["pid"]
    log(f"restarted as pid {new_pid}")
    t.check(vt.is_qemu(new_pid), f"restarted pid {new_pid} is not QEMU")
    t.check(not vt.proc_alive(pid), "killed QEMU is still alive")
    d.console_wait(VM, BOOT_LINE, since=since, timeout=BOOT_TIMEOUT)
    log("booted again after the automatic restart")

    # ---- delete: nothing left
    r = d.api("DELETE", f"vms/{VM}")
    t.expect_error(r, 409, "conflict", mentions=("running",), what="DELETE a running VM without force")
    r = d.api("DELETE", f"vms/{VM}?force=true", expect=200)
    t.check(r.json == {"deleted": VM}, f"DELETE body: {r.json}")
    t.check(vt.wait_gone([new_pid], 10), f"QEMU pid {new_pid} still alive after delete")
    t.check(d.api("GET", f"vms/{VM}").status == 404, "GET after delete is not 404")
    t.check(not d.qemu_pids(), f"QEMU processes left after delete: {d.qemu_pids()}")
    left = d.files() - files_before_vm
    t.check(not left, f"files left under the data dir after delete: {sorted(left)}")
    t.check(not os.path.exists(ov), f"disk overlay {ov} left after delete")
    uuid = vm["uuid"]
    named = [p for p in d.files() if VM in p or uuid in p]
    t.check(not named, f"paths naming the deleted VM left: {named}")
    t.check(not [s for s in d.sockets() if VM in s or uuid in s], f"sockets left: {d.sockets()}")
    t.check(d.api("GET", "images/base", expect=200).json["image"]["used_by"] == [],
            "image.used_by still names the deleted VM")

    # ---- the image can go now
    r = d.api("DELETE", "images/base", expect=200)
    t.check(r.json == {"deleted": "base"}, f"DELETE image body: {r.json}")
    t.check(not os.path.exists(stored), f"stored image {stored} left after delete")
    t.check(d.images() == [], f"images left: {d.images()}")


if __name__ == "__main__":
    vt.Test("lifecycle", limit=300).run(main)
