/* Unit tests for auth.c: the token format (generate, parse, hash, check
 * with expiry and revocation), expiry parsing, roles and project scope,
 * and the brute-force limiter driven by a fake clock. */
#include <errno.h>
#include <string.h>

#include "daemon/auth.h"
#include "harness.h"

TEST(token_roundtrip)
{
	char id[AUTH_ID_LEN + 1], tok[AUTH_TOKEN_MAX], hash[AUTH_HEX_MAX];
	char pid[AUTH_ID_LEN + 1], secret[AUTH_SECRET_LEN + 1], h2[AUTH_HEX_MAX];
	CHECK_EQ_INT(auth_token_generate(id, tok, hash), 0);
	CHECK_EQ_INT(strlen(tok), 4 + 16 + 1 + 64);
	CHECK(strncmp(tok, "vst_", 4) == 0);
	CHECK_EQ_INT(auth_token_parse(tok, pid, secret), 0);
	CHECK_STR(pid, id);
	/* the stored hash is SHA-256 of the secret part, never the secret */
	auth_secret_hash(secret, h2);
	CHECK_STR(h2, hash);
	CHECK(strstr(tok, hash) == NULL);
	/* two tokens never share id or secret */
	char id2[AUTH_ID_LEN + 1], tok2[AUTH_TOKEN_MAX], hash2[AUTH_HEX_MAX];
	CHECK_EQ_INT(auth_token_generate(id2, tok2, hash2), 0);
	CHECK(strcmp(id, id2) != 0 && strcmp(hash, hash2) != 0);
}

TEST(secret_hash_known_answer)
{
	/* FIPS 180-2 test vector: SHA-256("abc") */
	char h[AUTH_HEX_MAX];
	auth_secret_hash("abc", h);
	CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(token_parse_rejects)
{
	char id[AUTH_ID_LEN + 1], s[AUTH_SECRET_LEN + 1];
	const char *good = "vst_0123456789abcdef_"
			   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	CHECK_EQ_INT(auth_token_parse(good, id, s), 0);
	CHECK_STR(id, "0123456789abcdef");
	const char *bad[] = {
		"", "vst_", "admin", NULL,
		"vst_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"vst_0123456789ABCDEF_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"xst_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"vst_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
		"vst_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
		"vst_0123456789abcde_g0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(auth_token_parse(bad[i], id, s), -EINVAL);
}

TEST(token_check_expiry_and_revocation)
{
	struct token_record t = {0};
	auth_secret_hash("s3cret", t.hash);
	t.created = 1000;
	CHECK_EQ_INT(auth_token_check(&t, "s3cret", 5000), AUTH_OK);
	CHECK_EQ_INT(auth_token_check(&t, "s3creT", 5000), AUTH_INVALID);
	CHECK_EQ_INT(auth_token_check(&t, "", 5000), AUTH_INVALID);
	t.expires = 2000;
	CHECK_EQ_INT(auth_token_check(&t, "s3cret", 1999), AUTH_OK);
	CHECK_EQ_INT(auth_token_check(&t, "s3cret", 2000), AUTH_EXPIRED);
	/* only the holder of the secret learns that it expired */
	CHECK_EQ_INT(auth_token_check(&t, "guess", 2000), AUTH_INVALID);
	t.revoked = 1500;
	CHECK_EQ_INT(auth_token_check(&t, "s3cret", 1600), AUTH_REVOKED);
	CHECK_EQ_INT(auth_token_check(&t, "guess", 1600), AUTH_INVALID);
}

TEST(expiry_parse)
{
	char err[AUTH_ERR_MAX];
	int64_t now = 1800000000, t = 0; /* 2027-01-15T08:00:00Z */
	CHECK_EQ_INT(auth_expiry_parse("24h", now, &t, err), 0);
	CHECK_EQ_INT(t, now + 86400);
	CHECK_EQ_INT(auth_expiry_parse("90s", now, &t, err), 0);
	CHECK_EQ_INT(t, now + 90);
	CHECK_EQ_INT(auth_expiry_parse("30m", now, &t, err), 0);
	CHECK_EQ_INT(t, now + 1800);
	CHECK_EQ_INT(auth_expiry_parse("7d", now, &t, err), 0);
	CHECK_EQ_INT(t, now + 7 * 86400);
	CHECK_EQ_INT(auth_expiry_parse("2027-02-01", now, &t, err), 0);
	CHECK_EQ_INT(t, 1801440000);
	CHECK_EQ_INT(auth_expiry_parse("2027-02-01T12:00:00Z", now, &t, err), 0);
	CHECK_EQ_INT(t, 1801440000 + 12 * 3600);
	const char *bad[] = {"", "h", "0h", "-1h", "24x", "24 h", "tomorrow", "2027-02-30x",
			     "2027-02-01T12:00:00", "2027-02-01T12:00:00+01:00", "2020-01-01",
			     "4000d", "2099-01-01"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK_EQ_INT(auth_expiry_parse(bad[i], now, &t, err), -EINVAL);
		CHECK(strlen(err) > 20);
	}
	CHECK(strstr((auth_expiry_parse("2020-01-01", now, &t, err), err), "past") != NULL);
}

TEST(roles)
{
	enum auth_role r;
	CHECK_EQ_INT(auth_role_parse("admin", &r), 0);
	CHECK_EQ_INT(r, AUTH_ROLE_ADMIN);
	CHECK_EQ_INT(auth_role_parse("operator", &r), 0);
	CHECK_EQ_INT(auth_role_parse("viewer", &r), 0);
	CHECK_EQ_INT(auth_role_parse("default", &r), -EINVAL);
	CHECK_EQ_INT(auth_role_parse("root", &r), -EINVAL);
	CHECK_EQ_INT(auth_role_parse("Admin", &r), -EINVAL);
	CHECK_EQ_INT(auth_route_role("GET", AUTH_ROLE_DEFAULT), AUTH_ROLE_VIEWER);
	CHECK_EQ_INT(auth_route_role("POST", AUTH_ROLE_DEFAULT), AUTH_ROLE_OPERATOR);
	CHECK_EQ_INT(auth_route_role("DELETE", AUTH_ROLE_DEFAULT), AUTH_ROLE_OPERATOR);
	CHECK_EQ_INT(auth_route_role("GET", AUTH_ROLE_ADMIN), AUTH_ROLE_ADMIN);
	CHECK(auth_role_allows(AUTH_ROLE_ADMIN, AUTH_ROLE_OPERATOR));
	CHECK(auth_role_allows(AUTH_ROLE_OPERATOR, AUTH_ROLE_OPERATOR));
	CHECK(!auth_role_allows(AUTH_ROLE_VIEWER, AUTH_ROLE_OPERATOR));
	CHECK(!auth_role_allows(AUTH_ROLE_OPERATOR, AUTH_ROLE_ADMIN));
	/* an unauthenticated identity has no role at all */
	CHECK(!auth_role_allows(AUTH_ROLE_DEFAULT, AUTH_ROLE_VIEWER));
}

TEST(scope)
{
	struct auth_identity all = {.role = AUTH_ROLE_OPERATOR};
	struct auth_identity team = {.role = AUTH_ROLE_OPERATOR, .project = "team-a"};
	struct auth_identity dflt = {.role = AUTH_ROLE_VIEWER, .project = "default"};
	CHECK(auth_scope_allows(&all, NULL));
	CHECK(auth_scope_allows(&all, "team-b"));
	CHECK(auth_scope_allows(&team, "team-a"));
	CHECK(!auth_scope_allows(&team, "team-b"));
	CHECK(!auth_scope_allows(&team, NULL));
	CHECK(!auth_scope_allows(&team, ""));
	/* a VM without a project is in "default" */
	CHECK(auth_scope_allows(&dflt, NULL));
	CHECK(auth_scope_allows(&dflt, ""));
	CHECK(!auth_scope_allows(&dflt, "team-a"));
}

TEST(token_table)
{
	struct auth_tokens *c = NULL;
	struct token_record t = {0}, out;
	CHECK_EQ_INT(auth_tokens_new(&c), 0);
	CHECK_EQ_INT(auth_tokens_get(c, "0000000000000000", &out), -ENOENT);
	/* many ids in random order stay findable */
	for (unsigned i = 0; i < 100; i++) {
		snprintf(t.id, sizeof(t.id), "%016x", (i * 7919u) % 1000u);
		snprintf(t.name, sizeof(t.name), "n%u", i);
		t.last_used = 0;
		CHECK_EQ_INT(auth_tokens_put(c, &t), 0);
	}
	for (unsigned i = 0; i < 100; i++) {
		char id[17], name[16];
		snprintf(id, sizeof(id), "%016x", (i * 7919u) % 1000u);
		snprintf(name, sizeof(name), "n%u", i);
		CHECK_EQ_INT(auth_tokens_get(c, id, &out), 0);
		CHECK_STR(out.name, name);
	}
	/* replace: a revocation is seen at once */
	snprintf(t.id, sizeof(t.id), "%016x", 0u);
	CHECK_EQ_INT(auth_tokens_get(c, t.id, &out), 0);
	out.revoked = 5;
	CHECK_EQ_INT(auth_tokens_put(c, &out), 0);
	CHECK_EQ_INT(auth_tokens_get(c, t.id, &out), 0);
	CHECK_EQ_INT(out.revoked, 5);
	/* a use is written to the store at most once a minute */
	CHECK(auth_tokens_touch(c, t.id, 1000));
	CHECK(!auth_tokens_touch(c, t.id, 1030));
	CHECK_EQ_INT(auth_tokens_get(c, t.id, &out), 0);
	CHECK_EQ_INT(out.last_used, 1030);
	CHECK(auth_tokens_touch(c, t.id, 1060));
	CHECK(!auth_tokens_touch(c, "ffffffffffffffff", 2000));
	auth_tokens_free(c);
}

static uint64_t fake_ms;
static uint64_t fake_clock(void *arg)
{
	return fake_ms;
}

TEST(limiter)
{
	struct auth_limits lim = {.free_failures = 2, .delay_ms = 1000, .lockout_after = 5,
				  .lockout_ms = 60000};
	struct auth_limiter *l = NULL;
	unsigned retry = 0, fails;
	bool locked;
	fake_ms = 1000000;
	CHECK_EQ_INT(auth_limiter_new(&lim, fake_clock, NULL, &l), 0);
	CHECK_EQ_INT(auth_limiter_check(l, "10.0.0.1", &retry), 0);
	/* two free failures: no delay */
	auth_limiter_fail(l, "10.0.0.1", &fails, &locked);
	auth_limiter_fail(l, "10.0.0.1", &fails, &locked);
	CHECK_EQ_INT(fails, 2);
	CHECK_EQ_INT(auth_limiter_check(l, "10.0.0.1", &retry), 0);
	/* third: 1 s, fourth: 2 s (the delay grows) */
	auth_limiter_fail(l, "10.0.0.1", &fails, &locked);
	CHECK_EQ_INT(auth_limiter_check(l, "10.0.0.1", &retry), -EAGAIN);
	CHECK_EQ_INT(retry, 1);
	/* another address is not affected */
	CHECK_EQ_INT(auth_limiter_check(l, "10.0.0.2", &retry), 0);
	fake_ms += 1000;
	CHECK_EQ_INT(auth_limiter_check(l, "10.0.0.1", &retry), 0);
	auth_limiter_fail(l, "10.0.0.1", &fails, &locked);
	CHECK_EQ_INT(auth_limiter_check(l, "10.0.0.1", &retry), -EAGAIN);
	CHECK_EQ_INT(retry, 2);
	CHECK(!locked);
	fake_ms += 2000;
	/* fifth: locked out for 60 s */
	auth_limiter_fail(l, "10.0.0.1", &fails, &locked);
	CHECK(locked);
	CHECK_EQ_INT(fails, 5);
	CHECK_EQ_INT(auth_limiter_check(l, "10.0.0.1", &retry), -EAGAIN);
	CHECK_EQ_INT(retry, 60);
	fake_ms += 59000;
	CHECK_EQ_INT(auth_limiter_check(l, "10.0.0.1", &retry), -EAGAIN);
	CHECK_EQ_INT(retry, 1);
	/* after the lockout the address starts clean: a success is
	 * unaffected, and a new failure is a free one again */
	fake_ms += 1000;
	CHECK_EQ_INT(auth_limiter_check(l, "10.0.0.1", &retry), 0);
	auth_limiter_fail(l, "10.0.0.1", &fails, &locked);
	CHECK_EQ_INT(fails, 1);
	CHECK_EQ_INT(auth_limiter_check(l, "10.0.0.1", &retry), 0);
	/* a success forgets the failures */
	auth_limiter_fail(l, "10.0.0.1", &fails, &locked);
	auth_limiter_success(l, "10.0.0.1");
	auth_limiter_fail(l, "10.0.0.1", &fails, &locked);
	CHECK_EQ_INT(fails, 1);
	/* failures long ago are forgotten */
	fake_ms += 61000;
	auth_limiter_fail(l, "10.0.0.1", &fails, &locked);
	CHECK_EQ_INT(fails, 1);
	auth_limiter_free(l);
}

TEST(limiter_bounded_memory)
{
	struct auth_limits lim = AUTH_LIMITS_DEFAULT;
	struct auth_limiter *l = NULL;
	unsigned fails, retry;
	bool locked;
	fake_ms = 5000;
	CHECK_EQ_INT(auth_limiter_new(&lim, fake_clock, NULL, &l), 0);
	/* lock one address out, then flood with many others: the table
	 * forgets the oldest, never grows */
	for (unsigned i = 0; i < lim.lockout_after; i++)
		auth_limiter_fail(l, "192.0.2.1", &fails, &locked);
	CHECK_EQ_INT(auth_limiter_check(l, "192.0.2.1", &retry), -EAGAIN);
	char addr[32];
	for (unsigned i = 0; i < 5000; i++) {
		fake_ms++;
		snprintf(addr, sizeof(addr), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		auth_limiter_fail(l, addr, &fails, &locked);
		CHECK(fails == 1);
	}
	/* ... and the flood did not free the locked-out address */
	CHECK_EQ_INT(auth_limiter_check(l, "192.0.2.1", &retry), -EAGAIN);
	/* the oldest of the flood were forgotten, the newest kept */
	auth_limiter_fail(l, "10.0.0.0", &fails, &locked);
	CHECK_EQ_INT(fails, 1);
	auth_limiter_fail(l, "10.0.19.135", &fails, &locked);
	CHECK_EQ_INT(fails, 2);
	auth_limiter_free(l);
}

TEST(limits_parse)
{
	struct auth_limits l;
	CHECK_EQ_INT(auth_limits_parse("3:500:6:120", &l), 0);
	CHECK_EQ_INT(l.free_failures, 3);
	CHECK_EQ_INT(l.delay_ms, 500);
	CHECK_EQ_INT(l.lockout_after, 6);
	CHECK_EQ_INT(l.lockout_ms, 120000);
	CHECK(auth_limits_parse("3:500:6", &l) < 0);
	CHECK(auth_limits_parse("7:500:6:120", &l) < 0);
	CHECK(auth_limits_parse("3:500:0:120", &l) < 0);
	CHECK(auth_limits_parse("3:500:6:120x", &l) < 0);
}

HARNESS_MAIN
