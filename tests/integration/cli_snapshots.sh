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

. "$(dirname "$0")/lib/clitest.sh"
clitest_tmp cli-snap
clitest_start --backup-store "$TMP/store"

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

clitest_finish
