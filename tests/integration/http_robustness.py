#!/usr/bin/env python3
"""http_robustness: hostile HTTP on the TCP port neither crashes nor wedges vesseld.

API clients are untrusted until authenticated (DESIGN.md "Processes and
trust"). Garbage request lines, an enormous header, a Content-Length far over
64 KiB (413 without the body being sent, docs/api.md "Transport and auth"), a
chunked body over 64 KiB (413), a body shorter than its Content-Length, and
100 idle connections held open: after each, vesseld is alive and a normal
request is answered promptly. Nothing is created by any of them.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402


def raw_exchange(port, data, timeout=10, half_close=False):
    """Send data, read until the server closes or timeout; returns the bytes read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and not half_close:
                # one response is enough once its body (if any) arrived
                head, _, body = out.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(body) >= int(cl[0].split(b":")[1]):
                    break
    finally:
        s.close()
    return out


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def main(t):
    vt.need_vesseld()
    d = t.daemon("http").start()
    tok = f"Authorization: Bearer {d.token}\r\n".encode()

    def healthy(label):
        t0 = time.monotonic()
        r = d.tcp.get("vms", timeout=10)
        took = time.monotonic() - t0
        t.check(d.alive(), f"[{label}] vesseld died")
        t.check(r.status == 200 and r.json == {"vms": []}, f"[{label}] then GET /vms: {r.short()}")
        t.check(took < 3, f"[{label}] then GET /vms took {took:.1f}s")

    resp = raw_exchange(d.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200), timeout=5)
    log(f"TLS hello on the HTTP port -> {resp[:40]!r}")
    healthy("TLS hello")

    resp = raw_exchange(d.port, b"GARBAGE\r\n\r\n", timeout=5)
    t.check(status_of(resp) in (None, 400, 505), f"garbage request line -> {resp[:80]!r}")
    healthy("garbage request line")

    big = b"GET /api/v1/vms HTTP/1.1\r\nHost: x\r\n" + tok + b"X-Big: " + b"a" * 200000 + b"\r\n\r\n"
    resp = raw_exchange(d.port, big, timeout=5)
    t.check(status_of(resp) in (None, 400, 413, 431), f"200 KB header -> {resp[:80]!r}")
    healthy("huge header")

    resp = raw_exchange(d.port, b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\n" + tok +
                        b"Content-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n", timeout=10)
    t.check(status_of(resp) == 413, f"Content-Length 1e12 without a body -> {resp[:120]!r}")
    t.check(b"payload_too_large" in resp, f"Content-Length 1e12: no payload_too_large code: {resp[:300]!r}")
    healthy("huge Content-Length")

    body = b'{"name": "x1", "description": "' + b"z" * 70000 + b'"}'
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 8192]), body[i:i + 8192])
                      for i in range(0, len(body), 8192)) + b"0\r\n\r\n"
    resp = raw_exchange(d.port, b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\n" + tok +
                        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks,
                        timeout=10)
    t.check(status_of(resp) == 413, f"chunked body of 70 KB -> {resp[:120]!r}")
    healthy("chunked oversize body")

    resp = raw_exchange(d.port, b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\n" + tok +
                        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\": \"x2\"}",
                        timeout=5, half_close=True)
    log(f"short body -> {resp[:60]!r}")
    healthy("body shorter than Content-Length")

    idle = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(b"GET /api/v1/vms HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append(s)
        healthy("100 idle half-sent connections")
        r = d.unix.get("host", timeout=10)
        t.check(r.status == 200, f"Unix socket while TCP is flooded: {r.short()}")
    finally:
        for s in idle:
            s.close()
    healthy("after the idle connections closed")
    t.check(d.vms() == [], f"hostile requests created VMs: {[v['name'] for v in d.vms()]}")


if __name__ == "__main__":
    vt.Test("http_robustness", limit=120).run(main)
