/* Unit tests for the vessel CLI (src/cli): the option parser, size
 * arguments, the request bodies built from `vm create`/`vm update`, size
 * formatting, tables, key/value blocks, progress lines, path escaping,
 * error-message extraction and endpoint selection. No daemon is needed. */
#include "cli/cli.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "lib/util.h"

static const struct cli_opt *const test_vm_create_tables[] = {cli_global_opts, cli_vm_create_opts, NULL};
static const struct cli_opt *const test_vm_update_tables[] = {cli_global_opts, cli_vm_update_opts, NULL};

/* Parse a NULL-terminated word list with the given tables. */
static int test_parse(const struct cli_opt *const *tables, struct cli_args *a, char *err, size_t errlen,
		      const char **words)
{
	int n = 0;

	while (words[n])
		n++;
	return cli_args_parse(tables, n, (char **)words, a, err, errlen);
}

/* Body of `vm create` for the words, as sorted compact JSON (caller frees),
 * or NULL with the error in err. */
static char *test_create_json(const char **words, char *err, size_t errlen)
{
	struct cli_args a;
	json_t *body = NULL;
	char *s = NULL;

	err[0] = '\0';
	if (test_parse(test_vm_create_tables, &a, err, errlen, words) < 0)
		return NULL;
	if (cli_vm_create_body(&a, &body, err, errlen) < 0)
		return NULL;
	s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	return s;
}

static char *test_update_json(const char **words, char *err, size_t errlen)
{
	struct cli_args a;
	json_t *body = NULL;
	char *s = NULL;

	err[0] = '\0';
	if (test_parse(test_vm_update_tables, &a, err, errlen, words) < 0)
		return NULL;
	if (cli_vm_update_body(&a, &body, err, errlen) < 0)
		return NULL;
	s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	return s;
}

TEST(args_parse_forms)
{
	struct cli_args a;
	char err[256] = "";
	const char *w[] = {"web-1", "--vcpus", "2", "--memory=1G", "--json", "--autostart",
			   "--blank-disk", "1G", "--blank-disk=2G", "--", "--not-an-option", NULL};

	CHECK_EQ_INT(test_parse(test_vm_create_tables, &a, err, sizeof(err), w), 0);
	CHECK_EQ_INT(a.n_pos, 2);
	CHECK_STR(a.pos[0], "web-1");
	CHECK_STR(a.pos[1], "--not-an-option");
	CHECK_STR(cli_args_get(&a, CLI_OPT_VCPUS), "2");
	CHECK_STR(cli_args_get(&a, CLI_OPT_MEMORY), "1G");
	CHECK(cli_args_has(&a, CLI_OPT_JSON));
	CHECK(cli_args_has(&a, CLI_OPT_AUTOSTART));
	CHECK(!cli_args_has(&a, CLI_OPT_FULL_COPY));
	/* The last value wins for single options. */
	CHECK_STR(cli_args_get(&a, CLI_OPT_BLANK_DISK), "2G");
	CHECK(!a.help);
}

TEST(args_parse_errors)
{
	struct cli_args a;
	char err[256];
	const char *unknown[] = {"x", "--bogus", NULL};
	const char *missing[] = {"x", "--vcpus", NULL};
	const char *flag_value[] = {"x", "--json=yes", NULL};
	const char *short_opt[] = {"x", "-v", NULL};
	const char *help[] = {"x", "-h", NULL};
	const char *help_long[] = {"--help", NULL};

	err[0] = '\0';
	CHECK_EQ_INT(test_parse(test_vm_create_tables, &a, err, sizeof(err), unknown), -EINVAL);
	CHECK(strstr(err, "--bogus") != NULL);
	CHECK_EQ_INT(test_parse(test_vm_create_tables, &a, err, sizeof(err), missing), -EINVAL);
	CHECK(strstr(err, "--vcpus") && strstr(err, "needs a value"));
	CHECK_EQ_INT(test_parse(test_vm_create_tables, &a, err, sizeof(err), flag_value), -EINVAL);
	CHECK(strstr(err, "takes no value") != NULL);
	CHECK_EQ_INT(test_parse(test_vm_create_tables, &a, err, sizeof(err), short_opt), -EINVAL);
	CHECK_EQ_INT(test_parse(test_vm_create_tables, &a, err, sizeof(err), help), 0);
	CHECK(a.help);
	CHECK_EQ_INT(test_parse(test_vm_create_tables, &a, err, sizeof(err), help_long), 0);
	CHECK(a.help);
	/* An option of another command is unknown here. */
	const char *other[] = {"x", "--follow", NULL};
	CHECK_EQ_INT(test_parse(test_vm_create_tables, &a, err, sizeof(err), other), -EINVAL);
}

TEST(args_find_command)
{
	int g, c;
	char *w1[] = {"vessel", "--socket", "/tmp/s", "vm", "list", "--json", NULL};
	char *w2[] = {"vessel", "--json", "host", "info", NULL};
	char *w3[] = {"vessel", "--url=http://a:1", "vm", NULL};
	char *w4[] = {"vessel", "--json", NULL};
	char *w5[] = {"vessel", "--", "vm", "list", NULL};

	cli_args_find_command(6, w1, &g, &c);
	CHECK_EQ_INT(g, 3);
	CHECK_EQ_INT(c, 4);
	cli_args_find_command(4, w2, &g, &c);
	CHECK_EQ_INT(g, 2);
	CHECK_EQ_INT(c, 3);
	cli_args_find_command(3, w3, &g, &c);
	CHECK_EQ_INT(g, 2);
	CHECK_EQ_INT(c, 0);
	cli_args_find_command(2, w4, &g, &c);
	CHECK_EQ_INT(g, 0);
	CHECK_EQ_INT(c, 0);
	cli_args_find_command(4, w5, &g, &c);
	CHECK_EQ_INT(g, 0);
}

TEST(parse_memory_and_disk)
{
	uint64_t v = 0;

	CHECK_EQ_INT(cli_parse_memory_mib("512", &v), 0);
	CHECK_EQ_INT(v, 512);
	CHECK_EQ_INT(cli_parse_memory_mib("512M", &v), 0);
	CHECK_EQ_INT(v, 512);
	CHECK_EQ_INT(cli_parse_memory_mib("2G", &v), 0);
	CHECK_EQ_INT(v, 2048);
	CHECK_EQ_INT(cli_parse_memory_mib("2GiB", &v), 0);
	CHECK_EQ_INT(v, 2048);
	CHECK_EQ_INT(cli_parse_memory_mib("1024K", &v), 0);
	CHECK_EQ_INT(v, 1);
	CHECK_EQ_INT(cli_parse_memory_mib("1536K", &v), -EINVAL);
	CHECK_EQ_INT(cli_parse_memory_mib("lots", &v), -EINVAL);
	CHECK_EQ_INT(cli_parse_memory_mib("", &v), -EINVAL);
	CHECK_EQ_INT(cli_parse_memory_mib("-1G", &v), -EINVAL);

	CHECK_EQ_INT(cli_parse_disk_gib("10G", &v), 0);
	CHECK_EQ_INT(v, 10);
	CHECK_EQ_INT(cli_parse_disk_gib("10", &v), 0);
	CHECK_EQ_INT(v, 10);
	CHECK_EQ_INT(cli_parse_disk_gib("1T", &v), 0);
	CHECK_EQ_INT(v, 1024);
	CHECK_EQ_INT(cli_parse_disk_gib("2048M", &v), 0);
	CHECK_EQ_INT(v, 2);
	CHECK_EQ_INT(cli_parse_disk_gib("512M", &v), -EINVAL);
	CHECK_EQ_INT(cli_parse_disk_gib("1.5G", &v), -EINVAL);
	CHECK_EQ_INT(cli_parse_disk_gib("99999999999999999999", &v), -ERANGE);
}

TEST(vm_create_body_full)
{
	char err[256];
	const char *w[] = {"web-1", "--vcpus", "2", "--memory", "2G", "--image", "debian", "--full-copy",
			   "--disk-size", "10G", "--blank-disk", "1G", "--blank-disk", "5", "--firmware", "uefi",
			   "--description", "front end", "--autostart", "--restart", "on-crash", NULL};
	char *s = test_create_json(w, err, sizeof(err));

	CHECK_STR(s, "{\"autostart\":true,\"boot\":{\"firmware\":\"uefi\"},\"description\":\"front end\","
		     "\"disks\":[{\"clone\":\"full\",\"image\":\"debian\",\"size_gib\":10},{\"size_gib\":1},"
		     "{\"size_gib\":5}],\"memory_mib\":2048,\"name\":\"web-1\",\"restart_policy\":\"on-crash\","
		     "\"vcpus\":2}");
	free(s);
}

TEST(vm_create_body_minimal_and_variants)
{
	char err[256];
	const char *w1[] = {"a", NULL};
	const char *w2[] = {"a", "--image", "deb", NULL};
	const char *w3[] = {"a", "--disk-size", "4G", NULL};
	const char *w4[] = {"a", "--kernel", "/nonexistent/vmlinuz", "--cmdline", "console=ttyS0", NULL};
	char *s;

	s = test_create_json(w1, err, sizeof(err));
	CHECK_STR(s, "{\"name\":\"a\"}");
	free(s);
	s = test_create_json(w2, err, sizeof(err));
	CHECK_STR(s, "{\"disks\":[{\"clone\":\"linked\",\"image\":\"deb\"}],\"name\":\"a\"}");
	free(s);
	s = test_create_json(w3, err, sizeof(err));
	CHECK_STR(s, "{\"disks\":[{\"size_gib\":4}],\"name\":\"a\"}");
	free(s);
	/* A path that does not exist here is passed as given. */
	s = test_create_json(w4, err, sizeof(err));
	CHECK_STR(s, "{\"boot\":{\"cmdline\":\"console=ttyS0\",\"firmware\":\"kernel\","
		     "\"kernel\":\"/nonexistent/vmlinuz\"},\"name\":\"a\"}");
	free(s);
}

TEST(vm_create_body_relative_kernel_made_absolute)
{
	char err[256], cwd[4096], tmpl[] = "/tmp/vessel-cli-test-XXXXXX";
	int fd = mkstemp(tmpl);
	if (fd < 0)
		SKIP("cannot create a temporary file");
	close(fd);
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_EQ_INT(chdir("/tmp"), 0);
	const char *w[] = {"a", "--kernel", tmpl + 5, NULL};
	char *s = test_create_json(w, err, sizeof(err));
	char want[256];
	snprintf(want, sizeof(want), "{\"boot\":{\"firmware\":\"kernel\",\"kernel\":\"%s\"},\"name\":\"a\"}", tmpl);
	CHECK_STR(s, want);
	free(s);
	CHECK_EQ_INT(chdir(cwd), 0);
	unlink(tmpl);
}

TEST(vm_create_body_errors)
{
	char err[256];
	const char *full_no_image[] = {"a", "--full-copy", NULL};
	const char *initrd_no_kernel[] = {"a", "--initrd", "/x", NULL};
	const char *kernel_and_uefi[] = {"a", "--kernel", "/x", "--firmware", "uefi", NULL};
	const char *bad_memory[] = {"a", "--memory", "1.5G", NULL};
	const char *bad_disk[] = {"a", "--blank-disk", "100M", NULL};
	const char *bad_vcpus[] = {"a", "--vcpus", "two", NULL};
	const char *no_name[] = {NULL};

	CHECK(test_create_json(full_no_image, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "--image") != NULL);
	CHECK(test_create_json(initrd_no_kernel, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "--kernel") != NULL);
	CHECK(test_create_json(kernel_and_uefi, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "uefi") != NULL);
	CHECK(test_create_json(bad_memory, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "--memory '1.5G'") != NULL);
	CHECK(test_create_json(bad_disk, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "--blank-disk '100M'") != NULL);
	CHECK(test_create_json(bad_vcpus, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "--vcpus") != NULL);
	CHECK(test_create_json(no_name, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "NAME") != NULL);
}

TEST(vm_update_body)
{
	char err[256];
	const char *w1[] = {"a", "--no-autostart", "--memory", "1G", NULL};
	const char *w2[] = {"a", NULL};
	const char *w3[] = {"a", "--autostart", "--no-autostart", NULL};
	const char *w4[] = {"a", "--firmware", "bios", "--description", "", NULL};
	char *s;

	s = test_update_json(w1, err, sizeof(err));
	CHECK_STR(s, "{\"autostart\":false,\"memory_mib\":1024}");
	free(s);
	CHECK(test_update_json(w2, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "nothing to change") != NULL);
	CHECK(test_update_json(w3, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "either") != NULL);
	s = test_update_json(w4, err, sizeof(err));
	CHECK_STR(s, "{\"boot\":{\"firmware\":\"bios\"},\"description\":\"\"}");
	free(s);
}

static char *test_dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(j);
	return s;
}

TEST(nic_options)
{
	char err[256];
	const char *w1[] = {"a", "--nic", "nat1", "--nic", "iso,vlan=10,firewall=web,bandwidth=100", NULL};
	const char *w2[] = {"a", "--no-nics", NULL};
	const char *w3[] = {"a", "--nic", "iso,colour=red", NULL};
	const char *w4[] = {"a", "--nic", "iso", "--no-nics", NULL};
	char *s;

	s = test_create_json(w1, err, sizeof(err));
	CHECK_STR(s, "{\"name\":\"a\",\"nics\":[{\"network\":\"nat1\"},{\"bandwidth_mbit\":100,"
		     "\"firewall\":\"web\",\"network\":\"iso\",\"vlan\":10}]}");
	free(s);
	s = test_update_json(w2, err, sizeof(err));
	CHECK_STR(s, "{\"nics\":[]}");
	free(s);
	CHECK(test_update_json(w3, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "iso,colour=red") != NULL);
	CHECK(test_update_json(w4, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "contradict") != NULL);
}

TEST(network_bodies)
{
	static const struct cli_opt *const tables[] = {cli_global_opts, cli_network_create_opts, NULL};
	static const struct cli_opt *const fwt[] = {cli_global_opts, cli_firewall_opts, NULL};
	const char *w1[] = {"n1", "--type", "nat", "--subnet", "10.0.0.0/24", "--dhcp-range",
			    "10.0.0.10-10.0.0.20", "--mtu", "1400", NULL};
	const char *w2[] = {"n1", "--subnet", "10.0.0.0/24", NULL};
	const char *w3[] = {"n1", "--type", "nat", "--dhcp-range", "10.0.0.10", NULL};
	const char *w4[] = {"web", "--rule", "in,tcp,80,192.168.1.5/32,allow", "--rule",
			    ",,any,any,deny", "--default-outbound", "deny", NULL};
	struct cli_args a;
	char err[256];
	json_t *j = NULL;
	char *s;

	CHECK_EQ_INT(test_parse(tables, &a, err, sizeof(err), w1), 0);
	CHECK_EQ_INT(cli_network_create_body(&a, &j, err, sizeof(err)), 0);
	s = test_dump(j);
	CHECK_STR(s, "{\"dhcp_end\":\"10.0.0.20\",\"dhcp_start\":\"10.0.0.10\",\"mtu\":1400,"
		     "\"name\":\"n1\",\"subnet\":\"10.0.0.0/24\",\"type\":\"nat\"}");
	free(s);
	CHECK_EQ_INT(test_parse(tables, &a, err, sizeof(err), w2), 0);
	CHECK_EQ_INT(cli_network_create_body(&a, &j, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "--type") != NULL);
	CHECK_EQ_INT(test_parse(tables, &a, err, sizeof(err), w3), 0);
	CHECK_EQ_INT(cli_network_create_body(&a, &j, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "--dhcp-range") != NULL);
	CHECK_EQ_INT(test_parse(fwt, &a, err, sizeof(err), w4), 0);
	CHECK_EQ_INT(cli_firewall_body(&a, &j, err, sizeof(err)), 0);
	s = test_dump(j);
	CHECK_STR(s, "{\"default_outbound\":\"deny\",\"name\":\"web\",\"rules\":[{\"action\":"
		     "\"allow\",\"cidr\":\"192.168.1.5/32\",\"direction\":\"in\",\"ports\":\"80\","
		     "\"protocol\":\"tcp\"},{\"action\":\"deny\"}]}");
	free(s);
	CHECK_EQ_INT(cli_rule_parse("in,tcp,80", &j, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "DIRECTION,PROTOCOL") != NULL);
	CHECK_EQ_INT(cli_forward_parse("tcp:8080:web@1:80", &j, err, sizeof(err)), 0);
	s = test_dump(j);
	CHECK_STR(s, "{\"host_port\":8080,\"nic\":1,\"protocol\":\"tcp\",\"vm\":\"web\","
		     "\"vm_port\":80}");
	free(s);
	CHECK_EQ_INT(cli_forward_parse("udp:192.168.1.1:53:dns:5353", &j, err, sizeof(err)), 0);
	s = test_dump(j);
	CHECK(strstr(s, "\"host_address\":\"192.168.1.1\"") != NULL);
	free(s);
	CHECK_EQ_INT(cli_forward_parse("tcp:99999:web:80", &j, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "99999") != NULL);
	CHECK_EQ_INT(cli_forward_parse("tcp:web", &j, err, sizeof(err)), -EINVAL);
}

TEST(format_size)
{
	char b[32];
	struct {
		uint64_t v;
		const char *want;
	} cases[] = {
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{512 * MiB, "512 MiB"},
		{2 * GiB, "2.0 GiB"},
		{10 * GiB, "10.0 GiB"},
		{GiB + GiB / 2, "1.5 GiB"},
		{100 * GiB, "100 GiB"},
		{GiB - 1, "1.0 GiB"},
		{1023 * MiB, "1023 MiB"},
		{(uint64_t)(99.97 * (double)GiB), "100 GiB"},
		{1024 * GiB, "1.0 TiB"},
		{UINT64_MAX, "16.0 EiB"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cli_format_size(cases[i].v, b, sizeof(b));
		CHECK_STR(b, cases[i].want);
	}
}

/* Render a table into a string (caller frees). */
static char *test_table_text(const struct cli_table *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	cli_table_print(t, f);
	fclose(f);
	return buf;
}

TEST(table_alignment)
{
	static const char *const hdr[] = {"NAME", ">SIZE", "NOTE"};
	const char *r1[] = {"a", "512 MiB", "x"};
	const char *r2[] = {"longer-name", "2.0 GiB", NULL};
	const char *r3[] = {"ü", "1 B", "two\nlines"};
	struct cli_table *t = NULL;

	CHECK_EQ_INT(cli_table_new(3, hdr, &t), 0);
	if (!t)
		return;
	CHECK_EQ_INT(cli_table_rows(t), 0);
	CHECK_EQ_INT(cli_table_add_row(t, r1), 0);
	CHECK_EQ_INT(cli_table_add_row(t, r2), 0);
	CHECK_EQ_INT(cli_table_add_row(t, r3), 0);
	CHECK_EQ_INT(cli_table_rows(t), 3);
	char *s = test_table_text(t);
	CHECK_STR(s, "NAME            SIZE  NOTE\n"
		     "a            512 MiB  x\n"
		     "longer-name  2.0 GiB  -\n"
		     "ü                1 B  two lines\n");
	free(s);
	cli_table_free(t);
	cli_table_free(NULL);
}

TEST(table_many_rows)
{
	static const char *const hdr[] = {"N"};
	struct cli_table *t = NULL;
	char cell[16];

	CHECK_EQ_INT(cli_table_new(1, hdr, &t), 0);
	for (int i = 0; i < 100; i++) {
		const char *row[] = {cell};
		snprintf(cell, sizeof(cell), "%d", i);
		CHECK_EQ_INT(cli_table_add_row(t, row), 0);
	}
	CHECK_EQ_INT(cli_table_rows(t), 100);
	char *s = test_table_text(t);
	CHECK(s && strncmp(s, "N \n", 3) != 0 && strstr(s, "\n99\n") != NULL);
	free(s);
	cli_table_free(t);
}

TEST(vm_table_from_json)
{
	json_t *vms = json_loads(
		"[{\"name\":\"web-1\",\"state\":\"running\",\"vcpus\":2,\"memory_mib\":512,\"autostart\":true,"
		"\"pid\":4242,\"project\":\"team\",\"priority\":\"P0\","
		"\"disks\":[{\"index\":0,\"image\":\"debian\",\"size_bytes\":2147483648},"
		"{\"index\":1,\"size_bytes\":1073741824}]},"
		"{\"name\":\"db\",\"state\":\"stopped\",\"vcpus\":16,\"memory_mib\":16384,\"autostart\":false,"
		"\"pid\":null,\"disks\":[]}]",
		0, NULL);
	struct cli_table *t = NULL;

	CHECK(vms != NULL);
	CHECK_EQ_INT(cli_vm_disk_bytes(json_array_get(vms, 0)), 3 * GiB);
	CHECK_EQ_INT(cli_vm_table(vms, &t), 0);
	char *s = t ? test_table_text(t) : NULL;
	CHECK_STR(s, "NAME   STATE    VCPUS    MEMORY     DISK  IMAGE   PROJECT  PRIO  AUTOSTART  PID\n"
		     "web-1  running      2   512 MiB  3.0 GiB  debian  team     P0    yes        4242\n"
		     "db     stopped     16  16.0 GiB        -  -       -        -     no         -\n");
	free(s);
	cli_table_free(t);
	json_decref(vms);
}

TEST(vm_project_and_priority)
{
	char err[256];
	const char *w1[] = {"a", "--project", "team", "--priority", "P0", NULL};
	const char *w2[] = {"a", "--priority", "P4", NULL};
	char *s = test_create_json(w1, err, sizeof(err));
	CHECK_STR(s, "{\"name\":\"a\",\"priority\":\"P0\",\"project\":\"team\"}");
	free(s);
	s = test_update_json(w2, err, sizeof(err));
	CHECK_STR(s, "{\"priority\":\"P4\"}");
	free(s);
}

static const struct cli_opt *const test_project_tables[] = {cli_global_opts, cli_project_opts, NULL};

static char *test_project_json(const char **words, bool create, char *err, size_t errlen)
{
	struct cli_args a;
	json_t *body = NULL;
	char *s = NULL;

	err[0] = '\0';
	if (test_parse(test_project_tables, &a, err, errlen, words) < 0)
		return NULL;
	if (cli_project_body(&a, create, &body, err, errlen) < 0)
		return NULL;
	s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	return s;
}

TEST(project_body)
{
	char err[256];
	const char *w1[] = {"team", "--description", "the team", "--max-vms", "10", "--max-vcpus", "16",
			    "--max-memory", "32G", "--max-disk", "1T", NULL};
	const char *w2[] = {"team", NULL};
	const char *w3[] = {"team", "--max-vcpus", "none", "--max-memory", "unlimited", NULL};
	const char *w4[] = {"team", "--max-vms", "ten", NULL};
	const char *w5[] = {"team", "--max-memory", "lots", NULL};
	char *s = test_project_json(w1, true, err, sizeof(err));
	CHECK_STR(s, "{\"description\":\"the team\",\"name\":\"team\",\"quotas\":{\"disk_gib\":1024,"
		     "\"memory_mib\":32768,\"vcpus\":16,\"vms\":10}}");
	free(s);
	s = test_project_json(w2, true, err, sizeof(err));
	CHECK_STR(s, "{\"name\":\"team\"}");
	free(s);
	CHECK(test_project_json(w2, false, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "nothing to change") != NULL);
	s = test_project_json(w3, false, err, sizeof(err));
	CHECK_STR(s, "{\"quotas\":{\"memory_mib\":null,\"vcpus\":null}}");
	free(s);
	CHECK(test_project_json(w4, true, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "--max-vms 'ten'") != NULL);
	CHECK(test_project_json(w5, false, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "--max-memory") != NULL);
}

TEST(project_and_capacity_tables)
{
	json_t *projects = json_loads(
		"[{\"name\":\"default\",\"description\":\"\",\"quotas\":{\"vms\":null,\"vcpus\":null,"
		"\"memory_mib\":null,\"disk_gib\":null},\"usage\":{\"vms\":1,\"vcpus\":2,\"memory_mib\":512,"
		"\"disk_gib\":0}},"
		"{\"name\":\"team\",\"description\":\"web\",\"quotas\":{\"vms\":4,\"vcpus\":8,"
		"\"memory_mib\":8192,\"disk_gib\":100},\"usage\":{\"vms\":2,\"vcpus\":3,\"memory_mib\":1024,"
		"\"disk_gib\":20}}]", 0, NULL);
	json_t *cap = json_loads(
		"{\"vcpus\":{\"capacity\":2,\"ratio\":4.0,\"allocatable\":8,\"used\":3,\"free\":5},"
		"\"memory_mib\":{\"capacity\":1024,\"ratio\":1.5,\"allocatable\":1536,\"used\":512,"
		"\"free\":1024},\"disk_gib\":{\"capacity\":100,\"ratio\":1,\"allocatable\":100,"
		"\"used\":20,\"free\":80}}", 0, NULL);
	struct cli_table *t = NULL;
	CHECK_EQ_INT(cli_project_table(projects, &t), 0);
	char *s = t ? test_table_text(t) : NULL;
	CHECK_STR(s, "NAME     VMS  VCPUS           MEMORY              DISK  DESCRIPTION\n"
		     "default  1/-    2/-        512 MiB/-             0 B/-  -\n"
		     "team     2/4    3/8  1.0 GiB/8.0 GiB  20.0 GiB/100 GiB  web\n");
	free(s);
	cli_table_free(t);
	t = NULL;
	CHECK_EQ_INT(cli_capacity_table(cap, &t), 0);
	s = t ? test_table_text(t) : NULL;
	CHECK_STR(s, "RESOURCE  CAPACITY  RATIO  ALLOCATABLE      USED      FREE\n"
		     "vcpus            2    4:1            8         3         5\n"
		     "memory     1.0 GiB  1.5:1      1.5 GiB   512 MiB   1.0 GiB\n"
		     "disk       100 GiB    1:1      100 GiB  20.0 GiB  80.0 GiB\n");
	free(s);
	cli_table_free(t);
	json_decref(projects);
	json_decref(cap);
}

TEST(image_and_task_tables)
{
	json_t *images = json_loads(
		"[{\"name\":\"debian\",\"state\":\"ready\",\"format\":\"qcow2\",\"source_format\":\"raw\","
		"\"size_bytes\":196608,\"virtual_size_bytes\":67108864,\"used_by\":[\"a\",\"b\"]}]",
		0, NULL);
	json_t *tasks = json_loads(
		"[{\"id\":\"t-1\",\"kind\":\"image_import\",\"target\":\"debian\",\"state\":\"failed\","
		"\"progress\":42,\"created_at\":\"2026-11-26T07:00:00Z\",\"error\":\"qemu-img failed\"}]",
		0, NULL);
	struct cli_table *t = NULL;
	char *s;

	CHECK_EQ_INT(cli_image_table(images, &t), 0);
	s = t ? test_table_text(t) : NULL;
	CHECK_STR(s, "NAME    STATE  FORMAT  SOURCE     SIZE   VIRTUAL  USED-BY\n"
		     "debian  ready  qcow2   raw     192 KiB  64.0 MiB  a,b\n");
	free(s);
	cli_table_free(t);
	t = NULL;
	CHECK_EQ_INT(cli_task_table(tasks, &t), 0);
	s = t ? test_table_text(t) : NULL;
	CHECK_STR(s, "ID   KIND          TARGET  STATE   PROGRESS  CREATED               ERROR\n"
		     "t-1  image_import  debian  failed       42%  2026-11-26T07:00:00Z  qemu-img failed\n");
	free(s);
	cli_table_free(t);
	json_decref(images);
	json_decref(tasks);
}

TEST(kv_and_progress)
{
	char *buf = NULL, line[256];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *keys[] = {"name", "restart policy"};
	const char *vals[] = {"web-1", NULL};

	CHECK(f != NULL);
	if (!f)
		return;
	cli_kv_print(f, keys, vals, 2);
	fclose(f);
	CHECK_STR(buf, "name:           web-1\nrestart policy: -\n");
	free(buf);

	cli_progress_format(false, "t-9", "image_import debian", 42, line, sizeof(line));
	CHECK_STR(line, "task t-9: 42%\n");
	cli_progress_format(false, "t-9", NULL, 250, line, sizeof(line));
	CHECK_STR(line, "task t-9: 100%\n");
	cli_progress_format(true, "t-9", "image_import debian", 50, line, sizeof(line));
	CHECK_STR(line, "\r[###############               ]  50%  image_import debian\033[K");
}

TEST(path_escaping)
{
	char *p = NULL;

	CHECK_EQ_INT(cli_path(&p, "/vms/%s/console", "web-1"), 0);
	CHECK_STR(p, "/vms/web-1/console");
	free(p);
	CHECK_EQ_INT(cli_path(&p, "/vms/%s", "a/b c?d"), 0);
	CHECK_STR(p, "/vms/a%2Fb%20c%3Fd");
	free(p);
	CHECK_EQ_INT(cli_path(&p, "/images/%s?force=true", ".."), 0);
	CHECK_STR(p, "/images/%2E%2E?force=true");
	free(p);
}

TEST(error_from_body)
{
	char b[256];

	cli_error_from_body(404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no VM named 'x'\"}}", b,
			    sizeof(b));
	CHECK_STR(b, "no VM named 'x'");
	cli_error_from_body(500, "<html>oops</html>", b, sizeof(b));
	CHECK(strstr(b, "HTTP 500") != NULL);
	cli_error_from_body(401, "", b, sizeof(b));
	CHECK(strstr(b, "--token") != NULL);
	cli_error_from_body(502, NULL, b, sizeof(b));
	CHECK(strstr(b, "HTTP 502") != NULL);
}

/* cli_new with the given words and a clean environment. */
static int test_cli_new(const char **words, struct cli **out)
{
	struct cli_args a;
	char err[256];
	const struct cli_opt *const tables[] = {cli_global_opts, NULL};

	if (test_parse(tables, &a, err, sizeof(err), words) < 0)
		return -100;
	return cli_new(&a, out);
}

TEST(endpoint_selection)
{
	struct cli *cli = NULL;
	const char *none[] = {NULL};
	const char *sock[] = {"--socket", "/tmp/x.sock", NULL};
	const char *url[] = {"--url", "http://10.0.0.1:8006/", "--token", "abc", "--json", NULL};
	const char *both[] = {"--socket", "/s", "--url", "http://a", NULL};
	const char *bad_url[] = {"--url", "10.0.0.1:8006", NULL};
	char ep[256];

	unsetenv("VESSEL_URL");
	unsetenv("VESSEL_SOCKET");
	unsetenv("VESSEL_TOKEN");

	CHECK_EQ_INT(test_cli_new(sock, &cli), 0);
	CHECK_STR(cli->socket_path, "/tmp/x.sock");
	CHECK_STR(cli_endpoint_name(cli, ep, sizeof(ep)), "unix socket /tmp/x.sock");
	CHECK(!cli->json);
	cli_free(cli);

	CHECK_EQ_INT(test_cli_new(url, &cli), 0);
	CHECK(cli->socket_path == NULL);
	CHECK_STR(cli->base_url, "http://10.0.0.1:8006");
	CHECK_STR(cli->token, "abc");
	CHECK(cli->json);
	cli_free(cli);

	CHECK_EQ_INT(test_cli_new(both, &cli), -EINVAL);
	CHECK(strstr(cli->err, "either") != NULL);
	cli_free(cli);
	CHECK_EQ_INT(test_cli_new(bad_url, &cli), -EINVAL);
	CHECK(strstr(cli->err, "http://") != NULL);
	cli_free(cli);

	setenv("VESSEL_SOCKET", "/tmp/env.sock", 1);
	CHECK_EQ_INT(test_cli_new(none, &cli), 0);
	CHECK_STR(cli->socket_path, "/tmp/env.sock");
	cli_free(cli);
	setenv("VESSEL_URL", "http://127.0.0.1:9", 1);
	setenv("VESSEL_TOKEN", "tok", 1);
	CHECK_EQ_INT(test_cli_new(none, &cli), 0);
	CHECK(cli->socket_path == NULL);
	CHECK_STR(cli->base_url, "http://127.0.0.1:9");
	CHECK_STR(cli->token, "tok");
	cli_free(cli);
	/* Flags beat the environment. */
	CHECK_EQ_INT(test_cli_new(sock, &cli), 0);
	CHECK_STR(cli->socket_path, "/tmp/x.sock");
	cli_free(cli);
	unsetenv("VESSEL_URL");
	unsetenv("VESSEL_SOCKET");
	unsetenv("VESSEL_TOKEN");
	cli_free(NULL);
}

TEST(token_file)
{
	struct cli *cli = NULL;
	char tmpl[] = "/tmp/vessel-cli-token-XXXXXX";
	int fd = mkstemp(tmpl);

	if (fd < 0)
		SKIP("cannot create a temporary file");
	CHECK_EQ_INT(util_write_all(fd, "  s3cret \n second line\n", 23), 0);
	close(fd);
	const char *w[] = {"--url", "http://127.0.0.1:1", "--token-file", tmpl, NULL};
	CHECK_EQ_INT(test_cli_new(w, &cli), 0);
	CHECK_STR(cli->token, "s3cret");
	cli_free(cli);
	unlink(tmpl);
	CHECK_EQ_INT(test_cli_new(w, &cli), -ENOENT);
	CHECK(strstr(cli->err, tmpl) != NULL);
	cli_free(cli);
}

TEST(url_split)
{
	char *h, *p, *x;

	CHECK_EQ_INT(cli_url_split("http://127.0.0.1:8006", &h, &p, &x), 0);
	CHECK_STR(h, "127.0.0.1");
	CHECK_STR(p, "8006");
	CHECK_STR(x, "");
	free(h);
	free(p);
	free(x);
	CHECK_EQ_INT(cli_url_split("http://vm.example/prefix/x", &h, &p, &x), 0);
	CHECK_STR(h, "vm.example");
	CHECK_STR(p, "80");
	CHECK_STR(x, "/prefix/x");
	free(h);
	free(p);
	free(x);
	CHECK_EQ_INT(cli_url_split("http://[::1]:9000/", &h, &p, &x), 0);
	CHECK_STR(h, "::1");
	CHECK_STR(p, "9000");
	CHECK_STR(x, "/");
	free(h);
	free(p);
	free(x);
	CHECK_EQ_INT(cli_url_split("https://a:1", &h, &p, &x), -EPROTONOSUPPORT);
	CHECK_EQ_INT(cli_url_split("http://[::1", &h, &p, &x), -EINVAL);
	CHECK_EQ_INT(cli_url_split("http://a:port", &h, &p, &x), -EINVAL);
	CHECK_EQ_INT(cli_url_split("http://:80", &h, &p, &x), -EINVAL);
	CHECK_EQ_INT(cli_url_split("http://[::1]x", &h, &p, &x), -EINVAL);
	CHECK(h == NULL && p == NULL && x == NULL);
}

TEST(http_header_find)
{
	const char *head = "HTTP/1.1 101 Switching Protocols\r\n"
			   "upgrade:  websocket \r\n"
			   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzwzhZRbK+xOo=\r\n"
			   "\r\n"
			   "\r\nX-In-Body: 1\r\n";
	char v[64];

	CHECK(cli_http_header_find(head, "Upgrade", v, sizeof(v)));
	CHECK_STR(v, "websocket");
	CHECK(cli_http_header_find(head, "sec-websocket-accept", v, sizeof(v)));
	CHECK_STR(v, "s3pPLMBiTxaQ9kYGzwzhZRbK+xOo=");
	CHECK(!cli_http_header_find(head, "Sec-WebSocket", v, sizeof(v)));
	CHECK(!cli_http_header_find(head, "X-In-Body", v, sizeof(v)));
	CHECK(!cli_http_header_find(head, "HTTP/1.1 101", v, sizeof(v)));
}

/* A fake vesseld on a Unix socket: answers each connection with the next
 * canned response and records the request it got. */
struct test_server {
	int lfd;
	char path[108];
	const char *const *responses;
	size_t n;
	char requests[4][4096];
	pthread_t thread;
};

static void *test_server_run(void *opaque)
{
	struct test_server *s = opaque;

	for (size_t i = 0; i < s->n; i++) {
		int fd = accept(s->lfd, NULL, NULL);
		size_t have = 0;
		if (fd < 0)
			return NULL;
		/* Read the head and a Content-Length body. */
		for (;;) {
			ssize_t r = read(fd, s->requests[i] + have, sizeof(s->requests[i]) - 1 - have);
			if (r <= 0)
				break;
			have += (size_t)r;
			s->requests[i][have] = '\0';
			char *end = strstr(s->requests[i], "\r\n\r\n");
			if (!end)
				continue;
			char *cl = strcasestr(s->requests[i], "Content-Length:");
			size_t body = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
			if (have >= (size_t)(end + 4 - s->requests[i]) + body)
				break;
		}
		util_write_all(fd, s->responses[i], strlen(s->responses[i]));
		close(fd);
	}
	return NULL;
}

static int test_server_start(struct test_server *s, const char *const *responses, size_t n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(s, 0, sizeof(*s));
	s->responses = responses;
	s->n = n;
	snprintf(s->path, sizeof(s->path), "/tmp/vessel-cli-test-%d.sock", (int)getpid());
	unlink(s->path);
	strcpy(sa.sun_path, s->path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->lfd, 4) < 0)
		return -errno;
	return pthread_create(&s->thread, NULL, test_server_run, s) == 0 ? 0 : -EAGAIN;
}

static void test_server_stop(struct test_server *s)
{
	pthread_join(s->thread, NULL);
	close(s->lfd);
	unlink(s->path);
}

TEST(http_against_fake_daemon)
{
	static const char *const responses[] = {
		"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n"
		"\r\n"
		"{\"error\": {\"code\": \"not_found\", \"message\": \"there is no VM 'x'\"}}\n",
		"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConnection: close\r\n"
		"\r\n{\"vm\": {\"name\": \"a\"}}",
		"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nX-Console-Start: 1000\r\n"
		"x-console-next:  1234 \r\nConnection: close\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
		"\r\n<html>",
	};
	struct test_server srv;
	struct cli *cli = NULL;
	struct cli_response resp = {0};
	char err[256];
	struct cli_args a;

	if (test_server_start(&srv, responses, ARRAY_SIZE(responses)) < 0)
		SKIP("cannot listen on a Unix socket in /tmp");
	const char *w[] = {"--socket", srv.path, "--token", "tok", NULL};
	const struct cli_opt *const tables[] = {cli_global_opts, NULL};
	CHECK_EQ_INT(test_parse(tables, &a, err, sizeof(err), w), 0);
	CHECK_EQ_INT(cli_new(&a, &cli), 0);

	/* 1: an API error becomes -ENOENT and the API's message. */
	CHECK_EQ_INT(cli_api(cli, "GET", "/vms/x", NULL, &resp), -ENOENT);
	CHECK_STR(cli->err, "there is no VM 'x'");
	CHECK_EQ_INT(resp.status, 404);
	cli_response_clear(&resp);

	/* 2: a JSON body is sent with its type; 201 is success. */
	json_t *body = json_pack("{s:s}", "name", "a");
	CHECK_EQ_INT(cli_api(cli, "POST", "/vms", body, &resp), 0);
	CHECK_STR(cli_json_str(json_object_get(resp.json, "vm"), "name"), "a");
	json_decref(body);
	cli_response_clear(&resp);

	/* 3: raw bytes and the console offsets from the headers. */
	CHECK_EQ_INT(cli_http_request(cli, "GET", "/vms/a/console?since=0", NULL, NULL, 0, &resp), 0);
	CHECK_EQ_INT(resp.status, 200);
	CHECK_EQ_INT(resp.len, 5);
	CHECK_STR(resp.body, "hello");
	CHECK(resp.has_console_next);
	CHECK_EQ_INT(resp.console_next, 1234);
	CHECK_EQ_INT(resp.console_start, 1000);
	CHECK(resp.json == NULL);
	cli_response_clear(&resp);

	/* 4: a 200 that is not JSON is not vesseld. */
	CHECK_EQ_INT(cli_api(cli, "GET", "/host", NULL, &resp), -EPROTO);
	CHECK(strstr(cli->err, "not JSON") != NULL);
	cli_response_clear(&resp);
	test_server_stop(&srv);

	CHECK(strncmp(srv.requests[0], "GET /api/v1/vms/x HTTP/1.1\r\n", 28) == 0);
	CHECK(strcasestr(srv.requests[0], "\r\nAuthorization: Bearer tok\r\n") != NULL);
	CHECK(strncmp(srv.requests[1], "POST /api/v1/vms HTTP/1.1\r\n", 27) == 0);
	CHECK(strcasestr(srv.requests[1], "\r\nContent-Type: application/json\r\n") != NULL);
	CHECK(strstr(srv.requests[1], "\r\n\r\n{\"name\":\"a\"}") != NULL);
	CHECK(strncmp(srv.requests[2], "GET /api/v1/vms/a/console?since=0 HTTP/1.1\r\n", 44) == 0);

	/* 5: nobody listening: the sentence says where and asks if it runs. */
	CHECK_EQ_INT(cli_api(cli, "GET", "/host", NULL, &resp), -ECONNREFUSED);
	CHECK(strstr(cli->err, "cannot reach vesseld at unix socket /tmp/vessel-cli-test-") != NULL);
	CHECK(strstr(cli->err, "; is it running?") != NULL);
	cli_response_clear(&resp);
	cli_free(cli);
}

/* `token create` and `audit list` build their requests without touching
 * the network: the body and the query string they send. */
TEST(token_create_body)
{
	static const struct cli_opt *const tables[] = {cli_global_opts, cli_token_create_opts, NULL};
	struct cli_args a;
	char err[256];
	json_t *body = NULL;
	const char *w1[] = {"ci", "--role", "operator", "--project", "team-a", "--expires", "7d", NULL};
	CHECK_EQ_INT(test_parse(tables, &a, err, sizeof(err), w1), 0);
	CHECK_EQ_INT(cli_token_create_body(&a, &body, err, sizeof(err)), 0);
	char *s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(s, "{\"expires\":\"7d\",\"name\":\"ci\",\"project\":\"team-a\",\"role\":\"operator\"}");
	free(s);
	json_decref(body);
	const char *w2[] = {"ci", NULL};
	CHECK_EQ_INT(test_parse(tables, &a, err, sizeof(err), w2), 0);
	CHECK_EQ_INT(cli_token_create_body(&a, &body, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "--role") != NULL);
}

TEST(audit_query)
{
	static const struct cli_opt *const tables[] = {cli_global_opts, cli_audit_list_opts, NULL};
	struct cli_args a;
	char err[256], *q = NULL;
	const char *w0[] = {NULL};
	CHECK_EQ_INT(test_parse(tables, &a, err, sizeof(err), w0), 0);
	CHECK_EQ_INT(cli_audit_query(&a, 0, &q), 0);
	CHECK_STR(q, "");
	free(q);
	/* 2026-11-26T10:00:00Z minus 1h; --token stays the bearer token */
	const char *w1[] = {"--since", "1h", "--until", "2026-11-27", "--token-id", "abc", "--method",
			    "POST", "--path", "/api/v1/vms", "--result", "4xx", "--limit", "5",
			    "--token", "secret", NULL};
	CHECK_EQ_INT(test_parse(tables, &a, err, sizeof(err), w1), 0);
	CHECK_EQ_INT(cli_audit_query(&a, 1795687200, &q), 0);
	CHECK_STR(q, "?since=2026-11-26T09%3A00%3A00Z&until=2026-11-27&token=abc&method=POST"
		     "&path=%2Fapi%2Fv1%2Fvms&result=4xx&limit=5");
	CHECK(q && strstr(q, "secret") == NULL);
	free(q);
}

HARNESS_MAIN
