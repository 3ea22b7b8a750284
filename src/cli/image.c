/* image: `vessel image import|list|show|delete` (docs/api.md "Images").
 * An import is converted to qcow2 by vesseld in a task; the CLI waits for
 * it with a progress display unless --no-wait is given. */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

const struct cli_opt cli_image_import_opts[] = {
	{"format", CLI_OPT_FORMAT, true},
	{"no-wait", CLI_OPT_NO_WAIT, false},
	{NULL, 0, false},
};

int cli_image_table(const json_t *images, struct cli_table **out)
{
	static const char *const hdr[] = {"NAME", "STATE", "FORMAT", "SOURCE", ">SIZE", ">VIRTUAL", "USED-BY"};
	struct cli_table *t = NULL;
	size_t i;
	json_t *img;
	int ret;

	ret = cli_table_new(ARRAY_SIZE(hdr), hdr, &t);
	if (ret < 0)
		goto out;
	json_array_foreach(images, i, img) {
		char size[32], vsize[32], used[256] = "";
		size_t j, n = 0;
		json_t *u;
		cli_format_size((uint64_t)cli_json_int(img, "size_bytes", 0), size, sizeof(size));
		cli_format_size((uint64_t)cli_json_int(img, "virtual_size_bytes", 0), vsize, sizeof(vsize));
		json_array_foreach(json_object_get(img, "used_by"), j, u) {
			if (!json_is_string(u) || n >= sizeof(used) - 1)
				continue;
			n += (size_t)snprintf(used + n, sizeof(used) - n, "%s%s", n ? "," : "",
					      json_string_value(u));
		}
		const char *row[] = {
			cli_json_str(img, "name"), cli_json_str(img, "state"), cli_json_str(img, "format"),
			cli_json_str(img, "source_format"), size, vsize, used[0] ? used : NULL,
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

static void image_print(const json_t *img)
{
	char size[32], vsize[32], used[512] = "";
	size_t j, n = 0;
	json_t *u;

	cli_format_size((uint64_t)cli_json_int(img, "size_bytes", 0), size, sizeof(size));
	cli_format_size((uint64_t)cli_json_int(img, "virtual_size_bytes", 0), vsize, sizeof(vsize));
	json_array_foreach(json_object_get(img, "used_by"), j, u) {
		if (!json_is_string(u) || n >= sizeof(used) - 1)
			continue;
		n += (size_t)snprintf(used + n, sizeof(used) - n, "%s%s", n ? ", " : "", json_string_value(u));
	}
	const char *keys[] = {"name", "state", "format", "source format", "source path", "size",
			      "virtual size", "sha256", "task", "created", "used by"};
	const char *vals[] = {
		cli_json_str(img, "name"), cli_json_str(img, "state"), cli_json_str(img, "format"),
		cli_json_str(img, "source_format"), cli_json_str(img, "source_path"), size, vsize,
		cli_json_str(img, "sha256"), cli_json_str(img, "task"), cli_json_str(img, "created_at"),
		used[0] ? used : NULL,
	};
	cli_kv_print(stdout, keys, vals, ARRAY_SIZE(keys));
}

int cli_image_import(struct cli *cli, const struct cli_args *a)
{
	struct cli_response resp = {0}, final = {0};
	json_t *body = NULL;
	const char *name = a->pos[0];
	const char *src = a->pos[1];
	const char *format = cli_args_get(a, CLI_OPT_FORMAT);
	char abs[PATH_MAX];
	int ret;

	/* vesseld resolves the path itself; a relative one would be taken
	 * relative to the daemon's directory, so send what the user meant.
	 * A path that does not exist here is sent as given: the daemon may
	 * run elsewhere, and it says what is wrong with the path. */
	if (realpath(src, abs))
		src = abs;
	body = json_pack("{s:s, s:s, s:s}", "name", name, "path", src, "format", format ? format : "auto");
	if (!body) {
		ret = -ENOMEM;
		goto out;
	}
	ret = cli_api(cli, "POST", "/images", body, &resp);
	if (ret < 0)
		goto out;
	const char *task = cli_json_str(json_object_get(resp.json, "task"), "id");
	if (!task)
		task = cli_json_str(json_object_get(resp.json, "image"), "task");
	if (cli_args_has(a, CLI_OPT_NO_WAIT) || !task) {
		if (cli->json)
			cli_print_raw_json(resp.body, resp.len);
		else if (task)
			printf("importing image %s in task %s; see `vessel task show %s`\n", name, task, task);
		else
			printf("imported image %s\n", name);
		goto out;
	}
	ret = cli_task_wait(cli, task);
	if (ret < 0)
		goto out;
	ret = cli_get_item(cli, "images", name, &final);
	if (ret < 0)
		goto out;
	if (cli->json) {
		cli_print_raw_json(final.body, final.len);
	} else {
		char vsize[32];
		json_t *img = json_object_get(final.json, "image");
		cli_format_size((uint64_t)cli_json_int(img, "virtual_size_bytes", 0), vsize, sizeof(vsize));
		printf("imported image %s (%s, virtual size %s)\n", name,
		       cli_json_str(img, "source_format") ? cli_json_str(img, "source_format") : "?", vsize);
	}
out:
	json_decref(body);
	cli_response_clear(&resp);
	cli_response_clear(&final);
	return ret;
}

int cli_image_list(struct cli *cli, const struct cli_args *a)
{
	return cli_list_print(cli, "images", cli_image_table, "no images; import one with `vessel image import NAME PATH`");
}

int cli_image_show(struct cli *cli, const struct cli_args *a)
{
	return cli_show_print(cli, "images", a->pos[0], "image", image_print);
}

int cli_image_delete(struct cli *cli, const struct cli_args *a)
{
	return cli_delete_item(cli, "images", a->pos[0], "deleted image %s\n");
}
