#!/usr/bin/env python3
"""console: the serial console contract at its edges (docs/api.md "Console").

- a VM that never ran has an empty console (200, X-Console-Start = Next);
- writing to a stopped VM's console fails with 409 and says why;
- after the guest prints more than the 1 MiB kept, GET ?since=0 returns at
  most 1 MiB starting past 0 (X-Console-Start > 0), ends with the newest
  output, and X-Console-Next = Start + length; asking from a dropped offset
  starts at the oldest kept byte; asking from Next returns nothing new;
- the WebSocket starts with (at most) the last 16 KiB, which end with the
  newest output;
- a console POST over 64 KiB is refused with 413.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

VM = "con-1"
RING = 1 << 20


def main(t):
    vt.need_vesseld()
    kernel_src, initrd_src = vt.need_guest("vmlinuz", "initramfs.img")
    d = t.daemon("console").start()
    d.kernel_vm(VM, kernel_src, initrd_src)

    body, start, nxt = d.console_read(VM, 0)
    t.check(body == b"" and start == nxt, f"console of a VM that never ran: {len(body)} bytes, {start}..{nxt}")
    r = d.unix.post(f"vms/{VM}/console", raw=b"echo hi\n", content_type="application/octet-stream")
    t.expect_error(r, 409, "conflict", mentions=("stopped",), what="console input to a stopped VM")
    r = d.unix.get("vms/ghost/console")
    t.expect_error(r, 404, "not_found", mentions=("ghost",), what="console of an unknown VM")

    d.api("POST", f"vms/{VM}/start", expect=200)
    d.console_wait(VM, b"VESSEL-GUEST-READY", timeout=120)
    d.console_run(VM, "echo up-$((1+1))", b"up-2", timeout=60)

    # about 1.3 MiB of output: 20000 lines of 64 bytes, then a marker
    line = "x" * 63
    cmd = (f"i=0; while [ $i -lt 20000 ]; do echo {line}; i=$((i+1)); done; "
           f"echo flood-$((500+500))-done\n")
    t0 = time.monotonic()
    d.console_write(VM, cmd)
    d.console_wait(VM, b"flood-1000-done", since=0, timeout=200)
    log(f"1.3 MiB of console output in {time.monotonic() - t0:.1f}s")

    body, start, nxt = d.console_read(VM, 0)
    t.check(start > 0, f"after >1 MiB of output, since=0 still starts at {start}")
    t.check(0 < len(body) <= RING, f"since=0 returned {len(body)} bytes (at most {RING} are kept)")
    t.check(len(body) >= RING - 64 * 1024, f"since=0 returned only {len(body)} bytes of the 1 MiB kept")
    t.check(nxt == start + len(body), f"Next {nxt} != Start {start} + {len(body)}")
    t.check(b"flood-1000-done" in body[-200:], f"the newest output is not at the end: {body[-120:]!r}")
    _, s2, n2 = d.console_read(VM, 1)
    t.check(s2 == start and n2 == nxt, f"since=1 (dropped): start {s2} next {n2}, expected {start} {nxt}")
    b3, s3, n3 = d.console_read(VM, nxt)
    t.check(b3 == b"" and s3 == nxt and n3 == nxt, f"since=Next: {len(b3)} bytes, {s3}..{n3}")
    mid = start + len(body) // 2
    b4, s4, n4 = d.console_read(VM, mid)
    t.check(s4 == mid and b4 == body[len(body) // 2:], f"since={mid}: start {s4}, {len(b4)} bytes")

    ws, status, _, _ = vt.WebSocket.connect(f"/api/v1/vms/{VM}/console/ws", unix_path=d.sock)
    t.require(ws, f"console/ws: HTTP {status}")
    got = b""
    try:
        end = time.monotonic() + 3
        while time.monotonic() < end:
            try:
                op, payload = ws.recv_frame(max(0.1, end - time.monotonic()))
            except TimeoutError:
                break
            if op in (0x1, 0x2):
                got += payload
    finally:
        ws.close()
    t.check(0 < len(got) <= 16 * 1024, f"WebSocket history is {len(got)} bytes, expected 1..16384")
    t.check(b"flood-1000-done" in got, "WebSocket history does not end with the newest output")

    r = d.unix.post(f"vms/{VM}/console", raw=b"#" * (70 * 1024), content_type="application/octet-stream")
    t.expect_error(r, 413, "payload_too_large", what="console input over 64 KiB")
    d.console_run(VM, "echo still-$((3+4))", b"still-7", timeout=60)
    d.api("DELETE", f"vms/{VM}?force=true", expect=200)


if __name__ == "__main__":
    vt.Test("console", limit=300).run(main)
