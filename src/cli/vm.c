/* vm: `vessel vm ...` — list, create, show, update, the power actions,
 * delete and log (docs/api.md "VMs"). The interactive console is in
 * console.c. Arguments are turned into API bodies by pure functions
 * (cli_vm_create_body, cli_vm_update_body) so they can be unit-tested;
 * ranges and names are left for vesseld to check and explain. */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

const struct cli_opt cli_vm_create_opts[] = {
	{"vcpus", CLI_OPT_VCPUS, true},
	{"memory", CLI_OPT_MEMORY, true},
	{"image", CLI_OPT_IMAGE, true},
	{"full-copy", CLI_OPT_FULL_COPY, false},
	{"disk-size", CLI_OPT_DISK_SIZE, true},
	{"blank-disk", CLI_OPT_BLANK_DISK, true},
	{"firmware", CLI_OPT_FIRMWARE, true},
	{"kernel", CLI_OPT_KERNEL, true},
	{"initrd", CLI_OPT_INITRD, true},
	{"cmdline", CLI_OPT_CMDLINE, true},
	{"description", CLI_OPT_DESCRIPTION, true},
	{"autostart", CLI_OPT_AUTOSTART, false},
	{"restart", CLI_OPT_RESTART, true},
	{"no-wait", CLI_OPT_NO_WAIT, false},
	{"project", CLI_OPT_PROJECT, true},
	{"priority", CLI_OPT_PRIORITY, true},
	{"nic", CLI_OPT_NIC, true},
	{NULL, 0, false},
};

const struct cli_opt cli_vm_update_opts[] = {
	{"nic", CLI_OPT_NIC, true},
	{"no-nics", CLI_OPT_NO_NICS, false},
	{"vcpus", CLI_OPT_VCPUS, true},
	{"memory", CLI_OPT_MEMORY, true},
	{"firmware", CLI_OPT_FIRMWARE, true},
	{"kernel", CLI_OPT_KERNEL, true},
	{"initrd", CLI_OPT_INITRD, true},
	{"cmdline", CLI_OPT_CMDLINE, true},
	{"description", CLI_OPT_DESCRIPTION, true},
	{"autostart", CLI_OPT_AUTOSTART, false},
	{"no-autostart", CLI_OPT_NO_AUTOSTART, false},
	{"restart", CLI_OPT_RESTART, true},
	{"project", CLI_OPT_PROJECT, true},
	{"priority", CLI_OPT_PRIORITY, true},
	{NULL, 0, false},
};

const struct cli_opt cli_vm_stop_opts[] = {
	{"timeout", CLI_OPT_TIMEOUT, true},
	{NULL, 0, false},
};

const struct cli_opt cli_vm_delete_opts[] = {
	{"force", CLI_OPT_FORCE, false},
	{"snapshots", CLI_OPT_SNAPSHOTS, true},
	{"backups", CLI_OPT_BACKUPS, true},
	{NULL, 0, false},
};

const struct cli_opt cli_vm_log_opts[] = {
	{"follow", CLI_OPT_FOLLOW, false},
	{NULL, 0, false},
};

/* Set key to a JSON value, taking the reference; -ENOMEM on failure. */
static int vm_set(json_t *obj, const char *key, json_t *v)
{
	return v && json_object_set_new(obj, key, v) == 0 ? 0 : -ENOMEM;
}

/* Absolute path of a local file when it exists here, else as given (the
 * daemon may be remote and explains a bad path better than we can). */
static json_t *vm_path_json(const char *p)
{
	char abs[PATH_MAX];

	return json_string(realpath(p, abs) ? abs : p);
}

/* vcpus, memory, description, autostart, restart and boot: the fields
 * create and update share. */
static int vm_common_fields(const struct cli_args *a, json_t *body, char *err, size_t errlen)
{
	const char *v;
	uint64_t n;
	int ret = 0;

	v = cli_args_get(a, CLI_OPT_VCPUS);
	if (v) {
		if (util_parse_u64(v, 0, INT32_MAX, &n) < 0) {
			snprintf(err, errlen, "--vcpus '%s' is not a whole number; give e.g. --vcpus 2", v);
			return -EINVAL;
		}
		ret = vm_set(body, "vcpus", json_integer((json_int_t)n));
		if (ret < 0)
			return ret;
	}
	v = cli_args_get(a, CLI_OPT_MEMORY);
	if (v) {
		if (cli_parse_memory_mib(v, &n) < 0 || n > INT64_MAX) {
			snprintf(err, errlen, "--memory '%s' is not a size in whole MiB; give e.g. 512M or 2G", v);
			return -EINVAL;
		}
		ret = vm_set(body, "memory_mib", json_integer((json_int_t)n));
		if (ret < 0)
			return ret;
	}
	v = cli_args_get(a, CLI_OPT_DESCRIPTION);
	if (v) {
		ret = vm_set(body, "description", json_string(v));
		if (ret < 0)
			return ret;
	}
	if (cli_args_has(a, CLI_OPT_AUTOSTART) && cli_args_has(a, CLI_OPT_NO_AUTOSTART)) {
		snprintf(err, errlen, "give either --autostart or --no-autostart, not both");
		return -EINVAL;
	}
	if (cli_args_has(a, CLI_OPT_AUTOSTART) || cli_args_has(a, CLI_OPT_NO_AUTOSTART)) {
		ret = vm_set(body, "autostart", json_boolean(cli_args_has(a, CLI_OPT_AUTOSTART)));
		if (ret < 0)
			return ret;
	}
	v = cli_args_get(a, CLI_OPT_RESTART);
	if (v) {
		ret = vm_set(body, "restart_policy", json_string(v));
		if (ret < 0)
			return ret;
	}

	/* Project and priority names are checked by vesseld, which knows
	 * which projects exist. */
	v = cli_args_get(a, CLI_OPT_PROJECT);
	if (v && (ret = vm_set(body, "project", json_string(v))) < 0)
		return ret;
	v = cli_args_get(a, CLI_OPT_PRIORITY);
	if (v && (ret = vm_set(body, "priority", json_string(v))) < 0)
		return ret;

	const char *fw = cli_args_get(a, CLI_OPT_FIRMWARE);
	const char *kernel = cli_args_get(a, CLI_OPT_KERNEL);
	const char *initrd = cli_args_get(a, CLI_OPT_INITRD);
	const char *cmdline = cli_args_get(a, CLI_OPT_CMDLINE);
	if ((initrd || cmdline) && !kernel) {
		snprintf(err, errlen, "--initrd and --cmdline need --kernel (direct kernel boot)");
		return -EINVAL;
	}
	if (kernel && fw && strcmp(fw, "kernel") != 0) {
		snprintf(err, errlen, "--kernel boots the kernel directly; it cannot be combined with --firmware %s", fw);
		return -EINVAL;
	}
	if (fw && strcmp(fw, "kernel") == 0 && !kernel) {
		snprintf(err, errlen, "--firmware kernel needs --kernel PATH");
		return -EINVAL;
	}
	if (fw || kernel) {
		json_t *boot = json_object();
		ret = vm_set(body, "boot", boot);
		if (ret < 0)
			return ret;
		if (kernel) {
			ret = vm_set(boot, "firmware", json_string("kernel"));
			if (!ret)
				ret = vm_set(boot, "kernel", vm_path_json(kernel));
			if (!ret && initrd)
				ret = vm_set(boot, "initrd", vm_path_json(initrd));
			if (!ret && cmdline)
				ret = vm_set(boot, "cmdline", json_string(cmdline));
		} else {
			ret = vm_set(boot, "firmware", json_string(fw));
		}
	}
	return ret;
}

static int vm_disk_gib(const char *opt, const char *v, uint64_t *gib, char *err, size_t errlen)
{
	if (cli_parse_disk_gib(v, gib) < 0 || *gib > INT64_MAX) {
		snprintf(err, errlen, "%s '%s' is not a size in whole GiB; give e.g. 10G or 1T", opt, v);
		return -EINVAL;
	}
	return 0;
}

int cli_vm_create_body(const struct cli_args *a, json_t **out, char *err, size_t errlen)
{
	json_t *body = NULL, *disks = NULL, *disk;
	const char *image = cli_args_get(a, CLI_OPT_IMAGE);
	const char *disk_size = cli_args_get(a, CLI_OPT_DISK_SIZE);
	uint64_t gib;
	int ret = -ENOMEM;

	if (a->n_pos < 1) {
		snprintf(err, errlen, "vm create needs a NAME");
		return -EINVAL;
	}
	body = json_pack("{s:s}", "name", a->pos[0]);
	disks = json_array();
	if (!body || !disks)
		goto out;
	ret = vm_common_fields(a, body, err, errlen);
	if (ret == 0)
		ret = cli_nics_body(a, body, err, errlen);
	if (ret < 0)
		goto out;
	if (cli_args_has(a, CLI_OPT_FULL_COPY) && !image) {
		snprintf(err, errlen, "--full-copy copies an image; give it with --image IMG");
		ret = -EINVAL;
		goto out;
	}
	/* The first disk: based on --image, or blank when only --disk-size
	 * is given. --disk-size without --image is the boot disk's size. */
	if (image || disk_size) {
		disk = json_object();
		ret = disk ? 0 : -ENOMEM;
		if (!ret && image) {
			ret = vm_set(disk, "image", json_string(image));
			if (!ret)
				ret = vm_set(disk, "clone", json_string(cli_args_has(a, CLI_OPT_FULL_COPY) ? "full" : "linked"));
		}
		if (!ret && disk_size) {
			ret = vm_disk_gib("--disk-size", disk_size, &gib, err, errlen);
			if (!ret)
				ret = vm_set(disk, "size_gib", json_integer((json_int_t)gib));
		}
		if (!ret && json_array_append_new(disks, disk) != 0)
			ret = -ENOMEM;
		else if (ret)
			json_decref(disk);
		if (ret < 0)
			goto out;
	}
	for (size_t i = 0; i < a->n_opts; i++) {
		if (a->opts[i].id != CLI_OPT_BLANK_DISK)
			continue;
		ret = vm_disk_gib("--blank-disk", a->opts[i].value, &gib, err, errlen);
		if (ret < 0)
			goto out;
		if (json_array_append_new(disks, json_pack("{s:I}", "size_gib", (json_int_t)gib)) != 0) {
			ret = -ENOMEM;
			goto out;
		}
	}
	if (json_array_size(disks) > 0) {
		ret = vm_set(body, "disks", disks);
		disks = NULL;
		if (ret < 0)
			goto out;
	}
	*out = body;
	body = NULL;
	ret = 0;
out:
	json_decref(disks);
	json_decref(body);
	return ret;
}

int cli_vm_update_body(const struct cli_args *a, json_t **out, char *err, size_t errlen)
{
	json_t *body = json_object();
	int ret;

	if (!body)
		return -ENOMEM;
	ret = vm_common_fields(a, body, err, errlen);
	if (ret == 0)
		ret = cli_nics_body(a, body, err, errlen);
	if (ret < 0)
		goto out;
	if (json_object_size(body) == 0) {
		snprintf(err, errlen, "nothing to change; give at least one of --vcpus, --memory, --description, "
			 "--autostart, --no-autostart, --restart, --firmware, --kernel, --project, --priority, "
			 "--nic, --no-nics");
		ret = -EINVAL;
		goto out;
	}
	*out = body;
	body = NULL;
out:
	json_decref(body);
	return ret;
}

uint64_t cli_vm_disk_bytes(const json_t *vm)
{
	uint64_t total = 0;
	size_t i;
	json_t *d;

	json_array_foreach(json_object_get(vm, "disks"), i, d)
		total += (uint64_t)cli_json_int(d, "size_bytes", 0);
	return total;
}

int cli_vm_table(const json_t *vms, struct cli_table **out)
{
	static const char *const hdr[] = {"NAME", "STATE", ">VCPUS", ">MEMORY", ">DISK", "IMAGE", "PROJECT", "PRIO", "AUTOSTART", "PID"};
	struct cli_table *t = NULL;
	size_t i;
	json_t *vm;
	int ret;

	ret = cli_table_new(ARRAY_SIZE(hdr), hdr, &t);
	if (ret < 0)
		goto out;
	json_array_foreach(vms, i, vm) {
		char vcpus[16], mem[32], disk[32], pid[16];
		long long p = cli_json_int(vm, "pid", -1);
		uint64_t db = cli_vm_disk_bytes(vm);
		snprintf(vcpus, sizeof(vcpus), "%lld", cli_json_int(vm, "vcpus", 0));
		cli_format_size((uint64_t)cli_json_int(vm, "memory_mib", 0) * MiB, mem, sizeof(mem));
		cli_format_size(db, disk, sizeof(disk));
		snprintf(pid, sizeof(pid), "%lld", p);
		const char *row[] = {
			cli_json_str(vm, "name"), cli_json_str(vm, "state"), vcpus, mem,
			db ? disk : NULL,
			cli_json_str(json_array_get(json_object_get(vm, "disks"), 0), "image"),
			cli_json_str(vm, "project"), cli_json_str(vm, "priority"),
			cli_json_bool(vm, "autostart") ? "yes" : "no",
			p >= 0 ? pid : NULL,
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

static void vm_print(const json_t *vm)
{
	enum { MAXK = 40, MAXDISKS = 16 };
	const char *keys[MAXK];
	char disk_keys[MAXDISKS][24];
	char *vals[MAXK] = {0};
	size_t n = 0;
	char *s;

#define VM_KV(k, ...)                                                     \
	do {                                                              \
		if (n < MAXK && asprintf(&s, __VA_ARGS__) >= 0) {         \
			keys[n] = (k);                                    \
			vals[n++] = s;                                    \
		}                                                         \
	} while (0)
#define VM_STR(k, field)                                                  \
	VM_KV(k, "%s", cli_json_str(vm, field) ? cli_json_str(vm, field) : "-")

	char mem[32];
	cli_format_size((uint64_t)cli_json_int(vm, "memory_mib", 0) * MiB, mem, sizeof(mem));
	VM_STR("name", "name");
	VM_STR("uuid", "uuid");
	VM_STR("state", "state");
	VM_KV("vcpus", "%lld", cli_json_int(vm, "vcpus", 0));
	VM_KV("memory", "%s", mem);
	VM_KV("description", "%s", cli_json_str(vm, "description") && *cli_json_str(vm, "description")
				       ? cli_json_str(vm, "description") : "-");
	VM_KV("autostart", "%s", cli_json_bool(vm, "autostart") ? "yes" : "no");
	VM_STR("restart policy", "restart_policy");
	VM_STR("project", "project");
	VM_STR("priority", "priority");

	json_t *boot = json_object_get(vm, "boot");
	const char *fw = cli_json_str(boot, "firmware");
	if (fw && strcmp(fw, "kernel") == 0) {
		const char *initrd = cli_json_str(boot, "initrd");
		const char *cmdline = cli_json_str(boot, "cmdline");
		VM_KV("boot", "kernel %s%s%s%s%s%s", cli_json_str(boot, "kernel") ? cli_json_str(boot, "kernel") : "?",
		      initrd ? ", initrd " : "", initrd ? initrd : "",
		      cmdline ? ", cmdline \"" : "", cmdline ? cmdline : "", cmdline ? "\"" : "");
	} else {
		VM_KV("boot", "%s", fw ? fw : "-");
	}

	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(vm, "disks"), i, d) {
		char size[32];
		const char *img = cli_json_str(d, "image");
		const char *clone = cli_json_str(d, "clone");
		const char *fmt = cli_json_str(d, "format") ? cli_json_str(d, "format") : "?";
		if (i >= MAXDISKS)
			break;
		cli_format_size((uint64_t)cli_json_int(d, "size_bytes", 0), size, sizeof(size));
		snprintf(disk_keys[i], sizeof(disk_keys[i]), "disk %lld", cli_json_int(d, "index", (long long)i));
		if (img)
			VM_KV(disk_keys[i], "%s %s, image %s (%s clone)", size, fmt, img, clone ? clone : "linked");
		else
			VM_KV(disk_keys[i], "%s %s, blank", size, fmt);
	}
	char nic_keys[8][16];
	json_array_foreach(json_object_get(vm, "nics"), i, d) {
		const char *fwn = cli_json_str(d, "firewall"), *ip = cli_json_str(d, "ip");
		long long vlan = cli_json_int(d, "vlan", 0), bw = cli_json_int(d, "bandwidth_mbit", 0);
		if (i >= 8)
			break;
		snprintf(nic_keys[i], sizeof(nic_keys[i]), "nic %lld", cli_json_int(d, "index", (long long)i));
		VM_KV(nic_keys[i], "%s on %s%s%.0lld, tap %s%s%s%s%s%s%.0lld%s",
		      cli_json_str(d, "mac") ? cli_json_str(d, "mac") : "?",
		      cli_json_str(d, "network") ? cli_json_str(d, "network") : "?", vlan ? " vlan " : "", vlan,
		      cli_json_str(d, "tap") ? cli_json_str(d, "tap") : "?", ip ? ", ip " : "", ip ? ip : "",
		      fwn ? ", firewall " : "", fwn ? fwn : "", bw ? ", limit " : "", bw, bw ? " Mbit/s" : "");
	}
	long long pid = cli_json_int(vm, "pid", -1);
	if (pid >= 0)
		VM_KV("pid", "%lld", pid);
	else
		VM_KV("pid", "-");
	if (cli_json_str(vm, "crash_reason"))
		VM_STR("crash reason", "crash_reason");
	if (cli_json_str(vm, "task"))
		VM_STR("task", "task");
	VM_STR("created", "created_at");
	VM_STR("updated", "updated_at");
#undef VM_STR
#undef VM_KV

	cli_kv_print(stdout, keys, (const char *const *)vals, n);
	for (size_t k = 0; k < n; k++)
		free(vals[k]);
}

int cli_vm_list(struct cli *cli, const struct cli_args *a)
{
	return cli_list_print(cli, "vms", cli_vm_table, "no VMs; create one with `vessel vm create NAME`");
}

int cli_vm_create(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0}, final = {0};
	json_t *body = NULL;
	const char *name = a->pos[0];
	int ret;

	ret = cli_vm_create_body(a, &body, cli->err, sizeof(cli->err));
	if (ret < 0)
		goto out;
	ret = cli_api(cli, "POST", "/vms", body, &resp);
	if (ret < 0)
		goto out;
	json_t *vm = json_object_get(resp.json, "vm");
	const char *task = cli_json_str(vm, "task");
	if (!task || cli_args_has(a, CLI_OPT_NO_WAIT)) {
		if (cli->json)
			cli_print_raw_json(resp.body, resp.len);
		else if (task)
			printf("creating VM %s; copying its disk in task %s (see `vessel task show %s`)\n",
			       name, task, task);
		else
			printf("created VM %s (state %s)\n", name,
			       cli_json_str(vm, "state") ? cli_json_str(vm, "state") : "?");
		goto out;
	}
	ret = cli_task_wait(cli, task);
	if (ret < 0)
		goto out;
	ret = cli_get_item(cli, "vms", name, &final);
	if (ret < 0)
		goto out;
	if (cli->json)
		cli_print_raw_json(final.body, final.len);
	else
		printf("created VM %s (state %s)\n", name,
		       cli_json_str(json_object_get(final.json, "vm"), "state")
			       ? cli_json_str(json_object_get(final.json, "vm"), "state") : "?");
out:
	json_decref(body);
	cli_response_clear(&resp);
	cli_response_clear(&final);
	return ret;
}

int cli_vm_show(struct cli *cli, const struct cli_args *a)
{
	return cli_show_print(cli, "vms", a->pos[0], "vm", vm_print);
}

int cli_vm_update(struct cli *cli, const struct cli_args *a)
{
	json_t *body = NULL;
	char *path = NULL;
	int ret;

	ret = cli_vm_update_body(a, &body, cli->err, sizeof(cli->err));
	if (ret < 0)
		goto out;
	ret = cli_path(&path, "/vms/%s", a->pos[0]);
	if (ret < 0)
		goto out;
	ret = cli_send_item(cli, "PATCH", path, body, "vm", vm_print);
out:
	free(path);
	json_decref(body);
	return ret;
}

/* POST /vms/NAME/ACTION and report the state the VM is in afterwards. */
static int vm_action(struct cli *cli, const char *name, const char *action, json_t *body,
		     const char *done)
{
	struct cli_response resp = {0};
	char *path = NULL;
	int ret;

	ret = cli_path(&path, "/vms/%s/", name);
	if (ret < 0)
		goto out;
	char *full;
	if (asprintf(&full, "%s%s", path, action) < 0) {
		ret = -ENOMEM;
		goto out;
	}
	free(path);
	path = full;
	ret = cli_api(cli, "POST", path, body, &resp);
	if (ret < 0)
		goto out;
	if (cli->json) {
		cli_print_raw_json(resp.body, resp.len);
		goto out;
	}
	const char *state = cli_json_str(json_object_get(resp.json, "vm"), "state");
	printf("%s VM %s (state %s)%s\n", done, name, state ? state : "?",
	       cli_json_bool(resp.json, "forced") ? "; it did not power off in time and was forced off" : "");
out:
	free(path);
	cli_response_clear(&resp);
	return ret;
}

int cli_vm_start(struct cli *cli, const struct cli_args *a)
{
	return vm_action(cli, a->pos[0], "start", NULL, "started");
}

int cli_vm_stop(struct cli *cli, const struct cli_args *a)
{
	const char *tv = cli_args_get(a, CLI_OPT_TIMEOUT);
	json_t *body = NULL;
	uint64_t timeout;
	int ret;

	if (tv) {
		if (util_parse_u64(tv, 0, INT32_MAX, &timeout) < 0)
			return cli_fail(cli, -EINVAL, "--timeout '%s' is not a whole number of seconds; give e.g. --timeout 60",
					tv);
		body = json_pack("{s:I}", "timeout", (json_int_t)timeout);
		if (!body)
			return -ENOMEM;
	}
	ret = vm_action(cli, a->pos[0], "stop", body, "stopped");
	json_decref(body);
	return ret;
}

int cli_vm_force_stop(struct cli *cli, const struct cli_args *a)
{
	return vm_action(cli, a->pos[0], "force-stop", NULL, "forced off");
}

int cli_vm_reboot(struct cli *cli, const struct cli_args *a)
{
	return vm_action(cli, a->pos[0], "reboot", NULL, "rebooted");
}

int cli_vm_pause(struct cli *cli, const struct cli_args *a)
{
	return vm_action(cli, a->pos[0], "pause", NULL, "paused");
}

int cli_vm_resume(struct cli *cli, const struct cli_args *a)
{
	return vm_action(cli, a->pos[0], "resume", NULL, "resumed");
}

int cli_vm_delete(struct cli *cli, const struct cli_args *a)
{
	char *path = NULL;
	int ret;

	/* --snapshots delete / --backups keep|delete answer vesseld's question
	 * about them (docs/backups.md "Deleting a VM"). */
	const char *snaps = cli_args_get(a, CLI_OPT_SNAPSHOTS), *backs = cli_args_get(a, CLI_OPT_BACKUPS);
	ret = cli_path(&path, "/vms/%s", a->pos[0]);
	if (ret == 0) {
		char *full = NULL;
		if (asprintf(&full, "%s?force=%s%s%s%s%s", path,
			     cli_args_has(a, CLI_OPT_FORCE) ? "true" : "false", snaps ? "&snapshots=" : "",
			     snaps ? snaps : "", backs ? "&backups=" : "", backs ? backs : "") < 0)
			ret = -ENOMEM;
		free(path);
		path = ret == 0 ? full : NULL;
	}
	if (ret == 0)
		ret = cli_send_done(cli, "DELETE", path, NULL, "deleted VM %s\n", a->pos[0]);
	free(path);
	return ret;
}

/* How often `vm log --follow` asks for new output. */
#define VM_LOG_POLL_MS 500

int cli_vm_log(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	char *base = NULL, *path = NULL;
	bool follow = cli_args_has(a, CLI_OPT_FOLLOW);
	uint64_t since = 0;
	int ret;

	ret = cli_path(&base, "/vms/%s/console", a->pos[0]);
	if (ret < 0)
		goto out;
	for (;;) {
		free(path);
		if (asprintf(&path, "%s?since=%llu", base, (unsigned long long)since) < 0) {
			path = NULL;
			ret = -ENOMEM;
			goto out;
		}
		cli_response_clear(&resp);
		ret = cli_http_request(cli, "GET", path, NULL, NULL, 0, &resp);
		if (ret < 0)
			goto out;
		if (resp.status != 200) {
			cli_error_from_body(resp.status, resp.body, cli->err, sizeof(cli->err));
			ret = resp.status == 404 ? -ENOENT : -EIO;
			goto out;
		}
		if (resp.len > 0) {
			if (util_write_all(STDOUT_FILENO, resp.body, resp.len) < 0) {
				/* The reader went away (e.g. `| head`): not an error. */
				ret = 0;
				goto out;
			}
		}
		if (!follow)
			break;
		if (resp.has_console_next)
			since = resp.console_next;
		else
			since += resp.len;
		if (resp.len == 0) {
			struct timespec ts = {0, VM_LOG_POLL_MS * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
out:
	free(base);
	free(path);
	cli_response_clear(&resp);
	return ret;
}
