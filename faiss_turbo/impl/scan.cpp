#include <faiss_turbo/impl/scan.h>

#include <omp.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/Heap.h>

#include <faiss_turbo/impl/omp_errors.h>
#include <faiss_turbo/impl/simd/float_kernels.h>

namespace faiss_turbo {

namespace {

constexpr size_t kBlock = 128;     // codes decoded at once
constexpr size_t kQueryChunk = 16; // queries scored per decoded block

using HeapMax = faiss::CMax<float, idx_t>;
using HeapMin = faiss::CMin<float, idx_t>;

/// a block of codes decoded to floats in the rotated space
struct DecodedBlock {
    size_t n = 0;
    std::vector<float> chat, sgn;
    std::vector<TQCodeScalars> sc;

    void decode(const TurboQuantizer& tq, const uint8_t* codes, size_t nb) {
        n = nb;
        const size_t d = tq.d;
        const bool prod = tq.variant == TQVariant::PROD;
        chat.resize(nb * d);
        sgn.resize(prod ? nb * d : 0);
        sc.resize(nb);
        for (size_t i = 0; i < nb; i++) {
            tq.decode_rotated(
                    codes + i * tq.code_size,
                    chat.data() + i * d,
                    prod ? sgn.data() + i * d : nullptr,
                    sc[i]);
        }
    }

    float
    score(const TurboQuantizer& tq,
          const TQQueries& q,
          size_t qi,
          size_t i) const {
        const size_t d = tq.d;
        float dc = dot_lanes(q.y.data() + qi * d, chat.data() + i * d, d);
        float ds =
                sgn.empty()
                        ? 0
                        : dot_lanes(
                                  q.sy.data() + qi * d, sgn.data() + i * d, d);
        return tq.combine(q, qi, dc, ds, sc[i]);
    }
};

/// the exact scores of blocks [b0, b1) of kBlock codes (read through
/// rows(i0, n), as RowCodes without its buffer) against queries [q0, q1),
/// the selected codes only: visit(qi, score, id)
template <class Rows, class Visit>
void score_blocks(
        const TurboQuantizer& tq,
        Rows&& rows,
        size_t ncodes,
        size_t b0,
        size_t b1,
        const TQQueries& q,
        size_t q0,
        size_t q1,
        const faiss::IDSelector* sel,
        DecodedBlock& blk,
        Visit&& visit) {
    for (size_t b = b0; b < b1; b++) {
        const size_t i0 = b * kBlock, nb = std::min(kBlock, ncodes - i0);
        blk.decode(tq, rows(i0, nb), nb);
        for (size_t i = 0; i < nb; i++) {
            idx_t id = i0 + i;
            if (sel && !sel->is_member(id)) {
                continue;
            }
            for (size_t qi = q0; qi < q1; qi++) {
                visit(qi, blk.score(tq, q, qi, i), id);
            }
        }
    }
}

using Hits = std::vector<std::pair<float, idx_t>>;

/// the hits of every query into result (in scan order, as FAISS's partial
/// results give them)
void hand_over_hits(std::vector<Hits>& hits, faiss::RangeSearchResult* res) {
    for (size_t qi = 0; qi < hits.size(); qi++) {
        res->lims[qi] = hits[qi].size(); // counts: do_allocation sums them
    }
    res->do_allocation();
    for (size_t qi = 0; qi < hits.size(); qi++) {
        size_t o = res->lims[qi];
        for (const auto& h : hits[qi]) {
            res->distances[o] = h.first;
            res->labels[o++] = h.second;
        }
        Hits().swap(hits[qi]);
    }
}

} // namespace

void init_topk(bool l2, size_t k, float* vals, idx_t* ids) {
    float empty = l2 ? std::numeric_limits<float>::infinity()
                     : -std::numeric_limits<float>::infinity();
    std::fill(vals, vals + k, empty);
    std::fill(ids, ids + k, idx_t(-1));
}

void push_topk(bool l2, size_t k, float* vals, idx_t* ids, float v, idx_t id) {
    if (l2) {
        if (HeapMax::cmp2(vals[0], v, ids[0], id)) {
            faiss::heap_replace_top<HeapMax>(k, vals, ids, v, id);
        }
    } else {
        if (HeapMin::cmp2(vals[0], v, ids[0], id)) {
            faiss::heap_replace_top<HeapMin>(k, vals, ids, v, id);
        }
    }
}

const uint8_t* readable_codes(
        size_t code_size,
        size_t max_read,
        const uint8_t* block,
        size_t n,
        size_t avail,
        std::vector<uint8_t>& pad) {
    size_t need = n == 0 ? 0 : (n - 1) * code_size + max_read;
    if (need <= avail) {
        return block;
    }
    pad.assign(need, 0);
    memcpy(pad.data(), block, n * code_size);
    return pad.data();
}

size_t scan_candidates(size_t k, float rerank_factor, size_t ncodes) {
    if (rerank_factor < 1) {
        return k;
    }
    double want = std::ceil((double)k * rerank_factor);
    return std::max(k, (size_t)std::min(want, (double)std::max(ncodes, k)));
}

size_t scan_slices(size_t nchunks, size_t nunits, double work) {
    // with OMP_WAIT_POLICY=PASSIVE, waking a thread costs about as long as
    // scanning 0.5 MB: nq = 1 over 9000 SIFT codes ran slower on 2 threads
    constexpr double kMinSliceWork = 1 << 20;
    const size_t nt = omp_get_max_threads();
    if (nchunks >= nt) {
        return 1;
    }
    const size_t by_work = (size_t)(work / kMinSliceWork);
    return std::max<size_t>(1, std::min<size_t>({nt, nunits, by_work}));
}

#if defined(__GNUC__) && defined(__x86_64__)
#define FAISS_TURBO_REACH_AVX512 1

namespace {

/// reach_mask on 16 scores a compare, where the CPU has AVX-512 (the same
/// comparisons, so the same bits; the batched int8 scan calls it once per
/// tile and query)
__attribute__((target("avx512f"))) uint64_t
reach_mask_avx512(bool l2, const float* s, size_t n, float top) {
    uint64_t m = 0;
    size_t i = 0;
    const __m512 t = _mm512_set1_ps(top);
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(s + i);
        __mmask16 c = l2 ? _mm512_cmp_ps_mask(v, t, _CMP_LE_OQ)
                         : _mm512_cmp_ps_mask(v, t, _CMP_GE_OQ);
        m |= (uint64_t)c << i;
    }
    for (; i < n; i++) {
        m |= (uint64_t)(l2 ? s[i] <= top : s[i] >= top) << i;
    }
    return m;
}

} // namespace
#endif

uint64_t reach_mask(bool l2, const float* s, size_t n, float top) {
#ifdef FAISS_TURBO_REACH_AVX512
    static const bool avx512 = simd_avx512f_usable();
    if (avx512) {
        return reach_mask_avx512(l2, s, n, top);
    }
#endif
    uint64_t m = 0;
    size_t i = 0;
#ifdef __SSE2__
    const __m128 t = _mm_set1_ps(top);
    for (; i + 4 <= n; i += 4) {
        __m128 v = _mm_loadu_ps(s + i);
        __m128 c = l2 ? _mm_cmple_ps(v, t) : _mm_cmpge_ps(v, t);
        m |= (uint64_t)_mm_movemask_ps(c) << i;
    }
#endif
    for (; i < n; i++) {
        m |= (uint64_t)(l2 ? s[i] <= top : s[i] >= top) << i;
    }
    return m;
}

TopkReservoir::TopkReservoir(bool l2, size_t kk)
    : l2(l2),
      kk(kk),
      bound(l2 ? std::numeric_limits<float>::infinity()
               : -std::numeric_limits<float>::infinity()) {
    FAISS_THROW_IF_NOT_MSG(kk > 0, "TopkReservoir: kk must be > 0");
}

namespace {

using TopkEntry = std::pair<float, idx_t>;

/// v as an unsigned key in the order of the scores, the best smallest: the
/// float's bits made monotonic, reversed for IP. -0 counts as +0 (a tie,
/// as the float comparison has it)
uint32_t rank_key(bool l2, float v) {
    v += 0.0f; // -0 + 0 = +0
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return l2 ? u : ~u;
}

/// the value of rank nth (0-based) of v[0, n), v reordered. Quickselect
/// with a branch-free partition (every key goes to both ends of tmp, one
/// cursor moves): with a random pivot a branch mispredicts half the time,
/// which made std::nth_element cost some 50 cycles an entry here
uint32_t select_key(uint32_t* v, size_t n, size_t nth, uint32_t* tmp) {
    size_t lo = 0, hi = n;
    while (hi - lo > 32) {
        uint32_t a = v[lo], b = v[(lo + hi) / 2], c = v[hi - 1];
        uint32_t piv = std::max(std::min(a, b), std::min(std::max(a, b), c));
        size_t f = lo, r = hi;
        for (size_t i = lo; i < hi; i++) {
            uint32_t e = v[i];
            bool below = e < piv;
            tmp[f] = e;
            tmp[r - 1] = e;
            f += below;
            r -= !below;
        }
        std::copy(tmp + lo, tmp + hi, v + lo);
        if (nth < f) {
            hi = f;
        } else if (f > lo) {
            lo = f;
        } else {
            // piv is the smallest key of the range (only with repeated
            // keys: a median of 3 has a smaller one): its copies go first
            size_t e = lo;
            for (size_t i = lo; i < hi; i++) {
                if (v[i] == piv) {
                    std::swap(v[i], v[e++]);
                }
            }
            if (nth < e) {
                return piv;
            }
            lo = e;
        }
    }
    std::nth_element(v + lo, v + nth, v + hi);
    return v[nth];
}

} // namespace

/* The kk-th best score is selected on 4-byte keys, then one pass keeps
 * what is better and, of the entries equal to it, the best by id (rare:
 * sort them) */
void TopkReservoir::cut() {
    const size_t m = buf.size();
    if (m <= kk) {
        return;
    }
    // one scratch per thread, not per reservoir: a batch holds one
    // reservoir per query
    static thread_local std::vector<uint32_t> keys, sel, tmp;
    static thread_local std::vector<TopkEntry> ties;
    keys.resize(m);
    sel.resize(m);
    tmp.resize(std::max(tmp.size(), m));
    ties.clear();
    // thread_local costs a call per access from a shared library: the
    // loops use plain pointers
    uint32_t* K = keys.data();
    TopkEntry* B = buf.data();
    for (size_t i = 0; i < m; i++) {
        K[i] = rank_key(l2, B[i].first);
    }
    std::copy(K, K + m, sel.data());
    const uint32_t t = select_key(sel.data(), m, kk - 1, tmp.data());
    // half the entries go: the better ones are kept without a branch, the
    // ties (few) are set aside
    size_t w = 0;
    for (size_t i = 0; i < m; i++) {
        if (K[i] == t) {
            ties.push_back(B[i]);
        }
        B[w] = B[i];
        w += K[i] < t;
    }
    const bool l2_ = l2;
    std::sort(ties.begin(), ties.end(), [l2_](const auto& a, const auto& b) {
        return l2_ ? a.second < b.second : a.second > b.second;
    });
    std::copy(ties.begin(), ties.begin() + (kk - w), buf.begin() + w);
    bound = buf[kk - 1].first;
    bound_id = buf[kk - 1].second;
    buf.resize(kk);
}

void TopkReservoir::finish(float* vals, idx_t* ids) {
    cut();
    init_topk(l2, kk, vals, ids);
    for (size_t j = 0; j < buf.size(); j++) {
        vals[j] = buf[j].first;
        ids[j] = buf[j].second;
    }
}

void TopkReservoir::merge(const TopkReservoir& other) {
    for (const auto& e : other.buf) {
        if (beats(e.first, e.second)) {
            add(e.first, e.second);
        }
    }
}

void finalize_topk(bool l2, size_t k, float* vals, idx_t* ids) {
    std::vector<std::pair<float, idx_t>> res;
    res.reserve(k);
    for (size_t j = 0; j < k; j++) {
        if (ids[j] >= 0) {
            res.emplace_back(vals[j], ids[j]);
        }
    }
    std::sort(res.begin(), res.end(), [l2](const auto& a, const auto& b) {
        if (a.first != b.first) {
            return l2 ? a.first < b.first : a.first > b.first;
        }
        return a.second < b.second;
    });
    init_topk(l2, k, vals, ids);
    for (size_t j = 0; j < res.size(); j++) {
        vals[j] = res[j].first;
        ids[j] = res[j].second;
    }
}

void scan_knn(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        size_t ncodes,
        const TQQueries& q,
        size_t k,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel) {
    const size_t nq = q.n;
    const bool l2 = q.l2;
    if (nq == 0) {
        return;
    }
    const size_t nchunks = (nq + kQueryChunk - 1) / kQueryChunk;
    const size_t nblocks = (ncodes + kBlock - 1) / kBlock;
    // split the database too when there are fewer query chunks than threads
    size_t nslices = 1;
    int nt = omp_get_max_threads();
    if (nchunks < (size_t)nt) {
        nslices = std::min<size_t>(nt, std::max<size_t>(nblocks, 1));
    }
    std::vector<float> hv(nslices * nq * k);
    std::vector<idx_t> hi(nslices * nq * k);

    OmpErrors errors;
#pragma omp parallel for schedule(dynamic)
    for (int64_t task = 0; task < (int64_t)(nchunks * nslices); task++) {
        size_t c = task / nslices, s = task % nslices;
        size_t q0 = c * kQueryChunk, q1 = std::min(nq, q0 + kQueryChunk);
        size_t b0 = nblocks * s / nslices, b1 = nblocks * (s + 1) / nslices;
        float* V = hv.data() + (s * nq) * k;
        idx_t* I = hi.data() + (s * nq) * k;
        errors.run([&] {
            for (size_t qi = q0; qi < q1; qi++) {
                init_topk(l2, k, V + qi * k, I + qi * k);
            }
            DecodedBlock blk;
            score_blocks(
                    tq,
                    [&](size_t i0, size_t) {
                        return codes + i0 * tq.code_size;
                    },
                    ncodes,
                    b0,
                    b1,
                    q,
                    q0,
                    q1,
                    sel,
                    blk,
                    [&](size_t qi, float v, idx_t id) {
                        push_topk(l2, k, V + qi * k, I + qi * k, v, id);
                    });
        });
    }
    errors.rethrow();

#pragma omp parallel for if (nq > 16)
    for (int64_t qi = 0; qi < (int64_t)nq; qi++) {
        float* D = distances + qi * k;
        idx_t* L = labels + qi * k;
        std::copy(hv.data() + qi * k, hv.data() + (qi + 1) * k, D);
        std::copy(hi.data() + qi * k, hi.data() + (qi + 1) * k, L);
        for (size_t s = 1; s < nslices; s++) {
            const float* V = hv.data() + (s * nq + qi) * k;
            const idx_t* I = hi.data() + (s * nq + qi) * k;
            for (size_t j = 0; j < k; j++) {
                if (I[j] >= 0) {
                    push_topk(l2, k, D, L, V[j], I[j]);
                }
            }
        }
        errors.run([&] { finalize_topk(l2, k, D, L); }); // allocates
    }
    errors.rethrow();
}

void scan_range(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        size_t ncodes,
        const TQQueries& q,
        float radius,
        faiss::RangeSearchResult* result,
        const faiss::IDSelector* sel) {
    scan_range(
            tq,
            [&](size_t i0, size_t, uint8_t*) {
                return codes + i0 * tq.code_size;
            },
            ncodes,
            q,
            radius,
            result,
            sel);
}

void scan_range(
        const TurboQuantizer& tq,
        const RowCodes& rows,
        size_t ncodes,
        const TQQueries& q,
        float radius,
        faiss::RangeSearchResult* result,
        const faiss::IDSelector* sel) {
    static_assert(kBlock <= 128, "RowCodes promises n <= 128");
    const size_t nq = q.n;
    const size_t nchunks = (nq + kQueryChunk - 1) / kQueryChunk;
    const size_t nblocks = (ncodes + kBlock - 1) / kBlock;
    // hits per query, handed to the result after the parallel region
    // (FAISS's RangeSearchPartialResult allocates inside it, between
    // barriers, where out of memory could not be reported)
    std::vector<Hits> hits(nq);
    OmpErrors errors;
#pragma omp parallel
    {
        DecodedBlock blk;
        std::vector<uint8_t> buf;
        errors.run([&] { buf.resize(kBlock * tq.code_size); });
#pragma omp for schedule(dynamic)
        for (int64_t c = 0; c < (int64_t)nchunks; c++) {
            size_t q0 = c * kQueryChunk, q1 = std::min(nq, q0 + kQueryChunk);
            errors.run([&] {
                score_blocks(
                        tq,
                        [&](size_t i0, size_t n) {
                            return rows(i0, n, buf.data());
                        },
                        ncodes,
                        0,
                        nblocks,
                        q,
                        q0,
                        q1,
                        sel,
                        blk,
                        [&](size_t qi, float v, idx_t id) {
                            if (q.l2 ? v < radius : v > radius) {
                                hits[qi].emplace_back(v, id);
                            }
                        });
            });
        }
    }
    errors.rethrow();
    hand_over_hits(hits, result);
}

} // namespace faiss_turbo
