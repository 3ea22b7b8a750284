/* project: `vessel project list|show|create|update|delete`, projects with
 * quotas on VMs, vCPUs, memory and disk (docs/cli.md, docs/api.md
 * "Projects"). The request body is built by a pure function so it is
 * unit-tested; vesseld checks names and ranges and explains them. */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

const struct cli_opt cli_project_opts[] = {
	{"description", CLI_OPT_DESCRIPTION, true},
	{"max-vms", CLI_OPT_MAX_VMS, true},
	{"max-vcpus", CLI_OPT_MAX_VCPUS, true},
	{"max-memory", CLI_OPT_MAX_MEMORY, true},
	{"max-disk", CLI_OPT_MAX_DISK, true},
	{NULL, 0, false},
};

static bool project_unlimited(const char *v)
{
	return strcmp(v, "none") == 0 || strcmp(v, "unlimited") == 0;
}

/* One quota option into quotas[key]: a count, a size, or none. */
static int project_quota(const struct cli_args *a, int id, const char *opt, const char *key,
			 json_t *quotas, char *err, size_t errlen)
{
	const char *v = cli_args_get(a, id);
	uint64_t n;
	int r = 0;
	if (!v)
		return 0;
	if (project_unlimited(v))
		return json_object_set_new(quotas, key, json_null()) == 0 ? 0 : -ENOMEM;
	if (id == CLI_OPT_MAX_MEMORY)
		r = cli_parse_memory_mib(v, &n);
	else if (id == CLI_OPT_MAX_DISK)
		r = cli_parse_disk_gib(v, &n);
	else
		r = util_parse_u64(v, 0, INT32_MAX, &n);
	if (r < 0 || n > INT64_MAX) {
		snprintf(err, errlen, "--%s '%s' is not %s, or 'none' for unlimited", opt, v,
			 id == CLI_OPT_MAX_MEMORY ? "a size such as 16G" :
			 id == CLI_OPT_MAX_DISK	  ? "a size in whole GiB such as 500G" :
						    "a whole number");
		return -EINVAL;
	}
	return json_object_set_new(quotas, key, json_integer((json_int_t)n)) == 0 ? 0 : -ENOMEM;
}

int cli_project_body(const struct cli_args *a, bool create, json_t **out, char *err,
		     size_t errlen)
{
	json_t *body = json_object(), *quotas = json_object();
	int ret = -ENOMEM;
	if (!body || !quotas)
		goto out;
	if (create && (a->n_pos < 1 ||
		       json_object_set_new(body, "name", json_string(a->pos[0])) != 0)) {
		snprintf(err, errlen, "project create needs a NAME");
		ret = -EINVAL;
		goto out;
	}
	const char *desc = cli_args_get(a, CLI_OPT_DESCRIPTION);
	if (desc && json_object_set_new(body, "description", json_string(desc)) != 0)
		goto out;
	if ((ret = project_quota(a, CLI_OPT_MAX_VMS, "max-vms", "vms", quotas, err, errlen)) < 0 ||
	    (ret = project_quota(a, CLI_OPT_MAX_VCPUS, "max-vcpus", "vcpus", quotas, err, errlen)) < 0 ||
	    (ret = project_quota(a, CLI_OPT_MAX_MEMORY, "max-memory", "memory_mib", quotas, err,
				 errlen)) < 0 ||
	    (ret = project_quota(a, CLI_OPT_MAX_DISK, "max-disk", "disk_gib", quotas, err, errlen)) < 0)
		goto out;
	if (json_object_size(quotas)) {
		json_object_set(body, "quotas", quotas);
	}
	if (!create && json_object_size(body) == 0) {
		snprintf(err, errlen, "nothing to change; give at least one of --description, --max-vms, "
				      "--max-vcpus, --max-memory, --max-disk");
		ret = -EINVAL;
		goto out;
	}
	*out = body;
	body = NULL;
	ret = 0;
out:
	json_decref(quotas);
	json_decref(body);
	return ret;
}

/* "used/quota" or "used/-" for unlimited; memory and disk as sizes. */
static void project_cell(const json_t *p, const char *key, uint64_t unit, char *buf, size_t len)
{
	json_t *q = json_object_get(json_object_get(p, "quotas"), key);
	long long used = cli_json_int(json_object_get(p, "usage"), key, 0);
	char u[32], l[32];
	if (unit) {
		cli_format_size((uint64_t)used * unit, u, sizeof(u));
		if (json_is_integer(q))
			cli_format_size((uint64_t)json_integer_value(q) * unit, l, sizeof(l));
	} else {
		snprintf(u, sizeof(u), "%lld", used);
		if (json_is_integer(q))
			snprintf(l, sizeof(l), "%lld", (long long)json_integer_value(q));
	}
	snprintf(buf, len, "%s/%s", u, json_is_integer(q) ? l : "-");
}

static int project_row(struct cli_table *t, const json_t *p)
{
	char vms[48], vcpus[48], mem[80], disk[80];
	project_cell(p, "vms", 0, vms, sizeof(vms));
	project_cell(p, "vcpus", 0, vcpus, sizeof(vcpus));
	project_cell(p, "memory_mib", MiB, mem, sizeof(mem));
	project_cell(p, "disk_gib", GiB, disk, sizeof(disk));
	const char *desc = cli_json_str(p, "description");
	const char *row[] = {cli_json_str(p, "name"), vms, vcpus, mem, disk,
			     desc && *desc ? desc : NULL};
	return cli_table_add_row(t, row);
}

int cli_project_table(const json_t *projects, struct cli_table **out)
{
	static const char *const hdr[] = {"NAME", ">VMS", ">VCPUS", ">MEMORY", ">DISK", "DESCRIPTION"};
	return cli_table_build(projects, ARRAY_SIZE(hdr), hdr, project_row, out);
}

static void project_print(const json_t *p)
{
	char vms[48], vcpus[48], mem[80], disk[80];
	project_cell(p, "vms", 0, vms, sizeof(vms));
	project_cell(p, "vcpus", 0, vcpus, sizeof(vcpus));
	project_cell(p, "memory_mib", MiB, mem, sizeof(mem));
	project_cell(p, "disk_gib", GiB, disk, sizeof(disk));
	const char *desc = cli_json_str(p, "description");
	const char *keys[] = {"name", "description", "vms (used/quota)", "vcpus", "memory", "disk",
			      "created"};
	const char *vals[] = {cli_json_str(p, "name"), desc && *desc ? desc : "-", vms, vcpus, mem,
			      disk, cli_json_str(p, "created_at")};
	cli_kv_print(stdout, keys, vals, ARRAY_SIZE(keys));
}

int cli_project_list(struct cli *cli, const struct cli_args *a)
{
	return cli_list_print(cli, "projects", cli_project_table, "no projects");
}

int cli_project_show(struct cli *cli, const struct cli_args *a)
{
	return cli_show_print(cli, "projects", a->pos[0], "project", project_print);
}

/* POST or PATCH, then print the project vesseld answered with. */
static int project_send(struct cli *cli, const struct cli_args *a, bool create)
{
	json_t *body = NULL;
	char *path = NULL;
	int ret = cli_project_body(a, create, &body, cli->err, sizeof(cli->err));
	if (ret < 0)
		goto out;
	if (create)
		ret = cli_send_item(cli, "POST", "/projects", body, "project", project_print);
	else if ((ret = cli_path(&path, "/projects/%s", a->pos[0])) == 0)
		ret = cli_send_item(cli, "PATCH", path, body, "project", project_print);
out:
	free(path);
	json_decref(body);
	return ret;
}

int cli_project_create(struct cli *cli, const struct cli_args *a)
{
	return project_send(cli, a, true);
}

int cli_project_update(struct cli *cli, const struct cli_args *a)
{
	return project_send(cli, a, false);
}

int cli_project_delete(struct cli *cli, const struct cli_args *a)
{
	return cli_delete_item(cli, "projects", a->pos[0], "project %s deleted\n");
}
