#!/bin/sh
# /testhost/tests.sh: the tests run inside the nested test host (L1). First
# the environment (kvm-amd gives /dev/kvm; QEMU microvm boots L2 on it), then
# vessel-vmm: boot, vCPU count, virtio-blk both ways and read-only, virtio-net
# ping over a tap, virtio-rng, pause/resume/stats/poweroff over the control
# socket, the serial console on a Unix socket with the monitor running as
# nobody, the exit codes of guest reboot and poweroff, and a guest that feeds
# its virtio device garbage. Each prints one RESULT line (l1-lib.sh); the
# vessel-vmm tests are skipped with the reason when it was not built into L1.
# shellcheck source=tests/testhost/l1-lib.sh
. /testhost/lib.sh

VMM_MEM=${VMM_MEM:-256M}
L2_BASE="console=ttyS0 quiet"

t0=$(now_ms)
if ! why=$(kvm_load); then
	result kvm_available fail "$why"
	dmesg | grep -iE 'kvm|svm' | tail -n 5
	exit 1
fi
result kvm_available pass "/dev/kvm after $(($(now_ms) - t0)) ms"

t0=$(now_ms)
qemu_l2 /tmp/qemu.log -append "$L2_BASE vessel.run=\"echo L2-NPROC=\$(nproc)\" vessel.poweroff"
if wait_for /tmp/qemu.log VESSEL-GUEST-READY 240 "$qemu_pid"; then
	ready=$(($(now_ms) - t0))
	wait_exit "$qemu_pid" 60
	result qemu_microvm_boot pass "QEMU microvm on /dev/kvm reached init in $ready ms"
else
	kill -9 "$qemu_pid" 2>/dev/null
	result qemu_microvm_boot fail "QEMU microvm did not reach VESSEL-GUEST-READY: $(tail -c 300 /tmp/qemu.log.stderr /tmp/qemu.log | tr '\n' ' ')"
fi

if [ ! -x "$VMM" ]; then
	for t in vmm_boot vmm_poweroff_exit vmm_nproc vmm_blk_guest_write vmm_blk_l1_write vmm_blk_readonly \
		vmm_net_ping vmm_rng vmm_control_pause_resume vmm_control_poweroff vmm_console_socket_user vmm_reboot_exit vmm_evil_queue; do
		result $t skip "vessel-vmm is not built (no build-dir/src/vmm/vessel-vmm when the test host was built)"
	done
	exit 0
fi

# vmm_run NAME TIMEOUT_S CMDLINE_RUN ARGS...: boot L2 in vessel-vmm with
# vessel.run=CMDLINE_RUN, wait for it to exit; serial output in
# /tmp/NAME.log, exit status in $vmm_status ("timeout" if killed).
vmm_start() {
	name=$1 run=$2
	shift 2
	rm -f "/tmp/$name.sock"
	"$VMM" --kernel "$L2_KERNEL" --initrd "$L2_INITRD" \
		--cmdline "$L2_BASE vessel.run=\"$run\" vessel.poweroff" \
		--control "/tmp/$name.sock" "$@" </dev/null >"/tmp/$name.log" 2>"/tmp/$name.err" &
	vmm_pid=$!
}
vmm_run() {
	name=$1 t=$2
	shift 2
	vmm_start "$name" "$@"
	wait_exit "$vmm_pid" "$t"
	vmm_status=$wait_status
}
# log_tail NAME: the end of a run's output, on one line, for a failure reason.
log_tail() {
	tail -c 400 "/tmp/$1.err" "/tmp/$1.log" 2>/dev/null | tr '\n\r' '  '
}
# control SOCKET JSON: one request on the control socket, the reply on stdout.
control() {
	echo "$2" | socat -t 5 - "UNIX-CONNECT:$1" 2>&1 | head -n 1
}
# reply_has REPLY KEY VALUE: the JSON reply has "KEY":VALUE (spacing aside).
reply_has() {
	echo "$1" | grep -qE "\"$2\": ?$3"
}

# Boot and guest poweroff.
t0=$(now_ms)
vmm_run boot 240 "echo L2-HELLO" --cpus 1 --memory "$VMM_MEM"
ms=$(($(now_ms) - t0))
if grep -q VESSEL-GUEST-READY /tmp/boot.log && grep -q L2-HELLO /tmp/boot.log; then
	result vmm_boot pass "L2 reached init and ran a command; whole run $ms ms"
else
	result vmm_boot fail "no VESSEL-GUEST-READY/L2-HELLO (exit $(describe "$vmm_status")): $(log_tail boot)"
fi
if [ "$vmm_status" = 0 ]; then
	result vmm_poweroff_exit pass "exit code 0 after guest poweroff"
else
	result vmm_poweroff_exit fail "exit code $(describe "$vmm_status") after guest poweroff, expected 0"
fi

# vCPUs.
vmm_run nproc 240 "echo L2-NPROC=\$(nproc)" --cpus 2 --memory "$VMM_MEM"
n=$(sed -n 's/.*L2-NPROC=\([0-9]*\).*/\1/p' /tmp/nproc.log | head -n 1)
if [ "$n" = 2 ]; then
	result vmm_nproc pass "guest sees 2 CPUs with --cpus 2"
else
	result vmm_nproc fail "guest nproc '${n:-none}' with --cpus 2 (exit $(describe "$vmm_status")): $(log_tail nproc)"
fi

# virtio-blk: L1 writes a block the guest must read, the guest writes a
# block L1 must find after the monitor exits. Offsets: L1's data at 1 MiB,
# the guest's at 2 MiB.
disk=/tmp/disk.raw
dd if=/dev/zero of=$disk bs=1M count=16 2>/dev/null
l1_data="L1-DATA-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
g_data="GUEST-DATA-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$l1_data" | dd of=$disk bs=512 seek=2048 conv=notrunc 2>/dev/null
vmm_run blk 240 "echo L2-READ=\$(dd if=/dev/vda bs=512 skip=2048 count=1 2>/dev/null | head -c ${#l1_data}); printf $g_data | dd of=/dev/vda bs=512 seek=4096 conv=fsync 2>/dev/null; sync" \
	--cpus 1 --memory "$VMM_MEM" --disk "$disk"
if grep -q "L2-READ=$l1_data" /tmp/blk.log; then
	result vmm_blk_l1_write pass "guest read the block L1 wrote"
else
	result vmm_blk_l1_write fail "guest did not read '$l1_data' from /dev/vda (exit $(describe "$vmm_status")): $(log_tail blk)"
fi
got=$(dd if=$disk bs=512 skip=4096 count=1 2>/dev/null | head -c ${#g_data})
if [ "$got" = "$g_data" ]; then
	result vmm_blk_guest_write pass "L1 found the block the guest wrote"
else
	result vmm_blk_guest_write fail "L1 read '$got' at 2 MiB, the guest wrote '$g_data' (exit $(describe "$vmm_status"))"
fi

# Read-only disk: the guest's write must not reach the file.
before=$(md5sum $disk | cut -d' ' -f1)
vmm_run blkro 240 "printf OVERWRITE | dd of=/dev/vda bs=512 seek=4096 conv=fsync 2>/dev/null; echo L2-RO-WRITE=\$?; echo L2-RO-FLAG=\$(cat /sys/block/vda/ro)" \
	--cpus 1 --memory "$VMM_MEM" --disk "$disk,ro"
after=$(md5sum $disk | cut -d' ' -f1)
if [ "$before" = "$after" ] && grep -q 'L2-RO-' /tmp/blkro.log; then
	result vmm_blk_readonly pass "guest write to a ,ro disk left the file unchanged ($(grep -o 'L2-RO-FLAG=[0-9]' /tmp/blkro.log))"
else
	result vmm_blk_readonly fail "file changed or guest did not run (exit $(describe "$vmm_status")): $(log_tail blkro)"
fi

# virtio-net: L1 owns tap vtap0 with 10.77.0.1/24; the guest is 10.77.0.2.
# Both directions: the guest pings L1, then waits while L1 pings it.
$IP tuntap add dev vtap0 mode tap 2>/tmp/tap.err &&
	$IP addr add 10.77.0.1/24 dev vtap0 && $IP link set vtap0 up
if [ ! -d /sys/class/net/vtap0 ]; then
	result vmm_net_ping fail "L1 could not create tap vtap0: $(cat /tmp/tap.err)"
else
	vmm_start net "ip link set eth0 up; ip addr add 10.77.0.2/24 dev eth0; ping -c 3 -W 3 10.77.0.1 >/dev/null; echo L2-PING=\$?; echo L2-NET-WAIT; sleep 15" \
		--cpus 1 --memory "$VMM_MEM" --net tap=vtap0,mac=52:54:00:77:00:02
	l1_ping=fail
	if wait_for /tmp/net.log L2-NET-WAIT 240 "$vmm_pid"; then
		ping -c 3 -W 3 10.77.0.2 >/tmp/l1ping.log 2>&1 && l1_ping=ok
	fi
	wait_exit "$vmm_pid" 60
	if grep -q 'L2-PING=0' /tmp/net.log && [ $l1_ping = ok ]; then
		result vmm_net_ping pass "guest -> L1 and L1 -> guest ping over tap vtap0"
	else
		result vmm_net_ping fail "guest ping: $(grep -o 'L2-PING=[0-9]*' /tmp/net.log), L1 ping: $l1_ping (exit $(describe "$vmm_status")): $(log_tail net)"
	fi
	$IP link del vtap0 2>/dev/null
fi

# virtio-rng.
vmm_run rng 240 "echo L2-RNG=\$(head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \n'); echo L2-RNGDEV=\$(cat /sys/class/misc/hw_random/rng_current)" \
	--cpus 1 --memory "$VMM_MEM" --rng
hex=$(sed -n 's/.*L2-RNG=\([0-9a-f]*\).*/\1/p' /tmp/rng.log | head -n 1)
if [ ${#hex} -eq 64 ] && [ "$hex" != "0000000000000000000000000000000000000000000000000000000000000000" ]; then
	result vmm_rng pass "32 bytes from /dev/hwrng ($(grep -o 'L2-RNGDEV=[^ ]*' /tmp/rng.log | tr -d '\r'))"
else
	result vmm_rng fail "no random bytes from /dev/hwrng (got '${hex}', exit $(describe "$vmm_status")): $(log_tail rng)"
fi

# Control socket: pause stops the guest's ticks, resume restarts them,
# stats answers, poweroff ends the monitor with exit code 0.
vmm_start ctl "i=0; while true; do echo L2-TICK \$i; i=\$((i+1)); sleep 0.2; done" --cpus 1 --memory "$VMM_MEM"
sock=/tmp/ctl.sock
why=
if ! wait_for /tmp/ctl.log "L2-TICK 3" 240 "$vmm_pid"; then
	why="guest never ticked: $(log_tail ctl)"
else
	r=$(control $sock '{"cmd":"pause"}')
	reply_has "$r" ok true || why="pause answered '$r'"
	st=$(control $sock '{"cmd":"status"}')
	[ -z "$why" ] && ! reply_has "$st" state '"paused"' && why="status after pause answered '$st'"
	sleep 1
	n1=$(grep -c L2-TICK /tmp/ctl.log)
	sleep 2
	n2=$(grep -c L2-TICK /tmp/ctl.log)
	[ -z "$why" ] && [ "$n1" != "$n2" ] && why="guest kept ticking while paused ($n1 -> $n2)"
	r=$(control $sock '{"cmd":"resume"}')
	[ -z "$why" ] && ! reply_has "$r" ok true && why="resume answered '$r'"
	sleep 3
	n3=$(grep -c L2-TICK /tmp/ctl.log)
	[ -z "$why" ] && [ "$n3" -le "$n2" ] && why="guest did not tick after resume ($n2 -> $n3)"
	r=$(control $sock '{"cmd":"stats"}')
	[ -z "$why" ] && ! reply_has "$r" ok true && why="stats answered '$r'"
fi
if [ -z "$why" ]; then
	result vmm_control_pause_resume pass "paused at $n1 ticks, resumed to $n3; status and stats answered"
else
	kill -0 "$vmm_pid" 2>/dev/null || why="$why; the monitor had exited"
	result vmm_control_pause_resume fail "$why"
fi
r=$(control $sock '{"cmd":"poweroff"}')
wait_exit "$vmm_pid" 60
if [ "$wait_status" = 0 ]; then
	result vmm_control_poweroff pass "poweroff over the control socket, exit code 0"
else
	result vmm_control_poweroff fail "poweroff answered '$r', exit code $(describe "$wait_status"), expected 0"
fi

# Console on a Unix socket, monitor dropped to an unprivileged user: a
# client that connects after boot gets the boot line from the backlog, a
# line it types reaches the guest's shell and the answer comes back, and
# the running monitor's real and effective uid are nobody's.
rm -f /tmp/sockcon.out
vmm_start sockcon "echo L2-SOCK-WAIT; read l; echo L2-GOT-\$l" --cpus 1 --memory "$VMM_MEM" \
	--console socket:/tmp/sockcon.con --user nobody
why=
i=0
while [ $i -lt 2400 ] && [ ! -S /tmp/sockcon.con ] && kill -0 "$vmm_pid" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
if [ ! -S /tmp/sockcon.con ]; then
	why="no console socket appeared: $(log_tail sockcon)"
else
	sleep 1
	uids=$(awk '/^Uid:/ {print $2 "/" $3}' "/proc/$vmm_pid/status" 2>/dev/null)
	: >/tmp/sockcon.out
	{
		i=0
		while [ $i -lt 2400 ] && ! grep -q L2-SOCK-WAIT /tmp/sockcon.out; do
			sleep 0.1
			i=$((i + 1))
		done
		echo abc123
		sleep 5
	} | socat -t 5 - UNIX-CONNECT:/tmp/sockcon.con >/tmp/sockcon.out 2>&1 &
	sock_pid=$!
	wait_exit "$vmm_pid" 300
	kill "$sock_pid" 2>/dev/null
	wait "$sock_pid" 2>/dev/null
	if ! grep -q VESSEL-GUEST-READY /tmp/sockcon.out; then
		why="the boot line did not come through the console socket: $(tail -c 300 /tmp/sockcon.out | tr '\n\r' '  ')"
	elif ! grep -q L2-GOT-abc123 /tmp/sockcon.out; then
		why="the line typed into the socket did not reach the guest: $(tail -c 300 /tmp/sockcon.out | tr '\n\r' '  ')"
	elif [ "$uids" != 65534/65534 ]; then
		why="monitor ran with uid/euid '$uids', expected 65534/65534 (--user nobody)"
	elif [ "$wait_status" != 0 ]; then
		why="exit code $(describe "$wait_status") after guest poweroff, expected 0"
	fi
fi
kill -9 "$vmm_pid" 2>/dev/null
if [ -z "$why" ]; then
	result vmm_console_socket_user pass "boot line and a typed command through --console socket:, monitor ran as uid $uids"
else
	result vmm_console_socket_user fail "$why"
fi

# Guest reboot: exit code 1.
vmm_run reboot 240 "reboot -f" --cpus 1 --memory "$VMM_MEM"
if [ "$vmm_status" = 1 ]; then
	result vmm_reboot_exit pass "exit code 1 after guest reboot"
else
	result vmm_reboot_exit fail "exit code $(describe "$vmm_status") after guest reboot, expected 1: $(log_tail reboot)"
fi

# A hostile guest: /opt/evil/virtq_garbage takes a virtio device from its
# driver and points its queues at garbage (see tests/testhost/evil/); the
# guest runs it on each virtio device it has, here virtio-blk and
# virtio-rng. The monitor must survive: answer on the control socket
# afterwards and exit 0 on poweroff, never 2 or a signal.
vmm_start evil "n=0; for v in /sys/bus/pci/devices/*/vendor; do [ \$(cat \$v) = 0x1af4 ] || continue; d=\${v%/vendor}; /opt/evil/virtq_garbage \${d##*/} || break; n=\$((n+1)); done; echo L2-EVIL-DONE=\$n; sleep 3" \
	--cpus 1 --memory "$VMM_MEM" --disk "$disk" --rng
why=
if wait_for /tmp/evil.log L2-EVIL-DONE 240 "$vmm_pid"; then
	kill -0 "$vmm_pid" 2>/dev/null || why="the monitor exited during the attack"
	st=$(control /tmp/evil.sock '{"cmd":"status"}')
	[ -z "$why" ] && ! reply_has "$st" ok true && why="alive after the attack, but status answered '$st'"
else
	why="guest never finished the attack"
fi
wait_exit "$vmm_pid" 60
case $wait_status in
0) ;;
*) why="${why:+$why; }exit code $(describe "$wait_status") after the attack, expected 0" ;;
esac
# The attack itself has to have happened, or the test proves nothing.
steps=$(grep -c '^evil: step' /tmp/evil.log)
if [ -z "$why" ] && { ! grep -q 'L2-EVIL-DONE=2' /tmp/evil.log || [ "$steps" -lt 22 ]; }; then
	why="the attack program could not run all its steps on both devices ($steps of 22; $(grep -o 'L2-EVIL-DONE=[0-9]*' /tmp/evil.log) devices)"
fi
if [ -z "$why" ]; then
	result vmm_evil_queue pass "monitor survived all $steps attack steps on virtio-blk and virtio-rng, $(grep -c 'NEEDS_RESET' /tmp/evil.log) left the device in NEEDS_RESET"
else
	result vmm_evil_queue fail "$why: $(log_tail evil)"
fi
exit 0
