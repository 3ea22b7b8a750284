"""nettest: network namespaces for the virtual network tests and benchmarks.

Every test that touches host networking runs its vesseld inside a fresh
network namespace it creates (NetNS), so bridges, taps, nftables tables and
dnsmasq live there and vanish with it; nothing reaches the real host's
interfaces, rules or routes. NetLab owns the namespaces of one test and
removes them (and kills the processes still in them) even on failure.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402


def run(argv, check=True, timeout=30, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise vt.Failure(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip() or p.stdout.strip()}")
    return p


def need_netns():
    """Skip unless we are root and can create network namespaces with the tools."""
    if os.geteuid() != 0:
        vt.skip("needs root to create network namespaces, bridges and taps")
    for tool in ("ip", "nft", "dnsmasq", "curl"):
        if not shutil.which(tool):
            vt.skip(f"{tool} is not installed (scripts/install-deps)")
    name = f"vnt-probe-{os.getpid()}"
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if p.returncode != 0:
        vt.skip(f"cannot create a network namespace: {p.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


class NetNS:
    def __init__(self, name):
        self.name = name
        run(["ip", "netns", "add", name])
        self.sh("ip link set lo up")

    def argv(self, argv):
        return ["ip", "netns", "exec", self.name] + list(argv)

    def run(self, argv, check=True, timeout=30):
        return run(self.argv(argv), check=check, timeout=timeout)

    def sh(self, cmd, check=True, timeout=30):
        return run(self.argv(["sh", "-c", cmd]), check=check, timeout=timeout)

    def popen(self, argv, **kw):
        return subprocess.Popen(self.argv(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, **kw)

    def links(self):
        """Interface names in the namespace."""
        out = self.run(["ip", "-o", "link", "show"]).stdout
        return sorted(l.split(":")[1].strip().split("@")[0] for l in out.splitlines() if ":" in l)

    def nft_tables(self):
        out = self.run(["nft", "list", "tables"]).stdout
        return sorted(l.strip() for l in out.splitlines() if l.strip())

    def pids(self):
        out = run(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(x) for x in out.split()]

    def delete(self):
        for p in self.pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run(["ip", "netns", "del", self.name], check=False)


class NetLab:
    """The namespaces of one test: `host` (vesseld runs there) and any others."""

    def __init__(self, tag):
        self.tag = f"vnt{os.getpid() % 100000}{tag}"
        self.ns = []

    def netns(self, suffix):
        n = NetNS(f"{self.tag}-{suffix}")
        self.ns.append(n)
        return n

    def veth(self, a, a_name, a_addr, b, b_name, b_addr):
        """A veth pair between namespaces a and b with addresses (CIDR strings;
        b_addr may be a list)."""
        run(["ip", "link", "add", a_name, "netns", a.name, "type", "veth", "peer", "name", b_name,
             "netns", b.name])
        a.sh(f"ip addr add {a_addr} dev {a_name} && ip link set {a_name} up")
        for addr in (b_addr if isinstance(b_addr, list) else [b_addr]):
            b.sh(f"ip addr add {addr} dev {b_name}")
        b.sh(f"ip link set {b_name} up")

    def cleanup(self):
        for n in reversed(self.ns):
            n.delete()
        self.ns = []


class NetDaemon(vt.Daemon):
    """A vesseld started inside a network namespace."""

    def __init__(self, tag, ns, extra_args=()):
        super().__init__(tag, extra_args)
        self.ns = ns

    def argv(self):
        return self.ns.argv(super().argv())


GUEST_DHCP_SCRIPT = ("printf '#!/bin/sh\\n[ \"$1\" = bound ] && ip addr add $ip/$mask dev $interface "
                     "&& ip route add default via $router\\nexit 0\\n' > /tmp/dh; chmod +x /tmp/dh")


def guest_dhcp(d, vm, iface="eth0", timeout=90):
    """Run udhcpc in the guest; returns the address it got."""
    d.console_run(vm, GUEST_DHCP_SCRIPT + "; echo DH-$((40+2))", b"DH-42", timeout=timeout)
    _, buf = d.console_run(vm, f"ip link set {iface} up; udhcpc -i {iface} -n -q -t 8 -s /tmp/dh "
                           f"&& echo LEASE-$((10+1))-OK || echo LEASE-$((10+1))-FAIL",
                           vt_re(rb"LEASE-11-(OK|FAIL)"), timeout=timeout)
    return buf


def vt_re(pattern):
    import re
    return re.compile(pattern)
