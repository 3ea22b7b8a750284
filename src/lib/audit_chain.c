/* audit_chain: sealing and verifying the lines of the audit log (see
 * audit_chain.h for the format and why each line carries two hashes). */
#include "lib/audit_chain.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUDIT_CHAIN_PREFIX "{\"prev\":\""
#define AUDIT_CHAIN_PREFIX_LEN (sizeof(AUDIT_CHAIN_PREFIX) - 1)
#define AUDIT_CHAIN_SUFFIX ",\"hash\":\""
#define AUDIT_CHAIN_SUFFIX_LEN (sizeof(AUDIT_CHAIN_SUFFIX) - 1)
/* `,"hash":"` + 64 hex + `"}` */
#define AUDIT_CHAIN_TAIL_LEN (AUDIT_CHAIN_SUFFIX_LEN + 64 + 2)

void audit_chain_sha256_hex(const void *p, size_t n, char out[AUDIT_CHAIN_HEX])
{
	struct sha256_ctx ctx;
	uint8_t dig[SHA256_DIGEST_SIZE];
	sha256_init(&ctx);
	sha256_update(&ctx, n, p);
	sha256_digest(&ctx, sizeof(dig), dig);
	for (size_t i = 0; i < sizeof(dig); i++)
		snprintf(out + 2 * i, 3, "%02x", dig[i]);
}

static bool audit_chain_is_hex64(const char *p)
{
	for (int i = 0; i < 64; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

int audit_chain_seal(const char *fields, size_t len, const char prev[AUDIT_CHAIN_HEX],
		     char **line, size_t *line_len)
{
	if (len < 2 || fields[0] != '{' || fields[len - 1] != '}' || memchr(fields, '\n', len))
		return -EINVAL;
	bool empty = len == 2;
	size_t body = AUDIT_CHAIN_PREFIX_LEN + 64 + 1 + (empty ? 0 : 1 + len - 2);
	size_t total = body + AUDIT_CHAIN_TAIL_LEN;
	char *s = malloc(total + 1);
	if (!s)
		return -ENOMEM;
	size_t n = (size_t)snprintf(s, total + 1, "%s%s\"", AUDIT_CHAIN_PREFIX, prev);
	if (!empty) {
		s[n++] = ',';
		memcpy(s + n, fields + 1, len - 2);
		n += len - 2;
	}
	char h[AUDIT_CHAIN_HEX];
	audit_chain_sha256_hex(s, n, h);
	n += (size_t)snprintf(s + n, total + 1 - n, "%s%s\"}", AUDIT_CHAIN_SUFFIX, h);
	*line = s;
	*line_len = n;
	return 0;
}

int audit_chain_check(const char *line, size_t len, const char prev[AUDIT_CHAIN_HEX],
		      char reason[AUDIT_CHAIN_REASON_MAX])
{
	const size_t min = AUDIT_CHAIN_PREFIX_LEN + 64 + 1 + AUDIT_CHAIN_TAIL_LEN;
	if (len < min || memcmp(line, AUDIT_CHAIN_PREFIX, AUDIT_CHAIN_PREFIX_LEN) != 0 ||
	    line[AUDIT_CHAIN_PREFIX_LEN + 64] != '"' ||
	    !audit_chain_is_hex64(line + AUDIT_CHAIN_PREFIX_LEN) ||
	    memcmp(line + len - AUDIT_CHAIN_TAIL_LEN, AUDIT_CHAIN_SUFFIX, AUDIT_CHAIN_SUFFIX_LEN) != 0 ||
	    !audit_chain_is_hex64(line + len - 66) || memcmp(line + len - 2, "\"}", 2) != 0) {
		snprintf(reason, AUDIT_CHAIN_REASON_MAX,
			 "it is not an audit entry (it must start with {\"prev\":\"HASH\" and end "
			 "with ,\"hash\":\"HASH\"}): the line was damaged or written by hand");
		return -EBADMSG;
	}
	char h[AUDIT_CHAIN_HEX];
	audit_chain_sha256_hex(line, len - AUDIT_CHAIN_TAIL_LEN, h);
	if (memcmp(h, line + len - 66, 64) != 0) {
		snprintf(reason, AUDIT_CHAIN_REASON_MAX,
			 "its content does not match its hash: the line was edited");
		return -EBADMSG;
	}
	if (memcmp(prev, line + AUDIT_CHAIN_PREFIX_LEN, 64) != 0) {
		if (strcmp(prev, AUDIT_CHAIN_GENESIS) == 0)
			snprintf(reason, AUDIT_CHAIN_REASON_MAX,
				 "it does not start the chain (its prev is not the genesis value): "
				 "lines before it were removed");
		else
			snprintf(reason, AUDIT_CHAIN_REASON_MAX,
				 "its prev hash does not match the line before it: a line was "
				 "removed, inserted or moved here");
		return -EBADMSG;
	}
	return 0;
}

void audit_chain_verify_buf(const char *buf, size_t len, struct audit_chain_result *res)
{
	char prev[AUDIT_CHAIN_HEX] = AUDIT_CHAIN_GENESIS;
	char reason[AUDIT_CHAIN_REASON_MAX];
	memset(res, 0, sizeof(*res));
	res->ok = true;
	snprintf(res->last_hash, sizeof(res->last_hash), "%s", AUDIT_CHAIN_GENESIS);
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		res->entries++;
		if (res->ok) {
			if (!nl) {
				res->ok = false;
				res->first_bad_line = res->entries;
				snprintf(res->reason, sizeof(res->reason),
					 "line %llu has no newline at its end: a write was cut short",
					 (unsigned long long)res->entries);
			} else if (audit_chain_check(buf + pos, n, prev, reason) < 0) {
				res->ok = false;
				res->first_bad_line = res->entries;
				snprintf(res->reason, sizeof(res->reason), "line %llu: %s",
					 (unsigned long long)res->entries, reason);
			}
		}
		audit_chain_sha256_hex(buf + pos, n, prev);
		pos += n + (nl ? 1 : 0);
	}
	memcpy(res->last_hash, prev, sizeof(prev));
}

int audit_chain_verify_file(const char *path, struct audit_chain_result *res)
{
	int r = 0;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			audit_chain_verify_buf("", 0, res);
			return 0;
		}
		return -errno;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	size_t cap = (size_t)st.st_size, len = 0;
	buf = malloc(cap + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	audit_chain_verify_buf(buf, len, res);
out:
	free(buf);
	close(fd);
	return r;
}
