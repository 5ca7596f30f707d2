#include <faiss_turbo/impl/ivf_scan_lut.h>

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include <faiss_turbo/impl/blocked_invlists.h>
#include <faiss_turbo/impl/ivf_scanner.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/omp_errors.h>
#include <faiss_turbo/impl/scan.h>
#include <faiss_turbo/impl/scan_lut.h>
#include <faiss_turbo/impl/simd/lut_kernels.h>

namespace faiss_turbo {

namespace {

/// blocks scored per kernel call
constexpr size_t kCallBlocks = 8;

/// queries searched together (sharing the lists they probe)
constexpr size_t kChunkQueries = 64;

inline idx_t key_of(size_t list, size_t j) {
    return (idx_t)((uint64_t)list << 32 | j);
}

/// a query of a chunk: prepared alone (as the scanner does), its tables
/// and its candidates
struct ChunkQuery {
    TQQueries q;
    LutTables tab;
    float y2 = 0; ///< ||y||^2 of the vector tab was built from
    TopkReservoir r;

    ChunkQuery(bool l2, size_t kk) : r(l2, kk) {}
};

/// a list scanned for one query of a chunk
struct Visit {
    idx_t list;
    size_t qi;

    bool operator<(const Visit& o) const {
        return list < o.list || (list == o.list && qi < o.qi);
    }
};

/// one chunk of queries: their lists in list order, each list's blocks
/// scored for up to kLutMaxQueries of the chunk's queries per pass (the
/// blocks are read once for them), then each query's candidates re-scored
template <bool DEBIASED, bool L2> struct ChunkSearch {
    const IVFLutSearch& s;
    const LutKernels& kernels;
    const size_t kk;
    std::vector<ChunkQuery> qs;
    // scratch
    TQQueries lq; ///< a query seen from a list
    LutTables ltab[kLutMaxQueries];
    std::vector<float> ftables;
    std::vector<uint8_t> luts;
    std::vector<uint32_t> sums;
    size_t ndis = 0, nlist = 0;

    ChunkSearch(const IVFLutSearch& s_in, size_t kk_in)
        : s(s_in), kernels(lut_kernels_best()), kk(kk_in) {
        sums.resize(kCallBlocks * kLutMaxQueries * kLutBlockCodes);
        luts.resize(kLutMaxQueries * kLutGroupBytes * s.tq.mse_bytes);
    }

    /// whether the list's query is the query shifted by R c
    bool shifted() const {
        return ivf_list_shifted(s.tq, L2, s.table);
    }

    /// lq = query q seen from list l (the scanner's arithmetic, so that
    /// the exact scores are the row index's)
    void list_query(const TQQueries& q, size_t l) {
        if (s.table) {
            ivf_list_query(s.tq, L2, *s.table, q, l, lq);
        } else {
            lq = q;
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

    /// the scores of block b's m codes for one query into its reservoir
    void
    offer(size_t l,
          size_t i0,
          size_t m,
          const uint32_t* su,
          const LutTables& t,
          float qc,
          const float* corr,
          TopkReservoir& r) const {
        const BlockedCodes& bc = s.lists.codes[l];
        const idx_t* ids = s.lists.ids[l].data();
        float sc[kLutBlockCodes];
        const float dl = t.delta, bi = t.bias;
        if (bc.has_moff && corr) {
            scores<true, true>(bc, i0, m, su, dl, bi, qc, corr, sc);
        } else if (bc.has_moff) {
            scores<true, false>(bc, i0, m, su, dl, bi, qc, corr, sc);
        } else if (corr) {
            scores<false, true>(bc, i0, m, su, dl, bi, qc, corr, sc);
        } else {
            scores<false, false>(bc, i0, m, su, dl, bi, qc, corr, sc);
        }
        for (uint64_t mk = reach_mask(L2, sc, m, r.bound); mk; mk &= mk - 1) {
            size_t i = __builtin_ctzll(mk);
            // re-scoring finds a code by its key; table scores go out as
            // they are, ties by label
            idx_t key = s.rerank_factor >= 1 ? key_of(l, i0 + i) : ids[i0 + i];
            if (r.beats(sc[i], key) &&
                (!s.sel || s.sel->is_member(ids[i0 + i]))) {
                r.add(sc[i], key);
            }
        }
    }

    /// list l for the chunk's queries qis (at most kLutMaxQueries)
    void scan_list(size_t l, const size_t* qis, size_t nqs) {
        const BlockedCodes& bc = s.lists.codes[l];
        const bool fresh = shifted() && s.lists.fresh(l, s.table);
        const LutTables* tabs[kLutMaxQueries];
        const float* corrs[kLutMaxQueries]; // the terms its tables need
        float qc[kLutMaxQueries];
        const size_t lut_bytes = kLutGroupBytes * s.tq.mse_bytes;
        for (size_t t = 0; t < nqs; t++) {
            const ChunkQuery& cq = qs[qis[t]];
            list_query(cq.q, l);
            qc[t] = lq.qconst[0];
            tabs[t] = &cq.tab;
            corrs[t] = fresh ? s.lists.cdot[l].data() : nullptr;
            // a list changed since the refresh has no <R c, c_hat> yet
            if (shifted() && (!fresh || ivf_list_needs_own_tables(
                                                lq.y.data(), s.tq.d, cq.y2))) {
                ltab[t].build(s.tq, lq.y.data(), ftables);
                tabs[t] = &ltab[t];
                corrs[t] = nullptr;
            }
            std::copy_n(tabs[t]->lut.data(), lut_bytes, &luts[t * lut_bytes]);
        }
        const size_t nb = bc.nblocks(), bb = bc.block_bytes();
        for (size_t b0 = 0; b0 < nb; b0 += kCallBlocks) {
            const size_t nc = std::min(kCallBlocks, nb - b0);
            kernels.block_sums(
                    bc.blocks.data() + b0 * bb,
                    bc.ngroups,
                    nc,
                    luts.data(),
                    nqs,
                    sums.data());
            for (size_t b = b0; b < b0 + nc; b++) {
                const size_t i0 = b * kLutBlockCodes;
                const size_t m = std::min(kLutBlockCodes, bc.ntotal - i0);
                for (size_t t = 0; t < nqs; t++) {
                    const uint32_t* su =
                            sums.data() + ((b - b0) * nqs + t) * kLutBlockCodes;
                    offer(l,
                          i0,
                          m,
                          su,
                          *tabs[t],
                          qc[t],
                          corrs[t],
                          qs[qis[t]].r);
                }
            }
        }
        ndis += bc.ntotal * nqs;
        nlist += nqs;
    }

    /// query qi's candidates into D, L (k each): re-scored exactly, or
    /// (rerank_factor < 1) with their table scores
    void finish(ChunkQuery& cq, size_t k, float* D, idx_t* L) {
        TopkReservoir& r = cq.r;
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
                list_query(cq.q, l);
                cur = l;
            }
            s.lists.codes[l].code(s.tq, j, row.data());
            v = s.tq.score(lq, 0, row.data(), buf.data());
            push_topk(L2, k, D, L, v, s.lists.ids[l][j]);
        }
        finalize_topk(L2, k, D, L);
    }

    /// queries [0, n) of x (assign, D, L offset alike)
    void
    run(size_t n,
        const float* x,
        const idx_t* assign,
        size_t k,
        float* D,
        idx_t* L) {
        qs.clear();
        std::vector<Visit> visits;
        for (size_t i = 0; i < n; i++) {
            qs.emplace_back(L2, kk);
            ChunkQuery& cq = qs.back();
            s.tq.prepare_queries(1, x + i * s.tq.d, L2, cq.q);
            cq.tab.build(s.tq, cq.q.y.data(), ftables);
            cq.y2 = dot_lanes(cq.q.y.data(), cq.q.y.data(), s.tq.d);
            // the lists it scans, in probe order up to max_codes
            size_t nscan = 0;
            for (size_t p = 0; p < s.nprobe; p++) {
                const idx_t l = assign[i * s.nprobe + p];
                if (l < 0 || s.lists.codes[l].ntotal == 0) {
                    continue;
                }
                visits.push_back({l, i});
                nscan += s.lists.codes[l].ntotal;
                if (s.max_codes && nscan >= s.max_codes) {
                    break;
                }
            }
        }
        std::sort(visits.begin(), visits.end());
        size_t qis[kLutMaxQueries];
        for (size_t v0 = 0; v0 < visits.size();) {
            size_t nqs = 0, v = v0;
            for (; v < visits.size() && visits[v].list == visits[v0].list &&
                   nqs < kLutMaxQueries;
                 v++) {
                qis[nqs++] = visits[v].qi;
            }
            scan_list(visits[v0].list, qis, nqs);
            v0 = v;
        }
        for (size_t i = 0; i < n; i++) {
            finish(qs[i], k, D + i * k, L + i * k);
        }
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
    // chunks of queries: enough of them to share a list's blocks, few
    // enough for their tables and reservoirs to stay small
    const size_t nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    const size_t chunk = std::max<size_t>(
            1, std::min<size_t>(kChunkQueries, (n + nt - 1) / nt));
    const int64_t nchunks = (n + chunk - 1) / chunk;
    OmpErrors errors;
    tq.with_form(l2, [&](auto, auto deb, auto l2c) {
        using Search = ChunkSearch<deb(), l2c()>;
#pragma omp parallel if (nchunks > 1 && !omp_in_parallel()) \
        reduction(+ : ndis, nl)
        {
            // try / capture, not run(): clang cannot capture inside this
            // generic lambda's region
            std::unique_ptr<Search> cs;
            try {
                cs = std::make_unique<Search>(*this, kk);
            } catch (...) {
                errors.capture();
            }
#pragma omp for schedule(dynamic)
            for (int64_t c = 0; c < nchunks; c++) {
                const size_t i0 = c * chunk, m = std::min(chunk, n - i0);
                if (errors.failed()) {
                    continue;
                }
                try {
                    cs->run(m,
                            x + i0 * tq.d,
                            assign + i0 * nprobe,
                            k,
                            D + i0 * k,
                            L + i0 * k);
                } catch (...) {
                    errors.capture();
                }
            }
            if (cs) {
                ndis += cs->ndis;
                nl += cs->nlist;
            }
        }
        return 0;
    });
    errors.rethrow();
    if (stats) {
        stats->nq += n;
        stats->nlist += nl;
        stats->ndis += ndis;
    }
}

} // namespace faiss_turbo
