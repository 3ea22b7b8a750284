/* audit_chain: the hash chain of vessel's audit log (docs/operations.md
 * "Audit log"), shared by vesseld (which appends) and the `vessel` CLI
 * (which verifies a copied file offline).
 *
 * One entry is one line of compact JSON with a fixed frame:
 *   {"prev":"<64 hex>",...fields...,"hash":"<64 hex>"}
 * prev is the SHA-256 of the previous line's exact bytes (without its
 * newline); the first line's prev is AUDIT_CHAIN_GENESIS. hash is the
 * SHA-256 of this line's bytes up to (not including) the `,"hash":` that
 * closes it. prev links the lines, so removing or reordering lines breaks
 * the link at the first moved line; hash seals each line, so editing any
 * field is caught at that very line rather than one line later. Without a
 * secret key, someone who rewrites the whole tail can recompute both; the
 * daemon therefore also keeps the count and last hash in its database
 * (checked by the API's verify, see audit.c). */
#ifndef VESSEL_LIB_AUDIT_CHAIN_H
#define VESSEL_LIB_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_CHAIN_HEX 65 /* 64 hex digits + NUL */
#define AUDIT_CHAIN_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_CHAIN_REASON_MAX 256

/* SHA-256 of p[0..n) as lowercase hex. */
void audit_chain_sha256_hex(const void *p, size_t n, char out[AUDIT_CHAIN_HEX]);

/* Build a sealed line from the JSON object `fields` (compact, starting
 * with '{' and ending with '}', without prev/hash; "{}" allowed) and the
 * previous line's hash. *line is malloc'd, without a newline. */
int audit_chain_seal(const char *fields, size_t len, const char prev[AUDIT_CHAIN_HEX],
		     char **line, size_t *line_len);

/* Check one line (no newline) against the hash of the line before it.
 * Returns 0, or -EBADMSG with a sentence in reason (line number not
 * included). */
int audit_chain_check(const char *line, size_t len, const char prev[AUDIT_CHAIN_HEX],
		      char reason[AUDIT_CHAIN_REASON_MAX]);

struct audit_chain_result {
	bool ok;
	uint64_t entries;        /* lines read */
	uint64_t first_bad_line; /* 1-based; 0 when ok */
	char reason[AUDIT_CHAIN_REASON_MAX + 64];
	char last_hash[AUDIT_CHAIN_HEX]; /* SHA-256 of the last line's bytes */
};

/* Verify a whole log held in memory. A final line without a newline counts
 * as damaged (a write cut short). */
void audit_chain_verify_buf(const char *buf, size_t len, struct audit_chain_result *res);
/* Same for a file; -errno when it cannot be read (a missing file is an
 * empty, valid log). */
int audit_chain_verify_file(const char *path, struct audit_chain_result *res);

#endif
