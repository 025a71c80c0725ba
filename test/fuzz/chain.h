/*
 * A descriptor chain shaped by the fuzzer's input, for the targets that hand a device whole
 * chains (fuzz_blk, fuzz_net): its buffers' lengths and the guest's bytes in them come from
 * the input; how many buffers of each kind is the target's own format.
 */
#ifndef CROSVM_TEST_FUZZ_CHAIN_H
#define CROSVM_TEST_FUZZ_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/queue.h"

/*
 * Lays out nr_out readable then nr_in writable buffers one after another in arena (arena_len
 * bytes), their lengths read from *p: 2 bytes each, little-endian, mod max_len + 1, an empty
 * one made 1 byte (the queue drops empty buffers before a device sees them). Then copies as
 * many of the input's next bytes as the readable buffers hold into them (the guest's request);
 * the rest of the arena is left as it was. c->iov and c->iov_cap are the caller's; the rest
 * of *c is set. *p moves past what was used. -EINVAL if the input ends before the lengths do,
 * -ENOSPC if the buffers outnumber c->iov_cap or do not fit the arena.
 */
int fuzz_chain_build(struct virtq_chain *c, unsigned nr_out, unsigned nr_in, uint32_t max_len,
		     uint8_t *arena, size_t arena_len, const uint8_t **p, const uint8_t *end);

#endif
