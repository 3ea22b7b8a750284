/* store: SQLite persistence with versioned migrations (see store.h). */
#include "daemon/store.h"

#include "daemon/auth.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

struct store {
	sqlite3 *db;
	pthread_mutex_t lock;
};

/* Migration N (1-based) turns schema N-1 into schema N. Append only: a
 * released migration is never edited, because databases in the field have
 * already run it. */
static const char *const store_migrations[] = {
	/* 1: VMs (with their boot definition), images, tasks, settings */
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE vms ("
	" name TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, state TEXT NOT NULL,"
	" vcpus INTEGER NOT NULL, memory_mib INTEGER NOT NULL, description TEXT NOT NULL,"
	" autostart INTEGER NOT NULL, restart_policy TEXT NOT NULL, firmware TEXT NOT NULL,"
	" kernel TEXT NOT NULL, initrd TEXT NOT NULL, cmdline TEXT NOT NULL,"
	" pid INTEGER, crash_reason TEXT, task TEXT,"
	" created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
	"CREATE TABLE images ("
	" name TEXT PRIMARY KEY, format TEXT NOT NULL, source_format TEXT NOT NULL,"
	" size_bytes INTEGER NOT NULL, virtual_size_bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,"
	" source_path TEXT NOT NULL, path TEXT NOT NULL, state TEXT NOT NULL, task TEXT,"
	" created_at TEXT NOT NULL);"
	"CREATE TABLE tasks ("
	" id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL,"
	" progress INTEGER NOT NULL, message TEXT NOT NULL, error TEXT,"
	" created_at TEXT NOT NULL, finished_at TEXT);",
	/* 2: disks get their own table so "which VM uses image X" is one
	 * indexed query (image delete must be refused while in use). */
	"CREATE TABLE disks ("
	" vm TEXT NOT NULL REFERENCES vms(name) ON DELETE CASCADE, idx INTEGER NOT NULL,"
	" image TEXT, clone TEXT NOT NULL, size_gib INTEGER NOT NULL, size_bytes INTEGER NOT NULL,"
	" format TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (vm, idx));"
	"CREATE INDEX disks_image ON disks(image);",
	/* 3: API tokens (auth.c). Only the SHA-256 of the secret is kept; the
	 * id is the primary key so a presented token is found with one
	 * indexed lookup. Times are Unix seconds, NULL = never. */
	"CREATE TABLE tokens ("
	" id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
	" project TEXT NOT NULL, hash TEXT NOT NULL, created INTEGER NOT NULL,"
	" expires INTEGER, last_used INTEGER, revoked INTEGER);",
	/* 4: projects with quotas (NULL = unlimited); every VM belongs to
	 * one (existing VMs to "default") and has a priority 0..4 (P0..P4). */
	"CREATE TABLE projects ("
	" name TEXT PRIMARY KEY, description TEXT NOT NULL,"
	" max_vms INTEGER, max_vcpus INTEGER, max_memory_mib INTEGER, max_disk_gib INTEGER,"
	" created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
	"INSERT INTO projects (name, description, created_at, updated_at)"
	" VALUES ('default', 'VMs created without a project',"
	" strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));"
	"ALTER TABLE vms ADD COLUMN project TEXT NOT NULL DEFAULT 'default';"
	"ALTER TABLE vms ADD COLUMN priority INTEGER NOT NULL DEFAULT 2;"
	"CREATE INDEX vms_project ON vms(project);",
	/* 5: virtual networks. NICs get their own table (like disks) so "which
	 * VM uses network X" is one indexed query; networks and firewall rule
	 * sets are stored as their JSON definitions (docs/networking.md), with
	 * what vessel created on the host for each network (bridge created or
	 * attached to, VLAN bridges, dnsmasq pid) so a restart finds it. */
	"CREATE TABLE nics ("
	" vm TEXT NOT NULL REFERENCES vms(name) ON DELETE CASCADE, idx INTEGER NOT NULL,"
	" network TEXT NOT NULL, mac TEXT NOT NULL UNIQUE, vlan INTEGER NOT NULL,"
	" firewall TEXT, rate_mbit INTEGER NOT NULL, tap TEXT NOT NULL UNIQUE,"
	" PRIMARY KEY (vm, idx));"
	"CREATE INDEX nics_network ON nics(network);"
	"CREATE INDEX nics_firewall ON nics(firewall);"
	"CREATE TABLE networks (name TEXT PRIMARY KEY, body TEXT NOT NULL);"
	"CREATE TABLE firewalls (name TEXT PRIMARY KEY, body TEXT NOT NULL);",
	/* 6: snapshots, snapshot schedules and restore drill results
	 * (docs/backups.md), each a JSON document keyed by kind and id and
	 * tagged with its VM; backups themselves live in the backup store,
	 * which must outlive this database. */
	"CREATE TABLE protection ("
	" kind TEXT NOT NULL, key TEXT NOT NULL, vm TEXT NOT NULL, body TEXT NOT NULL,"
	" PRIMARY KEY (kind, key));"
	"CREATE INDEX protection_vm ON protection(kind, vm);",
};

int store_schema_latest(void)
{
	return (int)ARRAY_SIZE(store_migrations);
}

static int store_exec(struct store *st, const char *sql, char err[STORE_ERR_MAX])
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		if (err)
			snprintf(err, STORE_ERR_MAX, "database error: %s", msg ? msg : "unknown");
		else
			log_error("store: %s", msg ? msg : "unknown error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static int store_user_version(struct store *st)
{
	sqlite3_stmt *s;
	int v = -1;
	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int store_migrate(struct store *st, const char *path, int target, char err[STORE_ERR_MAX])
{
	int cur = store_user_version(st);
	if (cur < 0) {
		snprintf(err, STORE_ERR_MAX, "database %s cannot be read: %s", path,
			 sqlite3_errmsg(st->db));
		return -EIO;
	}
	if (cur > store_schema_latest()) {
		snprintf(err, STORE_ERR_MAX,
			 "database %s has schema version %d but this vesseld only knows versions up "
			 "to %d; run a newer vesseld or restore a backup of the database",
			 path, cur, store_schema_latest());
		return -EPROTO;
	}
	for (int v = cur; v < target; v++) {
		char sql[64];
		int r;
		/* Each step and its version bump commit together, so a crash
		 * mid-upgrade leaves the previous version intact. */
		if ((r = store_exec(st, "BEGIN IMMEDIATE", err)) < 0)
			return r;
		if ((r = store_exec(st, store_migrations[v], err)) < 0) {
			store_exec(st, "ROLLBACK", NULL);
			return r;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if ((r = store_exec(st, sql, err)) < 0 || (r = store_exec(st, "COMMIT", err)) < 0) {
			store_exec(st, "ROLLBACK", NULL);
			return r;
		}
		if (cur > 0)
			log_info("store: upgraded %s to schema version %d", path, v + 1);
	}
	return 0;
}

int store_open_version(const char *path, int version, struct store **out,
		       char err[STORE_ERR_MAX])
{
	int r;
	struct store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
						 SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, STORE_ERR_MAX, "cannot open database %s: %s; check the data directory",
			 path, st->db ? sqlite3_errmsg(st->db) : "out of memory");
		r = -EIO;
		goto out;
	}
	sqlite3_busy_timeout(st->db, 5000);
	/* WAL: readers never block the writer; synchronous=NORMAL is durable
	 * across application crashes, which is what a daemon needs. */
	if ((r = store_exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
				"PRAGMA foreign_keys=ON;", err)) < 0)
		goto out;
	if ((r = store_migrate(st, path, version, err)) < 0)
		goto out;
	*out = st;
	return 0;
out:
	store_free(st);
	return r;
}

int store_open(const char *path, struct store **out, char err[STORE_ERR_MAX])
{
	return store_open_version(path, store_schema_latest(), out, err);
}

void store_free(struct store *st)
{
	if (!st)
		return;
	if (st->db)
		sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

int store_schema_version(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	int v = store_user_version(st);
	pthread_mutex_unlock(&st->lock);
	return v;
}

/* Prepare, bind with a tiny format ('t' text, 'i' int64, 'n' null-if-empty
 * text) and step to completion. */
static int store_run(struct store *st, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *s = NULL;
	int r = 0;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		log_error("store: cannot prepare statement: %s", sqlite3_errmsg(st->db));
		return -EIO;
	}
	va_list ap;
	va_start(ap, fmt);
	for (int i = 0; fmt[i]; i++) {
		if (fmt[i] == 'i') {
			sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
		} else {
			const char *v = va_arg(ap, const char *);
			if (fmt[i] == 'n' && (!v || !*v))
				sqlite3_bind_null(s, i + 1);
			else
				sqlite3_bind_text(s, i + 1, v ? v : "", -1, SQLITE_TRANSIENT);
		}
	}
	va_end(ap);
	int rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_error("store: write failed: %s", sqlite3_errmsg(st->db));
		r = -EIO;
	}
	sqlite3_finalize(s);
	return r;
}

/* The next free slot of a growing result array of elem-byte records
 * (zeroed), or NULL when memory runs out; *v may move. */
static void *store_row_slot(void **v, size_t *cnt, size_t *cap, size_t elem)
{
	if (*cnt == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		void *nv = realloc(*v, ncap * elem);
		if (!nv)
			return NULL;
		*v = nv;
		*cap = ncap;
	}
	void *slot = (char *)*v + (*cnt)++ * elem;
	memset(slot, 0, elem);
	return slot;
}

static void store_col_text(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

int store_vm_put(struct store *st, const struct vm_record *vm)
{
	int r;
	pthread_mutex_lock(&st->lock);
	if ((r = store_exec(st, "BEGIN IMMEDIATE", NULL)) < 0)
		goto out;
	r = store_run(st,
		      "INSERT OR REPLACE INTO vms (name, uuid, state, vcpus, memory_mib, description,"
		      " autostart, restart_policy, firmware, kernel, initrd, cmdline, pid,"
		      " crash_reason, task, created_at, updated_at, project, priority)"
		      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
		      "tttiititttttinnttti", vm->name, vm->uuid, model_vm_state_name(vm->state),
		      (int64_t)vm->vcpus, (int64_t)vm->memory_mib, vm->description,
		      (int64_t)vm->autostart, model_restart_policy_name(vm->restart_policy),
		      model_firmware_name(vm->firmware), vm->kernel, vm->initrd, vm->cmdline,
		      (int64_t)vm->pid, vm->crash_reason, vm->task, vm->created_at, vm->updated_at,
		      vm->project[0] ? vm->project : MODEL_PROJECT_DEFAULT, (int64_t)vm->priority);
	if (r == 0)
		r = store_run(st, "DELETE FROM disks WHERE vm = ?", "t", vm->name);
	for (unsigned i = 0; r == 0 && i < vm->nr_disks; i++) {
		const struct vm_disk *d = &vm->disks[i];
		r = store_run(st,
			      "INSERT INTO disks (vm, idx, image, clone, size_gib, size_bytes, format,"
			      " path) VALUES (?,?,?,?,?,?,?,?)",
			      "tintiitt", vm->name, (int64_t)d->index, d->image,
			      model_clone_name(d->clone), (int64_t)d->size_gib,
			      (int64_t)d->size_bytes, d->format, d->path);
	}
	if (r == 0)
		r = store_run(st, "DELETE FROM nics WHERE vm = ?", "t", vm->name);
	for (unsigned i = 0; r == 0 && i < vm->nr_nics; i++) {
		const struct vm_nic *n = &vm->nics[i];
		r = store_run(st,
			      "INSERT INTO nics (vm, idx, network, mac, vlan, firewall, rate_mbit, tap)"
			      " VALUES (?,?,?,?,?,?,?,?)",
			      "tittinit", vm->name, (int64_t)n->index, n->network, n->mac,
			      (int64_t)n->vlan, n->firewall, (int64_t)n->rate_mbit, n->tap);
	}
	if (r == 0)
		r = store_exec(st, "COMMIT", NULL);
	if (r < 0)
		store_exec(st, "ROLLBACK", NULL);
out:
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_vm_delete(struct store *st, const char *name)
{
	pthread_mutex_lock(&st->lock);
	int r = store_run(st, "DELETE FROM vms WHERE name = ?", "t", name);
	pthread_mutex_unlock(&st->lock);
	return r;
}

static int store_vm_load_disks(struct store *st, struct vm_record *vm)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db,
			       "SELECT idx, image, clone, size_gib, size_bytes, format, path FROM disks"
			       " WHERE vm = ? ORDER BY idx",
			       -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(s, 1, vm->name, -1, SQLITE_TRANSIENT);
	vm->nr_disks = 0;
	while (sqlite3_step(s) == SQLITE_ROW && vm->nr_disks < MODEL_MAX_DISKS) {
		struct vm_disk *d = &vm->disks[vm->nr_disks++];
		char clone[16];
		d->index = (unsigned)sqlite3_column_int(s, 0);
		store_col_text(s, 1, d->image, sizeof(d->image));
		store_col_text(s, 2, clone, sizeof(clone));
		if (model_clone_parse(clone, &d->clone) < 0)
			d->clone = DISK_CLONE_NONE;
		d->size_gib = (uint64_t)sqlite3_column_int64(s, 3);
		d->size_bytes = (uint64_t)sqlite3_column_int64(s, 4);
		store_col_text(s, 5, d->format, sizeof(d->format));
		store_col_text(s, 6, d->path, sizeof(d->path));
	}
	sqlite3_finalize(s);
	return 0;
}

static int store_vm_load_nics(struct store *st, struct vm_record *vm)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db,
			       "SELECT idx, network, mac, vlan, firewall, rate_mbit, tap FROM nics"
			       " WHERE vm = ? ORDER BY idx",
			       -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(s, 1, vm->name, -1, SQLITE_TRANSIENT);
	vm->nr_nics = 0;
	while (sqlite3_step(s) == SQLITE_ROW && vm->nr_nics < MODEL_MAX_NICS) {
		struct vm_nic *n = &vm->nics[vm->nr_nics++];
		n->index = (unsigned)sqlite3_column_int(s, 0);
		store_col_text(s, 1, n->network, sizeof(n->network));
		store_col_text(s, 2, n->mac, sizeof(n->mac));
		n->vlan = (unsigned)sqlite3_column_int(s, 3);
		store_col_text(s, 4, n->firewall, sizeof(n->firewall));
		n->rate_mbit = (unsigned)sqlite3_column_int(s, 5);
		store_col_text(s, 6, n->tap, sizeof(n->tap));
	}
	sqlite3_finalize(s);
	return 0;
}

int store_vm_list(struct store *st, struct vm_record **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct vm_record *v = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;
	bool has_disks = store_user_version(st) >= 2;
	bool has_nics = store_user_version(st) >= 5;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db,
			       "SELECT name, uuid, state, vcpus, memory_mib, description,"
			       " autostart, restart_policy, firmware, kernel, initrd, cmdline,"
			       " pid, crash_reason, task, created_at, updated_at, project,"
			       " priority FROM vms ORDER BY name",
			       -1, &s, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct vm_record *vm = store_row_slot((void **)&v, &cnt, &cap, sizeof(*v));
		if (!vm) {
			r = -ENOMEM;
			goto out;
		}
		char buf[32];
		store_col_text(s, 0, vm->name, sizeof(vm->name));
		store_col_text(s, 1, vm->uuid, sizeof(vm->uuid));
		store_col_text(s, 2, buf, sizeof(buf));
		if (model_vm_state_parse(buf, &vm->state) < 0)
			vm->state = VM_STATE_STOPPED;
		vm->vcpus = (unsigned)sqlite3_column_int(s, 3);
		vm->memory_mib = (uint64_t)sqlite3_column_int64(s, 4);
		store_col_text(s, 5, vm->description, sizeof(vm->description));
		vm->autostart = sqlite3_column_int(s, 6) != 0;
		store_col_text(s, 7, buf, sizeof(buf));
		model_restart_policy_parse(buf, &vm->restart_policy);
		store_col_text(s, 8, buf, sizeof(buf));
		model_firmware_parse(buf, &vm->firmware);
		store_col_text(s, 9, vm->kernel, sizeof(vm->kernel));
		store_col_text(s, 10, vm->initrd, sizeof(vm->initrd));
		store_col_text(s, 11, vm->cmdline, sizeof(vm->cmdline));
		vm->pid = (pid_t)sqlite3_column_int(s, 12);
		store_col_text(s, 13, vm->crash_reason, sizeof(vm->crash_reason));
		store_col_text(s, 14, vm->task, sizeof(vm->task));
		store_col_text(s, 15, vm->created_at, sizeof(vm->created_at));
		store_col_text(s, 16, vm->updated_at, sizeof(vm->updated_at));
		store_col_text(s, 17, vm->project, sizeof(vm->project));
		int64_t p = sqlite3_column_int64(s, 18);
		vm->priority = p >= 0 && p <= MODEL_PRIORITY_MAX ? (unsigned)p : MODEL_PRIORITY_DEFAULT;
	}
	for (size_t i = 0; has_disks && i < cnt; i++)
		if ((r = store_vm_load_disks(st, &v[i])) < 0)
			goto out;
	for (size_t i = 0; has_nics && i < cnt; i++)
		if ((r = store_vm_load_nics(st, &v[i])) < 0)
			goto out;
	*out = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	free(v);
	return r;
}

int store_image_put(struct store *st, const struct image_record *img)
{
	pthread_mutex_lock(&st->lock);
	int r = store_run(st,
			  "INSERT OR REPLACE INTO images (name, format, source_format, size_bytes,"
			  " virtual_size_bytes, sha256, source_path, path, state, task, created_at)"
			  " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
			  "tttiittttnt", img->name, img->format, img->source_format,
			  (int64_t)img->size_bytes, (int64_t)img->virtual_size_bytes, img->sha256,
			  img->source_path, img->path, model_image_state_name(img->state), img->task,
			  img->created_at);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_image_delete(struct store *st, const char *name)
{
	pthread_mutex_lock(&st->lock);
	int r = store_run(st, "DELETE FROM images WHERE name = ?", "t", name);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_image_list(struct store *st, struct image_record **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct image_record *v = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db,
			       "SELECT name, format, source_format, size_bytes, virtual_size_bytes,"
			       " sha256, source_path, path, state, task, created_at FROM images"
			       " ORDER BY name",
			       -1, &s, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct image_record *img = store_row_slot((void **)&v, &cnt, &cap, sizeof(*v));
		if (!img) {
			r = -ENOMEM;
			goto out;
		}
		char buf[32];
		store_col_text(s, 0, img->name, sizeof(img->name));
		store_col_text(s, 1, img->format, sizeof(img->format));
		store_col_text(s, 2, img->source_format, sizeof(img->source_format));
		img->size_bytes = (uint64_t)sqlite3_column_int64(s, 3);
		img->virtual_size_bytes = (uint64_t)sqlite3_column_int64(s, 4);
		store_col_text(s, 5, img->sha256, sizeof(img->sha256));
		store_col_text(s, 6, img->source_path, sizeof(img->source_path));
		store_col_text(s, 7, img->path, sizeof(img->path));
		store_col_text(s, 8, buf, sizeof(buf));
		model_image_state_parse(buf, &img->state);
		store_col_text(s, 9, img->task, sizeof(img->task));
		store_col_text(s, 10, img->created_at, sizeof(img->created_at));
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	free(v);
	return r;
}

int store_task_put(struct store *st, const struct task_record *t)
{
	pthread_mutex_lock(&st->lock);
	int r = store_run(st,
			  "INSERT OR REPLACE INTO tasks (id, kind, target, state, progress, message,"
			  " error, created_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?)",
			  "ttttitntn", t->id, model_task_kind_name(t->kind), t->target,
			  model_task_state_name(t->state), (int64_t)t->progress, t->message, t->error,
			  t->created_at, t->finished_at);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_task_list(struct store *st, struct task_record **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct task_record *v = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db,
			       "SELECT id, kind, target, state, progress, message, error, created_at,"
			       " finished_at FROM tasks ORDER BY created_at DESC, rowid DESC",
			       -1, &s, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct task_record *t = store_row_slot((void **)&v, &cnt, &cap, sizeof(*v));
		if (!t) {
			r = -ENOMEM;
			goto out;
		}
		char buf[32];
		store_col_text(s, 0, t->id, sizeof(t->id));
		store_col_text(s, 1, buf, sizeof(buf));
		model_task_kind_parse(buf, &t->kind);
		store_col_text(s, 2, t->target, sizeof(t->target));
		store_col_text(s, 3, buf, sizeof(buf));
		model_task_state_parse(buf, &t->state);
		t->progress = sqlite3_column_int(s, 4);
		store_col_text(s, 5, t->message, sizeof(t->message));
		store_col_text(s, 6, t->error, sizeof(t->error));
		store_col_text(s, 7, t->created_at, sizeof(t->created_at));
		store_col_text(s, 8, t->finished_at, sizeof(t->finished_at));
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	free(v);
	return r;
}

int store_setting_get(struct store *st, const char *key, char **value)
{
	sqlite3_stmt *s = NULL;
	int r = -ENOENT;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT value FROM settings WHERE key = ?", -1, &s, NULL) !=
	    SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*value = strdup((const char *)sqlite3_column_text(s, 0));
		r = *value ? 0 : -ENOMEM;
	}
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_setting_put(struct store *st, const char *key, const char *value)
{
	pthread_mutex_lock(&st->lock);
	int r = store_run(st, "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", "tt",
			  key, value);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* ---- tokens (auth.c) ---- */

static void store_token_row(sqlite3_stmt *s, struct token_record *t)
{
	char role[16];
	memset(t, 0, sizeof(*t));
	store_col_text(s, 0, t->id, sizeof(t->id));
	store_col_text(s, 1, t->name, sizeof(t->name));
	store_col_text(s, 2, role, sizeof(role));
	if (auth_role_parse(role, &t->role) < 0)
		t->role = AUTH_ROLE_VIEWER; /* never more than the least */
	store_col_text(s, 3, t->project, sizeof(t->project));
	store_col_text(s, 4, t->hash, sizeof(t->hash));
	t->created = sqlite3_column_int64(s, 5);
	t->expires = sqlite3_column_int64(s, 6);
	t->last_used = sqlite3_column_int64(s, 7);
	t->revoked = sqlite3_column_int64(s, 8);
}

#define STORE_TOKEN_COLS "id, name, role, project, hash, created, expires, last_used, revoked"

int store_token_insert(struct store *st, const struct token_record *t)
{
	sqlite3_stmt *s = NULL;
	int r = 0;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db,
			       "INSERT INTO tokens (" STORE_TOKEN_COLS ") VALUES (?,?,?,?,?,?,?,NULL,NULL)",
			       -1, &s, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, t->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, t->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, auth_role_name(t->role), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, t->project, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, t->hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 6, t->created);
	if (t->expires)
		sqlite3_bind_int64(s, 7, t->expires);
	else
		sqlite3_bind_null(s, 7);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT) {
		r = -EEXIST; /* the name (or, at 2^-64, the id) is taken */
	} else if (rc != SQLITE_DONE) {
		log_error("store: cannot insert token: %s", sqlite3_errmsg(st->db));
		r = -EIO;
	}
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_token_get(struct store *st, const char *id, struct token_record *out)
{
	sqlite3_stmt *s = NULL;
	int r = -ENOENT;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT " STORE_TOKEN_COLS " FROM tokens WHERE id = ?", -1,
			       &s, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW) {
		store_token_row(s, out);
		r = 0;
	}
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_token_list(struct store *st, struct token_record **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct token_record *v = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT " STORE_TOKEN_COLS " FROM tokens ORDER BY name", -1,
			       &s, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct token_record *t = store_row_slot((void **)&v, &cnt, &cap, sizeof(*v));
		if (!t) {
			r = -ENOMEM;
			goto out;
		}
		store_token_row(s, t);
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	free(v);
	return r;
}

int store_token_revoke(struct store *st, const char *id, int64_t when)
{
	sqlite3_stmt *s = NULL;
	int r = 0;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT revoked FROM tokens WHERE id = ?", -1, &s, NULL) !=
	    SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_ROW)
		r = -ENOENT;
	else if (sqlite3_column_type(s, 0) != SQLITE_NULL)
		r = -EALREADY;
	sqlite3_finalize(s);
	s = NULL;
	if (r == 0)
		r = store_run(st, "UPDATE tokens SET revoked = ? WHERE id = ?", "it", when, id);
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_token_touch(struct store *st, const char *id, int64_t now)
{
	pthread_mutex_lock(&st->lock);
	/* At most one write a minute per token: last_used is for people
	 * reading the list, not an access log (that is the audit log). */
	int r = store_run(st,
			  "UPDATE tokens SET last_used = ? WHERE id = ? AND"
			  " (last_used IS NULL OR last_used < ? - 60)",
			  "iti", now, id, now);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* Quotas are NULL in the table when unlimited. */
static void store_bind_quota(sqlite3_stmt *s, int col, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(s, col);
	else
		sqlite3_bind_int64(s, col, v);
}

static int64_t store_col_quota(sqlite3_stmt *s, int col)
{
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return MODEL_QUOTA_UNLIMITED;
	return sqlite3_column_int64(s, col);
}

int store_project_put(struct store *st, const struct project_record *p)
{
	sqlite3_stmt *s = NULL;
	int r = 0;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db,
			       "INSERT OR REPLACE INTO projects (name, description, max_vms, max_vcpus,"
			       " max_memory_mib, max_disk_gib, created_at, updated_at)"
			       " VALUES (?,?,?,?,?,?,?,?)",
			       -1, &s, NULL) != SQLITE_OK) {
		log_error("store: cannot prepare statement: %s", sqlite3_errmsg(st->db));
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, p->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, p->description, -1, SQLITE_TRANSIENT);
	store_bind_quota(s, 3, p->max_vms);
	store_bind_quota(s, 4, p->max_vcpus);
	store_bind_quota(s, 5, p->max_memory_mib);
	store_bind_quota(s, 6, p->max_disk_gib);
	sqlite3_bind_text(s, 7, p->created_at, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 8, p->updated_at, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_DONE) {
		log_error("store: write failed: %s", sqlite3_errmsg(st->db));
		r = -EIO;
	}
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_project_delete(struct store *st, const char *name)
{
	pthread_mutex_lock(&st->lock);
	int r = store_run(st, "DELETE FROM projects WHERE name = ?", "t", name);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_project_list(struct store *st, struct project_record **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct project_record *v = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db,
			       "SELECT name, description, max_vms, max_vcpus, max_memory_mib,"
			       " max_disk_gib, created_at, updated_at FROM projects ORDER BY name",
			       -1, &s, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct project_record *p = store_row_slot((void **)&v, &cnt, &cap, sizeof(*v));
		if (!p) {
			r = -ENOMEM;
			goto out;
		}
		store_col_text(s, 0, p->name, sizeof(p->name));
		store_col_text(s, 1, p->description, sizeof(p->description));
		p->max_vms = store_col_quota(s, 2);
		p->max_vcpus = store_col_quota(s, 3);
		p->max_memory_mib = store_col_quota(s, 4);
		p->max_disk_gib = store_col_quota(s, 5);
		store_col_text(s, 6, p->created_at, sizeof(p->created_at));
		store_col_text(s, 7, p->updated_at, sizeof(p->updated_at));
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	free(v);
	return r;
}

/* Documents (networks, firewalls): the table name is one of a fixed list,
 * never a client's string, because it is pasted into the SQL. */
static const char *store_doc_table(const char *table)
{
	if (strcmp(table, "networks") == 0)
		return "networks";
	if (strcmp(table, "firewalls") == 0)
		return "firewalls";
	return NULL;
}

int store_doc_put(struct store *st, const char *table, const char *name, const char *body)
{
	char sql[128];
	const char *t = store_doc_table(table);
	if (!t)
		return -EINVAL;
	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO %s (name, body) VALUES (?,?)", t);
	pthread_mutex_lock(&st->lock);
	int r = store_run(st, sql, "tt", name, body);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_doc_delete(struct store *st, const char *table, const char *name)
{
	char sql[128];
	const char *t = store_doc_table(table);
	if (!t)
		return -EINVAL;
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE name = ?", t);
	pthread_mutex_lock(&st->lock);
	int r = store_run(st, sql, "t", name);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_doc_list(struct store *st, const char *table, char ***bodies, size_t *n)
{
	char sql[128];
	sqlite3_stmt *s = NULL;
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;
	const char *t = store_doc_table(table);
	if (!t)
		return -EINVAL;
	snprintf(sql, sizeof(sql), "SELECT body FROM %s ORDER BY name", t);
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		char **slot = store_row_slot((void **)&v, &cnt, &cap, sizeof(*v));
		const unsigned char *txt = sqlite3_column_text(s, 0);
		if (!slot || !(*slot = strdup(txt ? (const char *)txt : "{}"))) {
			r = -ENOMEM;
			goto out;
		}
	}
	*bodies = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	for (size_t i = 0; v && i < cnt; i++)
		free(v[i]);
	free(v);
	return r;
}

int store_protection_put(struct store *st, const char *kind, const char *key, const char *vm,
			 const json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	pthread_mutex_lock(&st->lock);
	int r = store_run(st, "INSERT OR REPLACE INTO protection (kind, key, vm, body) VALUES (?,?,?,?)",
			  "tttt", kind, key, vm, text);
	pthread_mutex_unlock(&st->lock);
	free(text);
	return r;
}

int store_protection_delete(struct store *st, const char *kind, const char *key)
{
	pthread_mutex_lock(&st->lock);
	int r = store_run(st, "DELETE FROM protection WHERE kind = ? AND key = ?", "tt", kind, key);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_protection_list(struct store *st, const char *kind, const char *vm, json_t **out)
{
	sqlite3_stmt *s = NULL;
	json_t *arr = json_array();
	int r = 0;
	pthread_mutex_lock(&st->lock);
	if (!arr || sqlite3_prepare_v2(st->db,
				       vm ? "SELECT body FROM protection WHERE kind = ? AND vm = ?"
					    " ORDER BY rowid" :
					    "SELECT body FROM protection WHERE kind = ? ORDER BY rowid",
				       -1, &s, NULL) != SQLITE_OK) {
		r = arr ? -EIO : -ENOMEM;
		goto out;
	}
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_TRANSIENT);
	if (vm)
		sqlite3_bind_text(s, 2, vm, -1, SQLITE_TRANSIENT);
	while (sqlite3_step(s) == SQLITE_ROW) {
		json_t *doc = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
		if (doc)
			json_array_append_new(arr, doc);
	}
	*out = arr;
	arr = NULL;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	json_decref(arr);
	return r;
}
