/* log: one logging API with levels for every vessel program.
 * Messages a guest can trigger must go through log_ratelimited() so a hostile
 * guest cannot flood the host's log. */
#ifndef VESSEL_LIB_LOG_H
#define VESSEL_LIB_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Set the program name shown in front of each message and the lowest level
 * printed. Thread-safe to call once at start-up. */
void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info", "debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A token bucket for messages a guest can cause: at most `burst` messages,
 * refilled at `per_sec` per second. Put one static instance per call site. */
struct log_ratelimit {
	uint64_t last_ns;
	double tokens;
	uint32_t suppressed;
};
bool log_ratelimit_allow(struct log_ratelimit *rl, double per_sec, double burst);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* At most 10 messages per second (burst 20) from this call site. */
#define log_ratelimited(level, ...)                                        \
	do {                                                               \
		static struct log_ratelimit rl_;                           \
		if (log_ratelimit_allow(&rl_, 10.0, 20.0))                 \
			log_msg(level, __VA_ARGS__);                       \
	} while (0)

#endif
