/* fuzz_virtq: libFuzzer target for the split virtqueue. The input is a ring
 * image (queue registers plus guest RAM, see virtq_replay.h); every chain
 * it makes available is popped, every buffer byte touched, and the chain
 * pushed back, so a pointer outside guest RAM, a loop that never ends or an
 * unchecked index shows up as an ASan/UBSan report or a timeout. */
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "virtq_replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtq_replay_result res;

	log_set_level(LOG_LEVEL_ERROR);
	virtq_replay_run(data, size, &res);
	return 0;
}
