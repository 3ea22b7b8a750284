#!/usr/bin/env python3
"""admission: host capacity x overcommit ratios and project quotas (docs/operations.md
"Capacity, overcommit and quotas").

vesseld runs with a small configured capacity (--capacity-cpus 2 --capacity-memory-mib 512,
CPU ratio 2:1, memory 1:1: 4 vCPUs and 512 MiB allocatable) so every boundary is reached
with small kernel-boot guests:
  - host vCPUs and memory: exactly at the allocatable amount starts, one over is refused
    with 409 insufficient_capacity carrying asked/used/capacity/ratio/allocatable, and the
    refused VM stays stopped with no QEMU;
  - a VM that could never fit is refused at create, and nothing is created;
  - two concurrent starts racing for the last slot: exactly one wins;
  - ratios: memory above 4:1 is refused (API 422, and vesseld refuses to start with it);
  - each project quota dimension (vms, vcpus, memory_mib, disk_gib): exactly at the quota
    is created, one over is refused with 409 quota_exceeded carrying the numbers, nothing
    created; PATCH moving a stopped VM into a full project is refused, into one with room
    works; a running VM cannot change project but its priority can change;
  - projects: default cannot be deleted, a project with VMs cannot be deleted.
"""
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

CAP = ["--capacity-cpus", "2", "--capacity-memory-mib", "512", "--cpu-ratio", "2",
       "--memory-ratio", "1", "--cgroup-root", "none"]


def kvm(d, name, vcpus, mem, **extra):
    body = {"name": name, "vcpus": vcpus, "memory_mib": mem,
            "boot": {"firmware": "kernel", "kernel": d.kernel, "initrd": d.initrd,
                     "cmdline": "console=ttyS0 panic=-1"}}
    body.update(extra)
    return d.api("POST", "vms", body)


def nothing_created(t, d, name, what):
    t.check(d.api("GET", f"vms/{name}").status == 404, f"{what}: VM {name} exists after refusal")
    t.check(not os.path.exists(os.path.join(d.data_dir, "vms", name)),
            f"{what}: directory of {name} left after refusal")


def expect_host_refusal(t, r, dim, asked, used, capacity, ratio, allocatable, what):
    t.expect_error(r, 409, "insufficient_capacity", mentions=(str(asked), str(used)), what=what)
    e = r.json.get("error", {}) if r.is_json else {}
    got = {k: e.get(k) for k in ("dimension", "asked", "used", "capacity", "ratio", "allocatable")}
    want = {"dimension": dim, "asked": asked, "used": used, "capacity": capacity, "ratio": ratio,
            "allocatable": allocatable}
    t.check(got == want, f"{what}: refusal numbers {got}, expected {want}")


def expect_quota_refusal(t, r, project, dim, asked, used, quota, what):
    t.expect_error(r, 409, "quota_exceeded", mentions=(project,), what=what)
    e = r.json.get("error", {}) if r.is_json else {}
    got = {k: e.get(k) for k in ("project", "dimension", "asked", "used", "quota")}
    want = {"project": project, "dimension": dim, "asked": asked, "used": used, "quota": quota}
    t.check(got == want, f"{what}: refusal numbers {got}, expected {want}")


def host_boundaries(t, d):
    cap = d.api("GET", "host/capacity", expect=200).json["capacity"]
    t.check(cap["vcpus"]["capacity"] == 2 and cap["vcpus"]["ratio"] == 2 and cap["vcpus"]["allocatable"] == 4
            and cap["vcpus"]["used"] == 0 and cap["vcpus"]["free"] == 4, f"vcpus capacity: {cap['vcpus']}")
    t.check(cap["memory_mib"]["capacity"] == 512 and cap["memory_mib"]["allocatable"] == 512,
            f"memory capacity: {cap['memory_mib']}")
    t.check(cap["vcpus"]["detected"] == os.cpu_count(), f"detected CPUs {cap['vcpus']['detected']}")

    # a VM that could never run here: refused at create, nothing left
    r = kvm(d, "huge", 5, 64)
    expect_host_refusal(t, r, "vcpus", 5, 0, 2, 2, 4, "create with 5 vCPUs on 4 allocatable")
    nothing_created(t, d, "huge", "create over capacity")
    r = kvm(d, "fat", 1, 513)
    expect_host_refusal(t, r, "memory_mib", 513, 0, 512, 1, 512, "create with 513 MiB on 512")
    nothing_created(t, d, "fat", "create over memory")

    for name, vcpus, mem in (("a", 2, 128), ("b", 2, 128), ("c", 1, 64), ("m-over", 1, 385),
                             ("m-at", 1, 384), ("x", 2, 64), ("y", 2, 64)):
        r = kvm(d, name, vcpus, mem)
        t.require(r.status == 201, f"create {name}: {r.short()}")
    # stopped VMs do not count against the host
    cap = d.api("GET", "host/capacity", expect=200).json["capacity"]
    t.check(cap["vcpus"]["used"] == 0, f"stopped VMs counted against the host: {cap['vcpus']}")

    d.api("POST", "vms/a/start", expect=200)
    d.api("POST", "vms/b/start", expect=200)  # 4 of 4 vCPUs: exactly at capacity
    cap = d.api("GET", "host/capacity", expect=200).json["capacity"]
    t.check(cap["vcpus"]["used"] == 4 and cap["vcpus"]["free"] == 0 and cap["memory_mib"]["used"] == 256,
            f"after a and b: {cap}")
    r = d.api("POST", "vms/c/start")
    expect_host_refusal(t, r, "vcpus", 1, 4, 2, 2, 4, "start one vCPU over")
    t.check(d.vm("c")["state"] == "stopped" and d.vm("c")["pid"] is None, f"refused VM: {d.vm('c')}")
    log("vCPU boundary: 4/4 started, the 5th refused")

    d.api("POST", "vms/b/force-stop", expect=200)
    # memory: a holds 128 MiB, 384 more is exactly 512
    r = d.api("POST", "vms/m-over/start")
    expect_host_refusal(t, r, "memory_mib", 385, 128, 512, 1, 512, "start 1 MiB over memory")
    t.check(d.vm("m-over")["state"] == "stopped", "refused VM is not stopped")
    d.api("POST", "vms/m-at/start", expect=200)
    cap = d.api("GET", "host/capacity", expect=200).json["capacity"]
    t.check(cap["memory_mib"]["used"] == 512 and cap["memory_mib"]["free"] == 0, f"memory at capacity: {cap}")
    log("memory boundary: 512/512 started, 1 MiB more refused")
    d.api("POST", "vms/m-at/force-stop", expect=200)

    # the last slot: a holds 2 vCPUs, x and y want 2 each; only one may win
    results = {}

    def start(name):
        results[name] = d.unix.request("POST", f"/api/v1/vms/{name}/start", timeout=120)

    th = [threading.Thread(target=start, args=(n,)) for n in ("x", "y")]
    for x in th:
        x.start()
    for x in th:
        x.join()
    codes = sorted(r.status for r in results.values())
    t.check(codes == [200, 409], f"two starts at the last slot: {[(n, r.short()) for n, r in results.items()]}")
    loser = [n for n, r in results.items() if r.status == 409]
    if loser:
        expect_host_refusal(t, results[loser[0]], "vcpus", 2, 4, 2, 2, 4, "concurrent start loser")
    running = [v["name"] for v in d.vms() if v["state"] == "running"]
    t.check(len(running) == 2 and "a" in running, f"running after the race: {running}")
    log(f"race at the last slot: {codes}")

    # ratios: memory above 4:1 refused, CPU raised live
    r = d.api("PATCH", "host/capacity", {"memory_ratio": 4.5})
    t.expect_error(r, 422, "invalid_ratio", mentions=("4:1",), what="memory ratio 4.5")
    r = d.api("PATCH", "host/capacity", {"memory_ratio": 0})
    t.expect_error(r, 422, "invalid_ratio", what="memory ratio 0")
    r = d.api("PATCH", "host/capacity", {"cpu_ratio": "lots"})
    t.expect_error(r, 400, "invalid_argument", mentions=("cpu_ratio",), what="cpu ratio string")
    r = d.api("PATCH", "host/capacity", {"memory_ratio": 4})
    t.check(r.status == 200 and r.json["capacity"]["memory_mib"]["allocatable"] == 2048,
            f"memory ratio 4: {r.short()}")
    r = d.api("PATCH", "host/capacity", {"cpu_ratio": 3, "memory_ratio": 1}, expect=200)
    t.check(r.json["capacity"]["vcpus"]["allocatable"] == 6, f"cpu ratio 3: {r.json}")
    r = d.api("POST", "vms/c/start")
    t.check(r.status == 200, f"after raising the CPU ratio, c starts: {r.short()}")
    for v in d.vms():
        if v["state"] == "running":
            d.api("POST", f"vms/{v['name']}/force-stop", expect=200)
    for v in d.vms():
        d.api("DELETE", f"vms/{v['name']}", expect=200)


def quotas(t, d):
    r = d.api("POST", "projects", {"name": "Bad_Name"})
    t.expect_error(r, 400, "invalid_argument", mentions=("name",), what="project bad name")
    r = d.api("POST", "projects", {"name": "p", "quotas": {"cpus": 1}})
    t.expect_error(r, 400, "invalid_argument", mentions=("cpus",), what="unknown quota")
    r = d.api("POST", "projects", {"name": "p", "quotas": {"vcpus": -1}})
    t.expect_error(r, 400, "invalid_argument", mentions=("vcpus",), what="negative quota")
    t.check([p["name"] for p in d.api("GET", "projects", expect=200).json["projects"]] == ["default"],
            "refused project creates left something")
    r = kvm(d, "nowhere", 1, 64, project="nope")
    t.expect_error(r, 400, "invalid_argument", mentions=("nope",), what="VM in a missing project")
    nothing_created(t, d, "nowhere", "missing project")

    cases = [  # project, quota, VMs that fit exactly, the one over, (dim, asked, used, quota)
        ("q-vms", {"vms": 2}, [(1, 64, 0), (1, 64, 0)], (1, 64, 0), ("vms", 1, 2, 2)),
        ("q-cpu", {"vcpus": 3}, [(2, 64, 0), (1, 64, 0)], (1, 64, 0), ("vcpus", 1, 3, 3)),
        ("q-mem", {"memory_mib": 256}, [(1, 128, 0), (1, 128, 0)], (1, 16, 0), ("memory_mib", 16, 256, 256)),
        ("q-disk", {"disk_gib": 2}, [(1, 64, 1), (1, 64, 1)], (1, 64, 1), ("disk_gib", 1, 2, 2)),
    ]
    for proj, quota, fit, over, (dim, asked, used, q) in cases:
        r = d.api("POST", "projects", {"name": proj, "description": f"quota {quota}", "quotas": quota},
                  expect=201)
        p = r.json["project"]
        for k in ("vms", "vcpus", "memory_mib", "disk_gib"):
            t.check(p["quotas"][k] == quota.get(k), f"{proj} quota {k}: {p['quotas']}")
        for i, (vc, mem, disk) in enumerate(fit):
            extra = {"project": proj}
            if disk:
                extra["disks"] = [{"size_gib": disk}]
            r = kvm(d, f"{proj}-{i}", vc, mem, **extra)
            t.check(r.status == 201, f"{proj}: VM {i} within quota refused: {r.short()}")
        vc, mem, disk = over
        extra = {"project": proj}
        if disk:
            extra["disks"] = [{"size_gib": disk}]
        r = kvm(d, f"{proj}-over", vc, mem, **extra)
        expect_quota_refusal(t, r, proj, dim, asked, used, q, f"{proj}: one over")
        nothing_created(t, d, f"{proj}-over", f"{proj} over quota")
        u = d.api("GET", f"projects/{proj}", expect=200).json["project"]["usage"]
        t.check(u[dim] == used and u["vms"] == 2, f"{proj} usage after refusal: {u}")
        log(f"quota {dim}: {used}/{q} created, one over refused")

    # PATCH: growing a VM past its project's quota
    r = d.api("PATCH", "vms/q-cpu-1", {"vcpus": 2})
    expect_quota_refusal(t, r, "q-cpu", "vcpus", 1, 3, 3, "PATCH vcpus over quota (asks for the growth)")
    t.check("1 more vCPUs" in r.error_message, f"the growth is named as such: {r.error_message}")
    t.check(d.vm("q-cpu-1")["vcpus"] == 1, "refused PATCH changed the VM")
    # a quota lowered below usage: growth is refused, other changes are not
    d.api("PATCH", "projects/q-cpu", {"quotas": {"vcpus": 2}}, expect=200)
    r = d.api("PATCH", "vms/q-cpu-1", {"description": "still fine"})
    t.check(r.status == 200, f"description change in an over-quota project: {r.short()}")
    r = d.api("PATCH", "vms/q-cpu-1", {"memory_mib": 128})
    t.check(r.status == 200, f"memory change without a memory quota in an over-quota project: {r.short()}")
    r = kvm(d, "q-cpu-late", 1, 64, project="q-cpu")
    expect_quota_refusal(t, r, "q-cpu", "vcpus", 1, 3, 2, "create in a project over its lowered quota")
    d.api("PATCH", "projects/q-cpu", {"quotas": {"vcpus": 3}}, expect=200)

    # PATCH: moving a stopped VM into a full project, then into one with room
    r = kvm(d, "mover", 1, 64)
    t.require(r.status == 201, f"create mover: {r.short()}")
    t.check(d.vm("mover")["project"] == "default" and d.vm("mover")["priority"] == "P2",
            f"defaults: {d.vm('mover')}")
    r = d.api("PATCH", "vms/mover", {"project": "q-vms"})
    expect_quota_refusal(t, r, "q-vms", "vms", 1, 2, 2, "move into a full project")
    t.check(d.vm("mover")["project"] == "default", "refused move changed the project")
    d.api("PATCH", "projects/q-vms", {"quotas": {"vms": 3}}, expect=200)
    r = d.api("PATCH", "vms/mover", {"project": "q-vms"})
    t.check(r.status == 200 and r.json["vm"]["project"] == "q-vms", f"move with room: {r.short()}")
    # running: project cannot change, priority can
    d.api("POST", "vms/mover/start", expect=200)
    r = d.api("PATCH", "vms/mover", {"project": "default"})
    t.expect_error(r, 409, "conflict", mentions=("stop",), what="move a running VM")
    r = d.api("PATCH", "vms/mover", {"priority": "P0"})
    t.check(r.status == 200 and r.json["vm"]["priority"] == "P0", f"live priority change: {r.short()}")
    r = d.api("PATCH", "vms/mover", {"priority": "P9"})
    t.expect_error(r, 400, "invalid_argument", mentions=("P9",), what="bad priority")
    d.api("POST", "vms/mover/force-stop", expect=200)

    # deleting projects
    r = d.api("DELETE", "projects/default")
    t.expect_error(r, 409, "conflict", mentions=("default",), what="delete default")
    r = d.api("DELETE", "projects/q-vms")
    t.expect_error(r, 409, "conflict", mentions=("3 VMs",), what="delete a project with VMs")
    d.api("POST", "projects", {"name": "empty"}, expect=201)
    r = d.api("DELETE", "projects/empty", expect=200)
    t.check(d.api("GET", "projects/empty").status == 404, "deleted project still there")

    # projects, quotas and the ratio set through the API survive a restart
    # (started without --cpu-ratio: a ratio given on the command line wins)
    d.stop()
    d.extra_args = ["--capacity-cpus", "2", "--capacity-memory-mib", "512", "--cgroup-root", "none"]
    d.start()
    p = d.api("GET", "projects/q-mem", expect=200).json["project"]
    t.check(p["quotas"]["memory_mib"] == 256 and p["quotas"]["vms"] is None and p["usage"]["memory_mib"] == 256,
            f"q-mem after restart: {p}")
    t.check(d.vm("mover")["project"] == "q-vms" and d.vm("mover")["priority"] == "P0",
            f"mover after restart: {d.vm('mover')}")
    cap = d.api("GET", "host/capacity", expect=200).json["capacity"]
    t.check(cap["vcpus"]["ratio"] == 3, f"CPU ratio set through the API not kept: {cap['vcpus']}")


def bad_ratio_option(t, d):
    r = subprocess.run([vt.VESSELD, "--data-dir", os.path.join(d.tmp, "other"), "--socket", "none",
                        "--listen", "none", "--memory-ratio", "5"], capture_output=True, text=True,
                       timeout=30)
    out = r.stdout + r.stderr
    t.check(r.returncode != 0 and "4:1" in out, f"vesseld --memory-ratio 5: rc {r.returncode}: {out[-400:]}")


def cli(t, d):
    """The CLI over the same daemon: project and host capacity commands, errors as sentences."""
    exe = os.path.join(vt.BUILD, "src", "cli", "vessel")
    if not os.access(exe, os.X_OK):
        t.note(f"{exe} missing: CLI part skipped")
        return

    def run(*args):
        p = subprocess.run([exe, "--socket", d.sock] + list(args), capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    rc, out, err = run("project", "create", "cli-team", "--max-vms", "1", "--max-memory", "1G")
    t.check(rc == 0 and "cli-team" in out and "0/1" in out, f"project create: {rc} {out} {err}")
    rc, out, err = run("vm", "create", "cli-a", "--project", "cli-team", "--priority", "P1", "--memory", "64M")
    t.check(rc == 0, f"vm create --project: {rc} {out} {err}")
    rc, out, err = run("vm", "create", "cli-b", "--project", "cli-team", "--memory", "64M")
    t.check(rc == 1 and "quota of project 'cli-team'" in err, f"vm create over quota: {rc} {out} {err}")
    rc, out, err = run("vm", "list")
    line = [l for l in out.splitlines() if l.startswith("cli-a ")]
    t.check(rc == 0 and "PROJECT" in out and line and "cli-team" in line[0] and "P1" in line[0],
            f"vm list shows project and priority: {out}")
    rc, out, err = run("project", "list")
    t.check(rc == 0 and any(l.startswith("cli-team") and "1/1" in l for l in out.splitlines()),
            f"project list: {out}")
    rc, out, err = run("project", "delete", "cli-team")
    t.check(rc == 1 and "still has 1 VM" in err, f"project delete with a VM: {rc} {err}")
    rc, out, err = run("host", "capacity")
    t.check(rc == 0 and out.startswith("RESOURCE") and "vcpus" in out and "3:1" in out, f"host capacity: {out} {err}")
    rc, out, err = run("host", "capacity", "--memory-ratio", "5")
    t.check(rc == 1 and "4:1" in err, f"host capacity --memory-ratio 5: {rc} {err}")
    rc, out, err = run("host", "capacity", "--cpu-ratio", "lots")
    t.check(rc != 0 and "cpu-ratio" in err, f"host capacity --cpu-ratio lots: {rc} {err}")
    run("vm", "delete", "cli-a")
    rc, out, err = run("project", "delete", "cli-team")
    t.check(rc == 0, f"project delete: {rc} {err}")


def main(t):
    vt.need_vesseld()
    kernel_src, initrd_src = vt.need_guest("vmlinuz", "initramfs.img")
    d = t.daemon("admit", extra_args=CAP).start()
    d.kernel = os.path.join(d.import_dir, "vmlinuz")
    d.initrd = os.path.join(d.import_dir, "initramfs.img")
    shutil.copyfile(kernel_src, d.kernel)
    shutil.copyfile(initrd_src, d.initrd)
    host_boundaries(t, d)
    quotas(t, d)
    cli(t, d)
    bad_ratio_option(t, d)


if __name__ == "__main__":
    vt.Test("admission", limit=400).run(main)
