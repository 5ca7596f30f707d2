#include <faiss_turbo/impl/scan_prescan.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/impl/codebook.h>
#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/omp_errors.h>
#include <faiss_turbo/impl/scan.h>

namespace faiss_turbo {

TQPrescanStats tq_prescan_stats;

/*************************************************************
 * the codec's signs
 *************************************************************/

namespace {

/// bit of coordinate j's sign in a code: the top bit of its index
size_t sign_bit(const TurboQuantizer& tq, size_t j) {
    if (j < tq.n_hi) {
        return j * tq.b_hi + tq.b_hi - 1;
    }
    return tq.n_hi * tq.b_hi + (j - tq.n_hi) * tq.b_lo + tq.b_lo - 1;
}

void check_symmetric(const Codebook& cb) {
    const size_t h = cb.k() / 2;
    FAISS_THROW_IF_NOT_FMT(
            cb.centroids[h - 1] < 0 && cb.centroids[h] > 0,
            "prescan: the %d-bit codebook has no sign in its top bit",
            cb.nbits);
}

} // namespace

void check_prescan_codec(const TurboQuantizer& tq) {
    const bool hi = tq.n_hi > 0 && tq.b_hi >= 1;
    const bool lo = tq.n_hi < tq.d && tq.b_lo >= 1;
    FAISS_THROW_IF_NOT_MSG(
            hi || lo,
            "prescan: the codes hold no MSE bits (TQprod below 2 bits): "
            "there are no signs to pre-scan");
    if (hi) {
        check_symmetric(*tq.cb_hi);
    }
    if (lo) {
        check_symmetric(*tq.cb_lo);
    }
}

SignCodec::SignCodec(const TurboQuantizer& tq, const Int8Codec& codec) {
    check_prescan_codec(tq);
    const size_t d = tq.d;
    has_sign.resize(d);
    for (size_t j = 0; j < d; j++) {
        has_sign[j] = (j < tq.n_hi ? tq.b_hi : tq.b_lo) >= 1;
    }
    mean_abs = get_lloyd_max_codebook(d, 1)->centroids[1];

    SignLayout& L = layout;
    L.code_size = tq.code_size;
    L.ngroups = (d + 3) / 4;
    L.ncols = (L.ngroups + 3) / 4;
    L.max_read = tq.code_size;
    byte.assign(L.ngroups, 0);
    mask.assign(L.ngroups, 0);
    present.assign(L.ngroups, 0);
    for (size_t g = 0; g < L.ngroups; g++) {
        bool first = true;
        for (size_t i = 0; i < 4 && 4 * g + i < d; i++) {
            size_t j = 4 * g + i;
            if (!has_sign[j]) {
                continue;
            }
            size_t b = sign_bit(tq, j);
            if (first) {
                byte[g] = b / 8;
                first = false;
            }
            mask[g] |= 1ull << (b - 8 * byte[g]); // at most 31 bits apart
            present[g] |= 1 << i;
        }
        L.max_read = std::max(L.max_read, (size_t)byte[g] + 8);
    }
    col_byte.assign(L.ncols, 0);
    col_mask.assign(L.ncols, 0);
    for (size_t w = 0; w < L.ncols; w++) {
        const size_t j0 = 16 * w;
        bool all = j0 + 16 <= d;
        for (size_t j = j0; all && j < j0 + 16; j++) {
            all = has_sign[j];
        }
        if (!all || sign_bit(tq, j0 + 15) - sign_bit(tq, j0) / 8 * 8 >= 64) {
            continue;
        }
        col_byte[w] = sign_bit(tq, j0) / 8;
        for (size_t j = j0; j < j0 + 16; j++) {
            col_mask[w] |= 1ull << (sign_bit(tq, j) - 8 * col_byte[w]);
        }
        L.max_read = std::max(L.max_read, (size_t)col_byte[w] + 8);
    }
    L.byte = byte.data();
    L.mask = mask.data();
    L.present = present.data();
    L.col_byte = col_byte.data();
    L.col_mask = col_mask.data();

    if (codec.layout.want_v) {
        vexp.assign(codec.layout.nseg, 0);
        for (int s = 0; s < codec.layout.nseg; s++) {
            if (codec.sign[s]) {
                continue;
            }
            const Codebook& cb =
                    codec.coord0[s] < tq.n_hi ? *tq.cb_hi : *tq.cb_lo;
            double e = codec.layout.seg[s].ncoords * (1.0 / d - cb.mse);
            vexp[s] = (int32_t)std::lround(std::max(0.0, e) / codec.vscale[s]);
        }
    }
}

/*************************************************************
 * queries
 *************************************************************/

namespace {

/// query y's tables (ncols x 64 entries) and its unit
float sign_tables(const SignCodec& sc, const float* y, int8_t* t) {
    const SignLayout& L = sc.layout;
    const size_t d = sc.has_sign.size();
    auto coord = [&](size_t j) -> float {
        return j < d && sc.has_sign[j] ? y[j] : 0.0f;
    };
    float mx = 0;
    for (size_t g = 0; g < L.ngroups; g++) {
        float a = 0;
        for (size_t i = 0; i < 4; i++) {
            a += std::fabs(coord(4 * g + i));
        }
        mx = std::max(mx, a);
    }
    const float s = mx > 0 ? mx / 127 : 1, inv = 1 / s;
    for (size_t g = 0; g < L.ngroups; g++) {
        float x[4], e[16];
        for (size_t i = 0; i < 4; i++) {
            x[i] = coord(4 * g + i);
        }
        // e[n] = sum_i +-x_i, + where bit i of n is set: each pattern is
        // one with a bit less plus 2 x_i
        e[0] = -(x[0] + x[1] + x[2] + x[3]);
        for (int n = 1; n < 16; n++) {
            e[n] = e[n & (n - 1)] + 2 * x[__builtin_ctz(n)];
        }
        int8_t* out = t + (g / 4) * kSignColumnBytes + (g % 4) * 16;
        for (int n = 0; n < 16; n++) {
            float v = scale_coord(e[n], s, inv); // |v| <= 127 up to rounding
            int r = (int)(v + (v >= 0 ? 0.5f : -0.5f));
            out[n] = (int8_t)std::min(127, std::max(-127, r));
        }
    }
    return s * (float)sc.mean_abs;
}

} // namespace

void SignQueries::prepare(const SignCodec& sc, const float* y, size_t n_in) {
    const size_t d = sc.has_sign.size();
    const size_t tb = sc.layout.ncols * kSignColumnBytes;
    n = n_in;
    tables.assign(n * tb, 0);
    unit.assign(n, 1);
#pragma omp parallel for if (n > 16)
    for (int64_t i = 0; i < (int64_t)n; i++) {
        unit[i] = sign_tables(sc, y + i * d, tables.data() + i * tb);
    }
}

/*************************************************************
 * the first pass
 *************************************************************/

namespace {

constexpr size_t kSignTileCodes = 1024;  // codes per tile
constexpr size_t kSignTileQueries = 32;  // queries per tile_dots call
constexpr size_t kSignQueryBatch = 1024; // queries per pass over the codes
/// bytes a batch's shortlists may take, all slices together: long
/// shortlists (or many threads) take smaller batches
constexpr size_t kSignShortlistBytes = size_t(1) << 28;
/// bytes per kept code and slice: a first-pass reservoir entry (16 bytes,
/// up to 4 per kept code as its buffer grows to 2 kk), the lists (12)
constexpr size_t kSignBytesPerKept = 80;

/// n codes in whole tiles, cut into slices for the threads: as many as
/// scan_slices gives a pass of nb queries over them (at least 1)
struct TileSlices {
    size_t n, nunits, count;

    TileSlices(size_t n_in, size_t code_size, size_t nb)
        : n(n_in),
          nunits((n + kSignTileCodes - 1) / kSignTileCodes),
          count(std::max<size_t>(
                  1, scan_slices(1, nunits, (double)n * code_size * nb))) {}

    /// slice s: codes [*i0, *i1)
    void get(size_t s, size_t* i0, size_t* i1) const {
        *i0 = std::min(n, nunits * s / count * kSignTileCodes);
        *i1 = std::min(n, nunits * (s + 1) / count * kSignTileCodes);
    }
};

/// per-thread buffers of the first pass
struct SignScratch {
    std::vector<uint8_t> tile, pad;
    std::vector<int32_t> sums, vexp;
    std::vector<char> keep;
    Int8BlockAffine aff;
    std::vector<float> scores;
    std::vector<uint64_t> reach;

    SignScratch(const SignCodec& sc, int nseg)
        : tile(sign_tile_bytes(sc.layout, kSignTileCodes)),
          sums(kSignTileCodes * kSignTileQueries),
          keep(kSignTileCodes),
          aff(kSignTileCodes),
          scores(kSignTileCodes),
          reach(kSignTileCodes / 64) {
        if (!sc.vexp.empty()) {
            vexp.resize(kSignTileCodes * nseg);
            for (size_t i = 0; i < kSignTileCodes; i++) {
                std::copy(sc.vexp.begin(), sc.vexp.end(), &vexp[i * nseg]);
            }
        }
    }
};

/// what one task of the first pass scans
struct SignSource {
    const TurboQuantizer& tq;
    const Int8Codec& codec;
    const SignCodec& sc;
    const SignKernels& K;
    const TQQueries& q;
    const Int8Queries& p;
    const SignQueries* sq; ///< row 0: query q0
    size_t q0, q1;         ///< the batch, queries of q (sq's row 0 is q0)
    const uint8_t* codes;
    const BlockedCodes* blocked;
    size_t ncodes;
    const faiss::IDSelector* sel;
};

/// a first-pass task into a TopkReservoir per query (or, for the seeds'
/// sample, a TopValues)
template <class Best> struct SignTaskOf : SignSource {
    Best* best;     ///< query q0 + t's at best[t]
    size_t* passed; ///< null, or query q0 + t's offers taken, += here

    /// the same scan into other sinks
    template <class Other> SignTaskOf<Other> into(Other* b) const {
        return {{*this}, b, nullptr};
    }

    const uint8_t* block(size_t b, size_t nb, SignScratch& s) const {
        for (size_t i = 0; i < nb; i++) {
            s.keep[i] = !sel || sel->is_member(b + i);
        }
        const size_t cs = tq.code_size, mr = sc.layout.max_read;
        if (blocked) {
            s.pad.assign((nb - 1) * cs + mr, 0);
            blocked->rows(tq, b, nb, s.pad.data());
            return s.pad.data();
        }
        return readable_codes(
                cs, mr, codes + b * cs, nb, (ncodes - b) * cs, s.pad);
    }

    /// the tile's codes i0.. (nb) to queries t0.. (nt), from their sums.
    /// The reach bits take the bound where they start: the rest of the
    /// tile at once, or 64 codes while the bound is still infinite (its
    /// bits would hold every code of the tile, each then tried by beats()).
    /// A bound that a cut tightens meanwhile is beats()'s
    void
    offer(size_t i0, size_t nb, size_t t0, size_t nt, SignScratch& s) const {
        for (size_t t = 0; t < nt; t++) {
            const size_t qi = q0 + t0 + t;
            Best& r = best[t0 + t];
            const int32_t* S = s.sums.data() + t * nb;
            for (size_t c = 0; c < nb;) {
                const size_t n = std::isinf(r.bound)
                                         ? std::min<size_t>(64, nb - c)
                                         : nb - c;
                const SignScoreForm f{
                        s.aff.b.data() + c,
                        s.aff.ac.data() + c,
                        q.qconst[qi],
                        p.c0[qi],
                        sq->unit[t0 + t],
                        q.l2,
                        r.bound};
                float* v = s.scores.data() + c;
                K.scores_reach(f, S + c, n, v, s.reach.data());
                for (size_t w = 0; w < (n + 63) / 64; w++) {
                    for (uint64_t m = s.reach[w]; m != 0; m &= m - 1) {
                        const size_t i = 64 * w + __builtin_ctzll(m);
                        offer_one(r, v[i], i0 + c + i, s.keep[c + i], t0 + t);
                    }
                }
                c += n;
            }
        }
    }

    void offer_one(Best& r, float v, idx_t id, bool keep, size_t t) const {
        if (keep && r.beats(v, id)) {
            r.add(v, id);
            if (passed) {
                passed[t]++;
            }
        }
    }

    /// codes [i0, i1) against the batch's rows [ta, tb)
    void run(size_t i0, size_t i1, size_t ta, size_t tb) const {
        SignScratch s(sc, codec.layout.nseg);
        const size_t tbytes = sc.layout.ncols * kSignColumnBytes;
        const int32_t* V = s.vexp.empty() ? nullptr : s.vexp.data();
        for (size_t b = i0; b < i1; b += kSignTileCodes) {
            const size_t nb = std::min(kSignTileCodes, i1 - b);
            const uint8_t* src = block(b, nb, s);
            K.build_tile(sc.layout, src, nb, s.tile.data());
            s.aff.set(codec, src, nb, V);
            for (size_t t0 = ta; t0 < tb; t0 += kSignTileQueries) {
                const size_t nt = std::min(kSignTileQueries, tb - t0);
                K.tile_dots(
                        sc.layout,
                        s.tile.data(),
                        nb,
                        sq->tables.data() + t0 * tbytes,
                        nt,
                        s.sums.data());
                offer(b, nb, t0, nt, s);
            }
        }
    }
};

using SignTask = SignTaskOf<TopkReservoir>;

/** The first pass's head start. A bound that starts at infinity lets
 * some nshort (1 + ln(ncodes / nshort)) codes into each query's reservoir
 * (2400 at 100k codes, nshort = 250: 8 cuts of 500 entries, 2.6 us each),
 * most of them early. So each query's bound starts at the r-th best
 * first-pass score of a sample: a panel of 16 codes in every `stride`
 * panels, some kSeedHits of whose codes are expected among the query's
 * nshort best, and r above that by 4 standard deviations. The codes that
 * beat the seed then number at most about r / kSeedHits nshort (2.6
 * nshort; tq_prescan_stats counted 2.3 at 100k codes, up to 3 on small
 * sets, where r rounds up).
 * Results are unchanged: a query that took at least nshort codes had all
 * of its nshort best beat the seed; one that took fewer (odds about 1e-4
 * on random data) is scanned again without one. */
struct FirstPassSeeds {
    static constexpr double kSeedHits = 8;
    static constexpr size_t kMinStride = 4; // a sample of 1/4 at most
    static constexpr size_t kMinPanels = 4; // panels in a sample
    std::vector<float> bound;               // per batch row; empty: none

    FirstPassSeeds() = default;

    /// the seeds of task's batch over its codes (sel: none)
    FirstPassSeeds(const SignTask& task, size_t nshort) {
        const size_t P = kSignPanelCodes, npanels = task.ncodes / P;
        const size_t stride = (size_t)(nshort / kSeedHits);
        if (task.sel || stride < kMinStride || npanels / stride < kMinPanels) {
            return;
        }
        const size_t ns = (npanels + stride - 1) / stride, n = ns * P;
        const double mu = (double)n * nshort / task.ncodes;
        const size_t r = (size_t)std::ceil(mu + 4 * std::sqrt(mu) + 1);
        if (r >= n) {
            return;
        }
        const TurboQuantizer& tq = task.tq;
        std::vector<uint8_t> rows(n * tq.code_size);
        for (size_t j = 0; j < ns; j++) {
            const size_t b = j * stride * P;
            uint8_t* out = rows.data() + j * P * tq.code_size;
            if (task.blocked) {
                task.blocked->rows(tq, b, P, out);
            } else {
                memcpy(out, task.codes + b * tq.code_size, P * tq.code_size);
            }
        }
        // by slices of the sample, as the pass itself: a tile is built
        // once for the whole batch
        const size_t nb = task.q1 - task.q0;
        const TileSlices slices(n, tq.code_size, nb);
        const size_t nsl = slices.count;
        std::vector<TopValues> best(nsl * nb, TopValues(task.q.l2, r));
        OmpErrors errors;
#pragma omp parallel for if (nsl > 1)
        for (int64_t s = 0; s < (int64_t)nsl; s++) {
            SignTaskOf<TopValues> t = task.into(best.data() + s * nb);
            t.codes = rows.data();
            t.blocked = nullptr;
            t.ncodes = n;
            size_t i0, i1;
            slices.get(s, &i0, &i1);
            errors.run([&] { t.run(i0, i1, 0, nb); });
        }
        errors.rethrow();
        bound.resize(nb);
        for (size_t i = 0; i < nb; i++) {
            TopValues& b = best[i];
            for (size_t s = 1; s < nsl; s++) {
                b.merge(best[s * nb + i]);
            }
            // the r-th best; NaN (no seed) when fewer were finite
            const bool full = b.heap.size() == r && std::isfinite(b.bound);
            bound[i] = full ? b.bound : NAN;
        }
    }

    bool seeded(size_t t) const {
        return !bound.empty() && !std::isnan(bound[t]);
    }

    /// a reservoir that takes what ties or beats row t's seed
    void start(TopkReservoir& r, size_t t) const {
        if (seeded(t)) {
            r.bound = bound[t];
            r.bound_id = r.l2 ? std::numeric_limits<idx_t>::max() : -1;
        }
    }
};

/// batch row t's first pass again, without a seed, into best[t] (the
/// other slices' reservoirs of row t emptied): its seed let fewer than
/// nshort codes through
void rescan_unseeded(
        const SignTask& task,
        size_t t,
        size_t nslices,
        std::vector<TopkReservoir>& best) {
    const size_t nb = task.q1 - task.q0;
    SignQueries one;
    one.prepare(task.sc, task.q.y.data() + (task.q0 + t) * task.tq.d, 1);
    TopkReservoir fresh(task.q.l2, best[t].kk);
    SignTask rt = task.into(&fresh);
    rt.sq = &one;
    rt.q0 = task.q0 + t;
    rt.q1 = rt.q0 + 1;
    rt.run(0, task.ncodes, 0, 1);
    best[t] = std::move(fresh);
    for (size_t s = 1; s < nslices; s++) {
        best[s * nb + t].buf.clear();
    }
}

/// each batch row's nshort best codes by the first pass (ids; -1: empty
/// slots), the codes cut into slices
std::vector<std::vector<idx_t>> first_pass(
        const SignTask& task,
        size_t nshort,
        const TileSlices& slices,
        bool seed) {
    const size_t nb = task.q1 - task.q0, nslices = slices.count;
    const FirstPassSeeds seeds =
            seed ? FirstPassSeeds(task, nshort) : FirstPassSeeds();
    std::vector<TopkReservoir> best(
            nslices * nb, TopkReservoir(task.q.l2, nshort));
    std::vector<size_t> passed(nslices * nb, 0);
    for (size_t i = 0; i < best.size(); i++) {
        seeds.start(best[i], i % nb);
    }
    OmpErrors errors;
#pragma omp parallel for schedule(dynamic) if (nslices > 1)
    for (int64_t s = 0; s < (int64_t)nslices; s++) {
        size_t i0, i1;
        slices.get(s, &i0, &i1);
        SignTask t = task;
        t.best = best.data() + s * nb;
        t.passed = passed.data() + s * nb;
        errors.run([&] { t.run(i0, i1, 0, nb); });
    }
    errors.rethrow();
    std::vector<size_t> again; // rows whose seed let too few through
    for (size_t t = 0; t < nb; t++) {
        size_t took = 0;
        for (size_t s = 0; s < nslices; s++) {
            took += passed[s * nb + t];
        }
        if (seeds.seeded(t) && took < nshort) {
            again.push_back(t);
        }
    }
#pragma omp parallel for schedule(dynamic) if (again.size() > 1)
    for (int64_t j = 0; j < (int64_t)again.size(); j++) {
        errors.run([&] { rescan_unseeded(task, again[j], nslices, best); });
    }
    errors.rethrow();
    TQPrescanStats& st = tq_prescan_stats;
    st.nq += nb;
    st.nrescanned += again.size();
    for (size_t t = 0; t < nb; t++) {
        st.nseeded += seeds.seeded(t);
    }
    for (size_t e : passed) {
        st.nentries += e;
    }
    std::vector<std::vector<idx_t>> kept(nb);
#pragma omp parallel for if (nb > 1)
    for (int64_t t = 0; t < (int64_t)nb; t++) {
        errors.run([&] {
            for (size_t s = 1; s < nslices; s++) {
                best[t].merge(best[s * nb + t]);
            }
            std::vector<float> cv(nshort);
            kept[t].resize(nshort);
            best[t].finish(cv.data(), kept[t].data());
        });
    }
    errors.rethrow();
    return kept;
}

/// the shortlists of a batch by code: the queries (batch rows, ascending)
/// that kept code i are rows[start[i] .. start[i + 1])
struct Shortlists {
    std::vector<uint32_t> start; // < 2^32 entries: kSignShortlistBytes
    std::vector<uint32_t> rows;

    /// from each query's kept ids (-1: empty slots)
    Shortlists(const std::vector<std::vector<idx_t>>& kept, size_t ncodes)
        : start(ncodes + 1, 0) {
        for (const auto& ids : kept) {
            for (idx_t id : ids) {
                start[id + 1] += id >= 0;
            }
        }
        for (size_t i = 0; i < ncodes; i++) {
            start[i + 1] += start[i];
        }
        rows.resize(start[ncodes]);
        std::vector<uint32_t> fill(start.begin(), start.end() - 1);
        for (size_t t = 0; t < kept.size(); t++) {
            for (idx_t id : kept[t]) {
                if (id >= 0) {
                    rows[fill[id]++] = (uint32_t)t;
                }
            }
        }
    }
};

/** The second pass over codes [i0, i1): each shortlisted code read once
 * (in order, where the first version gathered each query's shortlist and
 * waited on DRAM for every code: 0.12 ms a query for 500 codes) and scored
 * by the int8 direct kernel against the queries that kept it, 4 at a
 * time, into best[t] (batch row t). The same integer sums and
 * int8_block_scores as every int8 path, so the same scores. */
struct SecondPass {
    const Int8Codec& codec;
    const Int8Queries& p;
    const TQQueries& q;
    size_t q0;
    const Shortlists& sl;
    TopkReservoir* best;

    template <class RowOf>
    void run(size_t i0, size_t i1, RowOf&& row_of) const {
        const Int8Layout& L = codec.layout;
        const int nseg = L.nseg;
        constexpr size_t G = kInt8MaxDirectQueries;
        std::vector<int8_t> qbuf(G * L.row);
        std::vector<int32_t> usum(G * nseg), vsum(nseg);
        std::vector<uint8_t> buf;
        Int8BlockAffine aff(1);
        float v;
        for (size_t i = i0; i < i1; i++) {
            const size_t r0 = sl.start[i], r1 = sl.start[i + 1];
            if (r0 == r1) {
                continue;
            }
            const uint8_t* code = row_of(i, buf);
            for (size_t g = r0; g < r1; g += G) {
                const size_t ng = std::min(G, r1 - g);
                const int8_t* qs = p.q8.data() + (q0 + sl.rows[g]) * L.row;
                if (ng > 1) { // the kernel takes rows side by side
                    for (size_t j = 0; j < ng; j++) {
                        memcpy(qbuf.data() + j * L.row,
                               p.q8.data() + (q0 + sl.rows[g + j]) * L.row,
                               L.row);
                    }
                    qs = qbuf.data();
                }
                codec.kernels->direct_dots(
                        L, code, 1, qs, ng, usum.data(), vsum.data(), 0);
                if (g == r0) {
                    aff.set(codec, code, 1, L.want_v ? vsum.data() : nullptr);
                }
                for (size_t j = 0; j < ng; j++) {
                    const size_t t = sl.rows[g + j], qi = q0 + t;
                    int8_block_scores(
                            codec,
                            p,
                            qi,
                            q.qconst[qi],
                            aff,
                            usum.data() + j * nseg,
                            1,
                            &v);
                    if (best[t].beats(v, i)) {
                        best[t].add(v, i);
                    }
                }
            }
        }
    }
};

} // namespace

/*************************************************************
 * the whole scan
 *************************************************************/

bool prescan_supported() {
    return &sign_kernels_best() != &sign_kernels_scalar();
}

bool prescan_applies(const TurboQuantizer& tq, int prescan, size_t n) {
    if (prescan <= 0) {
        return false;
    }
    check_prescan_codec(tq);
    return n >= (size_t)kTQPrescanMinQueries && prescan_supported() &&
           int8_scan_supported(tq);
}

void scan_knn_prescan(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        const BlockedCodes* blocked,
        size_t ncodes,
        const TQQueries& q,
        size_t k,
        float rerank_factor,
        size_t prescan,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel,
        const Int8Kernels& kernels,
        const SignKernels& sign_kernels,
        bool seed) {
    check_scan_options(TQ_SCAN_INT8, rerank_factor, "prescan");
    const size_t nq = q.n;
    if (nq == 0) {
        return;
    }
    const size_t kk = scan_candidates(k, rerank_factor, ncodes);
    const size_t nshort = std::max(kk, std::min(prescan, ncodes));
    FAISS_THROW_IF_NOT_FMT(
            nshort < (size_t(1) << 31),
            "prescan: a shortlist of %zd codes (max(prescan, k * "
            "rerank_factor)) is too long",
            nshort);
    Int8Codec codec(tq, q.l2, kernels);
    SignCodec sc(tq, codec);
    Int8Queries p;
    p.prepare(codec, q);
    auto code_of = [&](idx_t id, uint8_t* row) {
        if (blocked) {
            blocked->code(tq, id, row);
            return (const uint8_t*)row;
        }
        return codes + id * tq.code_size;
    };
    // code i readable for the int8 kernels (max_read bytes)
    const size_t cs = tq.code_size, mr = codec.layout.max_read;
    auto row_of = [&](size_t i, std::vector<uint8_t>& buf) {
        if (blocked) {
            buf.assign(mr, 0);
            blocked->code(tq, i, buf.data());
            return (const uint8_t*)buf.data();
        }
        return readable_codes(
                cs, mr, codes + i * cs, 1, (ncodes - i) * cs, buf);
    };

    // a full batch's slices: a smaller batch takes as many or fewer
    const size_t nslices_max =
            TileSlices(ncodes, cs, std::min(nq, kSignQueryBatch)).count;
    const size_t qbatch = std::max<size_t>(
            1,
            std::min(
                    kSignQueryBatch,
                    kSignShortlistBytes /
                            (kSignBytesPerKept * nshort * nslices_max)));
    for (size_t q0 = 0; q0 < nq; q0 += qbatch) {
        const size_t q1 = std::min(nq, q0 + qbatch), nb = q1 - q0;
        SignQueries sq;
        sq.prepare(sc, q.y.data() + q0 * tq.d, nb);
        const TileSlices slices(ncodes, cs, nb);
        const size_t nslices = slices.count;

        // first pass: each query's nshort best by their signs
        const SignTask task{
                {tq,
                 codec,
                 sc,
                 sign_kernels,
                 q,
                 p,
                 &sq,
                 q0,
                 q1,
                 codes,
                 blocked,
                 ncodes,
                 sel},
                nullptr,
                nullptr};
        const Shortlists sl(first_pass(task, nshort, slices, seed), ncodes);

        // second pass: the shortlisted codes by the int8 scan
        std::vector<TopkReservoir> best2(nslices * nb, TopkReservoir(q.l2, kk));
        OmpErrors errors;
#pragma omp parallel for schedule(dynamic) if (nslices > 1)
        for (int64_t s = 0; s < (int64_t)nslices; s++) {
            size_t i0, i1;
            slices.get(s, &i0, &i1);
            SecondPass sp{codec, p, q, q0, sl, best2.data() + s * nb};
            errors.run([&] { sp.run(i0, i1, row_of); });
        }
        errors.rethrow();
        finish_scan(
                tq,
                q,
                k,
                rerank_factor,
                best2,
                nslices,
                distances + q0 * k,
                labels + q0 * k,
                code_of,
                q0,
                nb);
    }
}

} // namespace faiss_turbo
