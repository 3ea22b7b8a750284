/* qemu_img: run qemu-img (create, convert with progress, info, resize) for
 * disks and images, and hash files. qemu-img is the reference
 * implementation of the formats vessel accepts, so vesseld calls it rather
 * than parsing vmdk/vhd itself. */
#ifndef VESSEL_DAEMON_QEMU_IMG_H
#define VESSEL_DAEMON_QEMU_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called with 0..100 as qemu-img -p reports progress. */
typedef void qemu_img_progress_fn(void *opaque, int percent);

/* Run `bin args...` (args NULL-terminated, without argv[0]). On a non-zero
 * exit returns -EIO and sets *err (malloc'd) to a sentence that includes
 * qemu-img's own error text. */
int qemu_img_run(const char *bin, const char *const *args, qemu_img_progress_fn *progress,
		 void *opaque, char **out_stdout, char **err);

/* Find the last "(NN.NN/100%)" that qemu-img -p printed in buf. */
bool qemu_img_parse_progress(const char *buf, size_t len, double *pct);

struct qemu_img_info {
	char format[16];       /* "raw", "qcow2", "vmdk", "vpc", ... */
	uint64_t virtual_size; /* bytes */
	uint64_t actual_size;  /* bytes on the host */
	char backing[4096];    /* backing file name, empty when none */
};

/* Parse `qemu-img info --output=json` text. */
int qemu_img_info_parse(const char *json, struct qemu_img_info *out);
/* format NULL = let qemu-img probe. */
int qemu_img_info(const char *bin, const char *path, const char *format,
		  struct qemu_img_info *out, char **err);

/* SHA-256 of a file as 64 lowercase hex digits. */
int qemu_img_sha256(const char *path, char hex[65]);

#endif
