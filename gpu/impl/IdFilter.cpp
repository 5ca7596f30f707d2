#include <gpu/impl/IdFilter.h>

#include <cmath>

namespace faiss_turbo {
namespace gpu {

void mark_allowed(
    const faiss::IDSelector& sel,
    const int* pos,
    size_t npos,
    const idx_t* labels,
    uint32_t* words) {
    for (size_t i = 0; i < npos; i++) {
        const size_t p = pos ? (size_t)pos[i] : i;
        if (sel.is_member(labels ? labels[p] : (idx_t)p)) {
            words[p / 32] |= 1u << (p % 32);
        }
    }
}

void clear_left_out(size_t n, bool l2, const float* distances, idx_t* labels) {
    const float empty = l2 ? INFINITY : -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (distances[i] == empty) {
            labels[i] = -1;
        }
    }
}

} // namespace gpu
} // namespace faiss_turbo
