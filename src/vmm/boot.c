/* boot: loading a Linux kernel for a direct 64-bit boot. The rules followed
 * here are those of the x86 boot protocol (Documentation/arch/x86/boot.rst):
 * "Loading the rest of the kernel", "Sample boot configuration", "64-bit boot
 * protocol", and zero-page.rst for the fields of boot_params. */
#include "vmm/boot.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vmm/layout.h"

_Static_assert(sizeof(struct boot_params) == 4096, "boot_params is one page");
_Static_assert(sizeof(struct boot_e820_entry) == 20, "e820 entry size");

/* boot.rst: "type_of_loader 0xFF = undefined" is what loaders without an
 * assigned id use. */
#define BOOT_LOADER_TYPE_UNDEFINED 0xff
/* Before protocol 2.03 the initrd had to end below this. */
#define BOOT_INITRD_ADDR_MAX_OLD 0x37ffffffu

void boot_ram_split(uint64_t mem_size, uint64_t *low, uint64_t *high)
{
	*low = MIN(mem_size, LAYOUT_PCI_HOLE_START);
	*high = mem_size - *low;
}

int boot_e820_build(uint64_t mem_size, struct boot_e820_entry *out, unsigned max, unsigned *nr)
{
	uint64_t low, high;
	boot_ram_split(mem_size, &low, &high);
	struct boot_e820_entry e[5];
	unsigned n = 0;

	e[n++] = (struct boot_e820_entry){0, LAYOUT_EBDA_START, BOOT_E820_RAM};
	e[n++] = (struct boot_e820_entry){LAYOUT_EBDA_START, LAYOUT_LOWMEM_END - LAYOUT_EBDA_START,
					  BOOT_E820_RESERVED};
	/* The ACPI tables sit here; reserved keeps the kernel from reusing them. */
	e[n++] = (struct boot_e820_entry){LAYOUT_BIOS_START, LAYOUT_HIMEM_START - LAYOUT_BIOS_START,
					  BOOT_E820_RESERVED};
	if (low > LAYOUT_HIMEM_START)
		e[n++] = (struct boot_e820_entry){LAYOUT_HIMEM_START, low - LAYOUT_HIMEM_START,
						  BOOT_E820_RAM};
	if (high)
		e[n++] = (struct boot_e820_entry){LAYOUT_HIGH_RAM_START, high, BOOT_E820_RAM};
	if (n > max)
		return -ENOSPC;
	memcpy(out, e, n * sizeof(e[0]));
	*nr = n;
	return 0;
}

int boot_bzimage_parse(const uint8_t *img, size_t len, struct setup_header *hdr, size_t *setup_size)
{
	const size_t hdr_off = offsetof(struct boot_params, hdr);
	if (len < hdr_off + sizeof(*hdr))
		return -EINVAL;
	memcpy(hdr, img + hdr_off, sizeof(*hdr));
	if (hdr->header != BOOT_HDR_MAGIC || hdr->boot_flag != 0xaa55)
		return -EINVAL;
	if (hdr->version < BOOT_PROTOCOL_MIN)
		return -ENOTSUP;
	/* boot.rst: "If setup_sects is 0, the real value is 4." */
	unsigned sects = hdr->setup_sects ? hdr->setup_sects : 4;
	size_t ssize = (size_t)(sects + 1) * 512;
	if (ssize >= len)
		return -EINVAL;
	if (!(hdr->loadflags & LOADED_HIGH) || !(hdr->xloadflags & XLF_KERNEL_64))
		return -ENOTSUP;
	*setup_size = ssize;
	return 0;
}

static int boot_copy(struct guest_mem *m, uint64_t gpa, const void *src, size_t len)
{
	void *dst = guest_mem_ptr(m, gpa, len);
	if (!dst)
		return -E2BIG;
	memcpy(dst, src, len);
	return 0;
}

static int boot_load_bzimage(struct guest_mem *m, const struct boot_config *cfg,
			     struct boot_params *bp, struct boot_info *info)
{
	size_t setup_size;
	int ret = boot_bzimage_parse(cfg->kernel, cfg->kernel_len, &bp->hdr, &setup_size);
	if (ret == -ENOTSUP) {
		log_error("kernel: boot protocol %u.%02u or flags not supported; vessel-vmm needs a "
			  "64-bit bzImage with boot protocol 2.10 or newer",
			  bp->hdr.version >> 8, bp->hdr.version & 0xff);
		return -EINVAL;
	}
	if (ret < 0)
		return ret;
	/* The setup header is copied as is (boot.rst: "the setup header ...
	 * should be loaded into the zero page"), only as long as the kernel
	 * says it is: byte 0x201 holds the offset of its end from 0x202. */
	size_t hdr_len = 0x202 + (size_t)cfg->kernel[0x201] - offsetof(struct boot_params, hdr);
	if (hdr_len > sizeof(bp->hdr))
		hdr_len = sizeof(bp->hdr);
	memset(&bp->hdr, 0, sizeof(bp->hdr));
	memcpy(&bp->hdr, cfg->kernel + offsetof(struct boot_params, hdr), hdr_len);

	const uint8_t *pm = cfg->kernel + setup_size;
	size_t pm_len = cfg->kernel_len - setup_size;
	/* The decompressor needs init_size bytes from the load address. */
	uint64_t need = MAX((uint64_t)bp->hdr.init_size, (uint64_t)pm_len);
	if (!guest_mem_ptr(m, LAYOUT_HIMEM_START, need)) {
		log_error("kernel: needs %llu MiB of RAM above 1 MiB to decompress; give the VM more memory",
			  (unsigned long long)(need / MiB + 1));
		return -E2BIG;
	}
	ret = boot_copy(m, LAYOUT_HIMEM_START, pm, pm_len);
	if (ret < 0)
		return ret;
	info->kind = BOOT_KERNEL_BZIMAGE;
	info->protocol = bp->hdr.version;
	info->kernel_start = LAYOUT_HIMEM_START;
	/* A relocatable kernel decompresses itself to pref_address
	 * (LOAD_PHYSICAL_ADDR, usually 16 MiB) and needs init_size bytes
	 * there: keep the initrd clear of both places. */
	info->kernel_end = MAX(LAYOUT_HIMEM_START + need, bp->hdr.pref_address + bp->hdr.init_size);
	/* boot.rst "64-bit BOOT PROTOCOL": the 64-bit entry is at offset 0x200
	 * of the protected-mode kernel. */
	info->entry = LAYOUT_HIMEM_START + 0x200;
	return 0;
}

static int boot_load_elf(struct guest_mem *m, const struct boot_config *cfg,
			 struct boot_params *bp, struct boot_info *info)
{
	const uint8_t *img = cfg->kernel;
	Elf64_Ehdr eh;
	if (cfg->kernel_len < sizeof(eh))
		return -EINVAL;
	memcpy(&eh, img, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
		log_error("kernel: ELF file is not a 64-bit x86 little-endian executable");
		return -EINVAL;
	}
	if (eh.e_phoff > cfg->kernel_len ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > cfg->kernel_len - eh.e_phoff)
		return -EINVAL;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > cfg->kernel_len ||
		    ph.p_filesz > cfg->kernel_len - ph.p_offset)
			return -EINVAL;
		uint8_t *dst = guest_mem_ptr(m, ph.p_paddr, ph.p_memsz);
		if (!dst) {
			log_error("kernel: ELF segment at 0x%llx (%llu bytes) is outside guest RAM; give the VM "
				  "more memory", (unsigned long long)ph.p_paddr,
				  (unsigned long long)ph.p_memsz);
			return -E2BIG;
		}
		memcpy(dst, img + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		lo = MIN(lo, ph.p_paddr);
		hi = MAX(hi, ph.p_paddr + ph.p_memsz);
	}
	if (hi == 0)
		return -EINVAL;
	/* x86 vmlinux is linked with ENTRY(phys_startup_64): e_entry is the
	 * physical address of the 64-bit entry. */
	if (eh.e_entry < lo || eh.e_entry >= hi)
		return -EINVAL;
	/* A vmlinux has no setup header; give the kernel the fields a bzImage
	 * loader would have filled (zero-page.rst). */
	bp->hdr.boot_flag = 0xaa55;
	bp->hdr.header = BOOT_HDR_MAGIC;
	bp->hdr.version = BOOT_PROTOCOL_MIN;
	bp->hdr.kernel_alignment = 0x1000000;
	bp->hdr.initrd_addr_max = 0x7fffffff;
	bp->hdr.cmdline_size = LAYOUT_CMDLINE_MAX - 1;
	info->kind = BOOT_KERNEL_ELF;
	info->protocol = 0;
	info->kernel_start = lo;
	info->kernel_end = hi;
	info->entry = eh.e_entry;
	return 0;
}

static int boot_place_initrd(struct guest_mem *m, const struct boot_config *cfg,
			     struct boot_params *bp, struct boot_info *info)
{
	uint64_t low, high;
	boot_ram_split(cfg->mem_size, &low, &high);
	uint64_t addr_max = bp->hdr.version >= 0x0203 ? bp->hdr.initrd_addr_max : BOOT_INITRD_ADDR_MAX_OLD;
	/* boot.rst: initrd_addr_max is "the maximum address that may be
	 * occupied by the initial ramdisk", so the end is addr_max + 1. Put it
	 * as high as allowed, as the sample loader does, clear of the kernel. */
	uint64_t limit = MIN(addr_max + 1, low);
	uint64_t size = cfg->initrd_len;
	if (size > limit || (limit - size) / 4096 * 4096 < ALIGN_UP(info->kernel_end, 4096ull)) {
		log_error("initrd: %llu bytes do not fit between the kernel and %llu MiB; give the VM more memory",
			  (unsigned long long)size, (unsigned long long)(limit / MiB));
		return -E2BIG;
	}
	uint64_t gpa = (limit - size) / 4096 * 4096;
	int ret = boot_copy(m, gpa, cfg->initrd, size);
	if (ret < 0)
		return ret;
	bp->hdr.ramdisk_image = (uint32_t)gpa;
	bp->hdr.ramdisk_size = (uint32_t)size;
	bp->ext_ramdisk_image = (uint32_t)(gpa >> 32);
	bp->ext_ramdisk_size = (uint32_t)(size >> 32);
	info->initrd_gpa = gpa;
	info->initrd_size = size;
	return 0;
}

uint64_t boot_gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (uint64_t)(limit & 0x0000ffffu);
}

int boot_write_gdt(struct guest_mem *m)
{
	/* Flat segments as the 64-bit boot protocol requires: __BOOT_CS
	 * (0x10) execute/read with L=1, __BOOT_DS (0x18) read/write, and a
	 * TSS so the task register holds something valid. */
	uint64_t gdt[5] = {
		0,
		0,
		boot_gdt_entry(0xa09b, 0, 0xfffff),
		boot_gdt_entry(0xc093, 0, 0xfffff),
		boot_gdt_entry(0x808b, 0, 0xfffff),
	};
	uint64_t idt = 0;
	int ret = boot_copy(m, LAYOUT_GDT_ADDR, gdt, sizeof(gdt));
	if (ret == 0)
		ret = boot_copy(m, LAYOUT_IDT_ADDR, &idt, sizeof(idt));
	return ret;
}

int boot_write_page_tables(struct guest_mem *m)
{
	/* Identity map of the first 4 GiB with 2 MiB pages: one PML4 entry,
	 * four PDPT entries, four page directories (Intel SDM vol. 3 §4.5).
	 * The protocol needs the kernel, zero page and command line mapped;
	 * the kernel builds its own tables right away. */
	uint64_t *pml4 = guest_mem_ptr(m, LAYOUT_PML4_ADDR, 4096);
	uint64_t *pdpt = guest_mem_ptr(m, LAYOUT_PDPT_ADDR, 4096);
	uint64_t *pd = guest_mem_ptr(m, LAYOUT_PD_ADDR, 4096 * LAYOUT_PD_COUNT);
	if (!pml4 || !pdpt || !pd)
		return -E2BIG;
	const uint64_t present_rw = 0x3, page_size = 0x80;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT_ADDR | present_rw;
	for (unsigned i = 0; i < LAYOUT_PD_COUNT; i++)
		pdpt[i] = (LAYOUT_PD_ADDR + i * 4096ull) | present_rw;
	for (uint64_t i = 0; i < 512ull * LAYOUT_PD_COUNT; i++)
		pd[i] = (i << 21) | present_rw | page_size;
	return 0;
}

int boot_load(struct guest_mem *m, const struct boot_config *cfg, struct boot_info *info)
{
	struct boot_params *bp = guest_mem_ptr(m, LAYOUT_ZERO_PAGE_ADDR, sizeof(*bp));
	int ret;

	memset(info, 0, sizeof(*info));
	if (!bp)
		return -E2BIG;
	memset(bp, 0, sizeof(*bp));
	if (cfg->kernel_len >= 4 && memcmp(cfg->kernel, ELFMAG, SELFMAG) == 0)
		ret = boot_load_elf(m, cfg, bp, info);
	else
		ret = boot_load_bzimage(m, cfg, bp, info);
	if (ret == -EINVAL)
		log_error("kernel: not a bzImage or vmlinux ELF we can boot; pass an x86-64 Linux kernel");
	if (ret < 0)
		goto out;

	bp->hdr.type_of_loader = BOOT_LOADER_TYPE_UNDEFINED;
	/* No real-mode code runs, so no heap; keep the kernel's flags but say
	 * we loaded it high. */
	bp->hdr.loadflags |= LOADED_HIGH;

	const char *cmdline = cfg->cmdline ? cfg->cmdline : "";
	size_t clen = strlen(cmdline);
	uint64_t cmax = MIN((uint64_t)bp->hdr.cmdline_size, LAYOUT_CMDLINE_MAX - 1);
	if (clen > cmax) {
		log_error("cmdline: %zu bytes is longer than the %llu the kernel accepts; shorten it", clen,
			  (unsigned long long)cmax);
		ret = -E2BIG;
		goto out;
	}
	ret = boot_copy(m, LAYOUT_CMDLINE_ADDR, cmdline, clen + 1);
	if (ret < 0)
		goto out;
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE_ADDR;
	bp->ext_cmd_line_ptr = 0;

	if (cfg->initrd && cfg->initrd_len) {
		ret = boot_place_initrd(m, cfg, bp, info);
		if (ret < 0)
			goto out;
	}

	unsigned nr;
	ret = boot_e820_build(cfg->mem_size, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE, &nr);
	if (ret < 0)
		goto out;
	bp->e820_entries = (uint8_t)nr;
	/* zero-page.rst: acpi_rsdp_addr (protocol 2.14) saves the kernel the
	 * scan of the BIOS area; older kernels still find it by scanning. */
	bp->acpi_rsdp_addr = cfg->rsdp_gpa;

	ret = boot_write_page_tables(m);
	if (ret < 0)
		goto out;
	ret = boot_write_gdt(m);
out:
	return ret;
}
