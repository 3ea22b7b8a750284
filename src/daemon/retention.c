/* retention: schedule validation, next-run and retention arithmetic, and
 * the replaceable clock (see retention.h). All times are UTC epoch
 * seconds; "daily at HH:MM" means UTC, as the API's timestamps are. */
#include "daemon/retention.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t retention_now(void)
{
	const char *path = getenv("VESSEL_TEST_CLOCK");
	if (path && *path) {
		FILE *f = fopen(path, "r");
		long long t = 0;
		if (f) {
			int n = fscanf(f, "%lld", &t);
			fclose(f);
			if (n == 1 && t > 0)
				return t;
		}
	}
	return (int64_t)time(NULL);
}

int retention_time_parse(const char *s, int64_t *out)
{
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
	if (!end || *end)
		return -EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

void retention_time_format(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int retention_duration_parse(const char *s, int64_t *out)
{
	char *end = NULL;
	if (!s || !(*s >= '0' && *s <= '9'))
		return -EINVAL;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno || end == s || !end[0] || end[1])
		return -EINVAL;
	int64_t unit = end[0] == 'm' ? 60 : end[0] == 'h' ? 3600 : end[0] == 'd' ? 86400 : 0;
	if (!unit)
		return -EINVAL;
	if (n > (unsigned long long)(INT64_MAX / 86400 / 1000))
		return -ERANGE;
	*out = (int64_t)n * unit;
	return 0;
}

int64_t retention_next_run(const struct schedule *s, int64_t after)
{
	if (s->kind == SCHEDULE_EVERY) {
		int64_t t = s->next_run;
		if (t > after)
			return t;
		/* skip the runs missed while vesseld was down: one catch-up */
		int64_t missed = (after - t) / s->every_s + 1;
		return t + missed * s->every_s;
	}
	int64_t day = after - (after % 86400);
	int64_t t = day + (int64_t)s->daily_min * 60;
	return t > after ? t : t + 86400;
}

static int retention_fail(char err[RETENTION_ERR_MAX], const char *msg)
{
	snprintf(err, RETENTION_ERR_MAX, "%s", msg);
	return -EINVAL;
}

int retention_schedule_parse(const json_t *body, int64_t now, struct schedule *out,
			     char err[RETENTION_ERR_MAX])
{
	static const char *const known[] = {"every", "daily_at", "type", "keep_count",
					    "keep_age", "start_at"};
	const char *key;
	json_t *v;
	memset(out, 0, sizeof(*out));
	if (!json_is_object(body))
		return retention_fail(err, "the body must be a JSON object");
	json_object_foreach((json_t *)body, key, v) {
		bool ok = false;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok |= strcmp(key, known[i]) == 0;
		if (!ok) {
			snprintf(err, RETENTION_ERR_MAX,
				 "unknown field '%s'; a schedule takes every or daily_at, type, "
				 "keep_count, keep_age and start_at", key);
			return -EINVAL;
		}
	}
	json_t *every = json_object_get(body, "every"), *daily = json_object_get(body, "daily_at");
	if (!!every == !!daily)
		return retention_fail(err, "give exactly one of every (\"15m\", \"2h\") or "
					   "daily_at (\"HH:MM\", UTC)");
	if (every) {
		const char *s = json_string_value(every);
		int64_t secs = 0;
		if (!s || retention_duration_parse(s, &secs) < 0 || (s[strlen(s) - 1] == 'd'))
			return retention_fail(err, "every must be minutes or hours such as \"15m\" "
						   "or \"2h\"");
		if (secs == 0)
			return retention_fail(err, "every must be more than zero; a zero interval "
						   "would snapshot without pause");
		out->kind = SCHEDULE_EVERY;
		out->every_s = secs;
	} else {
		const char *s = json_string_value(daily);
		unsigned hh, mm;
		char tail;
		if (!s || strlen(s) != 5 || sscanf(s, "%2u:%2u%c", &hh, &mm, &tail) != 2 || hh > 23 ||
		    mm > 59 || s[2] != ':')
			return retention_fail(err, "daily_at must be a UTC time \"HH:MM\" "
						   "between 00:00 and 23:59");
		out->kind = SCHEDULE_DAILY;
		out->daily_min = (int)(hh * 60 + mm);
	}
	json_t *type = json_object_get(body, "type");
	if (type) {
		const char *t = json_string_value(type);
		if (!t || (strcmp(t, "disk") != 0 && strcmp(t, "full") != 0))
			return retention_fail(err, "type must be \"disk\" or \"full\"");
		out->full = strcmp(t, "full") == 0;
	}
	json_t *kc = json_object_get(body, "keep_count");
	if (kc) {
		if (!json_is_integer(kc) || json_integer_value(kc) < 0 ||
		    json_integer_value(kc) > 100000)
			return retention_fail(err, "keep_count must be an integer from 0 (no limit) "
						   "to 100000");
		out->keep_count = (unsigned)json_integer_value(kc);
	}
	out->keep_age_s = RETENTION_DEFAULT_KEEP_AGE_S;
	json_t *ka = json_object_get(body, "keep_age");
	if (ka) {
		const char *s = json_string_value(ka);
		if (!s || (strcmp(s, "0") != 0 && retention_duration_parse(s, &out->keep_age_s) < 0))
			return retention_fail(err, "keep_age must be a duration such as \"7d\", "
						   "\"12h\" or \"0\" (no limit)");
		if (strcmp(s, "0") == 0)
			out->keep_age_s = 0;
	}
	json_t *sa = json_object_get(body, "start_at");
	int64_t start = now;
	if (sa) {
		if (!json_is_string(sa) || retention_time_parse(json_string_value(sa), &start) < 0)
			return retention_fail(err, "start_at must be an RFC 3339 UTC time such as "
						   "\"2026-11-26T07:00:00Z\"");
		if (start < now) {
			char n[32];
			retention_time_format(now, n);
			snprintf(err, RETENTION_ERR_MAX,
				 "start_at %s is in the past (now is %s); give a later time or "
				 "leave it out to start now", json_string_value(sa), n);
			return -EINVAL;
		}
		if (out->kind == SCHEDULE_DAILY)
			return retention_fail(err, "start_at applies to every, not to daily_at");
	}
	if (out->kind == SCHEDULE_EVERY)
		out->next_run = sa ? start : now + out->every_s;
	else
		out->next_run = retention_next_run(out, now);
	return 0;
}

json_t *retention_schedule_json(const struct schedule *s)
{
	char next[32], last[32];
	retention_time_format(s->next_run, next);
	retention_time_format(s->last_run, last);
	json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:I,s:s,s:o}", "id", s->id, "vm", s->vm, "type",
			      s->full ? "full" : "disk", "keep_count", (int)s->keep_count,
			      "keep_age_s", (json_int_t)s->keep_age_s, "next_run", next, "last_run",
			      s->last_run ? json_string(last) : json_null());
	if (s->kind == SCHEDULE_EVERY) {
		json_object_set_new(j, "every_s", json_integer(s->every_s));
	} else {
		char hm[16];
		snprintf(hm, sizeof(hm), "%02d:%02d", s->daily_min / 60, s->daily_min % 60);
		json_object_set_new(j, "daily_at", json_string(hm));
	}
	return j;
}

int retention_schedule_from_json(const json_t *j, struct schedule *out)
{
	memset(out, 0, sizeof(*out));
	const char *id = json_string_value(json_object_get(j, "id"));
	const char *vm = json_string_value(json_object_get(j, "vm"));
	const char *next = json_string_value(json_object_get(j, "next_run"));
	const char *last = json_string_value(json_object_get(j, "last_run"));
	const char *daily = json_string_value(json_object_get(j, "daily_at"));
	if (!id || !vm || !next || retention_time_parse(next, &out->next_run) < 0)
		return -EINVAL;
	snprintf(out->id, sizeof(out->id), "%s", id);
	snprintf(out->vm, sizeof(out->vm), "%s", vm);
	if (last)
		retention_time_parse(last, &out->last_run);
	const char *type = json_string_value(json_object_get(j, "type"));
	out->full = type && strcmp(type, "full") == 0;
	out->keep_count = (unsigned)json_integer_value(json_object_get(j, "keep_count"));
	out->keep_age_s = json_integer_value(json_object_get(j, "keep_age_s"));
	if (daily) {
		out->kind = SCHEDULE_DAILY;
		out->daily_min = atoi(daily) * 60 + atoi(daily + 3);
	} else {
		out->kind = SCHEDULE_EVERY;
		out->every_s = json_integer_value(json_object_get(j, "every_s"));
		if (out->every_s <= 0)
			return -EINVAL;
	}
	return 0;
}

void retention_select(const int64_t *created, size_t n, int64_t now, unsigned keep_count,
		      int64_t keep_age_s, bool *keep)
{
	for (size_t i = 0; i < n; i++) {
		/* rank = how many are newer (ties: the later index is newer) */
		size_t newer = 0;
		for (size_t k = 0; k < n; k++)
			if (created[k] > created[i] || (created[k] == created[i] && k > i))
				newer++;
		bool ok = true;
		if (keep_count && newer >= keep_count)
			ok = false;
		if (keep_age_s && now - created[i] > keep_age_s)
			ok = false;
		keep[i] = ok;
	}
}
