/* acpi: building the guest's ACPI tables. Field offsets follow ACPI 6.4
 * §5.2 (tables) and §6.4 (resource descriptors); the DSDT is written as AML
 * bytecode (§20.2) by the small encoder below, which knows only the few
 * objects we need (Name, Scope, Device, Package, Buffer, integers). */
#include "vmm/acpi.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"
#include "vmm/layout.h"

#define ACPI_HDR_LEN 36
#define ACPI_OEM_ID "VESSEL"
#define ACPI_OEM_TABLE_ID "VESSELVM"
#define ACPI_GAS_SYSTEM_IO 1

/* AML opcodes (ACPI 6.4 §20.3) */
#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME 0x08
#define AML_BYTE 0x0a
#define AML_WORD 0x0b
#define AML_DWORD 0x0c
#define AML_QWORD 0x0e
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_EXT 0x5b
#define AML_DEVICE 0x82
#define AML_ROOT '\\'

/* A fixed-size byte builder: the DSDT is a few hundred bytes, so overflow
 * means a bug, reported as -ENOSPC through `err`. */
struct acpi_aml {
	uint8_t buf[2048];
	size_t len;
	int err;
};

static void aml_bytes(struct acpi_aml *a, const void *p, size_t n)
{
	if (a->len + n > sizeof(a->buf)) {
		a->err = -ENOSPC;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void aml_byte(struct acpi_aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_le(struct acpi_aml *a, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

/* PkgLength (§20.2.4): the length counts its own bytes too. */
static void aml_pkglen(struct acpi_aml *a, size_t body)
{
	if (body + 1 < 64) {
		aml_byte(a, (uint8_t)(body + 1));
		return;
	}
	for (unsigned extra = 1; extra <= 3; extra++) {
		size_t len = body + 1 + extra;
		if (len < (1ull << (4 + 8 * extra))) {
			aml_byte(a, (uint8_t)((extra << 6) | (len & 0xf)));
			for (unsigned i = 0; i < extra; i++)
				aml_byte(a, (uint8_t)(len >> (4 + 8 * i)));
			return;
		}
	}
	a->err = -ENOSPC;
}

static void aml_int(struct acpi_aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO);
	} else if (v == 1) {
		aml_byte(a, AML_ONE);
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE);
		aml_le(a, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD);
		aml_le(a, v, 2);
	} else if (v <= 0xffffffffu) {
		aml_byte(a, AML_DWORD);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD);
		aml_le(a, v, 8);
	}
}

/* Wrap body in `op PkgLength name? body` and append it to a. */
static void aml_wrap(struct acpi_aml *a, const uint8_t *op, size_t oplen, const struct acpi_aml *body)
{
	if (body->err)
		a->err = body->err;
	aml_bytes(a, op, oplen);
	aml_pkglen(a, body->len);
	aml_bytes(a, body->buf, body->len);
}

/* Name(name, Integer) */
static void aml_name_int(struct acpi_aml *a, const char *name, uint64_t v)
{
	aml_byte(a, AML_NAME);
	aml_bytes(a, name, strlen(name));
	aml_int(a, v);
}

uint32_t acpi_eisaid(const char *id)
{
	uint32_t v = 0;
	for (int i = 0; i < 3; i++)
		v |= (uint32_t)((id[i] - 0x40) & 0x1f) << (26 - 5 * i);
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t h = (c >= '0' && c <= '9') ? (uint32_t)(c - '0') : (uint32_t)((c | 0x20) - 'a' + 10);
		v |= (h & 0xf) << (4 * (6 - i));
	}
	/* EISA ids are stored big-endian in the little-endian integer. */
	return __builtin_bswap32(v);
}

/* Address space descriptors (§6.4.3.5): WORD and DWORD forms, producer,
 * MinFixed, MaxFixed, positive decode (general flags 0x0c). */
static void acpi_res_word(struct acpi_aml *r, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	aml_byte(r, 0x88);
	aml_le(r, 0x0d, 2);
	aml_byte(r, type);
	aml_byte(r, 0x0c);
	aml_byte(r, tflags);
	aml_le(r, 0, 2);           /* granularity */
	aml_le(r, min, 2);
	aml_le(r, max, 2);
	aml_le(r, 0, 2);           /* translation */
	aml_le(r, (uint32_t)max - min + 1, 2);
}

static void acpi_res_dword(struct acpi_aml *r, uint8_t type, uint8_t tflags, uint32_t min, uint32_t max)
{
	aml_byte(r, 0x87);
	aml_le(r, 0x17, 2);
	aml_byte(r, type);
	aml_byte(r, 0x0c);
	aml_byte(r, tflags);
	aml_le(r, 0, 4);
	aml_le(r, min, 4);
	aml_le(r, max, 4);
	aml_le(r, 0, 4);
	aml_le(r, (uint64_t)max - min + 1, 4);
}

static void acpi_dsdt_pci0(struct acpi_aml *scope)
{
	struct acpi_aml dev = {0}, crs = {0}, res = {0};

	/* _CRS of the root bridge: bus 0, the config ports, the I/O space
	 * around them and the 32-bit MMIO window in the PCI hole. */
	acpi_res_word(&res, 2, 0, 0, 0);
	const uint8_t io_cf8[] = {0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08};
	aml_bytes(&res, io_cf8, sizeof(io_cf8));
	acpi_res_word(&res, 1, 0x03, 0x0000, 0x0cf7);
	acpi_res_word(&res, 1, 0x03, 0x0d00, 0xffff);
	acpi_res_dword(&res, 0, 0x01, (uint32_t)LAYOUT_PCI_MMIO_START, (uint32_t)(LAYOUT_PCI_MMIO_END - 1));
	const uint8_t end_tag[] = {0x79, 0x00};
	aml_bytes(&res, end_tag, sizeof(end_tag));

	/* Buffer(size) { bytes } */
	aml_int(&crs, res.len);
	aml_bytes(&crs, res.buf, res.len);
	if (res.err)
		crs.err = res.err;

	aml_byte(&dev, AML_NAME);
	aml_bytes(&dev, "_HID", 4);
	aml_byte(&dev, AML_DWORD);
	aml_le(&dev, acpi_eisaid("PNP0A03"), 4);
	aml_name_int(&dev, "_ADR", 0);
	aml_name_int(&dev, "_BBN", 0);
	aml_name_int(&dev, "_UID", 0);
	aml_byte(&dev, AML_NAME);
	aml_bytes(&dev, "_CRS", 4);
	const uint8_t buf_op = AML_BUFFER;
	aml_wrap(&dev, &buf_op, 1, &crs);

	const uint8_t dev_op[] = {AML_EXT, AML_DEVICE};
	struct acpi_aml named = {0};
	aml_bytes(&named, "PCI0", 4);
	aml_bytes(&named, dev.buf, dev.len);
	if (dev.err)
		named.err = dev.err;
	aml_wrap(scope, dev_op, sizeof(dev_op), &named);
}

static void acpi_dsdt_body(struct acpi_aml *a)
{
	/* Name(\_S5, Package() { S5, S5, 0, 0 }): SLP_TYPa/SLP_TYPb for soft
	 * off (§7.4.2); the monitor powers off when it sees this type. */
	struct acpi_aml pkg = {0};
	aml_byte(&pkg, 4);
	aml_int(&pkg, LAYOUT_ACPI_S5_TYPE);
	aml_int(&pkg, LAYOUT_ACPI_S5_TYPE);
	aml_int(&pkg, 0);
	aml_int(&pkg, 0);
	aml_byte(a, AML_NAME);
	aml_byte(a, AML_ROOT);
	aml_bytes(a, "_S5_", 4);
	const uint8_t pkg_op = AML_PACKAGE;
	aml_wrap(a, &pkg_op, 1, &pkg);

	/* Scope(\_SB) { Device(PCI0) { ... } } */
	struct acpi_aml sb = {0};
	aml_byte(&sb, AML_ROOT);
	aml_bytes(&sb, "_SB_", 4);
	acpi_dsdt_pci0(&sb);
	const uint8_t scope_op = AML_SCOPE;
	aml_wrap(a, &scope_op, 1, &sb);
}

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)(0x100 - sum);
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* System description table header (§5.2.6); the checksum is set last. */
static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put_le(t + 4, len, 4);
	t[8] = rev;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	put_le(t + 24, 1, 4);
	memcpy(t + 28, "VSSL", 4);
	put_le(t + 32, 1, 4);
}

static void acpi_finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = acpi_checksum(t, len);
}

/* Generic Address Structure (§5.2.3.2) for a system I/O port. */
static void acpi_gas_io(uint8_t *p, uint16_t port, uint8_t bits)
{
	p[0] = ACPI_GAS_SYSTEM_IO;
	p[1] = bits;
	p[2] = 0;
	p[3] = bits <= 8 ? 1 : bits <= 16 ? 2 : 3;
	put_le(p + 4, port, 8);
}

int acpi_build(uint8_t *buf, size_t cap, uint64_t base_gpa, unsigned nr_cpus, size_t *len,
	       uint64_t *rsdp_gpa)
{
	if (nr_cpus == 0 || nr_cpus > ACPI_MAX_CPUS)
		return -EINVAL;
	struct acpi_aml dsdt_body = {0};
	acpi_dsdt_body(&dsdt_body);
	if (dsdt_body.err)
		return dsdt_body.err;

	const size_t rsdp_off = 0, rsdp_len = 36;
	const size_t xsdt_off = 64, xsdt_len = ACPI_HDR_LEN + 2 * 8;
	const size_t facs_off = ALIGN_UP(xsdt_off + xsdt_len, 64), facs_len = 64;
	const size_t fadt_off = facs_off + facs_len, fadt_len = ACPI_FADT_LEN;
	const size_t dsdt_off = ALIGN_UP(fadt_off + fadt_len, 16), dsdt_len = ACPI_HDR_LEN + dsdt_body.len;
	const size_t madt_off = ALIGN_UP(dsdt_off + dsdt_len, 16);
	const size_t madt_len = ACPI_HDR_LEN + 8 + 8 * nr_cpus + 12 + 10;
	const size_t total = madt_off + madt_len;
	if (total > cap)
		return -ENOSPC;
	memset(buf, 0, total);

	/* RSDP (§5.2.5.3), revision 2: the XSDT is the root. */
	uint8_t *rsdp = buf + rsdp_off;
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, ACPI_OEM_ID, 6);
	rsdp[15] = 2;
	put_le(rsdp + 20, rsdp_len, 4);
	put_le(rsdp + 24, base_gpa + xsdt_off, 8);
	rsdp[8] = acpi_checksum(rsdp, 20);
	rsdp[32] = acpi_checksum(rsdp, rsdp_len);

	uint8_t *xsdt = buf + xsdt_off;
	acpi_header(xsdt, "XSDT", (uint32_t)xsdt_len, 1);
	put_le(xsdt + ACPI_HDR_LEN, base_gpa + fadt_off, 8);
	put_le(xsdt + ACPI_HDR_LEN + 8, base_gpa + madt_off, 8);
	acpi_finish(xsdt, (uint32_t)xsdt_len);

	/* FACS (§5.2.10): required outside hardware-reduced mode; no checksum. */
	uint8_t *facs = buf + facs_off;
	memcpy(facs, "FACS", 4);
	put_le(facs + 4, facs_len, 4);
	facs[32] = 2;

	/* FADT (§5.2.9), revision 6. SMI_CMD 0 means the platform is always
	 * in ACPI mode, so the OS never tries to switch. */
	uint8_t *fadt = buf + fadt_off;
	acpi_header(fadt, "FACP", (uint32_t)fadt_len, 6);
	put_le(fadt + 36, base_gpa + facs_off, 4);
	put_le(fadt + ACPI_FADT_OFF_DSDT, base_gpa + dsdt_off, 4);
	put_le(fadt + 46, LAYOUT_IRQ_SCI, 2);
	put_le(fadt + ACPI_FADT_OFF_PM1A_EVT, LAYOUT_PORT_PM1A_EVT, 4);
	put_le(fadt + ACPI_FADT_OFF_PM1A_CNT, LAYOUT_PORT_PM1A_CNT, 4);
	put_le(fadt + 76, LAYOUT_PORT_PM_TMR, 4);
	fadt[88] = 4;   /* PM1_EVT_LEN: status + enable, 2 bytes each */
	fadt[89] = 2;   /* PM1_CNT_LEN */
	fadt[91] = 4;   /* PM_TMR_LEN */
	put_le(fadt + 96, 101, 2);    /* P_LVL2_LAT > 100: C2 not supported */
	put_le(fadt + 98, 1001, 2);   /* P_LVL3_LAT > 1000: C3 not supported */
	fadt[108] = 0x32;             /* CENTURY: CMOS register of the century */
	/* IAPC_BOOT_ARCH (§5.2.9.3): no VGA (bit 2), no MSI problems; no
	 * legacy devices or 8042 advertised, so the guest does not probe
	 * a keyboard we do not have. */
	put_le(fadt + 109, 1u << 2, 2);
	/* Flags (Table 5.10): WBINVD (0), PROC_C1 (2), SLP_BUTTON (5: no
	 * sleep button), FIX_RTC (6), RESET_REG_SUP (10). PWR_BUTTON (4) is 0:
	 * the fixed power button exists, which the control socket presses. */
	put_le(fadt + ACPI_FADT_OFF_FLAGS, (1u << 0) | (1u << 2) | (1u << 5) | (1u << 6) | (1u << 10), 4);
	/* RESET_REG: writing 6 to port 0xcf9 resets the machine. */
	acpi_gas_io(fadt + 116, LAYOUT_PORT_RESET, 8);
	fadt[128] = 0x06;
	put_le(fadt + 132, base_gpa + facs_off, 8);
	put_le(fadt + ACPI_FADT_OFF_X_DSDT, base_gpa + dsdt_off, 8);
	acpi_gas_io(fadt + 148, LAYOUT_PORT_PM1A_EVT, 32);
	acpi_gas_io(fadt + 172, LAYOUT_PORT_PM1A_CNT, 16);
	acpi_gas_io(fadt + 208, LAYOUT_PORT_PM_TMR, 32);
	acpi_finish(fadt, (uint32_t)fadt_len);

	uint8_t *dsdt = buf + dsdt_off;
	acpi_header(dsdt, "DSDT", (uint32_t)dsdt_len, 2);
	memcpy(dsdt + ACPI_HDR_LEN, dsdt_body.buf, dsdt_body.len);
	acpi_finish(dsdt, (uint32_t)dsdt_len);

	/* MADT (§5.2.12): local APIC address, PCAT_COMPAT (8259s present),
	 * one Processor Local APIC per vCPU, the IOAPIC, and the SCI as a
	 * level-triggered active-high ISA interrupt. */
	uint8_t *madt = buf + madt_off;
	acpi_header(madt, "APIC", (uint32_t)madt_len, 4);
	put_le(madt + 36, LAYOUT_LAPIC_ADDR, 4);
	put_le(madt + 40, 1, 4);
	uint8_t *e = madt + 44;
	for (unsigned i = 0; i < nr_cpus; i++, e += 8) {
		e[0] = 0;
		e[1] = 8;
		e[2] = (uint8_t)i;   /* ACPI processor UID */
		e[3] = (uint8_t)i;   /* APIC id, as in CPUID leaf 1 */
		put_le(e + 4, 1, 4); /* enabled */
	}
	e[0] = 1;
	e[1] = 12;
	e[2] = (uint8_t)nr_cpus; /* IOAPIC id after the CPUs' */
	put_le(e + 4, LAYOUT_IOAPIC_ADDR, 4);
	put_le(e + 8, 0, 4);
	e += 12;
	e[0] = 2;
	e[1] = 10;
	e[2] = 0;                /* ISA bus */
	e[3] = LAYOUT_IRQ_SCI;
	put_le(e + 4, LAYOUT_IRQ_SCI, 4);
	put_le(e + 8, 0x0d, 2);  /* active high (01), level (11 << 2) */
	acpi_finish(madt, (uint32_t)madt_len);

	*len = total;
	*rsdp_gpa = base_gpa + rsdp_off;
	return 0;
}
