/* backup: `vessel backup create|list|show|delete|verify|restore|drill|drills`
 * (docs/cli.md "Backups", docs/backups.md). Backups, restores and drills
 * run as tasks in vesseld; the CLI waits for them with a progress display
 * unless --no-wait is given. verify exits 1 when the backup is damaged. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

const struct cli_opt cli_backup_create_opts[] = {
	{"full", CLI_OPT_FULL, false},
	{"no-wait", CLI_OPT_NO_WAIT, false},
	{NULL, 0, false},
};

const struct cli_opt cli_backup_restore_opts[] = {
	{"overwrite", CLI_OPT_OVERWRITE, false},
	{"no-wait", CLI_OPT_NO_WAIT, false},
	{NULL, 0, false},
};

const struct cli_opt cli_backup_drill_opts[] = {
	{"boot-line", CLI_OPT_BOOT_LINE, true},
	{"timeout", CLI_OPT_TIMEOUT, true},
	{"no-wait", CLI_OPT_NO_WAIT, false},
	{NULL, 0, false},
};

static void backup_line(const json_t *b)
{
	char copied[32], size[32];
	cli_format_size((uint64_t)cli_json_int(b, "bytes_copied", 0), copied, sizeof(copied));
	cli_format_size((uint64_t)cli_json_int(b, "disk_bytes", 0), size, sizeof(size));
	printf("%s  %s  %-11s  data %s  copied %s of %s%s%s\n", cli_json_str(b, "id"),
	       cli_json_str(b, "vm"), cli_json_str(b, "kind"), cli_json_str(b, "data_time"), copied,
	       size, cli_json_str(b, "parent") ? "  parent " : "",
	       cli_json_str(b, "parent") ? cli_json_str(b, "parent") : "");
}

/* POST body to path, then wait for the task it starts (unless --no-wait). */
static int backup_task(struct cli *cli, const struct cli_args *a, const char *path, json_t *body,
		       struct cli_response *resp)
{
	int ret = cli_api(cli, "POST", path, body, resp);
	if (ret < 0)
		return ret;
	const char *task = cli_json_str(resp->json, "task");
	if (!task)
		return cli_fail(cli, -EPROTO, "vesseld started no task");
	if (cli_args_has(a, CLI_OPT_NO_WAIT)) {
		if (cli->json)
			cli_print_raw_json(resp->body, resp->len);
		else
			printf("started task %s; follow it with `vessel task show %s`\n", task, task);
		return 1;
	}
	return cli_task_wait(cli, task);
}

int cli_backup_create(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0}, b = {0};
	char *path = NULL;
	json_t *body = json_pack("{s:s,s:s}", "vm", a->pos[0], "mode",
				 cli_args_has(a, CLI_OPT_FULL) ? "full" : "auto");
	int ret = body ? backup_task(cli, a, "/backups", body, &resp) : -ENOMEM;
	if (ret != 0)
		goto out;
	ret = cli_path(&path, "/backups/%s", cli_json_str(resp.json, "backup"));
	if (ret == 0)
		ret = cli_api(cli, "GET", path, NULL, &b);
	if (ret < 0)
		goto out;
	if (cli->json)
		cli_print_raw_json(b.body, b.len);
	else
		backup_line(json_object_get(b.json, "backup"));
out:
	json_decref(body);
	free(path);
	cli_response_clear(&resp);
	cli_response_clear(&b);
	return ret > 0 ? 0 : ret;
}

int cli_backup_list(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	char *path = NULL;
	int ret = a->n_pos ? cli_path(&path, "/backups?vm=%s", a->pos[0]) :
			     cli_path(&path, "/backups");
	if (ret == 0)
		ret = cli_api(cli, "GET", path, NULL, &resp);
	if (ret == 0) {
		const json_t *list = json_object_get(resp.json, "backups");
		size_t i;
		json_t *b;
		if (cli->json)
			cli_print_raw_json(resp.body, resp.len);
		else if (json_array_size(list) == 0)
			printf("no backups in %s\n", cli_json_str(resp.json, "store"));
		else
			json_array_foreach(list, i, b)
				backup_line(b);
	}
	free(path);
	cli_response_clear(&resp);
	return ret;
}

int cli_backup_show(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	char *path = NULL;
	int ret = cli_path(&path, "/backups/%s", a->pos[0]);
	if (ret == 0)
		ret = cli_api(cli, "GET", path, NULL, &resp);
	if (ret == 0) {
		const json_t *b = json_object_get(resp.json, "backup");
		if (cli->json) {
			cli_print_raw_json(resp.body, resp.len);
		} else {
			backup_line(b);
			size_t i;
			json_t *dk;
			json_array_foreach(json_object_get(b, "disks"), i, dk)
				printf("  disk %lld: %lld bytes, %lld chunks (%lld changed), sha256 %s\n",
				       cli_json_int(dk, "index", 0), cli_json_int(dk, "size", 0),
				       cli_json_int(dk, "chunks", 0), cli_json_int(dk, "changed_chunks", 0),
				       cli_json_str(dk, "sha256"));
			if (cli_json_str(b, "fallback_reason"))
				printf("  full because: %s\n", cli_json_str(b, "fallback_reason"));
		}
	}
	free(path);
	cli_response_clear(&resp);
	return ret;
}

int cli_backup_delete(struct cli *cli, const struct cli_args *a)
{
	return cli_delete_item(cli, "backups", a->pos[0], "deleted backup %s\n");
}

int cli_backup_verify(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	char *path = NULL;
	int ret = cli_path(&path, "/backups/%s/verify", a->pos[0]);
	if (ret == 0)
		ret = cli_api(cli, "POST", path, NULL, &resp);
	if (ret == 0) {
		bool ok = cli_json_bool(resp.json, "ok");
		if (cli->json)
			cli_print_raw_json(resp.body, resp.len);
		else if (ok)
			printf("backup %s is good: %lld chunks and every disk hash checked\n", a->pos[0],
			       cli_json_int(resp.json, "chunks", 0));
		if (!ok)
			ret = cli_fail(cli, -EBADMSG, "backup %s is damaged: %s", a->pos[0],
				       cli_json_str(resp.json, "message"));
	}
	free(path);
	cli_response_clear(&resp);
	return ret;
}

int cli_backup_restore(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	char *path = NULL;
	json_t *body = json_pack("{s:s,s:b}", "vm", a->pos[1], "overwrite",
				 cli_args_has(a, CLI_OPT_OVERWRITE));
	int ret = body ? cli_path(&path, "/backups/%s/restore", a->pos[0]) : -ENOMEM;
	if (ret == 0)
		ret = backup_task(cli, a, path, body, &resp);
	if (ret == 0 && !cli->json)
		printf("restored backup %s into VM %s\n", a->pos[0], a->pos[1]);
	json_decref(body);
	free(path);
	cli_response_clear(&resp);
	return ret > 0 ? 0 : ret;
}

static void drill_line(const json_t *d)
{
	char rto[32] = "-";
	if (json_is_number(json_object_get(d, "rto_s")))
		snprintf(rto, sizeof(rto), "%.1f s", json_number_value(json_object_get(d, "rto_s")));
	printf("%s  %s  backup %s  %s  RTO %s  RPO %lld s%s%s\n", cli_json_str(d, "started_at"),
	       cli_json_str(d, "id"), cli_json_str(d, "backup"), cli_json_str(d, "result"), rto,
	       cli_json_int(d, "rpo_s", 0), cli_json_str(d, "error") ? "  " : "",
	       cli_json_str(d, "error") ? cli_json_str(d, "error") : "");
}

int cli_backup_drill(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0}, list = {0}, b = {0};
	char *path = NULL;
	const char *line = cli_args_get(a, CLI_OPT_BOOT_LINE), *to = cli_args_get(a, CLI_OPT_TIMEOUT);
	uint64_t timeout = 300;
	json_t *body = NULL;
	int ret;
	if (!line)
		return cli_fail(cli, -EINVAL, "--boot-line TEXT is required: the console text that "
					      "shows the restored guest booted");
	if (to && util_parse_u64(to, 1, 3600, &timeout) < 0)
		return cli_fail(cli, -EINVAL, "--timeout must be 1..3600 seconds; got '%s'", to);
	body = json_pack("{s:s,s:I}", "boot_line", line, "timeout_s", (json_int_t)timeout);
	ret = body ? cli_path(&path, "/backups/%s/drill", a->pos[0]) : -ENOMEM;
	if (ret == 0)
		ret = backup_task(cli, a, path, body, &resp);
	if (ret != 0)
		goto out;
	free(path);
	path = NULL;
	/* show the result just recorded: the newest drill of the backup's VM */
	if ((ret = cli_path(&path, "/backups/%s", a->pos[0])) < 0 ||
	    (ret = cli_api(cli, "GET", path, NULL, &b)) < 0)
		goto out;
	free(path);
	path = NULL;
	const char *vm = cli_json_str(json_object_get(b.json, "backup"), "vm");
	if ((ret = cli_path(&path, "/vms/%s/drills", vm ? vm : "")) < 0 ||
	    (ret = cli_api(cli, "GET", path, NULL, &list)) < 0)
		goto out;
	const json_t *drills = json_object_get(list.json, "drills");
	const json_t *last = json_array_get(drills, json_array_size(drills) - 1);
	if (cli->json)
		cli_print_raw_json(list.body, list.len);
	else if (last)
		drill_line(last);
out:
	json_decref(body);
	free(path);
	cli_response_clear(&resp);
	cli_response_clear(&list);
	cli_response_clear(&b);
	return ret > 0 ? 0 : ret;
}

int cli_backup_drills(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	char *path = NULL;
	int ret = cli_path(&path, "/vms/%s/drills", a->pos[0]);
	if (ret == 0)
		ret = cli_api(cli, "GET", path, NULL, &resp);
	if (ret == 0) {
		const json_t *list = json_object_get(resp.json, "drills");
		size_t i;
		json_t *d;
		if (cli->json)
			cli_print_raw_json(resp.body, resp.len);
		else if (json_array_size(list) == 0)
			printf("VM %s has no restore drills yet\n", a->pos[0]);
		else
			json_array_foreach(list, i, d)
				drill_line(d);
	}
	free(path);
	cli_response_clear(&resp);
	return ret;
}
