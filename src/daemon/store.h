/* store: vesseld's persistent state in SQLite (DATA_DIR/vessel.db, WAL):
 * tables vms, disks, images, tasks, projects, settings and tokens. The schema is versioned
 * with PRAGMA user_version and upgraded by an ordered list of migrations;
 * a database written by a newer vesseld is refused rather than guessed at.
 * One connection guarded by a mutex: writes are rare (state changes), reads
 * for the API come from the daemon's in-memory cache, not from here. */
#ifndef VESSEL_DAEMON_STORE_H
#define VESSEL_DAEMON_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/model.h"

#define STORE_ERR_MAX 512

struct store;

/* The schema version this binary writes (the number of migrations). */
int store_schema_latest(void);

/* Open (creating if needed) and migrate to the latest schema. On failure
 * returns a negative errno and a sentence in err; -EPROTO when the database
 * is newer than this binary. */
int store_open(const char *path, struct store **out, char err[STORE_ERR_MAX]);
/* Same, but migrate only up to `version` (tests build old databases). */
int store_open_version(const char *path, int version, struct store **out,
		       char err[STORE_ERR_MAX]);
void store_free(struct store *st);
int store_schema_version(struct store *st);

int store_vm_put(struct store *st, const struct vm_record *vm);
int store_vm_delete(struct store *st, const char *name);
/* All VMs sorted by name; *out is malloc'd (free it). */
int store_vm_list(struct store *st, struct vm_record **out, size_t *n);

int store_image_put(struct store *st, const struct image_record *img);
int store_image_delete(struct store *st, const char *name);
int store_image_list(struct store *st, struct image_record **out, size_t *n);

int store_task_put(struct store *st, const struct task_record *t);
/* Newest first. */
int store_task_list(struct store *st, struct task_record **out, size_t *n);

int store_project_put(struct store *st, const struct project_record *p);
int store_project_delete(struct store *st, const char *name);
/* All projects sorted by name; *out is malloc'd. */
int store_project_list(struct store *st, struct project_record **out, size_t *n);

/* *value is malloc'd; -ENOENT when the key is not set. */
int store_setting_get(struct store *st, const char *key, char **value);
int store_setting_put(struct store *st, const char *key, const char *value);

/* JSON documents by name in table "networks" or "firewalls". list gives
 * the bodies sorted by name; free each and the array. */
int store_doc_put(struct store *st, const char *table, const char *name, const char *body);
int store_doc_delete(struct store *st, const char *table, const char *name);
int store_doc_list(struct store *st, const char *table, char ***bodies, size_t *n);
/* API tokens (struct token_record in auth.h). insert: -EEXIST when the
 * name is taken; get: -ENOENT; revoke: -ENOENT, or -EALREADY when it was
 * revoked before; touch records the last use (at most once a minute). */
struct token_record;
int store_token_insert(struct store *st, const struct token_record *t);
int store_token_get(struct store *st, const char *id, struct token_record *out);
/* Sorted by name; *out is malloc'd (free it). */
int store_token_list(struct store *st, struct token_record **out, size_t *n);
int store_token_revoke(struct store *st, const char *id, int64_t when);
int store_token_touch(struct store *st, const char *id, int64_t now);
/* JSON documents of snapshots, schedules and drills (table protection):
 * kind "snapshot" | "schedule" | "drill", key unique within the kind, vm
 * the VM it belongs to. list: bodies in insertion order, vm NULL = all. */
int store_protection_put(struct store *st, const char *kind, const char *key, const char *vm,
			 const json_t *body);
int store_protection_delete(struct store *st, const char *kind, const char *key);
int store_protection_list(struct store *st, const char *kind, const char *vm, json_t **out);

#endif
