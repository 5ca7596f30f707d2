/**
 * Exact scans of TurboQuant codes: every code scored with the codec's
 * estimator (TurboQuantizer::combine), top-k or range selection. Used by the
 * flat index; the IVF scanner scores the same way.
 *
 * Results do not depend on the thread count: each score is computed by the
 * same arithmetic whatever the partition, and ties are broken by label.
 */
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/compat.h>
#include <faiss_turbo/impl/omp_errors.h>

/// a score loop compiled for AVX-512 and AVX2 as well, chosen by the CPU:
/// the same float operations lane by lane (never contracted into FMA, as in
/// the whole library), so the same scores
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) &&         \
        defined(__GLIBC__) // target_clones needs the loader's ifunc
#define FAISS_TURBO_CLONES                                                     \
    __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FAISS_TURBO_CLONES
#endif

namespace faiss_turbo {

/// k nearest (L2) or largest inner products, FAISS's conventions: sorted,
/// label -1 and +inf (L2) / -inf (IP) when fewer than k results
void scan_knn(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        size_t ncodes,
        const TQQueries& queries,
        size_t k,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel);

/// all codes with distance < radius (L2) or inner product > radius (IP)
void scan_range(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        size_t ncodes,
        const TQQueries& queries,
        float radius,
        faiss::RangeSearchResult* result,
        const faiss::IDSelector* sel);

/// where scan_range reads codes [i0, i0 + n) as rows (n <= 128): a pointer
/// to them, or to buf (n * code_size bytes) after filling it
using RowCodes =
        std::function<const uint8_t*(size_t i0, size_t n, uint8_t* buf)>;

/// scan_range over codes in another layout (the fast-scan blocks)
void scan_range(
        const TurboQuantizer& tq,
        const RowCodes& rows,
        size_t ncodes,
        const TQQueries& queries,
        float radius,
        faiss::RangeSearchResult* result,
        const faiss::IDSelector* sel);

/// sort a heap of k results into FAISS's output order, the empty slots last
/// with label -1 and +inf / -inf
void finalize_topk(bool l2, size_t k, float* vals, idx_t* ids);

/// fill k slots with the empty value (+inf / -inf, -1): the heap's start
void init_topk(bool l2, size_t k, float* vals, idx_t* ids);

/// offer (val, id) to a heap of size k. Ties at the k-th place are FAISS's
/// heaps' (CMax / CMin::cmp2): the smaller id stays for L2, the larger for
/// IP, as in FAISS's own IVF result heaps that our IVF scanner fills
void push_topk(bool l2, size_t k, float* vals, idx_t* ids, float v, idx_t id);

/// slices of the codes per chunk of queries, so that nchunks * slices
/// tasks keep the threads busy: one unless there are fewer chunks than
/// threads, and only as many as have enough work to pay for waking a
/// thread. work: code bytes x queries of a chunk; nunits: the most slices
size_t scan_slices(size_t nchunks, size_t nunits, double work);

/// codes [0, n) of `block` (code_size bytes each), readable for max_read
/// bytes past each code's start, as SIMD kernels read them: the block
/// itself, or a zero-padded copy in pad near the end of the array (avail:
/// bytes from block to the end of the array)
const uint8_t* readable_codes(
        size_t code_size,
        size_t max_read,
        const uint8_t* block,
        size_t n,
        size_t avail,
        std::vector<uint8_t>& pad);

/// bit i set when s[i] is at least as good as top (ties included: the
/// label decides them), n <= 64. Most blocks of a scan hold no candidate
/// that beats a reservoir's bound, and the others few: the set bits are
/// then the only codes looked at one by one. 16 scores a compare where the
/// CPU has AVX-512 (the same bits)
uint64_t reach_mask(bool l2, const float* s, size_t n, float top);

/** The kk best (score, id) of a stream, ties as push_topk's: the same set
 * as a heap of kk, for far fewer mispredicted branches.
 * An offer that beats the bound is appended; a buffer of 2 kk is cut back to
 * its kk best, which tightens the bound: the kk-th best score is selected on
 * 4-byte keys (a branch-free quickselect), then one pass keeps the better
 * entries and, of those equal to it, the best by id. On SIFT at k = 64 the
 * heap took 640 replacements per query of 7 levels each, a fifth of the
 * search.
 */
struct TopkReservoir {
    bool l2 = true;
    size_t kk = 0;
    float bound;         ///< offers must beat (bound, bound_id)
    idx_t bound_id = -1; ///< (+inf / -inf, -1) until the first cut
    std::vector<std::pair<float, idx_t>> buf;

    TopkReservoir(bool l2, size_t kk);

    bool beats(float v, idx_t id) const {
        return l2 ? v < bound || (v == bound && id < bound_id)
                  : v > bound || (v == bound && id > bound_id);
    }

    /// a candidate that beats() the bound
    void add(float v, idx_t id) {
        buf.emplace_back(v, id);
        if (buf.size() == 2 * kk) {
            cut();
        }
    }

    /// keep the kk best, the bound becomes the worst of them
    void cut();

    /// the kk best into vals / ids (kk slots, unordered, empty ones as
    /// init_topk fills them): finalize_topk sorts them
    void finish(float* vals, idx_t* ids);

    /// offer every entry of another reservoir (a slice of the same scan)
    void merge(const TopkReservoir& other);
};

/// the kk best values of a stream, without ids (the pre-scan's seeds need
/// the value of rank kk only): a heap whose top is the worst kept. The
/// same beats / add / bound as TopkReservoir; on the seeds' sample (some
/// 130 entries a query, kk about 21) it replaced a reservoir whose cuts of
/// 2 kk entries cost more than the sample's scan
struct TopValues {
    bool l2;
    size_t kk;
    float bound; ///< the worst kept once kk are, else the worst possible
    std::vector<float> heap;

    TopValues(bool l2, size_t kk)
        : l2(l2),
          kk(kk),
          bound(l2 ? std::numeric_limits<float>::infinity()
                   : -std::numeric_limits<float>::infinity()) {
        FAISS_THROW_IF_NOT_MSG(kk > 0, "TopValues: kk must be > 0");
    }

    bool beats(float v, idx_t) const {
        return l2 ? v < bound : v > bound;
    }

    void add(float v, idx_t) {
        if (l2) {
            push(v, std::less<float>());
        } else {
            push(v, std::greater<float>());
        }
    }

    template <class Worse> void push(float v, Worse worse) {
        if (heap.size() < kk) {
            heap.push_back(v);
            std::push_heap(heap.begin(), heap.end(), worse);
        } else if (worse(v, heap.front())) {
            // v replaces the worst: one sift down, not a pop and a push
            size_t i = 0;
            for (size_t c = 1; c < kk; i = c, c = 2 * c + 1) {
                c += c + 1 < kk && worse(heap[c], heap[c + 1]);
                if (!worse(v, heap[c])) {
                    break;
                }
                heap[i] = heap[c];
            }
            heap[i] = v;
        }
        if (heap.size() == kk) {
            bound = heap.front();
        }
    }

    void merge(const TopValues& other) {
        for (float v : other.heap) {
            if (beats(v, 0)) {
                add(v, 0);
            }
        }
    }
};

/// candidates kept per query by a quantized scan: k, or with re-scoring
/// (rerank_factor >= 1) ceil(k * rerank_factor), at most max(ncodes, k)
size_t scan_candidates(size_t k, float rerank_factor, size_t ncodes);

/** The k results of query qi from its kk candidates (cv, ci as
 * TopkReservoir::finish leaves them): re-scored with the exact estimator
 * when rerank, code_of(id, buf) giving the row code of id (buf: code_size
 * bytes it may fill), or the candidates' own scores. D, L: k slots.
 */
template <class CodeOf>
void finish_candidates(
        const TurboQuantizer& tq,
        const TQQueries& q,
        size_t qi,
        size_t k,
        size_t kk,
        bool rerank,
        float* cv,
        idx_t* ci,
        float* D,
        idx_t* L,
        CodeOf&& code_of) {
    if (!rerank) {
        finalize_topk(q.l2, kk, cv, ci);
        std::copy(cv, cv + k, D);
        std::copy(ci, ci + k, L);
        return;
    }
    std::vector<float> buf(2 * tq.d);
    std::vector<uint8_t> row(tq.code_size);
    init_topk(q.l2, k, D, L);
    for (size_t j = 0; j < kk; j++) {
        if (ci[j] >= 0) {
            const uint8_t* code = code_of(ci[j], row.data());
            push_topk(q.l2, k, D, L, tq.score(q, qi, code, buf.data()), ci[j]);
        }
    }
    finalize_topk(q.l2, k, D, L);
}

/** The end of a quantized scan split in slices, for queries [q0, q0 + nb)
 * of q (all of them by default): query q0 + t's reservoirs
 * best[s * nb + t] merged, then finish_candidates into row t of
 * distances / labels. */
template <class CodeOf>
void finish_scan(
        const TurboQuantizer& tq,
        const TQQueries& q,
        size_t k,
        float rerank_factor,
        std::vector<TopkReservoir>& best,
        size_t nslices,
        float* distances,
        idx_t* labels,
        CodeOf&& code_of,
        size_t q0 = 0,
        size_t nb = SIZE_MAX) {
    nb = std::min(nb, q.n - q0);
    const bool rerank = rerank_factor >= 1;
    OmpErrors errors;
#pragma omp parallel for if (nb > 1)
    for (int64_t t = 0; t < (int64_t)nb; t++) {
        errors.run([&] {
            TopkReservoir& r = best[t];
            for (size_t s = 1; s < nslices; s++) {
                r.merge(best[s * nb + t]);
            }
            std::vector<float> cv(r.kk);
            std::vector<idx_t> ci(r.kk);
            r.finish(cv.data(), ci.data());
            finish_candidates(
                    tq,
                    q,
                    q0 + t,
                    k,
                    r.kk,
                    rerank,
                    cv.data(),
                    ci.data(),
                    distances + t * k,
                    labels + t * k,
                    code_of);
        });
    }
    errors.rethrow();
}

} // namespace faiss_turbo
