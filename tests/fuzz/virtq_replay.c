/* virtq_replay: set up guest RAM and a virtqueue from an input image and pop
 * every chain it makes available, touching every byte of every buffer so
 * AddressSanitizer sees any pointer that escaped guest RAM. */
#include "virtq_replay.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/mem.h"
#include "vmm/virtio/queue.h"

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

int virtq_replay_run(const uint8_t *data, size_t len, struct virtq_replay_result *res)
{
	struct guest_mem mem = {0};
	struct virtq vq = {0};
	struct virtq_elem *elem = NULL;
	uint8_t *ram = NULL;
	unsigned max_pops;
	int r;

	memset(res, 0, sizeof(*res));
	if (len < REPLAY_HDR_SIZE)
		return -EINVAL;
	ram = calloc(1, REPLAY_RAM_SIZE);
	elem = malloc(sizeof(*elem));
	if (!ram || !elem) {
		r = -ENOMEM;
		goto out;
	}
	size_t img = len - REPLAY_HDR_SIZE;
	memcpy(ram, data + REPLAY_HDR_SIZE, img < REPLAY_RAM_SIZE ? img : REPLAY_RAM_SIZE);
	r = guest_mem_add_region(&mem, REPLAY_RAM_GPA, REPLAY_RAM_SIZE, ram);
	if (r < 0)
		goto out;

	vq.max_size = VIRTQ_MAX_SIZE;
	vq.size = rd16(data);
	vq.last_avail_idx = rd16(data + 2);
	vq.used_idx = rd16(data + 4);
	vq.indirect = data[6] & 1;
	vq.event_idx = data[6] & 2;
	vq.enabled = true;
	max_pops = data[7] ? data[7] : 16;
	vq.desc_gpa = REPLAY_RAM_GPA + rd32(data + 8);
	vq.avail_gpa = REPLAY_RAM_GPA + rd32(data + 12);
	vq.used_gpa = REPLAY_RAM_GPA + rd32(data + 16);

	for (unsigned n = 0; n < max_pops; n++) {
		int pr = virtq_pop(&vq, &mem, elem);
		if (pr == -ENOENT)
			break;
		if (pr < 0) {
			res->first_error = pr;
			break;
		}
		/* Read every readable byte and write every writable one. */
		volatile uint8_t sink = 0;
		for (unsigned i = 0; i < elem->out_num; i++)
			for (size_t b = 0; b < elem->iov[i].iov_len; b++)
				sink ^= ((uint8_t *)elem->iov[i].iov_base)[b];
		(void)sink;
		for (unsigned i = elem->out_num; i < elem->out_num + elem->in_num; i++)
			memset(elem->iov[i].iov_base, 0xa5, elem->iov[i].iov_len);
		res->popped++;
		if (virtq_push(&vq, &mem, elem->head, elem->in_len) < 0)
			break;
		if (virtq_should_notify(&vq, &mem))
			res->notifies++;
	}
	r = 0;
out:
	free(elem);
	free(ram);
	return r;
}
