#!/bin/bash
# cli_snapshots: `vessel snapshot` and `vessel backup` against a real
# vesseld with a stopped VM (qemu-img does the work; no guest is booted):
# snapshot create/list (tree)/show/delete with and without --merge, revert
# of a stopped VM, schedule add (and its bad-input errors)/list/delete,
# backup create (a full read of a stopped VM)/list/show/verify/restore to a
# new VM and over a stopped one, verify naming a corrupted chunk (exit 1),
# restore refusing it, merging the first snapshot of a linked clone (the
# image stays the backing file, no data lost), and vm delete asking about
# snapshots and backups.
# Exit: 0 pass, 1 fail, 77 skip (after a "SKIP reason" line).
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${VESSEL_BUILD:-$ROOT/build}
VESSEL=${VESSEL_CLI_BIN:-$BUILD/src/cli/vessel}
VESSELD=${VESSELD_BIN:-$BUILD/src/daemon/vesseld}

skip() { echo "SKIP $*"; exit 77; }
[ -x "$VESSEL" ] || skip "vessel CLI not built at $VESSEL (build it, or set VESSEL_BUILD)"
[ -x "$VESSELD" ] || skip "vesseld not built at $VESSELD (build it, or set VESSEL_BUILD)"
command -v qemu-img >/dev/null || skip "qemu-img is not installed (scripts/install-deps)"
command -v python3 >/dev/null || skip "python3 is not installed (scripts/install-deps)"

TMP=$(mktemp -d /tmp/vessel-cli-snap.XXXXXX)
DATA=$TMP/data
SOCK=$TMP/vesseld.sock
DPID=
cleanup() {
	if [ -n "$DPID" ]; then
		kill "$DPID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$DATA/import"
"$VESSELD" --data-dir "$DATA" --backup-store "$TMP/store" --listen "127.0.0.1:$PORT" --socket "$SOCK" >"$TMP/vesseld.log" 2>&1 &
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

# --- a stopped VM with a blank disk holding some data
run --json vm create s-1 --memory 128M --blank-disk 1G
expect_ok "vm create"
DISK=$DATA/vms/s-1/disk0.qcow2
qemu-io -f qcow2 -c "write -P 0x5a 0 1M" "$DISK" >/dev/null 2>&1 || qemu-img convert -O qcow2 "$DISK" "$DISK" 2>/dev/null

# --- snapshots
run snapshot create s-1 base --description "before changes"
expect_ok "snapshot create"
run snapshot create s-1 base
expect_fail "snapshot name used" 1 "already has a snapshot 'base'"
run snapshot create s-1 mem --full
expect_fail "full snapshot of a stopped VM" 1 "needs a running VM"
run snapshot create s-1 next
expect_ok "second snapshot"
run snapshot list s-1
grep -q '^base  disk' "$TMP/out" && grep -q '└ next  disk.*(current)' "$TMP/out" \
	&& ok "snapshot list shows the tree" || { bad "snapshot list tree"; show; }
run --json snapshot show s-1 base
pycheck "snapshot show" 'j["snapshot"]["description"] == "before changes" and j["snapshot"]["used_bytes"] > 0'
run snapshot delete s-1 base
expect_fail "delete a snapshot another depends on" 1 "child snapshots 'next'.*merge=true"
run snapshot revert s-1 base
expect_ok "revert a stopped VM"
run --json snapshot list s-1
pycheck "revert moved current" 'j["current"] == "base"'
run snapshot delete s-1 base --merge
expect_ok "delete with --merge"
run --json snapshot list s-1
pycheck "next has no parent now" '[s["name"] for s in j["snapshots"]] == ["next"] and j["snapshots"][0]["parent"] is None'
for f in "$DATA"/vms/s-1/*.qcow2; do
	qemu-img check -q "$f" >/dev/null 2>&1 && ok "qemu-img check $(basename "$f")" || { bad "qemu-img check $f"; qemu-img check "$f"; }
done

# --- schedules
run snapshot schedule-add s-1 --every 0m
expect_fail "zero interval" 1 "more than zero"
run snapshot schedule-add s-1 --every 1h --start-at 2020-01-01T00:00:00Z
expect_fail "start in the past" 1 "in the past"
run snapshot schedule-add s-1 --daily-at 02:30 --keep-count 5
expect_ok "schedule add"
SID=$(printf '%s' "$OUT" | sed -n 's/^schedule added: \([^ ]*\) .*/\1/p')
run snapshot schedules s-1
grep -q "daily at 02:30 UTC" "$TMP/out" && ok "schedules list" || { bad "schedules list"; show; }
run snapshot schedule-delete s-1 "$SID"
expect_ok "schedule delete"

# --- backups of the stopped VM
"$VESSEL" --socket "$SOCK" --json snapshot list s-1 >"$TMP/cur.json" 2>/dev/null
run backup create s-1
expect_ok "backup create"
BID=$(printf '%s' "$OUT" | awk '{print $1}')
run --json backup list s-1
pycheck "backup list" 'len(j["backups"]) == 1 and j["backups"][0]["kind"] == "full"'
run backup show "$BID"
grep -q "disk 0: 1073741824 bytes, 256 chunks" "$TMP/out" && ok "backup show" || { bad "backup show"; show; }
run backup verify "$BID"
expect_ok "backup verify"
run backup restore "$BID" s-2
expect_ok "backup restore to a new VM"
# the current disk: the image in the VM's directory that no snapshot froze
CUR=$(python3 -c "
import json, os
snap = {f for s in json.load(open('$TMP/cur.json'))['snapshots'] for f in s['files']}
d = '$DATA/vms/s-1'
print([os.path.join(d, f) for f in os.listdir(d) if f.endswith('.qcow2') and os.path.join(d, f) not in snap][0])")
R=$(qemu-img compare -q "$CUR" "$DATA/vms/s-2/disk0.qcow2" 2>&1; echo $?)
[ "$R" = 0 ] && ok "restored disk equals the source" || { bad "qemu-img compare: $R"; }
run backup restore "$BID" s-2
expect_fail "restore onto an existing VM without --overwrite" 1 "exists.*overwrite"
run backup restore "$BID" s-2 --overwrite
expect_ok "restore over a stopped VM"
# corrupt the chunk that holds the 0x5a data (the first, non-zero one)
CH=$(python3 -c "import json,sys; m=json.load(open('$TMP/store/backups/$BID/manifest.json')); print(m['disks'][0]['chunks'][0])")
printf '\001' | dd of="$TMP/store/chunks/${CH:0:2}/$CH" bs=1 seek=77 conv=notrunc 2>/dev/null
run backup verify "$BID"
expect_fail "verify names the bad chunk" 1 "chunk 0 \\($CH\\)"
run backup restore "$BID" s-3
[ "$RC" -eq 1 ] && tail -n 1 "$TMP/err" | grep -q "^vessel: .*damaged: disk 0 chunk 0 ($CH).*nothing was restored" \
	&& ok "restore refuses a bad chunk ($(tail -n 1 "$TMP/err"))" || { bad "restore of a damaged backup"; show; }
run --json vm list
pycheck "no half-made VM" 'sorted(v["name"] for v in j["vms"]) == ["s-1", "s-2"]'

# --- a linked clone: merging the first snapshot keeps the image as backing
qemu-img create -q -f raw "$DATA/import/base.raw" 32M
qemu-io -f raw -c "write -P 0x11 0 2M" "$DATA/import/base.raw" >/dev/null
run image import base "$DATA/import/base.raw"
expect_ok "image import"
IMG=$(ls "$DATA"/images/base*.qcow2 2>/dev/null | head -1)
run vm create l-1 --memory 128M --image base
expect_ok "linked clone"
run snapshot create l-1 a
expect_ok "snapshot of a linked clone"
"$VESSEL" --socket "$SOCK" --json snapshot list l-1 >"$TMP/l.json" 2>/dev/null
CURL=$(python3 -c "
import json, os
snap = {f for s in json.load(open('$TMP/l.json'))['snapshots'] for f in s['files']}
d = '$DATA/vms/l-1'
print([os.path.join(d, f) for f in os.listdir(d) if f.endswith('.qcow2') and os.path.join(d, f) not in snap][0])")
qemu-io -f qcow2 -c "write -P 0x22 4M 1M" "$CURL" >/dev/null
run snapshot create l-1 b
expect_ok "second snapshot of the linked clone"
run snapshot delete l-1 a --merge
expect_ok "merge the first snapshot of a linked clone"
"$VESSEL" --socket "$SOCK" --json snapshot show l-1 b >"$TMP/b.json" 2>/dev/null
BFILE=$(python3 -c "import json; print(json.load(open('$TMP/b.json'))['snapshot']['files'][0])")
BACKING=$(qemu-img info --output=json "$BFILE" | python3 -c "import json,sys; print(json.load(sys.stdin).get('backing-filename',''))")
[ "$BACKING" = "$IMG" ] && ok "after the merge b stands on the image ($BACKING)" || { bad "backing of $BFILE is '$BACKING', want $IMG"; }
QIO=$(qemu-io -f qcow2 -c "read -P 0x22 4M 1M" -c "read -P 0x11 0 2M" "$BFILE" 2>&1)
printf '%s' "$QIO" | grep -q "read 1048576/" && printf '%s' "$QIO" | grep -q "read 2097152/" \
	&& ! printf '%s' "$QIO" | grep -qi "fail" && ok "merged data and image data both read back" || { bad "data lost in the merge"; qemu-io -f qcow2 -c "read -P 0x22 4M 1M" "$BFILE"; }
qemu-img check -q "$BFILE" && ok "qemu-img check after merge" || bad "qemu-img check $BFILE"
run vm delete l-1 --snapshots delete
expect_ok "delete the linked clone"
run image delete base
expect_ok "image free again"

# --- vm delete asks
run vm delete s-1
expect_fail "delete asks about snapshots" 1 "snapshots=delete"
run vm delete s-1 --snapshots delete
expect_fail "delete asks about backups" 1 "backups=keep"
run vm delete s-1 --snapshots delete --backups delete
expect_ok "vm delete with answers"
run --json backup list
pycheck "backups deleted with the VM" 'j["backups"] == []'
[ -z "$(find "$TMP/store/chunks" -type f)" ] && ok "unused chunks collected" || { bad "chunks left"; find "$TMP/store/chunks" -type f; }
run vm delete s-2
expect_ok "delete restored VM"

echo "$PASSED passed, $FAILED failed"
if [ "$FAILED" -ne 0 ]; then
	echo "vesseld log (last 30 lines):"
	tail -n 30 "$TMP/vesseld.log" | sed 's/^/    | /'
	exit 1
fi
exit 0
