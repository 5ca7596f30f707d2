/**
 * Device helpers of the GPU benchmark: synthetic data made on the device,
 * and the pieces of an fp16 / fp32 brute-force baseline.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace tqbench {

/// ncent x d Gaussian centers (unit variance per coordinate)
void gen_gaussian(float* x, size_t n, int d, float sigma, uint64_t seed);

/// n x d points: center (i * 2654435761) % ncent plus Gaussian noise
void gen_clustered(
    float* x,
    size_t n,
    int d,
    const float* centers,
    int ncent,
    float sigma,
    uint64_t seed);

/// queries: copies of base points (i * 7919 % nb) plus noise
void gen_queries(
    float* q,
    size_t nq,
    int d,
    const float* xb,
    size_t nb,
    float sigma,
    uint64_t seed);

void to_half(const float* x, uint16_t* out, size_t n);

void row_norms(const float* x, size_t n, int d, float* out);

/// keys[i * nb + j] = xn[j] - 2 dots[i * nb + j] (L2 up to ||q||^2)
void l2_keys(
    const float* dots, const float* xn, int nq, size_t nb, float* keys);

/// out[i * kc + c] = ||x[cand[i * kc + c]] - q_i||^2 (+inf for -1)
void rerank_l2(
    const float* x,
    const float* q,
    const int64_t* cand,
    int nq,
    int kc,
    int d,
    float* out);

void sync();

} // namespace tqbench
