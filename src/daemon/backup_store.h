/* backup_store: the on-disk backup store (docs/backups.md "Store layout"):
 * content-addressed chunks and per-backup manifests, and the checks that
 * read them back. No QEMU and no daemon state here, so the unit tests
 * drive it on a temporary directory.
 *
 *   STORE/chunks/ab/abcdef...   one chunk, named by its SHA-256
 *   STORE/backups/ID/manifest.json
 *   STORE/tmp/                  work files of running backups
 *
 * A chunk is written to a temporary name, flushed and renamed, and a
 * manifest is written last the same way, so a backup that fails half-way
 * never has a manifest: only complete backups are ever listed. */
#ifndef VESSEL_DAEMON_BACKUP_STORE_H
#define VESSEL_DAEMON_BACKUP_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BACKUP_CHUNK_SIZE (4u * 1024u * 1024u)
#define BACKUP_FORMAT "vessel-backup-1"
#define BACKUP_ERR_MAX 512

void backup_store_sha256(const void *data, size_t len, char hex[65]);

/* Store one chunk (len <= BACKUP_CHUNK_SIZE); *added says whether it was
 * new (false = the same content was stored before). */
int backup_store_chunk_put(const char *store, const void *data, size_t len, char hex[65],
			   bool *added);
/* Read chunk hex into buf and check its SHA-256: -ENOENT when missing,
 * -EBADMSG when the content does not match its name. */
int backup_store_chunk_get(const char *store, const char *hex, void *buf, size_t cap,
			   size_t *len);

/* Check a manifest's shape: format, chunk_size, and per disk a size, a
 * whole-disk sha256 and exactly ceil(size / chunk_size) chunk hashes. */
int backup_store_manifest_check(const json_t *m, char err[BACKUP_ERR_MAX]);
int backup_store_manifest_load(const char *store, const char *id, json_t **out,
			       char err[BACKUP_ERR_MAX]);
int backup_store_manifest_save(const char *store, const char *id, const json_t *m);
/* IDs of all complete backups (those with a manifest), sorted. */
int backup_store_list(const char *store, json_t **ids);

/* Where a check failed: disk index, chunk index (-1 = the whole-disk
 * hash), the chunk's name and what was wrong. */
struct backup_bad {
	int disk;
	long chunk;
	char hex[65];
	char reason[160];
};

typedef void backup_store_progress_fn(void *opaque, uint64_t done, uint64_t total);

/* Re-read every chunk of every disk and the whole-disk hashes. Returns 0,
 * -EBADMSG with *bad filled for the first bad chunk, or another error. */
int backup_store_verify(const char *store, const json_t *m, struct backup_bad *bad);
/* Write disk `disk` of a backup into fd (a raw image, already sized),
 * checking every chunk and the whole-disk hash on the way; -EBADMSG with
 * *bad as for verify. Zero chunks are skipped (the file stays sparse). */
int backup_store_disk_write(const char *store, const json_t *m, unsigned disk, int fd,
			    backup_store_progress_fn *progress, void *opaque,
			    struct backup_bad *bad);

#endif
