/* Unit tests for src/vmm/hw (16550 UART, i8042/0xcf9 reset, CMOS RTC, ACPI
 * PM registers) and src/vmm/cpuid.c: register behaviour Linux depends on,
 * interrupt line edges, power off through PM1a_CNT with the S5 type from our
 * DSDT, and the per-vCPU CPUID fix-ups. */
#include "vmm/cpuid.h"
#include "vmm/hw/legacy.h"
#include "vmm/hw/uart.h"

#include <time.h>

#include "harness.h"
#include "vmm/layout.h"

static uint8_t txbuf[8192];
static size_t txlen;
static int irq_raises, irq_lowers;
static bool irq_level;

static void tx(void *o, const uint8_t *d, size_t n)
{
	memcpy(txbuf + txlen, d, n);
	txlen += n;
}

static void set_irq(void *o, bool level)
{
	if (level)
		irq_raises++;
	else
		irq_lowers++;
	irq_level = level;
}

static uint8_t urd(struct uart *u, unsigned off)
{
	uint8_t v;
	uart_read(u, off, &v);
	return v;
}

TEST(uart_transmit_and_thre_interrupt)
{
	struct uart u;
	txlen = 0;
	irq_raises = irq_lowers = 0;
	irq_level = false;
	uart_init(&u, tx, set_irq, NULL);
	CHECK_EQ_INT(urd(&u, 5) & 0x60, 0x60);   /* THRE and TEMT */
	CHECK_EQ_INT(urd(&u, 2), 0x01);          /* no interrupt */
	uart_write(&u, 0, 'h');
	uart_write(&u, 0, 'i');
	CHECK_EQ_INT(txlen, 2);
	CHECK(memcmp(txbuf, "hi", 2) == 0);
	CHECK_EQ_INT(irq_raises, 0);             /* IER is 0 */
	uart_write(&u, 1, 0x02);                 /* enable THRI */
	CHECK_EQ_INT(irq_raises, 1);
	CHECK(irq_level);
	CHECK_EQ_INT(urd(&u, 2) & 0x0f, 0x02);   /* THRE, and reading clears it */
	CHECK(!irq_level);
	CHECK_EQ_INT(urd(&u, 2) & 0x0f, 0x01);
	uart_write(&u, 0, '!');                  /* next byte: a new edge */
	CHECK_EQ_INT(irq_raises, 2);
	uart_write(&u, 1, 0);                    /* driver disables THRI */
	CHECK(!irq_level);
	/* FIFO enable shows in IIR (16550A detection) */
	uart_write(&u, 2, 0x01);
	CHECK_EQ_INT(urd(&u, 2) & 0xc0, 0xc0);
	/* divisor latch */
	uart_write(&u, 3, 0x83);
	uart_write(&u, 0, 0x01);
	uart_write(&u, 1, 0x00);
	CHECK_EQ_INT(urd(&u, 0), 0x01);
	uart_write(&u, 3, 0x03);
	CHECK_EQ_INT(txlen, 3);                  /* DLL writes are not output */
	/* scratch */
	uart_write(&u, 7, 0x5a);
	CHECK_EQ_INT(urd(&u, 7), 0x5a);
	uart_destroy(&u);
}

TEST(uart_receive_and_loopback)
{
	struct uart u;
	txlen = 0;
	irq_raises = irq_lowers = 0;
	uart_init(&u, tx, set_irq, NULL);
	uart_write(&u, 1, 0x01);                 /* RDI */
	CHECK_EQ_INT(uart_receive(&u, (const uint8_t *)"ab", 2), 2);
	CHECK(irq_level);
	CHECK_EQ_INT(urd(&u, 5) & 1, 1);         /* data ready */
	CHECK_EQ_INT(urd(&u, 2) & 0x0f, 0x04);
	CHECK_EQ_INT(urd(&u, 0), 'a');
	CHECK_EQ_INT(urd(&u, 0), 'b');
	CHECK_EQ_INT(urd(&u, 5) & 1, 0);
	CHECK(!irq_level);
	CHECK_EQ_INT(urd(&u, 0), 0);             /* empty reads 0 */
	/* the buffer is bounded */
	static uint8_t lots[UART_RX_BUF + 100];
	CHECK_EQ_INT(uart_receive(&u, lots, sizeof(lots)), UART_RX_BUF);
	CHECK_EQ_INT(uart_receive(&u, lots, 1), 0);
	uart_write(&u, 2, 0x03);                 /* clear receive FIFO */
	CHECK_EQ_INT(urd(&u, 5) & 1, 0);
	/* loopback test of Linux's 8250 autoconfig: MSR high nibble 0x90 */
	uart_write(&u, 4, 0x10 | 0x0a);
	CHECK_EQ_INT(urd(&u, 6) & 0xf0, 0x90);
	uart_write(&u, 0, 'z');
	CHECK_EQ_INT(txlen, 0);                  /* looped, not sent */
	CHECK_EQ_INT(urd(&u, 0), 'z');
	uart_write(&u, 4, 0x0b);
	CHECK_EQ_INT(urd(&u, 6) & 0xb0, 0xb0);   /* DCD, DSR, CTS */
	uart_destroy(&u);
}

TEST(reset_paths)
{
	uint8_t v = 0xfe;
	CHECK_EQ_INT(i8042_io(LAYOUT_PORT_I8042_CMD, &v, true), LEGACY_EVENT_RESET);
	v = 0xd1;
	CHECK_EQ_INT(i8042_io(LAYOUT_PORT_I8042_CMD, &v, true), LEGACY_EVENT_NONE);
	v = 0xfe;
	CHECK_EQ_INT(i8042_io(LAYOUT_PORT_I8042_DATA, &v, true), LEGACY_EVENT_NONE);
	CHECK_EQ_INT(i8042_io(LAYOUT_PORT_I8042_CMD, &v, false), LEGACY_EVENT_NONE);
	CHECK_EQ_INT(v & 0x02, 0);               /* input buffer empty */
	v = 0x06;
	CHECK_EQ_INT(resetcr_io(&v, true), LEGACY_EVENT_RESET);
	v = 0x02;
	CHECK_EQ_INT(resetcr_io(&v, true), LEGACY_EVENT_NONE);
}

static uint8_t bcd2bin(uint8_t v)
{
	return (uint8_t)((v >> 4) * 10 + (v & 0xf));
}

TEST(rtc)
{
	struct rtc r;
	rtc_init(&r);
	uint8_t v;
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	v = 0x09 | 0x80;                         /* NMI mask bit is not the index */
	rtc_io(&r, 0x70, &v, true);
	rtc_io(&r, 0x71, &v, false);
	CHECK_EQ_INT(bcd2bin(v), tm.tm_year % 100);
	v = 0x32;
	rtc_io(&r, 0x70, &v, true);
	rtc_io(&r, 0x71, &v, false);
	CHECK_EQ_INT(bcd2bin(v), (tm.tm_year + 1900) / 100);
	v = 0x08;
	rtc_io(&r, 0x70, &v, true);
	rtc_io(&r, 0x71, &v, false);
	CHECK_EQ_INT(bcd2bin(v), tm.tm_mon + 1);
	v = 0x0b;
	rtc_io(&r, 0x70, &v, true);
	rtc_io(&r, 0x71, &v, false);
	CHECK_EQ_INT(v, 0x02);                   /* 24h, BCD */
	v = 0x0d;
	rtc_io(&r, 0x70, &v, true);
	rtc_io(&r, 0x71, &v, false);
	CHECK_EQ_INT(v, 0x80);
	/* NVRAM bytes store, the seconds register does not */
	v = 0x40;
	rtc_io(&r, 0x70, &v, true);
	v = 0x77;
	rtc_io(&r, 0x71, &v, true);
	rtc_io(&r, 0x71, &v, false);
	CHECK_EQ_INT(v, 0x77);
	v = 0x00;
	rtc_io(&r, 0x70, &v, true);
	v = 0x99;
	rtc_io(&r, 0x71, &v, true);
	rtc_io(&r, 0x71, &v, false);
	CHECK(bcd2bin(v) < 61);
}

static int sci_changes;
static bool sci;
static void set_sci(void *o, bool level)
{
	sci_changes++;
	sci = level;
}

TEST(acpi_pm)
{
	struct acpi_pm pm;
	sci_changes = 0;
	acpi_pm_init(&pm, set_sci, NULL);
	uint16_t v = 0;
	acpi_pm_io(&pm, 4, &v, 2, false);
	CHECK_EQ_INT(v & 1, 1);                   /* SCI_EN */
	/* power button before the guest enabled it: status only */
	CHECK(!acpi_pm_power_button(&pm));
	CHECK_EQ_INT(sci_changes, 0);
	acpi_pm_io(&pm, 0, &v, 2, false);
	CHECK_EQ_INT(v & 0x100, 0x100);
	v = 0x100;
	acpi_pm_io(&pm, 0, &v, 2, true);          /* write 1 to clear */
	acpi_pm_io(&pm, 0, &v, 2, false);
	CHECK_EQ_INT(v & 0x100, 0);
	v = 0x100;
	acpi_pm_io(&pm, 2, &v, 2, true);          /* PWRBTN_EN */
	CHECK(acpi_pm_power_button(&pm));
	CHECK(sci);
	v = 0x100;
	acpi_pm_io(&pm, 0, &v, 2, true);
	CHECK(!sci);

	/* S5: SLP_TYP = 5 with SLP_EN; typ alone or other types do nothing */
	v = (uint16_t)(LAYOUT_ACPI_S5_TYPE << 10);
	CHECK_EQ_INT(acpi_pm_io(&pm, 4, &v, 2, true), LEGACY_EVENT_NONE);
	v = (uint16_t)((1 << 10) | 0x2000);
	CHECK_EQ_INT(acpi_pm_io(&pm, 4, &v, 2, true), LEGACY_EVENT_NONE);
	acpi_pm_io(&pm, 4, &v, 2, false);
	CHECK_EQ_INT(v & 0x2000, 0);              /* SLP_EN reads 0 */
	v = (uint16_t)((LAYOUT_ACPI_S5_TYPE << 10) | 0x2000);
	CHECK_EQ_INT(acpi_pm_io(&pm, 4, &v, 2, true), LEGACY_EVENT_POWEROFF);
	/* byte access to the high half, as some guests do */
	uint8_t b = (uint8_t)(((LAYOUT_ACPI_S5_TYPE << 10) | 0x2000) >> 8);
	CHECK_EQ_INT(acpi_pm_io(&pm, 5, &b, 1, true), LEGACY_EVENT_POWEROFF);

	/* PM timer: 24 bits, moving forward at 3.58 MHz */
	uint32_t t1 = 0, t2 = 0;
	acpi_pm_io(&pm, 8, &t1, 4, false);
	struct timespec ts = {0, 2000000};
	nanosleep(&ts, NULL);
	acpi_pm_io(&pm, 8, &t2, 4, false);
	CHECK(t1 <= 0xffffff && t2 <= 0xffffff);
	CHECK(((t2 - t1) & 0xffffff) >= 7000);   /* >= ~2 ms worth */
	/* out of range accesses */
	uint32_t x = 0;
	CHECK_EQ_INT(acpi_pm_io(&pm, 11, &x, 4, true), LEGACY_EVENT_NONE);
	CHECK_EQ_INT(acpi_pm_io(&pm, 12, &x, 1, false), LEGACY_EVENT_NONE);
	CHECK_EQ_INT(x & 0xff, 0xff);
}

TEST(cpuid_per_vcpu)
{
	struct kvm_cpuid_entry2 e[6];
	memset(e, 0, sizeof(e));
	e[0].function = 1;
	e[0].ebx = 0xff00ffff;
	e[0].ecx = 1u << 3;                       /* MONITOR */
	e[1].function = 0xb;
	e[1].index = 0;
	e[2].function = 0xb;
	e[2].index = 1;
	e[3].function = 0xa;
	e[3].eax = 0x07300402;                    /* a PMU */
	e[4].function = 4;
	e[4].eax = (3 << 5) | 0xfc000000u;        /* L3, host says 64 cores */
	e[5].function = 0x80000008;
	e[5].ecx = 0x7;
	cpuid_setup(e, 6, 3, 4);
	CHECK_EQ_INT(e[0].ebx >> 24, 3);          /* APIC id */
	CHECK_EQ_INT((e[0].ebx >> 16) & 0xff, 4);
	CHECK_EQ_INT(e[0].ebx & 0xffff, 0xffff);
	CHECK(e[0].ecx & (1u << 31));             /* hypervisor */
	CHECK_EQ_INT(e[0].ecx & (1u << 3), 0);
	CHECK(e[0].edx & (1u << 28));
	CHECK_EQ_INT(e[1].edx, 3);
	CHECK_EQ_INT(e[1].ebx, 1);
	CHECK_EQ_INT(e[2].ebx, 4);
	CHECK_EQ_INT(e[2].eax, 2);
	CHECK_EQ_INT((e[2].ecx >> 8) & 0xff, 2);  /* core level */
	CHECK_EQ_INT(e[3].eax, 0);
	CHECK_EQ_INT(e[4].eax >> 26, 3);
	CHECK_EQ_INT((e[4].eax >> 14) & 0xfff, 3);
	CHECK_EQ_INT(e[5].ecx & 0xff, 3);
	CHECK_EQ_INT((e[5].ecx >> 12) & 0xf, 2);
}

HARNESS_MAIN
