/**
 * Packing a code's indices into its LSB-first bit stream: the bytes that
 * put_bits (coord_rules.h) gives index by index, written many at a time.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace faiss_turbo {

/// put_bits of the n indices idx (each < 2^nbits, nbits 1..8) from bit
/// pos of p on, into memory zeroed there: the same bytes, 16 indices per
/// step for 1, 2 and 4 bits from a byte boundary, 8 otherwise. p must
/// have 8 writable bytes past the last bit. Returns the bit position after
/// them.
size_t
pack_indices(const uint8_t* idx, size_t n, int nbits, uint8_t* p, size_t pos);

} // namespace faiss_turbo
