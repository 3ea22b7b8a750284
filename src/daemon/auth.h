/* auth: who is calling vesseld and what they may do (docs/api.md "Auth").
 *
 * - API tokens with a role (viewer < operator < admin) and an optional
 *   project scope, stored hashed in the database (store.c, table tokens).
 *   The presented form is vst_<id>_<secret>: the id finds the row with one
 *   indexed query, the secret is compared by hash in constant time.
 * - The bootstrap admin token in DATA_DIR/admin.token and the Unix socket
 *   (local root) are admin.
 * - The role a route needs: declared in the route table, else derived
 *   from the method (GET viewer, anything else operator).
 * - A limiter that slows and then locks out client addresses that keep
 *   presenting bad tokens; its clock and thresholds are injectable. */
#ifndef VESSEL_DAEMON_AUTH_H
#define VESSEL_DAEMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define AUTH_ID_LEN 16      /* hex digits of a token id */
#define AUTH_SECRET_LEN 64  /* hex digits of a secret (256 bits) */
#define AUTH_TOKEN_PREFIX "vst_"
/* vst_ + id + _ + secret + NUL */
#define AUTH_TOKEN_MAX (4 + AUTH_ID_LEN + 1 + AUTH_SECRET_LEN + 1)
#define AUTH_NAME_MAX 64
#define AUTH_PROJECT_MAX 64
#define AUTH_HEX_MAX 65
#define AUTH_ERR_MAX 256
/* Token ids the audit log shows for callers that have no token row. */
#define AUTH_ID_BOOTSTRAP "admin.token"
#define AUTH_ID_LOCAL "unix-socket"
#define AUTH_ID_NONE "-"

enum auth_role {
	AUTH_ROLE_DEFAULT = 0, /* in the route table: derive from the method */
	AUTH_ROLE_VIEWER,
	AUTH_ROLE_OPERATOR,
	AUTH_ROLE_ADMIN,
};

/* A token as stored (the secret itself is never stored). Times are Unix
 * seconds; 0 = never / not yet / not revoked. */
struct token_record {
	char id[AUTH_ID_LEN + 1];
	char name[AUTH_NAME_MAX];
	enum auth_role role;
	char project[AUTH_PROJECT_MAX]; /* empty = every project */
	char hash[AUTH_HEX_MAX];        /* SHA-256 of the secret, hex */
	int64_t created;
	int64_t expires;
	int64_t last_used;
	int64_t revoked;
};

/* Who a request comes from, once authenticated. */
struct auth_identity {
	char token_id[24]; /* a token id, AUTH_ID_BOOTSTRAP or AUTH_ID_LOCAL */
	enum auth_role role;
	char project[AUTH_PROJECT_MAX]; /* empty = not scoped */
};

const char *auth_role_name(enum auth_role r);
int auth_role_parse(const char *s, enum auth_role *out);
/* The role a route needs: `declared`, or derived from the method. */
enum auth_role auth_route_role(const char *method, enum auth_role declared);
bool auth_role_allows(enum auth_role have, enum auth_role need);
/* May this caller see or act on a VM of project vm_project? A VM without a
 * project (NULL or "") is in project "default"; an unscoped caller may act
 * on every project. */
bool auth_scope_allows(const struct auth_identity *who, const char *vm_project);

/* The project a VM belongs to, for auth_scope_allows. */
struct vm_record;
const char *auth_vm_project(const struct vm_record *rec);

/* A new token: random id and secret, the presented form and the stored
 * hash. */
int auth_token_generate(char id[AUTH_ID_LEN + 1], char token[AUTH_TOKEN_MAX],
			char hash[AUTH_HEX_MAX]);
/* Split a presented token into id and secret; -EINVAL when it does not
 * have the vst_<16 hex>_<64 hex> shape. */
int auth_token_parse(const char *presented, char id[AUTH_ID_LEN + 1],
		     char secret[AUTH_SECRET_LEN + 1]);
/* SHA-256 of a secret as hex. A plain hash is right here: the secret is
 * 256 random bits, so there is nothing to guess and a slow password hash
 * (bcrypt, argon2) would only cost every request time. */
void auth_secret_hash(const char *secret, char hash[AUTH_HEX_MAX]);
/* Constant-time equality of two NUL-terminated strings of the same
 * expected length (token hashes, the bootstrap token). */
bool auth_equal(const char *a, const char *b);

enum auth_verdict {
	AUTH_OK = 0,
	AUTH_MISSING,  /* no token sent */
	AUTH_INVALID,  /* malformed, unknown id or wrong secret: indistinguishable */
	AUTH_EXPIRED,
	AUTH_REVOKED,
};
const char *auth_verdict_name(enum auth_verdict v);
/* Check a stored token against a presented secret at time now. Expiry and
 * revocation are only reported to a caller who knows the secret. */
enum auth_verdict auth_token_check(const struct token_record *t, const char *secret, int64_t now);

/* Parse an expiry: a duration from now ("90s", "30m", "24h", "7d"), a date
 * ("2027-01-31", midnight UTC) or a time ("2027-01-31T12:00:00Z"); must
 * be in the future and at most 10 years ahead. */
int auth_expiry_parse(const char *s, int64_t now, int64_t *out, char err[AUTH_ERR_MAX]);
/* RFC 3339 UTC for a Unix time. */
void auth_time_format(int64_t t, char out[32]);
/* "2027-01-31T12:00:00Z" (fraction allowed) or "2027-01-31" to Unix ms. */
int auth_time_parse_ms(const char *s, int64_t *out_ms);

/* ---- token table in memory ----
 * Every TCP request looks its token up; going to SQLite for that made a
 * role token four times slower than the bootstrap token (wrk: 14k vs 55k
 * requests/s). vesseld is the only writer of the tokens table, so a copy
 * in memory, updated by the same calls that write the rows, is exact:
 * a revocation takes effect with the next request. */
struct auth_tokens;
int auth_tokens_new(struct auth_tokens **out);
void auth_tokens_free(struct auth_tokens *c);
/* Insert or replace the row with t->id. */
int auth_tokens_put(struct auth_tokens *c, const struct token_record *t);
/* Copy of the row with this id; -ENOENT. */
int auth_tokens_get(struct auth_tokens *c, const char *id, struct token_record *out);
/* Record a use at now; true when the stored last_used is a minute or more
 * behind and should be written. */
bool auth_tokens_touch(struct auth_tokens *c, const char *id, int64_t now);

/* ---- brute-force limiter ---- */

struct auth_limits {
	unsigned free_failures; /* failures before any delay */
	uint64_t delay_ms;      /* first delay, doubling with each further failure */
	unsigned lockout_after; /* failures that start a lockout */
	uint64_t lockout_ms;    /* how long a lockout (and the memory of failures) lasts */
};
#define AUTH_LIMITS_DEFAULT {5, 1000, 10, 300000}

/* "FREE:DELAY_MS:LOCKOUT_AFTER:LOCKOUT_S" (vesseld --auth-limits). */
int auth_limits_parse(const char *s, struct auth_limits *out);

struct auth_limiter;
/* now_ms: a monotonic clock in ms (NULL = CLOCK_MONOTONIC); tests pass a
 * fake one. */
int auth_limiter_new(const struct auth_limits *limits, uint64_t (*now_ms)(void *), void *clock_arg,
		     struct auth_limiter **out);
void auth_limiter_free(struct auth_limiter *l);
/* Before authenticating a request from addr: 0, or -EAGAIN with the
 * seconds to wait (the address is in a delay or a lockout). */
int auth_limiter_check(struct auth_limiter *l, const char *addr, unsigned *retry_after_s);
/* A failed authentication from addr; *failures is the count so far and
 * *locked true when this failure started a lockout. */
void auth_limiter_fail(struct auth_limiter *l, const char *addr, unsigned *failures, bool *locked);
/* A successful one: forget addr's failures. */
void auth_limiter_success(struct auth_limiter *l, const char *addr);

#endif
