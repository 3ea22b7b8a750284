/* token: `vessel token create|list|revoke` (docs/api.md "Tokens"). The
 * secret of a new token is printed once, on its own line, so it can be
 * captured with $(...); vesseld keeps only its hash. */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

const struct cli_opt cli_token_create_opts[] = {
	{"role", CLI_OPT_ROLE, true},
	{"project", CLI_OPT_PROJECT, true},
	{"expires", CLI_OPT_EXPIRES, true},
	{NULL, 0, false},
};

int cli_token_create_body(const struct cli_args *a, json_t **out, char *err, size_t errlen)
{
	const char *role = cli_args_get(a, CLI_OPT_ROLE);
	const char *project = cli_args_get(a, CLI_OPT_PROJECT);
	const char *expires = cli_args_get(a, CLI_OPT_EXPIRES);
	if (!role) {
		snprintf(err, errlen, "token create needs --role admin|operator|viewer");
		return -EINVAL;
	}
	json_t *b = json_pack("{s:s,s:s}", "name", a->pos[0], "role", role);
	if (!b)
		return -ENOMEM;
	if (project)
		json_object_set_new(b, "project", json_string(project));
	if (expires)
		json_object_set_new(b, "expires", json_string(expires));
	*out = b;
	return 0;
}

static int token_row(struct cli_table *t, const json_t *tok)
{
	const char *row[] = {
		cli_json_str(tok, "id"), cli_json_str(tok, "name"), cli_json_str(tok, "role"),
		cli_json_str(tok, "project"), cli_json_str(tok, "created_at"),
		cli_json_str(tok, "expires_at"), cli_json_str(tok, "last_used_at"),
		cli_json_str(tok, "revoked_at"),
	};
	return cli_table_add_row(t, row);
}

int cli_token_table(const json_t *tokens, struct cli_table **out)
{
	static const char *const hdr[] = {"ID", "NAME", "ROLE", "PROJECT", "CREATED", "EXPIRES",
					  "LAST-USED", "REVOKED"};
	return cli_table_build(tokens, ARRAY_SIZE(hdr), hdr, token_row, out);
}

int cli_token_create(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	json_t *body = NULL;
	char err[256];
	int ret = cli_token_create_body(a, &body, err, sizeof(err));
	if (ret < 0) {
		ret = cli_fail(cli, ret, "%s", err);
		goto out;
	}
	if ((ret = cli_api(cli, "POST", "/tokens", body, &resp)) < 0)
		goto out;
	if (cli->json) {
		cli_print_raw_json(resp.body, resp.len);
		goto out;
	}
	json_t *tok = json_object_get(resp.json, "token");
	const char *project = cli_json_str(tok, "project");
	const char *expires = cli_json_str(tok, "expires_at");
	fprintf(stderr, "created token %s '%s' (role %s%s%s, %s%s); the secret below is shown "
		"only now:\n", cli_json_str(tok, "id"), cli_json_str(tok, "name"),
		cli_json_str(tok, "role"), project ? ", project " : "", project ? project : "",
		expires ? "expires " : "never expires", expires ? expires : "");
	printf("%s\n", cli_json_str(resp.json, "secret"));
out:
	json_decref(body);
	cli_response_clear(&resp);
	return ret;
}

int cli_token_list(struct cli *cli, const struct cli_args *a)
{
	return cli_list_print(cli, "tokens", cli_token_table, "no tokens");
}

int cli_token_revoke(struct cli *cli, const struct cli_args *a)
{
	return cli_delete_item(cli, "tokens", a->pos[0], "revoked token %s\n");
}
