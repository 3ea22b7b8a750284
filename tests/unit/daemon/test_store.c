/* Unit tests for src/daemon/store.c: a fresh database gets the latest
 * schema, a version-1 database is upgraded with its rows kept, a database
 * from a newer vesseld is refused with a clear error, and records round-trip. */
#include "daemon/store.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

static void tmp_db(char *path, size_t cap)
{
	snprintf(path, cap, "/tmp/vessel-test-store-XXXXXX");
	int fd = mkstemp(path);
	if (fd >= 0)
		close(fd);
	unlink(path);
}

static void rm_db(const char *path)
{
	char p[PATH_MAX + 8];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static void sample_vm(struct vm_record *vm, const char *name)
{
	memset(vm, 0, sizeof(*vm));
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	model_uuid(vm->uuid);
	vm->state = VM_STATE_RUNNING;
	vm->vcpus = 2;
	vm->memory_mib = 1024;
	snprintf(vm->description, sizeof(vm->description), "it's \"quoted\"");
	vm->autostart = true;
	vm->restart_policy = VM_RESTART_ON_CRASH;
	vm->firmware = ENGINE_FW_KERNEL;
	snprintf(vm->kernel, sizeof(vm->kernel), "/k");
	vm->pid = 1234;
	model_now(vm->created_at);
	model_now(vm->updated_at);
	vm->nr_disks = 2;
	vm->disks[0].index = 0;
	snprintf(vm->disks[0].image, sizeof(vm->disks[0].image), "debian");
	vm->disks[0].clone = DISK_CLONE_LINKED;
	vm->disks[0].size_bytes = 2ull << 30;
	snprintf(vm->disks[0].format, sizeof(vm->disks[0].format), "qcow2");
	snprintf(vm->disks[0].path, sizeof(vm->disks[0].path), "/d/disk0.qcow2");
	vm->disks[1].index = 1;
	vm->disks[1].clone = DISK_CLONE_NONE;
	vm->disks[1].size_gib = 1;
	vm->disks[1].size_bytes = 1ull << 30;
	snprintf(vm->disks[1].format, sizeof(vm->disks[1].format), "qcow2");
	snprintf(vm->disks[1].path, sizeof(vm->disks[1].path), "/d/disk1.qcow2");
}

TEST(fresh_database)
{
	char path[PATH_MAX], err[STORE_ERR_MAX];
	tmp_db(path, sizeof(path));
	struct store *st = NULL;
	CHECK_EQ_INT(store_open(path, &st, err), 0);
	CHECK_EQ_INT(store_schema_version(st), store_schema_latest());
	CHECK(store_schema_latest() >= 2);
	store_free(st);
	/* opening again is a no-op migration */
	CHECK_EQ_INT(store_open(path, &st, err), 0);
	CHECK_EQ_INT(store_schema_version(st), store_schema_latest());
	store_free(st);
	rm_db(path);
}

TEST(vm_roundtrip)
{
	char path[PATH_MAX], err[STORE_ERR_MAX];
	tmp_db(path, sizeof(path));
	struct store *st = NULL;
	CHECK_EQ_INT(store_open(path, &st, err), 0);
	struct vm_record *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	sample_vm(a, "zeta");
	sample_vm(b, "alpha");
	CHECK_EQ_INT(store_vm_put(st, a), 0);
	CHECK_EQ_INT(store_vm_put(st, b), 0);
	/* update replaces, including the disk rows */
	a->state = VM_STATE_STOPPED;
	a->pid = 0;
	a->nr_disks = 1;
	CHECK_EQ_INT(store_vm_put(st, a), 0);
	struct vm_record *v = NULL;
	size_t n = 0;
	CHECK_EQ_INT(store_vm_list(st, &v, &n), 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].name, "alpha"); /* sorted by name */
		CHECK_STR(v[1].name, "zeta");
		CHECK_EQ_INT(v[1].state, VM_STATE_STOPPED);
		CHECK_EQ_INT(v[1].nr_disks, 1);
		CHECK_EQ_INT(v[0].nr_disks, 2);
		CHECK_STR(v[0].description, "it's \"quoted\"");
		CHECK_EQ_INT(v[0].restart_policy, VM_RESTART_ON_CRASH);
		CHECK_EQ_INT(v[0].firmware, ENGINE_FW_KERNEL);
		CHECK_EQ_INT(v[0].pid, 1234);
		CHECK_STR(v[0].uuid, b->uuid);
		CHECK_STR(v[0].disks[0].image, "debian");
		CHECK_EQ_INT(v[0].disks[0].clone, DISK_CLONE_LINKED);
		CHECK_EQ_INT(v[0].disks[0].size_bytes, 2ull << 30);
		CHECK_EQ_INT(v[0].disks[1].clone, DISK_CLONE_NONE);
		CHECK_STR(v[0].disks[1].path, "/d/disk1.qcow2");
	}
	free(v);
	CHECK_EQ_INT(store_vm_delete(st, "alpha"), 0);
	CHECK_EQ_INT(store_vm_list(st, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	free(v);
	free(a);
	free(b);
	store_free(st);
	rm_db(path);
}

TEST(images_tasks_settings)
{
	char path[PATH_MAX], err[STORE_ERR_MAX];
	tmp_db(path, sizeof(path));
	struct store *st = NULL;
	CHECK_EQ_INT(store_open(path, &st, err), 0);
	struct image_record img = {0};
	snprintf(img.name, sizeof(img.name), "debian");
	snprintf(img.format, sizeof(img.format), "qcow2");
	snprintf(img.source_format, sizeof(img.source_format), "vhd");
	img.virtual_size_bytes = 42;
	img.state = IMAGE_STATE_READY;
	CHECK_EQ_INT(store_image_put(st, &img), 0);
	struct image_record *iv = NULL;
	size_t n = 0;
	CHECK_EQ_INT(store_image_list(st, &iv, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_STR(iv[0].source_format, "vhd");
		CHECK_EQ_INT(iv[0].virtual_size_bytes, 42);
		CHECK_EQ_INT(iv[0].state, IMAGE_STATE_READY);
	}
	free(iv);
	CHECK_EQ_INT(store_image_delete(st, "debian"), 0);

	struct task_record t = {0};
	snprintf(t.id, sizeof(t.id), "t-1");
	t.kind = TASK_KIND_DISK_COPY;
	t.progress = 50;
	snprintf(t.created_at, sizeof(t.created_at), "2026-01-01T00:00:00Z");
	CHECK_EQ_INT(store_task_put(st, &t), 0);
	snprintf(t.id, sizeof(t.id), "t-2");
	snprintf(t.created_at, sizeof(t.created_at), "2026-01-02T00:00:00Z");
	t.state = TASK_STATE_FAILED;
	snprintf(t.error, sizeof(t.error), "it broke");
	CHECK_EQ_INT(store_task_put(st, &t), 0);
	struct task_record *tv = NULL;
	CHECK_EQ_INT(store_task_list(st, &tv, &n), 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_STR(tv[0].id, "t-2"); /* newest first */
		CHECK_STR(tv[0].error, "it broke");
		CHECK_EQ_INT(tv[1].kind, TASK_KIND_DISK_COPY);
		CHECK_STR(tv[1].error, "");
	}
	free(tv);

	char *val = NULL;
	CHECK_EQ_INT(store_setting_get(st, "k", &val), -ENOENT);
	CHECK_EQ_INT(store_setting_put(st, "k", "v1"), 0);
	CHECK_EQ_INT(store_setting_put(st, "k", "v2"), 0);
	CHECK_EQ_INT(store_setting_get(st, "k", &val), 0);
	CHECK_STR(val, "v2");
	free(val);
	store_free(st);
	rm_db(path);
}

TEST(upgrade_from_v1)
{
	char path[PATH_MAX], err[STORE_ERR_MAX];
	tmp_db(path, sizeof(path));
	struct store *st = NULL;
	CHECK_EQ_INT(store_open_version(path, 1, &st, err), 0);
	CHECK_EQ_INT(store_schema_version(st), 1);
	store_free(st);
	/* a row written by a version-1 vesseld (no disks table yet) */
	sqlite3 *db;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db,
				  "INSERT INTO vms VALUES ('old','u-1','stopped',1,512,'',0,'never',"
				  "'bios','','','',NULL,NULL,NULL,'2026-01-01T00:00:00Z',"
				  "'2026-01-01T00:00:00Z')",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);

	CHECK_EQ_INT(store_open(path, &st, err), 0);
	CHECK_EQ_INT(store_schema_version(st), store_schema_latest());
	struct vm_record *v = NULL;
	size_t n = 0;
	CHECK_EQ_INT(store_vm_list(st, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_STR(v[0].name, "old");
		CHECK_EQ_INT(v[0].nr_disks, 0);
		CHECK_EQ_INT(v[0].memory_mib, 512);
	}
	free(v);
	/* the new table works */
	struct vm_record *vm = malloc(sizeof(*vm));
	sample_vm(vm, "new");
	CHECK_EQ_INT(store_vm_put(st, vm), 0);
	free(vm);
	store_free(st);
	rm_db(path);
}

TEST(newer_database_refused)
{
	char path[PATH_MAX], err[STORE_ERR_MAX];
	tmp_db(path, sizeof(path));
	struct store *st = NULL;
	CHECK_EQ_INT(store_open(path, &st, err), 0);
	store_free(st);
	sqlite3 *db;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	err[0] = '\0';
	st = NULL;
	CHECK_EQ_INT(store_open(path, &st, err), -EPROTO);
	CHECK(st == NULL);
	CHECK(strstr(err, "schema version 99") != NULL);
	CHECK(strstr(err, "newer vesseld") != NULL);
	/* and it was not touched */
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *s;
	sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
	CHECK_EQ_INT(sqlite3_step(s), SQLITE_ROW);
	CHECK_EQ_INT(sqlite3_column_int(s, 0), 99);
	sqlite3_finalize(s);
	sqlite3_close(db);
	rm_db(path);
}

TEST(unopenable_path)
{
	char err[STORE_ERR_MAX];
	struct store *st = NULL;
	CHECK(store_open("/nonexistent-dir/x/vessel.db", &st, err) < 0);
	CHECK(strstr(err, "/nonexistent-dir/x/vessel.db") != NULL);
}

HARNESS_MAIN
