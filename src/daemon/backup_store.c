/* backup_store: content-addressed chunks and manifests (see backup_store.h
 * and docs/backups.md). SHA-256 comes from nettle. */
#include "daemon/backup_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void backup_store_hex(const uint8_t *d, char hex[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

void backup_store_sha256(const void *data, size_t len, char hex[65])
{
	struct sha256_ctx ctx;
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_init(&ctx);
	sha256_update(&ctx, len, data);
	sha256_digest(&ctx, sizeof(d), d);
	backup_store_hex(d, hex);
}

static bool backup_store_is_hex(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static void backup_store_chunk_path(const char *store, const char *hex, char *out, size_t cap)
{
	snprintf(out, cap, "%s/chunks/%.2s/%s", store, hex, hex);
}

/* Write a whole file under a temporary name, flush, rename into place. */
static int backup_store_write_atomic(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, r = 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	if (fsync(fd) < 0)
		r = -errno;
out:
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

int backup_store_chunk_put(const char *store, const void *data, size_t len, char hex[65],
			   bool *added)
{
	char path[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	backup_store_sha256(data, len, hex);
	backup_store_chunk_path(store, hex, path, sizeof(path));
	*added = false;
	if (stat(path, &st) == 0 && (size_t)st.st_size == len)
		return 0;
	snprintf(dir, sizeof(dir), "%s/chunks", store);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(dir, sizeof(dir), "%s/chunks/%.2s", store, hex);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	int r = backup_store_write_atomic(path, data, len);
	if (r == 0)
		*added = true;
	return r;
}

int backup_store_chunk_get(const char *store, const char *hex, void *buf, size_t cap,
			   size_t *len)
{
	char path[PATH_MAX], got[65];
	int fd, r = 0;
	if (!backup_store_is_hex(hex))
		return -EINVAL;
	backup_store_chunk_path(store, hex, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	for (;;) {
		if (n == cap) {
			char extra;
			ssize_t x = read(fd, &extra, 1);
			if (x > 0)
				r = -EBADMSG; /* longer than any chunk: not ours */
			break;
		}
		ssize_t k = read(fd, (char *)buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			break;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (r < 0)
		return r;
	backup_store_sha256(buf, n, got);
	if (strcmp(got, hex) != 0)
		return -EBADMSG;
	*len = n;
	return 0;
}

int backup_store_manifest_check(const json_t *m, char err[BACKUP_ERR_MAX])
{
	const char *fmt = json_string_value(json_object_get(m, "format"));
	json_t *cs = json_object_get(m, "chunk_size"), *disks = json_object_get(m, "disks"), *dk;
	size_t i;
	if (!json_is_object(m)) {
		snprintf(err, BACKUP_ERR_MAX, "the manifest is not a JSON object");
		return -EINVAL;
	}
	if (!fmt || strcmp(fmt, BACKUP_FORMAT) != 0) {
		snprintf(err, BACKUP_ERR_MAX, "the manifest format is '%s', not '%s'; it was written "
					      "by another program or a newer vessel",
			 fmt ? fmt : "(none)", BACKUP_FORMAT);
		return -EINVAL;
	}
	if (!json_is_integer(cs) || json_integer_value(cs) != BACKUP_CHUNK_SIZE) {
		snprintf(err, BACKUP_ERR_MAX, "the manifest's chunk_size must be %u", BACKUP_CHUNK_SIZE);
		return -EINVAL;
	}
	if (!json_is_array(disks) || json_array_size(disks) == 0) {
		snprintf(err, BACKUP_ERR_MAX, "the manifest lists no disks");
		return -EINVAL;
	}
	json_array_foreach(disks, i, dk) {
		json_t *size = json_object_get(dk, "size"), *chunks = json_object_get(dk, "chunks");
		if (!json_is_integer(size) || json_integer_value(size) <= 0 ||
		    !backup_store_is_hex(json_string_value(json_object_get(dk, "sha256"))) ||
		    !json_is_array(chunks)) {
			snprintf(err, BACKUP_ERR_MAX, "disks[%zu] needs a positive size, a sha256 "
						      "and a chunks array", i);
			return -EINVAL;
		}
		uint64_t want = ((uint64_t)json_integer_value(size) + BACKUP_CHUNK_SIZE - 1) /
				BACKUP_CHUNK_SIZE;
		if (json_array_size(chunks) != want) {
			snprintf(err, BACKUP_ERR_MAX, "disks[%zu] has %zu chunks, but its size needs "
						      "%llu", i, json_array_size(chunks),
				 (unsigned long long)want);
			return -EINVAL;
		}
		size_t k;
		json_t *c;
		json_array_foreach(chunks, k, c) {
			if (!backup_store_is_hex(json_string_value(c))) {
				snprintf(err, BACKUP_ERR_MAX, "disks[%zu].chunks[%zu] is not a SHA-256 "
							      "in lowercase hex", i, k);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static bool backup_store_id_ok(const char *id)
{
	if (!id || !*id || strlen(id) > 64)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return true;
}

int backup_store_manifest_load(const char *store, const char *id, json_t **out,
			       char err[BACKUP_ERR_MAX])
{
	char path[PATH_MAX];
	json_error_t je;
	if (!backup_store_id_ok(id)) {
		snprintf(err, BACKUP_ERR_MAX, "'%s' is not a backup id", id ? id : "");
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/backups/%s/manifest.json", store, id);
	if (access(path, F_OK) < 0) {
		snprintf(err, BACKUP_ERR_MAX, "there is no backup '%s' in the store %s", id, store);
		return -ENOENT;
	}
	json_t *m = json_load_file(path, 0, &je);
	if (!m) {
		snprintf(err, BACKUP_ERR_MAX, "the manifest of backup '%s' is not valid JSON (%s, "
					      "line %d)", id, je.text, je.line);
		return -EBADMSG;
	}
	int r = backup_store_manifest_check(m, err);
	if (r < 0) {
		json_decref(m);
		return -EBADMSG;
	}
	*out = m;
	return 0;
}

int backup_store_manifest_save(const char *store, const char *id, const json_t *m)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/backups", store);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/backups/%s", store, id);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/backups/%s/manifest.json", store, id);
	char *text = json_dumps(m, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	int r = backup_store_write_atomic(path, text, strlen(text));
	free(text);
	return r;
}

static int backup_store_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int backup_store_list(const char *store, json_t **ids)
{
	char path[PATH_MAX];
	char **names = NULL;
	size_t n = 0, cap = 0;
	snprintf(path, sizeof(path), "%s/backups", store);
	*ids = json_array();
	DIR *dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *de;
	while ((de = readdir(dir))) {
		char mp[PATH_MAX + 320];
		if (!backup_store_id_ok(de->d_name))
			continue;
		snprintf(mp, sizeof(mp), "%s/%s/manifest.json", path, de->d_name);
		if (access(mp, F_OK) < 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn)
				break;
			names = nn;
		}
		names[n++] = strdup(de->d_name);
	}
	closedir(dir);
	qsort(names, n, sizeof(*names), backup_store_cmp);
	for (size_t i = 0; i < n; i++) {
		if (names[i])
			json_array_append_new(*ids, json_string(names[i]));
		free(names[i]);
	}
	free(names);
	return 0;
}

static bool backup_store_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Read disk `disk` chunk by chunk: check each chunk and the whole-disk
 * hash; write to fd when fd >= 0. */
static int backup_store_walk(const char *store, const json_t *m, unsigned disk, int fd,
			     backup_store_progress_fn *progress, void *opaque,
			     struct backup_bad *bad)
{
	json_t *dk = json_array_get(json_object_get(m, "disks"), disk);
	json_t *chunks = json_object_get(dk, "chunks");
	uint64_t size = (uint64_t)json_integer_value(json_object_get(dk, "size"));
	const char *want = json_string_value(json_object_get(dk, "sha256"));
	struct sha256_ctx ctx;
	uint8_t *buf = malloc(BACKUP_CHUNK_SIZE);
	int r = 0;
	size_t i;
	json_t *c;
	if (!buf)
		return -ENOMEM;
	sha256_init(&ctx);
	memset(bad, 0, sizeof(*bad));
	bad->disk = (int)disk;
	json_array_foreach(chunks, i, c) {
		const char *hex = json_string_value(c);
		uint64_t off = (uint64_t)i * BACKUP_CHUNK_SIZE;
		size_t expect = (size_t)(size - off < BACKUP_CHUNK_SIZE ? size - off :
									  BACKUP_CHUNK_SIZE);
		size_t len = 0;
		r = backup_store_chunk_get(store, hex, buf, BACKUP_CHUNK_SIZE, &len);
		if (r == 0 && len != expect)
			r = -EBADMSG;
		if (r < 0) {
			bad->chunk = (long)i;
			snprintf(bad->hex, sizeof(bad->hex), "%s", hex ? hex : "");
			snprintf(bad->reason, sizeof(bad->reason), "%s",
				 r == -ENOENT  ? "the chunk file is missing" :
				 r == -EBADMSG ? "its content does not match its SHA-256" :
						 strerror(-r));
			if (r != -ENOENT && r != -EBADMSG)
				goto out;
			r = -EBADMSG;
			goto out;
		}
		sha256_update(&ctx, len, buf);
		if (fd >= 0 && !backup_store_all_zero(buf, len)) {
			size_t done = 0;
			while (done < len) {
				ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(off + done));
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					r = n < 0 ? -errno : -EIO;
					goto out;
				}
				done += (size_t)n;
			}
		}
		if (progress)
			progress(opaque, off + len, size);
	}
	uint8_t d[SHA256_DIGEST_SIZE];
	char got[65];
	sha256_digest(&ctx, sizeof(d), d);
	backup_store_hex(d, got);
	if (!want || strcmp(got, want) != 0) {
		bad->chunk = -1;
		snprintf(bad->reason, sizeof(bad->reason),
			 "the whole disk hashes to %.16s..., the manifest says %.16s...", got,
			 want ? want : "");
		r = -EBADMSG;
	}
out:
	free(buf);
	return r;
}

int backup_store_verify(const char *store, const json_t *m, struct backup_bad *bad)
{
	size_t n = json_array_size(json_object_get(m, "disks"));
	for (size_t i = 0; i < n; i++) {
		int r = backup_store_walk(store, m, (unsigned)i, -1, NULL, NULL, bad);
		if (r < 0)
			return r;
	}
	return 0;
}

int backup_store_disk_write(const char *store, const json_t *m, unsigned disk, int fd,
			    backup_store_progress_fn *progress, void *opaque,
			    struct backup_bad *bad)
{
	return backup_store_walk(store, m, disk, fd, progress, opaque, bad);
}
