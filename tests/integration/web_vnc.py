#!/usr/bin/env python3
"""web_vnc: the graphical console's plumbing with a real QEMU, no browser.

- a VM's QEMU serves VNC on run/NAME/vnc.sock and listens on no TCP port;
- GET /api/v1/vms/NAME/vnc/ws over TCP with ?token= upgrades (echoing the
  'binary' subprotocol noVNC asks for) and the first bytes are QEMU's RFB
  banner "RFB 003.008\\n" (RFC 6143 §7.1.1); answering it gets the security
  types, so bytes flow both ways;
- wrong token -> 401; a stopped VM -> 409 saying it is not running; an
  unknown VM -> 404; a plain GET -> 400;
- after the VM stops, vnc.sock is gone.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

VM = "vnc-1"


def tcp_listeners(pid):
    """Inodes of listening TCP sockets the process holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = []
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(f) as fh:
            for line in fh.readlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and parts[9] in inodes:  # 0A = LISTEN
                    found.append(parts[1])
    return found


def main(t):
    vt.need_vesseld()
    kernel_src, initrd_src = vt.need_guest("vmlinuz", "initramfs.img")
    d = t.daemon("web-vnc").start()
    d.kernel_vm(VM, kernel_src, initrd_src)
    path = f"/api/v1/vms/{VM}/vnc/ws"

    ws, status, _, _ = vt.WebSocket.connect(f"{path}?token={d.token}", port=d.port)
    t.check(ws is None and status == 409, f"VNC of a stopped VM: HTTP {status}, expected 409")
    r = d.tcp.get(f"vms/{VM}/vnc/ws")
    t.expect_error(r, 400, "invalid_argument", mentions=("websocket",), what="plain GET of vnc/ws")

    d.api("POST", f"vms/{VM}/start", expect=200)
    pid = d.vm(VM)["pid"]
    sock = os.path.join(d.data_dir, "run", VM, "vnc.sock")
    t.check(os.path.exists(sock), f"{sock} exists while the VM runs")
    t.check(tcp_listeners(pid) == [], f"QEMU listens on TCP: {tcp_listeners(pid)}")

    ws, status, _, _ = vt.WebSocket.connect(f"{path}?token=wrong", port=d.port)
    t.check(ws is None and status == 401, f"VNC with a wrong token: HTTP {status}, expected 401")
    ws, status, _, _ = vt.WebSocket.connect(f"/api/v1/vms/ghost/vnc/ws?token={d.token}", port=d.port)
    t.check(ws is None and status == 404, f"VNC of an unknown VM: HTTP {status}, expected 404")

    ws, status, hdrs, _ = vt.WebSocket.connect(f"{path}?token={d.token}", port=d.port,
                                               headers={"Sec-WebSocket-Protocol": "binary"})
    t.require(ws is not None, f"VNC WebSocket: HTTP {status}")
    t.check(hdrs.get("sec-websocket-protocol") == "binary", f"subprotocol not echoed: {hdrs}")
    try:
        got = ws.read_until(b"\n", timeout=20)
        t.check(got == b"RFB 003.008\n", f"first bytes over the WebSocket: {got!r}")
        log(f"banner over the WebSocket: {got!r}")
        # our version, then QEMU lists its security types (§7.1.2): at least one
        ws.send(b"RFB 003.008\n")
        op, payload = ws.recv_frame(timeout=20)
        t.check(op == 0x2 and len(payload) >= 2 and payload[0] >= 1,
                f"security types after the version: op {op} {payload!r}")
        log(f"security types: {list(payload[1:1 + payload[0]])}")
    finally:
        ws.close()

    d.api("POST", f"vms/{VM}/force-stop", expect=200)
    t.check(not os.path.exists(sock), f"{sock} left after the VM stopped")
    ws, status, _, _ = vt.WebSocket.connect(f"{path}?token={d.token}", port=d.port)
    t.check(ws is None and status == 409, f"VNC after stop: HTTP {status}, expected 409")
    d.api("DELETE", f"vms/{VM}", expect=200)


if __name__ == "__main__":
    vt.Test("web_vnc", limit=180).run(main)
