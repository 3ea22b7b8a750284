/* output: how `vessel` shows things to people: human-readable sizes, aligned
 * tables, "key: value" blocks and task progress lines. With --json the
 * commands bypass all of this and print the API's JSON as is. */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

void cli_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	size_t u = 0;
	double v = (double)bytes;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return;
	}
	while (v >= 1024.0 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024.0;
		u++;
	}
	/* Rounding may carry into the next unit: 1023.97 MiB is "1.0 GiB",
	 * not "1024 MiB". */
	if (v >= 1023.5 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024.0;
		u++;
	}
	if (v >= 99.95)
		snprintf(buf, len, "%.0f %s", v, units[u]);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

struct cli_table {
	size_t ncols;
	size_t nrows;      /* including the header row */
	size_t cap;
	char **cells;      /* nrows * ncols */
	bool *right;       /* per column */
};

int cli_table_new(size_t ncols, const char *const *headers, struct cli_table **out)
{
	struct cli_table *t = NULL;
	const char **hdr = NULL;
	int ret = -ENOMEM;

	if (ncols == 0)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		goto out;
	t->ncols = ncols;
	t->right = calloc(ncols, sizeof(*t->right));
	if (!t->right)
		goto out;
	hdr = calloc(ncols, sizeof(*hdr));
	if (!hdr)
		goto out;
	for (size_t i = 0; i < ncols; i++) {
		hdr[i] = headers[i];
		if (hdr[i][0] == '>') {
			t->right[i] = true;
			hdr[i]++;
		}
	}
	ret = cli_table_add_row(t, hdr);
	if (ret < 0)
		goto out;
	*out = t;
	t = NULL;
out:
	free(hdr);
	cli_table_free(t);
	return ret;
}

void cli_table_free(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
}

int cli_table_add_row(struct cli_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));
		if (!c)
			return -ENOMEM;
		t->cells = c;
		t->cap = cap;
	}
	char **row = &t->cells[t->nrows * t->ncols];
	for (size_t i = 0; i < t->ncols; i++) {
		row[i] = strdup(cells[i] ? cells[i] : "-");
		if (!row[i]) {
			while (i--)
				free(row[i]);
			return -ENOMEM;
		}
		/* A cell is one line: a description with a newline in it
		 * would break the columns. */
		for (char *p = row[i]; *p; p++)
			if (*p == '\n' || *p == '\r' || *p == '\t')
				*p = ' ';
	}
	t->nrows++;
	return 0;
}

int cli_table_build(const json_t *items, size_t ncols, const char *const *headers,
		    int (*add_row)(struct cli_table *t, const json_t *item), struct cli_table **out)
{
	struct cli_table *t = NULL;
	size_t i;
	json_t *item;
	int ret = cli_table_new(ncols, headers, &t);
	if (ret < 0)
		goto out;
	json_array_foreach(items, i, item) {
		if ((ret = add_row(t, item)) < 0)
			goto out;
	}
	*out = t;
	t = NULL;
out:
	cli_table_free(t);
	return ret;
}

size_t cli_table_rows(const struct cli_table *t)
{
	return t->nrows - 1;
}

/* Columns on a terminal: UTF-8 continuation bytes take no room. */
static size_t output_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
	size_t width[t->ncols];

	for (size_t c = 0; c < t->ncols; c++) {
		width[c] = 0;
		for (size_t r = 0; r < t->nrows; r++)
			width[c] = MAX(width[c], output_width(t->cells[r * t->ncols + c]));
	}
	for (size_t r = 0; r < t->nrows; r++) {
		/* Left-aligned cells are padded only when something follows,
		 * so no line ends in blanks. */
		size_t pending = 0;
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			size_t w = output_width(cell);
			if (c > 0)
				pending += 2;
			if (t->right[c])
				pending += width[c] - w;
			fprintf(f, "%*s%s", (int)pending, "", cell);
			pending = t->right[c] ? 0 : width[c] - w;
		}
		fputc('\n', f);
	}
}

void cli_kv_print(FILE *f, const char *const *keys, const char *const *values, size_t n)
{
	size_t width = 0;

	for (size_t i = 0; i < n; i++)
		width = MAX(width, strlen(keys[i]));
	for (size_t i = 0; i < n; i++) {
		const char *v = values[i] ? values[i] : "-";
		fprintf(f, "%s:%*s %s\n", keys[i], (int)(width - strlen(keys[i])), "", v);
	}
}

void cli_progress_format(bool tty, const char *task_id, const char *label,
			 int percent, char *buf, size_t len)
{
	enum { BAR = 30 };
	char bar[BAR + 1];

	percent = MAX(0, MIN(100, percent));
	if (!tty) {
		snprintf(buf, len, "task %s: %d%%\n", task_id, percent);
		return;
	}
	int filled = percent * BAR / 100;
	for (int i = 0; i < BAR; i++)
		bar[i] = i < filled ? '#' : ' ';
	bar[BAR] = '\0';
	/* "\033[K" clears what a longer previous label left behind. */
	snprintf(buf, len, "\r[%s] %3d%%  %s\033[K", bar, percent, label ? label : task_id);
}

void cli_print_raw_json(const char *body, size_t len)
{
	fwrite(body, 1, len, stdout);
	if (len == 0 || body[len - 1] != '\n')
		fputc('\n', stdout);
}

const char *cli_json_str(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

long long cli_json_int(const json_t *obj, const char *key, long long dflt)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return dflt;
}

bool cli_json_bool(const json_t *obj, const char *key)
{
	return json_is_true(json_object_get(obj, key));
}

int cli_list_print(struct cli *cli, const char *collection,
		   int (*to_table)(const json_t *items, struct cli_table **out),
		   const char *empty_msg)
{
	struct cli_response resp = {0};
	struct cli_table *t = NULL;
	char path[64];
	int ret;

	snprintf(path, sizeof(path), "/%s", collection);
	ret = cli_api(cli, "GET", path, NULL, &resp);
	if (ret < 0)
		goto out;
	if (cli->json) {
		cli_print_raw_json(resp.body, resp.len);
		goto out;
	}
	ret = to_table(json_object_get(resp.json, collection), &t);
	if (ret < 0)
		goto out;
	if (cli_table_rows(t) == 0)
		printf("%s\n", empty_msg);
	else
		cli_table_print(t, stdout);
out:
	cli_table_free(t);
	cli_response_clear(&resp);
	return ret;
}

int cli_get_item(struct cli *cli, const char *collection, const char *name,
		 struct cli_response *resp)
{
	char *path = NULL;
	int ret;

	ret = cli_path(&path, "/%s/%s", collection, name);
	if (ret < 0) {
		memset(resp, 0, sizeof(*resp));
		return ret;
	}
	ret = cli_api(cli, "GET", path, NULL, resp);
	free(path);
	return ret;
}

int cli_show_print(struct cli *cli, const char *collection, const char *name, const char *key,
		   void (*print)(const json_t *item))
{
	struct cli_response resp = {0};
	int ret;

	ret = cli_get_item(cli, collection, name, &resp);
	if (ret < 0)
		goto out;
	if (cli->json)
		cli_print_raw_json(resp.body, resp.len);
	else
		print(json_object_get(resp.json, key));
out:
	cli_response_clear(&resp);
	return ret;
}

int cli_send_print(struct cli *cli, const char *method, const char *path, json_t *body,
		   void (*print)(const json_t *reply, const void *arg), const void *arg)
{
	struct cli_response resp = {0};
	int ret = cli_api(cli, method, path, body, &resp);

	if (ret == 0) {
		if (cli->json)
			cli_print_raw_json(resp.body, resp.len);
		else
			print(resp.json, arg);
	}
	cli_response_clear(&resp);
	return ret;
}

struct output_item {
	const char *key;
	void (*print)(const json_t *item);
};

static void output_item_print(const json_t *reply, const void *arg)
{
	const struct output_item *it = arg;
	it->print(json_object_get(reply, it->key));
}

int cli_send_item(struct cli *cli, const char *method, const char *path, json_t *body,
		  const char *key, void (*print)(const json_t *item))
{
	struct output_item it = {key, print};
	return cli_send_print(cli, method, path, body, output_item_print, &it);
}

struct output_done {
	const char *fmt, *name;
};

static void output_done_print(const json_t *reply, const void *arg)
{
	const struct output_done *done = arg;
	printf(done->fmt, done->name);
}

int cli_send_done(struct cli *cli, const char *method, const char *path, json_t *body,
		  const char *done_fmt, const char *name)
{
	struct output_done done = {done_fmt, name};
	return cli_send_print(cli, method, path, body, output_done_print, &done);
}

int cli_delete_item(struct cli *cli, const char *collection, const char *name,
		    const char *done_fmt)
{
	char *path = NULL;
	int ret = cli_path(&path, "/%s/%s", collection, name);

	if (ret == 0)
		ret = cli_send_done(cli, "DELETE", path, NULL, done_fmt, name);
	free(path);
	return ret;
}
