/* snapshot: `vessel snapshot list|create|show|revert|delete` and the
 * schedule commands (docs/cli.md "Snapshots", docs/backups.md). The list
 * prints the snapshot tree with the space each snapshot's files use. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

const struct cli_opt cli_snapshot_create_opts[] = {
	{"full", CLI_OPT_FULL, false},
	{"description", CLI_OPT_DESCRIPTION, true},
	{NULL, 0, false},
};

const struct cli_opt cli_snapshot_revert_opts[] = {
	{"stop", CLI_OPT_STOP, false},
	{NULL, 0, false},
};

const struct cli_opt cli_snapshot_delete_opts[] = {
	{"merge", CLI_OPT_MERGE, false},
	{NULL, 0, false},
};

const struct cli_opt cli_schedule_add_opts[] = {
	{"every", CLI_OPT_EVERY, true},
	{"daily-at", CLI_OPT_DAILY_AT, true},
	{"full", CLI_OPT_FULL, false},
	{"keep-count", CLI_OPT_KEEP_COUNT, true},
	{"keep-age", CLI_OPT_KEEP_AGE, true},
	{"start-at", CLI_OPT_START_AT, true},
	{NULL, 0, false},
};

static const json_t *snapshot_find(const json_t *list, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s) {
		const char *n = cli_json_str(s, "name");
		if (n && strcmp(n, name) == 0)
			return s;
	}
	return NULL;
}

static void snapshot_tree_print(const json_t *nodes, const json_t *flat, int depth)
{
	size_t i;
	json_t *n;
	json_array_foreach(nodes, i, n) {
		const json_t *s = snapshot_find(flat, cli_json_str(n, "name"));
		char used[32];
		cli_format_size((uint64_t)cli_json_int(s, "used_bytes", 0), used, sizeof(used));
		printf("%*s%s%s  %s  %s  %s%s%s\n", depth * 2, "", depth ? "└ " : "",
		       cli_json_str(n, "name"), cli_json_str(n, "type"), cli_json_str(s, "created_at"),
		       used, cli_json_bool(n, "current") ? "  (current)" : "",
		       cli_json_str(s, "schedule") ? "  [scheduled]" : "");
		snapshot_tree_print(json_object_get(n, "children"), flat, depth + 1);
	}
}

static void snapshot_list_print(const json_t *reply, const void *opaque)
{
	const json_t *flat = json_object_get(reply, "snapshots");
	if (json_array_size(flat) == 0) {
		printf("VM %s has no snapshots\n", (const char *)opaque);
		return;
	}
	printf("NAME  TYPE  CREATED  USED\n");
	snapshot_tree_print(json_object_get(reply, "tree"), flat, 0);
}

int cli_snapshot_list(struct cli *cli, const struct cli_args *a)
{
	char *path = NULL;
	int ret = cli_path(&path, "/vms/%s/snapshots", a->pos[0]);
	if (ret == 0)
		ret = cli_send_print(cli, "GET", path, NULL, snapshot_list_print, a->pos[0]);
	free(path);
	return ret;
}

static void snapshot_print(const json_t *reply, const void *opaque)
{
	const json_t *s = json_object_get(reply, "snapshot");
	char used[32];
	cli_format_size((uint64_t)cli_json_int(s, "used_bytes", 0), used, sizeof(used));
	const char *keys[] = {"vm", "name", "type", "parent", "created", "vm state", "used",
			      "current", "schedule", "description"};
	const char *vals[] = {cli_json_str(s, "vm"), cli_json_str(s, "name"), cli_json_str(s, "type"),
			      cli_json_str(s, "parent"), cli_json_str(s, "created_at"),
			      cli_json_str(s, "vm_state"), used,
			      cli_json_bool(s, "current") ? "yes" : "no", cli_json_str(s, "schedule"),
			      cli_json_str(s, "description")};
	if (opaque)
		printf("%s\n", (const char *)opaque);
	cli_kv_print(stdout, keys, vals, ARRAY_SIZE(keys));
}

int cli_snapshot_create(struct cli *cli, const struct cli_args *a)
{
	char *path = NULL;
	const char *desc = cli_args_get(a, CLI_OPT_DESCRIPTION);
	json_t *body = json_pack("{s:s,s:s}", "name", a->pos[1], "type",
				 cli_args_has(a, CLI_OPT_FULL) ? "full" : "disk");
	int ret = body ? cli_path(&path, "/vms/%s/snapshots", a->pos[0]) : -ENOMEM;
	if (ret == 0 && desc)
		json_object_set_new(body, "description", json_string(desc));
	if (ret == 0)
		ret = cli_send_print(cli, "POST", path, body, snapshot_print, "snapshot taken:");
	json_decref(body);
	free(path);
	return ret;
}

int cli_snapshot_show(struct cli *cli, const struct cli_args *a)
{
	char *path = NULL;
	int ret = cli_path(&path, "/vms/%s/snapshots/%s", a->pos[0], a->pos[1]);
	if (ret == 0)
		ret = cli_send_print(cli, "GET", path, NULL, snapshot_print, NULL);
	free(path);
	return ret;
}

static void snapshot_revert_print(const json_t *reply, const void *opaque)
{
	printf("VM %s reverted to snapshot %s; it is %s%s\n", cli_json_str(reply, "vm"),
	       cli_json_str(reply, "reverted_to"), cli_json_str(reply, "state"),
	       cli_json_bool(reply, "resumed") ? " (resumed where the snapshot was taken)" : "");
}

int cli_snapshot_revert(struct cli *cli, const struct cli_args *a)
{
	char *path = NULL;
	json_t *body = json_pack("{s:b}", "stop", cli_args_has(a, CLI_OPT_STOP));
	int ret = body ? cli_path(&path, "/vms/%s/snapshots/%s/revert", a->pos[0], a->pos[1]) :
			 -ENOMEM;
	if (ret == 0)
		ret = cli_send_print(cli, "POST", path, body, snapshot_revert_print, NULL);
	json_decref(body);
	free(path);
	return ret;
}

static void snapshot_deleted_print(const json_t *reply, const void *opaque)
{
	printf("deleted %s %s\n", (const char *)opaque, cli_json_str(reply, "deleted"));
}

int cli_snapshot_delete(struct cli *cli, const struct cli_args *a)
{
	char *path = NULL;
	int ret = cli_path(&path, cli_args_has(a, CLI_OPT_MERGE) ?
					  "/vms/%s/snapshots/%s?merge=true" :
					  "/vms/%s/snapshots/%s",
			   a->pos[0], a->pos[1]);
	if (ret == 0)
		ret = cli_send_print(cli, "DELETE", path, NULL, snapshot_deleted_print, "snapshot");
	free(path);
	return ret;
}

static void schedule_line(const json_t *s)
{
	char when[64];
	if (cli_json_str(s, "daily_at"))
		snprintf(when, sizeof(when), "daily at %s UTC", cli_json_str(s, "daily_at"));
	else
		snprintf(when, sizeof(when), "every %llds", cli_json_int(s, "every_s", 0));
	printf("%s  %s  %s  keep_count %lld  keep_age %llds  next %s\n", cli_json_str(s, "id"), when,
	       cli_json_str(s, "type"), cli_json_int(s, "keep_count", 0),
	       cli_json_int(s, "keep_age_s", 0), cli_json_str(s, "next_run"));
}

static void schedule_print(const json_t *reply, const void *opaque)
{
	printf("schedule added: ");
	schedule_line(json_object_get(reply, "schedule"));
}

int cli_schedule_add(struct cli *cli, const struct cli_args *a)
{
	char *path = NULL;
	json_t *body = json_object();
	const char *every = cli_args_get(a, CLI_OPT_EVERY), *daily = cli_args_get(a, CLI_OPT_DAILY_AT);
	const char *kc = cli_args_get(a, CLI_OPT_KEEP_COUNT), *ka = cli_args_get(a, CLI_OPT_KEEP_AGE);
	const char *start = cli_args_get(a, CLI_OPT_START_AT);
	uint64_t n = 0;
	int ret = 0;
	if (!body)
		return -ENOMEM;
	if (every)
		json_object_set_new(body, "every", json_string(every));
	if (daily)
		json_object_set_new(body, "daily_at", json_string(daily));
	if (cli_args_has(a, CLI_OPT_FULL))
		json_object_set_new(body, "type", json_string("full"));
	if (kc) {
		if (util_parse_u64(kc, 0, 100000, &n) < 0) {
			ret = cli_fail(cli, -EINVAL, "--keep-count must be a number from 0 (no limit) "
						     "to 100000; got '%s'", kc);
			goto out;
		}
		json_object_set_new(body, "keep_count", json_integer((json_int_t)n));
	}
	if (ka)
		json_object_set_new(body, "keep_age", json_string(ka));
	if (start)
		json_object_set_new(body, "start_at", json_string(start));
	ret = cli_path(&path, "/vms/%s/schedules", a->pos[0]);
	if (ret == 0)
		ret = cli_send_print(cli, "POST", path, body, schedule_print, NULL);
out:
	json_decref(body);
	free(path);
	return ret;
}

static void schedule_list_print(const json_t *reply, const void *opaque)
{
	const json_t *list = json_object_get(reply, "schedules");
	size_t i;
	json_t *s;
	if (json_array_size(list) == 0)
		printf("VM %s has no snapshot schedules\n", (const char *)opaque);
	json_array_foreach(list, i, s)
		schedule_line(s);
}

int cli_schedule_list(struct cli *cli, const struct cli_args *a)
{
	char *path = NULL;
	int ret = cli_path(&path, "/vms/%s/schedules", a->pos[0]);
	if (ret == 0)
		ret = cli_send_print(cli, "GET", path, NULL, schedule_list_print, a->pos[0]);
	free(path);
	return ret;
}

int cli_schedule_delete(struct cli *cli, const struct cli_args *a)
{
	char *path = NULL;
	int ret = cli_path(&path, "/vms/%s/schedules/%s", a->pos[0], a->pos[1]);
	if (ret == 0)
		ret = cli_send_print(cli, "DELETE", path, NULL, snapshot_deleted_print, "schedule");
	free(path);
	return ret;
}
