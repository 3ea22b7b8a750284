/* auth: tokens, roles, project scope and the brute-force limiter (see
 * auth.h). The HTTP side (which header, which status) is in http.c; the
 * token rows are in store.c; the /tokens resource is tokens.c. */
#include "daemon/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "daemon/model.h"
#include "lib/audit_chain.h"
#include "lib/util.h"

#define AUTH_MAX_FUTURE_S (10ll * 366 * 24 * 3600)
#define AUTH_LIMITER_SLOTS 1024
#define AUTH_ADDR_MAX 64

static const char *const auth_role_names[] = {
	[AUTH_ROLE_DEFAULT] = "default",
	[AUTH_ROLE_VIEWER] = "viewer",
	[AUTH_ROLE_OPERATOR] = "operator",
	[AUTH_ROLE_ADMIN] = "admin",
};

const char *auth_role_name(enum auth_role r)
{
	return (unsigned)r < ARRAY_SIZE(auth_role_names) ? auth_role_names[r] : "unknown";
}

int auth_role_parse(const char *s, enum auth_role *out)
{
	for (unsigned i = AUTH_ROLE_VIEWER; s && i < ARRAY_SIZE(auth_role_names); i++)
		if (strcmp(s, auth_role_names[i]) == 0) {
			*out = (enum auth_role)i;
			return 0;
		}
	return -EINVAL;
}

enum auth_role auth_route_role(const char *method, enum auth_role declared)
{
	if (declared != AUTH_ROLE_DEFAULT)
		return declared;
	/* Reading is a viewer's right; everything that changes something is
	 * at least an operator's. HEAD is a GET without the body. */
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		return AUTH_ROLE_VIEWER;
	return AUTH_ROLE_OPERATOR;
}

bool auth_role_allows(enum auth_role have, enum auth_role need)
{
	return have != AUTH_ROLE_DEFAULT && have >= need;
}

bool auth_scope_allows(const struct auth_identity *who, const char *vm_project)
{
	if (!who || !who->project[0])
		return true;
	const char *p = vm_project && *vm_project ? vm_project : "default";
	return strcmp(who->project, p) == 0;
}

const char *auth_vm_project(const struct vm_record *rec)
{
	return rec ? rec->project : NULL;
}

static void auth_hex(const uint8_t *raw, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

void auth_secret_hash(const char *secret, char hash[AUTH_HEX_MAX])
{
	audit_chain_sha256_hex(secret, strlen(secret), hash);
}

int auth_token_generate(char id[AUTH_ID_LEN + 1], char token[AUTH_TOKEN_MAX],
			char hash[AUTH_HEX_MAX])
{
	uint8_t raw[AUTH_ID_LEN / 2 + AUTH_SECRET_LEN / 2];
	char secret[AUTH_SECRET_LEN + 1];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	auth_hex(raw, AUTH_ID_LEN / 2, id);
	auth_hex(raw + AUTH_ID_LEN / 2, AUTH_SECRET_LEN / 2, secret);
	snprintf(token, AUTH_TOKEN_MAX, AUTH_TOKEN_PREFIX "%s_%s", id, secret);
	auth_secret_hash(secret, hash);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(secret, sizeof(secret));
	return 0;
}

static bool auth_is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int auth_token_parse(const char *presented, char id[AUTH_ID_LEN + 1],
		     char secret[AUTH_SECRET_LEN + 1])
{
	const size_t plen = sizeof(AUTH_TOKEN_PREFIX) - 1;
	if (!presented || strlen(presented) != plen + AUTH_ID_LEN + 1 + AUTH_SECRET_LEN ||
	    strncmp(presented, AUTH_TOKEN_PREFIX, plen) != 0 || presented[plen + AUTH_ID_LEN] != '_' ||
	    !auth_is_hex(presented + plen, AUTH_ID_LEN) ||
	    !auth_is_hex(presented + plen + AUTH_ID_LEN + 1, AUTH_SECRET_LEN))
		return -EINVAL;
	memcpy(id, presented + plen, AUTH_ID_LEN);
	id[AUTH_ID_LEN] = '\0';
	memcpy(secret, presented + plen + AUTH_ID_LEN + 1, AUTH_SECRET_LEN);
	secret[AUTH_SECRET_LEN] = '\0';
	return 0;
}

bool auth_equal(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	size_t n = strlen(a), m = strlen(b);
	/* Every byte of a is looked at whatever the first mismatch, so the
	 * time taken does not reveal how long a matching prefix is. */
	unsigned char diff = (unsigned char)(n != m);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ (i < m ? b[i] : 0));
	return diff == 0 && n > 0;
}

static const char *const auth_verdict_names[] = {
	[AUTH_OK] = "ok",
	[AUTH_MISSING] = "missing",
	[AUTH_INVALID] = "invalid",
	[AUTH_EXPIRED] = "expired",
	[AUTH_REVOKED] = "revoked",
};

const char *auth_verdict_name(enum auth_verdict v)
{
	return (unsigned)v < ARRAY_SIZE(auth_verdict_names) ? auth_verdict_names[v] : "invalid";
}

enum auth_verdict auth_token_check(const struct token_record *t, const char *secret, int64_t now)
{
	char h[AUTH_HEX_MAX];
	auth_secret_hash(secret, h);
	/* The secret first: whoever does not hold it learns nothing about
	 * the row, not even that it is revoked or expired. */
	if (!auth_equal(t->hash, h))
		return AUTH_INVALID;
	if (t->revoked)
		return AUTH_REVOKED;
	if (t->expires && now >= t->expires)
		return AUTH_EXPIRED;
	return AUTH_OK;
}

void auth_time_format(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int auth_time_parse_ms(const char *s, int64_t *out_ms)
{
	struct tm tm = {0};
	int ms = 0;
	const char *end;
	if (!s)
		return -EINVAL;
	if (strlen(s) == 10) {
		end = strptime(s, "%Y-%m-%d", &tm);
	} else {
		end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
		if (end && *end == '.') {
			int digits = 0;
			for (end++; *end >= '0' && *end <= '9'; end++, digits++)
				if (digits < 3)
					ms = ms * 10 + (*end - '0');
			if (!digits)
				return -EINVAL;
			for (; digits < 3; digits++)
				ms *= 10;
		}
		if (end && *end == 'Z')
			end++;
		else
			end = NULL; /* only UTC, spelled Z: no ambiguity about zones */
	}
	if (!end || *end)
		return -EINVAL;
	*out_ms = (int64_t)timegm(&tm) * 1000 + ms;
	return 0;
}

int auth_expiry_parse(const char *s, int64_t now, int64_t *out, char err[AUTH_ERR_MAX])
{
	int64_t t;
	size_t n = s ? strlen(s) : 0;
	char unit = n ? s[n - 1] : 0;
	if (n >= 2 && n < 16 && strchr("smhd", unit) && s[0] >= '0' && s[0] <= '9') {
		char num[16];
		uint64_t v;
		memcpy(num, s, n - 1);
		num[n - 1] = '\0';
		static const int64_t mult[] = {['s' - 'a'] = 1, ['m' - 'a'] = 60, ['h' - 'a'] = 3600,
					       ['d' - 'a'] = 86400};
		if (util_parse_u64(num, 1, (uint64_t)AUTH_MAX_FUTURE_S, &v) < 0) {
			snprintf(err, AUTH_ERR_MAX, "expiry '%s' is not a positive whole number of %s",
				 s, unit == 's' ? "seconds" : unit == 'm' ? "minutes" :
				    unit == 'h' ? "hours" : "days");
			return -EINVAL;
		}
		t = now + (int64_t)v * mult[unit - 'a'];
	} else {
		int64_t ms;
		if (auth_time_parse_ms(s, &ms) < 0) {
			snprintf(err, AUTH_ERR_MAX,
				 "expiry '%s' is neither a duration (90s, 30m, 24h, 7d) nor a UTC date "
				 "(2027-01-31) or time (2027-01-31T12:00:00Z)", s ? s : "");
			return -EINVAL;
		}
		t = ms / 1000;
		if (t <= now) {
			snprintf(err, AUTH_ERR_MAX,
				 "expiry '%s' is in the past; give a later time or a duration such as 24h",
				 s);
			return -EINVAL;
		}
	}
	if (t - now > AUTH_MAX_FUTURE_S) {
		snprintf(err, AUTH_ERR_MAX,
			 "expiry '%s' is more than 10 years ahead; leave it out for a token that "
			 "does not expire", s);
		return -EINVAL;
	}
	*out = t;
	return 0;
}

/* ---- token table in memory ---- */

struct auth_tokens {
	pthread_rwlock_t lock;
	struct token_record *v; /* sorted by id */
	int64_t *flushed;       /* last_used as last written to the store */
	size_t n, cap;
};

int auth_tokens_new(struct auth_tokens **out)
{
	struct auth_tokens *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_rwlock_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void auth_tokens_free(struct auth_tokens *c)
{
	if (!c)
		return;
	pthread_rwlock_destroy(&c->lock);
	free(c->v);
	free(c->flushed);
	free(c);
}

/* Index of id, or where it would go (*found false). */
static size_t auth_tokens_find(const struct auth_tokens *c, const char *id, bool *found)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(c->v[mid].id, id);
		if (r == 0) {
			*found = true;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

int auth_tokens_put(struct auth_tokens *c, const struct token_record *t)
{
	int r = 0;
	bool found;
	pthread_rwlock_wrlock(&c->lock);
	size_t i = auth_tokens_find(c, t->id, &found);
	if (!found) {
		if (c->n == c->cap) {
			size_t ncap = c->cap ? c->cap * 2 : 16;
			struct token_record *nv = realloc(c->v, ncap * sizeof(*nv));
			if (nv)
				c->v = nv;
			int64_t *nf = nv ? realloc(c->flushed, ncap * sizeof(*nf)) : NULL;
			if (!nf) {
				r = -ENOMEM;
				goto out;
			}
			c->flushed = nf;
			c->cap = ncap;
		}
		memmove(c->v + i + 1, c->v + i, (c->n - i) * sizeof(*c->v));
		memmove(c->flushed + i + 1, c->flushed + i, (c->n - i) * sizeof(*c->flushed));
		c->n++;
	}
	c->v[i] = *t;
	c->flushed[i] = t->last_used;
out:
	pthread_rwlock_unlock(&c->lock);
	return r;
}

int auth_tokens_get(struct auth_tokens *c, const char *id, struct token_record *out)
{
	bool found;
	pthread_rwlock_rdlock(&c->lock);
	size_t i = auth_tokens_find(c, id, &found);
	if (found)
		*out = c->v[i];
	pthread_rwlock_unlock(&c->lock);
	return found ? 0 : -ENOENT;
}

bool auth_tokens_touch(struct auth_tokens *c, const char *id, int64_t now)
{
	bool found, flush = false;
	pthread_rwlock_wrlock(&c->lock);
	size_t i = auth_tokens_find(c, id, &found);
	if (found) {
		c->v[i].last_used = now;
		if (now - c->flushed[i] >= 60) {
			c->flushed[i] = now;
			flush = true;
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return flush;
}

/* ---- brute-force limiter ---- */

int auth_limits_parse(const char *s, struct auth_limits *out)
{
	unsigned long long f, d, a, l;
	char tail;
	if (!s || sscanf(s, "%llu:%llu:%llu:%llu%c", &f, &d, &a, &l, &tail) != 4)
		return -EINVAL;
	if (a < 1 || a > 1000000 || f > a || d > 3600000 || l > 86400 * 30)
		return -ERANGE;
	out->free_failures = (unsigned)f;
	out->delay_ms = d;
	out->lockout_after = (unsigned)a;
	out->lockout_ms = l * 1000;
	return 0;
}

struct auth_limiter_slot {
	char addr[AUTH_ADDR_MAX]; /* empty = free */
	unsigned failures;
	uint64_t last_ms;         /* last failure */
	uint64_t next_ms;         /* no attempt before this */
	uint64_t locked_until_ms; /* 0 = not locked */
};

struct auth_limiter {
	pthread_mutex_t lock;
	struct auth_limits limits;
	uint64_t (*now_ms)(void *);
	void *clock_arg;
	unsigned used; /* slots in use: 0 makes the hot path free */
	struct auth_limiter_slot slots[AUTH_LIMITER_SLOTS];
};

static uint64_t auth_monotonic_ms(void *arg)
{
	return util_now_ns() / 1000000;
}

int auth_limiter_new(const struct auth_limits *limits, uint64_t (*now_ms)(void *), void *clock_arg,
		     struct auth_limiter **out)
{
	struct auth_limiter *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	l->limits = *limits;
	l->now_ms = now_ms ? now_ms : auth_monotonic_ms;
	l->clock_arg = clock_arg;
	*out = l;
	return 0;
}

void auth_limiter_free(struct auth_limiter *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static struct auth_limiter_slot *auth_limiter_find(struct auth_limiter *l, const char *addr)
{
	for (size_t i = 0; l->used && i < AUTH_LIMITER_SLOTS; i++)
		if (l->slots[i].addr[0] && strcmp(l->slots[i].addr, addr) == 0)
			return &l->slots[i];
	return NULL;
}

static void auth_limiter_drop(struct auth_limiter *l, struct auth_limiter_slot *s)
{
	memset(s, 0, sizeof(*s));
	__atomic_fetch_sub(&l->used, 1, __ATOMIC_RELAXED);
}

/* Forget an address whose lockout is over or whose last failure is older
 * than the lockout period: it starts again with a clean slate. */
static bool auth_limiter_expire(struct auth_limiter *l, struct auth_limiter_slot *s, uint64_t now)
{
	if ((s->locked_until_ms && now >= s->locked_until_ms) ||
	    (!s->locked_until_ms && now - s->last_ms >= l->limits.lockout_ms &&
	     now >= s->next_ms)) {
		auth_limiter_drop(l, s);
		return true;
	}
	return false;
}

int auth_limiter_check(struct auth_limiter *l, const char *addr, unsigned *retry_after_s)
{
	int r = 0;
	if (!__atomic_load_n(&l->used, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&l->lock);
	uint64_t now = l->now_ms(l->clock_arg);
	struct auth_limiter_slot *s = auth_limiter_find(l, addr);
	if (s && !auth_limiter_expire(l, s, now)) {
		uint64_t until = s->locked_until_ms ? s->locked_until_ms : s->next_ms;
		if (until > now) {
			*retry_after_s = (unsigned)((until - now + 999) / 1000);
			r = -EAGAIN;
		}
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

void auth_limiter_fail(struct auth_limiter *l, const char *addr, unsigned *failures, bool *locked)
{
	pthread_mutex_lock(&l->lock);
	uint64_t now = l->now_ms(l->clock_arg);
	struct auth_limiter_slot *s = auth_limiter_find(l, addr);
	if (s && auth_limiter_expire(l, s, now))
		s = NULL;
	if (!s) {
		/* A free slot, else the one whose last failure is oldest,
		 * sparing locked-out addresses while others can go: a flood of
		 * addresses cannot grow memory, and cannot cheaply free an
		 * address from its lockout either. */
		struct auth_limiter_slot *oldest = &l->slots[0];
		for (size_t i = 0; i < AUTH_LIMITER_SLOTS && !s; i++) {
			struct auth_limiter_slot *c = &l->slots[i];
			bool c_locked = c->locked_until_ms > now, o_locked = oldest->locked_until_ms > now;
			if (!c->addr[0])
				s = c;
			else if ((o_locked && !c_locked) ||
				 (o_locked == c_locked && c->last_ms < oldest->last_ms))
				oldest = c;
		}
		if (!s) {
			s = oldest;
			auth_limiter_drop(l, s);
		}
		snprintf(s->addr, sizeof(s->addr), "%s", addr);
		__atomic_fetch_add(&l->used, 1, __ATOMIC_RELAXED);
	}
	s->failures++;
	s->last_ms = now;
	*locked = false;
	if (s->failures >= l->limits.lockout_after) {
		*locked = !s->locked_until_ms;
		s->locked_until_ms = now + l->limits.lockout_ms;
	} else if (s->failures > l->limits.free_failures) {
		unsigned k = s->failures - l->limits.free_failures - 1;
		uint64_t delay = l->limits.delay_ms << (k < 20 ? k : 20);
		s->next_ms = now + MIN(delay, l->limits.lockout_ms);
	}
	*failures = s->failures;
	pthread_mutex_unlock(&l->lock);
}

void auth_limiter_success(struct auth_limiter *l, const char *addr)
{
	if (!__atomic_load_n(&l->used, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&l->lock);
	struct auth_limiter_slot *s = auth_limiter_find(l, addr);
	if (s)
		auth_limiter_drop(l, s);
	pthread_mutex_unlock(&l->lock);
}
