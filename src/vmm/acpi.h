/* acpi: the ACPI tables vessel-vmm gives its guest (ACPI 6.4 §5.2): RSDP,
 * XSDT, FADT (with the PM1a event/control blocks, PM timer, reset register),
 * FACS, a DSDT with the PCI root bridge and the \_S5 sleep package, and a MADT
 * with one local APIC per vCPU and the IOAPIC. Linux counts CPUs from the
 * MADT, finds the PCI root in the DSDT and powers off through PM1a_CNT. */
#ifndef VESSEL_VMM_ACPI_H
#define VESSEL_VMM_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 254

/* Offsets in the FADT (ACPI 6.4 Table 5.9), used by the tests. */
#define ACPI_FADT_LEN 276
#define ACPI_FADT_OFF_DSDT 40
#define ACPI_FADT_OFF_PM1A_EVT 56
#define ACPI_FADT_OFF_PM1A_CNT 64
#define ACPI_FADT_OFF_FLAGS 112
#define ACPI_FADT_OFF_X_DSDT 140

/* Build the tables into buf, to be copied to guest physical address
 * base_gpa. *len gets the bytes used and *rsdp_gpa the RSDP address.
 * Returns 0, -EINVAL (nr_cpus 0 or above ACPI_MAX_CPUS) or -ENOSPC. */
int acpi_build(uint8_t *buf, size_t cap, uint64_t base_gpa, unsigned nr_cpus, size_t *len,
	       uint64_t *rsdp_gpa);

/* The byte that makes the sum of len bytes zero (ACPI 6.4 §5.2.5.3). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

/* The 32-bit compressed EISA id of a 7-character PNP id ("PNP0A03"), as AML
 * EISAID() encodes it. */
uint32_t acpi_eisaid(const char *id);

#endif
