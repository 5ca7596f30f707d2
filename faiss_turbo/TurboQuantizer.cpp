#include <faiss_turbo/TurboQuantizer.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/omp_errors.h>
#include <faiss_turbo/impl/packing.h>
#include <faiss_turbo/impl/simd/float_kernels.h>

namespace faiss_turbo {

namespace {

constexpr size_t kEncodeBatch = 1024;

/// encode's batches: about this many floats per buffer, so that the rotated
/// batch is still in cache when the quantization reads it
constexpr size_t kEncodeBatchFloats = size_t(1) << 16;

/// per-thread buffers of encode
struct EncodeScratch {
    std::vector<uint8_t> idx, bits;
    EncodeScratch(size_t d, size_t mse_bytes) : idx(d), bits(mse_bytes + 16) {}
};

/// the centroids of n indices of cb.nbits bits from bit pos of code: a byte
/// at a time for the widths that divide 8 on a byte boundary (the common
/// case: re-scoring decodes every candidate), get_bits otherwise
void unpack_centroids(
        const uint8_t* code,
        size_t pos,
        size_t n,
        const Codebook& cb,
        float* out) {
    const float* c = cb.centroids.data();
    const int b = cb.nbits;
    size_t j = 0;
    if ((pos & 7) == 0 && b > 0 && 8 % b == 0) {
        const size_t per = 8 / b;
        lookup_centroids(code + (pos >> 3), n / per, b, c, out);
        j = n / per * per;
        pos += j * b;
    }
    for (; j < n; j++, pos += b) {
        out[j] = c[get_bits(code, pos, b)];
    }
}

/// one vector of encode once rotated: x (for the norm), u = R x (scaled
/// in place to R x / norm), rr gets c_hat (debiased MSE) or u - c_hat
/// (PROD; null for plain MSE, which needs neither); the code's MSE bits and
/// floats (PROD's signs come after, from rr); origin: the point x is relative
/// to, for moff (ip_offset), or null. Returns false (the code may be part
/// written; encode then throws) when the norm is not a finite float: a NaN or
/// Inf in x (its double sum of squares is then NaN or Inf, while finite floats
/// cannot overflow it), or a vector too long for float; or when the rotated
/// vector or a float of the code is not finite (overflows near float's
/// limit). That is encode's check for bad input, at no extra pass over
/// the batch.
bool encode_one(
        const TurboQuantizer& tq,
        const float* x,
        const float* origin,
        float* u,
        float* rr,
        EncodeScratch& sc,
        uint8_t* code) {
    const size_t d = tq.d, n_hi = tq.n_hi;
    const bool prod = tq.variant == TQVariant::PROD;
    float norm = (float)std::sqrt(canonical_dot_fast(x, x, d));
    if (!std::isfinite(norm)) {
        return false;
    }
    float inv = norm > 0 ? 1.0f / norm : 0.0f;
    for (size_t j = 0; j < d; j++) {
        u[j] = scale_coord(u[j], norm, inv); // unswitched: inv is fixed
    }
    // a finite vector near float's limit may still overflow inside the
    // rotation: no value there exceeds sqrt(d) times the norm (a block
    // transform's sums, a dense row's partial sums), so only such vectors
    // are looked at (a scan of every vector cost 6% of encode)
    if ((double)norm * std::sqrt((double)d) > 1e37 && !all_finite(u, d)) {
        return false;
    }
    // quantize_coord's indices, by a SIMD loop where there is one, with
    // c_hat (the centroids of the indices) into rr in the same pass where
    // it is needed
    uint8_t* idx = sc.idx.data();
    const Codebook &hi = *tq.cb_hi, &lo = *tq.cb_lo;
    quantize_coords(
            u,
            n_hi,
            hi.thresholds.data(),
            tq.b_hi,
            idx,
            hi.centroids.data(),
            rr);
    quantize_coords(
            u + n_hi,
            d - n_hi,
            lo.thresholds.data(),
            tq.b_lo,
            idx + n_hi,
            lo.centroids.data(),
            rr ? rr + n_hi : nullptr);
    uint8_t* bits = sc.bits.data();
    memset(bits, 0, sc.bits.size());
    size_t pos = pack_indices(idx, n_hi, tq.b_hi, bits, 0);
    pack_indices(idx + n_hi, d - n_hi, tq.b_lo, bits, pos);
    memcpy(code, bits, tq.mse_bytes);
    float aux = 0;
    if (prod) {
        for (size_t j = 0; j < d; j++) {
            rr[j] = u[j] - rr[j];
        }
        aux = (float)std::sqrt(canonical_dot_fast(rr, rr, d));
    } else if (tq.debiased) {
        double uc = canonical_dot_fast(u, rr, d);
        aux = uc > 0 ? (float)((double)norm / uc) : 0.0f;
    }
    TQCodeScalars s;
    s.norm = norm;
    s.aux = aux;
    if (tq.ip_offset && origin) {
        s.moff = (float)canonical_dot_fast(origin, x, d);
    }
    if (!std::isfinite(s.aux) || !std::isfinite(s.moff)) {
        return false; // beta = norm / <u, c_hat> may overflow near the limit
    }
    tq.write_scalars(code, s);
    return true;
}

/// throws naming the first row of a batch that encode_one refused: the
/// NaN or Inf in the caller's input x (the batch's rows first.. of it),
/// else the overflow (the difference to the mean, the norm, the rotation
/// or a float of the code)
void throw_unencodable(
        size_t nb,
        size_t d,
        const float* x,
        size_t first,
        const std::vector<uint8_t>& ok) {
    size_t i = 0;
    while (i < nb && ok[i]) {
        i++;
    }
    FAISS_THROW_IF_NOT(i < nb);
    check_finite(1, d, x + i * d, "TurboQuant encode", "vector", first + i);
    FAISS_THROW_FMT(
            "TurboQuant encode: vector %zd is too long for float "
            "(its norm, its difference to the mean, its rotation or a "
            "float of its code overflows)",
            first + i);
}

/// PROD's sign bits of s (d values), 1 = positive, LSB first: whole bytes
/// (the last one zero-padded), as put_bits gives them on zeroed memory
void pack_signs(const float* s, size_t d, uint8_t* out) {
    for (size_t j0 = 0; j0 < d; j0 += 8) {
        uint8_t byte = 0;
        for (size_t l = 0; l < 8 && j0 + l < d; l++) {
            byte |= (uint8_t)((s[j0 + l] > 0 ? 1 : 0) << l);
        }
        out[j0 / 8] = byte;
    }
}

} // namespace

TurboQuantizer::TurboQuantizer(
        size_t d_in,
        TQVariant v,
        float b,
        bool deb,
        RotationType rt,
        QJLType qt,
        uint64_t sd)
    : d(d_in),
      variant(v),
      bits(b),
      debiased(deb),
      rotation_type(rt),
      qjl_type(qt),
      seed(sd) {
    set_layout();
    build_tables();
}

void TurboQuantizer::train_mean(size_t n, const float* x) {
    check_finite(n, d, x, "TurboQuant train");
    std::vector<double> sum(d, 0);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++) {
            sum[j] += x[i * d + j];
        }
    }
    mean.resize(d);
    for (size_t j = 0; j < d; j++) {
        mean[j] = (float)(sum[j] / n);
    }
}

int TurboQuantizer::mse_bits10() const {
    int b10 = (int)std::lround(bits * 10);
    return variant == TQVariant::PROD ? b10 - 10 : b10;
}

void TurboQuantizer::set_layout() {
    FAISS_THROW_IF_NOT_FMT(
            d >= 2 && d <= (1 << 20),
            "TurboQuant: dimension d=%zd must be in 2..2^20",
            d);
    FAISS_THROW_IF_NOT_FMT(
            std::isfinite(bits) && bits >= 1 && bits <= 8 &&
                    std::fabs(bits * 10 - std::lround(bits * 10)) < 1e-3,
            "TurboQuant: bits=%g must be in [1, 8] with at most one decimal",
            bits);
    FAISS_THROW_IF_NOT_FMT(
            variant == TQVariant::MSE || variant == TQVariant::PROD,
            "TurboQuant: unknown variant %d",
            (int)variant);
    FAISS_THROW_IF_NOT_MSG(
            !(debiased && variant == TQVariant::PROD),
            "TurboQuant: debiased scoring applies to TQmse only");
    FAISS_THROW_IF_NOT_FMT(
            rotation_type == RotationType::AUTO ||
                    rotation_type == RotationType::DENSE ||
                    rotation_type == RotationType::HADAMARD,
            "TurboQuant: unknown rotation type %d (0: auto, 1: dense, 2: "
            "Hadamard)",
            (int)rotation_type);
    FAISS_THROW_IF_NOT_FMT(
            qjl_type == QJLType::GAUSSIAN || qjl_type == QJLType::HADAMARD ||
                    qjl_type == QJLType::AUTO,
            "TurboQuant: unknown QJL type %d (0: Gaussian, 1: Hadamard, 2: "
            "auto)",
            (int)qjl_type);
    int m10 = mse_bits10();
    b_lo = m10 / 10;
    int frac = m10 % 10;
    b_hi = frac ? b_lo + 1 : b_lo;
    n_hi = frac ? (d * frac + 5) / 10 : 0;
    size_t nbits = n_hi * b_hi + (d - n_hi) * b_lo;
    mse_bytes = (nbits + 7) / 8;
    qjl_bytes = variant == TQVariant::PROD ? (d + 7) / 8 : 0;
    code_size = mse_bytes + qjl_bytes + sizeof(float) * n_floats();
    if (!mean.empty()) {
        FAISS_THROW_IF_NOT_FMT(
                mean.size() == d,
                "TurboQuant: mean has %zd entries, d=%zd",
                mean.size(),
                d);
    }
}

void TurboQuantizer::build_tables() {
    rotation_type = resolve_rotation_type(rotation_type, d);
    // TQmse has no projection: AUTO stays GAUSSIAN there, as files of
    // earlier versions say
    qjl_type = variant == TQVariant::PROD  ? resolve_qjl_type(qjl_type, d)
               : qjl_type == QJLType::AUTO ? QJLType::GAUSSIAN
                                           : qjl_type;
    rotation = make_rotation(rotation_type, d, seed);
    cb_lo = get_lloyd_max_codebook(d, b_lo);
    cb_hi = get_lloyd_max_codebook(d, b_hi);
    if (variant == TQVariant::PROD) {
        // an independent stream: the projection must not correlate with R
        qjl = std::make_shared<QJLProjection>(
                d, qjl_type, seed ^ 0x51ed270b27a3c6f1ULL);
    } else {
        qjl.reset();
    }
}

std::string TurboQuantizer::layout_string() const {
    char buf[256];
    snprintf(
            buf,
            sizeof(buf),
            "d=%zd %s %zdx%db+%zdx%db (%zd B)%s | norm%s%s (%zd B in all)",
            d,
            variant == TQVariant::PROD ? "PROD" : "MSE",
            n_hi,
            b_hi,
            d - n_hi,
            b_lo,
            mse_bytes,
            variant == TQVariant::PROD ? " | signs" : "",
            variant == TQVariant::PROD ? " | gamma"
            : debiased                 ? " | beta"
                                       : "",
            ip_offset ? " | <mean, r>" : "",
            code_size);
    return buf;
}

void TurboQuantizer::encode(
        size_t n,
        const float* x,
        uint8_t* codes,
        const float* origins,
        size_t row0) const {
    const bool prod = variant == TQVariant::PROD;
    // a multiple of 8: the rotation takes vectors 8 at a time
    const size_t batch = std::max<size_t>(
            16, std::min(kEncodeBatch, kEncodeBatchFloats / d) / 8 * 8);
    std::vector<float> xc, y, r, sr;
    std::vector<uint8_t> ok;
    for (size_t i0 = 0; i0 < n; i0 += batch) {
        size_t nb = std::min(batch, n - i0);
        const float* xb = x + i0 * d;
        if (!mean.empty()) {
            xc.resize(nb * d);
            for (size_t i = 0; i < nb; i++) {
                for (size_t j = 0; j < d; j++) {
                    xc[i * d + j] = xb[i * d + j] - mean[j];
                }
            }
            xb = xc.data();
        }
        y.resize(nb * d);
        rotation->apply(nb, xb, y.data());
        // PROD: the residual u - c_hat; debiased MSE: c_hat, for its dot;
        // plain MSE needs neither
        const bool need_r = prod || debiased;
        r.resize(need_r ? nb * d : 0);
        ok.resize(nb);
        OmpErrors errors;
#pragma omp parallel if (nb > 16)
        {
            std::unique_ptr<EncodeScratch> scratch;
            errors.run([&] {
                scratch = std::make_unique<EncodeScratch>(d, mse_bytes);
            });
#pragma omp for
            for (int64_t i = 0; i < (int64_t)nb; i++) {
                const float* o = origins        ? origins + (i0 + i) * d
                                 : mean.empty() ? nullptr
                                                : mean.data();
                errors.run([&] {
                    ok[i] = encode_one(
                            *this,
                            xb + i * d,
                            o,
                            y.data() + i * d,
                            need_r ? r.data() + i * d : nullptr,
                            *scratch,
                            codes + (i0 + i) * code_size);
                });
            }
        }
        errors.rethrow();
        // Callers encode into buffers of their own, so this leaves nothing
        // half stored
        if (std::find(ok.begin(), ok.end(), 0) != ok.end()) {
            throw_unencodable(nb, d, x + i0 * d, row0 + i0, ok);
        }
        if (prod) {
            sr.resize(nb * d);
            qjl->apply(nb, r.data(), sr.data());
            for (size_t i = 0; i < nb; i++) {
                pack_signs(
                        sr.data() + i * d,
                        d,
                        codes + (i0 + i) * code_size + mse_bytes);
            }
        }
    }
}

void TurboQuantizer::check_codes(
        size_t n, const uint8_t* codes, const char* what) const {
    for (size_t i = 0; i < n; i++) {
        TQCodeScalars s;
        read_scalars(codes + i * code_size, s);
        FAISS_THROW_IF_NOT_FMT(
                std::isfinite(s.norm) && s.norm >= 0 && std::isfinite(s.aux) &&
                        std::isfinite(s.moff),
                "%s: code %zd is not a TurboQuant code of this layout (norm "
                "%g, floats must be finite, the norm >= 0)",
                what,
                i,
                s.norm);
    }
}

void TurboQuantizer::check_l2_codes(
        size_t n, const uint8_t* codes, const char* what) const {
    for (size_t i = 0; i < n; i++) {
        TQCodeScalars s;
        read_scalars(codes + i * code_size, s);
        double n2 = (double)s.norm * s.norm;
        FAISS_THROW_IF_NOT_FMT(
                n2 <= std::numeric_limits<float>::max(),
                "%s: vector %zd is too long for L2 distances in float "
                "(squared norm%s %g)",
                what,
                i,
                mean.empty() ? "" : " after the mean is subtracted",
                n2);
    }
}

bool TurboQuantizer::same_codes_as(const TurboQuantizer& o) const {
    auto same_cb = [](const Codebook* a, const Codebook* b) {
        return a == b || (a && b && a->centroids == b->centroids &&
                          a->thresholds == b->thresholds);
    };
    return d == o.d && variant == o.variant && bits == o.bits &&
           debiased == o.debiased && rotation_type == o.rotation_type &&
           (variant == TQVariant::MSE || qjl_type == o.qjl_type) &&
           seed == o.seed && code_size == o.code_size && mean == o.mean &&
           ip_offset == o.ip_offset && same_cb(cb_lo.get(), o.cb_lo.get()) &&
           same_cb(cb_hi.get(), o.cb_hi.get());
}

void TurboQuantizer::decode_rotated(
        const uint8_t* code, float* chat, float* sgn, TQCodeScalars& s) const {
    unpack_centroids(code, 0, n_hi, *cb_hi, chat);
    unpack_centroids(code, n_hi * b_hi, d - n_hi, *cb_lo, chat + n_hi);
    // ||c_hat||^2 only where combine() reads it (plain MSE): re-scoring
    // decodes every candidate
    bool plain = variant == TQVariant::MSE && !debiased;
    float cc = plain ? dot_lanes(chat, chat, d) : 0;
    if (variant == TQVariant::PROD && sgn) {
        const uint8_t* signs = code + mse_bytes;
        for (size_t j = 0; j < d; j++) {
            sgn[j] = (signs[j >> 3] >> (j & 7)) & 1 ? 1.0f : -1.0f;
        }
    }
    read_scalars(code, s);
    s.cc = cc;
}

void TurboQuantizer::decode(size_t n, const uint8_t* codes, float* x) const {
    const bool prod = variant == TQVariant::PROD;
    std::vector<float> chat, sgn, corr;
    for (size_t i0 = 0; i0 < n; i0 += kEncodeBatch) {
        size_t nb = std::min(kEncodeBatch, n - i0);
        chat.resize(nb * d);
        sgn.resize(prod ? nb * d : 0);
        std::vector<TQCodeScalars> sc(nb);
        for (size_t i = 0; i < nb; i++) {
            decode_rotated(
                    codes + (i0 + i) * code_size,
                    chat.data() + i * d,
                    prod ? sgn.data() + i * d : nullptr,
                    sc[i]);
        }
        if (prod) {
            // x_tilde = c_hat + gamma sqrt(pi/2) / d S^T sign
            corr.resize(nb * d);
            qjl->apply_transpose(nb, sgn.data(), corr.data());
            for (size_t i = 0; i < nb; i++) {
                float f = (float)(kTQSqrtHalfPi / d) * sc[i].aux;
                for (size_t j = 0; j < d; j++) {
                    chat[i * d + j] += f * corr[i * d + j];
                }
            }
        }
        float* xb = x + i0 * d;
        rotation->apply_transpose(nb, chat.data(), xb);
        for (size_t i = 0; i < nb; i++) {
            for (size_t j = 0; j < d; j++) {
                xb[i * d + j] = xb[i * d + j] * sc[i].norm +
                                (mean.empty() ? 0.0f : mean[j]);
            }
        }
    }
}

void TQQueries::check_range(const char* what, const float* x, size_t d) const {
    if (!l2) {
        check_ip_norms(n, d, x, what);
    }
    for (size_t i = 0; l2 && i < n; i++) {
        FAISS_THROW_IF_NOT_FMT(
                std::isfinite(qconst[i]),
                "%s: query %zd is too long for L2 distances in float (its "
                "squared norm overflows)",
                what,
                i);
    }
}

const float* TurboQuantizer::center_queries(
        size_t n,
        const float* q,
        bool l2,
        std::vector<float>& qc,
        float* qconst) const {
    std::fill(qconst, qconst + n, 0.0f);
    const float* qb = q;
    if (!mean.empty()) {
        qc.resize(n * d);
        for (size_t i = 0; i < n; i++) {
            const float* qi = q + i * d;
            double ip = 0;
            for (size_t j = 0; j < d; j++) {
                qc[i * d + j] = l2 || ip_offset ? qi[j] - mean[j] : qi[j];
                ip += (double)qi[j] * mean[j];
            }
            if (!l2) {
                qconst[i] = (float)ip;
            }
        }
        qb = qc.data();
    }
    if (l2) {
        for (size_t i = 0; i < n; i++) {
            qconst[i] = (float)canonical_dot(qb + i * d, qb + i * d, d);
        }
    }
    return qb;
}

void TurboQuantizer::prepare_queries(
        size_t n, const float* q, bool l2, TQQueries& out) const {
    check_finite(n, d, q, "TurboQuant search");
    out.n = n;
    out.l2 = l2;
    out.qconst.resize(n);
    std::vector<float> qc;
    const float* qb = center_queries(n, q, l2, qc, out.qconst.data());
    out.y.resize(n * d);
    rotation->apply(n, qb, out.y.data());
    if (variant == TQVariant::PROD) {
        out.sy.resize(n * d);
        qjl->apply(n, out.y.data(), out.sy.data());
    } else {
        out.sy.clear();
    }
}

float TurboQuantizer::score(
        const TQQueries& q, size_t qi, const uint8_t* code, float* buf) const {
    TQCodeScalars s;
    const bool prod = variant == TQVariant::PROD;
    decode_rotated(code, buf, prod ? buf + d : nullptr, s);
    float dc = dot_lanes(q.y.data() + qi * d, buf, d);
    float ds = prod ? dot_lanes(q.sy.data() + qi * d, buf + d, d) : 0;
    return combine(q, qi, dc, ds, s);
}

void TurboQuantizer::check_tables() const {
    FAISS_THROW_IF_NOT_MSG(
            rotation && rotation->d == d, "TurboQuant: rotation missing");
    FAISS_THROW_IF_NOT_MSG(
            cb_hi && cb_lo && cb_hi->nbits == b_hi && cb_lo->nbits == b_lo,
            "TurboQuant: codebooks do not match the bit widths");
    cb_hi->check();
    cb_lo->check();
    if (variant == TQVariant::PROD) {
        FAISS_THROW_IF_NOT_MSG(
                qjl && qjl->d == d, "TurboQuant: QJL projection missing");
    }
}

} // namespace faiss_turbo
