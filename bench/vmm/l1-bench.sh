#!/bin/sh
# /testhost/bench.sh: the vmm benchmark, run inside the nested test host
# (L1) by bench/vmm/run. vessel-vmm and the reference, QEMU
# `-M microvm -accel kvm`, boot the same L2 kernel and initramfs with 256 MiB
# and one vCPU, alternately, BENCH_RUNS times each (default 3); /testhost/bin/probe
# measures each run from outside (see bench/vmm/probe.c). Prints medians:
#   BENCH <figure> vessel-vmm=<v> qemu=<q> ratio=<v/q>
# for boot to init (ms to VESSEL-GUEST-READY, quiet kernel), monitor memory
# overhead (kB resident beyond guest RAM pages, 1 s after init), and CPU
# time from exec to the first serial byte (ms, earlyprintk on ttyS0). A
# ratio below 1 means vessel-vmm is cheaper. Absolute figures are nested
# (L2 on KVM on TCG) and only meaningful side by side.
. /testhost/lib.sh

# bench/vmm/run passes BENCH_RUNS on the kernel command line.
RUNS=$(sed -n 's/.*vessel\.bench_runs=\([0-9]*\).*/\1/p' /proc/cmdline)
RUNS=${RUNS:-3}
PROBE=/testhost/bin/probe
MEM_MB=256

if ! why=$(kvm_load); then
	result bench fail "$why"
	exit 1
fi

boot_cmdline="console=ttyS0 quiet vessel.run=\"sleep 30\" vessel.poweroff"
early_cmdline="console=ttyS0 earlyprintk=ttyS0"

# run_probe KIND CMDLINE PROBE-ARGS...: start monitor KIND (vmm|qemu) with
# the L2 guest and kernel command line CMDLINE under the probe.
run_probe() {
	kind=$1 cmdline=$2
	shift 2
	if [ "$kind" = vmm ]; then
		rm -f /tmp/bench.sock
		$PROBE "$@" -- "$VMM" --kernel "$L2_KERNEL" --initrd "$L2_INITRD" --cmdline "$cmdline" \
			--cpus 1 --memory ${MEM_MB}M --control /tmp/bench.sock
	else
		$PROBE "$@" -- $QEMU -M microvm -accel kvm -cpu host -m $MEM_MB -smp 1 -nodefaults \
			-no-user-config -display none -serial stdio -no-reboot \
			-kernel "$L2_KERNEL" -initrd "$L2_INITRD" -append "$cmdline"
	fi
}

# field LINE NAME: the value of NAME=... in a PROBE line.
field() {
	echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# median FILE: median of the numbers in FILE (one a line), -1 if none.
median() {
	sort -n "$1" | awk '$1 >= 0 { v[n++] = $1 } END { if (n == 0) print -1; else print v[int((n - 1) / 2)] }'
}

kinds=qemu
if [ -x "$VMM" ]; then
	kinds="vmm qemu"
else
	result bench_vessel_vmm skip "vessel-vmm is not built; only the QEMU reference is measured"
fi

rm -f /tmp/b.*
i=0
while [ $i -lt "$RUNS" ]; do
	for k in $kinds; do
		line=$(run_probe $k "$boot_cmdline" --marker VESSEL-GUEST-READY --guest-mb $MEM_MB --settle 1000 \
			--timeout 240 --log /tmp/b.$k.boot.log | grep '^PROBE')
		echo "bench: $k boot run $i: $line"
		field "$line" marker_ms >>/tmp/b.$k.boot
		field "$line" overhead_kb >>/tmp/b.$k.mem
		line=$(run_probe $k "$early_cmdline" --timeout 240 | grep '^PROBE')
		echo "bench: $k first-byte run $i: $line"
		field "$line" first_byte_cpu_ms >>/tmp/b.$k.cpu
	done
	i=$((i + 1))
done

# report NAME UNIT FILE-SUFFIX
report() {
	q=$(median /tmp/b.qemu.$3)
	if [ -x "$VMM" ]; then
		v=$(median /tmp/b.vmm.$3)
	else
		v=n/a
	fi
	ratio=$(awk -v v="$v" -v q="$q" 'BEGIN { if (v == "n/a" || v < 0 || q <= 0) print "n/a"; else printf "%.2f", v / q }')
	echo "BENCH $1_$2 vessel-vmm=$v qemu=$q ratio=$ratio runs=$RUNS"
}
report boot_to_init ms boot
report monitor_overhead kb mem
report cpu_to_first_serial_byte ms cpu

q=$(median /tmp/b.qemu.boot)
if [ "$q" -lt 0 ]; then
	result bench_qemu fail "QEMU microvm never reached init: $(tail -c 300 /tmp/b.qemu.boot.log | tr '\n' ' ')"
else
	result bench_qemu pass "reference measured"
fi
if [ -x "$VMM" ]; then
	v=$(median /tmp/b.vmm.boot)
	if [ "$v" -lt 0 ]; then
		result bench_vessel_vmm fail "vessel-vmm never reached init: $(tail -c 300 /tmp/b.vmm.boot.log | tr '\n' ' ')"
	else
		result bench_vessel_vmm pass "measured"
	fi
fi
exit 0
