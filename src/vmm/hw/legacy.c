/* legacy: i8042 reset, reset control register, CMOS RTC and ACPI PM
 * registers. Register meanings: i8042 command 0xfe "pulse output line 0"
 * (the reset line on PCs); 0xcf9 as on PIIX/ICH chipsets; MC146818 CMOS
 * registers 0x00-0x0d and the century at 0x32 (our FADT CENTURY field);
 * PM1 registers per ACPI 6.4 §4.8.3 (PM1_STS, PM1_EN, PM1_CNT) and the
 * 3.579545 MHz PM timer (§4.8.3.3). */
#include "vmm/hw/legacy.h"

#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "vmm/layout.h"

#define I8042_CMD_RESET 0xfe
#define RESETCR_RST_CPU 0x04

enum legacy_event i8042_io(uint16_t port, uint8_t *val, bool is_write)
{
	if (!is_write) {
		/* Status 0: output buffer empty, input buffer empty, so the
		 * guest's wait-for-ready loops end at once. */
		*val = 0;
		return LEGACY_EVENT_NONE;
	}
	if (port == LAYOUT_PORT_I8042_CMD && *val == I8042_CMD_RESET)
		return LEGACY_EVENT_RESET;
	return LEGACY_EVENT_NONE;
}

enum legacy_event resetcr_io(uint8_t *val, bool is_write)
{
	if (!is_write) {
		*val = 0;
		return LEGACY_EVENT_NONE;
	}
	return (*val & RESETCR_RST_CPU) ? LEGACY_EVENT_RESET : LEGACY_EVENT_NONE;
}

void rtc_init(struct rtc *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->cmos[0x0a] = 0x26; /* 32.768 kHz divider, 1024 Hz rate, UIP clear */
	r->cmos[0x0b] = 0x02; /* 24-hour, BCD, no interrupts */
	r->cmos[0x0d] = 0x80; /* VRT: the battery is fine */
}

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

void rtc_io(struct rtc *r, uint16_t port, uint8_t *val, bool is_write)
{
	pthread_mutex_lock(&r->lock);
	if (port == LAYOUT_PORT_RTC) {
		/* Bit 7 is the NMI mask on PCs, not part of the index. */
		if (is_write)
			r->index = *val & 0x7f;
		else
			*val = 0xff;
		goto out;
	}
	if (is_write) {
		/* Time and status C/D stay host-driven; the rest is NVRAM. */
		if (r->index > 0x0d && r->index != 0x32)
			r->cmos[r->index] = *val;
		else if (r->index == 0x0a || r->index == 0x0b)
			r->cmos[r->index] = *val;
		goto out;
	}
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	switch (r->index) {
	case 0x00: *val = bcd(tm.tm_sec); break;
	case 0x02: *val = bcd(tm.tm_min); break;
	case 0x04: *val = bcd(tm.tm_hour); break;
	case 0x06: *val = bcd(tm.tm_wday + 1); break;
	case 0x07: *val = bcd(tm.tm_mday); break;
	case 0x08: *val = bcd(tm.tm_mon + 1); break;
	case 0x09: *val = bcd(tm.tm_year % 100); break;
	case 0x32: *val = bcd((tm.tm_year + 1900) / 100); break;
	case 0x0c: *val = 0; break; /* no interrupt flags pending */
	default: *val = r->cmos[r->index]; break;
	}
out:
	pthread_mutex_unlock(&r->lock);
}

#define PM1_STS_PWRBTN 0x0100
#define PM1_CNT_SCI_EN 0x0001
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_EN 0x2000
#define PM_TIMER_HZ 3579545ull

void acpi_pm_init(struct acpi_pm *pm, void (*set_sci)(void *, bool), void *opaque)
{
	memset(pm, 0, sizeof(*pm));
	pthread_mutex_init(&pm->lock, NULL);
	pm->set_sci = set_sci;
	pm->opaque = opaque;
	pm->start_ns = util_now_ns();
	/* SMI_CMD is 0 in our FADT: the platform is always in ACPI mode, so
	 * SCI_EN reads as set from the start (ACPI 6.4 §4.8.2.5). */
	pm->cnt = PM1_CNT_SCI_EN;
}

/* The SCI is level-triggered: asserted while an enabled status bit is set. */
static void acpi_pm_update_sci(struct acpi_pm *pm)
{
	bool level = (pm->sts & pm->en) != 0;
	if (level != pm->sci_level) {
		pm->sci_level = level;
		if (pm->set_sci)
			pm->set_sci(pm->opaque, level);
	}
}

enum legacy_event acpi_pm_io(struct acpi_pm *pm, unsigned off, void *data, unsigned len, bool is_write)
{
	enum legacy_event ev = LEGACY_EVENT_NONE;
	uint8_t regs[12];
	if (off >= sizeof(regs) || len > sizeof(regs) - off || (len != 1 && len != 2 && len != 4)) {
		if (!is_write)
			memset(data, 0xff, len);
		return ev;
	}
	pthread_mutex_lock(&pm->lock);
	uint64_t ns = util_now_ns() - pm->start_ns;
	uint32_t tmr = (uint32_t)((unsigned __int128)ns * PM_TIMER_HZ / 1000000000ull) & 0xffffff;
	regs[0] = (uint8_t)pm->sts;
	regs[1] = (uint8_t)(pm->sts >> 8);
	regs[2] = (uint8_t)pm->en;
	regs[3] = (uint8_t)(pm->en >> 8);
	regs[4] = (uint8_t)pm->cnt;
	regs[5] = (uint8_t)(pm->cnt >> 8);
	regs[6] = regs[7] = 0;
	for (int i = 0; i < 4; i++)
		regs[8 + i] = (uint8_t)(tmr >> (8 * i));
	if (!is_write) {
		memcpy(data, regs + off, len);
		goto out;
	}
	uint8_t w[12] = {0};
	memcpy(w + off, data, len);
	for (unsigned i = off; i < off + len; i++) {
		switch (i) {
		case 0: pm->sts &= (uint16_t)~w[0]; break;             /* write 1 to clear */
		case 1: pm->sts &= (uint16_t)~(w[1] << 8); break;
		case 2: pm->en = (uint16_t)((pm->en & 0xff00) | w[2]); break;
		case 3: pm->en = (uint16_t)((pm->en & 0x00ff) | w[3] << 8); break;
		case 4: pm->cnt = (uint16_t)((pm->cnt & 0xff00) | w[4] | PM1_CNT_SCI_EN); break;
		case 5: pm->cnt = (uint16_t)((pm->cnt & 0x00ff) | w[5] << 8); break;
		default: break;
		}
	}
	if (off <= 5 && off + len > 5 && (pm->cnt & PM1_CNT_SLP_EN)) {
		unsigned typ = (pm->cnt >> PM1_CNT_SLP_TYP_SHIFT) & 7;
		/* SLP_EN is write-only: it never reads back as set. */
		pm->cnt &= (uint16_t)~PM1_CNT_SLP_EN;
		if (typ == LAYOUT_ACPI_S5_TYPE)
			ev = LEGACY_EVENT_POWEROFF;
	}
	acpi_pm_update_sci(pm);
out:
	pthread_mutex_unlock(&pm->lock);
	return ev;
}

bool acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= PM1_STS_PWRBTN;
	bool enabled = pm->en & PM1_STS_PWRBTN;
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return enabled;
}
