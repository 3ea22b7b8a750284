/* host: `vessel host info`, what the host offers (GET /api/v1/host): CPUs,
 * memory, acceleration (KVM or TCG) and the warnings vesseld has about it. */
#include "cli/cli.h"

#include <stdlib.h>

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
