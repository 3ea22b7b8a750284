/* test_backup_store: the backup chunk store and manifests (backup_store.c)
 * on a temporary directory: chunking and deduplication, chunk reads that
 * check the SHA-256, manifest shape checks, verify naming the first bad
 * chunk (and the whole-disk hash), and restore writing a sparse disk that
 * refuses a damaged chunk. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/backup_store.h"
#include "harness.h"

static char store_dir[] = "/tmp/vessel-test-bstore-XXXXXX";

static void store_setup(void)
{
	static int done;
	if (!done) {
		if (!mkdtemp(store_dir))
			abort();
		done = 1;
	}
}

/* A disk of n bytes: chunk c filled with byte (c + seed) except chunk 1,
 * which is all zero. Returns a manifest for it (chunks stored). */
static json_t *store_disk(size_t n, int seed, uint8_t **data_out)
{
	uint8_t *data = malloc(n);
	json_t *chunks = json_array();
	for (size_t off = 0, c = 0; off < n; off += BACKUP_CHUNK_SIZE, c++) {
		size_t len = n - off < BACKUP_CHUNK_SIZE ? n - off : BACKUP_CHUNK_SIZE;
		memset(data + off, c == 1 ? 0 : (int)(c + (size_t)seed), len);
		char hex[65];
		bool added;
		CHECK_EQ_INT(backup_store_chunk_put(store_dir, data + off, len, hex, &added), 0);
		json_array_append_new(chunks, json_string(hex));
	}
	char whole[65];
	backup_store_sha256(data, n, whole);
	json_t *m = json_pack("{s:s,s:i,s:[{s:i,s:I,s:s,s:o}]}", "format", BACKUP_FORMAT,
			      "chunk_size", BACKUP_CHUNK_SIZE, "disks", "index", 0, "size",
			      (json_int_t)n, "sha256", whole, "chunks", chunks);
	*data_out = data;
	return m;
}

TEST(sha256_known_answer)
{
	char hex[65];
	backup_store_sha256("abc", 3, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(chunk_put_dedups_and_get_checks)
{
	store_setup();
	char buf[100], hex[65], hex2[65];
	bool added;
	memset(buf, 7, sizeof(buf));
	CHECK_EQ_INT(backup_store_chunk_put(store_dir, buf, sizeof(buf), hex, &added), 0);
	CHECK(added);
	CHECK_EQ_INT(backup_store_chunk_put(store_dir, buf, sizeof(buf), hex2, &added), 0);
	CHECK(!added);
	CHECK_STR(hex, hex2);
	char out[200];
	size_t len = 0;
	CHECK_EQ_INT(backup_store_chunk_get(store_dir, hex, out, sizeof(out), &len), 0);
	CHECK_EQ_INT(len, 100);
	CHECK(memcmp(out, buf, 100) == 0);
	/* a flipped byte is caught */
	char path[512];
	snprintf(path, sizeof(path), "%s/chunks/%.2s/%s", store_dir, hex, hex);
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	char b = 6;
	CHECK_EQ_INT(pwrite(fd, &b, 1, 50), 1);
	close(fd);
	CHECK_EQ_INT(backup_store_chunk_get(store_dir, hex, out, sizeof(out), &len), -EBADMSG);
	/* missing and malformed names */
	CHECK_EQ_INT(backup_store_chunk_get(store_dir,
					    "0000000000000000000000000000000000000000000000000000000000000000",
					    out, sizeof(out), &len), -ENOENT);
	CHECK_EQ_INT(backup_store_chunk_get(store_dir, "../../etc/passwd", out, sizeof(out), &len),
		     -EINVAL);
}

TEST(manifest_check)
{
	char err[BACKUP_ERR_MAX];
	uint8_t *data;
	store_setup();
	json_t *m = store_disk(2 * BACKUP_CHUNK_SIZE + 10, 1, &data);
	CHECK_EQ_INT(backup_store_manifest_check(m, err), 0);
	json_t *bad = json_deep_copy(m);
	json_object_set_new(bad, "format", json_string("other-9"));
	CHECK_EQ_INT(backup_store_manifest_check(bad, err), -EINVAL);
	CHECK(strstr(err, "other-9") != NULL);
	json_decref(bad);
	bad = json_deep_copy(m);
	json_array_remove(json_object_get(json_array_get(json_object_get(bad, "disks"), 0), "chunks"), 2);
	CHECK_EQ_INT(backup_store_manifest_check(bad, err), -EINVAL);
	CHECK(strstr(err, "needs 3") != NULL);
	json_decref(bad);
	bad = json_deep_copy(m);
	json_array_set_new(json_object_get(json_array_get(json_object_get(bad, "disks"), 0), "chunks"),
			   0, json_string("ABC"));
	CHECK_EQ_INT(backup_store_manifest_check(bad, err), -EINVAL);
	CHECK(strstr(err, "chunks[0]") != NULL);
	json_decref(bad);
	bad = json_deep_copy(m);
	json_object_set_new(bad, "chunk_size", json_integer(1024));
	CHECK_EQ_INT(backup_store_manifest_check(bad, err), -EINVAL);
	json_decref(bad);
	/* save + load round trip; unknown and unsafe ids */
	CHECK_EQ_INT(backup_store_manifest_save(store_dir, "b-1", m), 0);
	json_t *back = NULL;
	CHECK_EQ_INT(backup_store_manifest_load(store_dir, "b-1", &back, err), 0);
	CHECK(json_equal(back, m));
	json_decref(back);
	CHECK_EQ_INT(backup_store_manifest_load(store_dir, "b-2", &back, err), -ENOENT);
	CHECK_EQ_INT(backup_store_manifest_load(store_dir, "../x", &back, err), -ENOENT);
	json_t *ids = NULL;
	CHECK_EQ_INT(backup_store_list(store_dir, &ids), 0);
	CHECK_EQ_INT(json_array_size(ids), 1);
	json_decref(ids);
	json_decref(m);
	free(data);
}

TEST(verify_names_first_bad_chunk_and_restore_refuses)
{
	uint8_t *data;
	struct backup_bad bad;
	store_setup();
	size_t n = 3 * BACKUP_CHUNK_SIZE + 4096;
	json_t *m = store_disk(n, 40, &data);
	CHECK_EQ_INT(backup_store_verify(store_dir, m, &bad), 0);

	/* restore: sparse output equal to the data */
	char out[512];
	snprintf(out, sizeof(out), "%s/restored.raw", store_dir);
	int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, (off_t)n) == 0);
	CHECK_EQ_INT(backup_store_disk_write(store_dir, m, 0, fd, NULL, NULL, &bad), 0);
	uint8_t *back = malloc(n);
	CHECK_EQ_INT(pread(fd, back, n, 0), (ssize_t)n);
	CHECK(memcmp(back, data, n) == 0);
	struct stat st;
	fstat(fd, &st);
	CHECK((uint64_t)st.st_blocks * 512 < n); /* the zero chunk was not written */
	close(fd);

	/* flip a byte in chunk 2 and in chunk 3: verify names chunk 2 */
	const char *h2 = json_string_value(json_array_get(
		json_object_get(json_array_get(json_object_get(m, "disks"), 0), "chunks"), 2));
	const char *h3 = json_string_value(json_array_get(
		json_object_get(json_array_get(json_object_get(m, "disks"), 0), "chunks"), 3));
	char p[512];
	for (int k = 0; k < 2; k++) {
		const char *h = k ? h3 : h2;
		snprintf(p, sizeof(p), "%s/chunks/%.2s/%s", store_dir, h, h);
		int cfd = open(p, O_RDWR);
		uint8_t b;
		CHECK_EQ_INT(pread(cfd, &b, 1, 100), 1);
		b ^= 0x80;
		CHECK_EQ_INT(pwrite(cfd, &b, 1, 100), 1);
		close(cfd);
	}
	CHECK_EQ_INT(backup_store_verify(store_dir, m, &bad), -EBADMSG);
	CHECK_EQ_INT(bad.disk, 0);
	CHECK_EQ_INT(bad.chunk, 2);
	CHECK_STR(bad.hex, h2);
	CHECK(strstr(bad.reason, "SHA-256") != NULL);
	fd = open(out, O_RDWR | O_TRUNC);
	CHECK_EQ_INT(backup_store_disk_write(store_dir, m, 0, fd, NULL, NULL, &bad), -EBADMSG);
	CHECK_EQ_INT(bad.chunk, 2);
	close(fd);
	/* a missing chunk is named too */
	snprintf(p, sizeof(p), "%s/chunks/%.2s/%s", store_dir, h2, h2);
	unlink(p);
	CHECK_EQ_INT(backup_store_verify(store_dir, m, &bad), -EBADMSG);
	CHECK(strstr(bad.reason, "missing") != NULL);
	free(back);
	free(data);
	json_decref(m);
}

TEST(verify_checks_whole_disk_hash)
{
	uint8_t *data;
	struct backup_bad bad;
	store_setup();
	json_t *m = store_disk(BACKUP_CHUNK_SIZE, 90, &data);
	json_object_set_new(json_array_get(json_object_get(m, "disks"), 0), "sha256",
			    json_string("1111111111111111111111111111111111111111111111111111111111111111"));
	CHECK_EQ_INT(backup_store_verify(store_dir, m, &bad), -EBADMSG);
	CHECK_EQ_INT(bad.chunk, -1);
	CHECK(strstr(bad.reason, "whole disk") != NULL);
	json_decref(m);
	free(data);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", store_dir);
	CHECK_EQ_INT(system(cmd), 0);
}

HARNESS_MAIN
