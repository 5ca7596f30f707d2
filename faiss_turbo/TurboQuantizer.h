/**
 * TurboQuant (Zandieh, Daliri, Hadian, Mirrokni, arXiv 2504.19874): the codec,
 * with no Index knowledge. Flat, IVF and GPU indexes all use this one class.
 *
 * Encoding of a vector x (after subtracting the optional mean):
 *   norm = ||x||, u = R x / norm (R a random rotation), then each u_i is
 *   quantized with the Lloyd-Max codebook of the law of one coordinate of a
 *   random unit vector in R^d.
 *
 * Variants:
 *   MSE   b bits per coordinate. Optional debiased scoring stores
 *         beta = norm / <u, c_hat> so that beta <y, c_hat> estimates <y, x>
 *         without the shrinkage of the plain reconstruction.
 *   PROD  (b - 1)-bit MSE code + sign(S r) of the residual r = u - c_hat,
 *         plus gamma = ||r||; <y, u> ~ <y, c_hat> + gamma sqrt(pi/2)/d
 *         <S y, sign(S r)> (the paper's QJL estimator, unbiased for a
 *         Gaussian S).
 *
 * Fractional widths (2.5, 3.5, ...): the first n_hi = round(d * frac)
 * rotated coordinates use ceil(b) bits and the others floor(b) bits, so the
 * average is b (exactly when d * frac is an integer). After the rotation all
 * coordinates have the same law, so a fixed split loses nothing.
 *
 * Code layout (code_size bytes, see layout_string()):
 *   [MSE indices: n_hi x b_hi bits then (d - n_hi) x b_lo bits, one LSB-first
 *    bit stream, zero-padded to a byte]
 *   [PROD only: d sign bits, LSB-first, 1 = positive, padded to a byte]
 *   [float32 norm][float32 aux: beta (debiased MSE) or gamma (PROD)]
 *   [float32 moff = <mean, x - mean>: ip_offset codecs only]
 *
 * Inner products of centered codecs (ip_offset): <q, x> = <q, mean> +
 * <q - mean, r> + <mean, r>, r = x - mean, with the last term stored
 * exactly, so the codes' error meets only q - mean. IVF residuals do the
 * same with their list's centroid in the mean's place. Without it the error
 * meets all of q, and on embeddings that share a large common direction
 * (q close to the mean) that costs most of the recall (see
 * bench/ablation_ip_centering.py); RaBitQ stores the same term.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <faiss_turbo/impl/codebook.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/qjl.h>
#include <faiss_turbo/impl/rotation.h>

namespace faiss_turbo {

enum class TQVariant : int {
    MSE = 0,
    PROD = 1,
};

/// Queries prepared for scoring against codes: rotated (and centered for
/// L2), plus the QJL projection for PROD.
struct TQQueries {
    size_t n = 0;
    bool l2 = true;
    std::vector<float> y;      ///< n x d: R (q - mean) for L2, R q for IP
    std::vector<float> sy;     ///< n x d, PROD only: S y
    std::vector<float> qconst; ///< n: ||q - mean||^2 (L2), <q, mean> (IP)

    /// throws (naming `what` and the query) unless every L2 constant is
    /// finite: a query too long for L2 distances in float ranks nothing;
    /// for inner products, unless each query of x (n x d, as prepared) has
    /// a squared norm that is a float (scores overflow to +-inf and NaN
    /// past it). Search entry points call it; prepare_queries itself does
    /// not throw for it (distance computers prepare queries inside FAISS's
    /// loops)
    void check_range(const char* what, const float* x, size_t d) const;
};

/// combine_form as an affine function of the two dots, for one code:
/// score = qconst + b + ac * dot_c + as * dot_s
struct TQAffine {
    float b, ac, as;
};

/// What decode_rotated extracts from one code besides the vectors.
struct TQCodeScalars {
    float norm = 0; ///< ||x - mean||
    float aux = 0;  ///< beta or gamma
    float moff = 0; ///< <mean, x - mean> (ip_offset codecs, else 0)
    float cc = 0;   ///< ||c_hat||^2, plain MSE only (0 otherwise)
};

struct TurboQuantizer {
    size_t d = 0;
    TQVariant variant = TQVariant::MSE;
    float bits = 4;        ///< per coordinate, the QJL bit included
    bool debiased = false; ///< MSE only
    RotationType rotation_type = RotationType::AUTO; ///< resolved on build
    QJLType qjl_type = QJLType::AUTO;                ///< resolved on build
    uint64_t seed = 1234;
    std::vector<float> mean; ///< subtracted before encoding; empty: none
    /// codes store <mean, x - mean> and inner-product queries are centered
    /// too (see the top of this file); set by the index for centered
    /// inner-product search, before set_layout()
    bool ip_offset = false;

    // layout, from set_layout()
    size_t n_hi = 0; ///< coordinates at b_hi bits
    int b_hi = 0, b_lo = 0;
    size_t mse_bytes = 0; ///< packed MSE indices
    size_t qjl_bytes = 0; ///< packed signs (PROD)
    size_t code_size = 0;

    // tables, from build_tables() or a file
    std::shared_ptr<const Rotation> rotation;
    std::shared_ptr<const Codebook> cb_hi, cb_lo;
    std::shared_ptr<const QJLProjection> qjl;

    TurboQuantizer() = default;

    TurboQuantizer(
            size_t d,
            TQVariant variant,
            float bits,
            bool debiased = false,
            RotationType rotation_type = RotationType::AUTO,
            QJLType qjl_type = QJLType::AUTO,
            uint64_t seed = 1234);

    /// mean = average of n vectors (throws on NaN / Inf): the centered
    /// variants' only training, shared by the flat and IVF indexes
    void train_mean(size_t n, const float* x);

    /// validate d, bits, variant and compute the layout fields
    void set_layout();

    /// rotation, codebooks and QJL projection from the seed
    void build_tables();

    /// bits given to the MSE part (bits - 1 for PROD), times 10
    int mse_bits10() const;

    /// whether codes store aux (beta or gamma)
    bool has_aux() const {
        return variant == TQVariant::PROD || debiased;
    }

    int n_floats() const {
        return 1 + (has_aux() ? 1 : 0) + (ip_offset ? 1 : 0);
    }

    /// the floats after a code's bits (see the layout above)
    void read_scalars(const uint8_t* code, TQCodeScalars& s) const;

    /// read_scalars with the layout's choices as template arguments, AUX
    /// = has_aux(), MOFF = ip_offset: no branch, for loops over many codes
    template <bool AUX, bool MOFF>
    void read_scalars_as(const uint8_t* code, TQCodeScalars& s) const;

    void write_scalars(uint8_t* code, const TQCodeScalars& s) const;

    /// throws (naming `what` and the code) unless every code's floats
    /// are finite and its norm >= 0, as encode writes them: codes given
    /// by a caller, whose NaN scores would never rank
    void check_codes(size_t n, const uint8_t* codes, const char* what) const;

    /// throws (naming `what` and the vector) where a code's norm squared
    /// overflows float: every L2 distance to it would be +inf, so that no
    /// search could return it (flat indexes' add by L2; files and merges
    /// keep what they hold)
    void check_l2_codes(size_t n, const uint8_t* codes, const char* what) const;

    /// whether o's codes mean what this codec's do (merging them): the same
    /// parameters (the QJL type for PROD only), mean and codebooks.
    /// Codebooks come from files as they were computed then: an index read
    /// from an older file may differ.
    bool same_codes_as(const TurboQuantizer& o) const;

    /// layout in words, e.g. "d=128 MSE 64x3b+64x2b | norm | beta"
    std::string layout_string() const;

    /// encode n vectors (throws on NaN / Inf). ip_offset codecs store
    /// moff = <o, x - mean> with o the mean, or row i of origins (n x d)
    /// when given: the list centroid of a residual (IVF). row0: the
    /// caller's number of x's first row, which error messages count from
    void
    encode(size_t n,
           const float* x,
           uint8_t* codes,
           const float* origins = nullptr,
           size_t row0 = 0) const;

    /// reconstruction: mean + norm * R^T c_hat (+ the QJL term for PROD)
    void decode(size_t n, const uint8_t* codes, float* x) const;

    /// c_hat (d floats, rotated space, unit scale) and, for PROD, the signs
    /// as +-1 floats (d floats, may be null otherwise)
    void decode_rotated(
            const uint8_t* code,
            float* chat,
            float* sgn,
            TQCodeScalars& s) const;

    void
    prepare_queries(size_t n, const float* q, bool l2, TQQueries& out) const;

    /// prepare_queries' first step (no check, no rotation): qconst (n
    /// floats, as TQQueries::qconst) and the queries as they are rotated,
    /// returned: centered into qc, or q itself
    const float* center_queries(
            size_t n,
            const float* q,
            bool l2,
            std::vector<float>& qc,
            float* qconst) const;

    /// the score estimator from the two dot products <y, c_hat> and
    /// <S y, sgn>: an L2 distance or an inner product, see README. Inline,
    /// as combine_form, which the int8 scan evaluates per code.
    float
    combine(const TQQueries& q,
            size_t qi,
            float dot_c,
            float dot_s,
            const TQCodeScalars& s) const;

    /// combine() with the codec's form (variant, debiased, metric) as
    /// template arguments: the one formula, which combine() dispatches
    /// to; loops that evaluate it per code (the int8 scan) pick the form
    /// once. DEBIASED is ignored when PROD
    template <bool PROD, bool DEBIASED, bool L2>
    float
    combine_form(float qconst, float dot_c, float dot_s, const TQCodeScalars& s)
            const;

    /// the coefficients of combine_form for a code with scalars s, from
    /// the formula itself (inner products at unit dots; for L2, b is the
    /// ||x||^2 term and the dots count -2 times): what scans that score
    /// many codes against many queries evaluate per code
    template <bool PROD, bool DEBIASED, bool L2>
    TQAffine affine_form(TQCodeScalars s) const;

#ifndef SWIG // a deduced return type, which SWIG does not parse
    /// f(prod, debiased, l2) with this codec's form as std::bool_constant
    /// arguments (debiased false for PROD), to call combine_form: the one
    /// place that maps the codec's fields to a form
    template <class F> auto with_form(bool l2, F&& f) const;
#endif

    /// combine() after decode_rotated(); buf holds 2 * d floats
    float
    score(const TQQueries& q, size_t qi, const uint8_t* code, float* buf) const;

    /// throws unless the tables match the layout (for data from files)
    void check_tables() const;
};

/// sqrt(pi / 2), the QJL estimator's factor
constexpr double kTQSqrtHalfPi = 1.2533141373155003;

template <bool PROD, bool DEBIASED, bool L2>
inline float TurboQuantizer::combine_form(
        float qconst, float dot_c, float dot_s, const TQCodeScalars& s) const {
    float ip, x2;
    if (PROD) {
        ip = s.norm * (dot_c + (float)(kTQSqrtHalfPi / d) * s.aux * dot_s);
        x2 = s.norm * s.norm;
    } else if (DEBIASED) {
        ip = s.aux * dot_c;
        x2 = s.norm * s.norm;
    } else {
        // exact for the reconstruction norm * R^T c_hat
        ip = s.norm * dot_c;
        x2 = s.norm * s.norm * s.cc;
    }
    return L2 ? qconst + x2 - 2 * ip : ip + qconst + s.moff;
}

template <bool PROD, bool DEBIASED, bool L2>
inline TQAffine TurboQuantizer::affine_form(TQCodeScalars s) const {
    // the inner product is affine in the dots: moff at zero dots
    const float b0 = s.moff;
    s.moff = 0;
    float ac = combine_form<PROD, DEBIASED, false>(0, 1, 0, s);
    float as = PROD ? combine_form<PROD, DEBIASED, false>(0, 0, 1, s) : 0.0f;
    if (!L2) {
        return {b0, ac, as};
    }
    // ||q - x||^2 = ||q||^2 + ||x||^2 - 2 <q, x>
    return {combine_form<PROD, DEBIASED, true>(0, 0, 0, s), -2 * ac, -2 * as};
}

#ifndef SWIG
template <class F> inline auto TurboQuantizer::with_form(bool l2, F&& f) const {
    using T = std::true_type;
    using N = std::false_type;
    if (variant == TQVariant::PROD) {
        return l2 ? f(T{}, N{}, T{}) : f(T{}, N{}, N{});
    }
    if (debiased) {
        return l2 ? f(N{}, T{}, T{}) : f(N{}, T{}, N{});
    }
    return l2 ? f(N{}, N{}, T{}) : f(N{}, N{}, N{});
}
#endif

inline float TurboQuantizer::combine(
        const TQQueries& q,
        size_t qi,
        float dot_c,
        float dot_s,
        const TQCodeScalars& s) const {
    const float c = q.qconst[qi];
    return with_form(q.l2, [&](auto prod, auto deb, auto l2) {
        return this->template combine_form<prod(), deb(), l2()>(
                c, dot_c, dot_s, s);
    });
}

template <bool AUX, bool MOFF>
inline void
TurboQuantizer::read_scalars_as(const uint8_t* code, TQCodeScalars& s) const {
    const uint8_t* p = code + mse_bytes + qjl_bytes;
    memcpy(&s.norm, p, sizeof(float));
    p += sizeof(float);
    s.aux = 0;
    if (AUX) {
        memcpy(&s.aux, p, sizeof(float));
        p += sizeof(float);
    }
    s.moff = 0;
    if (MOFF) {
        memcpy(&s.moff, p, sizeof(float));
    }
}

inline void
TurboQuantizer::read_scalars(const uint8_t* code, TQCodeScalars& s) const {
    if (has_aux()) {
        ip_offset ? read_scalars_as<true, true>(code, s)
                  : read_scalars_as<true, false>(code, s);
    } else {
        ip_offset ? read_scalars_as<false, true>(code, s)
                  : read_scalars_as<false, false>(code, s);
    }
}

inline void
TurboQuantizer::write_scalars(uint8_t* code, const TQCodeScalars& s) const {
    uint8_t* p = code + mse_bytes + qjl_bytes;
    memcpy(p, &s.norm, sizeof(float));
    p += sizeof(float);
    if (has_aux()) {
        memcpy(p, &s.aux, sizeof(float));
        p += sizeof(float);
    }
    if (ip_offset) {
        memcpy(p, &s.moff, sizeof(float));
    }
}

} // namespace faiss_turbo
