# l1-lib.sh, /testhost/lib.sh in the nested test host (L1): helpers for the
# test script (tests/testhost/l1-tests.sh) and the benchmark
# (bench/vmm/l1-bench.sh). Sourced by busybox sh.
# shellcheck shell=sh disable=SC2034

L2_KERNEL=/testhost/l2/vmlinuz
L2_INITRD=/testhost/l2/initramfs.img
VMM=/testhost/bin/vessel-vmm
QEMU=/usr/bin/qemu-system-x86_64
IP=/testhost/bin/ip

# result NAME pass|fail|skip REASON...: one line the host-side runner parses.
result() {
	n=$1 s=$2
	shift 2
	echo "RESULT $n $s $*"
}

# now_ms: milliseconds since L1 booted (/proc/uptime has 10 ms resolution).
now_ms() {
	awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

# kvm_load: load irqbypass, kvm, kvm-amd in dependency order. Prints why it
# failed, if it did. KVM_AMD_OPTS may carry module parameters.
kvm_load() {
	[ -e /dev/kvm ] && return 0
	for m in $(cat /testhost/modules/order); do
		case $m in
		kvm-amd.ko | kvm_amd.ko) opts=${KVM_AMD_OPTS:-} ;;
		*) opts= ;;
		esac
		# shellcheck disable=SC2086
		insmod "/testhost/modules/$m" $opts 2>/tmp/insmod.err || {
			echo "insmod $m $opts: $(cat /tmp/insmod.err)"
			return 1
		}
	done
	i=0
	while [ ! -e /dev/kvm ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -e /dev/kvm ] || {
		echo "kvm-amd loaded but no /dev/kvm appeared"
		return 1
	}
}

# wait_for FILE PATTERN TIMEOUT_S PID: wait until FILE contains PATTERN
# (fixed string) or process PID exits or TIMEOUT_S passes. Returns 0 when
# the pattern was seen.
wait_for() {
	f=$1 pat=$2 t=$3 pid=$4
	end=$(($(now_ms) + t * 1000))
	while [ "$(now_ms)" -lt $end ]; do
		grep -qF "$pat" "$f" 2>/dev/null && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			grep -qF "$pat" "$f" 2>/dev/null
			return
		fi
		sleep 0.02
	done
	return 1
}

# wait_exit PID TIMEOUT_S: wait for a background child to exit; its status
# is left in $wait_status. Kills it (and returns 1) on timeout.
wait_exit() {
	pid=$1 t=$2
	end=$(($(now_ms) + t * 1000))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$(now_ms)" -ge $end ]; then
			kill -9 "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			wait_status=timeout
			return 1
		fi
		sleep 0.05
	done
	wait "$pid"
	wait_status=$?
	return 0
}

# qemu_l2 LOG ARGS...: start the reference monitor, QEMU microvm on
# /dev/kvm, with the L2 kernel and initramfs in the background; serial
# output goes to LOG. Sets $qemu_pid.
qemu_l2() {
	log=$1
	shift
	: >"$log"
	$QEMU -M microvm -accel kvm -cpu host -m 256 -smp 1 -nodefaults -no-user-config \
		-display none -serial "file:$log" -no-reboot \
		-kernel "$L2_KERNEL" -initrd "$L2_INITRD" "$@" </dev/null >"$log.stderr" 2>&1 &
	qemu_pid=$!
}

# describe STATUS: an exit status for a failure message; a monitor killed by
# a signal shows up as 128+N, and SIGSYS (31) means its seccomp filter
# killed it for a system call outside the allow-list.
describe() {
	case $1 in
	159) echo "$1 (killed by SIGSYS: a system call outside the seccomp allow-list)" ;;
	129 | 13[0-9] | 14[0-9] | 15[0-9] | 16[0-4]) echo "$1 (killed by signal $(($1 - 128)))" ;;
	*) echo "$1" ;;
	esac
}
