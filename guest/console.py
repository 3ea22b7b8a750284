#!/usr/bin/env python3
"""guest/console.py: drive a guest's serial console from a script.

Runs a command (a QEMU invocation whose serial port is on stdio), then works
through steps given on the command line:
  expect:TEXT     wait until TEXT appears in the output (after the last match)
  send:TEXT       type TEXT and a carriage return on the console
  exit:CODE       wait for the command to exit and require exit status CODE
Each step has to complete within --timeout seconds. Prints `TIME <s> <text>`
for every expect (seconds since start), the whole console output to --log,
and exits 0 when every step succeeded, 1 with the reason otherwise.

Example:
  console.py --timeout 60 expect:VESSEL-GUEST-READY 'send:echo hi' expect:hi \
      -- qemu-system-x86_64 -accel tcg ... -serial stdio
"""
import argparse
import os
import select
import signal
import subprocess
import sys
import time


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        print("usage: console.py [--timeout S] [--log FILE] STEP... -- COMMAND...", file=sys.stderr)
        return 2
    i = argv.index("--")
    cmd = argv[i + 1:]
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--log", default=None)
    ap.add_argument("steps", nargs="*")
    args = ap.parse_args(argv[:i])
    steps = args.steps
    if not cmd:
        print("console.py: no command given after --", file=sys.stderr)
        return 2

    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    buf = b""
    pos = 0
    ok = True
    reason = ""

    def read_some(deadline):
        nonlocal buf
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if r:
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                return False
            buf += data
        return True

    for step in steps:
        kind, _, arg = step.partition(":")
        deadline = time.monotonic() + args.timeout
        if kind == "expect":
            want = arg.encode()
            while True:
                at = buf.find(want, pos)
                if at >= 0:
                    pos = at + len(want)
                    print("TIME %.2f %s" % (time.monotonic() - start, arg))
                    break
                if not read_some(deadline) and (time.monotonic() >= deadline or proc.poll() is not None):
                    ok, reason = False, "did not see %r within %gs" % (arg, args.timeout)
                    break
        elif kind == "send":
            # A console reads what it is typed; a short pause lets the shell
            # print its prompt before the line arrives.
            time.sleep(0.2)
            try:
                proc.stdin.write(arg.encode() + b"\r")
                proc.stdin.flush()
            except BrokenPipeError:
                ok, reason = False, "console closed before sending %r" % arg
        elif kind == "exit":
            while proc.poll() is None and time.monotonic() < deadline:
                read_some(deadline)
            if proc.poll() is None:
                ok, reason = False, "command still running %gs after the last step" % args.timeout
            elif proc.returncode != int(arg):
                ok, reason = False, "command exited %d, expected %s" % (proc.returncode, arg)
        else:
            ok, reason = False, "unknown step %r" % step
        if not ok:
            break

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    try:
        while True:
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                break
            buf += data
    except OSError:
        pass
    if args.log:
        with open(args.log, "wb") as f:
            f.write(buf)
    if not ok:
        print("console.py: %s; last output: %r" % (reason, buf[-300:].decode(errors="replace")))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
