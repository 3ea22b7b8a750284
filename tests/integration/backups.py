#!/usr/bin/env python3
"""backups: full and incremental backups of a running VM, verify, restore,
a restore drill, and the failure cases (docs/backups.md).

The kernel+initramfs guest has a 1 GiB blank qcow2 data disk. It writes
random data; the VM is paused, its disk captured with qemu-img (the "disk at
this point"), a full backup taken (QEMU backup job, dirty bitmap started),
resumed. The guest changes 4 MiB; pause, capture, incremental backup. Both
backups are restored to new VMs and `qemu-img compare` must find each
restored disk identical to its capture (and the two captures different);
the incremental must have copied a small fraction of the disk. One byte of a
chunk only the incremental uses is flipped: verify names that chunk, and a
restore of it fails naming it and creates nothing. A restore drill of the
full backup boots a temporary VM to its boot line and records RTO and RPO,
shown per VM; the temporary VM is gone afterwards. A read-only store (tmpfs
remounted ro) is refused with 409 before anything starts; a full store (a
tiny tmpfs) fails the backup, leaves no backup marked good, and the VM keeps
running. Deleting the VM asks what to do with its backups.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

VM = "bk-1"
READY = b"VESSEL-GUEST-READY"
BOOT_TIMEOUT = 120


def guest_dd(d, seek_mib, count_mib, tag):
    d.console_run(VM, f"dd if=/dev/urandom of=/dev/vda bs=1M seek={seek_mib} count={count_mib} "
                      f"conv=fsync 2>/dev/null; echo DD-$?-{tag}", f"DD-0-{tag}", timeout=120)


def capture(d, out):
    """The VM's disk as it is now (the VM is paused), through its backing chain."""
    disk = d.vm(VM)["disks"][0]
    src = os.path.join(d.data_dir, "vms", VM, "disk0.qcow2")
    r = subprocess.run(["qemu-img", "convert", "-U", "-O", "qcow2", src, out],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise vt.Failure(f"capturing {src} ({disk}): {r.stderr}")


def backup(d, t, mode=None):
    body = {"vm": VM}
    if mode:
        body["mode"] = mode
    r = d.api("POST", "backups", body)
    t.require(r.status == 202, f"POST /backups: {r.short()}")
    task, progress = d.wait_task(r.json["task"], 600)
    return r.json["backup"], task, progress


def compare(a, b):
    r = subprocess.run(["qemu-img", "compare", "-U", a, b], capture_output=True, text=True, timeout=300)
    return r.returncode, (r.stdout + r.stderr).strip()


def check_image(t, p):
    r = subprocess.run(["qemu-img", "check", "-U", p], capture_output=True, text=True, timeout=120)
    t.check(r.returncode == 0, f"qemu-img check {p}: {r.stdout.strip()} {r.stderr.strip()}")


def restore(d, bid, name):
    r = d.api("POST", f"backups/{bid}/restore", {"vm": name})
    if r.status != 202:
        raise vt.Failure(f"restore of {bid}: {r.short()}")
    return d.wait_task(r.json["task"], 600)[0]


def try_mount(path, opts):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path], capture_output=True, text=True)
    return r.returncode == 0


def main(t):
    vt.need_vesseld()
    kernel, initrd = vt.need_guest("vmlinuz", "initramfs.img")
    d = t.daemon("backups")
    store = os.path.join(d.tmp, "store")
    d.extra_args += ["--backup-store", store]
    d.start()
    d.kernel_vm(VM, kernel, initrd, disks=[{"size_gib": 1}])
    d.api("POST", f"vms/{VM}/start", expect=200)
    d.console_wait(VM, READY, timeout=BOOT_TIMEOUT)
    disk_size = 1 << 30

    # -- full backup at point 1
    guest_dd(d, 10, 8, "one")
    cap1, cap2 = os.path.join(d.tmp, "cap1.qcow2"), os.path.join(d.tmp, "cap2.qcow2")
    d.api("POST", f"vms/{VM}/pause", expect=200)
    capture(d, cap1)
    b1, task, progress = backup(d, t)
    d.api("POST", f"vms/{VM}/resume", expect=200)
    t.require(task["state"] == "succeeded", f"full backup task: {task}")
    t.check(task["kind"] == "backup" and len(progress) >= 2, f"backup task/progress: {task} {progress}")
    m1 = d.api("GET", f"backups/{b1}", expect=200).json["backup"]
    t.check(m1["kind"] == "full" and m1["vm"] == VM, f"first backup: {m1}")

    # -- incremental at point 2
    guest_dd(d, 300, 4, "two")
    d.api("POST", f"vms/{VM}/pause", expect=200)
    capture(d, cap2)
    b2, task, _ = backup(d, t)
    d.api("POST", f"vms/{VM}/resume", expect=200)
    t.require(task["state"] == "succeeded", f"incremental backup task: {task}")
    m2 = d.api("GET", f"backups/{b2}", expect=200).json["backup"]
    t.check(m2["kind"] == "incremental" and m2["parent"] == b1, f"second backup: {m2}")
    frac = m2["bytes_copied"] / disk_size
    log(f"full backup copied {m1['bytes_copied']} bytes, stored {m1['bytes_new']} new; "
        f"incremental copied {m2['bytes_copied']} of {disk_size} bytes ({frac:.2%}), "
        f"{m2['disks'][0]['changed_chunks']} of {m2['disks'][0]['chunks']} chunks changed, "
        f"{m2['bytes_new']} bytes new in the store")
    t.note(f"incremental backup copied {m2['bytes_copied']} of {disk_size} bytes ({frac:.2%})")
    t.check(0 < m2["bytes_copied"] <= 16 << 20, f"incremental copied {m2['bytes_copied']} bytes")
    t.check(m2["disks"][0]["changed_chunks"] <= 3, f"changed chunks: {m2['disks'][0]}")

    # -- restore both, compare with the captures
    rc, out = compare(cap1, cap2)
    t.check(rc == 1, f"the two captures should differ: {rc} {out}")
    for bid, name, cap in ((b1, "r-full", cap1), (b2, "r-inc", cap2)):
        task = restore(d, bid, name)
        t.require(task["state"] == "succeeded", f"restore {bid} -> {name}: {task}")
        vm = d.vm(name)
        t.check(vm["state"] == "stopped" and vm["disks"][0]["size_bytes"] == disk_size, f"{name}: {vm}")
        path = os.path.join(d.data_dir, "vms", name, "disk0.qcow2")
        check_image(t, path)
        rc, out = compare(cap, path)
        t.check(rc == 0, f"qemu-img compare {cap} {path}: {out}")
        log(f"restore of {bid} into {name}: qemu-img compare says: {out}")

    # -- verify, then corrupt one chunk only the incremental uses
    v = d.api("POST", f"backups/{b2}/verify", expect=200).json
    t.check(v["ok"] is True and v["chunks"] == disk_size // (4 << 20), f"verify of a good backup: {v}")
    man1 = json.load(open(os.path.join(store, "backups", b1, "manifest.json")))
    man2 = json.load(open(os.path.join(store, "backups", b2, "manifest.json")))
    c1, c2 = man1["disks"][0]["chunks"], man2["disks"][0]["chunks"]
    idx = next(i for i in range(len(c2)) if c2[i] != c1[i] and c2.count(c2[i]) == 1)
    bad = c2[idx]
    cpath = os.path.join(store, "chunks", bad[:2], bad)
    with open(cpath, "r+b") as f:
        f.seek(12345)
        b = f.read(1)
        f.seek(12345)
        f.write(bytes([b[0] ^ 0x01]))
    v = d.api("POST", f"backups/{b2}/verify", expect=200).json
    t.check(v["ok"] is False and v.get("bad", {}).get("chunk") == idx and v["bad"]["sha256"] == bad,
            f"verify after flipping a byte in chunk {idx} ({bad}): {v}")
    t.check(bad in v.get("message", ""), f"verify message does not name the chunk: {v}")
    log(f"verify after the flip: {v.get('message')}")
    v1 = d.api("POST", f"backups/{b1}/verify", expect=200).json
    t.check(v1["ok"] is True, f"the full backup does not use that chunk and must still verify: {v1}")
    before = d.files()
    task = restore(d, b2, "r-bad")
    t.check(task["state"] == "failed" and bad in (task.get("error") or "") and str(idx) in task["error"],
            f"restore of a damaged backup: {task}")
    t.check(d.api("GET", "vms/r-bad").status == 404, "a refused restore created a VM")
    t.check(d.files() == before, f"a refused restore left files: {sorted(d.files() ^ before)}")

    # -- restore drill
    r = d.api("POST", f"backups/{b1}/drill", {"boot_line": "VESSEL-GUEST-READY", "timeout_s": 180})
    t.require(r.status == 202, f"drill: {r.short()}")
    tmp_vm = r.json["vm"]
    task, _ = d.wait_task(r.json["task"], 400)
    t.check(task["state"] == "succeeded" and task["kind"] == "restore_drill", f"drill task: {task}")
    drills = d.api("GET", f"vms/{VM}/drills", expect=200).json["drills"]
    t.check(len(drills) == 1 and drills[0]["result"] == "passed" and drills[0]["rto_s"] > 0
            and drills[0]["rpo_s"] >= 0 and drills[0]["backup"] == b1, f"drill results: {drills}")
    if drills:
        log(f"restore drill: RTO {drills[0]['rto_s']:.1f} s, RPO {drills[0]['rpo_s']} s")
        t.note(f"restore drill RTO {drills[0]['rto_s']:.1f} s, RPO {drills[0]['rpo_s']} s")
    t.check(d.api("GET", f"vms/{tmp_vm}").status == 404, f"drill VM {tmp_vm} was not deleted")

    # -- read-only and full stores
    ro, full = os.path.join(d.tmp, "ro-store"), os.path.join(d.tmp, "full-store")
    if not try_mount(ro, "size=16m") or not try_mount(full, "size=6m"):
        t.note("tmpfs mounts unavailable: read-only and full store cases skipped")
    else:
        try:
            subprocess.run(["mount", "-o", "remount,ro", ro], check=True)
            pid = d.vm(VM)["pid"]
            d.stop()
            d.extra_args[-1] = ro
            d.start()
            r = d.api("POST", "backups", {"vm": VM})
            t.expect_error(r, 409, "store_unavailable", ["read-only", ro], "backup to a read-only store")
            guest_dd(d, 500, 12, "three")
            d.stop()
            d.extra_args[-1] = full
            d.start()
            b3, task, _ = backup(d, t)
            t.check(task["state"] == "failed" and "full" in (task.get("error") or ""),
                    f"backup to a full store: {task}")
            log(f"backup to a full store: {task.get('error')}")
            t.check(d.api("GET", "backups", expect=200).json["backups"] == [],
                    "a failed backup is listed")
            t.check(not os.listdir(os.path.join(full, "backups")), "a failed backup left a manifest")
            vm = d.vm(VM)
            t.check(vm["state"] == "running" and vm["pid"] == pid, f"the VM after a failed backup: {vm}")
            d.console_run(VM, "echo STILL-$((6*7))", "STILL-42", timeout=60)
            d.stop()
            d.extra_args[-1] = store
            d.start()
        finally:
            for p in (ro, full):
                subprocess.run(["umount", p], capture_output=True)

    # -- deleting the VM asks about its backups
    r = d.api("DELETE", f"vms/{VM}?force=true")
    t.expect_error(r, 409, "conflict", ["backup", "backups=keep"], "delete a VM with backups")
    d.api("DELETE", f"vms/{VM}?force=true&backups=keep", expect=200)
    t.check(len(d.api("GET", f"backups?vm={VM}", expect=200).json["backups"]) == 2,
            "backups=keep removed backups")
    for name in ("r-full", "r-inc"):
        d.api("DELETE", f"vms/{name}", expect=200)


if __name__ == "__main__":
    vt.Test("backups", limit=1200).run(main)
