/* main: entry point of `vessel`, the command line client of vesseld. Finds
 * the command ("vm list", "image import", ...), parses its options together
 * with the global ones, runs it and turns a failure into one line
 * "vessel: <sentence>" and a non-zero exit status (1: the operation failed,
 * 2: the command line was wrong). */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "lib/util.h"

#ifndef VESSEL_VERSION
#define VESSEL_VERSION "0.1.0"
#endif

static const struct cli_opt main_no_opts[] = {{NULL, 0, false}};

struct main_cmd {
	const char *group;
	const char *name;
	int (*fn)(struct cli *cli, const struct cli_args *a);
	const struct cli_opt *opts;
	size_t min_pos, max_pos;
	const char *usage;   /* arguments after "vessel GROUP NAME" */
	const char *help;    /* one line */
};

static const struct main_cmd main_cmds[] = {
	{"vm", "list", cli_vm_list, main_no_opts, 0, 0, "", "list VMs"},
	{"vm", "create", cli_vm_create, cli_vm_create_opts, 1, 1,
	 "NAME [--vcpus N] [--memory 512M|2G] [--image IMG [--full-copy]] [--disk-size 10G]\n"
	 "       [--blank-disk SIZE]... [--firmware bios|uefi] [--kernel K [--initrd I] [--cmdline S]]\n"
	 "       [--description D] [--autostart] [--restart on-crash|never] [--no-wait]\n"
	 "       [--project P] [--priority P0..P4]\n"
	 "       [--nic NETWORK[,vlan=N][,mac=M][,firewall=F][,bandwidth=MBIT]]...",
	 "create a VM (a full copy of an image is waited for unless --no-wait)"},
	{"vm", "show", cli_vm_show, main_no_opts, 1, 1, "NAME", "show a VM"},
	{"vm", "update", cli_vm_update, cli_vm_update_opts, 1, 1,
	 "NAME [--vcpus N] [--memory SIZE] [--description D] [--autostart|--no-autostart]\n"
	 "       [--restart on-crash|never] [--firmware bios|uefi] [--kernel K [--initrd I] [--cmdline S]]\n"
	 "       [--project P] [--priority P0..P4]\n"
	 "       [--nic SPEC]... | [--no-nics]   (NICs replace the list)",
	 "change a stopped VM (--priority, the NICs' firewall= and NICs added or removed at the end also "
	 "while it runs)"},
	{"vm", "start", cli_vm_start, main_no_opts, 1, 1, "NAME", "start a VM"},
	{"vm", "stop", cli_vm_stop, cli_vm_stop_opts, 1, 1, "NAME [--timeout S]",
	 "power a VM down (ACPI), forcing it off after the timeout"},
	{"vm", "force-stop", cli_vm_force_stop, main_no_opts, 1, 1, "NAME", "pull the plug of a VM"},
	{"vm", "reboot", cli_vm_reboot, main_no_opts, 1, 1, "NAME", "reset a VM"},
	{"vm", "pause", cli_vm_pause, main_no_opts, 1, 1, "NAME", "pause a running VM"},
	{"vm", "resume", cli_vm_resume, main_no_opts, 1, 1, "NAME", "resume a paused VM"},
	{"vm", "delete", cli_vm_delete, cli_vm_delete_opts, 1, 1,
	 "NAME [--force] [--snapshots delete] [--backups keep|delete]",
	 "delete a VM and its disks (--force: even while it runs)"},
	{"vm", "console", cli_vm_console, main_no_opts, 1, 1, "NAME",
	 "attach to the serial console (detach with Ctrl-])"},
	{"vm", "log", cli_vm_log, cli_vm_log_opts, 1, 1, "NAME [--follow]",
	 "print the serial console output kept by vesseld"},
	{"image", "import", cli_image_import, cli_image_import_opts, 2, 2,
	 "NAME PATH [--format auto|raw|qcow2|vmdk|vhd] [--no-wait]",
	 "import a disk image file (converted to qcow2)"},
	{"image", "list", cli_image_list, main_no_opts, 0, 0, "", "list images"},
	{"image", "show", cli_image_show, main_no_opts, 1, 1, "NAME", "show an image"},
	{"image", "delete", cli_image_delete, main_no_opts, 1, 1, "NAME", "delete an image no VM uses"},
	{"task", "list", cli_task_list, main_no_opts, 0, 0, "", "list tasks, newest first"},
	{"task", "show", cli_task_show, main_no_opts, 1, 1, "ID", "show a task"},
	{"host", "info", cli_host_info, main_no_opts, 0, 0, "", "show what the host offers"},
	{"network", "list", cli_network_list, main_no_opts, 0, 0, "", "list networks"},
	{"network", "show", cli_network_show, main_no_opts, 1, 1, "NAME", "show a network"},
	{"network", "create", cli_network_create, cli_network_create_opts, 1, 1,
	 "NAME --type nat|isolated|bridge [--subnet CIDR] [--gateway IP] [--dhcp-range A-B]\n"
	 "       [--bridge BR] [--uplink IF] [--mtu N]",
	 "create a network (nat: subnet with DHCP and masquerading)"},
	{"network", "forwards", cli_network_forwards, main_no_opts, 1, 33,
	 "NAME [PROTO:[HOST_ADDR:]HOST_PORT:VM[@NIC]:VM_PORT]...",
	 "set the port forwards of a nat network (none given: remove all)"},
	{"network", "delete", cli_network_delete, main_no_opts, 1, 1, "NAME",
	 "delete a network no VM uses, with what vessel created for it"},
	{"firewall", "list", cli_firewall_list, main_no_opts, 0, 0, "", "list firewall rule sets"},
	{"firewall", "show", cli_firewall_show, main_no_opts, 1, 1, "NAME", "show a rule set"},
	{"firewall", "create", cli_firewall_create, cli_firewall_opts, 1, 1,
	 "NAME [--rule DIR,PROTO,PORTS,CIDR,allow|deny]... [--default-inbound allow|deny]\n"
	 "       [--default-outbound allow|deny]",
	 "create a rule set (inbound denied unless a rule allows it)"},
	{"firewall", "set", cli_firewall_set, cli_firewall_opts, 1, 1,
	 "NAME [--rule ...]... [--default-inbound ...] [--default-outbound ...]",
	 "replace a rule set's rules (applied at once to the NICs it guards)"},
	{"firewall", "delete", cli_firewall_delete, main_no_opts, 1, 1, "NAME",
	 "delete a rule set no NIC uses"},
	{"token", "create", cli_token_create, cli_token_create_opts, 1, 1,
	 "NAME --role admin|operator|viewer [--project P] [--expires 24h|2027-01-31]",
	 "create an API token (its secret is printed once)"},
	{"token", "list", cli_token_list, main_no_opts, 0, 0, "", "list API tokens"},
	{"token", "revoke", cli_token_revoke, main_no_opts, 1, 1, "ID", "revoke an API token"},
	{"audit", "list", cli_audit_list, cli_audit_list_opts, 0, 0,
	 "[--since 1h|TIME] [--until TIME] [--token-id ID] [--method M] [--path PREFIX]\n"
	 "       [--result 403|4xx] [--limit N]",
	 "show audit log entries"},
	{"audit", "verify", cli_audit_verify, cli_audit_verify_opts, 0, 0, "[--file PATH]",
	 "check the audit log's hash chain (exit 1 when it is broken)"},
	{"host", "capacity", cli_host_capacity, cli_host_capacity_opts, 0, 0,
	 "[--cpu-ratio R] [--memory-ratio R]",
	 "show capacity, overcommit ratios and what is allocated (or change the ratios)"},
	{"project", "list", cli_project_list, main_no_opts, 0, 0, "", "list projects with usage and quotas"},
	{"project", "show", cli_project_show, main_no_opts, 1, 1, "NAME", "show a project"},
	{"project", "create", cli_project_create, cli_project_opts, 1, 1,
	 "NAME [--description D] [--max-vms N] [--max-vcpus N] [--max-memory SIZE] [--max-disk SIZE]",
	 "create a project with quotas (unlimited where not given)"},
	{"project", "update", cli_project_update, cli_project_opts, 1, 1,
	 "NAME [--description D] [--max-vms N|none] [--max-vcpus N|none] [--max-memory SIZE|none]\n"
	 "       [--max-disk SIZE|none]",
	 "change a project's description or quotas ('none': unlimited)"},
	{"project", "delete", cli_project_delete, main_no_opts, 1, 1, "NAME",
	 "delete a project that has no VMs"},
	{"snapshot", "list", cli_snapshot_list, main_no_opts, 1, 1, "VM",
	 "list a VM's snapshots as a tree, with the space each uses"},
	{"snapshot", "create", cli_snapshot_create, cli_snapshot_create_opts, 2, 2,
	 "VM NAME [--full] [--description D]",
	 "take a snapshot (--full: with memory, so revert resumes the guest)"},
	{"snapshot", "show", cli_snapshot_show, main_no_opts, 2, 2, "VM NAME", "show a snapshot"},
	{"snapshot", "revert", cli_snapshot_revert, cli_snapshot_revert_opts, 2, 2,
	 "VM NAME [--stop]", "revert a VM to a snapshot (--stop: stop it first if it runs)"},
	{"snapshot", "delete", cli_snapshot_delete, cli_snapshot_delete_opts, 2, 2,
	 "VM NAME [--merge]", "delete a snapshot (--merge: also when others depend on it)"},
	{"snapshot", "schedule-add", cli_schedule_add, cli_schedule_add_opts, 1, 1,
	 "VM --every 15m|2h | --daily-at HH:MM [--full] [--keep-count N] [--keep-age 7d]\n"
	 "       [--start-at 2026-11-26T07:00:00Z]",
	 "snapshot a VM on a schedule, pruning by count and age (default: keep 7 days)"},
	{"snapshot", "schedules", cli_schedule_list, main_no_opts, 1, 1, "VM",
	 "list a VM's snapshot schedules"},
	{"snapshot", "schedule-delete", cli_schedule_delete, main_no_opts, 2, 2, "VM ID",
	 "remove a schedule (its snapshots stay)"},
	{"backup", "create", cli_backup_create, cli_backup_create_opts, 1, 1,
	 "VM [--full] [--no-wait]", "back up a VM to the backup store (incremental when possible)"},
	{"backup", "list", cli_backup_list, main_no_opts, 0, 1, "[VM]", "list backups"},
	{"backup", "show", cli_backup_show, main_no_opts, 1, 1, "ID", "show a backup"},
	{"backup", "delete", cli_backup_delete, main_no_opts, 1, 1, "ID", "delete a backup"},
	{"backup", "verify", cli_backup_verify, main_no_opts, 1, 1, "ID",
	 "re-read a backup and check every checksum (exit 1 naming the first bad chunk)"},
	{"backup", "restore", cli_backup_restore, cli_backup_restore_opts, 2, 2,
	 "ID VM [--overwrite] [--no-wait]",
	 "restore to a new VM, or over a stopped VM with --overwrite"},
	{"backup", "drill", cli_backup_drill, cli_backup_drill_opts, 1, 1,
	 "ID --boot-line TEXT [--timeout S] [--no-wait]",
	 "restore drill: boot a temporary copy, record RTO and RPO, delete it"},
	{"backup", "drills", cli_backup_drills, main_no_opts, 1, 1, "VM",
	 "show a VM's restore drill results"},
};

static void main_usage(FILE *f, const char *group)
{
	fprintf(f, "usage: vessel [global options] COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(main_cmds); i++) {
		const struct main_cmd *c = &main_cmds[i];
		if (group && strcmp(group, c->group) != 0)
			continue;
		char cmd[32];
		snprintf(cmd, sizeof(cmd), "%s %s", c->group, c->name);
		fprintf(f, "  %-16s %s\n", cmd, c->help);
	}
	fprintf(f,
		"\nglobal options:\n"
		"  --socket PATH      talk to vesseld over this Unix socket (env VESSEL_SOCKET;\n"
		"                     default " CLI_DEFAULT_SOCKET " when it exists)\n"
		"  --url URL          talk to vesseld over HTTP, e.g. " CLI_DEFAULT_URL " (env VESSEL_URL)\n"
		"  --token T          bearer token for --url (env VESSEL_TOKEN)\n"
		"  --token-file FILE  read the bearer token from FILE\n"
		"  --json             print the API's JSON as is\n"
		"  --help             show help (after a command: that command's)\n"
		"  --version          print the version\n"
		"\n'vessel GROUP COMMAND --help' shows a command's options; see docs/cli.md.\n");
}

static void main_cmd_usage(FILE *f, const struct main_cmd *c)
{
	fprintf(f, "usage: vessel %s %s%s%s\n%s\n", c->group, c->name, *c->usage ? " " : "", c->usage, c->help);
}

static int main_exit(struct cli *cli, int ret)
{
	if (ret >= 0)
		return 0;
	if (cli && cli->err[0])
		fprintf(stderr, "vessel: %s\n", cli->err);
	else
		fprintf(stderr, "vessel: %s\n", strerror(-ret));
	return CLI_EXIT_FAIL;
}

int main(int argc, char **argv)
{
	const struct main_cmd *cmd = NULL;
	struct cli_args args;
	struct cli *cli = NULL;
	char err[512];
	int group_idx, cmd_idx, ret, status;

	/* A closed pipe or socket must be an error return, not a signal. */
	signal(SIGPIPE, SIG_IGN);

	cli_args_find_command(argc, argv, &group_idx, &cmd_idx);
	if (group_idx && strcmp(argv[group_idx], "help") == 0) {
		main_usage(stdout, NULL);
		return 0;
	}
	if (group_idx && cmd_idx) {
		for (size_t i = 0; i < ARRAY_SIZE(main_cmds); i++)
			if (strcmp(main_cmds[i].group, argv[group_idx]) == 0 &&
			    strcmp(main_cmds[i].name, argv[cmd_idx]) == 0)
				cmd = &main_cmds[i];
	}

	/* Everything but the program name and the command words. */
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int nrest = 0;
	if (!rest) {
		fprintf(stderr, "vessel: out of memory\n");
		return CLI_EXIT_FAIL;
	}
	for (int i = 1; i < argc; i++)
		if (i != group_idx && i != cmd_idx)
			rest[nrest++] = argv[i];
	const struct cli_opt *tables[] = {cli_global_opts, cmd ? cmd->opts : main_no_opts, NULL};
	ret = cli_args_parse(tables, nrest, rest, &args, err, sizeof(err));
	free(rest);
	if (ret < 0) {
		fprintf(stderr, "vessel: %s\n", err);
		return CLI_EXIT_USAGE;
	}
	if (cli_args_has(&args, CLI_OPT_VERSION)) {
		printf("vessel %s\n", VESSEL_VERSION);
		return 0;
	}
	if (!cmd) {
		bool known_group = false;
		const char *group = group_idx ? argv[group_idx] : NULL;
		for (size_t i = 0; group && i < ARRAY_SIZE(main_cmds); i++)
			known_group |= strcmp(main_cmds[i].group, group) == 0;
		if (args.help || !group_idx) {
			main_usage(args.help ? stdout : stderr, known_group ? group : NULL);
			return args.help ? 0 : CLI_EXIT_USAGE;
		}
		if (!known_group)
			fprintf(stderr, "vessel: unknown command '%s'; commands are vm, image, task, host, project, "
				"network, firewall, snapshot, backup, token, audit "
				"(see vessel --help)\n", group);
		else if (!cmd_idx)
			fprintf(stderr, "vessel: '%s' needs a command (see vessel %s --help)\n", group, group);
		else
			fprintf(stderr, "vessel: unknown command '%s %s' (see vessel %s --help)\n", group,
				argv[cmd_idx], group);
		return CLI_EXIT_USAGE;
	}
	if (args.help) {
		main_cmd_usage(stdout, cmd);
		return 0;
	}
	if (args.n_pos < cmd->min_pos || args.n_pos > cmd->max_pos) {
		/* The positional part of the usage ("NAME PATH") fits one line. */
		int n = (int)strcspn(cmd->usage, "[");
		while (n > 0 && cmd->usage[n - 1] == ' ')
			n--;
		fprintf(stderr, "vessel: %s %s %s arguments; usage: vessel %s %s%s%.*s (see --help)\n",
			cmd->group, cmd->name, args.n_pos < cmd->min_pos ? "needs more" : "takes fewer",
			cmd->group, cmd->name, n ? " " : "", n, cmd->usage);
		return CLI_EXIT_USAGE;
	}

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "vessel: cannot initialise libcurl\n");
		return CLI_EXIT_FAIL;
	}
	ret = cli_new(&args, &cli);
	if (ret == 0)
		ret = cmd->fn(cli, &args);
	status = main_exit(cli, ret);
	cli_free(cli);
	curl_global_cleanup();
	if (fflush(stdout) != 0 && status == 0)
		status = CLI_EXIT_FAIL;
	return status;
}
