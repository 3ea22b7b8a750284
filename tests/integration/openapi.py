#!/usr/bin/env python3
"""openapi: GET /api/v1/openapi.json is a usable OpenAPI 3.x document.

It must parse, say openapi 3.x, have info.title/version, document every path
and method the integration tests use (with responses for each operation), have
every $ref resolve inside the document, and be the same document as
docs/openapi.json in the tree (docs/api.md: "keep both true"). It must be
served on the Unix socket and, with the token, on TCP.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

# (method, path under /api/v1) used by lifecycle, restart, kernel_boot, bad_input and the CLI
USED = [
    ("get", "/host"),
    ("get", "/vms"), ("post", "/vms"),
    ("get", "/vms/{}"), ("patch", "/vms/{}"), ("delete", "/vms/{}"),
    ("post", "/vms/{}/start"), ("post", "/vms/{}/stop"), ("post", "/vms/{}/force-stop"),
    ("post", "/vms/{}/reboot"), ("post", "/vms/{}/pause"), ("post", "/vms/{}/resume"),
    ("get", "/vms/{}/console"), ("post", "/vms/{}/console"), ("get", "/vms/{}/console/ws"),
    ("get", "/images"), ("post", "/images"), ("get", "/images/{}"), ("delete", "/images/{}"),
    ("get", "/tasks"), ("get", "/tasks/{}"),
    ("get", "/openapi.json"),
    # snapshots.py, backups.py, retention.py, cli_snapshots.sh
    ("get", "/vms/{}/snapshots"), ("post", "/vms/{}/snapshots"), ("get", "/vms/{}/snapshots/{}"),
    ("delete", "/vms/{}/snapshots/{}"), ("post", "/vms/{}/snapshots/{}/revert"),
    ("get", "/vms/{}/schedules"), ("post", "/vms/{}/schedules"), ("delete", "/vms/{}/schedules/{}"),
    ("get", "/vms/{}/drills"), ("get", "/backups"), ("post", "/backups"), ("get", "/backups/{}"),
    ("delete", "/backups/{}"), ("post", "/backups/{}/verify"), ("post", "/backups/{}/restore"),
    ("post", "/backups/{}/drill"),
]


def normalise(path, prefix):
    if prefix and path.startswith(prefix):
        path = path[len(prefix):]
    elif path.startswith("/api/v1"):
        path = path[len("/api/v1"):]
    return re.sub(r"\{[^}]*\}", "{}", path)


def refs(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.append(v)
            else:
                refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)
    return out


def resolve(doc, ref):
    if not ref.startswith("#/"):
        return False
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def main(t):
    vt.need_vesseld()
    d = t.daemon("openapi").start()
    r = d.unix.get("/api/v1/openapi.json")
    t.require(r.status == 200, f"GET /api/v1/openapi.json: {r.short()}")
    t.check("json" in r.headers.get("content-type", ""), f"content-type {r.headers.get('content-type')!r}")
    t.require(r.is_json and isinstance(r.json, dict), "openapi.json does not parse as a JSON object")
    doc = r.json
    t.check(str(doc.get("openapi", "")).startswith("3."), f"openapi version {doc.get('openapi')!r}")
    info = doc.get("info") or {}
    t.check(info.get("title") and info.get("version"), f"info needs title and version: {info}")
    host = d.api("GET", "host", expect=200).json
    t.check(info.get("version") == host.get("version"),
            f"info.version {info.get('version')!r} != host version {host.get('version')!r}")

    prefix = ""
    for s in doc.get("servers") or []:
        url = s.get("url", "")
        if url.rstrip("/").endswith("/api/v1"):
            prefix = "/api/v1"
    paths = {normalise(p, prefix): ops for p, ops in (doc.get("paths") or {}).items()}
    t.require(paths, "no paths documented")
    for method, path in USED:
        ops = paths.get(path)
        if not t.check(isinstance(ops, dict) and method in ops,
                       f"{method.upper()} /api/v1{path} is not documented"):
            continue
        op = ops[method]
        t.check(isinstance(op.get("responses"), dict) and op["responses"],
                f"{method.upper()} {path} documents no responses")
    # every templated path names its parameters
    for raw_path, ops in (doc.get("paths") or {}).items():
        names = re.findall(r"\{([^}]*)\}", raw_path)
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete") or not isinstance(op, dict):
                continue
            params = [p for p in (op.get("parameters") or []) + (ops.get("parameters") or [])]
            pnames = set()
            for p in params:
                if "$ref" in p and resolve(doc, p["$ref"]):
                    node = doc
                    for part in p["$ref"][2:].split("/"):
                        node = node[part]
                    p = node
                if p.get("in") == "path":
                    pnames.add(p.get("name"))
            for n in names:
                t.check(n in pnames, f"{method.upper()} {raw_path}: path parameter {n!r} not declared")
    bad = sorted({x for x in refs(doc, []) if not resolve(doc, x)})
    t.check(not bad, f"$refs that do not resolve: {bad}")
    t.check("Error" in json.dumps(doc.get("components", {})) or "error" in json.dumps(doc.get("components", {})),
            "components describe no error object")

    # same document over TCP (with the token) and in the tree
    r2 = d.tcp.get("/api/v1/openapi.json")
    t.check(r2.status == 200 and r2.json == doc, f"TCP openapi.json differs or fails: {r2.status}")
    tree = os.path.join(vt.ROOT, "docs", "openapi.json")
    if t.check(os.path.exists(tree), f"{tree} is missing (docs/api.md: both must be kept true)"):
        with open(tree) as f:
            t.check(json.load(f) == doc, "docs/openapi.json differs from the document vesseld serves")
    log(f"{len(paths)} paths documented, {len(USED)} used paths checked")


if __name__ == "__main__":
    vt.Test("openapi", limit=60).run(main)
