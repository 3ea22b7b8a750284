/* cpuid: per-vCPU CPUID. Leaf layouts from the Intel SDM vol. 2A "CPUID"
 * (leaves 1, 4, 6, 0xa, 0xb, 0x1f) and the AMD APM vol. 3 appendix E
 * (0x80000001, 0x80000008). */
#include "vmm/cpuid.h"

#include <stdint.h>

#define CPUID_1_ECX_MONITOR (1u << 3)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_80000001_ECX_MWAITX (1u << 29)

static unsigned cpuid_bits_for(unsigned n)
{
	unsigned bits = 0;
	while ((1u << bits) < n)
		bits++;
	return bits;
}

void cpuid_setup(struct kvm_cpuid_entry2 *e, unsigned n, unsigned vcpu, unsigned nr_cpus)
{
	unsigned core_bits = cpuid_bits_for(nr_cpus);
	for (unsigned i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *c = &e[i];
		switch (c->function) {
		case 1:
			/* EBX[31:24] initial APIC id, [23:16] logical
			 * processors per package. */
			c->ebx = (c->ebx & 0x0000ffffu) | (vcpu << 24) | ((nr_cpus & 0xff) << 16);
			c->ecx |= CPUID_1_ECX_HYPERVISOR;
			/* We do not emulate MONITOR/MWAIT exits. */
			c->ecx &= ~CPUID_1_ECX_MONITOR;
			if (nr_cpus > 1)
				c->edx |= CPUID_1_EDX_HTT;
			else
				c->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4:
			/* EAX[31:26]: cores per package - 1; [25:14]:
			 * logical processors sharing this cache - 1 (one
			 * thread per core; the last level is shared). */
			c->eax &= 0x00003fffu;
			c->eax |= ((1u << core_bits) - 1) << 26;
			if (((c->eax >> 5) & 7) == 3)
				c->eax |= (nr_cpus - 1) << 14;
			break;
		case 5:
			/* MONITOR/MWAIT leaf: not offered. */
			c->eax = c->ebx = c->ecx = c->edx = 0;
			break;
		case 6:
			/* Thermal and power management: nothing to manage. */
			c->eax = c->ebx = c->ecx = c->edx = 0;
			break;
		case 0xa:
			/* No virtual PMU. */
			c->eax = c->ebx = c->ecx = c->edx = 0;
			break;
		case 0xb:
		case 0x1f:
			/* Extended topology: level 0 SMT (1 thread),
			 * level 1 core (nr_cpus), EDX the x2APIC id. */
			c->edx = vcpu;
			if (c->index == 0) {
				c->eax = 0;
				c->ebx = 1;
				c->ecx = (1u << 8) | 0;
			} else if (c->index == 1) {
				c->eax = core_bits;
				c->ebx = nr_cpus;
				c->ecx = (2u << 8) | 1;
			} else {
				c->eax = c->ebx = 0;
				c->ecx = c->index;
			}
			break;
		case 0x80000001:
			c->ecx &= ~CPUID_80000001_ECX_MWAITX;
			break;
		case 0x8000001e:
			/* AMD topology extensions: extended APIC id, one
			 * thread per core, core id = vCPU, node 0. */
			c->eax = vcpu;
			c->ebx = vcpu & 0xff;
			c->ecx = 0;
			break;
		case 0x80000008:
			/* ECX[7:0] cores - 1, [15:12] APIC id bits. */
			c->ecx = (c->ecx & ~0xf0ffu) | (core_bits << 12) | ((nr_cpus - 1) & 0xff);
			break;
		default:
			break;
		}
	}
}
