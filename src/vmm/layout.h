/* layout: where vessel-vmm puts things in guest physical memory and which
 * I/O ports and interrupt lines its devices use. One place, so the boot code,
 * the ACPI tables and the device models agree. The low-memory addresses follow
 * the usual PC layout the Linux boot protocol expects (Documentation/arch/x86/
 * boot.rst, "Memory layout"): real-mode area below 640 KiB, BIOS area from
 * 0xe0000, the protected-mode kernel at 1 MiB. */
#ifndef VESSEL_VMM_LAYOUT_H
#define VESSEL_VMM_LAYOUT_H

#include "lib/util.h"

/* boot structures in the first 640 KiB */
#define LAYOUT_GDT_ADDR 0x500ull
#define LAYOUT_IDT_ADDR 0x520ull
#define LAYOUT_ZERO_PAGE_ADDR 0x7000ull
#define LAYOUT_BOOT_STACK 0x8ff0ull
#define LAYOUT_PML4_ADDR 0x9000ull
#define LAYOUT_PDPT_ADDR 0xa000ull
#define LAYOUT_PD_ADDR 0xb000ull    /* 4 page directories: identity map of 4 GiB */
#define LAYOUT_PD_COUNT 4
#define LAYOUT_CMDLINE_ADDR 0x20000ull
#define LAYOUT_CMDLINE_MAX 0x10000ull
#define LAYOUT_EBDA_START 0x9fc00ull
#define LAYOUT_LOWMEM_END 0xa0000ull
/* ACPI tables live in the BIOS read-only area, where Linux also scans for
 * the RSDP (ACPI 6.4 §5.2.5.1) when boot_params.acpi_rsdp_addr is unset. */
#define LAYOUT_BIOS_START 0xe0000ull
#define LAYOUT_ACPI_ADDR 0xe0000ull
#define LAYOUT_ACPI_MAX 0x10000ull
#define LAYOUT_HIMEM_START 0x100000ull

/* The 32-bit PCI hole: RAM stops at 3 GiB and continues at 4 GiB. */
#define LAYOUT_PCI_HOLE_START (3ull * GiB)
#define LAYOUT_HIGH_RAM_START (4ull * GiB)
#define LAYOUT_PCI_MMIO_START LAYOUT_PCI_HOLE_START
#define LAYOUT_PCI_MMIO_END 0xfec00000ull   /* exclusive; IOAPIC follows */
#define LAYOUT_IOAPIC_ADDR 0xfec00000ull
#define LAYOUT_LAPIC_ADDR 0xfee00000ull
/* KVM needs three pages for the real-mode TSS and one for the EPT identity
 * map (KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR), outside RAM. */
#define LAYOUT_IDENTITY_MAP_ADDR 0xfeffc000ull
#define LAYOUT_TSS_ADDR 0xfeffd000ull

/* I/O ports */
#define LAYOUT_PORT_COM1 0x3f8
#define LAYOUT_PORT_I8042_DATA 0x60
#define LAYOUT_PORT_I8042_CMD 0x64
#define LAYOUT_PORT_RTC 0x70
#define LAYOUT_PORT_PCI_CONFIG_ADDR 0xcf8
#define LAYOUT_PORT_PCI_CONFIG_DATA 0xcfc
#define LAYOUT_PORT_RESET 0xcf9
/* ACPI fixed hardware (ACPI 6.4 §4.8): PM1a event block (status, enable),
 * PM1a control and the PM timer. */
#define LAYOUT_PORT_PM1A_EVT 0x600
#define LAYOUT_PORT_PM1A_CNT 0x604
#define LAYOUT_PORT_PM_TMR 0x608

/* ISA interrupt lines (GSIs on the IOAPIC) */
#define LAYOUT_IRQ_COM1 4
#define LAYOUT_IRQ_SCI 9
#define LAYOUT_IOAPIC_PINS 24
/* GSIs above the IOAPIC pins carry MSI routes (one per MSI-X vector). */
#define LAYOUT_GSI_MSI_BASE 24

/* The \_S5 sleep type our DSDT advertises; PM1a_CNT.SLP_TYP == this with
 * SLP_EN set means power off (ACPI 6.4 §7.4.2). */
#define LAYOUT_ACPI_S5_TYPE 5

#endif
