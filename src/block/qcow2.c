/* qcow2: the qcow2 driver (QEMU's docs/interop/qcow2.txt, versions 2 and
 * 3) with backing chains. Reads walk L1 -> L2 -> data cluster; a cluster
 * that is not allocated reads from the backing file, or as zeroes without
 * one. Writes go in place into clusters this image owns (COPIED) and
 * otherwise allocate a new cluster at the end of the file, filled from the
 * backing file when the write covers only part of it (copy on write).
 * Writing needs an image without internal snapshots, with 16-bit refcounts
 * and a clean shutdown (no dirty/corrupt bit); compressed clusters are not
 * supported.
 *
 * Crash consistency: a new cluster's refcount is written first, then its
 * content, then the L2 (and L1) entry pointing to it. A crash in between
 * leaks a cluster (qemu-img check -r leaks repairs it) but never lets an
 * entry point at garbage. Durability comes from flush (fdatasync).
 *
 * The image is untrusted: every header field, table offset and entry is
 * checked before use (alignment, inside the file, sizes bounded) and a bad
 * one fails the open or the request, never the process. */
#include "block/block.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/iov.h"
#include "lib/log.h"
#include "lib/util.h"

#define QCOW2_MAGIC 0x514649fbu          /* "QFI\xfb" */
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
/* Bits 9-55 of L1 and L2 entries hold a host offset. */
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_COPIED (1ull << 63)          /* refcount is exactly 1 */
#define QCOW2_L2_COMPRESSED (1ull << 62)
#define QCOW2_L2_ZERO 1ull               /* v3 "reads as zeroes" */
/* Incompatible feature bits we understand (spec "incompatible_features"):
 * dirty (0) and corrupt (1) only matter to writers; compression type (3)
 * only to compressed clusters, which we refuse per cluster. */
#define QCOW2_INCOMPAT_EXTERNAL_DATA (1ull << 2)
#define QCOW2_INCOMPAT_EXTENDED_L2 (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN 0x0bull
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
/* The refcount table read into memory is bounded like the L1 table. */
#define QCOW2_MAX_RT_BYTES (8u * 1024 * 1024)
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
/* An L1 table is at most 32 MiB here (QEMU's own limit), a backing chain
 * at most this deep. */
#define QCOW2_MAX_L1_BYTES (32u * 1024 * 1024)
#define QCOW2_MAX_CHAIN 16

struct qcow2_header {
	uint32_t magic;
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint32_t refcount_order;
	uint32_t header_length;
} __attribute__((packed));
_Static_assert(sizeof(struct qcow2_header) == QCOW2_V3_HEADER_LEN, "qcow2 v3 header is 104 bytes");

struct qcow2_state {
	int fd;
	uint64_t file_size;
	unsigned cluster_bits;
	uint64_t cluster_size;
	unsigned l2_bits;           /* log2 of entries per L2 table */
	uint32_t l1_size;
	uint64_t *l1;               /* big-endian, as on disk */
	uint64_t *l2;               /* one cached L2 table, big-endian */
	uint64_t l2_offset;         /* its host offset, 0 = none cached */
	uint8_t *buf;               /* one cluster of bounce buffer */
	struct block_dev *backing;
	/* writable images only */
	bool writable;
	uint64_t l1_offset;
	uint64_t rt_offset;         /* refcount table */
	uint32_t rt_entries;
	uint64_t *rt;               /* big-endian, as on disk */
	uint64_t next_free;         /* where the next cluster is allocated */
	/* Host offsets of every cluster holding metadata (header, L1 table,
	 * refcount table and blocks, L2 tables), sorted. New tables are
	 * allocated past the end of the file, so appending keeps the order. */
	uint64_t *meta;
	size_t nr_meta, cap_meta;
};

/* Nesting depth of the open in progress, to bound backing chains. */
static __thread unsigned qcow2_depth;

/* pread all of len at off; bytes past the end of the file read as zeroes
 * (the spec allows a file to end inside its last cluster). */
static int qcow2_pread(struct qcow2_state *s, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(s->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			memset((uint8_t *)buf + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

static bool qcow2_cluster_ok(const struct qcow2_state *s, uint64_t off)
{
	return (off & (s->cluster_size - 1)) == 0 && off < s->file_size;
}

static int qcow2_meta_add(struct qcow2_state *s, uint64_t off)
{
	if (s->nr_meta == s->cap_meta) {
		size_t cap = s->cap_meta ? s->cap_meta * 2 : 64;
		uint64_t *m = realloc(s->meta, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		s->meta = m;
		s->cap_meta = cap;
	}
	s->meta[s->nr_meta++] = off;
	return 0;
}

static int qcow2_meta_add_range(struct qcow2_state *s, uint64_t off, uint64_t len)
{
	for (uint64_t c = off & ~(s->cluster_size - 1); c < off + len; c += s->cluster_size) {
		int r = qcow2_meta_add(s, c);
		if (r < 0)
			return r;
	}
	return 0;
}

static int qcow2_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Whether the cluster at host offset off holds metadata. */
static bool qcow2_is_meta(const struct qcow2_state *s, uint64_t off)
{
	off &= ~(s->cluster_size - 1);
	return bsearch(&off, s->meta, s->nr_meta, sizeof(*s->meta), qcow2_u64_cmp) != NULL;
}

/* Collect the metadata clusters of a writable image and refuse one where
 * two structures share a cluster: writing one would silently rewrite the
 * other (QEMU guards the same way with its metadata overlap checks). */
static int qcow2_meta_build(struct block_dev *bd, struct qcow2_state *s)
{
	int r = qcow2_meta_add(s, 0);
	if (r == 0)
		r = qcow2_meta_add_range(s, s->l1_offset, (uint64_t)s->l1_size * 8);
	if (r == 0)
		r = qcow2_meta_add_range(s, s->rt_offset, (uint64_t)s->rt_entries * 8);
	for (uint32_t i = 0; r == 0 && i < s->rt_entries; i++) {
		uint64_t rb = be64toh(s->rt[i]) & QCOW2_OFFSET_MASK;
		if (rb && qcow2_cluster_ok(s, rb))
			r = qcow2_meta_add(s, rb);
	}
	for (uint32_t i = 0; r == 0 && i < s->l1_size; i++) {
		uint64_t l2 = be64toh(s->l1[i]) & QCOW2_OFFSET_MASK;
		if (l2 && qcow2_cluster_ok(s, l2))
			r = qcow2_meta_add(s, l2);
	}
	if (r < 0)
		return r;
	qsort(s->meta, s->nr_meta, sizeof(*s->meta), qcow2_u64_cmp);
	for (size_t i = 1; i < s->nr_meta; i++) {
		if (s->meta[i] == s->meta[i - 1]) {
			log_error("disk '%s': qcow2 metadata structures overlap at offset %llu; the "
				  "image is damaged: repair it with 'qemu-img check -r all' or attach "
				  "it read-only", bd->name, (unsigned long long)s->meta[i]);
			return -EINVAL;
		}
	}
	return 0;
}

static void qcow2_state_free(struct qcow2_state *s)
{
	if (!s)
		return;
	block_free(s->backing);
	free(s->rt);
	free(s->meta);
	free(s->l1);
	free(s->l2);
	free(s->buf);
	free(s);
}

/* Find the backing format header extension (spec "Header extensions"),
 * which follows the header; "" when there is none. */
static int qcow2_backing_format(struct qcow2_state *s, uint64_t off, char *fmt, size_t fmtlen)
{
	fmt[0] = 0;
	/* Extensions end with type 0 and must fit in the first cluster. */
	while (off + 8 <= s->cluster_size) {
		uint32_t h[2];
		int r = qcow2_pread(s, h, sizeof(h), off);
		if (r < 0)
			return r;
		uint32_t type = be32toh(h[0]), len = be32toh(h[1]);
		if (type == 0)
			break;
		if (len > s->cluster_size - off - 8)
			return -EINVAL;
		if (type == QCOW2_EXT_BACKING_FORMAT) {
			if (len >= fmtlen)
				return -EINVAL;
			r = qcow2_pread(s, fmt, len, off + 8);
			if (r < 0)
				return r;
			fmt[len] = 0;
		}
		off += 8 + ALIGN_UP((uint64_t)len, 8);
	}
	return 0;
}

static int qcow2_open_backing(struct block_dev *bd, struct qcow2_state *s,
			      const struct qcow2_header *h, uint64_t ext_off)
{
	char name[1024], fmt[32], path[PATH_MAX], dir[PATH_MAX];
	uint32_t len = h->backing_file_size;
	int r;

	if (len == 0 || len >= sizeof(name) || len > s->cluster_size ||
	    h->backing_file_offset > s->cluster_size - len) {
		log_error("disk '%s': qcow2 backing file name is out of bounds; the image is "
			  "damaged", bd->name);
		return -EINVAL;
	}
	r = qcow2_pread(s, name, len, h->backing_file_offset);
	if (r < 0)
		return r;
	name[len] = 0;
	if (strlen(name) != len)
		return -EINVAL;
	r = qcow2_backing_format(s, ext_off, fmt, sizeof(fmt));
	if (r < 0) {
		log_error("disk '%s': qcow2 header extensions are malformed; the image is damaged",
			  bd->name);
		return r;
	}
	if (!fmt[0]) {
		/* Guessing the format from the file's first bytes would let
		 * a guest that wrote a qcow2 header into a raw backing file
		 * point us at any host file, so the format must be recorded. */
		log_error("disk '%s': the format of backing file '%s' is not recorded in the "
			  "image; record it with 'qemu-img rebase -u -b %s -F raw|qcow2'",
			  bd->name, name, name);
		return -EINVAL;
	}
	if (strcmp(fmt, "raw") != 0 && strcmp(fmt, "qcow2") != 0) {
		log_error("disk '%s': backing file '%s' has format '%s'; only raw and qcow2 are "
			  "supported", bd->name, name, fmt);
		return -ENOTSUP;
	}
	/* A relative backing name is relative to the overlay's directory. */
	if (name[0] == '/') {
		snprintf(path, sizeof(path), "%s", name);
	} else {
		snprintf(dir, sizeof(dir), "%s", bd->name);
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dirname(dir), name) >= sizeof(path))
			return -ENAMETOOLONG;
	}
	if (qcow2_depth >= QCOW2_MAX_CHAIN) {
		log_error("disk '%s': backing chain deeper than %d images; is it a loop?", bd->name,
			  QCOW2_MAX_CHAIN);
		return -ELOOP;
	}
	qcow2_depth++;
	r = block_open_path(path, fmt, BLOCK_OPEN_READ_ONLY, &s->backing);
	qcow2_depth--;
	if (r < 0)
		log_error("disk '%s': cannot open its backing file '%s' (%s)", bd->name, path,
			  fmt);
	return r;
}

/* What writing needs beyond reading: no snapshots (so every cluster in use
 * has refcount 1), 16-bit refcounts, a clean image, and the refcount table
 * in memory. Autoclear feature bits name extensions (bitmaps) we would not
 * keep up to date, so they are cleared as the spec asks of such writers. */
static int qcow2_open_writable(struct block_dev *bd, struct qcow2_state *s,
			       const struct qcow2_header *h)
{
	uint64_t rt_bytes = (uint64_t)h->refcount_table_clusters << s->cluster_bits;
	int r;

	if (h->nb_snapshots || h->refcount_order != 4 ||
	    (h->incompatible_features & (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT))) {
		log_error("disk '%s': this qcow2 image cannot be written here (internal "
			  "snapshots, refcount width other than 16 bits, or marked dirty/corrupt); "
			  "attach it read-only, or repair/convert it with qemu-img", bd->name);
		return -ENOTSUP;
	}
	if (!rt_bytes || rt_bytes > QCOW2_MAX_RT_BYTES ||
	    !qcow2_cluster_ok(s, h->refcount_table_offset) ||
	    rt_bytes > s->file_size - h->refcount_table_offset) {
		log_error("disk '%s': qcow2 refcount table is out of bounds; the image is damaged",
			  bd->name);
		return -EINVAL;
	}
	s->rt_offset = h->refcount_table_offset;
	s->rt_entries = (uint32_t)(rt_bytes / 8);
	s->rt = malloc(rt_bytes);
	if (!s->rt)
		return -ENOMEM;
	r = qcow2_pread(s, s->rt, rt_bytes, s->rt_offset);
	if (r < 0)
		return r;
	if (h->autoclear_features) {
		uint64_t zero = 0;
		if (pwrite(s->fd, &zero, 8, 88) != 8)
			return -EIO;
	}
	r = qcow2_meta_build(bd, s);
	if (r < 0)
		return r;
	/* New clusters go after everything in the file. */
	s->next_free = ALIGN_UP(s->file_size, s->cluster_size);
	s->writable = true;
	return 0;
}

static int qcow2_open(struct block_dev *bd, int fd, unsigned flags)
{
	struct qcow2_state *s = NULL;
	struct qcow2_header h;
	struct stat st;
	uint64_t ext_off;
	int r;

	/* Tables and partial clusters are read at any alignment, which
	 * O_DIRECT would refuse. */
	if ((flags & BLOCK_OPEN_DIRECT) || (fcntl(fd, F_GETFL) & O_DIRECT)) {
		log_error("disk '%s': qcow2 images cannot use direct I/O here; attach it without "
			  "the direct option", bd->name);
		return -ENOTSUP;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = fd;
	s->file_size = (uint64_t)st.st_size;
	memset(&h, 0, sizeof(h));
	if (s->file_size < QCOW2_V2_HEADER_LEN) {
		r = -EINVAL;
		goto bad;
	}
	r = qcow2_pread(s, &h, sizeof(h), 0);
	if (r < 0)
		goto out;
	h.magic = be32toh(h.magic);
	h.version = be32toh(h.version);
	h.backing_file_offset = be64toh(h.backing_file_offset);
	h.backing_file_size = be32toh(h.backing_file_size);
	h.cluster_bits = be32toh(h.cluster_bits);
	h.size = be64toh(h.size);
	h.crypt_method = be32toh(h.crypt_method);
	h.l1_size = be32toh(h.l1_size);
	h.l1_table_offset = be64toh(h.l1_table_offset);
	h.refcount_table_offset = be64toh(h.refcount_table_offset);
	h.refcount_table_clusters = be32toh(h.refcount_table_clusters);
	h.nb_snapshots = be32toh(h.nb_snapshots);
	h.incompatible_features = be64toh(h.incompatible_features);
	h.autoclear_features = be64toh(h.autoclear_features);
	h.refcount_order = be32toh(h.refcount_order);
	h.header_length = be32toh(h.header_length);
	if (h.magic != QCOW2_MAGIC || (h.version != 2 && h.version != 3)) {
		log_error("disk '%s': not a qcow2 image of version 2 or 3", bd->name);
		r = -EINVAL;
		goto out;
	}
	if (h.version == 2) {
		h.incompatible_features = 0;
		h.autoclear_features = 0;
		h.refcount_order = 4;
		h.header_length = QCOW2_V2_HEADER_LEN;
	} else if (h.header_length < QCOW2_V3_HEADER_LEN || h.header_length > 4096) {
		r = -EINVAL;
		goto bad;
	}
	if (h.incompatible_features & ~QCOW2_INCOMPAT_KNOWN) {
		uint64_t unknown = h.incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
		log_error("disk '%s': unknown incompatible feature bit %d; this image needs a "
			  "newer tool", bd->name, __builtin_ctzll(unknown));
		r = -ENOTSUP;
		goto out;
	}
	if (h.crypt_method != 0) {
		log_error("disk '%s': encrypted qcow2 images are not supported; decrypt it with "
			  "qemu-img convert first", bd->name);
		r = -ENOTSUP;
		goto out;
	}
	if (h.cluster_bits < QCOW2_MIN_CLUSTER_BITS || h.cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
		r = -EINVAL;
		goto bad;
	}
	s->cluster_bits = h.cluster_bits;
	s->cluster_size = 1ull << h.cluster_bits;
	s->l2_bits = h.cluster_bits - 3;
	/* Every virtual cluster needs an L1 slot: l1_size must cover size,
	 * computed without overflow for any 64-bit size. */
	uint64_t per_l1 = 1ull << (s->cluster_bits + s->l2_bits);
	uint64_t need = h.size / per_l1 + (h.size % per_l1 != 0);
	if (h.size > (1ull << 62) || need > h.l1_size ||
	    (uint64_t)h.l1_size * 8 > QCOW2_MAX_L1_BYTES ||
	    (h.l1_size && (!qcow2_cluster_ok(s, h.l1_table_offset) ||
			   (uint64_t)h.l1_size * 8 > s->file_size - h.l1_table_offset))) {
		r = -EINVAL;
		goto bad;
	}
	s->l1_size = h.l1_size;
	s->l1 = malloc(MAX((size_t)h.l1_size * 8, (size_t)8));
	s->l2 = malloc(s->cluster_size);
	s->buf = malloc(s->cluster_size);
	if (!s->l1 || !s->l2 || !s->buf) {
		r = -ENOMEM;
		goto out;
	}
	r = qcow2_pread(s, s->l1, (size_t)h.l1_size * 8, h.l1_table_offset);
	if (r < 0)
		goto out;
	s->l1_offset = h.l1_table_offset;
	if (!(flags & BLOCK_OPEN_READ_ONLY)) {
		r = qcow2_open_writable(bd, s, &h);
		if (r < 0)
			goto out;
	}
	ext_off = h.header_length;
	bd->size = h.size;
	bd->opaque = s;
	if (h.backing_file_offset) {
		r = qcow2_open_backing(bd, s, &h, ext_off);
		if (r < 0)
			goto out;
	}
	r = 0;
	s = NULL;
	goto out;
bad:
	log_error("disk '%s': qcow2 header is invalid (version %u, cluster bits %u, L1 size %u); "
		  "the image is damaged", bd->name, h.version, h.cluster_bits, h.l1_size);
out:
	if (s) {
		bd->opaque = NULL;
		qcow2_state_free(s);
	}
	return r;
}

static void qcow2_close(struct block_dev *bd)
{
	struct qcow2_state *s = bd->opaque;

	if (!s)
		return;
	close(s->fd);
	qcow2_state_free(s);
	bd->opaque = NULL;
}

/* Where virtual offset voff lives: *host = 0 for "not allocated here",
 * *zero for "reads as zeroes". */
static int qcow2_lookup(struct block_dev *bd, uint64_t voff, uint64_t *host, bool *zero)
{
	struct qcow2_state *s = bd->opaque;
	uint64_t l1_idx = voff >> (s->cluster_bits + s->l2_bits);
	uint64_t l2_idx = (voff >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
	uint64_t l2_off, e;
	int r;

	*host = 0;
	*zero = false;
	if (l1_idx >= s->l1_size)
		return 0;
	l2_off = be64toh(s->l1[l1_idx]) & QCOW2_OFFSET_MASK;
	if (!l2_off)
		return 0;
	if (!qcow2_cluster_ok(s, l2_off))
		goto corrupt;
	if (s->l2_offset != l2_off) {
		s->l2_offset = 0;
		r = qcow2_pread(s, s->l2, s->cluster_size, l2_off);
		if (r < 0)
			return r;
		s->l2_offset = l2_off;
	}
	e = be64toh(s->l2[l2_idx]);
	if (e & QCOW2_L2_COMPRESSED) {
		log_ratelimited(LOG_LEVEL_WARN, "disk '%s': compressed qcow2 clusters are not "
				"supported; convert the image without -c", bd->name);
		return -ENOTSUP;
	}
	if (e & QCOW2_L2_ZERO) {
		*zero = true;
		return 0;
	}
	*host = e & QCOW2_OFFSET_MASK;
	if (*host && !qcow2_cluster_ok(s, *host))
		goto corrupt;
	return 0;
corrupt:
	log_ratelimited(LOG_LEVEL_WARN, "disk '%s': qcow2 table entry for offset %llu points "
			"outside the image; the image is damaged", bd->name,
			(unsigned long long)voff);
	return -EIO;
}

static int qcow2_preadv(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset)
{
	struct qcow2_state *s = bd->opaque;
	size_t total = iov_size(iov, cnt), done = 0;
	int r;

	while (done < total) {
		uint64_t voff = offset + done;
		uint64_t in = voff & (s->cluster_size - 1);
		size_t n = (size_t)MIN(s->cluster_size - in, (uint64_t)(total - done));
		uint64_t host;
		bool zero;

		r = qcow2_lookup(bd, voff, &host, &zero);
		if (r < 0)
			return r;
		if (host) {
			r = qcow2_pread(s, s->buf, n, host + in);
		} else if (!zero && s->backing && voff < s->backing->size) {
			/* The backing file may be smaller than the overlay:
			 * what lies beyond it reads as zeroes. */
			size_t nb = (size_t)MIN((uint64_t)n, s->backing->size - voff);
			struct iovec v = {s->buf, nb};
			r = block_preadv(s->backing, &v, 1, voff);
			memset(s->buf + nb, 0, n - nb);
		} else {
			memset(s->buf, 0, n);
			r = 0;
		}
		if (r < 0)
			return r;
		iov_from_buf(iov, cnt, done, s->buf, n);
		done += n;
	}
	return 0;
}

static int qcow2_pwrite_all(struct qcow2_state *s, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(s->fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	if (off + len > s->file_size)
		s->file_size = off + len;
	return 0;
}

/* Set the 16-bit refcount of the cluster at host offset off to 1, creating
 * its refcount block when needed. depth bounds the recursion: a new
 * refcount block needs a refcount of its own, normally in itself. */
static int qcow2_refcount_set_one(struct qcow2_state *s, uint64_t off, unsigned depth)
{
	uint64_t per_block = s->cluster_size / 2;
	uint64_t idx = off >> s->cluster_bits;
	uint64_t rt_idx = idx / per_block, rb;
	uint16_t one = htobe16(1);
	int r;

	if (rt_idx >= s->rt_entries || depth > 2)
		return -ENOSPC;
	rb = be64toh(s->rt[rt_idx]) & QCOW2_OFFSET_MASK;
	if (!rb) {
		/* Rare (once per refcount block), so a fresh zeroed buffer:
		 * s->buf may hold the data being written. */
		uint8_t *zero = calloc(1, s->cluster_size);
		if (!zero)
			return -ENOMEM;
		rb = s->next_free;
		s->next_free += s->cluster_size;
		r = qcow2_pwrite_all(s, zero, s->cluster_size, rb);
		free(zero);
		if (r < 0)
			return r;
		uint64_t e = htobe64(rb);
		r = qcow2_pwrite_all(s, &e, 8, s->rt_offset + rt_idx * 8);
		if (r < 0)
			return r;
		s->rt[rt_idx] = e;
		r = qcow2_meta_add(s, rb);
		if (r < 0)
			return r;
		r = qcow2_refcount_set_one(s, rb, depth + 1);
		if (r < 0)
			return r;
	} else if (!qcow2_cluster_ok(s, rb)) {
		return -EIO;
	}
	return qcow2_pwrite_all(s, &one, 2, rb + (idx % per_block) * 2);
}

static int qcow2_alloc_cluster(struct block_dev *bd, uint64_t *off)
{
	struct qcow2_state *s = bd->opaque;
	int r;

	*off = s->next_free;
	s->next_free += s->cluster_size;
	r = qcow2_refcount_set_one(s, *off, 0);
	if (r == -ENOSPC)
		log_ratelimited(LOG_LEVEL_WARN, "disk '%s': the qcow2 refcount table is full; "
				"copy the image with 'qemu-img convert' to grow it", bd->name);
	return r;
}

/* The L2 table for virtual offset voff, allocated when missing; the cache
 * then holds it and *l2_off says where it is. */
static int qcow2_l2_for_write(struct block_dev *bd, uint64_t voff, uint64_t *l2_off)
{
	struct qcow2_state *s = bd->opaque;
	uint64_t l1_idx = voff >> (s->cluster_bits + s->l2_bits);
	uint64_t e, off;
	int r;

	if (l1_idx >= s->l1_size)
		return -EIO;
	e = be64toh(s->l1[l1_idx]);
	off = e & QCOW2_OFFSET_MASK;
	if (!off) {
		r = qcow2_alloc_cluster(bd, &off);
		if (r == 0)
			r = qcow2_meta_add(s, off);
		if (r < 0)
			return r;
		memset(s->l2, 0, s->cluster_size);
		s->l2_offset = 0;
		r = qcow2_pwrite_all(s, s->l2, s->cluster_size, off);
		if (r < 0)
			return r;
		uint64_t ne = htobe64(off | QCOW2_COPIED);
		r = qcow2_pwrite_all(s, &ne, 8, s->l1_offset + l1_idx * 8);
		if (r < 0)
			return r;
		s->l1[l1_idx] = ne;
		s->l2_offset = off;
	} else if (!(e & QCOW2_COPIED) || !qcow2_cluster_ok(s, off)) {
		/* Shared L2 tables only exist with snapshots, refused at open. */
		return -EIO;
	} else if (s->l2_offset != off) {
		s->l2_offset = 0;
		r = qcow2_pread(s, s->l2, s->cluster_size, off);
		if (r < 0)
			return r;
		s->l2_offset = off;
	}
	*l2_off = off;
	return 0;
}

static int qcow2_pwritev(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset)
{
	struct qcow2_state *s = bd->opaque;
	size_t total = iov_size(iov, cnt), done = 0;
	int r;

	if (!s->writable)
		return -EROFS;
	while (done < total) {
		uint64_t voff = offset + done;
		uint64_t in = voff & (s->cluster_size - 1);
		size_t n = (size_t)MIN(s->cluster_size - in, (uint64_t)(total - done));
		uint64_t l2_off, l2_idx = (voff >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);

		r = qcow2_l2_for_write(bd, voff, &l2_off);
		if (r < 0)
			return r;
		uint64_t e = be64toh(s->l2[l2_idx]);
		uint64_t host = e & QCOW2_OFFSET_MASK;
		if (e & QCOW2_L2_COMPRESSED)
			return -ENOTSUP;
		if (host && !qcow2_cluster_ok(s, host))
			return -EIO;
		if (host && (e & QCOW2_COPIED) && qcow2_is_meta(s, host)) {
			/* Writing there would rewrite a table (QEMU marks such an
			 * image corrupt): fail the request, not the image. */
			log_ratelimited(LOG_LEVEL_ERROR, "disk '%s': a qcow2 L2 entry points data at "
					"a metadata cluster (offset %llu); the image is damaged: "
					"repair it with 'qemu-img check -r all'", bd->name,
					(unsigned long long)host);
			return -EIO;
		}
		if (host && (e & QCOW2_COPIED) && !(e & QCOW2_L2_ZERO)) {
			/* Our own cluster: overwrite in place. */
			iov_to_buf(iov, cnt, done, s->buf, n);
			r = qcow2_pwrite_all(s, s->buf, n, host + in);
			if (r < 0)
				return r;
			done += n;
			continue;
		}
		/* A preallocated zero cluster we own is reused, else a new
		 * cluster is taken (before the buffer is filled: allocating
		 * may write a refcount block). */
		uint64_t target = host;
		if (!(host && (e & QCOW2_COPIED))) {
			r = qcow2_alloc_cluster(bd, &target);
			if (r < 0)
				return r;
		}
		/* What the write does not cover comes from below (backing
		 * file, or zeroes for a zero cluster or without backing), so
		 * the whole cluster is built in the buffer. */
		if (n < s->cluster_size) {
			uint64_t cstart = voff - in;
			if (!(e & QCOW2_L2_ZERO) && !host && s->backing && cstart < s->backing->size) {
				size_t nb = (size_t)MIN(s->cluster_size, s->backing->size - cstart);
				struct iovec v = {s->buf, nb};
				r = block_preadv(s->backing, &v, 1, cstart);
				if (r < 0)
					return r;
				memset(s->buf + nb, 0, s->cluster_size - nb);
			} else {
				memset(s->buf, 0, s->cluster_size);
			}
		}
		iov_to_buf(iov, cnt, done, s->buf + in, n);
		r = qcow2_pwrite_all(s, s->buf, s->cluster_size, target);
		if (r < 0)
			return r;
		uint64_t ne = htobe64(target | QCOW2_COPIED);
		r = qcow2_pwrite_all(s, &ne, 8, l2_off + l2_idx * 8);
		if (r < 0)
			return r;
		s->l2[l2_idx] = ne;
		done += n;
	}
	return 0;
}

static int qcow2_flush(struct block_dev *bd)
{
	struct qcow2_state *s = bd->opaque;

	if (!s->writable)
		return 0;
	while (fdatasync(s->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

const struct block_driver block_driver_qcow2 = {
	.name = "qcow2",
	.open = qcow2_open,
	.preadv = qcow2_preadv,
	.pwritev = qcow2_pwritev,
	.flush = qcow2_flush,
	.close = qcow2_close,
};
