/* qemu_log: summarise QEMU's stderr for error messages (see qemu_log.h). */
#include "daemon/engine/qemu_log.h"

#include <stdlib.h>
#include <string.h>

/* Does the line [line, line + len) contain needle? (Not memmem: GCC's
 * -Wnonnull misfires on it under -fsanitize=address.) */
static bool qemu_log_line_has(const char *line, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(line + i, needle, n) == 0)
			return true;
	}
	return false;
}

static bool qemu_log_is_noise(const char *line, size_t len)
{
	return qemu_log_line_has(line, len, ": warning: ") ||
	       qemu_log_line_has(line, len, "terminating on signal");
}

char *qemu_log_summary(const char *log, bool last_only)
{
	size_t loglen = strlen(log), len = 0;
	/* Lines are joined with "; " where the input had at least one line
	 * break, so the result is at most twice as long as log. */
	char *out = malloc(2 * loglen + 1);

	if (!out)
		return NULL;
	out[0] = '\0';
	for (int pass = 0; pass < (last_only ? 1 : 2) && len == 0; pass++) {
		const char *p = log;

		while (*p) {
			const char *line = p;
			size_t l = strcspn(p, "\r\n");

			p += l;
			p += strspn(p, "\r\n");
			if (l == 0 || (pass == 0 && qemu_log_is_noise(line, l)))
				continue;
			if (last_only)
				len = 0;
			if (len > 0) {
				memcpy(out + len, "; ", 2);
				len += 2;
			}
			memcpy(out + len, line, l);
			len += l;
			out[len] = '\0';
		}
	}
	return out;
}
