/* legacy: the small PC devices a Linux guest touches besides the UART:
 * the i8042 controller only as far as its reset command (0xfe to port 0x64),
 * the reset control register at 0xcf9, the CMOS RTC (ports 0x70/0x71, time
 * read from the host clock) and the ACPI fixed-hardware registers (PM1a
 * event/control blocks and PM timer, ACPI 6.4 §4.8) through which the guest
 * powers off and sees the power button. */
#ifndef VESSEL_VMM_HW_LEGACY_H
#define VESSEL_VMM_HW_LEGACY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum legacy_event {
	LEGACY_EVENT_NONE = 0,
	LEGACY_EVENT_RESET,      /* the guest asked for a reboot */
	LEGACY_EVENT_POWEROFF,   /* the guest entered S5 */
};

/* i8042: returns LEGACY_EVENT_RESET for the pulse-reset command. */
enum legacy_event i8042_io(uint16_t port, uint8_t *val, bool is_write);
/* 0xcf9: a write with RST_CPU (bit 2) resets. */
enum legacy_event resetcr_io(uint8_t *val, bool is_write);

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
};

void rtc_init(struct rtc *r);
/* port is 0x70 (index) or 0x71 (data). Time registers read the host's UTC
 * clock in BCD, 24-hour mode (status B = 0x02). */
void rtc_io(struct rtc *r, uint16_t port, uint8_t *val, bool is_write);

struct acpi_pm {
	pthread_mutex_t lock;
	uint16_t sts, en, cnt;
	uint64_t start_ns;
	bool sci_level;
	void (*set_sci)(void *opaque, bool level);
	void *opaque;
};

void acpi_pm_init(struct acpi_pm *pm, void (*set_sci)(void *, bool), void *opaque);
/* off is relative to the PM1a event block: 0-1 status, 2-3 enable, 4-5
 * control, 8-11 PM timer; len 1, 2 or 4. */
enum legacy_event acpi_pm_io(struct acpi_pm *pm, unsigned off, void *data, unsigned len, bool is_write);
/* Press the fixed power button (PWRBTN_STS, SCI when enabled). Returns
 * true when the guest had enabled the event, i.e. something listens. */
bool acpi_pm_power_button(struct acpi_pm *pm);

#endif
