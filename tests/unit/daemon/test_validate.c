/* Unit tests for src/daemon/validate.c: request body checks for VMs, stop,
 * images and paths (unknown fields, wrong types, ranges, names, allowed
 * directories, symlinks out of them, malformed JSON). */
#include "daemon/validate.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "lib/util.h"

static char tmpdir[PATH_MAX];
static char allowdir[PATH_MAX];
static const char *allow[1];
static struct validate_ctx vctx = {allow, 1};

static void setup(void)
{
	if (tmpdir[0])
		return;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vessel-test-validate-XXXXXX");
	if (!mkdtemp(tmpdir))
		abort();
	char p[PATH_MAX + 64];
	snprintf(allowdir, sizeof(allowdir), "%.200s/import", tmpdir);
	mkdir(allowdir, 0700);
	allow[0] = allowdir;
	snprintf(p, sizeof(p), "%s/vmlinuz", allowdir);
	FILE *f = fopen(p, "w");
	fputs("kernel", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/secret", tmpdir);
	f = fopen(p, "w");
	fputs("secret", f);
	fclose(f);
	/* a symlink inside the allowed dir pointing out of it */
	char target[PATH_MAX + 64];
	snprintf(target, sizeof(target), "%s/secret", tmpdir);
	snprintf(p, sizeof(p), "%s/escape", allowdir);
	if (symlink(target, p) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/subdir", allowdir);
	mkdir(p, 0700);
}

static json_t *J(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fprintf(stderr, "bad test JSON %s: %s\n", s, e.text);
	return j;
}

static int create(const char *body, struct vm_record *vm, char *err)
{
	json_t *j = J(body);
	int r = validate_vm_create(j, &vctx, vm, err);
	json_decref(j);
	return r;
}

TEST(body_parse)
{
	char err[VALIDATE_ERR_MAX];
	json_t *j = NULL;
	CHECK_EQ_INT(validate_body_parse("{\"a\":1}", 7, false, &j, err), 0);
	json_decref(j);
	CHECK_EQ_INT(validate_body_parse("", 0, true, &j, err), 0);
	CHECK(json_is_object(j) && json_object_size(j) == 0);
	json_decref(j);
	CHECK_EQ_INT(validate_body_parse("  ", 2, false, &j, err), -EINVAL);
	CHECK_EQ_INT(validate_body_parse("{\"a\":", 5, false, &j, err), -EINVAL);
	CHECK(strstr(err, "not valid JSON") != NULL);
	CHECK_EQ_INT(validate_body_parse("[1]", 3, false, &j, err), -EINVAL);
	CHECK(strstr(err, "JSON object") != NULL);
	CHECK_EQ_INT(validate_body_parse("{\"a\":1,\"a\":2}", 13, false, &j, err), -EINVAL);
}

TEST(vm_create_defaults)
{
	setup();
	struct vm_record *vm = malloc(sizeof(*vm));
	char err[VALIDATE_ERR_MAX];
	CHECK_EQ_INT(create("{\"name\":\"web-1\"}", vm, err), 0);
	CHECK_STR(vm->name, "web-1");
	CHECK_EQ_INT(vm->vcpus, 1);
	CHECK_EQ_INT(vm->memory_mib, 512);
	CHECK_EQ_INT(vm->firmware, ENGINE_FW_BIOS);
	CHECK_EQ_INT(vm->restart_policy, VM_RESTART_NEVER);
	CHECK_EQ_INT(vm->nr_disks, 0);
	CHECK(!vm->autostart);
	free(vm);
}

TEST(vm_create_full)
{
	setup();
	struct vm_record *vm = malloc(sizeof(*vm));
	char err[VALIDATE_ERR_MAX], body[8192];
	snprintf(body, sizeof(body),
		 "{\"name\":\"db\",\"vcpus\":4,\"memory_mib\":2048,\"description\":\"x\","
		 "\"autostart\":true,\"restart_policy\":\"on-crash\","
		 "\"boot\":{\"firmware\":\"kernel\",\"kernel\":\"%s/vmlinuz\",\"cmdline\":\"console=ttyS0\"},"
		 "\"disks\":[{\"image\":\"debian\",\"clone\":\"full\",\"size_gib\":4},{\"size_gib\":1},"
		 "{\"image\":\"debian\"}]}",
		 allowdir);
	CHECK_EQ_INT(create(body, vm, err), 0);
	CHECK_EQ_INT(vm->vcpus, 4);
	CHECK_EQ_INT(vm->memory_mib, 2048);
	CHECK(vm->autostart);
	CHECK_EQ_INT(vm->restart_policy, VM_RESTART_ON_CRASH);
	CHECK_EQ_INT(vm->firmware, ENGINE_FW_KERNEL);
	CHECK(strstr(vm->kernel, "/import/vmlinuz") != NULL);
	CHECK_STR(vm->cmdline, "console=ttyS0");
	CHECK_EQ_INT(vm->nr_disks, 3);
	CHECK_EQ_INT(vm->disks[0].clone, DISK_CLONE_FULL);
	CHECK_EQ_INT(vm->disks[0].size_gib, 4);
	CHECK_EQ_INT(vm->disks[1].clone, DISK_CLONE_NONE);
	CHECK_EQ_INT(vm->disks[2].clone, DISK_CLONE_LINKED);
	CHECK_EQ_INT(vm->disks[2].index, 2);
	free(vm);
}

TEST(vm_create_rejects)
{
	setup();
	struct vm_record *vm = malloc(sizeof(*vm));
	char err[VALIDATE_ERR_MAX];
	static const char *const bad[] = {
		"{}",                                          /* name required */
		"{\"name\":\"Web\"}",                          /* uppercase */
		"{\"name\":\"-a\"}",                           /* leading dash */
		"{\"name\":\"a_b\"}",                          /* underscore */
		"{\"name\":7}",                                /* wrong type */
		"{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
		"{\"name\":\"a\",\"vcpus\":0}",
		"{\"name\":\"a\",\"vcpus\":65}",
		"{\"name\":\"a\",\"vcpus\":1.5}",
		"{\"name\":\"a\",\"vcpus\":\"2\"}",
		"{\"name\":\"a\",\"memory_mib\":15}",
		"{\"name\":\"a\",\"memory_mib\":1048577}",
		"{\"name\":\"a\",\"memory_mib\":-1}",
		"{\"name\":\"a\",\"autostart\":1}",
		"{\"name\":\"a\",\"restart_policy\":\"always\"}",
		"{\"name\":\"a\",\"colour\":\"red\"}",        /* unknown field */
		"{\"name\":\"a\",\"boot\":\"bios\"}",
		"{\"name\":\"a\",\"boot\":{\"firmware\":\"coreboot\"}}",
		"{\"name\":\"a\",\"boot\":{\"firmware\":\"bios\",\"cmdline\":\"x\"}}",
		"{\"name\":\"a\",\"boot\":{\"firmware\":\"kernel\"}}",
		"{\"name\":\"a\",\"boot\":{\"kernel\":\"relative/vmlinuz\"}}",
		"{\"name\":\"a\",\"boot\":{\"firmware\":\"bios\",\"extra\":1}}",
		"{\"name\":\"a\",\"disks\":{}}",
		"{\"name\":\"a\",\"disks\":[{}]}",
		"{\"name\":\"a\",\"disks\":[{\"clone\":\"full\",\"size_gib\":1}]}",
		"{\"name\":\"a\",\"disks\":[{\"image\":\"x\",\"clone\":\"deep\"}]}",
		"{\"name\":\"a\",\"disks\":[{\"image\":\"x\",\"clone\":\"none\"}]}",
		"{\"name\":\"a\",\"disks\":[{\"size_gib\":0}]}",
		"{\"name\":\"a\",\"disks\":[{\"size_gib\":16385}]}",
		"{\"name\":\"a\",\"disks\":[{\"image\":\"Bad\"}]}",
		"{\"name\":\"a\",\"disks\":[{\"size_gib\":1,\"bus\":\"ide\"}]}",
		"{\"name\":\"a\",\"disks\":[1,2,3,4,5,6,7,8,9]}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = '\0';
		int r = create(bad[i], vm, err);
		if (r != -EINVAL)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK_EQ_INT(r, -EINVAL);
		CHECK(strlen(err) > 10); /* a sentence, not a code */
	}
	/* the message names the problem */
	create("{\"name\":\"a\",\"colour\":\"red\"}", vm, err);
	CHECK(strstr(err, "colour") != NULL);
	create("{\"name\":\"a\",\"vcpus\":99}", vm, err);
	CHECK(strstr(err, "vcpus") != NULL && strstr(err, "64") != NULL);
	free(vm);
}

TEST(description_length_counts_characters)
{
	setup();
	struct vm_record *vm = malloc(sizeof(*vm));
	char err[VALIDATE_ERR_MAX];
	/* 1024 two-byte characters are allowed, 1025 are not */
	char *body = malloc(8192);
	strcpy(body, "{\"name\":\"a\",\"description\":\"");
	for (int i = 0; i < 1024; i++)
		strcat(body, "\xc3\xa9");
	strcat(body, "\"}");
	CHECK_EQ_INT(create(body, vm, err), 0);
	body[strlen(body) - 2] = '\0';
	strcat(body, "\xc3\xa9\"}");
	CHECK_EQ_INT(create(body, vm, err), -EINVAL);
	free(body);
	free(vm);
}

TEST(vm_patch)
{
	setup();
	struct vm_record *vm = malloc(sizeof(*vm));
	char err[VALIDATE_ERR_MAX];
	CHECK_EQ_INT(create("{\"name\":\"a\",\"vcpus\":2}", vm, err), 0);
	json_t *j = J("{\"memory_mib\":1024,\"autostart\":true}");
	CHECK_EQ_INT(validate_vm_patch(j, &vctx, vm, err), 0);
	json_decref(j);
	CHECK_EQ_INT(vm->memory_mib, 1024);
	CHECK_EQ_INT(vm->vcpus, 2); /* untouched */
	CHECK(vm->autostart);
	j = J("{\"name\":\"b\"}");
	CHECK_EQ_INT(validate_vm_patch(j, &vctx, vm, err), -EINVAL);
	CHECK(strstr(err, "cannot be changed") != NULL);
	json_decref(j);
	j = J("{\"disks\":[]}");
	CHECK_EQ_INT(validate_vm_patch(j, &vctx, vm, err), -EINVAL);
	json_decref(j);
	j = J("{\"vcpus\":100}");
	CHECK_EQ_INT(validate_vm_patch(j, &vctx, vm, err), -EINVAL);
	json_decref(j);
	j = J("{\"state\":\"running\"}");
	CHECK_EQ_INT(validate_vm_patch(j, &vctx, vm, err), -EINVAL);
	json_decref(j);
	free(vm);
}

TEST(vm_stop)
{
	char err[VALIDATE_ERR_MAX];
	unsigned t = 0;
	CHECK_EQ_INT(validate_vm_stop(NULL, &t, err), 0);
	CHECK_EQ_INT(t, 60);
	json_t *j = J("{\"timeout\":0}");
	CHECK_EQ_INT(validate_vm_stop(j, &t, err), 0);
	CHECK_EQ_INT(t, 0);
	json_decref(j);
	j = J("{\"timeout\":3601}");
	CHECK_EQ_INT(validate_vm_stop(j, &t, err), -EINVAL);
	json_decref(j);
	j = J("{\"timeout\":true}");
	CHECK_EQ_INT(validate_vm_stop(j, &t, err), -EINVAL);
	json_decref(j);
	j = J("{\"force\":true}");
	CHECK_EQ_INT(validate_vm_stop(j, &t, err), -EINVAL);
	json_decref(j);
}

TEST(paths)
{
	setup();
	char res[MODEL_PATH_MAX], err[VALIDATE_ERR_MAX], p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/vmlinuz", allowdir);
	CHECK_EQ_INT(validate_path(p, "kernel", &vctx, res, err), 0);
	/* via .. back into the allowed dir is fine after resolution */
	snprintf(p, sizeof(p), "%s/subdir/../vmlinuz", allowdir);
	CHECK_EQ_INT(validate_path(p, "kernel", &vctx, res, err), 0);
	/* a symlink that leaves the allowed dir is refused */
	snprintf(p, sizeof(p), "%s/escape", allowdir);
	CHECK_EQ_INT(validate_path(p, "kernel", &vctx, res, err), -EINVAL);
	CHECK(strstr(err, "allowed directory") != NULL);
	snprintf(p, sizeof(p), "%s/../secret", allowdir);
	CHECK_EQ_INT(validate_path(p, "kernel", &vctx, res, err), -EINVAL);
	snprintf(p, sizeof(p), "%s/missing", allowdir);
	CHECK_EQ_INT(validate_path(p, "kernel", &vctx, res, err), -EINVAL);
	snprintf(p, sizeof(p), "%s/subdir", allowdir);
	CHECK_EQ_INT(validate_path(p, "kernel", &vctx, res, err), -EINVAL);
	CHECK(strstr(err, "regular file") != NULL);
	CHECK_EQ_INT(validate_path("vmlinuz", "kernel", &vctx, res, err), -EINVAL);
	/* a sibling directory sharing the prefix is not "under" it */
	snprintf(p, sizeof(p), "%s/import-other", tmpdir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/import-other/f", tmpdir);
	FILE *f = fopen(p, "w");
	fclose(f);
	CHECK_EQ_INT(validate_path(p, "kernel", &vctx, res, err), -EINVAL);
}

TEST(image_import)
{
	setup();
	struct image_record img;
	char err[VALIDATE_ERR_MAX], body[8192];
	snprintf(body, sizeof(body), "{\"name\":\"debian\",\"path\":\"%s/vmlinuz\",\"format\":\"vhd\"}",
		 allowdir);
	json_t *j = J(body);
	CHECK_EQ_INT(validate_image_import(j, &vctx, &img, err), 0);
	json_decref(j);
	CHECK_STR(img.name, "debian");
	CHECK_STR(img.source_format, "vhd");
	snprintf(body, sizeof(body), "{\"name\":\"debian\",\"path\":\"%s/vmlinuz\"}", allowdir);
	j = J(body);
	CHECK_EQ_INT(validate_image_import(j, &vctx, &img, err), 0);
	CHECK_STR(img.source_format, "auto");
	json_decref(j);
	static const char *const bad[] = {
		"{\"name\":\"debian\"}",
		"{\"path\":\"/x\"}",
		"{\"name\":\"debian\",\"path\":\"/etc/passwd\"}",
		"{\"name\":\"debian\",\"path\":\"/x\",\"format\":\"iso\"}",
		"{\"name\":\"debian\",\"path\":\"/x\",\"size\":1}",
		"{\"name\":\"debian\",\"path\":5}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		j = J(bad[i]);
		CHECK_EQ_INT(validate_image_import(j, &vctx, &img, err), -EINVAL);
		json_decref(j);
	}
}

TEST(flag)
{
	CHECK(validate_flag("true"));
	CHECK(validate_flag("1"));
	CHECK(!validate_flag("false"));
	CHECK(!validate_flag(NULL));
}

TEST(mutated_bodies)
{
	/* Random byte mutations of valid bodies: every outcome is either
	 * accepted or refused with a sentence; nothing crashes (run under
	 * ASan/UBSan). Deterministic seed so a failure reproduces. */
	setup();
	static const char *const seeds[] = {
		"{\"name\":\"web-1\",\"vcpus\":2,\"memory_mib\":512,\"description\":\"x\","
		"\"autostart\":false,\"restart_policy\":\"never\",\"boot\":{\"firmware\":\"bios\"},"
		"\"disks\":[{\"image\":\"debian\",\"clone\":\"linked\",\"size_gib\":4},{\"size_gib\":1}]}",
		"{\"name\":\"i\",\"path\":\"/tmp/x\",\"format\":\"auto\"}",
		"{\"timeout\":60}",
	};
	struct vm_record *vm = malloc(sizeof(*vm));
	struct image_record *img = malloc(sizeof(*img));
	uint64_t x = 88172645463325252ull;
	char buf[1024], err[VALIDATE_ERR_MAX];
	int accepted = 0, refused = 0;
	for (int round = 0; round < 30000; round++) {
		const char *seed = seeds[round % ARRAY_SIZE(seeds)];
		size_t n = strlen(seed);
		memcpy(buf, seed, n);
		int flips = 1 + (int)(x % 3);
		for (int f = 0; f < flips; f++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[x % n] = (char)(x >> 32);
		}
		json_t *j = NULL;
		err[0] = '\0';
		if (validate_body_parse(buf, n, false, &j, err) < 0) {
			CHECK(err[0] != '\0');
			refused++;
			continue;
		}
		unsigned t;
		int r1 = validate_vm_create(j, &vctx, vm, err);
		int r2 = validate_vm_patch(j, &vctx, vm, err);
		int r3 = validate_image_import(j, &vctx, img, err);
		int r4 = validate_vm_stop(j, &t, err);
		CHECK(r1 == 0 || r1 == -EINVAL);
		CHECK(r2 == 0 || r2 == -EINVAL);
		CHECK(r3 == 0 || r3 == -EINVAL);
		CHECK(r4 == 0 || r4 == -EINVAL);
		if (r1 == 0) {
			CHECK(util_is_dns_label(vm->name));
			CHECK(vm->vcpus >= 1 && vm->vcpus <= 64);
			CHECK(vm->nr_disks <= MODEL_MAX_DISKS);
			accepted++;
		}
		json_decref(j);
	}
	CHECK(accepted > 0 && refused > 0);
	free(vm);
	free(img);
}

TEST(cleanup)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (tmpdir[0])
		CHECK_EQ_INT(system(cmd), 0);
}

HARNESS_MAIN
