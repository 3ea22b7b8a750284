/* audit: `vessel audit list|verify` (docs/api.md "Audit"). verify asks
 * vesseld, or with --file checks a copy of audit.log offline with the same
 * chain code vesseld writes it with (lib/audit_chain.c); either way it
 * prints the first bad line and why, and exits 1 when the log is bad. */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/audit_chain.h"
#include "lib/util.h"

const struct cli_opt cli_audit_list_opts[] = {
	{"since", CLI_OPT_SINCE, true},
	{"until", CLI_OPT_UNTIL, true},
	{"token-id", CLI_OPT_TOKEN_ID, true},
	{"method", CLI_OPT_METHOD, true},
	{"path", CLI_OPT_PATH, true},
	{"result", CLI_OPT_RESULT, true},
	{"limit", CLI_OPT_LIMIT, true},
	{NULL, 0, false},
};

const struct cli_opt cli_audit_verify_opts[] = {
	{"file", CLI_OPT_FILE, true},
	{NULL, 0, false},
};

/* "1h", "30m", "7d", "90s" ago as a UTC time; anything else as given. */
static void audit_time_arg(const char *s, time_t now, char *out, size_t len)
{
	size_t n = strlen(s);
	uint64_t v;
	char num[24];
	char unit = n ? s[n - 1] : 0;
	if (n >= 2 && n < sizeof(num) && strchr("smhd", unit)) {
		memcpy(num, s, n - 1);
		num[n - 1] = '\0';
		if (util_parse_u64(num, 0, 100ull * 365 * 86400, &v) == 0) {
			uint64_t mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
			time_t t = now - (time_t)(v * mult);
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
			return;
		}
	}
	snprintf(out, len, "%s", s);
}

static int audit_query_add(char **q, size_t *qlen, const char *key, const char *val)
{
	if (!val)
		return 0;
	char *esc = NULL;
	int ret = cli_path(&esc, "%s", val);
	if (ret < 0)
		return ret;
	size_t need = strlen(key) + strlen(esc) + 3;
	char *nq = realloc(*q, *qlen + need);
	if (!nq) {
		free(esc);
		return -ENOMEM;
	}
	*q = nq;
	*qlen += (size_t)snprintf(*q + *qlen, need, "%c%s=%s", *qlen ? '&' : '?', key, esc);
	free(esc);
	return 0;
}

int cli_audit_query(const struct cli_args *a, time_t now, char **out)
{
	char *q = NULL, since[40], until[40];
	size_t qlen = 0;
	int ret = 0;
	const char *s;
	const char *since_s = NULL, *until_s = NULL;
	if ((s = cli_args_get(a, CLI_OPT_SINCE))) {
		audit_time_arg(s, now, since, sizeof(since));
		since_s = since;
	}
	if ((s = cli_args_get(a, CLI_OPT_UNTIL))) {
		audit_time_arg(s, now, until, sizeof(until));
		until_s = until;
	}
	struct {
		const char *key, *val;
	} kv[] = {
		{"since", since_s},
		{"until", until_s},
		{"token", cli_args_get(a, CLI_OPT_TOKEN_ID)},
		{"method", cli_args_get(a, CLI_OPT_METHOD)},
		{"path", cli_args_get(a, CLI_OPT_PATH)},
		{"result", cli_args_get(a, CLI_OPT_RESULT)},
		{"limit", cli_args_get(a, CLI_OPT_LIMIT)},
	};
	for (size_t i = 0; i < ARRAY_SIZE(kv) && ret == 0; i++)
		ret = audit_query_add(&q, &qlen, kv[i].key, kv[i].val);
	if (ret < 0) {
		free(q);
		return ret;
	}
	*out = q ? q : strdup("");
	return *out ? 0 : -ENOMEM;
}

static int audit_row(struct cli_table *t, const json_t *e)
{
	char line[24], result[16];
	snprintf(line, sizeof(line), "%lld", cli_json_int(e, "line", 0));
	snprintf(result, sizeof(result), "%lld", cli_json_int(e, "result", 0));
	const char *damaged = cli_json_str(e, "damaged");
	const char *row[] = {
		line, damaged ? damaged : cli_json_str(e, "time"), cli_json_str(e, "token"),
		cli_json_str(e, "role"), cli_json_str(e, "client"), cli_json_str(e, "method"),
		cli_json_str(e, "path"), cli_json_str(e, "object"), damaged ? NULL : result,
	};
	return cli_table_add_row(t, row);
}

int cli_audit_table(const json_t *entries, struct cli_table **out)
{
	static const char *const hdr[] = {">LINE", "TIME", "TOKEN", "ROLE", "CLIENT", "METHOD",
					  "PATH", "OBJECT", ">RESULT"};
	return cli_table_build(entries, ARRAY_SIZE(hdr), hdr, audit_row, out);
}

int cli_audit_list(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	struct cli_table *t = NULL;
	char *q = NULL, *path = NULL;
	int ret = cli_audit_query(a, time(NULL), &q);
	if (ret < 0)
		goto out;
	if (asprintf(&path, "/audit%s", q) < 0) {
		path = NULL;
		ret = -ENOMEM;
		goto out;
	}
	if ((ret = cli_api(cli, "GET", path, NULL, &resp)) < 0)
		goto out;
	if (cli->json) {
		cli_print_raw_json(resp.body, resp.len);
		goto out;
	}
	if ((ret = cli_audit_table(json_object_get(resp.json, "entries"), &t)) < 0)
		goto out;
	if (cli_table_rows(t) == 0)
		printf("no audit entries match\n");
	else
		cli_table_print(t, stdout);
	if (cli_json_bool(resp.json, "truncated"))
		fprintf(stderr, "(the last %zu of %lld matching entries; see --limit)\n",
			cli_table_rows(t), cli_json_int(resp.json, "matched", 0));
out:
	cli_table_free(t);
	free(q);
	free(path);
	cli_response_clear(&resp);
	return ret;
}

int cli_audit_verify(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	const char *file = cli_args_get(a, CLI_OPT_FILE);
	bool ok;
	long long entries, bad = 0;
	char reason[AUDIT_CHAIN_REASON_MAX + 64] = "";
	int ret = 0;
	if (file) {
		struct audit_chain_result res;
		ret = audit_chain_verify_file(file, &res);
		if (ret < 0) {
			ret = cli_fail(cli, ret, "cannot read %s: %s", file, strerror(-ret));
			goto out;
		}
		ok = res.ok;
		entries = (long long)res.entries;
		bad = (long long)res.first_bad_line;
		snprintf(reason, sizeof(reason), "%s", res.reason);
		if (cli->json) {
			json_t *j = json_pack("{s:b,s:I,s:o,s:o}", "ok", ok, "entries",
					      (json_int_t)entries, "first_bad_line",
					      ok ? json_null() : json_integer(bad), "reason",
					      ok ? json_null() : json_string(reason));
			char *s = json_dumps(j, JSON_COMPACT);
			if (s)
				printf("%s\n", s);
			free(s);
			json_decref(j);
		}
	} else {
		if ((ret = cli_api(cli, "GET", "/audit/verify", NULL, &resp)) < 0)
			goto out;
		if (cli->json)
			cli_print_raw_json(resp.body, resp.len);
		ok = cli_json_bool(resp.json, "ok");
		entries = cli_json_int(resp.json, "entries", 0);
		bad = cli_json_int(resp.json, "first_bad_line", 0);
		snprintf(reason, sizeof(reason), "%s",
			 cli_json_str(resp.json, "reason") ? cli_json_str(resp.json, "reason") : "");
	}
	if (ok) {
		if (!cli->json)
			printf("audit log ok: %lld entries, the hash chain is intact\n", entries);
		goto out;
	}
	if (!cli->json)
		printf("audit log BAD at line %lld of %lld: %s\n", bad, entries, reason);
	ret = cli_fail(cli, -EBADMSG, "the audit log%s%s fails verification at line %lld",
		       file ? " " : "", file ? file : "", bad);
out:
	cli_response_clear(&resp);
	return ret;
}
