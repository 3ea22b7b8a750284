#!/usr/bin/env python3
"""retention: snapshot schedules and pruning with a controllable clock
(docs/backups.md "Schedules and retention", "Test clock").

vesseld runs with VESSEL_TEST_CLOCK pointing at a file holding the time in
epoch seconds; the test moves that time forward. A stopped VM gets a
schedule "every 1h, keep_count 3, keep_age 5h". After each move the set of
snapshots must be exactly what the policy computes (modelled here
independently: keep a snapshot when fewer than keep_count are newer and it
is at most keep_age old), pruning must be logged, every remaining image must
pass `qemu-img check` with an intact backing chain, and bad schedules (zero
interval, start in the past, impossible time, unknown field) are refused
with 400 and create nothing. A running VM with a full-snapshot schedule
(every 30m, keep_count 2) keeps running through the scheduled snapshots and
the live merges of pruning, and the surviving snapshot still reverts.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

VM = "ret-1"
T0 = 1798761600  # 2027-01-01T00:00:00Z
H = 3600


def set_clock(path, t):
    with open(path + ".tmp", "w") as f:
        f.write(str(t))
    os.rename(path + ".tmp", path)


def expected(created, now, keep_count, keep_age):
    keep = []
    for c in created:
        newer = sum(1 for o in created if o > c)
        if keep_count and newer >= keep_count:
            continue
        if keep_age and now - c > keep_age:
            continue
        keep.append(c)
    return sorted(keep)


def snap_times(d):
    snaps = d.api("GET", f"vms/{VM}/snapshots", expect=200).json["snapshots"]
    out = []
    for s in snaps:
        out.append(int(time.mktime(time.strptime(s["created_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone))
    return sorted(out), snaps


def main(t):
    vt.need_vesseld()
    kernel, initrd = vt.need_guest("vmlinuz", "initramfs.img")
    d = t.daemon("retention")
    clock = os.path.join(d.tmp, "clock")
    set_clock(clock, T0)
    os.environ["VESSEL_TEST_CLOCK"] = clock
    d.start()
    for src in (kernel, initrd):
        shutil.copyfile(src, os.path.join(d.import_dir, os.path.basename(src)))
    d.api("POST", "vms", {"name": VM, "memory_mib": 128,
                          "boot": {"firmware": "kernel", "kernel": os.path.join(d.import_dir, "vmlinuz"),
                                   "initrd": os.path.join(d.import_dir, "initramfs.img")},
                          "disks": [{"size_gib": 1}]}, expect=201)

    # -- bad schedules change nothing
    for what, body, mention in (
            ("zero interval", {"every": "0m"}, "zero"),
            ("start in the past", {"every": "1h", "start_at": "2026-12-31T23:00:00Z"}, "past"),
            ("impossible time", {"daily_at": "25:00"}, "daily_at"),
            ("both kinds", {"every": "1h", "daily_at": "01:00"}, "exactly one"),
            ("unknown field", {"every": "1h", "keep": 3}, "keep"),
            ("bad keep_age", {"every": "1h", "keep_age": "soon"}, "keep_age")):
        r = d.api("POST", f"vms/{VM}/schedules", body)
        t.expect_error(r, 400, "invalid_argument", [mention], f"schedule with {what}")
    t.check(d.api("GET", f"vms/{VM}/schedules", expect=200).json["schedules"] == [],
            "a refused schedule was stored")

    r = d.api("POST", f"vms/{VM}/schedules", {"every": "1h", "keep_count": 3, "keep_age": "5h"})
    t.require(r.status == 201, f"schedule: {r.short()}")
    sched = r.json["schedule"]
    t.check(sched["next_run"] == "2027-01-01T01:00:00Z", f"first run: {sched}")

    created = []
    for now in (T0 + 1 * H, T0 + 2 * H, T0 + 3 * H, T0 + 4 * H, T0 + 7 * H + 1800, T0 + 9 * H + 600,
                T0 + 9 * H + 900):
        set_clock(clock, now)
        # a run is due when now passed next_run (runs missed meanwhile are skipped)
        due = [s for s in [d.api("GET", f"vms/{VM}/schedules", expect=200).json["schedules"][0]]
               if s["next_run"] <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))]
        if due:
            created.append(now)
        want = expected(created, now, 3, 5 * H)
        end = time.monotonic() + 30
        while True:
            got, snaps = snap_times(d)
            if got == want:
                break
            if time.monotonic() > end:
                break
            time.sleep(0.2)
        t.check(got == want, f"at T0+{(now - T0) / H:.2f}h the snapshots are "
                             f"{[(g - T0) / H for g in got]}, the policy keeps {[(w - T0) / H for w in want]}")
        log(f"T0+{(now - T0) / H:.2f}h: kept {[round((g - T0) / H, 2) for g in got]}")
    logtext = open(d.log_path, errors="replace").read()
    t.check("pruned snapshot" in logtext, "pruning is not logged")

    # the chain the VM stands on is intact after all the merges
    vmdir = os.path.join(d.data_dir, "vms", VM)
    cur = d.vm(VM)["disks"][0]["path"] if "path" in d.vm(VM)["disks"][0] else None
    for f in sorted(os.listdir(vmdir)):
        if f.endswith(".qcow2"):
            p = os.path.join(vmdir, f)
            r = subprocess.run(["qemu-img", "check", "-U", p], capture_output=True, text=True)
            t.check(r.returncode == 0, f"qemu-img check {f}: {r.stdout} {r.stderr}")
    nfiles = len([f for f in os.listdir(vmdir) if f.endswith(".qcow2")])
    t.check(nfiles == len(got) + 1, f"{nfiles} image files for {len(got)} snapshots plus the current disk")
    del cur

    # -- a running VM with a full-snapshot schedule: snapshots through QMP,
    # pruning by live block-stream, and the survivors still revert
    d.api("POST", "vms", {"name": "ret-2", "memory_mib": 128,
                          "boot": {"firmware": "kernel", "kernel": os.path.join(d.import_dir, "vmlinuz"),
                                   "initrd": os.path.join(d.import_dir, "initramfs.img"),
                                   "cmdline": "console=ttyS0 quiet"},
                          "disks": [{"size_gib": 1}]}, expect=201)
    d.api("POST", "vms/ret-2/start", expect=200)
    d.console_wait("ret-2", b"VESSEL-GUEST-READY", timeout=120)
    base = T0 + 20 * H
    set_clock(clock, base)
    r = d.api("POST", "vms/ret-2/schedules", {"every": "30m", "type": "full", "keep_count": 2, "keep_age": "0"})
    t.require(r.status == 201, f"full schedule: {r.short()}")
    pid = d.vm("ret-2")["pid"]
    for k in (1, 2, 3, 4):
        set_clock(clock, base + k * 1800)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            snaps = d.api("GET", "vms/ret-2/snapshots", expect=200).json["snapshots"]
            if (snaps and max(x["created_at"] for x in snaps) == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + k * 1800))
                    and len(snaps) == min(k, 2)):
                break
            time.sleep(0.3)
    snaps = d.api("GET", "vms/ret-2/snapshots", expect=200).json["snapshots"]
    want = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + k * 1800)) for k in (3, 4)]
    t.check([s["created_at"] for s in snaps] == want and all(s["type"] == "full" for s in snaps),
            f"running VM, keep_count 2: {[(s['name'], s['type'], s['created_at']) for s in snaps]}")
    vm = d.vm("ret-2")
    t.check(vm["state"] == "running" and vm["pid"] == pid, f"the VM after scheduled full snapshots: {vm}")
    d.console_run("ret-2", "echo ALIVE-$((6*7))", "ALIVE-42", timeout=60)
    if snaps:
        r = d.api("POST", f"vms/ret-2/snapshots/{snaps[0]['name']}/revert", {"stop": True}, timeout=120)
        t.check(r.status == 200 and r.json.get("resumed") is True, f"revert to a pruned-around snapshot: {r.short()}")
        d.console_run("ret-2", "echo BACK-$((6*7))", "BACK-42", timeout=60)
    d.api("POST", "vms/ret-2/force-stop", expect=200)
    vmdir2 = os.path.join(d.data_dir, "vms", "ret-2")
    for f in sorted(os.listdir(vmdir2)):
        if f.endswith(".qcow2"):
            r = subprocess.run(["qemu-img", "check", "-U", os.path.join(vmdir2, f)], capture_output=True, text=True)
            t.check(r.returncode == 0, f"qemu-img check ret-2/{f}: {r.stdout} {r.stderr}")
    d.api("DELETE", "vms/ret-2?snapshots=delete", expect=200)

    sid = sched["id"]
    d.api("DELETE", f"vms/{VM}/schedules/{sid}", expect=200)
    t.check(d.api("GET", f"vms/{VM}/schedules", expect=200).json["schedules"] == [], "schedule not deleted")
    d.api("DELETE", f"vms/{VM}?snapshots=delete", expect=200)


if __name__ == "__main__":
    vt.Test("retention", limit=300).run(main)
