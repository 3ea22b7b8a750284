#!/bin/bash
# vmm_cli.sh: vessel-vmm's command line without booting anything: --help
# documents the exit codes, every bad option ends with exit status 2 and one
# line on stderr that names the option, and a missing /dev/kvm (this build
# machine) is reported as a sentence, not a crash. The boots themselves run
# in the nested test host (tests/testhost/l1-tests.sh).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${VESSEL_BUILD_DIR:-${VESSEL_BUILD:-$top/build}}
vmm=$build/src/vmm/vessel-vmm
if [ ! -x "$vmm" ]; then
	echo "SKIP vessel-vmm is not built ($vmm)"
	exit 77
fi
fails=0
fail() {
	echo "FAIL $*"
	fails=$((fails + 1))
}

out=$("$vmm" --help) || fail "--help exited $?"
grep -q "Exit status: 0" <<<"$out" || fail "--help does not document the exit status"

# bad input: exit 2, exactly one stderr line mentioning the culprit
check_bad() {
	local want=$1
	shift
	local err rc
	err=$("$vmm" "$@" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = 2 ] || fail "'$*' exited $rc, expected 2"
	[ "$(wc -l <<<"$err")" = 1 ] || fail "'$*' printed more than one line: $err"
	grep -q -- "$want" <<<"$err" || fail "'$*' error does not mention '$want': $err"
}
check_bad "--kernel is required"
check_bad "--cpus" --kernel k --cpus 0
check_bad "--cpus" --kernel k --cpus 1000
check_bad "--memory" --kernel k --memory lots
check_bad "--disk" --kernel k --disk ,ro
check_bad "--net" --kernel k --net tap=x,mac=nope
check_bad "--console" --kernel k --console tcp:1
check_bad "--frobnicate" --kernel k --frobnicate
check_bad "unexpected argument" --kernel k extra

if [ ! -e /dev/kvm ]; then
	err=$("$vmm" --kernel /nonexistent 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = 2 ] || fail "without /dev/kvm exited $rc, expected 2"
	grep -q "/dev/kvm" <<<"$err" || fail "without /dev/kvm the error does not say so: $err"
else
	# with KVM: a missing kernel file is a one-line error and exit 2
	err=$("$vmm" --kernel /nonexistent/bzImage --console none 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = 2 ] || fail "missing kernel exited $rc, expected 2"
	grep -q "nonexistent" <<<"$err" || fail "missing kernel error does not name the file: $err"
fi

if [ "$fails" = 0 ]; then
	echo "vmm_cli: all checks passed"
	exit 0
fi
exit 1
