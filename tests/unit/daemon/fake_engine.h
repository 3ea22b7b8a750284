/* fake_engine: engine test double for the daemon API tests (see .c). */
#ifndef VESSEL_TESTS_FAKE_ENGINE_H
#define VESSEL_TESTS_FAKE_ENGINE_H

#include <stdbool.h>

#include "daemon/engine/engine.h"

/* VMs whose name starts with "fail" refuse to start with a QEMU-like error. */
struct engine *fake_engine(void);
/* Make a running fake VM's monitor "die" (a CRASHED event). */
int fake_engine_crash(const char *name);
/* false: the guest ignores the ACPI power button (stop must force). */
extern bool fake_honour_powerdown;
extern unsigned fake_starts;
/* true: started fake VMs report the test process as their monitor pid, so
 * /proc figures and per-vCPU time exist (metrics tests). */
extern bool fake_pid_self;
/* Names of the VMs started, in order (the first FAKE_START_LOG starts). */
#define FAKE_START_LOG 256
extern char fake_start_log[FAKE_START_LOG][64];

#endif
