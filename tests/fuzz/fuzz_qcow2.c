/* fuzz_qcow2: libFuzzer target for the qcow2 driver. The input is a whole
 * image file in a memfd, opened writable when the driver accepts that and
 * read-only otherwise; chunks spread over the virtual disk are read and, if
 * writable, written and read back. A header, L1, L2 or refcount entry that
 * escapes the checks shows up as an ASan/UBSan report, an abort (data not
 * reading back), a hang or a huge allocation. The backing file fields are cleared first: a fuzzer must not
 * open host files by name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"
#include "lib/log.h"
#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[64 * 1024];
	struct block_dev *bd = NULL;
	int fd;

	log_set_level(LOG_LEVEL_ERROR);
	if (size > 4 * 1024 * 1024)
		return 0;
	fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	if (size >= 20) {
		/* backing_file_offset (8 bytes at 8) and size (4 at 16) */
		static const uint8_t zero[12];
		if (pwrite(fd, zero, sizeof(zero), 8) != (ssize_t)sizeof(zero))
			abort();
	}
	/* Writable when the image allows it (the memfd is ours to change),
	 * else read-only. */
	if (block_open_driver(&block_driver_qcow2, fd, 0, "fuzz.qcow2", &bd) < 0 &&
	    block_open_driver(&block_driver_qcow2, fd, BLOCK_OPEN_READ_ONLY, "fuzz.qcow2", &bd) < 0) {
		close(fd);
		return 0;
	}
	/* At most 64 chunks spread over the disk: read each, and write a
	 * partial cluster into it when writable, then read it back. */
	uint64_t step = MAX(bd->size / 64, (uint64_t)sizeof(buf));
	for (uint64_t off = 0; off < bd->size; off += step) {
		struct iovec v = {buf, (size_t)MIN((uint64_t)sizeof(buf) - 512, bd->size - off)};
		block_preadv(bd, &v, 1, off);
		if (!bd->read_only) {
			struct iovec w = {buf, (size_t)MIN((uint64_t)1536, bd->size - off)};
			memset(buf, 0xa5, w.iov_len);
			if (block_pwritev(bd, &w, 1, off) == 0 && block_preadv(bd, &w, 1, off) == 0 &&
			    buf[0] != 0xa5)
				abort(); /* what was written must read back */
		}
	}
	block_flush(bd);
	block_free(bd);
	return 0;
}
