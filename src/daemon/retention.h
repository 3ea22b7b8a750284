/* retention: snapshot schedules and retention policy arithmetic, kept pure
 * (no I/O, time passed in) so the unit tests can check it exactly, plus
 * vesseld's clock, which a test may replace (docs/backups.md "Test clock"). */
#ifndef VESSEL_DAEMON_RETENTION_H
#define VESSEL_DAEMON_RETENTION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RETENTION_ERR_MAX 256
#define RETENTION_DEFAULT_KEEP_AGE_S (7 * 86400) /* the runbook's "keep 7 days" */

enum schedule_kind {
	SCHEDULE_EVERY = 0, /* every every_s seconds from start */
	SCHEDULE_DAILY,     /* every day at daily_min minutes after 00:00 UTC */
};

struct schedule {
	char id[32];
	char vm[64];
	enum schedule_kind kind;
	int64_t every_s;
	int daily_min;
	bool full;            /* full snapshots (disk + memory) instead of disk-only */
	unsigned keep_count;  /* 0 = no limit by count */
	int64_t keep_age_s;   /* 0 = no limit by age */
	int64_t next_run;     /* epoch seconds */
	int64_t last_run;     /* 0 = never */
};

/* The clock: time(NULL), or, when the environment variable
 * VESSEL_TEST_CLOCK names a file, the epoch seconds written in it (a test
 * advances vesseld's time by rewriting the file). */
int64_t retention_now(void);

/* "2026-11-26T07:00:00Z" <-> epoch seconds. */
int retention_time_parse(const char *s, int64_t *out);
void retention_time_format(int64_t t, char out[32]);
/* "30m", "2h", "7d" (minutes, hours, days) -> seconds; -EINVAL or -ERANGE. */
int retention_duration_parse(const char *s, int64_t *out);

/* Validate a schedule from an API body ({"every": "15m"} or {"daily_at":
 * "HH:MM"}, "type", "keep_count", "keep_age", "start_at") at time now.
 * Fills everything but id and vm. On error returns -EINVAL with a sentence
 * naming the field in err. */
int retention_schedule_parse(const json_t *body, int64_t now, struct schedule *out,
			     char err[RETENTION_ERR_MAX]);
json_t *retention_schedule_json(const struct schedule *s);
int retention_schedule_from_json(const json_t *j, struct schedule *out);
/* The first run time strictly after `after`. */
int64_t retention_next_run(const struct schedule *s, int64_t after);

/* Which of n snapshots (created[i], epoch seconds) a policy keeps at `now`:
 * a snapshot is kept when it is among the keep_count newest (0 = any
 * number) and no older than keep_age_s (0 = any age). keep[i] is set. */
void retention_select(const int64_t *created, size_t n, int64_t now, unsigned keep_count,
		      int64_t keep_age_s, bool *keep);

#endif
