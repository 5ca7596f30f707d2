/**
 * A search's IDSelector on the GPU: a bitmap over code positions, built on
 * the host. The exact rescoring (ExactQueries::allow) gives a left-out code
 * the key +inf and the approximate passes never make one a candidate
 * (CandidateLists::allow). The flat index rescores the kept codes alone
 * when few are kept, and otherwise draws its sample from them, so the
 * sample's k-th best key bounds the kept codes' k-th best. The results
 * equal the CPU's search with the same selector; slots with a +inf key
 * (left out, or fewer than k codes) get label -1, as the CPU leaves them.
 * Host code only.
 */
#pragma once

#include <cstdint>
#include <vector>

#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/impl/compat.h>

namespace faiss_turbo {
namespace gpu {

/// words for a bitmap over n positions, all clear
inline std::vector<uint32_t> position_bitmap(size_t n) {
    return std::vector<uint32_t>((n + 31) / 32, 0);
}

/// sets bit p (word p / 32, bit p % 32) for each position p of pos[0, npos)
/// (of 0 .. npos - 1 when pos is null) whose id, labels[p] (p itself when
/// labels is null), sel holds: one is_member call per position, as the
/// CPU's scan makes per code it reads
void mark_allowed(
    const faiss::IDSelector& sel,
    const int* pos,
    size_t npos,
    const idx_t* labels,
    uint32_t* words);

/// results of a search: a +inf key (distance +inf for L2, -inf for inner
/// products) is an empty slot, label -1, as in the CPU's heaps (a code left
/// out by a selector, fewer codes than k, a score of +-inf or NaN)
void clear_left_out(size_t n, bool l2, const float* distances, idx_t* labels);

} // namespace gpu
} // namespace faiss_turbo
