#!/usr/bin/env python3
"""auth_limits: repeated failed authentications from one client address are
slowed, then refused for a while, and logged (docs/operations.md "Brute-force
protection").

vesseld runs with --auth-limits 2:1000:5:3: two free failures, then a delay of
1 s doubling with each failure (2 s after the fourth), a 3 s lockout at the
fifth. While delayed or locked out every request from the address, even with
a valid token, gets 429 with Retry-After, and does not count as a failure;
once the wait is over a valid token works again and the count starts afresh.
The Unix socket is never limited. Each refusal is in the audit log and the
lockout in vesseld's log.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

WRONG = "vst_0123456789abcdef_" + "cd" * 32


def main(t):
    vt.need_vesseld()
    d = t.daemon("authlim", extra_args=["--auth-limits", "2:1000:5:3"]).start()
    good = d.api("POST", "tokens", {"name": "v", "role": "viewer"}, expect=201).json["secret"]

    def get(tok):
        return d.tcp.get("vms", token=tok)

    def expect(r, status, what):
        ok = t.check(r.status == status, f"{what}: expected {status}, got {r.short()}")
        log(f"{'ok' if ok else 'FAIL':4} {what}: {r.status} {r.headers.get('retry-after', '')} "
            f"{r.error_message[:90]!r}")
        return r

    expect(get(good), 200, "a valid token")
    expect(get(WRONG), 401, "failure 1 (free)")
    expect(get("garbage"), 401, "failure 2 (free)")
    expect(get(good), 200, "a valid token after free failures")
    expect(get(WRONG), 401, "failure 1 again (a success forgot the others)")
    expect(get(WRONG), 401, "failure 2")
    expect(get(WRONG), 401, "failure 3: a 1 s delay starts")
    r = expect(get(good), 429, "a valid token within the delay")
    t.check(r.headers.get("retry-after") == "1" and r.error_code == "too_many_requests",
            f"429 carries Retry-After: 1 and code too_many_requests: {r.headers} {r.short()}")
    expect(get(WRONG), 429, "a wrong token within the delay (not counted)")
    time.sleep(1.05)
    expect(get(WRONG), 401, "failure 4: the delay doubles to 2 s")
    r = expect(get(good), 429, "within the longer delay")
    t.check(r.headers.get("retry-after") == "2", f"the delay grew to 2 s: {r.headers}")
    time.sleep(2.05)
    expect(get(WRONG), 401, "failure 5: a 3 s lockout")
    r = expect(get(good), 429, "a valid token during the lockout")
    t.check(r.headers.get("retry-after") == "3", f"lockout Retry-After 3: {r.headers}")
    t.check("try again in 3 seconds" in r.error_message, f"the message says how long: {r.error_message}")
    u = d.unix.get("/api/v1/vms")
    t.check(u.status == 200, f"the Unix socket is not limited: {u.short()}")
    time.sleep(1.5)
    r = expect(get(good), 429, "still locked out")
    t.check(r.headers.get("retry-after") in ("1", "2"), f"Retry-After counts down: {r.headers}")
    time.sleep(int(r.headers.get("retry-after", "2")) + 0.1)
    expect(get(good), 200, "a valid token once the lockout is over")
    expect(get(WRONG), 401, "a new failure is a free one again")
    expect(get(good), 200, "and does not delay")

    text = open(d.log_path).read()
    t.check("127.0.0.1 is locked out after 5 failed authentications" in text,
            "vesseld's log reports the lockout")
    e = d.api("GET", "audit?result=429", expect=200).json["entries"]
    t.check(len(e) == 5 and all(x["client"] == "127.0.0.1" and x["detail"].startswith("locked out")
                                for x in e), f"the audit log has the five 429s: {e}")
    e = d.api("GET", "audit?result=401", expect=200).json["entries"]
    t.check(len(e) == 8, f"the audit log has the eight 401s: {len(e)}")


if __name__ == "__main__":
    vt.Test("auth_limits", limit=120).run(main)
