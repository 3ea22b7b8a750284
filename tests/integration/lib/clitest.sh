# clitest.sh: what the shell tests of the `vessel` CLI share, sourced by
# cli_basic.sh and cli_snapshots.sh. It finds the binaries (VESSEL_BUILD),
# skips (exit 77 after "SKIP reason") when something is missing, starts a
# vesseld of its own on a temporary data dir, a random TCP port and its own
# Unix socket, kills it and removes the dir on exit, and gives the checks:
# run, expect_ok, expect_fail, pycheck, ok, bad, show, clitest_finish.
# Sourced, not run: it has no shebang and is not executable, so tests/run-all
# does not take it for a test.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${VESSEL_BUILD:-$ROOT/build}
VESSEL=${VESSEL_CLI_BIN:-$BUILD/src/cli/vessel}
VESSELD=${VESSELD_BIN:-$BUILD/src/daemon/vesseld}

skip() { echo "SKIP $*"; exit 77; }
[ -x "$VESSEL" ] || skip "vessel CLI not built at $VESSEL (build it, or set VESSEL_BUILD)"
[ -x "$VESSELD" ] || skip "vesseld not built at $VESSELD (build it, or set VESSEL_BUILD)"
command -v qemu-img >/dev/null || skip "qemu-img is not installed (scripts/install-deps)"
command -v python3 >/dev/null || skip "python3 is not installed (scripts/install-deps)"

DPID=
TMP=
clitest_cleanup() {
	if [ -n "$DPID" ]; then
		kill "$DPID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	[ -n "$TMP" ] && rm -rf "$TMP"
}
trap clitest_cleanup EXIT
trap 'exit 1' INT TERM

# clitest_tmp NAME: a temporary dir /tmp/vessel-NAME.* (TMP) holding the
# data dir DATA (with its import/ dir) and the socket path SOCK.
clitest_tmp() {
	TMP=$(mktemp -d "/tmp/vessel-$1.XXXXXX")
	DATA=$TMP/data
	SOCK=$TMP/vesseld.sock
	mkdir -p "$DATA/import"
}

# clitest_start [VESSELD ARGS...]: vesseld on DATA listening on
# 127.0.0.1:PORT and SOCK; fails the test when vesseld does not create its
# socket within 10 s.
clitest_start() {
	PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$VESSELD" --data-dir "$DATA" "$@" --listen "127.0.0.1:$PORT" --socket "$SOCK" >"$TMP/vesseld.log" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do
		[ -S "$SOCK" ] && break
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -S "$SOCK" ]; then
		echo "FAIL vesseld did not create its socket $SOCK within 10 s; its log:"
		sed 's/^/    | /' "$TMP/vesseld.log"
		exit 1
	fi
}

PASSED=0
FAILED=0
ok() { echo "ok   $*"; PASSED=$((PASSED + 1)); }
bad() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }

# run ARGS...: run the CLI over the Unix socket; sets RC, OUT, ERR.
run() {
	"$VESSEL" --socket "$SOCK" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
	RC=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
}
show() { echo "    rc=$RC"; sed 's/^/    out| /' "$TMP/out"; sed 's/^/    err| /' "$TMP/err"; }
expect_ok() { # NAME: the last run exited 0
	if [ "$RC" -eq 0 ]; then ok "$1"; else bad "$1"; show; fi
}
# expect_fail NAME CODE REGEX: exit CODE and exactly one stderr line
# "vessel: ..." matching REGEX.
expect_fail() {
	local lines
	lines=$(wc -l <"$TMP/err")
	if [ "$RC" -eq "$2" ] && [ "$lines" -eq 1 ] && grep -Eq "^vessel: .*$3" "$TMP/err"; then
		ok "$1 ($(cat "$TMP/err"))"
	else
		bad "$1: wanted exit $2 and one line 'vessel: ...$3...'"; show
	fi
}
# pycheck NAME EXPR: evaluate a python expression on the JSON in $OUT (as j).
pycheck() {
	if printf '%s' "$OUT" | python3 -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if ($2) else 1)" 2>"$TMP/pyerr"; then
		ok "$1"
	else
		bad "$1: python check failed: $2"; show; sed 's/^/    py| /' "$TMP/pyerr"
	fi
}

# clitest_finish: the summary line; exit 1 with the end of vesseld's log
# when a check failed, else 0.
clitest_finish() {
	echo "$PASSED passed, $FAILED failed"
	if [ "$FAILED" -ne 0 ]; then
		echo "vesseld log (last 30 lines):"
		tail -n 30 "$TMP/vesseld.log" | sed 's/^/    | /'
		exit 1
	fi
	exit 0
}
