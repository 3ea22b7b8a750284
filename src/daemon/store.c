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

/* Prepare sql and bind its parameters with a tiny format: 't' text, 'i'
 * int64, 'n' text that is NULL when empty, 'q' int64 that is NULL when
 * negative (quotas are NULL in the table when unlimited). */
static int store_prepare(struct store *st, const char *sql, sqlite3_stmt **out, const char *fmt,
			 va_list ap)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		log_error("store: cannot prepare statement: %s", sqlite3_errmsg(st->db));
		return -EIO;
	}
	for (int i = 0; fmt[i]; i++) {
		if (fmt[i] == 'i' || fmt[i] == 'q') {
			int64_t v = va_arg(ap, int64_t);
			if (fmt[i] == 'q' && v < 0)
				sqlite3_bind_null(s, i + 1);
			else
				sqlite3_bind_int64(s, i + 1, v);
		} else {
			const char *v = va_arg(ap, const char *);
			if (fmt[i] == 'n' && (!v || !*v))
				sqlite3_bind_null(s, i + 1);
			else
				sqlite3_bind_text(s, i + 1, v ? v : "", -1, SQLITE_TRANSIENT);
		}
	}
	*out = s;
	return 0;
}

/* Prepare, bind (see store_prepare) and step to completion. */
static int store_run(struct store *st, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *s = NULL;
	int r = 0;
	va_list ap;
	va_start(ap, fmt);
	r = store_prepare(st, sql, &s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return r;
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

/* Prepare, bind (see store_prepare) and hand every row to row(), which
 * returns < 0 to fail the query with that error, 0 for the next row, > 0 to
 * stop early without an error. Reading stops quietly at the first step that
 * yields no row, as every reader here always did. The caller holds st->lock. */
static int store_select(struct store *st, const char *sql,
			int (*row)(sqlite3_stmt *s, void *ctx), void *ctx, const char *fmt, ...)
{
	sqlite3_stmt *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = store_prepare(st, sql, &s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return r;
	while (sqlite3_step(s) == SQLITE_ROW)
		if ((r = row(s, ctx)) != 0)
			break;
	sqlite3_finalize(s);
	return r < 0 ? r : 0;
}

/* A growing array of records, each filled from one row by fill(). */
struct store_rows {
	void *v;
	size_t cnt, cap, elem;
	void (*fill)(sqlite3_stmt *s, void *rec);
};

static int store_rows_add(sqlite3_stmt *s, void *ctx)
{
	struct store_rows *rows = ctx;
	void *rec = store_row_slot(&rows->v, &rows->cnt, &rows->cap, rows->elem);
	if (!rec)
		return -ENOMEM;
	rows->fill(s, rec);
	return 0;
}

/* Every row of a parameterless query as an array of elem-byte records;
 * the caller holds st->lock and frees *out. */
static int store_list_rows(struct store *st, const char *sql, size_t elem,
			   void (*fill)(sqlite3_stmt *s, void *rec), void **out, size_t *n)
{
	struct store_rows rows = {.elem = elem, .fill = fill};
	int r = store_select(st, sql, store_rows_add, &rows, "");
	if (r < 0) {
		free(rows.v);
		return r;
	}
	*out = rows.v;
	*n = rows.cnt;
	return 0;
}

/* The same, taking st->lock for the query. */
static int store_list(struct store *st, const char *sql, size_t elem,
		      void (*fill)(sqlite3_stmt *s, void *rec), void **out, size_t *n)
{
	pthread_mutex_lock(&st->lock);
	int r = store_list_rows(st, sql, elem, fill, out, n);
	pthread_mutex_unlock(&st->lock);
	return r;
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

static int store_vm_disk_row(sqlite3_stmt *s, void *ctx)
{
	struct vm_record *vm = ctx;
	if (vm->nr_disks >= MODEL_MAX_DISKS)
		return 1;
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
	return 0;
}

static int store_vm_load_disks(struct store *st, struct vm_record *vm)
{
	vm->nr_disks = 0;
	return store_select(st,
			    "SELECT idx, image, clone, size_gib, size_bytes, format, path FROM disks"
			    " WHERE vm = ? ORDER BY idx",
			    store_vm_disk_row, vm, "t", vm->name);
}

static int store_vm_nic_row(sqlite3_stmt *s, void *ctx)
{
	struct vm_record *vm = ctx;
	if (vm->nr_nics >= MODEL_MAX_NICS)
		return 1;
	struct vm_nic *n = &vm->nics[vm->nr_nics++];
	n->index = (unsigned)sqlite3_column_int(s, 0);
	store_col_text(s, 1, n->network, sizeof(n->network));
	store_col_text(s, 2, n->mac, sizeof(n->mac));
	n->vlan = (unsigned)sqlite3_column_int(s, 3);
	store_col_text(s, 4, n->firewall, sizeof(n->firewall));
	n->rate_mbit = (unsigned)sqlite3_column_int(s, 5);
	store_col_text(s, 6, n->tap, sizeof(n->tap));
	return 0;
}

static int store_vm_load_nics(struct store *st, struct vm_record *vm)
{
	vm->nr_nics = 0;
	return store_select(st,
			    "SELECT idx, network, mac, vlan, firewall, rate_mbit, tap FROM nics"
			    " WHERE vm = ? ORDER BY idx",
			    store_vm_nic_row, vm, "t", vm->name);
}

static void store_vm_row(sqlite3_stmt *s, void *rec)
{
	struct vm_record *vm = rec;
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

int store_vm_list(struct store *st, struct vm_record **out, size_t *n)
{
	struct vm_record *v = NULL;
	size_t cnt = 0;
	int r;
	bool has_disks, has_nics;

	pthread_mutex_lock(&st->lock);
	has_disks = store_user_version(st) >= 2;
	has_nics = store_user_version(st) >= 5;
	r = store_list_rows(st,
			    "SELECT name, uuid, state, vcpus, memory_mib, description,"
			    " autostart, restart_policy, firmware, kernel, initrd, cmdline,"
			    " pid, crash_reason, task, created_at, updated_at, project,"
			    " priority FROM vms ORDER BY name",
			    sizeof(*v), store_vm_row, (void **)&v, &cnt);
	if (r < 0)
		goto out;
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

static void store_image_row(sqlite3_stmt *s, void *rec)
{
	struct image_record *img = rec;
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

int store_image_list(struct store *st, struct image_record **out, size_t *n)
{
	return store_list(st,
			  "SELECT name, format, source_format, size_bytes, virtual_size_bytes,"
			  " sha256, source_path, path, state, task, created_at FROM images"
			  " ORDER BY name",
			  sizeof(**out), store_image_row, (void **)out, n);
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

static void store_task_row(sqlite3_stmt *s, void *rec)
{
	struct task_record *t = rec;
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

int store_task_list(struct store *st, struct task_record **out, size_t *n)
{
	return store_list(st,
			  "SELECT id, kind, target, state, progress, message, error, created_at,"
			  " finished_at FROM tasks ORDER BY created_at DESC, rowid DESC",
			  sizeof(**out), store_task_row, (void **)out, n);
}

static int store_setting_row(sqlite3_stmt *s, void *ctx)
{
	char **value = ctx;
	*value = strdup((const char *)sqlite3_column_text(s, 0));
	return *value ? 1 : -ENOMEM;
}

int store_setting_get(struct store *st, const char *key, char **value)
{
	char *v = NULL;
	pthread_mutex_lock(&st->lock);
	int r = store_select(st, "SELECT value FROM settings WHERE key = ?", store_setting_row, &v,
			     "t", key);
	pthread_mutex_unlock(&st->lock);
	if (r == 0 && !v)
		r = -ENOENT;
	if (r == 0)
		*value = v;
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

static void store_token_row(sqlite3_stmt *s, void *rec)
{
	struct token_record *t = rec;
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

static int store_token_get_row(sqlite3_stmt *s, void *ctx)
{
	store_token_row(s, ctx);
	return 1;
}

int store_token_get(struct store *st, const char *id, struct token_record *out)
{
	pthread_mutex_lock(&st->lock);
	out->id[0] = '\0';
	int r = store_select(st, "SELECT " STORE_TOKEN_COLS " FROM tokens WHERE id = ?",
			     store_token_get_row, out, "t", id);
	pthread_mutex_unlock(&st->lock);
	if (r == 0 && !out->id[0])
		r = -ENOENT;
	return r;
}

int store_token_list(struct store *st, struct token_record **out, size_t *n)
{
	return store_list(st, "SELECT " STORE_TOKEN_COLS " FROM tokens ORDER BY name",
			  sizeof(**out), store_token_row, (void **)out, n);
}

static int store_token_revoked_row(sqlite3_stmt *s, void *ctx)
{
	int *state = ctx;
	*state = sqlite3_column_type(s, 0) != SQLITE_NULL ? -EALREADY : 0;
	return 1;
}

int store_token_revoke(struct store *st, const char *id, int64_t when)
{
	int state = -ENOENT;
	pthread_mutex_lock(&st->lock);
	int r = store_select(st, "SELECT revoked FROM tokens WHERE id = ?", store_token_revoked_row,
			     &state, "t", id);
	if (r == 0)
		r = state;
	if (r == 0)
		r = store_run(st, "UPDATE tokens SET revoked = ? WHERE id = ?", "it", when, id);
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

static int64_t store_col_quota(sqlite3_stmt *s, int col)
{
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return MODEL_QUOTA_UNLIMITED;
	return sqlite3_column_int64(s, col);
}

int store_project_put(struct store *st, const struct project_record *p)
{
	pthread_mutex_lock(&st->lock);
	int r = store_run(st,
			  "INSERT OR REPLACE INTO projects (name, description, max_vms, max_vcpus,"
			  " max_memory_mib, max_disk_gib, created_at, updated_at)"
			  " VALUES (?,?,?,?,?,?,?,?)",
			  "ttqqqqtt", p->name, p->description, p->max_vms, p->max_vcpus,
			  p->max_memory_mib, p->max_disk_gib, p->created_at, p->updated_at);
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

static void store_project_row(sqlite3_stmt *s, void *rec)
{
	struct project_record *p = rec;
	store_col_text(s, 0, p->name, sizeof(p->name));
	store_col_text(s, 1, p->description, sizeof(p->description));
	p->max_vms = store_col_quota(s, 2);
	p->max_vcpus = store_col_quota(s, 3);
	p->max_memory_mib = store_col_quota(s, 4);
	p->max_disk_gib = store_col_quota(s, 5);
	store_col_text(s, 6, p->created_at, sizeof(p->created_at));
	store_col_text(s, 7, p->updated_at, sizeof(p->updated_at));
}

int store_project_list(struct store *st, struct project_record **out, size_t *n)
{
	return store_list(st,
			  "SELECT name, description, max_vms, max_vcpus, max_memory_mib,"
			  " max_disk_gib, created_at, updated_at FROM projects ORDER BY name",
			  sizeof(**out), store_project_row, (void **)out, n);
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

static int store_doc_row(sqlite3_stmt *s, void *ctx)
{
	struct store_rows *rows = ctx;
	char **slot = store_row_slot(&rows->v, &rows->cnt, &rows->cap, sizeof(char *));
	const unsigned char *txt = sqlite3_column_text(s, 0);
	if (!slot || !(*slot = strdup(txt ? (const char *)txt : "{}")))
		return -ENOMEM;
	return 0;
}

int store_doc_list(struct store *st, const char *table, char ***bodies, size_t *n)
{
	char sql[128];
	struct store_rows rows = {0};
	const char *t = store_doc_table(table);
	if (!t)
		return -EINVAL;
	snprintf(sql, sizeof(sql), "SELECT body FROM %s ORDER BY name", t);
	pthread_mutex_lock(&st->lock);
	int r = store_select(st, sql, store_doc_row, &rows, "");
	pthread_mutex_unlock(&st->lock);
	char **v = rows.v;
	if (r < 0) {
		/* the slot that failed its strdup() holds NULL; free(NULL) is fine */
		for (size_t i = 0; i < rows.cnt; i++)
			free(v[i]);
		free(v);
		return r;
	}
	*bodies = v;
	*n = rows.cnt;
	return 0;
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

static int store_protection_row(sqlite3_stmt *s, void *ctx)
{
	json_t *doc = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
	if (doc)
		json_array_append_new(ctx, doc);
	return 0;
}

int store_protection_list(struct store *st, const char *kind, const char *vm, json_t **out)
{
	json_t *arr = json_array();
	if (!arr)
		return -ENOMEM;
	pthread_mutex_lock(&st->lock);
	int r = vm ? store_select(st,
				  "SELECT body FROM protection WHERE kind = ? AND vm = ?"
				  " ORDER BY rowid",
				  store_protection_row, arr, "tt", kind, vm) :
		     store_select(st, "SELECT body FROM protection WHERE kind = ? ORDER BY rowid",
				  store_protection_row, arr, "t", kind);
	pthread_mutex_unlock(&st->lock);
	if (r < 0) {
		json_decref(arr);
		return r;
	}
	*out = arr;
	return 0;
}
