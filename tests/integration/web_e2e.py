#!/usr/bin/env python3
"""web_e2e: the web UI end to end in a real headless Chromium (Debian's
chromium driven by playwright-core from web/node_modules).

This file starts vesseld (its own data dir, --web-dir BUILD/web, history
sampled every second so graphs fill quickly) and runs lib/web_e2e.mjs,
which logs in with a wrong token and then the right one, imports the test
disk image through the Import dialog (progress bar), creates a VM through
the Create dialog (first with a bad value: the API's message must appear
next to the field), starts it, waits for the guest's boot line in the
xterm.js serial console and runs a typed command, opens the noVNC console
and checks the canvas has non-blank pixels, checks the graphs have data
points, stops the VM (confirmation), sees the stopped console say so,
deletes it, watches a VM deleted elsewhere vanish without errors, checks a
narrow window, logs in with a viewer token (no actions offered), then with
an operator token that an admin revokes while the page is open, and
expects the login page with the reason.

Screenshots go to VESSEL_TEST_OUT (default BUILD/test-logs/web/) and their
paths are printed. SKIP (77) when node, chromium or playwright-core is
missing.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

WEB_SRC = os.path.join(vt.ROOT, "web")
WEB_OUT = os.path.join(vt.BUILD, "web")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def prerequisites():
    if not shutil.which("node"):
        vt.skip("node is missing (scripts/install-deps installs nodejs and npm)")
    major = subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"], capture_output=True,
                           text=True).stdout.strip()
    if not major.isdigit() or int(major) < 20:
        vt.skip(f"node {major or '?'} is too old: playwright-core 1.65 needs node 20 or newer")
    if not os.access(CHROMIUM, os.X_OK):
        vt.skip(f"{CHROMIUM} is missing (scripts/install-deps installs Debian's chromium)")
    pw = os.path.join(WEB_SRC, "node_modules", "playwright-core", "package.json")
    # Assemble the UI from the current web/src (a second or so when the
    # packages are installed already), with the devDependencies:
    # playwright-core drives the browser.
    log("assembling the web UI (web/build.sh, with devDependencies)")
    p = subprocess.run([os.path.join(WEB_SRC, "build.sh"), WEB_OUT], env=dict(os.environ, VESSEL_WEB_DEV="1"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if p.returncode != 0:
        log(f"web/build.sh failed:\n{p.stdout}")
        if not os.path.exists(pw) or not os.path.exists(os.path.join(WEB_OUT, "index.html")):
            last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "no output"
            vt.skip(f"playwright-core is not installed and web/build.sh could not install it: {last}")


def main(t):
    vt.need_vesseld()
    (disk,) = vt.need_guest("disk.qcow2")
    prerequisites()
    shots = os.environ.get("VESSEL_TEST_OUT") or os.path.join(vt.BUILD, "test-logs", "web")
    os.makedirs(shots, exist_ok=True)
    d = t.daemon("web", extra_args=["--web-dir", WEB_OUT, "--history-interval", "1"]).start()
    imp = os.path.join(d.import_dir, "disk.qcow2")
    shutil.copyfile(disk, imp)

    # the page is public, the API is not (also checked in the unit tests)
    r = d.tcp.get("/", token=None)
    t.check(r.status == 200 and b"<html" in r.body, f"GET / without a token: {r.status}")
    t.check(r.headers.get("content-type", "").startswith("text/html"), f"GET / type: {r.headers}")
    r = d.tcp.get("/api/v1/vms", token=None)
    t.check(r.status == 401, f"the API without a token: {r.status}")

    env = dict(os.environ, VESSEL_URL=f"http://127.0.0.1:{d.port}/", VESSEL_TOKEN=d.token,
               VESSEL_IMPORT=imp, VESSEL_WEB_NODE_MODULES=os.path.join(WEB_SRC, "node_modules"),
               VESSEL_SHOTS=shots, CHROMIUM=CHROMIUM)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "web_e2e.mjs")
    log(f"running {script}")
    p = subprocess.Popen(["node", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    out = []
    try:
        for line in p.stdout:
            line = line.rstrip("\n")
            out.append(line)
            print(line, flush=True)
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, 9)
            p.wait()
    fails = [l for l in out if l.startswith("CHECK-FAIL")]
    for f in fails:
        t.check(False, f[len("CHECK-FAIL "):])
    t.check(rc == 0, f"web_e2e.mjs exited {rc}")
    t.check(any(l.startswith("E2E PASS") for l in out) or fails, "web_e2e.mjs did not finish")
    for name in ("dashboard.png", "vm-page.png", "serial-console.png", "vnc-console.png"):
        pth = os.path.join(shots, name)
        t.check(os.path.getsize(pth) > 5000 if os.path.exists(pth) else False, f"screenshot {pth} missing or empty")
    # nothing left behind by the UI's delete
    t.check(d.vms() == [], f"VMs left: {[v['name'] for v in d.vms()]}")


if __name__ == "__main__":
    vt.Test("web_e2e", limit=560).run(main)
