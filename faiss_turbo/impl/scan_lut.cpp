#include <faiss_turbo/impl/scan_lut.h>

#include <omp.h>

#include <algorithm>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/omp_errors.h>
#include <faiss_turbo/impl/scan.h>
#include <faiss_turbo/impl/scan_int8.h>

namespace faiss_turbo {

namespace {

/// from this many queries on, 4-bit codes go to the int8 tiles
constexpr size_t kLutTileQueries = 16;

bool slot_width(int b) {
    return b == 1 || b == 2 || b == 4;
}

} // namespace

std::string lut_scan_unsupported(const TurboQuantizer& tq) {
    char buf[160];
    if (tq.variant != TQVariant::MSE) {
        return "TQprod codes (their QJL signs need a second sum; TQmse ranks "
               "better at equal bits)";
    }
    const bool hi_ok = tq.n_hi == 0 || slot_width(tq.b_hi);
    const bool lo_ok = tq.n_hi == tq.d || slot_width(tq.b_lo);
    if (!hi_ok || !lo_ok) {
        snprintf(
                buf,
                sizeof(buf),
                "%g bits (coordinates of %d bits would cross 4-bit slots; "
                "widths 1, 2, 4 and 1.5 are supported)",
                tq.bits,
                hi_ok ? tq.b_lo : tq.b_hi);
        return buf;
    }
    return "";
}

bool lut_scan_preferred(const TurboQuantizer& tq, size_t nq) {
    const int widest = tq.n_hi > 0 ? tq.b_hi : tq.b_lo;
    return widest <= 2 || nq < kLutTileQueries || !int8_scan_supported(tq);
}

void lut_float_tables(const TurboQuantizer& tq, const float* y, float* out) {
    // e[hi][sh][v] = c(index of a coordinate at bit sh of its slot, for
    // slot value v): a coordinate then adds y_j * e to its slot's 16
    // entries, a contiguous (vectorized) loop instead of 16 gathers
    float e[2][4][16];
    for (int hi = 0; hi < 2; hi++) {
        const Codebook* cb = hi ? tq.cb_hi.get() : tq.cb_lo.get();
        const int nb = hi ? tq.b_hi : tq.b_lo;
        if (!cb || !slot_width(nb)) {
            continue; // no coordinate of this width
        }
        const float* cent = cb->centroids.data();
        for (int sh = 0; sh < 4; sh += nb) {
            for (int v = 0; v < 16; v++) {
                e[hi][sh][v] = cent[(v >> sh) & ((1 << nb) - 1)];
            }
        }
    }
    std::fill(out, out + 32 * tq.mse_bytes, 0.0f);
    for (size_t j = 0; j < tq.d; j++) {
        const size_t bit = coord_bit_offset(j, tq.n_hi, tq.b_hi, tq.b_lo);
        float* t = out + 16 * (bit / 4);
        const float* ej = e[j < tq.n_hi][bit % 4];
        const float yj = y[j];
        for (int v = 0; v < 16; v++) {
            t[v] += yj * ej[v];
        }
    }
}

namespace {

#ifdef __SSE2__
inline float hmin(__m128 v) {
    v = _mm_min_ps(v, _mm_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(
            _mm_min_ps(v, _mm_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1))));
}

inline float hmax(__m128 v) {
    v = _mm_max_ps(v, _mm_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(
            _mm_max_ps(v, _mm_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1))));
}
#endif

/// min and max of a slot's 16 entries
inline void slot_range(const float* t, float& lo, float& hi) {
#ifdef __SSE2__
    __m128 a = _mm_loadu_ps(t), b = _mm_loadu_ps(t + 4);
    __m128 c = _mm_loadu_ps(t + 8), d = _mm_loadu_ps(t + 12);
    lo = hmin(_mm_min_ps(_mm_min_ps(a, b), _mm_min_ps(c, d)));
    hi = hmax(_mm_max_ps(_mm_max_ps(a, b), _mm_max_ps(c, d)));
#else
    lo = hi = t[0];
    for (int v = 1; v < 16; v++) {
        lo = std::min(lo, t[v]);
        hi = std::max(hi, t[v]);
    }
#endif
}

#ifdef __SSE2__
/// quantize_slot by inv (finite), 4 floats at a time
inline void
quantize_slot_sse2(const float* t, float lo, float inv, uint8_t* out) {
    const __m128 vlo = _mm_set1_ps(lo), vinv = _mm_set1_ps(inv);
    const __m128 half = _mm_set1_ps(0.5f), top = _mm_set1_ps(255.0f);
    __m128i q[4];
    for (int k = 0; k < 4; k++) {
        __m128 x = _mm_sub_ps(_mm_loadu_ps(t + 4 * k), vlo);
        x = _mm_add_ps(_mm_mul_ps(x, vinv), half);
        q[k] = _mm_cvttps_epi32(_mm_min_ps(x, top));
    }
    _mm_storeu_si128(
            (__m128i*)out,
            _mm_packus_epi16(
                    _mm_packs_epi32(q[0], q[1]), _mm_packs_epi32(q[2], q[3])));
}
#endif

/// out[v] = min((t[v] - lo) / delta + 0.5, 255) truncated, dividing by
/// scale_coord's rule (inv = 1 / delta): t - lo >= 0, so this rounds to
/// nearest (NaN: 255). The SSE2 path computes the same floats in the same
/// order where inv is finite (delta not subnormal)
inline void
quantize_slot(const float* t, float lo, float delta, float inv, uint8_t* out) {
#ifdef __SSE2__
    if (std::isfinite(inv)) {
        quantize_slot_sse2(t, lo, inv, out);
        return;
    }
#endif
    for (int v = 0; v < 16; v++) {
        float x = scale_coord(t[v] - lo, delta, inv) + 0.5f;
        out[v] = (uint8_t)(x < 255.0f ? x : 255.0f);
    }
}

} // namespace

void lut_quantize(
        const float* tables,
        size_t nslots,
        uint8_t* lut,
        float& delta,
        float& bias) {
    double sum_min = 0;
    float span = 0;
    for (size_t s = 0; s < nslots; s++) {
        float lo, hi;
        slot_range(tables + 16 * s, lo, hi);
        sum_min += lo;
        span = std::max(span, hi - lo);
    }
    delta = span > 0 ? span / 255 : 1;
    bias = (float)sum_min;
    const float inv = 1 / delta;
    for (size_t s = 0; s < nslots; s++) {
        float lo, hi;
        slot_range(tables + 16 * s, lo, hi); // again: cheaper than storing
        quantize_slot(tables + 16 * s, lo, delta, inv, lut + 16 * s);
    }
}

void LutTables::build(
        const TurboQuantizer& tq, const float* y, std::vector<float>& ftables) {
    ftables.resize(kLutGroupBytes * tq.mse_bytes);
    lut.resize(kLutGroupBytes * tq.mse_bytes);
    lut_float_tables(tq, y, ftables.data());
    lut_quantize(ftables.data(), 2 * tq.mse_bytes, lut.data(), delta, bias);
    built = true;
}

void LutQueries::prepare(const TurboQuantizer& tq, const TQQueries& q) {
    n = q.n;
    lut_bytes = 32 * tq.mse_bytes;
    luts.resize(n * lut_bytes);
    delta.resize(n);
    bias.resize(n);
    OmpErrors errors;
#pragma omp parallel if (n > 16)
    {
        std::vector<float> t;
        errors.run([&] { t.resize(lut_bytes); });
#pragma omp for
        for (int64_t i = 0; i < (int64_t)n; i++) {
            errors.run([&] {
                lut_float_tables(tq, q.y.data() + i * tq.d, t.data());
                lut_quantize(
                        t.data(),
                        2 * tq.mse_bytes,
                        luts.data() + i * lut_bytes,
                        delta[i],
                        bias[i]);
            });
        }
    }
    errors.rethrow();
}

namespace {

/// a task's queries' tables stay in L2 while its blocks stream through
constexpr size_t kTaskTableBytes = 256 << 10;
/// blocks per kernel call: read again for each pair of queries, from L1
constexpr size_t kCallBlockBytes = 16 << 10;

/// what one task scans: blocks [b0, b1), queries [q0, q1)
template <bool DEBIASED, bool L2> struct LutTask {
    const TurboQuantizer& tq;
    const BlockedCodes& codes;
    const TQQueries& q;
    const LutQueries& p;
    const LutKernels& kernels;
    const faiss::IDSelector* sel;
    TopkReservoir* best; ///< query qi's at best[qi]

    /// codes [i0, i0 + n) as combine_form's affine coefficients in
    /// dot_c: computed once per block, shared by every query scored on it.
    /// Only the fields this form reads are loaded, so the loop vectorizes
    template <bool MOFF>
    void affine_loop(size_t i0, size_t n, float* B, float* AC) const {
        BlockedScalars<DEBIASED, L2, MOFF> sc(codes, i0);
        for (size_t i = 0; i < n; i++) {
            TQAffine a = tq.affine_form<false, DEBIASED, L2>(sc[i]);
            B[i] = a.b;
            AC[i] = a.ac;
        }
    }

    void affine(size_t i0, size_t n, float* B, float* AC) const {
        if (codes.has_moff) {
            affine_loop<true>(i0, n, B, AC);
        } else {
            affine_loop<false>(i0, n, B, AC);
        }
    }

    /// block b's codes to query qi's reservoir: sums, the kernel's;
    /// B, AC, the block's coefficients
    void
    offer(size_t b,
          size_t qi,
          const uint32_t* sums,
          const float* B,
          const float* AC) const {
        const size_t i0 = b * kLutBlockCodes;
        const size_t n = std::min(kLutBlockCodes, codes.ntotal - i0);
        const float delta = p.delta[qi], bias = p.bias[qi];
        const float qc = q.qconst[qi];
        float sc[kLutBlockCodes];
        for (size_t i = 0; i < n; i++) {
            float dot = delta * (float)(int32_t)sums[i] + bias;
            sc[i] = qc + B[i] + AC[i] * dot;
        }
        TopkReservoir& r = best[qi];
        for (uint64_t m = reach_mask(L2, sc, n, r.bound); m; m &= m - 1) {
            size_t i = __builtin_ctzll(m);
            if (r.beats(sc[i], i0 + i) && (!sel || sel->is_member(i0 + i))) {
                r.add(sc[i], i0 + i);
            }
        }
    }

    void run(size_t b0, size_t b1, size_t q0, size_t q1) const {
        const size_t bb = codes.block_bytes();
        const size_t step = std::max<size_t>(1, kCallBlockBytes / bb);
        std::vector<uint32_t> sums(step * kLutMaxQueries * kLutBlockCodes);
        std::vector<float> B(step * kLutBlockCodes), AC(B.size());
        for (size_t b = b0; b < b1; b += step) {
            const size_t nb = std::min(step, b1 - b);
            const size_t i0 = b * kLutBlockCodes;
            affine(i0,
                   std::min(nb * kLutBlockCodes, codes.ntotal - i0),
                   B.data(),
                   AC.data());
            for (size_t qs = q0; qs < q1; qs += kLutMaxQueries) {
                const size_t nqs = std::min(kLutMaxQueries, q1 - qs);
                kernels.block_sums(
                        codes.blocks.data() + b * bb,
                        codes.ngroups,
                        nb,
                        p.luts.data() + qs * p.lut_bytes,
                        nqs,
                        sums.data());
                for (size_t j = 0; j < nb; j++) {
                    for (size_t t = 0; t < nqs; t++) {
                        offer(b + j,
                              qs + t,
                              sums.data() + (j * nqs + t) * kLutBlockCodes,
                              B.data() + j * kLutBlockCodes,
                              AC.data() + j * kLutBlockCodes);
                    }
                }
            }
        }
    }
};

} // namespace

void scan_knn_lut(
        const TurboQuantizer& tq,
        const BlockedCodes& codes,
        const TQQueries& q,
        size_t k,
        float rerank_factor,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel,
        const LutKernels& kernels) {
    check_scan_options(TQ_SCAN_INT8, rerank_factor, "fast-scan search");
    std::string why = lut_scan_unsupported(tq);
    FAISS_THROW_IF_NOT_FMT(why.empty(), "fast-scan search: %s", why.c_str());
    FAISS_THROW_IF_NOT_MSG(
            codes.ngroups == tq.mse_bytes && codes.code_size == tq.code_size,
            "fast-scan search: codes of another codec");
    const size_t nq = q.n, ncodes = codes.ntotal;
    if (nq == 0) {
        return;
    }
    const size_t kk = scan_candidates(k, rerank_factor, ncodes);
    LutQueries p;
    p.prepare(tq, q);
    const size_t nblocks = codes.nblocks();
    const size_t qchunk = std::max<size_t>(
            1, std::min<size_t>(64, kTaskTableBytes / p.lut_bytes));
    const size_t nchunks = (nq + qchunk - 1) / qchunk;
    const size_t nslices =
            scan_slices(nchunks, nblocks, (double)codes.blocks.size() * qchunk);
    std::vector<TopkReservoir> best(nslices * nq, TopkReservoir(q.l2, kk));

    tq.with_form(q.l2, [&](auto, auto deb, auto l2) {
        LutTask<deb(), l2()> task{tq, codes, q, p, kernels, sel, best.data()};
        const int64_t ntasks = nchunks * nslices;
        OmpErrors errors;
#pragma omp parallel for schedule(dynamic) if (ntasks > 1)
        for (int64_t t = 0; t < ntasks; t++) {
            size_t c = t / nslices, s = t % nslices;
            size_t q0 = c * qchunk, q1 = std::min(nq, q0 + qchunk);
            LutTask<deb(), l2()> slice = task;
            slice.best = best.data() + s * nq;
            if (errors.failed()) {
                continue;
            }
            try { // not run(): clang cannot capture inside this generic
                  // lambda's region
                slice.run(
                        nblocks * s / nslices,
                        nblocks * (s + 1) / nslices,
                        q0,
                        q1);
            } catch (...) {
                errors.capture();
            }
        }
        errors.rethrow();
        return 0;
    });

    finish_scan(
            tq,
            q,
            k,
            rerank_factor,
            best,
            nslices,
            distances,
            labels,
            [&](idx_t id, uint8_t* row) {
                codes.code(tq, id, row);
                return (const uint8_t*)row;
            });
}

namespace {

/// an IDSelector on ids shifted by an offset (a chunk of the codes)
struct ShiftedSelector : faiss::IDSelector {
    const faiss::IDSelector* sel;
    idx_t offset;

    ShiftedSelector(const faiss::IDSelector* sel, idx_t offset)
        : sel(sel), offset(offset) {}

    bool is_member(idx_t id) const override {
        return sel->is_member(id + offset);
    }
};

} // namespace

void scan_knn_blocked_exact(
        const TurboQuantizer& tq,
        const BlockedCodes& codes,
        const TQQueries& q,
        size_t k,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel) {
    constexpr size_t kChunk = 8192; // codes unpacked at a time
    const size_t nq = q.n;
    std::vector<float> D(nq * k);
    std::vector<idx_t> L(nq * k);
    for (size_t qi = 0; qi < nq; qi++) {
        init_topk(q.l2, k, distances + qi * k, labels + qi * k);
    }
    std::vector<uint8_t> rows;
    for (size_t i0 = 0; i0 < codes.ntotal; i0 += kChunk) {
        const size_t n = std::min(kChunk, codes.ntotal - i0);
        rows.resize(n * tq.code_size);
        for (size_t i = 0; i < n; i++) {
            codes.code(tq, i0 + i, rows.data() + i * tq.code_size);
        }
        ShiftedSelector shifted(sel, i0);
        scan_knn(
                tq,
                rows.data(),
                n,
                q,
                k,
                D.data(),
                L.data(),
                sel ? &shifted : nullptr);
        for (size_t qi = 0; qi < nq; qi++) {
            for (size_t j = 0; j < k && L[qi * k + j] >= 0; j++) {
                push_topk(
                        q.l2,
                        k,
                        distances + qi * k,
                        labels + qi * k,
                        D[qi * k + j],
                        L[qi * k + j] + i0);
            }
        }
    }
    for (size_t qi = 0; qi < nq; qi++) {
        finalize_topk(q.l2, k, distances + qi * k, labels + qi * k);
    }
}

} // namespace faiss_turbo
