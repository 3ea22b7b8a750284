"""vesseltest: helpers for the vesseld integration tests and the daemon benchmarks.

Standard library only. It gives a test
  - its own vesseld (temporary data dir, free TCP port, own Unix socket, own
    --allow-dir import dir), started and stopped on demand;
  - an HTTP client for the contract in docs/api.md, over the Unix socket
    (http.client with an AF_UNIX connection) or over TCP with the bearer token;
  - console helpers (wait for a line, run a command and wait for its output);
  - a runner that bounds the whole file in time and always cleans up: it kills
    its vesseld and every process whose command line names the temporary dir
    (the QEMUs that vesseld started for it), then removes the dir.

Exit codes follow tests/run-all: 0 pass, 1 fail, 77 skip (after `SKIP reason`).
"""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.path.abspath(os.environ.get("VESSEL_BUILD", os.path.join(ROOT, "build")))
GUEST = os.path.abspath(os.environ.get("VESSEL_GUEST", os.path.join(BUILD, "guest")))
VESSELD = os.path.join(BUILD, "src", "daemon", "vesseld")
API = "/api/v1"

_T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - _T0:6.1f}s] {msg}", flush=True)


class Skip(Exception):
    """Raised to end the test with exit 77."""


class Failure(Exception):
    """Raised by a hard check: the test cannot go on."""


def skip(reason):
    raise Skip(reason)


def need_vesseld():
    if not os.access(VESSELD, os.X_OK):
        skip(f"vesseld binary not found at {VESSELD} (build it, or set VESSEL_BUILD)")
    return VESSELD


def need_guest(*names):
    paths = []
    for n in names:
        p = os.path.join(GUEST, n)
        if not os.path.isfile(p):
            skip(f"guest image {p} is missing (run guest/build.sh {GUEST}, or set VESSEL_GUEST)")
        paths.append(p)
    return paths


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- processes

def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def proc_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pids_mentioning(text, exclude=()):
    """Pids of live processes whose command line contains text."""
    out = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        if pid == me or pid in exclude:
            continue
        argv = proc_cmdline(pid)
        if argv and any(text in a for a in argv) and proc_alive(pid):
            out.append(pid)
    return out


def is_qemu(pid):
    argv = proc_cmdline(pid)
    return bool(argv) and "qemu" in os.path.basename(argv[0])


def wait_gone(pids, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not any(proc_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(proc_alive(p) for p in pids)


# ---------------------------------------------------------------- HTTP

class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over an AF_UNIX stream socket (vesseld's --socket)."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Response:
    def __init__(self, method, path, status, headers, body):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers  # dict, lower-case names
        self.body = body
        self._json = None
        self._json_err = None
        try:
            self._json = json.loads(body) if body else None
        except ValueError as e:
            self._json_err = str(e)

    @property
    def json(self):
        return self._json

    @property
    def is_json(self):
        return self._json_err is None and self._json is not None

    @property
    def error_code(self):
        j = self._json
        if isinstance(j, dict) and isinstance(j.get("error"), dict):
            return j["error"].get("code")
        return None

    @property
    def error_message(self):
        j = self._json
        if isinstance(j, dict) and isinstance(j.get("error"), dict):
            return j["error"].get("message") or ""
        return ""

    def short(self):
        b = self.body[:400].decode(errors="replace")
        return f"{self.method} {self.path} -> {self.status} {b}"


class Client:
    """One request per connection: simple, and a stuck request cannot wedge the next."""

    def __init__(self, unix_path=None, port=None, token=None, timeout=30):
        self.unix_path = unix_path
        self.port = port
        self.token = token
        self.timeout = timeout

    def _conn(self, timeout):
        if self.unix_path:
            return UnixHTTPConnection(self.unix_path, timeout=timeout)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, raw=None, headers=None, timeout=None,
                token=Ellipsis, content_type="application/json"):
        """body: a JSON-able object; raw: bytes sent as is. token: Ellipsis = the
        client's own, None = no Authorization header, str = that token."""
        if not path.startswith("/"):
            path = API + "/" + path
        h = dict(headers or {})
        tok = self.token if token is Ellipsis else token
        if tok is not None:
            h["Authorization"] = f"Bearer {tok}"
        data = None
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type:
            h.setdefault("Content-Type", content_type)
        c = self._conn(timeout or self.timeout)
        try:
            try:
                c.request(method, path, body=data, headers=h)
            except (BrokenPipeError, ConnectionResetError):
                # the server may answer (413) and close before reading a big body
                pass
            r = c.getresponse()
            resp = Response(method, path, r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            c.close()
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


# ---------------------------------------------------------------- WebSocket

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


class WebSocket:
    """A minimal RFC 6455 client: enough to read the console stream and type
    into it. Client frames are masked (section 5.3), server frames are not."""

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.buf = leftover

    @classmethod
    def connect(cls, path, unix_path=None, port=None, headers=None, timeout=10):
        if unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(unix_path)
        else:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        s.sendall((f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        status = int(lines[0].split()[1]) if len(lines[0].split()) > 1 else 0
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if status != 101:
            s.close()
            return None, status, hdrs, rest
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            s.close()
            raise Failure(f"WebSocket handshake: Sec-WebSocket-Accept {hdrs.get('sec-websocket-accept')!r}, "
                          f"expected {want!r}")
        return cls(s, rest), status, hdrs, b""

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("WebSocket closed by the server")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=10):
        """(opcode, payload) of the next frame; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._need(2, deadline)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._need(2, deadline), "big")
        elif n == 127:
            n = int.from_bytes(self._need(8, deadline), "big")
        mask = self._need(4, deadline) if b1 & 0x80 else None
        payload = self._need(n, deadline) if n else b""
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return b0 & 0x0F, payload

    def send(self, data, opcode=0x2):
        if isinstance(data, str):
            data = data.encode()
        hdr = bytes([0x80 | opcode])
        n = len(data)
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            hdr += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        self.sock.sendall(hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(data)))

    def read_until(self, pattern, timeout=30, seen=b""):
        """Collect data frames until pattern shows up; returns everything read."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        end = time.monotonic() + timeout
        while pattern not in seen:
            left = end - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                op, payload = self.recv_frame(left)
            except TimeoutError:
                raise Failure(f"WebSocket: {pattern!r} not received within {timeout}s; "
                              f"last: {seen[-300:]!r}")
            if op in (0x0, 0x1, 0x2):
                seen += payload
            elif op == 0x8:
                raise Failure(f"WebSocket closed by the server while waiting for {pattern!r}: {payload!r}")
            elif op == 0x9:
                self.send(payload, opcode=0xA)
        return seen

    def close(self):
        try:
            self.send(b"\x03\xe8", opcode=0x8)
        except OSError:
            pass
        self.sock.close()


# ---------------------------------------------------------------- daemon

class Daemon:
    """A private vesseld. Layout of self.tmp:
        data/      --data-dir
        import/    --allow-dir (images and kernels are copied here)
        vesseld.sock, vesseld.log
    """

    def __init__(self, tag, extra_args=()):
        need_vesseld()
        self.tag = tag
        self.tmp = tempfile.mkdtemp(prefix=f"vessel-it-{tag}-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.import_dir = os.path.join(self.tmp, "import")
        os.makedirs(self.data_dir)
        os.makedirs(self.import_dir)
        self.sock = os.path.join(self.tmp, "vesseld.sock")
        self.port = free_port()
        self.log_path = os.path.join(self.tmp, "vesseld.log")
        self.extra_args = list(extra_args)
        self.proc = None
        self.token = None
        self.unix = Client(unix_path=self.sock)
        self.tcp = None
        self.starts = 0

    # -- process

    def argv(self):
        # Test daemons share the host's cgroup tree; unless a test asks for
        # one (priorities.py), they keep out of it so VMs of the same name
        # in two test daemons never share a group.
        cg = [] if "--cgroup-root" in self.extra_args else ["--cgroup-root", "none"]
        return [VESSELD, "--data-dir", self.data_dir, "--socket", self.sock,
                "--listen", f"127.0.0.1:{self.port}", "--allow-dir", self.import_dir] + cg + self.extra_args

    def start(self, timeout=30):
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(f"\n==== vesseld start #{self.starts}: {' '.join(self.argv())}\n".encode())
        logf.flush()
        # own session: a ^C on the test does not reach vesseld before our cleanup does
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise Failure(f"vesseld exited with status {self.proc.returncode} during start-up\n"
                              + self.log_tail())
            if os.path.exists(self.sock):
                try:
                    r = self.unix.get("/api/v1/host", timeout=5)
                    if r.status == 200:
                        break
                    last = r.short()
                except OSError as e:
                    last = str(e)
            time.sleep(0.05)
        else:
            raise Failure(f"vesseld did not answer GET /api/v1/host on {self.sock} within {timeout}s "
                          f"(last: {last})\n" + self.log_tail())
        tok_path = os.path.join(self.data_dir, "admin.token")
        try:
            with open(tok_path) as f:
                self.token = f.read().strip()
        except OSError as e:
            raise Failure(f"vesseld is up but {tok_path} cannot be read: {e}")
        self.tcp = Client(port=self.port, token=self.token)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stop vesseld with sig; returns its exit status (None if it had to be SIGKILLed)."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise Failure(f"vesseld (pid {self.proc.pid}) did not exit within {timeout}s of signal {sig}")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return "    | (no vesseld log)"
        return "\n".join("    | " + l for l in lines[-n:])

    def qemu_pids(self):
        """QEMU processes started for this daemon (their command line names our tmp dir)."""
        return [p for p in pids_mentioning(self.tmp, exclude=(self.pid,) if self.alive() else ())
                if is_qemu(p)]

    def cleanup(self, keep=False):
        """Stop vesseld (SIGTERM), kill what it left, remove the temp dir.
        Returns a sentence when vesseld did not shut down cleanly, else None."""
        problem = None
        try:
            if self.alive():
                self.proc.send_signal(signal.SIGTERM)
                try:
                    rc = self.proc.wait(10)
                    if rc != 0:
                        problem = f"vesseld exited with status {rc} on SIGTERM (a clean shutdown is 0)"
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
                    problem = "vesseld did not exit within 10 s of SIGTERM"
                if problem:
                    problem += "\n" + self.log_tail(40)
        except Exception as e:  # cleanup must go on
            log(f"cleanup: stopping vesseld: {e}")
        left = pids_mentioning(self.tmp)
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            log(f"cleanup: killed leftover processes {left}")
            wait_gone(left, 10)
        if keep or problem:
            log(f"cleanup: keeping {self.tmp} for inspection")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return problem

    # -- API helpers (over the Unix socket)

    def api(self, method, path, body=None, expect=None, **kw):
        r = self.unix.request(method, path, body=body, **kw)
        if expect is not None and r.status != expect:
            raise Failure(f"expected HTTP {expect}: {r.short()}")
        return r

    def vm(self, name):
        r = self.api("GET", f"vms/{name}", expect=200)
        return r.json["vm"]

    def vms(self):
        return self.api("GET", "vms", expect=200).json["vms"]

    def images(self):
        return self.api("GET", "images", expect=200).json["images"]

    def wait_task(self, task_id, timeout=120):
        """Poll a task until it ends; returns (task, progress values seen)."""
        seen = []
        end = time.monotonic() + timeout
        while True:
            r = self.api("GET", f"tasks/{task_id}", expect=200)
            t = r.json["task"]
            if not seen or seen[-1] != t.get("progress"):
                seen.append(t.get("progress"))
            if t.get("state") != "running":
                return t, seen
            if time.monotonic() > end:
                raise Failure(f"task {task_id} still running after {timeout}s: {t}")
            time.sleep(0.1)

    def wait_vm(self, name, pred, timeout, what):
        end = time.monotonic() + timeout
        vm = None
        while time.monotonic() < end:
            vm = self.vm(name)
            if pred(vm):
                return vm
            time.sleep(0.1)
        raise Failure(f"VM {name}: {what} not reached within {timeout}s; last {json.dumps(vm)}")

    def import_image(self, name, src, fmt="auto", timeout=180):
        """Copy src into the allowed dir and import it; returns (image, task, progress values)."""
        dst = os.path.join(self.import_dir, os.path.basename(src))
        if not os.path.exists(dst):
            shutil.copyfile(src, dst)
        r = self.api("POST", "images", {"name": name, "path": dst, "format": fmt}, expect=202)
        task = r.json["task"]
        task, progress = self.wait_task(task["id"], timeout)
        if task["state"] != "succeeded":
            raise Failure(f"import of {src} failed: {task}")
        img = self.api("GET", f"images/{name}", expect=200).json["image"]
        return img, task, progress, r.json

    def kernel_vm(self, name, kernel, initrd, disks=None, memory_mib=256):
        """Copy the guest's kernel and initramfs into the allowed dir (once) and
        create a stopped VM that boots them directly, console on ttyS0, with the
        given disks (none when None); returns the VM."""
        paths = []
        for src in (kernel, initrd):
            dst = os.path.join(self.import_dir, os.path.basename(src))
            if not os.path.exists(dst):
                shutil.copyfile(src, dst)
            paths.append(dst)
        body = {"name": name, "memory_mib": memory_mib,
                "boot": {"firmware": "kernel", "kernel": paths[0], "initrd": paths[1],
                         "cmdline": "console=ttyS0 quiet"}}
        if disks is not None:
            body["disks"] = disks
        return self.api("POST", "vms", body, expect=201).json["vm"]

    # -- console

    def console_read(self, name, since=0):
        r = self.api("GET", f"vms/{name}/console?since={since}", expect=200)
        start = int(r.headers.get("x-console-start", "-1"))
        nxt = int(r.headers.get("x-console-next", "-1"))
        return r.body, start, nxt

    def console_next(self, name):
        """Offset at the current end of the console (to wait for output after it)."""
        _, _, nxt = self.console_read(name, since=1 << 62)
        return nxt

    def console_wait(self, name, pattern, since=0, timeout=60, resend=None, resend_every=6.0):
        """Wait until pattern (bytes or compiled regex) appears in the console output
        written at or after offset since. resend: bytes to write again every
        resend_every seconds while waiting (commands typed before the shell is
        ready are lost). Returns (offset just past the match, text seen)."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        buf = b""
        base = since
        pos = since
        end = time.monotonic() + timeout
        next_send = time.monotonic() + resend_every
        while True:
            body, start, nxt = self.console_read(name, pos)
            if nxt < pos:
                # the ring restarted (new run of the VM): read it from its start
                body, start, nxt = self.console_read(name, 0)
                buf, base = b"", start
            elif start > base + len(buf):
                buf, base = b"", start  # older bytes dropped from the ring
            buf += body
            pos = nxt
            if isinstance(pattern, bytes):
                i = buf.find(pattern)
                m_end = i + len(pattern) if i >= 0 else -1
            else:
                m = pattern.search(buf)
                m_end = m.end() if m else -1
            if m_end >= 0:
                return base + m_end, buf
            now = time.monotonic()
            if now > end:
                tail = buf[-600:].decode(errors="replace")
                raise Failure(f"VM {name}: {pattern!r} not seen on the console within {timeout}s "
                              f"after offset {since}; last output:\n{tail}")
            if resend is not None and now > next_send:
                self.console_write(name, resend)
                next_send = now + resend_every
            time.sleep(0.1)

    def console_write(self, name, data):
        if isinstance(data, str):
            data = data.encode()
        r = self.api("POST", f"vms/{name}/console", raw=data, expect=200,
                     content_type="application/octet-stream")
        if not r.is_json or r.json.get("written") != len(data):
            raise Failure(f"console write of {len(data)} bytes: {r.short()}")
        return r

    def console_run(self, name, cmd, expect, timeout=40):
        """Type cmd (a shell line) and wait for expect in the output; the line is
        typed again every few seconds until the answer comes, so a shell that was
        not ready yet does not make the test flaky."""
        since = self.console_next(name)
        line = cmd if cmd.endswith("\n") else cmd + "\n"
        self.console_write(name, line)
        return self.console_wait(name, expect, since=since, timeout=timeout, resend=line.encode())

    # -- filesystem view

    def files(self, ignore=(r"\.(db|sqlite|sqlite3)(-wal|-shm|-journal)?$", r"\.log$")):
        """Relative paths of everything under the data dir, minus the state
        database and log files (they legitimately change on every request)."""
        pats = [re.compile(p) for p in ignore]
        out = set()
        for d, dirs, fs in os.walk(self.data_dir):
            for n in dirs + fs:
                p = os.path.relpath(os.path.join(d, n), self.data_dir)
                if not any(pt.search(p) for pt in pats):
                    out.add(p + ("/" if n in dirs else ""))
        return out

    def sockets(self):
        out = []
        for d, _, fs in os.walk(self.data_dir):
            for n in fs:
                p = os.path.join(d, n)
                try:
                    if (os.lstat(p).st_mode & 0o170000) == 0o140000:
                        out.append(p)
                except FileNotFoundError:
                    pass
        return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def qemu_img_info(path):
    p = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True,
                       text=True, timeout=30)
    if p.returncode != 0:
        raise Failure(f"qemu-img info {path}: {p.stderr.strip()}")
    return json.loads(p.stdout)


# ---------------------------------------------------------------- runner

class Test:
    """Runs one test file: whole-file time limit, soft and hard checks, cleanup.

        t = Test("lifecycle", limit=300)
        t.run(main)   # main(t); never returns
    """

    def __init__(self, name, limit=300):
        self.name = name
        self.limit = limit
        self.daemons = []
        self.failures = []
        self.checks = 0
        self.notes = []

    def daemon(self, tag=None, **kw):
        d = Daemon(tag or self.name, **kw)
        self.daemons.append(d)
        return d

    def check(self, cond, msg):
        """Soft check: records a failure and goes on."""
        self.checks += 1
        if not cond:
            self.failures.append(msg)
            log(f"FAIL: {msg}")
        return bool(cond)

    def require(self, cond, msg):
        """Hard check: the test cannot continue without it."""
        self.checks += 1
        if not cond:
            raise Failure(msg)

    def note(self, msg):
        self.notes.append(msg)
        log(f"NOTE: {msg}")

    def expect_error(self, r, status, code, mentions=(), what=""):
        """A contract error: HTTP status, {"error": {"code", "message"}}, the
        message naming the problem (every string in mentions, case-insensitive)."""
        label = what or f"{r.method} {r.path}"
        ok = self.check(r.status == status, f"{label}: expected HTTP {status}, got {r.short()}")
        ok &= self.check(r.is_json and r.error_code == code,
                         f"{label}: expected error code {code!r}, got {r.short()}")
        msg = r.error_message
        ok &= self.check(len(msg) >= 10, f"{label}: error message is missing or too short: {msg!r}")
        for m in mentions:
            ok &= self.check(m.lower() in msg.lower(),
                             f"{label}: error message does not name {m!r}: {msg!r}")
        return ok

    def _alarm(self, signum, frame):
        raise Failure(f"whole-test time limit of {self.limit}s reached")

    def _term(self, signum, frame):
        raise Failure(f"interrupted by signal {signum}")

    def run(self, fn):
        signal.signal(signal.SIGALRM, self._alarm)
        signal.signal(signal.SIGTERM, self._term)
        signal.signal(signal.SIGINT, self._term)
        signal.alarm(self.limit)
        rc = 0
        keep = os.environ.get("VESSEL_ITEST_KEEP") == "1"
        try:
            fn(self)
            rc = 1 if self.failures else 0
        except Skip as e:
            print(f"SKIP {e}", flush=True)
            rc = 77
        except Failure as e:
            self.failures.append(str(e))
            log(f"FAIL (fatal): {e}")
            rc = 1
        except Exception:
            self.failures.append("unexpected exception:\n" + traceback.format_exc())
            log("FAIL (exception):\n" + traceback.format_exc())
            rc = 1
        finally:
            signal.alarm(0)
            signal.alarm(60)  # cleanup is bounded too
            for d in self.daemons:
                if rc == 1:
                    log(f"vesseld log ({d.log_path}):\n{d.log_tail(60)}")
                try:
                    problem = d.cleanup(keep=keep)
                except Exception as e:
                    problem = None
                    log(f"cleanup of {d.tmp}: {e}")
                if problem and rc != 77:
                    # e.g. LeakSanitizer reports at exit in an ASan build
                    self.failures.append(problem)
                    log(f"FAIL: {problem}")
                    rc = 1
            signal.alarm(0)
        for n in self.notes:
            print(f"NOTE {n}")
        if rc == 0:
            print(f"PASS {self.name}: {self.checks} checks", flush=True)
        elif rc == 1:
            print(f"FAIL {self.name}: {len(self.failures)} of {self.checks} checks failed", flush=True)
            for f in self.failures:
                print(f"  - {f.splitlines()[0] if f else f}", flush=True)
        sys.exit(rc)
