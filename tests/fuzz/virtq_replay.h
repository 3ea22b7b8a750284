/* virtq_replay: run one "ring image" through the device side of a split
 * virtqueue. The same input format feeds the fuzz_virtq fuzzer, the
 * malformed-descriptor corpus in tests/data/virtq-corpus/ and the unit test
 * that replays that corpus, so a crash the fuzzer finds can be saved as a
 * corpus file and stays covered.
 *
 * Input layout (little-endian):
 *   0  u16 queue size           2  u16 device's last_avail_idx
 *   4  u16 device's used_idx     6  u8  flags: 1 = INDIRECT_DESC, 2 = EVENT_IDX
 *   7  u8  max pops (0 = 16)     8  u32 desc table offset from RAM start
 *  12  u32 avail ring offset    16  u32 used ring offset
 *  20  guest RAM image (at most REPLAY_RAM_SIZE bytes, rest zero), mapped at
 *      guest physical REPLAY_RAM_GPA. Descriptor addresses are guest
 *      physical, so anything below REPLAY_RAM_GPA is outside RAM. */
#ifndef VESSEL_TESTS_VIRTQ_REPLAY_H
#define VESSEL_TESTS_VIRTQ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_HDR_SIZE 20
#define REPLAY_RAM_GPA 0x10000ull
#define REPLAY_RAM_SIZE 0x10000u

struct virtq_replay_result {
	int first_error;   /* first virtq_pop() result other than 0/-ENOENT, else 0 */
	unsigned popped;   /* chains popped (and pushed back) before that */
	unsigned notifies; /* virtq_should_notify() == true */
};

/* Returns 0, or -EINVAL when the input is shorter than the header. */
int virtq_replay_run(const uint8_t *data, size_t len, struct virtq_replay_result *res);

#endif
