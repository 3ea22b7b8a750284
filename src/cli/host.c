/* host: `vessel host info`, what the host offers (GET /api/v1/host): CPUs,
 * memory, acceleration (KVM or TCG) and the warnings vesseld has about it;
 * `vessel host capacity`, what admission allows (GET/PATCH
 * /api/v1/host/capacity). */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

int cli_host_info(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	int ret;

	ret = cli_api(cli, "GET", "/host", NULL, &resp);
	if (ret < 0)
		goto out;
	if (cli->json) {
		cli_print_raw_json(resp.body, resp.len);
		goto out;
	}
	json_t *h = resp.json;
	char cpus[32], mem[32], vms[32], images[32];
	snprintf(cpus, sizeof(cpus), "%lld", cli_json_int(h, "cpus", 0));
	cli_format_size((uint64_t)cli_json_int(h, "memory_mib", 0) * MiB, mem, sizeof(mem));
	snprintf(vms, sizeof(vms), "%lld", cli_json_int(h, "vms", 0));
	snprintf(images, sizeof(images), "%lld", cli_json_int(h, "images", 0));
	const char *keys[] = {"hostname", "version", "cpus", "memory", "accel", "qemu", "data dir",
			      "vms", "images"};
	const char *vals[] = {
		cli_json_str(h, "hostname"), cli_json_str(h, "version"), cpus, mem,
		cli_json_str(h, "accel"), cli_json_str(h, "qemu_version"),
		cli_json_str(h, "data_dir"), vms, images,
	};
	cli_kv_print(stdout, keys, vals, ARRAY_SIZE(keys));
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(h, "warnings"), i, w)
		if (json_is_string(w))
			printf("warning: %s\n", json_string_value(w));
out:
	cli_response_clear(&resp);
	return ret;
}

const struct cli_opt cli_host_capacity_opts[] = {
	{"cpu-ratio", CLI_OPT_CPU_RATIO, true},
	{"memory-ratio", CLI_OPT_MEMORY_RATIO, true},
	{NULL, 0, false},
};

int cli_capacity_table(const json_t *cap, struct cli_table **out)
{
	static const char *const hdr[] = {"RESOURCE", ">CAPACITY", ">RATIO", ">ALLOCATABLE", ">USED",
					  ">FREE"};
	static const struct {
		const char *key, *label;
		uint64_t unit; /* 0: a count */
	} dims[] = {{"vcpus", "vcpus", 0}, {"memory_mib", "memory", MiB}, {"disk_gib", "disk", GiB}};
	struct cli_table *t = NULL;
	int ret = cli_table_new(ARRAY_SIZE(hdr), hdr, &t);
	for (size_t i = 0; ret == 0 && i < ARRAY_SIZE(dims); i++) {
		const json_t *d = json_object_get(cap, dims[i].key);
		const char *fields[] = {"capacity", "allocatable", "used", "free"};
		char cells[4][32], ratio[32];
		for (size_t k = 0; k < 4; k++) {
			long long v = cli_json_int(d, fields[k], 0);
			if (dims[i].unit)
				cli_format_size((uint64_t)v * dims[i].unit, cells[k], sizeof(cells[k]));
			else
				snprintf(cells[k], sizeof(cells[k]), "%lld", v);
		}
		json_t *r = json_object_get(d, "ratio");
		snprintf(ratio, sizeof(ratio), "%g:1", json_is_number(r) ? json_number_value(r) : 1.0);
		const char *row[] = {dims[i].label, cells[0], ratio, cells[1], cells[2], cells[3]};
		ret = cli_table_add_row(t, row);
	}
	if (ret == 0) {
		*out = t;
		t = NULL;
	}
	cli_table_free(t);
	return ret;
}

static int host_ratio(const struct cli_args *a, int id, const char *opt, const char *key,
		      json_t *body, char *err, size_t errlen)
{
	const char *v = cli_args_get(a, id);
	char *end;
	if (!v)
		return 0;
	double r = strtod(v, &end);
	if (end == v || *end || !isfinite(r)) {
		snprintf(err, errlen, "--%s '%s' is not a number; give e.g. --%s %s", opt, v, opt,
			 id == CLI_OPT_CPU_RATIO ? "4" : "1.5");
		return -EINVAL;
	}
	return json_object_set_new(body, key, json_real(r)) == 0 ? 0 : -ENOMEM;
}

int cli_host_capacity(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0};
	struct cli_table *t = NULL;
	json_t *body = json_object();
	int ret = body ? 0 : -ENOMEM;
	if (ret == 0)
		ret = host_ratio(a, CLI_OPT_CPU_RATIO, "cpu-ratio", "cpu_ratio", body, cli->err,
				 sizeof(cli->err));
	if (ret == 0)
		ret = host_ratio(a, CLI_OPT_MEMORY_RATIO, "memory-ratio", "memory_ratio", body,
				 cli->err, sizeof(cli->err));
	if (ret < 0)
		goto out;
	if (json_object_size(body))
		ret = cli_api(cli, "PATCH", "/host/capacity", body, &resp);
	else
		ret = cli_api(cli, "GET", "/host/capacity", NULL, &resp);
	if (ret < 0)
		goto out;
	if (cli->json) {
		cli_print_raw_json(resp.body, resp.len);
		goto out;
	}
	json_t *cap = json_object_get(resp.json, "capacity");
	if ((ret = cli_capacity_table(cap, &t)) < 0)
		goto out;
	cli_table_print(t, stdout);
	printf("counted: %s\n", cli_json_str(cap, "counts") ? cli_json_str(cap, "counts") : "-");
out:
	cli_table_free(t);
	json_decref(body);
	cli_response_clear(&resp);
	return ret;
}
