#!/usr/bin/env python3
"""bad_input: every way a request can be wrong gets the contract's answer and
changes nothing (docs/api.md, "Errors": "A request that fails changes nothing").

Each case checks the HTTP status, the error code, that the message names the
problem, and that the VM list, the image list, the files under the data dir
and the set of QEMU processes are exactly as before. The fixtures are an
imported image, a stopped VM, a running VM, and VMs whose disk was corrupted or
removed behind vesseld's back (QEMU must fail to start them: 500 engine_failed
with QEMU's own text, the VM back to stopped, nothing left behind).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

BAD = "invalid_argument"


def snapshot(d, run_files_ok=False):
    """run_files_ok: ignore regular files under run/ (a VM's run directory,
    which holds e.g. the SeaBIOS fw_cfg file from a start attempt); sockets
    there are still compared, through "sockets"."""
    keys = ("uuid", "state", "vcpus", "memory_mib", "description", "autostart", "restart_policy",
            "boot", "disks", "pid")
    vms = {v["name"]: {k: v.get(k) for k in keys} for v in d.vms()}
    imgs = sorted((i["name"], i["state"], i.get("sha256")) for i in d.images())
    files = d.files()
    if run_files_ok:
        files = {f for f in files if not f.startswith("run/")}
    return {"vms": vms, "images": imgs, "files": sorted(files), "qemu": sorted(d.qemu_pids()),
            "sockets": sorted(d.sockets())}


def diff(a, b):
    out = []
    for k in a:
        if a[k] != b[k]:
            if isinstance(a[k], list) and k in ("files", "sockets"):
                out.append(f"{k}: added {sorted(set(b[k]) - set(a[k]))}, removed {sorted(set(a[k]) - set(b[k]))}")
            else:
                out.append(f"{k}: {json.dumps(a[k])[:300]} -> {json.dumps(b[k])[:300]}")
    return "; ".join(out)


class Cases:
    def __init__(self, t, d):
        self.t = t
        self.d = d
        self.n = 0
        self.failed = []

    def run(self, label, send, expect, mentions=(), any_of=None, after=None, run_files_ok=False):
        """send(): the request (returns a Response). expect: (status, code) or a
        list of acceptable pairs. mentions: strings the message must contain.
        any_of: strings of which the message must contain at least one."""
        t, d = self.t, self.d
        self.n += 1
        before = snapshot(d, run_files_ok)
        nf = len(t.failures)
        r = send()
        pairs = expect if isinstance(expect, list) else [expect]
        got = (r.status, r.error_code)
        t.check(got in pairs, f"[{label}] expected {' or '.join(f'{s} {c}' for s, c in pairs)}, got {r.short()}")
        msg = r.error_message
        t.check(len(msg) >= 10, f"[{label}] error message missing or too short: {msg!r}")
        for m in mentions:
            t.check(m.lower() in msg.lower(), f"[{label}] message does not name {m!r}: {msg!r}")
        if any_of:
            t.check(any(m.lower() in msg.lower() for m in any_of),
                    f"[{label}] message names none of {list(any_of)}: {msg!r}")
        if after:
            after(r)
        now = snapshot(d, run_files_ok)
        t.check(before == now, f"[{label}] state changed: {diff(before, now)}")
        status = "ok" if len(t.failures) == nf else "FAIL"
        log(f"{status:4} {label}: {r.status} {r.error_code} {msg[:110]!r}")
        if status != "ok":
            self.failed.append(label)


def new_overlay(d, before):
    """The one qcow2 file that appeared under the data dir since `before`."""
    new = [os.path.join(d.data_dir, p) for p in d.files() - before
           if not p.endswith("/") and os.path.isfile(os.path.join(d.data_dir, p))]
    new = [p for p in new if open(p, "rb").read(4) == b"QFI\xfb"]
    if len(new) != 1:
        raise vt.Failure(f"expected one new qcow2 file for the VM, found {new}")
    return new[0]


def main(t):
    vt.need_vesseld()
    (disk,) = vt.need_guest("disk.qcow2")
    d = t.daemon("bad").start()
    u = d.unix
    d.import_image("base", disk)
    imp = d.import_dir

    d.api("POST", "vms", {"name": "idle", "memory_mib": 128, "disks": [{"image": "base"}]}, expect=201)
    d.api("POST", "vms", {"name": "runner", "memory_mib": 128, "disks": [{"image": "base"}]}, expect=201)
    r = d.api("POST", "vms/runner/start", expect=200)
    t.require(r.json["vm"]["state"] == "running", f"fixture VM did not start: {r.short()}")
    f0 = d.files()
    d.api("POST", "vms", {"name": "corrupt", "memory_mib": 128, "disks": [{"image": "base"}]}, expect=201)
    corrupt_disk = new_overlay(d, f0)
    f0 = d.files()
    d.api("POST", "vms", {"name": "nodisk", "memory_mib": 128, "disks": [{"image": "base"}]}, expect=201)
    removed_disk = new_overlay(d, f0)
    with open(corrupt_disk, "r+b") as f:  # behind vesseld's back
        f.write(b"this is no longer a qcow2 image\n" * 64)
    os.unlink(removed_disk)
    os.makedirs(os.path.join(imp, "adir"))
    os.symlink("/etc/hostname", os.path.join(imp, "escape.img"))
    os.symlink("/etc/hostname", os.path.join(imp, "kernel-link"))

    # transport rules (docs/api.md "Transport and auth")
    mode = os.stat(d.sock).st_mode & 0o777
    t.check(mode == 0o600, f"API socket mode is {mode:o}, expected 600")
    mode = os.stat(os.path.join(d.data_dir, "admin.token")).st_mode & 0o777
    t.check(mode == 0o600, f"admin.token mode is {mode:o}, expected 600")
    names = [v["name"] for v in d.vms()]
    t.check(names == sorted(names), f"GET /vms is not sorted by name: {names}")

    c = Cases(t, d)
    vms = lambda body: (lambda: u.post("vms", body))  # noqa: E731
    raw = lambda data: (lambda: u.post("vms", raw=data))  # noqa: E731

    # ---- POST /vms: body shape and types
    c.run("unknown field", vms({"name": "x1", "bogus": 1}), (400, BAD), ["bogus"])
    c.run("unknown nested field", vms({"name": "x1", "boot": {"firmware": "bios", "turbo": True}}),
          (400, BAD), ["turbo"])
    c.run("vcpus wrong type", vms({"name": "x1", "vcpus": "two"}), (400, BAD), ["vcpus"])
    c.run("vcpus fractional", vms({"name": "x1", "vcpus": 1.5}), (400, BAD), ["vcpus"])
    c.run("memory as string", vms({"name": "x1", "memory_mib": "512"}), (400, BAD), ["memory_mib"])
    c.run("autostart not bool", vms({"name": "x1", "autostart": "yes"}), (400, BAD), ["autostart"])
    c.run("name wrong type", vms({"name": 7}), (400, BAD), ["name"])
    c.run("name missing", vms({"vcpus": 1}), (400, BAD), ["name"])
    c.run("name uppercase", vms({"name": "Web-1"}), (400, BAD), ["name"])
    c.run("name underscore", vms({"name": "web_1"}), (400, BAD), ["name"])
    c.run("name leading dash", vms({"name": "-web"}), (400, BAD), ["name"])
    c.run("name trailing dash", vms({"name": "web-"}), (400, BAD), ["name"])
    c.run("name empty", vms({"name": ""}), (400, BAD), ["name"])
    c.run("name non-ascii", vms({"name": "w\u00e9b"}), (400, BAD), ["name"])
    c.run("name 64 chars", vms({"name": "a" * 64}), (400, BAD), ["name"])
    c.run("vcpus 0", vms({"name": "x1", "vcpus": 0}), (400, BAD), ["vcpus"])
    c.run("vcpus 999", vms({"name": "x1", "vcpus": 999}), (400, BAD), ["vcpus"])
    c.run("memory 15 MiB", vms({"name": "x1", "memory_mib": 15}), (400, BAD), ["memory_mib"])
    c.run("memory 1048577 MiB", vms({"name": "x1", "memory_mib": 1048577}), (400, BAD), ["memory_mib"])
    c.run("description 1025 chars", vms({"name": "x1", "description": "d" * 1025}), (400, BAD), ["description"])
    c.run("restart_policy unknown", vms({"name": "x1", "restart_policy": "sometimes"}), (400, BAD),
          ["restart_policy"])
    c.run("firmware unknown", vms({"name": "x1", "boot": {"firmware": "floppy"}}), (400, BAD), ["firmware"])
    c.run("unknown image", vms({"name": "x1", "disks": [{"image": "nope"}]}),
          [(400, BAD), (404, "not_found")], ["nope"])
    c.run("clone mode unknown", vms({"name": "x1", "disks": [{"image": "base", "clone": "deep"}]}),
          (400, BAD), ["clone"])
    c.run("disk size 0", vms({"name": "x1", "disks": [{"size_gib": 0}]}), (400, BAD), ["size_gib"])
    c.run("disk size 16385 GiB", vms({"name": "x1", "disks": [{"size_gib": 16385}]}), (400, BAD), ["size_gib"])
    c.run("disks not a list", vms({"name": "x1", "disks": {"image": "base"}}), (400, BAD), ["disks"])
    c.run("kernel boot without kernel", vms({"name": "x1", "boot": {"firmware": "kernel"}}), (400, BAD),
          ["kernel"])
    c.run("kernel path missing", vms({"name": "x1", "boot": {"firmware": "kernel",
                                                             "kernel": os.path.join(imp, "kernel-not-here")}}),
          (400, BAD), ["kernel-not-here"])
    c.run("kernel outside allowed dirs", vms({"name": "x1", "boot": {"firmware": "kernel", "kernel": "/etc/hostname"}}),
          (400, BAD), ["/etc/hostname"])
    c.run("kernel symlink escaping", vms({"name": "x1", "boot": {"firmware": "kernel",
                                                                 "kernel": os.path.join(imp, "kernel-link")}}),
          (400, BAD), any_of=["kernel-link", "/etc/hostname"])
    c.run("duplicate VM name", vms({"name": "idle"}), (409, "conflict"), ["idle"])

    # ---- body framing
    c.run("body over 64 KiB", vms({"name": "x1", "description": "z" * (70 * 1024)}),
          (413, "payload_too_large"), any_of=["64", "65536", "large", "big"])
    c.run("malformed JSON", raw(b'{"name": "x1", '), (400, BAD), ["JSON"])
    c.run("JSON array body", raw(b'["x1"]'), (400, BAD), ["object"])
    c.run("JSON string body", raw(b'"x1"'), (400, BAD), ["object"])
    c.run("JSON null body", raw(b"null"), (400, BAD), ["object"])
    c.run("empty body", raw(b""), (400, BAD), any_of=["body", "JSON", "empty", "object"])

    # ---- images
    img_post = lambda body: (lambda: u.post("images", body))  # noqa: E731
    src = os.path.join(imp, os.path.basename(disk))
    c.run("image path missing", img_post({"name": "i1", "path": os.path.join(imp, "gone.img")}), (400, BAD),
          ["gone.img"])
    c.run("image path outside allowed dirs", img_post({"name": "i1", "path": "/etc/hostname"}), (400, BAD),
          ["/etc/hostname"])
    c.run("image symlink escaping", img_post({"name": "i1", "path": os.path.join(imp, "escape.img")}),
          (400, BAD), any_of=["escape.img", "/etc/hostname"])
    c.run("image path is a directory", img_post({"name": "i1", "path": os.path.join(imp, "adir")}), (400, BAD),
          ["adir"])
    c.run("image path relative", img_post({"name": "i1", "path": "import/disk.qcow2"}), (400, BAD), ["path"])
    c.run("image format unknown", img_post({"name": "i1", "path": src, "format": "qcow3"}), (400, BAD),
          ["qcow3"])
    c.run("image name bad", img_post({"name": "Base_2", "path": src}), (400, BAD), ["name"])
    c.run("image unknown field", img_post({"name": "i1", "path": src, "compress": True}), (400, BAD),
          ["compress"])
    c.run("duplicate image name", img_post({"name": "base", "path": src}), (409, "conflict"), ["base"])
    c.run("delete image in use", lambda: u.delete("images/base"), (409, "conflict"),
          any_of=["idle", "runner", "corrupt", "nodisk"])
    c.run("delete unknown image", lambda: u.delete("images/ghost"), (404, "not_found"), ["ghost"])

    # ---- state rules
    c.run("start a running VM", lambda: u.post("vms/runner/start"), (409, "conflict"), ["running"])
    c.run("update a running VM", lambda: u.patch("vms/runner", {"vcpus": 2}), (409, "conflict"), ["running"])
    c.run("delete a running VM without force", lambda: u.delete("vms/runner"), (409, "conflict"), ["running"])
    c.run("pause a stopped VM", lambda: u.post("vms/idle/pause"), (409, "conflict"), ["stopped"])
    c.run("resume a running VM", lambda: u.post("vms/runner/resume"), (409, "conflict"), ["running"])
    c.run("stop timeout out of range", lambda: u.post("vms/runner/stop", {"timeout": 3601}), (400, BAD),
          ["timeout"])
    c.run("PATCH vcpus 0", lambda: u.patch("vms/idle", {"vcpus": 0}), (400, BAD), ["vcpus"])
    c.run("PATCH name (not updatable)", lambda: u.patch("vms/idle", {"name": "renamed"}), (400, BAD), ["name"])

    # ---- routing
    c.run("unknown route", lambda: u.get("/api/v1/nope"), (404, "not_found"), ["nope"])
    c.run("unknown VM", lambda: u.get("vms/ghost"), (404, "not_found"), ["ghost"])
    c.run("unknown VM action", lambda: u.post("vms/idle/explode"), (404, "not_found"), ["explode"])
    c.run("unknown task", lambda: u.get("tasks/t-ghost"), (404, "not_found"), ["t-ghost"])
    c.run("wrong method on /vms", lambda: u.request("PUT", "vms", body={"name": "x1"}),
          (405, "method_not_allowed"), ["PUT"])
    c.run("wrong method on a VM", lambda: u.post("vms/idle", {"vcpus": 2}), (405, "method_not_allowed"),
          ["POST"])
    c.run("wrong method on an action", lambda: u.get("vms/idle/start"), (405, "method_not_allowed"), ["GET"])

    # ---- TCP auth
    tcp = d.tcp
    c.run("TCP without token", lambda: tcp.post("vms", {"name": "x1"}, token=None), (401, "unauthorized"),
          ["token"])
    c.run("TCP wrong token", lambda: tcp.get("vms", token="not-the-token"), (401, "unauthorized"), ["token"])
    c.run("TCP basic auth", lambda: tcp.get("vms", token=None, headers={"Authorization": "Basic YWRtaW46YWRtaW4="}),
          (401, "unauthorized"), ["token"])
    r = tcp.get("vms")
    t.check(r.status == 200, f"TCP with the right token: {r.short()}")

    # ---- QEMU fails to start: 500 engine_failed with QEMU's own text, VM stays stopped
    def stopped(name):
        return lambda r: t.check(d.vm(name)["state"] == "stopped" and d.vm(name)["pid"] is None,
                                 f"{name} after a failed start: {d.vm(name)}")
    c.run("start with a corrupted disk", lambda: u.post("vms/corrupt/start"), (500, "engine_failed"),
          any_of=["not in qcow2 format", "Image is not", "qcow2 header", "Could not open"],
          after=stopped("corrupt"), run_files_ok=True)
    c.run("start with a removed disk", lambda: u.post("vms/nodisk/start"), (500, "engine_failed"),
          any_of=["No such file or directory", "Could not open"], after=stopped("nodisk"), run_files_ok=True)
    r = u.post("vms", {"name": "huge", "memory_mib": 1048576})
    if r.status == 201:
        c.run("start with memory larger than the host", lambda: u.post("vms/huge/start"),
              [(500, "engine_failed"), (409, "conflict")],
              any_of=["memory", "allocate", "phys-bits", "address space"], after=stopped("huge"),
              run_files_ok=True)
    else:
        # admission control at create time is fine too, as long as it says why
        t.note(f"a VM with 1 TiB of memory is refused at create: {r.short()}")
        t.expect_error(r, 409, "insufficient_capacity", mentions=("memory",), what="create a VM larger than the host")

    # ---- a failed import leaves no image and no file
    junk = os.path.join(imp, "junk.qcow2")
    with open(junk, "wb") as f:
        f.write(b"not an image at all\n" * 100)
    before = snapshot(d)
    r = u.post("images", {"name": "junk", "path": junk, "format": "qcow2"})
    if r.status == 202:
        task, _ = d.wait_task(r.json["task"]["id"], 60)
        t.check(task["state"] == "failed" and task.get("error"), f"import of junk: task {task}")
        now = snapshot(d)
        t.check(before == now, f"[failed import] state changed: {diff(before, now)}")
        t.check(d.api("GET", "images/junk").status == 404, "a failed import left an image row")
    else:
        t.expect_error(r, 400, BAD, what="import of a non-qcow2 file as qcow2")
        t.check(before == snapshot(d), "[failed import] state changed")

    t.check(c.n >= 25, f"only {c.n} bad-input cases ran")
    log(f"{c.n} cases, {len(c.failed)} failed: {c.failed}")
    d.api("DELETE", "vms/runner?force=true", expect=200)


if __name__ == "__main__":
    vt.Test("bad_input", limit=300).run(main)
