#!/usr/bin/env python3
"""concurrency: the API stays consistent when clients race each other.

- 8 clients create 10 VMs each at the same time (half over TCP): all 80 exist,
  once each, with distinct uuids;
- 8 clients create the same name at once: exactly one 201, the rest 409;
- 6 clients start the same VM at once: exactly one 200, the rest 409, and
  exactly one QEMU runs;
- 6 clients force-stop it at once: it ends stopped with no QEMU, every answer
  is 200 or 409;
- 8 clients delete all VMs at once: every VM is gone and so are its files.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402


def race(n, fn):
    """Run fn(i) in n threads released together; returns their results in order."""
    gate = threading.Barrier(n)
    out = [None] * n

    def run(i):
        try:
            gate.wait(10)
            out[i] = fn(i)
        except Exception as e:  # reported by the caller as a wrong result
            out[i] = e
    ths = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(60)
    return out


def status(r):
    return r.status if isinstance(r, vt.Response) else repr(r)


def main(t):
    vt.need_vesseld()
    d = t.daemon("conc").start()
    files0 = d.files()

    def make(i):
        c = d.tcp if i % 2 else d.unix
        return [c.post("vms", {"name": f"c{i}-{k}", "memory_mib": 64}) for k in range(10)]
    res = race(8, make)
    codes = [status(r) for rs in res for r in (rs if isinstance(rs, list) else [rs])]
    t.check(codes == [201] * 80, f"parallel creates: {sorted(set(map(str, codes)))}")
    vms = d.vms()
    names = [v["name"] for v in vms]
    t.check(len(names) == 80 and len(set(names)) == 80, f"{len(names)} VMs listed, {len(set(names))} distinct")
    t.check(len({v["uuid"] for v in vms}) == 80, "uuids are not distinct")
    t.check(names == sorted(names), "list not sorted by name")

    res = race(8, lambda i: d.unix.post("vms", {"name": "same", "memory_mib": 64}))
    codes = sorted(status(r) for r in res)
    t.check(codes == [201] + [409] * 7, f"8 creates of one name: {codes}")
    t.check(sum(1 for v in d.vms() if v["name"] == "same") == 1, "name 'same' listed more than once")

    # a BIOS VM without disks: SeaBIOS finds nothing to boot and idles; cheap under TCG
    d.api("POST", "vms", {"name": "racer", "memory_mib": 64}, expect=201)
    res = race(6, lambda i: d.unix.post("vms/racer/start", timeout=60))
    codes = sorted(status(r) for r in res)
    t.check(codes == [200] + [409] * 5, f"6 starts of one VM: {codes}")
    vm = d.vm("racer")
    t.check(vm["state"] == "running", f"after racing starts: {vm['state']}")
    qemus = d.qemu_pids()
    t.check(qemus == [vm["pid"]], f"QEMU processes {qemus}, VM pid {vm['pid']}")

    res = race(6, lambda i: d.unix.post("vms/racer/force-stop", timeout=60))
    codes = sorted(status(r) for r in res)
    t.check(set(codes) <= {200, 409} and 200 in codes, f"6 force-stops: {codes}")
    vm = d.vm("racer")
    t.check(vm["state"] == "stopped" and vm["pid"] is None, f"after racing force-stops: {vm}")
    t.check(vt.wait_gone(qemus, 10) and not d.qemu_pids(), f"QEMU left: {d.qemu_pids()}")

    names = [v["name"] for v in d.vms()]
    chunks = [names[i::8] for i in range(8)]
    res = race(8, lambda i: [d.unix.delete(f"vms/{n}") for n in chunks[i]])
    codes = [status(r) for rs in res for r in (rs if isinstance(rs, list) else [rs])]
    t.check(codes == [200] * len(names), f"parallel deletes: {sorted(set(map(str, codes)))}")
    t.check(d.vms() == [], f"VMs left: {len(d.vms())}")
    left = d.files() - files0
    t.check(not left, f"files left after deleting every VM: {sorted(left)[:10]}")
    t.check(d.alive(), "vesseld died")
    log(f"{len(names)} VMs raced through create/start/stop/delete")


if __name__ == "__main__":
    vt.Test("concurrency", limit=180).run(main)
