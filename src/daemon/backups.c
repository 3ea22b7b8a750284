/* backups: full and incremental VM backups into the backup store, verify,
 * restore (to a new VM or over a stopped one) and restore drills
 * (docs/backups.md).
 *
 * A backup of a running VM is a QEMU backup job per disk (engine
 * disk_backup: copy-before-write, so the copy is the disk as of the job's
 * start while the guest keeps running) into a qcow2 work file in
 * STORE/tmp. The first backup of a chain copies everything and starts a
 * persistent dirty bitmap in the same QMP transaction; later ones copy
 * only what the bitmap marks. vesseld then cuts the work file into 4 MiB
 * chunks: `qemu-img map` says which ranges QEMU wrote, `qemu-img convert`
 * turns it into a sparse raw file to read them from, and chunks the
 * incremental did not touch are taken from the parent's manifest. A
 * stopped VM is read with qemu-img directly (always a full read; chunks
 * that are already stored are not written again). The manifest is written
 * last, so a failed backup leaves no backup behind, only unreferenced
 * chunks that the next delete collects.
 *
 * The live bitmap belongs to one chain: the per-VM document "backup_chain"
 * names the full backup whose bitmap QEMU holds. It is set before a full
 * backup starts, so after a failed full no incremental builds on a bitmap
 * that no complete backup matches. One backup, restore or delete runs at a
 * time (backup_lock), so collecting chunks never races a writer. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "daemon/auth.h"
#include "daemon/backup_store.h"
#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/qemu_img.h"
#include "daemon/retention.h"
#include "daemon/store.h"
#include "lib/util.h"

#define BACKUP_BITMAP "vessel-backup"
#define CHAIN_KIND "backup_chain"
#define DRILL_KIND "drill"

static pthread_mutex_t backup_lock = PTHREAD_MUTEX_INITIALIZER;

static void backup_store_dir(struct daemon *d, char *out, size_t cap)
{
	if (d->cfg.backup_store[0])
		snprintf(out, cap, "%s", d->cfg.backup_store);
	else
		daemon_path(d, out, cap, "backups");
}

/* Create the store's directories and prove it takes a write: a read-only
 * or full store is refused before any work starts. */
static int backup_store_ready(const char *store, struct daemon_err *e)
{
	char p[PATH_MAX + 32];
	const char *subdirs[] = {"", "/tmp", "/chunks", "/backups"};
	for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
		snprintf(p, sizeof(p), "%s%s", store, subdirs[i]);
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			goto fail;
	}
	snprintf(p, sizeof(p), "%s/tmp/probe", store);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	char block[4096] = {0};
	ssize_t n = write(fd, block, sizeof(block));
	int werr = n == (ssize_t)sizeof(block) ? 0 : (n < 0 ? errno : ENOSPC);
	if (werr == 0 && fsync(fd) < 0)
		werr = errno;
	close(fd);
	unlink(p);
	if (werr) {
		errno = werr;
		goto fail;
	}
	return 0;
fail:;
	int r = -errno;
	if (r == -EROFS)
		daemon_err_set(e, 409, "store_unavailable",
			       "the backup store %s is read-only; remount it read-write or start "
			       "vesseld with another --backup-store", store);
	else if (r == -ENOSPC || r == -EDQUOT)
		daemon_err_set(e, 409, "store_full",
			       "the backup store %s is full; free space there or delete old "
			       "backups", store);
	else
		daemon_err_set(e, 409, "store_unavailable",
			       "the backup store %s cannot be written (%s); check that it is "
			       "mounted and writable", store, strerror(-r));
	return r;
}

static const char *backup_errno_text(int r, const char *store, char *buf, size_t cap)
{
	if (r == -ENOSPC || r == -EDQUOT)
		snprintf(buf, cap, "the backup store %s is full; free space there or delete old "
				   "backups", store);
	else if (r == -EROFS)
		snprintf(buf, cap, "the backup store %s became read-only", store);
	else
		snprintf(buf, cap, "%s", strerror(-r));
	return buf;
}

/* A short summary of a manifest for the API (no chunk lists). */
static json_t *backup_summary(const json_t *m)
{
	json_t *j = json_object(), *disks = json_array(), *dk;
	static const char *const keys[] = {"id", "vm", "kind", "parent", "chain", "created_at",
					   "data_time", "bytes_copied", "bytes_new",
					   "disk_bytes", "duration_s", "fallback_reason"};
	size_t i;
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(m, keys[i]);
		if (v)
			json_object_set(j, keys[i], v);
	}
	json_array_foreach(json_object_get(m, "disks"), i, dk) {
		json_array_append_new(
			disks, json_pack("{s:O,s:O,s:I,s:O,s:O}", "index", json_object_get(dk, "index"),
					 "size", json_object_get(dk, "size"), "chunks",
					 (json_int_t)json_array_size(json_object_get(dk, "chunks")),
					 "changed_chunks", json_object_get(dk, "changed_chunks"),
					 "sha256", json_object_get(dk, "sha256")));
	}
	json_object_set_new(j, "disks", disks);
	return j;
}

/* All complete manifests, oldest first (ids sort by time). */
static json_t *backup_manifests(const char *store, const char *vm)
{
	json_t *ids = NULL, *out = json_array(), *id;
	size_t i;
	if (backup_store_list(store, &ids) < 0)
		return out;
	json_array_foreach(ids, i, id) {
		json_t *m = NULL;
		char err[BACKUP_ERR_MAX];
		if (backup_store_manifest_load(store, json_string_value(id), &m, err) < 0)
			continue;
		const char *mvm = json_string_value(json_object_get(m, "vm"));
		if (!vm || (mvm && strcmp(mvm, vm) == 0))
			json_array_append(out, m);
		json_decref(m);
	}
	json_decref(ids);
	return out;
}

/* Remove the files in dir (work files left by a vesseld that stopped in
 * the middle of a backup or restore); returns how many. Files written in
 * the last 10 minutes are left alone: a store on NFS may be shared, and
 * another host's running backup keeps its work files fresh. */
static unsigned backup_clear_dir(const char *dir)
{
	time_t now = time(NULL);
	unsigned n = 0;
	DIR *dd = opendir(dir);
	if (!dd)
		return 0;
	struct dirent *de;
	while ((de = readdir(dd))) {
		char p[PATH_MAX + 300];
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		struct stat st;
		if (stat(p, &st) == 0 && now - st.st_mtime < 600)
			continue;
		if (unlink(p) == 0)
			n++;
	}
	closedir(dd);
	return n;
}

void backups_startup_cleanup(struct daemon *d)
{
	char store[PATH_MAX], dir[PATH_MAX + 16];
	backup_store_dir(d, store, sizeof(store));
	snprintf(dir, sizeof(dir), "%s/tmp", store);
	unsigned a = backup_clear_dir(dir);
	daemon_path(d, dir, sizeof(dir), "restore");
	unsigned b = backup_clear_dir(dir);
	if (a || b)
		log_info("removed %u work file(s) of backups and %u of restores that an earlier "
			 "vesseld left unfinished", a, b);
}

json_t *backups_of_vm(struct daemon *d, const char *vm)
{
	char store[PATH_MAX];
	backup_store_dir(d, store, sizeof(store));
	json_t *ms = backup_manifests(store, vm), *ids = json_array(), *m;
	size_t i;
	json_array_foreach(ms, i, m)
		json_array_append(ids, json_object_get(m, "id"));
	json_decref(ms);
	return ids;
}

/* Delete chunks no manifest names (backup_lock held). */
static void backup_gc(const char *store)
{
	json_t *ms = backup_manifests(store, NULL), *m, *dk, *c;
	json_t *live = json_object();
	size_t i, k, n;
	json_array_foreach(ms, i, m)
		json_array_foreach(json_object_get(m, "disks"), k, dk)
			json_array_foreach(json_object_get(dk, "chunks"), n, c)
				json_object_set(live, json_string_value(c), json_true());
	char dir[PATH_MAX + 16];
	unsigned removed = 0;
	for (int a = 0; a < 256; a++) {
		snprintf(dir, sizeof(dir), "%s/chunks/%02x", store, a);
		DIR *dd = opendir(dir);
		if (!dd)
			continue;
		struct dirent *de;
		while ((de = readdir(dd))) {
			if (de->d_name[0] == '.' || json_object_get(live, de->d_name))
				continue;
			char p[PATH_MAX + 300];
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			if (unlink(p) == 0)
				removed++;
		}
		closedir(dd);
	}
	if (removed)
		log_info("backup store %s: removed %u chunks no backup uses", store, removed);
	json_decref(live);
	json_decref(ms);
}

static int backup_remove(const char *store, const char *id)
{
	char p[PATH_MAX + 128];
	snprintf(p, sizeof(p), "%s/backups/%s/manifest.json", store, id);
	if (unlink(p) < 0)
		return -errno;
	snprintf(p, sizeof(p), "%s/backups/%s", store, id);
	rmdir(p);
	return 0;
}

int backups_delete_of_vm(struct daemon *d, const char *vm, struct daemon_err *e)
{
	char store[PATH_MAX];
	backup_store_dir(d, store, sizeof(store));
	pthread_mutex_lock(&backup_lock);
	json_t *ids = backups_of_vm(d, vm), *id;
	size_t i;
	int r = 0;
	json_array_foreach(ids, i, id) {
		if ((r = backup_remove(store, json_string_value(id))) < 0) {
			daemon_err_set(e, 500, "internal", "cannot delete backup %s from %s: %s",
				       json_string_value(id), store, strerror(-r));
			break;
		}
		log_info("backup %s of vm '%s' deleted with the VM", json_string_value(id), vm);
	}
	if (r == 0)
		backup_gc(store);
	pthread_mutex_unlock(&backup_lock);
	json_decref(ids);
	store_protection_delete(d->store, CHAIN_KIND, vm);
	return r;
}

/* ---- taking a backup ---------------------------------------------------- */

struct backup_job {
	struct daemon *d;
	struct vm *vm;
	char task[MODEL_TASK_ID_MAX];
	char id[64];
	char store[PATH_MAX];
	bool force_full;
};

struct backup_progress {
	struct daemon *d;
	const char *task;
	unsigned disk, nr_disks;
};

static void backup_job_progress(void *opaque, int pct)
{
	struct backup_progress *p = opaque;
	/* QEMU's copy is the first 70 %, chunking the rest. */
	task_progress(p->d, p->task, (int)((p->disk * 100 + (unsigned)pct) * 70 / 100 / p->nr_disks),
		      "copying the disks (QEMU backup job)");
}

/* Ranges QEMU wrote into the work file: `qemu-img map` entries that are
 * present in the top layer (depth 0). Returns a JSON array of [start,len]. */
static int backup_present(struct daemon *d, const char *path, json_t **out, char **err)
{
	char *text = NULL;
	const char *args[] = {"map", "--output=json", "-f", "qcow2", path, NULL};
	int r = qemu_img_run(d->cfg.qemu_img, args, NULL, NULL, &text, err);
	if (r < 0)
		return r;
	json_t *map = json_loads(text ? text : "", 0, NULL), *e;
	free(text);
	if (!json_is_array(map)) {
		json_decref(map);
		if (asprintf(err, "qemu-img map gave no JSON array for %s", path) < 0)
			*err = NULL;
		return -EIO;
	}
	json_t *ranges = json_array();
	size_t i;
	json_array_foreach(map, i, e) {
		json_t *present = json_object_get(e, "present");
		bool is_present = present ? json_is_true(present) :
					    json_is_true(json_object_get(e, "data"));
		if (is_present && json_integer_value(json_object_get(e, "depth")) == 0)
			json_array_append_new(ranges,
					      json_pack("[O,O]", json_object_get(e, "start"),
							json_object_get(e, "length")));
	}
	json_decref(map);
	*out = ranges;
	return 0;
}

static int backup_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			memset((char *)buf + done, 0, len - done); /* sparse tail */
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Cut one disk into chunks and hash the whole disk. raw: the disk's content
 * (full) or QEMU's incremental copy as raw; ranges: which bytes of raw
 * QEMU wrote (NULL = all are valid); parent: the parent manifest's entry
 * for this disk. Chunks an incremental did not touch are the parent's,
 * read back (and so checked) for the whole-disk hash. */
static int backup_chunk_disk(const char *store, const char *raw, uint64_t size, json_t *ranges,
			     const json_t *parent, json_t *disk, uint64_t *bytes_new, char **err)
{
	int fd = open(raw, O_RDONLY | O_CLOEXEC), r = 0;
	uint8_t *buf = malloc(BACKUP_CHUNK_SIZE), *pbuf = malloc(BACKUP_CHUNK_SIZE);
	json_t *chunks = json_array();
	uint64_t nchunks = (size + BACKUP_CHUNK_SIZE - 1) / BACKUP_CHUNK_SIZE, changed = 0;
	struct sha256_ctx whole;
	sha256_init(&whole);
	if (fd < 0 || !buf || !pbuf) {
		r = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (uint64_t c = 0; c < nchunks; c++) {
		uint64_t off = c * BACKUP_CHUNK_SIZE;
		size_t len = (size_t)MIN((uint64_t)BACKUP_CHUNK_SIZE, size - off);
		bool touched = !ranges;
		size_t i;
		json_t *rg;
		json_array_foreach(ranges, i, rg) {
			uint64_t s = (uint64_t)json_integer_value(json_array_get(rg, 0));
			uint64_t l = (uint64_t)json_integer_value(json_array_get(rg, 1));
			if (s < off + len && s + l > off)
				touched = true;
		}
		char hex[65];
		if (ranges) {
			/* Start from the parent's chunk; lay over it what QEMU
			 * copied (with the 4 MiB bitmap granularity that is the
			 * whole chunk, but nothing here relies on it). */
			size_t plen = 0;
			const char *ph = json_string_value(
				json_array_get(json_object_get(parent, "chunks"), c));
			r = backup_store_chunk_get(store, ph, buf, BACKUP_CHUNK_SIZE, &plen);
			if (r == 0 && plen != len)
				r = -EBADMSG;
			if (r < 0) {
				if (asprintf(err, "chunk %llu (%s) of the parent backup cannot be read "
						  "(%s); verify the parent or take a full backup",
					     (unsigned long long)c, ph ? ph : "?",
					     r == -EBADMSG ? "it is corrupt" : strerror(-r)) < 0)
					*err = NULL;
				goto out;
			}
			if (!touched) {
				sha256_update(&whole, len, buf);
				json_array_append_new(chunks, json_string(ph));
				continue;
			}
			if ((r = backup_pread_full(fd, pbuf, len, off)) < 0)
				goto out;
			json_array_foreach(ranges, i, rg) {
				uint64_t s = (uint64_t)json_integer_value(json_array_get(rg, 0));
				uint64_t l = (uint64_t)json_integer_value(json_array_get(rg, 1));
				uint64_t a = MAX(s, off), b = MIN(s + l, off + len);
				if (a < b)
					memcpy(buf + (a - off), pbuf + (a - off), b - a);
			}
		} else if ((r = backup_pread_full(fd, buf, len, off)) < 0) {
			goto out;
		}
		changed++;
		sha256_update(&whole, len, buf);
		bool added = false;
		if ((r = backup_store_chunk_put(store, buf, len, hex, &added)) < 0)
			goto out;
		if (added)
			*bytes_new += len;
		json_array_append_new(chunks, json_string(hex));
	}
	uint8_t dg[SHA256_DIGEST_SIZE];
	char hex[65];
	sha256_digest(&whole, sizeof(dg), dg);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dg[i]);
	json_object_set_new(disk, "sha256", json_string(hex));
	json_object_set(disk, "chunks", chunks);
	json_object_set_new(disk, "changed_chunks", json_integer((json_int_t)changed));
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(pbuf);
	json_decref(chunks);
	return r;
}

static void backup_set_chain(struct daemon *d, const char *vm, const char *chain)
{
	json_t *doc = json_pack("{s:s,s:s,s:s}", "id", vm, "vm", vm, "chain", chain);
	store_protection_put(d->store, CHAIN_KIND, vm, vm, doc);
	json_decref(doc);
}

/* Choose the parent of a new backup of r, or say in why (a sentence) why
 * this one must be full. */
static json_t *backup_pick_parent(struct daemon *d, const char *store, const struct vm_record *r,
				  bool live, bool force_full, char *why, size_t cap)
{
	json_t *ms = backup_manifests(store, r->name), *chain_doc = NULL, *parent = NULL;
	const char *live_chain = NULL;
	if (store_protection_list(d->store, CHAIN_KIND, r->name, &chain_doc) == 0)
		live_chain = json_string_value(json_object_get(json_array_get(chain_doc, 0), "chain"));
	size_t n = json_array_size(ms);
	json_t *cand = n ? json_array_get(ms, n - 1) : NULL;
	const char *cchain = cand ? json_string_value(json_object_get(cand, "chain")) : NULL;
	if (force_full)
		snprintf(why, cap, "a full backup was asked for");
	else if (!cand)
		snprintf(why, cap, "first backup of this VM");
	else if (!live)
		snprintf(why, cap, "the VM is not running, so no changes were tracked; read in full");
	else if (!live_chain || !cchain || strcmp(live_chain, cchain) != 0)
		snprintf(why, cap, "the last backup is not in the chain whose dirty bitmap QEMU holds");
	else if (json_array_size(json_object_get(cand, "disks")) != r->nr_disks)
		snprintf(why, cap, "the VM's disks changed since the last backup");
	else {
		for (unsigned i = 0; i < r->nr_disks; i++) {
			json_t *pd = json_array_get(json_object_get(cand, "disks"), i);
			const char *top = json_string_value(json_object_get(pd, "top"));
			if (!top || strcmp(top, r->disks[i].path) != 0)
				snprintf(why, cap, "disk %u moved to another file since the last "
						   "backup (a snapshot or revert)", i);
		}
	}
	if (!why[0])
		parent = json_incref(cand);
	json_decref(chain_doc);
	json_decref(ms);
	return parent;
}

static void backup_unlink_work(char (*q)[PATH_MAX + 64], char (*w)[PATH_MAX + 64])
{
	for (unsigned i = 0; i < MODEL_MAX_DISKS; i++) {
		if (q[i][0])
			unlink(q[i]);
		if (w[i][0])
			unlink(w[i]);
	}
}

/* Copy every disk into raw work files (live: QEMU backup jobs; stopped:
 * qemu-img convert). Fills disks[] with size, top and, for an incremental,
 * the ranges QEMU copied. op_lock is held for the live part so the VM is
 * not stopped under the job. */
static int backup_copy_disks(struct backup_job *job, struct vm_record *r, json_t **parent,
			     json_t *disks, char (*tmpq)[PATH_MAX + 64], char (*tmpr)[PATH_MAX + 64],
			     char *why, size_t why_cap, uint64_t *bytes_copied, char **err)
{
	struct daemon *d = job->d;
	struct vm *vm = job->vm;
	bool live = r->state == VM_STATE_RUNNING || r->state == VM_STATE_PAUSED;
	int ret = 0;
	if (live) {
		pthread_mutex_lock(&vm->op_lock);
		vm_snapshot(d, vm, r);
		if (!(r->state == VM_STATE_RUNNING || r->state == VM_STATE_PAUSED) || !vm->handle) {
			if (asprintf(err, "vm '%s' stopped before its backup started; retry",
				     r->name) < 0)
				*err = NULL;
			ret = -ESRCH;
			goto out;
		}
		if (!d->engine->ops->disk_backup) {
			if (asprintf(err, "the %s engine cannot back up a running VM; stop it first",
				     d->engine->name) < 0)
				*err = NULL;
			ret = -ENOTSUP;
			goto out;
		}
		if (!*parent)
			backup_set_chain(d, r->name, job->id);
	}
restart:
	json_array_clear(disks);
	*bytes_copied = 0;
	for (unsigned i = 0; i < r->nr_disks; i++) {
		json_t *disk = json_pack("{s:i,s:s}", "index", (int)i, "top", r->disks[i].path);
		struct qemu_img_info info;
		json_array_append_new(disks, disk);
		snprintf(tmpq[i], PATH_MAX + 64, "%.3900s/tmp/%s-d%u.qcow2", job->store, job->id, i);
		snprintf(tmpr[i], PATH_MAX + 64, "%.3900s/tmp/%s-d%u.raw", job->store, job->id, i);
		/* A disk QEMU has open cannot be inspected by qemu-img (image
		 * locking); its size is in the record. */
		memset(&info, 0, sizeof(info));
		info.virtual_size = r->disks[i].size_bytes;
		if (!live &&
		    (ret = qemu_img_info(d->cfg.qemu_img, r->disks[i].path, "qcow2", &info, err)) < 0)
			goto out;
		json_object_set_new(disk, "size", json_integer((json_int_t)info.virtual_size));
		if (!live) {
			const char *cargs[] = {"convert", "-f", "qcow2", "-O", "raw", r->disks[i].path,
					       tmpr[i], NULL};
			if ((ret = qemu_img_run(d->cfg.qemu_img, cargs, NULL, NULL, NULL, err)) < 0)
				goto out;
			*bytes_copied += info.virtual_size;
			json_object_set_new(disk, "bytes_copied",
					    json_integer((json_int_t)info.virtual_size));
			continue;
		}
		char size[32];
		snprintf(size, sizeof(size), "%llu", (unsigned long long)info.virtual_size);
		const char *args[] = {"create", "-q", "-f", "qcow2", tmpq[i], size, NULL};
		if ((ret = qemu_img_run(d->cfg.qemu_img, args, NULL, NULL, NULL, err)) < 0)
			goto out;
		struct backup_progress prog = {d, job->task, i, r->nr_disks};
		ret = d->engine->ops->disk_backup(vm->handle, i, tmpq[i], *parent != NULL,
						  BACKUP_BITMAP, backup_job_progress, &prog, err);
		if (ret == -ENOENT && *parent) {
			log_warn("vm '%s': incremental backup impossible (%s); taking a full one",
				 r->name, *err ? *err : "no bitmap");
			snprintf(why, why_cap, "QEMU has no usable dirty bitmap: %.180s",
				 *err ? *err : "");
			free(*err);
			*err = NULL;
			json_decref(*parent);
			*parent = NULL;
			backup_set_chain(d, r->name, job->id);
			backup_unlink_work(tmpq, tmpr);
			goto restart; /* all disks in one chain */
		}
		if (ret < 0)
			goto out;
		json_t *ranges = NULL;
		if ((ret = backup_present(d, tmpq[i], &ranges, err)) < 0)
			goto out;
		uint64_t copied = 0;
		size_t k;
		json_t *rg;
		json_array_foreach(ranges, k, rg)
			copied += (uint64_t)json_integer_value(json_array_get(rg, 1));
		*bytes_copied += copied;
		json_object_set_new(disk, "bytes_copied", json_integer((json_int_t)copied));
		json_object_set_new(disk, "ranges", ranges);
		const char *cargs[] = {"convert", "-f", "qcow2", "-O", "raw", tmpq[i], tmpr[i], NULL};
		if ((ret = qemu_img_run(d->cfg.qemu_img, cargs, NULL, NULL, NULL, err)) < 0)
			goto out;
		unlink(tmpq[i]);
	}
out:
	if (live)
		pthread_mutex_unlock(&vm->op_lock);
	return ret;
}

static void *backup_thread(void *arg)
{
	struct backup_job *job = arg;
	struct daemon *d = job->d;
	struct vm_record *r = malloc(sizeof(*r));
	json_t *parent = NULL, *m = NULL, *disks = json_array();
	char *err = NULL, errbuf[512];
	char (*tmpq)[PATH_MAX + 64] = calloc(MODEL_MAX_DISKS, sizeof(*tmpq));
	char (*tmpr)[PATH_MAX + 64] = calloc(MODEL_MAX_DISKS, sizeof(*tmpr));
	char data_time[32], created[32], why[256] = "";
	uint64_t bytes_copied = 0, bytes_new = 0, disk_bytes = 0, t0 = util_now_ns();
	int ret = 0;

	pthread_mutex_lock(&backup_lock);
	if (!r || !tmpq || !tmpr || !disks) {
		ret = -ENOMEM;
		goto out;
	}
	vm_snapshot(d, job->vm, r);
	bool live = r->state == VM_STATE_RUNNING || r->state == VM_STATE_PAUSED;
	parent = backup_pick_parent(d, job->store, r, live, job->force_full, why, sizeof(why));
	/* The data's point in time (for RPO): the QEMU job's start. */
	retention_time_format(retention_now(), data_time);
	task_progress(d, job->task, 1, parent ? "incremental backup" : "full backup");
	ret = backup_copy_disks(job, r, &parent, disks, tmpq, tmpr, why, sizeof(why),
				&bytes_copied, &err);
	if (ret < 0)
		goto out;
	task_progress(d, job->task, 70, "storing chunks");
	size_t i;
	json_t *disk;
	json_array_foreach(disks, i, disk) {
		json_t *pdisk = parent ? json_array_get(json_object_get(parent, "disks"), i) : NULL;
		uint64_t size = (uint64_t)json_integer_value(json_object_get(disk, "size"));
		disk_bytes += size;
		ret = backup_chunk_disk(job->store, tmpr[i], size,
					parent ? json_object_get(disk, "ranges") : NULL, pdisk, disk,
					&bytes_new, &err);
		if (ret < 0)
			goto out;
		json_object_del(disk, "ranges");
		unlink(tmpr[i]);
		task_progress(d, job->task, 70 + (int)((i + 1) * 25 / json_array_size(disks)),
			      "storing chunks");
	}
	retention_time_format(retention_now(), created);
	m = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:i,s:O,s:o,s:I,s:I,s:I,s:f}", "format",
		      BACKUP_FORMAT, "id", job->id, "vm", r->name, "kind",
		      parent ? "incremental" : "full", "parent",
		      parent ? json_incref(json_object_get(parent, "id")) : json_null(), "chain",
		      parent ? json_string_value(json_object_get(parent, "chain")) : job->id,
		      "created_at", created, "data_time", data_time, "chunk_size", BACKUP_CHUNK_SIZE,
		      "disks", disks, "vm_definition", vm_to_json(r), "bytes_copied",
		      (json_int_t)bytes_copied, "bytes_new", (json_int_t)bytes_new, "disk_bytes",
		      (json_int_t)disk_bytes, "duration_s", (double)(util_now_ns() - t0) / 1e9);
	if (!parent && why[0])
		json_object_set_new(m, "fallback_reason", json_string(why));
	if (!m) {
		ret = -ENOMEM;
		goto out;
	}
	if ((ret = backup_store_manifest_save(job->store, job->id, m)) < 0)
		goto out;
	log_info("vm '%s': %s backup %s stored in %s (%llu of %llu bytes copied, %llu new)",
		 r->name, parent ? "incremental" : "full", job->id, job->store,
		 (unsigned long long)bytes_copied, (unsigned long long)disk_bytes,
		 (unsigned long long)bytes_new);
out:
	if (tmpq && tmpr)
		backup_unlink_work(tmpq, tmpr);
	pthread_mutex_unlock(&backup_lock);
	if (ret < 0 && !err)
		err = strdup(backup_errno_text(ret, job->store, errbuf, sizeof(errbuf)));
	else if (ret == -ENOSPC || ret == -EROFS || ret == -EDQUOT) {
		free(err);
		err = strdup(backup_errno_text(ret, job->store, errbuf, sizeof(errbuf)));
	}
	if (ret < 0 && err && (strstr(err, "No space left") || strstr(err, "Read-only file"))) {
		char *full = NULL;
		if (asprintf(&full, "%s: %s", backup_errno_text(strstr(err, "No space") ? -ENOSPC :
											 -EROFS,
								 job->store, errbuf, sizeof(errbuf)),
			     err) >= 0) {
			free(err);
			err = full;
		}
	}
	if (ret < 0)
		log_warn("vm '%s': backup %s failed, nothing was kept: %s", job->vm->rec.name,
			 job->id, err ? err : "unknown error");
	task_finish(d, job->task, ret < 0 ? (err ? err : "the backup failed") : NULL);
	json_decref(parent);
	json_decref(m);
	json_decref(disks);
	free(tmpq);
	free(tmpr);
	free(err);
	free(r);
	vm_unref(d, job->vm);
	free(job);
	return NULL;
}

/* ---- restore ------------------------------------------------------------ */

struct restore_out {
	char path[MODEL_MAX_DISKS][PATH_MAX];
	uint64_t size[MODEL_MAX_DISKS];
	unsigned n;
};

struct restore_progress {
	struct daemon *d;
	const char *task;
	unsigned disk, nr;
	int lo, hi;
};

static void restore_progress_cb(void *opaque, uint64_t done, uint64_t total)
{
	struct restore_progress *p = opaque;
	if (!p->task || !total)
		return;
	int span = p->hi - p->lo;
	task_progress(p->d, p->task,
		      p->lo + (int)((p->disk * 100 + done * 100 / total) * (uint64_t)span / 100 /
				    p->nr),
		      "restoring disks (checking every chunk)");
}

/* Rebuild each disk of manifest m as a qcow2 file in DATA_DIR/restore,
 * checking every chunk and the whole-disk hash. On any failure nothing is
 * left. */
static int restore_build(struct daemon *d, const char *store, const json_t *m, const char *task,
			 int lo, int hi, struct restore_out *out, char **err)
{
	char dir[PATH_MAX], raw[PATH_MAX + 64];
	json_t *disks = json_object_get(m, "disks");
	const char *id = json_string_value(json_object_get(m, "id"));
	int r = 0;
	memset(out, 0, sizeof(*out));
	daemon_path(d, dir, sizeof(dir), "restore");
	mkdir(dir, 0700);
	out->n = (unsigned)json_array_size(disks);
	if (out->n > MODEL_MAX_DISKS) {
		if (asprintf(err, "backup %s has %u disks; a VM takes at most %d", id, out->n,
			     MODEL_MAX_DISKS) < 0)
			*err = NULL;
		out->n = 0;
		return -EINVAL;
	}
	for (unsigned i = 0; i < out->n; i++) {
		json_t *dk = json_array_get(disks, i);
		uint64_t size = (uint64_t)json_integer_value(json_object_get(dk, "size"));
		snprintf(raw, sizeof(raw), "%s/%s-%llx-d%u.raw", dir, id,
			 (unsigned long long)(util_now_ns() & 0xffffff), i);
		snprintf(out->path[i], sizeof(out->path[i]), "%.4000s.qcow2", raw);
		out->size[i] = size;
		int fd = open(raw, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
			r = -errno;
			if (fd >= 0)
				close(fd);
			if (asprintf(err, "cannot create %s: %s", raw, strerror(-r)) < 0)
				*err = NULL;
			goto fail;
		}
		struct backup_bad bad;
		struct restore_progress prog = {d, task, i, out->n, lo, hi};
		r = backup_store_disk_write(store, m, i, fd, restore_progress_cb, &prog, &bad);
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
		close(fd);
		if (r == -EBADMSG) {
			if (bad.chunk >= 0) {
				if (asprintf(err, "backup %s is damaged: disk %u chunk %ld (%s): %s; "
						  "nothing was restored. Restore an older backup or "
						  "take a new one", id, i, bad.chunk, bad.hex,
					     bad.reason) < 0)
					*err = NULL;
			} else if (asprintf(err, "backup %s is damaged: disk %u: %s; nothing was "
						 "restored", id, i, bad.reason) < 0) {
				*err = NULL;
			}
		} else if (r < 0 && asprintf(err, "restoring disk %u of backup %s failed: %s", i, id,
					     strerror(-r)) < 0) {
			*err = NULL;
		}
		if (r < 0) {
			unlink(raw);
			goto fail;
		}
		const char *args[] = {"convert", "-q", "-f", "raw", "-O", "qcow2", raw, out->path[i],
				      NULL};
		r = qemu_img_run(d->cfg.qemu_img, args, NULL, NULL, NULL, err);
		unlink(raw);
		if (r < 0)
			goto fail;
	}
	return 0;
fail:
	for (unsigned i = 0; i < out->n; i++)
		unlink(out->path[i]);
	return r;
}

static void restore_discard(struct restore_out *o)
{
	for (unsigned i = 0; i < o->n; i++)
		unlink(o->path[i]);
}

/* Create VM `name` from the manifest's definition with the restored disks.
 * Returns the VM with a reference. */
static int restore_new_vm(struct daemon *d, const json_t *m, const char *name,
			  struct restore_out *o, struct vm **out, char **err)
{
	json_t *def = json_object_get(m, "vm_definition"), *boot = json_object_get(def, "boot");
	struct vm_record *rec = calloc(1, sizeof(*rec));
	struct daemon_err e = {0};
	int r = 0;
	if (!rec)
		return -ENOMEM;
	model_copy(rec->name, sizeof(rec->name), name);
	rec->vcpus = (unsigned)json_integer_value(json_object_get(def, "vcpus"));
	rec->memory_mib = (uint64_t)json_integer_value(json_object_get(def, "memory_mib"));
	snprintf(rec->description, sizeof(rec->description), "restored from backup %s of vm '%s'",
		 json_string_value(json_object_get(m, "id")),
		 json_string_value(json_object_get(m, "vm")));
	/* The source VM's project and priority (the project's quota then
	 * applies to the restored copy too); definitions saved before VMs had
	 * them restore into "default" at the default priority. */
	const char *proj = json_string_value(json_object_get(def, "project"));
	model_copy(rec->project, sizeof(rec->project), proj && *proj ? proj : MODEL_PROJECT_DEFAULT);
	if (model_priority_parse(json_string_value(json_object_get(def, "priority")), &rec->priority) < 0)
		rec->priority = MODEL_PRIORITY_DEFAULT;
	if (model_firmware_parse(json_string_value(json_object_get(boot, "firmware")),
				 &rec->firmware) < 0)
		rec->firmware = ENGINE_FW_BIOS;
	const char *k = json_string_value(json_object_get(boot, "kernel"));
	const char *ini = json_string_value(json_object_get(boot, "initrd"));
	const char *cl = json_string_value(json_object_get(boot, "cmdline"));
	model_copy(rec->kernel, sizeof(rec->kernel), k ? k : "");
	model_copy(rec->initrd, sizeof(rec->initrd), ini ? ini : "");
	model_copy(rec->cmdline, sizeof(rec->cmdline), cl ? cl : "");
	/* NICs are not restored (the network may be gone, and the source's
	 * MAC addresses may still be in use): add them with PATCH. */
	rec->nr_disks = o->n;
	for (unsigned i = 0; i < o->n; i++) {
		rec->disks[i].index = i;
		rec->disks[i].clone = DISK_CLONE_NONE;
		snprintf(rec->disks[i].format, sizeof(rec->disks[i].format), "qcow2");
	}
	if (!rec->vcpus || !rec->memory_mib) {
		if (asprintf(err, "backup %s holds no usable VM definition (vcpus, memory_mib)",
			     json_string_value(json_object_get(m, "id"))) < 0)
			*err = NULL;
		r = -EINVAL;
		goto out;
	}
	/* vm_create makes empty disks (size 0); the restored files replace
	 * them before anyone can start the VM: its op_lock is taken at once
	 * and its state checked by start under that lock. */
	if ((r = vm_create(d, rec, &e)) < 0) {
		if (asprintf(err, "%s", e.message) < 0)
			*err = NULL;
		goto out;
	}
	struct vm *vm = vm_get(d, name);
	if (!vm) {
		r = -ENOENT;
		if (asprintf(err, "vm '%s' vanished right after it was created", name) < 0)
			*err = NULL;
		goto out;
	}
	pthread_mutex_lock(&vm->op_lock);
	vm_snapshot(d, vm, rec);
	for (unsigned i = 0; i < o->n; i++) {
		if (rename(o->path[i], rec->disks[i].path) < 0) {
			r = -errno;
			if (asprintf(err, "cannot move the restored disk into place: %s",
				     strerror(-r)) < 0)
				*err = NULL;
			break;
		}
		vm_disk_set(d, vm, i, rec->disks[i].path, o->size[i]);
	}
	pthread_mutex_unlock(&vm->op_lock);
	if (r < 0) {
		vm_delete(d, vm, true, &e);
		vm_unref(d, vm);
		goto out;
	}
	o->n = 0;
	*out = vm;
out:
	free(rec);
	return r;
}

/* Replace the disks of a stopped VM by the restored ones. */
static int restore_over_vm(struct daemon *d, struct vm *vm, struct restore_out *o, const char *id,
			   char **err)
{
	struct vm_record *rec = malloc(sizeof(*rec));
	int r = 0;
	if (!rec)
		return -ENOMEM;
	pthread_mutex_lock(&vm->op_lock);
	vm_snapshot(d, vm, rec);
	if (vm->removed || (rec->state != VM_STATE_STOPPED && rec->state != VM_STATE_CRASHED)) {
		r = -EBUSY;
		if (asprintf(err, "vm '%s' is %s; restore over it only while it is stopped",
			     rec->name, vm->removed ? "deleted" : model_vm_state_name(rec->state)) < 0)
			*err = NULL;
		goto out;
	}
	if (rec->nr_disks != o->n) {
		r = -EINVAL;
		if (asprintf(err, "vm '%s' has %u disks and backup %s has %u; restore to a new VM "
				  "instead", rec->name, rec->nr_disks, id, o->n) < 0)
			*err = NULL;
		goto out;
	}
	json_t *snaps = snapshots_of_vm(d, rec->name);
	for (unsigned i = 0; i < o->n; i++) {
		char dir[PATH_MAX], dst[PATH_MAX + 128];
		daemon_path(d, dir, sizeof(dir), "vms/%s", rec->name);
		snprintf(dst, sizeof(dst), "%s/restored-%s-d%u.qcow2", dir, id, i);
		if (rename(o->path[i], dst) < 0) {
			r = -errno;
			if (asprintf(err, "cannot move the restored disk into place: %s",
				     strerror(-r)) < 0)
				*err = NULL;
			break;
		}
		vm_disk_set(d, vm, i, dst, o->size[i]);
		/* The old file goes unless a snapshot keeps it. */
		if (json_array_size(snaps) == 0)
			unlink(rec->disks[i].path);
	}
	json_decref(snaps);
	snapshots_head_clear(d, rec->name);
	o->n = 0;
out:
	pthread_mutex_unlock(&vm->op_lock);
	free(rec);
	return r;
}

struct restore_job {
	struct daemon *d;
	char task[MODEL_TASK_ID_MAX];
	char store[PATH_MAX];
	char id[64];
	char target[MODEL_NAME_MAX];
	bool overwrite;
	/* drill */
	bool drill;
	char boot_line[256];
	unsigned timeout_s;
};

/* Start vm and wait for `line` on its serial console. */
static int drill_boot(struct daemon *d, struct vm *vm, const char *line, unsigned timeout_s,
		      char **err)
{
	struct daemon_err e = {0};
	int r = vm_start(d, vm, &e);
	if (r < 0) {
		if (asprintf(err, "the restored VM did not start: %s", e.message) < 0)
			*err = NULL;
		return r;
	}
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_s * 1000000000ull;
	uint64_t since = 0;
	char *buf = malloc(65536 + 1), *tail = calloc(1, 512);
	r = -ETIMEDOUT;
	while (buf && tail && util_now_ns() < deadline) {
		size_t len = 0;
		uint64_t start = 0, next = since;
		pthread_rwlock_rdlock(&vm->handle_lock);
		int rr = vm->handle ? d->engine->ops->console_read(vm->handle, since, buf, 65536, &len,
								   &start, &next) : -ESRCH;
		pthread_rwlock_unlock(&vm->handle_lock);
		if (rr < 0 && rr != -EAGAIN) {
			r = rr;
			break;
		}
		if (len) {
			/* search tail + new bytes, so a line split over two
			 * reads is still found */
			size_t tl = strlen(tail);
			char *joined = malloc(tl + len + 1);
			if (joined) {
				memcpy(joined, tail, tl);
				memcpy(joined + tl, buf, len);
				joined[tl + len] = '\0';
				for (size_t z = 0; z < tl + len; z++)
					if (!joined[z])
						joined[z] = ' ';
				bool hit = strstr(joined, line) != NULL;
				size_t keep = MIN((size_t)255, tl + len);
				memcpy(tail, joined + tl + len - keep, keep);
				tail[keep] = '\0';
				free(joined);
				if (hit) {
					r = 0;
					break;
				}
			}
		}
		since = next;
		pthread_rwlock_rdlock(&vm->handle_lock);
		if (vm->handle)
			d->engine->ops->console_wait(vm->handle, since, 200);
		pthread_rwlock_unlock(&vm->handle_lock);
	}
	free(buf);
	free(tail);
	if (r == -ETIMEDOUT && asprintf(err, "the restored VM did not print '%s' within %u s", line,
					timeout_s) < 0)
		*err = NULL;
	else if (r < 0 && r != -ETIMEDOUT && !*err &&
		 asprintf(err, "reading the restored VM's console failed: %s", strerror(-r)) < 0)
		*err = NULL;
	return r;
}

static void *restore_thread(void *arg)
{
	struct restore_job *job = arg;
	struct daemon *d = job->d;
	json_t *m = NULL;
	char *err = NULL, merr[BACKUP_ERR_MAX];
	struct restore_out *o = calloc(1, sizeof(*o));
	struct vm *vm = NULL;
	uint64_t t0 = util_now_ns();
	int64_t wall0 = retention_now();
	int r = 0;

	pthread_mutex_lock(&backup_lock);
	if (!o) {
		r = -ENOMEM;
		pthread_mutex_unlock(&backup_lock);
		goto out;
	}
	if ((r = backup_store_manifest_load(job->store, job->id, &m, merr)) < 0) {
		err = strdup(merr);
		pthread_mutex_unlock(&backup_lock);
		goto out;
	}
	r = restore_build(d, job->store, m, job->task, 0, job->drill ? 50 : 95, o, &err);
	pthread_mutex_unlock(&backup_lock);
	if (r < 0)
		goto out;
	if (job->overwrite) {
		vm = vm_get(d, job->target);
		if (!vm) {
			r = -ENOENT;
			if (asprintf(&err, "vm '%s' was deleted meanwhile", job->target) < 0)
				err = NULL;
			goto out;
		}
		r = restore_over_vm(d, vm, o, job->id, &err);
	} else {
		r = restore_new_vm(d, m, job->target, o, &vm, &err);
	}
	if (r < 0 || !job->drill)
		goto out;

	task_progress(d, job->task, 60, "booting the restored VM");
	r = drill_boot(d, vm, job->boot_line, job->timeout_s, &err);
	double rto = (double)(util_now_ns() - t0) / 1e9;
	int64_t data_time = 0;
	retention_time_parse(json_string_value(json_object_get(m, "data_time")), &data_time);
	char started[32], id[64];
	retention_time_format(wall0, started);
	snprintf(id, sizeof(id), "d-%llx", (unsigned long long)(util_now_ns() & 0xffffffffffull));
	const char *src = json_string_value(json_object_get(m, "vm"));
	json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:I,s:s,s:o}", "id", id, "vm",
				src ? src : "", "backup", job->id, "temporary_vm", job->target,
				"started_at", started, "result", r == 0 ? "passed" : "failed",
				"rto_s", r == 0 ? json_real(rto) : json_null(), "rpo_s",
				(json_int_t)(wall0 - data_time), "boot_line", job->boot_line,
				"error", r == 0 ? json_null() : json_string(err ? err : "failed"));
	store_protection_put(d->store, DRILL_KIND, id, src ? src : "", rec);
	json_decref(rec);
	log_info("restore drill %s of backup %s (vm '%s'): %s, RTO %.1f s, RPO %lld s", id,
		 job->id, src ? src : "", r == 0 ? "passed" : "failed", rto,
		 (long long)(wall0 - data_time));
	struct daemon_err e = {0};
	if (vm_delete(d, vm, true, &e) < 0)
		log_error("restore drill %s: cannot delete the temporary vm '%s': %s", id,
			  job->target, e.message);
	if (r < 0) {
		char *full = NULL;
		if (asprintf(&full, "restore drill %s failed: %s", id, err ? err : "") >= 0) {
			free(err);
			err = full;
		}
	}
out:
	if (o)
		restore_discard(o);
	vm_unref(d, vm);
	task_finish(d, job->task, r < 0 ? (err ? err : strerror(-r)) : NULL);
	json_decref(m);
	free(o);
	free(err);
	free(job);
	return NULL;
}

/* ---- HTTP handlers ------------------------------------------------------ */

/* A VM the caller may see (vm_scope_allows), referenced; NULL when it does
 * not exist or is outside the caller's project. Backups of VMs follow the
 * same rule (vm_name_scope_allows). */
static struct vm *backups_vm_get(struct http_req *req, const char *name)
{
	struct vm *vm = name ? vm_get(req->d, name) : NULL;
	if (vm && !vm_scope_allows(req->d, vm, &req->who)) {
		vm_unref(req->d, vm);
		vm = NULL;
	}
	return vm;
}

/* Create the task (its id into task, the job's own field) and start fn;
 * copy_out gets the id before the thread can free the job. */
static int backups_start_task(struct http_req *req, enum task_kind kind, const char *target,
			      void *(*fn)(void *), void *job, char task[MODEL_TASK_ID_MAX],
			      char copy_out[MODEL_TASK_ID_MAX])
{
	if (task_create(req->d, kind, target, task) < 0) {
		http_reply_errorf(req, 500, "internal", "cannot record the task; check the data "
							"directory");
		return -EIO;
	}
	memcpy(copy_out, task, MODEL_TASK_ID_MAX);
	if (daemon_spawn(req->d, fn, job) < 0) {
		task_finish(req->d, task, "vesseld could not start a thread for it");
		http_reply_errorf(req, 500, "internal", "vesseld could not start a worker; retry");
		return -EAGAIN;
	}
	return 0;
}

void backups_create(struct http_req *req)
{
	json_t *body = NULL;
	struct daemon_err e = {0};
	struct backup_job *job = NULL;
	if (http_body_json(req, false, &body) < 0)
		return;
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		if (strcmp(key, "vm") && strcmp(key, "mode")) {
			http_reply_errorf(req, 400, "invalid_argument",
					  "unknown field '%s'; a backup takes vm and mode", key);
			goto out;
		}
	}
	const char *name = json_string_value(json_object_get(body, "vm"));
	const char *mode = json_string_value(json_object_get(body, "mode"));
	if (!name) {
		http_reply_errorf(req, 400, "invalid_argument", "vm (the VM to back up) is required");
		goto out;
	}
	if (json_object_get(body, "mode") &&
	    (!mode || (strcmp(mode, "auto") && strcmp(mode, "full")))) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "mode must be \"auto\" (incremental when possible) or \"full\"");
		goto out;
	}
	struct vm *vm = backups_vm_get(req, name);
	if (!vm) {
		http_reply_errorf(req, 404, "not_found", "there is no vm '%s'", name);
		goto out;
	}
	struct vm_record rec;
	vm_snapshot(req->d, vm, &rec);
	if (rec.state != VM_STATE_RUNNING && rec.state != VM_STATE_PAUSED &&
	    rec.state != VM_STATE_STOPPED && rec.state != VM_STATE_CRASHED) {
		http_reply_errorf(req, 409, "conflict", "vm '%s' is %s; back it up when it is running "
							"or stopped", name,
				  model_vm_state_name(rec.state));
		vm_unref(req->d, vm);
		goto out;
	}
	job = calloc(1, sizeof(*job));
	if (!job) {
		vm_unref(req->d, vm);
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		goto out;
	}
	job->d = req->d;
	job->vm = vm;
	job->force_full = mode && strcmp(mode, "full") == 0;
	backup_store_dir(req->d, job->store, sizeof(job->store));
	if (backup_store_ready(job->store, &e) < 0) {
		http_reply_err(req, &e);
		vm_unref(req->d, vm);
		free(job);
		goto out;
	}
	/* ids sort by time: b-YYYYMMDDTHHMMSS-<random> */
	char ts[32];
	retention_time_format(retention_now(), ts);
	snprintf(job->id, sizeof(job->id), "b-%.4s%.2s%.2st%.2s%.2s%.2s-%06llx", ts, ts + 5, ts + 8,
		 ts + 11, ts + 14, ts + 17, (unsigned long long)(util_now_ns() / 1000 & 0xffffff));
	char task[MODEL_TASK_ID_MAX];
	snprintf(job->task, sizeof(job->task), "%s", "");
	if (task_create(req->d, TASK_KIND_BACKUP, name, task) < 0) {
		http_reply_errorf(req, 500, "internal", "cannot record the task");
		vm_unref(req->d, vm);
		free(job);
		goto out;
	}
	memcpy(job->task, task, sizeof(task));
	char id[64];
	snprintf(id, sizeof(id), "%s", job->id);
	if (daemon_spawn(req->d, backup_thread, job) < 0) {
		task_finish(req->d, task, "vesseld could not start a thread for it");
		http_reply_errorf(req, 500, "internal", "vesseld could not start a worker; retry");
		vm_unref(req->d, vm);
		free(job);
		goto out;
	}
	http_reply_json(req, 202, json_pack("{s:s,s:s}", "task", task, "backup", id));
out:
	json_decref(body);
}

void backups_list(struct http_req *req)
{
	char store[PATH_MAX];
	backup_store_dir(req->d, store, sizeof(store));
	const char *vm = http_query(req, "vm");
	json_t *ms = backup_manifests(store, vm), *out = json_array(), *m;
	size_t i;
	json_array_foreach(ms, i, m)
		if (vm_name_scope_allows(req->d, json_string_value(json_object_get(m, "vm")),
					 &req->who))
			json_array_append_new(out, backup_summary(m));
	json_decref(ms);
	http_reply_json(req, 200, json_pack("{s:o,s:s}", "backups", out, "store", store));
}

static json_t *backups_load(struct http_req *req, char *store, size_t cap)
{
	json_t *m = NULL;
	char err[BACKUP_ERR_MAX];
	backup_store_dir(req->d, store, cap);
	int r = backup_store_manifest_load(store, req->params[0], &m, err);
	if (r == 0 &&
	    !vm_name_scope_allows(req->d, json_string_value(json_object_get(m, "vm")), &req->who)) {
		json_decref(m);
		m = NULL;
		snprintf(err, sizeof(err), "there is no backup '%s' in the store %s", req->params[0],
			 store);
		r = -ENOENT;
	}
	if (r == -ENOENT)
		http_reply_errorf(req, 404, "not_found", "%s", err);
	else if (r < 0)
		http_reply_errorf(req, 422, "backup_damaged", "%s", err);
	return m;
}

void backups_get(struct http_req *req)
{
	char store[PATH_MAX];
	json_t *m = backups_load(req, store, sizeof(store));
	if (m)
		http_reply_json(req, 200, json_pack("{s:o}", "backup", backup_summary(m)));
	json_decref(m);
}

void backups_delete(struct http_req *req)
{
	char store[PATH_MAX];
	json_t *m = backups_load(req, store, sizeof(store));
	if (!m)
		return;
	pthread_mutex_lock(&backup_lock);
	int r = backup_remove(store, req->params[0]);
	if (r == 0)
		backup_gc(store);
	pthread_mutex_unlock(&backup_lock);
	if (r < 0)
		http_reply_errorf(req, 500, "internal", "cannot delete backup %s from %s: %s",
				  req->params[0], store, strerror(-r));
	else
		http_reply_json(req, 200, json_pack("{s:s}", "deleted", req->params[0]));
	json_decref(m);
}

void backups_verify(struct http_req *req)
{
	char store[PATH_MAX];
	json_t *m = backups_load(req, store, sizeof(store));
	if (!m)
		return;
	struct backup_bad bad;
	uint64_t t0 = util_now_ns();
	int r = backup_store_verify(store, m, &bad);
	json_t *res = json_pack("{s:s,s:b,s:f}", "id", req->params[0], "ok", r == 0, "duration_s",
				(double)(util_now_ns() - t0) / 1e9);
	size_t nchunks = 0, i;
	json_t *dk;
	json_array_foreach(json_object_get(m, "disks"), i, dk)
		nchunks += json_array_size(json_object_get(dk, "chunks"));
	json_object_set_new(res, "chunks", json_integer((json_int_t)nchunks));
	if (r == -EBADMSG) {
		json_object_set_new(res, "bad", json_pack("{s:i,s:I,s:s,s:s}", "disk", bad.disk,
							  "chunk", (json_int_t)bad.chunk, "sha256",
							  bad.hex, "reason", bad.reason));
		char msg[512];
		if (bad.chunk >= 0)
			snprintf(msg, sizeof(msg), "disk %d chunk %ld (%s): %s", bad.disk, bad.chunk,
				 bad.hex, bad.reason);
		else
			snprintf(msg, sizeof(msg), "disk %d: %s", bad.disk, bad.reason);
		json_object_set_new(res, "message", json_string(msg));
		log_warn("backup %s failed verification: %s", req->params[0], msg);
	} else if (r < 0) {
		json_decref(res);
		http_reply_errorf(req, 500, "internal", "verifying backup %s failed: %s",
				  req->params[0], strerror(-r));
		json_decref(m);
		return;
	}
	http_reply_json(req, 200, res);
	json_decref(m);
}

static void backups_restore_common(struct http_req *req, bool drill)
{
	json_t *body = NULL, *m = NULL;
	struct restore_job *job = calloc(1, sizeof(*job));
	char store[PATH_MAX];
	if (!job) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	if (http_body_json(req, drill, &body) < 0)
		goto out;
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		bool ok = drill ? (!strcmp(key, "boot_line") || !strcmp(key, "timeout_s")) :
				  (!strcmp(key, "vm") || !strcmp(key, "overwrite"));
		if (!ok) {
			http_reply_errorf(req, 400, "invalid_argument", "unknown field '%s'; %s", key,
					  drill ? "a drill takes boot_line and timeout_s" :
						  "a restore takes vm and overwrite");
			goto out;
		}
	}
	if (!(m = backups_load(req, store, sizeof(store))))
		goto out;
	job->d = req->d;
	snprintf(job->store, sizeof(job->store), "%s", store);
	snprintf(job->id, sizeof(job->id), "%s", req->params[0]);
	if (drill) {
		const char *line = json_string_value(json_object_get(body, "boot_line"));
		json_t *to = json_object_get(body, "timeout_s");
		if (!line || !*line || strlen(line) > 200) {
			http_reply_errorf(req, 400, "invalid_argument",
					  "boot_line (the console text that proves the guest booted, "
					  "at most 200 characters) is required");
			goto out;
		}
		if (to && (!json_is_integer(to) || json_integer_value(to) < 1 ||
			   json_integer_value(to) > 3600)) {
			http_reply_errorf(req, 400, "invalid_argument",
					  "timeout_s must be an integer from 1 to 3600");
			goto out;
		}
		job->drill = true;
		snprintf(job->boot_line, sizeof(job->boot_line), "%s", line);
		job->timeout_s = to ? (unsigned)json_integer_value(to) : 300;
		snprintf(job->target, sizeof(job->target), "drill-%.40s-%04llx",
			 json_string_value(json_object_get(m, "vm")),
			 (unsigned long long)(util_now_ns() / 1000 & 0xffff));
	} else {
		const char *name = json_string_value(json_object_get(body, "vm"));
		json_t *ow = json_object_get(body, "overwrite");
		if (ow && !json_is_boolean(ow)) {
			http_reply_errorf(req, 400, "invalid_argument", "overwrite must be true or false");
			goto out;
		}
		if (!name || !util_is_dns_label(name)) {
			http_reply_errorf(req, 400, "invalid_argument",
					  "vm (the VM to restore into) must be a name of 1-63 "
					  "characters of a-z, 0-9 and '-'");
			goto out;
		}
		job->overwrite = json_is_true(ow);
		snprintf(job->target, sizeof(job->target), "%s", name);
		struct vm *vm = vm_get(req->d, name);
		if (vm) {
			struct vm_record rec;
			vm_snapshot(req->d, vm, &rec);
			vm_unref(req->d, vm);
			if (!job->overwrite) {
				http_reply_errorf(req, 409, "conflict",
						  "vm '%s' exists; restore to a new name, or pass "
						  "\"overwrite\": true to replace its disks (it must be "
						  "stopped)", name);
				goto out;
			}
			if (rec.state != VM_STATE_STOPPED && rec.state != VM_STATE_CRASHED) {
				http_reply_errorf(req, 409, "conflict",
						  "vm '%s' is %s; stop it before restoring over it", name,
						  model_vm_state_name(rec.state));
				goto out;
			}
			if (rec.nr_disks != json_array_size(json_object_get(m, "disks"))) {
				http_reply_errorf(req, 409, "conflict",
						  "vm '%s' has %u disks and backup %s has %zu; restore "
						  "to a new VM instead", name, rec.nr_disks, job->id,
						  json_array_size(json_object_get(m, "disks")));
				goto out;
			}
		} else if (job->overwrite) {
			http_reply_errorf(req, 404, "not_found", "there is no vm '%s' to restore over; "
								 "leave out overwrite to create it", name);
			goto out;
		}
	}
	char target[MODEL_NAME_MAX], task[MODEL_TASK_ID_MAX];
	snprintf(target, sizeof(target), "%s", job->target);
	if (backups_start_task(req, drill ? TASK_KIND_DRILL : TASK_KIND_RESTORE, target,
			       restore_thread, job, job->task, task) < 0)
		goto out;
	/* the thread owns job now: reply from the copy made before it ran */
	job = NULL;
	http_reply_json(req, 202, json_pack("{s:s,s:s}", "task", task, "vm", target));
out:
	free(job);
	json_decref(body);
	json_decref(m);
}

void backups_restore(struct http_req *req)
{
	backups_restore_common(req, false);
}

void backups_drill(struct http_req *req)
{
	backups_restore_common(req, true);
}

void backups_drills(struct http_req *req)
{
	json_t *list = NULL;
	struct vm *vm = backups_vm_get(req, req->params[0]);
	json_t *backs = NULL;
	if (!vm && req->who.project[0]) {
		http_reply_errorf(req, 404, "not_found", "there is no vm '%s'", req->params[0]);
		return;
	}
	if (store_protection_list(req->d->store, DRILL_KIND, req->params[0], &list) < 0)
		list = json_array();
	backs = backups_of_vm(req->d, req->params[0]);
	if (!vm && json_array_size(list) == 0 && json_array_size(backs) == 0) {
		http_reply_errorf(req, 404, "not_found", "there is no vm '%s' and no backup of one",
				  req->params[0]);
		json_decref(list);
		json_decref(backs);
		return;
	}
	vm_unref(req->d, vm);
	json_decref(backs);
	http_reply_json(req, 200, json_pack("{s:o}", "drills", list));
}
