#include "bench_kernels.h"

#include <cuda_fp16.h>

#include <cstdio>
#include <cstdlib>

namespace tqbench {

namespace {

__device__ uint64_t splitmix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/// a standard normal from a counter (Box-Muller)
__device__ float normal_at(uint64_t seed, uint64_t i) {
    uint64_t h = splitmix(seed ^ splitmix(i));
    float u1 = ((h >> 40) + 1) * (1.0f / 16777217.0f);
    float u2 = ((h >> 16) & 0xffffff) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

#define GRID_LOOP(i, n)                                                        \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);    \
         i += (size_t)gridDim.x * blockDim.x)

__global__ void gaussian_k(float* x, size_t total, float sigma, uint64_t seed) {
    GRID_LOOP(i, total) {
        x[i] = sigma * normal_at(seed, i);
    }
}

__global__ void clustered_k(
    float* x,
    size_t total,
    int d,
    const float* c,
    int ncent,
    float sigma,
    uint64_t seed) {
    GRID_LOOP(i, total) {
        size_t v = i / d;
        int cid = (int)((v * 2654435761ull) % ncent);
        x[i] = c[(size_t)cid * d + i % d] + sigma * normal_at(seed, i);
    }
}

__global__ void queries_k(
    float* q,
    size_t total,
    int d,
    const float* xb,
    size_t nb,
    float sigma,
    uint64_t seed) {
    GRID_LOOP(i, total) {
        size_t v = i / d;
        size_t src = (v * 7919) % nb;
        q[i] = xb[src * d + i % d] + sigma * normal_at(seed, i);
    }
}

__global__ void half_k(const float* x, __half* out, size_t n) {
    GRID_LOOP(i, n) {
        out[i] = __float2half_rn(x[i]);
    }
}

__global__ void norms_k(const float* x, size_t n, int d, float* out) {
    GRID_LOOP(i, n) {
        float s = 0;
        for (int j = 0; j < d; j++) {
            float v = x[i * d + j];
            s += v * v;
        }
        out[i] = s;
    }
}

__global__ void keys_k(
    const float* dots, const float* xn, size_t total, size_t nb, float* keys) {
    GRID_LOOP(i, total) {
        keys[i] = xn[i % nb] - 2 * dots[i];
    }
}

__global__ void rerank_k(
    const float* x,
    const float* q,
    const int64_t* cand,
    size_t total,
    int kc,
    int d,
    float* out) {
    GRID_LOOP(i, total) {
        int64_t id = cand[i];
        const float* qi = q + (i / kc) * d;
        float s = 0;
        if (id < 0) {
            s = __int_as_float(0x7f800000);
        } else {
            for (int j = 0; j < d; j++) {
                float t = x[id * d + j] - qi[j];
                s += t * t;
            }
        }
        out[i] = s;
    }
}

int grid(size_t n) {
    size_t b = (n + 255) / 256;
    return (int)(b < 65535 * 8 ? (b ? b : 1) : 65535 * 8);
}

void check() {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        fprintf(stderr, "CUDA error %s\n", cudaGetErrorString(e));
        exit(1);
    }
}

} // namespace

void gen_gaussian(float* x, size_t n, int d, float sigma, uint64_t seed) {
    gaussian_k<<<grid(n * d), 256>>>(x, n * d, sigma, seed);
    check();
}

void gen_clustered(
    float* x,
    size_t n,
    int d,
    const float* centers,
    int ncent,
    float sigma,
    uint64_t seed) {
    clustered_k<<<grid(n * d), 256>>>(x, n * d, d, centers, ncent, sigma, seed);
    check();
}

void gen_queries(
    float* q,
    size_t nq,
    int d,
    const float* xb,
    size_t nb,
    float sigma,
    uint64_t seed) {
    queries_k<<<grid(nq * d), 256>>>(q, nq * d, d, xb, nb, sigma, seed);
    check();
}

void to_half(const float* x, uint16_t* out, size_t n) {
    half_k<<<grid(n), 256>>>(x, (__half*)out, n);
    check();
}

void row_norms(const float* x, size_t n, int d, float* out) {
    norms_k<<<grid(n), 256>>>(x, n, d, out);
    check();
}

void l2_keys(
    const float* dots, const float* xn, int nq, size_t nb, float* keys) {
    keys_k<<<grid(nq * nb), 256>>>(dots, xn, nq * nb, nb, keys);
    check();
}

void rerank_l2(
    const float* x,
    const float* q,
    const int64_t* cand,
    int nq,
    int kc,
    int d,
    float* out) {
    size_t total = (size_t)nq * kc;
    rerank_k<<<grid(total), 256>>>(x, q, cand, total, kc, d, out);
    check();
}

void sync() {
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
        fprintf(stderr, "CUDA error %s\n", cudaGetErrorString(e));
        exit(1);
    }
}

} // namespace tqbench
