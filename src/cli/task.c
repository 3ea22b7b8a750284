/* task: `vessel task list|show` and waiting for the long operations the API
 * runs as tasks (image import, full-copy disks; docs/api.md "Tasks"). While
 * waiting, progress goes to stderr so stdout keeps only the result. */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

/* How often a running task is polled; imports take seconds, so this is
 * responsive without loading the daemon. */
#define TASK_POLL_MS 300

static volatile sig_atomic_t task_interrupted;

static void task_on_sigint(int sig)
{
	task_interrupted = 1;
}

int cli_task_wait(struct cli *cli, const char *id)
{
	/* Ctrl-C stops waiting, not the task: say so instead of dying with
	 * a half-drawn progress bar. */
	struct sigaction sa = {.sa_handler = task_on_sigint}, old_sa;
	struct cli_response resp = {0};
	char *path = NULL;
	char line[256];
	bool tty = isatty(STDERR_FILENO);
	int last = -1;
	int ret;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_sa);
	task_interrupted = 0;
	ret = cli_path(&path, "/tasks/%s", id);
	if (ret < 0)
		goto out;
	for (;;) {
		if (task_interrupted) {
			if (tty && last >= 0)
				fputc('\n', stderr);
			ret = cli_fail(cli, -EINTR, "stopped waiting; task %s goes on in vesseld "
				       "(follow it with `vessel task show %s`)", id, id);
			goto out;
		}
		cli_response_clear(&resp);
		ret = cli_api(cli, "GET", path, NULL, &resp);
		if (ret < 0)
			goto out;
		json_t *task = json_object_get(resp.json, "task");
		const char *state = cli_json_str(task, "state");
		int progress = (int)cli_json_int(task, "progress", 0);
		if (!state) {
			ret = cli_fail(cli, -EPROTO, "task %s has no state in vesseld's answer", id);
			goto out;
		}
		bool done = strcmp(state, "running") != 0;
		if (done && strcmp(state, "succeeded") == 0)
			progress = 100;
		if (progress != last) {
			char label[160];
			snprintf(label, sizeof(label), "%s %s",
				 cli_json_str(task, "kind") ? cli_json_str(task, "kind") : "task",
				 cli_json_str(task, "target") ? cli_json_str(task, "target") : id);
			cli_progress_format(tty, id, label, progress, line, sizeof(line));
			fputs(line, stderr);
			last = progress;
		}
		if (done) {
			if (tty)
				fputc('\n', stderr);
			if (strcmp(state, "succeeded") != 0) {
				const char *e = cli_json_str(task, "error");
				ret = cli_fail(cli, -EIO, "task %s %s: %s", id, state,
					       e && *e ? e : "no reason given; see vesseld's log");
			}
			goto out;
		}
		struct timespec ts = {0, TASK_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
out:
	sigaction(SIGINT, &old_sa, NULL);
	cli_response_clear(&resp);
	free(path);
	return ret;
}

int cli_task_table(const json_t *tasks, struct cli_table **out)
{
	static const char *const hdr[] = {"ID", "KIND", "TARGET", "STATE", ">PROGRESS", "CREATED", "ERROR"};
	struct cli_table *t = NULL;
	size_t i;
	json_t *task;
	int ret;

	ret = cli_table_new(ARRAY_SIZE(hdr), hdr, &t);
	if (ret < 0)
		goto out;
	json_array_foreach(tasks, i, task) {
		char pct[16];
		snprintf(pct, sizeof(pct), "%lld%%", cli_json_int(task, "progress", 0));
		const char *err = cli_json_str(task, "error");
		const char *row[] = {
			cli_json_str(task, "id"), cli_json_str(task, "kind"),
			cli_json_str(task, "target"), cli_json_str(task, "state"), pct,
			cli_json_str(task, "created_at"), err && *err ? err : NULL,
		};
		ret = cli_table_add_row(t, row);
		if (ret < 0)
			goto out;
	}
	*out = t;
	t = NULL;
out:
	cli_table_free(t);
	return ret;
}

int cli_task_list(struct cli *cli, const struct cli_args *a)
{
	return cli_list_print(cli, "tasks", cli_task_table, "no tasks");
}

int cli_task_show(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	int ret;

	ret = cli_get_item(cli, "tasks", a->pos[0], &resp);
	if (ret < 0)
		goto out;
	if (cli->json) {
		cli_print_raw_json(resp.body, resp.len);
		goto out;
	}
	json_t *task = json_object_get(resp.json, "task");
	char pct[16];
	snprintf(pct, sizeof(pct), "%lld%%", cli_json_int(task, "progress", 0));
	const char *keys[] = {"id", "kind", "target", "state", "progress", "message", "error",
			      "created", "finished"};
	const char *vals[] = {
		cli_json_str(task, "id"), cli_json_str(task, "kind"), cli_json_str(task, "target"),
		cli_json_str(task, "state"), pct, cli_json_str(task, "message"),
		cli_json_str(task, "error"), cli_json_str(task, "created_at"),
		cli_json_str(task, "finished_at"),
	};
	cli_kv_print(stdout, keys, vals, ARRAY_SIZE(keys));
out:
	cli_response_clear(&resp);
	return ret;
}
