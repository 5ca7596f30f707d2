#include <faiss_turbo/impl/rotation.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/omp_errors.h>
#include <faiss_turbo/impl/random.h>
#include <faiss_turbo/impl/simd/float_kernels.h>

namespace faiss_turbo {

RotationType resolve_rotation_type(RotationType t, size_t d) {
    if (t != RotationType::AUTO) {
        return t;
    }
    return d <= kDenseMaxDim ? RotationType::DENSE : RotationType::HADAMARD;
}

/*************************************************************
 * DenseRotation
 *************************************************************/

namespace {

/// rows of a (d x d, double) become orthonormal, by modified Gram-Schmidt.
/// Each row's update is independent, so the parallel loop is deterministic.
void gram_schmidt_rows(std::vector<double>& a, size_t d) {
    for (size_t k = 0; k < d; k++) {
        double* ak = a.data() + k * d;
        double nrm = 0;
        for (size_t j = 0; j < d; j++) {
            nrm += ak[j] * ak[j];
        }
        nrm = std::sqrt(nrm);
        FAISS_THROW_IF_NOT_MSG(nrm > 0, "degenerate Gaussian matrix");
        for (size_t j = 0; j < d; j++) {
            ak[j] /= nrm;
        }
#pragma omp parallel for if (d - k > 64)
        for (int64_t i = k + 1; i < (int64_t)d; i++) {
            double* ai = a.data() + i * d;
            double dot = 0;
            for (size_t j = 0; j < d; j++) {
                dot += ak[j] * ai[j];
            }
            for (size_t j = 0; j < d; j++) {
                ai[j] -= dot * ak[j];
            }
        }
    }
}

} // namespace

void matmul_rows(
        size_t n,
        size_t d,
        const float* x,
        const float* m,
        bool transpose_m,
        float* y) {
    // Not BLAS: OpenBLAS may round differently with its thread count, and
    // results must not depend on it. Each output is computed by one fixed
    // sequence of operations.
    if (!transpose_m) {
        constexpr size_t kRowBlock = 16;
        // rows of m serve a block of vectors while it is in cache (a
        // 1536 x 1536 matrix does not fit in L2); the kernel goes over
        // several rows and vectors at once, same dot_lanes per output
        const int64_t bs = std::max<int64_t>(
                1, std::min<int64_t>(16, n / omp_get_max_threads()));
        const int64_t nblk = (n + bs - 1) / bs;
#pragma omp parallel for if (n > 4)
        for (int64_t b = 0; b < nblk; b++) {
            size_t i0 = b * bs, i1 = std::min<size_t>(n, (b + 1) * bs);
            for (size_t r0 = 0; r0 < d; r0 += kRowBlock) {
                dot_lanes_rows_block(
                        m + r0 * d,
                        std::min(kRowBlock, d - r0),
                        x + i0 * d,
                        i1 - i0,
                        d,
                        y + i0 * d + r0,
                        d);
            }
        }
        return;
    }
#pragma omp parallel for if (n > 4)
    for (int64_t i = 0; i < (int64_t)n; i++) {
        const float* xi = x + i * d;
        float* yi = y + i * d;
        std::fill(yi, yi + d, 0.0f);
        for (size_t r = 0; r < d; r++) {
            axpy(d, xi[r], m + r * d, yi);
        }
    }
}

DenseRotation::DenseRotation(size_t d_in, uint64_t seed) {
    d = d_in;
    SplitRNG rng(seed);
    std::vector<double> a(d * d);
    for (auto& v : a) {
        v = rng.next_gaussian();
    }
    gram_schmidt_rows(a, d);
    matrix.resize(d * d);
    for (size_t i = 0; i < d * d; i++) {
        matrix[i] = (float)a[i];
    }
}

void DenseRotation::apply(size_t n, const float* x, float* y) const {
    if (n > 0) {
        matmul_rows(n, d, x, matrix.data(), false, y);
    }
}

void DenseRotation::apply_transpose(size_t n, const float* y, float* x) const {
    if (n > 0) {
        matmul_rows(n, d, y, matrix.data(), true, x);
    }
}

/*************************************************************
 * HadamardRotation
 *************************************************************/

HadamardRotation::HadamardRotation(size_t d_in, uint64_t seed, int nr) {
    d = d_in;
    // 3 rounds mix a single power-of-2 block fully; with several blocks one
    // more round evens out the energy between them
    bool pow2 = (d & (d - 1)) == 0;
    nrounds = nr > 0 ? nr : (pow2 ? 3 : 4);
    SplitRNG rng(seed);
    signs.resize(nrounds * d);
    perms.resize(nrounds * d);
    for (int r = 0; r < nrounds; r++) {
        for (size_t i = 0; i < d; i++) {
            signs[r * d + i] = (rng.next_u64() >> 63) ? -1.0f : 1.0f;
        }
        std::vector<uint32_t> perm = random_permutation(rng, d);
        memcpy(perms.data() + r * d, perm.data(), d * sizeof(uint32_t));
    }
}

std::vector<std::pair<size_t, size_t>> HadamardRotation::blocks() const {
    std::vector<std::pair<size_t, size_t>> res;
    size_t off = 0;
    for (size_t bit = size_t(1) << 62; bit > 0; bit >>= 1) {
        if (d & bit) {
            res.emplace_back(off, bit);
            off += bit;
        }
    }
    return res;
}

namespace {

/// the highest set bit of v > 0
size_t highest_bit(size_t v) {
#if defined(__GNUC__)
    return size_t(1) << (63 - __builtin_clzll((unsigned long long)v));
#else
    size_t bit = size_t(1) << 62;
    while (bit > v) {
        bit >>= 1;
    }
    return bit;
#endif
}

/// normalized transform of each block: H_s / sqrt(s), self-inverse. The
/// blocks are the bits of d from the highest, as blocks() lists them.
/// signs (d of them, or null): multiplied into the result, as the next
/// round's signs (exact, so the same as a separate pass)
void hadamard_blocks(float* x, size_t d, const float* signs = nullptr) {
    size_t off = 0;
    for (size_t rest = d; rest != 0;) {
        size_t bit = highest_bit(rest);
        rest -= bit;
        // fwht_inplace's bits then the scaling, SIMD if any
        fwht_scaled_fast(
                x + off,
                bit,
                (float)(1.0 / std::sqrt((double)bit)),
                signs ? signs + off : nullptr);
        off += bit;
    }
}

/// out = x * s element by element (out may be x). Multiplying by +-1 is
/// exact, so a round may take its signs before its permutation: the
/// permuted y[perm[i]] * s[perm[i]] are the same floats. Read in order,
/// the signs stream from cache where the permuted order missed it (with
/// the permutations, 48 KB of parameters per vector at d = 1536)
void mul_signs(const float* x, const float* s, size_t d, float* out) {
    for (size_t i = 0; i < d; i++) {
        out[i] = x[i] * s[i];
    }
}

/// out[i] = y[perm[i]]. Four loads make one 16-byte store: one store per
/// element was what bound this loop
void gather(const float* y, const uint32_t* perm, size_t d, float* out) {
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 4 <= d; i += 4) {
        _mm_storeu_ps(
                out + i,
                _mm_setr_ps(
                        y[perm[i]],
                        y[perm[i + 1]],
                        y[perm[i + 2]],
                        y[perm[i + 3]]));
    }
#endif
    for (; i < d; i++) {
        out[i] = y[perm[i]];
    }
}

/// the forward rounds from x into y (x may be y: only the first step reads
/// it), tmp d floats of scratch: each round's gather writes
/// the other buffer, in the order that ends in y. x first goes with the
/// first round's signs into the buffer that round does not write: a
/// vector read from a large input is not in cache, and the gather's
/// random order then waited on one cache miss after another (a third of
/// encode time at d = 1536). Each round's transform ends with the next
/// round's signs (in its last stage, no pass of their own).
void hadamard_forward(
        const HadamardRotation& h, const float* x, float* y, float* tmp) {
    const size_t d = h.d;
    float* spare = (h.nrounds - 1) % 2 == 0 ? tmp : y;
    mul_signs(x, h.signs.data(), d, spare);
    const float* src = spare;
    for (int r = 0; r < h.nrounds; r++) {
        float* dst = (h.nrounds - 1 - r) % 2 == 0 ? y : tmp;
        gather(src, h.perms.data() + r * d, d, dst);
        bool more = r + 1 < h.nrounds;
        hadamard_blocks(dst, d, more ? h.signs.data() + (r + 1) * d : nullptr);
        src = dst;
    }
}

} // namespace

void HadamardRotation::apply_transpose_one(float* x, float* tmp) const {
    for (int r = nrounds - 1; r >= 0; r--) {
        const float* s = signs.data() + r * d;
        const uint32_t* perm = perms.data() + r * d;
        hadamard_blocks(x, d);
        for (size_t i = 0; i < d; i++) {
            tmp[perm[i]] = x[i];
        }
        mul_signs(tmp, s, d, x); // x[perm[i]] * s[perm[i]], in order
    }
}

namespace {

/// the interleaved kernels' scratch is 64 d bytes per thread: past this d
/// (1 MB of it; measured up to d = 1536) the one-vector path keeps 4 d
constexpr size_t kMaxInterleavedDim = size_t(1) << 14;

/// asks for the n floats at x into L2. A group's 8 vectors are read as 8
/// short strided streams, which the hardware prefetchers pick up late;
/// asked for one group ahead, they arrive while the group before them
/// rotates (0.95x the encode time at d = 128 from DRAM, same at 1536).
void prefetch_floats(const float* x, size_t n) {
    const char* p = (const char*)x;
    for (size_t b = 0; b < n * sizeof(float); b += 64) {
        _mm_prefetch(p + b, _MM_HINT_T1);
    }
}

/// n vectors of d floats at in: groups of 8 through group(i0, work) when
/// grouped (work: 2 d 8 floats, 32-byte aligned), the rest through
/// one(i, tmp) (tmp: d floats); a few vectors open no parallel region
template <class Group, class One>
void by_groups_of_8(
        size_t n,
        size_t d,
        const float* in,
        bool grouped,
        Group group,
        One one) {
    const size_t n8 = grouped ? n / 8 * 8 : 0;
    if (n8 > 0) {
        const int64_t ngroups = n8 / 8;
        OmpErrors errors;
#pragma omp parallel if (ngroups > 2)
        {
            std::vector<float> buf;
            errors.run([&] { buf.resize(2 * d * 8 + 8); });
            float* work = buf.data(); // 32-byte aligned
            work += (8 - ((uintptr_t)work / sizeof(float)) % 8) % 8;
#pragma omp for
            for (int64_t g = 0; g < ngroups; g++) {
                if (g + 1 < ngroups) {
                    prefetch_floats(in + (g + 1) * 8 * d, 8 * d);
                }
                errors.run([&] { group(g * 8, work); });
            }
        }
        errors.rethrow();
    }
    if (n - n8 <= 16) {
        std::vector<float> tmp(n > n8 ? d : 0);
        for (size_t i = n8; i < n; i++) {
            one(i, tmp.data());
        }
        return;
    }
    OmpErrors errors;
#pragma omp parallel
    {
        std::vector<float> tmp;
        errors.run([&] { tmp.resize(d); });
#pragma omp for
        for (int64_t i = n8; i < (int64_t)n; i++) {
            errors.run([&] { one(i, tmp.data()); });
        }
    }
    errors.rethrow();
}

} // namespace

void HadamardRotation::apply(size_t n, const float* x, float* y) const {
    // groups of 8 vectors through the interleaved kernel where there is
    // one (the same bits), the rest one at a time
    static const FloatKernels* k = float_kernels_simd();
    const HadamardRounds h{d, nrounds, signs.data(), perms.data()};
    by_groups_of_8(
            n,
            d,
            x,
            k && d <= kMaxInterleavedDim,
            [&](size_t i0, float* work) {
                k->hadamard8(h, x + i0 * d, d, y + i0 * d, d, work);
            },
            [&](size_t i, float* tmp) {
                hadamard_forward(*this, x + i * d, y + i * d, tmp);
            });
}

void HadamardRotation::apply_transpose(
        size_t n, const float* y, float* x) const {
    static const FloatKernels* k = float_kernels_simd();
    const HadamardRounds h{d, nrounds, signs.data(), perms.data()};
    by_groups_of_8(
            n,
            d,
            y,
            k && d <= kMaxInterleavedDim,
            [&](size_t i0, float* work) {
                k->hadamard8_transpose(h, y + i0 * d, d, x + i0 * d, d, work);
            },
            [&](size_t i, float* tmp) {
                if (x != y) {
                    memcpy(x + i * d, y + i * d, d * sizeof(float));
                }
                apply_transpose_one(x + i * d, tmp);
            });
}

void HadamardRotation::check() const {
    FAISS_THROW_IF_NOT_FMT(
            nrounds >= 1 && nrounds <= 64, "bad nrounds %d", nrounds);
    FAISS_THROW_IF_NOT_MSG(
            signs.size() == nrounds * d && perms.size() == nrounds * d,
            "Hadamard rotation: parameter sizes do not match d");
    std::vector<bool> seen(d);
    for (int r = 0; r < nrounds; r++) {
        std::fill(seen.begin(), seen.end(), false);
        for (size_t i = 0; i < d; i++) {
            uint32_t v = perms[r * d + i];
            FAISS_THROW_IF_NOT_MSG(
                    v < d && !seen[v], "Hadamard rotation: bad permutation");
            seen[v] = true;
            float s = signs[r * d + i];
            FAISS_THROW_IF_NOT_MSG(
                    s == 1.0f || s == -1.0f, "Hadamard rotation: bad sign");
        }
    }
}

std::shared_ptr<const Rotation>
make_rotation(RotationType t, size_t d, uint64_t seed) {
    switch (resolve_rotation_type(t, d)) {
        case RotationType::DENSE:
            return std::make_shared<DenseRotation>(d, seed);
        case RotationType::HADAMARD:
            return std::make_shared<HadamardRotation>(d, seed);
        default:
            FAISS_THROW_MSG("unknown rotation type");
    }
}

} // namespace faiss_turbo
