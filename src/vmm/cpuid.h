/* cpuid: turn KVM_GET_SUPPORTED_CPUID into what one vCPU reports: its APIC
 * id and the topology (one socket, nr_cpus cores, one thread each) in leaves
 * 1, 4, 0xb/0x1f, 0x80000008 and 0x8000001e, the hypervisor bit set, and features we do
 * not emulate removed (MONITOR/MWAIT, the PMU, TSX aborts exposed as
 * features, the "architectural" power-management leaf 6). */
#ifndef VESSEL_VMM_CPUID_H
#define VESSEL_VMM_CPUID_H

#include <linux/kvm.h>

void cpuid_setup(struct kvm_cpuid_entry2 *e, unsigned n, unsigned vcpu, unsigned nr_cpus);

#endif
