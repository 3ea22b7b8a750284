/* audit: vesseld's tamper-evident audit log, DATA_DIR/audit.log (docs/
 * operations.md "Audit log"). Every mutating request and every failed
 * authentication or authorization becomes one line of JSON, chained to
 * the line before it by SHA-256 (format in lib/audit_chain.h), written
 * with one write() under a mutex; a change is fsync'd before its reply
 * goes out, a refusal is not (see audit_append).
 *
 * At start the last line is read to continue the chain. A damaged tail
 * is reported (log and GET /host warning) and never truncated: new lines
 * chain onto the damaged bytes, so verify keeps naming the damage. */
#ifndef VESSEL_DAEMON_AUDIT_H
#define VESSEL_DAEMON_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/audit_chain.h"

struct store;
struct audit_log;

struct audit_entry {
	const char *token;  /* token id, AUTH_ID_BOOTSTRAP, AUTH_ID_LOCAL or AUTH_ID_NONE */
	const char *role;   /* "admin", ..., or "-" when not authenticated */
	const char *client; /* "127.0.0.1", "::1", "unix" */
	const char *method;
	const char *path;
	const char *object; /* the VM, image or token acted on; may be NULL */
	unsigned result;    /* HTTP status */
	const char *detail; /* e.g. why authentication failed; may be NULL */
};

/* Open (creating 0600) and continue the chain. store (may be NULL) keeps
 * the count and last hash so a removed or rewritten tail is noticed. */
int audit_open(const char *path, struct store *store, struct audit_log **out, char **err);
void audit_free(struct audit_log *a);
/* Append one entry (timestamped now); 0 or -errno (logged). */
int audit_append(struct audit_log *a, const struct audit_entry *e);
/* A sentence when the log was found damaged at start, else NULL. */
const char *audit_warning(struct audit_log *a);
/* Verify the whole file, and the database's record of its end. */
int audit_verify(struct audit_log *a, struct audit_chain_result *res);

struct audit_filter {
	int64_t since_ms, until_ms; /* 0 = open */
	const char *token, *method, *path_prefix;
	unsigned result; /* 0 = any; 1..5 = that class (4 = 4xx) */
	size_t limit;
};
/* The last `limit` entries that pass the filter, oldest first, each with
 * its "line" number; *total counts all that passed. */
int audit_list(struct audit_log *a, const struct audit_filter *f, json_t **entries, size_t *total);

#endif
