/* Unit tests for src/vmm/acpi.c: every table's checksum, the XSDT links,
 * the MADT's one local APIC per vCPU, the FADT's PM registers, and the DSDT
 * disassembled by iasl when it is installed. */
#include "vmm/acpi.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "harness.h"
#include "vmm/layout.h"

static uint8_t buf[LAYOUT_ACPI_MAX];
static const uint64_t base = LAYOUT_ACPI_ADDR;

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* The table at guest address gpa, checked to lie inside what was built. */
static const uint8_t *table_at(uint64_t gpa, size_t len, const char *sig)
{
	if (gpa < base || gpa - base + 36 > len)
		return NULL;
	const uint8_t *t = buf + (gpa - base);
	if (memcmp(t, sig, 4) != 0 || gpa - base + rd32(t + 4) > len)
		return NULL;
	return t;
}

static void check_tables(unsigned cpus)
{
	size_t len = 0;
	uint64_t rsdp = 0;
	CHECK_EQ_INT(acpi_build(buf, sizeof(buf), base, cpus, &len, &rsdp), 0);
	CHECK(len > 0 && len <= sizeof(buf));
	CHECK_EQ_INT(rsdp, base);
	const uint8_t *r = buf + (rsdp - base);
	CHECK(memcmp(r, "RSD PTR ", 8) == 0);
	CHECK_EQ_INT(sum(r, 20), 0);
	CHECK_EQ_INT(sum(r, 36), 0);
	CHECK_EQ_INT(r[15], 2);

	const uint8_t *xsdt = table_at(rd64(r + 24), len, "XSDT");
	CHECK(xsdt != NULL);
	if (!xsdt)
		return;
	CHECK_EQ_INT(sum(xsdt, rd32(xsdt + 4)), 0);
	unsigned n = (rd32(xsdt + 4) - 36) / 8;
	CHECK_EQ_INT(n, 2);
	const uint8_t *fadt = table_at(rd64(xsdt + 36), len, "FACP");
	const uint8_t *madt = table_at(rd64(xsdt + 44), len, "APIC");
	CHECK(fadt && madt);
	if (!fadt || !madt)
		return;
	CHECK_EQ_INT(rd32(fadt + 4), ACPI_FADT_LEN);
	CHECK_EQ_INT(sum(fadt, rd32(fadt + 4)), 0);
	CHECK_EQ_INT(rd32(fadt + ACPI_FADT_OFF_PM1A_EVT), LAYOUT_PORT_PM1A_EVT);
	CHECK_EQ_INT(rd32(fadt + ACPI_FADT_OFF_PM1A_CNT), LAYOUT_PORT_PM1A_CNT);
	/* HW_REDUCED_ACPI (bit 20) must be off: we use PM1a_CNT. */
	CHECK_EQ_INT(rd32(fadt + ACPI_FADT_OFF_FLAGS) & (1u << 20), 0);
	CHECK_EQ_INT(rd64(fadt + ACPI_FADT_OFF_X_DSDT), rd32(fadt + ACPI_FADT_OFF_DSDT));
	const uint8_t *dsdt = table_at(rd32(fadt + ACPI_FADT_OFF_DSDT), len, "DSDT");
	CHECK(dsdt != NULL);
	if (dsdt)
		CHECK_EQ_INT(sum(dsdt, rd32(dsdt + 4)), 0);
	const uint8_t *facs = table_at(rd32(fadt + 36), len, "FACS");
	CHECK(facs != NULL);

	CHECK_EQ_INT(sum(madt, rd32(madt + 4)), 0);
	CHECK_EQ_INT(rd32(madt + 36), LAYOUT_LAPIC_ADDR);
	unsigned lapics = 0, ioapics = 0, isos = 0;
	uint32_t end = rd32(madt + 4);
	for (uint32_t off = 44; off + 2 <= end;) {
		const uint8_t *e = madt + off;
		CHECK(e[1] >= 2);
		if (e[1] < 2)
			break;
		if (e[0] == 0) {
			CHECK_EQ_INT(e[3], lapics);        /* APIC id = vCPU index */
			CHECK_EQ_INT(rd32(e + 4) & 1, 1);  /* enabled */
			lapics++;
		} else if (e[0] == 1) {
			CHECK_EQ_INT(rd32(e + 4), LAYOUT_IOAPIC_ADDR);
			ioapics++;
		} else if (e[0] == 2) {
			isos++;
		}
		off += e[1];
	}
	CHECK_EQ_INT(lapics, cpus);
	CHECK_EQ_INT(ioapics, 1);
	CHECK_EQ_INT(isos, 1);
}

TEST(tables_1cpu)
{
	check_tables(1);
}

TEST(tables_4cpu)
{
	check_tables(4);
}

TEST(tables_max_cpu)
{
	check_tables(ACPI_MAX_CPUS);
}

TEST(bad_input)
{
	size_t len;
	uint64_t rsdp;
	CHECK_EQ_INT(acpi_build(buf, sizeof(buf), base, 0, &len, &rsdp), -EINVAL);
	CHECK_EQ_INT(acpi_build(buf, sizeof(buf), base, ACPI_MAX_CPUS + 1, &len, &rsdp), -EINVAL);
	CHECK_EQ_INT(acpi_build(buf, 100, base, 1, &len, &rsdp), -ENOSPC);
}

TEST(eisaid)
{
	CHECK_EQ_INT(acpi_eisaid("PNP0A03"), 0x030ad041);
	CHECK_EQ_INT(acpi_eisaid("PNP0501"), 0x0105d041);
}

TEST(dsdt_disassembles)
{
	if (access("/usr/bin/iasl", X_OK) != 0)
		SKIP("iasl (acpica-tools) not installed");
	size_t len;
	uint64_t rsdp;
	CHECK_EQ_INT(acpi_build(buf, sizeof(buf), base, 2, &len, &rsdp), 0);
	const uint8_t *xsdt = buf + (rd64(buf + 24) - base);
	const uint8_t *fadt = buf + (rd64(xsdt + 36) - base);
	const uint8_t *dsdt = buf + (rd32(fadt + ACPI_FADT_OFF_DSDT) - base);
	char dir[] = "/tmp/vessel-acpi-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[128], cmd[512];
	snprintf(path, sizeof(path), "%s/dsdt.dat", dir);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (!f)
		return;
	fwrite(dsdt, 1, rd32(dsdt + 4), f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d dsdt.dat >log 2>&1 && grep -q 'PNP0A03' dsdt.dsl && "
		 "grep -q '_S5_' dsdt.dsl && grep -q 'DWordMemory' dsdt.dsl && grep -q 'WordBusNumber' dsdt.dsl && "
		 "! grep -qi 'error' log", dir);
	int rc = system(cmd);
	if (rc != 0) {
		snprintf(cmd, sizeof(cmd), "cat %s/log %s/dsdt.dsl >&2", dir, dir);
		CHECK(system(cmd) >= 0);
	}
	CHECK_EQ_INT(rc, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

HARNESS_MAIN
