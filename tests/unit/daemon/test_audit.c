/* Unit tests for the audit log: lib/audit_chain.c (seal, check, verify)
 * and daemon/audit.c (append under concurrency, continue the chain after
 * a reopen, report a damaged or shortened tail without truncating it).
 * Editing, deleting or swapping any one line must make verify name
 * exactly that line. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/audit.h"
#include "daemon/store.h"
#include "harness.h"

static char dir[PATH_MAX];

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	*len = fread(b, 1, (size_t)n, f);
	b[*len] = '\0';
	fclose(f);
	return b;
}

/* Split into lines (each without '\n'); returns the count. */
static size_t split(char *buf, char **lines, size_t max)
{
	size_t n = 0;
	for (char *p = buf; *p && n < max;) {
		char *nl = strchr(p, '\n');
		lines[n++] = p;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return n;
}

static void join(char **lines, size_t n, char **out, size_t *len)
{
	size_t cap = 1;
	for (size_t i = 0; i < n; i++)
		cap += strlen(lines[i]) + 1;
	char *b = malloc(cap), *p = b;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);
		memcpy(p, lines[i], l);
		p[l] = '\n';
		p += l + 1;
	}
	*p = '\0';
	*out = b;
	*len = (size_t)(p - b);
}

static struct audit_entry entry(unsigned i)
{
	static char obj[32];
	snprintf(obj, sizeof(obj), "vm-%u", i);
	struct audit_entry e = {.token = "0123456789abcdef", .role = "operator",
				.client = "127.0.0.1", .method = i % 2 ? "POST" : "DELETE",
				.path = "/api/v1/vms", .object = obj, .result = 200 + i % 3};
	return e;
}

TEST(setup)
{
	snprintf(dir, sizeof(dir), "/tmp/vessel-test-audit-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
}

TEST(seal_and_check)
{
	char *line;
	size_t len;
	char reason[AUDIT_CHAIN_REASON_MAX];
	CHECK_EQ_INT(audit_chain_seal("{\"a\":1}", 7, AUDIT_CHAIN_GENESIS, &line, &len), 0);
	CHECK_EQ_INT(strlen(line), len);
	CHECK(strncmp(line, "{\"prev\":\"0000", 12) == 0);
	CHECK(strstr(line, ",\"a\":1,\"hash\":\"") != NULL);
	CHECK_EQ_INT(audit_chain_check(line, len, AUDIT_CHAIN_GENESIS, reason), 0);
	/* one flipped character anywhere is caught */
	for (size_t i = 0; i < len; i++) {
		char saved = line[i];
		line[i] = saved == 'a' ? 'b' : 'a';
		CHECK_EQ_INT(audit_chain_check(line, len, AUDIT_CHAIN_GENESIS, reason), -EBADMSG);
		line[i] = saved;
	}
	char other[AUDIT_CHAIN_HEX];
	audit_chain_sha256_hex("x", 1, other);
	CHECK_EQ_INT(audit_chain_check(line, len, other, reason), -EBADMSG);
	CHECK(strstr(reason, "prev") != NULL);
	free(line);
	CHECK_EQ_INT(audit_chain_seal("{}", 2, other, &line, &len), 0);
	CHECK_EQ_INT(audit_chain_check(line, len, other, reason), 0);
	free(line);
	CHECK_EQ_INT(audit_chain_seal("[1]", 3, other, &line, &len), -EINVAL);
	CHECK_EQ_INT(audit_chain_seal("{\n}", 3, other, &line, &len), -EINVAL);
}

#define N 8

static void write_file(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	fwrite(buf, 1, len, f);
	fclose(f);
}

TEST(append_verify_and_every_tamper)
{
	char db[PATH_MAX + 16], log[PATH_MAX + 16], copy[PATH_MAX + 16], serr[STORE_ERR_MAX];
	snprintf(db, sizeof(db), "%s/t.db", dir);
	snprintf(log, sizeof(log), "%s/audit.log", dir);
	snprintf(copy, sizeof(copy), "%s/copy.log", dir);
	struct store *st = NULL;
	struct audit_log *a = NULL;
	char *err = NULL;
	CHECK_EQ_INT(store_open(db, &st, serr), 0);
	CHECK_EQ_INT(audit_open(log, st, &a, &err), 0);
	CHECK(audit_warning(a) == NULL);
	for (unsigned i = 0; i < N; i++) {
		struct audit_entry e = entry(i);
		CHECK_EQ_INT(audit_append(a, &e), 0);
	}
	struct stat sb;
	CHECK_EQ_INT(stat(log, &sb), 0);
	CHECK_EQ_INT(sb.st_mode & 0777, 0600);
	struct audit_chain_result res;
	CHECK_EQ_INT(audit_verify(a, &res), 0);
	CHECK(res.ok);
	CHECK_EQ_INT(res.entries, N);

	size_t len;
	char *orig = slurp(log, &len);
	for (size_t k = 0; k < N; k++) {
		char *buf, *lines[N + 1], *out;
		size_t olen;
		/* edit one field of line k+1 */
		buf = strdup(orig);
		split(buf, lines, N);
		char *m = strstr(lines[k], "127.0.0.1");
		m[0] = '9';
		join(lines, N, &out, &olen);
		write_file(copy, out, olen);
		CHECK_EQ_INT(audit_chain_verify_file(copy, &res), 0);
		CHECK(!res.ok);
		CHECK_EQ_INT(res.first_bad_line, k + 1);
		CHECK(strstr(res.reason, "edited") != NULL);
		free(out);
		free(buf);
		/* delete line k+1 (the last one is caught by the live check below) */
		if (k + 1 < N) {
			buf = strdup(orig);
			split(buf, lines, N);
			memmove(lines + k, lines + k + 1, (N - k - 1) * sizeof(*lines));
			join(lines, N - 1, &out, &olen);
			write_file(copy, out, olen);
			CHECK_EQ_INT(audit_chain_verify_file(copy, &res), 0);
			CHECK(!res.ok);
			CHECK_EQ_INT(res.first_bad_line, k + 1);
			free(out);
			free(buf);
			/* swap lines k+1 and k+2 */
			buf = strdup(orig);
			split(buf, lines, N);
			char *t = lines[k];
			lines[k] = lines[k + 1];
			lines[k + 1] = t;
			join(lines, N, &out, &olen);
			write_file(copy, out, olen);
			CHECK_EQ_INT(audit_chain_verify_file(copy, &res), 0);
			CHECK(!res.ok);
			CHECK_EQ_INT(res.first_bad_line, k + 1);
			free(out);
			free(buf);
		}
	}
	/* the last line removed from the live log: the chain alone cannot
	 * tell, the daemon's record of its end can */
	char *cut = strdup(orig);
	char *lines[N + 1];
	split(cut, lines, N);
	char *joined;
	size_t jlen;
	join(lines, N - 1, &joined, &jlen);
	write_file(log, joined, jlen);
	CHECK_EQ_INT(audit_chain_verify_file(log, &res), 0);
	CHECK(res.ok);
	CHECK_EQ_INT(audit_verify(a, &res), 0);
	CHECK(!res.ok);
	CHECK_EQ_INT(res.first_bad_line, N);
	CHECK(strstr(res.reason, "removed") != NULL);
	free(joined);
	free(cut);
	/* a well-chained line appended by someone else: offline it passes,
	 * vesseld knows it did not write it */
	char *forged, last_hash[AUDIT_CHAIN_HEX];
	size_t flen;
	char *lines2[N + 1], *copy2 = strdup(orig);
	split(copy2, lines2, N);
	audit_chain_sha256_hex(lines2[N - 1], strlen(lines2[N - 1]), last_hash);
	CHECK_EQ_INT(audit_chain_seal("{\"method\":\"POST\"}", 17, last_hash, &forged, &flen), 0);
	char *withf = malloc(len + flen + 2);
	memcpy(withf, orig, len);
	memcpy(withf + len, forged, flen);
	withf[len + flen] = '\n';
	write_file(log, withf, len + flen + 1);
	CHECK_EQ_INT(audit_chain_verify_file(log, &res), 0);
	CHECK(res.ok);
	CHECK_EQ_INT(audit_verify(a, &res), 0);
	CHECK(!res.ok);
	CHECK_EQ_INT(res.first_bad_line, N + 1);
	CHECK(strstr(res.reason, "added") != NULL);
	free(withf);
	free(forged);
	free(copy2);
	write_file(log, orig, len);
	CHECK_EQ_INT(audit_verify(a, &res), 0);
	CHECK(res.ok);
	free(orig);
	audit_free(a);
	store_free(st);
	free(err);
}

TEST(reopen_continues_chain)
{
	char db[PATH_MAX + 16], log[PATH_MAX + 16], serr[STORE_ERR_MAX];
	snprintf(db, sizeof(db), "%s/t.db", dir);
	snprintf(log, sizeof(log), "%s/audit.log", dir);
	struct store *st = NULL;
	struct audit_log *a = NULL;
	char *err = NULL;
	CHECK_EQ_INT(store_open(db, &st, serr), 0);
	CHECK_EQ_INT(audit_open(log, st, &a, &err), 0);
	CHECK(audit_warning(a) == NULL);
	struct audit_entry e = entry(99);
	CHECK_EQ_INT(audit_append(a, &e), 0);
	struct audit_chain_result res;
	CHECK_EQ_INT(audit_verify(a, &res), 0);
	CHECK(res.ok);
	CHECK_EQ_INT(res.entries, N + 1);
	audit_free(a);
	store_free(st);
}

struct writer {
	struct audit_log *a;
	unsigned base;
};

static void *writer_main(void *p)
{
	struct writer *w = p;
	for (unsigned i = 0; i < 50; i++) {
		struct audit_entry e = {.token = "t", .role = "admin", .client = "unix",
					.method = "POST", .path = "/api/v1/vms", .object = "x",
					.result = 201};
		audit_append(w->a, &e);
	}
	return NULL;
}

TEST(concurrent_appends_do_not_interleave)
{
	char log[PATH_MAX + 16];
	snprintf(log, sizeof(log), "%s/conc.log", dir);
	struct audit_log *a = NULL;
	char *err = NULL;
	CHECK_EQ_INT(audit_open(log, NULL, &a, &err), 0);
	pthread_t th[4];
	struct writer w[4];
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct writer){a, i};
		pthread_create(&th[i], NULL, writer_main, &w[i]);
	}
	for (unsigned i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	struct audit_chain_result res;
	CHECK_EQ_INT(audit_chain_verify_file(log, &res), 0);
	CHECK(res.ok);
	CHECK_EQ_INT(res.entries, 200);
	audit_free(a);
}

TEST(damaged_tail_reported_not_truncated)
{
	char db[PATH_MAX + 16], log[PATH_MAX + 16], serr[STORE_ERR_MAX];
	snprintf(db, sizeof(db), "%s/t.db", dir);
	snprintf(log, sizeof(log), "%s/audit.log", dir);
	/* a write cut short: half a line, no newline */
	size_t len;
	char *before = slurp(log, &len);
	int fd = open(log, O_WRONLY | O_APPEND);
	CHECK(write(fd, "{\"prev\":\"12", 11) == 11);
	close(fd);
	struct store *st = NULL;
	struct audit_log *a = NULL;
	char *err = NULL;
	CHECK_EQ_INT(store_open(db, &st, serr), 0);
	CHECK_EQ_INT(audit_open(log, st, &a, &err), 0);
	CHECK(audit_warning(a) != NULL);
	CHECK(audit_warning(a) && strstr(audit_warning(a), "line 10") != NULL);
	struct audit_entry e = entry(7);
	CHECK_EQ_INT(audit_append(a, &e), 0);
	size_t len2;
	char *after = slurp(log, &len2);
	/* nothing was cut: the old bytes and the fragment are still there */
	CHECK(len2 > len + 11);
	CHECK(memcmp(after, before, len) == 0);
	CHECK(memcmp(after + len, "{\"prev\":\"12\n", 12) == 0);
	struct audit_chain_result res;
	CHECK_EQ_INT(audit_verify(a, &res), 0);
	CHECK(!res.ok);
	CHECK_EQ_INT(res.first_bad_line, N + 2);
	CHECK_EQ_INT(res.entries, N + 4); /* + the damage note + the new entry */
	free(before);
	free(after);
	audit_free(a);
	/* and it stays reported after the next start */
	CHECK_EQ_INT(audit_open(log, st, &a, &err), 0);
	CHECK_EQ_INT(audit_verify(a, &res), 0);
	CHECK(!res.ok);
	CHECK_EQ_INT(res.first_bad_line, N + 2);
	audit_free(a);
	store_free(st);
	free(err);
}

TEST(list_filters)
{
	char log[PATH_MAX + 16];
	snprintf(log, sizeof(log), "%s/list.log", dir);
	struct audit_log *a = NULL;
	char *err = NULL;
	CHECK_EQ_INT(audit_open(log, NULL, &a, &err), 0);
	for (unsigned i = 0; i < 10; i++) {
		struct audit_entry e = entry(i);
		audit_append(a, &e);
	}
	json_t *arr = NULL;
	size_t total = 0;
	struct audit_filter f = {.limit = 3};
	CHECK_EQ_INT(audit_list(a, &f, &arr, &total), 0);
	CHECK_EQ_INT(total, 10);
	CHECK_EQ_INT(json_array_size(arr), 3);
	CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(arr, 0), "line")), 8);
	CHECK(json_object_get(json_array_get(arr, 0), "hash") == NULL);
	json_decref(arr);
	f = (struct audit_filter){.limit = 100, .method = "delete"};
	CHECK_EQ_INT(audit_list(a, &f, &arr, &total), 0);
	CHECK_EQ_INT(total, 5);
	json_decref(arr);
	f = (struct audit_filter){.limit = 100, .result = 201};
	CHECK_EQ_INT(audit_list(a, &f, &arr, &total), 0);
	CHECK_EQ_INT(total, 3);
	json_decref(arr);
	f = (struct audit_filter){.limit = 100, .result = 2, .path_prefix = "/api/v1/vm"};
	CHECK_EQ_INT(audit_list(a, &f, &arr, &total), 0);
	CHECK_EQ_INT(total, 10);
	json_decref(arr);
	f = (struct audit_filter){.limit = 100, .path_prefix = "/api/v1/images"};
	CHECK_EQ_INT(audit_list(a, &f, &arr, &total), 0);
	CHECK_EQ_INT(total, 0);
	json_decref(arr);
	f = (struct audit_filter){.limit = 100, .since_ms = 4102444800000ll}; /* 2100 */
	CHECK_EQ_INT(audit_list(a, &f, &arr, &total), 0);
	CHECK_EQ_INT(total, 0);
	json_decref(arr);
	audit_free(a);
	free(err);
}

TEST(cleanup)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

HARNESS_MAIN
