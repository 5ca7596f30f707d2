#include <faiss_turbo/impl/scan_int8.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/omp_errors.h>
#include <faiss_turbo/impl/scan.h>

namespace faiss_turbo {

/*************************************************************
 * tables
 *************************************************************/

bool int8_scan_supported(const TurboQuantizer& tq) {
    return tq.d <= kInt8MaxDim;
}

namespace {

/// tables of one MSE codebook: u = round(c / s_c) + 64, v = round(c^2 / s_v)
void fill_mse_tables(
        Int8Segment& s, const Codebook& cb, double& cs, double& vs) {
    double cmax = 0, c2max = 0;
    for (float c : cb.centroids) {
        cmax = std::max(cmax, std::fabs((double)c));
        c2max = std::max(c2max, (double)c * c);
    }
    cs = cmax > 0 ? cmax / kInt8Offset : 1;
    vs = c2max > 0 ? c2max / 255 : 1;
    for (size_t i = 0; i < cb.k(); i++) {
        double c = cb.centroids[i];
        long u = std::lround(c / cs) + kInt8Offset;
        s.u[i] = (uint8_t)std::min(2L * kInt8Offset, std::max(0L, u));
        s.v[i] = (uint8_t)std::min(255L, std::lround(c * c / vs));
    }
}

/// interleave segments of 1, 2 and 4 bits that start on a byte
void set_geometry(Int8Segment& s, size_t tile_offset) {
    s.tile_offset = tile_offset;
    s.interleaved = (s.nbits == 1 || s.nbits == 2 || s.nbits == 4) &&
                    s.bit_offset % 8 == 0;
    size_t unit = s.interleaved ? 256 / s.nbits : 32;
    s.width = (s.ncoords + unit - 1) / unit * unit;
}

} // namespace

Int8Codec::Int8Codec(const TurboQuantizer& tq_in, bool l2, const Int8Kernels& k)
    : tq(&tq_in), kernels(&k), l2(l2) {
    FAISS_THROW_IF_NOT_FMT(
            int8_scan_supported(tq_in),
            "int8 scan: d=%zd is above %zd",
            tq_in.d,
            kInt8MaxDim);
    const TurboQuantizer& t = tq_in;
    Int8Layout& L = layout;
    L.code_size = t.code_size;
    L.want_v = t.variant == TQVariant::MSE && !t.debiased && l2;
    size_t off = 0;
    auto add = [&](size_t bit_offset, int nbits, size_t n, size_t c0) {
        Int8Segment& s = L.seg[L.nseg];
        s.bit_offset = bit_offset;
        s.nbits = nbits;
        s.ncoords = n;
        set_geometry(s, off);
        off += s.width;
        coord0[L.nseg] = c0;
        return L.nseg++;
    };
    const size_t n_lo = t.d - t.n_hi;
    struct Part {
        size_t c0, n;
        int nbits;
        const Codebook* cb;
    } parts[2] = {
            {0, t.n_hi, t.b_hi, t.cb_hi.get()},
            {t.n_hi, n_lo, t.b_lo, t.cb_lo.get()}};
    size_t bit = 0;
    for (const Part& p : parts) {
        if (p.n == 0) {
            continue;
        }
        if (p.nbits == 0) {
            zero_begin = p.c0;
            zero_end = p.c0 + p.n;
            zero_c = p.cb->centroids[0];
            continue;
        }
        int s = add(bit, p.nbits, p.n, p.c0);
        fill_mse_tables(L.seg[s], *p.cb, cscale[s], vscale[s]);
        mult[s] = 1;
        bit += p.n * p.nbits;
    }
    if (t.variant == TQVariant::PROD) {
        int s = add(t.mse_bytes * 8, 1, t.d, 0);
        sign[s] = true;
        mult[s] = 2;
        L.seg[s].u[1] = 1;
    }
    L.row = off;
    L.direct = L.nseg > 0;
    L.max_read = L.code_size;
    for (int s = 0; s < L.nseg; s++) {
        const Int8Segment& sg = L.seg[s];
        size_t end = 0;
        if (sg.interleaved) {
            end = sg.bit_offset / 8 + sg.width * sg.nbits / 8;
        } else {
            end = (sg.bit_offset + sg.nbits * sg.ncoords + 7) / 8 +
                  kInt8NaturalOverread;
        }
        L.max_read = std::max(L.max_read, end);
        // once per codec: the per-coordinate divisions took 1% of a batch
        // of queries and more of an IVF scan, which sets each list's query
        pos[s].resize(sg.ncoords);
        for (size_t j = 0; j < sg.ncoords; j++) {
            pos[s][j] = sg.tile_offset + int8_kernel_position(sg, j);
        }
    }
}

/*************************************************************
 * queries
 *************************************************************/

namespace {

/// q8 = round(x / s), s = max |x| / kInt8QueryMax, over coordinates [0, n)
/// of x
float int8_scale(const float* x, size_t n) {
    float m = 0;
    for (size_t j = 0; j < n; j++) {
        m = std::max(m, std::fabs(x[j]));
    }
    return m > 0 ? m / kInt8QueryMax : 1;
}

int8_t to_int8(float x, float scale, float inv) {
    long v = std::lround(scale_coord(x, scale, inv));
    const long qmax = kInt8QueryMax;
    return (int8_t)std::min(qmax, std::max(-qmax, v));
}

} // namespace

void Int8Queries::resize(const Int8Codec& codec, size_t n_in) {
    n = n_in;
    row = codec.layout.row;
    q8.assign(n * row, 0);
    w.assign(n * kInt8MaxSegments, 0);
    off.assign(n * kInt8MaxSegments, 0);
    c0.assign(n, 0);
}

void Int8Queries::set(
        const Int8Codec& codec, const TQQueries& q, size_t qi, size_t oi) {
    const size_t d = codec.tq->d;
    const float* y = q.y.data() + qi * d;
    const float* sy = q.sy.empty() ? nullptr : q.sy.data() + qi * d;
    float s_y = int8_scale(y, d), s_sy = sy ? int8_scale(sy, d) : 1;
    int8_t* r = q8.data() + oi * row;
    memset(r, 0, row);
    for (int s = 0; s < codec.layout.nseg; s++) {
        const Int8Segment& sg = codec.layout.seg[s];
        const float* x = (codec.sign[s] ? sy : y) + codec.coord0[s];
        float scale = codec.sign[s] ? s_sy : s_y, inv = 1 / scale;
        const uint32_t* pos = codec.pos[s].data();
        int32_t sum = 0;
        for (size_t j = 0; j < sg.ncoords; j++) {
            int8_t v = to_int8(x[j], scale, inv);
            r[pos[j]] = v;
            sum += v;
        }
        off[oi * kInt8MaxSegments + s] =
                codec.sign[s] ? sum : kInt8Offset * sum;
        w[oi * kInt8MaxSegments + s] =
                codec.sign[s] ? scale
                              : (float)((double)scale * codec.cscale[s]);
    }
    double z = 0;
    for (size_t j = codec.zero_begin; j < codec.zero_end; j++) {
        z += y[j];
    }
    c0[oi] = (float)(z * codec.zero_c);
}

void Int8Queries::prepare(const Int8Codec& codec, const TQQueries& q) {
    resize(codec, q.n);
#pragma omp parallel for if (q.n > 64)
    for (int64_t i = 0; i < (int64_t)q.n; i++) {
        set(codec, q, i, i);
    }
}

namespace {

/// Int8BlockAffine::set with the form and the scalars' layout (AUX, MOFF:
/// TurboQuantizer::read_scalars_as) as template arguments: no branch in
/// the loop, so that it vectorizes (at d = 128 one query's scan spent a
/// tenth of its time in a loop that branched per code)
template <bool PROD, bool DEBIASED, bool L2, bool AUX, bool MOFF>
FAISS_TURBO_CLONES void affine_rows(
        const Int8Codec& codec,
        const uint8_t* codes,
        size_t n,
        const int32_t* V,
        float* B,
        float* AC,
        float* AS) {
    const TurboQuantizer& tq = *codec.tq;
    const size_t cs = tq.code_size;
    const int nseg = codec.layout.nseg;
    // only plain MSE with L2 reads ||c_hat||^2
    constexpr bool CC = !PROD && !DEBIASED && L2;
    for (size_t i = 0; i < n; i++) {
        TQCodeScalars sc;
        tq.read_scalars_as<AUX, MOFF>(codes + i * cs, sc);
        if (CC && V) {
            double cc = 0;
            for (int s = 0; s < nseg; s++) {
                cc += codec.vscale[s] * V[i * nseg + s];
            }
            sc.cc = (float)cc;
        }
        const TQAffine a = tq.affine_form<PROD, DEBIASED, L2>(sc);
        B[i] = a.b;
        AC[i] = a.ac;
        AS[i] = a.as;
    }
}

} // namespace

void Int8BlockAffine::set(
        const Int8Codec& codec,
        const uint8_t* codes,
        size_t n,
        const int32_t* V) {
    if (this->b.size() < n) {
        this->b.resize(n);
        ac.resize(n);
        as.resize(n);
    }
    float *B = this->b.data(), *AC = ac.data(), *AS = as.data();
    const TurboQuantizer& tq = *codec.tq;
    tq.with_form(codec.l2, [&](auto prod, auto deb, auto l2) {
        auto run = [&](auto aux, auto moff) {
            affine_rows<prod(), deb(), l2(), aux(), moff()>(
                    codec, codes, n, V, B, AC, AS);
        };
        using T = std::true_type;
        using F = std::false_type;
        if (tq.has_aux()) {
            tq.ip_offset ? run(T{}, T{}) : run(T{}, F{});
        } else {
            tq.ip_offset ? run(F{}, T{}) : run(F{}, F{});
        }
        return 0;
    });
}

namespace {

/// the loop below is compiled for AVX-512 and AVX2 as well
/// (FAISS_TURBO_CLONES)
/// NMSE MSE segments, then PROD's sign segment when SIGN (the order
/// Int8Codec builds them in)
template <int NMSE, bool SIGN>
FAISS_TURBO_CLONES void block_scores(
        const Int8Codec& codec,
        const Int8Queries& p,
        size_t pi,
        float qconst,
        const Int8BlockAffine& a,
        const int32_t* U,
        size_t n,
        float* out) {
    constexpr int NSEG = NMSE + (SIGN ? 1 : 0);
    const float* w = p.w.data() + pi * kInt8MaxSegments;
    const int32_t* off = p.off.data() + pi * kInt8MaxSegments;
    const float c0 = p.c0[pi];
    const float* B = a.b.data();
    const float* AC = a.ac.data();
    const float* AS = a.as.data();
    for (size_t i = 0; i < n; i++) {
        const int32_t* u = U + i * NSEG;
        float dc = c0;
        for (int s = 0; s < NMSE; s++) {
            dc += w[s] * (float)(u[s] - off[s]);
        }
        float v = qconst + B[i] + AC[i] * dc;
        if (SIGN) {
            v += AS[i] * (w[NMSE] * (float)(2 * u[NMSE] - off[NMSE]));
        }
        out[i] = v;
    }
}

} // namespace

void int8_block_scores(
        const Int8Codec& codec,
        const Int8Queries& p,
        size_t pi,
        float qconst,
        const Int8BlockAffine& a,
        const int32_t* U,
        size_t n,
        float* out) {
    const int nseg = codec.layout.nseg;
    const bool sign = nseg > 0 && codec.sign[nseg - 1];
    const int nmse = nseg - (sign ? 1 : 0);
    FAISS_THROW_IF_NOT_FMT(
            nseg >= 1 && nmse <= 2,
            "int8 scan: %d segments not supported",
            nseg);
    auto* f = sign ? (nmse == 0   ? block_scores<0, true>
                      : nmse == 1 ? block_scores<1, true>
                                  : block_scores<2, true>)
                   : (nmse == 1 ? block_scores<1, false>
                                : block_scores<2, false>);
    f(codec, p, pi, qconst, a, U, n, out);
}

/*************************************************************
 * blocks of codes
 *************************************************************/

namespace {

constexpr size_t kDirectBlock = 256; // codes per direct kernel call, at most

/// codes per direct kernel call: the block's codes are read again for
/// their norms right after the kernel, so they should still be in L1
size_t direct_block(const Int8Layout& L) {
    constexpr size_t kDirectBytes = 16384;
    return std::max<size_t>(
            8, std::min(kDirectBlock, kDirectBytes / L.code_size));
}
// codes decoded into one tile: 64 measured 1.03-1.09x faster than 32 at
// d = 384 (the per-query scores and filter run over longer loops)
constexpr size_t kTileCodes = 64;
constexpr size_t kTileQueries = 32; // queries per tile_dots call
// queries per task, each decoding every tile of its codes once: 1024
// measured 1.03-1.07x faster than 256 (threads still split the codes)
constexpr size_t kQueryChunk = 1024;

/// codes [0, n) of `block`, readable for layout.max_read bytes past each
/// code's start (readable_codes)
const uint8_t* readable(
        const Int8Layout& L,
        const uint8_t* block,
        size_t n,
        size_t avail,
        std::vector<uint8_t>& pad) {
    return readable_codes(L.code_size, L.max_read, block, n, avail, pad);
}

/// per-thread buffers of a scan
struct Scratch {
    std::vector<uint8_t> tile, pad;
    std::vector<int32_t> usum, vsum;
    std::vector<char> keep;
    Int8BlockAffine aff;
    std::vector<float> scores;

    /// tiles: room for a tile (run_tiles; the direct kernel needs none)
    Scratch(const Int8Codec& codec, size_t ncodes, size_t nq, bool tiles)
        : aff(ncodes), scores(ncodes) {
        const Int8Layout& L = codec.layout;
        if (tiles) {
            tile.resize(int8_tile_bytes(*codec.kernels, L, kTileCodes));
        }
        usum.resize(ncodes * nq * L.nseg);
        vsum.resize(ncodes * L.nseg);
        keep.resize(ncodes);
    }
};

/// what one task scans: codes [i0, i1), queries [q0, q1), the kk best
struct SliceTask {
    const Int8Codec& codec;
    const TQQueries& q;
    const Int8Queries& p;
    const uint8_t* codes; ///< row codes, or null with blocked
    const BlockedCodes* blocked;
    size_t ncodes;
    const faiss::IDSelector* sel;
    TopkReservoir* best; ///< query qi's at best[qi]

    /// offer nb codes from id i0 to queries [qs, qs + nqs): their sums
    /// are in sc.usum, their coefficients in sc.aff
    void offer(size_t i0, size_t nb, size_t qs, size_t nqs, Scratch& sc) const {
        const int nseg = codec.layout.nseg;
        const bool l2 = q.l2;
        for (size_t t = 0; t < nqs; t++) {
            size_t qi = qs + t;
            int8_block_scores(
                    codec,
                    p,
                    qi,
                    q.qconst[qi],
                    sc.aff,
                    sc.usum.data() + t * nb * nseg,
                    nb,
                    sc.scores.data());
            TopkReservoir& r = best[qi];
            const float* v = sc.scores.data();
            for (size_t c = 0; c < nb; c += 64) {
                uint64_t m = reach_mask(
                        l2, v + c, std::min<size_t>(64, nb - c), r.bound);
                for (; m != 0; m &= m - 1) {
                    // a cut may have moved the bound since the mask
                    size_t i = c + __builtin_ctzll(m);
                    if (r.beats(v[i], i0 + i) && sc.keep[i]) {
                        r.add(v[i], i0 + i);
                    }
                }
            }
        }
    }

    const int32_t* vsums(const Scratch& sc) const {
        return codec.layout.want_v ? sc.vsum.data() : nullptr;
    }

    /// codes [b, b + nb), readable by the kernels (readable()), with
    /// the selector's verdicts in sc.keep
    const uint8_t* block(size_t b, size_t nb, Scratch& sc) const {
        const Int8Layout& L = codec.layout;
        if (sel) {
            for (size_t i = 0; i < nb; i++) {
                sc.keep[i] = sel->is_member(b + i);
            }
        } else { // one memset: the loop reloaded sc.keep's data per byte
            memset(sc.keep.data(), 1, nb);
        }
        if (blocked) { // rows, zero padded as far as the kernels read
            sc.pad.assign((nb - 1) * L.code_size + L.max_read, 0);
            blocked->rows(*codec.tq, b, nb, sc.pad.data());
            return sc.pad.data();
        }
        return readable(
                L,
                codes + b * L.code_size,
                nb,
                (ncodes - b) * L.code_size,
                sc.pad);
    }

    /// few queries: each block of codes goes through direct_dots once
    void run_direct(size_t i0, size_t i1, size_t q0, size_t q1) const {
        const Int8Layout& L = codec.layout;
        Scratch sc(codec, kDirectBlock, q1 - q0, false);
        const size_t unit = direct_block(L);
        for (size_t b = i0; b < i1; b += unit) {
            size_t nb = std::min(unit, i1 - b);
            const uint8_t* src = block(b, nb, sc);
            // the slice's next codes follow where src is the codes
            // themselves (not a copy)
            const bool own = codes && src == codes + b * L.code_size;
            codec.kernels->direct_dots(
                    L,
                    src,
                    nb,
                    p.q8.data() + q0 * L.row,
                    q1 - q0,
                    sc.usum.data(),
                    sc.vsum.data(),
                    own ? (i1 - b - nb) * L.code_size : 0);
            sc.aff.set(codec, src, nb, vsums(sc));
            offer(b, nb, q0, q1 - q0, sc);
        }
    }

    /// many queries: decode a tile of codes once, score every query on it
    void run_tiles(size_t i0, size_t i1, size_t q0, size_t q1) const {
        const Int8Layout& L = codec.layout;
        Scratch sc(codec, kTileCodes, kTileQueries, true);
        for (size_t b = i0; b < i1; b += kTileCodes) {
            size_t nb = std::min(kTileCodes, i1 - b);
            const uint8_t* src = block(b, nb, sc);
            codec.kernels->decode_tile(
                    L, src, nb, sc.tile.data(), sc.vsum.data());
            sc.aff.set(codec, src, nb, vsums(sc));
            for (size_t qs = q0; qs < q1; qs += kTileQueries) {
                size_t nqs = std::min(kTileQueries, q1 - qs);
                codec.kernels->tile_dots(
                        L,
                        sc.tile.data(),
                        nb,
                        p.q8.data() + qs * L.row,
                        nqs,
                        sc.usum.data());
                offer(b, nb, qs, nqs, sc);
            }
        }
    }
};

} // namespace

/*************************************************************
 * flat scan
 *************************************************************/

namespace {

/// the scan over row codes, or (codes null) over blocked ones
void scan_knn_int8_any(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        const BlockedCodes* blocked,
        size_t ncodes,
        const TQQueries& q,
        size_t k,
        float rerank_factor,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel,
        const Int8Kernels& kernels) {
    check_scan_options(TQ_SCAN_INT8, rerank_factor, "int8 scan");
    const size_t nq = q.n;
    if (nq == 0) {
        return;
    }
    const size_t kk = scan_candidates(k, rerank_factor, ncodes);
    Int8Codec codec(tq, q.l2, kernels);
    Int8Queries p;
    p.prepare(codec, q);

    const bool direct = codec.layout.direct && nq <= kInt8MaxDirectQueries;
    const size_t qchunk = direct ? nq : kQueryChunk;
    const size_t nchunks = (nq + qchunk - 1) / qchunk;
    const size_t unit = direct ? kDirectBlock : kTileCodes;
    const size_t nunits = (ncodes + unit - 1) / unit;
    const size_t nslices = scan_slices(
            nchunks, nunits, (double)ncodes * codec.layout.code_size * qchunk);
    std::vector<TopkReservoir> best(nslices * nq, TopkReservoir(q.l2, kk));

    OmpErrors errors;
#pragma omp parallel for schedule(dynamic) if (nchunks * nslices > 1)
    for (int64_t task = 0; task < (int64_t)(nchunks * nslices); task++) {
        size_t c = task / nslices, s = task % nslices;
        size_t q0 = c * qchunk, q1 = std::min(nq, q0 + qchunk);
        size_t i0 = std::min(ncodes, nunits * s / nslices * unit);
        size_t i1 = std::min(ncodes, nunits * (s + 1) / nslices * unit);
        SliceTask t{
                codec, q, p, codes, blocked, ncodes, sel, best.data() + s * nq};
        errors.run([&] {
            if (direct) {
                t.run_direct(i0, i1, q0, q1);
            } else {
                t.run_tiles(i0, i1, q0, q1);
            }
        });
    }
    errors.rethrow();

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
                if (blocked) {
                    blocked->code(tq, id, row);
                    return (const uint8_t*)row;
                }
                return codes + id * tq.code_size;
            });
}

} // namespace

void scan_knn_int8(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        size_t ncodes,
        const TQQueries& q,
        size_t k,
        float rerank_factor,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel,
        const Int8Kernels& kernels) {
    scan_knn_int8_any(
            tq,
            codes,
            nullptr,
            ncodes,
            q,
            k,
            rerank_factor,
            distances,
            labels,
            sel,
            kernels);
}

void scan_knn_int8(
        const TurboQuantizer& tq,
        const BlockedCodes& codes,
        const TQQueries& q,
        size_t k,
        float rerank_factor,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel,
        const Int8Kernels& kernels) {
    FAISS_THROW_IF_NOT_MSG(
            codes.code_size == tq.code_size,
            "int8 scan: codes of another codec");
    scan_knn_int8_any(
            tq,
            nullptr,
            &codes,
            codes.ntotal,
            q,
            k,
            rerank_factor,
            distances,
            labels,
            sel,
            kernels);
}

/*************************************************************
 * one query at a time
 *************************************************************/

Int8CodeScorer::Int8CodeScorer(
        const TurboQuantizer& tq, bool l2, const Int8Kernels& kernels)
    : codec(tq, l2, kernels), aff(kDirectBlock) {
    q1.n = 1;
    q1.l2 = l2;
    p1.resize(codec, 1);
    if (!codec.layout.direct) { // score_run decodes tiles only then
        tile.resize(int8_tile_bytes(*codec.kernels, codec.layout, kTileCodes));
    }
    usum.resize(kDirectBlock * codec.layout.nseg);
    vsum.resize(kDirectBlock * codec.layout.nseg);
}

void Int8CodeScorer::set_query(const TQQueries& q, size_t qi) {
    const size_t d = codec.tq->d;
    FAISS_THROW_IF_NOT_FMT(qi < q.n, "set_query: query %zd of %zd", qi, q.n);
    q1.l2 = q.l2;
    q1.y.assign(q.y.begin() + qi * d, q.y.begin() + (qi + 1) * d);
    if (!q.sy.empty()) {
        q1.sy.assign(q.sy.begin() + qi * d, q.sy.begin() + (qi + 1) * d);
    }
    q1.qconst.assign(1, q.qconst[qi]);
    p1.set(codec, q1, 0, 0);
}

float Int8CodeScorer::score(const uint8_t* code) const {
    float v;
    score_run(code, 1, &v);
    return v;
}

void Int8CodeScorer::score_run(
        const uint8_t* codes, size_t n, float* out) const {
    const Int8Layout& L = codec.layout;
    const Int8Kernels& K = *codec.kernels;
    const int32_t* V = L.want_v ? vsum.data() : nullptr;
    const size_t unit = L.direct ? direct_block(L) : kTileCodes;
    for (size_t b = 0; b < n; b += unit) {
        size_t nb = std::min(unit, n - b);
        const uint8_t* src = readable(
                L, codes + b * L.code_size, nb, (n - b) * L.code_size, pad);
        if (L.direct) {
            const bool own = src == codes + b * L.code_size;
            K.direct_dots(
                    L,
                    src,
                    nb,
                    p1.q8.data(),
                    1,
                    usum.data(),
                    vsum.data(),
                    own ? (n - b - nb) * L.code_size : 0);
        } else {
            K.decode_tile(L, src, nb, tile.data(), vsum.data());
            K.tile_dots(L, tile.data(), nb, p1.q8.data(), 1, usum.data());
        }
        aff.set(codec, src, nb, V);
        int8_block_scores(
                codec, p1, 0, q1.qconst[0], aff, usum.data(), nb, out + b);
    }
}

} // namespace faiss_turbo
