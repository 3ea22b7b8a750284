/* Unit tests for src/daemon/engine/qemu_args.c and qemu_host.c: the QEMU
 * command line against golden files (tests/data/engine/NAME.args, one
 * argument per line; ENGINE_TESTDATA names the directory), comma escaping,
 * spec validation, accelerator detection and version parsing.
 * Set ENGINE_GOLDEN_UPDATE=1 to rewrite the golden files after a deliberate
 * change, then review the diff before committing it. */
#include "daemon/engine/qemu_args.h"
#include "daemon/engine/qemu_host.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static const char UUID[] = "6f1c2a3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b";

static void spec_init(struct engine_vm_spec *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "web-1");
	snprintf(s->uuid, sizeof(s->uuid), "%s", UUID);
	s->vcpus = 2;
	s->memory_mib = 1024;
	s->firmware = ENGINE_FW_BIOS;
	snprintf(s->run_dir, sizeof(s->run_dir), "/run/vessel/vms/web-1");
}

static void host_init(struct engine_host_info *h, bool kvm)
{
	memset(h, 0, sizeof(*h));
	h->kvm = kvm;
	snprintf(h->accel, sizeof(h->accel), "%s", kvm ? "kvm" : "tcg");
}

/* Compare argv with the golden file, line by line. */
static void check_golden(const char *name, const struct engine_vm_spec *spec,
			 const struct engine_host_info *host)
{
	const char *dir = getenv("ENGINE_TESTDATA");
	struct qemu_args *a = NULL;
	char path[4096], *err = NULL, *want = NULL, *save = NULL, *line;
	size_t i = 0;
	FILE *f;
	long sz;

	CHECK(dir != NULL);
	if (!dir)
		return;
	CHECK_EQ_INT(qemu_args_build("qemu-system-x86_64", spec, host, &a, &err), 0);
	if (!a) {
		fprintf(stderr, "  build failed: %s\n", err ? err : "?");
		free(err);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s.args", dir, name);
	if (getenv("ENGINE_GOLDEN_UPDATE")) {
		f = fopen(path, "w");
		CHECK(f != NULL);
		for (size_t k = 0; f && k < a->argc; k++)
			fprintf(f, "%s\n", a->argv[k]);
		if (f)
			fclose(f);
	}
	f = fopen(path, "r");
	CHECK(f != NULL);
	if (!f)
		goto out;
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	rewind(f);
	want = calloc(1, (size_t)sz + 1);
	CHECK_EQ_INT(fread(want, 1, (size_t)sz, f), sz);
	fclose(f);
	for (line = strtok_r(want, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
		if (i >= a->argc) {
			fprintf(stderr, "  %s: golden line %zu '%s' missing from argv\n", name,
				i + 1, line);
			harness_case_failed = 1;
			break;
		}
		if (strcmp(line, a->argv[i]) != 0) {
			fprintf(stderr, "  %s: argument %zu is '%s', golden file says '%s'\n", name,
				i, a->argv[i], line);
			harness_case_failed = 1;
		}
	}
	if (i < a->argc) {
		fprintf(stderr, "  %s: argv has extra argument '%s'\n", name, a->argv[i]);
		harness_case_failed = 1;
	}
	CHECK(a->argv[a->argc] == NULL);
out:
	free(want);
	qemu_args_free(a);
}

TEST(escape)
{
	char *s;

	s = qemu_args_escape("plain");
	CHECK_STR(s, "plain");
	free(s);
	s = qemu_args_escape("a,b");
	CHECK_STR(s, "a,,b");
	free(s);
	s = qemu_args_escape(",,x,");
	CHECK_STR(s, ",,,,x,,");
	free(s);
	s = qemu_args_escape("");
	CHECK_STR(s, "");
	free(s);
}

TEST(golden_bios_tcg)
{
	struct engine_vm_spec s;
	struct engine_host_info h;

	spec_init(&s);
	host_init(&h, false);
	check_golden("bios-tcg", &s, &h);
}

TEST(golden_uefi_kvm_disks)
{
	struct engine_vm_spec s;
	struct engine_host_info h;

	spec_init(&s);
	host_init(&h, true);
	s.firmware = ENGINE_FW_UEFI;
	s.vcpus = 4;
	s.memory_mib = 4096;
	s.nr_disks = 2;
	snprintf(s.disks[0].path, sizeof(s.disks[0].path), "/var/lib/vessel/disks/web-1.qcow2");
	snprintf(s.disks[0].format, sizeof(s.disks[0].format), "qcow2");
	snprintf(s.disks[1].path, sizeof(s.disks[1].path), "/var/lib/vessel/iso/seed.img");
	snprintf(s.disks[1].format, sizeof(s.disks[1].format), "raw");
	s.disks[1].readonly = true;
	check_golden("uefi-kvm-disks", &s, &h);
}

/* Two NICs: taps arrive as fds 3 and 4, the second with a jumbo MTU. */
TEST(golden_nics)
{
	struct engine_vm_spec s;
	struct engine_host_info h;
	struct qemu_args *a = NULL;
	char *err = NULL;

	spec_init(&s);
	host_init(&h, false);
	s.nr_nics = 2;
	snprintf(s.nics[0].mac, sizeof(s.nics[0].mac), "52:54:00:12:34:56");
	s.nics[0].fd = 17;
	snprintf(s.nics[1].mac, sizeof(s.nics[1].mac), "52:54:00:ab:cd:ef");
	s.nics[1].fd = 18;
	s.nics[1].mtu = 9000;
	check_golden("nics", &s, &h);
	snprintf(s.nics[1].mac, sizeof(s.nics[1].mac), "52:54:00:ab:cd");
	CHECK_EQ_INT(qemu_args_build("qemu-system-x86_64", &s, &h, &a, &err), -EINVAL);
	CHECK(err && strstr(err, "NIC 1 has MAC"));
	free(err);
	qemu_args_free(a);
}

TEST(golden_kernel)
{
	struct engine_vm_spec s;
	struct engine_host_info h;

	spec_init(&s);
	host_init(&h, false);
	s.firmware = ENGINE_FW_KERNEL;
	s.vcpus = 1;
	s.memory_mib = 256;
	snprintf(s.kernel, sizeof(s.kernel), "/var/lib/vessel/boot/vmlinuz");
	snprintf(s.initrd, sizeof(s.initrd), "/var/lib/vessel/boot/initrd.img");
	/* -append takes the string whole: its commas stay single. */
	snprintf(s.cmdline, sizeof(s.cmdline), "console=ttyS0,115200 quiet");
	check_golden("kernel", &s, &h);
}

/* Commas in the VM name, the run directory and a disk path are doubled
 * wherever they sit inside a comma-separated option value, and left alone
 * in options that take a whole file name (-pidfile). */
TEST(golden_commas)
{
	struct engine_vm_spec s;
	struct engine_host_info h;

	spec_init(&s);
	host_init(&h, false);
	snprintf(s.name, sizeof(s.name), "a,b");
	snprintf(s.run_dir, sizeof(s.run_dir), "/run/vessel/x,y");
	s.nr_disks = 1;
	snprintf(s.disks[0].path, sizeof(s.disks[0].path), "/data/disk,file=/etc/shadow.qcow2");
	snprintf(s.disks[0].format, sizeof(s.disks[0].format), "qcow2");
	check_golden("commas", &s, &h);
}

TEST(bad_specs)
{
	struct engine_vm_spec s;
	struct engine_host_info h;
	struct qemu_args *a = NULL;
	char *err = NULL;

	host_init(&h, false);

	spec_init(&s);
	s.uuid[3] = 'z';
	CHECK_EQ_INT(qemu_args_build("q", &s, &h, &a, &err), -EINVAL);
	CHECK(err && strstr(err, "uuid"));
	free(err);
	err = NULL;

	spec_init(&s);
	s.vcpus = 0;
	CHECK_EQ_INT(qemu_args_build("q", &s, &h, &a, &err), -EINVAL);
	CHECK(err && strstr(err, "vCPUs"));
	free(err);
	err = NULL;

	spec_init(&s);
	s.memory_mib = 8;
	CHECK_EQ_INT(qemu_args_build("q", &s, &h, &a, &err), -EINVAL);
	free(err);
	err = NULL;

	spec_init(&s);
	s.firmware = ENGINE_FW_KERNEL;
	CHECK_EQ_INT(qemu_args_build("q", &s, &h, &a, &err), -EINVAL);
	CHECK(err && strstr(err, "kernel"));
	free(err);
	err = NULL;

	spec_init(&s);
	s.nr_disks = 1;
	snprintf(s.disks[0].path, sizeof(s.disks[0].path), "/x.vmdk");
	snprintf(s.disks[0].format, sizeof(s.disks[0].format), "vmdk");
	CHECK_EQ_INT(qemu_args_build("q", &s, &h, &a, &err), -EINVAL);
	CHECK(err && strstr(err, "vmdk"));
	free(err);
	err = NULL;

	/* sun_path holds 108 bytes: a long run_dir must be refused up front,
	 * not fail later inside QEMU. */
	spec_init(&s);
	memset(s.run_dir, 'r', 100);
	s.run_dir[0] = '/';
	s.run_dir[100] = '\0';
	CHECK_EQ_INT(qemu_args_build("q", &s, &h, &a, &err), -ENAMETOOLONG);
	CHECK(err && strstr(err, "too long"));
	free(err);
	err = NULL;

	spec_init(&s);
	snprintf(s.run_dir, sizeof(s.run_dir), "relative/dir");
	CHECK_EQ_INT(qemu_args_build("q", &s, &h, &a, &err), -EINVAL);
	free(err);
	CHECK(a == NULL);
}

TEST(detect_accel)
{
	char root[] = "/tmp/vessel-test-host-XXXXXX", dev[128], mods[128], path[256];
	struct engine_host_info h;
	int fd;

	CHECK(mkdtemp(root) != NULL);
	snprintf(dev, sizeof(dev), "%s/kvm", root);
	snprintf(mods, sizeof(mods), "%s/module", root);
	CHECK_EQ_INT(mkdir(mods, 0700), 0);

	/* No device node at all: TCG, and the warning says why. */
	qemu_host_detect_accel(dev, mods, &h);
	CHECK(!h.kvm);
	CHECK_STR(h.accel, "tcg");
	CHECK(strstr(h.warning, "cannot be opened") != NULL);

	/* A device but only the generic kvm module: still TCG. */
	fd = open(dev, O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/kvm", mods);
	CHECK_EQ_INT(mkdir(path, 0700), 0);
	qemu_host_detect_accel(dev, mods, &h);
	CHECK(!h.kvm);
	CHECK_STR(h.accel, "tcg");
	CHECK(strstr(h.warning, "kvm_intel") != NULL);

	/* kvm_amd loaded and the device usable: hardware KVM, no warning. */
	snprintf(path, sizeof(path), "%s/kvm_amd", mods);
	CHECK_EQ_INT(mkdir(path, 0700), 0);
	qemu_host_detect_accel(dev, mods, &h);
	CHECK(h.kvm);
	CHECK_STR(h.accel, "kvm");
	CHECK_STR(h.warning, "");

	rmdir(path);
	snprintf(path, sizeof(path), "%s/kvm", mods);
	rmdir(path);
	rmdir(mods);
	unlink(dev);
	rmdir(root);
}

TEST(version_parse)
{
	char v[64];

	CHECK_EQ_INT(qemu_host_version_parse("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)\n"
					     "Copyright (c) 2003-2022 Fabrice Bellard\n",
					     v, sizeof(v)), 0);
	CHECK_STR(v, "7.2.22");
	CHECK_EQ_INT(qemu_host_version_parse("QEMU emulator version 8.0.0\n", v, sizeof(v)), 0);
	CHECK_STR(v, "8.0.0");
	CHECK_EQ_INT(qemu_host_version_parse("bash: qemu: not found", v, sizeof(v)), -EINVAL);
	CHECK_EQ_INT(qemu_host_version_parse("QEMU emulator version x", v, sizeof(v)), -EINVAL);
	CHECK_EQ_INT(qemu_host_version_parse("QEMU emulator version 7.2.22", v, 3), -EINVAL);
	CHECK_EQ_INT(qemu_host_version_query("/nonexistent/qemu-system-x86_64", v, sizeof(v)),
		     -ENOENT);
}

/* Build a /proc/PID/cmdline image: NUL after every argument. */
static size_t cmdline_image(char *buf, size_t cap, const char *const *argv)
{
	size_t len = 0;

	for (; *argv; argv++) {
		size_t l = strlen(*argv) + 1;

		if (len + l > cap)
			break;
		memcpy(buf + len, *argv, l);
		len += l;
	}
	return len;
}

TEST(cmdline_matches)
{
	struct engine_vm_spec s;
	struct engine_host_info h;
	struct qemu_args *a = NULL;
	char *err = NULL, buf[8192];
	size_t len;

	spec_init(&s);
	host_init(&h, false);
	/* What qemu_args_build makes always matches its own spec. */
	CHECK_EQ_INT(qemu_args_build("/usr/bin/qemu-system-x86_64", &s, &h, &a, &err), 0);
	if (a) {
		len = cmdline_image(buf, sizeof(buf), (const char *const *)a->argv);
		CHECK(qemu_args_cmdline_matches(&s, buf, len));
		qemu_args_free(a);
	}
	{
		const char *other_uuid[] = {"qemu-system-x86_64", "-name", "guest=web-1,debug-threads=on",
					    "-uuid", "00000000-0000-0000-0000-000000000000", NULL};
		const char *longer_name[] = {"qemu-system-x86_64", "-name",
					     "guest=web-10,debug-threads=on", "-uuid", UUID, NULL};
		const char *not_qemu[] = {"/bin/sleep", "-name", "guest=web-1,debug-threads=on",
					  "-uuid", UUID, NULL};
		const char *name_as_value[] = {"qemu-system-x86_64", "-uuid", UUID, "-append",
					       "guest=web-1,debug-threads=on", NULL};

		len = cmdline_image(buf, sizeof(buf), other_uuid);
		CHECK(!qemu_args_cmdline_matches(&s, buf, len));
		len = cmdline_image(buf, sizeof(buf), longer_name);
		CHECK(!qemu_args_cmdline_matches(&s, buf, len));
		len = cmdline_image(buf, sizeof(buf), not_qemu);
		CHECK(!qemu_args_cmdline_matches(&s, buf, len));
		len = cmdline_image(buf, sizeof(buf), name_as_value);
		CHECK(!qemu_args_cmdline_matches(&s, buf, len));
	}
	/* An empty or unterminated image (a zombie has an empty cmdline). */
	CHECK(!qemu_args_cmdline_matches(&s, "", 0));
	CHECK(!qemu_args_cmdline_matches(&s, "qemu-system-x86_64", 18));

	/* Commas in the name are compared in their escaped form. */
	snprintf(s.name, sizeof(s.name), "a,b");
	{
		const char *argv[] = {"qemu-system-x86_64", "-name", "guest=a,,b,debug-threads=on",
				      "-uuid", UUID, NULL};

		len = cmdline_image(buf, sizeof(buf), argv);
		CHECK(qemu_args_cmdline_matches(&s, buf, len));
	}
}

HARNESS_MAIN
