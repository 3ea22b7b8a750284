#!/bin/bash
# cli_basic: the `vessel` CLI against a real vesseld. Starts its own vesseld
# (temporary data dir, random TCP port, its own Unix socket), then drives
# host info, image import (a small raw file made with qemu-img), vm
# create/list/show/update/log/delete, a full-copy create (a task), --json
# output parsed with python3, TCP with and without the bearer token, and the
# error cases (unknown VM, name conflict, image in use, unreachable daemon,
# bad command line): exit status and the one-line "vessel: ..." message.
# No VM is started, so no KVM is needed and it runs in seconds.
# Exit: 0 pass, 1 fail, 77 skip (after a "SKIP reason" line).
set -u

. "$(dirname "$0")/lib/clitest.sh"
clitest_tmp cli-basic
clitest_start

# --- host
run host info
expect_ok "host info"
grep -q '^accel: *\(kvm\|tcg\)$' "$TMP/out" && grep -q '^cpus: *[1-9]' "$TMP/out" \
	&& ok "host info shows accel and cpus" || { bad "host info output"; show; }
run --json host info
pycheck "host info --json" 'j["cpus"] >= 1 and j["accel"] in ("kvm", "tcg") and "version" in j'

# --- TCP with and without the token
"$VESSEL" --url "http://127.0.0.1:$PORT" host info >"$TMP/out" 2>"$TMP/err" </dev/null; RC=$?
expect_fail "TCP without a token is refused" 1 "."
if [ -s "$DATA/admin.token" ]; then
	"$VESSEL" --url "http://127.0.0.1:$PORT" --token-file "$DATA/admin.token" --json host info \
		>"$TMP/out" 2>"$TMP/err" </dev/null; RC=$?; OUT=$(cat "$TMP/out")
	pycheck "TCP with --token-file" 'j["cpus"] >= 1'
	VESSEL_URL="http://127.0.0.1:$PORT" VESSEL_TOKEN=$(head -n1 "$DATA/admin.token") \
		"$VESSEL" vm list >"$TMP/out" 2>"$TMP/err" </dev/null; RC=$?
	expect_ok "TCP with VESSEL_URL and VESSEL_TOKEN"
else
	bad "vesseld wrote no $DATA/admin.token"
fi

# --- image import
qemu-img create -q -f raw "$DATA/import/tiny.raw" 16M || { bad "qemu-img create"; exit 1; }
printf 'vessel' | dd of="$DATA/import/tiny.raw" conv=notrunc status=none
run image import tiny "$DATA/import/tiny.raw"
expect_ok "image import"
grep -Eq '^task t-[^:]+: 100%$' "$TMP/err" && ok "import shows 'task t-...: N%' lines when not a tty" \
	|| { bad "import progress lines"; show; }
run --json image show tiny
pycheck "image show --json" 'j["image"]["state"] == "ready" and j["image"]["virtual_size_bytes"] == 16*1024*1024 and j["image"]["format"] == "qcow2"'
run image list
expect_ok "image list"
grep -Eq '^tiny +ready +qcow2 +raw +.* 16\.0 MiB' "$TMP/out" && ok "image list row" || { bad "image list row"; show; }
run image import tiny "$DATA/import/tiny.raw"
expect_fail "import under a used name" 1 "."
cp "$DATA/import/tiny.raw" "$TMP/outside.raw"
run image import outside "$TMP/outside.raw"
expect_fail "import from outside the allowed directory" 1 "."
run image import missing "$DATA/import/does-not-exist.raw"
expect_fail "import of a missing file" 1 "."
run image import notqcow "$DATA/import/tiny.raw" --format qcow2
if [ "$RC" -eq 1 ] && [ "$(grep -c '^vessel: ' "$TMP/err")" -eq 1 ] \
	&& tail -n 1 "$TMP/err" | grep -Eq '^vessel: task t-[^ ]+ failed: .+'; then
	ok "a failed import task: exit 1 and the task's error ($(tail -n 1 "$TMP/err"))"
else
	bad "a failed import task"; show
fi
run --json image list
pycheck "a failed import leaves no image" '[i["name"] for i in j["images"]] == ["tiny"]'

# --- VMs
run vm list
expect_ok "vm list (empty)"
run vm create web-1 --image tiny --memory 256M --vcpus 2 --blank-disk 1G --description "cli test"
expect_ok "vm create"
grep -q 'web-1' "$TMP/out" && ok "vm create says what it created" || { bad "vm create output"; show; }
run vm list
grep -Eq '^web-1 +stopped +2 +256 MiB +.* +tiny ' "$TMP/out" && ok "vm list row" || { bad "vm list row"; show; }
run --json vm list
pycheck "vm list --json" 'len(j["vms"]) == 1 and j["vms"][0]["name"] == "web-1" and j["vms"][0]["memory_mib"] == 256 and j["vms"][0]["vcpus"] == 2 and len(j["vms"][0]["disks"]) == 2 and j["vms"][0]["disks"][0]["image"] == "tiny"'
run vm show web-1
expect_ok "vm show"
grep -q '^memory: *256 MiB$' "$TMP/out" && grep -q '^description: *cli test$' "$TMP/out" \
	&& grep -q '^disk 1: *1.0 GiB .*blank' "$TMP/out" && ok "vm show key: value lines" || { bad "vm show lines"; show; }
run vm update web-1 --memory 512M --autostart --restart on-crash
expect_ok "vm update"
run vm show web-1 --json
pycheck "vm update took effect" 'j["vm"]["memory_mib"] == 512 and j["vm"]["autostart"] is True and j["vm"]["restart_policy"] == "on-crash"'
run vm log web-1
expect_ok "vm log of a VM that never ran"

run vm create db --image tiny --full-copy --memory 128M
expect_ok "vm create --full-copy waits for its task"
run --json vm show db
pycheck "full copy VM is stopped with a full clone" 'j["vm"]["state"] == "stopped" and j["vm"]["disks"][0]["clone"] == "full" and j["vm"]["task"] is None'
run --json task list
pycheck "task list --json has the import and the copy" 'sorted(t["kind"] for t in j["tasks"] if t["state"] == "succeeded") == ["disk_copy", "image_import"]'
run task list
grep -Eq '^t-[^ ]+ +image_import +tiny +succeeded +100%' "$TMP/out" && ok "task list row" || { bad "task list row"; show; }
TID=$(awk '$2 == "image_import" && $4 == "succeeded" {print $1; exit}' "$TMP/out")
run task show "$TID"
grep -q '^state: *succeeded$' "$TMP/out" && ok "task show" || { bad "task show"; show; }

# --- error cases
run vm show nope
expect_fail "vm show of an unknown VM" 1 "nope"
run vm delete nope
expect_fail "vm delete of an unknown VM" 1 "nope"
run vm start nope
expect_fail "vm start of an unknown VM" 1 "nope"
run vm create web-1
expect_fail "vm create with a used name" 1 "web-1"
run vm create Bad_Name
expect_fail "vm create with a bad name (daemon's message)" 1 "."
run vm create x --image no-such-image
expect_fail "vm create from an unknown image" 1 "no-such-image"
run image delete tiny
expect_fail "image delete while a VM uses it" 1 "."
run vm create y --memory 1.5G
expect_fail "--memory that is not whole MiB" 1 "--memory '1.5G'"
run vm frobnicate web-1
expect_fail "unknown command" 2 "unknown command"
run vm show
expect_fail "missing argument" 2 "vm show needs more arguments; usage: vessel vm show NAME"
run vm list --bogus
expect_fail "unknown option" 2 "--bogus"
"$VESSEL" --socket "$TMP/no-such.sock" vm list >"$TMP/out" 2>"$TMP/err" </dev/null; RC=$?
expect_fail "unreachable daemon" 1 "cannot reach vesseld at unix socket $TMP/no-such.sock: .*; is it running\?"
run --json vm show nope
[ "$RC" -eq 1 ] && [ ! -s "$TMP/out" ] && ok "--json error prints nothing on stdout" || { bad "--json error"; show; }

# --- clean up through the CLI
run vm delete web-1
expect_ok "vm delete"
run vm delete db --force
expect_ok "vm delete --force"
run --json vm list
pycheck "no VMs left" 'j["vms"] == []'
run image delete tiny
expect_ok "image delete"
run --json image list
pycheck "no images left" 'j["images"] == []'

clitest_finish
