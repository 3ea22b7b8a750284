/* block: the block layer's driver interface. A block_dev is one open disk
 * image behind a driver vtable: raw, and qcow2 (with backing chains; no
 * compression, no internal snapshots when writing). Everything above it
 * (virtio-blk, tools) speaks byte offsets with full-length transfers,
 * bounds-checked here against the disk size so no driver has to trust its
 * caller.
 *
 * Threading: a block_dev has no lock. Its user (one virtio-blk device, whose
 * requests run on one thread) serialises calls; the stats counters are
 * updated atomically so another thread may read them. */
#ifndef VESSEL_BLOCK_BLOCK_H
#define VESSEL_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define BLOCK_SECTOR_SHIFT 9
#define BLOCK_SECTOR_SIZE (1u << BLOCK_SECTOR_SHIFT)

/* block_open_*() flags */
#define BLOCK_OPEN_READ_ONLY (1u << 0) /* refuse writes, open the file O_RDONLY */
#define BLOCK_OPEN_DIRECT (1u << 1)    /* bypass the host page cache (O_DIRECT) */

struct block_dev;

struct block_driver {
	const char *name;
	/* Take over fd, set up bd->opaque and bd->size. On failure leave fd
	 * open (the caller still owns it) and free what was set up. */
	int (*open)(struct block_dev *bd, int fd, unsigned flags);
	/* Transfer exactly iov_size(iov) bytes at offset, within bd->size.
	 * Return 0 or a negative errno. */
	int (*preadv)(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset);
	int (*pwritev)(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset);
	/* Make every completed write durable (fdatasync for raw). */
	int (*flush)(struct block_dev *bd);
	/* Optional (NULL = -EOPNOTSUPP): drop / zero a byte range. */
	int (*discard)(struct block_dev *bd, uint64_t offset, uint64_t len);
	int (*write_zeroes)(struct block_dev *bd, uint64_t offset, uint64_t len);
	/* Release opaque and close the fd. */
	void (*close)(struct block_dev *bd);
};

struct block_stats {
	uint64_t rd_ops, rd_bytes;
	uint64_t wr_ops, wr_bytes;
	uint64_t flush_ops;   /* successful driver flushes (fdatasync for raw) */
	uint64_t discard_ops;
	uint64_t errors;
};

struct block_dev {
	const struct block_driver *drv;
	void *opaque;        /* driver state */
	char *name;          /* path or caller-given name, for messages */
	bool read_only;
	uint64_t size;       /* bytes */
	struct block_stats stats;
};

/* The driver called `format` ("raw"), or NULL. */
const struct block_driver *block_driver_find(const char *format);

/* Open a disk from an already-open fd (the monitor receives its disks as
 * fds). On success the block_dev owns fd; on failure the caller still does.
 * name is used in messages. A writable disk needs an fd opened for writing
 * (-EBADF otherwise). Returns 0, -EINVAL (unknown format) or the driver's
 * error. */
int block_open_fd(int fd, const char *format, unsigned flags, const char *name,
		  struct block_dev **out);

/* The same with an explicit driver: one not in the format table yet, or a
 * test's wrapper around a real driver. */
int block_open_driver(const struct block_driver *drv, int fd, unsigned flags, const char *name,
		      struct block_dev **out);

/* Open path (O_RDONLY with BLOCK_OPEN_READ_ONLY, else O_RDWR; O_DIRECT with
 * BLOCK_OPEN_DIRECT) and call block_open_fd(). */
int block_open_path(const char *path, const char *format, unsigned flags, struct block_dev **out);

/* Close the disk and free it. block_free(NULL) is a no-op. */
void block_free(struct block_dev *bd);

/* Bounds-checked sector math: the byte offset of `sector` when `bytes`
 * bytes from there fit inside the disk. -ERANGE when the range is outside
 * the disk (or overflows), -EINVAL when bytes is not whole sectors. */
int block_sector_range(const struct block_dev *bd, uint64_t sector, uint64_t bytes,
		       uint64_t *offset);

/* Whole sectors in the disk (a partial last sector is not addressable). */
uint64_t block_sectors(const struct block_dev *bd);

/* Full-length I/O at a byte offset; -ERANGE outside the disk, -EROFS for
 * writes to a read-only disk, else 0 or the driver's negative errno. */
int block_preadv(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset);
int block_pwritev(struct block_dev *bd, const struct iovec *iov, unsigned cnt, uint64_t offset);
int block_flush(struct block_dev *bd);
/* -EOPNOTSUPP when the driver cannot discard. */
int block_discard(struct block_dev *bd, uint64_t offset, uint64_t len);
/* Falls back to writing zero buffers when the driver has no fast path. */
int block_write_zeroes(struct block_dev *bd, uint64_t offset, uint64_t len);

/* Drivers */
extern const struct block_driver block_driver_raw;
extern const struct block_driver block_driver_qcow2;

#endif
