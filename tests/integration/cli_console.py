#!/usr/bin/env python3
"""cli_console: the `vessel` CLI driving a real guest under QEMU/TCG.

Starts its own vesseld (temporary data dir, random port, own socket), creates
a direct-kernel-boot VM from the test guest (guest/build.sh output: vmlinuz
and initramfs.img, found in $VESSEL_GUEST or $VESSEL_BUILD/guest), starts it
with `vessel vm start`, and checks:
  - `vessel vm log` shows the boot and `--follow` picks up new output;
  - `vessel vm console` with a pipe as stdin: a command's output comes back,
    over the Unix socket and over TCP with the bearer token;
  - `vessel vm console` on a terminal (a pty): "Connected to ..." first,
    typed command answered, Ctrl-C goes to the guest (vessel keeps running),
    Ctrl-] detaches with exit 0, and the terminal is back in cooked mode;
  - console of an unknown VM: exit 1 and one line "vessel: ...";
  - pause/resume/reboot/stop --timeout/delete --force.
Exit 0 pass, 1 fail, 77 skip (after "SKIP reason").
"""
import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("VESSEL_BUILD", os.path.join(ROOT, "build")))
GUEST = os.path.abspath(os.environ.get("VESSEL_GUEST", os.path.join(BUILD, "guest")))
VESSEL = os.environ.get("VESSEL_CLI_BIN", os.path.join(BUILD, "src", "cli", "vessel"))
VESSELD = os.environ.get("VESSELD_BIN", os.path.join(BUILD, "src", "daemon", "vesseld"))
DEADLINE = time.monotonic() + 400
PROMPT = b"~ # "

passed = 0
failed = 0


def ok(name):
    global passed
    passed += 1
    print(f"ok   {name}", flush=True)


def bad(name, detail=""):
    global failed
    failed += 1
    print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)


def check(cond, name, detail=""):
    if cond:
        ok(name)
    else:
        bad(name, detail)
    return cond


def skip(reason):
    print(f"SKIP {reason}")
    sys.exit(77)


class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="vessel-cli-console.")
        self.data = os.path.join(self.tmp, "data")
        self.sock = os.path.join(self.tmp, "vesseld.sock")
        self.imp = os.path.join(self.data, "import")
        os.makedirs(self.imp)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.log = open(os.path.join(self.tmp, "vesseld.log"), "wb")
        self.daemon = subprocess.Popen(
            [VESSELD, "--data-dir", self.data, "--listen", f"127.0.0.1:{self.port}", "--socket", self.sock],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.pids = []  # QEMU pids seen, killed at the end if still there

    def vessel(self, *args, stdin=subprocess.DEVNULL, timeout=60, tcp=False):
        conn = (["--url", f"http://127.0.0.1:{self.port}", "--token-file", os.path.join(self.data, "admin.token")]
                if tcp else ["--socket", self.sock])
        return subprocess.run([VESSEL, *conn, *args], stdin=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)

    def close(self):
        self.daemon.terminate()
        try:
            self.daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        for pid in self.pids:
            if qemu_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.log.close()
        if failed:
            with open(os.path.join(self.tmp, "vesseld.log"), errors="replace") as f:
                print("vesseld log (last 30 lines):")
                for line in f.read().splitlines()[-30:]:
                    print("    | " + line)
        shutil.rmtree(self.tmp, ignore_errors=True)


def qemu_alive(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"qemu" in f.read()
    except OSError:
        return False


def wait_log(env, name, needle, timeout):
    """Poll `vessel vm log` until needle appears; returns the log."""
    end = min(time.monotonic() + timeout, DEADLINE)
    out = b""
    while time.monotonic() < end:
        r = env.vessel("vm", "log", name)
        out = r.stdout
        if needle in out:
            return out
        time.sleep(0.5)
    return out


def pty_console(env, name):
    """Run `vessel vm console` on a pty, then `stty -a` in the same
    terminal; returns (exit status, everything the terminal showed)."""
    script = f'"{VESSEL}" --socket "{env.sock}" vm console {name}; echo "EXIT=$?"; stty -a'
    pid, fd = pty.fork()
    if pid == 0:
        os.execv("/bin/sh", ["/bin/sh", "-c", script])
    out = bytearray()

    def pump(secs, until=None):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if until and until in out:
                return True
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    d = os.read(fd, 4096)
                except OSError:
                    return False
                if not d:
                    return False
                out.extend(d)
        return bool(until and until in out)

    pump(10, b"Connected to")
    os.write(fd, b"\r")
    pump(10, PROMPT)
    os.write(fd, b"echo pty-$((6*7))\r")
    pump(10, b"pty-42")
    os.write(fd, b"\x03")  # in raw mode Ctrl-C is a byte for the guest
    pump(1.5)
    os.write(fd, b"\x1d")  # Ctrl-]
    pump(10, b"speed")
    pump(0.5)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        status = 0
    os.close(fd)
    return os.waitstatus_to_exitcode(status), bytes(out)


def main():
    for path, what in ((VESSEL, "vessel CLI"), (VESSELD, "vesseld")):
        if not os.access(path, os.X_OK):
            skip(f"{what} not built at {path} (build it, or set VESSEL_BUILD)")
    if not shutil.which("qemu-system-x86_64"):
        skip("qemu-system-x86_64 is not installed (scripts/install-deps)")
    kernel = os.path.join(GUEST, "vmlinuz")
    initrd = os.path.join(GUEST, "initramfs.img")
    if not (os.path.exists(kernel) and os.path.exists(initrd)):
        skip(f"test guest not built in {GUEST} (run guest/build.sh {GUEST}, or set VESSEL_GUEST)")

    env = Env()
    try:
        for _ in range(100):
            if os.path.exists(env.sock) or env.daemon.poll() is not None:
                break
            time.sleep(0.1)
        if not os.path.exists(env.sock):
            bad("vesseld start", f"no socket {env.sock} after 10 s")
            return
        shutil.copy(kernel, env.imp)
        shutil.copy(initrd, env.imp)

        r = env.vessel("vm", "create", "con", "--memory", "256M", "--kernel", os.path.join(env.imp, "vmlinuz"),
                       "--initrd", os.path.join(env.imp, "initramfs.img"), "--cmdline", "console=ttyS0")
        if not check(r.returncode == 0, "vm create (kernel boot)", r.stderr.decode(errors="replace")):
            return
        r = env.vessel("vm", "start", "con")
        if not check(r.returncode == 0 and b"state running" in r.stdout, "vm start",
                     (r.stdout + r.stderr).decode(errors="replace")):
            return
        r = env.vessel("--json", "vm", "show", "con")
        pid = json.loads(r.stdout)["vm"]["pid"]
        if pid:
            env.pids.append(pid)
        r = env.vessel("vm", "show", "con")
        check(b"state:          running" in r.stdout and f"pid:            {pid}".encode() in r.stdout,
              "vm show of a running VM", r.stdout.decode(errors="replace"))

        log = wait_log(env, "con", PROMPT, 120)
        if not check(PROMPT in log, "vm log shows the boot up to the shell prompt", repr(log[-200:])):
            return

        follow = subprocess.Popen([VESSEL, "--socket", env.sock, "vm", "log", "con", "--follow"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1)

        r = subprocess.run([VESSEL, "--socket", env.sock, "vm", "console", "con"],
                           input=b"echo pipe-$((6*7))\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        check(r.returncode == 0 and b"pipe-42" in r.stdout, "console with piped stdin (Unix socket)",
              f"rc={r.returncode} out={r.stdout[-200:]!r} err={r.stderr!r}")
        check(r.stderr.startswith(b"Connected to con; detach with Ctrl-]"), "console says how to detach",
              repr(r.stderr))
        r = subprocess.run([VESSEL, "--url", f"http://127.0.0.1:{env.port}", "--token-file",
                            os.path.join(env.data, "admin.token"), "vm", "console", "con"],
                           input=b"echo tcp-$((6*7))\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        check(r.returncode == 0 and b"tcp-42" in r.stdout, "console with piped stdin (TCP + token)",
              f"rc={r.returncode} out={r.stdout[-200:]!r} err={r.stderr!r}")
        r = subprocess.run([VESSEL, "--url", f"http://127.0.0.1:{env.port}", "vm", "console", "con"],
                           input=b"", stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(r.returncode == 1 and r.stderr.count(b"\n") == 1 and r.stderr.startswith(b"vessel: "),
              "console over TCP without a token is refused with one line", repr(r.stderr))

        time.sleep(1.5)
        follow.terminate()
        fout, _ = follow.communicate(timeout=10)
        check(b"tcp-42" in fout and b"pipe-42" in fout, "vm log --follow shows new output",
              repr(fout[-300:]))

        status, out = pty_console(env, "con")
        check(b"Connected to con; detach with Ctrl-]" in out, "tty console: connected line")
        check(b"pty-42" in out, "tty console: typed command answered", repr(out[-300:]))
        check(b"^C" in out and b"EXIT=0" in out, "tty console: Ctrl-C went to the guest, Ctrl-] detached with exit 0",
              repr(out[-400:]))
        check(b"Detached from con" in out, "tty console: says it detached")
        stty = out[out.find(b"speed"):] if b"speed" in out else b""
        check(b" icanon" in stty and b" echo " in stty and b"-icanon" not in stty,
              "tty console: terminal restored to cooked mode", repr(stty[:300]))

        r = env.vessel("vm", "console", "nope", stdin=subprocess.PIPE)
        check(r.returncode == 1 and r.stderr.count(b"\n") == 1 and b"nope" in r.stderr,
              "console of an unknown VM: exit 1, one line", repr(r.stderr))

        for action, state in (("pause", b"paused"), ("resume", b"running"), ("reboot", b"running")):
            r = env.vessel("vm", action, "con")
            check(r.returncode == 0 and b"state " + state in r.stdout, f"vm {action}",
                  (r.stdout + r.stderr).decode(errors="replace"))
        r = env.vessel("vm", "start", "con")
        check(r.returncode == 1 and r.stderr.count(b"\n") == 1, "vm start of a running VM: one-line 409",
              repr(r.stderr))
        r = env.vessel("vm", "delete", "con")
        check(r.returncode == 1 and r.stderr.count(b"\n") == 1, "vm delete of a running VM without --force",
              repr(r.stderr))
        r = env.vessel("vm", "stop", "con", "--timeout", "3", timeout=60)
        check(r.returncode == 0 and b"state stopped" in r.stdout, "vm stop --timeout",
              (r.stdout + r.stderr).decode(errors="replace"))
        r = env.vessel("vm", "log", "con")
        check(r.returncode == 0 and b"pty-42" in r.stdout, "vm log of a stopped VM keeps the last run")
        r = env.vessel("vm", "start", "con")
        check(r.returncode == 0, "vm start again")
        pid2 = json.loads(env.vessel("--json", "vm", "show", "con").stdout)["vm"]["pid"]
        if pid2:
            env.pids.append(pid2)
        r = env.vessel("vm", "delete", "con", "--force")
        check(r.returncode == 0 and b"deleted VM con" in r.stdout, "vm delete --force of a running VM",
              (r.stdout + r.stderr).decode(errors="replace"))
        time.sleep(1)
        check(pid2 and not qemu_alive(pid2), "its QEMU is gone after delete --force")
    finally:
        env.close()


if __name__ == "__main__":
    main()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)
