/* args: the command line parser of `vessel`. Long options only ("--name",
 * "--name=value", "--name value"), accepted anywhere on the line so that
 * `vessel vm list --json` and `vessel --json vm list` mean the same; "--"
 * ends options so a description may start with a dash. Also the size
 * arguments whose units the REST API cannot know (memory in MiB, disks in
 * whole GiB). Everything here is pure so it can be unit-tested. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

const struct cli_opt cli_global_opts[] = {
	{"socket", CLI_OPT_SOCKET, true},
	{"url", CLI_OPT_URL, true},
	{"token", CLI_OPT_TOKEN, true},
	{"token-file", CLI_OPT_TOKEN_FILE, true},
	{"json", CLI_OPT_JSON, false},
	{"help", CLI_OPT_HELP, false},
	{"version", CLI_OPT_VERSION, false},
	{NULL, 0, false},
};

static const struct cli_opt *args_opt_find(const struct cli_opt *const *tables,
					   const char *name, size_t name_len)
{
	for (size_t t = 0; tables[t]; t++)
		for (const struct cli_opt *o = tables[t]; o->name; o++)
			if (strlen(o->name) == name_len && strncmp(o->name, name, name_len) == 0)
				return o;
	return NULL;
}

int cli_args_parse(const struct cli_opt *const *tables, int argc, char **argv,
		   struct cli_args *out, char *err, size_t errlen)
{
	int ret = 0;
	bool options_done = false;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
			if (out->n_pos == CLI_ARGS_MAX) {
				snprintf(err, errlen, "too many arguments (at most %d)", CLI_ARGS_MAX);
				ret = -E2BIG;
				goto out;
			}
			out->pos[out->n_pos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0) {
			out->help = true;
			continue;
		}
		if (arg[1] != '-') {
			snprintf(err, errlen, "unknown option '%s'; options are spelled --name, see --help", arg);
			ret = -EINVAL;
			goto out;
		}

		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
		const struct cli_opt *o = args_opt_find(tables, name, name_len);
		if (!o) {
			snprintf(err, errlen, "unknown option '--%.*s'; see --help for the options of this command",
				 (int)name_len, name);
			ret = -EINVAL;
			goto out;
		}

		const char *value = NULL;
		if (o->has_arg) {
			if (eq) {
				value = eq + 1;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				snprintf(err, errlen, "option '--%s' needs a value", o->name);
				ret = -EINVAL;
				goto out;
			}
		} else if (eq) {
			snprintf(err, errlen, "option '--%s' takes no value", o->name);
			ret = -EINVAL;
			goto out;
		}

		if (o->id == CLI_OPT_HELP) {
			out->help = true;
			continue;
		}
		if (out->n_opts == CLI_ARGS_MAX) {
			snprintf(err, errlen, "too many options (at most %d)", CLI_ARGS_MAX);
			ret = -E2BIG;
			goto out;
		}
		out->opts[out->n_opts].id = o->id;
		out->opts[out->n_opts].value = value;
		out->n_opts++;
	}
out:
	return ret;
}

const char *cli_args_get(const struct cli_args *a, int id)
{
	const char *v = NULL;

	for (size_t i = 0; i < a->n_opts; i++)
		if (a->opts[i].id == id)
			v = a->opts[i].value;
	return v;
}

bool cli_args_has(const struct cli_args *a, int id)
{
	for (size_t i = 0; i < a->n_opts; i++)
		if (a->opts[i].id == id)
			return true;
	return false;
}

void cli_args_find_command(int argc, char **argv, int *group_idx, int *cmd_idx)
{
	*group_idx = 0;
	*cmd_idx = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--") == 0)
			return;
		if (arg[0] == '-' && arg[1] == '-') {
			/* A global option with a separate value swallows the next
			 * word, so `--socket /x vm list` finds "vm". */
			const char *name = arg + 2;
			if (strchr(name, '='))
				continue;
			for (const struct cli_opt *o = cli_global_opts; o->name; o++)
				if (o->has_arg && strcmp(o->name, name) == 0) {
					i++;
					break;
				}
			continue;
		}
		if (arg[0] == '-' && arg[1])
			continue;
		if (!*group_idx) {
			*group_idx = i;
		} else {
			*cmd_idx = i;
			return;
		}
	}
}

int cli_parse_memory_mib(const char *s, uint64_t *mib)
{
	uint64_t v;
	int ret;

	if (!s || !*s)
		return -EINVAL;
	/* A bare number is MiB: nobody means 512 bytes of guest memory. */
	if (strspn(s, "0123456789") == strlen(s))
		return util_parse_u64(s, 0, UINT64_MAX, mib);
	ret = util_parse_size(s, &v);
	if (ret < 0)
		return ret;
	if (v % MiB)
		return -EINVAL;
	*mib = v / MiB;
	return 0;
}

int cli_parse_disk_gib(const char *s, uint64_t *gib)
{
	uint64_t v;
	int ret;

	if (!s || !*s)
		return -EINVAL;
	if (strspn(s, "0123456789") == strlen(s))
		return util_parse_u64(s, 0, UINT64_MAX, gib);
	ret = util_parse_size(s, &v);
	if (ret < 0)
		return ret;
	if (v % GiB)
		return -EINVAL;
	*gib = v / GiB;
	return 0;
}
