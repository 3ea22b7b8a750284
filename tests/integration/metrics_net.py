#!/usr/bin/env python3
"""metrics_net: a VM's NIC counters in GET /metrics move when the guest does network work.

vesseld runs inside a network namespace (tests/integration/lib/nettest.py), so the
NAT network's bridge, the VM's tap and dnsmasq never touch the real host. A kernel-boot
VM with one NIC gets a DHCP lease and pings its gateway 20 times with 1000-byte
payloads; the scrape must then show, for that tap (interface label = the tap named in
GET /vms/NAME), transmit and receive packets grown by at least 20 and bytes by at least
20 x 1000, drop counters present, and the output still accepted by promtool.
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import nettest as nt  # noqa: E402
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

VM = "netm-1"
FAMS = ("receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets",
        "receive_drops", "transmit_drops")


def scrape(t, d):
    r = d.unix.get("/metrics")
    t.require(r.status == 200, f"GET /metrics: {r.short()}")
    tool = shutil.which("promtool")
    if tool:
        p = subprocess.run([tool, "check", "metrics"], input=r.body, capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode(errors="replace").strip()
        t.check(p.returncode == 0 and not out, f"promtool check metrics: {out}")
    return r.body.decode()


def counters(text, tap):
    got = {}
    for f in FAMS:
        m = re.search(r'^vessel_vm_network_%s_total\{name="%s",interface="%s"\} (\S+)$' % (f, VM, tap),
                      text, re.M)
        got[f] = float(m.group(1)) if m else None
    return got


def main(t):
    vt.need_vesseld()
    nt.need_netns()
    kernel_src, initrd_src = vt.need_guest("vmlinuz", "initramfs.img")
    lab = nt.NetLab("m")
    try:
        host = lab.netns("host")
        d = nt.NetDaemon("netm", host)
        t.daemons.append(d)
        d.start()
        kernel = os.path.join(d.import_dir, "vmlinuz")
        initrd = os.path.join(d.import_dir, "initramfs.img")
        shutil.copyfile(kernel_src, kernel)
        shutil.copyfile(initrd_src, initrd)
        d.api("POST", "networks", {"name": "natm", "type": "nat", "subnet": "10.91.0.0/24",
                                   "dhcp_start": "10.91.0.100", "dhcp_end": "10.91.0.150"}, expect=201)
        d.api("POST", "vms", {"name": VM, "memory_mib": 192, "nics": [{"network": "natm"}],
                              "boot": {"firmware": "kernel", "kernel": kernel, "initrd": initrd,
                                       "cmdline": "console=ttyS0 quiet"}}, expect=201)
        tap = d.vm(VM)["nics"][0]["tap"]
        text = scrape(t, d)
        t.check(counters(text, tap)["receive_bytes"] is None, "NIC series for a stopped VM")
        d.api("POST", f"vms/{VM}/start", expect=200)
        d.console_wait(VM, b"VESSEL-GUEST-READY", timeout=150)
        nt.guest_dhcp(d, VM)
        before = counters(scrape(t, d), tap)
        log(f"tap {tap} before: {before}")
        t.require(all(v is not None for v in before.values()), f"NIC series missing for {tap}: {before}")
        d.console_run(VM, "ping -c 20 -i 0.2 -s 1000 10.91.0.1 >/dev/null; echo PG-$((40+2))", b"PG-42",
                      timeout=90)
        after = counters(scrape(t, d), tap)
        log(f"tap {tap} after 20 pings of 1000 bytes: {after}")
        delta = {k: after[k] - before[k] for k in FAMS}
        t.check(delta["transmit_packets"] >= 20 and delta["receive_packets"] >= 20,
                f"packets did not grow by the 20 pings: {delta}")
        t.check(delta["transmit_bytes"] >= 20 * 1000 and delta["receive_bytes"] >= 20 * 1000,
                f"bytes did not grow by 20 x 1000: {delta}")
        t.check(delta["receive_drops"] >= 0 and delta["transmit_drops"] >= 0, f"drops went back: {delta}")
        d.api("DELETE", f"vms/{VM}?force=true", expect=200)
        text = scrape(t, d)
        t.check(f'interface="{tap}"' not in text, "NIC series of a deleted VM remain")
        d.api("DELETE", "networks/natm", expect=200)
    finally:
        for dd in t.daemons:
            try:
                dd.stop()
            except vt.Failure:
                pass
        lab.cleanup()


if __name__ == "__main__":
    vt.Test("metrics_net", limit=300).run(main)
