#include <faiss_turbo/impl/ivf_scan_lut.h>

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <faiss_turbo/impl/blocked_invlists.h>
#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/ivf_scanner.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/scan.h>
#include <faiss_turbo/impl/scan_lut.h>
#include <faiss_turbo/impl/simd/lut_kernels.h>

namespace faiss_turbo {

namespace {

/// blocks scored per kernel call
constexpr size_t kCallBlocks = 8;

inline idx_t key_of(size_t list, size_t j) {
    return (idx_t)((uint64_t)list << 32 | j);
}

/// what one query's search needs, with its scratch
template <bool DEBIASED, bool L2> struct QuerySearch {
    const IVFLutSearch& s;
    const LutKernels& kernels;
    TQQueries q;  ///< the query (prepared alone, as the scanner does)
    TQQueries lq; ///< the query seen from the current list
    LutTables qtab, ltab;
    std::vector<uint32_t> sums;
    size_t ndis = 0, nlist = 0;

    QuerySearch(const IVFLutSearch& s_in)
        : s(s_in), kernels(lut_kernels_best()) {
        sums.resize(kCallBlocks * kLutBlockCodes);
    }

    /// whether the list's query is the query shifted by R c
    bool shifted() const {
        return s.table && (L2 || s.tq.ip_offset);
    }

    /// lq for list l: TQScanner::set_list's arithmetic, so that the exact
    /// scores are the row index's
    void list_query(size_t l) {
        const size_t d = s.tq.d;
        lq = q;
        if (!s.table) {
            return;
        }
        const float* rc = s.table->rc.data() + l * d;
        if (shifted()) {
            for (size_t j = 0; j < d; j++) {
                lq.y[j] = q.y[j] - rc[j];
            }
        }
        if (L2) {
            lq.qconst[0] = (float)canonical_dot(lq.y.data(), lq.y.data(), d);
        } else {
            lq.qconst[0] = q.qconst[0] + dot_lanes(q.y.data(), rc, d);
        }
    }

    /// table scores of codes [i0, i0 + m) of bc into sc: the codec's
    /// affine form with only the fields it reads loaded, so that the loop
    /// vectorizes (as the flat fast-scan's affine_loop)
    template <bool MOFF, bool CORR>
    void
    scores(const BlockedCodes& bc,
           size_t i0,
           size_t m,
           const uint32_t* su,
           float delta,
           float bias,
           float qc,
           const float* corr,
           float* sc) const {
        BlockedScalars<DEBIASED, L2, MOFF> cs(bc, i0);
        const float* cr = CORR ? corr + i0 : nullptr;
        for (size_t i = 0; i < m; i++) {
            TQAffine a = s.tq.template affine_form<false, DEBIASED, L2>(cs[i]);
            float dot = delta * (float)(int32_t)su[i] + bias;
            if (CORR) {
                dot -= cr[i];
            }
            sc[i] = qc + a.b + a.ac * dot;
        }
    }

    /// list l's approximate scores into r
    void scan_list(size_t l, TopkReservoir& r) {
        const BlockedCodes& bc = s.lists.codes[l];
        const idx_t* ids = s.lists.ids[l].data();
        list_query(l);
        const float* corr = nullptr;
        const LutTables* t = &qtab;
        if (shifted() && s.lists.fresh(l, s.table)) {
            corr = s.lists.cdot[l].data();
        } else if (shifted()) { // changed since the refresh: own tables
            ltab.build(s.tq, lq.y.data());
            t = &ltab;
        }
        const float qc = lq.qconst[0];
        const size_t nb = bc.nblocks(), bb = bc.block_bytes();
        float sc[kLutBlockCodes];
        for (size_t b0 = 0; b0 < nb; b0 += kCallBlocks) {
            const size_t nc = std::min(kCallBlocks, nb - b0);
            kernels.block_sums(
                    bc.blocks.data() + b0 * bb,
                    bc.ngroups,
                    nc,
                    t->lut.data(),
                    1,
                    sums.data());
            for (size_t b = b0; b < b0 + nc; b++) {
                const size_t i0 = b * kLutBlockCodes;
                const size_t m = std::min(kLutBlockCodes, bc.ntotal - i0);
                const uint32_t* su = sums.data() + (b - b0) * kLutBlockCodes;
                const float dl = t->delta, bi = t->bias;
                if (bc.has_moff && corr) {
                    scores<true, true>(bc, i0, m, su, dl, bi, qc, corr, sc);
                } else if (bc.has_moff) {
                    scores<true, false>(bc, i0, m, su, dl, bi, qc, corr, sc);
                } else if (corr) {
                    scores<false, true>(bc, i0, m, su, dl, bi, qc, corr, sc);
                } else {
                    scores<false, false>(bc, i0, m, su, dl, bi, qc, corr, sc);
                }
                for (uint64_t mk = reach_mask(L2, sc, m, r.bound); mk;
                     mk &= mk - 1) {
                    size_t i = __builtin_ctzll(mk);
                    // re-scoring finds a code by its key; table scores
                    // go out as they are, ties by label
                    idx_t key = s.rerank_factor >= 1 ? key_of(l, i0 + i)
                                                     : ids[i0 + i];
                    if (r.beats(sc[i], key) &&
                        (!s.sel || s.sel->is_member(ids[i0 + i]))) {
                        r.add(sc[i], key);
                    }
                }
            }
        }
        ndis += bc.ntotal;
        nlist++;
    }

    /// the reservoir's candidates into D, L (k each): re-scored exactly,
    /// or (rerank_factor < 1) with their table scores
    void finish(TopkReservoir& r, size_t k, float* D, idx_t* L) {
        std::vector<float> cv(r.kk);
        std::vector<idx_t> ci(r.kk);
        r.finish(cv.data(), ci.data());
        std::vector<std::pair<idx_t, float>> cand;
        for (size_t j = 0; j < r.kk; j++) {
            if (ci[j] >= 0) {
                cand.emplace_back(ci[j], cv[j]);
            }
        }
        init_topk(L2, k, D, L);
        if (s.rerank_factor < 1) { // keyed by label
            for (auto [label, v] : cand) {
                push_topk(L2, k, D, L, v, label);
            }
            finalize_topk(L2, k, D, L);
            return;
        }
        std::sort(cand.begin(), cand.end()); // by list: one list query each
        std::vector<uint8_t> row(s.tq.code_size);
        std::vector<float> buf(2 * s.tq.d);
        size_t cur = SIZE_MAX;
        for (auto [key, v] : cand) {
            const size_t l = (uint64_t)key >> 32, j = key & 0xffffffff;
            if (l != cur) {
                list_query(l);
                cur = l;
            }
            s.lists.codes[l].code(s.tq, j, row.data());
            v = s.tq.score(lq, 0, row.data(), buf.data());
            push_topk(L2, k, D, L, v, s.lists.ids[l][j]);
        }
        finalize_topk(L2, k, D, L);
    }

    void
    run(const float* x,
        const idx_t* assign,
        size_t k,
        size_t kk,
        float* D,
        idx_t* L) {
        s.tq.prepare_queries(1, x, L2, q);
        qtab.build(s.tq, q.y.data());
        TopkReservoir r(L2, kk);
        size_t nscan = 0; // this query's codes, for max_codes
        for (size_t p = 0; p < s.nprobe; p++) {
            const idx_t l = assign[p];
            if (l < 0 || s.lists.codes[l].ntotal == 0) {
                continue;
            }
            scan_list(l, r);
            nscan += s.lists.codes[l].ntotal;
            if (s.max_codes && nscan >= s.max_codes) {
                break;
            }
        }
        finish(r, k, D, L);
    }
};

} // namespace

void IVFLutSearch::search(
        size_t n,
        const float* x,
        const idx_t* assign,
        size_t k,
        float* D,
        idx_t* L,
        faiss::IndexIVFStats* stats) const {
    size_t ndis = 0, nl = 0;
    const size_t kk =
            scan_candidates(k, rerank_factor, (size_t)lists.compute_ntotal());
    tq.with_form(l2, [&](auto, auto deb, auto l2c) {
#pragma omp parallel if (n > 1 && !omp_in_parallel()) reduction(+ : ndis, nl)
        {
            QuerySearch<deb(), l2c()> qs(*this);
#pragma omp for schedule(dynamic)
            for (int64_t i = 0; i < (int64_t)n; i++) {
                qs.run(x + i * tq.d,
                       assign + i * nprobe,
                       k,
                       kk,
                       D + i * k,
                       L + i * k);
            }
            ndis += qs.ndis;
            nl += qs.nlist;
        }
        return 0;
    });
    if (stats) {
        stats->nq += n;
        stats->nlist += nl;
        stats->ndis += ndis;
    }
}

} // namespace faiss_turbo
