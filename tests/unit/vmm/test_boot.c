/* Unit tests for src/vmm/boot.c: the e820 map around the PCI hole, loading
 * a fake bzImage (setup header copied, protected-mode code at 1 MiB, zero
 * page fields, command line, initrd placement under initrd_addr_max), the
 * refusal of kernels we cannot boot, vmlinux ELF loading, page tables and
 * the GDT. Guest memory is a calloc'd buffer. */
#include "vmm/boot.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vmm/layout.h"

#define MEM (128 * MiB)

static uint8_t *ram;
static struct guest_mem mem;

static void mem_setup(void)
{
	free(ram);
	ram = calloc(1, MEM);
	memset(&mem, 0, sizeof(mem));
	guest_mem_add_region(&mem, 0, MEM, ram);
	log_set_level(LOG_LEVEL_ERROR + 0);
}

/* A bzImage: 4+1 setup sectors with a setup header, then pm_len bytes of
 * "protected-mode kernel". */
static uint8_t *fake_bzimage(size_t pm_len, uint16_t version, size_t *len)
{
	size_t setup = 5 * 512;
	uint8_t *img = calloc(1, setup + pm_len);
	struct setup_header h;
	memset(&h, 0, sizeof(h));
	h.setup_sects = 4;
	h.boot_flag = 0xaa55;
	h.header = BOOT_HDR_MAGIC;
	h.version = version;
	h.loadflags = LOADED_HIGH;
	h.xloadflags = XLF_KERNEL_64;
	h.initrd_addr_max = 0x7fffffff;
	h.cmdline_size = 2048;
	h.init_size = (uint32_t)(pm_len * 4);
	h.kernel_alignment = 0x200000;
	memcpy(img + 0x1f1, &h, sizeof(h));
	/* byte 0x201 = header end - 0x202: covers the whole struct */
	img[0x201] = (uint8_t)(0x1f1 + sizeof(h) - 0x202);
	for (size_t i = 0; i < pm_len; i++)
		img[setup + i] = (uint8_t)(i * 7 + 1);
	*len = setup + pm_len;
	return img;
}

TEST(e820_small)
{
	struct boot_e820_entry e[8];
	unsigned n = 0;
	CHECK_EQ_INT(boot_e820_build(256 * MiB, e, 8, &n), 0);
	CHECK_EQ_INT(n, 4);
	CHECK_EQ_INT(e[0].addr, 0);
	CHECK_EQ_INT(e[0].size, LAYOUT_EBDA_START);
	CHECK_EQ_INT(e[0].type, BOOT_E820_RAM);
	CHECK_EQ_INT(e[2].type, BOOT_E820_RESERVED);
	CHECK_EQ_INT(e[3].addr, MiB);
	CHECK_EQ_INT(e[3].addr + e[3].size, 256 * MiB);
	CHECK_EQ_INT(boot_e820_build(256 * MiB, e, 3, &n), -ENOSPC);
}

TEST(e820_pci_hole)
{
	struct boot_e820_entry e[8];
	unsigned n = 0;
	uint64_t low, high;
	boot_ram_split(6 * GiB, &low, &high);
	CHECK_EQ_INT(low, 3 * GiB);
	CHECK_EQ_INT(high, 3 * GiB);
	CHECK_EQ_INT(boot_e820_build(6 * GiB, e, 8, &n), 0);
	CHECK_EQ_INT(n, 5);
	CHECK_EQ_INT(e[3].addr + e[3].size, 3 * GiB);     /* RAM stops at the hole */
	CHECK_EQ_INT(e[4].addr, 4 * GiB);                 /* and resumes at 4 GiB */
	CHECK_EQ_INT(e[4].size, 3 * GiB);
	uint64_t ram_total = 0;
	for (unsigned i = 0; i < n; i++) {
		if (e[i].type == BOOT_E820_RAM)
			ram_total += e[i].size;
		/* nothing inside the 32-bit hole */
		CHECK(e[i].addr + e[i].size <= 3 * GiB || e[i].addr >= 4 * GiB);
		if (i)
			CHECK(e[i].addr >= e[i - 1].addr + e[i - 1].size);
	}
	CHECK_EQ_INT(ram_total, 6 * GiB - (MiB - LAYOUT_EBDA_START));
}

TEST(bzimage_load)
{
	mem_setup();
	size_t klen;
	uint8_t *k = fake_bzimage(64 * 1024, 0x020f, &klen);
	uint8_t initrd[10000];
	memset(initrd, 0x5a, sizeof(initrd));
	struct boot_config cfg = {
		.mem_size = MEM, .kernel = k, .kernel_len = klen, .initrd = initrd,
		.initrd_len = sizeof(initrd), .cmdline = "console=ttyS0 quiet", .rsdp_gpa = 0xe0000,
	};
	struct boot_info info;
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), 0);
	CHECK_EQ_INT(info.kind, BOOT_KERNEL_BZIMAGE);
	CHECK_EQ_INT(info.entry, 0x100200);
	CHECK_EQ_INT(info.protocol, 0x020f);
	CHECK(memcmp(ram + MiB, k + 5 * 512, 64 * 1024) == 0);

	struct boot_params *bp = (struct boot_params *)(ram + LAYOUT_ZERO_PAGE_ADDR);
	CHECK_EQ_INT(bp->hdr.header, BOOT_HDR_MAGIC);
	CHECK_EQ_INT(bp->hdr.type_of_loader, 0xff);
	CHECK(bp->hdr.loadflags & LOADED_HIGH);
	CHECK_EQ_INT(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE_ADDR);
	CHECK_STR((char *)ram + LAYOUT_CMDLINE_ADDR, "console=ttyS0 quiet");
	CHECK_EQ_INT(bp->acpi_rsdp_addr, 0xe0000);
	CHECK_EQ_INT(bp->e820_entries, 4);
	CHECK_EQ_INT(bp->e820_table[3].addr + bp->e820_table[3].size, MEM);
	/* initrd: page aligned, at the top of RAM, above the kernel */
	CHECK_EQ_INT(bp->hdr.ramdisk_size, sizeof(initrd));
	CHECK_EQ_INT(bp->hdr.ramdisk_image % 4096, 0);
	CHECK(bp->hdr.ramdisk_image + sizeof(initrd) <= MEM);
	CHECK(bp->hdr.ramdisk_image + sizeof(initrd) > MEM - 4096 - sizeof(initrd));
	CHECK(bp->hdr.ramdisk_image >= info.kernel_end);
	CHECK(memcmp(ram + bp->hdr.ramdisk_image, initrd, sizeof(initrd)) == 0);

	/* page tables: identity map with 2 MiB pages */
	uint64_t *pml4 = (uint64_t *)(ram + LAYOUT_PML4_ADDR);
	uint64_t *pdpt = (uint64_t *)(ram + LAYOUT_PDPT_ADDR);
	uint64_t *pd = (uint64_t *)(ram + LAYOUT_PD_ADDR);
	CHECK_EQ_INT(pml4[0], LAYOUT_PDPT_ADDR | 3);
	CHECK_EQ_INT(pdpt[0], LAYOUT_PD_ADDR | 3);
	CHECK_EQ_INT(pdpt[3], (LAYOUT_PD_ADDR + 3 * 4096) | 3);
	CHECK_EQ_INT(pd[0], 0x83);
	CHECK_EQ_INT(pd[1], (2 * MiB) | 0x83);
	CHECK_EQ_INT(pd[2047], (2047 * 2 * MiB) | 0x83);
	/* GDT: the 64-bit code and data segments of the boot protocol */
	uint64_t *gdt = (uint64_t *)(ram + LAYOUT_GDT_ADDR);
	CHECK_EQ_INT(gdt[BOOT_GDT_CODE_SEL / 8], 0x00af9b000000ffffull);
	CHECK_EQ_INT(gdt[BOOT_GDT_DATA_SEL / 8], 0x00cf93000000ffffull);
	free(k);
}

TEST(initrd_addr_max_respected)
{
	mem_setup();
	size_t klen;
	uint8_t *k = fake_bzimage(4096, 0x020f, &klen);
	struct setup_header *h = (struct setup_header *)(k + 0x1f1);
	h->initrd_addr_max = 64 * MiB - 1;
	static uint8_t initrd[8192];
	struct boot_config cfg = {.mem_size = MEM, .kernel = k, .kernel_len = klen,
				  .initrd = initrd, .initrd_len = sizeof(initrd)};
	struct boot_info info;
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), 0);
	CHECK_EQ_INT(info.initrd_gpa + info.initrd_size, 64 * MiB);
	free(k);
}

TEST(bzimage_refused)
{
	mem_setup();
	size_t klen;
	struct boot_info info;
	struct boot_config cfg = {.mem_size = MEM};

	uint8_t *k = fake_bzimage(4096, 0x0209, &klen);   /* protocol 2.09: too old */
	cfg.kernel = k;
	cfg.kernel_len = klen;
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -EINVAL);
	free(k);

	k = fake_bzimage(4096, 0x020f, &klen);
	((struct setup_header *)(k + 0x1f1))->xloadflags = 0;  /* no 64-bit entry */
	cfg.kernel = k;
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -EINVAL);
	((struct setup_header *)(k + 0x1f1))->xloadflags = XLF_KERNEL_64;
	((struct setup_header *)(k + 0x1f1))->header = 0x12345678;  /* not HdrS */
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -EINVAL);
	((struct setup_header *)(k + 0x1f1))->header = BOOT_HDR_MAGIC;
	cfg.kernel_len = 600;                                  /* truncated */
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -EINVAL);
	cfg.kernel_len = klen;
	((struct setup_header *)(k + 0x1f1))->init_size = 200 * MiB;  /* does not fit */
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -E2BIG);
	((struct setup_header *)(k + 0x1f1))->init_size = 16384;

	char *longcmd = malloc(4000);
	memset(longcmd, 'a', 3999);
	longcmd[3999] = 0;
	cfg.cmdline = longcmd;                                 /* over cmdline_size */
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -E2BIG);
	cfg.cmdline = NULL;

	cfg.initrd = ram;                                      /* initrd as large as RAM */
	cfg.initrd_len = MEM;
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -E2BIG);
	cfg.initrd = NULL;
	cfg.initrd_len = 0;
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), 0);
	free(longcmd);
	free(k);

	uint8_t junk[8192];
	memset(junk, 0xab, sizeof(junk));
	cfg.kernel = junk;
	cfg.kernel_len = sizeof(junk);
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -EINVAL);
	cfg.kernel_len = 10;
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -EINVAL);
}

static size_t fake_elf(uint8_t *buf, uint64_t paddr, uint64_t filesz, uint64_t memsz, uint64_t entry)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	memset(&eh, 0, sizeof(eh));
	memset(&ph, 0, sizeof(ph));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_entry = entry;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(ph);
	eh.e_phnum = 1;
	ph.p_type = PT_LOAD;
	ph.p_offset = 4096;
	ph.p_paddr = paddr;
	ph.p_vaddr = 0xffffffff80000000ull + paddr;
	ph.p_filesz = filesz;
	ph.p_memsz = memsz;
	memcpy(buf, &eh, sizeof(eh));
	memcpy(buf + sizeof(eh), &ph, sizeof(ph));
	for (uint64_t i = 0; i < filesz; i++)
		buf[4096 + i] = (uint8_t)(i + 3);
	return 4096 + filesz;
}

TEST(vmlinux_elf)
{
	mem_setup();
	static uint8_t elf[4096 + 8192];
	size_t len = fake_elf(elf, 16 * MiB, 8192, 3 * 4096, 16 * MiB + 0x40);
	memset(ram + 16 * MiB + 8192, 0xee, 4096);   /* bss must be zeroed */
	struct boot_config cfg = {.mem_size = MEM, .kernel = elf, .kernel_len = len, .cmdline = "root=/dev/vda"};
	struct boot_info info;
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), 0);
	CHECK_EQ_INT(info.kind, BOOT_KERNEL_ELF);
	CHECK_EQ_INT(info.entry, 16 * MiB + 0x40);
	CHECK_EQ_INT(info.kernel_end, 16 * MiB + 3 * 4096);
	CHECK(memcmp(ram + 16 * MiB, elf + 4096, 8192) == 0);
	CHECK_EQ_INT(ram[16 * MiB + 8192], 0);
	struct boot_params *bp = (struct boot_params *)(ram + LAYOUT_ZERO_PAGE_ADDR);
	CHECK_EQ_INT(bp->hdr.boot_flag, 0xaa55);
	CHECK_EQ_INT(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE_ADDR);

	/* entry outside the loaded image, segment outside RAM, lying sizes */
	len = fake_elf(elf, 16 * MiB, 8192, 8192, 1 * MiB);
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -EINVAL);
	len = fake_elf(elf, MEM - 4096, 8192, 8192, MEM - 4096);
	cfg.kernel_len = len;
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -E2BIG);
	len = fake_elf(elf, 16 * MiB, 8192, 4096, 16 * MiB);  /* filesz > memsz */
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -EINVAL);
	fake_elf(elf, 16 * MiB, 8192, 8192, 16 * MiB);
	cfg.kernel_len = 5000;                                 /* file cut short */
	CHECK_EQ_INT(boot_load(&mem, &cfg, &info), -EINVAL);
}

TEST(gdt_entry_encoding)
{
	CHECK_EQ_INT(boot_gdt_entry(0xa09b, 0, 0xfffff), 0x00af9b000000ffffull);
	CHECK_EQ_INT(boot_gdt_entry(0x808b, 0, 0xfffff), 0x008f8b000000ffffull);
	CHECK_EQ_INT(boot_gdt_entry(0xc093, 0x12345678, 0xabcde), 0x12ca93345678bcdeull);
}

HARNESS_MAIN
