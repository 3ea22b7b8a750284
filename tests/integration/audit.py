#!/usr/bin/env python3
"""audit: the audit log records what was done and cannot be quietly rewritten
(docs/operations.md "Audit log").

After a series of actions through the CLI (over the Unix socket and over TCP
with role tokens) and the API, including refused ones:
  - every change and every refusal is in the log with the right token, role,
    method, path, object and result; filters of `vessel audit list` work;
  - `vessel audit verify` passes, through the API and offline (--file);
  - in a copy, editing a field, deleting a line and swapping two lines each
    make `vessel audit verify --file` exit 1 naming exactly that line;
  - the same edit in the live file is found by the API's verify, and undoing
    it makes verify pass again;
  - a restart continues the chain (new lines link to the old last line);
  - a damaged tail (a half-written line) is reported at start in the log and
    in GET /host warnings, is not truncated, and verify names it.
"""
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

CLI = os.path.join(vt.BUILD, "src", "cli", "vessel")


def vessel(d, *args, token=None, expect=0, t=None):
    if token:
        base = [CLI, "--url", f"http://127.0.0.1:{d.port}", "--token", token]
    else:
        base = [CLI, "--socket", d.sock]
    p = subprocess.run(base + list(args), capture_output=True, text=True, timeout=60)
    if expect is not None and p.returncode != expect:
        raise vt.Failure(f"vessel {' '.join(args)}: exit {p.returncode}, expected {expect}\n"
                         f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def lines_of(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def write_lines(path, lines):
    with open(path, "wb") as f:
        f.write(b"".join(l + b"\n" for l in lines))


def verify_file(t, d, path, want_line, what):
    p = vessel(d, "audit", "verify", "--file", path, expect=None)
    ok = t.check(p.returncode == 1, f"{what}: vessel audit verify --file should exit 1, got {p.returncode} "
                                    f"({p.stdout.strip()} {p.stderr.strip()})")
    ok &= t.check(f"line {want_line}" in p.stdout and f"line {want_line}" in p.stderr,
                  f"{what}: verify should name line {want_line}: {p.stdout.strip()} / {p.stderr.strip()}")
    log(f"{'ok' if ok else 'FAIL':4} {what}: {p.stdout.strip()}")
    pj = vessel(d, "--json", "audit", "verify", "--file", path, expect=None)
    j = json.loads(pj.stdout)
    t.check(j["ok"] is False and j["first_bad_line"] == want_line, f"{what}: --json verify: {j}")


def main(t):
    vt.need_vesseld()
    d = t.daemon("audit").start()
    alog = os.path.join(d.data_dir, "audit.log")

    # a series of actions: CLI over the socket (admin), CLI and API over TCP with tokens
    op_secret = vessel(d, "token", "create", "ops", "--role", "operator").stdout.strip()
    view_secret = vessel(d, "token", "create", "watcher", "--role", "viewer", "--expires", "7d").stdout.strip()
    toks = {x["name"]: x for x in d.api("GET", "tokens", expect=200).json["tokens"]}
    op_id, view_id = toks["ops"]["id"], toks["watcher"]["id"]
    vessel(d, "vm", "create", "a1", "--memory", "64M")
    vessel(d, "vm", "create", "a2", "--memory", "64M", token=op_secret)
    vessel(d, "vm", "update", "a2", "--description", "by the operator", token=op_secret)
    p = vessel(d, "vm", "delete", "a1", token=view_secret, expect=1)
    t.check("needs role operator" in p.stderr, f"viewer delete refused: {p.stderr}")
    r = d.tcp.get("vms", token="vst_0123456789abcdef_" + "00" * 32)
    t.check(r.status == 401, f"wrong token: {r.short()}")
    d.tcp.delete("vms/a1", token=op_secret)
    d.api("PATCH", "vms/a2", {"vcpus": 2}, expect=200)
    vessel(d, "token", "revoke", view_id)
    p = vessel(d, "vm", "list", token=view_secret, expect=1)
    t.check("revoked" in p.stderr, f"revoked token: {p.stderr}")

    entries = d.api("GET", "audit", expect=200).json["entries"]
    summary = [(e["method"], e["path"], e.get("object"), e["result"], e["token"], e["role"]) for e in entries]
    want = [
        ("POST", "/api/v1/tokens", "ops", 201, "unix-socket", "admin"),
        ("POST", "/api/v1/tokens", "watcher", 201, "unix-socket", "admin"),
        ("POST", "/api/v1/vms", "a1", 201, "unix-socket", "admin"),
        ("POST", "/api/v1/vms", "a2", 201, op_id, "operator"),
        ("PATCH", "/api/v1/vms/a2", "a2", 200, op_id, "operator"),
        ("DELETE", "/api/v1/vms/a1", "a1", 403, view_id, "viewer"),
        ("GET", "/api/v1/vms", None, 401, "0123456789abcdef", "-"),
        ("DELETE", "/api/v1/vms/a1", "a1", 200, op_id, "operator"),
        ("PATCH", "/api/v1/vms/a2", "a2", 200, "unix-socket", "admin"),
        ("DELETE", "/api/v1/tokens/" + view_id, view_id, 200, "unix-socket", "admin"),
        ("GET", "/api/v1/vms", None, 401, view_id, "-"),
    ]
    t.check(summary == want, "audit entries do not match the actions:\n  got  " +
            "\n       ".join(map(str, summary)) + "\n  want " + "\n       ".join(map(str, want)))
    t.check(all(e["client"] in ("unix", "127.0.0.1") and e["time"].endswith("Z") for e in entries),
            f"client and time fields: {entries[:2]}")
    t.check(entries[-1].get("detail") == "revoked", f"the 401 says why: {entries[-1]}")
    with open(alog) as f:
        raw = f.read()
    t.check(op_secret not in raw and view_secret not in raw and d.token not in raw,
            "no token secret may appear in the audit log")
    st = os.stat(alog)
    t.check(st.st_mode & 0o777 == 0o600, f"audit.log mode {oct(st.st_mode & 0o777)}, expected 0600")

    # filters, through the CLI
    p = vessel(d, "--json", "audit", "list", "--method", "DELETE")
    j = json.loads(p.stdout)
    t.check([e["result"] for e in j["entries"]] == [403, 200, 200], f"--method DELETE: {j}")
    p = vessel(d, "--json", "audit", "list", "--result", "4xx", "--path", "/api/v1/vms")
    j = json.loads(p.stdout)
    t.check([e["result"] for e in j["entries"]] == [403, 401, 401], f"--result 4xx --path: {j}")
    p = vessel(d, "--json", "audit", "list", "--token-id", op_id, "--limit", "2")
    j = json.loads(p.stdout)
    t.check(j["matched"] == 3 and len(j["entries"]) == 2 and j["truncated"], f"--token-id --limit: {j}")
    p = vessel(d, "--json", "audit", "list", "--since", "1h")
    t.check(len(json.loads(p.stdout)["entries"]) == len(entries), "--since 1h lists everything")
    p = vessel(d, "--json", "audit", "list", "--until", "2000-01-01")
    t.check(json.loads(p.stdout)["entries"] == [], "--until 2000-01-01 lists nothing")
    p = vessel(d, "audit", "list", "--since", "yesterday", expect=1)
    t.check("since 'yesterday'" in p.stderr, f"bad --since: {p.stderr}")
    p = vessel(d, "audit", "list", token=op_secret, expect=1)
    t.check("needs role admin" in p.stderr, f"an operator may not read the audit log: {p.stderr}")
    p = vessel(d, "audit", "list")
    t.check("POST" in p.stdout and "watcher" in p.stdout, f"table output: {p.stdout[:300]}")

    # verify passes, through the API and offline
    total = len(lines_of(alog))
    t.check(total == len(entries) + 1, f"audit.log has {total} lines, expected the {len(entries)} above "
                                       "and the operator's refused audit list")
    p = vessel(d, "audit", "verify")
    t.check("ok" in p.stdout and f"{total} entries" in p.stdout, f"verify (API): {p.stdout}")
    p = vessel(d, "audit", "verify", "--file", alog)
    t.check(p.returncode == 0 and "ok" in p.stdout, f"verify --file: {p.stdout}")

    # tampering with a copy: each kind is named at its line
    orig = lines_of(alog)
    n = len(orig)
    t.require(n >= 10, f"expected at least 10 audit lines, have {n}")
    copy = os.path.join(d.tmp, "copy.log")
    for k in (1, 4, n):  # edit a field: first, middle, last line
        ls = list(orig)
        ls[k - 1] = ls[k - 1].replace(b'"result":', b'"result":1', 1)
        write_lines(copy, ls)
        verify_file(t, d, copy, k, f"edit line {k}")
    for k in (1, 5, n - 1):  # delete a line
        ls = list(orig)
        del ls[k - 1]
        write_lines(copy, ls)
        verify_file(t, d, copy, k, f"delete line {k}")
    for k in (1, 6, n - 1):  # swap lines k and k+1
        ls = list(orig)
        ls[k - 1], ls[k] = ls[k], ls[k - 1]
        write_lines(copy, ls)
        verify_file(t, d, copy, k, f"swap lines {k} and {k + 1}")

    # the live file: an edit is found by the API's verify; undoing it restores ok
    ls = list(orig)
    ls[3] = ls[3].replace(b'"role":"', b'"role":"x', 1)
    write_lines(alog, ls)
    p = vessel(d, "audit", "verify", expect=1)
    t.check("line 4" in p.stdout, f"API verify of an edited live log: {p.stdout} {p.stderr}")
    write_lines(alog, orig)
    # the last line removed from the live file: the chain cannot tell, vesseld's record can
    write_lines(alog, orig[:-1])
    r = d.api("GET", "audit/verify", expect=200).json
    t.check(not r["ok"] and r["first_bad_line"] == n and "removed" in r["reason"],
            f"API verify of a log missing its last line: {r}")
    write_lines(alog, orig)
    r = d.api("GET", "audit/verify", expect=200).json
    t.check(r["ok"] and r["entries"] == n, f"verify after undoing: {r}")

    # a restart continues the chain
    t.require(d.stop() == 0, "vesseld did not stop cleanly")
    d.start()
    t.check(d.api("GET", "host", expect=200).json["warnings"] == [w for w in d.api("GET", "host").json["warnings"]
                                                                   if "audit" not in w],
            "no audit warning after a clean restart")
    vessel(d, "vm", "delete", "a2")
    after = lines_of(alog)
    t.check(after[:n] == orig and len(after) == n + 1, "the restart appended after the old lines")
    prev = json.loads(after[n])["prev"]
    t.check(prev == hashlib.sha256(orig[-1]).hexdigest(),
            "the first line after the restart links to the last line before it")
    p = vessel(d, "audit", "verify")
    t.check(f"{n + 1} entries" in p.stdout, f"verify after restart: {p.stdout}")

    # a damaged tail: reported loudly, not truncated, named by verify
    t.require(d.stop() == 0, "vesseld did not stop cleanly")
    with open(alog, "ab") as f:
        f.write(b'{"prev":"deadbeef","time":"2026-')  # a write cut short
    size = os.path.getsize(alog)
    d.start()
    warns = d.api("GET", "host", expect=200).json["warnings"]
    t.check(any("audit log" in w and f"line {n + 2}" in w for w in warns),
            f"GET /host should warn about the damaged audit log: {warns}")
    t.check("is damaged" in open(d.log_path).read(), "vesseld's log reports the damage")
    t.check(os.path.getsize(alog) > size, "the damaged log was not truncated")
    with open(alog, "rb") as f:
        t.check(b'{"prev":"deadbeef","time":"2026-\n' in f.read(), "the damaged bytes are kept")
    vessel(d, "vm", "create", "a3", "--memory", "64M")
    p = vessel(d, "audit", "verify", expect=1)
    t.check(f"line {n + 2}" in p.stdout, f"verify names the damaged line {n + 2}: {p.stdout}")
    p = vessel(d, "audit", "verify", "--file", alog, expect=1)
    t.check(f"line {n + 2}" in p.stdout, f"offline verify names the damaged line {n + 2}: {p.stdout}")
    p = vessel(d, "--json", "audit", "list", "--limit", "3")
    j = json.loads(p.stdout)["entries"]
    t.check(j[0].get("damaged") and j[1].get("method") == "START" and j[2].get("object") == "a3",
            f"the list shows the damaged line, the damage note and the new entry: {j}")


if __name__ == "__main__":
    vt.Test("audit", limit=240).run(main)
