/**
 * CPU emulation of the CUDA features the kernels of gpu/impl use, to test
 * their logic on machines without a GPU (see gpu/README.md). Each CUDA
 * thread is a fiber of one OS thread; blocks run one after the other;
 * barriers, warp shuffles, ldmatrix and mma.sync are cooperative between
 * the fibers. emulate_cu.py turns a .cu file into C++ that includes this
 * header. Host float arithmetic is IEEE single like the GPU's, and the
 * emulated sources are compiled without contraction.
 */
#pragma once
// gpu/impl headers with inline PTX offer their emulated forms under this
#define TQ_CUDA_EMULATION 1
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <functional>
#include <vector>

// host_defines.h gives these attributes for nvcc; here they are plain C++
#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __launch_bounds__
#undef __align__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

namespace emu {
struct Thread;
struct Block;
extern Block* g_block;
extern Thread* g_cur;
extern dim3 g_blockIdx, g_blockDim, g_gridDim;
const dim3& tid();
int lane();
int warp();
void block_barrier();
void warp_barrier();
uint64_t* xch_slot(int lane_in_warp); // 8 words per lane of the current warp
void* dyn_smem();
/// runs a kernel's blocks, or, where a device would refuse the launch (grid
/// or block out of range, more dynamic shared memory than the kernel may
/// use), runs nothing and leaves the error for cudaGetLastError
void launch(
    const void* kernel,
    dim3 grid,
    dim3 block,
    size_t smem,
    std::function<void()> fn);
/// cudaFuncSetAttribute(MaxDynamicSharedMemorySize) of a kernel
cudaError_t set_max_dyn_smem(const void* kernel, int bytes);
inline dim3 to_dim3(dim3 d) {
    return d;
}
inline dim3 to_dim3(int x) {
    return dim3(x);
}
inline dim3 to_dim3(unsigned x) {
    return dim3(x);
}
inline dim3 to_dim3(size_t x) {
    return dim3((unsigned)x);
}
} // namespace emu

#define threadIdx (emu::tid())
#define blockIdx (emu::g_blockIdx)
#define blockDim (emu::g_blockDim)
#define gridDim (emu::g_gridDim)

template <typename K, typename... A>
void emu_launch(
    K kernel, dim3 g, dim3 b, size_t smem, cudaStream_t, A... args) {
    emu::launch((const void*)kernel, g, b, smem, [=]() { kernel(args...); });
}
#define EMU_LAUNCH(kernel, g, b, smem, s, ...)                                 \
    emu_launch(kernel, emu::to_dim3(g), emu::to_dim3(b), smem, s, __VA_ARGS__)

// kernels are plain functions here: these overloads answer the attribute
// and occupancy queries made on them
template <class K>
cudaError_t cudaFuncSetAttribute(K* k, cudaFuncAttribute a, int v) {
    return a == cudaFuncAttributeMaxDynamicSharedMemorySize
            ? emu::set_max_dyn_smem((const void*)k, v)
            : cudaSuccess;
}
template <class K>
cudaError_t
cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, K*, int, size_t) {
    *n = 1;
    return cudaSuccess;
}

inline void __syncthreads() {
    emu::block_barrier();
}
inline void __syncwarp(unsigned = 0xffffffffu) {
    emu::warp_barrier();
}

template <typename T> T emu_shfl_from(T v, int src) {
    static_assert(sizeof(T) <= 8, "shfl");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    emu::xch_slot(emu::lane())[0] = bits;
    emu::warp_barrier();
    uint64_t r = emu::xch_slot(src)[0];
    emu::warp_barrier();
    T out;
    memcpy(&out, &r, sizeof(T));
    return out;
}
template <typename T> T __shfl_sync(unsigned, T v, int src) {
    return emu_shfl_from(v, src & 31);
}
template <typename T> T __shfl_down_sync(unsigned, T v, int off) {
    int s = emu::lane() + off;
    return emu_shfl_from(v, s < 32 ? s : emu::lane());
}
template <typename T> T __shfl_xor_sync(unsigned, T v, int m) {
    return emu_shfl_from(v, emu::lane() ^ m);
}
inline int __any_sync(unsigned, int pred) {
    emu::xch_slot(emu::lane())[0] = pred != 0;
    emu::warp_barrier();
    int any = 0;
    for (int l = 0; l < 32; l++)
        any |= (int)emu::xch_slot(l)[0];
    emu::warp_barrier();
    return any;
}
template <typename T> T atomicAdd(T* p, T v) {
    T o = *p;
    *p = o + v;
    return o;
}
template <typename T> T atomicMax(T* p, T v) {
    T o = *p;
    *p = std::max(o, v);
    return o;
}
template <typename T> T __ldg(const T* p) {
    return *p;
}
inline uint32_t __funnelshift_r(uint32_t lo, uint32_t hi, uint32_t sh) {
    uint64_t v = ((uint64_t)hi << 32) | lo;
    return (uint32_t)(v >> (sh & 31));
}
/// byte permute (the selector's sign-replicate bit is not emulated)
inline uint32_t __byte_perm(uint32_t x, uint32_t y, uint32_t s) {
    const uint64_t v = ((uint64_t)y << 32) | x;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        const uint32_t sel = (s >> (4 * i)) & 7;
        r |= (uint32_t)((v >> (8 * sel)) & 0xff) << (8 * i);
    }
    return r;
}
inline uint32_t __float_as_uint(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
inline float __uint_as_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline float __int_as_float(int u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline float __fadd_rn(float a, float b) {
    return a + b;
}
inline float __fsub_rn(float a, float b) {
    return a - b;
}
inline float __fmul_rn(float a, float b) {
    return a * b;
}
inline float __fdiv_rn(float a, float b) {
    return a / b;
}
inline double __dsqrt_rn(double a) {
    return std::sqrt(a);
}
inline double __ddiv_rn(double a, double b) {
    return a / b;
}
inline float __double2float_rn(double a) {
    return (float)a;
}
using std::isfinite;
using std::max;
using std::min;

/// ldmatrix.sync.aligned.m8n8.x4.shared.b16, and mma.sync m16n8k16
/// row.col f32.f16.f16.f32 with the PTX ISA's fragment layouts (products of
/// halves are exact in float; the sum runs in k order)
void emu_ldmatrix_x4(uint32_t r[4], const void* p);
void emu_mma_16816(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
