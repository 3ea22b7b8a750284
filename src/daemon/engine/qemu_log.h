/* qemu_log: turn what QEMU wrote to stderr (qemu.log) into the sentence a
 * person sees when a start fails or a VM crashes. A pure function over the
 * text so it can be tested without QEMU. */
#ifndef VESSEL_DAEMON_ENGINE_QEMU_LOG_H
#define VESSEL_DAEMON_ENGINE_QEMU_LOG_H

#include <stdbool.h>

/* QEMU's error lines from log, joined with "; ". Warnings (": warning: ",
 * such as the one "-fw_cfg name=etc/sercon-port" always causes) and the
 * "terminating on signal" notice are left out; if nothing else is there
 * they are used instead, except with last_only, which returns only the last
 * error line (for a crash reason, where an old start-up warning would
 * mislead). Returns a malloc'd string, maybe "", or NULL when out of
 * memory. */
char *qemu_log_summary(const char *log, bool last_only);

#endif
