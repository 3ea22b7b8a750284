#!/usr/bin/env python3
"""auth_matrix: every API route x every kind of caller -> the status the role
rules of docs/api.md ("Auth", "Roles") prescribe, and no side effect when
refused.

The routes come from GET /api/v1/openapi.json, so a route added to the router
(and, as the openapi unit test demands, to the document) is covered at once:
a route without an entry in ROUTES below fails this test, naming it.

Callers: admin (a role token), the bootstrap admin.token, operator, viewer,
an operator scoped to project "team-a" (the fixture VMs are in "default",
except m-team), no
token, a wrong token, an expired token and a revoked token; all over TCP.

No guest image is needed: the running VM has no disk (SeaBIOS finds nothing
to boot and waits), the images are small raw files.

Each route has a "real" request on real objects (a running VM, a stopped VM,
an image, a token) that would change something, sent by every caller the
route refuses; and for callers it allows, a request that gets past
authorization but changes nothing (an unknown VM, a malformed body). After
every refused mutating call the VMs, images and tokens are compared with
before, and the audit log's last entry must record the refusal.

Also: bad input to POST/DELETE /tokens gets a clear 4xx and changes nothing.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

LEVEL = {"viewer": 1, "operator": 2, "admin": 3}
# caller -> (role, scoped); role None = not authenticated (401)
CALLERS = {
    "admin": ("admin", False),
    "bootstrap": ("admin", False),
    "operator": ("operator", False),
    "viewer": ("viewer", False),
    "scoped-operator": ("operator", True),
    "no-token": (None, False),
    "wrong-token": (None, False),
    "expired": (None, False),
    "revoked": (None, False),
}

RUN, STOPPED, GHOST = "m-run", "m-stopped", "ghost"
S = "/api/v1"

# (method, openapi path) -> spec
#   role:   least role (must agree with the document's x-vessel-role)
#   real:   (path, body) sent by refused callers: would change real objects
#   safe:   (path, body, allowed statuses) for allowed callers; None = same as real
#   vm:     the route acts on one VM: a scoped caller outside its project gets 404
#   scoped: status for the scoped operator when it differs from the role rule
#   ws:     the route is a WebSocket upgrade
ROUTES = {
    # public for everyone; 404 when the web UI was not built (web/build.sh)
    ("get", "/"): {"role": None, "real": ("/", None), "ok": (200, 404)},
    ("get", f"{S}/host"): {"role": "viewer", "real": (f"{S}/host", None), "ok": (200,)},
    ("get", f"{S}/openapi.json"): {"role": "viewer", "real": (f"{S}/openapi.json", None), "ok": (200,)},
    ("get", f"{S}/vms"): {"role": "viewer", "real": (f"{S}/vms", None), "ok": (200,)},
    ("post", f"{S}/vms"): {"role": "operator", "real": (f"{S}/vms", {"name": "intruder"}),
                            "safe": (f"{S}/vms", {"name": "Bad_Name"}, (400,))},
    ("get", f"{S}/vms/{{name}}"): {"role": "viewer", "real": (f"{S}/vms/{STOPPED}", None), "ok": (200,),
                                   "vm": True},
    ("patch", f"{S}/vms/{{name}}"): {"role": "operator",
                                     "real": (f"{S}/vms/{STOPPED}", {"description": "changed"}),
                                     "safe": (f"{S}/vms/{GHOST}", {"description": "x"}, (404,)), "vm": True},
    ("delete", f"{S}/vms/{{name}}"): {"role": "operator", "real": (f"{S}/vms/{STOPPED}", None),
                                      "safe": (f"{S}/vms/{GHOST}", None, (404,)), "vm": True},
    ("post", f"{S}/vms/{{name}}/start"): {"role": "operator", "real": (f"{S}/vms/{STOPPED}/start", None),
                                          "safe": (f"{S}/vms/{GHOST}/start", None, (404,)), "vm": True},
    ("post", f"{S}/vms/{{name}}/stop"): {"role": "operator", "real": (f"{S}/vms/{RUN}/stop", {"timeout": 0}),
                                         "safe": (f"{S}/vms/{GHOST}/stop", None, (404,)), "vm": True},
    ("post", f"{S}/vms/{{name}}/force-stop"): {"role": "operator", "real": (f"{S}/vms/{RUN}/force-stop", None),
                                               "safe": (f"{S}/vms/{GHOST}/force-stop", None, (404,)), "vm": True},
    ("post", f"{S}/vms/{{name}}/reboot"): {"role": "operator", "real": (f"{S}/vms/{RUN}/reboot", None),
                                           "safe": (f"{S}/vms/{GHOST}/reboot", None, (404,)), "vm": True},
    ("post", f"{S}/vms/{{name}}/pause"): {"role": "operator", "real": (f"{S}/vms/{RUN}/pause", None),
                                          "safe": (f"{S}/vms/{GHOST}/pause", None, (404,)), "vm": True},
    ("post", f"{S}/vms/{{name}}/resume"): {"role": "operator", "real": (f"{S}/vms/{RUN}/resume", None),
                                           "safe": (f"{S}/vms/{GHOST}/resume", None, (404,)), "vm": True},
    ("get", f"{S}/vms/{{name}}/console"): {"role": "viewer", "real": (f"{S}/vms/{RUN}/console", None),
                                           "ok": (200,), "vm": True},
    ("post", f"{S}/vms/{{name}}/console"): {"role": "operator", "real": (f"{S}/vms/{RUN}/console", b"x"),
                                            "safe": (f"{S}/vms/{GHOST}/console", b"x", (404,)), "vm": True},
    ("get", f"{S}/vms/{{name}}/console/ws"): {"role": "operator", "real": (f"{S}/vms/{RUN}/console/ws", None),
                                              "ok": (101,), "vm": True, "ws": True},
    ("get", f"{S}/images"): {"role": "viewer", "real": (f"{S}/images", None), "ok": (200,)},
    ("post", f"{S}/images"): {"role": "admin", "real": (f"{S}/images", "IMPORT_BODY"),
                              "safe": (f"{S}/images", {"name": "x"}, (400,))},
    ("get", f"{S}/images/{{name}}"): {"role": "viewer", "real": (f"{S}/images/base", None), "ok": (200,)},
    ("delete", f"{S}/images/{{name}}"): {"role": "admin", "real": (f"{S}/images/base", None),
                                         "safe": (f"{S}/images/{GHOST}", None, (404,))},
    ("get", f"{S}/tasks"): {"role": "viewer", "real": (f"{S}/tasks", None), "ok": (200,)},
    ("get", f"{S}/tasks/{{id}}"): {"role": "viewer", "real": (f"{S}/tasks/TASK_ID", None), "ok": (200,)},
    ("get", "/metrics"): {"role": "viewer", "real": ("/metrics", None), "ok": (200,)},
    ("get", f"{S}/host/history"): {"role": "viewer", "real": (f"{S}/host/history", None), "ok": (200,)},
    ("get", f"{S}/vms/{{name}}/history"): {"role": "viewer", "real": (f"{S}/vms/{RUN}/history", None),
                                           "ok": (200,), "vm": True},
    ("get", f"{S}/vms/{{name}}/vnc/ws"): {"role": "operator", "real": (f"{S}/vms/{RUN}/vnc/ws", None),
                                          "ok": (101,), "vm": True, "ws": True},
    ("get", f"{S}/whoami"): {"role": "viewer", "real": (f"{S}/whoami", None), "ok": (200,)},
    ("get", f"{S}/tokens"): {"role": "admin", "real": (f"{S}/tokens", None), "ok": (200,)},
    ("post", f"{S}/tokens"): {"role": "admin", "real": (f"{S}/tokens", {"name": "intruder", "role": "admin"}),
                              "safe": (f"{S}/tokens", {"name": "x", "role": "boss"}, (400,))},
    ("delete", f"{S}/tokens/{{id}}"): {"role": "admin", "real": (f"{S}/tokens/OPERATOR_ID", None),
                                       "safe": (f"{S}/tokens/0000000000000000", None, (404,))},
    ("get", f"{S}/audit"): {"role": "admin", "real": (f"{S}/audit?limit=5", None), "ok": (200,)},
    ("get", f"{S}/audit/verify"): {"role": "admin", "real": (f"{S}/audit/verify", None), "ok": (200,)},
    ("get", f"{S}/vms/{{name}}/snapshots"): {"role": "viewer", "real": (f"{S}/vms/{STOPPED}/snapshots", None),
                                             "ok": (200,), "vm": True},
    ("post", f"{S}/vms/{{name}}/snapshots"): {"role": "operator",
                                              "real": (f"{S}/vms/{STOPPED}/snapshots", {"name": "intruder"}),
                                              "safe": (f"{S}/vms/{GHOST}/snapshots", {"name": "x"}, (404,)),
                                              "vm": True},
    ("get", f"{S}/vms/{{name}}/snapshots/{{snap}}"): {"role": "viewer",
                                                      "real": (f"{S}/vms/{STOPPED}/snapshots/s1", None),
                                                      "ok": (200,), "vm": True},
    ("delete", f"{S}/vms/{{name}}/snapshots/{{snap}}"): {"role": "operator",
                                                         "real": (f"{S}/vms/{STOPPED}/snapshots/s1", None),
                                                         "safe": (f"{S}/vms/{STOPPED}/snapshots/nosuch", None,
                                                                  (404,)), "vm": True},
    ("post", f"{S}/vms/{{name}}/snapshots/{{snap}}/revert"): {
        "role": "operator", "real": (f"{S}/vms/{STOPPED}/snapshots/s1/revert", {}),
        "safe": (f"{S}/vms/{STOPPED}/snapshots/nosuch/revert", {}, (404,)), "vm": True},
    ("get", f"{S}/vms/{{name}}/schedules"): {"role": "viewer", "real": (f"{S}/vms/{STOPPED}/schedules", None),
                                             "ok": (200,), "vm": True},
    ("post", f"{S}/vms/{{name}}/schedules"): {"role": "operator",
                                              "real": (f"{S}/vms/{STOPPED}/schedules", {"every": "1h"}),
                                              "safe": (f"{S}/vms/{GHOST}/schedules", {"every": "1h"}, (404,)),
                                              "vm": True},
    ("delete", f"{S}/vms/{{name}}/schedules/{{id}}"): {"role": "operator",
                                                       "real": (f"{S}/vms/{STOPPED}/schedules/SCHEDULE_ID", None),
                                                       "safe": (f"{S}/vms/{GHOST}/schedules/x", None, (404,)),
                                                       "vm": True},
    ("get", f"{S}/vms/{{name}}/drills"): {"role": "viewer", "real": (f"{S}/vms/{STOPPED}/drills", None),
                                          "ok": (200,), "vm": True},
    ("get", f"{S}/backups"): {"role": "viewer", "real": (f"{S}/backups", None), "ok": (200,)},
    ("post", f"{S}/backups"): {"role": "operator", "real": (f"{S}/backups", {"vm": STOPPED}),
                               "safe": (f"{S}/backups", {"vm": GHOST}, (404,))},
    ("get", f"{S}/backups/{{id}}"): {"role": "viewer", "real": (f"{S}/backups/BACKUP_ID", None), "ok": (200,), "vm": True},
    ("delete", f"{S}/backups/{{id}}"): {"role": "operator", "real": (f"{S}/backups/BACKUP_ID", None),
                                        "safe": (f"{S}/backups/b-nosuch", None, (404,)), "vm": True},
    ("post", f"{S}/backups/{{id}}/verify"): {"role": "operator", "real": (f"{S}/backups/BACKUP_ID/verify", None),
                                             "safe": (f"{S}/backups/b-nosuch/verify", None, (404,)), "vm": True},
    ("post", f"{S}/backups/{{id}}/restore"): {"role": "operator",
                                              "real": (f"{S}/backups/BACKUP_ID/restore", {"vm": "intruder"}),
                                              "safe": (f"{S}/backups/b-nosuch/restore", {"vm": "x"}, (404,)), "vm": True},
    ("post", f"{S}/backups/{{id}}/drill"): {"role": "operator",
                                            "real": (f"{S}/backups/BACKUP_ID/drill", {"boot_line": "x"}),
                                            "safe": (f"{S}/backups/b-nosuch/drill", {"boot_line": "x"}, (404,)), "vm": True},
    ("get", f"{S}/projects"): {"role": "viewer", "real": (f"{S}/projects", None), "ok": (200,)},
    ("post", f"{S}/projects"): {"role": "admin", "real": (f"{S}/projects", {"name": "intruder"}),
                                "safe": (f"{S}/projects", {"name": "Bad_Name"}, (400,))},
    ("get", f"{S}/projects/{{name}}"): {"role": "viewer", "real": (f"{S}/projects/default", None), "ok": (200,)},
    ("patch", f"{S}/projects/{{name}}"): {"role": "admin",
                                          "real": (f"{S}/projects/default", {"max_vms": 0}),
                                          "safe": (f"{S}/projects/{GHOST}", {"description": "x"}, (404,))},
    ("delete", f"{S}/projects/{{name}}"): {"role": "admin", "real": (f"{S}/projects/team-b", None),
                                           "safe": (f"{S}/projects/{GHOST}", None, (404,))},
    # networks change the host (bridges, nftables): refused callers aim at an
    # absent network so a broken check would show up as a 404 or a new
    # network in the snapshot, without this test touching the host itself
    ("get", f"{S}/networks"): {"role": "viewer", "real": (f"{S}/networks", None), "ok": (200,)},
    ("post", f"{S}/networks"): {"role": "admin", "real": (f"{S}/networks", {"name": "intruder", "type": "isolated"}),
                                "safe": (f"{S}/networks", {"name": "Bad_Name", "type": "isolated"}, (400,))},
    ("get", f"{S}/networks/{{name}}"): {"role": "viewer", "real": (f"{S}/networks/{GHOST}", None), "ok": (404,)},
    ("patch", f"{S}/networks/{{name}}"): {"role": "admin", "real": (f"{S}/networks/{GHOST}", {"port_forwards": []}),
                                          "safe": (f"{S}/networks/{GHOST}", {"port_forwards": []}, (404,))},
    ("delete", f"{S}/networks/{{name}}"): {"role": "admin", "real": (f"{S}/networks/{GHOST}", None),
                                           "safe": (f"{S}/networks/{GHOST}", None, (404,))},
    ("get", f"{S}/firewalls"): {"role": "viewer", "real": (f"{S}/firewalls", None), "ok": (200,)},
    ("post", f"{S}/firewalls"): {"role": "admin", "real": (f"{S}/firewalls", {"name": "intruder"}),
                                 "safe": (f"{S}/firewalls", {"name": "Bad_Name"}, (400,))},
    ("get", f"{S}/firewalls/{{name}}"): {"role": "viewer", "real": (f"{S}/firewalls/fw1", None), "ok": (200,)},
    ("put", f"{S}/firewalls/{{name}}"): {"role": "admin",
                                         "real": (f"{S}/firewalls/fw1", {"name": "fw1", "default_inbound": "allow"}),
                                         "safe": (f"{S}/firewalls/{GHOST}", {"name": GHOST}, (404,))},
    ("delete", f"{S}/firewalls/{{name}}"): {"role": "admin", "real": (f"{S}/firewalls/fw1", None),
                                            "safe": (f"{S}/firewalls/{GHOST}", None, (404,))},
    ("get", f"{S}/host/capacity"): {"role": "viewer", "real": (f"{S}/host/capacity", None), "ok": (200,)},
    ("patch", f"{S}/host/capacity"): {"role": "admin", "real": (f"{S}/host/capacity", {"cpu_ratio": 1}),
                                      "safe": (f"{S}/host/capacity", {"cpu_ratio": 0}, (400, 422))},
}


def expected(spec, caller, role, scoped):
    """(statuses allowed, which request to send: 'real' or 'safe')."""
    need = spec["role"]
    if need is None:
        return spec["ok"], "real"
    if role is None:
        return (401,), "real"
    if LEVEL[role] < LEVEL[need]:
        return (403,), "real"
    if scoped and "scoped" in spec:
        return (spec["scoped"],), "real"
    if scoped and spec.get("vm"):
        return (404,), "real"
    if "safe" in spec:
        return spec["safe"][2], "safe"
    return spec["ok"], "real"


def snapshot(d):
    vms = {v["name"]: {k: v.get(k) for k in ("uuid", "state", "vcpus", "memory_mib", "description",
                                               "disks", "pid", "restart_policy", "project", "priority")} for v in d.vms()}
    imgs = sorted((i["name"], i["state"], i.get("sha256")) for i in d.images())
    toks = d.api("GET", "tokens", expect=200).json["tokens"]
    toks = sorted((t["id"], t["name"], t["role"], t["project"], t["revoked_at"], t["expires_at"]) for t in toks)
    projects = sorted(json.dumps(p, sort_keys=True) for p in d.api("GET", "projects", expect=200).json["projects"])
    cap = d.api("GET", "host/capacity", expect=200).json
    snaps = sorted(json.dumps(x, sort_keys=True)
                   for x in d.api("GET", f"vms/{STOPPED}/snapshots", expect=200).json["snapshots"])
    scheds = d.api("GET", f"vms/{STOPPED}/schedules", expect=200).json
    backups = sorted(json.dumps(x, sort_keys=True) for x in d.api("GET", "backups", expect=200).json["backups"])
    nets = d.api("GET", "networks", expect=200).json
    fws = d.api("GET", "firewalls", expect=200).json
    return {"vms": vms, "images": imgs, "tokens": toks, "projects": projects, "capacity": cap,
            "snapshots": snaps, "schedules": scheds, "backups": backups, "networks": nets, "firewalls": fws}


def last_audit(d):
    e = d.api("GET", "audit?limit=1", expect=200).json["entries"]
    return e[-1] if e else None


def main(t):
    vt.need_vesseld()
    # a high lockout threshold: this test sends many wrong tokens on purpose
    d = t.daemon("authm", extra_args=["--auth-limits", "100000:0:100000:1"]).start()
    # small raw images: the matrix needs images to exist, not to boot
    for name in ("base.raw", "other.raw"):
        with open(os.path.join(d.import_dir, name), "wb") as f:
            f.truncate(1 << 20)
    img, task, _, _ = d.import_image("base", os.path.join(d.import_dir, "base.raw"))
    d.api("POST", "vms", {"name": STOPPED, "memory_mib": 64, "disks": [{"size_gib": 1}]}, expect=201)
    # a snapshot, a schedule and a backup of it for the snapshot and backup rows
    d.api("POST", f"vms/{STOPPED}/snapshots", {"name": "s1"}, expect=201)
    sched = d.api("POST", f"vms/{STOPPED}/schedules", {"every": "1h"}, expect=201).json["schedule"]
    r = d.api("POST", "backups", {"vm": STOPPED}, expect=202)
    backup_id = r.json["backup"]
    backup_task = r.json["task"]
    d.wait_task(backup_task)
    d.api("POST", "vms", {"name": RUN, "memory_mib": 64}, expect=201)
    r = d.api("POST", f"vms/{RUN}/start", expect=200)
    t.require(r.json["vm"]["state"] == "running", f"fixture VM did not start: {r.short()}")

    def mk(name, role, **kw):
        body = {"name": name, "role": role, **kw}
        r = d.api("POST", "tokens", body, expect=201)
        return r.json["token"], r.json["secret"]

    tokens = {}
    _, tokens["admin"] = mk("t-admin", "admin")
    op, tokens["operator"] = mk("t-operator", "operator")
    _, tokens["viewer"] = mk("t-viewer", "viewer")
    _, tokens["scoped-operator"] = mk("t-scoped", "operator", project="team-a")
    _, tokens["expired"] = mk("t-expired", "viewer", expires="1s")
    rv, tokens["revoked"] = mk("t-revoked", "admin")
    d.api("DELETE", f"tokens/{rv['id']}", expect=200)
    tokens["bootstrap"] = d.token
    d.api("POST", "projects", {"name": "team-b"}, expect=201)  # for the DELETE row
    d.api("POST", "projects", {"name": "team-a"}, expect=201)
    d.api("POST", "firewalls", {"name": "fw1", "rules": [{"direction": "in", "protocol": "tcp", "ports": "22",
                                                        "cidr": "192.0.2.0/24", "action": "allow"}]}, expect=201)
    d.api("POST", "vms", {"name": "m-team", "memory_mib": 64, "project": "team-a"}, expect=201)
    tokens["wrong-token"] = "vst_0123456789abcdef_" + "ab" * 32
    tokens["no-token"] = None
    time.sleep(1.2)  # t-expired expires
    t.check(op["project"] is None and op["role"] == "operator", f"token JSON: {op}")

    subst = {"IMPORT_BODY": {"name": "intruder", "path": os.path.join(d.import_dir, "other.raw")},
             "TASK_ID": task["id"], "OPERATOR_ID": op["id"], "BACKUP_ID": backup_id,
             "SCHEDULE_ID": sched["id"]}

    # the document's routes against the table
    doc = d.api("GET", "openapi.json", expect=200).json
    routes = [(m, p) for p, ops in doc["paths"].items() for m in ops
              if m in ("get", "post", "put", "patch", "delete", "head")]
    missing = [f"{m.upper()} {p}" for m, p in routes if (m, p) not in ROUTES]
    t.check(not missing, "routes in openapi.json without an entry in auth_matrix.py ROUTES "
                         f"(add the expected role and requests): {missing}")
    stale = [f"{m.upper()} {p}" for m, p in ROUTES if (m, p) not in routes]
    t.check(not stale, f"ROUTES entries the router no longer has: {stale}")
    for m, p in routes:
        spec = ROUTES.get((m, p))
        if spec and p != "/":
            t.check(doc["paths"][p][m].get("x-vessel-role") == spec["role"],
                    f"{m.upper()} {p}: openapi.json x-vessel-role {doc['paths'][p][m].get('x-vessel-role')!r}, "
                    f"the matrix expects {spec['role']!r}")

    counts = {"calls": 0, "refused": 0}
    for (m, p) in routes:
        spec = ROUTES.get((m, p))
        if not spec:
            continue
        for caller, (role, scoped) in CALLERS.items():
            want, which = expected(spec, caller, role, scoped)
            path, body = spec["real"]
            if which == "safe":
                path, body = spec["safe"][0], spec["safe"][1]
            for k in ("TASK_ID", "OPERATOR_ID", "BACKUP_ID", "SCHEDULE_ID"):
                path = path.replace(k, subst[k])
            if body == "IMPORT_BODY":
                body = subst[body]
            refused = want[0] in (401, 403) or (scoped and want == (404,))
            mutating = m != "get" or spec.get("ws")
            before = snapshot(d) if refused and mutating else None
            tok = tokens[caller]
            label = f"{m.upper()} {path} as {caller}"
            counts["calls"] += 1
            if spec.get("ws"):
                hdr = {"Authorization": f"Bearer {tok}"} if tok else {}
                ws, status, _, rest = vt.WebSocket.connect(path, port=d.port, headers=hdr)
                if ws:
                    ws.close()
                got = status
                short = f"{label} -> {status} {rest[:300]!r}"
                try:
                    msg = json.loads(rest)["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    msg = ""
            else:
                raw = body if isinstance(body, bytes) else None
                r = d.tcp.request(m.upper(), path, body=None if raw else body, raw=raw, token=tok,
                                  content_type="application/octet-stream" if raw else "application/json")
                got, short, msg = r.status, r.short(), r.error_message
            ok = t.check(got in want, f"{label}: expected {' or '.join(map(str, want))}, got {short}")
            if got == 401 and caller in ("expired", "revoked"):
                t.check(caller in msg, f"{label}: the 401 message should say the token is {caller}: {msg!r}")
            if got == 401 and caller == "wrong-token":
                t.check("not valid" in msg, f"{label}: the 401 message should say not valid: {msg!r}")
            if got == 403:
                t.check(role in msg and "needs role" in msg or "project" in msg,
                        f"{label}: the 403 message should name the role or project: {msg!r}")
            if before is not None:
                counts["refused"] += 1
                after = snapshot(d)
                t.check(before == after, f"{label}: refused with {got} but state changed: "
                                         f"{json.dumps(before)[:300]} -> {json.dumps(after)[:300]}")
                e = last_audit(d)
                t.check(e and e.get("method") == m.upper() and e.get("result") == got and
                        e.get("path") == path.split("?")[0],
                        f"{label}: the audit log's last entry is not this refusal: {e}")
            if not ok:
                log(f"FAIL {label}")
    log(f"{counts['calls']} calls, {counts['refused']} refused mutating calls checked for side effects")

    # the scoped operator sees and changes only its project's VMs, creates
    # there by default, and can neither create in nor move a VM to another
    sc = tokens["scoped-operator"]
    r = d.tcp.get("vms", token=sc)
    t.check(r.status == 200 and [v["name"] for v in r.json["vms"]] == ["m-team"],
            f"scoped list should hold m-team only: {r.short()}")
    r = d.tcp.get("vms", token=tokens["operator"])
    t.check(r.status == 200 and len(r.json["vms"]) == 3, f"unscoped list: {r.short()}")
    r = d.tcp.patch("vms/m-team", {"description": "mine"}, token=sc)
    t.check(r.status == 200 and r.json["vm"]["description"] == "mine", f"scoped PATCH in scope: {r.short()}")
    before = snapshot(d)
    r = d.tcp.patch("vms/m-team", {"project": "default"}, token=sc)
    t.check(r.status == 403 and "cannot move" in r.error_message, f"scoped move out of scope: {r.short()}")
    r = d.tcp.post("vms", {"name": "sc-other", "memory_mib": 64, "project": "default"}, token=sc)
    t.check(r.status == 403 and "team-a" in r.error_message, f"scoped create elsewhere: {r.short()}")
    t.check(snapshot(d) == before, "refused scoped calls changed something")
    r = d.tcp.post("vms", {"name": "sc-made", "memory_mib": 64}, token=sc)
    t.check(r.status == 201 and r.json["vm"]["project"] == "team-a",
            f"a scoped create lands in the token's project: {r.short()}")
    r = d.tcp.delete("vms/sc-made", token=sc)
    t.check(r.status == 200, f"scoped delete in scope: {r.short()}")
    _, dflt = mk("t-default", "viewer", project="default")
    r = d.tcp.get("vms", token=dflt)
    t.check(r.status == 200 and sorted(v["name"] for v in r.json["vms"]) == [RUN, STOPPED],
            f"a token scoped to 'default' sees the VMs of 'default' only: {r.short()}")
    r = d.tcp.get(f"vms/{STOPPED}", token=dflt)
    t.check(r.status == 200, f"scoped 'default' GET: {r.short()}")
    # tasks of another project's VM are hidden like the VM; image tasks are shared
    r = d.tcp.get("tasks", token=sc)
    targets = {x["target"] for x in r.json["tasks"]} if r.status == 200 else None
    t.check(targets is not None and STOPPED not in targets and "base" in targets,
            f"scoped task list should hold the image import, not {STOPPED}'s backup: {r.short()}")
    r = d.tcp.get(f"tasks/{backup_task}", token=sc)
    t.check(r.status == 404, f"scoped GET of another project's VM task: {r.short()}")
    r = d.tcp.get(f"tasks/{backup_task}", token=dflt)
    t.check(r.status == 200, f"a token scoped to 'default' sees its VM's task: {r.short()}")
    r = d.tcp.get("tasks", token=tokens["viewer"])
    t.check(r.status == 200 and STOPPED in {x["target"] for x in r.json["tasks"]},
            f"unscoped task list: {r.short()}")

    # browsers pass the token of a WebSocket as ?token=: the same roles apply
    for caller, want in (("viewer", 403), ("operator", 101), ("revoked", 401)):
        ws, status, _, _ = vt.WebSocket.connect(f"{S}/vms/{RUN}/console/ws?token={tokens[caller]}", port=d.port)
        if ws:
            ws.close()
        t.check(status == want, f"console/ws?token= as {caller}: expected {want}, got {status}")

    # an operator can do the lifecycle it is meant to
    r = d.tcp.post("vms", {"name": "op-made", "memory_mib": 64}, token=tokens["operator"])
    t.check(r.status == 201, f"operator create: {r.short()}")
    r = d.tcp.delete("vms/op-made", token=tokens["operator"])
    t.check(r.status == 200, f"operator delete: {r.short()}")
    r = d.tcp.post(f"vms/{RUN}/console", raw=b"\n", token=tokens["operator"],
                   content_type="application/octet-stream")
    t.check(r.status == 200, f"operator console input: {r.short()}")
    r = d.tcp.get("tokens", token=tokens["admin"])
    t.check(r.status == 200 and all("secret" not in x and "hash" not in x for x in r.json["tokens"]),
            f"the token list must not carry secrets or hashes: {r.short()}")
    used = {x["name"]: x["last_used_at"] for x in r.json["tokens"]}
    t.check(used.get("t-operator") and not used.get("t-expired"),
            f"last_used_at is set for used tokens only: {used}")

    bad_input(t, d)
    r = d.api("GET", "audit/verify", expect=200)
    t.check(r.json["ok"], f"audit log verifies after the matrix: {r.json}")


def bad_input(t, d):
    """Token bad input: 4xx naming the problem, token list unchanged."""
    cases = [
        ("bad role", "POST", "tokens", {"name": "b1", "role": "root"}, 400, "role"),
        ("no role", "POST", "tokens", {"name": "b1"}, 400, "role"),
        ("bad name", "POST", "tokens", {"name": "Bad Name", "role": "viewer"}, 400, "name"),
        ("unknown field", "POST", "tokens", {"name": "b1", "role": "viewer", "scope": "x"}, 400, "scope"),
        ("bad expiry", "POST", "tokens", {"name": "b1", "role": "viewer", "expires": "tomorrow"}, 400, "expiry"),
        ("expiry in the past", "POST", "tokens", {"name": "b1", "role": "viewer", "expires": "2001-01-01"}, 400,
         "past"),
        ("zero duration", "POST", "tokens", {"name": "b1", "role": "viewer", "expires": "0h"}, 400, "expiry"),
        ("admin with project", "POST", "tokens", {"name": "b1", "role": "admin", "project": "p"}, 400, "admin"),
        ("bad project", "POST", "tokens", {"name": "b1", "role": "viewer", "project": "A B"}, 400, "project"),
        ("duplicate name", "POST", "tokens", {"name": "t-viewer", "role": "viewer"}, 409, "t-viewer"),
        ("duplicate of revoked", "POST", "tokens", {"name": "t-revoked", "role": "viewer"}, 409, "t-revoked"),
        ("unknown id", "DELETE", "tokens/0123456789abcdef", None, 404, "0123456789abcdef"),
        ("malformed id", "DELETE", "tokens/nope", None, 404, "nope"),
    ]
    revoked = [x for x in d.api("GET", "tokens", expect=200).json["tokens"] if x["name"] == "t-revoked"][0]
    cases.append(("revoke twice", "DELETE", f"tokens/{revoked['id']}", None, 409, "already revoked"))
    code = {400: "invalid_argument", 404: "not_found", 409: "conflict"}
    for label, m, path, body, status, mention in cases:
        before = snapshot(d)
        r = d.api(m, path, body)
        t.expect_error(r, status, code[status], mentions=(mention,), what=f"token bad input [{label}]")
        t.check(snapshot(d) == before, f"token bad input [{label}]: state changed")
        log(f"{'ok' if r.status == status else 'FAIL':4} {label}: {r.status} {r.error_message[:100]!r}")
    # the CLI says the same and exits 1
    cli = os.path.join(vt.BUILD, "src", "cli", "vessel")
    p = subprocess.run([cli, "--socket", d.sock, "token", "create", "b2", "--role", "boss"],
                       capture_output=True, text=True, timeout=30)
    t.check(p.returncode == 1 and "role 'boss'" in p.stderr, f"vessel token create --role boss: {p}")
    p = subprocess.run([cli, "--socket", d.sock, "token", "create", "b2"], capture_output=True, text=True,
                       timeout=30)
    t.check(p.returncode == 1 and "--role" in p.stderr, f"vessel token create without --role: {p}")
    p = subprocess.run([cli, "--socket", d.sock, "token", "revoke", revoked["id"]], capture_output=True,
                       text=True, timeout=30)
    t.check(p.returncode == 1 and "already revoked" in p.stderr, f"vessel token revoke twice: {p}")


if __name__ == "__main__":
    vt.Test("auth_matrix", limit=400).run(main)
