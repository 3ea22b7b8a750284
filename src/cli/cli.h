/* cli: shared declarations of the `vessel` command line client: the client
 * context (how to reach vesseld, output mode, last error), the option parser,
 * the HTTP helpers that speak the REST API of docs/api.md, output helpers
 * (tables, sizes, progress) and one entry point per command. */
#ifndef VESSEL_CLI_CLI_H
#define VESSEL_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

#define CLI_DEFAULT_SOCKET "/run/vessel/vesseld.sock"
#define CLI_DEFAULT_URL "http://127.0.0.1:8006"
#define CLI_API_PREFIX "/api/v1"

/* Exit codes: 0 success, 1 the operation failed (the daemon refused it, it
 * could not be reached, a task failed), 2 the command line was wrong. */
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* ---- option parsing (args.c) ---- */

/* One option a command accepts, spelled "--name" (or "--name=value"). */
struct cli_opt {
	const char *name;  /* without the leading "--" */
	int id;            /* returned in cli_optval.id; unique across tables */
	bool has_arg;      /* takes a value */
};

#define CLI_ARGS_MAX 64

struct cli_optval {
	int id;
	const char *value; /* NULL for flags */
};

struct cli_args {
	struct cli_optval opts[CLI_ARGS_MAX];
	size_t n_opts;
	const char *pos[CLI_ARGS_MAX];
	size_t n_pos;
	bool help;         /* --help or -h was given */
};

/* Options every command accepts; their ids. */
enum cli_global_opt {
	CLI_OPT_SOCKET = 1,
	CLI_OPT_URL,
	CLI_OPT_TOKEN,
	CLI_OPT_TOKEN_FILE,
	CLI_OPT_JSON,
	CLI_OPT_HELP,
	CLI_OPT_VERSION,
};
extern const struct cli_opt cli_global_opts[];

/* Parse argv[0..argc) (argv[0] is NOT skipped) against the NULL-name
 * terminated tables in `tables` (itself NULL-terminated). Options may come
 * anywhere; "--" ends options. Returns 0, or -EINVAL with a sentence in err
 * (unknown option, missing value, value given to a flag) or -E2BIG. */
int cli_args_parse(const struct cli_opt *const *tables, int argc, char **argv,
		   struct cli_args *out, char *err, size_t errlen);
/* Last value given for option id (NULL if absent or a flag). */
const char *cli_args_get(const struct cli_args *a, int id);
bool cli_args_has(const struct cli_args *a, int id);
/* Find the group and command words ("vm", "list") in a full argv, skipping
 * global options and their values. Indices are 0 when absent. */
void cli_args_find_command(int argc, char **argv, int *group_idx, int *cmd_idx);

/* Memory size for --memory: "512M", "2G", a bare number means MiB.
 * Returns 0 or -EINVAL/-ERANGE (not whole MiB counts as -EINVAL). */
int cli_parse_memory_mib(const char *s, uint64_t *mib);
/* Disk size for --disk-size/--blank-disk: "10G", "1T", a bare number means
 * GiB; must be a whole number of GiB because the API takes size_gib. */
int cli_parse_disk_gib(const char *s, uint64_t *gib);

/* ---- output (output.c) ---- */

/* "512 B", "512 MiB", "2.0 GiB", "12.5 GiB", "100 GiB": one decimal below
 * 100 of a unit, none from 100 on; binary units. */
void cli_format_size(uint64_t bytes, char *buf, size_t len);

struct cli_table;
/* A table of `ncols` columns whose header cells are `headers`. A header
 * starting with '>' is right-aligned (the '>' is not printed). */
int cli_table_new(size_t ncols, const char *const *headers, struct cli_table **out);
void cli_table_free(struct cli_table *t);
/* Append a row of ncols cells (copied; NULL prints as "-"). */
int cli_table_add_row(struct cli_table *t, const char *const *cells);
/* Print with columns separated by two spaces, no trailing blanks. */
void cli_table_print(const struct cli_table *t, FILE *f);
/* A table with these headers and one row per element of the JSON array
 * items, each added by add_row (with cli_table_add_row). */
int cli_table_build(const json_t *items, size_t ncols, const char *const *headers,
		    int (*add_row)(struct cli_table *t, const json_t *item), struct cli_table **out);
size_t cli_table_rows(const struct cli_table *t);

/* Print "key: value" lines with the colons aligned; keys/values NULL-ended. */
void cli_kv_print(FILE *f, const char *const *keys, const char *const *values, size_t n);

/* One progress line: on a tty "\r[#####     ]  42%  label" (no newline),
 * else "task ID: 42%\n". */
void cli_progress_format(bool tty, const char *task_id, const char *label,
			 int percent, char *buf, size_t len);

/* Print the raw API body on stdout, adding a final newline if missing. */
void cli_print_raw_json(const char *body, size_t len);

/* Convenience accessors for JSON objects that tolerate absent fields. */
const char *cli_json_str(const json_t *obj, const char *key);
long long cli_json_int(const json_t *obj, const char *key, long long dflt);
bool cli_json_bool(const json_t *obj, const char *key);

/* ---- client context and HTTP (http.c) ---- */

struct cli {
	char *socket_path;  /* set when talking over the Unix socket */
	char *base_url;     /* "http://HOST:PORT" over TCP, "http://localhost" over the socket */
	char *token;        /* bearer token, or NULL */
	bool json;          /* --json: print the API's JSON as is */
	void *curl;         /* CURL *, reused so the connection stays open */
	char err[1024];     /* the sentence printed as "vessel: <err>" on failure */
};

struct cli_response {
	long status;
	char *body;         /* NUL-terminated; len excludes the NUL */
	size_t len;
	json_t *json;       /* parsed body when it was JSON, else NULL */
	bool has_console_next;
	uint64_t console_next;   /* X-Console-Next */
	uint64_t console_start;  /* X-Console-Start */
};

/* Decide how to reach vesseld from the given options and environment
 * (flags, then VESSEL_URL/VESSEL_SOCKET, then the default socket if it
 * exists, else CLI_DEFAULT_URL). Returns 0 or -errno with cli->err set. */
int cli_new(const struct cli_args *args, struct cli **out);
void cli_free(struct cli *cli);

/* Record an error sentence in cli->err and return `code` (negative errno). */
int cli_fail(struct cli *cli, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Send one request to CLI_API_PREFIX + path. body may be NULL; ctype
 * defaults to application/json. On any HTTP status returns 0 with resp
 * filled; on transport failure returns -errno with cli->err set. */
int cli_http_request(struct cli *cli, const char *method, const char *path,
		     const char *ctype, const void *body, size_t body_len,
		     struct cli_response *resp);
void cli_response_clear(struct cli_response *resp);

/* Call the API with a JSON body (may be NULL). A 2xx with a JSON body
 * returns 0; anything else returns -errno with the API's error.message in
 * cli->err. resp must be cleared by the caller either way. */
int cli_api(struct cli *cli, const char *method, const char *path, json_t *body,
	    struct cli_response *resp);

/* Build "/vms/NAME/..." style paths with each name percent-escaped.
 * fmt uses %s for escaped arguments only. Returns 0 or -ENOMEM. */
int cli_path(char **out, const char *fmt, ...);

/* Text of an API error body ({"error":{"message":...}}), or a sentence
 * naming the HTTP status when there is none. */
void cli_error_from_body(long status, const char *body, char *buf, size_t len);

/* "unix socket /run/vessel/vesseld.sock" or the URL; for messages. */
const char *cli_endpoint_name(const struct cli *cli, char *buf, size_t len);

/* ---- console helpers (console.c) ---- */

/* Split "http://HOST[:PORT][/PREFIX]" (HOST may be "[v6addr]") into
 * newly allocated host, port ("80" when absent) and prefix ("" or "/...").
 * Returns 0, -EPROTONOSUPPORT for other schemes, -EINVAL, -ENOMEM. */
int cli_url_split(const char *url, char **host, char **port, char **prefix);
/* Find header `name` (case-insensitive) in an HTTP response head that ends
 * with an empty line; copy its value without surrounding blanks. */
bool cli_http_header_find(const char *head, const char *name, char *val, size_t len);

/* ---- tasks (task.c) ---- */

/* Poll task `id` until it ends, showing progress on stderr. Returns 0 when
 * it succeeded, -EIO with cli->err set when it failed. */
int cli_task_wait(struct cli *cli, const char *id);

/* ---- commands: each returns 0 or -errno with cli->err set ---- */

/* Option ids of command options (unique across all tables). */
enum cli_cmd_opt {
	CLI_OPT_VCPUS = 100,
	CLI_OPT_MEMORY,
	CLI_OPT_IMAGE,
	CLI_OPT_FULL_COPY,
	CLI_OPT_DISK_SIZE,
	CLI_OPT_BLANK_DISK,
	CLI_OPT_FIRMWARE,
	CLI_OPT_KERNEL,
	CLI_OPT_INITRD,
	CLI_OPT_CMDLINE,
	CLI_OPT_DESCRIPTION,
	CLI_OPT_AUTOSTART,
	CLI_OPT_NO_AUTOSTART,
	CLI_OPT_RESTART,
	CLI_OPT_NO_WAIT,
	CLI_OPT_TIMEOUT,
	CLI_OPT_FORCE,
	CLI_OPT_FOLLOW,
	CLI_OPT_FORMAT,
	CLI_OPT_NET_TYPE = 300, /* network.c */
	CLI_OPT_SUBNET,
	CLI_OPT_GATEWAY,
	CLI_OPT_DHCP_RANGE,
	CLI_OPT_BRIDGE,
	CLI_OPT_UPLINK,
	CLI_OPT_MTU,
	CLI_OPT_RULE,
	CLI_OPT_DEFAULT_IN,
	CLI_OPT_DEFAULT_OUT,
	CLI_OPT_NIC,
	CLI_OPT_NO_NICS,
	CLI_OPT_ROLE = 200, /* token and audit commands */
	CLI_OPT_PROJECT,
	CLI_OPT_EXPIRES,
	CLI_OPT_SINCE,
	CLI_OPT_UNTIL,
	CLI_OPT_TOKEN_ID,
	CLI_OPT_METHOD,
	CLI_OPT_PATH,
	CLI_OPT_RESULT,
	CLI_OPT_LIMIT,
	CLI_OPT_FILE,
	CLI_OPT_PRIORITY,
	CLI_OPT_MAX_VMS,
	CLI_OPT_MAX_VCPUS,
	CLI_OPT_MAX_MEMORY,
	CLI_OPT_MAX_DISK,
	CLI_OPT_CPU_RATIO,
	CLI_OPT_MEMORY_RATIO,
	CLI_OPT_FULL = 400, /* snapshot and backup commands */
	CLI_OPT_STOP,
	CLI_OPT_MERGE,
	CLI_OPT_EVERY,
	CLI_OPT_DAILY_AT,
	CLI_OPT_KEEP_COUNT,
	CLI_OPT_KEEP_AGE,
	CLI_OPT_START_AT,
	CLI_OPT_OVERWRITE,
	CLI_OPT_BOOT_LINE,
	CLI_OPT_SNAPSHOTS,
	CLI_OPT_BACKUPS,
};

extern const struct cli_opt cli_vm_create_opts[];
extern const struct cli_opt cli_vm_update_opts[];
extern const struct cli_opt cli_vm_stop_opts[];
extern const struct cli_opt cli_vm_delete_opts[];
extern const struct cli_opt cli_vm_log_opts[];
extern const struct cli_opt cli_image_import_opts[];
extern const struct cli_opt cli_project_opts[];
extern const struct cli_opt cli_host_capacity_opts[];
extern const struct cli_opt cli_snapshot_create_opts[];
extern const struct cli_opt cli_snapshot_revert_opts[];
extern const struct cli_opt cli_snapshot_delete_opts[];
extern const struct cli_opt cli_schedule_add_opts[];
extern const struct cli_opt cli_backup_create_opts[];
extern const struct cli_opt cli_backup_restore_opts[];
extern const struct cli_opt cli_backup_drill_opts[];

/* snapshot.c: `vessel snapshot ...` (docs/cli.md "Snapshots") */
int cli_snapshot_list(struct cli *cli, const struct cli_args *a);
int cli_snapshot_create(struct cli *cli, const struct cli_args *a);
int cli_snapshot_show(struct cli *cli, const struct cli_args *a);
int cli_snapshot_revert(struct cli *cli, const struct cli_args *a);
int cli_snapshot_delete(struct cli *cli, const struct cli_args *a);
int cli_schedule_add(struct cli *cli, const struct cli_args *a);
int cli_schedule_list(struct cli *cli, const struct cli_args *a);
int cli_schedule_delete(struct cli *cli, const struct cli_args *a);
/* backup.c: `vessel backup ...` (docs/cli.md "Backups") */
int cli_backup_create(struct cli *cli, const struct cli_args *a);
int cli_backup_list(struct cli *cli, const struct cli_args *a);
int cli_backup_show(struct cli *cli, const struct cli_args *a);
int cli_backup_delete(struct cli *cli, const struct cli_args *a);
int cli_backup_verify(struct cli *cli, const struct cli_args *a);
int cli_backup_restore(struct cli *cli, const struct cli_args *a);
int cli_backup_drill(struct cli *cli, const struct cli_args *a);
int cli_backup_drills(struct cli *cli, const struct cli_args *a);

/* Build the POST /vms body from `vm create` arguments (pos[0] is the name).
 * Pure: touches no network. Returns 0 or -EINVAL with a sentence in err. */
int cli_vm_create_body(const struct cli_args *a, json_t **out, char *err, size_t errlen);
/* Build the PATCH /vms/NAME body from `vm update` arguments. */
int cli_vm_update_body(const struct cli_args *a, json_t **out, char *err, size_t errlen);
/* Render the `vm list` table of a {"vms": [...]} response. */
int cli_vm_table(const json_t *vms, struct cli_table **out);
/* Sum of disk sizes of one VM object, in bytes. */
uint64_t cli_vm_disk_bytes(const json_t *vm);

int cli_vm_list(struct cli *cli, const struct cli_args *a);
int cli_vm_create(struct cli *cli, const struct cli_args *a);
int cli_vm_show(struct cli *cli, const struct cli_args *a);
int cli_vm_update(struct cli *cli, const struct cli_args *a);
int cli_vm_start(struct cli *cli, const struct cli_args *a);
int cli_vm_stop(struct cli *cli, const struct cli_args *a);
int cli_vm_force_stop(struct cli *cli, const struct cli_args *a);
int cli_vm_reboot(struct cli *cli, const struct cli_args *a);
int cli_vm_pause(struct cli *cli, const struct cli_args *a);
int cli_vm_resume(struct cli *cli, const struct cli_args *a);
int cli_vm_delete(struct cli *cli, const struct cli_args *a);
int cli_vm_log(struct cli *cli, const struct cli_args *a);
int cli_vm_console(struct cli *cli, const struct cli_args *a);

int cli_image_table(const json_t *images, struct cli_table **out);
int cli_image_import(struct cli *cli, const struct cli_args *a);
int cli_image_list(struct cli *cli, const struct cli_args *a);
int cli_image_show(struct cli *cli, const struct cli_args *a);
int cli_image_delete(struct cli *cli, const struct cli_args *a);

int cli_task_table(const json_t *tasks, struct cli_table **out);

/* GET /api/v1/COLLECTION and print it: the JSON as is with --json, else the
 * table `to_table` builds from the array under the key COLLECTION, or
 * `empty_msg` when there are no rows. Shared by vm, image and task list. */
/* GET /api/v1/COLLECTION/NAME into resp (NAME escaped for the path). */
int cli_get_item(struct cli *cli, const char *collection, const char *name,
		 struct cli_response *resp);
/* GET one item and print it: the JSON as is with --json, else `print` on
 * the object under `key`. Shared by vm show and image show. */
int cli_show_print(struct cli *cli, const char *collection, const char *name, const char *key,
		   void (*print)(const json_t *item));
/* Send one request and print the reply: the JSON as is with --json, else
 * print(reply, arg) (cli_send_print), `print` on the object under `key`
 * (cli_send_item) or done_fmt, a line with one %s for name (cli_send_done). */
int cli_send_print(struct cli *cli, const char *method, const char *path, json_t *body,
		   void (*print)(const json_t *reply, const void *arg), const void *arg);
int cli_send_item(struct cli *cli, const char *method, const char *path, json_t *body,
		  const char *key, void (*print)(const json_t *item));
int cli_send_done(struct cli *cli, const char *method, const char *path, json_t *body,
		  const char *done_fmt, const char *name);
/* DELETE /collection/name (escaped) and say so with done_fmt as above. */
int cli_delete_item(struct cli *cli, const char *collection, const char *name,
		    const char *done_fmt);
int cli_list_print(struct cli *cli, const char *collection,
		   int (*to_table)(const json_t *items, struct cli_table **out),
		   const char *empty_msg);
int cli_task_list(struct cli *cli, const struct cli_args *a);
int cli_task_show(struct cli *cli, const struct cli_args *a);

int cli_host_info(struct cli *cli, const struct cli_args *a);
/* `host capacity`: GET (or PATCH with --cpu-ratio/--memory-ratio)
 * /api/v1/host/capacity as a table. */
int cli_host_capacity(struct cli *cli, const struct cli_args *a);
int cli_capacity_table(const json_t *capacity, struct cli_table **out);

/* project.c */
/* Build the POST/PATCH /projects body from the options (create: pos[0] is
 * the name). Quota "none" or "unlimited" sends null. Pure. */
int cli_project_body(const struct cli_args *a, bool create, json_t **out, char *err,
		     size_t errlen);
int cli_project_table(const json_t *projects, struct cli_table **out);
int cli_project_list(struct cli *cli, const struct cli_args *a);
int cli_project_show(struct cli *cli, const struct cli_args *a);
int cli_project_create(struct cli *cli, const struct cli_args *a);
int cli_project_update(struct cli *cli, const struct cli_args *a);
int cli_project_delete(struct cli *cli, const struct cli_args *a);

/* network.c: networks, firewalls and VM NICs. The builders are pure. */
extern const struct cli_opt cli_network_create_opts[];
extern const struct cli_opt cli_firewall_opts[];
int cli_network_create_body(const struct cli_args *a, json_t **out, char *err, size_t errlen);
int cli_forward_parse(const char *spec, json_t **out, char *err, size_t errlen);
int cli_rule_parse(const char *spec, json_t **out, char *err, size_t errlen);
int cli_firewall_body(const struct cli_args *a, json_t **out, char *err, size_t errlen);
int cli_nic_parse(const char *spec, json_t **out, char *err, size_t errlen);
/* Add "nics" to a VM body from --nic (repeatable) / --no-nics. */
int cli_nics_body(const struct cli_args *a, json_t *body, char *err, size_t errlen);
int cli_network_list(struct cli *cli, const struct cli_args *a);
int cli_network_show(struct cli *cli, const struct cli_args *a);
int cli_network_create(struct cli *cli, const struct cli_args *a);
int cli_network_delete(struct cli *cli, const struct cli_args *a);
int cli_network_forwards(struct cli *cli, const struct cli_args *a);
int cli_firewall_list(struct cli *cli, const struct cli_args *a);
int cli_firewall_show(struct cli *cli, const struct cli_args *a);
int cli_firewall_create(struct cli *cli, const struct cli_args *a);
int cli_firewall_set(struct cli *cli, const struct cli_args *a);
int cli_firewall_delete(struct cli *cli, const struct cli_args *a);
/* token.c */
extern const struct cli_opt cli_token_create_opts[];
/* Build the POST /tokens body from `token create` arguments (pos[0] is
 * the name). Pure. Returns 0 or -EINVAL with a sentence in err. */
int cli_token_create_body(const struct cli_args *a, json_t **out, char *err, size_t errlen);
int cli_token_table(const json_t *tokens, struct cli_table **out);
int cli_token_create(struct cli *cli, const struct cli_args *a);
int cli_token_list(struct cli *cli, const struct cli_args *a);
int cli_token_revoke(struct cli *cli, const struct cli_args *a);

/* audit.c */
extern const struct cli_opt cli_audit_list_opts[];
extern const struct cli_opt cli_audit_verify_opts[];
/* The query string ("" or "?since=...&...") of `audit list` filters;
 * --since/--until also take a duration back from now ("1h"). Pure. */
int cli_audit_query(const struct cli_args *a, time_t now, char **out);
int cli_audit_table(const json_t *entries, struct cli_table **out);
int cli_audit_list(struct cli *cli, const struct cli_args *a);
/* Exit status 1 (-EBADMSG) when the log fails verification. */
int cli_audit_verify(struct cli *cli, const struct cli_args *a);

#endif
