/**
 * What the approximate passes (scan_approx.cu, scan_tc4.cu) share: the
 * candidate test (query and code factors of the proven error bound, the
 * append to a query's candidate list) and their persistent grids.
 */
#pragma once

#include <algorithm>
#include <cmath>

#include <gpu/impl/CudaUtils.h>

#include <gpu/impl/codec_device.cuh>
#include <gpu/impl/kernels.h>

namespace faiss_turbo {
namespace gpu {

/** The test for one (query, code), with dot ~ <a, b> and the estimator's
 * inner product ip = s |y| dot:
 *   key = qconst + x2 - 2 ip (L2) or -(ip + qconst + moff) (IP),
 *   |ip - ip_cpu| <= eps_ip = |s| |y| (rel |a| |b| + abs (|a| + |b|))
 * (approx_error_model); the CPU's final combine rounds within 4.8e-7 of its
 * terms (x2 of plain MSE also within relx2), and |ip| <= |s| |y| |a| |b|.
 * The code is kept when key - 2 eps <= T (the factor 2 is slack: it costs
 * a few candidates, never a result). Separating the query's and the code's
 * factors, this reads
 *   s (g dot) + V + alpha |s||b| + beta |s| >= Q,
 * one multiply and three multiply-adds per (query, code). */
struct QueryTerms {
    float g;     ///< 2 |y| (L2) or |y| (IP)
    float alpha; ///< factor of |s||b| in 2 eps (+ the |ip| rounding term)
    float beta;  ///< factor of |s| in 2 eps
    float Q;     ///< qconst - T - 2 e0 (L2) or -qconst - T - e0 (IP)
};

__device__ __forceinline__ QueryTerms
query_terms(const ApproxQueries& q, int i) {
    const float yn = q.ynorm[i], an = q.anorm[i], qc = q.qconst[i];
    const float t = q.thresh[(size_t)i * q.t_stride];
    const float e0 = 4.8e-7f * fabsf(qc); // rounding of the combine
    const float ea = yn * q.rel * an, eb = yn * q.abs * an, ec = yn * q.abs;
    QueryTerms r;
    if (q.l2) {
        r.g = 2 * yn;
        r.alpha = 4 * (ea + ec) + 1.92e-6f * yn * an;
        r.beta = 4 * eb;
        r.Q = qc - t - 2 * e0;
    } else {
        r.g = yn;
        r.alpha = 2 * (ea + ec) + 4.8e-7f * yn * an;
        r.beta = 2 * eb;
        r.Q = -qc - t - e0;
    }
    return r;
}

struct CodeTerms {
    float s;  ///< scale of the inner product: norm, or beta (debiased)
    float V;  ///< 2 e0 - x2 (L2), moff + its rounding (IP)
    float sb; ///< |s| |b|, |b| the norm of the approximate pass's b
    float as; ///< |s|
};

/** cc: |c_hat|^2 as decoded, with relative error relx2 (x2 of plain
 * MSE). IP keys of ip_offset codecs also hold the code's moff, exact but
 * for the combine's rounding. */
__device__ __forceinline__ CodeTerms code_terms(
    const CodecView& c,
    bool l2,
    const CodeScalars& cs,
    float cc,
    float relx2) {
    const float norm = cs.norm, aux = cs.aux;
    CodeTerms v;
    const bool plain = !c.prod && !c.debiased;
    v.s = c.debiased ? aux : norm;
    v.as = fabsf(v.s);
    v.sb = v.as * sqrtf(cc + (c.prod ? c.d * aux * aux : 0.0f)) * 1.001f;
    float x2 = plain ? norm * norm * cc : norm * norm;
    float e0 = (plain ? relx2 * x2 : 0.0f) + 4.8e-7f * x2;
    // IP: moff plus the combine's rounding of it (a margin keeps more)
    v.V = l2 ? 2 * e0 - x2 : cs.moff + 4.8e-7f * fabsf(cs.moff);
    return v;
}

__device__ __forceinline__ bool
keep_candidate(const QueryTerms& k, const CodeTerms& v, float dot) {
    float lhs = fmaf(v.s, k.g * dot, v.V);
    lhs = fmaf(k.alpha, v.sb, lhs);
    lhs = fmaf(k.beta, v.as, lhs);
    return lhs >= k.Q;
}

__device__ __forceinline__ void
push_candidate(const CandidateLists& out, int q, int id) {
    if (out.allow && !((out.allow[id >> 5] >> (id & 31)) & 1u)) {
        return; // left out by the search's IDSelector
    }
    int pos = atomicAdd(out.counts + q, 1);
    if (pos < out.capacity) {
        out.ids[(size_t)q * out.capacity + pos] = id;
    }
}

/** A persistent grid for `kernel`: as many blocks as fit on the GPU at
 * once, at most `work`. Sets the kernel's dynamic shared memory first. */
template <typename K>
int persistent_grid(
    K kernel, int threads, size_t smem, int num_sms, size_t work) {
    TQ_CUDA_CHECK(cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    int per_sm = 0;
    TQ_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &per_sm, kernel, threads, smem));
    FAISS_THROW_IF_NOT_MSG(per_sm > 0, "scan kernel does not fit on the GPU");
    return (int)std::max<size_t>(1, std::min((size_t)per_sm * num_sms, work));
}

} // namespace gpu
} // namespace faiss_turbo
