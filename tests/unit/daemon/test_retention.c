/* test_retention: schedule validation, next-run arithmetic, retention
 * selection and the test clock (retention.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/retention.h"
#include "harness.h"

#define T0 1798761600 /* 2027-01-01T00:00:00Z */

static int parse(const char *text, struct schedule *s, char *err)
{
	json_t *j = json_loads(text, 0, NULL);
	int r = retention_schedule_parse(j, T0, s, err);
	json_decref(j);
	return r;
}

TEST(time_and_duration)
{
	int64_t t;
	char buf[32];
	CHECK_EQ_INT(retention_time_parse("2027-01-01T00:00:00Z", &t), 0);
	CHECK_EQ_INT(t, T0);
	retention_time_format(T0 + 3661, buf);
	CHECK_STR(buf, "2027-01-01T01:01:01Z");
	CHECK_EQ_INT(retention_time_parse("2027-01-01 00:00", &t), -EINVAL);
	CHECK_EQ_INT(retention_duration_parse("15m", &t), 0);
	CHECK_EQ_INT(t, 900);
	CHECK_EQ_INT(retention_duration_parse("2h", &t), 0);
	CHECK_EQ_INT(t, 7200);
	CHECK_EQ_INT(retention_duration_parse("7d", &t), 0);
	CHECK_EQ_INT(t, 7 * 86400);
	CHECK_EQ_INT(retention_duration_parse("5", &t), -EINVAL);
	CHECK_EQ_INT(retention_duration_parse("-5m", &t), -EINVAL);
	CHECK_EQ_INT(retention_duration_parse("5w", &t), -EINVAL);
	CHECK_EQ_INT(retention_duration_parse("99999999999999999d", &t), -ERANGE);
}

TEST(schedule_validation)
{
	struct schedule s;
	char err[RETENTION_ERR_MAX];
	CHECK_EQ_INT(parse("{\"every\":\"30m\"}", &s, err), 0);
	CHECK_EQ_INT(s.kind, SCHEDULE_EVERY);
	CHECK_EQ_INT(s.every_s, 1800);
	CHECK_EQ_INT(s.next_run, T0 + 1800);
	CHECK_EQ_INT(s.keep_age_s, 7 * 86400); /* default: keep 7 days */
	CHECK_EQ_INT(s.keep_count, 0);
	CHECK(!s.full);
	CHECK_EQ_INT(parse("{\"every\":\"0m\"}", &s, err), -EINVAL);
	CHECK(strstr(err, "zero") != NULL);
	CHECK_EQ_INT(parse("{\"every\":\"1d\"}", &s, err), -EINVAL);
	CHECK_EQ_INT(parse("{\"every\":\"1h\",\"start_at\":\"2026-12-31T23:59:59Z\"}", &s, err),
		     -EINVAL);
	CHECK(strstr(err, "past") != NULL);
	CHECK_EQ_INT(parse("{\"every\":\"1h\",\"start_at\":\"2027-01-02T00:00:00Z\"}", &s, err), 0);
	CHECK_EQ_INT(s.next_run, T0 + 86400);
	CHECK_EQ_INT(parse("{\"daily_at\":\"03:30\",\"type\":\"full\",\"keep_count\":5,"
			   "\"keep_age\":\"0\"}", &s, err), 0);
	CHECK_EQ_INT(s.kind, SCHEDULE_DAILY);
	CHECK_EQ_INT(s.next_run, T0 + 3 * 3600 + 1800);
	CHECK(s.full);
	CHECK_EQ_INT(s.keep_count, 5);
	CHECK_EQ_INT(s.keep_age_s, 0);
	CHECK_EQ_INT(parse("{\"daily_at\":\"24:00\"}", &s, err), -EINVAL);
	CHECK_EQ_INT(parse("{\"daily_at\":\"3:30\"}", &s, err), -EINVAL);
	CHECK_EQ_INT(parse("{\"daily_at\":\"03:60\"}", &s, err), -EINVAL);
	CHECK_EQ_INT(parse("{}", &s, err), -EINVAL);
	CHECK_EQ_INT(parse("{\"every\":\"1h\",\"daily_at\":\"01:00\"}", &s, err), -EINVAL);
	CHECK_EQ_INT(parse("{\"every\":\"1h\",\"keep_count\":-1}", &s, err), -EINVAL);
	CHECK_EQ_INT(parse("{\"every\":\"1h\",\"type\":\"memory\"}", &s, err), -EINVAL);
	CHECK_EQ_INT(parse("{\"every\":\"1h\",\"colour\":1}", &s, err), -EINVAL);
	CHECK(strstr(err, "colour") != NULL);
	CHECK_EQ_INT(parse("{\"daily_at\":\"01:00\",\"start_at\":\"2027-01-02T00:00:00Z\"}", &s, err),
		     -EINVAL);
}

TEST(next_run)
{
	struct schedule s;
	char err[RETENTION_ERR_MAX];
	CHECK_EQ_INT(parse("{\"every\":\"1h\"}", &s, err), 0);
	/* due at T0+1h; asked at T0+1h: the next is T0+2h */
	CHECK_EQ_INT(retention_next_run(&s, T0 + 3600), T0 + 7200);
	/* runs missed while down are skipped, not replayed */
	CHECK_EQ_INT(retention_next_run(&s, T0 + 5 * 3600 + 10), T0 + 6 * 3600);
	CHECK_EQ_INT(retention_next_run(&s, T0 + 10), T0 + 3600);
	CHECK_EQ_INT(parse("{\"daily_at\":\"00:00\"}", &s, err), 0);
	CHECK_EQ_INT(s.next_run, T0 + 86400);
	CHECK_EQ_INT(retention_next_run(&s, T0 + 86400), T0 + 2 * 86400);
	/* json round trip keeps everything */
	struct schedule back;
	snprintf(s.id, sizeof(s.id), "s1");
	snprintf(s.vm, sizeof(s.vm), "vm-1");
	s.keep_count = 4;
	json_t *j = retention_schedule_json(&s);
	CHECK_EQ_INT(retention_schedule_from_json(j, &back), 0);
	CHECK(memcmp(&s, &back, sizeof(s)) == 0);
	json_decref(j);
}

TEST(retention_select)
{
	int64_t t[] = {T0 + 3600, T0 + 2 * 3600, T0 + 3 * 3600, T0 + 4 * 3600, T0 + 7 * 3600};
	bool keep[5];
	/* count only: the 3 newest */
	retention_select(t, 5, T0 + 8 * 3600, 3, 0, keep);
	CHECK(!keep[0] && !keep[1] && keep[2] && keep[3] && keep[4]);
	/* age only: at most 5 h old at T0+8h (T0+3h is exactly 5 h: kept) */
	retention_select(t, 5, T0 + 8 * 3600, 0, 5 * 3600, keep);
	CHECK(!keep[0] && !keep[1] && keep[2] && keep[3] && keep[4]);
	retention_select(t, 5, T0 + 8 * 3600 + 1, 0, 5 * 3600, keep);
	CHECK(!keep[2] && keep[3]);
	/* both: a snapshot must pass both */
	retention_select(t, 5, T0 + 9 * 3600, 4, 5 * 3600, keep);
	CHECK(!keep[0] && !keep[1] && !keep[2] && keep[3] && keep[4]);
	/* no limits keeps everything; unsorted input works */
	int64_t u[] = {T0 + 50, T0 + 10, T0 + 30};
	bool k2[3];
	retention_select(u, 3, T0 + 1000000, 0, 0, k2);
	CHECK(k2[0] && k2[1] && k2[2]);
	retention_select(u, 3, T0 + 100, 1, 0, k2);
	CHECK(k2[0] && !k2[1] && !k2[2]);
	/* the default 7 days */
	int64_t w[] = {T0, T0 + 86400};
	bool k3[2];
	retention_select(w, 2, T0 + 7 * 86400 + 1, 0, RETENTION_DEFAULT_KEEP_AGE_S, k3);
	CHECK(!k3[0] && k3[1]);
}

TEST(test_clock)
{
	char path[] = "/tmp/vessel-test-clock-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK_EQ_INT(write(fd, "1798761600\n", 11), 11);
	close(fd);
	setenv("VESSEL_TEST_CLOCK", path, 1);
	CHECK_EQ_INT(retention_now(), T0);
	unlink(path);
	/* unreadable: the real time */
	CHECK(retention_now() > 1700000000);
	unsetenv("VESSEL_TEST_CLOCK");
	CHECK(retention_now() > 1700000000);
}

HARNESS_MAIN
