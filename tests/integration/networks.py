#!/usr/bin/env python3
"""networks: virtual networks end to end (issue 6, docs/networking.md).

vesseld runs inside a network namespace this test creates ("host"); an
"out" namespace plays the outside world, joined to host by a veth
(192.168.250.1 on host, .2 and .3 in out). Two VMs (direct kernel boot of
the test initramfs) are reused across the cases:

- bad input: overlapping subnets, a DHCP range outside its subnet, bad
  CIDRs, ports, VLAN ids and MTUs, a missing uplink or bridge -> 400 with
  a message naming the problem, and nothing changed on the host (links,
  nft tables, dnsmasq processes compared before/after);
- nat: each VM gets a DHCP lease from vessel's dnsmasq, shown by GET
  /vms/{name}; a VM fetches a file from a server in "out" (masquerade);
  a port forward from the host's address reaches busybox httpd in the VM
  from "out" and from the host itself;
- firewall "allow TCP 80 from 192.168.250.2/32": .2 connects, .3 does not,
  and detaching the rule set restores the default (both connect);
- isolated switch: the VMs ping each other, but not the outside over it;
- VLAN: tags 10 and 20 on one isolated network cannot reach each other,
  the same tag 30 can;
- dnsmasq killed -> vesseld restarts it (new pid, logged) and DHCP works;
- deleting a network in use -> 409; a vesseld restart keeps everything
  (same dnsmasq, rules re-applied, leases shown); after deleting all VMs,
  networks and rule sets, and after another restart, no vessel bridge, tap,
  nft table or dnsmasq is left.
"""
import itertools
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import nettest as nt  # noqa: E402
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

BOOT_TIMEOUT = 150
_marks = itertools.count(100)


def gcheck(d, vm, cmd, timeout=40):
    """Run cmd in the guest shell; True when it exited 0. Typed once (no resend:
    a command with side effects must not run twice); the marker is computed by
    the shell so the echoed command line never matches it."""
    n = next(_marks)
    since = d.console_next(vm)
    d.console_write(vm, f"{cmd} >/dev/null 2>&1 && echo R-$(({n}+0))-Y || echo R-$(({n}+0))-N\n")
    _, buf = d.console_wait(vm, re.compile(rb"R-%d-(Y|N)" % n), since=since, timeout=timeout)
    return re.search(rb"R-%d-(Y|N)" % n, buf).group(1) == b"Y"


def gout(d, vm, cmd, timeout=40):
    """Run cmd in the guest; returns its output (between two markers)."""
    n = next(_marks)
    since = d.console_next(vm)
    d.console_write(vm, f"echo B-$(({n}+0))-; {cmd}; echo E-$(({n}+0))-\n")
    _, buf = d.console_wait(vm, b"E-%d-" % n, since=since, timeout=timeout)
    m = re.search(rb"B-%d-\r?\n(.*)E-%d-" % (n, n), buf, re.S)
    return m.group(1).decode(errors="replace") if m else ""


def host_state(host, d):
    dns = [p for p in vt.pids_mentioning(d.tmp) if (vt.proc_cmdline(p) or [""])[0].endswith("dnsmasq")]
    return host.links(), host.nft_tables(), sorted(dns)


def bad_input(t, d, host):
    before = host_state(host, d)
    cases = [
        ({"name": "b1", "type": "nat", "subnet": "10.88.0.0/33"}, ["subnet", "10.88.0.0/33"]),
        ({"name": "b1", "type": "nat", "subnet": "10.88.0.1/24"}, ["host bits"]),
        ({"name": "b1", "type": "nat", "subnet": "10.88.0.0/24", "dhcp_start": "10.88.1.10",
          "dhcp_end": "10.88.1.20"}, ["DHCP range", "outside"]),
        ({"name": "b1", "type": "nat", "subnet": "10.88.0.0/24", "dhcp_start": "10.88.0.50",
          "dhcp_end": "10.88.0.20"}, ["DHCP range"]),
        ({"name": "b1", "type": "nat", "subnet": "10.88.0.0/24", "gateway": "10.88.1.1"}, ["gateway"]),
        ({"name": "b1", "type": "nat", "subnet": "10.89.0.0/16"}, ["overlaps", "nat1"]),
        ({"name": "b1", "type": "isolated", "mtu": 9001}, ["mtu", "9001"]),
        ({"name": "b1", "type": "isolated", "mtu": 60}, ["mtu", "60"]),
        ({"name": "b1", "type": "bridge", "uplink": "nosuchif0"}, ["uplink", "nosuchif0", "does not exist"]),
        ({"name": "b1", "type": "bridge", "bridge": "nosuchbr0"}, ["bridge", "nosuchbr0"]),
        ({"name": "b1", "type": "bridge"}, ["uplink"]),
        ({"name": "b1", "type": "mesh"}, ["type", "mesh"]),
        ({"name": "B_1", "type": "isolated"}, ["B_1"]),
        ({"name": "b1", "type": "isolated", "subnet": "10.90.0.0/24"}, ["subnet"]),
    ]
    for body, words in cases:
        r = d.api("POST", "networks", body)
        t.expect_error(r, 400, "invalid_argument", words, what=f"POST /networks {body}")
    fw_cases = [
        ({"name": "f1", "rules": [{"protocol": "tcp", "ports": "70000", "action": "allow"}]}, ["ports", "70000"]),
        ({"name": "f1", "rules": [{"protocol": "tcp", "ports": "90-80", "action": "allow"}]}, ["90-80"]),
        ({"name": "f1", "rules": [{"cidr": "300.1.1.1/32", "action": "allow"}]}, ["cidr", "300.1.1.1"]),
        ({"name": "f1", "rules": [{"cidr": "10.0.0.0/40", "action": "allow"}]}, ["10.0.0.0/40"]),
        ({"name": "f1", "rules": [{"direction": "sideways", "action": "allow"}]}, ["direction"]),
        ({"name": "f1", "rules": [{"protocol": "icmp", "ports": "80", "action": "allow"}]}, ["ports"]),
        ({"name": "f1", "rules": [{"protocol": "tcp"}]}, ["action"]),
        ({"name": "f1", "default_inbound": "maybe"}, ["default_inbound"]),
    ]
    for body, words in fw_cases:
        r = d.api("POST", "firewalls", body)
        t.expect_error(r, 400, "invalid_argument", words, what=f"POST /firewalls {body}")
    vm_cases = [
        ([{"network": "iso1", "vlan": 5000}], ["VLAN", "5000"]),
        ([{"network": "iso1", "vlan": 0}], ["VLAN"]),
        ([{"network": "nosuchnet"}], ["nosuchnet"]),
        ([{"network": "iso1", "firewall": "nosuchfw"}], ["nosuchfw"]),
        ([{"network": "iso1", "mac": "01:00:5e:00:00:01"}], ["multicast"]),
        ([{"network": "iso1", "mac": "52:54:00:zz:00:01"}], ["mac"]),
        ([{"network": "nat1", "vlan": 10}], ["VLAN", "nat"]),
        ([{"network": "iso1", "bandwidth_mbit": 0}], ["bandwidth_mbit"]),
    ]
    for nics, words in vm_cases:
        r = d.api("POST", "vms", {"name": "badnic", "memory_mib": 64, "nics": nics})
        t.expect_error(r, 400, "invalid_argument", words, what=f"POST /vms nics={nics}")
    r = d.api("PATCH", "networks/nat1", {"port_forwards": [{"host_port": 0, "vm": "a", "vm_port": 80}]})
    t.expect_error(r, 400, "invalid_argument", ["host_port", "0"], what="forward to port 0")
    r = d.api("PATCH", "networks/nat1", {"port_forwards": [{"host_port": 80, "vm": "a", "vm_port": 65536}]})
    t.expect_error(r, 400, "invalid_argument", ["vm_port", "65536"], what="forward to port 65536")
    r = d.api("PATCH", "networks/nat1", {"port_forwards": [{"host_port": 80, "vm": "a", "vm_port": 80,
                                                            "host_address": "1.2.3"}]})
    t.expect_error(r, 400, "invalid_argument", ["host_address"], what="forward from a bad address")
    t.check(d.api("GET", "vms/badnic").status == 404, "a refused VM create left a VM behind")
    t.check(d.api("GET", "networks/b1").status == 404, "a refused network create left a network behind")
    t.check(d.api("GET", "firewalls/f1").status == 404, "a refused firewall create left it behind")
    after = host_state(host, d)
    t.check(after == before, f"bad input changed the host: before {before}, after {after}")


def bridge_types(t, d, host):
    """type bridge: over an uplink vessel creates (and removes) the bridge and
    releases the uplink; attached to an existing bridge it never deletes it."""
    host.sh("ip link add vnt-up0 type veth peer name vnt-up1 && ip link add br-ext type bridge")
    r = d.api("POST", "networks", {"name": "lan", "type": "bridge", "uplink": "vnt-up0", "mtu": 1400}, expect=201)
    br = r.json["network"]["bridge"]
    t.check(r.json["network"]["bridge_created_by_vessel"] and br == "vb-lan", f"lan: {r.json}")
    link = host.run(["ip", "-o", "link", "show", "vnt-up0"]).stdout
    t.check(f"master {br}" in link, f"uplink not in the bridge: {link!r}")
    t.check("mtu 1400" in host.run(["ip", "-o", "link", "show", br]).stdout, "bridge MTU not set")
    r = d.api("POST", "networks", {"name": "ext", "type": "bridge", "bridge": "br-ext"}, expect=201)
    t.check(not r.json["network"]["bridge_created_by_vessel"], f"ext: {r.json}")
    r = d.api("POST", "networks", {"name": "ext2", "type": "isolated", "bridge": "br-ext"})
    t.expect_error(r, 409, "conflict", ["br-ext"], what="isolated network on an existing interface")
    r = d.api("POST", "vms", {"name": "vl", "memory_mib": 64, "nics": [{"network": "ext", "vlan": 5}]})
    t.expect_error(r, 400, "invalid_argument", ["VLAN", "ext"], what="VLAN on an attached bridge")
    d.api("DELETE", "networks/lan", expect=200)
    d.api("DELETE", "networks/ext", expect=200)
    links = host.links()
    t.check("vb-lan" not in links and "vnt-up0" in links and "br-ext" in links,
            f"after deleting the bridge networks: {links}")
    t.check("master" not in host.run(["ip", "-o", "link", "show", "vnt-up0"]).stdout,
            "the uplink was not released")
    host.sh("ip link del vnt-up0 && ip link del br-ext")


def boot(d, name, kernel, initrd, nics):
    d.api("POST", "vms", {"name": name, "memory_mib": 192, "nics": nics,
                          "boot": {"firmware": "kernel", "kernel": kernel, "initrd": initrd,
                                   "cmdline": "console=ttyS0 quiet"}}, expect=201)
    d.api("POST", f"vms/{name}/start", expect=200)


def wait_ready(d, name):
    d.console_wait(name, b"VESSEL-GUEST-READY", timeout=BOOT_TIMEOUT)
    d.console_run(name, "echo up-$((3+4))", b"up-7", timeout=60)


def curl(ns, url, src=None, timeout=5):
    argv = ["curl", "-s", "--max-time", str(timeout)]
    if src:
        argv += ["--interface", src]
    p = ns.run(argv + [url], check=False, timeout=timeout + 10)
    return p.stdout if p.returncode == 0 else None


def main(t):
    vt.need_vesseld()
    nt.need_netns()
    kernel, initrd = vt.need_guest("vmlinuz", "initramfs.img")
    lab = nt.NetLab("n")
    try:
        run_all(t, lab, kernel, initrd)
    finally:
        # vesseld first, with SIGTERM (a clean exit is checked), then the
        # namespaces and whatever still runs in them.
        for d in t.daemons:
            problem = d.cleanup(keep=bool(t.failures))
            if problem:
                t.failures.append(problem)
        lab.cleanup()


def run_all(t, lab, kernel, initrd):
    host = lab.netns("host")
    out = lab.netns("out")
    lab.veth(host, "vnt-h0", "192.168.250.1/24", out, "vnt-o0", ["192.168.250.2/24", "192.168.250.3/24"])
    baseline_links = host.links()
    baseline_tables = host.nft_tables()
    d = nt.NetDaemon("net", host)
    t.daemons.append(d)
    d.start()
    for f in (kernel, initrd):
        shutil.copyfile(f, os.path.join(d.import_dir, os.path.basename(f)))
    kernel = os.path.join(d.import_dir, "vmlinuz")
    initrd = os.path.join(d.import_dir, "initramfs.img")

    # a server in the outside namespace
    www = os.path.join(d.tmp, "www")
    os.makedirs(www)
    with open(os.path.join(www, "marker.txt"), "w") as f:
        f.write("OUTSIDE-SERVER-OK\n")
    srv = out.popen(["python3", "-m", "http.server", "--bind", "192.168.250.2", "--directory", www, "8000"])

    try:
        r = d.api("POST", "networks", {"name": "nat1", "type": "nat", "subnet": "10.89.0.0/24",
                                       "dhcp_start": "10.89.0.100", "dhcp_end": "10.89.0.150"}, expect=201)
        nat = r.json["network"]
        t.check(nat["bridge"] in host.links(), f"bridge {nat['bridge']} missing: {host.links()}")
        t.check(nat["dnsmasq"]["pid"], f"nat network has no dnsmasq: {nat}")
        t.check("10.89.0.1/24" in host.run(["ip", "-o", "addr", "show", nat["bridge"]]).stdout,
                "the nat bridge does not have the gateway address")
        d.api("POST", "networks", {"name": "iso1", "type": "isolated"}, expect=201)
        t.check(any("bridge vessel" in x or "ip vessel_nat" in x for x in host.nft_tables()),
                f"vessel's nft tables missing: {host.nft_tables()}")

        bad_input(t, d, host)
        bridge_types(t, d, host)

        # VM a: nat, vlan 10, vlan 30, untagged; b: nat, vlan 20, vlan 30, untagged
        boot(d, "a", kernel, initrd, [{"network": "nat1"}, {"network": "iso1", "vlan": 10},
                                      {"network": "iso1", "vlan": 30}, {"network": "iso1"}])
        boot(d, "b", kernel, initrd, [{"network": "nat1"}, {"network": "iso1", "vlan": 20},
                                      {"network": "iso1", "vlan": 30},
                                      {"network": "iso1", "bandwidth_mbit": 50}])
        va, vb = d.vm("a"), d.vm("b")
        macs = [n["mac"] for n in va["nics"] + vb["nics"]]
        t.check(len(set(macs)) == 8 and all(m.startswith("52:54:00:") for m in macs), f"MACs: {macs}")
        taps = [n["tap"] for n in va["nics"] + vb["nics"]]
        t.check(all(x in host.links() for x in taps), f"taps {taps} not all on the host: {host.links()}")
        r = d.api("DELETE", "networks/iso1")
        t.expect_error(r, 409, "conflict", ["iso1", "a"], what="delete a network in use")
        tc = host.run(["tc", "qdisc", "show", "dev", vb["nics"][3]["tap"]], check=False).stdout
        t.check("tbf" in tc and "rate 50Mbit" in tc, f"bandwidth limit on b's nic 3: {tc!r}")
        tc = host.run(["tc", "qdisc", "show", "dev", va["nics"][3]["tap"]], check=False).stdout
        t.check("tbf" not in tc, f"a NIC without a limit has a tbf qdisc: {tc!r}")
        wait_ready(d, "a")
        wait_ready(d, "b")

        # ---- NAT + DHCP
        for vm in ("a", "b"):
            buf = nt.guest_dhcp(d, vm)
            t.require(b"LEASE-11-OK" in buf, f"VM {vm} got no DHCP lease: {buf[-400:]!r}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ips = {vm: d.vm(vm)["nics"][0]["ip"] for vm in ("a", "b")}
            if all(ips.values()):
                break
            time.sleep(0.3)
        log(f"leases: {ips}")
        for vm, ip in ips.items():
            t.check(ip and ip.startswith("10.89.0.") and 100 <= int(ip.split(".")[3]) <= 150,
                    f"VM {vm}: GET /vms shows ip {ip}, not an address of the DHCP range")
            shown = gout(d, vm, "ip -4 -o addr show eth0")
            t.check(ip and f"{ip}/24" in shown, f"VM {vm}: API says {ip}, guest has {shown!r}")
        vessel = os.path.join(vt.BUILD, "src", "cli", "vessel")
        p = nt.run([vessel, "--socket", d.sock, "vm", "show", "a"], check=False)
        t.check(p.returncode == 0 and re.search(r"nic 0: +52:54:00:\S+ on nat1, tap vt\w+, ip " +
                                                re.escape(ips["a"] or "?"), p.stdout) and
                "on iso1 vlan 10" in p.stdout, f"vessel vm show a: {p.stdout!r}")
        got = gout(d, "a", "wget -q -O - http://192.168.250.2:8000/marker.txt")
        t.check("OUTSIDE-SERVER-OK" in got, f"VM a cannot reach the outside server through NAT: {got!r}")

        # ---- port forward host:8080 -> a:80
        gcheck(d, "a", "mkdir -p /www && echo VM-HTTPD-OK > /www/index.html && httpd -p 80 -h /www")
        d.api("PATCH", "networks/nat1", {"port_forwards": [{"protocol": "tcp", "host_port": 8080,
                                                            "vm": "a", "vm_port": 80}]}, expect=200)
        body = None
        for _ in range(20):
            body = curl(out, "http://192.168.250.1:8080/index.html", src="192.168.250.2")
            if body:
                break
            time.sleep(0.5)
        t.check(body and "VM-HTTPD-OK" in body, f"port forward from outside: {body!r}")
        body = curl(host, "http://192.168.250.1:8080/index.html")
        t.check(body and "VM-HTTPD-OK" in body, f"port forward from the host itself: {body!r}")

        # ---- that traffic shows in the counters of the VM's NAT NIC's tap
        tap = d.vm("a")["nics"][0].get("tap")
        r = d.unix.get("/metrics")
        series = {}
        for line in r.body.decode().splitlines():
            m = re.match(r'(vessel_vm_network_\w+)\{[^}]*name="a"[^}]*interface="([^"]+)"[^}]*\} (\d+)$', line)
            if m:
                series[(m.group(1), m.group(2))] = int(m.group(3))
        t.check(tap and any(k[1] == tap for k in series),
                f"/metrics has no NIC series for VM a's tap {tap}: {sorted(series)}")
        for name in ("vessel_vm_network_receive_bytes_total", "vessel_vm_network_transmit_bytes_total",
                     "vessel_vm_network_receive_packets_total", "vessel_vm_network_transmit_packets_total"):
            t.check(series.get((name, tap), 0) > 0,
                    f"/metrics {name} for VM a's tap {tap} should be above 0 after HTTP traffic: "
                    f"{series.get((name, tap))}")

        # ---- firewall: allow TCP 80 from 192.168.250.2/32 only
        # created with the CLI, to exercise `vessel firewall create`
        p = nt.run([vessel, "--socket", d.sock, "firewall", "create", "web80", "--rule",
                    "in,tcp,80,192.168.250.2/32,allow"], check=False)
        t.check(p.returncode == 0 and "created firewall web80" in p.stdout, f"vessel firewall create: {p}")
        p = nt.run([vessel, "--socket", d.sock, "network", "list"], check=False)
        t.check(p.returncode == 0 and "nat1" in p.stdout and "10.89.0.0/24" in p.stdout,
                f"vessel network list: {p.stdout!r} {p.stderr!r}")
        p = nt.run([vessel, "--socket", d.sock, "network", "create", "x", "--type", "nat",
                    "--subnet", "10.89.0.0/16"], check=False)
        t.check(p.returncode == 1 and "overlaps" in p.stderr, f"CLI error for an overlap: {p}")
        fw = d.api("GET", "firewalls/web80", expect=200).json["firewall"]
        t.check(fw["default_inbound"] == "deny" and fw["rules"][0]["cidr"] == "192.168.250.2/32",
                f"firewall as stored: {fw}")
        nics = [dict(network=n["network"], vlan=n["vlan"]) if n["vlan"] else dict(network=n["network"])
                for n in d.vm("a")["nics"]]
        nics[0]["firewall"] = "web80"
        d.api("PATCH", "vms/a", {"nics": nics}, expect=200)
        t.check(d.vm("a")["nics"][0]["firewall"] == "web80", "firewall not attached")
        t.check("table bridge vessel" in host.nft_tables(), f"no firewall table: {host.nft_tables()}")
        ok2 = curl(out, "http://192.168.250.1:8080/index.html", src="192.168.250.2")
        no3 = curl(out, "http://192.168.250.1:8080/index.html", src="192.168.250.3", timeout=3)
        t.check(ok2 and "VM-HTTPD-OK" in ok2, f"allowed /32 cannot connect: {ok2!r}")
        t.check(no3 is None, f"a source outside the /32 connected: {no3!r}")
        nohost = curl(host, f"http://{ips['a']}/index.html", timeout=3)
        t.check(nohost is None, f"the host (not in the /32) reached port 80 directly: {nohost!r}")
        t.check(gcheck(d, "a", "ping -c 1 -W 3 192.168.250.2"),
                "outbound ping from the firewalled VM (default allow out) failed")
        changed = [dict(x) for x in nics]
        changed[1]["vlan"] = 11
        r = d.api("PATCH", "vms/a", {"nics": changed})
        t.expect_error(r, 409, "conflict", ["stop it first"], what="change a NIC's VLAN while running")
        nics[0].pop("firewall")
        d.api("PATCH", "vms/a", {"nics": nics}, expect=200)
        yes3 = curl(out, "http://192.168.250.1:8080/index.html", src="192.168.250.3")
        t.check(yes3 and "VM-HTTPD-OK" in yes3, f"after detaching the rule set .3 still cannot connect: {yes3!r}")
        t.check("table bridge vessel" not in host.nft_tables(),
                f"firewall table left after detaching: {host.nft_tables()}")
        r = d.api("DELETE", "firewalls/web80", expect=200)

        # ---- isolated switch and VLANs
        addr = {"a": 1, "b": 2}
        for vm in ("a", "b"):
            gcheck(d, vm, f"ip link set eth1 up && ip addr add 192.168.77.{addr[vm]}/24 dev eth1 && "
                          f"ip link set eth2 up && ip addr add 192.168.79.{addr[vm]}/24 dev eth2 && "
                          f"ip link set eth3 up && ip addr add 192.168.80.{addr[vm]}/24 dev eth3")
        t.check(gcheck(d, "a", "ping -c 2 -W 3 192.168.80.2"), "isolated switch: a cannot ping b")
        t.check(gcheck(d, "b", "ping -c 2 -W 3 192.168.80.1"), "isolated switch: b cannot ping a")
        t.check(not gcheck(d, "a", "ping -c 1 -W 2 -I eth3 192.168.250.2"),
                "isolated switch: a reached the outside over it")
        t.check(host.run(["ping", "-c", "1", "-W", "2", "192.168.80.2"], check=False).returncode != 0,
                "isolated switch: the host reached a VM on it")
        t.check(not gcheck(d, "a", "ping -c 2 -W 2 192.168.77.2"), "VLAN 10 reached VLAN 20")
        t.check(gcheck(d, "a", "ping -c 2 -W 3 192.168.79.2"), "VLAN 30 to VLAN 30 failed")
        iso = d.api("GET", "networks/iso1", expect=200).json["network"]
        t.check(sorted(iso["vlan_bridges"]) == [10, 20, 30], f"VLAN bridges recorded: {iso['vlan_bridges']}")

        # ---- hot-plug: unplug b's last NIC, plug a NIC on nat1 in its place
        bn = [{k: v for k, v in n.items() if k in ("network", "vlan", "firewall", "bandwidth_mbit") and v}
              for n in d.vm("b")["nics"]]
        old_tap = d.vm("b")["nics"][3]["tap"]
        r = d.api("PATCH", "vms/b", {"nics": bn[:3]}, timeout=60)
        t.check(r.status == 200 and len(r.json["vm"]["nics"]) == 3, f"hot-unplug: {r.short()}")
        t.check("eth3" not in gout(d, "b", "ls /sys/class/net"), "eth3 still in the guest after unplug")
        gone = False
        for _ in range(25):
            if old_tap not in host.links():
                gone = True
                break
            time.sleep(0.2)
        t.check(gone, f"tap {old_tap} of the unplugged NIC is still on the host")
        r = d.api("PATCH", "vms/b", {"nics": bn[:3] + [{"network": "nat1"}]}, timeout=60)
        t.check(r.status == 200 and len(r.json["vm"]["nics"]) == 4, f"hot-plug: {r.short()}")
        new_nic = r.json["vm"]["nics"][3] if r.status == 200 else {}
        t.check(new_nic.get("tap") in host.links(), f"hot-plugged tap missing: {new_nic}")
        iface = ""
        for _ in range(20):
            iface = gout(d, "b", f"grep -l {new_nic.get('mac')} /sys/class/net/*/address")
            if "/sys/class/net/" in iface:
                break
            time.sleep(0.5)
        m = re.search(r"/sys/class/net/(\w+)/address", iface)
        t.require(m, f"the guest does not see the hot-plugged NIC: {iface!r}")
        buf = nt.guest_dhcp(d, "b", iface=m.group(1))
        t.check(b"LEASE-11-OK" in buf, f"no DHCP lease on the hot-plugged NIC: {buf[-300:]!r}")
        ip3 = None
        for _ in range(20):
            ip3 = d.vm("b")["nics"][3]["ip"]
            if ip3:
                break
            time.sleep(0.3)
        t.check(ip3 and ip3.startswith("10.89.0."), f"hot-plugged NIC's lease not shown: {d.vm('b')['nics'][3]}")

        # ---- dnsmasq dies -> restarted
        old = d.api("GET", "networks/nat1", expect=200).json["network"]["dnsmasq"]["pid"]
        os.kill(old, signal.SIGKILL)
        new = None
        for _ in range(50):
            n = d.api("GET", "networks/nat1", expect=200).json["network"]["dnsmasq"]
            if n["pid"] and n["pid"] != old and vt.proc_alive(n["pid"]):
                new = n
                break
            time.sleep(0.2)
        t.check(new and new["restarts"] >= 1, f"dnsmasq not restarted after kill: {new}")
        t.check("died; restarted" in open(d.log_path).read(), "dnsmasq restart not logged")
        buf = gout(d, "b", "udhcpc -i eth0 -n -q -t 8 -s /tmp/dh && echo RENEW-OK", timeout=60)
        t.check("RENEW-OK" in buf, f"DHCP after the dnsmasq restart: {buf!r}")

        # ---- vesseld restart: everything kept
        pid_before = d.api("GET", "networks/nat1", expect=200).json["network"]["dnsmasq"]["pid"]
        links_before = host.links()
        d.stop()
        d.start()
        n = d.api("GET", "networks/nat1", expect=200).json["network"]
        t.check(n["dnsmasq"]["pid"] == pid_before, f"dnsmasq not adopted across restart: {pid_before} -> {n}")
        t.check(host.links() == links_before, f"links changed across restart: {links_before} -> {host.links()}")
        t.check(d.vm("a")["nics"][0]["ip"] == ips["a"], f"lease not shown after restart: {d.vm('a')['nics']}")
        body = curl(out, "http://192.168.250.1:8080/index.html", src="192.168.250.3")
        t.check(body and "VM-HTTPD-OK" in body, f"port forward after restart: {body!r}")

        # ---- delete everything: nothing left, also after a restart
        for vm in ("a", "b"):
            d.api("DELETE", f"vms/{vm}?force=true", expect=200)
        for _ in range(50):
            if not any(x.startswith("vt") for x in host.links()):
                break
            time.sleep(0.2)
        d.api("DELETE", "networks/nat1", expect=200)
        d.api("DELETE", "networks/iso1", expect=200)

        def leftovers():
            links, tables, dns = host_state(host, d)
            bad = [x for x in links if x not in baseline_links]
            return bad, [x for x in tables if x not in baseline_tables], dns
        left = leftovers()
        t.check(left == ([], [], []), f"left after deleting everything (links, nft tables, dnsmasq): {left}")
        d.stop()
        d.start()
        left = leftovers()
        t.check(left == ([], [], []), f"left after a restart: {left}")
        t.check(not os.listdir(os.path.join(d.data_dir, "networks")),
                f"files left: {os.listdir(os.path.join(d.data_dir, 'networks'))}")
    finally:
        srv.kill()
        srv.wait()


if __name__ == "__main__":
    vt.Test("networks", limit=900).run(main)
