/* boot: direct Linux boot without firmware. Loads a bzImage (x86 boot
 * protocol 2.10 or newer, Documentation/arch/x86/boot.rst) or an uncompressed
 * vmlinux ELF into guest memory, places the initrd and the command line, fills
 * the zero page (boot_params, Documentation/arch/x86/zero-page.rst) with an
 * e820 map, and writes the identity-mapped page tables and GDT the 64-bit boot
 * protocol requires. Pure memory work: no KVM here, so it is unit tested. */
#ifndef VESSEL_VMM_BOOT_H
#define VESSEL_VMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include <asm/bootparam.h>

#include "vmm/mem.h"

#define BOOT_E820_RAM 1
#define BOOT_E820_RESERVED 2

/* Oldest boot protocol we accept: 2.10 has init_size, pref_address and the
 * 64-bit entry point at the protected-mode start + 0x200 (boot.rst §"64-bit
 * boot protocol"). */
#define BOOT_PROTOCOL_MIN 0x020a
#define BOOT_HDR_MAGIC 0x53726448u  /* "HdrS" */

/* GDT selectors of the 64-bit boot protocol: __BOOT_CS and __BOOT_DS. */
#define BOOT_GDT_CODE_SEL 0x10
#define BOOT_GDT_DATA_SEL 0x18
#define BOOT_GDT_TSS_SEL 0x20

enum boot_kernel_kind {
	BOOT_KERNEL_BZIMAGE,
	BOOT_KERNEL_ELF,
};

struct boot_config {
	uint64_t mem_size;         /* total guest RAM in bytes */
	const uint8_t *kernel;     /* whole kernel file */
	size_t kernel_len;
	const uint8_t *initrd;     /* may be NULL */
	size_t initrd_len;
	const char *cmdline;       /* may be NULL */
	uint64_t rsdp_gpa;         /* 0 when there are no ACPI tables */
};

struct boot_info {
	enum boot_kernel_kind kind;
	uint64_t entry;            /* 64-bit entry point (guest physical) */
	uint64_t kernel_start, kernel_end; /* reserved for the kernel incl. init_size */
	uint64_t initrd_gpa, initrd_size;
	uint16_t protocol;         /* boot protocol version (bzImage) */
};

/* RAM below the PCI hole and above 4 GiB for mem_size bytes of RAM. */
void boot_ram_split(uint64_t mem_size, uint64_t *low, uint64_t *high);

/* Build the e820 map for mem_size bytes of RAM: conventional memory up to
 * the EBDA, the EBDA and the BIOS area reserved, RAM from 1 MiB to the PCI
 * hole and the rest above 4 GiB. Returns 0 or -ENOSPC when max is too small. */
int boot_e820_build(uint64_t mem_size, struct boot_e820_entry *out, unsigned max, unsigned *nr);

/* Load everything (kernel, initrd, command line, zero page, page tables,
 * GDT) into m. Returns 0, or -EINVAL for a file that is not a kernel we can
 * boot, -E2BIG when something does not fit (the error log says what). */
int boot_load(struct guest_mem *m, const struct boot_config *cfg, struct boot_info *info);

/* The pieces boot_load() uses, exposed for the tests. */
int boot_bzimage_parse(const uint8_t *img, size_t len, struct setup_header *hdr, size_t *setup_size);
int boot_write_page_tables(struct guest_mem *m);
int boot_write_gdt(struct guest_mem *m);
/* The 8-byte GDT descriptor for flags/base/limit as in the Intel SDM vol. 3
 * §3.4.5 (flags holds the access byte in bits 0-7 and G/DB/L/AVL in 12-15). */
uint64_t boot_gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);

#endif
