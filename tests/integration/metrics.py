#!/usr/bin/env python3
"""metrics: GET /metrics is valid Prometheus text (exposition format 0.0.4) and
tells the truth about the host and a real VM.

The scrape is parsed strictly: every line is a HELP, TYPE or sample line;
each family has exactly one HELP and one TYPE, before its samples; every
sample belongs to the family declared last (no interleaving) and each series
appears once; metric and label names, label-value escapes and numbers follow
the format; where promtool is installed, Prometheus' own parser and linter
must accept each scrape without a remark too. Then, with our own vesseld (docs/api.md, "Metrics"):
  - served on the Unix socket and on TCP with the token; 401 on TCP without;
  - host figures agree with GET /api/v1/host;
  - a direct-kernel-boot VM shows up as state stopped with its size, and no
    process figures; after start it is running, and its monitor's CPU seconds
    and RSS are above zero and agree with /proc/PID of that QEMU, read by this
    test around the scrape; disk I/O counters are present;
  - the request counters count what this test did (including the 401);
  - after force-stop and delete its series change and then disappear.
Per-VM figures from QMP and /proc/PID/task (docs/operations.md "Metrics"):
  - each vCPU thread's time and run-queue wait, the balloon's actual size, and the block
    counters of its disk; when the guest writes and then reads its disk with dd through the
    serial console, the write and read byte and operation counters must grow by at least
    what dd moved;
  - host CPU by mode, data-dir disk, allocatable and used vCPUs/memory; requests and the
    latency histogram by route pattern;
  - docs/grafana-dashboard.json parses and every metric it queries exists in a real scrape.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

VM = "metrics-1"
CONTENT_TYPE = "text/plain; version=0.0.4"
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

EXPECTED = {
    "vessel_info": "gauge",
    "vessel_host_cpus": "gauge",
    "vessel_host_memory_bytes": "gauge",
    "vessel_host_memory_available_bytes": "gauge",
    "vessel_host_load1": "gauge",
    "vessel_vm_state": "gauge",
    "vessel_vm_vcpus": "gauge",
    "vessel_vm_memory_bytes": "gauge",
    "vessel_vm_cpu_seconds_total": "counter",
    "vessel_vm_rss_bytes": "gauge",
    "vessel_vm_disk_read_bytes_total": "counter",
    "vessel_vm_disk_write_bytes_total": "counter",
    "vessel_api_requests_total": "counter",
    "vessel_tasks": "gauge",
    "vessel_images": "gauge",
    "vessel_host_cpu_seconds_total": "counter",
    "vessel_host_disk_bytes": "gauge",
    "vessel_host_disk_free_bytes": "gauge",
    "vessel_host_vcpus_allocatable": "gauge",
    "vessel_host_vcpus_used": "gauge",
    "vessel_host_memory_allocatable_bytes": "gauge",
    "vessel_host_memory_used_bytes": "gauge",
    "vessel_vm_info": "gauge",
    "vessel_vm_vcpu_seconds_total": "counter",
    "vessel_vm_vcpu_wait_seconds_total": "counter",
    "vessel_vm_balloon_bytes": "gauge",
    "vessel_vm_block_read_bytes_total": "counter",
    "vessel_vm_block_write_bytes_total": "counter",
    "vessel_vm_block_read_ops_total": "counter",
    "vessel_vm_block_write_ops_total": "counter",
    "vessel_vm_network_receive_bytes_total": "counter",
    "vessel_vm_network_transmit_bytes_total": "counter",
    "vessel_vm_network_receive_packets_total": "counter",
    "vessel_vm_network_transmit_packets_total": "counter",
    "vessel_vm_network_receive_drops_total": "counter",
    "vessel_vm_network_transmit_drops_total": "counter",
    "vessel_api_route_requests_total": "counter",
    "vessel_api_request_duration_seconds": "histogram",
}
DASHBOARD = os.path.join(vt.ROOT, "docs", "grafana-dashboard.json")


class ParseError(Exception):
    pass


def parse_value(s, where):
    # Go's ParseFloat syntax plus the format's special values
    if s in ("NaN", "Nan", "+Inf", "-Inf", "Inf"):
        return float(s.replace("Nan", "NaN"))
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", s):
        raise ParseError(f"{where}: value {s!r} is not a number")
    return float(s)


def parse_labels(s, i, where):
    """s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        m = LABEL_NAME.match(s, i)
        if not m:
            raise ParseError(f"{where}: bad label name at column {i}")
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ParseError(f"{where}: label {name} not followed by =\"")
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise ParseError(f"{where}: unterminated value of label {name}")
            c = s[i]
            if c == "\\":
                esc = s[i + 1:i + 2]
                if esc not in ("\\", '"', "n"):
                    raise ParseError(f"{where}: invalid escape \\{esc} in label {name}")
                val.append("\n" if esc == "n" else esc)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                val.append(c)
                i += 1
        if name in labels:
            raise ParseError(f"{where}: label {name} given twice")
        labels[name] = "".join(val)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] == "}":
            continue
        else:
            raise ParseError(f"{where}: expected ',' or '}}' after label {name}")


def parse_exposition(text):
    """Returns {family: {"type", "help", "samples": [(labels dict, value)]}}."""
    if text and not text.endswith("\n"):
        raise ParseError("the last line does not end with a newline")
    fams = {}
    current = None
    closed = set()
    series = set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n} {line[:120]!r}"
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not METRIC_NAME.fullmatch(name):
                    raise ParseError(f"{where}: bad metric name")
                if name in closed:
                    raise ParseError(f"{where}: family {name} declared again after other families")
                f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                if f["samples"]:
                    raise ParseError(f"{where}: {parts[1]} after samples of {name}")
                if current and current != name:
                    closed.add(current)
                current = name
                if parts[1] == "HELP":
                    if f["help"] is not None:
                        raise ParseError(f"{where}: second HELP for {name}")
                    f["help"] = parts[3] if len(parts) > 3 else ""
                    if re.search(r"\\[^\\n]", f["help"]):
                        raise ParseError(f"{where}: invalid escape in HELP text")
                else:
                    if f["type"] is not None:
                        raise ParseError(f"{where}: second TYPE for {name}")
                    if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        raise ParseError(f"{where}: bad TYPE line")
                    f["type"] = parts[3]
            continue  # any other comment is allowed by the format
        m = METRIC_NAME.match(line)
        if not m:
            raise ParseError(f"{where}: sample line does not start with a metric name")
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, where)
        if i >= len(line) or line[i] != " ":
            raise ParseError(f"{where}: no space before the value")
        rest = line[i + 1:].split(" ")
        if len(rest) not in (1, 2):
            raise ParseError(f"{where}: expected 'value [timestamp]'")
        value = parse_value(rest[0], where)
        if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
            raise ParseError(f"{where}: bad timestamp {rest[1]!r}")
        part = None
        if name != current and current and fams[current]["type"] == "histogram" \
                and name in (current + "_bucket", current + "_sum", current + "_count"):
            part = name  # a histogram's samples carry these suffixes
        elif name != current:
            raise ParseError(f"{where}: sample of {name} outside its family (current family {current})")
        if part == current + "_bucket" and "le" not in labels:
            raise ParseError(f"{where}: histogram bucket without an le label")
        f = fams[current]
        if f["help"] is None or f["type"] is None:
            raise ParseError(f"{where}: sample of {name} before both its HELP and TYPE lines")
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise ParseError(f"{where}: series given twice")
        series.add(key)
        if f["type"] == "counter" and (math.isnan(value) or value < 0):
            raise ParseError(f"{where}: counter with value {value}")
        if part:
            labels = dict(labels, __name__=part)
        f["samples"].append((labels, value))
    for name, f in fams.items():
        if f["help"] is None or f["type"] is None:
            raise ParseError(f"family {name} lacks its HELP or TYPE line")
    return fams


def self_test_parser(t):
    """The parser must refuse what the format forbids, or the checks below prove nothing."""
    good = '# HELP a x\n# TYPE a gauge\na{n="q\\"\\\\\\n"} 1\na 2.5e3\n'
    fams = parse_exposition(good)
    t.require(fams["a"]["samples"][0] == ({"n": 'q"\\\n'}, 1.0), f"parser self-test: {fams}")
    bad = [
        "# HELP a x\n# TYPE a gauge\na 1",                       # no final newline
        "a 1\n",                                                 # no HELP/TYPE
        "# HELP a x\na 1\n",                                     # no TYPE
        "# HELP a x\n# TYPE a gauge\nb 1\n",                     # sample of another family
        '# HELP a x\n# TYPE a gauge\na{n="x\\t"} 1\n',           # invalid escape
        '# HELP a x\n# TYPE a gauge\na{n="x} 1\n',               # unterminated value
        "# HELP a x\n# TYPE a gauge\na{1n=\"x\"} 1\n",           # bad label name
        "# HELP a x\n# TYPE a gauge\na one\n",                   # bad value
        "# HELP a x\n# TYPE a gauge\na 1\na 2\n",                # duplicate series
        "# HELP a x\n# TYPE a gauge\na 1\n# HELP b y\n# TYPE b gauge\nb 1\na 3\n",  # interleaved
        "# HELP a x\n# TYPE a counter\na -1\n",                  # negative counter
    ]
    for b in bad:
        try:
            parse_exposition(b)
        except ParseError:
            continue
        raise vt.Failure(f"parser self-test accepted invalid text {b!r}")


def promtool_check(t, body, what):
    """The reference parser and linter (Prometheus' own promtool), when installed:
    it must accept the text and have nothing to say about naming or types."""
    tool = shutil.which("promtool")
    if not tool:
        if not getattr(t, "promtool_noted", False):
            t.note("promtool not installed (scripts/install-deps adds prometheus): reference check skipped")
            t.promtool_noted = True
        return
    p = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode(errors="replace").strip()
    t.check(p.returncode == 0 and not out, f"{what}: promtool check metrics: exit {p.returncode}: {out}")


def scrape(t, d, client=None, what="scrape"):
    r = (client or d.unix).get("/metrics")
    t.require(r.status == 200, f"{what}: GET /metrics: {r.short()}")
    t.check(r.headers.get("content-type") == CONTENT_TYPE,
            f"{what}: Content-Type {r.headers.get('content-type')!r}, expected {CONTENT_TYPE!r}")
    try:
        fams = parse_exposition(r.body.decode())
    except (ParseError, UnicodeDecodeError) as e:
        raise vt.Failure(f"{what}: /metrics is not valid exposition text: {e}\n{r.body[:3000].decode(errors='replace')}")
    promtool_check(t, r.body, what)
    for name, typ in EXPECTED.items():
        t.check(name in fams, f"{what}: family {name} missing")
        if name in fams:
            t.check(fams[name]["type"] == typ, f"{what}: {name} has TYPE {fams[name]['type']}, expected {typ}")
            t.check(len(fams[name]["help"]) > 5, f"{what}: {name} has no useful HELP text")
    return fams


def values(fams, family, **match):
    if family not in fams:  # a histogram's _bucket/_sum/_count samples
        base = re.sub(r"_(bucket|sum|count)$", "", family)
        match = dict(match, __name__=family)
        family = base
    return [v for labels, v in fams.get(family, {}).get("samples", [])
            if all(labels.get(k) == w for k, w in match.items())]


def one(fams, family, **match):
    v = values(fams, family, **match)
    return v[0] if len(v) == 1 else None


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def vm_details(t, d, fams, pid):
    """QMP and /proc/PID/task figures of the running VM, and disk work that moves them."""
    t.check(values(fams, "vessel_vm_info", name=VM, project="default", priority="P1") == [1],
            f"vessel_vm_info: {fams['vessel_vm_info']['samples']}")
    vcpu = one(fams, "vessel_vm_vcpu_seconds_total", name=VM, vcpu="0")
    t.check(vcpu is not None and vcpu > 0, f"vessel_vm_vcpu_seconds_total of vcpu 0: {vcpu}")
    whole = one(fams, "vessel_vm_cpu_seconds_total", name=VM)
    t.check(vcpu is not None and whole is not None and vcpu <= whole + 0.02,
            f"vCPU thread time {vcpu} exceeds the whole QEMU's {whole}")
    tids = os.listdir(f"/proc/{pid}/task")
    t.check(len(values(fams, "vessel_vm_vcpu_seconds_total", name=VM)) == 1,
            f"one vCPU VM shows vCPU series {values(fams, 'vessel_vm_vcpu_seconds_total', name=VM)}")
    wait = one(fams, "vessel_vm_vcpu_wait_seconds_total", name=VM, vcpu="0")
    if os.path.exists(f"/proc/{pid}/task/{tids[0]}/schedstat"):
        t.check(wait is not None and wait >= 0, f"vessel_vm_vcpu_wait_seconds_total: {wait}")
    t.check(one(fams, "vessel_vm_balloon_bytes", name=VM) == 256 << 20,
            f"vessel_vm_balloon_bytes {one(fams, 'vessel_vm_balloon_bytes', name=VM)}, expected 256 MiB")
    mode = {l["mode"]: v for l, v in fams["vessel_host_cpu_seconds_total"]["samples"]}
    t.check(set(mode) >= {"user", "system", "idle", "iowait", "steal"} and mode["idle"] > 0,
            f"vessel_host_cpu_seconds_total modes: {mode}")
    t.check((one(fams, "vessel_host_disk_bytes") or 0) >= (one(fams, "vessel_host_disk_free_bytes") or -1) > 0,
            "data-dir disk figures missing or inconsistent")
    cap = d.api("GET", "host/capacity", expect=200).json["capacity"]
    t.check(one(fams, "vessel_host_vcpus_allocatable") == cap["vcpus"]["allocatable"]
            and one(fams, "vessel_host_vcpus_used") == 1
            and one(fams, "vessel_host_memory_used_bytes") == 256 << 20,
            f"capacity series disagree with GET /host/capacity {cap}")
    start = values(fams, "vessel_api_route_requests_total", method="POST", route="/api/v1/vms/{name}/start", code="200")
    t.check(start == [1], f"route counter of the start: {start}")
    cnt = values(fams, "vessel_api_request_duration_seconds_count", method="POST", route="/api/v1/vms/{name}/start")
    inf = values(fams, "vessel_api_request_duration_seconds_bucket", method="POST", route="/api/v1/vms/{name}/start", le="+Inf")
    t.check(cnt == [1] and inf == [1], f"latency histogram of the start: count {cnt}, +Inf {inf}")
    t.check(not [l for l, _ in fams["vessel_api_route_requests_total"]["samples"] if VM in l.get("route", "")],
            "a raw path leaked into the route label")
    t.check(values(fams, "vessel_vm_network_receive_bytes_total", name=VM) == [],
            "NIC series for a VM without NICs (metrics_net.py covers NICs)")

    def blk(f, fam):
        return one(f, fam, name=VM, disk="disk0")

    before = {k: blk(fams, k) for k in ("vessel_vm_block_write_bytes_total", "vessel_vm_block_write_ops_total",
                                        "vessel_vm_block_read_bytes_total", "vessel_vm_block_read_ops_total")}
    t.require(all(v is not None for v in before.values()), f"block counters of disk0: {before}")
    d.console_run(VM, "dd if=/dev/urandom of=/dev/vda bs=1M count=8 conv=fsync 2>/dev/null; echo dd-w-$?",
                  b"dd-w-0", timeout=120)
    mid = scrape(t, d, what="after the guest wrote 8 MiB")
    wb = blk(mid, "vessel_vm_block_write_bytes_total") - before["vessel_vm_block_write_bytes_total"]
    wo = blk(mid, "vessel_vm_block_write_ops_total") - before["vessel_vm_block_write_ops_total"]
    log(f"guest wrote 8 MiB: block write bytes +{wb:.0f}, ops +{wo:.0f}")
    t.check(wb >= 8 << 20, f"vessel_vm_block_write_bytes_total grew by {wb}, the guest wrote 8 MiB")
    t.check(wo >= 1, f"vessel_vm_block_write_ops_total grew by {wo}")
    # a part of the disk the guest never touched, so its page cache cannot answer
    d.console_run(VM, "dd if=/dev/vda of=/dev/null bs=1M count=8 skip=64 2>/dev/null; echo dd-r-$?",
                  b"dd-r-0", timeout=120)
    end = scrape(t, d, what="after the guest read 8 MiB")
    rb = blk(end, "vessel_vm_block_read_bytes_total") - before["vessel_vm_block_read_bytes_total"]
    ro = blk(end, "vessel_vm_block_read_ops_total") - before["vessel_vm_block_read_ops_total"]
    log(f"guest read 8 MiB: block read bytes +{rb:.0f}, ops +{ro:.0f}")
    t.check(rb >= 8 << 20, f"vessel_vm_block_read_bytes_total grew by {rb}, the guest read 8 MiB")
    t.check(ro >= 1, f"vessel_vm_block_read_ops_total grew by {ro}")


def dashboard(t, fams):
    """docs/grafana-dashboard.json: valid JSON, and every metric it queries is served."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = []

    def walk(panels):
        for p in panels:
            for tg in p.get("targets", []):
                exprs.append(tg["expr"])
            walk(p.get("panels", []))

    walk(dash["panels"])
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            exprs.append(q.get("query", ""))
    t.check(len(exprs) >= 15, f"the dashboard has only {len(exprs)} queries")
    names = set()
    for e in exprs:
        names.update(re.findall(r"\bvessel_[a-z0-9_]+", e))
    served = set(fams)
    for n in list(fams):
        if fams[n]["type"] == "histogram":
            served.update({n + "_bucket", n + "_sum", n + "_count"})
    missing = sorted(names - served)
    t.check(not missing, f"the dashboard queries metrics /metrics does not serve: {missing}")
    unused = sorted(n for n in EXPECTED if n not in names and not (n + "_bucket") in names)
    if unused:
        t.note(f"families not on the dashboard: {unused}")
    log(f"dashboard: {len(exprs)} queries over {len(names)} metric names, all served")


def main(t):
    self_test_parser(t)
    vt.need_vesseld()
    kernel_src, initrd_src = vt.need_guest("vmlinuz", "initramfs.img")
    d = t.daemon("metrics").start()

    # transport and auth
    r = d.tcp.get("/metrics", token=None)
    t.expect_error(r, 401, "unauthorized", what="GET /metrics over TCP without a token")
    r = d.tcp.get("/metrics", token="not-the-token")
    t.check(r.status == 401, f"GET /metrics with a wrong token: {r.short()}")
    fams = scrape(t, d, client=d.tcp, what="TCP scrape with the token")

    host = d.api("GET", "host", expect=200).json
    info = values(fams, "vessel_info")
    t.check(len(info) == 1 and info[0] == 1, f"vessel_info: {fams.get('vessel_info')}")
    lab = fams["vessel_info"]["samples"][0][0] if info else {}
    t.check(lab.get("version") == host["version"] and lab.get("accel") == host["accel"],
            f"vessel_info labels {lab} disagree with GET /host ({host['version']}, {host['accel']})")
    t.check(one(fams, "vessel_host_cpus") == host["cpus"],
            f"vessel_host_cpus {one(fams, 'vessel_host_cpus')} != host cpus {host['cpus']}")
    mem = one(fams, "vessel_host_memory_bytes")
    avail = one(fams, "vessel_host_memory_available_bytes")
    t.check(mem is not None and abs(mem / (1 << 20) - host["memory_mib"]) <= 1,
            f"vessel_host_memory_bytes {mem} vs host memory_mib {host['memory_mib']}")
    t.check(avail is not None and mem is not None and 0 < avail <= mem,
            f"vessel_host_memory_available_bytes {avail} not in (0, {mem}]")
    load1 = one(fams, "vessel_host_load1")
    with open("/proc/loadavg") as f:
        load_now = float(f.read().split()[0])
    t.check(load1 is not None and load1 >= 0 and abs(load1 - load_now) < max(2.0, load_now),
            f"vessel_host_load1 {load1} vs /proc/loadavg {load_now}")
    t.check(one(fams, "vessel_images") == 0, f"vessel_images {one(fams, 'vessel_images')}, expected 0")
    t.check(sorted(l["state"] for l, _ in fams["vessel_tasks"]["samples"]) == ["failed", "running", "succeeded"],
            f"vessel_tasks states: {fams['vessel_tasks']['samples']}")

    # a VM, stopped
    kernel = os.path.join(d.import_dir, "vmlinuz")
    initrd = os.path.join(d.import_dir, "initramfs.img")
    shutil.copyfile(kernel_src, kernel)
    shutil.copyfile(initrd_src, initrd)
    d.api("POST", "vms", {"name": VM, "vcpus": 1, "memory_mib": 256, "priority": "P1",
                          "disks": [{"size_gib": 1}],
                          "boot": {"firmware": "kernel", "kernel": kernel, "initrd": initrd,
                                   "cmdline": "console=ttyS0 panic=-1"}}, expect=201)
    fams = scrape(t, d, what="after create")
    states = [(l.get("state"), v) for l, v in fams["vessel_vm_state"]["samples"] if l.get("name") == VM]
    t.check(states == [("stopped", 1)], f"vessel_vm_state of a created VM: {states}, expected [('stopped', 1)]")
    t.check(one(fams, "vessel_vm_vcpus", name=VM) == 1, f"vessel_vm_vcpus: {values(fams, 'vessel_vm_vcpus', name=VM)}")
    t.check(one(fams, "vessel_vm_memory_bytes", name=VM) == 256 << 20,
            f"vessel_vm_memory_bytes: {values(fams, 'vessel_vm_memory_bytes', name=VM)}")
    for fam in ("vessel_vm_cpu_seconds_total", "vessel_vm_rss_bytes", "vessel_vm_disk_read_bytes_total"):
        t.check(values(fams, fam, name=VM) == [], f"{fam} reported for a stopped VM: {values(fams, fam, name=VM)}")
    t.check((one(fams, "vessel_api_requests_total", method="GET", code="401") or 0) >= 2,
            f"the 401s are not counted: {fams['vessel_api_requests_total']['samples']}")
    t.check((one(fams, "vessel_api_requests_total", method="POST", code="201") or 0) >= 1,
            f"the POST that created the VM is not counted: {fams['vessel_api_requests_total']['samples']}")

    # running: process figures from /proc/PID of the QEMU we see ourselves
    r = d.api("POST", f"vms/{VM}/start", expect=200)
    pid = r.json["vm"]["pid"]
    t.require(isinstance(pid, int) and vt.is_qemu(pid), f"start: pid {pid} is not a QEMU")
    d.console_wait(VM, b"VESSEL-GUEST-READY", timeout=120)
    log("guest ready")
    before_cpu = proc_cpu_seconds(pid)
    fams = scrape(t, d, what="while running")
    after_cpu = proc_cpu_seconds(pid)
    rss_direct = proc_rss(pid)
    states = [(l.get("state"), v) for l, v in fams["vessel_vm_state"]["samples"] if l.get("name") == VM]
    t.check(states == [("running", 1)], f"vessel_vm_state after start: {states}")
    cpu = one(fams, "vessel_vm_cpu_seconds_total", name=VM)
    rss = one(fams, "vessel_vm_rss_bytes", name=VM)
    log(f"cpu {cpu} s (proc {before_cpu}..{after_cpu}), rss {rss} (proc {rss_direct})")
    t.check(cpu is not None and cpu > 0, f"vessel_vm_cpu_seconds_total {cpu}, expected > 0")
    t.check(cpu is not None and before_cpu - 0.011 <= cpu <= after_cpu + 0.011,
            f"vessel_vm_cpu_seconds_total {cpu} outside what /proc/{pid}/stat said around the scrape "
            f"({before_cpu}..{after_cpu})")
    t.check(rss is not None and rss > 16 << 20, f"vessel_vm_rss_bytes {rss}, expected > 16 MiB for a booted guest")
    t.check(rss is not None and abs(rss - rss_direct) <= max(rss_direct // 4, 8 << 20),
            f"vessel_vm_rss_bytes {rss} far from /proc/{pid}/statm {rss_direct}")
    rd = one(fams, "vessel_vm_disk_read_bytes_total", name=VM)
    wr = one(fams, "vessel_vm_disk_write_bytes_total", name=VM)
    t.check(rd is not None and wr is not None and rd >= 0 and wr >= 0,
            f"disk counters of a running VM: read {rd}, write {wr}")
    with open(f"/proc/{pid}/io") as f:
        io = dict(l.split(": ") for l in f.read().splitlines())
    t.check(rd is not None and rd <= int(io["read_bytes"]),
            f"vessel_vm_disk_read_bytes_total {rd} above /proc/{pid}/io read_bytes {io['read_bytes']}")
    # a counter never goes back, and a booting TCG guest keeps using CPU
    d.console_run(VM, "echo m-$((6*7))", b"m-42", timeout=60)
    fams2 = scrape(t, d, what="second scrape while running")
    cpu2 = one(fams2, "vessel_vm_cpu_seconds_total", name=VM)
    t.check(cpu is not None and cpu2 is not None and cpu2 >= cpu,
            f"vessel_vm_cpu_seconds_total went from {cpu} to {cpu2}")
    vm_details(t, d, fams2, pid)
    dashboard(t, fams2)

    # stopped again: process figures gone; deleted: every series gone
    d.api("POST", f"vms/{VM}/force-stop", expect=200)
    fams = scrape(t, d, what="after force-stop")
    states = [(l.get("state"), v) for l, v in fams["vessel_vm_state"]["samples"] if l.get("name") == VM]
    t.check(states == [("stopped", 1)], f"vessel_vm_state after force-stop: {states}")
    t.check(values(fams, "vessel_vm_cpu_seconds_total", name=VM) == [],
            "vessel_vm_cpu_seconds_total still reported after force-stop")
    d.api("DELETE", f"vms/{VM}", expect=200)
    fams = scrape(t, d, what="after delete")
    left = [(n, l) for n, f in fams.items() for l, _ in f["samples"] if l.get("name") == VM]
    t.check(left == [], f"series of the deleted VM remain: {left}")
    t.check(not d.qemu_pids(), f"QEMU left: {d.qemu_pids()}")


if __name__ == "__main__":
    vt.Test("metrics", limit=240).run(main)
