/* sandbox: what vessel-vmm gives up once the VM is built (DESIGN.md,
 * "Processes and trust"): root, by switching to --user, and most system
 * calls, by a seccomp allow-list that kills the process on anything else. */
#ifndef VESSEL_VMM_SANDBOX_H
#define VESSEL_VMM_SANDBOX_H

#include <stdbool.h>

/* Drop to user (when not NULL) and install the filter (when seccomp).
 * Returns 0 or a negative errno after logging what failed. */
int sandbox_enter(const char *user, bool seccomp);

#endif
